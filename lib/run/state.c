/* lib/run/state.c - the records of detached containers in the store
 * (lib/containers.h): read, list, stop, remove. */
#include "containers.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "run/internal.h"
#include "util.h"

#define STATE_MAX (64u << 10)

int ep_container_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 64 || !isalnum((unsigned char)n[0]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("_.-", n[i]))
			return 0;
	return 1;
}

void ep_container_release(struct ep_container *c)
{
	free(c->name);
	free(c->image);
	free(c->digest);
	free(c->engine);
	json_decref(c->command);
	memset(c, 0, sizeof(*c));
}

char *ep_container_dir(struct ep_store *s, const char *name, struct ep_error *err)
{
	if (!ep_container_name_ok(name))
		return ep_error_set(err, EP_EINVAL, "'%s' is not a container name", name), NULL;
	return ep_asprintf(err, "%s/containers/%s", s->root, name);
}

char *ep_container_log_path(struct ep_store *s, const char *name, struct ep_error *err)
{
	cleanup_free char *dir = ep_container_dir(s, name, err);

	return dir ? ep_path_join(dir, "log", err) : NULL;
}

/* The start time of pid in clock ticks since boot (field 22 of
 * /proc/PID/stat), 0 when it is gone: a pid alone may be reused. */
unsigned long long ep_proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long t = 0;
	ssize_t n;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* after ") ": state is field 3, starttime field 22 */
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

int ep_container_write_state(const char *dir, const json_t *state, struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(dir, "state.json", err);
	cleanup_free char *text = NULL;

	if (!path)
		return -1;
	text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return ep_error_oom(err);
	return ep_write_file_atomic(path, text, strlen(text), 0644, err);
}

/* 1 when the lock of dir is held (a supervisor is alive), 0 when free. */
static int lock_held(const char *dir)
{
	cleanup_free char *path = ep_path_join(dir, "lock", NULL);
	int fd, held = 0;

	if (!path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		held = errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/* docker/podman: `ENGINE inspect` of the container: running, or its exit
 * code and end; gone from the engine is DEAD. */
static void engine_status(struct ep_container *c)
{
	char *argv[] = {c->engine, "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}",
			c->name,   NULL};
	cleanup_free char *line = ep_run_first_line(argv);
	int code = 0;

	c->status = EP_CONTAINER_DEAD;
	if (!line)
		return;
	if (!strncmp(line, "true", 4)) {
		c->status = EP_CONTAINER_RUNNING;
	} else if (!strncmp(line, "false ", 6) && sscanf(line + 6, "%d", &code) == 1) {
		c->status = EP_CONTAINER_EXITED;
		c->exit_code = code;
	}
}

static int read_record(const char *dir, const char *name, struct ep_container *c,
		       struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(dir, "state.json", err);
	cleanup_free char *text = NULL;
	cleanup_json json_t *j = NULL;
	const char *st;

	memset(c, 0, sizeof(*c));
	if (!path)
		return -1;
	text = ep_read_file(path, STATE_MAX, NULL, err);
	if (!text) {
		if (err->errnum == ENOENT) {
			ep_error_clear(err);
			return ep_error_set(err, EP_EINVAL, "no container named '%s'", name);
		}
		return -1;
	}
	j = json_loads(text, 0, NULL);
	if (!json_is_object(j))
		return ep_error_set(err, EP_EENV, "'%s' is not a container record", path);
	c->name = strdup(name);
	c->image = strdup(json_string_value(json_object_get(j, "image")) ?: "");
	c->digest = strdup(json_string_value(json_object_get(j, "digest")) ?: "");
	c->engine = strdup(json_string_value(json_object_get(j, "engine")) ?: "native");
	c->command = json_incref(json_object_get(j, "command"));
	if (!c->name || !c->image || !c->digest || !c->engine) {
		ep_container_release(c);
		return ep_error_oom(err);
	}
	c->created = json_integer_value(json_object_get(j, "created"));
	c->finished = json_integer_value(json_object_get(j, "finished"));
	c->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	st = json_string_value(json_object_get(j, "status")) ?: "";
	if (strcmp(c->engine, "native")) {
		engine_status(c);
		return 0;
	}
	if (!strcmp(st, "exited")) {
		c->status = EP_CONTAINER_EXITED;
		c->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
	} else if (lock_held(dir)) {
		c->status = !strcmp(st, "running") ? EP_CONTAINER_RUNNING : EP_CONTAINER_CREATED;
		/* the supervisor may have just written "exited" */
		if (c->status == EP_CONTAINER_RUNNING &&
		    (unsigned long long)json_integer_value(json_object_get(j, "pid_start")) !=
			ep_proc_start_time(c->pid))
			c->pid = 0;
	} else {
		/* no live supervisor: re-read, it may have ended between the reads */
		cleanup_free char *again = ep_read_file(path, STATE_MAX, NULL, NULL);
		cleanup_json json_t *j2 = again ? json_loads(again, 0, NULL) : NULL;

		if (!strcmp(json_string_value(json_object_get(j2, "status")) ?: "", "exited")) {
			c->status = EP_CONTAINER_EXITED;
			c->exit_code = (int)json_integer_value(json_object_get(j2, "exit_code"));
			c->finished = json_integer_value(json_object_get(j2, "finished"));
		} else {
			c->status = EP_CONTAINER_DEAD;
		}
		c->pid = 0;
	}
	return 0;
}

int ep_container_get(struct ep_store *s, const char *name, struct ep_container *c,
		     struct ep_error *err)
{
	cleanup_free char *dir = ep_container_dir(s, name, err);

	memset(c, 0, sizeof(*c));
	return dir ? read_record(dir, name, c, err) : -1;
}

static int by_created(const void *a, const void *b)
{
	const struct ep_container *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->name, y->name);
}

int ep_container_list(struct ep_store *s, struct ep_container **out, size_t *n,
		      struct ep_error *err)
{
	cleanup_free char *root = ep_path_join(s->root, "containers", err);
	struct ep_container *v = NULL;
	size_t cnt = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (!root)
		return -1;
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : ep_error_errno(err, EP_EENV, errno, "open '%s'", root);
	while ((de = readdir(d))) {
		struct ep_container c;
		struct ep_error e = EP_ERROR_INIT;
		cleanup_free char *dir = NULL;
		struct ep_container *nv;

		if (!ep_container_name_ok(de->d_name))
			continue;
		dir = ep_path_join(root, de->d_name, err);
		if (!dir)
			goto fail;
		/* a record being created or removed right now is skipped */
		if (read_record(dir, de->d_name, &c, &e) < 0)
			continue;
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv) {
			ep_container_release(&c);
			ep_error_oom(err);
			goto fail;
		}
		v = nv;
		v[cnt++] = c;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), by_created);
	*out = v;
	*n = cnt;
	return 0;
fail:
	closedir(d);
	for (size_t i = 0; i < cnt; i++)
		ep_container_release(&v[i]);
	free(v);
	return -1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Waits (up to ms) until the supervisor of dir has let go of the lock. */
static int wait_unlocked(const char *dir, long ms)
{
	for (long t = 0; t <= ms; t += 20) {
		if (!lock_held(dir))
			return 1;
		sleep_ms(20);
	}
	return 0;
}

static int engine_cmd(const struct ep_container *c, const char *verb, const char *opt,
		      struct ep_error *err)
{
	char *argv[] = {c->engine, (char *)verb, (char *)opt, c->name, NULL};
	int rc;

	if (!opt) {
		argv[2] = c->name;
		argv[3] = NULL;
	}
	rc = ep_run_quiet(argv, 0);
	if (rc != 0)
		return ep_error_set(err, EP_EENV, "'%s %s %s' failed (status %d)", c->engine, verb,
				    c->name, rc);
	return 0;
}

int ep_container_stop(struct ep_store *s, const char *name, int timeout_s, struct ep_error *err)
{
	cleanup_free char *dir = ep_container_dir(s, name, err);
	struct ep_container c;
	int rc = 0;

	if (!dir || read_record(dir, name, &c, err) < 0)
		return -1;
	if (strcmp(c.engine, "native")) {
		if (c.status == EP_CONTAINER_RUNNING) {
			char t[32];

			snprintf(t, sizeof(t), "--time=%d", timeout_s);
			rc = engine_cmd(&c, "stop", t, err);
		}
		ep_container_release(&c);
		return rc;
	}
	if (c.status == EP_CONTAINER_RUNNING && c.pid > 0)
		kill(c.pid, SIGTERM);
	if (c.status == EP_CONTAINER_RUNNING || c.status == EP_CONTAINER_CREATED) {
		if (!wait_unlocked(dir, (long)timeout_s * 1000)) {
			cleanup_free char *runc_root = ep_asprintf(err, "%s/run/runc", s->root);
			char *kill_argv[] = {"runc", "--root", runc_root, "kill",
					     c.name, "KILL",   NULL};

			if (runc_root)
				ep_run_quiet(kill_argv, 1);
			if (!wait_unlocked(dir, 15000))
				rc = ep_error_set(err, EP_EENV,
						  "container '%s' did not stop (supervisor pid %d)",
						  name, (int)c.pid);
		}
	}
	ep_container_release(&c);
	return rc;
}

int ep_container_remove(struct ep_store *s, const char *name, int force, struct ep_error *err)
{
	cleanup_free char *dir = ep_container_dir(s, name, err);
	struct ep_container c;
	int running;

	if (!dir || read_record(dir, name, &c, err) < 0)
		return -1;
	running = c.status == EP_CONTAINER_RUNNING || c.status == EP_CONTAINER_CREATED;
	if (running && !force) {
		ep_container_release(&c);
		return ep_error_set(err, EP_EINVAL,
				    "container '%s' is running: stop it first (or rm --force)",
				    name);
	}
	if (running && ep_container_stop(s, name, 0, err) < 0) {
		ep_container_release(&c);
		return -1;
	}
	if (strcmp(c.engine, "native") && c.status != EP_CONTAINER_DEAD &&
	    engine_cmd(&c, "rm", force ? "--force" : NULL, err) < 0) {
		ep_container_release(&c);
		return -1;
	}
	ep_container_release(&c);
	return ep_rm_rf(dir, err);
}
