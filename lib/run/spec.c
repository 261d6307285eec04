/* lib/run/spec.c - the OCI runtime spec (config.json) runc gets: the
 * process (args, env, user, cwd, rlimits), mounts, isolation (capabilities,
 * seccomp, masked and read-only paths, namespaces) and the GPU plan's
 * devices and hooks. */
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "isolation.h"
#include "jsonutil.h"
#include "run/internal.h"
#include "util.h"

static int append_str_array(json_t *out, const json_t *arr, struct ep_error *err)
{
	size_t i;
	json_t *v;

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return ep_error_set(err, EP_EINVAL, "image config: expected an array of strings");
	json_array_foreach (arr, i, v) {
		if (!json_is_string(v))
			return ep_error_set(err, EP_EINVAL,
					    "image config: expected an array of strings");
		if (json_array_append(out, v) < 0)
			return ep_error_oom(err);
	}
	return 0;
}

json_t *ep_runtime_args(const json_t *image_cfg, char *const *cmd, size_t n_cmd, int no_entrypoint,
			struct ep_error *err)
{
	cleanup_json json_t *args = json_array();

	if (!args)
		return ep_error_oom(err), NULL;
	if (!no_entrypoint &&
	    append_str_array(args, json_object_get(image_cfg, "Entrypoint"), err) < 0)
		return NULL;
	if (n_cmd) {
		for (size_t i = 0; i < n_cmd; i++)
			if (json_array_append_new(args, json_string(cmd[i])) < 0)
				return ep_error_set(err, EP_EINVAL,
						    "command argument %zu is not UTF-8", i + 1),
				       NULL;
	} else if (append_str_array(args, json_object_get(image_cfg, "Cmd"), err) < 0) {
		return NULL;
	}
	if (json_array_size(args) == 0)
		return ep_error_set(
			   err, EP_EINVAL,
			   "no command: the image has no Entrypoint or Cmd; give one after '--'"),
		       NULL;
	return steal_pointer(&args);
}

/* Sets K=V in an ordered env array, replacing an earlier K. */
static int env_set(json_t *env, const char *kv, struct ep_error *err)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv), i;
	json_t *v;

	if (klen == 0)
		return ep_error_set(err, EP_EINVAL, "environment entry '%s' has no name", kv);
	json_array_foreach (env, i, v) {
		const char *s = json_string_value(v);

		if (s && !strncmp(s, kv, klen) && s[klen] == '=') {
			if (json_array_set_new(env, i, json_string(kv)) < 0)
				return ep_error_set(err, EP_EINVAL,
						    "environment entry is not UTF-8");
			return 0;
		}
	}
	if (json_array_append_new(env, json_string(kv)) < 0)
		return ep_error_set(err, EP_EINVAL, "environment entry is not UTF-8");
	return 0;
}

static int env_has(const json_t *env, const char *k)
{
	size_t klen = strlen(k), i;
	json_t *v;

	json_array_foreach (env, i, v) {
		const char *s = json_string_value(v);
		if (s && !strncmp(s, k, klen) && s[klen] == '=')
			return 1;
	}
	return 0;
}

json_t *ep_runtime_env(const json_t *image_cfg, const struct ep_gpu_plan *gpu, const char **env,
		       size_t n_env, int tty, struct ep_error *err)
{
	cleanup_json json_t *out = json_array();
	const json_t *ienv = json_object_get(image_cfg, "Env");
	size_t i;
	json_t *v;

	if (!out)
		return ep_error_oom(err), NULL;
	if (ienv && !json_is_array(ienv))
		return ep_error_set(err, EP_EINVAL, "image config: Env is not an array"), NULL;
	json_array_foreach (ienv, i, v) {
		if (!json_is_string(v) || !strchr(json_string_value(v), '='))
			return ep_error_set(err, EP_EINVAL, "image config: Env[%zu] is not K=V", i),
			       NULL;
		if (env_set(out, json_string_value(v), err) < 0)
			return NULL;
	}
	for (i = 0; gpu && i < gpu->n_env; i++)
		if (env_set(out, gpu->env[i], err) < 0)
			return NULL;
	for (i = 0; i < n_env; i++) {
		if (strchr(env[i], '=')) {
			if (env_set(out, env[i], err) < 0)
				return NULL;
		} else {
			const char *val = getenv(env[i]);
			cleanup_free char *kv = NULL;

			if (!val)
				continue;
			kv = ep_asprintf(err, "%s=%s", env[i], val);
			if (!kv || env_set(out, kv, err) < 0)
				return NULL;
		}
	}
	if (!env_has(out, "PATH") && env_set(out, "PATH=" EP_DEFAULT_PATH, err) < 0)
		return NULL;
	if (tty && !env_has(out, "TERM") && env_set(out, "TERM=xterm", err) < 0)
		return NULL;
	return steal_pointer(&out);
}

/* ---- isolation: capabilities, masked and read-only paths and the seccomp
 * allow-list live in lib/isolation.c; spec_process takes the capabilities,
 * spec_linux the rest ---- */

/* ---- the spec, piece by piece ---- */

static int add_mount(json_t *mounts, const char *dst, const char *type, const char *src,
		     const char *opts_csv, struct ep_error *err)
{
	json_t *opts = json_array(), *m;

	if (!opts)
		return ep_error_oom(err);
	for (const char *o = opts_csv; *o;) {
		size_t n = strcspn(o, ",");

		if (n && json_array_append_new(opts, json_stringn(o, n)) < 0) {
			json_decref(opts);
			return ep_error_set(err, EP_EINVAL, "mount '%s': option is not UTF-8", dst);
		}
		o += n;
		if (*o == ',')
			o++;
	}
	m = json_pack("{s:s,s:s,s:s,s:o}", "destination", dst, "type", type, "source", src,
		      "options", opts);
	if (!m || json_array_append_new(mounts, m) < 0)
		return ep_error_set(err, EP_EINVAL, "mount '%s': path is not UTF-8", dst);
	return 0;
}

/* The working directory: -w, else /workspace, else the image's. */
static const char *spec_cwd(const struct ep_spec_params *p, struct ep_error *err)
{
	const struct ep_run_opts *o = p->o;
	const char *cwd, *wd;

	if (o->workdir)
		cwd = o->workdir;
	else if (p->workspace)
		cwd = "/workspace";
	else {
		wd = json_string_value(json_object_get(p->image_cfg, "WorkingDir"));
		cwd = wd && *wd ? wd : "/";
	}
	if (ep_runtime_check_cpath(cwd, o->workdir ? "working dir" : "image WorkingDir", err) < 0)
		return NULL;
	return cwd;
}

/* "process": args, env, user, cwd, capabilities, rlimits, no_new_privs. */
static json_t *spec_process(const struct ep_spec_params *p, struct ep_error *err)
{
	const struct ep_run_opts *o = p->o;
	json_t *args, *env, *caps, *gids, *rlimits, *process;
	const char *cwd = spec_cwd(p, err);
	struct rlimit rl;

	if (!cwd)
		return NULL;
	args = ep_runtime_args(p->image_cfg, o->cmd, o->n_cmd, o->no_entrypoint, err);
	if (!args)
		return NULL;
	env = ep_runtime_env(p->image_cfg, p->gpu, o->env, o->n_env, p->tty, err);
	if (!env) {
		json_decref(args);
		return NULL;
	}
	caps = ep_capabilities(err);
	if (!caps) {
		json_decref(args);
		json_decref(env);
		return NULL;
	}
	gids = json_array();
	for (size_t i = 0; gids && i < p->n_extra_gids; i++)
		json_array_append_new(gids, json_integer(p->extra_gids[i]));
	/* Never above the current hard limit (podman 4.3 fails here by raising
	 * it); the soft limit goes up to the hard one, as docker's defaults do. */
	rlimits = json_array();
	if (rlimits && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t v = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20) ? (1u << 20)
										    : rl.rlim_max;
		json_array_append_new(rlimits,
				      json_pack("{s:s,s:I,s:I}", "type", "RLIMIT_NOFILE", "hard",
						(json_int_t)v, "soft", (json_int_t)v));
	}
	/* json_pack takes the "o" references even when it fails */
	process = json_pack("{s:b,s:{s:i,s:i,s:o},s:o,s:o,s:s,s:o,s:o,s:b}", "terminal", p->tty,
			    "user", "uid", (int)p->uid, "gid", (int)p->gid, "additionalGids", gids,
			    "args", args, "env", env, "cwd", cwd, "capabilities", caps, "rlimits",
			    rlimits, "noNewPrivileges", 1);
	if (!process)
		return ep_error_set(err, EP_EINVAL, "runtime spec: a value is not UTF-8"), NULL;
	return process;
}

/* /proc, /dev, /sys and the host's /etc/{hosts,resolv.conf,hostname}. */
static int spec_system_mounts(json_t *mounts, const struct ep_spec_params *p, struct ep_error *err)
{
	static const char *const etc[] = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"};
	const struct ep_gpu_plan *gpu = p->gpu;
	uint64_t shm = gpu && gpu->shm_size ? gpu->shm_size : EP_RUN_DEFAULT_SHM;
	cleanup_free char *shm_opts =
	    ep_asprintf(err, "nosuid,noexec,nodev,mode=1777,size=%llu", (unsigned long long)shm);

	if (!shm_opts)
		return -1;
	if (add_mount(mounts, "/proc", "proc", "proc", "nosuid,noexec,nodev", err) < 0 ||
	    add_mount(mounts, "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k",
		      err) < 0 ||
	    /* rootless: gid 5 does not exist in the user namespace */
	    add_mount(mounts, "/dev/pts", "devpts", "devpts",
		      p->rootless ? "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620"
				  : "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
		      err) < 0 ||
	    add_mount(mounts, "/dev/shm", "tmpfs", "shm", shm_opts, err) < 0 ||
	    add_mount(mounts, "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev", err) < 0)
		return -1;
	/* rootless: sysfs needs a network namespace of our own, and cgroup v1
	 * hierarchies cannot be mounted: the host's /sys, bound read-only */
	if (p->rootless) {
		if (add_mount(mounts, "/sys", "bind", "/sys", "rbind,nosuid,noexec,nodev,ro", err) <
		    0)
			return -1;
	} else if (add_mount(mounts, "/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro", err) < 0 ||
		   add_mount(mounts, "/sys/fs/cgroup", "cgroup", "cgroup",
			     "nosuid,noexec,nodev,relatime,ro", err) < 0) {
		return -1;
	}
	for (size_t i = 0; i < EP_ARRAY_SIZE(etc); i++) {
		cleanup_free char *hostp =
		    ep_asprintf(err, "%s%s", p->host_root ? p->host_root : "", etc[i]);

		if (!hostp)
			return -1;
		if (access(hostp, R_OK) == 0 &&
		    add_mount(mounts, etc[i], "bind", hostp, "rbind,rprivate,ro,nosuid,nodev",
			      err) < 0)
			return -1;
	}
	return 0;
}

/* The workspace and -v. */
static int spec_user_mounts(json_t *mounts, const struct ep_spec_params *p, struct ep_error *err)
{
	const struct ep_run_opts *o = p->o;

	if (p->workspace &&
	    add_mount(mounts, "/workspace", "bind", p->workspace, "rbind,rprivate", err) < 0)
		return -1;
	for (size_t i = 0; i < o->n_volumes; i++) {
		const struct ep_volume *v = &o->volumes[i];

		if (add_mount(mounts, v->dst, "bind", v->src,
			      v->ro ? "rbind,rprivate,ro" : "rbind,rprivate", err) < 0)
			return -1;
	}
	return 0;
}

/* The GPU plan's mounts and files (written to BUNDLE/gpu-files/N by the
 * caller). */
static int spec_gpu_mounts(json_t *mounts, const struct ep_spec_params *p, struct ep_error *err)
{
	const struct ep_gpu_plan *gpu = p->gpu;

	/* rootless: no mknod, no device cgroup; the host's nodes, bound */
	for (size_t i = 0; gpu && p->rootless && i < gpu->n_devices; i++)
		if (add_mount(mounts, gpu->devices[i].path, "bind", gpu->devices[i].host_path,
			      "rbind,rprivate,nosuid,noexec", err) < 0)
			return -1;
	for (size_t i = 0; gpu && i < gpu->n_mounts; i++) {
		const struct ep_gpu_mount *m = &gpu->mounts[i];
		const char *mo = m->options;

		if (ep_run_under_proc(m->path))
			continue;
		if (!mo || !*mo)
			mo = m->read_only ? "rbind,rprivate,ro,nosuid,nodev"
					  : "rbind,rprivate,nosuid,nodev";
		if (add_mount(mounts, m->path, m->type ? m->type : "bind", m->host_path, mo, err) <
		    0)
			return -1;
	}
	for (size_t i = 0; gpu && p->gpu_files_dir && i < gpu->n_files; i++) {
		cleanup_free char *src = NULL;

		if (gpu->files[i].in_proc)
			continue;
		src = ep_asprintf(err, "%s/%zu", p->gpu_files_dir, i);
		if (!src || add_mount(mounts, gpu->files[i].path, "bind", src,
				      "rbind,rprivate,ro,nosuid,nodev", err) < 0)
			return -1;
	}
	return 0;
}

/* CDI hooks: only from a CDI spec, which the host's administrator wrote. */
static int spec_hooks(json_t *spec, const struct ep_gpu_plan *gpu, struct ep_error *err)
{
	json_t *hooks;

	if (!gpu || !gpu->n_hooks)
		return 0;
	hooks = json_object();
	for (size_t i = 0; hooks && i < gpu->n_hooks; i++) {
		const struct ep_gpu_hook *h = &gpu->hooks[i];
		json_t *list = json_object_get(hooks, h->hook_name), *hj;

		if (!list) {
			list = json_array();
			json_object_set_new(hooks, h->hook_name, list);
		}
		hj = json_pack("{s:s,s:o,s:o}", "path", h->path, "args",
			       ep_json_strings((const char *const *)h->args, h->n_args), "env",
			       ep_json_strings((const char *const *)h->env, h->n_env));
		if (hj && h->timeout > 0)
			json_object_set_new(hj, "timeout", json_integer(h->timeout));
		json_array_append_new(list, hj);
	}
	if (!hooks || json_object_set_new(spec, "hooks", hooks) < 0)
		return ep_error_oom(err);
	return 0;
}

/* "linux": namespaces, isolation (masked and read-only paths, seccomp; the
 * capabilities are in "process"), the GPU devices and their cgroup rules. */
static json_t *spec_linux(const struct ep_gpu_plan *gpu, int rootless, struct ep_error *err)
{
	json_t *devices = json_array(), *linux_;
	json_t *rules = json_pack("[{s:b,s:s}]", "allow", 0, "access", "rwm");

	for (size_t i = 0; devices && rules && gpu && i < gpu->n_devices; i++) {
		const struct ep_gpu_device *d = &gpu->devices[i];
		char type[2] = {d->type ? d->type : 'c', 0};

		json_array_append_new(devices,
				      json_pack("{s:s,s:s,s:I,s:I,s:i,s:i,s:i}", "path", d->path,
						"type", type, "major", (json_int_t)d->major,
						"minor", (json_int_t)d->minor, "fileMode",
						(int)(d->file_mode ? d->file_mode : 0666), "uid", 0,
						"gid", 0));
		json_array_append_new(rules, json_pack("{s:b,s:s,s:I,s:I,s:s}", "allow", 1, "type",
						       type, "major", (json_int_t)d->major, "minor",
						       (json_int_t)d->minor, "access",
						       d->access[0] ? d->access : "rwm"));
	}
	linux_ =
	    json_pack("{s:[{s:s},{s:s},{s:s},{s:s}],s:o,s:o,s:o,s:{s:o},s:o}", "namespaces", "type",
		      "pid", "type", "ipc", "type", "uts", "type", "mount", "maskedPaths",
		      ep_json_strings(ep_masked_paths, ep_n_masked_paths), "readonlyPaths",
		      ep_json_strings(ep_readonly_paths, ep_n_readonly_paths), "devices", devices,
		      "resources", "devices", rules, "seccomp", ep_seccomp_profile(err));
	if (!linux_)
		return ep_error_oom(err), NULL;
	/* rootless: the devices are mounts (spec_gpu_mounts), and the caller
	 * has no cgroup to write rules into */
	if (rootless) {
		json_object_set_new(linux_, "devices", json_array());
		json_object_del(linux_, "resources");
	}
	return linux_;
}

json_t *ep_runtime_spec(const struct ep_spec_params *p, struct ep_error *err)
{
	cleanup_json json_t *spec = NULL;
	json_t *process = spec_process(p, err), *mounts, *linux_;

	if (!process)
		return NULL;
	mounts = json_array();
	spec = json_pack("{s:s,s:o,s:{s:s,s:b},s:s,s:o}", "ociVersion", "1.0.2", "process", process,
			 "root", "path", p->rootfs, "readonly", 0, "hostname",
			 p->hostname ? p->hostname : "envpin", "mounts", mounts);
	if (!spec || !mounts)
		return ep_error_oom(err), NULL;
	if (spec_system_mounts(mounts, p, err) < 0 || spec_user_mounts(mounts, p, err) < 0 ||
	    spec_gpu_mounts(mounts, p, err) < 0 || spec_hooks(spec, p->gpu, err) < 0)
		return NULL;
	linux_ = spec_linux(p->gpu, p->rootless, err);
	if (!linux_)
		return NULL;
	if (json_object_set_new(spec, "linux", linux_) < 0)
		return ep_error_oom(err), NULL;
	return steal_pointer(&spec);
}
