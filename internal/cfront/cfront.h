#include <stddef.h>

/* cfront_plan reads a config as the front's create does and, when the
 * front would do the create itself, returns the plan it would send the
 * init (malloc'd) and 0; -1 when it would hand off. */
int cfront_plan(const char *config, size_t len, const char *bundle, int pid, char **out, size_t *outlen);

#include "devices_bpf.h"

/* cfront_device_filter returns the cgroup v2 device program the front
 * loads for rules, as struct bpf_insn bytes (malloc'd); 0 or -1. */
int cfront_device_filter(const struct dev_rule *rules, size_t n, char **out, size_t *outlen);
