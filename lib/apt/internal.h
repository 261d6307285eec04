/* lib/apt/internal.h - what the files of lib/apt/ share and nobody else
 * uses. */
#ifndef EP_APT_INTERNAL_H
#define EP_APT_INTERNAL_H

#include <stdint.h>

#include "digest.h"
#include "error.h"

/* GETs url (http:// or https://, any host: what is fetched is trusted
 * through a signature or a pinned sha256, never the transport) into path
 * (created or truncated), at most max bytes, following redirects and
 * retrying transport failures.  *digest gets the sha256 of the bytes, *size
 * (may be NULL) their count, *status the last HTTP status (0: none). */
int ep_apt_download(const char *url, const char *path, uint64_t max, ep_digest digest,
		    uint64_t *size, long *status, struct ep_error *err);

#endif
