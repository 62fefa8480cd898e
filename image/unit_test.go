package image

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSetName(t *testing.T) {
	idx := &ocispec.Index{}
	m1, m2 := desc("m1", nil), desc("m2", nil)
	setName(idx, "", m1, "")
	setName(idx, "docker.io/library/a:1", m1, "")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations[AnnotationRefName] != "docker.io/library/a:1" {
		t.Fatalf("naming a dangling image: %+v", idx.Manifests)
	}
	setName(idx, "docker.io/library/a:1", m2, "")
	if len(idx.Manifests) != 2 || idx.Manifests[1].Digest != m2.Digest {
		t.Fatalf("moving a tag: %+v", idx.Manifests)
	}
	if idx.Manifests[0].Digest != m1.Digest || idx.Manifests[0].Annotations[AnnotationRefName] != "" {
		t.Fatalf("the image a moved tag left is not dangling: %+v", idx.Manifests)
	}
	setName(idx, "", m2, "")
	if len(idx.Manifests) != 2 {
		t.Fatalf("dangling entry for a named manifest: %+v", idx.Manifests)
	}
	setName(idx, "docker.io/library/b:1", m1, "")
	if len(idx.Manifests) != 2 || idx.Manifests[1].Annotations[AnnotationRefName] != "docker.io/library/b:1" {
		t.Fatalf("naming the dangling image: %+v", idx.Manifests)
	}
}

func TestResolve(t *testing.T) {
	mk := func(id string, names ...string) *Image {
		return &Image{ID: digest.Digest("sha256:" + id + strings.Repeat("0", 64-len(id))), Names: names}
	}
	imgs := []*Image{mk("abc1", "docker.io/library/busybox:latest"), mk("abc2", "example.com/x/y:1")}
	for ref, want := range map[string]int{"busybox": 0, "busybox:latest": 0, "docker.io/library/busybox": 0, "example.com/x/y:1": 1, "abc2": 1, "sha256:abc1": 0} {
		got, err := resolve(imgs, ref)
		if err != nil || got != imgs[want] {
			t.Errorf("resolve(%q) = %v, %v", ref, got, err)
		}
	}
	if _, err := resolve(imgs, "abc"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := resolve(imgs, "nope"); err == nil {
		t.Error("unknown name resolved")
	}
}

func desc(d string, p *ocispec.Platform) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(d), Size: 10, Platform: p}
}
