/* lib/containers.h - containers started with `envpin run --detach`, as the
 * store records them (docs/run.md, "Long jobs"):
 *
 *   STORE/containers/NAME/state.json  what was started and how it ended
 *   STORE/containers/NAME/log         the container's stdout and stderr
 *   STORE/containers/NAME/lock        flock held by the supervisor for as
 *                                     long as the container runs
 *
 * Native engine: a supervisor (a forked envpin in its own session, stdio on
 * the log) runs the container as `envpin run` does and writes the exit
 * status when it ends; the lock tells a live supervisor from a dead one,
 * whatever killed it.  docker/podman engines: the record names the
 * engine's container, and the engine is asked for its state. */
#ifndef EP_CONTAINERS_H
#define EP_CONTAINERS_H

#include <jansson.h>
#include <sys/types.h>

#include "error.h"
#include "image.h"
#include "runtime.h"
#include "store.h"

enum ep_container_status {
	EP_CONTAINER_CREATED = 0, /* recorded, not started yet */
	EP_CONTAINER_RUNNING,
	EP_CONTAINER_EXITED, /* exit_code is its status */
	EP_CONTAINER_DEAD,   /* the supervisor vanished without an exit status */
};

struct ep_container {
	char *name;
	char *image;  /* as the user named it */
	char *digest; /* the image's manifest digest */
	char *engine; /* "native", "docker" or "podman" */
	json_t *command;
	long long created;  /* unix seconds */
	long long finished; /* unix seconds, 0 while running */
	enum ep_container_status status;
	int exit_code; /* EXITED: 0-255 (128+N for a signal) */
	pid_t pid;     /* native: the supervisor, while running */
};
void ep_container_release(struct ep_container *c);

/* 1 when name is a container name: 1 to 64 of [A-Za-z0-9_.-], starting
 * with a letter or digit (also the bundle and runc id). */
int ep_container_name_ok(const char *name);

/* Reads the record of name, with its live status (the lock for the native
 * engine, `ENGINE inspect` for the others).  EP_EINVAL when there is none. */
int ep_container_get(struct ep_store *s, const char *name, struct ep_container *c,
		     struct ep_error *err);

/* Every record, sorted by creation time (oldest first).  *v is freed with
 * ep_container_release on each and free(). */
int ep_container_list(struct ep_store *s, struct ep_container **v, size_t *n, struct ep_error *err);

/* The path of the log of name (caller frees); docker/podman keep their own. */
char *ep_container_log_path(struct ep_store *s, const char *name, struct ep_error *err);

/* Stops a running container: SIGTERM to its process 1 (through the
 * supervisor, as runc forwards it), SIGKILL after timeout_s seconds; waits
 * until it is gone.  A container that is not running is not an error. */
int ep_container_stop(struct ep_store *s, const char *name, int timeout_s, struct ep_error *err);

/* Removes the record (and the engine's container).  A running container
 * is refused (EP_EINVAL) unless force, which stops it first. */
int ep_container_remove(struct ep_store *s, const char *name, int force, struct ep_error *err);

/* Starts the image detached (o->detach): records it, starts the supervisor
 * (native) or `ENGINE run -d` (docker/podman), and returns once the
 * container runs (or has already ended: *status then says how; 0 else).
 * name_out gets the container's name. */
int ep_run_detached(struct ep_store *s, const struct ep_image_loc *img, const char *image_name,
		    const struct ep_run_opts *o, char name_out[72], int *status,
		    struct ep_error *err);

#endif
