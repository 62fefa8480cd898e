/* The mount table, read once by create for the cgroup hierarchies and
 * the root filesystem's mount point (runtime/plan.go reads it the same
 * way). */
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

#include "files.h"
#include "mountinfo.h"

struct mnt *mounts;
size_t nmounts;

/* unescape_octal undoes mountinfo's \ooo escapes in place. */
static void unescape_octal(char *s)
{
	char *o = s;
	for (char *i = s; *i; i++) {
		if (i[0] == '\\' && i[1] >= '0' && i[1] <= '3' && i[2] >= '0' && i[2] <= '7' && i[3] >= '0' &&
		    i[3] <= '7') {
			*o++ = (char)((i[1] - '0') << 6 | (i[2] - '0') << 3 | (i[3] - '0'));
			i += 3;
		} else
			*o++ = *i;
	}
	*o = '\0';
}

/* read_mountinfo reads /proc/self/mountinfo once for both the cgroup
 * hierarchies and the rootfs's mount point. */
int read_mountinfo(void)
{
	size_t len;
	char *data = read_file("/proc/self/mountinfo", 64 << 20, &len);
	if (data == NULL)
		return -1;
	size_t cap = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		*sep = '\0';
		char *pre[6] = {0}, *post[3] = {0}, *s2 = NULL;
		int np = 0, nq = 0;
		for (char *f = strtok_r(line, " ", &s2); f && np < 6; f = strtok_r(NULL, " ", &s2))
			pre[np++] = f;
		s2 = NULL;
		for (char *f = strtok_r(sep + 3, " ", &s2); f && nq < 3; f = strtok_r(NULL, " ", &s2))
			post[nq++] = f;
		if (np < 5 || nq < 3)
			continue;
		if (nmounts == cap) {
			cap = cap ? cap * 2 : 64;
			struct mnt *nm = realloc(mounts, cap * sizeof(*mounts));
			if (nm == NULL)
				return -1;
			mounts = nm;
		}
		unescape_octal(pre[3]);
		unescape_octal(pre[4]);
		mounts[nmounts++] = (struct mnt){pre[3], pre[4], post[0], post[2]};
	}
	return 0;
}

/* mount_point_of is runtime.mountPointIn. */
const char *mount_point_of(const char *dir)
{
	const char *best = "/";
	for (size_t i = 0; i < nmounts; i++) {
		const char *mp = mounts[i].point;
		size_t n = strlen(mp);
		while (n > 0 && mp[n - 1] == '/')
			n--;
		int inside = strcmp(dir, mp) == 0 || (strncmp(dir, mp, n) == 0 && dir[n] == '/');
		if (inside && strlen(mp) > strlen(best))
			best = mp;
	}
	return best;
}
