package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capSets are the five capability sets of a process as bit masks.
type capSets struct {
	bounding, effective, permitted, inheritable, ambient uint64
}

var lastCap = sync.OnceValue(func() int {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 40
	}
	return n
})

// parseCaps turns the spec's names into masks. Capabilities this kernel
// does not know are left out, as runc does; names nobody knows were
// rejected by ValidateProcess.
func parseCaps(c *specs.LinuxCapabilities) (capSets, error) {
	var s capSets
	if c == nil {
		return s, nil
	}
	mask := func(names []string) (uint64, error) {
		var m uint64
		for _, n := range names {
			v, err := ParseCapability(n)
			if err != nil {
				return 0, err
			}
			if v <= lastCap() {
				m |= 1 << uint(v)
			}
		}
		return m, nil
	}
	var err error
	for _, x := range []struct {
		dst   *uint64
		names []string
	}{{&s.bounding, c.Bounding}, {&s.effective, c.Effective}, {&s.permitted, c.Permitted}, {&s.inheritable, c.Inheritable}, {&s.ambient, c.Ambient}} {
		if *x.dst, err = mask(x.names); err != nil {
			return s, fmt.Errorf("process.capabilities: %w", err)
		}
	}
	return s, nil
}

// dropBounding removes every capability not in keep from the bounding set.
func dropBounding(keep uint64) error {
	for c := 0; c <= lastCap(); c++ {
		if keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// apply sets the effective, permitted and inheritable sets of this thread
// and raises the ambient ones.
func (s capSets) apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.effective), Permitted: uint32(s.permitted), Inheritable: uint32(s.inheritable)},
		{Effective: uint32(s.effective >> 32), Permitted: uint32(s.permitted >> 32), Inheritable: uint32(s.inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("apply capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	// The kernel raises an ambient capability only if it is permitted and
	// inheritable; runc's own default config lists ambient ones without an
	// inheritable set, and runc (like crun) runs it, so the others are
	// skipped rather than failing the container.
	ambient := s.ambient & s.permitted & s.inheritable
	for c := 0; c <= lastCap(); c++ {
		if ambient&(1<<uint(c)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %d: %w", c, err)
		}
	}
	return nil
}

// missing names the requested capabilities this thread is not permitted to
// have, which is why capset fails on hosts that withhold some from root.
func (s capSets) missing() string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return ""
	}
	have := uint64(cur[0].Permitted) | uint64(cur[1].Permitted)<<32
	want := s.permitted | s.effective
	var names []string
	all := CapabilityNames()
	for c := 0; c < len(all); c++ {
		if want&(1<<uint(c)) != 0 && have&(1<<uint(c)) == 0 {
			names = append(names, all[c])
		}
	}
	return strings.Join(names, ", ")
}
