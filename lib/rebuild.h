/* lib/rebuild.h - rebuild-and-compare: the reviewer's question "does this
 * manifest + lock really give this image?" in one call.
 *
 * The image is rebuilt from scratch in a private temporary store (nothing
 * cached), then compared at two levels: byte identity (manifest digest) and
 * content identity (config digest, which holds the uncompressed diff_ids).
 * When content differs, the first differing layer is named together with the
 * paths that differ inside it. */
#ifndef EP_REBUILD_H
#define EP_REBUILD_H

#include <jansson.h>

#include "build.h"
#include "error.h"
#include "store.h"

/* Rebuilds o->manifest_path (lock beside it; never written) in a private
 * store under s's tmp/ and compares with image `digest` of OCI layout
 * `layout` (NULL: the store s itself).  *report (new reference) gets:
 *   {"verdict": "identical" | "same-content" | "different",
 *    "image": {"digest","config_digest"}, "rebuilt": {"digest","config_digest",
 *    "compressor"}, "lock_compressor": {...} or null,
 *    "layers": [{"index","image_digest","rebuilt_digest","image_diff_id",
 *                "rebuilt_diff_id","same_content","same_bytes"}],
 *    "first_different_layer": N or null,
 *    "paths": [{"path","image","rebuilt"}]   (up to 50 differing entries),
 *    "config_fields": ["Env", ...]           (config fields that differ),
 *    "explanation": "one paragraph for humans"}
 * Returns 0 when the comparison ran (whatever the verdict); -1 on error. */
int ep_rebuild_compare(struct ep_store *s, const char *layout, const char *digest,
		       const struct ep_build_opts *o, json_t **report, struct ep_error *err);

/* Lists a layer blob (any compression libarchive reads): a JSON object
 * {path: {"type","mode","uid","gid","mtime","size","link","sha256"}}.
 * Bounded by max_entries.  New reference. */
json_t *ep_layer_listing(const char *blob_path, size_t max_entries, struct ep_error *err);

#endif
