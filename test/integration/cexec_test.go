package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/testutil"
)

// The front's exec (cmd/capsa-runtime/front/exec.c) does `exec --process`
// without the Go runtime. These tests run every case twice, with the front
// (the default) and with the Go runtime forced (CAPSA_RUNTIME_GO_EXEC=1),
// and compare what the process sees and how the command ends; --debug
// says which side did the exec ("exec: C front" is the front's line, "exec:
// C init" the Go runtime's).

const forceGoExec = "CAPSA_RUNTIME_GO_EXEC=1"

// cexecGo is the Go runtime itself (capsa-runtime-go): the containers the
// exec tests run in are created by it, so that their record is the Go
// runtime's whatever create the front does.
func cexecGo(r *rt) *rt {
	return &rt{t: r.t, bin: filepath.Join(filepath.Dir(r.bin), "capsa-runtime-go"), root: r.root}
}

// cexecRun runs the runtime with --debug and a log, extra files from fd 3,
// env added; it returns the outcome and the log.
func cexecRun(r *rt, env []string, extra []*os.File, args ...string) (result, string) {
	r.t.Helper()
	log := filepath.Join(r.t.TempDir(), "log")
	cmd := exec.Command(r.bin, append([]string{"--root", r.root, "--debug", "--log", log}, args...)...)
	cmd.Env = append(append(os.Environ(), r.env...), env...)
	cmd.ExtraFiles = extra
	res := runFiles(r.t, cmd)
	logb, _ := os.ReadFile(log)
	return res, string(logb)
}

// execSide says who did an exec from its --debug log: "C" (the front),
// "Go" (the Go runtime, with the C or the Go init), or "?".
func execSide(log string) string {
	front := strings.Contains(log, "exec: C front")
	goExec := strings.Contains(log, "exec: C init") || strings.Contains(log, "exec: Go init")
	switch {
	case front && !goExec:
		return "C"
	case goExec && !front:
		return "Go"
	}
	return "?"
}

func writeProcess(t *testing.T, p *specs.Process) string {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ptr[T any](v T) *T { return &v }

// cexecContainer runs a container (created by the Go runtime) that sleeps,
// with what an exec'd process inherits from it: namespaces, cgroups, a
// seccomp filter (mkdir fails with ENOMSG), a personality.
func cexecContainer(t *testing.T, r *rt, id string) int {
	t.Helper()
	b := testutil.NewBundle(t, "sleep", "1000")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.ENOMSG))}}}
	b.Spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux}
	b.Write(t)
	cexecGo(r).ok("run", "-d", "--bundle", b.Dir, id)
	r.waitStatus(id, "running")
	return r.state(id).Pid
}

// TestCExecAgrees: processes exec'd by the front see what the Go
// runtime's exec gives them, and the command ends the same.
func TestCExecAgrees(t *testing.T) {
	r := newRT(t)
	initPid := cexecContainer(t, r, "cexec-agree")
	script := `id; pwd; umask; env | sort; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status;
ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; ionice -p $$; cat /proc/self/cgroup; cat /proc/1/comm;
for n in cgroup ipc mnt net pid uts; do readlink /proc/self/ns/$n; done; ls /proc/self/fd | tr '\n' ' '; echo;
mkdir /tmp/cexec-dir 2>&1; cat /proc/self/personality; hostname`
	base := specs.Process{Args: []string{"sh", "-c", script}, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"}}
	user := base
	user.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 1001}, Umask: ptr(uint32(0o027))}
	user.Cwd = "/tmp"
	user.Env = append(user.Env, "FOO=bar baz", "HOME=/home/user")
	caps := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}
	user.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps}
	user.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
	user.NoNewPrivileges = true
	user.OOMScoreAdj = ptr(300)
	user.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 3}
	exit3 := base
	exit3.Args = []string{"sh", "-c", "echo before; exit 3"}
	killed := base
	killed.Args = []string{"sh", "-c", "kill -KILL $$"}

	for _, tc := range []struct {
		name string
		p    specs.Process
		code int
		want []string
	}{
		{"root", base, 0, []string{"uid=0(root) gid=0(root)", "Seccomp:\t2", "sleep\n", "No message of desired type"}},
		{"user", user, 0, []string{"uid=1000(user) gid=1000(user) groups=10,1001(extra)", "/tmp\n0027\n", "FOO=bar baz",
			"CapAmb:\t0000000000000420", "NoNewPrivs:\t1", "100\n200\n300\n", "best-effort: prio 3"}},
		{"exit code", exit3, 3, []string{"before\n"}},
		{"killed", killed, 128 + int(unix.SIGKILL), nil},
	} {
		path := writeProcess(t, &tc.p)
		var outs [2]result
		for i, env := range [][]string{nil, {forceGoExec}} {
			res, log := cexecRun(r, env, nil, "exec", "--process", path, "cexec-agree")
			if want := []string{"C", "Go"}[i]; execSide(log) != want {
				t.Fatalf("%s: exec by %s wanted; log:\n%s", tc.name, want, log)
			}
			outs[i] = res
		}
		if outs[0] != outs[1] {
			t.Fatalf("%s: the front and the Go runtime disagree:\n--- front ---\n%+v\n--- Go ---\n%+v", tc.name, outs[0], outs[1])
		}
		if outs[0].code != tc.code {
			t.Fatalf("%s: exit %d, want %d (%+v)", tc.name, outs[0].code, tc.code, outs[0])
		}
		for _, w := range tc.want {
			if !strings.Contains(outs[0].stdout, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, outs[0].stdout)
			}
		}
		if tc.name == "root" {
			// The init's namespaces and cgroups, seen from the host.
			for _, n := range []string{"cgroup", "ipc", "mnt", "net", "pid", "uts"} {
				link, err := os.Readlink("/proc/" + strconv.Itoa(initPid) + "/ns/" + n)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(outs[0].stdout, link+"\n") {
					t.Errorf("exec'd process is not in the init's %s namespace %s:\n%s", n, link, outs[0].stdout)
				}
			}
			// sh's fds and the one ls opens: nothing of the runtime's.
			if !strings.Contains(outs[0].stdout, "\n0 1 2 3 \n") {
				t.Errorf("exec'd process has other fds than stdio:\n%s", outs[0].stdout)
			}
		}
	}
	cexecGo(r).ok("delete", "--force", "cexec-agree")
}

// TestCExecDetachPidFileFds: exec -d --pid-file and --preserve-fds. The
// pid file names the process in the container as the host sees it, which
// is in the init's namespaces and cgroups, has no fd of the runtime
// (CVE-2024-21626) and its cwd inside the root; preserved fds arrive as
// 3.., and nothing past them.
func TestCExecDetachPidFileFds(t *testing.T) {
	r := newRT(t)
	initPid := cexecContainer(t, r, "cexec-detach")
	sleeper := writeProcess(t, &specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/home", Env: []string{"PATH=/bin"}})
	proc := func(pid int, what string) string {
		t.Helper()
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + what)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for i, env := range [][]string{nil, {forceGoExec}} {
		side := []string{"C", "Go"}[i]
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "exec.pid")
		res, log := cexecRun(r, env, nil, "exec", "-d", "--pid-file", pidFile, "-p", sleeper, "cexec-detach")
		if res.code != 0 || res.stdout != "" || res.stderr != "" || execSide(log) != side {
			t.Fatalf("%s: exec -d: %+v\nlog:\n%s", side, res, log)
		}
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(string(data))
		if err != nil {
			t.Fatalf("%s: pid file holds %q", side, data)
		}
		// Written atomically: no temp file left.
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("%s: pid file dir holds %d entries", side, len(entries))
		}
		if comm := proc(pid, "comm"); comm != "sleep\n" {
			t.Errorf("%s: pid %d is %q, not the exec'd sleep", side, pid, comm)
		}
		if got, want := proc(pid, "cgroup"), proc(initPid, "cgroup"); got != want {
			t.Errorf("%s: exec'd process's cgroups:\n%s\nthe init's:\n%s", side, got, want)
		}
		for _, n := range []string{"cgroup", "ipc", "mnt", "net", "pid", "uts"} {
			a, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + n)
			b, _ := os.Readlink("/proc/" + strconv.Itoa(initPid) + "/ns/" + n)
			if a != b || a == "" {
				t.Errorf("%s: %s namespace %q, the init's %q", side, n, a, b)
			}
		}
		entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if n, _ := strconv.Atoi(e.Name()); n > 2 {
				target, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + e.Name())
				t.Errorf("%s: exec'd process has fd %s -> %s from the runtime", side, e.Name(), target)
			}
		}
		if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != "/home" {
			t.Errorf("%s: cwd %q (%v), want /home inside the container", side, cwd, err)
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}

	// --preserve-fds: the caller's fds 3 and 4 are the process's 3 and 4.
	var files []*os.File
	for _, s := range []string{"one", "two"} {
		path := filepath.Join(t.TempDir(), s)
		if err := os.WriteFile(path, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	cat := writeProcess(t, &specs.Process{Args: []string{"sh", "-c", "cat <&3; cat <&4; ls /proc/self/fd | tr '\\n' ' '"},
		Cwd: "/", Env: []string{"PATH=/bin"}})
	var outs [2]result
	for i, env := range [][]string{nil, {forceGoExec}} {
		for _, f := range files {
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
		}
		res, log := cexecRun(r, env, files, "exec", "--preserve-fds=2", "--process="+cat, "cexec-detach")
		if want := []string{"C", "Go"}[i]; execSide(log) != want {
			t.Fatalf("--preserve-fds: exec by %s wanted; log:\n%s", want, log)
		}
		outs[i] = res
	}
	if outs[0] != outs[1] || outs[0].stdout != "one\ntwo\n0 1 2 3 4 5 " {
		t.Fatalf("--preserve-fds: front %+v, Go %+v", outs[0], outs[1])
	}
	cexecGo(r).ok("delete", "--force", "cexec-detach")
}

// TestCExecForwardsSignals: without -d the runtime passes the signals it
// gets to the process and ends with the process's exit code.
func TestCExecForwardsSignals(t *testing.T) {
	r := newRT(t)
	cexecContainer(t, r, "cexec-signal")
	trap := writeProcess(t, &specs.Process{Args: []string{"sh", "-c",
		"trap 'echo got-term; exit 9' TERM; trap 'echo got-usr1' USR1; sleep 0.2; echo ready; while :; do sleep 0.05; done"},
		Cwd: "/", Env: []string{"PATH=/bin"}})
	for i, env := range [][]string{nil, {forceGoExec}} {
		side := []string{"C", "Go"}[i]
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		outf, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(r.bin, "--root", r.root, "exec", "--process", trap, "cexec-signal")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = outf, outf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitOutput := func(want string) {
			t.Helper()
			testutil.Eventually(t, side+": output "+want, func() bool {
				data, _ := os.ReadFile(out)
				return strings.Contains(string(data), want)
			})
		}
		waitOutput("ready\n")
		if err := cmd.Process.Signal(unix.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		waitOutput("got-usr1\n")
		if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("%s: exec did not end after SIGTERM", side)
		}
		outf.Close()
		data, _ := os.ReadFile(out)
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() || ws.ExitStatus() != 9 || string(data) != "ready\ngot-usr1\ngot-term\n" {
			t.Fatalf("%s: exec ended with %v, output %q; want exit 9 after the forwarded signals", side, ws, data)
		}
	}
	cexecGo(r).ok("delete", "--force", "cexec-signal")
}

// TestCExecBadInput: what the front does not do, or fails at, goes to the
// Go runtime, which words the error — the same text and exit code as the
// Go runtime alone — and nothing is left behind (CheckLeaks: processes,
// cgroups; no pid file, no temp file).
func TestCExecBadInput(t *testing.T) {
	r := newRT(t)
	cexecContainer(t, r, "cexec-bad")
	b := testutil.NewBundle(t, "true")
	cexecGo(r).ok("create", "--bundle", b.Dir, "cexec-stopped")
	cexecGo(r).ok("start", "cexec-stopped")
	r.waitStatus("cexec-stopped", "stopped")
	cexecContainer(t, r, "cexec-paused")
	cexecGo(r).ok("pause", "cexec-paused")

	ok := specs.Process{Args: []string{"true"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	malformed := filepath.Join(t.TempDir(), "malformed.json")
	if err := os.WriteFile(malformed, []byte(`{"args": ["true"], "cwd": "/"`), 0o644); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(p *specs.Process)) string {
		p := ok
		f(&p)
		return writeProcess(t, &p)
	}
	for _, tc := range []struct {
		name, process, id string
		want              string
		tried             bool // the front tries, and undoes, the exec
	}{
		{"malformed JSON", malformed, "cexec-bad", "parse --process", false},
		{"no such file", filepath.Join(t.TempDir(), "nosuch.json"), "cexec-bad", "read --process", false},
		{"relative cwd", edit(func(p *specs.Process) { p.Cwd = "tmp" }), "cexec-bad", "must be an absolute path", false},
		{"unknown capability", edit(func(p *specs.Process) {
			p.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_NOSUCH"}}
		}), "cexec-bad", "CAP_NOSUCH", false},
		{"nonexistent cwd", edit(func(p *specs.Process) { p.Cwd = "/nonexistent" }), "cexec-bad", "no such file or directory", true},
		{"missing binary", edit(func(p *specs.Process) { p.Args = []string{"nosuchcommand"} }), "cexec-bad",
			"executable file not found in $PATH", true},
		{"rlimit above the hard limit", edit(func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}}
		}), "cexec-bad", "RLIMIT_NOFILE", true},
		{"stopped container", writeProcess(t, &ok), "cexec-stopped", "stopped container", false},
		{"paused container", writeProcess(t, &ok), "cexec-paused", "paused container", false},
		{"no such container", writeProcess(t, &ok), "cexec-nosuch", "does not exist", false},
	} {
		var outs [2]result
		for i, env := range [][]string{nil, {forceGoExec}} {
			dir := t.TempDir()
			res, log := cexecRun(r, env, nil, "exec", "--pid-file", filepath.Join(dir, "pid"), "--process", tc.process, tc.id)
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("%s: a failed exec left %s in the pid file's dir", tc.name, entries[0].Name())
			}
			if i == 0 && tc.tried && !strings.Contains(log, "exec: C front: the process did not start") {
				t.Errorf("%s: the front did not try the exec; log:\n%s", tc.name, log)
			}
			outs[i] = res
		}
		if outs[0] != outs[1] {
			t.Fatalf("%s: the front and the Go runtime disagree:\n--- front ---\n%+v\n--- Go ---\n%+v", tc.name, outs[0], outs[1])
		}
		if outs[0].code != 1 || !strings.Contains(outs[0].stderr, tc.want) {
			t.Fatalf("%s: exit %d, stderr %q; want 1 and %q", tc.name, outs[0].code, outs[0].stderr, tc.want)
		}
	}
	cexecGo(r).ok("resume", "cexec-paused")
	for _, id := range []string{"cexec-bad", "cexec-stopped", "cexec-paused"} {
		cexecGo(r).ok("delete", "--force", id)
	}
}

// TestCExecFrontAlone: the front does `exec --process` with no Go runtime
// next to it, and hands off (here: fails to) everything else.
func TestCExecFrontAlone(t *testing.T) {
	r := newRT(t)
	front := frontAlone(t, r)
	cexecContainer(t, r, "cexec-alone")
	p := writeProcess(t, &specs.Process{Args: []string{"sh", "-c", "echo in $(hostname)"}, Cwd: "/", Env: []string{"PATH=/bin"}})
	if out := front.ok("exec", "--process", p, "cexec-alone"); out != "in "+testutil.DefaultSpec().Hostname+"\n" {
		t.Fatalf("exec by the front alone: %q", out)
	}
	front.ok("exec", "-d", "-p", p, "cexec-alone")
	front.ok("exec", "--detach", "--process", p, "--", "cexec-alone")
	for _, args := range [][]string{
		{"exec", "cexec-alone", "true"},                                  // a command, not --process
		{"exec", "--process", p, "cexec-alone", "true"},                  // both
		{"exec", "--tty", "--process", p, "cexec-alone"},                 // another flag
		{"exec", "--process", p, "--env", "A=b", "cexec-alone"},          // another flag
		{"exec", "-d=true", "--process", p, "cexec-alone"},               // a bool flag with a value
		{"exec", "--preserve-fds", "010", "--process", p, "cexec-alone"}, // Go reads octal
		{"exec", "--process", p, "cexec-alone/../cexec-alone"},           // not an id
		{"exec", "--process", p},                                         // no id
	} {
		front.fails(handoffError, args...)
	}
	// A relative --pid-file is the caller's cwd's; one with ".." (which
	// Go cleans lexically) goes to the Go runtime.
	cwd := t.TempDir()
	for _, tc := range []struct {
		path string
		ok   bool
	}{{"./exec.pid", true}, {"sub/../exec.pid", false}} {
		cmd := exec.Command(front.bin, "--root", front.root, "exec", "-d", "--pid-file", tc.path, "--process", p, "cexec-alone")
		cmd.Dir = cwd
		out, err := cmd.CombinedOutput()
		if tc.ok != (err == nil) || (!tc.ok && !strings.Contains(string(out), handoffError)) {
			t.Fatalf("--pid-file %s: %v, %s", tc.path, err, out)
		}
		if data, err := os.ReadFile(filepath.Join(cwd, "exec.pid")); tc.ok && (err != nil || len(data) == 0) {
			t.Fatalf("--pid-file %s: %q, %v", tc.path, data, err)
		}
	}
	fr := *front
	fr.env = []string{forceGoExec}
	fr.fails(handoffError, "exec", "--process", p, "cexec-alone")
	fr.env = []string{"CAPSA_RUNTIME_GO_INIT=1"}
	fr.fails(handoffError, "exec", "--process", p, "cexec-alone")
	cexecGo(r).ok("delete", "--force", "cexec-alone")
}

// TestCExecAfterCreate: a container made by the default runtime's create
// (the front's, for this config) has a record that lets the front exec.
func TestCExecAfterCreate(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sleep", "1000")
	r.ok("create", "--bundle", b.Dir, "cexec-create")
	r.ok("start", "cexec-create")
	p := writeProcess(t, &specs.Process{Args: []string{"true"}, Cwd: "/", Env: []string{"PATH=/bin"}})
	res, log := cexecRun(r, nil, nil, "exec", "--process", p, "cexec-create")
	if res.code != 0 || execSide(log) != "C" {
		t.Fatalf("exec: %+v, not by the front; log:\n%s", res, log)
	}
	r.ok("delete", "--force", "cexec-create")
}
