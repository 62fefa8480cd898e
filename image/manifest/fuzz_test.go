package manifest

import (
	"testing"
)

// The fuzz targets feed registry and archive metadata (hostile input) to
// the parsers: they must return errors, never panic, and anything they
// accept must be safe to use as blob names.

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		if err := ValidateManifest(m); err != nil {
			t.Fatalf("accepted manifest fails validation: %v", err)
		}
		for _, l := range m.Layers {
			if len(l.Digest.Encoded()) != 64 {
				t.Fatalf("accepted layer digest %q", l.Digest)
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":2,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		IsIndex("", data)
		idx, err := ParseIndex(data)
		if err != nil {
			return
		}
		for _, p := range []string{"linux/amd64", "linux/arm64", "linux/arm/v7"} {
			want, _ := ParsePlatform(p)
			if d, err := Select(idx, want); err == nil && len(d.Digest.Encoded()) != 64 {
				t.Fatalf("selected digest %q", d.Digest)
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if len(ChainIDs(c.RootFS.DiffIDs)) != len(c.RootFS.DiffIDs) {
			t.Fatal("chain IDs")
		}
	})
}

func FuzzParsePlatform(f *testing.F) {
	f.Add("linux/arm64/v8")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			return
		}
		// Normalizing twice changes nothing.
		if q, err := ParsePlatform(PlatformString(p)); err != nil || PlatformString(q) != PlatformString(p) {
			t.Fatalf("%q → %q → %q (%v)", s, PlatformString(p), PlatformString(q), err)
		}
	})
}
