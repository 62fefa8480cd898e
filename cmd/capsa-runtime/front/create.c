/*
 * `create` in the front, for the configs it fully understands.
 *
 * A create run by the Go runtime pays for being a Go process (exec of a
 * 5 MB binary, the runtime's start, page faults: ~2 ms and 5 MiB), which
 * was most of a container start once the init itself was C. This file does
 * what runtime.Create does — read and check config.json, make the state
 * dir and exec fifo, place the init in its cgroups with the device rules,
 * clone it into its namespaces from a read-only copy of this binary, send
 * it its plan (runtime/plan.go's buildPlan, the same operations) and save
 * the records every other command reads — for configs within what it
 * knows, and hands everything else to the Go runtime, as the rest of the
 * front does:
 *
 *   - anything the config holds that this file does not interpret (hooks
 *     that run at create, user or time namespaces, joined namespaces, a
 *     terminal, tmpcopyup, resources beyond devices, pids, a memory limit
 *     and CPU shares/quota/period/cpuset (shares on cgroup v1 only: v2's
 *     weight is a floating-point conversion), LSM labels, a scheduler, …),
 *     or any value it would read differently from encoding/json (config.c);
 *   - a seccomp profile the Go runtime has not compiled yet (its cache
 *     entry, cached_seccomp);
 *   - any failure, after undoing what it did (init killed, cgroups and
 *     state dir removed): the Go runtime then does the create again and
 *     words the error, so an error is always the Go runtime's.
 *
 * The records it writes (state.json, fastpath, state.fmt) are those of
 * runtime.Container.save; TestFrontCreateAgrees (test/integration)
 * compares them and the containers' behaviour with the Go runtime's.
 * CAPSA_RUNTIME_GO_CREATE=1 makes the front hand every create off.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/seccomp.h>

#include "blake2b.h"
#include "cgroups.h"
#include "config.h"
#include "devices_bpf.h"
#include "files.h"
#include "front.h"
#include "mountinfo.h"
#include "tables.h"

#define MAX_CONFIG (16 << 20)
#define MAX_MOUNTS 4096
#define SPEC_VERSION "1.3.0" /* specs.Version, in state.fmt */

/* ---------- small helpers ---------- */

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}


/* A growable byte buffer. */
struct buf {
	char *b;
	size_t len, cap;
	int err;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 1024;
		while (b->len + n + 1 > c)
			c *= 2;
		char *nb = realloc(b->b, c);
		if (nb == NULL) {
			b->err = 1;
			return;
		}
		b->b = nb;
		b->cap = c;
	}
	memcpy(b->b + b->len, s, n);
	b->len += n;
	b->b[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[PATH_MAX + 128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->err = 1;
		return;
	}
	buf_put(b, tmp, (size_t)n);
}

/* valid_utf8 checks s as Go's utf8.ValidString does. */
static int valid_utf8(const unsigned char *s)
{
	while (*s) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		int n;
		unsigned cp;
		if ((*s & 0xe0) == 0xc0) {
			n = 1;
			cp = *s & 0x1f;
		} else if ((*s & 0xf0) == 0xe0) {
			n = 2;
			cp = *s & 0x0f;
		} else if ((*s & 0xf8) == 0xf0) {
			n = 3;
			cp = *s & 0x07;
		} else
			return 0;
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* json_quote appends s as encoding/json writes a string: HTML characters
 * and U+2028/2029 escaped, control characters as \n, \r, \t, \b, \f or
 * \u00XX. s must be valid UTF-8 (else the caller hands off). */
static void json_quote(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	buf_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		switch (*p) {
		case '"':
			buf_put(b, "\\\"", 2);
			continue;
		case '\\':
			buf_put(b, "\\\\", 2);
			continue;
		case '\n':
			buf_put(b, "\\n", 2);
			continue;
		case '\r':
			buf_put(b, "\\r", 2);
			continue;
		case '\t':
			buf_put(b, "\\t", 2);
			continue;
		case '\b':
			buf_put(b, "\\b", 2);
			continue;
		case '\f':
			buf_put(b, "\\f", 2);
			continue;
		}
		if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
			snprintf(esc, sizeof(esc), "\\u00%c%c", hex[*p >> 4], hex[*p & 15]);
			buf_put(b, esc, 6);
			continue;
		}
		if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
			buf_put(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
			p += 2;
			continue;
		}
		buf_put(b, (const char *)p, 1);
	}
	buf_put(b, "\"", 1);
}

/* ---------- reading the config ---------- */

static const char *const spec_keys[] = {"ociVersion", "process", "root",    "hostname", "domainname",
					"mounts",     "hooks",   "annotations", "linux", "solaris",
					"windows",    "vm",      "zos",     "freebsd",  NULL};
static const char *const root_keys[] = {"path", "readonly", NULL};
static const char *const mount_keys[] = {"destination", "type", "source", "options", "uidMappings", "gidMappings", NULL};
static const char *const hooks_keys[] = {"prestart",       "createRuntime", "createContainer",
					 "startContainer", "poststart",     "poststop", NULL};
static const char *const hook_keys[] = {"path", "args", "env", "timeout", NULL};
static const char *const linux_keys[] = {"uidMappings",  "gidMappings",       "sysctl",      "resources",
					 "cgroupsPath",  "namespaces",        "devices",     "netDevices",
					 "seccomp",      "rootfsPropagation", "maskedPaths", "readonlyPaths",
					 "mountLabel",   "intelRdt",          "memoryPolicy", "personality",
					 "timeOffsets",  NULL};
static const char *const ns_keys[] = {"type", "path", NULL};
static const char *const device_keys[] = {"path", "type", "major", "minor", "fileMode", "uid", "gid", NULL};
static const char *const resources_keys[] = {"devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits",
					     "network", "rdma",    "unified", NULL};
static const char *const personality_keys[] = {"domain", "flags", NULL};

/* The parts of a config the create needs, pointing into the document. */
struct conf {
	json_t *doc, *process, *linux_, *mounts;
	const char *root_path, *hostname, *domainname, *cgroups_path, *rootfs_propagation;
	int root_readonly, start_ok, delete_ok, pidns, cgroupns;
	int cloneflags;
	json_t *annotations;
};

/* check_strs: a member that is a list of strings (or absent). */
static int check_strs(json_t *obj, const char *key)
{
	const char **l;
	size_t n;
	if (get_strs(obj, key, &l, &n) != 0)
		return -1;
	free(l);
	return 0;
}

/* check_hooks accepts hooks that run only after create (poststart,
 * poststop), checked as ValidateSpec does. */
static int check_hooks(json_t *hooks, struct conf *c)
{
	if (check_keys(hooks, hooks_keys) != 0)
		return -1;
	for (const char *const *k = hooks_keys; *k; k++) {
		json_t *list;
		if (get_arr(hooks, *k, &list) != 0)
			return -1;
		if (list == NULL || json_array_size(list) == 0)
			continue;
		if (strcmp(*k, "poststart") != 0 && strcmp(*k, "poststop") != 0)
			return -1; /* runs during create: the Go runtime's */
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *h = json_array_get(list, i);
			const char *path;
			long long timeout;
			int has_timeout;
			if (!json_is_object(h) || check_keys(h, hook_keys) != 0 || get_str(h, "path", &path) != 0 ||
			    path[0] != '/' || check_strs(h, "args") != 0 || check_strs(h, "env") != 0 ||
			    get_int(h, "timeout", INT64_MIN, INT64_MAX, &timeout, &has_timeout) != 0 ||
			    (has_timeout && timeout <= 0))
				return -1;
		}
		if (strcmp(*k, "poststart") == 0)
			c->start_ok = 0;
		else
			c->delete_ok = 0;
	}
	return 0;
}

static const struct {
	const char *type;
	int flag;
} ns_types[] = {{"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
		{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},     {"cgroup", CLONE_NEWCGROUP}};

/* sysctl_namespace is runtime.sysctlNamespace as a clone flag (0: the
 * host's). */
static int sysctl_namespace(const char *name)
{
	/* "net/ipv4/ip_forward" names the same sysctl as "net.ipv4.ip_forward". */
	char k[256];
	if (strlen(name) >= sizeof(k))
		return 0;
	snprintf(k, sizeof(k), "%s", name);
	for (char *c = k; *c; c++)
		if (*c == '/')
			*c = '.';
	static const char *const ipc[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
					  "kernel.sem",    "kernel.shmall", "kernel.shmmax",
					  "kernel.shmmni", "kernel.shm_rmid_forced"};
	for (size_t i = 0; i < NELEM(ipc); i++)
		if (strcmp(k, ipc[i]) == 0)
			return CLONE_NEWIPC;
	if (strncmp(k, "fs.mqueue.", 10) == 0)
		return CLONE_NEWIPC;
	if (strncmp(k, "net.", 4) == 0)
		return CLONE_NEWNET;
	if (strcmp(k, "kernel.hostname") == 0 || strcmp(k, "kernel.domainname") == 0)
		return CLONE_NEWUTS;
	return 0;
}

static int check_linux(json_t *l, struct conf *c)
{
	if (check_keys(l, linux_keys) != 0)
		return -1;
	static const char *const unsupported[] = {"uidMappings", "gidMappings", "netDevices", "intelRdt",
						  "memoryPolicy", "timeOffsets"};
	for (size_t i = 0; i < NELEM(unsupported); i++)
		if (absent(l, unsupported[i]) != 0)
			return -1;
	const char *s;
	if (get_str(l, "mountLabel", &s) != 0 || s[0] != '\0')
		return -1;
	json_t *sc;
	if (get_obj(l, "seccomp", &sc) != 0)
		return -1;
	if (get_str(l, "cgroupsPath", &c->cgroups_path) != 0 ||
	    get_str(l, "rootfsPropagation", &c->rootfs_propagation) != 0)
		return -1;
	if (c->rootfs_propagation[0] != '\0') {
		int ok = 0;
		for (size_t i = 0; i < NELEM(propagation_options); i++)
			ok |= strcmp(c->rootfs_propagation, propagation_options[i].name) == 0;
		if (!ok)
			return -1;
	}
	if (check_strs(l, "maskedPaths") != 0 || check_strs(l, "readonlyPaths") != 0)
		return -1;
	json_t *per;
	if (get_obj(l, "personality", &per) != 0)
		return -1;
	if (per != NULL) {
		const char *domain;
		if (check_keys(per, personality_keys) != 0 || get_str(per, "domain", &domain) != 0 ||
		    (strcmp(domain, "LINUX") != 0 && strcmp(domain, "LINUX32") != 0) || check_strs(per, "flags") != 0)
			return -1;
	}
	json_t *res;
	if (get_obj(l, "resources", &res) != 0)
		return -1;
	if (res != NULL) {
		if (check_keys(res, resources_keys) != 0 || check_resources(res) != 0)
			return -1;
		json_t *rules;
		if (get_arr(res, "devices", &rules) != 0)
			return -1;
		struct dev_rule r;
		for (size_t i = 0; rules != NULL && i < json_array_size(rules); i++)
			if (device_rule(json_array_get(rules, i), &r) != 0)
				return -1;
	}
	json_t *nss;
	if (get_arr(l, "namespaces", &nss) != 0)
		return -1;
	int seen = 0, has_mount = 0;
	for (size_t i = 0; nss != NULL && i < json_array_size(nss); i++) {
		json_t *ns = json_array_get(nss, i);
		const char *type, *path;
		if (!json_is_object(ns) || check_keys(ns, ns_keys) != 0 || get_str(ns, "type", &type) != 0 ||
		    get_str(ns, "path", &path) != 0 || path[0] != '\0')
			return -1; /* joining a namespace by path: the Go runtime's */
		size_t t = 0;
		while (t < NELEM(ns_types) && strcmp(type, ns_types[t].type) != 0)
			t++;
		if (t == NELEM(ns_types) || seen & (1 << t))
			return -1; /* user, time, unknown or twice */
		seen |= 1 << t;
		if (ns_types[t].flag == CLONE_NEWCGROUP)
			c->cgroupns = 1;
		else
			c->cloneflags |= ns_types[t].flag;
		if (ns_types[t].flag == CLONE_NEWPID)
			c->pidns = 1;
		if (ns_types[t].flag == CLONE_NEWNS)
			has_mount = 1;
	}
	if (!has_mount)
		return -1;
	/* runtime.ValidateSpec: names and sysctls only in namespaces of the
	 * container's own (else they would change the host's). */
	if ((c->hostname[0] != '\0' || c->domainname[0] != '\0') && !(c->cloneflags & CLONE_NEWUTS))
		return -1;
	json_t *sysctl;
	if (get_obj(l, "sysctl", &sysctl) != 0)
		return -1;
	if (sysctl != NULL) {
		const char *k;
		json_t *v;
		json_object_foreach(sysctl, k, v) {
			if (!json_is_string(v) || strstr(k, "..") != NULL || !(c->cloneflags & sysctl_namespace(k)))
				return -1;
		}
	}
	json_t *devs;
	if (get_arr(l, "devices", &devs) != 0)
		return -1;
	for (size_t i = 0; devs != NULL && i < json_array_size(devs); i++) {
		json_t *d = json_array_get(devs, i);
		const char *path, *type;
		long long v;
		if (!json_is_object(d) || check_keys(d, device_keys) != 0 || get_str(d, "path", &path) != 0 ||
		    path[0] != '/' || get_str(d, "type", &type) != 0 ||
		    (strcmp(type, "c") != 0 && strcmp(type, "u") != 0 && strcmp(type, "b") != 0 &&
		     strcmp(type, "p") != 0) ||
		    get_int(d, "major", INT64_MIN, INT64_MAX, &v, NULL) != 0 ||
		    get_int(d, "minor", INT64_MIN, INT64_MAX, &v, NULL) != 0 ||
		    get_int(d, "fileMode", 0, UINT32_MAX, &v, NULL) != 0 ||
		    get_int(d, "uid", 0, UINT32_MAX, &v, NULL) != 0 || get_int(d, "gid", 0, UINT32_MAX, &v, NULL) != 0)
			return -1;
	}
	return 0;
}

/* check_mounts: destinations absolute, options strings, no tmpcopyup. */
static int check_mounts(json_t *mounts)
{
	for (size_t i = 0; mounts != NULL && i < json_array_size(mounts); i++) {
		json_t *m = json_array_get(mounts, i);
		const char *dest, *type, *src;
		const char **opts;
		size_t n;
		if (!json_is_object(m) || check_keys(m, mount_keys) != 0 || get_str(m, "destination", &dest) != 0 ||
		    dest[0] != '/' || get_str(m, "type", &type) != 0 || get_str(m, "source", &src) != 0 ||
		    absent(m, "uidMappings") != 0 || absent(m, "gidMappings") != 0)
			return -1;
		if (get_strs(m, "options", &opts, &n) != 0)
			return -1;
		for (size_t j = 0; j < n; j++)
			if (strcmp(opts[j], "tmpcopyup") == 0) {
				free(opts);
				return -1;
			}
		free(opts);
	}
	return json_array_size(mounts) > MAX_MOUNTS ? -1 : 0;
}

/* read_conf reads config.json's bytes into c; -1 hands off. */
static int read_conf(const char *data, size_t len, struct conf *c)
{
	/* jansson reads a NUL byte between tokens as the end of the input;
	 * encoding/json refuses it. */
	if (memchr(data, 0, len) != NULL)
		return -1;
	json_error_t jerr;
	c->doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (c->doc == NULL || check_keys(c->doc, spec_keys) != 0)
		return -1;
	json_t *d = c->doc;
	static const char *const others[] = {"solaris", "windows", "vm", "zos", "freebsd"};
	for (size_t i = 0; i < NELEM(others); i++)
		if (absent(d, others[i]) != 0)
			return -1;
	const char *version;
	json_t *root, *hooks;
	if (get_str(d, "ociVersion", &version) != 0 || get_str(d, "hostname", &c->hostname) != 0 ||
	    get_str(d, "domainname", &c->domainname) != 0 || get_obj(d, "root", &root) != 0 || root == NULL ||
	    check_keys(root, root_keys) != 0 || get_str(root, "path", &c->root_path) != 0 ||
	    c->root_path[0] == '\0' || get_bool(root, "readonly", &c->root_readonly) != 0 ||
	    get_obj(d, "process", &c->process) != 0 || c->process == NULL || check_process(c->process) != 0 ||
	    get_obj(d, "linux", &c->linux_) != 0 || c->linux_ == NULL || get_arr(d, "mounts", &c->mounts) != 0 ||
	    get_obj(d, "hooks", &hooks) != 0 || get_obj(d, "annotations", &c->annotations) != 0)
		return -1;
	if (c->annotations != NULL) {
		const char *k;
		json_t *v;
		json_object_foreach(c->annotations, k, v) {
			if (!json_is_string(v))
				return -1;
		}
	}
	c->start_ok = c->delete_ok = 1;
	if (hooks != NULL && check_hooks(hooks, c) != 0)
		return -1;
	if (check_linux(c->linux_, c) != 0 || check_mounts(c->mounts) != 0)
		return -1;
	return 0;
}

/* ---------- the plan (runtime.buildPlan) ---------- */

struct mount_opts {
	unsigned long flags, clear;
	unsigned long propagate[16];
	int npropagate, bind, recursive, ndata;
	struct buf data;
};

/* parse_mount_options is runtime.parseMountOptions. */
static int parse_mount_options(json_t *m, struct mount_opts *mo)
{
	memset(mo, 0, sizeof(*mo));
	const char **opts;
	size_t n;
	if (get_strs(m, "options", &opts, &n) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *o = opts[i];
		size_t k = 0;
		while (k < NELEM(flag_options) && strcmp(o, flag_options[k].name) != 0)
			k++;
		if (k < NELEM(flag_options)) {
			if (flag_options[k].clear) {
				mo->flags &= ~flag_options[k].flag;
				mo->clear |= flag_options[k].flag;
			} else
				mo->flags |= flag_options[k].flag;
			if (strcmp(o, "bind") == 0)
				mo->bind = 1;
			else if (strcmp(o, "rbind") == 0)
				mo->bind = mo->recursive = 1;
			continue;
		}
		k = 0;
		while (k < NELEM(propagation_options) && strcmp(o, propagation_options[k].name) != 0)
			k++;
		if (k < NELEM(propagation_options)) {
			if (mo->npropagate == 16) {
				free(opts);
				return -1;
			}
			mo->propagate[mo->npropagate++] = (unsigned long)propagation_options[k].num;
			continue;
		}
		/* strings.Join: empty options count too. */
		if (mo->ndata++ > 0)
			buf_put(&mo->data, ",", 1);
		buf_put(&mo->data, o, strlen(o));
	}
	free(opts);
	if (mo->data.b == NULL)
		buf_put(&mo->data, "", 0);
	return mo->data.err ? -1 : 0;
}

static void num(char *out, long long v)
{
	snprintf(out, 32, "%lld", v);
}

static void plan_propagation(struct plan *p, const char *dest, struct mount_opts *mo)
{
	char f[32];
	for (int i = 0; i < mo->npropagate; i++) {
		num(f, (long long)mo->propagate[i]);
		plan_opv(p, OP_REMOUNT_IN, dest, f, "", "0", "0", NULL);
	}
}

/* plan_dev is runtime.planDev: the spec's devices, the default ones they
 * do not replace, the /dev links and /dev/ptmx. */
static int plan_dev(struct plan *p, json_t *linux_)
{
	json_t *devs = NULL;
	get_arr(linux_, "devices", &devs);
	size_t nspec = devs ? json_array_size(devs) : 0;
	char label[PATH_MAX + 16], a[32], b[32], c[32], d[32];
	for (size_t i = 0; i < nspec + NELEM(default_devices); i++) {
		const char *path, *type;
		long long major, minor, mode = 0666, uid = -1, gid = -1;
		int has;
		if (i < nspec) {
			json_t *dev = json_array_get(devs, i);
			get_str(dev, "path", &path);
			get_str(dev, "type", &type);
			get_int(dev, "major", INT64_MIN, INT64_MAX, &major, NULL);
			get_int(dev, "minor", INT64_MIN, INT64_MAX, &minor, NULL);
			get_int(dev, "fileMode", 0, UINT32_MAX, &mode, &has);
			mode = has ? (mode & 0777) : 0666;
			get_int(dev, "uid", 0, UINT32_MAX, &uid, &has);
			if (!has)
				uid = -1;
			get_int(dev, "gid", 0, UINT32_MAX, &gid, &has);
			if (!has)
				gid = -1;
		} else {
			const struct default_device *dd = &default_devices[i - nspec];
			int replaced = 0;
			for (size_t j = 0; j < nspec; j++) {
				const char *sp;
				char clean[PATH_MAX];
				get_str(json_array_get(devs, j), "path", &sp);
				snprintf(clean, sizeof(clean), "%s", sp);
				clean_path(clean);
				replaced |= strcmp(clean, dd->path) == 0;
			}
			if (replaced)
				continue;
			path = dd->path;
			type = dd->type == 'b' ? "b" : dd->type == 'p' ? "p" : "c";
			major = dd->major;
			minor = dd->minor;
			mode = dd->mode;
			uid = dd->uid;
			gid = dd->gid;
		}
		unsigned long typ = type[0] == 'b' ? S_IFBLK : type[0] == 'p' ? S_IFIFO : S_IFCHR;
		snprintf(label, sizeof(label), "device %s", path);
		num(a, (long long)(typ | (unsigned long)mode));
		snprintf(b, sizeof(b), "%llu",
			 (unsigned long long)makedev((unsigned)(uint32_t)major, (unsigned)(uint32_t)minor));
		num(c, uid);
		num(d, gid);
		plan_opv(p, OP_LABEL, label, NULL);
		plan_opv(p, OP_MKNOD_IN, path, a, b, c, d, NULL);
	}
	plan_opv(p, OP_LABEL, "/dev links", NULL);
	plan_opv(p, OP_SYMLINK_IN, "/proc/self/fd", "/dev/fd", NULL);
	plan_opv(p, OP_SYMLINK_IN, "/proc/self/fd/0", "/dev/stdin", NULL);
	plan_opv(p, OP_SYMLINK_IN, "/proc/self/fd/1", "/dev/stdout", NULL);
	plan_opv(p, OP_SYMLINK_IN, "/proc/self/fd/2", "/dev/stderr", NULL);
	struct stat st;
	if (stat("/proc/kcore", &st) == 0)
		plan_opv(p, OP_SYMLINK_IN, "/proc/kcore", "/dev/core", NULL);
	plan_opv(p, OP_LABEL, "/dev/ptmx", NULL);
	plan_opv(p, OP_REPLACE_SYMLINK_IN, "/dev/ptmx", "pts/ptmx", NULL);
	return 0;
}

/* plan_cgroups is runtime.planCgroups over runtime.cgroupSteps: the
 * container's cgroup hierarchies at the mount's destination (a cgroup2
 * mount on a v2 host; on v1 and hybrid hosts a tmpfs with one mount per
 * hierarchy), bind mounts of the init's own cgroups without a cgroup
 * namespace. */
static int plan_cgroups(struct plan *p, json_t *m, struct mount_opts *mo, pid_t pid, int cgroupns)
{
	const char *dest, *type;
	get_str(m, "destination", &dest);
	get_str(m, "type", &type);
	char path[64], f[32], d[PATH_MAX], src[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	size_t len;
	char *own = read_file(path, 1 << 20, &len);
	if (own == NULL)
		return -1;
	/* own_of is the init's cgroup in the hierarchy whose /proc/PID/cgroup
	 * controller field is key ("" when not listed, as a Go map lookup). */
	struct hm {
		const char *point, *fstype, *root;
		char opts[512];
	} hms[64];
	size_t nh = 0;
	for (size_t i = 0; i < nmounts && nh < NELEM(hms); i++) {
		if (strcmp(mounts[i].fstype, "cgroup") != 0 && strcmp(mounts[i].fstype, "cgroup2") != 0)
			continue;
		struct hm *h = &hms[nh++];
		h->point = mounts[i].point;
		h->fstype = mounts[i].fstype;
		h->root = mounts[i].root;
		h->opts[0] = '\0';
		char *copy = strdup(mounts[i].super), *save = NULL;
		if (copy == NULL) {
			free(own);
			return -1;
		}
		for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
			if (strcmp(o, "rw") == 0 || strcmp(o, "ro") == 0 || strncmp(o, "relatime", 8) == 0 ||
			    strcmp(o, "nsdelegate") == 0 || strcmp(o, "memory_recursiveprot") == 0)
				continue;
			size_t l = strlen(h->opts);
			snprintf(h->opts + l, sizeof(h->opts) - l, "%s%s", l ? "," : "", o);
		}
		free(copy);
	}
	unsigned long ro = mo->flags & MS_RDONLY;
	unsigned long flags = (mo->flags & ~(unsigned long)MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	int unified = (nh == 1 && strcmp(hms[0].fstype, "cgroup2") == 0) || strcmp(type, "cgroup2") == 0;
	int r = 0;
#define OWN(key, out)                                                                                               \
	do {                                                                                                         \
		(out)[0] = '\0';                                                                                     \
		char *copy_ = strdup(own), *save_ = NULL;                                                           \
		for (char *ln = copy_ ? strtok_r(copy_, "\n", &save_) : NULL; ln; ln = strtok_r(NULL, "\n", &save_)) { \
			char *c1 = strchr(ln, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;                       \
			if (c2 == NULL)                                                                      \
				continue;                                                                    \
			*c2 = '\0';                                                                          \
			if (strcmp(c1 + 1, (key)) == 0)                                                      \
				snprintf((out), PATH_MAX, "%s", c2 + 1);                                     \
		}                                                                                            \
		free(copy_);                                                                                 \
	} while (0)
	/* relCgroup: the path below the mount's root, without a leading /. */
#define REL(cg, mroot, out)                                                                                         \
	do {                                                                                                         \
		const char *q_ = (cg);                                                                               \
		size_t n_ = strlen(mroot);                                                                           \
		if (strcmp((mroot), "/") != 0 && strncmp(q_, (mroot), n_) == 0)                                      \
			q_ += n_;                                                                                    \
		if (*q_ == '/')                                                                                      \
			q_++;                                                                                        \
		snprintf((out), PATH_MAX, "%s", q_);                                                                 \
	} while (0)
	if (unified) {
		struct hm *h = NULL;
		for (size_t i = 0; i < nh; i++)
			if (strcmp(hms[i].fstype, "cgroup2") == 0)
				h = &hms[i];
		if (cgroupns || h == NULL) {
			num(f, (long long)(flags | ro));
			plan_opv(p, OP_MOUNT_IN, dest, "0", "cgroup2", "cgroup2", f, "", NULL);
		} else {
			char cg[PATH_MAX], rel[PATH_MAX];
			OWN("", cg);
			REL(cg, h->root, rel);
			if (join_clean(src, sizeof(src), h->point, rel) != 0)
				r = -1;
			num(f, (long long)(MS_BIND | MS_REC | ro));
			plan_opv(p, OP_MOUNT_IN, dest, "0", src, "", f, "", NULL);
		}
		free(own);
		return r;
	}
	num(f, (long long)flags);
	plan_opv(p, OP_MOUNT_IN, dest, "0", "tmpfs", "tmpfs", f, "mode=755", NULL);
	for (size_t i = 0; i < nh && r == 0; i++) {
		struct hm *h = &hms[i];
		const char *name = strrchr(h->point, '/');
		name = name && name[1] ? name + 1 : h->point;
		if (join_clean(d, sizeof(d), dest, name) != 0) {
			r = -1;
			break;
		}
		if (cgroupns) {
			num(f, (long long)(flags | ro));
			plan_opv(p, OP_MOUNT_IN, d, "0", "cgroup", h->fstype, f, h->opts, NULL);
		} else {
			char cg[PATH_MAX], rel[PATH_MAX];
			OWN(strcmp(h->fstype, "cgroup2") == 0 ? "" : h->opts, cg);
			REL(cg, h->root, rel);
			if (join_clean(src, sizeof(src), h->point, rel) != 0) {
				r = -1;
				break;
			}
			num(f, (long long)(MS_BIND | MS_REC));
			plan_opv(p, OP_MOUNT_IN, d, "0", src, "", f, "", NULL);
			if (ro) {
				num(f, (long long)(MS_BIND | MS_REMOUNT | MS_RDONLY));
				plan_opv(p, OP_REMOUNT_IN, d, f, "", "1", "0", NULL);
			}
		}
		if (strchr(name, ',') != NULL) {
			char names[PATH_MAX], *save = NULL;
			snprintf(names, sizeof(names), "%s", name);
			for (char *a = strtok_r(names, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
				char link[PATH_MAX];
				if (join_clean(link, sizeof(link), dest, a) != 0) {
					r = -1;
					break;
				}
				plan_opv(p, OP_SYMLINK_IN, name, link, NULL);
			}
		}
	}
#undef OWN
#undef REL
	if (r == 0 && ro) {
		num(f, (long long)(MS_REMOUNT | MS_RDONLY | flags));
		plan_opv(p, OP_REMOUNT_IN, dest, f, "mode=755", "0", "0", NULL);
	}
	free(own);
	return r;
}

/* plan_rootfs is runtime.planRootfs. */
static int plan_rootfs(struct plan *p, struct conf *c, const char *bundle, const char *rootfs, pid_t pid)
{
	char f[32], label[3 * PATH_MAX];
	unsigned long prop = MS_SLAVE | MS_REC;
	for (size_t i = 0; i < NELEM(propagation_options); i++)
		if (strcmp(c->rootfs_propagation, propagation_options[i].name) == 0)
			prop = (unsigned long)propagation_options[i].num;
	plan_opv(p, OP_LABEL, "set propagation of /", NULL);
	num(f, (long long)prop);
	plan_opv(p, OP_MOUNT, "", "/", "", f, "", NULL);
	const char *mp = mount_point_of(rootfs);
	snprintf(label, sizeof(label), "make %s private", mp);
	plan_opv(p, OP_LABEL, label, NULL);
	num(f, MS_PRIVATE);
	plan_opv(p, OP_MOUNT, "", mp, "", f, "", NULL);
	snprintf(label, sizeof(label), "bind root %s", rootfs);
	plan_opv(p, OP_LABEL, label, NULL);
	num(f, MS_BIND | MS_REC);
	plan_opv(p, OP_MOUNT, rootfs, rootfs, "", f, "", NULL);
	plan_opv(p, OP_ROOT, rootfs, NULL);

	int dev_bound = 0;
	for (size_t i = 0; c->mounts != NULL && i < json_array_size(c->mounts); i++) {
		json_t *m = json_array_get(c->mounts, i);
		const char *dest, *type, *src;
		get_str(m, "destination", &dest);
		get_str(m, "type", &type);
		get_str(m, "source", &src);
		snprintf(label, sizeof(label), "mounts[%zu] (%s on %s)", i, src, dest);
		plan_opv(p, OP_LABEL, label, NULL);
		struct mount_opts mo;
		if (parse_mount_options(m, &mo) != 0)
			return -1;
		if (strcmp(type, "bind") == 0 || mo.bind) {
			/* runtime.bindSource: relative to the bundle; must exist. */
			char bsrc[PATH_MAX];
			if (src[0] == '/')
				snprintf(bsrc, sizeof(bsrc), "%s", src);
			else if (join_clean(bsrc, sizeof(bsrc), bundle, src) != 0) {
				free(mo.data.b);
				return -1;
			}
			if (src[0] == '/' && strlen(src) >= sizeof(bsrc)) {
				free(mo.data.b);
				return -1;
			}
			struct stat st;
			if (stat(bsrc, &st) != 0) {
				free(mo.data.b);
				return -1;
			}
			num(f, (long long)(MS_BIND | (mo.recursive ? MS_REC : 0)));
			plan_opv(p, OP_MOUNT_IN, dest, S_ISDIR(st.st_mode) ? "0" : "1", bsrc, "", f, "", NULL);
			unsigned long extra = mo.flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT);
			if (extra != 0 || mo.clear != 0) {
				char g[32];
				num(f, (long long)(extra | MS_BIND | MS_REMOUNT));
				num(g, (long long)mo.clear);
				plan_opv(p, OP_REMOUNT_IN, dest, f, "", "1", g, NULL);
			}
			plan_propagation(p, dest, &mo);
		} else if (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0) {
			/* cgroupSteps has no propagation step. */
			if (plan_cgroups(p, m, &mo, pid, c->cgroupns) != 0) {
				free(mo.data.b);
				return -1;
			}
		} else {
			num(f, (long long)mo.flags);
			plan_opv(p, OP_MOUNT_IN, dest, "0", src, type, f, mo.data.b, NULL);
			plan_propagation(p, dest, &mo);
		}
		free(mo.data.b);
		char clean[PATH_MAX];
		snprintf(clean, sizeof(clean), "%s", dest);
		clean_path(clean);
		if (strcmp(clean, "/dev") == 0 && mo.bind)
			dev_bound = 1;
	}
	if (!dev_bound)
		plan_dev(p, c->linux_);
	return 0;
}

/* build_plan is runtime.buildPlan. */
static int build_plan(struct plan *p, struct conf *c, pid_t pid, const char *id, const char *bundle,
		      const char *rootfs, int no_pivot, int no_new_keyring, int preserve_fds, int fifo_fd, const char *filter, size_t flen)
{
	char f[32], label[PATH_MAX + 64];
	plan_init(p);
	if (c->cgroupns) {
		plan_opv(p, OP_LABEL, "unshare cgroup namespace", NULL);
		num(f, CLONE_NEWCGROUP);
		plan_opv(p, OP_UNSHARE, f, NULL);
	}
	if (plan_rootfs(p, c, bundle, rootfs, pid) != 0)
		return -1;
	snprintf(label, sizeof(label), "pivot_root %s", rootfs);
	plan_opv(p, OP_LABEL, label, NULL);
	plan_opv(p, OP_PIVOT, rootfs, no_pivot ? "1" : "0", NULL);
	if (c->rootfs_propagation[0] != '\0') {
		for (size_t i = 0; i < NELEM(propagation_options); i++)
			if (strcmp(c->rootfs_propagation, propagation_options[i].name) == 0)
				num(f, (long long)propagation_options[i].num);
		snprintf(label, sizeof(label), "make / %s", c->rootfs_propagation);
		plan_opv(p, OP_LABEL, label, NULL);
		plan_opv(p, OP_ROOT_PROPAGATION, f, NULL);
	}
	json_t *sysctl = json_object_get(c->linux_, "sysctl");
	size_t nsys = json_is_object(sysctl) ? json_object_size(sysctl) : 0;
	const char **keys = calloc(nsys + 1, sizeof(*keys));
	if (keys == NULL)
		return -1;
	size_t nk = 0;
	const char *kk;
	json_t *vv;
	if (nsys > 0)
		json_object_foreach(sysctl, kk, vv) keys[nk++] = kk;
	/* In key order, as runtime.buildPlan does. */
	qsort(keys, nk, sizeof(*keys), key_cmp);
	for (size_t i = 0; i < nk; i++) {
		const char *k = keys[i];
		json_t *v = json_object_get(sysctl, k);
		{
			char key[PATH_MAX];
			if ((size_t)snprintf(key, sizeof(key), "sys/%s", k) >= sizeof(key)) {
				free(keys);
				return -1;
			}
			for (char *s = key; *s; s++)
				if (*s == '.')
					*s = '/';
			snprintf(label, sizeof(label), "linux.sysctl %s", k);
			plan_opv(p, OP_LABEL, label, NULL);
			plan_opv(p, OP_SYSCTL, k, key, json_string_value(v), NULL);
		}
	}
	free(keys);
	static const struct {
		const char *key, *label;
		int op;
	} paths[] = {{"readonlyPaths", "linux.readonlyPaths", OP_READONLY}, {"maskedPaths", "linux.maskedPaths", OP_MASK}};
	for (size_t k = 0; k < NELEM(paths); k++) {
		const char **l;
		size_t n;
		get_strs(c->linux_, paths[k].key, &l, &n);
		for (size_t i = 0; i < n; i++) {
			snprintf(label, sizeof(label), "%s %s", paths[k].label, l[i]);
			plan_opv(p, OP_LABEL, label, NULL);
			plan_opv(p, paths[k].op, l[i], NULL);
		}
		free(l);
	}
	if (c->hostname[0] != '\0') {
		plan_opv(p, OP_LABEL, "set hostname", NULL);
		plan_opv(p, OP_HOSTNAME, c->hostname, NULL);
	}
	if (c->domainname[0] != '\0') {
		plan_opv(p, OP_LABEL, "set domainname", NULL);
		plan_opv(p, OP_DOMAINNAME, c->domainname, NULL);
	}
	if (c->root_readonly) {
		plan_opv(p, OP_LABEL, "make root read-only", NULL);
		plan_opv(p, OP_ROOT_READONLY, NULL);
	}
	plan_opv(p, OP_LABEL, "setsid", NULL);
	plan_opv(p, OP_SETSID, NULL);
	if (!no_new_keyring) {
		char ses[1100];
		snprintf(ses, sizeof(ses), "_ses.%s", id);
		plan_opv(p, OP_LABEL, "join session keyring", NULL);
		plan_opv(p, OP_KEYRING, ses, NULL);
	}
	if (plan_process(p, c->process, c->linux_, preserve_fds, fifo_fd, filter, flen) != 0)
		return -1;
	plan_opv(p, OP_FINISH, NULL);
	return p->err ? -1 : 0;
}

/* ---------- the records (runtime.Container.save) ---------- */

/* rfc3339nano formats t as Go's time.RFC3339Nano in UTC. */
static void rfc3339nano(char *out, size_t n, const struct timespec *t)
{
	struct tm tm;
	gmtime_r(&t->tv_sec, &tm);
	size_t l = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (t->tv_nsec != 0) {
		char frac[16];
		snprintf(frac, sizeof(frac), ".%09ld", t->tv_nsec);
		size_t fl = strlen(frac);
		while (frac[fl - 1] == '0')
			frac[--fl] = '\0';
		snprintf(out + l, n - l, "%s", frac);
		l += fl;
	}
	snprintf(out + l, n - l, "Z");
}

/* owner is runtime.Container.Owner: the state dir's owner by name (from
 * /etc/passwd, as Go's os/user does without cgo), else "#uid". */
static void owner(char *out, size_t n, const char *dir)
{
	struct stat st;
	out[0] = '\0';
	if (stat(dir, &st) != 0)
		return;
	snprintf(out, n, "#%u", (unsigned)st.st_uid);
	size_t len;
	char *pw = read_file("/etc/passwd", 16 << 20, &len), *save = NULL;
	if (pw == NULL)
		return;
	for (char *line = strtok_r(pw, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = {0}, *s = line;
		int k = 0;
		while (k < 4 && s != NULL) {
			f[k++] = s;
			s = strchr(s, ':');
			if (s != NULL)
				*s++ = '\0';
		}
		if (k == 4 && line[0] != '#' && f[2][0] != '\0' && strspn(f[2], "0123456789") == strlen(f[2]) &&
		    strtoul(f[2], NULL, 10) == st.st_uid) {
			snprintf(out, n, "%s", f[0]);
			break;
		}
	}
	free(pw);
}

/* save_records writes fastpath, state.fmt and state.json (last) as
 * runtime.Container.save does. */
static int save_records(const char *dir, const char *id, const char *bundle, const char *rootfs, struct conf *c,
			pid_t pid, unsigned long long start, const char *config, size_t config_len, const char *filter,
			size_t flen)
{
	char path[PATH_MAX], created[64], own[256];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	rfc3339nano(created, sizeof(created), &now);
	owner(own, sizeof(own), dir);
	if (!valid_utf8((const unsigned char *)bundle) || !valid_utf8((const unsigned char *)rootfs) ||
	    !valid_utf8((const unsigned char *)own))
		return -1;

	struct buf fp = {0};
	buf_printf(&fp, "capsa-fastpath 1\npid %d\nstart %llu\n", (int)pid, start);
	const char *freezer = NULL;
	for (int i = 0; i < ncgs; i++)
		if (strcmp(cgs[i].ctrl, "freezer") == 0 || cgroup_v2)
			freezer = cgs[i].path;
	for (int i = 0; i < ncgs; i++)
		if (strchr(cgs[i].path, '\n') != NULL)
			return -1;
	buf_printf(&fp, "pidns %d\nstart-ok %d\ndelete-ok %d\n", c->pidns, c->start_ok, c->delete_ok);
	if (freezer != NULL)
		buf_printf(&fp, "freezer %s/%s\n", freezer, cgroup_v2 ? "cgroup.freeze" : "freezer.state");
	const char *dirs[MAX_CGROUPS];
	int nd = 0;
	for (int i = 0; i < ncgs; i++) {
		int dup = 0;
		for (int j = 0; j < nd; j++)
			dup |= strcmp(dirs[j], cgs[i].path) == 0;
		if (!dup)
			dirs[nd++] = cgs[i].path;
	}
	qsort(dirs, (size_t)nd, sizeof(dirs[0]), key_cmp);
	for (int i = 0; i < nd; i++)
		buf_printf(&fp, "cgroup %s\n", dirs[i]);
	/* What exec needs (runtime.fastpathRecord): the namespaces to join,
	 * the personality, whether seccomp.bpf is there; and that exec may be
	 * done by the front, which holds for every config this create takes
	 * (no user or time namespace, no NOTIFY filter, clean cgroup paths). */
	json_t *nss = json_object_get(c->linux_, "namespaces");
	for (size_t i = 0; json_is_array(nss) && i < json_array_size(nss); i++)
		buf_printf(&fp, "ns %s\n", json_string_value(json_object_get(json_array_get(nss, i), "type")));
	json_t *per = json_object_get(c->linux_, "personality");
	if (json_is_object(per))
		buf_printf(&fp, "personality %d\n",
			   strcmp(json_string_value(json_object_get(per, "domain")), "LINUX32") == 0 ? 8 : 0);
	buf_printf(&fp, "seccomp %d\nexec-ok 1\n", filter != NULL && flen > 0);

	/* state.fmt: StateDoc indented, with the pid and status marked. */
	struct buf sf = {0};
	buf_printf(&sf, "{\n  \"ociVersion\": \"%s\",\n  \"id\": ", SPEC_VERSION);
	json_quote(&sf, id);
	buf_printf(&sf, ",\n  \"pid\": \x01P,\n  \"status\": \"\x01S\",\n  \"bundle\": ");
	json_quote(&sf, bundle);
	buf_printf(&sf, ",\n  \"rootfs\": ");
	json_quote(&sf, rootfs);
	buf_printf(&sf, ",\n  \"created\": \"%s\",\n  \"owner\": ", created);
	json_quote(&sf, own);
	size_t nann = c->annotations ? json_object_size(c->annotations) : 0;
	if (nann > 0) {
		const char **keys = calloc(nann, sizeof(*keys));
		if (keys == NULL)
			return -1;
		size_t k = 0;
		const char *key;
		json_t *v;
		json_object_foreach(c->annotations, key, v) keys[k++] = key;
		qsort(keys, nann, sizeof(*keys), key_cmp);
		buf_printf(&sf, ",\n  \"annotations\": {");
		for (size_t i = 0; i < nann; i++) {
			buf_printf(&sf, "%s\n    ", i ? "," : "");
			json_quote(&sf, keys[i]);
			buf_printf(&sf, ": ");
			json_quote(&sf, json_string_value(json_object_get(c->annotations, keys[i])));
		}
		buf_printf(&sf, "\n  }");
		free(keys);
	}
	buf_printf(&sf, "\n}\n");

	/* state.json: runtime.Container with the config's own bytes. */
	struct buf sj = {0};
	buf_printf(&sj, "{\"id\":");
	json_quote(&sj, id);
	buf_printf(&sj, ",\"bundle\":");
	json_quote(&sj, bundle);
	buf_printf(&sj, ",\"rootfs\":");
	json_quote(&sj, rootfs);
	buf_printf(&sj, ",\"init_process_pid\":%d,\"init_process_start\":%llu,\"created\":\"%s\",\"cgroup_paths\":{",
		   (int)pid, start, created);
	for (int i = 0; i < ncgs; i++) {
		buf_printf(&sj, "%s", i ? "," : "");
		json_quote(&sj, cgs[i].ctrl);
		buf_printf(&sj, ":");
		json_quote(&sj, cgs[i].path);
	}
	buf_printf(&sj, "},\"config\":");
	buf_put(&sj, config, config_len);
	buf_printf(&sj, "}");

	int r = -1;
	/* The compiled filter, which exec loads. */
	if (filter != NULL && (snprintf(path, sizeof(path), "%s/seccomp.bpf", dir) < 0 ||
			       write_file_atomic(path, filter, flen, 0600) != 0))
		fp.err = 1;
	if (!fp.err && !sf.err && !sj.err && snprintf(path, sizeof(path), "%s/fastpath", dir) > 0 &&
	    write_file_atomic(path, fp.b, fp.len, 0600) == 0 && snprintf(path, sizeof(path), "%s/state.fmt", dir) > 0 &&
	    write_file_atomic(path, sf.b, sf.len, 0600) == 0 && snprintf(path, sizeof(path), "%s/state.json", dir) > 0 &&
	    write_file_atomic(path, sj.b, sj.len, 0600) == 0)
		r = 0;
	free(fp.b);
	free(sf.b);
	free(sj.b);
	return r;
}

/* ---------- seccomp from the Go runtime's cache ---------- */

/* skip_ws / skip_value walk raw JSON that jansson has already accepted;
 * NULL on anything unexpected. */
static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *skip_string(const char *p, const char *end)
{
	if (p >= end || *p != '"')
		return NULL;
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p, const char *end, int depth)
{
	p = skip_ws(p, end);
	if (p >= end || depth > 4096)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = skip_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if ((p = skip_string(skip_ws(p, end), end)) == NULL)
					return NULL;
				p = skip_ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p++;
			}
			if ((p = skip_value(p, end, depth + 1)) == NULL)
				return NULL;
			p = skip_ws(p, end);
			if (p < end && *p == ',') {
				p++;
				continue;
			}
			return p < end && *p == close ? p + 1 : NULL;
		}
	}
	while (p < end && strchr(",}] \t\r\n", *p) == NULL)
		p++;
	return p;
}

/* member finds the raw value of key in the object at p (keys compared as
 * written: an escaped name is not found, and the caller hands off). */
static const char *member(const char *p, const char *end, const char *key, const char **vend)
{
	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return NULL;
	p++;
	size_t kl = strlen(key);
	for (;;) {
		const char *k = skip_ws(p, end), *ke = skip_string(k, end);
		if (ke == NULL)
			return NULL;
		p = skip_ws(ke, end);
		if (p >= end || *p != ':')
			return NULL;
		const char *v = skip_ws(p + 1, end), *ve = skip_value(v, end, 1);
		if (ve == NULL)
			return NULL;
		if ((size_t)(ke - k) == kl + 2 && memcmp(k + 1, key, kl) == 0) {
			*vend = ve;
			return v;
		}
		p = skip_ws(ve, end);
		if (p >= end || *p != ',')
			return NULL;
		p++;
	}
}

/* cached_seccomp finds the filter the Go runtime compiled for the
 * config's linux.seccomp section (runtime.compiledSeccomp): the cache
 * entry named by BLAKE2b-256 of the Go runtime binary's identity and the
 * section's bytes. The section's span in config is returned too, for the
 * state.json that keeps the config without it. -1: no usable entry (a
 * miss, compiler warnings to print, a filter with a notify listener, a
 * malformed entry): the Go runtime compiles and caches it. */
static int cached_seccomp(const char *root, const char *sec, size_t seclen, char **filter, size_t *flen)
{
	char self[PATH_MAX], gobin[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	snprintf(gobin, sizeof(gobin), "%s/capsa-runtime-go", self);
	struct stat st;
	if (stat(gobin, &st) != 0)
		return -1;
	char ident[160];
	int il = snprintf(ident, sizeof(ident), "%llu %llu %lld %lld.%ld\n", (unsigned long long)st.st_dev,
			  (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			  st.st_mtim.tv_nsec);
	struct blake2b h;
	unsigned char sum[32];
	blake2b256_init(&h);
	blake2b_update(&h, ident, (size_t)il);
	blake2b_update(&h, sec, seclen);
	blake2b256_final(&h, sum);
	char path[PATH_MAX + 128];
	int pl = snprintf(path, sizeof(path), "%s/@seccomp/", root);
	if (pl < 0 || (size_t)pl + 65 > sizeof(path))
		return -1;
	for (int i = 0; i < 32; i++)
		snprintf(path + pl + 2 * i, 3, "%02x", sum[i]);
	size_t elen;
	char *entry = read_file(path, 8 << 20, &elen);
	if (entry == NULL)
		return -1;
	/* The entry: u32 length, the filter, then warnings (none, or the Go
	 * runtime prints them). The filter: "CSBF", version 1, flags u64,
	 * n u32, n instructions, listener path and metadata (both empty
	 * without NOTIFY). */
	uint32_t fl, version, ni, lp, lm;
	uint64_t flags;
	const unsigned char *b = (const unsigned char *)entry + 4;
	if (elen < 4 || (memcpy(&fl, entry, 4), fl != elen - 4) || fl < 28 || memcmp(b, "CSBF", 4) != 0) {
		free(entry);
		return -1;
	}
	memcpy(&version, b + 4, 4);
	memcpy(&flags, b + 8, 8);
	memcpy(&ni, b + 16, 4);
	if (version != 1 || ni == 0 || ni > 4096 || (uint64_t)fl != 20 + 8 * (uint64_t)ni + 8 ||
	    (memcpy(&lp, b + 20 + 8 * ni, 4), lp != 0) || (memcpy(&lm, b + 24 + 8 * ni, 4), lm != 0) ||
	    (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) {
		free(entry);
		return -1;
	}
	memmove(entry, entry + 4, fl);
	*filter = entry;
	*flen = fl;
	return 0;
}

/* seccomp_section finds the span of linux.seccomp in the config's bytes
 * (-1: there is none, or the bytes are not what the scan expects). */
static int seccomp_section(const char *config, size_t len, size_t *start, size_t *end)
{
	const char *e = config + len, *lend, *send;
	const char *l = member(config, e, "linux", &lend);
	const char *sec = l ? member(l, lend, "seccomp", &send) : NULL;
	if (sec == NULL)
		return -1;
	*start = (size_t)(sec - config);
	*end = (size_t)(send - config);
	return 0;
}

/* ---------- create ---------- */

/* protected_self is runtime.protectedBinary without the memfd fallback
 * (where open_tree is refused, the Go runtime makes the copy): a
 * detached, read-only mount of this binary, so that no container process
 * can ever write the runtime through /proc/PID/exe (CVE-2019-5736). */
static int protected_self(void)
{
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return -1;
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* remove_dir removes the state dir and its files (undoing a create). */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
}

/* The state of one create, for undoing it. */
static pid_t child = -1;
static char state_dir[PATH_MAX];
static int cgroups_made;

/* undo_and_handoff removes what this create made, then hands off: the Go
 * runtime does the create again and words any error. */
static void undo_and_handoff(const char *why)
{
	int err = errno;
	if (child > 0) {
		kill(child, SIGKILL);
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (cgroups_made)
		for (int i = ncgs - 1; i >= 0; i--)
			rmdir(cgs[i].path);
	if (state_dir[0] != '\0')
		remove_dir(state_dir);
	if (err != 0)
		debugf("create: C front gave up (%s: %s), Go runtime", why, strerror(err));
	else
		debugf("create: C front gave up (%s), Go runtime", why);
	handoff();
}

/* int_flag parses a Go flag int value (decimal here; anything else hands
 * off). */
static int int_flag(const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 1 << 20)
		return -1;
	*out = (int)v;
	return 0;
}

void cmd_create(int argc, char **argv, int i, const char *root)
{
	const char *bundle_arg = ".", *pid_file = NULL, *id = NULL, *v;
	int no_pivot = 0, no_new_keyring = 0, preserve_fds = 0;
	if (getenv("CAPSA_RUNTIME_GO_CREATE") != NULL || getenv("CAPSA_RUNTIME_GO_INIT") != NULL)
		return;
	/* create's flags, before the id (Go's flag package, runc's CLI). */
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return;
		if ((v = flag_value(argc, argv, &i, "bundle")) != NULL || (v = flag_value(argc, argv, &i, "b")) != NULL)
			bundle_arg = v;
		else if ((v = flag_value(argc, argv, &i, "pid-file")) != NULL)
			pid_file = v;
		else if ((v = flag_value(argc, argv, &i, "preserve-fds")) != NULL) {
			if (int_flag(v, &preserve_fds) != 0)
				return;
		} else if (is_flag(argv[i], "no-pivot"))
			no_pivot = 1;
		else if (is_flag(argv[i], "no-new-keyring"))
			no_new_keyring = 1;
		else if (argv[i][0] == '-')
			return; /* --console-socket and anything unknown */
		else if (id == NULL)
			id = argv[i];
		else
			return;
		/* Go's flag package stops at the id: what follows is an error. */
		if (id != NULL && i + 1 < argc)
			return;
	}
	if (id == NULL || !valid_id(id) || (pid_file != NULL && pid_file[0] == '\0'))
		return;

	char bundle[PATH_MAX], cwd[PATH_MAX], rootfs[PATH_MAX];
	if (bundle_arg[0] == '/')
		snprintf(bundle, sizeof(bundle), "%s", bundle_arg);
	else if (getcwd(cwd, sizeof(cwd)) == NULL || join_clean(bundle, sizeof(bundle), cwd, bundle_arg) != 0)
		return;
	if (strlen(bundle_arg) >= sizeof(bundle))
		return;
	clean_path(bundle);
	/* The config's bytes, as state.json keeps them: with a seccomp
	 * section, the filter the Go runtime compiled for it is taken from
	 * its cache, and the section is left out (runtime.withoutSection),
	 * before the rest is decoded (the profile is most of a config). */
	char cpath[PATH_MAX];
	size_t config_len, s0, s1;
	if ((size_t)snprintf(cpath, sizeof(cpath), "%s/config.json", bundle) >= sizeof(cpath))
		return;
	char *config = read_file(cpath, MAX_CONFIG, &config_len);
	if (config == NULL)
		return;
	char *filter = NULL;
	size_t flen = 0;
	if (seccomp_section(config, config_len, &s0, &s1) == 0 &&
	    !(s1 - s0 == 4 && memcmp(config + s0, "null", 4) == 0)) {
		if (cached_seccomp(root, config + s0, s1 - s0, &filter, &flen) != 0)
			return;
		char *without = malloc(config_len - (s1 - s0) + 5);
		if (without == NULL)
			return;
		memcpy(without, config, s0);
		memcpy(without + s0, "null", 4);
		memcpy(without + s0 + 4, config + s1, config_len - s1);
		config_len = config_len - (s1 - s0) + 4;
		free(config);
		config = without;
	}
	struct conf c;
	memset(&c, 0, sizeof(c));
	if (read_conf(config, config_len, &c) != 0)
		return;
	/* A seccomp section the scan did not find (an escaped name): the Go
	 * runtime's. */
	if (filter == NULL && absent(c.linux_, "seccomp") != 0)
		return;
	if (c.root_path[0] == '/')
		snprintf(rootfs, sizeof(rootfs), "%s", c.root_path);
	else if (join_clean(rootfs, sizeof(rootfs), bundle, c.root_path) != 0)
		return;
	clean_path(rootfs);
	struct stat st;
	if (stat(rootfs, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	if (read_mountinfo() != 0 || cgroup_paths(c.cgroups_path, id) != 0)
		return;

	if (mkdir_all(root, 0700) != 0)
		return;
	if ((size_t)snprintf(state_dir, sizeof(state_dir), "%s/%s", root, id) >= sizeof(state_dir) ||
	    mkdir(state_dir, 0700) != 0) {
		state_dir[0] = '\0';
		return; /* "already exists" and other errors: the Go runtime's words */
	}
	char fifo_path[PATH_MAX + 16];
	snprintf(fifo_path, sizeof(fifo_path), "%s/exec.fifo", state_dir);
	if (mkfifo(fifo_path, 0622) != 0 || chmod(fifo_path, 0622) != 0)
		undo_and_handoff("exec fifo");
	int fifo = open(fifo_path, O_PATH | O_CLOEXEC);
	int self = protected_self();
	int sp[2];
	if (fifo < 0 || self < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		undo_and_handoff("open exec fifo, binary or init pipe");

	/* The init: fds 3..3+N-1 preserved, then the init pipe, the exec
	 * fifo and the binary, as runtime.spawn lays them out. */
	int pipe_fd = 3 + preserve_fds, fifo_fd = pipe_fd + 1, self_fd = pipe_fd + 2;
	cgroups_made = 1;
	child = (pid_t)syscall(SYS_clone, (unsigned long)c.cloneflags | SIGCHLD, NULL, NULL, NULL, NULL);
	if (child < 0) {
		child = -1;
		undo_and_handoff("clone");
	}
	if (child == 0) {
		int hi = self_fd + 1;
		int a = fcntl(sp[1], F_DUPFD_CLOEXEC, hi), b = fcntl(fifo, F_DUPFD_CLOEXEC, hi),
		    s = fcntl(self, F_DUPFD_CLOEXEC, hi);
		if (a < 0 || b < 0 || s < 0 || dup2(a, pipe_fd) < 0 || dup2(b, fifo_fd) < 0 || dup2(s, self_fd) < 0)
			_exit(127);
		for (int fd = 3; fd < pipe_fd; fd++)
			if (fcntl(fd, F_SETFD, 0) != 0)
				_exit(127);
		char exe[64], env_pipe[64];
		snprintf(exe, sizeof(exe), "/proc/self/fd/%d", self_fd);
		snprintf(env_pipe, sizeof(env_pipe), "_CAPSA_INITPIPE=%d", pipe_fd);
		char *args[] = {"capsa-runtime", "init", NULL};
		char *env[] = {"GOMAXPROCS=1", "GOGC=off", env_pipe, NULL};
		execve(exe, args, env);
		_exit(127);
	}
	close(sp[1]);
	close(self);
	unsigned long long start;
	char pstate;
	if (apply_cgroups(c.linux_, child) != 0)
		undo_and_handoff("cgroups");
	if (proc_stat(child, &pstate, &start) != 0)
		undo_and_handoff("init start time");
	struct plan p;
	if (build_plan(&p, &c, child, id, bundle, rootfs, no_pivot, no_new_keyring, preserve_fds, fifo_fd, filter, flen) != 0)
		undo_and_handoff("plan");
	/* For the tests that compare this plan with the Go runtime's
	 * (runtime/plan.go envPlanDump). */
	const char *dump = getenv("CAPSA_RUNTIME_PLAN_DUMP");
	if (dump != NULL && dump[0] != '\0' && write_file_atomic(dump, p.b, p.len, 0600) != 0)
		undo_and_handoff("CAPSA_RUNTIME_PLAN_DUMP");
	unsigned char hdr[4] = {(unsigned char)p.len, (unsigned char)(p.len >> 8), (unsigned char)(p.len >> 16),
				(unsigned char)(p.len >> 24)};
	if (write_all(sp[0], hdr, 4) != 0 || write_all(sp[0], p.b, p.len) != 0)
		undo_and_handoff("send plan");
	plan_free(&p);
	/* The init answers {"type":"ready"} once it waits for start, or
	 * reports an error (then the Go runtime redoes the create and words
	 * it). */
	char msg[64];
	size_t got = 0;
	while (got < sizeof(msg) - 1) {
		ssize_t n = read(sp[0], msg + got, sizeof(msg) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(msg, '\n', got) != NULL)
			break;
	}
	msg[got] = '\0';
	if (strcmp(msg, "{\"type\":\"ready\"}\n") != 0) {
		errno = 0;
		undo_and_handoff("the init did not get ready");
	}
	close(sp[0]);
	close(fifo);
	if (save_records(state_dir, id, bundle, rootfs, &c, child, start, config, config_len, filter, flen) != 0)
		undo_and_handoff("save state");
	if (pid_file != NULL) {
		char abs[PATH_MAX], pidstr[24];
		if (pid_file[0] == '/')
			snprintf(abs, sizeof(abs), "%s", pid_file);
		else if (getcwd(cwd, sizeof(cwd)) == NULL || join_clean(abs, sizeof(abs), cwd, pid_file) != 0)
			undo_and_handoff("pid file path");
		int n = snprintf(pidstr, sizeof(pidstr), "%d", (int)child);
		if (write_file_atomic(abs, pidstr, (size_t)n, 0644) != 0)
			undo_and_handoff("pid file");
	}
	debugf("create: C front");
	exit(0);
}
