package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/testutil"
)

// frontAlone copies capsa-runtime's C front into a directory without the
// Go runtime next to it: whatever it does not do itself then fails with
// "run …/capsa-runtime-go", which tells the fast path from the hand-off.
func frontAlone(t *testing.T, r *rt) *rt {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(r.bin)
	if err != nil {
		t.Fatal(err)
	}
	front := filepath.Join(dir, "capsa-runtime")
	if err := os.WriteFile(front, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return &rt{t: t, bin: front, root: r.root}
}

const handoffError = "capsa-runtime-go: No such file or directory"

// TestFrontFastPath: start, kill, delete and delete --force work in the C
// front alone, and every case it must not decide (other commands, unknown
// flags, hooks, a container in the wrong state) goes to the Go runtime.
func TestFrontFastPath(t *testing.T) {
	r := newRT(t)
	front := frontAlone(t, r)
	front.fails(handoffError, "state", "it-front")
	front.fails(handoffError, "--debug", "start", "it-front")
	front.fails(handoffError, "start", "it-front") // no such container

	// state, start and delete of a container that ran to its end; state's
	// output is the Go runtime's, byte for byte, in every status, with
	// annotations that look like the front's markers.
	b := testutil.NewBundle(t, "sleep", "1000")
	b.Spec.Annotations = map[string]string{"a": `"pid": -424242`, "status": "@capsa-status@", "q": "\"<&>\u0001"}
	b.Write(t)
	sameState := func(id, status string) {
		t.Helper()
		out := front.ok("state", id)
		if want := r.ok("state", id); out != want {
			t.Fatalf("front's state:\n%s\nGo runtime's:\n%s", out, want)
		}
		if !strings.Contains(out, `"status": "`+status+`"`) {
			t.Fatalf("state is not %s:\n%s", status, out)
		}
	}
	goState := &rt{t: t, bin: filepath.Join(filepath.Dir(r.bin), "capsa-runtime-go"), root: r.root}
	r = goState // the reference: the Go runtime itself
	r.ok("create", "--bundle", b.Dir, "it-front")
	sameState("it-front", "created")
	front.fails(handoffError, "delete", "it-front") // created, not stopped: Go's error
	front.ok("--log", filepath.Join(t.TempDir(), "log"), "--log-format", "json", "start", "it-front")
	front.fails(handoffError, "start", "it-front") // the fifo is gone: Go says why
	sameState("it-front", "running")
	r.ok("pause", "it-front")
	sameState("it-front", "paused")
	r.ok("resume", "it-front")
	front.ok("kill", "it-front", "KILL")
	r.waitStatus("it-front", "stopped")
	sameState("it-front", "stopped")
	front.ok("delete", "it-front")
	if _, err := os.Stat(filepath.Join(r.root, "it-front")); !os.IsNotExist(err) {
		t.Fatalf("state dir left after the front's delete: %v", err)
	}

	// delete --force of a running container with a child process: the
	// pid namespace dies with its init; CheckLeaks checks the cgroups.
	b = testutil.NewBundle(t, "sh", "-c", "sleep 1000 & sleep 1000")
	r.ok("run", "-d", "--bundle", b.Dir, "it-front-force")
	r.waitStatus("it-front-force", "running")
	front.fails(handoffError, "kill", "--all", "it-front-force", "KILL")
	front.fails(handoffError, "kill", "it-front-force", "RTMIN+1")
	front.ok("kill", "it-front-force", "SIGWINCH") // ignored by sh: still running
	front.ok("delete", "it-front-force", "--force")
	r.fails("does not exist", "state", "it-front-force")

	// kill signals the init; the pid namespace dies with it.
	b = testutil.NewBundle(t, "sleep", "1000")
	r.ok("run", "-d", "--bundle", b.Dir, "it-front-kill")
	front.ok("kill", "it-front-kill", "kill")
	r.waitStatus("it-front-kill", "stopped")
	front.fails(handoffError, "kill", "it-front-kill", "9") // stopped: Go's error
	front.ok("delete", "it-front-kill")

	// A paused container: the front thaws it after the SIGKILL.
	b = testutil.NewBundle(t, "sleep", "1000")
	r.ok("run", "-d", "--bundle", b.Dir, "it-front-paused")
	r.ok("pause", "it-front-paused")
	front.ok("delete", "-f", "it-front-paused")
	r.fails("does not exist", "state", "it-front-paused")
}

// TestFrontHooksHandOff: poststart and poststop hooks are run by the Go
// runtime, never skipped by the front.
func TestFrontHooksHandOff(t *testing.T) {
	r := newRT(t)
	front := frontAlone(t, r)
	out := filepath.Join(t.TempDir(), "hooks")
	b := testutil.NewBundle(t, "true")
	b.Spec.Hooks = &specs.Hooks{
		Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststart >> " + out + "; env > " + out + ".env"}}},
		Poststop:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststop >> " + out}}},
	}
	b.Write(t)
	r.ok("create", "--bundle", b.Dir, "it-front-hooks")
	front.fails(handoffError, "start", "it-front-hooks")
	r.ok("start", "it-front-hooks")
	r.waitStatus("it-front-hooks", "stopped")
	front.fails(handoffError, "delete", "it-front-hooks")
	r.ok("delete", "it-front-hooks")
	data, err := os.ReadFile(out)
	if err != nil || strings.TrimSpace(string(data)) != "poststart\npoststop" {
		t.Fatalf("hooks ran as %q (%v), want poststart then poststop", data, err)
	}
	// The front runs the Go runtime with GOMAXPROCS=1, which hooks must not
	// inherit.
	env, err := os.ReadFile(out + ".env")
	if err != nil || strings.Contains(string(env), "GOMAXPROCS") {
		t.Fatalf("hook environment (%v):\n%s", err, env)
	}
}
