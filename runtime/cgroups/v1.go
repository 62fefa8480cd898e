package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Manager manages one container's cgroups on the v1 hierarchies: one
// directory per mounted controller (co-mounted controllers share one).
type v1Manager struct {
	paths map[string]string // controller or "name=systemd" -> directory
	res   *specs.LinuxResources
}

func newV1(inner string, res *specs.LinuxResources) (*v1Manager, error) {
	mounts, err := v1Mounts()
	if err != nil {
		return nil, err
	}
	var own map[string]string
	if !filepath.IsAbs(inner) {
		if own, err = ownCgroups(); err != nil {
			return nil, err
		}
	}
	m := &v1Manager{paths: map[string]string{}, res: res}
	for ctrl, mnt := range mounts {
		// Named hierarchies other than systemd's track nothing we own.
		if strings.HasPrefix(ctrl, "name=") && ctrl != "name=systemd" {
			continue
		}
		if filepath.IsAbs(inner) {
			m.paths[ctrl] = filepath.Join(mnt.Mountpoint, inner)
			continue
		}
		base, ok := own[ctrl]
		if !ok {
			continue // mounted but we are not in it (another namespace)
		}
		// /proc/self/cgroup paths are relative to the hierarchy root; the
		// mount may show a subtree of it.
		rel := base
		if mnt.Root != "/" {
			if rel != mnt.Root && !strings.HasPrefix(rel, mnt.Root+"/") {
				return nil, fmt.Errorf("cgroups: own %s cgroup %s is outside the mounted subtree %s", ctrl, base, mnt.Root)
			}
			rel = strings.TrimPrefix(rel, mnt.Root)
		}
		m.paths[ctrl] = filepath.Join(mnt.Mountpoint, rel, inner)
	}
	if len(m.paths) == 0 {
		return nil, errors.New("cgroups: no cgroup v1 controller is mounted")
	}
	return m, nil
}

// Paths implements Manager.
func (m *v1Manager) Paths() map[string]string {
	out := make(map[string]string, len(m.paths))
	for k, v := range m.paths {
		out[k] = v
	}
	return out
}

// controllers returns the managed controllers in a stable order.
func (m *v1Manager) controllers() []string {
	cs := make([]string, 0, len(m.paths))
	for c := range m.paths {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// dirs returns the distinct directories (co-mounted controllers share one).
func (m *v1Manager) dirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range m.controllers() {
		if d := m.paths[c]; !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// Apply implements Manager: it creates every controller's directory,
// applies the Config's resources and then moves pid in, so that the limits
// hold before the process runs anything. A pid <= 0 only creates.
func (m *v1Manager) Apply(pid int) error {
	for _, c := range m.controllers() {
		var err error
		if c == "cpuset" {
			err = mkdirCpuset(m.paths[c])
		} else {
			err = os.MkdirAll(m.paths[c], 0o755)
		}
		if err != nil {
			return fmt.Errorf("cgroups: create %s cgroup: %w", c, err)
		}
	}
	if m.res != nil {
		if err := m.Set(m.res); err != nil {
			return err
		}
	}
	if pid <= 0 {
		return nil
	}
	for _, d := range m.dirs() {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("cgroups: join pid %d: %w", pid, err)
		}
	}
	return nil
}

// mkdirCpuset creates dir and any missing parent below the cpuset mount,
// filling each new cgroup's cpuset.cpus and cpuset.mems from its parent:
// a v1 cpuset cgroup starts empty and refuses tasks until both are set.
func mkdirCpuset(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			return fmt.Errorf("no cpuset mount above %s", dir)
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := readFile(d, f)
			if err != nil {
				return err
			}
			if strings.TrimSpace(cur) != "" {
				continue
			}
			parent, err := readFile(filepath.Dir(d), f)
			if err != nil {
				return err
			}
			if err := writeFile(d, f, strings.TrimSpace(parent)); err != nil {
				return err
			}
		}
	}
	return nil
}

// features probes the files the v1 plan depends on.
func (m *v1Manager) features(r *specs.LinuxResources) hostFeatures {
	var f hostFeatures
	if d, ok := m.paths["memory"]; ok {
		f.swap = exists(d, "memory.memsw.limit_in_bytes")
		if v, err := readUint(d, "memory.limit_in_bytes"); err == nil {
			f.curMemLimit = v
		}
	}
	if d, ok := m.paths["blkio"]; ok {
		f.bfq = !exists(d, "blkio.weight") && exists(d, "blkio.bfq.weight")
	}
	if d, ok := m.paths["hugetlb"]; ok && len(r.HugepageLimits) > 0 {
		f.hugeRsvd = exists(d, "hugetlb."+r.HugepageLimits[0].Pagesize+".rsvd.limit_in_bytes")
	}
	return f
}

// Set implements Manager.
func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	plan, err := planV1(r, m.features(r))
	if err != nil {
		return err
	}
	for _, w := range plan {
		if _, ok := m.paths[w.ctrl]; !ok {
			return fmt.Errorf("cgroups: %s needs the %s controller, which is not mounted on this host: %w", w.file, w.ctrl, ErrNotSupported)
		}
	}
	if mem := r.Memory; mem != nil && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && mem.Limit != nil && *mem.Limit > 0 {
		usage, err := readUint(m.paths["memory"], "memory.usage_in_bytes")
		if err != nil {
			return err
		}
		if usage >= uint64(*mem.Limit) {
			return fmt.Errorf("cgroups: memory usage %d is not below the new limit %d (checkBeforeUpdate)", usage, *mem.Limit)
		}
	}
	return runPlan(plan, func(ctrl string) string { return m.paths[ctrl] })
}

// runPlan performs the writes in order; writes marked retry that fail are
// tried once more at the end.
func runPlan(plan []write, dirOf func(ctrl string) string) error {
	var again []write
	for _, w := range plan {
		err := writeFile(dirOf(w.ctrl), w.file, w.value)
		if err == nil {
			continue
		}
		if w.retry {
			again = append(again, w)
			continue
		}
		return explainWriteError(w, err)
	}
	for _, w := range again {
		if err := writeFile(dirOf(w.ctrl), w.file, w.value); err != nil {
			return explainWriteError(w, err)
		}
	}
	return nil
}

func explainWriteError(w write, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cgroups: %s is not available on this kernel or hierarchy (%w): %w", w.file, err, ErrNotSupported)
	}
	return err
}

// Freeze implements Manager. The v1 freezer can stay in FREEZING while
// tasks fork; like runc we keep asking and, now and then, thaw and retry.
func (m *v1Manager) Freeze() error {
	d, ok := m.paths["freezer"]
	if !ok {
		return fmt.Errorf("cgroups: the freezer controller is not mounted: %w", ErrNotSupported)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if i > 0 && i%50 == 0 {
			if err := writeFile(d, "freezer.state", string(Thawed)); err != nil {
				return err
			}
		}
		if err := writeFile(d, "freezer.state", string(Frozen)); err != nil {
			return err
		}
		s, err := readFile(d, "freezer.state")
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) == string(Frozen) {
			return nil
		}
		if time.Now().After(deadline) {
			_ = writeFile(d, "freezer.state", string(Thawed)) // best effort: do not leave it half frozen
			return fmt.Errorf("cgroups: %s did not freeze (state %s)", d, strings.TrimSpace(s))
		}
		time.Sleep(time.Duration(1+i%10) * time.Millisecond)
	}
}

// Thaw implements Manager.
func (m *v1Manager) Thaw() error {
	d, ok := m.paths["freezer"]
	if !ok {
		return fmt.Errorf("cgroups: the freezer controller is not mounted: %w", ErrNotSupported)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := writeFile(d, "freezer.state", string(Thawed)); err != nil {
			return err
		}
		s, err := readFile(d, "freezer.state")
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) == string(Thawed) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: %s did not thaw (state %s)", d, strings.TrimSpace(s))
		}
		time.Sleep(time.Millisecond)
	}
}

// State implements Manager; FREEZING reads as not frozen.
func (m *v1Manager) State() (FreezerState, error) {
	d, ok := m.paths["freezer"]
	if !ok {
		return Thawed, nil
	}
	s, err := readFile(d, "freezer.state")
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == string(Frozen) {
		return Frozen, nil
	}
	return Thawed, nil
}

// procsDir is the directory whose cgroup.procs lists the container's
// processes: every controller holds all of them, the freezer is preferred
// because Destroy freezes it.
func (m *v1Manager) procsDir() string {
	for _, c := range []string{"freezer", "pids", "memory", "devices", "cpu", "name=systemd"} {
		if d, ok := m.paths[c]; ok {
			return d
		}
	}
	return m.dirs()[0]
}

// Pids implements Manager.
func (m *v1Manager) Pids() ([]int, error) {
	return readProcsRecursive(m.procsDir())
}

// Destroy implements Manager.
func (m *v1Manager) Destroy() error {
	d := m.procsDir()
	if _, err := os.Stat(d); err == nil {
		_, hasFreezer := m.paths["freezer"]
		if err := killAll(d, hasFreezer, m.Freeze, m.Thaw); err != nil {
			return err
		}
	}
	var errs []error
	for _, dir := range m.dirs() {
		if err := removeTree(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAll kills every process of the cgroup tree at dir and waits until
// the tree is empty. Frozen processes do not die until thawed and forking
// ones can escape a one-shot kill, so each round freezes, kills what is
// there and thaws.
func killAll(dir string, canFreeze bool, freeze, thaw func() error) error {
	deadline := time.Now().Add(60 * time.Second)
	for round := 0; ; round++ {
		frozen := false
		if canFreeze {
			frozen = freeze() == nil
		}
		pids, err := readProcsRecursive(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			if frozen {
				_ = thaw() // best effort before reporting the read error
			}
			return err
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				if frozen {
					_ = thaw()
				}
				return fmt.Errorf("cgroups: kill %d: %w", pid, err)
			}
		}
		if canFreeze {
			// Always thaw, even if freezing failed half-way: a frozen
			// task never handles its SIGKILL.
			if err := thaw(); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: processes %v of %s survive SIGKILL", pids, dir)
		}
		time.Sleep(time.Duration(min(round+1, 20)) * time.Millisecond)
	}
}

// removeTree removes dir and its child cgroups, retrying while the kernel
// still reports dying tasks (EBUSY) until a deadline; a missing dir is done.
func removeTree(dir string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var lastErr error
		for _, d := range subdirsDeepestFirst(dir) {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				lastErr = err
			}
		}
		if lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: remove %s: %w", dir, lastErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
