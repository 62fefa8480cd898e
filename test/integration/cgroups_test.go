package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/runtime/cgroups"
)

// The runtime's cgroup behaviour (issue 3): limits from config.json reach
// the kernel and take effect, pause/resume/update/events work on a running
// container, and nothing is left in any hierarchy. Each test reads the v1
// or the v2 files, whichever the host has (cgroups.IsV2); `make
// test-cgroupv2` runs them on a unified hierarchy in a VM. Every container
// gets an absolute cgroupsPath /capsa-cgtest-NAME, so its directories are
// known in every hierarchy.

// cgTestPath is the cgroupsPath of a test's container.
func cgTestPath(name string) string { return "/capsa-cgtest-" + name }

// cgFile is the path of a cgroup file: v1File in the v1Ctrl hierarchy, or
// v2File in the unified one.
func cgFile(path, v1Ctrl, v1File, v2File string) string {
	if cgroups.IsV2() {
		return filepath.Join("/sys/fs/cgroup", path, v2File)
	}
	return filepath.Join("/sys/fs/cgroup", v1Ctrl, path, v1File)
}

// cgDirs lists the directories of cgroup path that exist in any hierarchy
// (and one level below a hierarchy's root, where a runtime might misplace
// it).
func cgDirs(path string) []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup" + path, "/sys/fs/cgroup/*" + path, "/sys/fs/cgroup/*/*" + path} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				out = append(out, p)
			}
		}
	}
	return out
}

// requireNoCgroup fails unless path is gone from every hierarchy now.
func requireNoCgroup(t *testing.T, path, after string) {
	t.Helper()
	if left := cgDirs(path); len(left) > 0 {
		t.Fatalf("after %s, cgroup directories are left: %v", after, left)
	}
}

// readCg reads a cgroup file, trimmed; a missing file fails the test.
func readCg(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return strings.TrimSpace(string(data))
}

// keyedCg reads a "key value" cgroup file (memory.stat, cpu.stat,
// memory.events, pids.events, v1 memory.oom_control).
func keyedCg(t *testing.T, file string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, line := range strings.Split(readCg(t, file), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("%s: line %q: %v", file, line, err)
		}
		out[f[0]] = n
	}
	return out
}

func uintCg(t *testing.T, file string) uint64 {
	t.Helper()
	s := readCg(t, file)
	if s == "max" {
		return ^uint64(0)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", file, s, err)
	}
	return n
}

// oomKills is the kernel's count of OOM kills in the cgroup.
func oomKills(t *testing.T, path string) uint64 {
	t.Helper()
	return keyedCg(t, cgFile(path, "memory", "memory.oom_control", "memory.events"))["oom_kill"]
}

// cpuUsageFile is the cgroup's CPU time in ns, read from the kernel file.
func cpuUsageFile(t *testing.T, path string) uint64 {
	t.Helper()
	if cgroups.IsV2() {
		return keyedCg(t, cgFile(path, "", "", "cpu.stat"))["usage_usec"] * 1000
	}
	return uintCg(t, cgFile(path, "cpuacct", "cpuacct.usage", ""))
}

// frozen reports the freezer state as the kernel files say it.
func frozen(t *testing.T, path string) string {
	t.Helper()
	if cgroups.IsV2() {
		return "cgroup.freeze=" + readCg(t, cgFile(path, "", "", "cgroup.freeze")) +
			" frozen=" + strconv.FormatUint(keyedCg(t, cgFile(path, "", "", "cgroup.events"))["frozen"], 10)
	}
	return readCg(t, cgFile(path, "freezer", "freezer.state", ""))
}

func frozenWant(isFrozen bool) string {
	switch {
	case cgroups.IsV2() && isFrozen:
		return "cgroup.freeze=1 frozen=1"
	case cgroups.IsV2():
		return "cgroup.freeze=0 frozen=0"
	case isFrozen:
		return "FROZEN"
	}
	return "THAWED"
}

// statsEvent is one line of `events`.
type statsEvent struct {
	Type string         `json:"type"`
	ID   string         `json:"id"`
	Data *cgroups.Stats `json:"data"`
}

// stats runs `events --stats` and returns its figures.
func (r *rt) stats(id string) cgroups.Stats {
	r.t.Helper()
	out := r.ok("events", "--stats", id)
	var ev statsEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Type != "stats" || ev.ID != id || ev.Data == nil {
		r.t.Fatalf("events --stats %s printed %q (%v), want one stats event", id, out, err)
	}
	return *ev.Data
}

// limits is the resources most tests give their container.
type limits struct {
	memory, swap int64 // bytes; 0: not set
	quota        int64
	period       uint64
	shares       uint64
	pids         int64
}

// limitedBundle is a busybox bundle running args in cgroup path with lim.
func limitedBundle(t *testing.T, path string, lim limits, args ...string) *testutil.Bundle {
	t.Helper()
	b := testutil.NewBundle(t, args...)
	setLimits(b, path, lim)
	b.Write(t)
	return b
}

func setLimits(b *testutil.Bundle, path string, lim limits) {
	b.Spec.Linux.CgroupsPath = path
	res := b.Spec.Linux.Resources
	if res == nil {
		res = &specs.LinuxResources{}
		b.Spec.Linux.Resources = res
	}
	if lim.memory != 0 {
		res.Memory = &specs.LinuxMemory{Limit: &lim.memory}
		if lim.swap != 0 {
			res.Memory.Swap = &lim.swap
		}
	}
	if lim.quota != 0 || lim.shares != 0 {
		res.CPU = &specs.LinuxCPU{}
		if lim.quota != 0 {
			res.CPU.Quota, res.CPU.Period = &lim.quota, &lim.period
		}
		if lim.shares != 0 {
			res.CPU.Shares = &lim.shares
		}
	}
	if lim.pids != 0 {
		res.Pids = &specs.LinuxPids{Limit: &lim.pids}
	}
}

// memHog is a shell that grows a string by 1 MiB chunks, n times (0:
// forever), then prints "allocated". Its peak is about twice n MiB (the
// shell copies the string to append to it).
func memHog(n int) string {
	cond := ":"
	if n > 0 {
		cond = fmt.Sprintf("[ $i -lt %d ]", n)
	}
	return `x=$(head -c 1048576 /dev/zero | tr '\0' a); s=; i=0; while ` + cond + `; do s="$s$x"; i=$((i+1)); done; echo allocated`
}

// TestCgroupsLimitsInKernelFiles: the limits of config.json are in the
// kernel's files of the container's cgroup, which holds its init.
func TestCgroupsLimitsInKernelFiles(t *testing.T) {
	r := newRT(t)
	path := cgTestPath("limits")
	b := limitedBundle(t, path, limits{memory: 64 << 20, quota: 50000, period: 100000, shares: 512, pids: 10}, "sleep", "1000")
	r.ok("run", "-d", "--bundle", b.Dir, "cg-limits")
	pid := strconv.Itoa(r.state("cg-limits").Pid)
	ctrls := []string{"memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio", "cpuset"}
	if cgroups.IsV2() {
		ctrls = []string{""}
	}
	for _, c := range ctrls {
		procs := cgFile(path, c, "cgroup.procs", "cgroup.procs")
		if !containsWord(readCg(t, procs), pid) {
			t.Errorf("init %s is not in %s: %q", pid, procs, readCg(t, procs))
		}
	}
	want := map[string]string{
		cgFile(path, "memory", "memory.limit_in_bytes", "memory.max"): "67108864",
		cgFile(path, "pids", "pids.max", "pids.max"):                  "10",
	}
	if cgroups.IsV2() {
		want[cgFile(path, "", "", "cpu.max")] = "50000 100000"
		want[cgFile(path, "", "", "cpu.weight")] = strconv.FormatUint(cgroups.SharesToWeight(512), 10)
	} else {
		want[cgFile(path, "cpu", "cpu.cfs_quota_us", "")] = "50000"
		want[cgFile(path, "cpu", "cpu.cfs_period_us", "")] = "100000"
		want[cgFile(path, "cpu", "cpu.shares", "")] = "512"
	}
	for file, w := range want {
		if got := readCg(t, file); got != w {
			t.Errorf("%s = %q, want %q", file, got, w)
		}
	}
	r.ok("delete", "--force", "cg-limits")
	requireNoCgroup(t, path, "delete --force")
}

// eventStream is a running `capsa-runtime events` and the lines it printed.
type eventStream struct {
	lines  chan string
	exited chan struct{} // closed when the process has ended; then err is set
	err    error
}

func (r *rt) events(id string, args ...string) *eventStream {
	r.t.Helper()
	cmd := exec.Command(r.bin, append(append([]string{"--root", r.root, "events"}, args...), id)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	es := &eventStream{lines: make(chan string, 1000), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			select {
			case es.lines <- sc.Text():
			default: // nobody reads any more: drop
			}
		}
		close(es.lines)
		if err := cmd.Wait(); err != nil {
			es.err = fmt.Errorf("%w; stderr %q", err, stderr.String())
		}
		close(es.exited)
	}()
	r.t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails when it has ended by itself
		<-es.exited
	})
	return es
}

// next waits (generously) for the next line whose event type is typ, and
// returns the lines seen before it too.
func (es *eventStream) next(t *testing.T, typ string) (statsEvent, []string) {
	t.Helper()
	var seen []string
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-es.lines:
			if !ok {
				t.Fatalf("events ended before a %q event; it printed:\n%s", typ, strings.Join(seen, "\n"))
			}
			var ev statsEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("events printed %q: %v", line, err)
			}
			if ev.Type == typ {
				return ev, seen
			}
			seen = append(seen, line)
		case <-deadline:
			t.Fatalf("no %q event within a minute; events printed:\n%s", typ, strings.Join(seen, "\n"))
		}
	}
}

// TestCgroupsMemoryOOMKill: a hog allocating 1 MiB chunks is OOM-killed at
// the memory limit, and `events` reports it.
func TestCgroupsMemoryOOMKill(t *testing.T) {
	r := newRT(t)
	path := cgTestPath("oom")
	const limit = 32 << 20
	// swap = limit: no swap to escape to.
	b := limitedBundle(t, path, limits{memory: limit, swap: limit}, "sh", "-c", memHog(0))
	r.ok("create", "--bundle", b.Dir, "cg-oom")
	es := r.events("cg-oom", "--interval", "200ms")
	// The first stats line comes after events subscribed to OOM events.
	if ev, _ := es.next(t, "stats"); ev.ID != "cg-oom" {
		t.Fatalf("stats event for %q", ev.ID)
	}
	r.ok("start", "cg-oom")
	ev, _ := es.next(t, "oom")
	if ev.ID != "cg-oom" {
		t.Errorf("oom event for %q, want cg-oom", ev.ID)
	}
	r.waitStatus("cg-oom", "stopped")
	if n := oomKills(t, path); n < 1 {
		t.Errorf("the kernel counted %d OOM kills in %s", n, path)
	}
	peakFile := cgFile(path, "memory", "memory.max_usage_in_bytes", "memory.peak")
	if _, err := os.Stat(peakFile); err == nil {
		if peak := uintCg(t, peakFile); peak > limit {
			t.Errorf("%s = %d, above the limit %d", peakFile, peak, limit)
		}
	}
	// events ends by itself once the container has stopped.
	select {
	case <-es.exited:
		if es.err != nil {
			t.Errorf("events: %v", es.err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("events still runs a minute after the container stopped")
	}
	r.ok("delete", "cg-oom")
	requireNoCgroup(t, path, "delete")
}

// TestCgroupsPidsLimitRefusesFork: with pids.max 8 the shell (pid 1) forks
// 7 children and the 8th fork fails.
func TestCgroupsPidsLimitRefusesFork(t *testing.T) {
	r := newRT(t)
	path := cgTestPath("pids")
	b := limitedBundle(t, path, limits{pids: 8}, "sh", "-c", `i=0; while [ $i -lt 20 ]; do sleep 1000 & i=$((i+1)); echo $i; done; echo all-forked`)
	res := r.runBundle(b, "cg-pids")
	lines := strings.Fields(res.stdout)
	if res.code == 0 || len(lines) == 0 || lines[len(lines)-1] != "7" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 7 forks, then the shell failing", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "can't fork") {
		t.Errorf("stderr %q does not say the fork failed", res.stderr)
	}
	requireNoCgroup(t, path, "run")
}

// busyLoop is a shell using all the CPU it gets.
var busyLoop = []string{"sh", "-c", "while :; do :; done"}

// TestCgroupsPauseStopsCPU: a paused busy container uses no CPU until it is
// resumed. The wait while it is frozen is event-based: until a second busy
// container has used half a second of CPU time.
func TestCgroupsPauseStopsCPU(t *testing.T) {
	r := newRT(t)
	path, refPath := cgTestPath("pause"), cgTestPath("pause-ref")
	b := limitedBundle(t, path, limits{pids: 10}, busyLoop...)
	ref := limitedBundle(t, refPath, limits{pids: 10}, busyLoop...)
	r.ok("run", "-d", "--bundle", b.Dir, "cg-pause")
	r.ok("run", "-d", "--bundle", ref.Dir, "cg-pause-ref")
	const ms = uint64(time.Millisecond)
	testutil.Eventually(t, "the busy container to use CPU", func() bool { return r.stats("cg-pause").CPU.Usage.Total > 50*ms })

	r.ok("pause", "cg-pause")
	if st := r.state("cg-pause").Status; st != "paused" {
		t.Fatalf("after pause: %s", st)
	}
	if got := frozen(t, path); got != frozenWant(true) {
		t.Fatalf("after pause: %s, want %s", got, frozenWant(true))
	}
	frozenUsage := r.stats("cg-pause").CPU.Usage.Total
	refStart := r.stats("cg-pause-ref").CPU.Usage.Total
	testutil.Eventually(t, "the reference container to use 500ms of CPU", func() bool {
		return r.stats("cg-pause-ref").CPU.Usage.Total > refStart+500*ms
	})
	if u := r.stats("cg-pause").CPU.Usage.Total; u != frozenUsage {
		t.Errorf("CPU usage of the paused container went from %d to %d ns", frozenUsage, u)
	}
	if u := cpuUsageFile(t, path); u != frozenUsage {
		t.Errorf("CPU usage file of the paused container: %d ns, events --stats said %d", u, frozenUsage)
	}

	r.ok("resume", "cg-pause")
	if st := r.state("cg-pause").Status; st != "running" {
		t.Fatalf("after resume: %s", st)
	}
	if got := frozen(t, path); got != frozenWant(false) {
		t.Fatalf("after resume: %s, want %s", got, frozenWant(false))
	}
	testutil.Eventually(t, "the resumed container to use CPU again", func() bool {
		return r.stats("cg-pause").CPU.Usage.Total > frozenUsage+50*ms
	})
	r.ok("delete", "--force", "cg-pause-ref")
	r.ok("delete", "--force", "cg-pause")
	requireNoCgroup(t, path, "delete --force")
	requireNoCgroup(t, refPath, "delete --force")
}

// TestCgroupsUpdateMemory: update --memory on a running container changes
// the kernel's limit, and an allocation that fitted before is OOM-killed
// after, and fits again once the limit is raised.
func TestCgroupsUpdateMemory(t *testing.T) {
	r := newRT(t)
	path := cgTestPath("update")
	b := limitedBundle(t, path, limits{memory: 64 << 20}, "sleep", "1000")
	r.ok("run", "-d", "--bundle", b.Dir, "cg-update")
	limitFile := cgFile(path, "memory", "memory.limit_in_bytes", "memory.max")
	hog := memHog(20) // peaks at about 42 MiB
	tryHog := func(wantOK bool) {
		t.Helper()
		res := r.run("exec", "cg-update", "sh", "-c", hog)
		if ok := res.code == 0 && res.stdout == "allocated\n"; ok != wantOK {
			t.Fatalf("with %s = %s: a 20 MiB allocation ended with exit %d, stdout %q, stderr %q; want success %v",
				limitFile, readCg(t, limitFile), res.code, res.stdout, res.stderr, wantOK)
		}
	}
	tryHog(true)
	kills := oomKills(t, path)

	r.ok("update", "--memory", "16m", "cg-update")
	if got := readCg(t, limitFile); got != "16777216" {
		t.Fatalf("after update --memory 16m: %s = %s", limitFile, got)
	}
	tryHog(false)
	if n := oomKills(t, path); n <= kills {
		t.Errorf("OOM kills %d before and %d after the 16 MiB allocation", kills, n)
	}

	r.ok("update", "--memory", "128m", "cg-update")
	if got := readCg(t, limitFile); got != "134217728" {
		t.Fatalf("after update --memory 128m: %s = %s", limitFile, got)
	}
	tryHog(true)
	if s := r.stats("cg-update"); s.Memory.Usage.Limit != 128<<20 {
		t.Errorf("events --stats memory limit %d after update --memory 128m", s.Memory.Usage.Limit)
	}
	r.ok("delete", "--force", "cg-update")
	requireNoCgroup(t, path, "delete --force")
}

// cgFigures are the numbers of events --stats that the test reads from the
// kernel files too.
type cgFigures struct {
	CPUTotal, CPUUser, CPUKernel         uint64
	Periods, ThrottledPeriods, Throttled uint64
	MemUsage, MemLimit                   uint64
	MemRaw                               map[string]uint64
	PidsCurrent, PidsLimit               uint64
}

func figuresFromStats(s cgroups.Stats) cgFigures {
	return cgFigures{
		CPUTotal: s.CPU.Usage.Total, CPUUser: s.CPU.Usage.User, CPUKernel: s.CPU.Usage.Kernel,
		Periods: s.CPU.Throttling.Periods, ThrottledPeriods: s.CPU.Throttling.ThrottledPeriods, Throttled: s.CPU.Throttling.ThrottledTime,
		MemUsage: s.Memory.Usage.Usage, MemLimit: s.Memory.Usage.Limit, MemRaw: s.Memory.Raw,
		PidsCurrent: s.Pids.Current, PidsLimit: s.Pids.Limit,
	}
}

func figuresFromFiles(t *testing.T, path string) cgFigures {
	t.Helper()
	var f cgFigures
	var cpuStat map[string]uint64
	if cgroups.IsV2() {
		cpuStat = keyedCg(t, cgFile(path, "", "", "cpu.stat"))
		f.CPUTotal, f.CPUUser, f.CPUKernel = cpuStat["usage_usec"]*1000, cpuStat["user_usec"]*1000, cpuStat["system_usec"]*1000
		f.Throttled = cpuStat["throttled_usec"] * 1000
		f.MemUsage = uintCg(t, cgFile(path, "", "", "memory.current"))
	} else {
		f.CPUTotal = uintCg(t, cgFile(path, "cpuacct", "cpuacct.usage", ""))
		f.CPUUser = uintCg(t, cgFile(path, "cpuacct", "cpuacct.usage_user", ""))
		f.CPUKernel = uintCg(t, cgFile(path, "cpuacct", "cpuacct.usage_sys", ""))
		cpuStat = keyedCg(t, cgFile(path, "cpu", "cpu.stat", ""))
		f.Throttled = cpuStat["throttled_time"]
		f.MemUsage = uintCg(t, cgFile(path, "memory", "memory.usage_in_bytes", ""))
	}
	f.Periods, f.ThrottledPeriods = cpuStat["nr_periods"], cpuStat["nr_throttled"]
	f.MemLimit = uintCg(t, cgFile(path, "memory", "memory.limit_in_bytes", "memory.max"))
	f.MemRaw = keyedCg(t, cgFile(path, "memory", "memory.stat", "memory.stat"))
	f.PidsCurrent = uintCg(t, cgFile(path, "pids", "pids.current", "pids.current"))
	f.PidsLimit = uintCg(t, cgFile(path, "pids", "pids.max", "pids.max"))
	return f
}

// TestCgroupsEventsStatsEqualFiles: the numbers of events --stats are the
// kernel's. The files are read before and after events runs, until they did
// not change in between (the container sleeps, so they settle).
func TestCgroupsEventsStatsEqualFiles(t *testing.T) {
	r := newRT(t)
	path := cgTestPath("stats")
	b := limitedBundle(t, path, limits{memory: 64 << 20, quota: 50000, period: 100000, pids: 10}, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
	r.ok("run", "-d", "--bundle", b.Dir, "cg-stats")
	pidsFile := cgFile(path, "pids", "pids.current", "pids.current")
	testutil.Eventually(t, "three processes in the container", func() bool { return readCg(t, pidsFile) == "3" })
	var before, after, stats cgFigures
	testutil.Eventually(t, "the cgroup files to hold still while events --stats runs", func() bool {
		before = figuresFromFiles(t, path)
		stats = figuresFromStats(r.stats("cg-stats"))
		after = figuresFromFiles(t, path)
		return reflect.DeepEqual(before, after)
	})
	if stats.PidsCurrent != 3 || stats.PidsLimit != 10 || stats.MemLimit != 64<<20 || stats.CPUTotal == 0 || len(stats.MemRaw) == 0 {
		t.Errorf("events --stats: %+v; want 3 pids, limit 10, memory limit 64 MiB, some CPU time, memory.stat", stats)
	}
	for name, pair := range map[string][2]any{
		"cpu.usage.total":                 {stats.CPUTotal, before.CPUTotal},
		"cpu.usage.user":                  {stats.CPUUser, before.CPUUser},
		"cpu.usage.kernel":                {stats.CPUKernel, before.CPUKernel},
		"cpu.throttling.periods":          {stats.Periods, before.Periods},
		"cpu.throttling.throttledPeriods": {stats.ThrottledPeriods, before.ThrottledPeriods},
		"cpu.throttling.throttledTime":    {stats.Throttled, before.Throttled},
		"memory.usage.usage":              {stats.MemUsage, before.MemUsage},
		"memory.usage.limit":              {stats.MemLimit, before.MemLimit},
		"memory.raw":                      {stats.MemRaw, before.MemRaw},
		"pids.current":                    {stats.PidsCurrent, before.PidsCurrent},
		"pids.limit":                      {stats.PidsLimit, before.PidsLimit},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("events --stats %s = %v, the cgroup files say %v", name, pair[0], pair[1])
		}
	}
	r.ok("delete", "--force", "cg-stats")
	requireNoCgroup(t, path, "delete --force")
}

// TestCgroupsCreateDeleteCycles: 200 containers with limits, each in a
// cgroup of its own, created and deleted (half with create + delete
// --force, half with run); no cgroup directory is left in any hierarchy.
func TestCgroupsCreateDeleteCycles(t *testing.T) {
	r := newRT(t)
	b := limitedBundle(t, "", limits{memory: 64 << 20, quota: 50000, period: 100000, shares: 512, pids: 10}, "true")
	mine := "/sys/fs/cgroup/memory"
	if cgroups.IsV2() {
		mine = "/sys/fs/cgroup"
	}
	const cycles = 200
	for i := 0; i < cycles; i++ {
		path := cgTestPath(strconv.Itoa(i))
		id := fmt.Sprintf("cg-cycle-%d", i)
		b.Spec.Linux.CgroupsPath = path
		b.Write(t)
		if i%2 == 0 {
			r.ok("create", "--bundle", b.Dir, id)
			if _, err := os.Stat(mine + path); err != nil {
				t.Fatalf("cycle %d: the container's cgroup is not where expected: %v", i, err)
			}
			r.ok("delete", "--force", id)
			requireNoCgroup(t, path, fmt.Sprintf("cycle %d (create, delete --force)", i))
		} else {
			if res := r.runBundle(b, id); res.code != 0 {
				t.Fatalf("cycle %d: run: exit %d, stderr %q", i, res.code, res.stderr)
			}
			requireNoCgroup(t, path, fmt.Sprintf("cycle %d (run)", i))
		}
	}
	for _, pattern := range []string{"/sys/fs/cgroup/capsa-cgtest-*", "/sys/fs/cgroup/*/capsa-cgtest-*"} {
		if left, _ := filepath.Glob(pattern); len(left) > 0 {
			t.Errorf("left after %d cycles: %v", cycles, left)
		}
	}
}

// containerPids lists the host pids in the container's cgroup.
func containerPids(t *testing.T, path string) []string {
	t.Helper()
	return strings.Fields(readCg(t, cgFile(path, "pids", "cgroup.procs", "cgroup.procs")))
}

// requireGone fails unless every pid has exited (a zombie waiting for its
// parent to reap it counts as gone).
func requireGone(t *testing.T, pids []string) {
	t.Helper()
	for _, pid := range pids {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i < 0 || !strings.HasPrefix(string(stat[i+1:]), " Z") {
			t.Errorf("process %s is still alive after delete --force: %s", pid, stat)
		}
	}
}

// TestCgroupsDeleteForceFrozen: delete --force of a paused container kills
// its processes (a frozen task handles no SIGKILL until thawed) and removes
// its cgroups.
func TestCgroupsDeleteForceFrozen(t *testing.T) {
	r := newRT(t)
	path := cgTestPath("frozen")
	b := limitedBundle(t, path, limits{pids: 10}, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
	r.ok("run", "-d", "--bundle", b.Dir, "cg-frozen")
	testutil.Eventually(t, "three processes in the container", func() bool { return len(containerPids(t, path)) == 3 })
	r.ok("pause", "cg-frozen")
	if got := frozen(t, path); got != frozenWant(true) {
		t.Fatalf("after pause: %s", got)
	}
	pids := containerPids(t, path)
	r.ok("delete", "--force", "cg-frozen")
	r.fails("does not exist", "state", "cg-frozen")
	requireNoCgroup(t, path, "delete --force of a frozen container")
	requireGone(t, pids)
}

// TestCgroupsDeleteForceForking: delete --force of a container that forks
// all the time, at its pids limit. The inner shell exits when a fork fails
// (busybox sh does); the outer one, pid 1, then starts another.
func TestCgroupsDeleteForceForking(t *testing.T) {
	r := newRT(t)
	path := cgTestPath("forking")
	b := limitedBundle(t, path, limits{pids: 30}, "sh", "-c", `while :; do sh -c 'while :; do sleep 1 & done' 2>/dev/null; done`)
	r.ok("run", "-d", "--bundle", b.Dir, "cg-forking")
	events := cgFile(path, "pids", "pids.events", "pids.events")
	testutil.Eventually(t, "the container to hit its pids limit", func() bool { return keyedCg(t, events)["max"] > 0 })
	pids := containerPids(t, path)
	r.ok("delete", "--force", "cg-forking")
	r.fails("does not exist", "state", "cg-forking")
	requireNoCgroup(t, path, "delete --force of a forking container")
	requireGone(t, pids)
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
