/* runtime/fitsinfer/torch_shim.h - the C interface of the libtorch shim
 * (torch_shim.cpp, built as envpin-fitsinfer-torch.so and dlopen'ed by
 * envpin-fitsinfer, so that a missing libtorch is reported by name rather
 * than as a loader failure, and --describe works without it).
 * Every function returns 0, or -1 with err filled (C++ exceptions never
 * cross this boundary).  device: TS_CPU or TS_CUDA.  tf32: 1 lets cuDNN and
 * cuBLAS use TF32 (torch's default for cuDNN), 0 turns it off (strict);
 * deterministic cuDNN algorithms and no benchmarking are always requested. */
#ifndef FI_TORCH_SHIM_H
#define FI_TORCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { TS_CPU = 0, TS_CUDA = 1 };

#define TS_ABI 1 /* bumped when these signatures change */

struct ts_info {
	int abi;                 /* TS_ABI of the shim */
	char torch_version[32];
	int cuda_available;
	int cuda_devices;
	long cudnn_version;      /* 0 when unknown / no cuDNN */
	int threads;             /* CPU intra-op threads */
};

struct ts_flags { /* read back after setting them */
	int tf32_cudnn, tf32_cublas, deterministic_cudnn, benchmark_cudnn;
};

struct ts_timing {
	double to_device_ms, forward_ms, to_host_ms;
};

int ts_info(struct ts_info *info, char *err, size_t errlen);

/* The detector: snr = conv2d(z, k) (1 -> 1 channel, ks x ks, zero padding),
 * pm = (snr == max_pool2d(snr, 3, stride 1, pad 1)) & (snr > thresh).
 * z, snr: nx*ny floats; pm: nx*ny bytes. */
int ts_detect(int device, int tf32, const float *z, int nx, int ny, const float *k, int ks, float thresh,
	      float *snr, uint8_t *pm, struct ts_flags *flags, struct ts_timing *tm, char *err, size_t errlen);

/* A 2-layer MLP with an input affine and an output affine (the CLASS_STAR
 * network): out = (sigmoid(W2 sigmoid(W1 (x*inscale+inbias) + b1) + b2) -
 * outbias) / outscale.  x: n x nin; W1: nh x nin; W2: 1 x nh; out: n. */
struct ts_mlp {
	int nin, nh;
	const float *inscale, *inbias, *w1, *b1, *w2, *b2;
	float outbias, outscale;
};
int ts_mlp_forward(int device, int tf32, const struct ts_mlp *m, const float *x, int n, float *out,
		   char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
