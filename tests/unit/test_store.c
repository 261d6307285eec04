/* Unit tests: lib/store (layout, locks, transactions, resolve, cache, gc,
 * concurrent commits, a txn killed with SIGKILL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "error.h"
#include "jsonutil.h"
#include "store.h"
#include "util.h"

#define EMPTY_INDEX                                                                                \
	"{\"manifests\":[],\"mediaType\":\"application/vnd.oci.image.index.v1+json\","             \
	"\"schemaVersion\":2}"

/* A child a failed assertion would leave behind; teardown kills it. */
static pid_t live_child = -1;

struct fixture {
	char base[256];
	char root[300];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *t = getenv("TEST_TMPDIR");

	if (!f)
		return -1;
	snprintf(f->base, sizeof(f->base), "%s/ep-store-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->root, sizeof(f->root), "%s/store", f->base);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (live_child > 0) {
		kill(live_child, SIGKILL);
		waitpid(live_child, NULL, 0);
		live_child = -1;
	}
	ep_rm_rf(f->base, NULL);
	free(f);
	return 0;
}

static char *slurp(const char *root, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	return ep_read_file(path, 64u << 20, NULL, NULL);
}

static void spit(const char *root, const char *name, const char *text)
{
	char path[1024];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static ino_t inode_of(const char *root, const char *name)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	assert_int_equal(lstat(path, &st), 0);
	return st.st_ino;
}

static int count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

/* ---- a byte-for-byte snapshot of a store: "path sha256\n" sorted, without
 * tmp/ and the lock files (which opening may create). ---- */

static char **snap_lines;
static size_t snap_n;
static size_t snap_skip;

static int snap_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	const char *rel = p + snap_skip;
	ep_digest d;
	char **nl;

	(void)ftw;
	if (!strncmp(rel, "/tmp", 4) || !strcmp(rel, "/lock") || !strcmp(rel, "/index.lock"))
		return 0;
	nl = realloc(snap_lines, (snap_n + 1) * sizeof(*nl));
	if (!nl)
		return -1;
	snap_lines = nl;
	if (flag == FTW_F) {
		if (ep_sha256_file(p, d, NULL, NULL) < 0)
			return -1;
	} else {
		snprintf(d, sizeof(d), "%s", S_ISDIR(sb->st_mode) ? "dir" : "other");
	}
	snap_lines[snap_n++] = ep_asprintf(NULL, "%s %s", rel, d);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *snapshot(const char *root)
{
	size_t len = 0;
	char *out;

	snap_lines = NULL;
	snap_n = 0;
	snap_skip = strlen(root);
	assert_int_equal(nftw(root, snap_cb, 16, FTW_PHYS), 0);
	qsort(snap_lines, snap_n, sizeof(*snap_lines), cmp_str);
	for (size_t i = 0; i < snap_n; i++)
		len += strlen(snap_lines[i]) + 1;
	out = calloc(1, len + 1);
	assert_non_null(out);
	for (size_t i = 0; i < snap_n; i++) {
		strcat(out, snap_lines[i]);
		strcat(out, "\n");
		free(snap_lines[i]);
	}
	free(snap_lines);
	return out;
}

/* ---- helpers ---- */

static void open_ok(struct ep_store *s, const char *root, int flags)
{
	struct ep_error err = EP_ERROR_INIT;

	if (ep_store_open(s, root, flags, &err) < 0)
		fail_msg("open '%s': %s", root, err.msg);
}

/* Commits a manifest blob with `text` as image, tag may be NULL. */
static void commit_image(struct ep_store *s, const char *text, const char *tag, ep_digest out)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_txn t;

	assert_int_equal(ep_txn_begin(s, &t, &err), 0);
	assert_int_equal(ep_txn_add_blob_buf(&t, text, strlen(text), out, &err), 0);
	assert_int_equal(ep_txn_add_image(&t, out, strlen(text), tag, &err), 0);
	if (ep_txn_commit(&t, &err) < 0)
		fail_msg("commit: %s", err.msg);
	ep_txn_abort(&t); /* no-op after commit */
}

static json_t *load_index(const char *root)
{
	char path[1024];
	struct ep_error err = EP_ERROR_INIT;
	json_t *j;

	snprintf(path, sizeof(path), "%s/index.json", root);
	j = ep_json_load_file(path, EP_JSON_MAX_BYTES, &err);
	if (!j)
		fail_msg("%s", err.msg);
	return j;
}

/* ---- tests ---- */

static void test_default_root(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *r;

	(void)state;
	setenv("ENVPIN_STORE", "/x/y", 1);
	r = ep_store_default_root(&err);
	assert_string_equal(r, "/x/y");
	free(r);
	unsetenv("ENVPIN_STORE");
	setenv("XDG_DATA_HOME", "/data", 1);
	setenv("HOME", "/home/u", 1);
	r = ep_store_default_root(&err);
	assert_string_equal(r, geteuid() == 0 ? "/var/lib/envpin" : "/data/envpin");
	free(r);
	unsetenv("XDG_DATA_HOME");
	r = ep_store_default_root(&err);
	assert_string_equal(r, geteuid() == 0 ? "/var/lib/envpin" : "/home/u/.local/share/envpin");
	free(r);
}

static void test_create_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct ep_store s;
	char *text, *before, *after;
	char p[512];
	struct stat st;

	open_ok(&s, f->root, EP_STORE_CREATE);
	text = slurp(f->root, "oci-layout");
	assert_string_equal(text, "{\"imageLayoutVersion\":\"1.0.0\"}");
	free(text);
	text = slurp(f->root, "index.json");
	assert_string_equal(text, EMPTY_INDEX);
	free(text);
	for (const char *const *d = (const char *const[]){"blobs/sha256", "cache", "tmp", NULL}; *d;
	     d++) {
		snprintf(p, sizeof(p), "%s/%s", f->root, *d);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
	snprintf(p, sizeof(p), "%s/lock", f->root);
	assert_int_equal(stat(p, &st), 0);
	ep_store_release(&s);
	ep_store_release(&s); /* idempotent */

	/* reopening, with or without CREATE, changes nothing */
	before = snapshot(f->root);
	open_ok(&s, f->root, 0);
	ep_store_release(&s);
	open_ok(&s, f->root, EP_STORE_CREATE);
	ep_store_release(&s);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_not_a_store(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;

	assert_int_equal(ep_store_open(&s, f->root, 0, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "is not an envpin store (no oci-layout)"));
	assert_non_null(strstr(err.msg, f->root));
	ep_store_release(&s); /* safe after a failed open */

	/* an existing dir that is not a store stays untouched (no lock file) */
	ep_error_clear(&err);
	assert_int_equal(ep_store_open(&s, f->base, 0, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_int_equal(count_entries(f->base, ""), 0);
}

static void test_corrupt_index(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	ep_digest d;
	char *big;
	static const char *const bad[] = {
	    "{not json",
	    "{\"schemaVersion\":3,\"manifests\":[]}",
	    "{\"schemaVersion\":2,\"manifests\":{}}",
	    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:../../"
	    "etc\","
	    "\"size\":1}]}",
	    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":-1}]}",
	};

	open_ok(&s, f->root, EP_STORE_CREATE);
	for (size_t i = 0; i < EP_ARRAY_SIZE(bad); i++) {
		json_t *j;

		spit(f->root, "index.json", bad[i]);
		ep_error_clear(&err);
		j = ep_store_images(&s, &err);
		assert_null(j);
		assert_int_equal(err.code, EP_EENV);
		assert_non_null(strstr(err.msg, "index.json"));
		assert_int_equal(ep_store_resolve(&s, "abcd", d, &err), -1);
	}
	/* bounded: a 5 MiB index is refused, not loaded */
	big = malloc((5u << 20) + 1);
	assert_non_null(big);
	memset(big, ' ', 5u << 20);
	big[5u << 20] = '\0';
	spit(f->root, "index.json", big);
	free(big);
	ep_error_clear(&err);
	assert_null(ep_store_images(&s, &err));
	assert_non_null(strstr(err.msg, "too large"));
	ep_store_release(&s);
}

static void test_commit(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	struct ep_txn t;
	ep_digest layer, man, d2;
	char man_text[1024], p[512];
	char *path = NULL, *text;
	int fd;
	json_t *imgs, *e;

	open_ok(&s, f->root, EP_STORE_CREATE);
	assert_int_equal(ep_txn_begin(&s, &t, &err), 0);
	assert_non_null(strstr(t.dir, "/tmp/txn-"));
	/* a layer written through a temp file, its digest computed by us */
	assert_int_equal(ep_txn_tempfile(&t, &fd, &path, &err), 0);
	assert_int_equal(ep_write_all(fd, "layer-bytes", 11, &err), 0);
	close(fd);
	assert_int_equal(ep_sha256_buf("layer-bytes", 11, layer, &err), 0);
	assert_int_equal(ep_txn_add_blob_file(&t, path, layer, &err), 0);
	free(path);
	snprintf(man_text, sizeof(man_text),
		 "{\"schemaVersion\":2,\"layers\":[{\"digest\":\"%s\",\"size\":11}]}", layer);
	assert_int_equal(ep_txn_add_blob_buf(&t, man_text, strlen(man_text), man, &err), 0);
	/* staged blobs are visible through the txn, not yet in the store */
	path = ep_txn_blob_path(&t, layer, &err);
	assert_non_null(path);
	assert_non_null(strstr(path, t.dir));
	free(path);
	assert_false(ep_store_has_blob(&s, layer));
	assert_int_equal(ep_sha256_buf("absent", 6, d2, &err), 0);
	assert_null(ep_txn_blob_path(&t, d2, &err));
	assert_int_equal(err.code, EP_EINVAL);
	/* invalid input is refused */
	assert_int_equal(ep_txn_add_blob_file(&t, "/etc/passwd", layer, &err), -1);
	assert_int_equal(ep_txn_add_image(&t, "sha256:xyz", 1, NULL, &err), -1);
	assert_int_equal(ep_txn_add_image(&t, man, 1, "bad tag", &err), -1);
	assert_int_equal(ep_txn_add_image(&t, man, strlen(man_text), "demo:1", &err), 0);
	text = slurp(f->root, "index.json");
	assert_string_equal(text, EMPTY_INDEX); /* nothing visible before commit */
	free(text);
	assert_int_equal(ep_txn_commit(&t, &err), 0);

	assert_true(ep_store_has_blob(&s, layer));
	assert_true(ep_store_has_blob(&s, man));
	snprintf(p, sizeof(p), "blobs/sha256/%s", ep_digest_hex(layer));
	text = slurp(f->root, p);
	assert_string_equal(text, "layer-bytes");
	free(text);
	snprintf(p, sizeof(p), "%s/tmp", f->root);
	assert_int_equal(count_entries(p, ""), 0);

	imgs = ep_store_images(&s, &err);
	assert_int_equal(json_array_size(imgs), 1);
	e = json_array_get(imgs, 0);
	assert_string_equal(json_string_value(json_object_get(e, "digest")), man);
	assert_int_equal(json_integer_value(json_object_get(e, "size")), strlen(man_text));
	assert_string_equal(json_string_value(json_object_get(e, "mediaType")),
			    "application/vnd.oci.image.manifest.v1+json");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "annotations"),
							      "org.opencontainers.image.ref.name")),
			    "demo:1");
	json_decref(imgs);

	/* a manifest that is not in the store, or has another size, is refused */
	assert_int_equal(ep_txn_begin(&s, &t, &err), 0);
	assert_int_equal(ep_txn_add_image(&t, d2, 6, NULL, &err), 0);
	assert_int_equal(ep_txn_commit(&t, &err), -1);
	assert_non_null(strstr(err.msg, "not in the store"));
	ep_txn_abort(&t);
	assert_int_equal(ep_txn_begin(&s, &t, &err), 0);
	assert_int_equal(ep_txn_add_image(&t, man, 3, NULL, &err), 0);
	assert_int_equal(ep_txn_commit(&t, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	ep_txn_abort(&t);
	assert_int_equal(count_entries(p, ""), 0);
	ep_store_release(&s);
}

static void test_idempotent_commit(void **state)
{
	struct fixture *f = *state;
	struct ep_store s;
	ep_digest a, a2;
	char *before, *after;
	ino_t ino;

	open_ok(&s, f->root, EP_STORE_CREATE);
	commit_image(&s, "{\"image\":\"a\"}", "a", a);
	before = snapshot(f->root);
	ino = inode_of(f->root, "index.json");
	commit_image(&s, "{\"image\":\"a\"}", "a", a2);
	assert_string_equal(a, a2);
	commit_image(&s, "{\"image\":\"a\"}", NULL, a2); /* no tag: keeps "a" */
	after = snapshot(f->root);
	assert_string_equal(before, after);
	/* not even rewritten with the same bytes */
	assert_int_equal(inode_of(f->root, "index.json"), ino);
	free(before);
	free(after);
	ep_store_release(&s);
}

static void test_tag_move(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	ep_digest a, b, r;
	json_t *idx, *m;
	const char *first, *second;

	open_ok(&s, f->root, EP_STORE_CREATE);
	commit_image(&s, "{\"image\":\"a\"}", "x", a);
	commit_image(&s, "{\"image\":\"b\"}", "x", b);
	assert_int_equal(ep_store_resolve(&s, "x", r, &err), 0);
	assert_string_equal(r, b);
	idx = load_index(f->root);
	m = json_object_get(idx, "manifests");
	assert_int_equal(json_array_size(m), 2);
	/* sorted by digest; the old image keeps its entry, without the tag */
	first = json_string_value(json_object_get(json_array_get(m, 0), "digest"));
	second = json_string_value(json_object_get(json_array_get(m, 1), "digest"));
	assert_true(strcmp(first, second) < 0);
	for (size_t i = 0; i < 2; i++) {
		json_t *e = json_array_get(m, i);
		const char *dg = json_string_value(json_object_get(e, "digest"));

		if (!strcmp(dg, a))
			assert_null(json_object_get(e, "annotations"));
		else
			assert_string_equal(
			    json_string_value(json_object_get(json_object_get(e, "annotations"),
							      "org.opencontainers.image.ref.name")),
			    "x");
	}
	json_decref(idx);
	/* a new tag on an existing image replaces its tag, one entry stays */
	commit_image(&s, "{\"image\":\"b\"}", "y", b);
	assert_int_equal(ep_store_resolve(&s, "y", r, &err), 0);
	assert_string_equal(r, b);
	assert_int_equal(ep_store_resolve(&s, "x", r, &err), -1);
	idx = load_index(f->root);
	assert_int_equal(json_array_size(json_object_get(idx, "manifests")), 2);
	json_decref(idx);
	ep_store_release(&s);
}

static void test_resolve(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	ep_digest d1, d2, r, seen[2048];
	char texts[2048][32], *p1 = NULL, *p2 = NULL, arg[80];
	int i, j, found = 0;

	/* two manifests whose digests share their first 4 hex digits */
	for (i = 0; i < 2048 && !found; i++) {
		snprintf(texts[i], sizeof(texts[i]), "{\"n\":%d}", i);
		assert_int_equal(ep_sha256_buf(texts[i], strlen(texts[i]), seen[i], &err), 0);
		for (j = 0; j < i; j++)
			if (!strncmp(seen[i] + 7, seen[j] + 7, 4)) {
				p1 = texts[j];
				p2 = texts[i];
				found = 1;
				break;
			}
	}
	assert_true(found);
	open_ok(&s, f->root, EP_STORE_CREATE);
	commit_image(&s, p1, "one", d1);
	commit_image(&s, p2, NULL, d2);

	assert_int_equal(ep_store_resolve(&s, d1, r, &err), 0);
	assert_string_equal(r, d1);
	assert_int_equal(ep_store_resolve(&s, "one", r, &err), 0);
	assert_string_equal(r, d1);
	/* a prefix long enough to be unique, with and without "sha256:" */
	for (j = 5; j < 64; j++)
		if (strncmp(d1 + 7, d2 + 7, (size_t)j))
			break;
	snprintf(arg, sizeof(arg), "%.*s", j, d2 + 7);
	assert_int_equal(ep_store_resolve(&s, arg, r, &err), 0);
	assert_string_equal(r, d2);
	snprintf(arg, sizeof(arg), "sha256:%.*s", j, d2 + 7);
	assert_int_equal(ep_store_resolve(&s, arg, r, &err), 0);
	assert_string_equal(r, d2);
	/* ambiguous: both candidates are named */
	snprintf(arg, sizeof(arg), "%.4s", d1 + 7);
	ep_error_clear(&err);
	assert_int_equal(ep_store_resolve(&s, arg, r, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "ambiguous"));
	assert_non_null(strstr(err.msg, d1));
	assert_non_null(strstr(err.msg, d2));
	/* unknown: a tag, a too-short prefix, a full digest not in index.json */
	for (const char *const *u = (const char *const[]){"nope", "abc", "ONE", NULL}; *u; u++) {
		ep_error_clear(&err);
		assert_int_equal(ep_store_resolve(&s, *u, r, &err), -1);
		assert_int_equal(err.code, EP_EINVAL);
		snprintf(arg, sizeof(arg), "no image '%s' in the store", *u);
		assert_non_null(strstr(err.msg, arg));
		assert_non_null(strstr(err.msg, f->root));
	}
	assert_int_equal(ep_sha256_buf("x", 1, r, &err), 0);
	memcpy(arg, r, sizeof(ep_digest));
	assert_int_equal(ep_store_resolve(&s, arg, r, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	ep_store_release(&s);
}

static void test_cache(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	struct ep_txn t;
	json_t *rec = json_pack("{s:s,s:i}", "digest", "sha256:00", "n", 7);
	json_t *got;

	open_ok(&s, f->root, EP_STORE_CREATE);
	assert_null(ep_store_cache_get(&s, "layer:abc"));
	assert_null(ep_store_cache_get(&s, "../oci-layout"));
	assert_int_equal(ep_txn_begin(&s, &t, &err), 0);
	assert_int_equal(ep_txn_set_cache(&t, "layer:abc", rec, &err), 0);
	assert_int_equal(ep_txn_set_cache(&t, "../x", rec, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_int_equal(ep_txn_set_cache(&t, "Upper", rec, &err), -1);
	assert_int_equal(ep_txn_set_cache(&t, "", rec, &err), -1);
	/* not visible before commit */
	assert_null(ep_store_cache_get(&s, "layer:abc"));
	assert_int_equal(ep_txn_commit(&t, &err), 0);
	got = ep_store_cache_get(&s, "layer:abc");
	assert_non_null(got);
	assert_true(json_equal(got, rec));
	json_decref(got);
	json_decref(rec); /* the caller's reference; the txn took its own */
	/* a corrupt record is a miss, not an error */
	spit(f->root, "cache/stat:x.json", "{broken");
	assert_null(ep_store_cache_get(&s, "stat:x"));
	ep_store_release(&s);
}

static void test_gc(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	struct ep_txn t;
	ep_digest cfg, layer, man, child_layer, child, idx, junk, cached, r;
	char text[2048], p[512], *before, *after;
	uint64_t freed = 1;
	json_t *rec;

	open_ok(&s, f->root, EP_STORE_CREATE);
	assert_int_equal(ep_txn_begin(&s, &t, &err), 0);
	assert_int_equal(ep_txn_add_blob_buf(&t, "config", 6, cfg, &err), 0);
	assert_int_equal(ep_txn_add_blob_buf(&t, "layer", 5, layer, &err), 0);
	snprintf(
	    text, sizeof(text),
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"digest\":\"%s\",\"size\":6},\"layers\":[{\"digest\":\"%s\",\"size\":5}]"
	    "}",
	    cfg, layer);
	assert_int_equal(ep_txn_add_blob_buf(&t, text, strlen(text), man, &err), 0);
	assert_int_equal(ep_txn_add_image(&t, man, strlen(text), "img", &err), 0);
	/* an image index whose child manifest refers to another layer */
	assert_int_equal(ep_txn_add_blob_buf(&t, "child-layer", 11, child_layer, &err), 0);
	snprintf(text, sizeof(text),
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":6},"
		 "\"layers\":[{\"digest\":\"%s\",\"size\":11}]}",
		 cfg, child_layer);
	assert_int_equal(ep_txn_add_blob_buf(&t, text, strlen(text), child, &err), 0);
	snprintf(text, sizeof(text),
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
		 "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"digest\":\"%s\",\"size\":1}]}",
		 child);
	assert_int_equal(ep_txn_add_blob_buf(&t, text, strlen(text), idx, &err), 0);
	assert_int_equal(ep_txn_add_image(&t, idx, strlen(text), "multi", &err), 0);
	/* a blob only a cache record refers to, and one nothing refers to */
	assert_int_equal(ep_txn_add_blob_buf(&t, "cached-layer", 12, cached, &err), 0);
	rec = json_pack("{s:{s:s}}", "out", "digest", cached);
	assert_int_equal(ep_txn_set_cache(&t, "layer:k", rec, &err), 0);
	json_decref(rec);
	assert_int_equal(ep_txn_add_blob_buf(&t, "junk-junk", 9, junk, &err), 0);
	assert_int_equal(ep_txn_commit(&t, &err), 0);
	/* the index entry of an image index carries the index media type */
	assert_int_equal(ep_store_resolve(&s, "multi", r, &err), 0);

	/* gc needs the exclusive lock */
	assert_int_equal(ep_store_gc(&s, &freed, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	ep_store_release(&s);

	/* leftovers of a crashed atomic write go too */
	spit(f->root, "index.json.tmp.99999", "xx");
	open_ok(&s, f->root, EP_STORE_EXCLUSIVE);
	assert_int_equal(ep_store_gc(&s, &freed, &err), 0);
	assert_int_equal(freed, 9 + 2);
	assert_false(ep_store_has_blob(&s, junk));
	assert_true(ep_store_has_blob(&s, cfg));
	assert_true(ep_store_has_blob(&s, layer));
	assert_true(ep_store_has_blob(&s, man));
	assert_true(ep_store_has_blob(&s, idx));
	assert_true(ep_store_has_blob(&s, child));
	assert_true(ep_store_has_blob(&s, child_layer));
	assert_true(ep_store_has_blob(&s, cached));
	/* a second gc has nothing to do and changes nothing */
	before = snapshot(f->root);
	assert_int_equal(ep_store_gc(&s, &freed, &err), 0);
	assert_int_equal(freed, 0);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* a manifest gc cannot read stops it before anything is removed */
	snprintf(p, sizeof(p), "blobs/sha256/%s", ep_digest_hex(man));
	spit(f->root, p, "{corrupt");
	spit(f->root,
	     "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000",
	     "orphan");
	ep_error_clear(&err);
	assert_int_equal(ep_store_gc(&s, &freed, &err), -1);
	assert_non_null(strstr(err.msg, "nothing removed"));
	assert_true(ep_store_has_blob(
	    &s, "sha256:0000000000000000000000000000000000000000000000000000000000000000"));
	ep_store_release(&s);
}

static void test_busy(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s, x;
	struct timespec t0, t1;

	open_ok(&s, f->root, EP_STORE_CREATE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ep_store_open(&x, f->root, EP_STORE_EXCLUSIVE, &err), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(err.code, EP_EENV);
	assert_non_null(strstr(err.msg, "is busy"));
	assert_true(t1.tv_sec - t0.tv_sec < 10);
	ep_store_release(&s);
	/* once the user is gone, exclusive works, and shared waits for it */
	open_ok(&x, f->root, EP_STORE_EXCLUSIVE);
	ep_store_release(&x);
}

static void test_concurrent_commits(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	pid_t pid[2];
	json_t *idx;
	char *text;
	int st;

	open_ok(&s, f->root, EP_STORE_CREATE);
	ep_store_release(&s);
	for (int c = 0; c < 2; c++) {
		pid[c] = fork();
		assert_true(pid[c] >= 0);
		if (pid[c] == 0) {
			/* each child opens the store for itself, as a process would */
			for (int i = 0; i < 20; i++) {
				struct ep_error e = EP_ERROR_INIT;
				struct ep_store cs;
				struct ep_txn t;
				char m[64], tag[32];
				ep_digest d;

				snprintf(m, sizeof(m), "{\"child\":%d,\"i\":%d}", c, i);
				snprintf(tag, sizeof(tag), "c%d-%d", c, i);
				if (ep_store_open(&cs, f->root, 0, &e) < 0 ||
				    ep_txn_begin(&cs, &t, &e) < 0 ||
				    ep_txn_add_blob_buf(&t, m, strlen(m), d, &e) < 0 ||
				    ep_txn_add_image(&t, d, strlen(m), tag, &e) < 0 ||
				    ep_txn_commit(&t, &e) < 0) {
					fprintf(stderr, "child %d: %s\n", c, e.msg);
					_exit(1);
				}
				ep_store_release(&cs);
			}
			_exit(0);
		}
	}
	for (int c = 0; c < 2; c++) {
		assert_int_equal(waitpid(pid[c], &st, 0), pid[c]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	text = slurp(f->root, "index.json");
	idx = ep_json_loadb(text, strlen(text), EP_JSON_MAX_BYTES, "index", &err);
	free(text);
	assert_non_null(idx);
	assert_int_equal(json_array_size(json_object_get(idx, "manifests")), 40);
	json_decref(idx);
	open_ok(&s, f->root, 0);
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < 20; i++) {
			char tag[32];
			ep_digest d;

			snprintf(tag, sizeof(tag), "c%d-%d", c, i);
			assert_int_equal(ep_store_resolve(&s, tag, d, &err), 0);
		}
	ep_store_release(&s);
}

static void test_kill_during_txn(void **state)
{
	struct fixture *f = *state;
	struct ep_store s;
	ep_digest d;
	char tmp[1024], *before, *after, c;
	int pfd[2], st;
	pid_t pid;

	open_ok(&s, f->root, EP_STORE_CREATE);
	commit_image(&s, "{\"image\":\"kept\"}", "kept", d);
	ep_store_release(&s);
	before = snapshot(f->root);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ep_error e = EP_ERROR_INIT;
		struct ep_store cs;
		struct ep_txn t;

		close(pfd[0]);
		if (ep_store_open(&cs, f->root, 0, &e) < 0 || ep_txn_begin(&cs, &t, &e) < 0 ||
		    ep_txn_add_blob_buf(&t, "{\"image\":\"lost\"}", 16, d, &e) < 0 ||
		    ep_txn_add_image(&t, d, 16, "kept", &e) < 0)
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	live_child = pid;
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	assert_int_equal(count_entries(tmp, "txn-"), 1);
	/* another process opening the store leaves the live txn alone */
	open_ok(&s, f->root, 0);
	ep_store_release(&s);
	assert_int_equal(count_entries(tmp, "txn-"), 1);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	live_child = -1;
	assert_true(WIFSIGNALED(st));
	assert_int_equal(count_entries(tmp, "txn-"), 1);
	open_ok(&s, f->root, 0);
	assert_int_equal(count_entries(tmp, ""), 0);
	ep_store_release(&s);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_abort(void **state)
{
	struct fixture *f = *state;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_store s;
	struct ep_txn t = {0};
	ep_digest d;
	char tmp[1024], *before, *after;

	open_ok(&s, f->root, EP_STORE_CREATE);
	ep_txn_abort(&t); /* a zeroed, never begun txn */
	ep_txn_abort(NULL);
	before = snapshot(f->root);
	assert_int_equal(ep_txn_begin(&s, &t, &err), 0);
	assert_int_equal(ep_txn_add_blob_buf(&t, "{}", 2, d, &err), 0);
	assert_int_equal(ep_txn_add_image(&t, d, 2, "t", &err), 0);
	ep_txn_abort(&t);
	ep_txn_abort(&t);
	assert_int_equal(ep_txn_commit(&t, &err), -1);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);
	assert_int_equal(count_entries(tmp, ""), 0);
	after = snapshot(f->root);
	assert_string_equal(before, after);
	free(before);
	free(after);
	ep_store_release(&s);
}

static void test_stale_cleanup(void **state)
{
	struct fixture *f = *state;
	struct ep_store s;
	char p[1024];
	int fd;

	open_ok(&s, f->root, EP_STORE_CREATE);
	ep_store_release(&s);
	/* a dead txn (lock free), a finished one (no .lock), a new-* being
	 * created (no .lock yet, young), a dead new-*, and a foreign file */
	for (const char *const *d = (const char *const[]){"txn-dead01", "txn-fin001", "new-young1",
							  "new-dead01", NULL};
	     *d; d++) {
		snprintf(p, sizeof(p), "%s/tmp/%s", f->root, *d);
		assert_int_equal(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p), "%s/tmp/%s/blob-0", f->root, *d);
		fd = open(p, O_WRONLY | O_CREAT, 0644);
		assert_true(fd >= 0);
		close(fd);
		if (strcmp(*d, "txn-fin001") && strcmp(*d, "new-young1")) {
			snprintf(p, sizeof(p), "%s/tmp/%s/.lock", f->root, *d);
			fd = open(p, O_WRONLY | O_CREAT, 0644);
			assert_true(fd >= 0);
			close(fd);
		}
	}
	spit(f->root, "tmp/foreign", "x");
	open_ok(&s, f->root, 0);
	ep_store_release(&s);
	snprintf(p, sizeof(p), "%s/tmp", f->root);
	assert_int_equal(count_entries(p, "txn-"), 0);
	assert_int_equal(count_entries(p, "new-dead01"), 0);
	assert_int_equal(count_entries(p, "new-young1"), 1);
	assert_int_equal(count_entries(p, "foreign"), 1);
}

static void test_shared_waits_for_exclusive(void **state)
{
	struct fixture *f = *state;
	struct ep_store s;
	struct timespec released, t1;
	int pfd[2], st;
	pid_t pid;
	char c;

	open_ok(&s, f->root, EP_STORE_CREATE);
	ep_store_release(&s);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ep_error e = EP_ERROR_INIT;
		struct ep_store x;
		struct timespec ts = {0, 400 * 1000 * 1000};

		close(pfd[0]);
		if (ep_store_open(&x, f->root, EP_STORE_EXCLUSIVE, &e) < 0 ||
		    write(pfd[1], "r", 1) != 1)
			_exit(1);
		nanosleep(&ts, NULL);
		/* the time just before the release: the shared open must end
		 * after it (a causal order, where a measured wait would depend
		 * on when this test's process was scheduled) */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (write(pfd[1], &ts, sizeof(ts)) != (ssize_t)sizeof(ts))
			_exit(1);
		_exit(0); /* the kernel drops the lock */
	}
	live_child = pid;
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	open_ok(&s, f->root, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ep_store_release(&s);
	assert_int_equal(read(pfd[0], &released, sizeof(released)), (ssize_t)sizeof(released));
	close(pfd[0]);
	assert_true(t1.tv_sec > released.tv_sec ||
		    (t1.tv_sec == released.tv_sec && t1.tv_nsec >= released.tv_nsec));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	live_child = -1;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_root),
	    cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idempotent_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tag_move, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_commits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kill_during_txn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_cleanup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_waits_for_exclusive, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
