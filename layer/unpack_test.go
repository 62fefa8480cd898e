package layer

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func unpackOK(t *testing.T, data []byte) string {
	t.Helper()
	root := t.TempDir()
	if err := Unpack(bytes.NewReader(data), root, Limits{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	return root
}

// capV2 is a valid security.capability value (revision 2) granting
// CAP_NET_RAW, effective: the kernel checks the format.
func capV2() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	return string(b)
}

func TestUnpackEntryTypes(t *testing.T) {
	requireRoot(t)
	dirTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	root := unpackOK(t, mkTar(t,
		ent{name: "./", mode: 0o750, uid: 7, gid: 8, mtime: dirTime},
		ent{name: "etc/", mode: 0o755, mtime: dirTime},
		ent{name: "etc/passwd", body: "root:x:0:0\n", mode: 0o644},
		ent{name: "bin/su", body: "ELF", mode: 0o4755},
		ent{name: "home/u/", mode: 0o2750, uid: 1000, gid: 1000},
		ent{name: "home/u/own", body: "mine", mode: 0o6755, uid: 1000, gid: 1000},
		ent{name: "tmp/", mode: 0o1777},
		ent{name: "ping", body: "ELF", mode: 0o755, xattrs: map[string]string{"security.capability": capV2(), "user.note": "hi"}},
		ent{name: "lib/", xattrs: map[string]string{"user.dir": "d"}},
		ent{name: "lib/libc.so", typ: tar.TypeSymlink, link: "/lib/libc.so.6", uid: 5, gid: 6},
		ent{name: "bin/sh-hard", typ: tar.TypeLink, link: "bin/su"},
		ent{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		ent{name: "dev/loop9", typ: tar.TypeBlock, major: 7, minor: 9, mode: 0o660, gid: 6},
		ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620},
		ent{name: "ignored", body: "x", xattrs: map[string]string{"security.selinux": "system_u:object_r:bin_t:s0"}},
	))

	check := func(rel string, typ uint32, mode uint32, uid, gid uint32) *unix.Stat_t {
		t.Helper()
		st := lstat(t, filepath.Join(root, rel))
		if st.Mode&unix.S_IFMT != typ || st.Mode&0o7777 != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %#o uid %d gid %d, want type %#o mode %#o %d:%d", rel, st.Mode, st.Uid, st.Gid, typ, mode, uid, gid)
		}
		return st
	}
	check(".", unix.S_IFDIR, 0o750, 7, 8)
	check("etc", unix.S_IFDIR, 0o755, 0, 0)
	check("etc/passwd", unix.S_IFREG, 0o644, 0, 0)
	check("bin", unix.S_IFDIR, 0o755, 0, 0) // implied parent
	su := check("bin/su", unix.S_IFREG, 0o4755, 0, 0)
	check("home/u", unix.S_IFDIR, 0o2750, 1000, 1000)
	check("home/u/own", unix.S_IFREG, 0o6755, 1000, 1000) // chmod after chown kept the set-id bits
	check("tmp", unix.S_IFDIR, 0o1777, 0, 0)
	check("lib/libc.so", unix.S_IFLNK, 0o777, 5, 6)
	hard := check("bin/sh-hard", unix.S_IFREG, 0o4755, 0, 0)
	if hard.Ino != su.Ino || hard.Nlink != 2 {
		t.Errorf("hardlink: ino %d nlink %d, want ino %d nlink 2", hard.Ino, hard.Nlink, su.Ino)
	}
	if st := check("dev/null", unix.S_IFCHR, 0o666, 0, 0); unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null: rdev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if st := check("dev/loop9", unix.S_IFBLK, 0o660, 0, 6); unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 9 {
		t.Errorf("dev/loop9: rdev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	check("run/fifo", unix.S_IFIFO, 0o620, 0, 0)

	if data, err := os.ReadFile(filepath.Join(root, "etc/passwd")); err != nil || string(data) != "root:x:0:0\n" {
		t.Errorf("etc/passwd: %q %v", data, err)
	}
	if target, err := os.Readlink(filepath.Join(root, "lib/libc.so")); err != nil || target != "/lib/libc.so.6" {
		t.Errorf("symlink target %q %v", target, err)
	}
	if got := getxattr(t, filepath.Join(root, "ping"), "security.capability"); got != capV2() {
		t.Errorf("security.capability = %x", got)
	}
	if got := getxattr(t, filepath.Join(root, "ping"), "user.note"); got != "hi" {
		t.Errorf("user.note = %q", got)
	}
	if got := getxattr(t, filepath.Join(root, "lib"), "user.dir"); got != "d" {
		t.Errorf("lib user.dir = %q", got)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "ignored"), "security.selinux", make([]byte, 64)); err == nil {
		// Only meaningful where no LSM labels files by itself.
		if _, statErr := os.Stat("/sys/fs/selinux"); statErr != nil {
			t.Errorf("security.selinux from the image was applied")
		}
	}
	// Times: files as in the tar, directories after their content.
	for _, rel := range []string{".", "etc"} {
		if st := lstat(t, filepath.Join(root, rel)); time.Unix(st.Mtim.Unix()).UTC() != dirTime {
			t.Errorf("%s mtime %v, want %v", rel, time.Unix(st.Mtim.Unix()).UTC(), dirTime)
		}
	}
	for _, rel := range []string{"etc/passwd", "lib/libc.so", "dev/null", "run/fifo"} {
		if st := lstat(t, filepath.Join(root, rel)); time.Unix(st.Mtim.Unix()).UTC() != testTime {
			t.Errorf("%s mtime %v, want %v", rel, time.Unix(st.Mtim.Unix()).UTC(), testTime)
		}
	}
}

func TestUnpackSparse(t *testing.T) {
	requireRoot(t)
	const size = 8 << 20
	body := make([]byte, size)
	copy(body, "head")
	copy(body[size-4:], "tail")
	root := unpackOK(t, mkTar(t, ent{name: "sparse", body: string(body)}))
	p := filepath.Join(root, "sparse")
	data, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(data, body) {
		t.Fatalf("content differs (len %d, err %v)", len(data), err)
	}
	if st := lstat(t, p); st.Blocks*512 >= size/2 {
		t.Errorf("file of %d bytes uses %d bytes on disk: holes not preserved", size, st.Blocks*512)
	}
}

// gnuSparseTar hand-writes a PAX 1.0 GNU sparse entry (the format GNU tar
// uses with --sparse --format=posix), which tar.Writer cannot produce:
// a 1 MiB file holding "hello\n" at offset 1 MiB-6.
func gnuSparseTar(t *testing.T) []byte {
	t.Helper()
	const real = 1 << 20
	sparseMap := "1\n" + itoa(real-6) + "\n6\n"
	data := make([]byte, 512)
	copy(data, sparseMap)
	data = append(data, "hello\n"...)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// PAX records of the GNU sparse 1.0 format, written as a raw 'x' entry.
	recs := ""
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "sparse"}, {"GNU.sparse.realsize", itoa(real)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(itoa(int64(n)))+len(rec) != n {
			n = len(itoa(int64(n))) + len(rec)
		}
		recs += itoa(int64(n)) + rec
	}
	if err := tw.WriteHeader(&tar.Header{Name: "PaxHeaders/sparse", Typeflag: 'x', Size: int64(len(recs)), Format: tar.FormatUSTAR, ModTime: testTime}); err == nil {
		t.Fatal("tar.Writer accepted a raw PAX header; write it by hand instead")
	}
	// tar.Writer refuses raw 'x' entries, so build the two headers as
	// ustar TypeReg entries and patch the type byte.
	buf.Reset()
	tw = tar.NewWriter(&buf)
	for _, h := range []struct {
		name string
		body []byte
	}{{"PaxHeaders/sparse", []byte(recs)}, {"GNUSparseFile.0/sparse", data}} {
		if err := tw.WriteHeader(&tar.Header{Name: h.name, Typeflag: tar.TypeReg, Size: int64(len(h.body)), Mode: 0o644, Format: tar.FormatUSTAR, ModTime: testTime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(h.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	out[156] = 'x'
	// Recompute the first header's checksum after patching the type.
	sum := int64(0)
	for i, c := range out[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	copy(out[148:156], []byte(strings.Repeat("0", 6-len(octal(sum)))+octal(sum)+"\x00 "))
	return out
}

func octal(i int64) string {
	s := ""
	for {
		s = string(rune('0'+i%8)) + s
		i /= 8
		if i == 0 {
			return s
		}
	}
}

func TestUnpackGNUSparse(t *testing.T) {
	requireRoot(t)
	root := unpackOK(t, gnuSparseTar(t))
	p := filepath.Join(root, "sparse")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1<<20)
	copy(want[len(want)-6:], "hello\n")
	if !bytes.Equal(data, want) {
		t.Fatalf("sparse content differs: len %d", len(data))
	}
	if st := lstat(t, p); st.Blocks*512 >= 1<<19 {
		t.Errorf("sparse file uses %d bytes on disk", st.Blocks*512)
	}
}

func TestUnpackWhiteouts(t *testing.T) {
	requireRoot(t)
	root := unpackOK(t, mkTar(t,
		ent{name: "a/"},
		ent{name: "a/.wh.gone", uid: 3, gid: 4},
		ent{name: "opq/"},
		ent{name: "opq/.wh..wh..opq"},
		ent{name: "opq/new", body: "n"},
		ent{name: "mine/"},
		ent{name: ".wh.mine"},        // whiteout of a dir this layer has: made opaque
		ent{name: ".wh.recreated"},   // then recreated as a dir: opaque
		ent{name: "recreated/"},      //
		ent{name: ".wh.file"},        // then recreated as a file: replaced
		ent{name: "file", body: "f"}, //
		ent{name: ".wh..wh.plnk/123", body: "aufs"},
		ent{name: ".wh..wh.aufs", body: "aufs"},
	))
	st := lstat(t, filepath.Join(root, "a/gone"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 || st.Uid != 3 || st.Gid != 4 {
		t.Errorf("a/gone: mode %#o rdev %d owner %d:%d, want a 0:0 char device owned 3:4", st.Mode, st.Rdev, st.Uid, st.Gid)
	}
	for _, d := range []string{"opq", "mine", "recreated"} {
		if got := getxattr(t, filepath.Join(root, d), opaqueXattr); got != "y" {
			t.Errorf("%s: opaque xattr %q", d, got)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "opq/new")); err != nil {
		t.Errorf("opq/new: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "opq", whiteoutOpaque)); !os.IsNotExist(err) {
		t.Errorf("opaque marker was created as a file: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(root, "file")); err != nil || string(data) != "f" {
		t.Errorf("file: %q %v", data, err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".wh.") {
			t.Errorf("whiteout marker %s left in the layer", e.Name())
		}
	}
}

func TestUnpackReplace(t *testing.T) {
	requireRoot(t)
	root := unpackOK(t, mkTar(t,
		ent{name: "x", body: "file"},
		ent{name: "x/"}, // a directory replaces the file
		ent{name: "x/child", body: "c"},
		ent{name: "x/", mode: 0o700}, // a directory over a directory keeps its content
		ent{name: "y/"},
		ent{name: "y/child", body: "c"},
		ent{name: "y", body: "now a file"}, // a file replaces the whole directory
		ent{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"},
		ent{name: "l", body: "plain"}, // a file replaces the symlink, not its target
		ent{name: "h", body: "h"},
		ent{name: "h", typ: tar.TypeLink, link: "h"}, // a link to itself is a no-op
	))
	if st := lstat(t, filepath.Join(root, "x")); st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o777 != 0o700 {
		t.Errorf("x: mode %#o", st.Mode)
	}
	if _, err := os.Stat(filepath.Join(root, "x/child")); err != nil {
		t.Errorf("x/child: %v", err)
	}
	for rel, want := range map[string]string{"y": "now a file", "l": "plain", "h": "h"} {
		if data, err := os.ReadFile(filepath.Join(root, rel)); err != nil || string(data) != want {
			t.Errorf("%s: %q %v, want %q", rel, data, err, want)
		}
	}
}

func TestUnpackDrainsStream(t *testing.T) {
	requireRoot(t)
	data := append(mkTar(t, ent{name: "f", body: "x"}), make([]byte, 10000)...)
	r := bytes.NewReader(data)
	if err := Unpack(r, t.TempDir(), Limits{}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread after the archive", r.Len())
	}
}

func TestUnpackEmptyLayer(t *testing.T) {
	requireRoot(t)
	root := unpackOK(t, nil)
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 0 {
		t.Errorf("empty layer made %v (%v)", entries, err)
	}
}

func TestUnpackRootMissing(t *testing.T) {
	err := Unpack(bytes.NewReader(nil), filepath.Join(t.TempDir(), "missing"), Limits{})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Unpack into a missing root: %v", err)
	}
}

func TestLimitsDefaults(t *testing.T) {
	if l := (Limits{}).withDefaults(); l.MaxBytes != DefaultMaxBytes || l.MaxInodes != DefaultMaxInodes {
		t.Errorf("defaults: %+v", l)
	}
	if l := (Limits{MaxBytes: 5, MaxInodes: -1}).withDefaults(); l.MaxBytes != 5 || l.MaxInodes != DefaultMaxInodes {
		t.Errorf("partial defaults: %+v", l)
	}
}
