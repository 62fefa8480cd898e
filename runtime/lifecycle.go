package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Warnf reports a problem that does not fail the operation; the CLI points
// it at its log.
var Warnf = func(format string, args ...any) {}

// Debugf reports what the runtime decided (--debug).
var Debugf = func(format string, args ...any) {}

// Start lets a created container's init exec the container process, then
// runs the poststart hooks.
func (c *Container) Start() error {
	switch st := c.Status(); st {
	case StatusCreated:
	case StatusStopped:
		return fmt.Errorf("cannot start a container that has stopped")
	default:
		return fmt.Errorf("cannot start an already running container")
	}
	if c.Spec.Process == nil {
		// Nothing to run: the init is stopped, so the container does not
		// linger half-made.
		if err := c.killAndWait(); err != nil {
			return err
		}
		return fmt.Errorf("cannot start container %s: process is not set in config.json", c.ID)
	}
	fifoPath := filepath.Join(c.dir, fifoName)
	// Non-blocking open: a blocking one would hang forever if the init had
	// died; instead wait for its byte while checking it is alive.
	fd, err := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait on exec fifo: %w", err)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			n, err := unix.Read(fd, buf)
			if n == 1 {
				break
			}
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("read exec fifo: %w", err)
			}
		}
		if !c.initAlive() {
			return fmt.Errorf("container init exited before start")
		}
	}
	if err := os.Remove(fifoPath); err != nil {
		return fmt.Errorf("remove exec fifo: %w", err)
	}
	if c.Spec.Hooks != nil && len(c.Spec.Hooks.Poststart) > 0 {
		if err := runHooks("poststart", c.Spec.Hooks.Poststart, c.ociStateAs(StatusRunning)); err != nil {
			// The spec: a failing poststart hook is a warning; the container
			// keeps running. runc kills it and fails; so do we, since a user
			// who set the hook wants to know it failed.
			_ = c.signal(unix.SIGKILL)
			return err
		}
	}
	return nil
}

// Kill sends sig to the init, or with all to every process of the cgroup.
func (c *Container) Kill(sig unix.Signal, all bool) error {
	st := c.Status()
	if st == StatusStopped {
		// runc allows `kill --all` of a stopped container with processes
		// left in its cgroup; anything else is an error.
		if !all {
			return fmt.Errorf("container %s is not running", c.ID)
		}
	}
	if !all {
		return c.signal(sig)
	}
	m, err := c.cgroup()
	if err != nil || m == nil {
		if st == StatusStopped {
			return nil
		}
		return c.signal(sig)
	}
	pids, err := m.Pids()
	if err != nil {
		return fmt.Errorf("list processes of %s: %w", c.ID, err)
	}
	// A frozen process cannot act on a signal until thawed.
	frozen := st == StatusPaused
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %d to pid %d: %w", sig, pid, err)
		}
	}
	if frozen && (sig == unix.SIGKILL || sig == unix.SIGTERM) {
		if err := m.Thaw(); err != nil {
			return fmt.Errorf("thaw %s: %w", c.ID, err)
		}
	}
	return nil
}

// Delete removes a stopped container (or, with force, any container:
// killing its processes first), running the poststop hooks.
func (c *Container) Delete(force bool) error {
	st := c.Status()
	if st != StatusStopped {
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", c.ID, st)
		}
		if err := c.killAndWait(); err != nil {
			return err
		}
	}
	return c.destroy()
}

// killAndWait SIGKILLs every process of the container and waits until the
// init is gone.
func (c *Container) killAndWait() error {
	if err := c.Kill(unix.SIGKILL, true); err != nil && c.initAlive() {
		if err2 := c.signal(unix.SIGKILL); err2 != nil {
			return err
		}
	}
	if err := c.waitInitExit(10 * time.Second); err != nil {
		return fmt.Errorf("container %s init (pid %d) did not die after SIGKILL: %w", c.ID, c.InitPid, err)
	}
	return nil
}

// waitInitExit waits until the init has exited (a zombie counts: it may be
// another process's child, podman's conmon say, which reaps it).
func (c *Container) waitInitExit(timeout time.Duration) error {
	pidfd, err := unix.PidfdOpen(c.InitPid, 0)
	if err != nil {
		// ESRCH: gone. Older kernels (6.1) say EINVAL for a pid that was
		// just reaped.
		if errors.Is(err, unix.ESRCH) || (errors.Is(err, unix.EINVAL) && !c.initAlive()) {
			return nil
		}
		return err
	}
	defer unix.Close(pidfd)
	// The pid might have been recycled between the kill and the open.
	if !c.initAlive() {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return fmt.Errorf("timed out")
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// destroy removes the cgroup and the state dir and runs poststop hooks.
// Errors are collected so that one failure does not leave the rest.
func (c *Container) destroy() error {
	var errs []error
	if m, err := c.cgroup(); err != nil {
		errs = append(errs, fmt.Errorf("cgroup: %w", err))
	} else if m != nil {
		if err := m.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	if c.Spec.Hooks != nil && len(c.Spec.Hooks.Poststop) > 0 {
		// The spec: a failing poststop hook is a warning, the deletion goes on.
		if err := runHooks("poststop", c.Spec.Hooks.Poststop, c.ociStateAs(StatusStopped)); err != nil {
			Warnf("%v", err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove state: %w", err))
	}
	return errors.Join(errs...)
}

// Pids lists the host pids of the container's processes.
func (c *Container) Pids() ([]int, error) {
	m, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if m == nil {
		if c.initAlive() {
			return []int{c.InitPid}, nil
		}
		return nil, nil
	}
	return m.Pids()
}
