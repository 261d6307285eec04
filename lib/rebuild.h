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

/* verify --rebuild --vary: the host variations (lib/vary.c). */
enum {
	EP_VARY_BUILDDIR = 1 << 0,  /* the context copied elsewhere */
	EP_VARY_UMASK = 1 << 1,	    /* umask 0002, the copy group-writable */
	EP_VARY_TZ = 1 << 2,	    /* TZ=Asia/Tokyo */
	EP_VARY_LOCALE = 1 << 3,    /* LANG=LC_ALL=fr_FR.UTF-8 */
	EP_VARY_HOSTNAME = 1 << 4,  /* another hostname (unshare -u) */
	EP_VARY_FILEORDER = 1 << 5, /* disorderfs over the context copy */
	EP_VARY_CLOCK = 1 << 6,	    /* libfaketime +508 days for host tools */
	EP_VARY_THREADS = 1 << 7,   /* one CPU, one thread */
	EP_VARY_ALL = 0xff,
};

/* "all" or a comma list of builddir, umask, tz, locale, hostname,
 * fileorder, clock, threads.  Unknown: EP_EINVAL. */
int ep_vary_parse(const char *list, unsigned *out, struct ep_error *err);

/* Rebuilds under the variations `which` and names those that change the
 * bytes.  Cost: one rebuild with every variation at once; only when that
 * differs, one unvaried rebuild (the control) and one per variation.  Each
 * rebuild runs in a forked child (ep_rebuild_compare there).  *report:
 *   {"verdict": "identical" | "varies" | "not-reproducible" | "error",
 *    "variations": [{"name","setting","skipped"?}],
 *    "runs": [{"vary": [names], "report": {...} | "error": MSG}],
 *    "changed_by": [names], "explanation"}. */
int ep_rebuild_vary(struct ep_store *s, const char *layout, const char *digest,
		    const struct ep_build_opts *o, unsigned which, json_t **report,
		    struct ep_error *err);

/* Lists a layer blob (any compression libarchive reads): a JSON object
 * {path: {"type","mode","uid","gid","mtime","size","link","sha256"}}.
 * Bounded by max_entries.  New reference. */
json_t *ep_layer_listing(const char *blob_path, size_t max_entries, struct ep_error *err);

#endif
