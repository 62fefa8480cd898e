//go:build cgo && linux

package nsenter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary imports this package, so it carries the constructor: the
// tests re-execute it with the constructor's variables, and TestMain turns
// the child into a helper that reports where it ended up.

const (
	envHelper   = "NSENTER_TEST_HELPER"
	envHelperFd = "NSENTER_TEST_STATUS_FD"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envHelper) {
	case "hold":
		// Holds a user namespace open until the test closes our stdin.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "hold-time":
		// Also holds a time namespace, as its time_for_children: unshare
		// of a time namespace does not need a single-threaded process,
		// only joining one does.
		if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
			fmt.Fprintln(os.Stderr, "unshare time namespace:", err)
			os.Exit(3)
		}
		if err := os.WriteFile("/proc/self/timens_offsets", []byte("boottime 7200 0\n"), 0); err != nil {
			fmt.Fprintln(os.Stderr, "time offsets:", err)
			os.Exit(3)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "report":
		if err := json.NewEncoder(os.Stdout).Encode(makeReport()); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	// The process that goes on after a CLONE_NEWPID fork is a grandchild:
	// as a subreaper the test gets it back when its parent exits, and can
	// reap it, so no process outlives the test.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "set child subreaper:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// report is what the helper saw after the constructor ran.
type report struct {
	Pid, UID, GID int
	CapEff        uint64
	NS            map[string]string // /proc/self/ns links
	Owner         map[string]string // the user namespace owning each
	LeftoverEnv   []string
	StatusFdLink  string // what the status fd's number names now
	Dumpable      int
	OOMScoreAdj   string
	TimeOffsets   string
}

var nsNames = []string{"user", "mnt", "uts", "ipc", "net", "cgroup", "pid", "time"}

func makeReport() report {
	r := report{Pid: os.Getpid(), UID: os.Getuid(), GID: os.Getgid(), NS: map[string]string{}, Owner: map[string]string{}}
	for _, n := range nsNames {
		r.NS[n], _ = os.Readlink("/proc/self/ns/" + n)
		if n != "user" {
			r.Owner[n] = ownerOf("/proc/self/ns/" + n)
		}
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			r.CapEff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "_CAPSA_NSENTER") {
			r.LeftoverEnv = append(r.LeftoverEnv, e)
		}
	}
	// The number may have been reused (the Go runtime opens fds of its own),
	// so the parent compares what it names with the status pipe.
	r.StatusFdLink, _ = os.Readlink("/proc/self/fd/" + os.Getenv(envHelperFd))
	r.Dumpable, _ = unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	b, _ := os.ReadFile("/proc/self/oom_score_adj")
	r.OOMScoreAdj = strings.TrimSpace(string(b))
	b, _ = os.ReadFile("/proc/self/timens_offsets")
	r.TimeOffsets = string(b)
	return r
}

// ownerOf names the user namespace that owns a namespace, as user:[INODE].
func ownerOf(path string) string {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "open: " + err.Error()
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		return "NS_GET_USERNS: " + err.Error()
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		return "fstat: " + err.Error()
	}
	return fmt.Sprintf("user:[%d]", st.Ino)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// holdUserNS starts a helper in a new user namespace with the given
// mappings and returns the path of that namespace; the helper is stopped
// when the test ends.
func holdUserNS(t *testing.T, uidMap, gidMap []syscall.SysProcIDMap) string {
	t.Helper()
	path, _ := hold(t, "hold", uidMap, gidMap)
	return path
}

// hold starts a namespace-holding helper in the given mode and returns
// the path of its user namespace and its pid.
func hold(t *testing.T, mode string, uidMap, gidMap []syscall.SysProcIDMap) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{envHelper + "=" + mode}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: uidMap, GidMappings: gidMap,
	}
	var stdout io.ReadCloser
	if mode != "hold" {
		// Root of its namespace through the exec, to keep the capabilities
		// that creating a time namespace needs.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
		if stdout, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start user namespace holder: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill() // it may be gone already
		_ = cmd.Wait()
	})
	if stdout != nil {
		line := make([]byte, 6)
		if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
			t.Fatalf("holder %s not ready: %q %v", mode, line, err)
		}
	}
	return "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user", cmd.Process.Pid
}

// containerMaps maps the namespace's 0..65535 to the host's 100000.., the
// usual container layout, in which the host's root is not mapped.
var containerMaps = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}

// result is how one run of the helper through the constructor went.
type result struct {
	childPid int    // the pid os/exec started
	pid      int    // the pid Status.Wait returned
	waitErr  error  // Status.Wait's error
	exitErr  error  // the started child's exit
	out      []byte // the report, if the helper got that far
	pipeLink string // the status pipe, as /proc/PID/fd names it
	stderr   string
	rep      report
}

// runHelper runs the test binary as a reporting helper with c's variables
// and reaps every process it made.
func runHelper(t *testing.T, c Config) result {
	t.Helper()
	st, err := NewStatus()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pipeLink, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", st.ChildEnd().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	c.StatusFd = 3
	env, err := Env(c)
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{envHelper + "=report", envHelperFd + "=3"}, env...)
	cmd.ExtraFiles = []*os.File{st.ChildEnd()}
	cmd.Stdout = outW
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		outW.Close()
		t.Fatal(err)
	}
	outW.Close()
	r := result{pipeLink: pipeLink}
	r.childPid = cmd.Process.Pid
	r.pid, r.waitErr = st.Wait(r.childPid)
	r.exitErr = cmd.Wait()
	r.out, _ = io.ReadAll(outR)
	if r.waitErr == nil && r.pid != r.childPid {
		// The grandchild is ours now that its parent is gone (subreaper).
		var ws unix.WaitStatus
		if _, err := unix.Wait4(r.pid, &ws, 0, nil); err != nil {
			t.Errorf("wait for the grandchild %d: %v", r.pid, err)
		} else if !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("grandchild %d: wait status %#x", r.pid, ws)
		}
	}
	r.stderr = stderr.String()
	if len(r.out) > 0 {
		if err := json.Unmarshal(r.out, &r.rep); err != nil {
			t.Fatalf("report %q: %v", r.out, err)
		}
	}
	return r
}

// mustSucceed fails the test unless the helper joined and reported.
func mustSucceed(t *testing.T, r result) report {
	t.Helper()
	if r.waitErr != nil || r.exitErr != nil || len(r.out) == 0 {
		t.Fatalf("helper failed: status %v, exit %v, stderr %q, out %q", r.waitErr, r.exitErr, r.stderr, r.out)
	}
	rep := r.rep
	if len(rep.LeftoverEnv) > 0 {
		t.Errorf("variables left in the environment: %q", rep.LeftoverEnv)
	}
	if rep.StatusFdLink == r.pipeLink {
		t.Errorf("the status fd (%s) is still open in the process that went on", r.pipeLink)
	}
	return rep
}

func selfNS(t *testing.T, name string) string {
	t.Helper()
	l, err := os.Readlink("/proc/self/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const capSysAdmin = 21

func TestJoinUserNS(t *testing.T) {
	needRoot(t)
	path := holdUserNS(t, containerMaps, containerMaps)
	want, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	r := runHelper(t, Config{UserNS: path})
	rep := mustSucceed(t, r)
	t.Logf("report: %+v", rep)
	if r.pid != r.childPid {
		t.Errorf("Wait returned pid %d, want the child's %d", r.pid, r.childPid)
	}
	if rep.NS["user"] != want {
		t.Errorf("user namespace %s, want %s", rep.NS["user"], want)
	}
	if rep.UID != 0 || rep.GID != 0 {
		t.Errorf("uid %d gid %d in the namespace, want 0 0", rep.UID, rep.GID)
	}
	if rep.CapEff&(1<<capSysAdmin) == 0 {
		t.Errorf("CapEff %#x lacks CAP_SYS_ADMIN", rep.CapEff)
	}
	if rep.Dumpable != 0 {
		t.Errorf("dumpable %d, want 0 (the container's root must not ptrace it)", rep.Dumpable)
	}
	// Nothing else was asked: the other namespaces are the parent's.
	for _, n := range []string{"mnt", "net", "pid", "uts", "ipc"} {
		if rep.NS[n] != selfNS(t, n) {
			t.Errorf("%s namespace %s, want the parent's %s", n, rep.NS[n], selfNS(t, n))
		}
	}
}

func TestJoinUserNSAndUnshare(t *testing.T) {
	needRoot(t)
	path := holdUserNS(t, containerMaps, containerMaps)
	userNS, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	flags := unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
	oom := 321
	r := runHelper(t, Config{UserNS: path, Unshare: flags, OOMScoreAdj: &oom})
	rep := mustSucceed(t, r)
	if rep.NS["user"] != userNS {
		t.Errorf("user namespace %s, want %s", rep.NS["user"], userNS)
	}
	for _, n := range []string{"mnt", "uts", "ipc", "net", "cgroup"} {
		if rep.NS[n] == selfNS(t, n) {
			t.Errorf("%s namespace is still the parent's %s", n, rep.NS[n])
		}
		// Created after joining, so owned by the joined namespace: the
		// container's root can administer them.
		if rep.Owner[n] != userNS {
			t.Errorf("%s namespace owned by %s, want %s", n, rep.Owner[n], userNS)
		}
	}
	if rep.NS["pid"] != selfNS(t, "pid") {
		t.Errorf("pid namespace changed without CLONE_NEWPID")
	}
	if rep.OOMScoreAdj != "321" {
		t.Errorf("oom_score_adj %q, want 321", rep.OOMScoreAdj)
	}
}

func TestJoinUserNSNewPID(t *testing.T) {
	needRoot(t)
	path := holdUserNS(t, containerMaps, containerMaps)
	userNS, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	flags := unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWTIME
	r := runHelper(t, Config{UserNS: path, Unshare: flags, TimeOffsets: "monotonic 86400 0\n"})
	rep := mustSucceed(t, r)
	if r.pid == r.childPid {
		t.Fatalf("Wait returned the started child's pid %d, want the grandchild's", r.pid)
	}
	if rep.Pid != 1 {
		t.Errorf("pid in the new namespace %d, want 1", rep.Pid)
	}
	for _, n := range []string{"pid", "time", "mnt"} {
		if rep.NS[n] == selfNS(t, n) {
			t.Errorf("%s namespace is still the parent's", n)
		}
		if rep.Owner[n] != userNS {
			t.Errorf("%s namespace owned by %s, want %s", n, rep.Owner[n], userNS)
		}
	}
	if !strings.Contains(rep.TimeOffsets, "monotonic") || !strings.Contains(rep.TimeOffsets, "86400") {
		t.Errorf("time offsets %q, want monotonic 86400", rep.TimeOffsets)
	}
	if rep.UID != 0 || rep.CapEff&(1<<capSysAdmin) == 0 {
		t.Errorf("uid %d CapEff %#x, want root with CAP_SYS_ADMIN", rep.UID, rep.CapEff)
	}
}

// Joining the namespace one is in is a no-op, not the kernel's EINVAL.
func TestJoinOwnUserNS(t *testing.T) {
	needRoot(t)
	r := runHelper(t, Config{UserNS: "/proc/self/ns/user"})
	rep := mustSucceed(t, r)
	if rep.NS["user"] != selfNS(t, "user") {
		t.Errorf("user namespace %s, want ours %s", rep.NS["user"], selfNS(t, "user"))
	}
}

func TestJoinErrors(t *testing.T) {
	needRoot(t)
	noRoot := holdUserNS(t,
		[]syscall.SysProcIDMap{{ContainerID: 1000, HostID: 101000, Size: 1}},
		[]syscall.SysProcIDMap{{ContainerID: 1000, HostID: 101000, Size: 1}})
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"not a user namespace", Config{UserNS: "/proc/self/ns/net"}, "/proc/self/ns/net is not a user namespace"},
		{"not a namespace", Config{UserNS: "/proc/self/status"}, "/proc/self/status is not a namespace"},
		{"missing", Config{UserNS: "/nonexistent/ns"}, "open user namespace /nonexistent/ns: No such file or directory"},
		{"not a time namespace", Config{TimeNS: "/proc/self/ns/user"}, "/proc/self/ns/user is not a time namespace"},
		{"root unmapped", Config{UserNS: noRoot}, "0 is not mapped there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runHelper(t, tc.c)
			t.Logf("error: %v", r.waitErr)
			if r.waitErr == nil || !strings.Contains(r.waitErr.Error(), tc.want) {
				t.Errorf("status error %v, want %q", r.waitErr, tc.want)
			}
			var ee *exec.ExitError
			if !errors.As(r.exitErr, &ee) || ee.ExitCode() != 1 {
				t.Errorf("child exit %v, want status 1", r.exitErr)
			}
			if len(r.out) != 0 {
				t.Errorf("the Go program ran after a failed join: %q", r.out)
			}
		})
	}
}

// Without the status fd variable the constructor cannot report to the
// parent: it says so on stderr and exits.
func TestMissingStatusFd(t *testing.T) {
	needRoot(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{envHelper + "=report", envUserNS + "=/proc/self/ns/user"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1 (output %q)", err, out)
	}
	if !strings.Contains(string(out), "capsa-runtime nsenter: _CAPSA_NSENTER_* variables are set but "+envFd+" is not") {
		t.Errorf("output %q", out)
	}
}

// Lowering oom_score_adj needs CAP_SYS_RESOURCE on the host; without it the
// value is clamped to the current one, as the runtime does in Go.
func TestOOMScoreAdjLowered(t *testing.T) {
	needRoot(t)
	path := holdUserNS(t, containerMaps, containerMaps)
	cur, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	want := "-500"
	if capEff(t)&(1<<capSysResource) == 0 {
		want = strings.TrimSpace(string(cur))
	}
	oom := -500
	rep := mustSucceed(t, runHelper(t, Config{UserNS: path, OOMScoreAdj: &oom}))
	if rep.OOMScoreAdj != want {
		t.Errorf("oom_score_adj %q, want %q", rep.OOMScoreAdj, want)
	}
}

const capSysResource = 24

func capEff(t *testing.T) uint64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			c, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return 0
}

// Joining a time namespace needs a single-threaded process too (EUSERS).
func TestJoinTimeNS(t *testing.T) {
	needRoot(t)
	// The host's root is the namespace's: the holder must reach the test
	// binary in its private 0700 directory.
	rootMap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	userPath, pid := hold(t, "hold-time", rootMap, rootMap)
	timePath := "/proc/" + strconv.Itoa(pid) + "/ns/time_for_children"
	userNS, err := os.Readlink(userPath)
	if err != nil {
		t.Fatal(err)
	}
	timeNS, err := os.Readlink(timePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    Config
		user string
	}{
		{"with the user namespace", Config{UserNS: userPath, TimeNS: timePath}, userNS},
		{"alone", Config{TimeNS: timePath}, selfNS(t, "user")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := mustSucceed(t, runHelper(t, tc.c))
			if rep.NS["time"] != timeNS || rep.NS["user"] != tc.user {
				t.Errorf("time %s user %s, want %s %s", rep.NS["time"], rep.NS["user"], timeNS, tc.user)
			}
			if !strings.Contains(rep.TimeOffsets, "7200") {
				t.Errorf("time offsets %q, want boottime 7200", rep.TimeOffsets)
			}
		})
	}
}
