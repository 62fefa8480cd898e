package layer

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestDecompress(t *testing.T) {
	plain := mkTar(t, ent{name: "etc/hosts", body: "127.0.0.1 localhost\n"})
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(plain)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes(), "empty": nil} {
		t.Run(name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			want := plain
			if name == "empty" {
				want = nil
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestDecompressRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"bzip2": "BZh91AY&SY",
		"xz":    "\xfd7zXZ\x00\x00",
	} {
		if _, err := Decompress(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming it", name, err)
		}
	}
	// A gzip stream whose body is corrupt fails when read, not silently.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("layer data "), 100))
	zw.Close()
	bad := gz.Bytes()
	bad[len(bad)-5] ^= 0xff // break the CRC
	rc, err := Decompress(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("corrupt gzip read without error")
	}
}
