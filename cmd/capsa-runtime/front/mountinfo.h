/* /proc/self/mountinfo for the front's create (mountinfo.c). */
#ifndef CAPSA_MOUNTINFO_H
#define CAPSA_MOUNTINFO_H

#include <stddef.h>

/* One mount: its root in the filesystem, mount point, type and super
 * options, unescaped. */
struct mnt {
	char *root, *point, *fstype, *super;
};

extern struct mnt *mounts;
extern size_t nmounts;

/* read_mountinfo fills mounts once; 0 or -1. */
int read_mountinfo(void);
/* mount_point_of is runtime.mountPointIn: the mount point dir is on. */
const char *mount_point_of(const char *dir);

#endif
