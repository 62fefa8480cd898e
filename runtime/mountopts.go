package runtime

import (
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is a spec mount's options split the way mount(2) wants them.
type mountOptions struct {
	flags     uintptr // MS_* flags for the mount itself
	clear     uintptr // flags an option asked to clear (rw, dev, suid, exec, …)
	propagate []uintptr
	data      []string
	bind      bool
	recursive bool
	// copyUp (tmpcopyup) fills a new tmpfs with what the image has at its
	// mount point.
	copyUp bool
}

var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async": {true, unix.MS_SYNCHRONOUS}, "atime": {true, unix.MS_NOATIME},
	"bind": {false, unix.MS_BIND}, "defaults": {false, 0}, "dev": {true, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "dirsync": {false, unix.MS_DIRSYNC},
	"exec": {true, unix.MS_NOEXEC}, "iversion": {false, unix.MS_I_VERSION},
	"loud": {true, unix.MS_SILENT}, "mand": {false, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "nodev": {false, unix.MS_NODEV},
	"nodiratime": {false, unix.MS_NODIRATIME}, "noexec": {false, unix.MS_NOEXEC},
	"noiversion": {true, unix.MS_I_VERSION}, "nomand": {true, unix.MS_MANDLOCK},
	"norelatime": {true, unix.MS_RELATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid": {false, unix.MS_NOSUID}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"relatime": {false, unix.MS_RELATIME}, "remount": {false, unix.MS_REMOUNT},
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY}, "silent": {false, unix.MS_SILENT},
	"strictatime": {false, unix.MS_STRICTATIME}, "suid": {true, unix.MS_NOSUID},
	"sync": {false, unix.MS_SYNCHRONOUS},
}

var propagationOptions = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits options into flags, propagation changes and
// filesystem data, as mount(8) does.
func parseMountOptions(opts []string) mountOptions {
	var m mountOptions
	for _, o := range opts {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				m.flags &^= f.flag
				m.clear |= f.flag
			} else {
				m.flags |= f.flag
			}
			switch o {
			case "bind":
				m.bind = true
			case "rbind":
				m.bind, m.recursive = true, true
			}
			continue
		}
		if o == "tmpcopyup" {
			m.copyUp = true
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			m.propagate = append(m.propagate, p)
			continue
		}
		// Options such as "rro" and "idmap" are extensions this
		// runtime does not implement; passing them to the filesystem would
		// fail with EINVAL, which is the clear error the user gets.
		m.data = append(m.data, o)
	}
	return m
}

func (m mountOptions) dataString() string { return strings.Join(m.data, ",") }

// propagationFlag parses rootfsPropagation.
func propagationFlag(s string) (uintptr, bool) {
	p, ok := propagationOptions[s]
	return p, ok
}

// MountOptionNames lists the mount options capsa understands, for
// `features`.
func MountOptionNames() []string {
	out := make([]string, 0, len(flagOptions)+len(propagationOptions))
	for o := range flagOptions {
		out = append(out, o)
	}
	for o := range propagationOptions {
		out = append(out, o)
	}
	out = append(out, "tmpcopyup")
	sort.Strings(out)
	return out
}
