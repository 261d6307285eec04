/* runtime/fitsinfer/classify.c - see classify.h. */
#include "classify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NNW_MAX_BYTES (1 << 20)

void fi_nnw_release(struct fi_nnw *nn)
{
	if (!nn)
		return;
	for (int l = 0; l < FI_NNW_MAXLAYERS; l++) {
		free(nn->w[l]);
		free(nn->b[l]);
	}
	memset(nn, 0, sizeof(*nn));
}

struct tok {
	const char *p, *end, *name;
	int line;
};

/* Next whitespace-separated token that is not in a '#' comment; 0 at EOF. */
static int next_token(struct tok *t, const char **s, size_t *len)
{
	for (;;) {
		while (t->p < t->end && (*t->p == ' ' || *t->p == '\t' || *t->p == '\r' || *t->p == '\n')) {
			if (*t->p == '\n')
				t->line++;
			t->p++;
		}
		if (t->p >= t->end)
			return 0;
		if (*t->p == '#') {
			while (t->p < t->end && *t->p != '\n')
				t->p++;
			continue;
		}
		*s = t->p;
		while (t->p < t->end && !(*t->p == ' ' || *t->p == '\t' || *t->p == '\r' || *t->p == '\n'))
			t->p++;
		*len = (size_t)(t->p - *s);
		return 1;
	}
}

/* Reads one finite number; what names the quantity for the message. */
static int read_num(struct tok *t, double *v, const char *what, char *errbuf, size_t errlen)
{
	const char *s;
	size_t len;
	char buf[64], *end;

	if (!next_token(t, &s, &len)) {
		snprintf(errbuf, errlen, "'%s': truncated: end of file while reading %s", t->name, what);
		return -1;
	}
	if (len >= sizeof(buf)) {
		snprintf(errbuf, errlen, "'%s' line %d: bad number in %s", t->name, t->line, what);
		return -1;
	}
	memcpy(buf, s, len);
	buf[len] = 0;
	errno = 0;
	*v = strtod(buf, &end);
	if (end == buf || *end || errno || !isfinite(*v)) {
		snprintf(errbuf, errlen, "'%s' line %d: bad number '%s' in %s", t->name, t->line, buf, what);
		return -1;
	}
	return 0;
}

int fi_nnw_parse(const char *buf, size_t len, const char *name, struct fi_nnw *nn, char *errbuf, size_t errlen)
{
	struct tok t = {buf, buf + len, name, 1};
	const char *s;
	size_t sl;
	double v;
	char what[64];

	memset(nn, 0, sizeof(*nn));
	nn->fnv = fi_fnv1a(buf, len, FI_FNV_INIT);
	if (memchr(buf, 0, len)) {
		snprintf(errbuf, errlen, "'%s': not a SExtractor NNW file (binary data)", name);
		return -1;
	}
	if (!next_token(&t, &s, &sl) || sl != 3 || memcmp(s, "NNW", 3)) {
		snprintf(errbuf, errlen, "'%s': not a SExtractor NNW file (no 'NNW' header)", name);
		return -1;
	}
	if (read_num(&t, &v, "the layer count", errbuf, errlen) < 0)
		return -1;
	if (v != floor(v) || v < 2 || v > FI_NNW_MAXLAYERS) {
		snprintf(errbuf, errlen, "'%s': layer count %g is not in 2..%d", name, v, FI_NNW_MAXLAYERS);
		return -1;
	}
	nn->nlayers = (int)v;
	for (int l = 0; l < nn->nlayers; l++) {
		snprintf(what, sizeof(what), "the size of layer %d", l);
		if (read_num(&t, &v, what, errbuf, errlen) < 0)
			goto fail;
		if (v != floor(v) || v < 1 || v > FI_NNW_MAXN) {
			snprintf(errbuf, errlen, "'%s': layer %d has %g neurons (1..%d allowed)", name, l, v,
				 FI_NNW_MAXN);
			goto fail;
		}
		nn->n[l] = (int)v;
	}
	for (int i = 0; i < nn->n[0]; i++) {
		if (read_num(&t, &v, "inbias", errbuf, errlen) < 0)
			goto fail;
		nn->inbias[i] = (float)v;
	}
	for (int i = 0; i < nn->n[0]; i++) {
		if (read_num(&t, &v, "inscale", errbuf, errlen) < 0)
			goto fail;
		nn->inscale[i] = (float)v;
	}
	for (int l = 1; l < nn->nlayers; l++) {
		nn->w[l] = malloc((size_t)nn->n[l] * nn->n[l - 1] * sizeof(float));
		nn->b[l] = malloc((size_t)nn->n[l] * sizeof(float));
		if (!nn->w[l] || !nn->b[l]) {
			snprintf(errbuf, errlen, "'%s': out of memory", name);
			goto fail;
		}
		for (int j = 0; j < nn->n[l]; j++) {
			snprintf(what, sizeof(what), "layer %d neuron %d", l, j);
			for (int k = 0; k < nn->n[l - 1]; k++) {
				if (read_num(&t, &v, what, errbuf, errlen) < 0)
					goto fail;
				nn->w[l][j * nn->n[l - 1] + k] = (float)v;
			}
			if (read_num(&t, &v, what, errbuf, errlen) < 0)
				goto fail;
			nn->b[l][j] = (float)v;
		}
	}
	int nout = nn->n[nn->nlayers - 1];
	for (int i = 0; i < nout; i++) {
		if (read_num(&t, &v, "outbias", errbuf, errlen) < 0)
			goto fail;
		nn->outbias[i] = (float)v;
	}
	for (int i = 0; i < nout; i++) {
		if (read_num(&t, &v, "outscale", errbuf, errlen) < 0)
			goto fail;
		if (v == 0) {
			snprintf(errbuf, errlen, "'%s': outscale is zero", name);
			goto fail;
		}
		nn->outscale[i] = (float)v;
	}
	if (next_token(&t, &s, &sl)) {
		snprintf(errbuf, errlen, "'%s' line %d: unexpected data after the network", name, t.line);
		goto fail;
	}
	return 0;
fail:
	fi_nnw_release(nn);
	return -1;
}

int fi_nnw_read(const char *path, struct fi_nnw *nn, char *errbuf, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	memset(nn, 0, sizeof(*nn));
	if (!f) {
		snprintf(errbuf, errlen, "cannot open CLASS_STAR network '%s': %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(NNW_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(errbuf, errlen, "'%s': out of memory", path);
		return -1;
	}
	n = fread(buf, 1, NNW_MAX_BYTES + 1, f);
	int rerr = ferror(f);
	fclose(f);
	if (rerr || n > NNW_MAX_BYTES) {
		snprintf(errbuf, errlen, rerr ? "cannot read '%s'" : "'%s': larger than 1 MiB, not an NNW file", path);
		free(buf);
		return -1;
	}
	int rc = fi_nnw_parse(buf, n, path, nn, errbuf, errlen);
	free(buf);
	return rc;
}

double fi_nnw_forward(const struct fi_nnw *nn, const float *x)
{
	double a[FI_NNW_MAXN], b[FI_NNW_MAXN];

	for (int i = 0; i < nn->n[0]; i++)
		a[i] = (double)x[i] * nn->inscale[i] + nn->inbias[i];
	for (int l = 1; l < nn->nlayers; l++) {
		for (int j = 0; j < nn->n[l]; j++) {
			double s = nn->b[l][j];
			for (int k = 0; k < nn->n[l - 1]; k++)
				s += (double)nn->w[l][j * nn->n[l - 1] + k] * a[k];
			b[j] = 1 / (1 + exp(-s));
		}
		memcpy(a, b, (size_t)nn->n[l] * sizeof(double));
	}
	return (a[0] - nn->outbias[0]) / nn->outscale[0];
}

static int cmp_by_label(const void *a, const void *b, void *arg)
{
	const int *lab = arg;
	int x = lab[*(const int *)a], y = lab[*(const int *)b];

	return (x > y) - (x < y);
}

int fi_features(const float *z, const float *snr, const float *pix, int nx, int ny, struct fi_det *d, size_t nd,
		const struct fi_class_params *p)
{
	size_t np = (size_t)nx * ny;
	int *lab = calloc(np, sizeof(int)), *owner = malloc(np * sizeof(int));
	size_t *stack = malloc(np * sizeof(size_t));
	int *ord = malloc((nd + 1) * sizeof(int)), *dlab = malloc((nd + 1) * sizeof(int));
	int nl = 0, rc = -1;

	if (!lab || !owner || !stack || !ord || !dlab)
		goto out;
	/* 8-connected components of the filtered map above seg_thresh. */
	for (size_t s0 = 0; s0 < np; s0++) {
		if (lab[s0] || !(snr[s0] > p->seg_thresh))
			continue;
		size_t sp = 0;
		lab[s0] = ++nl;
		stack[sp++] = s0;
		while (sp) {
			size_t q = stack[--sp];
			int qx = (int)(q % nx), qy = (int)(q / nx);
			for (int j = -1; j <= 1; j++)
				for (int i = -1; i <= 1; i++) {
					int xx = qx + i, yy = qy + j;
					if (xx < 0 || xx >= nx || yy < 0 || yy >= ny)
						continue;
					size_t r = (size_t)yy * nx + xx;
					if (!lab[r] && snr[r] > p->seg_thresh) {
						lab[r] = nl;
						stack[sp++] = r;
					}
				}
		}
	}
	/* Detections sorted by component, so each component's peaks are a run. */
	for (size_t i = 0; i < nd; i++) {
		ord[i] = (int)i;
		dlab[i] = lab[(size_t)d[i].iy * nx + d[i].ix];
		d[i].npix = 0;
		d[i].peak_z = -INFINITY;
		d[i].saturated = 0;
		memset(d[i].iso, 0, sizeof(d[i].iso));
	}
	qsort_r(ord, nd, sizeof(int), cmp_by_label, dlab);
	int *first = malloc((size_t)(nl + 2) * sizeof(int)), *count = calloc((size_t)nl + 2, sizeof(int));
	if (!first || !count) {
		free(first);
		free(count);
		goto out;
	}
	for (size_t o = nd; o-- > 0;) {
		first[dlab[ord[o]]] = (int)o;
		count[dlab[ord[o]]]++;
	}
	for (size_t q = 0; q < np; q++) {
		owner[q] = -1;
		int L = lab[q];
		if (!L || !count[L])
			continue;
		int qx = (int)(q % nx), qy = (int)(q / nx), best = -1;
		long bd = 0;
		for (int k = first[L]; k < first[L] + count[L]; k++) {
			const struct fi_det *e = &d[ord[k]];
			long dd = (long)(e->ix - qx) * (e->ix - qx) + (long)(e->iy - qy) * (e->iy - qy);
			if (best < 0 || dd < bd) {
				best = ord[k];
				bd = dd;
			}
		}
		owner[q] = best;
		struct fi_det *e = &d[best];
		e->npix++;
		if (z[q] > e->peak_z)
			e->peak_z = z[q];
		if (pix && pix[q] >= p->saturate)
			e->saturated = 1;
	}
	free(first);
	free(count);
	for (size_t q = 0; q < np; q++) {
		if (owner[q] < 0)
			continue;
		struct fi_det *e = &d[owner[q]];
		double t = p->ana_thresh, pk = e->peak_z;
		for (int i = 0; i < 8; i++) {
			double ti = pk > t ? t * pow(pk / t, i / 8.0) : t;
			if (z[q] >= ti)
				e->iso[i]++;
		}
	}
	for (size_t i = 0; i < nd; i++)
		if (d[i].npix == 0) /* a peak outside every segment (cannot happen for T > seg_thresh) */
			d[i].peak_z = d[i].snr;
	rc = 0;
out:
	free(lab);
	free(owner);
	free(stack);
	free(ord);
	free(dlab);
	return rc;
}

void fi_nnw_inputs(const struct fi_det *d, const struct fi_class_params *p, float x[10])
{
	double fac2 = (p->seeing / p->pixscale) * (p->seeing / p->pixscale);

	x[0] = (float)log10(d->iso[0] ? d->iso[0] / fac2 : 0.01);
	x[1] = (float)(p->ana_thresh > 0 ? log10(d->peak_z > 0 ? d->peak_z / p->ana_thresh : 0.1) : -1.0);
	for (int j = 1; j < 8; j++)
		x[j + 1] = (float)log10(d->iso[j] ? d->iso[j] / fac2 : 0.01);
	x[9] = (float)log10(p->seeing);
}
