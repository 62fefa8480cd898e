package seccomp

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DialListener connects to the seccomp agent at listenerPath. The
// runtime-spec's listenerPath is a path on the host, so the container's
// init dials it before pivot_root (or an exec'd process before it enters
// the container's mount namespace) and sends the fd later, once the filter
// is loaded, with SendListenerFdOn.
func DialListener(listenerPath string) (int, error) {
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("seccomp: listener socket: %w", err)
	}
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		unix.Close(sock)
		return -1, fmt.Errorf("seccomp: connect to listenerPath %s: %w", listenerPath, err)
	}
	return sock, nil
}

// SendListenerFd hands the seccomp notify fd of a container to the agent
// listening on listenerPath: DialListener, then SendListenerFdOn.
func SendListenerFd(listenerPath string, fd int, state specs.ContainerProcessState) error {
	sock, err := DialListener(listenerPath)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	return SendListenerFdOn(sock, fd, state)
}

// SendListenerFdOn sends, on a connected stream UNIX socket, the container
// process state as JSON with fd attached by SCM_RIGHTS, in one message, as
// the runtime-spec asks. The state's Fds default to ["seccompFd"] and its
// Version to the spec version the runtime implements; the caller fills Pid,
// Metadata (linux.seccomp's listenerMetadata) and State. The caller keeps
// and closes fd and sock.
func SendListenerFdOn(sock, fd int, state specs.ContainerProcessState) error {
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
	n, err := unix.SendmsgN(sock, payload, unix.UnixRights(fd), nil, 0)
	if err != nil {
		return fmt.Errorf("seccomp: send listener fd: %w", err)
	}
	if n != len(payload) {
		return fmt.Errorf("seccomp: send listener fd: short write (%d of %d bytes)", n, len(payload))
	}
	return nil
}
