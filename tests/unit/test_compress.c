/* Unit tests: lib/compress (deterministic compression, streaming
 * decompression, media types). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress.h"
#include "digest.h"
#include "error.h"
#include "sink.h"
#include "util.h"

#define MIB ((size_t)1 << 20)
/* test_gzip_golden: the 3 MB input of mixed_data(3000000, 2024) and its
 * compression with the defaults (libdeflate 1.14, level 1, 1 MiB blocks) */
#define GOLDEN_IN "sha256:83b35df0eb6aec60fddc65f86a1b66f7c617984a65fab0886600d0b545a0dbe1"
#define GOLDEN_OUT "sha256:7d0a41ba2d67db53a71613773e9a3827602f20705b8b6e18655930fac1b82616"
#define OUT_MAX ((size_t)64 << 20)

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: fixed sequence on every platform */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rng_next(&s) >> 56);
}

/* Text-like data from a small vocabulary: compresses about 3-4x. */
static void fill_text(unsigned char *p, size_t n, uint64_t seed)
{
	static const char *words[] = {"lib",   "x86_64", "linux", "gnu", ".so", "\n",  "ELF",
				      "\x7f",  "\0\0\0", "symbol", "GLIBC_2.34", " ", "/usr/",
				      "torch", "cuda",   "fits",  "astro", "0123", "zz"};
	uint64_t s = seed | 1;
	size_t i = 0;

	while (i < n) {
		uint64_t r = rng_next(&s);
		const char *w = words[r % EP_ARRAY_SIZE(words)];
		size_t wl = strlen(w) ? strlen(w) : 1;

		if (r >> 60 == 0) { /* some noise, as in real binaries */
			p[i++] = (unsigned char)(r >> 32);
			continue;
		}
		for (size_t k = 0; k < wl && i < n; k++)
			p[i++] = (unsigned char)w[k];
	}
}

/* 5 MB alternating 64 KiB runs of random and compressible data. */
static unsigned char *mixed_data(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n ? n : 1);

	assert_non_null(p);
	for (size_t off = 0, k = 0; off < n; off += 65536, k++) {
		size_t m = n - off < 65536 ? n - off : 65536;

		if (k % 2)
			fill_random(p + off, m, seed + k);
		else
			fill_text(p + off, m, seed + k);
	}
	return p;
}

static struct ep_compress_params params(enum ep_compression kind, int threads)
{
	struct ep_compress_params p;

	ep_compress_defaults(kind, &p);
	p.threads = threads;
	return p;
}

/* Compresses data through the sink in writes of `chunk` bytes; returns the
 * compressed bytes (caller frees) and their length. */
static unsigned char *compress_buf(const struct ep_compress_params *p, const void *data, size_t len,
				   size_t chunk, size_t *out_len)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_mem_sink mem;
	struct ep_sink *c;
	const unsigned char *d = data;

	ep_mem_sink_init(&mem, OUT_MAX);
	c = ep_compress_sink_new(p, &mem.base, &err);
	if (!c)
		fail_msg("compress_sink_new: %s", err.msg);
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;

		if (ep_sink_write(c, d + off, n, &err) < 0)
			fail_msg("write: %s", err.msg);
	}
	if (ep_sink_finish(c, &err) < 0)
		fail_msg("finish: %s", err.msg);
	ep_compress_sink_free(c);
	*out_len = mem.len;
	return (unsigned char *)steal_pointer(&mem.data);
}

/* Decompresses in writes of `chunk` bytes; returns 0 or -1 with err set.
 * On success *out holds the plain bytes (caller frees). */
static int decompress_buf(enum ep_compression kind, const void *data, size_t len, size_t chunk,
			  uint64_t max_out, unsigned char **out, size_t *out_len,
			  struct ep_error *err)
{
	struct ep_mem_sink mem;
	struct ep_sink *d;
	const unsigned char *p = data;
	int rc = 0;

	ep_mem_sink_init(&mem, OUT_MAX);
	d = ep_decompress_sink_new(kind, max_out, &mem.base, err);
	assert_non_null(d);
	for (size_t off = 0; off < len && rc == 0; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;

		rc = ep_sink_write(d, p + off, n, err);
	}
	if (rc == 0)
		rc = ep_sink_finish(d, err);
	ep_decompress_sink_free(d);
	if (rc == 0 && out) {
		*out_len = mem.len;
		*out = (unsigned char *)steal_pointer(&mem.data);
	}
	ep_sink_release(&mem.base);
	return rc;
}

static void sha_of(const void *buf, size_t len, ep_digest d)
{
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(ep_sha256_buf(buf, len, d, &err), 0);
}

static void test_names_and_media_types(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	enum ep_compression k;

	(void)state;
	assert_int_equal(ep_compression_parse("gzip", &k, &err), 0);
	assert_int_equal(k, EP_COMPRESS_GZIP);
	assert_int_equal(ep_compression_parse("zstd", &k, &err), 0);
	assert_int_equal(k, EP_COMPRESS_ZSTD);
	assert_int_equal(ep_compression_parse("none", &k, &err), 0);
	assert_int_equal(k, EP_COMPRESS_NONE);
	assert_int_equal(ep_compression_parse("xz", &k, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "'xz'"));
	assert_string_equal(ep_compression_name(EP_COMPRESS_ZSTD), "zstd");

	assert_string_equal(ep_compression_media_type(EP_COMPRESS_NONE),
			    "application/vnd.oci.image.layer.v1.tar");
	assert_string_equal(ep_compression_media_type(EP_COMPRESS_GZIP),
			    "application/vnd.oci.image.layer.v1.tar+gzip");
	assert_string_equal(ep_compression_media_type(EP_COMPRESS_ZSTD),
			    "application/vnd.oci.image.layer.v1.tar+zstd");
	for (int kind = 0; kind <= 2; kind++)
		assert_int_equal(ep_compression_from_media_type(
					 ep_compression_media_type((enum ep_compression)kind)),
				 kind);
	assert_int_equal(
		ep_compression_from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
		EP_COMPRESS_GZIP);
	assert_int_equal(ep_compression_from_media_type("application/vnd.docker.image.rootfs.diff.tar"),
			 EP_COMPRESS_NONE);
	assert_int_equal(ep_compression_from_media_type("application/vnd.oci.image.config.v1+json"),
			 -1);
	assert_int_equal(ep_compression_from_media_type(NULL), -1);

	assert_int_equal(ep_compression_detect("\x1f\x8b\x08", 3), EP_COMPRESS_GZIP);
	assert_int_equal(ep_compression_detect("\x28\xb5\x2f\xfd\x00", 5), EP_COMPRESS_ZSTD);
	assert_int_equal(ep_compression_detect("\x28\xb5\x2f", 3), EP_COMPRESS_NONE);
	assert_int_equal(ep_compression_detect("\x1f", 1), EP_COMPRESS_NONE);
	assert_int_equal(ep_compression_detect("usr/", 4), EP_COMPRESS_NONE);
}

static void test_describe(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_compress_params p;
	json_t *j;

	(void)state;
	ep_compress_defaults(EP_COMPRESS_GZIP, &p);
	j = ep_compress_describe(&p, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "gzip");
	assert_string_equal(json_string_value(json_object_get(j, "library")), "libdeflate");
	assert_string_equal(json_string_value(json_object_get(j, "version")), "1.14");
	assert_int_equal(json_integer_value(json_object_get(j, "level")), EP_GZIP_DEFAULT_LEVEL);
	assert_int_equal(json_integer_value(json_object_get(j, "block_size")), MIB);
	assert_int_equal(json_object_size(j), 5);
	json_decref(j);

	ep_compress_defaults(EP_COMPRESS_ZSTD, &p);
	j = ep_compress_describe(&p, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "library")), "libzstd");
	assert_non_null(strchr(json_string_value(json_object_get(j, "version")), '.'));
	assert_int_equal(json_integer_value(json_object_get(j, "level")), 3);
	json_decref(j);

	ep_compress_defaults(EP_COMPRESS_NONE, &p);
	j = ep_compress_describe(&p, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "library")), "");
	assert_int_equal(json_integer_value(json_object_get(j, "block_size")), 0);
	json_decref(j);

	ep_compress_defaults(EP_COMPRESS_GZIP, &p);
	p.level = 13;
	assert_null(ep_compress_describe(&p, &err));
	assert_int_equal(err.code, EP_EINVAL);
	ep_compress_defaults(EP_COMPRESS_ZSTD, &p);
	p.block_size = 4096; /* below libzstd's job size minimum */
	assert_null(ep_compress_sink_new(&p, NULL, &err));
	assert_int_equal(err.code, EP_EINVAL);
}

static void roundtrip_one(enum ep_compression kind, const unsigned char *data, size_t len)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_compress_params p = params(kind, 2);
	unsigned char *z, *back = NULL;
	size_t zlen, blen = 0;

	/* odd write sizes cross block boundaries at every offset class */
	z = compress_buf(&p, data, len, 77777, &zlen);
	if (kind != EP_COMPRESS_NONE)
		assert_int_equal(ep_compression_detect(z, zlen), kind);
	else
		assert_memory_equal(z, data, len);
	if (decompress_buf(kind, z, zlen, 4099, len + 1, &back, &blen, &err) < 0)
		fail_msg("%s, %zu bytes: %s", ep_compression_name(kind), len, err.msg);
	assert_int_equal(blen, len);
	if (len)
		assert_memory_equal(back, data, len);
	free(back);
	free(z);
}

static void test_roundtrip(void **state)
{
	const size_t sizes[] = {0, 1, MIB, MIB + 1, 5 * 1000 * 1000};
	unsigned char *data = mixed_data(5 * 1000 * 1000, 42);

	(void)state;
	for (int kind = 0; kind <= 2; kind++)
		for (size_t i = 0; i < EP_ARRAY_SIZE(sizes); i++)
			roundtrip_one((enum ep_compression)kind, data, sizes[i]);
	free(data);
}

/* Every member starts with the fixed header of compress.h, and the member
 * count is ceil(len / block) (one for empty input). */
static void test_gzip_members(void **state)
{
	struct ep_compress_params p = params(EP_COMPRESS_GZIP, 4);
	static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
	size_t len = 3 * MIB + 5, zlen;
	unsigned char *data = mixed_data(len, 7);
	unsigned char *z = compress_buf(&p, data, len, MIB / 3, &zlen);
	int members = 0;

	(void)state;
	/* each member must equal that block compressed on its own */
	for (size_t off = 0, plain = 0; off < zlen; members++) {
		struct ep_compress_params q = params(EP_COMPRESS_GZIP, 1);
		size_t blk = len - plain < MIB ? len - plain : MIB, ql;
		unsigned char *alone = compress_buf(&q, data + plain, blk, blk, &ql);

		assert_memory_equal(z + off, hdr, sizeof(hdr));
		assert_true(off + ql <= zlen);
		assert_memory_equal(z + off, alone, ql);
		off += ql;
		plain += blk;
		free(alone);
	}
	assert_int_equal(members, 4);
	free(z);

	z = compress_buf(&p, "", 0, 1, &zlen);
	/* header, an empty final block, crc, isize */
	assert_true(zlen >= 20 && zlen <= 24);
	assert_memory_equal(z, hdr, sizeof(hdr));
	free(z);
	free(data);
}

static void test_thread_independence(void **state)
{
	size_t len = 5 * 1000 * 1000;
	unsigned char *data = mixed_data(len, 99);
	const int gz_threads[] = {1, 2, 4, 8};
	const int zs_threads[] = {1, 4};
	ep_digest first, d;

	(void)state;
	for (size_t i = 0; i < EP_ARRAY_SIZE(gz_threads); i++) {
		struct ep_compress_params p = params(EP_COMPRESS_GZIP, gz_threads[i]);
		size_t zlen;
		/* vary the write size too: output must not depend on it */
		unsigned char *z = compress_buf(&p, data, len, i == 0 ? len : 1000 + 3000 * i, &zlen);

		sha_of(z, zlen, i == 0 ? first : d);
		if (i > 0 && strcmp(first, d) != 0)
			fail_msg("gzip threads=%d: %s != threads=1: %s", gz_threads[i], d, first);
		free(z);
	}
	for (size_t i = 0; i < EP_ARRAY_SIZE(zs_threads); i++) {
		struct ep_compress_params p = params(EP_COMPRESS_ZSTD, zs_threads[i]);
		size_t zlen;
		unsigned char *z = compress_buf(&p, data, len, i == 0 ? len : 12345, &zlen);

		sha_of(z, zlen, i == 0 ? first : d);
		if (i > 0 && strcmp(first, d) != 0)
			fail_msg("zstd workers=%d: %s != workers=1: %s", zs_threads[i], d, first);
		free(z);
	}
	free(data);
}

/* Pins the bytes of the default gzip output: a libdeflate upgrade or a
 * change of defaults that alters layer digests must be noticed here. */
static void test_gzip_golden(void **state)
{
	size_t len = 3 * 1000 * 1000, zlen;
	unsigned char *data = mixed_data(len, 2024);
	struct ep_compress_params p = params(EP_COMPRESS_GZIP, 2);
	unsigned char *z = compress_buf(&p, data, len, 65536, &zlen);
	ep_digest in, out;

	(void)state;
	assert_int_equal(p.level, 1);
	assert_int_equal(p.block_size, MIB);
	sha_of(data, len, in);
	sha_of(z, zlen, out);
	assert_string_equal(in, GOLDEN_IN);
	assert_string_equal(out, GOLDEN_OUT);
	free(z);
	free(data);
}

/* The system's gzip and zstd read what we write. */
static void test_system_tools(void **state)
{
	const struct {
		enum ep_compression kind;
		const char *cmd;
	} tools[] = {{EP_COMPRESS_GZIP, "gzip -dc"}, {EP_COMPRESS_ZSTD, "zstd -q -dc"}};
	size_t len = 2 * MIB + 3;
	unsigned char *data = mixed_data(len, 5);
	ep_digest want;

	(void)state;
	sha_of(data, len, want);
	for (size_t i = 0; i < EP_ARRAY_SIZE(tools); i++) {
		struct ep_compress_params p = params(tools[i].kind, 2);
		char path[] = "/tmp/test_compress.XXXXXX";
		char cmd[256];
		struct ep_sha256 sha;
		struct ep_error err = EP_ERROR_INIT;
		unsigned char buf[65536];
		size_t zlen, n, total = 0;
		unsigned char *z = compress_buf(&p, data, len, 100000, &zlen);
		int fd = mkstemp(path);
		FILE *f;
		ep_digest got;

		assert_true(fd >= 0);
		assert_int_equal(ep_write_all(fd, z, zlen, &err), 0);
		close(fd);
		snprintf(cmd, sizeof(cmd), "%s < '%s'", tools[i].cmd, path);
		f = popen(cmd, "r");
		assert_non_null(f);
		assert_int_equal(ep_sha256_init(&sha, &err), 0);
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
			ep_sha256_update(&sha, buf, n);
			total += n;
		}
		ep_sha256_final(&sha, got);
		assert_int_equal(pclose(f), 0);
		unlink(path);
		assert_int_equal(total, len);
		assert_string_equal(got, want);
		free(z);
	}
	free(data);
}

static void expect_mismatch(enum ep_compression kind, const unsigned char *z, size_t zlen,
			    const char *needle)
{
	struct ep_error err = EP_ERROR_INIT;
	/* whole buffer at once and byte-dribbled: same verdict */
	const size_t chunks[] = {zlen ? zlen : 1, 1};

	for (size_t i = 0; i < EP_ARRAY_SIZE(chunks); i++) {
		ep_error_clear(&err);
		if (decompress_buf(kind, z, zlen, chunks[i], OUT_MAX, NULL, NULL, &err) == 0)
			fail_msg("%s: %zu bytes accepted, expected '%s'", ep_compression_name(kind),
				 zlen, needle);
		assert_int_equal(err.code, EP_EMISMATCH);
		if (!strstr(err.msg, needle))
			fail_msg("%s: '%s' lacks '%s'", ep_compression_name(kind), err.msg, needle);
	}
}

static void test_corrupt_and_truncated(void **state)
{
	size_t len = MIB + 4321;
	unsigned char *data = mixed_data(len, 11);

	(void)state;
	for (int kind = EP_COMPRESS_GZIP; kind <= EP_COMPRESS_ZSTD; kind++) {
		struct ep_compress_params p = params((enum ep_compression)kind, 2);
		const char *name = ep_compression_name((enum ep_compression)kind);
		char want[64];
		size_t zlen;
		unsigned char *z = compress_buf(&p, data, len, len, &zlen);

		/* gzip: any flipped byte fails (crc32 per member).  zstd
		 * frames carry no checksum (the layer digests are the
		 * check), so only structure is verified: corrupt the frame
		 * header's reserved bit. */
		size_t at = kind == EP_COMPRESS_GZIP ? zlen / 3 : 4;
		unsigned char flip = kind == EP_COMPRESS_GZIP ? 0x55 : 0x08;

		z[at] ^= flip;
		snprintf(want, sizeof(want), "%s: invalid data", name);
		expect_mismatch((enum ep_compression)kind, z, zlen, want);
		z[at] ^= flip;
		if (kind == EP_COMPRESS_GZIP) {
			/* a bad crc32 or isize in the trailer */
			z[zlen - 5] ^= 1;
			expect_mismatch((enum ep_compression)kind, z, zlen, "gzip: invalid data");
			z[zlen - 5] ^= 1;
			z[zlen - 1] ^= 1;
			expect_mismatch((enum ep_compression)kind, z, zlen, "gzip: invalid data");
			z[zlen - 1] ^= 1;
		}

		snprintf(want, sizeof(want), "%s: truncated", name);
		expect_mismatch((enum ep_compression)kind, z, zlen - 1, want);
		expect_mismatch((enum ep_compression)kind, z, zlen / 2, want);
		expect_mismatch((enum ep_compression)kind, z, 3, want);
		expect_mismatch((enum ep_compression)kind, z, 0, want);
		free(z);
	}
	free(data);
}

static void test_trailing_garbage(void **state)
{
	struct ep_compress_params p = params(EP_COMPRESS_GZIP, 1);
	size_t len = 1000, zlen;
	unsigned char *data = mixed_data(len, 3);
	unsigned char *z = compress_buf(&p, data, len, len, &zlen);
	unsigned char *zz = malloc(zlen + 512);
	struct ep_compress_params q = params(EP_COMPRESS_ZSTD, 1);
	unsigned char *y;
	size_t ylen;

	(void)state;
	assert_non_null(zz);
	memcpy(zz, z, zlen);
	memset(zz + zlen, 0, 512); /* tar-style zero padding */
	expect_mismatch(EP_COMPRESS_GZIP, zz, zlen + 512, "garbage after member 1");
	memcpy(zz + zlen, "hello", 5);
	expect_mismatch(EP_COMPRESS_GZIP, zz, zlen + 5, "garbage after member 1");
	/* a lone magic byte after the member is a truncated second member */
	zz[zlen] = 0x1f;
	expect_mismatch(EP_COMPRESS_GZIP, zz, zlen + 1, "gzip: truncated");

	y = compress_buf(&q, data, len, len, &ylen);
	y = realloc(y, ylen + 16);
	assert_non_null(y);
	memset(y + ylen, 0, 16);
	expect_mismatch(EP_COMPRESS_ZSTD, y, ylen + 16, "zstd: invalid data");
	free(y);
	free(zz);
	free(z);
	free(data);
}

/* Members and frames written by others concatenate too. */
static void test_concatenated_streams(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	size_t len = 300000;
	unsigned char *data = mixed_data(2 * len, 8);

	(void)state;
	for (int kind = EP_COMPRESS_GZIP; kind <= EP_COMPRESS_ZSTD; kind++) {
		struct ep_compress_params p = params((enum ep_compression)kind, 1);
		size_t al, bl, blen;
		unsigned char *a = compress_buf(&p, data, len, len, &al);
		unsigned char *b = compress_buf(&p, data + len, len, len, &bl);
		unsigned char *ab = malloc(al + bl), *back;

		assert_non_null(ab);
		memcpy(ab, a, al);
		memcpy(ab + al, b, bl);
		for (size_t chunk = 1; chunk <= al + bl; chunk *= 37) {
			back = NULL;
			if (decompress_buf((enum ep_compression)kind, ab, al + bl, chunk, OUT_MAX, &back,
					   &blen, &err) < 0)
				fail_msg("chunk %zu: %s", chunk, err.msg);
			assert_int_equal(blen, 2 * len);
			assert_memory_equal(back, data, 2 * len);
			free(back);
		}
		free(ab);
		free(a);
		free(b);
	}
	free(data);
}

static void test_bomb_cap(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	size_t len = 4 * MIB, zlen;
	unsigned char *zeros = calloc(1, len), *back;

	(void)state;
	assert_non_null(zeros);
	for (int kind = 0; kind <= 2; kind++) {
		struct ep_compress_params p = params((enum ep_compression)kind, 2);
		unsigned char *z = compress_buf(&p, zeros, len, len, &zlen);

		ep_error_clear(&err);
		assert_int_equal(decompress_buf((enum ep_compression)kind, z, zlen, 65536, len - 1,
						NULL, NULL, &err),
				 -1);
		assert_int_equal(err.code, EP_EINVAL);
		assert_non_null(strstr(err.msg, "decompression bomb: more than 4194303 bytes"));
		/* exactly at the cap is fine */
		back = NULL;
		assert_int_equal(decompress_buf((enum ep_compression)kind, z, zlen, 65536, len,
						&back, &zlen, &err),
				 0);
		assert_int_equal(zlen, len);
		free(back);
		free(z);
	}
	free(zeros);
}

static void test_write_after_finish(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_compress_params p = params(EP_COMPRESS_GZIP, 2);
	struct ep_mem_sink mem;
	struct ep_sink *c;

	(void)state;
	ep_mem_sink_init(&mem, 100); /* too small: the next sink fails */
	c = ep_compress_sink_new(&p, &mem.base, &err);
	assert_non_null(c);
	assert_int_equal(ep_sink_write(c, "abc", 3, &err), 0);
	assert_int_equal(ep_sink_finish(c, &err), 0);
	assert_int_equal(ep_sink_write(c, "abc", 3, &err), -1);
	assert_non_null(strstr(err.msg, "after finish"));
	ep_compress_sink_free(c);
	ep_sink_release(&mem.base);

	/* an error of the next sink comes back and the sink shuts down cleanly */
	{
		size_t len = 3 * MIB;
		unsigned char *data = mixed_data(len, 1);

		ep_mem_sink_init(&mem, 1000);
		c = ep_compress_sink_new(&p, &mem.base, &err);
		assert_non_null(c);
		ep_error_clear(&err);
		if (ep_sink_write(c, data, len, &err) == 0)
			assert_int_equal(ep_sink_finish(c, &err), -1);
		assert_non_null(strstr(err.msg, "exceeds the limit"));
		ep_compress_sink_free(c);
		ep_sink_release(&mem.base);
		free(data);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_media_types),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_gzip_members),
		cmocka_unit_test(test_thread_independence),
		cmocka_unit_test(test_gzip_golden),
		cmocka_unit_test(test_system_tools),
		cmocka_unit_test(test_corrupt_and_truncated),
		cmocka_unit_test(test_trailing_garbage),
		cmocka_unit_test(test_concatenated_streams),
		cmocka_unit_test(test_bomb_cap),
		cmocka_unit_test(test_write_after_finish),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
