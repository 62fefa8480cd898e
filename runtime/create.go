package runtime

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/runtime/cgroups"
)

// CreateOptions are the flags of `create` (and `run`).
type CreateOptions struct {
	Root          string // state root (--root)
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFds   int
	Systemd       bool
	// Config is the bundle's config when the caller has loaded it already
	// (LoadConfig); nil makes Create load it.
	Config *Config
}

// Created is a container that `create` set up, with its init still a
// child of this process (so `run` can wait for it).
type Created struct {
	Container *Container
	Cmd       *exec.Cmd
}

// Create sets up a container from a bundle: namespaces, cgroup, root
// filesystem, and an init that waits for `start`. On any failure nothing
// is left behind: no process, cgroup, mount or state directory.
func Create(o CreateOptions) (_ *Created, retErr error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
	}
	conf := o.Config
	if conf == nil {
		if conf, err = LoadConfig(bundle); err != nil {
			return nil, err
		}
	}
	spec, specJSON := conf.Spec, conf.raw
	if spec.Process != nil {
		if err := checkLSM(spec.Process); err != nil {
			return nil, err
		}
	}
	if o.PreserveFds < 0 {
		return nil, fmt.Errorf("--preserve-fds must not be negative")
	}
	// The filter is compiled here, once: the init gets it ready to load and
	// exec reads it from the state dir, so neither decodes the profile.
	filter, notify, err := compiledSeccomp(o.Root, conf.seccomp)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("create state root %s: %w", o.Root, err)
	}
	dir := filepath.Join(o.Root, o.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container with id %s already exists", o.ID)
		}
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	c := &Container{
		ID:      o.ID,
		Bundle:  bundle,
		Rootfs:  RootfsPath(spec, bundle),
		Created: time.Now().UTC(),
		Spec:    spec,
		dir:     dir,
		seccomp: filter,
		// Valid JSON: loadSpec decoded it.
		specJSON: withoutSection(specJSON, conf.seccomp),
	}
	var cmd *exec.Cmd
	var cg cgroups.Manager
	defer func() {
		if retErr == nil {
			return
		}
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill() // best effort: the init may already be gone
			_, _ = cmd.Process.Wait()
		}
		if cg != nil {
			if err := cg.Destroy(); err != nil {
				retErr = fmt.Errorf("%w (and removing its cgroup: %v)", retErr, err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			retErr = fmt.Errorf("%w (and removing %s: %v)", retErr, dir, err)
		}
	}()

	fifoPath := filepath.Join(dir, fifoName)
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	// The init opens it for writing as the container's root, which in a
	// user namespace is another host uid; mkfifo also applied the umask.
	if err := os.Chown(fifoPath, hostID(spec.Linux.UIDMappings, 0), hostID(spec.Linux.GIDMappings, 0)); err != nil {
		return nil, fmt.Errorf("chown exec fifo: %w", err)
	}
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("chmod exec fifo: %w", err)
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	var console *os.File
	if spec.Process != nil && spec.Process.Terminal {
		if o.ConsoleSocket == "" {
			return nil, fmt.Errorf("process.terminal is true: --console-socket is required")
		}
		if console, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, err
		}
		defer console.Close()
	} else if o.ConsoleSocket != "" {
		return nil, fmt.Errorf("--console-socket given but process.terminal is false")
	}

	cfg := &initConfig{
		Mode: modeCreate, ID: o.ID, Bundle: bundle, Rootfs: c.Rootfs, Spec: spec, SpecJSON: c.specJSON,
		Seccomp: filter, seccompNotify: notify, Process: nil, NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring,
		PreserveFds: o.PreserveFds, ConsoleFd: -1, FifoFd: -1,
	}
	ss := spawnSpec{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	for i := 0; i < o.PreserveFds; i++ {
		ss.files = append(ss.files, os.NewFile(uintptr(3+i), "preserved-fd-"+strconv.Itoa(3+i)))
	}
	parentPipe, childPipe, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parentPipe.Close()
	ss.env = []string{envInitPipe + "=" + strconv.Itoa(3+len(ss.files))}
	ss.files = append(ss.files, childPipe)
	cfg.FifoFd = 3 + len(ss.files)
	ss.files = append(ss.files, fifo)
	if console != nil {
		cfg.ConsoleFd = 3 + len(ss.files)
		ss.files = append(ss.files, console)
	}
	for _, ns := range spec.Linux.Namespaces {
		t := string(ns.Type)
		switch {
		case ns.Path == "" && t == "cgroup":
			cfg.NewCgroupNS = true
		case ns.Path == "" && t == "time":
			cfg.NewTimeNS = true
		case ns.Path == "":
			ss.cloneflags |= uintptr(nsFlag[t])
		case t == "mount":
			cfg.MountNS = ns.Path
		case t == "user":
			if err := checkNSPath(ns.Path, t); err != nil {
				return nil, err
			}
			ss.userNS = ns.Path
		case t == "time":
			// setns(CLONE_NEWTIME) needs a single-threaded process (EUSERS).
			if err := checkNSPath(ns.Path, t); err != nil {
				return nil, err
			}
			ss.timeNS = ns.Path
		default:
			if err := checkNSPath(ns.Path, t); err != nil {
				return nil, err
			}
			ss.joins = append(ss.joins, nsJoin{path: ns.Path, flag: nsFlag[t]})
		}
	}
	if ss.userNS != "" {
		// The new namespaces must be made after joining the user namespace,
		// so that it owns them: the child's constructor does it.
		ss.unshare, ss.cloneflags = int(ss.cloneflags), 0
		if cfg.NewTimeNS {
			ss.unshare |= unix.CLONE_NEWTIME
			ss.timeOffsets = timeOffsets(spec.Linux.TimeOffsets)
			cfg.NewTimeNS = false
		}
		if spec.Process != nil {
			ss.oomScoreAdj = spec.Process.OOMScoreAdj
		}
	}
	if ss.cloneflags&unix.CLONE_NEWUSER != 0 {
		for _, m := range spec.Linux.UIDMappings {
			ss.uidMaps = append(ss.uidMaps, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range spec.Linux.GIDMappings {
			ss.gidMaps = append(ss.gidMaps, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
	}
	//lint:ignore SA1019 prestart is deprecated, but configs still use it and runtimes must run it
	if spec.Hooks != nil && (len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0) {
		cfg.Hooks = true
	}

	resources := withDeviceRules(spec)
	ss.cInit = useCInit(cfg, &ss)
	cg, err = cgroups.New(cgroups.Config{Path: spec.Linux.CgroupsPath, ID: o.ID, Systemd: o.Systemd, Resources: resources})
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	cmd, err = spawn(ss)
	childPipe.Close()
	if err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	// Apply writes Config.Resources before it moves the init in, so the
	// init never runs unlimited.
	if err := cg.Apply(pid); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	c.CgroupPaths = cg.Paths()
	c.InitPid = pid
	if c.InitStart, _, err = processStartTime(pid); err != nil {
		return nil, fmt.Errorf("container init: %w", err)
	}

	pipe := newSyncPipe(parentPipe)
	if ss.cInit {
		var plan []byte
		if plan, err = buildPlan(cfg, pid); err != nil {
			return nil, err
		}
		if dump := os.Getenv(envPlanDump); dump != "" {
			if err := os.WriteFile(dump, plan, 0o600); err != nil {
				return nil, fmt.Errorf("%s: %w", envPlanDump, err)
			}
		}
		err = pipe.sendFrame(plan)
	} else {
		err = pipe.sendConfig(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("send config to container init: %w", err)
	}
	if cfg.Hooks {
		if err := pipe.expect(msgHooks); err != nil {
			return nil, initError(err)
		}
		st := c.ociStateAs(StatusCreating)
		//lint:ignore SA1019 prestart is deprecated, but configs still use it and runtimes must run it
		if err := runHooks("prestart", spec.Hooks.Prestart, st); err != nil {
			return nil, err
		}
		if err := runHooks("createRuntime", spec.Hooks.CreateRuntime, st); err != nil {
			return nil, err
		}
		if err := pipe.send(syncMsg{Type: msgHooksDone}); err != nil {
			return nil, fmt.Errorf("container init: %w", err)
		}
	}
	if err := pipe.expect(msgReady); err != nil {
		return nil, initError(err)
	}
	if err := c.save(); err != nil {
		return nil, fmt.Errorf("save state: %w", err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	return &Created{Container: c, Cmd: cmd}, nil
}

// initError words an init failure for the user: EOF means the init died
// without saying why.
func initError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("container init exited unexpectedly")
	}
	return fmt.Errorf("container init: %w", err)
}

// ociStateAs is OCIState with a given status, for hooks that run before the
// state is saved.
func (c *Container) ociStateAs(status string) specs.State {
	st := specs.State{Version: specs.Version, ID: c.ID, Status: specs.ContainerState(status), Pid: c.InitPid, Bundle: c.Bundle}
	if c.Spec != nil {
		st.Annotations = c.Spec.Annotations
	}
	return st
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	if err := writeFileAtomic(abs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// checkNSPath makes sure a namespace path names a namespace of the right
// type, so a wrong path fails before the container is half made.
func checkNSPath(path, typ string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("linux.namespaces: %s namespace %s: %w", typ, path, err)
	}
	defer unix.Close(fd)
	got, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("linux.namespaces: %s is not a namespace: %w", path, err)
	}
	if got != nsFlag[typ] {
		return fmt.Errorf("linux.namespaces: %s is not a %s namespace", path, typ)
	}
	return nil
}

func dialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return f, nil
}

// checkLSM refuses an AppArmor profile or SELinux label the host cannot
// enforce: silently running a container unconfined would be worse.
func checkLSM(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
		if err != nil || len(data) == 0 || data[0] != 'Y' {
			return fmt.Errorf("process.apparmorProfile %q: AppArmor is not enabled on this host", p.ApparmorProfile)
		}
	}
	if p.SelinuxLabel != "" {
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err != nil {
			return fmt.Errorf("process.selinuxLabel %q: SELinux is not enabled on this host", p.SelinuxLabel)
		}
	}
	return nil
}

// withDeviceRules returns the spec's resources with the device rules the
// container needs: the default /dev nodes and the spec's own devices, which
// must stay usable whatever deny rules the spec lists.
func withDeviceRules(spec *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if spec.Linux.Resources != nil {
		r = *spec.Linux.Resources
	}
	if len(r.Devices) == 0 {
		// No rules in the spec: deny what is not a default device, rather
		// than giving the container every device of the host.
		r.Devices = cgroups.DefaultDeviceRules()
	} else {
		r.Devices = append(append([]specs.LinuxDeviceCgroup{}, r.Devices...), cgroups.DefaultAllowedDevices()...)
	}
	for _, d := range spec.Linux.Devices {
		major, minor := d.Major, d.Minor
		typ := d.Type
		if typ == "u" {
			typ = "c"
		}
		if typ == "p" {
			continue
		}
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"})
	}
	return &r
}

// hostID maps a container uid or gid to the host's through the mappings of
// a user namespace (the identity without one).
func hostID(maps []specs.LinuxIDMapping, id uint32) int {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return int(m.HostID + id - m.ContainerID)
		}
	}
	return int(id)
}
