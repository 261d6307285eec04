/* lib/trust/sbom.h - a software bill of materials for an image, from the
 * lock kept beside it and from the image's own files (docs/sbom.md).
 *
 * Components: every Debian package of the image's dpkg status database
 * (pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-N), every wheel of the
 * lock (pkg:pypi/NAME@VERSION, with its sha256), every fetched file (URL and
 * sha256) and the base (rootfs tar sha256, or image digest).  Licenses come
 * from machine-readable /usr/share/doc/PKG/copyright `License:` fields and
 * from wheels' METADATA (License-Expression, license classifiers, License),
 * mapped to SPDX identifiers where one exists, else LicenseRef-NAME.
 * Everything is read from the image's layers in the store (whiteouts
 * honoured); nothing runs.  The output depends only on the image and its
 * lock: the timestamp is the lock's source_date_epoch. */
#ifndef EP_TRUST_SBOM_H
#define EP_TRUST_SBOM_H

#include <jansson.h>

#include "error.h"
#include "store.h"

enum ep_sbom_format { EP_SBOM_SPDX = 0, EP_SBOM_CYCLONEDX = 1 };

/* The components of image digest, before formatting (new reference):
 * {"image", "name", "created", "lock_digest", "distro",
 *  "components": [{"kind": "deb"|"wheel"|"file"|"base", "name", "version",
 *                  "purl", "sha256", "url", "license", "arch"}],
 *  "license_refs": {"LicenseRef-X": "where it was declared"}}
 * name: the image's name in the documents (NULL: the lock's manifest file
 * name).  An image without a lock in the store: EP_EINVAL. */
json_t *ep_sbom_collect(struct ep_store *s, const char *digest, const char *name,
			struct ep_error *err);

/* SPDX 2.3 JSON or CycloneDX 1.5 JSON from ep_sbom_collect's result (new
 * reference). */
json_t *ep_sbom_format(json_t *collected, enum ep_sbom_format fmt, struct ep_error *err);

/* An SPDX license expression for a Debian copyright file's text (machine-
 * readable format only; NULL without error otherwise).  LicenseRef-s it
 * uses are added to refs ({id: what}).  Caller frees. */
char *ep_sbom_debian_license(const char *copyright, const char *pkg, json_t *refs,
			     struct ep_error *err);

#endif
