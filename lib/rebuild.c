#include "rebuild.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_dl.h"
#include "jsonutil.h"
#include "oci.h"
#include "source.h"
#include "util.h"

#define MAX_PATHS_REPORTED 50

static const char *entry_type(mode_t m)
{
	switch (m & AE_IFMT) {
	case AE_IFREG:
		return "file";
	case AE_IFDIR:
		return "dir";
	case AE_IFLNK:
		return "symlink";
	case AE_IFCHR:
		return "char";
	case AE_IFBLK:
		return "block";
	case AE_IFIFO:
		return "fifo";
	default:
		return "other";
	}
}

json_t *ep_layer_listing(const char *blob_path, size_t max_entries, struct ep_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	cleanup_json json_t *out = json_object();
	char buf[1 << 16];
	size_t n = 0;
	int r;

	if (!a || !out) {
		if (a)
			archive_read_free(a);
		ep_error_oom(err);
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, blob_path, 1 << 20) != ARCHIVE_OK) {
		ep_error_set(err, EP_EENV, "cannot read layer '%s': %s", blob_path, archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		const char *hl = archive_entry_hardlink(e);
		const char *sl = archive_entry_symlink(e);
		struct ep_sha256 h;
		ep_digest d = "";
		json_t *rec;

		if (!p)
			continue;
		if (++n > max_entries) {
			ep_error_set(err, EP_EINVAL, "layer '%s' has more than %zu entries", blob_path, max_entries);
			goto fail;
		}
		if (archive_entry_filetype(e) == AE_IFREG && !hl) {
			ssize_t k;

			if (ep_sha256_init(&h, err) < 0)
				goto fail;
			while ((k = archive_read_data(a, buf, sizeof(buf))) > 0)
				ep_sha256_update(&h, buf, (size_t)k);
			if (k < 0) {
				ep_sha256_release(&h);
				ep_error_set(err, EP_EMISMATCH, "layer '%s': %s", blob_path, archive_error_string(a));
				goto fail;
			}
			ep_sha256_final(&h, d);
		}
		rec = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "type", hl ? "hardlink" : entry_type(archive_entry_filetype(e)),
				"mode", "", "uid", (json_int_t)archive_entry_uid(e), "gid",
				(json_int_t)archive_entry_gid(e), "mtime", (json_int_t)archive_entry_mtime(e),
				"size", (json_int_t)archive_entry_size(e));
		if (!rec) {
			ep_error_oom(err);
			goto fail;
		}
		{
			char mode[8];

			snprintf(mode, sizeof(mode), "%04o", (unsigned)(archive_entry_perm(e) & 07777));
			json_object_set_new(rec, "mode", json_string(mode));
		}
		if (hl || sl)
			json_object_set_new(rec, "link", json_string(hl ? hl : sl));
		if (d[0])
			json_object_set_new(rec, "sha256", json_string(d));
		json_object_set_new(out, p, rec);
	}
	if (r != ARCHIVE_EOF) {
		ep_error_set(err, EP_EMISMATCH, "layer '%s': %s", blob_path, archive_error_string(a));
		goto fail;
	}
	archive_read_free(a);
	return steal_pointer(&out);
fail:
	archive_read_free(a);
	return NULL;
}

/* Short human form of a listing record: "file 0644 0:0 size 12 sha256:ab12…". */
static json_t *describe_entry(json_t *rec)
{
	/* allocated: a link target from the layer is as long as it is; two
	 * targets cut to one length would read the same */
	cleanup_free char *s = NULL;
	const char *sha = json_string_value(json_object_get(rec, "sha256"));
	const char *link = json_string_value(json_object_get(rec, "link"));

	if (!rec)
		return json_string("(absent)");
	s = ep_asprintf(NULL, "%s %s %lld:%lld mtime %lld size %lld%s%.19s%s%s",
			json_string_value(json_object_get(rec, "type")),
			json_string_value(json_object_get(rec, "mode")),
			(long long)json_integer_value(json_object_get(rec, "uid")),
			(long long)json_integer_value(json_object_get(rec, "gid")),
			(long long)json_integer_value(json_object_get(rec, "mtime")),
			(long long)json_integer_value(json_object_get(rec, "size")), sha ? " " : "",
			sha ? sha : "", link ? " -> " : "", link ? link : "");
	return s ? json_string(s) : NULL;
}

static int diff_listings(json_t *a, json_t *b, json_t *paths)
{
	const char *k;
	json_t *v;
	int n = 0;

	json_object_foreach(a, k, v) {
		json_t *w = json_object_get(b, k);

		if (w && json_equal(v, w))
			continue;
		n++;
		if (json_array_size(paths) < MAX_PATHS_REPORTED)
			json_array_append_new(paths, json_pack("{s:s, s:o, s:o}", "path", k, "image",
							       describe_entry(v), "rebuilt", describe_entry(w)));
	}
	json_object_foreach(b, k, v) {
		if (json_object_get(a, k))
			continue;
		n++;
		if (json_array_size(paths) < MAX_PATHS_REPORTED)
			json_array_append_new(paths, json_pack("{s:s, s:o, s:o}", "path", k, "image",
							       describe_entry(NULL), "rebuilt", describe_entry(v)));
	}
	return n;
}

static json_t *read_doc(const char *layout, const char *digest, size_t max, struct ep_error *err)
{
	size_t len;
	cleanup_free char *text = ep_layout_read_blob(layout, digest, max, &len, err);

	return text ? ep_json_loadb(text, len, max, digest, err) : NULL;
}

/* Appends one entry per layer position to layers (digests and diff_ids of
 * both images side by side); returns the first position whose content
 * differs, or -1. */
static long compare_layers(json_t *la, json_t *lb, json_t *cfg_a, json_t *cfg_b, json_t *layers)
{
	json_t *ids_a = json_object_get(json_object_get(cfg_a, "rootfs"), "diff_ids");
	json_t *ids_b = json_object_get(json_object_get(cfg_b, "rootfs"), "diff_ids");
	size_t i, n;
	long first = -1;

	n = json_array_size(la) > json_array_size(lb) ? json_array_size(la) : json_array_size(lb);
	for (i = 0; i < n; i++) {
		json_t *da = json_object_get(json_array_get(la, i), "digest");
		json_t *db = json_object_get(json_array_get(lb, i), "digest");
		json_t *ia = json_array_get(ids_a, i);
		json_t *ib = json_array_get(ids_b, i);
		int same_content = ia && ib && json_equal(ia, ib);

		json_array_append_new(
		    layers, json_pack("{s:I, s:O?, s:O?, s:O?, s:O?, s:b, s:b}", "index",
				      (json_int_t)i, "image_digest", da, "rebuilt_digest", db,
				      "image_diff_id", ia, "rebuilt_diff_id", ib, "same_content",
				      same_content, "same_bytes", da && db && json_equal(da, db)));
		if (!same_content && first < 0)
			first = (long)i;
	}
	return first;
}

/* Lists the paths that differ inside layer `first` of both images into
 * rep.paths and counts them in rep.paths_differing. */
static int diff_first_layer(const char *layout, struct ep_store *tmp, json_t *la, json_t *lb,
			    size_t first, json_t *rep, struct ep_error *err)
{
	const char *da = json_string_value(json_object_get(json_array_get(la, first), "digest"));
	const char *db = json_string_value(json_object_get(json_array_get(lb, first), "digest"));
	cleanup_free char *pa =
	    da && ep_digest_check(da, err) == 0
		? ep_asprintf(err, "%s/blobs/sha256/%s", layout, ep_digest_hex(da))
		: NULL;
	cleanup_free char *pb = ep_store_blob_path(tmp, db, err);
	cleanup_json json_t *xa = pa ? ep_layer_listing(pa, 10000000, err) : NULL;
	cleanup_json json_t *xb = xa && pb ? ep_layer_listing(pb, 10000000, err) : NULL;

	if (!xb)
		return -1;
	json_object_set_new(rep, "paths_differing",
			    json_integer(diff_listings(xa, xb, json_object_get(rep, "paths"))));
	return 0;
}

/* Names the config fields (and "created") whose values differ. */
static void diff_config_fields(json_t *cfg_a, json_t *cfg_b, json_t *fields)
{
	json_t *a = json_object_get(cfg_a, "config"), *b = json_object_get(cfg_b, "config");
	const char *k;
	json_t *v;

	json_object_foreach (a, k, v)
		if (!json_equal(v, json_object_get(b, k)))
			json_array_append_new(fields, json_string(k));
	json_object_foreach (b, k, v)
		if (!json_object_get(a, k))
			json_array_append_new(fields, json_string(k));
	if (!json_equal(json_object_get(cfg_a, "created"), json_object_get(cfg_b, "created")))
		json_array_append_new(fields, json_string("created"));
}

/* Sets rep.verdict and a sentence for a person in rep.explanation. */
static int explain_verdict(json_t *rep, const char *digest, const char *ca,
			   const struct ep_build_result *r, long first, struct ep_error *err)
{
	json_t *layers = json_object_get(rep, "layers"),
	       *fields = json_object_get(rep, "config_fields");
	const char *verdict;
	char *text;
	cleanup_free char *rc_desc = NULL;

	if (!strcmp(digest, r->manifest_digest))
		verdict = "identical";
	else if (!strcmp(ca, r->config_digest))
		verdict = "same-content";
	else
		verdict = "different";
	json_object_set_new(rep, "verdict", json_string(verdict));
	json_object_set(json_object_get(rep, "rebuilt"), "compressor",
			r->compressor ? r->compressor : json_null());
	rc_desc = ep_json_canonical(json_object_get(json_object_get(rep, "rebuilt"), "compressor"),
				    NULL, NULL);
	if (!strcmp(verdict, "identical"))
		text = ep_asprintf(err, "the rebuild gives the same bytes: %s", digest);
	else if (!strcmp(verdict, "same-content"))
		text = ep_asprintf(
		    err,
		    "same content, different bytes: every layer's uncompressed content "
		    "(diff_id) and the config match (%s), but the compressed layers differ; "
		    "the rebuild compressed with %s. A different compressor, library version, "
		    "level or block size gives other bytes for the same content.",
		    ca, rc_desc ? rc_desc : "?");
	else if (first >= 0)
		text = ep_asprintf(
		    err,
		    "different content: layer %ld is the first whose uncompressed content "
		    "differs (image %s, rebuild %s); %lld path(s) differ in it",
		    first + 1,
		    json_string_value(
			json_object_get(json_array_get(layers, (size_t)first), "image_diff_id"))
			?: "(none)",
		    json_string_value(
			json_object_get(json_array_get(layers, (size_t)first), "rebuilt_diff_id"))
			?: "(none)",
		    (long long)json_integer_value(json_object_get(rep, "paths_differing")));
	else
		text =
		    ep_asprintf(err,
				"different config: the layers match but the image config differs "
				"in %zu field(s)",
				json_array_size(fields));
	if (!text)
		return -1;
	{
		const char *why = json_string_value(
		    json_object_get(json_object_get(rep, "envpin_source"), "differs"));
		char *t2 = why ? ep_asprintf(err, "%s. Note: %s.", text, why) : NULL;

		if (why && !t2) {
			free(text);
			return -1;
		}
		if (t2) {
			free(text);
			text = t2;
		}
	}
	json_object_set_new(rep, "explanation", json_string(text));
	free(text);
	return 0;
}

/* rep.envpin_source: which envpin wrote the lock, which one rebuilt, and
 * a sentence when they differ (the reviewer must see it in the verdict). */
static int add_source_verdict(json_t *rep, json_t *lock, struct ep_error *err)
{
	json_t *now = ep_source_record(err);
	cleanup_free char *why = NULL;
	json_t *rec;

	if (!now)
		return -1;
	why = lock ? ep_source_differs(lock) : NULL;
	rec = json_pack("{s:O?, s:O?, s:o, s:s?}", "lock_version", json_object_get(lock, "envpin"),
			"lock", json_object_get(lock, "envpin_source"), "rebuild", now, "differs",
			why);
	if (!rec || json_object_set_new(rep, "envpin_source", rec) < 0)
		return ep_error_oom(err);
	return 0;
}

int ep_rebuild_compare(struct ep_store *s, const char *layout, const char *digest,
		       const struct ep_build_opts *o, json_t **report, struct ep_error *err)
{
	char *tmpl = NULL;
	int tmpl_fd = -1;
	cleanup_json json_t *man_a = NULL, *man_b = NULL, *cfg_a = NULL, *cfg_b = NULL, *rep = NULL;
	cleanup_json json_t *lock = NULL;
	struct ep_build_opts bo = *o;
	struct ep_build_result r;
	struct ep_store tmp = {0};
	const char *ca;
	json_t *la, *lb;
	long first;
	int rc = -1, tmp_open = 0;

	memset(&r, 0, sizeof(r));
	if (!layout)
		layout = s->root;
	/* its lock is held before the dir exists: a kill at any point leaves
	 * what the next open of s removes */
	tmpl = ep_store_scratch_dir(s, "rebuild", &tmpl_fd, err);
	if (!tmpl)
		return -1;
	if (ep_store_open(&tmp, tmpl, EP_STORE_CREATE, err) < 0)
		goto out;
	tmp_open = 1;
	bo.no_lock_write = 1;
	bo.locked = 0;
	bo.out_dir = NULL;
	bo.tag = "rebuild";
	if (ep_build(&tmp, &bo, &r, err) < 0) {
		ep_error_wrap(err, "rebuild");
		goto out;
	}
	man_a = read_doc(layout, digest, EP_MAX_MANIFEST_BYTES, err);
	man_b = man_a ? read_doc(tmp.root, r.manifest_digest, EP_MAX_MANIFEST_BYTES, err) : NULL;
	if (!man_b)
		goto out;
	ca = json_string_value(json_object_get(json_object_get(man_a, "config"), "digest"));
	if (!ca || ep_digest_check(ca, err) < 0)
		goto out;
	cfg_a = read_doc(layout, ca, EP_MAX_CONFIG_BYTES, err);
	cfg_b = cfg_a ? read_doc(tmp.root, r.config_digest, EP_MAX_CONFIG_BYTES, err) : NULL;
	if (!cfg_b)
		goto out;
	if (r.lock_path)
		lock = ep_json_load_file(r.lock_path, EP_JSON_MAX_BYTES, NULL);

	rep = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}, s:[], s:[], s:[]}", "image", "digest", digest,
			"config_digest", ca, "rebuilt", "digest", r.manifest_digest, "config_digest",
			r.config_digest, "layers", "paths", "config_fields");
	if (!rep) {
		ep_error_oom(err);
		goto out;
	}
	json_object_set(rep, "lock_compressor",
			lock && json_object_get(lock, "compressor")
			    ? json_object_get(lock, "compressor")
			    : json_null());
	if (add_source_verdict(rep, lock, err) < 0)
		goto out;
	la = json_object_get(man_a, "layers");
	lb = json_object_get(man_b, "layers");
	first = compare_layers(la, lb, cfg_a, cfg_b, json_object_get(rep, "layers"));
	json_object_set_new(rep, "first_different_layer", first < 0 ? json_null() : json_integer(first));
	if (first >= 0 && json_array_get(la, (size_t)first) && json_array_get(lb, (size_t)first) &&
	    diff_first_layer(layout, &tmp, la, lb, (size_t)first, rep, err) < 0)
		goto out;
	diff_config_fields(cfg_a, cfg_b, json_object_get(rep, "config_fields"));
	if (explain_verdict(rep, digest, ca, &r, first, err) < 0)
		goto out;
	*report = steal_pointer(&rep);
	rc = 0;
out:
	ep_build_result_release(&r);
	if (tmp_open)
		ep_store_release(&tmp);
	ep_store_scratch_release(tmpl, tmpl_fd);
	return rc;
}
