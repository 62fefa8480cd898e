package cgroups

import (
	"encoding/json"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The cgroup files are written by the kernel, but inside a container with
// a cgroup namespace and a writable cgroupfs (or a hostile FUSE mount at
// the path) they can hold anything: the parsers must not panic.

func FuzzParseBlkioFile(f *testing.F) {
	f.Add("8:0 Read 100\n8:0 Write 5\nTotal 105\n")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := parseBlkioFile(s)
		if err == nil && len(es) > strings.Count(s, "\n")+1 {
			t.Fatalf("%d entries from %d lines", len(es), strings.Count(s, "\n")+1)
		}
	})
}

func FuzzParseIOStat(f *testing.F) {
	f.Add("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseIOStat(s) // must not panic; errors are fine
	})
}

func FuzzParseKeyValues(f *testing.F) {
	f.Add("usage_usec 10\nnr_periods 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseKeyValues(s)
	})
}

func FuzzParseCPUList(f *testing.F) {
	f.Add("0-3,8,10-11")
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := parseCPUList(s)
		if err == nil && len(cpus) > 65536*(strings.Count(s, ",")+1) {
			t.Fatalf("%d cpus from %q", len(cpus), s)
		}
	})
}

func FuzzParseBytes(f *testing.F) {
	f.Add("512m")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseBytes(s)
		if err == nil && v < -1 {
			t.Fatalf("ParseBytes(%q) = %d", s, v)
		}
	})
}

// Device rules come from config.json: any rule list either fails to
// validate or compiles to a program that assembles.
func FuzzDeviceRules(f *testing.F) {
	f.Add(`[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]`)
	f.Fuzz(func(t *testing.T, s string) {
		var devs []specs.LinuxDeviceCgroup
		if json.Unmarshal([]byte(s), &devs) != nil {
			return
		}
		ws, err := planDevicesV1(devs)
		if err != nil {
			return
		}
		for _, w := range ws {
			if strings.ContainsAny(w.value, "\n\x00") {
				t.Fatalf("rule line %q", w.value)
			}
		}
		// deviceFilterInsns also assembles: every jump resolves.
		insns, err := deviceFilterInsns(devs)
		if err != nil {
			t.Fatalf("v1 accepted but v2 refused: %v", err)
		}
		if last := insns[len(insns)-1]; last != exit().bpfInsn {
			t.Fatalf("program does not end in exit: %+v", last)
		}
		for i, in := range insns {
			if in.code&0x07 == unix.BPF_JMP && in.code != exit().code && (i+1+int(in.off) <= i || i+1+int(in.off) >= len(insns)) {
				t.Fatalf("instruction %d jumps to %d of %d", i, i+1+int(in.off), len(insns))
			}
		}
	})
}
