/* runtime/fitsinfer/classify.h - SExtractor's CLASS_STAR network: the
 * default.nnw parser, the per-source input features, and a double-precision
 * C forward pass (the reference for the libtorch MLP in torch_shim).
 *
 * default.nnw (Debian source-extractor, GPL) is read at run time, never
 * copied into this repository.  Layout: a first line "NNW", '#' comments,
 * the layer sizes ("3 10 10 1"), inbias[n0], inscale[n0], then for every
 * layer l >= 1 and neuron j: n_{l-1} weights and one bias; then
 * outbias[nL] and outscale[nL].  Forward (SExtractor neurro.c):
 * n0 = x*inscale + inbias; n_l = sigmoid(W_l n_{l-1} + b_l);
 * out = (n_L - outbias) / outscale. */
#ifndef FI_CLASSIFY_H
#define FI_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"

#define FI_NNW_MAXLAYERS 4
#define FI_NNW_MAXN 64

struct fi_nnw {
	int nlayers;                 /* including the input layer */
	int n[FI_NNW_MAXLAYERS];     /* neurons per layer */
	float inbias[FI_NNW_MAXN], inscale[FI_NNW_MAXN];
	float *w[FI_NNW_MAXLAYERS];  /* w[l]: n[l] x n[l-1], row-major, l >= 1 */
	float *b[FI_NNW_MAXLAYERS];  /* b[l]: n[l] */
	float outbias[FI_NNW_MAXN], outscale[FI_NNW_MAXN];
	uint64_t fnv;                /* FNV-1a of the file bytes */
};

/* Parses an NNW file of at most 1 MiB.  Refuses a missing "NNW" magic,
 * bad layer sizes, non-numeric or non-finite values, a truncated file and
 * trailing data, naming the file in errbuf.  Returns 0 or -1. */
int fi_nnw_read(const char *path, struct fi_nnw *nn, char *errbuf, size_t errlen);
/* The same over a buffer (name is used in messages). */
int fi_nnw_parse(const char *buf, size_t len, const char *name, struct fi_nnw *nn, char *errbuf,
		 size_t errlen);
void fi_nnw_release(struct fi_nnw *nn);

/* Double-precision forward pass of one input vector; returns out[0]. */
double fi_nnw_forward(const struct fi_nnw *nn, const float *x);

struct fi_class_params {
	double seg_thresh;   /* segments: filtered significance above this (3) */
	double ana_thresh;   /* analysis threshold in sigma (3), SExtractor's THRESHOLD */
	double seeing;       /* seeing FWHM in arcsec */
	double pixscale;     /* arcsec per pixel */
	float saturate;      /* pixel value at or above which a source is saturated */
};

/* Segments the filtered map (8-connected pixels with snr > seg_thresh,
 * shared pixels given to the nearest peak), then fills each detection's
 * npix, peak_z, iso[0..7] (pixels with z >= t*(peak/t)^(i/8), t = ana_thresh)
 * and saturated.  Returns 0, or -1 when out of memory. */
int fi_features(const float *z, const float *snr, const float *pix, int nx, int ny, struct fi_det *d, size_t nd,
		const struct fi_class_params *p);

/* The 10 network inputs of one detection (SExtractor analyse.c):
 * log10(ISO0/fac2), log10(peak/thresh), log10(ISO1..7/fac2), log10(seeing),
 * fac2 = (seeing/pixscale)^2, log10 of a zero area taken as log10(0.01). */
void fi_nnw_inputs(const struct fi_det *d, const struct fi_class_params *p, float x[10]);

#endif
