package runtime

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/runtime/seccomp"
)

// compileSeccomp builds the filter while the init may still allocate and
// read files freely; loading it is the last step before execve.
func compileSeccomp(spec *specs.Spec) (*seccomp.Filter, error) {
	if spec == nil || spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil, nil
	}
	f, err := seccomp.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	return f, nil
}

// loadSeccomp installs the filter and, for SCMP_ACT_NOTIFY, hands the
// listener fd to the agent at listenerPath (runtime-spec) with the state of
// the container and of this process.
func loadSeccomp(cfg *initConfig, plan *execPlan) error {
	if plan.seccomp == nil {
		return nil
	}
	fd, err := plan.seccomp.Load()
	if err != nil {
		return err
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	sc := cfg.Spec.Linux.Seccomp
	if sc.ListenerPath == "" {
		return fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath")
	}
	initPid := cfg.InitPid
	status := specs.StateRunning
	if cfg.Mode == modeCreate {
		initPid, status = plan.hostPid, specs.StateCreated
	}
	st := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      plan.hostPid,
		Metadata: sc.ListenerMetadata,
		State: specs.State{
			Version: specs.Version, ID: cfg.ID, Status: status, Pid: initPid,
			Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations,
		},
	}
	if plan.listener < 0 {
		return fmt.Errorf("linux.seccomp: no connection to listenerPath %s", sc.ListenerPath)
	}
	defer unix.Close(plan.listener)
	return seccomp.SendListenerFdOn(plan.listener, fd, st)
}

// usesNotify reports whether the spec's filter hands a listener fd to an
// agent, which the init must dial while the host's filesystem is still
// its own.
func usesNotify(spec *specs.Spec) bool {
	if spec == nil || spec.Linux == nil || spec.Linux.Seccomp == nil {
		return false
	}
	for _, sc := range spec.Linux.Seccomp.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// dialListener connects to the seccomp agent of the spec, or returns -1
// when there is none. listenerPath is a host path: this must run before
// pivot_root (or, for exec, before entering the container's mounts).
func dialListener(spec *specs.Spec) (int, error) {
	if !usesNotify(spec) {
		return -1, nil
	}
	if spec.Linux.Seccomp.ListenerPath == "" {
		return -1, fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath")
	}
	fd, err := seccomp.DialListener(spec.Linux.Seccomp.ListenerPath)
	if err != nil {
		return -1, fmt.Errorf("linux.seccomp: %w", err)
	}
	return fd, nil
}

// hostPidFromProc reads this process's pid in the host's pid namespace
// from the host's procfs (open before pivot_root or setns).
func hostPidFromProc(hostProc *os.File) int {
	if p, err := hostPid(hostProc); err == nil {
		return p
	}
	return os.Getpid()
}
