/* runtime/fitsinfer/skygen.c - envpin-skygen: a deterministic synthetic sky
 * with known truth, the input of the FITS inference smoke test.
 *
 * Writes PREFIX.fits (uint16: BITPIX 16, BZERO 32768, BLANK -32768),
 * PREFIX.fits.fz (the same image RICE_1 tile-compressed, lossless),
 * PREFIX.truth.csv (stars and galaxies) and PREFIX.cosmics.csv (cosmic-ray
 * pixels).  The model and its numbers are documented in docs/fits.md; keep
 * the two in step (SKYVER in the header names the model version).
 *
 * Determinism: one PRNG (xoshiro256** seeded by splitmix64), consumed in a
 * fixed order; no threads; no DATE or CHECKSUM keywords.  The same binary
 * gives the same bytes.  libm's exp/pow/log/lgamma may differ by an ulp
 * between C libraries, which can move a rare pixel by 1 ADU, so tests that
 * compare across builds use tolerances, never hashes. */
#include <errno.h>
#include <fitsio.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SKYVER 1
/* the model (docs/fits.md, "synthetic sky") */
#define SKY_ADU 800.0     /* sky level at the centre */
#define SKY_GX 0.02       /* gradient, ADU per pixel in x */
#define SKY_GY 0.01       /* and in y */
#define GAIN 2.0          /* e-/ADU */
#define RDNOISE 5.0       /* e- */
#define FWHM 3.0          /* px, Moffat */
#define BETA 3.0
#define PIXSCALE 0.5      /* arcsec/px */
#define PSF_R 15          /* PSF stamp half-size: 31x31 */
#define SUB 5             /* sub-pixel samples per axis */
#define STAR_FMIN 600.0   /* e-, log-uniform */
#define STAR_FMAX 6.0e5
#define SAT_FLUX 4.0e6    /* e-, one saturated star */
#define GAL_FMIN 3.0e3    /* e-, log-uniform */
#define GAL_FMAX 3.0e5
#define GAL_NFRAC1 0.6    /* fraction of exponential discs (n = 1); the rest n = 4 */
#define GAL_RMIN 2.5      /* r_eff range, px */
#define GAL_RMAX 7.0
#define GAL_QMIN 0.4
#define GAL_TRUNC 6.0     /* Sersic profiles end at 6 r_eff */
#define GAL_RCAP 45       /* and at most 45 px from the centre */
#define CR_AMIN 300.0     /* ADU per cosmic-ray pixel */
#define CR_AMAX 4000.0
#define MARGIN 8          /* sources keep this far from the edges, px */
#define ADU_MAX 65535.0

static const char usage[] =
	"usage: envpin-skygen [--size N|NXxNY] [--seed S] [--stars N] [--galaxies N] [--cosmics N]\n"
	"                     -o PREFIX\n"
	"Writes PREFIX.fits (uint16, BZERO 32768, BLANK), PREFIX.fits.fz (RICE_1), PREFIX.truth.csv\n"
	"and PREFIX.cosmics.csv: a deterministic synthetic sky (docs/fits.md).  Defaults: 512x512,\n"
	"seed 1, and 151 stars (+1 saturated), 50 galaxies, 30 cosmic rays per 512x512.\n";

/* ---- PRNG: xoshiro256** (Blackman & Vigna), seeded by splitmix64 ---- */
static uint64_t rng_s[4];
static int gauss_have;
static double gauss_next;

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;

	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

static void rng_seed(uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		rng_s[i] = splitmix64(&seed);
	gauss_have = 0;
}

/* uniform in [0, 1) with 53 random bits */
static double unif(void)
{
	return (double)(rng_next() >> 11) * 0x1.0p-53;
}

/* standard normal, Marsaglia's polar method (needs only log and sqrt) */
static double gauss(void)
{
	double u, v, s, f;

	if (gauss_have) {
		gauss_have = 0;
		return gauss_next;
	}
	do {
		u = 2.0 * unif() - 1.0;
		v = 2.0 * unif() - 1.0;
		s = u * u + v * v;
	} while (s >= 1.0 || s == 0.0);
	f = sqrt(-2.0 * log(s) / s);
	gauss_next = v * f;
	gauss_have = 1;
	return u * f;
}

/* Poisson: multiplication method for small means, Hormann's PTRS (1993, the
 * algorithm numpy uses) for mu >= 10.  Every pixel here has mu >= 1600 e-
 * of sky, so PTRS does the work. */
static double poisson(double mu)
{
	if (mu <= 0)
		return 0;
	if (mu < 10) {
		double l = exp(-mu), p = 1.0;
		long k = 0;

		for (;;) {
			p *= unif();
			if (p <= l)
				return (double)k;
			k++;
		}
	}
	double slam = sqrt(mu), loglam = log(mu);
	double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
	double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);

	for (;;) {
		double U = unif() - 0.5, V = unif(), us = 0.5 - fabs(U);
		double k = floor((2 * a / us + b) * U + mu + 0.43);

		if (us >= 0.07 && V <= vr)
			return k;
		if (k < 0 || (us < 0.013 && V > us))
			continue;
		if (log(V) + log(invalpha) - log(a / (us * us) + b) <= -mu + k * loglam - lgamma(k + 1))
			return k;
	}
}

/* ---- model ---- */
struct source {
	int is_gal;
	double x, y;       /* 0-based, pixel centres at integers */
	double flux_e;
	double n, reff, q, theta; /* Sersic; theta in degrees from +x towards +y */
	double flux_adu, peak_adu, sumsq; /* measured on the rendered noiseless stamp */
};

static double moffat_alpha(void)
{
	return FWHM / (2.0 * sqrt(pow(2.0, 1.0 / BETA) - 1.0));
}

static double moffat(double r2, double alpha)
{
	return pow(1.0 + r2 / (alpha * alpha), -BETA);
}

/* Ciotti & Bertin (1999) asymptotic b_n, accurate to 1e-6 for n >= 0.36 */
static double sersic_b(double n)
{
	return 2 * n - 1.0 / 3 + 4.0 / (405 * n) + 46.0 / (25515 * n * n) +
	       131.0 / (1148175 * n * n * n);
}

struct field {
	long nx, ny;
	double *model; /* noiseless sources, ADU */
};

/* Adds stamp (size w x w, centre at cx, cy in the image) scaled by s to the
 * model and records flux, peak and sum of squares of the source. */
static void add_stamp(struct field *fd, const double *st, int w, long cx, long cy, double s,
		      struct source *src)
{
	int r = w / 2;

	src->flux_adu = src->peak_adu = src->sumsq = 0;
	for (int j = 0; j < w; j++) {
		long y = cy - r + j;

		for (int i = 0; i < w; i++) {
			long x = cx - r + i;
			double v = st[(size_t)j * w + i] * s;

			src->flux_adu += v;
			if (v > src->peak_adu)
				src->peak_adu = v;
			if (x < 0 || y < 0 || x >= fd->nx || y >= fd->ny)
				continue;
			src->sumsq += v * v;
			fd->model[(size_t)y * fd->nx + x] += v;
		}
	}
}

/* Pixel-integrated Moffat (SUB x SUB samples per pixel) centred at offset
 * (dx, dy) from the stamp centre, normalised to sum 1 over the stamp. */
static void psf_stamp(double *st, double dx, double dy)
{
	int w = 2 * PSF_R + 1;
	double alpha = moffat_alpha(), tot = 0;

	for (int j = 0; j < w; j++)
		for (int i = 0; i < w; i++) {
			double acc = 0;

			for (int b = 0; b < SUB; b++)
				for (int a = 0; a < SUB; a++) {
					double px = i - PSF_R - 0.5 + (a + 0.5) / SUB - dx;
					double py = j - PSF_R - 0.5 + (b + 0.5) / SUB - dy;

					acc += moffat(px * px + py * py, alpha);
				}
			st[(size_t)j * w + i] = acc;
			tot += acc;
		}
	for (int k = 0; k < w * w; k++)
		st[k] /= tot;
}

static int render_star(struct field *fd, struct source *src)
{
	int w = 2 * PSF_R + 1;
	long cx = lround(src->x), cy = lround(src->y);
	double *st = malloc(sizeof(double) * (size_t)w * w);

	if (!st)
		return -1;
	psf_stamp(st, src->x - (double)cx, src->y - (double)cy);
	add_stamp(fd, st, w, cx, cy, src->flux_e / GAIN, src);
	free(st);
	return 0;
}

/* Sersic profile integrated over pixels (finer sampling near the cusp),
 * truncated at GAL_TRUNC r_eff, normalised, then convolved with the Moffat
 * PSF sampled at pixel centres (the galaxy is already pixel-integrated). */
static int render_galaxy(struct field *fd, struct source *src)
{
	int rg = (int)ceil(GAL_TRUNC * src->reff), w, wk = 2 * PSF_R + 1, wo, ro;
	long cx = lround(src->x), cy = lround(src->y);
	double dx = src->x - (double)cx, dy = src->y - (double)cy, bn = sersic_b(src->n), tot = 0;
	double ct = cos(src->theta * M_PI / 180.0), sn = sin(src->theta * M_PI / 180.0);
	double alpha = moffat_alpha(), ktot = 0;
	double *g, *k, *o;

	if (rg > GAL_RCAP)
		rg = GAL_RCAP;
	w = 2 * rg + 1;
	ro = rg + PSF_R;
	wo = 2 * ro + 1;
	g = calloc((size_t)w * w, sizeof(double));
	k = calloc((size_t)wk * wk, sizeof(double));
	o = calloc((size_t)wo * wo, sizeof(double));
	if (!g || !k || !o) {
		free(g), free(k), free(o);
		return -1;
	}
	for (int j = 0; j < w; j++)
		for (int i = 0; i < w; i++) {
			double ox = i - rg - dx, oy = j - rg - dy, acc = 0;
			int sub = (ox * ox + oy * oy < 4.0) ? 3 * SUB : SUB;

			for (int b = 0; b < sub; b++)
				for (int a = 0; a < sub; a++) {
					double px = ox - 0.5 + (a + 0.5) / sub, py = oy - 0.5 + (b + 0.5) / sub;
					double u = px * ct + py * sn, v = -px * sn + py * ct;
					double r = sqrt(u * u + (v / src->q) * (v / src->q)) / src->reff;

					if (r <= GAL_TRUNC)
						acc += exp(-bn * (pow(r, 1.0 / src->n) - 1.0));
				}
			g[(size_t)j * w + i] = acc / (sub * sub);
			tot += g[(size_t)j * w + i];
		}
	for (int j = 0; j < wk; j++)
		for (int i = 0; i < wk; i++) {
			double px = i - PSF_R, py = j - PSF_R;

			k[(size_t)j * wk + i] = moffat(px * px + py * py, alpha);
			ktot += k[(size_t)j * wk + i];
		}
	for (int j = 0; j < w; j++)
		for (int i = 0; i < w; i++) {
			double gv = g[(size_t)j * w + i] / tot;

			if (gv == 0)
				continue;
			for (int b = 0; b < wk; b++) {
				double *orow = o + (size_t)(j + b) * wo + i;
				const double *krow = k + (size_t)b * wk;

				for (int a = 0; a < wk; a++)
					orow[a] += gv * krow[a] / ktot;
			}
		}
	add_stamp(fd, o, wo, cx, cy, src->flux_e / GAIN, src);
	free(g), free(k), free(o);
	return 0;
}

static double sky_at(long x, long y, long nx, long ny)
{
	return SKY_ADU + SKY_GX * (x - (nx - 1) / 2.0) + SKY_GY * (y - (ny - 1) / 2.0);
}

/* ---- output ---- */
static void fits_fail(const char *path, int st)
{
	char text[FLEN_STATUS], msg[FLEN_ERRMSG];

	fits_get_errstatus(st, text);
	fprintf(stderr, "envpin-skygen: cannot write '%s': %s (cfitsio status %d)\n", path, text, st);
	while (fits_read_errmsg(msg))
		;
}

static int write_fits(const char *path, int rice, const unsigned short *pix, long nx, long ny,
		      uint64_t seed, long nstar, long ngal, long ncr, long badcol)
{
	fitsfile *f = NULL;
	int st = 0;
	long naxes[2] = {nx, ny}, fpixel[2] = {1, 1}, tile[2] = {nx, 1};
	char name[4200];
	double crpix1 = (nx + 1) / 2.0, crpix2 = (ny + 1) / 2.0, cd1 = -PIXSCALE / 3600.0,
	       cd2 = PIXSCALE / 3600.0, zero = 0, d;
	long l;

	/* "!" lets cfitsio replace an existing file */
	snprintf(name, sizeof(name), "!%s", path);
	fits_create_file(&f, name, &st);
	if (rice) {
		fits_set_compression_type(f, RICE_1, &st);
		fits_set_tile_dim(f, 2, tile, &st);
	}
	fits_create_img(f, USHORT_IMG, 2, naxes, &st);
	/* raw -32768 is physical 0, which no sky pixel takes (values are >= 1) */
	l = -32768;
	fits_write_key(f, TLONG, "BLANK", &l, "raw value of undefined pixels (dead column)", &st);
	fits_write_key(f, TSTRING, "BUNIT", "adu", "pixel unit", &st);
	fits_write_key(f, TSTRING, "ORIGIN", "envpin-skygen", "deterministic synthetic sky", &st);
	fits_write_key(f, TSTRING, "OBJECT", "synthetic sky", NULL, &st);
	l = SKYVER;
	fits_write_key(f, TLONG, "SKYVER", &l, "sky model version (docs/fits.md)", &st);
	l = (long)seed;
	if ((uint64_t)l == seed)
		fits_write_key(f, TLONG, "SKYSEED", &l, "PRNG seed", &st);
	d = GAIN;
	fits_write_key(f, TDOUBLE, "GAIN", &d, "e-/ADU", &st);
	d = RDNOISE;
	fits_write_key(f, TDOUBLE, "RDNOISE", &d, "read noise, e-", &st);
	d = ADU_MAX;
	fits_write_key(f, TDOUBLE, "SATURATE", &d, "ADU", &st);
	d = SKY_ADU;
	fits_write_key(f, TDOUBLE, "SKYLEVEL", &d, "sky at the centre, ADU", &st);
	d = FWHM * PIXSCALE;
	fits_write_key(f, TDOUBLE, "SEEING", &d, "PSF FWHM, arcsec", &st);
	d = FWHM;
	fits_write_key(f, TDOUBLE, "FWHMPIX", &d, "PSF FWHM, px", &st);
	d = BETA;
	fits_write_key(f, TDOUBLE, "PSFBETA", &d, "Moffat beta", &st);
	d = PIXSCALE;
	fits_write_key(f, TDOUBLE, "PIXSCALE", &d, "arcsec/px", &st);
	fits_write_key(f, TLONG, "NSTARS", &nstar, "stars in the truth table", &st);
	fits_write_key(f, TLONG, "NGALS", &ngal, "galaxies in the truth table", &st);
	fits_write_key(f, TLONG, "NCOSMIC", &ncr, "cosmic-ray pixels", &st);
	l = badcol + 1;
	fits_write_key(f, TLONG, "BADCOL", &l, "dead column (1-based x), BLANK", &st);
	l = 2;
	fits_write_key(f, TLONG, "WCSAXES", &l, NULL, &st);
	fits_write_key(f, TSTRING, "CTYPE1", "RA---TAN", NULL, &st);
	fits_write_key(f, TSTRING, "CTYPE2", "DEC--TAN", NULL, &st);
	fits_write_key(f, TSTRING, "CUNIT1", "deg", NULL, &st);
	fits_write_key(f, TSTRING, "CUNIT2", "deg", NULL, &st);
	fits_write_key(f, TDOUBLE, "CRPIX1", &crpix1, NULL, &st);
	fits_write_key(f, TDOUBLE, "CRPIX2", &crpix2, NULL, &st);
	d = 150.1;
	fits_write_key(f, TDOUBLE, "CRVAL1", &d, NULL, &st);
	d = 2.2;
	fits_write_key(f, TDOUBLE, "CRVAL2", &d, NULL, &st);
	fits_write_key(f, TDOUBLE, "CD1_1", &cd1, NULL, &st);
	fits_write_key(f, TDOUBLE, "CD1_2", &zero, NULL, &st);
	fits_write_key(f, TDOUBLE, "CD2_1", &zero, NULL, &st);
	fits_write_key(f, TDOUBLE, "CD2_2", &cd2, NULL, &st);
	fits_write_key(f, TSTRING, "RADESYS", "ICRS", NULL, &st);
	fits_write_pix(f, TUSHORT, fpixel, (LONGLONG)nx * ny, (void *)pix, &st);
	fits_close_file(f, &st);
	if (st) {
		fits_fail(path, st);
		return -1;
	}
	return 0;
}

static FILE *open_out(const char *prefix, const char *suffix, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s%s", prefix, suffix);
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "envpin-skygen: cannot create '%s': %s\n", path, strerror(errno));
	return f;
}

static int close_out(FILE *f, const char *path)
{
	if (ferror(f) | (fclose(f) != 0)) {
		fprintf(stderr, "envpin-skygen: cannot write '%s': %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},   {"seed", required_argument, NULL, 'r'},
		{"stars", required_argument, NULL, 'S'},  {"galaxies", required_argument, NULL, 'G'},
		{"cosmics", required_argument, NULL, 'C'}, {"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	long nx = 512, ny = 512, nstar = -1, ngal = -1, ncos = -1, seed = 1;
	const char *prefix = NULL;
	int c, rc = 3;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 's': {
			char a[64];
			char *x;

			snprintf(a, sizeof(a), "%s", optarg);
			x = strchr(a, 'x');
			if (x)
				*x = '\0';
			bad = parse_long(a, 2 * MARGIN + 2, 16384, &nx) < 0 ||
			      parse_long(x ? x + 1 : a, 2 * MARGIN + 2, 16384, &ny) < 0;
			break;
		}
		case 'r':
			bad = parse_long(optarg, 0, LONG_MAX, &seed) < 0;
			break;
		case 'S':
			bad = parse_long(optarg, 0, 100000, &nstar) < 0;
			break;
		case 'G':
			bad = parse_long(optarg, 0, 100000, &ngal) < 0;
			break;
		case 'C':
			bad = parse_long(optarg, 0, 100000, &ncos) < 0;
			break;
		case 'o':
			prefix = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "envpin-skygen: invalid value '%s' for --%s\n", optarg,
				c == 's' ? "size" : c == 'r' ? "seed" : c == 'S' ? "stars" : c == 'G' ? "galaxies" : "cosmics");
			return 2;
		}
	}
	if (!prefix || optind != argc || strlen(prefix) > 4000) {
		fputs(usage, stderr);
		return 2;
	}
	double area = (double)nx * ny / (512.0 * 512.0);
	if (nstar < 0)
		nstar = lround(151 * area);
	if (ngal < 0)
		ngal = lround(50 * area);
	if (ncos < 0)
		ncos = lround(30 * area);

	long nsrc = nstar + (nstar > 0) + ngal, badcol = nx * 137 / 512;
	size_t npix = (size_t)nx * ny;
	struct field fd = {nx, ny, calloc(npix, sizeof(double))};
	struct source *src = calloc((size_t)nsrc + 1, sizeof(*src));
	unsigned short *pix = malloc(npix * sizeof(*pix));
	char path[4200];
	FILE *f;
	long ncrpix = 0;

	if (!fd.model || !src || !pix) {
		fprintf(stderr, "envpin-skygen: out of memory\n");
		goto out;
	}
	rng_seed((uint64_t)seed);
	/* the catalogue first, in a fixed order: stars, the saturated star, galaxies */
	double span_x = (double)(nx - 1 - 2 * MARGIN), span_y = (double)(ny - 1 - 2 * MARGIN);
	for (long i = 0; i < nsrc; i++) {
		struct source *s = &src[i];

		s->x = MARGIN + unif() * span_x;
		s->y = MARGIN + unif() * span_y;
		if (i < nstar) {
			s->flux_e = exp(log(STAR_FMIN) + unif() * (log(STAR_FMAX) - log(STAR_FMIN)));
		} else if (i == nstar) {
			s->flux_e = SAT_FLUX;
		} else {
			s->is_gal = 1;
			s->flux_e = exp(log(GAL_FMIN) + unif() * (log(GAL_FMAX) - log(GAL_FMIN)));
			s->n = unif() < GAL_NFRAC1 ? 1.0 : 4.0;
			s->reff = GAL_RMIN + unif() * (GAL_RMAX - GAL_RMIN);
			s->q = GAL_QMIN + unif() * (1.0 - GAL_QMIN);
			s->theta = unif() * 180.0;
		}
	}
	for (long i = 0; i < nsrc; i++)
		if ((src[i].is_gal ? render_galaxy(&fd, &src[i]) : render_star(&fd, &src[i])) < 0) {
			fprintf(stderr, "envpin-skygen: out of memory\n");
			goto out;
		}
	/* noise, pixel by pixel in row order: Poisson in electrons on sky +
	 * sources, Gaussian read noise, then 16-bit ADC rounding and clipping */
	for (long y = 0; y < ny; y++)
		for (long x = 0; x < nx; x++) {
			size_t i = (size_t)y * nx + x;
			double e = poisson((sky_at(x, y, nx, ny) + fd.model[i]) * GAIN) + RDNOISE * gauss();
			double adu = floor(e / GAIN + 0.5);

			pix[i] = (unsigned short)(adu < 1 ? 1 : adu > ADU_MAX ? ADU_MAX : adu);
		}
	/* cosmic rays: 1-4 pixel tracks, not seen through the PSF */
	f = open_out(prefix, ".cosmics.csv", path, sizeof(path));
	if (!f)
		goto out;
	fprintf(f, "cr_id,x,y,adu\n");
	static const int dirs[4][2] = {{1, 0}, {0, 1}, {1, 1}, {1, -1}};
	for (long k = 0; k < ncos; k++) {
		long x = MARGIN + (long)(unif() * span_x), y = MARGIN + (long)(unif() * span_y);
		int len = 1 + (int)(unif() * 4), d = (int)(unif() * 4);

		for (int t = 0; t < len; t++) {
			long px = x + t * dirs[d][0], py = y + t * dirs[d][1];
			double a = floor(CR_AMIN + unif() * (CR_AMAX - CR_AMIN));
			size_t i = (size_t)py * nx + px;
			double v = pix[i] + a;

			pix[i] = (unsigned short)(v > ADU_MAX ? ADU_MAX : v);
			fprintf(f, "%ld,%ld,%ld,%.0f\n", k + 1, px + 1, py + 1, a);
			ncrpix++;
		}
	}
	if (close_out(f, path) < 0)
		goto out;
	for (long y = 0; y < ny; y++)
		pix[(size_t)y * nx + badcol] = 0; /* physical 0 = BLANK */

	f = open_out(prefix, ".truth.csv", path, sizeof(path));
	if (!f)
		goto out;
	/* x, y 1-based FITS pixel coordinates; flux and peak in ADU above sky,
	 * noiseless; snr is the background-limited matched-filter SNR
	 * sqrt(sum m^2)/sigma_sky of the source's own model m */
	fprintf(f, "id,class,x,y,flux,peak,snr,saturated,sersic_n,r_eff,q,theta\n");
	for (long i = 0; i < nsrc; i++) {
		const struct source *s = &src[i];
		long cx = lround(s->x), cy = lround(s->y);
		double sky = sky_at(cx, cy, nx, ny);
		double sig = sqrt(sky * GAIN + RDNOISE * RDNOISE) / GAIN;

		fprintf(f, "%ld,%s,%.4f,%.4f,%.3f,%.3f,%.3f,%d,%.1f,%.4f,%.4f,%.3f\n", i + 1,
			s->is_gal ? "galaxy" : "star", s->x + 1, s->y + 1, s->flux_adu, s->peak_adu,
			sqrt(s->sumsq) / sig, sky + s->peak_adu > ADU_MAX, s->n, s->reff, s->q,
			s->theta);
	}
	if (close_out(f, path) < 0)
		goto out;

	char fits[4200], fz[4200];
	snprintf(fits, sizeof(fits), "%s.fits", prefix);
	snprintf(fz, sizeof(fz), "%s.fits.fz", prefix);
	if (write_fits(fits, 0, pix, nx, ny, (uint64_t)seed, nstar + (nstar > 0), ngal, ncrpix,
		       badcol) < 0 ||
	    write_fits(fz, 1, pix, nx, ny, (uint64_t)seed, nstar + (nstar > 0), ngal, ncrpix, badcol) <
		    0)
		goto out;
	printf("{\"fits\":\"%s\",\"fz\":\"%s\",\"truth\":\"%s.truth.csv\",\"cosmics\":\"%s.cosmics.csv\","
	       "\"nx\":%ld,\"ny\":%ld,\"seed\":%ld,\"stars\":%ld,\"galaxies\":%ld,\"cosmic_pixels\":%ld,"
	       "\"badcol\":%ld}\n",
	       fits, fz, prefix, prefix, nx, ny, seed, nstar + (nstar > 0), ngal, ncrpix, badcol + 1);
	if (fflush(stdout) == 0 && !ferror(stdout))
		rc = 0;
out:
	free(fd.model);
	free(src);
	free(pix);
	return rc;
}
