/* Unit tests: lib/parallel.c, the one worker queue (verify's layers, the
 * first run's unpack, a pull's and a push's blobs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

#define N 200

struct run {
	pthread_mutex_t mu;
	int inits, finis;
	int done[N];	/* how often item i ran */
	size_t fail_at; /* an item that fails (N: none) */
};

struct state {
	struct run *r;
	int items; /* run with this state */
};

static void *st_init(void *ctx)
{
	struct run *r = ctx;
	struct state *s = calloc(1, sizeof(*s));

	pthread_mutex_lock(&r->mu);
	r->inits++;
	pthread_mutex_unlock(&r->mu);
	if (s)
		s->r = r;
	return s;
}

static void st_fini(void *state)
{
	struct state *s = state;

	pthread_mutex_lock(&s->r->mu);
	s->r->finis++;
	pthread_mutex_unlock(&s->r->mu);
	free(s);
}

static int st_item(void *ctx, void *state, size_t i)
{
	struct run *r = ctx;
	struct state *s = state;

	assert_non_null(s);
	s->items++;
	pthread_mutex_lock(&r->mu);
	r->done[i]++;
	pthread_mutex_unlock(&r->mu);
	return i == r->fail_at ? -1 : 0;
}

static const struct ep_parallel_state ps = {st_init, st_fini, st_item};

/* Every item once; one state a thread, made and ended once, never more
 * threads than asked for. */
static void test_state_per_thread(void **unused)
{
	static struct run r = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}, N};

	(void)unused;
	assert_int_equal(ep_parallel_for_state(N, 4, 0, &ps, &r), N);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(r.done[i], 1);
	assert_true(r.inits >= 1 && r.inits <= 4);
	assert_int_equal(r.inits, r.finis);
}

/* With stop_on_error, nothing starts after a failure (one thread: the
 * order is known); the state is still ended. */
static void test_stop_on_error(void **unused)
{
	static struct run r = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}, 10};

	(void)unused;
	assert_int_equal(ep_parallel_for_state(N, 1, 1, &ps, &r), 11);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(r.done[i], i <= 10);
	assert_int_equal(r.inits, 1);
	assert_int_equal(r.finis, 1);
}

static int count(void *ctx, size_t i)
{
	int *done = ctx;

	__atomic_add_fetch(&done[i], 1, __ATOMIC_RELAXED);
	return 0;
}

/* ep_parallel_for: the same queue without a state. */
static void test_plain(void **unused)
{
	static int done[N];

	(void)unused;
	assert_int_equal(ep_parallel_for(N, 2, 0, count, done), N);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(done[i], 1);
	assert_int_equal(ep_parallel_for(0, 2, 0, count, done), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_per_thread),
	    cmocka_unit_test(test_stop_on_error),
	    cmocka_unit_test(test_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
