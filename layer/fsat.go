package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// resolveFlags keep every lookup below the layer root: no "..", no symlink
// (not even one pointing inside), no magic link, no mount crossing.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openDirAt opens the directory comps (already validated components) below
// dirfd without following symlinks. With create, missing directories are made
// (mode 0755, owner root, as Docker and containerd do for implied parents)
// and reported through made.
func openDirAt(dirfd int, comps []string, create bool, made func() error) (int, error) {
	if len(comps) == 0 {
		return unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	}
	// Fast path: one openat2 for the whole chain.
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}
	if fd, err := unix.Openat2(dirfd, joinComps(comps), how); err == nil {
		return fd, nil
	}
	// Slow path, one component at a time: makes missing directories and
	// names the component at fault.
	fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	for i, c := range comps {
		if create {
			err := unix.Mkdirat(fd, c, 0o755)
			if err == nil {
				if err = made(); err != nil {
					unix.Close(fd)
					return -1, err
				}
			} else if err != unix.EEXIST {
				unix.Close(fd)
				return -1, fmt.Errorf("mkdir %q: %w", joinComps(comps[:i+1]), err)
			}
		}
		next, err := unix.Openat2(fd, c, how)
		unix.Close(fd)
		if err != nil {
			p := joinComps(comps[:i+1])
			switch err {
			case unix.ELOOP:
				return -1, unsafef("%q is a symlink; refusing to resolve a path through it", p)
			case unix.ENOTDIR:
				return -1, fmt.Errorf("%q is not a directory", p)
			case unix.EXDEV:
				return -1, unsafef("%q crosses a mount point", p)
			}
			return -1, fmt.Errorf("open %q: %w", p, err)
		}
		fd = next
	}
	return fd, nil
}

func joinComps(comps []string) string {
	var b bytes.Buffer
	for i, c := range comps {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(c)
	}
	return b.String()
}

// removeAllAt removes name below dirfd and, for a directory, all it holds,
// never following a symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return fmt.Errorf("unlink %q: %w", name, err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", name, err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return fmt.Errorf("%s/%w", name, err)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read dir %q: %w", name, err)
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return fmt.Errorf("rmdir %q: %w", name, err)
	}
	return nil
}

// copyChunk is the unit of hole detection: an all-zero chunk is skipped
// instead of written, so sparse files stay sparse.
const copyChunk = 64 << 10

var zeroChunk [copyChunk]byte

// copySparse writes size bytes of r to f, leaving holes where the data is
// zero (whether the tar recorded the file as sparse or not: the content is
// the same either way), and sets the final size.
func copySparse(f *os.File, r io.Reader, size int64, buf []byte) error {
	var off int64
	for off < size {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read content: %w", err)
		}
		if !bytes.Equal(buf[:n], zeroChunk[:n]) {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return fmt.Errorf("write content: %w", err)
			}
		}
		off += n
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("set size: %w", err)
	}
	return nil
}
