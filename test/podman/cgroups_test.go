package podman

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/runtime/cgroups"
)

// The cgroup cases (issue 3): podman's resource flags, pause/unpause,
// update and stats, with runc and with capsa-runtime. podman reads and
// writes the container's cgroup itself for some of these (stats), and asks
// the runtime for others (pause, resume, update); each case records which
// runtime commands podman ran, through a wrapper that logs its argv, so that
// a runtime podman drives differently shows up in the transcript.

// argvWrapper is a shell script with the runtime's own base name (podman
// decides some flags by that name) that logs every invocation, one line of
// \x1f-separated arguments, and the content of an update's --resources
// file, then execs the real runtime.
const argvWrapper = `#!/bin/sh
sep=$(printf '\037')
line=
res=
next=
for a in "$@"; do
	line="$line$a$sep"
	if [ -n "$next" ]; then res=$a; next=; fi
	case "$a" in
	--resources=*|-r=*) res=${a#*=} ;;
	--resources|-r) next=1 ;;
	esac
done
if [ -n "$res" ] && [ "$res" != - ] && [ -f "$res" ]; then
	line="${line}RESOURCES=$(tr -d '\n' < "$res")$sep"
fi
printf '%s\n' "$line" >> '%LOG%'
exec '%REAL%' "$@"
`

// loggedRuntime wraps r in an argv-logging script in e's temp dir.
func (e *env) loggedRuntime(r runtimeUnderTest) (runtimeUnderTest, *argvLog) {
	e.t.Helper()
	dir := filepath.Join(e.dir, "argv-"+r.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	log := &argvLog{path: filepath.Join(dir, "argv.log")}
	script := strings.NewReplacer("%LOG%", log.path, "%REAL%", r.path).Replace(argvWrapper)
	wrapper := filepath.Join(dir, filepath.Base(r.path))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		e.t.Fatal(err)
	}
	return runtimeUnderTest{name: r.name, path: wrapper}, log
}

// argvLog is what the wrapper logged.
type argvLog struct {
	path string
	seen int // lines already returned by calls
}

// runtimeGlobalsWithValue are the runtime's global flags that take a
// separate value (conmon passes `--log FILE` to runtimes podman knows).
var runtimeGlobalsWithValue = map[string]bool{"--log": true, "--root": true, "--log-format": true, "--criu": true}

// calls returns the runtime invocations since the last call, each as
// "subcommand --flag…" (global flags, values, ids and paths left out: they
// differ by runtime and run; `state` queries left out) and the --resources
// documents of updates.
func (l *argvLog) calls(t *testing.T) (cmds []string, resources []string) {
	t.Helper()
	data, err := os.ReadFile(l.path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(data) == 0 {
		lines = nil
	}
	fresh := lines[min(l.seen, len(lines)):]
	l.seen = len(lines)
	for _, line := range fresh {
		args := strings.Split(strings.TrimSuffix(line, "\x1f"), "\x1f")
		i := 0
		for i < len(args) && strings.HasPrefix(args[i], "-") {
			if runtimeGlobalsWithValue[args[i]] {
				i++
			}
			i++
		}
		if i >= len(args) {
			cmds = append(cmds, "(no subcommand)")
			continue
		}
		if args[i] == "state" {
			continue // a query podman may make whenever it syncs; not an action
		}
		words := []string{args[i]}
		for _, a := range args[i+1:] {
			switch {
			case strings.HasPrefix(a, "RESOURCES="):
				resources = append(resources, strings.TrimPrefix(a, "RESOURCES="))
			case strings.HasPrefix(a, "-"):
				name, _, _ := strings.Cut(a, "=")
				words = append(words, name)
			}
		}
		cmds = append(cmds, strings.Join(words, " "))
	}
	return cmds, resources
}

// containerCgroup is a container's cgroup as podman reports it.
type containerCgroup struct {
	path string // below the hierarchy root, e.g. /ptest-1-2/libpod-ID
	pid  int
}

func (e *env) cgroupOf(r runtimeUnderTest, name string) (containerCgroup, error) {
	e.t.Helper()
	res := e.podman(r, "inspect", "--format", "{{.State.CgroupPath}} {{.State.Pid}}", name)
	if res.code != 0 {
		return containerCgroup{}, fmt.Errorf("podman inspect failed:\n%s", res)
	}
	f := strings.Fields(res.stdout)
	if len(f) != 2 {
		return containerCgroup{}, fmt.Errorf("podman inspect printed %q, want the cgroup path and pid", res.stdout)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return containerCgroup{}, fmt.Errorf("podman inspect: pid %q", f[1])
	}
	if !strings.HasPrefix(f[0], e.cgroupParent+"/") {
		return containerCgroup{}, fmt.Errorf("cgroup path %q is not below the --cgroup-parent %s", f[0], e.cgroupParent)
	}
	return containerCgroup{path: f[0], pid: pid}, nil
}

// file returns the path of a cgroup file: v1 names (controller/file) are
// mapped to the v2 file that holds the same setting on a unified host.
func (cg containerCgroup) file(v1Controller, v1File string) string {
	if !cgroups.IsV2() {
		return filepath.Join("/sys/fs/cgroup", v1Controller, cg.path, v1File)
	}
	v2 := map[string]string{
		"memory.limit_in_bytes": "memory.max",
		"freezer.state":         "cgroup.freeze",
		"cgroup.procs":          "cgroup.procs",
		"pids.max":              "pids.max",
		"cpu.cfs_quota_us":      "cpu.max",
		"cpu.cfs_period_us":     "cpu.max",
	}[v1File]
	return filepath.Join("/sys/fs/cgroup", cg.path, v2)
}

func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(data))
}

// limits describes the cgroup's limits the same way on v1 and v2.
func (cg containerCgroup) limits() string {
	mem := readTrim(cg.file("memory", "memory.limit_in_bytes"))
	var quota, period string
	if cgroups.IsV2() {
		quota, period, _ = strings.Cut(readTrim(cg.file("cpu", "cpu.cfs_quota_us")), " ")
	} else {
		quota, period = readTrim(cg.file("cpu", "cpu.cfs_quota_us")), readTrim(cg.file("cpu", "cpu.cfs_period_us"))
	}
	pids := readTrim(cg.file("pids", "pids.max"))
	return fmt.Sprintf("memory limit %s, cpu quota %s period %s, pids max %s", mem, quota, period, pids)
}

// freezer is "FROZEN"/"THAWED" (v1 freezer.state) or "1"/"0" (v2
// cgroup.freeze), normalized to the v1 words.
func (cg containerCgroup) freezer() string {
	s := readTrim(cg.file("freezer", "freezer.state"))
	switch s {
	case "1":
		return "FROZEN"
	case "0":
		return "THAWED"
	}
	return s
}

// holdsPid says whether pid is in the cgroup (in every v1 hierarchy the
// limits use).
func (cg containerCgroup) holdsPid() string {
	ctrls := []string{"memory", "cpu", "pids", "freezer"}
	if cgroups.IsV2() {
		ctrls = ctrls[:1]
	}
	for _, c := range ctrls {
		procs := readTrim(cg.file(c, "cgroup.procs"))
		if !containsField(procs, strconv.Itoa(cg.pid)) {
			return fmt.Sprintf("init %d not in %s (%q)", cg.pid, cg.file(c, "cgroup.procs"), procs)
		}
	}
	return "init in cgroup"
}

func containsField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if x == f {
			return true
		}
	}
	return false
}

// cgScenario runs the steps of a cgroup case with one runtime, keeping a
// transcript that does not depend on the runtime or the run: runc's is the
// reference that capsa-runtime's must equal.
type cgScenario struct {
	e          *env
	t          *testing.T
	r          runtimeUnderTest
	log        *argvLog
	name       string
	transcript strings.Builder
	stderr     strings.Builder
}

func (e *env) cgScenario(t *testing.T, r runtimeUnderTest, name string) *cgScenario {
	wrapped, log := e.loggedRuntime(r)
	return &cgScenario{e: e, t: t, r: wrapped, log: log, name: name}
}

// step runs a podman command and records its exit code and the runtime
// commands podman ran for it; stdout is recorded when keepStdout.
func (s *cgScenario) step(keepStdout bool, args ...string) result {
	s.t.Helper()
	res := s.e.podman(s.r, args...)
	fmt.Fprintf(&s.transcript, "[%s] exit %d\n", args[0], res.code)
	if keepStdout {
		s.transcript.WriteString(strings.ReplaceAll(res.stdout, s.name, "NAME"))
	}
	cmds, resources := s.log.calls(s.t)
	if len(cmds) == 0 {
		cmds = []string{"(none)"}
	}
	fmt.Fprintf(&s.transcript, "runtime: %s\n", strings.Join(cmds, "; "))
	for _, doc := range resources {
		fmt.Fprintf(&s.transcript, "update resources: %s\n", doc)
	}
	if res.code != 0 {
		fmt.Fprintf(&s.stderr, "%s\n", res)
	}
	return res
}

func (s *cgScenario) note(format string, a ...any) {
	fmt.Fprintf(&s.transcript, format+"\n", a...)
}

func (s *cgScenario) result() result {
	return result{cmd: "cgroup scenario " + s.name, stdout: s.transcript.String(), stderr: s.stderr.String()}
}

// run starts the scenario's container with the limits of issue 3.
func (s *cgScenario) run() (containerCgroup, bool) {
	s.t.Helper()
	args := append([]string{"run", "--detach", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "10"}, s.e.runFlags(s.name)...)
	if res := s.step(false, append(args, image, "sleep", "1000")...); res.code != 0 {
		return containerCgroup{}, false
	}
	cg, err := s.e.cgroupOf(s.r, s.name)
	if err != nil {
		s.note("cgroup: %v", err)
		return cg, false
	}
	s.note("%s", cg.holdsPid())
	return cg, true
}

// remove removes the container. The runtime calls are not recorded: the
// exit command conmon runs when the container dies may call the runtime at
// the same time as podman rm.
func (s *cgScenario) remove() {
	s.t.Helper()
	res := s.e.podman(s.r, "rm", "--force", "--time", "0", s.name)
	s.note("[rm] exit %d", res.code)
	if res.code != 0 {
		fmt.Fprintf(&s.stderr, "%s\n", res)
	}
}

// TestCgroupLimits: --memory, --cpus and --pids-limit end up in the
// container's cgroup files.
func TestCgroupLimits(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		s := e.cgScenario(t, r, "ptest-cg-limits-"+r.name)
		if cg, ok := s.run(); ok {
			s.note("%s", cg.limits())
			s.remove()
		}
		return s.result()
	}, want(`[run] exit 0
runtime: create --bundle --pid-file; start
init in cgroup
memory limit 67108864, cpu quota 50000 period 100000, pids max 10
[rm] exit 0
`, 0))
}

// TestCgroupPauseUnpause: podman pause freezes the cgroup and reports the
// container paused; unpause thaws it.
func TestCgroupPauseUnpause(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		s := e.cgScenario(t, r, "ptest-cg-pause-"+r.name)
		if cg, ok := s.run(); ok {
			status := func() {
				s.step(true, "inspect", "--format", "{{.State.Status}}", s.name)
				s.note("freezer: %s", cg.freezer())
			}
			status()
			s.step(true, "pause", s.name)
			status()
			s.step(true, "unpause", s.name)
			status()
			s.remove()
		}
		return s.result()
	}, want(`[run] exit 0
runtime: create --bundle --pid-file; start
init in cgroup
[inspect] exit 0
running
runtime: (none)
freezer: THAWED
[pause] exit 0
NAME
runtime: pause
[inspect] exit 0
paused
runtime: (none)
freezer: FROZEN
[unpause] exit 0
NAME
runtime: resume
[inspect] exit 0
running
runtime: (none)
freezer: THAWED
[rm] exit 0
`, 0))
}

// TestCgroupUpdateMemory: podman update --memory hands the runtime a
// linux.resources document (podman 4.3 also sets swap to twice the limit)
// and the limit changes in the kernel.
func TestCgroupUpdateMemory(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		s := e.cgScenario(t, r, "ptest-cg-update-"+r.name)
		if cg, ok := s.run(); ok {
			s.note("%s", cg.limits())
			if res := s.step(false, "update", "--memory", "128m", s.name); res.code == 0 {
				s.note("%s", cg.limits())
				if !cgroups.IsV2() {
					s.note("memsw limit %s", readTrim(cg.file("memory", "memory.memsw.limit_in_bytes")))
				}
			}
			s.remove()
		}
		return s.result()
	}, want(`[run] exit 0
runtime: create --bundle --pid-file; start
init in cgroup
memory limit 67108864, cpu quota 50000 period 100000, pids max 10
[update] exit 0
runtime: update --resources
update resources: {"memory":{"limit":134217728,"swap":268435456}}
memory limit 134217728, cpu quota 50000 period 100000, pids max 10
memsw limit 268435456
[rm] exit 0
`, 0))
}

// podmanStats is the part of `podman stats --format json` that does not
// change from one run to the next.
type podmanStats struct {
	Name     string `json:"name"`
	CPUTime  string `json:"cpu_time"`
	MemUsage string `json:"mem_usage"`
	PIDs     string `json:"pids"`
}

// TestCgroupStatsNoStream: podman stats reads the container's cgroup
// (podman does not ask the runtime); it finds the runtime's cgroup and
// reports the limit, one process and some memory in use.
func TestCgroupStatsNoStream(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		s := e.cgScenario(t, r, "ptest-cg-stats-"+r.name)
		if _, ok := s.run(); ok {
			res := s.step(false, "stats", "--no-stream", "--format", "json", s.name)
			if res.code == 0 {
				var st []podmanStats
				if err := json.Unmarshal([]byte(res.stdout), &st); err != nil || len(st) != 1 {
					s.note("stats output %q: %v", res.stdout, err)
				} else {
					usage, limit, _ := strings.Cut(st[0].MemUsage, " / ")
					s.note("name %s, pids %s, memory limit %s, memory in use %v, cpu time reported %v",
						strings.ReplaceAll(st[0].Name, s.name, "NAME"), st[0].PIDs, limit,
						usage != "" && usage != "0B", st[0].CPUTime != "" && st[0].CPUTime != "0s")
				}
			}
			s.remove()
		}
		return s.result()
	}, want(`[run] exit 0
runtime: create --bundle --pid-file; start
init in cgroup
[stats] exit 0
runtime: (none)
name NAME, pids 1, memory limit 67.11MB, memory in use true, cpu time reported true
[rm] exit 0
`, 0))
}
