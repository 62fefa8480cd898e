package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyTree copies the contents of directory src into directory dst, both
// open directory fds: regular files, directories, symlinks (never
// followed) and FIFOs with their modes, owners and times. It serves the
// tmpcopyup mount option: the image's files under a tmpfs mount point show
// through in the new tmpfs. Device nodes and sockets are skipped.
func copyTree(src, dst *os.File) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(int(src.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := copyEntry(src, dst, name, &st); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(int(dst.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func copyEntry(src, dst *os.File, name string, st *unix.Stat_t) error {
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	perm := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, perm); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		sub, err := openDirAt(sfd, name)
		if err != nil {
			return err
		}
		defer sub.Close()
		dsub, err := openDirAt(dfd, name)
		if err != nil {
			return err
		}
		defer dsub.Close()
		if err := copyTree(sub, dsub); err != nil {
			return err
		}
	case unix.S_IFREG:
		in, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		inf := os.NewFile(uintptr(in), name)
		defer inf.Close()
		out, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err != nil {
			return err
		}
		outf := os.NewFile(uintptr(out), name)
		defer outf.Close()
		if _, err := io.Copy(outf, inf); err != nil {
			return err
		}
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(sfd, name, buf)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(string(buf[:n]), dfd, name); err != nil {
			return err
		}
	case unix.S_IFIFO:
		if err := unix.Mknodat(dfd, name, unix.S_IFIFO|perm, 0); err != nil {
			return err
		}
	default:
		return nil
	}
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// The umask and chown (which clears setuid bits) changed the mode.
		return unix.Fchmodat(dfd, name, perm, 0)
	}
	return nil
}

func openDirAt(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
