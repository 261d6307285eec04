/* lib/util.h - small helpers shared by every module: cleanup attributes
 * (crun's habit), ownership hand-off, and checked string helpers. */
#ifndef EP_UTIL_H
#define EP_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"

static inline void ep_freep(void *p)
{
	free(*(void **)p);
}
static inline void ep_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void ep_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void ep_json_decrefp(json_t **j)
{
	json_decref(*j);
}

#define cleanup_free __attribute__((cleanup(ep_freep)))
#define cleanup_close __attribute__((cleanup(ep_closep)))
#define cleanup_file __attribute__((cleanup(ep_fclosep)))
#define cleanup_json __attribute__((cleanup(ep_json_decrefp)))

/* Returns *pp and sets *pp to NULL: hands ownership out of a cleanup_ var. */
static inline void *ep_steal(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) ep_steal(pp)

/* Returns the fd and sets *fdp to -1. */
static inline int ep_steal_fd(int *fdp)
{
	int fd = *fdp;
	*fdp = -1;
	return fd;
}

#define EP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocating helpers: NULL + err on failure.  Caller frees. */
void *ep_malloc(size_t n, struct ep_error *err);
void *ep_calloc(size_t nmemb, size_t size, struct ep_error *err);
void *ep_realloc(void *p, size_t n, struct ep_error *err);
char *ep_strdup(const char *s, struct ep_error *err);
char *ep_asprintf(struct ep_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Joins dir and name with one '/'; caller frees. */
char *ep_path_join(const char *dir, const char *name, struct ep_error *err);

/* Writes all of buf to fd, retrying on EINTR and short writes. */
int ep_write_all(int fd, const void *buf, size_t len, struct ep_error *err);

/* Reads a whole file into a NUL-terminated malloc'ed buffer, refusing files
 * larger than max bytes.  *len gets the size (may be NULL). */
char *ep_read_file(const char *path, size_t max, size_t *len, struct ep_error *err);

/* Creates dir and its parents with mode 0755 (existing dirs are fine). */
int ep_mkdir_p(const char *path, struct ep_error *err);

/* Atomically replaces path with data: temp file in the same directory
 * (O_EXCL), write, fsync, rename, fsync the directory. */
int ep_write_file_atomic(const char *path, const void *data, size_t len, int mode,
			 struct ep_error *err);

/* fsyncs the directory that contains path (or path itself if it is a dir). */
int ep_fsync_dir(const char *dir, struct ep_error *err);

/* Removes a tree (no symlink following).  Missing path is not an error. */
int ep_rm_rf(const char *path, struct ep_error *err);

/* Number of online CPUs, at least 1. */
int ep_ncpu(void);

/* PATH when the environment has none (or an empty one). */
#define EP_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The program execvp would start for bin (no '/'): the first executable
 * regular file bin in $PATH (EP_DEFAULT_PATH when unset), its path in out
 * (out may be NULL).  0, or -1 when there is none. */
int ep_find_on_path(const char *bin, char *out, size_t outsz);

#endif
