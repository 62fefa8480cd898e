package snapshot_test

import (
	"archive/tar"
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/capsa-project/capsa/internal/testutil"
	"github.com/capsa-project/capsa/layer"
	"github.com/capsa-project/capsa/snapshot"
	digest "github.com/opencontainers/go-digest"
)

func TestMain(m *testing.M) {
	// The cross-process test re-runs this binary as a helper; the helper
	// must not wait for the host-wide lock its parent holds.
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	testutil.Main(m)
}

// chain makes a chainID-shaped digest from a name.
func chain(name string) string { return digest.FromString(name).String() }

type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, ModTime: time.Unix(1e9, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			if e.name[len(e.name)-1] == '/' {
				h.Typeflag = tar.TypeDir
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// addLayer unpacks ents as layer chainID on parent.
func addLayer(t testing.TB, s *snapshot.Snapshotter, chainID, parent string, ents ...ent) {
	t.Helper()
	data := mkTar(t, ents...)
	err := s.EnsureLayer(chainID, parent, func(dir string) error {
		return layer.Unpack(bytes.NewReader(data), dir, layer.Limits{})
	})
	if err != nil {
		t.Fatalf("EnsureLayer: %v", err)
	}
}

func newStore(t testing.TB) *snapshot.Snapshotter {
	t.Helper()
	testutil.RequireRoot(t)
	s, err := snapshot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
