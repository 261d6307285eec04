/* lib/build.h - from manifest (+ lock) to an image in the store.
 *
 * One layer per manifest step, on top of the base's layers.  Each new layer
 * is written in one streaming pass (tree -> tar -> hash(diff_id) ->
 * compressor -> hash(digest) -> temp file in a store transaction), and
 * cached by a key of its inputs, so a no-op rebuild reads no file content.
 * Nothing reaches the store unless the whole build succeeds. */
#ifndef EP_BUILD_H
#define EP_BUILD_H

#include <jansson.h>
#include <stdint.h>

#include "compress.h"
#include "digest.h"
#include "error.h"
#include "manifest.h"
#include "oci.h"
#include "store.h"

/* Inputs served from disk instead of the network: a bundle's (lib/vendor.h).
 * The lock inputs and cache keys stay those of the original sources, so a
 * build from a bundle is checked against the bundle's lock as any other. */
struct ep_runstep_mount;

struct ep_offline {
	json_t *files;             /* {"sha256:HEX": path}: fetch items by their sha256 */
	const char *debian_repo;   /* a flat apt repository of the bundle's .debs (dir) */
	const char *sources_list;  /* file: what the image's /etc/apt/sources.list says */
	json_t *stage_sources;     /* {"stages.NAME.": file}: the same for a stage's debian base */
	const char *base_layout;   /* an OCI layout with the image base's blobs, and */
	const char *base_digest;   /* the base's manifest digest there (no registry) */
	json_t *stage_bases;       /* {"stages.NAME.": digest}: registry bases of stages there */
};

struct ep_build_opts {
	const char *manifest_path;
	const char *lock_path;  /* NULL: beside the manifest (ep_manifest_lock_path) */
	int locked;             /* refuse inputs that differ from the lock */
	int strict;             /* with locked: another envpin source is an error, not a warning */
	int no_lock_write;      /* do not write/update the lock */
	int compress_set;       /* compress.kind was chosen by the user */
	struct ep_compress_params compress;
	const char *out_dir;    /* also write an OCI layout here (NULL: no) */
	const char *tag;        /* tag in the store (NULL: the manifest's name) */
	const struct ep_offline *offline; /* NULL: inputs come from where the manifest says */
	/* verify --vary's clock (lib/vary.c): added to the sandbox of every run
	 * and apt step, after the step's own environment and mounts */
	char *const *step_env; /* "K=V" */
	size_t n_step_env;
	const struct ep_runstep_mount *step_mounts; /* lib/runstep.h; read-only */
	size_t n_step_mounts;
	ep_progress_fn progress;
	void *pctx;
};

struct ep_build_layer {
	ep_digest digest, diff_id;
	uint64_t size;
	int cached;       /* 1 if reused from the store */
	int from_base;    /* 1 if it is a layer of the base image */
	char what[64];    /* "base rootfs", "layers[0] copy", ... */
};

struct ep_build_result {
	ep_digest manifest_digest, config_digest;
	uint64_t manifest_size;
	struct ep_build_layer *layers;
	size_t n_layers;
	char *lock_path;  /* the lock written or checked (caller frees via release) */
	int lock_changed; /* the lock file was created or its content changed */
	json_t *compressor; /* the compressor used, as the lock describes it (owned) */
	char *warning;      /* --locked by another envpin version or source (owned), or NULL */
};
void ep_build_result_release(struct ep_build_result *r);

/* Builds the image.  Manifest and lock errors: EP_EINVAL (the store is not
 * touched); with opts->locked, an input that differs from the lock is
 * EP_EINVAL naming it, and a result that differs from the lock's recorded
 * image is EP_EMISMATCH naming both digests. */
int ep_build(struct ep_store *s, const struct ep_build_opts *o, struct ep_build_result *r,
	     struct ep_error *err);

/* Resolves inputs and writes the lock without building layers (the image
 * section of an existing lock is kept only if inputs, compressor and
 * source_date_epoch are unchanged).  r gets lock_path and lock_changed. */
int ep_lock(struct ep_store *s, const struct ep_build_opts *o, struct ep_build_result *r,
	    struct ep_error *err);

/* Writes image manifest_digest from the store into an OCI layout directory
 * (created if missing; an existing layout gains the image). */
int ep_write_layout(struct ep_store *s, const char *manifest_digest, const char *dir,
		    const char *tag, struct ep_error *err);

/* RFC 3339 UTC time of t ("2026-01-01T00:00:00Z"). */
void ep_rfc3339(int64_t t, char out[32]);

#endif
