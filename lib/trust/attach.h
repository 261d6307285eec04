/* lib/trust/attach.h - OCI 1.1 artifacts attached to an image (SBOM,
 * provenance, certificate), and carrying them with signatures to and from a
 * registry (docs/signing.md, "Attachments").
 *
 * An attachment is an OCI image manifest with "artifactType", the empty
 * config (application/vnd.oci.empty.v1+json, "{}"), the file as its one layer
 * (annotated org.opencontainers.image.title) and "subject" = the image.  In
 * a registry it is found by the referrers API (GET /v2/REPO/referrers/D)
 * or, where the registry lacks it (Debian's docker-registry 2.8), by the
 * referrers tag fallback: an OCI index tagged "sha256-<hex of D>" listing
 * the artifacts' descriptors. */
#ifndef EP_TRUST_ATTACH_H
#define EP_TRUST_ATTACH_H

#include <jansson.h>

#include "digest.h"
#include "error.h"
#include "registry.h"
#include "store.h"

#define EP_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"
#define EP_AT_SPDX "application/spdx+json"
#define EP_AT_CYCLONEDX "application/vnd.cyclonedx+json"
#define EP_AT_DSSE "application/vnd.dsse.envelope.v1+json"
#define EP_AT_CERT "application/vnd.envpin.certificate.v1+json"

/* The artifactType for --type sbom|provenance|cert and the file's first
 * bytes (an SBOM is SPDX or CycloneDX by its content).  NULL + EP_EINVAL for
 * an unknown type or an SBOM that is neither. */
const char *ep_attach_type(const char *type, const char *text, size_t len, struct ep_error *err);

/* Attaches the file (at most EP_SIDECAR_MAX_BLOB bytes) to image `digest`
 * of the store as an artifact of artifact_type; *md gets the artifact
 * manifest's digest.  Attaching the same bytes twice adds nothing. */
int ep_attach_file(struct ep_store *s, const char *digest, const char *path,
		   const char *artifact_type, ep_digest md, struct ep_error *err);

/* [{"digest","size","mediaType","artifactType","title","kind"}] for the
 * signature and attachments kept beside image digest (new reference). */
json_t *ep_attachments_local(struct ep_store *s, const char *digest, struct ep_error *err);

/* The content of the first attachment of artifact_type (the newest is the
 * last attached): caller frees, *len its length.  None: EP_EINVAL. */
char *ep_attachment_read(struct ep_store *s, const char *digest, const char *artifact_type,
			 size_t *len, struct ep_error *err);

/* Descriptors of image digest's referrers in the registry repository of
 * ref_s: referrers API, else the tag fallback.  *via gets "referrers-api",
 * "tag-fallback" or "none".  The store lends a scratch transaction.  New
 * reference. */
json_t *ep_attachments_remote(struct ep_store *s, const char *ref_s, const char *digest,
			      const struct ep_registry_opts *o, const char **via,
			      struct ep_error *err);

/* push: uploads the signature image (tag sha256-<hex>.sig) and the
 * attachments (by digest, then the fallback index tag sha256-<hex>, merged
 * with what is there, when the registry has no referrers API) of image
 * digest to ref_s's repository.  *report (new): {"signature": bool,
 * "attachments": N, "via": ..., and with a signature "signed_identities":
 * [REPO...], "signature_matches_repository": bool}. */
int ep_trust_push(struct ep_store *s, const char *digest, const char *ref_s,
		  const struct ep_registry_opts *o, json_t **report, struct ep_error *err);

/* pull: fetches them back into the store beside image digest; artifacts
 * whose subject is not digest are refused. */
int ep_trust_pull(struct ep_store *s, const char *digest, const char *ref_s,
		  const struct ep_registry_opts *o, json_t **report, struct ep_error *err);

#endif
