/* lib/runstep.h - running a command inside the image being built (the
 * `run` build step, and any step that needs a program of the image: apt's
 * dpkg, a compiler in a build stage).
 *
 * The command runs through envpin's launcher (lib/run: the OCI runtime spec
 * of ep_runtime_spec, runc), in a sandbox that makes its output a function
 * of its inputs (design.md section 10, docs/manifest.md "run"):
 *   - root: an overlay whose lower is the image built so far (one flattened
 *     directory, never modified) and whose upper dir becomes the layer;
 *   - an empty network namespace (loopback only: the host's 127.0.0.1 is
 *     out of reach), hostname "envpin-build", no workspace, no GPU, no host
 *     /etc/hosts or /etc/resolv.conf, stdin /dev/null, umask 022;
 *   - environment exactly PATH (the image's, else the default), HOME=/root,
 *     SOURCE_DATE_EPOCH, TZ=UTC, LC_ALL=C.UTF-8, then the step's own env;
 *   - extra read-only bind mounts (the step's "mounts", apt's package dir).
 * The upper dir is read into a layer tree with ep_tree_add_upper (whiteouts,
 * clamped mtimes, the profile's drop rules).  Needs root (runc, overlayfs).
 *
 * Inside lib/build.c, use run_in_image() there: it keeps the flattened
 * rootfs of the image built so far up to date, gives a work dir inside the
 * build's store transaction (so a failed build leaves the store as it was)
 * and formats a failing step's message (file:line, last output lines). */
#ifndef EP_RUNSTEP_H
#define EP_RUNSTEP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "layer.h"

#define EP_RUNSTEP_HOSTNAME "envpin-build"
#define EP_RUNSTEP_TAIL_LINES 20

struct ep_runstep_mount {
	const char *src;  /* host file or directory, absolute */
	const char *dest; /* absolute image path, clean (no "." or "..") */
};

struct ep_runstep_opts {
	char *const *argv; /* argv[0] is looked up in PATH inside the image */
	size_t argc;
	char *const *env; /* "K=V" set after the fixed environment (later wins) */
	size_t n_env;
	const char *path;    /* PATH inside: the image's; NULL: the default */
	const char *workdir; /* absolute; NULL: "/" (created if missing, as docker does) */
	const char *user;    /* numeric "UID:GID"; NULL: "0:0" */
	const struct ep_runstep_mount *mounts; /* read-only bind mounts */
	size_t n_mounts;
	int64_t source_date_epoch; /* SOURCE_DATE_EPOCH and the mtime clamp */
};

struct ep_runstep_result {
	int status; /* the command's exit status; 128+N for signal N; 125: runc failed */
	char *tail; /* its last output lines (stdout and stderr interleaved, at most
		     * EP_RUNSTEP_TAIL_LINES), NUL-terminated, maybe empty */
	char *log;  /* path of its whole output (work/output.log) */
};
void ep_runstep_result_release(struct ep_runstep_result *r);

/* Runs o->argv on the rootfs directory `lower` (read-only to the command:
 * it writes to an overlay upper dir).  work: a directory this call fills
 * (bundle, upper dir, runc state, output log); the caller removes it, after
 * the last ep_tree_write of *tree, whose file data stays in work/upper.
 * spool: ep_tree_new's spool dir.  Returns 0 when the command ran: r->status
 * is its status, and *tree (caller frees) is the normalized layer when the
 * status is 0, NULL otherwise.  Returns -1 with err (EP_EENV: not root, no
 * runc, mount failed; EP_EINVAL: bad options) when it could not run. */
int ep_runstep_exec(const char *lower, const char *work, const char *spool,
		    const struct ep_runstep_opts *o, struct ep_tree **tree,
		    struct ep_runstep_result *r, struct ep_error *err);

#endif
