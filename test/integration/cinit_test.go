package integration

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/testutil"
)

// initExeSize is the size of the binary a created container's init runs
// from, which tells the C init (the front, bin/capsa-runtime) from the Go
// one (capsa-runtime-go).
func initExeSize(t *testing.T, r *rt, id string) int64 {
	t.Helper()
	fi, err := os.Stat("/proc/" + strconv.Itoa(r.state(id).Pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestInitsAgree runs one container with many config features under the C
// init (the default for such a config) and under the Go init
// (CAPSA_RUNTIME_GO_INIT=1): what the container sees must be the same.
func TestInitsAgree(t *testing.T) {
	r := newRT(t)
	front, err := os.Stat(r.bin)
	if err != nil {
		t.Fatal(err)
	}
	script := `id; hostname; cat /proc/sys/kernel/domainname; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status;
mount; stat -c '%n %F %a %u %g %t %T' /dev/* /dev/shared/*; ulimit -n; ulimit -Hn; umask; pwd; env | sort;
cat /proc/self/oom_score_adj; cat /proc/sys/net/ipv4/ip_forward; ionice -p $$; ls /sys/fs/cgroup;
echo x > /proc/sysrq-trigger 2>&1 || echo ro-proc; touch /tmp/x && echo tmp-ok; touch /x 2>&1 || echo ro-root; cat /proc/kcore 2>&1 | wc -c`
	shared, outDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(shared+"/f", []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(outDir, 0o777); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for _, init := range []string{"c", "go"} {
		b := testutil.NewBundle(t, "sh", "-c", script)
		s := b.Spec
		s.Hostname = "agree"
		s.Domainname = "example.org"
		s.Root.Readonly = true
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: func(v uint32) *uint32 { return &v }(0o027)}
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.NoNewPrivileges = true
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}}
		s.Process.OOMScoreAdj = func(v int) *int { return &v }(500)
		s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 4}
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux}
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3,
			FileMode: func(m os.FileMode) *os.FileMode { return &m }(0o640), UID: func(v uint32) *uint32 { return &v }(1000)}}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: func(v int64) *int64 { return &v }(1), Minor: func(v int64) *int64 { return &v }(3), Access: "rwm"})
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/dev/shared", Type: "bind", Source: shared, Options: []string{"rbind", "ro", "nosuid"}},
			specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1m"}},
			specs.Mount{Destination: "/deep/new/dir", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "rprivate"}},
			specs.Mount{Destination: "/out", Type: "bind", Source: outDir, Options: []string{"bind"}},
		)
		b.Write(t)
		rr := *r
		if init == "go" {
			rr.env = []string{"CAPSA_RUNTIME_GO_INIT=1"}
		}
		id := "it-agree-" + init
		s.Process.Args = []string{"sh", "-c", "exec > /out/" + init + " 2>&1; " + script}
		b.Write(t)
		rr.ok("create", "--bundle", b.Dir, id)
		isC := initExeSize(t, &rr, id) == front.Size()
		if isC != (init == "c") {
			t.Fatalf("%s init wanted, but the init runs from a binary of %d bytes (the front has %d)", init, initExeSize(t, &rr, id), front.Size())
		}
		rr.ok("start", id)
		rr.waitStatus(id, "stopped")
		rr.ok("delete", id)
		data, err := os.ReadFile(outDir + "/" + init)
		if err != nil {
			t.Fatal(err)
		}
		outputs[init] = strings.ReplaceAll(strings.ReplaceAll(string(data), b.Dir, "BUNDLE"), "/out/"+init, "/out/X")
	}
	if outputs["c"] != outputs["go"] {
		t.Fatalf("the inits disagree:\n--- C init ---\n%s\n--- Go init ---\n%s", outputs["c"], outputs["go"])
	}
	for _, want := range []string{"uid=1000(user) gid=1000(user) groups=10,20", "agree\nexample.org\n", "NoNewPrivs:\t1", "512\n1024\n0027\n/tmp\n",
		"FOO=bar baz", "500\n1\n", "best-effort: prio 4", "/dev/mynull character special file 640 1000 0 1 3", "ro-root", "tmp-ok"} {
		if !strings.Contains(outputs["c"], want) {
			t.Errorf("container output lacks %q:\n%s", want, outputs["c"])
		}
	}
}

// TestCInitErrors: the C init's failures are reported like the Go init's,
// naming the config field, and leave nothing behind (CheckLeaks).
func TestCInitErrors(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name string
		edit func(s *specs.Spec)
		want string
	}{
		{"fs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "nosuchfs", Source: "none"})
		}, "(none on /x): no such device"},
		{"longpath", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/" + strings.Repeat("d/", 1500) + "x", Type: "nosuchfs", Source: "none"})
		}, "no such device"},
		{"sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.nosuch.key": "1"} }, "linux.sysctl net.nosuch.key: no such file or directory"},
		{"cwd", func(s *specs.Spec) { s.Process.Cwd = "/nonexistent" }, "set in config.json: no such file or directory"},
		{"exe", func(s *specs.Spec) { s.Process.Args = []string{"nosuchcommand"} }, "nosuchcommand\\\": executable file not found in $PATH"},
		{"rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}}
		}, "process.rlimits RLIMIT_NOFILE"},
	} {
		b := testutil.NewBundle(t, "true")
		tc.edit(b.Spec)
		b.Write(t)
		for _, env := range [][]string{nil, {"CAPSA_RUNTIME_GO_INIT=1"}} {
			rr := *r
			rr.env = env
			rr.fails(tc.want, "create", "--bundle", b.Dir, "it-cinit-"+tc.name)
		}
	}
}

// TestExecInitsAgree: a process exec'd into a container sees the same
// under the C init and the Go init; --debug says which one ran.
func TestExecInitsAgree(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sleep", "1000")
	b.Spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 300, Hard: 400}}
	b.Write(t)
	r.ok("run", "-d", "--bundle", b.Dir, "it-exec-agree")
	r.waitStatus("it-exec-agree", "running")
	script := `id; pwd; echo $FOO; umask; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ulimit -n; ls -l /proc/self/fd | wc -l`
	outputs := map[string]string{}
	for _, init := range []string{"C", "Go"} {
		rr := *r
		if init == "Go" {
			rr.env = []string{"CAPSA_RUNTIME_GO_INIT=1"}
		}
		log := t.TempDir() + "/log"
		outputs[init] = rr.ok("--debug", "--log", log, "exec", "--user", "1000:1000", "--cwd", "/tmp", "--env", "FOO=bar",
			"--cap", "CAP_KILL", "--no-new-privs", "it-exec-agree", "sh", "-c", script)
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "exec: "+init+" init") {
			t.Fatalf("exec did not use the %s init; log:\n%s", init, data)
		}
		rr.fails("executable file not found in $PATH", "exec", "it-exec-agree", "nosuchcommand")
	}
	if outputs["C"] != outputs["Go"] {
		t.Fatalf("the inits disagree:\n--- C init ---\n%s\n--- Go init ---\n%s", outputs["C"], outputs["Go"])
	}
	if !strings.Contains(outputs["C"], "uid=1000(user) gid=1000(user)") || !strings.Contains(outputs["C"], "bar\n") || !strings.Contains(outputs["C"], "NoNewPrivs:\t1") {
		t.Fatalf("exec'd process output:\n%s", outputs["C"])
	}
	r.ok("delete", "--force", "it-exec-agree")
}

// TestPasswdFIFO: an image whose /etc/passwd is a FIFO cannot make either
// init hang while it looks up HOME; the process gets HOME=/.
func TestPasswdFIFO(t *testing.T) {
	r := newRT(t)
	for _, env := range [][]string{nil, {"CAPSA_RUNTIME_GO_INIT=1"}} {
		b := testutil.NewBundle(t, "sh", "-c", "echo home=$HOME")
		passwd := b.Rootfs() + "/etc/passwd"
		if err := os.Remove(passwd); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(passwd, 0o644); err != nil {
			t.Fatal(err)
		}
		rr := *r
		rr.env = env
		done := make(chan result, 1)
		go func() { done <- rr.run("run", "--bundle", b.Dir, "it-passwd-fifo") }()
		select {
		case res := <-done:
			if res.code != 0 || res.stdout != "home=/\n" {
				t.Fatalf("env %v: exit %d, stdout %q, stderr %q", env, res.code, res.stdout, res.stderr)
			}
		case <-time.After(2 * time.Minute):
			// Unblock the init so that cleanup can remove the container.
			if f, err := os.OpenFile(passwd, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
			t.Fatalf("env %v: run hangs on an /etc/passwd FIFO", env)
		}
	}
}

// TestNoPivotInitsAgree: with --no-pivot (MS_MOVE and chroot instead of
// pivot_root) both inits give the container the same root.
func TestNoPivotInitsAgree(t *testing.T) {
	r := newRT(t)
	outputs := map[string]result{}
	for _, init := range []string{"c", "go"} {
		b := testutil.NewBundle(t, "sh", "-c", "ls /; id; echo $HOME; wc -l < /proc/self/mountinfo")
		rr := *r
		if init == "go" {
			rr.env = []string{"CAPSA_RUNTIME_GO_INIT=1"}
		}
		outputs[init] = rr.run("run", "--no-pivot", "--bundle", b.Dir, "it-nopivot-"+init)
	}
	if outputs["c"] != outputs["go"] || outputs["c"].code != 0 || !strings.Contains(outputs["c"].stdout, "uid=0(root)") {
		t.Fatalf("--no-pivot: C init %+v, Go init %+v", outputs["c"], outputs["go"])
	}
}
