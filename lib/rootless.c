/* lib/rootless.c - the user namespace of a rootless run (mappings in
 * rootless.h, the why in docs/rootless.md). */
#include "rootless.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strvec.h"
#include "util.h"

#define SUBID_FILE_MAX (4u << 20)

int ep_subid_find(const char *file, const char *name, unsigned long id, unsigned long min,
		  struct ep_subid *out, struct ep_error *err)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *text = ep_read_file(file, SUBID_FILE_MAX, NULL, &e);
	char idbuf[32];

	if (!text) {
		if (e.code == EP_EENV && access(file, F_OK) < 0 && errno == ENOENT)
			return 0;
		if (access(file, F_OK) < 0)
			return 0;
		return ep_error_set(err, EP_EENV, "%s", e.msg);
	}
	snprintf(idbuf, sizeof(idbuf), "%lu", id);
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n'), *c1, *c2, *end;
		unsigned long start, count;

		if (next)
			*next++ = '\0';
		c1 = strchr(line, ':');
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c1 && c2 && line[0] != '#') {
			*c1 = '\0';
			if ((name && !strcmp(line, name)) || !strcmp(line, idbuf)) {
				errno = 0;
				start = strtoul(c1 + 1, &end, 10);
				if (!errno && end == c2) {
					count = strtoul(c2 + 1, &end, 10);
					if (!errno && (*end == '\0' || *end == '\r') &&
					    count >= min) {
						out->start = start;
						out->count = count;
						return 1;
					}
				}
			}
		}
		line = next;
	}
	return 0;
}

static int write_proc(const char *what, const char *text, struct ep_error *err)
{
	char path[64];
	int fd, rc;

	snprintf(path, sizeof(path), "/proc/self/%s", what);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", path);
	rc = ep_write_all(fd, text, strlen(text), err);
	close(fd);
	return rc;
}

static int unshare_error(struct ep_error *err, int e)
{
	if (e == ENOSPC)
		return ep_error_set(err, EP_EENV,
				    "unshare a user namespace: the limit user.max_user_namespaces "
				    "is reached (0 disables them; see envpin doctor)");
	return ep_error_errno(err, EP_EENV, e, "unshare a user namespace (see envpin doctor)");
}

/* "inside outside count" lines: `id` is the caller's own id, shown as
 * `want` inside; the rest of 0..65535 comes from the range. */
static int range_args(struct ep_strvec *a, unsigned long own, unsigned long want,
		      const struct ep_subid *r)
{
	unsigned long n = r->count < 65536 ? r->count : 65536;

	ep_strvec_pushf(a, "%lu", want);
	ep_strvec_pushf(a, "%lu", own);
	ep_strvec_push(a, "1");
	if (want > 0) {
		unsigned long below = want < n ? want : n;

		ep_strvec_push(a, "0");
		ep_strvec_pushf(a, "%lu", r->start);
		ep_strvec_pushf(a, "%lu", below);
	}
	if (want + 1 < n) {
		ep_strvec_pushf(a, "%lu", want + 1);
		ep_strvec_pushf(a, "%lu", r->start + want);
		ep_strvec_pushf(a, "%lu", n - want - 1);
	}
	return a->oom ? -1 : 0;
}

/* Runs newuidmap and newgidmap on `pid` from a child that waited for the
 * unshare; returns the child's verdict. */
static int map_with_helpers(uid_t uid, gid_t gid, struct ep_error *err)
{
	struct passwd *pw = getpwuid(getuid());
	const char *name = pw ? pw->pw_name : NULL;
	struct ep_subid su, sg;
	int p[2], st, e;
	pid_t pid, me = getpid();
	char c = 0;

	if (ep_subid_find("/etc/subuid", name, getuid(), 1, &su, err) != 1 ||
	    ep_subid_find("/etc/subgid", name, getgid(), 1, &sg, err) != 1) {
		if (err->code)
			return -1;
		return ep_error_set(
		    err, EP_EENV,
		    "running as uid %u inside needs a subordinate id range for "
		    "'%s' in /etc/subuid and /etc/subgid (usermod --add-subuids "
		    "100000-165535 --add-subgids 100000-165535 %s); see envpin doctor",
		    (unsigned)uid, name ? name : "?", name ? name : "USER");
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return ep_error_errno(err, EP_EENV, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(p[0]);
		close(p[1]);
		return ep_error_errno(err, EP_EENV, e, "fork");
	}
	if (pid == 0) {
		struct ep_strvec ua = EP_STRVEC_INIT, ga = EP_STRVEC_INIT;
		ssize_t n;
		pid_t k;

		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			_exit(3);
		ep_strvec_push(&ua, "newuidmap");
		ep_strvec_pushf(&ua, "%d", (int)me);
		ep_strvec_push(&ga, "newgidmap");
		ep_strvec_pushf(&ga, "%d", (int)me);
		if (range_args(&ua, getuid(), uid, &su) < 0 ||
		    range_args(&ga, getgid(), gid, &sg) < 0)
			_exit(4);
		k = fork();
		if (k == 0) {
			execvp(ua.v[0], ua.v);
			_exit(127);
		}
		if (k < 0 || waitpid(k, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			_exit(5);
		execvp(ga.v[0], ga.v);
		_exit(127);
	}
	close(p[0]);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		e = errno;
		close(p[1]);
		waitpid(pid, NULL, 0);
		return unshare_error(err, e);
	}
	c = 'x';
	if (write(p[1], &c, 1) != 1) {
		e = errno;
		close(p[1]);
		waitpid(pid, NULL, 0);
		return ep_error_errno(err, EP_EENV, e, "signal the id-map helper");
	}
	close(p[1]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return ep_error_errno(err, EP_EENV, errno, "wait for newuidmap");
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return ep_error_set(err, EP_EENV,
				    "newuidmap/newgidmap failed to map uid %u gid %u (exit %d; is "
				    "the 'uidmap' package installed and the range in "
				    "/etc/subuid, /etc/subgid? see envpin doctor)",
				    (unsigned)uid, (unsigned)gid,
				    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

int ep_userns_enter(uid_t uid, gid_t gid, struct ep_error *err)
{
	char map[64];

	if (uid == 0 && gid == 0) {
		uid_t ou = getuid();
		gid_t og = getgid();

		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			return unshare_error(err, errno);
		if (write_proc("setgroups", "deny", err) < 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)ou);
		if (write_proc("uid_map", map, err) < 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)og);
		return write_proc("gid_map", map, err);
	}
	if (map_with_helpers(uid, gid, err) < 0)
		return -1;
	/* root inside, so that runc keeps its capabilities across exec */
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return ep_error_errno(err, EP_EENV, errno, "become root in the user namespace");
	return 0;
}

int ep_in_userns(void)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *m = ep_read_file("/proc/self/uid_map", 4096, NULL, &e);
	unsigned long a, b, c;

	if (!m)
		return 0;
	if (sscanf(m, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295ul &&
	    !strchr(strchr(m, '\n') ? strchr(m, '\n') + 1 : "", ' '))
		return 0;
	return 1;
}

int ep_userns_probe(int *err_no)
{
	int p[2], e = 0, st;
	pid_t pid;

	*err_no = 0;
	if (pipe2(p, O_CLOEXEC) < 0) {
		*err_no = errno;
		return 0;
	}
	pid = fork();
	if (pid < 0) {
		*err_no = errno;
		close(p[0]);
		close(p[1]);
		return 0;
	}
	if (pid == 0) {
		close(p[0]);
		if (unshare(CLONE_NEWUSER) < 0)
			e = errno;
		if (write(p[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &e, sizeof(e)) != (ssize_t)sizeof(e))
		e = EIO;
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*err_no = e;
	return e == 0;
}

int ep_userns_available(void)
{
	int e;

	return ep_userns_probe(&e);
}
