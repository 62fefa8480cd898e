// Package nsenter lets a re-executed capsa-runtime child join an existing
// user namespace (and an existing time namespace), which a Go program
// cannot do by itself: setns(2) refuses to move a multithreaded process
// into either, and the Go runtime starts its threads before main. The
// package links a C constructor (nsenter.c) that runs before the Go
// runtime, in the child only, and only when the parent put the variables of
// Env in the child's environment; without them it returns after one pass
// over the environment.
//
// In the child, the constructor joins the user namespace (becoming uid and
// gid 0 there, with every capability of that namespace) and the time
// namespace, then creates the namespaces asked for, so that the joined user
// namespace owns them. With CLONE_NEWPID it forks once: a new pid namespace
// only applies to children, so the process that goes on into Go is a
// grandchild of the parent, whose pid Status.Wait returns; the started
// child exits at once.
//
// The parent side:
//
//	st, err := nsenter.NewStatus()
//	env, err := nsenter.Env(nsenter.Config{UserNS: path, Unshare: flags, StatusFd: 3 + len(cmd.ExtraFiles)})
//	cmd.Env = append(cmd.Env, env...)
//	cmd.ExtraFiles = append(cmd.ExtraFiles, st.ChildEnd())
//	err = cmd.Start()
//	pid, err := st.Wait(cmd.Process.Pid) // closes the parent's copy of the child end
//
// The constructor is only in binaries built with cgo. Env works in any
// build, because the child may be another binary than the parent:
// capsa-runtime itself is built without cgo (cgo costs every start), and
// runs its cgo twin, capsa-runtime-nsenter, as the child when a namespace
// must be joined this way. See docs/nsenter.md.
package nsenter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The environment variables of the constructor's contract; nsenter.c has
// the same names.
const (
	envFd          = "_CAPSA_NSENTER_FD"
	envUserNS      = "_CAPSA_NSENTER_USERNS"
	envTimeNS      = "_CAPSA_NSENTER_TIMENS"
	envUnshare     = "_CAPSA_NSENTER_UNSHARE"
	envOOM         = "_CAPSA_NSENTER_OOM"
	envTimeOffsets = "_CAPSA_NSENTER_TIME_OFFSETS"
)

// AllowedUnshare are the namespaces the constructor can create after
// joining the user namespace. CLONE_NEWUSER is not among them (there is no
// point joining one user namespace to leave it), nor CLONE_FS and the like.
const AllowedUnshare = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWPID | unix.CLONE_NEWTIME

// Available reports whether this binary carries the constructor, that is,
// whether it was built with cgo.
func Available() bool { return available }

// ErrNotAvailable says that no binary with the constructor was found.
var ErrNotAvailable = errors.New("joining an existing user or time namespace needs capsa-runtime-nsenter (the cgo build of capsa-runtime, made by `make build`) installed next to capsa-runtime; see docs/nsenter.md")

// Config is what the constructor does in the child.
type Config struct {
	// UserNS is the path of a user namespace to join, e.g.
	// /proc/PID/ns/user. The process then becomes uid and gid 0 there.
	UserNS string
	// TimeNS is the path of a time namespace to join, after UserNS. At
	// least one of UserNS and TimeNS is required.
	TimeNS string
	// Unshare holds the CLONE_NEW* flags (within AllowedUnshare) of the
	// namespaces to create once in the user namespace. With CLONE_NEWPID
	// the constructor forks: see Status.Wait.
	Unshare int
	// OOMScoreAdj, when set, is written to /proc/self/oom_score_adj before
	// joining: lowering it needs CAP_SYS_RESOURCE on the host, and after
	// joining the process is non-dumpable, so its /proc files belong to the
	// host's root, which it no longer is.
	OOMScoreAdj *int
	// TimeOffsets, with CLONE_NEWTIME in Unshare, is written to
	// /proc/self/timens_offsets right after the unshare ("monotonic S N\n"
	// lines, as the kernel reads them), for the same reason.
	TimeOffsets string
	// StatusFd is the fd number that the write end of the status pipe
	// (Status.ChildEnd) has in the child.
	StatusFd int
}

// Env returns the environment entries that make the constructor act in a
// child started with them. It fails on a Config the constructor would
// refuse, so a mistake shows in the parent.
func Env(c Config) ([]string, error) {
	if c.UserNS == "" && c.TimeNS == "" {
		return nil, fmt.Errorf("nsenter: no user or time namespace to join")
	}
	if strings.ContainsRune(c.UserNS, 0) || strings.ContainsRune(c.TimeNS, 0) {
		return nil, fmt.Errorf("nsenter: bad namespace path %q %q", c.UserNS, c.TimeNS)
	}
	if c.TimeNS != "" && c.Unshare&unix.CLONE_NEWTIME != 0 {
		return nil, fmt.Errorf("nsenter: both a time namespace to join and CLONE_NEWTIME")
	}
	if c.Unshare&^AllowedUnshare != 0 {
		return nil, fmt.Errorf("nsenter: cannot unshare namespace flags %#x after joining a user namespace", c.Unshare&^AllowedUnshare)
	}
	if c.StatusFd < 3 {
		return nil, fmt.Errorf("nsenter: status fd %d would be one of stdin, stdout, stderr", c.StatusFd)
	}
	env := []string{envFd + "=" + strconv.Itoa(c.StatusFd)}
	if c.UserNS != "" {
		env = append(env, envUserNS+"="+c.UserNS)
	}
	if c.TimeNS != "" {
		env = append(env, envTimeNS+"="+c.TimeNS)
	}
	if c.Unshare != 0 {
		env = append(env, envUnshare+"="+strconv.Itoa(c.Unshare))
	}
	if c.OOMScoreAdj != nil {
		if v := *c.OOMScoreAdj; v < -1000 || v > 1000 {
			return nil, fmt.Errorf("nsenter: oom_score_adj %d out of [-1000, 1000]", v)
		}
		env = append(env, envOOM+"="+strconv.Itoa(*c.OOMScoreAdj))
	}
	if c.TimeOffsets != "" {
		if c.Unshare&unix.CLONE_NEWTIME == 0 {
			return nil, fmt.Errorf("nsenter: time offsets without CLONE_NEWTIME")
		}
		if strings.ContainsRune(c.TimeOffsets, 0) {
			return nil, fmt.Errorf("nsenter: bad time offsets %q", c.TimeOffsets)
		}
		env = append(env, envTimeOffsets+"="+c.TimeOffsets)
	}
	return env, nil
}

// Status is the parent's side of the pipe on which the constructor reports
// how joining went.
type Status struct {
	r, w *os.File
}

// NewStatus makes the status pipe. Both ends are close-on-exec in the
// parent; os/exec gives the child its own copy of ChildEnd through
// ExtraFiles.
func NewStatus() (*Status, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("nsenter: status pipe: %w", err)
	}
	return &Status{r: os.NewFile(uintptr(p[0]), "nsenter-status"), w: os.NewFile(uintptr(p[1]), "nsenter-status-child")}, nil
}

// ChildEnd is the write end to hand to the child (in ExtraFiles).
func (s *Status) ChildEnd() *os.File { return s.w }

// Close releases both ends; after Wait it is a no-op.
func (s *Status) Close() {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
}

// maxReport bounds what Wait reads: the constructor writes one short line.
const maxReport = 4096

// Wait reads the constructor's report, once the child has started, and
// returns the pid of the process that went on into Go: childPid itself, or,
// when the constructor forked for CLONE_NEWPID, the grandchild's pid (in
// the parent's pid namespace). In the second case the started child has
// exited (its exit status is 0; it must still be waited for), and the
// grandchild is no child of the caller: it is re-parented to the nearest
// child subreaper, which the caller must be (PR_SET_CHILD_SUBREAPER) if it
// wants to wait for it.
//
// Wait reads to EOF, which comes once every copy of the write end is
// closed: the constructor closes the child's, Wait closes the parent's.
func (s *Status) Wait(childPid int) (int, error) {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	defer s.Close()
	data, err := io.ReadAll(io.LimitReader(s.r, maxReport))
	if err != nil {
		return 0, fmt.Errorf("nsenter: read status: %w", err)
	}
	return parseReport(data, childPid)
}

func parseReport(data []byte, childPid int) (int, error) {
	line, rest, _ := bytes.Cut(data, []byte("\n"))
	if len(bytes.TrimSpace(rest)) != 0 {
		return 0, fmt.Errorf("nsenter: unexpected status %q", data)
	}
	word, arg, _ := strings.Cut(string(line), " ")
	switch word {
	case "ok":
		if arg == "" {
			return childPid, nil
		}
	case "pid":
		pid, err := strconv.Atoi(arg)
		if err == nil && pid > 0 {
			return pid, nil
		}
	case "error":
		return 0, fmt.Errorf("nsenter: %s", arg)
	case "":
		return 0, fmt.Errorf("nsenter: the child exited without joining the namespaces (was the binary built without cgo, or without runtime/nsenter?)")
	}
	return 0, fmt.Errorf("nsenter: unexpected status %q", data)
}
