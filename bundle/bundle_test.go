package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func rootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:web:/var/www:/bin/false\n# comment\nbroken:line\n",
		"etc/group":  "root:x:0:\nweb:x:33:\nextra:x:1001:web,other\nstaff:x:50:web\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSpecArgs(t *testing.T) {
	root := rootfs(t)
	img := &ocispec.Image{Config: ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"a", "b"}}}
	for _, c := range []struct {
		opts Options
		want []string
	}{
		{Options{}, []string{"/entry", "a", "b"}},
		{Options{Cmd: []string{"c"}}, []string{"/entry", "c"}},
		{Options{Entrypoint: []string{"/other"}}, []string{"/other"}},
		{Options{Entrypoint: []string{}, Cmd: []string{"/bin/true"}}, []string{"/bin/true"}},
	} {
		s, err := Spec(img, root, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.Process.Args, c.want) {
			t.Errorf("%+v: args %v, want %v", c.opts, s.Process.Args, c.want)
		}
	}
	if _, err := Spec(&ocispec.Image{}, root, Options{}); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Fatalf("empty command: %v", err)
	}
}

func TestSpecEnvCwd(t *testing.T) {
	img := &ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"x"}, Env: []string{"A=1", "B=2"}, WorkingDir: "rel/dir", StopSignal: "SIGQUIT"}}
	s, err := Spec(img, rootfs(t), Options{Env: []string{"B=3", "C=4"}, Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{DefaultPath, "A=1", "B=3", "C=4", "TERM=xterm", "HOME=/root"}
	if !reflect.DeepEqual(s.Process.Env, want) {
		t.Errorf("env %v, want %v", s.Process.Env, want)
	}
	if s.Process.Cwd != "/rel/dir" {
		t.Errorf("cwd %q", s.Process.Cwd)
	}
	if s.Annotations["org.opencontainers.image.stopSignal"] != "SIGQUIT" {
		t.Errorf("stop signal annotation %v", s.Annotations)
	}
}

func TestResolveUser(t *testing.T) {
	root := rootfs(t)
	for user, want := range map[string]specs.User{
		"":          {UID: 0, GID: 0},
		"root":      {UID: 0, GID: 0},
		"web":       {UID: 33, GID: 33, AdditionalGids: []uint32{1001, 50}},
		"33":        {UID: 33, GID: 33, AdditionalGids: []uint32{1001, 50}},
		"web:extra": {UID: 33, GID: 1001},
		"web:7":     {UID: 33, GID: 7},
		"4242":      {UID: 4242, GID: 0},
		"4242:4243": {UID: 4242, GID: 4243},
	} {
		u, err := ResolveUser(root, user)
		if err != nil {
			t.Errorf("%q: %v", user, err)
			continue
		}
		got := specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v, want %+v", user, got, want)
		}
	}
	for _, bad := range []string{"nobody", "web:nogroup"} {
		if _, err := ResolveUser(root, bad); err == nil {
			t.Errorf("%q resolved", bad)
		}
	}
	if u, _ := ResolveUser(root, "web"); u.Home != "/var/www" {
		t.Errorf("home %q", u.Home)
	}
}

// /etc/passwd of an image is resolved inside the rootfs: an absolute
// symlink points into the image, never at the host's file.
func TestResolveUserStaysInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "inroot"), []byte("root:x:4242:4242::/:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/inroot", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	u, err := ResolveUser(root, "root")
	if err != nil || u.UID != 4242 {
		t.Fatalf("absolute symlink: %+v %v", u, err)
	}
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../etc/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	// Resolves to the symlink itself inside the root: a loop, not the
	// host's /etc/passwd and its root entry.
	if u, err := ResolveUser(root, "root"); err == nil {
		t.Fatalf("escaping symlink resolved to %+v", u)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	s, err := Spec(&ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"true"}}}, rootfs(t), Options{ReadonlyRootfs: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, s); err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || json.Unmarshal(data, &back) != nil {
		t.Fatalf("config.json: %v", err)
	}
	if back.Root.Path != "rootfs" || !back.Root.Readonly || back.Process.Args[0] != "true" {
		t.Fatalf("round trip: %+v", back)
	}
}
