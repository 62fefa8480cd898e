package image

import (
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/capsa-project/capsa/image/manifest"
	"io"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Event is one progress update of a pull, push or load, per blob.
type Event struct {
	ID      string `json:"id,omitempty"`      // short digest of the blob, or empty for the image
	Status  string `json:"status"`            // Docker's words: "Downloading", "Pull complete", …
	Current int64  `json:"current,omitempty"` // bytes so far
	Total   int64  `json:"total,omitempty"`   // bytes expected
}

// PullOptions tune a pull.
type PullOptions struct {
	// Platform to select from an index; nil means the host's.
	Platform *ocispec.Platform
	// Progress receives events; it may be called from several goroutines.
	Progress func(Event)
}

// PullResult tells what a pull stored.
type PullResult struct {
	Name     string        // normalized name the image is stored under
	Digest   digest.Digest // what the registry calls it (index or manifest)
	Image    *Image
	UpToDate bool // nothing new was downloaded
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// Pull fetches ref from its registry, verifies every blob, unpacks the
// layers into the snapshotter and names the image. An interrupted pull
// keeps its verified blobs and partial downloads; running it again
// resumes.
func (s *Service) Pull(ctx context.Context, ref string, opts PullOptions) (*PullResult, error) {
	ctx = ctxOrBackground(ctx)
	progress := opts.Progress
	if progress == nil {
		progress = func(Event) {}
	}
	want := manifest.HostPlatform()
	if opts.Platform != nil {
		want = manifest.Normalize(*opts.Platform)
	}
	named, err := normalizeName(ref)
	if err != nil {
		return nil, err
	}
	gref, err := name.ParseReference(named.String())
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	repo, err := s.reg.Repository(ctx, gref.Context(), false)
	if err != nil {
		return nil, err
	}
	release, err := s.holdContent()
	if err != nil {
		return nil, err
	}
	defer release()

	mediaType, data, top, err := repo.Manifest(ctx, gref.Identifier(), manifest.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	manifestData, manifestDigest, manifestType := data, top, mediaType
	var platform *ocispec.Platform
	if manifest.IsIndex(mediaType, data) {
		idx, err := manifest.ParseIndex(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		desc, err := manifest.Select(idx, want)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		platform = desc.Platform
		manifestType, manifestData, manifestDigest, err = repo.Manifest(ctx, desc.Digest.String(), manifest.MaxManifestSize)
		if err != nil {
			return nil, err
		}
		if manifest.IsIndex(manifestType, manifestData) {
			return nil, fmt.Errorf("%s: index entry %s is itself an index", ref, desc.Digest)
		}
		if _, err := s.content.Put(data); err != nil {
			return nil, err
		}
	}
	mf, err := manifest.ParseManifest(manifestData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if manifestType == "" {
		manifestType = mf.MediaType
	}
	if manifestType == "" {
		manifestType = ocispec.MediaTypeImageManifest
	}

	_, haveManifest := s.content.Size(manifestDigest)
	var fetched atomic.Bool
	fetch := func(d digest.Digest, size int64, id string) error {
		if _, ok := s.content.Size(d); ok {
			return nil
		}
		fetched.Store(true)
		return s.content.Ingest(ctx, d, size, func(off int64) (io.ReadCloser, int64, error) {
			return repo.Blob(ctx, d, off)
		}, func(n int64) {
			if id != "" {
				progress(Event{ID: id, Status: "Downloading", Current: n, Total: size})
			}
		})
	}
	if err := fetch(mf.Config.Digest, mf.Config.Size, ""); err != nil {
		return nil, err
	}
	cfg, err := s.readConfig(mf.Config.Digest)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(mf.Layers) {
		return nil, fmt.Errorf("%s: manifest has %d layers but config lists %d diff_ids", ref, len(mf.Layers), len(cfg.RootFS.DiffIDs))
	}
	// A single-platform image must be what an explicit --platform asked
	// for (Docker refuses too); without one, any platform is taken.
	if got := (ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}); opts.Platform != nil && platform == nil && !manifest.Match(want, got) {
		return nil, fmt.Errorf("%s: image is for platform %s, not the requested %s", ref, manifest.PlatformString(manifest.Normalize(got)), manifest.PlatformString(want))
	}
	if err := s.fetchAndUnpack(ctx, mf, cfg, fetch, progress); err != nil {
		return nil, err
	}
	if _, err := s.content.Put(manifestData); err != nil {
		return nil, err
	}

	desc := ocispec.Descriptor{MediaType: manifestType, Digest: manifestDigest, Size: int64(len(manifestData)), Platform: platform}
	stored := named.String()
	if err := s.refs.update(func(idx *ocispec.Index) error {
		setName(idx, stored, desc, top.String())
		return nil
	}); err != nil {
		return nil, err
	}
	img, err := s.Get(stored)
	if err != nil {
		return nil, err
	}
	return &PullResult{Name: stored, Digest: top, Image: img, UpToDate: haveManifest && !fetched.Load()}, nil
}

// fetchAndUnpack downloads the layers in parallel and unpacks them bottom
// to top as they arrive, so download and unpack overlap.
func (s *Service) fetchAndUnpack(ctx context.Context, mf *ocispec.Manifest, cfg *ocispec.Image, fetch func(digest.Digest, int64, string) error, progress func(Event)) error {
	chain := manifest.ChainIDs(cfg.RootFS.DiffIDs)
	have := map[string]bool{}
	if s.snaps != nil {
		ids, err := s.snaps.Layers()
		if err != nil {
			return fmt.Errorf("list layers: %w", err)
		}
		for _, id := range ids {
			have[id] = true
		}
	}
	done := make([]chan struct{}, len(mf.Layers))
	for i := range done {
		done[i] = make(chan struct{})
	}
	g, gctx := errgroup.WithContext(ctx)
	sem := make(chan struct{}, s.jobs)
	for i, l := range mf.Layers {
		id := shortID(l.Digest)
		// The blob is kept even when the layer is unpacked already (from
		// an image with another compression of it): push and save need it.
		_, blobOK := s.content.Size(l.Digest)
		if blobOK {
			if s.snaps == nil || have[chain[i]] {
				progress(Event{ID: id, Status: "Already exists"})
			}
			close(done[i])
			continue
		}
		progress(Event{ID: id, Status: "Pulling fs layer"})
		g.Go(func() error {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-sem }()
			if err := fetch(l.Digest, l.Size, id); err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			progress(Event{ID: id, Status: "Download complete"})
			close(done[i])
			return nil
		})
	}
	if s.snaps != nil {
		g.Go(func() error {
			for i, l := range mf.Layers {
				select {
				case <-done[i]:
				case <-gctx.Done():
					return gctx.Err()
				}
				if have[chain[i]] {
					continue
				}
				id := shortID(l.Digest)
				progress(Event{ID: id, Status: "Extracting"})
				if err := s.ensureLayer(chain, i, l.Digest, cfg.RootFS.DiffIDs[i]); err != nil {
					return err
				}
				progress(Event{ID: id, Status: "Pull complete"})
			}
			return nil
		})
	}
	return g.Wait()
}

// ensureLayer unpacks layer i (blob → chain[i]) unless it already exists.
func (s *Service) ensureLayer(chain []string, i int, blob, diffID digest.Digest) error {
	parent := ""
	if i > 0 {
		parent = chain[i-1]
	}
	err := s.snaps.EnsureLayer(chain[i], parent, func(dir string) error {
		return s.applyLayer(blob, diffID, dir)
	})
	if err != nil {
		return fmt.Errorf("unpack layer %s: %w", blob, err)
	}
	return nil
}

// applyLayer decompresses blob into dir, checking that the uncompressed
// stream hashes to the config's diff_id: the registry verified the
// compressed bytes, this verifies what the config promised about them.
// (Decoding in a separate goroutine through a pipe was measured slower
// on 2 cores: the pipe's copies and wake-ups cost more than the overlap.)
func (s *Service) applyLayer(blob, diffID digest.Digest, dir string) error {
	f, err := s.content.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := s.unpack.Decompress(f)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	tee := io.TeeReader(rc, h)
	if err := s.unpack.Unpack(tee, dir); err != nil {
		return err
	}
	// The tar reader stops at the end-of-archive marker; the rest (padding)
	// is part of the diff_id too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != diffID {
		return fmt.Errorf("uncompressed content hashes to %s but the image config says diff_id %s", got, diffID)
	}
	return nil
}
