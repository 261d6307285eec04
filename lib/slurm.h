/* lib/slurm.h - envpin on a Slurm cluster (docs/slurm.md): the oci.conf that
 * makes `srun --container=BUNDLE` run envpin bundles, the runc calls behind
 * it (rootless in envpin's user namespace for a job of an ordinary user),
 * and the per-node certification report. */
#ifndef EP_SLURM_H
#define EP_SLURM_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* The text of oci.conf for Slurm 22.05 and later, calling `envpin_path
 * slurm oci ...` for RunTimeRun, RunTimeQuery, RunTimeKill and
 * RunTimeDelete.  Caller frees. */
char *ep_slurm_oci_conf(const char *envpin_path, struct ep_error *err);

enum ep_slurm_op { EP_SLURM_RUN, EP_SLURM_STATE, EP_SLURM_KILL, EP_SLURM_DELETE };

/* runc's state directory for the caller: /run/envpin/slurm-runc for root,
 * $XDG_RUNTIME_DIR/envpin-runc or /tmp/envpin-runc-UID (created 0700, and
 * refused when another user owns it) otherwise.  Caller frees. */
char *ep_slurm_runc_root(struct ep_error *err);

/* The runc argv for op on container id (bundle for RUN; sig for KILL, NULL:
 * SIGKILL to every process).  For a caller that is not root, enters the
 * single-mapping user namespace first (rootless.h), so runc runs as root
 * inside it.  The caller execs the result.  Release with ep_strvec_release. */
struct ep_strvec;
int ep_slurm_runc_argv(enum ep_slurm_op op, const char *id, const char *bundle, const char *sig,
		       struct ep_strvec *argv, struct ep_error *err);

/* One certificate per node: node[i] names files[i] (NULL: from the file
 * name, "cert-NODE.json" -> NODE).  The report:
 *   {"image": digest|null, "images_agree", "nodes": [{"node", "file", "result",
 *    "reasons", "driver_version", "gpus", "fingerprint": "reference"|"match"|
 *    "differs"|"none", "differences"?}], "passed", "failed",
 *    "fingerprints_agree", "reference_node", "result": "pass"|"fail"}
 * A node passes when its certificate's result is pass.  Fingerprints are
 * compared with the first passing node's (ep_cert_compare_fingerprints).
 * An unreadable certificate is a failed node whose reason says why. */
json_t *ep_certs_merge(const char *const *files, const char *const *nodes, size_t n,
		       struct ep_error *err);

#endif
