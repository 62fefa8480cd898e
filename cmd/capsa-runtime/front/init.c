/*
 * The C init: a container's init process without a Go runtime.
 *
 * capsa-runtime-go's create computes a plan from config.json
 * (runtime/plan.go: mount flags and data, devices, cgroup hierarchies,
 * capability masks, rlimits, the compiled seccomp program) and starts this
 * program — the front, run as `capsa-runtime init` from a read-only
 * detached mount — in the container's new namespaces. The plan arrives on
 * the init pipe as one frame; this file executes its operations in order.
 * Every operation is a short, fixed sequence of syscalls with the Go init's
 * safety rules (runtime/init.go, rootfs.go, devices.go, process.go): mount
 * targets are resolved inside the root by the kernel
 * (openat2 RESOLVE_IN_ROOT) and mounted through /proc/thread-self/fd,
 * sysctls are written beneath a checked procfs with RESOLVE_NO_XDEV, files
 * are masked only with a /dev/null that really is the null device.
 *
 * Errors go back to the runtime as the Go init's JSON messages
 * ({"type":"error","error":"..."}), worded like the Go init's: the context
 * label the plan set, then what failed, then the errno's text.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include "files.h"
#include "front.h"
#include "plan.h"

#define MAX_PLAN (16u << 20)

static int pipe_fd = -1;  /* the init pipe; -1 once "ready" was sent */
static int host_proc = -1; /* the host's /proc, opened before pivot_root */
static int root_fd = -1;   /* the container's root fs (O_PATH) */
static const char *label = ""; /* context of errors, set by the plan */

/* A field of an operation: bytes that are NUL-terminated in place (the
 * plan buffer keeps one spare byte per field for that). */
struct field {
	char *s;
	uint32_t len;
};

/* ---------- reporting ---------- */

/* errtext is strerror in Go's words: its first letter lower case. */
static const char *errtext(int e)
{
	static char buf[128];
	snprintf(buf, sizeof(buf), "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] += 'a' - 'A';
	return buf;
}


/* send_msg writes {"type":type[,"error":msg]} as the Go side's decoder
 * reads it. */
static void send_msg(const char *type, const char *msg)
{
	static char out[16384];
	size_t n = (size_t)snprintf(out, sizeof(out), "{\"type\":\"%s\"", type);
	if (msg != NULL) {
		n += (size_t)snprintf(out + n, sizeof(out) - n, ",\"error\":\"");
		for (const unsigned char *p = (const unsigned char *)msg; *p && n < sizeof(out) - 16; p++) {
			if (*p == '"' || *p == '\\')
				n += (size_t)snprintf(out + n, sizeof(out) - n, "\\%c", *p);
			else if (*p < 0x20)
				n += (size_t)snprintf(out + n, sizeof(out) - n, "\\u%04x", *p);
			else
				out[n++] = (char)*p;
		}
		out[n++] = '"';
	}
	out[n++] = '}';
	out[n++] = '\n';
	(void)write_all(pipe_fd, out, n); /* a parent that is gone reads nothing */
}

/* fail reports "label: what: errno text" (what may be NULL; e = 0 leaves
 * the errno text out) and exits. */
static void __attribute__((noreturn)) fail(int e, const char *fmt, ...)
{
	char what[4096] = "", msg[8192];
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
	}
	/* Each part is cut to fit: a label can quote a long path from the
	 * config. */
	snprintf(msg, sizeof(msg), "%.2048s%s%s%s%s", label, label[0] && what[0] ? ": " : "", what,
		 (label[0] || what[0]) && e != 0 ? ": " : "", e != 0 ? errtext(e) : "");
	if (pipe_fd >= 0)
		send_msg("error", msg);
	else {
		/* After "ready" nobody reads the pipe: like runc, say it on the
		 * container's stderr. */
		dprintf(2, "capsa-runtime: %s\n", msg);
	}
	_exit(1);
}

/* ---------- numbers ---------- */

static long long field_ll(const struct field *f)
{
	char *end;
	errno = 0;
	long long v = strtoll(f->s, &end, 10);
	if (errno != 0 || end == f->s || *end != '\0')
		fail(0, "malformed plan: number %.32s", f->s);
	return v;
}

static unsigned long long field_ull(const struct field *f)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(f->s, &end, 10);
	if (errno != 0 || end == f->s || *end != '\0')
		fail(0, "malformed plan: number %.32s", f->s);
	return v;
}

/* ---------- paths inside the root ---------- */

static int open_in_root(const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	for (int tries = 0;; tries++) {
		int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN || tries >= 64)
			return fd;
	}
}

/* root_clean writes Go's path.Clean("/" + p) into out. */
static void root_clean(const char *p, char *out, size_t size)
{
	if ((size_t)snprintf(out, size, "/%s", p) >= size)
		fail(ENAMETOOLONG, "path %s", p);
	clean_path(out);
}

/* mkdir_all_in_root is runtime.mkdirAllInRoot: resolve directory p inside
 * the root, creating missing components with mkdirat in a parent that was
 * itself resolved inside the root; a dangling symlink is followed (inside
 * the root) up to 40 times. Returns an O_PATH fd or -1 with errno. */
static int mkdir_all_in_root(const char *p, int hops)
{
	char clean[PATH_MAX], cur[PATH_MAX], next[PATH_MAX];
	root_clean(p, clean, sizeof(clean));
	int fd = open_in_root(clean);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	strcpy(cur, "/");
	const char *rest = clean + 1;
	while (*rest) {
		const char *slash = strchr(rest, '/');
		size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
		char comp[NAME_MAX + 1];
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, rest, len);
		comp[len] = '\0';
		snprintf(next, sizeof(next), "%s%s%s", cur, strcmp(cur, "/") == 0 ? "" : "/", comp);
		int h = open_in_root(next);
		if (h < 0 && errno == ENOENT) {
			int parent = open_in_root(cur);
			if (parent < 0)
				return -1;
			if (mkdirat(parent, comp, 0755) != 0) {
				int e = errno;
				if (e != EEXIST) {
					close(parent);
					errno = e;
					return -1;
				}
				/* A dangling symlink: create what it points to. */
				char target[PATH_MAX], redo[PATH_MAX * 2];
				ssize_t n = readlinkat(parent, comp, target, sizeof(target) - 1);
				close(parent);
				if (n < 0) {
					errno = e;
					return -1;
				}
				if (hops >= 40) {
					errno = ELOOP;
					return -1;
				}
				target[n] = '\0';
				const char *after = slash ? slash : "";
				if (target[0] == '/')
					snprintf(redo, sizeof(redo), "%s%s", target, after);
				else
					snprintf(redo, sizeof(redo), "%s/%s%s", cur, target, after);
				return mkdir_all_in_root(redo, hops + 1);
			}
			close(parent);
			h = open_in_root(next);
		}
		if (h < 0)
			return -1;
		if (slash == NULL)
			return h;
		close(h);
		strcpy(cur, next);
		rest = slash + 1;
		while (*rest == '/')
			rest++;
	}
	return open_in_root(clean);
}

/* parent_in_root resolves (creating it) the directory that holds p inside
 * the root and writes p's last component to name (NAME_MAX + 1 bytes).
 * Returns an O_PATH fd or -1 with errno. */
static int parent_in_root(const char *p, char *name)
{
	char dir[PATH_MAX];
	root_clean(p, dir, sizeof(dir));
	char *base = strrchr(dir, '/');
	*base++ = '\0';
	if (strlen(base) > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(name, base);
	return mkdir_all_in_root(dir[0] ? dir : "/", 0);
}

/* ensure_in_root is runtime.ensureInRoot: resolve p inside the root,
 * creating it (a directory, or an empty file) and its parents. */
static int ensure_in_root(const char *p, int is_file)
{
	int fd = open_in_root(p);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (!is_file)
		return mkdir_all_in_root(p, 0);
	char name[NAME_MAX + 1];
	int parent = parent_in_root(p, name);
	if (parent < 0)
		return -1;
	int f = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_WRONLY, 0644);
	int e = errno;
	close(parent);
	if (f < 0 && e != EEXIST) {
		errno = e;
		return -1;
	}
	if (f >= 0)
		close(f);
	return open_in_root(p);
}

static void fd_path(int fd, char *out, size_t size)
{
	snprintf(out, size, "/proc/thread-self/fd/%d", fd);
}

/* locked_flags is runtime.lockedFlags: the flags of the mount holding fd
 * that a remount must keep. */
static unsigned long locked_flags(int fd)
{
	struct statfs st;
	if (fstatfs(fd, &st) != 0)
		return 0;
	static const struct {
		unsigned long st, ms;
	} map[] = {
		{ST_NODEV, MS_NODEV},         {ST_NOSUID, MS_NOSUID},       {ST_NOEXEC, MS_NOEXEC},
		{ST_NOATIME, MS_NOATIME},     {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
		{ST_RDONLY, MS_RDONLY},
	};
	unsigned long out = 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (st.f_flags & map[i].st)
			out |= map[i].ms;
	return out;
}

/* replace_in_dev removes the non-directory entry at p (whatever the image
 * put there) in a parent resolved inside the root; returns the parent fd
 * and the entry's name (NAME_MAX + 1 bytes). */
static int replace_in_dev(const char *p, char *name)
{
	int d = parent_in_root(p, name);
	if (d < 0)
		fail(errno, NULL);
	if (unlinkat(d, name, 0) != 0 && errno != ENOENT)
		fail(errno, "remove existing %s", p);
	return d;
}

/* ---------- operations ---------- */

static void do_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)
{
	if (mount(src, target, fstype[0] ? fstype : NULL, flags, data[0] ? data : NULL) != 0)
		fail(errno, NULL);
}

static void op_mount_in(struct field *f)
{
	int h = ensure_in_root(f[0].s, f[1].s[0] == '1');
	if (h < 0)
		fail(errno, "mount point %s", f[0].s);
	char target[64];
	fd_path(h, target, sizeof(target));
	do_mount(f[2].s, target, f[3].s, (unsigned long)field_ull(&f[4]), f[5].s);
	close(h);
}

static void op_remount_in(struct field *f)
{
	int top = open_in_root(f[0].s);
	if (top < 0)
		fail(errno, "%s", f[0].s);
	unsigned long flags = (unsigned long)field_ull(&f[1]);
	if (f[3].s[0] == '1')
		flags |= locked_flags(top) & ~(unsigned long)field_ull(&f[4]);
	char target[64];
	fd_path(top, target, sizeof(target));
	if (mount("", target, NULL, flags, f[2].s[0] ? f[2].s : NULL) != 0)
		fail(errno, "remount");
	close(top);
}

static void op_symlink_in(struct field *f)
{
	char name[NAME_MAX + 1];
	int d = parent_in_root(f[1].s, name);
	if (d < 0)
		fail(errno, "symlink %s", f[1].s);
	if (symlinkat(f[0].s, d, name) != 0 && errno != EEXIST)
		fail(errno, "symlink %s", f[1].s);
	close(d);
}

static void op_mknod_in(struct field *f)
{
	char name[NAME_MAX + 1];
	int d = replace_in_dev(f[0].s, name);
	mode_t mode = (mode_t)field_ull(&f[1]);
	dev_t dev = (dev_t)field_ull(&f[2]);
	if (mknodat(d, name, mode, dev) != 0)
		fail(errno, "mknod");
	/* mknod applies the umask; the spec's mode is exact. */
	if (fchmodat(d, name, mode & 07777, 0) != 0)
		fail(errno, "chmod");
	if (fchownat(d, name, (uid_t)field_ll(&f[3]), (gid_t)field_ll(&f[4]), AT_SYMLINK_NOFOLLOW) != 0)
		fail(errno, "chown");
	close(d);
}

static void op_replace_symlink_in(struct field *f)
{
	char name[NAME_MAX + 1];
	int d = replace_in_dev(f[0].s, name);
	if (symlinkat(f[1].s, d, name) != 0)
		fail(errno, NULL);
	close(d);
}

/* op_pivot is runtime.pivotRoot (or moveRoot for --no-pivot). */
static void op_pivot(struct field *f)
{
	const char *rootfs = f[0].s;
	if (f[1].s[0] == '1') {
		if (chdir(rootfs) != 0)
			fail(errno, "chdir %s", rootfs);
		if (mount(rootfs, "/", NULL, MS_MOVE, NULL) != 0)
			fail(errno, "move root");
		if (chroot(".") != 0)
			fail(errno, "chroot");
	} else {
		int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (oldroot < 0)
			fail(errno, "open old root");
		if (chdir(rootfs) != 0)
			fail(errno, "chdir %s", rootfs);
		if (syscall(SYS_pivot_root, ".", ".") != 0)
			fail(errno, NULL);
		if (fchdir(oldroot) != 0)
			fail(errno, "fchdir old root");
		/* Keep unmount events of the old root from reaching the host. */
		if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) != 0)
			fail(errno, "make old root slave");
		if (umount2(".", MNT_DETACH) != 0)
			fail(errno, "unmount old root");
		close(oldroot);
	}
	if (chdir("/") != 0)
		fail(errno, "chdir /");
	if (root_fd >= 0) {
		close(root_fd);
		root_fd = -1;
	}
}

/* proc_root opens the container's /proc and checks it is a real procfs. */
static int proc_root(void)
{
	int fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		fail(errno, "open /proc");
	struct statfs st;
	if (fstatfs(fd, &st) != 0 || st.f_type != PROC_SUPER_MAGIC)
		fail(0, "/proc in the container is not a procfs");
	return fd;
}

static void op_sysctl(struct field *f)
{
	int proc = proc_root();
	struct open_how how = {
		.flags = O_WRONLY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	int fd = (int)syscall(SYS_openat2, proc, f[1].s, &how, sizeof(how));
	if (fd < 0)
		fail(errno, NULL);
	if (write(fd, f[2].s, f[2].len) != (ssize_t)f[2].len)
		fail(errno, "%s=%s", f[0].s, f[2].s);
	close(fd);
	close(proc);
}

/* op_readonly is runtime.readonlyPath: bind p onto itself read-only. */
static void op_readonly(struct field *f)
{
	int fd = open(f[0].s, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail(errno, NULL);
	}
	char target[64];
	fd_path(fd, target, sizeof(target));
	if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) != 0)
		fail(errno, NULL);
	close(fd);
	int top = open(f[0].s, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (top < 0)
		fail(errno, NULL);
	fd_path(top, target, sizeof(target));
	if (mount("", target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(top) | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
		fail(errno, NULL);
	close(top);
}

/* op_mask is runtime.maskPath: a directory under an empty read-only tmpfs,
 * a file under the container's /dev/null, checked to be the null device
 * (CVE-2025-31133). */
static void op_mask(struct field *f)
{
	int fd = open(f[0].s, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail(errno, NULL);
	}
	struct stat st;
	if (fstat(fd, &st) != 0)
		fail(errno, NULL);
	char target[64], src[64];
	fd_path(fd, target, sizeof(target));
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", target, "tmpfs", MS_RDONLY, "size=0,mode=555") != 0)
			fail(errno, NULL);
	} else {
		int null = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (null < 0)
			fail(errno, "open /dev/null");
		struct stat ns;
		if (fstat(null, &ns) != 0)
			fail(errno, NULL);
		if (!S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3))
			fail(0, "/dev/null in the container is not the null device");
		fd_path(null, src, sizeof(src));
		if (mount(src, target, NULL, MS_BIND, NULL) != 0)
			fail(errno, NULL);
		close(null);
	}
	close(fd);
}

static void op_root_readonly(void)
{
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root >= 0) {
		flags |= locked_flags(root);
		close(root);
	}
	if (mount("", "/", NULL, flags, NULL) != 0)
		fail(errno, NULL);
}

static void op_rlimit(struct field *f)
{
	struct rlimit rl = {.rlim_cur = (rlim_t)field_ull(&f[1]), .rlim_max = (rlim_t)field_ull(&f[2])};
	int res = (int)field_ll(&f[0]);
	if (setrlimit(res, &rl) != 0) {
		if (errno == EPERM) {
			struct rlimit cur = {0};
			getrlimit(res, &cur);
			fail(0, "process.rlimits %s: raising the hard limit from %llu to %llu needs CAP_SYS_RESOURCE, which this host does not grant",
			     f[3].s, (unsigned long long)cur.rlim_max, (unsigned long long)rl.rlim_max);
		}
		fail(errno, "process.rlimits %s", f[3].s);
	}
}

static int read_int_file(const char *path, long *out)
{
	char buf[32];
	if (read_short(path, buf, sizeof(buf)) < 0)
		return -1;
	*out = strtol(buf, NULL, 10);
	return 0;
}

/* op_oom is runtime.setOOMScoreAdj: lowering it needs CAP_SYS_RESOURCE;
 * without it the value is clamped to the current one. */
static void op_oom(struct field *f)
{
	long v = (long)field_ll(&f[0]), cur;
	if (read_int_file("/proc/self/oom_score_adj", &cur) == 0 && cur == v)
		return;
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail(errno, "process.oomScoreAdj");
	int n = dprintf(fd, "%ld", v), e = errno;
	close(fd);
	if (n >= 0)
		return;
	if ((e == EACCES || e == EPERM) && read_int_file("/proc/self/oom_score_adj", &cur) == 0 && v < cur)
		return; /* clamped */
	fail(e, "process.oomScoreAdj");
}

/* hooks asks the runtime to run the prestart and createRuntime hooks and
 * waits until it says they are done. */
static void op_hooks(void)
{
	send_msg("hooks", NULL);
	char buf[512];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(pipe_fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(1); /* the runtime is gone */
		n += (size_t)r;
		buf[n] = '\0';
		if (strchr(buf, '\n') != NULL || n == sizeof(buf) - 1)
			break;
	}
	if (strstr(buf, "\"hooks-done\"") == NULL)
		_exit(1); /* the runtime reports the hook's failure itself */
}

/* ---------- the process ---------- */

struct process {
	char **argv, **env;
	gid_t *groups;
	int ngroups;
	const char *cwd;
	uid_t uid;
	gid_t gid;
	long umask;
	int nnp, preserve_fds, fifo_fd;
	uint64_t bounding, effective, permitted, inheritable, ambient;
	int last_cap;
	struct sock_fprog filter;
	unsigned long filter_flags;
	int has_filter;
};

static char **field_list(struct field *f, int n)
{
	char **v = calloc((size_t)n + 1, sizeof(char *));
	if (v == NULL)
		fail(ENOMEM, NULL);
	for (int i = 0; i < n; i++)
		v[i] = f[i].s;
	return v;
}

/* op_seccomp takes the compiled filter (runtime/seccomp/binary.go): "CSBF",
 * version u32, flags u64, n u32, n × sock_filter, then the listener path
 * and metadata, which a plan never has (notify stays with the Go init). */
static void op_seccomp(struct process *p, struct field *f)
{
	const unsigned char *b = (const unsigned char *)f[0].s;
	if (f[0].len < 20 || memcmp(b, "CSBF", 4) != 0)
		fail(0, "linux.seccomp: not a compiled filter");
	uint32_t version, n;
	uint64_t flags;
	memcpy(&version, b + 4, 4);
	memcpy(&flags, b + 8, 8);
	memcpy(&n, b + 16, 4);
	if (version != 1 || n == 0 || n > 4096 || (uint64_t)f[0].len < 20 + 8 * (uint64_t)n)
		fail(0, "linux.seccomp: malformed compiled filter");
	struct sock_filter *insns = malloc(8 * (size_t)n);
	if (insns == NULL)
		fail(ENOMEM, NULL);
	memcpy(insns, b + 20, 8 * (size_t)n);
	p->filter.len = (unsigned short)n;
	p->filter.filter = insns;
	p->filter_flags = (unsigned long)flags;
	p->has_filter = 1;
}

static void load_seccomp(struct process *p)
{
	if (!p->has_filter)
		return;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->filter_flags, &p->filter) != 0) {
		int e = errno;
		if (e == EACCES)
			fail(e, "seccomp: load (set no_new_privs or keep CAP_SYS_ADMIN until the filter is loaded)");
		fail(e, "seccomp: load");
	}
}

static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);
	for (char **e = env; *e; e++)
		if (strncmp(*e, key, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* executable is runtime.executable; returns 0 or an errno (EISDIR and
 * EACCES worded as the Go init words them). */
static int executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return errno;
	if (S_ISDIR(st.st_mode))
		return EISDIR;
	if ((st.st_mode & 0111) == 0)
		return EACCES;
	return 0;
}

static void join_path(char *out, size_t size, const char *cwd, const char *dir, const char *name)
{
	char tmp[PATH_MAX * 2];
	if (dir == NULL)
		snprintf(tmp, sizeof(tmp), "%s", name);
	else
		snprintf(tmp, sizeof(tmp), "%s/%s", dir, name);
	if (tmp[0] != '/') {
		char abs[PATH_MAX * 3];
		snprintf(abs, sizeof(abs), "%s/%s", cwd, tmp);
		root_clean(abs, out, size);
	} else
		root_clean(tmp, out, size);
}

/* look_path is runtime.lookPath, in the container after pivot_root. */
static char *look_path(struct process *p)
{
	static char found[PATH_MAX];
	const char *name = p->argv[0];
	if (strchr(name, '/') != NULL) {
		join_path(found, sizeof(found), p->cwd, NULL, name);
		int e = executable(found);
		if (e == EISDIR)
			fail(0, "exec %s: is a directory", name);
		if (e == EACCES)
			fail(0, "exec %s: permission denied", name);
		if (e != 0)
			fail(e, "exec %s", name);
		return (char *)name;
	}
	const char *path = env_get(p->env, "PATH");
	if (path == NULL)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *dirs = strdup(path);
	if (dirs == NULL)
		fail(ENOMEM, NULL);
	char *start = dirs;
	/* strsep keeps empty elements, which mean ".". */
	for (char *dir; (dir = strsep(&start, ":")) != NULL;) {
		join_path(found, sizeof(found), p->cwd, dir[0] ? dir : ".", name);
		if (executable(found) == 0)
			return found;
	}
	fail(0, "exec \"%s\": executable file not found in $PATH", name);
}

/* home_dir is runtime.homeDir: the user's home from the container's
 * /etc/passwd, else "/". */
static const char *home_dir(uid_t uid)
{
	static char home[PATH_MAX];
	/* The image decides what /etc/passwd is: a FIFO must not block the
	 * init, so only a regular file is read. */
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return "/";
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
		close(fd);
		return "/";
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (buf != NULL && n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf == NULL || n == 0)
		return "/";
	buf[n] = '\0';
	char want[16];
	snprintf(want, sizeof(want), "%u", (unsigned)uid);
	for (char *line = buf, *next; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *fields[7] = {0};
		int nf = 0;
		for (char *s = line, *c; nf < 7; s = c + 1) {
			fields[nf++] = s;
			c = strchr(s, ':');
			if (c == NULL)
				break;
			*c = '\0';
		}
		if (nf >= 6 && strcmp(fields[2], want) == 0) {
			snprintf(home, sizeof(home), "%s", fields[5]);
			return home;
		}
	}
	return "/";
}

static void apply_caps(struct process *p)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {
		{(uint32_t)p->effective, (uint32_t)p->permitted, (uint32_t)p->inheritable},
		{(uint32_t)(p->effective >> 32), (uint32_t)(p->permitted >> 32), (uint32_t)(p->inheritable >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) != 0)
		fail(errno, "apply capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		fail(errno, "clear ambient capabilities");
	/* As the Go init: only permitted and inheritable ones can be raised. */
	uint64_t ambient = p->ambient & p->permitted & p->inheritable;
	for (int c = 0; c <= p->last_cap && c < 64; c++)
		if ((ambient >> c) & 1)
			if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
				fail(errno, "raise ambient capability %d", c);
}

/* prepare is runtime.prepareExec and dropPrivileges: resolve the
 * executable, complete the environment, then become the process but for
 * the exec (cwd, umask, fds, seccomp without no_new_privs, bounding set,
 * user, capabilities). Returns the path to exec. */
static char *prepare(struct process *p)
{
	label = "";
	char *exe = look_path(p);
	/* HOME from /etc/passwd when the config does not set it, as runc. */
	if (env_get(p->env, "HOME") == NULL) {
		int n = 0;
		while (p->env[n])
			n++;
		char **env = calloc((size_t)n + 2, sizeof(char *));
		char *home = malloc(PATH_MAX + 8);
		if (env == NULL || home == NULL)
			fail(ENOMEM, NULL);
		memcpy(env, p->env, (size_t)n * sizeof(char *));
		snprintf(home, PATH_MAX + 8, "HOME=%s", home_dir(p->uid));
		env[n] = home;
		p->env = env;
	}
	/* dropPrivileges */
	if (chdir(p->cwd) != 0)
		fail(errno, "chdir to cwd (\"%s\") set in config.json", p->cwd);
	/* The cwd must be inside the container's root (CVE-2024-21626). */
	char wd[PATH_MAX];
	if (getcwd(wd, sizeof(wd)) == NULL || wd[0] != '/')
		fail(0, "current working directory is outside of the container root");
	if (p->umask >= 0)
		umask((mode_t)p->umask);
	if (syscall(SYS_close_range, 3 + p->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
		fail(errno, "mark fds close-on-exec");
	if (!p->nnp)
		load_seccomp(p);
	for (int c = 0; c <= p->last_cap && c < 64; c++)
		if (!((p->bounding >> c) & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
			fail(errno, "drop capability %d from the bounding set", c);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		fail(errno, "keep capabilities");
	if (syscall(SYS_setgroups, p->ngroups, p->groups) != 0 && !(errno == EPERM && p->ngroups == 0))
		fail(errno, "setgroups");
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) != 0)
		fail(errno, "setgid %u", (unsigned)p->gid);
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) != 0)
		fail(errno, "setuid %u", (unsigned)p->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
		fail(errno, "clear keepcaps");
	apply_caps(p);
	return exe;
}

/* exec_process is runtime.execProcess: no_new_privs and the seccomp filter
 * as late as possible, then execve. */
static void __attribute__((noreturn)) exec_process(struct process *p, char *exe)
{
	if (p->nnp) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			fail(errno, "no_new_privs");
		load_seccomp(p);
	}
	execve(exe, p->argv, p->env);
	fail(errno, "exec %s", p->argv[0]);
}

/* finish is the end of runtime.containerInit: prepare, report ready, wait
 * for start, exec. */
static void __attribute__((noreturn)) finish(struct process *p)
{
	char *exe = prepare(p);
	send_msg("ready", NULL);
	close(pipe_fd);
	pipe_fd = -1;

	/* Block until `start` opens the fifo for reading. */
	char fifo[64];
	snprintf(fifo, sizeof(fifo), "self/fd/%d", p->fifo_fd);
	int fd = openat(host_proc, fifo, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail(errno, "open exec fifo");
	if (write(fd, "0", 1) != 1)
		fail(errno, "write exec fifo");
	close(fd);
	close(host_proc);
	exec_process(p, exe);
}

/* op_enter is the start of runtime.execInit: the container's mount
 * namespace, then the init's root (they differ with --no-pivot). */
static void op_enter(struct field *f)
{
	int root = open(f[0].s, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		fail(errno, "open container root");
	if (f[1].len > 0) {
		if (unshare(CLONE_FS) != 0)
			fail(errno, "unshare fs");
		int ns = open(f[1].s, O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			fail(errno, "open namespace %s", f[1].s);
		if (setns(ns, CLONE_NEWNS) != 0)
			fail(errno, "join namespace %s", f[1].s);
		close(ns);
	}
	if (fchdir(root) != 0)
		fail(errno, "enter container root");
	close(root);
	if (chroot(".") != 0)
		fail(errno, "chroot into container root");
}

/* ---------- the plan ---------- */

static int nfields_for(int op)
{
	switch (op) {
	case OP_LABEL: case OP_ROOT: case OP_UNSHARE: case OP_ROOT_PROPAGATION: case OP_READONLY:
	case OP_MASK: case OP_HOSTNAME: case OP_DOMAINNAME: case OP_KEYRING: case OP_OOM_SCORE_ADJ:
	case OP_PERSONALITY: case OP_IO_PRIORITY: case OP_SECCOMP:
		return 1;
	case OP_SYMLINK_IN: case OP_REPLACE_SYMLINK_IN: case OP_PIVOT: case OP_ENTER:
		return 2;
	case OP_SYSCTL:
		return 3;
	case OP_RLIMIT:
		return 4;
	case OP_MOUNT: case OP_REMOUNT_IN: case OP_MKNOD_IN:
		return 5;
	case OP_MOUNT_IN:
		return 6;
	case OP_PROC_CAPS:
		return 6;
	case OP_PROC_CREDS:
		return 7;
	case OP_ROOT_READONLY: case OP_SETSID: case OP_HOOKS: case OP_FINISH: case OP_FINISH_EXEC:
		return 0;
	case OP_PROC_ARGS: case OP_PROC_ENV: case OP_PROC_GROUPS:
		return -1; /* any */
	}
	return -2;
}

static void run_op(int op, struct field *f, int n, struct process *p)
{
	switch (op) {
	case OP_LABEL:
		label = f[0].s;
		break;
	case OP_MOUNT:
		do_mount(f[0].s, f[1].s, f[2].s, (unsigned long)field_ull(&f[3]), f[4].s);
		break;
	case OP_ROOT:
		root_fd = open(f[0].s, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0)
			fail(errno, "open root %s", f[0].s);
		break;
	case OP_MOUNT_IN:
		op_mount_in(f);
		break;
	case OP_REMOUNT_IN:
		op_remount_in(f);
		break;
	case OP_SYMLINK_IN:
		op_symlink_in(f);
		break;
	case OP_MKNOD_IN:
		op_mknod_in(f);
		break;
	case OP_REPLACE_SYMLINK_IN:
		op_replace_symlink_in(f);
		break;
	case OP_UNSHARE:
		if (unshare((int)field_ll(&f[0])) != 0)
			fail(errno, NULL);
		break;
	case OP_PIVOT:
		op_pivot(f);
		break;
	case OP_ROOT_PROPAGATION:
		if (mount("", "/", NULL, (unsigned long)field_ull(&f[0]), NULL) != 0)
			fail(errno, NULL);
		break;
	case OP_SYSCTL:
		op_sysctl(f);
		break;
	case OP_READONLY:
		op_readonly(f);
		break;
	case OP_MASK:
		op_mask(f);
		break;
	case OP_HOSTNAME:
		if (sethostname(f[0].s, f[0].len) != 0)
			fail(errno, NULL);
		break;
	case OP_DOMAINNAME:
		if (setdomainname(f[0].s, f[0].len) != 0)
			fail(errno, NULL);
		break;
	case OP_ROOT_READONLY:
		op_root_readonly();
		break;
	case OP_SETSID:
		if (setsid() < 0)
			fail(errno, NULL);
		break;
	case OP_KEYRING:
		/* A keyring of its own; a kernel without keyrings (or a denial)
		 * is not fatal. */
		if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, f[0].s) < 0 && errno != ENOSYS && errno != EACCES)
			fail(errno, NULL);
		break;
	case OP_RLIMIT:
		op_rlimit(f);
		break;
	case OP_OOM_SCORE_ADJ:
		op_oom(f);
		break;
	case OP_PERSONALITY:
		if (syscall(SYS_personality, (unsigned long)field_ull(&f[0])) == -1)
			fail(errno, NULL);
		break;
	case OP_IO_PRIORITY:
		if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)field_ll(&f[0])) != 0)
			fail(errno, NULL);
		break;
	case OP_HOOKS:
		op_hooks();
		break;
	case OP_PROC_ARGS:
		if (n == 0)
			fail(0, "process.args is empty");
		p->argv = field_list(f, n);
		break;
	case OP_PROC_ENV:
		p->env = field_list(f, n);
		break;
	case OP_PROC_GROUPS:
		p->groups = calloc((size_t)n + 1, sizeof(gid_t));
		if (p->groups == NULL)
			fail(ENOMEM, NULL);
		for (int i = 0; i < n; i++)
			p->groups[i] = (gid_t)field_ull(&f[i]);
		p->ngroups = n;
		break;
	case OP_PROC_CREDS:
		p->cwd = f[0].s;
		p->uid = (uid_t)field_ull(&f[1]);
		p->gid = (gid_t)field_ull(&f[2]);
		p->umask = (long)field_ll(&f[3]);
		p->nnp = f[4].s[0] == '1';
		p->preserve_fds = (int)field_ll(&f[5]);
		p->fifo_fd = (int)field_ll(&f[6]);
		break;
	case OP_PROC_CAPS:
		p->bounding = field_ull(&f[0]);
		p->effective = field_ull(&f[1]);
		p->permitted = field_ull(&f[2]);
		p->inheritable = field_ull(&f[3]);
		p->ambient = field_ull(&f[4]);
		p->last_cap = (int)field_ll(&f[5]);
		break;
	case OP_SECCOMP:
		op_seccomp(p, f);
		break;
	case OP_ENTER:
		op_enter(f);
		break;
	case OP_FINISH:
	case OP_FINISH_EXEC:
		if (p->argv == NULL || p->env == NULL || p->cwd == NULL)
			fail(0, "malformed plan: no process");
		if (op == OP_FINISH)
			finish(p);
		exec_process(p, prepare(p));
	}
}

static int read_full(int fd, void *buf, size_t n)
{
	char *b = buf;
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static uint32_t le32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int run_init(void)
{
	const char *env = getenv("_CAPSA_INITPIPE");
	pipe_fd = env ? atoi(env) : -1;
	if (pipe_fd < 3) {
		dprintf(2, "capsa-runtime init: bad _CAPSA_INITPIPE\n");
		return 1;
	}
	unsetenv("_CAPSA_INITPIPE");
	/* The plan: one frame, a u32 length and the bytes. */
	unsigned char hdr[4];
	if (read_full(pipe_fd, hdr, 4) != 0)
		_exit(1); /* the runtime is gone: nobody to tell */
	uint32_t size = le32(hdr);
	if (size > MAX_PLAN)
		fail(0, "malformed plan: %u bytes", size);
	unsigned char *buf = malloc((size_t)size + 1);
	if (buf == NULL || read_full(pipe_fd, buf, size) != 0)
		_exit(1);
	/* A host /proc handle taken now still works after pivot_root. */
	host_proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (host_proc < 0)
		fail(errno, "open /proc");
	if (size < sizeof(PLAN_MAGIC) - 1 || memcmp(buf, PLAN_MAGIC, sizeof(PLAN_MAGIC) - 1) != 0)
		fail(0, "malformed plan");
	size_t off = sizeof(PLAN_MAGIC) - 1;
	struct process proc = {.umask = -1, .fifo_fd = -1};
	static struct field fields[1 << 16];
	while (off < size) {
		if (size - off < 4)
			fail(0, "malformed plan: truncated operation");
		int op = buf[off] | buf[off + 1] << 8;
		int n = buf[off + 2] | buf[off + 3] << 8;
		off += 4;
		int want = nfields_for(op);
		if (want == -2 || (want >= 0 && n != want))
			fail(0, "malformed plan: operation %d with %d fields", op, n);
		for (int i = 0; i < n; i++) {
			if (size - off < 4)
				fail(0, "malformed plan: truncated field");
			uint32_t len = le32(buf + off);
			if (len > size - off - 4)
				fail(0, "malformed plan: field of %u bytes", len);
			/* Move the bytes over the length prefix so that the byte
			 * after them can hold a NUL without hiding the next
			 * prefix. */
			memmove(buf + off, buf + off + 4, len);
			fields[i].s = (char *)buf + off;
			fields[i].len = len;
			buf[off + len] = '\0';
			off += 4 + (size_t)len;
		}
		run_op(op, fields, n, &proc);
	}
	fail(0, "malformed plan: no finish");
}
