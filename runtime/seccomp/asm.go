package seccomp

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// maxInsns is BPF_MAXINSNS: the kernel refuses longer filters.
const maxInsns = 4096

// label names a position in a program under construction. Label 0 means
// "the next instruction" (fall through).
type label int

const fallThrough label = 0

// asmInsn is an instruction whose jump targets are still labels.
type asmInsn struct {
	code   uint16
	k      uint32
	jt, jf label // conditional jumps
}

// assembler builds a classic BPF program from straight-line code with
// forward conditional jumps to labels. Conditional jumps reach only 255 instructions;
// assemble adds BPF_JA trampolines for the few that go further.
type assembler struct {
	insns  []asmInsn
	labels []int // label -> index into insns where it is bound; -1 unbound
}

func newAssembler() *assembler {
	// Capacities fit Docker's default profile without regrowth.
	return &assembler{insns: make([]asmInsn, 0, 1024), labels: append(make([]int, 0, 512), -1)} // label 0 is fallThrough
}

func (a *assembler) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// bind places l before the next instruction emitted.
func (a *assembler) bind(l label) { a.labels[l] = len(a.insns) }

func (a *assembler) stmt(code uint16, k uint32) {
	a.insns = append(a.insns, asmInsn{code: code, k: k})
}

func (a *assembler) loadAbs(off uint32) { a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

func (a *assembler) ret(k uint32) { a.stmt(unix.BPF_RET|unix.BPF_K, k) }

// jmp emits a conditional jump comparing A with k (BPF_JEQ, BPF_JGT,
// BPF_JGE, BPF_JSET).
func (a *assembler) jmp(op uint16, k uint32, jt, jf label) {
	a.insns = append(a.insns, asmInsn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

func isCondJump(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code&0xf0 != unix.BPF_JA
}

// assemble resolves labels. Each conditional jump i gets tramp[i] BPF_JA
// slots right after it for targets beyond 255; the slots only grow, so
// the loop ends.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	n := len(a.insns)
	tramp := make([]int, n)
	pos := make([]int, n+1)
	for {
		for i := 0; i < n; i++ {
			pos[i+1] = pos[i] + 1 + tramp[i]
		}
		changed := false
		for i, in := range a.insns {
			if !isCondJump(in.code) {
				continue
			}
			need := 0
			tt, tf := a.target(in.jt, i, pos), a.target(in.jf, i, pos)
			if tt-(pos[i]+1) > 255 {
				need++
			}
			if tf-(pos[i]+1) > 255 && tf != tt {
				need++
			}
			if need > tramp[i] {
				tramp[i] = need
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	total := pos[n]
	if total > maxInsns {
		return nil, fmt.Errorf("filter has %d instructions, more than the kernel's limit of %d", total, maxInsns)
	}
	out := make([]unix.SockFilter, 0, total)
	for i, in := range a.insns {
		switch {
		case isCondJump(in.code):
			tt, tf := a.target(in.jt, i, pos), a.target(in.jf, i, pos)
			var slots []int // targets of the trampolines
			off := func(t int) (uint8, error) {
				d := t - (pos[i] + 1)
				if d < 0 {
					return 0, errors.New("backward jump")
				}
				if d <= 255 {
					// Near targets lie past the slots: d counts them.
					return uint8(d), nil
				}
				for j, s := range slots {
					if s == t {
						return uint8(j), nil
					}
				}
				slots = append(slots, t)
				return uint8(len(slots) - 1), nil
			}
			jt, err := off(tt)
			if err != nil {
				return nil, err
			}
			jf, err := off(tf)
			if err != nil {
				return nil, err
			}
			if len(slots) > tramp[i] {
				return nil, fmt.Errorf("internal error: trampolines at %d", i)
			}
			out = append(out, unix.SockFilter{Code: in.code, Jt: jt, Jf: jf, K: in.k})
			for j := 0; j < tramp[i]; j++ {
				t := pos[i+1] // unused slot: jump over nothing
				if j < len(slots) {
					t = slots[j]
				}
				here := pos[i] + 1 + j
				out = append(out, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(t - (here + 1))})
			}
		default:
			out = append(out, unix.SockFilter{Code: in.code, K: in.k})
		}
	}
	if len(out) != total {
		return nil, fmt.Errorf("internal error: assembled %d instructions, laid out %d", len(out), total)
	}
	return out, nil
}

// target is the position l refers to from instruction i.
func (a *assembler) target(l label, i int, pos []int) int {
	if l == fallThrough {
		return pos[i+1]
	}
	return pos[a.labels[l]]
}
