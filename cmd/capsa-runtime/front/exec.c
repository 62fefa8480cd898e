/*
 * exec in the front: `exec --process FILE` into a running (or created)
 * container without starting the Go runtime.
 *
 * This is runtime.Container.Exec and cmd/capsa-runtime/exec.go for the
 * common case, as engines call it (containerd's shim and conmon pass
 * --process, often with --detach and --pid-file): the process is read and
 * checked with the Go runtime's rules (config.c), the container's record
 * (runtime/fastpath.go: `exec-ok`, its namespaces, personality and whether
 * a seccomp filter exists) says whether the C init may run it, and the C
 * init gets the plan buildExecPlan would send. Everything else — another
 * flag, a command instead of --process, a container in another state, any
 * doubt, any failure — hands off to the Go runtime with the arguments
 * unchanged (after undoing what was done: the child is killed and reaped),
 * so the Go runtime decides and words every error.
 *
 * CAPSA_RUNTIME_GO_EXEC=1 (any non-empty value) makes the front always
 * hand exec off, for tests and for telling the two apart; so does
 * CAPSA_RUNTIME_GO_INIT, which asks for the Go init.
 *
 * The process: the front joins the init's pid namespace for its children
 * only (setns on the init's pidfd), forks, and goes back to its own, so
 * the child is the container's process, the front's own child, in the
 * container's pid namespace — the pid to wait for and to write to
 * --pid-file, with no intermediate process. The child joins the other
 * namespaces (setns on the same pidfd: all at once, and only of the very
 * process whose start time was checked), is put into the cgroups by the
 * front, and execs the C init from a read-only detached mount of this
 * binary (CVE-2019-5736: nothing in the container may ever reach a
 * writable runtime binary), which enters the mount namespace and root and
 * becomes the process. The init pipe is close-on-exec in the process: EOF
 * means it exec'd, an error message that it failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include "config.h"
#include "front.h"

#define ENV_FORCE_GO_EXEC "CAPSA_RUNTIME_GO_EXEC"
#define ENV_FORCE_GO_INIT "CAPSA_RUNTIME_GO_INIT"
/* Larger process files and filters are left to the Go runtime; the C init
 * takes plans up to 16 MiB. */
#define MAX_PROCESS_JSON (4u << 20)
#define MAX_SECCOMP (8u << 20)
/* More preserved fds than this go to the Go runtime. */
#define MAX_PRESERVE_FDS 1024

/* The flags of `exec` the front takes; any other makes it hand off. */
struct exec_opts {
	const char *process;
	const char *pid_file; /* NULL or "": none, as in Go */
	int detach;
	int preserve_fds;
	const char *id;
};

/* parse_count is Go's flag.IntVar for what the front accepts: plain
 * decimal (Go's base-0 parsing reads "010" as octal and takes "0x", "+"
 * and "_": the Go runtime parses those). */
static int parse_count(const char *s, int *out)
{
	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	long n = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (*p - '0');
		if (n > MAX_PRESERVE_FDS)
			return -1;
	}
	*out = (int)n;
	return 0;
}

/* parse_exec_flags reads the flags as Go's flag package does for exec
 * (flags before the id only: -name, --name, -name=value, -name value) and
 * the id; -1 for anything the front leaves to the Go runtime. */
static int parse_exec_flags(int argc, char **argv, int i, struct exec_opts *o)
{
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		const char *name = a + (a[1] == '-' ? 2 : 1);
		if (name[0] == '\0' || name[0] == '-' || name[0] == '=')
			return -1; /* Go's "bad flag syntax" */
		const char *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
#define FLAG_IS(s) (n == sizeof(s) - 1 && strncmp(name, s, n) == 0)
		if (FLAG_IS("d") || FLAG_IS("detach")) {
			if (eq != NULL)
				return -1; /* -d=false and the like */
			o->detach = 1;
			continue;
		}
		if (!FLAG_IS("p") && !FLAG_IS("process") && !FLAG_IS("pid-file") && !FLAG_IS("preserve-fds"))
			return -1;
		const char *v;
		if (eq != NULL)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else
			return -1; /* Go: "flag needs an argument" */
		if (FLAG_IS("pid-file"))
			o->pid_file = v;
		else if (FLAG_IS("preserve-fds")) {
			if (parse_count(v, &o->preserve_fds) != 0)
				return -1;
		} else
			o->process = v;
#undef FLAG_IS
	}
	/* Exactly the id: a command after it is the process when --process
	 * is missing, and ignored by the Go runtime when it is given. */
	if (i != argc - 1 || o->process == NULL || o->process[0] == '\0')
		return -1;
	o->id = argv[i];
	return 0;
}

/* load_filter reads the compiled seccomp filter the Go runtime saved at
 * create (seccomp.bpf, sent to the init as it is: Exec's plan carries the
 * file's bytes). 0 with *filter NULL when there is none; -1 when the file
 * and the record disagree, or the filter needs the Go init (NOTIFY). */
static int load_filter(int dirfd, const struct record *r, char **filter, size_t *len)
{
	*filter = NULL;
	*len = 0;
	if (!r->seccomp) {
		struct stat st;
		return fstatat(dirfd, "seccomp.bpf", &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT ? 0 : -1;
	}
	char *b = read_small(dirfd, "seccomp.bpf", MAX_SECCOMP, len);
	/* runtime/seccomp/binary.go: "CSBF", u32 version, u64 flags, ... */
	if (b == NULL || *len < 16 || memcmp(b, "CSBF", 4) != 0)
		return -1;
	uint64_t flags = 0;
	for (int k = 7; k >= 0; k--)
		flags = flags << 8 | (unsigned char)b[8 + k];
	if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)
		return -1;
	*filter = b;
	return 0;
}

/* A --pid-file being written: the temp file is made before the process
 * starts, so that a directory that cannot take it hands off before
 * anything ran; it is renamed over the path once the process exec'd (Go's
 * writePidFile: atomic, the path made absolute). */
struct pid_file {
	char path[PATH_MAX];
	char tmp[PATH_MAX];
	int fd;
};

/* pid_file_prepare makes the temp file; -1 to hand off. Paths whose
 * lexical cleaning (Go's filepath.Abs) could name another file than the
 * kernel resolves — ".." components (after a symlink), a last component
 * "." or a trailing slash (the directory itself) — are left to the Go
 * runtime. */
static int pid_file_prepare(struct pid_file *pf, const char *path)
{
	pf->fd = -1;
	size_t n = strlen(path);
	if (path[n - 1] == '/')
		return -1;
	for (const char *c = path; *c;) {
		const char *end = strchr(c, '/');
		size_t l = end ? (size_t)(end - c) : strlen(c);
		if ((l == 1 && c[0] == '.' && end == NULL) || (l == 2 && c[0] == '.' && c[1] == '.'))
			return -1;
		c += l;
		while (*c == '/')
			c++;
	}
	char cwd[PATH_MAX];
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	int w = path[0] == '/' ? snprintf(pf->path, sizeof(pf->path), "%s", path)
			       : snprintf(pf->path, sizeof(pf->path), "%s/%s", cwd, path);
	if (w < 0 || (size_t)w >= sizeof(pf->path))
		return -1;
	const char *slash = strrchr(pf->path, '/');
	w = snprintf(pf->tmp, sizeof(pf->tmp), "%.*s/.%s.tmpXXXXXX", (int)(slash - pf->path), pf->path, slash + 1);
	if (w < 0 || (size_t)w >= sizeof(pf->tmp))
		return -1;
	pf->fd = mkostemp(pf->tmp, O_CLOEXEC);
	return pf->fd < 0 ? -1 : 0;
}

static void pid_file_discard(struct pid_file *pf)
{
	if (pf->fd < 0)
		return;
	close(pf->fd);
	pf->fd = -1;
	unlink(pf->tmp);
}

static int pid_file_commit(struct pid_file *pf, const char *pid)
{
	size_t n = strlen(pid);
	if (write(pf->fd, pid, n) != (ssize_t)n || fchmod(pf->fd, 0644) != 0) {
		pid_file_discard(pf);
		return -1;
	}
	int r = close(pf->fd);
	pf->fd = -1;
	if (r != 0 || rename(pf->tmp, pf->path) != 0) {
		unlink(pf->tmp);
		return -1;
	}
	return 0;
}

/* child_fail tells the front that the child failed before the init ran
 * (any bytes on the pipe mean failure) and exits. */
static void __attribute__((noreturn)) child_fail(int pipe, const char *what)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "{\"type\":\"error\",\"error\":\"%s: %s\"}\n", what, strerror(errno));
	/* A failed write means the front is gone: nobody to tell. */
	ssize_t w = n > 0 ? write(pipe, msg, (size_t)n) : 0;
	_exit(w >= 0 ? 1 : 2);
}

/* The signal state the front changed to wait for the process: the
 * caller's, which the process and a hand-off get back (NULL: unchanged). */
struct saved_signals {
	const struct sigaction *sigchld;
	const uint64_t *mask;
};

static int restore_signals(const struct saved_signals *s)
{
	if (s->mask != NULL && syscall(SYS_rt_sigprocmask, SIG_SETMASK, s->mask, NULL, sizeof(*s->mask)) != 0)
		return -1;
	if (s->sigchld != NULL && sigaction(SIGCHLD, s->sigchld, NULL) != 0)
		return -1;
	return 0;
}

/* give_back restores the signal state before a hand-off. */
static void give_back(const struct saved_signals *s)
{
	if (restore_signals(s) != 0)
		debugf("exec: C front: cannot restore the signal mask");
}

/* exec_child is the forked child, already in the container's pid
 * namespace: join the others, lay out the fds as the Go runtime's spawn
 * does (preserved fds from 3, then the init pipe, then the binary) and
 * exec the C init from the read-only binary. */
static void __attribute__((noreturn)) exec_child(int pipe, int bin, int pidfd, unsigned long ns, int nfds,
						 const struct saved_signals *saved)
{
	/* Until it execs the read-only binary this process runs the host's
	 * front binary, already visible in the container's pid namespace:
	 * non-dumpable, its /proc/PID/exe is out of reach of the container's
	 * processes (execve makes it dumpable again). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		child_fail(pipe, "set non-dumpable");
	unsigned long join = ns & (CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP);
	if (join != 0 && setns(pidfd, (int)join) != 0)
		child_fail(pipe, "join the container's namespaces");
	int at = 3 + nfds;
	/* First above every target, so that no dup2 overwrites a source. */
	int p2 = fcntl(pipe, F_DUPFD_CLOEXEC, at + 2);
	if (p2 < 0)
		child_fail(pipe, "move the init pipe");
	int b2 = fcntl(bin, F_DUPFD_CLOEXEC, at + 2);
	if (b2 < 0)
		child_fail(p2, "move the init binary");
	if (dup2(p2, at) < 0)
		child_fail(p2, "place the init pipe");
	if (dup2(b2, at + 1) < 0)
		child_fail(at, "place the init binary");
	char env[32], path[32];
	snprintf(env, sizeof(env), "_CAPSA_INITPIPE=%d", at);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", at + 1);
	char *args[] = {"capsa-runtime", "init", NULL};
	char *envp[] = {env, NULL};
	/* Last: a signal sent to the front until now waits to be forwarded
	 * to the process. */
	if (restore_signals(saved) != 0)
		child_fail(at, "restore the signal mask");
	execve(path, args, envp);
	child_fail(at, "exec the init");
}

/* send_all writes the iovecs completely; MSG_NOSIGNAL: a child that died
 * must not kill the front with SIGPIPE. */
static int send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* join_cgroups is cgroups.FromPaths(...).Apply(pid) for cgroups that
 * exist: the pid into each recorded dir's cgroup.procs. */
static int join_cgroups(const struct record *r, const char *pid)
{
	for (int k = 0; k < r->ncgroups; k++) {
		char path[PATH_MAX];
		int n = snprintf(path, sizeof(path), "%s/cgroup.procs", r->cgroups[k]);
		if (n < 0 || (size_t)n >= sizeof(path))
			return -1;
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		ssize_t w = write(fd, pid, strlen(pid));
		close(fd);
		if (w != (ssize_t)strlen(pid))
			return -1;
	}
	return 0;
}

/* wait_forwarding is cmd/capsa-runtime's waitForwarding: every signal the
 * front gets but SIGCHLD, SIGURG and SIGPIPE goes to the process; the exit
 * code is the process's, or 128+signal. Signals are taken synchronously
 * (all blocked since before the fork, so that none sent while the process
 * started is lost; sigtimedwait), so nothing of the front runs in a
 * handler; a real fault still kills the front (the kernel unblocks it). */
static void __attribute__((noreturn)) wait_forwarding(pid_t pid)
{
	uint64_t all = ~(uint64_t)0;
	for (;;) {
		int status;
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
		if (w < 0 && errno != EINTR)
			exit(255); /* as Go when Wait fails */
		siginfo_t si;
		int sig = (int)syscall(SYS_rt_sigtimedwait, &all, &si, NULL, sizeof(all));
		if (sig <= 0 || sig == SIGCHLD || sig == SIGURG || sig == SIGPIPE)
			continue;
		kill(pid, sig); /* the process may be exiting */
	}
}

/* kill_child undoes a started child before a hand-off. */
static void kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

void cmd_exec(int argc, char **argv, int i, const char *root)
{
	const char *force;
	if (((force = getenv(ENV_FORCE_GO_EXEC)) != NULL && force[0] != '\0') ||
	    ((force = getenv(ENV_FORCE_GO_INIT)) != NULL && force[0] != '\0'))
		return;
	struct exec_opts o = {0};
	if (parse_exec_flags(argc, argv, i, &o) != 0 || !valid_id(o.id))
		return;
	/* Stdio and the preserved fds are the process's: checked before the
	 * front opens anything, which could take a closed one's number. */
	for (int fd = 0; fd < 3 + o.preserve_fds; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			return;

	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s/%s", root, o.id);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return;
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return;
	struct record r;
	struct stat st;
	if (read_record(dirfd, &r) != 0 || !r.exec_ok || r.ns_unknown || (r.ns & (CLONE_NEWUSER | CLONE_NEWTIME)))
		return;
	/* The Go runtime's Load needs state.json (the record is written
	 * first, at create). */
	if (fstatat(dirfd, "state.json", &st, AT_SYMLINK_NOFOLLOW) != 0)
		return;
	/* The pidfd, through which the namespaces are joined, names this very
	 * init. A paused or freezing container: Exec refuses, the Go runtime
	 * says so. */
	int pidfd = live_init_pidfd(&r);
	if (pidfd < 0 || freezer_state(&r) != 0)
		return;
	char *filter;
	size_t filter_len;
	if (load_filter(dirfd, &r, &filter, &filter_len) != 0)
		return;

	size_t len;
	/* By path, following symlinks as Go's os.ReadFile; a FIFO is left to
	 * the Go runtime, which reads it. */
	char *data = read_regular(AT_FDCWD, o.process, O_NONBLOCK, MAX_PROCESS_JSON, &len);
	if (data == NULL)
		return;
	json_error_t jerr;
	json_t *proc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (proc == NULL || check_process(proc) != 0)
		return;
	/* planProcess reads the personality from the config: the record
	 * carries it. */
	json_t *spec_linux = NULL;
	if (r.personality >= 0 &&
	    (spec_linux = json_pack("{s:{s:s}}", "personality", "domain", r.personality == 8 ? "LINUX32" : "LINUX")) == NULL)
		return;
	struct plan p;
	char rootdir[64], mntns[64] = "";
	snprintf(rootdir, sizeof(rootdir), "/proc/%ld/root", r.pid);
	if (r.ns & CLONE_NEWNS)
		snprintf(mntns, sizeof(mntns), "/proc/%ld/ns/mnt", r.pid);
	plan_init(&p);
	plan_opv(&p, OP_LABEL, "", NULL);
	plan_opv(&p, OP_ENTER, rootdir, mntns, NULL);
	plan_opv(&p, OP_SETSID, NULL);
	if (plan_process(&p, proc, spec_linux, o.preserve_fds, -1, filter, filter_len) != 0)
		return;
	plan_opv(&p, OP_FINISH_EXEC, NULL);
	if (p.err || p.len > UINT32_MAX)
		return;

	struct pid_file pf = {.fd = -1};
	if (o.pid_file != NULL && o.pid_file[0] != '\0' && pid_file_prepare(&pf, o.pid_file) != 0)
		return;
	/* The init runs from a detached read-only mount of this binary; where
	 * that is refused the Go runtime (which falls back to a sealed copy)
	 * does the exec. */
	int bin = open_tree(AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
	if (bin < 0 || mount_setattr(bin, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
		pid_file_discard(&pf);
		return;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		pid_file_discard(&pf);
		return;
	}
	/* To wait: a SIGCHLD the caller ignores would reap the process before
	 * the front reads its status, and signals are blocked from now on to
	 * be forwarded (the child restores both, and so does a hand-off). */
	struct sigaction dfl = {.sa_handler = SIG_DFL}, sigchld;
	uint64_t all = ~(uint64_t)0, mask;
	struct saved_signals saved = {NULL, NULL};
	if (!o.detach) {
		if (sigaction(SIGCHLD, &dfl, &sigchld) != 0) {
			pid_file_discard(&pf);
			return;
		}
		saved.sigchld = &sigchld;
		if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &mask, sizeof(all)) != 0) {
			give_back(&saved);
			pid_file_discard(&pf);
			return;
		}
		saved.mask = &mask;
	}
	/* The pid namespace is joined for the children only; the front goes
	 * back to its own right after the fork, before anything else could
	 * fork (the Go runtime, when it hands off). */
	int ownpid = -1;
	if (r.ns & CLONE_NEWPID) {
		ownpid = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
		if (ownpid < 0 || setns(pidfd, CLONE_NEWPID) != 0) {
			give_back(&saved);
			pid_file_discard(&pf);
			return;
		}
	}
	debugf("exec: C front");
	pid_t pid = fork();
	if (pid == 0)
		exec_child(sv[1], bin, pidfd, r.ns, o.preserve_fds, &saved);
	/* Back in its own pid namespace for good: setns to the caller's
	 * active namespace is always allowed. */
	if (ownpid >= 0 && setns(ownpid, CLONE_NEWPID) != 0) {
		/* Cannot happen; the Go runtime's exec joins the container's
		 * pid namespace for its child anyway. */
		debugf("exec: C front: cannot return to its own pid namespace");
	}
	close(sv[1]);
	close(bin);
	if (pid < 0) {
		give_back(&saved);
		pid_file_discard(&pf);
		return;
	}
	char pidstr[24];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	unsigned char hdr[4] = {(unsigned char)p.len, (unsigned char)(p.len >> 8), (unsigned char)(p.len >> 16),
				(unsigned char)(p.len >> 24)};
	struct iovec iov[2] = {{hdr, 4}, {p.b, p.len}};
	int failed = join_cgroups(&r, pidstr) != 0 || send_all(sv[0], iov, 2) != 0;
	/* The init pipe is close-on-exec in the process: EOF means the exec
	 * happened, anything else (an error message) that it did not. */
	while (!failed) {
		char buf[512];
		ssize_t got = read(sv[0], buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		failed = got != 0;
		break;
	}
	close(sv[0]);
	/* A pid file that cannot be written after all undoes the process too:
	 * the Go runtime then does the exec again and reports the error. */
	if (failed || (pf.fd >= 0 && pid_file_commit(&pf, pidstr) != 0)) {
		kill_child(pid);
		give_back(&saved);
		pid_file_discard(&pf);
		debugf("exec: C front: the process did not start; the Go runtime does the exec");
		return;
	}
	if (o.detach)
		exit(0);
	wait_forwarding(pid);
}
