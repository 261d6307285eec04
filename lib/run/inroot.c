/* lib/run/inroot.c - paths inside the container's root: every lookup goes
 * through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so an image's
 * symlinks cannot lead outside it. */
#include "run/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

/* Opens path (container-absolute) inside root_fd: symlinks are followed but
 * stay inside the root, magic links are refused. */
int ep_root_open(int root_fd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? mode : 0,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
}

/* mkdir -p of a container path inside root_fd; returns an O_PATH fd of it. */
static int root_mkdir_p(int root_fd, const char *path, struct ep_error *err)
{
	char buf[PATH_MAX];
	int fd;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return ep_error_set(err, EP_EINVAL, "path '%s' is too long", path);
	fd = ep_root_open(root_fd, buf, O_PATH | O_DIRECTORY, 0);
	if (fd >= 0)
		return fd;
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		char *slash = strrchr(buf, '/');
		const char *name = slash + 1;
		*slash = '\0';
		cleanup_close int parent =
		    ep_root_open(root_fd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY, 0);
		*slash = '/';
		if (parent < 0)
			return ep_error_errno(err, EP_EENV, errno, "open '%s' in the rootfs", buf);
		if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
			return ep_error_errno(err, EP_EENV, errno, "mkdir '%s' in the rootfs", buf);
		*p = c;
		if (!c)
			break;
	}
	fd = ep_root_open(root_fd, buf, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s' in the rootfs", path);
	return fd;
}

/* Splits a container path into a parent fd (created, inside the root) and
 * its last component. */
static int root_parent(int root_fd, const char *path, const char **base, struct ep_error *err)
{
	const char *slash = strrchr(path, '/');
	char parent[PATH_MAX];

	if (!slash || !slash[1] || strlen(path) >= sizeof(parent))
		return ep_error_set(err, EP_EINVAL, "bad container path '%s'", path);
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	*base = slash + 1;
	return root_mkdir_p(root_fd, parent[0] ? parent : "/", err);
}

/* Makes sure path is a mount target of the right kind (dir or file).  An
 * image symlink, or an entry of the other kind, is replaced: the
 * container's view changes, nothing outside the root does. */
int ep_root_target(int root_fd, const char *path, int dir, struct ep_error *err)
{
	const char *base;
	cleanup_close int pfd = root_parent(root_fd, path, &base, err);
	struct stat st;
	int fd;

	if (pfd < 0)
		return -1;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))
			return 0;
		if (unlinkat(pfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
			return ep_error_errno(err, EP_EENV, errno,
					      "cannot replace '%s' in the rootfs by a mount target",
					      path);
	} else if (errno != ENOENT) {
		return ep_error_errno(err, EP_EENV, errno, "stat '%s' in the rootfs", path);
	}
	if (dir) {
		if (mkdirat(pfd, base, 0755) < 0)
			return ep_error_errno(err, EP_EENV, errno, "mkdir '%s' in the rootfs",
					      path);
		return 0;
	}
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s' in the rootfs", path);
	close(fd);
	return 0;
}

int ep_root_symlink(int root_fd, const char *path, const char *target, struct ep_error *err)
{
	const char *base;
	cleanup_close int pfd = root_parent(root_fd, path, &base, err);
	struct stat st;

	if (pfd < 0)
		return -1;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		unlinkat(pfd, base, 0);
	if (symlinkat(target, pfd, base) < 0)
		return ep_error_errno(err, EP_EENV, errno, "symlink '%s' in the rootfs", path);
	return 0;
}

/* Reads a small file of the image (inside the root), bounded.  NULL with
 * errno ENOENT when it is missing. */
char *ep_root_read(int root_fd, const char *path, size_t max, struct ep_error *err)
{
	cleanup_close int fd = ep_root_open(root_fd, path, O_RDONLY | O_NOFOLLOW, 0);
	cleanup_free char *buf = NULL;
	size_t len = 0;
	struct stat st;

	if (fd < 0) {
		if (errno == ENOENT)
			return NULL;
		return ep_error_errno(err, EP_EENV, errno, "open '%s' in the rootfs", path), NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ep_error_set(err, EP_EINVAL, "'%s' in the image is not a regular file",
				    path),
		       NULL;
	buf = ep_malloc(max + 1, err);
	if (!buf)
		return NULL;
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ep_error_errno(err, EP_EENV, errno, "read '%s' in the rootfs", path),
			       NULL;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return ep_error_set(err, EP_EINVAL,
					    "'%s' in the image is larger than %zu bytes", path,
					    max),
			       NULL;
	}
	buf[len] = '\0';
	return steal_pointer(&buf);
}
