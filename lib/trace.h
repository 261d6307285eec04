/* lib/trace.h - start-latency marks: where the milliseconds of a command
 * go, without strace (ENVPIN_TRACE_START, docs/run.md).  The library only
 * records (a fixed table, no allocation, one branch when off); cmd/ prints.
 * Times are CLOCK_REALTIME, so that a shell's $EPOCHREALTIME taken before
 * the exec can serve as the origin. */
#ifndef EP_TRACE_H
#define EP_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define EP_TRACE_MAX 64

/* Turns recording on.  origin_ns: the moment the marks are measured from
 * (0: now). */
void ep_trace_enable(uint64_t origin_ns);
/* 1 when recording. */
int ep_trace_on(void);
/* Records "what happened by now"; what must be a string literal (it is
 * kept, not copied).  A no-op when off or when the table is full. */
void ep_trace_mark(const char *what);
/* The origin, the number of marks, and mark i (its name, its time). */
uint64_t ep_trace_origin(void);
size_t ep_trace_count(void);
const char *ep_trace_get(size_t i, uint64_t *ns);
/* CLOCK_REALTIME in nanoseconds. */
uint64_t ep_trace_now(void);

#endif
