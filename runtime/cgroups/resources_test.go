package cgroups_test

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/runtime/cgroups"
)

// blockDevice returns "maj:min" of a real block device, or "".
func blockDevice() string {
	for _, name := range []string{"vda", "sda", "nvme0n1", "ram0", "loop0"} {
		b, err := os.ReadFile("/sys/block/" + name + "/dev")
		if err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// Every resource the host supports is set, then each kernel file is read
// back; cpuset is also checked on a process's affinity.
func TestSetResourcesKernelFiles(t *testing.T) {
	integration(t)
	m := newManager(t, cgName(t), nil)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // file -> expected content (substring for multi-line files)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20))},
		CPU: &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(20000)), Period: ptr(uint64(50000)),
			Burst: ptr(uint64(1000)), Cpus: "0", Mems: "0"},
		Pids: &specs.LinuxPids{Limit: ptr(int64(100))},
	}
	dev := blockDevice()
	var major, minor int64
	if dev != "" {
		maj, min, _ := strings.Cut(dev, ":")
		major, minor = atoi64(t, maj), atoi64(t, min)
		r.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1 << 20}}}
	}
	if cgroups.IsV2() {
		want["memory.max"] = "67108864"
		want["memory.low"] = "33554432"
		want["cpu.weight"] = "59" // SharesToWeight(512)
		want["cpu.max"] = "20000 50000"
		want["cpu.max.burst"] = "1000"
		want["cpuset.cpus"] = "0"
		want["cpuset.mems"] = "0"
		want["pids.max"] = "100"
		r.CPU.Idle = ptr(int64(0))
		want["cpu.idle"] = "0"
		r.Unified = map[string]string{"memory.high": "50331648"}
		want["memory.high"] = "50331648"
		if dev != "" && cgroups.Exists(ctrlDir(t, m, "io.max"), "io.max") {
			want["io.max"] = dev + " rbps=1048576 wbps=max riops=max wiops=max"
		} else {
			r.BlockIO = nil
		}
		if cgroups.Exists(ctrlDir(t, m, "memory.max"), "memory.swap.max") {
			r.Memory.Swap = ptr(int64(96 << 20))
			want["memory.swap.max"] = "33554432"
		}
	} else {
		d := ctrlDir(t, m, "memory.stat")
		want["memory.limit_in_bytes"] = "67108864"
		want["memory.soft_limit_in_bytes"] = "33554432"
		r.Memory.Swappiness = ptr(uint64(10))
		want["memory.swappiness"] = "10"
		r.Memory.KernelTCP = ptr(int64(16 << 20))
		want["memory.kmem.tcp.limit_in_bytes"] = "16777216"
		r.Memory.DisableOOMKiller = ptr(true)
		want["memory.oom_control"] = "oom_kill_disable 1"
		if cgroups.Exists(d, "memory.memsw.limit_in_bytes") {
			r.Memory.Swap = ptr(int64(96 << 20))
			want["memory.memsw.limit_in_bytes"] = "100663296"
		}
		want["cpu.shares"] = "512"
		want["cpu.cfs_quota_us"] = "20000"
		want["cpu.cfs_period_us"] = "50000"
		want["cpu.cfs_burst_us"] = "1000"
		if cgroups.Exists(ctrlDir(t, m, "cpu.shares"), "cpu.rt_runtime_us") {
			r.CPU.RealtimePeriod = ptr(uint64(1000000))
			r.CPU.RealtimeRuntime = ptr(int64(10000))
			want["cpu.rt_period_us"] = "1000000"
			want["cpu.rt_runtime_us"] = "10000"
		}
		want["cpuset.cpus"] = "0"
		want["cpuset.mems"] = "0"
		want["pids.max"] = "100"
		if dev != "" {
			want["blkio.throttle.read_bps_device"] = dev + " 1048576"
			bd := ctrlDir(t, m, "blkio.weight")
			r.BlockIO.Weight = ptr(uint16(300))
			if cgroups.Exists(bd, "blkio.weight") {
				want["blkio.weight"] = "300"
			} else {
				want["blkio.bfq.weight"] = "300"
			}
		}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	for file, w := range want {
		got := readCgroupFile(t, m, file)
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q, want %q", file, got, w)
		}
	}
	// The effect of cpuset.cpus on a process.
	p := startGated(t, `grep Cpus_allowed_list /proc/self/status`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	p.release(t)
	if err := p.wait(t); err != nil {
		t.Fatalf("grep: %v: %s", err, p.out.String())
	}
	if got := strings.Fields(p.out.String()); len(got) != 2 || got[1] != "0" {
		t.Errorf("process affinity %q, want Cpus_allowed_list 0", p.out.String())
	}
	// Set again with other values (update): the ordering logic must cope
	// with lowering and raising.
	r2 := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(128 << 20))}, CPU: &specs.LinuxCPU{Period: ptr(uint64(10000)), Quota: ptr(int64(5000))}}
	if r.Memory.Swap != nil {
		r2.Memory.Swap = ptr(int64(256 << 20))
	}
	// cpu.idle=1 makes the group SCHED_IDLE (its shares then read as the
	// minimum), so it is checked here, apart from cpu.shares.
	idle := cgroups.Exists(ctrlDir(t, m, "cpu.stat"), "cpu.idle")
	if idle {
		r2.CPU.Idle = ptr(int64(1))
	}
	if err := m.Set(r2); err != nil {
		t.Fatalf("update: %v", err)
	}
	if idle {
		if got := readCgroupFile(t, m, "cpu.idle"); got != "1" {
			t.Errorf("cpu.idle after update %q", got)
		}
	}
	if cgroups.IsV2() {
		if got := readCgroupFile(t, m, "cpu.max"); got != "5000 10000" {
			t.Errorf("cpu.max after update %q", got)
		}
	} else if got := readCgroupFile(t, m, "cpu.cfs_period_us"); got != "10000" {
		t.Errorf("cpu.cfs_period_us after update %q", got)
	}
}

func atoi64(t *testing.T, s string) int64 {
	t.Helper()
	var v int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		v = v*10 + int64(c-'0')
	}
	return v
}
