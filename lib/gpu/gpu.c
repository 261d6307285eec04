/* lib/gpu/gpu.c - NVIDIA discovery under a host root and the passthrough plan.
 * The algorithm is libnvidia-container's (research/gpu.md §1): device nodes
 * checked against their expected major:minor, driver libraries taken from the
 * host ld.so.cache only when their file name ends in the kernel module's
 * version, SONAME links read from the ELF, utility+compute capabilities. */
#include "gpu.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cdi.h"
#include "gpu/plan.h"
#include "ldcache.h"
#include "util.h"

#define NV_MAJOR 195
#define NV_CTL_MINOR 255
#define NV_MODESET_MINOR 254
#define MAX_GPUS 256
#define SMALL_FILE_MAX (64u << 10)
#define DEFAULT_LIB_DIR "/usr/lib/x86_64-linux-gnu"
#define LIB_OPTS "ro,nosuid,nodev,rbind,rprivate"
#define IPC_OPTS "nosuid,nodev,noexec,rbind,rprivate"
#define SHM_DEFAULT (1ull << 30)

/* libnvidia-container's utility_libs + compute_libs (src/nvc_info.c):
 * NVIDIA_DRIVER_CAPABILITIES=compute,utility, the toolkit's default. */
static const char *const driver_libs[] = {
    "libnvidia-ml.so",
    "libnvidia-cfg.so",
    "libnvidia-nscq.so",
    "libcuda.so",
    "libcudadebugger.so",
    "libnvidia-opencl.so",
    "libnvidia-gpucomp.so",
    "libnvidia-ptxjitcompiler.so",
    "libnvidia-fatbinaryloader.so",
    "libnvidia-allocator.so",
    "libnvidia-compiler.so",
    "libnvidia-pkcs11.so",
    "libnvidia-pkcs11-openssl3.so",
    "libnvidia-nvvm.so",
    "libnvidia-tileiras.so",
};
/* utility_bins + compute_bins, minus nv-fabricmanager (a host daemon). */
static const char *const driver_bins[] = {
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
};

/* Minimum Linux x86_64 driver per CUDA toolkit GA release (NVIDIA CUDA
 * Toolkit release notes, "CUDA Toolkit and Corresponding Driver Versions").
 * A driver supports the newest CUDA whose minimum it meets. */
static const struct {
	int major, minor;
	const char *driver;
} cuda_table[] = {
    {7, 0, "346.46"},	  {7, 5, "352.31"},	{8, 0, "367.48"},     {9, 0, "384.81"},
    {9, 1, "390.46"},	  {9, 2, "396.26"},	{10, 0, "410.48"},    {10, 1, "418.39"},
    {10, 2, "440.33"},	  {11, 0, "450.36.06"}, {11, 1, "455.23"},    {11, 2, "460.27.03"},
    {11, 3, "465.19.01"}, {11, 4, "470.42.01"}, {11, 5, "495.29.05"}, {11, 6, "510.39.01"},
    {11, 7, "515.43.04"}, {11, 8, "520.61.05"}, {12, 0, "525.60.13"}, {12, 1, "530.30.02"},
    {12, 2, "535.54.03"}, {12, 3, "545.23.06"}, {12, 4, "550.54.14"}, {12, 5, "555.42.02"},
    {12, 6, "560.28.03"}, {12, 8, "570.26"},	{12, 9, "575.51.03"}, {13, 0, "580.65.06"},
};

/* ---------- small helpers ---------- */

/* Compares dotted numeric versions ("550.54.15" vs "550.54.14"). */
static int vercmp(const char *a, const char *b)
{
	while (*a || *b) {
		unsigned long x = strtoul(a, (char **)&a, 10);
		unsigned long y = strtoul(b, (char **)&b, 10);

		if (x != y)
			return x < y ? -1 : 1;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
		if ((*a && !isdigit((unsigned char)*a)) || (*b && !isdigit((unsigned char)*b)))
			break;
	}
	return 0;
}

static int valid_version(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 32 || !isdigit((unsigned char)v[0]) || !strchr(v, '.'))
		return 0;
	return strspn(v, "0123456789.") == n;
}

int ep_gpu_driver_cuda(const char *driver_version, int *major, int *minor)
{
	int found = -1;

	if (!driver_version || !valid_version(driver_version))
		return -1;
	*major = *minor = 0;
	for (size_t i = 0; i < EP_ARRAY_SIZE(cuda_table); i++) {
		if (vercmp(driver_version, cuda_table[i].driver) >= 0) {
			*major = cuda_table[i].major;
			*minor = cuda_table[i].minor;
			found = (int)i;
		}
	}
	if (found < 0)
		return 1; /* older than CUDA 7.0: 0.0, exact enough to refuse */
	/* A driver branch newer than the newest row may support a newer CUDA. */
	if (found == (int)EP_ARRAY_SIZE(cuda_table) - 1 &&
	    strtoul(driver_version, NULL, 10) > strtoul(cuda_table[found].driver, NULL, 10))
		return 0;
	return 1;
}

/* The minimum driver for CUDA major.minor, or NULL if not in the table. */
static const char *min_driver_for(int major, int minor)
{
	for (size_t i = 0; i < EP_ARRAY_SIZE(cuda_table); i++)
		if (cuda_table[i].major > major ||
		    (cuda_table[i].major == major && cuda_table[i].minor >= minor))
			return cuda_table[i].driver;
	return NULL;
}

static int set_envf(struct ep_gpu_plan *p, struct ep_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_envf(struct ep_gpu_plan *p, struct ep_error *err, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);

	va_end(ap);
	if (r < 0)
		return ep_error_oom(err);
	r = ep_gpu_set_env(p, s, err);
	free(s);
	return r;
}

char *ep_gpu_host_root(struct ep_error *err)
{
	const char *r = getenv("ENVPIN_HOST_ROOT");

	if (!r || !*r)
		r = "/";
	if (r[0] != '/') {
		ep_error_set(err, EP_EINVAL, "ENVPIN_HOST_ROOT '%s' is not an absolute path", r);
		return NULL;
	}
	return ep_strdup(r, err);
}

const char *ep_gpu_lib_dir_for_rootfs(const char *rootfs)
{
	cleanup_free char *deb = NULL, *lib = NULL;
	struct stat st;

	if (!rootfs)
		return DEFAULT_LIB_DIR;
	deb = ep_path_join(rootfs, "etc/debian_version", NULL);
	if (!deb || stat(deb, &st) == 0)
		return DEFAULT_LIB_DIR;
	lib = ep_path_join(rootfs, DEFAULT_LIB_DIR, NULL);
	if (!lib || (stat(lib, &st) == 0 && S_ISDIR(st.st_mode)))
		return DEFAULT_LIB_DIR;
	return "/usr/lib64";
}

/* ---------- discovery ---------- */

/* Reads root+abs; NULL with errno-style error. */
static char *read_host(const char *root, const char *abs, struct ep_error *err)
{
	cleanup_free char *p = ep_gpu_hpath(root, abs, err);

	return p ? ep_read_file(p, SMALL_FILE_MAX, NULL, err) : NULL;
}

/* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue ..." or
 * "... UNIX Open Kernel Module for x86_64  550.54.15  Release Build ...":
 * the first dotted number after "Kernel Module". */
static int parse_driver_version(const char *text, char *out, size_t outsz)
{
	const char *p = strstr(text, "Kernel Module");
	const char *eol;

	if (!p)
		return -1;
	eol = strchr(p, '\n');
	if (!eol)
		eol = p + strlen(p);
	while (p < eol) {
		while (p < eol && isspace((unsigned char)*p))
			p++;
		size_t n = strcspn(p, " \t\n");

		if (n > 0 && n < outsz && p + n <= eol) {
			memcpy(out, p, n);
			out[n] = '\0';
			if (valid_version(out))
				return 0;
		}
		p += n;
	}
	return -1;
}

/* The major of a character device in proc/devices, or -1. */
static long proc_devices_major(const char *text, const char *name)
{
	const char *p = strstr(text, "Character devices:");
	const char *end = strstr(text, "Block devices:");

	if (!p)
		return -1;
	while ((p = strchr(p, '\n')) != NULL && (!end || p < end)) {
		p++;
		char *q;
		long major = strtol(p, &q, 10);

		if (q == p)
			continue;
		while (*q == ' ' || *q == '\t')
			q++;
		size_t n = strcspn(q, "\n");

		if (n == strlen(name) && strncmp(q, name, n) == 0)
			return major;
	}
	return -1;
}

/* Value of "Key: value" in an information file; caller frees. */
static char *info_field(const char *text, const char *key, struct ep_error *err)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != ':')
			continue;
		const char *v = p + kl + 1;

		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strcspn(v, "\n");

		while (n > 0 && isspace((unsigned char)v[n - 1]))
			n--;
		char *s = ep_malloc(n + 1, err);

		if (s) {
			memcpy(s, v, n);
			s[n] = '\0';
		}
		return s;
	}
	return ep_strdup("", err);
}

static int cmp_gpu(const void *a, const void *b)
{
	const struct ep_gpu_info *x = a, *y = b;

	return (x->minor > y->minor) - (x->minor < y->minor);
}

static void gpus_free(struct ep_gpu_info *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(g[i].uuid);
		free(g[i].name);
		free(g[i].bus_id);
	}
	free(g);
}

/* All GPUs from R/proc/driver/nvidia/gpus/<bus>/information, minor order;
 * "GPU Excluded: Yes" ones are left out, as NVML leaves them out. */
static int read_gpus(const char *root, struct ep_gpu_info **out, size_t *nout, struct ep_error *err)
{
	cleanup_free char *dir = ep_gpu_hpath(root, "/proc/driver/nvidia/gpus", err);
	struct ep_gpu_info *g = NULL;
	size_t n = 0;
	DIR *d;
	struct dirent *de;

	*out = NULL;
	*nout = 0;
	if (!dir)
		return -1;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return ep_error_errno(err, EP_EENV, errno, "cannot open '%s'", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *ipath = ep_asprintf(err, "%s/%s/information", dir, de->d_name);
		cleanup_free char *text =
		    ipath ? ep_read_file(ipath, SMALL_FILE_MAX, NULL, err) : NULL;

		if (!text)
			goto fail;
		cleanup_free char *minor = info_field(text, "Device Minor", err);
		cleanup_free char *excl = info_field(text, "GPU Excluded", err);

		if (!minor || !excl)
			goto fail;
		if (strncasecmp(excl, "yes", 3) == 0)
			continue;
		char *end;
		long m = strtol(minor, &end, 10);

		if (!*minor || *end || m < 0 || m >= NV_MODESET_MINOR) {
			ep_error_set(err, EP_EENV, "'%s': bad Device Minor '%s'", ipath, minor);
			goto fail;
		}
		if (n >= MAX_GPUS) {
			ep_error_set(err, EP_EENV, "'%s': more than %d GPUs", dir, MAX_GPUS);
			goto fail;
		}
		if (ep_gpu_push((void **)&g, &n, sizeof(*g), err) < 0)
			goto fail;
		g[n - 1].minor = (int)m;
		g[n - 1].uuid = info_field(text, "GPU UUID", err);
		g[n - 1].name = info_field(text, "Model", err);
		g[n - 1].bus_id = info_field(text, "Bus Location", err);
		if (!g[n - 1].uuid || !g[n - 1].name || !g[n - 1].bus_id)
			goto fail;
		if (!*g[n - 1].bus_id) {
			free(g[n - 1].bus_id);
			g[n - 1].bus_id = ep_strdup(de->d_name, err);
			if (!g[n - 1].bus_id)
				goto fail;
		}
	}
	closedir(d);
	qsort(g, n, sizeof(*g), cmp_gpu);
	for (size_t i = 0; i < n; i++) {
		g[i].index = (int)i;
		if (i > 0 && g[i].minor == g[i - 1].minor) {
			gpus_free(g, n);
			return ep_error_set(err, EP_EENV, "'%s': two GPUs with Device Minor %d",
					    dir, g[i].minor);
		}
	}
	*out = g;
	*nout = n;
	return 0;
fail:
	closedir(d);
	gpus_free(g, n);
	return -1;
}

/* NVIDIA_VISIBLE_DEVICES-style selection: "all", or indexes, GPU-UUIDs and
 * PCI bus ids separated by commas.  Fills sel (indexes into all, no
 * duplicates, in the order given). */
static int select_gpus(const struct ep_gpu_info *all, size_t n, const char *spec, size_t *sel,
		       size_t *nsel, struct ep_error *err)
{
	*nsel = 0;
	if (strcmp(spec, "all") == 0) {
		for (size_t i = 0; i < n; i++)
			sel[(*nsel)++] = i;
		return 0;
	}
	for (const char *p = spec; *p;) {
		size_t len = strcspn(p, ",");
		char item[128];
		size_t k = SIZE_MAX;

		if (len == 0 || len >= sizeof(item))
			return ep_error_set(err, EP_EINVAL, "invalid --gpus '%s'", spec);
		memcpy(item, p, len);
		item[len] = '\0';
		p += len;
		if (*p == ',')
			p++;
		if (strspn(item, "0123456789") == len) {
			unsigned long idx = strtoul(item, NULL, 10);

			if (len > 4 || idx >= n) {
				if (n == 0)
					return ep_error_set(
					    err, EP_EINVAL,
					    "GPU index %s does not exist: the host has no GPU",
					    item);
				return ep_error_set(
				    err, EP_EINVAL,
				    "GPU index %s does not exist: the host has %zu GPU%s (0-%zu)",
				    item, n, n == 1 ? "" : "s", n - 1);
			}
			k = idx;
		} else {
			for (size_t i = 0; i < n && k == SIZE_MAX; i++) {
				const char *bus = all[i].bus_id;

				if (strcasecmp(item, all[i].uuid) == 0 ||
				    strcasecmp(item, bus) == 0 ||
				    (strlen(bus) == 12 + len - 8 && len > 8 &&
				     strcasecmp(item, bus + 4) == 0)) /* "07:00.0" style */
					k = i;
			}
			if (k == SIZE_MAX)
				return ep_error_set(
				    err, EP_EINVAL,
				    "GPU '%s': unknown device (use an index, a GPU-UUID "
				    "or 'all')",
				    item);
		}
		int dup = 0;

		for (size_t j = 0; j < *nsel; j++)
			dup |= sel[j] == k;
		if (!dup)
			sel[(*nsel)++] = k;
	}
	if (*nsel == 0)
		return ep_error_set(err, EP_EINVAL, "invalid --gpus '%s'", spec);
	return 0;
}

/* Checks root+cpath is a char device major:minor and adds it.  missing_ok:
 * 1 = skip silently when absent.  expect_major < 0: take it from the node. */
static int add_node(struct ep_gpu_plan *p, const char *root, const char *cpath, long expect_major,
		    unsigned minor, int missing_ok, const char *hint, struct ep_error *err)
{
	cleanup_free char *h = ep_gpu_hpath(root, cpath, err);
	struct stat st;

	if (!h)
		return -1;
	if (stat(h, &st) < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		if (errno == ENOENT)
			return ep_error_set(err, EP_EENV, "missing device node '%s'%s%s", h,
					    hint ? ": " : "", hint ? hint : "");
		return ep_error_errno(err, EP_EENV, errno, "stat '%s'", h);
	}
	if (!S_ISCHR(st.st_mode))
		return ep_error_set(err, EP_EENV, "'%s' is not a character device", h);
	if ((expect_major >= 0 && major(st.st_rdev) != (unsigned long)expect_major) ||
	    minor(st.st_rdev) != minor)
		return ep_error_set(err, EP_EENV,
				    "invalid device node '%s': %u:%u, expected %ld:%u", h,
				    major(st.st_rdev), minor(st.st_rdev), expect_major, minor);
	return ep_gpu_add_device(p, cpath, h, 'c', major(st.st_rdev), minor(st.st_rdev),
				 st.st_mode & 0777, "rw", err);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Resolves root+value inside root (a link leaving root is not followed);
 * the result must be a regular file whose name ends in ".so.<ver>", else the
 * file "<prefix>.<ver>" in the same directory is tried (a cache written with
 * ldconfig -X, or a stale link).  Returns malloc'ed host path or NULL. */
static char *resolve_lib(const char *root, const char *rroot, const char *value, const char *prefix,
			 const char *ver)
{
	char *full = ep_gpu_hpath(root, value, NULL);
	char suffix[80];
	struct stat st;

	if (!full)
		return NULL;
	snprintf(suffix, sizeof(suffix), ".so.%s", ver);
	char *real = realpath(full, NULL);
	size_t rl = strlen(rroot);

	if (real &&
	    (strcmp(rroot, "/") == 0 || (strncmp(real, rroot, rl) == 0 && real[rl] == '/')) &&
	    ends_with(real, suffix) && stat(real, &st) == 0 && S_ISREG(st.st_mode)) {
		free(full);
		return real;
	}
	free(real);
	char *slash = strrchr(full, '/');

	*slash = '\0';
	char *alt = ep_asprintf(NULL, "%s/%s.%s", full, prefix, ver);

	free(full);
	if (alt && lstat(alt, &st) == 0 && S_ISREG(st.st_mode))
		return alt;
	free(alt);
	return NULL;
}

static int find_libs(struct ep_gpu_plan *p, const char *root, const char *ver, struct ep_error *err)
{
	cleanup_free char *cpath = ep_gpu_hpath(root, "/etc/ld.so.cache", err);
	struct ep_ldcache c = {0};
	uint32_t arch = ep_ldcache_native_arch();
	int have_cuda = 0, have_ml = 0;

	if (!cpath)
		return -1;
	if (ep_ldcache_load(cpath, &c, err) < 0)
		return ep_error_wrap(err, "cannot read the host's library cache (run ldconfig)");
	cleanup_free char *rroot = realpath(root, NULL);

	if (!rroot) {
		ep_ldcache_release(&c);
		return ep_error_errno(err, EP_EENV, errno, "host root '%s'", root);
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct ep_ldcache_entry *e = &c.entries[i];

		if ((e->flags & EP_LD_FLAG_TYPE_MASK) != EP_LD_FLAG_ELF_LIBC6 ||
		    (e->flags & EP_LD_FLAG_ARCH_MASK) != arch || e->value[0] != '/')
			continue;
		const char *key = base_name(e->key);
		const char *prefix = NULL;

		for (size_t j = 0; j < EP_ARRAY_SIZE(driver_libs) && !prefix; j++) {
			size_t n = strlen(driver_libs[j]);

			if (strncmp(key, driver_libs[j], n) == 0 && (key[n] == '.' || !key[n]))
				prefix = driver_libs[j];
		}
		if (!prefix)
			continue;
		cleanup_free char *host = resolve_lib(root, rroot, e->value, prefix, ver);

		if (!host)
			continue; /* another driver version's leftover: never mix */
		cleanup_free char *dest = ep_path_join(p->lib_dir, base_name(host), err);

		if (!dest ||
		    ep_gpu_add_mount(p, host, dest, "bind", LIB_OPTS, EP_GPU_MOUNT_LIB, err) < 0) {
			ep_ldcache_release(&c);
			return -1;
		}
		have_cuda |= strcmp(prefix, "libcuda.so") == 0;
		have_ml |= strcmp(prefix, "libnvidia-ml.so") == 0;
	}
	ep_ldcache_release(&c);
	if (!have_cuda || !have_ml)
		return ep_error_set(
		    err, EP_EENV,
		    "no %s.%s in '%s': the driver's user-space libraries are missing "
		    "or do not match the kernel module %s (install them, then run "
		    "ldconfig)",
		    have_cuda ? "libnvidia-ml.so" : "libcuda.so", ver, cpath, ver);
	return 0;
}

/* Adds SONAME links (and libcuda.so) for every library mount in p whose
 * file name ends in .so.<driver version>; reads the ELF on the host. */
static int add_lib_links(struct ep_gpu_plan *p, struct ep_error *err)
{
	char suffix[80];

	if (!p->driver_version)
		return 0;
	snprintf(suffix, sizeof(suffix), ".so.%s", p->driver_version);
	size_t n = p->n_mounts; /* the loop adds nothing to mounts */

	for (size_t i = 0; i < n; i++) {
		const struct ep_gpu_mount *m = &p->mounts[i];
		const char *base = base_name(m->path);

		if (strncmp(base, "lib", 3) != 0 || !ends_with(base, suffix))
			continue;
		cleanup_free char *soname = NULL;
		struct ep_error e2 = EP_ERROR_INIT;

		/* An unreadable ELF falls back to libNAME.so.1, as the toolkit's
		 * SONAME guess does; a bad SONAME must not name another dir. */
		if (ep_elf_soname(m->host_path, &soname, &e2) != 1 || soname[0] == '.') {
			free(soname);
			soname = ep_asprintf(err, "%.*s.so.1", (int)(strlen(base) - strlen(suffix)),
					     base);
			if (!soname)
				return -1;
		}
		size_t dl = (size_t)(base - m->path);
		cleanup_free char *dir = strndup(m->path, dl ? dl - 1 : 0);

		if (!dir)
			return ep_error_oom(err);
		if (strcmp(soname, base) != 0) {
			cleanup_free char *lp = ep_path_join(*dir ? dir : "/", soname, err);

			if (!lp || ep_gpu_add_link(p, lp, base, err) < 0)
				return -1;
		}
		/* "Many applications wrongly assume that libcuda.so exists"
		 * (libnvidia-container), cuDNN 8 among them. */
		if (strncmp(base, "libcuda.so.", 11) == 0) {
			cleanup_free char *lp = ep_path_join(*dir ? dir : "/", "libcuda.so", err);

			if (!lp || ep_gpu_add_link(p, lp, soname, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* The toolkit walks $PATH; a host root other than "/" has no PATH of its
 * own, so these dirs stand in for it (/usr/local/nvidia/bin: drivers
 * injected by a container platform, as on the H100 test host). */
static int find_bins(struct ep_gpu_plan *p, const char *root, struct ep_error *err)
{
	static const char *const dirs[] = {
	    "/usr/bin", "/usr/local/nvidia/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"};
	const char *path = strcmp(root, "/") == 0 ? getenv("PATH") : NULL;

	for (size_t i = 0; i < EP_ARRAY_SIZE(driver_bins); i++) {
		size_t nd = EP_ARRAY_SIZE(dirs);
		const char *pp = path;

		for (size_t d = 0; d < nd || (pp && *pp); d++) {
			char dir[PATH_MAX];

			if (d < nd) {
				snprintf(dir, sizeof(dir), "%s", dirs[d]);
			} else {
				size_t n = strcspn(pp, ":");

				snprintf(dir, sizeof(dir), "%.*s", (int)n, pp);
				pp += n + (pp[n] == ':');
				if (dir[0] != '/')
					continue;
			}
			cleanup_free char *rel = ep_asprintf(err, "%s/%s", dir, driver_bins[i]);
			cleanup_free char *h = rel ? ep_gpu_hpath(root, rel, err) : NULL;
			struct stat st;

			if (!h)
				return -1;
			if (stat(h, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
				continue;
			cleanup_free char *dest = ep_asprintf(err, "/usr/bin/%s", driver_bins[i]);

			if (!dest || ep_gpu_add_mount(p, h, dest, "bind", LIB_OPTS,
						      EP_GPU_MOUNT_BIN, err) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* GSP firmware: the *.bin files of /lib/firmware/nvidia/<ver>, same path inside. */
static int find_firmware(struct ep_gpu_plan *p, const char *root, const char *ver,
			 struct ep_error *err)
{
	static const char *const bases[] = {"/lib/firmware/nvidia", "/usr/lib/firmware/nvidia"};

	for (size_t b = 0; b < EP_ARRAY_SIZE(bases); b++) {
		cleanup_free char *rel = ep_asprintf(err, "%s/%s", bases[b], ver);
		cleanup_free char *dir = rel ? ep_gpu_hpath(root, rel, err) : NULL;
		char *names[256];
		size_t n = 0;
		int rc = 0;

		if (!dir)
			return -1;
		DIR *d = opendir(dir);

		if (!d)
			continue;
		struct dirent *de;

		while ((de = readdir(d)) != NULL && n < EP_ARRAY_SIZE(names)) {
			if (de->d_name[0] != '.' && ends_with(de->d_name, ".bin") &&
			    !(names[n] = strdup(de->d_name))) {
				rc = ep_error_oom(err);
				break;
			}
			if (de->d_name[0] != '.' && ends_with(de->d_name, ".bin"))
				n++;
		}
		closedir(d);
		qsort(names, n, sizeof(*names), cmp_str);
		for (size_t i = 0; i < n && rc == 0; i++) {
			cleanup_free char *h = ep_asprintf(err, "%s/%s", dir, names[i]);
			cleanup_free char *dest = ep_asprintf(err, "%s/%s", rel, names[i]);
			struct stat st;

			if (!h || !dest)
				rc = -1;
			else if (stat(h, &st) == 0 && S_ISREG(st.st_mode))
				rc = ep_gpu_add_mount(p, h, dest, "bind", LIB_OPTS,
						      EP_GPU_MOUNT_FIRMWARE, err);
		}
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		if (rc < 0)
			return -1;
		if (n > 0)
			break; /* merged /usr: the same files twice */
	}
	return 0;
}

static int find_ipc(struct ep_gpu_plan *p, const char *root, struct ep_error *err)
{
	static const struct {
		const char *host, *dest;
		int dir;
	} ipc[] = {
	    {"/run/nvidia-persistenced/socket", "/run/nvidia-persistenced/socket", 0},
	    {"/var/run/nvidia-persistenced/socket", "/run/nvidia-persistenced/socket", 0},
	    {"/tmp/nvidia-mps", "/tmp/nvidia-mps", 1},
	};

	for (size_t i = 0; i < EP_ARRAY_SIZE(ipc); i++) {
		cleanup_free char *h = ep_gpu_hpath(root, ipc[i].host, err);
		struct stat st;

		if (!h)
			return -1;
		if (stat(h, &st) < 0 || (ipc[i].dir ? !S_ISDIR(st.st_mode) : !S_ISSOCK(st.st_mode)))
			continue;
		int have = 0;

		for (size_t j = 0; j < p->n_mounts; j++)
			have |= strcmp(p->mounts[j].path, ipc[i].dest) == 0;
		if (!have && ep_gpu_add_mount(p, h, ipc[i].dest, "bind", IPC_OPTS, EP_GPU_MOUNT_IPC,
					      err) < 0)
			return -1;
	}
	return 0;
}

/* The toolkit's procfs trick: params with ModifyDeviceFiles 0, so the
 * driver inside does not try to create or chmod device nodes. */
static int proc_params(struct ep_gpu_plan *p, const char *root, struct ep_error *err)
{
	struct ep_error e2 = EP_ERROR_INIT;
	char *text = read_host(root, "/proc/driver/nvidia/params", &e2);
	char *m;

	if (!text)
		return 0; /* older drivers: nothing to patch */
	if ((m = strstr(text, "ModifyDeviceFiles: 1")) != NULL)
		m[sizeof("ModifyDeviceFiles: ") - 1] = '0';
	if (ep_gpu_push((void **)&p->files, &p->n_files, sizeof(*p->files), err) < 0) {
		free(text);
		return -1;
	}
	struct ep_gpu_file *f = &p->files[p->n_files - 1];

	f->content = text;
	f->len = strlen(text);
	f->mode = 0444;
	f->in_proc = 1;
	f->path = ep_strdup("/proc/driver/nvidia/params", err);
	return f->path ? 0 : -1;
}

/* min(1 GiB, RAM/2): PyTorch DataLoader workers pass batches through
 * /dev/shm and die with "Bus error" in Docker's 64 MB (pytorch#5040). */
static uint64_t default_shm(const char *root)
{
	uint64_t ram = 0;
	struct ep_error e2 = EP_ERROR_INIT;
	char *text = read_host(root, "/proc/meminfo", &e2);

	if (text) {
		const char *m = strstr(text, "MemTotal:");

		if (m)
			ram = strtoull(m + 9, NULL, 10) * 1024;
		free(text);
	}
	if (ram == 0) {
		struct sysinfo si;

		if (sysinfo(&si) == 0)
			ram = (uint64_t)si.totalram * si.mem_unit;
	}
	if (ram == 0 || ram / 2 >= SHM_DEFAULT)
		return SHM_DEFAULT;
	return ram / 2;
}

/* ---------- requirements ---------- */

/* NVML brand names as the DSL spells them, guessed from the model name
 * (no NVML here): good enough because NVIDIA's images list every brand. */
static void brand_of(const char *model, char *out, size_t outsz)
{
	char m[128];
	size_t i;

	for (i = 0; model && model[i] && i + 1 < sizeof(m); i++)
		m[i] = (char)tolower((unsigned char)model[i]);
	m[i] = '\0';
	const char *b = "unknown";

	if (strstr(m, "geforce rtx"))
		b = "geforcertx";
	else if (strstr(m, "geforce"))
		b = "geforce";
	else if (strstr(m, "titan rtx"))
		b = "titanrtx";
	else if (strstr(m, "titan"))
		b = "titan";
	else if (strstr(m, "quadro rtx"))
		b = "quadrortx";
	else if (strstr(m, "quadro"))
		b = "quadro";
	else if (strstr(m, "tesla"))
		b = "tesla";
	else if (strstr(m, "nvs"))
		b = "nvs";
	else if (strstr(m, "grid"))
		b = "grid";
	else if (strstr(m, "nvidia rtx"))
		b = "nvidiartx";
	else if (strncmp(m, "nvidia ", 7) == 0)
		b = "nvidia";
	snprintf(out, outsz, "%s", b);
}

static int op_holds(int c, const char *op)
{
	if (strcmp(op, "=") == 0 || strcmp(op, "==") == 0)
		return c == 0;
	if (strcmp(op, "!=") == 0)
		return c != 0;
	if (strcmp(op, "<") == 0)
		return c < 0;
	if (strcmp(op, "<=") == 0)
		return c <= 0;
	if (strcmp(op, ">") == 0)
		return c > 0;
	return c >= 0; /* ">=" */
}

static int eval_factor(const char *f, size_t len, const char *driver, int cmaj, int cmin,
		       int cuda_exact, const char *brand, struct ep_error *err)
{
	char buf[128], name[16], op[3] = "";
	size_t i = 0, o = 0;

	if (len >= sizeof(buf))
		return ep_error_set(err, EP_EINVAL, "requirement '%.*s' is too long", (int)len, f);
	memcpy(buf, f, len);
	buf[len] = '\0';
	while (isalpha((unsigned char)buf[i]) && i < sizeof(name) - 1) {
		name[i] = (char)tolower((unsigned char)buf[i]);
		i++;
	}
	name[i] = '\0';
	while (buf[i] && strchr("<>=!", buf[i]) && o < 2)
		op[o++] = buf[i++];
	op[o] = '\0';
	const char *val = buf + i;
	static const char *const ops[] = {"=", "==", "!=", "<", "<=", ">", ">="};
	int op_ok = 0;

	for (size_t k = 0; k < EP_ARRAY_SIZE(ops); k++)
		op_ok |= strcmp(op, ops[k]) == 0;
	if (!*name || !op_ok || !*val)
		return ep_error_set(err, EP_EINVAL, "invalid requirement '%s'", buf);
	if (strcmp(name, "cuda") == 0) {
		if (!valid_version(val) && strspn(val, "0123456789") != strlen(val))
			return ep_error_set(err, EP_EINVAL, "invalid requirement '%s'", buf);
		char have[32];

		snprintf(have, sizeof(have), "%d.%d", cmaj, cmin);
		int c = vercmp(have, val);

		/* A driver newer than our table: its CUDA is at least cmaj.cmin. */
		if (!cuda_exact && c < 0 && op[0] == '>')
			return 1;
		return op_holds(c, op);
	}
	if (strcmp(name, "driver") == 0) {
		if (!valid_version(val) && strspn(val, "0123456789") != strlen(val))
			return ep_error_set(err, EP_EINVAL, "invalid requirement '%s'", buf);
		return op_holds(vercmp(driver, val), op);
	}
	if (strcmp(name, "arch") == 0)
		return 1; /* compute capability needs NVML; documented */
	if (strcmp(name, "brand") == 0) {
		int c = strcasecmp(brand, val) != 0;

		if (strcmp(op, "=") == 0 || strcmp(op, "==") == 0)
			return !c;
		if (strcmp(op, "!=") == 0)
			return c;
		return ep_error_set(err, EP_EINVAL, "invalid requirement '%s'", buf);
	}
	return ep_error_set(err, EP_EINVAL, "invalid requirement '%s': unknown property '%s'", buf,
			    name);
}

static int require_eval(const char *expr, const char *driver, int cmaj, int cmin, int exact,
			const char *brand, struct ep_error *err)
{
	int any_term = 0;

	for (const char *p = expr; *p;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		size_t tl = strcspn(p, " \t");
		int all = 1;

		any_term = 1;
		for (const char *f = p; f < p + tl;) {
			size_t fl = strcspn(f, ",");

			if (f + fl > p + tl)
				fl = (size_t)(p + tl - f);
			if (fl == 0)
				return ep_error_set(err, EP_EINVAL, "invalid requirement '%s'",
						    expr);
			int r = eval_factor(f, fl, driver, cmaj, cmin, exact, brand, err);

			if (r < 0)
				return -1;
			all &= r;
			f += fl;
			if (f < p + tl && *f == ',')
				f++;
		}
		if (all)
			return 1;
		p += tl;
	}
	return any_term ? 0 : 1;
}

int ep_gpu_require_eval(const char *expr, const char *driver_version, int cuda_major,
			int cuda_minor, const char *brand, struct ep_error *err)
{
	return require_eval(expr, driver_version, cuda_major, cuda_minor, 1,
			    brand ? brand : "unknown", err);
}

static const char *env_get(char *const *env, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
			return env[i] + kl + 1;
	return NULL;
}

/* The image's NVIDIA_REQUIRE_* (or legacy CUDA_VERSION) against the driver,
 * per selected GPU (brand differs per GPU). */
static int check_requirements(const struct ep_gpu_plan *p, char *const *env, struct ep_error *err)
{
	const char *dis = env_get(env, "NVIDIA_DISABLE_REQUIRE");
	char legacy[64];
	int n_req = 0;

	if (dis && (strcasecmp(dis, "1") == 0 || strcasecmp(dis, "true") == 0 ||
		    strcasecmp(dis, "yes") == 0))
		return 0;
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; pass == 0 && env && env[i]; i++) {
			if (strncmp(env[i], "NVIDIA_REQUIRE_", 15) != 0 ||
			    strncmp(env[i], "NVIDIA_REQUIRE_JETPACK", 22) == 0 ||
			    !strchr(env[i], '='))
				continue;
			n_req++;
		}
		if (pass == 1 && n_req > 0)
			break;
		/* Pass 0 evaluates NVIDIA_REQUIRE_*; pass 1 the legacy rule. */
		for (size_t i = 0; env && env[i]; i++) {
			const char *expr, *var;
			char name[64];

			if (pass == 0) {
				if (strncmp(env[i], "NVIDIA_REQUIRE_", 15) != 0 ||
				    strncmp(env[i], "NVIDIA_REQUIRE_JETPACK", 22) == 0 ||
				    !strchr(env[i], '='))
					continue;
				expr = strchr(env[i], '=') + 1;
				snprintf(name, sizeof(name), "%.*s",
					 (int)(strchr(env[i], '=') - env[i]), env[i]);
				var = name;
			} else {
				const char *cv = env_get(env, "CUDA_VERSION");
				unsigned a, b;

				if (!cv || sscanf(cv, "%u.%u", &a, &b) != 2 || i > 0)
					break;
				snprintf(legacy, sizeof(legacy), "cuda>=%u.%u", a, b);
				expr = legacy;
				var = "CUDA_VERSION";
			}
			for (size_t g = 0; g < (p->n_gpus ? p->n_gpus : 1); g++) {
				char brand[32] = "unknown";

				if (p->n_gpus)
					brand_of(p->gpus[g].name, brand, sizeof(brand));
				int r =
				    require_eval(expr, p->driver_version, p->cuda_driver_major,
						 p->cuda_driver_minor, p->cuda_known, brand, err);

				if (r < 0)
					return ep_error_wrap(err, "image %s", var);
				if (r == 1)
					continue;
				/* The hint names the first cuda>= of the expression. */
				const char *c = strcasestr(expr, "cuda>=");
				unsigned a = 0, b = 0;
				const char *md = NULL;

				if (c && sscanf(c + 6, "%u.%u", &a, &b) >= 1)
					md = min_driver_for((int)a, (int)b);
				return ep_error_set(
				    err, EP_EENV,
				    "the driver %s supports CUDA %d.%d, the image needs '%s' (%s): "
				    "%s%s%suse an image for an older CUDA, or set "
				    "NVIDIA_DISABLE_REQUIRE=1",
				    p->driver_version, p->cuda_driver_major, p->cuda_driver_minor,
				    expr, var, md ? "install driver >= " : "", md ? md : "",
				    md ? ", " : "");
			}
			if (pass == 1)
				break;
		}
	}
	return 0;
}

/* ---------- the plan ---------- */

int ep_gpu_plan(const char *host_root, const char *gpus, char *const *image_env,
		struct ep_gpu_plan *plan, struct ep_error *err)
{
	struct ep_gpu_opts o = {.host_root = host_root, .gpus = gpus, .image_env = image_env};

	return ep_gpu_plan_opts(&o, plan, err);
}

/* The kernel module's version (p->driver_version) and the CUDA it supports. */
static int plan_driver(const char *root, struct ep_gpu_plan *p, struct ep_error *err)
{
	char ver[64];
	cleanup_free char *vpath = ep_gpu_hpath(root, "/proc/driver/nvidia/version", err);
	struct ep_error e2 = EP_ERROR_INIT;

	if (!vpath)
		return -1;
	cleanup_free char *vtext = ep_read_file(vpath, SMALL_FILE_MAX, NULL, &e2);

	if (!vtext) {
		if (e2.errnum == ENOENT)
			return ep_error_set(
			    err, EP_EENV,
			    "no NVIDIA driver found: '%s' is missing (is the nvidia "
			    "kernel module loaded?)",
			    vpath);
		return ep_error_set(err, EP_EENV, "no NVIDIA driver found: %s", e2.msg);
	}
	if (parse_driver_version(vtext, ver, sizeof(ver)) < 0)
		return ep_error_set(err, EP_EENV, "'%s': no driver version after 'Kernel Module'",
				    vpath);
	if (!(p->driver_version = ep_strdup(ver, err)))
		return -1;
	p->cuda_known = ep_gpu_driver_cuda(ver, &p->cuda_driver_major, &p->cuda_driver_minor) == 1;
	return 0;
}

/* The GPUs o->gpus selects (p->gpus) and NVIDIA_VISIBLE_DEVICES' value. */
static int plan_gpus(const struct ep_gpu_opts *o, const char *root, struct ep_gpu_plan *p,
		     struct ep_error *err)
{
	struct ep_gpu_info *all = NULL;
	size_t n_all = 0, sel[MAX_GPUS], n_sel = 0;

	if (read_gpus(root, &all, &n_all, err) < 0)
		return -1;
	if (n_all == 0) {
		gpus_free(all, n_all);
		return ep_error_set(
		    err, EP_EENV,
		    "the NVIDIA driver %s is loaded but lists no GPU under '%s/proc/"
		    "driver/nvidia/gpus'",
		    p->driver_version, strcmp(root, "/") ? root : "");
	}
	if (select_gpus(all, n_all, o->gpus, sel, &n_sel, err) < 0) {
		gpus_free(all, n_all);
		return -1;
	}
	p->gpus = calloc(n_sel, sizeof(*p->gpus));
	if (!p->gpus) {
		gpus_free(all, n_all);
		return ep_error_oom(err);
	}
	for (size_t i = 0; i < n_sel; i++) {
		p->gpus[i] = all[sel[i]];
		memset(&all[sel[i]], 0, sizeof(all[0]));
	}
	p->n_gpus = n_sel;
	gpus_free(all, n_all);
	if (strcmp(o->gpus, "all") == 0) {
		p->visible_devices = ep_strdup("all", err);
	} else {
		char buf[MAX_GPUS * 5] = ""; /* up to 256 indexes of 3 digits and a comma */
		size_t off = 0;

		for (size_t i = 0; i < n_sel; i++)
			off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%d", i ? "," : "",
						p->gpus[i].index);
		p->visible_devices = ep_strdup(buf, err);
	}
	return p->visible_devices ? 0 : -1;
}

/* The plan from the host's CDI spec for nvidia.com/gpu: 1 when there is
 * one (applied), 0 when there is none. */
static int plan_from_cdi(const struct ep_gpu_opts *o, const char *root, struct ep_gpu_plan *p,
			 struct ep_error *err)
{
	cleanup_free char *spec_path = NULL;
	json_t *spec = NULL, *devs, *d;
	const char *names[MAX_GPUS];
	char idx[MAX_GPUS][8];
	size_t k, nn = 0;
	int has_all = 0, r = ep_cdi_find(root, "nvidia.com/gpu", &spec_path, &spec, err);

	if (r <= 0)
		return r;
	devs = json_object_get(spec, "devices");
	json_array_foreach (devs, k, d)
		has_all |= json_is_string(json_object_get(d, "name")) &&
			   strcmp(json_string_value(json_object_get(d, "name")), "all") == 0;
	if (strcmp(o->gpus, "all") == 0 && has_all) {
		names[nn++] = "all";
	} else {
		for (size_t i = 0; i < p->n_gpus; i++) {
			snprintf(idx[i], sizeof(idx[i]), "%d", p->gpus[i].index);
			names[nn++] = idx[i];
		}
	}
	r = ep_cdi_apply(spec, spec_path, root, names, nn, p, err);
	json_decref(spec);
	if (r < 0 || add_lib_links(p, err) < 0)
		return -1;
	return 1;
}

/* The plan found on the host (libnvidia-container's way): device nodes,
 * libraries and their links, binaries, firmware, IPC, /proc files. */
static int plan_discover(const char *root, struct ep_gpu_plan *p, struct ep_error *err)
{
	struct ep_error e2 = EP_ERROR_INIT;
	cleanup_free char *devtext = read_host(root, "/proc/devices", &e2);
	long uvm_major = devtext ? proc_devices_major(devtext, "nvidia-uvm") : -1;

	/* Devices: control nodes, then one per selected GPU. */
	if (add_node(p, root, "/dev/nvidiactl", NV_MAJOR, NV_CTL_MINOR, 0,
		     "run 'nvidia-modprobe -c=255' (or nvidia-smi) on the host", err) < 0)
		return -1;
	if (devtext && uvm_major < 0)
		return ep_error_set(
		    err, EP_EENV,
		    "the nvidia-uvm kernel module is not loaded (no 'nvidia-uvm' in "
		    "'%s/proc/devices'): CUDA needs it; run 'nvidia-modprobe -u -c=0' "
		    "on the host",
		    strcmp(root, "/") ? root : "");
	if (add_node(p, root, "/dev/nvidia-uvm", uvm_major, 0, 0,
		     "CUDA needs it; run 'nvidia-modprobe -u -c=0' on the host", err) < 0)
		return -1;
	if (add_node(p, root, "/dev/nvidia-uvm-tools", uvm_major, 1, 1, NULL, err) < 0 ||
	    add_node(p, root, "/dev/nvidia-modeset", NV_MAJOR, NV_MODESET_MINOR, 1, NULL, err) < 0)
		return -1;
	for (size_t i = 0; i < p->n_gpus; i++) {
		char dev[32], hint[96];

		snprintf(dev, sizeof(dev), "/dev/nvidia%d", p->gpus[i].minor);
		snprintf(hint, sizeof(hint), "run 'nvidia-modprobe -c=%d' on the host",
			 p->gpus[i].minor);
		if (add_node(p, root, dev, NV_MAJOR, (unsigned)p->gpus[i].minor, 0, hint, err) < 0)
			return -1;
	}
	if (find_libs(p, root, p->driver_version, err) < 0 || add_lib_links(p, err) < 0 ||
	    find_bins(p, root, err) < 0 || find_firmware(p, root, p->driver_version, err) < 0 ||
	    find_ipc(p, root, err) < 0 || proc_params(p, root, err) < 0)
		return -1;
	p->ldconfig = 1;
	return set_envf(p, err, "NVIDIA_VISIBLE_DEVICES=%s", p->visible_devices);
}

static int plan_build(const struct ep_gpu_opts *o, const char *root, struct ep_gpu_plan *p,
		      struct ep_error *err)
{
	int cdi = 0;

	if (plan_driver(root, p, err) < 0 || plan_gpus(o, root, p, err) < 0)
		return -1;
	/* Before any mount: a refused image should say so first. */
	if (check_requirements(p, o->image_env, err) < 0)
		return -1;
	if (!o->no_cdi && (cdi = plan_from_cdi(o, root, p, err)) < 0)
		return -1;
	if (!cdi && plan_discover(root, p, err) < 0)
		return -1;
	/* A CDI spec's NVIDIA_VISIBLE_DEVICES=void stays: it stops a legacy
	 * nvidia hook in docker/podman from injecting a second time. */
	if (set_envf(p, err, "NVIDIA_DRIVER_CAPABILITIES=compute,utility") < 0)
		return -1;
	p->shm_size = o->shm_size ? o->shm_size : default_shm(root);
	return 0;
}

int ep_gpu_plan_opts(const struct ep_gpu_opts *o, struct ep_gpu_plan *plan, struct ep_error *err)
{
	cleanup_free char *root = NULL;

	memset(plan, 0, sizeof(*plan));
	root = o->host_root ? ep_strdup(o->host_root, err) : ep_gpu_host_root(err);
	if (!root)
		return -1;
	if (root[0] != '/')
		return ep_error_set(err, EP_EINVAL, "host root '%s' is not an absolute path", root);
	plan->host_root = ep_strdup(root, err);
	plan->lib_dir = ep_strdup(o->lib_dir ? o->lib_dir : DEFAULT_LIB_DIR, err);
	if (!plan->host_root || !plan->lib_dir) {
		ep_gpu_plan_release(plan);
		return -1;
	}
	if (ep_gpu_check_cpath(plan->lib_dir) < 0) {
		ep_error_set(err, EP_EINVAL, "library dir '%s' is not a clean absolute path",
			     plan->lib_dir);
		ep_gpu_plan_release(plan);
		return -1;
	}
	const char *g = o->gpus;

	if (!g || !*g || strcmp(g, "none") == 0 || strcmp(g, "void") == 0)
		return 0; /* no GPU: nothing to discover, nothing can fail */
	struct ep_gpu_opts o2 = *o;

	o2.gpus = g;
	if (plan_build(&o2, root, plan, err) < 0) {
		ep_gpu_plan_release(plan);
		return ep_error_wrap(err, "gpu");
	}
	return 0;
}

/* ---------- JSON ---------- */

json_t *ep_gpu_plan_to_json(const struct ep_gpu_plan *p)
{
	json_t *j = json_object(), *a;

	if (!j)
		return NULL;
	json_object_set_new(j, "host_root", json_string(p->host_root ? p->host_root : "/"));
	json_object_set_new(j, "driver_version",
			    p->driver_version ? json_string(p->driver_version) : json_null());
	if (p->driver_version) {
		char c[32];

		snprintf(c, sizeof(c), "%d.%d", p->cuda_driver_major, p->cuda_driver_minor);
		json_object_set_new(j, "cuda_version", json_string(c));
		json_object_set_new(j, "cuda_version_exact", json_boolean(p->cuda_known));
	}
	json_object_set_new(j, "from_cdi", json_boolean(p->from_cdi));
	if (p->cdi_spec)
		json_object_set_new(j, "cdi_spec", json_string(p->cdi_spec));
	if (p->visible_devices)
		json_object_set_new(j, "visible_devices", json_string(p->visible_devices));
	if (p->lib_dir)
		json_object_set_new(j, "lib_dir", json_string(p->lib_dir));
	json_object_set_new(j, "ldconfig", json_boolean(p->ldconfig));
	json_object_set_new(j, "shm_size", json_integer((json_int_t)p->shm_size));
	json_object_set_new(j, "gpus", a = json_array());
	for (size_t i = 0; i < p->n_gpus; i++)
		json_array_append_new(
		    a, json_pack("{s:i,s:i,s:s,s:s,s:s}", "index", p->gpus[i].index, "minor",
				 p->gpus[i].minor, "uuid", p->gpus[i].uuid ? p->gpus[i].uuid : "",
				 "name", p->gpus[i].name ? p->gpus[i].name : "", "bus_id",
				 p->gpus[i].bus_id ? p->gpus[i].bus_id : ""));
	json_object_set_new(j, "devices", a = json_array());
	for (size_t i = 0; i < p->n_devices; i++) {
		const struct ep_gpu_device *d = &p->devices[i];
		char t[2] = {d->type, 0}, mode[8];

		snprintf(mode, sizeof(mode), "0%o", d->file_mode);
		json_array_append_new(
		    a, json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "path", d->path, "host_path",
				 d->host_path, "type", t, "major", (json_int_t)d->major, "minor",
				 (json_int_t)d->minor, "file_mode", mode, "access", d->access));
	}
	static const char *const kinds[] = {"lib", "bin", "firmware", "ipc", "other"};

	json_object_set_new(j, "mounts", a = json_array());
	for (size_t i = 0; i < p->n_mounts; i++) {
		const struct ep_gpu_mount *m = &p->mounts[i];

		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:b,s:s}", "path", m->path,
						   "host_path", m->host_path, "type", m->type,
						   "options", m->options, "read_only", m->read_only,
						   "kind", kinds[m->kind]));
	}
	json_object_set_new(j, "links", a = json_array());
	for (size_t i = 0; i < p->n_links; i++)
		json_array_append_new(a, json_pack("{s:s,s:s}", "path", p->links[i].path, "target",
						   p->links[i].target));
	json_object_set_new(j, "files", a = json_array());
	for (size_t i = 0; i < p->n_files; i++)
		json_array_append_new(a, json_pack("{s:s,s:b,s:I}", "path", p->files[i].path,
						   "in_proc", p->files[i].in_proc, "size",
						   (json_int_t)p->files[i].len));
	json_object_set_new(j, "env", a = json_array());
	for (size_t i = 0; i < p->n_env; i++)
		json_array_append_new(a, json_string(p->env[i]));
	json_object_set_new(j, "hooks", a = json_array());
	for (size_t i = 0; i < p->n_hooks; i++) {
		json_t *args = json_array();

		for (size_t k = 0; k < p->hooks[i].n_args; k++)
			json_array_append_new(args, json_string(p->hooks[i].args[k]));
		json_array_append_new(a,
				      json_pack("{s:s,s:s,s:o}", "hook_name", p->hooks[i].hook_name,
						"path", p->hooks[i].path, "args", args));
	}
	json_object_set_new(j, "cdi_devices", a = json_array());
	for (size_t i = 0; i < p->n_cdi_devices; i++)
		json_array_append_new(a, json_string(p->cdi_devices[i]));
	return j;
}
