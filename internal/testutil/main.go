package testutil

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Main is the TestMain of every package whose tests run real containers.
// It holds a host-wide lock so that two such packages never run at once
// (go test runs packages in parallel, and each one's leak check would see
// the other's containers).
func Main(m *testing.M) {
	lock, err := os.OpenFile(os.TempDir()+"/capsa-integration.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testutil: lock:", err)
		os.Exit(2)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		fmt.Fprintln(os.Stderr, "testutil: flock:", err)
		os.Exit(2)
	}
	cleanup := keepDefaultRoot()
	code := m.Run()
	cleanup()
	lock.Close()
	os.Exit(code)
}

// defaultRoot is capsa-runtime's state root when a caller passes no --root,
// as podman does.
const defaultRoot = "/run/capsa-runtime"

// keepDefaultRoot notes what the default state root holds and returns a
// function that removes what the tests added there beyond containers,
// which CheckLeaks reports: the runtime's seccomp cache ("@seccomp") and
// the root itself when the tests made it.
func keepDefaultRoot() func() {
	_, rootErr := os.Stat(defaultRoot)
	_, cacheErr := os.Stat(defaultRoot + "/@seccomp")
	return func() {
		if os.IsNotExist(cacheErr) {
			if err := os.RemoveAll(defaultRoot + "/@seccomp"); err != nil {
				fmt.Fprintln(os.Stderr, "testutil: remove seccomp cache:", err)
			}
		}
		if os.IsNotExist(rootErr) {
			_ = os.Remove(defaultRoot) // only when empty: a leaked container stays visible
		}
	}
}
