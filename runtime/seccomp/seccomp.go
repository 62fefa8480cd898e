// Package seccomp compiles the linux.seccomp section of an OCI runtime
// config into a classic BPF program, in pure Go, and installs it.
//
// The compiled filter checks the audit architecture (native x86_64 plus
// the i386 and x32 compat ABIs), finds the syscall by a binary search over
// number ranges, evaluates the argument conditions of its rules in the
// spec's order, and returns the first matching rule's action or the
// default action. Syscalls newer than the built-in tables get ENOSYS when
// the default action denies, so that a newer libc falls back to an older
// syscall (clone3 to clone) as it does on an older kernel. See
// docs/seccomp.md for the design and its measurements.
package seccomp

import (
	"fmt"
	"slices"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// flagTSYNC is SECCOMP_FILTER_FLAG_TSYNC, which runc accepts in
// linux.seccomp.flags though the runtime-spec lists no constant for it.
const flagTSYNC specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// knownFlags maps the spec's flag names to seccomp(2) flags.
var knownFlags = []flagDef{
	{flagTSYNC, unix.SECCOMP_FILTER_FLAG_TSYNC},
	{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
	{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
	{specs.LinuxSeccompFlagWaitKillableRecv, unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
}

type flagDef struct {
	name  specs.LinuxSeccompFlag
	value uintptr
}

// Filter is a compiled seccomp profile, ready to Load.
type Filter struct {
	// Warnings are problems that did not stop compilation, such as syscall
	// names no table knows (skipped, as runc does). The runtime prints them.
	Warnings []string
	// ListenerPath and ListenerMetadata are linux.seccomp's, for
	// SendListenerFd when the filter uses SCMP_ACT_NOTIFY.
	ListenerPath     string
	ListenerMetadata string

	insns []unix.SockFilter
	prog  unix.SockFprog
	flags uintptr
}

// Len is the number of BPF instructions of the filter.
func (f *Filter) Len() int { return len(f.insns) }

// UsesNotify reports whether a rule uses SCMP_ACT_NOTIFY, so that Load
// returns a listener fd that must be sent to ListenerPath.
func (f *Filter) UsesNotify() bool { return f.flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 }

// cond is one argument condition of a rule.
type cond struct {
	index  uint
	op     specs.LinuxSeccompOperator
	value  uint64 // the datum; the mask for SCMP_CMP_MASKED_EQ
	value2 uint64 // the datum for SCMP_CMP_MASKED_EQ
}

// rule is an action taken when all its conditions hold.
type rule struct {
	action uint32
	conds  []cond
}

// archRules are the rules of one ABI, by syscall number, in spec order.
type archRules struct {
	arch *archInfo
	byNr map[uint32][]rule
}

func newArchRules(a *archInfo) *archRules {
	// Sized for a profile that names most syscalls, like Docker's.
	return &archRules{arch: a, byNr: make(map[uint32][]rule, len(a.table))}
}

// Compile checks s and compiles it into a Filter. Errors name the field
// at fault. A syscall name is used on each ABI of the filter that has it;
// a name that no architecture at all knows is skipped with a warning in
// Filter.Warnings, as runc does.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if s == nil {
		return nil, fmt.Errorf("seccomp: no linux.seccomp to compile")
	}
	supported := supportedArchs()
	if supported == nil {
		return nil, fmt.Errorf("seccomp: no syscall tables for this host's architecture")
	}
	f := &Filter{ListenerPath: s.ListenerPath, ListenerMetadata: s.ListenerMetadata}

	if s.DefaultAction == specs.ActNotify {
		// The runtime itself makes syscalls between Load and execve, before
		// anyone listens on the notify fd: they would block for ever.
		return nil, fmt.Errorf("seccomp: defaultAction: %s cannot be the default action", specs.ActNotify)
	}
	def, err := actionValue(s.DefaultAction, s.DefaultErrnoRet, "defaultAction", "defaultErrnoRet")
	if err != nil {
		return nil, err
	}

	// The native ABI is always filtered, as libseccomp's seccomp_init
	// adds it whatever the spec lists.
	sections := []*archRules{newArchRules(supported[0])}
	for i, name := range s.Architectures {
		if !slices.Contains(knownArchs, name) {
			return nil, fmt.Errorf("seccomp: architectures[%d]: unknown architecture %q", i, name)
		}
		for _, a := range supported {
			if a.name == name && !slices.ContainsFunc(sections, func(r *archRules) bool { return r.arch == a }) {
				sections = append(sections, newArchRules(a))
			}
		}
	}

	for i, fl := range s.Flags {
		k := slices.IndexFunc(knownFlags, func(k flagDef) bool { return k.name == fl })
		if k < 0 {
			return nil, fmt.Errorf("seccomp: flags[%d]: unknown flag %q", i, fl)
		}
		f.flags |= knownFlags[k].value
	}

	notify := false
	for i, sc := range s.Syscalls {
		field := fmt.Sprintf("syscalls[%d]", i)
		act, err := actionValue(sc.Action, sc.ErrnoRet, field+".action", field+".errnoRet")
		if err != nil {
			return nil, err
		}
		if sc.Action == specs.ActNotify {
			notify = true
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("seccomp: %s.names: no syscall names", field)
		}
		conds := make([]cond, 0, len(sc.Args))
		for j, arg := range sc.Args {
			afield := fmt.Sprintf("%s.args[%d]", field, j)
			if arg.Index > 5 {
				return nil, fmt.Errorf("seccomp: %s.index: %d is out of range 0-5", afield, arg.Index)
			}
			switch arg.Op {
			case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
				specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
			default:
				return nil, fmt.Errorf("seccomp: %s.op: unknown operator %q", afield, arg.Op)
			}
			conds = append(conds, cond{index: arg.Index, op: arg.Op, value: arg.Value, value2: arg.ValueTwo})
		}
		r := rule{action: act, conds: conds}
		for j, name := range sc.Names {
			if name == "" {
				return nil, fmt.Errorf("seccomp: %s.names[%d]: empty syscall name", field, j)
			}
			found := false
			for _, sec := range sections {
				if nr, ok := sec.arch.lookup(name); ok {
					sec.byNr[nr] = append(sec.byNr[nr], r)
					found = true
				}
			}
			if !found && !knownName(name) {
				f.Warnings = append(f.Warnings, fmt.Sprintf("seccomp: %s.names[%d]: unknown syscall %q skipped", field, j, name))
			}
		}
	}
	if notify {
		if s.ListenerPath == "" {
			return nil, fmt.Errorf("seccomp: listenerPath: required when a rule uses %s", specs.ActNotify)
		}
		f.flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	f.flags, f.Warnings = adjustFlags(f.flags, f.Warnings)

	insns, err := generate(def, sections)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	f.insns = insns
	f.prog = unix.SockFprog{Len: uint16(len(insns)), Filter: unsafe.SliceData(insns)}
	return f, nil
}

// knownName reports whether some architecture has a syscall called name:
// such names are silently left out where they do not exist, as
// libseccomp does; only names no table knows earn a warning.
func knownName(name string) bool {
	for _, a := range []*archInfo{archX86_64, archX86, archX32} {
		if _, ok := a.lookup(name); ok {
			return true
		}
	}
	_, ok := slices.BinarySearch(foreignNames, name)
	return ok
}

// adjustFlags makes the flags acceptable to seccomp(2): it drops those
// the kernel lacks (with a warning) and those that need a listener when
// there is none, and asks for TSYNC_ESRCH with TSYNC and a listener.
func adjustFlags(flags uintptr, warnings []string) (uintptr, []string) {
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		// WAIT_KILLABLE_RECV only changes how a listener waits.
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		// Without ESRCH the kernel cannot report both a listener fd and a
		// thread that failed to synchronise, so it refuses the pair.
		flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	have := kernelFlags()
	for _, k := range knownFlags {
		if flags&k.value != 0 && have&k.value == 0 {
			flags &^= k.value
			warnings = append(warnings, fmt.Sprintf("seccomp: flags: %s is not supported by this kernel; ignored", k.name))
		}
	}
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH != 0 && have&unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH == 0 {
		flags &^= unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		warnings = append(warnings, "seccomp: flags: SECCOMP_FILTER_FLAG_TSYNC with SCMP_ACT_NOTIFY needs Linux 5.7; TSYNC ignored")
	}
	return flags, warnings
}

// defaultErrno is the errno of SCMP_ACT_ERRNO and SCMP_ACT_TRACE when the
// spec gives none, as in runc.
const defaultErrno = uint(unix.EPERM)

// actionValue is the SECCOMP_RET_* value of an action.
func actionValue(act specs.LinuxSeccompAction, errnoRet *uint, field, errnoField string) (uint32, error) {
	if errnoRet != nil && act != specs.ActErrno && act != specs.ActTrace {
		return 0, fmt.Errorf("seccomp: %s: only valid with %s or %s, not %s", errnoField, specs.ActErrno, specs.ActTrace, act)
	}
	data := defaultErrno
	if errnoRet != nil {
		data = *errnoRet
		if data > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("seccomp: %s: %d does not fit the 16 bits of SECCOMP_RET_DATA", errnoField, data)
		}
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(data), nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(data), nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF, nil
	case "":
		return 0, fmt.Errorf("seccomp: %s: missing", field)
	}
	return 0, fmt.Errorf("seccomp: %s: unknown action %q", field, act)
}

// denies reports whether a default action refuses a syscall by itself, so
// that syscalls newer than the tables get ENOSYS instead. ALLOW and LOG
// let them run; TRACE leaves the decision to a tracer.
func denies(ret uint32) bool {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_TRACE:
		return false
	}
	return true
}
