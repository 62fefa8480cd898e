package cgroups

// Internals the external integration tests (package cgroups_test, which
// may import internal/testutil without an import cycle) read directly.
var (
	ReadKeyValues  = readKeyValues
	Exists         = exists
	OwnCgroups     = ownCgroups
	SystemdRunning = systemdRunning
)
