/* lib/manifest.h - envpin manifest v1 (docs/manifest.md): parsing and
 * validation.  Every error names the file, the line where the JSON gives
 * one, and the field path, e.g.
 *   "m.json:14: layers[1].copy[0].dest: '../x' leaves the image root"
 * and has code EP_EINVAL.  Paths in the manifest are relative to its
 * directory; src paths are resolved to absolute paths here. */
#ifndef EP_MANIFEST_H
#define EP_MANIFEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define EP_MANIFEST_VERSION 1
#define EP_MANIFEST_MAX_BYTES (1u << 20)

enum ep_base_kind {
	EP_BASE_SCRATCH,
	EP_BASE_ROOTFS, /* {"rootfs": PATH, "sha256": HEX} */
	EP_BASE_OCI,    /* {"oci": PATH, "digest": "sha256:..."} */
	EP_BASE_IMAGE,  /* {"image": REF} */
	EP_BASE_DEBIAN, /* {"debian": {suite, variant, mirror, packages}} */
};

struct ep_base {
	enum ep_base_kind kind;
	char *path;   /* ROOTFS/OCI: absolute path */
	char *sha256; /* ROOTFS: 64 lowercase hex */
	char *digest; /* OCI: "sha256:..." */
	char *image;  /* IMAGE: reference as written */
	char *suite, *variant, *mirror; /* DEBIAN */
	char **packages;                /* DEBIAN: NULL-terminated */
	size_t n_packages;
};

enum ep_step_kind { EP_STEP_COPY, EP_STEP_APT, EP_STEP_FETCH, EP_STEP_PIP, EP_STEP_RUN };

struct ep_copy {
	char *src;      /* as written */
	char *src_path; /* absolute host path (exists: checked at load) */
	char *dest;     /* absolute image path, normalized ("/opt/x" or "/opt/x/") */
	int mode;       /* -1 when not given, else 0..07777 */
	int64_t uid, gid; /* from "owner": "UID:GID"; 0 when not given */
	int line;
};

struct ep_fetch {
	char *url;
	char *sha256; /* 64 hex */
	char *dest;   /* absolute image path */
	int extract;
	int line;
};

struct ep_step {
	enum ep_step_kind kind;
	int line;
	size_t n;                 /* number of items / argv words */
	struct ep_copy *copy;     /* COPY: n items */
	struct ep_fetch *fetch;   /* FETCH: n items */
	char **words;             /* APT/PIP: package specs; RUN: argv (NULL-terminated) */
	json_t *raw;              /* the step's JSON object (borrowed from root) */
};

struct ep_manifest {
	char *path;    /* as given */
	char *dir;     /* absolute directory of the manifest */
	char *name;    /* "name", or the file name without ".json" when absent */
	int64_t source_date_epoch;
	struct ep_base base;
	struct ep_step *steps;
	size_t n_steps;
	json_t *config; /* validated "config" object (borrowed from root), or NULL */
	json_t *check;  /* "check" object or NULL */
	json_t *root;   /* whole document (owned) */
	json_t *lines;  /* field path -> line, for ep_manifest_line (owned) */
};

/* Loads and validates path.  Returns NULL with EP_EINVAL on any error. */
struct ep_manifest *ep_manifest_load(const char *path, struct ep_error *err);
/* The same for a manifest already in memory (buf need not be NUL-terminated);
 * path names it in messages and its directory anchors relative paths, as if
 * the file had been read from there (the fuzzers use this). */
struct ep_manifest *ep_manifest_loadb(const char *path, const char *buf, size_t len,
				      struct ep_error *err);
void ep_manifest_free(struct ep_manifest *m);

/* Line of a field, named by its path as in error messages
 * ("layers[1].copy[0].dest", "config.labels[\"org.x\"]"); 0 if unknown.
 * Lets later stages (build, lock) point at the manifest line of a step. */
int ep_manifest_line(const struct ep_manifest *m, const char *field);

/* dir/NAME.json -> dir/NAME.lock.json (any other name: NAME + ".lock.json").
 * Caller frees. */
char *ep_manifest_lock_path(const char *manifest_path, struct ep_error *err);

#endif
