/* Unit tests: what a run step's overlay upper dir becomes (ep_tree_add_upper:
 * profile rules of docs/profile-1.md "run steps"), and the link index of a
 * layer (ep_archive_links) that copy destinations are resolved with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "error.h"
#include "layer.h"
#include "sink.h"
#include "util.h"

#define SDE 1767225600 /* 2026-01-01 */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;

	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
	free(cmd);
}

/* The upper dir of a step that did what builds do. */
static void make_upper(const char *u)
{
	char *p;

	sh("set -e; export TZ=UTC; cd '%s'; mkdir -p tmp/a var/tmp var/log/apt var/cache/ldconfig "
	   "var/cache/apt/archives var/lib/dpkg usr/lib/python3/__pycache__ root/.cache/pip keep "
	   "opq run/lock; echo t > tmp/a/f; echo l > var/log/apt/history.log; "
	   "echo l > var/log/dpkg.log; echo a > var/cache/ldconfig/aux-cache; "
	   "echo d > var/cache/apt/archives/x.deb; echo b > var/cache/apt/pkgcache.bin; "
	   "echo s > var/lib/dpkg/status; echo s > var/lib/dpkg/status-old; "
	   "echo p > usr/lib/python3/__pycache__/m.cpython-311.pyc; echo py > "
	   "usr/lib/python3/m.py; "
	   "echo c > root/.cache/pip/c; echo r > run/lock/x; "
	   "echo new > keep/new; touch -d 2030-01-01 keep/new; "
	   "echo old > keep/old; touch -d 2001-02-03 keep/old; ln keep/old keep/hard; "
	   "ln -s /etc keep/etc; echo s > keep/suid; chown 12:34 keep/suid; chmod 4750 keep/suid; "
	   "mknod gone c 0 0; mkfifo keep/fifo",
	   u);
	p = NULL;
	assert_true(asprintf(&p, "%s/opq", u) > 0);
	assert_int_equal(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
	free(p);
}

static char *write_tar(struct ep_tree *t, const char *dir)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_fd_sink fs;
	char *path = NULL;
	int fd;

	assert_true(asprintf(&path, "%s/layer.tar", dir) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	ep_fd_sink_init(&fs, fd);
	if (ep_tree_write(t, &fs.base, &err) < 0)
		fail_msg("write: %s", err.msg);
	close(fd);
	return path;
}

static char *listing(const char *tar)
{
	char *cmd = NULL, *out = NULL;
	size_t cap = 0, len = 0;
	char buf[4096];
	FILE *f;
	size_t n;

	/* TZ=UTC: tar prints times in the local zone; the expected ones are UTC */
	assert_true(asprintf(&cmd, "TZ=UTC tar -tv --full-time --numeric-owner -f '%s'", tar) > 0);
	f = popen(cmd, "r");
	assert_non_null(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = 2 * (len + n + 1);
			out = realloc(out, cap);
			assert_non_null(out);
		}
		memcpy(out + len, buf, n);
		len += n;
	}
	assert_int_equal(pclose(f), 0);
	free(cmd);
	assert_non_null(out);
	out[len] = '\0';
	return out;
}

/* The line of path in a tar listing, or NULL. */
static const char *line_of(const char *list, const char *path)
{
	char *pat = NULL;
	const char *p;

	assert_true(asprintf(&pat, " %s\n", path) > 0);
	p = strstr(list, pat);
	free(pat);
	if (!p)
		return NULL;
	while (p > list && p[-1] != '\n')
		p--;
	return p;
}

static int line_has(const char *list, const char *path, const char *what)
{
	const char *l = line_of(list, path);
	const char *e = l ? strchr(l, '\n') : NULL;
	char *one;
	int r;

	if (!l)
		return 0;
	one = strndup(l, (size_t)(e - l));
	r = strstr(one, what) != NULL;
	free(one);
	return r;
}

static void test_upper_rules(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char tmpl[] = "/tmp/envpin-runstep-XXXXXX";
	char *dir, *u = NULL, *tar, *list;
	struct ep_tree *t;
	json_t *links;

	(void)state;
	if (geteuid() != 0)
		skip(); /* whiteouts (mknod), trusted.* xattrs and chown need root */
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	assert_true(asprintf(&u, "%s/upper", dir) > 0);
	assert_int_equal(mkdir(u, 0755), 0);
	make_upper(u);
	t = ep_tree_new(dir, &err);
	assert_non_null(t);
	if (ep_tree_add_upper(t, u, SDE, &err) < 0)
		fail_msg("%s", err.msg);
	tar = write_tar(t, dir);
	list = listing(tar);

	/* dropped by rule: they record when or where the step ran */
	assert_null(line_of(list, "tmp/a/f"));
	assert_null(line_of(list, "tmp/a/"));
	assert_null(line_of(list, "var/log/apt/history.log"));
	assert_null(line_of(list, "var/log/dpkg.log"));
	assert_null(line_of(list, "var/cache/ldconfig/aux-cache"));
	assert_null(line_of(list, "var/cache/apt/archives/x.deb"));
	assert_null(line_of(list, "var/cache/apt/pkgcache.bin"));
	assert_null(line_of(list, "var/lib/dpkg/status-old"));
	assert_null(line_of(list, "usr/lib/python3/__pycache__/m.cpython-311.pyc"));
	assert_null(line_of(list, "root/.cache/pip/c"));
	assert_null(line_of(list, "root/.cache/"));
	assert_null(line_of(list, "run/lock/x"));
	/* kept: the directories (packages expect them), the real content */
	assert_non_null(line_of(list, "tmp/"));
	assert_non_null(line_of(list, "var/log/apt/"));
	assert_non_null(line_of(list, "var/lib/dpkg/status"));
	assert_non_null(line_of(list, "usr/lib/python3/m.py"));
	/* metadata: modes and owners kept, mtimes clamped, links and fifos */
	assert_true(line_has(list, "keep/suid", "-rwsr-x--- 12/34"));
	assert_true(line_has(list, "keep/new", "2026-01-01 00:00:00"));
	assert_true(line_has(list, "keep/hard", "2001-02-03"));
	assert_true(line_has(list, "keep/old link to keep/hard", "2001-02-03"));
	assert_true(line_has(list, "keep/etc -> /etc", "lrwxrwxrwx 0/0"));
	assert_true(line_has(list, "keep/fifo", "prw"));
	/* deletions as OCI whiteouts */
	assert_true(line_has(list, ".wh.gone", "---------- 0/0"));
	assert_non_null(line_of(list, "opq/.wh..wh..opq"));
	assert_null(line_of(list, "gone"));

	/* the link index of that layer */
	links = ep_archive_links(tar, &err);
	if (!links)
		fail_msg("%s", err.msg);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(links, "links"), "keep/etc")),
	    "/etc");
	assert_true(json_is_true(json_object_get(json_object_get(links, "dirs"), "keep")));
	assert_true(json_is_true(json_object_get(json_object_get(links, "gone"), "gone")));
	assert_true(json_is_true(json_object_get(json_object_get(links, "opaque"), "opq")));
	assert_null(json_object_get(json_object_get(links, "dirs"), "keep/new"));
	json_decref(links);

	free(list);
	free(tar);
	ep_tree_free(t);
	sh("rm -rf '%s'", dir);
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upper_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
