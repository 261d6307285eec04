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
	char *src_path; /* absolute host path (exists: checked at load); NULL with from */
	char *from;	/* "from": a stage name (src is then an absolute path of that
			 * stage's final rootfs, normalized like dest), or NULL */
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

/* A run step's read-only bind mount: host src (relative to the manifest
 * directory, staying inside it, as copy sources) at image path dest. */
struct ep_mount {
	char *src;	/* as written */
	char *src_path; /* absolute host path (exists: checked at load) */
	char *dest;	/* absolute image path, normalized, no trailing '/' */
	int line;
};

/* The options of a run step (absent ones are NULL / 0). */
struct ep_run_opts_m {
	char **env; /* "K=V", sorted by K (NULL-terminated) */
	size_t n_env;
	char *workdir; /* absolute image path, normalized; NULL: "/" */
	char *user;    /* "UID:GID" (numeric); NULL: "0:0" */
	struct ep_mount *mounts;
	size_t n_mounts;
};

struct ep_step {
	enum ep_step_kind kind;
	int line;
	size_t n;                 /* number of items / argv words */
	struct ep_copy *copy;     /* COPY: n items */
	struct ep_fetch *fetch;   /* FETCH: n items */
	char **words;             /* APT/PIP: package specs; RUN: argv (NULL-terminated) */
	struct ep_run_opts_m run; /* RUN: env, workdir, user, mounts */
	json_t *raw;              /* the step's JSON object (borrowed from root) */
};

/* A build stage ("stages": {NAME: {"base": ..., "layers": [...]}}): built
 * like an image, never stored as one; copy items name it with "from". */
struct ep_stage {
	char *name;
	int line;
	struct ep_base base;
	struct ep_step *steps;
	size_t n_steps;
	char **needs; /* stages its copy steps name, in first-use order (NULL-terminated) */
	size_t n_needs;
};

struct ep_manifest {
	char *path;    /* as given */
	char *dir;     /* absolute directory of the manifest */
	char *name;    /* "name", or the file name without ".json" when absent */
	int64_t source_date_epoch;
	struct ep_base base;
	struct ep_step *steps;
	size_t n_steps;
	struct ep_stage *stages; /* in the manifest's key order */
	size_t n_stages;
	char **needs; /* stages the top-level layers copy from, in first-use
		       * order (NULL-terminated): build order is a depth-first
		       * walk of needs (no cycles: refused at load) */
	size_t n_needs;
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

/* The stage named name, or NULL. */
const struct ep_stage *ep_manifest_stage(const struct ep_manifest *m, const char *name);

/* dir/NAME.json -> dir/NAME.lock.json (any other name: NAME + ".lock.json").
 * Caller frees. */
char *ep_manifest_lock_path(const char *manifest_path, struct ep_error *err);

#endif
