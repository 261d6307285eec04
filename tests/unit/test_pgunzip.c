/* Unit tests: lib/pgunzip (multi-member gzip inflated on several threads)
 * and lib/async_sink (a sink stage in a thread of its own). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "async_sink.h"
#include "compress.h"
#include "pgunzip.h"
#include "sink.h"
#include "util.h"

#define MIB ((size_t)1 << 20)

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Compressible data with stretches of 0x1f 0x8b 0x08 (false member starts
 * in the uncompressed text do not matter; in the compressed stream they
 * appear by chance in this much data) and runs of zeros. */
static unsigned char *make_data(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n);
	uint64_t s = seed | 1;

	assert_non_null(p);
	for (size_t i = 0; i < n;) {
		uint64_t r = rng_next(&s);
		size_t run = 1 + (r >> 40) % 64;

		for (size_t k = 0; k < run && i < n; k++, i++)
			p[i] = (r >> 60) < 3   ? 0
			       : (r >> 60) < 5 ? (unsigned char)"\x1f\x8b\x08"[k % 3]
					       : (unsigned char)(r >> (8 * (k % 7)));
	}
	return p;
}

/* gzip by envpin's compressor: members of `block` bytes. */
static unsigned char *gz_members(const unsigned char *in, size_t n, size_t block, size_t *out_n)
{
	struct ep_compress_params p;
	struct ep_mem_sink mem;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_sink *c;

	ep_compress_defaults(EP_COMPRESS_GZIP, &p);
	p.block_size = block;
	ep_mem_sink_init(&mem, 1u << 30);
	c = ep_compress_sink_new(&p, &mem.base, &err);
	assert_non_null(c);
	assert_int_equal(ep_sink_write(c, in, n, &err), 0);
	assert_int_equal(ep_sink_finish(c, &err), 0);
	ep_compress_sink_free(c);
	*out_n = mem.len;
	return (unsigned char *)mem.data;
}

/* one gzip member, as gzip(1) and most tools write a layer */
static unsigned char *gz_single(const unsigned char *in, size_t n, size_t *out_n)
{
	z_stream z = {0};
	size_t cap = n + n / 100 + 1024;
	unsigned char *out = malloc(cap);

	assert_non_null(out);
	assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_n = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Decompresses with pgunzip (behind an async sink when `async`), writing
 * in pieces of `step`; returns the rc, the output in *out. */
static int run_pgz(const unsigned char *in, size_t n, size_t step, int threads, int async,
		   struct ep_mem_sink *out, struct ep_error *err)
{
	struct ep_sink *pg, *head, *as = NULL;
	int rc = 0;

	ep_mem_sink_init(out, 1u << 30);
	pg = ep_pgunzip_sink_new(1ull << 40, threads, &out->base, err);
	assert_non_null(pg);
	head = pg;
	if (async) {
		as = ep_async_sink_new(pg, err);
		assert_non_null(as);
		head = as;
	}
	for (size_t off = 0; off < n && rc == 0; off += step)
		rc = ep_sink_write(head, in + off, n - off < step ? n - off : step, err);
	if (rc == 0)
		rc = ep_sink_finish(head, err);
	ep_async_sink_free(as);
	ep_pgunzip_sink_free(pg);
	return rc;
}

static void check_same(const unsigned char *gz, size_t gz_n, const unsigned char *want,
		       size_t want_n, int threads, int async, size_t step)
{
	struct ep_mem_sink out;
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(run_pgz(gz, gz_n, step, threads, async, &out, &err), 0);
	assert_int_equal(out.len, want_n);
	assert_memory_equal(out.data, want, want_n);
	free(out.data);
}

static void test_members_in_parallel(void **state)
{
	size_t n = 40 * MIB + 12345, gz_n, small_n;
	unsigned char *data = make_data(n, 7);
	unsigned char *gz = gz_members(data, n, MIB, &gz_n);
	unsigned char *small = gz_members(data, 3 * MIB, 4096, &small_n);

	(void)state;
	check_same(gz, gz_n, data, n, 2, 0, 1 << 16);
	check_same(gz, gz_n, data, n, 4, 1, 3 * MIB + 7);
	check_same(gz, gz_n, data, n, 1, 0, gz_n);
	/* thousands of small members: rounds are cut at MAX_SEGS */
	check_same(small, small_n, data, 3 * MIB, 2, 1, 100000);
	free(small);
	free(gz);
	free(data);
}

static void test_single_member_falls_back(void **state)
{
	size_t n = 20 * MIB, gz_n;
	unsigned char *data = make_data(n, 11);
	unsigned char *gz = gz_single(data, n, &gz_n);

	(void)state;
	/* compressed smaller than a batch: inflated as one member in order */
	check_same(gz, gz_n, data, n, 2, 1, 1 << 20);
	free(gz);
	/* bigger than a batch: to zlib */
	for (uint64_t s = 5, i = 0; i < n; i++)
		data[i] = (unsigned char)(rng_next(&s) >> 56);
	gz = gz_single(data, n, &gz_n);
	assert_true(gz_n > 8 * MIB);
	check_same(gz, gz_n, data, n, 2, 1, 1 << 20);
	free(gz);
	free(data);
}

static void expect_error(const unsigned char *gz, size_t gz_n, const char *what)
{
	struct ep_mem_sink out;
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(run_pgz(gz, gz_n, 1 << 20, 2, 1, &out, &err), -1);
	if (!strstr(err.msg, what))
		fail_msg("'%s' does not say '%s'", err.msg, what);
	free(out.data);
}

static void test_bad_streams(void **state)
{
	size_t n = 12 * MIB, gz_n;
	unsigned char *data = make_data(n, 13);
	unsigned char *gz = gz_members(data, n, MIB, &gz_n);

	(void)state;
	/* cut in the middle of a member */
	expect_error(gz, gz_n - 1000, "truncated");
	/* a flipped byte in the 5th member: its CRC or its deflate data fails */
	gz[gz_n / 12 * 5] ^= 0x55;
	expect_error(gz, gz_n, "gzip: invalid data");
	gz[gz_n / 12 * 5] ^= 0x55;
	/* empty */
	expect_error(gz, 0, "empty stream");
	free(gz);
	free(data);
}

static void test_bomb_limit(void **state)
{
	size_t n = 10 * MIB, gz_n;
	unsigned char *data = calloc(1, n);
	unsigned char *gz;
	struct ep_mem_sink out;
	struct ep_error err = EP_ERROR_INIT;
	struct ep_sink *pg;

	(void)state;
	assert_non_null(data);
	gz = gz_members(data, n, MIB, &gz_n);
	ep_mem_sink_init(&out, 1u << 30);
	pg = ep_pgunzip_sink_new(4 * MIB, 2, &out.base, &err);
	assert_non_null(pg);
	if (ep_sink_write(pg, gz, gz_n, &err) == 0)
		assert_int_equal(ep_sink_finish(pg, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "decompression bomb"));
	ep_pgunzip_sink_free(pg);
	free(out.data);
	free(gz);
	free(data);
}

/* ---- ep_pgunzip_run_mapped: the whole stream from memory ---- */

struct prog {
	uint64_t last;
	int calls, backwards;
};

static void on_progress(void *ctx, uint64_t done)
{
	struct prog *p = ctx;

	if (done < p->last)
		p->backwards++;
	p->last = done;
	p->calls++;
}

static int run_mapped(const unsigned char *in, size_t n, int threads, uint64_t max_out,
		      struct ep_mem_sink *out, struct prog *pr, struct ep_error *err)
{
	struct ep_sink *pg;
	int rc;

	ep_mem_sink_init(out, 1u << 30);
	pg = ep_pgunzip_sink_new(max_out, threads, &out->base, err);
	assert_non_null(pg);
	if (pr)
		ep_pgunzip_set_progress(pg, on_progress, pr);
	rc = ep_pgunzip_run_mapped(pg, in, n, err);
	ep_pgunzip_sink_free(pg);
	return rc;
}

static void check_mapped(const unsigned char *gz, size_t gz_n, const unsigned char *want,
			 size_t want_n, int threads)
{
	struct ep_mem_sink out;
	struct ep_error err = EP_ERROR_INIT;
	struct prog pr = {0, 0, 0};

	if (run_mapped(gz, gz_n, threads, 1ull << 40, &out, &pr, &err) != 0)
		fail_msg("mapped run failed: %s", err.msg);
	assert_int_equal(out.len, want_n);
	assert_memory_equal(out.data, want, want_n);
	assert_int_equal(pr.last, gz_n);
	assert_int_equal(pr.backwards, 0);
	free(out.data);
}

/* gzip members of `block` bytes, deflate level 0 (stored blocks): the data
 * appears as it is in the compressed stream, so gzip members planted in it
 * are members a header search finds there */
static unsigned char *gz_stored(const unsigned char *in, size_t n, size_t block, size_t *out_n)
{
	size_t cap = n + n / 8 + 4096, len = 0;
	unsigned char *out = malloc(cap);

	assert_non_null(out);
	for (size_t off = 0; off < n; off += block) {
		size_t m = n - off < block ? n - off : block;
		z_stream z = {0};

		assert_int_equal(deflateInit2(&z, 0, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
				 Z_OK);
		z.next_in = (Bytef *)in + off;
		z.avail_in = (uInt)m;
		z.next_out = out + len;
		z.avail_out = (uInt)(cap - len);
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		len += z.total_out;
		deflateEnd(&z);
	}
	*out_n = len;
	return out;
}

static void test_mapped_same_output(void **state)
{
	size_t n = 40 * MIB + 12345, gz_n, small_n;
	unsigned char *data = make_data(n, 7);
	unsigned char *gz = gz_members(data, n, MIB, &gz_n);
	unsigned char *small = gz_members(data, 20 * MIB, 4096, &small_n);

	(void)state;
	assert_true(gz_n > 8 * MIB); /* several chunks */
	check_mapped(gz, gz_n, data, n, 2);
	check_mapped(gz, gz_n, data, n, 4);
	check_mapped(gz, gz_n, data, n, 1);
	/* thousands of small members, across chunk boundaries */
	check_mapped(small, small_n, data, 20 * MIB, 2);
	free(small);
	free(gz);
	free(data);
}

/* Valid gzip members followed by a header, planted every 64 KiB of stored
 * data: the search in each chunk finds one of them before the true start of
 * a member; the output must still be the data. */
static void test_mapped_planted_members(void **state)
{
	size_t n = 24 * MIB, gz_n, fake_n, planted = 0;
	unsigned char *data = make_data(n, 17);
	unsigned char *fake = gz_single((const unsigned char *)"planted", 7, &fake_n);
	unsigned char *gz;

	(void)state;
	for (size_t off = 100; off + fake_n + 4 < n; off += 64 * 1024, planted++) {
		memcpy(data + off, fake, fake_n);
		memcpy(data + off + fake_n, "\x1f\x8b\x08\x00", 4);
	}
	assert_true(planted > 300);
	/* members of an odd size: their starts drift away from the chunks' */
	gz = gz_stored(data, n, 999983, &gz_n);
	check_mapped(gz, gz_n, data, n, 2);
	check_mapped(gz, gz_n, data, n, 3);
	free(gz);
	free(fake);
	free(data);
}

static void test_mapped_single_member(void **state)
{
	size_t n = 20 * MIB, gz_n;
	unsigned char *data = make_data(n, 11);
	unsigned char *gz = gz_single(data, n, &gz_n);

	(void)state;
	/* one member bigger than a job may hold: the sequential decoder */
	check_mapped(gz, gz_n, data, n, 2);
	free(gz);
	free(data);
}

static void expect_mapped_error(const unsigned char *gz, size_t gz_n, uint64_t max_out,
				const char *what)
{
	struct ep_mem_sink out;
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(run_mapped(gz, gz_n, 2, max_out, &out, NULL, &err), -1);
	if (!strstr(err.msg, what))
		fail_msg("'%s' does not say '%s'", err.msg, what);
	free(out.data);
}

static void test_mapped_bad_streams(void **state)
{
	size_t n = 40 * MIB, gz_n;
	unsigned char *data = make_data(n, 13);
	unsigned char *gz = gz_members(data, n, MIB, &gz_n);
	unsigned char *zeros = calloc(1, n);
	unsigned char *zgz;
	size_t zgz_n;

	(void)state;
	assert_non_null(zeros);
	expect_mapped_error(gz, gz_n - 1000, 1ull << 40, "truncated");
	/* a flipped byte in a member of a later chunk */
	gz[gz_n / 40 * 27] ^= 0x55;
	expect_mapped_error(gz, gz_n, 1ull << 40, "gzip: invalid data");
	gz[gz_n / 40 * 27] ^= 0x55;
	/* the last member's trailer zeroed */
	memset(gz + gz_n - 100, 0, 100);
	expect_mapped_error(gz, gz_n, 1ull << 40, "gzip");
	zgz = gz_members(zeros, n, MIB, &zgz_n);
	expect_mapped_error(zgz, zgz_n, 4 * MIB, "decompression bomb");
	free(zgz);
	free(zeros);
	free(gz);
	free(data);
}

/* An error of the stage behind an async sink comes back to the writer. */
static int fail_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	(void)s;
	(void)buf;
	(void)len;
	return ep_error_set(err, EP_EMISMATCH, "stage failed");
}

static void test_async_error(void **state)
{
	struct ep_sink failing = {fail_write, NULL, NULL, NULL};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_sink *as = ep_async_sink_new(&failing, &err);
	unsigned char buf[4096] = {0};
	int rc = 0;

	(void)state;
	assert_non_null(as);
	for (int i = 0; i < 4096 && rc == 0; i++)
		rc = ep_sink_write(as, buf, sizeof(buf), &err);
	if (rc == 0)
		rc = ep_sink_finish(as, &err);
	assert_int_equal(rc, -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_string_equal(err.msg, "stage failed");
	ep_async_sink_free(as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_members_in_parallel),
	    cmocka_unit_test(test_single_member_falls_back),
	    cmocka_unit_test(test_bad_streams),
	    cmocka_unit_test(test_bomb_limit),
	    cmocka_unit_test(test_async_error),
	    cmocka_unit_test(test_mapped_same_output),
	    cmocka_unit_test(test_mapped_planted_members),
	    cmocka_unit_test(test_mapped_single_member),
	    cmocka_unit_test(test_mapped_bad_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
