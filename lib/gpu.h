/* lib/gpu.h - NVIDIA GPU discovery and the passthrough plan (issue 4,
 * design.md section 7).  Every host path is read under a host root
 * ($ENVPIN_HOST_ROOT, default "/"), so tests can present a fake driver tree.
 * The plan is data: the native engine turns it into OCI runtime spec edits,
 * the docker/podman engines into --device/-v/-e arguments. */
#ifndef EP_GPU_H
#define EP_GPU_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

/* What the plan holds and how an engine applies it is documented in
 * docs/gpu.md ("Applying a plan").  In short, for an OCI runtime spec:
 *   devices -> linux.devices[] {path,type,major,minor,fileMode} and
 *              linux.resources.devices[] {allow:true,type,major,minor,access}
 *   mounts  -> mounts[] {destination=path, source=host_path, type, options}
 *   links   -> symlinks created in the rootfs (upper layer) before start
 *   files   -> written into the bundle, then bind-mounted read-only at path;
 *              those with in_proc set need a createContainer hook (runc
 *              refuses spec mounts under /proc)
 *   env     -> appended to process.env, replacing same-named variables
 *   shm_size-> the size= option of the /dev/shm tmpfs
 *   hooks   -> hooks.<hook_name>[] (only from CDI specs)
 * Every string in the plan is owned by the plan (ep_gpu_plan_release). */

struct ep_gpu_device {
	char *path;	 /* path in the container, e.g. "/dev/nvidia0" */
	char *host_path; /* path on the host (under host root) */
	char type;	 /* 'c' (or 'b' from a CDI spec) */
	uint32_t major, minor;
	uint32_t file_mode; /* e.g. 0666 */
	char access[4];	    /* cgroup allow rule access: "rw" ("rwm" from CDI) */
};

enum ep_gpu_mount_kind {
	EP_GPU_MOUNT_LIB = 0,  /* a driver library (*.so.<driver version>) */
	EP_GPU_MOUNT_BIN,      /* nvidia-smi & co. */
	EP_GPU_MOUNT_FIRMWARE, /* GSP firmware */
	EP_GPU_MOUNT_IPC,      /* persistenced socket, MPS pipe directory */
	EP_GPU_MOUNT_OTHER,    /* anything a CDI spec asked for */
};

struct ep_gpu_mount {
	char *host_path; /* under host root */
	char *path;	 /* in the container */
	int read_only;
	/* Added for the engines (issue 4): */
	char *type;    /* "bind" (always, except CDI specs may say otherwise) */
	char *options; /* comma list for OCI mounts[].options,
			* e.g. "ro,nosuid,nodev,rbind,rprivate" */
	enum ep_gpu_mount_kind kind;
};

struct ep_gpu_link {  /* symlinks to create in the container (SONAME links) */
	char *path;   /* e.g. "/usr/lib/x86_64-linux-gnu/libcuda.so.1" */
	char *target; /* e.g. "libcuda.so.550.54.15" (relative, same dir) */
};

/* A small file the engine writes and bind-mounts read-only at path. */
struct ep_gpu_file {
	char *path;    /* in the container, e.g. "/proc/driver/nvidia/params" */
	char *content; /* NUL-terminated; len bytes */
	size_t len;
	uint32_t mode; /* 0444 */
	int in_proc;   /* path is under /proc: runc refuses OCI mounts there,
			* so apply it from a createContainer hook, or skip it
			* (see docs/gpu.md "/proc/driver/nvidia") */
};

/* An OCI hook from a CDI spec (containerEdits.hooks). */
struct ep_gpu_hook {
	char *hook_name; /* "createContainer", "prestart", ... */
	char *path;	 /* absolute, on the host */
	char **args;
	size_t n_args; /* argv including argv[0] */
	char **env;
	size_t n_env;
	int timeout; /* seconds, 0 = none */
};

struct ep_gpu_info {
	char *uuid; /* "GPU-..." if known */
	char *name; /* model name if known */
	int minor;  /* /dev/nvidiaN */
	char *bus_id;
	/* Added: */
	int index; /* position in minor order: what "0,1" selects */
};

struct ep_gpu_plan {
	char *host_root;
	char *driver_version;			  /* "550.54.15" */
	int cuda_driver_major, cuda_driver_minor; /* max CUDA the driver supports, if known */
	struct ep_gpu_info *gpus;
	size_t n_gpus; /* the selected GPUs */
	struct ep_gpu_device *devices;
	size_t n_devices;
	struct ep_gpu_mount *mounts;
	size_t n_mounts;
	struct ep_gpu_link *links;
	size_t n_links;
	char **env;
	size_t n_env;	   /* "NVIDIA_VISIBLE_DEVICES=0", ... */
	uint64_t shm_size; /* bytes for /dev/shm */
	int from_cdi;	   /* 1 if a CDI spec provided the edits */
	/* Added for the engines (issue 4): */
	char *lib_dir;	       /* container dir of the driver libraries */
	char *visible_devices; /* normalized selection: "all" or "0,1" (indexes) */
	struct ep_gpu_file *files;
	size_t n_files;
	struct ep_gpu_hook *hooks;
	size_t n_hooks; /* only from CDI specs */
	char *cdi_spec; /* path of the CDI spec used (host view), or NULL */
	char **cdi_devices;
	size_t n_cdi_devices; /* "nvidia.com/gpu=0": fully
			       * qualified CDI names for `podman/docker --device`
			       * when from_cdi (the engine has the same spec) */
	int ldconfig;	      /* 1: run ldconfig for lib_dir in the container
			       * (optional on Debian-like images: their loader
			       * searches the multiarch dir without a cache entry) */
	int cuda_known;	      /* 0: the driver is newer than envpin's table;
			       * cuda_driver_* is a lower bound */
};
void ep_gpu_plan_release(struct ep_gpu_plan *p);

/* The host root: $ENVPIN_HOST_ROOT or "/". Caller frees. */
char *ep_gpu_host_root(struct ep_error *err);

/* Builds the plan for `gpus` ("all", "none", "0,1", "GPU-uuid,...").
 * image_env is the image's Env (NULL-terminated "K=V" list, may be NULL):
 * NVIDIA_REQUIRE_CUDA / CUDA_VERSION there are checked against the driver
 * (too old: EP_EENV "the driver supports CUDA X.Y, the image needs Z").
 * No driver: EP_EENV with a clear message; "none" gives an empty plan. */
int ep_gpu_plan(const char *host_root, const char *gpus, char *const *image_env,
		struct ep_gpu_plan *plan, struct ep_error *err);

/* The same with every knob.  Zeroed fields take the defaults. */
struct ep_gpu_opts {
	const char *host_root; /* NULL: ep_gpu_host_root() */
	const char *gpus;      /* NULL, "", "none", "void": empty plan */
	char *const *image_env;
	const char *lib_dir; /* container lib dir; NULL: "/usr/lib/x86_64-linux-gnu"
			      * (see ep_gpu_lib_dir_for_rootfs) */
	uint64_t shm_size;   /* 0: min(1 GiB, host RAM / 2) */
	int no_cdi;	     /* 1: ignore CDI specs, discover everything */
};
int ep_gpu_plan_opts(const struct ep_gpu_opts *opts, struct ep_gpu_plan *plan,
		     struct ep_error *err);

/* The container lib dir for a rootfs, as libnvidia-container chooses it:
 * "/usr/lib/x86_64-linux-gnu" when ROOTFS/etc/debian_version exists or the
 * multiarch dir does, else "/usr/lib64".  Returns a static string. */
const char *ep_gpu_lib_dir_for_rootfs(const char *rootfs);

/* Maximum CUDA version a driver version supports, from NVIDIA's table of
 * minimum drivers per CUDA release.  Returns 1 when exact, 0 when the driver
 * is newer than the table (the result is then the newest known CUDA), -1
 * when the version does not parse. */
int ep_gpu_driver_cuda(const char *driver_version, int *major, int *minor);

/* Checks an NVIDIA_REQUIRE_* expression (libnvidia-container's DSL: terms
 * separated by spaces are OR-ed, factors separated by commas AND-ed;
 * properties cuda, driver, arch, brand; operators = != < <= > >=) against
 * the plan's driver.  arch is not known without NVML and counts as met.
 * 1: satisfied, 0: not, -1: syntax error (err). */
int ep_gpu_require_eval(const char *expr, const char *driver_version, int cuda_major,
			int cuda_minor, const char *brand, struct ep_error *err);

/* The plan as JSON (for --json output and debugging); a new reference or NULL. */
json_t *ep_gpu_plan_to_json(const struct ep_gpu_plan *p);

#endif
