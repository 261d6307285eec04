/* lib/sink.h - byte sinks that chain: the one-pass writer of layers is
 *   tar -> hash(diff_id) -> compressor -> hash(digest) -> file
 * Each sink forwards to `next` (if any).  finish() flushes a sink's own
 * buffered state and then finishes `next`; after finish no more writes. */
#ifndef EP_SINK_H
#define EP_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"

struct ep_sink {
	int (*write)(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err);
	int (*finish)(struct ep_sink *s, struct ep_error *err);
	void (*release)(struct ep_sink *s); /* frees internal state, not next */
	struct ep_sink *next;
};

static inline int ep_sink_write(struct ep_sink *s, const void *buf, size_t len,
				struct ep_error *err)
{
	return s->write(s, buf, len, err);
}
int ep_sink_finish(struct ep_sink *s, struct ep_error *err);
/* Releases s (not its next); NULL-safe. */
void ep_sink_release(struct ep_sink *s);

/* Writes to an fd the caller owns; finish does not close or fsync it. */
struct ep_fd_sink {
	struct ep_sink base;
	int fd;
	uint64_t bytes;
};
void ep_fd_sink_init(struct ep_fd_sink *s, int fd);

/* Hashes and counts what passes through, then forwards to next (may be NULL:
 * a terminal hashing sink).  After finish, `digest` and `bytes` are set. */
struct ep_hash_sink {
	struct ep_sink base;
	struct ep_sha256 sha;
	uint64_t bytes;
	ep_digest digest;
};
int ep_hash_sink_init(struct ep_hash_sink *s, struct ep_sink *next, struct ep_error *err);

/* Collects into a growing memory buffer, at most max bytes. Caller frees data
 * (after release data is still owned by the caller if stolen). */
struct ep_mem_sink {
	struct ep_sink base;
	char *data;
	size_t len, cap, max;
};
void ep_mem_sink_init(struct ep_mem_sink *s, size_t max);

#endif
