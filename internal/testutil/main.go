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
	code := m.Run()
	lock.Close()
	os.Exit(code)
}
