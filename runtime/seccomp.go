package runtime

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/runtime/seccomp"
)

// compiledSeccomp compiles a linux.seccomp section in the runtime (never
// in the init, where it would cost every start again) and encodes it for
// the init and the state dir. Compiled programs are cached under the state
// root (seccompCacheDir): engines start container after container with
// the same profile, and decoding and compiling Docker's profile costs a
// create about a millisecond. Unknown syscall names are warnings, as in
// runc, on a cache hit too. notify says whether a rule uses
// SCMP_ACT_NOTIFY (which needs the Go init).
func compiledSeccomp(root string, raw json.RawMessage) (b []byte, notify bool, err error) {
	if len(raw) == 0 {
		return nil, false, nil
	}
	path := seccompCachePath(root, raw)
	if path != "" {
		if f, b, warnings, ok := readSeccompCache(path); ok {
			for _, w := range warnings {
				Warnf("%s", w)
			}
			return b, f.UsesNotify(), nil
		}
	}
	sc := new(specs.LinuxSeccomp)
	if err := DecodeJSON(raw, sc); err != nil {
		return nil, false, fmt.Errorf("linux.seccomp: %w", err)
	}
	f, err := seccomp.Compile(sc)
	if err != nil {
		return nil, false, fmt.Errorf("linux.seccomp: %w", err)
	}
	for _, w := range f.Warnings {
		Warnf("%s", w)
	}
	if b, err = f.MarshalBinary(); err != nil {
		return nil, false, fmt.Errorf("linux.seccomp: %w", err)
	}
	if path != "" {
		if err := writeSeccompCache(path, b, f.Warnings); err != nil {
			// Only the next create's time is lost.
			Warnf("seccomp cache: %v", err)
		}
	}
	return b, f.UsesNotify(), nil
}

// seccompCacheDir holds compiled filters in the state root; "@" is not
// allowed in a container id, so it never names a container.
const (
	seccompCacheDir = "@seccomp"
	// seccompCacheMax bounds the cache: past it, it starts over.
	seccompCacheMax = 256
)

// seccompCachePath names the cache entry of a profile: a hash of its bytes
// and of this runtime binary's identity (size, mtime, inode), so that a
// rebuilt or upgraded compiler never reuses another's output. The state
// root is on tmpfs in a normal setup, so a new kernel (whose flags the
// compiler probes) starts with an empty cache. "" when the binary cannot
// be identified.
func seccompCachePath(root string, raw []byte) string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return ""
	}
	// A cryptographic hash: with a weak one, a crafted profile could
	// take the cache entry of another, and its filter, for itself.
	h, err := blake2b.New256(nil)
	if err != nil {
		return ""
	}
	fmt.Fprintf(h, "%d %d %d %d.%d\n", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	h.Write(raw)
	return filepath.Join(root, seccompCacheDir, hex.EncodeToString(h.Sum(nil)))
}

// A cache entry is the compiled filter's length (u32, little-endian), the
// filter, then the compiler's warnings one per line.
func readSeccompCache(path string) (*seccomp.Filter, []byte, []string, bool) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 4 {
		return nil, nil, nil, false
	}
	n := binary.LittleEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-4) {
		return nil, nil, nil, false
	}
	filter, rest := data[4:4+n], string(data[4+n:])
	// A damaged entry is compiled again, never loaded.
	f, err := seccomp.UnmarshalFilter(filter)
	if err != nil {
		return nil, nil, nil, false
	}
	var warnings []string
	if rest != "" {
		warnings = strings.Split(strings.TrimSuffix(rest, "\n"), "\n")
	}
	return f, filter, warnings, true
}

func writeSeccompCache(path string, filter []byte, warnings []string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) >= seccompCacheMax {
		for _, e := range entries {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(filter)))
	b = append(b, filter...)
	for _, w := range warnings {
		b = append(b, strings.ReplaceAll(w, "\n", " ")+"\n"...)
	}
	return writeFileAtomic(path, b, 0o600)
}

// decodeSeccomp decodes the compiled filter the runtime sent (nil: none).
func decodeSeccomp(b []byte) (*seccomp.Filter, error) {
	if len(b) == 0 {
		return nil, nil
	}
	f, err := seccomp.UnmarshalFilter(b)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	return f, nil
}

// loadSeccomp installs the filter and, for SCMP_ACT_NOTIFY, hands the
// listener fd to the agent at listenerPath (runtime-spec) with the state of
// the container and of this process.
func loadSeccomp(cfg *initConfig, plan *execPlan) error {
	if plan.seccomp == nil {
		return nil
	}
	fd, err := plan.seccomp.Load()
	if err != nil {
		return err
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	sc := plan.seccomp
	initPid := cfg.InitPid
	status := specs.StateRunning
	if cfg.Mode == modeCreate {
		initPid, status = plan.hostPid, specs.StateCreated
	}
	st := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      plan.hostPid,
		Metadata: sc.ListenerMetadata,
		State: specs.State{
			Version: specs.Version, ID: cfg.ID, Status: status, Pid: initPid,
			Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations,
		},
	}
	if plan.listener < 0 {
		return fmt.Errorf("linux.seccomp: no connection to listenerPath %s", sc.ListenerPath)
	}
	defer unix.Close(plan.listener)
	return seccomp.SendListenerFdOn(plan.listener, fd, st)
}

// dialListener connects to the seccomp agent of the filter, or returns -1
// when there is none. listenerPath is a host path: this must run before
// pivot_root (or, for exec, before entering the container's mounts).
func dialListener(f *seccomp.Filter) (int, error) {
	if f == nil || !f.UsesNotify() {
		return -1, nil
	}
	fd, err := seccomp.DialListener(f.ListenerPath)
	if err != nil {
		return -1, fmt.Errorf("linux.seccomp: %w", err)
	}
	return fd, nil
}

// hostPidFromProc reads this process's pid in the host's pid namespace
// from the host's procfs (open before pivot_root or setns).
func hostPidFromProc(hostProc *os.File) int {
	if p, err := hostPid(hostProc); err == nil {
		return p
	}
	return os.Getpid()
}
