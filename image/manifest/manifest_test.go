package manifest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]string{
		"linux/arm64":     "linux/arm64",
		"linux/arm64/v8":  "linux/arm64",
		"linux/aarch64":   "linux/arm64",
		"linux/x86_64":    "linux/amd64",
		"linux/arm":       "linux/arm/v7",
		"linux/arm/v6":    "linux/arm/v6",
		"Linux/AMD64":     "linux/amd64",
		"linux/riscv64":   "linux/riscv64",
		"linux/arm64/v9":  "linux/arm64/v9",
		"windows/amd64":   "windows/amd64",
		"linux/ppc64le":   "linux/ppc64le",
		"linux/386":       "linux/386",
		"linux/i386":      "linux/386",
		"linux/armhf":     "linux/arm/v7",
		"linux/arm64/8":   "linux/arm64",
		"linux/amd64/v1":  "linux/amd64",
		"linux/amd64/v3":  "linux/amd64/v3",
		"linux/s390x":     "linux/s390x",
		"linux/mips64le":  "linux/mips64le",
		"freebsd/amd64":   "freebsd/amd64",
		"linux/arm/7":     "linux/arm/v7",
		"linux/loong64":   "linux/loong64",
		" linux/arm64 ":   "linux/arm64",
		"linux/arm/v5":    "linux/arm/v5",
		"linux/arm64/v8 ": "linux/arm64",
	} {
		p, err := ParsePlatform(in)
		if err != nil {
			t.Errorf("ParsePlatform(%q): %v", in, err)
			continue
		}
		if got := PlatformString(p); got != want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
}

func desc(d string, p *ocispec.Platform) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(d), Size: 10, Platform: p}
}

func TestSelectManifest(t *testing.T) {
	idx := &ocispec.Index{Manifests: []ocispec.Descriptor{
		desc("att", &ocispec.Platform{OS: "unknown", Architecture: "unknown"}),
		desc("amd64", &ocispec.Platform{OS: "linux", Architecture: "amd64"}),
		desc("armv6", &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}),
		desc("armv7", &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}),
		desc("arm64", &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}),
		desc("none", nil),
	}}
	for want, p := range map[string]string{"amd64": "linux/amd64", "armv7": "linux/arm", "armv6": "linux/arm/v6", "arm64": "linux/arm64"} {
		plat, _ := ParsePlatform(p)
		got, err := Select(idx, plat)
		if err != nil || got.Digest != digest.FromString(want) {
			t.Errorf("select %s: %v %v", p, got.Digest, err)
		}
	}
	plat, _ := ParsePlatform("linux/riscv64")
	if _, err := Select(idx, plat); err == nil || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("missing platform: %v", err)
	}
}

func TestChainIDs(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	got := ChainIDs([]digest.Digest{a, b})
	if got[0] != a.String() || got[1] != digest.FromString(a.String()+" "+b.String()).String() {
		t.Fatalf("ChainIDs = %v", got)
	}
}

func manifestJSON(t *testing.T, mutate func(m *ocispec.Manifest)) []byte {
	m := ocispec.Manifest{
		Versioned: Versioned(),
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("c"), Size: 2},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("l"), Size: 3}},
	}
	if mutate != nil {
		mutate(&m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseManifestRejects(t *testing.T) {
	if _, err := ParseManifest(manifestJSON(t, nil)); err != nil {
		t.Fatalf("valid manifest: %v", err)
	}
	for what, fn := range map[string]func(m *ocispec.Manifest){
		"path digest":     func(m *ocispec.Manifest) { m.Layers[0].Digest = "sha256:../../etc" },
		"sha512":          func(m *ocispec.Manifest) { m.Config.Digest = "sha512:" + digest.Digest(strings.Repeat("a", 128)) },
		"negative size":   func(m *ocispec.Manifest) { m.Layers[0].Size = -1 },
		"huge config":     func(m *ocispec.Manifest) { m.Config.Size = 1 << 40 },
		"artifact config": func(m *ocispec.Manifest) { m.Config.MediaType = "application/vnd.example+json" },
		"layer type":      func(m *ocispec.Manifest) { m.Layers[0].MediaType = "text/plain" },
		"foreign layer":   func(m *ocispec.Manifest) { m.Layers[0].URLs = []string{"http://example.com/x"} },
		"schema 1":        func(m *ocispec.Manifest) { m.SchemaVersion = 1 },
		"too many layers": func(m *ocispec.Manifest) {
			for i := 0; i < MaxLayers; i++ {
				m.Layers = append(m.Layers, m.Layers[0])
			}
		},
	} {
		if _, err := ParseManifest(manifestJSON(t, fn)); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

func TestIsIndexType(t *testing.T) {
	if !IsIndex("", []byte(`{"schemaVersion":2,"manifests":[]}`)) {
		t.Error("index without mediaType not detected")
	}
	if IsIndex("", manifestJSON(t, nil)) {
		t.Error("manifest taken for an index")
	}
	if !IsIndex("application/vnd.docker.distribution.manifest.list.v2+json", nil) {
		t.Error("docker list media type")
	}
}
