package image

import (
	"errors"
	"fmt"
	"github.com/capsa-project/capsa/image/manifest"
	"time"

	"github.com/capsa-project/capsa/image/content"
	"github.com/capsa-project/capsa/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Tag gives the image source (name or ID) the name target.
func (s *Service) Tag(source, target string) error {
	img, err := s.Get(source)
	if err != nil {
		return err
	}
	n, err := normalizeName(target)
	if err != nil {
		return err
	}
	if _, isDigest := n.(interface{ Digest() digest.Digest }); isDigest {
		return fmt.Errorf("refusing to create a tag with a digest reference: %s", target)
	}
	return s.refs.update(func(idx *ocispec.Index) error {
		setName(idx, n.String(), img.Manifest, "")
		return nil
	})
}

// RemoveResult lists what Remove did, in Docker's words.
type RemoveResult struct {
	Untagged []string // familiar names
	Deleted  []string // image IDs and layer chain IDs
}

// Remove deletes a name, or the image when ref is an ID or its last name
// (Docker's rmi). An image with several names is only removed by ID with
// force. Unreferenced blobs and layers are collected afterwards.
func (s *Service) Remove(ref string, force bool) (*RemoveResult, error) {
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	res := &RemoveResult{}
	byID := !contains(img.Names, mustNormalize(ref)) && !contains(img.RepoDigests, mustNormalize(ref))
	err = s.refs.update(func(idx *ocispec.Index) error {
		var names []string
		for _, m := range idx.Manifests {
			if n := m.Annotations[AnnotationRefName]; m.Digest == img.Manifest.Digest && n != "" {
				names = append(names, n)
			}
		}
		// Decided on the index as it is under the lock, not on the List
		// read before it: another process may have changed the names.
		if byID && len(names) > 1 && !force {
			return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(img.ID))
		}
		target := mustNormalize(ref)
		out := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			n := m.Annotations[AnnotationRefName]
			drop := false
			switch {
			case m.Digest != img.Manifest.Digest:
			case byID:
				drop = true
			case n == target:
				drop = true
			case len(names) <= 1 || n == "":
				drop = true
			case repoOf(n) == repoOf(target) && m.Annotations[annotationRepoDigest] != "" && target == repoOf(n)+"@"+m.Annotations[annotationRepoDigest]:
				drop = true
			}
			if drop {
				if n != "" {
					res.Untagged = append(res.Untagged, FamiliarName(n))
				}
				continue
			}
			out = append(out, m)
		}
		idx.Manifests = out
		still := false
		for _, m := range out {
			if m.Digest == img.Manifest.Digest {
				still = true
			}
		}
		if !still {
			res.Deleted = append(res.Deleted, img.ID.String())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(res.Deleted) > 0 {
		gc, err := s.GC()
		if err != nil {
			return res, err
		}
		res.Deleted = append(res.Deleted, gc.Layers...)
	}
	return res, nil
}

func mustNormalize(ref string) string {
	n, err := normalizeName(ref)
	if err != nil {
		return ""
	}
	return n.String()
}

// PruneResult is what Prune removed.
type PruneResult struct {
	Deleted   []string
	Untagged  []string
	Reclaimed int64
}

// Prune removes dangling images (all images when all is set) and collects
// garbage. inUse lists image IDs containers use; those stay.
func (s *Service) Prune(all bool, inUse map[digest.Digest]bool) (*PruneResult, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	res := &PruneResult{}
	drop := map[digest.Digest]bool{}
	for _, img := range imgs {
		if inUse[img.ID] {
			continue
		}
		if img.Dangling() || all {
			drop[img.Manifest.Digest] = true
			for _, n := range img.Names {
				res.Untagged = append(res.Untagged, FamiliarName(n))
			}
			res.Deleted = append(res.Deleted, img.ID.String())
		}
	}
	if len(drop) > 0 {
		if err := s.refs.update(func(idx *ocispec.Index) error {
			out := idx.Manifests[:0]
			for _, m := range idx.Manifests {
				if !drop[m.Digest] {
					out = append(out, m)
				}
			}
			idx.Manifests = out
			return nil
		}); err != nil {
			return nil, err
		}
	}
	gc, err := s.GC()
	if err != nil {
		return res, err
	}
	res.Deleted = append(res.Deleted, gc.Layers...)
	res.Reclaimed = gc.Bytes
	return res, nil
}

// GCResult is what garbage collection removed.
type GCResult struct {
	Blobs  []string
	Layers []string
	Bytes  int64
}

// GC removes blobs and unpacked layers that no image references. It
// holds the store's gc lock exclusively, so no pull, load or push is
// between writing a blob and naming its image while it runs.
func (s *Service) GC() (*GCResult, error) {
	unlock, err := flock(s.gcLock, unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	idx, err := s.refs.read()
	if err != nil {
		return nil, err
	}
	keepBlobs := map[digest.Digest]bool{}
	keepLayers := map[string]bool{}
	var walk func(d digest.Digest) error
	walk = func(d digest.Digest) error {
		if keepBlobs[d] {
			return nil
		}
		keepBlobs[d] = true
		data, err := s.content.ReadAll(d, manifest.MaxManifestSize)
		if err != nil {
			if errors.Is(err, content.ErrNotFound) {
				return nil
			}
			return err
		}
		if manifest.IsIndex("", data) {
			ix, err := manifest.ParseIndex(data)
			if err != nil {
				return err
			}
			for _, m := range ix.Manifests {
				if err := walk(m.Digest); err != nil {
					return err
				}
			}
			return nil
		}
		mf, err := manifest.ParseManifest(data)
		if err != nil {
			return err
		}
		keepBlobs[mf.Config.Digest] = true
		for _, l := range mf.Layers {
			keepBlobs[l.Digest] = true
		}
		cfg, err := s.readConfig(mf.Config.Digest)
		if err != nil {
			return nil // config gone: nothing of its layers to keep
		}
		for _, c := range manifest.ChainIDs(cfg.RootFS.DiffIDs) {
			keepLayers[c] = true
		}
		return nil
	}
	for _, m := range idx.Manifests {
		if err := walk(m.Digest); err != nil {
			return nil, fmt.Errorf("gc: %w", err)
		}
	}
	// Index blobs that pulls stored next to their platform manifests.
	for _, m := range idx.Manifests {
		if rd, err := digest.Parse(m.Annotations[annotationRepoDigest]); err == nil && rd != m.Digest {
			keepBlobs[rd] = true
		}
	}
	res := &GCResult{}
	blobs, err := s.content.Blobs()
	if err != nil {
		return nil, err
	}
	for d, size := range blobs {
		if keepBlobs[d] {
			continue
		}
		if err := s.content.Delete(d); err != nil {
			return res, err
		}
		res.Blobs = append(res.Blobs, d.String())
		res.Bytes += size
	}
	if err := s.content.CleanIngest(24 * time.Hour); err != nil {
		return res, err
	}
	if s.snaps != nil {
		layers, err := s.snaps.Layers()
		if err != nil {
			return res, fmt.Errorf("gc: list layers: %w", err)
		}
		for _, l := range layers {
			if keepLayers[l] {
				continue
			}
			if err := s.snaps.RemoveLayer(l); err != nil {
				if errors.Is(err, snapshot.ErrInUse) {
					continue // a container's snapshot still stands on it
				}
				return res, fmt.Errorf("gc: remove layer %s: %w", l, err)
			}
			res.Layers = append(res.Layers, l)
		}
	}
	return res, nil
}

// DiskUsage sums what images take.
type DiskUsage struct {
	Images      int
	Active      int
	Size        int64 // unique blob bytes of all images
	Reclaimable int64 // bytes only dangling or unused images hold
}

// DF reports disk usage; inUse lists image IDs containers use.
func (s *Service) DF(inUse map[digest.Digest]bool) (*DiskUsage, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	du := &DiskUsage{Images: len(imgs)}
	all := map[digest.Digest]int64{}
	used := map[digest.Digest]bool{}
	for _, img := range imgs {
		blobs := map[digest.Digest]int64{img.ManifestDoc.Config.Digest: img.ManifestDoc.Config.Size}
		for _, l := range img.ManifestDoc.Layers {
			blobs[l.Digest] = l.Size
		}
		for d, sz := range blobs {
			all[d] = sz
			if inUse[img.ID] {
				used[d] = true
			}
		}
		if inUse[img.ID] {
			du.Active++
		}
	}
	for d, sz := range all {
		du.Size += sz
		if !used[d] {
			du.Reclaimable += sz
		}
	}
	return du, nil
}
