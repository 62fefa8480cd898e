package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/capsa-project/capsa/image/manifest"
	"io"
	"path"
	"strings"
	"time"

	"github.com/capsa-project/capsa/image/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types written for images capsa builds from archives.
const (
	mediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	annotationContainerdName = "io.containerd.image.name"
	maxArchiveMetadata       = manifest.MaxManifestSize
	maxArchiveSymlinkHops    = 8
)

// Loaded is one image an archive held.
type Loaded struct {
	Name string        // normalized name, empty when the archive gave none
	ID   digest.Digest // image ID
}

type archiveFile struct {
	digest digest.Digest
	size   int64
}

// Load reads a docker-archive (docker save, skopeo, podman) or an
// oci-archive, possibly gzip- or zstd-compressed, stores its images and
// unpacks their layers. Every blob is verified: against its file name in
// an OCI layout, against the config's diff_ids for docker layers.
func (s *Service) Load(ctx context.Context, r io.Reader, progress func(Event)) ([]Loaded, error) {
	ctx = ctxOrBackground(ctx)
	if progress == nil {
		progress = func(Event) {}
	}
	rc, _, err := decompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer rc.Close()
	release, err := s.holdContent()
	if err != nil {
		return nil, err
	}
	defer release()

	files := map[string]archiveFile{}
	links := map[string]string{}
	meta := map[string][]byte{}
	tr := tar.NewReader(rc)
	entries := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load: read archive: %w", err)
		}
		if entries++; entries > 100000 {
			return nil, errors.New("load: archive has more than 100000 entries")
		}
		name := cleanArchivePath(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink {
				target = path.Join(path.Dir(name), target)
			}
			links[name] = cleanArchivePath(target)
			continue
		default:
			continue
		}
		switch name {
		case "manifest.json", "index.json", "repositories", "oci-layout":
			data, err := io.ReadAll(io.LimitReader(tr, maxArchiveMetadata+1))
			if err != nil {
				return nil, fmt.Errorf("load: read %s: %w", name, err)
			}
			if len(data) > maxArchiveMetadata {
				return nil, fmt.Errorf("load: %s is larger than %d bytes", name, maxArchiveMetadata)
			}
			meta[name] = data
			continue
		}
		if rest, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			d := digest.NewDigestFromEncoded(digest.SHA256, rest)
			if err := content.Validate(d); err != nil {
				return nil, fmt.Errorf("load: entry %q: %w", hdr.Name, err)
			}
			if err := s.content.Write(ctx, d, hdr.Size, tr); err != nil {
				return nil, fmt.Errorf("load: entry %q: %w", hdr.Name, err)
			}
			files[name] = archiveFile{d, hdr.Size}
			continue
		}
		d, n, err := s.content.Add(tr)
		if err != nil {
			return nil, fmt.Errorf("load: entry %q: %w", hdr.Name, err)
		}
		files[name] = archiveFile{d, n}
	}
	lookup := func(p string) (archiveFile, error) {
		p = cleanArchivePath(p)
		for hops := 0; hops <= maxArchiveSymlinkHops; hops++ {
			if f, ok := files[p]; ok {
				return f, nil
			}
			t, ok := links[p]
			if !ok {
				break
			}
			p = t
		}
		return archiveFile{}, fmt.Errorf("load: archive lacks file %q", p)
	}

	var loaded []Loaded
	switch {
	case meta["manifest.json"] != nil:
		loaded, err = s.loadDocker(ctx, meta["manifest.json"], lookup, progress)
	case meta["index.json"] != nil:
		loaded, err = s.loadOCI(ctx, meta["index.json"], progress)
	default:
		return nil, errors.New("load: not an image archive: no manifest.json (docker-archive) or index.json (oci-archive)")
	}
	if err != nil {
		return nil, err
	}
	return loaded, nil
}

func cleanArchivePath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (s *Service) loadDocker(ctx context.Context, data []byte, lookup func(string) (archiveFile, error), progress func(Event)) ([]Loaded, error) {
	var entries []dockerManifestEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("load: parse manifest.json: %w", err)
	}
	if len(entries) == 0 {
		return nil, errors.New("load: manifest.json lists no images")
	}
	var out []Loaded
	for _, e := range entries {
		cf, err := lookup(e.Config)
		if err != nil {
			return nil, err
		}
		cfg, err := s.readConfig(cf.digest)
		if err != nil {
			return nil, fmt.Errorf("load: %s: %w", e.Config, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return nil, fmt.Errorf("load: %s: manifest.json lists %d layers, config has %d diff_ids", e.Config, len(e.Layers), len(cfg.RootFS.DiffIDs))
		}
		mf := ocispec.Manifest{
			Versioned: manifest.Versioned(),
			MediaType: manifest.MediaTypeDockerManifest,
			Config:    ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Digest: cf.digest, Size: cf.size},
		}
		for i, lp := range e.Layers {
			lf, err := lookup(lp)
			if err != nil {
				return nil, err
			}
			mt, err := s.layerMediaTypeOf(lf.digest)
			if err != nil {
				return nil, err
			}
			if mt == mediaTypeDockerLayer && lf.digest != cfg.RootFS.DiffIDs[i] {
				return nil, fmt.Errorf("load: layer %q hashes to %s but the config says diff_id %s", lp, lf.digest, cfg.RootFS.DiffIDs[i])
			}
			mf.Layers = append(mf.Layers, ocispec.Descriptor{MediaType: mt, Digest: lf.digest, Size: lf.size})
		}
		mdata, err := json.Marshal(mf)
		if err != nil {
			return nil, err
		}
		md, err := s.content.Put(mdata)
		if err != nil {
			return nil, err
		}
		if err := s.unpackAll(ctx, &mf, cfg, progress); err != nil {
			return nil, err
		}
		desc := ocispec.Descriptor{MediaType: mf.MediaType, Digest: md, Size: int64(len(mdata))}
		names, err := normalizeAll(e.RepoTags)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if err := s.name(desc, names); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			out = append(out, Loaded{ID: cf.digest})
		}
		for _, n := range names {
			out = append(out, Loaded{Name: n, ID: cf.digest})
		}
	}
	return out, nil
}

func normalizeAll(in []string) ([]string, error) {
	var out []string
	for _, t := range in {
		n, err := normalizeName(t)
		if err != nil {
			return nil, err
		}
		out = append(out, n.String())
	}
	return out, nil
}

// name points names at desc, or keeps it as a dangling image.
func (s *Service) name(desc ocispec.Descriptor, names []string) error {
	return s.refs.update(func(idx *ocispec.Index) error {
		if len(names) == 0 {
			setName(idx, "", desc, "")
		}
		for _, n := range names {
			setName(idx, n, desc, "")
		}
		return nil
	})
}

// layerMediaTypeOf sniffs a layer blob's compression.
func (s *Service) layerMediaTypeOf(d digest.Digest) (string, error) {
	f, err := s.content.Open(d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case len(head) >= 2 && head[0] == gzipMagic[0] && head[1] == gzipMagic[1]:
		return mediaTypeDockerLayerGzip, nil
	case len(head) == 4 && string(head) == string(zstdMagic):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return mediaTypeDockerLayer, nil
}

// unpackAll unpacks an image's layers whose blobs are all in the store.
func (s *Service) unpackAll(ctx context.Context, mf *ocispec.Manifest, cfg *ocispec.Image, progress func(Event)) error {
	if progress == nil {
		progress = func(Event) {}
	}
	if len(cfg.RootFS.DiffIDs) != len(mf.Layers) {
		return fmt.Errorf("manifest has %d layers but config lists %d diff_ids", len(mf.Layers), len(cfg.RootFS.DiffIDs))
	}
	return s.fetchAndUnpack(ctx, mf, cfg, func(d digest.Digest, size int64, _ string) error {
		have, ok := s.content.Size(d)
		if !ok {
			return fmt.Errorf("blob %s is missing from the archive", d)
		}
		if size >= 0 && have != size {
			return fmt.Errorf("blob %s: size %d, descriptor says %d", d, have, size)
		}
		return nil
	}, progress)
}

func (s *Service) loadOCI(ctx context.Context, data []byte, progress func(Event)) ([]Loaded, error) {
	idx, err := manifest.ParseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("load: index.json: %w", err)
	}
	var out []Loaded
	for _, desc := range idx.Manifests {
		nameAnn := desc.Annotations[annotationContainerdName]
		if nameAnn == "" {
			if rn := desc.Annotations[AnnotationRefName]; strings.ContainsAny(rn, ":/") {
				nameAnn = rn
			}
		}
		mdata, err := s.content.ReadAll(desc.Digest, manifest.MaxManifestSize)
		if err != nil {
			return nil, fmt.Errorf("load: index.json entry %s: %w", desc.Digest, err)
		}
		if manifest.IsIndex(desc.MediaType, mdata) {
			sub, err := manifest.ParseIndex(mdata)
			if err != nil {
				return nil, fmt.Errorf("load: %s: %w", desc.Digest, err)
			}
			pick, err := manifest.Select(sub, manifest.HostPlatform())
			if err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
			mdata, err = s.content.ReadAll(pick.Digest, manifest.MaxManifestSize)
			if err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
			desc = ocispec.Descriptor{MediaType: pick.MediaType, Digest: pick.Digest, Size: pick.Size, Platform: pick.Platform}
		}
		mf, err := manifest.ParseManifest(mdata)
		if err != nil {
			return nil, fmt.Errorf("load: %s: %w", desc.Digest, err)
		}
		if desc.MediaType == "" {
			desc.MediaType = ocispec.MediaTypeImageManifest
		}
		cfg, err := s.readConfig(mf.Config.Digest)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if err := s.unpackAll(ctx, mf, cfg, progress); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		var names []string
		if nameAnn != "" {
			names, err = normalizeAll([]string{nameAnn})
			if err != nil {
				return nil, fmt.Errorf("load: image name %q: %w", nameAnn, err)
			}
		}
		desc = ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform}
		if err := s.name(desc, names); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			out = append(out, Loaded{ID: mf.Config.Digest})
		}
		for _, n := range names {
			out = append(out, Loaded{Name: n, ID: mf.Config.Digest})
		}
	}
	return out, nil
}

// Archive formats for Save.
const (
	FormatDocker = "docker-archive"
	FormatOCI    = "oci-archive"
)

// Save writes images to w as a docker-archive (what docker save writes;
// layers uncompressed, as docker load, podman load and skopeo expect) or
// an oci-archive (an OCI image layout in a tar).
func (s *Service) Save(ctx context.Context, w io.Writer, refs []string, format string) error {
	ctx = ctxOrBackground(ctx)
	if len(refs) == 0 {
		return errors.New("save: no images given")
	}
	release, err := s.holdContent()
	if err != nil {
		return err
	}
	defer release()
	type item struct {
		img   *Image
		names []string
	}
	var items []item
	imgs, err := s.List()
	if err != nil {
		return err
	}
	for _, r := range refs {
		img, err := resolve(imgs, r)
		if err != nil {
			return err
		}
		var names []string
		if n := mustNormalize(r); contains(img.Names, n) && !strings.Contains(n, "@") {
			names = []string{n}
		}
		merged := false
		for i := range items {
			if items[i].img.Manifest.Digest == img.Manifest.Digest {
				items[i].names = append(items[i].names, names...)
				merged = true
			}
		}
		if !merged {
			items = append(items, item{img, names})
		}
	}
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	switch format {
	case FormatDocker, "":
		var manifest []dockerManifestEntry
		for _, it := range items {
			e := dockerManifestEntry{Config: it.img.ID.Encoded() + ".json", RepoTags: []string{}}
			for _, n := range it.names {
				e.RepoTags = append(e.RepoTags, FamiliarName(n))
			}
			if err := s.writeBlobEntry(tw, e.Config, it.img.ID, written); err != nil {
				return err
			}
			for i, l := range it.img.ManifestDoc.Layers {
				diff := it.img.Config.RootFS.DiffIDs[i]
				p := diff.Encoded() + ".tar"
				e.Layers = append(e.Layers, p)
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := s.writeUncompressedLayer(tw, p, l.Digest, written); err != nil {
					return err
				}
			}
			manifest = append(manifest, e)
		}
		data, err := json.Marshal(manifest)
		if err != nil {
			return err
		}
		if err := writeTarFile(tw, "manifest.json", data); err != nil {
			return err
		}
	case FormatOCI:
		idx := ocispec.Index{Versioned: manifest.Versioned(), MediaType: ocispec.MediaTypeImageIndex}
		for _, it := range items {
			blobs := []digest.Digest{it.img.Manifest.Digest, it.img.ID}
			for _, l := range it.img.ManifestDoc.Layers {
				blobs = append(blobs, l.Digest)
			}
			for _, d := range blobs {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := s.writeBlobEntry(tw, "blobs/sha256/"+d.Encoded(), d, written); err != nil {
					return err
				}
			}
			desc := ocispec.Descriptor{MediaType: it.img.Manifest.MediaType, Digest: it.img.Manifest.Digest, Size: it.img.Manifest.Size}
			if len(it.names) == 0 {
				idx.Manifests = append(idx.Manifests, desc)
			}
			for _, n := range it.names {
				d := desc
				d.Annotations = map[string]string{annotationContainerdName: n}
				if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
					d.Annotations[AnnotationRefName] = n[i+1:]
				}
				idx.Manifests = append(idx.Manifests, d)
			}
		}
		if err := writeTarFile(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return err
		}
		data, err := json.Marshal(idx)
		if err != nil {
			return err
		}
		if err := writeTarFile(tw, "index.json", data); err != nil {
			return err
		}
	default:
		return fmt.Errorf("save: unknown format %q (docker-archive or oci-archive)", format)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func tarHeader(name string, size int64) *tar.Header {
	return &tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

func writeTarFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(tarHeader(name, int64(len(data)))); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func (s *Service) writeBlobEntry(tw *tar.Writer, name string, d digest.Digest, written map[string]bool) error {
	if written[name] {
		return nil
	}
	written[name] = true
	f, err := s.content.Open(d)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(tarHeader(name, fi.Size())); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("save: %s: %w", d, err)
	}
	return nil
}

// writeUncompressedLayer writes a layer blob decompressed. The tar header
// needs the size first, so a compressed blob is decompressed twice: once
// to count, once to copy (cheaper than a temp file of the whole layer).
func (s *Service) writeUncompressedLayer(tw *tar.Writer, name string, d digest.Digest, written map[string]bool) error {
	if written[name] {
		return nil
	}
	open := func() (io.ReadCloser, func(), error) {
		f, err := s.content.Open(d)
		if err != nil {
			return nil, nil, fmt.Errorf("save: %w", err)
		}
		rc, _, err := decompressStream(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("save: layer %s: %w", d, err)
		}
		return rc, func() { rc.Close(); f.Close() }, nil
	}
	rc, done, err := open()
	if err != nil {
		return err
	}
	size, err := io.Copy(io.Discard, rc)
	done()
	if err != nil {
		return fmt.Errorf("save: layer %s: %w", d, err)
	}
	rc, done, err = open()
	if err != nil {
		return err
	}
	defer done()
	written[name] = true
	if err := tw.WriteHeader(tarHeader(name, size)); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if _, err := io.CopyN(tw, rc, size); err != nil {
		return fmt.Errorf("save: layer %s: %w", d, err)
	}
	return nil
}

// ImportOptions describe an imported image.
type ImportOptions struct {
	Name     string // optional name
	Message  string // history comment
	Platform *ocispec.Platform
	Changes  ocispec.ImageConfig // CMD, ENV, … for the config
}

// Import makes a one-layer image from a rootfs tarball (plain, gzip or
// zstd), like docker import.
func (s *Service) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	ctx = ctxOrBackground(ctx)
	var names []string
	if opts.Name != "" {
		n, err := normalizeName(opts.Name)
		if err != nil {
			return nil, err
		}
		names = []string{n.String()}
	}
	rc, _, err := decompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer rc.Close()
	release, err := s.holdContent()
	if err != nil {
		return nil, err
	}
	defer release()
	diff, size, err := s.content.Add(rc)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	plat := manifest.HostPlatform()
	if opts.Platform != nil {
		plat = *opts.Platform
	}
	now := time.Now().UTC()
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg := ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant},
		Config:   opts.Changes,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diff}},
		History:  []ocispec.History{{Created: &now, CreatedBy: "capsa import", Comment: comment}},
	}
	cdata, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cd, err := s.content.Put(cdata)
	if err != nil {
		return nil, err
	}
	mf := ocispec.Manifest{
		Versioned: manifest.Versioned(),
		MediaType: manifest.MediaTypeDockerManifest,
		Config:    ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Digest: cd, Size: int64(len(cdata))},
		Layers:    []ocispec.Descriptor{{MediaType: mediaTypeDockerLayer, Digest: diff, Size: size}},
	}
	mdata, err := json.Marshal(mf)
	if err != nil {
		return nil, err
	}
	md, err := s.content.Put(mdata)
	if err != nil {
		return nil, err
	}
	if err := s.unpackAll(ctx, &mf, &cfg, nil); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	desc := ocispec.Descriptor{MediaType: mf.MediaType, Digest: md, Size: int64(len(mdata))}
	if err := s.name(desc, names); err != nil {
		return nil, err
	}
	return s.Get(cd.String())
}
