/* lib/trust/provenance.h - SLSA provenance v1 in an in-toto Statement v1,
 * signed in a DSSE envelope (docs/provenance.md).
 *
 * DSSE signs the pre-authentication encoding
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 * (LEN: decimal byte count) with ECDSA-SHA256; the envelope is
 *   {"payloadType": "application/vnd.in-toto+json", "payload": base64(body),
 *    "signatures": [{"keyid": K, "sig": base64(DER signature)}]}
 * K is securesystemslib's default key id for the public key (sha256 of
 * the canonical {"keytype":"ecdsa","keyval":{"public":PEM},
 * "scheme":"ecdsa-sha2-nistp256"}), so in-toto tooling finds the key. */
#ifndef EP_TRUST_PROVENANCE_H
#define EP_TRUST_PROVENANCE_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"
#include "store.h"
#include "trust/sign.h"

#define EP_INTOTO_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define EP_INTOTO_STATEMENT "https://in-toto.io/Statement/v1"
#define EP_SLSA_PROVENANCE "https://slsa.dev/provenance/v1"

/* The in-toto statement for image digest (name: its subject name, NULL:
 * the lock's manifest file name), from the lock kept beside it: subject =
 * the image manifest digest; buildDefinition = externalParameters
 * (manifest file and sha256, source_date_epoch, compressor),
 * internalParameters (profile, lock digest, config digest) and
 * resolvedDependencies = every locked input with its digest; runDetails =
 * builder id and envpin version.  New reference.  No lock: EP_EINVAL. */
json_t *ep_provenance_statement(struct ep_store *s, const char *digest, const char *name,
				struct ep_error *err);

/* PAE of (type, body); caller frees, *len its length. */
char *ep_dsse_pae(const char *type, const char *body, size_t blen, size_t *len,
		  struct ep_error *err);

/* securesystemslib's default key id of k's public key (64 hex). */
int ep_dsse_keyid(const struct ep_key *k, char out[65], struct ep_error *err);

/* A DSSE envelope of body signed with k (new reference). */
json_t *ep_dsse_sign(const char *type, const char *body, size_t blen, const struct ep_key *k,
		     struct ep_error *err);

/* Verifies an envelope with k: 0 and *payload (caller frees, *plen) when a
 * signature verifies; EP_EMISMATCH with a one-line reason otherwise. */
int ep_dsse_verify(json_t *env, const struct ep_key *k, char **payload, size_t *plen,
		   struct ep_error *err);

#endif
