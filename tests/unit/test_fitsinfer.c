/* Unit tests: the numeric parts of envpin-fitsinfer (runtime/fitsinfer:
 * background, matched filter, peaks, refinement, matching and scoring, the
 * CLASS_STAR network parser and forward pass).  libtorch is not needed here:
 * the bats test t530 runs the model itself against these C references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "background.h"
#include "classify.h"
#include "detect.h"

/* A small deterministic Gaussian generator (splitmix64 + Box-Muller), so the
 * tests do not depend on libc's rand(). */
static uint64_t rs = 12345;
static double unif(void)
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return ((z >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void)
{
	return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
}

static void test_background_constant_noise(void **state)
{
	enum { NX = 256, NY = 192 };
	float *pix = malloc(NX * NY * sizeof(float));
	uint8_t *mask = malloc(NX * NY);
	struct fi_bkg b;
	char err[256];

	(void)state;
	for (int quantise = 0; quantise < 2; quantise++) {
		for (int i = 0; i < NX * NY; i++) {
			double v = 1000 + 10 * gauss();
			pix[i] = (float)(quantise ? floor(v + 0.5) : v);
		}
		for (int y = 0; y < NY; y++) /* a dead column and a few bright outliers */
			pix[y * NX + 37] = NAN;
		for (int i = 0; i < 300; i++)
			pix[(int)(unif() * NX * NY)] += 5000;
		assert_true(fi_mask_build(pix, NX * NY, mask) >= (size_t)NY);
		assert_int_equal(fi_background(pix, mask, NX, NY, 64, 3, &b, err, sizeof(err)), 0);
		assert_int_equal(b.mx, 4);
		assert_int_equal(b.my, 3);
		assert_int_equal(b.n_mesh_valid, 12);
		/* truth 1000 / 10: within 0.05 sigma and 2 % */
		assert_true(fabs(b.global_bkg - 1000) < 0.5);
		assert_true(fabs(b.global_rms - 10) < 0.2);
		for (int i = 0; i < NX * NY; i += 97) {
			assert_true(fabs(b.bkg[i] - 1000) < 1.0);
			assert_true(fabs(b.rms[i] - 10) < 0.4);
		}
		float *z = malloc(NX * NY * sizeof(float));
		fi_normalise(pix, mask, &b, z);
		assert_true(z[5 * NX + 37] == 0); /* masked pixels contribute nothing */
		double s2 = 0;
		int n = 0;
		for (int i = 0; i < NX * NY; i++)
			if (!mask[i] && fabs(z[i]) < 5) {
				s2 += (double)z[i] * z[i];
				n++;
			}
		assert_true(fabs(sqrt(s2 / n) - 1) < 0.03);
		free(z);
		fi_bkg_release(&b);
	}
	/* a gradient is followed by the mesh map */
	for (int y = 0; y < NY; y++)
		for (int x = 0; x < NX; x++)
			pix[y * NX + x] = (float)(500 + 0.5 * x + 5 * gauss());
	assert_int_equal(fi_background(pix, NULL, NX, NY, 32, 3, &b, err, sizeof(err)), 0);
	assert_true(fabs(b.bkg[100 * NX + 128] - (500 + 0.5 * 128)) < 1.5);
	fi_bkg_release(&b);
	/* nothing valid: an error naming the mesh */
	for (int i = 0; i < NX * NY; i++)
		mask[i] = 1;
	assert_int_equal(fi_background(pix, mask, NX, NY, 64, 3, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mesh"));
	free(pix);
	free(mask);
}

static void test_clipped_stats_outliers(void **state)
{
	enum { N = 4096 };
	float *v = malloc(N * sizeof(float));
	double mode, sig;

	(void)state;
	for (int i = 0; i < N; i++)
		v[i] = (float)(200 + 4 * gauss() + (i % 10 == 0 ? 800 * unif() : 0));
	assert_int_equal(fi_clipped_stats(v, N, &mode, &sig), 0);
	assert_true(fabs(mode - 200) < 0.6);
	assert_true(fabs(sig - 4) < 0.4);
	assert_int_equal(fi_clipped_stats(v, 0, &mode, &sig), -1);
	free(v);
}

static void test_matched_filter_normalisation(void **state)
{
	enum { NX = 200, NY = 200 };
	int ks = fi_kernel_size(3.0);
	float k[15 * 15];
	double l2 = 0;

	(void)state;
	assert_int_equal(ks, 7);
	assert_int_equal(fi_psf_kernel(3.0, 3.0, ks, k), 0);
	for (int i = 0; i < ks * ks; i++)
		l2 += (double)k[i] * k[i];
	assert_true(fabs(l2 - 1) < 1e-6);
	assert_true(k[3 * ks + 3] > k[3 * ks + 4] && k[3 * ks + 4] > k[3 * ks + 5]);
	assert_int_equal(fi_psf_kernel(3.0, 3.0, 6, k), -1);
	assert_int_equal(fi_psf_kernel(-1, 3.0, 7, k), -1);

	/* White unit noise filtered stays unit noise: the output is in sigma. */
	float *z = malloc(NX * NY * sizeof(float)), *s = malloc(NX * NY * sizeof(float));
	for (int i = 0; i < NX * NY; i++)
		z[i] = (float)gauss();
	fi_conv2d_ref(z, NX, NY, k, ks, s);
	double s2 = 0;
	int n = 0;
	for (int y = 10; y < NY - 10; y++)
		for (int x = 10; x < NX - 10; x++, n++)
			s2 += (double)s[y * NX + x] * s[y * NX + x];
	assert_true(fabs(sqrt(s2 / n) - 1) < 0.03);

	/* A source shaped like the kernel, of amplitude A: the SNR at its centre
	 * is exactly A * ||k|| = A (the matched-filter SNR). */
	memset(z, 0, NX * NY * sizeof(float));
	for (int j = 0; j < ks; j++)
		for (int i = 0; i < ks; i++)
			z[(100 + j - 3) * NX + 100 + i - 3] = 25 * k[j * ks + i];
	fi_conv2d_ref(z, NX, NY, k, ks, s);
	assert_true(fabs(s[100 * NX + 100] - 25) < 1e-4);
	free(z);
	free(s);
}

static void test_gauss_kernel_matches_sextractor(void **state)
{
	const char *path = "/usr/share/source-extractor/gauss_2.0_5x5.conv";
	FILE *f = fopen(path, "r");
	float k[25], ref[25];
	char line[256];
	int n = 0;

	(void)state;
	if (!f)
		skip(); /* source-extractor not installed */
	while (fgets(line, sizeof(line), f) && n < 25) {
		if (line[0] == '#' || !strncmp(line, "CONV", 4))
			continue;
		char *p = line, *end;
		for (double v = strtod(p, &end); end != p && n < 25; v = strtod(p, &end)) {
			ref[n++] = (float)v;
			p = end;
		}
	}
	fclose(f);
	assert_int_equal(n, 25);
	assert_int_equal(fi_psf_kernel(2.0, 0, 5, k), 0);
	double l2 = 0;
	for (int i = 0; i < 25; i++)
		l2 += (double)ref[i] * ref[i];
	/* Both at unit L2 norm: measured max |diff| 1.07e-3 (the file is rounded
	 * to 6 digits and its own integration differs slightly; an exact erf
	 * integration is 7.8e-4 away from it). */
	for (int i = 0; i < 25; i++)
		assert_true(fabs(k[i] - ref[i] / sqrt(l2)) < 1.5e-3);
}

/* Adds a Moffat star (FWHM 3, beta 3) of the given peak at (x, y), 0-based. */
static void add_star(float *img, int nx, int ny, double x, double y, double amp)
{
	double alpha = 3.0 / (2 * sqrt(pow(2, 1 / 3.0) - 1));

	for (int j = 0; j < ny; j++)
		for (int i = 0; i < nx; i++) {
			double rr = (i - x) * (i - x) + (j - y) * (j - y);
			img[j * nx + i] += (float)(amp * pow(1 + rr / (alpha * alpha), -3));
		}
}

static void test_peaks_pair_and_refinement(void **state)
{
	enum { NX = 64, NY = 48 };
	float z[NX * NY], s[NX * NY], k[49];
	uint8_t pm[NX * NY];
	struct fi_det *d;

	(void)state;
	memset(z, 0, sizeof(z));
	/* Two stars 8 px apart (2.7 FWHM), at sub-pixel positions.  At 6 px the
	 * fainter one's filtered peak is pulled 0.39 px towards the brighter
	 * one: the matched filter widens the profiles (blending bias). */
	add_star(z, NX, NY, 20.3, 24.0, 10);
	add_star(z, NX, NY, 28.0, 23.75, 6);
	fi_psf_kernel(3.0, 3.0, 7, k);
	fi_conv2d_ref(z, NX, NY, k, 7, s);
	fi_peak_map(s, NX, NY, 5, pm);
	long n = fi_peaks_list(s, pm, NX, NY, &d);
	assert_int_equal(n, 2);
	/* raster order, both on row 24 */
	assert_int_equal(d[0].ix, 20);
	assert_int_equal(d[0].iy, 24);
	assert_int_equal(d[1].ix, 28);
	assert_int_equal(d[1].iy, 24);
	/* refined FITS 1-based positions within 0.1 px (parabolic refinement) */
	assert_true(fabs(d[0].x - 21.3) < 0.1);
	assert_true(fabs(d[0].y - 25.0) < 0.1);
	assert_true(fabs(d[1].x - 29.0) < 0.1);
	assert_true(fabs(d[1].y - 24.75) < 0.1);
	assert_true(d[0].gap > 0);
	free(d);

	/* Refinement error over a grid of sub-pixel offsets, noiseless. */
	double worst = 0;
	for (double ox = -0.45; ox < 0.5; ox += 0.15)
		for (double oy = -0.45; oy < 0.5; oy += 0.3) {
			memset(z, 0, sizeof(z));
			add_star(z, NX, NY, 30 + ox, 20 + oy, 20);
			fi_conv2d_ref(z, NX, NY, k, 7, s);
			fi_peak_map(s, NX, NY, 5, pm);
			assert_int_equal(fi_peaks_list(s, pm, NX, NY, &d), 1);
			double e = hypot(d[0].x - (31 + ox), d[0].y - (21 + oy));
			worst = e > worst ? e : worst;
			free(d);
		}
	assert_true(worst < 0.1);

	/* A flat top (saturated star) gives one peak, not a cluster of ties;
	 * below the threshold nothing. */
	memset(s, 0, sizeof(s));
	for (int j = 10; j < 13; j++)
		for (int i = 10; i < 13; i++)
			s[j * NX + i] = 50;
	s[30 * NX + 30] = 4.9f;
	fi_peak_map(s, NX, NY, 5, pm);
	assert_int_equal(fi_peaks_list(s, pm, NX, NY, &d), 1);
	assert_int_equal(d[0].ix, 10);
	assert_true(d[0].gap == 0);
	free(d);
}

static void test_match_and_score(void **state)
{
	struct fi_truth t[] = {
		{10, 10, 1000, 100, 0, FI_STAR, -1},   {30, 30, 800, 40, 3, FI_GALAXY, -1},
		{50, 50, 300, 12, 0, FI_STAR, -1},     {70, 70, 50, 3, 0, FI_STAR, -1},
		{90, 90, 0, NAN, 0, FI_COSMIC, -1},
	};
	struct fi_det d[6];

	(void)state;
	memset(d, 0, sizeof(d));
	double pos[6][2] = {{10.3, 10.4}, {30.2, 29.9}, {34.0, 30.0}, {90.5, 90.0}, {120, 120}, {11.0, 10.0}};
	float cs[6] = {0.9f, 0.2f, 0.1f, 0.95f, 0.5f, 0.8f};
	for (int i = 0; i < 6; i++) {
		d[i].x = pos[i][0];
		d[i].y = pos[i][1];
		d[i].class_star = cs[i];
	}
	fi_match(d, 6, t, 5, 1.5);
	/* the brightest truth takes the nearest detection; the other one near
	 * it is left spurious; (34,30) is a galaxy sub-peak (within 2 r_eff);
	 * the detection on the cosmic ray is labelled so */
	assert_int_equal(d[0].match, 0);
	assert_int_equal(t[0].det, 0);
	assert_int_equal(d[1].match, 1);
	assert_int_equal(d[2].match, -1);
	assert_int_equal(d[2].kind, FI_UNMATCHED_GALAXY);
	assert_int_equal(d[3].kind, FI_UNMATCHED_COSMIC);
	assert_int_equal(d[4].kind, FI_UNMATCHED_SPURIOUS);
	assert_int_equal(d[5].match, -1);
	assert_int_equal(t[2].det, -1);

	struct fi_score s;
	fi_score(d, 6, t, 5, &s);
	assert_int_equal(s.n_det, 6);
	assert_int_equal(s.n_matched, 2);
	assert_int_equal(s.n_cosmic, 1);
	assert_int_equal(s.n_galaxy_sub, 1);
	assert_int_equal(s.n_spurious, 2);
	assert_int_equal(s.n_true[2], 2); /* snr >= 20: t0, t1 */
	assert_int_equal(s.n_true[1], 3); /* >= 10 adds t2, missed */
	assert_true(fabs(s.completeness[2] - 1.0) < 1e-12);
	assert_true(fabs(s.completeness[1] - 2.0 / 3) < 1e-12);
	assert_int_equal(s.n_pos, 1);
	assert_true(fabs(s.pos_rms - 0.5) < 1e-9); /* (0.3, 0.4) */
	assert_int_equal(s.n_cls[0], 2);
	assert_int_equal(s.n_cls_ok[0], 2); /* star 0.9, galaxy 0.2 */
	assert_int_equal(s.n_cls[1], 1);
	assert_true(fabs(s.unexplained_frac - 2.0 / 6) < 1e-12);
	/* a saturated match is left out of positions and classes */
	d[0].saturated = 1;
	fi_score(d, 6, t, 5, &s);
	assert_int_equal(s.n_pos, 0);
	assert_true(isnan(s.pos_rms));
	assert_int_equal(s.n_cls[0], 1);
}

static const char tiny_nnw[] = "NNW\n# a 2-2-1 network\n 3 2 2 1\n"
			       "0.5 -1\n2 0.25\n"
			       "1 -1 0.5\n0.3 0.7 -0.2\n"
			       "2 -3 0.1\n"
			       "0.1\n0.8\n";

static void test_nnw_forward_tiny(void **state)
{
	struct fi_nnw nn;
	char err[256];
	float x[2] = {1.5f, 4.0f};

	(void)state;
	assert_int_equal(fi_nnw_parse(tiny_nnw, strlen(tiny_nnw), "tiny", &nn, err, sizeof(err)), 0);
	assert_int_equal(nn.nlayers, 3);
	assert_int_equal(nn.n[1], 2);
	/* by hand: n0 = (1.5*2+0.5, 4*0.25-1) = (3.5, 0);
	 * h0 = sig(1*3.5 - 1*0 + 0.5) = sig(4), h1 = sig(0.3*3.5 + 0 - 0.2) = sig(0.85);
	 * y = (sig(2 h0 - 3 h1 + 0.1) - 0.1) / 0.8 */
	double h0 = 1 / (1 + exp(-4.0)), h1 = 1 / (1 + exp(-0.85));
	double want = (1 / (1 + exp(-(2 * h0 - 3 * h1 + 0.1))) - 0.1) / 0.8;
	assert_true(fabs(fi_nnw_forward(&nn, x) - want) < 1e-7);
	assert_true(fabs(want - 0.4882283) < 1e-6); /* the hand-computed number itself */
	fi_nnw_release(&nn);
}

static void expect_bad(const char *text, const char *needle)
{
	struct fi_nnw nn;
	char err[256] = "";

	assert_int_equal(fi_nnw_parse(text, strlen(text), "bad.nnw", &nn, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'bad.nnw'"));
	if (!strstr(err, needle))
		fail_msg("message '%s' lacks '%s'", err, needle);
}

static void test_nnw_corrupt(void **state)
{
	char buf[sizeof(tiny_nnw)];

	(void)state;
	expect_bad("", "no 'NNW' header");
	expect_bad("SIMPLE  =                    T", "no 'NNW' header");
	expect_bad("NNW\n 3 2 2 1\n0.5 -1\n2 0.25\n1 -1 0.5\n", "truncated");
	expect_bad("NNW\n 3 2 2 1\n0.5 -1\n2 0.25\n1 -1 0.5\n0.3 0.7q -0.2\n2 -3 0.1\n0.1\n0.8\n", "bad number");
	expect_bad("NNW\n 3 2 2 1\n0.5 nan\n2 0.25\n1 -1 0.5\n0.3 0.7 -0.2\n2 -3 0.1\n0.1\n0.8\n", "bad number");
	expect_bad("NNW\n 3 2 999 1\n", "neurons");
	expect_bad("NNW\n 9 2 2 1\n", "layer count");
	memcpy(buf, tiny_nnw, sizeof(buf));
	buf[sizeof(buf) - 2] = ' '; /* "0.8 " then more */
	char more[sizeof(buf) + 8];
	snprintf(more, sizeof(more), "%s 1.0\n", buf);
	expect_bad(more, "unexpected data");
	/* a missing file names it */
	struct fi_nnw nn;
	char err[256];
	assert_int_equal(fi_nnw_read("/nonexistent/default.nnw", &nn, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'/nonexistent/default.nnw'"));
}

static void test_nnw_inputs(void **state)
{
	struct fi_det d;
	struct fi_class_params p = {3, 3, 1.5, 0.5, 65535};
	float x[10];

	(void)state;
	memset(&d, 0, sizeof(d));
	d.peak_z = 300;
	int iso[8] = {90, 60, 45, 30, 18, 9, 4, 0};
	memcpy(d.iso, iso, sizeof(iso));
	fi_nnw_inputs(&d, &p, x);
	/* fac2 = (1.5/0.5)^2 = 9 */
	assert_true(fabs(x[0] - 1.0) < 1e-6);      /* log10(90/9) */
	assert_true(fabs(x[1] - 2.0) < 1e-6);      /* log10(300/3) */
	assert_true(fabs(x[2] - log10(60 / 9.0)) < 1e-6);
	assert_true(fabs(x[8] - (-2.0)) < 1e-6);   /* zero area -> log10(0.01) */
	assert_true(fabs(x[9] - log10(1.5)) < 1e-6);
}

static void test_features_iso(void **state)
{
	enum { NX = 40, NY = 40 };
	float z[NX * NY], s[NX * NY], pix[NX * NY];
	uint8_t pm[NX * NY];
	float k[49];
	struct fi_det *d;
	struct fi_class_params p = {3, 3, 1.5, 0.5, 1000};

	(void)state;
	memset(z, 0, sizeof(z));
	add_star(z, NX, NY, 12, 20, 40);
	add_star(z, NX, NY, 28, 20, 40);
	for (int i = 0; i < NX * NY; i++)
		pix[i] = z[i];
	pix[20 * NX + 28] = 2000; /* "saturated" */
	fi_psf_kernel(3.0, 3.0, 7, k);
	fi_conv2d_ref(z, NX, NY, k, 7, s);
	fi_peak_map(s, NX, NY, 5, pm);
	assert_int_equal(fi_peaks_list(s, pm, NX, NY, &d), 2);
	assert_int_equal(fi_features(z, s, pix, NX, NY, d, 2, &p), 0);
	for (int i = 0; i < 2; i++) {
		assert_true(fabs(d[i].peak_z - 40) < 1e-2);
		assert_true(d[i].npix > d[i].iso[0]);
		for (int j = 1; j < 8; j++)
			assert_true(d[i].iso[j] <= d[i].iso[j - 1]);
		assert_true(d[i].iso[7] >= 1);
	}
	/* identical stars, split by nearest peak: the same areas */
	assert_int_equal(d[0].iso[0], d[1].iso[0]);
	assert_int_equal(d[0].saturated + d[1].saturated, 1);
	assert_true(d[1].saturated);
	free(d);
}

static void test_truth_read(void **state)
{
	char path[] = "/tmp/fitsinfer-truth-XXXXXX";
	int fd = mkstemp(path);
	struct fi_truth *t;
	char err[256];

	(void)state;
	assert_true(fd >= 0);
	const char *csv = "id,class,x,y,flux,peak,snr,saturated,sersic_n,r_eff,q,theta\n"
			  "1,star,10.5,20.25,1000.0,50,42.5,0,0,0,1,0\n"
			  "2,galaxy,30,40,5000,20,18,0,1.0,4.5,0.7,30\n";
	assert_int_equal(write(fd, csv, strlen(csv)), (ssize_t)strlen(csv));
	close(fd);
	assert_int_equal(fi_truth_read(path, &t, err, sizeof(err)), 2);
	assert_int_equal(t[0].kind, FI_STAR);
	assert_int_equal(t[1].kind, FI_GALAXY);
	assert_true(t[0].x == 10.5 && t[0].y == 20.25);
	assert_true(t[1].snr == 18 && t[1].r_eff == 4.5);
	free(t);
	FILE *f = fopen(path, "w");
	fputs("a,b\n1,2\n", f);
	fclose(f);
	assert_int_equal(fi_truth_read(path, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'x' and 'y'"));
	f = fopen(path, "w");
	fputs("x,y\n1,zz\n", f);
	fclose(f);
	assert_int_equal(fi_truth_read(path, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad coordinate"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_background_constant_noise),
		cmocka_unit_test(test_clipped_stats_outliers),
		cmocka_unit_test(test_matched_filter_normalisation),
		cmocka_unit_test(test_gauss_kernel_matches_sextractor),
		cmocka_unit_test(test_peaks_pair_and_refinement),
		cmocka_unit_test(test_match_and_score),
		cmocka_unit_test(test_nnw_forward_tiny),
		cmocka_unit_test(test_nnw_corrupt),
		cmocka_unit_test(test_nnw_inputs),
		cmocka_unit_test(test_features_iso),
		cmocka_unit_test(test_truth_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
