/* lib/registry.h - a client of the OCI distribution API (pull, push, login).
 *
 * Trust rules (docs/registry.md):
 *  - every manifest and blob is hashed while it is written to a store
 *    transaction and checked against its digest (and descriptor size) before
 *    it is staged; a Docker-Content-Digest header that disagrees is an error;
 *  - manifests (EP_MAX_MANIFEST_BYTES), configs (EP_MAX_CONFIG_BYTES), tokens
 *    and error bodies (64 KiB) are read with caps;
 *  - a document with both "manifests" and "config"/"layers", or whose
 *    mediaType disagrees with its fields or with Content-Type, is refused;
 *  - redirects are followed here, one hop at a time (at most 10), and the
 *    Authorization header goes only to the registry's own origin
 *    (scheme, host, port), never to blob storage elsewhere;
 *  - HTTPS with verification; http only for loopback registries;
 *  - a bearer realm must be https (http only on loopback) and may not be a
 *    private or loopback address unless it is the registry's own host.
 * Transport failures, 429 and 5xx are retried with backoff (Retry-After is
 * honoured, capped at 10 s); a broken blob download resumes with Range. */
#ifndef EP_REGISTRY_H
#define EP_REGISTRY_H

#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "oci.h"
#include "ref.h"
#include "store.h"

struct ep_registry_opts {
	const char *ca_file;  /* --ca-cert; NULL: /etc/docker/certs.d/HOST/ca.crt if present
			       * ($ENVPIN_CERTS_D replaces /etc/docker/certs.d), else system CAs */
	const char *platform; /* "os/arch[/variant]"; NULL: linux/amd64 */
	int jobs;             /* parallel blob transfers; 0: 4 ($ENVPIN_JOBS overrides) */
	ep_progress_fn progress;
	void *pctx;
};

struct ep_pull_result {
	ep_digest manifest_digest; /* the image manifest stored (platform manifest) */
	ep_digest index_digest;    /* the index it was chosen from, "" if none */
	uint64_t manifest_size;
	size_t n_blobs;            /* config + layers */
	size_t n_fetched;          /* blobs downloaded (the rest were in the store) */
	uint64_t bytes_fetched;
};

/* Pulls ref_s (tag or digest) into the store: manifest, config and layers,
 * each verified; the image is added to index.json with tag `tag` (NULL: the
 * canonical reference "HOST/REPO:TAG"; a digest-only reference adds no tag).  Nothing is stored unless the whole pull succeeds. */
int ep_pull(struct ep_store *s, const char *ref_s, const char *tag,
	    const struct ep_registry_opts *o, struct ep_pull_result *res, struct ep_error *err);

/* Resolves ref_s to the digest of its image manifest for the platform,
 * fetching (and verifying) only manifests.  A reference that carries a
 * digest of an image manifest needs no network when the store has it. */
int ep_registry_resolve(struct ep_store *s, const char *ref_s, const struct ep_registry_opts *o,
			ep_digest out, struct ep_error *err);

struct ep_push_result {
	ep_digest manifest_digest;
	size_t n_blobs, n_uploaded, n_existing, n_mounted;
	uint64_t bytes_uploaded;
};

/* Pushes image (as for ep_store_resolve) to ref_s.  Blobs the registry has
 * are skipped (HEAD), blobs this store pulled from another repository of the
 * same registry are mounted, the rest are uploaded in parallel; then the
 * manifest, whose Docker-Content-Digest must match. */
int ep_push(struct ep_store *s, const char *image, const char *ref_s,
	    const struct ep_registry_opts *o, struct ep_push_result *res, struct ep_error *err);

/* Checks user/password against host's /v2/ (basic or bearer) and stores them
 * as auths.HOST.auth in the docker config (mode 0600, other entries kept).
 * *config_path (may be NULL) gets the file written; caller frees. */
int ep_login(const char *host, const char *user, const char *password,
	     const struct ep_registry_opts *o, char **config_path, struct ep_error *err);

/* Documents beside images (lib/trust: signatures, OCI 1.1 artifacts and
 * referrers).  ref_s names the repository (its tag or digest is ignored).
 *
 * ep_registry_fetch_doc stages into txn the manifest or index `reference`
 * (a tag or a digest) and, for a manifest, its config and layers (each
 * digest-checked, at most max_blob bytes; blobs the store has are not
 * fetched).  Returns 1 when the registry has no such manifest (404), 0 when
 * staged (digest gets its digest; *doc, when doc is non-NULL, the parsed
 * document), -1 on error. */
int ep_registry_fetch_doc(struct ep_txn *txn, const char *ref_s, const char *reference,
			  size_t max_blob, const struct ep_registry_opts *o, ep_digest digest,
			  json_t **doc, struct ep_error *err);

/* Pushes the manifest or index blob `digest` of the store (for a manifest,
 * its config and layers first, skipping those the registry has) under tag
 * (NULL: by digest only). */
int ep_registry_push_doc(struct ep_store *s, const char *digest, const char *ref_s, const char *tag,
			 const struct ep_registry_opts *o, struct ep_error *err);

/* GET /v2/REPO/referrers/DIGEST (OCI 1.1).  0 with *index (new reference),
 * 1 when the registry has no referrers API (404, 400, 405), -1 on error. */
int ep_registry_referrers(const char *ref_s, const char *digest, const struct ep_registry_opts *o,
			  json_t **index, struct ep_error *err);

/* $DOCKER_CONFIG/config.json or ~/.docker/config.json.  Caller frees. */
char *ep_docker_config_path(struct ep_error *err);

/* Classifies an untrusted manifest/index document.  Returns 1 for an image
 * manifest, 2 for an index, -1 (EP_EINVAL) for anything ambiguous or
 * malformed.  content_type may be NULL. */
int ep_registry_doc_kind(json_t *doc, const char *content_type, struct ep_error *err);

/* Parses a WWW-Authenticate value; returns the scheme ("Bearer", "Basic")
 * and fills realm/service/scope (each may be set to NULL).  Caller frees
 * all four.  NULL + EP_EINVAL on malformed input. */
char *ep_parse_www_authenticate(const char *v, char **realm, char **service, char **scope,
				struct ep_error *err);

#endif
