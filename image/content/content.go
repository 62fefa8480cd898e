// Package content is capsa's content-addressed blob store: an OCI image
// layout's blobs/sha256 directory in which every blob is written once,
// verified against its digest and size before it becomes visible under its
// final name, and shared by every image that references it.
//
// Writes are atomic (temp file, fsync, rename, fsync of the directory) and
// an interrupted download keeps its verified prefix in ingest/ so that the
// next attempt resumes it. Downloads of one blob are serialised across
// goroutines and processes with flock on the partial file, so a blob is
// fetched once however many pulls want it.
package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Store is a blob store rooted at an OCI image layout directory.
type Store struct {
	root string
}

// Open creates (if needed) and opens the layout at root.
func Open(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	layoutFile := filepath.Join(root, "oci-layout")
	if _, err := os.Stat(layoutFile); errors.Is(err, os.ErrNotExist) {
		if err := WriteFileAtomic(layoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// Root is the layout directory.
func (s *Store) Root() string { return s.root }

// Validate checks that d is a well-formed sha256 digest. Every digest that
// comes from a manifest, an archive or a user passes here before it names
// a file, so a hostile digest can never become a path.
func Validate(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("unsupported digest algorithm %q in %s (only sha256)", d.Algorithm(), d)
	}
	return nil
}

// Path is where blob d lives once committed.
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded())
}

// Size returns the size of blob d, or ok=false if it is not in the store.
func (s *Store) Size(d digest.Digest) (size int64, ok bool) {
	if Validate(d) != nil {
		return 0, false
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}

// Open opens blob d for reading.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	if err := Validate(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// ErrNotFound is returned for a blob that is not in the store.
var ErrNotFound = errors.New("not found in content store")

// ReadAll reads blob d, refusing blobs larger than max bytes.
func (s *Store) ReadAll(d digest.Digest, max int64) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("blob %s is larger than the %d byte limit", d, max)
	}
	return data, nil
}

// Put stores data and returns its digest.
func (s *Store) Put(data []byte) (digest.Digest, error) {
	d := digest.FromBytes(data)
	return d, s.Write(context.Background(), d, int64(len(data)), bytes.NewReader(data))
}

// Write stores the blob read from r, which must have digest d and size
// bytes (size < 0: unknown). Nothing is committed unless both match.
func (s *Store) Write(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	return s.Ingest(ctx, d, size, func(offset int64) (io.ReadCloser, int64, error) {
		// A plain reader cannot seek: it always starts at 0, and Ingest
		// drops any partial content.
		return io.NopCloser(r), 0, nil
	}, nil)
}

// Fetcher opens the blob's content starting at offset. It returns the
// offset it actually starts at: 0 when the source cannot resume (for
// example a registry that ignores Range).
type Fetcher func(offset int64) (rc io.ReadCloser, start int64, err error)

// Ingest downloads blob d of the given size (size < 0: unknown) with
// fetch, resuming a partial download left by an earlier attempt, verifies
// digest and size, and commits it. progress, if set, is called with the
// number of bytes present so far. Ingest of a blob already in the store
// returns at once without fetching.
func (s *Store) Ingest(ctx context.Context, d digest.Digest, size int64, fetch Fetcher, progress func(int64)) error {
	if err := Validate(d); err != nil {
		return err
	}
	if have, ok := s.Size(d); ok {
		if size >= 0 && have != size {
			return fmt.Errorf("blob %s: stored size %d differs from expected %d", d, have, size)
		}
		return nil
	}
	partial := filepath.Join(s.root, "ingest", d.Encoded()+".partial")
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	// One downloader per blob, across processes: the others wait here and
	// then find the blob committed.
	if err := lockFile(ctx, f); err != nil {
		return fmt.Errorf("blob %s: lock: %w", d, err)
	}
	defer func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }()
	if _, ok := s.Size(d); ok {
		// Committed by whoever held the lock; the file we hold is either
		// the renamed blob or a fresh empty partial, which we drop.
		if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
			_ = os.Remove(partial)
		}
		return nil
	}
	h := sha256.New()
	offset, err := rehash(f, h)
	if err != nil {
		return fmt.Errorf("blob %s: read partial download: %w", d, err)
	}
	if size >= 0 && offset > size {
		offset = 0
	}
	if offset > 0 && size >= 0 && offset == size {
		// Complete but never committed (killed between fsync and rename).
		if digest.NewDigest(digest.SHA256, h) == d {
			return s.commit(f, partial, d)
		}
		offset = 0
	}
	if err := s.fill(ctx, f, h, d, size, offset, fetch, progress); err != nil {
		return err
	}
	return s.commit(f, partial, d)
}

// fill appends the rest of the blob to f and checks digest and size.
func (s *Store) fill(ctx context.Context, f *os.File, h hash.Hash, d digest.Digest, size, offset int64, fetch Fetcher, progress func(int64)) error {
	rc, start, err := fetch(offset)
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d, err)
	}
	defer rc.Close()
	if start != offset {
		if start != 0 {
			return fmt.Errorf("fetch blob %s: source resumed at %d, asked for %d", d, start, offset)
		}
		h.Reset()
		offset = 0
	}
	if err := f.Truncate(offset); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	limit := int64(1 << 62)
	if size >= 0 {
		limit = size - offset + 1 // one more byte reveals an oversized blob
	}
	w := io.MultiWriter(f, h)
	src := io.LimitReader(&ctxReader{ctx: ctx, r: rc}, limit)
	var n int64
	buf := make([]byte, 256<<10)
	for {
		m, rerr := src.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return fmt.Errorf("write blob %s: %w", d, werr)
			}
			n += int64(m)
			if progress != nil {
				progress(offset + n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("fetch blob %s: %w (%d bytes kept for resume)", d, rerr, offset+n)
		}
	}
	total := offset + n
	got := digest.NewDigest(digest.SHA256, h)
	if (size >= 0 && total != size) || got != d {
		// A wrong blob is not worth resuming: drop it.
		_ = f.Truncate(0)
		if size >= 0 && total > size {
			return fmt.Errorf("blob %s: larger than the %d bytes its descriptor declares", d, size)
		}
		if size >= 0 && total < size {
			return fmt.Errorf("blob %s: truncated: got %d of %d bytes", d, total, size)
		}
		return fmt.Errorf("blob %s: digest mismatch: content hashes to %s", d, got)
	}
	return nil
}

func (s *Store) commit(f *os.File, partial string, d digest.Digest) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob %s: fsync: %w", d, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	final := s.Path(d)
	if err := os.Rename(partial, final); err != nil {
		return fmt.Errorf("blob %s: commit: %w", d, err)
	}
	return syncDir(filepath.Dir(final))
}

// Delete removes blob d.
func (s *Store) Delete(d digest.Digest) error {
	if err := Validate(d); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Blobs lists the digests of all committed blobs with their sizes.
func (s *Store) Blobs() (map[digest.Digest]int64, error) {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	out := make(map[digest.Digest]int64, len(entries))
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		if fi, err := e.Info(); err == nil {
			out[d] = fi.Size()
		}
	}
	return out, nil
}

// CleanIngest removes partial downloads older than age that no process
// is writing (their flock is free).
func (s *Store) CleanIngest(age time.Duration) error {
	dir := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list ingest: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".partial") {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < age {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			_ = os.Remove(p)
		}
		f.Close()
	}
	return nil
}

// PartialSize reports how many bytes of blob d an interrupted download
// left in ingest/ (for tests and progress).
func (s *Store) PartialSize(d digest.Digest) int64 {
	fi, err := os.Stat(filepath.Join(s.root, "ingest", d.Encoded()+".partial"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

func rehash(f *os.File, h hash.Hash) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(h, f)
}

// lockFile takes an exclusive flock on f, polling so that ctx can cancel
// the wait (flock itself cannot be interrupted).
func lockFile(ctx context.Context, f *os.File) error {
	for delay := time.Millisecond; ; {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// WriteFileAtomic replaces path with data: temp file in the same
// directory, fsync, rename, fsync of the directory. Readers see the old or
// the new content, never a torn one.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Add stores the content of r, whatever its digest, and returns the
// digest and size. The content is hashed while it is written to a temp
// file in ingest/ and committed under the computed digest.
func (s *Store) Add(r io.Reader) (digest.Digest, int64, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "add-*.tmp")
	if err != nil {
		return "", 0, fmt.Errorf("content store: %w", err)
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		_ = os.Remove(tmp) // gone already after a successful rename
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("content store: write: %w", err)
	}
	d := digest.NewDigest(digest.SHA256, h)
	if _, ok := s.Size(d); ok {
		return d, n, nil
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("content store: fsync: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp, s.Path(d)); err != nil {
		return "", 0, fmt.Errorf("content store: commit %s: %w", d, err)
	}
	return d, n, syncDir(filepath.Dir(s.Path(d)))
}
