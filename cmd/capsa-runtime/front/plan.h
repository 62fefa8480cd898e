/* The C init's plan: runtime/plan.go encodes it (and says the format),
 * create.c and exec.c encode it too, init.c executes it. */
#ifndef CAPSA_PLAN_H
#define CAPSA_PLAN_H

/* Operation codes: runtime/plan.go has the same numbers. */
enum {
	OP_LABEL = 1,
	OP_MOUNT = 2,
	OP_ROOT = 3,
	OP_MOUNT_IN = 4,
	OP_REMOUNT_IN = 5,
	OP_SYMLINK_IN = 6,
	OP_MKNOD_IN = 7,
	OP_REPLACE_SYMLINK_IN = 8,
	OP_UNSHARE = 9,
	OP_PIVOT = 10,
	OP_ROOT_PROPAGATION = 11,
	OP_SYSCTL = 12,
	OP_READONLY = 13,
	OP_MASK = 14,
	OP_HOSTNAME = 15,
	OP_DOMAINNAME = 16,
	OP_ROOT_READONLY = 17,
	OP_SETSID = 18,
	OP_KEYRING = 19,
	OP_RLIMIT = 20,
	OP_OOM_SCORE_ADJ = 21,
	OP_PERSONALITY = 22,
	OP_IO_PRIORITY = 23,
	OP_HOOKS = 24,
	OP_PROC_ARGS = 25,
	OP_PROC_ENV = 26,
	OP_PROC_GROUPS = 27,
	OP_PROC_CREDS = 28,
	OP_PROC_CAPS = 29,
	OP_SECCOMP = 30,
	OP_FINISH = 31,
	OP_ENTER = 32,
	OP_FINISH_EXEC = 33,
};

#define PLAN_MAGIC "CPLN1"

#endif
