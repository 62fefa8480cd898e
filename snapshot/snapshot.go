// Package snapshot keeps unpacked image layers and the writable container
// snapshots stacked on them with overlayfs.
//
// Each layer is unpacked once, into its own directory, and shared read-only
// as an overlay lower dir by every image and container using it; a snapshot
// is an upper and a work dir over a list of layers. Layers appear atomically
// (unpacked in a temp dir, renamed into place) and exactly once even when
// several processes pull the same image (a flock per layer). Mount options
// name layers by short links (l/ID, as Docker's overlay2 does) relative to
// the store root, and the mount runs from a thread chdir'ed there, so images
// of a few hundred layers fit the one-page limit on mount options.
//
// Layout under the root (docs/snapshots.md has the full story):
//
//	layers/<algorithm>/<hex>/diff    a committed layer (lower dir)
//	layers/<algorithm>/<hex>/link    its short link ID
//	layers/<algorithm>/<hex>/parent  its parent chainID ("" for a base layer)
//	l/<ID> -> ../layers/<algorithm>/<hex>/diff
//	snapshots/<key>/upper, work      a writable snapshot
//	snapshots/<key>/lowers           its chainIDs, bottom to top, one a line
//	locks/<algorithm>-<hex>.lock     flock of one layer
//	tmp/                             unpacks and removals in progress
package snapshot

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Errors matched with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInUse    = errors.New("in use")
)

// Snapshotter manages layers and snapshots under one root directory. It
// holds no state in memory: several processes may use the same root.
type Snapshotter struct {
	root string
	// NoSync skips the syncfs that makes a layer durable before it is
	// committed. Only for stores that do not survive a crash anyway.
	NoSync bool
}

// New opens (creating it if needed) the store at root and clears what
// crashed operations left in its tmp dir.
func New(root string) (*Snapshotter, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	s := &Snapshotter{root: abs}
	for _, d := range []string{"", "layers", "l", "snapshots", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshot: create store: %w", err)
		}
	}
	if err := s.sweepTmp(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root is the store's directory.
func (s *Snapshotter) Root() string { return s.root }

// layerPaths validates chainID and returns its layer dir and lock file.
func (s *Snapshotter) layerPaths(chainID string) (dir, lock string, err error) {
	d, err := digest.Parse(chainID)
	if err != nil {
		return "", "", fmt.Errorf("snapshot: chainID %q: %w", chainID, err)
	}
	alg, hex := string(d.Algorithm()), d.Encoded()
	return filepath.Join(s.root, "layers", alg, hex), filepath.Join(s.root, "locks", alg+"-"+hex+".lock"), nil
}

// LayerDir is the directory holding the content of layer chainID (whether
// or not it is present).
func (s *Snapshotter) LayerDir(chainID string) (string, error) {
	dir, _, err := s.layerPaths(chainID)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "diff"), nil
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// snapshotDir validates key: it appears in mount options and paths, so it
// is restricted to [A-Za-z0-9_.-], at most 128 characters, no leading dot.
func (s *Snapshotter) snapshotDir(key string) (string, error) {
	if !keyRE.MatchString(key) {
		return "", fmt.Errorf("snapshot: invalid key %q (want 1-128 of [A-Za-z0-9_.-], not starting with '.' '_' '-')", key)
	}
	return filepath.Join(s.root, "snapshots", key), nil
}

func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// EnsureLayer makes the committed layer dir for chainID (parent "" for the
// base) exactly once: concurrent callers wait (also across processes:
// flock); unpack is called with a temp dir that is renamed into place on
// success. The parent, when given, must be present already.
func (s *Snapshotter) EnsureLayer(chainID, parent string, unpack func(dir string) error) error {
	dir, lockPath, err := s.layerPaths(chainID)
	if err != nil {
		return err
	}
	if parent != "" {
		pdir, _, err := s.layerPaths(parent)
		if err != nil {
			return err
		}
		if ok, err := exists(pdir); err != nil || !ok {
			return fmt.Errorf("snapshot: layer %s: parent %s: %w", chainID, parent, errOr(err, ErrNotFound))
		}
	}
	// Fast path under a shared lock, so that a concurrent RemoveLayer
	// cannot delete the layer between the check and the link repair.
	if ok, err := s.present(chainID, dir, lockPath); err != nil || ok {
		return err
	}
	lk, err := lockFile(lockPath, unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("snapshot: lock layer %s: %w", chainID, err)
	}
	defer lk.Close()
	// Another caller may have committed it while we waited.
	if ok, err := exists(dir); err != nil {
		return fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	} else if ok {
		return s.ensureLink(chainID, dir)
	}
	tmp := filepath.Join(s.root, "tmp", "unpack-"+filepath.Base(lockPath[:len(lockPath)-len(".lock")]))
	// Left by a crashed unpack of this layer; the lock says nobody uses it.
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("snapshot: clear stale unpack of %s: %w", chainID, err)
	}
	if err := s.buildLayer(tmp, parent, unpack); err != nil {
		if rmErr := os.RemoveAll(tmp); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove partial layer: %w", rmErr))
		}
		// No layer, no lock file (a waiter notices and makes a new one).
		return errors.Join(fmt.Errorf("snapshot: layer %s: %w", chainID, err), lk.remove())
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("snapshot: commit layer %s: %w", chainID, err)
	}
	if !s.NoSync {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("snapshot: commit layer %s: %w", chainID, err)
		}
	}
	return s.ensureLink(chainID, dir)
}

// present reports whether layer chainID is committed (repairing its l/
// link), holding the layer's lock shared while it looks.
func (s *Snapshotter) present(chainID, dir, lockPath string) (bool, error) {
	if ok, err := exists(dir); err != nil || !ok {
		return false, err // no lock file made for a layer never seen
	}
	lk, err := lockFile(lockPath, unix.LOCK_SH)
	if err != nil {
		return false, fmt.Errorf("snapshot: lock layer %s: %w", chainID, err)
	}
	defer lk.Close()
	if ok, err := exists(dir); err != nil || !ok {
		return false, err
	}
	return true, s.ensureLink(chainID, dir)
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// buildLayer fills tmp with diff/ (by unpack), link and parent, durably.
func (s *Snapshotter) buildLayer(tmp, parent string, unpack func(dir string) error) error {
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	diff := filepath.Join(tmp, "diff")
	// 0755: a layer without a "./" entry gives the container root this mode.
	if err := os.Mkdir(diff, 0o755); err != nil {
		return err
	}
	if err := unpack(diff); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	id, err := s.newLinkID()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "link"), []byte(id), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "parent"), []byte(parent), 0o600); err != nil {
		return err
	}
	if s.NoSync {
		return nil
	}
	// One syncfs is cheaper than fsyncing every file of the layer, and a
	// layer renamed into place must not come back truncated after a crash.
	fd, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// linkIDLen makes l/ID:l/ID... 13 bytes a layer: ~290 layers fit the
// one-page mount options, more than overlayfs stacks (500 max, and Docker
// stops at 128).
const linkIDLen = 10

const linkAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func (s *Snapshotter) newLinkID() (string, error) {
	for {
		b := make([]byte, linkIDLen)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		for i := range b {
			b[i] = linkAlphabet[b[i]%32]
		}
		id := string(b)
		if ok, err := exists(filepath.Join(s.root, "l", id)); err != nil {
			return "", err
		} else if !ok {
			return id, nil
		}
	}
}

// readLink returns the short link ID of the committed layer dir.
func readLinkID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "link"))
	if err != nil {
		return "", err
	}
	id := string(b)
	if len(id) != linkIDLen || strings.Trim(id, linkAlphabet) != "" {
		return "", fmt.Errorf("corrupt link file %q", id)
	}
	return id, nil
}

// ensureLink makes l/ID point at the layer's diff dir. It is created after
// the layer is committed (a crash in between leaves a layer without link,
// repaired here) so that l/ never holds a link to a missing layer.
func (s *Snapshotter) ensureLink(chainID, dir string) error {
	id, err := readLinkID(dir)
	if err != nil {
		return fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	}
	rel, err := filepath.Rel(filepath.Join(s.root, "l"), filepath.Join(dir, "diff"))
	if err != nil {
		return fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	}
	p := filepath.Join(s.root, "l", id)
	err = os.Symlink(rel, p)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		if err != nil {
			return fmt.Errorf("snapshot: layer %s: link: %w", chainID, err)
		}
		return nil
	}
	if got, rerr := os.Readlink(p); rerr != nil || got != rel {
		return fmt.Errorf("snapshot: layer %s: l/%s points at %q, not %q", chainID, id, got, rel)
	}
	return nil
}

// Layers returns the chainIDs present, for GC.
func (s *Snapshotter) Layers() ([]string, error) {
	algs, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: list layers: %w", err)
	}
	var out []string
	for _, a := range algs {
		hexes, err := os.ReadDir(filepath.Join(s.root, "layers", a.Name()))
		if err != nil {
			return nil, fmt.Errorf("snapshot: list layers: %w", err)
		}
		for _, h := range hexes {
			id := a.Name() + ":" + h.Name()
			if _, err := digest.Parse(id); err == nil {
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// RemoveLayer deletes layer chainID. It refuses (ErrInUse) while a snapshot
// uses the layer; an absent layer is no error.
func (s *Snapshotter) RemoveLayer(chainID string) error {
	dir, lockPath, err := s.layerPaths(chainID)
	if err != nil {
		return err
	}
	lk, err := lockFile(lockPath, unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("snapshot: lock layer %s: %w", chainID, err)
	}
	defer lk.Close()
	if ok, err := exists(dir); err != nil {
		return fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	} else if !ok {
		return lk.remove()
	}
	// Prepare holds a shared lock on each layer while it records a
	// snapshot, so this list cannot miss a snapshot being made.
	users, err := s.snapshotsUsing(chainID)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("snapshot: remove layer %s: %w by snapshots %s", chainID, ErrInUse, strings.Join(users, ", "))
	}
	if id, err := readLinkID(dir); err == nil {
		if err := os.Remove(filepath.Join(s.root, "l", id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("snapshot: remove layer %s: %w", chainID, err)
		}
	}
	if err := s.removeDir(dir); err != nil {
		return fmt.Errorf("snapshot: remove layer %s: %w", chainID, err)
	}
	return lk.remove()
}

// removeDir renames dir into tmp (so it disappears at once) and deletes it.
func (s *Snapshotter) removeDir(dir string) error {
	trash, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "remove-")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(trash, "x")); err != nil {
		return errors.Join(err, os.Remove(trash))
	}
	return os.RemoveAll(trash)
}

// sweepTmp deletes what crashed operations left: removals half done, and
// unpacks or snapshots in progress whose owner is gone.
func (s *Snapshotter) sweepTmp() error {
	tmp := filepath.Join(s.root, "tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("snapshot: sweep tmp: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		stale := false
		switch {
		case strings.HasPrefix(name, "remove-"):
			stale = true
		case strings.HasPrefix(name, "unpack-"):
			// Stale when nobody holds the layer's lock.
			lk, err := tryLockFile(filepath.Join(s.root, "locks", strings.TrimPrefix(name, "unpack-")+".lock"))
			if err == nil && lk != nil {
				stale = true
				defer lk.Close()
			}
		case strings.HasPrefix(name, "snap-"):
			// snap-PID-...: stale when that process is gone.
			f := strings.SplitN(name, "-", 3)
			if len(f) == 3 {
				if pid, err := strconv.Atoi(f[1]); err == nil && unix.Kill(pid, 0) == unix.ESRCH {
					stale = true
				}
			}
		}
		if stale {
			if err := os.RemoveAll(filepath.Join(tmp, name)); err != nil {
				return fmt.Errorf("snapshot: sweep tmp: %w", err)
			}
		}
	}
	return nil
}
