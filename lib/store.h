/* lib/store.h - the envpin store: an OCI image layout plus caches.
 *
 *   ROOT/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   ROOT/index.json            images (manifest descriptors; tags as
 *                              org.opencontainers.image.ref.name)
 *   ROOT/blobs/sha256/HEX      content-addressed blobs
 *   ROOT/cache/KEY.json        small JSON records (layer cache, stat cache)
 *   ROOT/tmp/txn-*             staging of unfinished transactions
 *   ROOT/tmp/rebuild-*         verify --rebuild's private stores
 *   ROOT/tmp/rootfs-HEX-*      unpacks in progress (lib/unpack.c)
 *   ROOT/lock                  flock: shared by every user, exclusive by gc
 *   ROOT/index.lock            flock: exclusive while index.json changes
 *
 * Nothing reaches blobs/ or index.json except through a transaction: blobs
 * are staged as temp files (fsynced), renamed into blobs/ at commit, then
 * index.json is replaced atomically.  A killed process leaves only a txn
 * directory, which the next open removes when no process holds it.
 * docs/store.md has the locking protocol and the crash-safety argument. */
#ifndef EP_STORE_H
#define EP_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"

struct ep_store {
	char *root;
	int lock_fd; /* shared flock on ROOT/lock for the store's lifetime */
	int flags;   /* EP_STORE_* given to ep_store_open */
	uint64_t tmp_freed; /* bytes of dead processes' leftovers the open removed */
};

enum { EP_STORE_CREATE = 1, EP_STORE_EXCLUSIVE = 2 };

/* Default root: $ENVPIN_STORE, else /var/lib/envpin for uid 0, else
 * $XDG_DATA_HOME/envpin or ~/.local/share/envpin.  Caller frees. */
char *ep_store_default_root(struct ep_error *err);

/* Opens (creating with EP_STORE_CREATE) the store at root and takes the
 * shared lock (exclusive with EP_STORE_EXCLUSIVE).  Opening without CREATE
 * a path that is not a store: EP_EINVAL naming it.  A shared open waits for
 * a running gc; an exclusive one gives up after about 2 s ("store ... is
 * busy", EP_EENV).  Opening an existing store changes none of its files: it
 * may create ROOT/lock and removes from tmp/ what dead processes left (txn
 * dirs, verify --rebuild stores, partial unpacks: each kind is known dead by
 * a flock its owner held), counting the bytes in s->tmp_freed.
 * On failure *s is left released (ep_store_release is a no-op on it).
 * The lock fds are O_CLOEXEC, but a fork()ed child shares them. */
int ep_store_open(struct ep_store *s, const char *root, int flags, struct ep_error *err);
void ep_store_release(struct ep_store *s);

/* ROOT/blobs/sha256/HEX.  Caller frees. */
char *ep_store_blob_path(const struct ep_store *s, const char *digest, struct ep_error *err);
/* 1 if the blob file exists, 0 if not. */
int ep_store_has_blob(const struct ep_store *s, const char *digest);

/* Resolves IMAGE (full digest, unique hex prefix with or without "sha256:",
 * or tag) to the manifest digest of an image in index.json.  Unknown or
 * ambiguous: EP_EINVAL naming it (ambiguous lists the candidates). */
int ep_store_resolve(struct ep_store *s, const char *image, ep_digest out, struct ep_error *err);

/* index.json's manifests array (new reference). */
json_t *ep_store_images(struct ep_store *s, struct ep_error *err);

/* Small JSON cache records under ROOT/cache (key: 1 to 200 of
 * [a-z0-9_:.-]).  get returns NULL without error when absent, unreadable or
 * invalid (a cache miss).  gc keeps every blob named by a "digest" member
 * anywhere in a record. */
json_t *ep_store_cache_get(struct ep_store *s, const char *key);

struct ep_txn {
	struct ep_store *s;
	char *dir;	 /* ROOT/tmp/txn-XXXXXX */
	int dir_lock_fd; /* flock held on dir/.lock while alive */
	json_t *blobs;	 /* [{"tmp": path, "digest": d}] staged */
	json_t *by_digest; /* {digest: the same records}: a lookup per blob, not a scan */
	json_t *cache;	 /* {key: record} to write at commit */
	json_t *images;	 /* [{"digest","size","tag"}] to add to index.json */
	unsigned seq;
};

int ep_txn_begin(struct ep_store *s, struct ep_txn *t, struct ep_error *err);

/* A new temp file inside the txn dir, opened O_RDWR|O_EXCL.  *path is
 * malloc'ed (caller frees). */
int ep_txn_tempfile(struct ep_txn *t, int *fd, char **path, struct ep_error *err);

/* Stages a temp file (from ep_txn_tempfile) as blob `digest`.  The caller
 * computed the digest of the bytes while writing them; the file is fsynced
 * here.  If the store already has the blob, the temp file is dropped. */
int ep_txn_add_blob_file(struct ep_txn *t, const char *tmp_path, const char *digest,
			 struct ep_error *err);

/* Stages an in-memory blob; its digest goes to out. */
int ep_txn_add_blob_buf(struct ep_txn *t, const void *buf, size_t len, ep_digest out,
			struct ep_error *err);

/* Path of a blob staged in this txn or already in the store (caller frees);
 * NULL with EP_EINVAL if neither. */
char *ep_txn_blob_path(struct ep_txn *t, const char *digest, struct ep_error *err);

/* Records a cache entry to be written at commit.  The txn takes its own
 * reference (json_incref); the caller still owns `record`. */
int ep_txn_set_cache(struct ep_txn *t, const char *key, json_t *record, struct ep_error *err);

/* Adds an image manifest to index.json at commit; tag may be NULL.  A tag
 * moves from any other image to this one.  An image has one index entry
 * and so at most one tag: a new tag replaces its old one, a NULL tag keeps
 * it.  Tags: a letter or digit, then [A-Za-z0-9._:@/+-], at most 255, not
 * starting with "sha256:".  At commit the manifest blob must be staged or
 * stored, be a JSON object and have `size` bytes; its own mediaType (OCI or
 * Docker) becomes the entry's. */
int ep_txn_add_image(struct ep_txn *t, const char *manifest_digest, uint64_t size, const char *tag,
		     struct ep_error *err);

/* Renames staged blobs into blobs/ (fsync of blobs/sha256), writes cache
 * records, then replaces index.json under ROOT/index.lock.  On error the
 * store keeps its old index.json (blobs already renamed are unreferenced
 * and harmless; gc removes them).  Either way the txn is finished (its dir
 * removed), so a following ep_txn_abort is a no-op.  Committing an image
 * that index.json already holds unchanged leaves index.json's bytes. */
int ep_txn_commit(struct ep_txn *t, struct ep_error *err);

/* Removes the txn dir and everything staged; NULL/idempotent safe, and a
 * no-op on a txn whose ep_txn_begin failed or that was committed. */
void ep_txn_abort(struct ep_txn *t);

/* Removes blobs not reachable from index.json (manifests, their configs,
 * layers and blobs, index children recursively) or from a cache record,
 * stale txn dirs and leftover temp files; needs EP_STORE_EXCLUSIVE
 * (EP_EINVAL otherwise).  A manifest it cannot read stops gc before
 * anything is removed.  *freed (may be NULL) gets bytes removed. */
int ep_store_gc(struct ep_store *s, uint64_t *freed, struct ep_error *err);

/* A private scratch directory ROOT/tmp/PREFIX-XXXXXX (PREFIX "rebuild" or
 * "scratch"), alive while *lock_fd (a flock on the sibling
 * PREFIX-XXXXXX.lock, taken before the dir exists) is held: a kill at any
 * point leaves nothing that the next open or gc does not remove.  Caller
 * frees with ep_store_scratch_release (removes the dir, then the lock). */
char *ep_store_scratch_dir(struct ep_store *s, const char *prefix, int *lock_fd,
			   struct ep_error *err);
void ep_store_scratch_release(char *dir, int lock_fd);

/* Removes images from index.json (under ROOT/index.lock; a shared open is
 * enough).  A name that is a tag removes that entry only (the image stays
 * while another entry lists it: "untagged"); a digest or prefix removes
 * every entry of the image ("deleted"), but refuses, unless force, an image
 * with several tags or one that an image index still in the store lists.
 * All or nothing: on error index.json is unchanged.  The cache records
 * that keep blobs only the removed images reached are removed too, so the
 * next ep_store_gc frees those blobs (rmi itself removes no blob).
 * *report (may be NULL; new reference): [{"name","digest","action","tags"}]. */
int ep_store_rmi(struct ep_store *s, const char *const *names, size_t n, int force, json_t **report,
		 struct ep_error *err);

#endif
