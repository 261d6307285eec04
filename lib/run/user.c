/* lib/run/user.c - what the user and the image name: container paths,
 * -v volumes and the user (resolved in the image's /etc/passwd and
 * /etc/group, read as data inside the root). */
#include "runtime.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/internal.h"
#include "util.h"

#define PASSWD_MAX (1u << 20) /* cap on the image's /etc/passwd and /etc/group */

int ep_runtime_check_cpath(const char *path, const char *what, struct ep_error *err)
{
	size_t len = strlen(path);
	const char *p;

	if (path[0] != '/')
		return ep_error_set(err, EP_EINVAL, "%s '%s' is not an absolute path", what, path);
	if (len >= PATH_MAX)
		return ep_error_set(err, EP_EINVAL, "%s is longer than %d bytes", what,
				    PATH_MAX - 1);
	if (len > 1 && path[len - 1] == '/')
		return ep_error_set(err, EP_EINVAL, "%s '%s' ends with '/'", what, path);
	for (p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ep_error_set(err, EP_EINVAL, "%s has a control character", what);
	for (p = path; *p;) {
		const char *c = p + 1, *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);

		if (len > 1 && n == 0)
			return ep_error_set(err, EP_EINVAL, "%s '%s' has an empty component", what,
					    path);
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return ep_error_set(err, EP_EINVAL, "%s '%s' has a '.' or '..' component",
					    what, path);
		p = e;
	}
	/* runc CVE-2024-21626: a cwd like /proc/self/fd/N reached the host. */
	if (!strcmp(path, "/proc") || !strncmp(path, "/proc/", 6))
		return ep_error_set(err, EP_EINVAL, "%s '%s' is inside /proc", what, path);
	return 0;
}

static int parse_id(const char *s, size_t n, unsigned long *out)
{
	char *end;
	char tmp[16];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)tmp[i]))
			return -1;
	errno = 0;
	*out = strtoul(tmp, &end, 10);
	return errno || *out > 0x7fffffffUL ? -1 : 0;
}

/* Finds NAME (or numeric id) in a colon file: field 0 name, 2 id, 3 gid or
 * member list.  Fills fields[] (pointers into the line). */
static int colon_lookup(char *text, const char *key, int by_id, char *fields[7], int nf)
{
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		int n = 0;

		if (next)
			*next++ = '\0';
		for (char *p = line; n < nf; n++) {
			fields[n] = p;
			p = strchr(p, ':');
			if (!p) {
				n++;
				break;
			}
			*p++ = '\0';
		}
		if (n >= 3 && !strcmp(by_id ? fields[2] : fields[0], key))
			return n;
		line = next;
	}
	return -1;
}

int ep_runtime_user(int root_fd, const char *spec, uid_t *uid, gid_t *gid, gid_t **extra,
		    size_t *n_extra, struct ep_error *err)
{
	cleanup_free char *passwd = NULL, *group = NULL, *user = NULL;
	const char *colon;
	char *f[7];
	unsigned long u, g;
	int have_group = 0, uid_numeric;
	const char *uname = NULL;

	*uid = 0;
	*gid = 0;
	if (extra)
		*extra = NULL;
	if (n_extra)
		*n_extra = 0;
	if (!spec || !*spec)
		return 0;
	if (strlen(spec) > 256)
		return ep_error_set(err, EP_EINVAL, "user '%.40s...' is too long", spec);
	colon = strchr(spec, ':');
	user = colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
	if (!user)
		return ep_error_oom(err);
	if (!*user)
		return ep_error_set(err, EP_EINVAL, "user '%s' has no name or uid", spec);
	uid_numeric = parse_id(user, strlen(user), &u) == 0;
	passwd = ep_root_read(root_fd, "/etc/passwd", PASSWD_MAX, err);
	if (!passwd && err->code)
		return -1;
	if (uid_numeric) {
		*uid = (uid_t)u;
		if (passwd && colon_lookup(passwd, user, 1, f, 7) >= 4 &&
		    parse_id(f[3], strlen(f[3]), &g) == 0) {
			*gid = (gid_t)g;
			uname = f[0];
		}
	} else {
		if (!passwd || colon_lookup(passwd, user, 0, f, 7) < 4 ||
		    parse_id(f[2], strlen(f[2]), &u) < 0 || parse_id(f[3], strlen(f[3]), &g) < 0)
			return ep_error_set(err, EP_EINVAL,
					    "user '%s' is not in the image's /etc/passwd", user);
		*uid = (uid_t)u;
		*gid = (gid_t)g;
		uname = f[0];
	}
	if (colon) {
		const char *gs = colon + 1;

		if (parse_id(gs, strlen(gs), &g) == 0) {
			*gid = (gid_t)g;
		} else {
			group = ep_root_read(root_fd, "/etc/group", PASSWD_MAX, err);
			if (!group && err->code)
				return -1;
			if (!group || colon_lookup(group, gs, 0, f, 4) < 3 ||
			    parse_id(f[2], strlen(f[2]), &g) < 0)
				return ep_error_set(err, EP_EINVAL,
						    "group '%s' is not in the image's /etc/group",
						    gs);
			*gid = (gid_t)g;
		}
		have_group = 1;
	}
	/* Supplementary groups: only when the group was not given, like docker. */
	if (!have_group && uname && extra && n_extra) {
		cleanup_free char *uname_copy = strdup(uname);
		cleanup_free gid_t *list = NULL;
		size_t n = 0;

		if (!uname_copy)
			return ep_error_oom(err);
		group = ep_root_read(root_fd, "/etc/group", PASSWD_MAX, err);
		if (!group && err->code)
			return -1;
		for (char *line = group; line && *line;) {
			char *next = strchr(line, '\n');
			char *gf[4];
			int k = 0;

			if (next)
				*next++ = '\0';
			for (char *p = line; k < 4; k++) {
				gf[k] = p;
				p = strchr(p, ':');
				if (!p) {
					k++;
					break;
				}
				*p++ = '\0';
			}
			if (k == 4 && parse_id(gf[2], strlen(gf[2]), &g) == 0 && (gid_t)g != *gid) {
				char *save = NULL;
				for (char *m = strtok_r(gf[3], ",", &save); m;
				     m = strtok_r(NULL, ",", &save))
					if (!strcmp(m, uname_copy) && n < 64) {
						gid_t *nl =
						    ep_realloc(list, (n + 1) * sizeof(*nl), err);
						if (!nl)
							return -1;
						list = nl;
						list[n++] = (gid_t)g;
					}
			}
			line = next;
		}
		*extra = steal_pointer(&list);
		*n_extra = n;
	}
	return 0;
}

int ep_runtime_volume(const char *spec, struct ep_volume *v, struct ep_error *err)
{
	const char *c1 = strchr(spec, ':'), *c2;
	cleanup_free char *src = NULL, *dst = NULL;
	size_t dl;
	int ro = 0;

	memset(v, 0, sizeof(*v));
	if (!c1 || c1 == spec)
		return ep_error_set(err, EP_EINVAL, "volume '%s' is not SRC:DST[:ro]", spec);
	c2 = strchr(c1 + 1, ':');
	dl = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	if (c2) {
		if (!strcmp(c2 + 1, "ro"))
			ro = 1;
		else if (strcmp(c2 + 1, "rw"))
			return ep_error_set(err, EP_EINVAL,
					    "volume '%s': option '%s' is not ro or rw", spec,
					    c2 + 1);
	}
	if (dl == 0)
		return ep_error_set(err, EP_EINVAL, "volume '%s' has no destination", spec);
	dst = strndup(c1 + 1, dl);
	if (!dst)
		return ep_error_oom(err);
	if (ep_runtime_check_cpath(dst, "volume destination", err) < 0)
		return -1;
	if (!strcmp(dst, "/"))
		return ep_error_set(err, EP_EINVAL, "volume '%s' would replace the container root",
				    spec);
	src = strndup(spec, (size_t)(c1 - spec));
	if (!src)
		return ep_error_oom(err);
	v->src = realpath(src, NULL);
	if (!v->src)
		return ep_error_errno(err, EP_EINVAL, errno, "volume source '%s'", src);
	v->dst = steal_pointer(&dst);
	v->ro = ro;
	return 0;
}

void ep_volume_release(struct ep_volume *v)
{
	free(v->src);
	free(v->dst);
	memset(v, 0, sizeof(*v));
}
