package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/testutil"
)

// Each bad input fails with an error naming the problem, and (through the
// leak check of newRT) leaves no process, mount, cgroup or state dir.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name string
		edit func(t *testing.T, b *testutil.Bundle)
		id   string
		want string
	}{
		{"malformed config", func(t *testing.T, b *testutil.Bundle) {
			if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte(`{"ociVersion": "1.0.2", "process": {`), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "bad-json", "parse"},
		{"missing rootfs", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Root.Path = "no-such-rootfs"
			b.Write(t)
		}, "bad-rootfs", "no-such-rootfs"},
		{"unknown namespace", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
			b.Write(t)
		}, "bad-ns", "unknown namespace type"},
		{"duplicate namespace", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
			b.Write(t)
		}, "dup-ns", "listed twice"},
		{"namespace path of the wrong type", func(t *testing.T, b *testutil.Bundle) {
			for i := range b.Spec.Linux.Namespaces {
				if b.Spec.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					b.Spec.Linux.Namespaces[i].Path = "/proc/self/ns/uts"
				}
			}
			b.Write(t)
		}, "bad-nspath", "is not a network namespace"},
		{"unknown capability", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Process.Capabilities.Bounding = append(b.Spec.Process.Capabilities.Bounding, "CAP_BOGUS")
			b.Write(t)
		}, "bad-cap", "unknown capability"},
		{"unknown rlimit", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Process.Rlimits = append(b.Spec.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1})
			b.Write(t)
		}, "bad-rlimit", "unknown rlimit"},
		{"relative cwd", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Process.Cwd = "tmp"
			b.Write(t)
		}, "bad-cwd", "must be an absolute path"},
		{"missing executable", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Process.Args = []string{"/no/such/binary"}
			b.Write(t)
		}, "bad-exe", "/no/such/binary"},
		{"mount of an unknown filesystem", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/mnt", Type: "nosuchfs", Source: "x"})
			b.Write(t)
		}, "bad-mount", "/mnt"},
		{"invalid id", nil, "../escape", "invalid container id"},
		{"a hook that hangs", func(t *testing.T, b *testutil.Bundle) {
			timeout := 1
			b.Spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "600"}, Timeout: &timeout}}}
			b.Write(t)
		}, "bad-hook", "timed out"},
		{"a hook that fails", func(t *testing.T, b *testutil.Bundle) {
			//lint:ignore SA1019 the runtime must still run prestart hooks
			b.Spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook says no >&2; exit 3"}}}}
			b.Write(t)
		}, "bad-hook2", "hook says no"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRT(t)
			b := testutil.NewBundle(t, "true")
			if c.edit != nil {
				c.edit(t, b)
			}
			r.fails(c.want, "create", "--bundle", b.Dir, c.id)
			if _, err := os.Stat(filepath.Join(r.root, c.id)); err == nil {
				t.Fatalf("state dir of %s left after a failed create", c.id)
			}
		})
	}
}

func TestDuplicateIDAndStoppedStart(t *testing.T) {
	r := newRT(t)
	b := testutil.NewBundle(t, "true")
	r.ok("create", "--bundle", b.Dir, "dup")
	r.fails("already exists", "create", "--bundle", b.Dir, "dup")
	r.ok("start", "dup")
	r.waitStatus("dup", "stopped")
	r.fails("stopped", "start", "dup")
	r.fails("does not exist", "start", "nosuch")
	r.fails("not running", "kill", "dup", "KILL")
	r.fails("unknown signal", "kill", "dup", "SIGBOGUS")
	r.ok("delete", "dup")
}

func TestHooks(t *testing.T) {
	r := newRT(t)
	out := t.TempDir()
	b := testutil.NewBundle(t, "true")
	hook := func(name string) specs.Hook {
		// Each hook appends its name and the state it was given.
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo " + name + " $(cat) >> " + out + "/log"}}
	}
	b.Spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 the runtime must still run prestart hooks
		Prestart: []specs.Hook{hook("prestart")}, CreateRuntime: []specs.Hook{hook("createRuntime")},
		Poststart: []specs.Hook{hook("poststart")}, Poststop: []specs.Hook{hook("poststop")},
	}
	b.Spec.Annotations = map[string]string{"org.example": "yes"}
	b.Write(t)
	r.ok("create", "--bundle", b.Dir, "hooks")
	r.ok("start", "hooks")
	r.waitStatus("hooks", "stopped")
	r.ok("delete", "hooks")
	data, err := os.ReadFile(filepath.Join(out, "log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	want := []string{"prestart", "createRuntime", "poststart", "poststop"}
	if len(lines) != len(want) {
		t.Fatalf("hook log:\n%s", data)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w+" {") || !strings.Contains(lines[i], `"id":"hooks"`) || !strings.Contains(lines[i], `"org.example":"yes"`) {
			t.Fatalf("hook %d: %q, want %s with the state", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], `"status":"creating"`) || !strings.Contains(lines[3], `"status":"stopped"`) {
		t.Fatalf("hook states: %s", data)
	}
}
