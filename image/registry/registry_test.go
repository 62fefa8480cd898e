package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
)

// fakeRegistry serves a few canned answers on loopback plain http.
func fakeRegistry(t *testing.T, manifests map[string]struct{ mediaType, body string }, blob []byte, honorRange bool) *Repo {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.HasPrefix(r.URL.Path, "/v2/imgtest/repo/manifests/"):
			m, ok := manifests[strings.TrimPrefix(r.URL.Path, "/v2/imgtest/repo/manifests/")]
			if !ok {
				http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", m.mediaType)
			io.WriteString(w, m.body)
		case strings.HasPrefix(r.URL.Path, "/v2/imgtest/repo/blobs/"):
			var off int
			if rg := r.Header.Get("Range"); rg != "" && honorRange {
				fmt.Sscanf(rg, "bytes=%d-", &off)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(blob)-1, len(blob)))
				w.WriteHeader(http.StatusPartialContent)
			}
			w.Write(blob[off:])
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/imgtest/repo")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{}).Repository(context.Background(), repo, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestManifestLimitsAndVerification(t *testing.T) {
	good := `{"schemaVersion":2}`
	gd := digest.FromString(good)
	r := fakeRegistry(t, map[string]struct{ mediaType, body string }{
		"big":                               {MediaTypeOCIManifest, strings.Repeat(" ", 5<<20)},
		"v1":                                {mediaTypeDockerSchema1JW, `{}`},
		"ok":                                {MediaTypeOCIManifest + "; charset=utf-8", good},
		gd.String():                         {MediaTypeOCIManifest, good},
		"sha256:" + strings.Repeat("a", 64): {MediaTypeOCIManifest, good},
	}, nil, true)
	ctx := context.Background()
	if _, _, _, err := r.Manifest(ctx, "big", 4<<20); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized manifest: %v", err)
	}
	if _, _, _, err := r.Manifest(ctx, "v1", 4<<20); err == nil || !strings.Contains(err.Error(), "schema 1") {
		t.Errorf("schema 1: %v", err)
	}
	mt, data, d, err := r.Manifest(ctx, "ok", 4<<20)
	if err != nil || mt != MediaTypeOCIManifest || string(data) != good || d != gd {
		t.Errorf("ok: %q %q %s %v", mt, data, d, err)
	}
	if _, _, _, err := r.Manifest(ctx, gd.String(), 4<<20); err != nil {
		t.Errorf("by digest: %v", err)
	}
	if _, _, _, err := r.Manifest(ctx, "sha256:"+strings.Repeat("a", 64), 4<<20); err == nil || !strings.Contains(err.Error(), "registry sent content with digest") {
		t.Errorf("content not matching the requested digest: %v", err)
	}
	if _, _, _, err := r.Manifest(ctx, "missing", 4<<20); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing: %v", err)
	}
}

func TestBlobRange(t *testing.T) {
	blob := []byte("0123456789")
	d := digest.FromBytes(blob)
	for _, honor := range []bool{true, false} {
		r := fakeRegistry(t, nil, blob, honor)
		rc, start, err := r.Blob(context.Background(), d, 4)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		wantStart, want := int64(4), "456789"
		if !honor {
			wantStart, want = 0, string(blob)
		}
		if start != wantStart || string(got) != want {
			t.Errorf("honor=%v: start %d body %q", honor, start, got)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"localhost:5000": true, "127.0.0.1:1": true, "127.1.2.3": true, "[::1]:5000": true, "example.com": false, "10.0.0.1:5000": false} {
		if isLoopback(host) != want {
			t.Errorf("isLoopback(%q) != %v", host, want)
		}
	}
}
