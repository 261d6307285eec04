/* lib/parallel.h - a loop over independent items spread over a few threads
 * (verify's layers, the first run's unpack of missing layers). */
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

#endif
