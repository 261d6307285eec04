/* lib/oci.c - OCI/Docker image documents: verify, export, inspect (oci.h).
 *
 * Every image source (an OCI layout directory, an OCI archive, a
 * docker-archive) is reduced to one question: "what do the bytes of blob X
 * hash to, raw and decompressed?".  A layout answers it on demand by reading
 * the blob file; an archive is read once, front to back, and every member
 * is hashed as it streams past (the manifest that says which member is a
 * layer may come after the layer), so the answer comes from a table.  The
 * comparison against manifest, config and diff_ids is then shared. */
#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_dl.h"
#include "async_sink.h"
#include "compress.h"
#include "jsonutil.h"
#include "parallel.h"
#include "pgunzip.h"
#include "sink.h"
#include "util.h"

#define CHUNK (1u << 20)
#define MT_MAX 256
/* Archive limits: member name length, member count, bytes of JSON-looking
 * members kept in memory until the end of the archive. */
#define MEMBER_NAME_MAX 1024
#define MEMBERS_MAX 100000
#define KEPT_BYTES_MAX (64u << 20)
#define LINK_HOPS_MAX 8

static const char *const ann_ref_name = "org.opencontainers.image.ref.name";
static const char *const ann_image_name = "io.containerd.image.name";

/* ------------------------------------------------------------------ */
/* Documents                                                           */

struct desc {
	char media_type[MT_MAX];
	ep_digest digest;
	uint64_t size;
};

struct image_manifest {
	char media_type[MT_MAX];
	struct desc config;
	struct desc *layers;
	size_t n_layers;
};

static void image_manifest_release(struct image_manifest *m)
{
	free(m->layers);
	m->layers = NULL;
	m->n_layers = 0;
}

static int is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, EP_MT_OCI_INDEX) || !strcmp(mt, EP_MT_DOCKER_LIST));
}

static int parse_desc(json_t *j, const char *what, struct desc *d, struct ep_error *err)
{
	json_t *mt, *dg, *sz;

	if (!json_is_object(j))
		return ep_error_set(err, EP_EINVAL, "%s: not a descriptor object", what);
	mt = json_object_get(j, "mediaType");
	dg = json_object_get(j, "digest");
	sz = json_object_get(j, "size");
	if (!json_is_string(mt) || json_string_length(mt) >= MT_MAX)
		return ep_error_set(err, EP_EINVAL, "%s: missing or invalid 'mediaType'", what);
	if (!json_is_string(dg))
		return ep_error_set(err, EP_EINVAL, "%s: missing 'digest'", what);
	if (ep_digest_check(json_string_value(dg), err) < 0)
		return ep_error_wrap(err, "%s", what);
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return ep_error_set(err, EP_EINVAL, "%s: missing or negative 'size'", what);
	snprintf(d->media_type, sizeof(d->media_type), "%s", json_string_value(mt));
	snprintf(d->digest, sizeof(d->digest), "%s", json_string_value(dg));
	d->size = (uint64_t)json_integer_value(sz);
	return 0;
}

/* Parses an image manifest (OCI or Docker schema 2).  An index in the
 * place of a manifest is refused, whatever its mediaType claims: the same
 * bytes must not mean two things (CVE-2021-41190). */
static int parse_manifest(const char *buf, size_t len, const char *digest,
			  struct image_manifest *m, struct ep_error *err)
{
	char what[128];
	cleanup_json json_t *j = NULL;
	json_t *mt, *sv, *layers;
	const char *mts;

	memset(m, 0, sizeof(*m));
	snprintf(what, sizeof(what), "manifest %s", digest);
	j = ep_json_loadb(buf, len, EP_MAX_MANIFEST_BYTES, what, err);
	if (!j)
		return -1;
	if (!json_is_object(j))
		return ep_error_set(err, EP_EINVAL, "%s: not a JSON object", what);
	mt = json_object_get(j, "mediaType");
	if (mt && !json_is_string(mt))
		return ep_error_set(err, EP_EINVAL, "%s: 'mediaType' is not a string", what);
	mts = mt ? json_string_value(mt) : EP_MT_OCI_MANIFEST;
	if (json_object_get(j, "manifests") || is_index_type(mts))
		return ep_error_set(err, EP_EINVAL, "%s: is an image index, not an image manifest",
				    what);
	if (strcmp(mts, EP_MT_OCI_MANIFEST) && strcmp(mts, EP_MT_DOCKER_MANIFEST))
		return ep_error_set(err, EP_EINVAL, "%s: unsupported media type '%s'", what, mts);
	snprintf(m->media_type, sizeof(m->media_type), "%s", mts);
	sv = json_object_get(j, "schemaVersion");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return ep_error_set(err, EP_EINVAL, "%s: 'schemaVersion' is not 2", what);
	if (parse_desc(json_object_get(j, "config"), "config", &m->config, err) < 0)
		return ep_error_wrap(err, "%s", what);
	if (strcmp(m->config.media_type, EP_MT_OCI_CONFIG) &&
	    strcmp(m->config.media_type, EP_MT_DOCKER_CONFIG))
		return ep_error_set(err, EP_EINVAL, "%s: config media type '%s' is not an image config",
				    what, m->config.media_type);
	layers = json_object_get(j, "layers");
	if (!json_is_array(layers))
		return ep_error_set(err, EP_EINVAL, "%s: missing 'layers' array", what);
	m->n_layers = json_array_size(layers);
	m->layers = ep_calloc(m->n_layers ? m->n_layers : 1, sizeof(*m->layers), err);
	if (!m->layers)
		return -1;
	for (size_t i = 0; i < m->n_layers; i++) {
		char lw[32];

		snprintf(lw, sizeof(lw), "layers[%zu]", i);
		if (parse_desc(json_array_get(layers, i), lw, &m->layers[i], err) < 0) {
			image_manifest_release(m);
			return ep_error_wrap(err, "%s", what);
		}
		if (ep_compression_from_media_type(m->layers[i].media_type) < 0) {
			ep_error_set(err, EP_EINVAL, "%s: layer %s: unknown media type '%s'", what,
				     m->layers[i].digest, m->layers[i].media_type);
			image_manifest_release(m);
			return -1;
		}
	}
	return 0;
}

/* Parses an image config and returns it (new reference); *diff_ids gets a
 * malloc'ed array of rootfs.diff_ids. */
static json_t *parse_config(const char *buf, size_t len, const char *digest, ep_digest **diff_ids,
			    size_t *n, struct ep_error *err)
{
	char what[128];
	cleanup_json json_t *j = NULL;
	json_t *rootfs, *ids;
	ep_digest *out;

	snprintf(what, sizeof(what), "config %s", digest);
	j = ep_json_loadb(buf, len, EP_MAX_CONFIG_BYTES, what, err);
	if (!j)
		return NULL;
	rootfs = json_object_get(j, "rootfs");
	ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_object(j) || !json_is_array(ids)) {
		ep_error_set(err, EP_EINVAL, "%s: missing 'rootfs.diff_ids'", what);
		return NULL;
	}
	/* *n and *diff_ids are set together, only on success: callers index
	 * diff_ids by n even after a config that failed to parse. */
	size_t count = json_array_size(ids);
	out = ep_calloc(count ? count : 1, sizeof(*out), err);
	if (!out)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		json_t *d = json_array_get(ids, i);

		if (!json_is_string(d) || ep_digest_check(json_string_value(d), err) < 0) {
			if (json_is_string(d))
				ep_error_wrap(err, "%s: rootfs.diff_ids[%zu]", what, i);
			else
				ep_error_set(err, EP_EINVAL, "%s: rootfs.diff_ids[%zu] is not a string",
					     what, i);
			free(out);
			return NULL;
		}
		snprintf(out[i], sizeof(out[i]), "%s", json_string_value(d));
	}
	*n = count;
	*diff_ids = out;
	return steal_pointer(&j);
}

/* ------------------------------------------------------------------ */
/* Hashing one blob: raw digest and, through a decompressor, diff digest */

struct blob_result {
	int present;
	ep_digest raw;
	uint64_t raw_size;
	int kind; /* compression the bytes were decompressed with */
	ep_digest diff; /* "" when decompression failed */
	uint64_t diff_size;
	char problem[256]; /* why decompression failed */
};

struct progress {
	ep_progress_fn fn;
	void *ctx;
	pthread_mutex_t mu;
	uint64_t done, total;
};

static void progress_add(struct progress *p, const char *what, uint64_t n)
{
	if (!p || !p->fn)
		return;
	pthread_mutex_lock(&p->mu);
	p->done += n;
	p->fn(p->ctx, what, p->done, p->total);
	pthread_mutex_unlock(&p->mu);
}

/* The streaming half of hashing: raw hash always; a decompressor feeding
 * the diff hash when kind is not NONE.  A decompression failure is not an
 * error of the hasher: it is recorded (it is what verify reports) and the
 * raw hash goes on, so the report can still say what the blob hashes to. */
/* Blobs from this size on are inflated and hashed in a pipeline of threads. */
#define THREADED_BLOB ((off_t)16 << 20)

struct blob_hasher {
	struct ep_hash_sink raw, diff;
	struct ep_sink *dec;
	/* big blobs: inflate and the diff hash each in a thread of their own
	 * (async_sink.h), so the three stages overlap; `in` is what the raw
	 * bytes go to (dec, or the async sink in front of it) */
	struct ep_sink *in, *dec_async, *diff_async;
	int kind, failed;
	struct blob_result *r;
};

static void blob_hasher_release(struct blob_hasher *h);

static int blob_hasher_init(struct blob_hasher *h, int kind, int threaded, struct blob_result *r,
			    struct ep_error *err)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->r = r;
	r->kind = kind;
	if (ep_hash_sink_init(&h->raw, NULL, err) < 0)
		return -1;
	if (kind == EP_COMPRESS_NONE)
		return 0;
	if (ep_hash_sink_init(&h->diff, NULL, err) < 0) {
		ep_sink_release(&h->raw.base);
		return -1;
	}
	if (threaded) {
		h->diff_async = ep_async_sink_new(&h->diff.base, err);
		if (!h->diff_async)
			goto fail;
	}
	if (threaded && kind == EP_COMPRESS_GZIP)
		h->dec = ep_pgunzip_sink_new(EP_MAX_LAYER_BYTES, ep_worker_cpus(),
					     h->diff_async ? h->diff_async : &h->diff.base, err);
	else
		h->dec = ep_decompress_sink_new((enum ep_compression)kind, EP_MAX_LAYER_BYTES,
						h->diff_async ? h->diff_async : &h->diff.base, err);
	if (!h->dec)
		goto fail;
	h->in = h->dec;
	if (threaded) {
		h->dec_async = ep_async_sink_new(h->dec, err);
		if (!h->dec_async)
			goto fail;
		h->in = h->dec_async;
	}
	return 0;
fail:
	blob_hasher_release(h);
	return -1;
}

static void blob_hasher_fail(struct blob_hasher *h, const struct ep_error *e)
{
	h->failed = 1;
	snprintf(h->r->problem, sizeof(h->r->problem), "%s", e->msg);
}

static void blob_hasher_write(struct blob_hasher *h, const void *buf, size_t len)
{
	struct ep_error e = EP_ERROR_INIT;

	ep_sink_write(&h->raw.base, buf, len, NULL);
	if (h->in && !h->failed && ep_sink_write(h->in, buf, len, &e) < 0)
		blob_hasher_fail(h, &e);
}

static void blob_hasher_finish(struct blob_hasher *h)
{
	struct ep_error e = EP_ERROR_INIT;
	struct blob_result *r = h->r;

	ep_sink_finish(&h->raw.base, NULL);
	memcpy(r->raw, h->raw.digest, sizeof(r->raw));
	r->raw_size = h->raw.bytes;
	if (!h->dec) {
		memcpy(r->diff, r->raw, sizeof(r->diff));
		r->diff_size = r->raw_size;
	} else if (!h->failed && ep_sink_finish(h->in, &e) < 0) {
		blob_hasher_fail(h, &e);
	} else if (!h->failed) {
		memcpy(r->diff, h->diff.digest, sizeof(r->diff));
		r->diff_size = h->diff.bytes;
	}
	r->present = 1;
}

static void blob_hasher_release(struct blob_hasher *h)
{
	ep_sink_release(&h->raw.base);
	if (h->kind == EP_COMPRESS_NONE)
		return;
	/* front to back: each async sink's worker is stopped before the stage
	 * it writes to goes away */
	ep_async_sink_free(h->dec_async);
	/* either kind of decompressor is freed as a sink */
	ep_sink_release(h->dec);
	free(h->dec);
	ep_async_sink_free(h->diff_async);
	ep_sink_release(&h->diff.base);
	h->dec_async = h->dec = h->diff_async = h->in = NULL;
	h->kind = EP_COMPRESS_NONE;
}

static char *blob_path(const char *layout, const char *digest, struct ep_error *err)
{
	if (ep_digest_check(digest, err) < 0)
		return NULL;
	return ep_asprintf(err, "%s/blobs/sha256/%s", layout, ep_digest_hex(digest));
}

struct mapped_inflate {
	struct ep_sink *dec;
	const void *map;
	size_t len;
	struct ep_error err;
	int rc;
};

static void *mapped_inflate_main(void *arg)
{
	struct mapped_inflate *m = arg;

	m->rc = ep_pgunzip_run_mapped(m->dec, m->map, m->len, &m->err);
	return NULL;
}

/* A big gzip blob, mapped: one thread inflates it (pgunzip, with its own
 * helpers, which also run the diff hash on each chunk's output in order),
 * while this one hashes the raw bytes in place.  No read() copy and no copy into the inflater's
 * buffer: about a fifth of the reference image's verify CPU (docs/verify.md).  1 when the file
 * cannot be mapped (the caller reads it instead), 0, or -1. */
static int hash_mapped_gzip(int fd, size_t len, struct blob_result *r, struct progress *pg,
			    const char *what, struct ep_error *err)
{
	struct mapped_inflate m = {NULL, NULL, 0, EP_ERROR_INIT, 0};
	struct ep_hash_sink raw, diff;
	struct ep_sink *dec = NULL;
	pthread_t th;
	void *map;
	int rc = -1, e;

	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return 1;
	(void)madvise(map, len, MADV_SEQUENTIAL);
	if (ep_hash_sink_init(&raw, NULL, err) < 0)
		goto out_unmap;
	if (ep_hash_sink_init(&diff, NULL, err) < 0)
		goto out_raw;
	dec = ep_pgunzip_sink_new(EP_MAX_LAYER_BYTES, ep_worker_cpus(), &diff.base, err);
	if (!dec)
		goto out_diff;
	m.dec = dec;
	m.map = map;
	m.len = len;
	e = pthread_create(&th, NULL, mapped_inflate_main, &m);
	if (e != 0) {
		ep_error_errno(err, EP_EENV, e, "start a thread");
		goto out_dec;
	}
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;

		ep_sink_write(&raw.base, (const char *)map + off, n, NULL);
		progress_add(pg, what, n);
	}
	pthread_join(th, NULL);
	ep_sink_finish(&raw.base, NULL);
	r->kind = EP_COMPRESS_GZIP;
	memcpy(r->raw, raw.digest, sizeof(r->raw));
	r->raw_size = raw.bytes;
	if (m.rc < 0) {
		snprintf(r->problem, sizeof(r->problem), "%s", m.err.msg);
	} else {
		memcpy(r->diff, diff.digest, sizeof(r->diff));
		r->diff_size = diff.bytes;
	}
	r->present = 1;
	rc = 0;
out_dec:
	ep_pgunzip_sink_free(dec);
out_diff:
	ep_sink_release(&diff.base);
out_raw:
	ep_sink_release(&raw.base);
out_unmap:
	munmap(map, len);
	return rc;
}

/* Hashes layout blob `digest` with decompression `kind`.  A missing file
 * leaves r->present 0 and is not an error here. */
static int hash_layout_blob(const char *layout, const char *digest, int kind,
			    struct blob_result *r, struct progress *pg, struct ep_error *err)
{
	cleanup_free char *path = blob_path(layout, digest, err);
	cleanup_free char *buf = NULL;
	cleanup_close int fd = -1;
	struct blob_hasher h;
	struct stat st;
	char what[96];

	memset(r, 0, sizeof(*r));
	if (!path)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", path);
	}
	if (fstat(fd, &st) < 0)
		return ep_error_errno(err, EP_EENV, errno, "stat '%s'", path);
	snprintf(what, sizeof(what), "layer %.19s", digest);
	if (kind == EP_COMPRESS_GZIP && S_ISREG(st.st_mode) && st.st_size >= THREADED_BLOB &&
	    (uint64_t)st.st_size <= SIZE_MAX && ep_worker_cpus() >= 2 &&
	    !getenv("ENVPIN_NO_MMAP")) {
		int rc = hash_mapped_gzip(fd, (size_t)st.st_size, r, pg, what, err);

		if (rc <= 0)
			return rc;
	}
	buf = ep_malloc(CHUNK, err);
	if (!buf || blob_hasher_init(&h, kind, st.st_size >= THREADED_BLOB && ep_worker_cpus() >= 2,
				     r, err) < 0)
		return -1;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			blob_hasher_release(&h);
			return ep_error_errno(err, EP_EENV, e, "read '%s'", path);
		}
		if (n == 0)
			break;
		blob_hasher_write(&h, buf, (size_t)n);
		progress_add(pg, what, (uint64_t)n);
	}
	blob_hasher_finish(&h);
	blob_hasher_release(&h);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Archives: one pass over the tar                                     */

struct member {
	char *name;
	char *link; /* symlink/hardlink target as an archive path, or NULL */
	int is_reg;
	struct blob_result r;
	char *data; /* kept JSON-looking members */
	size_t len;
};

struct scan {
	struct member *m;
	size_t n, cap;
	size_t kept;
};

static void scan_release(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->m[i].name);
		free(s->m[i].link);
		free(s->m[i].data);
	}
	free(s->m);
	memset(s, 0, sizeof(*s));
}

static struct member *scan_find(struct scan *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->m[i].name, name))
			return &s->m[i];
	return NULL;
}

/* Follows symlinks and hardlinks inside the archive to a regular member. */
static struct member *scan_resolve(struct scan *s, const char *name)
{
	struct member *m = scan_find(s, name);

	for (int hops = 0; m && !m->is_reg && hops < LINK_HOPS_MAX; hops++)
		m = m->link ? scan_find(s, m->link) : NULL;
	return m && m->is_reg ? m : NULL;
}

/* Lexically normalizes an archive path: strips "./" and "/" runs; refuses
 * "..", absolute paths and overlong names (the archive is untrusted).
 * Returns a malloc'ed name ("" for the archive root). */
static char *clean_member_name(const char *raw, struct ep_error *err)
{
	size_t len = strlen(raw);
	char *out, *o;
	const char *p = raw;

	if (len > MEMBER_NAME_MAX) {
		ep_error_set(err, EP_EINVAL, "archive member name longer than %d bytes", MEMBER_NAME_MAX);
		return NULL;
	}
	if (raw[0] == '/') {
		ep_error_set(err, EP_EINVAL, "archive member '%s': absolute path", raw);
		return NULL;
	}
	out = ep_malloc(len + 1, err);
	if (!out)
		return NULL;
	o = out;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t cl = e ? (size_t)(e - p) : strlen(p);

		if (cl == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			ep_error_set(err, EP_EINVAL, "archive member '%s': '..' in path", raw);
			return NULL;
		}
		if (cl && !(cl == 1 && p[0] == '.')) {
			if (o != out)
				*o++ = '/';
			memcpy(o, p, cl);
			o += cl;
		}
		p += cl;
		if (*p == '/')
			p++;
	}
	*o = '\0';
	return out;
}

/* Target of a symlink member `name` -> `target`, as an archive path, or
 * NULL when it leaves the archive (such a link then resolves to nothing). */
static char *link_target(const char *name, const char *target, int hard)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *joined = NULL;
	char *stack, *tok, *save = NULL, *out;
	size_t depth = 0, ol = 0;

	if (hard || target[0] == '/') {
		joined = ep_strdup(target, &e);
	} else {
		const char *slash = strrchr(name, '/');

		joined = ep_asprintf(&e, "%.*s/%s", slash ? (int)(slash - name) : 0, name, target);
	}
	if (!joined || strlen(joined) > MEMBER_NAME_MAX)
		return NULL;
	stack = calloc(strlen(joined) + 2, 1);
	if (!stack)
		return NULL;
	out = stack;
	/* segments are appended at out[ol]; ".." pops back to the last '/' */
	for (tok = strtok_r(joined, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			if (depth == 0) {
				free(stack);
				return NULL;
			}
			while (ol > 0 && out[ol - 1] != '/')
				ol--;
			if (ol > 0)
				ol--;
			out[ol] = '\0';
			depth--;
			continue;
		}
		if (ol)
			out[ol++] = '/';
		strcpy(out + ol, tok);
		ol += strlen(tok);
		depth++;
	}
	return out;
}

static int looks_like_json(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')
			continue;
		return p[i] == '{' || p[i] == '[';
	}
	return 0;
}

/* Streams one regular member through the hasher.  The first bytes decide
 * the decompressor (the manifest naming the layer's media type may come
 * later in the archive) and whether the member is kept in memory. */
static int scan_member_data(struct archive *a, struct member *m, uint64_t size, struct scan *s,
			    struct progress *pg, int64_t *last_pos, struct ep_error *err)
{
	unsigned char head[8];
	size_t head_len = 0;
	struct blob_hasher h;
	int started = 0, keep = 0;
	int64_t expect_off = 0;
	char what[64];
	int rc = 0;

	snprintf(what, sizeof(what), "archive member %.40s", m->name);
	for (;;) {
		const void *buf;
		size_t len;
		int64_t off;
		int ar = archive_read_data_block(a, &buf, &len, &off);
		const unsigned char *p = buf;

		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			rc = ep_error_set(err, EP_EMISMATCH, "archive member '%s' is damaged: %s",
					  m->name, archive_error_string(a));
			goto out;
		}
		if (off != expect_off) {
			rc = ep_error_set(err, EP_EINVAL, "archive member '%s': sparse members are not "
					  "supported", m->name);
			goto out;
		}
		expect_off += (int64_t)len;
		/* collect a few bytes before choosing the decompressor */
		while (!started && len > 0 && head_len < sizeof(head)) {
			head[head_len++] = *p++;
			len--;
		}
		if (!started && head_len == sizeof(head)) {
			if (blob_hasher_init(&h, ep_compression_detect(head, head_len),
					     size >= THREADED_BLOB && ep_worker_cpus() >= 2, &m->r,
					     err) < 0)
				return -1;
			started = 1;
			keep = size <= EP_MAX_CONFIG_BYTES && looks_like_json(head, head_len);
			blob_hasher_write(&h, head, head_len);
			if (keep) {
				if (head_len > size) {
					rc = ep_error_set(err, EP_EMISMATCH, "archive member '%s' is "
							  "longer than its header says", m->name);
					goto out;
				}
				if (s->kept + size > KEPT_BYTES_MAX) {
					rc = ep_error_set(err, EP_EINVAL, "archive holds more than %u "
							  "bytes of JSON documents", KEPT_BYTES_MAX);
					goto out;
				}
				m->data = ep_malloc(size + 1, err);
				if (!m->data) {
					rc = -1;
					goto out;
				}
				memcpy(m->data, head, head_len);
				m->len = head_len;
			}
		}
		if (started && len > 0) {
			blob_hasher_write(&h, p, len);
			if (keep) {
				if (m->len + len > size) {
					rc = ep_error_set(err, EP_EMISMATCH, "archive member '%s' is "
							  "longer than its header says", m->name);
					goto out;
				}
				memcpy(m->data + m->len, p, len);
				m->len += len;
			}
		}
		if (pg) {
			int64_t pos = archive_filter_bytes(a, -1);

			progress_add(pg, what, (uint64_t)(pos - *last_pos));
			*last_pos = pos;
		}
	}
	if (!started) {
		/* shorter than the sniffing window: never compressed */
		if (blob_hasher_init(&h, EP_COMPRESS_NONE, 0, &m->r, err) < 0)
			return -1;
		started = 1;
		blob_hasher_write(&h, head, head_len);
		if (size <= EP_MAX_CONFIG_BYTES && looks_like_json(head, head_len)) {
			m->data = ep_malloc(head_len + 1, err);
			if (!m->data) {
				rc = -1;
				goto out;
			}
			memcpy(m->data, head, head_len);
			m->len = head_len;
		}
	}
	blob_hasher_finish(&h);
	if (m->data) {
		m->data[m->len] = '\0';
		s->kept += m->len;
	}
out:
	if (started)
		blob_hasher_release(&h);
	return rc;
}

static int scan_archive(const char *path, struct scan *s, struct progress *pg,
			struct ep_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	cleanup_close int fd = -1;
	int64_t last_pos = 0;
	int rc = -1, first = 1;

	memset(s, 0, sizeof(*s));
	if (!a)
		return ep_error_oom(err);
	archive_read_support_format_tar(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ep_error_errno(err, EP_EENV, errno, "cannot open '%s'", path);
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	/* libarchive reads the first block at open to recognize the format */
	if (archive_read_open_fd(a, fd, CHUNK) != ARCHIVE_OK) {
		ep_error_set(err, EP_EINVAL, "'%s': not a tar archive: %s", path,
			     archive_error_string(a));
		goto out;
	}
	for (;;) {
		int ar = archive_read_next_header(a, &e);
		struct member *m;
		char *name;
		const char *hl, *sl;

		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			ep_error_set(err, first ? EP_EINVAL : EP_EMISMATCH, "'%s': %s: %s", path,
				     first ? "not a tar archive" : "damaged archive",
				     archive_error_string(a));
			goto out;
		}
		first = 0;
		name = clean_member_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "",
					 err);
		if (!name)
			goto wrap;
		if (!*name || archive_entry_filetype(e) == AE_IFDIR) {
			free(name);
			continue;
		}
		if (scan_find(s, name)) {
			ep_error_set(err, EP_EINVAL, "archive member '%s' appears twice", name);
			free(name);
			goto wrap;
		}
		if (s->n == MEMBERS_MAX) {
			ep_error_set(err, EP_EINVAL, "archive has more than %d members", MEMBERS_MAX);
			free(name);
			goto wrap;
		}
		if (s->n == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 64;
			struct member *nm = ep_realloc(s->m, nc * sizeof(*nm), err);

			if (!nm) {
				free(name);
				goto out;
			}
			s->m = nm;
			s->cap = nc;
		}
		m = &s->m[s->n++];
		memset(m, 0, sizeof(*m));
		m->name = name;
		hl = archive_entry_hardlink(e);
		sl = archive_entry_symlink(e);
		if (hl) {
			cleanup_free char *t = clean_member_name(hl, err);

			if (!t)
				goto wrap;
			m->link = link_target(name, t, 1);
		} else if (archive_entry_filetype(e) == AE_IFLNK && sl) {
			m->link = link_target(name, sl, 0);
		} else if (archive_entry_filetype(e) == AE_IFREG) {
			int64_t size = archive_entry_size(e);

			m->is_reg = 1;
			if (scan_member_data(a, m, size < 0 ? 0 : (uint64_t)size, s, pg, &last_pos,
					     err) < 0)
				goto wrap;
		}
	}
	rc = 0;
	goto out;
wrap:
	ep_error_wrap(err, "'%s'", path);
out:
	archive_read_free(a);
	if (rc < 0)
		scan_release(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Blob sources                                                        */

struct blob_src {
	const char *layout; /* an OCI layout directory, or */
	struct scan *scan;  /* a scanned archive */
};

/* Loads a small blob whatever it hashes to: *actual gets its digest.  A
 * missing blob sets *missing and an EP_EMISMATCH error. */
static char *src_load(struct blob_src *src, const char *digest, size_t max, size_t *len,
		      ep_digest actual, int *missing, struct ep_error *err)
{
	*missing = 0;
	if (ep_digest_check(digest, err) < 0)
		return NULL;
	if (src->layout) {
		cleanup_free char *path = blob_path(src->layout, digest, err);
		cleanup_close int fd = -1;
		struct stat st;
		char *buf;
		size_t got = 0;

		if (!path)
			return NULL;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno == ENOENT) {
				*missing = 1;
				ep_error_set(err, EP_EMISMATCH, "blob %s is missing", digest);
			} else {
				ep_error_errno(err, EP_EENV, errno, "open '%s'", path);
			}
			return NULL;
		}
		if (fstat(fd, &st) < 0) {
			ep_error_errno(err, EP_EENV, errno, "stat '%s'", path);
			return NULL;
		}
		if (!S_ISREG(st.st_mode)) {
			ep_error_set(err, EP_EINVAL, "blob %s is not a regular file", digest);
			return NULL;
		}
		if ((uint64_t)st.st_size > max) {
			ep_error_set(err, EP_EINVAL, "blob %s is larger than the limit of %zu bytes",
				     digest, max);
			return NULL;
		}
		buf = ep_malloc((size_t)st.st_size + 1, err);
		if (!buf)
			return NULL;
		while (got < (size_t)st.st_size) {
			ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (n < 0)
					ep_error_errno(err, EP_EENV, errno, "read '%s'", path);
				else
					ep_error_set(err, EP_EENV, "read '%s': file shrank", path);
				free(buf);
				return NULL;
			}
			got += (size_t)n;
		}
		buf[got] = '\0';
		if (ep_sha256_buf(buf, got, actual, err) < 0) {
			free(buf);
			return NULL;
		}
		*len = got;
		return buf;
	} else {
		char name[96];
		struct member *m;
		char *buf;

		snprintf(name, sizeof(name), "blobs/sha256/%s", ep_digest_hex(digest));
		m = scan_resolve(src->scan, name);
		if (!m) {
			*missing = 1;
			ep_error_set(err, EP_EMISMATCH, "blob %s is missing", digest);
			return NULL;
		}
		if (m->r.raw_size > max) {
			ep_error_set(err, EP_EINVAL, "blob %s is larger than the limit of %zu bytes",
				     digest, max);
			return NULL;
		}
		if (!m->data) {
			ep_error_set(err, EP_EINVAL, "blob %s is not a JSON document", digest);
			return NULL;
		}
		buf = ep_malloc(m->len + 1, err);
		if (!buf)
			return NULL;
		memcpy(buf, m->data, m->len + 1);
		memcpy(actual, m->r.raw, sizeof(ep_digest));
		*len = m->len;
		return buf;
	}
}

char *ep_layout_read_blob(const char *layout, const char *digest, size_t max, size_t *len,
			  struct ep_error *err)
{
	struct blob_src src = {layout, NULL};
	ep_digest actual;
	size_t l = 0;
	int missing;
	char *buf = src_load(&src, digest, max, &l, actual, &missing, err);

	if (!buf)
		return NULL;
	if (strcmp(actual, digest)) {
		free(buf);
		ep_error_set(err, EP_EMISMATCH, "blob %s: content hashes to %s", digest, actual);
		return NULL;
	}
	if (len)
		*len = l;
	return buf;
}

/* Picks the image manifest to verify from an index document: want_digest
 * (a digest or a tag from the ref.name / image.name annotations), else the
 * only entry.  An entry that is itself an index (multi-platform) is
 * followed to its linux/amd64 manifest. */
static int pick_manifest(struct blob_src *src, const char *index_buf, size_t index_len,
			 const char *want, struct desc *out, struct ep_error *err)
{
	cleanup_json json_t *idx = ep_json_loadb(index_buf, index_len, EP_MAX_MANIFEST_BYTES,
						 "'index.json'", err);
	json_t *ms, *hit = NULL;
	size_t nm;

	if (!idx)
		return -1;
	ms = json_object_get(idx, "manifests");
	if (!json_is_array(ms))
		return ep_error_set(err, EP_EINVAL, "'index.json': missing 'manifests' array");
	nm = json_array_size(ms);
	if (!want) {
		if (nm != 1)
			return ep_error_set(err, EP_EINVAL,
					    "'index.json' lists %zu images; name one by digest", nm);
		hit = json_array_get(ms, 0);
	} else {
		for (size_t i = 0; i < nm && !hit; i++) {
			json_t *e = json_array_get(ms, i), *ann = json_object_get(e, "annotations");
			const char *d = json_string_value(json_object_get(e, "digest"));
			const char *r = json_string_value(json_object_get(ann, ann_ref_name));
			const char *n = json_string_value(json_object_get(ann, ann_image_name));

			if ((d && !strcmp(d, want)) || (r && !strcmp(r, want)) ||
			    (n && !strcmp(n, want)))
				hit = e;
		}
		if (!hit) {
			/* a digest that index.json does not list may still be a manifest
			 * blob (one platform of a multi-platform image) */
			if (ep_digest_check(want, NULL) == 0) {
				memset(out, 0, sizeof(*out));
				snprintf(out->digest, sizeof(out->digest), "%s", want);
				snprintf(out->media_type, sizeof(out->media_type), "%s",
					 EP_MT_OCI_MANIFEST);
				out->size = UINT64_MAX;
				return 0;
			}
			return ep_error_set(err, EP_EINVAL, "'index.json' has no image '%s'", want);
		}
	}
	if (parse_desc(hit, "'index.json': manifests entry", out, err) < 0)
		return -1;
	if (is_index_type(out->media_type)) {
		ep_digest actual;
		size_t len;
		int missing;
		cleanup_free char *sub = src_load(src, out->digest, EP_MAX_MANIFEST_BYTES, &len, actual,
						  &missing, err);
		cleanup_json json_t *sj = NULL;
		json_t *sms;
		char what[100];

		if (!sub)
			return ep_error_wrap(err, "image index");
		if (strcmp(actual, out->digest))
			return ep_error_set(err, EP_EMISMATCH, "index %s: content hashes to %s",
					    out->digest, actual);
		snprintf(what, sizeof(what), "index %s", out->digest);
		sj = ep_json_loadb(sub, len, EP_MAX_MANIFEST_BYTES, what, err);
		if (!sj)
			return -1;
		sms = json_object_get(sj, "manifests");
		for (size_t i = 0; i < json_array_size(sms); i++) {
			json_t *e = json_array_get(sms, i), *pl = json_object_get(e, "platform");
			const char *os = json_string_value(json_object_get(pl, "os"));
			const char *arch = json_string_value(json_object_get(pl, "architecture"));

			if (os && arch && !strcmp(os, "linux") && !strcmp(arch, "amd64"))
				return parse_desc(e, what, out, err);
		}
		return ep_error_set(err, EP_EINVAL, "%s: no linux/amd64 image", what);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Verification                                                        */

void ep_verify_report_release(struct ep_verify_report *r)
{
	if (!r)
		return;
	free(r->items);
	r->items = NULL;
	r->n_items = 0;
}

static int report_alloc(struct ep_verify_report *rep, size_t n, struct ep_error *err)
{
	rep->items = ep_calloc(n, sizeof(*rep->items), err);
	if (!rep->items)
		return -1;
	rep->n_items = n;
	return 0;
}

static void item_fail(struct ep_verify_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void item_fail(struct ep_verify_item *it, const char *fmt, ...)
{
	va_list ap;

	if (!it->ok && it->problem[0])
		return; /* keep the first problem of an item */
	it->ok = 0;
	va_start(ap, fmt);
	vsnprintf(it->problem, sizeof(it->problem), fmt, ap);
	va_end(ap);
}

/* Sets err to the first failed item of the report (0 if all are ok). */
static int report_verdict(const struct ep_verify_report *rep, struct ep_error *err)
{
	size_t bad = 0, first = rep->n_items;

	for (size_t i = 0; i < rep->n_items; i++) {
		if (!rep->items[i].ok) {
			if (first == rep->n_items)
				first = i;
			bad++;
		}
	}
	if (!bad)
		return 0;
	if (bad == 1)
		return ep_error_set(err, EP_EMISMATCH, "%s", rep->items[first].problem);
	return ep_error_set(err, EP_EMISMATCH, "%s (%zu bad items in all)", rep->items[first].problem,
			    bad);
}

/* Checks a small document blob (manifest or config) into an item. */
static char *check_doc(struct blob_src *src, const char *kind, const struct desc *d, size_t max,
		       struct ep_verify_item *it, size_t *len, struct ep_error *err)
{
	int missing;
	char *buf;

	snprintf(it->kind, sizeof(it->kind), "%s", kind);
	memcpy(it->digest, d->digest, sizeof(it->digest));
	it->ok = 1;
	buf = src_load(src, d->digest, max, len, it->actual, &missing, err);
	if (!buf) {
		if (missing) {
			item_fail(it, "%s blob %s is missing", kind, d->digest);
			ep_error_clear(err);
		}
		return NULL;
	}
	it->size = *len;
	if (strcmp(it->actual, d->digest))
		item_fail(it, "%s %s: content hashes to %s", kind, d->digest, it->actual);
	else if (d->size != UINT64_MAX && d->size != *len)
		item_fail(it, "%s %s: size is %zu bytes, descriptor says %llu", kind, d->digest, *len,
			  (unsigned long long)d->size);
	return buf;
}

/* Compares a hashed layer with its descriptor and diff_id.  A blob whose
 * name claims no digest (docker-archive layers) passes d->digest "". */
static void check_layer(struct ep_verify_item *it, const struct desc *d, const char *want_diff,
			const struct blob_result *r, int sniffed)
{
	snprintf(it->kind, sizeof(it->kind), "layer");
	memcpy(it->digest, d->digest[0] ? d->digest : r->raw, sizeof(it->digest));
	if (want_diff)
		snprintf(it->diff_id, sizeof(it->diff_id), "%s", want_diff);
	it->ok = 1;
	if (!r->present) {
		item_fail(it, "layer blob %s is missing", it->digest);
		return;
	}
	memcpy(it->actual, r->raw, sizeof(it->actual));
	memcpy(it->diff_actual, r->diff, sizeof(it->diff_actual));
	it->size = r->raw_size;
	if (strcmp(r->raw, it->digest)) {
		item_fail(it, "layer %s: content hashes to %s", it->digest, r->raw);
		return;
	}
	if (d->size != UINT64_MAX && d->size != r->raw_size) {
		item_fail(it, "layer %s: size is %llu bytes, descriptor says %llu", it->digest,
			  (unsigned long long)r->raw_size, (unsigned long long)d->size);
		return;
	}
	if (sniffed && d->media_type[0]) {
		int want = ep_compression_from_media_type(d->media_type);

		if (want != r->kind) {
			item_fail(it, "layer %s: media type '%s' says %s, the content is %s",
				  it->digest, d->media_type,
				  ep_compression_name((enum ep_compression)want),
				  ep_compression_name((enum ep_compression)r->kind));
			return;
		}
	}
	if (!r->diff[0]) {
		item_fail(it, "layer %s: %s", it->digest, r->problem);
		return;
	}
	if (!want_diff) {
		item_fail(it, "layer %s: config has no diff_id for it", it->digest);
		return;
	}
	if (strcmp(r->diff, want_diff))
		item_fail(it, "layer %s: diff_id mismatch: config says %s, uncompressed content "
			  "hashes to %s", it->digest, want_diff, r->diff);
}

struct layer_job {
	const char *layout;
	const struct desc *d;
	struct blob_result r;
	struct ep_error err;
	int rc;
};

struct layer_hash {
	struct layer_job *jobs;
	struct progress *pg;
};

static int hash_one_layer(void *ctx, size_t i)
{
	struct layer_hash *h = ctx;
	struct layer_job *j = &h->jobs[i];

	j->rc = hash_layout_blob(j->layout, j->d->digest,
				 ep_compression_from_media_type(j->d->media_type), &j->r, h->pg,
				 &j->err);
	return j->rc;
}

/* Hashing and inflating are CPU-bound and independent per layer, so layers
 * are spread over a few threads; ENVPIN_VERIFY_THREADS overrides the count
 * (1 gives the sequential behaviour). */
static int verify_threads(size_t n_layers)
{
	const char *e = getenv("ENVPIN_VERIFY_THREADS");
	int t = e && atoi(e) > 0 ? atoi(e) : ep_worker_cpus();

	if (t > 4)
		t = 4;
	if ((size_t)t > n_layers)
		t = (int)n_layers;
	return t < 1 ? 1 : t;
}

static int hash_layout_layers(const char *layout, const struct image_manifest *m,
			      struct layer_job *jobs, struct progress *pg, struct ep_error *err)
{
	struct layer_hash h = {jobs, pg};

	for (size_t i = 0; i < m->n_layers; i++) {
		jobs[i].layout = layout;
		jobs[i].d = &m->layers[i];
		ep_error_clear(&jobs[i].err);
	}
	/* every layer is hashed (no stop on error): the report names the first
	 * bad layer in order, whatever the threads did */
	ep_parallel_for(m->n_layers, verify_threads(m->n_layers), 0, hash_one_layer, &h);
	for (size_t i = 0; i < m->n_layers; i++) {
		if (jobs[i].rc < 0) {
			*err = jobs[i].err;
			return ep_error_wrap(err, "layer %s", m->layers[i].digest);
		}
	}
	return 0;
}

/* Verifies the image whose manifest descriptor is md, from a layout or a
 * scanned archive. */
static int verify_image(struct blob_src *src, const struct desc *md, struct ep_verify_report *rep,
			struct progress *pg, struct ep_error *err)
{
	struct ep_verify_item mi = {0}, ci = {0};
	struct image_manifest m = {0};
	cleanup_free char *mbuf = NULL;
	cleanup_free char *cbuf = NULL;
	cleanup_free ep_digest *diff_ids = NULL;
	cleanup_free struct layer_job *jobs = NULL;
	cleanup_json json_t *cfg = NULL;
	size_t mlen = 0, clen = 0, n_diff = 0;
	int rc = -1;

	memset(rep, 0, sizeof(*rep));
	memcpy(rep->manifest_digest, md->digest, sizeof(rep->manifest_digest));
	mbuf = check_doc(src, "manifest", md, EP_MAX_MANIFEST_BYTES, &mi, &mlen, err);
	if (!mbuf && mi.ok)
		return -1;
	if (!mbuf || parse_manifest(mbuf, mlen, md->digest, &m, err) < 0) {
		/* an unreadable manifest whose bytes are also wrong is a mismatch */
		if (mi.ok)
			return -1;
		if (report_alloc(rep, 1, err) < 0)
			return -1;
		rep->items[0] = mi;
		rep->bytes_hashed = mlen;
		return report_verdict(rep, err);
	}
	if (report_alloc(rep, 2 + m.n_layers, err) < 0)
		goto out;
	rep->items[0] = mi;
	rep->bytes_hashed = mlen;
	memcpy(rep->config_digest, m.config.digest, sizeof(rep->config_digest));
	cbuf = check_doc(src, "config", &m.config, EP_MAX_CONFIG_BYTES, &ci, &clen, err);
	if (!cbuf && ci.ok)
		goto out;
	rep->bytes_hashed += clen;
	if (cbuf) {
		cfg = parse_config(cbuf, clen, m.config.digest, &diff_ids, &n_diff, err);
		if (!cfg) {
			if (ci.ok)
				goto out;
			ep_error_clear(err);
		} else if (n_diff != m.n_layers) {
			item_fail(&ci, "config %s: lists %zu diff_ids for %zu layers", m.config.digest,
				  n_diff, m.n_layers);
		}
	}
	rep->items[1] = ci;

	if (src->layout) {
		jobs = ep_calloc(m.n_layers ? m.n_layers : 1, sizeof(*jobs), err);
		if (!jobs)
			goto out;
		if (pg)
			for (size_t i = 0; i < m.n_layers; i++)
				pg->total += m.layers[i].size;
		if (hash_layout_layers(src->layout, &m, jobs, pg, err) < 0)
			goto out;
	}
	for (size_t i = 0; i < m.n_layers; i++) {
		const char *want = i < n_diff ? diff_ids[i] : NULL;
		struct blob_result missing = {0};
		const struct blob_result *r = &missing;

		if (src->layout) {
			r = &jobs[i].r;
		} else {
			char name[96];
			struct member *mem;

			snprintf(name, sizeof(name), "blobs/sha256/%s",
				 ep_digest_hex(m.layers[i].digest));
			mem = scan_resolve(src->scan, name);
			if (mem)
				r = &mem->r;
		}
		check_layer(&rep->items[2 + i], &m.layers[i], want, r, src->scan != NULL);
		rep->bytes_hashed += r->raw_size + (r->kind != EP_COMPRESS_NONE ? r->diff_size : 0);
	}
	rc = report_verdict(rep, err);
out:
	image_manifest_release(&m);
	if (rc < 0 && err->code != EP_EMISMATCH)
		ep_verify_report_release(rep);
	return rc;
}

int ep_verify_layout(const char *layout, const char *manifest_digest,
		     struct ep_verify_report *rep, ep_progress_fn progress, void *pctx,
		     struct ep_error *err)
{
	struct blob_src src = {layout, NULL};
	struct progress pg = {progress, pctx, PTHREAD_MUTEX_INITIALIZER, 0, 0};
	struct desc md = {0};

	memset(rep, 0, sizeof(*rep));
	if (ep_digest_check(manifest_digest, err) < 0)
		return -1;
	snprintf(md.digest, sizeof(md.digest), "%s", manifest_digest);
	md.size = UINT64_MAX;
	/* the descriptor in index.json, when there is one, also pins the size */
	{
		cleanup_free char *ipath = ep_path_join(layout, "index.json", err);
		cleanup_free char *ibuf = NULL;
		size_t ilen;
		struct desc found;

		if (!ipath)
			return -1;
		ibuf = ep_read_file(ipath, EP_MAX_MANIFEST_BYTES, &ilen, NULL);
		if (ibuf && pick_manifest(&src, ibuf, ilen, manifest_digest, &found, NULL) == 0 &&
		    !strcmp(found.digest, manifest_digest))
			md = found;
	}
	if (verify_image(&src, &md, rep, &pg, err) < 0)
		return ep_error_wrap(err, "verify %s", manifest_digest);
	return 0;
}

/* docker-archive: manifest.json = [{"Config": NAME, "Layers": [NAME...]}].
 * Docker keeps no registry manifest; the config digest is the image ID. */
static int verify_docker_archive(struct scan *s, const char *want, struct ep_verify_report *rep,
				 struct ep_error *err)
{
	struct member *mj = scan_resolve(s, "manifest.json"), *cm;
	cleanup_json json_t *j = NULL;
	cleanup_json json_t *cfg = NULL;
	cleanup_free ep_digest *diff_ids = NULL;
	json_t *entry = NULL, *layers;
	const char *cname;
	size_t n_diff = 0, n_layers;
	struct ep_verify_item *ci;

	if (!mj || !mj->data)
		return ep_error_set(err, EP_EINVAL, "neither 'index.json' nor 'manifest.json' found");
	j = ep_json_loadb(mj->data, mj->len, EP_MAX_MANIFEST_BYTES, "'manifest.json'", err);
	if (!j)
		return -1;
	if (!json_is_array(j) || json_array_size(j) == 0)
		return ep_error_set(err, EP_EINVAL, "'manifest.json': not a non-empty array");
	if (!want) {
		if (json_array_size(j) != 1)
			return ep_error_set(err, EP_EINVAL, "'manifest.json' lists %zu images; name one "
					    "by config digest or tag", json_array_size(j));
		entry = json_array_get(j, 0);
	}
	for (size_t i = 0; want && i < json_array_size(j) && !entry; i++) {
		json_t *e = json_array_get(j, i), *tags = json_object_get(e, "RepoTags");
		const char *c = json_string_value(json_object_get(e, "Config"));
		struct member *m = c ? scan_resolve(s, c) : NULL;

		if (m && !strcmp(m->r.raw, want))
			entry = e;
		for (size_t k = 0; k < json_array_size(tags) && !entry; k++)
			if (json_is_string(json_array_get(tags, k)) &&
			    !strcmp(json_string_value(json_array_get(tags, k)), want))
				entry = e;
	}
	if (!entry)
		return ep_error_set(err, EP_EINVAL, "'manifest.json' has no image '%s'", want);
	cname = json_string_value(json_object_get(entry, "Config"));
	layers = json_object_get(entry, "Layers");
	if (!cname || !json_is_array(layers))
		return ep_error_set(err, EP_EINVAL, "'manifest.json': entry needs 'Config' and 'Layers'");
	n_layers = json_array_size(layers);
	if (report_alloc(rep, 1 + n_layers, err) < 0)
		return -1;
	ci = &rep->items[0];
	snprintf(ci->kind, sizeof(ci->kind), "config");
	ci->ok = 1;
	cm = scan_resolve(s, cname);
	{
		/* "<hex>.json" (docker save <25) and "blobs/sha256/<hex>" (25+) name
		 * the config by its digest; anything else claims nothing. */
		const char *base = strrchr(cname, '/') ? strrchr(cname, '/') + 1 : cname;
		char hex[EP_HEX_LEN + 1] = "";

		if (strlen(base) >= EP_HEX_LEN)
			snprintf(hex, sizeof(hex), "%.*s", EP_HEX_LEN, base);
		if (ep_is_hex64(hex) && (!strcmp(base + EP_HEX_LEN, ".json") || !base[EP_HEX_LEN]))
			snprintf(ci->digest, sizeof(ci->digest), "sha256:%s", hex);
	}
	if (!cm) {
		item_fail(ci, "config '%s' is missing", cname);
	} else {
		memcpy(ci->actual, cm->r.raw, sizeof(ci->actual));
		ci->size = cm->r.raw_size;
		if (!ci->digest[0])
			memcpy(ci->digest, ci->actual, sizeof(ci->digest));
		rep->bytes_hashed += ci->size;
		if (strcmp(ci->digest, ci->actual)) {
			item_fail(ci, "config %s: content hashes to %s", ci->digest, ci->actual);
		} else if (!cm->data) {
			return ep_error_set(err, EP_EINVAL, "config '%s' is not a JSON document", cname);
		} else {
			cfg = parse_config(cm->data, cm->len, ci->digest, &diff_ids, &n_diff, err);
			if (!cfg)
				return -1;
			if (n_diff != n_layers)
				item_fail(ci, "config %s: lists %zu diff_ids for %zu layers", ci->digest,
					  n_diff, n_layers);
		}
	}
	snprintf(rep->config_digest, sizeof(rep->config_digest), "%s", ci->digest);
	for (size_t i = 0; i < n_layers; i++) {
		const char *ln = json_string_value(json_array_get(layers, i));
		struct ep_verify_item *it = &rep->items[1 + i];
		struct desc d = {0};
		struct blob_result none = {0};
		struct member *lm;
		const char *want_diff = i < n_diff ? diff_ids[i] : NULL;

		if (!ln)
			return ep_error_set(err, EP_EINVAL, "'manifest.json': Layers[%zu] is not a string",
					    i);
		d.size = UINT64_MAX;
		if (!strncmp(ln, "blobs/sha256/", 13) && ep_is_hex64(ln + 13))
			snprintf(d.digest, sizeof(d.digest), "sha256:%s", ln + 13);
		lm = scan_resolve(s, ln);
		if (!lm) {
			snprintf(it->kind, sizeof(it->kind), "layer");
			if (want_diff)
				snprintf(it->diff_id, sizeof(it->diff_id), "%s", want_diff);
			item_fail(it, "layer '%s' is missing", ln);
			continue;
		}
		check_layer(it, &d, want_diff, lm ? &lm->r : &none, 0);
		rep->bytes_hashed += lm->r.raw_size +
				     (lm->r.kind != EP_COMPRESS_NONE ? lm->r.diff_size : 0);
	}
	return report_verdict(rep, err);
}

int ep_verify_path(const char *path, const char *want_digest, struct ep_verify_report *rep,
		   ep_progress_fn progress, void *pctx, struct ep_error *err)
{
	struct progress pg = {progress, pctx, PTHREAD_MUTEX_INITIALIZER, 0, 0};
	struct stat st;

	memset(rep, 0, sizeof(*rep));
	if (stat(path, &st) < 0)
		return ep_error_errno(err, errno == ENOENT ? EP_EINVAL : EP_EENV, errno,
				      "cannot open '%s'", path);
	if (S_ISDIR(st.st_mode)) {
		struct blob_src src = {path, NULL};
		cleanup_free char *ipath = ep_path_join(path, "index.json", err);
		cleanup_free char *ibuf = NULL;
		struct desc md;
		size_t ilen;

		if (!ipath)
			return -1;
		ibuf = ep_read_file(ipath, EP_MAX_MANIFEST_BYTES, &ilen, err);
		if (!ibuf)
			return ep_error_wrap(err, "'%s' is not an OCI image layout", path);
		if (pick_manifest(&src, ibuf, ilen, want_digest, &md, err) < 0 ||
		    verify_image(&src, &md, rep, &pg, err) < 0)
			return ep_error_wrap(err, "verify '%s'", path);
		return 0;
	} else {
		struct scan s;
		struct blob_src src = {NULL, &s};
		struct member *idx;
		int rc;

		pg.total = (uint64_t)st.st_size;
		if (scan_archive(path, &s, &pg, err) < 0)
			return ep_error_wrap(err, "verify");
		idx = scan_resolve(&s, "index.json");
		if (idx && idx->data) {
			struct desc md;

			rc = pick_manifest(&src, idx->data, idx->len, want_digest, &md, err);
			if (rc == 0)
				rc = verify_image(&src, &md, rep, NULL, err);
		} else {
			rc = verify_docker_archive(&s, want_digest, rep, err);
		}
		scan_release(&s);
		if (rc < 0)
			return ep_error_wrap(err, "verify '%s'", path);
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* Export                                                              */

struct tarw {
	int fd;
	struct ep_fd_sink sink;
};

static void octal(char *field, size_t width, uint64_t v)
{
	/* width includes the NUL terminator */
	snprintf(field, width, "%0*llo", (int)width - 1, (unsigned long long)v);
}

static int tar_block(struct tarw *w, const void *b, size_t len, struct ep_error *err)
{
	return ep_sink_write(&w->sink.base, b, len, err);
}

static int tar_pad(struct tarw *w, uint64_t size, struct ep_error *err)
{
	static const char zero[512];
	size_t pad = (size_t)((512 - size % 512) % 512);

	return pad ? tar_block(w, zero, pad, err) : 0;
}

static int tar_raw_header(struct tarw *w, const char *name, char type, uint32_t mode,
			  uint64_t size, struct ep_error *err)
{
	unsigned char h[512];
	unsigned sum = 0;

	memset(h, 0, sizeof(h));
	if (strlen(name) > 100)
		return ep_error_set(err, EP_EINVAL, "tar member name '%s' too long", name);
	memcpy(h, name, strlen(name));
	octal((char *)h + 100, 8, mode);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size);
	octal((char *)h + 136, 12, 0);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	octal((char *)h + 329, 8, 0);
	octal((char *)h + 337, 8, 0);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return tar_block(w, h, sizeof(h), err);
}

/* ustar sizes stop at 8 GiB; larger members get a PAX size record. */
static int tar_header(struct tarw *w, const char *name, char type, uint32_t mode, uint64_t size,
		      struct ep_error *err)
{
	if (size > 077777777777ull) {
		char rec[64];
		int n = 0, len;

		/* the record's length counts its own digits */
		for (len = 0; len != n;) {
			n = len ? len : 16;
			len = snprintf(rec, sizeof(rec), "%d size=%llu\n", n, (unsigned long long)size);
		}
		if (tar_raw_header(w, "PaxHeader", 'x', 0644, (uint64_t)len, err) < 0 ||
		    tar_block(w, rec, (size_t)len, err) < 0 || tar_pad(w, (uint64_t)len, err) < 0)
			return -1;
		size = 0;
	}
	return tar_raw_header(w, name, type, mode, size, err);
}

static int tar_file_buf(struct tarw *w, const char *name, const void *buf, size_t len,
			struct ep_error *err)
{
	if (tar_header(w, name, '0', 0644, len, err) < 0 || tar_block(w, buf, len, err) < 0)
		return -1;
	return tar_pad(w, len, err);
}

/* Copies layout blob d into the archive, hashing it on the way: an export
 * must not carry a damaged blob under a good name. */
static int tar_blob(struct tarw *w, const char *layout, const struct desc *d,
		    struct ep_error *err)
{
	cleanup_free char *path = blob_path(layout, d->digest, err);
	cleanup_free char *buf = NULL;
	cleanup_close int fd = -1;
	char name[96];
	struct ep_sha256 h;
	uint64_t left = d->size;
	ep_digest actual;
	struct stat st;

	if (!path)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return ep_error_set(err, EP_EMISMATCH, "blob %s is missing", d->digest);
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", path);
	}
	if (fstat(fd, &st) < 0)
		return ep_error_errno(err, EP_EENV, errno, "stat '%s'", path);
	if ((uint64_t)st.st_size != d->size)
		return ep_error_set(err, EP_EMISMATCH, "blob %s: size is %lld bytes, descriptor says "
				    "%llu", d->digest, (long long)st.st_size,
				    (unsigned long long)d->size);
	snprintf(name, sizeof(name), "blobs/sha256/%s", ep_digest_hex(d->digest));
	buf = ep_malloc(CHUNK, err);
	if (!buf || tar_header(w, name, '0', 0644, d->size, err) < 0 ||
	    ep_sha256_init(&h, err) < 0)
		return -1;
	while (left > 0) {
		ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ep_sha256_release(&h);
			if (n == 0)
				return ep_error_set(err, EP_EENV, "read '%s': file shrank", path);
			return ep_error_errno(err, EP_EENV, errno, "read '%s'", path);
		}
		ep_sha256_update(&h, buf, (size_t)n);
		if (tar_block(w, buf, (size_t)n, err) < 0) {
			ep_sha256_release(&h);
			return -1;
		}
		left -= (uint64_t)n;
	}
	ep_sha256_final(&h, actual);
	if (strcmp(actual, d->digest))
		return ep_error_set(err, EP_EMISMATCH, "blob %s: content hashes to %s", d->digest,
				    actual);
	return tar_pad(w, d->size, err);
}

static int cmp_desc(const void *a, const void *b)
{
	return strcmp(((const struct desc *)a)->digest, ((const struct desc *)b)->digest);
}

/* Splits "name[:tag]" (a ':' after the last '/' starts the tag); the tag
 * defaults to "latest".  Names are checked against Docker's rules closely
 * enough that docker load will not refuse what we write. */
static int split_tag(const char *ref, char **name, char **tag, struct ep_error *err)
{
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(ref, ':');
	size_t nl;

	if (!*ref || strlen(ref) > 255)
		return ep_error_set(err, EP_EINVAL, "invalid tag '%s'", ref);
	for (const char *p = ref; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._-/:", *p) ||
		      (colon && p > colon && *p >= 'A' && *p <= 'Z')))
			return ep_error_set(err, EP_EINVAL, "invalid tag '%s'", ref);
	if (colon && (!slash || colon > slash)) {
		nl = (size_t)(colon - ref);
		if (!colon[1])
			return ep_error_set(err, EP_EINVAL, "invalid tag '%s'", ref);
	} else {
		colon = NULL;
		nl = strlen(ref);
	}
	if (!nl)
		return ep_error_set(err, EP_EINVAL, "invalid tag '%s'", ref);
	*name = strndup(ref, nl);
	*tag = strdup(colon ? colon + 1 : "latest");
	if (!*name || !*tag) {
		free(*name);
		free(*tag);
		*name = *tag = NULL;
		return ep_error_oom(err);
	}
	return 0;
}

/* "x" -> "docker.io/library/x", "a/b" -> "docker.io/a/b", registry names
 * (with '.' or ':' or "localhost" in the first part) unchanged: the form
 * containerd stores in io.containerd.image.name. */
static char *full_name(const char *name, const char *tag, struct ep_error *err)
{
	const char *slash = strchr(name, '/');

	if (!slash)
		return ep_asprintf(err, "docker.io/library/%s:%s", name, tag);
	if (memchr(name, '.', (size_t)(slash - name)) || memchr(name, ':', (size_t)(slash - name)) ||
	    !strncmp(name, "localhost/", 10))
		return ep_asprintf(err, "%s:%s", name, tag);
	return ep_asprintf(err, "docker.io/%s:%s", name, tag);
}

static int export_docs(struct tarw *w, const struct image_manifest *m, const char *mdigest,
		       size_t mlen, enum ep_export_format fmt, const char *tag, struct ep_error *err)
{
	cleanup_free char *name = NULL;
	cleanup_free char *tagpart = NULL;
	cleanup_free char *full = NULL;
	cleanup_free char *ref = NULL;
	cleanup_json json_t *index = NULL;
	cleanup_json json_t *dm = NULL;
	cleanup_json json_t *repos = NULL;
	cleanup_free char *itext = NULL;
	cleanup_free char *mtext = NULL;
	cleanup_free char *rtext = NULL;
	json_t *ann = NULL, *layers, *tags;
	size_t len;
	static const char layout_doc[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

	if (tag) {
		if (split_tag(tag, &name, &tagpart, err) < 0)
			return -1;
		full = full_name(name, tagpart, err);
		ref = ep_asprintf(err, "%s:%s", name, tagpart);
		if (!full || !ref)
			return -1;
		ann = json_pack("{s:s,s:s}", ann_image_name, full, ann_ref_name, tagpart);
	}
	index = json_pack("{s:i,s:s,s:[{s:s,s:s,s:I,s:o*}]}", "schemaVersion", 2, "mediaType",
			  EP_MT_OCI_INDEX, "manifests", "mediaType", m->media_type, "digest", mdigest,
			  "size", (json_int_t)mlen, "annotations", ann);
	if (!index)
		return ep_error_oom(err);
	itext = ep_json_canonical(index, &len, err);
	if (!itext || tar_file_buf(w, "index.json", itext, len, err) < 0)
		return -1;
	if (fmt == EP_EXPORT_DOCKER) {
		char path[96];

		layers = json_array();
		tags = json_array();
		snprintf(path, sizeof(path), "blobs/sha256/%s", ep_digest_hex(m->config.digest));
		dm = json_pack("[{s:s,s:o,s:o}]", "Config", path, "RepoTags", tags, "Layers", layers);
		if (!dm)
			return ep_error_oom(err);
		for (size_t i = 0; i < m->n_layers; i++) {
			snprintf(path, sizeof(path), "blobs/sha256/%s",
				 ep_digest_hex(m->layers[i].digest));
			if (json_array_append_new(layers, json_string(path)) < 0)
				return ep_error_oom(err);
		}
		if (ref && json_array_append_new(tags, json_string(ref)) < 0)
			return ep_error_oom(err);
		mtext = ep_json_canonical(dm, &len, err);
		if (!mtext || tar_file_buf(w, "manifest.json", mtext, len, err) < 0)
			return -1;
	}
	if (tar_file_buf(w, "oci-layout", layout_doc, sizeof(layout_doc) - 1, err) < 0)
		return -1;
	if (fmt == EP_EXPORT_DOCKER && tag) {
		/* read only by docker load of archives without manifest.json; kept
		 * for old tools, pointing at the top layer as docker save does */
		const char *top = m->n_layers ? ep_digest_hex(m->layers[m->n_layers - 1].digest)
					      : ep_digest_hex(m->config.digest);

		repos = json_pack("{s:{s:s}}", name, tagpart, top);
		if (!repos)
			return ep_error_oom(err);
		rtext = ep_json_canonical(repos, &len, err);
		if (!rtext || tar_file_buf(w, "repositories", rtext, len, err) < 0)
			return -1;
	}
	return 0;
}

int ep_export(const char *layout, const char *manifest_digest, const char *out_path,
	      enum ep_export_format fmt, const char *tag, struct ep_error *err)
{
	cleanup_free char *mbuf = NULL;
	cleanup_free char *cbuf = NULL;
	cleanup_free char *tmp = NULL;
	cleanup_free char *dcopy = NULL;
	cleanup_free struct desc *blobs = NULL;
	cleanup_free ep_digest *diff_ids = NULL;
	cleanup_json json_t *cfg = NULL;
	struct image_manifest m = {0};
	struct tarw w;
	size_t mlen, clen, nb = 0, n_diff;
	static const char zero[1024];
	int fd = -1, rc = -1;

	if (fmt != EP_EXPORT_OCI && fmt != EP_EXPORT_DOCKER)
		return ep_error_set(err, EP_EINVAL, "unknown export format %d", (int)fmt);
	mbuf = ep_layout_read_blob(layout, manifest_digest, EP_MAX_MANIFEST_BYTES, &mlen, err);
	if (!mbuf || parse_manifest(mbuf, mlen, manifest_digest, &m, err) < 0)
		return ep_error_wrap(err, "export %s", manifest_digest);
	cbuf = ep_layout_read_blob(layout, m.config.digest, EP_MAX_CONFIG_BYTES, &clen, err);
	if (!cbuf)
		goto fail;
	cfg = parse_config(cbuf, clen, m.config.digest, &diff_ids, &n_diff, err);
	if (!cfg)
		goto fail;
	if (n_diff != m.n_layers) {
		ep_error_set(err, EP_EMISMATCH, "config %s: lists %zu diff_ids for %zu layers",
			     m.config.digest, n_diff, m.n_layers);
		goto fail;
	}
	blobs = ep_calloc(m.n_layers + 2, sizeof(*blobs), err);
	if (!blobs)
		goto fail;
	snprintf(blobs[nb].digest, sizeof(blobs[nb].digest), "%s", manifest_digest);
	blobs[nb++].size = mlen;
	blobs[nb++] = m.config;
	for (size_t i = 0; i < m.n_layers; i++)
		blobs[nb++] = m.layers[i];
	qsort(blobs, nb, sizeof(*blobs), cmp_desc);

	tmp = ep_asprintf(err, "%s.tmp-XXXXXX", out_path);
	if (!tmp)
		goto fail;
	fd = mkstemp(tmp);
	if (fd < 0) {
		ep_error_errno(err, EP_EENV, errno, "create '%s'", tmp);
		goto fail;
	}
	if (fchmod(fd, 0644) < 0) {
		ep_error_errno(err, EP_EENV, errno, "chmod '%s'", tmp);
		goto fail_tmp;
	}
	w.fd = fd;
	ep_fd_sink_init(&w.sink, fd);
	if (tar_header(&w, "blobs/", '5', 0755, 0, err) < 0 ||
	    tar_header(&w, "blobs/sha256/", '5', 0755, 0, err) < 0)
		goto fail_tmp;
	for (size_t i = 0; i < nb; i++) {
		if (i > 0 && !strcmp(blobs[i].digest, blobs[i - 1].digest))
			continue; /* a layer used twice is stored once */
		if (tar_blob(&w, layout, &blobs[i], err) < 0)
			goto fail_tmp;
	}
	if (export_docs(&w, &m, manifest_digest, mlen, fmt, tag, err) < 0 ||
	    tar_block(&w, zero, sizeof(zero), err) < 0)
		goto fail_tmp;
	if (fsync(fd) < 0) {
		ep_error_errno(err, EP_EENV, errno, "fsync '%s'", tmp);
		goto fail_tmp;
	}
	if (close(fd) < 0) {
		fd = -1;
		ep_error_errno(err, EP_EENV, errno, "close '%s'", tmp);
		goto fail_tmp;
	}
	fd = -1;
	if (rename(tmp, out_path) < 0) {
		ep_error_errno(err, EP_EENV, errno, "rename to '%s'", out_path);
		goto fail_tmp;
	}
	dcopy = ep_strdup(out_path, err);
	if (!dcopy || ep_fsync_dir(dirname(dcopy), err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail_tmp:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
fail:
	ep_error_wrap(err, "export %s", manifest_digest);
out:
	image_manifest_release(&m);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Inspect                                                             */

json_t *ep_inspect(const char *layout, const char *manifest_digest, struct ep_error *err)
{
	static const char *const keep[] = {"Env",    "Entrypoint",   "Cmd",     "WorkingDir",
					   "User",   "Labels",       "Volumes", "ExposedPorts",
					   "StopSignal"};
	cleanup_free char *mbuf = NULL;
	cleanup_free char *cbuf = NULL;
	cleanup_free ep_digest *diff_ids = NULL;
	cleanup_json json_t *cfg = NULL;
	cleanup_json json_t *out = NULL;
	struct image_manifest m = {0};
	json_t *layers, *cc, *sub;
	size_t mlen, clen, n_diff;
	uint64_t total;

	mbuf = ep_layout_read_blob(layout, manifest_digest, EP_MAX_MANIFEST_BYTES, &mlen, err);
	if (!mbuf || parse_manifest(mbuf, mlen, manifest_digest, &m, err) < 0)
		goto fail;
	cbuf = ep_layout_read_blob(layout, m.config.digest, EP_MAX_CONFIG_BYTES, &clen, err);
	if (!cbuf)
		goto fail;
	cfg = parse_config(cbuf, clen, m.config.digest, &diff_ids, &n_diff, err);
	if (!cfg)
		goto fail;
	total = mlen + clen;
	out = json_pack("{s:s,s:s,s:s,s:I}", "digest", manifest_digest, "config_digest",
			m.config.digest, "media_type", m.media_type, "config_size", (json_int_t)clen);
	layers = json_array();
	sub = json_object();
	if (!out || !layers || json_object_set_new(out, "layers", layers) < 0 || !sub ||
	    json_object_set_new(out, "config", sub) < 0)
		goto oom;
	for (size_t i = 0; i < EP_ARRAY_SIZE(keep); i++) {
		cc = json_object_get(json_object_get(cfg, "config"), keep[i]);
		if (cc && json_object_set(sub, keep[i], cc) < 0)
			goto oom;
	}
	for (size_t i = 0; i < 3; i++) {
		static const char *const top[] = {"created", "architecture", "os"};
		json_t *v = json_object_get(cfg, top[i]);

		if (json_object_set_new(out, top[i], json_is_string(v) ? json_incref(v) : json_null()) < 0)
			goto oom;
	}
	for (size_t i = 0; i < m.n_layers; i++) {
		json_t *l = json_pack("{s:s,s:s?,s:I,s:s}", "digest", m.layers[i].digest, "diff_id",
				      i < n_diff ? diff_ids[i] : NULL, "size",
				      (json_int_t)m.layers[i].size, "media_type",
				      m.layers[i].media_type);

		if (!l || json_array_append_new(layers, l) < 0)
			goto oom;
		total += m.layers[i].size;
	}
	if (json_object_set_new(out, "size", json_integer((json_int_t)total)) < 0)
		goto oom;
	image_manifest_release(&m);
	return steal_pointer(&out);
oom:
	ep_error_oom(err);
fail:
	image_manifest_release(&m);
	ep_error_wrap(err, "inspect %s", manifest_digest);
	return NULL;
}
