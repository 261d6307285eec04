/* runtime/selfcheck/api.c - finds and loads the CUDA libraries with dlopen,
 * so that a missing library is a line in the report naming it, never the
 * dynamic loader refusing to start the program. */
#include "api.h"

#include <dlfcn.h>
#include <glob.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DIRS 64

static void appendf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, cap - len, fmt, ap);
	va_end(ap);
}

static size_t add_dir(char (*dirs)[PATH_MAX], size_t n, size_t max, const char *d)
{
	if (!*d || n >= max || strlen(d) >= PATH_MAX)
		return n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(dirs[i], d) == 0)
			return n;
	snprintf(dirs[n], PATH_MAX, "%s", d);
	return n + 1;
}

static size_t env_dirs(char (*dirs)[PATH_MAX], size_t n, size_t max)
{
	const char *env = getenv("ENVPIN_CUDA_LIB_PATH");
	char buf[PATH_MAX];

	while (env && *env) {
		size_t len = strcspn(env, ":");
		if (len < sizeof buf) {
			memcpy(buf, env, len);
			buf[len] = '\0';
			n = add_dir(dirs, n, max, buf);
		}
		env += len;
		if (*env == ':')
			env++;
	}
	return n;
}

static size_t glob_dirs(char (*dirs)[PATH_MAX], size_t n, size_t max, const char *pattern)
{
	glob_t g;

	if (glob(pattern, GLOB_ONLYDIR, NULL, &g) != 0)
		return n;
	for (size_t i = 0; i < g.gl_pathc; i++)
		n = add_dir(dirs, n, max, g.gl_pathv[i]);
	globfree(&g);
	return n;
}

static size_t fallback_dirs(char (*dirs)[PATH_MAX], size_t n, size_t max)
{
	/* where CUDA images and pip-installed PyTorch keep them; the wheels
	 * (nvidia-cublas-cu12, nvidia-cudnn-cu12, ...; nvidia/cu13 for CUDA 13)
	 * are not on the loader's path, torch finds them by RPATH. */
	static const char *const patterns[] = {
	    "/usr/local/cuda/lib64",
	    "/usr/local/cuda/lib",
	    "/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
	    "/usr/local/lib/python3*/site-packages/nvidia/*/lib",
	    "/usr/lib/python3/dist-packages/nvidia/*/lib",
	    "/usr/lib/python3*/site-packages/nvidia/*/lib",
	    "/opt/conda/lib/python3*/site-packages/nvidia/*/lib",
	};
	static const char *const env_patterns[][2] = {
	    {"VIRTUAL_ENV", "/lib/python3*/site-packages/nvidia/*/lib"},
	    {"CONDA_PREFIX", "/lib/python3*/site-packages/nvidia/*/lib"},
	    {"HOME", "/.local/lib/python3*/site-packages/nvidia/*/lib"},
	};
	char pat[PATH_MAX];

	for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
		n = glob_dirs(dirs, n, max, patterns[i]);
	for (size_t i = 0; i < sizeof env_patterns / sizeof env_patterns[0]; i++) {
		const char *v = getenv(env_patterns[i][0]);
		if (v && *v == '/' &&
		    snprintf(pat, sizeof pat, "%s%s", v, env_patterns[i][1]) < (int)sizeof pat)
			n = glob_dirs(dirs, n, max, pat);
	}
	return n;
}

size_t sc_api_search_dirs(char (*dirs)[PATH_MAX], size_t max)
{
	return fallback_dirs(dirs, env_dirs(dirs, 0, max), max);
}

static void loaded_path(void *h, const char *fallback, char *out)
{
	struct link_map *lm = NULL;

	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && *lm->l_name)
		snprintf(out, PATH_MAX, "%s", lm->l_name);
	else
		snprintf(out, PATH_MAX, "%s", fallback);
}

/* A dlerror text that means "not there" rather than "there but broken". */
static int is_not_found(const char *msg)
{
	return msg && strstr(msg, "cannot open shared object file") && strstr(msg, "No such file");
}

static void note_dir(struct sc_api *a, const char *dir)
{
	const char *p = a->found_dirs;
	size_t dl = strlen(dir);

	while (*p) {
		size_t len = strcspn(p, ":");
		if (len == dl && strncmp(p, dir, len) == 0)
			return;
		p += len;
		if (*p == ':')
			p++;
	}
	appendf(a->found_dirs, sizeof a->found_dirs, "%s%s", *a->found_dirs ? ":" : "", dir);
}

/* libcublas.so.N needs libcublasLt.so.N; a wheel's copy may lack an RPATH
 * that finds it, and a library already loaded by soname satisfies it. */
static void preload_sibling(const char *dir, const char *name)
{
	char p[PATH_MAX];

	if (strncmp(name, "libcublas.so", 12) == 0 &&
	    snprintf(p, sizeof p, "%s/libcublasLt%s", dir, name + 9) < (int)sizeof p &&
	    access(p, F_OK) == 0)
		(void)dlopen(p, RTLD_NOW | RTLD_GLOBAL);
}

static void *try_dir(struct sc_api *a, const char *dir, const char *name, char *path, char *err)
{
	char p[PATH_MAX];
	void *h;

	if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p || access(p, F_OK) != 0)
		return NULL;
	preload_sibling(dir, name);
	h = dlopen(p, RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		appendf(err, SC_API_ERR_MAX, "; '%s': %s", p, dlerror());
		return NULL;
	}
	loaded_path(h, p, path);
	note_dir(a, dir);
	return h;
}

static void *load_lib(struct sc_api *a, const char *const *names, char *path, char *err)
{
	static char dirs[MAX_DIRS][PATH_MAX];
	size_t n_env = env_dirs(dirs, 0, MAX_DIRS);
	size_t n = fallback_dirs(dirs, n_env, MAX_DIRS);
	void *h;

	err[0] = '\0';
	/* ENVPIN_CUDA_LIB_PATH_ONLY=1: those directories and nothing else, to
	 * certify exactly one set of libraries (and to test a missing one) */
	int only = getenv("ENVPIN_CUDA_LIB_PATH_ONLY") &&
		   strcmp(getenv("ENVPIN_CUDA_LIB_PATH_ONLY"), "1") == 0;
	if (only)
		n = n_env;
	for (size_t d = 0; d < n_env; d++)
		for (const char *const *nm = names; *nm; nm++)
			if ((h = try_dir(a, dirs[d], *nm, path, err)))
				return h;
	for (const char *const *nm = names; *nm && !only; nm++) {
		h = dlopen(*nm, RTLD_NOW | RTLD_GLOBAL);
		if (h) {
			loaded_path(h, *nm, path);
			return h;
		}
		const char *msg = dlerror();
		if (!is_not_found(msg))
			appendf(err, SC_API_ERR_MAX, "; %s", msg);
	}
	for (size_t d = n_env; d < n; d++)
		for (const char *const *nm = names; *nm; nm++)
			if ((h = try_dir(a, dirs[d], *nm, path, err)))
				return h;

	/* the reason: names first, then what went wrong with files found */
	char tail[SC_API_ERR_MAX];
	snprintf(tail, sizeof tail, "%s", err);
	err[0] = '\0';
	for (const char *const *nm = names; *nm; nm++)
		appendf(err, SC_API_ERR_MAX, "%s%s", nm == names ? "" : ", ", *nm);
	if (only)
		appendf(err, SC_API_ERR_MAX,
			": not found in $ENVPIN_CUDA_LIB_PATH (%zu director%s)", n,
			n == 1 ? "y" : "ies");
	else
		appendf(err, SC_API_ERR_MAX,
			": not found by the dynamic loader nor in %zu searched director%s", n,
			n == 1 ? "y" : "ies");
	appendf(err, SC_API_ERR_MAX, "%s", tail);
	return NULL;
}

#define SYM(h, field, sym, err)                                                                    \
	do {                                                                                       \
		*(void **)&a->field = dlsym((h), (sym));                                           \
		if (!a->field) {                                                                   \
			(err)[0] = '\0';                                                           \
			appendf((err), SC_API_ERR_MAX, "'%s' has no symbol '%s'", path, (sym));    \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static int load_driver(struct sc_api *a)
{
	const char *path = a->cuda_path;

	a->cuda_err[0] = '\0';
	/* only the soname the driver installs: this library must come from
	 * the host, never from a copy inside the image */
	a->cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
	if (!a->cuda) {
		snprintf(a->cuda_err, SC_API_ERR_MAX, "libcuda.so.1: %s", dlerror());
		return -1;
	}
	loaded_path(a->cuda, "libcuda.so.1", a->cuda_path);
	SYM(a->cuda, cuInit, "cuInit", a->cuda_err);
	SYM(a->cuda, cuDriverGetVersion, "cuDriverGetVersion", a->cuda_err);
	SYM(a->cuda, cuDeviceGetCount, "cuDeviceGetCount", a->cuda_err);
	SYM(a->cuda, cuDeviceGet, "cuDeviceGet", a->cuda_err);
	SYM(a->cuda, cuDeviceGetName, "cuDeviceGetName", a->cuda_err);
	SYM(a->cuda, cuDeviceGetAttribute, "cuDeviceGetAttribute", a->cuda_err);
	SYM(a->cuda, cuModuleLoadData, "cuModuleLoadData", a->cuda_err);
	SYM(a->cuda, cuModuleGetFunction, "cuModuleGetFunction", a->cuda_err);
	SYM(a->cuda, cuModuleUnload, "cuModuleUnload", a->cuda_err);
	SYM(a->cuda, cuLaunchKernel, "cuLaunchKernel", a->cuda_err);
	SYM(a->cuda, cuGetErrorString, "cuGetErrorString", a->cuda_err);
	/* _v2 (11.4+) and the original have the same signature */
	*(void **)&a->cuDeviceGetUuid = dlsym(a->cuda, "cuDeviceGetUuid_v2");
	if (!a->cuDeviceGetUuid)
		SYM(a->cuda, cuDeviceGetUuid, "cuDeviceGetUuid", a->cuda_err);
	return 0;
}

static int load_cudart(struct sc_api *a)
{
	static const char *const names[] = {"libcudart.so.13", "libcudart.so.12",
					    "libcudart.so.11.0", "libcudart.so", NULL};
	const char *path = a->cudart_path;

	a->cudart = load_lib(a, names, a->cudart_path, a->cudart_err);
	if (!a->cudart)
		return -1;
	SYM(a->cudart, cudaRuntimeGetVersion, "cudaRuntimeGetVersion", a->cudart_err);
	SYM(a->cudart, cudaDriverGetVersion, "cudaDriverGetVersion", a->cudart_err);
	SYM(a->cudart, cudaGetDeviceCount, "cudaGetDeviceCount", a->cudart_err);
	SYM(a->cudart, cudaSetDevice, "cudaSetDevice", a->cudart_err);
	SYM(a->cudart, cudaMalloc, "cudaMalloc", a->cudart_err);
	SYM(a->cudart, cudaFree, "cudaFree", a->cudart_err);
	SYM(a->cudart, cudaMallocHost, "cudaMallocHost", a->cudart_err);
	SYM(a->cudart, cudaFreeHost, "cudaFreeHost", a->cudart_err);
	SYM(a->cudart, cudaMemcpy, "cudaMemcpy", a->cudart_err);
	SYM(a->cudart, cudaMemset, "cudaMemset", a->cudart_err);
	SYM(a->cudart, cudaDeviceSynchronize, "cudaDeviceSynchronize", a->cudart_err);
	SYM(a->cudart, cudaGetErrorString, "cudaGetErrorString", a->cudart_err);
	return 0;
}

static int load_cublas(struct sc_api *a)
{
	static const char *const names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
					    "libcublas.so", NULL};
	const char *path = a->cublas_path;

	a->cublas = load_lib(a, names, a->cublas_path, a->cublas_err);
	if (!a->cublas)
		return -1;
	SYM(a->cublas, cublasCreate, "cublasCreate_v2", a->cublas_err);
	SYM(a->cublas, cublasDestroy, "cublasDestroy_v2", a->cublas_err);
	SYM(a->cublas, cublasSetMathMode, "cublasSetMathMode", a->cublas_err);
	SYM(a->cublas, cublasGetProperty, "cublasGetProperty", a->cublas_err);
	SYM(a->cublas, cublasSgemm, "cublasSgemm_v2", a->cublas_err);
	return 0;
}

static int load_cudnn(struct sc_api *a)
{
	static const char *const names[] = {"libcudnn.so.9", "libcudnn.so.8", "libcudnn.so", NULL};
	const char *path = a->cudnn_path;

	a->cudnn = load_lib(a, names, a->cudnn_path, a->cudnn_err);
	if (!a->cudnn)
		return -1;
	SYM(a->cudnn, cudnnGetVersion, "cudnnGetVersion", a->cudnn_err);
	SYM(a->cudnn, cudnnGetErrorString, "cudnnGetErrorString", a->cudnn_err);
	SYM(a->cudnn, cudnnCreate, "cudnnCreate", a->cudnn_err);
	SYM(a->cudnn, cudnnDestroy, "cudnnDestroy", a->cudnn_err);
	SYM(a->cudnn, cudnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor", a->cudnn_err);
	SYM(a->cudnn, cudnnDestroyTensorDescriptor, "cudnnDestroyTensorDescriptor", a->cudnn_err);
	SYM(a->cudnn, cudnnSetTensor4dDescriptor, "cudnnSetTensor4dDescriptor", a->cudnn_err);
	SYM(a->cudnn, cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor", a->cudnn_err);
	SYM(a->cudnn, cudnnDestroyFilterDescriptor, "cudnnDestroyFilterDescriptor", a->cudnn_err);
	SYM(a->cudnn, cudnnSetFilter4dDescriptor, "cudnnSetFilter4dDescriptor", a->cudnn_err);
	SYM(a->cudnn, cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor",
	    a->cudnn_err);
	SYM(a->cudnn, cudnnDestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor",
	    a->cudnn_err);
	SYM(a->cudnn, cudnnSetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor",
	    a->cudnn_err);
	SYM(a->cudnn, cudnnSetConvolutionMathType, "cudnnSetConvolutionMathType", a->cudnn_err);
	SYM(a->cudnn, cudnnGetConvolutionForwardWorkspaceSize,
	    "cudnnGetConvolutionForwardWorkspaceSize", a->cudnn_err);
	SYM(a->cudnn, cudnnConvolutionForward, "cudnnConvolutionForward", a->cudnn_err);
	return 0;
}

static int load_nccl(struct sc_api *a)
{
	static const char *const names[] = {"libnccl.so.2", "libnccl.so", NULL};
	const char *path = a->nccl_path;

	a->nccl = load_lib(a, names, a->nccl_path, a->nccl_err);
	if (!a->nccl)
		return -1;
	SYM(a->nccl, ncclGetVersion, "ncclGetVersion", a->nccl_err);
	SYM(a->nccl, ncclGetErrorString, "ncclGetErrorString", a->nccl_err);
	SYM(a->nccl, ncclCommInitAll, "ncclCommInitAll", a->nccl_err);
	SYM(a->nccl, ncclCommDestroy, "ncclCommDestroy", a->nccl_err);
	SYM(a->nccl, ncclGroupStart, "ncclGroupStart", a->nccl_err);
	SYM(a->nccl, ncclGroupEnd, "ncclGroupEnd", a->nccl_err);
	SYM(a->nccl, ncclAllReduce, "ncclAllReduce", a->nccl_err);
	if (a->cudart) {
		path = a->cudart_path;
		SYM(a->cudart, cudaStreamCreate, "cudaStreamCreate", a->nccl_err);
		SYM(a->cudart, cudaStreamSynchronize, "cudaStreamSynchronize", a->nccl_err);
		SYM(a->cudart, cudaStreamDestroy, "cudaStreamDestroy", a->nccl_err);
	}
	return 0;
}

/* A library without the symbols is as good as missing: unload it so no
 * check calls through a half-filled table. */
#define LOADER(name, field)                                                                        \
	int sc_api_load_##name(struct sc_api *a)                                                   \
	{                                                                                          \
		if (load_##name(a) == 0)                                                           \
			return 0;                                                                  \
		if (a->field) {                                                                    \
			dlclose(a->field);                                                         \
			a->field = NULL;                                                           \
		}                                                                                  \
		return -1;                                                                         \
	}
LOADER(driver, cuda)
LOADER(cudart, cudart)
LOADER(cublas, cublas)
LOADER(cudnn, cudnn)
LOADER(nccl, nccl)

const char *sc_cuda_strerror(const struct sc_api *a, int rc)
{
	const char *s = a->cudaGetErrorString ? a->cudaGetErrorString(rc) : NULL;
	return s ? s : "unknown error";
}

const char *sc_cu_strerror(const struct sc_api *a, int rc)
{
	const char *s = NULL;

	if (!a->cuGetErrorString || a->cuGetErrorString(rc, &s) != 0 || !s)
		return "unknown error";
	return s;
}

const char *sc_cudnn_strerror(const struct sc_api *a, int rc)
{
	const char *s = a->cudnnGetErrorString ? a->cudnnGetErrorString(rc) : NULL;
	return s ? s : "unknown error";
}

const char *sc_nccl_strerror(const struct sc_api *a, int rc)
{
	const char *s = a->ncclGetErrorString ? a->ncclGetErrorString(rc) : NULL;
	return s ? s : "unknown error";
}
