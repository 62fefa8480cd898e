package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteVerifies(t *testing.T) {
	s := open(t)
	data := []byte("hello blob")
	d := digest.FromBytes(data)
	ctx := context.Background()
	wrong := digest.FromString("something else")
	if err := s.Write(ctx, wrong, int64(len(data)), bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("wrong digest: %v", err)
	}
	if _, ok := s.Size(wrong); ok {
		t.Fatal("mismatched blob committed")
	}
	if err := s.Write(ctx, d, 3, bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized: %v", err)
	}
	if err := s.Write(ctx, d, 100, bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("short: %v", err)
	}
	if _, ok := s.Size(d); ok {
		t.Fatal("blob committed after size errors")
	}
	if err := s.Write(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadAll(d, 100)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q %v", got, err)
	}
	if _, err := s.ReadAll(d, 3); err == nil {
		t.Fatal("ReadAll ignored its limit")
	}
}

func TestValidateRejectsHostileDigests(t *testing.T) {
	for _, d := range []digest.Digest{
		"sha256:../../../etc/passwd",
		"sha256:" + digest.Digest(strings.Repeat("A", 64)),
		"sha512:" + digest.Digest(strings.Repeat("a", 128)),
		"",
		"sha256:abc",
	} {
		if err := Validate(d); err == nil {
			t.Errorf("Validate(%q) accepted", d)
		}
	}
	s := open(t)
	if _, err := s.Open("sha256:../../x"); err == nil {
		t.Fatal("Open accepted a path digest")
	}
}

// failingReader returns its data then an error, like a dropped connection.
type failingReader struct {
	r io.Reader
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestIngestResumes(t *testing.T) {
	s := open(t)
	data := bytes.Repeat([]byte("0123456789"), 100000)
	d := digest.FromBytes(data)
	ctx := context.Background()
	var offsets []int64
	cut := int64(300000)
	first := func(off int64) (io.ReadCloser, int64, error) {
		offsets = append(offsets, off)
		return io.NopCloser(&failingReader{bytes.NewReader(data[off:cut])}), off, nil
	}
	if err := s.Ingest(ctx, d, int64(len(data)), first, nil); err == nil {
		t.Fatal("interrupted ingest succeeded")
	}
	if _, ok := s.Size(d); ok {
		t.Fatal("partial blob visible under its digest")
	}
	if got := s.PartialSize(d); got != cut {
		t.Fatalf("partial size %d, want %d", got, cut)
	}
	rest := func(off int64) (io.ReadCloser, int64, error) {
		offsets = append(offsets, off)
		return io.NopCloser(bytes.NewReader(data[off:])), off, nil
	}
	var last int64
	if err := s.Ingest(ctx, d, int64(len(data)), rest, func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	if len(offsets) != 2 || offsets[0] != 0 || offsets[1] != cut || last != int64(len(data)) {
		t.Fatalf("fetch offsets %v, last progress %d", offsets, last)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "ingest", d.Encoded()+".partial")); !os.IsNotExist(err) {
		t.Fatal("partial file left after commit")
	}
	got, err := os.ReadFile(s.Path(d))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatal("committed blob differs")
	}
}

func TestIngestRestartsWhenRangeIgnored(t *testing.T) {
	s := open(t)
	data := bytes.Repeat([]byte("x"), 10000)
	d := digest.FromBytes(data)
	ctx := context.Background()
	_ = s.Ingest(ctx, d, int64(len(data)), func(off int64) (io.ReadCloser, int64, error) {
		return io.NopCloser(&failingReader{bytes.NewReader(data[:5000])}), 0, nil
	}, nil)
	// The source ignores the offset and starts at 0: the partial content
	// must be dropped, not appended to.
	if err := s.Ingest(ctx, d, int64(len(data)), func(off int64) (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(data)), 0, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(d); n != int64(len(data)) {
		t.Fatalf("size %d", n)
	}
}

func TestCorruptResumeIsDropped(t *testing.T) {
	s := open(t)
	data := bytes.Repeat([]byte("y"), 10000)
	d := digest.FromBytes(data)
	ctx := context.Background()
	bad := append([]byte{}, data...)
	bad[10] = 'z'
	_ = s.Ingest(ctx, d, int64(len(data)), func(int64) (io.ReadCloser, int64, error) {
		return io.NopCloser(&failingReader{bytes.NewReader(bad[:5000])}), 0, nil
	}, nil)
	err := s.Ingest(ctx, d, int64(len(data)), func(off int64) (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(data[off:])), off, nil
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("corrupt prefix: %v", err)
	}
	if s.PartialSize(d) != 0 {
		t.Fatal("a corrupt partial download was kept for resume")
	}
	if err := s.Ingest(ctx, d, int64(len(data)), func(off int64) (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(data[off:])), off, nil
	}, nil); err != nil {
		t.Fatalf("clean retry: %v", err)
	}
}

func TestConcurrentIngestFetchesOnce(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("concurrent"), 50000)
	d := digest.FromBytes(data)
	var fetches atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(root) // separate handles, as separate processes
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Ingest(context.Background(), d, int64(len(data)), func(off int64) (io.ReadCloser, int64, error) {
				fetches.Add(1)
				return io.NopCloser(bytes.NewReader(data[off:])), off, nil
			}, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestAddAndBlobs(t *testing.T) {
	s := open(t)
	d, n, err := s.Add(strings.NewReader("added"))
	if err != nil || n != 5 || d != digest.FromString("added") {
		t.Fatalf("Add: %s %d %v", d, n, err)
	}
	if _, _, err := s.Add(strings.NewReader("added")); err != nil {
		t.Fatalf("Add again: %v", err)
	}
	blobs, err := s.Blobs()
	if err != nil || len(blobs) != 1 || blobs[d] != 5 {
		t.Fatalf("Blobs: %v %v", blobs, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root(), "ingest")); len(entries) != 0 {
		t.Fatalf("Add left temp files: %v", entries)
	}
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Size(d); ok {
		t.Fatal("deleted blob still there")
	}
}
