/* lib/trace.c - start-latency marks (lib/trace.h). */
#include "trace.h"

#include <time.h>

static struct {
	const char *what;
	uint64_t ns;
} marks[EP_TRACE_MAX];
static size_t n_marks;
static uint64_t origin;
static int on;

uint64_t ep_trace_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ep_trace_enable(uint64_t origin_ns)
{
	origin = origin_ns ? origin_ns : ep_trace_now();
	on = 1;
}

int ep_trace_on(void)
{
	return on;
}

void ep_trace_mark(const char *what)
{
	if (!on || n_marks >= EP_TRACE_MAX)
		return;
	marks[n_marks].what = what;
	marks[n_marks].ns = ep_trace_now();
	n_marks++;
}

uint64_t ep_trace_origin(void)
{
	return origin;
}

size_t ep_trace_count(void)
{
	return n_marks;
}

const char *ep_trace_get(size_t i, uint64_t *ns)
{
	if (i >= n_marks)
		return NULL;
	*ns = marks[i].ns;
	return marks[i].what;
}
