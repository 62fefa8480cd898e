package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/image"
	"github.com/opencontainers/go-digest"
)

type entry struct {
	name, link string
	data       []byte
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Archives are hostile input: each broken one fails with an error that
// names the problem, and leaves no image behind.
func TestLoadRejectsHostileArchives(t *testing.T) {
	layerTar := tarOf(t, entry{name: "hello", data: []byte("world")})
	diff := digest.FromBytes(layerTar)
	config := jsonOf(t, map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{diff.String()}}})
	badConfig := jsonOf(t, map[string]any{"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromString("other").String()}}})
	manifest := func(cfg string, layers ...string) []byte {
		return jsonOf(t, []map[string]any{{"Config": cfg, "RepoTags": []string{"imgtest/x:1"}, "Layers": layers}})
	}
	for name, c := range map[string]struct {
		archive []byte
		want    string
	}{
		"not an archive": {[]byte("hello"), "read archive"},
		"no manifest":    {tarOf(t, entry{name: "x", data: []byte("y")}), "not an image archive"},
		"escaping layer path": {tarOf(t,
			entry{name: "c.json", data: config},
			entry{name: "manifest.json", data: manifest("c.json", "../../../etc/passwd")}), `lacks file "etc/passwd"`},
		"diff_id mismatch": {tarOf(t,
			entry{name: "c.json", data: badConfig},
			entry{name: "l.tar", data: layerTar},
			entry{name: "manifest.json", data: manifest("c.json", "l.tar")}), "config says diff_id"},
		"symlink loop": {tarOf(t,
			entry{name: "c.json", data: config},
			entry{name: "a.tar", link: "b.tar"},
			entry{name: "b.tar", link: "a.tar"},
			entry{name: "manifest.json", data: manifest("c.json", "a.tar")}), "lacks file"},
		"layer count": {tarOf(t,
			entry{name: "c.json", data: config},
			entry{name: "l.tar", data: layerTar},
			entry{name: "manifest.json", data: manifest("c.json", "l.tar", "l.tar")}), "lists 2 layers"},
		"oci blob digest mismatch": {tarOf(t,
			entry{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
			entry{name: "blobs/sha256/" + diff.Encoded(), data: []byte("not the layer")}), "digest mismatch"},
		"oci blob bad name": {tarOf(t,
			entry{name: "blobs/sha256/..%2f..%2fetc", data: []byte("x")}), "invalid digest"},
		"oci index missing blob": {tarOf(t,
			entry{name: "index.json", data: jsonOf(t, map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest.FromString("m").String(), "size": 1}}})}), "not found"},
		"huge manifest.json": {tarOf(t, entry{name: "manifest.json", data: bytes.Repeat([]byte(" "), 5<<20)}), "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			svc, err := image.Open(filepath.Join(t.TempDir(), "image"), image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.Load(context.Background(), bytes.NewReader(c.archive), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: %v; want an error containing %q", err, c.want)
			}
			if imgs, err := svc.List(); err != nil || len(imgs) != 0 {
				t.Fatalf("images after a failed load: %v %v", imgs, err)
			}
		})
	}
	// The same pieces, well-formed, load (store only, no unpack).
	svc, err := image.Open(filepath.Join(t.TempDir(), "image"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := svc.Load(context.Background(), bytes.NewReader(tarOf(t,
		entry{name: "c.json", data: config},
		entry{name: "dir/layer.tar", data: layerTar},
		entry{name: "l.tar", link: "dir/layer.tar"},
		entry{name: "manifest.json", data: manifest("c.json", "l.tar")})), nil)
	if err != nil || len(loaded) != 1 || loaded[0].Name != "docker.io/imgtest/x:1" || loaded[0].ID != digest.FromBytes(config) {
		t.Fatalf("well-formed archive: %+v %v", loaded, err)
	}
}

// Names written concurrently from separate handles (as separate processes
// would) are all kept: index.json updates are serialised by its flock.
func TestConcurrentTagging(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	layerTar := tarOf(t, entry{name: "f", data: []byte("x")})
	config := jsonOf(t, map[string]any{"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromBytes(layerTar).String()}}})
	svc, err := image.Open(dir, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Load(context.Background(), bytes.NewReader(tarOf(t,
		entry{name: "c.json", data: config}, entry{name: "l.tar", data: layerTar},
		entry{name: "manifest.json", data: jsonOf(t, []map[string]any{{"Config": "c.json", "RepoTags": []string{"imgtest/base:1"}, "Layers": []string{"l.tar"}}})})), nil); err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			h, err := image.Open(dir, image.Options{})
			if err == nil {
				err = h.Tag("imgtest/base:1", "imgtest/tag:"+string(rune('a'+i)))
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	img, err := svc.Get("imgtest/base:1")
	if err != nil || len(img.Names) != n+1 {
		t.Fatalf("names after concurrent tagging: %v %v", img, err)
	}
}

// docker save since Docker 25 writes an OCI layout with a manifest.json
// beside index.json; manifest.json (with its RepoTags) wins.
func TestLoadDocker25Layout(t *testing.T) {
	layerTar := tarOf(t, entry{name: "hello", data: []byte("world")})
	ld := digest.FromBytes(layerTar)
	config := jsonOf(t, map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{ld.String()}}})
	cd := digest.FromBytes(config)
	mf := jsonOf(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layerTar)}}})
	md := digest.FromBytes(mf)
	archive := tarOf(t,
		entry{name: "blobs/sha256/" + cd.Encoded(), data: config},
		entry{name: "blobs/sha256/" + ld.Encoded(), data: layerTar},
		entry{name: "blobs/sha256/" + md.Encoded(), data: mf},
		entry{name: "index.json", data: jsonOf(t, map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(mf),
			"annotations": map[string]string{"io.containerd.image.name": "docker.io/imgtest/d25:1", "org.opencontainers.image.ref.name": "1"}}}})},
		entry{name: "manifest.json", data: jsonOf(t, []map[string]any{{"Config": "blobs/sha256/" + cd.Encoded(), "RepoTags": []string{"imgtest/d25:1"}, "Layers": []string{"blobs/sha256/" + ld.Encoded()}}})},
		entry{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	)
	svc, err := image.Open(filepath.Join(t.TempDir(), "image"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := svc.Load(context.Background(), bytes.NewReader(archive), nil)
	if err != nil || len(loaded) != 1 || loaded[0].Name != "docker.io/imgtest/d25:1" || loaded[0].ID != cd {
		t.Fatalf("docker 25 archive: %+v %v", loaded, err)
	}
	// The same layout without manifest.json loads as an oci-archive, named
	// by io.containerd.image.name.
	svc2, err := image.Open(filepath.Join(t.TempDir(), "image"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ociOnly := tarOf(t,
		entry{name: "blobs/sha256/" + cd.Encoded(), data: config},
		entry{name: "blobs/sha256/" + ld.Encoded(), data: layerTar},
		entry{name: "blobs/sha256/" + md.Encoded(), data: mf},
		entry{name: "index.json", data: jsonOf(t, map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(mf),
			"annotations": map[string]string{"io.containerd.image.name": "docker.io/imgtest/d25:1"}}}})},
	)
	loaded, err = svc2.Load(context.Background(), bytes.NewReader(ociOnly), nil)
	if err != nil || len(loaded) != 1 || loaded[0].Name != "docker.io/imgtest/d25:1" {
		t.Fatalf("oci layout: %+v %v", loaded, err)
	}
}
