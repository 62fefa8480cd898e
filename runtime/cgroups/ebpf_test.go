package cgroups

import (
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// insnBytes is the program as the kernel reads it.
func insnBytes(t *testing.T, insns []bpfInsn) string {
	t.Helper()
	if !nativeLittleEndian {
		t.Skip("expected encodings are written for little-endian hosts")
	}
	if len(insns) == 0 {
		return ""
	}
	return hex.EncodeToString(unsafe.Slice((*byte)(unsafe.Pointer(&insns[0])), len(insns)*int(unsafe.Sizeof(insns[0]))))
}

// hexInsns joins instructions given as hex, one per string (spaces ignored).
func hexInsns(insns ...string) string {
	return strings.ReplaceAll(strings.Join(insns, ""), " ", "")
}

// Each instruction's bytes, hand-encoded from include/uapi/linux/bpf.h:
// opcode, dst_reg (low nibble) | src_reg << 4, off (le16), imm (le32).
func TestEBPFEncoding(t *testing.T) {
	insns, err := assemble([]asmInsn{
		ldxW(r2, r1, 0),                  // 0
		ldxW(r5, r1, 8),                  // 1
		mov32Reg(r3, r2),                 // 2
		rsh32Imm(r3, 16),                 // 3
		and32Imm(r2, 0xffff),             // 4
		jneImm(r2, 2, "out"),             // 5: to 10, off 4
		jneReg(r6, r3, "out"),            // 6: off 3
		jeqImm(r6, -1, "out"),            // 7: off 2
		mov64Imm(r0, 1),                  // 8
		exit(),                           // 9
		mov64Imm(r0, 0).withLabel("out"), // 10
		jeqImm(r0, 0, "here"),            // 11: off 0
		exit().withLabel("here"),         // 12
	})
	if err != nil {
		t.Fatal(err)
	}
	want := hexInsns(
		"61 12 0000 00000000", // BPF_LDX|BPF_MEM|BPF_W
		"61 15 0800 00000000",
		"bc 23 0000 00000000", // BPF_ALU|BPF_MOV|BPF_X
		"74 03 0000 10000000", // BPF_ALU|BPF_RSH|BPF_K
		"54 02 0000 ffff0000", // BPF_ALU|BPF_AND|BPF_K
		"55 02 0400 02000000", // BPF_JMP|BPF_JNE|BPF_K
		"5d 36 0300 00000000", // BPF_JMP|BPF_JNE|BPF_X
		"15 06 0200 ffffffff", // BPF_JMP|BPF_JEQ|BPF_K
		"b7 00 0000 01000000", // BPF_ALU64|BPF_MOV|BPF_K
		"95 00 0000 00000000", // BPF_JMP|BPF_EXIT
		"b7 00 0000 00000000",
		"15 00 0000 00000000",
		"95 00 0000 00000000",
	)
	if got := insnBytes(t, insns); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestEBPFBackwardJump(t *testing.T) {
	insns, err := assemble([]asmInsn{
		mov64Imm(r0, 0).withLabel("top"),
		jneImm(r0, 0, "top"), // off -2
		exit(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if insns[1].off != -2 {
		t.Fatalf("off = %d, want -2", insns[1].off)
	}
}

func TestEBPFAssembleErrors(t *testing.T) {
	if _, err := assemble([]asmInsn{jneImm(r0, 0, "nowhere"), exit()}); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("undefined label: %v", err)
	}
	if _, err := assemble([]asmInsn{exit().withLabel("x"), exit().withLabel("x")}); err == nil {
		t.Error("label defined twice accepted")
	}
	far := make([]asmInsn, 1<<15+2)
	far[0] = jneImm(r0, 0, "end")
	far[len(far)-1] = exit().withLabel("end")
	if _, err := assemble(far); err == nil {
		t.Error("jump beyond int16 accepted")
	}
}

// The fuzz seed's rules, hand-compiled: deny all, then allow c 1:3 rw.
// Rule 1 is tested first; rule 0 is unconditional and ends the program.
func TestDeviceFilterEncoding(t *testing.T) {
	insns, err := deviceFilterInsns([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: p64(1), Minor: p64(3), Access: "rw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := hexInsns(
		"61 12 0000 00000000", // 0: r2 = ctx->access_type
		"bc 23 0000 00000000", // 1: w3 = w2
		"74 03 0000 10000000", // 2: w3 >>= 16 (access)
		"54 02 0000 ffff0000", // 3: w2 &= 0xffff (type)
		"61 14 0400 00000000", // 4: r4 = ctx->major
		"61 15 0800 00000000", // 5: r5 = ctx->minor
		"55 02 0700 02000000", // 6: if r2 != char goto 14
		"bc 36 0000 00000000", // 7: w6 = w3
		"54 06 0000 06000000", // 8: w6 &= rw
		"5d 36 0400 00000000", // 9: if r6 != r3 goto 14
		"55 04 0300 01000000", // 10: if r4 != 1 goto 14
		"55 05 0200 03000000", // 11: if r5 != 3 goto 14
		"b7 00 0000 01000000", // 12: r0 = 1 (allow)
		"95 00 0000 00000000", // 13: exit
		"b7 00 0000 00000000", // 14: r0 = 0 (rule1)
		"b7 00 0000 00000000", // 15: r0 = 0: rule 0, deny all
		"95 00 0000 00000000", // 16: exit
	)
	if got := insnBytes(t, insns); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	// No unconditional rule: the program ends in the default deny.
	insns, err = deviceFilterInsns([]specs.LinuxDeviceCgroup{{Allow: false, Type: "b", Access: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	want = hexInsns(
		"61 12 0000 00000000", "bc 23 0000 00000000", "74 03 0000 10000000",
		"54 02 0000 ffff0000", "61 14 0400 00000000", "61 15 0800 00000000",
		"55 02 0500 01000000", // 6: if r2 != block goto 12
		"bc 36 0000 00000000", // 7: w6 = w3
		"54 06 0000 01000000", // 8: w6 &= mknod
		"15 06 0200 00000000", // 9: if r6 == 0 goto 12
		"b7 00 0000 00000000", // 10: r0 = 0 (deny)
		"95 00 0000 00000000", // 11: exit
		"b7 00 0000 00000000", // 12: r0 = 0 (rule0)
		"b7 00 0000 00000000", // 13: r0 = 0: no rule matched
		"95 00 0000 00000000", // 14: exit
	)
	if got := insnBytes(t, insns); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

// The bpf_attr members as include/uapi/linux/bpf.h lays them out.
func TestBPFAttrLayout(t *testing.T) {
	var load progLoadAttr
	var query progQueryAttr
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(bpf_insn)", unsafe.Sizeof(bpfInsn{}), 8},
		{"sizeof(__aligned_u64)", unsafe.Sizeof(bpfPtr{}), 8},
		{"insns", unsafe.Offsetof(load.insns), 8},
		{"license", unsafe.Offsetof(load.license), 16},
		{"log_level", unsafe.Offsetof(load.logLevel), 24},
		{"log_buf", unsafe.Offsetof(load.logBuf), 32},
		{"prog_flags", unsafe.Offsetof(load.progFlags), 44},
		{"sizeof(prog load)", unsafe.Sizeof(load), 48},
		{"prog_ids", unsafe.Offsetof(query.progIDs), 16},
		{"prog_cnt", unsafe.Offsetof(query.progCnt), 24},
		{"sizeof(query)", unsafe.Sizeof(query), 32},
		{"sizeof(attach)", unsafe.Sizeof(progAttachAttr{}), 16},
		{"sizeof(get fd by id)", unsafe.Sizeof(progGetFDByIDAttr{}), 12},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// The address is the u64's value, whatever the host.
	x := 1
	p := newBPFPtr(unsafe.Pointer(&x))
	if u := *(*uint64)(unsafe.Pointer(&p)); u != uint64(uintptr(unsafe.Pointer(&x))) {
		t.Errorf("bpfPtr holds %#x, want %#x", u, uintptr(unsafe.Pointer(&x)))
	}
}

// The kernel's verifier accepts the default device filter, and the error
// for a program it refuses carries its log. Needs root (CAP_BPF); runs
// on cgroup v1 hosts too, as loading attaches nothing.
func TestBPFProgLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	insns, err := deviceFilterInsns(DefaultDeviceRules())
	if err != nil {
		t.Fatal(err)
	}
	fd, err := bpfProgLoad(unix.BPF_PROG_TYPE_CGROUP_DEVICE, insns, "Apache-2.0")
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("bpf(2) not permitted here: %v", err)
	}
	if err != nil {
		t.Fatalf("default device filter refused: %v", err)
	}
	unix.Close(fd)

	// r0 is returned without being set.
	bad, err := assemble([]asmInsn{exit()})
	if err != nil {
		t.Fatal(err)
	}
	fd, err = bpfProgLoad(unix.BPF_PROG_TYPE_CGROUP_DEVICE, bad, "Apache-2.0")
	if err == nil {
		unix.Close(fd)
		t.Fatal("program without r0 loaded")
	}
	if !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "verifier log") || !strings.Contains(err.Error(), "R0") {
		t.Fatalf("error %q: want EACCES with the verifier log", err)
	}
	t.Logf("refused as expected: %v", err)
	if _, err := bpfProgLoad(unix.BPF_PROG_TYPE_CGROUP_DEVICE, nil, "Apache-2.0"); err == nil {
		t.Fatal("empty program loaded")
	}
}
