package cgroups

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// write is one value for one control file. Set turns a LinuxResources into
// an ordered list of writes (a plan, pure and unit-tested) and then performs
// them; the order matters where the kernel validates one file against
// another (memory vs memsw, cfs period vs quota).
type write struct {
	ctrl  string // v1 controller; "" on v2
	file  string
	value string
	// retry marks a write that may fail until a later write of the plan
	// is done (a CFS period that does not fit the old quota): it is tried
	// again once at the end of the plan.
	retry bool
}

func (w write) String() string {
	if w.ctrl == "" {
		return fmt.Sprintf("%s=%q", w.file, w.value)
	}
	return fmt.Sprintf("%s/%s=%q", w.ctrl, w.file, w.value)
}

// hostFeatures is what the plans need to know about the host's files.
type hostFeatures struct {
	swap        bool   // memory.memsw.* (v1) / memory.swap.max (v2) exist
	bfq         bool   // blkio.bfq.weight / io.bfq.weight instead of the plain weight file
	curMemLimit uint64 // current v1 memory.limit_in_bytes, for write ordering
	hugeRsvd    bool   // hugetlb reservation limits exist
}

// planV1 plans the writes of r on cgroup v1.
func planV1(r *specs.LinuxResources, f hostFeatures) ([]write, error) {
	if r == nil {
		return nil, nil
	}
	var ws []write
	add := func(ctrl, file, value string) { ws = append(ws, write{ctrl: ctrl, file: file, value: value}) }

	dev, err := planDevicesV1(r.Devices)
	if err != nil {
		return nil, err
	}
	ws = append(ws, dev...)

	if m := r.Memory; m != nil {
		mw, err := planMemoryV1(m, f)
		if err != nil {
			return nil, err
		}
		ws = append(ws, mw...)
	}

	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu", "cpu.shares", strconv.FormatUint(*c.Shares, 10))
		}
		// The kernel checks a new period against the current quota and
		// the quota against the period: write the period first and, if the
		// old quota made it fail, again after the quota.
		if c.Period != nil && *c.Period != 0 {
			ws = append(ws, write{ctrl: "cpu", file: "cpu.cfs_period_us", value: strconv.FormatUint(*c.Period, 10), retry: true})
		}
		if c.Quota != nil && *c.Quota != 0 {
			q := *c.Quota
			if q < 0 {
				q = -1
			}
			add("cpu", "cpu.cfs_quota_us", strconv.FormatInt(q, 10))
		}
		if c.Burst != nil {
			add("cpu", "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10))
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			ws = append(ws, write{ctrl: "cpu", file: "cpu.rt_period_us", value: strconv.FormatUint(*c.RealtimePeriod, 10), retry: true})
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			add("cpu", "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10))
		}
		if c.Idle != nil {
			add("cpu", "cpu.idle", strconv.FormatInt(*c.Idle, 10))
		}
		if c.Cpus != "" {
			add("cpuset", "cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset", "cpuset.mems", c.Mems)
		}
	}

	if p := r.Pids; p != nil && p.Limit != nil {
		add("pids", "pids.max", v2Limit(nonPositiveUnlimited(*p.Limit)))
	}

	if b := r.BlockIO; b != nil {
		weightFile, weightDevFile := "blkio.weight", "blkio.weight_device"
		if f.bfq {
			weightFile, weightDevFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
		}
		if b.Weight != nil && *b.Weight != 0 {
			add("blkio", weightFile, strconv.FormatUint(uint64(*b.Weight), 10))
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			add("blkio", "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10))
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil {
				add("blkio", weightDevFile, fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight))
			}
			if wd.LeafWeight != nil {
				add("blkio", "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight))
			}
		}
		for _, t := range []struct {
			file string
			devs []specs.LinuxThrottleDevice
		}{
			{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
			{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
			{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
			{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				add("blkio", t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate))
			}
		}
	}

	for _, h := range r.HugepageLimits {
		if err := checkPageSize(h.Pagesize); err != nil {
			return nil, err
		}
		add("hugetlb", "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10))
		if f.hugeRsvd {
			add("hugetlb", "hugetlb."+h.Pagesize+".rsvd.limit_in_bytes", strconv.FormatUint(h.Limit, 10))
		}
	}

	if n := r.Network; n != nil {
		if n.ClassID != nil {
			add("net_cls", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
		}
		for _, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \n") {
				return nil, fmt.Errorf("cgroups: invalid interface name %q in network priorities", p.Name)
			}
			add("net_prio", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority))
		}
	}

	rw, err := planRdma("rdma", r.Rdma)
	if err != nil {
		return nil, err
	}
	ws = append(ws, rw...)

	if len(r.Unified) > 0 {
		return nil, fmt.Errorf("cgroups: linux.resources.unified needs cgroup v2, this host runs cgroup v1: %w", ErrNotSupported)
	}
	return ws, nil
}

// nonPositiveUnlimited maps the spec's "0 or negative: no limit" to -1.
func nonPositiveUnlimited(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}

// planMemoryV1 follows runc's ordering: memory.limit_in_bytes must stay
// <= memory.memsw.limit_in_bytes after every single write, so when the new
// memsw limit is above the current memory limit (or unlimited) memsw goes
// first, else memory goes first.
func planMemoryV1(m *specs.LinuxMemory, f hostFeatures) ([]write, error) {
	var ws []write
	add := func(file, value string) { ws = append(ws, write{ctrl: "memory", file: file, value: value}) }
	var limit, swap int64
	if m.Limit != nil {
		limit = *m.Limit
	}
	if m.Swap != nil {
		swap = *m.Swap
	}
	if limit < -1 || swap < -1 {
		return nil, fmt.Errorf("cgroups: invalid memory limit %d / swap %d", limit, swap)
	}
	if limit == -1 && swap == 0 && f.swap {
		swap = -1
	}
	if swap != 0 && !f.swap {
		return nil, fmt.Errorf("cgroups: a swap limit was requested but this kernel has no swap accounting (memory.memsw.*): %w", ErrNotSupported)
	}
	if limit > 0 && swap > 0 && swap < limit {
		return nil, fmt.Errorf("cgroups: memory+swap limit %d is below the memory limit %d", swap, limit)
	}
	memFirst := true
	if limit != 0 && swap != 0 && (swap == -1 || f.curMemLimit < uint64(swap)) {
		memFirst = false
	}
	if memFirst {
		if limit != 0 {
			add("memory.limit_in_bytes", strconv.FormatInt(limit, 10))
		}
		if swap != 0 {
			add("memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
		}
	} else {
		add("memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
		add("memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	}
	if m.Reservation != nil && *m.Reservation != 0 {
		add("memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10))
	}
	// Kernel memory limits (m.Kernel) are ignored, as runc >= 1.2 does: the
	// kernel deprecated them in 5.4 and no longer accepts them.
	if m.KernelTCP != nil && *m.KernelTCP != 0 {
		add("memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*m.KernelTCP, 10))
	}
	if m.Swappiness != nil {
		if *m.Swappiness > 100 {
			return nil, fmt.Errorf("cgroups: invalid memory swappiness %d (0-100)", *m.Swappiness)
		}
		add("memory.swappiness", strconv.FormatUint(*m.Swappiness, 10))
	}
	if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
		add("memory.oom_control", "1")
	}
	return ws, nil
}

// planV2 plans the writes of r on the unified hierarchy. Devices are not
// files on v2 (an eBPF program does it) and are left to the caller.
func planV2(r *specs.LinuxResources, f hostFeatures) ([]write, error) {
	if r == nil {
		return nil, nil
	}
	var ws []write
	add := func(file, value string) { ws = append(ws, write{file: file, value: value}) }

	if m := r.Memory; m != nil {
		var limit, swap int64
		if m.Limit != nil {
			limit = *m.Limit
		}
		if m.Swap != nil {
			swap = *m.Swap
		}
		swapMax, err := MemorySwapToV2(swap, limit)
		if err != nil {
			return nil, err
		}
		if swapMax != 0 {
			if !f.swap {
				// runc skips an unlimited swap without accounting; a real
				// limit it cannot enforce is an error.
				if swapMax > 0 {
					return nil, fmt.Errorf("cgroups: a swap limit was requested but memory.swap.max is missing: %w", ErrNotSupported)
				}
			} else {
				add("memory.swap.max", v2Limit(swapMax))
			}
		}
		if limit != 0 {
			add("memory.max", v2Limit(limit))
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			add("memory.low", v2Limit(*m.Reservation))
		}
		// Kernel, kernelTCP, swappiness and disableOOMKiller have no v2
		// files; runc ignores them on v2 and so do we (see docs/cgroups.md).
	}

	if c := r.CPU; c != nil {
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 || c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			return nil, fmt.Errorf("cgroups: realtime CPU runtime/period need cgroup v1: %w", ErrNotSupported)
		}
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu.weight", strconv.FormatUint(SharesToWeight(*c.Shares), 10))
		}
		var quota int64
		var period uint64
		if c.Quota != nil {
			quota = *c.Quota
		}
		if c.Period != nil {
			period = *c.Period
		}
		if s := CPUMax(quota, period); s != "" {
			add("cpu.max", s)
		}
		if c.Burst != nil {
			add("cpu.max.burst", strconv.FormatUint(*c.Burst, 10))
		}
		if c.Idle != nil {
			add("cpu.idle", strconv.FormatInt(*c.Idle, 10))
		}
		if c.Cpus != "" {
			add("cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset.mems", c.Mems)
		}
	}

	if p := r.Pids; p != nil && p.Limit != nil {
		add("pids.max", v2Limit(nonPositiveUnlimited(*p.Limit)))
	}

	if b := r.BlockIO; b != nil {
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			return nil, fmt.Errorf("cgroups: blockIO leafWeight has no cgroup v2 equivalent: %w", ErrNotSupported)
		}
		if b.Weight != nil && *b.Weight != 0 {
			if f.bfq {
				add("io.bfq.weight", strconv.FormatUint(uint64(*b.Weight), 10))
			} else {
				add("io.weight", "default "+strconv.FormatUint(BlkioWeightToIOWeight(*b.Weight), 10))
			}
		}
		for _, wd := range b.WeightDevice {
			if wd.LeafWeight != nil && *wd.LeafWeight != 0 {
				return nil, fmt.Errorf("cgroups: blockIO leafWeight has no cgroup v2 equivalent: %w", ErrNotSupported)
			}
			if wd.Weight == nil {
				continue
			}
			if f.bfq {
				add("io.bfq.weight", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight))
			} else {
				add("io.weight", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, BlkioWeightToIOWeight(*wd.Weight)))
			}
		}
		for _, t := range []struct {
			key  string
			devs []specs.LinuxThrottleDevice
		}{
			{"rbps", b.ThrottleReadBpsDevice},
			{"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice},
			{"wiops", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				rate := strconv.FormatUint(d.Rate, 10)
				if d.Rate == 0 {
					rate = "max" // v1's 0 means "no limit"
				}
				add("io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate))
			}
		}
	}

	for _, h := range r.HugepageLimits {
		if err := checkPageSize(h.Pagesize); err != nil {
			return nil, err
		}
		add("hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10))
		if f.hugeRsvd {
			add("hugetlb."+h.Pagesize+".rsvd.max", strconv.FormatUint(h.Limit, 10))
		}
	}

	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		return nil, fmt.Errorf("cgroups: network classID/priorities (net_cls, net_prio) need cgroup v1: %w", ErrNotSupported)
	}

	rw, err := planRdma("", r.Rdma)
	if err != nil {
		return nil, err
	}
	ws = append(ws, rw...)

	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." || !strings.Contains(k, ".") {
			return nil, fmt.Errorf("cgroups: invalid unified key %q", k)
		}
		if strings.HasPrefix(k, "cgroup.") {
			// cgroup.procs, cgroup.subtree_control and friends belong to
			// the runtime, not to the config.
			return nil, fmt.Errorf("cgroups: unified key %q is not a resource setting", k)
		}
		add(k, r.Unified[k])
	}
	return ws, nil
}

// planRdma writes rdma.max lines: "dev hca_handle=N hca_object=M".
func planRdma(ctrl string, rdma map[string]specs.LinuxRdma) ([]write, error) {
	names := make([]string, 0, len(rdma))
	for n := range rdma {
		names = append(names, n)
	}
	sort.Strings(names)
	var ws []write
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " \n") {
			return nil, fmt.Errorf("cgroups: invalid rdma device name %q", n)
		}
		l := rdma[n]
		var parts []string
		if l.HcaHandles != nil {
			parts = append(parts, fmt.Sprintf("hca_handle=%d", *l.HcaHandles))
		}
		if l.HcaObjects != nil {
			parts = append(parts, fmt.Sprintf("hca_object=%d", *l.HcaObjects))
		}
		if len(parts) == 0 {
			continue
		}
		ws = append(ws, write{ctrl: ctrl, file: "rdma.max", value: n + " " + strings.Join(parts, " ")})
	}
	return ws, nil
}

// checkPageSize accepts the kernel's hugetlb size names ("2MB", "1GB",
// "64KB"): they become part of a file name, so nothing else may pass.
func checkPageSize(s string) error {
	n := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s, "KB"), "MB"), "GB")
	if n == s || n == "" {
		return fmt.Errorf("cgroups: invalid hugepage size %q", s)
	}
	if _, err := strconv.ParseUint(n, 10, 32); err != nil {
		return fmt.Errorf("cgroups: invalid hugepage size %q", s)
	}
	return nil
}
