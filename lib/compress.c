/* lib/compress.c - deterministic layer compression and streaming
 * decompression (see compress.h and docs/compression.md). */
#include "compress.h"

#include <errno.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util.h"

#define MEDIA_TAR "application/vnd.oci.image.layer.v1.tar"
#define MEDIA_TAR_GZIP MEDIA_TAR "+gzip"
#define MEDIA_TAR_ZSTD MEDIA_TAR "+zstd"

/* Workers beyond this only add memory: blocks are 1 MiB and a layer is
 * written by one producer thread. */
#define MAX_THREADS 64
/* Ceilings that keep a mistyped lock file from allocating gigabytes per
 * in-flight block. */
#define MIN_BLOCK 4096u
#define MAX_BLOCK (64u << 20)

int ep_compression_parse(const char *name, enum ep_compression *out, struct ep_error *err)
{
	if (name && strcmp(name, "gzip") == 0)
		*out = EP_COMPRESS_GZIP;
	else if (name && strcmp(name, "zstd") == 0)
		*out = EP_COMPRESS_ZSTD;
	else if (name && strcmp(name, "none") == 0)
		*out = EP_COMPRESS_NONE;
	else
		return ep_error_set(err, EP_EINVAL,
				    "unknown compression '%s' (expected gzip, zstd or none)",
				    name ? name : "");
	return 0;
}

const char *ep_compression_name(enum ep_compression kind)
{
	switch (kind) {
	case EP_COMPRESS_GZIP:
		return "gzip";
	case EP_COMPRESS_ZSTD:
		return "zstd";
	case EP_COMPRESS_NONE:
		return "none";
	}
	return "unknown";
}

const char *ep_compression_media_type(enum ep_compression kind)
{
	switch (kind) {
	case EP_COMPRESS_GZIP:
		return MEDIA_TAR_GZIP;
	case EP_COMPRESS_ZSTD:
		return MEDIA_TAR_ZSTD;
	case EP_COMPRESS_NONE:
		return MEDIA_TAR;
	}
	return NULL;
}

int ep_compression_from_media_type(const char *media_type)
{
	static const struct {
		const char *type;
		enum ep_compression kind;
	} map[] = {
		{MEDIA_TAR, EP_COMPRESS_NONE},
		{MEDIA_TAR_GZIP, EP_COMPRESS_GZIP},
		{MEDIA_TAR_ZSTD, EP_COMPRESS_ZSTD},
		/* deprecated by image-spec 1.1 but still in old manifests */
		{"application/vnd.oci.image.layer.nondistributable.v1.tar", EP_COMPRESS_NONE},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", EP_COMPRESS_GZIP},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", EP_COMPRESS_ZSTD},
		{"application/vnd.docker.image.rootfs.diff.tar", EP_COMPRESS_NONE},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", EP_COMPRESS_GZIP},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", EP_COMPRESS_GZIP},
	};

	if (!media_type)
		return -1;
	for (size_t i = 0; i < EP_ARRAY_SIZE(map); i++)
		if (strcmp(media_type, map[i].type) == 0)
			return (int)map[i].kind;
	return -1;
}

enum ep_compression ep_compression_detect(const void *buf, size_t len)
{
	const unsigned char *b = buf;

	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		return EP_COMPRESS_GZIP;
	if (len >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
		return EP_COMPRESS_ZSTD;
	return EP_COMPRESS_NONE;
}

void ep_compress_defaults(enum ep_compression kind, struct ep_compress_params *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->threads = ep_ncpu();
	switch (kind) {
	case EP_COMPRESS_GZIP:
		p->level = EP_GZIP_DEFAULT_LEVEL;
		p->block_size = EP_GZIP_DEFAULT_BLOCK;
		break;
	case EP_COMPRESS_ZSTD:
		p->level = EP_ZSTD_DEFAULT_LEVEL;
		p->block_size = EP_ZSTD_DEFAULT_BLOCK;
		break;
	case EP_COMPRESS_NONE:
		break;
	}
}

/* Refuses parameters that would change or break the output, so that what
 * the lock file records is exactly what ran. */
static int check_params(const struct ep_compress_params *p, struct ep_error *err)
{
	switch (p->kind) {
	case EP_COMPRESS_GZIP:
		if (p->level < 0 || p->level > 12)
			return ep_error_set(err, EP_EINVAL, "gzip: level %d is out of range 0..12",
					    p->level);
		break;
	case EP_COMPRESS_ZSTD:
		if (p->level < 1 || p->level > ZSTD_maxCLevel())
			return ep_error_set(err, EP_EINVAL, "zstd: level %d is out of range 1..%d",
					    p->level, ZSTD_maxCLevel());
		/* libzstd silently raises smaller job sizes to its minimum,
		 * which would make the recorded block size a lie */
		if (p->block_size < (512u << 10))
			return ep_error_set(err, EP_EINVAL,
					    "zstd: block size %zu is below the minimum of %u",
					    p->block_size, 512u << 10);
		break;
	case EP_COMPRESS_NONE:
		return 0;
	default:
		return ep_error_set(err, EP_EINVAL, "unknown compression kind %d", (int)p->kind);
	}
	if (p->block_size < MIN_BLOCK || p->block_size > MAX_BLOCK)
		return ep_error_set(err, EP_EINVAL, "%s: block size %zu is out of range %u..%u",
				    ep_compression_name(p->kind), p->block_size, MIN_BLOCK, MAX_BLOCK);
	return 0;
}

json_t *ep_compress_describe(const struct ep_compress_params *p, struct ep_error *err)
{
	const char *lib = "", *ver = "";
	int level = 0;
	size_t block = 0;
	json_t *j;

	if (check_params(p, err) < 0)
		return NULL;
	if (p->kind == EP_COMPRESS_GZIP) {
		/* 1.14 has no run-time version call; the header's string is
		 * the one compiled against, and the .so's soname pins ABI 0 */
		lib = "libdeflate";
		ver = LIBDEFLATE_VERSION_STRING;
	} else if (p->kind == EP_COMPRESS_ZSTD) {
		lib = "libzstd";
		ver = ZSTD_versionString();
	}
	if (p->kind != EP_COMPRESS_NONE) {
		level = p->level;
		block = p->block_size;
	}
	j = json_pack("{s:s, s:s, s:s, s:i, s:I}", "name", ep_compression_name(p->kind), "library",
		      lib, "version", ver, "level", level, "block_size", (json_int_t)block);
	if (!j)
		ep_error_oom(err);
	return j;
}

/* ---- gzip: one member per block, blocks compressed in parallel ---- */

/* A block slot of the ring.  Slot of sequence number n is slots[n % nslots];
 * at most nslots blocks are between "submitted" and "written". */
struct gz_slot {
	unsigned char *in;
	size_t in_len;
	unsigned char *out;
	size_t out_len;
	bool done;
	bool failed;
};

struct gz_sink {
	struct ep_sink base;
	int level;
	size_t block;
	size_t out_cap;
	int nthreads; /* 0: compress inline in the writer's thread */
	size_t nslots;
	struct gz_slot *slots;
	struct libdeflate_compressor *inline_c;

	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* workers: a block was submitted, or stop */
	pthread_cond_t done_cv; /* writer: a block was compressed */
	bool sync_ok;
	pthread_t *tids;
	int nstarted;
	bool stop;
	uint64_t submitted; /* blocks handed to workers */
	uint64_t taken;     /* blocks a worker has picked up */
	uint64_t written;   /* blocks forwarded to next, in order */

	bool any_block; /* a member was submitted: empty input still gets one */
	bool broken;    /* a write failed; later calls refuse */
	bool finished;
};

/* Header per compress.h: no FLG bits, MTIME 0, XFL 0, OS 3 (Unix), as git
 * archive writes it.  libdeflate's own gzip wrapper writes OS 255 and an XFL
 * that depends on the level, so we frame the raw deflate stream ourselves. */
static const unsigned char member_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* Compresses slot->in into slot->out as one complete gzip member. */
static bool gz_member(struct libdeflate_compressor *c, struct gz_slot *slot, size_t out_cap)
{
	size_t n;

	memcpy(slot->out, member_header, sizeof(member_header));
	n = libdeflate_deflate_compress(c, slot->in, slot->in_len, slot->out + 10, out_cap - 18);
	if (n == 0)
		return false; /* cannot happen with a bound-sized buffer */
	put_le32(slot->out + 10 + n, libdeflate_crc32(0, slot->in, slot->in_len));
	put_le32(slot->out + 14 + n, (uint32_t)slot->in_len);
	slot->out_len = n + 18;
	return true;
}

/* Inline mode (no workers) has no mutex to take. */
static void gz_lock(struct gz_sink *g)
{
	if (g->nthreads)
		pthread_mutex_lock(&g->mu);
}

static void gz_unlock(struct gz_sink *g)
{
	if (g->nthreads)
		pthread_mutex_unlock(&g->mu);
}

struct gz_worker_arg {
	struct gz_sink *g;
	struct libdeflate_compressor *c;
};

static void *gz_worker(void *arg)
{
	struct gz_worker_arg *wa = arg;
	struct gz_sink *g = wa->g;
	struct libdeflate_compressor *c = wa->c;

	free(wa);
	pthread_mutex_lock(&g->mu);
	for (;;) {
		struct gz_slot *slot;
		bool ok;

		while (!g->stop && g->taken == g->submitted)
			pthread_cond_wait(&g->work_cv, &g->mu);
		if (g->stop)
			break;
		slot = &g->slots[g->taken % g->nslots];
		g->taken++;
		pthread_mutex_unlock(&g->mu);
		ok = gz_member(c, slot, g->out_cap);
		pthread_mutex_lock(&g->mu);
		slot->failed = !ok;
		slot->done = true;
		pthread_cond_broadcast(&g->done_cv);
	}
	pthread_mutex_unlock(&g->mu);
	libdeflate_free_compressor(c);
	return NULL;
}

/* Forwards finished blocks in sequence order; with wait, blocks until the
 * oldest one is done.  Only the writer's thread calls this. */
static int gz_drain(struct gz_sink *g, bool wait, struct ep_error *err)
{
	while (g->written < g->submitted) {
		struct gz_slot *slot = &g->slots[g->written % g->nslots];
		bool failed;

		gz_lock(g);
		while (g->nthreads && wait && !slot->done)
			pthread_cond_wait(&g->done_cv, &g->mu);
		if (!slot->done) {
			gz_unlock(g);
			return 0;
		}
		failed = slot->failed;
		gz_unlock(g);
		if (failed)
			return ep_error_set(err, EP_EENV, "gzip: block %llu did not compress",
					    (unsigned long long)g->written);
		if (ep_sink_write(g->base.next, slot->out, slot->out_len, err) < 0)
			return -1;
		gz_lock(g);
		slot->done = false;
		slot->in_len = 0;
		g->written++;
		gz_unlock(g);
		wait = false; /* one block freed is enough to go on filling */
	}
	return 0;
}

/* Hands the block being filled to the workers (or compresses it here). */
static int gz_submit(struct gz_sink *g, struct ep_error *err)
{
	struct gz_slot *slot = &g->slots[g->submitted % g->nslots];

	g->any_block = true;
	if (g->nthreads == 0) {
		if (!gz_member(g->inline_c, slot, g->out_cap))
			return ep_error_set(err, EP_EENV, "gzip: block %llu did not compress",
					    (unsigned long long)g->submitted);
		g->submitted++;
		slot->done = true;
		return gz_drain(g, false, err);
	}
	pthread_mutex_lock(&g->mu);
	g->submitted++;
	pthread_cond_signal(&g->work_cv);
	pthread_mutex_unlock(&g->mu);
	/* the next slot to fill must have been written out first */
	if (gz_drain(g, g->submitted - g->written == g->nslots, err) < 0)
		return -1;
	return 0;
}

static int gz_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct gz_sink *g = (struct gz_sink *)s;
	const unsigned char *p = buf;

	if (g->broken || g->finished)
		return ep_error_set(err, EP_EINVAL, "gzip: write after %s",
				    g->finished ? "finish" : "an error");
	while (len > 0) {
		struct gz_slot *slot = &g->slots[g->submitted % g->nslots];
		size_t n = g->block - slot->in_len;

		if (n > len)
			n = len;
		memcpy(slot->in + slot->in_len, p, n);
		slot->in_len += n;
		p += n;
		len -= n;
		if (slot->in_len == g->block && gz_submit(g, err) < 0) {
			g->broken = true;
			return -1;
		}
	}
	return 0;
}

static int gz_finish(struct ep_sink *s, struct ep_error *err)
{
	struct gz_sink *g = (struct gz_sink *)s;
	struct gz_slot *slot = &g->slots[g->submitted % g->nslots];

	if (g->broken || g->finished)
		return ep_error_set(err, EP_EINVAL, "gzip: finish after %s",
				    g->finished ? "finish" : "an error");
	g->finished = true;
	/* a partial last block; empty input still makes one (empty) member,
	 * since zero bytes are not a valid gzip file for gzip(1) */
	if ((slot->in_len > 0 || !g->any_block) && gz_submit(g, err) < 0)
		goto fail;
	while (g->written < g->submitted)
		if (gz_drain(g, true, err) < 0)
			goto fail;
	return s->next ? ep_sink_finish(s->next, err) : 0;
fail:
	g->broken = true;
	return -1;
}

static void gz_release(struct ep_sink *s)
{
	struct gz_sink *g = (struct gz_sink *)s;

	if (g->sync_ok) {
		pthread_mutex_lock(&g->mu);
		g->stop = true;
		pthread_cond_broadcast(&g->work_cv);
		pthread_mutex_unlock(&g->mu);
		for (int i = 0; i < g->nstarted; i++)
			pthread_join(g->tids[i], NULL);
		pthread_cond_destroy(&g->done_cv);
		pthread_cond_destroy(&g->work_cv);
		pthread_mutex_destroy(&g->mu);
		g->sync_ok = false;
	}
	free(g->tids);
	g->tids = NULL;
	g->nstarted = 0;
	if (g->slots) {
		for (size_t i = 0; i < g->nslots; i++) {
			free(g->slots[i].in);
			free(g->slots[i].out);
		}
		free(g->slots);
		g->slots = NULL;
	}
	if (g->inline_c)
		libdeflate_free_compressor(g->inline_c);
	g->inline_c = NULL;
}

static struct ep_sink *gz_sink_new(const struct ep_compress_params *p, struct ep_sink *next,
				   struct ep_error *err)
{
	struct gz_sink *g = ep_calloc(1, sizeof(*g), err);
	struct libdeflate_compressor *probe;
	int threads = p->threads < 1 ? 1 : p->threads > MAX_THREADS ? MAX_THREADS : p->threads;

	if (!g)
		return NULL;
	g->base.write = gz_write;
	g->base.finish = gz_finish;
	g->base.release = gz_release;
	g->base.next = next;
	g->level = p->level;
	g->block = p->block_size;
	/* one thread: compress in the caller's thread, no hand-offs */
	g->nthreads = threads == 1 ? 0 : threads;
	/* twice the workers keeps them busy while the writer forwards the
	 * oldest block; memory stays at nslots * (block + bound) */
	g->nslots = g->nthreads ? 2 * (size_t)g->nthreads : 1;

	probe = libdeflate_alloc_compressor(g->level);
	if (!probe) {
		ep_error_oom(err);
		goto fail;
	}
	g->out_cap = libdeflate_deflate_compress_bound(probe, g->block) + 18;
	if (g->nthreads == 0)
		g->inline_c = probe;
	else
		libdeflate_free_compressor(probe);

	g->slots = ep_calloc(g->nslots, sizeof(*g->slots), err);
	if (!g->slots)
		goto fail;
	for (size_t i = 0; i < g->nslots; i++) {
		g->slots[i].in = ep_malloc(g->block, err);
		g->slots[i].out = g->slots[i].in ? ep_malloc(g->out_cap, err) : NULL;
		if (!g->slots[i].out)
			goto fail;
	}
	if (g->nthreads == 0)
		return &g->base;

	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		ep_error_set(err, EP_EENV, "gzip: cannot create a mutex");
		goto fail;
	}
	if (pthread_cond_init(&g->work_cv, NULL) != 0) {
		pthread_mutex_destroy(&g->mu);
		ep_error_set(err, EP_EENV, "gzip: cannot create a condition variable");
		goto fail;
	}
	if (pthread_cond_init(&g->done_cv, NULL) != 0) {
		pthread_cond_destroy(&g->work_cv);
		pthread_mutex_destroy(&g->mu);
		ep_error_set(err, EP_EENV, "gzip: cannot create a condition variable");
		goto fail;
	}
	g->sync_ok = true;
	g->tids = ep_calloc((size_t)g->nthreads, sizeof(*g->tids), err);
	if (!g->tids)
		goto fail;
	for (int i = 0; i < g->nthreads; i++) {
		struct gz_worker_arg *wa = ep_malloc(sizeof(*wa), err);
		int rc;

		if (!wa)
			goto fail;
		wa->g = g;
		wa->c = libdeflate_alloc_compressor(g->level);
		if (!wa->c) {
			free(wa);
			ep_error_oom(err);
			goto fail;
		}
		rc = pthread_create(&g->tids[i], NULL, gz_worker, wa);
		if (rc != 0) {
			libdeflate_free_compressor(wa->c);
			free(wa);
			ep_error_errno(err, EP_EENV, rc, "gzip: cannot start a worker thread");
			goto fail;
		}
		g->nstarted++;
	}
	return &g->base;
fail:
	gz_release(&g->base);
	free(g);
	return NULL;
}

/* ---- zstd: libzstd's own multi-threaded streaming ---- */

#define ZS_OUT_CHUNK (256u << 10)

struct zs_sink {
	struct ep_sink base;
	ZSTD_CCtx *cctx;
	unsigned char *out;
	bool broken;
	bool finished;
};

static int zs_set(ZSTD_CCtx *c, ZSTD_cParameter param, int value, const char *name,
		  struct ep_error *err)
{
	size_t rc = ZSTD_CCtx_setParameter(c, param, value);

	if (ZSTD_isError(rc))
		return ep_error_set(err, EP_EENV, "zstd: cannot set %s to %d: %s", name, value,
				    ZSTD_getErrorName(rc));
	return 0;
}

static int zs_run(struct zs_sink *z, const void *buf, size_t len, ZSTD_EndDirective op,
		  struct ep_error *err)
{
	ZSTD_inBuffer in = {buf, len, 0};

	for (;;) {
		ZSTD_outBuffer out = {z->out, ZS_OUT_CHUNK, 0};
		size_t rc = ZSTD_compressStream2(z->cctx, &out, &in, op);

		if (ZSTD_isError(rc)) {
			z->broken = true;
			return ep_error_set(err, EP_EENV, "zstd: compression failed: %s",
					    ZSTD_getErrorName(rc));
		}
		if (out.pos > 0 && ep_sink_write(z->base.next, z->out, out.pos, err) < 0) {
			z->broken = true;
			return -1;
		}
		/* continue: done once the input is consumed (libzstd keeps
		 * what it buffers); end: done when nothing remains to flush */
		if (op == ZSTD_e_end ? rc == 0 : in.pos == in.size)
			return 0;
	}
}

static int zs_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct zs_sink *z = (struct zs_sink *)s;

	if (z->broken || z->finished)
		return ep_error_set(err, EP_EINVAL, "zstd: write after %s",
				    z->finished ? "finish" : "an error");
	if (len == 0)
		return 0;
	return zs_run(z, buf, len, ZSTD_e_continue, err);
}

static int zs_finish(struct ep_sink *s, struct ep_error *err)
{
	struct zs_sink *z = (struct zs_sink *)s;

	if (z->broken || z->finished)
		return ep_error_set(err, EP_EINVAL, "zstd: finish after %s",
				    z->finished ? "finish" : "an error");
	z->finished = true;
	if (zs_run(z, NULL, 0, ZSTD_e_end, err) < 0)
		return -1;
	return s->next ? ep_sink_finish(s->next, err) : 0;
}

static void zs_release(struct ep_sink *s)
{
	struct zs_sink *z = (struct zs_sink *)s;

	ZSTD_freeCCtx(z->cctx);
	z->cctx = NULL;
	free(z->out);
	z->out = NULL;
}

static struct ep_sink *zs_sink_new(const struct ep_compress_params *p, struct ep_sink *next,
				   struct ep_error *err)
{
	struct zs_sink *z = ep_calloc(1, sizeof(*z), err);
	int workers = p->threads < 1 ? 1 : p->threads > MAX_THREADS ? MAX_THREADS : p->threads;

	if (!z)
		return NULL;
	z->base.write = zs_write;
	z->base.finish = zs_finish;
	z->base.release = zs_release;
	z->base.next = next;
	z->out = ep_malloc(ZS_OUT_CHUNK, err);
	if (!z->out)
		goto fail;
	z->cctx = ZSTD_createCCtx();
	if (!z->cctx) {
		ep_error_oom(err);
		goto fail;
	}
	/* nbWorkers >= 1 even for one thread: libzstd's multi-threaded
	 * format is the one that is independent of the worker count, and it
	 * cuts jobs at fixed input offsets, not at our callers' write sizes */
	if (zs_set(z->cctx, ZSTD_c_compressionLevel, p->level, "level", err) < 0 ||
	    zs_set(z->cctx, ZSTD_c_nbWorkers, workers, "workers", err) < 0 ||
	    zs_set(z->cctx, ZSTD_c_jobSize, (int)p->block_size, "job size", err) < 0 ||
	    zs_set(z->cctx, ZSTD_c_checksumFlag, 0, "checksum flag", err) < 0 ||
	    zs_set(z->cctx, ZSTD_c_contentSizeFlag, 0, "content size flag", err) < 0 ||
	    zs_set(z->cctx, ZSTD_c_dictIDFlag, 0, "dictionary id flag", err) < 0)
		goto fail;
	return &z->base;
fail:
	zs_release(&z->base);
	free(z);
	return NULL;
}

/* ---- none ---- */

static int pass_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	return s->next ? ep_sink_write(s->next, buf, len, err) : 0;
}

struct ep_sink *ep_compress_sink_new(const struct ep_compress_params *p, struct ep_sink *next,
				     struct ep_error *err)
{
	struct ep_sink *s;

	if (check_params(p, err) < 0)
		return NULL;
	if (!next) {
		ep_error_set(err, EP_EINVAL, "%s: a compressor needs a next sink",
			     ep_compression_name(p->kind));
		return NULL;
	}
	switch (p->kind) {
	case EP_COMPRESS_GZIP:
		return gz_sink_new(p, next, err);
	case EP_COMPRESS_ZSTD:
		return zs_sink_new(p, next, err);
	case EP_COMPRESS_NONE:
		s = ep_calloc(1, sizeof(*s), err);
		if (s) {
			s->write = pass_write;
			s->next = next;
		}
		return s;
	}
	return NULL;
}

void ep_compress_sink_free(struct ep_sink *s)
{
	if (!s)
		return;
	ep_sink_release(s);
	free(s);
}

/* ---- decompression ---- */

#define DEC_OUT_CHUNK (256u << 10)

struct dec_sink {
	struct ep_sink base;
	enum ep_compression kind;
	uint64_t max_out;
	uint64_t total_out;
	uint64_t total_in;
	unsigned char *out;
	z_stream zs;
	bool zs_ok;
	ZSTD_DStream *zd;
	/* between members/frames: nothing of a started one is pending */
	bool at_boundary;
	uint64_t members; /* completed gzip members / zstd frames */
	bool broken;
	bool finished;
};

static int dec_emit(struct dec_sink *d, const void *buf, size_t len, struct ep_error *err)
{
	if (len > d->max_out - d->total_out)
		return ep_error_set(err, EP_EINVAL, "decompression bomb: more than %llu bytes",
				    (unsigned long long)d->max_out);
	d->total_out += len;
	return d->base.next ? ep_sink_write(d->base.next, buf, len, err) : 0;
}

static int gunzip_write(struct dec_sink *d, const void *buf, size_t len, struct ep_error *err)
{
	z_stream *zs = &d->zs;

	zs->next_in = (Bytef *)buf;
	zs->avail_in = 0;
	for (;;) {
		int rc;

		/* avail_in is a uInt: feed huge writes in pieces */
		if (zs->avail_in == 0 && len > 0) {
			size_t n = len > (1u << 30) ? (1u << 30) : len;

			zs->avail_in = (uInt)n;
			len -= n;
		}
		if (d->at_boundary) {
			if (zs->avail_in == 0)
				return 0;
			if (d->members > 0 && inflateReset(zs) != Z_OK)
				return ep_error_set(err, EP_EENV, "gzip: cannot reset the inflater");
			d->at_boundary = false;
		}
		zs->next_out = d->out;
		zs->avail_out = DEC_OUT_CHUNK;
		rc = inflate(zs, Z_NO_FLUSH);
		if (dec_emit(d, d->out, DEC_OUT_CHUNK - zs->avail_out, err) < 0)
			return -1;
		if (rc == Z_STREAM_END) {
			d->members++;
			d->at_boundary = true;
			continue;
		}
		if (rc == Z_DATA_ERROR) {
			/* a bad header right after a complete member is what
			 * trailing padding or garbage looks like */
			if (d->members > 0 && zs->total_in <= 10)
				return ep_error_set(err, EP_EMISMATCH,
						    "gzip: invalid data: garbage after member %llu (%s)",
						    (unsigned long long)d->members,
						    zs->msg ? zs->msg : "bad header");
			return ep_error_set(err, EP_EMISMATCH, "gzip: invalid data: %s",
					    zs->msg ? zs->msg : "corrupt stream");
		}
		if (rc == Z_MEM_ERROR)
			return ep_error_oom(err);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return ep_error_set(err, EP_EMISMATCH, "gzip: invalid data: inflate returned %d",
					    rc);
		/* a full output buffer may hide more output of consumed input */
		if (zs->avail_out != 0) {
			if (zs->avail_in == 0 && len == 0)
				return 0;
			if (rc == Z_BUF_ERROR)
				return ep_error_set(err, EP_EENV, "gzip: inflate made no progress");
		}
	}
}

static int unzstd_write(struct dec_sink *d, const void *buf, size_t len, struct ep_error *err)
{
	ZSTD_inBuffer in = {buf, len, 0};

	for (;;) {
		ZSTD_outBuffer out = {d->out, DEC_OUT_CHUNK, 0};
		size_t before = in.pos;
		size_t rc = ZSTD_decompressStream(d->zd, &out, &in);

		if (ZSTD_isError(rc))
			return ep_error_set(err, EP_EMISMATCH, "zstd: invalid data: %s",
					    ZSTD_getErrorName(rc));
		if (dec_emit(d, d->out, out.pos, err) < 0)
			return -1;
		if (rc == 0) {
			d->members++;
			d->at_boundary = true;
		} else if (in.pos > before || out.pos > 0) {
			d->at_boundary = false;
		}
		/* a full output buffer may hide more flushable data */
		if (in.pos == in.size && out.pos < out.size)
			return 0;
	}
}

static int dec_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct dec_sink *d = (struct dec_sink *)s;
	const char *name = ep_compression_name(d->kind);
	int rc;

	if (d->broken || d->finished)
		return ep_error_set(err, EP_EINVAL, "%s: write after %s", name,
				    d->finished ? "finish" : "an error");
	if (len == 0)
		return 0;
	d->total_in += len;
	switch (d->kind) {
	case EP_COMPRESS_GZIP:
		rc = gunzip_write(d, buf, len, err);
		break;
	case EP_COMPRESS_ZSTD:
		rc = unzstd_write(d, buf, len, err);
		break;
	default:
		rc = dec_emit(d, buf, len, err);
		break;
	}
	if (rc < 0)
		d->broken = true;
	return rc;
}

static int dec_finish(struct ep_sink *s, struct ep_error *err)
{
	struct dec_sink *d = (struct dec_sink *)s;
	const char *name = ep_compression_name(d->kind);

	if (d->broken || d->finished)
		return ep_error_set(err, EP_EINVAL, "%s: finish after %s", name,
				    d->finished ? "finish" : "an error");
	d->finished = true;
	if (d->kind != EP_COMPRESS_NONE) {
		if (d->total_in == 0)
			return ep_error_set(err, EP_EMISMATCH, "%s: truncated: empty stream", name);
		if (!d->at_boundary)
			return ep_error_set(err, EP_EMISMATCH,
					    "%s: truncated after %llu compressed bytes", name,
					    (unsigned long long)d->total_in);
	}
	return s->next ? ep_sink_finish(s->next, err) : 0;
}

static void dec_release(struct ep_sink *s)
{
	struct dec_sink *d = (struct dec_sink *)s;

	if (d->zs_ok)
		inflateEnd(&d->zs);
	d->zs_ok = false;
	ZSTD_freeDStream(d->zd);
	d->zd = NULL;
	free(d->out);
	d->out = NULL;
}

struct ep_sink *ep_decompress_sink_new(enum ep_compression kind, uint64_t max_out,
				       struct ep_sink *next, struct ep_error *err)
{
	struct dec_sink *d;

	if (kind != EP_COMPRESS_GZIP && kind != EP_COMPRESS_ZSTD && kind != EP_COMPRESS_NONE) {
		ep_error_set(err, EP_EINVAL, "unknown compression kind %d", (int)kind);
		return NULL;
	}
	d = ep_calloc(1, sizeof(*d), err);
	if (!d)
		return NULL;
	d->base.write = dec_write;
	d->base.finish = dec_finish;
	d->base.release = dec_release;
	d->base.next = next;
	d->kind = kind;
	d->max_out = max_out;
	d->at_boundary = true;
	if (kind == EP_COMPRESS_NONE)
		return &d->base;
	d->out = ep_malloc(DEC_OUT_CHUNK, err);
	if (!d->out)
		goto fail;
	if (kind == EP_COMPRESS_GZIP) {
		/* 15 + 16: gzip wrapper only, never zlib or raw deflate */
		int rc = inflateInit2(&d->zs, 15 + 16);

		if (rc != Z_OK) {
			ep_error_set(err, EP_EENV, "gzip: cannot initialise zlib (%d)", rc);
			goto fail;
		}
		d->zs_ok = true;
	} else {
		size_t rc;

		d->zd = ZSTD_createDStream();
		if (!d->zd) {
			ep_error_oom(err);
			goto fail;
		}
		rc = ZSTD_initDStream(d->zd);
		if (ZSTD_isError(rc)) {
			ep_error_set(err, EP_EENV, "zstd: cannot initialise: %s",
				     ZSTD_getErrorName(rc));
			goto fail;
		}
	}
	return &d->base;
fail:
	dec_release(&d->base);
	free(d);
	return NULL;
}

void ep_decompress_sink_free(struct ep_sink *s)
{
	if (!s)
		return;
	ep_sink_release(s);
	free(s);
}
