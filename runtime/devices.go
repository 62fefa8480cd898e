package runtime

import (
	"errors"
	"fmt"
	"os"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func fileMode(m os.FileMode) *os.FileMode { return &m }

func u32(v uint32) *uint32 { return &v }

// defaultDevices are the nodes every container gets (runtime spec, "Default
// Devices"); a spec device with the same path replaces one.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: fileMode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: fileMode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: fileMode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: fileMode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: fileMode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: fileMode(0o666), UID: u32(0), GID: u32(0)},
}

// setupDev creates the default and spec devices, the /dev links and, for a
// terminal, the /dev/console mount point. In a user namespace mknod is not
// allowed, so host nodes are bind-mounted instead.
func setupDev(root *os.File, cfg *initConfig) error {
	inUserNS := hasNS(cfg.Spec, specs.UserNamespace)
	for _, d := range containerDevices(cfg.Spec) {
		if err := createDevice(root, d, inUserNS); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		if err := symlinkInRoot(root, l[0], l[1]); err != nil {
			return err
		}
	}
	// /dev/ptmx must be the container's devpts instance, never a host node.
	if err := replaceInDev(root, "/dev/ptmx", func(dir *os.File, name string) error {
		return unix.Symlinkat("pts/ptmx", int(dir.Fd()), name)
	}); err != nil {
		return fmt.Errorf("/dev/ptmx: %w", err)
	}
	if cfg.Process != nil && cfg.Process.Terminal {
		// The pty slave is bind-mounted here once it exists; a symlink or
		// device the image put at /dev/console is replaced first
		// (CVE-2025-52565).
		if err := replaceInDev(root, "/dev/console", func(dir *os.File, name string) error {
			fd, err := unix.Openat(int(dir.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}); err != nil {
			return fmt.Errorf("/dev/console: %w", err)
		}
	}
	return nil
}

// containerDevices is the spec's devices and the default ones it does not
// replace.
func containerDevices(spec *specs.Spec) []specs.LinuxDevice {
	devs := append([]specs.LinuxDevice{}, spec.Linux.Devices...)
	for _, d := range defaultDevices {
		replaced := false
		for _, s := range devs {
			if path.Clean(s.Path) == d.Path {
				replaced = true
			}
		}
		if !replaced {
			devs = append(devs, d)
		}
	}
	return devs
}

// replaceInDev removes whatever non-directory entry the image has at p and
// creates a new one with create, working on the parent by fd.
func replaceInDev(root *os.File, p string, create func(dir *os.File, name string) error) error {
	clean := path.Clean(p)
	d, err := mkdirAllInRoot(root, path.Dir(clean))
	if err != nil {
		return err
	}
	defer d.Close()
	name := path.Base(clean)
	if err := unix.Unlinkat(int(d.Fd()), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove existing %s: %w", p, err)
	}
	return create(d, name)
}

func deviceType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q", t)
}

func createDevice(root *os.File, d specs.LinuxDevice, bind bool) error {
	typ, err := deviceType(d.Type)
	if err != nil {
		return err
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	if bind {
		if err := replaceInDev(root, d.Path, func(dir *os.File, name string) error {
			fd, err := unix.Openat(int(dir.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}); err != nil {
			return err
		}
		return mountAt(root, d.Path, true, func(target string) error {
			return unix.Mount(d.Path, target, "", unix.MS_BIND, "")
		})
	}
	return replaceInDev(root, d.Path, func(dir *os.File, name string) error {
		dev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
		if err := unix.Mknodat(int(dir.Fd()), name, typ|perm, int(dev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		// mknod applies the umask; the spec's mode is exact.
		if err := unix.Fchmodat(int(dir.Fd()), name, perm, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		uid, gid := -1, -1
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		if err := unix.Fchownat(int(dir.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		return nil
	})
}
