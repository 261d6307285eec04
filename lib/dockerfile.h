/* lib/dockerfile.h - a Dockerfile equivalent to a manifest (docs/pip.md,
 * "envpin dockerfile"): for sites that build with Docker, and for readers
 * who think in Dockerfiles.  The text is a function of the manifest and the
 * lock only (sorted, no paths of this host), so dockerfiles/NAME.Dockerfile
 * can be checked against `envpin dockerfile -f manifests/NAME.json`.
 * Docker's result is equivalent, not bit-identical: only envpin pins the
 * bytes. */
#ifndef EP_DOCKERFILE_H
#define EP_DOCKERFILE_H

#include <jansson.h>

#include "error.h"
#include "manifest.h"

/* The Dockerfile of m.  lock (may be NULL) supplies pins: the debian
 * base's package versions, an image base's digest, the pip wheels with
 * their sha256.  Returns malloc'ed text (caller frees). */
char *ep_dockerfile(const struct ep_manifest *m, json_t *lock, struct ep_error *err);

#endif
