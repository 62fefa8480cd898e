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
	if err := seccomp.SendListenerFd(sc.ListenerPath, fd, st); err != nil {
		return err
	}
	return nil
}

// hostPidFromProc reads this process's pid in the host's pid namespace
// from the host's procfs (open before pivot_root or setns).
func hostPidFromProc(hostProc *os.File) int {
	if p, err := hostPid(hostProc); err == nil {
		return p
	}
	return os.Getpid()
}
