// Package image is capsa's image store: images by name in an OCI image
// layout (blobs shared by all images, names in index.json), pull and push
// against OCI distribution registries, docker-archive and oci-archive
// load/save, import of rootfs tarballs, and garbage collection of blobs and
// unpacked layers. Layers are unpacked into the snapshotter, which the
// caller provides.
package image

import (
	"context"
	"errors"
	"fmt"
	"github.com/capsa-project/capsa/image/manifest"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/capsa-project/capsa/image/content"
	"github.com/capsa-project/capsa/image/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Snapshots is the part of the snapshotter the image store drives:
// committed, read-only layer directories keyed by chain ID.
// *snapshot.Snapshotter implements it.
type Snapshots interface {
	EnsureLayer(chainID, parent string, unpack func(dir string) error) error
	Layers() ([]string, error)
	RemoveLayer(chainID string) error
}

// Unpacker applies one layer to an empty directory: decompress sniffs the
// compression (layer.Decompress) and unpack applies the uncompressed tar
// (layer.Unpack).
type Unpacker struct {
	Decompress func(r io.Reader) (io.ReadCloser, error)
	Unpack     func(r io.Reader, dir string) error
}

// Options configure a Service.
type Options struct {
	Registry registry.Options
	// Snapshots receives unpacked layers; nil: layers are not unpacked
	// (store-only use, e.g. a registry mirror or tests of the store).
	Snapshots Snapshots
	Unpacker  Unpacker
	// Jobs is how many blobs download at once (default 4).
	Jobs int
}

// Service is the image store.
type Service struct {
	root    string
	content *content.Store
	refs    *refIndex
	reg     *registry.Client
	snaps   Snapshots
	unpack  Unpacker
	jobs    int
	gcLock  string
}

// Open opens (creating if needed) the image store in dir.
func Open(dir string, opts Options) (*Service, error) {
	cs, err := content.Open(dir)
	if err != nil {
		return nil, err
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.Snapshots != nil && (opts.Unpacker.Unpack == nil || opts.Unpacker.Decompress == nil) {
		return nil, errors.New("image store: a snapshotter needs an unpacker")
	}
	return &Service{
		root:    dir,
		content: cs,
		refs:    &refIndex{path: joinRoot(dir, "index.json"), lock: joinRoot(dir, "index.lock")},
		reg:     registry.New(opts.Registry),
		snaps:   opts.Snapshots,
		unpack:  opts.Unpacker,
		jobs:    opts.Jobs,
		gcLock:  joinRoot(dir, "gc.lock"),
	}, nil
}

// Content is the blob store (for the engine and tests).
func (s *Service) Content() *content.Store { return s.content }

// Registry is the registry client.
func (s *Service) Registry() *registry.Client { return s.reg }

// holdContent keeps garbage collection away while new blobs are added and
// until the name that references them is written.
func (s *Service) holdContent() (func(), error) { return flock(s.gcLock, unix.LOCK_SH) }

// Image is one stored image: a manifest with its config.
type Image struct {
	ID          digest.Digest      // config digest, Docker's image ID
	Manifest    ocispec.Descriptor // the platform manifest
	Names       []string           // normalized names pointing at it
	RepoDigests []string           // repo@digest as the registry knows it
	Config      *ocispec.Image
	ManifestDoc *ocispec.Manifest
	Size        int64     // config + layer blobs
	LastTagTime time.Time // when a name was last set
}

// Dangling reports whether the image has no name.
func (i *Image) Dangling() bool { return len(i.Names) == 0 }

// ChainIDs are the snapshot keys of the image's layers, bottom to top.
func (i *Image) ChainIDs() []string { return manifest.ChainIDs(i.Config.RootFS.DiffIDs) }

// List returns all images, newest first.
func (s *Service) List() ([]*Image, error) {
	idx, err := s.refs.read()
	if err != nil {
		return nil, err
	}
	byManifest := map[digest.Digest]*Image{}
	var order []*Image
	for _, m := range idx.Manifests {
		img, ok := byManifest[m.Digest]
		if !ok {
			img, err = s.loadImage(m)
			if err != nil {
				return nil, err
			}
			byManifest[m.Digest] = img
			order = append(order, img)
		}
		if n := m.Annotations[AnnotationRefName]; n != "" {
			img.Names = append(img.Names, n)
		}
		if rd := m.Annotations[annotationRepoDigest]; rd != "" {
			if n := m.Annotations[AnnotationRefName]; n != "" {
				repo := repoOf(n) + "@" + rd
				if !contains(img.RepoDigests, repo) {
					img.RepoDigests = append(img.RepoDigests, repo)
				}
			}
		}
		if t, err := time.Parse(time.RFC3339Nano, m.Annotations[annotationTagged]); err == nil && t.After(img.LastTagTime) {
			img.LastTagTime = t
		}
	}
	for _, img := range order {
		sort.Strings(img.Names)
		sort.Strings(img.RepoDigests)
	}
	sort.SliceStable(order, func(a, b int) bool { return created(order[a]).After(created(order[b])) })
	return order, nil
}

func created(i *Image) time.Time {
	if i.Config.Created != nil {
		return *i.Config.Created
	}
	return time.Time{}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// repoOf strips the tag or digest from a normalized name.
func repoOf(n string) string {
	if i := strings.IndexByte(n, '@'); i >= 0 {
		n = n[:i]
	}
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		n = n[:i]
	}
	return n
}

func (s *Service) loadImage(m ocispec.Descriptor) (*Image, error) {
	mf, err := s.readManifest(m.Digest)
	if err != nil {
		return nil, err
	}
	cfg, err := s.readConfig(mf.Config.Digest)
	if err != nil {
		return nil, err
	}
	size := mf.Config.Size
	for _, l := range mf.Layers {
		size += l.Size
	}
	return &Image{ID: mf.Config.Digest, Manifest: m, Config: cfg, ManifestDoc: mf, Size: size}, nil
}

func (s *Service) readManifest(d digest.Digest) (*ocispec.Manifest, error) {
	data, err := s.content.ReadAll(d, manifest.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return manifest.ParseManifest(data)
}

func (s *Service) readConfig(d digest.Digest) (*ocispec.Image, error) {
	data, err := s.content.ReadAll(d, manifest.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return manifest.ParseConfig(data)
}

// ErrNotFound is returned for a name or ID that matches no image.
var ErrNotFound = errors.New("no such image")

// Get finds an image by name (busybox, busybox:1, repo@sha256:…), full or
// short ID (sha256:abc…, abc…).
func (s *Service) Get(ref string) (*Image, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	return resolve(imgs, ref)
}

func resolve(imgs []*Image, ref string) (*Image, error) {
	// An ID or unique ID prefix, as Docker accepts.
	id := strings.TrimPrefix(ref, "sha256:")
	if isHex(id) && len(id) <= 64 {
		var found *Image
		for _, img := range imgs {
			if strings.HasPrefix(img.ID.Encoded(), id) {
				if found != nil && found.ID != img.ID {
					return nil, fmt.Errorf("image ID prefix %q is ambiguous", ref)
				}
				found = img
			}
		}
		if found != nil {
			return found, nil
		}
	}
	n, err := normalizeName(ref)
	if err != nil {
		return nil, err
	}
	want := n.String()
	for _, img := range imgs {
		if contains(img.Names, want) || contains(img.RepoDigests, want) {
			return img, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ctxOrBackground guards against a nil context from callers.
func ctxOrBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// ParsePlatform parses "os/arch[/variant]" (see manifest.ParsePlatform).
func ParsePlatform(s string) (ocispec.Platform, error) { return manifest.ParsePlatform(s) }

// HostPlatform is this machine's platform.
func HostPlatform() ocispec.Platform { return manifest.HostPlatform() }
