package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16 // args[6] as u64, little-endian on x86
)

// badArchAction is returned for an ABI the filter does not cover, like
// libseccomp's default SCMP_FLTATR_ACT_BADARCH (kill), but it kills the
// whole process rather than one thread: a lone killed thread leaves a
// half-dead process behind.
const badArchAction = unix.SECCOMP_RET_KILL_PROCESS

// enosys is returned for syscalls newer than the tables under a denying
// default action.
const enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

// leaf is what happens to a range of syscall numbers.
type leaf struct {
	ret    uint32    // when rules and sub are nil: return this
	rules  []rule    // conditional rules, in order, then ret
	args32 bool      // compare only the low 32 bits of arguments
	sub    []segment // a nested search (the x32 half of x86_64)
}

func (l leaf) simple() bool { return l.rules == nil && l.sub == nil }

// segment is a leaf for syscall numbers from lo up to the next segment's lo.
type segment struct {
	lo   uint32
	leaf leaf
}

// generate lays out the whole program: an architecture dispatch, then
// per architecture a binary search over number ranges.
func generate(def uint32, sections []*archRules) ([]unix.SockFilter, error) {
	var x32 *archRules
	var top []*archRules
	for _, s := range sections {
		if s.arch.x32 {
			x32 = s
		} else {
			top = append(top, s)
		}
	}
	a := newAssembler()
	a.loadAbs(offArch)
	for _, s := range top {
		other := a.newLabel()
		a.jmp(unix.BPF_JEQ, s.arch.audit, fallThrough, other)
		a.loadAbs(offNr)
		segs := segments(s, def, s.arch.audit == auditArchX86_64)
		if s.arch.audit == auditArchX86_64 {
			// The upper half of the number space is the x32 ABI.
			var l leaf
			if x32 != nil {
				l.sub = segments(x32, def, false)
			} else {
				l.ret = badArchAction
			}
			segs = append(segs, segment{lo: x32SyscallBit, leaf: l})
		}
		emitTree(a, segs)
		a.bind(other)
	}
	a.ret(badArchAction)
	return a.assemble()
}

// segments partitions the numbers of an ABI, from arch.lo up to 2^32-1
// (or up to x32SyscallBit-1 when stopBeforeX32), into ranges with one
// leaf each, merging neighbours that return the same action.
func segments(s *archRules, def uint32, stopBeforeX32 bool) []segment {
	nrs := make([]uint32, 0, len(s.byNr))
	for nr := range s.byNr {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	var segs []segment
	add := func(lo uint32, l leaf) {
		if n := len(segs); n > 0 && l.simple() && segs[n-1].leaf.simple() && segs[n-1].leaf.ret == l.ret {
			return
		}
		segs = append(segs, segment{lo: lo, leaf: l})
	}
	next := s.arch.lo
	for _, nr := range nrs {
		if nr > next {
			add(next, leaf{ret: def})
		}
		add(nr, decide(s.byNr[nr], def, s.arch.args32))
		next = nr + 1
	}
	if next <= s.arch.hi {
		add(next, leaf{ret: def})
	}
	unknown := def
	if denies(def) {
		unknown = enosys
	}
	if !stopBeforeX32 || s.arch.hi+1 < x32SyscallBit {
		add(s.arch.hi+1, leaf{ret: unknown})
	}
	return segs
}

// decide simplifies the rules of one syscall into a leaf.
func decide(rules []rule, def uint32, args32 bool) leaf {
	// Rules after one without conditions can never match.
	if i := slices.IndexFunc(rules, func(r rule) bool { return len(r.conds) == 0 }); i >= 0 {
		rules = rules[:i+1]
	}
	// Trailing rules that do what the fallback does change nothing.
	for len(rules) > 0 && rules[len(rules)-1].action == def {
		rules = rules[:len(rules)-1]
	}
	if len(rules) == 0 {
		return leaf{ret: def}
	}
	if len(rules) == 1 && len(rules[0].conds) == 0 {
		return leaf{ret: rules[0].action}
	}
	if last := rules[len(rules)-1]; len(last.conds) == 0 {
		return leaf{rules: rules[:len(rules)-1], ret: last.action, args32: args32}
	}
	return leaf{rules: rules, ret: def, args32: args32}
}

// emitTree emits a balanced binary search over segs; A holds the number.
func emitTree(a *assembler, segs []segment) {
	if len(segs) == 1 {
		emitLeaf(a, segs[0].leaf)
		return
	}
	mid := len(segs) / 2
	right := a.newLabel()
	a.jmp(unix.BPF_JGE, segs[mid].lo, right, fallThrough)
	emitTree(a, segs[:mid])
	a.bind(right)
	emitTree(a, segs[mid:])
}

func emitLeaf(a *assembler, l leaf) {
	if l.sub != nil {
		emitTree(a, l.sub)
		return
	}
	for _, r := range l.rules {
		fail := a.newLabel()
		for _, c := range r.conds {
			emitCond(a, c, l.args32, fail)
		}
		a.ret(r.action)
		a.bind(fail)
	}
	a.ret(l.ret)
}

// emitCond emits code that falls through when c holds and jumps to fail
// otherwise. 64-bit arguments are compared as two 32-bit halves, the
// high half first; 32-bit ABIs compare the low halves only.
func emitCond(a *assembler, c cond, args32 bool, fail label) {
	lo, hi := offArgs+8*uint32(c.index), offArgs+8*uint32(c.index)+4
	v, m := c.value, c.value
	if c.op == specs.OpMaskedEqual {
		v = c.value2
	}
	if args32 {
		a.loadAbs(lo)
		emitCmp32(a, c.op, uint32(v), uint32(m), fail)
		return
	}
	pass := a.newLabel()
	vhi, vlo := uint32(v>>32), uint32(v)
	a.loadAbs(hi)
	switch c.op {
	case specs.OpEqualTo:
		a.jmp(unix.BPF_JEQ, vhi, fallThrough, fail)
	case specs.OpNotEqual:
		a.jmp(unix.BPF_JEQ, vhi, fallThrough, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.jmp(unix.BPF_JGT, vhi, pass, fallThrough)
		a.jmp(unix.BPF_JEQ, vhi, fallThrough, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		a.jmp(unix.BPF_JGT, vhi, fail, fallThrough)
		a.jmp(unix.BPF_JEQ, vhi, fallThrough, pass)
	case specs.OpMaskedEqual:
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, uint32(m>>32))
		a.jmp(unix.BPF_JEQ, vhi, fallThrough, fail)
	}
	// The high halves are equal (or, for NE, may be): decide on the low.
	a.loadAbs(lo)
	emitCmp32(a, c.op, vlo, uint32(m), fail)
	a.bind(pass)
}

// emitCmp32 compares A with v by op, falling through when true.
func emitCmp32(a *assembler, op specs.LinuxSeccompOperator, v, mask uint32, fail label) {
	switch op {
	case specs.OpEqualTo:
		a.jmp(unix.BPF_JEQ, v, fallThrough, fail)
	case specs.OpNotEqual:
		a.jmp(unix.BPF_JEQ, v, fail, fallThrough)
	case specs.OpGreaterThan:
		a.jmp(unix.BPF_JGT, v, fallThrough, fail)
	case specs.OpGreaterEqual:
		a.jmp(unix.BPF_JGE, v, fallThrough, fail)
	case specs.OpLessThan:
		a.jmp(unix.BPF_JGE, v, fail, fallThrough)
	case specs.OpLessEqual:
		a.jmp(unix.BPF_JGT, v, fail, fallThrough)
	case specs.OpMaskedEqual:
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, mask)
		a.jmp(unix.BPF_JEQ, v, fallThrough, fail)
	}
}
