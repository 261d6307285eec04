#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

void *ep_malloc(size_t n, struct ep_error *err)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		ep_error_oom(err);
	return p;
}

void *ep_calloc(size_t nmemb, size_t size, struct ep_error *err)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		ep_error_oom(err);
	return p;
}

void *ep_realloc(void *p, size_t n, struct ep_error *err)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		ep_error_oom(err);
	return q;
}

char *ep_strdup(const char *s, struct ep_error *err)
{
	char *d = strdup(s);

	if (!d)
		ep_error_oom(err);
	return d;
}

char *ep_asprintf(struct ep_error *err, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0) {
		ep_error_oom(err);
		return NULL;
	}
	return s;
}

char *ep_path_join(const char *dir, const char *name, struct ep_error *err)
{
	size_t dl = strlen(dir);

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	while (*name == '/')
		name++;
	return ep_asprintf(err, "%.*s/%s", (int)dl, dir, name);
}

int ep_write_all(int fd, const void *buf, size_t len, struct ep_error *err)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ep_error_errno(err, EP_EENV, errno, "write");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

char *ep_read_file(const char *path, size_t max, size_t *lenp, struct ep_error *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t len = 0, cap;

	if (fd < 0) {
		ep_error_errno(err, errno == ENOENT ? EP_EINVAL : EP_EENV, errno, "cannot open '%s'", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		ep_error_errno(err, EP_EENV, errno, "stat '%s'", path);
		return NULL;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
		ep_error_set(err, EP_EINVAL, "'%s' is too large (%lld bytes, limit %zu)", path,
			     (long long)st.st_size, max);
		return NULL;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	buf = ep_malloc(cap, err);
	if (!buf)
		return NULL;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb;

			if (cap > max) {
				free(buf);
				ep_error_set(err, EP_EINVAL, "'%s' is too large (limit %zu bytes)", path, max);
				return NULL;
			}
			nb = ep_realloc(buf, cap * 2, err);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			ep_error_errno(err, EP_EENV, errno, "read '%s'", path);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			ep_error_set(err, EP_EINVAL, "'%s' is too large (limit %zu bytes)", path, max);
			return NULL;
		}
	}
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

int ep_mkdir_p(const char *path, struct ep_error *err)
{
	cleanup_free char *p = ep_strdup(path, err);
	char *s;

	if (!p)
		return -1;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", p);
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", p);
	return 0;
}

int ep_fsync_dir(const char *dir, struct ep_error *err)
{
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open directory '%s'", dir);
	if (fsync(fd) < 0 && errno != EINVAL)
		return ep_error_errno(err, EP_EENV, errno, "fsync '%s'", dir);
	return 0;
}

int ep_write_file_atomic(const char *path, const void *data, size_t len, int mode,
			 struct ep_error *err)
{
	cleanup_free char *tmp = ep_asprintf(err, "%s.tmp.%ld", path, (long)getpid());
	cleanup_free char *dcopy = NULL;
	int fd;

	if (!tmp)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST) {
		unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	}
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", tmp);
	if (ep_write_all(fd, data, len, err) < 0 || fsync(fd) < 0) {
		if (err && err->code == EP_OK)
			ep_error_errno(err, EP_EENV, errno, "fsync '%s'", tmp);
		close(fd);
		unlink(tmp);
		return ep_error_wrap(err, "write '%s'", path);
	}
	if (close(fd) < 0) {
		unlink(tmp);
		return ep_error_errno(err, EP_EENV, errno, "close '%s'", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return ep_error_errno(err, EP_EENV, e, "rename '%s'", path);
	}
	dcopy = ep_strdup(path, err);
	if (!dcopy)
		return -1;
	return ep_fsync_dir(dirname(dcopy), err);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

int ep_rm_rf(const char *path, struct ep_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : ep_error_errno(err, EP_EENV, errno, "stat '%s'", path);
	if (nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return ep_error_errno(err, EP_EENV, errno, "remove '%s'", path);
	return 0;
}

int ep_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}

int ep_find_on_path(const char *bin, char *out, size_t outsz)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	struct stat st;

	if (!path || !*path)
		path = EP_DEFAULT_PATH;
	for (const char *p = path; *p;) {
		const char *e = strchrnul(p, ':');
		int n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, bin);

		if (e > p && n > 0 && (size_t)n < sizeof(buf) && stat(buf, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(buf, X_OK) == 0) {
			if (!out)
				return 0;
			if ((size_t)n < outsz) {
				memcpy(out, buf, (size_t)n + 1);
				return 0;
			}
		}
		p = *e ? e + 1 : e;
	}
	return -1;
}
