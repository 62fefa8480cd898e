// Package containerd drives containerd's runc shim (containerd-shim-runc-v2,
// the one Docker uses) with capsa-runtime as its runc binary, and runc as
// the reference: the same ctr commands must give the same output and exit
// codes. The shim calls create, start, state, exec, kill, pause, resume and
// delete with its own flags (--root, --log, --log-format json), so this is
// the front's (cmd/capsa-runtime/front) compatibility test as much as the
// Go runtime's.
package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// daemon is a private containerd: its own root, state and socket in the
// test's temp dir, and a namespace of its own, whose runc state root the
// shim keeps in /run/containerd/runc/NAMESPACE.
type daemon struct {
	t         *testing.T
	dir       string
	socket    string
	namespace string
	rootfs    string
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	testutil.RequireRoot(t)
	for _, bin := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found (apt-get install containerd): %v", bin, err)
		}
	}
	d := &daemon{t: t, dir: t.TempDir(), namespace: "capsa-test-" + strconv.Itoa(os.Getpid())}
	d.socket = filepath.Join(d.dir, "containerd.sock")
	d.rootfs = filepath.Join(d.dir, "rootfs")
	testutil.BusyboxRootfs(t, d.rootfs)
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n",
		filepath.Join(d.dir, "root"), filepath.Join(d.dir, "state"), d.socket)
	if err := os.WriteFile(filepath.Join(d.dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(d.dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(d.dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stateRoot := "/run/containerd/runc/" + d.namespace
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the daemon's own state is in the temp dir
		_, _ = cmd.Process.Wait()
		logf.Close()
		if err := os.Remove(stateRoot); err != nil && !os.IsNotExist(err) {
			t.Errorf("shim state root left behind: %v", err)
		}
		// ctr puts containers in /NAMESPACE/ID: the runtime removes the
		// container's cgroup, the namespace's is ours. A non-empty one
		// means a container cgroup was left behind.
		hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range hierarchies {
			if err := unix.Rmdir(filepath.Join(h, d.namespace)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
				t.Errorf("cleanup: rmdir %s: %v", filepath.Join(h, d.namespace), err)
			}
		}
	})
	testutil.Eventually(t, "containerd to listen", func() bool {
		return exec.Command("ctr", "--address", d.socket, "version").Run() == nil
	})
	return d
}

// ctr runs ctr against the daemon with a deadline; runtime is the runc
// binary the shim uses for the container being created ("" for others).
func (d *daemon) ctr(args ...string) (string, int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", d.socket, "--namespace", d.namespace}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("ctr %v: %v", args, err)
	}
	return out.String(), code
}

// runtimes are the runc binaries compared: runc first, the reference.
func runtimes(t *testing.T) [][2]string {
	return [][2]string{{"runc", "/usr/sbin/runc"}, {"capsa", testutil.Binary(t, "capsa-runtime")}}
}

// TestCtrRun: `ctr run --rm` prints the container's output and exits with
// its code, and nothing is left.
func TestCtrRun(t *testing.T) {
	testutil.CheckLeaks(t)
	d := startDaemon(t)
	for _, rt := range runtimes(t) {
		out, code := d.ctr("run", "--rm", "--runc-binary", rt[1], "--rootfs", d.rootfs, "ctr-run-"+rt[0],
			"/bin/sh", "-c", "echo hello from $(id -u); exit 3")
		if out != "hello from 0\n" || code != 3 {
			t.Fatalf("%s: ctr run: exit %d, output %q", rt[0], code, out)
		}
	}
}

// TestCtrLifecycle: run -d, task ls, exec, pause, resume, kill, delete: the
// shim's view of the task under capsa-runtime is runc's.
func TestCtrLifecycle(t *testing.T) {
	testutil.CheckLeaks(t)
	d := startDaemon(t)
	transcripts := map[string]string{}
	for _, rt := range runtimes(t) {
		id := "ctr-life-" + rt[0]
		var tr strings.Builder
		step := func(args ...string) string {
			out, code := d.ctr(args...)
			fmt.Fprintf(&tr, "[%s] exit %d\n", strings.Join(args[:2], " "), code)
			for _, line := range strings.SplitAfter(out, "\n") {
				// ctr's own log lines carry a time and the id.
				if !strings.HasPrefix(line, "time=") {
					tr.WriteString(line)
				}
			}
			return out
		}
		status := func() {
			out, _ := d.ctr("task", "ls")
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[0] == id {
					fmt.Fprintf(&tr, "status %s\n", f[2])
				}
			}
		}
		step("run", "-d", "--runc-binary", rt[1], "--rootfs", d.rootfs, id, "/bin/sleep", "1000")
		status()
		step("task", "exec", "--exec-id", "e1", id, "/bin/sh", "-c", "echo exec in $(hostname); exit 7")
		step("task", "pause", id)
		status()
		step("task", "resume", id)
		status()
		step("task", "kill", "-s", "KILL", id)
		testutil.Eventually(t, id+" to stop", func() bool {
			out, _ := d.ctr("task", "ls")
			return strings.Contains(out, "STOPPED")
		})
		status()
		step("task", "delete", id)
		step("container", "delete", id)
		transcripts[rt[0]] = tr.String()
	}
	if transcripts["capsa"] != transcripts["runc"] {
		t.Fatalf("capsa-runtime and runc differ:\n--- runc ---\n%s--- capsa ---\n%s", transcripts["runc"], transcripts["capsa"])
	}
	for _, want := range []string{"status RUNNING", "exit 7", "status PAUSED", "status STOPPED"} {
		if !strings.Contains(transcripts["capsa"], want) {
			t.Fatalf("transcript lacks %q:\n%s", want, transcripts["capsa"])
		}
	}
}
