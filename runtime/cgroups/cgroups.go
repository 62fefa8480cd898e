// Package cgroups places containers in control groups and applies the
// resource limits of the OCI runtime spec, on cgroup v1 (including the hybrid
// layout) and on the unified cgroup v2 hierarchy.
//
// The runtime core uses only the Manager interface and the constructors in
// this file; everything version-specific stays behind it.
package cgroups

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

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
	// OOM delivers one "oom" event each time the memory controller hits the
	// cgroup's limit and the OOM killer runs (or would run). The channel is
	// closed when ctx is done or the cgroup is removed.
	OOM(ctx context.Context) (<-chan string, error)
	// OOMCount is the number of OOM kills the kernel counted for the
	// cgroup so far: what an OOM channel delivers may lag behind it when
	// the container has just died of one.
	OOMCount() (uint64, error)
}

// ErrNotSupported marks a requested resource that this host's cgroup
// version or mounts cannot enforce; the error text names what is missing.
var ErrNotSupported = errors.New("not supported")

// New returns the Manager for c on this host's cgroup version. It creates
// nothing: Apply creates the cgroup.
func New(c Config) (Manager, error) {
	if c.Systemd {
		return newSystemd(c)
	}
	inner, err := innerPath(c)
	if err != nil {
		return nil, err
	}
	if IsV2() {
		return newV2(inner, c.Resources)
	}
	return newV1(inner, c.Resources)
}

// FromPaths finds a container's cgroup again from what its Manager's Paths
// returned (the runtime keeps that in state.json). The cgroup may already be
// gone; Destroy then succeeds and other methods report the missing files.
func FromPaths(paths map[string]string) (Manager, error) {
	if len(paths) == 0 {
		return nil, errors.New("cgroups: no cgroup paths recorded")
	}
	for k, p := range paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return nil, fmt.Errorf("cgroups: recorded path %q for %q is not a clean absolute path", p, k)
		}
	}
	if unified, ok := paths[""]; ok && len(paths) == 1 {
		return &v2Manager{path: unified}, nil
	}
	if _, ok := paths[""]; ok {
		return nil, errors.New("cgroups: recorded paths mix the unified hierarchy and v1 controllers")
	}
	m := &v1Manager{paths: map[string]string{}}
	for k, p := range paths {
		m.paths[k] = p
	}
	return m, nil
}

// innerPath is the cgroup path of c below the hierarchy root (absolute) or
// below the runtime's own cgroup (relative), as runc resolves
// linux.cgroupsPath: empty means a cgroup named after the container id next
// to the runtime, inside the runtime's own cgroup.
func innerPath(c Config) (string, error) {
	if c.Path != "" {
		p := cleanPath(c.Path)
		if p == "/" || p == "." {
			return "", fmt.Errorf("cgroups: cgroupsPath %q names a hierarchy root, not a container cgroup", c.Path)
		}
		return p, nil
	}
	if c.ID == "" {
		return "", errors.New("cgroups: neither cgroupsPath nor container id given")
	}
	p := cleanPath(c.ID)
	if p == "." || p != c.ID {
		return "", fmt.Errorf("cgroups: container id %q is not usable as a cgroup name", c.ID)
	}
	return p, nil
}

// Stats holds usage figures in the shape runc reports them in
// `events --stats` (runc's types/events.go): the JSON field names are
// runc's, so tools that parse runc's output parse ours.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	CPUSet  CPUSet             `json:"cpuset"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// CPU is CPU time and CFS throttling.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
}

// CPUUsage is CPU time in nanoseconds.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// Throttling is cpu.stat's CFS bandwidth figures (time in nanoseconds).
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUSet is the cpuset in effect.
type CPUSet struct {
	CPUs []uint16 `json:"cpus,omitempty"`
	Mems []uint16 `json:"mems,omitempty"`
}

// MemoryEntry is one memory counter with its limit, peak and failure count.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory is the memory controller's usage; Raw is memory.stat verbatim.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

// Pids is the number of tasks and the pids limit (0: unlimited).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one per-device, per-operation counter.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio is block I/O accounting, recursive over the cgroup's subtree.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
}

// Hugetlb is one huge page size's usage.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}
