/* lib/pgunzip.h - gzip decompression of multi-member streams on several cores.
 *
 * envpin's layers are gzip streams of independent members (one per 1 MiB
 * block, compress.c), the format of pigz --independent and bgzip.  Members
 * can be inflated at the same time if one knows where they start; the
 * stream has no index, so this sink guesses: every "1f 8b 08" with a valid
 * flags byte is a candidate start, the stretches between candidates are
 * inflated in parallel (libdeflate, which checks each member's CRC-32 and
 * size), and a stretch that is not exactly one member (a candidate inside
 * compressed data) is retried from its true start in order.  Output goes to
 * `next` in stream order, byte-for-byte what ep_decompress_sink gives.
 *
 * A stream this cannot take (a member larger than the batch, as in the
 * single-member layers most other tools write; invalid or truncated data)
 * is handed, from the start of the member in question, to
 * ep_decompress_sink_new(EP_COMPRESS_GZIP), whose messages then say what is
 * wrong (its member and byte counts start at that member).
 *
 * threads: workers including the writer's thread (2..8). */
#ifndef EP_PGUNZIP_H
#define EP_PGUNZIP_H

#include <stdint.h>

#include "sink.h"

struct ep_sink *ep_pgunzip_sink_new(uint64_t max_out, int threads, struct ep_sink *next,
				    struct ep_error *err);
void ep_pgunzip_sink_free(struct ep_sink *s);

/* The whole stream at once, from memory the caller keeps mapped (a blob's
 * mmap): the same output as one write of data and a finish.  Here the
 * stream is cut into 512 KiB chunks that every thread takes in turn: the
 * first true member of a chunk is found from its start (a candidate whose
 * member inflates with its CRC and is followed by another header or the
 * end), the members from there are inflated into the chunk's buffer, and
 * the thread that finds the next chunk in order done writes it to `next`
 * (so `next` runs in these threads, one at a time, in stream order).  A
 * chunk that does not start where the previous one ended is inflated again
 * from there; a member that will not inflate sends the rest to the
 * sequential decoder.  The sink must be fresh.  0, or -1 with *err set (the
 * sink is then broken). */
int ep_pgunzip_run_mapped(struct ep_sink *s, const void *data, size_t len, struct ep_error *err);

/* During ep_pgunzip_run_mapped, fn hears after each chunk how many
 * compressed bytes are inflated and passed on (from the thread that passed
 * them on; never two calls at once). */
void ep_pgunzip_set_progress(struct ep_sink *s, void (*fn)(void *ctx, uint64_t in_done), void *ctx);

#endif
