/* runtime/fitsinfer/fitsimg.h - reading FITS images with cfitsio into
 * physical values (BSCALE/BZERO applied, unsigned conventions, BLANK and
 * NaN/Inf -> NaN), for envpin-fitsinfer (runs inside the image).
 * Errors go into a caller buffer; nothing here prints or exits.
 * The reader's rules (what is refused, cubes, precision) are in docs/fits.md. */
#ifndef FI_FITSIMG_H
#define FI_FITSIMG_H

#include <stddef.h>
#include <stdint.h>

/* Used by fi_read_image when max_pixels is 0: 2^28 pixels = 1 GiB of floats. */
#define FI_DEFAULT_MAX_PIXELS ((size_t)1 << 28)

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
	/* Added by the reader (fitsio branch); compatible extensions. */
	double bscale, bzero;  /* 1 and 0 when absent */
	int has_blank;         /* an integer image with a BLANK keyword */
	long long blank;       /* the raw stored BLANK value when has_blank */
	char cmptype[24];      /* ZCMPTYPE of a tile-compressed HDU ("RICE_1", ...), else "" */
	char extname[72];      /* EXTNAME of the HDU read, "" when absent */
	uint64_t pixhash;      /* FNV-1a 64 over the n floats as little-endian IEEE bytes,
				* every NaN hashed as 0x7fc00000: identical pixels <=> equal hash
				* (up to collisions), on any host */
};

/* Reads the image named by spec (cfitsio extended filename syntax:
 * "file.fits", "file.fits[1]", "file.fits[SCI]", "file.fits[10:200,20:300]",
 * ".fz" tile-compressed).  Refuses random groups, tables, zero-size images
 * and images larger than max_pixels (0: FI_DEFAULT_MAX_PIXELS).
 * Images with NAXIS = 3 are read whole (plane k starts at data + k*nx*ny);
 * NAXIS > 3 is accepted only when every axis after the third is 1.
 * Pick one plane of a cube with cfitsio's section syntax "file.fits[*,*,2:2]".
 * Returns 0 with img filled (the caller frees it with fi_image_free), or -1
 * with errbuf filled (a message naming spec) and img zeroed. */
int fi_read_image(const char *spec, size_t max_pixels, struct fi_image *img, char *errbuf,
		  size_t errlen);
/* Frees img->data and zeroes img; NULL is a no-op. */
void fi_image_free(struct fi_image *img);

/* Writes the --describe JSON of design.md section 3: {"file","hdu","bitpix",
 * "shape":[ny,nx] (NumPy order, slowest axis first),"n","nan","min","max","sum",
 * "compressed"} to buf (NUL-terminated), plus "equiv_bitpix", "extname",
 * "bscale", "bzero", "blank" (null when absent), "cmptype" (null when not
 * compressed) and "pixhash" ("fnv1a64:<16 hex>").  min and max are null when
 * no pixel is defined.  Returns 0, or -1 when buf is too small. */
int fi_describe_json(const char *spec, const struct fi_image *img, char *buf, size_t len);

#endif
