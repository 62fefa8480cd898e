package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capsa-project/capsa/bundle"
	"github.com/capsa-project/capsa/image"
	"github.com/capsa-project/capsa/internal/testregistry"
	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/layer"
	"github.com/capsa-project/capsa/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// cli runs capsa against one engine root and config dir.
type cli struct {
	t      *testing.T
	bin    string
	root   string
	config string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	testutil.RequireRoot(t)
	return &cli{t: t, bin: testutil.Binary(t, "capsa"), root: t.TempDir(), config: t.TempDir()}
}

func (c *cli) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append([]string{"--root", c.root, "--config", c.config}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.config, "DOCKER_CONFIG="+filepath.Join(c.config, "docker"))
	return cmd
}

// run runs capsa and fails the test unless it succeeds; returns stdout.
func (c *cli) run(args ...string) string {
	c.t.Helper()
	out, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("capsa %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// try runs capsa and returns stdout, or an error with stderr.
func (c *cli) try(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := c.cmd(args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s%s", err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// busyboxTar writes a busybox rootfs tarball and returns its path.
func busyboxTar(t *testing.T) string {
	t.Helper()
	rootfs := t.TempDir()
	testutil.BusyboxRootfs(t, rootfs)
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, testregistry.TarDir(t, rootfs), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runImage runs the stored image ref of the CLI's root with
// capsa-runtime (snapshot, mount, bundle from the image config).
func (c *cli) runImage(ref string, state string) string {
	t := c.t
	t.Helper()
	snaps, err := snapshot.New(filepath.Join(c.root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := image.Open(filepath.Join(c.root, "image"), image.Options{Snapshots: snaps, Unpacker: image.Unpacker{
		Decompress: layer.Decompress,
		Unpack:     func(r io.Reader, dir string) error { return layer.Unpack(r, dir, layer.Limits{}) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := svc.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("imgtest-%d", time.Now().UnixNano())
	if err := snaps.Prepare(key, img.ChainIDs()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snaps.Remove(key); err != nil {
			t.Errorf("remove snapshot: %v", err)
		}
	}()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Mount(key, rootfs); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snaps.Unmount(rootfs); err != nil {
			t.Errorf("unmount: %v", err)
		}
	}()
	spec, err := bundle.Spec(img.Config, rootfs, bundle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Write(dir, spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, testutil.Binary(t, "capsa-runtime"), "--root", state, "run", "--bundle", dir, key).CombinedOutput()
	if err != nil {
		t.Fatalf("capsa-runtime run: %v\n%s", err, out)
	}
	return string(out)
}

type inspectOut struct {
	ID          string `json:"Id"`
	RepoTags    []string
	RepoDigests []string
	RootFS      struct{ Layers []string }
	Config      struct{ Cmd []string }
}

func (c *cli) inspect(ref string) inspectOut {
	c.t.Helper()
	var out []inspectOut
	if err := json.Unmarshal([]byte(c.run("image", "inspect", ref)), &out); err != nil || len(out) != 1 {
		c.t.Fatalf("image inspect %s: %v %v", ref, out, err)
	}
	return out[0]
}

// The CLI round trip: import, tag, push, rmi, pull, images, history,
// inspect, login/logout against an auth registry, system df, prune.
func TestCLIImageCommands(t *testing.T) {
	c := newCLI(t)
	reg := testregistry.Start(t, testregistry.Options{Users: map[string]string{"imgtest": "pw"}})
	name := reg.Host + "/imgtest/busybox:v1"
	id := strings.TrimSpace(c.run("import", "-c", `CMD ["/bin/echo","cli-ok"]`, "-m", "imgtest import", busyboxTar(t), name))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	c.run("tag", name, "imgtest/local:latest")
	imgs := c.run("images")
	lines := strings.Split(strings.TrimSpace(imgs), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" {
		t.Fatalf("images:\n%s", imgs)
	}
	if !strings.Contains(imgs, "imgtest/local") || !strings.Contains(imgs, id[7:19]) {
		t.Fatalf("images lacks the tag or ID:\n%s", imgs)
	}
	if got := c.run("images", "--format", "{{.Repository}}:{{.Tag}}", "imgtest/local"); strings.TrimSpace(got) != "imgtest/local:latest" {
		t.Fatalf("images --format: %q", got)
	}
	if got := c.run("images", "-q"); strings.TrimSpace(got) != id[7:19] {
		t.Fatalf("images -q: %q", got)
	}
	hist := c.run("history", name)
	if !strings.Contains(hist, "imgtest import") || !strings.HasPrefix(hist, "IMAGE") {
		t.Fatalf("history:\n%s", hist)
	}
	if _, err := c.try("push", name); err == nil || !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Fatalf("push without login: %v", err)
	}
	if _, err := c.try("login", "-u", "imgtest", "-p", "wrong", reg.Host); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	login := c.cmd("login", "-u", "imgtest", "--password-stdin", reg.Host)
	login.Stdin = strings.NewReader("pw\n")
	if out, err := login.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if data, err := os.ReadFile(filepath.Join(c.config, "config.json")); err != nil || !strings.Contains(string(data), reg.Host) {
		t.Fatalf("config.json after login: %s %v", data, err)
	}
	push := c.run("push", name)
	if !strings.Contains(push, "v1: digest: sha256:") {
		t.Fatalf("push output:\n%s", push)
	}
	rmi := c.run("rmi", name)
	if !strings.Contains(rmi, "Untagged: "+name) || strings.Contains(rmi, "Deleted:") {
		t.Fatalf("rmi of one of two names:\n%s", rmi)
	}
	rmi = c.run("rmi", "imgtest/local")
	if !strings.Contains(rmi, "Deleted: "+id) {
		t.Fatalf("rmi of the last name:\n%s", rmi)
	}
	pull := c.run("pull", name)
	if !strings.Contains(pull, "Status: Downloaded newer image for "+name) || !strings.HasSuffix(strings.TrimSpace(pull), name) {
		t.Fatalf("pull output:\n%s", pull)
	}
	in := c.inspect(name)
	if in.ID != id || len(in.RepoDigests) != 1 || in.Config.Cmd[1] != "cli-ok" {
		t.Fatalf("inspect after pull: %+v", in)
	}
	if out := c.run("logout", reg.Host); !strings.Contains(out, "Removing login credentials for "+reg.Host) {
		t.Fatalf("logout: %s", out)
	}
	if _, err := c.try("push", name); err == nil {
		t.Fatal("push after logout succeeded")
	}
	// Credentials in Docker's own config.json are used too.
	dockerCfg := filepath.Join(c.config, "docker")
	if err := os.MkdirAll(dockerCfg, 0o700); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("imgtest:pw"))
	if err := os.WriteFile(filepath.Join(dockerCfg, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.run("push", name)
	df := c.run("system", "df")
	if !strings.Contains(df, "Images") || !strings.HasPrefix(df, "TYPE") {
		t.Fatalf("system df:\n%s", df)
	}
	prune := c.run("image", "prune", "-a", "-f")
	if !strings.Contains(prune, "deleted: "+id) || !strings.Contains(prune, "Total reclaimed space:") {
		t.Fatalf("prune:\n%s", prune)
	}
	if out := c.run("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images after prune -a: %q", out)
	}
}

// Acceptance 4: kill -9 of a pull stalled in the middle of a big layer;
// the next pull resumes (Range request) and completes, the image is
// consistent, and the partial blob never shows under its digest.
func TestPullKilledAndResumed(t *testing.T) {
	c := newCLI(t)
	big := make([]byte, 48<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	bigLayer := testregistry.RawLayer(testregistry.TarFiles(t, map[string]string{"big.bin": string(big)}))
	small := testregistry.Layer(t, testregistry.TarFiles(t, map[string]string{"hello": "world"}), false)
	bd, err := bigLayer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	const stallAfter = 16 << 20
	var stall atomic.Bool
	var mu sync.Mutex
	var ranges []string
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+bd.String()) {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			mu.Unlock()
			if stall.Load() {
				h.ServeHTTP(&stallWriter{ResponseWriter: w, left: stallAfter, done: r.Context().Done()}, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	ref := reg.Host + "/imgtest/big:v1"
	img := testregistry.Image(t, v1.Config{Cmd: []string{"/bin/true"}}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, true, small, bigLayer)
	testregistry.Push(t, ref, img)
	cfgDigest, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	stall.Store(true)
	mu.Lock()
	ranges = nil
	mu.Unlock()

	partial := filepath.Join(c.root, "image", "ingest", bd.Hex+".partial")
	final := filepath.Join(c.root, "image", "blobs", "sha256", bd.Hex)
	pull := c.cmd("pull", "--progress", "json", ref)
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the stalled download to reach the stall point", func() bool {
		fi, err := os.Stat(partial)
		if _, ferr := os.Stat(final); ferr == nil {
			t.Fatal("blob visible under its digest before it was complete")
		}
		return err == nil && fi.Size() >= stallAfter
	})
	if err := pull.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = pull.Wait() // killed: its error is expected
	if _, err := os.Stat(final); err == nil {
		t.Fatal("partial blob visible under its final digest after kill -9")
	}
	if _, err := c.try("image", "inspect", ref); err == nil {
		t.Fatal("image named after a killed pull")
	}
	stall.Store(false)
	out := c.run("pull", ref)
	if !strings.Contains(out, "Downloaded newer image") {
		t.Fatalf("second pull:\n%s", out)
	}
	mu.Lock()
	got := append([]string{}, ranges...)
	mu.Unlock()
	if len(got) != 2 || got[0] != "" || !strings.HasPrefix(got[1], "bytes=") || got[1] == "bytes=0-" {
		t.Fatalf("big blob requests had Range headers %q; want a fresh one then a resume", got)
	}
	in := c.inspect(ref)
	if in.ID != cfgDigest.String() || len(in.RootFS.Layers) != 2 {
		t.Fatalf("inspect after resumed pull: %+v", in)
	}
	if data, err := os.ReadFile(final); err != nil || int64(len(data)) < int64(len(big)) {
		t.Fatalf("final blob: %d bytes, %v", len(data), err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Fatalf("partial download left behind: %v", err)
	}
}

// stallWriter passes left bytes and then blocks until the request ends.
type stallWriter struct {
	http.ResponseWriter
	left int
	done <-chan struct{}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if s.left <= 0 {
		<-s.done
		return 0, io.ErrClosedPipe
	}
	if len(p) > s.left {
		p = p[:s.left]
	}
	n, err := s.ResponseWriter.Write(p)
	s.left -= n
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// Acceptance 1 via the CLI: a multi-platform index pulls the host's image
// by default and the arm64 one with --platform linux/arm64.
func TestCLIPullPlatform(t *testing.T) {
	c := newCLI(t)
	reg := testregistry.Start(t, testregistry.Options{})
	imgs := map[string]v1.Image{}
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		l := testregistry.Layer(t, testregistry.TarFiles(t, map[string]string{"arch": p.Architecture}), false)
		imgs[p.Architecture] = testregistry.Image(t, v1.Config{Cmd: []string{"/arch"}}, p, false, l)
	}
	ref := reg.Host + "/imgtest/multi:v1"
	testregistry.PushIndex(t, ref, imgs)
	c.run("pull", "--platform", "linux/arm64", ref)
	if got := strings.TrimSpace(c.run("image", "inspect", "-f", "{{.Architecture}}/{{.Variant}}", ref)); got != "arm64/v8" {
		t.Fatalf("--platform linux/arm64 pulled %s", got)
	}
	c.run("pull", ref)
	if got := strings.TrimSpace(c.run("image", "inspect", "-f", "{{.Architecture}}", ref)); got != runtime.GOARCH {
		t.Fatalf("default pull got %s on %s", got, runtime.GOARCH)
	}
	if _, err := c.try("pull", "--platform", "linux/s390x", ref); err == nil || !strings.Contains(err.Error(), "no image for platform linux/s390x") {
		t.Fatalf("pull of a missing platform: %v", err)
	}
	// Both platform images stay until GC: the arm64 one is now dangling.
	if out := c.run("images", "--filter", "dangling=true", "-q"); strings.TrimSpace(out) == "" {
		t.Fatal("the replaced arm64 image is not listed as dangling")
	}
}
