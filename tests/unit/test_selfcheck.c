/* Unit tests: the CPU side of envpin-selfcheck (runtime/selfcheck/numeric.c,
 * report.c, the PTX text of checks.c) - everything that needs no GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "numeric.h"
#include "report.h"

static void test_rng_known(void **state)
{
	uint64_t st = 0;

	(void)state;
	/* splitmix64's published first outputs for seed 0 */
	assert_true(sc_rng_next(&st) == 0xe220a8397b1dcdafULL);
	assert_true(sc_rng_next(&st) == 0x6e789e6aa1b965f4ULL);
}

static void test_fill(void **state)
{
	float a[4096], b[4096];
	unsigned char x[13], y[13];

	(void)state;
	sc_fill_uniform(a, 4096, 7);
	sc_fill_uniform(b, 4096, 7);
	assert_memory_equal(a, b, sizeof a);
	int neg = 0;
	for (int i = 0; i < 4096; i++) {
		assert_true(a[i] >= -1.0f && a[i] < 1.0f);
		double scaled = (double)a[i] * 8388608.0; /* 2^23: exact multiples */
		assert_true(scaled == floor(scaled));
		neg += a[i] < 0;
	}
	assert_true(neg > 1800 && neg < 2300);
	sc_fill_uniform(b, 4096, 8);
	assert_true(memcmp(a, b, sizeof a) != 0);
	/* odd lengths fill every byte the same way */
	memset(x, 0, sizeof x);
	memset(y, 0xff, sizeof y);
	sc_fill_bytes(x, sizeof x, 3);
	sc_fill_bytes(y, sizeof y, 3);
	assert_memory_equal(x, y, sizeof x);
}

static void test_half(void **state)
{
	(void)state;
	assert_int_equal(sc_float_to_half(1.0f), 0x3c00);
	assert_int_equal(sc_float_to_half(-2.0f), 0xc000);
	assert_int_equal(sc_float_to_half(0.0f), 0x0000);
	assert_int_equal(sc_float_to_half(-0.0f), 0x8000);
	assert_int_equal(sc_float_to_half(65504.0f), 0x7bff);
	assert_int_equal(sc_float_to_half(65519.0f), 0x7bff);
	assert_int_equal(sc_float_to_half(65520.0f), 0x7c00); /* tie rounds to even: inf */
	assert_int_equal(sc_float_to_half(1e9f), 0x7c00);
	assert_int_equal(sc_float_to_half(-INFINITY), 0xfc00);
	assert_int_equal(sc_float_to_half(0x1p-24f), 0x0001); /* smallest subnormal */
	assert_int_equal(sc_float_to_half(0x1p-25f), 0x0000); /* tie to even: zero */
	assert_int_equal(sc_float_to_half(0x1.8p-25f), 0x0001);
	assert_int_equal(sc_float_to_half(0x1p-14f), 0x0400);	       /* smallest normal */
	assert_int_equal(sc_float_to_half(1.0f + 0x1p-11f), 0x3c00);   /* tie, even below */
	assert_int_equal(sc_float_to_half(1.0f + 0x1.8p-10f), 0x3c02); /* tie, odd below: up */
	uint16_t n = sc_float_to_half(NAN);
	assert_int_equal(n & 0x7c00, 0x7c00);
	assert_true((n & 0x3ff) != 0);
	assert_true(isnan(sc_half_to_float(n)));
	assert_true(sc_half_to_float(0x3555) > 0.3332f && sc_half_to_float(0x3555) < 0.3334f);
	assert_true(sc_half_to_float(0x0001) == 0x1p-24f);
	/* every finite half survives half -> float -> half */
	for (uint32_t h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue;
		assert_int_equal(sc_float_to_half(sc_half_to_float((uint16_t)h)), h);
	}
}

static void test_gemm_ref(void **state)
{
	/* column-major A (2x3) = [1 2 3; 4 5 6], B (3x2) = [7 8; 9 10; 11 12] */
	const float a[] = {1, 4, 2, 5, 3, 6};
	const float b[] = {7, 9, 11, 8, 10, 12};
	double c[4];

	(void)state;
	sc_gemm_ref(2, 2, 3, a, b, c);
	assert_true(c[0] == 58 && c[1] == 139 && c[2] == 64 && c[3] == 154);

	/* double accumulation: what FP32 would lose, the reference keeps */
	const float a2[] = {1e8f, 1.0f, -1e8f};
	const float b2[] = {1.0f, 1.0f, 1.0f};
	sc_gemm_ref(1, 1, 3, a2, b2, c);
	assert_true(c[0] == 1.0);
}

static void test_conv_ref_hand(void **state)
{
	const struct sc_conv_shape sh = {
	    .n = 1, .c = 1, .h = 3, .w = 3, .k = 1, .r = 3, .s = 3, .pad_h = 1, .pad_w = 1};
	const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	/* only the top-left tap: cross-correlation reads x[oy-1][ox-1];
	 * a flipped (true) convolution would read x[oy+1][ox+1] */
	const float tl[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
	double y[9];

	(void)state;
	assert_int_equal(sc_conv_out_h(&sh), 3);
	assert_int_equal(sc_conv_out_w(&sh), 3);
	assert_int_equal(sc_conv_y_len(&sh), 9);
	sc_conv_ref(&sh, x, ones, y);
	const double want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
	for (int i = 0; i < 9; i++)
		assert_true(y[i] == want[i]);
	sc_conv_ref(&sh, x, tl, y);
	const double shifted[9] = {0, 0, 0, 0, 1, 2, 0, 4, 5};
	for (int i = 0; i < 9; i++)
		assert_true(y[i] == shifted[i]);
}

static void test_conv_ref_channels(void **state)
{
	/* N=2, C=2, 2x2 input, K=2 filters of 1x1 without padding */
	const struct sc_conv_shape sh = {.n = 2, .c = 2, .h = 2, .w = 2, .k = 2, .r = 1, .s = 1};
	const float x[16] = {1,	 2,  3,	 4,  10, 20, 30, 40, /* image 0: c0, c1 */
			     -1, -2, -3, -4, 0,	 0,  0,	 1}; /* image 1 */
	const float w[4] = {1, 1,			     /* k0 = c0 + c1 */
			    2, -1};			     /* k1 = 2 c0 - c1 */
	double y[16];
	const double want[16] = {11, 22, 33, 44, -8, -16, -24, -32, -1, -2, -3, -3, -2, -4, -6, -9};

	(void)state;
	assert_int_equal(sc_conv_y_len(&sh), 16);
	sc_conv_ref(&sh, x, w, y);
	for (int i = 0; i < 16; i++)
		assert_true(y[i] == want[i]);
	const struct sc_conv_shape bad = {.n = 1, .c = 1, .h = 2, .w = 2, .k = 1, .r = 5, .s = 5};
	assert_int_equal(sc_conv_out_h(&bad), 0);
	assert_int_equal(sc_conv_y_len(&bad), 0);
}

static void test_compare(void **state)
{
	const double ref[4] = {1, 2, 3, 4};
	const float same[4] = {1, 2, 3, 4}, off[4] = {1, 2, 3, 4.5f};
	const double zref[3] = {0, 0, 0};
	const float z[3] = {0, 0, 0}, nz[3] = {0, 1e-30f, 0};
	struct sc_err e;

	(void)state;
	sc_compare(same, ref, 4, &e);
	assert_true(e.rel == 0 && e.max_abs == 0 && e.mean_abs_ref == 2.5);
	assert_true(sc_err_within(&e, 0));
	sc_compare(off, ref, 4, &e);
	assert_true(e.max_abs == 0.5 && e.rel == 0.2);
	assert_int_equal(e.worst, 3);
	assert_true(sc_err_within(&e, 0.2));
	assert_false(sc_err_within(&e, 0.19));
	/* all-zero reference */
	sc_compare(z, zref, 3, &e);
	assert_true(e.rel == 0);
	assert_true(sc_err_within(&e, 1e-5));
	sc_compare(nz, zref, 3, &e);
	assert_true(isinf(e.rel));
	assert_false(sc_err_within(&e, 1e30));
	/* NaN and inf, in either array, never pass */
	const float withnan[4] = {1, NAN, 3, 4};
	sc_compare(withnan, ref, 4, &e);
	assert_true(isnan(e.rel));
	assert_int_equal(e.n_nonfinite, 1);
	assert_false(sc_err_within(&e, INFINITY));
	const double refinf[4] = {1, 2, INFINITY, 4};
	sc_compare(same, refinf, 4, &e);
	assert_int_equal(e.n_nonfinite, 1);
	assert_false(sc_err_within(&e, 1));
	/* empty */
	sc_compare(same, ref, 0, &e);
	assert_true(e.rel == 0);
}

static void test_versions(void **state)
{
	char b[32];

	(void)state;
	sc_format_cuda_version(12040, b, sizeof b);
	assert_string_equal(b, "12.4");
	sc_format_cuda_version(11080, b, sizeof b);
	assert_string_equal(b, "11.8");
	sc_format_cuda_version(13000, b, sizeof b);
	assert_string_equal(b, "13.0");
	sc_format_cuda_version(0, b, sizeof b);
	assert_string_equal(b, "");
	sc_format_cudnn_version(8907, b, sizeof b);
	assert_string_equal(b, "8.9.7");
	sc_format_cudnn_version(90100, b, sizeof b);
	assert_string_equal(b, "9.1.0");
	sc_format_cudnn_version(91900, b, sizeof b);
	assert_string_equal(b, "9.19.0");
	sc_format_nccl_version(22705, b, sizeof b);
	assert_string_equal(b, "2.27.5");
	sc_format_nccl_version(2708, b, sizeof b);
	assert_string_equal(b, "2.7.8");
	sc_format_nccl_version(0, b, sizeof b);
	assert_string_equal(b, "");
}

static char *render(const struct sc_report *r, int json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(json ? sc_report_print_json(r, f) : sc_report_print_kv(r, f), 0);
	fclose(f);
	return buf;
}

static void test_report(void **state)
{
	static struct sc_report r;
	struct sc_check *c;
	char *out;

	(void)state;
	sc_report_init(&r);
	snprintf(r.runtime_version, sizeof r.runtime_version, "12.4");
	c = sc_check_add(&r, "gemm_fp32");
	sc_check_set(c, SC_PASS, "say \"hi\"\\\nnext\x01\xff");
	sc_fig_num(c, "rel_err", 1.5e-7);
	sc_fig_num(c, "bad", NAN);
	sc_fig_num(c, "big", INFINITY);
	sc_fig_int(c, "n", 1024);
	sc_fig_bool(c, "tf32", 1);
	sc_fig_str(c, "path", "/a b");
	sc_fig_str(c, "status", "shadow"); /* may not replace the real status */
	sc_fig_int(c, "n", 2048);	   /* replaces */
	struct sc_device *d = sc_device_add(&r);
	snprintf(d->name, sizeof d->name, "NVIDIA H100");
	snprintf(d->cc, sizeof d->cc, "9.0");
	c = sc_check_add(&r, "conv_fp16");
	assert_false(sc_report_failed(&r));

	out = render(&r, 1);
	assert_non_null(strstr(out, "{\"checks\":[{\"name\":\"gemm_fp32\",\"status\":\"pass\","));
	assert_non_null(strstr(out, "\"detail\":\"say \\\"hi\\\"\\\\\\nnext\\u0001\\u00ff\""));
	assert_non_null(
	    strstr(out, "\"rel_err\":1.5e-07,\"bad\":null,\"big\":null,\"n\":2048,\"tf32\":true,"
			"\"path\":\"/a b\"}"));
	assert_null(strstr(out, "shadow"));
	assert_non_null(
	    strstr(out, "{\"name\":\"conv_fp16\",\"status\":\"skip\",\"detail\":\"\"}"));
	assert_non_null(strstr(out, "\"driver_version\":null,\"runtime_version\":\"12.4\""));
	assert_non_null(strstr(
	    out,
	    "\"devices\":[{\"index\":0,\"name\":\"NVIDIA H100\",\"uuid\":\"\",\"cc\":\"9.0\"}]"));
	assert_non_null(strstr(out, "\"result\":\"pass\"}\n"));
	free(out);

	out = render(&r, 0);
	assert_non_null(strstr(out, "check.gemm_fp32.status=pass\n"));
	assert_non_null(strstr(out, "check.gemm_fp32.detail=say \"hi\"\\ next"));
	assert_non_null(strstr(out, "check.gemm_fp32.bad=nan\ncheck.gemm_fp32.big=inf\n"));
	assert_non_null(strstr(out, "check.gemm_fp32.tf32=yes\n"));
	assert_non_null(strstr(out, "device.0.cc=9.0\n"));
	assert_non_null(strstr(out, "runtime_version=12.4\n"));
	assert_non_null(strstr(out, "result=pass\n"));
	free(out);

	sc_check_set(c, SC_FAIL, "broken");
	assert_true(sc_report_failed(&r));
	out = render(&r, 0);
	assert_non_null(strstr(out, "result=fail\n"));
	free(out);

	/* the tables are bounded: overflow drops, never writes past */
	for (int i = 0; i < SC_MAX_CHECKS + 3; i++)
		(void)sc_check_add(&r, "x");
	assert_int_equal(r.n_checks, SC_MAX_CHECKS);
	assert_null(sc_check_add(&r, "y"));
	c = &r.checks[0];
	for (int i = 0; i < SC_MAX_FIGURES + 3; i++) {
		char k[16];
		snprintf(k, sizeof k, "f%d", i);
		sc_fig_int(c, k, i);
	}
	assert_int_equal(c->n_figs, SC_MAX_FIGURES);
}

static void test_probe_ptx(void **state)
{
	char buf[2048], tiny[16];

	(void)state;
	assert_int_equal(sc_probe_ptx(9, 0, buf, sizeof buf), 0);
	assert_non_null(strstr(buf, ".version 7.8\n.target sm_90\n"));
	assert_non_null(strstr(buf, ".entry envpin_probe(.param .u64 out)"));
	assert_non_null(strstr(buf, "mad.lo.u32 %r2, %r1, 3, 7;"));
	assert_int_equal(sc_probe_ptx(8, 0, buf, sizeof buf), 0);
	assert_non_null(strstr(buf, ".version 7.0\n.target sm_80\n"));
	assert_int_equal(sc_probe_ptx(7, 5, buf, sizeof buf), 0);
	assert_non_null(strstr(buf, ".version 6.4\n.target sm_75\n"));
	assert_int_equal(sc_probe_ptx(12, 0, buf, sizeof buf), 0);
	assert_non_null(strstr(buf, ".version 8.7\n.target sm_120\n"));
	/* a device newer than the table gets the newest ISA it knows */
	assert_int_equal(sc_probe_ptx(15, 0, buf, sizeof buf), 0);
	assert_non_null(strstr(buf, ".version 9.0\n.target sm_150\n"));
	assert_int_equal(sc_probe_ptx(9, 0, tiny, sizeof tiny), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rng_known),	  cmocka_unit_test(test_fill),
	    cmocka_unit_test(test_half),	  cmocka_unit_test(test_gemm_ref),
	    cmocka_unit_test(test_conv_ref_hand), cmocka_unit_test(test_conv_ref_channels),
	    cmocka_unit_test(test_compare),	  cmocka_unit_test(test_versions),
	    cmocka_unit_test(test_report),	  cmocka_unit_test(test_probe_ptx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
