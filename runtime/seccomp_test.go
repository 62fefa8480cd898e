package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/runtime/seccomp"
)

func TestSeccompCache(t *testing.T) {
	var warned []string
	old := Warnf
	Warnf = func(format string, a ...any) { warned = append(warned, format) }
	t.Cleanup(func() { Warnf = old })

	root := t.TempDir()
	raw := []byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
		"syscalls":[{"names":["read","no_such_syscall"],"action":"SCMP_ACT_ALLOW"}]}`)
	first, _, err := compiledSeccomp(root, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seccomp.UnmarshalFilter(first); err != nil {
		t.Fatalf("compiled filter does not decode: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(root, seccompCacheDir))
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache after one compile: %v (%v)", entries, err)
	}
	entry := filepath.Join(root, seccompCacheDir, entries[0].Name())
	if len(warned) != 1 {
		t.Fatalf("warnings on compile: %d, want 1", len(warned))
	}

	// A hit returns the same program and repeats the warning.
	again, _, err := compiledSeccomp(root, raw)
	if err != nil || string(again) != string(first) || len(warned) != 2 {
		t.Fatalf("cache hit: same=%v warnings=%d err=%v", string(again) == string(first), len(warned), err)
	}
	// Another profile is another entry.
	if _, _, err := compiledSeccomp(root, []byte(strings.Replace(string(raw), `"read",`, `"write",`, 1))); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, seccompCacheDir)); len(entries) != 2 {
		t.Fatalf("cache holds %d entries, want 2", len(entries))
	}
	// A damaged entry is compiled again and rewritten, never loaded.
	if err := os.WriteFile(entry, []byte("\x10\x00\x00\x00garbage-garbage!"), 0o600); err != nil {
		t.Fatal(err)
	}
	fixed, _, err := compiledSeccomp(root, raw)
	if err != nil || string(fixed) != string(first) {
		t.Fatalf("damaged entry: same=%v err=%v", string(fixed) == string(first), err)
	}
	// A bad profile is an error that names the section, and is not cached.
	if _, _, err := compiledSeccomp(root, []byte(`{"defaultAction":"SCMP_ACT_NOPE"}`)); err == nil || !strings.Contains(err.Error(), "linux.seccomp") {
		t.Fatalf("bad profile: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, seccompCacheDir)); len(entries) != 2 {
		t.Fatalf("a failed compile changed the cache: %d entries", len(entries))
	}
}
