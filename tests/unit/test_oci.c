/* Unit tests: lib/oci (verify, export, inspect) against images made by
 * real tools (umoci, skopeo) in tests/data/oci/make-fixtures.sh. */
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
#include <unistd.h>

#include "digest.h"
#include "error.h"
#include "jsonutil.h"
#include "oci.h"
#include "util.h"

static char fx[4096];  /* fixtures: L, L2, LZ, A.tar, D.tar */
static int have_fx;
static unsigned ncase;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int setup_fixtures(void **state)
{
	const char *top = getenv("TOP");
	char script[4096];
	int rc;

	(void)state;
	snprintf(fx, sizeof(fx), "%s/envpin-oci-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(fx))
		return -1;
	snprintf(script, sizeof(script), "%s/tests/data/oci/make-fixtures.sh", top ? top : ".");
	rc = sh("'%s' '%s' >'%s/log' 2>&1", script, fx, fx);
	if (rc == 0)
		have_fx = 1;
	else if (rc != 77)
		return sh("cat '%s/log' >&2", fx), -1;
	return 0;
}

static int teardown_fixtures(void **state)
{
	(void)state;
	if (fx[0] && !getenv("KEEP_FIXTURES"))
		sh("rm -rf '%s'", fx);
	return 0;
}

#define NEED_FX()                                                                                  \
	do {                                                                                       \
		if (!have_fx)                                                                      \
			skip();                                                                    \
	} while (0)

/* A private copy of fixture `name` to damage; returns its path (static). */
static const char *copy_fx(const char *name)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/case%u-%s", fx, ++ncase, name);
	assert_int_equal(sh("cp -a '%s/%s' '%s'", fx, name, path), 0);
	return path;
}

static json_t *load_json(const char *path)
{
	struct ep_error err = EP_ERROR_INIT;
	json_t *j = ep_json_load_file(path, 1 << 24, &err);

	if (!j)
		fail_msg("%s", err.msg);
	return j;
}

/* Manifest descriptor of the (only) image in layout's index.json. */
static void layout_manifest(const char *layout, ep_digest out)
{
	char p[4300];
	json_t *idx;

	snprintf(p, sizeof(p), "%s/index.json", layout);
	idx = load_json(p);
	snprintf(out, sizeof(ep_digest), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(idx, "manifests"), 0),
						   "digest")));
	json_decref(idx);
}

static void blob_file(const char *layout, const char *digest, char *out, size_t n)
{
	snprintf(out, n, "%s/blobs/sha256/%s", layout, ep_digest_hex(digest));
}

static json_t *load_blob(const char *layout, const char *digest)
{
	char p[4300];

	blob_file(layout, digest, p, sizeof(p));
	return load_json(p);
}

/* Stores j as a blob of layout; returns its digest and size. */
static uint64_t store_blob(const char *layout, const void *buf, size_t len, ep_digest out)
{
	struct ep_error err = EP_ERROR_INIT;
	char p[4300];

	assert_int_equal(ep_sha256_buf(buf, len, out, &err), 0);
	blob_file(layout, out, p, sizeof(p));
	assert_int_equal(ep_write_file_atomic(p, buf, len, 0644, &err), 0);
	return len;
}

static uint64_t store_json_blob(const char *layout, json_t *j, ep_digest out)
{
	struct ep_error err = EP_ERROR_INIT;
	size_t len;
	char *s = ep_json_canonical(j, &len, &err);
	uint64_t n;

	assert_non_null(s);
	n = store_blob(layout, s, len, out);
	free(s);
	return n;
}

/* Makes index.json of layout point at manifest (digest, size). */
static void set_index(const char *layout, const char *digest, uint64_t size)
{
	struct ep_error err = EP_ERROR_INIT;
	char p[4300];
	json_t *idx, *e;
	char *s;
	size_t len;

	snprintf(p, sizeof(p), "%s/index.json", layout);
	idx = load_json(p);
	e = json_array_get(json_object_get(idx, "manifests"), 0);
	json_object_set_new(e, "digest", json_string(digest));
	json_object_set_new(e, "size", json_integer((json_int_t)size));
	s = ep_json_canonical(idx, &len, &err);
	assert_int_equal(ep_write_file_atomic(p, s, len, 0644, &err), 0);
	free(s);
	json_decref(idx);
}

/* Replaces layer i of the image in layout with file `path` (media type mt
 * or unchanged), rewriting the manifest consistently but leaving the
 * config (and so the diff_ids) as it was.  Returns the new layer digest. */
static void replace_layer(const char *layout, size_t i, const char *path, const char *mt,
			  ep_digest layer_out, ep_digest manifest_out)
{
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md;
	size_t len;
	char *data = ep_read_file(path, 1 << 26, &len, &err);
	json_t *m, *l;
	uint64_t msize;

	assert_non_null(data);
	store_blob(layout, data, len, layer_out);
	free(data);
	layout_manifest(layout, md);
	m = load_blob(layout, md);
	l = json_array_get(json_object_get(m, "layers"), i);
	json_object_set_new(l, "digest", json_string(layer_out));
	json_object_set_new(l, "size", json_integer((json_int_t)len));
	if (mt)
		json_object_set_new(l, "mediaType", json_string(mt));
	msize = store_json_blob(layout, m, manifest_out);
	set_index(layout, manifest_out, msize);
	json_decref(m);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x55;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Offset of member `name`'s data in a ustar archive (-1 if absent). */
static off_t tar_member_offset(const char *tar, const char *name)
{
	int fd = open(tar, O_RDONLY);
	unsigned char h[512];
	off_t off = 0, found = -1;

	assert_true(fd >= 0);
	while (pread(fd, h, 512, off) == 512 && h[0]) {
		unsigned long long size = strtoull((char *)h + 124, NULL, 8);

		if (!strncmp((char *)h, name, 100) && found < 0)
			found = off + 512;
		off += 512 + (off_t)((size + 511) / 512 * 512);
	}
	close(fd);
	return found;
}

static void assert_all_ok(const struct ep_verify_report *r, size_t n_items)
{
	assert_int_equal(r->n_items, n_items);
	for (size_t i = 0; i < r->n_items; i++) {
		assert_true(r->items[i].ok);
		assert_string_equal(r->items[i].digest, r->items[i].actual);
		assert_string_equal(r->items[i].problem, "");
		if (!strcmp(r->items[i].kind, "layer"))
			assert_string_equal(r->items[i].diff_id, r->items[i].diff_actual);
	}
}

/* Path of fixture name (static buffer). */
static const char *fxp(const char *name)
{
	static char p[4200];

	snprintf(p, sizeof(p), "%s/%s", fx, name);
	return p;
}

/* ------------------------------------------------------------------ */

static void test_verify_good(void **state)
{
	static const char *const imgs[] = {"L", "L2", "LZ", "A.tar", "D.tar"};
	struct ep_verify_report ref = {0};
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md;

	(void)state;
	NEED_FX();
	layout_manifest(fxp("L"), md);
	assert_int_equal(ep_verify_layout(fxp("L"), md, &ref, NULL, NULL, &err), 0);
	assert_all_ok(&ref, 4);
	assert_string_equal(ref.manifest_digest, md);
	assert_string_equal(ref.items[0].kind, "manifest");
	assert_string_equal(ref.items[1].kind, "config");
	assert_string_equal(ref.items[1].digest, ref.config_digest);
	for (size_t i = 0; i < EP_ARRAY_SIZE(imgs); i++) {
		struct ep_verify_report r = {0};
		int docker = !strcmp(imgs[i], "D.tar");

		if (ep_verify_path(fxp(imgs[i]), NULL, &r, NULL, NULL, &err) < 0)
			fail_msg("%s: %s", imgs[i], err.msg);
		assert_all_ok(&r, docker ? 3 : 4);
		/* every tool keeps the content identity: config digest and diff_ids */
		if (strcmp(imgs[i], "L2")) /* v2s2 conversion rewrites the config media type only */
			assert_string_equal(r.config_digest, ref.config_digest);
		assert_string_equal(r.items[r.n_items - 1].diff_id, ref.items[3].diff_id);
		if (docker)
			assert_string_equal(r.manifest_digest, "");
		if (!strcmp(imgs[i], "A.tar"))
			assert_string_equal(r.manifest_digest, md);
		assert_true(r.bytes_hashed > 300000);
		ep_verify_report_release(&r);
	}
	ep_verify_report_release(&ref);
}

/* Flipping one byte of any blob fails with EP_EMISMATCH naming it. */
static void test_verify_flip_each_blob(void **state)
{
	(void)state;
	NEED_FX();
	for (int which = 0; which < 4; which++) {
		const char *l = copy_fx("L");
		struct ep_verify_report r = {0};
		struct ep_error err = EP_ERROR_INIT;
		ep_digest md, target;
		json_t *m;
		char p[4300];

		layout_manifest(l, md);
		m = load_blob(l, md);
		if (which == 0)
			snprintf(target, sizeof(target), "%s", md);
		else if (which == 1)
			snprintf(target, sizeof(target), "%s",
				 json_string_value(json_object_get(json_object_get(m, "config"), "digest")));
		else
			snprintf(target, sizeof(target), "%s",
				 json_string_value(json_object_get(
					 json_array_get(json_object_get(m, "layers"), which - 2), "digest")));
		json_decref(m);
		blob_file(l, target, p, sizeof(p));
		/* the manifest's '{' stays, so it still parses far enough */
		flip_byte(p, file_size(p) / 2);
		assert_int_equal(ep_verify_layout(l, md, &r, NULL, NULL, &err), -1);
		assert_int_equal(err.code, EP_EMISMATCH);
		if (!strstr(err.msg, target) || !strstr(err.msg, "content hashes to"))
			fail_msg("blob %d: message does not name %s: %s", which, target, err.msg);
		assert_int_equal(r.n_items, which == 0 ? r.n_items : 4);
		assert_false(r.items[which].ok);
		ep_verify_report_release(&r);
	}
}

static void test_verify_stale_diff_id(void **state)
{
	const char *l;
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md, ld, nm;
	char p[4300], np[4400];
	json_t *m;

	(void)state;
	NEED_FX();
	l = copy_fx("L");
	layout_manifest(l, md);
	m = load_blob(l, md);
	snprintf(ld, sizeof(ld), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(m, "layers"), 1),
						   "digest")));
	json_decref(m);
	blob_file(l, ld, p, sizeof(p));
	snprintf(np, sizeof(np), "%s.new", l);
	assert_int_equal(sh("(gzip -dc '%s'; echo extra) | gzip -n >'%s'", p, np), 0);
	replace_layer(l, 1, np, NULL, ld, nm);
	assert_int_equal(ep_verify_path(l, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, "diff_id mismatch"));
	assert_non_null(strstr(err.msg, ld));
	assert_string_equal(r.manifest_digest, nm);
	assert_true(r.items[0].ok && r.items[1].ok && r.items[2].ok);
	assert_false(r.items[3].ok);
	assert_string_not_equal(r.items[3].diff_id, r.items[3].diff_actual);
	ep_verify_report_release(&r);
}

/* An uncompressed layer (media type ".tar") with the same content keeps
 * the diff_id, so the image stays valid. */
static void test_verify_uncompressed_layer(void **state)
{
	const char *l;
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md, ld, nm;
	char p[4300], np[4400];
	json_t *m;

	(void)state;
	NEED_FX();
	l = copy_fx("L");
	layout_manifest(l, md);
	m = load_blob(l, md);
	snprintf(ld, sizeof(ld), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(m, "layers"), 0),
						   "digest")));
	json_decref(m);
	blob_file(l, ld, p, sizeof(p));
	snprintf(np, sizeof(np), "%s.tar", l);
	assert_int_equal(sh("gzip -dc '%s' >'%s'", p, np), 0);
	replace_layer(l, 0, np, "application/vnd.oci.image.layer.v1.tar", ld, nm);
	if (ep_verify_path(l, NULL, &r, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_all_ok(&r, 4);
	assert_string_equal(r.items[2].digest, r.items[2].diff_id);
	ep_verify_report_release(&r);
	/* an unknown layer media type is refused */
	replace_layer(l, 0, np, "application/x-tar", ld, nm);
	assert_int_equal(ep_verify_path(l, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "unknown media type"));
}

static void test_verify_missing_and_truncated(void **state)
{
	const char *l;
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md, l0, l1, nm;
	char p[4300], np[4400];
	json_t *m;

	(void)state;
	NEED_FX();
	l = copy_fx("L");
	layout_manifest(l, md);
	m = load_blob(l, md);
	snprintf(l0, sizeof(l0), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(m, "layers"), 0),
						   "digest")));
	snprintf(l1, sizeof(l1), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(m, "layers"), 1),
						   "digest")));
	json_decref(m);
	/* missing layer 1: reported, and layer 0 is still checked */
	blob_file(l, l1, p, sizeof(p));
	assert_int_equal(unlink(p), 0);
	assert_int_equal(ep_verify_layout(l, md, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, "is missing"));
	assert_non_null(strstr(err.msg, l1));
	assert_int_equal(r.n_items, 4);
	assert_true(r.items[2].ok);
	assert_false(r.items[3].ok);
	ep_verify_report_release(&r);

	/* truncated gzip whose digest the manifest agrees with */
	blob_file(l, l0, p, sizeof(p));
	snprintf(np, sizeof(np), "%s.trunc", l);
	assert_int_equal(sh("head -c %lld '%s' >'%s'", (long long)file_size(p) / 2, p, np), 0);
	replace_layer(l, 0, np, NULL, l0, nm);
	err = (struct ep_error)EP_ERROR_INIT;
	assert_int_equal(ep_verify_layout(l, nm, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, l0));
	assert_false(r.items[2].ok);
	assert_string_equal(r.items[2].digest, r.items[2].actual);
	assert_string_equal(r.items[2].diff_actual, "");
	ep_verify_report_release(&r);

	/* missing manifest */
	assert_int_equal(ep_verify_layout(l, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
					  &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, "is missing"));
	ep_verify_report_release(&r);
}

static void test_verify_archive_damage(void **state)
{
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md;
	json_t *m;
	char name[128];
	const char *a;
	off_t off;

	(void)state;
	NEED_FX();
	layout_manifest(fxp("L"), md);
	m = load_blob(fxp("L"), md);
	/* oci-archive: a layer byte */
	a = copy_fx("A.tar");
	snprintf(name, sizeof(name), "blobs/sha256/%s",
		 ep_digest_hex(json_string_value(json_object_get(
			 json_array_get(json_object_get(m, "layers"), 0), "digest"))));
	off = tar_member_offset(a, name);
	assert_true(off > 0);
	flip_byte(a, off + 1000);
	assert_int_equal(ep_verify_path(a, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, name + 13));
	assert_non_null(strstr(err.msg, "content hashes to"));
	ep_verify_report_release(&r);
	/* oci-archive: the config */
	a = copy_fx("A.tar");
	snprintf(name, sizeof(name), "blobs/sha256/%s",
		 ep_digest_hex(json_string_value(json_object_get(json_object_get(m, "config"), "digest"))));
	off = tar_member_offset(a, name);
	assert_true(off > 0);
	flip_byte(a, off + 30);
	assert_int_equal(ep_verify_path(a, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, name + 13));
	ep_verify_report_release(&r);
	/* docker-archive: the config (named <hex>.json) */
	a = copy_fx("D.tar");
	snprintf(name, sizeof(name), "%s.json",
		 ep_digest_hex(json_string_value(json_object_get(json_object_get(m, "config"), "digest"))));
	off = tar_member_offset(a, name);
	assert_true(off > 0);
	flip_byte(a, off + 30);
	assert_int_equal(ep_verify_path(a, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, "config sha256:"));
	ep_verify_report_release(&r);
	/* docker-archive: a layer (plain tar named by its diff_id) */
	a = copy_fx("D.tar");
	{
		json_t *cfg = load_blob(fxp("L"), json_string_value(json_object_get(
							  json_object_get(m, "config"), "digest")));
		const char *diff = json_string_value(
			json_array_get(json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), 0));

		snprintf(name, sizeof(name), "%s.tar", ep_digest_hex(diff));
		off = tar_member_offset(a, name);
		assert_true(off > 0);
		flip_byte(a, off + 5000);
		assert_int_equal(ep_verify_path(a, NULL, &r, NULL, NULL, &err), -1);
		assert_int_equal(err.code, EP_EMISMATCH);
		assert_non_null(strstr(err.msg, "diff_id mismatch"));
		assert_non_null(strstr(err.msg, diff));
		json_decref(cfg);
	}
	ep_verify_report_release(&r);
	json_decref(m);
}

static void test_archive_hostile_names(void **state)
{
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;
	char t[4300];

	(void)state;
	NEED_FX();
	snprintf(t, sizeof(t), "%s/evil.tar", fx);
	assert_int_equal(sh("cd '%s' && mkdir -p ev/a && echo x >ev/a/f && tar -cf evil.tar -P "
			    "ev/a/f ev/a/../a/f 2>/dev/null", fx), 0);
	assert_int_equal(ep_verify_path(t, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "'..'"));
	/* a tar that is neither kind of image */
	assert_int_equal(sh("cd '%s' && tar -cf plain.tar ev", fx), 0);
	snprintf(t, sizeof(t), "%s/plain.tar", fx);
	assert_int_equal(ep_verify_path(t, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	/* not a tar at all */
	snprintf(t, sizeof(t), "%s/log", fx);
	assert_int_equal(ep_verify_path(t, NULL, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
}

/* index.json -> image index (multi-platform) -> linux/amd64 manifest. */
static void test_verify_nested_index(void **state)
{
	const char *l;
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md, idx_d;
	json_t *idx;
	char p[4300];
	uint64_t isize;

	(void)state;
	NEED_FX();
	l = copy_fx("L");
	layout_manifest(l, md);
	blob_file(l, md, p, sizeof(p));
	idx = json_pack("{s:i,s:s,s:[{s:s,s:s,s:I,s:{s:s,s:s}},{s:s,s:s,s:I,s:{s:s,s:s}}]}",
			"schemaVersion", 2, "mediaType", EP_MT_OCI_INDEX, "manifests", "mediaType",
			EP_MT_OCI_MANIFEST, "digest",
			"sha256:1111111111111111111111111111111111111111111111111111111111111111", "size",
			(json_int_t)10, "platform", "os", "linux", "architecture", "arm64", "mediaType",
			EP_MT_OCI_MANIFEST, "digest", md, "size", (json_int_t)file_size(p), "platform",
			"os", "linux", "architecture", "amd64");
	isize = store_json_blob(l, idx, idx_d);
	json_decref(idx);
	set_index(l, idx_d, isize);
	{
		/* set_index kept the manifest media type; an index needs its own */
		char ip[4300];
		json_t *ij;
		char *s;
		size_t len;

		snprintf(ip, sizeof(ip), "%s/index.json", l);
		ij = load_json(ip);
		json_object_set_new(json_array_get(json_object_get(ij, "manifests"), 0), "mediaType",
				    json_string(EP_MT_OCI_INDEX));
		s = ep_json_canonical(ij, &len, &err);
		assert_int_equal(ep_write_file_atomic(ip, s, len, 0644, &err), 0);
		free(s);
		json_decref(ij);
	}
	if (ep_verify_path(l, NULL, &r, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(r.manifest_digest, md);
	assert_all_ok(&r, 4);
	ep_verify_report_release(&r);
	/* an index is not an image manifest */
	assert_int_equal(ep_verify_layout(l, idx_d, &r, NULL, NULL, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "is an image index"));
	/* and a tag selects through the annotations */
	if (ep_verify_path(fxp("L"), "t", &r, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	ep_verify_report_release(&r);
}

static void test_read_blob(void **state)
{
	const char *l;
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md;
	char p[4300];
	size_t len;
	char *b;

	(void)state;
	NEED_FX();
	l = copy_fx("L");
	layout_manifest(l, md);
	b = ep_layout_read_blob(l, md, EP_MAX_MANIFEST_BYTES, &len, &err);
	assert_non_null(b);
	assert_int_equal(b[0], '{');
	free(b);
	assert_null(ep_layout_read_blob(l, md, 10, &len, &err));
	assert_int_equal(err.code, EP_EINVAL);
	assert_null(ep_layout_read_blob(l, "sha256:../../etc", 10, &len, &err));
	assert_int_equal(err.code, EP_EINVAL);
	blob_file(l, md, p, sizeof(p));
	flip_byte(p, 3);
	assert_null(ep_layout_read_blob(l, md, EP_MAX_MANIFEST_BYTES, &len, &err));
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_non_null(strstr(err.msg, md));
	assert_non_null(strstr(err.msg, "content hashes to sha256:"));
}

static uint64_t progress_last;
static void progress_cb(void *ctx, const char *what, uint64_t done, uint64_t total)
{
	(void)ctx;
	(void)what;
	assert_true(done >= progress_last);
	assert_true(done <= total);
	progress_last = done;
}

static void test_progress(void **state)
{
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;

	(void)state;
	NEED_FX();
	progress_last = 0;
	assert_int_equal(ep_verify_path(fxp("L"), NULL, &r, progress_cb, NULL, &err), 0);
	assert_true(progress_last > 300000);
	ep_verify_report_release(&r);
	progress_last = 0;
	assert_int_equal(ep_verify_path(fxp("A.tar"), NULL, &r, progress_cb, NULL, &err), 0);
	assert_true(progress_last > 300000);
	ep_verify_report_release(&r);
}

/* Captures stdout of a command into buf; returns its exit status. */
static int capture(char *buf, size_t n, const char *cmd)
{
	FILE *p = popen(cmd, "r");
	size_t got;

	assert_non_null(p);
	got = fread(buf, 1, n - 1, p);
	buf[got] = '\0';
	return WEXITSTATUS(pclose(p));
}

static void test_export(void **state)
{
	struct ep_verify_report r = {0};
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md, cd, got;
	char oci[4300], dock[4300], dock2[4300], cmd[9000];
	static char out[1 << 16];
	json_t *j;

	(void)state;
	NEED_FX();
	layout_manifest(fxp("L"), md);
	j = load_blob(fxp("L"), md);
	snprintf(cd, sizeof(cd), "%s",
		 json_string_value(json_object_get(json_object_get(j, "config"), "digest")));
	json_decref(j);
	snprintf(oci, sizeof(oci), "%s/exp-oci.tar", fx);
	snprintf(dock, sizeof(dock), "%s/exp-docker.tar", fx);
	snprintf(dock2, sizeof(dock2), "%s/exp-docker2.tar", fx);
	if (ep_export(fxp("L"), md, oci, EP_EXPORT_OCI, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(ep_export(fxp("L"), md, dock, EP_EXPORT_DOCKER, "envpin/test:1.0", &err), 0);
	assert_int_equal(ep_export(fxp("L"), md, dock2, EP_EXPORT_DOCKER, "envpin/test:1.0", &err), 0);
	/* deterministic */
	assert_int_equal(sh("cmp -s '%s' '%s'", dock, dock2), 0);
	/* our verify accepts both, keeping the manifest digest */
	assert_int_equal(ep_verify_path(oci, NULL, &r, NULL, NULL, &err), 0);
	assert_string_equal(r.manifest_digest, md);
	assert_string_equal(r.config_digest, cd);
	ep_verify_report_release(&r);
	if (ep_verify_path(dock, NULL, &r, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(r.manifest_digest, md);
	ep_verify_report_release(&r);
	/* skopeo: same manifest digest through oci-archive, same config through both */
	snprintf(cmd, sizeof(cmd), "skopeo inspect --format '{{.Digest}}' oci-archive:'%s'", oci);
	assert_int_equal(capture(out, sizeof(out), cmd), 0);
	assert_non_null(strstr(out, md));
	snprintf(cmd, sizeof(cmd), "skopeo inspect --config --raw oci-archive:'%s'", oci);
	assert_int_equal(capture(out, sizeof(out), cmd), 0);
	assert_int_equal(ep_sha256_buf(out, strlen(out), got, &err), 0);
	assert_string_equal(got, cd);
	snprintf(cmd, sizeof(cmd), "skopeo inspect --config --raw docker-archive:'%s'", dock);
	assert_int_equal(capture(out, sizeof(out), cmd), 0);
	assert_int_equal(ep_sha256_buf(out, strlen(out), got, &err), 0);
	assert_string_equal(got, cd);
	snprintf(cmd, sizeof(cmd), "skopeo list-tags docker-archive:'%s'", dock);
	assert_int_equal(capture(out, sizeof(out), cmd), 0);
	assert_non_null(strstr(out, "\"envpin/test:1.0\""));
	/* skopeo reads every layer of the docker-archive (gzip layers included) */
	assert_int_equal(sh("cd '%s' && skopeo copy -q docker-archive:exp-docker.tar oci:DXL:y", fx), 0);
	/* skopeo copy to a layout, then umoci unpacks it */
	assert_int_equal(sh("cd '%s' && skopeo copy -q oci-archive:exp-oci.tar oci:EXL:x && "
			    "umoci unpack --rootless --image EXL:x EXB >/dev/null && "
			    "test \"$(cat EXB/rootfs/etc/second)\" = second", fx), 0);
	/* a damaged blob is not exported */
	{
		const char *l = copy_fx("L");
		char p[4300];

		blob_file(l, cd, p, sizeof(p));
		flip_byte(p, 10);
		assert_int_equal(ep_export(l, md, oci, EP_EXPORT_OCI, NULL, &err), -1);
		assert_int_equal(err.code, EP_EMISMATCH);
		assert_non_null(strstr(err.msg, cd));
	}
	assert_int_equal(ep_export(fxp("L"), md, dock, EP_EXPORT_DOCKER, "Bad Tag", &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
}

static void test_inspect(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	ep_digest md;
	json_t *j, *l0;

	(void)state;
	NEED_FX();
	layout_manifest(fxp("L"), md);
	j = ep_inspect(fxp("L"), md, &err);
	if (!j)
		fail_msg("%s", err.msg);
	assert_string_equal(json_string_value(json_object_get(j, "digest")), md);
	assert_non_null(json_string_value(json_object_get(j, "config_digest")));
	assert_string_equal(json_string_value(json_object_get(j, "architecture")), "amd64");
	assert_string_equal(json_string_value(json_object_get(j, "os")), "linux");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "config"), "WorkingDir")),
			    "/work");
	assert_int_equal(json_array_size(json_object_get(j, "layers")), 2);
	l0 = json_array_get(json_object_get(j, "layers"), 0);
	assert_non_null(strstr(json_string_value(json_object_get(l0, "media_type")), "tar+gzip"));
	assert_true(json_integer_value(json_object_get(l0, "size")) > 300000);
	assert_int_equal(ep_digest_check(json_string_value(json_object_get(l0, "diff_id")), &err), 0);
	assert_true(json_integer_value(json_object_get(j, "size")) >
		    json_integer_value(json_object_get(l0, "size")));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_good),
		cmocka_unit_test(test_verify_flip_each_blob),
		cmocka_unit_test(test_verify_stale_diff_id),
		cmocka_unit_test(test_verify_uncompressed_layer),
		cmocka_unit_test(test_verify_missing_and_truncated),
		cmocka_unit_test(test_verify_archive_damage),
		cmocka_unit_test(test_archive_hostile_names),
		cmocka_unit_test(test_verify_nested_index),
		cmocka_unit_test(test_read_blob),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_export),
		cmocka_unit_test(test_inspect),
	};
	return cmocka_run_group_tests(tests, setup_fixtures, teardown_fixtures);
}
