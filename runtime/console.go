package runtime

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// setupConsole creates a pty in the container's devpts, sends the master
// to the console socket (as runc does, with SCM_RIGHTS) and makes the slave
// this process's controlling terminal and stdio. The init also bind-mounts
// the slave over /dev/console.
func setupConsole(socketFd int, mountConsole bool) error {
	if socketFd < 0 {
		return fmt.Errorf("process.terminal is true but no console socket was passed")
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master itself: no path
	// lookup under /dev/pts that the image could redirect.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	slave := int(r)
	if errno != 0 {
		n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
		if err != nil {
			return fmt.Errorf("pty number: %w", err)
		}
		if slave, err = unix.Open("/dev/pts/"+strconv.Itoa(n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("open pty slave: %w", err)
		}
	}
	defer unix.Close(slave)
	if mountConsole {
		if err := unix.Mount("/proc/thread-self/fd/"+strconv.Itoa(slave), "/dev/console", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind pty over /dev/console: %w", err)
		}
	}
	rights := unix.UnixRights(master)
	if err := unix.Sendmsg(socketFd, []byte("/dev/ptmx"), rights, nil, 0); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	unix.Close(socketFd)
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(slave, i, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", i, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}
