/* lib/ref.h - image references: [HOST[:PORT]/]REPO[:TAG][@sha256:HEX].
 *
 * Docker's rules: the first component is a host when it contains '.' or ':'
 * or is "localhost"; otherwise the host is docker.io and a one-component
 * repository gets "library/".  A reference with neither tag nor digest means
 * ":latest".  Everything is checked against the distribution grammar before
 * any of it reaches a URL or a path. */
#ifndef EP_REF_H
#define EP_REF_H

#include "digest.h"
#include "error.h"

struct ep_ref {
	char *host;      /* as written for credentials and certs.d: "docker.io", "127.0.0.1:5000" */
	char *api_host;  /* where the API lives: "registry-1.docker.io" for docker.io, else host */
	char *repo;      /* "library/debian", "x/y" */
	char *tag;       /* NULL when only a digest was given */
	ep_digest digest; /* "" when only a tag was given */
	int loopback;    /* host is 127.0.0.0/8, ::1 or localhost: plain HTTP allowed */
};

/* Parses s into *r (r is overwritten; release with ep_ref_release).
 * Invalid references: EP_EINVAL quoting s and saying which part is wrong. */
int ep_ref_parse(const char *s, struct ep_ref *r, struct ep_error *err);
void ep_ref_release(struct ep_ref *r);

/* Canonical text "HOST/REPO[:TAG][@DIGEST]".  Caller frees. */
char *ep_ref_format(const struct ep_ref *r, struct ep_error *err);

/* True if host (with optional ":port", IPv6 in brackets) is loopback. */
int ep_host_is_loopback(const char *host);

/* Copies the name of "host[:port]" or "[v6addr][:port]" into out, without
 * brackets or port.  -1 when it does not fit or a bracket is empty or not
 * closed. */
int ep_host_name(const char *host, char *out, size_t len);

#endif
