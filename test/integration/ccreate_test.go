package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/testutil"
)

// The C front's create (cmd/capsa-runtime/front/create.c) against the Go
// runtime's (CAPSA_RUNTIME_GO_CREATE=1): the same records in the state dir,
// the same cgroups, the same container, and for whatever the front does
// not do itself, the same outcome through the hand-off.

// ccScript prints what a container sees of its config; $1 is its id.
const ccScript = `exec 2>&1
echo "== id"; id
echo "== uts"; hostname; cat /proc/sys/kernel/domainname
echo "== status"; grep -E '^(Cap|NoNewPrivs|Seccomp|Groups|Umask)' /proc/self/status
echo "== limits"; ulimit -a; ulimit -H -a
echo "== umask"; umask
echo "== cwd"; pwd
echo "== env"; env | sort
echo "== personality"; uname -m; cat /proc/self/personality
echo "== oom"; cat /proc/self/oom_score_adj
echo "== ionice"; ionice -p $$
echo "== sysctl"; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax
echo "== dev"; stat -c '%n %F %a %u %g %t %T' /dev/* /dev/*/* | sort
echo "== mounts"; cut -d' ' -f4- /proc/self/mountinfo
echo "== cgroup"; cat /proc/self/cgroup
echo "== ns"; for n in /proc/self/ns/*; do echo "$n $(readlink $n)"; done
echo "== keyring"; if grep -q "_ses.$1" /proc/keys 2>/dev/null; then echo own; else echo inherited; fi
echo "== fds"; ls /proc/self/fd; cat /proc/self/fd/3
echo "== root"; if touch /ccreate-probe 2>/dev/null; then rm /ccreate-probe; echo rw; else echo ro; fi
echo "== binds"; cat /mnt/file /mnt/dir/f /mnt/ro/f /mnt/rel/f /etc/hostname
echo "== masked"; cat /proc/kcore | wc -c; ls /proc/acpi
echo "== end"`

// ccCase is one config (and command line) run by both creates.
type ccCase struct {
	name string
	// base is the starting config: "bench" (bench/runtime's minimal spec)
	// or "spec" (what `capsa-runtime spec` writes, made to run here).
	base string
	edit func(s *specs.Spec, e *ccEnv, dir string)
	// raw edits config.json's bytes after it is written.
	raw func(t *testing.T, data []byte) []byte
	// global flags (before the command), create flags (before the id) and
	// arguments after the id.
	global, flags, after []string
	// relBundle passes the bundle as a path relative to the create's cwd;
	// noBundle passes none (flags has it), noID no id.
	relBundle, noBundle, noID bool
	// fds gives the create an fd 3 (for --preserve-fds 1).
	fds bool
	// goFirst runs the Go runtime's create first (which compiles and
	// caches a seccomp filter the C front then uses).
	goFirst bool
	// id overrides "ccreate-<name>".
	id string
	// want: what the C front's record must show (in the container's
	// output, the hooks', the cgroups', state.fmt, fastpath or pid file).
	want []string
	// exists: a container of that id exists already.
	exists bool
	skip   string
	// v1: want, and the C front doing the create, hold on cgroup v1 only
	// (on v2 the layout differs, and CPU shares are converted to a weight
	// by the Go runtime alone); the two creates are compared everywhere.
	v1 bool
}

// ccHeldSkip is a skip reason when this process holds capability bit
// (in a VM root has them all, so nothing fails), "" otherwise.
func ccHeldSkip(name string, bit uint) string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			if eff, err := strconv.ParseUint(v, 16, 64); err == nil && eff&(1<<bit) != 0 {
				return "the runtime holds " + name + " here"
			}
		}
	}
	return ""
}

// ccCgroupV2 reports whether the host runs the unified hierarchy only.
func ccCgroupV2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// modes are the two creates in the order they run.
func (c *ccCase) modes() []string {
	if c.goFirst {
		return []string{"Go", "C"}
	}
	return []string{"C", "Go"}
}

func (c *ccCase) containerID() string {
	if c.id != "" {
		return c.id
	}
	return "ccreate-" + c.name
}

// ccEnv is what the cases of one test share.
type ccEnv struct {
	r        *rt
	dir      string // bundles and host-side files
	cgBase   string // "ccreate-test-PID": the cgroups the tests make
	shared   string // a host directory holding f, for binds
	hostFile string
	hookOut  string
	hostNS   map[string]bool // the test's own namespaces ("net:[…]")
	specDoc  []byte          // config.json as `capsa-runtime spec` writes it
}

func newCCEnv(t *testing.T) *ccEnv {
	t.Helper()
	r := newRT(t)
	e := &ccEnv{r: r, dir: t.TempDir(), cgBase: "ccreate-test-" + strconv.Itoa(os.Getpid())}
	// Runs before newRT's cleanups: containers first, then the cgroup dirs
	// above theirs, so that CheckLeaks finds nothing.
	t.Cleanup(func() {
		r.cleanup()
		ccRemoveCgroups(t, e.cgBase)
	})
	e.shared = filepath.Join(e.dir, "shared")
	e.hostFile = filepath.Join(e.dir, "hostfile")
	e.hookOut = filepath.Join(e.dir, "hooks")
	if err := os.MkdirAll(e.shared, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{e.shared + "/f": "shared dir\n", e.hostFile: "host file\n"} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.hostNS = map[string]bool{}
	nss, _ := filepath.Glob("/proc/self/ns/*")
	for _, n := range nss {
		if v, err := os.Readlink(n); err == nil {
			e.hostNS[v] = true
		}
	}
	// Both runtimes take a hostname or sysctls without the namespace they
	// need, and then change the host's: make sure no case does. The names
	// are restored; a sysctl is only reported (others on the host, e.g.
	// podman's networks, may have set it meanwhile).
	hostState := func() map[string]string {
		m := map[string]string{}
		for _, f := range []string{"kernel/hostname", "kernel/domainname", "net/ipv4/ip_forward", "kernel/shmmax"} {
			data, _ := os.ReadFile("/proc/sys/" + f)
			m[f] = string(data)
		}
		return m
	}
	before := hostState()
	t.Cleanup(func() {
		for f, v := range hostState() {
			if v == before[f] {
				continue
			}
			t.Errorf("the host's %s changed from %q to %q during the test", f, before[f], v)
			if strings.HasSuffix(f, "name") {
				_ = os.WriteFile("/proc/sys/"+f, []byte(before[f]), 0o644)
			}
		}
	})
	specDir := t.TempDir()
	cmd := exec.Command(r.bin, "spec", "--bundle", specDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("capsa-runtime spec: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(specDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.specDoc = data
	return e
}

// ccRemoveCgroups removes name (and what is under it) at the top of every
// cgroup hierarchy and under this process's own cgroup in each: where an
// absolute and a relative cgroupsPath put the tests' cgroups. On a v2 host
// /sys/fs/cgroup is the one hierarchy.
func ccRemoveCgroups(t *testing.T, name string) {
	own := map[string]bool{"/": true}
	if data, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if f := strings.SplitN(line, ":", 3); len(f) == 3 {
				own[f[2]] = true
			}
		}
	}
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	if ccCgroupV2() {
		hier = []string{"/sys/fs/cgroup"}
	}
	for _, h := range hier {
		if fi, err := os.Lstat(h); err != nil || !fi.IsDir() {
			continue
		}
		for o := range own {
			top := filepath.Join(h, o, name)
			if _, err := os.Stat(top); err != nil {
				continue
			}
			var dirs []string
			_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := os.Remove(dirs[i]); err != nil {
					t.Errorf("remove cgroup %s: %v", dirs[i], err)
				}
			}
		}
	}
}

// benchSpec is bench/runtime's minimal container spec (containerSpec with
// full=false): runc 1.1's default without the cgroup namespace, only /proc
// and a /dev tmpfs mounted, no masked or read-only paths.
func benchSpec(args ...string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: "1.0.2",
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "bench",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
		},
	}
}

// baseSpec is a case's starting config, running ccScript, in its own
// cgroup under e.cgBase.
func (e *ccEnv) baseSpec(t *testing.T, c *ccCase) *specs.Spec {
	t.Helper()
	args := []string{"sh", "-c", ccScript, "sh", c.containerID()}
	var s *specs.Spec
	switch c.base {
	case "", "bench":
		s = benchSpec(args...)
	case "spec":
		s = &specs.Spec{}
		if err := json.Unmarshal(e.specDoc, s); err != nil {
			t.Fatal(err)
		}
		s.Process.Args = args
		s.Process.Terminal = false // no console socket here
	default:
		t.Fatalf("unknown base %q", c.base)
	}
	s.Linux.CgroupsPath = "/" + e.cgBase + "/" + c.name
	return s
}

// writeBundle makes the case's bundle afresh (rootfs included, so that
// neither create finds the other's mount points) and returns its dir.
func (e *ccEnv) writeBundle(t *testing.T, c *ccCase) string {
	t.Helper()
	dir := filepath.Join(e.dir, "bundle-"+c.name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	testutil.BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	if err := os.MkdirAll(filepath.Join(dir, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shared", "f"), []byte("relative source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := e.baseSpec(t, c)
	if c.edit != nil {
		c.edit(s, e, dir)
	}
	b := &testutil.Bundle{Dir: dir, Spec: s}
	b.Write(t)
	if c.raw != nil {
		path := filepath.Join(dir, "config.json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, c.raw(t, data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ccRecord is everything one create (and its container's life) leaves to
// compare.
type ccRecord struct {
	Create   string // exit code, stdout and stderr of create
	Log      string // the log's lines other than the front's and the init choice
	State    string // state.json decoded, without pid, start and created
	Fastpath string
	StateFmt string
	StateCmd string // `state` after create
	StateDir string // the files in the state dir and their modes
	Cgroups  string
	PidFile  string
	Start    string // start's and delete's outcome
	Output   string // the container's
	Hooks    string
	Rootfs   string // the rootfs tree after delete (mount points made)
	After    string // what delete left
}

var (
	reLogTime  = regexp.MustCompile(`time=\\?"[^"\\]*\\?" `)
	reTmpName  = regexp.MustCompile(`(/\.[^/ ]*)\.tmp[0-9]+`)
	rePeer     = regexp.MustCompile(`\b(shared|master|propagate_from):[0-9]+`)
	reNSValue  = regexp.MustCompile(`[a-z_]+:\[[0-9]+\]`)
	reFPVolat  = regexp.MustCompile(`(?m)^(pid|start) [0-9]+$`)
	reFmtTime  = regexp.MustCompile(`(?m)^  "created": "[^"]*",$`)
	reStatePid = regexp.MustCompile(`(?m)^  "pid": [0-9]+,$`)
)

// ccMode runs one create of case c: mode "C" (the front decides) or "Go"
// (CAPSA_RUNTIME_GO_CREATE=1). debugLog is the create's --log.
func (e *ccEnv) ccMode(t *testing.T, c *ccCase, dir, mode string) (rec ccRecord, debugLog string) {
	t.Helper()
	r := &rt{t: t, bin: e.r.bin, root: e.r.root}
	id := c.containerID()
	tmp := t.TempDir()
	logPath, outPath, errPath := filepath.Join(tmp, "log"), filepath.Join(tmp, "out"), filepath.Join(tmp, "err")
	cwd := filepath.Join(tmp, "cwd")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	bundleArg := []string{"--bundle", dir}
	if c.relBundle {
		cwd = filepath.Dir(dir)
		bundleArg = []string{"--bundle=" + filepath.Base(dir)}
	}
	if c.noBundle {
		bundleArg = nil
	}
	args := append(append([]string{}, c.global...), "--root", r.root, "--debug", "--log", logPath, "create")
	args = append(append(args, bundleArg...), c.flags...)
	if !c.noID {
		args = append(args, id)
	}
	args = append(args, c.after...)
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = cwd
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAPSA_RUNTIME_GO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if mode == "Go" {
		cmd.Env = append(cmd.Env, "CAPSA_RUNTIME_GO_CREATE=1")
	}
	// Files: the container inherits them and writes after create exits.
	outf, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outf.Close()
	errf, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = outf, errf
	if c.fds {
		extra, err := os.Open(e.hostFile)
		if err != nil {
			t.Fatal(err)
		}
		defer extra.Close()
		cmd.ExtraFiles = []*os.File{extra}
	}
	_ = os.Remove(e.hookOut)
	// Whatever happens below, the container must not outlive the case.
	t.Cleanup(func() { _ = exec.Command(r.bin, "--root", r.root, "delete", "--force", id).Run() })
	runErr := cmd.Run()
	code := 0
	if ee, ok := runErr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if runErr != nil {
		t.Fatalf("run %v: %v", args, runErr)
	}
	stdout, _ := os.ReadFile(outPath)
	stderr, _ := os.ReadFile(errPath)
	logData, _ := os.ReadFile(logPath)
	debugLog = string(logData)
	rec.Create = ccNormalise(fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", code, stdout, stderr))
	var logLines []string
	for _, l := range strings.Split(strings.TrimRight(debugLog, "\n"), "\n") {
		if strings.Contains(l, `msg="create: C front`) || strings.Contains(l, `msg="create: C init"`) || strings.Contains(l, `msg="create: Go init (`) {
			continue // which create and which init: asserted by the callers
		}
		logLines = append(logLines, ccNormalise(l))
	}
	rec.Log = strings.Join(logLines, "\n")
	stateDir := filepath.Join(r.root, id)
	if code != 0 {
		if _, err := os.Lstat(stateDir); !os.IsNotExist(err) && !c.exists {
			t.Errorf("%s create failed but left %s (%v)", mode, stateDir, err)
		}
		return rec, debugLog
	}

	// The records.
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(stateDir, name))
		if err != nil {
			return "error: " + err.Error()
		}
		return string(data)
	}
	var st map[string]any
	stateJSON := read("state.json")
	dec := json.NewDecoder(strings.NewReader(stateJSON))
	dec.UseNumber() // rlimits up to 2^64-1: exact
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("%s create: state.json: %v\n%s", mode, err, stateJSON)
	}
	pid, _ := strconv.Atoi(fmt.Sprint(st["init_process_pid"]))
	for _, k := range []string{"init_process_pid", "init_process_start", "created"} {
		if _, ok := st[k]; !ok {
			t.Errorf("%s create: state.json lacks %s", mode, k)
		}
		delete(st, k)
	}
	stNorm, _ := json.MarshalIndent(st, "", " ")
	rec.State = string(stNorm)
	rec.Fastpath = reFPVolat.ReplaceAllString(read("fastpath"), "$1 X")
	if !strings.Contains(read("fastpath"), fmt.Sprintf("\npid %d\n", pid)) {
		t.Errorf("%s create: fastpath does not hold pid %d:\n%s", mode, pid, read("fastpath"))
	}
	rec.StateFmt = reFmtTime.ReplaceAllString(read("state.fmt"), `  "created": X,`)
	rec.StateCmd = reStatePid.ReplaceAllString(reFmtTime.ReplaceAllString(r.ok("state", id), `  "created": X,`), `  "pid": X,`)
	entries, _ := os.ReadDir(stateDir)
	for _, en := range entries {
		fi, err := en.Info()
		if err == nil {
			rec.StateDir += fmt.Sprintf("%s %v\n", en.Name(), fi.Mode())
		}
	}
	if fi, err := os.Stat(stateDir); err == nil {
		rec.StateDir += fmt.Sprintf(". %v\n", fi.Mode())
	}
	var cgPaths []string
	if m, ok := st["cgroup_paths"].(map[string]any); ok {
		for ctrl, p := range m {
			path, _ := p.(string)
			cgPaths = append(cgPaths, path)
			var b strings.Builder
			procs, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			fmt.Fprintf(&b, "%s: procs are the init: %v (%v)\n", ctrl, strings.TrimSpace(string(procs)) == strconv.Itoa(pid), err)
			for _, f := range []string{"devices.list", "cpuset.cpus", "cpuset.mems", "memory.limit_in_bytes", "memory.max",
				"cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.weight", "cpu.max", "pids.max", "notify_on_release"} {
				if data, err := os.ReadFile(filepath.Join(path, f)); err == nil {
					fmt.Fprintf(&b, "%s/%s:\n%s", ctrl, f, data)
				}
			}
			rec.Cgroups += b.String()
		}
	}
	rec.Cgroups = ccSortBlocks(rec.Cgroups)
	if data, err := os.ReadFile(filepath.Join(cwd, "ccreate.pid")); err == nil {
		fi, _ := os.Stat(filepath.Join(cwd, "ccreate.pid"))
		rec.PidFile = fmt.Sprintf("is the init: %v, mode %v", string(data) == strconv.Itoa(pid), fi.Mode())
		_ = os.Remove(filepath.Join(cwd, "ccreate.pid"))
	}

	// The container.
	start := r.run("start", id)
	var del result
	if start.code == 0 {
		testutil.Eventually(t, id+" to stop", func() bool { return r.state(id).Status == "stopped" })
		del = r.run("delete", id)
	} else {
		del = r.run("delete", "--force", id)
	}
	rec.Start = ccNormalise(fmt.Sprintf("start: exit %d %q %q\ndelete: exit %d %q %q", start.code, start.stdout, start.stderr,
		del.code, del.stdout, del.stderr))
	out, _ := os.ReadFile(outPath)
	rec.Output = e.normaliseOutput(string(out))
	if start.code == 0 && !strings.Contains(rec.Output, "== end") {
		t.Errorf("%s create: the container's output is incomplete:\n%s", mode, out)
	}
	if data, err := os.ReadFile(e.hookOut); err == nil {
		rec.Hooks = string(data)
	}
	if _, err := os.Lstat(stateDir); !os.IsNotExist(err) {
		rec.After += fmt.Sprintf("state dir: %v\n", err)
	}
	for _, p := range cgPaths {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			rec.After += fmt.Sprintf("cgroup %s: %v\n", p, err)
		}
	}
	rec.Rootfs = ccRootfsTree(t, filepath.Join(dir, "rootfs"))
	return rec, debugLog
}

// ccNormalise removes times and temp file names from messages.
func ccNormalise(s string) string {
	return reTmpName.ReplaceAllString(reLogTime.ReplaceAllString(s, ""), "$1.tmpN")
}

// ccSortBlocks sorts the "ctrl: …" blocks of a cgroup report (map order).
func ccSortBlocks(s string) string {
	lines := strings.SplitAfter(s, "\n")
	var blocks []string
	for _, l := range lines {
		if strings.Contains(l, ": procs are the init: ") || len(blocks) == 0 {
			blocks = append(blocks, l)
		} else {
			blocks[len(blocks)-1] += l
		}
	}
	sort.Strings(blocks)
	return strings.Join(blocks, "")
}

// normaliseOutput replaces what differs between any two containers: the
// namespaces' inode numbers (kept: whether each is the host's) and mount
// peer group ids.
func (e *ccEnv) normaliseOutput(out string) string {
	out = reNSValue.ReplaceAllStringFunc(out, func(v string) string {
		kind := v[:strings.IndexByte(v, ':')]
		if e.hostNS[v] {
			return kind + ":host"
		}
		return kind + ":new"
	})
	return rePeer.ReplaceAllString(out, "$1:N")
}

// ccRootfsTree lists the rootfs (but /bin's applets) with modes and owners.
func ccRootfsTree(t *testing.T, root string) string {
	var b strings.Builder
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "bin" {
			return fs.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d rdev %d size %d\n", rel, fi.Mode(), st.Uid, st.Gid, st.Rdev, st.Size)
		return nil
	})
	return b.String()
}

// bothModes creates c's container with the C front and with the Go
// runtime forced (ccMode), lets check look at each, and requires the two
// records to be equal; it returns them by mode ("C", "Go").
func (e *ccEnv) bothModes(t *testing.T, c *ccCase, check func(mode string, rec ccRecord, log string)) map[string]ccRecord {
	t.Helper()
	if c.skip != "" {
		t.Skip(c.skip)
	}
	recs := map[string]ccRecord{}
	for _, mode := range c.modes() {
		dir := e.writeBundle(t, c)
		rec, log := e.ccMode(t, c, dir, mode)
		check(mode, rec, log)
		recs[mode] = rec
	}
	ccCompare(t, recs["C"], recs["Go"])
	return recs
}

// ccCompare reports every field in which the two creates differ.
func ccCompare(t *testing.T, c, g ccRecord) {
	t.Helper()
	type field struct{ name, c, g string }
	fields := []field{{"create", c.Create, g.Create}, {"log", c.Log, g.Log}, {"state.json", c.State, g.State},
		{"fastpath", c.Fastpath, g.Fastpath}, {"state.fmt", c.StateFmt, g.StateFmt}, {"state", c.StateCmd, g.StateCmd},
		{"state dir", c.StateDir, g.StateDir}, {"cgroups", c.Cgroups, g.Cgroups}, {"pid file", c.PidFile, g.PidFile},
		{"start and delete", c.Start, g.Start}, {"container output", c.Output, g.Output}, {"hooks", c.Hooks, g.Hooks}, {"rootfs", c.Rootfs, g.Rootfs},
		{"after delete", c.After, g.After}}
	for _, f := range fields {
		if f.c != f.g {
			t.Errorf("%s differs between the C front's create and the Go runtime's:\n%s", f.name, ccLineDiff(f.c, f.g))
		}
	}
}

// ccLineDiff shows the lines only one side has (or both sides whole when
// they are short).
func ccLineDiff(a, b string) string {
	if len(a) < 400 && len(b) < 400 {
		return fmt.Sprintf("--- C front ---\n%s\n--- Go runtime ---\n%s", a, b)
	}
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var onlyA, onlyB []string
	for _, l := range strings.Split(a, "\n") {
		if count[l] > 0 {
			onlyA = append(onlyA, l)
			count[l]--
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if count[l] < 0 {
			onlyB = append(onlyB, l)
			count[l]++
		}
	}
	return fmt.Sprintf("--- only in the C front's ---\n%s\n--- only in the Go runtime's ---\n%s",
		strings.Join(onlyA, "\n"), strings.Join(onlyB, "\n"))
}

func ccU32(v uint32) *uint32                { return &v }
func ccI64(v int64) *int64                  { return &v }
func ccFileMode(m os.FileMode) *os.FileMode { return &m }

// ccReplace edits config.json: old (which it must hold) becomes new.
func ccReplace(old, new string) func(t *testing.T, data []byte) []byte {
	return func(t *testing.T, data []byte) []byte {
		if !bytes.Contains(data, []byte(old)) {
			t.Fatalf("config.json lacks %q", old)
		}
		return bytes.Replace(data, []byte(old), []byte(new), 1)
	}
}

// ccAgreeCases are configs the C front creates itself.
func ccAgreeCases() []ccCase {
	const int64Max = 1<<63 - 1
	return []ccCase{
		{name: "bench-minimal", want: []string{"== keyring\nown", "== root\nro", "NoNewPrivs:\t1"}},
		{name: "bench-absolute-root", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Root.Path = filepath.Join(dir, "rootfs") }},
		{name: "runc-default", base: "spec"},
		{name: "ns-mount-only", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			// No hostname: without a UTS namespace it would be the host's.
			s.Hostname = ""
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
		}},
		{name: "ns-all", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.CgroupNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.PIDNamespace}}
		}},
		{name: "binds", want: []string{"== binds\nhost file\nshared dir\nshared dir\nrelative source\nhost file\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/file", Type: "bind", Source: e.hostFile, Options: []string{"bind"}},
				specs.Mount{Destination: "/mnt/dir", Type: "none", Source: e.shared, Options: []string{"rbind", "nosuid", "nodev"}},
				specs.Mount{Destination: "/mnt/ro", Source: e.shared, Options: []string{"bind", "ro", "noexec", "relatime"}},
				specs.Mount{Destination: "/mnt/rel", Type: "bind", Source: "shared", Options: []string{"rbind", "rprivate", "strictatime"}},
				specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: e.hostFile, Options: []string{"bind", "ro"}},
			)
		}},
		{name: "tmpfs-and-others", base: "spec", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1m"}},
				specs.Mount{Destination: "/deep/new/dir", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "rprivate", "ro"}},
				specs.Mount{Destination: "/run/mq", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid"}},
			)
		}},
		{name: "propagation-slave", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.RootfsPropagation = "rslave"
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/dir", Type: "bind", Source: e.shared, Options: []string{"rbind", "rshared"}})
		}},
		{name: "propagation-private", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Linux.RootfsPropagation = "private" }},
		{name: "devices", want: []string{"/dev/ccnull character special file 640 1000 1001 1 3", "/dev/null character special file 600 0 0 1 3", "/dev/ccfifo fifo 620 0 5"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Devices = []specs.LinuxDevice{
				{Path: "/dev/ccnull", Type: "c", Major: 1, Minor: 3, FileMode: ccFileMode(0o640), UID: ccU32(1000), GID: ccU32(1001)},
				{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ccFileMode(0o600)},
				{Path: "/dev/sub/cczero", Type: "u", Major: 1, Minor: 5},
				{Path: "/dev/ccfifo", Type: "p", FileMode: ccFileMode(0o620), GID: ccU32(5)},
			}
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
				specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ccI64(1), Minor: ccI64(3), Access: "rwm"},
				specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ccI64(1), Minor: ccI64(5), Access: "rm"},
				specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: ccI64(7), Access: "r"},
				specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: ccI64(1), Minor: ccI64(9)},
			)
		}},
		{name: "devices-in-rootfs", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = s.Mounts[:1] // /proc only: the nodes go to the rootfs' /dev
			s.Root.Readonly = false
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/ccnull", Type: "c", Major: 1, Minor: 3, FileMode: ccFileMode(0o666)}}
		}},
		{name: "runc-default-no-cgroupns", base: "spec", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Namespaces = s.Linux.Namespaces[:5]
		}},
		{name: "cgroup-mount-rw", v1: true, want: []string{"/sys/fs/cgroup/devices rw"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "nodev"}})
		}},
		{name: "cgroup2-mount", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: []string{"ro"}})
		}},
		{name: "resources-no-shares", want: []string{"268435456\n", "pids.max:\n100\n", "cpuset.cpus:\n0\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ccI64(256 << 20)}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ccI64(50000), Period: func(v uint64) *uint64 { return &v }(200000), Cpus: "0", Mems: "0"}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ccI64(100)}
		}},
		{name: "resources", v1: true, want: []string{"memory.limit_in_bytes:\n268435456\n", "pids.max:\n100\n", "cpuset.cpus:\n0\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ccI64(256 << 20)}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: func(v uint64) *uint64 { return &v }(512), Quota: ccI64(50000),
				Period: func(v uint64) *uint64 { return &v }(200000), Cpus: "0", Mems: "0"}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ccI64(100)}
		}},
		{name: "resources-unlimited", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ccI64(-1)}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ccI64(-1)}
		}},
		{name: "resources-zero", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: func(v uint64) *uint64 { return &v }(0), Quota: ccI64(0)}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ccI64(0)}
		}},
		{name: "seccomp-null", raw: ccReplace(`"linux": {`, `"linux": {"seccomp": null, `)},
		{name: "seccomp-cached", want: []string{"Seccomp:\t2"}, goFirst: true, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mknodat", "mknod"}, Action: specs.ActErrno}}}
		}},
		{name: "key-unknown", raw: ccReplace(`"hostname": "bench"`, `"hostname": "bench", "ccreateUnknown": {"x": [1, 2.5e300, null]}`)},
		{name: "no-device-rules", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Linux.Resources = nil }},
		{name: "allow-all-devices", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
		}},
		{name: "sysctl", want: []string{"== sysctl\n1\n123456789\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789", "net/ipv4/conf/lo/forwarding": "1"}
		}},
		{name: "masked-readonly", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/acpi", "/proc/nosuch", "/sys/firmware"}
			s.Linux.ReadonlyPaths = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/nosuch2"}
		}},
		{name: "hostname", want: []string{"cc-host\nexample.org\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Hostname, s.Domainname = "cc-host", "example.org"
		}},
		{name: "root-rw", want: []string{"== root\nrw"}, edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Root.Readonly = false }},
		{name: "personality", want: []string{"== personality\ni686"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		}},
		{name: "user", want: []string{"uid=1000(user) gid=1000(user) groups=10,1001", "== umask\n0027"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001, 10, 1001}, Umask: ccU32(0o027)}
			s.Process.Cwd = "/home/user"
		}},
		{name: "caps", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Capabilities = &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SETPCAP", "CAP_KILL"},
				Effective:   []string{"CAP_CHOWN", "CAP_NET_ADMIN"},
				Permitted:   []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"},
				Inheritable: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"},
				Ambient:     []string{"CAP_CHOWN"},
			}
		}},
		{name: "caps-none", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.Capabilities = nil }},
		{name: "caps-user", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Process.NoNewPrivileges = false
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL"},
				Permitted: []string{"CAP_KILL"}, Inheritable: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"}}
		}},
		{name: "rlimits", want: []string{"(-n) 512\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024},
				{Type: "RLIMIT_CORE", Soft: int64Max, Hard: int64Max},
				{Type: "RLIMIT_NPROC", Soft: 1000, Hard: 2000},
				{Type: "RLIMIT_STACK", Soft: 4 << 20, Hard: 16 << 20},
				{Type: "RLIMIT_MSGQUEUE", Soft: 0, Hard: 0},
			}
		}},
		{name: "nnp-off", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.NoNewPrivileges = false }},
		{name: "oom-score", want: []string{"== oom\n500\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.OOMScoreAdj = func(v int) *int { return &v }(500) }},
		{name: "iopriority-be", want: []string{"best-effort: prio 4"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 4}
		}},
		{name: "iopriority-idle", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
		}},
		{name: "annotations", want: []string{`"a": "\u003ctag\u003e\u0026amp;"`}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Annotations = map[string]string{"a": "<tag>&amp;", "é": "ü\u2028ß\u2029", "q": "\"\\\n\t\u0001", "status": "@capsa-status@", "pid": `"pid": -424242`}
		}},
		{name: "hooks", want: []string{"poststart\npoststop y\n", "start-ok 0\ndelete-ok 0\n"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Hooks = &specs.Hooks{
				Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststart >> " + e.hookOut}, Timeout: func(v int) *int { return &v }(30)}},
				Poststop:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststop $X >> " + e.hookOut}, Env: []string{"X=y"}}},
			}
		}},
		{name: "poststop-only", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststop >> " + e.hookOut}}}}
		}},
		{name: "cgroups-relative", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Linux.CgroupsPath = e.cgBase + "/rel" }},
		{name: "cgroups-empty", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Linux.CgroupsPath = "" }},
		{name: "cgroups-unclean", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.CgroupsPath = "//" + e.cgBase + "/../" + e.cgBase + "/./unclean/"
		}},
		{name: "no-pivot", flags: []string{"--no-pivot"}},
		{name: "no-new-keyring", want: []string{"== keyring\ninherited"}, flags: []string{"--no-new-keyring"}},
		{name: "preserve-fds", want: []string{"host file"}, flags: []string{"--preserve-fds", "1"}, fds: true},
		{name: "preserve-fds-none", flags: []string{"--preserve-fds=0"}, fds: true},
		{name: "pid-file", want: []string{"is the init: true"}, flags: []string{"--pid-file", "ccreate.pid"}},
		{name: "bundle-relative", relBundle: true},
		{name: "env-cwd", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Env = append(s.Process.Env, "FOO=bar baz", "EMPTY=", "UNI=ü")
			s.Process.Cwd = "/tmp/"
		}},
		{name: "everything", base: "spec", flags: []string{"--no-new-keyring", "--pid-file", "ccreate.pid", "--preserve-fds", "1"}, fds: true,
			edit: func(s *specs.Spec, e *ccEnv, dir string) {
				s.Hostname, s.Domainname = "all", "example.com"
				s.Root.Readonly = true
				s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: ccU32(0o077)}
				s.Process.Cwd = "/tmp"
				s.Process.OOMScoreAdj = func(v int) *int { return &v }(300)
				s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 7}
				s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: 0, Hard: int64Max})
				s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "99999999"}
				s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux}
				s.Linux.RootfsPropagation = "slave"
				s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: ccFileMode(0o640), UID: ccU32(1000)}}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ccI64(1), Minor: ccI64(3), Access: "rwm"})
				s.Mounts = append(s.Mounts,
					specs.Mount{Destination: "/mnt/dir", Type: "bind", Source: e.shared, Options: []string{"rbind", "ro", "nosuid"}},
					specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1m"}},
				)
				s.Annotations = map[string]string{"org.example": "<x>"}
				s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststart >> " + e.hookOut}}}}
			}},
	}
}

// TestFrontCreateAgrees: for configs within what the C front's create
// knows, it does the create itself (the debug log says so) and leaves the
// same records, cgroups and container as the Go runtime's create.
func TestFrontCreateAgrees(t *testing.T) {
	e := newCCEnv(t)
	for _, c := range ccAgreeCases() {
		c := c
		t.Run(c.name, func(t *testing.T) {
			recs := e.bothModes(t, &c, func(mode string, rec ccRecord, log string) {
				if !strings.HasPrefix(rec.Create, "exit 0\n") {
					t.Fatalf("%s create failed: %s\nlog:\n%s", mode, rec.Create, log)
				}
				if mode == "C" && !(c.v1 && ccCgroupV2()) && (!strings.Contains(log, `msg="create: C front"`) || strings.Contains(log, "gave up")) {
					t.Fatalf("the C front did not do the create; log:\n%s", log)
				}
				if mode == "Go" && (strings.Contains(log, "create: C front") ||
					!(strings.Contains(log, `msg="create: C init"`) || strings.Contains(log, `msg="create: Go init (`))) {
					t.Fatalf("the Go runtime did not do the create; log:\n%s", log)
				}
			})
			rc := recs["C"]
			all := strings.Join([]string{rc.Output, rc.Hooks, rc.Cgroups, rc.StateFmt, rc.Fastpath, rc.PidFile}, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) && !(c.v1 && ccCgroupV2()) {
					t.Errorf("the C front's container lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("C front's container output:\n%s", rc.Output)
			}
		})
	}
}

// TestFrontCreateHandsOff: configs the C front must leave to the Go
// runtime; through the hand-off the result is the forced Go create's.
func TestFrontCreateHandsOff(t *testing.T) {
	e := newCCEnv(t)
	replace := ccReplace
	hook := specs.Hook{Path: "/bin/true"}
	cases := []ccCase{
		{name: "seccomp", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mknodat"}, Action: specs.ActErrno}}}
		}},
		{name: "userns", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
				_ = os.Chmod(d, 0o755)
			}
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}},
		{name: "timens", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		}},
		{name: "joined-netns", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
				}
			}
		}},
		{name: "no-mountns", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Namespaces = s.Linux.Namespaces[:4]
		}},
		{name: "tmpcopyup", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}})
		}},
		{name: "terminal-no-socket", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.Terminal = true }},
		{name: "console-socket-no-terminal", flags: []string{"--console-socket", "/nonexistent/ccreate.sock"}},
		{name: "hook-prestart", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			//lint:ignore SA1019 prestart is deprecated, but configs still use it and runtimes must run it
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}}
		}},
		{name: "hook-createruntime", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{hook}} }},
		{name: "hook-createcontainer", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{hook}} }},
		{name: "hook-startcontainer", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{hook}} }},
		{name: "memory-swap", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ccI64(256 << 20), Swap: ccI64(512 << 20)}
		}},
		{name: "memory-reservation-only", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Reservation: ccI64(128 << 20)}
		}},
		{name: "cpu-realtime", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: ccI64(0)}
		}},
		{name: "blockio", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: func(v uint16) *uint16 { return &v }(500)}
		}},
		{name: "hugepages", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}}
		}},
		{name: "apparmor", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.ApparmorProfile = "ccreate" }},
		{name: "mount-label", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.MountLabel = "system_u:object_r:container_file_t:s0"
		}},
		{name: "scheduler", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther}
		}},
		{name: "systemd-cgroup", global: []string{"--systemd-cgroup"}, edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.CgroupsPath = "system.slice:ccreate:" + e.cgBase
		}},
		{name: "key-case", raw: replace(`"hostname": "bench"`, `"Hostname": "case"`)},
		{name: "key-duplicate", raw: replace(`"hostname": "bench"`, `"hostname": "first", "hostname": "second"`)},
		{name: "key-nonascii", raw: replace(`"hostname": "bench"`, `"hoſtname": "longs"`)},
		{name: "rlimit-uint64-max", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: 1<<64 - 1, Hard: 1<<64 - 1})
		}},
		{name: "int-beyond-uint64", raw: replace(`"hard": 1024`, `"hard": 18446744073709551616`)},
		{name: "int-as-float", raw: replace(`"hard": 1024`, `"hard": 1024.0`)},
		{name: "wrong-type", raw: replace(`"hostname": "bench"`, `"hostname": 5`)},
		{name: "null-process", raw: replace(`"process": {`, `"process": null, "x-process": {`)},
		{name: "double-dash", flags: []string{"--"}},
		{name: "windows-section", raw: replace(`"hostname": "bench"`, `"hostname": "bench", "windows": {}`)},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			e.bothModes(t, &c, func(mode string, rec ccRecord, log string) {
				if mode == "C" && strings.Contains(log, "create: C front") {
					t.Errorf("the C front did the create (or began it); log:\n%s", log)
				}
				t.Logf("%s: %s", mode, strings.SplitN(rec.Create, "\n", 2)[0]+" "+strings.Split(rec.Create, "\n")[2])
			})
		})
	}
}

// TestFrontCreateErrors: a create that fails fails the same (exit code,
// stderr, logged error) whether the C front gives up early, gives up
// mid-way or never tries, and leaves nothing behind.
func TestFrontCreateErrors(t *testing.T) {
	e := newCCEnv(t)
	set := ccReplace
	cases := []ccCase{
		{name: "malformed-json", raw: func(t *testing.T, data []byte) []byte { return data[:len(data)/2] }},
		{name: "empty-config", raw: func(t *testing.T, data []byte) []byte { return nil }},
		{name: "missing-rootfs", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Root.Path = "nosuchrootfs" }},
		{name: "missing-bundle", noBundle: true, flags: []string{"--bundle", "/nonexistent/ccreate-bundle"}},
		{name: "bind-source-missing", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/nonexistent/ccreate", Options: []string{"bind"}})
		}},
		{name: "invalid-id", id: "ccreate-a/b"},
		{name: "invalid-id-space", id: "ccreate-a b"},
		{name: "unknown-capability", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NOSUCH")
		}},
		{name: "capability-not-held", skip: ccHeldSkip("CAP_SYS_RESOURCE", 24), edit: func(s *specs.Spec, e *ccEnv, dir string) {
			c := s.Process.Capabilities
			c.Bounding = append(c.Bounding, "CAP_SYS_RESOURCE")
			c.Permitted = append(c.Permitted, "CAP_SYS_RESOURCE")
			c.Effective = append(c.Effective, "CAP_SYS_RESOURCE")
		}},
		{name: "cwd-relative", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.Cwd = "tmp" }},
		{name: "cwd-missing", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.Cwd = "/nonexistent" }},
		{name: "missing-executable", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.Args = []string{"nosuchcommand"} }},
		{name: "no-args", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Process.Args = nil }},
		{name: "unknown-fs", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "nosuchfs", Source: "none"})
		}},
		{name: "unknown-sysctl", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Linux.Sysctl = map[string]string{"net.nosuch.key": "1"} }},
		{name: "rlimit-too-high", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}}
		}},
		{name: "rlimit-unknown", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOSUCH", Soft: 1, Hard: 1}}
		}},
		{name: "rlimit-soft-above-hard", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}},
		{name: "device-rule-bad", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "x", Access: "rwm"})
		}},
		{name: "device-bad-type", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z", Major: 1, Minor: 3}}
		}},
		{name: "mount-relative-dest", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "mnt", Type: "tmpfs", Source: "tmpfs"})
		}},
		{name: "bad-propagation", edit: func(s *specs.Spec, e *ccEnv, dir string) { s.Linux.RootfsPropagation = "sideways" }},
		{name: "bad-personality", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"}
		}},
		{name: "bad-iopriority", raw: set(`"noNewPrivileges": true`, `"noNewPrivileges": true, "ioPriority": {"class": "IOPRIO_CLASS_NOSUCH"}`)},
		{name: "bad-preserve-fds", flags: []string{"--preserve-fds", "-1"}},
		{name: "bad-pid-file-dir", flags: []string{"--pid-file", "/nonexistent/ccreate.pid"}},
		{name: "no-id", noID: true},
		// Names and sysctls of namespaces the container does not have
		// would change the host's: refused (as runc does).
		{name: "hostname-without-uts", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Hostname = "ccreate-host"
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UTSNamespace })
		}},
		{name: "sysctl-without-netns", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
		}},
		{name: "sysctl-host-only", edit: func(s *specs.Spec, e *ccEnv, dir string) {
			s.Linux.Sysctl = map[string]string{"vm.swappiness": "10"}
		}},
		{name: "flag-after-id", after: []string{"--no-pivot"}},
		{name: "two-ids", after: []string{"ccreate-second"}},
	}
	// duplicate-id: a container of that id exists already.
	t.Run("duplicate-id", func(t *testing.T) {
		c := ccCase{name: "duplicate-id", exists: true}
		dir := e.writeBundle(t, &c)
		r := &rt{t: t, bin: e.r.bin, root: e.r.root}
		r.ok("create", "--bundle", dir, c.containerID())
		defer r.ok("delete", "--force", c.containerID())
		recs := map[string]ccRecord{}
		for _, mode := range []string{"C", "Go"} {
			rec, log := e.ccMode(t, &c, dir, mode)
			if strings.HasPrefix(rec.Create, "exit 0\n") {
				t.Fatalf("%s create of an existing id succeeded; log:\n%s", mode, log)
			}
			if _, err := os.Stat(filepath.Join(e.r.root, c.containerID(), "state.json")); err != nil {
				t.Fatalf("%s create of an existing id removed the other's state: %v", mode, err)
			}
			recs[mode] = rec
		}
		ccCompare(t, recs["C"], recs["Go"])
	})
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			e.bothModes(t, &c, func(mode string, rec ccRecord, log string) {
				if strings.HasPrefix(rec.Create, "exit 0\n") {
					t.Errorf("%s create succeeded; log:\n%s", mode, log)
				}
				if mode == "C" && strings.Contains(log, `msg="create: C front"`) {
					t.Errorf("the C front reported success; log:\n%s", log)
				}
				if mode == "C" {
					how := "refused up front"
					if strings.Contains(log, "gave up") {
						how = "gave up mid-way"
					}
					t.Logf("C front %s: %s", how, strings.Split(rec.Create, "\n")[2])
				}
			})
		})
	}
}
