package seccomp

import (
	"math/rand/v2"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

func mustCompile(t testing.TB, s *specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return f
}

// expect runs the filter on d and checks it returns want, which must
// also be what the reference interpretation says.
func expect(t testing.TB, f *Filter, s *specs.LinuxSeccomp, d seccompData, want uint32) {
	t.Helper()
	got, _, err := runBPF(f.insns, d)
	if err != nil {
		t.Fatalf("run %+v: %v", d, err)
	}
	if ref := refEval(s, d); ref != want {
		t.Fatalf("reference gives %#x for %+v, test expects %#x", ref, d, want)
	}
	if got != want {
		t.Fatalf("filter gives %#x for %+v, want %#x", got, d, want)
	}
}

// agree checks the filter against the reference on d.
func agree(t testing.TB, f *Filter, s *specs.LinuxSeccomp, d seccompData) {
	t.Helper()
	got, _, err := runBPF(f.insns, d)
	if err != nil {
		t.Fatalf("run %+v: %v", d, err)
	}
	if want := refEval(s, d); got != want {
		t.Fatalf("filter gives %#x for nr=%#x arch=%#x args=%#x, reference %#x", got, d.nr, d.arch, d.args, want)
	}
}

func nr(t testing.TB, a *archInfo, name string) uint32 {
	t.Helper()
	n, ok := a.lookup(name)
	if !ok {
		t.Fatalf("%s has no %s", a.name, name)
	}
	return n
}

func x86_64(n uint32, args ...uint64) seccompData {
	d := seccompData{nr: n, arch: auditArchX86_64}
	copy(d.args[:], args)
	return d
}

func TestActions(t *testing.T) {
	cases := []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActErrno, nil, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{specs.ActErrno, uintp(uint(unix.EXDEV)), unix.SECCOMP_RET_ERRNO | uint32(unix.EXDEV)},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{specs.ActTrace, uintp(7), unix.SECCOMP_RET_TRACE | 7},
		{specs.ActAllow, nil, unix.SECCOMP_RET_ALLOW},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
		{specs.ActNotify, nil, unix.SECCOMP_RET_USER_NOTIF},
	}
	for _, c := range cases {
		t.Run(string(c.act), func(t *testing.T) {
			// As a rule's action, under an allowing default.
			s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x",
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: c.act, ErrnoRet: c.errno}}}
			f := mustCompile(t, s)
			expect(t, f, s, x86_64(nr(t, archX86_64, "getcwd")), c.want)
			expect(t, f, s, x86_64(nr(t, archX86_64, "read")), unix.SECCOMP_RET_ALLOW)
			if c.act == specs.ActNotify {
				if !f.UsesNotify() {
					t.Fatal("UsesNotify() = false")
				}
				return
			}
			// As the default action, with read allowed.
			s = &specs.LinuxSeccomp{DefaultAction: c.act, DefaultErrnoRet: c.errno,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
			f = mustCompile(t, s)
			expect(t, f, s, x86_64(nr(t, archX86_64, "getcwd")), c.want)
			expect(t, f, s, x86_64(nr(t, archX86_64, "read")), unix.SECCOMP_RET_ALLOW)
			if f.UsesNotify() {
				t.Fatal("UsesNotify() = true without a notify rule")
			}
		})
	}
}

// interesting are argument values at the edges of the two 32-bit halves.
var interesting = []uint64{0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x100000000,
	0x100000001, 0x1ffffffff, 0xffffffff00000000, 0x8000000000000000, 0xfffffffffffffffe, 0xffffffffffffffff}

func TestOperators(t *testing.T) {
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	for _, op := range ops {
		for _, v := range interesting {
			v2 := v & 0xff0000ff00ff
			s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: 3, Op: op, Value: v, ValueTwo: v2}}}}}
			f := mustCompile(t, s)
			for _, arg := range interesting {
				for _, d := range []seccompData{
					x86_64(nr(t, archX86_64, "personality")),
					{nr: nr(t, archX86, "personality"), arch: auditArchI386},
					{nr: nr(t, archX32, "personality"), arch: auditArchX86_64},
				} {
					d.args[3] = arg
					agree(t, f, s, d)
				}
			}
			// The reference is checked itself on one case per op.
			d := x86_64(nr(t, archX86_64, "personality"), 0, 0, 0, v)
			want := map[specs.LinuxSeccompOperator]bool{specs.OpNotEqual: false, specs.OpLessThan: false,
				specs.OpLessEqual: true, specs.OpEqualTo: true, specs.OpGreaterEqual: true,
				specs.OpGreaterThan: false, specs.OpMaskedEqual: v == v2}[op] // the argument is the mask
			if got := refEval(s, d) == unix.SECCOMP_RET_ALLOW; got != want {
				t.Fatalf("reference %s %#x on itself = %v", op, v, got)
			}
		}
	}
}

func TestConditionsAndRules(t *testing.T) {
	p := func(args ...uint64) seccompData { return x86_64(nr(t, archX86_64, "personality"), args...) }
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		// AND within a rule, on one argument and across arguments.
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpGreaterEqual, Value: 10}, {Index: 0, Op: specs.OpLessThan, Value: 20},
			{Index: 1, Op: specs.OpEqualTo, Value: 1}}},
		// OR across rules; the first that matches wins.
		{Names: []string{"personality"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpEqualTo, Value: 15}}},
		{Names: []string{"personality"}, Action: specs.ActLog, Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpEqualTo, Value: 30}}},
		{Names: []string{"personality"}, Action: specs.ActKillProcess},
		// Never reached: the rule before has no condition.
		{Names: []string{"personality"}, Action: specs.ActAllow},
	}}
	f := mustCompile(t, s)
	expect(t, f, s, p(10, 1), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, p(19, 1), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, p(15, 1), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, p(15, 0), unix.SECCOMP_RET_TRAP)
	expect(t, f, s, p(20, 1), unix.SECCOMP_RET_KILL_PROCESS)
	expect(t, f, s, p(30, 1), unix.SECCOMP_RET_LOG)
	expect(t, f, s, p(9, 1), unix.SECCOMP_RET_KILL_PROCESS)
	expect(t, f, s, p(1<<32|15, 1), unix.SECCOMP_RET_KILL_PROCESS)
	expect(t, f, s, x86_64(nr(t, archX86_64, "read")), unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
}

func TestArchitectures(t *testing.T) {
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	base := func(archs ...specs.Arch) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: archs, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid", "socketcall", "rt_sigaction"}, Action: specs.ActAllow}}}
	}
	i386 := func(n uint32) seccompData { return seccompData{nr: n, arch: auditArchI386} }
	x32 := func(n uint32) seccompData { return seccompData{nr: n, arch: auditArchX86_64} }

	// Native only: the compat ABIs are killed, whatever their syscall.
	s := base()
	f := mustCompile(t, s)
	expect(t, f, s, x86_64(nr(t, archX86_64, "getppid")), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, x86_64(nr(t, archX86_64, "rt_sigaction")), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, x86_64(nr(t, archX86_64, "getpid")), eperm)
	expect(t, f, s, i386(nr(t, archX86, "getppid")), unix.SECCOMP_RET_KILL_PROCESS)
	expect(t, f, s, x32(nr(t, archX32, "getppid")), unix.SECCOMP_RET_KILL_PROCESS)
	expect(t, f, s, seccompData{nr: 1, arch: 0xC00000B7}, unix.SECCOMP_RET_KILL_PROCESS) // aarch64

	// All three x86 ABIs; foreign ones are accepted and change nothing.
	s = base(specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchS390X)
	f = mustCompile(t, s)
	expect(t, f, s, i386(nr(t, archX86, "getppid")), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, i386(nr(t, archX86, "socketcall")), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, i386(nr(t, archX86, "getpid")), eperm)
	expect(t, f, s, x32(nr(t, archX32, "getppid")), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, x32(nr(t, archX32, "rt_sigaction")), unix.SECCOMP_RET_ALLOW)
	// x32's number 13 (x86_64's rt_sigaction) is not x32's rt_sigaction.
	expect(t, f, s, x32(x32SyscallBit|13), eperm)
	expect(t, f, s, x32(nr(t, archX32, "getpid")), eperm)
	expect(t, f, s, seccompData{nr: 1, arch: 0xC00000B7}, unix.SECCOMP_RET_KILL_PROCESS)
	if len(f.Warnings) != 0 {
		t.Fatalf("warnings: %v", f.Warnings)
	}

	// Only a compat ABI listed: native is still filtered.
	s = base(specs.ArchX86)
	f = mustCompile(t, s)
	expect(t, f, s, x86_64(nr(t, archX86_64, "getppid")), unix.SECCOMP_RET_ALLOW)
	expect(t, f, s, i386(nr(t, archX86, "getppid")), unix.SECCOMP_RET_ALLOW)
}

func TestUnknownSyscallNumbers(t *testing.T) {
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	for _, def := range []specs.LinuxSeccompAction{specs.ActErrno, specs.ActKillProcess, specs.ActTrap, specs.ActAllow, specs.ActLog} {
		s := &specs.LinuxSeccomp{DefaultAction: def, Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uintp(5)}}}
		f := mustCompile(t, s)
		want := refAction(def, nil)
		if denies(want) {
			want = enosys
		}
		for _, d := range []seccompData{
			x86_64(archX86_64.hi + 1), x86_64(1000), x86_64(x32SyscallBit - 1),
			{nr: archX86.hi + 1, arch: auditArchI386}, {nr: 0xffffffff, arch: auditArchI386},
			{nr: archX32.hi + 1, arch: auditArchX86_64}, {nr: 0xffffffff, arch: auditArchX86_64},
		} {
			expect(t, f, s, d, want)
		}
		// The highest known syscall still gets the default.
		expect(t, f, s, x86_64(archX86_64.hi), refAction(def, nil))
	}
}

func TestUnknownNamesWarn(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read", "no_such_syscall"}, Action: specs.ActErrno},
		{Names: []string{"socketcall"}, Action: specs.ActErrno},            // i386 only: not in the filter, but known
		{Names: []string{"recv", "riscv_hwprobe"}, Action: specs.ActErrno}, // other CPUs only
	}}
	f := mustCompile(t, s)
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], `"no_such_syscall"`) || !strings.Contains(f.Warnings[0], "syscalls[0].names[1]") {
		t.Fatalf("warnings = %q", f.Warnings)
	}
	expect(t, f, s, x86_64(0), unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
}

func TestCompileErrors(t *testing.T) {
	ok := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}}}}}
	}
	cases := []struct {
		name string
		mod  func(*specs.LinuxSeccomp)
		want string
	}{
		{"default action", func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_NOPE" }, `defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{"missing default", func(s *specs.LinuxSeccomp) { s.DefaultAction = "" }, "defaultAction: missing"},
		{"notify default", func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActNotify }, "defaultAction: SCMP_ACT_NOTIFY cannot"},
		{"default errno without errno", func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActAllow; s.DefaultErrnoRet = uintp(1) }, "defaultErrnoRet: only valid"},
		{"errno too big", func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uintp(1 << 16) }, "defaultErrnoRet: 65536 does not fit"},
		{"rule action", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_X" }, `syscalls[0].action: unknown action "SCMP_ACT_X"`},
		{"rule errno", func(s *specs.LinuxSeccomp) { s.Syscalls[0].ErrnoRet = uintp(1) }, "syscalls[0].errnoRet: only valid"},
		{"arch", func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{specs.ArchX86, "SCMP_ARCH_Z80"} }, `architectures[1]: unknown architecture "SCMP_ARCH_Z80"`},
		{"op", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Op = "SCMP_CMP_LIKE" }, `syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"`},
		{"empty op", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Op = "" }, `syscalls[0].args[0].op: unknown operator ""`},
		{"index", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Index = 6 }, "syscalls[0].args[0].index: 6 is out of range"},
		{"no names", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = nil }, "syscalls[0].names: no syscall names"},
		{"empty name", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = []string{"read", ""} }, "syscalls[0].names[1]: empty"},
		{"flag", func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NOPE"} }, `flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE"`},
		{"notify without listener", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActNotify }, "listenerPath: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok()
			if _, err := Compile(s); err != nil {
				t.Fatalf("base profile: %v", err)
			}
			c.mod(s)
			_, err := Compile(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Compile error = %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := Compile(nil); err == nil {
		t.Fatal("Compile(nil) succeeded")
	}
}

func TestFlags(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x",
		Flags: []specs.LinuxSeccompFlag{flagTSYNC, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}}
	f := mustCompile(t, s)
	// No listener: WAIT_KILLABLE_RECV would make seccomp(2) fail.
	want := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW)
	if f.flags != want&kernelFlags() {
		t.Fatalf("flags = %#x, want %#x", f.flags, want)
	}
	s.Syscalls = []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}
	f = mustCompile(t, s)
	want |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	if kernelFlags()&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 && f.flags != want {
		t.Fatalf("flags = %#x, want %#x (warnings %q)", f.flags, want, f.Warnings)
	}
}

func TestFeatures(t *testing.T) {
	f := Features()
	if f.Enabled == nil || !*f.Enabled {
		t.Fatal("seccomp not enabled on amd64")
	}
	if len(f.Actions) != 9 || len(f.Operators) != 7 || len(f.KnownFlags) != 4 {
		t.Fatalf("features = %+v", f)
	}
	for _, a := range f.Actions {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x", Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.LinuxSeccompAction(a)}}}
		if _, err := Compile(s); err != nil {
			t.Errorf("advertised action %s: %v", a, err)
		}
	}
	for _, op := range f.Operators {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: specs.LinuxSeccompOperator(op)}}}}}
		if _, err := Compile(s); err != nil {
			t.Errorf("advertised operator %s: %v", op, err)
		}
	}
	for _, a := range f.Archs {
		if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.Arch(a)}}); err != nil {
			t.Errorf("advertised arch %s: %v", a, err)
		}
	}
	// This kernel (>= 5.19) has every flag.
	if len(f.SupportedFlags) != 4 {
		t.Errorf("supported flags = %v", f.SupportedFlags)
	}
}

// TestLongJumps makes a filter whose jumps exceed the 255 instructions a
// conditional jump can skip, so the assembler needs trampolines.
func TestLongJumps(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	var names []string
	for i, e := range archX86_64.table {
		if i%3 == 0 {
			names = append(names, e.name)
		}
	}
	for i, n := range names {
		var args []specs.LinuxSeccompArg
		for j := 0; j < 1+i%4; j++ {
			args = append(args, specs.LinuxSeccompArg{Index: uint(j), Op: specs.OpGreaterThan, Value: uint64(i) << (8 * j)})
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActAllow, Args: args})
	}
	f := mustCompile(t, s)
	if f.Len() < 1000 {
		t.Fatalf("only %d instructions: the test needs long jumps", f.Len())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, e := range archX86_64.table {
		for k := 0; k < 4; k++ {
			d := x86_64(e.nr)
			for j := range d.args {
				d.args[j] = rng.Uint64() >> (rng.UintN(64))
			}
			agree(t, f, s, d)
		}
	}
}

func TestAssemblerTrampolines(t *testing.T) {
	// A near jump across a jump whose both targets are far.
	a := newAssembler()
	far1, far2, near := a.newLabel(), a.newLabel(), a.newLabel()
	a.loadAbs(offNr)
	a.jmp(unix.BPF_JEQ, 2, near, fallThrough)
	a.jmp(unix.BPF_JEQ, 1, far1, far2)
	a.bind(near)
	for i := 0; i < 300; i++ {
		a.ret(100)
	}
	a.bind(far1)
	a.ret(1)
	a.bind(far2)
	a.ret(2)
	prog, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	for nrv, want := range map[uint32]uint32{1: 1, 2: 100, 3: 2} {
		if got, _, err := runBPF(prog, seccompData{nr: nrv}); err != nil || got != want {
			t.Fatalf("nr %d: got %d, %v; want %d", nrv, got, err, want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	for _, e := range archX86_64.table {
		args := []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 1, Op: specs.OpEqualTo, Value: 2},
			{Index: 2, Op: specs.OpEqualTo, Value: 3}, {Index: 3, Op: specs.OpEqualTo, Value: 4}}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{e.name}, Action: specs.ActAllow, Args: args})
	}
	_, err := Compile(s)
	if err == nil || !strings.Contains(err.Error(), "kernel's limit of 4096") {
		t.Fatalf("Compile error = %v, want the instruction limit", err)
	}
}
