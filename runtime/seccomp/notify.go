package seccomp

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SendListenerFd hands the seccomp notify fd of a container to the agent
// listening on listenerPath, as the runtime-spec asks: it connects a
// stream UNIX socket and sends, in one message, the container process
// state as JSON with fd attached by SCM_RIGHTS. The state's Fds default
// to ["seccompFd"] and its Version to the spec version the runtime
// implements; the caller fills Pid, Metadata (linux.seccomp's
// listenerMetadata) and State. The caller keeps and closes fd.
func SendListenerFd(listenerPath string, fd int, state specs.ContainerProcessState) error {
	if state.Version == "" {
		state.Version = specs.Version
	}
	if len(state.Fds) == 0 {
		state.Fds = []string{specs.SeccompFdName}
	}
	if len(state.Fds) != 1 {
		return fmt.Errorf("seccomp: send listener fd: state names %d fds, but one is sent", len(state.Fds))
	}
	payload, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("seccomp: send listener fd: encode state: %w", err)
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seccomp: send listener fd: socket: %w", err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		return fmt.Errorf("seccomp: send listener fd: connect %s: %w", listenerPath, err)
	}
	n, err := unix.SendmsgN(sock, payload, unix.UnixRights(fd), nil, 0)
	if err != nil {
		return fmt.Errorf("seccomp: send listener fd to %s: %w", listenerPath, err)
	}
	if n != len(payload) {
		return fmt.Errorf("seccomp: send listener fd to %s: short write (%d of %d bytes)", listenerPath, n, len(payload))
	}
	return nil
}
