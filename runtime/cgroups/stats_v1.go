package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux ABI).
const userHZ = 100

// Stats implements Manager.
func (m *v1Manager) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	if _, err := os.Stat(m.procsDir()); err != nil {
		return nil, fmt.Errorf("cgroups: stats: %w", err)
	}
	if d, ok := m.paths["cpuacct"]; ok {
		if err := cpuacctStats(d, &s.CPU.Usage); err != nil {
			return nil, err
		}
	}
	if d, ok := m.paths["cpu"]; ok {
		if err := throttlingStats(d, &s.CPU.Throttling, false); err != nil {
			return nil, err
		}
	}
	if d, ok := m.paths["cpuset"]; ok {
		if err := cpusetStats(d, &s.CPUSet, "cpuset.cpus", "cpuset.mems"); err != nil {
			return nil, err
		}
	}
	if d, ok := m.paths["memory"]; ok {
		if err := memoryStatsV1(d, &s.Memory); err != nil {
			return nil, err
		}
	}
	if d, ok := m.paths["pids"]; ok {
		if err := pidsStats(d, &s.Pids); err != nil {
			return nil, err
		}
	}
	if d, ok := m.paths["blkio"]; ok {
		if err := blkioStatsV1(d, &s.Blkio); err != nil {
			return nil, err
		}
	}
	if d, ok := m.paths["hugetlb"]; ok {
		if err := hugetlbStats(d, s.Hugetlb, false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// optional turns a missing file into "nothing to report".
func optional(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func readUintList(dir, file string) ([]uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cgroups: parse %s: %w", filepath.Join(dir, file), err)
		}
		out = append(out, v)
	}
	return out, nil
}

func cpuacctStats(d string, u *CPUUsage) error {
	var err error
	if u.Total, err = readUint(d, "cpuacct.usage"); err != nil {
		return err
	}
	if u.Percpu, err = readUintList(d, "cpuacct.usage_percpu"); optional(err) != nil {
		return err
	}
	if u.PercpuKernel, err = readUintList(d, "cpuacct.usage_percpu_sys"); optional(err) != nil {
		return err
	}
	if u.PercpuUser, err = readUintList(d, "cpuacct.usage_percpu_user"); optional(err) != nil {
		return err
	}
	// cpuacct.usage_user/usage_sys are nanoseconds; older kernels have only
	// cpuacct.stat in USER_HZ ticks, which runc converts.
	if exists(d, "cpuacct.usage_user") {
		if u.User, err = readUint(d, "cpuacct.usage_user"); err != nil {
			return err
		}
		if u.Kernel, err = readUint(d, "cpuacct.usage_sys"); err != nil {
			return err
		}
		return nil
	}
	kv, err := readKeyValues(d, "cpuacct.stat")
	if err != nil {
		return err
	}
	u.User = kv["user"] * (1e9 / userHZ)
	u.Kernel = kv["system"] * (1e9 / userHZ)
	return nil
}

// throttlingStats reads cpu.stat; v2 reports throttled time in µs.
func throttlingStats(d string, t *Throttling, v2 bool) error {
	kv, err := readKeyValues(d, "cpu.stat")
	if err != nil {
		return optional(err)
	}
	t.Periods = kv["nr_periods"]
	t.ThrottledPeriods = kv["nr_throttled"]
	if v2 {
		t.ThrottledTime = kv["throttled_usec"] * 1000
	} else {
		t.ThrottledTime = kv["throttled_time"]
	}
	return nil
}

// parseCPUList parses the kernel's list format ("0-3,8,10-11").
func parseCPUList(s string) ([]uint16, error) {
	var out []uint16
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("invalid cpu list %q", s)
			}
		}
		if b-a > 65535 {
			return nil, fmt.Errorf("invalid cpu list %q", s)
		}
		for v := a; v <= b; v++ {
			out = append(out, uint16(v))
		}
	}
	return out, nil
}

func cpusetStats(d string, c *CPUSet, cpusFile, memsFile string) error {
	for _, x := range []struct {
		file string
		dst  *[]uint16
	}{{cpusFile, &c.CPUs}, {memsFile, &c.Mems}} {
		s, err := readFile(d, x.file)
		if err != nil {
			if optional(err) == nil {
				continue
			}
			return err
		}
		if *x.dst, err = parseCPUList(s); err != nil {
			return fmt.Errorf("cgroups: %s/%s: %w", d, x.file, err)
		}
	}
	return nil
}

// memoryEntryV1 reads prefix.{usage_in_bytes,max_usage_in_bytes,failcnt,limit_in_bytes}.
func memoryEntryV1(d, prefix string, e *MemoryEntry) error {
	if !exists(d, prefix+".usage_in_bytes") {
		return nil
	}
	for _, x := range []struct {
		file string
		dst  *uint64
	}{
		{prefix + ".usage_in_bytes", &e.Usage},
		{prefix + ".max_usage_in_bytes", &e.Max},
		{prefix + ".failcnt", &e.Failcnt},
		{prefix + ".limit_in_bytes", &e.Limit},
	} {
		v, err := readUint(d, x.file)
		if optional(err) != nil {
			return err
		}
		*x.dst = v
	}
	return nil
}

func memoryStatsV1(d string, mem *Memory) error {
	for _, x := range []struct {
		prefix string
		dst    *MemoryEntry
	}{
		{"memory", &mem.Usage},
		{"memory.memsw", &mem.Swap},
		{"memory.kmem", &mem.Kernel},
		{"memory.kmem.tcp", &mem.KernelTCP},
	} {
		if err := memoryEntryV1(d, x.prefix, x.dst); err != nil {
			return err
		}
	}
	raw, err := readKeyValues(d, "memory.stat")
	if err != nil {
		return err
	}
	mem.Raw = raw
	mem.Cache = raw["cache"]
	return nil
}

func pidsStats(d string, p *Pids) error {
	var err error
	if p.Current, err = readUint(d, "pids.current"); err != nil {
		return err
	}
	limit, err := readUint(d, "pids.max")
	if err != nil {
		return err
	}
	if limit != ^uint64(0) {
		p.Limit = limit
	}
	return nil
}

// parseBlkioFile parses v1 "MAJ:MIN Op value" lines; "Total" lines and
// devices without counters are skipped.
func parseBlkioFile(s string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "Total" {
			continue
		}
		var e BlkioEntry
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			return nil, fmt.Errorf("malformed line %q", sc.Text())
		}
		var err error
		if e.Major, err = strconv.ParseUint(maj, 10, 64); err != nil {
			return nil, fmt.Errorf("malformed line %q", sc.Text())
		}
		if e.Minor, err = strconv.ParseUint(min, 10, 64); err != nil {
			return nil, fmt.Errorf("malformed line %q", sc.Text())
		}
		switch len(f) {
		case 2: // sectors/time files: "MAJ:MIN value"
			e.Value, err = strconv.ParseUint(f[1], 10, 64)
		case 3:
			e.Op = f[1]
			e.Value, err = strconv.ParseUint(f[2], 10, 64)
		default:
			return nil, fmt.Errorf("malformed line %q", sc.Text())
		}
		if err != nil {
			return nil, fmt.Errorf("malformed line %q", sc.Text())
		}
		out = append(out, e)
	}
	return out, nil
}

func blkioStatsV1(d string, b *Blkio) error {
	// BFQ's own counters when BFQ schedules the disks, else the throttle
	// layer's, which every kernel has (CFQ's are gone since 5.0).
	prefix := "blkio.throttle."
	if exists(d, "blkio.bfq.io_service_bytes_recursive") {
		prefix = "blkio.bfq."
	}
	for _, x := range []struct {
		file string
		dst  *[]BlkioEntry
	}{
		{prefix + "io_service_bytes_recursive", &b.IoServiceBytesRecursive},
		{prefix + "io_serviced_recursive", &b.IoServicedRecursive},
	} {
		s, err := readFile(d, x.file)
		if err != nil {
			if optional(err) == nil {
				continue
			}
			return err
		}
		if *x.dst, err = parseBlkioFile(s); err != nil {
			return fmt.Errorf("cgroups: %s/%s: %w", d, x.file, err)
		}
	}
	return nil
}

// hugePageSizes lists the host's huge page sizes in the cgroup file naming
// ("2MB", "1GB").
func hugePageSizes() []string {
	entries, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb, ok = strings.CutSuffix(kb, "kB")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(kb, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, pageSizeName(n*1024))
	}
	return out
}

// pageSizeName formats a size in bytes as the kernel names hugetlb files.
func pageSizeName(b uint64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return strconv.FormatUint(b>>30, 10) + "GB"
	case b >= 1<<20 && b%(1<<20) == 0:
		return strconv.FormatUint(b>>20, 10) + "MB"
	default:
		return strconv.FormatUint(b>>10, 10) + "KB"
	}
}

func hugetlbStats(d string, out map[string]Hugetlb, v2 bool) error {
	for _, size := range hugePageSizes() {
		var h Hugetlb
		var err error
		if v2 {
			if h.Usage, err = readUint(d, "hugetlb."+size+".current"); err != nil {
				if optional(err) == nil {
					continue
				}
				return err
			}
			ev, err := readKeyValues(d, "hugetlb."+size+".events")
			if optional(err) != nil {
				return err
			}
			h.Failcnt = ev["max"]
		} else {
			if h.Usage, err = readUint(d, "hugetlb."+size+".usage_in_bytes"); err != nil {
				if optional(err) == nil {
					continue
				}
				return err
			}
			if h.Max, err = readUint(d, "hugetlb."+size+".max_usage_in_bytes"); err != nil {
				return err
			}
			if h.Failcnt, err = readUint(d, "hugetlb."+size+".failcnt"); err != nil {
				return err
			}
		}
		out[size] = h
	}
	return nil
}
