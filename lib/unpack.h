/* lib/unpack.h - secure extraction of image layers (issue 4).
 *
 * Layers are untrusted tar streams.  Every path is resolved inside the root
 * (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS for
 * parents, or an equivalent O_NOFOLLOW walk), modes/owners/times are set
 * through no-follow handles, hardlinks only to targets inside the root,
 * device nodes only as root, sizes bounded.  A hostile entry is refused with
 * EP_EINVAL naming it, and nothing outside the root is ever written, linked,
 * chmod'ed or deleted. */
#ifndef EP_UNPACK_H
#define EP_UNPACK_H

#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "oci.h"
#include "store.h"

enum ep_whiteout_mode {
	EP_WHITEOUT_APPLY = 0,   /* flattening: ".wh.x" deletes x below; ".wh..wh..opq" empties the dir */
	EP_WHITEOUT_OVERLAY = 1, /* per-layer dirs for overlayfs: char 0/0 + trusted.overlay.opaque=y */
};

struct ep_unpack_opts {
	enum ep_whiteout_mode whiteouts;
	uint64_t max_bytes;   /* refuse when the unpacked total would exceed it (0: free disk - 5%) */
	uint64_t max_entries; /* 0: 10 million */
	int allow_devices;    /* create device nodes (only honoured when running as root) */
	int same_owner;       /* chown to the tar's uid/gid (root only; else files are the caller's) */
	ep_progress_fn progress;
	void *pctx;
};
void ep_unpack_opts_init(struct ep_unpack_opts *o);

/* Applies one layer blob (compressed as `media_type` says) onto the directory
 * open as root_fd.  The blob is hashed while read; when diff_id is non-NULL
 * the uncompressed stream must hash to it (EP_EMISMATCH otherwise, and the
 * caller must discard root_fd's tree). */
int ep_unpack_layer(int root_fd, const char *blob_path, const char *media_type,
		    const char *diff_id, const struct ep_unpack_opts *o, struct ep_error *err);

/* Flattens image manifest_digest of layout into dest (created; must be empty
 * or missing).  `envpin unpack IMAGE DIR`. */
int ep_unpack_image(const char *layout, const char *manifest_digest, const char *dest,
		    const struct ep_unpack_opts *o, struct ep_error *err);

/* The per-layer rootfs cache used by run: STORE/rootfs/<diff_id hex>/ holds
 * the layer unpacked in overlay form (EP_WHITEOUT_OVERLAY), created once
 * (unpack into a temp dir, then rename) and read-only after.  *path gets the
 * directory (caller frees). */
int ep_layer_rootfs(struct ep_store *s, const char *blob_digest, const char *media_type,
		    const char *diff_id, char **path, struct ep_error *err);

#endif
