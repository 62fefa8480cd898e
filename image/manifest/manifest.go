// Package manifest parses and validates the OCI and Docker image
// metadata that comes from registries and archives (manifests, indexes,
// image configs) and selects platforms from indexes. Everything here is
// pure (no I/O) so that it can be fuzzed: the input is hostile.
package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of Docker's schema 2, which OCI's package does not name.
const (
	MediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Versioned is the schemaVersion 2 header of manifests and indexes.
func Versioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

// validDigest checks that d is a well-formed sha256 digest: digests from
// manifests name files in the blob store.
func validDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("unsupported digest algorithm %q in %s (only sha256)", d.Algorithm(), d)
	}
	return nil
}

// Size limits for metadata read from registries and archives: they are
// read into memory, so a hostile source must not choose their size.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 8 << 20
	MaxLayers       = 256
)

// ChainIDs computes OCI chain IDs from diff IDs.
func ChainIDs(diffIDs []digest.Digest) []string {
	out := make([]string, len(diffIDs))
	var chain digest.Digest
	for i, d := range diffIDs {
		if i == 0 {
			chain = d
		} else {
			chain = digest.FromString(chain.String() + " " + d.String())
		}
		out[i] = chain.String()
	}
	return out
}

// ParseManifest parses and validates an image manifest (OCI or Docker schema 2).
func ParseManifest(data []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if err := ValidateManifest(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ValidateManifest checks what a hostile manifest could abuse: digests
// that are not sha256 hex (they name files), negative sizes, absurd layer
// counts, and media types that are not image layers.
func ValidateManifest(m *ocispec.Manifest) error {
	if m.SchemaVersion != 2 {
		return fmt.Errorf("manifest: unsupported schemaVersion %d", m.SchemaVersion)
	}
	switch m.MediaType {
	case "", ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
	default:
		return fmt.Errorf("manifest: unexpected mediaType %q", m.MediaType)
	}
	if err := validDigest(m.Config.Digest); err != nil {
		return fmt.Errorf("manifest config: %w", err)
	}
	if m.Config.Size < 0 || m.Config.Size > MaxConfigSize {
		return fmt.Errorf("manifest: config size %d outside 0..%d", m.Config.Size, MaxConfigSize)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig:
	default:
		return fmt.Errorf("manifest: config mediaType %q is not an image config (artifact?)", m.Config.MediaType)
	}
	if len(m.Layers) > MaxLayers {
		return fmt.Errorf("manifest: %d layers, more than the %d allowed", len(m.Layers), MaxLayers)
	}
	for i, l := range m.Layers {
		if err := validDigest(l.Digest); err != nil {
			return fmt.Errorf("manifest layer %d: %w", i, err)
		}
		if l.Size < 0 {
			return fmt.Errorf("manifest layer %d: negative size", i)
		}
		if !LayerMediaType(l.MediaType) {
			return fmt.Errorf("manifest layer %d: unsupported mediaType %q", i, l.MediaType)
		}
		if len(l.URLs) > 0 {
			return fmt.Errorf("manifest layer %d: foreign layers (urls) are not supported", i)
		}
	}
	return nil
}

// LayerMediaType reports whether mt is a layer media type capsa unpacks.
func LayerMediaType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		"application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar",
		"application/vnd.docker.image.rootfs.diff.tar.zstd":
		return true
	}
	return false
}

// ParseIndex parses and validates an index or Docker manifest list.
func ParseIndex(data []byte) (*ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("parse index: %w", err)
	}
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("index: unsupported schemaVersion %d", idx.SchemaVersion)
	}
	for i, m := range idx.Manifests {
		if err := validDigest(m.Digest); err != nil {
			return nil, fmt.Errorf("index entry %d: %w", i, err)
		}
		if m.Size < 0 || m.Size > MaxManifestSize {
			return nil, fmt.Errorf("index entry %d: size %d outside 0..%d", i, m.Size, MaxManifestSize)
		}
	}
	return &idx, nil
}

// ParseConfig parses and validates an image config.
func ParseConfig(data []byte) (*ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parse image config: %w", err)
	}
	if c.RootFS.Type != "layers" {
		return nil, fmt.Errorf("image config: rootfs type %q, want \"layers\"", c.RootFS.Type)
	}
	if len(c.RootFS.DiffIDs) > MaxLayers {
		return nil, fmt.Errorf("image config: %d layers, more than the %d allowed", len(c.RootFS.DiffIDs), MaxLayers)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := validDigest(d); err != nil {
			return nil, fmt.Errorf("image config diff_id %d: %w", i, err)
		}
	}
	return &c, nil
}

// IsIndex reports whether a manifest media type (or, lacking one,
// the document itself) is an index / manifest list.
func IsIndex(mediaType string, data []byte) bool {
	switch mediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerList:
		return true
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		return false
	}
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	if probe.MediaType != "" {
		return probe.MediaType == ocispec.MediaTypeImageIndex || probe.MediaType == MediaTypeDockerList
	}
	return probe.Manifests != nil
}

// ParsePlatform parses "os/arch[/variant]" (e.g. linux/arm64/v8).
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	bad := len(parts) < 2 || len(parts) > 3
	for _, p := range parts {
		bad = bad || !platformPart.MatchString(p)
	}
	if bad {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant], e.g. linux/arm64", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return Normalize(p), nil
}

var platformPart = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// HostPlatform is the platform of this machine.
func HostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = armVariant()
	}
	return Normalize(p)
}

// armVariant reads the CPU architecture of a 32-bit arm host.
func armVariant() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "v7"
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "CPU architecture" {
			switch strings.TrimSpace(v) {
			case "6", "7", "8":
				return "v" + strings.TrimSpace(v)
			}
		}
	}
	return "v7"
}

// Normalize maps the aliases images use onto one spelling, the
// way containerd's platforms package does: aarch64 → arm64 (variant v8 is
// the default and dropped), x86_64 → amd64, armhf → arm/v7.
func Normalize(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	switch strings.ToLower(p.Architecture) {
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "8" || p.Variant == "v8" {
			p.Variant = ""
		}
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "i386", "386":
		p.Architecture = "386"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		p.Architecture = "arm"
		switch p.Variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + p.Variant
		}
	default:
		p.Architecture = strings.ToLower(p.Architecture)
	}
	return p
}

// PlatformString formats p as os/arch[/variant].
func PlatformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Match reports whether an index entry for have can run as want.
func Match(want, have ocispec.Platform) bool {
	w, h := Normalize(want), Normalize(have)
	return w.OS == h.OS && w.Architecture == h.Architecture && w.Variant == h.Variant
}

// Select picks the manifest for want from an index; attestation
// manifests (platform unknown/unknown) are never chosen.
func Select(idx *ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		if Match(want, *m.Platform) {
			return m, nil
		}
		have = append(have, PlatformString(Normalize(*m.Platform)))
	}
	return ocispec.Descriptor{}, fmt.Errorf("no image for platform %s in the index (it has: %s)", PlatformString(want), strings.Join(have, ", "))
}
