package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/testutil"
)

func TestRunEchoAndExitCode(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sh", "-c", "echo hello from $(hostname); exit 7")
	res := r.runBundle(b, "it-echo")
	if res.code != 7 {
		t.Fatalf("exit code %d, want 7 (stderr %q)", res.code, res.stderr)
	}
	if res.stdout != "hello from capsa\n" {
		t.Fatalf("stdout %q", res.stdout)
	}
	// run deletes the container after it exits.
	r.fails("does not exist", "state", "it-echo")
}

func TestLifecycle(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sleep", "1000")
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("create", "--bundle", b.Dir, "--pid-file", pidFile, "it-life")
	st := r.state("it-life")
	if st.Status != "created" || st.Pid <= 0 || st.Bundle != b.Dir {
		t.Fatalf("after create: %+v", st)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q (err %v), state pid %d", data, err, st.Pid)
	}
	// The init waits for start: nothing of the container process runs yet.
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
		t.Fatalf("container process runs before start")
	}
	fi, err := os.Stat(filepath.Join(r.root, "it-life"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v (err %v), want 0700", fi.Mode().Perm(), err)
	}
	r.fails("not stopped", "delete", "it-life")
	r.ok("start", "it-life")
	if st := r.state("it-life"); st.Status != "running" {
		t.Fatalf("after start: %+v", st)
	}
	r.fails("already running", "start", "it-life")
	if list := r.ok("list", "-q"); strings.TrimSpace(list) != "it-life" {
		t.Fatalf("list -q: %q", list)
	}
	r.fails("not stopped", "delete", "it-life")
	r.ok("kill", "it-life", "KILL")
	r.waitStatus("it-life", "stopped")
	r.fails("stopped", "start", "it-life")
	r.ok("delete", "it-life")
	if _, err := os.Stat(filepath.Join(r.root, "it-life")); !os.IsNotExist(err) {
		t.Fatalf("state dir left after delete: %v", err)
	}
}

func TestDeleteForceRunning(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sh", "-c", "sleep 1000 & sleep 1000")
	r.ok("run", "-d", "--bundle", b.Dir, "it-force")
	r.waitStatus("it-force", "running")
	r.ok("delete", "--force", "it-force")
	r.fails("does not exist", "state", "it-force")
}

func TestExec(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sleep", "1000")
	r.ok("run", "-d", "--bundle", b.Dir, "it-exec")
	out := r.ok("exec", "--env", "FOO=bar", "--cwd", "/tmp", "it-exec", "sh", "-c", "echo $FOO; pwd; hostname")
	if out != "bar\n/tmp\ncapsa\n" {
		t.Fatalf("exec output %q", out)
	}
	if res := r.run("exec", "it-exec", "sh", "-c", "exit 3"); res.code != 3 {
		t.Fatalf("exec exit code %d, want 3 (stderr %q)", res.code, res.stderr)
	}
	// The exec'd process is in the container's pid namespace and cgroup.
	out = r.ok("exec", "--user", "1000:1000", "it-exec", "sh", "-c", "id -u; id -g; cat /proc/1/comm")
	if out != "1000\n1000\nsleep\n" {
		t.Fatalf("exec --user output %q", out)
	}
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.ok("exec", "-d", "--pid-file", pidFile, "it-exec", "sleep", "1000")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	ps := r.ok("ps", "--format", "json", "it-exec")
	if !strings.Contains(ps, strconv.Itoa(pid)) {
		t.Fatalf("ps %s does not list the exec'd pid %d", ps, pid)
	}
	r.fails("not found", "exec", "it-exec", "no-such-binary")
	r.ok("delete", "--force", "it-exec")
}

func TestProcessSettings(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status; echo $HOME; pwd; umask; touch /ro 2>/dev/null || echo rofs; cat /proc/self/oom_score_adj")
	umask := uint32(0o027)
	b.Spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001}, Umask: &umask}
	b.Spec.Process.Cwd = "/tmp"
	b.Spec.Process.Capabilities.Effective = []string{"CAP_KILL"}
	b.Spec.Process.Capabilities.Permitted = []string{"CAP_KILL"}
	b.Spec.Process.Capabilities.Bounding = []string{"CAP_KILL"}
	b.Spec.Process.Capabilities.Ambient = []string{"CAP_KILL"}
	b.Spec.Process.Capabilities.Inheritable = []string{"CAP_KILL"}
	adj := 500
	b.Spec.Process.OOMScoreAdj = &adj
	b.Write(t)
	res := r.runBundle(b, "it-proc")
	want := "1000\n1000\n1000 1001\nCapEff:\t0000000000000020\n/home/user\n/tmp\n0027\nrofs\n500\n"
	if res.code != 0 || res.stdout != want {
		t.Fatalf("exit %d, stdout %q, want %q; stderr %q", res.code, res.stdout, want, res.stderr)
	}
}

func TestHostnameAndNamespaces(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sh", "-c", "hostname; domainname 2>/dev/null || cat /proc/sys/kernel/domainname; echo $$; ls /sys/class/net")
	b.Spec.Hostname = "box1"
	b.Spec.Domainname = "example.org"
	b.Write(t)
	res := r.runBundle(b, "it-ns")
	if res.code != 0 || res.stdout != "box1\nexample.org\n1\nlo\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestCgroupPlacement(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sleep", "1000")
	b.Spec.Linux.CgroupsPath = "/capsa-it-cgplace"
	b.Write(t)
	r.ok("run", "-d", "--bundle", b.Dir, "it-cg")
	st := r.state("it-cg")
	procs := "/sys/fs/cgroup/pids/capsa-it-cgplace/cgroup.procs"
	data, err := os.ReadFile(procs)
	if err != nil || !strings.Contains(string(data), strconv.Itoa(st.Pid)) {
		t.Fatalf("%s = %q (err %v), want pid %d", procs, data, err, st.Pid)
	}
	r.ok("delete", "--force", "it-cg")
	if _, err := os.Stat("/sys/fs/cgroup/pids/capsa-it-cgplace"); !os.IsNotExist(err) {
		t.Fatalf("cgroup left after delete: %v", err)
	}
}

func TestPauseResumeUpdateEvents(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sleep", "1000")
	b.Spec.Linux.CgroupsPath = "/capsa-it-pause"
	b.Write(t)
	r.ok("run", "-d", "--bundle", b.Dir, "it-pause")
	r.ok("pause", "it-pause")
	if st := r.state("it-pause"); st.Status != "paused" {
		t.Fatalf("after pause: %s", st.Status)
	}
	freezer, err := os.ReadFile("/sys/fs/cgroup/freezer/capsa-it-pause/freezer.state")
	if err != nil || strings.TrimSpace(string(freezer)) != "FROZEN" {
		t.Fatalf("freezer.state %q (err %v)", freezer, err)
	}
	r.fails("not running", "pause", "it-pause")
	r.ok("resume", "it-pause")
	if st := r.state("it-pause"); st.Status != "running" {
		t.Fatalf("after resume: %s", st.Status)
	}
	r.ok("update", "--memory", "64m", "--pids-limit", "20", "it-pause")
	for file, want := range map[string]string{
		"/sys/fs/cgroup/memory/capsa-it-pause/memory.limit_in_bytes": "67108864",
		"/sys/fs/cgroup/pids/capsa-it-pause/pids.max":                "20",
	} {
		if got, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q (err %v), want %s", file, got, err, want)
		}
	}
	ev := r.ok("events", "--stats", "it-pause")
	if !strings.Contains(ev, `"type":"stats"`) || !strings.Contains(ev, `"limit":67108864`) {
		t.Errorf("events --stats: %s", ev)
	}
	r.ok("delete", "--force", "it-pause")
}

// podman run --read-only mounts /tmp with tmpcopyup: the image's files
// there show through in a writable tmpfs.
func TestTmpcopyup(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sh", "-c", "cat /tmp/keep; touch /tmp/new && echo writable; touch /x 2>/dev/null || echo rofs")
	if err := os.WriteFile(filepath.Join(b.Rootfs(), "tmp", "keep"), []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "nosuid", "nodev", "tmpcopyup"}})
	b.Write(t)
	res := r.runBundle(b, "it-copyup")
	if res.code != 0 || res.stdout != "hello\nwritable\nrofs\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs(), "tmp", "new")); err == nil {
		t.Fatalf("the write went to the image, not the tmpfs")
	}
}
