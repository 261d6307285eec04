/* lib/trust/sidecar.h - what the store keeps beside an image: the lock it was
 * built from, its signatures and its attachments (docs/sbom.md,
 * docs/signing.md).  None of it touches the image's manifest or index.json's
 * entry for it, so the image digest stays the pin.
 *
 *   cache/lock-<hex>.json   {"image": D, "lock": {"digest": L, "size": N}}
 *                           L: the lock file's bytes as a blob (written by build)
 *   cache/trust-<hex>.json  {"image": D,
 *                            "signature": ENTRY,         cosign's .sig image
 *                            "attachments": [ENTRY...]}  OCI 1.1 artifacts
 *   ENTRY = {"digest": M, "size": N, "mediaType": MT, "artifactType": AT,
 *            "blobs": [{"digest": B}...]}   (config and layers of M)
 *
 * gc keeps every blob a cache record names by "digest", so these blobs live
 * as long as their record.  Records are replaced whole in a store
 * transaction. */
#ifndef EP_TRUST_SIDECAR_H
#define EP_TRUST_SIDECAR_H

#include <jansson.h>
#include <stddef.h>

#include "digest.h"
#include "error.h"
#include "store.h"

/* Cap on one sidecar document (signature payload, SBOM, provenance). */
#define EP_SIDECAR_MAX_BLOB (64u << 20)

/* trust-<hex> of image digest: a new reference, or an empty record
 * {"image": D} when there is none; NULL only when out of memory. */
json_t *ep_sidecar_get(struct ep_store *s, const char *digest);

/* Stages rec as the trust record of digest in t. */
int ep_sidecar_put(struct ep_txn *t, const char *digest, json_t *rec, struct ep_error *err);

/* An ENTRY for the manifest text (len bytes, digest md): its size, media
 * type, artifactType and the digests of its config and layers.  New
 * reference. */
json_t *ep_sidecar_entry(const char *text, size_t len, const char *md, struct ep_error *err);

/* Stages the lock text as a blob and records it as the lock of image. */
int ep_sidecar_set_lock(struct ep_txn *t, const char *image, const char *text, size_t len,
			struct ep_error *err);

/* The lock recorded for image: its bytes (caller frees, NUL-terminated),
 * length and digest.  No record: EP_EINVAL "image D has no lock in the
 * store ...". */
char *ep_sidecar_lock(struct ep_store *s, const char *image, size_t *len, ep_digest lock_digest,
		      struct ep_error *err);

/* Reads blob digest of the store (digest-checked, at most max bytes).
 * Caller frees. */
char *ep_sidecar_blob(struct ep_store *s, const char *digest, size_t max, size_t *len,
		      struct ep_error *err);

#endif
