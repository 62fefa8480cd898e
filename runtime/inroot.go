package runtime

import (
	"errors"
	"os"
	"path"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// inRootHow resolves a path the way the container will see it: ".." and
// absolute symlinks stop at the root, and magic links such as
// /proc/self/root planted in the image are refused.
var inRootHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
}

// openInRoot resolves p inside root (symlinks cannot leave it) and returns
// an O_PATH handle. The kernel does the resolution in one openat2 call;
// pathrs-lite, which emulates it with many syscalls, serves kernels older
// than 5.6.
func openInRoot(root *os.File, p string) (*os.File, error) {
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(int(root.Fd()), p, &inRootHow)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), p), nil
		case errors.Is(err, unix.EAGAIN) && tries < 64:
			// A rename raced with the lookup; the kernel asks to retry.
			continue
		case errors.Is(err, unix.ENOSYS):
			return pathrs.OpenatInRoot(root, p)
		}
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
}

// mkdirAllInRoot resolves directory p inside root, creating the missing
// components, and returns an O_PATH handle on it. Each directory is made
// with mkdirat in a parent that was itself resolved inside root, so a
// symlink cannot redirect the creation.
func mkdirAllInRoot(root *os.File, p string) (*os.File, error) {
	return mkdirAllHops(root, p, 0)
}

// mkdirAllHops is mkdirAllInRoot, counting the dangling symlinks followed
// so that a loop of them ends.
func mkdirAllHops(root *os.File, p string, hops int) (*os.File, error) {
	clean := path.Clean("/" + p)
	if h, err := openInRoot(root, clean); !errors.Is(err, unix.ENOENT) {
		return h, err
	}
	cur := "/"
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	for i, comp := range parts {
		next := path.Join(cur, comp)
		h, err := openInRoot(root, next)
		if errors.Is(err, unix.ENOENT) {
			parent, perr := openInRoot(root, cur)
			if perr != nil {
				return nil, perr
			}
			err = unix.Mkdirat(int(parent.Fd()), comp, 0o755)
			if errors.Is(err, unix.EEXIST) {
				// A dangling symlink: create what it points to, resolved
				// inside root like any other path (runc does the same).
				buf := make([]byte, unix.PathMax)
				n, lerr := unix.Readlinkat(int(parent.Fd()), comp, buf)
				parent.Close()
				if lerr != nil {
					return nil, &os.PathError{Op: "mkdirat", Path: next, Err: err}
				}
				if hops >= 40 {
					return nil, &os.PathError{Op: "mkdirat", Path: next, Err: unix.ELOOP}
				}
				target := string(buf[:n])
				if !path.IsAbs(target) {
					target = path.Join(cur, target)
				}
				return mkdirAllHops(root, path.Join(append([]string{target}, parts[i+1:]...)...), hops+1)
			}
			parent.Close()
			if err != nil {
				return nil, &os.PathError{Op: "mkdirat", Path: next, Err: err}
			}
			h, err = openInRoot(root, next)
		}
		if err != nil {
			return nil, err
		}
		if i == len(parts)-1 {
			return h, nil
		}
		h.Close()
		cur = next
	}
	return openInRoot(root, clean)
}
