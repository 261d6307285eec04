/* lib/run/engine.c - the docker and podman engines: load the image into
 * the engine when it lacks it, then exec its `run` with the same options,
 * mounts and GPUs the native engine would give. */
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "image.h"
#include "oci.h"
#include "run/internal.h"
#include "strvec.h"
#include "util.h"

/* The host path a GPU link resolves to, from the plan's mounts. */
static const char *link_source(const struct ep_gpu_plan *gpu, const struct ep_gpu_link *l)
{
	struct ep_strbuf want = EP_STRBUF_INIT;
	const char *slash = strrchr(l->path, '/'), *found = NULL;

	if (l->target[0] == '/')
		ep_strbuf_addstr(&want, l->target);
	else
		ep_strbuf_addf(&want, "%.*s/%s", (int)(slash - l->path), l->path, l->target);
	for (size_t i = 0; !want.oom && i < gpu->n_mounts && !found; i++)
		if (!strcmp(gpu->mounts[i].path, ep_strbuf_str(&want)))
			found = gpu->mounts[i].host_path;
	ep_strbuf_release(&want);
	return found;
}

static int toolkit_present(void)
{
	return ep_run_on_path("nvidia-container-runtime-hook") ||
	       ep_run_on_path("nvidia-container-runtime");
}

/* Loads the image into the engine unless it has it (by config digest). */
static int load_image(const char *bin, const char *ref, const struct ep_image_loc *loc,
		      struct ep_store *s, struct ep_error *err)
{
	char *inspect_argv[] = {(char *)bin, "image", "inspect", (char *)ref, NULL};
	cleanup_free char *tdir = NULL, *tmp = NULL;
	char id[32];
	int rc;

	if (ep_run_quiet(inspect_argv, 1) == 0)
		return 0;
	if (ep_run_random_id(id, err) < 0)
		return -1;
	tdir = ep_path_join(s->root, "tmp", err);
	if (!tdir || ep_mkdir_p(tdir, err) < 0)
		return -1;
	tmp = ep_asprintf(err, "%s/%s-load.tar", tdir, id);
	if (!tmp)
		return -1;
	if (ep_export(loc->layout, loc->digest, tmp, EP_EXPORT_DOCKER, NULL, err) < 0)
		return ep_error_wrap(err, "export for %s load", bin);
	{
		char *load_argv[] = {(char *)bin, "load", "-i", tmp, NULL};

		rc = ep_run_quiet(load_argv, 0);
	}
	unlink(tmp);
	if (rc != 0)
		return ep_error_set(err, EP_EENV, "'%s load' of %s failed (status %d)", bin,
				    loc->digest, rc);
	return 0;
}

/* --volume for $PWD, --workdir, and -v. */
static int cli_mounts(struct ep_strvec *a, const char *bin, const json_t *info,
		      const struct ep_run_opts *o, struct ep_error *err)
{
	if (!o->no_workspace) {
		cleanup_free char *cwd = getcwd(NULL, 0);

		if (!cwd)
			return ep_error_errno(err, EP_EENV, errno, "getcwd");
		if (strchr(cwd, ':') || strchr(cwd, ','))
			return ep_error_set(err, EP_EINVAL,
					    "the current directory '%s' has ':' or ','; %s cannot "
					    "mount it (use --no-workspace)",
					    cwd, bin);
		ep_strvec_pushf(a, "--volume=%s:/workspace", cwd);
		if (!o->workdir)
			ep_strvec_push(a, "--workdir=/workspace");
	}
	if (o->workdir) {
		if (ep_runtime_check_cpath(o->workdir, "working dir", err) < 0)
			return -1;
		ep_strvec_pushf(a, "--workdir=%s", o->workdir);
	} else if (o->no_workspace) {
		const char *wd = json_string_value(
		    json_object_get(json_object_get(info, "config"), "WorkingDir"));
		if (wd && *wd && ep_runtime_check_cpath(wd, "image WorkingDir", err) < 0)
			return -1;
	}
	for (size_t i = 0; i < o->n_volumes; i++)
		ep_strvec_pushf(a, "--volume=%s:%s%s", o->volumes[i].src, o->volumes[i].dst,
				o->volumes[i].ro ? ":ro" : "");
	return 0;
}

/* The GPU plan as the engine takes it: CDI names (podman), --gpus (docker
 * with the NVIDIA toolkit), else the plan's devices and mounts one by one. */
static void cli_gpus(struct ep_strvec *a, int podman, const struct ep_gpu_plan *gpu,
		     const char *gpus)
{
	int hostroot = gpu->host_root && strcmp(gpu->host_root, "/");

	if (podman && gpu->from_cdi && !hostroot) {
		for (size_t i = 0; i < gpu->n_cdi_devices; i++)
			ep_strvec_pushf(a, "--device=%s", gpu->cdi_devices[i]);
	} else if (!podman && !hostroot && toolkit_present()) {
		if (!strcmp(gpus, "all"))
			ep_strvec_push(a, "--gpus=all");
		else
			ep_strvec_pushf(a, "--gpus=\"device=%s\"", gpus);
	} else {
		for (size_t i = 0; i < gpu->n_devices; i++)
			ep_strvec_pushf(a, "--device=%s:%s:rwm", gpu->devices[i].host_path,
					gpu->devices[i].path);
		for (size_t i = 0; i < gpu->n_mounts; i++)
			if (!ep_run_under_proc(gpu->mounts[i].path))
				ep_strvec_pushf(a, "--volume=%s:%s%s", gpu->mounts[i].host_path,
						gpu->mounts[i].path,
						gpu->mounts[i].read_only ? ":ro" : "");
		/* no way to create a symlink before start: bind the file it names */
		for (size_t i = 0; i < gpu->n_links; i++) {
			const char *src = link_source(gpu, &gpu->links[i]);
			if (src)
				ep_strvec_pushf(a, "--volume=%s:%s:ro", src, gpu->links[i].path);
		}
	}
	for (size_t i = 0; i < gpu->n_env; i++)
		ep_strvec_pushf(a, "--env=%s", gpu->env[i]);
}

/* `bin run ...` up to the options; the image ref and command follow. */
static int cli_argv(struct ep_strvec *a, const char *bin, const json_t *info,
		    const struct ep_run_opts *o, const struct ep_gpu_plan *gpu, const char *gpus,
		    int tty, struct ep_error *err)
{
	int podman = !strcmp(bin, "podman");
	struct rlimit rl;

	ep_strvec_push(a, bin);
	ep_strvec_push(a, "run");
	/* detached: the engine keeps the container for ps/logs/rm */
	if (o->detach)
		ep_strvec_push(a, "--detach");
	else if (!o->keep)
		ep_strvec_push(a, "--rm");
	if (o->interactive || tty)
		ep_strvec_push(a, "-i");
	if (tty)
		ep_strvec_push(a, "-t");
	if (o->name)
		ep_strvec_pushf(a, "--name=%s", o->name);
	if (o->n_ports == 0)
		ep_strvec_push(a, "--network=host");
	for (size_t i = 0; i < o->n_ports; i++)
		ep_strvec_pushf(a, "--publish=%s", o->ports[i]);
	ep_strvec_push(a, "--security-opt=no-new-privileges");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		ep_strvec_pushf(a, "--ulimit=nofile=%llu:%llu", (unsigned long long)rl.rlim_max,
				(unsigned long long)rl.rlim_max);
	if (podman && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		ep_strvec_pushf(a, "--ulimit=nproc=%llu:%llu", (unsigned long long)rl.rlim_cur,
				(unsigned long long)rl.rlim_max);
	if (cli_mounts(a, bin, info, o, err) < 0)
		return -1;
	if (o->user)
		ep_strvec_pushf(a, "--user=%s", o->user);
	if (gpu && (gpu->n_devices || gpu->n_mounts || gpu->n_env))
		cli_gpus(a, podman, gpu, gpus);
	ep_strvec_pushf(
	    a, "--shm-size=%llu",
	    (unsigned long long)(gpu && gpu->shm_size ? gpu->shm_size : EP_RUN_DEFAULT_SHM));
	for (size_t i = 0; i < o->n_env; i++)
		ep_strvec_pushf(a, "--env=%s", o->env[i]);
	if (o->no_entrypoint)
		ep_strvec_push(a, "--entrypoint=");
	return 0;
}

int ep_run_cli(const char *bin, const struct ep_image_loc *loc, const json_t *info,
	       const struct ep_run_opts *o, const struct ep_gpu_plan *gpu, const char *gpus,
	       int tty, struct ep_store *s, int *status, struct ep_error *err)
{
	const char *cfgd = json_string_value(json_object_get(info, "config_digest"));
	struct ep_strvec a = EP_STRVEC_INIT;
	const char *ref;
	int e;

	*status = EP_RUN_EFAIL;
	if (!ep_run_on_path(bin))
		return ep_error_set(err, EP_EENV, "'%s' is not installed", bin);
	if (!cfgd || ep_digest_check(cfgd, err) < 0)
		return -1;
	/* docker's image ID is the config digest; podman takes the bare hex */
	ref = strcmp(bin, "podman") ? cfgd : cfgd + 7;
	if (load_image(bin, ref, loc, s, err) < 0)
		return -1;
	if (cli_argv(&a, bin, info, o, gpu, gpus, tty, err) < 0) {
		ep_strvec_release(&a);
		return -1;
	}
	ep_strvec_push(&a, ref);
	for (size_t i = 0; i < o->n_cmd; i++)
		ep_strvec_push(&a, o->cmd[i]);
	if (a.oom) {
		ep_strvec_release(&a);
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
	e = errno;
	ep_strvec_release(&a);
	*status = e == ENOENT ? EP_RUN_ENOENT : EP_RUN_ENOEXEC;
	return ep_error_errno(err, EP_EENV, e, "exec '%s'", bin);
}
