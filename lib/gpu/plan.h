/* lib/gpu/plan.h - plan builders shared by lib/gpu/gpu.c and lib/gpu/cdi.c
 * (lib/gpu/plan.c).  Not an API: every function appends to a plan,
 * replacing an entry with the same container path (CDI's rule), and takes
 * copies of its strings.  ep_gpu_plan_release is in gpu.h. */
#ifndef EP_GPU_PLAN_H
#define EP_GPU_PLAN_H

#include "gpu.h"

/* root + abs ("/" root: abs itself).  Caller frees. */
char *ep_gpu_hpath(const char *root, const char *abs, struct ep_error *err);

int ep_gpu_add_device(struct ep_gpu_plan *p, const char *path, const char *host_path, char type,
		      uint32_t major, uint32_t minor, uint32_t mode, const char *access,
		      struct ep_error *err);
int ep_gpu_add_mount(struct ep_gpu_plan *p, const char *host_path, const char *path,
		     const char *type, const char *options, enum ep_gpu_mount_kind kind,
		     struct ep_error *err);
int ep_gpu_add_link(struct ep_gpu_plan *p, const char *path, const char *target,
		    struct ep_error *err);
/* Appends one zeroed element of size elem to *arr (n elements). */
int ep_gpu_push(void **arr, size_t *n, size_t elem, struct ep_error *err);
/* "K=V": replaces an existing K. */
int ep_gpu_set_env(struct ep_gpu_plan *p, const char *kv, struct ep_error *err);

/* A container path must be absolute, without "." or ".." components. */
int ep_gpu_check_cpath(const char *path);

#endif
