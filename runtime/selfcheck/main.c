/* runtime/selfcheck/main.c - envpin-selfcheck: proves that the CUDA
 * runtime, cuBLAS and cuDNN inside an image work on the GPU passed through
 * to it (design.md section 8, docs/selfcheck.md).  Runs inside the
 * container; links nothing but libc and libm, loads CUDA with dlopen. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "checks.h"
#include "numeric.h"
#include "report.h"

#define EXIT_PASS 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

#ifndef SC_VERSION
#define SC_VERSION "0.1.0"
#endif

static const char usage[] =
    "usage: envpin-selfcheck [--json] [--expect-gpus N] [--require-gpu] [--gemm-size N]\n"
    "\n"
    "Checks that the CUDA runtime, cuBLAS and cuDNN of this image work on the\n"
    "GPUs passed through: device nodes, driver library, driver >= runtime,\n"
    "device count, a 32 MiB bit-exact memory round trip, FP32 GEMM (TF32 off\n"
    "and on) and cuDNN FP32/FP16 convolution against CPU references, two\n"
    "bitwise-identical deterministic runs, and a kernel JIT-compiled for each\n"
    "device's compute capability.  Without a GPU every GPU check is skipped.\n"
    "\n"
    "  --json            one JSON object instead of key=value lines\n"
    "  --expect-gpus N   the device count must be exactly N (default: at least 1)\n"
    "  --require-gpu     fail (exit 1) when no GPU is available\n"
    "  --gemm-size N     GEMM size (default 1024; 64..4096)\n"
    "  --help, --version\n"
    "\n"
    "Libraries are searched in $ENVPIN_CUDA_LIB_PATH, then by the dynamic loader,\n"
    "then in /usr/local/cuda and Python wheels (site-packages/nvidia/*/lib).\n"
    "Exit status: 0 every check passed or was skipped, 1 a check failed, 2 usage.\n";

struct opts {
	int json;
	int expect_gpus; /* -1: at least one */
	int require_gpu;
	int gemm_n;
};

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"expect-gpus", required_argument, NULL, 'e'},
	    {"require-gpu", no_argument, NULL, 'r'},
	    {"gemm-size", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	o->json = 0;
	o->expect_gpus = -1;
	o->require_gpu = 0;
	o->gemm_n = 1024;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			o->json = 1;
			break;
		case 'e':
			if (parse_int(optarg, 0, 1024, &o->expect_gpus) < 0) {
				fprintf(stderr, "envpin-selfcheck: invalid --expect-gpus '%s'\n",
					optarg);
				return -1;
			}
			break;
		case 'r':
			o->require_gpu = 1;
			break;
		case 'g':
			if (parse_int(optarg, 64, 4096, &o->gemm_n) < 0) {
				fprintf(stderr,
					"envpin-selfcheck: invalid --gemm-size '%s' (64..4096)\n",
					optarg);
				return -1;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			exit(fflush(stdout) || ferror(stdout) ? EXIT_FAILED : EXIT_PASS);
		case 'V':
			printf("envpin-selfcheck %s\n", SC_VERSION);
			exit(fflush(stdout) || ferror(stdout) ? EXIT_FAILED : EXIT_PASS);
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "envpin-selfcheck: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* ---- device nodes ---- */

struct nodes {
	int ctl, uvm, dxg; /* present */
	int n_gpu;	   /* /dev/nvidiaN */
	char problems[512];
	char list[512];
};

static void node_probe(const char *path, int *present, struct nodes *nd)
{
	struct stat st;
	size_t len;
	int fd;

	if (stat(path, &st) != 0)
		return;
	*present = 1;
	len = strlen(nd->list);
	snprintf(nd->list + len, sizeof nd->list - len, "%s%s", len ? "," : "", path);
	len = strlen(nd->problems);
	if (!S_ISCHR(st.st_mode)) {
		snprintf(nd->problems + len, sizeof nd->problems - len,
			 "%s'%s' is not a character device", len ? "; " : "", path);
		return;
	}
	/* EPERM with the node present is the device cgroup refusing it */
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		snprintf(nd->problems + len, sizeof nd->problems - len, "%scannot open '%s': %s%s",
			 len ? "; " : "", path, strerror(errno),
			 errno == EPERM ? " (device cgroup denies it)" : "");
	else
		close(fd);
}

static void scan_nodes(struct nodes *nd)
{
	glob_t g;

	memset(nd, 0, sizeof *nd);
	node_probe("/dev/nvidiactl", &nd->ctl, nd);
	node_probe("/dev/nvidia-uvm", &nd->uvm, nd);
	node_probe("/dev/dxg", &nd->dxg, nd); /* WSL2: replaces every other node */
	if (glob("/dev/nvidia[0-9]*", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			int p = 0;
			if (strspn(g.gl_pathv[i] + 11, "0123456789") != strlen(g.gl_pathv[i] + 11))
				continue;
			node_probe(g.gl_pathv[i], &p, nd);
			nd->n_gpu += p;
		}
		globfree(&g);
	}
}

static void check_nodes(const struct nodes *nd, struct sc_check *c)
{
	char miss[256] = "";

	sc_fig_str(c, "nodes", "%s", nd->list);
	sc_fig_int(c, "gpu_nodes", nd->n_gpu);
	if (!nd->ctl && !nd->n_gpu && !nd->dxg) {
		sc_check_set(c, SC_SKIP,
			     "no NVIDIA device nodes (/dev/nvidiactl, /dev/nvidia[0-9]*): no GPU "
			     "passed through");
		return;
	}
	if (nd->dxg && !nd->ctl) {
		if (*nd->problems)
			sc_check_set(c, SC_FAIL, "%s", nd->problems);
		else
			sc_check_set(c, SC_PASS, "WSL2 GPU node /dev/dxg");
		return;
	}
	if (!nd->ctl)
		strcat(miss, " /dev/nvidiactl");
	if (!nd->uvm)
		strcat(miss,
		       " /dev/nvidia-uvm (CUDA needs it: nvidia-modprobe -u -c=0 on the host)");
	if (!nd->n_gpu)
		strcat(miss, " /dev/nvidia[0-9]*");
	if (*miss || *nd->problems)
		sc_check_set(c, SC_FAIL, "%s%s%s%s", *miss ? "missing:" : "", miss,
			     *miss && *nd->problems ? "; " : "", nd->problems);
	else
		sc_check_set(c, SC_PASS, "%s present and openable", nd->list);
}

/* ---- driver ---- */

static void nvrm_version(char *buf, size_t cap)
{
	/* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  ..." */
	FILE *f = fopen("/proc/driver/nvidia/version", "re");
	char line[512], v[64];

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(line, sizeof line, f)) {
		char *p = strstr(line, "Kernel Module");
		if (p && sscanf(p + 13, " %63s", v) == 1)
			snprintf(buf, cap, "%s", v);
	}
	fclose(f);
}

static void check_driver(struct sc_api *a, int gpu, struct sc_check *c)
{
	char ver[64];
	void *h;

	nvrm_version(ver, sizeof ver);
	sc_fig_str(c, "nvrm_version", "%s", ver);
	if (a->cuda) {
		sc_fig_str(c, "libcuda", "%s", a->cuda_path);
		/* cuDNN 8 and other programs dlopen the unversioned name */
		h = dlopen("libcuda.so", RTLD_NOW | RTLD_NOLOAD);
		if (!h)
			h = dlopen("libcuda.so", RTLD_NOW);
		sc_fig_bool(c, "libcuda_so_link", h != NULL);
		h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
		sc_fig_bool(c, "libnvidia_ml", h != NULL);
	}
	if (!gpu) {
		sc_check_set(
		    c, SC_SKIP, "%s",
		    a->cuda
			? "no device nodes: libcuda.so.1 present but no GPU passed through"
			: "no GPU: libcuda.so.1 not found (the host driver is not passed through)");
		return;
	}
	if (!a->cuda)
		sc_check_set(c, SC_FAIL, "device nodes present but the driver library is not: %s",
			     a->cuda_err);
	else
		sc_check_set(c, SC_PASS, "libcuda.so.1 loaded from '%s'", a->cuda_path);
}

/* ---- libraries ---- */

static void check_libraries(struct sc_api *a, struct sc_report *r, int gpu, struct sc_check *c)
{
	char missing[3 * SC_API_ERR_MAX + 64] = "";
	int v = 0;

	if (a->cudart) {
		sc_fig_str(c, "cudart", "%s", a->cudart_path);
		if (a->cudaRuntimeGetVersion(&v) == 0)
			sc_format_cuda_version(v, r->runtime_version, sizeof r->runtime_version);
	} else {
		strcat(missing, a->cudart_err);
	}
	if (a->cublas) {
		int ma = 0, mi = 0, pa = 0;
		sc_fig_str(c, "cublas", "%s", a->cublas_path);
		if (a->cublasGetProperty(SC_MAJOR_VERSION, &ma) == 0 &&
		    a->cublasGetProperty(SC_MINOR_VERSION, &mi) == 0 &&
		    a->cublasGetProperty(SC_PATCH_LEVEL, &pa) == 0)
			snprintf(r->cublas_version, sizeof r->cublas_version, "%d.%d.%d", ma, mi,
				 pa);
	} else {
		strcat(strcat(missing, *missing ? "; " : ""), a->cublas_err);
	}
	if (a->cudnn) {
		sc_fig_str(c, "cudnn", "%s", a->cudnn_path);
		sc_format_cudnn_version((long)a->cudnnGetVersion(), r->cudnn_version,
					sizeof r->cudnn_version);
	} else {
		strcat(strcat(missing, *missing ? "; " : ""), a->cudnn_err);
	}
	if (!gpu)
		sc_check_set(c, SC_SKIP, "no GPU%s%s", *missing ? "; " : " (libraries present)",
			     missing);
	else if (*missing)
		sc_check_set(c, SC_FAIL, "%s", missing);
	else
		sc_check_set(c, SC_PASS, "CUDA runtime %s, cuBLAS %s, cuDNN %s", r->runtime_version,
			     r->cublas_version, r->cudnn_version);
}

/* NCCL's library and version are reported on any machine; the check
 * itself passes only where a GPU could use it (a GPU-less pass would
 * count as a GPU check passed). */
static void check_nccl(struct sc_api *a, struct sc_report *r, int gpu, struct sc_check *c)
{
	int v = 0;

	if (a->nccl) {
		sc_fig_str(c, "nccl", "%s", a->nccl_path);
		if (a->ncclGetVersion(&v) == 0)
			sc_format_nccl_version(v, r->nccl_version, sizeof r->nccl_version);
		sc_fig_str(c, "version", "%s", r->nccl_version);
		if (gpu)
			sc_check_set(c, SC_PASS, "NCCL %s loaded from '%s'", r->nccl_version,
				     a->nccl_path);
		else
			sc_check_set(c, SC_SKIP, "no GPU (NCCL %s loaded from '%s')",
				     r->nccl_version, a->nccl_path);
	} else {
		sc_check_set(c, SC_SKIP, "%s%s", gpu ? "" : "no GPU; ", a->nccl_err);
	}
}

/* Appends dir to the ':'-list buf unless present. */
static void path_add(char *buf, size_t cap, const char *dir)
{
	size_t dl = strlen(dir), len = strlen(buf);

	for (const char *p = buf; *p;) {
		size_t n = strcspn(p, ":");
		if (n == dl && strncmp(p, dir, n) == 0)
			return;
		p += n + (p[n] == ':');
	}
	if (len + dl + 2 <= cap)
		snprintf(buf + len, cap - len, "%s%s", len ? ":" : "", dir);
}

/* Re-executes with LD_LIBRARY_PATH naming the directories libraries were
 * found in by the search, once; returns only when that is not needed or
 * exec failed (then the run goes on, and a library that cannot find its
 * own dependencies is named by the check that needs it).  Besides those
 * directories: all of $ENVPIN_CUDA_LIB_PATH, and for a Python wheel every
 * sibling nvidia/<pkg>/lib, where cuDNN finds nvrtc and cuBLAS finds
 * cublasLt. */
static void maybe_reexec(const struct sc_api *a, char **argv)
{
	static char val[16384];
	const char *old = getenv("LD_LIBRARY_PATH"), *env = getenv("ENVPIN_CUDA_LIB_PATH");
	char dir[PATH_MAX], pat[PATH_MAX + 8];

	if (!*a->found_dirs || getenv("ENVPIN_SELFCHECK_REEXEC"))
		return;
	val[0] = '\0';
	for (const char *p = a->found_dirs; *p;) {
		size_t n = strcspn(p, ":");
		if (n < sizeof dir) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			path_add(val, sizeof val, dir);
			char *w = strstr(dir, "/nvidia/");
			glob_t g;
			if (w) {
				w[8] = '\0';
				snprintf(pat, sizeof pat, "%s*/lib", dir);
				if (glob(pat, GLOB_ONLYDIR, NULL, &g) == 0) {
					for (size_t i = 0; i < g.gl_pathc; i++)
						path_add(val, sizeof val, g.gl_pathv[i]);
					globfree(&g);
				}
			}
		}
		p += n + (p[n] == ':');
	}
	if (env && *env)
		path_add(val, sizeof val, env);
	if (old && *old)
		path_add(val, sizeof val, old);
	if (setenv("LD_LIBRARY_PATH", val, 1) == 0 &&
	    setenv("ENVPIN_SELFCHECK_REEXEC", "1", 1) == 0) {
		fflush(NULL);
		execv("/proc/self/exe", argv);
	}
}

static void skip_all(struct sc_check **cs, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++)
		if (cs[i])
			sc_check_set(cs[i], SC_SKIP, "%s", why);
}

static void enumerate_devices(struct sc_api *a, struct sc_report *r, char *why, size_t cap)
{
	int n = 0, rc;

	if ((rc = a->cuDeviceGetCount(&n)) != 0) {
		snprintf(why, cap, "cuDeviceGetCount: %s (%d)", sc_cu_strerror(a, rc), rc);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct sc_device *d = sc_device_add(r);
		unsigned char u[16];
		int dev = 0, ma = 0, mi = 0;

		if (!d || a->cuDeviceGet(&dev, i) != 0)
			break;
		if (a->cuDeviceGetName(d->name, (int)sizeof d->name, dev) != 0)
			d->name[0] = '\0';
		if (a->cuDeviceGetUuid(u, dev) == 0)
			snprintf(d->uuid, sizeof d->uuid,
				 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%"
				 "02x%02x",
				 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
				 u[11], u[12], u[13], u[14], u[15]);
		if (a->cuDeviceGetAttribute(&ma, SC_CU_DEVICE_ATTRIBUTE_CC_MAJOR, dev) == 0 &&
		    a->cuDeviceGetAttribute(&mi, SC_CU_DEVICE_ATTRIBUTE_CC_MINOR, dev) == 0)
			snprintf(d->cc, sizeof d->cc, "%d.%d", ma, mi);
	}
}

int main(int argc, char **argv)
{
	static struct sc_api api;
	static struct sc_report rep;
	struct opts o;
	struct nodes nd;
	char why[1024] = "";
	int gpu, rc, ndev = 0;

	if (parse_opts(argc, argv, &o) < 0)
		return EXIT_USAGE;
	/* cuBLAS reads it at handle creation; recommended for reproducible
	 * runs (research/gpu.md section 4.5) and harmless otherwise */
	setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);

	sc_report_init(&rep);
	struct sc_check *c_nodes = sc_check_add(&rep, "device_nodes");
	struct sc_check *c_drv = sc_check_add(&rep, "driver_library");
	struct sc_check *c_libs = sc_check_add(&rep, "libraries");
	struct sc_check *c_ver = sc_check_add(&rep, "driver_version");
	struct sc_check *c_count = sc_check_add(&rep, "device_count");
	struct sc_check *c_mem = sc_check_add(&rep, "memcpy_roundtrip");
	struct sc_check *c_g32 = sc_check_add(&rep, "gemm_fp32");
	struct sc_check *c_gtf = sc_check_add(&rep, "gemm_tf32");
	struct sc_check *c_c32 = sc_check_add(&rep, "conv_fp32");
	struct sc_check *c_c16 = sc_check_add(&rep, "conv_fp16");
	struct sc_check *c_det = sc_check_add(&rep, "determinism");
	struct sc_check *c_cc = sc_check_add(&rep, "compute_capability");
	struct sc_check *c_nccl = sc_check_add(&rep, "nccl_library");
	struct sc_check *c_ar = sc_check_add(&rep, "nccl_allreduce");
	struct sc_check *after_libs[] = {c_ver, c_count, c_mem, c_g32, c_gtf,
					 c_c32, c_c16,	 c_det, c_cc,  c_ar};
	struct sc_check *compute[] = {c_mem, c_g32, c_gtf, c_c32, c_c16, c_det, c_cc, c_ar};

	scan_nodes(&nd);
	gpu = nd.ctl || nd.n_gpu || nd.dxg;
	(void)sc_api_load_cudart(&api);
	(void)sc_api_load_cublas(&api);
	(void)sc_api_load_cudnn(&api);
	(void)sc_api_load_nccl(&api);
	maybe_reexec(&api, argv);
	(void)sc_api_load_driver(&api);

	check_nodes(&nd, c_nodes);
	check_driver(&api, gpu, c_drv);
	check_libraries(&api, &rep, gpu, c_libs);
	check_nccl(&api, &rep, gpu, c_nccl);

	if (!gpu || !api.cuda) {
		snprintf(why, sizeof why, "%s",
			 !gpu ? (api.cuda ? "no GPU: no NVIDIA device nodes"
					  : "no GPU: no NVIDIA device nodes and no libcuda.so.1")
			      : "the driver library libcuda.so.1 is not available");
		skip_all(after_libs, sizeof after_libs / sizeof after_libs[0], why);
		if (o.require_gpu)
			sc_check_set(c_count, SC_FAIL, "%s, and --require-gpu was given", why);
		goto print;
	}

	/* driver, its version and the devices it sees, before the runtime */
	int drv = 0, rt = 0;
	if ((rc = api.cuInit(0)) != 0) {
		snprintf(why, sizeof why, "cuInit: %s (%d)", sc_cu_strerror(&api, rc), rc);
		sc_check_set(c_count, SC_FAIL, "%s", why);
		skip_all(compute, sizeof compute / sizeof compute[0],
			 "the CUDA driver did not initialise");
		if (api.cuDriverGetVersion(&drv) == 0)
			sc_format_cuda_version(drv, rep.driver_version, sizeof rep.driver_version);
		sc_check_set(c_ver, SC_SKIP, "the CUDA driver did not initialise");
		goto print;
	}
	if (api.cuDriverGetVersion(&drv) == 0)
		sc_format_cuda_version(drv, rep.driver_version, sizeof rep.driver_version);
	enumerate_devices(&api, &rep, why, sizeof why);

	if (!api.cudart) {
		skip_all(after_libs, sizeof after_libs / sizeof after_libs[0],
			 "the CUDA runtime (libcudart) is not loaded");
		goto print;
	}
	api.cudaRuntimeGetVersion(&rt);
	if ((rc = api.cudaDriverGetVersion(&drv)) == 0 && drv > 0)
		sc_format_cuda_version(drv, rep.driver_version, sizeof rep.driver_version);
	sc_fig_int(c_ver, "driver", drv);
	sc_fig_int(c_ver, "runtime", rt);
	if (drv >= rt && rt > 0)
		sc_check_set(c_ver, SC_PASS, "driver supports CUDA %s >= runtime %s",
			     rep.driver_version, rep.runtime_version);
	else
		sc_check_set(
		    c_ver, SC_FAIL,
		    "driver supports CUDA %s < the image's runtime %s: update the host driver "
		    "(minor-version compatibility may run some code, but not newer PTX)",
		    rep.driver_version, rep.runtime_version);

	rc = api.cudaGetDeviceCount(&ndev);
	sc_fig_int(c_count, "count", rc == 0 ? ndev : 0);
	sc_fig_int(c_count, "expected", o.expect_gpus);
	sc_fig_int(c_count, "gpu_nodes", nd.n_gpu);
	if (rc != 0) {
		sc_check_set(c_count, SC_FAIL, "cudaGetDeviceCount: %s (%d)",
			     sc_cuda_strerror(&api, rc), rc);
		ndev = 0;
	} else if (ndev == 0) {
		sc_check_set(c_count, SC_FAIL, "no CUDA device visible (zero is not a pass)");
	} else if (o.expect_gpus >= 0 && ndev != o.expect_gpus) {
		sc_check_set(c_count, SC_FAIL, "%d CUDA device(s), expected %d", ndev,
			     o.expect_gpus);
	} else {
		sc_check_set(c_count, SC_PASS, "%d CUDA device(s)", ndev);
	}
	if (ndev <= 0) {
		skip_all(compute, sizeof compute / sizeof compute[0], "no CUDA device");
		goto print;
	}
	if (ndev > rep.n_devices)
		ndev = rep.n_devices; /* devices the driver named; the rest cannot be reported */

	sc_check_roundtrip(&api, ndev, c_mem);
	if (api.cublas) {
		sc_check_gemm(&api, ndev, o.gemm_n, c_g32, c_gtf, c_det);
	} else {
		sc_check_set(c_g32, SC_SKIP, "cuBLAS is not loaded");
		sc_check_set(c_gtf, SC_SKIP, "cuBLAS is not loaded");
	}
	if (api.cudnn) {
		sc_check_conv(&api, ndev, c_c32, c_c16, c_det);
	} else {
		sc_check_set(c_c32, SC_SKIP, "cuDNN is not loaded");
		sc_check_set(c_c16, SC_SKIP, "cuDNN is not loaded");
	}
	{
		int n = 0, bad = 0;
		for (int i = 0; i < c_det->n_figs; i++) {
			n++;
			bad |= strcmp(c_det->figs[i].str, "identical") != 0;
		}
		if (n == 0)
			sc_check_set(c_det, SC_SKIP, "neither cuBLAS nor cuDNN is loaded");
		else if (bad)
			sc_check_set(c_det, SC_FAIL,
				     "two runs of the same GEMM / convolution (IMPLICIT_GEMM) "
				     "differ or failed");
		else
			sc_check_set(c_det, SC_PASS,
				     "two runs bitwise identical (GEMM TF32 off; convolution "
				     "IMPLICIT_GEMM)");
	}
	sc_check_cc(&api, &rep, c_cc);
	if (!api.nccl)
		sc_check_set(c_ar, SC_SKIP, "NCCL is not in this image");
	else if (!api.cudaStreamCreate)
		sc_check_set(c_ar, SC_SKIP, "the CUDA runtime has no stream functions");
	else if (ndev < 2)
		sc_check_set(c_ar, SC_SKIP,
			     "needs 2 or more GPUs, %d visible (skipped, not passed)", ndev);
	else
		sc_check_nccl_allreduce(&api, ndev, c_ar);

print:
	rc = o.json ? sc_report_print_json(&rep, stdout) : sc_report_print_kv(&rep, stdout);
	if (rc < 0 || fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "envpin-selfcheck: cannot write the report: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	return sc_report_failed(&rep) ? EXIT_FAILED : EXIT_PASS;
}
