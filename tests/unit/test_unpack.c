/* Unit tests: lib/unpack.  Layers are written with lib/tar (an independent
 * writer) into plain-tar blob files; the per-layer cache is checked for
 * overlay form (char 0/0 whiteouts, trusted.overlay.opaque), atomic and
 * concurrent creation, and, where this host lets us mount, that overlayfs
 * over the cached layers shows the same tree as the flattened unpack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "digest.h"
#include "sink.h"
#include "store.h"
#include "tar.h"
#include "unpack.h"
#include "util.h"

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"

static char *tmpdir(void)
{
	char *d = strdup("/tmp/ep-unpack-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
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

/* A tar being written to a file, hashed on the way. */
struct tw {
	int fd;
	struct ep_fd_sink fs;
	struct ep_hash_sink hs;
	struct ep_tar_writer w;
};

static void tw_open(struct tw *t, const char *path)
{
	t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(t->fd >= 0);
	ep_fd_sink_init(&t->fs, t->fd);
	assert_int_equal(ep_hash_sink_init(&t->hs, &t->fs.base, NULL), 0);
	ep_tar_writer_init(&t->w, &t->hs.base);
}

static void tw_add(struct tw *t, int type, const char *path, const char *data, const char *link,
		   uint32_t mode)
{
	struct ep_tar_header h = {.path = path, .type = type, .mode = mode, .mtime = 1767225600,
				  .size = data ? strlen(data) : 0, .linkname = link};

	assert_int_equal(ep_tar_write_header(&t->w, &h, NULL), 0);
	if (data && *data)
		assert_int_equal(ep_tar_write_data(&t->w, data, strlen(data), NULL), 0);
}

static void tw_close(struct tw *t, ep_digest out)
{
	assert_int_equal(ep_tar_finish(&t->w, NULL), 0);
	assert_int_equal(ep_sink_finish(&t->hs.base, NULL), 0);
	memcpy(out, t->hs.digest, sizeof(ep_digest));
	ep_sink_release(&t->hs.base);
	close(t->fd);
}

static void rm_tree(const char *d)
{
	char *cmd = pathf("rm -rf '%s'", d);

	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* A base layer and an upper layer with a whiteout and an opaque dir. */
static void write_layers(const char *dir, ep_digest d1, ep_digest d2)
{
	struct tw t;
	char *p1 = pathf("%s/l1.tar", dir), *p2 = pathf("%s/l2.tar", dir);

	tw_open(&t, p1);
	tw_add(&t, EP_TAR_DIR, "etc", NULL, NULL, 0755);
	tw_add(&t, EP_TAR_REG, "etc/gone", "gone\n", NULL, 0644);
	tw_add(&t, EP_TAR_REG, "etc/keep", "keep\n", NULL, 0644);
	tw_add(&t, EP_TAR_DIR, "opq", NULL, NULL, 0755);
	tw_add(&t, EP_TAR_REG, "opq/old", "old\n", NULL, 0644);
	tw_add(&t, EP_TAR_SYMLINK, "lnk", NULL, "etc/keep", 0777);
	tw_add(&t, EP_TAR_HARDLINK, "hard", NULL, "etc/keep", 0644);
	tw_close(&t, d1);
	tw_open(&t, p2);
	tw_add(&t, EP_TAR_REG, "etc/.wh.gone", "", NULL, 0644);
	tw_add(&t, EP_TAR_DIR, "opq", NULL, NULL, 0755);
	tw_add(&t, EP_TAR_REG, "opq/.wh..wh..opq", "", NULL, 0644);
	tw_add(&t, EP_TAR_REG, "opq/new", "new\n", NULL, 0644);
	tw_close(&t, d2);
	free(p1);
	free(p2);
}

static void test_flatten_and_stats(void **state)
{
	char *dir = tmpdir(), *root = pathf("%s/root", dir), *p;
	char *l1 = pathf("%s/l1.tar", dir), *l2 = pathf("%s/l2.tar", dir);
	ep_digest d1, d2;
	struct ep_unpack_opts o;
	struct ep_unpack_stats st = {0};
	struct ep_error err = EP_ERROR_INIT;
	struct stat a, b;
	int fd;

	(void)state;
	write_layers(dir, d1, d2);
	assert_int_equal(mkdir(root, 0755), 0);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	ep_unpack_opts_init(&o);
	o.stats = &st;
	assert_int_equal(ep_unpack_layer(fd, l1, MT_TAR, d1, &o, &err), 0);
	assert_int_equal(ep_unpack_layer(fd, l2, MT_TAR, d2, &o, &err), 0);
	assert_int_equal(st.files, 4);
	assert_int_equal(st.hardlinks, 1);
	assert_int_equal(st.whiteouts, 2);
	p = pathf("%s/etc/gone", root);
	assert_int_equal(lstat(p, &a), -1);
	free(p);
	p = pathf("%s/opq/old", root);
	assert_int_equal(lstat(p, &a), -1);
	free(p);
	p = pathf("%s/opq/new", root);
	assert_int_equal(lstat(p, &a), 0);
	free(p);
	p = pathf("%s/hard", root);
	assert_int_equal(lstat(p, &a), 0);
	free(p);
	p = pathf("%s/etc/keep", root);
	assert_int_equal(lstat(p, &b), 0);
	free(p);
	assert_true(a.st_ino == b.st_ino);
	assert_int_equal((int)a.st_mtime, 1767225600);

	/* A wrong diff_id is a mismatch (exit 1), not invalid input. */
	assert_int_equal(ep_unpack_layer(fd, l1, MT_TAR, d2, &o, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, "diff_id mismatch"));
	close(fd);
	rm_tree(dir);
	free(dir);
	free(root);
	free(l1);
	free(l2);
}

static void test_size_cap_refuses_before_writing(void **state)
{
	char *dir = tmpdir(), *root = pathf("%s/root", dir), *l = pathf("%s/big.tar", dir), *p;
	static char big[64 * 1024];
	struct tw t;
	ep_digest d;
	struct ep_unpack_opts o;
	struct ep_error err = EP_ERROR_INIT;
	struct stat st;
	int fd;

	(void)state;
	memset(big, 'z', sizeof(big) - 1);
	tw_open(&t, l);
	tw_add(&t, EP_TAR_REG, "small", "s\n", NULL, 0644);
	tw_add(&t, EP_TAR_REG, "big", big, NULL, 0644);
	tw_close(&t, d);
	assert_int_equal(mkdir(root, 0755), 0);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	ep_unpack_opts_init(&o);
	o.max_bytes = 16 * 1024;
	assert_int_equal(ep_unpack_layer(fd, l, MT_TAR, d, &o, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "entry 'big'"));
	p = pathf("%s/big", root);
	assert_int_equal(lstat(p, &st), -1); /* refused before creating it */
	free(p);
	close(fd);
	rm_tree(dir);
	free(dir);
	free(root);
	free(l);
}

static void test_long_names(void **state)
{
	char *dir = tmpdir(), *root = pathf("%s/root", dir), *l = pathf("%s/long.tar", dir), *p;
	char name[1200] = "";
	struct tw t;
	ep_digest d;
	struct ep_error err = EP_ERROR_INIT;
	struct stat st;
	int fd;

	(void)state;
	/* 1199 bytes in components of 199: PAX path, well under PATH_MAX. */
	for (int i = 0; i < 6; i++) {
		if (i)
			strcat(name, "/");
		memset(name + strlen(name), 'a' + i, 199);
	}
	tw_open(&t, l);
	tw_add(&t, EP_TAR_REG, name, "deep\n", NULL, 0600);
	tw_add(&t, EP_TAR_SYMLINK, "sl", NULL, name, 0777);
	tw_close(&t, d);
	assert_int_equal(mkdir(root, 0755), 0);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	assert_int_equal(ep_unpack_layer(fd, l, MT_TAR, d, NULL, &err), 0);
	p = pathf("%s/%s", root, name);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 5);
	free(p);
	close(fd);
	rm_tree(dir);
	free(dir);
	free(root);
	free(l);
}

static void put_blob(const char *store, const char *tar, const ep_digest d)
{
	char *cmd = pathf("cp '%s' '%s/blobs/sha256/%s'", tar, store, ep_digest_hex(d));

	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_layer_rootfs_overlay_form(void **state)
{
	char *dir = tmpdir(), *sroot = pathf("%s/store", dir);
	char *l1 = pathf("%s/l1.tar", dir), *l2 = pathf("%s/l2.tar", dir);
	char *r1 = NULL, *r2 = NULL, *again = NULL, *p;
	ep_digest d1, d2;
	struct ep_store s;
	struct ep_error err = EP_ERROR_INIT;
	struct stat st;
	char val[8];
	ssize_t n;
	pid_t kids[4];

	(void)state;
	if (geteuid() != 0) {
		skip(); /* overlay whiteouts are char 0/0 nodes: root only */
		return;
	}
	write_layers(dir, d1, d2);
	assert_int_equal(ep_store_open(&s, sroot, EP_STORE_CREATE, &err), 0);
	put_blob(sroot, l1, d1);
	put_blob(sroot, l2, d2);

	/* Four processes race for the same layer: all succeed, one tree. */
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			struct ep_store cs;
			char *cp = NULL;
			struct ep_error ce = EP_ERROR_INIT;

			if (ep_store_open(&cs, sroot, 0, &ce) < 0 ||
			    ep_layer_rootfs(&cs, d2, MT_TAR, d2, &cp, &ce) < 0)
				_exit(1);
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int ws;

		assert_int_equal(waitpid(kids[i], &ws, 0), kids[i]);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	assert_int_equal(ep_layer_rootfs(&s, d1, MT_TAR, d1, &r1, &err), 0);
	assert_int_equal(ep_layer_rootfs(&s, d2, MT_TAR, d2, &r2, &err), 0);
	assert_int_equal(ep_layer_rootfs(&s, d2, MT_TAR, d2, &again, &err), 0);
	assert_string_equal(r2, again);
	p = pathf("%s/rootfs/%s", sroot, ep_digest_hex(d2));
	assert_string_equal(r2, p);
	free(p);

	/* whiteout: char 0/0; opaque: the xattr; same-layer content kept */
	p = pathf("%s/etc/gone", r2);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	free(p);
	p = pathf("%s/opq", r2);
	n = lgetxattr(p, "trusted.overlay.opaque", val, sizeof(val));
	assert_int_equal(n, 1);
	assert_int_equal(val[0], 'y');
	free(p);
	p = pathf("%s/opq/new", r2);
	assert_int_equal(lstat(p, &st), 0);
	free(p);
	p = pathf("%s/rootfs", sroot);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	free(p);
	/* no temp dirs left */
	{
		char *t = pathf("%s/tmp", sroot);
		DIR *dd = opendir(t);
		struct dirent *de;

		assert_non_null(dd);
		while ((de = readdir(dd)))
			assert_true(strncmp(de->d_name, "rootfs-", 7) != 0);
		closedir(dd);
		free(t);
	}

	/* overlayfs over the cache shows what flattening gives */
	{
		char *mnt = pathf("%s/mnt", dir), *opts = pathf("lowerdir=%s:%s", r2, r1);

		assert_int_equal(mkdir(mnt, 0755), 0);
		if (mount("overlay", mnt, "overlay", MS_RDONLY, opts) == 0) {
			p = pathf("%s/etc/gone", mnt);
			assert_int_equal(lstat(p, &st), -1);
			free(p);
			p = pathf("%s/opq/old", mnt);
			assert_int_equal(lstat(p, &st), -1);
			free(p);
			p = pathf("%s/etc/keep", mnt);
			assert_int_equal(lstat(p, &st), 0);
			free(p);
			p = pathf("%s/opq/new", mnt);
			assert_int_equal(lstat(p, &st), 0);
			free(p);
			assert_int_equal(umount(mnt), 0);
		} else {
			print_message("# overlay mount not permitted here (%s): mount check skipped\n",
				      strerror(errno));
		}
		free(mnt);
		free(opts);
	}
	ep_store_release(&s);
	free(r1);
	free(r2);
	free(again);
	rm_tree(dir);
	free(dir);
	free(sroot);
	free(l1);
	free(l2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flatten_and_stats),
		cmocka_unit_test(test_size_cap_refuses_before_writing),
		cmocka_unit_test(test_long_names),
		cmocka_unit_test(test_layer_rootfs_overlay_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
