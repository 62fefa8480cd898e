/* A container's cgroups for the front's create (cgroups.c). */
#ifndef CAPSA_CGROUPS_H
#define CAPSA_CGROUPS_H

#include <jansson.h>
#include <limits.h>
#include <sys/types.h>

#include "devices_bpf.h"
#include "front.h"

/* One controller's directory ("" on a v2 host, where cgs[0] is the only
 * one). */
struct cgroup {
	char ctrl[64];
	char path[PATH_MAX];
};

extern struct cgroup cgs[MAX_CGROUPS];
extern int ncgs;
/* cgroup_v2: the host runs the unified hierarchy only. */
extern int cgroup_v2;

/* cgroup_paths is cgroups.New: the directories for linux.cgroupsPath
 * (or the id), from the mount table (read_mountinfo first). -1 hands
 * off. */
int cgroup_paths(const char *cgroups_path, const char *id);
/* check_resources accepts linux.resources the front applies. */
int check_resources(json_t *res);
/* device_rule reads a linux.resources.devices entry. */
int device_rule(json_t *d, struct dev_rule *r);
/* apply_cgroups is Manager.Apply: create, limits, device rules, pid in. */
int apply_cgroups(json_t *linux_, pid_t pid);

#endif
