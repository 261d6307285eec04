/* Unit tests: lib/layer.  Trees are written to memory and listed back with
 * libarchive, an independent reader; archives to import are made by GNU tar
 * (and, for hostile entries no tool would write, by lib/tar). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "layer.h"
#include "sink.h"
#include "tar.h"
#include "util.h"

#define SDE 1767225600 /* 2026-01-01T00:00:00Z */
#define GOLDEN_SHA256 "sha256:c78f18187f5ea12cdef1146e2d2815001e2fd0f37529dea83fe62bc6d8cf2a0b"

static const struct ep_copy_opts def_opts = {.mode = -1, .uid = 0, .gid = 0, .mtime = SDE};

static char *mkdir_tmp(void)
{
	char *d = strdup("/tmp/ep-layer-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_tmp(char *d)
{
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(ep_rm_rf(d, &err), 0);
	free(d);
}

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	return s;
}

static void put_file(const char *dir, const char *name, const char *data, mode_t mode)
{
	char *p = pathf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	free(p);
}

static void put_dir(const char *dir, const char *name, mode_t mode)
{
	char *p = pathf("%s/%s", dir, name);

	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void put_link(const char *dir, const char *name, const char *target)
{
	char *p = pathf("%s/%s", dir, name);

	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static void put_hardlink(const char *dir, const char *from, const char *name)
{
	char *a = pathf("%s/%s", dir, from), *b = pathf("%s/%s", dir, name);

	assert_int_equal(link(a, b), 0);
	free(a);
	free(b);
}

static void set_mtime(const char *dir, const char *name, time_t t)
{
	char *p = pathf("%s/%s", dir, name);
	struct timespec ts[2] = {{t, 0}, {t, 0}};

	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	free(p);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;

	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* Writes the tree; returns the tar bytes (caller frees) and its digest. */
static char *write_tree(struct ep_tree *t, size_t *len, ep_digest d)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_mem_sink m;
	struct ep_hash_sink h;
	char *data;

	ep_mem_sink_init(&m, 64 << 20);
	assert_int_equal(ep_hash_sink_init(&h, &m.base, &err), 0);
	if (ep_tree_write(t, &h.base, &err) < 0)
		fail_msg("write: %s", err.msg);
	if (d)
		strcpy(d, h.digest);
	*len = m.len;
	data = steal_pointer(&m.data);
	ep_sink_release(&h.base);
	ep_sink_release(&m.base);
	return data;
}

/* One line per entry: "path type mode uid/gid mtime size[ -> link][ => hardlink] [xN]". */
static char *list_tar(const char *buf, size_t len)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	char *out = calloc(1, 1);
	size_t ol = 0;

	assert_non_null(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		char line[8192], typ;
		mode_t ft = archive_entry_filetype(ae);
		const char *sl = archive_entry_symlink(ae), *hl = archive_entry_hardlink(ae);
		int n;

		typ = hl ? 'h' : ft == AE_IFREG ? 'f' : ft == AE_IFDIR ? 'd' : ft == AE_IFLNK ? 'l'
			: ft == AE_IFCHR ? 'c' : ft == AE_IFBLK ? 'b' : ft == AE_IFIFO ? 'p' : '?';
		n = snprintf(line, sizeof(line), "%s %c %04o %lld/%lld %lld %lld%s%s%s%s",
			     archive_entry_pathname(ae), typ, (unsigned)archive_entry_perm(ae),
			     (long long)archive_entry_uid(ae), (long long)archive_entry_gid(ae),
			     (long long)archive_entry_mtime(ae), (long long)archive_entry_size(ae),
			     sl ? " -> " : "", sl ? sl : "", hl ? " => " : "", hl ? hl : "");
		if (ft == AE_IFCHR || ft == AE_IFBLK)
			n += snprintf(line + n, sizeof(line) - n, " %u,%u",
				      (unsigned)archive_entry_rdevmajor(ae),
				      (unsigned)archive_entry_rdevminor(ae));
		if (archive_entry_xattr_count(ae)) {
			const char *xn;
			const void *xv;
			size_t xl;

			archive_entry_xattr_reset(ae);
			while (archive_entry_xattr_next(ae, &xn, &xv, &xl) == ARCHIVE_OK)
				n += snprintf(line + n, sizeof(line) - n, " x:%s:%zu", xn, xl);
		}
		if (archive_entry_size(ae) > 0 && archive_entry_size(ae) < 64) {
			char d[64] = {0};

			assert_int_equal(archive_read_data(a, d, sizeof(d) - 1),
					 archive_entry_size(ae));
			for (char *p = d; *p; p++)
				if (*p == '\n')
					*p = '|';
			n += snprintf(line + n, sizeof(line) - n, " [%s]", d);
		}
		out = realloc(out, ol + (size_t)n + 2);
		assert_non_null(out);
		memcpy(out + ol, line, (size_t)n);
		ol += (size_t)n;
		out[ol++] = '\n';
		out[ol] = '\0';
	}
	archive_read_free(a);
	return out;
}

static char *list_tree(struct ep_tree *t)
{
	size_t len;
	char *buf = write_tree(t, &len, NULL), *l;

	l = list_tar(buf, len);
	free(buf);
	return l;
}

static struct ep_tree *new_tree(void)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_tree *t = ep_tree_new(NULL, &err);

	assert_non_null(t);
	return t;
}

static void copy_ok(struct ep_tree *t, const char *src, const char *dest,
		    const struct ep_copy_opts *o)
{
	struct ep_error err = EP_ERROR_INIT;

	if (ep_tree_add_copy(t, src, dest, o, &err) < 0)
		fail_msg("copy: %s", err.msg);
}

static void archive_ok(struct ep_tree *t, const char *ar, const char *dest, int64_t clamp)
{
	struct ep_error err = EP_ERROR_INIT;

	if (ep_tree_add_archive(t, ar, dest, clamp, &err) < 0)
		fail_msg("archive: %s", err.msg);
}

/* The same content, made in another order, at other times, under another
 * umask, in another directory, gives the same bytes. */
static void make_variant(const char *d, int reverse, time_t when)
{
	mode_t old = umask(reverse ? 077 : 022);

	if (!reverse) {
		put_dir(d, "sub", 0755);
		put_file(d, "sub/z", "zzz\n", 0644);
		put_file(d, "a", "aaa\n", 0644);
		put_file(d, "run.sh", "#!/bin/sh\n", 0755);
		put_link(d, "ln", "a");
	} else {
		put_link(d, "ln", "a");
		put_file(d, "run.sh", "#!/bin/sh\n", 0700);
		put_file(d, "a", "aaa\n", 0600);
		put_dir(d, "sub", 0700);
		put_file(d, "sub/z", "zzz\n", 0400);
	}
	umask(old);
	set_mtime(d, "a", when);
	set_mtime(d, "sub/z", when + 7);
	set_mtime(d, "ln", when + 3);
}

static void test_order_independent(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *d1 = mkdir_tmp(), *d2 = mkdir_tmp();
	struct ep_tree *t1 = new_tree(), *t2 = new_tree();
	ep_digest g1, g2, s1, s2, c1, c2;
	size_t l1, l2;
	char *b1, *b2, *l;

	(void)state;
	make_variant(d1, 0, 1000000);
	make_variant(d2, 1, 2000000000);
	copy_ok(t1, d1, "/app/", &def_opts);
	copy_ok(t2, d2, "/app/", &def_opts);
	b1 = write_tree(t1, &l1, g1);
	b2 = write_tree(t2, &l2, g2);
	assert_string_equal(g1, g2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	l = list_tar(b1, l1);
	assert_string_equal(l, "app/ d 0755 0/0 1767225600 0\n"
			       "app/a f 0644 0/0 1767225600 4 [aaa|]\n"
			       "app/ln l 0777 0/0 1767225600 0 -> a\n"
			       "app/run.sh f 0755 0/0 1767225600 10 [#!/bin/sh|]\n"
			       "app/sub/ d 0755 0/0 1767225600 0\n"
			       "app/sub/z f 0644 0/0 1767225600 4 [zzz|]\n");
	/* the content key agrees, the stat key sees two different inodes */
	assert_int_equal(ep_tree_content_key(t1, c1, &err), 0);
	assert_int_equal(ep_tree_content_key(t2, c2, &err), 0);
	assert_string_equal(c1, c2);
	assert_int_equal(ep_tree_stat_key(t1, s1, &err), 0);
	assert_int_equal(ep_tree_stat_key(t2, s2, &err), 0);
	assert_string_not_equal(s1, s2);
	assert_string_not_equal(s1, c1);
	free(l);
	free(b1);
	free(b2);
	ep_tree_free(t1);
	ep_tree_free(t2);
	rm_tmp(d1);
	rm_tmp(d2);
}

static void test_keys_track_changes(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *d = mkdir_tmp();
	struct ep_tree *t = new_tree();
	ep_digest s1, s2, c1, c2;

	(void)state;
	put_file(d, "f", "one\n", 0644);
	copy_ok(t, d, "/x", &def_opts);
	assert_int_equal(ep_tree_stat_key(t, s1, &err), 0);
	assert_int_equal(ep_tree_content_key(t, c1, &err), 0);
	ep_tree_free(t);
	/* same size, new content and a new mtime */
	put_file(d, "f", "two\n", 0644);
	set_mtime(d, "f", 12345);
	t = new_tree();
	copy_ok(t, d, "/x", &def_opts);
	assert_int_equal(ep_tree_stat_key(t, s2, &err), 0);
	assert_int_equal(ep_tree_content_key(t, c2, &err), 0);
	assert_string_not_equal(s1, s2);
	assert_string_not_equal(c1, c2);
	ep_tree_free(t);
	rm_tmp(d);
}

static void test_exec_bit_and_mode(void **state)
{
	char *d = mkdir_tmp(), *l, *p;
	struct ep_tree *t = new_tree();
	struct ep_copy_opts o = {.mode = 0640, .uid = 1000, .gid = 100, .mtime = SDE};

	(void)state;
	put_dir(d, "src", 0700);
	put_file(d, "src/x", "x", 0700);
	put_file(d, "src/gx", "g", 0610); /* group exec only: still executable */
	put_file(d, "src/r", "r", 0600);
	put_file(d, "src/w", "w", 0666);
	put_file(d, "m", "m", 0777);
	copy_ok(t, p = pathf("%s/src", d), "/s", &def_opts);
	free(p);
	copy_ok(t, p = pathf("%s/m", d), "/opt/m/", &o);
	free(p);
	l = list_tree(t);
	assert_string_equal(l, "opt/ d 0755 0/0 1767225600 0\n"
			       "opt/m/ d 0755 0/0 1767225600 0\n"
			       "opt/m/m f 0640 1000/100 1767225600 1 [m]\n"
			       "s/ d 0755 0/0 1767225600 0\n"
			       "s/gx f 0755 0/0 1767225600 1 [g]\n"
			       "s/r f 0644 0/0 1767225600 1 [r]\n"
			       "s/w f 0644 0/0 1767225600 1 [w]\n"
			       "s/x f 0755 0/0 1767225600 1 [x]\n");
	free(l);
	ep_tree_free(t);
	rm_tmp(d);
}

static void test_hardlink_first_path(void **state)
{
	char *d = mkdir_tmp(), *l;
	struct ep_tree *t = new_tree();

	(void)state;
	put_dir(d, "z", 0755);
	put_file(d, "z/orig", "data\n", 0644);
	put_hardlink(d, "z/orig", "b");
	put_hardlink(d, "z/orig", "a");
	put_file(d, "single", "s", 0644);
	copy_ok(t, d, "/", &def_opts);
	l = list_tree(t);
	/* "a" sorts first: it holds the data, the others link to it */
	assert_string_equal(l, "a f 0644 0/0 1767225600 5 [data|]\n"
			       "b h 0644 0/0 1767225600 0 => a\n"
			       "single f 0644 0/0 1767225600 1 [s]\n"
			       "z/ d 0755 0/0 1767225600 0\n"
			       "z/orig h 0644 0/0 1767225600 0 => a\n");
	free(l);
	ep_tree_free(t);
	rm_tmp(d);
}

static void test_symlink_not_followed(void **state)
{
	char *d = mkdir_tmp(), *l, *p;
	struct ep_tree *t = new_tree();

	(void)state;
	put_dir(d, "src", 0755);
	put_link(d, "src/etc", "/etc");
	put_link(d, "src/up", "../outside");
	put_link(d, "top", "src");
	copy_ok(t, p = pathf("%s/src", d), "/r", &def_opts);
	free(p);
	copy_ok(t, p = pathf("%s/top", d), "/t", &def_opts);
	free(p);
	l = list_tree(t);
	assert_string_equal(l, "r/ d 0755 0/0 1767225600 0\n"
			       "r/etc l 0777 0/0 1767225600 0 -> /etc\n"
			       "r/up l 0777 0/0 1767225600 0 -> ../outside\n"
			       "t l 0777 0/0 1767225600 0 -> src\n");
	free(l);
	ep_tree_free(t);
	rm_tmp(d);
}

static void test_dest_semantics(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *d = mkdir_tmp(), *l, *p;
	struct ep_tree *t = new_tree();
	struct ep_copy_opts o = def_opts;

	(void)state;
	o.uid = 1000;
	o.gid = 1000;
	put_file(d, "f.txt", "f", 0644);
	put_dir(d, "payload", 0755);
	put_file(d, "payload/in", "i", 0644);
	copy_ok(t, p = pathf("%s/f.txt", d), "/opt/dir/", &o); /* into a directory */
	free(p);
	copy_ok(t, p = pathf("%s/f.txt", d), "/opt/renamed", &o); /* to a name */
	free(p);
	copy_ok(t, p = pathf("%s/payload/", d), "/srv/p", &o); /* contents of a dir */
	free(p);
	copy_ok(t, p = pathf("%s/payload", d), "/", &o); /* contents into the root */
	free(p);
	l = list_tree(t);
	assert_string_equal(l, "in f 0644 1000/1000 1767225600 1 [i]\n"
			       "opt/ d 0755 0/0 1767225600 0\n"
			       "opt/dir/ d 0755 0/0 1767225600 0\n"
			       "opt/dir/f.txt f 0644 1000/1000 1767225600 1 [f]\n"
			       "opt/renamed f 0644 1000/1000 1767225600 1 [f]\n"
			       "srv/ d 0755 0/0 1767225600 0\n"
			       "srv/p/ d 0755 1000/1000 1767225600 0\n"
			       "srv/p/in f 0644 1000/1000 1767225600 1 [i]\n");
	free(l);
	assert_int_equal(ep_tree_count(t), 8);
	/* a destination that leaves the root, a parent that is a file */
	assert_int_equal(ep_tree_add_copy(t, d, "/../x", &o, &err), -1);
	assert_non_null(strstr(err.msg, "'/../x' leaves the root"));
	p = pathf("%s/f.txt", d);
	assert_int_equal(ep_tree_add_copy(t, p, "/opt/renamed/sub/", &o, &err), -1);
	assert_non_null(strstr(err.msg, "parent 'opt/renamed' is not a directory"));
	free(p);
	ep_tree_free(t);
	rm_tmp(d);
}

static void test_special_files_refused(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *d = mkdir_tmp(), *p;
	struct ep_tree *t = new_tree();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	(void)state;
	put_dir(d, "a", 0755);
	p = pathf("%s/a/sock", d);
	assert_true(strlen(p) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, p);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	assert_int_equal(ep_tree_add_copy(t, d, "/x", &def_opts, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, "is a socket"));
	free(p);
	p = pathf("%s/fifo", d);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_int_equal(ep_tree_add_copy(t, p, "/y", &def_opts, &err), -1);
	assert_non_null(strstr(err.msg, "is a fifo"));
	free(p);
	ep_tree_free(t);
	rm_tmp(d);
}

static void test_changed_file(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *d = mkdir_tmp(), *p;
	struct ep_tree *t = new_tree();
	struct ep_mem_sink m;

	(void)state;
	put_file(d, "f", "short", 0644);
	copy_ok(t, p = pathf("%s/f", d), "/f", &def_opts);
	put_file(d, "f", "longer now", 0644);
	ep_mem_sink_init(&m, 1 << 20);
	assert_int_equal(ep_tree_write(t, &m.base, &err), -1);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, "changed since it was added"));
	ep_sink_release(&m.base);
	/* replaced by a symlink: O_NOFOLLOW refuses to read through it */
	unlink(p);
	put_link(d, "f", "/etc/passwd");
	ep_mem_sink_init(&m, 1 << 20);
	assert_int_equal(ep_tree_write(t, &m.base, &err), -1);
	assert_non_null(strstr(err.msg, p));
	ep_sink_release(&m.base);
	free(p);
	ep_tree_free(t);
	rm_tmp(d);
}

/* An archive from GNU tar: "./" names, unsorted, owners and modes kept,
 * future mtimes clamped, a hardlink whose data sits on the later name. */
static void test_archive_gnu(void **state)
{
	char *d = mkdir_tmp(), *l, *ar;
	struct ep_tree *t = new_tree();

	(void)state;
	put_dir(d, "src", 0755);
	put_dir(d, "src/c", 0750);
	put_file(d, "src/c/x", "x\n", 0600);
	put_file(d, "src/z", "zz\n", 04755);
	put_hardlink(d, "src/z", "src/a");
	put_file(d, "src/old", "o", 0644);
	put_link(d, "src/ln", "/abs/target");
	set_mtime(d, "src/c/x", 4000000000);
	set_mtime(d, "src/c", 4000000000);
	set_mtime(d, "src/z", 1000);
	set_mtime(d, "src/old", 1000000000);
	set_mtime(d, "src/ln", 5000000000);
	set_mtime(d, "src", 1000000000);
	ar = pathf("%s/gnu.tar", d);
	sh("tar --format=gnu --numeric-owner --owner=1234 --group=5678 --no-recursion "
	   "-cf %s -C %s/src ./z ./c ./old ./c/x ./a ./ln ./",
	   ar, d);
	archive_ok(t, ar, "/", SDE);
	l = list_tree(t);
	assert_string_equal(l, "a f 4755 1234/5678 1000 3 [zz|]\n"
			       "c/ d 0750 1234/5678 1767225600 0\n"
			       "c/x f 0600 1234/5678 1767225600 2 [x|]\n"
			       "ln l 0777 1234/5678 1767225600 0 -> /abs/target\n"
			       "old f 0644 1234/5678 1000000000 1 [o]\n"
			       "z h 4755 1234/5678 1000 0 => a\n");
	free(l);
	ep_tree_free(t);

	/* the same as .tar.gz, under a prefix */
	t = new_tree();
	sh("tar --numeric-owner --owner=7 --group=8 -czf %s.gz -C %s/src ./c", ar, d);
	free(ar);
	ar = pathf("%s/gnu.tar.gz", d);
	archive_ok(t, ar, "/opt/pkg", SDE);
	l = list_tree(t);
	assert_string_equal(l, "opt/ d 0755 0/0 1767225600 0\n"
			       "opt/pkg/ d 0755 0/0 1767225600 0\n"
			       "opt/pkg/c/ d 0750 7/8 1767225600 0\n"
			       "opt/pkg/c/x f 0600 7/8 1767225600 2 [x|]\n");
	free(l);
	free(ar);
	ep_tree_free(t);
	rm_tmp(d);
}

/* Names are bytes: UTF-8 and Latin-1 names pass through unchanged, from a
 * GNU-format and from a PAX-format archive. */
static void test_archive_names_are_bytes(void **state)
{
	static const char *fmts[] = {"gnu", "pax"};
	char *d = mkdir_tmp(), *l, *ar;

	(void)state;
	put_dir(d, "src", 0755);
	put_file(d, "src/caf\xc3\xa9", "u", 0644);
	put_file(d, "src/lat\xe9", "l", 0644);
	for (size_t i = 0; i < 2; i++) {
		struct ep_tree *t = new_tree();

		ar = pathf("%s/%s.tar", d, fmts[i]);
		sh("LC_ALL=C tar --format=%s --numeric-owner --owner=0 --group=0 -cf %s -C %s/src .",
		   fmts[i], ar, d);
		archive_ok(t, ar, "/", SDE);
		l = list_tree(t);
		assert_string_equal(l, "caf\xc3\xa9 f 0644 0/0 1767225600 1 [u]\n"
				       "lat\xe9 f 0644 0/0 1767225600 1 [l]\n");
		free(l);
		free(ar);
		ep_tree_free(t);
	}
	rm_tmp(d);
}

/* Writes an archive with lib/tar: entries no normal tool would produce. */
static char *make_tar(const char *dir, const char *name, const struct ep_tar_header *hs, size_t n)
{
	struct ep_error err = EP_ERROR_INIT;
	char *p = pathf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct ep_fd_sink fs;
	struct ep_tar_writer w;

	assert_true(fd >= 0);
	ep_fd_sink_init(&fs, fd);
	ep_tar_writer_init(&w, &fs.base);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ep_tar_write_header(&w, &hs[i], &err), 0);
		for (uint64_t k = 0; k < hs[i].size; k++)
			assert_int_equal(ep_tar_write_data(&w, "d", 1, &err), 0);
	}
	assert_int_equal(ep_tar_finish(&w, &err), 0);
	close(fd);
	return p;
}

static void test_archive_hostile(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *d = mkdir_tmp(), *ar;
	struct ep_tree *t = new_tree();
	struct ep_tar_header dotdot[] = {
		{.path = "ok", .type = EP_TAR_REG, .mode = 0644, .size = 1},
		{.path = "a/../../evil", .type = EP_TAR_REG, .mode = 0644, .size = 1},
	};
	struct ep_tar_header badlink[] = {
		{.path = "h", .type = EP_TAR_HARDLINK, .linkname = "x/../../../etc/shadow"},
	};
	struct ep_tar_header dangling[] = {
		{.path = "dangling", .type = EP_TAR_HARDLINK, .linkname = "missing"},
	};

	(void)state;
	ar = make_tar(d, "dotdot.tar", dotdot, 2);
	assert_int_equal(ep_tree_add_archive(t, ar, "/", SDE, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "entry 'a/../../evil' leaves the root"));
	assert_non_null(strstr(err.msg, ar));
	free(ar);
	ar = make_tar(d, "badlink.tar", badlink, 1);
	assert_int_equal(ep_tree_add_archive(t, ar, "/", SDE, &err), -1);
	assert_non_null(strstr(err.msg, "'x/../../../etc/shadow' leaves the root"));
	free(ar);
	/* a hardlink to nothing in the layer fails at write time, naming it */
	ep_tree_free(t);
	t = new_tree();
	ar = make_tar(d, "dangling.tar", dangling, 1);
	archive_ok(t, ar, "/", SDE);
	{
		struct ep_mem_sink m;

		ep_mem_sink_init(&m, 1 << 20);
		assert_int_equal(ep_tree_write(t, &m.base, &err), -1);
		assert_non_null(strstr(err.msg, "hardlink 'dangling' to 'missing'"));
		ep_sink_release(&m.base);
	}
	free(ar);
	ep_tree_free(t);
	rm_tmp(d);
}

/* Devices, fifos, xattrs (allowlist), clamping, replacement rules. */
static void test_archive_special_and_replace(void **state)
{
	char *d = mkdir_tmp(), *ar, *l;
	struct ep_tree *t = new_tree();
	static const char capv[] = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00";
	struct ep_xattr xa[] = {{"security.capability", capv, 12}, {"user.junk", "j", 1},
				{"security.selinux", "s0", 2}};
	struct ep_tar_header first[] = {
		{.path = "dev/null", .type = EP_TAR_CHR, .mode = 0666, .devmajor = 1, .devminor = 3,
		 .mtime = 4102444800},
		{.path = "dev/loop0", .type = EP_TAR_BLK, .mode = 0660, .gid = 6, .devmajor = 7},
		{.path = "run/p", .type = EP_TAR_FIFO, .mode = 0600},
		{.path = "bin/ping", .type = EP_TAR_REG, .mode = 0755, .size = 2, .xattrs = xa,
		 .n_xattrs = 3},
		{.path = "d", .type = EP_TAR_DIR, .mode = 0700},
		{.path = "d/child", .type = EP_TAR_REG, .mode = 0644, .size = 1},
		{.path = "d/sub", .type = EP_TAR_DIR, .mode = 0755},
		{.path = "d/sub/deep", .type = EP_TAR_REG, .mode = 0644, .size = 1},
		{.path = "keep", .type = EP_TAR_DIR, .mode = 0711, .mtime = 5},
		{.path = "keep/in", .type = EP_TAR_REG, .mode = 0644, .size = 3},
	};
	struct ep_tar_header second[] = {
		{.path = "d", .type = EP_TAR_SYMLINK, .mode = 0777, .linkname = "keep"},
		{.path = "keep", .type = EP_TAR_DIR, .mode = 0755, .mtime = 6},
		{.path = "keep/in", .type = EP_TAR_REG, .mode = 0600, .size = 4},
		{.path = "./", .type = EP_TAR_DIR, .mode = 0755},
	};

	(void)state;
	ar = make_tar(d, "first.tar", first, EP_ARRAY_SIZE(first));
	archive_ok(t, ar, "/", SDE);
	free(ar);
	assert_int_equal(ep_tree_count(t), 10);
	ar = make_tar(d, "second.tar", second, EP_ARRAY_SIZE(second));
	archive_ok(t, ar, "/", SDE);
	free(ar);
	/* d became a symlink: its children are gone; keep/ kept its child */
	assert_int_equal(ep_tree_count(t), 7);
	l = list_tree(t);
	assert_string_equal(l, "bin/ping f 0755 0/0 0 2 x:security.capability:12 [dd]\n"
			       "d l 0777 0/0 0 0 -> keep\n"
			       "dev/loop0 b 0660 0/6 0 0 7,0\n"
			       "dev/null c 0666 0/0 1767225600 0 1,3\n"
			       "keep/ d 0755 0/0 6 0\n"
			       "keep/in f 0600 0/0 0 4 [dddd]\n"
			       "run/p p 0600 0/0 0 0\n");
	free(l);
	ep_tree_free(t);
	rm_tmp(d);
}

static const char *golden_path(char *buf, size_t n)
{
	const char *top = getenv("TOP");

	snprintf(buf, n, "%s%stests/data/golden/profile1.tar", top ? top : "", top ? "/" : "");
	return buf;
}

/* Profile 1 pinned: a fixed tree must give these exact bytes forever.
 * EP_GOLDEN_UPDATE=1 rewrites the stored file (only when the profile
 * number changes: a new profile gets a new golden file). */
static void test_golden_profile1(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *d = mkdir_tmp(), *p, gp[4096], *stored, *buf;
	struct ep_tree *t = new_tree();
	struct ep_copy_opts o = {.mode = 0600, .uid = 1000, .gid = 1000, .mtime = SDE};
	char longname[160];
	size_t len, slen;
	ep_digest g;

	(void)state;
	memset(longname, 'n', 120);
	strcpy(longname + 120, ".txt");
	put_dir(d, "g", 0755);
	put_dir(d, "g/bin", 0755);
	put_file(d, "g/bin/tool", "#!/bin/sh\necho hi\n", 0755);
	put_dir(d, "g/etc", 0700);
	put_file(d, "g/etc/config.json", "{\"a\": 1}\n", 0640);
	put_link(d, "g/etc/link", "config.json");
	put_dir(d, "g/data", 0755);
	put_file(d, "g/data/hard2", "same\n", 0644);
	put_hardlink(d, "g/data/hard2", "g/data/hard1");
	p = pathf("g/data/%s", longname);
	put_file(d, p, "long\n", 0644);
	free(p);
	put_dir(d, "g/empty", 0755);
	put_file(d, "secret", "s3cr3t\n", 0644);
	copy_ok(t, p = pathf("%s/g", d), "/app/", &def_opts);
	free(p);
	copy_ok(t, p = pathf("%s/secret", d), "/app/etc/", &o);
	free(p);
	buf = write_tree(t, &len, g);
	if (getenv("EP_GOLDEN_UPDATE")) {
		assert_int_equal(ep_write_file_atomic(golden_path(gp, sizeof(gp)), buf, len, 0644,
						      &err),
				 0);
		print_message("golden %s: %s\n", gp, g);
	}
	stored = ep_read_file(golden_path(gp, sizeof(gp)), 1 << 20, &slen, &err);
	if (!stored)
		fail_msg("%s (run from the repository root or set TOP)", err.msg);
	assert_int_equal(slen, len);
	assert_memory_equal(stored, buf, len);
	assert_string_equal(g, GOLDEN_SHA256);
	free(stored);
	free(buf);
	ep_tree_free(t);
	rm_tmp(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_keys_track_changes),
		cmocka_unit_test(test_exec_bit_and_mode),
		cmocka_unit_test(test_hardlink_first_path),
		cmocka_unit_test(test_symlink_not_followed),
		cmocka_unit_test(test_dest_semantics),
		cmocka_unit_test(test_special_files_refused),
		cmocka_unit_test(test_changed_file),
		cmocka_unit_test(test_archive_gnu),
		cmocka_unit_test(test_archive_names_are_bytes),
		cmocka_unit_test(test_archive_hostile),
		cmocka_unit_test(test_archive_special_and_replace),
		cmocka_unit_test(test_golden_profile1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
