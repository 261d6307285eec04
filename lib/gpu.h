/* lib/gpu.h - NVIDIA GPU discovery and the passthrough plan (issue 4,
 * design.md section 7).  Every host path is read under a host root
 * ($ENVPIN_HOST_ROOT, default "/"), so tests can present a fake driver tree.
 * The plan is data: the native engine turns it into OCI runtime spec edits,
 * the docker/podman engines into --device/-v/-e arguments. */
#ifndef EP_GPU_H
#define EP_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct ep_gpu_device {
	char *path;        /* path in the container, e.g. "/dev/nvidia0" */
	char *host_path;   /* path on the host (under host root) */
	char type;         /* 'c' */
	uint32_t major, minor;
	uint32_t file_mode; /* e.g. 0666 */
};

struct ep_gpu_mount {
	char *host_path;   /* under host root */
	char *path;        /* in the container */
	int read_only;
};

struct ep_gpu_link {   /* symlinks to create in the container (SONAME links) */
	char *path;        /* e.g. "/usr/lib/x86_64-linux-gnu/libcuda.so.1" */
	char *target;      /* e.g. "libcuda.so.550.54.15" */
};

struct ep_gpu_info {
	char *uuid;        /* "GPU-..." if known */
	char *name;        /* model name if known */
	int minor;         /* /dev/nvidiaN */
	char *bus_id;
};

struct ep_gpu_plan {
	char *host_root;
	char *driver_version;     /* "550.54.15" */
	int cuda_driver_major, cuda_driver_minor; /* max CUDA the driver supports, if known */
	struct ep_gpu_info *gpus; size_t n_gpus;
	struct ep_gpu_device *devices; size_t n_devices;
	struct ep_gpu_mount *mounts; size_t n_mounts;
	struct ep_gpu_link *links; size_t n_links;
	char **env; size_t n_env;  /* "NVIDIA_VISIBLE_DEVICES=0", ... */
	uint64_t shm_size;         /* bytes for /dev/shm */
	int from_cdi;              /* 1 if a CDI spec provided the edits */
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

#endif
