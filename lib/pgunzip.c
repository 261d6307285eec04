#include "pgunzip.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "util.h"

#define BATCH ((size_t)8 << 20)	     /* compressed bytes looked at per round */
#define MAX_SEGS 64		     /* members inflated per round */
#define ARENA ((size_t)16 << 20)     /* their output, at most (stays in cache) */
#define MAX_MEMBER ((size_t)4 << 20) /* a bigger member goes to the sequential path */
#define MIN_MEMBER 18		     /* gzip header + empty deflate block + trailer */
#define MAX_THREADS 8

struct seg {
	size_t start, len;     /* in pend */
	size_t out_off, isize; /* in arena; isize from the member's trailer */
	size_t out_n;
	bool ok;
};

struct pgz {
	struct ep_sink base;
	uint64_t max_out, total_out, total_in;
	unsigned char *pend; /* compressed bytes not yet inflated */
	size_t pend_len;
	unsigned char *arena;
	struct libdeflate_decompressor *ld[MAX_THREADS];
	struct ep_sink *fallback; /* once set, everything goes there */
	/* ep_pgunzip_run_mapped: pend is the caller's mapping of the whole
	 * stream, and progress hears how much of it was inflated */
	bool mapped;
	void (*progress)(void *ctx, uint64_t in_done);
	void *pctx;
	bool broken, finished;

	/* the round being inflated */
	struct seg segs[MAX_SEGS];
	size_t n_segs, next_seg, segs_done;
	unsigned long round;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	pthread_t th[MAX_THREADS];
	int n_threads; /* helper threads started */
	bool stop;
};

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void inflate_seg(struct pgz *g, struct seg *s, struct libdeflate_decompressor *ld)
{
	size_t used = 0, n = 0;
	enum libdeflate_result r;

	r = libdeflate_gzip_decompress_ex(ld, g->pend + s->start, s->len, g->arena + s->out_off,
					  s->isize, &used, &n);
	s->out_n = n;
	s->ok = r == LIBDEFLATE_SUCCESS && used == s->len && n == s->isize;
}

/* Takes segments of the current round until none is left. */
static void work_round(struct pgz *g, struct libdeflate_decompressor *ld)
{
	for (;;) {
		struct seg *s;

		pthread_mutex_lock(&g->mu);
		s = g->next_seg < g->n_segs ? &g->segs[g->next_seg++] : NULL;
		pthread_mutex_unlock(&g->mu);
		if (!s)
			return;
		inflate_seg(g, s, ld);
		pthread_mutex_lock(&g->mu);
		if (++g->segs_done == g->n_segs)
			pthread_cond_signal(&g->done);
		pthread_mutex_unlock(&g->mu);
	}
}

struct helper_arg {
	struct pgz *g;
	int idx;
};

static void *helper(void *arg)
{
	struct pgz *g = ((struct helper_arg *)arg)->g;
	int idx = ((struct helper_arg *)arg)->idx;
	unsigned long seen = 0;

	free(arg);
	for (;;) {
		pthread_mutex_lock(&g->mu);
		while (!g->stop && g->round == seen)
			pthread_cond_wait(&g->work, &g->mu);
		if (g->stop) {
			pthread_mutex_unlock(&g->mu);
			return NULL;
		}
		seen = g->round;
		pthread_mutex_unlock(&g->mu);
		work_round(g, g->ld[idx]);
	}
}

static void run_round(struct pgz *g)
{
	pthread_mutex_lock(&g->mu);
	g->next_seg = 0;
	g->segs_done = 0;
	g->round++;
	pthread_cond_broadcast(&g->work);
	pthread_mutex_unlock(&g->mu);
	work_round(g, g->ld[0]);
	pthread_mutex_lock(&g->mu);
	while (g->segs_done < g->n_segs)
		pthread_cond_wait(&g->done, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static int emit(struct pgz *g, const void *buf, size_t len, struct ep_error *err)
{
	if (len > g->max_out - g->total_out)
		return ep_error_set(err, EP_EINVAL, "decompression bomb: more than %llu bytes",
				    (unsigned long long)g->max_out);
	g->total_out += len;
	return ep_sink_write(g->base.next, buf, len, err);
}

static int is_candidate(const unsigned char *p)
{
	/* ID1 ID2 CM=deflate, no reserved flag bits */
	return p[0] == 0x1f && p[1] == 0x8b && p[2] == 8 && (p[3] & 0xe0) == 0;
}

/* Segments from pos: candidate starts up to the end of pend; the last one
 * (which may be cut by the buffer's end) only when final.  Returns the
 * count. */
static size_t plan_round(struct pgz *g, size_t pos, bool final)
{
	size_t n = 0, arena = 0, start = pos;
	size_t end = g->pend_len;

	while (n < MAX_SEGS) {
		size_t next = end, isize;
		struct seg *s;

		for (size_t p = start + MIN_MEMBER; p + 4 <= end;) {
			/* memchr: binary data has a 0x1f every 256 bytes, and
			 * memchr still beats memmem's 3-byte search by 10x */
			const unsigned char *q = memchr(g->pend + p, 0x1f, end - p - 3);

			if (!q)
				break;
			p = (size_t)(q - g->pend);
			if (is_candidate(q)) {
				next = p;
				break;
			}
			p++;
		}
		if (next == end && !final)
			break;
		if (next - start < MIN_MEMBER)
			break;
		isize = le32(g->pend + next - 4);
		if (isize > MAX_MEMBER || arena + isize > ARENA)
			break;
		s = &g->segs[n++];
		s->start = start;
		s->len = next - start;
		s->out_off = arena;
		s->isize = isize;
		s->ok = false;
		arena += isize;
		if (next == end)
			break;
		start = next;
	}
	return n;
}

static int go_fallback(struct pgz *g, size_t pos, struct ep_error *err)
{
	g->fallback =
	    ep_decompress_sink_new(EP_COMPRESS_GZIP, g->max_out - g->total_out, g->base.next, err);
	if (!g->fallback)
		return -1;
	if (g->pend_len > pos &&
	    ep_sink_write(g->fallback, g->pend + pos, g->pend_len - pos, err) < 0)
		return -1;
	g->pend_len = 0;
	return 0;
}

/* One member at pos, in order, with an output buffer that grows. */
static int seq_member(struct pgz *g, size_t pos, size_t *used, struct ep_error *err)
{
	size_t cap = ARENA, n = 0;
	enum libdeflate_result r;

	r = libdeflate_gzip_decompress_ex(g->ld[0], g->pend + pos, g->pend_len - pos, g->arena, cap,
					  used, &n);
	if (r != LIBDEFLATE_SUCCESS)
		return 1;
	return emit(g, g->arena, n, err) < 0 ? -1 : 0;
}

static int drain(struct pgz *g, bool final, struct ep_error *err)
{
	size_t pos = 0;

	while (pos < g->pend_len) {
		size_t n = plan_round(g, pos, final), ok = 0;

		if (n > 0) {
			g->n_segs = n;
			run_round(g);
			for (; ok < n && g->segs[ok].ok; ok++) {
				if (emit(g, g->arena + g->segs[ok].out_off, g->segs[ok].out_n,
					 err) < 0)
					return -1;
				pos = g->segs[ok].start + g->segs[ok].len;
			}
			if (ok > 0 && g->mapped && g->progress)
				g->progress(g->pctx, pos);
			if (ok > 0)
				continue;
		}
		/* nothing inflated in parallel: no complete member in view
		 * yet, or the candidate at pos is not where a member ends */
		if (!final && !(pos == 0 && g->pend_len == BATCH) && n == 0)
			break;
		{
			size_t used = 0;
			int rc = seq_member(g, pos, &used, err);

			if (rc < 0)
				return -1;
			if (rc == 0) {
				pos += used;
				continue;
			}
		}
		if (!final && !(pos == 0 && g->pend_len == BATCH))
			break; /* maybe a member cut by the buffer's end */
		return go_fallback(g, pos, err);
	}
	if (pos < g->pend_len)
		memmove(g->pend, g->pend + pos, g->pend_len - pos);
	g->pend_len -= pos;
	return 0;
}

static int pgz_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct pgz *g = (struct pgz *)s;
	const unsigned char *p = buf;
	int rc = 0;

	if (g->broken || g->finished)
		return ep_error_set(err, EP_EINVAL, "gzip: write after %s",
				    g->finished ? "finish" : "an error");
	g->total_in += len;
	while (len > 0 && !g->fallback) {
		size_t n = BATCH - g->pend_len;

		if (n > len)
			n = len;
		memcpy(g->pend + g->pend_len, p, n);
		g->pend_len += n;
		p += n;
		len -= n;
		if (g->pend_len == BATCH && drain(g, false, err) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc == 0 && len > 0 && g->fallback)
		rc = ep_sink_write(g->fallback, p, len, err);
	if (rc < 0)
		g->broken = true;
	return rc;
}

static int pgz_finish(struct ep_sink *s, struct ep_error *err)
{
	struct pgz *g = (struct pgz *)s;

	if (g->broken || g->finished)
		return ep_error_set(err, EP_EINVAL, "gzip: finish after %s",
				    g->finished ? "finish" : "an error");
	g->finished = true;
	/* an empty stream: the sequential decoder says so */
	if (!g->fallback && (g->total_in == 0 ? go_fallback(g, 0, err) : drain(g, true, err)) < 0)
		goto fail;
	if (g->fallback)
		return ep_sink_finish(g->fallback, err) < 0 ? (g->broken = true, -1) : 0;
	return ep_sink_finish(s->next, err);
fail:
	g->broken = true;
	return -1;
}

static void pgz_release(struct ep_sink *s)
{
	struct pgz *g = (struct pgz *)s;

	pthread_mutex_lock(&g->mu);
	g->stop = true;
	pthread_cond_broadcast(&g->work);
	pthread_mutex_unlock(&g->mu);
	for (int i = 0; i < g->n_threads; i++)
		pthread_join(g->th[i], NULL);
	g->n_threads = 0;
	for (int i = 0; i < MAX_THREADS; i++) {
		if (g->ld[i])
			libdeflate_free_decompressor(g->ld[i]);
		g->ld[i] = NULL;
	}
	ep_decompress_sink_free(g->fallback);
	g->fallback = NULL;
	free(g->pend);
	free(g->arena);
	g->pend = g->arena = NULL;
	pthread_cond_destroy(&g->work);
	pthread_cond_destroy(&g->done);
	pthread_mutex_destroy(&g->mu);
}

struct ep_sink *ep_pgunzip_sink_new(uint64_t max_out, int threads, struct ep_sink *next,
				    struct ep_error *err)
{
	struct pgz *g = ep_calloc(1, sizeof(*g), err);

	if (!g)
		return NULL;
	if (threads < 1)
		threads = 1;
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	g->base.write = pgz_write;
	g->base.finish = pgz_finish;
	g->base.release = pgz_release;
	g->base.next = next;
	g->max_out = max_out;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->work, NULL);
	pthread_cond_init(&g->done, NULL);
	g->pend = ep_malloc(BATCH, err);
	g->arena = g->pend ? ep_malloc(ARENA, err) : NULL;
	if (!g->arena)
		goto fail;
	for (int i = 0; i < threads; i++) {
		g->ld[i] = libdeflate_alloc_decompressor();
		if (!g->ld[i]) {
			ep_error_oom(err);
			goto fail;
		}
	}
	for (int i = 1; i < threads; i++) {
		struct helper_arg *a = ep_malloc(sizeof(*a), err);
		int rc;

		if (!a)
			goto fail;
		a->g = g;
		a->idx = i;
		rc = pthread_create(&g->th[g->n_threads], NULL, helper, a);
		if (rc != 0) {
			free(a);
			ep_error_errno(err, EP_EENV, rc, "start a thread");
			goto fail;
		}
		g->n_threads++;
	}
	return &g->base;
fail:
	pgz_release(&g->base);
	free(g);
	return NULL;
}

int ep_pgunzip_run_mapped(struct ep_sink *s, const void *data, size_t len, struct ep_error *err)
{
	struct pgz *g = (struct pgz *)s;
	unsigned char *own = g->pend;
	int rc;

	if (g->broken || g->finished || g->total_in != 0 || g->fallback)
		return ep_error_set(err, EP_EINVAL,
				    "gzip: a mapped stream must be the whole stream");
	if (len == 0)
		return pgz_finish(s, err);
	/* drain reads pend and, with final set, moves nothing in it: the
	 * mapping stands in for the buffer, read-only, for this one call */
	g->pend = (unsigned char *)data;
	g->pend_len = len;
	g->total_in = len;
	g->finished = true;
	g->mapped = true;
	rc = drain(g, true, err);
	g->mapped = false;
	g->pend = own;
	g->pend_len = 0;
	if (rc < 0)
		goto fail;
	if (g->fallback)
		rc = ep_sink_finish(g->fallback, err);
	else
		rc = ep_sink_finish(s->next, err);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	g->broken = true;
	return -1;
}

void ep_pgunzip_set_progress(struct ep_sink *s, void (*fn)(void *ctx, uint64_t in_done), void *ctx)
{
	struct pgz *g = (struct pgz *)s;

	g->progress = fn;
	g->pctx = ctx;
}

void ep_pgunzip_sink_free(struct ep_sink *s)
{
	if (!s)
		return;
	ep_sink_release(s);
	free(s);
}
