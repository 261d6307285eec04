/* runtime/selfcheck/numeric.c - see numeric.h. */
#include "numeric.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t sc_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void sc_fill_bytes(unsigned char *buf, size_t n, uint64_t seed)
{
	uint64_t st = seed;
	size_t i = 0;

	while (i + 8 <= n) {
		uint64_t r = sc_rng_next(&st);
		memcpy(buf + i, &r, 8);
		i += 8;
	}
	if (i < n) {
		uint64_t r = sc_rng_next(&st);
		memcpy(buf + i, &r, n - i);
	}
}

void sc_fill_uniform(float *x, size_t n, uint64_t seed)
{
	uint64_t st = seed;

	for (size_t i = 0; i < n; i++) {
		/* 24 random bits: an integer in [-2^23, 2^23) is exact in FP32,
		 * and so is its product with the power of two. */
		int32_t u = (int32_t)(sc_rng_next(&st) >> 40) - (1 << 23);
		x[i] = (float)u * 0x1p-23f;
	}
}

uint16_t sc_float_to_half(float f)
{
	uint32_t x, man, exp, h, rem, halfway;
	uint16_t sign;
	int e, shift;

	memcpy(&x, &f, sizeof x);
	sign = (uint16_t)((x >> 16) & 0x8000);
	exp = (x >> 23) & 0xff;
	man = x & 0x7fffff;
	if (exp == 0xff) /* inf stays inf; NaN keeps its top payload bits, quiet */
		return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
	e = (int)exp - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00);
	if (e <= 0) {
		if (e < -10) /* below half the smallest subnormal */
			return sign;
		man |= 0x800000;
		shift = 14 - e;
		h = man >> shift;
		rem = man & ((1u << shift) - 1);
		halfway = 1u << (shift - 1);
		if (rem > halfway || (rem == halfway && (h & 1)))
			h++;
		return (uint16_t)(sign | h);
	}
	h = ((uint32_t)e << 10) | (man >> 13);
	rem = man & 0x1fff;
	/* a carry out of the mantissa correctly bumps the exponent, up to inf */
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++;
	return (uint16_t)(sign | h);
}

float sc_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f;
	uint32_t man = h & 0x3ff;
	uint32_t x;
	float f;

	if (exp == 0) {
		if (man == 0) {
			x = sign;
		} else {
			int e = -1;
			do {
				e++;
				man <<= 1;
			} while (!(man & 0x400));
			x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
		}
	} else if (exp == 31) {
		x = sign | 0x7f800000 | (man << 13);
	} else {
		x = sign | ((exp + 112) << 23) | (man << 13);
	}
	memcpy(&f, &x, sizeof f);
	return f;
}

void sc_gemm_ref(size_t m, size_t n, size_t k, const float *a, const float *b, double *c)
{
	/* j-p-i order walks A and C down columns, which is contiguous in
	 * column-major storage: 1024^3 takes about a second on one core. */
	for (size_t j = 0; j < n; j++) {
		double *cj = c + j * m;
		for (size_t i = 0; i < m; i++)
			cj[i] = 0.0;
		for (size_t p = 0; p < k; p++) {
			double bpj = b[j * k + p];
			const float *ap = a + p * m;
			for (size_t i = 0; i < m; i++)
				cj[i] += (double)ap[i] * bpj;
		}
	}
}

int sc_conv_out_h(const struct sc_conv_shape *sh)
{
	int oh = sh->h + 2 * sh->pad_h - sh->r + 1;
	return sh->r > 0 && sh->pad_h >= 0 && oh > 0 ? oh : 0;
}

int sc_conv_out_w(const struct sc_conv_shape *sh)
{
	int ow = sh->w + 2 * sh->pad_w - sh->s + 1;
	return sh->s > 0 && sh->pad_w >= 0 && ow > 0 ? ow : 0;
}

size_t sc_conv_x_len(const struct sc_conv_shape *sh)
{
	return (size_t)sh->n * sh->c * sh->h * sh->w;
}

size_t sc_conv_w_len(const struct sc_conv_shape *sh)
{
	return (size_t)sh->k * sh->c * sh->r * sh->s;
}

size_t sc_conv_y_len(const struct sc_conv_shape *sh)
{
	return (size_t)sh->n * sh->k * sc_conv_out_h(sh) * sc_conv_out_w(sh);
}

void sc_conv_ref(const struct sc_conv_shape *sh, const float *x, const float *w, double *y)
{
	int oh = sc_conv_out_h(sh), ow = sc_conv_out_w(sh);

	for (int n = 0; n < sh->n; n++)
		for (int k = 0; k < sh->k; k++)
			for (int oy = 0; oy < oh; oy++)
				for (int ox = 0; ox < ow; ox++) {
					double acc = 0.0;
					for (int c = 0; c < sh->c; c++)
						for (int r = 0; r < sh->r; r++) {
							int iy = oy + r - sh->pad_h;
							if (iy < 0 || iy >= sh->h)
								continue;
							for (int s = 0; s < sh->s; s++) {
								int ix = ox + s - sh->pad_w;
								if (ix < 0 || ix >= sh->w)
									continue;
								acc +=
								    (double)
									x[(((size_t)n * sh->c + c) *
									       sh->h +
									   iy) *
									      sh->w +
									  ix] *
								    (double)
									w[(((size_t)k * sh->c + c) *
									       sh->r +
									   r) *
									      sh->s +
									  s];
							}
						}
					y[(((size_t)n * sh->k + k) * oh + oy) * ow + ox] = acc;
				}
}

void sc_compare(const float *got, const double *ref, size_t n, struct sc_err *e)
{
	double sum_ref = 0.0;

	memset(e, 0, sizeof *e);
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(got[i]) || !isfinite(ref[i])) {
			e->n_nonfinite++;
			continue;
		}
		double d = fabs((double)got[i] - ref[i]);
		if (d > e->max_abs) {
			e->max_abs = d;
			e->worst = i;
		}
		sum_ref += fabs(ref[i]);
	}
	e->mean_abs_ref = n ? sum_ref / (double)n : 0.0;
	if (e->n_nonfinite)
		e->rel = NAN;
	else if (e->mean_abs_ref > 0.0)
		e->rel = e->max_abs / e->mean_abs_ref;
	else
		e->rel = e->max_abs == 0.0 ? 0.0 : INFINITY;
}

int sc_err_within(const struct sc_err *e, double tol)
{
	return e->n_nonfinite == 0 && isfinite(e->rel) && e->rel <= tol;
}

void sc_format_cuda_version(int v, char *buf, size_t cap)
{
	if (v <= 0)
		snprintf(buf, cap, "%s", "");
	else
		snprintf(buf, cap, "%d.%d", v / 1000, (v % 1000) / 10);
}

void sc_format_cudnn_version(long v, char *buf, size_t cap)
{
	if (v <= 0)
		snprintf(buf, cap, "%s", "");
	else if (v >= 90000)
		snprintf(buf, cap, "%ld.%ld.%ld", v / 10000, (v % 10000) / 100, v % 100);
	else
		snprintf(buf, cap, "%ld.%ld.%ld", v / 1000, (v % 1000) / 100, v % 100);
}

void sc_format_nccl_version(long v, char *buf, size_t cap)
{
	if (v <= 0)
		snprintf(buf, cap, "%s", "");
	else if (v >= 20900)
		snprintf(buf, cap, "%ld.%ld.%ld", v / 10000, (v % 10000) / 100, v % 100);
	else
		snprintf(buf, cap, "%ld.%ld.%ld", v / 1000, (v % 1000) / 100, v % 100);
}
