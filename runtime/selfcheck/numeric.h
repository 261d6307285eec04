/* runtime/selfcheck/numeric.h - the CPU side of envpin-selfcheck: pattern
 * generators, double-precision reference GEMM and convolution, IEEE half
 * conversion and the error metric every GPU result is judged by.  Nothing
 * here touches CUDA, so all of it is unit-tested on machines without a GPU
 * (tests/unit/test_selfcheck.c). */
#ifndef SC_NUMERIC_H
#define SC_NUMERIC_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: a fixed, documented generator, so a pattern is the same on
 * every machine and in every release (results are compared across hosts). */
uint64_t sc_rng_next(uint64_t *state);

/* Fills buf with n pseudo-random bytes from seed. */
void sc_fill_bytes(unsigned char *buf, size_t n, uint64_t seed);

/* Fills x with n floats uniform in [-1, 1), each a multiple of 2^-23, so
 * every value is exact in FP32 and the reference sees the same inputs. */
void sc_fill_uniform(float *x, size_t n, uint64_t seed);

/* IEEE 754 binary16 <-> binary32, round to nearest even; NaN stays NaN,
 * overflow gives infinity, subnormals are kept. */
uint16_t sc_float_to_half(float f);
float sc_half_to_float(uint16_t h);

/* C = A * B in double, column-major as cuBLAS has it: A is m x k (lda = m),
 * B is k x n (ldb = k), C is m x n (ldc = m). */
void sc_gemm_ref(size_t m, size_t n, size_t k, const float *a, const float *b, double *c);

/* A 2-D convolution as cuDNN's CUDNN_CROSS_CORRELATION computes it (the
 * deep-learning convention: the filter is not flipped), stride 1, no
 * dilation, zero padding.  x is NCHW, w is KCRS, y is N K OH OW. */
struct sc_conv_shape {
	int n, c, h, w; /* input */
	int k, r, s;	/* filters: k outputs, r x s window */
	int pad_h, pad_w;
};
/* Output height and width; 0 if the shape is invalid. */
int sc_conv_out_h(const struct sc_conv_shape *sh);
int sc_conv_out_w(const struct sc_conv_shape *sh);
size_t sc_conv_x_len(const struct sc_conv_shape *sh);
size_t sc_conv_w_len(const struct sc_conv_shape *sh);
size_t sc_conv_y_len(const struct sc_conv_shape *sh);
void sc_conv_ref(const struct sc_conv_shape *sh, const float *x, const float *w, double *y);

/* The error metric.  rel = max_abs / mean_abs_ref: the largest absolute
 * error scaled by the mean magnitude of the reference, the definition
 * PyTorch's TF32 notes use (docs/selfcheck.md).  A NaN or infinity in either
 * array makes rel NaN and counts in n_nonfinite; an all-zero reference gives
 * rel 0 when the result is all zero too and +inf otherwise. */
struct sc_err {
	double max_abs;
	double mean_abs_ref;
	double rel;
	size_t n_nonfinite;
	size_t worst; /* index of max_abs */
};
void sc_compare(const float *got, const double *ref, size_t n, struct sc_err *e);

/* 1 if e is finite and rel <= tol (NaN never passes). */
int sc_err_within(const struct sc_err *e, double tol);

/* CUDA encodes versions as 1000*major + 10*minor (12040 = 12.4); cuDNN as
 * 1000*major + 100*minor + patch up to 8.x and 10000*major + 100*minor +
 * patch from 9.0.  Each writes "" for a version <= 0. */
void sc_format_cuda_version(int v, char *buf, size_t cap);
void sc_format_cudnn_version(long v, char *buf, size_t cap);
/* ncclGetVersion's code: 22705 -> "2.27.5" (NCCL >= 2.9: X*10000+Y*100+Z),
 * 2708 -> "2.7.8" (older: X*1000+Y*100+Z); "" when v <= 0. */
void sc_format_nccl_version(long v, char *buf, size_t cap);

#endif
