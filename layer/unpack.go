package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OCI and overlayfs whiteout conventions.
const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."     // AUFS metadata; only the opaque marker has a meaning
	whiteoutOpaque     = ".wh..wh..opq" // the directory holding it hides lower content
	opaqueXattr        = "trusted.overlay.opaque"
	paxXattrPrefix     = "SCHILY.xattr."
)

// Unpack applies one uncompressed layer tar to root (an empty dir for that
// layer), converting OCI whiteouts to overlayfs ones, refusing entries that
// escape root with an error naming the entry. It reads r to its end so a
// caller hashing the stream sees all of it. On error root holds a partial
// layer, which the caller discards. Unpack needs root privileges (chown,
// mknod, trusted.* xattrs).
func Unpack(r io.Reader, root string, lim Limits) error {
	lim = lim.withDefaults()
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("layer: open root %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	cr := &countingReader{r: r, max: lim.MaxBytes}
	u := &unpacker{
		rootfd: rootfd,
		lim:    lim,
		tr:     tar.NewReader(cr),
		buf:    make([]byte, copyChunk),
	}
	if err := u.run(); err != nil {
		return err
	}
	// Drain what follows the end-of-archive marker (padding, or a bomb's
	// tail), still bounded by MaxBytes.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("layer: read after end of archive: %w", err)
	}
	return nil
}

// countingReader fails once more than max bytes were read.
type countingReader struct {
	r      io.Reader
	n, max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n > c.max {
		return 0, &LimitError{Limit: "MaxBytes", Max: c.max}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, &LimitError{Limit: "MaxBytes", Max: c.max}
	}
	return n, err
}

type unpacker struct {
	rootfd int
	lim    Limits
	tr     *tar.Reader
	buf    []byte
	bytes  int64 // sum of file sizes so far
	inodes int64
	// dirTimes are applied at the end, deepest last-seen first: creating
	// entries in a directory changes its mtime.
	dirTimes []dirTime
}

type dirTime struct {
	comps        []string
	atime, mtime time.Time
}

func (u *unpacker) run() error {
	last := ""
	for {
		hdr, err := u.tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) && last != "" {
				return fmt.Errorf("%w (reading the entry after %q)", le, last)
			}
			return fmt.Errorf("layer: read tar: %w", err)
		}
		last = hdr.Name
		if err := u.entry(hdr); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				// Name the limit first: that is what the operator tunes.
				return fmt.Errorf("%w (at entry %q)", le, hdr.Name)
			}
			return &EntryError{Name: hdr.Name, Err: err}
		}
	}
	for i := len(u.dirTimes) - 1; i >= 0; i-- {
		d := u.dirTimes[i]
		if err := u.setDirTime(d); err != nil {
			return &EntryError{Name: joinComps(d.comps) + "/", Err: err}
		}
	}
	return nil
}

// addInode counts one created inode against MaxInodes.
func (u *unpacker) addInode() error {
	u.inodes++
	if u.inodes > u.lim.MaxInodes {
		return &LimitError{Limit: "MaxInodes", Max: u.lim.MaxInodes}
	}
	return nil
}

// splitName returns the components of a tar entry name, refusing names that
// could leave the root. "" and "." components are dropped ("./a//b" is a/b).
func splitName(name string) ([]string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, unsafef("name holds a NUL byte")
	}
	if strings.HasPrefix(name, "/") {
		return nil, unsafef("absolute name")
	}
	if len(name) >= unix.PathMax {
		// Nothing could use such a path (ENAMETOOLONG), and bounding the
		// depth bounds the cost of resolving each entry.
		return nil, unsafef("name of %d bytes, longer than PATH_MAX", len(name))
	}
	var comps []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, unsafef(`name has a ".." component`)
		}
		comps = append(comps, c)
	}
	return comps, nil
}

func (u *unpacker) entry(hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil // metadata for the archive, nothing to create
	case tar.TypeReg, tar.TypeGNUSparse:
		if hdr.Size < 0 {
			return fmt.Errorf("negative size %d", hdr.Size)
		}
		// Compared before adding: a huge declared size must not overflow.
		if hdr.Size > u.lim.MaxBytes-u.bytes {
			return &LimitError{Limit: "MaxBytes", Max: u.lim.MaxBytes}
		}
		u.bytes += hdr.Size
	}
	comps, err := splitName(hdr.Name)
	if err != nil {
		return err
	}
	if len(comps) > 0 && strings.HasPrefix(comps[0], whiteoutMetaPrefix) && (len(comps) > 1 || comps[0] != whiteoutOpaque) {
		// AUFS metadata (.wh..wh.plnk/, .wh..wh.aufs) at the top: skipped,
		// as Docker does; Next reads past its content.
		return nil
	}
	for _, c := range comps[:max(len(comps)-1, 0)] {
		if strings.HasPrefix(c, whiteoutPrefix) {
			// Whiteouts become devices: nothing can live below one.
			return unsafef("whiteout name %q used as a directory", c)
		}
	}
	if err := u.addInode(); err != nil {
		return err
	}
	if len(comps) == 0 {
		return u.rootEntry(hdr)
	}
	base := comps[len(comps)-1]
	pfd, err := openDirAt(u.rootfd, comps[:len(comps)-1], true, u.addInode)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)

	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(pfd, base, hdr)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dir(pfd, base, comps, hdr)
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.file(pfd, base, hdr)
	case tar.TypeSymlink:
		return u.symlink(pfd, base, hdr)
	case tar.TypeLink:
		return u.hardlink(pfd, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return u.node(pfd, base, hdr)
	}
	return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
}

// rootEntry applies a "./" entry's metadata to the layer root itself.
func (u *unpacker) rootEntry(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return unsafef("only a directory entry may name the layer root, not type %q", hdr.Typeflag)
	}
	if err := u.setFdMeta(u.rootfd, hdr); err != nil {
		return err
	}
	u.dirTimes = append(u.dirTimes, dirTime{nil, accessTime(hdr), hdr.ModTime})
	return nil
}

// whiteout converts ".wh.NAME" and ".wh..wh..opq" to their overlayfs forms.
func (u *unpacker) whiteout(pfd int, base string, hdr *tar.Header) error {
	if base == whiteoutOpaque {
		return setOpaque(pfd)
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return unsafef("reserved whiteout name %q", base)
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return unsafef("whiteout of %q", name)
	}
	var st unix.Stat_t
	err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == unix.ENOENT:
	case err != nil:
		return fmt.Errorf("stat whited-out %q: %w", name, err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// A whiteout only hides lower layers (image-spec): this layer's
		// own directory stays, made opaque so the lower one is hidden.
		dfd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %q: %w", name, err)
		}
		defer unix.Close(dfd)
		return setOpaque(dfd)
	default:
		return nil // this layer's own entry already hides the lower one
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("make whiteout %q: %w", name, err)
	}
	if err := u.chown(pfd, name, hdr); err != nil {
		return err
	}
	return nil
}

func setOpaque(dfd int) error {
	if err := unix.Fsetxattr(dfd, opaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("mark directory opaque: %w", err)
	}
	return nil
}

// prepare clears base in pfd for a new entry of type typ. An existing
// directory stays when the new entry is a directory too (its metadata is
// updated), as in Docker and containerd; anything else is replaced. It
// reports whether the replaced entry was an overlay whiteout.
func prepare(pfd int, base string, isDir bool) (exists, wasWhiteout bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return false, false, nil
		}
		return false, false, fmt.Errorf("stat: %w", err)
	}
	typ := st.Mode & unix.S_IFMT
	if isDir && typ == unix.S_IFDIR {
		return true, false, nil
	}
	wasWhiteout = typ == unix.S_IFCHR && st.Rdev == 0
	if err := removeAllAt(pfd, base); err != nil {
		return false, false, fmt.Errorf("replace existing entry: %w", err)
	}
	return false, wasWhiteout, nil
}

func (u *unpacker) dir(pfd int, base string, comps []string, hdr *tar.Header) error {
	exists, wasWhiteout, err := prepare(pfd, base, true)
	if err != nil {
		return err
	}
	if !exists {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	dfd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer unix.Close(dfd)
	if wasWhiteout {
		// The layer both whites out and recreates the directory: only
		// this layer's content may show.
		if err := setOpaque(dfd); err != nil {
			return err
		}
	}
	if err := u.setFdMeta(dfd, hdr); err != nil {
		return err
	}
	u.dirTimes = append(u.dirTimes, dirTime{comps, accessTime(hdr), hdr.ModTime})
	return nil
}

func (u *unpacker) file(pfd int, base string, hdr *tar.Header) error {
	if _, _, err := prepare(pfd, base, false); err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if err := copySparse(f, u.tr, hdr.Size, u.buf); err != nil {
		return err
	}
	if err := u.setFdMeta(fd, hdr); err != nil {
		return err
	}
	if err := setTimes(pfd, base, hdr); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

func (u *unpacker) symlink(pfd int, base string, hdr *tar.Header) error {
	// The target is data: it is stored, never followed here. It resolves
	// inside the container's root when the container uses it.
	if hdr.Linkname == "" {
		return fmt.Errorf("symlink with an empty target")
	}
	if _, _, err := prepare(pfd, base, false); err != nil {
		return err
	}
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	return u.setPathMeta(pfd, base, hdr, false)
}

func (u *unpacker) node(pfd int, base string, hdr *tar.Header) error {
	var typ uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		typ = unix.S_IFCHR
	case tar.TypeBlock:
		typ = unix.S_IFBLK
	default:
		typ = unix.S_IFIFO
	}
	if hdr.Devmajor < 0 || hdr.Devmajor > 0xfff || hdr.Devminor < 0 || hdr.Devminor > 0xfffff {
		return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
	}
	if _, _, err := prepare(pfd, base, false); err != nil {
		return err
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := unix.Mknodat(pfd, base, typ|0o600, dev); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return u.setPathMeta(pfd, base, hdr, true)
}

// hardlink links base to another entry of this layer. The target is
// resolved like an entry name (inside the root, through no symlink); a
// symlink as target is linked itself, never followed (as containerd does),
// and refused if it points outside the layer.
func (u *unpacker) hardlink(pfd int, base string, hdr *tar.Header) error {
	tcomps, err := splitName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if len(tcomps) == 0 {
		return unsafef("hardlink to the layer root")
	}
	tbase := tcomps[len(tcomps)-1]
	tfd, err := openDirAt(u.rootfd, tcomps[:len(tcomps)-1], false, nil)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hardlink target %q is not in this layer (links to files of other layers are not supported)", hdr.Linkname)
		}
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	var tst unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &tst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return fmt.Errorf("hardlink target %q is not in this layer (links to files of other layers are not supported)", hdr.Linkname)
		}
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	switch tst.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fmt.Errorf("hardlink target %q is a directory", hdr.Linkname)
	case unix.S_IFLNK:
		n, err := unix.Readlinkat(tfd, tbase, u.buf)
		if err != nil {
			return fmt.Errorf("hardlink target %q: readlink: %w", hdr.Linkname, err)
		}
		if symlinkLeaves(tcomps[:len(tcomps)-1], string(u.buf[:n])) {
			return unsafef("hardlink target %q is a symlink to %q, outside the layer", hdr.Linkname, u.buf[:n])
		}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Dev == tst.Dev && st.Ino == tst.Ino {
		return nil // already that inode (a link to itself)
	}
	if _, _, err := prepare(pfd, base, false); err != nil {
		return err
	}
	// Flags 0: never AT_SYMLINK_FOLLOW.
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

// symlinkLeaves reports whether a symlink in directory dir with the given
// target points outside the layer: absolute, or climbing above the root.
func symlinkLeaves(dir []string, target string) bool {
	if strings.HasPrefix(target, "/") {
		return true
	}
	depth := len(dir)
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// setFdMeta applies owner, mode and xattrs to an open file or directory.
// Order matters: chown clears setuid/setgid bits and file capabilities, so
// mode and xattrs come after it.
func (u *unpacker) setFdMeta(fd int, hdr *tar.Header) error {
	uid, gid, err := ids(hdr)
	if err != nil {
		return err
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %#o: %w", hdr.Mode&0o7777, err)
	}
	return applyXattrs(hdr, func(name string, val []byte) error {
		return unix.Fsetxattr(fd, name, val, 0)
	})
}

// setPathMeta is setFdMeta for entries that cannot be opened (symlinks,
// devices, FIFOs), addressed as base in directory pfd without following it.
func (u *unpacker) setPathMeta(pfd int, base string, hdr *tar.Header, chmod bool) error {
	if err := u.chown(pfd, base, hdr); err != nil {
		return err
	}
	if chmod {
		// base was just created by us in a directory only we write to, so
		// following it cannot lead elsewhere (fchmodat has no NOFOLLOW).
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %#o: %w", hdr.Mode&0o7777, err)
		}
	}
	// lsetxattr through the directory fd's /proc link: the directory is
	// the verified one, base is a single component, and l* does not
	// follow base itself.
	p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
	if err := applyXattrs(hdr, func(name string, val []byte) error {
		err := unix.Lsetxattr(p, name, val, 0)
		if err == unix.EPERM && strings.HasPrefix(name, "user.") {
			return nil // the kernel allows user.* only on files and dirs
		}
		return err
	}); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr)
}

func (u *unpacker) chown(pfd int, base string, hdr *tar.Header) error {
	uid, gid, err := ids(hdr)
	if err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

func ids(hdr *tar.Header) (int, int, error) {
	// -1 would mean "leave unchanged"; ids are 32-bit.
	if hdr.Uid < 0 || hdr.Uid >= 1<<32-1 || hdr.Gid < 0 || hdr.Gid >= 1<<32-1 {
		return 0, 0, fmt.Errorf("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	return hdr.Uid, hdr.Gid, nil
}

// xattrPolicy says what happens to an image xattr: applied, refused (it
// would steer overlayfs or the kernel's trust decisions), or ignored (a
// label of the build host that means nothing here, e.g. security.selinux).
func xattrPolicy(name string) (apply bool, err error) {
	switch {
	case strings.HasPrefix(name, "trusted."):
		return false, unsafef("xattr %q: the trusted namespace (overlayfs metadata among others) may not come from an image", name)
	case strings.HasPrefix(name, "user.overlay."):
		return false, unsafef("xattr %q: overlayfs metadata may not come from an image", name)
	case strings.HasPrefix(name, "user."),
		name == "security.capability",
		name == "system.posix_acl_access",
		name == "system.posix_acl_default":
		return true, nil
	}
	return false, nil
}

func applyXattrs(hdr *tar.Header, set func(name string, val []byte) error) error {
	for key, val := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, paxXattrPrefix)
		if !ok {
			continue
		}
		apply, err := xattrPolicy(name)
		if err != nil {
			return err
		}
		if !apply {
			continue
		}
		if err := set(name, []byte(val)); err != nil && err != unix.ENOTSUP {
			return fmt.Errorf("set xattr %q: %w", name, err)
		}
	}
	return nil
}

func accessTime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func timespecs(atime, mtime time.Time) []unix.Timespec {
	return []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

func setTimes(pfd int, base string, hdr *tar.Header) error {
	if err := unix.UtimesNanoAt(pfd, base, timespecs(accessTime(hdr), hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// setDirTime applies a directory's recorded times once its content is in.
// A directory replaced later by another kind of entry is skipped.
func (u *unpacker) setDirTime(d dirTime) error {
	ts := timespecs(d.atime, d.mtime)
	if len(d.comps) == 0 {
		if err := unix.UtimesNanoAt(u.rootfd, ".", ts, 0); err != nil {
			return fmt.Errorf("set times: %w", err)
		}
		return nil
	}
	pfd, err := openDirAt(u.rootfd, d.comps[:len(d.comps)-1], false, nil)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer unix.Close(pfd)
	base := d.comps[len(d.comps)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
