/* runtime/fitsinfer/fitsimg.h - reading FITS images with cfitsio into
 * physical values (BSCALE/BZERO applied, unsigned conventions, BLANK and
 * NaN/Inf -> NaN), for envpin-fitsinfer (runs inside the image).
 * Errors go into a caller buffer; nothing here prints or exits. */
#ifndef FI_FITSIMG_H
#define FI_FITSIMG_H

#include <stddef.h>
#include <stdint.h>

struct fi_image {
	int bitpix;        /* BITPIX as stored (8, 16, 32, 64, -32, -64) */
	int equiv_bitpix;  /* cfitsio's equivalent type (e.g. 20 for uint16 via BZERO) */
	int naxis;
	long naxes[9];
	size_t n;          /* number of pixels */
	float *data;       /* n physical values, row-major (x fastest); NaN where undefined */
	size_t nan;        /* undefined pixels: BLANK, NaN, Inf */
	double min, max, sum; /* over defined pixels (sum in double) */
	int compressed;    /* the HDU is tile-compressed */
	int hdu;           /* 1-based HDU number read */
};

/* Reads the image named by spec (cfitsio extended filename syntax:
 * "file.fits", "file.fits[1]", "file.fits[SCI]", "file.fits[10:200,20:300]",
 * ".fz" tile-compressed).  Refuses random groups, tables, zero-size images
 * and images larger than max_pixels.  Returns 0, or -1 with errbuf filled. */
int fi_read_image(const char *spec, size_t max_pixels, struct fi_image *img, char *errbuf,
		  size_t errlen);
void fi_image_free(struct fi_image *img);

/* Writes the --describe JSON of design.md section 3: {"file","hdu","bitpix",
 * "shape":[ny,nx] (NumPy order, slowest axis first),"n","nan","min","max","sum",
 * "compressed"} to buf (NUL-terminated). Returns 0 or -1. */
int fi_describe_json(const char *spec, const struct fi_image *img, char *buf, size_t len);

#endif
