package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/runtime/nsenter"
)

// protectedSelf returns the running binary as a file that cannot be
// written through: the container's init runs from it, so that a process in
// the container that reaches the init's /proc/PID/exe can never write the
// runtime binary on the host (CVE-2019-5736).
//
// The cheap way is a detached, read-only bind mount of the binary
// (open_tree + mount_setattr): two syscalls, no copy, and the mount is in no
// mount namespace, so nothing is left on the host. Where the kernel or the
// caller's privileges do not allow it, a sealed memfd copy is made instead
// (runc's way; it costs a copy of the binary per container start).
func protectedSelf() (*os.File, error) {
	return protectedBinary("/proc/self/exe")
}

// nsenterBinary is the cgo twin of capsa-runtime that carries the nsenter
// constructor; capsa-runtime runs it as the child when a user or time
// namespace must be joined (docs/nsenter.md). capsa-runtime itself is built
// without cgo: cgo would make every start slower.
const nsenterBinary = "capsa-runtime-nsenter"

// protectedNsenter returns the binary to run when the child must join a
// user or time namespace: this one if it has the constructor, else its
// twin installed next to it.
func protectedNsenter() (*os.File, error) {
	if nsenter.Available() {
		return protectedSelf()
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	twin := filepath.Join(filepath.Dir(self), nsenterBinary)
	if _, err := os.Stat(twin); err != nil {
		return nil, nsenter.ErrNotAvailable
	}
	return protectedBinary(twin)
}

// protectedBinary opens the executable at path the way protectedSelf
// describes.
func protectedBinary(path string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err == nil {
			return os.NewFile(uintptr(fd), "capsa-runtime-ro"), nil
		}
		unix.Close(fd)
	}
	return sealedCopy(path)
}

// sealedCopy returns a sealed in-memory copy of the executable at path.
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open own executable: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("capsa-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "capsa-runtime-memfd")
	// sendfile copies page cache to page cache inside the kernel. (io.Copy
	// would try copy_file_range, get EXDEV between filesystems and fall
	// back to 32 KiB reads and writes through this process.)
	fi, err := src.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat own executable: %w", err)
	}
	for left := fi.Size(); left > 0; {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(left))
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			f.Close()
			return nil, fmt.Errorf("copy own executable: %w", err)
		}
		if n == 0 {
			f.Close()
			return nil, fmt.Errorf("copy own executable: short copy")
		}
		left -= int64(n)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal executable copy: %w", err)
	}
	return f, nil
}

// nsJoin is a namespace the parent joins before cloning the child, so that
// the child starts inside it.
type nsJoin struct {
	path string
	flag int
}

// spawnSpec describes how to start an init or exec child.
type spawnSpec struct {
	cloneflags uintptr
	joins      []nsJoin
	uidMaps    []syscall.SysProcIDMap
	gidMaps    []syscall.SysProcIDMap
	// userNS/timeNS are joined by the child's nsenter constructor before
	// the Go runtime starts (setns needs a single thread); it then
	// unshares `unshare` (so that userNS owns the new namespaces) and
	// writes oomScoreAdj/timeOffsets as host root (docs/nsenter.md).
	userNS      string
	timeNS      string
	unshare     int
	oomScoreAdj *int
	timeOffsets string
	// files become the child's fds 3, 4, …; preserved fds come first.
	files  []*os.File
	stdin  *os.File
	stdout *os.File
	stderr *os.File
	env    []string
	// cInit runs the C init (the front binary next to this one, which
	// reads a plan: runtime/plan.go) instead of this binary's Go init.
	cInit bool
}

// spawn starts the sealed runtime copy as `init` with the given
// namespaces. Joining namespaces needs a thread of its own: the thread
// that called setns is never handed back to the Go scheduler, it exits
// with its goroutine.
func spawn(s spawnSpec) (*exec.Cmd, error) {
	binary := protectedSelf
	switch {
	case s.userNS != "" || s.timeNS != "":
		binary = protectedNsenter
	case s.cInit:
		binary = func() (*os.File, error) { return protectedBinary(frontPath()) }
	}
	self, err := binary()
	if err != nil {
		return nil, err
	}
	defer self.Close()
	var status *nsenter.Status
	if s.userNS != "" || s.timeNS != "" {
		if status, err = nsenter.NewStatus(); err != nil {
			return nil, err
		}
		defer status.Close()
		env, err := nsenter.Env(nsenter.Config{
			UserNS: s.userNS, TimeNS: s.timeNS, Unshare: s.unshare, OOMScoreAdj: s.oomScoreAdj,
			TimeOffsets: s.timeOffsets, StatusFd: 3 + len(s.files),
		})
		if err != nil {
			return nil, err
		}
		s.env = append(append([]string(nil), s.env...), env...)
		s.files = append(append([]*os.File(nil), s.files...), status.ChildEnd())
		if s.unshare&unix.CLONE_NEWPID != 0 {
			// The init will be a grandchild (the constructor forks into the
			// new pid namespace): be its subreaper so that it is re-parented
			// here and can be waited for (run) or reaped (failed create).
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				return nil, fmt.Errorf("set child subreaper: %w", err)
			}
		}
	}
	cmd := &exec.Cmd{
		// The binary is passed as the child's last fd and run through it: at
		// execve the child's fds are already rearranged, and its number in
		// the parent may by then name one of the other files.
		Path: "/proc/self/fd/" + strconv.Itoa(3+len(s.files)),
		Args: []string{"capsa-runtime", "init"},
		// The init is short-lived and single-threaded in what it does: one
		// P and no garbage collector spare it the work of starting them
		// (and the read of its cgroup's CPU limit). The container's own
		// environment is set at execve.
		Env: append([]string{"GOMAXPROCS=1", "GOGC=off"}, s.env...),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 s.cloneflags,
			UidMappings:                s.uidMaps,
			GidMappings:                s.gidMaps,
			GidMappingsEnableSetgroups: len(s.gidMaps) > 0,
		},
		ExtraFiles: append(append([]*os.File(nil), s.files...), self),
	}
	if s.cloneflags&unix.CLONE_NEWUSER != 0 {
		// Become root of the new user namespace before exec: the runtime's
		// host uid is usually unmapped there, and exec would drop every
		// capability the init needs to set the container up.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	// A nil *os.File in an io.Reader would not be a nil interface.
	if s.stdin != nil {
		cmd.Stdin = s.stdin
	}
	if s.stdout != nil {
		cmd.Stdout = s.stdout
	}
	if s.stderr != nil {
		cmd.Stderr = s.stderr
	}
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		// Never unlocked: this thread's namespaces are changed for good.
		if len(s.joins) > 0 {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				errc <- fmt.Errorf("unshare fs: %w", err)
				return
			}
		}
		for _, j := range s.joins {
			fd, err := unix.Open(j.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- fmt.Errorf("open namespace %s: %w", j.path, err)
				return
			}
			err = unix.Setns(fd, j.flag)
			unix.Close(fd)
			if err != nil {
				errc <- fmt.Errorf("join namespace %s: %w", j.path, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("start container init: %w", err)
	}
	if status != nil {
		pid, err := status.Wait(cmd.Process.Pid)
		if err != nil {
			_ = cmd.Wait() // it exits right after reporting
			return nil, fmt.Errorf("start container init: %w", err)
		}
		if pid != cmd.Process.Pid {
			// The started process forked the init into the new pid
			// namespace and exits. From here on cmd.Process is the init, so
			// callers (pid, cgroup, kill, wait) need no change; cmd.Wait
			// must not be called again.
			if err := cmd.Wait(); err != nil {
				_ = unix.Kill(pid, unix.SIGKILL)
				return nil, fmt.Errorf("start container init: intermediate process: %w", err)
			}
			p, err := os.FindProcess(pid)
			if err != nil {
				_ = unix.Kill(pid, unix.SIGKILL)
				return nil, fmt.Errorf("start container init: %w", err)
			}
			cmd.Process = p
		}
	}
	return cmd, nil
}

// nsFlag maps a namespace type to its clone flag.
var nsFlag = map[string]int{
	"pid": unix.CLONE_NEWPID, "network": unix.CLONE_NEWNET, "mount": unix.CLONE_NEWNS,
	"ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS, "user": unix.CLONE_NEWUSER,
	"cgroup": unix.CLONE_NEWCGROUP, "time": unix.CLONE_NEWTIME,
}

// nsProcName maps a namespace type to its name under /proc/PID/ns.
var nsProcName = map[string]string{
	"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
	"user": "user", "cgroup": "cgroup", "time": "time",
}
