/* lib/run/engine.c - the docker and podman engines: load the image into
 * the engine when it lacks it, then exec its `run` with the same options,
 * mounts and GPUs the native engine would give. */
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "image.h"
#include "oci.h"
#include "run/internal.h"
#include "util.h"

struct argv {
	char **v;
	size_t n, cap;
	int oom;
};

static void argv_add(struct argv *a, const char *s)
{
	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **v = realloc(a->v, cap * sizeof(*v));
		if (!v) {
			a->oom = 1;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n] = strdup(s);
	if (!a->v[a->n]) {
		a->oom = 1;
		return;
	}
	a->v[++a->n] = NULL;
}

static void argv_addf(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argv_addf(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		a->oom = 1;
	else
		argv_add(a, s);
	va_end(ap);
	free(s);
}

static void argv_release(struct argv *a)
{
	for (size_t i = 0; a->v && i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* The host path a GPU link resolves to, from the plan's mounts. */
static const char *link_source(const struct ep_gpu_plan *gpu, const struct ep_gpu_link *l)
{
	char want[PATH_MAX];
	const char *slash = strrchr(l->path, '/');

	if (l->target[0] == '/')
		snprintf(want, sizeof(want), "%s", l->target);
	else
		snprintf(want, sizeof(want), "%.*s/%s", (int)(slash - l->path), l->path, l->target);
	for (size_t i = 0; i < gpu->n_mounts; i++)
		if (!strcmp(gpu->mounts[i].path, want))
			return gpu->mounts[i].host_path;
	return NULL;
}

static int toolkit_present(void)
{
	return ep_run_on_path("nvidia-container-runtime-hook") ||
	       ep_run_on_path("nvidia-container-runtime");
}

int ep_run_cli(const char *bin, const struct ep_image_loc *loc, const json_t *info,
	       const struct ep_run_opts *o, const struct ep_gpu_plan *gpu, const char *gpus,
	       int tty, struct ep_store *s, int *status, struct ep_error *err)
{
	const char *cfgd = json_string_value(json_object_get(info, "config_digest"));
	int podman = !strcmp(bin, "podman");
	struct argv a = {0};
	char ref[80];
	struct rlimit rl;
	int rc;

	*status = EP_RUN_EFAIL;
	if (!ep_run_on_path(bin))
		return ep_error_set(err, EP_EENV, "'%s' is not installed", bin);
	if (!cfgd || ep_digest_check(cfgd, err) < 0)
		return -1;
	/* docker's image ID is the config digest; podman takes the bare hex */
	snprintf(ref, sizeof(ref), "%s", podman ? cfgd + 7 : cfgd);
	{
		char *argv[] = {(char *)bin, "image", "inspect", ref, NULL};
		rc = ep_run_quiet(argv, 1);
	}
	if (rc != 0) {
		char id[32];
		cleanup_free char *tmp = NULL;

		if (ep_run_random_id(id, err) < 0)
			return -1;
		tmp = ep_asprintf(err, "%s/tmp/%s-load.tar", s->root, id);
		if (!tmp)
			return -1;
		if (ep_mkdir_p(s->root, err) < 0)
			return -1;
		{
			cleanup_free char *tdir = ep_path_join(s->root, "tmp", err);
			if (!tdir || ep_mkdir_p(tdir, err) < 0)
				return -1;
		}
		if (ep_export(loc->layout, loc->digest, tmp, EP_EXPORT_DOCKER, NULL, err) < 0)
			return ep_error_wrap(err, "export for %s load", bin);
		char *argv[] = {(char *)bin, "load", "-i", tmp, NULL};
		rc = ep_run_quiet(argv, 0);
		unlink(tmp);
		if (rc != 0)
			return ep_error_set(err, EP_EENV, "'%s load' of %s failed (status %d)", bin,
					    loc->digest, rc);
	}

	argv_add(&a, bin);
	argv_add(&a, "run");
	if (!o->keep)
		argv_add(&a, "--rm");
	argv_add(&a, "-i");
	if (tty)
		argv_add(&a, "-t");
	if (o->name)
		argv_addf(&a, "--name=%s", o->name);
	if (o->n_ports == 0)
		argv_add(&a, "--network=host");
	for (size_t i = 0; i < o->n_ports; i++)
		argv_addf(&a, "--publish=%s", o->ports[i]);
	argv_add(&a, "--security-opt=no-new-privileges");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		argv_addf(&a, "--ulimit=nofile=%llu:%llu", (unsigned long long)rl.rlim_max,
			  (unsigned long long)rl.rlim_max);
	if (podman && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		argv_addf(&a, "--ulimit=nproc=%llu:%llu", (unsigned long long)rl.rlim_cur,
			  (unsigned long long)rl.rlim_max);
	if (!o->no_workspace) {
		cleanup_free char *cwd = getcwd(NULL, 0);
		if (!cwd) {
			argv_release(&a);
			return ep_error_errno(err, EP_EENV, errno, "getcwd");
		}
		if (strchr(cwd, ':') || strchr(cwd, ',')) {
			argv_release(&a);
			return ep_error_set(
			    err, EP_EINVAL,
			    "the current directory '%s' has ':' or ','; %s cannot mount it "
			    "(use --no-workspace)",
			    cwd, bin);
		}
		argv_addf(&a, "--volume=%s:/workspace", cwd);
		if (!o->workdir)
			argv_add(&a, "--workdir=/workspace");
	}
	if (o->workdir) {
		if (ep_runtime_check_cpath(o->workdir, "working dir", err) < 0) {
			argv_release(&a);
			return -1;
		}
		argv_addf(&a, "--workdir=%s", o->workdir);
	} else if (o->no_workspace) {
		const char *wd = json_string_value(
		    json_object_get(json_object_get(info, "config"), "WorkingDir"));
		if (wd && *wd && ep_runtime_check_cpath(wd, "image WorkingDir", err) < 0) {
			argv_release(&a);
			return -1;
		}
	}
	for (size_t i = 0; i < o->n_volumes; i++) {
		cleanup_free char *src = NULL;
		const char *dst;
		size_t dl;
		int ro;

		if (ep_runtime_volume(o->volumes[i], &src, &dst, &dl, &ro, err) < 0) {
			argv_release(&a);
			return -1;
		}
		argv_addf(&a, "--volume=%s:%.*s%s", src, (int)dl, dst, ro ? ":ro" : "");
	}
	if (o->user)
		argv_addf(&a, "--user=%s", o->user);
	if (gpu && (gpu->n_devices || gpu->n_mounts || gpu->n_env)) {
		int hostroot = gpu->host_root && strcmp(gpu->host_root, "/");

		if (podman && gpu->from_cdi && !hostroot) {
			for (size_t i = 0; i < gpu->n_cdi_devices; i++)
				argv_addf(&a, "--device=%s", gpu->cdi_devices[i]);
		} else if (!podman && !hostroot && toolkit_present()) {
			if (!strcmp(gpus, "all"))
				argv_add(&a, "--gpus=all");
			else
				argv_addf(&a, "--gpus=\"device=%s\"", gpus);
		} else {
			for (size_t i = 0; i < gpu->n_devices; i++)
				argv_addf(&a, "--device=%s:%s:rwm", gpu->devices[i].host_path,
					  gpu->devices[i].path);
			for (size_t i = 0; i < gpu->n_mounts; i++)
				if (!ep_run_under_proc(gpu->mounts[i].path))
					argv_addf(&a, "--volume=%s:%s%s", gpu->mounts[i].host_path,
						  gpu->mounts[i].path,
						  gpu->mounts[i].read_only ? ":ro" : "");
			/* no way to create a symlink before start: bind the file it names */
			for (size_t i = 0; i < gpu->n_links; i++) {
				const char *src = link_source(gpu, &gpu->links[i]);
				if (src)
					argv_addf(&a, "--volume=%s:%s:ro", src, gpu->links[i].path);
			}
		}
		for (size_t i = 0; i < gpu->n_env; i++)
			argv_addf(&a, "--env=%s", gpu->env[i]);
	}
	argv_addf(&a, "--shm-size=%llu",
		  (unsigned long long)(gpu && gpu->shm_size ? gpu->shm_size : EP_RUN_DEFAULT_SHM));
	for (size_t i = 0; i < o->n_env; i++)
		argv_addf(&a, "--env=%s", o->env[i]);
	if (o->no_entrypoint)
		argv_add(&a, "--entrypoint=");
	argv_add(&a, ref);
	for (size_t i = 0; i < o->n_cmd; i++)
		argv_add(&a, o->cmd[i]);
	if (a.oom) {
		argv_release(&a);
		return ep_error_oom(err);
	}
	fflush(stdout);
	fflush(stderr);
	if (getenv("ENVPIN_RUN_DEBUG")) {
		for (size_t i = 0; i < a.n; i++)
			fprintf(stderr, "%s%s", i ? " " : "envpin: exec ", a.v[i]);
		fputc('\n', stderr);
	}
	execvp(bin, a.v);
	rc = errno;
	argv_release(&a);
	*status = rc == ENOENT ? EP_RUN_ENOENT : EP_RUN_ENOEXEC;
	return ep_error_errno(err, EP_EENV, rc, "exec '%s'", bin);
}
