/* lib/source.h - the envpin source this binary was built from.
 *
 * Every lock records it (docs/lock.md "envpin_source"): the version, the
 * git commit, whether the tree had uncommitted changes, and the sha256 of
 * the source tarball (`git archive` of the commit, the bytes `make dist`
 * writes and `envpin vendor` ships).  It goes into the lock only, never
 * into an image: two envpins that build the same bytes give the same
 * digest whatever their commits. */
#ifndef EP_SOURCE_H
#define EP_SOURCE_H

#include <jansson.h>

#include "digest.h"
#include "error.h"

/* {"version","commit","dirty","tarball_sha256"} of this binary (new ref). */
json_t *ep_source_record(struct ep_error *err);

/* NULL when the lock's "envpin" version and "envpin_source" equal this
 * binary's; else a malloc'ed sentence naming what differs (a lock without
 * the record, from an older envpin, differs: it does not say). */
char *ep_source_differs(json_t *lock);

/* Writes the source tarball of this binary's commit to path (git archive
 * in the checkout it was built in) and checks its sha256 against the
 * recorded one.  EP_EENV when the checkout or git is not there. */
int ep_source_tarball(const char *path, ep_digest out, struct ep_error *err);

#endif
