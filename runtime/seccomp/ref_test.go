package seccomp

import (
	"encoding/binary"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], d.nr)
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF is a classic BPF interpreter for seccomp filters, written from
// the kernel's rules (forward jumps only, 32-bit loads from seccomp_data,
// a must-return program). It supports the instructions the compiler
// emits and fails on any other. It returns the filter's result and how
// many instructions ran.
func runBPF(prog []unix.SockFilter, d seccompData) (ret uint32, steps int, err error) {
	data := d.bytes()
	var A uint32
	for pc := 0; ; pc++ {
		if pc >= len(prog) {
			return 0, steps, fmt.Errorf("pc %d runs off the program (%d insns)", pc, len(prog))
		}
		in := prog[pc]
		steps++
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || in.K+4 > uint32(len(data)) {
				return 0, steps, fmt.Errorf("pc %d: bad load offset %d", pc, in.K)
			}
			A = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			A &= in.K
		case unix.BPF_RET | unix.BPF_K:
			return in.K, steps, nil
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var ok bool
			switch in.Code & 0xf0 {
			case unix.BPF_JEQ:
				ok = A == in.K
			case unix.BPF_JGT:
				ok = A > in.K
			case unix.BPF_JGE:
				ok = A >= in.K
			case unix.BPF_JSET:
				ok = A&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		default:
			return 0, steps, fmt.Errorf("pc %d: unsupported instruction %#x", pc, in.Code)
		}
	}
}

// refActions maps actions to SECCOMP_RET_* values, independently of the
// compiler's table.
func refAction(act specs.LinuxSeccompAction, errnoRet *uint) uint32 {
	e := uint32(unix.EPERM)
	if errnoRet != nil {
		e = uint32(*errnoRet)
	}
	return map[specs.LinuxSeccompAction]uint32{
		specs.ActKill: 0, specs.ActKillThread: 0, specs.ActKillProcess: 0x80000000,
		specs.ActTrap: 0x00030000, specs.ActErrno: 0x00050000 | e, specs.ActTrace: 0x7ff00000 | e,
		specs.ActAllow: 0x7fff0000, specs.ActLog: 0x7ffc0000, specs.ActNotify: 0x7fc00000,
	}[act]
}

// refEval interprets a profile directly: the meaning the compiled filter
// must have. It uses the syscall tables (names to numbers) and nothing
// else of the compiler.
func refEval(s *specs.LinuxSeccomp, d seccompData) uint32 {
	const kill = 0x80000000
	has := func(a specs.Arch) bool { return a == specs.ArchX86_64 || slices.Contains(s.Architectures, a) }
	var abi *archInfo
	switch {
	case d.arch == 0xC000003E && d.nr&0x40000000 == 0:
		abi = archX86_64
	case d.arch == 0xC000003E && has(specs.ArchX32):
		abi = archX32
	case d.arch == 0x40000003 && has(specs.ArchX86):
		abi = archX86
	default:
		return kill
	}
	for _, sc := range s.Syscalls {
		for _, name := range sc.Names {
			if nr, ok := abi.lookup(name); !ok || nr != d.nr {
				continue
			}
			if refMatch(sc.Args, d, abi == archX86 || abi == archX32) { // 32-bit longs
				return refAction(sc.Action, sc.ErrnoRet)
			}
		}
	}
	def := refAction(s.DefaultAction, s.DefaultErrnoRet)
	var hi uint32
	for _, e := range abi.table {
		hi = max(hi, e.nr)
	}
	if d.nr > hi && s.DefaultAction != specs.ActAllow && s.DefaultAction != specs.ActLog && s.DefaultAction != specs.ActTrace {
		return 0x00050000 | uint32(unix.ENOSYS)
	}
	return def
}

func refMatch(args []specs.LinuxSeccompArg, d seccompData, bits32 bool) bool {
	for _, a := range args {
		v, x, y := d.args[a.Index], a.Value, a.ValueTwo
		if bits32 {
			v, x, y = uint64(uint32(v)), uint64(uint32(x)), uint64(uint32(y))
		}
		var ok bool
		switch a.Op {
		case specs.OpNotEqual:
			ok = v != x
		case specs.OpLessThan:
			ok = v < x
		case specs.OpLessEqual:
			ok = v <= x
		case specs.OpEqualTo:
			ok = v == x
		case specs.OpGreaterEqual:
			ok = v >= x
		case specs.OpGreaterThan:
			ok = v > x
		case specs.OpMaskedEqual:
			ok = v&x == y
		}
		if !ok {
			return false
		}
	}
	return true
}
