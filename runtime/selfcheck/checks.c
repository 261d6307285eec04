/* runtime/selfcheck/checks.c - see checks.h.  Buffers are checked once at
 * allocation; CUDA errors end the device's run with the call named. */
#include "checks.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "numeric.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		fputs("envpin-selfcheck: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

/* Runs a CUDA runtime call; on error writes "device D: CALL: message" to
 * why and jumps to out. */
#define CUDA(call)                                                                                 \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_ != 0) {                                                                    \
			snprintf(why, sizeof why, "device %d: %s: %s (%d)", d, #call,              \
				 sc_cuda_strerror(a, rc_), rc_);                                   \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)
#define CUBLAS(call)                                                                               \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_ != 0) {                                                                    \
			snprintf(why, sizeof why, "device %d: %s: cublas status %d", d, #call,     \
				 rc_);                                                             \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)
#define CUDNN(call)                                                                                \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_ != 0) {                                                                    \
			snprintf(why, sizeof why, "device %d: %s: %s (%d)", d, #call,              \
				 sc_cudnn_strerror(a, rc_), rc_);                                  \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static void err_figs(struct sc_check *c, const struct sc_err *e, double tol)
{
	sc_fig_num(c, "rel_err", e->rel);
	sc_fig_num(c, "max_abs_err", e->max_abs);
	sc_fig_num(c, "mean_abs_ref", e->mean_abs_ref);
	sc_fig_int(c, "nonfinite", (long long)e->n_nonfinite);
	sc_fig_num(c, "tolerance", tol);
}

/* keeps the worse of two results: NaN is worst */
static void worst_of(struct sc_err *acc, const struct sc_err *e, int *first)
{
	if (*first || isnan(e->rel) || (!isnan(acc->rel) && e->rel > acc->rel))
		*acc = *e;
	*first = 0;
}

void sc_check_roundtrip(const struct sc_api *a, int ndev, struct sc_check *c)
{
	const size_t n = SC_ROUNDTRIP_BYTES;
	char why[512] = "";
	unsigned char *src = NULL, *dst = NULL;
	void *d1 = NULL, *d2 = NULL;
	int pinned = 1, all_pinned = 1, d = 0, ok = 1;
	double h2d = 0, d2h = 0;

	for (d = 0; d < ndev; d++) {
		pinned = 1;
		CUDA(a->cudaSetDevice(d));
		/* pinned memory is what bandwidthTest uses; fall back to
		 * pageable rather than fail when the lock limit is low */
		if (a->cudaMallocHost((void **)&src, n) != 0 ||
		    a->cudaMallocHost((void **)&dst, n) != 0) {
			if (src)
				a->cudaFreeHost(src);
			src = xcalloc(1, n);
			dst = xcalloc(1, n);
			pinned = all_pinned = 0;
		}
		sc_fill_bytes(src, n, 0x5eedu + (uint64_t)d);
		memset(dst, 0, n);
		CUDA(a->cudaMalloc(&d1, n));
		CUDA(a->cudaMalloc(&d2, n));
		/* a device-to-device copy that did nothing would leave 0xa5 */
		CUDA(a->cudaMemset(d2, 0xa5, n));
		CUDA(a->cudaDeviceSynchronize());
		double t0 = now_s();
		CUDA(a->cudaMemcpy(d1, src, n, SC_cudaMemcpyHostToDevice));
		double t1 = now_s();
		CUDA(a->cudaMemcpy(d2, d1, n, SC_cudaMemcpyDeviceToDevice));
		CUDA(a->cudaDeviceSynchronize());
		double t2 = now_s();
		CUDA(a->cudaMemcpy(dst, d2, n, SC_cudaMemcpyDeviceToHost));
		double t3 = now_s();
		if (memcmp(src, dst, n) != 0) {
			size_t i = 0;
			while (i < n && src[i] == dst[i])
				i++;
			snprintf(why, sizeof why,
				 "device %d: data differs after the round trip at byte %zu", d, i);
			ok = 0;
		}
		if (t1 > t0)
			h2d = n / (t1 - t0) / 1e9;
		if (t3 > t2)
			d2h = n / (t3 - t2) / 1e9;
		a->cudaFree(d1);
		a->cudaFree(d2);
		d1 = d2 = NULL;
		if (pinned) {
			a->cudaFreeHost(src);
			a->cudaFreeHost(dst);
		} else {
			free(src);
			free(dst);
		}
		src = dst = NULL;
		if (!ok)
			break;
	}
	sc_fig_int(c, "bytes", (long long)n);
	sc_fig_bool(c, "pinned", all_pinned);
	/* recorded, not gated: one unwarmed copy is no bandwidth benchmark */
	sc_fig_num(c, "h2d_gbps", h2d);
	sc_fig_num(c, "d2h_gbps", d2h);
	if (ok)
		sc_check_set(c, SC_PASS,
			     "%zu bytes host->device->device->host bit-exact on %d device(s)", n,
			     ndev);
	else
		sc_check_set(c, SC_FAIL, "%s", why);
	return;
out:
	if (d1)
		a->cudaFree(d1);
	if (d2)
		a->cudaFree(d2);
	if (pinned) {
		if (src)
			a->cudaFreeHost(src);
		if (dst)
			a->cudaFreeHost(dst);
	} else {
		free(src);
		free(dst);
	}
	sc_fig_int(c, "bytes", (long long)n);
	sc_check_set(c, SC_FAIL, "%s", why);
}

void sc_check_gemm(const struct sc_api *a, int ndev, int n, struct sc_check *c32,
		   struct sc_check *ctf, struct sc_check *det)
{
	size_t nn = (size_t)n * n;
	float *A = xcalloc(nn, sizeof *A), *B = xcalloc(nn, sizeof *B);
	float *C1 = xcalloc(nn, sizeof *C1), *C2 = xcalloc(nn, sizeof *C2);
	double *ref = xcalloc(nn, sizeof *ref);
	const float alpha = 1.0f, beta = 0.0f;
	struct sc_err e32 = {0}, etf = {0}, e;
	int first32 = 1, firsttf = 1, identical = 1, d = 0, failed = 0;
	char why[512] = "";
	void *dA = NULL, *dB = NULL, *dC = NULL, *h = NULL;
	const char *env;

	sc_fill_uniform(A, nn, 1);
	sc_fill_uniform(B, nn, 2);
	double t0 = now_s();
	sc_gemm_ref((size_t)n, (size_t)n, (size_t)n, A, B, ref);
	sc_fig_num(c32, "cpu_ref_seconds", now_s() - t0);

	for (d = 0; d < ndev; d++) {
		CUDA(a->cudaSetDevice(d));
		CUDA(a->cudaMalloc(&dA, nn * sizeof(float)));
		CUDA(a->cudaMalloc(&dB, nn * sizeof(float)));
		CUDA(a->cudaMalloc(&dC, nn * sizeof(float)));
		CUDA(a->cudaMemcpy(dA, A, nn * sizeof(float), SC_cudaMemcpyHostToDevice));
		CUDA(a->cudaMemcpy(dB, B, nn * sizeof(float), SC_cudaMemcpyHostToDevice));
		CUBLAS(a->cublasCreate(&h));

		CUBLAS(a->cublasSetMathMode(h, SC_CUBLAS_DEFAULT_MATH));
		CUBLAS(a->cublasSgemm(h, SC_CUBLAS_OP_N, SC_CUBLAS_OP_N, n, n, n, &alpha, dA, n, dB,
				      n, &beta, dC, n));
		CUDA(a->cudaMemcpy(C1, dC, nn * sizeof(float), SC_cudaMemcpyDeviceToHost));
		sc_compare(C1, ref, nn, &e);
		worst_of(&e32, &e, &first32);

		CUDA(a->cudaMemset(dC, 0, nn * sizeof(float)));
		CUBLAS(a->cublasSgemm(h, SC_CUBLAS_OP_N, SC_CUBLAS_OP_N, n, n, n, &alpha, dA, n, dB,
				      n, &beta, dC, n));
		CUDA(a->cudaMemcpy(C2, dC, nn * sizeof(float), SC_cudaMemcpyDeviceToHost));
		if (memcmp(C1, C2, nn * sizeof(float)) != 0)
			identical = 0;

		CUBLAS(a->cublasSetMathMode(h, SC_CUBLAS_TF32_TENSOR_OP_MATH));
		CUBLAS(a->cublasSgemm(h, SC_CUBLAS_OP_N, SC_CUBLAS_OP_N, n, n, n, &alpha, dA, n, dB,
				      n, &beta, dC, n));
		CUDA(a->cudaMemcpy(C2, dC, nn * sizeof(float), SC_cudaMemcpyDeviceToHost));
		sc_compare(C2, ref, nn, &e);
		worst_of(&etf, &e, &firsttf);

		a->cublasDestroy(h);
		h = NULL;
		a->cudaFree(dA);
		a->cudaFree(dB);
		a->cudaFree(dC);
		dA = dB = dC = NULL;
	}
	goto done;
out:
	failed = 1;
	if (h)
		a->cublasDestroy(h);
	if (dA)
		a->cudaFree(dA);
	if (dB)
		a->cudaFree(dB);
	if (dC)
		a->cudaFree(dC);
done:
	sc_fig_int(c32, "m", n);
	sc_fig_int(c32, "n", n);
	sc_fig_int(c32, "k", n);
	sc_fig_str(c32, "math_mode", "CUBLAS_DEFAULT_MATH");
	env = getenv("NVIDIA_TF32_OVERRIDE");
	sc_fig_str(c32, "nvidia_tf32_override", "%s", env ? env : "");
	sc_fig_str(ctf, "math_mode", "CUBLAS_TF32_TENSOR_OP_MATH");
	if (failed) {
		sc_check_set(c32, SC_FAIL, "%s", why);
		sc_check_set(ctf, SC_FAIL, "%s", why);
		sc_fig_str(det, "gemm", "%s", "error");
	} else {
		err_figs(c32, &e32, SC_TOL_GEMM_FP32);
		err_figs(ctf, &etf, SC_TOL_GEMM_TF32);
		if (sc_err_within(&e32, SC_TOL_GEMM_FP32))
			sc_check_set(c32, SC_PASS,
				     "FP32 SGEMM %dx%dx%d, TF32 off: relative error %.3g <= %g", n,
				     n, n, e32.rel, SC_TOL_GEMM_FP32);
		else
			sc_check_set(c32, SC_FAIL,
				     "FP32 SGEMM %dx%dx%d, TF32 off: relative error %.3g > %g (%zu "
				     "non-finite)",
				     n, n, n, e32.rel, SC_TOL_GEMM_FP32, e32.n_nonfinite);
		/* TF32 keeps 10 mantissa bits: an error at FP32 level means the
		 * tensor-core path was not taken (pre-Ampere, or overridden) */
		int engaged =
		    isfinite(etf.rel) && etf.rel > SC_TOL_GEMM_FP32 && etf.rel > e32.rel * 4;
		sc_fig_bool(ctf, "tf32_engaged", engaged);
		if (sc_err_within(&etf, SC_TOL_GEMM_TF32))
			sc_check_set(ctf, SC_PASS,
				     "SGEMM with TF32 allowed: relative error %.3g (expected ~1e-3 "
				     "when TF32 is used%s)",
				     etf.rel, engaged ? "" : "; TF32 was not used");
		else
			sc_check_set(ctf, SC_FAIL,
				     "SGEMM with TF32 allowed: relative error %.3g > %g", etf.rel,
				     SC_TOL_GEMM_TF32);
		sc_fig_str(det, "gemm", "%s", identical ? "identical" : "differs");
	}
	free(A);
	free(B);
	free(C1);
	free(C2);
	free(ref);
}

struct conv_bufs {
	void *x, *w, *y, *ws;
};

static void conv_free(const struct sc_api *a, struct conv_bufs *b)
{
	void **p[] = {&b->x, &b->w, &b->y, &b->ws};
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
		if (*p[i]) {
			a->cudaFree(*p[i]);
			*p[i] = NULL;
		}
}

void sc_check_conv(const struct sc_api *a, int ndev, struct sc_check *c32, struct sc_check *c16,
		   struct sc_check *det)
{
	const struct sc_conv_shape sh = {
	    .n = 2, .c = 8, .h = 64, .w = 64, .k = 16, .r = 3, .s = 3, .pad_h = 1, .pad_w = 1};
	const int oh = sc_conv_out_h(&sh), ow = sc_conv_out_w(&sh);
	const size_t nx = sc_conv_x_len(&sh), nw = sc_conv_w_len(&sh), ny = sc_conv_y_len(&sh);
	float *x = xcalloc(nx, sizeof *x), *w = xcalloc(nw, sizeof *w);
	float *xr = xcalloc(nx, sizeof *xr), *wr = xcalloc(nw, sizeof *wr);
	uint16_t *xh = xcalloc(nx, sizeof *xh), *wh = xcalloc(nw, sizeof *wh),
		 *yh = xcalloc(ny, sizeof *yh);
	float *y1 = xcalloc(ny, sizeof *y1), *y2 = xcalloc(ny, sizeof *y2);
	double *ref32 = xcalloc(ny, sizeof *ref32), *ref16 = xcalloc(ny, sizeof *ref16);
	const float alpha = 1.0f, beta = 0.0f;
	struct sc_err e32 = {0}, e16 = {0}, e;
	int first32 = 1, first16 = 1, identical = 1, d = 0, failed = 0, fma = 1, algo16 = -1;
	char why[512] = "", why16[512] = "";
	void *h = NULL, *xd = NULL, *wd = NULL, *cd = NULL, *yd = NULL;
	struct conv_bufs b = {0};
	size_t ws = 0;

	sc_fill_uniform(x, nx, 3);
	sc_fill_uniform(w, nw, 4);
	sc_conv_ref(&sh, x, w, ref32);
	/* FP16 is judged against the reference of the rounded inputs: the
	 * check measures the convolution, not the input quantisation */
	for (size_t i = 0; i < nx; i++) {
		xh[i] = sc_float_to_half(x[i]);
		xr[i] = sc_half_to_float(xh[i]);
	}
	for (size_t i = 0; i < nw; i++) {
		wh[i] = sc_float_to_half(w[i]);
		wr[i] = sc_half_to_float(wh[i]);
	}
	sc_conv_ref(&sh, xr, wr, ref16);

	for (d = 0; d < ndev; d++) {
		CUDA(a->cudaSetDevice(d));
		CUDNN(a->cudnnCreate(&h));
		CUDNN(a->cudnnCreateTensorDescriptor(&xd));
		CUDNN(a->cudnnCreateTensorDescriptor(&yd));
		CUDNN(a->cudnnCreateFilterDescriptor(&wd));
		CUDNN(a->cudnnCreateConvolutionDescriptor(&cd));

		/* FP32, FMA math: no tensor cores, so no TF32 either */
		CUDNN(a->cudnnSetTensor4dDescriptor(xd, SC_CUDNN_TENSOR_NCHW, SC_CUDNN_DATA_FLOAT,
						    sh.n, sh.c, sh.h, sh.w));
		CUDNN(a->cudnnSetFilter4dDescriptor(wd, SC_CUDNN_DATA_FLOAT, SC_CUDNN_TENSOR_NCHW,
						    sh.k, sh.c, sh.r, sh.s));
		CUDNN(a->cudnnSetTensor4dDescriptor(yd, SC_CUDNN_TENSOR_NCHW, SC_CUDNN_DATA_FLOAT,
						    sh.n, sh.k, oh, ow));
		CUDNN(a->cudnnSetConvolution2dDescriptor(cd, sh.pad_h, sh.pad_w, 1, 1, 1, 1,
							 SC_CUDNN_CROSS_CORRELATION,
							 SC_CUDNN_DATA_FLOAT));
		if (a->cudnnSetConvolutionMathType(cd, SC_CUDNN_FMA_MATH) != 0) {
			fma = 0; /* cuDNN 7: DEFAULT never used TF32 there */
			CUDNN(a->cudnnSetConvolutionMathType(cd, SC_CUDNN_DEFAULT_MATH));
		}
		CUDA(a->cudaMalloc(&b.x, nx * sizeof(float)));
		CUDA(a->cudaMalloc(&b.w, nw * sizeof(float)));
		CUDA(a->cudaMalloc(&b.y, ny * sizeof(float)));
		CUDA(a->cudaMemcpy(b.x, x, nx * sizeof(float), SC_cudaMemcpyHostToDevice));
		CUDA(a->cudaMemcpy(b.w, w, nw * sizeof(float), SC_cudaMemcpyHostToDevice));
		CUDNN(a->cudnnGetConvolutionForwardWorkspaceSize(
		    h, xd, wd, cd, yd, SC_CUDNN_FWD_ALGO_IMPLICIT_GEMM, &ws));
		if (ws)
			CUDA(a->cudaMalloc(&b.ws, ws));
		CUDNN(a->cudnnConvolutionForward(h, &alpha, xd, b.x, wd, b.w, cd,
						 SC_CUDNN_FWD_ALGO_IMPLICIT_GEMM, b.ws, ws, &beta,
						 yd, b.y));
		CUDA(a->cudaMemcpy(y1, b.y, ny * sizeof(float), SC_cudaMemcpyDeviceToHost));
		sc_compare(y1, ref32, ny, &e);
		worst_of(&e32, &e, &first32);
		CUDA(a->cudaMemset(b.y, 0, ny * sizeof(float)));
		CUDNN(a->cudnnConvolutionForward(h, &alpha, xd, b.x, wd, b.w, cd,
						 SC_CUDNN_FWD_ALGO_IMPLICIT_GEMM, b.ws, ws, &beta,
						 yd, b.y));
		CUDA(a->cudaMemcpy(y2, b.y, ny * sizeof(float), SC_cudaMemcpyDeviceToHost));
		if (memcmp(y1, y2, ny * sizeof(float)) != 0)
			identical = 0;
		conv_free(a, &b);

		/* FP16 storage, FP32 accumulation (PSEUDO_HALF_CONFIG), tensor
		 * cores allowed; the precomputed implicit GEMM is the usual
		 * FP16 path, plain implicit GEMM the fallback every cuDNN has */
		CUDNN(a->cudnnSetTensor4dDescriptor(xd, SC_CUDNN_TENSOR_NCHW, SC_CUDNN_DATA_HALF,
						    sh.n, sh.c, sh.h, sh.w));
		CUDNN(a->cudnnSetFilter4dDescriptor(wd, SC_CUDNN_DATA_HALF, SC_CUDNN_TENSOR_NCHW,
						    sh.k, sh.c, sh.r, sh.s));
		CUDNN(a->cudnnSetTensor4dDescriptor(yd, SC_CUDNN_TENSOR_NCHW, SC_CUDNN_DATA_HALF,
						    sh.n, sh.k, oh, ow));
		CUDNN(a->cudnnSetConvolution2dDescriptor(cd, sh.pad_h, sh.pad_w, 1, 1, 1, 1,
							 SC_CUDNN_CROSS_CORRELATION,
							 SC_CUDNN_DATA_FLOAT));
		CUDNN(a->cudnnSetConvolutionMathType(cd, SC_CUDNN_TENSOR_OP_MATH));
		CUDA(a->cudaMalloc(&b.x, nx * 2));
		CUDA(a->cudaMalloc(&b.w, nw * 2));
		CUDA(a->cudaMalloc(&b.y, ny * 2));
		CUDA(a->cudaMemcpy(b.x, xh, nx * 2, SC_cudaMemcpyHostToDevice));
		CUDA(a->cudaMemcpy(b.w, wh, nw * 2, SC_cudaMemcpyHostToDevice));
		static const int algos[] = {SC_CUDNN_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
					    SC_CUDNN_FWD_ALGO_IMPLICIT_GEMM};
		algo16 = -1;
		for (size_t i = 0; i < sizeof algos / sizeof algos[0] && algo16 < 0; i++) {
			int rc = a->cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd,
									    algos[i], &ws);
			if (rc == 0 && ws && a->cudaMalloc(&b.ws, ws) != 0)
				rc = -1;
			if (rc == 0)
				rc = a->cudnnConvolutionForward(h, &alpha, xd, b.x, wd, b.w, cd,
								algos[i], b.ws, ws, &beta, yd, b.y);
			if (rc == 0)
				algo16 = algos[i];
			else
				snprintf(why16, sizeof why16,
					 "device %d: FP16 convolution (algo %d): %s", d, algos[i],
					 rc < 0 ? "out of device memory"
						: sc_cudnn_strerror(a, rc));
			if (b.ws) {
				a->cudaFree(b.ws);
				b.ws = NULL;
			}
		}
		if (algo16 < 0) {
			snprintf(why, sizeof why, "%s", why16);
			conv_free(a, &b);
			failed = 2; /* FP32 results stand */
			goto cleanup;
		}
		CUDA(a->cudaMemcpy(yh, b.y, ny * 2, SC_cudaMemcpyDeviceToHost));
		for (size_t i = 0; i < ny; i++)
			y1[i] = sc_half_to_float(yh[i]);
		sc_compare(y1, ref16, ny, &e);
		worst_of(&e16, &e, &first16);
		conv_free(a, &b);
	cleanup:
		a->cudnnDestroyTensorDescriptor(xd);
		a->cudnnDestroyTensorDescriptor(yd);
		a->cudnnDestroyFilterDescriptor(wd);
		a->cudnnDestroyConvolutionDescriptor(cd);
		a->cudnnDestroy(h);
		xd = yd = wd = cd = h = NULL;
		if (failed)
			break;
	}
	goto done;
out:
	failed = 1;
	conv_free(a, &b);
	if (xd)
		a->cudnnDestroyTensorDescriptor(xd);
	if (yd)
		a->cudnnDestroyTensorDescriptor(yd);
	if (wd)
		a->cudnnDestroyFilterDescriptor(wd);
	if (cd)
		a->cudnnDestroyConvolutionDescriptor(cd);
	if (h)
		a->cudnnDestroy(h);
done:
	sc_fig_str(c32, "shape", "N=%d C=%d H=%d W=%d K=%d %dx%d pad %d", sh.n, sh.c, sh.h, sh.w,
		   sh.k, sh.r, sh.s, sh.pad_h);
	sc_fig_str(c32, "algo", "IMPLICIT_GEMM");
	sc_fig_str(c32, "math_type", "%s", fma ? "CUDNN_FMA_MATH" : "CUDNN_DEFAULT_MATH");
	sc_fig_str(c16, "math_type", "CUDNN_TENSOR_OP_MATH");
	sc_fig_str(c16, "compute_type", "FLOAT");
	if (algo16 >= 0)
		sc_fig_str(c16, "algo", "%s",
			   algo16 == SC_CUDNN_FWD_ALGO_IMPLICIT_PRECOMP_GEMM
			       ? "IMPLICIT_PRECOMP_GEMM"
			       : "IMPLICIT_GEMM");
	if (failed == 1) {
		sc_check_set(c32, SC_FAIL, "%s", why);
		sc_check_set(c16, SC_FAIL, "%s", why);
		sc_fig_str(det, "conv", "%s", "error");
	} else {
		err_figs(c32, &e32, SC_TOL_CONV_FP32);
		if (sc_err_within(&e32, SC_TOL_CONV_FP32))
			sc_check_set(c32, SC_PASS,
				     "cuDNN FP32 convolution: relative error %.3g <= %g", e32.rel,
				     SC_TOL_CONV_FP32);
		else
			sc_check_set(
			    c32, SC_FAIL,
			    "cuDNN FP32 convolution: relative error %.3g > %g (%zu non-finite)",
			    e32.rel, SC_TOL_CONV_FP32, e32.n_nonfinite);
		sc_fig_str(det, "conv", "%s", identical ? "identical" : "differs");
		if (failed == 2) {
			sc_check_set(c16, SC_FAIL, "%s", why);
		} else {
			err_figs(c16, &e16, SC_TOL_CONV_FP16);
			if (sc_err_within(&e16, SC_TOL_CONV_FP16))
				sc_check_set(c16, SC_PASS,
					     "cuDNN FP16 convolution: relative error %.3g <= %g",
					     e16.rel, SC_TOL_CONV_FP16);
			else
				sc_check_set(c16, SC_FAIL,
					     "cuDNN FP16 convolution: relative error %.3g > %g "
					     "(%zu non-finite)",
					     e16.rel, SC_TOL_CONV_FP16, e16.n_nonfinite);
		}
	}
	free(x);
	free(w);
	free(xr);
	free(wr);
	free(xh);
	free(wh);
	free(yh);
	free(y1);
	free(y2);
	free(ref32);
	free(ref16);
}

/* PTX ISA version that introduced each target (PTX ISA release notes). */
static const char *ptx_isa_for(int major, int minor)
{
	static const struct {
		int cc;
		const char *isa;
	} t[] = {{80, "7.0"},  {86, "7.1"},  {87, "7.4"},  {89, "7.8"},	 {90, "7.8"}, {100, "8.6"},
		 {101, "8.6"}, {103, "8.8"}, {110, "9.0"}, {120, "8.7"}, {121, "8.8"}};
	int cc = major * 10 + minor;

	if (cc < 80)
		return "6.4";
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i].cc == cc)
			return t[i].isa;
	return NULL;
}

static int probe_ptx_text(const char *isa, int cc, char *buf, size_t cap)
{
	/* out[tid] = 3 * tid + 7 for 256 threads */
	int n = snprintf(buf, cap,
			 ".version %s\n"
			 ".target sm_%d\n"
			 ".address_size 64\n"
			 ".visible .entry envpin_probe(.param .u64 out)\n"
			 "{\n"
			 "\t.reg .u32 %%r<4>;\n"
			 "\t.reg .u64 %%rd<5>;\n"
			 "\tld.param.u64 %%rd1, [out];\n"
			 "\tcvta.to.global.u64 %%rd2, %%rd1;\n"
			 "\tmov.u32 %%r1, %%tid.x;\n"
			 "\tmul.wide.u32 %%rd3, %%r1, 4;\n"
			 "\tadd.u64 %%rd4, %%rd2, %%rd3;\n"
			 "\tmad.lo.u32 %%r2, %%r1, 3, 7;\n"
			 "\tst.global.u32 [%%rd4], %%r2;\n"
			 "\tret;\n"
			 "}\n",
			 isa, cc);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int sc_probe_ptx(int major, int minor, char *buf, size_t cap)
{
	const char *isa = ptx_isa_for(major, minor);
	/* a target newer than the table: the newest ISA in it */
	return probe_ptx_text(isa ? isa : "9.0", major * 10 + minor, buf, cap);
}

/* Loads and runs the probe from ptx on the current device; 0 or -1 with why. */
static int run_probe(const struct sc_api *a, const char *ptx, char *why, size_t cap)
{
	sc_handle mod = NULL, fn = NULL;
	void *out = NULL;
	uint32_t host[256];
	int rc, ret = -1;

	if ((rc = a->cuModuleLoadData(&mod, ptx)) != 0) {
		snprintf(why, cap, "cuModuleLoadData: %s (%d)", sc_cu_strerror(a, rc), rc);
		return -1;
	}
	if ((rc = a->cuModuleGetFunction(&fn, mod, "envpin_probe")) != 0) {
		snprintf(why, cap, "cuModuleGetFunction: %s (%d)", sc_cu_strerror(a, rc), rc);
		goto out;
	}
	if ((rc = a->cudaMalloc(&out, sizeof host)) != 0 ||
	    (rc = a->cudaMemset(out, 0, sizeof host)) != 0) {
		snprintf(why, cap, "cudaMalloc: %s (%d)", sc_cuda_strerror(a, rc), rc);
		goto out;
	}
	unsigned long long p = (unsigned long long)(uintptr_t)out;
	void *args[] = {&p};
	if ((rc = a->cuLaunchKernel(fn, 1, 1, 1, 256, 1, 1, 0, NULL, args, NULL)) != 0) {
		snprintf(why, cap, "cuLaunchKernel: %s (%d)", sc_cu_strerror(a, rc), rc);
		goto out;
	}
	if ((rc = a->cudaMemcpy(host, out, sizeof host, SC_cudaMemcpyDeviceToHost)) != 0) {
		snprintf(why, cap, "kernel run: %s (%d)", sc_cuda_strerror(a, rc), rc);
		goto out;
	}
	for (uint32_t i = 0; i < 256; i++)
		if (host[i] != 3 * i + 7) {
			snprintf(why, cap, "the probe kernel wrote %u at %u, expected %u", host[i],
				 i, 3 * i + 7);
			goto out;
		}
	ret = 0;
out:
	if (out)
		a->cudaFree(out);
	a->cuModuleUnload(mod);
	return ret;
}

void sc_check_cc(const struct sc_api *a, struct sc_report *r, struct sc_check *c)
{
	char ptx[2048], why[512], list[256] = "", targets[256] = "";
	int ok = 1;

	for (int i = 0; i < r->n_devices; i++) {
		struct sc_device *dev = &r->devices[i];
		int major = 0, minor = 0, rc;
		size_t len = strlen(list);

		if (sscanf(dev->cc, "%d.%d", &major, &minor) != 2) {
			snprintf(why, sizeof why, "device %d: compute capability unknown", i);
			ok = 0;
			break;
		}
		snprintf(list + len, sizeof list - len, "%ssm_%d%d", len ? "," : "", major, minor);
		if ((rc = a->cudaSetDevice(i)) != 0 || (rc = a->cudaFree(NULL)) != 0) {
			snprintf(why, sizeof why, "device %d: context: %s (%d)", i,
				 sc_cuda_strerror(a, rc), rc);
			ok = 0;
			break;
		}
		/* first the device's own target; then, so that a device newer
		 * than this table still gets a verdict, PTX for sm_75 that the
		 * driver compiles forward (how CUDA runs old PTX on new GPUs) */
		char why1[256] = "";
		const char *used = NULL;
		char target[32];
		snprintf(target, sizeof target, "sm_%d%d", major, minor);
		if (sc_probe_ptx(major, minor, ptx, sizeof ptx) == 0 &&
		    run_probe(a, ptx, why1, sizeof why1) == 0) {
			used = target;
		} else if (major * 10 + minor > 75 &&
			   probe_ptx_text("6.4", 75, ptx, sizeof ptx) == 0 &&
			   run_probe(a, ptx, why, sizeof why) == 0) {
			used = "sm_75 (forward JIT)";
		}
		len = strlen(targets);
		snprintf(targets + len, sizeof targets - len, "%s%s", len ? "," : "",
			 used ? used : "none");
		if (!used) {
			snprintf(why, sizeof why, "device %d (sm_%d%d): PTX JIT probe failed: %s",
				 i, major, minor, why1);
			ok = 0;
			break;
		}
	}
	sc_fig_str(c, "device_archs", "%s", list);
	sc_fig_str(c, "probe_targets", "%s", targets);
	sc_fig_str(
	    c, "method",
	    "PTX kernel JIT-compiled by the driver for each device, launched, output verified; "
	    "cuBLAS/cuDNN kernels proven by the GEMM and convolution checks");
	if (ok)
		sc_check_set(c, SC_PASS, "kernels load and run on %s", list);
	else
		sc_check_set(c, SC_FAIL, "%s", why);
}

#define SC_NCCL_MAX_DEV 16
#define SC_NCCL_COUNT ((size_t)1 << 20) /* floats per device: 4 MiB */

/* Device d holds x_i = (i % 251) + d + 1 (small integers: every partial sum
 * is exact in float32 whatever order NCCL adds in), so the sum over ndev
 * devices is ndev * ((i % 251) + 1) + ndev*(ndev-1)/2, checked exactly. */
void sc_check_nccl_allreduce(const struct sc_api *a, int ndev, struct sc_check *c)
{
	const size_t n = SC_NCCL_COUNT;
	sc_handle comms[SC_NCCL_MAX_DEV] = {0}, streams[SC_NCCL_MAX_DEV] = {0};
	void *buf[SC_NCCL_MAX_DEV] = {0};
	int devs[SC_NCCL_MAX_DEV] = {0};
	char why[512] = "";
	float *host = NULL;
	size_t bad = 0, first_bad = 0;
	int d = 0, ok = 0, comm_ok = 0, rc;
	double t0 = 0, t1 = 0;

	if (ndev > SC_NCCL_MAX_DEV)
		ndev = SC_NCCL_MAX_DEV;
	host = xcalloc(n, sizeof(float));
	for (d = 0; d < ndev; d++)
		devs[d] = d;
	d = 0;
	if ((rc = a->ncclCommInitAll(comms, ndev, devs)) != 0) {
		snprintf(why, sizeof why, "ncclCommInitAll(%d devices): %s (%d)", ndev,
			 sc_nccl_strerror(a, rc), rc);
		goto out;
	}
	comm_ok = 1;
	for (d = 0; d < ndev; d++) {
		for (size_t i = 0; i < n; i++)
			host[i] = (float)((i % 251) + (size_t)d + 1);
		CUDA(a->cudaSetDevice(d));
		CUDA(a->cudaStreamCreate(&streams[d]));
		CUDA(a->cudaMalloc(&buf[d], n * sizeof(float)));
		CUDA(a->cudaMemcpy(buf[d], host, n * sizeof(float), SC_cudaMemcpyHostToDevice));
	}
	d = 0;
	t0 = now_s();
	if ((rc = a->ncclGroupStart()) != 0) {
		snprintf(why, sizeof why, "ncclGroupStart: %s (%d)", sc_nccl_strerror(a, rc), rc);
		goto out;
	}
	for (d = 0; d < ndev; d++) {
		rc = a->ncclAllReduce(buf[d], buf[d], n, SC_ncclFloat32, SC_ncclSum, comms[d],
				      streams[d]);
		if (rc != 0) {
			snprintf(why, sizeof why, "device %d: ncclAllReduce: %s (%d)", d,
				 sc_nccl_strerror(a, rc), rc);
			a->ncclGroupEnd();
			goto out;
		}
	}
	d = 0;
	if ((rc = a->ncclGroupEnd()) != 0) {
		snprintf(why, sizeof why, "ncclGroupEnd: %s (%d)", sc_nccl_strerror(a, rc), rc);
		goto out;
	}
	for (d = 0; d < ndev; d++) {
		CUDA(a->cudaSetDevice(d));
		CUDA(a->cudaStreamSynchronize(streams[d]));
	}
	t1 = now_s();
	for (d = 0; d < ndev; d++) {
		CUDA(a->cudaSetDevice(d));
		CUDA(a->cudaMemcpy(host, buf[d], n * sizeof(float), SC_cudaMemcpyDeviceToHost));
		for (size_t i = 0; i < n; i++) {
			float want = (float)((size_t)ndev * ((i % 251) + 1) +
					     (size_t)ndev * (size_t)(ndev - 1) / 2);
			if (host[i] != want && !bad++)
				first_bad = i;
		}
		if (bad) {
			snprintf(why, sizeof why,
				 "device %d: %zu of %zu sums wrong, first at element %zu", d, bad,
				 n, first_bad);
			goto out;
		}
	}
	d = 0;
	ok = 1;
out:
	sc_fig_int(c, "devices", ndev);
	sc_fig_int(c, "floats", (long long)n);
	if (ok && t1 > t0)
		sc_fig_num(c, "seconds", t1 - t0);
	for (int i = 0; i < ndev; i++) {
		if (buf[i]) {
			a->cudaSetDevice(i);
			a->cudaFree(buf[i]);
		}
		if (streams[i])
			a->cudaStreamDestroy(streams[i]);
		if (comm_ok && comms[i])
			a->ncclCommDestroy(comms[i]);
	}
	free(host);
	if (ok)
		sc_check_set(c, SC_PASS,
			     "all-reduce (sum) of %zu floats across %d GPUs exact on every device",
			     n, ndev);
	else
		sc_check_set(c, SC_FAIL, "%s", why);
}
