/* lib/runtime.h - `envpin run`: the OCI runtime bundle for runc (the native
 * engine) and the docker/podman engines (issue 4, design.md section 7).
 *
 * Native engine, per run:
 *   STORE/run/<id>/lock         flock held by envpin and its cleanup watchdog
 *   STORE/run/<id>/config.json  the OCI runtime spec written here
 *   STORE/run/<id>/rootfs       overlayfs: lowerdir = the per-layer rootfs
 *                               cache (ep_layer_rootfs), top layer first;
 *                               mounted in a private mount namespace, so the
 *                               mount dies with envpin's processes
 *   STORE/run/<id>/upper, work  overlay upper/work dirs (the container's writes)
 *   STORE/run/runc/<id>         runc's state (runc --root STORE/run/runc)
 * Without overlayfs the rootfs is a flattened copy (ep_unpack_image).  The
 * bundle, the mount and the runc state are removed when the container exits,
 * also when envpin is killed (a watchdog process does it), unless `keep`.
 *
 * Trust: the image config is data.  Env, Entrypoint, Cmd, User and
 * WorkingDir shape the container process only; WorkingDir must be absolute,
 * clean and outside /proc; Volumes, Labels, StopSignal, Healthcheck,
 * ExposedPorts are ignored.  Host paths come from the user (-v, $PWD) and
 * from the GPU plan, never from the image.  Mount targets, /dev, /proc,
 * /sys and /etc/{hosts,resolv.conf,hostname} are created by envpin inside
 * the root (openat2 RESOLVE_IN_ROOT), replacing image symlinks there. */
#ifndef EP_RUNTIME_H
#define EP_RUNTIME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "gpu.h"
#include "image.h"
#include "store.h"

enum ep_engine {
	EP_ENGINE_AUTO = 0, /* see ep_engine_pick */
	EP_ENGINE_NATIVE,
	EP_ENGINE_DOCKER,
	EP_ENGINE_PODMAN,
};

/* Parses "auto", "native", "docker", "podman"; -1 if none. */
int ep_engine_parse(const char *s);
const char *ep_engine_name(enum ep_engine e);

/* Exit statuses of envpin's own failures, as docker run uses them. */
enum {
	EP_RUN_EFAIL = 125,   /* envpin (or the runtime) failed */
	EP_RUN_ENOEXEC = 126, /* the command cannot be executed */
	EP_RUN_ENOENT = 127,  /* the command was not found */
};

/* One -v SRC:DST[:ro|:rw], parsed once (ep_runtime_volume). */
struct ep_volume {
	char *src; /* absolute host path, symlinks resolved */
	char *dst; /* clean absolute container path */
	int ro;
};

/* What `run` was asked for, parsed once by the front end: volumes parsed,
 * the working dir checked (ep_runtime_check_cpath). */
struct ep_run_opts {
	enum ep_engine engine;
	const char *gpus;      /* "auto" or NULL (GPUs when the host has a driver), "none", "all", "0,1", "GPU-uuid" */
	const struct ep_volume *volumes;
	size_t n_volumes;
	const char **env;      /* "K=V", or "K" to pass envpin's own value */
	size_t n_env;
	const char **ports;    /* "HOST:CONTAINER[/tcp|udp]", docker/podman only */
	size_t n_ports;
	const char *workdir;   /* -w; NULL: /workspace (or the image's WorkingDir without a workspace) */
	const char *user;      /* --user NAME|UID[:GROUP|GID]; NULL: the image's User */
	const char *name;      /* container name; NULL: envpin-<random> */
	char *const *cmd;      /* command replacing the image Cmd (NULL or empty: image Cmd) */
	size_t n_cmd;
	int keep;              /* keep the bundle (config.json, upper dir) after exit */
	int tty;               /* -1: when stdin is a terminal; 0 no; 1 yes */
	int interactive;       /* -i: the container reads envpin's stdin; without it (and
				  without a terminal) its stdin is /dev/null */
	int detach;            /* -d: start, record the container in the store
				  (lib/containers.h), return; its output goes to a log */
	int no_workspace;      /* do not mount $PWD at /workspace */
	int no_entrypoint;     /* ignore the image's Entrypoint: cmd is the whole command */
	/* native engine, a first run: unpacking the layers (ep_progress_fn); may be NULL */
	void (*progress)(void *ctx, const char *what, uint64_t done, uint64_t total);
	void *pctx;
};
void ep_run_opts_init(struct ep_run_opts *o);

/* The engine `want` means here: auto is native when runc is installed and
 * envpin runs as root or can create a user namespace (rootless, see
 * docs/rootless.md), else docker when this user can reach its daemon,
 * else podman.  Refuses (EP_EENV, naming the ways out) docker when its
 * daemon is out of this user's reach. */
int ep_engine_pick(enum ep_engine want, enum ep_engine *out, struct ep_error *err);

/* Runs the image img (resolved once by the caller: ep_image_locate) and
 * waits for it.  Returns 0
 * with *status set to the container's exit status (128+N for a signal), or
 * -1 with *err filled and *status set to EP_RUN_EFAIL, or EP_RUN_ENOENT /
 * EP_RUN_ENOEXEC when the command could not be found / executed.  With the
 * docker and podman engines the process is replaced by the engine's CLI
 * (exec) once the image is loaded, so a successful call does not return. */
int ep_run(struct ep_store *s, const struct ep_image_loc *img, const struct ep_run_opts *o,
	   int *status, struct ep_error *err);

/* `envpin bundle`: an OCI runtime bundle in the new directory dir
 * (dir/config.json, dir/rootfs: the image flattened) for runc or Slurm's
 * `srun --container=dir`.  The spec is the rootless one (docs/rootless.md:
 * GPU nodes bound, no cgroup rules, /sys bound), so it runs under runc as
 * root and in a user namespace alike; no workspace mount (o->no_workspace
 * is implied).  o->gpus picks the GPUs as for a run. */
int ep_run_bundle_dir(const struct ep_image_loc *loc, const json_t *info, const char *dir,
		      const struct ep_run_opts *o, struct ep_error *err);

/* What a certificate remembers of this host for a run with --gpus gpus on
 * engine (auto resolved as ep_engine_pick does): {"driver_version",
 * "gpus": [{"index","uuid","name"}], "driver_files": [{"path",
 * "host_path","kind","size","mtime"}], "cdi_spec"?, "runtime": {"engine",
 * "version"}}.  A certificate is still valid here while these are equal.
 * New reference. */
json_t *ep_run_host_facts(const char *gpus, enum ep_engine engine, struct ep_error *err);

/* ---- pieces, exposed for tests and for a second front end ---- */

/* Checks that a container path is absolute and clean: no "." or ".."
 * components, no "//", no trailing "/", at most 4095 bytes, not /proc or
 * below.  `what` names it in the error (EP_EINVAL). */
int ep_runtime_check_cpath(const char *path, const char *what, struct ep_error *err);

/* The process a container runs: entrypoint + (cmd if given, else the image
 * Cmd), like docker.  Returns a new JSON array of strings; an empty result
 * is EP_EINVAL ("no command").  image_cfg is the image config's "config"
 * object (may be NULL). */
json_t *ep_runtime_args(const json_t *image_cfg, char *const *cmd, size_t n_cmd,
			int no_entrypoint, struct ep_error *err);

/* The environment: image Env, then the GPU plan's, then user -e (later
 * wins; "K" takes envpin's own value, or is dropped if unset).  PATH gets
 * the usual default when nobody set it, TERM=xterm with a tty. */
json_t *ep_runtime_env(const json_t *image_cfg, const struct ep_gpu_plan *gpu, const char **env,
		       size_t n_env, int tty, struct ep_error *err);

/* Resolves a user spec ("name", "uid", "name:group", "uid:gid"; NULL or ""
 * is root) against ROOT/etc/passwd and ROOT/etc/group, read with a bounded
 * parser inside root_fd (no NSS: the image's files are data).  A numeric
 * uid missing from passwd gets gid = uid's passwd entry or 0.  extra gets
 * the supplementary groups that list the user (caller frees, may be NULL). */
int ep_runtime_user(int root_fd, const char *spec, uid_t *uid, gid_t *gid, gid_t **extra,
		    size_t *n_extra, struct ep_error *err);

struct ep_spec_params {
	const json_t *image_cfg;         /* image config "config" object, may be NULL */
	const struct ep_run_opts *o;
	const struct ep_gpu_plan *gpu;   /* NULL or empty: no GPU */
	const char *rootfs;              /* path runc uses as root.path */
	const char *workspace;           /* host dir mounted at /workspace, NULL for none */
	const char *hostname;
	uid_t uid;
	gid_t gid;
	const gid_t *extra_gids;
	size_t n_extra_gids;
	int tty;                         /* resolved: 0 or 1 */
	const char *host_root;           /* prefix for /etc/hosts etc. sources, NULL for "/" */
	const char *gpu_files_dir;       /* where gpu->files[i] were written as "<i>" */
	int rootless;                    /* runc runs in envpin's user namespace: GPU device
					    nodes are bind mounts, no cgroup rules, /sys bound */
};

/* The OCI runtime spec (config.json) for runc: namespaces pid, ipc, uts,
 * mount (host network), docker's default capabilities, no-new-privileges, a
 * seccomp deny-list, masked and read-only /proc and /sys paths, rlimits
 * from getrlimit (never above the hard limit), the workspace, -v mounts,
 * /etc/hosts, /etc/resolv.conf and /etc/hostname read-only from the host,
 * and the GPU plan's devices (with cgroup allow rules), mounts (the plan's
 * type and options), files (bind-mounted read-only; those under /proc are
 * skipped: runc refuses mounts there), CDI hooks and /dev/shm size.  New
 * reference. */
json_t *ep_runtime_spec(const struct ep_spec_params *p, struct ep_error *err);

/* Parses "-v SRC:DST[:ro|:rw]" into *v (ep_volume_release frees it): SRC
 * made absolute against the current dir with symlinks resolved.  EP_EINVAL
 * on a bad spec, a relative or unclean DST, or a SRC that does not exist. */
int ep_runtime_volume(const char *spec, struct ep_volume *v, struct ep_error *err);
void ep_volume_release(struct ep_volume *v);

#endif
