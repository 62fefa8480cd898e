package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// hostileCase is a layer that must be refused with an error naming entry,
// having written nothing outside its root.
type hostileCase struct {
	name  string
	data  func(t *testing.T, sentinel string) []byte
	lim   Limits
	entry string // the entry the error must name
	want  error  // ErrUnsafe or ErrLimit
}

func hostileCases() []hostileCase {
	ents := func(es ...ent) func(*testing.T, string) []byte {
		return func(t *testing.T, _ string) []byte { return mkTar(t, es...) }
	}
	// withSentinel lets an entry name or target the sentinel dir by path.
	withSentinel := func(f func(s string) []ent) func(*testing.T, string) []byte {
		return func(t *testing.T, s string) []byte { return mkTar(t, f(s)...) }
	}
	return []hostileCase{
		{name: "dotdot", data: ents(ent{name: "../../x", body: "x"}), entry: "../../x", want: ErrUnsafe},
		{name: "dotdot-into-sentinel", data: ents(ent{name: "a/../../sentinel/evil", body: "x"}), entry: "a/../../sentinel/evil", want: ErrUnsafe},
		{name: "absolute", data: withSentinel(func(s string) []ent { return []ent{{name: s + "/evil", body: "x"}} }), entry: "/sentinel/evil", want: ErrUnsafe},
		{name: "absolute-dir", data: withSentinel(func(s string) []ent { return []ent{{name: s + "/newdir/"}} }), entry: "/sentinel/newdir/", want: ErrUnsafe},
		{name: "write-through-abs-symlink", data: withSentinel(func(s string) []ent {
			return []ent{{name: "link", typ: tar.TypeSymlink, link: s}, {name: "link/evil", body: "x"}}
		}), entry: "link/evil", want: ErrUnsafe},
		{name: "write-through-rel-symlink", data: ents(
			ent{name: "link", typ: tar.TypeSymlink, link: "../sentinel"}, ent{name: "link/evil", body: "x"}),
			entry: "link/evil", want: ErrUnsafe},
		{name: "symlink-dir-then-file-under", data: ents(
			ent{name: "d/"}, ent{name: "d/up", typ: tar.TypeSymlink, link: "../.."}, ent{name: "d/up/sentinel/evil", body: "x"}),
			entry: "d/up/sentinel/evil", want: ErrUnsafe},
		{name: "symlink-dir-then-dir-under", data: ents(
			ent{name: "link", typ: tar.TypeSymlink, link: "../sentinel"}, ent{name: "link/sub/"}),
			entry: "link/sub/", want: ErrUnsafe},
		{name: "symlink-inside-then-file-under", data: ents(
			ent{name: "sub/"}, ent{name: "link", typ: tar.TypeSymlink, link: "sub"}, ent{name: "link/f", body: "x"}),
			entry: "link/f", want: ErrUnsafe},
		{name: "symlink-then-device-under", data: ents(
			ent{name: "link", typ: tar.TypeSymlink, link: "../sentinel"}, ent{name: "link/null", typ: tar.TypeChar, major: 1, minor: 3}),
			entry: "link/null", want: ErrUnsafe},
		{name: "symlink-then-symlink-under", data: ents(
			ent{name: "link", typ: tar.TypeSymlink, link: "../sentinel"}, ent{name: "link/l2", typ: tar.TypeSymlink, link: "/"}),
			entry: "link/l2", want: ErrUnsafe},
		{name: "hardlink-dotdot", data: ents(ent{name: "h", typ: tar.TypeLink, link: "../sentinel/keep"}), entry: "h", want: ErrUnsafe},
		{name: "hardlink-absolute", data: withSentinel(func(s string) []ent { return []ent{{name: "h", typ: tar.TypeLink, link: s + "/keep"}} }), entry: "h", want: ErrUnsafe},
		{name: "hardlink-through-symlink", data: ents(
			ent{name: "link", typ: tar.TypeSymlink, link: "../sentinel"}, ent{name: "h", typ: tar.TypeLink, link: "link/keep"}),
			entry: "h", want: ErrUnsafe},
		{name: "hardlink-to-abs-symlink-outside", data: withSentinel(func(s string) []ent {
			return []ent{{name: "s", typ: tar.TypeSymlink, link: s + "/keep"}, {name: "h", typ: tar.TypeLink, link: "s"}}
		}), entry: "h", want: ErrUnsafe},
		{name: "hardlink-to-rel-symlink-outside", data: ents(
			ent{name: "a/"}, ent{name: "a/s", typ: tar.TypeSymlink, link: "../../sentinel/keep"}, ent{name: "h", typ: tar.TypeLink, link: "a/s"}),
			entry: "h", want: ErrUnsafe},
		{name: "hardlink-to-root", data: ents(ent{name: "h", typ: tar.TypeLink, link: "./"}), entry: "h", want: ErrUnsafe},
		{name: "whiteout-dotdot", data: ents(ent{name: ".wh..."}), entry: ".wh...", want: ErrUnsafe},
		{name: "whiteout-dotdot-nested", data: ents(ent{name: "a/.wh..."}), entry: "a/.wh...", want: ErrUnsafe},
		{name: "whiteout-dot", data: ents(ent{name: "a/.wh.."}), entry: "a/.wh..", want: ErrUnsafe},
		{name: "whiteout-empty", data: ents(ent{name: "a/.wh."}), entry: "a/.wh.", want: ErrUnsafe},
		{name: "whiteout-as-dir", data: ents(ent{name: ".wh.x/evil", body: "x"}), entry: ".wh.x/evil", want: ErrUnsafe},
		{name: "whiteout-dotdot-path", data: ents(ent{name: "../.wh.sentinel"}), entry: "../.wh.sentinel", want: ErrUnsafe},
		{name: "whiteout-reserved", data: ents(ent{name: "a/.wh..wh.x"}), entry: "a/.wh..wh.x", want: ErrUnsafe},
		{name: "whiteout-through-symlink", data: ents(
			ent{name: "link", typ: tar.TypeSymlink, link: "../sentinel"}, ent{name: "link/.wh.keep"}),
			entry: "link/.wh.keep", want: ErrUnsafe},
		{name: "opaque-through-symlink", data: ents(
			ent{name: "link", typ: tar.TypeSymlink, link: "../sentinel"}, ent{name: "link/.wh..wh..opq"}),
			entry: "link/.wh..wh..opq", want: ErrUnsafe},
		{name: "replace-root", data: ents(ent{name: "./", typ: tar.TypeSymlink, link: "../sentinel"}), entry: "./", want: ErrUnsafe},
		{name: "xattr-trusted-overlay", data: ents(ent{name: "d/", xattrs: map[string]string{"trusted.overlay.opaque": "y"}}), entry: "d/", want: ErrUnsafe},
		{name: "xattr-trusted-redirect", data: ents(ent{name: "d/", xattrs: map[string]string{"trusted.overlay.redirect": "/etc"}}), entry: "d/", want: ErrUnsafe},
		{name: "xattr-user-overlay", data: ents(ent{name: "f", body: "x", xattrs: map[string]string{"user.overlay.metacopy": ""}}), entry: "f", want: ErrUnsafe},
		{name: "name-too-long", data: ents(ent{name: strings.Repeat("d/", 2048) + "f", body: "x"}), entry: strings.Repeat("d/", 2048) + "f", want: ErrUnsafe},
		{name: "inode-bomb", data: func(t *testing.T, _ string) []byte {
			var es []ent
			for i := 0; i < 200; i++ {
				es = append(es, ent{name: "f" + itoa(int64(i))})
			}
			return mkTar(t, es...)
		}, lim: Limits{MaxInodes: 100}, entry: "f100", want: ErrLimit},
		{name: "implied-dirs-count", data: ents(ent{name: strings.Repeat("d/", 50) + "f", body: "x"}), lim: Limits{MaxInodes: 10}, entry: strings.Repeat("d/", 50) + "f", want: ErrLimit},
		{name: "bytes-sum", data: ents(ent{name: "a", body: strings.Repeat("a", 600)}, ent{name: "b", body: strings.Repeat("b", 600)}), lim: Limits{MaxBytes: 1000}, entry: "a", want: ErrLimit},
		{name: "declared-size-1TiB", data: func(t *testing.T, _ string) []byte {
			// The header alone: the size is refused before any data is read.
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			return append(buf.Bytes(), make([]byte, 4096)...)
		}, entry: "huge", want: ErrLimit},
		{name: "declared-size-overflow", data: func(t *testing.T, _ string) []byte {
			// A sum that would wrap around int64 if added before checking.
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if err := tw.WriteHeader(&tar.Header{Name: "one", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte("1")); err != nil {
				t.Fatal(err)
			}
			if err := tw.WriteHeader(&tar.Header{Name: "wrap", Typeflag: tar.TypeReg, Size: 1<<63 - 1, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
				t.Fatal(err)
			}
			return append(buf.Bytes(), make([]byte, 4096)...)
		}, entry: "wrap", want: ErrLimit},
	}
}

// setupSentinel makes base/root (empty) and base/sentinel/keep, and returns
// a fingerprint of base to compare after the unpack.
func setupSentinel(t *testing.T) (root, sentinel string, before []string) {
	base := t.TempDir()
	root = filepath.Join(base, "root")
	sentinel = filepath.Join(base, "sentinel")
	for _, d := range []string{root, sentinel} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sentinel, "keep"), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, sentinel, tree(t, sentinel)
}

func TestUnpackHostile(t *testing.T) {
	requireRoot(t)
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			root, sentinel, before := setupSentinel(t)
			data := tc.data(t, sentinel)
			err := Unpack(bytes.NewReader(data), root, tc.lim)
			if err == nil {
				t.Fatalf("hostile layer unpacked without error; root holds %v", tree(t, root))
			}
			t.Logf("refused: %v", err)
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not match %v", err, tc.want)
			}
			wantName := tc.entry
			if strings.HasPrefix(wantName, "/sentinel") {
				wantName = sentinel + strings.TrimPrefix(wantName, "/sentinel")
			}
			if !strings.Contains(err.Error(), `"`+wantName+`"`) {
				t.Errorf("error %q does not name entry %q", err, wantName)
			}
			if tc.want == ErrLimit && !strings.Contains(err.Error(), "Max") {
				t.Errorf("error %q does not name the limit", err)
			}
			if after := tree(t, sentinel); !reflect.DeepEqual(before, after) {
				t.Errorf("sentinel changed:\nbefore %v\nafter  %v", before, after)
			}
			if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 2 {
				t.Errorf("base dir holds %v, want only root and sentinel", entries)
			}
			// The unpacker is stateless: a normal layer still unpacks.
			fresh := filepath.Join(filepath.Dir(root), "fresh")
			if err := os.Mkdir(fresh, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := Unpack(bytes.NewReader(mkTar(t, ent{name: "etc/hosts", body: "127.0.0.1 localhost\n"})), fresh, Limits{}); err != nil {
				t.Fatalf("normal layer after a hostile one: %v", err)
			}
			if data, err := os.ReadFile(filepath.Join(fresh, "etc/hosts")); err != nil || !strings.Contains(string(data), "localhost") {
				t.Errorf("normal layer content: %q %v", data, err)
			}
		})
	}
}

// TestUnpackSymlinkReplaced: a file entry with the name of an earlier
// symlink to the outside replaces the symlink (later entries win, as in
// any tar), it does not write through it.
func TestUnpackSymlinkReplaced(t *testing.T) {
	requireRoot(t)
	root, sentinel, before := setupSentinel(t)
	data := mkTar(t,
		ent{name: "evil", typ: tar.TypeSymlink, link: filepath.Join(sentinel, "keep")},
		ent{name: "evil", body: "overwritten?"},
		ent{name: "evil2", typ: tar.TypeSymlink, link: "../sentinel/keep"},
		ent{name: "evil2", typ: tar.TypeChar, major: 1, minor: 3},
		ent{name: "dir", typ: tar.TypeSymlink, link: sentinel},
		ent{name: "dir/"},
	)
	if err := Unpack(bytes.NewReader(data), root, Limits{}); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, sentinel); !reflect.DeepEqual(before, after) {
		t.Errorf("sentinel changed:\nbefore %v\nafter  %v", before, after)
	}
	if fi, err := os.Lstat(filepath.Join(root, "evil")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("evil is %v (%v), want a regular file", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "dir")); err != nil || !fi.IsDir() {
		t.Errorf("dir is %v (%v), want a directory", fi, err)
	}
}

// TestUnpackHardlinkToSymlinkInside: a hardlink to a symlink that stays in
// the layer links the symlink itself (containerd's behaviour).
func TestUnpackHardlinkToSymlinkInside(t *testing.T) {
	requireRoot(t)
	root := unpackOK(t, mkTar(t,
		ent{name: "a/t", body: "t"},
		ent{name: "a/s", typ: tar.TypeSymlink, link: "t"},
		ent{name: "h", typ: tar.TypeLink, link: "a/s"},
	))
	if target, err := os.Readlink(filepath.Join(root, "h")); err != nil || target != "t" {
		t.Errorf("h: %q %v, want a symlink to t", target, err)
	}
	if st, sl := lstat(t, filepath.Join(root, "h")), lstat(t, filepath.Join(root, "a/s")); st.Ino != sl.Ino {
		t.Errorf("h is not a hardlink of a/s")
	}
}

func TestUnpackHardlinkToOtherLayer(t *testing.T) {
	requireRoot(t)
	err := Unpack(bytes.NewReader(mkTar(t, ent{name: "h", typ: tar.TypeLink, link: "usr/bin/lower"})), t.TempDir(), Limits{})
	if err == nil || !strings.Contains(err.Error(), `"h"`) || !strings.Contains(err.Error(), "not in this layer") {
		t.Errorf("hardlink to a missing target: %v", err)
	}
}

// TestUnpackGzipBomb feeds a real gzip bomb (64 MiB of zeros in a few tens
// of KiB) through Decompress: Unpack stops at MaxBytes.
func TestUnpackGzipBomb(t *testing.T) {
	requireRoot(t)
	const size = 64 << 20
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "bomb", Typeflag: tar.TypeReg, Size: size, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if gz.Len() > size/500 {
		t.Fatalf("not a bomb: %d compressed bytes", gz.Len())
	}
	root, sentinel, before := setupSentinel(t)
	rc, err := Decompress(&gz)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	err = Unpack(rc, root, Limits{MaxBytes: 1 << 20})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxBytes") || !strings.Contains(err.Error(), `"bomb"`) {
		t.Errorf("gzip bomb: %v", err)
	}
	if after := tree(t, sentinel); !reflect.DeepEqual(before, after) {
		t.Errorf("sentinel changed")
	}
	if _, err := os.Lstat(filepath.Join(root, "bomb")); !os.IsNotExist(err) {
		t.Errorf("bomb file was created: %v", err)
	}
}

// TestUnpackTrailingBomb: endless data after the end-of-archive marker is
// drained only up to MaxBytes.
func TestUnpackTrailingBomb(t *testing.T) {
	requireRoot(t)
	r := io.MultiReader(bytes.NewReader(mkTar(t, ent{name: "f", body: "x"})), zeroReader{})
	err := Unpack(r, t.TempDir(), Limits{MaxBytes: 1 << 20})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxBytes") {
		t.Errorf("endless trailer: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
