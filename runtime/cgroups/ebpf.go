package cgroups

// A minimal eBPF assembler and loader, just enough for the cgroup v2 device
// filter (devices_bpf.go). It replaces github.com/cilium/ebpf, which pulled
// go/parser, debug/dwarf, crypto, math/big, compress/flate and more into
// capsa-runtime: a bigger binary that starts slower, for a program of a few
// dozen instructions and five bpf(2) commands. The encodings and the
// bpf_attr layouts are those of the kernel's include/uapi/linux/bpf.h.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpfInsn is struct bpf_insn, in the host's layout and byte order, as the
// kernel reads it.
type bpfInsn struct {
	code uint8 // class | operation | source (BPF_K immediate, BPF_X register)
	regs uint8 // dst_reg:4, src_reg:4 (bit fields: see bpfRegs)
	off  int16 // memory offset or relative jump
	imm  int32
}

type bpfReg uint8

// r0 holds the return value, r1 the context (struct bpf_cgroup_dev_ctx for
// the device filter); r0-r5 are scratch registers, r6-r9 callee-saved.
const (
	r0 bpfReg = iota
	r1
	r2
	r3
	r4
	r5
	r6
)

// nativeLittleEndian: the bit fields, like off and imm, follow the host's
// byte order.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// bpfRegs packs dst_reg:4 and src_reg:4. C compilers put the first bit
// field in the low nibble on little-endian hosts, in the high one on
// big-endian hosts.
func bpfRegs(dst, src bpfReg) uint8 {
	if nativeLittleEndian {
		return uint8(dst&0xf) | uint8(src&0xf)<<4
	}
	return uint8(dst&0xf)<<4 | uint8(src&0xf)
}

// asmInsn is an instruction of a program being written: its encoding and,
// for a jump, the label of its target, which assemble turns into off.
type asmInsn struct {
	bpfInsn
	label  string // jumps to label land on this instruction
	target string // this is a jump to target
}

// withLabel names i as the target of jumps to label.
func (i asmInsn) withLabel(label string) asmInsn {
	i.label = label
	return i
}

func op(code uint8, dst, src bpfReg, off int16, imm int32) asmInsn {
	return asmInsn{bpfInsn: bpfInsn{code: code, regs: bpfRegs(dst, src), off: off, imm: imm}}
}

// The instructions the device filter uses. The 32-bit ALU operations
// (BPF_ALU) zero the upper half of dst; BPF_ALU64 ones use all 64 bits.
// Jumps (BPF_JMP) compare 64-bit registers; an immediate is sign-extended.

// ldxW: dst = *(u32 *)(src + off).
func ldxW(dst, src bpfReg, off int16) asmInsn {
	return op(unix.BPF_LDX|unix.BPF_MEM|unix.BPF_W, dst, src, off, 0)
}

// mov32Reg: dst = (u32)src.
func mov32Reg(dst, src bpfReg) asmInsn {
	return op(unix.BPF_ALU|unix.BPF_MOV|unix.BPF_X, dst, src, 0, 0)
}

// mov64Imm: dst = imm.
func mov64Imm(dst bpfReg, imm int32) asmInsn {
	return op(unix.BPF_ALU64|unix.BPF_MOV|unix.BPF_K, dst, 0, 0, imm)
}

// rsh32Imm: dst = (u32)dst >> imm.
func rsh32Imm(dst bpfReg, imm int32) asmInsn {
	return op(unix.BPF_ALU|unix.BPF_RSH|unix.BPF_K, dst, 0, 0, imm)
}

// and32Imm: dst = (u32)dst & imm.
func and32Imm(dst bpfReg, imm int32) asmInsn {
	return op(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, dst, 0, 0, imm)
}

// jneImm: if dst != imm goto label.
func jneImm(dst bpfReg, imm int32, label string) asmInsn {
	i := op(unix.BPF_JMP|unix.BPF_JNE|unix.BPF_K, dst, 0, 0, imm)
	i.target = label
	return i
}

// jneReg: if dst != src goto label.
func jneReg(dst, src bpfReg, label string) asmInsn {
	i := op(unix.BPF_JMP|unix.BPF_JNE|unix.BPF_X, dst, src, 0, 0)
	i.target = label
	return i
}

// jeqImm: if dst == imm goto label.
func jeqImm(dst bpfReg, imm int32, label string) asmInsn {
	i := op(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, dst, 0, 0, imm)
	i.target = label
	return i
}

// exit returns r0.
func exit() asmInsn { return op(unix.BPF_JMP|unix.BPF_EXIT, 0, 0, 0, 0) }

// assemble resolves the jumps' labels to offsets, counted in instructions
// from the one after the jump, and returns the encoded program.
func assemble(prog []asmInsn) ([]bpfInsn, error) {
	at := make(map[string]int)
	for i, in := range prog {
		if in.label == "" {
			continue
		}
		if _, dup := at[in.label]; dup {
			return nil, fmt.Errorf("ebpf: label %q defined twice", in.label)
		}
		at[in.label] = i
	}
	out := make([]bpfInsn, len(prog))
	for i, in := range prog {
		if in.target != "" {
			t, ok := at[in.target]
			if !ok {
				return nil, fmt.Errorf("ebpf: instruction %d jumps to undefined label %q", i, in.target)
			}
			off := t - (i + 1)
			if off < math.MinInt16 || off > math.MaxInt16 {
				return nil, fmt.Errorf("ebpf: instruction %d: jump to %q out of range", i, in.target)
			}
			in.off = int16(off)
		}
		out[i] = in.bpfInsn
	}
	return out, nil
}

// bpfPtr is a __aligned_u64 of union bpf_attr that holds a user-space
// address. It is made of Go pointers, not a uint64, so that the garbage
// collector sees what the kernel will read or write: the memory stays
// allocated, and if it lives on a goroutine stack that moves, the address is
// updated with it. On 32-bit hosts it is two pointers and the address goes
// into the low-order half (see newBPFPtr), the other half stays zero.
type bpfPtr [8 / unsafe.Sizeof(uintptr(0))]unsafe.Pointer

func newBPFPtr(p unsafe.Pointer) bpfPtr {
	var b bpfPtr
	if nativeLittleEndian {
		b[0] = p
	} else {
		b[len(b)-1] = p
	}
	return b
}

// The members of union bpf_attr for the commands used. The kernel accepts
// an attr shorter than its own union and takes the missing fields as zero,
// so each struct stops after the last field used (which also suits older
// kernels, that refuse non-zero bytes past the fields they know).

// progLoadAttr: BPF_PROG_LOAD, up to prog_flags.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       bpfPtr // const struct bpf_insn *
	license     bpfPtr // const char *
	logLevel    uint32
	logSize     uint32
	logBuf      bpfPtr // char *
	kernVersion uint32
	progFlags   uint32
}

// progAttachAttr: BPF_PROG_ATTACH and BPF_PROG_DETACH, up to attach_flags.
type progAttachAttr struct {
	targetFD    uint32
	attachBPFFD uint32
	attachType  uint32
	attachFlags uint32
}

// progQueryAttr: BPF_PROG_QUERY, up to prog_cnt and its padding.
type progQueryAttr struct {
	targetFD    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32 // out
	progIDs     bpfPtr // __u32 *, out
	progCnt     uint32 // in: room in progIDs; out: programs attached
	_           uint32
}

// progGetFDByIDAttr: BPF_PROG_GET_FD_BY_ID, prog_id then next_id and
// open_flags, zero.
type progGetFDByIDAttr struct {
	progID    uint32
	nextID    uint32
	openFlags uint32
}

// bpf issues bpf(2). attr points to the command's member of union
// bpf_attr, size bytes long. The fds the kernel returns are close-on-exec.
func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
		runtime.KeepAlive(attr)
		// The verifier returns EAGAIN when a signal interrupts it (4.20+).
		if errno == unix.EAGAIN && cmd == unix.BPF_PROG_LOAD {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}

// verifierLogSize is the log buffer for a program the kernel refused; a
// full buffer keeps the log's end (6.4+, where the reason is) or its start.
const verifierLogSize = 1 << 20

// maxLogInError is how much of the log's end an error carries.
const maxLogInError = 16 << 10

// bpfProgLoad loads a program of type typ and returns its fd. If the kernel
// refuses it, the load is retried once with the verifier's log, which the
// error then carries.
func bpfProgLoad(typ uint32, insns []bpfInsn, license string) (int, error) {
	if len(insns) == 0 {
		return -1, errors.New("ebpf: empty program")
	}
	lic, err := unix.ByteSliceFromString(license)
	if err != nil {
		return -1, err
	}
	attr := progLoadAttr{
		progType: typ,
		insnCnt:  uint32(len(insns)),
		insns:    newBPFPtr(unsafe.Pointer(&insns[0])),
		license:  newBPFPtr(unsafe.Pointer(&lic[0])),
	}
	fd, loadErr := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if loadErr == nil {
		return fd, nil
	}
	log := make([]byte, verifierLogSize)
	attr.logLevel = 1
	attr.logSize = uint32(len(log))
	attr.logBuf = newBPFPtr(unsafe.Pointer(&log[0]))
	fd, err = bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	// attr holds the only references to these while the kernel reads them.
	runtime.KeepAlive(insns)
	runtime.KeepAlive(lic)
	runtime.KeepAlive(log)
	if err == nil {
		return fd, nil
	}
	if i := bytes.IndexByte(log, 0); i >= 0 {
		log = log[:i]
	}
	log = bytes.TrimSpace(log)
	if len(log) == 0 {
		return -1, loadErr
	}
	if len(log) > maxLogInError {
		log = append([]byte("..."), log[len(log)-maxLogInError:]...)
	}
	return -1, fmt.Errorf("%w; verifier log:\n%s", loadErr, log)
}

// bpfProgQuery returns the ids of the programs attached to the cgroup
// target (an fd) for attachType, not those inherited from its parents.
func bpfProgQuery(target int, attachType uint32) ([]uint32, error) {
	// 64 is the kernel's BPF_CGROUP_MAX_PROGS: one call is enough unless
	// programs are attached meanwhile (ENOSPC, prog_cnt says how many).
	ids := make([]uint32, 64)
	for {
		attr := progQueryAttr{
			targetFD:   uint32(target),
			attachType: attachType,
			progIDs:    newBPFPtr(unsafe.Pointer(&ids[0])),
			progCnt:    uint32(len(ids)),
		}
		_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		runtime.KeepAlive(ids)
		if errors.Is(err, unix.ENOSPC) && int(attr.progCnt) > len(ids) {
			ids = make([]uint32, attr.progCnt)
			continue
		}
		if err != nil {
			return nil, err
		}
		return ids[:min(int(attr.progCnt), len(ids))], nil
	}
}

// bpfProgAttach attaches prog (an fd) to the cgroup target (an fd).
func bpfProgAttach(target, prog int, attachType, flags uint32) error {
	attr := progAttachAttr{
		targetFD:    uint32(target),
		attachBPFFD: uint32(prog),
		attachType:  attachType,
		attachFlags: flags,
	}
	_, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// bpfProgDetach detaches prog (an fd) from the cgroup target (an fd).
func bpfProgDetach(target, prog int, attachType uint32) error {
	attr := progAttachAttr{
		targetFD:    uint32(target),
		attachBPFFD: uint32(prog),
		attachType:  attachType,
	}
	_, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// bpfProgGetFDByID opens the loaded program with the given id.
func bpfProgGetFDByID(id uint32) (int, error) {
	attr := progGetFDByIDAttr{progID: id}
	return bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
}
