package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/testutil"
)

// CVE-2024-21626: no fd of the runtime reaches the container, and the cwd is
// inside the container's root — for the init and for exec'd processes.
func TestNoRuntimeFdsReachContainer(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sleep", "1000")
	b.Spec.Process.Cwd = "/tmp"
	b.Write(t)
	r.ok("run", "-d", "--bundle", b.Dir, "fds")
	initPid := r.state("fds").Pid
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("exec", "-d", "--pid-file", pidFile, "--cwd", "/home", "fds", "sleep", "1000")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	execPid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	for _, c := range []struct {
		pid int
		cwd string
	}{{initPid, "/tmp"}, {execPid, "/home"}} {
		dir := "/proc/" + strconv.Itoa(c.pid) + "/fd"
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if n, _ := strconv.Atoi(e.Name()); n > 2 {
				target, _ := os.Readlink(filepath.Join(dir, e.Name()))
				t.Errorf("pid %d has fd %s -> %s from the runtime", c.pid, e.Name(), target)
			}
		}
		cwd, err := os.Readlink("/proc/" + strconv.Itoa(c.pid) + "/cwd")
		// Seen from the host the cwd of a pivoted process is named relative
		// to its own root; a leaked host directory would show a host path.
		if err != nil || cwd != c.cwd {
			t.Errorf("pid %d cwd %q (err %v), want %s inside the container", c.pid, cwd, err, c.cwd)
		}
	}
	r.ok("delete", "--force", "fds")
}

// CVE-2019-5736: a process in the container that holds the init's
// /proc/PID/exe can never write the runtime binary, not even after the init
// has exec'd or exited (when ETXTBSY no longer protects it): the init runs
// from a read-only detached mount of the binary or from a sealed copy.
func TestRuntimeBinaryNotWritableFromContainer(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "true")
	before, err := os.ReadFile(r.bin)
	if err != nil {
		t.Fatal(err)
	}
	r.ok("create", "--bundle", b.Dir, "exe")
	exe := "/proc/" + strconv.Itoa(r.state("exe").Pid) + "/exe"
	if target, _ := os.Readlink(exe); target == r.bin {
		t.Errorf("init runs from the runtime binary itself (%s)", target)
	}
	held, err := os.OpenFile(exe, unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r.ok("delete", "--force", "exe")
	// A read-only mount refuses the open; a sealed memfd the write.
	if f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(held.Fd())), os.O_WRONLY, 0); err == nil {
		_, werr := f.Write([]byte("#!/bin/sh\necho pwned\n"))
		f.Close()
		if werr == nil {
			t.Errorf("wrote to the init's executable through /proc/PID/exe")
		}
	}
	after, err := os.ReadFile(r.bin)
	if err != nil || string(after) != string(before) {
		t.Fatalf("the runtime binary changed (err %v)", err)
	}
}

// A symlink in the image cannot send a mount outside the root: the
// destination is resolved inside it.
func TestMountDestinationSymlinkStaysInRoot(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sh", "-c", "cat /etc/passwd; cat /tmp/inside/marker")
	if err := os.Symlink("/etc", filepath.Join(b.Rootfs(), "etc", "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../tmp", filepath.Join(b.Rootfs(), "escape")); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "bound")
	if err := os.WriteFile(src, []byte("BOUND\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srcDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(srcDir, "marker"), []byte("MARKER\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/etc/evil/passwd", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/escape/inside", Type: "bind", Source: srcDir, Options: []string{"rbind"}},
	)
	b.Write(t)
	res := r.runBundle(b, "symlink")
	if res.code != 0 || res.stdout != "BOUND\nMARKER\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q: the mounts did not land inside the root", res.code, res.stdout, res.stderr)
	}
	if _, err := os.Stat("/tmp/inside"); err == nil {
		t.Fatalf("/tmp/inside was created on the host")
	}
}

// CVE-2025-31133 / CVE-2025-52565: /dev/null and /dev/console planted as
// symlinks in the image are replaced, never followed.
func TestDevSymlinkTricksRefused(t *testing.T) {
	r := newRT(t)
	sentinel := filepath.Join(t.TempDir(), "sentinel")
	if err := os.WriteFile(sentinel, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := testutil.NewBundle(t, "sh", "-c", "ls -l /dev/null /dev/console | cut -c1; tty; cat /proc/keys | wc -c")
	// No tmpfs on /dev: the image's own /dev is used, with its plants.
	mounts := b.Spec.Mounts[:0]
	for _, m := range b.Spec.Mounts {
		if m.Destination != "/dev" {
			mounts = append(mounts, m)
		}
	}
	b.Spec.Mounts = mounts
	b.Spec.Process.Terminal = true
	b.Write(t)
	for _, name := range []string{"null", "console"} {
		if err := os.Symlink(sentinel, filepath.Join(b.Rootfs(), "dev", name)); err != nil {
			t.Fatal(err)
		}
	}
	sock, output := consoleSocket(t)
	res := r.run("run", "--bundle", b.Dir, "--console-socket", sock, "devtricks")
	if res.code != 0 {
		t.Fatalf("run: exit %d, stderr %q", res.code, res.stderr)
	}
	out := <-output
	if !strings.Contains(out, "c\r\nc\r\n/dev/pts/0\r\n0\r\n") {
		t.Fatalf("container saw %q: want char devices, a pty and a masked /proc/keys", out)
	}
	if data, _ := os.ReadFile(sentinel); string(data) != "untouched" {
		t.Fatalf("sentinel changed to %q", data)
	}
}

// consoleSocket listens on a unix socket like conmon does, takes the pty
// master the runtime sends and delivers what the container writes to it.
func consoleSocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan string, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			close(ch)
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 64), make([]byte, 64)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			close(ch)
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			close(ch)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			close(ch)
			return
		}
		// Read at once: data left in a pty when its slave closes is lost.
		ch <- readAll(os.NewFile(uintptr(fds[0]), "pty-master"))
	}()
	return path, ch
}

// readAll reads a pty master until the slave side is gone (EIO).
func readAll(f *os.File) string {
	defer f.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}
