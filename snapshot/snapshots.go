package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Prepare makes the writable snapshot key over the layers chainIDs (bottom
// to top), which must be present. The snapshot's root directory takes the
// owner and mode of the top layer's root, since overlayfs shows the upper
// dir's for the merged root.
func (s *Snapshotter) Prepare(key string, chainIDs []string) error {
	sdir, err := s.snapshotDir(key)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var dirs []string
	for _, c := range chainIDs {
		if seen[c] {
			return fmt.Errorf("snapshot: prepare %s: layer %s listed twice", key, c)
		}
		seen[c] = true
		dir, lockPath, err := s.layerPaths(c)
		if err != nil {
			return err
		}
		// Checked before locking too, so that a missing layer leaves no
		// lock file behind.
		if ok, err := exists(dir); err != nil || !ok {
			return fmt.Errorf("snapshot: prepare %s: layer %s: %w", key, c, errOr(err, ErrNotFound))
		}
		// Shared: RemoveLayer (exclusive) waits until the snapshot is
		// recorded, and then sees it uses the layer.
		lk, err := lockFile(lockPath, unix.LOCK_SH)
		if err != nil {
			return fmt.Errorf("snapshot: prepare %s: lock layer %s: %w", key, c, err)
		}
		defer lk.Close()
		if ok, err := exists(dir); err != nil || !ok {
			return fmt.Errorf("snapshot: prepare %s: layer %s: %w", key, c, errOr(err, ErrNotFound))
		}
		if err := s.ensureLink(c, dir); err != nil {
			return err
		}
		dirs = append(dirs, dir)
	}
	if ok, err := exists(sdir); err != nil {
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	} else if ok {
		return fmt.Errorf("snapshot: prepare %s: %w", key, ErrExists)
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "snap-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	if err := buildSnapshot(tmp, chainIDs, dirs); err != nil {
		return errors.Join(fmt.Errorf("snapshot: prepare %s: %w", key, err), os.RemoveAll(tmp))
	}
	// Rename onto an existing non-empty dir fails: two Prepares of one key
	// cannot both win.
	if err := os.Rename(tmp, sdir); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			err = ErrExists
		}
		return errors.Join(fmt.Errorf("snapshot: prepare %s: %w", key, err), os.RemoveAll(tmp))
	}
	return nil
}

func buildSnapshot(tmp string, chainIDs, dirs []string) error {
	upper := filepath.Join(tmp, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		return err
	}
	if len(dirs) > 0 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dirs[len(dirs)-1], "diff"), &st); err != nil {
			return err
		}
		if err := os.Lchown(upper, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := unix.Chmod(upper, st.Mode&0o7777); err != nil {
			return err
		}
	} else if err := os.Mkdir(filepath.Join(tmp, "empty"), 0o755); err != nil {
		// overlayfs needs a lower dir: an image without layers gets an
		// empty one.
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, "work"), 0o700); err != nil {
		return err
	}
	content := strings.Join(chainIDs, "\n")
	if len(chainIDs) > 0 {
		content += "\n"
	}
	return os.WriteFile(filepath.Join(tmp, "lowers"), []byte(content), 0o600)
}

// lowers reads the chainIDs of snapshot key, bottom to top.
func (s *Snapshotter) lowers(key string) (string, []string, error) {
	sdir, err := s.snapshotDir(key)
	if err != nil {
		return "", nil, err
	}
	b, err := os.ReadFile(filepath.Join(sdir, "lowers"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("snapshot %s: %w", key, ErrNotFound)
		}
		return "", nil, fmt.Errorf("snapshot %s: %w", key, err)
	}
	return sdir, strings.Fields(string(b)), nil
}

// mountOptions builds the overlay options of snapshot key, with paths
// relative to the store root (the mount runs from there).
func (s *Snapshotter) mountOptions(key string) (string, error) {
	_, chainIDs, err := s.lowers(key)
	if err != nil {
		return "", err
	}
	var lower []string
	// overlayfs lists the top layer first.
	for i := len(chainIDs) - 1; i >= 0; i-- {
		dir, _, err := s.layerPaths(chainIDs[i])
		if err != nil {
			return "", err
		}
		id, err := readLinkID(dir)
		if err != nil {
			return "", fmt.Errorf("snapshot %s: layer %s: %w", key, chainIDs[i], err)
		}
		lower = append(lower, "l/"+id)
	}
	if len(lower) == 0 {
		lower = []string{"snapshots/" + key + "/empty"}
	}
	// index=off: layers are shared by many mounts and never change; the
	// inodes index would tie an upper dir to one set of lowers.
	opts := "lowerdir=" + strings.Join(lower, ":") +
		",upperdir=snapshots/" + key + "/upper,workdir=snapshots/" + key + "/work,index=off"
	if len(opts) >= os.Getpagesize() {
		return "", fmt.Errorf("snapshot %s: %d layers need %d bytes of mount options, more than the %d the kernel takes", key, len(chainIDs), len(opts), os.Getpagesize()-1)
	}
	return opts, nil
}

// Mount mounts snapshot key (overlayfs) on target, an existing directory.
// The mount source is the snapshot's directory, which is how Remove tells
// that a snapshot is mounted.
func (s *Snapshotter) Mount(key, target string) error {
	opts, err := s.mountOptions(key)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("snapshot: mount %s: %w", key, err)
	}
	source := filepath.Join(s.root, "snapshots", key)
	if err := mountFrom(s.root, source, abs, "overlay", opts); err != nil {
		return fmt.Errorf("snapshot: mount %s on %s: %w", key, abs, err)
	}
	return nil
}

// mountFrom runs mount(2) with dir as working directory, so that relative
// paths in the options resolve below dir. The working directory is
// process-wide in Go (threads share it), so the mount runs on a thread that
// unshared its fs attributes first and that dies with its goroutine (never
// unlocked), as containerd does for long lowerdir lists.
func mountFrom(dir, source, target, fstype, opts string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		errc <- unix.Mount(source, target, fstype, 0, opts)
	}()
	return <-errc
}

// Unmount unmounts target.
func (s *Snapshotter) Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("snapshot: unmount %s: %w", target, err)
		}
		return nil
	}
}

// mountpoints lists where snapshot key is mounted.
func (s *Snapshotter) mountpoints(key string) ([]string, error) {
	source := filepath.Join(s.root, "snapshots", key)
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.FSType != "overlay" || m.Source != source, false
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: read mountinfo: %w", err)
	}
	var out []string
	for _, m := range mounts {
		out = append(out, m.Mountpoint)
	}
	return out, nil
}

// Remove deletes snapshot key (its upper and work dirs). It refuses
// (ErrInUse) while the snapshot is mounted; an absent snapshot is no error.
func (s *Snapshotter) Remove(key string) error {
	sdir, err := s.snapshotDir(key)
	if err != nil {
		return err
	}
	if ok, err := exists(sdir); err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", key, err)
	} else if !ok {
		return nil
	}
	mps, err := s.mountpoints(key)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("snapshot: remove %s: %w: mounted on %s", key, ErrInUse, strings.Join(mps, ", "))
	}
	if err := s.removeDir(sdir); err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", key, err)
	}
	return nil
}

// Snapshots lists the snapshot keys.
func (s *Snapshotter) Snapshots() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: list snapshots: %w", err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// snapshotsUsing lists the snapshots stacked on layer chainID.
func (s *Snapshotter) snapshotsUsing(chainID string) ([]string, error) {
	keys, err := s.Snapshots()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		_, lowers, err := s.lowers(k)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // removed meanwhile
			}
			return nil, err
		}
		for _, l := range lowers {
			if l == chainID {
				out = append(out, k)
				break
			}
		}
	}
	return out, nil
}
