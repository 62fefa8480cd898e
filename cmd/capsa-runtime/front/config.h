/* What the front's create and exec share: reading a config with the Go
 * runtime's semantics (or giving up), and encoding the C init's plan
 * (runtime/plan.go has the format and the operation codes). */
#ifndef CAPSA_CONFIG_H
#define CAPSA_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#include "plan.h"

/* A plan being encoded. err is set (and further ops are dropped) when a
 * field holds a NUL byte or an op has too many fields: the caller then
 * hands off, and the Go runtime words the error. */
struct plan {
	char *b;
	size_t len, cap;
	int err;
};

void plan_init(struct plan *p);
void plan_free(struct plan *p);
/* plan_op adds an operation with n fields of the given lengths (lens may
 * be NULL for C strings). */
void plan_op(struct plan *p, int code, size_t n, const char *const *fields, const size_t *lens);
/* plan_opv adds an operation whose fields are the C strings that follow,
 * up to a NULL. */
void plan_opv(struct plan *p, int code, ...);

/* Walking a decoded config the way the Go runtime decodes it
 * (encoding/json v1 semantics), or saying that the front cannot be sure:
 * every function returns 0 on success and -1 for "hand off". */

/* check_keys accepts an object whose names are either exactly one of
 * known (NULL-terminated) or unknown to the Go types (ignored by both). A
 * name that matches a known one only case-insensitively (encoding/json
 * would use it), or that is not ASCII (Unicode case folding), makes the
 * front hand off. */
int check_keys(json_t *obj, const char *const *known);
/* absent: the member is missing or null (or, for an object that the front
 * does not interpret, that it must not be present at all). */
int absent(json_t *obj, const char *key);
/* get_str sets *out to a string member ("" when missing or null). */
int get_str(json_t *obj, const char *key, const char **out);
/* get_bool sets *out to a bool member (0 when missing or null). */
int get_bool(json_t *obj, const char *key, int *out);
/* get_int sets *out to an integer member within [min, max]; *present
 * says whether it was there (not null). */
int get_int(json_t *obj, const char *key, long long min, long long max, long long *out, int *present);
/* get_strs sets *out to a member's string list (NULL and 0 when missing
 * or null); the strings live as long as the document. */
int get_strs(json_t *obj, const char *key, const char ***out, size_t *n);
/* get_obj / get_arr set *out to an object / array member, or NULL. */
int get_obj(json_t *obj, const char *key, json_t **out);
int get_arr(json_t *obj, const char *key, json_t **out);

/* The process part of a plan (runtime.planProcess) for a process object
 * that check_process accepted. spec_linux may be NULL (exec of a
 * container without personality). seccomp may be NULL. */
int check_process(json_t *proc);
int plan_process(struct plan *p, json_t *proc, json_t *spec_linux, int preserve_fds, int fifo_fd,
		 const char *seccomp, size_t seccomp_len);

/* debugf writes a --debug line as the Go runtime's Debugf does, when
 * debugging is on (front_debug). */
extern int front_debug;
extern const char *front_log;
extern int front_log_json;
void debugf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
