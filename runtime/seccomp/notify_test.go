package seccomp

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSendListenerFdErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nobody-listens.sock")
	err := SendListenerFd(missing, 0, specs.ContainerProcessState{Pid: 1})
	if err == nil || !strings.Contains(err.Error(), "connect to listenerPath "+missing) {
		t.Fatalf("SendListenerFd to a missing socket: %v", err)
	}
	err = SendListenerFdOn(-1, 0, specs.ContainerProcessState{Fds: []string{"a", "b"}})
	if err == nil || !strings.Contains(err.Error(), "2 fds") {
		t.Fatalf("SendListenerFd with two fd names: %v", err)
	}
}
