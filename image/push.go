package image

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushResult tells what a push sent.
type PushResult struct {
	Name   string // normalized name pushed
	Tag    string
	Digest string // manifest digest in the registry
	Size   int64  // manifest size
	Layers []string
}

// Push sends the image named ref to its registry. Blobs the registry has
// already are not sent again.
func (s *Service) Push(ctx context.Context, ref string, progress func(Event)) (*PushResult, error) {
	ctx = ctxOrBackground(ctx)
	if progress == nil {
		progress = func(Event) {}
	}
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	named, err := normalizeName(ref)
	if err != nil {
		return nil, err
	}
	if !contains(img.Names, named.String()) {
		return nil, fmt.Errorf("an image does not exist locally with the tag: %s", FamiliarName(named.String()))
	}
	tag, err := name.NewTag(named.String())
	if err != nil {
		return nil, fmt.Errorf("push %s: need a tagged name: %w", ref, err)
	}
	release, err := s.holdContent()
	if err != nil {
		return nil, err
	}
	defer release()
	h, err := v1.NewHash(img.Manifest.Digest.String())
	if err != nil {
		return nil, err
	}
	li, err := layout.Path(s.root).Image(h)
	if err != nil {
		return nil, fmt.Errorf("push %s: open image: %w", ref, err)
	}
	t, err := s.reg.Transport(ctx, tag.Registry)
	if err != nil {
		return nil, err
	}
	for _, l := range img.ManifestDoc.Layers {
		progress(Event{ID: shortID(l.Digest), Status: "Preparing"})
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(t), remote.WithAuthFromKeychain(s.reg.Keychain()), remote.WithJobs(s.jobs)}
	if err := remote.Write(tag, li, opts...); err != nil {
		return nil, fmt.Errorf("push %s: %w", FamiliarName(named.String()), err)
	}
	res := &PushResult{Name: named.String(), Tag: tag.TagStr(), Digest: img.Manifest.Digest.String(), Size: img.Manifest.Size}
	for _, l := range img.ManifestDoc.Layers {
		progress(Event{ID: shortID(l.Digest), Status: "Pushed"})
		res.Layers = append(res.Layers, l.Digest.String())
	}
	// Remember the registry digest so `images --digests` shows it.
	if err := s.refs.update(func(idx *ocispec.Index) error {
		setName(idx, named.String(), img.Manifest, img.Manifest.Digest.String())
		return nil
	}); err != nil {
		return nil, err
	}
	return res, nil
}
