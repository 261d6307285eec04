/* lib/run/run.c - ep_run: resolves the image, picks the engine and the GPU
 * plan, and hands over to the native engine (bundle.c) or docker/podman
 * (engine.c); the process helpers the engines share. */
#include "runtime.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "oci.h"
#include "rootless.h"
#include "run/internal.h"
#include "trace.h"
#include "util.h"

int ep_engine_parse(const char *s)
{
	static const char *const names[] = {"auto", "native", "docker", "podman"};

	for (size_t i = 0; i < EP_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

const char *ep_engine_name(enum ep_engine e)
{
	switch (e) {
	case EP_ENGINE_NATIVE:
		return "native";
	case EP_ENGINE_DOCKER:
		return "docker";
	case EP_ENGINE_PODMAN:
		return "podman";
	default:
		return "auto";
	}
}

void ep_run_opts_init(struct ep_run_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->tty = -1;
}

int ep_run_on_path(const char *bin)
{
	return ep_find_on_path(bin, NULL, 0) == 0;
}

/* Runs argv and waits; stdout (and stderr when quiet) go to /dev/null.
 * Returns the exit status, or -1 when it could not start. */
int ep_run_quiet(char *const argv[], int quiet_stderr)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 1);
			if (quiet_stderr)
				dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int ep_run_random_id(char out[32], struct ep_error *err)
{
	unsigned char b[6];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return ep_error_errno(err, EP_EENV, errno, "getrandom");
	snprintf(out, 32, "envpin-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
	return 0;
}

static int host_has_driver(const char *host_root)
{
	static const char *const marks[] = {"/proc/driver/nvidia/version", "/dev/nvidiactl"};

	for (size_t i = 0; i < EP_ARRAY_SIZE(marks); i++) {
		cleanup_free char *p = ep_asprintf(NULL, "%s%s", host_root, marks[i]);

		if (p && access(p, F_OK) == 0)
			return 1;
	}
	return 0;
}

/* NULL-terminated K=V list of the image Env, for ep_gpu_plan. */
static char **image_env(const json_t *cfg)
{
	const json_t *env = json_object_get(cfg, "Env");
	size_t n = json_array_size(env), k = 0;
	char **v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		const char *s = json_string_value(json_array_get(env, i));
		if (s)
			v[k++] = (char *)s;
	}
	return v;
}

/* The GPU plan for --gpus (auto: all when the host has a driver).  rootfs
 * (may be NULL) picks the container's lib dir.  *have is 0 for no GPU. */
int ep_run_gpu_plan(const char *gpus, const json_t *cfg, const char *rootfs,
		    struct ep_gpu_plan *plan, int *have, struct ep_error *err)
{
	cleanup_free char *root = NULL;
	cleanup_free char **ienv = NULL;
	struct ep_gpu_opts go = {0};

	*have = 0;
	if (!gpus || !*gpus)
		gpus = "auto";
	if (!strcmp(gpus, "none"))
		return 0;
	root = ep_gpu_host_root(err);
	if (!root)
		return -1;
	if (!strcmp(gpus, "auto")) {
		if (!host_has_driver(root))
			return 0;
		gpus = "all";
	}
	ienv = image_env(cfg);
	if (!ienv)
		return ep_error_oom(err);
	go.host_root = root;
	go.gpus = gpus;
	go.image_env = ienv;
	go.lib_dir = rootfs ? ep_gpu_lib_dir_for_rootfs(rootfs) : NULL;
	if (ep_gpu_plan_opts(&go, plan, err) < 0)
		return ep_error_wrap(err, "--gpus %s", gpus);
	*have = 1;
	return 0;
}

static const char ways_out[] =
    "ways out: run envpin as root for the native engine (runc); join the 'docker' group "
    "(usermod -aG docker USER, then log in again); or install podman (rootless)";

/* Whether this user can reach the Docker daemon: the socket DOCKER_HOST
 * names (unix://PATH) or /var/run/docker.sock must be there and writable.
 * Another DOCKER_HOST (tcp://, ssh://) is left to docker to judge. */
static int docker_reachable(struct ep_error *err)
{
	const char *host = getenv("DOCKER_HOST");
	const char *sock = "/var/run/docker.sock";

	if (host && *host) {
		if (strncmp(host, "unix://", 7))
			return 1;
		sock = host + 7;
	}
	if (access(sock, R_OK | W_OK) == 0)
		return 1;
	ep_error_errno(err, EP_EENV, errno, "cannot reach the Docker daemon at '%s'", sock);
	return 0;
}

int ep_engine_pick(enum ep_engine want, enum ep_engine *out, struct ep_error *err)
{
	struct ep_error why = EP_ERROR_INIT;
	int docker, userns;

	*out = want;
	if (want == EP_ENGINE_DOCKER) {
		if (!ep_run_on_path("docker"))
			return ep_error_set(err, EP_EENV, "'docker' is not installed");
		if (!docker_reachable(&why))
			return ep_error_set(err, EP_EENV, "%s; %s", why.msg, ways_out);
		return 0;
	}
	if (want != EP_ENGINE_AUTO)
		return 0;
	/* runc as root, or rootless in a user namespace (docs/rootless.md):
	 * a student on a cluster rarely has docker or podman */
	userns = geteuid() == 0 || ep_userns_available();
	if (ep_run_on_path("runc") && userns) {
		*out = EP_ENGINE_NATIVE;
		return 0;
	}
	docker = ep_run_on_path("docker");
	if (docker && docker_reachable(&why)) {
		*out = EP_ENGINE_DOCKER;
		return 0;
	}
	/* rootless podman needs user namespaces as much as we do */
	if (ep_run_on_path("podman") && userns) {
		*out = EP_ENGINE_PODMAN;
		return 0;
	}
	if (docker && !userns)
		return ep_error_set(
		    err, EP_EENV,
		    "no engine this user can use: %s, and user namespaces are "
		    "disabled here (the rootless native engine and podman need them; "
		    "envpin doctor says how to enable them); or join the 'docker' "
		    "group (usermod -aG docker USER, then log in again)",
		    why.msg);
	if (docker)
		return ep_error_set(err, EP_EENV, "no engine this user can use: %s; %s", why.msg,
				    ways_out);
	/* the native engine says what it lacks */
	*out = EP_ENGINE_NATIVE;
	return 0;
}

int ep_run(struct ep_store *s, const struct ep_image_loc *img, const struct ep_run_opts *o,
	   int *status, struct ep_error *err)
{
	cleanup_json json_t *info = NULL;
	struct ep_gpu_plan gpu;
	int have_plan = 0, rc = -1, tty;
	enum ep_engine engine;
	const char *gpus = o->gpus && *o->gpus ? o->gpus : "auto";

	ep_trace_mark("options parsed, image located");
	*status = EP_RUN_EFAIL;
	memset(&gpu, 0, sizeof(gpu));
	tty = o->tty < 0 ? isatty(0) : o->tty;
	if (ep_engine_pick(o->engine, &engine, err) < 0)
		return -1;
	if (o->n_ports && engine == EP_ENGINE_NATIVE)
		return ep_error_set(
		    err, EP_EINVAL,
		    "-p: the native engine uses the host network, where a container's "
		    "ports are the host's; use --engine docker or podman to publish");
	info = ep_inspect(img->layout, img->digest, err);
	if (!info)
		goto out;
	ep_trace_mark("engine picked, image inspected");
	if (engine != EP_ENGINE_NATIVE &&
	    ep_run_gpu_plan(gpus, json_object_get(info, "config"), NULL, &gpu, &have_plan, err) < 0)
		goto out;
	switch (engine) {
	case EP_ENGINE_DOCKER:
		rc = ep_run_cli("docker", img, info, o, have_plan ? &gpu : NULL, gpus, tty, s,
				status, err);
		break;
	case EP_ENGINE_PODMAN:
		rc = ep_run_cli("podman", img, info, o, have_plan ? &gpu : NULL, gpus, tty, s,
				status, err);
		break;
	default:
		rc = ep_run_native(s, img, info, o, tty, status, err);
		break;
	}
out:
	if (rc < 0 && *status == 0)
		*status = EP_RUN_EFAIL;
	if (have_plan)
		ep_gpu_plan_release(&gpu);
	return rc;
}

char *ep_run_first_line(char *const argv[])
{
	char buf[512];
	size_t len = 0;
	ssize_t n;
	int p[2], st;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return NULL;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return NULL;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		dup2(p[1], 1);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	while (len < sizeof(buf) - 1 && (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return len && buf[0] ? strdup(buf) : NULL;
}

static const char *mount_kind_name(enum ep_gpu_mount_kind k)
{
	switch (k) {
	case EP_GPU_MOUNT_LIB:
		return "library";
	case EP_GPU_MOUNT_BIN:
		return "binary";
	case EP_GPU_MOUNT_FIRMWARE:
		return "firmware";
	case EP_GPU_MOUNT_IPC:
		return "ipc";
	default:
		return "other";
	}
}

/* The driver files the plan passes in, each with size and mtime (hashing
 * a driver's libraries would cost more than the check it saves). */
static json_t *driver_files(const struct ep_gpu_plan *plan)
{
	json_t *files = json_array();

	for (size_t i = 0; files && i < plan->n_mounts; i++) {
		const struct ep_gpu_mount *m = &plan->mounts[i];
		struct stat st;

		if (m->kind == EP_GPU_MOUNT_IPC || stat(m->host_path, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		json_array_append_new(
		    files, json_pack("{s:s,s:s,s:s,s:I,s:I}", "path", m->path, "host_path",
				     m->host_path, "kind", mount_kind_name(m->kind), "size",
				     (json_int_t)st.st_size, "mtime", (json_int_t)st.st_mtime));
	}
	return files;
}

json_t *ep_run_host_facts(const char *gpus, enum ep_engine engine, struct ep_error *err)
{
	cleanup_json json_t *facts = NULL;
	struct ep_gpu_plan plan;
	char *version = NULL;
	json_t *list;
	int have = 0;

	memset(&plan, 0, sizeof(plan));
	if (ep_engine_pick(engine, &engine, err) < 0 ||
	    ep_run_gpu_plan(gpus, NULL, NULL, &plan, &have, err) < 0)
		return NULL;
	facts = json_object();
	list = json_array();
	if (!facts || !list) {
		json_decref(list);
		goto oom;
	}
	json_object_set_new(facts, "gpus", list);
	for (size_t i = 0; have && i < plan.n_gpus; i++)
		json_array_append_new(list, json_pack("{s:i,s:s?,s:s?}", "index",
						      plan.gpus[i].index, "uuid", plan.gpus[i].uuid,
						      "name", plan.gpus[i].name));
	json_object_set_new(facts, "driver_version",
			    have && plan.driver_version ? json_string(plan.driver_version)
							: json_null());
	json_object_set_new(facts, "driver_files", have ? driver_files(&plan) : json_array());
	if (have && plan.cdi_spec)
		json_object_set_new(facts, "cdi_spec", json_string(plan.cdi_spec));
	{
		char *native_argv[] = {"runc", "--version", NULL};
		char *cli_argv[] = {engine == EP_ENGINE_PODMAN ? "podman" : "docker", "--version",
				    NULL};

		version = ep_run_first_line(engine == EP_ENGINE_NATIVE ? native_argv : cli_argv);
	}
	json_object_set_new(
	    facts, "runtime",
	    json_pack("{s:s,s:s?}", "engine", ep_engine_name(engine), "version", version));
	free(version);
	if (have)
		ep_gpu_plan_release(&plan);
	return steal_pointer(&facts);
oom:
	if (have)
		ep_gpu_plan_release(&plan);
	return ep_error_oom(err), NULL;
}
