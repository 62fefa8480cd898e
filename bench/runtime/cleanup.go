package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/proctree"
)

// cleanup deletes every container the run still has, kills and reaps any
// process left below us, removes the run's cgroups and its temp dir. It runs
// after failures and cancellation too, and reports what it could not undo.
func (b *bench) cleanup() error {
	var errs []error
	for _, r := range b.rts {
		for _, c := range r.live {
			if err := b.forceDelete(r, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := b.killDescendants(); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroups(b.cgroupParent); err != nil {
		errs = append(errs, err)
	}
	for _, r := range b.rts {
		if r.out != nil {
			r.out.Close()
		}
	}
	if b.devnull != nil {
		b.devnull.Close()
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", b.dir, err))
	}
	return errors.Join(errs...)
}

// killDescendants SIGKILLs every process below this one and reaps them. A
// runtime that works leaves none; this is for the failures.
func (b *bench) killDescendants() error {
	deadline := time.Now().Add(opTimeout)
	for {
		b.sweep(nil, "")
		pids := proctree.Descendants(os.Getpid())
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still alive after SIGKILL: %v", pids)
		}
		for _, pid := range pids {
			// ESRCH: it exited meanwhile; anything else shows up next round.
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		// Polling for dying processes of a failed run, not a measurement.
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroups removes the run's parent cgroup in every v1 hierarchy. A
// container cgroup still there means a runtime's delete left it behind:
// that is reported (it is a runtime bug), then removed.
func removeCgroups(parent string) error {
	hierarchies, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		return err
	}
	var errs []error
	var leaked []string
	for _, h := range hierarchies {
		top := filepath.Join(h, parent)
		var st unix.Statfs_t
		if err := unix.Statfs(h, &st); err != nil {
			continue // not a directory, or gone
		}
		if st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC {
			// /sys/fs/cgroup/unified, unmounted in our namespace, is a plain
			// directory of the /sys/fs/cgroup tmpfs; crun still follows the
			// "0::" line of /proc/self/cgroup and writes its cgroup files
			// there. They sit hidden under the host's cgroup2 mount: remove.
			if err := os.RemoveAll(top); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		var dirs []string
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Children before parents.
		for i := len(dirs) - 1; i >= 0; i-- {
			if dirs[i] != top {
				leaked = append(leaked, dirs[i])
			}
			if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
			}
		}
	}
	if len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "warning: cgroups left behind by a runtime's delete (removed now):\n  %s\n", strings.Join(leaked, "\n  "))
	}
	return errors.Join(errs...)
}
