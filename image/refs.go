package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/capsa-project/capsa/image/manifest"
	"os"
	"path/filepath"
	"time"

	"github.com/capsa-project/capsa/image/content"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Annotations capsa keeps on the entries of its index.json.
const (
	// AnnotationRefName is the normalized name (docker.io/library/x:tag,
	// or repo@digest); absent for a dangling image.
	AnnotationRefName = ocispec.AnnotationRefName
	// annotationRepoDigest is the digest the registry (or archive) knew
	// the image by: an index digest when pulled through an index.
	annotationRepoDigest = "io.capsa.image.repo-digest"
	// annotationTagged is when the name was last set (RFC 3339).
	annotationTagged = "io.capsa.image.tagged"
)

// refIndex is the store's index.json: one entry per name, plus entries
// without a name for dangling images. The whole file is rewritten
// atomically under an flock, so several processes (CLI, daemon) can change
// names concurrently without losing updates.
type refIndex struct {
	path string
	lock string
}

func (r *refIndex) read() (*ocispec.Index, error) {
	data, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return &ocispec.Index{Versioned: manifest.Versioned(), MediaType: ocispec.MediaTypeImageIndex}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("image index %s is corrupt: %w", r.path, err)
	}
	return &idx, nil
}

// update runs fn on the index under an exclusive lock and writes the
// result if fn succeeds.
func (r *refIndex) update(fn func(idx *ocispec.Index) error) error {
	unlock, err := flock(r.lock, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := r.read()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := content.WriteFileAtomic(r.path, data, 0o644); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return nil
}

// setName points name (empty: a dangling entry) at desc, replacing what
// the name pointed at before; the image it pointed at stays as a dangling
// image when nothing else names it, as in Docker. A dangling entry for
// the same manifest is dropped once the manifest has a name.
func setName(idx *ocispec.Index, name string, desc ocispec.Descriptor, repoDigest string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	d := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform}
	d.Annotations = map[string]string{annotationTagged: now}
	if name != "" {
		d.Annotations[AnnotationRefName] = name
	}
	if repoDigest != "" {
		d.Annotations[annotationRepoDigest] = repoDigest
	}
	var replaced []ocispec.Descriptor
	out := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		n := m.Annotations[AnnotationRefName]
		if n == name && name != "" {
			if m.Digest != desc.Digest {
				replaced = append(replaced, m)
			}
			continue
		}
		if n == "" && m.Digest == desc.Digest {
			continue
		}
		out = append(out, m)
	}
	named := func(list []ocispec.Descriptor, dg digest.Digest) bool {
		for _, m := range list {
			if m.Digest == dg {
				return true
			}
		}
		return false
	}
	for _, r := range replaced {
		if !named(out, r.Digest) {
			out = append(out, ocispec.Descriptor{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size, Platform: r.Platform,
				Annotations: map[string]string{annotationTagged: now}})
		}
	}
	if name == "" && named(out, desc.Digest) {
		idx.Manifests = out
		return // already named: no dangling entry
	}
	idx.Manifests = append(out, d)
}

func flock(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// normalizeName turns a user's image name into the stored form:
// "busybox" → "docker.io/library/busybox:latest".
func normalizeName(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w", s, err)
	}
	return reference.TagNameOnly(n), nil
}

// FamiliarName shortens a stored name the way Docker shows it.
func FamiliarName(s string) string {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	return reference.FamiliarString(n)
}

func joinRoot(root string, elems ...string) string {
	return filepath.Join(append([]string{root}, elems...)...)
}
