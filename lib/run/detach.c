/* lib/run/detach.c - `run --detach`: the record in the store and the
 * supervisor that outlives the terminal (lib/containers.h). */
#include "containers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oci.h"
#include "run/internal.h"
#include "util.h"

#define LOG_TAIL_MAX (4u << 10)

static json_t *record(const char *name, const char *image, const char *digest,
		      enum ep_engine engine, const json_t *command, long long created)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:O,s:I,s:s}", "name", name, "image", image, "digest",
			 digest, "engine", ep_engine_name(engine), "command", command, "created",
			 (json_int_t)created, "status", "created");
}

/* The supervisor: its own session (the terminal's hangup does not reach
 * it), stdin /dev/null, stdout and stderr on the log; runs the container
 * as `envpin run` does, then records how it ended.  Never returns. */
static void supervise(struct ep_store *s, const struct ep_image_loc *img, const json_t *info,
		      const struct ep_run_opts *o, const char *name, const char *dir, json_t *state,
		      int log_fd)
{
	struct ep_run_opts so = *o;
	struct ep_error err = EP_ERROR_INIT;
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC), status = EP_RUN_EFAIL;
	pid_t me;

	setsid();
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
		_exit(EP_RUN_EFAIL);
	me = getpid();
	json_object_set_new(state, "status", json_string("running"));
	json_object_set_new(state, "pid", json_integer(me));
	json_object_set_new(state, "pid_start", json_integer((json_int_t)ep_proc_start_time(me)));
	if (ep_container_write_state(dir, state, &err) < 0) {
		fprintf(stderr, "envpin: %s\n", err.msg);
		_exit(EP_RUN_EFAIL);
	}
	so.detach = 0;
	so.interactive = 0;
	so.tty = 0;
	so.name = name;
	so.progress = NULL;
	if (ep_run_native(s, img, info, &so, 0, &status, &err) < 0)
		fprintf(stderr, "envpin: %s\n", err.msg[0] ? err.msg : "run failed");
	json_object_set_new(state, "status", json_string("exited"));
	json_object_set_new(state, "exit_code", json_integer(status));
	json_object_set_new(state, "finished", json_integer((json_int_t)time(NULL)));
	json_object_del(state, "pid");
	ep_error_clear(&err);
	if (ep_container_write_state(dir, state, &err) < 0)
		fprintf(stderr, "envpin: %s\n", err.msg);
	fflush(stderr);
	_exit(0);
}

/* The last lines of the log, for a container that failed to start. */
static void log_tail(const char *dir, struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(dir, "log", NULL);
	cleanup_free char *text = path ? ep_read_file(path, 1u << 20, NULL, NULL) : NULL;
	size_t len = text ? strlen(text) : 0;
	const char *from;

	if (!len)
		return;
	while (len && text[len - 1] == '\n')
		text[--len] = '\0';
	from = len > LOG_TAIL_MAX ? text + len - LOG_TAIL_MAX : text;
	ep_error_wrap(err, "container log (%s):\n%s\n", path, from);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Waits until runc has created the container (its state dir exists), or
 * the supervisor has ended.  Returns 1 when it runs, 0 when it ended. */
static int wait_started(struct ep_store *s, const char *name, pid_t sup)
{
	cleanup_free char *state = ep_asprintf(NULL, "%s/run/runc/%s/state.json", s->root, name);

	for (;;) {
		if (waitpid(sup, NULL, WNOHANG) == sup)
			return 0;
		if (state && access(state, F_OK) == 0) {
			/* an exec that fails ends within a moment */
			sleep_ms(150);
			return waitpid(sup, NULL, WNOHANG) == sup ? 0 : 1;
		}
		sleep_ms(20);
	}
}

static int start_native(struct ep_store *s, const struct ep_image_loc *img, const json_t *info,
			const struct ep_run_opts *o, const char *name, const char *dir,
			json_t *state, int log_fd, int *status, struct ep_error *err)
{
	struct ep_container c;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return ep_error_errno(err, EP_EENV, errno, "fork");
	if (pid == 0)
		supervise(s, img, info, o, name, dir, state, log_fd);
	if (wait_started(s, name, pid))
		return 0;
	if (ep_container_get(s, name, &c, err) < 0)
		return -1;
	*status = c.status == EP_CONTAINER_EXITED ? c.exit_code : EP_RUN_EFAIL;
	ep_container_release(&c);
	if (*status < EP_RUN_EFAIL)
		return 0; /* it ran, and ended already: `ps --all` shows it */
	ep_error_set(err, EP_EENV, "container '%s' did not start (status %d)", name, *status);
	log_tail(dir, err);
	return -1;
}

/* docker/podman: `ENGINE run -d --name NAME ...` in a child whose stdout
 * (the engine's container id) is dropped; the engine keeps the container. */
static int start_cli(struct ep_store *s, const struct ep_image_loc *img,
		     const struct ep_run_opts *o, const char *name, int *status,
		     struct ep_error *err)
{
	struct ep_run_opts co = *o;
	int p[2], st;
	pid_t pid;

	co.name = name;
	co.tty = 0;
	co.interactive = 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return ep_error_errno(err, EP_EENV, errno, "pipe");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return ep_error_errno(err, EP_EENV, errno, "fork");
	if (pid == 0) {
		struct ep_error e = EP_ERROR_INIT;
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC), rc;

		close(p[0]);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		ep_run(s, img, &co, &rc, &e);
		/* only on failure: tell the parent why */
		if (ep_write_all(p[1], e.msg, strlen(e.msg), NULL) < 0) {
			/* the parent reports the status alone */
		}
		_exit(rc ? rc : EP_RUN_EFAIL);
	}
	close(p[1]);
	{
		char msg[EP_ERRMSG_MAX];
		size_t len = 0;
		ssize_t n;

		while (len < sizeof(msg) - 1 &&
		       (n = read(p[0], msg + len, sizeof(msg) - 1 - len)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			len += (size_t)n;
		}
		msg[len] = '\0';
		close(p[0]);
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				return ep_error_errno(err, EP_EENV, errno, "waitpid");
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (*status != 0)
			return ep_error_set(err, EP_EENV, "%s", len ? msg : "the engine failed");
	}
	return 0;
}

int ep_run_detached(struct ep_store *s, const struct ep_image_loc *img, const char *image_name,
		    const struct ep_run_opts *o, char name_out[72], int *status,
		    struct ep_error *err)
{
	cleanup_free char *root = NULL, *dir = NULL, *lock = NULL, *log = NULL;
	cleanup_json json_t *info = NULL, *command = NULL, *state = NULL;
	cleanup_close int lock_fd = -1, log_fd = -1;
	enum ep_engine engine;
	char id[32];
	const char *name = o->name;
	int rc;

	*status = EP_RUN_EFAIL;
	if (ep_engine_pick(o->engine, &engine, err) < 0)
		return -1;
	if (o->n_ports && engine == EP_ENGINE_NATIVE)
		return ep_error_set(err, EP_EINVAL,
				    "-p: the native engine uses the host network; use --engine "
				    "docker or podman to publish");
	if (!name) {
		if (ep_run_random_id(id, err) < 0)
			return -1;
		name = id;
	}
	if (!ep_container_name_ok(name))
		return ep_error_set(err, EP_EINVAL,
				    "container name '%s': use 1 to 64 of [A-Za-z0-9_.-], "
				    "starting with a letter or digit",
				    name);
	info = ep_inspect(img->layout, img->digest, err);
	if (!info)
		return -1;
	command = ep_runtime_args(json_object_get(info, "config"), o->cmd, o->n_cmd,
				  o->no_entrypoint, err);
	if (!command)
		return -1;
	root = ep_path_join(s->root, "containers", err);
	dir = root ? ep_path_join(root, name, err) : NULL;
	if (!dir || ep_mkdir_p(root, err) < 0)
		return -1;
	if (mkdir(dir, 0700) < 0) {
		if (errno == EEXIST)
			return ep_error_set(err, EP_EINVAL,
					    "a container named '%s' exists (envpin rm %s)", name,
					    name);
		return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", dir);
	}
	lock = ep_path_join(dir, "lock", err);
	log = ep_path_join(dir, "log", err);
	if (!lock || !log)
		goto fail;
	lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
		ep_error_errno(err, EP_EENV, errno, "lock '%s'", lock);
		goto fail;
	}
	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (log_fd < 0) {
		ep_error_errno(err, EP_EENV, errno, "create '%s'", log);
		goto fail;
	}
	state = record(name, image_name, img->digest, engine, command, (long long)time(NULL));
	if (!state) {
		ep_error_oom(err);
		goto fail;
	}
	if (ep_container_write_state(dir, state, err) < 0)
		goto fail;
	snprintf(name_out, 72, "%s", name);
	if (engine == EP_ENGINE_NATIVE)
		rc = start_native(s, img, info, o, name, dir, state, log_fd, status, err);
	else
		rc = start_cli(s, img, o, name, status, err);
	if (rc < 0 && engine != EP_ENGINE_NATIVE)
		goto fail;
	if (rc == 0)
		*status = 0;
	return rc;
fail : {
	struct ep_error e = EP_ERROR_INIT;

	ep_rm_rf(dir, &e);
}
	return -1;
}
