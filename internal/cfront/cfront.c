/* The C front's config reader and planner, compiled into a Go test
 * binary (cfront.go): create.c and config.c are included whole so that
 * their static functions are reachable. They, and the headers they
 * include, are symlinks in this directory: the go command rebuilds a
 * package when one of its own files changes, and knows nothing of
 * includes from elsewhere. */
#include "front_config.h"
#include "front_files.h"
#include "front_mountinfo.h"
#include "front_cgroups.h"
#include "front_create.h"
#include "front_blake2b.h"
#include "front_devices_bpf.h"

#include "cfront.h"

/* create.c's references into front.c, which has a main of its own: the
 * planner never reaches them. */
void handoff(void)
{
	abort();
}

int valid_id(const char *id)
{
	(void)id;
	abort();
}

const char *flag_value(int argc, char **argv, int *i, const char *name)
{
	(void)argc, (void)argv, (void)i, (void)name;
	abort();
}

int is_flag(const char *a, const char *name)
{
	(void)a, (void)name;
	abort();
}

int proc_stat(long pid, char *state, unsigned long long *start)
{
	(void)pid, (void)state, (void)start;
	abort();
}

int write_all(int fd, const void *p, size_t n)
{
	(void)fd, (void)p, (void)n;
	abort();
}

int cfront_plan(const char *config, size_t len, const char *bundle, int pid, char **out, size_t *outlen)
{
	static int mountinfo_read;
	if (!mountinfo_read) {
		if (read_mountinfo() != 0)
			return -1;
		mountinfo_read = 1;
	}
	size_t s0, s1;
	/* No seccomp cache here: a profile is the Go runtime's. */
	if (seccomp_section(config, len, &s0, &s1) == 0 && !(s1 - s0 == 4 && memcmp(config + s0, "null", 4) == 0))
		return -1;
	struct conf c;
	memset(&c, 0, sizeof(c));
	int r = -1;
	char rootfs[PATH_MAX];
	struct stat st;
	struct plan p = {0};
	if (read_conf(config, len, &c) != 0 || absent(c.linux_, "seccomp") != 0)
		goto out;
	if (c.root_path[0] == '/')
		snprintf(rootfs, sizeof(rootfs), "%s", c.root_path);
	else if (join_clean(rootfs, sizeof(rootfs), bundle, c.root_path) != 0)
		goto out;
	clean_path(rootfs);
	if (stat(rootfs, &st) != 0 || !S_ISDIR(st.st_mode))
		goto out;
	if (build_plan(&p, &c, (pid_t)pid, "fuzz", bundle, rootfs, 0, 0, 0, 4, NULL, 0) != 0) {
		plan_free(&p);
		goto out;
	}
	*out = p.b;
	*outlen = p.len;
	r = 0;
out:
	if (c.doc != NULL)
		json_decref(c.doc);
	return r;
}

int cfront_device_filter(const struct dev_rule *rules, size_t n, char **out, size_t *outlen)
{
	struct prog *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -1;
	build(p, rules, n);
	if (p->err || (*out = malloc(p->n * sizeof(p->insns[0]))) == NULL) {
		free(p);
		return -1;
	}
	memcpy(*out, p->insns, p->n * sizeof(p->insns[0]));
	*outlen = p->n * sizeof(p->insns[0]);
	free(p);
	return 0;
}
