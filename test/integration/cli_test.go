package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/capsa-project/capsa/internal/testutil"
)

func TestSpecAndFeatures(t *testing.T) {
	r := newRT(t)
	dir := t.TempDir()
	r.ok("spec", "--bundle", dir)
	r.fails("exists", "spec", "--bundle", dir)
	var s specs.Spec
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || json.Unmarshal(data, &s) != nil || s.Process == nil || len(s.Linux.Namespaces) == 0 {
		t.Fatalf("spec wrote %s (err %v)", data, err)
	}
	rootless := t.TempDir()
	r.ok("spec", "--rootless", "--bundle", rootless)
	data, _ = os.ReadFile(filepath.Join(rootless, "config.json"))
	if !strings.Contains(string(data), `"type": "user"`) || !strings.Contains(string(data), "uidMappings") {
		t.Fatalf("spec --rootless has no user namespace: %s", data)
	}
	var f features.Features
	if err := json.Unmarshal([]byte(r.ok("features")), &f); err != nil {
		t.Fatal(err)
	}
	if f.Linux == nil || f.Linux.Seccomp == nil || len(f.Linux.Seccomp.Actions) == 0 || len(f.Linux.Namespaces) != 8 || len(f.Hooks) != 6 {
		t.Fatalf("features: %+v", f)
	}
	if out := r.ok("--version"); !strings.HasPrefix(out, "capsa-runtime version") {
		t.Fatalf("--version: %q", out)
	}
}

// --preserve-fds passes the runtime's fds 3.. to the container as 3..,
// and nothing past them.
func TestPreserveFds(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "sh", "-c", "cat <&3; ls /proc/self/fd | tr '\\n' ' '")
	msg := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msg, []byte("passed through\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(msg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(r.bin, "--root", r.root, "run", "--preserve-fds", "1", "--bundle", b.Dir, "fds-preserve")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run --preserve-fds: %v", err)
	}
	// ls lists its own directory fd too.
	if string(out) != "passed through\n0 1 2 3 4 " {
		t.Fatalf("container saw %q", out)
	}
}
