/* runtime/fitsinfer/background.h - validity mask, SExtractor-style mesh
 * background and RMS, and normalisation to per-pixel significance.
 *
 * The estimator follows SExtractor/SEP (research/fits.md section 4.1): per mesh
 * of bw x bw pixels, a first cut at mean +- 2 sigma, then iterative clipping at
 * median +- 3 sigma until sigma converges; mode = 2.5 median - 1.5 mean when
 * |mean - median| < 0.3 sigma, else the median; meshes with < 50 % valid
 * pixels are filled from the nearest valid mesh; a median filter over the
 * mesh grid; bilinear interpolation between mesh centres (SExtractor uses a
 * bicubic spline; the tolerance against SEP absorbs the difference).
 * Nothing here prints or exits; errors go into a caller buffer. */
#ifndef FI_BACKGROUND_H
#define FI_BACKGROUND_H

#include <stddef.h>
#include <stdint.h>

struct fi_bkg {
	int nx, ny;         /* image size */
	int bw;             /* mesh size in pixels */
	int mx, my;         /* mesh grid size */
	int n_mesh_valid;   /* meshes with enough valid pixels (before filling) */
	float *mesh_bkg;    /* mx*my, after filling and filtering */
	float *mesh_rms;
	float *bkg;         /* nx*ny full-resolution maps */
	float *rms;
	double global_bkg;  /* median of the mesh maps, as SEP's globalback/globalrms */
	double global_rms;
};

/* Marks undefined pixels: mask[i] = 1 where pix[i] is not finite.  Returns
 * the number of masked pixels. */
size_t fi_mask_build(const float *pix, size_t n, uint8_t *mask);

/* Robust statistics of one sample (values are reordered).  Sets *mode (the
 * SExtractor mode estimate) and *sigma (clipped standard deviation).
 * Returns 0, or -1 when n is 0. */
int fi_clipped_stats(float *v, size_t n, double *mode, double *sigma);

/* Estimates the background and RMS maps of an nx*ny image (row-major, x
 * fastest) whose undefined pixels are set in mask (may be NULL).  bw is the
 * mesh size (64 is SExtractor's default), fsize the median filter size over
 * the mesh grid (3; 1 disables it).  Fills *out (release with
 * fi_bkg_release).  Returns 0, or -1 with errbuf filled. */
int fi_background(const float *pix, const uint8_t *mask, int nx, int ny, int bw, int fsize,
		  struct fi_bkg *out, char *errbuf, size_t errlen);
void fi_bkg_release(struct fi_bkg *b);

/* z = (pix - bkg) / rms, and 0 where masked or where rms is not positive, so
 * that undefined pixels contribute nothing to the matched filter. */
void fi_normalise(const float *pix, const uint8_t *mask, const struct fi_bkg *b, float *z);

#endif
