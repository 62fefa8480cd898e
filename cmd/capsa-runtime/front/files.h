/* Paths and files for the front's create (files.c). */
#ifndef CAPSA_FILES_H
#define CAPSA_FILES_H

#include <stddef.h>
#include <sys/types.h>

/* clean_path is Go's path.Clean, in place. */
void clean_path(char *p);
/* join_clean is filepath.Join(a, b) for an absolute a; -1 if too long. */
int join_clean(char *out, size_t n, const char *a, const char *b);
/* write_at writes val to dir/file in one write (cgroup files). */
int write_at(const char *dir, const char *file, const char *val);
/* write_file_atomic writes a temp file beside path, then renames it. */
int write_file_atomic(const char *path, const char *data, size_t n, mode_t mode);
/* mkdir_all is os.MkdirAll. */
int mkdir_all(const char *path, mode_t mode);
/* read_file reads a file of any kind (procfs too) of at most max bytes
 * into a NUL-terminated buffer; NULL on error. */
char *read_file(const char *path, size_t max, size_t *len);
/* read_short reads a small file (a procfs or cgroup value) without its
 * trailing newlines and spaces; its length, or -1. */
int read_short(const char *path, char *buf, size_t size);

#endif
