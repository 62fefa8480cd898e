package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// IsInit reports whether this process was started as a container init (or
// exec'd process) by the runtime, so main can skip everything else.
func IsInit() bool {
	return len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv(envInitPipe) != ""
}

// Init is the body of a container's init or exec'd process. It never
// returns on success: it ends in execve of the container process. Errors
// go to the parent over the init pipe, never to the container's stdio.
func Init() {
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(envInitPipe))
	if err != nil {
		fmt.Fprintln(os.Stderr, "capsa-runtime init: bad", envInitPipe)
		os.Exit(1)
	}
	os.Unsetenv(envInitPipe)
	pipe := newSyncPipe(os.NewFile(uintptr(fd), "init-pipe"))
	var cfg initConfig
	if err := pipe.recvConfig(&cfg); err != nil {
		os.Exit(1) // the parent is gone; nobody to tell
	}
	if cfg.Spec, _, err = decodeSpec(cfg.SpecJSON); err == nil && cfg.Mode == modeCreate {
		cfg.Process = cfg.Spec.Process
	}
	cfg.SpecJSON = nil
	if err != nil {
		err = fmt.Errorf("decode config: %w", err)
	} else if cfg.Mode == modeExec {
		err = execInit(pipe, &cfg)
	} else {
		err = containerInit(pipe, &cfg)
	}
	if pipe.closed {
		// After "ready" nobody reads the pipe: like runc, report on the
		// container's stderr.
		fmt.Fprintln(os.Stderr, "capsa-runtime:", err)
	} else {
		_ = pipe.send(syncMsg{Type: msgError, Error: err.Error()}) // best effort: we exit anyway
	}
	os.Exit(1)
}

func containerInit(pipe *syncPipe, cfg *initConfig) error {
	spec := cfg.Spec
	if cfg.MountNS != "" {
		if err := joinNS(cfg.MountNS, unix.CLONE_NEWNS); err != nil {
			return err
		}
	}
	// The parent placed this process in its cgroup before sending the
	// config, so the new cgroup namespace is rooted there.
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if cfg.NewTimeNS {
		if err := setupTimeNS(spec.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	// A host-procfs handle taken now still works after pivot_root, even if
	// the container has no /proc of its own.
	hostProc, err := os.OpenFile("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc: %w", err)
	}
	defer hostProc.Close()

	filter, err := decodeSeccomp(cfg.Seccomp)
	if err != nil {
		return err
	}
	listener, err := dialListener(filter)
	if err != nil {
		return err
	}
	hasMountNS := hasNS(spec, specs.MountNamespace)
	if hasMountNS {
		if err := setupRootfs(cfg); err != nil {
			return err
		}
	}
	if cfg.Hooks {
		if err := pipe.send(syncMsg{Type: msgHooks}); err != nil {
			return err
		}
		if err := pipe.expect(msgHooksDone); err != nil {
			return err
		}
	}
	if spec.Hooks != nil && len(spec.Hooks.CreateContainer) > 0 {
		st := specs.State{Version: specs.Version, ID: cfg.ID, Status: StatusCreating, Pid: os.Getpid(), Bundle: cfg.Bundle, Annotations: spec.Annotations}
		// The pid a hook sees must be the host's, as for the other hooks.
		if p, err := hostPid(hostProc); err == nil {
			st.Pid = p
		}
		if err := runHooks("createContainer", spec.Hooks.CreateContainer, st); err != nil {
			return err
		}
	}
	switch {
	case !hasMountNS:
		if err := unix.Chroot(cfg.Rootfs); err != nil {
			return fmt.Errorf("chroot %s: %w", cfg.Rootfs, err)
		}
	case cfg.NoPivot:
		if err := moveRoot(cfg.Rootfs); err != nil {
			return err
		}
	default:
		if err := pivotRoot(cfg.Rootfs); err != nil {
			return err
		}
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	if hasMountNS {
		// The root is a fresh bind mount: give it the propagation asked for.
		if p := spec.Linux.RootfsPropagation; p != "" {
			flag, _ := propagationFlag(p)
			if err := unix.Mount("", "/", "", flag, ""); err != nil {
				return fmt.Errorf("make / %s: %w", p, err)
			}
		}
	}
	if err := setSysctls(spec.Linux.Sysctl); err != nil {
		return err
	}
	if hasMountNS {
		for _, p := range spec.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return fmt.Errorf("linux.readonlyPaths %s: %w", p, err)
			}
		}
		for _, p := range spec.Linux.MaskedPaths {
			if err := maskPath(p); err != nil {
				return fmt.Errorf("linux.maskedPaths %s: %w", p, err)
			}
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	if spec.Root.Readonly && hasMountNS {
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
		if root, err := os.Open("/"); err == nil {
			flags |= lockedFlags(root)
			root.Close()
		}
		if err := unix.Mount("", "/", "", flags, ""); err != nil {
			return fmt.Errorf("make root read-only: %w", err)
		}
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if cfg.Process != nil && cfg.Process.Terminal {
		if err := setupConsole(cfg.ConsoleFd, true); err != nil {
			return err
		}
	}
	if !cfg.NoNewKeyring {
		// A keyring of its own, so the container cannot read the host's
		// session keys; a kernel without keyrings (or a denial) is not fatal.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	// A config without a process creates a container that `start` refuses
	// (runtime spec); the init then waits until it is deleted.
	var exe *execPlan
	ready := syncMsg{Type: msgReady}
	if cfg.Process != nil {
		if err := applyProcessLimits(cfg.Process, spec); err != nil {
			return err
		}
		if exe, err = prepareExec(cfg.Process, filter); err != nil {
			return err
		}
		exe.hostPid = hostPidFromProc(hostProc)
		exe.listener = listener
		if err := dropPrivileges(cfg, exe); err != nil {
			return err
		}
	}
	if err := pipe.send(ready); err != nil {
		return err
	}
	pipe.close()

	// Block until `start` opens the fifo for reading.
	fifo, err := openat(hostProc, "self/fd/"+strconv.Itoa(cfg.FifoFd), unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(fifo, []byte("0")); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	unix.Close(fifo)
	if exe == nil {
		return fmt.Errorf("process is not set in config.json")
	}
	if spec.Hooks != nil && len(spec.Hooks.StartContainer) > 0 {
		st := specs.State{Version: specs.Version, ID: cfg.ID, Status: StatusRunning, Pid: os.Getpid(), Bundle: cfg.Bundle, Annotations: spec.Annotations}
		if p, err := hostPid(hostProc); err == nil {
			st.Pid = p
		}
		if err := runHooks("startContainer", spec.Hooks.StartContainer, st); err != nil {
			return err
		}
	}
	hostProc.Close()
	return execProcess(cfg, exe)
}

func openat(dir *os.File, name string, flags int) (int, error) {
	return unix.Openat(int(dir.Fd()), name, flags, 0)
}

// hostPid reads this process's pid as the host sees it, from a host procfs
// handle.
func hostPid(hostProc *os.File) (int, error) {
	buf := make([]byte, 32)
	n, err := unix.Readlinkat(int(hostProc.Fd()), "self", buf)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(buf[:n]))
}

func joinNS(path string, flag int) error {
	if flag == unix.CLONE_NEWNS {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare fs: %w", err)
		}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("join namespace %s: %w", path, err)
	}
	return nil
}

func setupTimeNS(offsets map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	if b := timeOffsets(offsets); b != "" {
		if err := os.WriteFile("/proc/self/timens_offsets", []byte(b), 0); err != nil {
			return fmt.Errorf("write time offsets: %w", err)
		}
	}
	return nil
}

// timeOffsets formats time offsets as /proc/PID/timens_offsets reads them.
func timeOffsets(offsets map[string]specs.LinuxTimeOffset) string {
	var b strings.Builder
	for clock, off := range offsets {
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	return b.String()
}

// pivotRoot makes rootfs the root and detaches the old one, without a
// temporary directory in the image (the way runc does it).
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("fchdir old root: %w", err)
	}
	// Keep unmount events of the old root from reaching the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

// moveRoot is --no-pivot: move the root mount over / and chroot into it.
func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return nil
}

// procRoot opens the container's /proc and checks it is a real procfs, so
// that sysctl and mask writes can never be redirected by the image.
func procRoot() (*os.File, error) {
	f, err := os.OpenFile("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		f.Close()
		return nil, fmt.Errorf("/proc in the container is not a procfs")
	}
	return f, nil
}

func setSysctls(sysctl map[string]string) error {
	if len(sysctl) == 0 {
		return nil
	}
	proc, err := procRoot()
	if err != nil {
		return fmt.Errorf("linux.sysctl: %w", err)
	}
	defer proc.Close()
	for k, v := range sysctl {
		name := "sys/" + strings.ReplaceAll(k, ".", "/")
		fd, err := unix.Openat2(int(proc.Fd()), name, &unix.OpenHow{
			Flags:   unix.O_WRONLY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err != nil {
			return fmt.Errorf("linux.sysctl %s: %w", k, err)
		}
		_, err = unix.Write(fd, []byte(v))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("linux.sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// readonlyPath bind-mounts p onto itself read-only; a missing path is fine.
func readonlyPath(p string) error {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer unix.Close(fd)
	target := "/proc/thread-self/fd/" + strconv.Itoa(fd)
	if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	top, err := os.OpenFile(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer top.Close()
	return unix.Mount("", fdPath(top), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|lockedFlags(top)|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// maskPath hides p: a directory under an empty read-only tmpfs, a file
// under the container's /dev/null — which is checked to really be the null
// device, so a symlink or other node planted there cannot be used to mount
// something else over the path (CVE-2025-31133).
func maskPath(p string) error {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	target := "/proc/thread-self/fd/" + strconv.Itoa(fd)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY, "size=0,mode=555")
	}
	null, err := unix.Open("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null: %w", err)
	}
	defer unix.Close(null)
	if err := unix.Fstat(null, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		return fmt.Errorf("/dev/null in the container is not the null device")
	}
	return unix.Mount("/proc/thread-self/fd/"+strconv.Itoa(null), target, "", unix.MS_BIND, "")
}
