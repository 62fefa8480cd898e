package cgroups

import "golang.org/x/sys/unix"

// Internals the external integration tests (package cgroups_test, which
// may import internal/testutil without an import cycle) read directly.
var (
	ReadKeyValues  = readKeyValues
	Exists         = exists
	OwnCgroups     = ownCgroups
	SystemdRunning = systemdRunning
)

// DeviceFilterIDs lists the ids of the device filters (eBPF programs)
// attached to the v2 cgroup dir itself.
func DeviceFilterIDs(dir string) ([]uint32, error) {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return bpfProgQuery(fd, unix.BPF_CGROUP_DEVICE)
}
