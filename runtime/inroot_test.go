package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// Paths from an image are resolved as the container sees them: symlinks
// and ".." never leave the root, and creation follows the same rule.
func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	for _, l := range [][2]string{
		{"../../../../" + outside, "up"},
		{outside, "abs"},
		{"/proc/self/root", "magic"},
	} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	r, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range []string{"up/a/b", "abs/c", "/../../d/e"} {
		h, err := mkdirAllInRoot(r, p)
		if err != nil {
			t.Fatalf("mkdirAllInRoot(%q): %v", p, err)
		}
		h.Close()
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Fatalf("created outside the root: %v", entries)
	}
	for _, want := range []string{outside + "/a/b", outside + "/c", "d/e"} {
		if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("%s was not created inside the root: %v", want, err)
		}
	}
	if h, err := openInRoot(r, "magic/etc"); err == nil {
		h.Close()
		t.Fatalf("a magic link in the image was followed")
	}
}
