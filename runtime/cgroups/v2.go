package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Manager manages one container's cgroup on the unified hierarchy.
type v2Manager struct {
	path string // absolute directory under UnifiedMountpoint
	res  *specs.LinuxResources
}

func newV2(inner string, res *specs.LinuxResources) (*v2Manager, error) {
	if filepath.IsAbs(inner) {
		return &v2Manager{path: filepath.Join(UnifiedMountpoint, inner), res: res}, nil
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	base, ok := own[""]
	if !ok {
		return nil, errors.New("cgroups: /proc/self/cgroup has no unified (0::) entry")
	}
	return &v2Manager{path: filepath.Join(UnifiedMountpoint, base, inner), res: res}, nil
}

// Paths implements Manager.
func (m *v2Manager) Paths() map[string]string { return map[string]string{"": m.path} }

// Apply implements Manager: it creates the cgroup, enabling in each
// ancestor's cgroup.subtree_control every controller the ancestor offers,
// applies the Config's resources and then moves pid in. A pid <= 0 only
// creates.
func (m *v2Manager) Apply(pid int) error {
	if err := m.create(); err != nil {
		return err
	}
	if m.res != nil {
		if err := m.Set(m.res); err != nil {
			return err
		}
	}
	if pid <= 0 {
		return nil
	}
	if err := writeFile(m.path, "cgroup.procs", strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("cgroups: join pid %d: %w", pid, err)
	}
	return nil
}

func (m *v2Manager) create() error {
	rel, err := filepath.Rel(UnifiedMountpoint, m.path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroups: %s is not below %s", m.path, UnifiedMountpoint)
	}
	dir := UnifiedMountpoint
	for _, elem := range strings.Split(rel, "/") {
		if err := enableControllers(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, elem)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroups: create %s: %w", dir, err)
		}
	}
	return nil
}

// enableControllers delegates to dir's children every controller dir has.
// A controller that cannot be enabled (a process sits in dir: the "no
// internal processes" rule; or a threaded subtree) is skipped; a limit that
// needs it then fails in Set with the missing file named.
func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	enabled, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	on := map[string]bool{}
	for _, c := range strings.Fields(enabled) {
		on[c] = true
	}
	var want []string
	for _, c := range strings.Fields(avail) {
		if !on[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return nil
	}
	for _, c := range want {
		_ = writeFile(dir, "cgroup.subtree_control", c) // one by one; see the doc comment
	}
	return nil
}

// Set implements Manager.
func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	f := hostFeatures{
		swap: exists(m.path, "memory.swap.max"),
		bfq:  exists(m.path, "io.bfq.weight"),
	}
	if len(r.HugepageLimits) > 0 {
		f.hugeRsvd = exists(m.path, "hugetlb."+r.HugepageLimits[0].Pagesize+".rsvd.max")
	}
	plan, err := planV2(r, f)
	if err != nil {
		return err
	}
	if mem := r.Memory; mem != nil && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && mem.Limit != nil && *mem.Limit > 0 {
		usage, err := readUint(m.path, "memory.current")
		if err != nil {
			return err
		}
		if usage >= uint64(*mem.Limit) {
			return fmt.Errorf("cgroups: memory usage %d is not below the new limit %d (checkBeforeUpdate)", usage, *mem.Limit)
		}
	}
	if err := runPlan(plan, func(string) string { return m.path }); err != nil {
		return err
	}
	// An empty list changes nothing, as on v1 (where no rule is written).
	if len(r.Devices) > 0 {
		if err := setDevicesV2(m.path, r.Devices); err != nil {
			return err
		}
	}
	return nil
}

// Freeze implements Manager: cgroup.freeze, then wait for cgroup.events to
// report "frozen 1".
func (m *v2Manager) Freeze() error { return m.setFrozen(true) }

// Thaw implements Manager.
func (m *v2Manager) Thaw() error { return m.setFrozen(false) }

func (m *v2Manager) setFrozen(frozen bool) error {
	val := "0"
	if frozen {
		val = "1"
	}
	if err := writeFile(m.path, "cgroup.freeze", val); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		ev, err := readKeyValues(m.path, "cgroup.events")
		if err != nil {
			return err
		}
		if (ev["frozen"] == 1) == frozen {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: %s did not reach frozen=%s", m.path, val)
		}
		time.Sleep(time.Duration(1+min(i, 20)) * time.Millisecond)
	}
}

// State implements Manager.
func (m *v2Manager) State() (FreezerState, error) {
	s, err := readFile(m.path, "cgroup.freeze")
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "1" {
		return Frozen, nil
	}
	return Thawed, nil
}

// Pids implements Manager.
func (m *v2Manager) Pids() ([]int, error) { return readProcsRecursive(m.path) }

// Destroy implements Manager. cgroup.kill (Linux 5.14) kills the whole
// subtree atomically, frozen or forking; older kernels get the
// freeze-kill-thaw loop.
func (m *v2Manager) Destroy() error {
	if _, err := os.Stat(m.path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if exists(m.path, "cgroup.kill") {
		if err := writeFile(m.path, "cgroup.kill", "1"); err != nil && optional(err) != nil {
			return err
		}
	}
	if err := killAll(m.path, exists(m.path, "cgroup.freeze"), m.Freeze, m.Thaw); err != nil && optional(err) != nil {
		return err
	}
	return removeTree(m.path)
}

// Stats implements Manager.
func (m *v2Manager) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	d := m.path
	if _, err := os.Stat(d); err != nil {
		return nil, fmt.Errorf("cgroups: stats: %w", err)
	}
	// cpu.stat exists without the cpu controller (usage only).
	kv, err := readKeyValues(d, "cpu.stat")
	if err != nil {
		return nil, err
	}
	s.CPU.Usage.Total = kv["usage_usec"] * 1000
	s.CPU.Usage.User = kv["user_usec"] * 1000
	s.CPU.Usage.Kernel = kv["system_usec"] * 1000
	if err := throttlingStats(d, &s.CPU.Throttling, true); err != nil {
		return nil, err
	}
	if err := cpusetStats(d, &s.CPUSet, "cpuset.cpus.effective", "cpuset.mems.effective"); err != nil {
		return nil, err
	}
	if exists(d, "memory.current") {
		if err := memoryStatsV2(d, &s.Memory); err != nil {
			return nil, err
		}
	}
	if exists(d, "pids.current") {
		if err := pidsStats(d, &s.Pids); err != nil {
			return nil, err
		}
	}
	if exists(d, "io.stat") {
		str, err := readFile(d, "io.stat")
		if err != nil {
			return nil, err
		}
		if s.Blkio, err = parseIOStat(str); err != nil {
			return nil, fmt.Errorf("cgroups: %s/io.stat: %w", d, err)
		}
	}
	if err := hugetlbStats(d, s.Hugetlb, true); err != nil {
		return nil, err
	}
	return s, nil
}

func memoryStatsV2(d string, mem *Memory) error {
	var err error
	if mem.Usage.Usage, err = readUint(d, "memory.current"); err != nil {
		return err
	}
	if mem.Usage.Limit, err = readUint(d, "memory.max"); err != nil {
		return err
	}
	if mem.Usage.Max, err = readUint(d, "memory.peak"); optional(err) != nil {
		return err
	}
	ev, err := readKeyValues(d, "memory.events")
	if err != nil {
		return err
	}
	mem.Usage.Failcnt = ev["max"]
	// Like runc, report swap as memory+swap so the figures read the same
	// as v1's memsw.
	if exists(d, "memory.swap.current") {
		swap, err := readUint(d, "memory.swap.current")
		if err != nil {
			return err
		}
		swapMax, err := readUint(d, "memory.swap.max")
		if err != nil {
			return err
		}
		mem.Swap.Usage = mem.Usage.Usage + swap
		mem.Swap.Limit = addSat(mem.Usage.Limit, swapMax)
		if sev, err := readKeyValues(d, "memory.swap.events"); err == nil {
			mem.Swap.Failcnt = sev["max"]
		}
	}
	raw, err := readKeyValues(d, "memory.stat")
	if err != nil {
		return err
	}
	mem.Raw = raw
	mem.Cache = raw["file"]
	mem.Kernel.Usage = raw["kernel"]
	mem.KernelTCP.Usage = raw["sock"]
	return nil
}

// addSat adds, saturating at "unlimited".
func addSat(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// parseIOStat maps v2 io.stat ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..
// dbytes=.. dios=..") to runc's v1-shaped entries.
func parseIOStat(s string) (Blkio, error) {
	var b Blkio
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			return b, fmt.Errorf("malformed line %q", line)
		}
		majV, err1 := strconv.ParseUint(maj, 10, 64)
		minV, err2 := strconv.ParseUint(min, 10, 64)
		if err1 != nil || err2 != nil {
			return b, fmt.Errorf("malformed line %q", line)
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return b, fmt.Errorf("malformed field %q", kv)
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return b, fmt.Errorf("malformed field %q", kv)
			}
			e := BlkioEntry{Major: majV, Minor: minV, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, e)
			case "wbytes":
				e.Op = "Write"
				b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, e)
			case "dbytes":
				e.Op = "Discard"
				b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, e)
			case "rios":
				e.Op = "Read"
				b.IoServicedRecursive = append(b.IoServicedRecursive, e)
			case "wios":
				e.Op = "Write"
				b.IoServicedRecursive = append(b.IoServicedRecursive, e)
			case "dios":
				e.Op = "Discard"
				b.IoServicedRecursive = append(b.IoServicedRecursive, e)
			}
		}
	}
	return b, nil
}
