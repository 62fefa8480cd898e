// Package cgroups places containers in control groups and applies the
// resource limits of the OCI runtime spec, on cgroup v1 (including the hybrid
// layout) and on the unified cgroup v2 hierarchy.
//
// The runtime core uses only the Manager interface and the constructors in
// this file; everything version-specific stays behind it.
package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config names the cgroup of one container.
type Config struct {
	// Path is linux.cgroupsPath from config.json. Empty means the runtime's
	// default location for ID. With Systemd it is "slice:prefix:name".
	Path string
	// ID is the container id, used for the default path and systemd units.
	ID string
	// Systemd selects the systemd cgroup driver (runc's --systemd-cgroup).
	Systemd bool
	// Resources are the limits to apply; nil applies none.
	Resources *specs.LinuxResources
}

// FreezerState is the freezer state of a cgroup.
type FreezerState string

// Freezer states, as runc names them.
const (
	Thawed FreezerState = "THAWED"
	Frozen FreezerState = "FROZEN"
)

// Manager controls the cgroup(s) of one container.
type Manager interface {
	// Apply creates the cgroup(s) if needed and moves pid into them.
	Apply(pid int) error
	// Set applies resource limits (also used by `update`).
	Set(r *specs.LinuxResources) error
	// Freeze stops every process of the cgroup; Thaw resumes them.
	Freeze() error
	Thaw() error
	// State reports whether the cgroup is frozen.
	State() (FreezerState, error)
	// Pids lists every process in the cgroup (and its children on v1).
	Pids() ([]int, error)
	// Stats reads the current usage figures.
	Stats() (*Stats, error)
	// Destroy kills any remaining process (thawing frozen ones first) and
	// removes the cgroup directories. It succeeds when they are already gone.
	Destroy() error
	// Paths returns what the runtime stores in its state to find the cgroup
	// again with FromPaths; keys are controller names ("" for v2's unified).
	Paths() map[string]string
}

// Stats holds usage figures in the shape runc reports them in `events --stats`.
type Stats struct{}
