/* lib/runcver.h - which runc the native engine runs, and whether it has the
 * fix for CVE-2024-21626 (runc leaked a host fd into the container; fixed
 * upstream in 1.1.12).  The rule (docs/run.md, "runc version"):
 *   - upstream 1.1.12 or later in 1.1, or 1.2 and later: fixed;
 *   - a distribution build whose `commit:` line is its package version and
 *     that carries a known backport: fixed (Debian 12: 1.1.5+ds1-1+deb12u1
 *     and later revisions of 1.1.5+ds1, compared as dpkg compares);
 *   - anything else: not fixed; `envpin run` refuses it unless
 *     ENVPIN_ALLOW_OLD_RUNC=1.
 * Only the binary's own `runc --version` is read: the runc on PATH need not
 * be the one a package manager installed. */
#ifndef EP_RUNCVER_H
#define EP_RUNCVER_H

#include <jansson.h>

#include "error.h"

struct ep_runc_version {
	char version[64]; /* "1.1.5+ds1", from the "runc version" line */
	char commit[96];  /* the "commit:" line: "v1.1.12-0-g51d5e94" or "1.1.5+ds1-1+deb12u1"; may
			     be "" */
	int major, minor, patch;
};

/* Parses the output of `runc --version`.  -1 (EP_EENV) when there is no
 * "runc version X.Y.Z" line. */
int ep_runc_version_parse(const char *text, struct ep_runc_version *v, struct ep_error *err);

/* 1 when this runc has the CVE-2024-21626 fix by the rule above, else 0. */
int ep_runc_cve_2024_21626_fixed(const struct ep_runc_version *v);

/* dpkg's ordering of two Debian version strings ([epoch:]upstream[-revision],
 * '~' sorting before everything): <0, 0, >0. */
int ep_debian_version_cmp(const char *a, const char *b);

/* Runs `runc --version` once per process (the runc found on PATH) and
 * parses it.  With store_root, the output is kept in
 * STORE/cache/runc-version.json keyed by the binary's path, device, inode,
 * size and times, so later processes do not start runc for it (about
 * 6 ms).  -1 with *err (EP_EENV) when runc cannot be found or run. */
int ep_runc_version(const char *store_root, struct ep_runc_version *v, struct ep_error *err);

/* ep_runc_version, then refuses (EP_EENV, naming the version and the fix)
 * a runc without the fix unless ENVPIN_ALLOW_OLD_RUNC=1.  v may be NULL. */
int ep_runc_check(const char *store_root, struct ep_runc_version *v, struct ep_error *err);

/* What the certificate records: {"name": "runc", "version", "commit",
 * "cve_2024_21626_fixed"}; new reference, NULL on allocation failure. */
json_t *ep_runc_version_json(const struct ep_runc_version *v);

#endif
