// Package integration runs capsa-runtime against the real kernel: real
// namespaces, cgroups and mounts, as root. Every test checks that it left
// nothing behind.
package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// rt runs capsa-runtime with a per-test state root.
type rt struct {
	t    *testing.T
	bin  string
	root string
	env  []string // added to the runtime's environment
}

func newRT(t *testing.T) *rt {
	t.Helper()
	testutil.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "state")
	r := &rt{t: t, bin: testutil.Binary(t, "capsa-runtime"), root: root}
	// Registered before CheckLeaks' cleanup runs (cleanups run last-first),
	// so a failing test's containers are gone before leaks are counted.
	testutil.CheckLeaks(t, root)
	t.Cleanup(r.cleanup)
	return r
}

// result is one runtime invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
}

func (r *rt) run(args ...string) result {
	return r.runIn(nil, args...)
}

func (r *rt) runIn(stdin []byte, args ...string) result {
	r.t.Helper()
	cmd := exec.Command(r.bin, append([]string{"--root", r.root}, args...)...)
	cmd.Env = append(os.Environ(), r.env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return runFiles(r.t, cmd)
}

// runFiles runs a runtime command with its stdout and stderr in files, not
// pipes: a container started by create or run -d inherits them, and a
// pipe would keep Wait waiting until the container exits.
func runFiles(t testing.TB, cmd *exec.Cmd) result {
	t.Helper()
	dir := t.TempDir()
	outf, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer outf.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = outf, errf
	err = cmd.Run()
	out, _ := os.ReadFile(outf.Name())
	errb, _ := os.ReadFile(errf.Name())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run capsa-runtime %v: %v", cmd.Args[1:], err)
	}
	return result{string(out), string(errb), code}
}

// ok runs a command that must succeed and returns its stdout.
func (r *rt) ok(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("capsa-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// fails runs a command that must fail with an error containing want.
func (r *rt) fails(want string, args ...string) {
	r.t.Helper()
	res := r.run(args...)
	if res.code == 0 {
		r.t.Fatalf("capsa-runtime %s succeeded; want an error containing %q\nstdout: %s", strings.Join(args, " "), want, res.stdout)
	}
	if !strings.Contains(res.stderr, want) {
		r.t.Fatalf("capsa-runtime %s: error %q does not contain %q", strings.Join(args, " "), res.stderr, want)
	}
}

type state struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
}

func (r *rt) state(id string) state {
	r.t.Helper()
	var s state
	if err := json.Unmarshal([]byte(r.ok("state", id)), &s); err != nil {
		r.t.Fatalf("state %s: %v", id, err)
	}
	return s
}

// waitStatus waits for a container to reach a status.
func (r *rt) waitStatus(id, want string) {
	r.t.Helper()
	testutil.Eventually(r.t, id+" to be "+want, func() bool { return r.state(id).Status == want })
}

func (r *rt) cleanup() {
	entries, _ := os.ReadDir(r.root)
	for _, e := range entries {
		_ = exec.Command(r.bin, "--root", r.root, "delete", "--force", e.Name()).Run() // best effort
	}
}

// runOutput runs a bundle with `run` and returns stdout and the exit code.
func (r *rt) runBundle(b *testutil.Bundle, id string) result {
	r.t.Helper()
	return r.run("run", "--bundle", b.Dir, id)
}
