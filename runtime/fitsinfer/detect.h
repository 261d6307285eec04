/* runtime/fitsinfer/detect.h - the matched-filter kernel, C reference
 * implementations of the filter and of 3x3 max-pool peak finding (the model
 * runs in libtorch, see torch_shim.h; these check it), sub-pixel refinement,
 * matching detections against a truth catalogue, and the science scores.
 * Coordinates in fi_det and fi_truth are FITS 1-based (pixel centre at the
 * integer); ix/iy are 0-based array indices. */
#ifndef FI_DETECT_H
#define FI_DETECT_H

#include <stddef.h>
#include <stdint.h>

/* Pixel-integrated PSF kernel of ks x ks (ks odd), centred, normalised to unit
 * L2 norm so that filtering an image in sigma units (white noise) gives a
 * significance map in sigma: a Moffat profile of the given FWHM (pixels) and
 * beta, or a Gaussian when beta <= 0.  11x11 sub-sampling per pixel.
 * Returns 0, or -1 for bad arguments. */
int fi_psf_kernel(double fwhm, double beta, int ks, float *k);

/* The kernel size used for a FWHM: 2*ceil(FWHM)+1, at least 5. */
int fi_kernel_size(double fwhm);

/* Reference 2-D cross-correlation with zero padding (what torch's conv2d
 * computes), accumulated in double. */
void fi_conv2d_ref(const float *in, int nx, int ny, const float *k, int ks, float *out);

/* Reference peak map: pm[i] = 1 where snr[i] equals the maximum of its 3x3
 * neighbourhood (outside the image counts as -inf) and snr[i] > thresh. */
void fi_peak_map(const float *snr, int nx, int ny, float thresh, uint8_t *pm);

struct fi_det {
	int ix, iy;        /* 0-based peak pixel */
	double x, y;       /* refined, 1-based */
	float snr;         /* filtered significance at the peak pixel */
	float gap;         /* snr minus the largest neighbour: how close to a tie */
	float peak_z;      /* largest unfiltered significance in the segment */
	int npix;          /* segment size */
	int iso[8];        /* isophotal areas (classify.c) */
	int saturated;     /* the segment holds a pixel at or above saturation */
	float class_star;  /* CLASS_STAR, NAN until classified */
	int match;         /* index of the matched truth entry, or -1 */
	int kind;          /* what an unmatched detection is: FI_UNMATCHED_* */
};

enum { FI_UNMATCHED_SPURIOUS = 0, FI_UNMATCHED_COSMIC = 1, FI_UNMATCHED_GALAXY = 2 };

/* Builds the detection list from a peak map: parabolic 3-point refinement
 * along x and y, dx = (l - r) / (2 (l - 2c + r)), clipped to +-0.5 (it is
 * continuous across near-ties, which keeps the fingerprint stable), and ties
 * within 1 px merged (flat-topped saturated peaks).  *out is malloc'd, the
 * caller frees it.  Returns the count, or -1 when out of memory. */
long fi_peaks_list(const float *snr, const uint8_t *pm, int nx, int ny, struct fi_det **out);

enum { FI_STAR = 0, FI_GALAXY = 1, FI_COSMIC = 2 };

struct fi_truth {
	double x, y;   /* 1-based */
	double flux;   /* ADU, total */
	double snr;    /* true matched-filter SNR, or NAN when unknown */
	double r_eff;  /* galaxies: effective radius in px (0 when unknown) */
	int kind;      /* FI_STAR, FI_GALAXY, FI_COSMIC */
	int det;       /* matched detection index, or -1 */
};

/* Reads a truth catalogue: CSV with a header line naming the columns.  Needs
 * x and y (1-based); uses flux, snr, r_eff, and the class from is_gal (0/1)
 * or from class/kind/type (star, galaxy/gal, cosmic/cr).  Returns the count
 * (*out malloc'd), or -1 with errbuf filled. */
long fi_truth_read(const char *path, struct fi_truth **out, char *errbuf, size_t errlen);

/* Fills truth[].snr where it is NAN with the point-source estimate
 * flux * ||psf||_2 / rms (psf normalised to unit sum), which is exact for
 * stars and an upper bound for galaxies. */
void fi_truth_estimate_snr(struct fi_truth *t, size_t nt, double psf_l2, double rms);

/* Matches detections to stars and galaxies: brightest truth first, each to
 * its nearest free detection within radius px.  Unmatched detections are
 * then labelled cosmic (within radius of a cosmic ray), galaxy (inside
 * max(4 px, 2 r_eff) of a galaxy: a sub-peak) or spurious. */
void fi_match(struct fi_det *d, size_t nd, struct fi_truth *t, size_t nt, double radius);

struct fi_score {
	int n_det, n_matched, n_cosmic, n_galaxy_sub, n_spurious;
	int n_true[3], n_found[3];   /* stars+galaxies with snr >= 5, 10, 20 */
	double completeness[3];      /* NAN when no truth in the bin */
	double unexplained_frac;     /* spurious / detections */
	int n_pos;                   /* matched stars, snr >= 20, unsaturated */
	double pos_rms;              /* their rms position error (px) */
	int n_cls[2], n_cls_ok[2];   /* classified matches with snr >= 20, 50 */
	double accuracy[2];          /* CLASS_STAR > 0.5 means star */
	double median_cs_star, median_cs_gal;
};

/* Scores matched detections (after fi_match and classification).  Saturated
 * detections are left out of the position and classification figures, as
 * the CLASS_STAR network is not meant for them. */
void fi_score(const struct fi_det *d, size_t nd, const struct fi_truth *t, size_t nt, struct fi_score *s);

/* FNV-1a 64 over bytes (identifies buffers and files; not cryptographic). */
uint64_t fi_fnv1a(const void *p, size_t n, uint64_t h);
#define FI_FNV_INIT 0xcbf29ce484222325ULL

#endif
