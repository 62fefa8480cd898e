/* A container's cgroups for the front's create: runtime/cgroups' v1 and
 * v2 managers for the resources create.c accepts (New, Apply with the
 * device rules of runtime.withDeviceRules). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "cgroups.h"
#include "config.h"
#include "files.h"
#include "mountinfo.h"
#include "tables.h"

static const char *const v1_controllers[] = {"cpu",      "cpuacct",    "cpuset",  "memory", "devices",
					     "freezer",  "net_cls",    "net_prio", "perf_event", "hugetlb",
					     "pids",     "blkio",      "rdma",    "misc"};

struct cgroup cgs[MAX_CGROUPS];
int ncgs;
int cgroup_v2;

static int cg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cgroup *)a)->ctrl, ((const struct cgroup *)b)->ctrl);
}

/* own_cgroup finds this process's cgroup of a v1 controller. */
static const char *own_cgroup(char *procself, const char *ctrl)
{
	static char found[PATH_MAX];
	char *copy = strdup(procself), *save = NULL;
	const char *res = NULL;
	if (copy == NULL)
		return NULL;
	for (char *line = strtok_r(copy, "\n", &save); line && !res; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL || c2 == c1 + 1)
			continue;
		*c2 = '\0';
		char *s3 = NULL;
		for (char *c = strtok_r(c1 + 1, ",", &s3); c; c = strtok_r(NULL, ",", &s3))
			if (strcmp(c, ctrl) == 0) {
				snprintf(found, sizeof(found), "%s", c2 + 1);
				res = found;
				break;
			}
	}
	free(copy);
	return res;
}

/* cgroup_paths is cgroups.New + newV1: one directory per mounted
 * controller (and name=systemd). -1 hands off. */
int cgroup_paths(const char *cgroups_path, const char *id)
{
	struct statfs sfs;
	cgroup_v2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
	char inner[PATH_MAX];
	if (cgroups_path[0] != '\0') {
		/* cleanPath: never above "/" (or "." when relative). */
		if ((size_t)snprintf(inner, sizeof(inner), "/%s", cgroups_path) >= sizeof(inner))
			return -1;
		clean_path(inner);
		if (cgroups_path[0] != '/')
			memmove(inner, inner + 1, strlen(inner));
		if (strcmp(inner, "/") == 0 || strcmp(inner, "") == 0 || strcmp(inner, ".") == 0)
			return -1;
	} else {
		snprintf(inner, sizeof(inner), "%s", id);
	}
	int abs = inner[0] == '/';
	size_t len;
	char *procself = NULL;
	if (!abs && (procself = read_file("/proc/self/cgroup", 1 << 20, &len)) == NULL)
		return -1;
	if (cgroup_v2) {
		/* newV2: below the hierarchy, or below our own cgroup ("0::"). */
		char base[PATH_MAX] = "/sys/fs/cgroup";
		if (!abs) {
			char *own = procself ? strstr(procself, "0::") : NULL;
			if (own == NULL || (own != procself && own[-1] != '\n')) {
				free(procself);
				return -1;
			}
			char *nl = strchr(own, '\n');
			if (nl)
				*nl = '\0';
			if (join_clean(base, sizeof(base), "/sys/fs/cgroup", own + 3) != 0) {
				free(procself);
				return -1;
			}
		}
		free(procself);
		cgs[0].ctrl[0] = '\0';
		if (join_clean(cgs[0].path, sizeof(cgs[0].path), base, inner) != 0)
			return -1;
		ncgs = 1;
		return 0;
	}
	for (size_t i = 0; i < nmounts; i++) {
		if (strcmp(mounts[i].fstype, "cgroup") != 0)
			continue;
		char *opts = strdup(mounts[i].super), *save = NULL;
		if (opts == NULL)
			return -1;
		for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
			int known = strcmp(o, "name=systemd") == 0;
			for (size_t k = 0; k < NELEM(v1_controllers); k++)
				known |= strcmp(o, v1_controllers[k]) == 0;
			if (!known)
				continue; /* other named hierarchies track nothing we own */
			int dup = 0;
			for (int j = 0; j < ncgs; j++)
				dup |= strcmp(cgs[j].ctrl, o) == 0;
			if (dup)
				continue;
			if (ncgs == MAX_CGROUPS || strlen(o) >= sizeof(cgs[0].ctrl)) {
				free(opts);
				return -1;
			}
			struct cgroup *c = &cgs[ncgs];
			snprintf(c->ctrl, sizeof(c->ctrl), "%s", o);
			if (abs) {
				if (join_clean(c->path, sizeof(c->path), mounts[i].point, inner) != 0) {
					free(opts);
					return -1;
				}
			} else {
				const char *base = own_cgroup(procself, o);
				if (base == NULL)
					continue; /* mounted, but we are not in it */
				char rel[PATH_MAX];
				snprintf(rel, sizeof(rel), "%s", base);
				const char *mroot = mounts[i].root;
				if (strcmp(mroot, "/") != 0) {
					size_t n = strlen(mroot);
					if (!(strcmp(rel, mroot) == 0 || (strncmp(rel, mroot, n) == 0 && rel[n] == '/'))) {
						free(opts);
						return -1;
					}
					memmove(rel, rel + n, strlen(rel + n) + 1);
				}
				char tmp[PATH_MAX];
				if (join_clean(tmp, sizeof(tmp), mounts[i].point, rel) != 0 ||
				    join_clean(c->path, sizeof(c->path), tmp, inner) != 0) {
					free(opts);
					return -1;
				}
			}
			ncgs++;
		}
		free(opts);
	}
	free(procself);
	if (ncgs == 0)
		return -1;
	qsort(cgs, (size_t)ncgs, sizeof(cgs[0]), cg_cmp);
	return 0;
}

/* mkdir_cpuset is cgroups.mkdirCpuset: new cpuset cgroups start empty and
 * refuse tasks until cpus and mems are copied from the parent. */
static int mkdir_cpuset(const char *dir)
{
	char missing[16][PATH_MAX];
	int n = 0;
	char d[PATH_MAX];
	snprintf(d, sizeof(d), "%s", dir);
	for (;;) {
		struct stat st;
		if (stat(d, &st) == 0)
			break;
		if (n == 16 || strcmp(d, "/") == 0)
			return -1;
		snprintf(missing[n++], PATH_MAX, "%s", d);
		char *slash = strrchr(d, '/');
		if (slash == NULL)
			return -1;
		if (slash == d)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	for (int i = n - 1; i >= 0; i--) {
		if (mkdir(missing[i], 0755) != 0 && errno != EEXIST)
			return -1;
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", missing[i]);
		*strrchr(parent, '/') = '\0';
		for (int f = 0; f < 2; f++) {
			const char *file = f ? "cpuset.mems" : "cpuset.cpus";
			char path[PATH_MAX + 16], *cur, *par;
			size_t l;
			snprintf(path, sizeof(path), "%s/%s", missing[i], file);
			if ((cur = read_file(path, 1 << 16, &l)) == NULL)
				return -1;
			int empty = strspn(cur, " \n\t") == l;
			free(cur);
			if (!empty)
				continue;
			snprintf(path, sizeof(path), "%s/%s", parent, file);
			if ((par = read_file(path, 1 << 16, &l)) == NULL)
				return -1;
			while (l > 0 && (par[l - 1] == '\n' || par[l - 1] == ' '))
				par[--l] = '\0';
			int r = write_at(missing[i], file, par);
			free(par);
			if (r != 0)
				return -1;
		}
	}
	return 0;
}

/* device_rule reads a linux.resources.devices entry as
 * cgroups.parseDeviceRule; -1 for what the Go runtime refuses. */
int device_rule(json_t *d, struct dev_rule *r)
{
	static const char *const keys[] = {"allow", "type", "major", "minor", "access", NULL};
	const char *type, *access;
	int has_major, has_minor;
	memset(r, 0, sizeof(*r));
	if (check_keys(d, keys) != 0 || get_bool(d, "allow", &r->allow) != 0 || get_str(d, "type", &type) != 0 ||
	    get_str(d, "access", &access) != 0 || get_int(d, "major", -1, 0xfff, &r->major, &has_major) != 0 ||
	    get_int(d, "minor", -1, 0xfffff, &r->minor, &has_minor) != 0)
		return -1;
	if (!has_major)
		r->major = -1;
	if (!has_minor)
		r->minor = -1;
	r->typ = 'a';
	if (strcmp(type, "b") == 0 || strcmp(type, "c") == 0)
		r->typ = type[0];
	else if (type[0] != '\0' && strcmp(type, "a") != 0)
		return -1;
	if (access[0] == '\0')
		access = "rwm";
	if (strlen(access) > 3 || strspn(access, "rwm") != strlen(access))
		return -1;
	for (const char *a = access; *a; a++)
		if (strchr(a + 1, *a) != NULL)
			return -1;
	snprintf(r->access, sizeof(r->access), "%s", access);
	return 0;
}

/* rule_v1 is deviceRule.v1String. */
static void rule_v1(const struct dev_rule *r, char *out, size_t n)
{
	char mj[24] = "*", mn[24] = "*";
	if (r->major >= 0)
		snprintf(mj, sizeof(mj), "%lld", r->major);
	if (r->minor >= 0)
		snprintf(mn, sizeof(mn), "%lld", r->minor);
	snprintf(out, n, "%c %s:%s %s", r->typ, mj, mn, r->access);
}

/* device_rules is runtime.withDeviceRules: the spec's rules (deny-all
 * without any), the default devices, and the spec's device nodes. */
static int device_rules(json_t *linux_, struct dev_rule **out, size_t *n)
{
	json_t *res = NULL, *rules = NULL, *devs = NULL;
	get_obj(linux_, "resources", &res);
	if (res != NULL)
		get_arr(res, "devices", &rules);
	get_arr(linux_, "devices", &devs);
	size_t nr = rules ? json_array_size(rules) : 0, nd = devs ? json_array_size(devs) : 0;
	struct dev_rule *l = calloc(nr + nd + NELEM(default_allowed_devices_v1) + 1, sizeof(*l));
	if (l == NULL)
		return -1;
	size_t k = 0;
	if (nr == 0)
		l[k++] = (struct dev_rule){.allow = 0, .typ = 'a', .major = -1, .minor = -1, .access = "rwm"};
	for (size_t i = 0; i < nr; i++)
		if (device_rule(json_array_get(rules, i), &l[k++]) != 0)
			goto fail;
	for (size_t i = 0; i < NELEM(default_allowed_devices_v1); i++) {
		struct dev_rule *r = &l[k++];
		char mn[16];
		r->allow = 1;
		if (sscanf(default_allowed_devices_v1[i], "%c %lld:%15s %3s", &r->typ, &r->major, mn, r->access) != 4)
			goto fail;
		char *colon_end = strchr(mn, ' ');
		if (colon_end)
			*colon_end = '\0';
		r->minor = strcmp(mn, "*") == 0 ? -1 : atoll(mn);
	}
	for (size_t i = 0; i < nd; i++) {
		json_t *d = json_array_get(devs, i);
		const char *type;
		struct dev_rule *r = &l[k];
		get_str(d, "type", &type);
		if (strcmp(type, "p") == 0)
			continue;
		r->allow = 1;
		r->typ = strcmp(type, "u") == 0 ? 'c' : type[0];
		snprintf(r->access, sizeof(r->access), "rwm");
		/* parseDeviceRule's ranges: the Go runtime refuses others. */
		if (get_int(d, "major", -1, 0xfff, &r->major, NULL) != 0 ||
		    get_int(d, "minor", -1, 0xfffff, &r->minor, NULL) != 0)
			goto fail;
		k++;
	}
	*out = l;
	*n = k;
	return 0;
fail:
	free(l);
	return -1;
}

/* The resources the front applies besides devices: a pids limit, a
 * memory limit without swap, CPU shares, quota, period and cpuset — what
 * engines set most. Anything else is the Go runtime's. */
static const char *const pids_keys[] = {"limit", NULL};
static const char *const memory_keys[] = {"limit",      "reservation",      "swap",         "kernel",
					  "kernelTCP",  "swappiness",       "disableOOMKiller", "useHierarchy",
					  "checkBeforeUpdate", NULL};
static const char *const cpu_keys[] = {"shares",          "quota", "burst", "period", "realtimeRuntime",
				       "realtimePeriod", "cpus",  "mems",  "idle",   NULL};

int check_resources(json_t *res)
{
	static const char *const others[] = {"blockIO", "hugepageLimits", "network", "rdma", "unified"};
	for (size_t i = 0; i < NELEM(others); i++)
		if (absent(res, others[i]) != 0)
			return -1;
	json_t *o;
	long long v;
	const char *str;
	if (get_obj(res, "pids", &o) != 0 ||
	    (o != NULL && (check_keys(o, pids_keys) != 0 || get_int(o, "limit", INT64_MIN, INT64_MAX, &v, NULL) != 0)))
		return -1;
	if (get_obj(res, "memory", &o) != 0)
		return -1;
	if (o != NULL) {
		if (check_keys(o, memory_keys) != 0 || get_int(o, "limit", 1, INT64_MAX, &v, NULL) != 0)
			return -1;
		for (const char *const *k = memory_keys + 1; *k; k++)
			if (absent(o, *k) != 0)
				return -1;
	}
	if (get_obj(res, "cpu", &o) != 0)
		return -1;
	if (o != NULL) {
		static const char *const unsupported[] = {"burst", "realtimeRuntime", "realtimePeriod", "idle"};
		if (check_keys(o, cpu_keys) != 0 || get_int(o, "shares", 0, INT64_MAX, &v, NULL) != 0 ||
		    get_int(o, "quota", INT64_MIN, INT64_MAX, &v, NULL) != 0 ||
		    get_int(o, "period", 0, INT64_MAX, &v, NULL) != 0 || get_str(o, "cpus", &str) != 0 ||
		    get_str(o, "mems", &str) != 0)
			return -1;
		for (size_t i = 0; i < NELEM(unsupported); i++)
			if (absent(o, unsupported[i]) != 0)
				return -1;
	}
	return 0;
}

/* One cgroup file write of cgroups.planV1 (retry: tried again at the end
 * when it fails, as runPlan does). */
struct cg_write {
	const char *ctrl, *file;
	char value[128];
	int retry;
};

/* resource_writes is cgroups.planV1 (or planV2 on a v2 host) for the
 * resources check_resources accepts, in its order: memory, cpu, cpuset,
 * pids. -1 for what only the Go runtime converts (CPU shares to v2's
 * weight, a floating-point formula). */
static int resource_writes(json_t *res, struct cg_write *w, size_t max, size_t *n)
{
	json_t *o;
	long long v, quota = 0, period = 0;
	int has;
	const char *str;
	*n = 0;
#define ADD(c, f, r, ...)                                                                                           \
	do {                                                                                                         \
		if (*n == max)                                                                                       \
			return -1;                                                                                   \
		w[*n].ctrl = (c);                                                                                    \
		w[*n].file = (f);                                                                                    \
		w[*n].retry = (r);                                                                                   \
		snprintf(w[*n].value, sizeof(w[*n].value), __VA_ARGS__);                                             \
		(*n)++;                                                                                              \
	} while (0)
	if (res == NULL)
		return 0;
	if (get_obj(res, "memory", &o) == 0 && o != NULL && get_int(o, "limit", 1, INT64_MAX, &v, &has) == 0 && has)
		ADD("memory", cgroup_v2 ? "memory.max" : "memory.limit_in_bytes", 0, "%lld", v);
	if (get_obj(res, "cpu", &o) == 0 && o != NULL) {
		if (get_int(o, "shares", 0, INT64_MAX, &v, &has) == 0 && has && v != 0) {
			if (cgroup_v2)
				return -1;
			ADD("cpu", "cpu.shares", 0, "%lld", v);
		}
		if (get_int(o, "period", 0, INT64_MAX, &period, &has) != 0)
			return -1;
		if (get_int(o, "quota", INT64_MIN, INT64_MAX, &quota, &has) != 0)
			return -1;
		if (cgroup_v2) {
			/* cgroups.CPUMax */
			if (quota != 0 || period != 0) {
				long long pd = period ? period : 100000;
				if (quota <= 0)
					ADD("cpu", "cpu.max", 0, "max %lld", pd);
				else
					ADD("cpu", "cpu.max", 0, "%lld %lld", quota, pd);
			}
		} else {
			if (period != 0)
				ADD("cpu", "cpu.cfs_period_us", 1, "%lld", period);
			if (quota != 0)
				ADD("cpu", "cpu.cfs_quota_us", 0, "%lld", quota < 0 ? -1 : quota);
		}
		if (get_str(o, "cpus", &str) == 0 && str[0] != '\0')
			ADD("cpuset", "cpuset.cpus", 0, "%s", str);
		if (get_str(o, "mems", &str) == 0 && str[0] != '\0')
			ADD("cpuset", "cpuset.mems", 0, "%s", str);
	}
	if (get_obj(res, "pids", &o) == 0 && o != NULL && get_int(o, "limit", INT64_MIN, INT64_MAX, &v, &has) == 0 &&
	    has) {
		if (v <= 0)
			ADD("pids", "pids.max", 0, "max");
		else
			ADD("pids", "pids.max", 0, "%lld", v);
	}
#undef ADD
	return 0;
}

static const char *cgroup_dir(const char *ctrl)
{
	if (cgroup_v2)
		return cgs[0].path;
	for (int i = 0; i < ncgs; i++)
		if (strcmp(cgs[i].ctrl, ctrl) == 0)
			return cgs[i].path;
	return NULL;
}

/* apply_cgroups is v1Manager.Apply with the device rules of
 * runtime.withDeviceRules: create, write the rules, move pid in. */
/* enable_controllers is cgroups.enableControllers: delegate to dir's
 * children every controller dir has (one by one when all at once fails;
 * a limit that needs a missing one then fails on its file). */
static int enable_controllers(const char *dir)
{
	char path[PATH_MAX + 32], want[1024] = "";
	size_t l1, l2;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	char *avail = read_file(path, 1 << 16, &l1);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	char *on = read_file(path, 1 << 16, &l2);
	if (avail == NULL || on == NULL) {
		free(avail);
		free(on);
		return -1;
	}
	char *save = NULL;
	for (char *c = strtok_r(avail, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
		int enabled = 0;
		char *copy = strdup(on), *s2 = NULL;
		for (char *e = copy ? strtok_r(copy, " \n", &s2) : NULL; e; e = strtok_r(NULL, " \n", &s2))
			enabled |= strcmp(e, c) == 0;
		free(copy);
		size_t l = strlen(want);
		if (!enabled && l + strlen(c) + 3 < sizeof(want))
			snprintf(want + l, sizeof(want) - l, "%s+%s", l ? " " : "", c);
	}
	free(avail);
	free(on);
	if (want[0] == '\0' || write_at(dir, "cgroup.subtree_control", want) == 0)
		return 0;
	save = NULL;
	for (char *c = strtok_r(want, " ", &save); c; c = strtok_r(NULL, " ", &save))
		write_at(dir, "cgroup.subtree_control", c); /* a failure shows at the limit's write */
	return 0;
}

/* mkdir_v2 is v2Manager.create: each missing level, its parent's
 * controllers delegated first. */
static int mkdir_v2(const char *path)
{
	const char *top = "/sys/fs/cgroup";
	size_t tl = strlen(top);
	if (strncmp(path, top, tl) != 0 || path[tl] != '/' || path[tl + 1] == '\0')
		return -1;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", top);
	const char *rest = path + tl + 1;
	while (*rest) {
		const char *slash = strchr(rest, '/');
		size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
		if (enable_controllers(dir) != 0)
			return -1;
		size_t dl = strlen(dir);
		if (dl + 1 + n >= sizeof(dir))
			return -1;
		snprintf(dir + dl, sizeof(dir) - dl, "/%.*s", (int)n, rest);
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -1;
		rest += n;
		while (*rest == '/')
			rest++;
	}
	return 0;
}

int apply_cgroups(json_t *linux_, pid_t pid)
{
	if (cgroup_v2 && mkdir_v2(cgs[0].path) != 0)
		return -1;
	for (int i = 0; !cgroup_v2 && i < ncgs; i++) {
		int r = strcmp(cgs[i].ctrl, "cpuset") == 0 ? mkdir_cpuset(cgs[i].path) : mkdir_all(cgs[i].path, 0755);
		if (r != 0)
			return -1;
	}
	json_t *res = NULL;
	get_obj(linux_, "resources", &res);
	struct dev_rule *rules;
	size_t nrules;
	if (device_rules(linux_, &rules, &nrules) != 0)
		return -1;
	int r = 0;
	if (cgroup_v2) {
		r = attach_device_filter(cgs[0].path, rules, nrules);
	} else {
		const char *devdir = cgroup_dir("devices");
		char line[96];
		if (devdir == NULL)
			r = -1; /* the Go runtime says the controller is missing */
		for (size_t i = 0; r == 0 && i < nrules; i++) {
			rule_v1(&rules[i], line, sizeof(line));
			r = write_at(devdir, rules[i].allow ? "devices.allow" : "devices.deny", line);
		}
	}
	free(rules);
	if (r != 0)
		return -1;
	struct cg_write w[16];
	size_t nw;
	if (resource_writes(res, w, NELEM(w), &nw) != 0)
		return -1;
	for (size_t i = 0; i < nw; i++)
		if (cgroup_dir(w[i].ctrl) == NULL)
			return -1; /* the Go runtime names the missing controller */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < nw; i++) {
			if (pass == 1 && !w[i].retry)
				continue;
			if (write_at(cgroup_dir(w[i].ctrl), w[i].file, w[i].value) == 0) {
				w[i].retry = 0;
				continue;
			}
			if (pass == 1 || !w[i].retry)
				return -1;
		}
	char pidstr[24];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	for (int i = 0; i < ncgs; i++) {
		int dup = 0;
		for (int j = 0; j < i; j++)
			dup |= strcmp(cgs[j].path, cgs[i].path) == 0;
		if (!dup && write_at(cgs[i].path, "cgroup.procs", pidstr) != 0)
			return -1;
	}
	return 0;
}
