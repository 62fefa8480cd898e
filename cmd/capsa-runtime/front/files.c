/* Paths and files as the Go runtime treats them (path.Clean,
 * filepath.Join, os.MkdirAll, writeFileAtomic), for the front's create. */
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
#include "front.h"

/* clean_path is Go's path.Clean for an absolute path. */
void clean_path(char *p)
{
	char *out = p, *in = p;
	int rooted = *in == '/';
	if (rooted) {
		out++;
		in++;
	}
	char *start = out;
	while (*in) {
		if (*in == '/') {
			in++;
		} else if (in[0] == '.' && (in[1] == '/' || in[1] == '\0')) {
			in++;
		} else if (in[0] == '.' && in[1] == '.' && (in[2] == '/' || in[2] == '\0')) {
			in += 2;
			if (out > start) {
				out--;
				while (out > start && out[-1] != '/')
					out--;
				if (out > start)
					out--;
			} else if (!rooted) {
				if (out != p)
					*out++ = '/';
				*out++ = '.';
				*out++ = '.';
				start = out;
			}
		} else {
			if ((rooted && out != p + 1) || (!rooted && out != p))
				*out++ = '/';
			while (*in && *in != '/')
				*out++ = *in++;
		}
	}
	if (out == p)
		*out++ = '.';
	*out = '\0';
}

/* join_clean is filepath.Join(a, b) for an absolute a. */
int join_clean(char *out, size_t n, const char *a, const char *b)
{
	if ((size_t)snprintf(out, n, "%s/%s", a, b) >= n)
		return -1;
	clean_path(out);
	return 0;
}


/* write_at writes a cgroup file as cgroups.writeFile does (one write). */
int write_at(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -1;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write_all(fd, val, strlen(val));
	if (close(fd) != 0)
		r = -1;
	return r;
}

/* write_file_atomic is runtime.writeFileAtomic: a temp file beside path,
 * then rename. */
int write_file_atomic(const char *path, const char *data, size_t n, mode_t mode)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (slash == NULL ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmpXXXXXX", (int)(slash - path), path, slash + 1) >=
		    sizeof(tmp))
		return -1;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write_all(fd, data, n);
	if (r == 0)
		r = fchmod(fd, mode);
	if (close(fd) != 0)
		r = -1;
	if (r == 0)
		r = rename(tmp, path);
	if (r != 0)
		unlink(tmp);
	return r;
}

/* mkdir_all is os.MkdirAll. */
int mkdir_all(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof(p), "%s", path) >= sizeof(p))
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(p, mode) != 0 && errno != EEXIST)
		return -1;
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

char *read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 8192, n = 0;
	char *b = malloc(cap);
	while (b != NULL) {
		if (n + 1 >= cap) {
			if (cap > max) {
				free(b);
				b = NULL;
				break;
			}
			cap *= 2;
			char *nb = realloc(b, cap);
			if (nb == NULL) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
		}
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(b);
			b = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (b != NULL) {
		if (n > max) {
			free(b);
			return NULL;
		}
		b[n] = '\0';
		*len = n;
	}
	return b;
}

/* read_short reads a small file (a procfs or cgroup value) into buf,
 * without its trailing newlines and spaces; its length, or -1. */
int read_short(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return (int)n;
}
