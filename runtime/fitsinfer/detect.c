/* runtime/fitsinfer/detect.c - see detect.h. */
#include "detect.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fi_kernel_size(double fwhm)
{
	int ks = 2 * (int)ceil(fwhm) + 1;

	return ks < 5 ? 5 : ks;
}

int fi_psf_kernel(double fwhm, double beta, int ks, float *k)
{
	if (!(fwhm > 0) || ks < 1 || ks % 2 == 0 || ks > 63)
		return -1;
	int r = ks / 2, sub = 11;
	double alpha = beta > 0 ? fwhm / (2 * sqrt(pow(2, 1 / beta) - 1)) : 0;
	double sig = fwhm / (2 * sqrt(2 * log(2)));
	double norm = 0;
	for (int j = -r; j <= r; j++)
		for (int i = -r; i <= r; i++) {
			double s = 0;
			for (int b = 0; b < sub; b++)
				for (int a = 0; a < sub; a++) {
					double x = i - 0.5 + (a + 0.5) / sub, y = j - 0.5 + (b + 0.5) / sub;
					double rr = x * x + y * y;
					s += beta > 0 ? pow(1 + rr / (alpha * alpha), -beta) : exp(-rr / (2 * sig * sig));
				}
			k[(j + r) * ks + (i + r)] = (float)s;
			norm += s * s;
		}
	norm = sqrt(norm);
	for (int i = 0; i < ks * ks; i++)
		k[i] = (float)(k[i] / norm);
	return 0;
}

void fi_conv2d_ref(const float *in, int nx, int ny, const float *k, int ks, float *out)
{
	int r = ks / 2;

	for (int y = 0; y < ny; y++)
		for (int x = 0; x < nx; x++) {
			double s = 0;
			for (int j = -r; j <= r; j++) {
				int yy = y + j;
				if (yy < 0 || yy >= ny)
					continue;
				for (int i = -r; i <= r; i++) {
					int xx = x + i;
					if (xx >= 0 && xx < nx)
						s += (double)in[(size_t)yy * nx + xx] * k[(j + r) * ks + (i + r)];
				}
			}
			out[(size_t)y * nx + x] = (float)s;
		}
}

/* Largest of the 8 neighbours inside the image (-inf when none). */
static float neighbour_max(const float *s, int nx, int ny, int x, int y)
{
	float m = -INFINITY;

	for (int j = -1; j <= 1; j++)
		for (int i = -1; i <= 1; i++) {
			int xx = x + i, yy = y + j;
			if ((i || j) && xx >= 0 && xx < nx && yy >= 0 && yy < ny && s[(size_t)yy * nx + xx] > m)
				m = s[(size_t)yy * nx + xx];
		}
	return m;
}

void fi_peak_map(const float *snr, int nx, int ny, float thresh, uint8_t *pm)
{
	for (int y = 0; y < ny; y++)
		for (int x = 0; x < nx; x++) {
			float c = snr[(size_t)y * nx + x];
			pm[(size_t)y * nx + x] = c > thresh && c >= neighbour_max(snr, nx, ny, x, y);
		}
}

/* Vertex offset of the parabola through (-1,l), (0,c), (1,r), within +-0.5. */
static double parabolic(double l, double c, double r)
{
	double den = l - 2 * c + r;

	if (!(den < 0))
		return 0;
	double d = 0.5 * (l - r) / den;
	return d > 0.5 ? 0.5 : d < -0.5 ? -0.5 : d;
}

long fi_peaks_list(const float *snr, const uint8_t *pm, int nx, int ny, struct fi_det **out)
{
	size_t n = 0, cap = 0;
	struct fi_det *d = NULL;

	for (int y = 0; y < ny; y++)
		for (int x = 0; x < nx; x++) {
			if (!pm[(size_t)y * nx + x])
				continue;
			/* A tie: an earlier peak among the neighbours already read
			 * (the row above and the pixel to the left) stands for this one. */
			int tie = 0;
			for (int i = -1; i <= 1 && !tie; i++)
				if (y > 0 && x + i >= 0 && x + i < nx && pm[(size_t)(y - 1) * nx + x + i])
					tie = 1;
			if (x > 0 && pm[(size_t)y * nx + x - 1])
				tie = 1;
			if (tie)
				continue;
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 256;
				struct fi_det *nd = realloc(d, nc * sizeof(*d));
				if (!nd) {
					free(d);
					return -1;
				}
				d = nd;
				cap = nc;
			}
			struct fi_det *e = &d[n++];
			memset(e, 0, sizeof(*e));
			const float *c = &snr[(size_t)y * nx + x];
			e->ix = x;
			e->iy = y;
			e->snr = *c;
			e->gap = *c - neighbour_max(snr, nx, ny, x, y);
			double dx = (x > 0 && x < nx - 1) ? parabolic(c[-1], c[0], c[1]) : 0;
			double dy = (y > 0 && y < ny - 1) ? parabolic(c[-nx], c[0], c[nx]) : 0;
			e->x = x + 1 + dx;
			e->y = y + 1 + dy;
			e->class_star = NAN;
			e->match = -1;
		}
	*out = d;
	return (long)n;
}

/* ---- truth catalogue ---- */

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	if (*s == '"' && e > s + 1 && e[-1] == '"') {
		e[-1] = 0;
		s++;
	}
	return s;
}

static int split(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	while (n < max) {
		char *c = strchr(p, ',');
		if (c)
			*c = 0;
		f[n++] = trim(p);
		if (!c)
			break;
		p = c + 1;
	}
	return n;
}

static int kind_of(const char *s)
{
	if (!strcasecmp(s, "star") || !strcasecmp(s, "s") || !strcmp(s, "0"))
		return FI_STAR;
	if (!strcasecmp(s, "galaxy") || !strcasecmp(s, "gal") || !strcasecmp(s, "g") || !strcmp(s, "1"))
		return FI_GALAXY;
	if (!strcasecmp(s, "cosmic") || !strcasecmp(s, "cr") || !strcasecmp(s, "cosmic_ray") || !strcmp(s, "2"))
		return FI_COSMIC;
	return -1;
}

long fi_truth_read(const char *path, struct fi_truth **out, char *errbuf, size_t errlen)
{
	enum { MAXF = 64, MAXROWS = 1000000 };
	FILE *f = fopen(path, "r");
	char line[4096], *fld[MAXF];
	int cx = -1, cy = -1, cflux = -1, csnr = -1, creff = -1, cgal = -1, ckind = -1, nf;
	size_t n = 0, cap = 0;
	long lineno = 0;
	struct fi_truth *t = NULL;

	*out = NULL;
	if (!f) {
		snprintf(errbuf, errlen, "cannot open truth catalogue '%s': %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(errbuf, errlen, "'%s' line %ld: longer than %zu bytes", path, lineno, sizeof(line));
			goto fail;
		}
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		nf = split(s, fld, MAXF);
		if (cx < 0) { /* the header */
			for (int i = 0; i < nf; i++) {
				const char *h = fld[i];
				if (!strcasecmp(h, "x") || !strcasecmp(h, "x_image"))
					cx = i;
				else if (!strcasecmp(h, "y") || !strcasecmp(h, "y_image"))
					cy = i;
				else if (!strcasecmp(h, "flux") || !strcasecmp(h, "flux_adu"))
					cflux = i;
				else if (!strcasecmp(h, "snr") || !strcasecmp(h, "snr_true"))
					csnr = i;
				else if (!strcasecmp(h, "r_eff") || !strcasecmp(h, "reff"))
					creff = i;
				else if (!strcasecmp(h, "is_gal"))
					cgal = i;
				else if (!strcasecmp(h, "class") || !strcasecmp(h, "kind") || !strcasecmp(h, "type"))
					ckind = i;
			}
			if (cx < 0 || cy < 0) {
				snprintf(errbuf, errlen, "'%s': the header line names no 'x' and 'y' columns", path);
				goto fail;
			}
			continue;
		}
		if (n >= MAXROWS) {
			snprintf(errbuf, errlen, "'%s': more than %d rows", path, MAXROWS);
			goto fail;
		}
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 256;
			struct fi_truth *nt = realloc(t, nc * sizeof(*t));
			if (!nt) {
				snprintf(errbuf, errlen, "'%s': out of memory", path);
				goto fail;
			}
			t = nt;
			cap = nc;
		}
		struct fi_truth *e = &t[n];
		memset(e, 0, sizeof(*e));
		e->snr = NAN;
		e->det = -1;
		char *end;
		int need[] = {cx, cy};
		double *dst[] = {&e->x, &e->y};
		for (int i = 0; i < 2; i++) {
			if (need[i] >= nf) {
				snprintf(errbuf, errlen, "'%s' line %ld: too few columns", path, lineno);
				goto fail;
			}
			*dst[i] = strtod(fld[need[i]], &end);
			if (end == fld[need[i]] || *end || !isfinite(*dst[i])) {
				snprintf(errbuf, errlen, "'%s' line %ld: bad coordinate '%s'", path, lineno, fld[need[i]]);
				goto fail;
			}
		}
		if (cflux >= 0 && cflux < nf)
			e->flux = strtod(fld[cflux], NULL);
		if (csnr >= 0 && csnr < nf && *fld[csnr])
			e->snr = strtod(fld[csnr], NULL);
		if (creff >= 0 && creff < nf)
			e->r_eff = strtod(fld[creff], NULL);
		e->kind = FI_STAR;
		if (ckind >= 0 && ckind < nf)
			e->kind = kind_of(fld[ckind]);
		else if (cgal >= 0 && cgal < nf)
			e->kind = kind_of(fld[cgal]);
		if (e->kind < 0) {
			snprintf(errbuf, errlen, "'%s' line %ld: unknown class", path, lineno);
			goto fail;
		}
		n++;
	}
	if (ferror(f)) {
		snprintf(errbuf, errlen, "cannot read '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (cx < 0) {
		snprintf(errbuf, errlen, "'%s': empty truth catalogue", path);
		goto fail;
	}
	fclose(f);
	*out = t;
	return (long)n;
fail:
	fclose(f);
	free(t);
	return -1;
}

void fi_truth_estimate_snr(struct fi_truth *t, size_t nt, double psf_l2, double rms)
{
	for (size_t i = 0; i < nt; i++)
		if (isnan(t[i].snr))
			t[i].snr = rms > 0 ? t[i].flux * psf_l2 / rms : NAN;
}

static int cmp_truth_snr(const void *a, const void *b, void *arg)
{
	const struct fi_truth *t = arg;
	double x = t[*(const size_t *)a].snr, y = t[*(const size_t *)b].snr;

	if (isnan(x))
		x = -INFINITY;
	if (isnan(y))
		y = -INFINITY;
	return (x < y) - (x > y);
}

void fi_match(struct fi_det *d, size_t nd, struct fi_truth *t, size_t nt, double radius)
{
	size_t *ord = malloc((nt ? nt : 1) * sizeof(*ord));
	double r2 = radius * radius;

	for (size_t i = 0; i < nd; i++) {
		d[i].match = -1;
		d[i].kind = FI_UNMATCHED_SPURIOUS;
	}
	for (size_t i = 0; i < nt; i++)
		t[i].det = -1;
	if (!ord)
		return;
	for (size_t i = 0; i < nt; i++)
		ord[i] = i;
	qsort_r(ord, nt, sizeof(*ord), cmp_truth_snr, t);
	for (size_t o = 0; o < nt; o++) {
		struct fi_truth *e = &t[ord[o]];
		if (e->kind == FI_COSMIC)
			continue;
		long best = -1;
		double bd = r2;
		for (size_t i = 0; i < nd; i++) {
			double dx = d[i].x - e->x, dy = d[i].y - e->y, dd = dx * dx + dy * dy;
			if (d[i].match < 0 && dd <= bd) {
				best = (long)i;
				bd = dd;
			}
		}
		if (best >= 0) {
			d[best].match = (int)ord[o];
			e->det = (int)best;
		}
	}
	free(ord);
	for (size_t i = 0; i < nd; i++) {
		if (d[i].match >= 0)
			continue;
		for (size_t j = 0; j < nt; j++) {
			double dx = d[i].x - t[j].x, dy = d[i].y - t[j].y, dd = dx * dx + dy * dy;
			if (t[j].kind == FI_COSMIC && dd <= r2) {
				d[i].kind = FI_UNMATCHED_COSMIC;
				break;
			}
			double rg = t[j].r_eff * 2 > 4 ? t[j].r_eff * 2 : 4;
			if (t[j].kind == FI_GALAXY && dd <= rg * rg)
				d[i].kind = FI_UNMATCHED_GALAXY;
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_d(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void fi_score(const struct fi_det *d, size_t nd, const struct fi_truth *t, size_t nt, struct fi_score *s)
{
	static const double bins[3] = {5, 10, 20}, cbins[2] = {20, 50};
	double *cs_star = malloc((nt + 1) * sizeof(double)), *cs_gal = malloc((nt + 1) * sizeof(double));
	size_t ns = 0, ng = 0;
	double se = 0;

	memset(s, 0, sizeof(*s));
	s->n_det = (int)nd;
	for (size_t i = 0; i < nd; i++) {
		if (d[i].match >= 0)
			s->n_matched++;
		else if (d[i].kind == FI_UNMATCHED_COSMIC)
			s->n_cosmic++;
		else if (d[i].kind == FI_UNMATCHED_GALAXY)
			s->n_galaxy_sub++;
		else
			s->n_spurious++;
	}
	s->unexplained_frac = nd ? (double)s->n_spurious / nd : 0;
	for (size_t j = 0; j < nt; j++) {
		const struct fi_truth *e = &t[j];
		if (e->kind == FI_COSMIC || isnan(e->snr))
			continue;
		for (int b = 0; b < 3; b++)
			if (e->snr >= bins[b]) {
				s->n_true[b]++;
				s->n_found[b] += e->det >= 0;
			}
		if (e->det < 0 || d[e->det].saturated)
			continue;
		const struct fi_det *m = &d[e->det];
		if (e->kind == FI_STAR && e->snr >= 20) {
			s->n_pos++;
			se += (m->x - e->x) * (m->x - e->x) + (m->y - e->y) * (m->y - e->y);
		}
		if (isnan(m->class_star))
			continue;
		for (int b = 0; b < 2; b++)
			if (e->snr >= cbins[b]) {
				s->n_cls[b]++;
				s->n_cls_ok[b] += (m->class_star > 0.5f) == (e->kind == FI_STAR);
			}
		if (e->snr >= 20 && cs_star && cs_gal) {
			if (e->kind == FI_STAR)
				cs_star[ns++] = m->class_star;
			else
				cs_gal[ng++] = m->class_star;
		}
	}
	for (int b = 0; b < 3; b++)
		s->completeness[b] = s->n_true[b] ? (double)s->n_found[b] / s->n_true[b] : NAN;
	for (int b = 0; b < 2; b++)
		s->accuracy[b] = s->n_cls[b] ? (double)s->n_cls_ok[b] / s->n_cls[b] : NAN;
	s->pos_rms = s->n_pos ? sqrt(se / s->n_pos) : NAN;
	s->median_cs_star = cs_star ? median_d(cs_star, ns) : NAN;
	s->median_cs_gal = cs_gal ? median_d(cs_gal, ng) : NAN;
	free(cs_star);
	free(cs_gal);
}

uint64_t fi_fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
