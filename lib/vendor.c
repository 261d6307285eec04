/* lib/vendor.c - bundles (lib/vendor.h, docs/vendor.md). */
#include "vendor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apt.h"
#include "archive_dl.h"
#include "debian.h"
#include "fetch.h"
#include "jsonutil.h"
#include "manifest.h"
#include "proc.h"
#include "source.h"
#include "util.h"

#define BUNDLE_VERSION 1
#define INDEX_MAX_BYTES (256u << 20)
#define SOURCES_LIST_MAX (64u << 10)
#define LOCK_MAX (64u << 20)

/* ---- writing ---- */

struct vctx {
	struct ep_store *s;
	const struct ep_vendor_opts *o;
	char *dir;     /* the bundle dir being written */
	char *blobs;   /* dir/blobs/sha256 */
	json_t *files; /* the index's "files" */
	uint64_t bytes;
};

/* Copies src into blobs/sha256/HEX, hashing while copying; out gets the
 * digest.  A blob already there is kept (same name, same bytes). */
static int put_blob(struct vctx *v, const char *src, ep_digest out, uint64_t *size,
		    struct ep_error *err)
{
	cleanup_free char *tmp = ep_asprintf(err, "%s/.in.%ld", v->blobs, (long)getpid());
	cleanup_free char *dst = NULL;
	cleanup_close int in = -1, o = -1;
	struct ep_sha256 h;
	char buf[1 << 16];
	uint64_t n = 0;

	if (!tmp)
		return -1;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return ep_error_errno(err, EP_EINVAL, errno, "cannot open '%s'", src);
	o = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", tmp);
	if (ep_sha256_init(&h, err) < 0)
		return -1;
	for (;;) {
		ssize_t k = read(in, buf, sizeof(buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			ep_sha256_release(&h);
			return ep_error_errno(err, EP_EENV, errno, "read '%s'", src);
		}
		if (k == 0)
			break;
		ep_sha256_update(&h, buf, (size_t)k);
		if (ep_write_all(o, buf, (size_t)k, err) < 0) {
			ep_sha256_release(&h);
			return -1;
		}
		n += (uint64_t)k;
	}
	ep_sha256_final(&h, out);
	if (fsync(o) < 0)
		return ep_error_errno(err, EP_EENV, errno, "fsync '%s'", tmp);
	dst = ep_path_join(v->blobs, ep_digest_hex(out), err);
	if (!dst)
		return -1;
	if (rename(tmp, dst) < 0)
		return ep_error_errno(err, EP_EENV, errno, "rename '%s'", dst);
	*size = n;
	return 0;
}

static int add_file(struct vctx *v, const char *logical, const char *src, mode_t mode,
		    struct ep_error *err)
{
	ep_digest d;
	uint64_t n;
	char m[8];

	if (put_blob(v, src, d, &n, err) < 0)
		return -1;
	snprintf(m, sizeof(m), "%04o", (unsigned)(mode & 07777));
	v->bytes += n;
	if (json_object_set_new(
		v->files, logical,
		json_pack("{s:s, s:I, s:s}", "sha256", d, "size", (json_int_t)n, "mode", m)) < 0)
		return ep_error_oom(err);
	return 0;
}

/* Adds path (a file, symlink or directory, recursively) as logical. */
static int add_tree(struct vctx *v, const char *logical, const char *path, int depth,
		    struct ep_error *err)
{
	struct stat st;

	if (depth > 256)
		return ep_error_set(err, EP_EINVAL, "'%s' is nested too deeply", path);
	if (lstat(path, &st) < 0)
		return ep_error_errno(err, EP_EINVAL, errno, "cannot open '%s'", path);
	if (S_ISREG(st.st_mode))
		return add_file(v, logical, path, st.st_mode, err);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t k = readlink(path, target, sizeof(target) - 1);

		if (k < 0)
			return ep_error_errno(err, EP_EENV, errno, "readlink '%s'", path);
		target[k] = '\0';
		if (json_object_set_new(v->files, logical, json_pack("{s:s}", "symlink", target)) <
		    0)
			return ep_error_oom(err);
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		char m[8];
		int rc = 0;

		if (!d)
			return ep_error_errno(err, EP_EINVAL, errno, "cannot open '%s'", path);
		snprintf(m, sizeof(m), "%04o", (unsigned)(st.st_mode & 07777));
		if (json_object_set_new(v->files, logical, json_pack("{s:s}", "dir", m)) < 0)
			rc = ep_error_oom(err);
		while (rc == 0 && (de = readdir(d))) {
			cleanup_free char *p = NULL, *l = NULL;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			p = ep_path_join(path, de->d_name, err);
			l = ep_path_join(logical, de->d_name, err);
			if (!p || !l || add_tree(v, l, p, depth + 1, err) < 0)
				rc = -1;
		}
		closedir(d);
		return rc;
	}
	return ep_error_set(err, EP_EINVAL, "'%s' is not a file, directory or symlink", path);
}

/* The directory that holds every path in paths (absolute, canonical). */
static char *common_dir(json_t *paths, struct ep_error *err)
{
	char *root = NULL;
	json_t *p;
	size_t i;

	json_array_foreach (paths, i, p) {
		const char *s = json_string_value(p);
		size_t n = 0;

		if (!root) {
			root = ep_strdup(s, err);
			if (!root)
				return NULL;
			continue;
		}
		/* the longest common prefix that ends at a '/' boundary */
		while (root[n] && root[n] == s[n])
			n++;
		if (!(root[n] == '\0' && (s[n] == '/' || s[n] == '\0'))) {
			while (n > 0 && root[n] != '/')
				n--;
		}
		root[n] = '\0';
	}
	if (root && !root[0])
		strcpy(root, "/");
	return root;
}

/* Appends to out what one step list reads from the host: copy sources,
 * run-step mounts, a rootfs/oci base (canonical paths). */
static int steps_paths(const struct ep_base *base, const struct ep_step *steps, size_t n,
		       json_t *out, struct ep_error *err)
{
	char rp[PATH_MAX];

	if ((base->kind == EP_BASE_ROOTFS || base->kind == EP_BASE_OCI) && realpath(base->path, rp))
		json_array_append_new(out, json_string(rp));
	for (size_t si = 0; si < n; si++) {
		const struct ep_step *st = &steps[si];
		size_t k = st->kind == EP_STEP_COPY  ? st->n
			   : st->kind == EP_STEP_RUN ? st->run.n_mounts
						     : 0;

		for (size_t i = 0; i < k; i++) {
			const char *src = st->kind == EP_STEP_COPY ? st->copy[i].src_path
								   : st->run.mounts[i].src_path;

			if (!src)
				continue; /* copy from a stage */
			if (!realpath(src, rp))
				return ep_error_errno(err, EP_EINVAL, errno, "cannot open '%s'",
						      src);
			json_array_append_new(out, json_string(rp));
		}
	}
	return 0;
}

/* What the build reads from the host besides the network: the manifest's
 * dir (first), a rootfs/oci base, the copy sources and run mounts of the
 * image and of every stage, and the lock. */
static json_t *context_paths(const struct ep_manifest *m, const char *lock, struct ep_error *err)
{
	json_t *out = json_array();
	char rp[PATH_MAX];

	if (!out) {
		ep_error_oom(err);
		return NULL;
	}
	if (realpath(m->dir, rp))
		json_array_append_new(out, json_string(rp));
	if (lock && realpath(lock, rp))
		json_array_append_new(out, json_string(rp));
	if (steps_paths(&m->base, m->steps, m->n_steps, out, err) < 0)
		goto fail;
	for (size_t i = 0; i < m->n_stages; i++)
		if (steps_paths(&m->stages[i].base, m->stages[i].steps, m->stages[i].n_steps, out,
				err) < 0)
			goto fail;
	return out;
fail:
	json_decref(out);
	return NULL;
}

static int add_context(struct vctx *v, const struct ep_manifest *m, const char *lock_path,
		       json_t *index, struct ep_error *err)
{
	cleanup_json json_t *paths = context_paths(m, lock_path, err);
	cleanup_free char *root = NULL, *mrel = NULL, *lrel = NULL;
	char mp[PATH_MAX], lp[PATH_MAX];
	json_t *p;
	size_t i, rn;

	if (!paths || !(root = common_dir(paths, err)))
		return -1;
	if (!realpath(m->path, mp) || !realpath(lock_path, lp))
		return ep_error_errno(err, EP_EINVAL, errno, "cannot resolve '%s'", m->path);
	rn = strcmp(root, "/") ? strlen(root) : 0;
	mrel = ep_asprintf(err, "context%s", mp + rn);
	lrel = ep_asprintf(err, "context%s", lp + rn);
	if (!mrel || !lrel)
		return -1;
	json_object_set_new(index, "manifest", json_string(mrel));
	json_object_set_new(index, "lock", json_string(lrel));
	if (add_tree(v, mrel, mp, 0, err) < 0 || add_tree(v, lrel, lp, 0, err) < 0)
		return -1;
	json_array_foreach (paths, i, p) {
		const char *s = json_string_value(p);
		cleanup_free char *l = ep_asprintf(err, "context%s", s + rn);
		struct stat st;

		/* the manifest's dir itself: only the manifest and the lock */
		if (!l || i == 0)
			continue;
		if (lstat(s, &st) == 0 && add_tree(v, l, s, 0, err) < 0)
			return -1;
	}
	return 0;
}

static int add_fetched_steps(struct vctx *v, const struct ep_manifest *m,
			     const struct ep_step *steps, size_t n, struct ep_error *err)
{
	for (size_t si = 0; si < n; si++) {
		const struct ep_step *st = &steps[si];

		if (st->kind != EP_STEP_FETCH)
			continue;
		for (size_t i = 0; i < st->n; i++) {
			struct ep_txn t;
			cleanup_free char *file = NULL, *l = NULL;
			int rc;

			l = ep_asprintf(err, "inputs/fetch/%s", st->fetch[i].sha256);
			if (!l)
				return -1;
			if (json_object_get(v->files, l))
				continue;
			if (ep_txn_begin(v->s, &t, err) < 0)
				return -1;
			if (v->o->progress)
				v->o->progress(v->o->pctx, st->fetch[i].url, 0, 0);
			rc = ep_fetch_url(&t, st->fetch[i].url, st->fetch[i].sha256, NULL, &file,
					  err);
			if (rc == 0)
				rc = add_file(v, l, file, 0644, err);
			ep_txn_abort(&t);
			if (rc < 0)
				return ep_error_wrap(err, "%s:%d: layers[%zu].fetch[%zu]", m->path,
						     st->fetch[i].line, si, i);
		}
	}
	return 0;
}

static int add_fetched(struct vctx *v, const struct ep_manifest *m, struct ep_error *err)
{
	if (add_fetched_steps(v, m, m->steps, m->n_steps, err) < 0)
		return -1;
	for (size_t i = 0; i < m->n_stages; i++)
		if (add_fetched_steps(v, m, m->stages[i].steps, m->stages[i].n_steps, err) < 0)
			return -1;
	return 0;
}

/* The wheels of one pip step, as the lock pins them, from the store (the
 * build put them there by sha256). */
static int add_step_wheels(struct vctx *v, const struct ep_manifest *m, const char *where,
			   const struct ep_step *st, size_t si, json_t *in, struct ep_error *err)
{
	json_t *w;
	size_t i;

	if (!json_is_array(json_object_get(in, "wheels")))
		return ep_error_set(err, EP_EINVAL,
				    "%s:%d: %slayers[%zu]: the lock pins no wheels: build first",
				    m->path, st->line, where, si);
	json_array_foreach (json_object_get(in, "wheels"), i, w) {
		const char *hex = json_string_value(json_object_get(w, "sha256"));
		const char *fn = json_string_value(json_object_get(w, "filename"));
		cleanup_free char *dg = NULL, *src = NULL, *l = NULL;

		if (!hex || !fn || strchr(fn, '/') || !ep_is_hex64(hex))
			return ep_error_set(err, EP_EINVAL,
					    "%slayers[%zu]: a malformed wheel in the lock", where,
					    si);
		dg = ep_asprintf(err, "sha256:%s", hex);
		l = ep_asprintf(err, "inputs/wheels/%s", fn);
		if (!dg || !l)
			return -1;
		if (json_object_get(v->files, l))
			continue;
		if (!ep_store_has_blob(v->s, dg))
			return ep_error_set(
			    err, EP_EINVAL,
			    "%slayers[%zu]: wheel %s is not in the store: build first", where, si,
			    fn);
		src = ep_store_blob_path(v->s, dg, err);
		if (!src || add_file(v, l, src, 0644, err) < 0)
			return -1;
	}
	return 0;
}

/* The .debs of one apt step, as the lock pins them: blobs of the store
 * (kept by their apt-deb-HEX records); one the store lost is fetched again
 * by ep_apt_fetch, checked against the lock's sha256.  In the bundle as
 * inputs/apt/FILE.deb (the pool file's name; the sha256 prefixed when two
 * archives serve one name with other bytes). */
static int add_step_debs(struct vctx *v, const struct ep_manifest *m, const char *where,
			 const struct ep_step *st, size_t si, json_t *in, struct ep_error *err)
{
	json_t *debs = json_object_get(in, "debs"), *d;
	size_t i;

	if (!json_is_array(debs))
		return ep_error_set(err, EP_EINVAL,
				    "%s:%d: %slayers[%zu]: the lock pins no .debs: build first",
				    m->path, st->line, where, si);
	if (v->o->progress && json_array_size(debs))
		v->o->progress(v->o->pctx, "apt .debs", 0, 0);
	if (ep_apt_fetch(v->s, debs, err) < 0)
		return ep_error_wrap(err, "%s:%d: %slayers[%zu] apt", m->path, st->line, where, si);
	json_array_foreach (debs, i, d) {
		const char *hex = json_string_value(json_object_get(d, "sha256"));
		const char *fn = json_string_value(json_object_get(d, "filename"));
		const char *base = fn ? strrchr(fn, '/') : NULL;
		cleanup_free char *dg = NULL, *src = NULL, *l = NULL;
		json_t *have;

		base = base ? base + 1 : fn;
		if (!hex || !base || !*base || !ep_is_hex64(hex) || base[0] == '.')
			return ep_error_set(err, EP_EINVAL,
					    "%slayers[%zu]: a malformed .deb in the lock", where,
					    si);
		dg = ep_asprintf(err, "sha256:%s", hex);
		l = ep_asprintf(err, "inputs/apt/%s", base);
		if (!dg || !l)
			return -1;
		have = json_object_get(v->files, l);
		if (have && !strcmp(json_string_value(json_object_get(have, "sha256")) ?: "", dg))
			continue;
		if (have) {
			free(l);
			l = ep_asprintf(err, "inputs/apt/%.12s_%s", hex, base);
			if (!l)
				return -1;
		}
		src = ep_store_blob_path(v->s, dg, err);
		if (!src || add_file(v, l, src, 0644, err) < 0)
			return -1;
	}
	return 0;
}

static int add_pinned_steps(struct vctx *v, const struct ep_manifest *m, const char *where,
			    const struct ep_step *steps, size_t n, json_t *inputs,
			    struct ep_error *err)
{
	json_t *layers = json_object_get(inputs, "layers");

	for (size_t si = 0; si < n; si++) {
		json_t *in = json_array_get(layers, si);
		int rc = 0;

		if (steps[si].kind == EP_STEP_PIP)
			rc = add_step_wheels(v, m, where, &steps[si], si, in, err);
		else if (steps[si].kind == EP_STEP_APT)
			rc = add_step_debs(v, m, where, &steps[si], si, in, err);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* What pip and apt steps pinned, of the image and of every stage (a stage's
 * lock inputs are lock.stages.NAME.inputs). */
static int add_pinned(struct vctx *v, const struct ep_manifest *m, json_t *lock,
		      struct ep_error *err)
{
	if (add_pinned_steps(v, m, "", m->steps, m->n_steps, json_object_get(lock, "inputs"), err) <
	    0)
		return -1;
	for (size_t i = 0; i < m->n_stages; i++) {
		char where[300];
		json_t *in = json_object_get(
		    json_object_get(json_object_get(lock, "stages"), m->stages[i].name), "inputs");

		snprintf(where, sizeof(where), "stages.%s.", m->stages[i].name);
		if (add_pinned_steps(v, m, where, m->stages[i].steps, m->stages[i].n_steps, in,
				     err) < 0)
			return -1;
	}
	return 0;
}

/* A registry base: its manifest, config and layers (in the store since the
 * build pulled them), by the digest the lock pinned (base_in: the lock's
 * inputs.base of the image or of a stage).  *rec gets {"ref", "digest"}. */
static int add_base_image(struct vctx *v, const char *ref, json_t *base_in, json_t **rec,
			  struct ep_error *err)
{
	const char *d = json_string_value(json_object_get(base_in, "digest"));
	cleanup_free char *mp = NULL, *text = NULL;
	cleanup_json json_t *man = NULL;
	const char *parts[2];
	size_t len, i;

	if (!d || ep_digest_check(d, NULL) < 0)
		return ep_error_set(err, EP_EINVAL, "the lock pins no base image digest: build first");
	mp = ep_store_blob_path(v->s, d, err);
	text = mp ? ep_read_file(mp, EP_JSON_MAX_BYTES, &len, err) : NULL;
	man = text ? ep_json_loadb(text, len, EP_JSON_MAX_BYTES, d, err) : NULL;
	if (!man)
		return ep_error_wrap(err, "base image %s (not in the store? build first)", d);
	parts[0] = d;
	parts[1] = json_string_value(json_object_get(json_object_get(man, "config"), "digest"));
	for (i = 0; i < 2 + json_array_size(json_object_get(man, "layers")); i++) {
		const char *bd = i < 2 ? parts[i]
				       : json_string_value(json_object_get(
					     json_array_get(json_object_get(man, "layers"), i - 2),
					     "digest"));
		cleanup_free char *p = NULL, *lg = NULL;

		if (!bd || ep_digest_check(bd, NULL) < 0)
			return ep_error_set(err, EP_EINVAL, "base image %s is malformed", d);
		p = ep_store_blob_path(v->s, bd, err);
		lg = ep_asprintf(err, "inputs/base-image/%s", ep_digest_hex(bd));
		if (!p || !lg || add_file(v, lg, p, 0644, err) < 0)
			return ep_error_wrap(err, "base image %s", d);
	}
	*rec = json_pack("{s:s, s:s}", "ref", ref, "digest", d);
	return *rec ? 0 : ep_error_oom(err);
}

/* The registry bases of the image ("base_image") and of its stages
 * ("stage_base_images": {NAME: {"ref", "digest"}}). */
static int add_base_images(struct vctx *v, const struct ep_manifest *m, json_t *lock, json_t *index,
			   struct ep_error *err)
{
	json_t *rec = NULL;

	if (m->base.kind == EP_BASE_IMAGE) {
		if (add_base_image(v, m->base.image,
				   json_object_get(json_object_get(lock, "inputs"), "base"), &rec,
				   err) < 0 ||
		    json_object_set_new(index, "base_image", rec) < 0)
			return -1;
	}
	for (size_t i = 0; i < m->n_stages; i++) {
		const struct ep_stage *sg = &m->stages[i];
		json_t *in = json_object_get(
		    json_object_get(json_object_get(lock, "stages"), sg->name), "inputs");
		json_t *all = json_object_get(index, "stage_base_images");

		if (sg->base.kind != EP_BASE_IMAGE)
			continue;
		if (!all) {
			all = json_object();
			if (!all || json_object_set_new(index, "stage_base_images", all) < 0)
				return ep_error_oom(err);
		}
		if (add_base_image(v, sg->base.image, json_object_get(in, "base"), &rec, err) < 0)
			return ep_error_wrap(err, "stages.%s.base.image", sg->name);
		if (json_object_set_new(all, sg->name, rec) < 0)
			return ep_error_oom(err);
	}
	return 0;
}

/* The bytes of one member of a layer blob (any compression), bounded. */
static char *layer_member(const char *blob, const char *name, size_t max, size_t *len,
			  struct ep_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *out = NULL;

	if (!a) {
		ep_error_oom(err);
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, blob, 1 << 20) != ARCHIVE_OK) {
		ep_error_set(err, EP_EENV, "cannot read layer '%s': %s", blob,
			     archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		ssize_t k;

		if (!p || strcmp(p + (p[0] == '.' && p[1] == '/' ? 2 : p[0] == '/'), name))
			continue;
		if (archive_entry_size(e) < 0 || (size_t)archive_entry_size(e) > max)
			break;
		out = ep_calloc(1, (size_t)archive_entry_size(e) + 1, err);
		if (!out)
			break;
		k = archive_read_data(a, out, (size_t)archive_entry_size(e));
		*len = k > 0 ? (size_t)k : 0;
		break;
	}
	archive_read_free(a);
	if (!out && err && !err->code)
		ep_error_set(err, EP_EINVAL, "layer '%s' has no '%s'", blob, name);
	return out;
}

/* A debian base: mmdebstrap once more (in work/sub), keeping its .debs and
 * the archive's indexes; the package set must be the lock's (want), or the
 * bundle would carry other software.  Every base's .debs go to the one
 * inputs/debs/ (a .deb two bases install is one entry); an index two bases
 * share must be the same file.  sources_out (may be NULL) gets what this run's
 * /etc/apt/sources.list said. */
static int collect_base(struct vctx *v, const struct ep_base *base, int64_t sde, json_t *want,
			const char *what, const char *work, const char *sub, char **sources_out,
			size_t *sources_len, struct ep_error *err)
{
	cleanup_free char *out = ep_path_join(work, sub, err);
	cleanup_free char *debs = out ? ep_path_join(out, "debs", err) : NULL;
	cleanup_free char *lists = out ? ep_path_join(out, "lists", err) : NULL;
	cleanup_free char *why = NULL, *msg = NULL;
	cleanup_json json_t *pkgs = NULL;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (!out || !debs || !lists || ep_mkdir_p(debs, err) < 0 || ep_mkdir_p(lists, err) < 0)
		return -1;
	if (!json_is_array(want))
		return ep_error_set(err, EP_EINVAL,
				    "the lock has no package list for %s: build first", what);
	msg = ep_asprintf(err, "mmdebstrap (collecting the .debs of %s)", what);
	if (!msg)
		return -1;
	if (v->o->progress)
		v->o->progress(v->o->pctx, msg, 0, 0);
	if (ep_debian_collect_debs(base, sde, out, out, &pkgs, err) < 0)
		return ep_error_wrap(err, "%s", what);
	why = ep_debian_diff(want, pkgs);
	if (why)
		return ep_error_set(err, EP_EMISMATCH,
				    "%s: the mirror no longer serves what the lock lists (%s); "
				    "a bundle needs the lock's packages",
				    what, why);
	d = opendir(debs);
	if (!d)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", debs);
	while (rc == 0 && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		cleanup_free char *p = NULL, *l = NULL;

		if (n < 5 || strcmp(de->d_name + n - 4, ".deb"))
			continue;
		p = ep_path_join(debs, de->d_name, err);
		l = ep_asprintf(err, "inputs/debs/%s", de->d_name);
		if (!p || !l)
			rc = -1;
		else if (!json_object_get(v->files, l) && add_file(v, l, p, 0644, err) < 0)
			rc = -1;
	}
	closedir(d);
	if (rc < 0)
		return -1;
	/* the archive's own indexes: InRelease (signed) and Packages, whose
	 * SHA256 fields name every .deb (docs/vendor.md, trust) */
	d = opendir(lists);
	if (!d)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", lists);
	while (rc == 0 && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		cleanup_free char *p = NULL, *l = NULL;
		json_t *had;

		if (!(n > 9 && !strcmp(de->d_name + n - 9, "_Packages")) &&
		    !(n > 10 && !strcmp(de->d_name + n - 10, "_InRelease")) &&
		    !(n > 8 && !strcmp(de->d_name + n - 8, "_Release")))
			continue;
		p = ep_path_join(lists, de->d_name, err);
		l = ep_asprintf(err, "inputs/debian/%s", de->d_name);
		if (!p || !l) {
			rc = -1;
			continue;
		}
		had = json_incref(json_object_get(v->files, l));
		if (add_file(v, l, p, 0644, err) < 0)
			rc = -1;
		else if (had &&
			 !json_equal(json_object_get(had, "sha256"),
				     json_object_get(json_object_get(v->files, l), "sha256")))
			rc = ep_error_set(err, EP_EMISMATCH,
					  "%s: the mirror's %s changed while vendoring; run again",
					  what, de->d_name);
		json_decref(had);
	}
	closedir(d);
	if (rc < 0)
		return -1;
	if (sources_out) {
		cleanup_free char *sp = ep_path_join(out, "sources.list", err);

		if (!sp || !(*sources_out = ep_read_file(sp, SOURCES_LIST_MAX, sources_len, err)))
			return ep_error_wrap(err, "%s: its /etc/apt/sources.list", what);
	}
	return 0;
}

/* The image's debian base (index.debian; its sources.list from the image's
 * layer 0) and every stage's (index.debian_stages.NAME, from the lock's
 * stages.NAME.inputs.base). */
static int add_debian(struct vctx *v, const struct ep_manifest *m, json_t *lock, json_t *index,
		      const char *work, const char *image_layer0, struct ep_error *err)
{
	cleanup_json json_t *stages = NULL;

	if (m->base.kind == EP_BASE_DEBIAN) {
		json_t *want = json_object_get(
		    json_object_get(json_object_get(lock, "inputs"), "base"), "packages");
		cleanup_free char *sl = NULL;
		size_t len = 0;

		if (collect_base(v, &m->base, m->source_date_epoch, want, "base debian", work,
				 "collect", NULL, NULL, err) < 0)
			return -1;
		sl =
		    layer_member(image_layer0, "etc/apt/sources.list", SOURCES_LIST_MAX, &len, err);
		if (!sl)
			return ep_error_wrap(err, "base debian");
		if (json_object_set_new(index, "debian",
					json_pack("{s:s%, s:s, s:O}", "sources_list", sl, len,
						  "suite", m->base.suite, "packages", want)) < 0)
			return ep_error_oom(err);
	}
	for (size_t i = 0; i < m->n_stages; i++) {
		const struct ep_stage *sg = &m->stages[i];
		json_t *want = json_object_get(
		    json_object_get(
			json_object_get(json_object_get(json_object_get(lock, "stages"), sg->name),
					"inputs"),
			"base"),
		    "packages");
		cleanup_free char *what = NULL, *sub = NULL, *sl = NULL;
		size_t len = 0;

		if (sg->base.kind != EP_BASE_DEBIAN)
			continue;
		what = ep_asprintf(err, "stages.%s.base.debian", sg->name);
		sub = ep_asprintf(err, "collect-stage-%zu", i);
		if (!what || !sub ||
		    collect_base(v, &sg->base, m->source_date_epoch, want, what, work, sub, &sl,
				 &len, err) < 0)
			return -1;
		if (!stages && !(stages = json_object()))
			return ep_error_oom(err);
		if (json_object_set_new(stages, sg->name,
					json_pack("{s:s%, s:s, s:O}", "sources_list", sl, len,
						  "suite", sg->base.suite, "packages", want)) < 0)
			return ep_error_oom(err);
	}
	if (stages && json_object_set(index, "debian_stages", stages) < 0)
		return ep_error_oom(err);
	return 0;
}

static int write_tar(const char *dir, const char *out, const char *log, struct ep_error *err)
{
	cleanup_free char *tmp = ep_asprintf(err, "%s.tmp.%ld", out, (long)getpid());
	const char *argv[] = {"tar",
			      "--sort=name",
			      "--mtime=@0",
			      "--owner=0",
			      "--group=0",
			      "--numeric-owner",
			      "--format=pax",
			      "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
			      "-C",
			      dir,
			      "-cf",
			      NULL,
			      ".",
			      NULL};
	int st;

	if (!tmp)
		return -1;
	argv[11] = tmp;
	if (ep_spawn_logged(argv, NULL, log, &st, err) < 0)
		return -1;
	if (st != 0) {
		cleanup_free char *tail = ep_log_tail(log, 800);

		unlink(tmp);
		return ep_error_set(err, EP_EENV, "tar of the bundle failed (status %d): %s", st,
				    tail ? tail : "");
	}
	if (rename(tmp, out) < 0)
		return ep_error_errno(err, EP_EENV, errno, "rename '%s'", out);
	return 0;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

/* The manifest and lock an image was built from: the store's origin record
 * (written by build), when the caller names no manifest. */
static int origin_of(struct ep_store *s, const char *digest, const char **mp, char **keep,
		     struct ep_error *err)
{
	char key[80];
	json_t *rec;

	snprintf(key, sizeof(key), "origin-%s", ep_digest_hex(digest));
	rec = ep_store_cache_get(s, key);
	if (!rec || !json_string_value(json_object_get(rec, "manifest"))) {
		json_decref(rec);
		return ep_error_set(
		    err, EP_EINVAL,
		    "the store does not know which manifest built %s: name it with -f", digest);
	}
	*keep = ep_strdup(json_string_value(json_object_get(rec, "manifest")), err);
	json_decref(rec);
	*mp = *keep;
	return *keep ? 0 : -1;
}

int ep_vendor_create(struct ep_store *s, const struct ep_vendor_opts *o, json_t **summary,
		     struct ep_error *err)
{
	struct vctx v = {.s = s, .o = o};
	struct ep_manifest *m = NULL;
	cleanup_json json_t *lock = NULL, *index = NULL, *src = NULL;
	cleanup_free char *lock_path = NULL, *work = NULL, *origin = NULL, *layer0 = NULL;
	cleanup_free char *idx_path = NULL, *text = NULL, *final = NULL, *srctar = NULL;
	const char *mpath = o->manifest_path, *locked_digest;
	int work_fd = -1, rc = -1, is_tar = ends_with(o->out, ".tar");
	ep_digest digest = "", isha;
	size_t tlen;
	struct stat st;

	if (lstat(o->out, &st) == 0)
		return ep_error_set(err, EP_EINVAL,
				    "'%s' exists: a bundle is written to a new path", o->out);
	if (o->digest && ep_store_resolve(s, o->digest, digest, err) < 0)
		return -1;
	if (!mpath && (!digest[0] || origin_of(s, digest, &mpath, &origin, err) < 0))
		return digest[0] ? -1
				 : ep_error_set(err, EP_EINVAL, "name an image or -f MANIFEST");
	m = ep_manifest_load(mpath, err);
	if (!m)
		return -1;
	lock_path = o->lock_path ? ep_strdup(o->lock_path, err) : ep_manifest_lock_path(mpath, err);
	if (!lock_path)
		goto out;
	lock = ep_json_load_file(lock_path, LOCK_MAX, err);
	if (!lock)
		goto out;
	locked_digest =
	    json_string_value(json_object_get(json_object_get(lock, "image"), "digest"));
	if (!locked_digest) {
		ep_error_set(err, EP_EINVAL, "the lock '%s' records no image: build it first",
			     lock_path);
		goto out;
	}
	if (!digest[0])
		snprintf(digest, sizeof(digest), "%s", locked_digest);
	if (strcmp(digest, locked_digest)) {
		ep_error_set(err, EP_EINVAL,
			     "the lock '%s' records image %s, not %s: a bundle carries the inputs "
			     "of the image its lock records",
			     lock_path, locked_digest, digest);
		goto out;
	}
	if (!ep_store_has_blob(s, digest)) {
		ep_error_set(err, EP_EINVAL, "image %s is not in the store: build it first",
			     digest);
		goto out;
	}
	work = ep_store_scratch_dir(s, "scratch", &work_fd, err);
	if (!work)
		goto out;
	v.dir = is_tar ? ep_path_join(work, "bundle", err)
		       : ep_asprintf(err, "%s.tmp-%ld", o->out, (long)getpid());
	if (!v.dir)
		goto out;
	ep_rm_rf(v.dir, NULL);
	if (ep_write_layout(s, digest, v.dir, m->name, err) < 0)
		goto out;
	v.blobs = ep_asprintf(err, "%s/blobs/sha256", v.dir);
	v.files = json_object();
	index = json_pack("{s:i, s:{s:s, s:s}}", "bundleVersion", BUNDLE_VERSION, "image", "digest",
			  digest, "tag", m->name);
	src = ep_source_record(err);
	if (!v.blobs || !v.files || !index || !src) {
		if (!err || !err->code)
			ep_error_oom(err);
		goto out;
	}
	if (add_context(&v, m, lock_path, index, err) < 0 || add_fetched(&v, m, err) < 0 ||
	    add_pinned(&v, m, lock, err) < 0 || add_base_images(&v, m, lock, index, err) < 0)
		goto out;
	if (m->base.kind == EP_BASE_DEBIAN) {
		json_t *l0 =
		    json_array_get(json_object_get(json_object_get(lock, "image"), "layers"), 0);
		const char *d0 = json_string_value(json_object_get(l0, "digest"));

		layer0 = d0 ? ep_store_blob_path(s, d0, err) : NULL;
		if (!layer0)
			goto out;
	}
	if (add_debian(&v, m, lock, index, work, layer0, err) < 0)
		goto out;
	/* envpin's own source; a binary built outside a checkout has none to
	 * give, which the index says */
	srctar = ep_path_join(work, "envpin-src.tar", err);
	if (!srctar)
		goto out;
	{
		ep_digest sd;
		struct ep_error serr = EP_ERROR_INIT;

		if (ep_source_tarball(srctar, sd, &serr) == 0) {
			cleanup_free char *l =
			    ep_asprintf(err, "source/envpin-%.12s.tar",
					json_string_value(json_object_get(src, "commit")));

			if (!l || add_file(&v, l, srctar, 0644, err) < 0)
				goto out;
			json_object_set_new(src, "tarball", json_string(l));
		} else {
			json_object_set_new(src, "tarball_missing", json_string(serr.msg));
		}
	}
	json_object_set(index, "envpin_source", src);
	json_object_set(index, "files", v.files);
	text = ep_json_pretty(index, err);
	idx_path = ep_path_join(v.dir, EP_BUNDLE_INDEX, err);
	if (!text || !idx_path)
		goto out;
	tlen = strlen(text);
	if (ep_sha256_buf(text, tlen, isha, err) < 0 ||
	    ep_write_file_atomic(idx_path, text, tlen, 0644, err) < 0)
		goto out;
	if (is_tar) {
		cleanup_free char *log = ep_path_join(work, "tar.log", err);

		if (!log || write_tar(v.dir, o->out, log, err) < 0)
			goto out;
	} else if (rename(v.dir, o->out) < 0) {
		ep_error_errno(err, EP_EENV, errno, "rename '%s' to '%s'", v.dir, o->out);
		goto out;
	} else {
		free(v.dir);
		v.dir = NULL;
	}
	*summary = json_pack("{s:s, s:s, s:I, s:I, s:s, s:O}", "bundle", o->out, "index_sha256",
			     isha, "files", (json_int_t)json_object_size(v.files), "bytes",
			     (json_int_t)v.bytes, "image", digest, "envpin_source", src);
	rc = *summary ? 0 : ep_error_oom(err);
out:
	if (rc < 0 && v.dir)
		ep_rm_rf(v.dir, NULL);
	free(v.dir);
	free(v.blobs);
	json_decref(v.files);
	ep_store_scratch_release(steal_pointer(&work), work_fd);
	ep_manifest_free(m);
	if (rc < 0)
		ep_error_wrap(err, "vendor");
	return rc;
}

/* ---- reading ---- */

/* A logical path from an index is untrusted: relative, no "..", no "//". */
static int safe_rel(const char *p)
{
	const char *c = p;

	if (!*p || *p == '/')
		return 0;
	while (*c) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += n;
		if (*c == '/')
			c++;
	}
	return 1;
}

/* A bundle tar is extracted into dir (GNU tar refuses members that leave
 * it); a directory is used as it is. */
static char *bundle_layout(const char *bundle, const char *dir, struct ep_error *err)
{
	struct stat st;
	cleanup_free char *log = NULL;
	const char *argv[] = {
	    "tar", "--no-same-owner", "--no-same-permissions", "-C", dir, "-xf", bundle, NULL};
	int rc;

	if (stat(bundle, &st) < 0) {
		ep_error_errno(err, EP_EINVAL, errno, "cannot open bundle '%s'", bundle);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		/* absolute: fetch items become file:// URLs of its blobs */
		char *abs = realpath(bundle, NULL);

		if (!abs)
			ep_error_errno(err, EP_EENV, errno, "resolve '%s'", bundle);
		return abs;
	}
	if (ep_mkdir_p(dir, err) < 0 || !(log = ep_asprintf(err, "%s.log", dir)))
		return NULL;
	if (ep_spawn_logged(argv, NULL, log, &rc, err) < 0)
		return NULL;
	if (rc != 0) {
		cleanup_free char *tail = ep_log_tail(log, 800);

		ep_error_set(err, EP_EINVAL, "cannot extract bundle '%s': %s", bundle,
			     tail ? tail : "tar failed");
		return NULL;
	}
	{
		/* absolute, whatever the store's root was given as */
		char *abs = realpath(dir, NULL);

		if (!abs)
			ep_error_errno(err, EP_EENV, errno, "resolve '%s'", dir);
		return abs;
	}
}

static json_t *load_index(const char *layout, struct ep_error *err)
{
	cleanup_free char *p = ep_path_join(layout, EP_BUNDLE_INDEX, err);
	json_t *j = p ? ep_json_load_file(p, INDEX_MAX_BYTES, err) : NULL;

	if (j && (!json_is_object(json_object_get(j, "files")) ||
		  json_integer_value(json_object_get(j, "bundleVersion")) != BUNDLE_VERSION ||
		  !json_string_value(json_object_get(json_object_get(j, "image"), "digest")) ||
		  !json_string_value(json_object_get(j, "manifest")) ||
		  !json_string_value(json_object_get(j, "lock")))) {
		json_decref(j);
		ep_error_set(err, EP_EINVAL, "'%s' is not an envpin bundle index (version %d)", p,
			     BUNDLE_VERSION);
		return NULL;
	}
	return j;
}

static int add_bad(json_t *bad, const char *path, const char *blob, const char *why)
{
	return json_array_append_new(
	    bad, json_pack("{s:s, s:s?, s:s}", "path", path, "blob", blob, "why", why));
}

/* 1 when a proper prefix of path is a symlink entry: laying the context
 * out would then write through the link, outside the scratch dir. */
static int below_symlink(json_t *files, const char *path)
{
	cleanup_free char *p = strdup(path);
	char *slash;

	if (!p)
		return 1;
	while ((slash = strrchr(p, '/'))) {
		*slash = '\0';
		if (json_object_get(json_object_get(files, p), "symlink"))
			return 1;
	}
	return 0;
}

/* The check proper, on a layout dir. */
static int check_layout(const char *layout, json_t *index, json_t **report, struct ep_error *err)
{
	cleanup_free char *bdir = ep_asprintf(err, "%s/blobs/sha256", layout);
	cleanup_json json_t *bad = json_array(), *names = json_object(), *seen = json_object();
	json_t *files = json_object_get(index, "files"), *f;
	const char *k;
	DIR *d;
	struct dirent *de;
	uint64_t bytes = 0;
	size_t nblobs = 0;

	if (!bdir || !bad || !names || !seen)
		return bdir ? ep_error_oom(err) : -1;
	/* which logical paths name each blob, to say what a bad blob is */
	json_object_foreach (files, k, f) {
		const char *sha = json_string_value(json_object_get(f, "sha256"));

		if (!safe_rel(k))
			add_bad(bad, k, NULL, "unsafe path in the index");
		else if (below_symlink(files, k))
			add_bad(bad, k, NULL, "a path below a symlink of the index");
		else if (sha && ep_digest_check(sha, NULL) == 0 && !json_object_get(names, sha))
			json_object_set_new(names, sha, json_string(k));
		else if (json_object_get(f, "sha256") && ep_digest_check(sha, NULL) < 0)
			add_bad(bad, k, NULL, "its sha256 in the index is not a digest");
	}
	d = opendir(bdir);
	if (!d)
		return ep_error_errno(err, EP_EINVAL, errno, "'%s' is not a bundle: open '%s'",
				      layout, bdir);
	while ((de = readdir(d))) {
		cleanup_free char *p = NULL, *dg = NULL, *bp = NULL;
		ep_digest have;
		uint64_t n;
		const char *name;

		if (de->d_name[0] == '.')
			continue;
		p = ep_path_join(bdir, de->d_name, err);
		dg = ep_asprintf(err, "sha256:%s", de->d_name);
		bp = ep_asprintf(err, "blobs/sha256/%s", de->d_name);
		if (!p || !dg || !bp) {
			closedir(d);
			return -1;
		}
		name = json_string_value(json_object_get(names, dg));
		nblobs++;
		if (!ep_is_hex64(de->d_name)) {
			add_bad(bad, bp, NULL, "not named by a sha256");
			continue;
		}
		if (ep_sha256_file(p, have, &n, NULL) < 0) {
			add_bad(bad, name ? name : bp, bp, "unreadable");
			continue;
		}
		bytes += n;
		json_object_set_new(seen, dg, json_integer((json_int_t)n));
		if (strcmp(have, dg)) {
			cleanup_free char *why = ep_asprintf(err, "its content hashes to %s", have);

			add_bad(bad, name ? name : bp, bp, why ? why : "bad content");
			json_object_set_new(seen, dg, json_integer(-1)); /* said once */
		}
	}
	closedir(d);
	json_object_foreach (files, k, f) {
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		json_t *have;

		if (!sha || ep_digest_check(sha, NULL) < 0)
			continue;
		have = json_object_get(seen, sha);
		if (!have)
			add_bad(bad, k, NULL, "its blob is missing");
		else if (json_integer_value(have) >= 0 &&
			 json_integer_value(have) != json_integer_value(json_object_get(f, "size")))
			add_bad(bad, k, NULL, "its size differs from the index");
	}
	*report = json_pack("{s:b, s:I, s:I, s:I, s:O}", "ok", json_array_size(bad) == 0, "files",
			    (json_int_t)json_object_size(files), "blobs", (json_int_t)nblobs,
			    "bytes", (json_int_t)bytes, "bad", bad);
	return *report ? 0 : ep_error_oom(err);
}

/* The blob text of logical file k (files[k].sha256) in layout; NULL if
 * unreadable.  Caller frees. */
static char *blob_text(const char *layout, json_t *f, size_t max, char **path)
{
	const char *sha = json_string_value(json_object_get(f, "sha256"));
	char *p = sha ? ep_asprintf(NULL, "%s/blobs/sha256/%s", layout, ep_digest_hex(sha)) : NULL;
	char *t;
	size_t len;

	if (!p)
		return NULL;
	t = ep_read_file(p, max, &len, NULL);
	if (path)
		*path = p;
	else
		free(p);
	return t;
}

/* The chain that made the .debs trustworthy online, checked again offline:
 * Debian's key signed every InRelease (gpgv with the host's archive
 * keyring), an InRelease names each Packages by SHA256, a Packages names
 * every .deb by SHA256.  A bundle with several debian bases (the image's, a
 * stage's) may carry several of each; a .deb two bases share is one file.
 * Returns a record for the report; a broken link is also a "bad" entry. */
static json_t *debian_chain(const char *layout, json_t *files, json_t *bad)
{
	const char *k;
	json_t *f;
	cleanup_free char *log = ep_asprintf(NULL, "/tmp/envpin-gpgv.%ld.log", (long)getpid());
	cleanup_json json_t *inrels = json_array(), *ptexts = json_array();
	size_t ndebs = 0, found = 0, npkgs = 0;
	int unchecked = access("/usr/share/keyrings/debian-archive-keyring.gpg", R_OK) != 0;
	int badsig = 0, all_listed = 1;
	const char *sig;

	if (!log || !inrels || !ptexts)
		return NULL;
	json_object_foreach (files, k, f) {
		size_t n = strlen(k);
		cleanup_free char *ip = NULL;
		char *t;
		int st = -1;
		const char *argv[] = {"gpgv", "--keyring",
				      "/usr/share/keyrings/debian-archive-keyring.gpg", NULL, NULL};

		if (strncmp(k, "inputs/debian/", 14) || n <= 10 || strcmp(k + n - 10, "_InRelease"))
			continue;
		t = blob_text(layout, f, 16u << 20, &ip);
		json_array_append_new(inrels, json_string(t ? t : ""));
		free(t);
		argv[3] = ip;
		if (unchecked || !ip || ep_spawn_logged(argv, NULL, log, &st, NULL) < 0) {
			unchecked = 1;
		} else if (st == 127) { /* gpgv is missing */
			unchecked = 1;
		} else if (st != 0) {
			badsig = 1;
			add_bad(bad, k, NULL, "its signature does not verify (gpgv)");
		}
		unlink(log);
	}
	json_object_foreach (files, k, f) {
		size_t n = strlen(k), i;
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		char line[96];
		json_t *it;
		int listed = 0;
		char *t;

		if (!strncmp(k, "inputs/debs/", 12))
			ndebs++;
		if (strncmp(k, "inputs/debian/", 14) || n <= 9 || strcmp(k + n - 9, "_Packages") ||
		    !sha)
			continue;
		npkgs++;
		/* some InRelease must list this Packages file's sha256 */
		snprintf(line, sizeof(line), " %s ", ep_digest_hex(sha));
		json_array_foreach (inrels, i, it)
			if (strstr(json_string_value(it), line))
				listed = 1;
		if (!listed) {
			all_listed = 0;
			add_bad(bad, k, NULL,
				"InRelease does not list this Packages file's sha256");
		}
		t = blob_text(layout, f, 1u << 30, NULL);
		json_array_append_new(ptexts, json_string(t ? t : ""));
		free(t);
	}
	if (!json_array_size(inrels) || !npkgs)
		return NULL;
	/* every .deb's sha256 is a SHA256 field of one of those Packages */
	json_object_foreach (files, k, f) {
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		char field[96];
		size_t i;
		json_t *it;
		int in = 0;

		if (strncmp(k, "inputs/debs/", 12) || !sha)
			continue;
		snprintf(field, sizeof(field), "\nSHA256: %s\n", ep_digest_hex(sha));
		json_array_foreach (ptexts, i, it)
			if (strstr(json_string_value(it), field))
				in = 1;
		if (in)
			found++;
		else
			add_bad(bad, k, NULL, "the archive's Packages does not list its sha256");
	}
	sig = badsig	  ? "BAD or unknown signature"
	      : unchecked ? "unchecked (gpgv or the Debian archive keyring is missing)"
			  : "good signature by a Debian archive key";
	return json_pack("{s:s, s:b, s:I, s:I, s:I, s:I}", "signature", sig,
			 "packages_in_inrelease", all_listed, "debs", (json_int_t)ndebs,
			 "debs_in_packages", (json_int_t)found, "inreleases",
			 (json_int_t)json_array_size(inrels), "packages_files", (json_int_t)npkgs);
}

int ep_vendor_check(struct ep_store *s, const char *bundle, json_t **report, struct ep_error *err)
{
	cleanup_free char *work = NULL, *x = NULL, *layout = NULL;
	cleanup_json json_t *index = NULL;
	int fd = -1, rc = -1;
	struct stat st;

	if (stat(bundle, &st) == 0 && !S_ISDIR(st.st_mode)) {
		if (!s)
			return ep_error_set(err, EP_EINVAL,
					    "a bundle tar needs a store to extract in");
		work = ep_store_scratch_dir(s, "scratch", &fd, err);
		if (!work || !(x = ep_path_join(work, "bundle", err)))
			goto out;
	}
	layout = bundle_layout(bundle, x, err);
	if (!layout || !(index = load_index(layout, err)))
		goto out;
	rc = check_layout(layout, index, report, err);
	if (rc == 0) {
		json_t *bad = json_object_get(*report, "bad");
		json_t *chain = debian_chain(layout, json_object_get(index, "files"), bad);

		if (chain)
			json_object_set_new(*report, "debian_chain", chain);
		json_object_set_new(*report, "ok", json_boolean(json_array_size(bad) == 0));
	}
out:
	ep_store_scratch_release(steal_pointer(&work), fd);
	return rc;
}

/* Writes a file of the context from its blob (mode from the index). */
static int materialize(const char *layout, const char *root, const char *path, json_t *f,
		       struct ep_error *err)
{
	cleanup_free char *dst = ep_path_join(root, path, err);
	const char *sha = json_string_value(json_object_get(f, "sha256"));
	const char *ln = json_string_value(json_object_get(f, "symlink"));
	const char *dm = json_string_value(json_object_get(f, "dir"));
	const char *fm = json_string_value(json_object_get(f, "mode"));
	char *slash;

	if (!dst)
		return -1;
	slash = strrchr(dst, '/');
	*slash = '\0';
	if (ep_mkdir_p(dst, err) < 0)
		return -1;
	*slash = '/';
	if (dm) {
		if (mkdir(dst, 0755) < 0 && errno != EEXIST)
			return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", dst);
		return chmod(dst, (mode_t)strtol(dm, NULL, 8) & 0777) < 0
			   ? ep_error_errno(err, EP_EENV, errno, "chmod '%s'", dst)
			   : 0;
	}
	if (ln)
		return symlink(ln, dst) < 0
			   ? ep_error_errno(err, EP_EENV, errno, "symlink '%s'", dst)
			   : 0;
	if (sha) {
		cleanup_free char *src =
		    ep_asprintf(err, "%s/blobs/sha256/%s", layout, ep_digest_hex(sha));
		cleanup_close int in = -1, out = -1;
		char buf[1 << 16];
		ssize_t k;

		if (!src)
			return -1;
		in = open(src, O_RDONLY | O_CLOEXEC);
		out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			   fm ? (mode_t)strtol(fm, NULL, 8) & 0777 : 0644);
		if (in < 0 || out < 0)
			return ep_error_errno(err, EP_EENV, errno, "write '%s'", dst);
		while ((k = read(in, buf, sizeof(buf))) > 0)
			if (ep_write_all(out, buf, (size_t)k, err) < 0)
				return -1;
		if (k < 0)
			return ep_error_errno(err, EP_EENV, errno, "read '%s'", src);
		return fchmod(out, fm ? (mode_t)strtol(fm, NULL, 8) & 0777 : 0644) < 0
			   ? ep_error_errno(err, EP_EENV, errno, "chmod '%s'", dst)
			   : 0;
	}
	return ep_error_set(err, EP_EINVAL, "bundle index: '%s' is neither file, dir nor symlink",
			    path);
}

/* The .debs apt may pick, by the sha256 its Packages index gives them:
 * {"sha256:HEX": blob path}. */
static json_t *debs_by_sha(struct ep_bundle *b, struct ep_error *err)
{
	json_t *out = json_object(), *f;
	const char *k;

	if (!out) {
		ep_error_oom(err);
		return NULL;
	}
	json_object_foreach (json_object_get(b->index, "files"), k, f) {
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		char *p;

		if (strncmp(k, "inputs/debs/", 12) || !sha)
			continue;
		p = ep_asprintf(err, "%s/blobs/sha256/%s", b->layout, ep_digest_hex(sha));
		if (!p || json_object_set_new(out, sha, json_string(p)) < 0) {
			free(p);
			json_decref(out);
			return NULL;
		}
		free(p);
	}
	return out;
}

static const char *field(const char *stanza, size_t len, const char *name, size_t *flen)
{
	size_t n = strlen(name);

	for (const char *p = stanza; p && p < stanza + len;) {
		if ((size_t)(stanza + len - p) > n && !strncmp(p, name, n)) {
			const char *e =
			    memchr(p + n, '\n', (size_t)(stanza + len - p - (ptrdiff_t)n));

			*flen = (size_t)((e ? e : stanza + len) - (p + n));
			return p + n;
		}
		p = memchr(p, '\n', (size_t)(stanza + len - p));
		if (p)
			p++;
	}
	return NULL;
}

/* One debian record of the bundle (index.debian or index.debian_stages.NAME):
 * its sources.list written to path; its suite checked. */
static int debian_record(json_t *rec, const char *path, const char **suite, struct ep_error *err)
{
	const char *text = json_string_value(json_object_get(rec, "sources_list"));

	*suite = json_string_value(json_object_get(rec, "suite"));
	if (!text || !*suite || !safe_rel(*suite) || strchr(*suite, '/'))
		return ep_error_set(err, EP_EINVAL, "the bundle's debian record is incomplete");
	return ep_write_file_atomic(path, text, strlen(text), 0644, err);
}

/* The bundle's .debs as one local apt repository for every debian base (the
 * image's and the stages'): the archive's Packages stanzas of exactly those
 * .debs (found by their SHA256 field, each once), each .deb at its Filename,
 * and for every base's suite a Release naming that Packages index. */
static int make_repo(struct ep_bundle *b, struct ep_error *err)
{
	json_t *deb = json_object_get(b->index, "debian");
	cleanup_free char *repo = ep_path_join(b->work, "repo", err);
	cleanup_free char *sl = ep_path_join(b->work, "sources.list", err);
	cleanup_free char *out = NULL;
	cleanup_json json_t *shas = NULL, *seen = json_object(), *suites = json_object();
	size_t olen = 0, ocap = 1 << 20, kept = 0, si = 0;
	json_t *f, *rec;
	const char *k, *suite;
	ep_digest pd;

	if (!repo || !sl || !seen || !suites || !(shas = debs_by_sha(b, err)))
		return seen && suites ? -1 : ep_error_oom(err);
	if (deb && (debian_record(deb, sl, &suite, err) < 0 ||
		    json_object_set_new(suites, suite, json_true()) < 0))
		return -1;
	if (json_object_get(b->index, "debian_stages")) {
		b->offline.stage_sources = json_object();
		if (!b->offline.stage_sources)
			return ep_error_oom(err);
	}
	json_object_foreach (json_object_get(b->index, "debian_stages"), k, rec) {
		cleanup_free char *p = ep_asprintf(err, "%s/sources-stage-%zu.list", b->work, si++);
		cleanup_free char *label = ep_asprintf(err, "stages.%s.", k);

		if (!p || !label || debian_record(rec, p, &suite, err) < 0 ||
		    json_object_set_new(suites, suite, json_true()) < 0 ||
		    json_object_set_new(b->offline.stage_sources, label, json_string(p)) < 0)
			return err && err->code ? -1 : ep_error_oom(err);
	}
	out = ep_malloc(ocap, err);
	if (!out)
		return -1;
	json_object_foreach (json_object_get(b->index, "files"), k, f) {
		size_t n = strlen(k), len;
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		cleanup_free char *bp = NULL, *buf = NULL;
		const char *p, *end;

		if (strncmp(k, "inputs/debian/", 14) || n < 9 || strcmp(k + n - 9, "_Packages") ||
		    !sha)
			continue;
		bp = ep_asprintf(err, "%s/blobs/sha256/%s", b->layout, ep_digest_hex(sha));
		buf = bp ? ep_read_file(bp, 1u << 30, &len, err) : NULL;
		if (!buf)
			return -1;
		for (p = buf; p < buf + len; p = end) {
			const char *h, *fn;
			size_t hl, fl, sl2;
			char key[80];

			end = strstr(p, "\n\n");
			end = end ? end + 2 : buf + len;
			sl2 = (size_t)(end - p);
			h = field(p, sl2, "SHA256: ", &hl);
			fn = field(p, sl2, "Filename: ", &fl);
			if (!h || hl != 64 || !fn)
				continue;
			snprintf(key, sizeof(key), "sha256:%.64s", h);
			if (!json_object_get(shas, key) || json_object_get(seen, key))
				continue;
			if (json_object_set_new(seen, key, json_true()) < 0)
				return ep_error_oom(err);
			{
				cleanup_free char *name = strndup(fn, fl);
				cleanup_free char *dst = NULL;
				json_t *one =
				    json_pack("{s:s, s:s}", "sha256", key, "mode", "0644");

				if (!name || !one || !safe_rel(name)) {
					json_decref(one);
					return ep_error_set(err, EP_EINVAL,
							    "bundle Packages: bad Filename for %s",
							    key);
				}
				dst = ep_path_join(repo, name, err);
				if (!dst || (access(dst, F_OK) < 0 &&
					     materialize(b->layout, repo, name, one, err) < 0)) {
					json_decref(one);
					return -1;
				}
				json_decref(one);
			}
			while (olen + sl2 + 2 > ocap) {
				char *nb = ep_realloc(out, ocap *= 2, err);

				if (!nb)
					return -1;
				out = nb;
			}
			memcpy(out + olen, p, sl2);
			olen += sl2;
			if (olen && out[olen - 1] != '\n')
				out[olen++] = '\n';
			if (olen < 2 || out[olen - 2] != '\n')
				out[olen++] = '\n';
			kept++;
		}
	}
	if (kept == 0)
		return ep_error_set(err, EP_EINVAL, "the bundle's Packages name none of its .debs");
	if (ep_sha256_buf(out, olen, pd, err) < 0)
		return -1;
	json_object_foreach (suites, suite, f) {
		cleanup_free char *pdir =
		    ep_asprintf(err, "%s/dists/%s/main/binary-amd64", repo, suite);
		cleanup_free char *ppath = pdir ? ep_path_join(pdir, "Packages", err) : NULL;
		cleanup_free char *rpath = ep_asprintf(err, "%s/dists/%s/Release", repo, suite);
		cleanup_free char *rel = ep_asprintf(
		    err,
		    "Origin: envpin-bundle\nLabel: envpin-bundle\nSuite: %s\nCodename: %s\n"
		    "Date: Thu, 01 Jan 1970 00:00:00 UTC\nArchitectures: amd64\n"
		    "Components: main\nSHA256:\n %s %zu main/binary-amd64/Packages\n",
		    suite, suite, ep_digest_hex(pd), olen);

		if (!pdir || !ppath || !rpath || !rel || ep_mkdir_p(pdir, err) < 0 ||
		    ep_write_file_atomic(ppath, out, olen, 0644, err) < 0 ||
		    ep_write_file_atomic(rpath, rel, strlen(rel), 0644, err) < 0)
			return -1;
	}
	b->offline.debian_repo = steal_pointer(&repo);
	if (deb)
		b->offline.sources_list = steal_pointer(&sl);
	return 0;
}

int ep_bundle_open(struct ep_store *s, const char *bundle, struct ep_bundle *b,
		   struct ep_error *err)
{
	cleanup_free char *x = NULL, *ctx = NULL;
	cleanup_json json_t *rep = NULL;
	json_t *files, *f, *bad;
	const char *k;

	memset(b, 0, sizeof(*b));
	b->work_fd = -1;
	b->work = ep_store_scratch_dir(s, "scratch", &b->work_fd, err);
	if (!b->work)
		goto fail;
	if (b->work[0] != '/') {
		/* a store named by a relative path: the repository and the
		 * fetch URLs below need absolute paths */
		char *abs = realpath(b->work, NULL);

		if (!abs) {
			ep_error_errno(err, EP_EENV, errno, "resolve '%s'", b->work);
			goto fail;
		}
		free(b->work);
		b->work = abs;
	}
	if (!(x = ep_path_join(b->work, "bundle", err)))
		goto fail;
	b->layout = bundle_layout(bundle, x, err);
	if (!b->layout || !(b->index = load_index(b->layout, err)))
		goto fail;
	if (check_layout(b->layout, b->index, &rep, err) < 0)
		goto fail;
	json_decref(debian_chain(b->layout, json_object_get(b->index, "files"),
				 json_object_get(rep, "bad")));
	bad = json_array_get(json_object_get(rep, "bad"), 0);
	if (bad) {
		const char *blob = json_string_value(json_object_get(bad, "blob"));

		ep_error_set(err, EP_EMISMATCH, "%s%s%s%s is damaged: %s (%zu bad file%s)",
			     json_string_value(json_object_get(bad, "path")), blob ? " (" : "",
			     blob ? blob : "", blob ? ")" : "",
			     json_string_value(json_object_get(bad, "why")),
			     json_array_size(json_object_get(rep, "bad")),
			     json_array_size(json_object_get(rep, "bad")) == 1 ? "" : "s");
		goto fail;
	}
	snprintf(b->image_digest, sizeof(b->image_digest), "%s",
		 json_string_value(json_object_get(json_object_get(b->index, "image"), "digest")));
	if (ep_digest_check(b->image_digest, err) < 0)
		goto fail;
	ctx = ep_path_join(b->work, "tree", err);
	files = json_object_get(b->index, "files");
	b->offline.files = json_object();
	if (!ctx || !b->offline.files)
		goto fail;
	json_object_foreach (files, k, f) {
		if (!strncmp(k, "context/", 8) && materialize(b->layout, ctx, k, f, err) < 0)
			goto fail;
		if (!strncmp(k, "inputs/fetch/", 13) || !strncmp(k, "inputs/wheels/", 14) ||
		    !strncmp(k, "inputs/apt/", 11)) {
			const char *sha = json_string_value(json_object_get(f, "sha256"));
			cleanup_free char *p =
			    ep_asprintf(err, "%s/blobs/sha256/%s", b->layout, ep_digest_hex(sha));

			if (!p || json_object_set_new(b->offline.files, sha, json_string(p)) < 0)
				goto fail;
		}
	}
	b->manifest_path =
	    ep_path_join(ctx, json_string_value(json_object_get(b->index, "manifest")), err);
	b->lock_path = ep_path_join(ctx, json_string_value(json_object_get(b->index, "lock")), err);
	if (!b->manifest_path || !b->lock_path)
		goto fail;
	if ((json_object_get(b->index, "debian") || json_object_get(b->index, "debian_stages")) &&
	    make_repo(b, err) < 0)
		goto fail;
	if (json_object_get(b->index, "base_image")) {
		/* the base's blobs are blobs of the bundle's layout */
		const char *d = json_string_value(
		    json_object_get(json_object_get(b->index, "base_image"), "digest"));

		if (!d || ep_digest_check(d, err) < 0)
			goto fail;
		b->offline.base_layout = b->layout;
		b->offline.base_digest = d;
	}
	if (json_object_get(b->index, "stage_base_images")) {
		json_t *sb;

		b->offline.stage_bases = json_object();
		if (!b->offline.stage_bases)
			goto fail;
		json_object_foreach (json_object_get(b->index, "stage_base_images"), k, sb) {
			const char *d = json_string_value(json_object_get(sb, "digest"));
			cleanup_free char *label = ep_asprintf(err, "stages.%s.", k);

			if (!d) {
				ep_error_set(err, EP_EINVAL, "stage_base_images.%s has no digest",
					     k);
				goto fail;
			}
			if (!label || ep_digest_check(d, err) < 0 ||
			    json_object_set_new(b->offline.stage_bases, label, json_string(d)) < 0)
				goto fail;
		}
		b->offline.base_layout = b->layout;
	}
	return 0;
fail:
	ep_error_wrap(err, "bundle '%s'", bundle);
	ep_bundle_release(b);
	return -1;
}

void ep_bundle_release(struct ep_bundle *b)
{
	ep_store_scratch_release(b->work, b->work_fd);
	b->work = NULL;
	b->work_fd = -1;
	free(b->layout);
	free(b->manifest_path);
	free(b->lock_path);
	json_decref(b->index);
	json_decref(b->offline.files);
	json_decref(b->offline.stage_bases);
	json_decref(b->offline.stage_sources);
	free((char *)b->offline.debian_repo);
	free((char *)b->offline.sources_list);
	memset(b, 0, sizeof(*b));
	b->work_fd = -1;
}

/* ---- context copies (verify --vary) ---- */

int ep_context_copy(const char *manifest, const char *lock, const char *dest, int preserve,
		    char **manifest_out, char **lock_out, struct ep_error *err)
{
	struct ep_manifest *m = ep_manifest_load(manifest, err);
	cleanup_json json_t *paths = NULL;
	cleanup_free char *root = NULL, *log = NULL;
	char mp[PATH_MAX], lp[PATH_MAX];
	json_t *p;
	size_t i, rn;
	int rc = -1;

	if (!m)
		return -1;
	if (!(paths = context_paths(m, lock, err)) || !(root = common_dir(paths, err)) ||
	    !(log = ep_asprintf(err, "%s.log", dest)))
		goto out;
	if (!realpath(manifest, mp) || !realpath(lock, lp)) {
		ep_error_errno(err, EP_EINVAL, errno, "cannot resolve '%s'", manifest);
		goto out;
	}
	rn = strcmp(root, "/") ? strlen(root) : 0;
	json_array_append_new(paths, json_string(mp));
	json_array_append_new(paths, json_string(lp));
	json_array_foreach (paths, i, p) {
		const char *src = json_string_value(p);
		cleanup_free char *to = ep_asprintf(err, "%s%s", dest, src + rn);
		const char *argv[] = {
		    "cp", "-R", "-P", preserve ? "--preserve=all" : "--no-preserve=all",
		    "-T", src,	NULL, NULL};
		char *slash;
		int st;
		struct stat sb;

		if (!to)
			goto out;
		/* the manifest's dir itself: only the manifest and the lock */
		if (i == 0)
			continue;
		if (lstat(src, &sb) < 0)
			continue;
		slash = strrchr(to, '/');
		*slash = '\0';
		if (ep_mkdir_p(to, err) < 0)
			goto out;
		*slash = '/';
		argv[6] = to;
		if (ep_spawn_logged(argv, NULL, log, &st, err) < 0)
			goto out;
		if (st != 0) {
			cleanup_free char *tail = ep_log_tail(log, 600);

			ep_error_set(err, EP_EENV, "copy '%s' to '%s' failed: %s", src, to,
				     tail ? tail : "");
			goto out;
		}
	}
	*manifest_out = ep_asprintf(err, "%s%s", dest, mp + rn);
	*lock_out = ep_asprintf(err, "%s%s", dest, lp + rn);
	rc = *manifest_out && *lock_out ? 0 : -1;
out:
	if (log)
		unlink(log);
	ep_manifest_free(m);
	return rc;
}
