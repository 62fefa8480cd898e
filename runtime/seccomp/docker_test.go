package seccomp

import (
	"math/rand/v2"
	"reflect"
	"testing"

	dockerseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default bounding set (no CAP_SYS_ADMIN).
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func dockerProfile(t testing.TB, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	s, err := DockerDefault(caps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFromDockerProfile(t *testing.T) {
	p := dockerseccomp.DefaultProfile()
	before := len(p.Syscalls)
	s, err := FromDockerProfile(p, dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Syscalls) != before || len(p.LinuxSeccomp.Syscalls) != 0 || len(p.Architectures) != 0 {
		t.Fatal("FromDockerProfile modified its input")
	}
	if !reflect.DeepEqual(s.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
		t.Fatalf("architectures = %v", s.Architectures)
	}
	has := func(s *specs.LinuxSeccomp, name string) bool {
		for _, sc := range s.Syscalls {
			for _, n := range sc.Names {
				if n == name && sc.Action == specs.ActAllow {
					return true
				}
			}
		}
		return false
	}
	// mount and unshare come with CAP_SYS_ADMIN only.
	if has(s, "mount") || has(s, "unshare") {
		t.Fatal("mount allowed without CAP_SYS_ADMIN")
	}
	admin := dockerProfile(t, append(append([]string{}, dockerCaps...), "CAP_SYS_ADMIN"))
	if !has(admin, "mount") || !has(admin, "unshare") {
		t.Fatal("mount not allowed with CAP_SYS_ADMIN")
	}
}

// TestDockerDefaultProfile checks the compiled Docker profile against the
// reference for every syscall number of every ABI (and some beyond).
func TestDockerDefaultProfile(t *testing.T) {
	for _, caps := range [][]string{dockerCaps, append(append([]string{}, dockerCaps...), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")} {
		s := dockerProfile(t, caps)
		f := mustCompile(t, s)
		t.Logf("%d caps: %d instructions", len(caps), f.Len())
		if len(f.Warnings) != 0 {
			t.Errorf("warnings: %q", f.Warnings)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for _, a := range []*archInfo{archX86_64, archX86, archX32} {
			for n := a.lo; n <= a.hi+3; n++ {
				for k := 0; k < 6; k++ {
					d := seccompData{nr: n, arch: a.audit}
					for j := range d.args {
						d.args[j] = interesting[rng.IntN(len(interesting))]
						if k%2 == 0 {
							d.args[j] = rng.Uint64() >> rng.UintN(64)
						}
					}
					agree(t, f, s, d)
				}
			}
		}
		// clone3 must be ENOSYS without CAP_SYS_ADMIN (glibc falls back).
		got, _, _ := runBPF(f.insns, x86_64(nr(t, archX86_64, "clone3")))
		t.Logf("clone3 -> %#x", got)
	}
}

// hotSyscalls are the syscalls whose cost per call the docs report.
var hotSyscalls = []string{"read", "write", "futex", "epoll_wait", "openat", "epoll_pwait", "close", "mmap", "getpid"}

// maxHotSteps is the budget per hot syscall: below libseccomp's binary
// tree for the same profile (see docs/seccomp.md).
const maxHotSteps = 14

func TestInstructionCounts(t *testing.T) {
	s := dockerProfile(t, dockerCaps)
	f := mustCompile(t, s)
	for _, name := range hotSyscalls {
		d := x86_64(nr(t, archX86_64, name), 3, 0x7fff0000, 4096)
		ret, steps, err := runBPF(f.insns, d)
		if err != nil {
			t.Fatal(err)
		}
		if ret != unix.SECCOMP_RET_ALLOW {
			t.Fatalf("%s not allowed: %#x", name, ret)
		}
		t.Logf("%-12s %2d instructions", name, steps)
		if steps > maxHotSteps {
			t.Errorf("%s runs %d instructions, budget %d", name, steps, maxHotSteps)
		}
	}
	worst, total := 0, 0
	for _, e := range archX86_64.table {
		_, steps, err := runBPF(f.insns, x86_64(e.nr))
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, steps)
		total += steps
	}
	t.Logf("all x86_64 syscalls: worst %d, mean %.1f instructions; program %d instructions", worst, float64(total)/float64(len(archX86_64.table)), f.Len())
}

func BenchmarkCompileDockerDefault(b *testing.B) {
	s := dockerProfile(b, dockerCaps)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDockerDefaultConvert measures turning Docker's profile into
// linux.seccomp (what the engine does before Compile).
func BenchmarkDockerDefaultConvert(b *testing.B) {
	for b.Loop() {
		if _, err := DockerDefault(dockerCaps); err != nil {
			b.Fatal(err)
		}
	}
}
