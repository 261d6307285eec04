/* runtime/selfcheck/api.h - the slice of the CUDA driver, CUDA runtime,
 * cuBLAS and cuDNN APIs the self-check uses, declared here rather than taken
 * from the toolkit headers, so the program builds with a plain C compiler
 * and runs against whichever CUDA 11, 12 or 13 libraries the image holds.
 * Every function used is part of the stable C ABI of those libraries in all
 * three major versions, and every enum value below is the ABI value (the
 * same in CUDA 11.0-13.x and cuDNN 8-9; docs/selfcheck.md lists them). */
#ifndef SC_API_H
#define SC_API_H

#include <limits.h>
#include <stddef.h>

#define SC_API_ERR_MAX 1024

/* CUDA runtime */
enum {
	SC_cudaMemcpyHostToDevice = 1,
	SC_cudaMemcpyDeviceToHost = 2,
	SC_cudaMemcpyDeviceToDevice = 3
};
/* cuBLAS: cublasOperation_t, cublasMath_t, libraryPropertyType */
enum { SC_CUBLAS_OP_N = 0 };
enum { SC_CUBLAS_DEFAULT_MATH = 0, SC_CUBLAS_PEDANTIC_MATH = 2, SC_CUBLAS_TF32_TENSOR_OP_MATH = 3 };
enum { SC_MAJOR_VERSION = 0, SC_MINOR_VERSION = 1, SC_PATCH_LEVEL = 2 };
/* cuDNN: cudnnTensorFormat_t, cudnnDataType_t, cudnnConvolutionMode_t,
 * cudnnConvolutionFwdAlgo_t, cudnnMathType_t.  Status codes changed
 * between cuDNN 8 and 9; only 0 (success) is relied on. */
enum { SC_CUDNN_TENSOR_NCHW = 0 };
enum { SC_CUDNN_DATA_FLOAT = 0, SC_CUDNN_DATA_HALF = 2 };
enum { SC_CUDNN_CROSS_CORRELATION = 1 };
enum { SC_CUDNN_FWD_ALGO_IMPLICIT_GEMM = 0, SC_CUDNN_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1 };
enum { SC_CUDNN_DEFAULT_MATH = 0, SC_CUDNN_TENSOR_OP_MATH = 1, SC_CUDNN_FMA_MATH = 3 };
/* NCCL: ncclDataType_t, ncclRedOp_t (ABI values, NCCL 2.x) */
enum { SC_ncclFloat32 = 7 };
enum { SC_ncclSum = 0 };
/* CUDA driver: CUdevice_attribute */
enum { SC_CU_DEVICE_ATTRIBUTE_CC_MAJOR = 75, SC_CU_DEVICE_ATTRIBUTE_CC_MINOR = 76 };

typedef void *sc_handle;

struct sc_api {
	/* libcuda.so.1 (the host driver, passed through) */
	void *cuda;
	char cuda_path[PATH_MAX];
	int (*cuInit)(unsigned);
	int (*cuDriverGetVersion)(int *);
	int (*cuDeviceGetCount)(int *);
	int (*cuDeviceGet)(int *, int);
	int (*cuDeviceGetName)(char *, int, int);
	int (*cuDeviceGetUuid)(unsigned char *, int); /* CUuuid is 16 bytes */
	int (*cuDeviceGetAttribute)(int *, int, int);
	int (*cuModuleLoadData)(sc_handle *, const void *);
	int (*cuModuleGetFunction)(sc_handle *, sc_handle, const char *);
	int (*cuModuleUnload)(sc_handle);
	int (*cuLaunchKernel)(sc_handle, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
			      unsigned, sc_handle, void **, void **);
	int (*cuGetErrorString)(int, const char **);

	/* libcudart */
	void *cudart;
	char cudart_path[PATH_MAX];
	int (*cudaRuntimeGetVersion)(int *);
	int (*cudaDriverGetVersion)(int *);
	int (*cudaGetDeviceCount)(int *);
	int (*cudaSetDevice)(int);
	int (*cudaMalloc)(void **, size_t);
	int (*cudaFree)(void *);
	int (*cudaMallocHost)(void **, size_t);
	int (*cudaFreeHost)(void *);
	int (*cudaMemcpy)(void *, const void *, size_t, int);
	int (*cudaMemset)(void *, int, size_t);
	int (*cudaDeviceSynchronize)(void);
	const char *(*cudaGetErrorString)(int);

	/* libcublas (+ libcublasLt, its dependency) */
	void *cublas;
	char cublas_path[PATH_MAX];
	int (*cublasCreate)(sc_handle *);
	int (*cublasDestroy)(sc_handle);
	int (*cublasSetMathMode)(sc_handle, int);
	int (*cublasGetProperty)(int, int *);
	int (*cublasSgemm)(sc_handle, int, int, int, int, int, const float *, const float *, int,
			   const float *, int, const float *, float *, int);

	/* libcudnn */
	void *cudnn;
	char cudnn_path[PATH_MAX];
	size_t (*cudnnGetVersion)(void);
	const char *(*cudnnGetErrorString)(int);
	int (*cudnnCreate)(sc_handle *);
	int (*cudnnDestroy)(sc_handle);
	int (*cudnnCreateTensorDescriptor)(sc_handle *);
	int (*cudnnDestroyTensorDescriptor)(sc_handle);
	int (*cudnnSetTensor4dDescriptor)(sc_handle, int, int, int, int, int, int);
	int (*cudnnCreateFilterDescriptor)(sc_handle *);
	int (*cudnnDestroyFilterDescriptor)(sc_handle);
	int (*cudnnSetFilter4dDescriptor)(sc_handle, int, int, int, int, int, int);
	int (*cudnnCreateConvolutionDescriptor)(sc_handle *);
	int (*cudnnDestroyConvolutionDescriptor)(sc_handle);
	int (*cudnnSetConvolution2dDescriptor)(sc_handle, int, int, int, int, int, int, int, int);
	int (*cudnnSetConvolutionMathType)(sc_handle, int);
	int (*cudnnGetConvolutionForwardWorkspaceSize)(sc_handle, sc_handle, sc_handle, sc_handle,
						       sc_handle, int, size_t *);
	int (*cudnnConvolutionForward)(sc_handle, const void *, sc_handle, const void *, sc_handle,
				       const void *, sc_handle, int, void *, size_t, const void *,
				       sc_handle, void *);

	/* libnccl (PyTorch's nvidia-nccl-cu12 wheel, or libnccl2); the stream
	 * functions come from libcudart and are filled by the same loader */
	void *nccl;
	char nccl_path[PATH_MAX];
	int (*ncclGetVersion)(int *);
	const char *(*ncclGetErrorString)(int);
	int (*ncclCommInitAll)(sc_handle *, int, const int *);
	int (*ncclCommDestroy)(sc_handle);
	int (*ncclGroupStart)(void);
	int (*ncclGroupEnd)(void);
	int (*ncclAllReduce)(const void *, void *, size_t, int, int, sc_handle, sc_handle);
	int (*cudaStreamCreate)(sc_handle *);
	int (*cudaStreamSynchronize)(sc_handle);
	int (*cudaStreamDestroy)(sc_handle);

	/* why a library or symbol is missing, for the report ("" if loaded) */
	char cuda_err[SC_API_ERR_MAX];
	char cudart_err[SC_API_ERR_MAX];
	char cublas_err[SC_API_ERR_MAX];
	char cudnn_err[SC_API_ERR_MAX];
	char nccl_err[SC_API_ERR_MAX];

	/* directories (':'-separated) a library was found in by the search
	 * rather than by the dynamic loader: the program re-executes itself
	 * with them on LD_LIBRARY_PATH, because the libraries' own
	 * dependencies (libcublasLt, cuDNN's sub-libraries, which cuDNN
	 * dlopens by name) must be found there too. */
	char found_dirs[4096];
};

/* Each loader fills its part of a and returns 0, or returns -1 with the
 * reason (every name and directory tried, the loader's message) in the
 * matching *_err.  A missing symbol is an error naming the symbol.
 * Search order for the image's libraries: each directory in
 * $ENVPIN_CUDA_LIB_PATH (':'-separated), then the dynamic loader's own
 * search (ld.so.cache, LD_LIBRARY_PATH), then /usr/local/cuda/lib64 and the
 * nvidia/<pkg>/lib directories of Python wheels (site-packages and
 * dist-packages under /usr/local/lib, /usr/lib, /opt/conda, $VIRTUAL_ENV).
 * Newer major versions are tried first in each place.  With
 * ENVPIN_CUDA_LIB_PATH_ONLY=1 only $ENVPIN_CUDA_LIB_PATH is searched. */
int sc_api_load_driver(struct sc_api *a);
int sc_api_load_cudart(struct sc_api *a);
int sc_api_load_cublas(struct sc_api *a);
int sc_api_load_cudnn(struct sc_api *a);
/* NCCL: the library (libnccl.so.2) and, when libcudart is loaded, the
 * stream functions the all-reduce needs; load after sc_api_load_cudart. */
int sc_api_load_nccl(struct sc_api *a);

/* The search directories above except the loader's own, in order; returns
 * how many were written to dirs (each PATH_MAX bytes). */
size_t sc_api_search_dirs(char (*dirs)[PATH_MAX], size_t max);

/* The error text of a CUDA runtime / driver status (never NULL). */
const char *sc_cuda_strerror(const struct sc_api *a, int rc);
const char *sc_cu_strerror(const struct sc_api *a, int rc);
const char *sc_cudnn_strerror(const struct sc_api *a, int rc);
const char *sc_nccl_strerror(const struct sc_api *a, int rc);

#endif
