package snapshot_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/layer"
	"github.com/capsa-project/capsa/snapshot"
	"golang.org/x/sys/unix"
)

func TestEnsureLayerOnce(t *testing.T) {
	s := newStore(t)
	id := chain("base")
	var calls atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.EnsureLayer(id, "", func(dir string) error {
				calls.Add(1)
				return os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("unpack ran %d times, want 1", n)
	}
	dir, err := s.LayerDir(id)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(data) != "x" {
		t.Errorf("layer content %q %v", data, err)
	}
	if layers, err := s.Layers(); err != nil || len(layers) != 1 || layers[0] != id {
		t.Errorf("Layers() = %v, %v", layers, err)
	}
}

const helperEnv = "CAPSA_SNAPSHOT_HELPER"

// helperMain is another process unpacking a layer: it reports "started"
// from inside unpack and finishes when its stdin closes.
func helperMain() int {
	root, id, _ := strings.Cut(os.Getenv(helperEnv), ",")
	s, err := snapshot.New(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = s.EnsureLayer(id, "", func(dir string) error {
		fmt.Println("started")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err == nil {
			return fmt.Errorf("unexpected input")
		}
		return os.WriteFile(filepath.Join(dir, "by"), []byte("helper"), 0o644)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestEnsureLayerAcrossProcesses(t *testing.T) {
	testutil.CheckLeaks(t)
	s := newStore(t)
	id := chain("shared")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+s.Root()+","+id)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "started\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	// The helper holds the layer's lock inside unpack: ours must wait,
	// then find the layer made and not unpack it again.
	var called atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- s.EnsureLayer(id, "", func(string) error { called.Store(true); return nil })
	}()
	select {
	case err := <-done:
		t.Errorf("EnsureLayer returned (%v) while another process was unpacking the layer", err)
	default:
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if called.Load() {
		t.Error("layer unpacked twice")
	}
	dir, _ := s.LayerDir(id)
	if data, err := os.ReadFile(filepath.Join(dir, "by")); err != nil || string(data) != "helper" {
		t.Errorf("layer content %q %v", data, err)
	}
}

func TestEnsureLayerFailure(t *testing.T) {
	s := newStore(t)
	id := chain("fails")
	boom := errors.New("boom")
	var tmpDir string
	err := s.EnsureLayer(id, "", func(dir string) error {
		tmpDir = dir
		return errors.Join(os.WriteFile(filepath.Join(dir, "partial"), nil, 0o644), boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("EnsureLayer: %v, want boom", err)
	}
	if _, err := os.Stat(tmpDir); !os.IsNotExist(err) {
		t.Errorf("partial unpack left at %s", tmpDir)
	}
	if layers, _ := s.Layers(); len(layers) != 0 {
		t.Errorf("failed layer committed: %v", layers)
	}
	for _, d := range []string{"tmp", "locks", "l"} {
		if entries, _ := os.ReadDir(filepath.Join(s.Root(), d)); len(entries) != 0 {
			t.Errorf("failed unpack left %s/%v", d, entries)
		}
	}
	hostile := mkTar(t, ent{name: "ok", body: "1"}, ent{name: "../escape", body: "x"})
	err = s.EnsureLayer(id, "", func(dir string) error {
		return layer.Unpack(bytes.NewReader(hostile), dir, layer.Limits{})
	})
	if err == nil || !strings.Contains(err.Error(), `"../escape"`) {
		t.Errorf("hostile layer: %v, want an error naming the entry", err)
	}
	if layers, _ := s.Layers(); len(layers) != 0 {
		t.Errorf("hostile layer committed: %v", layers)
	}
	addLayer(t, s, id, "", ent{name: "ok", body: "1"})
	if layers, _ := s.Layers(); len(layers) != 1 {
		t.Errorf("retry: layers %v", layers)
	}
	if err := s.EnsureLayer(chain("child"), chain("missing"), func(string) error { return nil }); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("EnsureLayer with a missing parent: %v", err)
	}
	if err := s.EnsureLayer("sha256:../../etc", "", func(string) error { return nil }); err == nil {
		t.Error("EnsureLayer accepted a malformed chainID")
	}
}

// TestWhiteoutsThroughOverlay unpacks layers with whiteouts and opaque
// dirs and checks the merged view of a real overlay mount.
func TestWhiteoutsThroughOverlay(t *testing.T) {
	testutil.CheckLeaks(t)
	s := newStore(t)
	base, top := chain("wbase"), chain("wtop")
	addLayer(t, s, base, "",
		ent{name: "etc/keep", body: "keep"},
		ent{name: "etc/gone", body: "gone"},
		ent{name: "var/cache/", mode: 0o755},
		ent{name: "var/cache/a", body: "a"},
		ent{name: "opq/old", body: "old"},
		ent{name: "dir/sub/x", body: "x"},
	)
	addLayer(t, s, top, base,
		ent{name: "etc/.wh.gone"},
		ent{name: "var/.wh.cache"},
		ent{name: "opq/.wh..wh..opq"},
		ent{name: "opq/new", body: "new"},
		ent{name: ".wh.dir"},
		ent{name: "dir/", mode: 0o700}, // whited out and recreated in one layer
		ent{name: "dir/y", body: "y"},
	)
	if err := s.Prepare("c1", []string{base, top}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Remove("c1"); err != nil {
			t.Error(err)
		}
	})
	mnt := t.TempDir()
	if err := s.Mount("c1", mnt); err != nil {
		t.Fatal(err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			if err := s.Unmount(mnt); err != nil {
				t.Error(err)
			}
		}
	})
	present := map[string]string{"etc/keep": "keep", "opq/new": "new", "dir/y": "y"}
	for rel, want := range present {
		if data, err := os.ReadFile(filepath.Join(mnt, rel)); err != nil || string(data) != want {
			t.Errorf("%s: %q %v, want %q", rel, data, err, want)
		}
	}
	for _, rel := range []string{"etc/gone", "var/cache", "var/cache/a", "opq/old", "dir/sub"} {
		if _, err := os.Lstat(filepath.Join(mnt, rel)); !os.IsNotExist(err) {
			t.Errorf("%s visible in the merged view (%v), want whited out", rel, err)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(mnt, "etc")); err != nil || len(entries) != 1 {
		t.Errorf("etc lists %v (%v), want only keep", entries, err)
	}
	// Writes land in the snapshot's upper dir, not in a shared layer.
	if err := os.WriteFile(filepath.Join(mnt, "etc/keep"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	baseDir, _ := s.LayerDir(base)
	if data, _ := os.ReadFile(filepath.Join(baseDir, "etc/keep")); string(data) != "keep" {
		t.Errorf("write through the mount changed the shared layer: %q", data)
	}
	if data, err := os.ReadFile(filepath.Join(s.Root(), "snapshots/c1/upper/etc/keep")); err != nil || string(data) != "changed" {
		t.Errorf("upper: %q %v", data, err)
	}
	if err := s.Remove("c1"); !errors.Is(err, snapshot.ErrInUse) {
		t.Errorf("Remove of a mounted snapshot: %v, want ErrInUse", err)
	}
	if err := s.RemoveLayer(base); !errors.Is(err, snapshot.ErrInUse) {
		t.Errorf("RemoveLayer of a used layer: %v, want ErrInUse", err)
	}
	if err := s.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	mounted = false
}

// TestDeepImage mounts a 120-layer image, more than absolute lowerdir
// paths fit in the one page of mount options.
func TestDeepImage(t *testing.T) {
	testutil.CheckLeaks(t)
	s := newStore(t)
	const n = 120
	var ids []string
	parent := ""
	absLen := 0
	for i := range n {
		id := chain(fmt.Sprintf("deep-%d", i))
		addLayer(t, s, id, parent,
			ent{name: fmt.Sprintf("layers/%03d", i), body: fmt.Sprint(i)},
			ent{name: "top", body: fmt.Sprint(i)},
		)
		dir, _ := s.LayerDir(id)
		absLen += len(dir) + 1
		ids = append(ids, id)
		parent = id
	}
	if absLen < os.Getpagesize() {
		t.Fatalf("test too shallow: absolute lowerdirs need only %d bytes", absLen)
	}
	if err := s.Prepare("deep", ids); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Remove("deep"); err != nil {
			t.Error(err)
		}
	}()
	mnt := t.TempDir()
	if err := s.Mount("deep", mnt); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Unmount(mnt); err != nil {
			t.Error(err)
		}
	}()
	entries, err := os.ReadDir(filepath.Join(mnt, "layers"))
	if err != nil || len(entries) != n {
		t.Fatalf("merged view holds %d layer files (%v), want %d", len(entries), err, n)
	}
	if data, err := os.ReadFile(filepath.Join(mnt, "top")); err != nil || string(data) != fmt.Sprint(n-1) {
		t.Errorf("top: %q %v, want the last layer's", data, err)
	}
}

func TestSnapshotLifecycle(t *testing.T) {
	testutil.CheckLeaks(t)
	s := newStore(t)
	id := chain("life")
	addLayer(t, s, id, "", ent{name: "./", mode: 0o750, uid: 7}, ent{name: "f", body: "f"})
	for _, bad := range []string{"", ".hidden", "a/b", "a:b", "a,b", strings.Repeat("k", 129)} {
		if err := s.Prepare(bad, []string{id}); err == nil {
			t.Errorf("Prepare accepted key %q", bad)
		}
	}
	if err := s.Prepare("k", []string{chain("absent")}); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Prepare on a missing layer: %v", err)
	}
	if err := s.Prepare("k", []string{id, id}); err == nil {
		t.Error("Prepare accepted a layer twice")
	}
	if err := s.Prepare("k", []string{id}); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare("k", []string{id}); !errors.Is(err, snapshot.ErrExists) {
		t.Errorf("second Prepare: %v, want ErrExists", err)
	}
	if err := s.Prepare("empty", nil); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.Snapshots(); err != nil || strings.Join(keys, ",") != "empty,k" {
		t.Errorf("Snapshots() = %v %v", keys, err)
	}
	mnt := t.TempDir()
	if err := s.Mount("k", mnt); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o750 || st.Uid != 7 {
		t.Errorf("mounted root: mode %#o uid %d, want the top layer's 0750 uid 7", st.Mode&0o7777, st.Uid)
	}
	if err := s.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	// An image without layers mounts as an empty writable dir.
	if err := s.Mount("empty", mnt); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); err != nil {
		t.Error(err)
	}
	if err := s.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount(mnt); err == nil {
		t.Error("Unmount of an unmounted target succeeded")
	}
	for _, k := range []string{"k", "empty"} {
		if err := s.Remove(k); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(s.Root(), "snapshots", k)); !os.IsNotExist(err) {
			t.Errorf("snapshot %s dir left: %v", k, err)
		}
	}
	if err := s.Remove("k"); err != nil {
		t.Errorf("Remove of an absent snapshot: %v", err)
	}
	if err := s.Mount("k", mnt); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Mount of a removed snapshot: %v", err)
	}
	links, _ := os.ReadDir(filepath.Join(s.Root(), "l"))
	if len(links) != 1 {
		t.Fatalf("l/ holds %d links, want 1", len(links))
	}
	if err := s.RemoveLayer(id); err != nil {
		t.Fatal(err)
	}
	if layers, _ := s.Layers(); len(layers) != 0 {
		t.Errorf("Layers() after RemoveLayer: %v", layers)
	}
	for _, d := range []string{"l", "tmp", "locks", "snapshots"} {
		if entries, _ := os.ReadDir(filepath.Join(s.Root(), d)); len(entries) != 0 {
			t.Errorf("%s/ holds %v after everything was removed", d, entries)
		}
	}
	if err := s.RemoveLayer(id); err != nil {
		t.Errorf("RemoveLayer of an absent layer: %v", err)
	}
}

func TestNewSweepsTmp(t *testing.T) {
	s := newStore(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(s.Root(), "tmp")
	stale := []string{"remove-x", "unpack-sha256-" + strings.Repeat("0", 64), fmt.Sprintf("snap-%d-x", dead.Process.Pid)}
	live := fmt.Sprintf("snap-%d-y", os.Getpid())
	for _, d := range append(stale, live) {
		if err := os.MkdirAll(filepath.Join(tmp, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Root(), "locks", "sha256-"+strings.Repeat("0", 64)+".lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.New(s.Root()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 1 || entries[0].Name() != live {
		t.Errorf("tmp/ holds %v, want only %s", entries, live)
	}
}

// TestLinkRepair: a crash between committing a layer and creating its l/
// link leaves a layer without link; EnsureLayer and Prepare recreate it.
func TestLinkRepair(t *testing.T) {
	testutil.CheckLeaks(t)
	s := newStore(t)
	id := chain("repair")
	addLayer(t, s, id, "", ent{name: "f", body: "f"})
	links, err := os.ReadDir(filepath.Join(s.Root(), "l"))
	if err != nil || len(links) != 1 {
		t.Fatalf("l/ holds %v (%v)", links, err)
	}
	link := filepath.Join(s.Root(), "l", links[0].Name())
	for _, step := range []string{"EnsureLayer", "Prepare"} {
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
		switch step {
		case "EnsureLayer":
			if err := s.EnsureLayer(id, "", func(string) error { return errors.New("must not unpack again") }); err != nil {
				t.Fatal(err)
			}
		case "Prepare":
			if err := s.Prepare("r", []string{id}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(filepath.Join(link, "f")); err != nil {
			t.Errorf("after %s: l/ link not repaired: %v", step, err)
		}
	}
	mnt := t.TempDir()
	if err := s.Mount("r", mnt); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "f")); err != nil {
		t.Error(err)
	}
	if err := s.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("r"); err != nil {
		t.Fatal(err)
	}
}
