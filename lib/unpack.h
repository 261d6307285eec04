/* lib/unpack.h - secure extraction of image layers (issue 4).
 *
 * Layers are untrusted tar streams (ustar, PAX 'x'/'g', GNU 'L'/'K'), read
 * in one pass with bounded memory.  Every parent directory is resolved inside
 * the root with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS): symlinks in
 * the tree are followed as if the root were "/", never out of it (without
 * openat2, an O_NOFOLLOW walk refuses symlinked parents instead).  The last
 * component is created with *at() calls and never followed; an existing
 * non-directory there is replaced, not written through.  Modes, owners,
 * times and xattrs are set through the created fd or *at(NOFOLLOW).
 * Hardlinks only to regular files inside the root, device nodes only as
 * root and when allowed, '..' components refused, sizes and counts bounded.
 * A hostile entry is refused with EP_EINVAL naming it ("entry 'x': ..."),
 * and nothing outside the root is ever written, linked, chmod'ed or deleted.
 * docs/unpack.md has the policy in full. */
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

/* What an unpack did (all counters add up over calls). */
struct ep_unpack_stats {
	uint64_t layers, files, dirs, symlinks, hardlinks, fifos, devices, whiteouts;
	uint64_t bytes;           /* regular file data written */
	uint64_t devices_skipped; /* device nodes not created (not root / not allowed) */
	uint64_t xattrs_skipped;  /* xattrs dropped by policy or refused by the fs */
	uint64_t direct_bytes;	  /* of bytes, those written with O_DIRECT */
};

struct ep_unpack_opts {
	enum ep_whiteout_mode whiteouts;
	uint64_t max_bytes;   /* refuse when the layer's tar stream (headers + data, so at
			       * least what lands on disk) would exceed it; checked per
			       * entry before any of its data is written, and given to the
			       * decompressor as its cap (0: free space of the target fs
			       * less 5%, per layer) */
	uint64_t max_entries; /* 0: 10 million */
	int allow_devices;    /* create device nodes (only honoured when running as root) */
	int same_owner;       /* chown to the tar's uid/gid (root only; else files are the
			       * caller's).  setuid/setgid bits and security.capability
			       * are kept only when this applies. */
	ep_progress_fn progress;
	void *pctx;
	struct ep_unpack_stats *stats; /* may be NULL */
};
/* Defaults: APPLY, no caps beyond free space, no devices, same_owner 1. */
void ep_unpack_opts_init(struct ep_unpack_opts *o);

/* Applies one layer blob (compressed as `media_type` says) onto the directory
 * open as root_fd.  The blob is hashed while read; when diff_id is non-NULL
 * the uncompressed stream must hash to it (EP_EMISMATCH otherwise, and the
 * caller must discard root_fd's tree). */
int ep_unpack_layer(int root_fd, const char *blob_path, const char *media_type,
		    const char *diff_id, const struct ep_unpack_opts *o, struct ep_error *err);

/* Flattens image manifest_digest of layout into dest (created; must be empty
 * or missing; not a symlink) with EP_WHITEOUT_APPLY whatever o says.  On
 * failure dest is emptied again (removed if this call created it).
 * `envpin unpack IMAGE DIR`. */
int ep_unpack_image(const char *layout, const char *manifest_digest, const char *dest,
		    const struct ep_unpack_opts *o, struct ep_error *err);

/* The per-layer rootfs cache used by run: STORE/rootfs/<diff_id hex>/ holds
 * the layer unpacked in overlay form (EP_WHITEOUT_OVERLAY: whiteouts are
 * char 0/0 nodes, opaque dirs carry trusted.overlay.opaque=y; needs root),
 * created once (unpacked into STORE/tmp/rootfs-HEX-XXXXXX, syncfs'ed, then
 * renamed) and read-only after.  STORE/rootfs is 0700.  Concurrent callers
 * for one layer serialize on flock(STORE/rootfs/HEX.lock); the loser finds
 * the directory made.  Devices in the layer are skipped.  diff_id is
 * required.  *path gets the directory (caller frees). */
int ep_layer_rootfs(struct ep_store *s, const char *blob_digest, const char *media_type,
		    const char *diff_id, char **path, struct ep_error *err);

/* ep_layer_rootfs for every layer of `layers` (the array ep_inspect gives:
 * objects with digest, media_type, diff_id), the missing ones unpacked two
 * (or ENVPIN_UNPACK_THREADS) at a time: each goes to its own directory, so
 * layers are independent.  paths[i] gets layer i's directory (caller frees
 * each; on failure none is set).  progress, if set, hears "unpack" with the
 * compressed bytes done and to do over the layers that were missing.  The
 * error names the first failed layer as "layer N". */
int ep_layer_rootfs_all(struct ep_store *s, const json_t *layers, char **paths,
			ep_progress_fn progress, void *pctx, struct ep_error *err);

/* Removes per-layer rootfs caches whose diff_id is not a key of keep (a
 * JSON object used as a set).  Needs the store opened EP_STORE_EXCLUSIVE,
 * so no run is using them.  *freed grows by the bytes removed. */
int ep_layer_rootfs_gc(struct ep_store *s, json_t *keep, uint64_t *freed, struct ep_error *err);

#endif
