/* capsa-runtime's front (front.c) and the C init (init.c). */
#ifndef CAPSA_FRONT_H
#define CAPSA_FRONT_H

/* run_init is a container's init: it reads the plan from the init pipe
 * named by _CAPSA_INITPIPE and ends in execve of the container process. */
int run_init(void);

#include <stddef.h>

#define MAX_CGROUPS 32

/* The record of one container (see runtime/fastpath.go). */
struct record {
	long pid;
	unsigned long long start; /* /proc/PID/stat field 22 of the init */
	int pidns;                /* the init is the init of its own pid namespace */
	int start_ok;             /* start needs nothing but the exec fifo */
	int delete_ok;            /* delete needs nothing but removing dirs */
	char *freezer;            /* file that thaws the cgroup, or NULL */
	char *cgroups[MAX_CGROUPS];
	int ncgroups;
	int exec_ok;              /* exec --process may be done by the front */
	unsigned long ns;         /* CLONE_NEW* of each "ns" line */
	int ns_unknown;           /* an "ns" line the front does not know */
	int personality;          /* linux.personality for the plan, or -1 */
	int seccomp;              /* the state dir holds seccomp.bpf */
};

/* handoff execs the Go runtime with the front's arguments; it returns
 * only to exit on failure. */
void handoff(void) __attribute__((noreturn));
char *read_regular(int dirfd, const char *name, int flags, size_t max, size_t *len);
char *read_small(int dirfd, const char *name, size_t max, size_t *len);
int read_record(int dirfd, struct record *r);
int init_alive(const struct record *r);
int proc_stat(long pid, char *state, unsigned long long *start);
int freezer_state(const struct record *r);
int valid_id(const char *id);
int pidfd_open(long pid);
int live_init_pidfd(const struct record *r);
/* flag_value matches "-name"/"--name" with "=value" or a value in the
 * next argument (advancing *i); is_flag a boolean flag. As Go's flag
 * package reads them. */
const char *flag_value(int argc, char **argv, int *i, const char *name);
int is_flag(const char *a, const char *name);
/* write_all writes all of p, retrying on EINTR; 0 or -1. */
int write_all(int fd, const void *p, size_t n);

/* create and exec (create.c, exec.c): argv[i] is the first argument after
 * the command; they return only to hand off, having undone whatever they
 * did. */
void cmd_create(int argc, char **argv, int i, const char *root);
void cmd_exec(int argc, char **argv, int i, const char *root);

#endif
