package cgroups

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func p64(v int64) *int64    { return &v }
func pu64(v uint64) *uint64 { return &v }
func pu16(v uint16) *uint16 { return &v }
func pbool(v bool) *bool    { return &v }

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 1024: 100, 262144: 10000, 300000: 10000} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s += 97 {
		w := SharesToWeight(s)
		if w < prev || w < 1 || w > 10000 {
			t.Fatalf("SharesToWeight(%d) = %d: not monotonic within [1, 10000]", s, w)
		}
		prev = w
		back := WeightToShares(w)
		// The weight scale is coarser than shares; the inverse lands
		// within one weight step.
		if SharesToWeight(back) < w-1 || SharesToWeight(back) > w+1 {
			t.Fatalf("WeightToShares(%d) = %d maps back to %d", w, back, SharesToWeight(back))
		}
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	for in, want := range map[uint16]uint64{0: 0, 10: 1, 1000: 10000, 500: 4950, 100: 910} {
		if got := BlkioWeightToIOWeight(in); got != want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestMemorySwapToV2(t *testing.T) {
	cases := []struct {
		swap, mem, want int64
		err             bool
	}{
		{0, -1, -1, false},
		{0, 100, 0, false},
		{-1, 100, -1, false},
		{300, 100, 200, false},
		{100, 100, 0, false},
		{50, 100, 0, true},
		{300, 0, 0, true},
		{300, -1, 0, true},
	}
	for _, c := range cases {
		got, err := MemorySwapToV2(c.swap, c.mem)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("MemorySwapToV2(%d, %d) = %d, %v", c.swap, c.mem, got, err)
		}
	}
}

func TestCPUMax(t *testing.T) {
	for _, c := range []struct {
		q    int64
		p    uint64
		want string
	}{{0, 0, ""}, {50000, 0, "50000 100000"}, {-1, 0, "max 100000"}, {0, 20000, "max 20000"}, {10000, 20000, "10000 20000"}} {
		if got := CPUMax(c.q, c.p); got != c.want {
			t.Errorf("CPUMax(%d, %d) = %q, want %q", c.q, c.p, got, c.want)
		}
	}
}

func planStrings(ws []write) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

func TestPlanMemoryV1Order(t *testing.T) {
	// Raising both above the current limit: memsw first.
	ws, err := planMemoryV1(&specs.LinuxMemory{Limit: p64(200), Swap: p64(400)}, hostFeatures{swap: true, curMemLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`memory/memory.memsw.limit_in_bytes="400"`, `memory/memory.limit_in_bytes="200"`}
	if got := planStrings(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("raise: %v, want %v", got, want)
	}
	// Lowering below the current limit: memory first.
	ws, _ = planMemoryV1(&specs.LinuxMemory{Limit: p64(200), Swap: p64(300)}, hostFeatures{swap: true, curMemLimit: 1000})
	want = []string{`memory/memory.limit_in_bytes="200"`, `memory/memory.memsw.limit_in_bytes="300"`}
	if got := planStrings(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("lower: %v, want %v", got, want)
	}
	// Unlimited memory with unset swap makes swap unlimited too.
	ws, _ = planMemoryV1(&specs.LinuxMemory{Limit: p64(-1)}, hostFeatures{swap: true, curMemLimit: 1000})
	want = []string{`memory/memory.memsw.limit_in_bytes="-1"`, `memory/memory.limit_in_bytes="-1"`}
	if got := planStrings(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("unlimited: %v, want %v", got, want)
	}
	if _, err := planMemoryV1(&specs.LinuxMemory{Limit: p64(200), Swap: p64(100)}, hostFeatures{swap: true}); err == nil {
		t.Error("swap below memory accepted")
	}
	if _, err := planMemoryV1(&specs.LinuxMemory{Limit: p64(200), Swap: p64(400)}, hostFeatures{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("swap without accounting: %v", err)
	}
	if _, err := planMemoryV1(&specs.LinuxMemory{Swappiness: pu64(101)}, hostFeatures{}); err == nil {
		t.Error("swappiness 101 accepted")
	}
}

func TestPlanV1AllResources(t *testing.T) {
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: p64(1), Minor: p64(3), Access: "rw"}, {Allow: true, Type: "c", Major: p64(136), Access: "rwm"}},
		Memory: &specs.LinuxMemory{Limit: p64(1 << 20), Reservation: p64(1 << 19), KernelTCP: p64(1 << 18),
			Swappiness: pu64(10), DisableOOMKiller: pbool(true)},
		CPU: &specs.LinuxCPU{Shares: pu64(512), Quota: p64(20000), Period: pu64(50000), Burst: pu64(1000),
			RealtimeRuntime: p64(100), RealtimePeriod: pu64(1000), Idle: p64(1), Cpus: "0", Mems: "0"},
		Pids: &specs.LinuxPids{Limit: p64(0)},
		BlockIO: &specs.LinuxBlockIO{Weight: pu16(300), LeafWeight: pu16(200),
			WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: pu16(100), LeafWeight: pu16(50)}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 7}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Network:        &specs.LinuxNetwork{ClassID: func() *uint32 { v := uint32(0x100001); return &v }(), Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: func() *uint32 { v := uint32(3); return &v }()}},
	}
	//lint:ignore SA1019 the deprecated kernel limit is set to check that it is ignored
	r.Memory.Kernel = p64(5)
	ws, err := planV1(r, hostFeatures{swap: true, curMemLimit: ^uint64(0), hugeRsvd: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`devices/devices.deny="a *:* rwm"`,
		`devices/devices.allow="c 1:3 rw"`,
		`devices/devices.allow="c 136:* rwm"`,
		`memory/memory.limit_in_bytes="1048576"`,
		`memory/memory.soft_limit_in_bytes="524288"`,
		`memory/memory.kmem.tcp.limit_in_bytes="262144"`,
		`memory/memory.swappiness="10"`,
		`memory/memory.oom_control="1"`,
		`cpu/cpu.shares="512"`,
		`cpu/cpu.cfs_period_us="50000"`,
		`cpu/cpu.cfs_quota_us="20000"`,
		`cpu/cpu.cfs_burst_us="1000"`,
		`cpu/cpu.rt_period_us="1000"`,
		`cpu/cpu.rt_runtime_us="100"`,
		`cpu/cpu.idle="1"`,
		`cpuset/cpuset.cpus="0"`,
		`cpuset/cpuset.mems="0"`,
		`pids/pids.max="max"`,
		`blkio/blkio.weight="300"`,
		`blkio/blkio.leaf_weight="200"`,
		`blkio/blkio.weight_device="8:0 100"`,
		`blkio/blkio.leaf_weight_device="8:0 50"`,
		`blkio/blkio.throttle.read_bps_device="8:0 1000"`,
		`blkio/blkio.throttle.write_iops_device="8:16 7"`,
		`hugetlb/hugetlb.2MB.limit_in_bytes="4194304"`,
		`hugetlb/hugetlb.2MB.rsvd.limit_in_bytes="4194304"`,
		`net_cls/net_cls.classid="1048577"`,
		`net_prio/net_prio.ifpriomap="eth0 5"`,
		`rdma/rdma.max="mlx5_0 hca_handle=3"`,
	}
	if got := planStrings(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// BFQ hosts take the weight in the bfq files.
	ws, _ = planV1(&specs.LinuxResources{BlockIO: r.BlockIO}, hostFeatures{bfq: true})
	if got := planStrings(ws); got[0] != `blkio/blkio.bfq.weight="300"` || got[2] != `blkio/blkio.bfq.weight_device="8:0 100"` {
		t.Errorf("bfq plan %v", got)
	}
	if _, err := planV1(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, hostFeatures{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("unified on v1: %v", err)
	}
}

func TestPlanV2AllResources(t *testing.T) {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: p64(1 << 20), Swap: p64(3 << 20), Reservation: p64(1 << 19), Swappiness: pu64(5)},
		CPU:    &specs.LinuxCPU{Shares: pu64(1024), Quota: p64(20000), Period: pu64(50000), Burst: pu64(1000), Idle: p64(0), Cpus: "0-1", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: p64(42)},
		BlockIO: &specs.LinuxBlockIO{Weight: pu16(1000),
			WeightDevice:           []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: pu16(10)}},
			ThrottleReadBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
			ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 0}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "1GB", Limit: 1 << 30}},
		Unified:        map[string]string{"memory.high": "900000", "cpu.uclamp.min": "10"},
	}
	ws, err := planV2(r, hostFeatures{swap: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`memory.swap.max="2097152"`,
		`memory.max="1048576"`,
		`memory.low="524288"`,
		`cpu.weight="100"`,
		`cpu.max="20000 50000"`,
		`cpu.max.burst="1000"`,
		`cpu.idle="0"`,
		`cpuset.cpus="0-1"`,
		`cpuset.mems="0"`,
		`pids.max="42"`,
		`io.weight="default 10000"`,
		`io.weight="8:0 1"`,
		`io.max="8:0 rbps=1000"`,
		`io.max="8:0 wbps=max"`,
		`hugetlb.1GB.max="1073741824"`,
		`cpu.uclamp.min="10"`,
		`memory.high="900000"`,
	}
	if got := planStrings(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for name, bad := range map[string]*specs.LinuxResources{
		"realtime":       {CPU: &specs.LinuxCPU{RealtimeRuntime: p64(1)}},
		"net_cls":        {Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 1}}}},
		"leaf weight":    {BlockIO: &specs.LinuxBlockIO{LeafWeight: pu16(10)}},
		"swap w/o accnt": {Memory: &specs.LinuxMemory{Limit: p64(1), Swap: p64(5)}},
	} {
		if _, err := planV2(bad, hostFeatures{}); !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: %v, want ErrNotSupported", name, err)
		}
	}
	for _, key := range []string{"../x", "cgroup.procs", "memory", "a/b.c", ""} {
		if _, err := planV2(&specs.LinuxResources{Unified: map[string]string{key: "1"}}, hostFeatures{}); err == nil {
			t.Errorf("unified key %q accepted", key)
		}
	}
	if _, err := planV2(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../2MB"}}}, hostFeatures{}); err == nil {
		t.Error("hugepage size with a path accepted")
	}
}

func TestDeviceRules(t *testing.T) {
	bad := []specs.LinuxDeviceCgroup{
		{Type: "x"}, {Access: "rwx"}, {Access: "rr"}, {Major: p64(-2)}, {Minor: p64(1 << 30)},
	}
	for _, d := range bad {
		if _, err := parseDeviceRule(d); err == nil {
			t.Errorf("rule %+v accepted", d)
		}
	}
	for _, d := range DefaultAllowedDevices() {
		if !d.Allow || d.Type != "c" || d.Major == nil || *d.Major < 0 {
			t.Errorf("default rule %+v is not a specific char device", d)
		}
	}
	if r := DefaultDeviceRules()[0]; r.Allow || r.Type != "" {
		t.Errorf("default rules do not start with deny-all: %+v", r)
	}
	insns, err := deviceFilterInsns(DefaultDeviceRules())
	if err != nil {
		t.Fatal(err)
	}
	if last := insns[len(insns)-1]; last != exit().bpfInsn {
		t.Fatalf("device filter does not end in exit: %+v", last)
	}
}

func TestInnerPath(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
		err  bool
	}{
		{Config{ID: "abc"}, "abc", false},
		{Config{Path: "/a/b/../c"}, "/a/c", false},
		{Config{Path: "rel/x"}, "rel/x", false},
		{Config{Path: "../../etc"}, "etc", false},
		{Config{Path: "/../.."}, "", true},
		{Config{}, "", true},
		{Config{ID: "../x"}, "", true},
	} {
		got, err := innerPath(c.cfg)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("innerPath(%+v) = %q, %v", c.cfg, got, err)
		}
	}
}

func TestSystemdNames(t *testing.T) {
	for _, c := range []struct {
		path, id, slice, unit string
		err                   bool
	}{
		{"", "c1", "system.slice", "capsa-c1.scope", false},
		{"user.slice:docker:abc", "", "user.slice", "docker-abc.scope", false},
		{":p:n", "", "system.slice", "p-n.scope", false},
		{"system.slice::my.slice", "", "system.slice", "my.slice", false},
		{"a:b", "", "", "", true},
		{"x.slice:p:../n", "", "", "", true},
	} {
		slice, unit, err := parseSystemdPath(c.path, c.id)
		if (err != nil) != c.err || slice != c.slice || unit != c.unit {
			t.Errorf("parseSystemdPath(%q) = %q, %q, %v", c.path, slice, unit, err)
		}
	}
	for in, want := range map[string]string{"system.slice": "/system.slice", "a-b-c.slice": "/a.slice/a-b.slice/a-b-c.slice", "-.slice": "/"} {
		if got, err := expandSlice(in); err != nil || got != want {
			t.Errorf("expandSlice(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"a--b.slice", "noslice", ".slice", "a/b.slice"} {
		if _, err := expandSlice(in); err == nil {
			t.Errorf("expandSlice(%q) accepted", in)
		}
	}
}

func TestParsers(t *testing.T) {
	b, err := parseBlkioFile("8:0 Read 100\n8:0 Write 5\n8:0 Sync 105\n8:16 2048\nTotal 105\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []BlkioEntry{{8, 0, "Read", 100}, {8, 0, "Write", 5}, {8, 0, "Sync", 105}, {8, 16, "", 2048}}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("parseBlkioFile = %+v", b)
	}
	io, err := parseIOStat("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(io.IoServiceBytesRecursive) != 3 || io.IoServiceBytesRecursive[1] != (BlkioEntry{254, 0, "Write", 20}) || io.IoServicedRecursive[0].Value != 1 {
		t.Errorf("parseIOStat = %+v", io)
	}
	cpus, err := parseCPUList("0-2,5,7-8\n")
	if err != nil || !reflect.DeepEqual(cpus, []uint16{0, 1, 2, 5, 7, 8}) {
		t.Errorf("parseCPUList = %v, %v", cpus, err)
	}
	for _, bad := range []string{"3-1", "a", "1-", "-"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
	kv, err := parseKeyValues("usage_usec 10\nnr_periods 0\nmax max\n")
	if err != nil || kv["usage_usec"] != 10 || kv["max"] != ^uint64(0) {
		t.Errorf("parseKeyValues = %v, %v", kv, err)
	}
	if _, err := parseKeyValues("a b c\n"); err == nil {
		t.Error("three fields accepted")
	}
	if v, err := parseUint("-1"); err != nil || v != 0 {
		t.Errorf("parseUint(-1) = %d, %v", v, err)
	}
	for b, want := range map[uint64]string{2 << 20: "2MB", 1 << 30: "1GB", 64 << 10: "64KB"} {
		if got := pageSizeName(b); got != want {
			t.Errorf("pageSizeName(%d) = %q", b, got)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cgroup")
	content := "12:cpu,cpuacct:/a/b\n1:name=systemd:/user.slice\n0::/init.scope\n"
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parseProcCgroup(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/a/b", "cpuacct": "/a/b", "name=systemd": "/user.slice", "": "/init.scope"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseProcCgroup = %v", got)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "512m": 512 << 20, "1g": 1 << 30, "1GiB": 1 << 30, "2kb": 2048, "-1": -1, "1.5k": 1536} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-5", "1x", "99999999999p", "+1"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

func TestMergeAndUpdate(t *testing.T) {
	cur := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: p64(100), Swap: p64(200)},
		CPU:    &specs.LinuxCPU{Shares: pu64(512), Cpus: "0"},
		Pids:   &specs.LinuxPids{Limit: p64(10)},
	}
	out, err := ApplyUpdate(cur, Update{CPUQuota: p64(5000), Memory: p64(-1), PidsLimit: p64(20), CpusetCpus: func() *string { s := "1"; return &s }()})
	if err != nil {
		t.Fatal(err)
	}
	if *out.CPU.Quota != 5000 || *out.CPU.Shares != 512 || out.CPU.Cpus != "1" || *out.Memory.Limit != -1 || *out.Memory.Swap != -1 || *out.Pids.Limit != 20 {
		b, _ := json.Marshal(out)
		t.Errorf("ApplyUpdate = %s", b)
	}
	// cur is untouched.
	if *cur.Memory.Limit != 100 || cur.CPU.Quota != nil || *cur.Pids.Limit != 10 {
		t.Error("ApplyUpdate changed its input")
	}
	out, err = MergeResources(cur, &specs.LinuxResources{Unified: map[string]string{"memory.high": "5"}, BlockIO: &specs.LinuxBlockIO{Weight: pu16(10)}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Unified["memory.high"] != "5" || *out.BlockIO.Weight != 10 || *out.Memory.Swap != 200 {
		t.Errorf("MergeResources = %+v", out)
	}
}

// The JSON field names are runc's `events --stats` names.
func TestStatsJSONShape(t *testing.T) {
	s := Stats{CPU: CPU{Usage: CPUUsage{Total: 1, Percpu: []uint64{1}}, Throttling: Throttling{ThrottledPeriods: 2}},
		Memory: Memory{Usage: MemoryEntry{Limit: 3}, Raw: map[string]uint64{"cache": 1}},
		Pids:   Pids{Current: 4}, Blkio: Blkio{IoServiceBytesRecursive: []BlkioEntry{{Major: 8, Op: "Read", Value: 1}}},
		Hugetlb: map[string]Hugetlb{"2MB": {Usage: 1}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cpu":{"usage":{"total":1,"percpu":[1]`, `"throttling":{"throttledPeriods":2}`, `"memory":{"usage":{"limit":3,"failcnt":0}`,
		`"raw":{"cache":1}`, `"pids":{"current":4}`, `"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":1}]}`, `"hugetlb":{"2MB":{"usage":1,"failcnt":0}}`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("stats JSON %s lacks %s", b, key)
		}
	}
}
