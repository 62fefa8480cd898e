package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A compiled filter travels from the runtime's create to the container's
// init, and is kept in the state dir for exec, in this binary form, so that
// neither decodes the profile's JSON nor compiles it again:
//
//	"CSBF" | version u32 | flags u64 | n u32 | n × sock_filter (code u16,
//	jt u8, jf u8, k u32) | len u32 + listenerPath | len u32 + listenerMetadata
//
// All integers are little-endian. Warnings are not kept: the runtime
// reports them when it compiles.
const (
	binaryMagic   = "CSBF"
	binaryVersion = 1
)

// MarshalBinary encodes the compiled filter.
func (f *Filter) MarshalBinary() ([]byte, error) {
	if len(f.insns) == 0 || len(f.insns) > maxInsns {
		return nil, fmt.Errorf("seccomp: cannot encode a filter of %d instructions", len(f.insns))
	}
	b := make([]byte, 0, 24+8*len(f.insns)+len(f.ListenerPath)+len(f.ListenerMetadata))
	b = append(b, binaryMagic...)
	b = binary.LittleEndian.AppendUint32(b, binaryVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(f.flags))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.insns)))
	for _, in := range f.insns {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	for _, s := range []string{f.ListenerPath, f.ListenerMetadata} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

var errTruncated = errors.New("seccomp: compiled filter is truncated")

// UnmarshalFilter decodes what MarshalBinary made, checking every length.
func UnmarshalFilter(b []byte) (*Filter, error) {
	if len(b) < 20 || string(b[:4]) != binaryMagic {
		return nil, errors.New("seccomp: not a compiled filter")
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != binaryVersion {
		return nil, fmt.Errorf("seccomp: compiled filter version %d, want %d", v, binaryVersion)
	}
	f := &Filter{flags: uintptr(binary.LittleEndian.Uint64(b[8:]))}
	n := binary.LittleEndian.Uint32(b[16:])
	b = b[20:]
	if n == 0 || n > maxInsns {
		return nil, fmt.Errorf("seccomp: compiled filter has %d instructions", n)
	}
	if uint64(len(b)) < 8*uint64(n) {
		return nil, errTruncated
	}
	f.insns = make([]unix.SockFilter, n)
	for i := range f.insns {
		f.insns[i] = unix.SockFilter{
			Code: binary.LittleEndian.Uint16(b),
			Jt:   b[2], Jf: b[3],
			K: binary.LittleEndian.Uint32(b[4:]),
		}
		b = b[8:]
	}
	for _, s := range []*string{&f.ListenerPath, &f.ListenerMetadata} {
		if len(b) < 4 {
			return nil, errTruncated
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(len(b)) < uint64(l) {
			return nil, errTruncated
		}
		*s, b = string(b[:l]), b[l:]
	}
	if len(b) != 0 {
		return nil, errors.New("seccomp: compiled filter has trailing bytes")
	}
	f.prog = unix.SockFprog{Len: uint16(n), Filter: unsafe.SliceData(f.insns)}
	return f, nil
}
