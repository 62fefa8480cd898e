/*
 * Reading a config as the Go runtime does, and the plan encoder.
 *
 * The front's create and exec must never accept a config the Go runtime
 * would refuse, nor read one differently. The config is parsed by jansson
 * (strictly: duplicate names, invalid UTF-8, NUL in strings and integers
 * beyond int64 fail the parse, and the front then hands off), and each
 * object is checked against all the names of its Go type: encoding/json
 * matches names case-insensitively, so a near-miss such as "Hostname"
 * hands off too. Values of the wrong type hand off; the Go runtime then
 * reports its own error.
 */
#define _GNU_SOURCE
#include "config.h"
#include "files.h"
#include "front.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "tables.h"

int front_debug;
const char *front_log;
int front_log_json;

/* ---------- plan encoding (runtime/plan.go) ---------- */

#define MAX_PLAN_FIELDS 0xffff

void plan_init(struct plan *p)
{
	memset(p, 0, sizeof(*p));
	p->cap = 4096;
	p->b = malloc(p->cap);
	if (p->b == NULL) {
		p->err = 1;
		return;
	}
	memcpy(p->b, PLAN_MAGIC, 5);
	p->len = 5;
}

void plan_free(struct plan *p)
{
	free(p->b);
	p->b = NULL;
}

static void plan_put(struct plan *p, const void *data, size_t n)
{
	if (p->err)
		return;
	if (p->len + n > p->cap) {
		size_t c = p->cap;
		while (p->len + n > c)
			c *= 2;
		char *nb = realloc(p->b, c);
		if (nb == NULL) {
			p->err = 1;
			return;
		}
		p->b = nb;
		p->cap = c;
	}
	memcpy(p->b + p->len, data, n);
	p->len += n;
}

void plan_op(struct plan *p, int code, size_t n, const char *const *fields, const size_t *lens)
{
	if (n > MAX_PLAN_FIELDS) {
		p->err = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = lens ? lens[i] : strlen(fields[i]);
		/* The C init reads fields as C strings (the filter excepted). */
		if (code != OP_SECCOMP && memchr(fields[i], 0, l) != NULL)
			p->err = 1;
	}
	unsigned char hdr[4] = {(unsigned char)code, (unsigned char)(code >> 8), (unsigned char)n,
				(unsigned char)(n >> 8)};
	plan_put(p, hdr, 4);
	for (size_t i = 0; i < n; i++) {
		size_t l = lens ? lens[i] : strlen(fields[i]);
		if (l > UINT32_MAX) {
			p->err = 1;
			return;
		}
		unsigned char len[4] = {(unsigned char)l, (unsigned char)(l >> 8), (unsigned char)(l >> 16),
					(unsigned char)(l >> 24)};
		plan_put(p, len, 4);
		plan_put(p, fields[i], l);
	}
}

void plan_opv(struct plan *p, int code, ...)
{
	const char *fields[16];
	size_t n = 0;
	va_list ap;
	va_start(ap, code);
	const char *f;
	while ((f = va_arg(ap, const char *)) != NULL) {
		if (n == 16) {
			p->err = 1;
			break;
		}
		fields[n++] = f;
	}
	va_end(ap);
	plan_op(p, code, n, fields, NULL);
}

/* ---------- JSON with encoding/json's reading ---------- */

int check_keys(json_t *obj, const char *const *known)
{
	if (!json_is_object(obj))
		return -1;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		(void)v;
		for (const unsigned char *c = (const unsigned char *)key; *c; c++)
			if (*c >= 0x80)
				return -1;
		/* Unknown names are ignored, as encoding/json does. */
		for (const char *const *k = known; *k; k++) {
			if (strcmp(key, *k) == 0)
				break;
			if (strcasecmp(key, *k) == 0)
				return -1;
		}
	}
	return 0;
}

int absent(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return v == NULL || json_is_null(v) ? 0 : -1;
}

int get_str(json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = "";
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = json_string_value(v);
	return 0;
}

int get_bool(json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);
	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return -1;
	*out = json_is_true(v);
	return 0;
}

int get_int(json_t *obj, const char *key, long long min, long long max, long long *out, int *present)
{
	json_t *v = json_object_get(obj, key);
	*out = 0;
	if (present)
		*present = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return -1;
	long long n = json_integer_value(v);
	if (n < min || n > max)
		return -1;
	*out = n;
	if (present)
		*present = 1;
	return 0;
}

int get_strs(json_t *obj, const char *key, const char ***out, size_t *n)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	*n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return -1;
	size_t len = json_array_size(v);
	const char **list = calloc(len + 1, sizeof(*list));
	if (list == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		json_t *s = json_array_get(v, i);
		if (!json_is_string(s)) {
			free(list);
			return -1;
		}
		list[i] = json_string_value(s);
	}
	*out = list;
	*n = len;
	return 0;
}

int get_obj(json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return -1;
	*out = v;
	return 0;
}

int get_arr(json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return -1;
	*out = v;
	return 0;
}

/* ---------- the process ---------- */

static const char *const process_keys[] = {
	"terminal", "consoleSize", "user", "args", "commandLine", "env", "cwd", "capabilities", "rlimits",
	"noNewPrivileges", "apparmorProfile", "oomScoreAdj", "scheduler", "selinuxLabel", "ioPriority",
	"execCPUAffinity", NULL};
static const char *const user_keys[] = {"uid", "gid", "umask", "additionalGids", "username", NULL};
static const char *const caps_keys[] = {"bounding", "effective", "inheritable", "permitted", "ambient", NULL};
static const char *const rlimit_keys[] = {"type", "hard", "soft", NULL};
static const char *const iopriority_keys[] = {"class", "priority", NULL};
static const char *const cap_sets[] = {"bounding", "effective", "permitted", "inheritable", "ambient"};

/* parse_cap is runtime.ParseCapability: "CAP_KILL" or "kill", any case. */
static int parse_cap(const char *name)
{
	char buf[64];
	size_t n = strlen(name);
	if (n + 4 >= sizeof(buf))
		return -1;
	if (strncasecmp(name, "CAP_", 4) == 0)
		snprintf(buf, sizeof(buf), "%s", name);
	else
		snprintf(buf, sizeof(buf), "CAP_%s", name);
	for (size_t i = 0; i < NELEM(cap_names); i++)
		if (strcasecmp(buf, cap_names[i].name) == 0)
			return (int)cap_names[i].num;
	return -1;
}

static int rlimit_resource(const char *name)
{
	for (size_t i = 0; i < NELEM(rlimit_names); i++)
		if (strcmp(name, rlimit_names[i].name) == 0)
			return (int)rlimit_names[i].num;
	return -1;
}

static int last_cap(void)
{
	static int cached = -1;
	if (cached >= 0)
		return cached;
	char buf[16];
	cached = read_short("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0 ? atoi(buf) : 40;
	return cached;
}

/* An rlimit value: jansson holds int64, the spec's field is a uint64; a
 * negative number is an error in the Go runtime (hand off). */
static int rlimit_value(json_t *r, const char *key, unsigned long long *out)
{
	long long v;
	if (get_int(r, key, 0, INT64_MAX, &v, NULL) != 0)
		return -1;
	*out = (unsigned long long)v;
	return 0;
}

/* check_process is runtime.ValidateProcess plus what only the Go init
 * does (runtime.planEligible): anything else hands off. */
int check_process(json_t *proc)
{
	if (check_keys(proc, process_keys) != 0)
		return -1;
	int b;
	const char *s;
	if (get_bool(proc, "terminal", &b) != 0 || b)
		return -1;
	/* Only the Go init knows what to do with these. */
	if (absent(proc, "scheduler") || absent(proc, "execCPUAffinity") || absent(proc, "consoleSize"))
		return -1;
	if (get_str(proc, "apparmorProfile", &s) != 0 || s[0] != '\0' ||
	    get_str(proc, "selinuxLabel", &s) != 0 || s[0] != '\0' || get_str(proc, "commandLine", &s) != 0 ||
	    s[0] != '\0')
		return -1;
	const char **args, **env;
	size_t nargs, nenv;
	if (get_strs(proc, "args", &args, &nargs) != 0)
		return -1;
	free(args);
	if (nargs == 0 || nargs > MAX_PLAN_FIELDS)
		return -1;
	if (get_strs(proc, "env", &env, &nenv) != 0)
		return -1;
	free(env);
	if (nenv > MAX_PLAN_FIELDS)
		return -1;
	if (get_str(proc, "cwd", &s) != 0 || s[0] != '/')
		return -1;
	if (get_bool(proc, "noNewPrivileges", &b) != 0)
		return -1;
	long long v;
	if (get_int(proc, "oomScoreAdj", INT32_MIN, INT32_MAX, &v, NULL) != 0)
		return -1;
	json_t *user;
	if (get_obj(proc, "user", &user) != 0)
		return -1;
	if (user != NULL) {
		json_t *groups;
		if (check_keys(user, user_keys) != 0 || get_int(user, "uid", 0, UINT32_MAX, &v, NULL) != 0 ||
		    get_int(user, "gid", 0, UINT32_MAX, &v, NULL) != 0 ||
		    get_int(user, "umask", 0, UINT32_MAX, &v, NULL) != 0 || get_str(user, "username", &s) != 0 ||
		    s[0] != '\0' || get_arr(user, "additionalGids", &groups) != 0)
			return -1;
		if (groups != NULL) {
			if (json_array_size(groups) > MAX_PLAN_FIELDS)
				return -1;
			for (size_t i = 0; i < json_array_size(groups); i++) {
				json_t *g = json_array_get(groups, i);
				if (!json_is_integer(g) || json_integer_value(g) < 0 ||
				    json_integer_value(g) > UINT32_MAX)
					return -1;
			}
		}
	}
	json_t *caps;
	if (get_obj(proc, "capabilities", &caps) != 0)
		return -1;
	if (caps != NULL) {
		if (check_keys(caps, caps_keys) != 0)
			return -1;
		for (size_t i = 0; i < NELEM(cap_sets); i++) {
			const char **names;
			size_t n;
			if (get_strs(caps, cap_sets[i], &names, &n) != 0)
				return -1;
			for (size_t j = 0; j < n; j++)
				if (parse_cap(names[j]) < 0) {
					free(names);
					return -1;
				}
			free(names);
		}
	}
	json_t *rl;
	if (get_arr(proc, "rlimits", &rl) != 0)
		return -1;
	for (size_t i = 0; rl != NULL && i < json_array_size(rl); i++) {
		json_t *r = json_array_get(rl, i);
		unsigned long long soft, hard;
		const char *type;
		if (!json_is_object(r) || check_keys(r, rlimit_keys) != 0 || get_str(r, "type", &type) != 0 ||
		    rlimit_resource(type) < 0 || rlimit_value(r, "soft", &soft) != 0 ||
		    rlimit_value(r, "hard", &hard) != 0 || soft > hard)
			return -1;
		for (size_t j = 0; j < i; j++) {
			const char *other;
			if (get_str(json_array_get(rl, j), "type", &other) != 0 || strcmp(other, type) == 0)
				return -1;
		}
	}
	json_t *io;
	if (get_obj(proc, "ioPriority", &io) != 0)
		return -1;
	if (io != NULL) {
		const char *class;
		if (check_keys(io, iopriority_keys) != 0 || get_str(io, "class", &class) != 0 ||
		    (strcmp(class, "IOPRIO_CLASS_RT") != 0 && strcmp(class, "IOPRIO_CLASS_BE") != 0 &&
		     strcmp(class, "IOPRIO_CLASS_IDLE") != 0) ||
		    get_int(io, "priority", 0, 7, &v, NULL) != 0)
			return -1;
	}
	return 0;
}

/* missing_caps reports whether the runtime lacks a capability it would
 * give (caps.missing: the Go runtime then fails naming them). */
static int missing_caps(unsigned long long want)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) != 0)
		return 0;
	unsigned long long have = data[0].permitted | (unsigned long long)data[1].permitted << 32;
	return (want & ~have) != 0;
}

int plan_process(struct plan *p, json_t *proc, json_t *spec_linux, int preserve_fds, int fifo_fd,
		 const char *seccomp, size_t seccomp_len)
{
	char a[32], b[32], c[32], d[32], e[32], f[32];
	plan_opv(p, OP_LABEL, "", NULL);
	json_t *rl = json_object_get(proc, "rlimits");
	for (size_t i = 0; json_is_array(rl) && i < json_array_size(rl); i++) {
		json_t *r = json_array_get(rl, i);
		const char *type;
		unsigned long long soft, hard;
		if (get_str(r, "type", &type) != 0 || rlimit_value(r, "soft", &soft) != 0 ||
		    rlimit_value(r, "hard", &hard) != 0)
			return -1;
		snprintf(a, sizeof(a), "%d", rlimit_resource(type));
		snprintf(b, sizeof(b), "%llu", soft);
		snprintf(c, sizeof(c), "%llu", hard);
		plan_opv(p, OP_RLIMIT, a, b, c, type, NULL);
	}
	long long v;
	int present;
	if (get_int(proc, "oomScoreAdj", INT32_MIN, INT32_MAX, &v, &present) != 0)
		return -1;
	if (present) {
		snprintf(a, sizeof(a), "%lld", v);
		plan_opv(p, OP_OOM_SCORE_ADJ, a, NULL);
	}
	json_t *per = spec_linux ? json_object_get(spec_linux, "personality") : NULL;
	if (per != NULL && !json_is_null(per)) {
		const char *domain;
		if (get_str(per, "domain", &domain) != 0)
			return -1;
		plan_opv(p, OP_LABEL, "linux.personality", NULL);
		plan_opv(p, OP_PERSONALITY, strcmp(domain, "LINUX32") == 0 ? "8" : "0", NULL);
	}
	json_t *io = json_object_get(proc, "ioPriority");
	if (io != NULL && !json_is_null(io)) {
		const char *class;
		if (get_str(io, "class", &class) != 0 || get_int(io, "priority", 0, 7, &v, NULL) != 0)
			return -1;
		int cl = strcmp(class, "IOPRIO_CLASS_RT") == 0 ? 1 : strcmp(class, "IOPRIO_CLASS_BE") == 0 ? 2 : 3;
		snprintf(a, sizeof(a), "%lld", (long long)cl << 13 | v);
		plan_opv(p, OP_LABEL, "process.ioPriority", NULL);
		plan_opv(p, OP_IO_PRIORITY, a, NULL);
	}
	const char **args, **env;
	size_t nargs, nenv;
	if (get_strs(proc, "args", &args, &nargs) != 0 || nargs == 0)
		return -1;
	plan_op(p, OP_PROC_ARGS, nargs, args, NULL);
	free(args);
	if (get_strs(proc, "env", &env, &nenv) != 0)
		return -1;
	plan_op(p, OP_PROC_ENV, nenv, env, NULL);
	free(env);

	json_t *user = json_object_get(proc, "user");
	long long uid = 0, gid = 0, umask = -1;
	int has_umask = 0;
	json_t *groups = NULL;
	if (json_is_object(user)) {
		if (get_int(user, "uid", 0, UINT32_MAX, &uid, NULL) != 0 ||
		    get_int(user, "gid", 0, UINT32_MAX, &gid, NULL) != 0 ||
		    get_int(user, "umask", 0, UINT32_MAX, &umask, &has_umask) != 0 ||
		    get_arr(user, "additionalGids", &groups) != 0)
			return -1;
	}
	size_t ngroups = groups ? json_array_size(groups) : 0;
	char **gs = calloc(ngroups + 1, sizeof(*gs));
	if (gs == NULL)
		return -1;
	for (size_t i = 0; i < ngroups; i++) {
		if (asprintf(&gs[i], "%lld", (long long)json_integer_value(json_array_get(groups, i))) < 0) {
			gs[i] = NULL;
			p->err = 1;
		}
	}
	if (!p->err)
		plan_op(p, OP_PROC_GROUPS, ngroups, (const char *const *)gs, NULL);
	for (size_t i = 0; i < ngroups; i++)
		free(gs[i]);
	free(gs);

	const char *cwd;
	int nnp;
	if (get_str(proc, "cwd", &cwd) != 0 || get_bool(proc, "noNewPrivileges", &nnp) != 0)
		return -1;
	snprintf(a, sizeof(a), "%lld", uid);
	snprintf(b, sizeof(b), "%lld", gid);
	snprintf(c, sizeof(c), "%lld", has_umask ? umask : -1);
	snprintf(d, sizeof(d), "%d", preserve_fds);
	snprintf(e, sizeof(e), "%d", fifo_fd);
	plan_opv(p, OP_PROC_CREDS, cwd, a, b, c, nnp ? "1" : "0", d, e, NULL);

	/* bounding, effective, permitted, inheritable, ambient */
	unsigned long long masks[5] = {0};
	json_t *caps = json_object_get(proc, "capabilities");
	int last = last_cap();
	for (size_t i = 0; json_is_object(caps) && i < NELEM(cap_sets); i++) {
		const char **names;
		size_t n;
		if (get_strs(caps, cap_sets[i], &names, &n) != 0)
			return -1;
		for (size_t j = 0; j < n; j++) {
			int cap = parse_cap(names[j]);
			if (cap < 0) {
				free(names);
				return -1;
			}
			/* Capabilities this kernel does not know are left out. */
			if (cap <= last)
				masks[i] |= 1ULL << cap;
		}
		free(names);
	}
	if (missing_caps(masks[1] | masks[2]))
		return -1;
	snprintf(a, sizeof(a), "%llu", masks[0]);
	snprintf(b, sizeof(b), "%llu", masks[1]);
	snprintf(c, sizeof(c), "%llu", masks[2]);
	snprintf(d, sizeof(d), "%llu", masks[3]);
	snprintf(e, sizeof(e), "%llu", masks[4]);
	snprintf(f, sizeof(f), "%d", last);
	plan_opv(p, OP_PROC_CAPS, a, b, c, d, e, f, NULL);
	if (seccomp != NULL && seccomp_len > 0) {
		const char *fields[1] = {seccomp};
		size_t lens[1] = {seccomp_len};
		plan_op(p, OP_SECCOMP, 1, fields, lens);
	}
	return p->err ? -1 : 0;
}

/* ---------- --debug ---------- */

/* debugf writes what the Go runtime's logger writes for level debug:
 * text `time="…" level=debug msg="…"` or JSON, to --log or stderr. The
 * messages are the front's own, plain ASCII without quotes. */
void debugf(const char *fmt, ...)
{
	if (!front_debug)
		return;
	char msg[512], now[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(now + n, sizeof(now) - n, ".%09ldZ", ts.tv_nsec);
	int fd = 2;
	if (front_log != NULL && (fd = open(front_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		return;
	if (front_log_json)
		dprintf(fd, "{\"level\":\"debug\",\"msg\":\"%s\",\"time\":\"%s\"}\n", msg, now);
	else
		dprintf(fd, "time=\"%s\" level=debug msg=\"%s\"\n", now, msg);
	if (fd != 2)
		close(fd);
}
