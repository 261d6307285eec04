/* lib/parallel.c - see parallel.h. */
#include "parallel.h"

#include <pthread.h>
#include <stdlib.h>

struct queue {
	pthread_mutex_t mu;
	size_t n, next;
	int stop_on_error, failed;
	const struct ep_parallel_state *ps;
	void *ctx;
};

static void *worker(void *arg)
{
	struct queue *q = arg;
	void *state = q->ps->init ? q->ps->init(q->ctx) : NULL;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&q->mu);
		if (q->next >= q->n || (q->stop_on_error && q->failed)) {
			pthread_mutex_unlock(&q->mu);
			break;
		}
		i = q->next++;
		pthread_mutex_unlock(&q->mu);
		if (q->ps->fn(q->ctx, state, i) < 0) {
			pthread_mutex_lock(&q->mu);
			q->failed = 1;
			pthread_mutex_unlock(&q->mu);
		}
	}
	if (q->ps->fini)
		q->ps->fini(state);
	return NULL;
}

size_t ep_parallel_for_state(size_t n, int threads, int stop_on_error,
			     const struct ep_parallel_state *ps, void *ctx)
{
	struct queue q = {PTHREAD_MUTEX_INITIALIZER, n, 0, stop_on_error, 0, ps, ctx};
	size_t extra = threads > 1 ? (size_t)threads - 1 : 0, started = 0;
	pthread_t *th;

	if (extra >= n)
		extra = n ? n - 1 : 0;
	th = extra ? calloc(extra, sizeof(*th)) : NULL;
	for (size_t i = 0; th && i < extra; i++) {
		if (pthread_create(&th[started], NULL, worker, &q) != 0)
			break;
		started++;
	}
	worker(&q);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	pthread_mutex_destroy(&q.mu);
	return q.next;
}

/* ep_parallel_for's fn, without a state */
struct plain {
	int (*fn)(void *ctx, size_t i);
	void *ctx;
};

static int plain_fn(void *ctx, void *state, size_t i)
{
	const struct plain *p = ctx;

	(void)state;
	return p->fn(p->ctx, i);
}

size_t ep_parallel_for(size_t n, int threads, int stop_on_error, int (*fn)(void *ctx, size_t i),
		       void *ctx)
{
	static const struct ep_parallel_state ps = {NULL, NULL, plain_fn};
	struct plain p = {fn, ctx};

	return ep_parallel_for_state(n, threads, stop_on_error, &ps, &p);
}
