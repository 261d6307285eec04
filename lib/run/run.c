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
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "oci.h"
#include "run/internal.h"
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
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path || !*path)
		path = EP_RUN_DEFAULT_PATH;
	for (const char *p = path; *p;) {
		const char *e = strchrnul(p, ':');
		if (e > p &&
		    snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, bin) <
			(int)sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
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
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/proc/driver/nvidia/version", host_root);
	if (access(p, F_OK) == 0)
		return 1;
	snprintf(p, sizeof(p), "%s/dev/nvidiactl", host_root);
	return access(p, F_OK) == 0;
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

int ep_run(struct ep_store *s, const char *image, const struct ep_run_opts *o, int *status,
	   struct ep_error *err)
{
	struct ep_image_loc loc = {0};
	cleanup_json json_t *info = NULL;
	struct ep_gpu_plan gpu;
	int have_plan = 0, rc = -1, tty;
	enum ep_engine engine = o->engine;
	const char *gpus = o->gpus && *o->gpus ? o->gpus : "auto";

	*status = EP_RUN_EFAIL;
	memset(&gpu, 0, sizeof(gpu));
	tty = o->tty < 0 ? isatty(0) : o->tty;
	if (engine == EP_ENGINE_AUTO)
		engine = geteuid() == 0 && ep_run_on_path("runc") ? EP_ENGINE_NATIVE
			 : ep_run_on_path("docker")		  ? EP_ENGINE_DOCKER
			 : ep_run_on_path("podman")		  ? EP_ENGINE_PODMAN
								  : EP_ENGINE_NATIVE;
	if (o->n_ports && engine == EP_ENGINE_NATIVE)
		return ep_error_set(
		    err, EP_EINVAL,
		    "-p: the native engine uses the host network, where a container's "
		    "ports are the host's; use --engine docker or podman to publish");
	for (size_t i = 0; i < o->n_volumes; i++) {
		cleanup_free char *src = NULL;
		const char *dst;
		size_t dl;
		int ro;
		if (ep_runtime_volume(o->volumes[i], &src, &dst, &dl, &ro, err) < 0)
			return -1;
	}
	if (o->workdir && ep_runtime_check_cpath(o->workdir, "working dir", err) < 0)
		return -1;
	if (ep_image_locate(s, image, &loc, err) < 0)
		return -1;
	info = ep_inspect(loc.layout, loc.digest, err);
	if (!info)
		goto out;
	if (engine != EP_ENGINE_NATIVE &&
	    ep_run_gpu_plan(gpus, json_object_get(info, "config"), NULL, &gpu, &have_plan, err) < 0)
		goto out;
	switch (engine) {
	case EP_ENGINE_DOCKER:
		rc = ep_run_cli("docker", &loc, info, o, have_plan ? &gpu : NULL, gpus, tty, s,
				status, err);
		break;
	case EP_ENGINE_PODMAN:
		rc = ep_run_cli("podman", &loc, info, o, have_plan ? &gpu : NULL, gpus, tty, s,
				status, err);
		break;
	default:
		rc = ep_run_native(s, &loc, info, o, tty, status, err);
		break;
	}
out:
	if (rc < 0 && *status == 0)
		*status = EP_RUN_EFAIL;
	if (have_plan)
		ep_gpu_plan_release(&gpu);
	ep_image_loc_release(&loc);
	return rc;
}
