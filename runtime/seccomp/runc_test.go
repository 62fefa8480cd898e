package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The filter that runc 1.1.5 with libseccomp 2.5.4 (Debian 12) installs
// for Docker's default profile, read from a container with
// PTRACE_SECCOMP_GET_FILTER, and the profile it was given (moby/profiles
// v0.3.0 for Docker's default capabilities on amd64). See docs/seccomp.md.
const (
	runcFilterFile  = "testdata/runc-1.1.5-docker-default.bpf"
	runcProfileFile = "testdata/docker-default-amd64.json"
	// libseccompLast is the last x86 syscall number libseccomp 2.5.4
	// knows (futex_requeue); runc returns ENOSYS above it.
	libseccompLast = 456
	// uretprobe (x86_64 335, Linux 6.11) is newer than libseccomp 2.5.4.
	uretprobeNr = 335
)

func loadRuncFilter(t testing.TB) ([]unix.SockFilter, *specs.LinuxSeccomp) {
	t.Helper()
	raw, err := os.ReadFile(runcFilterFile)
	if err != nil {
		t.Fatal(err)
	}
	prog := make([]unix.SockFilter, 0, len(raw)/8)
	for i := 0; i+8 <= len(raw); i += 8 {
		prog = append(prog, unix.SockFilter{Code: binary.LittleEndian.Uint16(raw[i:]), Jt: raw[i+2], Jf: raw[i+3], K: binary.LittleEndian.Uint32(raw[i+4:])})
	}
	js, err := os.ReadFile(runcProfileFile)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal(js, &s); err != nil {
		t.Fatal(err)
	}
	return prog, &s
}

// TestAgainstRuncLibseccomp runs our filter and runc's side by side on
// every syscall both know, with the argument values the profile tests,
// and compares results and instruction counts.
func TestAgainstRuncLibseccomp(t *testing.T) {
	runc, s := loadRuncFilter(t)
	f := mustCompile(t, s)
	argVals := []uint64{0, 1, 2, 3, 8, 10, 16, 17, 40, 44, 0xffffffff, 0x7E020000, 0x20000000, 1 << 40, 1<<40 | 2}
	for _, a := range []*archInfo{archX86_64, archX86, archX32} {
		for n := a.lo; n <= a.lo+libseccompLast; n++ {
			if a == archX86_64 && n == uretprobeNr {
				continue
			}
			for _, v := range argVals {
				d := seccompData{nr: n, arch: a.audit, args: [6]uint64{v, v, v, 0, 0, 0}}
				want, _, err := runBPF(runc, d)
				if err != nil {
					t.Fatalf("runc's filter: %v", err)
				}
				got, _, err := runBPF(f.insns, d)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s nr %#x args %#x: ours %#x, runc/libseccomp %#x", a.name, n, v, got, want)
				}
			}
		}
	}
	// An ABI missing from the filter is killed by both (libseccomp kills
	// the thread, we the process).
	d := seccompData{nr: 1, arch: 0xC00000B7}
	want, _, _ := runBPF(runc, d)
	got, _, _ := runBPF(f.insns, d)
	if want != unix.SECCOMP_RET_KILL_THREAD || got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("foreign arch: ours %#x, runc %#x", got, want)
	}

	for _, name := range hotSyscalls {
		d := x86_64(nr(t, archX86_64, name), 3)
		_, theirs, _ := runBPF(runc, d)
		_, ours, _ := runBPF(f.insns, d)
		t.Logf("%-12s ours %2d  runc+libseccomp %3d instructions", name, ours, theirs)
		if ours > theirs {
			t.Errorf("%s: %d instructions, runc's filter %d", name, ours, theirs)
		}
	}
	t.Logf("program: ours %d, runc's %d instructions", f.Len(), len(runc))
}
