package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions are the flags of `exec`.
type ExecOptions struct {
	Process       *specs.Process
	ConsoleSocket string
	PidFile       string
	PreserveFds   int
}

// Exec starts another process in a running container: in its namespaces,
// cgroup and root, with its own user, capabilities and environment. It
// returns once the process has exec'd (or failed to).
func (c *Container) Exec(o ExecOptions) (*exec.Cmd, error) {
	switch st := c.Status(); st {
	case StatusRunning, StatusCreated:
	case StatusPaused:
		return nil, fmt.Errorf("cannot exec in a paused container")
	default:
		return nil, fmt.Errorf("cannot exec in a stopped container")
	}
	p := o.Process
	filter, notify, err := c.loadSeccompFilter()
	if err != nil {
		return nil, err
	}
	if err := ValidateProcess(p); err != nil {
		return nil, err
	}
	if err := checkLSM(p); err != nil {
		return nil, err
	}
	ss := spawnSpec{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	for i := 0; i < o.PreserveFds; i++ {
		ss.files = append(ss.files, os.NewFile(uintptr(3+i), "preserved-fd-"+strconv.Itoa(3+i)))
	}
	cfg := &initConfig{
		Mode: modeExec, ID: c.ID, Bundle: c.Bundle, Rootfs: c.Rootfs, Spec: c.Spec, Seccomp: filter, seccompNotify: notify, Process: p,
		PreserveFds: o.PreserveFds, ConsoleFd: -1, FifoFd: -1, InitPid: c.InitPid,
	}
	parentPipe, childPipe, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parentPipe.Close()
	ss.env = []string{envInitPipe + "=" + strconv.Itoa(3+len(ss.files))}
	ss.files = append(ss.files, childPipe)
	if p.Terminal {
		if o.ConsoleSocket == "" {
			childPipe.Close()
			return nil, fmt.Errorf("a terminal (-t) needs --console-socket")
		}
		console, err := dialConsole(o.ConsoleSocket)
		if err != nil {
			childPipe.Close()
			return nil, err
		}
		defer console.Close()
		cfg.ConsoleFd = 3 + len(ss.files)
		ss.files = append(ss.files, console)
	}
	nsDir := "/proc/" + strconv.Itoa(c.InitPid) + "/ns/"
	for _, ns := range c.Spec.Linux.Namespaces {
		t := string(ns.Type)
		switch t {
		case "mount":
			cfg.MountNS = nsDir + "mnt"
		case "user":
			// Joined by the child's nsenter constructor, after the parent
			// joined the others.
			ss.userNS = nsDir + "user"
			ss.oomScoreAdj = p.OOMScoreAdj
		case "time":
			// setns(CLONE_NEWTIME) needs a single-threaded process (EUSERS).
			ss.timeNS = nsDir + "time"
		default:
			ss.joins = append(ss.joins, nsJoin{path: nsDir + nsProcName[t], flag: nsFlag[t]})
		}
	}
	// Open the namespaces now and check the init is still the same process,
	// so a recycled pid can never put the process somewhere else.
	if !c.initAlive() {
		return nil, fmt.Errorf("container %s is not running", c.ID)
	}
	ss.cInit = useCInit(cfg, &ss)
	if !ss.cInit {
		// Only the Go init decodes the spec; the C init gets a plan.
		if cfg.SpecJSON, err = json.Marshal(c.Spec); err != nil {
			childPipe.Close()
			return nil, err
		}
	}
	cmd, err := spawn(ss)
	childPipe.Close()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*exec.Cmd, error) {
		_ = cmd.Process.Kill() // the child may have died already
		_, _ = cmd.Process.Wait()
		return nil, err
	}
	if m, err := c.cgroup(); err != nil {
		return fail(fmt.Errorf("cgroup: %w", err))
	} else if m != nil {
		if err := m.Apply(cmd.Process.Pid); err != nil {
			return fail(fmt.Errorf("join cgroup of %s: %w", c.ID, err))
		}
	}
	pipe := newSyncPipe(parentPipe)
	if ss.cInit {
		var plan []byte
		if plan, err = buildExecPlan(cfg); err != nil {
			return fail(err)
		}
		err = pipe.sendFrame(plan)
	} else {
		err = pipe.sendConfig(cfg)
	}
	if err != nil {
		return fail(fmt.Errorf("send process to exec: %w", err))
	}
	// The pipe is close-on-exec in the child: EOF means the exec succeeded.
	var m syncMsg
	if err := pipe.recv(&m); err == nil {
		if m.Type == msgError {
			return fail(fmt.Errorf("exec failed: %s", m.Error))
		}
		return fail(fmt.Errorf("unexpected message %q from exec", m.Type))
	} else if !errors.Is(err, io.EOF) {
		return fail(fmt.Errorf("exec: %w", err))
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			return cmd, err
		}
	}
	return cmd, nil
}

// execInit is the child side of Exec: enter the container's mount
// namespace and root, then become the process.
func execInit(pipe *syncPipe, cfg *initConfig) error {
	unix.CloseOnExec(int(pipe.f.Fd()))
	// This process is already in the container's pid namespace; the host's
	// procfs, still /proc before the mount namespace, names its host pid.
	hostPid := os.Getpid()
	if self, err := os.Readlink("/proc/self"); err == nil {
		if p, err := strconv.Atoi(self); err == nil {
			hostPid = p
		}
	}
	filter, err := decodeSeccomp(cfg.Seccomp)
	if err != nil {
		return err
	}
	listener, err := dialListener(filter)
	if err != nil {
		return err
	}
	rootDir := "/proc/" + strconv.Itoa(cfg.InitPid) + "/root"
	root, err := unix.Open(rootDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open container root: %w", err)
	}
	if cfg.MountNS != "" {
		if err := joinNS(cfg.MountNS, unix.CLONE_NEWNS); err != nil {
			return err
		}
	}
	// The init's root, not the namespace's: they differ with --no-pivot.
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("enter container root: %w", err)
	}
	unix.Close(root)
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot into container root: %w", err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if cfg.Process.Terminal {
		if err := setupConsole(cfg.ConsoleFd, false); err != nil {
			return err
		}
	}
	if err := applyProcessLimits(cfg.Process, cfg.Spec); err != nil {
		return err
	}
	plan, err := prepareExec(cfg.Process, filter)
	if err != nil {
		return err
	}
	plan.hostPid, plan.listener = hostPid, listener
	if err := dropPrivileges(cfg, plan); err != nil {
		return err
	}
	return execProcess(cfg, plan)
}
