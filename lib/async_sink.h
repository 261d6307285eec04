/* lib/async_sink.h - a sink stage that runs in its own thread.
 *
 * Verifying or unpacking a big layer is a chain of CPU-bound stages (read +
 * SHA-256 of the blob, inflate, SHA-256 of the tar, tar extraction) that one
 * thread runs one after the other.  Put an async sink in front of a stage and
 * that stage (and everything after it, up to the next async sink) runs in a
 * worker thread while the writer goes on: on two cores the stages overlap.
 *
 * write() copies into one of a few fixed buffers and hands full ones to the
 * worker, which writes them to `next` in order; the writer waits only when
 * all buffers are queued.  An error of `next` stops the worker (later
 * buffers are dropped) and is returned by the next write() or by finish(),
 * with next's message and code.  finish() waits for the queue to drain, then
 * finishes `next` in the caller's thread.  Output is byte-for-byte what a
 * direct chain would get, in the same order. */
#ifndef EP_ASYNC_SINK_H
#define EP_ASYNC_SINK_H

#include "sink.h"

/* Starts the worker thread.  NULL on failure (err set).  Free with
 * ep_async_sink_free(), which stops the worker (without finishing next). */
struct ep_sink *ep_async_sink_new(struct ep_sink *next, struct ep_error *err);
void ep_async_sink_free(struct ep_sink *s);

/* The CPUs envpin's pipelines may use: ENVPIN_THREADS when set, else
 * ep_ncpu().  Callers go parallel when this is 2 or more.  Not the load
 * average: it counts envpin's own work of the last minute (a verify right
 * after a build ran sequentially, 29 s instead of 19 s on the reference
 * image), and on a machine busy with other work the scheduler shares the
 * cores anyway (docs/verify.md). */
int ep_worker_cpus(void);

#endif
