package snapshot

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileLock is a held flock on a lock file.
type fileLock struct {
	f    *os.File
	path string
}

// lockFile takes a flock (LOCK_EX or LOCK_SH) on path, creating the file.
// flock locks belong to the open file description, so goroutines of one
// process exclude each other as well as other processes do.
func lockFile(path string, how int) (*fileLock, error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		for {
			err = unix.Flock(int(f.Fd()), how)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		// RemoveLayer unlinks the lock file while holding it; a waiter
		// that then wins the old file must lock the current one instead.
		if same, err := samePath(f, path); err != nil {
			f.Close()
			return nil, err
		} else if same {
			return &fileLock{f: f, path: path}, nil
		}
		f.Close()
	}
}

// tryLockFile takes an exclusive flock on an existing path without
// waiting; nil, nil when it is held elsewhere or missing.
func tryLockFile(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, nil
		}
		return nil, err
	}
	if same, err := samePath(f, path); err != nil || !same {
		f.Close()
		return nil, err
	}
	return &fileLock{f: f, path: path}, nil
}

func samePath(f *os.File, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false, err
	}
	if err := unix.Stat(path, &b); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// Close releases the lock.
func (l *fileLock) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// remove unlinks the lock file, then releases it: waiters notice (samePath)
// and lock a fresh file.
func (l *fileLock) remove() error {
	err := os.Remove(l.path)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot: remove lock: %w", err)
	}
	return nil
}
