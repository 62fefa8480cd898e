package seccomp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/capsa-project/capsa/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests re-execute the test binary as a child that loads a
// filter and reports what its syscalls return: a filter cannot be taken
// off again, so it must not land in the test process.
const (
	childEnv   = "CAPSA_SECCOMP_CHILD"   // what the child does after Load
	profileEnv = "CAPSA_SECCOMP_PROFILE" // linux.seccomp as JSON
)

// TestMain serves the re-executed children. It does not take
// testutil.Main's host-wide lock: these tests start no container and
// leave no mount, cgroup or orphan that another package could see, and
// fuzz workers (the same binary) would block on the lock their
// coordinator holds.
func TestMain(m *testing.M) {
	if what := os.Getenv(childEnv); what != "" {
		os.Exit(childMain(what))
	}
	os.Exit(m.Run())
}

// childMain loads the profile, then runs the calls named in what (comma
// separated) and prints "call errno" lines, or execs "exec:PATH".
func childMain(what string) int {
	runtime.LockOSThread()
	var s specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(profileEnv)), &s); err != nil {
		fmt.Fprintln(os.Stderr, "child: profile:", err)
		return 2
	}
	f, err := Compile(&s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if what == "nocaps" {
		// Neither no_new_privs nor CAP_SYS_ADMIN: the kernel must refuse.
		// capset changes the calling (locked) thread only.
		var data [2]unix.CapUserData
		if err := unix.Capset(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &data[0]); err != nil {
			fmt.Fprintln(os.Stderr, "child: capset:", err)
			return 2
		}
		_, err := f.Load()
		refused := 1
		if errors.Is(err, unix.EACCES) {
			refused = 0
		}
		fmt.Printf("load %d %v\n", refused, err)
		return 0
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "child: no_new_privs:", err)
		return 2
	}
	var argv0 *byte
	if path, ok := strings.CutPrefix(what, "exec:"); ok {
		// Prepared before Load: nothing but execve runs after it.
		argv0, _ = unix.BytePtrFromString(path)
	}
	fd, err := f.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if argv0 != nil {
		argv := []*byte{argv0, nil}
		envv := []*byte{nil}
		_, _, errno := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(argv0)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
		fmt.Fprintln(os.Stderr, "child: execve:", errno)
		return 2
	}
	if fd >= 0 {
		st := specs.ContainerProcessState{Pid: os.Getpid(), Metadata: s.ListenerMetadata,
			State: specs.State{Version: specs.Version, ID: "test", Status: specs.StateCreating, Pid: os.Getpid()}}
		if err := SendListenerFd(s.ListenerPath, fd, st); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
		unix.Close(fd)
	}
	for _, call := range strings.Split(what, ",") {
		r, errno := childCall(call)
		fmt.Printf("%s %d %d\n", call, int(errno), r)
	}
	return 0
}

// childCall makes one syscall by a short name. Arguments are chosen so
// that the kernel itself would answer something else than the filter's
// EPERM (a missing path, a NULL attr, ...).
func childCall(call string) (uintptr, unix.Errno) {
	raw := func(nr uintptr, a ...uintptr) (uintptr, unix.Errno) {
		var args [6]uintptr
		copy(args[:], a)
		r, _, e := unix.RawSyscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5])
		return r, e
	}
	str := func(s string) uintptr {
		p, _ := unix.BytePtrFromString(s)
		return uintptr(unsafe.Pointer(p))
	}
	if v, ok := strings.CutPrefix(call, "personality:"); ok {
		n, _ := strconv.ParseUint(v, 0, 64)
		return raw(unix.SYS_PERSONALITY, uintptr(n))
	}
	if v, ok := strings.CutPrefix(call, "nr:"); ok {
		n, _ := strconv.ParseUint(v, 0, 64)
		return raw(uintptr(n))
	}
	atFdcwd, sessionKeyring := unix.AT_FDCWD, -3 // KEY_SPEC_SESSION_KEYRING
	buf := make([]byte, 256)
	switch call {
	case "getcwd":
		return raw(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	case "getpid":
		return raw(unix.SYS_GETPID)
	case "getppid":
		return raw(unix.SYS_GETPPID)
	case "open", "read":
		fd, e := raw(unix.SYS_OPEN, str("/proc/self/stat"), unix.O_RDONLY)
		if e != 0 || call == "open" {
			return fd, e
		}
		defer unix.Close(int(fd))
		return raw(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	case "openat":
		return raw(unix.SYS_OPENAT, uintptr(atFdcwd), str("/proc/self/stat"), unix.O_RDONLY)
	case "unshare":
		return raw(unix.SYS_UNSHARE, unix.CLONE_NEWUTS)
	case "mount":
		return raw(unix.SYS_MOUNT, str("none"), str("/nonexistent/capsa"), str("tmpfs"), 0, 0)
	case "keyctl":
		return raw(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(sessionKeyring), 0)
	case "bpf":
		return raw(unix.SYS_BPF, unix.BPF_PROG_LOAD, 0, 0)
	case "perf_event_open":
		return raw(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0)
	case "clone3":
		return raw(unix.SYS_CLONE3, 0, 0)
	}
	return 0, unix.EINVAL
}

// runChild runs the child with profile s and returns errno by call.
func runChild(t *testing.T, s *specs.LinuxSeccomp, calls ...string) (errnos map[string]unix.Errno, rets map[string]uintptr) {
	t.Helper()
	out, err := childCmd(t, s, strings.Join(calls, ",")).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("child: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("child: %v", err)
	}
	errnos, rets = map[string]unix.Errno{}, map[string]uintptr{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var name string
		var e int
		var r uintptr
		if _, err := fmt.Sscanf(sc.Text(), "%s %d %d", &name, &e, &r); err != nil {
			t.Fatalf("child output %q: %v", sc.Text(), err)
		}
		errnos[name], rets[name] = unix.Errno(e), r
	}
	if len(errnos) != len(calls) {
		t.Fatalf("child reported %d calls, want %d:\n%s", len(errnos), len(calls), out)
	}
	return errnos, rets
}

func childCmd(t *testing.T, s *specs.LinuxSeccomp, what string) *exec.Cmd {
	t.Helper()
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+what, profileEnv+"="+string(js))
	return cmd
}

func requireSeccomp(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.CheckLeaks(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("syscall tables exist for amd64 only")
	}
}

func checkErrnos(t *testing.T, got map[string]unix.Errno, want map[string]unix.Errno) {
	t.Helper()
	for call, w := range want {
		if g, ok := got[call]; !ok || g != w {
			t.Errorf("%s: errno %d (%v), want %d (%v)", call, g, g, w, w)
		}
	}
}

func TestKernelErrnoRule(t *testing.T) {
	requireSeccomp(t)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}}}
	got, _ := runChild(t, s, "getcwd", "getpid")
	checkErrnos(t, got, map[string]unix.Errno{"getcwd": unix.EXDEV, "getpid": 0})
	// Control: without the rule getcwd works.
	got, _ = runChild(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, "getcwd")
	checkErrnos(t, got, map[string]unix.Errno{"getcwd": 0})
}

func TestKernelPersonalityCondition(t *testing.T) {
	requireSeccomp(t)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xffffffff}}},
		{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EACCES))},
	}}
	calls := []string{"personality:0xffffffff", "personality:0", "personality:0x8", "personality:0x1ffffffff", "personality:0xfffffffe"}
	got, _ := runChild(t, s, calls...)
	checkErrnos(t, got, map[string]unix.Errno{"personality:0xffffffff": 0, "personality:0": unix.EACCES,
		"personality:0x8": unix.EACCES, "personality:0x1ffffffff": unix.EACCES, "personality:0xfffffffe": unix.EACCES})
	got, _ = runChild(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, "personality:0xffffffff", "personality:0")
	checkErrnos(t, got, map[string]unix.Errno{"personality:0xffffffff": 0, "personality:0": 0})
}

func TestKernelDockerDefault(t *testing.T) {
	requireSeccomp(t)
	s := dockerProfile(t, dockerCaps)
	denied := []string{"unshare", "mount", "keyctl", "bpf", "perf_event_open"}
	allowed := []string{"getpid", "open", "openat", "read"}
	calls := append(append(append([]string{}, denied...), allowed...), "nr:1000", "clone3")
	got, _ := runChild(t, s, calls...)
	want := map[string]unix.Errno{"nr:1000": unix.ENOSYS, "clone3": unix.ENOSYS}
	for _, c := range denied {
		want[c] = unix.EPERM
	}
	for _, c := range allowed {
		want[c] = 0
	}
	checkErrnos(t, got, want)

	// Control: unfiltered, the kernel answers the denied calls otherwise,
	// so the EPERMs above are the filter's.
	got, _ = runChild(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, calls...)
	for _, c := range append(denied, "clone3") {
		if got[c] == unix.EPERM || got[c] == unix.ENOSYS {
			t.Errorf("unfiltered %s: errno %v, the test cannot tell it from the filter", c, got[c])
		}
	}
}

// TestKernelLoadNeedsNNP checks Load's contract: without no_new_privs
// and without CAP_SYS_ADMIN the kernel refuses the filter, and the error
// says what to do.
func TestKernelLoadNeedsNNP(t *testing.T) {
	requireSeccomp(t)
	out, err := childCmd(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, "nocaps").Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.HasPrefix(string(out), "load 0 ") || !strings.Contains(string(out), "no_new_privs") {
		t.Fatalf("Load without NNP and CAP_SYS_ADMIN: %q, want EACCES naming no_new_privs", out)
	}
}

// TestKernelInt80 runs a 32-bit static program that calls getppid through
// int $0x80: the kernel reports AUDIT_ARCH_I386 and the i386 number.
func TestKernelInt80(t *testing.T) {
	requireSeccomp(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "int80")
	src, err := filepath.Abs("testdata/int80.c")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-m32", "-static", "-nostdlib", "-fno-pic", "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("cannot build a 32-bit program (gcc -m32): %v\n%s", err, out)
	}
	run := func(s *specs.LinuxSeccomp) *os.ProcessState {
		t.Helper()
		cmd := childCmd(t, s, "exec:"+bin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err != nil && !errors.As(err, new(*exec.ExitError)) {
			t.Fatalf("child: %v", err)
		}
		if cmd.ProcessState.ExitCode() == 2 {
			t.Fatalf("child failed: %s", stderr.String())
		}
		return cmd.ProcessState
	}
	rule := []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}}

	// No filter on getppid: the program exits 0, i.e. i386 emulation works.
	st := run(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86}})
	if st.ExitCode() != 0 {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Skipf("32-bit program killed by %v: the kernel lacks IA32 emulation", ws.Signal())
		}
		t.Fatalf("unfiltered int80 exited %d", st.ExitCode())
	}
	// i386 in the filter: the rule applies to the i386 number.
	st = run(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86}, Syscalls: rule})
	if st.ExitCode() != int(unix.EXDEV) {
		t.Fatalf("filtered int80 exited %d (%v), want %d", st.ExitCode(), st, unix.EXDEV)
	}
	// i386 not in the filter: any 32-bit syscall kills the process.
	st = run(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rule})
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("int80 without the x86 arch: %v, want killed by SIGSYS", st)
	}
}

// seccompNotif and seccompNotifResp are struct seccomp_notif and
// seccomp_notif_resp.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	data  [64]byte
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// TestKernelNotify has the child send its listener fd to an agent in the
// test, which answers getppid with a made-up value.
func TestKernelNotify(t *testing.T) {
	requireSeccomp(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const fake = 4242
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "meta-1",
		Flags:    []specs.LinuxSeccompFlag{flagTSYNC, specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}}

	agentErr := make(chan error, 1)
	go func() { agentErr <- agent(ln, fake) }()
	_, rets := runChild(t, s, "getppid", "getpid")
	if rets["getppid"] != fake {
		t.Errorf("getppid returned %d, want the agent's %d", rets["getppid"], fake)
	}
	if err := <-agentErr; err != nil {
		t.Fatal(err)
	}
}

// agent accepts one container, checks the state it sends, and answers
// its first notification with val.
func agent(ln *net.UnixListener, val int64) error {
	if err := ln.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return err
	}
	conn, err := ln.AcceptUnix()
	if err != nil {
		return fmt.Errorf("agent: accept: %w", err)
	}
	defer conn.Close()
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
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
		return fmt.Errorf("agent: rights: %v (%d)", err, len(fds))
	}
	fd := fds[0]
	defer unix.Close(fd)
	var st specs.ContainerProcessState
	if err := json.Unmarshal(buf[:n], &st); err != nil {
		return fmt.Errorf("agent: state %q: %w", buf[:n], err)
	}
	if st.Version != specs.Version || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName || st.Pid <= 0 || st.Metadata != "meta-1" || st.State.ID != "test" {
		return fmt.Errorf("agent: unexpected state %s", buf[:n])
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 200); err != nil && err != unix.EINTR {
			return fmt.Errorf("agent: poll: %w", err)
		}
		if pfd[0].Revents&unix.POLLIN != 0 {
			break
		}
		if pfd[0].Revents&unix.POLLHUP != 0 {
			return errors.New("agent: the container went away without a notification")
		}
		if time.Now().After(deadline) {
			return errors.New("agent: no notification")
		}
	}
	var req seccompNotif
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
		return fmt.Errorf("agent: NOTIF_RECV: %w", e)
	}
	if nr := binary.LittleEndian.Uint32(req.data[0:]); nr != unix.SYS_GETPPID {
		return fmt.Errorf("agent: notified of syscall %d, want getppid", nr)
	}
	if int(req.pid) != st.Pid {
		return fmt.Errorf("agent: notification from pid %d, state says %d", req.pid, st.Pid)
	}
	resp := seccompNotifResp{id: req.id, val: val}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 {
		return fmt.Errorf("agent: NOTIF_SEND: %w", e)
	}
	return nil
}
