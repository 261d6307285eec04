/* lib/parallel.h - a loop over independent items spread over a few threads
 * (verify's layers, the first run's unpack of missing layers, a pull's and
 * a push's blobs). */
#ifndef EP_PARALLEL_H
#define EP_PARALLEL_H

#include <stddef.h>

/* Calls fn(ctx, i) once for each i in [0, n), items started in index order,
 * on up to `threads` threads: the caller's thread is one of them, and a
 * thread that cannot be created only means fewer.  fn must be safe to run
 * concurrently for different i.  With stop_on_error, once a call returns
 * < 0 no further item is started (those already running finish).  Returns
 * how many items were started. */
size_t ep_parallel_for(size_t n, int threads, int stop_on_error, int (*fn)(void *ctx, size_t i),
		       void *ctx);

/* ep_parallel_for with a state of each thread's own, kept over the items
 * it runs (a registry connection): init(ctx) makes it when the thread
 * starts (it may return NULL: fn sees that), fini(state) ends it. */
struct ep_parallel_state {
	void *(*init)(void *ctx);
	void (*fini)(void *state);
	int (*fn)(void *ctx, void *state, size_t i);
};
size_t ep_parallel_for_state(size_t n, int threads, int stop_on_error,
			     const struct ep_parallel_state *ps, void *ctx);

#endif
