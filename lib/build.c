#include "build.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apt.h"
#include "debian.h"
#include "fetch.h"
#include "jsonutil.h"
#include "layer.h"
#include "pip.h"
#include "ref.h"
#include "registry.h"
#include "runstep.h"
#include "sink.h"
#include "source.h"
#include "strvec.h"
#include "trust/sidecar.h"
#include "unpack.h"
#include "util.h"

#define LOCK_VERSION 1
#define LOCK_MAX_BYTES (4u << 20)

void ep_rfc3339(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ep_build_result_release(struct ep_build_result *r)
{
	if (!r)
		return;
	free(r->layers);
	free(r->lock_path);
	free(r->warning);
	r->warning = NULL;
	json_decref(r->compressor);
	r->compressor = NULL;
	r->layers = NULL;
	r->lock_path = NULL;
	r->n_layers = 0;
}

/* State of one build, so helpers take one pointer. */
struct bctx {
	const struct ep_build_opts *o;
	struct ep_manifest *m;
	struct ep_store *s;
	struct ep_txn txn;
	int txn_open;
	struct ep_compress_params cp;
	json_t *cdesc;       /* compressor description (lock + cache keys) */
	json_t *lock;        /* existing lock or NULL */
	json_t *inputs;      /* inputs section being built for the new lock */
	json_t *base_config; /* "config" object of the base image, or NULL */
	json_t *history;     /* image history entries */
	json_t *diff_ids;
	json_t *mlayers;     /* manifest layer descriptors */
	struct ep_build_result *r;
	char *spool;         /* txn dir, for archive spooling */
	/* run steps (rootfs_dir, run_in_image): the image built so far,
	 * flattened in the txn dir, with its first rootfs_layers layers applied */
	char *rootfs_dir;
	size_t rootfs_layers;
	const char *label;    /* NULL for the image, "stages.NAME." for a stage */
	json_t *links;	      /* ep_archive_links of each layer so far (copy dests) */
	struct bctx *top;     /* the image's bctx when this one builds a stage */
	json_t *stage_inputs; /* top: {NAME: lock inputs of the stage} */
	json_t *stage_roots;  /* top: {NAME: its final rootfs dir in the txn} */
};

static int add_result_layer(struct bctx *b, const char *what, const char *digest,
			    const char *diff_id, uint64_t size, const char *media_type, int cached,
			    int from_base, struct ep_error *err)
{
	struct ep_build_result *r = b->r;
	struct ep_build_layer *l;
	json_t *desc;

	l = ep_realloc(r->layers, (r->n_layers + 1) * sizeof(*l), err);
	if (!l)
		return -1;
	r->layers = l;
	l = &r->layers[r->n_layers++];
	memset(l, 0, sizeof(*l));
	snprintf(l->digest, sizeof(l->digest), "%s", digest);
	snprintf(l->diff_id, sizeof(l->diff_id), "%s", diff_id);
	snprintf(l->what, sizeof(l->what), "%s", what);
	l->size = size;
	l->cached = cached;
	l->from_base = from_base;
	desc = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", digest, "size",
			 (json_int_t)size);
	if (!desc || json_array_append_new(b->mlayers, desc) < 0 ||
	    json_array_append_new(b->diff_ids, json_string(diff_id)) < 0)
		return ep_error_oom(err);
	return 0;
}

static int add_history(struct bctx *b, const char *created_by, int empty, struct ep_error *err)
{
	char when[32];
	json_t *h;

	ep_rfc3339(b->m->source_date_epoch, when);
	h = json_pack("{s:s, s:s}", "created", when, "created_by", created_by);
	if (!h)
		return ep_error_oom(err);
	if (empty)
		json_object_set_new(h, "empty_layer", json_true());
	if (json_array_append_new(b->history, h) < 0)
		return ep_error_oom(err);
	return 0;
}

/* Cache key of a layer: its inputs plus everything that shapes its bytes. */
static int layer_cache_key(struct bctx *b, json_t *input, char key[80], struct ep_error *err)
{
	cleanup_json json_t *k = json_pack("{s:i, s:O, s:I, s:O}", "profile", EP_PROFILE, "compressor",
					   b->cdesc, "sde", (json_int_t)b->m->source_date_epoch,
					   "input", input);
	cleanup_free char *text = NULL;
	ep_digest d;
	size_t len;

	if (!k)
		return ep_error_oom(err);
	text = ep_json_canonical(k, &len, err);
	if (!text || ep_sha256_buf(text, len, d, err) < 0)
		return -1;
	snprintf(key, 80, "layer-%s", ep_digest_hex(d));
	return 0;
}

/* A cached layer record is usable if its blob is in the store. */
static json_t *cache_lookup(struct bctx *b, const char *key)
{
	json_t *rec = ep_store_cache_get(b->s, key);
	const char *d;

	if (!rec)
		return NULL;
	d = json_string_value(json_object_get(rec, "digest"));
	if (!d || ep_digest_check(d, NULL) < 0 || !json_is_string(json_object_get(rec, "diff_id")) ||
	    !json_is_integer(json_object_get(rec, "size")) || !ep_store_has_blob(b->s, d)) {
		json_decref(rec);
		return NULL;
	}
	return rec;
}

static int use_record(struct bctx *b, const char *what, json_t *rec, int cached, struct ep_error *err)
{
	return add_result_layer(b, what, json_string_value(json_object_get(rec, "digest")),
				json_string_value(json_object_get(rec, "diff_id")),
				(uint64_t)json_integer_value(json_object_get(rec, "size")),
				json_string_value(json_object_get(rec, "media_type")), cached, 0, err);
}

/* Reports uncompressed bytes through the progress callback every 32 MiB. */
struct progress_sink {
	struct ep_sink base;
	const struct ep_build_opts *o;
	const char *what;
	uint64_t bytes, next_report;
};

static int progress_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct progress_sink *p = (struct progress_sink *)s;

	p->bytes += len;
	if (p->bytes >= p->next_report) {
		p->o->progress(p->o->pctx, p->what, p->bytes, 0);
		p->next_report = p->bytes + (32u << 20);
	}
	return ep_sink_write(s->next, buf, len, err);
}

/* tree -> tar -> hash(diff_id) -> compress -> hash(digest) -> temp file. */
static json_t *write_layer(struct bctx *b, struct ep_tree *tree, const char *what,
			   struct ep_error *err)
{
	struct progress_sink ps = {{progress_write, NULL, NULL, NULL}, b->o, what, 0, 32u << 20};
	cleanup_close int fd = -1;
	cleanup_free char *tmp = NULL;
	struct ep_fd_sink fds;
	struct ep_hash_sink dh, uh;
	struct ep_sink *cs = NULL;
	json_t *rec = NULL;
	int ok = -1;

	if (ep_txn_tempfile(&b->txn, &fd, &tmp, err) < 0)
		return NULL;
	ep_fd_sink_init(&fds, fd);
	if (ep_hash_sink_init(&dh, &fds.base, err) < 0)
		return NULL;
	cs = ep_compress_sink_new(&b->cp, &dh.base, err);
	if (!cs)
		goto out_dh;
	if (ep_hash_sink_init(&uh, cs, err) < 0)
		goto out_cs;
	ps.base.next = &uh.base;
	if (ep_tree_write(tree, b->o->progress ? &ps.base : &uh.base, err) < 0)
		goto out_uh;
	if (ep_txn_add_blob_file(&b->txn, tmp, dh.digest, err) < 0)
		goto out_uh;
	rec = json_pack("{s:s, s:s, s:I, s:s}", "digest", dh.digest, "diff_id", uh.digest, "size",
			(json_int_t)dh.bytes, "media_type", ep_compression_media_type(b->cp.kind));
	if (!rec)
		ep_error_oom(err);
	ok = 0;
out_uh:
	ep_sink_release(&uh.base);
out_cs:
	ep_compress_sink_free(cs);
out_dh:
	ep_sink_release(&dh.base);
	(void)ok;
	return rec;
}

/* sha256 of a pinned input file, remembered by its stat so that a no-op
 * rebuild does not re-read a large base tar. */
static int pinned_file_sha256(struct bctx *b, const char *path, ep_digest out, struct ep_error *err)
{
	struct stat st;
	/* allocated: a long path truncated here would drop the stat fields
	 * and let a changed file hit the cache */
	cleanup_free char *id = NULL;
	char key[80]; /* "file-" + 64 hex digits */
	ep_digest kd;
	json_t *rec;

	if (stat(path, &st) < 0)
		return ep_error_errno(err, EP_EINVAL, errno, "cannot open '%s'", path);
	id = ep_asprintf(err, "%s\n%ju\n%ju\n%jd\n%ld.%09ld\n%ld.%09ld", path, (uintmax_t)st.st_dev,
			 (uintmax_t)st.st_ino, (intmax_t)st.st_size, (long)st.st_mtim.tv_sec,
			 st.st_mtim.tv_nsec, (long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	if (!id || ep_sha256_buf(id, strlen(id), kd, err) < 0)
		return -1;
	snprintf(key, sizeof(key), "file-%s", ep_digest_hex(kd));
	rec = ep_store_cache_get(b->s, key);
	if (rec) {
		const char *d = json_string_value(json_object_get(rec, "sha256"));

		if (d && ep_digest_check(d, NULL) == 0) {
			snprintf(out, sizeof(ep_digest), "%s", d);
			json_decref(rec);
			return 0;
		}
		json_decref(rec);
	}
	if (b->o->progress)
		b->o->progress(b->o->pctx, "hashing base", 0, (uint64_t)st.st_size);
	if (ep_sha256_file(path, out, NULL, err) < 0)
		return -1;
	rec = json_pack("{s:s}", "sha256", out);
	if (!rec)
		return ep_error_oom(err);
	if (ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
		json_decref(rec);
		return -1;
	}
	json_decref(rec);
	return 0;
}

static const char *step_kind_name(enum ep_step_kind k)
{
	switch (k) {
	case EP_STEP_COPY:
		return "copy";
	case EP_STEP_APT:
		return "apt";
	case EP_STEP_FETCH:
		return "fetch";
	case EP_STEP_PIP:
		return "pip";
	case EP_STEP_RUN:
		return "run";
	}
	return "?";
}

/* Compares a freshly resolved input with the lock's; --locked refuses drift. */
static int check_locked(struct bctx *b, const char *where, json_t *now, json_t *locked,
			struct ep_error *err)
{
	cleanup_free char *a = NULL, *c = NULL;

	if (!b->o->locked)
		return 0;
	if (locked && json_equal(now, locked))
		return 0;
	a = locked ? ep_json_canonical(locked, NULL, err) : ep_strdup("(nothing)", err);
	c = ep_json_canonical(now, NULL, err);
	if (!a || !c)
		return -1;
	return ep_error_set(err, EP_EINVAL,
			    "--locked: %s differs from the lock '%s':\n  lock:     %s\n  manifest: %s\n"
			    "run 'envpin lock' or build without --locked to update the lock",
			    where, b->r->lock_path, a, c);
}

static json_t *lock_input(struct bctx *b, const char *section, size_t i)
{
	json_t *in = b->lock ? json_object_get(b->lock, "inputs") : NULL;

	if (!in)
		return NULL;
	if (!strcmp(section, "base"))
		return json_object_get(in, "base");
	return json_array_get(json_object_get(in, "layers"), i);
}

/* Checks the base's resolved input against the lock (--locked) and records
 * it for the new lock.  `where` names the input in a drift message. */
static int record_base_input(struct bctx *b, const char *where, json_t *input, struct ep_error *err)
{
	if (check_locked(b, where, input, lock_input(b, "base", 0), err) < 0)
		return -1;
	if (json_object_set(b->inputs, "base", input) < 0)
		return ep_error_oom(err);
	return 0;
}

/* The same for a layer step's input: checked against the lock's input of
 * that step (locked, may be NULL) and appended to the new lock's layers. */
static int record_layer_input(struct bctx *b, const char *where, json_t *input, json_t *locked,
			      struct ep_error *err)
{
	if (check_locked(b, where, input, locked, err) < 0)
		return -1;
	if (json_array_append(json_object_get(b->inputs, "layers"), input) < 0)
		return ep_error_oom(err);
	return 0;
}

static int do_base_rootfs(struct bctx *b, int resolve_only, struct ep_error *err)
{
	struct ep_base *base = &b->m->base;
	cleanup_json json_t *input = NULL;
	cleanup_free char *rel = NULL;
	ep_digest have;
	char key[80];
	json_t *rec;

	if (pinned_file_sha256(b, base->path, have, err) < 0)
		return ep_error_wrap(err, "base rootfs");
	if (strcmp(ep_digest_hex(have), base->sha256) != 0)
		return ep_error_set(err, EP_EINVAL,
				    "%s: base.sha256: '%s' does not match the manifest:\n"
				    "  manifest says sha256:%s\n  file hashes to %s",
				    b->m->path, base->path, base->sha256, have);
	input = json_pack("{s:s, s:s}", "kind", "rootfs", "sha256", base->sha256);
	if (!input)
		return ep_error_oom(err);
	if (record_base_input(b, "base", input, err) < 0)
		return -1;
	if (resolve_only)
		return 0;
	if (layer_cache_key(b, input, key, err) < 0)
		return -1;
	rec = cache_lookup(b, key);
	if (!rec) {
		struct ep_tree *tree = ep_tree_new(b->spool, err);

		if (!tree)
			return -1;
		if (b->o->progress)
			b->o->progress(b->o->pctx, "base rootfs", 0, 0);
		if (ep_tree_add_archive(tree, base->path, "/", b->m->source_date_epoch, err) < 0 ||
		    !(rec = write_layer(b, tree, "base rootfs", err))) {
			ep_tree_free(tree);
			return ep_error_wrap(err, "base rootfs '%s'", base->path);
		}
		ep_tree_free(tree);
		if (ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
			json_decref(rec);
			return -1;
		}
		if (use_record(b, "base rootfs", rec, 0, err) < 0) {
			json_decref(rec);
			return -1;
		}
	} else if (use_record(b, "base rootfs", rec, 1, err) < 0) {
		json_decref(rec);
		return -1;
	}
	json_decref(rec);
	rel = ep_asprintf(err, "envpin: base rootfs sha256:%s", base->sha256);
	return rel ? add_history(b, rel, 0, err) : -1;
}

/* From a bundle: the sources.list of this base (the image's, or a stage's by
 * its label); NULL with err set when the bundle has none for it. */
static const char *offline_sources(const struct bctx *b, struct ep_error *err)
{
	const struct ep_offline *off = b->o->offline;
	const char *p = b->label ? json_string_value(json_object_get(off->stage_sources, b->label))
				 : off->sources_list;

	if (!p)
		ep_error_set(err, EP_EINVAL, "the bundle has no debian record for %sbase",
			     b->label ? b->label : "");
	return p;
}

/* The debian base: mmdebstrap from the mirror, normalized like any archive.
 * The cache is keyed by the manifest's inputs; the package set the mirror
 * served is part of the lock input, so --locked notices a moved mirror. */
static int do_base_debian(struct bctx *b, int resolve_only, struct ep_error *err)
{
	struct ep_base *base = &b->m->base;
	cleanup_json json_t *input = ep_debian_input(base, err);
	cleanup_json json_t *pkgs = NULL;
	cleanup_free char *by = NULL;
	json_t *rec, *locked = lock_input(b, "base", 0);
	char key[80];
	int cached = 1;

	if (!input)
		return -1;
	json_object_set_new(input, "source_date_epoch", json_integer(b->m->source_date_epoch));
	if (layer_cache_key(b, input, key, err) < 0)
		return -1;
	rec = cache_lookup(b, key);
	if (rec && json_is_array(json_object_get(rec, "packages"))) {
		pkgs = json_incref(json_object_get(rec, "packages"));
	} else {
		cleanup_free char *work = ep_path_join(b->txn.dir, "debian", err);
		cleanup_free char *tar = NULL;
		struct ep_tree *tree;

		json_decref(rec);
		rec = NULL;
		cached = 0;
		if (!work || ep_mkdir_p(work, err) < 0 || !(tar = ep_path_join(work, "rootfs.tar", err)))
			return -1;
		if ((b->o->offline && b->o->offline->debian_repo
			 ? ep_debian_rootfs_offline(base, b->m->source_date_epoch, work, tar,
						    b->o->offline->debian_repo,
						    offline_sources(b, err), &pkgs, err)
			 : ep_debian_rootfs(base, b->m->source_date_epoch, work, tar, &pkgs,
					    b->o->progress, b->o->pctx, err)) < 0)
			return ep_error_wrap(err, "%s: base debian", b->m->path);
		if (!resolve_only) {
			tree = ep_tree_new(b->spool, err);
			if (!tree)
				return -1;
			if (ep_tree_add_archive(tree, tar, "/", b->m->source_date_epoch, err) < 0 ||
			    !(rec = write_layer(b, tree, "base debian", err))) {
				ep_tree_free(tree);
				return ep_error_wrap(err, "base debian");
			}
			ep_tree_free(tree);
			json_object_set(rec, "packages", pkgs);
			if (ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
				json_decref(rec);
				return -1;
			}
		}
		unlink(tar);
	}
	json_object_set(input, "packages", pkgs);
	if (b->o->locked && locked && json_is_array(json_object_get(locked, "packages"))) {
		cleanup_free char *d = ep_debian_diff(json_object_get(locked, "packages"), pkgs);

		if (d) {
			json_decref(rec);
			return ep_error_set(err, EP_EINVAL, "--locked: base debian differs from the lock '%s': %s",
					    b->r->lock_path, d);
		}
	}
	if (record_base_input(b, "base", input, err) < 0) {
		json_decref(rec);
		return -1;
	}
	if (resolve_only) {
		json_decref(rec);
		return 0;
	}
	if (use_record(b, "base debian", rec, cached, err) < 0) {
		json_decref(rec);
		return -1;
	}
	json_decref(rec);
	by = ep_asprintf(err, "envpin: base debian %s (%zu packages)", base->suite, json_array_size(pkgs));
	return by ? add_history(b, by, 0, err) : -1;
}

/* Copies a blob from a foreign layout into the txn, checking its digest. */
static int import_blob(struct bctx *b, const char *layout, const char *digest, struct ep_error *err)
{
	cleanup_free char *src = NULL, *tmp = NULL;
	cleanup_close int in = -1, out = -1;
	struct ep_fd_sink fds;
	struct ep_hash_sink h;
	char buf[1 << 16];

	if (ep_store_has_blob(b->s, digest))
		return 0;
	src = ep_asprintf(err, "%s/blobs/sha256/%s", layout, ep_digest_hex(digest));
	if (!src)
		return -1;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return ep_error_errno(err, EP_EINVAL, errno, "blob %s is missing from '%s'", digest, layout);
	if (ep_txn_tempfile(&b->txn, &out, &tmp, err) < 0)
		return -1;
	ep_fd_sink_init(&fds, out);
	if (ep_hash_sink_init(&h, &fds.base, err) < 0)
		return -1;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ep_sink_release(&h.base);
			return ep_error_errno(err, EP_EENV, errno, "read '%s'", src);
		}
		if (n == 0)
			break;
		if (ep_sink_write(&h.base, buf, (size_t)n, err) < 0) {
			ep_sink_release(&h.base);
			return -1;
		}
	}
	if (ep_sink_finish(&h.base, err) < 0)
		return -1;
	if (strcmp(h.digest, digest) != 0)
		return ep_error_set(err, EP_EMISMATCH, "blob %s in '%s' hashes to %s", digest, layout,
				    h.digest);
	return ep_txn_add_blob_file(&b->txn, tmp, digest, err);
}

/* The layers and config of image `digest` in the OCI layout at path (an oci
 * base, or the store itself for an image base) become the base. */
static int base_from_layout(struct bctx *b, const char *path, const char *digest, int resolve_only,
			    struct ep_error *err)
{
	struct ep_base base_s = {.path = (char *)path, .digest = (char *)digest};
	struct ep_base *base = &base_s;
	cleanup_json json_t *man = NULL, *cfg = NULL;
	cleanup_free char *mtext = NULL, *ctext = NULL;
	const char *cdigest;
	json_t *layers, *diff_ids, *l, *hist;
	size_t len, i;

	mtext = ep_layout_read_blob(base->path, base->digest, EP_MAX_MANIFEST_BYTES, &len, err);
	if (!mtext)
		return ep_error_wrap(err, "base oci '%s'", base->path);
	man = ep_json_loadb(mtext, len, EP_MAX_MANIFEST_BYTES, base->digest, err);
	if (!man)
		return -1;
	cdigest = json_string_value(json_object_get(json_object_get(man, "config"), "digest"));
	layers = json_object_get(man, "layers");
	if (!cdigest || ep_digest_check(cdigest, NULL) < 0 || !json_is_array(layers))
		return ep_error_set(err, EP_EINVAL, "base oci '%s': %s is not an image manifest",
				    base->path, base->digest);
	ctext = ep_layout_read_blob(base->path, cdigest, EP_MAX_CONFIG_BYTES, &len, err);
	if (!ctext)
		return ep_error_wrap(err, "base oci '%s'", base->path);
	cfg = ep_json_loadb(ctext, len, EP_MAX_CONFIG_BYTES, cdigest, err);
	if (!cfg)
		return -1;
	diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers))
		return ep_error_set(err, EP_EINVAL,
				    "base oci '%s': config %s has %zu diff_ids for %zu layers", base->path,
				    cdigest, json_array_size(diff_ids), json_array_size(layers));
	b->base_config = json_incref(json_object_get(cfg, "config"));
	hist = json_object_get(cfg, "history");
	if (json_is_array(hist))
		json_array_extend(b->history, hist);
	json_array_foreach(layers, i, l) {
		const char *d = json_string_value(json_object_get(l, "digest"));
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		const char *di = json_string_value(json_array_get(diff_ids, i));
		json_int_t sz = json_integer_value(json_object_get(l, "size"));
		int kind;

		if (!d || !mt || !di || ep_digest_check(d, NULL) < 0 || ep_digest_check(di, NULL) < 0)
			return ep_error_set(err, EP_EINVAL, "base oci '%s': layer %zu is malformed",
					    base->path, i);
		kind = ep_compression_from_media_type(mt);
		if (kind < 0)
			return ep_error_set(err, EP_EINVAL,
					    "base oci '%s': layer %s has unsupported media type '%s'",
					    base->path, d, mt);
		if (!resolve_only && import_blob(b, base->path, d, err) < 0)
			return ep_error_wrap(err, "base oci '%s'", base->path);
		if (add_result_layer(b, "base oci", d, di, (uint64_t)sz,
				     ep_compression_media_type((enum ep_compression)kind), 1, 1, err) < 0)
			return -1;
	}
	return 0;
}

static int do_base_oci(struct bctx *b, int resolve_only, struct ep_error *err)
{
	struct ep_base *base = &b->m->base;
	cleanup_json json_t *input = NULL;

	input = json_pack("{s:s, s:s}", "kind", "oci", "digest", base->digest);
	if (!input)
		return ep_error_oom(err);
	if (record_base_input(b, "base", input, err) < 0)
		return -1;
	return base_from_layout(b, base->path, base->digest, resolve_only, err);
}

/* base.image: the tag is resolved to a manifest digest (linux/amd64) on every
 * build and lock, so --locked notices a moved tag; the image is pulled into
 * the store (verified) and then used like an oci base. */
static int do_base_image(struct bctx *b, int resolve_only, struct ep_error *err)
{
	struct ep_base *base = &b->m->base;
	struct ep_registry_opts ro = {.progress = b->o->progress, .pctx = b->o->pctx};
	cleanup_json json_t *input = NULL;
	cleanup_free char *where = NULL;
	ep_digest d;
	const struct ep_offline *off = b->o->offline;
	const char *od = !off || !off->base_layout ? NULL
			 : b->label ? json_string_value(json_object_get(off->stage_bases, b->label))
				    : off->base_digest;

	/* from a bundle: the digest its lock pinned, the blobs it carries */
	if (od)
		snprintf(d, sizeof(d), "%s", od);
	else if (ep_registry_resolve(b->s, base->image, &ro, d, err) < 0)
		return ep_error_wrap(err, "%s: base.image", b->m->path);
	input = json_pack("{s:s, s:s, s:s}", "kind", "image", "ref", base->image, "digest", d);
	where = ep_asprintf(err, "base.image '%s'", base->image);
	if (!input || !where)
		return ep_error_oom(err);
	if (record_base_input(b, where, input, err) < 0)
		return -1;
	if (resolve_only)
		return 0;
	if (od)
		return base_from_layout(b, off->base_layout, d, 0, err);
	if (!ep_store_has_blob(b->s, d)) {
		struct ep_ref ref;
		struct ep_pull_result pr;
		cleanup_free char *pinned = NULL;
		int rc;

		if (ep_ref_parse(base->image, &ref, err) < 0)
			return -1;
		free(ref.tag);
		ref.tag = NULL;
		snprintf(ref.digest, sizeof(ref.digest), "%s", d);
		pinned = ep_ref_format(&ref, err);
		ep_ref_release(&ref);
		if (!pinned)
			return -1;
		rc = ep_pull(b->s, pinned, NULL, &ro, &pr, err);
		if (rc < 0)
			return ep_error_wrap(err, "base.image");
	}
	return base_from_layout(b, b->s->root, d, 0, err);
}

/* A fetch item's bytes from a bundle: "file://PATH", or NULL (no bundle,
 * or it lacks them: the build then fetches as usual). */
static char *offline_url(struct bctx *b, const char *sha256_hex, struct ep_error *err)
{
	const char *p;
	char key[80];

	if (!b->o->offline || !b->o->offline->files)
		return NULL;
	snprintf(key, sizeof(key), "sha256:%s", sha256_hex);
	p = json_string_value(json_object_get(b->o->offline->files, key));
	return p ? ep_asprintf(err, "file://%s", p) : NULL;
}

static int do_fetch_step(struct bctx *b, size_t si, int resolve_only, struct ep_error *err)
{
	struct ep_step *st = &b->m->steps[si];
	cleanup_json json_t *input = json_pack("{s:s, s:[]}", "kind", "fetch", "items");
	struct ep_tree *tree = NULL;
	char what[64], key[80], by[160];
	json_t *rec = NULL;
	int rc = -1, cached = 1;

	if (!input)
		return ep_error_oom(err);
	snprintf(what, sizeof(what), "layers[%zu] fetch", si);
	for (size_t i = 0; i < st->n; i++) {
		struct ep_fetch *f = &st->fetch[i];

		if (json_array_append_new(json_object_get(input, "items"),
					  json_pack("{s:s, s:s, s:s, s:b}", "url", f->url, "sha256",
						    f->sha256, "dest", f->dest, "extract", f->extract)) < 0)
			return ep_error_oom(err);
	}
	if (record_layer_input(b, what, input, lock_input(b, "layers", si), err) < 0)
		return -1;
	if (resolve_only)
		return 0;
	if (layer_cache_key(b, input, key, err) < 0)
		return -1;
	rec = cache_lookup(b, key);
	if (!rec) {
		cached = 0;
		tree = ep_tree_new(b->spool, err);
		if (!tree)
			return -1;
		for (size_t i = 0; i < st->n; i++) {
			struct ep_fetch *f = &st->fetch[i];
			cleanup_free char *file = NULL;

			if (b->o->progress)
				b->o->progress(b->o->pctx, what, 0, 0);
			cleanup_free char *local = offline_url(b, f->sha256, err);

			if (!local && err && err->code)
				goto out;
			if (ep_fetch_url(&b->txn, local ? local : f->url, f->sha256, NULL, &file, err) < 0 ||
			    ep_fetch_add(tree, file, f->url, f->dest, f->extract, b->m->source_date_epoch,
					 b->spool, err) < 0) {
				ep_error_wrap(err, "%s:%d: layers[%zu].fetch[%zu]", b->m->path, f->line, si, i);
				goto out;
			}
		}
		rec = write_layer(b, tree, what, err);
		if (!rec || ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
			ep_error_wrap(err, "%s:%d: layers[%zu]", b->m->path, st->line, si);
			goto out;
		}
	}
	if (use_record(b, what, rec, cached, err) < 0)
		goto out;
	snprintf(by, sizeof(by), "envpin: layers[%zu] fetch (%zu item%s)", si, st->n, st->n == 1 ? "" : "s");
	rc = add_history(b, by, 0, err);
out:
	json_decref(rec);
	ep_tree_free(tree);
	return rc;
}

static int do_copy_from_step(struct bctx *b, size_t si, int resolve_only, struct ep_error *err);
static char *copy_dest(struct bctx *b, const char *dest, int src_is_dir, struct ep_error *err);

static int do_copy_step(struct bctx *b, size_t si, int resolve_only, struct ep_error *err)
{
	struct ep_step *st = &b->m->steps[si];
	struct ep_tree *tree = ep_tree_new(b->spool, err);
	cleanup_json json_t *skey_in = NULL, *ckey_in = NULL, *lockin = NULL;
	char what[64], skey[80], ckey[80];
	ep_digest sk, ck;
	json_t *rec = NULL;
	int rc = -1, cached = 0;

	if (!tree)
		return -1;
	for (size_t i = 0; i < st->n; i++)
		if (st->copy[i].from) {
			ep_tree_free(tree);
			return do_copy_from_step(b, si, resolve_only, err);
		}
	snprintf(what, sizeof(what), "layers[%zu] copy", si);
	for (size_t i = 0; i < st->n; i++) {
		struct ep_copy *c = &st->copy[i];
		struct ep_copy_opts co = {c->mode, c->uid, c->gid, b->m->source_date_epoch};
		cleanup_free char *dest = NULL;
		struct stat sb;

		/* through the symlinks of the image below (lstat: a symlink
		 * source is copied as a symlink, not a directory) */
		if (lstat(c->src_path, &sb) < 0)
			sb.st_mode = 0;
		dest = copy_dest(b, c->dest, S_ISDIR(sb.st_mode), err);
		if (!dest || ep_tree_add_copy(tree, c->src_path, dest, &co, err) < 0) {
			ep_error_wrap(err, "%s:%d: layers[%zu].copy[%zu]", b->m->path, c->line, si, i);
			goto out;
		}
	}
	/* Fast path: same files by stat -> same layer, no content read. */
	if (ep_tree_stat_key(tree, sk, err) < 0)
		goto out;
	skey_in = json_pack("{s:s, s:s}", "kind", "copy-stat", "key", sk);
	if (!skey_in || layer_cache_key(b, skey_in, skey, err) < 0)
		goto oom;
	rec = cache_lookup(b, skey);
	if (rec && json_is_string(json_object_get(rec, "content_key"))) {
		snprintf(ck, sizeof(ck), "%s", json_string_value(json_object_get(rec, "content_key")));
		cached = 1;
	} else {
		json_decref(rec);
		rec = NULL;
		if (b->o->progress)
			b->o->progress(b->o->pctx, what, 0, 0);
		if (ep_tree_content_key(tree, ck, err) < 0)
			goto out;
	}
	lockin = json_pack("{s:s, s:s}", "kind", "copy", "content", ck);
	if (!lockin)
		goto oom;
	if (record_layer_input(b, what, lockin, lock_input(b, "layers", si), err) < 0)
		goto out;
	if (resolve_only) {
		rc = 0;
		goto out;
	}
	if (!rec) {
		ckey_in = json_pack("{s:s, s:s}", "kind", "copy", "key", ck);
		if (!ckey_in || layer_cache_key(b, ckey_in, ckey, err) < 0)
			goto oom;
		rec = cache_lookup(b, ckey);
		cached = rec != NULL;
		if (!rec) {
			rec = write_layer(b, tree, what, err);
			if (!rec) {
				ep_error_wrap(err, "%s:%d: layers[%zu]", b->m->path, st->line, si);
				goto out;
			}
			if (ep_txn_set_cache(&b->txn, ckey, rec, err) < 0)
				goto out;
		}
		json_object_set_new(rec, "content_key", json_string(ck));
		if (ep_txn_set_cache(&b->txn, skey, rec, err) < 0)
			goto out;
	}
	if (use_record(b, what, rec, cached, err) < 0)
		goto out;
	{
		char by[160];

		snprintf(by, sizeof(by), "envpin: layers[%zu] copy (%zu item%s)", si, st->n,
			 st->n == 1 ? "" : "s");
		rc = add_history(b, by, 0, err);
	}
	goto out;
oom:
	if (!err || err->code == EP_OK)
		ep_error_oom(err);
out:
	json_decref(rec);
	ep_tree_free(tree);
	return rc;
}

/* ---- run steps (lib/runstep.h, docs/manifest.md "run") ------------------ */

/* A new directory in the txn dir: "<txn>/<prefix>-N" (caller frees). */
static char *txn_subdir(struct bctx *b, const char *prefix, struct ep_error *err)
{
	for (unsigned i = 0;; i++) {
		char *d = ep_asprintf(err, "%s/%s-%u", b->txn.dir, prefix, i);

		if (!d)
			return NULL;
		if (mkdir(d, 0700) == 0)
			return d;
		if (errno != EEXIST) {
			ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", d);
			free(d);
			return NULL;
		}
		free(d);
	}
}

/* Brings the flattened rootfs of the image built so far (in the txn dir)
 * up to date with the layers added since the last call; *dir is borrowed. */
static int rootfs_dir(struct bctx *b, const char **dir, struct ep_error *err)
{
	struct ep_unpack_opts uo;
	cleanup_close int fd = -1;

	if (!b->rootfs_dir && !(b->rootfs_dir = txn_subdir(b, "rootfs", err)))
		return -1;
	if (chmod(b->rootfs_dir, 0755) < 0)
		return ep_error_errno(err, EP_EENV, errno, "chmod '%s'", b->rootfs_dir);
	ep_unpack_opts_init(&uo);
	uo.whiteouts = EP_WHITEOUT_APPLY;
	uo.allow_devices = 1;
	uo.same_owner = 1;
	for (; b->rootfs_layers < json_array_size(b->mlayers); b->rootfs_layers++) {
		json_t *l = json_array_get(b->mlayers, b->rootfs_layers);
		const char *d = json_string_value(json_object_get(l, "digest"));
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		const char *di = json_string_value(json_array_get(b->diff_ids, b->rootfs_layers));
		cleanup_free char *blob = ep_txn_blob_path(&b->txn, d, err);

		if (fd < 0 && (fd = open(b->rootfs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			return ep_error_errno(err, EP_EENV, errno, "open '%s'", b->rootfs_dir);
		if (!blob || ep_unpack_layer(fd, blob, mt, di, &uo, err) < 0)
			return ep_error_wrap(err, "unpack layer %zu for a run step",
					     b->rootfs_layers);
	}
	*dir = b->rootfs_dir;
	return 0;
}

/* The image's PATH so far (the base config's), or NULL. */
static const char *image_path_env(struct bctx *b)
{
	json_t *env = json_object_get(b->base_config, "Env"), *v;
	size_t i;

	json_array_foreach (env, i, v) {
		const char *s = json_string_value(v);

		if (s && !strncmp(s, "PATH=", 5))
			return s + 5;
	}
	return NULL;
}

/* Runs a command in the image built so far (see lib/runstep.h): work dir
 * in the txn, so that nothing of a failed step reaches the store.  `where`
 * names the step in messages ("m.json:12: layers[3] run").  A command that
 * exits non-zero is EP_EMISMATCH with its last output lines; *tree is the
 * normalized layer (caller frees) with *work the dir holding its data
 * (caller removes it after writing the layer, and frees). */
static int run_in_image(struct bctx *b, const char *where, struct ep_runstep_opts *o,
			struct ep_tree **tree, char **work, struct ep_error *err)
{
	struct ep_runstep_result r;
	const char *lower = NULL;
	int rc;

	*tree = NULL;
	*work = NULL;
	if (!o->path)
		o->path = image_path_env(b);
	if (!o->source_date_epoch)
		o->source_date_epoch = b->m->source_date_epoch;
	if (rootfs_dir(b, &lower, err) < 0 || !(*work = txn_subdir(b, "run", err)))
		return ep_error_wrap(err, "%s", where);
	if (b->o->progress)
		b->o->progress(b->o->pctx, where, 0, 0);
	if (b->o->n_step_env || b->o->n_step_mounts) {
		/* verify --vary: the step's own, then the variation's */
		struct ep_runstep_opts vo = *o;
		cleanup_free char **env =
		    ep_calloc(o->n_env + b->o->n_step_env + 1, sizeof(*env), err);
		cleanup_free struct ep_runstep_mount *mt =
		    ep_calloc(o->n_mounts + b->o->n_step_mounts + 1, sizeof(*mt), err);

		if (!env || !mt)
			return -1;
		vo.n_env = 0;
		vo.n_mounts = 0;
		for (size_t i = 0; i < o->n_env; i++)
			env[vo.n_env++] = o->env[i];
		for (size_t i = 0; i < b->o->n_step_env; i++)
			env[vo.n_env++] = b->o->step_env[i];
		for (size_t i = 0; i < o->n_mounts; i++)
			mt[vo.n_mounts++] = o->mounts[i];
		for (size_t i = 0; i < b->o->n_step_mounts; i++)
			mt[vo.n_mounts++] = b->o->step_mounts[i];
		vo.env = env;
		vo.mounts = mt;
		rc = ep_runstep_exec(lower, *work, b->spool, &vo, tree, &r, err);
	} else {
		rc = ep_runstep_exec(lower, *work, b->spool, o, tree, &r, err);
	}
	if (rc < 0) {
		ep_runstep_result_release(&r);
		return ep_error_wrap(err, "%s", where);
	}
	if (r.status != 0) {
		const char *tail = r.tail ? r.tail : "";
		size_t tl = strlen(tail);
		struct ep_strbuf cmd = EP_STRBUF_INIT;

		for (size_t i = 0; i < o->argc; i++)
			ep_strbuf_addf(&cmd, "%s%s", i ? " " : "", o->argv[i]);
		/* the message has room for about 1500 bytes of output: its end */
		if (tl > 1400) {
			tail += tl - 1400;
			tail = strchr(tail, '\n') ? strchr(tail, '\n') + 1 : tail;
		}
		ep_error_set(
		    err, EP_EMISMATCH,
		    "%s: '%.200s' failed with status %d%s%s%s\n%s%s(the store is unchanged)", where,
		    ep_strbuf_str(&cmd), r.status, r.status == 127 ? " (command not found)" : "",
		    *tail ? "; its last output lines:" : " and printed nothing", "",
		    *tail ? tail : "", *tail ? "\n" : "");
		ep_strbuf_release(&cmd);
		ep_runstep_result_release(&r);
		return -1;
	}
	ep_runstep_result_release(&r);
	return 0;
}

/* A run step's mount, materialized with copy rules (0644/0755 by the exec
 * bit, root-owned, mtime source_date_epoch) so that the host's umask and
 * checkout times never reach the step; its content key goes in the lock. */
static int mount_content(struct bctx *b, const struct ep_mount *mt, int materialize,
			 char content[80], char **dir, struct ep_error *err)
{
	struct ep_copy_opts co = {-1, 0, 0, b->m->source_date_epoch};
	struct ep_tree *t = ep_tree_new(b->spool, err);
	cleanup_free char *tar = NULL, *src = NULL;
	cleanup_close int fd = -1, rfd = -1;
	struct ep_fd_sink fds;
	struct ep_unpack_opts uo;
	ep_digest k;
	int rc = -1;

	*dir = NULL;
	if (!t)
		return -1;
	src = ep_asprintf(err, "%s", mt->src_path);
	if (!src || ep_tree_add_copy(t, src, "/m", &co, err) < 0 ||
	    ep_tree_content_key(t, k, err) < 0)
		goto out;
	snprintf(content, 80, "%s", k);
	if (!materialize) {
		rc = 0;
		goto out;
	}
	if (!(*dir = txn_subdir(b, "mount", err)) || ep_txn_tempfile(&b->txn, &fd, &tar, err) < 0)
		goto out;
	ep_fd_sink_init(&fds, fd);
	if (ep_tree_write(t, &fds.base, err) < 0)
		goto out;
	ep_unpack_opts_init(&uo);
	rfd = open(*dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0 || chmod(*dir, 0755) < 0) {
		ep_error_errno(err, EP_EENV, errno, "open '%s'", *dir);
		goto out;
	}
	if (ep_unpack_layer(rfd, tar, ep_compression_media_type(EP_COMPRESS_NONE), NULL, &uo, err) <
	    0)
		goto out;
	unlink(tar);
	rc = 0;
out:
	ep_tree_free(t);
	if (rc < 0)
		ep_error_wrap(err, "mount '%s'", mt->src);
	return rc;
}

static int do_run_step(struct bctx *b, size_t si, int resolve_only, struct ep_error *err)
{
	struct ep_step *st = &b->m->steps[si];
	json_t *locked = lock_input(b, "layers", si);
	cleanup_json json_t *input = NULL, *lcopy = NULL, *kin = NULL;
	cleanup_free char *where = NULL, *work = NULL;
	struct ep_runstep_mount *mts = NULL;
	char **mdirs = NULL;
	struct ep_tree *tree = NULL;
	char what[64], key[80], by[256];
	json_t *rec = NULL, *mounts, *diff;
	int rc = -1, cached = 1;

	snprintf(what, sizeof(what), "layers[%zu] run", si);
	where =
	    ep_asprintf(err, "%s:%d: %s%s", b->m->path, st->line, b->label ? b->label : "", what);
	input = json_pack("{s:s, s:o, s:o, s:s, s:s, s:[]}", "kind", "run", "argv",
			  ep_json_strings((const char *const *)st->words, st->n), "env",
			  ep_json_strings((const char *const *)st->run.env, st->run.n_env),
			  "workdir", st->run.workdir ? st->run.workdir : "/", "user",
			  st->run.user ? st->run.user : "0:0", "mounts");
	mts = calloc(st->run.n_mounts + 1, sizeof(*mts));
	mdirs = calloc(st->run.n_mounts + 1, sizeof(*mdirs));
	if (!where || !input || !mts || !mdirs) {
		ep_error_oom(err);
		goto out;
	}
	mounts = json_object_get(input, "mounts");
	if (!json_is_string(json_object_get(locked, "kind")) ||
	    strcmp(json_string_value(json_object_get(locked, "kind")), "run") != 0)
		locked = NULL;
	/* mounts are inputs: hashed like copy sources */
	for (size_t i = 0; i < st->run.n_mounts; i++) {
		const struct ep_mount *mt = &st->run.mounts[i];
		char content[80];

		if (mount_content(b, mt, 0, content, &mdirs[i], err) < 0) {
			ep_error_wrap(err, "%s:%d: %slayers[%zu].mounts[%zu]", b->m->path, mt->line,
				      b->label ? b->label : "", si, i);
			goto out;
		}
		if (json_array_append_new(mounts, json_pack("{s:s, s:s, s:s}", "src", mt->src,
							    "dest", mt->dest, "content", content)) <
		    0) {
			ep_error_oom(err);
			goto out;
		}
	}
	lcopy = locked ? json_deep_copy(locked) : NULL;
	if (lcopy)
		json_object_del(lcopy, "diff_id");
	if (check_locked(b, where, input, lcopy, err) < 0)
		goto out;
	if (resolve_only) {
		/* the output is known only by running: keep the lock's while the
		 * step and everything below it are unchanged */
		if (locked && json_equal(lcopy, input) && json_object_get(locked, "diff_id"))
			json_object_set(input, "diff_id", json_object_get(locked, "diff_id"));
		if (json_array_append(json_object_get(b->inputs, "layers"), input) < 0)
			ep_error_oom(err);
		else
			rc = 0;
		goto out;
	}
	/* The output of a command is a function of its inputs and of the
	 * image it runs in (all the layers below). */
	kin = json_pack("{s:O, s:O}", "step", input, "below", b->diff_ids);
	if (!kin || layer_cache_key(b, kin, key, err) < 0)
		goto out;
	rec = cache_lookup(b, key);
	if (!rec) {
		struct ep_runstep_opts ro = {0};

		cached = 0;
		for (size_t i = 0; i < st->run.n_mounts; i++) {
			char content[80];
			char *d = NULL;

			if (mount_content(b, &st->run.mounts[i], 1, content, &d, err) < 0) {
				free(d);
				goto out;
			}
			mdirs[i] = ep_asprintf(err, "%s/m", d);
			free(d);
			if (!mdirs[i])
				goto out;
			mts[i].src = mdirs[i];
			mts[i].dest = st->run.mounts[i].dest;
		}
		ro.argv = st->words;
		ro.argc = st->n;
		ro.env = st->run.env;
		ro.n_env = st->run.n_env;
		ro.workdir = st->run.workdir;
		ro.user = st->run.user;
		ro.mounts = mts;
		ro.n_mounts = st->run.n_mounts;
		if (run_in_image(b, where, &ro, &tree, &work, err) < 0)
			goto out;
		rec = write_layer(b, tree, what, err);
		if (!rec || ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
			ep_error_wrap(err, "%s", where);
			goto out;
		}
	}
	diff = json_object_get(rec, "diff_id");
	if (b->o->locked && locked && json_is_string(json_object_get(locked, "diff_id")) &&
	    !json_equal(diff, json_object_get(locked, "diff_id"))) {
		ep_error_set(err, EP_EMISMATCH,
			     "--locked: %s: the step's output differs from the lock '%s':\n"
			     "  lock:       %s\n  this build: %s",
			     where, b->r->lock_path,
			     json_string_value(json_object_get(locked, "diff_id")),
			     json_string_value(diff));
		goto out;
	}
	if (json_object_set(input, "diff_id", diff) < 0 ||
	    json_array_append(json_object_get(b->inputs, "layers"), input) < 0) {
		ep_error_oom(err);
		goto out;
	}
	if (use_record(b, what, rec, cached, err) < 0)
		goto out;
	{
		struct ep_strbuf cmd = EP_STRBUF_INIT;

		for (size_t i = 0; i < st->n; i++)
			ep_strbuf_addf(&cmd, "%s%s", i ? " " : "", st->words[i]);
		snprintf(by, sizeof(by), "envpin: %s %.150s", what, ep_strbuf_str(&cmd));
		ep_strbuf_release(&cmd);
	}
	rc = add_history(b, by, 0, err);
out:
	json_decref(rec);
	ep_tree_free(tree);
	if (work)
		ep_rm_rf(work, NULL);
	for (size_t i = 0; mdirs && i < st->run.n_mounts; i++)
		free(mdirs[i]);
	free(mdirs);
	free(mts);
	return rc;
}

/* ---- paths through symlinks, build stages ------------------------------- */

/* What is at path p (relative to the root, normalized): 1 a directory,
 * 2 a symlink (*target borrowed/owned per resolver), 0 anything else or
 * nothing. */
typedef int (*path_kind_fn)(void *ctx, const char *p, char **target);

#define MAX_LINK_HOPS 40

/* Resolves the absolute image path `path` inside a root, as the kernel would
 * with that root as "/": symlinks are followed (absolute targets from the
 * root), ".." stops at the root; the last component is followed only with
 * follow_last.  A trailing "/" is kept.  Caller frees the result. */
static char *resolve_in_root(path_kind_fn kind, void *ctx, const char *path, int follow_last,
			     struct ep_error *err)
{
	struct ep_strbuf done = EP_STRBUF_INIT;
	cleanup_free char *todo = ep_strdup(path, err);
	size_t pl = strlen(path);
	int hops = 0, slash = pl > 1 && path[pl - 1] == '/';
	char *rest;

	if (!todo)
		return NULL;
	ep_strbuf_addstr(&done, "");
	rest = todo;
	while (rest && *rest) {
		char *c = rest, *e;
		size_t mark = done.len;

		while (*c == '/')
			c++;
		if (!*c)
			break;
		e = strchr(c, '/');
		if (e)
			*e = '\0';
		rest = e ? e + 1 : NULL;
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (done.len > 0 && done.buf[done.len - 1] != '/')
				done.len--;
			if (done.len > 0)
				done.len--;
			done.buf[done.len] = '\0';
			continue;
		}
		ep_strbuf_addf(&done, "%s%s", done.len ? "/" : "", c);
		if (done.oom)
			break;
		if ((rest && *rest) || follow_last) {
			char *target = NULL;
			int k = kind(ctx, done.buf, &target);

			if (k == 2) {
				char *nt;

				if (++hops > MAX_LINK_HOPS) {
					free(target);
					ep_strbuf_release(&done);
					ep_error_set(
					    err, EP_EINVAL,
					    "'%s': more than %d symlinks on the way (a loop?)",
					    path, MAX_LINK_HOPS);
					return NULL;
				}
				done.len = mark;
				done.buf[done.len] = '\0';
				if (target[0] == '/') {
					done.len = 0;
					done.buf[0] = '\0';
				}
				nt = ep_asprintf(err, "%s/%s", target, rest ? rest : "");
				free(target);
				if (!nt) {
					ep_strbuf_release(&done);
					return NULL;
				}
				free(todo);
				todo = nt;
				rest = todo;
			} else {
				free(target);
			}
		}
	}
	if (done.oom) {
		ep_strbuf_release(&done);
		ep_error_oom(err);
		return NULL;
	}
	{
		char *r = ep_asprintf(err, "/%s%s", done.buf, slash && done.len ? "/" : "");

		ep_strbuf_release(&done);
		return r;
	}
}

/* A directory on the host as the root (a stage's final rootfs). */
static int dir_kind(void *ctx, const char *p, char **target)
{
	int root = *(int *)ctx;
	struct stat st;
	char buf[4096];
	ssize_t n;

	*target = NULL;
	if (fstatat(root, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISDIR(st.st_mode))
		return 1;
	if (!S_ISLNK(st.st_mode))
		return 0;
	n = readlinkat(root, p, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	*target = strdup(buf);
	return *target ? 2 : 0;
}

/* The image built so far, from its layers' ep_archive_links (top first). */
static int view_kind(void *ctx, const char *p, char **target)
{
	json_t *links = ctx;

	*target = NULL;
	for (size_t i = json_array_size(links); i-- > 0;) {
		json_t *l = json_array_get(links, i), *v;

		if ((v = json_object_get(json_object_get(l, "links"), p))) {
			*target = strdup(json_string_value(v) ? json_string_value(v) : "");
			return *target ? 2 : 0;
		}
		if (json_object_get(json_object_get(l, "dirs"), p))
			return 1;
		if (json_object_get(json_object_get(l, "gone"), p))
			return 0;
		for (const char *s = strrchr(p, '/'); s;
		     s = s > p ? memrchr(p, '/', (size_t)(s - p)) : NULL)
			if (json_object_getn(json_object_get(l, "opaque"), p, (size_t)(s - p)))
				return 0;
	}
	return 0;
}

/* Brings b->links up to the layers built so far (cached per diff_id). */
static int image_links(struct bctx *b, struct ep_error *err)
{
	if (!b->links && !(b->links = json_array()))
		return ep_error_oom(err);
	while (json_array_size(b->links) < json_array_size(b->mlayers)) {
		size_t i = json_array_size(b->links);
		const char *d =
		    json_string_value(json_object_get(json_array_get(b->mlayers, i), "digest"));
		const char *di = json_string_value(json_array_get(b->diff_ids, i));
		char key[80];
		json_t *rec;

		snprintf(key, sizeof(key), "links-%s", ep_digest_hex(di));
		rec = ep_store_cache_get(b->s, key);
		if (!rec || !json_is_object(json_object_get(rec, "links"))) {
			cleanup_free char *blob = ep_txn_blob_path(&b->txn, d, err);

			json_decref(rec);
			if (!blob || !(rec = ep_archive_links(blob, err)))
				return -1;
			if (ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
				json_decref(rec);
				return -1;
			}
		}
		if (json_array_append_new(b->links, rec) < 0)
			return ep_error_oom(err);
	}
	return 0;
}

/* A copy destination resolved through the symlinks of the image built so
 * far (issue 9 item 6: "/lib/x" on a merged-/usr base is "/usr/lib/x").
 * The last component is followed when the copy puts things inside it (a
 * trailing "/" or a directory source).  Caller frees. */
static char *copy_dest(struct bctx *b, const char *dest, int src_is_dir, struct ep_error *err)
{
	size_t n = strlen(dest);

	if (json_array_size(b->mlayers) == 0)
		return ep_strdup(dest, err);
	if (image_links(b, err) < 0)
		return NULL;
	return resolve_in_root(view_kind, b->links, dest,
			       src_is_dir || (n > 1 && dest[n - 1] == '/'), err);
}

static int run_steps(struct bctx *b, int resolve_only, struct ep_error *err);

/* Builds stage `name` once, in the txn (never stored as an image): its
 * lock inputs go to top->stage_inputs, its final rootfs dir to
 * top->stage_roots (*root borrowed; NULL when resolve_only). */
static int ensure_stage(struct bctx *cur, const char *name, int resolve_only, const char **root,
			struct ep_error *err)
{
	struct bctx *top = cur->top ? cur->top : cur;
	const struct ep_stage *sg = ep_manifest_stage(top->m, name);
	struct ep_manifest fm;
	struct ep_build_result sr;
	struct bctx b2;
	cleanup_free char *label = NULL;
	json_t *have, *ls;
	int rc = -1;

	*root = NULL;
	if ((have = json_object_get(top->stage_roots, name))) {
		*root = json_string_value(have);
		return 0;
	}
	if (resolve_only && json_object_get(top->stage_inputs, name))
		return 0;
	if (!sg)
		return ep_error_set(err, EP_EINVAL, "unknown stage '%s'", name);
	fm = *top->m;
	fm.base = sg->base;
	fm.steps = sg->steps;
	fm.n_steps = sg->n_steps;
	fm.config = NULL;
	fm.check = NULL;
	memset(&sr, 0, sizeof(sr));
	memset(&b2, 0, sizeof(b2));
	sr.lock_path = top->r->lock_path;
	label = ep_asprintf(err, "stages.%s.", name);
	if (!label)
		return -1;
	b2.o = cur->o;
	b2.m = &fm;
	b2.s = cur->s;
	b2.txn = cur->txn;
	b2.cp = cur->cp;
	b2.cdesc = cur->cdesc;
	b2.r = &sr;
	b2.spool = cur->spool;
	b2.label = label;
	b2.top = top;
	ls = top->lock ? json_object_get(json_object_get(top->lock, "stages"), name) : NULL;
	b2.lock =
	    json_is_object(ls) ? json_pack("{s:O}", "inputs", json_object_get(ls, "inputs")) : NULL;
	b2.inputs = json_pack("{s:[]}", "layers");
	b2.history = json_array();
	b2.diff_ids = json_array();
	b2.mlayers = json_array();
	if (!b2.inputs || !b2.history || !b2.diff_ids || !b2.mlayers) {
		ep_error_oom(err);
		goto out;
	}
	if (cur->o->progress)
		cur->o->progress(cur->o->pctx, label, 0, 0);
	if (run_steps(&b2, resolve_only, err) < 0)
		goto out;
	if (json_object_set_new(top->stage_inputs, name, json_pack("{s:O}", "inputs", b2.inputs)) <
	    0) {
		ep_error_oom(err);
		goto out;
	}
	if (!resolve_only) {
		const char *dir;

		if (rootfs_dir(&b2, &dir, err) < 0 ||
		    json_object_set_new(top->stage_roots, name, json_string(dir)) < 0)
			goto out;
		*root = json_string_value(json_object_get(top->stage_roots, name));
	}
	rc = 0;
out:
	cur->txn = b2.txn; /* the txn's staged blobs and temp-file counter moved on */
	json_decref(b2.lock);
	json_decref(b2.inputs);
	json_decref(b2.base_config);
	json_decref(b2.history);
	json_decref(b2.diff_ids);
	json_decref(b2.mlayers);
	json_decref(b2.links);
	free(b2.rootfs_dir);
	free(sr.layers);
	if (rc < 0)
		ep_error_wrap(err, "stage '%s'", name);
	return rc;
}

/* A copy step with items "from" a stage: the stage is built first (once);
 * the lock records the host items' content and which stage paths were
 * copied (the stage's own lock entries pin what they hold). */
static int do_copy_from_step(struct bctx *b, size_t si, int resolve_only, struct ep_error *err)
{
	struct ep_step *st = &b->m->steps[si];
	struct ep_tree *host = NULL, *tree = NULL;
	cleanup_json json_t *lockin = NULL, *kin = NULL;
	json_t *rec = NULL, *from;
	char what[64], key[80], by[160];
	ep_digest ck;
	int rc = -1, cached = 1, n_host = 0;

	snprintf(what, sizeof(what), "layers[%zu] copy", si);
	lockin = json_pack("{s:s, s:n, s:[]}", "kind", "copy", "content", "from");
	host = ep_tree_new(b->spool, err);
	if (!lockin || !host)
		goto oom;
	from = json_object_get(lockin, "from");
	for (size_t i = 0; i < st->n; i++) {
		struct ep_copy *c = &st->copy[i];
		struct ep_copy_opts co = {c->mode, c->uid, c->gid, b->m->source_date_epoch};

		if (c->from) {
			if (json_array_append_new(from,
						  json_pack("{s:s, s:s, s:s}", "stage", c->from,
							    "src", c->src, "dest", c->dest)) < 0)
				goto oom;
			continue;
		}
		n_host++;
		if (ep_tree_add_copy(host, c->src_path, c->dest, &co, err) < 0) {
			ep_error_wrap(err, "%s:%d: %slayers[%zu].copy[%zu]", b->m->path, c->line,
				      b->label ? b->label : "", si, i);
			goto out;
		}
	}
	if (n_host) {
		if (ep_tree_content_key(host, ck, err) < 0)
			goto out;
		json_object_set_new(lockin, "content", json_string(ck));
	}
	if (record_layer_input(b, what, lockin, lock_input(b, "layers", si), err) < 0)
		goto out;
	for (size_t i = 0; i < st->n; i++) {
		const char *root;

		if (st->copy[i].from &&
		    ensure_stage(b, st->copy[i].from, resolve_only, &root, err) < 0) {
			ep_error_wrap(err, "%s:%d: %slayers[%zu].copy[%zu]", b->m->path,
				      st->copy[i].line, b->label ? b->label : "", si, i);
			goto out;
		}
	}
	if (resolve_only) {
		rc = 0;
		goto out;
	}
	tree = ep_tree_new(b->spool, err);
	if (!tree)
		goto out;
	for (size_t i = 0; i < st->n; i++) {
		struct ep_copy *c = &st->copy[i];
		struct ep_copy_opts co = {c->mode, c->uid, c->gid, b->m->source_date_epoch};
		cleanup_free char *src = NULL, *dest = NULL, *rsrc = NULL;
		struct stat sb;
		int isdir;

		if (c->from) {
			const char *root;
			cleanup_close int rfd = -1;

			if (ensure_stage(b, c->from, 0, &root, err) < 0)
				goto out;
			rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (rfd < 0) {
				ep_error_errno(err, EP_EENV, errno, "open '%s'", root);
				goto out;
			}
			rsrc = resolve_in_root(dir_kind, &rfd, c->src,
					       c->src[strlen(c->src) - 1] == '/', err);
			if (!rsrc)
				goto item_err;
			src = ep_asprintf(err, "%s%s", root, rsrc);
			if (!src)
				goto out;
			if (lstat(src, &sb) < 0) {
				ep_error_set(err, EP_EINVAL, "'%s' does not exist in stage '%s'",
					     c->src, c->from);
				goto item_err;
			}
		} else {
			src = ep_strdup(c->src_path, err);
			if (!src || lstat(src, &sb) < 0)
				goto out;
		}
		isdir = S_ISDIR(sb.st_mode);
		dest = copy_dest(b, c->dest, isdir, err);
		if (!dest || ep_tree_add_copy(tree, src, dest, &co, err) < 0)
			goto item_err;
		continue;
	item_err:
		ep_error_wrap(err, "%s:%d: %slayers[%zu].copy[%zu]", b->m->path, c->line,
			      b->label ? b->label : "", si, i);
		goto out;
	}
	if (b->o->progress)
		b->o->progress(b->o->pctx, what, 0, 0);
	if (ep_tree_content_key(tree, ck, err) < 0)
		goto out;
	kin = json_pack("{s:s, s:s}", "kind", "copy", "key", ck);
	if (!kin || layer_cache_key(b, kin, key, err) < 0)
		goto oom;
	rec = cache_lookup(b, key);
	if (!rec) {
		cached = 0;
		rec = write_layer(b, tree, what, err);
		if (!rec || ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
			ep_error_wrap(err, "%s:%d: %slayers[%zu]", b->m->path, st->line,
				      b->label ? b->label : "", si);
			goto out;
		}
	}
	if (use_record(b, what, rec, cached, err) < 0)
		goto out;
	snprintf(by, sizeof(by), "envpin: layers[%zu] copy (%zu item%s, from stages)", si, st->n,
		 st->n == 1 ? "" : "s");
	rc = add_history(b, by, 0, err);
	goto out;
oom:
	if (!err || err->code == EP_OK)
		ep_error_oom(err);
out:
	json_decref(rec);
	ep_tree_free(host);
	ep_tree_free(tree);
	return rc;
}

/* ---- pip step (lib/pip.h, docs/pip.md) ---------------------------------- */

/* The interpreter the wheels are for: the defaults (Debian 12), then the
 * lock's record, then what the debian base installed, then the
 * ENVPIN_PIP_PYTHON / ENVPIN_PIP_GLIBC overrides.  All of it goes into the
 * lock, so --locked notices a change. */
/* A bundle's wheels (lib/vendor.h) become blobs of the store in a
 * transaction of their own, as ep_pip_fetch would download them; it then
 * finds nothing missing.  Each file is checked against its sha256.  deb: the
 * items are an apt step's .debs (named by "package", kept by apt-deb-HEX
 * records, as ep_apt_fetch would). */
static int offline_blobs(struct bctx *b, json_t *wheels, int deb, struct ep_error *err)
{
	struct ep_txn t;
	json_t *w;
	size_t i;
	int n = 0;

	if (!b->o->offline || !b->o->offline->files)
		return 0;
	if (ep_txn_begin(b->s, &t, err) < 0)
		return -1;
	json_array_foreach (wheels, i, w) {
		const char *hex = json_string_value(json_object_get(w, "sha256"));
		char dg[80];
		const char *src;
		cleanup_free char *tmp = NULL;
		cleanup_close int in = -1, out = -1;
		struct ep_sha256 h;
		ep_digest got;
		char buf[1 << 16];
		ssize_t k;
		json_t *rec;

		if (!hex)
			continue;
		snprintf(dg, sizeof(dg), "sha256:%s", hex);
		src = json_string_value(json_object_get(b->o->offline->files, dg));
		if (!src || ep_store_has_blob(b->s, dg))
			continue;
		in = open(src, O_RDONLY | O_CLOEXEC);
		if (in < 0 || ep_txn_tempfile(&t, &out, &tmp, err) < 0 || ep_sha256_init(&h, err) < 0) {
			if (in < 0)
				ep_error_errno(err, EP_EENV, errno, "open '%s'", src);
			goto fail;
		}
		while ((k = read(in, buf, sizeof(buf))) > 0) {
			ep_sha256_update(&h, buf, (size_t)k);
			if (ep_write_all(out, buf, (size_t)k, err) < 0) {
				ep_sha256_release(&h);
				goto fail;
			}
		}
		ep_sha256_final(&h, got);
		if (k < 0 || strcmp(got, dg)) {
			ep_error_set(
			    err, EP_EMISMATCH, "%s %s from the bundle hashes to %s",
			    deb ? "package" : "wheel",
			    json_string_value(json_object_get(w, deb ? "package" : "filename"))
				?: hex,
			    got);
			goto fail;
		}
		rec = deb ? json_pack("{s:s, s:s?, s:s?}", "digest", dg, "package",
				      json_string_value(json_object_get(w, "package")), "version",
				      json_string_value(json_object_get(w, "version")))
			  : json_pack("{s:s, s:s?}", "digest", dg, "filename",
				      json_string_value(json_object_get(w, "filename")));
		if (ep_txn_add_blob_file(&t, tmp, dg, err) < 0 || !rec) {
			json_decref(rec);
			goto fail;
		}
		{
			char key[80];

			snprintf(key, sizeof(key), deb ? "apt-deb-%s" : "pip-wheel-%s", hex);
			if (ep_txn_set_cache(&t, key, rec, err) < 0) {
				json_decref(rec);
				goto fail;
			}
		}
		json_decref(rec);
		n++;
	}
	if (n == 0) {
		ep_txn_abort(&t);
		return 0;
	}
	return ep_txn_commit(&t, err);
fail:
	ep_txn_abort(&t);
	return -1;
}

static int offline_wheels(struct bctx *b, json_t *wheels, struct ep_error *err)
{
	return offline_blobs(b, wheels, 0, err);
}

static int pip_target(struct bctx *b, json_t *locked, struct ep_pip_target *t, struct ep_error *err)
{
	json_t *base = json_object_get(b->inputs, "base");
	const char *v;

	snprintf(t->python, sizeof(t->python), "%s", EP_PIP_DEFAULT_PYTHON);
	snprintf(t->glibc, sizeof(t->glibc), "%s", EP_PIP_DEFAULT_GLIBC);
	if ((v = json_string_value(json_object_get(locked, "python"))))
		snprintf(t->python, sizeof(t->python), "%s", v);
	if ((v = json_string_value(json_object_get(locked, "glibc"))))
		snprintf(t->glibc, sizeof(t->glibc), "%s", v);
	ep_pip_target_from_packages(json_object_get(base, "packages"), t);
	if ((v = getenv("ENVPIN_PIP_PYTHON")) && *v)
		snprintf(t->python, sizeof(t->python), "%s", v);
	if ((v = getenv("ENVPIN_PIP_GLIBC")) && *v)
		snprintf(t->glibc, sizeof(t->glibc), "%s", v);
	if (ep_pip_check_version("python", t->python, err) < 0 ||
	    ep_pip_check_version("glibc", t->glibc, err) < 0)
		return -1;
	return 0;
}

static int do_pip_step(struct bctx *b, size_t si, int resolve_only, struct ep_error *err)
{
	struct ep_step *st = &b->m->steps[si];
	json_t *locked = lock_input(b, "layers", si);
	cleanup_json json_t *req = json_array(), *input = NULL, *wheels = NULL, *kin = NULL;
	cleanup_free char *work = NULL, *stage = NULL, *stage_slash = NULL;
	struct ep_pip_target t;
	char what[64], key[80], by[160];
	json_t *rec = NULL;
	int cached = 1, rc = -1;

	snprintf(what, sizeof(what), "layers[%zu] pip", si);
	if (!req)
		return ep_error_oom(err);
	for (size_t i = 0; i < st->n; i++)
		json_array_append_new(req, json_string(st->words[i]));
	if (!json_is_string(json_object_get(locked, "kind")) ||
	    strcmp(json_string_value(json_object_get(locked, "kind")), "pip") != 0)
		locked = NULL;
	if (pip_target(b, locked, &t, err) < 0)
		return ep_error_wrap(err, "%s:%d: %s", b->m->path, st->line, what);
	input = json_pack("{s:s, s:O, s:s, s:s}", "kind", "pip", "requirements", req, "python", t.python,
			  "glibc", t.glibc);
	if (!input)
		return ep_error_oom(err);
	/* The lock pins the wheels while the request is unchanged: no
	 * re-resolution (delete the lock to move to newer wheels). */
	if (locked && json_equal(json_object_get(locked, "requirements"), req) &&
	    json_equal(json_object_get(locked, "python"), json_object_get(input, "python")) &&
	    json_equal(json_object_get(locked, "glibc"), json_object_get(input, "glibc")) &&
	    json_is_array(json_object_get(locked, "wheels"))) {
		wheels = json_deep_copy(json_object_get(locked, "wheels"));
	} else if (b->o->locked) {
		cleanup_json json_t *lreq = locked ? json_deep_copy(locked) : NULL;

		if (lreq)
			json_object_del(lreq, "wheels");
		return check_locked(b, what, input, lreq, err);
	} else {
		work = ep_asprintf(err, "%s/pip-%zu", b->txn.dir, si);
		if (!work)
			return -1;
		if (b->o->progress)
			b->o->progress(b->o->pctx, "pip resolve", 0, 0);
		wheels = ep_pip_resolve(st->words, st->n, &t, work, err);
		if (!wheels)
			return ep_error_wrap(err, "%s:%d: %s", b->m->path, st->line, what);
	}
	if (!wheels || json_object_set(input, "wheels", wheels) < 0)
		return ep_error_oom(err);
	if (record_layer_input(b, what, input, locked, err) < 0)
		return -1;
	if (resolve_only)
		return 0;

	/* The layer is a function of the wheel files, the interpreter and
	 * the unpacker's version. */
	kin = json_pack("{s:s, s:s, s:s, s:O}", "kind", "pip", "installer", EP_PIP_INSTALLER, "python",
			t.python, "wheels", wheels);
	if (!kin || layer_cache_key(b, kin, key, err) < 0)
		return -1;
	rec = cache_lookup(b, key);
	if (!rec) {
		struct ep_copy_opts co = {-1, 0, 0, b->m->source_date_epoch};
		struct ep_tree *tree;

		cached = 0;
		if (!work && !(work = ep_asprintf(err, "%s/pip-%zu", b->txn.dir, si)))
			return -1;
		stage = ep_asprintf(err, "%s/pip-stage-%zu", b->txn.dir, si);
		stage_slash = ep_asprintf(err, "%s/", stage ? stage : "");
		if (!stage || !stage_slash)
			return -1;
		if (offline_wheels(b, wheels, err) < 0 ||
		    ep_pip_fetch(b->s, wheels, &t, work, b->o->progress, b->o->pctx, err) < 0 ||
		    ep_pip_install(b->s, wheels, &t, stage, err) < 0)
			return ep_error_wrap(err, "%s:%d: %s", b->m->path, st->line, what);
		ep_rm_rf(work, NULL);
		tree = ep_tree_new(b->spool, err);
		if (!tree)
			return -1;
		/* copy rules give profile-1 metadata: 0644/0755 by the exec
		 * bit, root-owned, mtime = source_date_epoch */
		if (ep_tree_add_copy(tree, stage_slash, "/", &co, err) < 0 ||
		    !(rec = write_layer(b, tree, what, err))) {
			ep_tree_free(tree);
			return ep_error_wrap(err, "%s:%d: %s", b->m->path, st->line, what);
		}
		ep_tree_free(tree);
		ep_rm_rf(stage, NULL);
		if (ep_txn_set_cache(&b->txn, key, rec, err) < 0)
			goto out;
	}
	if (use_record(b, what, rec, cached, err) < 0)
		goto out;
	snprintf(by, sizeof(by), "envpin: layers[%zu] pip (%zu wheel%s for python %s)", si,
		 json_array_size(wheels), json_array_size(wheels) == 1 ? "" : "s", t.python);
	rc = add_history(b, by, 0, err);
out:
	json_decref(rec);
	return rc;
}

/* Env lists merge by variable name: manifest values replace base values. */
static json_t *merge_env(json_t *base_env, json_t *env, struct ep_error *err)
{
	json_t *out = json_array();
	const char *k;
	json_t *v;
	size_t i;

	if (!out) {
		ep_error_oom(err);
		return NULL;
	}
	json_array_foreach(base_env, i, v) {
		const char *s = json_string_value(v);
		const char *eq = s ? strchr(s, '=') : NULL;

		/* looked up by length: a name copied into a fixed buffer dropped
		 * base variables whose names did not fit */
		if (!eq)
			continue;
		if (env && json_object_getn(env, s, (size_t)(eq - s)))
			continue;
		json_array_append(out, v);
	}
	/* json_object_foreach order is insertion order; sort for determinism. */
	if (env) {
		const char **keys = ep_calloc(json_object_size(env) + 1, sizeof(char *), err);
		size_t n = 0;

		if (!keys) {
			json_decref(out);
			return NULL;
		}
		json_object_foreach(env, k, v) keys[n++] = k;
		for (size_t a = 1; a < n; a++)
			for (size_t c = a; c > 0 && strcmp(keys[c - 1], keys[c]) > 0; c--) {
				const char *t = keys[c];
				keys[c] = keys[c - 1];
				keys[c - 1] = t;
			}
		for (size_t a = 0; a < n; a++) {
			char *kv = ep_asprintf(err, "%s=%s", keys[a],
					       json_string_value(json_object_get(env, keys[a])));
			if (!kv) {
				free(keys);
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, json_string(kv));
			free(kv);
		}
		free(keys);
	}
	return out;
}

/* ---- apt step (lib/apt.h, docs/apt.md) ----------------------------------- */

/* sha256 of the diff_ids so far: the image an apt step resolves against. */
static int image_below(struct bctx *b, ep_digest out, struct ep_error *err)
{
	cleanup_free char *text = ep_json_canonical(b->diff_ids, NULL, err);

	return text ? ep_sha256_buf(text, strlen(text), out, err) : -1;
}

/* Runs the dpkg script in the image built so far, without network, with
 * the .debs mounted read-only; *tree gets the normalized layer and *work
 * the dir holding its data (caller removes). */
static int apt_run_dpkg(struct bctx *b, const char *where, json_t *argv, const char *debdir,
			struct ep_tree **tree, char **work, struct ep_error *err)
{
	struct ep_runstep_mount mt = {debdir, EP_APT_MOUNT_POINT};
	struct ep_runstep_opts ro = {0};
	char *words[4] = {NULL, NULL, NULL, NULL};

	for (size_t i = 0; i < 3; i++)
		words[i] = (char *)json_string_value(json_array_get(argv, i));
	if (!words[0] || !words[1] || !words[2])
		return ep_error_set(err, EP_EINVAL, "%s: bad install command", where);
	ro.argv = words;
	ro.argc = 3;
	ro.mounts = &mt;
	ro.n_mounts = 1;
	return run_in_image(b, where, &ro, tree, work, err);
}

static int do_apt_step(struct bctx *b, size_t si, int resolve_only, struct ep_error *err)
{
	struct ep_step *st = &b->m->steps[si];
	json_t *locked = lock_input(b, "layers", si);
	cleanup_json json_t *req = json_array(), *input = NULL, *kin = NULL, *argv = NULL;
	cleanup_free char *work = NULL, *debdir = NULL, *where = NULL, *runwork = NULL;
	const char *root = NULL;
	struct ep_tree *tree = NULL;
	ep_digest below;
	char what[64], key[80], by[160];
	json_t *rec = NULL, *diff;
	int cached = 1, rc = -1;

	snprintf(what, sizeof(what), "layers[%zu] apt", si);
	where =
	    ep_asprintf(err, "%s:%d: %s%s", b->m->path, st->line, b->label ? b->label : "", what);
	if (!req || !where)
		return ep_error_oom(err);
	for (size_t i = 0; i < st->n; i++)
		json_array_append_new(req, json_string(st->words[i]));
	if (image_below(b, below, err) < 0)
		return -1;
	/* The lock pins the .debs while the request and the image below are
	 * unchanged: no index is fetched (delete the lock to move on). */
	if (locked && !strcmp(json_string_value(json_object_get(locked, "kind")) ?: "", "apt") &&
	    json_equal(json_object_get(locked, "packages"), req) &&
	    !strcmp(json_string_value(json_object_get(locked, "below")) ?: "", below) &&
	    json_is_array(json_object_get(locked, "debs"))) {
		input = json_deep_copy(locked);
	} else if (b->o->locked) {
		cleanup_json json_t *now =
		    json_pack("{s:s, s:O, s:s}", "kind", "apt", "packages", req, "below", below);
		cleanup_json json_t *lreq =
		    locked
			? json_pack("{s:O?, s:O?, s:O?}", "kind", json_object_get(locked, "kind"),
				    "packages", json_object_get(locked, "packages"), "below",
				    json_object_get(locked, "below"))
			: NULL;

		return check_locked(b, what, now, lreq, err);
	} else {
		work = ep_asprintf(err, "%s/apt-%zu", b->txn.dir, si);
		if (!work || ep_mkdir_p(work, err) < 0)
			return -1;
		if (b->o->progress)
			b->o->progress(b->o->pctx, "apt resolve", 0, 0);
		if (rootfs_dir(b, &root, err) < 0)
			return ep_error_wrap(err, "%s", where);
		input = ep_apt_resolve(root, st->words, st->n, work, err);
		ep_rm_rf(work, NULL);
		if (!input)
			return ep_error_wrap(err, "%s", where);
		json_object_set_new(input, "below", json_string(below));
	}
	if (!input)
		return ep_error_oom(err);
	if (record_layer_input(b, what, input, locked, err) < 0)
		return -1;
	if (resolve_only)
		return 0;

	/* The layer is a function of the .deb files and the image below. */
	kin = json_pack("{s:s, s:s, s:O}", "kind", "apt", "below", below, "debs",
			json_object_get(input, "debs"));
	if (!kin || layer_cache_key(b, kin, key, err) < 0)
		return -1;
	rec = cache_lookup(b, key);
	if (!rec) {
		cached = 0;
		if (b->o->progress)
			b->o->progress(b->o->pctx, "apt fetch", 0, 0);
		if (offline_blobs(b, json_object_get(input, "debs"), 1, err) < 0 ||
		    ep_apt_fetch(b->s, json_object_get(input, "debs"), err) < 0) {
			ep_error_wrap(err, "%s", where);
			goto out;
		}
		debdir = ep_asprintf(err, "%s/apt-debs-%zu", b->txn.dir, si);
		if (!debdir || ep_mkdir_p(debdir, err) < 0)
			goto out;
		argv = ep_apt_install_argv(b->s, json_object_get(input, "debs"), debdir,
					   EP_APT_MOUNT_POINT, err);
		if (!argv || apt_run_dpkg(b, where, argv, debdir, &tree, &runwork, err) < 0)
			goto out;
		rec = write_layer(b, tree, what, err);
		if (!rec || ep_txn_set_cache(&b->txn, key, rec, err) < 0) {
			ep_error_wrap(err, "%s", where);
			goto out;
		}
	}
	/* like a run step's, the entry records the output */
	diff = json_object_get(rec, "diff_id");
	if (b->o->locked && json_is_string(json_object_get(locked, "diff_id")) &&
	    !json_equal(diff, json_object_get(locked, "diff_id"))) {
		ep_error_set(err, EP_EMISMATCH,
			     "--locked: %s: dpkg's output differs from the lock '%s':\n"
			     "  lock:       %s\n  this build: %s",
			     where, b->r->lock_path,
			     json_string_value(json_object_get(locked, "diff_id")),
			     json_string_value(diff));
		goto out;
	}
	if (json_object_set(input, "diff_id", diff) < 0) {
		ep_error_oom(err);
		goto out;
	}
	if (use_record(b, what, rec, cached, err) < 0)
		goto out;
	snprintf(by, sizeof(by), "envpin: layers[%zu] apt (%zu package%s, %zu .deb%s)", si, st->n,
		 st->n == 1 ? "" : "s", json_array_size(json_object_get(input, "debs")),
		 json_array_size(json_object_get(input, "debs")) == 1 ? "" : "s");
	rc = add_history(b, by, 0, err);
out:
	json_decref(rec);
	ep_tree_free(tree);
	if (runwork)
		ep_rm_rf(runwork, NULL);
	if (debdir)
		ep_rm_rf(debdir, NULL);
	return rc;
}

static json_t *make_config(struct bctx *b, struct ep_error *err)
{
	json_t *mc = b->m->config;
	cleanup_json json_t *cfg = NULL, *rootfs = NULL;
	json_t *c, *v;
	char when[32];

	c = b->base_config && json_is_object(b->base_config) ? json_deep_copy(b->base_config)
							      : json_object();
	if (!c) {
		ep_error_oom(err);
		return NULL;
	}
	if (mc) {
		json_t *env = merge_env(json_object_get(c, "Env"), json_object_get(mc, "env"), err);

		if (!env) {
			json_decref(c);
			return NULL;
		}
		if (json_array_size(env))
			json_object_set_new(c, "Env", env);
		else
			json_decref(env);
		if ((v = json_object_get(mc, "entrypoint")))
			json_object_set(c, "Entrypoint", v);
		if ((v = json_object_get(mc, "cmd")))
			json_object_set(c, "Cmd", v);
		if ((v = json_object_get(mc, "workdir")))
			json_object_set(c, "WorkingDir", v);
		if ((v = json_object_get(mc, "user")))
			json_object_set(c, "User", v);
		if ((v = json_object_get(mc, "labels"))) {
			json_t *labels = json_object_get(c, "Labels");

			if (!json_is_object(labels)) {
				labels = json_object();
				json_object_set_new(c, "Labels", labels);
			}
			json_object_update(labels, v);
		}
		if ((v = json_object_get(mc, "exposed_ports"))) {
			json_t *ports = json_object_get(c, "ExposedPorts");
			size_t i;
			json_t *p;

			if (!json_is_object(ports)) {
				ports = json_object();
				json_object_set_new(c, "ExposedPorts", ports);
			}
			json_array_foreach(v, i, p) {
				const char *s = json_string_value(p);
				char full[32];

				snprintf(full, sizeof(full), "%s%s", s, strchr(s, '/') ? "" : "/tcp");
				json_object_set_new(ports, full, json_object());
			}
		}
	}
	ep_rfc3339(b->m->source_date_epoch, when);
	rootfs = json_pack("{s:s, s:O}", "type", "layers", "diff_ids", b->diff_ids);
	cfg = json_pack("{s:s, s:s, s:s, s:o, s:O, s:O}", "architecture", "amd64", "os", "linux",
			"created", when, "config", c, "rootfs", rootfs, "history", b->history);
	if (!cfg || !rootfs) {
		ep_error_oom(err);
		return NULL;
	}
	return steal_pointer(&cfg);
}

static int load_lock(struct bctx *b, struct ep_error *err)
{
	struct stat st;
	json_t *v;

	if (stat(b->r->lock_path, &st) < 0) {
		if (errno == ENOENT && !b->o->locked)
			return 0;
		if (errno == ENOENT)
			return ep_error_set(err, EP_EINVAL,
					    "--locked: there is no lock file '%s'; run 'envpin lock -f %s' first",
					    b->r->lock_path, b->o->manifest_path);
		return ep_error_errno(err, EP_EENV, errno, "stat '%s'", b->r->lock_path);
	}
	b->lock = ep_json_load_file(b->r->lock_path, LOCK_MAX_BYTES, err);
	if (!b->lock)
		return -1;
	v = json_object_get(b->lock, "lockVersion");
	if (!json_is_integer(v) || json_integer_value(v) != LOCK_VERSION || !json_is_object(json_object_get(b->lock, "inputs")))
		return ep_error_set(err, EP_EINVAL, "'%s': not an envpin lock file (lockVersion %d)",
				    b->r->lock_path, LOCK_VERSION);
	return 0;
}

/* Compressor: the user's choice, else the lock's, else gzip defaults. */
static int choose_compressor(struct bctx *b, struct ep_error *err)
{
	json_t *lc = b->lock ? json_object_get(b->lock, "compressor") : NULL;

	if (b->o->compress_set) {
		b->cp = b->o->compress;
	} else if (lc) {
		enum ep_compression k;
		const char *name = json_string_value(json_object_get(lc, "name"));
		json_t *lv = json_object_get(lc, "level"), *bs = json_object_get(lc, "block_size");

		/* a hand-edited lock is input: say which field is wrong, never exit 3 */
		if (!json_is_object(lc) || !name)
			return ep_error_set(
			    err, EP_EINVAL,
			    "'%s': field 'compressor' must be an object with a string "
			    "'name' (gzip, zstd or none)",
			    b->r->lock_path);
		if ((lv && (!json_is_integer(lv) || json_integer_value(lv) < -1000 ||
			    json_integer_value(lv) > 1000)) ||
		    (bs && (!json_is_integer(bs) || json_integer_value(bs) < 0)))
			return ep_error_set(
			    err, EP_EINVAL,
			    "'%s': field 'compressor': 'level' and 'block_size' must be "
			    "integers (block_size not negative)",
			    b->r->lock_path);
		if (ep_compression_parse(name, &k, err) < 0)
			return ep_error_wrap(err, "'%s': field 'compressor'", b->r->lock_path);
		ep_compress_defaults(k, &b->cp);
		if (lv)
			b->cp.level = (int)json_integer_value(lv);
		if (bs)
			b->cp.block_size = (size_t)json_integer_value(bs);
	} else {
		ep_compress_defaults(EP_COMPRESS_GZIP, &b->cp);
	}
	b->cdesc = ep_compress_describe(&b->cp, err);
	if (!b->cdesc)
		return -1;
	if (b->o->locked && lc && !json_equal(lc, b->cdesc)) {
		cleanup_free char *a = ep_json_canonical(lc, NULL, err);
		cleanup_free char *c = ep_json_canonical(b->cdesc, NULL, err);

		return ep_error_set(err, EP_EINVAL,
				    "--locked: the compressor differs from the lock '%s':\n  lock: %s\n  this build: %s",
				    b->r->lock_path, a ? a : "?", c ? c : "?");
	}
	return 0;
}

/* What makes the lock a complete record beyond the inputs (docs/lock.md):
 * the envpin source that wrote it and the base's manifest digest.  Lock
 * only: none of it reaches a layer, the config or a cache key. */
static int lock_add_provenance(struct bctx *b, json_t *doc, struct ep_error *err)
{
	json_t *src = ep_source_record(err);
	json_t *base = json_object_get(b->inputs, "base");
	const char *bd = json_string_value(json_object_get(base, "digest"));

	if (!src || json_object_set_new(doc, "envpin_source", src) < 0)
		return src ? ep_error_oom(err) : -1;
	/* image and oci bases are pinned by their manifest digest; rootfs and
	 * debian bases have none (their layer is the image's first) */
	if (bd && json_object_set_new(doc, "base_manifest_digest", json_string(bd)) < 0)
		return ep_error_oom(err);
	return 0;
}

/* cache/origin-HEX: which manifest and lock built image HEX, so that
 * `envpin vendor DIGEST` finds its inputs (lib/vendor.c).  Not for a build
 * from a bundle, whose context is a scratch dir. */
static int record_origin(struct bctx *b, struct ep_error *err)
{
	char mp[PATH_MAX], key[80];
	cleanup_json json_t *rec = NULL;

	if (b->o->offline || !realpath(b->o->manifest_path, mp))
		return 0;
	snprintf(key, sizeof(key), "origin-%s", ep_digest_hex(b->r->manifest_digest));
	rec = json_pack("{s:s, s:s?}", "manifest", mp, "lock",
			b->o->lock_path ? b->o->lock_path : NULL);
	if (!rec)
		return ep_error_oom(err);
	return ep_txn_set_cache(&b->txn, key, rec, err);
}

/* --locked by another envpin: a warning in r->warning, an error with
 * --strict (the bytes may still match; the verdict says so). */
static int check_lock_source(struct bctx *b, struct ep_error *err)
{
	char *why;

	if (!b->o->locked || !b->lock)
		return 0;
	why = ep_source_differs(b->lock);
	if (!why)
		return 0;
	if (b->o->strict) {
		ep_error_set(err, EP_EINVAL, "--locked --strict: %s ('%s')", why, b->r->lock_path);
		free(why);
		return -1;
	}
	b->r->warning = why;
	return 0;
}

static json_t *lock_doc(struct bctx *b, json_t *image, struct ep_error *err)
{
	cleanup_free char *mtext = NULL;
	size_t mlen;
	ep_digest md;
	const char *slash = strrchr(b->o->manifest_path, '/');
	json_t *doc;

	mtext = ep_read_file(b->o->manifest_path, EP_MANIFEST_MAX_BYTES, &mlen, err);
	if (!mtext || ep_sha256_buf(mtext, mlen, md, err) < 0)
		return NULL;
	doc = json_pack("{s:i, s:s, s:s, s:s, s:i, s:I, s:O, s:O}", "lockVersion", LOCK_VERSION,
			"envpin", EP_VERSION, "manifest", slash ? slash + 1 : b->o->manifest_path,
			"manifest_sha256", md, "profile", EP_PROFILE, "source_date_epoch",
			(json_int_t)b->m->source_date_epoch, "compressor", b->cdesc, "inputs", b->inputs);
	if (!doc) {
		ep_error_oom(err);
		return NULL;
	}
	if (image)
		json_object_set(doc, "image", image);
	if (json_object_size(b->stage_inputs))
		json_object_set(doc, "stages", b->stage_inputs);
	if (lock_add_provenance(b, doc, err) < 0) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

static int write_lock(struct bctx *b, json_t *doc, struct ep_error *err)
{
	cleanup_free char *text = ep_json_pretty(doc, err);
	cleanup_free char *old = NULL;
	size_t oldlen = 0;

	if (!text)
		return -1;
	old = ep_read_file(b->r->lock_path, LOCK_MAX_BYTES, &oldlen, NULL);
	if (old && oldlen == strlen(text) && !memcmp(old, text, oldlen))
		return 0;
	b->r->lock_changed = 1;
	if (ep_write_file_atomic(b->r->lock_path, text, strlen(text), 0644, err) < 0)
		return ep_error_wrap(err, "write lock");
	return 0;
}

/* Keeps the lock's bytes (as write_lock writes them) beside the image. */
static int stage_lock_sidecar(struct bctx *b, json_t *doc, const char *image, struct ep_error *err)
{
	cleanup_free char *text = ep_json_pretty(doc, err);

	if (!text)
		return -1;
	return ep_sidecar_set_lock(&b->txn, image, text, strlen(text), err);
}

static int bctx_init(struct bctx *b, const struct ep_build_opts *o, struct ep_store *s,
		     struct ep_build_result *r, struct ep_error *err)
{
	memset(b, 0, sizeof(*b));
	memset(r, 0, sizeof(*r));
	b->o = o;
	b->s = s;
	b->r = r;
	b->m = ep_manifest_load(o->manifest_path, err);
	if (!b->m)
		return -1;
	r->lock_path = o->lock_path ? ep_strdup(o->lock_path, err)
				    : ep_manifest_lock_path(o->manifest_path, err);
	if (!r->lock_path)
		return -1;
	b->inputs = json_pack("{s:[]}", "layers");
	b->history = json_array();
	b->diff_ids = json_array();
	b->mlayers = json_array();
	b->stage_inputs = json_object();
	b->stage_roots = json_object();
	if (!b->inputs || !b->history || !b->diff_ids || !b->mlayers || !b->stage_inputs ||
	    !b->stage_roots)
		return ep_error_oom(err);
	if (load_lock(b, err) < 0 || check_lock_source(b, err) < 0 || choose_compressor(b, err) < 0)
		return -1;
	r->compressor = json_incref(b->cdesc);
	return 0;
}

static void bctx_release(struct bctx *b)
{
	if (b->txn_open)
		ep_txn_abort(&b->txn);
	ep_manifest_free(b->m);
	json_decref(b->cdesc);
	json_decref(b->lock);
	json_decref(b->inputs);
	json_decref(b->base_config);
	json_decref(b->history);
	json_decref(b->diff_ids);
	json_decref(b->mlayers);
	free(b->rootfs_dir);
	json_decref(b->links);
	json_decref(b->stage_inputs);
	json_decref(b->stage_roots);
}

/* Refuses what this version cannot build yet, before anything is written. */
static int check_supported(struct bctx *b, struct ep_error *err)
{
	for (size_t i = 0; i < b->m->n_steps; i++)
		if (b->m->steps[i].kind != EP_STEP_COPY && b->m->steps[i].kind != EP_STEP_FETCH &&
		    b->m->steps[i].kind != EP_STEP_PIP && b->m->steps[i].kind != EP_STEP_RUN &&
		    b->m->steps[i].kind != EP_STEP_APT)
			return ep_error_set(err, EP_EINVAL,
					    "%s:%d: layers[%zu]: step '%s' is not supported by this envpin yet",
					    b->m->path, b->m->steps[i].line, i,
					    step_kind_name(b->m->steps[i].kind));
	return 0;
}

static int run_steps(struct bctx *b, int resolve_only, struct ep_error *err)
{
	size_t apt_last = 0;
	int rc = 0, has_apt = 0, base_ro;

	/* an apt step resolves against the image below it: lock builds that */
	for (size_t i = 0; i < b->m->n_steps; i++)
		if (b->m->steps[i].kind == EP_STEP_APT) {
			apt_last = i;
			has_apt = 1;
		}
	base_ro = resolve_only && !has_apt;
	switch (b->m->base.kind) {
	case EP_BASE_SCRATCH:
		json_object_set_new(b->inputs, "base", json_pack("{s:s}", "kind", "scratch"));
		break;
	case EP_BASE_ROOTFS:
		rc = do_base_rootfs(b, base_ro, err);
		break;
	case EP_BASE_OCI:
		rc = do_base_oci(b, base_ro, err);
		break;
	case EP_BASE_DEBIAN:
		rc = do_base_debian(b, base_ro, err);
		break;
	case EP_BASE_IMAGE:
		rc = do_base_image(b, base_ro, err);
		break;
	default:
		return ep_error_set(err, EP_EINVAL, "base kind not supported");
	}
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < b->m->n_steps; i++) {
		int (*step)(struct bctx *, size_t, int, struct ep_error *) =
		    b->m->steps[i].kind == EP_STEP_FETCH ? do_fetch_step
		    : b->m->steps[i].kind == EP_STEP_PIP ? do_pip_step
		    : b->m->steps[i].kind == EP_STEP_RUN ? do_run_step
		    : b->m->steps[i].kind == EP_STEP_APT ? do_apt_step
							 : do_copy_step;

		if (step(b, i, resolve_only && (!has_apt || i >= apt_last), err) < 0)
			return -1;
	}
	return 0;
}

int ep_build(struct ep_store *s, const struct ep_build_opts *o, struct ep_build_result *r,
	     struct ep_error *err)
{
	struct bctx b;
	cleanup_json json_t *cfg = NULL, *man = NULL, *image = NULL, *doc = NULL;
	cleanup_free char *ctext = NULL, *mtext = NULL;
	size_t clen, mlen;
	int rc = -1;
	const char *tag;

	if (bctx_init(&b, o, s, r, err) < 0 || check_supported(&b, err) < 0)
		goto out;
	if (ep_txn_begin(s, &b.txn, err) < 0)
		goto out;
	b.txn_open = 1;
	b.spool = b.txn.dir;
	if (run_steps(&b, 0, err) < 0)
		goto out;
	cfg = make_config(&b, err);
	if (!cfg)
		goto out;
	ctext = ep_json_canonical(cfg, &clen, err);
	if (!ctext || ep_txn_add_blob_buf(&b.txn, ctext, clen, r->config_digest, err) < 0)
		goto out;
	man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
			EP_MT_OCI_MANIFEST, "config", "mediaType", EP_MT_OCI_CONFIG, "digest",
			r->config_digest, "size", (json_int_t)clen, "layers", b.mlayers);
	if (!man) {
		ep_error_oom(err);
		goto out;
	}
	mtext = ep_json_canonical(man, &mlen, err);
	if (!mtext || ep_txn_add_blob_buf(&b.txn, mtext, mlen, r->manifest_digest, err) < 0)
		goto out;
	r->manifest_size = mlen;
	tag = o->tag ? o->tag : b.m->name;
	if (ep_txn_add_image(&b.txn, r->manifest_digest, mlen, tag, err) < 0 ||
	    record_origin(&b, err) < 0)
		goto out;

	/* The lock's record of the result; --locked demands the same bytes. */
	image = json_pack("{s:s, s:s, s:[]}", "digest", r->manifest_digest, "config_digest",
			  r->config_digest, "layers");
	if (!image) {
		ep_error_oom(err);
		goto out;
	}
	for (size_t i = 0; i < r->n_layers; i++)
		json_array_append_new(json_object_get(image, "layers"),
				      json_pack("{s:s, s:s, s:I}", "digest", r->layers[i].digest,
						"diff_id", r->layers[i].diff_id, "size",
						(json_int_t)r->layers[i].size));
	if (o->locked) {
		const char *want = json_string_value(
			json_object_get(json_object_get(b.lock, "image"), "digest"));

		if (want && strcmp(want, r->manifest_digest) != 0) {
			ep_error_set(err, EP_EMISMATCH,
				     "--locked: the build is not reproducible: the lock '%s' records %s,\n"
				     "  this build gives %s", r->lock_path, want, r->manifest_digest);
			goto out;
		}
	}
	/* the lock travels with the image in the store (sbom, provenance) */
	doc = lock_doc(&b, image, err);
	if (!doc || stage_lock_sidecar(&b, doc, r->manifest_digest, err) < 0)
		goto out;
	if (ep_txn_commit(&b.txn, err) < 0)
		goto out;
	b.txn_open = 0;
	if (!o->no_lock_write && !o->locked && write_lock(&b, doc, err) < 0)
		goto out;
	if (o->out_dir && ep_write_layout(s, r->manifest_digest, o->out_dir, tag, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && b.m)
		ep_error_wrap(err, "build '%s'", o->manifest_path);
	bctx_release(&b);
	return rc;
}

int ep_lock(struct ep_store *s, const struct ep_build_opts *o, struct ep_build_result *r,
	    struct ep_error *err)
{
	struct ep_build_opts lo = *o;
	struct bctx b;
	cleanup_json json_t *doc = NULL;
	json_t *old_image = NULL;
	int rc = -1;

	lo.locked = 0;
	if (bctx_init(&b, &lo, s, r, err) < 0 || check_supported(&b, err) < 0)
		goto out;
	if (ep_txn_begin(s, &b.txn, err) < 0)
		goto out;
	b.txn_open = 1;
	b.spool = b.txn.dir;
	if (run_steps(&b, 1, err) < 0)
		goto out;
	/* The recorded result stays valid only while nothing that shapes it changed. */
	if (b.lock && json_equal(json_object_get(b.lock, "inputs"), b.inputs) &&
	    (json_equal(json_object_get(b.lock, "stages"), b.stage_inputs) ||
	     (!json_object_get(b.lock, "stages") && !json_object_size(b.stage_inputs))) &&
	    json_equal(json_object_get(b.lock, "compressor"), b.cdesc) &&
	    json_integer_value(json_object_get(b.lock, "source_date_epoch")) ==
		b.m->source_date_epoch)
		old_image = json_object_get(b.lock, "image");
	doc = lock_doc(&b, old_image, err);
	if (!doc)
		goto out;
	if (ep_txn_commit(&b.txn, err) < 0)
		goto out;
	b.txn_open = 0;
	if (write_lock(&b, doc, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && b.m)
		ep_error_wrap(err, "lock '%s'", o->manifest_path);
	bctx_release(&b);
	return rc;
}

static int copy_file(const char *src, const char *dst, struct ep_error *err)
{
	cleanup_close int in = -1, out = -1;
	cleanup_free char *tmp = NULL;
	char buf[1 << 16];

	if (link(src, dst) == 0 || errno == EEXIST)
		return 0;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", src);
	tmp = ep_asprintf(err, "%s.tmp", dst);
	if (!tmp)
		return -1;
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", tmp);
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ep_error_errno(err, EP_EENV, errno, "read '%s'", src);
		if (n == 0)
			break;
		if (ep_write_all(out, buf, (size_t)n, err) < 0)
			return ep_error_wrap(err, "'%s'", tmp);
	}
	if (fsync(out) < 0 || rename(tmp, dst) < 0)
		return ep_error_errno(err, EP_EENV, errno, "write '%s'", dst);
	return 0;
}

int ep_write_layout(struct ep_store *s, const char *manifest_digest, const char *dir,
		    const char *tag, struct ep_error *err)
{
	cleanup_free char *blobs = ep_path_join(dir, "blobs/sha256", err);
	cleanup_free char *idx_path = ep_path_join(dir, "index.json", err);
	cleanup_free char *lay_path = ep_path_join(dir, "oci-layout", err);
	cleanup_free char *mtext = NULL, *itext = NULL;
	cleanup_json json_t *man = NULL, *idx = NULL, *digests = NULL;
	json_t *v, *desc, *arr;
	size_t len, i;
	static const char layout_text[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

	if (!blobs || !idx_path || !lay_path || ep_mkdir_p(blobs, err) < 0)
		return -1;
	mtext = ep_layout_read_blob(s->root, manifest_digest, EP_MAX_MANIFEST_BYTES, &len, err);
	if (!mtext)
		return -1;
	man = ep_json_loadb(mtext, len, EP_MAX_MANIFEST_BYTES, manifest_digest, err);
	if (!man)
		return -1;
	digests = json_array();
	json_array_append_new(digests, json_string(manifest_digest));
	json_array_append(digests, json_object_get(json_object_get(man, "config"), "digest"));
	json_array_foreach(json_object_get(man, "layers"), i, v)
		json_array_append(digests, json_object_get(v, "digest"));
	json_array_foreach(digests, i, v) {
		const char *d = json_string_value(v);
		cleanup_free char *src = NULL, *dst = NULL;

		if (!d || ep_digest_check(d, err) < 0)
			return -1;
		src = ep_store_blob_path(s, d, err);
		dst = ep_path_join(blobs, ep_digest_hex(d), err);
		if (!src || !dst || copy_file(src, dst, err) < 0)
			return ep_error_wrap(err, "write layout '%s'", dir);
	}
	if (ep_fsync_dir(blobs, err) < 0)
		return -1;
	if (access(idx_path, F_OK) == 0) {
		idx = ep_json_load_file(idx_path, EP_JSON_MAX_BYTES, err);
		if (!idx)
			return -1;
	} else {
		idx = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", EP_MT_OCI_INDEX,
				"manifests");
	}
	arr = json_object_get(idx, "manifests");
	if (!json_is_array(arr))
		return ep_error_set(err, EP_EINVAL, "'%s' has no manifests array", idx_path);
	/* Replace an entry with the same tag or digest. */
	for (i = json_array_size(arr); i-- > 0;) {
		json_t *e = json_array_get(arr, i);
		const char *ed = json_string_value(json_object_get(e, "digest"));
		const char *et = json_string_value(
			json_object_get(json_object_get(e, "annotations"), "org.opencontainers.image.ref.name"));

		if ((ed && !strcmp(ed, manifest_digest)) || (tag && et && !strcmp(et, tag)))
			json_array_remove(arr, i);
	}
	desc = json_pack("{s:s, s:s, s:I}", "mediaType", EP_MT_OCI_MANIFEST, "digest", manifest_digest,
			 "size", (json_int_t)len);
	if (tag)
		json_object_set_new(desc, "annotations",
				    json_pack("{s:s}", "org.opencontainers.image.ref.name", tag));
	json_array_append_new(arr, desc);
	itext = ep_json_canonical(idx, &len, err);
	if (!itext)
		return -1;
	if (ep_write_file_atomic(lay_path, layout_text, sizeof(layout_text) - 1, 0644, err) < 0 ||
	    ep_write_file_atomic(idx_path, itext, len, 0644, err) < 0)
		return ep_error_wrap(err, "write layout '%s'", dir);
	return 0;
}
