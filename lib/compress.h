/* lib/compress.h - layer compression and decompression as sinks.
 *
 * Compressed output is a pure function of (input bytes, kind, library
 * version, level, block size): never of the thread count.
 *  - gzip: the input is cut into fixed blocks of block_size bytes; each block
 *    becomes one gzip member (RFC 1952 allows concatenated members; Go,
 *    zlib's gzread, pigz, igzip and python read them).  Header: mtime 0, no
 *    name, XFL 0, OS 3.  Blocks are compressed with libdeflate, in parallel
 *    on `threads` threads, written in order.
 *  - zstd: libzstd with nbWorkers >= 1 (whose output libzstd documents as
 *    independent of the worker count), checksum off, no dictionary id.
 *  - none: bytes pass through unchanged.
 * The parameters go into the lock file (ep_compress_describe). */
#ifndef EP_COMPRESS_H
#define EP_COMPRESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sink.h"

enum ep_compression {
	EP_COMPRESS_NONE = 0,
	EP_COMPRESS_GZIP = 1,
	EP_COMPRESS_ZSTD = 2,
};

/* envpin's defaults (docs/compression.md says how they were chosen). */
#define EP_GZIP_DEFAULT_LEVEL 1
#define EP_GZIP_DEFAULT_BLOCK ((size_t)1 << 20)
#define EP_ZSTD_DEFAULT_LEVEL 3
#define EP_ZSTD_DEFAULT_BLOCK ((size_t)1 << 20)

struct ep_compress_params {
	enum ep_compression kind;
	int level;         /* library level; defaults per kind */
	size_t block_size; /* gzip: bytes per member; zstd: job size; none: 0 */
	int threads;       /* worker threads (never changes output) */
};

/* "gzip", "zstd", "none" -> kind.  EP_EINVAL on anything else. */
int ep_compression_parse(const char *name, enum ep_compression *out, struct ep_error *err);
const char *ep_compression_name(enum ep_compression kind);

/* OCI layer media type for kind ("application/vnd.oci.image.layer.v1.tar+gzip", ...). */
const char *ep_compression_media_type(enum ep_compression kind);

/* Maps a layer media type (OCI or Docker) to a kind; -1 if unknown. */
int ep_compression_from_media_type(const char *media_type);

/* Sniffs magic bytes (gzip 1f 8b, zstd 28 b5 2f fd); NONE otherwise. */
enum ep_compression ep_compression_detect(const void *buf, size_t len);

/* Fills p with envpin's defaults for kind; threads = ep_ncpu(). */
void ep_compress_defaults(enum ep_compression kind, struct ep_compress_params *p);

/* {"name","library","version","level","block_size"} for the lock file.
 * New reference. */
json_t *ep_compress_describe(const struct ep_compress_params *p, struct ep_error *err);

/* A sink that compresses what is written and forwards compressed bytes to
 * next.  finish() flushes and finishes next.  Free with ep_compress_sink_free. */
struct ep_sink *ep_compress_sink_new(const struct ep_compress_params *p, struct ep_sink *next,
				     struct ep_error *err);
void ep_compress_sink_free(struct ep_sink *s);

/* A sink that decompresses what is written (kind as given; gzip accepts
 * multiple members) and forwards the plain bytes to next.  More than
 * max_out decompressed bytes is an error (EP_EINVAL, "decompression bomb").
 * Corrupt input: EP_EMISMATCH with a message saying what is wrong. */
struct ep_sink *ep_decompress_sink_new(enum ep_compression kind, uint64_t max_out,
				       struct ep_sink *next, struct ep_error *err);
void ep_decompress_sink_free(struct ep_sink *s);

#endif
