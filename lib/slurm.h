/* lib/slurm.h - envpin on a Slurm cluster (docs/slurm.md): the oci.conf that
 * makes `srun --container=BUNDLE` run envpin bundles, the runc calls behind
 * it (rootless in envpin's user namespace for a job of an ordinary user),
 * and the per-node certification report. */
#ifndef EP_SLURM_H
#define EP_SLURM_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* The text of oci.conf for Slurm 22.05 and later, calling `envpin_path
 * slurm oci ...` for RunTimeRun, RunTimeQuery, RunTimeKill and
 * RunTimeDelete.  Caller frees. */
char *ep_slurm_oci_conf(const char *envpin_path, struct ep_error *err);

enum ep_slurm_op { EP_SLURM_RUN, EP_SLURM_STATE, EP_SLURM_KILL, EP_SLURM_DELETE };

/* runc's state directory for the caller: /run/envpin/slurm-runc for root,
 * /tmp/envpin-runc-UID (created 0700, and refused when another user owns
 * it) otherwise: the same whoever asks, as Slurm runs RunTimeRun as the
 * job's user and may run the others as root.  Caller frees. */
char *ep_slurm_runc_root(struct ep_error *err);

/* Becomes the job's user (by name, Slurm's %u: its uid, gid and groups)
 * when running as root for another user's container, so that state, kill
 * and delete meet the container where the user's RunTimeRun made it.  A
 * no-op when the caller is that user already; EP_EENV when it cannot. */
int ep_slurm_become(const char *user, struct ep_error *err);

/* The runc argv for op on container id (bundle for RUN; sig for KILL, NULL:
 * SIGKILL to the container's init, which ends its PID namespace).  For a caller that is not root,
 * enters the single-mapping user namespace first (rootless.h), so runc runs as root inside it.  The
 * caller execs the result.  Release with ep_strvec_release. */
struct ep_strvec;
int ep_slurm_runc_argv(enum ep_slurm_op op, const char *id, const char *bundle, const char *sig,
		       struct ep_strvec *argv, struct ep_error *err);

/* Runs argv (ep_slurm_runc_argv's RUN) as a child and waits: returns its
 * exit status (128+N for a signal).  A stop request (SIGTERM, SIGINT,
 * SIGHUP, or the death of our parent: Slurm's task shell, after which
 * Slurm can no longer find runc) is passed to the container's init as
 * SIGTERM, and SIGKILL follows grace seconds later: a container whose
 * init ignores SIGTERM (as PID 1 does by default) still ends, instead of
 * outliving its step.  runc gets SIGKILL if we die. */
int ep_slurm_supervise(char *const argv[], const char *id, unsigned grace);

/* 1 when runc has state for id under ep_slurm_runc_root (a container
 * that was created and not deleted), else 0. */
int ep_slurm_container_exists(const char *id);

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
