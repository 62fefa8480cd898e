package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// UnifiedMountpoint is where the cgroup2 hierarchy sits in unified mode.
const UnifiedMountpoint = "/sys/fs/cgroup"

var (
	v2Once sync.Once
	v2     bool
)

// IsV2 reports whether the host runs the unified cgroup v2 hierarchy only
// (cgroup2 mounted on /sys/fs/cgroup). A hybrid host, with the v1
// controllers under /sys/fs/cgroup/<ctrl> and an empty cgroup2 under
// /sys/fs/cgroup/unified, is v1 for resource control, as runc sees it.
func IsV2() bool {
	v2Once.Do(func() {
		var st unix.Statfs_t
		if err := unix.Statfs(UnifiedMountpoint, &st); err == nil {
			v2 = st.Type == unix.CGROUP2_SUPER_MAGIC
		}
	})
	return v2
}

// v1Mount is one mounted cgroup v1 hierarchy.
type v1Mount struct {
	Mountpoint string
	// Root is the cgroup path of the mount's root inside the hierarchy
	// (not "/" when the host's /sys/fs/cgroup was set up in a cgroup
	// namespace or bind-mounted from a subtree).
	Root string
}

// v1Mounts maps each v1 controller (and named hierarchy such as
// "name=systemd") to its mount.
func v1Mounts() (map[string]v1Mount, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	out := map[string]v1Mount{}
	for _, mi := range infos {
		for _, opt := range strings.Split(mi.VFSOptions, ",") {
			if knownV1Controller(opt) || strings.HasPrefix(opt, "name=") {
				if _, dup := out[opt]; !dup {
					out[opt] = v1Mount{Mountpoint: mi.Mountpoint, Root: mi.Root}
				}
			}
		}
	}
	return out, nil
}

// v1Controllers are the cgroup v1 controllers this package manages.
var v1Controllers = []string{
	"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
	"net_prio", "perf_event", "hugetlb", "pids", "blkio", "rdma", "misc",
}

func knownV1Controller(name string) bool {
	for _, c := range v1Controllers {
		if c == name {
			return true
		}
	}
	return false
}

// ownCgroups parses /proc/self/cgroup: controller (or "" for the unified
// hierarchy, or "name=x") -> cgroup path.
func ownCgroups() (map[string]string, error) {
	return parseProcCgroup("/proc/self/cgroup")
}

func parseProcCgroup(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	return out, nil
}

// cleanPath makes p safe to join under a mount point: it can never climb
// above "/" (or above "." for relative paths).
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	p = filepath.Clean(p)
	if !filepath.IsAbs(p) {
		p = filepath.Clean(string(os.PathSeparator) + p)
		// Keep it relative: the caller resolves it against its own cgroup.
		rel, err := filepath.Rel(string(os.PathSeparator), p)
		if err != nil {
			return "."
		}
		return rel
	}
	return p
}
