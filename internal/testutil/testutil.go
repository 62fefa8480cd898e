// Package testutil holds what the integration tests of capsa share: a
// busybox root filesystem and OCI bundle built from Debian's busybox-static,
// the binaries under test, and a check that a test left nothing behind.
package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/runtime/specgen"
)

// BusyboxPath is the static busybox from Debian's busybox-static package.
const BusyboxPath = "/bin/busybox"

// RequireRoot skips t when not run as root: the integration tests create
// namespaces, cgroups and mounts. CI always runs them as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (real namespaces, cgroups and mounts)")
	}
}

// RepoRoot returns the top of the source tree.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var buildOnce sync.Map // binary name -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of a capsa binary (e.g. "capsa-runtime"): from
// $CAPSA_BIN when the Makefile set it, else built once into a temp dir.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("CAPSA_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CAPSA_BIN is set but %s is missing: %v", p, err)
		}
		return p
	}
	v, _ := buildOnce.LoadOrStore(name, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() {
		dir, err := os.MkdirTemp("", "capsa-testbin-")
		if err != nil {
			r.err = err
			return
		}
		r.path = filepath.Join(dir, name)
		// As the Makefile builds them: cgo-free; capsa-runtime is the C
		// front (cmd/capsa-runtime/front) with the Go program next to it as
		// capsa-runtime-go and its static cgo twin capsa-runtime-nsenter
		// (runtime/nsenter).
		builds := [][]string{{"CGO_ENABLED=0", "go", "build", "-o", r.path, "./cmd/" + name}}
		if name == "capsa-runtime" {
			builds = [][]string{
				{"CGO_ENABLED=0", "go", "build", "-o", r.path + "-go", "./cmd/" + name},
				{"CGO_ENABLED=1", "go", "build", "-tags", "netgo,osusergo",
					"-ldflags", "-linkmode external -extldflags -static", "-o", r.path + "-nsenter", "./cmd/" + name},
			}
			front, _ := filepath.Glob(filepath.Join(RepoRoot(), "cmd/capsa-runtime/front/*.c"))
			builds = append(builds, append(append([]string{"", "gcc", "-O2", "-static", "-Wall", "-Werror", "-o", r.path}, front...), "-ljansson"))
		}
		for _, b := range builds {
			cmd := exec.Command(b[1], b[2:]...)
			cmd.Dir = RepoRoot()
			cmd.Env = os.Environ()
			if b[0] != "" {
				cmd.Env = append(cmd.Env, b[0])
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				r.err = fmt.Errorf("build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// BusyboxRootfs fills dir with a minimal root filesystem: busybox-static
// with its applets linked in /bin, /etc/passwd and /etc/group with root,
// nobody and a user 1000, and the usual empty mount points.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "var", "run", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	bb := filepath.Join(dir, "bin", "busybox")
	if err := copyFile(BusyboxPath, bb, 0o755); err != nil {
		t.Fatalf("copy busybox (apt-get install busybox-static): %v", err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
		"etc/group":    "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\nextra:x:1001:user\n",
		"etc/hostname": "busybox\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "home/user"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// Bundle is an OCI bundle in a test's temp dir.
type Bundle struct {
	Dir  string
	Spec *specs.Spec
}

// Rootfs is the bundle's root filesystem directory.
func (b *Bundle) Rootfs() string { return filepath.Join(b.Dir, "rootfs") }

// Write stores b.Spec as config.json.
func (b *Bundle) Write(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// NewBundle makes a busybox bundle whose config is runc's default `spec`
// running args, and writes it.
func NewBundle(t testing.TB, args ...string) *Bundle {
	t.Helper()
	dir := t.TempDir()
	b := &Bundle{Dir: dir, Spec: DefaultSpec(args...)}
	BusyboxRootfs(t, b.Rootfs())
	b.Write(t)
	return b
}

// DefaultSpec is the config that `runc spec` writes, running args.
func DefaultSpec(args ...string) *specs.Spec { return specgen.Default(args...) }

// Eventually polls cond until it holds or the (generous) deadline passes;
// the machines are shared and noisy, so tests wait for events, never sleep.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
