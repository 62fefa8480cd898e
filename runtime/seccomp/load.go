package seccomp

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs the filter on the calling thread (on all threads with
// SECCOMP_FILTER_FLAG_TSYNC) and returns the notify listener fd when a
// rule uses SCMP_ACT_NOTIFY, else -1.
//
// The caller must have locked the goroutine to its OS thread, and either
// set no_new_privs (prctl PR_SET_NO_NEW_PRIVS) or hold CAP_SYS_ADMIN in
// its user namespace: the kernel refuses the filter otherwise (EACCES).
// Load is meant to be the last step before execve: after the filter is
// in, it makes no allocation and no syscall besides seccomp(2) itself,
// so a profile that forbids, say, getcwd cannot trip the runtime.
func (f *Filter) Load() (notifyFd int, err error) {
	if len(f.insns) == 0 {
		return -1, errors.New("seccomp: load: empty filter (use Compile)")
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f.flags, uintptr(unsafe.Pointer(&f.prog)))
	if errno != 0 {
		return -1, loadError(errno)
	}
	if f.flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r), nil
	}
	if f.flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r != 0 {
		// With TSYNC the kernel returns the id of a thread it could not
		// synchronise (one with a diverging filter) and installs nothing.
		return -1, fmt.Errorf("seccomp: load: thread %d could not be synchronised (TSYNC)", r)
	}
	return -1, nil
}

// loadError explains the usual failures of seccomp(2); it only runs when
// no filter was installed.
func loadError(errno unix.Errno) error {
	switch errno {
	case unix.EACCES:
		return fmt.Errorf("seccomp: load: %w (set no_new_privs or keep CAP_SYS_ADMIN until the filter is loaded)", errno)
	case unix.ESRCH:
		return fmt.Errorf("seccomp: load: %w (TSYNC: another thread has a diverging filter)", errno)
	case unix.EBUSY:
		return fmt.Errorf("seccomp: load: %w (a filter of this thread already has a notify listener)", errno)
	}
	return fmt.Errorf("seccomp: load: %w", errno)
}

var (
	kernelFlagsOnce  sync.Once
	kernelFlagsValue uintptr
)

// kernelFlags returns the seccomp(2) filter flags the running kernel
// knows. It probes each flag with a NULL program: a known flag gets
// EFAULT (the kernel went on to read the program), an unknown one EINVAL.
// Nothing is installed either way.
func kernelFlags() uintptr {
	kernelFlagsOnce.Do(func() {
		probes := []uintptr{
			unix.SECCOMP_FILTER_FLAG_TSYNC,
			unix.SECCOMP_FILTER_FLAG_LOG,
			unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
			unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
			unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
			// Only valid together with a listener.
			unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
		}
		for _, p := range probes {
			_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p, 0)
			if errno == unix.EFAULT {
				kernelFlagsValue |= p
			}
		}
	})
	return kernelFlagsValue
}
