package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/internal/proctree"
)

// Resources is what a test could leave behind on the host.
type Resources struct {
	Mounts    []string // mount points from /proc/self/mountinfo
	Cgroups   []string // cgroup directories under /sys/fs/cgroup
	Processes []string // "pid comm" of processes
	Links     []string // network interfaces of the host namespace
	StateDirs []string // entries of the runtime state roots passed to TakeSnapshot
}

// TakeSnapshot records the host's mounts, cgroups, processes and links and
// the entries of the given state roots.
func TakeSnapshot(t testing.TB, stateRoots ...string) Resources {
	t.Helper()
	var r Resources
	r.Mounts = mountPoints()
	r.Cgroups = cgroupDirs()
	r.Processes = processes()
	r.Links = links()
	for _, root := range stateRoots {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			// "@" names the runtime's caches (e.g. compiled seccomp
			// filters), never a container: container ids cannot hold it.
			if strings.HasPrefix(e.Name(), "@") {
				continue
			}
			r.StateDirs = append(r.StateDirs, filepath.Join(root, e.Name()))
		}
	}
	return r
}

// CheckLeaks registers a cleanup that fails t when, at the end of the test,
// mounts, cgroups, processes, links or state dirs exist that did not exist
// when CheckLeaks was called. Call it first, so that it runs last.
func CheckLeaks(t testing.TB, stateRoots ...string) {
	t.Helper()
	before := TakeSnapshot(t, stateRoots...)
	t.Cleanup(func() {
		var leaked []string
		check := func(kind string, was []string, now func() []string) {
			extra := diff(was, now())
			if len(extra) == 0 {
				return
			}
			// Processes and mounts of a killed container can take a moment
			// to disappear; wait for them rather than report a race.
			ok := false
			func() {
				defer func() { _ = recover() }()
				Eventually(quietT{}, kind, func() bool { extra = diff(was, now()); return len(extra) == 0 })
				ok = true
			}()
			if !ok {
				for _, e := range extra {
					leaked = append(leaked, kind+" "+e)
				}
			}
		}
		check("mount", before.Mounts, mountPoints)
		check("cgroup", before.Cgroups, cgroupDirs)
		check("process", before.Processes, processes)
		check("link", before.Links, links)
		check("state", before.StateDirs, func() []string { return TakeSnapshot(t, stateRoots...).StateDirs })
		if len(leaked) > 0 {
			t.Errorf("test leaked:\n  %s", strings.Join(leaked, "\n  "))
		}
	})
}

// quietT turns a Fatalf of Eventually into a panic that CheckLeaks recovers.
type quietT struct{ testing.TB }

func (quietT) Helper()                        {}
func (quietT) Fatalf(format string, a ...any) { panic("timeout") }

func diff(before, after []string) []string {
	seen := make(map[string]bool, len(before))
	for _, b := range before {
		seen[b] = true
	}
	var out []string
	for _, a := range after {
		if !seen[a] {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 {
			out = append(out, fields[4])
		}
	}
	return out
}

func cgroupDirs() []string {
	var out []string
	// Container cgroups sit a few levels down (e.g. memory/capsa/ID or
	// system.slice/...); walking further costs time and finds nothing new.
	for _, pattern := range []string{"/sys/fs/cgroup/*/*", "/sys/fs/cgroup/*/*/*", "/sys/fs/cgroup/*/*/*/*", "/sys/fs/cgroup/*"} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				out = append(out, p)
			}
		}
	}
	return out
}

// processes lists the processes that belong to containers or to capsa: those
// whose root is not the host's (a container's, after pivot_root) and those
// running a capsa binary (an init before pivot_root, a stuck runtime).
// Other packages' integration tests never run at the same time (Main holds
// a host-wide lock), so a new one after a test is that test's leak.
func processes() []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == os.Getpid() {
			continue
		}
		pid := e.Name()
		// Zombies are dead; their parent (a runtime, a shell) reaps them.
		if st, err := proctree.ReadStat(n); err != nil || st.State == 'Z' {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		cmd := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		root, err := os.Readlink("/proc/" + pid + "/root")
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a kernel thread
		}
		argv0 := filepath.Base(strings.SplitN(cmd, " ", 2)[0])
		if root != "/" || argv0 == "capsa" || argv0 == "capsa-runtime" {
			out = append(out, pid+" "+cmd)
		}
	}
	return out
}

func links() []string {
	entries, _ := os.ReadDir("/sys/class/net")
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
