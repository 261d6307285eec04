/* runtime/fitsinfer/background.c - see background.h for the algorithm. */
#include "background.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t fi_mask_build(const float *pix, size_t n, uint8_t *mask)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		mask[i] = !isfinite(pix[i]);
		bad += mask[i];
	}
	return bad;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* First index in sorted v[lo..hi) with v >= t (or > t when strict). */
static size_t bound(const float *v, size_t lo, size_t hi, double t, int strict)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strict ? v[mid] <= t : v[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Median of sorted v[a..b).  Integer (quantised) data have many ties; SEP
 * interpolates inside its histogram bin, so do the same inside the run of
 * equal values, taking the gap to the neighbouring distinct value as the
 * quantisation step.  Without this, integer ADU data would give medians
 * quantised to whole ADU and a mode (2.5 med - 1.5 mean) off by ~1 ADU. */
static double median_sorted(const float *v, size_t a, size_t b)
{
	size_t n = b - a;
	double half = n / 2.0;
	size_t mid = a + n / 2;
	float m = v[mid];
	size_t lo = bound(v, a, b, m, 0), hi = bound(v, a, b, m, 1);
	size_t ce = hi - lo;

	if (ce < 3) /* continuous data: the ordinary median */
		return n % 2 ? m : 0.5 * ((double)v[mid - 1] + m);
	double q = INFINITY;
	if (hi < b)
		q = (double)v[hi] - m;
	if (lo > a && (double)m - v[lo - 1] < q)
		q = (double)m - v[lo - 1];
	if (!isfinite(q))
		return m;
	return (double)m - 0.5 * q + q * (half - (double)(lo - a)) / (double)ce;
}

int fi_clipped_stats(float *v, size_t n, double *mode, double *sigma)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(*v), cmp_float);
	double *s1 = malloc((n + 1) * sizeof(double)), *s2 = malloc((n + 1) * sizeof(double));
	if (!s1 || !s2) {
		free(s1);
		free(s2);
		return -1;
	}
	/* Prefix sums make every clipped mean/sigma O(1); shift by the first
	 * value to keep the sums of squares well conditioned. */
	double off = v[0];
	s1[0] = s2[0] = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)v[i] - off;
		s1[i + 1] = s1[i] + d;
		s2[i + 1] = s2[i] + d * d;
	}
#define RANGE_STATS(a, b, mean, sig)                                                             \
	do {                                                                                     \
		double cnt_ = (double)((b) - (a));                                               \
		double m_ = (s1[b] - s1[a]) / cnt_;                                              \
		double var_ = (s2[b] - s2[a]) / cnt_ - m_ * m_;                                  \
		(mean) = m_ + off;                                                               \
		(sig) = var_ > 0 ? sqrt(var_) : 0;                                               \
	} while (0)

	double mean, sig;
	size_t a = 0, b = n;
	RANGE_STATS(a, b, mean, sig);
	/* SEP: a first cut at mean +- 2 sigma, then a working range of +- 5 sigma
	 * (of the cut sample) around its mean. */
	size_t a2 = bound(v, 0, n, mean - 2 * sig, 0), b2 = bound(v, 0, n, mean + 2 * sig, 1);
	if (b2 > a2) {
		RANGE_STATS(a2, b2, mean, sig);
		a = bound(v, 0, n, mean - 5 * sig, 0);
		b = bound(v, 0, n, mean + 5 * sig, 1);
	}
	double med = median_sorted(v, a, b);
	RANGE_STATS(a, b, mean, sig);
	for (int it = 0; it < 100 && sig > 0; it++) {
		size_t na = bound(v, 0, n, med - 3 * sig, 0), nb = bound(v, 0, n, med + 3 * sig, 1);
		if (nb <= na)
			break;
		double sig1 = sig;
		a = na;
		b = nb;
		RANGE_STATS(a, b, mean, sig);
		med = median_sorted(v, a, b);
		if (fabs(sig / sig1 - 1.0) < 1e-4)
			break;
	}
#undef RANGE_STATS
	free(s1);
	free(s2);
	*sigma = sig;
	*mode = (sig > 0 && fabs(mean - med) < 0.3 * sig) ? 2.5 * med - 1.5 * mean : med;
	return 0;
}

static double median_of(float *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_float);
	return n % 2 ? v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + v[n / 2]);
}

/* Fills invalid meshes (valid[i] == 0) from the nearest valid one. */
static void fill_invalid(float *m, const uint8_t *valid, int mx, int my)
{
	float *src = malloc((size_t)mx * my * sizeof(float));

	if (!src)
		return;
	memcpy(src, m, (size_t)mx * my * sizeof(float));
	for (int j = 0; j < my; j++)
		for (int i = 0; i < mx; i++) {
			if (valid[j * mx + i])
				continue;
			long best = -1, bd = 0;
			for (int jj = 0; jj < my; jj++)
				for (int ii = 0; ii < mx; ii++) {
					long d = (long)(ii - i) * (ii - i) + (long)(jj - j) * (jj - j);
					if (valid[jj * mx + ii] && (best < 0 || d < bd)) {
						best = jj * mx + ii;
						bd = d;
					}
				}
			m[j * mx + i] = src[best];
		}
	free(src);
}

static int median_filter(float *m, int mx, int my, int fsize)
{
	int r = fsize / 2;
	float *src = malloc((size_t)mx * my * sizeof(float)), win[81];

	if (!src)
		return -1;
	memcpy(src, m, (size_t)mx * my * sizeof(float));
	for (int j = 0; j < my; j++)
		for (int i = 0; i < mx; i++) {
			size_t k = 0;
			for (int jj = j - r; jj <= j + r; jj++)
				for (int ii = i - r; ii <= i + r; ii++)
					if (jj >= 0 && jj < my && ii >= 0 && ii < mx && k < 81)
						win[k++] = src[jj * mx + ii];
			m[j * mx + i] = (float)median_of(win, k);
		}
	free(src);
	return 0;
}

/* Mesh centre along one axis, in 0-based pixel coordinates. */
static double centre(int i, int bw, int n)
{
	int w = n - i * bw < bw ? n - i * bw : bw;
	return i * bw + (w - 1) / 2.0;
}

/* Index of the mesh centre at or left of p, and the weight of the next one. */
static void locate(double p, int bw, int n, int m, int *i0, double *t)
{
	int i = (int)floor((p - (bw - 1) / 2.0) / bw);
	if (i < 0) {
		*i0 = 0;
		*t = 0;
		return;
	}
	if (i >= m - 1) {
		*i0 = m - 1;
		*t = 0;
		return;
	}
	double c0 = centre(i, bw, n), c1 = centre(i + 1, bw, n);
	*i0 = i;
	*t = (p - c0) / (c1 - c0);
	if (*t < 0)
		*t = 0;
	if (*t > 1)
		*t = 1;
}

static void interpolate(const float *m, int mx, int my, int bw, int nx, int ny, float *out)
{
	for (int y = 0; y < ny; y++) {
		int j0;
		double ty;
		locate(y, bw, ny, my, &j0, &ty);
		int j1 = j0 + 1 < my ? j0 + 1 : j0;
		for (int x = 0; x < nx; x++) {
			int i0;
			double tx;
			locate(x, bw, nx, mx, &i0, &tx);
			int i1 = i0 + 1 < mx ? i0 + 1 : i0;
			double a = m[j0 * mx + i0] * (1 - tx) + m[j0 * mx + i1] * tx;
			double b = m[j1 * mx + i0] * (1 - tx) + m[j1 * mx + i1] * tx;
			out[(size_t)y * nx + x] = (float)(a * (1 - ty) + b * ty);
		}
	}
}

int fi_background(const float *pix, const uint8_t *mask, int nx, int ny, int bw, int fsize,
		  struct fi_bkg *out, char *errbuf, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (nx <= 0 || ny <= 0 || bw <= 0 || fsize <= 0 || fsize > 9) {
		snprintf(errbuf, errlen, "background: invalid geometry %dx%d, mesh %d, filter %d", nx, ny, bw, fsize);
		return -1;
	}
	int mx = (nx + bw - 1) / bw, my = (ny + bw - 1) / bw;
	size_t nm = (size_t)mx * my, np = (size_t)nx * ny;
	float *buf = malloc((size_t)bw * bw * sizeof(float));
	uint8_t *valid = calloc(nm, 1);
	out->mesh_bkg = calloc(nm, sizeof(float));
	out->mesh_rms = calloc(nm, sizeof(float));
	out->bkg = malloc(np * sizeof(float));
	out->rms = malloc(np * sizeof(float));
	float *tmp = malloc(nm * sizeof(float));
	if (!buf || !valid || !out->mesh_bkg || !out->mesh_rms || !out->bkg || !out->rms || !tmp) {
		snprintf(errbuf, errlen, "background: out of memory");
		goto fail;
	}
	out->nx = nx;
	out->ny = ny;
	out->bw = bw;
	out->mx = mx;
	out->my = my;
	for (int j = 0; j < my; j++)
		for (int i = 0; i < mx; i++) {
			size_t k = 0, area = 0;
			for (int y = j * bw; y < ny && y < (j + 1) * bw; y++)
				for (int x = i * bw; x < nx && x < (i + 1) * bw; x++) {
					size_t p = (size_t)y * nx + x;
					area++;
					if ((!mask || !mask[p]) && isfinite(pix[p]))
						buf[k++] = pix[p];
				}
			double mode, sig;
			if (2 * k < area || fi_clipped_stats(buf, k, &mode, &sig) < 0)
				continue;
			out->mesh_bkg[j * mx + i] = (float)mode;
			out->mesh_rms[j * mx + i] = (float)sig;
			valid[j * mx + i] = 1;
			out->n_mesh_valid++;
		}
	if (out->n_mesh_valid == 0) {
		snprintf(errbuf, errlen, "background: no %dx%d mesh has at least half its pixels defined", bw, bw);
		goto fail;
	}
	fill_invalid(out->mesh_bkg, valid, mx, my);
	fill_invalid(out->mesh_rms, valid, mx, my);
	if (fsize > 1 && (median_filter(out->mesh_bkg, mx, my, fsize) < 0 ||
			  median_filter(out->mesh_rms, mx, my, fsize) < 0)) {
		snprintf(errbuf, errlen, "background: out of memory");
		goto fail;
	}
	memcpy(tmp, out->mesh_bkg, nm * sizeof(float));
	out->global_bkg = median_of(tmp, nm);
	memcpy(tmp, out->mesh_rms, nm * sizeof(float));
	out->global_rms = median_of(tmp, nm);
	interpolate(out->mesh_bkg, mx, my, bw, nx, ny, out->bkg);
	interpolate(out->mesh_rms, mx, my, bw, nx, ny, out->rms);
	free(buf);
	free(valid);
	free(tmp);
	return 0;
fail:
	free(buf);
	free(valid);
	free(tmp);
	fi_bkg_release(out);
	return -1;
}

void fi_bkg_release(struct fi_bkg *b)
{
	if (!b)
		return;
	free(b->mesh_bkg);
	free(b->mesh_rms);
	free(b->bkg);
	free(b->rms);
	memset(b, 0, sizeof(*b));
}

void fi_normalise(const float *pix, const uint8_t *mask, const struct fi_bkg *b, float *z)
{
	size_t n = (size_t)b->nx * b->ny;

	for (size_t i = 0; i < n; i++) {
		float r = b->rms[i];
		if ((mask && mask[i]) || !isfinite(pix[i]) || !(r > 0))
			z[i] = 0;
		else
			z[i] = (pix[i] - b->bkg[i]) / r;
	}
}
