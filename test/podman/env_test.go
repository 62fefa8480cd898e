package podman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/proctree"
	"github.com/capsa-project/capsa/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// image is the busybox image every case runs, imported from a tarball of
// testutil.BusyboxRootfs (no registry is reachable).
const image = "localhost/ptest-busybox:latest"

// cmdTimeout bounds each podman command: a hung runtime fails its case
// instead of the whole package.
const cmdTimeout = 2 * time.Minute

// runtimeUnderTest is an OCI runtime that podman runs via --runtime.
type runtimeUnderTest struct{ name, path string }

// runc is the reference: what it does is what capsa-runtime must do.
var runc = runtimeUnderTest{"runc", "/usr/sbin/runc"}

// stateRoots are the runtimes' default state directories. podman passes no
// --root to the runtime (its exit command would lose a --runtime-flag), so
// containers live there, and CheckLeaks checks that none is left.
var stateRoots = []string{"/run/runc", "/run/capsa-runtime"}

func capsaRuntime(t *testing.T) runtimeUnderTest {
	t.Helper()
	return runtimeUnderTest{"capsa", testutil.Binary(t, "capsa-runtime")}
}

// env is a private podman installation: storage, run root, tmp dir and
// containers.conf in a temp dir, and a cgroup parent of its own, so that
// the tests touch nothing of the host's podman and leave nothing behind.
type env struct {
	t                           *testing.T
	dir                         string
	root, runroot, tmpdir, conf string
	cgroupParent                string
	usedRuntimes                []runtimeUnderTest
}

var envSeq atomic.Int64

// containersConf: root here lacks CAP_SYS_RESOURCE, so podman's default
// ulimits (nofile and nproc 1048576) would fail at container start with any
// runtime; the rest matches the command-line flags, for podman's exit
// command (`podman container cleanup`, run by conmon), which reads it too.
const containersConf = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
`

// newEnv sets up a private podman with the busybox image imported. Call it
// after testutil.CheckLeaks: its cleanup removes containers, image, storage
// and cgroups, waits for conmon and podman's exit commands, and reports
// what a runtime left behind.
func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequireRoot(t)
	for _, bin := range []string{"podman", "conmon", "tar", runc.path} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found (run `make deps`): %v", bin, err)
		}
	}
	dir := t.TempDir()
	e := &env{
		t:            t,
		dir:          dir,
		root:         filepath.Join(dir, "root"),
		runroot:      filepath.Join(dir, "runroot"),
		tmpdir:       filepath.Join(dir, "tmp"),
		conf:         filepath.Join(dir, "containers.conf"),
		cgroupParent: fmt.Sprintf("/ptest-%d-%d", os.Getpid(), envSeq.Add(1)),
	}
	if err := os.WriteFile(e.conf, []byte(containersConf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)

	rootfs := filepath.Join(dir, "rootfs")
	testutil.BusyboxRootfs(t, rootfs)
	tarball := filepath.Join(dir, "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "--numeric-owner", "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar the busybox rootfs: %v\n%s", err, out)
	}
	if res := e.podman(runc, "import", tarball, image); res.code != 0 {
		t.Fatalf("podman import of the busybox image failed:\n%s", res)
	}
	return e
}

// result is what one podman command (or a scenario of several) did.
type result struct {
	cmd            string
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\nexit code: %d (after %.2fs)\nstdout:\n%s\nstderr:\n%s", r.cmd, r.code, r.took.Seconds(), indent(r.stdout), indent(r.stderr))
}

// shellJoin quotes args as a shell would need them, for messages.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$;&|<>()[]*?!`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}

func indent(s string) string {
	if s == "" {
		return "  (empty)"
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// command builds a podman command on e's private storage with runtime r.
func (e *env) command(ctx context.Context, r runtimeUnderTest, args ...string) *exec.Cmd {
	global := []string{
		"--root", e.root, "--runroot", e.runroot, "--tmpdir", e.tmpdir,
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--runtime", r.path,
	}
	cmd := exec.CommandContext(ctx, "podman", append(global, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+e.conf)
	return cmd
}

func (e *env) noteRuntime(r runtimeUnderTest) {
	for _, u := range e.usedRuntimes {
		if u == r {
			return
		}
	}
	e.usedRuntimes = append(e.usedRuntimes, r)
}

// podman runs one podman command with runtime r. A command that cannot be
// started or times out fails the test; a non-zero exit is a result.
func (e *env) podman(r runtimeUnderTest, args ...string) result {
	e.t.Helper()
	e.noteRuntime(r)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, r, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{cmd: "podman --runtime " + r.name + " " + shellJoin(args), stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("%s: timed out after %s (runtime %s hangs?)\n%s", res.cmd, cmdTimeout, r.name, res)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("%s: %v", res.cmd, err)
	}
	return res
}

// podmanTTY runs a podman command with its stdin, stdout and stderr on a
// new pty, as a person at a terminal would; stdout is all it printed there.
func (e *env) podmanTTY(r runtimeUnderTest, args ...string) result {
	e.t.Helper()
	e.noteRuntime(r)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, r, args...)
	res := result{cmd: "podman --runtime " + r.name + " " + shellJoin(args) + "   (on a pty)"}
	start := time.Now()
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		e.t.Fatalf("%s: %v", res.cmd, err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(&out, ptmx)
		copied <- err
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("%s: timed out after %s (runtime %s hangs?)", res.cmd, cmdTimeout, r.name)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("%s: %v", res.cmd, err)
	}
	// Once podman has exited, nothing holds the pty's other side open, and
	// reading the master ends with EIO.
	select {
	case <-copied:
	case <-time.After(cmdTimeout):
		e.t.Fatalf("%s: the pty stayed open after podman exited", res.cmd)
	}
	res.took = time.Since(start)
	res.stdout = strings.ReplaceAll(out.String(), "\r\n", "\n")
	if testing.Verbose() {
		e.t.Logf("%s: exit %d after %.2fs", res.cmd, res.code, res.took.Seconds())
	}
	return res
}

// runFlags are the flags every container of the tests gets.
func (e *env) runFlags(name string) []string {
	return []string{"--name", name, "--network", "none", "--cgroup-parent", e.cgroupParent}
}

// compare runs a case with runc, then with capsa-runtime. runc must pass
// check, or the test environment is broken; capsa-runtime must pass it too
// and agree with runc on stdout and exit code.
func compare(t *testing.T, run func(r runtimeUnderTest) result, check func(result) error) {
	t.Helper()
	ref := run(runc)
	if err := check(ref); err != nil {
		t.Fatalf("the reference runtime runc fails this case, so the test setup is broken: %v\n%s", err, ref)
	}
	capsa := capsaRuntime(t)
	got := run(capsa)
	if err := check(got); err != nil {
		t.Errorf("capsa-runtime (%s) fails: %v\n--- capsa-runtime:\n%s\n--- runc (reference, passes):\n%s", capsa.path, err, got, ref)
		return
	}
	if got.stdout != ref.stdout || got.code != ref.code {
		t.Errorf("capsa-runtime and runc disagree\n--- capsa-runtime:\n%s\n--- runc (reference):\n%s", got, ref)
	}
}

// cleanup removes everything e made. It runs before CheckLeaks, which then
// finds nothing, unless a runtime left something that podman cannot remove.
func (e *env) cleanup() {
	t := e.t
	// Containers a failed case left, then the image; each with the runtime
	// that podman recorded for the container.
	for _, r := range e.usedRuntimes {
		if res := e.podmanNoFatal(r, "rm", "--all", "--force", "--time", "0"); res.code != 0 {
			t.Errorf("cleanup: podman rm --all --force with %s failed:\n%s", r.name, res)
		}
	}
	if res := e.podmanNoFatal(runc, "rmi", "--all", "--force"); res.code != 0 {
		t.Errorf("cleanup: podman rmi --all --force failed:\n%s", res)
	}
	e.reapAll()
	e.unmountAll()
	e.removeCgroups()
}

// podmanNoFatal is podman for cleanups, which must go on after a failure.
func (e *env) podmanNoFatal(r runtimeUnderTest, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, r, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{cmd: "podman " + shellJoin(args), stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		res.code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() >= 0 {
			res.code = ee.ExitCode()
		}
		res.stderr += "\n" + err.Error()
	}
	return res
}

// reapAll waits for every child of the test binary to exit and reaps it
// (conmon daemonizes, so its processes go to the host's init instead).
// Nothing else runs during a cleanup, so wait4(-1) steals no os/exec child.
func (e *env) reapAll() {
	deadline := time.Now().Add(time.Minute)
	for {
		for {
			pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
		}
		left := proctree.Descendants(os.Getpid())
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Errorf("cleanup: processes still running a minute after their containers were removed (killing them): %v", left)
			for _, pid := range left {
				// ESRCH means it just exited, which is what we want.
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			deadline = time.Now().Add(time.Minute)
		}
		time.Sleep(20 * time.Millisecond) // polling for exits, as testutil.Eventually does
	}
}

// unmountAll unmounts what is still mounted below e.dir (container shm
// mounts podman failed to unmount), so that the temp dir can be removed.
func (e *env) unmountAll() {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		e.t.Errorf("cleanup: %v", err)
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	// Deepest first.
	for i := len(mounts) - 1; i >= 0; i-- {
		e.t.Errorf("cleanup: %s was still mounted after all containers were removed", mounts[i])
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			e.t.Errorf("cleanup: unmount %s: %v", mounts[i], err)
		}
	}
}

// removeCgroups removes e's cgroup parent in every hierarchy. podman leaves
// its conmon cgroup there; a container cgroup (libpod-ID) left after the
// container was removed is the runtime's fault, and reported.
func (e *env) removeCgroups() {
	hierarchies, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		e.t.Errorf("cleanup: %v", err)
		return
	}
	for _, h := range hierarchies {
		top := filepath.Join(h, e.cgroupParent)
		var dirs []string
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			e.t.Errorf("cleanup: %v", err)
			continue
		}
		for i := len(dirs) - 1; i >= 0; i-- { // children first
			if strings.HasPrefix(filepath.Base(dirs[i]), "libpod-") {
				e.t.Errorf("cleanup: container cgroup %s was left behind after the container was removed", dirs[i])
			}
			if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
				e.t.Errorf("cleanup: rmdir %s: %v", dirs[i], err)
			}
		}
	}
}
