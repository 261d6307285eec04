/* lib/vendor.h - bundles: an image with every input it was built from, for
 * a rebuild years later without network (docs/vendor.md).
 *
 * A bundle is a directory (or a tar of one) that is an OCI image layout
 * holding the image, whose blobs/sha256/ also holds every input file by its
 * sha256, plus envpin-bundle.json, the bundle index:
 *
 *   {"bundleVersion": 1,
 *    "image": {"digest", "config_digest", "tag"},
 *    "manifest": "context/REL/NAME.json", "lock": "context/REL/NAME.lock.json",
 *    "files": {PATH: {"sha256": "sha256:HEX", "size": N, "mode": "0644"}
 *              | {"symlink": TARGET} | {"dir": "0755"}},
 *    "debian": {"sources_list": TEXT, "packages": [...]}     (debian base)
 *    "envpin_source": {...}, "created_by": "envpin 0.1.0 (commit ...)"}
 *
 * PATHs: context/... (the manifest's directory and every path it names,
 * below their common ancestor), inputs/debs/NAME.deb (what mmdebstrap
 * installed), inputs/fetch/HEX (fetched URLs), inputs/wheels/NAME.whl,
 * inputs/base-image/HEX (a registry base's blobs), source/envpin-C12.tar
 * (envpin's own source).  Every regular file's bytes are blobs/sha256/HEX:
 * one name per content, checked by rehashing. */
#ifndef EP_VENDOR_H
#define EP_VENDOR_H

#include <jansson.h>

#include "build.h"
#include "error.h"
#include "store.h"

#define EP_BUNDLE_INDEX "envpin-bundle.json"

struct ep_vendor_opts {
	const char *manifest_path; /* NULL: the manifest the store recorded for digest */
	const char *lock_path;	   /* NULL: beside the manifest */
	const char *digest;	   /* NULL: the lock's image.digest */
	const char *out;	   /* BUNDLE dir, or BUNDLE.tar */
	ep_progress_fn progress;
	void *pctx;
};

/* Writes the bundle of one image of the store.  The image must be the one
 * the lock records (EP_EINVAL otherwise).  Steps it cannot carry offline yet
 * (apt; pip, debian or image bases in a stage) are EP_EINVAL naming the step.  A debian
 * base runs mmdebstrap once more to collect the .debs, and refuses a mirror
 * that now serves other versions than the lock lists.  *summary (new ref):
 * {"bundle", "bundle_sha256" (of the index), "files", "bytes", "image"}. */
int ep_vendor_create(struct ep_store *s, const struct ep_vendor_opts *o, json_t **summary,
		     struct ep_error *err);

/* Re-hashes every blob of a bundle (dir or .tar) and checks every file of
 * its index.  Returns 0 when it ran; *report (new ref):
 * {"ok": bool, "files": N, "blobs": N, "bytes": N,
 *  "bad": [{"path": "context/x" or "blobs/sha256/HEX", "blob", "why"}]}. */
int ep_vendor_check(struct ep_store *s, const char *bundle, json_t **report, struct ep_error *err);

/* An opened bundle, ready for an offline build: the context rebuilt under
 * a scratch dir of the store, the debs as a local repository. */
struct ep_bundle {
	char *layout;	     /* the OCI layout (bundle dir, or the tar extracted) */
	char *work;	     /* scratch dir (owned; ep_store_scratch_dir) */
	int work_fd;	     /* its lock */
	char *manifest_path; /* in work/context */
	char *lock_path;
	char image_digest[72];
	json_t *index; /* envpin-bundle.json */
	struct ep_offline offline;
};

/* Checks the whole bundle first (any bad file: EP_EMISMATCH naming it), then
 * lays out the context and the offline inputs. */
int ep_bundle_open(struct ep_store *s, const char *bundle, struct ep_bundle *b,
		   struct ep_error *err);
void ep_bundle_release(struct ep_bundle *b);

/* Copies the build context of a manifest (the files a build reads: the
 * manifest, its lock, a rootfs/oci base, the copy sources) below dest,
 * keeping their layout relative to their common directory.  preserve: as
 * cp -a; otherwise modes follow the process umask (a fresh checkout).  Sets
 * *manifest_out and *lock_out to the copies (caller frees).  For
 * verify --rebuild --vary (lib/vary.c). */
int ep_context_copy(const char *manifest, const char *lock, const char *dest, int preserve,
		    char **manifest_out, char **lock_out, struct ep_error *err);

#endif
