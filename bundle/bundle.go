// Package bundle turns an image config (OCI image spec: entrypoint, cmd,
// env, user, working dir, …) and a root filesystem into an OCI runtime
// spec and bundle config.json, the way Docker and podman derive a
// container's process from its image. The engine builds on it and adds
// what the user asked for (mounts, resources, networking).
package bundle

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/capsa-project/capsa/image/content"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH a container gets when its image sets none
// (Docker's default).
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options override what the image config says, as `run` flags do.
type Options struct {
	// Cmd replaces the image's Cmd when not nil (arguments after the
	// image name on a `run` command line).
	Cmd []string
	// Entrypoint replaces the image's Entrypoint when not nil; an empty
	// slice clears it (--entrypoint "").
	Entrypoint []string
	Env        []string // added after the image's, overriding by key
	User       string   // replaces the image's USER
	WorkingDir string   // replaces the image's WORKDIR
	Hostname   string
	Terminal   bool
	// ReadonlyRootfs makes the root read-only.
	ReadonlyRootfs bool
	// RootfsPath is what config.json's root.path says (default "rootfs").
	RootfsPath string
}

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Spec builds the runtime spec for a container of image config img whose
// root filesystem is rootfs. rootfs is only read, to resolve the user
// and groups from its /etc/passwd and /etc/group, which are opened inside
// the root (symlinks cannot lead out of it: the image is untrusted).
func Spec(img *ocispec.Image, rootfs string, opts Options) (*specs.Spec, error) {
	if img == nil {
		return nil, errors.New("bundle: no image config")
	}
	cfg := img.Config
	entrypoint := cfg.Entrypoint
	if opts.Entrypoint != nil {
		entrypoint = opts.Entrypoint
	}
	cmd := cfg.Cmd
	if opts.Cmd != nil {
		cmd = opts.Cmd
	} else if opts.Entrypoint != nil {
		// Docker: a new entrypoint drops the image's CMD.
		cmd = nil
	}
	args := append(append([]string{}, entrypoint...), cmd...)
	if len(args) == 0 {
		return nil, errors.New("bundle: no command specified: the image has no ENTRYPOINT or CMD and none was given")
	}
	user := cfg.User
	if opts.User != "" {
		user = opts.User
	}
	u, err := ResolveUser(rootfs, user)
	if err != nil {
		return nil, err
	}
	env := mergeEnv(cfg.Env, opts.Env)
	if !hasKey(env, "PATH") {
		env = append([]string{DefaultPath}, env...)
	}
	if opts.Terminal && !hasKey(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	if !hasKey(env, "HOME") {
		env = append(env, "HOME="+u.Home)
	}
	if opts.Hostname != "" && !hasKey(env, "HOSTNAME") {
		env = append(env, "HOSTNAME="+opts.Hostname)
	}
	cwd := cfg.WorkingDir
	if opts.WorkingDir != "" {
		cwd = opts.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	// Docker treats a relative WORKDIR as relative to /.
	cwd = path.Clean("/" + cwd)
	rootPath := opts.RootfsPath
	if rootPath == "" {
		rootPath = "rootfs"
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: opts.Terminal,
			User:     specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids},
			Args:     args,
			Env:      env,
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: false,
		},
		Root:     &specs.Root{Path: rootPath, Readonly: opts.ReadonlyRootfs},
		Hostname: opts.Hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Annotations: map[string]string{},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
				"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if cfg.StopSignal != "" {
		s.Annotations["org.opencontainers.image.stopSignal"] = cfg.StopSignal
	}
	return s, nil
}

// Write stores spec as dir/config.json, atomically.
func Write(dir string, spec *specs.Spec) error {
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("bundle: encode config.json: %w", err)
	}
	if err := content.WriteFileAtomic(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return fmt.Errorf("bundle: write config.json: %w", err)
	}
	return nil
}

func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if envKey(kv) == key {
			return true
		}
	}
	return false
}

// mergeEnv appends extra to base; a key in extra replaces base's value
// in place.
func mergeEnv(base, extra []string) []string {
	out := append([]string{}, base...)
	for _, kv := range extra {
		k := envKey(kv)
		replaced := false
		for i := range out {
			if envKey(out[i]) == k {
				out[i] = kv
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// User is a resolved container user.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32 // supplementary groups from /etc/group
	Home           string   // from /etc/passwd, "/" if unknown
}

// ResolveUser resolves a Docker USER string ("", name, uid, name:group,
// uid:gid, …) against the rootfs's /etc/passwd and /etc/group. Numeric
// IDs need no entry; names must exist.
func ResolveUser(rootfs, user string) (User, error) {
	u := User{Home: "/"}
	if user == "" {
		user = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(user, ":")
	passwd, perr := readInRoot(rootfs, "/etc/passwd")
	groupFile, gerr := readInRoot(rootfs, "/etc/group")
	username := ""
	if id, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(id)
		// A uid without a passwd entry runs with gid 0, as in Docker.
		if e, ok := findPasswd(passwd, "", uint32(id)); ok {
			u.GID, u.Home, username = e.gid, e.home, e.name
		}
	} else {
		if perr != nil {
			return u, fmt.Errorf("bundle: unable to find user %s: %w", userPart, perr)
		}
		e, ok := findPasswd(passwd, userPart, 0)
		if !ok {
			return u, fmt.Errorf("bundle: unable to find user %s: no matching entries in passwd file", userPart)
		}
		u.UID, u.GID, u.Home, username = e.uid, e.gid, e.home, e.name
	}
	if hasGroup {
		if id, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			if gerr != nil {
				return u, fmt.Errorf("bundle: unable to find group %s: %w", groupPart, gerr)
			}
			gid, ok := findGroup(groupFile, groupPart)
			if !ok {
				return u, fmt.Errorf("bundle: unable to find group %s: no matching entries in group file", groupPart)
			}
			u.GID = gid
		}
	}
	if username != "" && !hasGroup {
		u.AdditionalGids = memberOf(groupFile, username, u.GID)
	}
	return u, nil
}

// readInRoot reads a small file of the container's rootfs, resolving the
// path inside the root (RESOLVE_IN_ROOT semantics).
func readInRoot(rootfs, p string) ([]byte, error) {
	h, err := pathrs.OpenInRoot(rootfs, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

func findPasswd(data []byte, name string, uid uint32) (passwdEntry, bool) {
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 6 || strings.HasPrefix(f[0], "#") {
			continue
		}
		id, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		if (name != "" && f[0] == name) || (name == "" && uint32(id) == uid) {
			home := f[5]
			if home == "" {
				home = "/"
			}
			return passwdEntry{name: f[0], uid: uint32(id), gid: uint32(gid), home: home}, true
		}
	}
	return passwdEntry{}, false
}

func findGroup(data []byte, name string) (uint32, bool) {
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		if id, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			return uint32(id), true
		}
	}
	return 0, false
}

// memberOf lists the supplementary groups user belongs to (besides gid).
func memberOf(data []byte, user string, gid uint32) []uint32 {
	var out []uint32
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil || uint32(id) == gid {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if strings.TrimSpace(m) == user {
				out = append(out, uint32(id))
			}
		}
	}
	return out
}
