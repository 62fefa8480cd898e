package integration

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/runtime/seccomp"
)

// The seccomp tests run linux.seccomp through real containers: the
// runtime compiles the profile in the init and loads it just before
// execve. What a syscall returns inside the container is reported by
// probe, a small static C program built with gcc into the bundle's rootfs
// (busybox has no applets for keyctl, bpf or perf_event_open, and its
// messages would hide the errno).

// probeSource makes each syscall named on its command line and prints
// "probe NAME ERRNO RET" for it. Arguments are chosen so that the kernel
// itself, unfiltered and without privileges, answers something other than
// EPERM: the EPERMs under Docker's profile are then the filter's.
const probeSource = `
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long r)
{
	printf("probe %s %d %ld\n", name, r == -1 ? errno : 0, r);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long r;
		errno = 0;
		if (strcmp(a, "unshare") == 0)
			r = syscall(SYS_unshare, CLONE_FILES);
		else if (strcmp(a, "mount") == 0)
			r = syscall(SYS_mount, "none", "/nonexistent/capsa", "tmpfs", 0L, 0L);
		else if (strcmp(a, "keyctl") == 0)
			r = syscall(SYS_keyctl, 0L /* KEYCTL_GET_KEYRING_ID */, -3L /* session */, 0L);
		else if (strcmp(a, "bpf") == 0)
			r = syscall(SYS_bpf, 1000L /* no such command */, 0L, 0L);
		else if (strcmp(a, "perf_event_open") == 0)
			r = syscall(SYS_perf_event_open, 0L /* NULL attr */, 0L, -1L, -1L, 0L);
		else if (strcmp(a, "getppid") == 0)
			r = syscall(SYS_getppid);
		else if (strcmp(a, "getpid") == 0)
			r = syscall(SYS_getpid);
		else if (strncmp(a, "mkdir:", 6) == 0)
			r = syscall(SYS_mkdir, a + 6, 0755);
		else if (strncmp(a, "personality:", 12) == 0)
			r = syscall(SYS_personality, strtoul(a + 12, NULL, 0));
		else {
			fprintf(stderr, "probe: unknown call %s\n", a);
			return 2;
		}
		report(a, r);
	}
	return 0;
}
`

// probeBundle makes a busybox bundle with /bin/probe in its rootfs,
// running args.
func probeBundle(t *testing.T, args ...string) *testutil.Bundle {
	t.Helper()
	b := testutil.NewBundle(t, args...)
	dir := t.TempDir()
	src := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(src, []byte(probeSource), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("gcc", "-static", "-O1", "-o", filepath.Join(b.Rootfs(), "bin", "probe"), src).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc -static probe.c: %v\n%s", err, out)
	}
	return b
}

// probeResult is what probe reported for one call.
type probeResult struct {
	errno unix.Errno
	ret   int64
}

// parseProbe reads the probe lines of a container's output; every one of
// calls must be reported.
func parseProbe(t *testing.T, out string, calls ...string) map[string]probeResult {
	t.Helper()
	got := map[string]probeResult{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "probe" {
			continue
		}
		e, err1 := strconv.Atoi(f[2])
		r, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("probe line %q", line)
		}
		got[f[1]] = probeResult{unix.Errno(e), r}
	}
	for _, c := range calls {
		if _, ok := got[c]; !ok {
			t.Fatalf("probe did not report %s; output:\n%s", c, out)
		}
	}
	return got
}

// dockerDefault is Docker's default profile for the bundle's bounding set.
func dockerDefault(t *testing.T, b *testutil.Bundle) *specs.LinuxSeccomp {
	t.Helper()
	s, err := seccomp.DockerDefault(b.Spec.Process.Capabilities.Bounding)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dropNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	ns := s.Linux.Namespaces[:0]
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
}

func errnoRet(e unix.Errno) *uint {
	v := uint(e)
	return &v
}

// Docker's default profile in a real container: the calls it reserves for
// CAP_SYS_ADMIN and friends are refused with EPERM, while a shell, ls and
// wget (network syscalls) work. The same container without the profile is
// the control: there the kernel answers those calls otherwise.
func TestSeccompDockerDefault(t *testing.T) {
	r := newRT(t)
	// An HTTP server in the test, reached from a container in the host's
	// network namespace.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "hello-from-the-host\n")
	}), ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }() // ends with Close below
	t.Cleanup(func() { srv.Close() })

	denied := []string{"unshare", "mount", "keyctl", "bpf", "perf_event_open"}
	script := "set -e; ls / | grep -qx bin; echo ls-ok; " +
		"wget -q -O - http://" + ln.Addr().String() + "/; " +
		"probe " + strings.Join(denied, " ") + " getpid"
	b := probeBundle(t, "sh", "-c", script)
	dropNamespace(b.Spec, specs.NetworkNamespace)

	run := func(id string, profile *specs.LinuxSeccomp) map[string]probeResult {
		t.Helper()
		b.Spec.Linux.Seccomp = profile
		b.Write(t)
		res := r.runBundle(b, id)
		if res.code != 0 {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", id, res.code, res.stdout, res.stderr)
		}
		if !strings.Contains(res.stdout, "ls-ok\n") || !strings.Contains(res.stdout, "hello-from-the-host\n") {
			t.Fatalf("%s: ls or wget did not work:\n%s\nstderr: %s", id, res.stdout, res.stderr)
		}
		return parseProbe(t, res.stdout, append(denied, "getpid")...)
	}

	got := run("sc-docker", dockerDefault(t, b))
	for _, c := range denied {
		if got[c].errno != unix.EPERM {
			t.Errorf("under Docker's profile %s: errno %d (%v), want EPERM", c, got[c].errno, got[c].errno)
		}
	}
	if got["getpid"].errno != 0 || got["getpid"].ret != 1 {
		t.Errorf("under Docker's profile getpid: %+v, want pid 1", got["getpid"])
	}

	// Without no_new_privs the init loads the filter while it still holds
	// CAP_SYS_ADMIN, before it drops privileges (runc's order): everything
	// it does afterwards runs under the profile.
	b.Spec.Process.NoNewPrivileges = false
	got = run("sc-docker-nonnp", dockerDefault(t, b))
	for _, c := range denied {
		if got[c].errno != unix.EPERM {
			t.Errorf("under Docker's profile without no_new_privs %s: errno %d (%v), want EPERM", c, got[c].errno, got[c].errno)
		}
	}
	b.Spec.Process.NoNewPrivileges = true

	got = run("sc-docker-control", nil)
	for _, c := range denied {
		if got[c].errno == unix.EPERM {
			t.Errorf("without a profile %s also gives EPERM: the test cannot tell the filter's answer from the kernel's", c)
		}
	}
}

// An SCMP_ACT_ERRNO rule returns its errnoRet in the container.
func TestSeccompErrnoRet(t *testing.T) {
	r := newRT(t)
	b := probeBundle(t, "probe", "mkdir:/tmp/sc-a", "getpid")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.ENOMSG)}}}
	b.Write(t)
	res := r.runBundle(b, "sc-errno")
	if res.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	got := parseProbe(t, res.stdout, "mkdir:/tmp/sc-a", "getpid")
	if g := got["mkdir:/tmp/sc-a"]; g.errno != unix.ENOMSG {
		t.Errorf("mkdir: errno %d (%v), want errnoRet %d (%v)", g.errno, g.errno, unix.ENOMSG, unix.ENOMSG)
	}
	if g := got["getpid"]; g.errno != 0 {
		t.Errorf("getpid: errno %v, want it allowed", g.errno)
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs(), "tmp", "sc-a")); !os.IsNotExist(err) {
		t.Errorf("the refused mkdir created the directory (%v)", err)
	}

	// busybox sees the same: its message is strerror of errnoRet.
	b.Spec.Process.Args = []string{"mkdir", "/tmp/sc-b"}
	b.Write(t)
	res = r.runBundle(b, "sc-errno-busybox")
	if res.code == 0 || !strings.Contains(res.stderr, "No message of desired type") {
		t.Errorf("busybox mkdir under the rule: exit %d, stderr %q; want ENOMSG's message", res.code, res.stderr)
	}
}

// A process started by `exec` gets the container's filter too.
func TestSeccompExec(t *testing.T) {
	r := newRT(t)
	b := probeBundle(t, "sleep", "1000")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.ENOMSG)}}}
	b.Write(t)
	r.ok("run", "-d", "--bundle", b.Dir, "sc-exec")
	out := r.ok("exec", "sc-exec", "probe", "mkdir:/tmp/sc-exec", "getpid")
	got := parseProbe(t, out, "mkdir:/tmp/sc-exec", "getpid")
	if g := got["mkdir:/tmp/sc-exec"]; g.errno != unix.ENOMSG {
		t.Errorf("mkdir in an exec'd process: errno %d (%v), want errnoRet %d (%v)", g.errno, g.errno, unix.ENOMSG, unix.ENOMSG)
	}
	if g := got["getpid"]; g.errno != 0 || g.ret <= 1 {
		t.Errorf("getpid in an exec'd process: %+v, want a pid > 1", g)
	}
	r.ok("delete", "--force", "sc-exec")
}

// A rule with an argument condition allows exactly the value it names:
// personality(PER_LINUX32) is allowed, every other persona is refused by
// the next, unconditional rule.
func TestSeccompArgCondition(t *testing.T) {
	r := newRT(t)
	calls := []string{"personality:0x8", "personality:0", "personality:0xffffffff", "personality:0x9", "personality:0x100000008"}
	b := probeBundle(t, append([]string{"probe"}, calls...)...)
	run := func(id string, profile *specs.LinuxSeccomp) map[string]probeResult {
		t.Helper()
		b.Spec.Linux.Seccomp = profile
		b.Write(t)
		res := r.runBundle(b, id)
		if res.code != 0 {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", id, res.code, res.stdout, res.stderr)
		}
		return parseProbe(t, res.stdout, calls...)
	}
	got := run("sc-args", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0x8}}},
		{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EXDEV)},
	}})
	for _, c := range calls {
		want := unix.EXDEV
		if c == "personality:0x8" {
			want = 0
		}
		if got[c].errno != want {
			t.Errorf("%s: errno %d (%v), want %d (%v)", c, got[c].errno, got[c].errno, want, want)
		}
	}
	// Control: unfiltered, every one of these personas is accepted.
	got = run("sc-args-control", nil)
	for _, c := range calls {
		if got[c].errno != 0 {
			t.Errorf("without a profile %s: errno %v, the test needs the kernel to accept it", c, got[c].errno)
		}
	}
}

// seccompNotif and seccompNotifResp are struct seccomp_notif and
// struct seccomp_notif_resp.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	data  [64]byte // struct seccomp_data: nr, arch, ip, args[6]
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// notifyAgent is a seccomp agent: it accepts one connection on ln, takes
// the container process state and the listener fd, and answers every
// notification until the container is gone.
type notifyAgent struct {
	state   specs.ContainerProcessState
	pids    []uint32 // the pid of each notification
	nrs     []uint32 // and its syscall number
	answers map[uint32]seccompNotifResp
}

func (a *notifyAgent) serve(ln *net.UnixListener) error {
	deadline := time.Now().Add(2 * time.Minute)
	if err := ln.SetDeadline(deadline); err != nil {
		return err
	}
	conn, err := ln.AcceptUnix()
	if err != nil {
		return fmt.Errorf("agent: accept: %w", err)
	}
	defer conn.Close()
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return fmt.Errorf("agent: read: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("agent: control messages: %v (%d)", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("agent: SCM_RIGHTS: %v (%d fds)", err, len(fds))
	}
	fd := fds[0]
	defer unix.Close(fd)
	if err := json.Unmarshal(buf[:n], &a.state); err != nil {
		return fmt.Errorf("agent: state %q: %w", buf[:n], err)
	}
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 200); err != nil && err != unix.EINTR {
			return fmt.Errorf("agent: poll: %w", err)
		}
		switch {
		case pfd[0].Revents&unix.POLLIN != 0:
			var req seccompNotif
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
				if e == unix.ENOENT || e == unix.EINTR {
					continue // the caller went away before we read it
				}
				return fmt.Errorf("agent: NOTIF_RECV: %w", e)
			}
			nr := binary.LittleEndian.Uint32(req.data[0:])
			a.pids, a.nrs = append(a.pids, req.pid), append(a.nrs, nr)
			resp, ok := a.answers[nr]
			if !ok {
				resp = seccompNotifResp{error: -int32(unix.ENOTSUP)}
			}
			resp.id = req.id
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 && e != unix.ENOENT {
				return fmt.Errorf("agent: NOTIF_SEND: %w", e)
			}
		case pfd[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0:
			return nil // no process uses the filter any more
		case time.Now().After(deadline):
			return errors.New("agent: the container still runs after 2 minutes")
		}
	}
}

// SCMP_ACT_NOTIFY: the runtime hands the listener fd and the container
// process state to the agent at listenerPath; the agent's answers are what
// the container's syscalls return.
//
// listenerPath names a socket on the host (runtime-spec; runc and crun
// connect to it from the runtime process): "host path" has the socket only
// there. "also in the container" bind-mounts the socket's directory at the
// same path inside the container, which a runtime that connects from the
// container's mount namespace needs too. Without no_new_privs the init
// loads the filter before it drops its privileges, i.e. during create.
func TestSeccompNotify(t *testing.T) {
	t.Run("host path", func(t *testing.T) { testSeccompNotify(t, "sc-notify", false, true) })
	t.Run("also in the container", func(t *testing.T) { testSeccompNotify(t, "sc-notify-bind", true, true) })
	t.Run("also in the container without no_new_privs", func(t *testing.T) { testSeccompNotify(t, "sc-notify-nonnp", true, false) })
}

func testSeccompNotify(t *testing.T, id string, bindIntoContainer, noNewPrivs bool) {
	r := newRT(t)
	b := probeBundle(t, "probe", "getppid", "mkdir:/tmp/sc-notified", "getpid")
	b.Spec.Process.NoNewPrivileges = noNewPrivs
	sockDir := t.TempDir()
	sock := filepath.Join(sockDir, "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if bindIntoContainer {
		b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: sockDir, Type: "bind", Source: sockDir, Options: []string{"bind"}})
	}
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "sc-meta",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid", "mkdir"}, Action: specs.ActNotify}},
	}
	b.Write(t)
	const fake = 4242
	a := &notifyAgent{answers: map[uint32]seccompNotifResp{
		unix.SYS_GETPPID: {val: fake},
		unix.SYS_MKDIR:   {error: -int32(unix.EXDEV)},
	}}
	agentErr := make(chan error, 1)
	go func() { agentErr <- a.serve(ln) }()

	res := r.runBundle(b, id)
	// The container is gone: an agent still waiting for a connection
	// never gets one, and one that got it sees POLLHUP.
	ln.Close()
	if err := <-agentErr; err != nil {
		t.Fatalf("%v (did the runtime connect to listenerPath %s?)\nrun: exit %d\nstdout: %s\nstderr: %s", err, sock, res.code, res.stdout, res.stderr)
	}
	if res.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	got := parseProbe(t, res.stdout, "getppid", "mkdir:/tmp/sc-notified", "getpid")
	if g := got["getppid"]; g.errno != 0 || g.ret != fake {
		t.Errorf("getppid: %+v, want the agent's %d", g, fake)
	}
	if g := got["mkdir:/tmp/sc-notified"]; g.errno != unix.EXDEV {
		t.Errorf("mkdir: errno %d (%v), want the agent's EXDEV", g.errno, g.errno)
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs(), "tmp", "sc-notified")); !os.IsNotExist(err) {
		t.Errorf("mkdir ran although the agent answered it (%v)", err)
	}
	if g := got["getpid"]; g.errno != 0 || g.ret != 1 {
		t.Errorf("getpid: %+v, want 1 (not notified)", g)
	}

	st := a.state
	if st.Version == "" || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName || st.Metadata != "sc-meta" {
		t.Errorf("agent got state %+v; want fds [%s] and metadata sc-meta", st, specs.SeccompFdName)
	}
	if st.State.ID != id || st.State.Bundle != b.Dir || st.State.Pid <= 0 || st.Pid <= 0 {
		t.Errorf("agent got container state %+v; want id %s, bundle %s and pids", st.State, id, b.Dir)
	}
	if len(a.nrs) != 2 || a.nrs[0] != unix.SYS_GETPPID || a.nrs[1] != unix.SYS_MKDIR {
		t.Errorf("agent saw syscalls %v, want getppid (%d) then mkdir (%d)", a.nrs, unix.SYS_GETPPID, unix.SYS_MKDIR)
	}
	for _, pid := range a.pids {
		if int(pid) != st.Pid {
			t.Errorf("notification from pid %d, but the state the runtime sent says pid %d", pid, st.Pid)
		}
	}
}

// A 32-bit program's int $0x80 syscalls are filtered by the i386 section
// when the profile lists SCMP_ARCH_X86, and kill the process when it does
// not.
func TestSeccompInt80(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "/int80")
	src := filepath.Join(testutil.RepoRoot(), "runtime", "seccomp", "testdata", "int80.c")
	if out, err := exec.Command("gcc", "-m32", "-static", "-nostdlib", "-fno-pic", "-O1", "-o", filepath.Join(b.Rootfs(), "int80"), src).CombinedOutput(); err != nil {
		t.Skipf("cannot build a 32-bit program (gcc -m32): %v\n%s", err, out)
	}
	rule := []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EXDEV)}}
	run := func(id string, profile *specs.LinuxSeccomp) result {
		t.Helper()
		b.Spec.Linux.Seccomp = profile
		b.Write(t)
		return r.runBundle(b, id)
	}
	both := []specs.Arch{specs.ArchX86_64, specs.ArchX86}
	if res := run("sc-int80-control", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: both}); res.code != 0 {
		if res.code == 128+int(unix.SIGSEGV) || res.code == 128+int(unix.SIGKILL) {
			t.Skipf("32-bit program ended with %d: no IA32 emulation?", res.code)
		}
		t.Fatalf("unfiltered int80: exit %d\nstderr: %s", res.code, res.stderr)
	}
	if res := run("sc-int80", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: both, Syscalls: rule}); res.code != int(unix.EXDEV) {
		t.Errorf("int80 with the i386 rule: exit %d, want %d (EXDEV)\nstderr: %s", res.code, unix.EXDEV, res.stderr)
	}
	if res := run("sc-int80-noarch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rule}); res.code != 128+int(unix.SIGSYS) {
		t.Errorf("int80 without SCMP_ARCH_X86: exit %d, want %d (SIGSYS)\nstderr: %s", res.code, 128+int(unix.SIGSYS), res.stderr)
	}
}

// A profile the runtime cannot compile fails `create` with an error naming
// the field, and leaves nothing behind (newRT's leak check); an unknown
// syscall name is only a warning.
func TestSeccompBadInput(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "true")
	for i, c := range []struct {
		profile specs.LinuxSeccomp
		want    string
	}{
		{specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, `defaultAction: unknown action`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno},
			{Names: []string{"mkdir"}, Action: "SCMP_ACT_BOGUS"}}}, `syscalls[1].action: unknown action`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, "SCMP_ARCH_BOGUS"}},
			`architectures[1]: unknown architecture`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 1, Op: "SCMP_CMP_BOGUS", Value: 1}}}}},
			`syscalls[0].args[1].op: unknown operator`},
	} {
		p := c.profile
		b.Spec.Linux.Seccomp = &p
		b.Write(t)
		id := "sc-bad-" + strconv.Itoa(i)
		r.fails(c.want, "create", "--bundle", b.Dir, id)
		// The message names the bad value too (quoted as the log format
		// quotes it).
		if res := r.run("create", "--bundle", b.Dir, id); !strings.Contains(res.stderr, "_BOGUS") {
			t.Errorf("%s: error %q does not name the bad value", id, res.stderr)
		}
		if res := r.run("state", id); res.code == 0 {
			t.Errorf("%s: the failed create left a container: %s", id, res.stdout)
		}
	}
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"capsa_no_such_call", "mkdir"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EXDEV)}}}
	b.Spec.Process.Args = []string{"mkdir", "/tmp/sc-warn"}
	b.Write(t)
	res := r.run("create", "--bundle", b.Dir, "sc-warn-create")
	if res.code != 0 || !strings.Contains(res.stderr, "unknown syscall") || !strings.Contains(res.stderr, "capsa_no_such_call") {
		t.Errorf("create with an unknown syscall name: exit %d, stderr %q; want success and a warning naming it", res.code, res.stderr)
	}
	if res.code == 0 {
		if st := r.state("sc-warn-create"); st.Status != "created" {
			t.Errorf("state after create: %s, want created", st.Status)
		}
		r.ok("delete", "--force", "sc-warn-create")
	}
	res = r.runBundle(b, "sc-warn")
	if !strings.Contains(res.stderr, "unknown syscall") || !strings.Contains(res.stderr, "capsa_no_such_call") {
		t.Errorf("no warning about the unknown syscall in stderr %q", res.stderr)
	}
	// The rest of the rule still applies.
	if res.code == 0 || !strings.Contains(res.stderr, "Invalid cross-device link") {
		t.Errorf("mkdir under the rule with an unknown name: exit %d, stderr %q; want EXDEV", res.code, res.stderr)
	}
}
