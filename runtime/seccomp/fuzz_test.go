package seccomp

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// byteSource hands out fuzz input, then zeros.
type byteSource []byte

func (b *byteSource) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return v
}

func (b *byteSource) pick(n int) int { return int(b.byte()) % n }

func (b *byteSource) u64() uint64 {
	switch b.pick(4) {
	case 0, 1:
		return interesting[b.pick(len(interesting))]
	case 2:
		return uint64(b.byte())
	}
	var buf [8]byte
	for i := range buf {
		buf[i] = b.byte()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

// fuzzNames mixes syscalls of every ABI, ones of one ABI only, names that
// differ in number between ABIs, the newest, and one nobody knows.
var fuzzNames = []string{"read", "write", "personality", "socketcall", "futex", "clone", "openat",
	"rt_sigaction", "getpid", "getppid", "listns", "mmap2", "uretprobe", "no_such_syscall", "ioctl", "socket"}

var fuzzActions = []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillProcess, specs.ActKillThread,
	specs.ActTrap, specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify}

var fuzzOps = []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
	specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}

var fuzzArchs = []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchX86_64}

func (b *byteSource) action() (specs.LinuxSeccompAction, *uint) {
	act := fuzzActions[b.pick(len(fuzzActions))]
	if (act == specs.ActErrno || act == specs.ActTrace) && b.pick(2) == 0 {
		return act, uintp(uint(b.byte()))
	}
	return act, nil
}

// fuzzProfile builds a valid profile from the input.
func fuzzProfile(b *byteSource) *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{ListenerPath: "/run/agent.sock"}
	for s.DefaultAction == "" || s.DefaultAction == specs.ActNotify {
		s.DefaultAction, s.DefaultErrnoRet = b.action()
		if len(*b) == 0 && s.DefaultAction == specs.ActNotify {
			s.DefaultAction = specs.ActAllow
		}
	}
	for m := b.byte(); m != 0; m >>= 1 {
		if m&1 != 0 {
			s.Architectures = append(s.Architectures, fuzzArchs[b.pick(len(fuzzArchs))])
		}
	}
	for range b.pick(8) {
		var sc specs.LinuxSyscall
		for range 1 + b.pick(3) {
			sc.Names = append(sc.Names, fuzzNames[b.pick(len(fuzzNames))])
		}
		sc.Action, sc.ErrnoRet = b.action()
		for range b.pick(4) {
			sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(b.pick(6)), Op: fuzzOps[b.pick(len(fuzzOps))], Value: b.u64(), ValueTwo: b.u64()})
		}
		s.Syscalls = append(s.Syscalls, sc)
	}
	return s
}

// fuzzData builds syscall data likely to hit the profile's rules and
// conditions, and sometimes anything at all.
func fuzzData(b *byteSource, s *specs.LinuxSeccomp) seccompData {
	abis := []*archInfo{archX86_64, archX86, archX32}
	a := abis[b.pick(len(abis))]
	d := seccompData{arch: a.audit}
	switch b.pick(8) {
	case 0:
		d.arch = uint32(b.u64())
		d.nr = uint32(b.u64())
	case 1:
		d.nr = a.hi + uint32(b.pick(3))
	case 2:
		d.nr = a.lo + uint32(b.u64()%600)
	default:
		n, _ := a.lookup(fuzzNames[b.pick(len(fuzzNames))])
		d.nr = n
	}
	var vals []uint64
	for _, sc := range s.Syscalls {
		for _, arg := range sc.Args {
			vals = append(vals, arg.Value, arg.ValueTwo, arg.Value&arg.ValueTwo)
		}
	}
	for i := range d.args {
		if len(vals) > 0 && b.pick(3) != 0 {
			d.args[i] = vals[b.pick(len(vals))] + uint64(int64(b.pick(3))-1)
		} else {
			d.args[i] = b.u64()
		}
	}
	return d
}

// FuzzCompile compiles random profiles and checks the filter on random
// syscalls against the reference interpretation of the profile.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x04\x07\x01\x03\x02\x06\x04\x01\x00\x05\x00\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := byteSource(data)
		s := fuzzProfile(&b)
		flt, err := Compile(s)
		if err != nil {
			t.Fatalf("valid profile refused: %v\n%+v", err, s)
		}
		for range 32 {
			d := fuzzData(&b, s)
			got, _, err := runBPF(flt.insns, d)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if want := refEval(s, d); got != want {
				t.Fatalf("nr=%#x arch=%#x args=%#x: filter %#x, reference %#x\nprofile %+v", d.nr, d.arch, d.args, got, want, s)
			}
		}
	})
}
