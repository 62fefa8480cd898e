package seccomp

import (
	"runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Audit architecture values (linux/audit.h) that the kernel reports in
// seccomp_data.arch.
const (
	auditArchX86_64 = 0xC000003E // EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
	auditArchI386   = 0x40000003 // EM_386 | __AUDIT_ARCH_LE
)

// x32SyscallBit is __X32_SYSCALL_BIT: the kernel reports x32 syscalls with
// the x86_64 audit arch and this bit set in the syscall number.
const x32SyscallBit = 0x40000000

// sysEntry maps a syscall name to its number on one architecture.
type sysEntry struct {
	name string
	nr   uint32
}

// archInfo describes an ABI the filter can tell apart at run time.
type archInfo struct {
	name  specs.Arch
	audit uint32
	// args32 is set for ABIs whose arguments libseccomp treats as 32 bits
	// wide (i386 and x32, whose longs and pointers are 32-bit): conditions
	// compare only the low half, as in runc and crun.
	args32 bool
	// x32 ABIs share the x86_64 audit arch and are told apart by
	// x32SyscallBit in the syscall number.
	x32   bool
	table []sysEntry // sorted by name
	// lo and hi bound the syscall numbers of the ABI: numbers above hi are
	// unknown to the table (newer than it) and get ENOSYS under a
	// denying default action.
	lo, hi uint32
}

var (
	archX86_64 = newArch(specs.ArchX86_64, auditArchX86_64, false, false, tableX86_64)
	archX86    = newArch(specs.ArchX86, auditArchI386, true, false, tableX86)
	archX32    = newArch(specs.ArchX32, auditArchX86_64, true, true, tableX32)
)

func newArch(name specs.Arch, audit uint32, args32, x32 bool, table []sysEntry) *archInfo {
	a := &archInfo{name: name, audit: audit, args32: args32, x32: x32, table: table}
	if x32 {
		a.lo = x32SyscallBit
	}
	for _, e := range table {
		a.hi = max(a.hi, e.nr)
	}
	return a
}

// lookup returns the number of syscall name on a, or false.
func (a *archInfo) lookup(name string) (uint32, bool) {
	i := sort.Search(len(a.table), func(i int) bool { return a.table[i].name >= name })
	if i < len(a.table) && a.table[i].name == name {
		return a.table[i].nr, true
	}
	return 0, false
}

// supportedArchs are the ABIs a filter compiled on this host can check,
// native first (it is tested first, being the most frequent). nil when
// the package has no tables for the host.
func supportedArchs() []*archInfo {
	if runtime.GOARCH == "amd64" {
		return []*archInfo{archX86_64, archX86, archX32}
	}
	return nil
}

// knownArchs are all the architecture names of the runtime-spec. Those
// of another CPU family than the host's are accepted and ignored: the
// kernel can never report them here, so libseccomp (and so runc and crun)
// adds a filter section that never runs.
var knownArchs = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
	specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
	specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
	specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
}
