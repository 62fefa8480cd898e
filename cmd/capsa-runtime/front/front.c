/*
 * capsa-runtime's front: the program installed as capsa-runtime.
 *
 * Engines run the runtime once per operation, so every container pays the
 * start-up of the runtime binary several times (create, start, delete). A Go
 * program needs ~1 ms of CPU and ~2 MiB before main, and more for a large
 * binary; this front is a small static C program that does the
 * operations which need no config.json — `state`, `start` of a created
 * container, `kill` of a running one (not --all), `delete` of a stopped one (or
 * `delete --force` of one whose init is the init of its own pid namespace)
 * — straight from a record left in the state directory at create
 * (runtime/fastpath.go writes it, and create.c the same).
 *
 * It also does `create` and `exec --process` itself for the configs it
 * fully understands (create.c, exec.c: the Go runtime's work without the
 * Go runtime, compared with it by the tests), and it is the container's
 * init when the init's work is a plan (init.c, runtime/plan.go).
 *
 * Everything else, and every case the front is not sure about, is handed to
 * the Go runtime (capsa-runtime-go next to this binary) by execve with the
 * arguments unchanged: an unknown flag, a record that is missing or says no,
 * a container in an unexpected state, any error. The Go runtime then decides
 * and words the error, so the front never reports a failure of its own and
 * its behaviour is the Go runtime's by construction. Only a failure to run
 * the Go runtime is reported here.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "files.h"
#include "front.h"

#define GO_RUNTIME "capsa-runtime-go"
#define RECORD "fastpath"
#define RECORD_MAGIC "capsa-fastpath 1"

extern char **environ;

static char **g_argv;

/* handoff runs the Go runtime with this process's arguments; it only
 * returns on failure, and then exits. */
void handoff(void)
{
	char self[PATH_MAX], path[PATH_MAX + sizeof(GO_RUNTIME)];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "capsa-runtime: find own binary: %s\n", strerror(errno));
		exit(1);
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL) {
		fprintf(stderr, "capsa-runtime: own binary %s is not an absolute path\n", self);
		exit(1);
	}
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/" GO_RUNTIME, self);
	/* One P: a runtime command is sequential, and each extra P costs the
	 * Go runtime page faults and thread wake-ups at start. The Go runtime
	 * removes both variables again (cmd/capsa-runtime/main.go), so that
	 * hooks do not inherit them; a GOMAXPROCS the caller set is kept. */
	if (getenv("GOMAXPROCS") == NULL) {
		setenv("GOMAXPROCS", "1", 1);
		setenv("_CAPSA_GOMAXPROCS", "1", 1);
	}
	execve(path, g_argv, environ);
	fprintf(stderr, "capsa-runtime: run %s: %s\n", path, strerror(errno));
	exit(1);
}


/* read_regular reads the regular file name (relative to dirfd) of at most
 * max bytes into a NUL-terminated buffer; NULL on any error or for
 * anything else (a FIFO is never opened for long: flags may add
 * O_NONBLOCK). */
char *read_regular(int dirfd, const char *name, int flags, size_t max, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= max &&
	    (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		size_t got = 0;
		while (got < (size_t)st.st_size) {
			ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != (size_t)st.st_size) {
			free(buf);
			buf = NULL;
		} else {
			buf[got] = '\0';
			*len = got;
		}
	}
	close(fd);
	return buf;
}

/* read_small reads a file of the state dir (at most max bytes). */
char *read_small(int dirfd, const char *name, size_t max, size_t *len)
{
	return read_regular(dirfd, name, O_NOFOLLOW, max, len);
}

/* freezer_state reads the record's freezer file (v1 freezer.state or v2
 * cgroup.freeze): 0 thawed (or no freezer), 1 frozen, -1 anything else
 * (freezing, unreadable). */
int freezer_state(const struct record *r)
{
	if (r->freezer == NULL)
		return 0;
	char buf[32];
	if (read_short(r->freezer, buf, sizeof(buf)) < 0)
		return -1;
	int v1 = strstr(r->freezer, "freezer.state") != NULL;
	if (strcmp(buf, v1 ? "THAWED" : "0") == 0)
		return 0;
	if (strcmp(buf, v1 ? "FROZEN" : "1") == 0)
		return 1;
	return -1;
}

/* read_record parses dir/fastpath; 0 on success. Lines are "key value";
 * the record's strings point into a buffer that lives as long as the
 * process. */
int read_record(int dirfd, struct record *r)
{
	size_t len;
	char *buf = read_small(dirfd, RECORD, 16384, &len);
	if (buf == NULL)
		return -1;
	memset(r, 0, sizeof(*r));
	r->pid = -1;
	r->personality = -1;
	char *save = NULL;
	char *line = strtok_r(buf, "\n", &save);
	if (line == NULL || strcmp(line, RECORD_MAGIC) != 0)
		return -1;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *val = strchr(line, ' ');
		if (val == NULL)
			return -1;
		*val++ = '\0';
		if (strcmp(line, "pid") == 0)
			r->pid = strtol(val, NULL, 10);
		else if (strcmp(line, "start") == 0)
			r->start = strtoull(val, NULL, 10);
		else if (strcmp(line, "pidns") == 0)
			r->pidns = strcmp(val, "1") == 0;
		else if (strcmp(line, "start-ok") == 0)
			r->start_ok = strcmp(val, "1") == 0;
		else if (strcmp(line, "delete-ok") == 0)
			r->delete_ok = strcmp(val, "1") == 0;
		else if (strcmp(line, "freezer") == 0)
			r->freezer = val;
		else if (strcmp(line, "cgroup") == 0) {
			if (r->ncgroups == MAX_CGROUPS || val[0] != '/')
				return -1;
			r->cgroups[r->ncgroups++] = val;
		} else if (strcmp(line, "exec-ok") == 0)
			r->exec_ok = strcmp(val, "1") == 0;
		else if (strcmp(line, "seccomp") == 0)
			r->seccomp = strcmp(val, "1") == 0;
		else if (strcmp(line, "personality") == 0) {
			if (strcmp(val, "0") != 0 && strcmp(val, "8") != 0)
				return -1;
			r->personality = atoi(val);
		} else if (strcmp(line, "ns") == 0) {
			static const struct {
				const char *type;
				unsigned long flag;
			} types[] = {
				{"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
				{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"user", CLONE_NEWUSER},
				{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
			};
			size_t k = 0;
			while (k < sizeof(types) / sizeof(types[0]) && strcmp(val, types[k].type) != 0)
				k++;
			if (k == sizeof(types) / sizeof(types[0]))
				r->ns_unknown = 1;
			else
				r->ns |= types[k].flag;
		}
		/* Unknown keys are for newer fronts: ignored. */
	}
	return r->pid > 0 ? 0 : -1;
}

/* proc_stat reads the state (field 3) and start time (field 22) of
 * /proc/PID/stat; 0 on success. */
int proc_stat(long pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields count
	 * from the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -1;
	*state = p[2];
	/* p+2 is field 3 (state); starttime is field 22. */
	int field = 3;
	for (p += 2; *p != '\0' && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field != 22)
		return -1;
	*start = strtoull(p, NULL, 10);
	return 0;
}

/* init_alive reports whether the recorded init still runs: the same start
 * time (a recycled pid has another) and not a zombie. */
int init_alive(const struct record *r)
{
	char state;
	unsigned long long start;
	if (proc_stat(r->pid, &state, &start) != 0 || state == 'Z' || state == 'X')
		return 0;
	return start == r->start;
}

int pidfd_open(long pid)
{
	return (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
}

/* live_init_pidfd is a pidfd of the recorded init, checked after it was
 * opened, so that it names this very process (not a recycled pid) and
 * that the init still runs; -1 otherwise. */
int live_init_pidfd(const struct record *r)
{
	int pidfd = pidfd_open(r->pid);
	if (pidfd >= 0 && !init_alive(r)) {
		close(pidfd);
		return -1;
	}
	return pidfd;
}

/* cmd_start lets a created container's init go on: it opens the exec fifo
 * the init blocks on and reads its byte, as the Go runtime's Start does.
 * Returns only to hand off. */
static void cmd_start(int dirfd)
{
	struct record r;
	if (read_record(dirfd, &r) != 0 || !r.start_ok)
		return;
	int pidfd = live_init_pidfd(&r);
	if (pidfd < 0)
		return;
	int fifo = openat(dirfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fifo < 0)
		return; /* already started (or a race): the Go runtime says which */
	for (;;) {
		struct pollfd fds[2] = {{.fd = fifo, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (fds[0].revents & POLLIN) {
			char c;
			ssize_t n = read(fifo, &c, 1);
			if (n == 1)
				break;
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return;
		}
		/* The init died before it wrote its byte. */
		if (fds[1].revents & POLLIN)
			return;
		/* A writer that closed without a byte: wait for the init alone. */
		if (fds[0].revents & (POLLHUP | POLLERR) && !(fds[0].revents & POLLIN)) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};
			while (poll(&p, 1, -1) < 0 && errno == EINTR)
				;
			return;
		}
	}
	if (unlinkat(dirfd, "exec.fifo", 0) != 0)
		return;
	exit(0);
}

int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* write_file writes s to path; used to thaw a frozen cgroup. */
static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* kill_init SIGKILLs a running init that is the init of its own pid
 * namespace (so the kernel kills the rest of the container with it) and
 * waits until it has exited. 0 on success. */
static int kill_init(const struct record *r)
{
	if (!r->pidns)
		return -1;
	int pidfd = pidfd_open(r->pid);
	if (pidfd < 0)
		return -1;
	if (!init_alive(r)) {
		close(pidfd);
		return 0;
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) != 0) {
		close(pidfd);
		return -1;
	}
	/* A task frozen by the v1 freezer acts on SIGKILL only once thawed. */
	if (r->freezer != NULL) {
		const char *thawed = strstr(r->freezer, "freezer.state") ? "THAWED" : "0";
		if (write_file(r->freezer, thawed) != 0 && errno != ENOENT) {
			close(pidfd);
			return -1;
		}
	}
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int n;
	while ((n = poll(&p, 1, 10000)) < 0 && errno == EINTR)
		;
	close(pidfd);
	return n == 1 ? 0 : -1;
}

/* remove_state removes the files of a state dir, state.json last, and
 * then the dir. Until state.json goes the Go runtime can still finish the
 * job: anything unexpected (a subdirectory) makes the front hand off
 * before that. */
static int remove_state(int rootfd, int dirfd, const char *id)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	struct dirent *e;
	int ok = 1;
	while (ok && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, "state.json") == 0)
			continue;
		if (unlinkat(dirfd, e->d_name, 0) != 0 && errno != ENOENT)
			ok = 0;
	}
	closedir(d);
	if (!ok)
		return -1;
	if (unlinkat(dirfd, "state.json", 0) != 0 && errno != ENOENT)
		return -1;
	return unlinkat(rootfd, id, AT_REMOVEDIR);
}

/* cmd_delete removes a stopped container: its cgroups, then its state.
 * Returns only to hand off. */
static void cmd_delete(int rootfd, int dirfd, const char *id, int force)
{
	struct record r;
	if (read_record(dirfd, &r) != 0 || !r.delete_ok)
		return;
	if (init_alive(&r)) {
		if (!force || kill_init(&r) != 0)
			return;
	}
	/* rmdir succeeds only for an empty cgroup without children; anything
	 * left (processes still exiting, nested cgroups) is the Go runtime's
	 * job, which kills, waits and retries. */
	for (int i = 0; i < r.ncgroups; i++)
		if (rmdir(r.cgroups[i]) != 0 && errno != ENOENT)
			return;
	if (remove_state(rootfd, dirfd, id) != 0)
		return;
	exit(0);
}

/* parse_signal is runtime.ParseSignal for numbers and the usual names
 * (with or without SIG, any case); 0 for anything else, such as RTMIN+n,
 * which the Go runtime parses. */
static int parse_signal(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {
		{"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},     {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},
		{"CONT", SIGCONT}, {"FPE", SIGFPE},   {"HUP", SIGHUP},     {"ILL", SIGILL},     {"INT", SIGINT},
		{"IO", SIGIO},     {"IOT", SIGIOT},   {"KILL", SIGKILL},   {"PIPE", SIGPIPE},   {"POLL", SIGPOLL},
		{"PROF", SIGPROF}, {"PWR", SIGPWR},   {"QUIT", SIGQUIT},   {"SEGV", SIGSEGV},   {"STKFLT", SIGSTKFLT},
		{"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},   {"TRAP", SIGTRAP},   {"TSTP", SIGTSTP},
		{"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"USR1", SIGUSR1},   {"USR2", SIGUSR2},
		{"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
	};
	if (s[0] >= '0' && s[0] <= '9') {
		char *end;
		long n = strtol(s, &end, 10);
		return *end == '\0' && n > 0 && n <= 64 ? (int)n : 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].sig;
	return 0;
}

/* cmd_kill signals a running container's init (not --all, which the Go
 * runtime does through the cgroup). Returns only to hand off. */
static void cmd_kill(int dirfd, int sig)
{
	struct record r;
	if (read_record(dirfd, &r) != 0)
		return;
	/* The signal cannot reach a recycled pid. */
	int pidfd = live_init_pidfd(&r);
	if (pidfd < 0)
		return;
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) != 0)
		return;
	exit(0);
}

/* cmd_state prints what `state` prints (runtime.StateDoc), from the
 * state.fmt the Go runtime wrote, with the pid and status derived as
 * runtime.Container.Status does: stopped when the init is gone, created
 * while the exec fifo exists, paused when the freezer says so. Returns
 * only to hand off. */
static void cmd_state(int dirfd)
{
	struct record r;
	size_t len;
	if (read_record(dirfd, &r) != 0)
		return;
	char *fmt = read_small(dirfd, "state.fmt", 1 << 20, &len);
	if (fmt == NULL)
		return;
	const char *status = "running";
	long pid = r.pid;
	struct stat st;
	if (!init_alive(&r)) {
		status = "stopped";
		pid = 0;
	} else if (fstatat(dirfd, "exec.fifo", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		status = "created";
	} else if (freezer_state(&r) == 1) {
		status = "paused";
	}
	/* Exactly one pid and one status marker, or the file is not ours. */
	char *p = memchr(fmt, 1, len), *q = p ? memchr(p + 1, 1, len - (size_t)(p + 1 - fmt)) : NULL;
	if (p == NULL || q == NULL || p[1] != 'P' || q[1] != 'S' || memchr(q + 1, 1, len - (size_t)(q + 1 - fmt)) != NULL)
		return;
	char out[64];
	int n = snprintf(out, sizeof(out), "%ld", pid);
	FILE *o = stdout;
	if (fwrite(fmt, 1, (size_t)(p - fmt), o) != (size_t)(p - fmt) || fwrite(out, 1, (size_t)n, o) != (size_t)n ||
	    fwrite(p + 2, 1, (size_t)(q - p - 2), o) != (size_t)(q - p - 2) ||
	    fputs(status, o) == EOF || fwrite(q + 2, 1, len - (size_t)(q + 2 - fmt), o) != len - (size_t)(q + 2 - fmt) ||
	    fflush(o) != 0)
		exit(1); /* stdout is gone: nothing else to tell */
	exit(0);
}

/* valid_id is runtime.ValidateID: letters, digits and _+-., not . or .. */
int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	for (const char *p = id; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* flag_value matches "-name", "--name" with "=value" or a value in the next
 * argument; returns the value or NULL, advancing *i past what it used. */
const char *flag_value(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	if (a[0] != '-')
		return NULL;
	a += a[1] == '-' ? 2 : 1;
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0' || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

int is_flag(const char *a, const char *name)
{
	if (a[0] != '-')
		return 0;
	a += a[1] == '-' ? 2 : 1;
	return strcmp(a, name) == 0;
}

int main(int argc, char **argv)
{
	g_argv = argv;
	/* The container's init, started by capsa-runtime-go's create with a
	 * plan (init.c). */
	if (argc == 2 && strcmp(argv[1], "init") == 0 && getenv("_CAPSA_INITPIPE") != NULL)
		return run_init();
	const char *root = NULL, *log = NULL;
	int i = 1, systemd = 0;
	/* Global flags as the Go runtime parses them (Go's flag package);
	 * anything else goes to it. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *v;
		if ((v = flag_value(argc, argv, &i, "root")) != NULL)
			root = v;
		else if ((v = flag_value(argc, argv, &i, "log")) != NULL)
			log = v;
		else if ((v = flag_value(argc, argv, &i, "log-format")) != NULL) {
			if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
				handoff();
			front_log_json = strcmp(v, "json") == 0;
		} else if (is_flag(argv[i], "systemd-cgroup"))
			systemd = 1; /* state, start, kill and delete do not depend on the cgroup driver */
		else if (is_flag(argv[i], "debug"))
			front_debug = 1; /* only create and exec log (which init runs) */
		else
			handoff();
	}
	if (i >= argc)
		handoff();
	const char *cmd = argv[i++];
	char rootbuf[PATH_MAX];
	if (root == NULL) {
		const char *xdg = getenv("XDG_RUNTIME_DIR");
		if (geteuid() != 0 && xdg != NULL && xdg[0] != '\0') {
			snprintf(rootbuf, sizeof(rootbuf), "%s/capsa-runtime", xdg);
			root = rootbuf;
		} else
			root = "/run/capsa-runtime";
	}
	if (log != NULL) {
		/* The Go runtime opens (and so creates) the log on every run. */
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			handoff();
		close(fd);
		front_log = log;
	}
	if (strcmp(cmd, "create") == 0 && !systemd)
		cmd_create(argc, argv, i, root);
	else if (strcmp(cmd, "exec") == 0)
		cmd_exec(argc, argv, i, root);
	int is_start = strcmp(cmd, "start") == 0, is_delete = strcmp(cmd, "delete") == 0,
	    is_kill = strcmp(cmd, "kill") == 0, is_state = strcmp(cmd, "state") == 0;
	if (!is_start && !is_delete && !is_kill && !is_state)
		handoff();
	/* The command's flags may come before or after the id, as in runc. */
	const char *id = NULL, *signame = NULL;
	int force = 0;
	for (; i < argc; i++) {
		if (is_delete && (is_flag(argv[i], "force") || is_flag(argv[i], "f")))
			force = 1;
		else if (argv[i][0] == '-')
			handoff();
		else if (id == NULL)
			id = argv[i];
		else if (is_kill && signame == NULL)
			signame = argv[i];
		else
			handoff();
	}
	if (id == NULL || !valid_id(id))
		handoff();
	int sig = SIGTERM;
	if (signame != NULL && (sig = parse_signal(signame)) == 0)
		handoff();

	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		handoff();
	int dirfd = openat(rootfd, id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		handoff();
	if (is_start)
		cmd_start(dirfd);
	else if (is_state)
		cmd_state(dirfd);
	else if (is_kill)
		cmd_kill(dirfd, sig);
	else
		cmd_delete(rootfd, dirfd, id, force);
	handoff();
	return 1;
}
