package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// zstdMaxWindow bounds the memory a zstd frame may ask the decoder for.
// 128 MiB covers `zstd --long` (window log 27), the largest window common
// tools write; a frame asking for more is refused rather than allocated.
const zstdMaxWindow = 128 << 20

// Decompress sniffs gzip / zstd / plain tar and returns the tar stream.
// The caller closes it. Other compressions (bzip2, xz) are refused with an
// error: OCI allows only gzip and zstd.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(6)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, fmt.Errorf("layer: sniff compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("layer: gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, zstdMagic) || isZstdSkippable(magic):
		// One goroutine: layers are decoded one stream at a time and the
		// machine is shared; concurrency would only buy memory use.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("layer: zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(magic, bzip2Magic):
		return nil, fmt.Errorf("layer: bzip2-compressed layers are not supported (OCI allows gzip and zstd)")
	case bytes.HasPrefix(magic, xzMagic):
		return nil, fmt.Errorf("layer: xz-compressed layers are not supported (OCI allows gzip and zstd)")
	}
	return io.NopCloser(br), nil
}

// isZstdSkippable reports a zstd skippable frame (magic 0x184D2A5?), which
// may precede the data frames.
func isZstdSkippable(m []byte) bool {
	return len(m) >= 4 && m[0]&0xf0 == 0x50 && m[1] == 0x2a && m[2] == 0x4d && m[3] == 0x18
}
