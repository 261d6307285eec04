/* lib/jsonutil.h - JSON helpers on top of jansson: bounded loading with
 * errors that name file and line, and the canonical encoding used for every
 * digest-bearing document (sorted keys, compact, no trailing newline). */
#ifndef EP_JSONUTIL_H
#define EP_JSONUTIL_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* Limits for untrusted JSON (manifests, OCI documents, HTTP bodies). */
#define EP_JSON_MAX_BYTES (4u << 20) /* 4 MiB */
#define EP_JSON_MAX_DEPTH 32

/* Parses buf (len bytes) as JSON; `what` names the source in errors
 * ("'x.json'" or "manifest sha256:…").  Refuses more than max bytes and
 * nesting deeper than EP_JSON_MAX_DEPTH.  Returns a new reference. */
json_t *ep_json_loadb(const char *buf, size_t len, size_t max, const char *what,
		      struct ep_error *err);

/* Reads and parses a file with ep_json_loadb; the message names the path. */
json_t *ep_json_load_file(const char *path, size_t max, struct ep_error *err);

/* Canonical encoding: JSON_SORT_KEYS | JSON_COMPACT, UTF-8, no newline.
 * Returns malloc'ed text (caller frees) and its length. */
char *ep_json_canonical(const json_t *j, size_t *len, struct ep_error *err);

/* Pretty encoding for humans (indent 2, sorted keys, trailing newline). */
char *ep_json_pretty(const json_t *j, struct ep_error *err);

/* Maximum nesting depth of j (a scalar has depth 0). */
int ep_json_depth(const json_t *j);

/* A new JSON array of the n strings v[]; NULL when out of memory or a
 * string is not UTF-8. */
json_t *ep_json_strings(const char *const *v, size_t n);

#endif
