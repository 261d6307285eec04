/* lib/oci.h - OCI/Docker image documents: reading images from OCI layouts
 * (the store is one), OCI archives and `docker save` archives; verifying
 * every blob and diff_id; exporting archives that docker/podman/skopeo load.
 *
 * Media types: OCI image manifest/index and Docker schema 2 manifest/list
 * are read; envpin writes OCI. */
#ifndef EP_OCI_H
#define EP_OCI_H

#include <jansson.h>
#include <stdint.h>
#include <stddef.h>

#include "digest.h"
#include "error.h"

#define EP_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define EP_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define EP_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define EP_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define EP_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define EP_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* Caps on documents read from any untrusted source. */
#define EP_MAX_MANIFEST_BYTES (4u << 20)
#define EP_MAX_CONFIG_BYTES (8u << 20)
/* Cap on the decompressed size of one layer while verifying (1 TiB). */
#define EP_MAX_LAYER_BYTES (1ull << 40)

/* Progress callback for long work: called with a short phrase and bytes done
 * / total (total 0 if unknown).  May be NULL. */
typedef void (*ep_progress_fn)(void *ctx, const char *what, uint64_t done, uint64_t total);

struct ep_verify_item {
	char kind[16];       /* "manifest", "config", "layer" */
	ep_digest digest;    /* expected (from the referencing document) */
	ep_digest actual;    /* what the bytes hash to ("" if unreadable) */
	ep_digest diff_id;   /* layers: expected diff_id from config */
	ep_digest diff_actual;
	uint64_t size;
	int ok;
	char problem[320]; /* what is wrong, one line naming the blob ("" if ok) */
};

struct ep_verify_report {
	ep_digest manifest_digest;
	ep_digest config_digest;
	struct ep_verify_item *items;
	size_t n_items;
	uint64_t bytes_hashed; /* compressed + uncompressed bytes */
};
void ep_verify_report_release(struct ep_verify_report *r);

/* Verifies image `manifest_digest` in the OCI layout at `layout`: manifest
 * bytes, config bytes, every layer blob (digest and size) and every
 * diff_id (decompressed hash), in one read of each blob.  Returns 0 when all
 * is well; -1 with EP_EMISMATCH naming the FIRST bad blob by digest (the
 * report then holds every item checked); other codes for I/O errors. */
int ep_verify_layout(const char *layout, const char *manifest_digest,
		     struct ep_verify_report *rep, ep_progress_fn progress, void *pctx,
		     struct ep_error *err);

/* Verifies an image made by any tool: `path` is an OCI layout directory, an
 * OCI archive (tar with index.json) or a docker-archive (tar with
 * manifest.json, from `docker save`).  want_digest selects the manifest in a
 * layout/OCI archive with several (NULL: there must be exactly one); it may
 * also be a tag (matched against the ref.name / io.containerd.image.name
 * annotations, or RepoTags / the config digest in a docker-archive).  An
 * index.json entry that is a multi-platform index is followed to linux/amd64.
 * A tar is read once as a stream; its member names are untrusted (absolute,
 * "..", overlong or duplicate names: EP_EINVAL).  For docker-archives the
 * config digest is what is checked (Docker keeps no manifest);
 * rep->manifest_digest is then empty.  Errors as for ep_verify_layout.
 * Layers of a layout are hashed on up to min(ncpu, 4) threads;
 * ENVPIN_VERIFY_THREADS=N overrides.  See docs/verify.md. */
int ep_verify_path(const char *path, const char *want_digest, struct ep_verify_report *rep,
		   ep_progress_fn progress, void *pctx, struct ep_error *err);

enum ep_export_format {
	EP_EXPORT_OCI = 0,    /* OCI image layout in a tar (oci-archive) only */
	EP_EXPORT_DOCKER = 1, /* the same plus manifest.json + repositories for docker load:
			       * `envpin export`'s default, read by docker, podman, skopeo */
};

/* Writes an archive of image `manifest_digest` from layout to out_path
 * (atomically: temp file + rename).  tag (e.g. "envpin/astro:latest", may
 * be NULL) becomes RepoTags / ref.name.  The archive is deterministic:
 * sorted members, mtime 0, uid/gid 0.  Manifest and config bytes are copied
 * unchanged, so the manifest digest and the config digest (Docker's image
 * ID) are kept. */
int ep_export(const char *layout, const char *manifest_digest, const char *out_path,
	      enum ep_export_format fmt, const char *tag, struct ep_error *err);

/* {"digest","config_digest","media_type","created","architecture","os",
 *  "config":{...},"layers":[{"digest","diff_id","size","media_type"}],
 *  "config_size", "size": manifest + config + layers as stored} for image
 * manifest_digest in layout; manifest and config are digest-checked.
 * New reference. */
json_t *ep_inspect(const char *layout, const char *manifest_digest, struct ep_error *err);

/* Loads a blob of the layout, checking its digest and a size cap.  Caller
 * frees; *len gets its size. */
char *ep_layout_read_blob(const char *layout, const char *digest, size_t max, size_t *len,
			  struct ep_error *err);

#endif
