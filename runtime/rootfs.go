package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// fdPath names an open file by descriptor, so that a mount lands on the
// very inode that was resolved inside the root, never on whatever a path
// points to a moment later (CVE-2021-30465).
func fdPath(f *os.File) string {
	return "/proc/thread-self/fd/" + strconv.Itoa(int(f.Fd()))
}

// ensureInRoot resolves p inside root, creating it (a directory, or an empty
// file when file is true) and its parents when missing.
func ensureInRoot(root *os.File, p string, file bool) (*os.File, error) {
	h, err := openInRoot(root, p)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	clean := path.Clean("/" + p)
	if !file {
		return mkdirAllInRoot(root, clean)
	}
	parent, err := mkdirAllInRoot(root, path.Dir(clean))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), path.Base(clean), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	if err == nil {
		unix.Close(fd)
	}
	return openInRoot(root, clean)
}

// mountAt resolves dest inside root (creating it), runs do on the fd path of
// the resolved target, then applies propagation flags to the new mount.
func mountAt(root *os.File, dest string, file bool, do func(target string) error) error {
	h, err := ensureInRoot(root, dest, file)
	if err != nil {
		return fmt.Errorf("mount point %s: %w", dest, err)
	}
	defer h.Close()
	return do(fdPath(h))
}

// reopenTop returns a handle on the topmost mount at dest, for changes to a
// mount just made there (the old handle still names the covered inode).
func reopenTop(root *os.File, dest string) (*os.File, error) {
	return openInRoot(root, dest)
}

// lockedFlags returns the flags of the mount holding f that an unprivileged
// remount may not clear (they are locked in a user namespace).
func lockedFlags(f *os.File) uintptr {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return 0
	}
	var out uintptr
	for _, p := range []struct{ st, ms uintptr }{
		{unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
		{unix.ST_RDONLY, unix.MS_RDONLY},
	} {
		if uintptr(st.Flags)&p.st != 0 {
			out |= p.ms
		}
	}
	return out
}

// setupRootfs mounts the spec's mounts into the root filesystem, creates the
// device nodes and links, and makes the root a mount point fit for
// pivot_root. It runs in the container's mount namespace, before pivot.
func setupRootfs(cfg *initConfig) error {
	spec := cfg.Spec
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := spec.Linux.RootfsPropagation; p != "" {
		f, ok := propagationFlag(p)
		if !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown value %q", p)
		}
		prop = f
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	// pivot_root refuses a new root whose parent mount is shared.
	if err := makeParentPrivate(cfg.Rootfs); err != nil {
		return err
	}
	if err := unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind root %s: %w", cfg.Rootfs, err)
	}
	root, err := os.OpenFile(cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root %s: %w", cfg.Rootfs, err)
	}
	defer root.Close()

	cgroupPaths, err := ownCgroups()
	if err != nil {
		return err
	}
	devBound := false
	for i, m := range spec.Mounts {
		if err := mountOne(root, cfg, m, cgroupPaths); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Source, m.Destination, err)
		}
		if path.Clean(m.Destination) == "/dev" && parseMountOptions(m.Options).bind {
			devBound = true
		}
	}
	if !devBound {
		if err := setupDev(root, cfg); err != nil {
			return err
		}
	}
	return nil
}

// makeParentPrivate makes the mount that holds dir private.
func makeParentPrivate(dir string) error {
	mp, err := mountPointOf(dir)
	if err != nil {
		return err
	}
	if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mp, err)
	}
	return nil
}

// mountPointOf finds the mount point under which dir lives.
func mountPointOf(dir string) (string, error) {
	mi, err := readMountinfo()
	if err != nil {
		return "", err
	}
	return mountPointIn(mi, dir), nil
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mountOne(root *os.File, cfg *initConfig, m specs.Mount, cgroupPaths map[string]string) error {
	mo := parseMountOptions(m.Options)
	typ := m.Type
	if typ == "" && mo.bind {
		typ = "bind"
	}
	switch typ {
	case "bind":
		mo.bind = true
	case "cgroup", "cgroup2":
		return mountCgroups(root, m, mo, cgroupPaths, cfg.NewCgroupNS)
	}
	if mo.bind {
		return bindMount(root, cfg.Bundle, m, mo)
	}
	flags := mo.flags
	copyUp := mo.copyUp && typ == "tmpfs"
	if copyUp {
		flags &^= unix.MS_RDONLY // until the copy is done
	}
	var below *os.File
	err := mountAt(root, m.Destination, false, func(target string) error {
		if copyUp {
			// Keep the covered directory open to copy from it.
			var err error
			if below, err = os.Open(target); err != nil {
				return err
			}
		}
		return unix.Mount(m.Source, target, typ, flags, mo.dataString())
	})
	if below != nil {
		defer below.Close()
	}
	if err != nil {
		return err
	}
	if copyUp {
		top, err := reopenTop(root, m.Destination)
		if err != nil {
			return err
		}
		defer top.Close()
		dst, err := os.Open(fdPath(top))
		if err != nil {
			return err
		}
		err = copyTree(below, dst)
		dst.Close()
		if err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		if mo.flags&unix.MS_RDONLY != 0 {
			if err := unix.Mount("", fdPath(top), "", mo.flags|unix.MS_REMOUNT, mo.dataString()); err != nil {
				return fmt.Errorf("remount read-only: %w", err)
			}
		}
	}
	return applyPropagation(root, m.Destination, mo)
}

func applyPropagation(root *os.File, dest string, mo mountOptions) error {
	if len(mo.propagate) == 0 {
		return nil
	}
	top, err := reopenTop(root, dest)
	if err != nil {
		return err
	}
	defer top.Close()
	for _, p := range mo.propagate {
		if err := unix.Mount("", fdPath(top), "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

func bindMount(root *os.File, bundle string, m specs.Mount, mo mountOptions) error {
	src, isFile, bflags, err := bindSource(bundle, m, mo)
	if err != nil {
		return err
	}
	if err := mountAt(root, m.Destination, isFile, func(target string) error {
		return unix.Mount(src, target, "", bflags, "")
	}); err != nil {
		return err
	}
	// A bind mount ignores other flags: apply them with a remount, keeping
	// the flags the source mount has locked.
	extra := mo.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if extra != 0 || mo.clear != 0 {
		top, err := reopenTop(root, m.Destination)
		if err != nil {
			return err
		}
		defer top.Close()
		flags := (lockedFlags(top) &^ mo.clear) | extra | unix.MS_BIND | unix.MS_REMOUNT
		if err := unix.Mount("", fdPath(top), "", flags, ""); err != nil {
			return fmt.Errorf("remount bind with %v: %w", m.Options, err)
		}
	}
	return applyPropagation(root, m.Destination, mo)
}

// ownCgroups reads the init's cgroup of each hierarchy from
// /proc/self/cgroup (before a cgroup namespace hides the host paths).
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		out[parts[1]] = parts[2]
	}
	return out, s.Err()
}

// cgroupMount is one cgroup hierarchy mounted on the host.
type cgroupMount struct {
	mountPoint string
	fstype     string // cgroup or cgroup2
	options    string // the controllers / name= of a v1 hierarchy
	root       string // the hierarchy path the host mount shows
}

func hostCgroupMounts() ([]cgroupMount, error) {
	mi, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	return cgroupMountsIn(mi), nil
}

// cgroupStep is one step of giving a container its cgroup hierarchies:
// the Go init runs them (mountCgroups), the C init gets them as plan
// operations (planCgroups).
type cgroupStep struct {
	kind  int
	dest  string // inside the root
	src   string // mount source, or symlink target
	flags uintptr
	// fstype and data of a mount; data of a remount.
	fstype, data string
	// keepLocked: a remount adds the flags the mount has locked.
	keepLocked bool
	what       string // for errors
}

const (
	stepMount = iota
	stepRemount
	stepSymlink
)

// cgroupSteps gives the container its cgroup hierarchies at
// m.Destination: on a v2 host one cgroup2 mount; on v1 (and hybrid) a
// tmpfs holding one mount per hierarchy. With a cgroup namespace the
// kernel shows the container's cgroup as the root; without one the
// container's own cgroup directory is bind-mounted. own is the init's
// cgroup per hierarchy (/proc/PID/cgroup).
func cgroupSteps(m specs.Mount, mo mountOptions, hostMounts []cgroupMount, own map[string]string, cgroupNS bool) []cgroupStep {
	ro := mo.flags & unix.MS_RDONLY
	flags := (mo.flags &^ unix.MS_RDONLY) | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	unified := len(hostMounts) == 1 && hostMounts[0].fstype == "cgroup2" || m.Type == "cgroup2"
	if unified {
		var hm *cgroupMount
		for i := range hostMounts {
			if hostMounts[i].fstype == "cgroup2" {
				hm = &hostMounts[i]
			}
		}
		if cgroupNS || hm == nil {
			return []cgroupStep{{kind: stepMount, dest: m.Destination, src: "cgroup2", fstype: "cgroup2", flags: flags | ro}}
		}
		return []cgroupStep{{kind: stepMount, dest: m.Destination, src: filepath.Join(hm.mountPoint, relCgroup(own[""], hm.root)), flags: unix.MS_BIND | unix.MS_REC | ro}}
	}
	steps := []cgroupStep{{kind: stepMount, dest: m.Destination, src: "tmpfs", fstype: "tmpfs", flags: flags, data: "mode=755"}}
	for _, hm := range hostMounts {
		name := filepath.Base(hm.mountPoint)
		dest := path.Join(m.Destination, name)
		what := "cgroup hierarchy " + name
		key := hm.options
		if hm.fstype == "cgroup2" {
			key = ""
		}
		if cgroupNS {
			steps = append(steps, cgroupStep{kind: stepMount, dest: dest, src: "cgroup", fstype: hm.fstype, flags: flags | ro, data: hm.options, what: what})
		} else {
			steps = append(steps, cgroupStep{kind: stepMount, dest: dest, src: filepath.Join(hm.mountPoint, relCgroup(own[key], hm.root)), flags: unix.MS_BIND | unix.MS_REC, what: what})
			if ro != 0 {
				steps = append(steps, cgroupStep{kind: stepRemount, dest: dest, flags: unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY, keepLocked: true, what: "remount " + what + " read-only"})
			}
		}
		// cpu,cpuacct style hierarchies are also reachable by each name.
		if strings.Contains(name, ",") {
			for _, alias := range strings.Split(name, ",") {
				steps = append(steps, cgroupStep{kind: stepSymlink, dest: path.Join(m.Destination, alias), src: name})
			}
		}
	}
	if ro != 0 {
		steps = append(steps, cgroupStep{kind: stepRemount, dest: m.Destination, flags: unix.MS_REMOUNT | unix.MS_RDONLY | flags, data: "mode=755", what: "remount " + m.Destination + " read-only"})
	}
	return steps
}

// mountCgroups runs cgroupSteps in the Go init.
func mountCgroups(root *os.File, m specs.Mount, mo mountOptions, own map[string]string, cgroupNS bool) error {
	hostMounts, err := hostCgroupMounts()
	if err != nil {
		return err
	}
	for _, st := range cgroupSteps(m, mo, hostMounts, own, cgroupNS) {
		switch st.kind {
		case stepMount:
			err = mountAt(root, st.dest, false, func(target string) error {
				return unix.Mount(st.src, target, st.fstype, st.flags, st.data)
			})
		case stepRemount:
			err = remountAt(root, st.dest, st.flags, st.data, st.keepLocked)
		case stepSymlink:
			err = symlinkInRoot(root, st.src, st.dest)
		}
		if err != nil && st.what != "" {
			return fmt.Errorf("%s: %w", st.what, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// remountAt remounts the topmost mount at dest with flags (and, with
// keepLocked, the flags that mount has locked).
func remountAt(root *os.File, dest string, flags uintptr, data string, keepLocked bool) error {
	top, err := reopenTop(root, dest)
	if err != nil {
		return err
	}
	defer top.Close()
	if keepLocked {
		flags |= lockedFlags(top)
	}
	return unix.Mount("", fdPath(top), "", flags, data)
}

// relCgroup makes a /proc/self/cgroup path relative to what the host mount
// of that hierarchy shows.
func relCgroup(p, mountRoot string) string {
	if mountRoot != "/" {
		p = strings.TrimPrefix(p, mountRoot)
	}
	return strings.TrimPrefix(p, "/")
}

// symlinkInRoot creates link → target inside root; an existing entry is
// left alone.
func symlinkInRoot(root *os.File, target, link string) error {
	clean := path.Clean("/" + link)
	parent, err := mkdirAllInRoot(root, path.Dir(clean))
	if err != nil {
		return fmt.Errorf("symlink %s: %w", link, err)
	}
	defer parent.Close()
	if err := unix.Symlinkat(target, int(parent.Fd()), path.Base(clean)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("symlink %s: %w", link, err)
	}
	return nil
}
