/* lib/trust/sign.h - ECDSA P-256 keys and signatures with OpenSSL, and
 * cosign's keyed signature layout for images (docs/signing.md).
 *
 * A signature of image D is a small OCI image kept beside D (never inside
 * D's manifest, whose digest is the pin): its config is cosign's fixed one,
 * each layer is a simple-signing payload
 *   {"critical":{"identity":{"docker-reference":REPO},
 *                "image":{"docker-manifest-digest":D},
 *                "type":"cosign container image signature"},"optional":null}
 * of media type EP_MT_COSIGN_PAYLOAD, whose annotation
 * "dev.cosignproject.cosign/signature" holds base64 of the DER ECDSA-SHA256
 * signature over the payload bytes.  In a registry it is tagged
 * "sha256-<hex of D>.sig" in D's repository, where cosign looks for it. */
#ifndef EP_TRUST_SIGN_H
#define EP_TRUST_SIGN_H

#include <stddef.h>

#include "digest.h"
#include "error.h"
#include "store.h"

#define EP_MT_COSIGN_PAYLOAD "application/vnd.dev.cosign.simplesigning.v1+json"
#define EP_COSIGN_SIG_ANNOTATION "dev.cosignproject.cosign/signature"
#define EP_COSIGN_TYPE "cosign container image signature"

/* An ECDSA P-256 key (private, or public only).  Opaque. */
struct ep_key;

/* Writes PREFIX.key (PKCS#8 PEM, mode 0600; AES-256-CBC encrypted when
 * passphrase is non-NULL and non-empty) and PREFIX.pub (SubjectPublicKeyInfo
 * PEM, 0644).  Refuses (EP_EINVAL) when either file exists: a key is never
 * overwritten.  Nothing is left behind on failure. */
int ep_key_generate(const char *prefix, const char *passphrase, struct ep_error *err);

/* Loads a private key (PEM: PKCS#8, encrypted or not, or SEC1).  A corrupt
 * file, a key that is not P-256, a wrong or missing passphrase: EP_EINVAL
 * naming the file.  Caller frees with ep_key_free. */
struct ep_key *ep_key_load_private(const char *path, const char *passphrase, struct ep_error *err);

/* Loads a public key (PEM SubjectPublicKeyInfo; a private key file also
 * works, its public half is used).  Errors as above. */
struct ep_key *ep_key_load_public(const char *path, struct ep_error *err);

void ep_key_free(struct ep_key *k);

/* "sha256:<hex>" of the DER SubjectPublicKeyInfo: names a key in reports. */
int ep_key_id(const struct ep_key *k, ep_digest out, struct ep_error *err);

/* The PEM of the public key (caller frees). */
char *ep_key_public_pem(const struct ep_key *k, struct ep_error *err);

/* DER ECDSA-SHA256 signature of buf, base64 (caller frees). */
char *ep_sign_b64(const struct ep_key *k, const void *buf, size_t len, struct ep_error *err);

/* 1 when sig_b64 is a valid signature of buf by k, 0 when it is not (or is
 * not base64/DER), -1 on an internal failure. */
int ep_verify_b64(const struct ep_key *k, const void *buf, size_t len, const char *sig_b64,
		  struct ep_error *err);

/* The simple-signing payload for image `digest` in repository `identity`
 * ("HOST/REPO"), as cosign writes it (compact, keys sorted).  Caller frees;
 * *len gets its length. */
char *ep_cosign_payload(const char *identity, const char *digest, size_t *len,
			struct ep_error *err);

/* "HOST/REPO" of a reference or tag (its tag and digest dropped), as the
 * payload's docker-reference.  Caller frees. */
char *ep_sign_identity(const char *ref, struct ep_error *err);

/* Signs image `digest` of the store for `identity`: adds a payload layer to
 * its signature image (created when missing; an identical payload signed by
 * the same key is not added twice) and records it beside the image.
 * *sig_manifest (may be NULL) gets the signature image's manifest digest. */
int ep_sign_image(struct ep_store *s, const char *digest, const char *identity,
		  const struct ep_key *k, ep_digest sig_manifest, struct ep_error *err);

struct ep_sig_check {
	int n_signatures;   /* payload layers found */
	int verified;	    /* index of the layer that verified, -1 if none */
	char identity[512]; /* the verified payload's docker-reference */
	ep_digest sig_manifest;
};

/* Verifies that image `digest` carries a signature by k whose payload names
 * `digest` and, when identity is non-NULL, that repository.  0 when one
 * does; otherwise -1 with EP_EMISMATCH and a one-line reason (no signature,
 * wrong key, payload for another digest or repository, tampered payload),
 * or another code for I/O errors. */
int ep_verify_image_signature(struct ep_store *s, const char *digest, const char *identity,
			      const struct ep_key *k, struct ep_sig_check *out,
			      struct ep_error *err);

/* The keyPath of the skopeo/containers policy.json requirement that covers
 * `identity` ("HOST/REPO"): transports.docker, the longest matching scope
 * (exact repository, then namespaces, then host), else "default".  Returns
 * 1 with *key_path (caller frees) for a "sigstoreSigned" requirement, 0 for
 * "insecureAcceptAnything", -1 with EP_EMISMATCH for "reject" and
 * EP_EINVAL for a requirement envpin cannot check. */
int ep_policy_key_for(const char *policy_path, const char *identity, char **key_path,
		      struct ep_error *err);

#endif
