package image_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capsa-project/capsa/bundle"
	"github.com/capsa-project/capsa/image"
	"github.com/capsa-project/capsa/image/registry"
	"github.com/capsa-project/capsa/internal/testregistry"
	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/layer"
	"github.com/capsa-project/capsa/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMain(m *testing.M) { testutil.Main(m) }

type store struct {
	svc   *image.Service
	snaps *snapshot.Snapshotter
	root  string
}

func newStore(t *testing.T, ropts registry.Options) *store {
	t.Helper()
	root := t.TempDir()
	snaps, err := snapshot.New(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := image.Open(filepath.Join(root, "image"), image.Options{
		Registry:  ropts,
		Snapshots: snaps,
		Unpacker: image.Unpacker{
			Decompress: layer.Decompress,
			Unpack:     func(r io.Reader, dir string) error { return layer.Unpack(r, dir, layer.Limits{}) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &store{svc: svc, snaps: snaps, root: root}
}

// busyboxImage imports a busybox rootfs as a one-layer image named name.
func busyboxImage(t *testing.T, s *store, name string, cfg ocispec.ImageConfig) *image.Image {
	t.Helper()
	rootfs := t.TempDir()
	testutil.BusyboxRootfs(t, rootfs)
	tarData := testregistry.TarDir(t, rootfs)
	img, err := s.svc.Import(context.Background(), bytes.NewReader(tarData), image.ImportOptions{Name: name, Changes: cfg})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return img
}

// runImage mounts img's snapshot, writes a bundle from its config and runs
// it with capsa-runtime, returning the container's output.
func runImage(t *testing.T, s *store, img *image.Image, state string) string {
	t.Helper()
	key := fmt.Sprintf("imgtest-%d", time.Now().UnixNano())
	if err := s.snaps.Prepare(key, img.ChainIDs()); err != nil {
		t.Fatalf("prepare snapshot: %v", err)
	}
	t.Cleanup(func() {
		if err := s.snaps.Remove(key); err != nil {
			t.Errorf("remove snapshot: %v", err)
		}
	})
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.snaps.Mount(key, rootfs); err != nil {
		t.Fatalf("mount: %v", err)
	}
	defer func() {
		if err := s.snaps.Unmount(rootfs); err != nil {
			t.Errorf("unmount: %v", err)
		}
	}()
	spec, err := bundle.Spec(img.Config, rootfs, bundle.Options{Hostname: "imgtest"})
	if err != nil {
		t.Fatalf("bundle spec: %v", err)
	}
	if err := bundle.Write(dir, spec); err != nil {
		t.Fatal(err)
	}
	rt := os.Getenv("CAPSA_TEST_RUNTIME")
	if rt == "" {
		rt = testutil.Binary(t, "capsa-runtime")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rt, "--root", state, "run", "--bundle", dir, key)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s run: %v\n%s", filepath.Base(rt), err, out)
	}
	return string(out)
}

// Acceptance 1: build, push, rmi, pull by tag and by digest, run.
func TestPushPullRun(t *testing.T) {
	testutil.RequireRoot(t)
	state := t.TempDir()
	testutil.CheckLeaks(t, state)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	s := newStore(t, registry.Options{})
	name := reg.Host + "/imgtest/busybox:v1"
	orig := busyboxImage(t, s, name, ocispec.ImageConfig{
		Cmd:        []string{"/bin/sh", "-c", "echo hello-from-image; id -u; pwd; echo $GREETING"},
		User:       "user",
		WorkingDir: "/home/user",
		Env:        []string{"GREETING=hi-there"},
	})
	res, err := s.svc.Push(ctx, name, nil)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	rm, err := s.svc.Remove(name, false)
	if err != nil {
		t.Fatalf("rmi: %v", err)
	}
	if len(rm.Untagged) != 1 || len(rm.Deleted) == 0 {
		t.Fatalf("rmi did %+v", rm)
	}
	if _, err := s.svc.Get(name); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("image still there after rmi: %v", err)
	}
	if blobs, _ := s.svc.Content().Blobs(); len(blobs) != 0 {
		t.Fatalf("rmi left %d blobs", len(blobs))
	}
	if layers, _ := s.snaps.Layers(); len(layers) != 0 {
		t.Fatalf("rmi left layers %v", layers)
	}

	pulled, err := s.svc.Pull(ctx, name, image.PullOptions{})
	if err != nil {
		t.Fatalf("pull by tag: %v", err)
	}
	if pulled.Image.ID != orig.ID {
		t.Fatalf("pulled ID %s, pushed %s", pulled.Image.ID, orig.ID)
	}
	if pulled.Digest.String() != res.Digest {
		t.Fatalf("pull digest %s, push digest %s", pulled.Digest, res.Digest)
	}
	byDigest := reg.Host + "/imgtest/busybox@" + res.Digest
	again, err := s.svc.Pull(ctx, byDigest, image.PullOptions{})
	if err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	if again.Image.ID != orig.ID || !again.UpToDate {
		t.Fatalf("pull by digest: id %s up-to-date %v", again.Image.ID, again.UpToDate)
	}
	img, err := s.svc.Get(byDigest)
	if err != nil {
		t.Fatalf("get by digest: %v", err)
	}
	out := runImage(t, s, img, state)
	for _, want := range []string{"hello-from-image", "1000", "/home/user", "hi-there"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
}

// Acceptance 1: an index pulls the host's platform by default and arm64
// with a platform option; layers are gzip and zstd.
func TestMultiPlatformIndex(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	imgs := map[string]v1.Image{}
	for _, p := range []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
		{OS: "linux", Architecture: "s390x"},
	} {
		key := p.Architecture + p.Variant
		base := testregistry.Layer(t, testregistry.TarFiles(t, map[string]string{"etc/arch": key}), false)
		top := testregistry.Layer(t, testregistry.TarFiles(t, map[string]string{"etc/top": "zstd-" + key}), true)
		imgs[key] = testregistry.Image(t, v1.Config{Cmd: []string{"/bin/true"}}, p, true, base, top)
	}
	ref := reg.Host + "/imgtest/multi:v1"
	testregistry.PushIndex(t, ref, imgs)
	s := newStore(t, registry.Options{})

	host, err := s.svc.Pull(ctx, ref, image.PullOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if host.Image.Config.Architecture != runtime.GOARCH {
		t.Fatalf("default pull got %s, host is %s", host.Image.Config.Architecture, runtime.GOARCH)
	}
	arm64, err := image.ParsePlatform("linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.svc.Pull(ctx, ref, image.PullOptions{Platform: &arm64})
	if err != nil {
		t.Fatalf("pull arm64: %v", err)
	}
	cfg := res.Image.Config
	if cfg.Architecture != "arm64" || cfg.Variant != "v8" {
		t.Fatalf("arm64 pull got %s/%s", cfg.Architecture, cfg.Variant)
	}
	chain := res.Image.ChainIDs()
	for i, want := range map[int][2]string{0: {"etc/arch", "arm64v8"}, 1: {"etc/top", "zstd-arm64v8"}} {
		dir, err := s.snaps.LayerDir(chain[i])
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, want[0]))
		if err != nil || string(got) != want[1] {
			t.Fatalf("layer %d %s = %q, %v; want %q", i, want[0], got, err, want[1])
		}
	}
	armv7, _ := image.ParsePlatform("linux/arm")
	if res, err := s.svc.Pull(ctx, ref, image.PullOptions{Platform: &armv7}); err != nil || res.Image.Config.Variant != "v7" {
		t.Fatalf("pull linux/arm: %v", err)
	}
	riscv, _ := image.ParsePlatform("linux/riscv64")
	if _, err := s.svc.Pull(ctx, ref, image.PullOptions{Platform: &riscv}); err == nil || !strings.Contains(err.Error(), "no image for platform linux/riscv64") {
		t.Fatalf("pull of a missing platform: %v", err)
	}
	// A single-platform image must match an explicit platform.
	single := reg.Host + "/imgtest/single:v1"
	testregistry.Push(t, single, imgs["s390x"])
	if _, err := s.svc.Pull(ctx, single, image.PullOptions{Platform: &riscv}); err == nil || !strings.Contains(err.Error(), "not the requested linux/riscv64") {
		t.Fatalf("pull of a single-platform image for another platform: %v", err)
	}
	if res, err := s.svc.Pull(ctx, single, image.PullOptions{}); err != nil || res.Image.Config.Architecture != "s390x" {
		t.Fatalf("pull of a single-platform image without --platform: %v", err)
	}
}

// Acceptance 3: a layer whose content does not match its digest fails the
// pull with a clear error, nothing is committed under that digest, and a
// clean pull afterwards works.
func TestCorruptLayerRejected(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	var corrupt atomic.Bool
	corrupt.Store(true)
	tarData := testregistry.TarFiles(t, map[string]string{"etc/data": strings.Repeat("payload ", 4096)})
	l := testregistry.Layer(t, tarData, false)
	ld, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if corrupt.Load() && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) {
				h.ServeHTTP(&flipWriter{ResponseWriter: w}, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	ref := reg.Host + "/imgtest/corrupt:v1"
	testregistry.Push(t, ref, testregistry.Image(t, v1.Config{}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, false, l))
	s := newStore(t, registry.Options{})
	_, err = s.svc.Pull(ctx, ref, image.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") || !strings.Contains(err.Error(), ld.String()) {
		t.Fatalf("pull of a corrupt layer: %v", err)
	}
	d := digest.Digest(ld.String())
	if _, ok := s.svc.Content().Size(d); ok {
		t.Fatal("corrupt blob committed under its digest")
	}
	if _, err := s.svc.Get(ref); err == nil {
		t.Fatal("image named after a failed pull")
	}
	corrupt.Store(false)
	res, err := s.svc.Pull(ctx, ref, image.PullOptions{})
	if err != nil {
		t.Fatalf("clean pull after a corrupt one: %v", err)
	}
	dir, err := s.snaps.LayerDir(res.Image.ChainIDs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "etc/data")); err != nil || len(data) != 8*4096 {
		t.Fatalf("unpacked layer: %d bytes, %v", len(data), err)
	}
}

// flipWriter corrupts one byte in the middle of a response body.
type flipWriter struct {
	http.ResponseWriter
	n int
}

func (f *flipWriter) Write(p []byte) (int, error) {
	q := append([]byte{}, p...)
	for i := range q {
		if f.n+i == 100 {
			q[i] ^= 0xff
		}
	}
	f.n += len(p)
	return f.ResponseWriter.Write(q)
}

// A config whose diff_id does not match the layer content is refused at
// unpack time, naming the diff_id.
func TestDiffIDMismatchRejected(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	l := testregistry.Layer(t, testregistry.TarFiles(t, map[string]string{"a": "a"}), false)
	img := testregistry.Image(t, v1.Config{}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, false, l)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	bogus := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	cf.RootFS.DiffIDs = []v1.Hash{bogus}
	img = withConfig(t, img, cf)
	ref := reg.Host + "/imgtest/diffid:v1"
	testregistry.Push(t, ref, img)
	s := newStore(t, registry.Options{})
	_, err = s.svc.Pull(ctx, ref, image.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), bogus.String()) {
		t.Fatalf("pull with a wrong diff_id: %v", err)
	}
	if layers, _ := s.snaps.Layers(); len(layers) != 0 {
		t.Fatalf("a layer was committed: %v", layers)
	}
}

// Credentials and TLS: a registry with a self-signed certificate and
// basic auth is reachable with the CA in a certs dir and the right
// credentials, and refused otherwise.
func TestTLSAndAuth(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{"imgtest": "s3cret"}})
	certs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(certs, reg.Host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, reg.Host, "ca.crt"), reg.CACertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	name := reg.Host + "/imgtest/tls:v1"
	good := newStore(t, registry.Options{CertsDirs: []string{certs}, Keychain: staticKeychain{"imgtest", "s3cret"}})
	busyboxImage(t, good, name, ocispec.ImageConfig{Cmd: []string{"true"}})
	if _, err := good.svc.Push(ctx, name, nil); err != nil {
		t.Fatalf("push with CA and credentials: %v", err)
	}
	if _, err := good.svc.Pull(ctx, name, image.PullOptions{}); err != nil {
		t.Fatalf("pull with CA and credentials: %v", err)
	}
	noCA := newStore(t, registry.Options{Keychain: staticKeychain{"imgtest", "s3cret"}})
	if _, err := noCA.svc.Pull(ctx, name, image.PullOptions{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("pull without the CA: %v", err)
	}
	badPass := newStore(t, registry.Options{CertsDirs: []string{certs}, Keychain: staticKeychain{"imgtest", "wrong"}})
	if _, err := badPass.svc.Pull(ctx, name, image.PullOptions{}); err == nil || !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Fatalf("pull with a wrong password: %v", err)
	}
	insecure := newStore(t, registry.Options{Insecure: []string{reg.Host}, Keychain: staticKeychain{"imgtest", "s3cret"}})
	if _, err := insecure.svc.Pull(ctx, name, image.PullOptions{}); err != nil {
		t.Fatalf("pull from an opted-in insecure registry: %v", err)
	}
}

// Concurrent pulls of one image (also from separate store handles, as
// separate processes would have) fetch each blob once and all succeed.
func TestConcurrentPulls(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	var blobGets atomic.Int64
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				blobGets.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}})
	big := make([]byte, 4<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/imgtest/conc:v1"
	testregistry.Push(t, ref, testregistry.Image(t, v1.Config{}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, false,
		testregistry.Layer(t, testregistry.TarFiles(t, map[string]string{"big": string(big)}), false),
		testregistry.Layer(t, testregistry.TarFiles(t, map[string]string{"small": "x"}), false)))
	blobGets.Store(0)
	s := newStore(t, registry.Options{})
	const n = 4
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		svc, err := image.Open(filepath.Join(s.root, "image"), image.Options{
			Snapshots: s.snaps,
			Unpacker:  image.Unpacker{Decompress: layer.Decompress, Unpack: func(r io.Reader, dir string) error { return layer.Unpack(r, dir, layer.Limits{}) }},
		})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, err := svc.Pull(ctx, ref, image.PullOptions{}); errs <- err }()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("pull %d: %v", i, err)
		}
	}
	if got := blobGets.Load(); got != 3 {
		t.Errorf("%d blob downloads for 3 blobs", got)
	}
}
