package cgroups_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/capsa-project/capsa/runtime/cgroups"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// integration marks a test that needs root and the real kernel: it skips
// without root and registers the leak check, which must run last.
func integration(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.CheckLeaks(t)
	// Runs after every later cleanup (destroy, kill) and before the leak
	// check: orphans killed by Destroy must be reaped to disappear.
	t.Cleanup(func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			reapOrphans()
			if !hasUntrackedChildren() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// hasUntrackedChildren reports whether a process other than a tracked one
// has the test binary as its parent.
func hasUntrackedChildren() bool {
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ok := tracked.Load(pid); ok {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		rest := string(st)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		if f := strings.Fields(rest); len(f) >= 2 && f[1] == self {
			return true
		}
	}
	return false
}

// outFile collects a process's output in a file: with a pipe, Wait would
// also wait for background children that inherited it.
type outFile struct{ path string }

func (o *outFile) String() string {
	b, _ := os.ReadFile(o.path) // a missing file reads as no output
	return string(b)
}

// tracked holds the pids that exec.Cmd waits for; reapOrphans leaves them.
var tracked sync.Map

// reapOrphans reaps the zombies of processes that were reparented to the
// test binary (a child subreaper, see testutil.Main) when their parent
// shell died: nobody else waits for them.
func reapOrphans() {
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ok := tracked.Load(pid); ok {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		rest := string(st)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) >= 2 && f[1] == self && f[0] == "Z" {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil) // a zombie: nothing to report
		}
	}
}

// gatedProc is a busybox shell that waits for a line on stdin before it
// runs its script, so the test can move it into a cgroup first: nothing
// the script does escapes the cgroup's limits.
type gatedProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *outFile
	waitCh chan error
}

func startGated(t *testing.T, script string) *gatedProc {
	t.Helper()
	p := &gatedProc{out: &outFile{path: filepath.Join(t.TempDir(), "out")}, waitCh: make(chan error, 1)}
	p.cmd = exec.Command(testutil.BusyboxPath, "sh", "-c", "read _ || exit 1\n"+script)
	out, err := os.Create(p.out.path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child has its own copy
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start busybox (apt-get install busybox-static): %v", err)
	}
	tracked.Store(p.cmd.Process.Pid, true)
	go func() {
		err := p.cmd.Wait()
		tracked.Delete(p.cmd.Process.Pid)
		p.waitCh <- err
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // may be gone already
		p.wait(t)
	})
	return p
}

func (p *gatedProc) pid() int { return p.cmd.Process.Pid }

// release lets the script run.
func (p *gatedProc) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		t.Fatalf("release: %v", err)
	}
}

var errNotExited = errors.New("still running")

// wait waits (generously) for the shell to exit and returns its status.
func (p *gatedProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.waitCh:
		p.waitCh <- err // keep it for the next caller
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("process %d did not exit; output: %s", p.pid(), p.out.String())
		return errNotExited
	}
}

// newManager creates a manager for an absolute test cgroup and destroys it
// at cleanup.
func newManager(t *testing.T, name string, r *specs.LinuxResources) cgroups.Manager {
	t.Helper()
	m, err := cgroups.New(cgroups.Config{Path: "/" + name, Resources: r})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return m
}

// ctrlDir is the directory of the controller that holds file: the v1
// controller named by the file's prefix, or the unified cgroup.
func ctrlDir(t *testing.T, m cgroups.Manager, file string) string {
	t.Helper()
	p := m.Paths()
	if d, ok := p[""]; ok {
		return d
	}
	ctrl, _, _ := strings.Cut(file, ".")
	d, ok := p[ctrl]
	if !ok {
		t.Fatalf("controller %s of %s is not managed: %v", ctrl, file, p)
	}
	return d
}

// readCgroupFile reads a control file of m's cgroup directly.
func readCgroupFile(t *testing.T, m cgroups.Manager, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ctrlDir(t, m, file), file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func readCgroupUint(t *testing.T, m cgroups.Manager, file string) uint64 {
	t.Helper()
	s := readCgroupFile(t, m, file)
	if s == "max" {
		return ^uint64(0)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", file, s, err)
	}
	return v
}

// cpuUsage is the cgroup's CPU time in nanoseconds, from the files.
func cpuUsage(t *testing.T, m cgroups.Manager) uint64 {
	t.Helper()
	if cgroups.IsV2() {
		kv, err := cgroups.ReadKeyValues(ctrlDir(t, m, "cpu.stat"), "cpu.stat")
		if err != nil {
			t.Fatal(err)
		}
		return kv["usage_usec"] * 1000
	}
	return readCgroupUint(t, m, "cpuacct.usage")
}

// waitOOM waits for one event on ch.
func waitOOM(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("OOM channel closed without an event")
		}
		return ev
	case <-time.After(60 * time.Second):
		t.Fatal("no OOM event within 60s")
		return ""
	}
}

func ptr[T any](v T) *T { return &v }

func cgName(t *testing.T) string {
	return fmt.Sprintf("cgtest-%s-%d", strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"), os.Getpid())
}

var _ = context.Background
