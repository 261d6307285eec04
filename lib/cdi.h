/* lib/cdi.h - Container Device Interface specs (CDI 0.5-1.1, the files
 * `nvidia-ctk cdi generate` writes) turned into a GPU plan.  Specs are read
 * from HOST_ROOT/etc/cdi and HOST_ROOT/var/run/cdi (*.json and *.yaml, no
 * recursion; the dynamic dir and later names win, as in the CDI reference
 * cache).  Host paths inside a spec are host paths: with a host root other
 * than "/" they are taken under it, like every other host path envpin reads. */
#ifndef EP_CDI_H
#define EP_CDI_H

#include <jansson.h>

#include "error.h"
#include "gpu.h"

#define EP_CDI_MAX_BYTES (4u << 20)

/* Loads one spec file: JSON, or YAML (block and flow style, no aliases) when
 * the name ends in .yaml/.yml.  Returns a new reference or NULL. */
json_t *ep_cdi_load(const char *path, struct ep_error *err);

/* Finds the spec for `kind` (e.g. "nvidia.com/gpu") under host_root.
 * Returns 1 and sets *path (caller frees) and *spec (new reference), 0 when
 * there is none, -1 on a broken spec for that kind or an I/O error. */
int ep_cdi_find(const char *host_root, const char *kind, char **path, json_t **spec,
		struct ep_error *err);

/* Applies the spec's global containerEdits and those of each named device
 * (names[i], e.g. "0", "GPU-…", "all") to plan: devices (type/major/minor
 * stat'ed from hostPath when the spec leaves them out), mounts, env (later
 * wins), hooks.  An unknown device name is EP_EINVAL listing the names the
 * spec has.  Sets plan->from_cdi, cdi_spec, cdi_devices. */
int ep_cdi_apply(const json_t *spec, const char *spec_path, const char *host_root,
		 const char *const *names, size_t n_names, struct ep_gpu_plan *plan,
		 struct ep_error *err);

#endif
