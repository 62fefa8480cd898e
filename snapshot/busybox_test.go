package snapshot_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/layer"
	"github.com/klauspost/compress/gzip"
)

// tarDir writes dir as a gzip-compressed layer, the way an image builder
// does: entries relative to the root, owners and modes from the files.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		st := fi.Sys().(*syscall.Stat_t)
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func addBlob(t *testing.T, s interface {
	EnsureLayer(string, string, func(string) error) error
}, chainID, parent string, blob []byte) {
	t.Helper()
	err := s.EnsureLayer(chainID, parent, func(dir string) error {
		rc, err := layer.Decompress(bytes.NewReader(blob))
		if err != nil {
			return err
		}
		defer rc.Close()
		return layer.Unpack(rc, dir, layer.Limits{})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBusyboxImage runs programs in a two-layer busybox image: a real root
// filesystem, gzip-compressed, unpacked, stacked and mounted.
func TestBusyboxImage(t *testing.T) {
	testutil.CheckLeaks(t)
	s := newStore(t)
	src := t.TempDir()
	testutil.BusyboxRootfs(t, src)
	base, top := chain("busybox"), chain("busybox-top")
	addBlob(t, s, base, "", tarDir(t, src))
	addLayer(t, s, top, base,
		ent{name: "etc/motd", body: "welcome\n"},
		ent{name: "etc/.wh.hostname"},
	)
	if err := s.Prepare("bb", []string{base, top}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Remove("bb"); err != nil {
			t.Error(err)
		}
	}()
	mnt := t.TempDir()
	if err := s.Mount("bb", mnt); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Unmount(mnt); err != nil {
			t.Error(err)
		}
	}()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("/bin/busybox", args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: mnt}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("busybox %v in the image: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got := run("cat", "/etc/motd"); got != "welcome\n" {
		t.Errorf("/etc/motd = %q", got)
	}
	if got := run("ls", "/etc"); strings.Contains(got, "hostname") || !strings.Contains(got, "passwd") {
		t.Errorf("ls /etc = %q, want passwd and no hostname", got)
	}
	if got := run("sh", "-c", "echo hi > /tmp/new && /bin/ls -l /bin/sh"); !strings.Contains(got, "/bin/sh -> busybox") {
		t.Errorf("ls -l /bin/sh = %q", got)
	}
	if data, err := os.ReadFile(filepath.Join(s.Root(), "snapshots/bb/upper/tmp/new")); err != nil || string(data) != "hi\n" {
		t.Errorf("container write not in the upper dir: %q %v", data, err)
	}
}
