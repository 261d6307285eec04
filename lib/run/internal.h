/* lib/run/internal.h - what the files of lib/run/ share; not an API (the
 * API is lib/runtime.h).
 *
 *   run.c     ep_run: picks the engine, resolves the image, the GPU plan
 *   spec.c    the OCI runtime spec: process, mounts, isolation (caps,
 *             seccomp, masked paths), devices, hooks
 *   bundle.c  the native engine: bundle dir, overlay, watchdog, runc
 *   engine.c  the docker and podman engines (their CLI)
 *   user.c    user, volume and container-path checks
 *   inroot.c  paths inside the container's root (openat2 RESOLVE_IN_ROOT) */
#ifndef EP_RUN_INTERNAL_H
#define EP_RUN_INTERNAL_H

#include <jansson.h>
#include <string.h>
#include <sys/types.h>

#include "error.h"
#include "gpu.h"
#include "image.h"
#include "runtime.h"
#include "store.h"
#include "util.h"

#define EP_RUN_DEFAULT_SHM (64ull << 20)

/* runc refuses bind mounts inside /proc (docs/run.md). */
static inline int ep_run_under_proc(const char *p)
{
	return !strcmp(p, "/proc") || !strncmp(p, "/proc/", 6);
}

/* ---- run.c ---- */

/* 1 when bin is an executable in $PATH (or the default PATH). */
int ep_run_on_path(const char *bin);
/* Runs argv and waits; stdout (and stderr when quiet) go to /dev/null.
 * Returns the exit status, or -1 when it could not start. */
int ep_run_quiet(char *const argv[], int quiet_stderr);
/* The first line argv prints on stdout (bounded, stdin and stderr on
 * /dev/null), or NULL.  Caller frees. */
char *ep_run_first_line(char *const argv[]);
/* "envpin-" and 12 random hex digits. */
int ep_run_random_id(char out[32], struct ep_error *err);
/* The GPU plan for --gpus (auto: all when the host has a driver).  rootfs
 * (may be NULL) picks the container's lib dir.  *have is 0 for no GPU. */
int ep_run_gpu_plan(const char *gpus, const json_t *cfg, const char *rootfs,
		    struct ep_gpu_plan *plan, int *have, struct ep_error *err);

/* ---- state.c: records of detached containers (lib/containers.h) ---- */

/* STORE/containers/NAME (name checked); caller frees. */
char *ep_container_dir(struct ep_store *s, const char *name, struct ep_error *err);
/* Replaces dir/state.json with state (atomically). */
int ep_container_write_state(const char *dir, const json_t *state, struct ep_error *err);
/* pid's start time in clock ticks since boot, 0 when it is gone. */
unsigned long long ep_proc_start_time(pid_t pid);

/* ---- bundle.c ---- */

/* Runs the image with runc in a bundle under STORE/run; waits. */
int ep_run_native(struct ep_store *s, const struct ep_image_loc *loc, const json_t *info,
		  const struct ep_run_opts *o, int tty, int *status, struct ep_error *err);

/* ---- engine.c ---- */

/* Loads the image into bin ("docker" or "podman") when it lacks it, then
 * execs `bin run ...`; returns only on failure. */
int ep_run_cli(const char *bin, const struct ep_image_loc *loc, const json_t *info,
	       const struct ep_run_opts *o, const struct ep_gpu_plan *gpu, const char *gpus,
	       int tty, struct ep_store *s, int *status, struct ep_error *err);

/* ---- inroot.c: container paths resolved inside root_fd ---- */

/* Opens path (container-absolute) inside root_fd: symlinks are followed but
 * stay inside the root, magic links are refused.  -1 with errno. */
int ep_root_open(int root_fd, const char *path, int flags, mode_t mode);
/* Makes sure path is a mount target of the right kind (dir or file).  An
 * image symlink, or an entry of the other kind, is replaced: the
 * container's view changes, nothing outside the root does. */
int ep_root_target(int root_fd, const char *path, int dir, struct ep_error *err);
/* Creates (replacing a non-directory) the symlink path -> target. */
int ep_root_symlink(int root_fd, const char *path, const char *target, struct ep_error *err);
/* Reads a small file of the image (inside the root), bounded by max bytes.
 * NULL with err clear (errno ENOENT) when it is missing.  Caller frees. */
char *ep_root_read(int root_fd, const char *path, size_t max, struct ep_error *err);

/* The last message runc logged at level "error" in its JSON log file (at
 * most 64 KiB read), or NULL.  Caller frees. */
char *ep_runc_log_error(const char *log);

#endif
