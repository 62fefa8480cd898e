//go:build cgo && linux

/*
 * The nsenter constructor: joins a user namespace (and a time namespace)
 * before the Go runtime starts. setns(2) refuses to move a process with
 * more than one thread into either (EINVAL and EUSERS), and a Go program
 * has several threads before its first Go instruction, so the only place
 * where a Go binary can join them is a C constructor, which the C library
 * runs before it calls main (and so before the Go runtime exists).
 *
 * It acts only when a variable named _CAPSA_NSENTER_* is in the
 * environment; every other run of the binary pays one scan of the
 * environment. The contract (see docs/nsenter.md and nsenter.go):
 *
 *   _CAPSA_NSENTER_FD           fd of the status pipe's write end (required)
 *   _CAPSA_NSENTER_USERNS       path of a user namespace to join
 *   _CAPSA_NSENTER_TIMENS       path of a time namespace to join (after it)
 *   _CAPSA_NSENTER_UNSHARE      CLONE_NEW* flags to create then (decimal)
 *   _CAPSA_NSENTER_OOM          oom_score_adj to set before joining
 *   _CAPSA_NSENTER_TIME_OFFSETS time offsets, written right after CLONE_NEWTIME
 *
 * At least one of USERNS and TIMENS is required. It writes exactly one line
 * to the status fd: "ok", "pid N" (it forked for CLONE_NEWPID: N is the pid,
 * in the caller's pid namespace, of the process that goes on into Go) or
 * "error MESSAGE" (and then exits 1), and closes the fd in every process
 * that goes on, so the parent reads to EOF.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE _IO(0xb7, 0x3)
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Must match the constants in nsenter.go. */
#define ENV_PREFIX "_CAPSA_NSENTER_"
#define ENV_FD ENV_PREFIX "FD"
#define ENV_USERNS ENV_PREFIX "USERNS"
#define ENV_TIMENS ENV_PREFIX "TIMENS"
#define ENV_UNSHARE ENV_PREFIX "UNSHARE"
#define ENV_OOM ENV_PREFIX "OOM"
#define ENV_TIME_OFFSETS ENV_PREFIX "TIME_OFFSETS"

#define ALLOWED_UNSHARE \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWPID | CLONE_NEWTIME)

/* Where errors go: the status fd once it is known, stderr before. */
static int status_fd = -1;

/* write_all writes the whole buffer, retrying short writes and EINTR. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * fail reports "error MESSAGE[: strerror(err)]" and exits. _exit, not exit:
 * nothing of this half-set-up process (atexit handlers, stdio buffers) may
 * run.
 */
static void __attribute__((noreturn, format(printf, 2, 3))) fail(int err, const char *fmt, ...)
{
	char msg[1024];
	int n = snprintf(msg, sizeof(msg), "error ");
	va_list ap;

	va_start(ap, fmt);
	n += vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	if (err != 0)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
	if (n > (int)sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	msg[n++] = '\n';
	if (status_fd >= 0) {
		(void)write_all(status_fd, msg, (size_t)n);
	} else {
		/* No status fd to tell: say it on stderr, without the protocol word. */
		(void)write_all(2, "capsa-runtime nsenter: ", 23);
		(void)write_all(2, msg + 6, (size_t)n - 6);
	}
	_exit(1);
}

/* parse_long parses a whole decimal string, or fails naming the variable. */
static long parse_long(const char *name, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		fail(0, "%s=%s: not a number in [%ld, %ld]", name, s, min, max);
	return v;
}

/* write_file writes a short string to a /proc file in one write. */
static void write_file(const char *path, const char *data, const char *what)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		fail(errno, "%s: open %s", what, path);
	if (write_all(fd, data, strlen(data)) < 0)
		fail(errno, "%s: write %s", what, path);
	close(fd);
}

/*
 * set_oom_score_adj writes oom_score_adj. Lowering it below the current
 * value needs CAP_SYS_RESOURCE; where the host withholds it, the value is
 * clamped to the current one rather than failing, as the runtime's Go code
 * (setOOMScoreAdj) does for a process that joins no user namespace.
 */
static void set_oom_score_adj(const char *value)
{
	long want = parse_long(ENV_OOM, value, -1000, 1000);
	char cur[32];
	ssize_t n;
	int fd, err;

	fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail(errno, "oom_score_adj: open /proc/self/oom_score_adj");
	if (write_all(fd, value, strlen(value)) == 0) {
		close(fd);
		return;
	}
	err = errno;
	if (err == EACCES || err == EPERM) {
		n = pread(fd, cur, sizeof(cur) - 1, 0);
		if (n > 0) {
			cur[n] = '\0';
			if (want < strtol(cur, NULL, 10)) {
				close(fd);
				return; /* clamped to the current value */
			}
		}
	}
	fail(err, "oom_score_adj: write %ld to /proc/self/oom_score_adj", want);
}

/*
 * join_ns joins the namespace of the given type at path. It returns 0,
 * having done nothing, if the process is in that namespace already: the
 * kernel refuses (EINVAL) to "re-join" one's own user namespace, because
 * that would grant capabilities for nothing, but being there already is
 * what was asked.
 */
static int join_ns(const char *path, int nstype, const char *name)
{
	char self[32];
	struct stat want, cur;
	int fd, type;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(errno, "open %s namespace %s", name, path);
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type < 0)
		fail(errno == ENOTTY ? 0 : errno, "%s is not a namespace", path);
	if (type != nstype)
		fail(0, "%s is not a %s namespace", path, name);
	snprintf(self, sizeof(self), "/proc/self/ns/%s", name);
	if (fstat(fd, &want) < 0)
		fail(errno, "stat %s", path);
	if (stat(self, &cur) < 0)
		fail(errno, "stat %s", self);
	if (want.st_dev == cur.st_dev && want.st_ino == cur.st_ino) {
		close(fd);
		return 0;
	}
	if (setns(fd, nstype) < 0) {
		int e = errno;

		if (e == EINVAL || e == EUSERS)
			fail(e, "join %s namespace %s (the process must be single-threaded and not chrooted)", name, path);
		fail(e, "join %s namespace %s", name, path);
	}
	close(fd);
	return 1;
}

/*
 * become_root makes the process uid and gid 0 of the user namespace it
 * joined. setns gave it every capability there but left its ids: the host's
 * uid 0 is usually unmapped in a container's namespace (it shows as the
 * overflow uid and cannot create files), so the process becomes the
 * namespace's root, as one cloned into a new user namespace by the runtime
 * is. Groups first, while CAP_SETGID is surely held; setgroups is denied
 * (EPERM) in a namespace whose /proc/PID/setgroups says "deny", and then the
 * host groups simply stay (the runtime sets the process's own groups later,
 * and reports it there if that is refused).
 */
static void become_root(const char *path)
{
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		fail(errno, "setgroups in user namespace %s", path);
	if (setresgid(0, 0, 0) < 0)
		fail(errno, "become gid 0 in user namespace %s%s", path,
		     errno == EINVAL ? " (gid 0 is not mapped there)" : "");
	if (setresuid(0, 0, 0) < 0)
		fail(errno, "become uid 0 in user namespace %s%s", path,
		     errno == EINVAL ? " (uid 0 is not mapped there)" : "");
}

static void nsenter(void)
{
	const char *s, *userns, *timens, *offsets;
	unsigned long flags = 0;
	int joined = 0;
	pid_t pid;

	/* The status fd first, so every later error reaches the parent. */
	s = getenv(ENV_FD);
	if (s == NULL)
		fail(0, "%s* variables are set but %s is not", ENV_PREFIX, ENV_FD);
	{
		long fd = parse_long(ENV_FD, s, 0, 1 << 20);

		if (fcntl((int)fd, F_GETFD) < 0)
			fail(errno, "%s=%ld", ENV_FD, fd);
		status_fd = (int)fd;
	}
	/* The fd must not survive into anything this process executes. */
	if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0)
		fail(errno, "close-on-exec status fd");

	userns = getenv(ENV_USERNS);
	timens = getenv(ENV_TIMENS);
	if (userns == NULL && timens == NULL)
		fail(0, "neither %s nor %s is set", ENV_USERNS, ENV_TIMENS);
	if ((userns != NULL && *userns == '\0') || (timens != NULL && *timens == '\0'))
		fail(0, "empty namespace path");
	s = getenv(ENV_UNSHARE);
	if (s != NULL) {
		flags = (unsigned long)parse_long(ENV_UNSHARE, s, 0, 0x7fffffffL);
		if (flags & ~(unsigned long)ALLOWED_UNSHARE)
			fail(0, "%s=%s: flags other than CLONE_NEWNS/UTS/IPC/NET/CGROUP/PID/TIME", ENV_UNSHARE, s);
	}
	offsets = getenv(ENV_TIME_OFFSETS);
	if (offsets != NULL && !(flags & CLONE_NEWTIME))
		fail(0, "%s without CLONE_NEWTIME in %s", ENV_TIME_OFFSETS, ENV_UNSHARE);
	if (timens != NULL && (flags & CLONE_NEWTIME))
		fail(0, "both %s and CLONE_NEWTIME", ENV_TIMENS);

	/* Lowering oom_score_adj needs CAP_SYS_RESOURCE on the host: before setns. */
	s = getenv(ENV_OOM);
	if (s != NULL)
		set_oom_score_adj(s);

	if (userns != NULL) {
		/*
		 * Non-dumpable from here to the container process's execve (which
		 * resets it): in the user namespace, this process has the ids of
		 * the container's root, which could otherwise ptrace it or open its
		 * /proc files and steal the host fds it still holds (the attack of
		 * CVE-2016-9962 on runc). Its /proc/self files then belong to the
		 * host's root: what must be written there is written while this
		 * process still is the host's root, before become_root.
		 */
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			fail(errno, "make the process non-dumpable");
		joined = join_ns(userns, CLONE_NEWUSER, "user");
	}
	if (timens != NULL)
		join_ns(timens, CLONE_NEWTIME, "time");

	/*
	 * The new namespaces are created now, by a process whose credentials
	 * are in the joined user namespace, so that namespace owns them.
	 */
	if (flags != 0 && unshare((int)flags) < 0)
		fail(errno, "unshare namespaces 0x%lx", flags);
	/* Offsets can be set only before any process enters the time namespace. */
	if (offsets != NULL)
		write_file("/proc/self/timens_offsets", offsets, "time offsets");
	if (joined)
		become_root(userns);

	if (!(flags & CLONE_NEWPID)) {
		if (write_all(status_fd, "ok\n", 3) < 0)
			fail(errno, "write status");
		close(status_fd);
		return;
	}

	/*
	 * A new pid namespace holds only the children of the process that
	 * unshared it (and the Go runtime could not even start its threads in
	 * a process whose children go elsewhere: clone refuses CLONE_THREAD
	 * then), so fork: the child is the new namespace's pid 1 and goes on
	 * into Go; this process reports the child's pid, as seen from its own
	 * pid namespace, which is the parent's when the parent cloned it without
	 * joining or creating one (capsa's create never asks for CLONE_NEWPID
	 * together with a pid namespace to join), and exits.
	 */
	pid = fork();
	if (pid < 0)
		fail(errno, "fork into the new pid namespace");
	if (pid == 0) {
		close(status_fd);
		return;
	}
	{
		char line[32];
		int n = snprintf(line, sizeof(line), "pid %d\n", (int)pid);

		if (write_all(status_fd, line, (size_t)n) < 0)
			_exit(1); /* the parent is gone: its read sees EOF */
	}
	_exit(0);
}

extern char **environ;

/*
 * The constructor proper. When no variable of the contract is set, it costs
 * one pass over the environment. The variables are cleared once used
 * (unsetenv edits the environment array in place, and that array is the
 * one the Go runtime reads next), so neither the Go program nor the
 * container process it executes sees them. A process that fails never gets
 * that far: it exits.
 */
__attribute__((constructor, used)) static void capsa_nsenter(void)
{
	char **e;
	size_t plen = strlen(ENV_PREFIX);

	for (e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, ENV_PREFIX, plen) == 0)
			break;
	}
	if (e == NULL || *e == NULL)
		return;
	nsenter();
	unsetenv(ENV_FD);
	unsetenv(ENV_USERNS);
	unsetenv(ENV_TIMENS);
	unsetenv(ENV_UNSHARE);
	unsetenv(ENV_OOM);
	unsetenv(ENV_TIME_OFFSETS);
}
