package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// DefaultAllowedDevices are the device nodes every container gets: the
// standard /dev nodes and the pty slaves. Unlike runc's defaults there is no
// "mknod of any char/block device" rule: a container can create only these
// nodes. The runtime core puts a deny-all rule first (see
// DefaultDeviceRules) and appends the spec's own linux.resources.devices.
func DefaultAllowedDevices() []specs.LinuxDeviceCgroup {
	c := func(major, minor int64) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Access: "rwm"}
		if minor >= 0 {
			d.Minor = i64(minor)
		}
		return d
	}
	return []specs.LinuxDeviceCgroup{
		c(1, 3),    // /dev/null
		c(1, 5),    // /dev/zero
		c(1, 7),    // /dev/full
		c(1, 8),    // /dev/random
		c(1, 9),    // /dev/urandom
		c(5, 0),    // /dev/tty
		c(5, 1),    // /dev/console
		c(5, 2),    // /dev/ptmx
		c(136, -1), // /dev/pts/*
	}
}

// DefaultDeviceRules is deny-all followed by DefaultAllowedDevices, the
// list to use when a spec gives no device rules of its own.
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	return append([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}, DefaultAllowedDevices()...)
}

// deviceRule is a validated spec device rule.
type deviceRule struct {
	allow        bool
	typ          byte  // 'a', 'b' or 'c'
	major, minor int64 // -1: any
	access       string
}

func parseDeviceRule(d specs.LinuxDeviceCgroup) (deviceRule, error) {
	r := deviceRule{allow: d.Allow, typ: 'a', major: -1, minor: -1, access: "rwm"}
	switch d.Type {
	case "", "a":
	case "b", "c":
		r.typ = d.Type[0]
	default:
		return r, fmt.Errorf("cgroups: invalid device type %q", d.Type)
	}
	if d.Major != nil {
		if *d.Major < -1 || *d.Major > 0xfff {
			return r, fmt.Errorf("cgroups: invalid device major %d", *d.Major)
		}
		r.major = *d.Major
	}
	if d.Minor != nil {
		if *d.Minor < -1 || *d.Minor > 0xfffff {
			return r, fmt.Errorf("cgroups: invalid device minor %d", *d.Minor)
		}
		r.minor = *d.Minor
	}
	if d.Access != "" {
		seen := map[rune]bool{}
		for _, c := range d.Access {
			if c != 'r' && c != 'w' && c != 'm' || seen[c] {
				return r, fmt.Errorf("cgroups: invalid device access %q", d.Access)
			}
			seen[c] = true
		}
		r.access = d.Access
	}
	return r, nil
}

func (r deviceRule) v1String() string {
	num := func(v int64) string {
		if v < 0 {
			return "*"
		}
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), r.access)
}

// planDevicesV1 writes the rules in the spec's order to devices.allow or
// devices.deny. The kernel applies each write to the current list, so the
// result matches the spec's "later rules win" reading for the usual shape
// (a deny-all, then allows).
func planDevicesV1(devs []specs.LinuxDeviceCgroup) ([]write, error) {
	var ws []write
	for _, d := range devs {
		r, err := parseDeviceRule(d)
		if err != nil {
			return nil, err
		}
		file := "devices.deny"
		if r.allow {
			file = "devices.allow"
		}
		ws = append(ws, write{ctrl: "devices", file: file, value: r.v1String()})
	}
	return ws, nil
}

// accessBits maps "rwm" to the kernel's BPF_DEVCG_ACC_* bits.
func accessBits(access string) int32 {
	var b int32
	if strings.ContainsRune(access, 'm') {
		b |= 1 // BPF_DEVCG_ACC_MKNOD
	}
	if strings.ContainsRune(access, 'r') {
		b |= 2 // BPF_DEVCG_ACC_READ
	}
	if strings.ContainsRune(access, 'w') {
		b |= 4 // BPF_DEVCG_ACC_WRITE
	}
	return b
}
