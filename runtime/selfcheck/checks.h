/* runtime/selfcheck/checks.h - the checks that run on a GPU.  Each loops
 * over devices 0..ndev-1, records its figures (the worst device's error)
 * and sets pass/fail; it is only called when the libraries it needs are
 * loaded and at least one device exists. */
#ifndef SC_CHECKS_H
#define SC_CHECKS_H

#include "api.h"
#include "report.h"

/* Tolerances, reasons in docs/selfcheck.md. */
#define SC_TOL_GEMM_FP32 5e-5 /* ~1e-5 expected; TF32 gives ~1.4e-3 */
#define SC_TOL_GEMM_TF32 1e-2 /* sanity bound; ~1e-3 expected */
#define SC_TOL_CONV_FP32 1e-5
#define SC_TOL_CONV_FP16 1e-2
#define SC_ROUNDTRIP_BYTES ((size_t)32 << 20)

/* 32 MiB pattern: host -> device, device -> device, device -> host, memcmp. */
void sc_check_roundtrip(const struct sc_api *a, int ndev, struct sc_check *c);

/* n x n x n SGEMM with TF32 off (c32) and on (ctf); det gets the
 * gemm_identical figure from two strict runs. */
void sc_check_gemm(const struct sc_api *a, int ndev, int n, struct sc_check *c32,
		   struct sc_check *ctf, struct sc_check *det);

/* cuDNN forward convolution in FP32 (c32) and FP16 (c16); det gets the
 * conv_identical figure from two FP32 runs with the same algorithm. */
void sc_check_conv(const struct sc_api *a, int ndev, struct sc_check *c32, struct sc_check *c16,
		   struct sc_check *det);

/* NCCL all-reduce (float32 sum) of a buffer across all ndev devices in one
 * communicator; every device must hold the exact sum.  Only called with
 * ndev >= 2 and NCCL and the stream functions loaded. */
void sc_check_nccl_allreduce(const struct sc_api *a, int ndev, struct sc_check *c);

/* Compute capability: a kernel compiled at run time from PTX for each
 * device's own sm_XY (the driver's JIT) must load, run and write the right
 * values; cc figures per device. */
void sc_check_cc(const struct sc_api *a, struct sc_report *r, struct sc_check *c);

/* The PTX text of the probe kernel for compute capability major.minor
 * (PTX ISA version chosen for that target); 0, or -1 if buf is too small. */
int sc_probe_ptx(int major, int minor, char *buf, size_t cap);

#endif
