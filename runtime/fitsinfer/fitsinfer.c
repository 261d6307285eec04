/* runtime/fitsinfer/fitsinfer.c - envpin-fitsinfer: --describe FILE, and the
 * FITS inference smoke test (docs/smoke-test.md has the numbers and why):
 * read -> mask -> mesh background/RMS -> significance z (C, on the CPU) ->
 * matched filter + 3x3 max-pool peaks (libtorch, per device) -> sub-pixel
 * refinement and segment features (C) -> CLASS_STAR MLP (libtorch) ->
 * checks against the C references, the truth catalogue and across devices.
 * Exit: 0 every check passed (or skipped), 1 a check failed or the test
 * could not run (missing libtorch, missing or corrupt network, unreadable
 * image: the message names the cause), 2 usage. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "background.h"
#include "classify.h"
#include "detect.h"
#include "fitsimg.h"
#include "torch_shim.h"

#define DEFAULT_NNW "/usr/share/source-extractor/default.nnw"
#define SHIM_NAME "envpin-fitsinfer-torch.so"
#define FP_VERSION 1

static const char usage_text[] =
	"usage: envpin-fitsinfer --describe FILE[ext][section]\n"
	"       envpin-fitsinfer --smoke DIR|IMAGE [--truth CSV] [--cosmics CSV] [--device cpu|cuda|both]\n"
	"                        [--strict] [--json] [--nnw PATH] [--fwhm PX] [--beta B] [--pixscale ARCSEC]\n"
	"                        [--thresh SIGMA] [--mesh PX] [--saturate ADU] [--detections FILE]\n"
	"\n"
	"--smoke runs the FITS inference smoke test on one image: validity mask, mesh background\n"
	"and RMS, significance, a PSF matched filter and 3x3 max-pool peak finding in libtorch,\n"
	"sub-pixel refinement, and SExtractor's CLASS_STAR network (read from --nnw, default\n"
	DEFAULT_NNW ").  With a DIR, the image is DIR/sky.fits.fz (else DIR/sky.fits),\n"
	"the truth DIR/sky.truth.csv and the cosmic rays DIR/sky.cosmics.csv, as written by\n"
	"`envpin-skygen -o DIR/sky`.  Without a truth catalogue the science checks are skipped.\n"
	"  --device cpu|cuda|both  where the model runs (default both: CPU, then CUDA when\n"
	"                          available; without CUDA the GPU checks are skipped)\n"
	"  --strict                on CUDA, run with TF32 off only (default: TF32 off, then\n"
	"                          TF32 as torch defaults it, with the TF32 error reported)\n"
	"  --json                  print the results as one JSON document\n"
	"  --fwhm PX (3) --beta B (3, <=0: Gaussian) --pixscale ARCSEC (0.5) --thresh SIGMA (5)\n"
	"  --mesh PX (64) --saturate ADU (default: 65535 for 16-bit unsigned data, else none)\n"
	"  --detections FILE       write the detections of the first run as CSV\n"
	"Exit: 0 pass, 1 a check failed or the test could not run (the message says why), 2 usage.\n";

struct opts {
	const char *describe, *smoke, *truth, *cosmics, *nnw, *detections;
	int want_cpu, want_cuda, strict, json;
	double fwhm, beta, pixscale, thresh, saturate;
	int mesh;
};

/* ---- the shim, loaded at run time ---- */

struct shim {
	void *h;
	int (*info)(struct ts_info *, char *, size_t);
	int (*detect)(int, int, const float *, int, int, const float *, int, float, float *, uint8_t *,
		      struct ts_flags *, struct ts_timing *, char *, size_t);
	int (*mlp)(int, int, const struct ts_mlp *, const float *, int, float *, char *, size_t);
	char path[PATH_MAX];
};

static int shim_load(struct shim *s, char *err, size_t errlen)
{
	const char *env = getenv("ENVPIN_FITSINFER_SHIM");
	char exe[PATH_MAX];

	if (env && *env) {
		snprintf(s->path, sizeof(s->path), "%s", env);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0) {
			snprintf(err, errlen, "cannot locate the program: %s", strerror(errno));
			return -1;
		}
		exe[n] = 0;
		snprintf(s->path, sizeof(s->path), "%s/%s", dirname(exe), SHIM_NAME);
	}
	s->h = dlopen(s->path, RTLD_NOW | RTLD_LOCAL);
	if (!s->h) {
		/* dlerror names the library that is missing (libtorch_cpu.so, ...). */
		snprintf(err, errlen, "libtorch is not usable: cannot load '%s': %s", s->path, dlerror());
		return -1;
	}
	*(void **)&s->info = dlsym(s->h, "ts_info");
	*(void **)&s->detect = dlsym(s->h, "ts_detect");
	*(void **)&s->mlp = dlsym(s->h, "ts_mlp_forward");
	if (!s->info || !s->detect || !s->mlp) {
		snprintf(err, errlen, "'%s' is not the envpin libtorch shim (missing symbols)", s->path);
		return -1;
	}
	return 0;
}

/* ---- checks ---- */

enum { ST_PASS, ST_FAIL, ST_SKIP };
static const char *st_name[] = {"pass", "fail", "skip"};

struct check {
	char name[64];
	int status;
	double value, limit;
	char detail[160];
};

static struct check checks[128];
static int nchecks;

static void add_check(const char *name, int status, double value, double limit, const char *fmt, ...)
{
	if (nchecks >= (int)(sizeof(checks) / sizeof(checks[0])))
		return;
	struct check *c = &checks[nchecks++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->status = status;
	c->value = value;
	c->limit = limit;
	c->detail[0] = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
		va_end(ap);
	}
}

/* value <= limit passes; a NaN value fails (nothing to judge means broken). */
static void check_le(const char *name, double value, double limit, const char *detail)
{
	add_check(name, value <= limit ? ST_PASS : ST_FAIL, value, limit, "%s", detail);
}

static void check_ge(const char *name, double value, double limit, const char *detail)
{
	add_check(name, value >= limit ? ST_PASS : ST_FAIL, value, limit, "%s", detail);
}

/* ---- tolerances (docs/smoke-test.md explains each) ---- */

struct tol {
	double snr_abs, snr_rel;  /* SNR map |a-b| <= abs + rel*|a| */
	double pos;               /* refined centroid, px */
	double cs;                /* CLASS_STAR */
};
/* Against the C double-precision reference and between devices. */
static const struct tol TOL_CPU = {1e-4, 1e-6, 1e-4, 1e-5};
static const struct tol TOL_STRICT = {1e-3, 1e-5, 1e-3, 1e-4};
static const struct tol TOL_TF32 = {0.05, 3e-3, 0.05, 0.02};

/* Science floors (measured values and margins in docs/smoke-test.md). */
#define FLOOR_COMPL20 0.95
#define FLOOR_COMPL10 0.93
#define MAX_UNEXPLAINED 0.03
#define MAX_POS_RMS 0.2
#define FLOOR_ACC20 0.85
#define FLOOR_ACC50 0.93

/* ---- one run of the model on one device ---- */

struct run {
	char name[16];
	int device, tf32;
	float *snr;
	uint8_t *pm;
	struct fi_det *det;
	long nd;
	struct ts_flags fl;
	struct ts_timing tm;
	double mlp_ms;
	struct fi_score sc;
	double fp[6]; /* n_eff, sum_x, sum_y, sum_snr, sum_cs, n_det */
	int done;
};

static const char *fp_names[] = {"n_eff", "sum_x", "sum_y", "sum_snr", "sum_class_star"};
/* Fingerprint tolerances: |a-b| <= abs + rel*max(|a|,|b|), per field. */
static const double fp_abs[] = {0.5, 0.5, 0.5, 0.5, 0.5};
static const double fp_rel[] = {0, 1e-4, 1e-4, 3e-3, 0};

static void release_run(struct run *r)
{
	free(r->snr);
	free(r->pm);
	free(r->det);
}

struct ctx {
	struct opts *o;
	struct shim shim;
	struct ts_info ti;
	struct fi_image img;
	uint8_t *mask;
	size_t nmask;
	struct fi_bkg bkg;
	float *z;
	float *kern;
	int ks;
	float *snr_ref;  /* C double reference of the filter, on z */
	struct fi_nnw nnw;
	struct fi_class_params cp;
	struct fi_truth *truth;
	long nt;
	int nx, ny;
	char image_spec[PATH_MAX + 64], truth_path[PATH_MAX], cosmics_path[PATH_MAX];
	double t_read_ms, t_pre_ms;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int all_finite(const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return 0;
	return 1;
}

/* max over pixels of |a-b| / (abs + rel*|ref|): <= 1 is within tolerance.
 * Also returns the plain max |a-b| in *maxabs. */
static double map_ratio(const float *a, const float *ref, size_t n, double abs, double rel, double *maxabs)
{
	double worst = 0, ma = 0;

	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - ref[i]);
		if (!(d <= ma))
			ma = d; /* NaN propagates */
		double r = d / (abs + rel * fabs(ref[i]));
		if (!(r <= worst))
			worst = r;
	}
	*maxabs = ma;
	return worst;
}

static int run_model(struct ctx *c, struct run *r, const struct tol *tol, char *err, size_t errlen)
{
	size_t np = (size_t)c->nx * c->ny;
	char cname[64];

	r->snr = malloc(np * sizeof(float));
	r->pm = malloc(np);
	uint8_t *pm_ref = malloc(np);
	if (!r->snr || !r->pm || !pm_ref) {
		free(pm_ref);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (c->shim.detect(r->device, r->tf32, c->z, c->nx, c->ny, c->kern, c->ks, (float)c->o->thresh, r->snr,
			   r->pm, &r->fl, &r->tm, err, errlen) < 0) {
		free(pm_ref);
		return -1;
	}
	/* The filter against the C double reference. */
	double maxabs, ratio = map_ratio(r->snr, c->snr_ref, np, tol->snr_abs, tol->snr_rel, &maxabs);
	snprintf(cname, sizeof(cname), "%s.filter_vs_reference", r->name);
	add_check(cname, ratio <= 1 ? ST_PASS : ST_FAIL, maxabs, tol->snr_abs,
		  "max |snr - C double reference| = %.3g; tolerance %.0e + %.0e*|snr|", maxabs, tol->snr_abs,
		  tol->snr_rel);
	/* Peak finding against the C reference on the same map: exact. */
	fi_peak_map(r->snr, c->nx, c->ny, (float)c->o->thresh, pm_ref);
	size_t diff = 0;
	for (size_t i = 0; i < np; i++)
		diff += !r->pm[i] != !pm_ref[i];
	free(pm_ref);
	snprintf(cname, sizeof(cname), "%s.peaks_vs_reference", r->name);
	add_check(cname, diff == 0 ? ST_PASS : ST_FAIL, (double)diff, 0,
		  "pixels where max-pool peaks differ from the C reference");

	r->nd = fi_peaks_list(r->snr, r->pm, c->nx, c->ny, &r->det);
	if (r->nd < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (fi_features(c->z, r->snr, c->img.data, c->nx, c->ny, r->det, (size_t)r->nd, &c->cp) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* CLASS_STAR through libtorch, checked against the C forward pass. */
	float *x = malloc(((size_t)r->nd + 1) * 10 * sizeof(float)), *cs = malloc(((size_t)r->nd + 1) * sizeof(float));
	if (!x || !cs) {
		free(x);
		free(cs);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (long i = 0; i < r->nd; i++)
		fi_nnw_inputs(&r->det[i], &c->cp, &x[i * 10]);
	struct ts_mlp m = {c->nnw.n[0],    c->nnw.n[1],	     c->nnw.inscale,	 c->nnw.inbias,
			   c->nnw.w[1],	   c->nnw.b[1],	     c->nnw.w[2],	 c->nnw.b[2],
			   c->nnw.outbias[0], c->nnw.outscale[0]};
	double t0 = now_ms();
	if (c->shim.mlp(r->device, r->tf32, &m, x, (int)r->nd, cs, err, errlen) < 0) {
		free(x);
		free(cs);
		return -1;
	}
	r->mlp_ms = now_ms() - t0;
	double maxd = 0;
	for (long i = 0; i < r->nd; i++) {
		r->det[i].class_star = cs[i];
		double d = fabs(cs[i] - fi_nnw_forward(&c->nnw, &x[i * 10]));
		if (!(d <= maxd))
			maxd = d;
	}
	free(x);
	free(cs);
	snprintf(cname, sizeof(cname), "%s.nnw_vs_reference", r->name);
	add_check(cname, maxd <= tol->cs ? ST_PASS : ST_FAIL, maxd, tol->cs,
		  "max |CLASS_STAR - C double forward pass| over %ld sources", r->nd);

	int fin = all_finite(r->snr, np);
	for (long i = 0; i < r->nd && fin; i++)
		fin = isfinite(r->det[i].x) && isfinite(r->det[i].y) && isfinite(r->det[i].class_star);
	snprintf(cname, sizeof(cname), "%s.finite", r->name);
	add_check(cname, fin ? ST_PASS : ST_FAIL, fin, 1, "SNR map, positions and CLASS_STAR all finite");

	/* The fingerprint: weighted sums with w = clamp(snr - T, 0, 1), which
	 * are continuous in the SNR map, so a source at the threshold or a
	 * near-tie moving by a pixel changes them by little (detect.h). */
	memset(r->fp, 0, sizeof(r->fp));
	for (long i = 0; i < r->nd; i++) {
		const struct fi_det *e = &r->det[i];
		double w = e->snr - c->o->thresh;
		w = w < 0 ? 0 : w > 1 ? 1 : w;
		r->fp[0] += w;
		r->fp[1] += w * e->x;
		r->fp[2] += w * e->y;
		r->fp[3] += w * e->snr;
		r->fp[4] += w * e->class_star;
	}
	r->fp[5] = (double)r->nd;

	if (c->truth) {
		fi_match(r->det, (size_t)r->nd, c->truth, (size_t)c->nt, 1.5);
		fi_score(r->det, (size_t)r->nd, c->truth, (size_t)c->nt, &r->sc);
		const struct fi_score *s = &r->sc;
		char d[160];
#define SCHECK(fn, suffix, v, lim, ...)                                     \
	do {                                                                \
		snprintf(cname, sizeof(cname), "%s." suffix, r->name);      \
		snprintf(d, sizeof(d), __VA_ARGS__);                        \
		fn(cname, v, lim, d);                                       \
	} while (0)
		SCHECK(check_ge, "completeness_snr20", s->completeness[2], FLOOR_COMPL20,
		       "%d of %d stars and galaxies with true SNR >= 20 found within 1.5 px", s->n_found[2],
		       s->n_true[2]);
		SCHECK(check_ge, "completeness_snr10", s->completeness[1], FLOOR_COMPL10,
		       "%d of %d with true SNR >= 10", s->n_found[1], s->n_true[1]);
		SCHECK(check_le, "unexplained_fraction", s->unexplained_frac, MAX_UNEXPLAINED,
		       "%d of %d detections are not a source, a cosmic ray or a galaxy sub-peak", s->n_spurious,
		       s->n_det);
		SCHECK(check_le, "position_rms", s->pos_rms, MAX_POS_RMS,
		       "rms centroid error (px) of %d unsaturated stars with SNR >= 20", s->n_pos);
		SCHECK(check_ge, "class_accuracy_snr20", s->accuracy[0], FLOOR_ACC20,
		       "%d of %d matched sources with SNR >= 20 classified right (CLASS_STAR > 0.5 = star)",
		       s->n_cls_ok[0], s->n_cls[0]);
		SCHECK(check_ge, "class_accuracy_snr50", s->accuracy[1], FLOOR_ACC50, "%d of %d with SNR >= 50",
		       s->n_cls_ok[1], s->n_cls[1]);
#undef SCHECK
	}
	r->done = 1;
	return 0;
}

/* Device agreement: SNR map, detection sets (marginal candidates excepted),
 * centroids and CLASS_STAR of the common detections, fingerprint. */
static void compare_runs(struct ctx *c, const struct run *a, const struct run *b, const struct tol *tol)
{
	size_t np = (size_t)c->nx * c->ny;
	char cname[64];
	double maxabs, ratio = map_ratio(b->snr, a->snr, np, tol->snr_abs, tol->snr_rel, &maxabs);

	snprintf(cname, sizeof(cname), "%s_vs_%s.snr_map", b->name, a->name);
	add_check(cname, ratio <= 1 ? ST_PASS : ST_FAIL, maxabs, tol->snr_abs,
		  "max |snr difference| = %.3g (%.3g of the tolerance %.0e + %.0e*|snr|)", maxabs, ratio,
		  tol->snr_abs, tol->snr_rel);
	int hard = 0, marginal = 0, common = 0, cls_marginal = 0;
	double dpos = 0, dcs = 0;
	for (int pass = 0; pass < 2; pass++) {
		const struct run *p = pass ? b : a, *q = pass ? a : b;
		for (long i = 0; i < p->nd; i++) {
			const struct fi_det *e = &p->det[i], *f = NULL;
			for (long j = 0; j < q->nd && !f; j++)
				if (q->det[j].ix == e->ix && q->det[j].iy == e->iy)
					f = &q->det[j];
			double t = tol->snr_abs + tol->snr_rel * fabs(e->snr);
			if (!f) {
				if (fabs(e->snr - c->o->thresh) < t || e->gap < 2 * t)
					marginal++;
				else
					hard++;
				continue;
			}
			if (pass)
				continue;
			common++;
			double dp = fmax(fabs(e->x - f->x), fabs(e->y - f->y));
			if (!(dp <= dpos))
				dpos = dp;
			if (memcmp(e->iso, f->iso, sizeof(e->iso)) || e->npix != f->npix) {
				/* Segment pixels at the 3-sigma edge moved: not the network. */
				cls_marginal++;
				continue;
			}
			double dc = fabs(e->class_star - f->class_star);
			if (!(dc <= dcs))
				dcs = dc;
		}
	}
	snprintf(cname, sizeof(cname), "%s_vs_%s.detections", b->name, a->name);
	add_check(cname, hard == 0 ? ST_PASS : ST_FAIL, hard, 0,
		  "%d common, %d marginal differences (|snr-T| or 3x3 tie within tolerance), %d others", common,
		  marginal, hard);
	snprintf(cname, sizeof(cname), "%s_vs_%s.positions", b->name, a->name);
	check_le(cname, dpos, tol->pos, "max centroid difference (px) of common detections");
	snprintf(cname, sizeof(cname), "%s_vs_%s.class_star", b->name, a->name);
	char d[160];
	snprintf(d, sizeof(d), "max |CLASS_STAR difference|; %d sources with changed segments left out", cls_marginal);
	check_le(cname, dcs, tol->cs, d);
	double worst = 0;
	for (int k = 0; k < 5; k++) {
		double r = fabs(a->fp[k] - b->fp[k]) / (fp_abs[k] + fp_rel[k] * fmax(fabs(a->fp[k]), fabs(b->fp[k])));
		if (!(r <= worst))
			worst = r;
	}
	snprintf(cname, sizeof(cname), "%s_vs_%s.fingerprint", b->name, a->name);
	check_le(cname, worst, 1, "largest fingerprint difference as a fraction of its tolerance");
}

/* ---- output ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v, int digits)
{
	if (isfinite(v))
		fprintf(f, "%.*g", digits, v);
	else
		fputs("null", f);
}

static void print_fingerprint(FILE *f, const struct ctx *c, const struct run *r)
{
	fprintf(f, "{\"version\":%d,\"pixhash\":\"fnv1a64:%016llx\",\"n_det\":%ld", FP_VERSION,
		(unsigned long long)c->img.pixhash, r->nd);
	for (int k = 0; k < 5; k++) {
		fprintf(f, ",\"%s\":", fp_names[k]);
		json_num(f, r->fp[k], 12);
	}
	fputs(",\"bkg\":", f);
	json_num(f, c->bkg.global_bkg, 9);
	fputs(",\"rms\":", f);
	json_num(f, c->bkg.global_rms, 9);
	fputs(",\"tolerance\":{\"pixhash\":\"equal\",\"n_det\":\"informational\"", f);
	for (int k = 0; k < 5; k++)
		fprintf(f, ",\"%s\":{\"abs\":%g,\"rel\":%g}", fp_names[k], fp_abs[k], fp_rel[k]);
	fputs(",\"bkg\":{\"abs\":0.01,\"rel\":0},\"rms\":{\"abs\":0,\"rel\":1e-3}}}", f);
}

static void print_json(FILE *f, struct ctx *c, struct run *runs, int nruns, const struct run *ref, int failed)
{
	fputs("{\"program\":\"envpin-fitsinfer\",\"result\":", f);
	json_str(f, failed ? "fail" : "pass");
	fputs(",\"input\":{\"image\":", f);
	json_str(f, c->image_spec);
	fprintf(f, ",\"hdu\":%d,\"bitpix\":%d,\"equiv_bitpix\":%d,\"shape\":[%d,%d],\"nan\":%zu,\"compressed\":%s",
		c->img.hdu, c->img.bitpix, c->img.equiv_bitpix, c->ny, c->nx, c->img.nan,
		c->img.compressed ? "true" : "false");
	fprintf(f, ",\"pixhash\":\"fnv1a64:%016llx\",\"truth\":", (unsigned long long)c->img.pixhash);
	if (c->truth)
		json_str(f, c->truth_path);
	else
		fputs("null", f);
	fprintf(f, ",\"truth_entries\":%ld}", c->truth ? c->nt : 0);
	fprintf(f, ",\"background\":{\"mesh\":%d,\"meshes\":[%d,%d],\"valid_meshes\":%d,\"masked\":%zu,\"bkg\":",
		c->bkg.bw, c->bkg.my, c->bkg.mx, c->bkg.n_mesh_valid, c->nmask);
	json_num(f, c->bkg.global_bkg, 9);
	fputs(",\"rms\":", f);
	json_num(f, c->bkg.global_rms, 9);
	fprintf(f, "},\"model\":{\"kernel\":{\"profile\":\"%s\",\"fwhm\":%g,\"beta\":%g,\"size\":%d,\"fnv\":\"%016llx\"}",
		c->o->beta > 0 ? "moffat" : "gaussian", c->o->fwhm, c->o->beta, c->ks,
		(unsigned long long)fi_fnv1a(c->kern, (size_t)c->ks * c->ks * sizeof(float), FI_FNV_INIT));
	fputs(",\"nnw\":{\"path\":", f);
	json_str(f, c->o->nnw);
	fprintf(f, ",\"fnv\":\"%016llx\",\"layers\":[%d,%d,%d]}", (unsigned long long)c->nnw.fnv, c->nnw.n[0],
		c->nnw.n[1], c->nnw.n[2]);
	fprintf(f, ",\"threshold\":%g,\"seeing\":%g,\"pixscale\":%g,\"torch\":", c->o->thresh, c->cp.seeing,
		c->cp.pixscale);
	json_str(f, c->ti.torch_version);
	fprintf(f, ",\"cuda_available\":%s,\"cuda_devices\":%d,\"cudnn_version\":%ld,\"cpu_threads\":%d}",
		c->ti.cuda_available ? "true" : "false", c->ti.cuda_devices, c->ti.cudnn_version, c->ti.threads);
	fputs(",\"runs\":[", f);
	int first = 1;
	for (int i = 0; i < nruns; i++) {
		const struct run *r = &runs[i];
		if (!r->done)
			continue;
		fprintf(f, "%s{\"name\":\"%s\",\"device\":\"%s\",\"tf32_requested\":%s", first ? "" : ",", r->name,
			r->device == TS_CUDA ? "cuda" : "cpu", r->tf32 ? "true" : "false");
		first = 0;
		fprintf(f, ",\"flags\":{\"tf32_cudnn\":%s,\"tf32_cublas\":%s,\"deterministic_cudnn\":%s}",
			r->fl.tf32_cudnn ? "true" : "false", r->fl.tf32_cublas ? "true" : "false",
			r->fl.deterministic_cudnn ? "true" : "false");
		fprintf(f, ",\"timing_ms\":{\"to_device\":%.3f,\"forward\":%.3f,\"to_host\":%.3f,\"mlp\":%.3f}",
			r->tm.to_device_ms, r->tm.forward_ms, r->tm.to_host_ms, r->mlp_ms);
		fprintf(f, ",\"snr_map_fnv\":\"%016llx\",\"n_det\":%ld",
			(unsigned long long)fi_fnv1a(r->snr, (size_t)c->nx * c->ny * sizeof(float), FI_FNV_INIT),
			r->nd);
		if (c->truth) {
			const struct fi_score *s = &r->sc;
			fprintf(f, ",\"science\":{\"matched\":%d,\"cosmic\":%d,\"galaxy_subpeaks\":%d,\"spurious\":%d",
				s->n_matched, s->n_cosmic, s->n_galaxy_sub, s->n_spurious);
			fputs(",\"completeness\":{\"snr5\":", f);
			json_num(f, s->completeness[0], 6);
			fputs(",\"snr10\":", f);
			json_num(f, s->completeness[1], 6);
			fputs(",\"snr20\":", f);
			json_num(f, s->completeness[2], 6);
			fputs("},\"position_rms\":", f);
			json_num(f, s->pos_rms, 6);
			fputs(",\"accuracy\":{\"snr20\":", f);
			json_num(f, s->accuracy[0], 6);
			fputs(",\"snr50\":", f);
			json_num(f, s->accuracy[1], 6);
			fputs("},\"median_class_star\":{\"star\":", f);
			json_num(f, s->median_cs_star, 6);
			fputs(",\"galaxy\":", f);
			json_num(f, s->median_cs_gal, 6);
			fputs("}}", f);
		}
		fputs(",\"fingerprint\":", f);
		print_fingerprint(f, c, r);
		fputs(",\"detections\":[", f);
		for (long k = 0; k < r->nd; k++) {
			const struct fi_det *e = &r->det[k];
			fprintf(f, "%s[%.4f,%.4f,%.4f,", k ? "," : "", e->x, e->y, e->snr);
			json_num(f, e->class_star, 6);
			fprintf(f, ",%d]", e->saturated);
		}
		fputs("]}", f);
	}
	fputs("],\"detection_columns\":[\"x\",\"y\",\"snr\",\"class_star\",\"saturated\"],\"checks\":[", f);
	for (int i = 0; i < nchecks; i++) {
		fprintf(f, "%s{\"name\":\"%s\",\"status\":\"%s\",\"value\":", i ? "," : "", checks[i].name,
			st_name[checks[i].status]);
		json_num(f, checks[i].value, 6);
		fputs(",\"limit\":", f);
		json_num(f, checks[i].limit, 6);
		fputs(",\"detail\":", f);
		json_str(f, checks[i].detail);
		fputc('}', f);
	}
	fputs("],\"fingerprint\":", f);
	if (ref)
		print_fingerprint(f, c, ref);
	else
		fputs("null", f);
	fputs("}\n", f);
}

static void print_text(FILE *f, struct ctx *c, struct run *runs, int nruns, const struct run *ref, int failed)
{
	fprintf(f, "image %s: %dx%d, bitpix %d, %zu undefined pixels, pixhash fnv1a64:%016llx\n", c->image_spec,
		c->nx, c->ny, c->img.bitpix, c->img.nan, (unsigned long long)c->img.pixhash);
	fprintf(f, "background %.3f, rms %.4f (%d of %d meshes of %d px valid)\n", c->bkg.global_bkg,
		c->bkg.global_rms, c->bkg.n_mesh_valid, c->bkg.mx * c->bkg.my, c->bkg.bw);
	fprintf(f, "libtorch %s, CUDA %s\n", c->ti.torch_version, c->ti.cuda_available ? "available" : "not available");
	for (int i = 0; i < nruns; i++)
		if (runs[i].done)
			fprintf(f, "run %s: %ld detections, forward %.1f ms\n", runs[i].name, runs[i].nd,
				runs[i].tm.forward_ms);
	for (int i = 0; i < nchecks; i++)
		fprintf(f, "%-4s %-40s %-10.4g %s\n", st_name[checks[i].status], checks[i].name, checks[i].value,
			checks[i].detail);
	if (ref)
		fprintf(f, "fingerprint v%d: n_det %ld n_eff %.3f sum_x %.3f sum_y %.3f sum_snr %.2f sum_cs %.3f\n",
			FP_VERSION, ref->nd, ref->fp[0], ref->fp[1], ref->fp[2], ref->fp[3], ref->fp[4]);
	fprintf(f, "%s\n", failed ? "FAIL" : "PASS");
}

static int write_detections(const char *path, const struct run *r)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "x,y,snr,class_star,saturated,match,kind\n");
	for (long i = 0; i < r->nd; i++) {
		const struct fi_det *e = &r->det[i];
		fprintf(f, "%.4f,%.4f,%.4f,%.6f,%d,%d,%d\n", e->x, e->y, e->snr, e->class_star, e->saturated, e->match,
			e->kind);
	}
	return fclose(f);
}

/* ---- setup ---- */

static int exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static int resolve_inputs(struct ctx *c, char *err, size_t errlen)
{
	struct stat st;
	const char *p = c->o->smoke;

	c->truth_path[0] = c->cosmics_path[0] = 0;
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
		static const char *names[] = {"sky.fits.fz", "sky.fits"};
		c->image_spec[0] = 0;
		for (size_t i = 0; i < 2 && !c->image_spec[0]; i++) {
			snprintf(c->image_spec, sizeof(c->image_spec), "%s/%s", p, names[i]);
			if (!exists(c->image_spec))
				c->image_spec[0] = 0;
		}
		if (!c->image_spec[0]) {
			snprintf(err, errlen, "'%s' holds no sky.fits.fz or sky.fits", p);
			return -1;
		}
		snprintf(c->truth_path, sizeof(c->truth_path), "%s/sky.truth.csv", p);
		if (!exists(c->truth_path))
			c->truth_path[0] = 0;
		snprintf(c->cosmics_path, sizeof(c->cosmics_path), "%s/sky.cosmics.csv", p);
		if (!exists(c->cosmics_path))
			c->cosmics_path[0] = 0;
	} else {
		snprintf(c->image_spec, sizeof(c->image_spec), "%s", p);
	}
	if (c->o->truth)
		snprintf(c->truth_path, sizeof(c->truth_path), "%s", c->o->truth);
	if (c->o->cosmics)
		snprintf(c->cosmics_path, sizeof(c->cosmics_path), "%s", c->o->cosmics);
	return 0;
}

static int load_truth(struct ctx *c, char *err, size_t errlen)
{
	if (!c->truth_path[0])
		return 0;
	c->nt = fi_truth_read(c->truth_path, &c->truth, err, errlen);
	if (c->nt < 0)
		return -1;
	if (c->cosmics_path[0]) {
		struct fi_truth *cr;
		long ncr = fi_truth_read(c->cosmics_path, &cr, err, errlen);
		if (ncr < 0)
			return -1;
		struct fi_truth *all = realloc(c->truth, (size_t)(c->nt + ncr + 1) * sizeof(*all));
		if (!all) {
			free(cr);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (long i = 0; i < ncr; i++) {
			cr[i].kind = FI_COSMIC;
			all[c->nt + i] = cr[i];
		}
		free(cr);
		c->truth = all;
		c->nt += ncr;
	}
	/* Without a true SNR column, estimate it from the flux (detect.h). */
	static float pf[63 * 63];
	double l2 = 0, sum = 0;
	int ks = fi_kernel_size(c->o->fwhm) + 4;
	if (ks > 63)
		ks = 63;
	fi_psf_kernel(c->o->fwhm, c->o->beta, ks, pf);
	for (int i = 0; i < ks * ks; i++) {
		sum += pf[i];
		l2 += (double)pf[i] * pf[i];
	}
	fi_truth_estimate_snr(c->truth, (size_t)c->nt, sqrt(l2) / sum, c->bkg.global_rms);
	return 0;
}

static int parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return end != s && !*end && !errno && isfinite(*v) ? 0 : -1;
}

static int smoke(struct opts *o)
{
	struct ctx cx, *c = &cx;
	char err[1024];
	struct run runs[3];
	int nruns = 0, failed = 0;
	const struct run *ref = NULL;

	memset(c, 0, sizeof(*c));
	memset(runs, 0, sizeof(runs));
	c->o = o;
	err[0] = 0;
	if (resolve_inputs(c, err, sizeof(err)) < 0)
		goto fatal;
	/* The network and libtorch first: a broken image is reported by cause
	 * before any work. */
	if (fi_nnw_read(o->nnw, &c->nnw, err, sizeof(err)) < 0)
		goto fatal;
	if (c->nnw.nlayers != 3 || c->nnw.n[0] != 10 || c->nnw.n[2] != 1) {
		snprintf(err, sizeof(err), "'%s': expected a 10-N-1 CLASS_STAR network, found %d layers", o->nnw,
			 c->nnw.nlayers);
		goto fatal;
	}
	if (shim_load(&c->shim, err, sizeof(err)) < 0 || c->shim.info(&c->ti, err, sizeof(err)) < 0)
		goto fatal;
	if (c->ti.abi != TS_ABI) {
		snprintf(err, sizeof(err), "'%s' has shim ABI %d, this program needs %d", c->shim.path, c->ti.abi,
			 TS_ABI);
		goto fatal;
	}
	double t0 = now_ms();
	if (fi_read_image(c->image_spec, 0, &c->img, err, sizeof(err)) < 0)
		goto fatal;
	if (c->img.naxis != 2 && !(c->img.naxis > 2 && c->img.n == (size_t)c->img.naxes[0] * c->img.naxes[1])) {
		snprintf(err, sizeof(err), "'%s': a cube; select one plane with FILE[*,*,k:k]", c->image_spec);
		goto fatal;
	}
	c->nx = (int)c->img.naxes[0];
	c->ny = (int)c->img.naxes[1];
	double t1 = now_ms();
	c->t_read_ms = t1 - t0;
	size_t np = (size_t)c->nx * c->ny;
	c->mask = malloc(np);
	c->z = malloc(np * sizeof(float));
	c->snr_ref = malloc(np * sizeof(float));
	c->ks = fi_kernel_size(o->fwhm);
	c->kern = malloc((size_t)c->ks * c->ks * sizeof(float));
	if (!c->mask || !c->z || !c->snr_ref || !c->kern) {
		snprintf(err, sizeof(err), "out of memory");
		goto fatal;
	}
	c->nmask = fi_mask_build(c->img.data, np, c->mask);
	if (fi_background(c->img.data, c->mask, c->nx, c->ny, o->mesh, 3, &c->bkg, err, sizeof(err)) < 0)
		goto fatal;
	fi_normalise(c->img.data, c->mask, &c->bkg, c->z);
	if (fi_psf_kernel(o->fwhm, o->beta, c->ks, c->kern) < 0) {
		snprintf(err, sizeof(err), "invalid PSF: FWHM %g px", o->fwhm);
		goto fatal;
	}
	fi_conv2d_ref(c->z, c->nx, c->ny, c->kern, c->ks, c->snr_ref);
	c->t_pre_ms = now_ms() - t1;
	add_check("background.finite",
		  isfinite(c->bkg.global_bkg) && c->bkg.global_rms > 0 && all_finite(c->z, np) ? ST_PASS : ST_FAIL,
		  c->bkg.global_rms, 0, "background and RMS finite, RMS positive, significance map finite");
	c->cp.seg_thresh = 3;
	c->cp.ana_thresh = 3;
	c->cp.pixscale = o->pixscale;
	c->cp.seeing = o->fwhm * o->pixscale;
	c->cp.saturate = (float)(o->saturate > 0		 ? o->saturate
				 : c->img.equiv_bitpix == 20 ? 65535
				 : c->img.equiv_bitpix == 8  ? 255
							     : INFINITY);
	if (load_truth(c, err, sizeof(err)) < 0)
		goto fatal;

	if (o->want_cpu) {
		struct run *r = &runs[nruns++];
		snprintf(r->name, sizeof(r->name), "cpu");
		r->device = TS_CPU;
		if (run_model(c, r, &TOL_CPU, err, sizeof(err)) < 0)
			goto fatal;
	}
	if (o->want_cuda && !c->ti.cuda_available) {
		add_check("cuda", ST_SKIP, 0, 0, "libtorch %s reports no CUDA device: GPU checks skipped",
			  c->ti.torch_version);
	} else if (o->want_cuda) {
		struct run *r = &runs[nruns++];
		snprintf(r->name, sizeof(r->name), "cuda");
		r->device = TS_CUDA;
		if (run_model(c, r, &TOL_STRICT, err, sizeof(err)) < 0)
			goto fatal;
		if (o->want_cpu)
			compare_runs(c, &runs[0], r, &TOL_STRICT);
		if (!o->strict) {
			r = &runs[nruns++];
			snprintf(r->name, sizeof(r->name), "cuda_tf32");
			r->device = TS_CUDA;
			r->tf32 = 1;
			if (run_model(c, r, &TOL_TF32, err, sizeof(err)) < 0)
				goto fatal;
			compare_runs(c, o->want_cpu ? &runs[0] : &runs[nruns - 2], r, &TOL_TF32);
			double d;
			map_ratio(r->snr, runs[nruns - 2].snr, np, 1, 0, &d);
			add_check("cuda_tf32.tf32_effect", ST_PASS, d, NAN,
				  "max |snr(TF32) - snr(TF32 off)| on this GPU (reported, not judged)");
		}
	}
	ref = nruns ? &runs[0] : NULL;
	if (o->detections && ref && write_detections(o->detections, ref) != 0) {
		snprintf(err, sizeof(err), "cannot write '%s': %s", o->detections, strerror(errno));
		goto fatal;
	}
	for (int i = 0; i < nchecks; i++)
		failed |= checks[i].status == ST_FAIL;
	if (o->json)
		print_json(stdout, c, runs, nruns, ref, failed);
	else
		print_text(stdout, c, runs, nruns, ref, failed);
	goto out;
fatal:
	failed = 1;
	fprintf(stderr, "envpin-fitsinfer: %s\n", err);
	if (o->json) {
		fputs("{\"program\":\"envpin-fitsinfer\",\"result\":\"fail\",\"error\":", stdout);
		json_str(stdout, err);
		fputs("}\n", stdout);
	}
out:
	for (int i = 0; i < nruns; i++)
		release_run(&runs[i]);
	fi_image_free(&c->img);
	fi_bkg_release(&c->bkg);
	fi_nnw_release(&c->nnw);
	free(c->mask);
	free(c->z);
	free(c->snr_ref);
	free(c->kern);
	free(c->truth);
	if (c->shim.h)
		dlclose(c->shim.h);
	if (fflush(stdout) != 0 || ferror(stdout))
		failed = 1;
	return failed ? 1 : 0;
}

static int describe(const char *spec)
{
	struct fi_image img;
	char err[1024];
	static char buf[1 << 16];

	if (fi_read_image(spec, 0, &img, err, sizeof(err)) < 0) {
		fprintf(stderr, "envpin-fitsinfer: %s\n", err);
		return 2;
	}
	int rc = fi_describe_json(spec, &img, buf, sizeof(buf));
	fi_image_free(&img);
	if (rc < 0) {
		fprintf(stderr, "envpin-fitsinfer: '%s': description too long\n", spec);
		return 1;
	}
	puts(buf);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"describe", required_argument, NULL, 'D'}, {"smoke", required_argument, NULL, 'S'},
		{"truth", required_argument, NULL, 't'},    {"cosmics", required_argument, NULL, 'c'},
		{"device", required_argument, NULL, 'd'},   {"strict", no_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},	    {"nnw", required_argument, NULL, 'n'},
		{"fwhm", required_argument, NULL, 'f'},	    {"beta", required_argument, NULL, 'b'},
		{"pixscale", required_argument, NULL, 'p'}, {"thresh", required_argument, NULL, 'T'},
		{"mesh", required_argument, NULL, 'm'},	    {"saturate", required_argument, NULL, 'a'},
		{"detections", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.nnw = DEFAULT_NNW, .want_cpu = 1, .want_cuda = 1, .fwhm = 3, .beta = 3,
			 .pixscale = 0.5, .thresh = 5, .mesh = 64};
	double v;
	int ch;

	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'D': o.describe = optarg; break;
		case 'S': o.smoke = optarg; break;
		case 't': o.truth = optarg; break;
		case 'c': o.cosmics = optarg; break;
		case 'n': o.nnw = optarg; break;
		case 'o': o.detections = optarg; break;
		case 's': o.strict = 1; break;
		case 'j': o.json = 1; break;
		case 'd':
			o.want_cpu = !strcmp(optarg, "cpu") || !strcmp(optarg, "both");
			o.want_cuda = !strcmp(optarg, "cuda") || !strcmp(optarg, "both");
			if (!o.want_cpu && !o.want_cuda) {
				fprintf(stderr, "envpin-fitsinfer: --device: '%s' is not cpu, cuda or both\n", optarg);
				return 2;
			}
			break;
		case 'f': case 'b': case 'p': case 'T': case 'm': case 'a':
			if (parse_double(optarg, &v) < 0 || (ch != 'b' && !(v > 0)) || (ch == 'm' && v > 4096)) {
				fprintf(stderr, "envpin-fitsinfer: invalid value '%s' for --%s\n", optarg,
					ch == 'f' ? "fwhm" : ch == 'b' ? "beta" : ch == 'p' ? "pixscale"
					: ch == 'T' ? "thresh" : ch == 'm' ? "mesh" : "saturate");
				return 2;
			}
			if (ch == 'f') o.fwhm = v;
			else if (ch == 'b') o.beta = v;
			else if (ch == 'p') o.pixscale = v;
			else if (ch == 'T') o.thresh = v;
			else if (ch == 'm') o.mesh = (int)v;
			else o.saturate = v;
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc || !!o.describe == !!o.smoke) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (o.fwhm > 30) {
		fprintf(stderr, "envpin-fitsinfer: --fwhm %g px is larger than the 30 px supported\n", o.fwhm);
		return 2;
	}
	return o.describe ? describe(o.describe) : smoke(&o);
}
