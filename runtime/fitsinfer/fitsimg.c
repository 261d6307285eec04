/* runtime/fitsinfer/fitsimg.c - see fitsimg.h; rules in docs/fits.md. */
#include "fitsimg.h"

#include <errno.h>
#include <fitsio.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void seterr(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/* cfitsio keeps a global message stack; its first useful line usually says
 * more than the status text ("could not interpret primary array header").
 * The stack is always drained so that stale messages never leak into the
 * next error. */
static void fits_err(char *errbuf, size_t errlen, const char *spec, const char *what, int status)
{
	char text[FLEN_STATUS] = "", msg[FLEN_ERRMSG] = "", detail[FLEN_ERRMSG] = "";

	fits_get_errstatus(status, text);
	while (fits_read_errmsg(msg)) {
		size_t l = strlen(msg);

		while (l > 0 && (msg[l - 1] == ' ' || msg[l - 1] == '\n' || msg[l - 1] == ':'))
			msg[--l] = '\0';
		/* the last line that is not just the file name is the most specific */
		if (l > 0 && !strstr(spec, msg) && strcmp(msg, text) != 0)
			memcpy(detail, msg, l + 1);
	}
	if (detail[0])
		seterr(errbuf, errlen, "'%s': %s: %s (cfitsio status %d: %s)", spec, what, text, status,
		       detail);
	else
		seterr(errbuf, errlen, "'%s': %s: %s (cfitsio status %d)", spec, what, text, status);
}

void fi_image_free(struct fi_image *img)
{
	if (!img)
		return;
	free(img->data);
	memset(img, 0, sizeof(*img));
}

static void close_quietly(fitsfile *f)
{
	int st = 0;

	if (f)
		fits_close_file(f, &st);
	fits_clear_errmsg();
}

/* Copies a keyword value, cut to fit (ZCMPTYPE values are short). */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t l = strnlen(src, len - 1);

	memcpy(dst, src, l);
	dst[l] = '\0';
}

/* FNV-1a over little-endian bytes, NaN canonicalised, so that the hash is
 * the same on any host and for NaNs of any payload. */
static uint64_t pixel_hash(const float *v, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		uint32_t u;

		if (isnan(v[i]))
			u = 0x7fc00000u;
		else
			memcpy(&u, &v[i], sizeof(u));
		for (int b = 0; b < 4; b++) {
			h ^= (u >> (8 * b)) & 0xffu;
			h *= 0x100000001b3ULL;
		}
	}
	return h;
}

int fi_read_image(const char *spec, size_t max_pixels, struct fi_image *img, char *errbuf,
		  size_t errlen)
{
	fitsfile *f = NULL;
	int st = 0, bitpix = 0, naxis = 0, equiv = 0, hdu = 0, groups = 0, anynul = 0;
	long naxes[9] = {0};
	long fpixel[9];
	size_t n = 1;
	float nul = NAN;
	float *data = NULL;
	char val[FLEN_VALUE];

	if (img)
		memset(img, 0, sizeof(*img));
	if (!spec || !img) {
		seterr(errbuf, errlen, "fi_read_image: no file or no image given");
		return -1;
	}
	if (max_pixels == 0)
		max_pixels = FI_DEFAULT_MAX_PIXELS;
	fits_clear_errmsg();
	/* fits_open_image moves past an empty primary HDU to the first image
	 * (tile-compressed ones included) unless spec names an HDU. */
	if (fits_open_image(&f, spec, READONLY, &st)) {
		fits_err(errbuf, errlen, spec, "cannot open as a FITS image", st);
		close_quietly(f);
		return -1;
	}
	fits_get_hdu_num(f, &hdu);
	/* Random groups (GROUPS = T, NAXIS1 = 0) look like an image to cfitsio;
	 * their "pixels" are parameters and visibilities, never an image. */
	if (fits_read_key(f, TLOGICAL, "GROUPS", &groups, NULL, &st) == 0 && groups) {
		seterr(errbuf, errlen, "'%s': HDU %d holds random groups (GROUPS = T), not an image", spec,
		       hdu);
		close_quietly(f);
		return -1;
	}
	st = 0;
	if (fits_get_img_param(f, 9, &bitpix, &naxis, naxes, &st) ||
	    fits_get_img_equivtype(f, &equiv, &st)) {
		fits_err(errbuf, errlen, spec, "cannot read the image header", st);
		close_quietly(f);
		return -1;
	}
	if (naxis == 0) {
		int nhdu = 0;

		st = 0;
		fits_get_num_hdus(f, &nhdu, &st);
		seterr(errbuf, errlen, "'%s': HDU %d has no image data (NAXIS = 0)%s", spec, hdu,
		       (hdu == 1 && nhdu > 1 && !strchr(spec, '['))
			       ? " and no image extension follows (only tables)"
			       : "");
		close_quietly(f);
		return -1;
	}
	if (naxis < 2) {
		seterr(errbuf, errlen, "'%s': HDU %d is one-dimensional (NAXIS = 1), not an image", spec,
		       hdu);
		close_quietly(f);
		return -1;
	}
	if (naxis > 9) {
		seterr(errbuf, errlen, "'%s': HDU %d has NAXIS = %d; at most 3 axes are supported", spec,
		       hdu, naxis);
		close_quietly(f);
		return -1;
	}
	for (int i = 0; i < naxis; i++) {
		if (naxes[i] <= 0) {
			seterr(errbuf, errlen, "'%s': HDU %d is empty (NAXIS%d = %ld)", spec, hdu, i + 1,
			       naxes[i]);
			close_quietly(f);
			return -1;
		}
	}
	for (int i = 0; i < naxis; i++) {
		if (i >= 3 && naxes[i] != 1) {
			seterr(errbuf, errlen,
			       "'%s': HDU %d has NAXIS = %d with NAXIS%d = %ld; at most 3 axes are "
			       "supported (select a plane with a section, e.g. FILE[*,*,1:1,1:1])",
			       spec, hdu, naxis, i + 1, naxes[i]);
			close_quietly(f);
			return -1;
		}
		if ((size_t)naxes[i] > max_pixels / n) {
			seterr(errbuf, errlen, "'%s': HDU %d has more pixels than the limit of %zu", spec,
			       hdu, max_pixels);
			close_quietly(f);
			return -1;
		}
		n *= (size_t)naxes[i];
	}
	data = malloc(n * sizeof(*data));
	if (!data) {
		seterr(errbuf, errlen, "'%s': out of memory for %zu pixels", spec, n);
		close_quietly(f);
		return -1;
	}
	for (int i = 0; i < 9; i++)
		fpixel[i] = 1;
	/* TFLOAT with a NaN null value: cfitsio applies BSCALE/BZERO in double
	 * precision, maps BLANK (integer images) and NaN/Inf (float images) to
	 * NaN, and decodes tile compression.  A null value of 0 would switch the
	 * null check off, so NaN is required. */
	if (fits_read_pix(f, TFLOAT, fpixel, (LONGLONG)n, &nul, data, &anynul, &st)) {
		fits_err(errbuf, errlen, spec,
			 (st == END_OF_FILE || st == READ_ERROR) ? "cannot read the pixels (truncated file?)"
								 : "cannot read the pixels",
			 st);
		free(data);
		close_quietly(f);
		return -1;
	}

	img->bitpix = bitpix;
	img->equiv_bitpix = equiv;
	img->naxis = naxis;
	memcpy(img->naxes, naxes, sizeof(naxes));
	img->n = n;
	img->hdu = hdu;
	img->bscale = 1.0;
	img->bzero = 0.0;
	st = 0;
	if (fits_read_key(f, TDOUBLE, "BSCALE", &img->bscale, NULL, &st))
		img->bscale = 1.0;
	st = 0;
	if (fits_read_key(f, TDOUBLE, "BZERO", &img->bzero, NULL, &st))
		img->bzero = 0.0;
	st = 0;
	/* BLANK means something only for integer data (a float image uses NaN).
	 * Read as text and parsed here: cfitsio 4.2.0's own conversion (ffc2j)
	 * overflows a message buffer on a long non-integer value (found by
	 * tests/fuzz/fuzz_fits). */
	if (bitpix > 0 && fits_read_key(f, TSTRING, "BLANK", val, NULL, &st) == 0) {
		char *end;

		errno = 0;
		img->blank = strtoll(val, &end, 10);
		while (*end == ' ')
			end++;
		img->has_blank = end != val && !*end && !errno;
		if (!img->has_blank)
			img->blank = 0;
	}
	st = 0;
	img->compressed = fits_is_compressed_image(f, &st) ? 1 : 0;
	st = 0;
	if (img->compressed && fits_read_key(f, TSTRING, "ZCMPTYPE", val, NULL, &st) == 0)
		copy_str(img->cmptype, sizeof(img->cmptype), val);
	st = 0;
	if (fits_read_key(f, TSTRING, "EXTNAME", val, NULL, &st) == 0)
		copy_str(img->extname, sizeof(img->extname), val);
	close_quietly(f);

	img->min = INFINITY;
	img->max = -INFINITY;
	for (size_t i = 0; i < n; i++) {
		float v = data[i];

		/* cfitsio already turns Inf into NaN; be sure for any version */
		if (!isfinite(v)) {
			data[i] = NAN;
			img->nan++;
			continue;
		}
		if (v < img->min)
			img->min = v;
		if (v > img->max)
			img->max = v;
		img->sum += v;
	}
	if (img->nan == n)
		img->min = img->max = NAN;
	img->data = data;
	img->pixhash = pixel_hash(data, n);
	return 0;
}

/* Appends to buf at *pos; returns -1 once the buffer is full. */
static int put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*pos >= len)
		return -1;
	va_start(ap, fmt);
	r = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= len - *pos)
		return -1;
	*pos += (size_t)r;
	return 0;
}

static int put_string(char *buf, size_t len, size_t *pos, const char *s)
{
	if (put(buf, len, pos, "\"") < 0)
		return -1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int r;

		if (*p == '"' || *p == '\\')
			r = put(buf, len, pos, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			r = put(buf, len, pos, "\\u%04x", *p);
		else
			r = put(buf, len, pos, "%c", *p);
		if (r < 0)
			return -1;
	}
	return put(buf, len, pos, "\"");
}

/* %.9g round-trips a float; sums and header values need %.17g. JSON has no
 * NaN, so undefined statistics are null. */
static int put_number(char *buf, size_t len, size_t *pos, double v, int digits)
{
	if (!isfinite(v))
		return put(buf, len, pos, "null");
	return put(buf, len, pos, "%.*g", digits, v);
}

int fi_describe_json(const char *spec, const struct fi_image *img, char *buf, size_t len)
{
	size_t pos = 0;

	if (!buf || len == 0 || !img)
		return -1;
	buf[0] = '\0';
	if (put(buf, len, &pos, "{\"file\":") < 0 || put_string(buf, len, &pos, spec ? spec : "") < 0 ||
	    put(buf, len, &pos, ",\"hdu\":%d,\"bitpix\":%d,\"equiv_bitpix\":%d,\"shape\":[", img->hdu,
		img->bitpix, img->equiv_bitpix) < 0)
		goto full;
	for (int i = img->naxis - 1; i >= 0; i--)
		if (put(buf, len, &pos, "%ld%s", img->naxes[i], i > 0 ? "," : "") < 0)
			goto full;
	if (put(buf, len, &pos, "],\"n\":%zu,\"nan\":%zu,\"min\":", img->n, img->nan) < 0 ||
	    put_number(buf, len, &pos, img->min, 9) < 0 || put(buf, len, &pos, ",\"max\":") < 0 ||
	    put_number(buf, len, &pos, img->max, 9) < 0 || put(buf, len, &pos, ",\"sum\":") < 0 ||
	    put_number(buf, len, &pos, img->sum, 17) < 0 ||
	    put(buf, len, &pos, ",\"compressed\":%s,\"cmptype\":", img->compressed ? "true" : "false") < 0)
		goto full;
	if ((img->compressed ? put_string(buf, len, &pos, img->cmptype) : put(buf, len, &pos, "null")) < 0 ||
	    put(buf, len, &pos, ",\"extname\":") < 0 || put_string(buf, len, &pos, img->extname) < 0 ||
	    put(buf, len, &pos, ",\"bscale\":") < 0 || put_number(buf, len, &pos, img->bscale, 17) < 0 ||
	    put(buf, len, &pos, ",\"bzero\":") < 0 || put_number(buf, len, &pos, img->bzero, 17) < 0 ||
	    put(buf, len, &pos, ",\"blank\":") < 0)
		goto full;
	if ((img->has_blank ? put(buf, len, &pos, "%lld", img->blank) : put(buf, len, &pos, "null")) < 0 ||
	    put(buf, len, &pos, ",\"pixhash\":\"fnv1a64:%016llx\"}", (unsigned long long)img->pixhash) < 0)
		goto full;
	return 0;
full:
	buf[0] = '\0';
	return -1;
}
