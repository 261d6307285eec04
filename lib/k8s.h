/* lib/k8s.h - Kubernetes manifests for an envpin image (docs/k8s.md): a Job
 * (or a bare Pod) pinned by digest, never a tag, with the GPU limit and
 * init containers that run the image's own self-check first, so that a pod
 * on a node with a broken driver fails before the job's work starts. */
#ifndef EP_K8S_H
#define EP_K8S_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

struct ep_k8s_opts {
	const char *image;	   /* REPO[:TAG]@sha256:HEX; a tag alone is EP_EINVAL */
	const char *name;	   /* DNS-1123 label; NULL: from the repository and digest */
	const char *k8s_namespace; /* NULL: none written */
	unsigned gpus;		   /* nvidia.com/gpu limit; 0: no GPU */
	int pod;		   /* a Pod instead of a batch/v1 Job */
	const char *runtime_class; /* runtimeClassName, or NULL */
	const char *pvc;	   /* workspace from this PersistentVolumeClaim, or NULL */
	const char *host_path;	   /* workspace from this node directory, or NULL */
	char *const *cmd;	   /* the container's args (the image's Entrypoint stays) */
	size_t n_cmd;
	const char *const *env; /* "K=V" */
	size_t n_env;
	int no_check; /* leave out the init containers */
};

/* The manifest as JSON (kubectl takes it as is; ep_k8s_yaml prints it as
 * YAML).  EP_EINVAL for a reference without a digest, a bad name, or both
 * --pvc and --host-path.  New reference. */
json_t *ep_k8s_manifest(const struct ep_k8s_opts *o, struct ep_error *err);

/* j as block-style YAML (strings double-quoted, as JSON writes them, which
 * YAML reads the same).  Caller frees. */
char *ep_k8s_yaml(const json_t *j, struct ep_error *err);

#endif
