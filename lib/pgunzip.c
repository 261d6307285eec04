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
	/* ep_pgunzip_run_mapped: progress hears how much was inflated */
	void (*progress)(void *ctx, uint64_t in_done);
	void *pctx;
	bool broken, finished;
	struct mrun *mrun; /* during ep_pgunzip_run_mapped */

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

/* ---- a mapped stream: chunks inflated by every thread, emitted in order ----
 *
 * The compressed bytes are cut into chunks of MCHUNK.  A job inflates the
 * members that start in its chunk, back to back, into a buffer of its own;
 * it finds the first of them by trying candidate headers from the chunk's
 * start: one counts when its member inflates (CRC and size checked by
 * libdeflate) and is followed by another header or the stream's end.  The
 * jobs' buffers are passed to `next` in stream order by whichever thread
 * finds the next one done (one at a time), from the buffer itself.  A job
 * is taken as it is only when its first member starts where the previous
 * job's last member ended; otherwise (a false candidate, a member longer
 * than a chunk, a job that stopped early) its members are inflated again
 * from the true position, in order.  A member that will not inflate there
 * sends the rest of the stream to the sequential decompressor, as above. */

#define MCHUNK ((size_t)512 << 10)	/* compressed bytes per job */
#define MEMBER_CAP ((size_t)8 << 20)	/* a member inflating to more: sequential */
#define JOB_OUT_SOFT ((size_t)24 << 20) /* a job stops after this much output */
#define MIN_ROOM ((size_t)2 << 20)	/* free output space tried first per member */
#define NONE SIZE_MAX

enum { JOB_FREE, JOB_RUNNING, JOB_DONE };

struct mjob {
	int state;
	size_t k;	   /* chunk index */
	size_t first, end; /* first member found (NONE) and the end of the last one */
	bool bad;	   /* stopped at `end` on a member that did not inflate */
	unsigned char *out;
	size_t out_n, out_cap;
};

struct mrun {
	const unsigned char *map;
	size_t len, n_chunks;
	struct mjob *jobs;
	size_t n_jobs;
	size_t next_k, emit_k; /* next chunk to start, next to emit */
	size_t pos;	       /* where the emitted members end */
	bool emitting, failed;
	int active; /* helpers inside mapped_work */
	struct ep_error err;
	pthread_cond_t cv;
};

/* Inflates the member at q into j's buffer after out_n, growing it as
 * needed: 1 and *used, or 0 (invalid, truncated, or more than MEMBER_CAP
 * of output, or out of memory). */
static int member_into(struct libdeflate_decompressor *ld, const struct mrun *m, size_t q,
		       struct mjob *j, size_t *used)
{
	size_t room = MIN_ROOM;

	for (;;) {
		size_t n = 0;
		enum libdeflate_result r;

		if (j->out_cap - j->out_n < room) {
			size_t cap = j->out_n + room;
			unsigned char *p = realloc(j->out, cap);

			if (!p)
				return 0;
			j->out = p;
			j->out_cap = cap;
		}
		r = libdeflate_gzip_decompress_ex(ld, m->map + q, m->len - q, j->out + j->out_n,
						  j->out_cap - j->out_n, used, &n);
		if (r == LIBDEFLATE_SUCCESS) {
			j->out_n += n;
			return 1;
		}
		if (r != LIBDEFLATE_INSUFFICIENT_SPACE || room >= MEMBER_CAP)
			return 0;
		room *= 4;
		if (room > MEMBER_CAP)
			room = MEMBER_CAP;
	}
}

/* Members back to back from q while they start before hi. */
static void members_from(struct libdeflate_decompressor *ld, const struct mrun *m, size_t q,
			 size_t hi, struct mjob *j)
{
	while (q < hi && j->out_n < JOB_OUT_SOFT) {
		size_t used = 0;

		if (!member_into(ld, m, q, j, &used)) {
			j->bad = true;
			break;
		}
		q += used;
	}
	j->end = q;
}

static void inflate_job(struct libdeflate_decompressor *ld, const struct mrun *m, struct mjob *j)
{
	size_t lo = j->k * MCHUNK, hi = lo + MCHUNK < m->len ? lo + MCHUNK : m->len;

	j->out_n = 0;
	j->bad = false;
	j->first = NONE;
	j->end = lo;
	if (lo == 0) {
		j->first = 0;
		members_from(ld, m, 0, hi, j);
		return;
	}
	for (size_t p = lo; p + 4 <= m->len && p < hi;) {
		const unsigned char *q = memchr(m->map + p, 0x1f, hi - p);
		size_t used = 0, e;

		if (!q)
			break;
		p = (size_t)(q - m->map);
		if (p + 4 > m->len)
			break;
		if (is_candidate(q) && member_into(ld, m, p, j, &used)) {
			e = p + used;
			if (e == m->len || (e + 4 <= m->len && is_candidate(m->map + e))) {
				j->first = p;
				members_from(ld, m, e, hi, j);
				return;
			}
		}
		j->out_n = 0;
		p++;
	}
}

/* The rest of the stream from pos to the sequential decompressor. */
static int mapped_fallback(struct pgz *g, struct mrun *m, struct ep_error *err)
{
	g->fallback =
	    ep_decompress_sink_new(EP_COMPRESS_GZIP, g->max_out - g->total_out, g->base.next, err);
	if (!g->fallback)
		return -1;
	while (m->pos < m->len) {
		size_t n = m->len - m->pos < MCHUNK ? m->len - m->pos : MCHUNK;

		if (ep_sink_write(g->fallback, m->map + m->pos, n, err) < 0)
			return -1;
		m->pos += n;
		if (g->progress)
			g->progress(g->pctx, m->pos);
	}
	return 0;
}

/* Passes job j (chunk k) on, in order: as it is when it starts at pos,
 * else inflated again from pos.  1 when the fallback took the rest. */
static int emit_job(struct pgz *g, struct mrun *m, struct mjob *j,
		    struct libdeflate_decompressor *ld, struct ep_error *err)
{
	size_t hi = (j->k + 1) * MCHUNK < m->len ? (j->k + 1) * MCHUNK : m->len;

	if (m->pos >= hi)
		return 0; /* the previous members reach past this chunk */
	if (j->first != m->pos) {
		j->out_n = 0;
		j->bad = false;
		members_from(ld, m, m->pos, hi, j);
	}
	for (;;) {
		if (j->out_n > 0 && emit(g, j->out, j->out_n, err) < 0)
			return -1;
		m->pos = j->end;
		if (g->progress)
			g->progress(g->pctx, m->pos);
		if (j->bad)
			return mapped_fallback(g, m, err) < 0 ? -1 : 1;
		if (m->pos >= hi)
			return 0;
		/* stopped at JOB_OUT_SOFT: the rest of the chunk */
		j->out_n = 0;
		members_from(ld, m, m->pos, hi, j);
	}
}

static void mapped_work(struct pgz *g, struct mrun *m, struct libdeflate_decompressor *ld)
{
	pthread_mutex_lock(&g->mu);
	while (!m->failed && m->emit_k < m->n_chunks) {
		struct mjob *j = &m->jobs[m->emit_k % m->n_jobs];

		if (!m->emitting && j->state == JOB_DONE && j->k == m->emit_k) {
			struct ep_error e = EP_ERROR_INIT;
			int rc;

			m->emitting = true;
			pthread_mutex_unlock(&g->mu);
			rc = emit_job(g, m, j, ld, &e);
			pthread_mutex_lock(&g->mu);
			m->emitting = false;
			j->state = JOB_FREE;
			if (rc < 0) {
				m->err = e;
				m->failed = true;
			} else if (rc > 0) {
				m->emit_k = m->n_chunks;
			} else {
				m->emit_k++;
			}
			pthread_cond_broadcast(&m->cv);
			continue;
		}
		if (m->next_k < m->n_chunks && m->next_k < m->emit_k + m->n_jobs) {
			j = &m->jobs[m->next_k % m->n_jobs];
			j->k = m->next_k++;
			j->state = JOB_RUNNING;
			pthread_mutex_unlock(&g->mu);
			inflate_job(ld, m, j);
			pthread_mutex_lock(&g->mu);
			j->state = JOB_DONE;
			pthread_cond_broadcast(&m->cv);
			continue;
		}
		pthread_cond_wait(&m->cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
}

static void *mapped_helper(void *arg)
{
	struct helper_arg *a = arg;
	struct pgz *g = a->g;

	mapped_work(g, g->mrun, g->ld[a->idx]);
	pthread_mutex_lock(&g->mu);
	g->mrun->active--;
	pthread_cond_broadcast(&g->mrun->cv);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int ep_pgunzip_run_mapped(struct ep_sink *s, const void *data, size_t len, struct ep_error *err)
{
	struct pgz *g = (struct pgz *)s;
	struct helper_arg args[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	struct mrun m;
	int n_th = 0, rc = -1;

	if (g->broken || g->finished || g->total_in != 0 || g->fallback)
		return ep_error_set(err, EP_EINVAL,
				    "gzip: a mapped stream must be the whole stream");
	if (len == 0)
		return pgz_finish(s, err);
	g->total_in = len;
	g->finished = true;
	memset(&m, 0, sizeof(m));
	m.map = data;
	m.len = len;
	m.n_chunks = (len + MCHUNK - 1) / MCHUNK;
	m.n_jobs = (size_t)(g->n_threads + 1) + 2;
	ep_error_clear(&m.err);
	pthread_cond_init(&m.cv, NULL);
	m.jobs = ep_calloc(m.n_jobs, sizeof(*m.jobs), err);
	if (!m.jobs)
		goto out;
	g->mrun = &m;
	/* the sink's round helpers stay parked; the mapped run has its own */
	for (int i = 1; i <= g->n_threads; i++) {
		int e;

		args[n_th].g = g;
		args[n_th].idx = i;
		e = pthread_create(&th[n_th], NULL, mapped_helper, &args[n_th]);
		if (e != 0)
			break; /* fewer helpers: still correct */
		pthread_mutex_lock(&g->mu);
		m.active++;
		pthread_mutex_unlock(&g->mu);
		n_th++;
	}
	mapped_work(g, &m, g->ld[0]);
	pthread_mutex_lock(&g->mu);
	while (m.active > 0)
		pthread_cond_wait(&m.cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	for (int i = 0; i < n_th; i++)
		pthread_join(th[i], NULL);
	g->mrun = NULL;
	if (m.failed) {
		*err = m.err;
		goto out;
	}
	if (g->fallback)
		rc = ep_sink_finish(g->fallback, err);
	else
		rc = ep_sink_finish(s->next, err);
out:
	if (m.jobs)
		for (size_t i = 0; i < m.n_jobs; i++)
			free(m.jobs[i].out);
	free(m.jobs);
	pthread_cond_destroy(&m.cv);
	if (rc < 0)
		g->broken = true;
	return rc;
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
