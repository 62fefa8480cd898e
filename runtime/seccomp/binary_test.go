package seccomp

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func notifyProfile() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     "/run/agent.sock",
		ListenerMetadata: "meta",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir"}, Action: specs.ActNotify},
			{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpNotEqual}}},
		},
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	f := mustCompile(t, notifyProfile())
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, err := UnmarshalFilter(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.insns, f.insns) || g.flags != f.flags || g.ListenerPath != f.ListenerPath ||
		g.ListenerMetadata != f.ListenerMetadata || !g.UsesNotify() {
		t.Fatalf("round trip changed the filter")
	}
	if int(g.prog.Len) != len(g.insns) || g.prog.Filter != &g.insns[0] {
		t.Fatalf("decoded program header does not point at its instructions")
	}
	// Every truncation and a trailing byte are refused with a reason.
	for i := 0; i < len(b); i++ {
		if _, err := UnmarshalFilter(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", i)
		}
	}
	if _, err := UnmarshalFilter(append(bytes.Clone(b), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("trailing byte: %v", err)
	}
}

// FuzzUnmarshalFilter: hostile bytes (a corrupt state dir) never crash the
// decoder, and what it accepts encodes back to the same bytes.
func FuzzUnmarshalFilter(f *testing.F) {
	fl, err := Compile(notifyProfile())
	if err != nil {
		f.Fatal(err)
	}
	seed, err := fl.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("CSBF\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalFilter(b)
		if err != nil {
			return
		}
		again, err := g.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x but encodes back to %x (%v)", b, again, err)
		}
	})
}
