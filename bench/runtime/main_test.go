package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestMedian(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{3 * ms}, 3 * ms},
		{[]time.Duration{5 * ms, 1 * ms, 3 * ms}, 3 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 2 * ms, 3 * ms}, 2500 * time.Microsecond},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestBenchmarkRuns runs the benchmark binary briefly against runc and crun
// (the reference runtimes, so that the test does not depend on capsa's
// state): it must print a row per runtime and benchmark, succeed, and leave
// nothing behind (its temp dir, cgroups, processes, mounts).
func TestBenchmarkRuns(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckLeaks(t)
	bin := filepath.Join(t.TempDir(), "capsa-bench-runtime")
	build := exec.Command("go", "build", "-o", bin, "./bench/runtime")
	build.Dir = testutil.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-n", "2", "-warmup", "0", "-runtime", "runc=/usr/sbin/runc", "-runtime", "crun=/usr/bin/crun",
		"-bench", strings.Join(benchOrder, ","))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("benchmark failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, bench := range benchOrder {
		// Each benchmark's table is a paragraph that starts with its title.
		var section string
		for _, p := range strings.Split(text, "\n\n") {
			if strings.HasPrefix(p, benchTitle[bench]) {
				section = p
			}
		}
		for _, rt := range []string{"runc", "crun"} {
			row := regexp.MustCompile(`(?m)^\s+` + rt + `\s+2\s+[0-9.]+ ms\s+[0-9.]+ ms\s+[0-9.]+ ms\s+[0-9.]+ MiB\s*$`)
			if !row.MatchString(section) {
				t.Errorf("%s: no complete row for %s in:\n%s", bench, rt, text)
			}
		}
	}
	// lifecycle-seccomp ran with the profile, and its cost is reported.
	for _, rt := range []string{"runc", "crun"} {
		row := regexp.MustCompile(`(?m)^\s+` + rt + `\s+[-+][0-9.]+ ms\s+[-+][0-9.]+ ms\s+[-+][0-9.]+ ms\s+create `)
		if !row.MatchString(text) {
			t.Errorf("no seccomp cost row for %s in:\n%s", rt, text)
		}
	}
	m := regexp.MustCompile(`benchmarking .* in (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("output does not name the temp dir:\n%s", text)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("temp dir %s is still there (%v)", m[1], err)
	}
}

// TestSeccompBundles checks which bundles get Docker's profile:
// lifecycle-seccomp's always, the others only with -seccomp.
func TestSeccompBundles(t *testing.T) {
	for _, all := range []bool{false, true} {
		o := options{seccomp: all, benches: map[string]bool{benchLifecycle: true, benchLifecycleSeccomp: true}}
		b, err := newBench(context.Background(), o)
		if b != nil {
			t.Cleanup(func() { os.RemoveAll(b.dir) })
		}
		if err != nil {
			t.Fatal(err)
		}
		r := &rt{name: "test", live: map[string]*container{}}
		for _, name := range benchOrder {
			c, err := b.newContainer(r, name, "/bin/true")
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(c.bundle, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var s specs.Spec
			if err := json.Unmarshal(data, &s); err != nil {
				t.Fatal(err)
			}
			want := all || name == benchLifecycleSeccomp
			sc := s.Linux.Seccomp
			if got := sc != nil; got != want {
				t.Errorf("-seccomp=%v, %s: profile in config.json %v, want %v", all, name, got, want)
				continue
			}
			if want && (sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) < 10) {
				t.Errorf("-seccomp=%v, %s: not Docker's default profile: default %s, %d rules", all, name, sc.DefaultAction, len(sc.Syscalls))
			}
		}
		b.devnull.Close()
	}
}
