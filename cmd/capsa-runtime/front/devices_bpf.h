/* The cgroup v2 device filter, as runtime/cgroups/devices_bpf.go makes
 * it, for the front's create. */
#ifndef CAPSA_DEVICES_BPF_H
#define CAPSA_DEVICES_BPF_H

#include <stddef.h>

/* One validated linux.resources.devices rule (cgroups.deviceRule). */
struct dev_rule {
	int allow;
	char typ;               /* 'a', 'b' or 'c' */
	long long major, minor; /* -1: any */
	char access[4];         /* "rwm" or a part of it */
};

/* attach_device_filter compiles rules (the last matching one wins, no
 * match denies), loads the program and attaches it to the cgroup dir,
 * which must have no device program yet (a new cgroup). 0 on success. */
int attach_device_filter(const char *dir, const struct dev_rule *rules, size_t n);

#endif
