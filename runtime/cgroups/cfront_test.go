//go:build cgo

package cgroups

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/cfront"
)

// TestFrontDeviceFilter holds the device program the C front loads on
// cgroup v2 (cmd/capsa-runtime/front/devices_bpf.c) against this
// package's, instruction for instruction.
func TestFrontDeviceFilter(t *testing.T) {
	c := func(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: i64(major), Minor: i64(minor), Access: access}
	}
	sets := [][]specs.LinuxDeviceCgroup{
		DefaultDeviceRules(),
		{{Allow: true, Access: "rwm"}},
		append(DefaultDeviceRules(), c(false, "c", 1, 3, "w"), c(true, "b", 8, -1, "r"), c(false, "a", -1, -1, "m")),
		{c(true, "c", 10, 200, "rw"), c(false, "b", -1, 0, "rwm"), c(true, "", 4095, 1048575, "m")},
	}
	for i, devs := range sets {
		var rules []cfront.DeviceRule
		for _, d := range devs {
			r, err := parseDeviceRule(d)
			if err != nil {
				t.Fatal(err)
			}
			rules = append(rules, cfront.DeviceRule{Allow: r.allow, Type: r.typ, Major: r.major, Minor: r.minor, Access: r.access})
		}
		got, ok := cfront.DeviceFilter(rules)
		if !ok {
			t.Fatalf("set %d: the front builds no program", i)
		}
		insns, err := deviceFilterInsns(devs)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		for _, in := range insns {
			want = append(want, in.code, in.regs)
			want = binary.LittleEndian.AppendUint16(want, uint16(in.off))
			want = binary.LittleEndian.AppendUint32(want, uint32(in.imm))
		}
		if string(got) != string(want) {
			t.Errorf("set %d: the front's program differs:\nfront % x\nGo    % x", i, got, want)
		}
	}
}
