#include "async_sink.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SLOTS 4
#define SLOT_SIZE ((size_t)1 << 20)

struct async_sink {
	struct ep_sink base;
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t ready; /* a slot was queued, or done/abort was set */
	pthread_cond_t freed; /* the worker gave a slot back, or failed */
	unsigned char *buf[SLOTS];
	size_t len[SLOTS];
	size_t head, count; /* queued slots: head .. head + count - 1 */
	size_t cur, fill;   /* the slot the writer fills (not queued yet) */
	bool done, abort, failed;
	struct ep_error werr; /* next's error; written before failed is set */
};

static void *worker(void *arg)
{
	struct async_sink *a = arg;

	for (;;) {
		size_t idx;
		bool skip;

		pthread_mutex_lock(&a->mu);
		while (a->count == 0 && !a->done && !a->abort)
			pthread_cond_wait(&a->ready, &a->mu);
		if (a->abort || a->count == 0) {
			pthread_mutex_unlock(&a->mu);
			return NULL;
		}
		idx = a->head;
		skip = a->failed;
		pthread_mutex_unlock(&a->mu);
		if (!skip && ep_sink_write(a->base.next, a->buf[idx], a->len[idx], &a->werr) < 0) {
			pthread_mutex_lock(&a->mu);
			a->failed = true;
			pthread_mutex_unlock(&a->mu);
		}
		pthread_mutex_lock(&a->mu);
		a->head = (a->head + 1) % SLOTS;
		a->count--;
		pthread_cond_signal(&a->freed);
		pthread_mutex_unlock(&a->mu);
	}
}

static int worker_error(struct async_sink *a, struct ep_error *err)
{
	if (err)
		*err = a->werr;
	return -1;
}

/* Queues the slot being filled and waits for a free one. */
static int push_slot(struct async_sink *a, struct ep_error *err)
{
	bool failed;

	pthread_mutex_lock(&a->mu);
	a->len[a->cur] = a->fill;
	a->count++;
	pthread_cond_signal(&a->ready);
	while (a->count == SLOTS && !a->failed)
		pthread_cond_wait(&a->freed, &a->mu);
	a->cur = (a->head + a->count) % SLOTS;
	a->fill = 0;
	failed = a->failed;
	pthread_mutex_unlock(&a->mu);
	return failed ? worker_error(a, err) : 0;
}

static int async_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct async_sink *a = (struct async_sink *)s;
	const unsigned char *p = buf;
	bool failed;

	pthread_mutex_lock(&a->mu);
	failed = a->failed;
	pthread_mutex_unlock(&a->mu);
	if (failed)
		return worker_error(a, err);
	while (len > 0) {
		size_t n = SLOT_SIZE - a->fill;

		if (n > len)
			n = len;
		memcpy(a->buf[a->cur] + a->fill, p, n);
		a->fill += n;
		p += n;
		len -= n;
		if (a->fill == SLOT_SIZE && push_slot(a, err) < 0)
			return -1;
	}
	return 0;
}

static void stop(struct async_sink *a, bool abort)
{
	if (!a->started)
		return;
	pthread_mutex_lock(&a->mu);
	if (abort)
		a->abort = true;
	a->done = true;
	pthread_cond_signal(&a->ready);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->th, NULL);
	a->started = false;
}

static int async_finish(struct ep_sink *s, struct ep_error *err)
{
	struct async_sink *a = (struct async_sink *)s;

	if (a->fill > 0 && push_slot(a, err) < 0)
		return -1;
	stop(a, false);
	if (a->failed)
		return worker_error(a, err);
	return ep_sink_finish(s->next, err);
}

static void async_release(struct ep_sink *s)
{
	struct async_sink *a = (struct async_sink *)s;

	stop(a, true);
	for (size_t i = 0; i < SLOTS; i++) {
		free(a->buf[i]);
		a->buf[i] = NULL;
	}
	pthread_cond_destroy(&a->ready);
	pthread_cond_destroy(&a->freed);
	pthread_mutex_destroy(&a->mu);
}

struct ep_sink *ep_async_sink_new(struct ep_sink *next, struct ep_error *err)
{
	struct async_sink *a = ep_calloc(1, sizeof(*a), err);
	int rc;

	if (!a)
		return NULL;
	a->base.write = async_write;
	a->base.finish = async_finish;
	a->base.release = async_release;
	a->base.next = next;
	ep_error_clear(&a->werr);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->ready, NULL);
	pthread_cond_init(&a->freed, NULL);
	for (size_t i = 0; i < SLOTS; i++) {
		a->buf[i] = ep_malloc(SLOT_SIZE, err);
		if (!a->buf[i]) {
			async_release(&a->base);
			free(a);
			return NULL;
		}
	}
	rc = pthread_create(&a->th, NULL, worker, a);
	if (rc != 0) {
		ep_error_errno(err, EP_EENV, rc, "start a thread");
		async_release(&a->base);
		free(a);
		return NULL;
	}
	a->started = true;
	return &a->base;
}

void ep_async_sink_free(struct ep_sink *s)
{
	if (!s)
		return;
	ep_sink_release(s);
	free(s);
}

int ep_worker_cpus(void)
{
	const char *e = getenv("ENVPIN_THREADS");

	if (e && atoi(e) > 0)
		return atoi(e);
	return ep_ncpu();
}
