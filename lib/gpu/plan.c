/* lib/gpu/plan.c - the passthrough plan (struct ep_gpu_plan) as both
 * planners fill it: lib/gpu/gpu.c (the driver found on the host) and
 * lib/gpu/cdi.c (a CDI spec).  Every adder replaces an entry with the same
 * container path (CDI's rule) and takes copies of its strings. */
#include "gpu/plan.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

char *ep_gpu_hpath(const char *root, const char *abs, struct ep_error *err)
{
	if (!root || strcmp(root, "/") == 0)
		return ep_strdup(abs, err);
	return ep_path_join(root, abs, err);
}

int ep_gpu_check_cpath(const char *path)
{
	if (!path || path[0] != '/' || strlen(path) > PATH_MAX)
		return -1;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -1;
		p += n;
	}
	return 0;
}

int ep_gpu_push(void **arr, size_t *n, size_t elem, struct ep_error *err)
{
	void *a = realloc(*arr, (*n + 1) * elem);

	if (!a)
		return ep_error_oom(err);
	memset((char *)a + *n * elem, 0, elem);
	*arr = a;
	(*n)++;
	return 0;
}

static void device_release(struct ep_gpu_device *d)
{
	free(d->path);
	free(d->host_path);
}

static void mount_release(struct ep_gpu_mount *m)
{
	free(m->host_path);
	free(m->path);
	free(m->type);
	free(m->options);
}

int ep_gpu_add_device(struct ep_gpu_plan *p, const char *path, const char *host_path, char type,
		      uint32_t major, uint32_t minor, uint32_t mode, const char *access,
		      struct ep_error *err)
{
	struct ep_gpu_device d = {0};

	d.path = ep_strdup(path, err);
	d.host_path = ep_strdup(host_path, err);
	if (!d.path || !d.host_path) {
		device_release(&d);
		return -1;
	}
	d.type = type;
	d.major = major;
	d.minor = minor;
	d.file_mode = mode;
	snprintf(d.access, sizeof(d.access), "%s", access && *access ? access : "rwm");
	for (size_t i = 0; i < p->n_devices; i++) {
		if (strcmp(p->devices[i].path, path) == 0) {
			device_release(&p->devices[i]);
			p->devices[i] = d;
			return 0;
		}
	}
	if (ep_gpu_push((void **)&p->devices, &p->n_devices, sizeof(d), err) < 0) {
		device_release(&d);
		return -1;
	}
	p->devices[p->n_devices - 1] = d;
	return 0;
}

int ep_gpu_add_mount(struct ep_gpu_plan *p, const char *host_path, const char *path,
		     const char *type, const char *options, enum ep_gpu_mount_kind kind,
		     struct ep_error *err)
{
	struct ep_gpu_mount m = {0};

	m.host_path = ep_strdup(host_path, err);
	m.path = ep_strdup(path, err);
	m.type = ep_strdup(type ? type : "bind", err);
	m.options = ep_strdup(options ? options : "", err);
	if (!m.host_path || !m.path || !m.type || !m.options) {
		mount_release(&m);
		return -1;
	}
	/* "ro" as a whole option word. */
	for (const char *o = m.options; *o;) {
		size_t n = strcspn(o, ",");

		if (n == 2 && strncmp(o, "ro", 2) == 0)
			m.read_only = 1;
		o += n;
		if (*o == ',')
			o++;
	}
	m.kind = kind;
	for (size_t i = 0; i < p->n_mounts; i++) {
		if (strcmp(p->mounts[i].path, path) == 0) {
			mount_release(&p->mounts[i]);
			p->mounts[i] = m;
			return 0;
		}
	}
	if (ep_gpu_push((void **)&p->mounts, &p->n_mounts, sizeof(m), err) < 0) {
		mount_release(&m);
		return -1;
	}
	p->mounts[p->n_mounts - 1] = m;
	return 0;
}

int ep_gpu_add_link(struct ep_gpu_plan *p, const char *path, const char *target,
		    struct ep_error *err)
{
	for (size_t i = 0; i < p->n_links; i++)
		if (strcmp(p->links[i].path, path) == 0)
			return 0; /* first wins: the SONAME link before guesses */
	char *pa = ep_strdup(path, err), *ta = pa ? ep_strdup(target, err) : NULL;

	if (!ta || ep_gpu_push((void **)&p->links, &p->n_links, sizeof(*p->links), err) < 0) {
		free(pa);
		free(ta);
		return -1;
	}
	p->links[p->n_links - 1].path = pa;
	p->links[p->n_links - 1].target = ta;
	return 0;
}

int ep_gpu_set_env(struct ep_gpu_plan *p, const char *kv, struct ep_error *err)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
	char *dup = ep_strdup(kv, err);

	if (!dup)
		return -1;
	for (size_t i = 0; i < p->n_env; i++) {
		if (strncmp(p->env[i], kv, klen) == 0 && p->env[i][klen] == '=') {
			free(p->env[i]);
			p->env[i] = dup;
			return 0;
		}
	}
	if (ep_gpu_push((void **)&p->env, &p->n_env, sizeof(char *), err) < 0) {
		free(dup);
		return -1;
	}
	p->env[p->n_env - 1] = dup;
	return 0;
}

void ep_gpu_plan_release(struct ep_gpu_plan *p)
{
	if (!p)
		return;
	free(p->host_root);
	free(p->driver_version);
	for (size_t i = 0; i < p->n_gpus; i++) {
		free(p->gpus[i].uuid);
		free(p->gpus[i].name);
		free(p->gpus[i].bus_id);
	}
	free(p->gpus);
	for (size_t i = 0; i < p->n_devices; i++)
		device_release(&p->devices[i]);
	free(p->devices);
	for (size_t i = 0; i < p->n_mounts; i++)
		mount_release(&p->mounts[i]);
	free(p->mounts);
	for (size_t i = 0; i < p->n_links; i++) {
		free(p->links[i].path);
		free(p->links[i].target);
	}
	free(p->links);
	for (size_t i = 0; i < p->n_env; i++)
		free(p->env[i]);
	free(p->env);
	free(p->lib_dir);
	free(p->visible_devices);
	for (size_t i = 0; i < p->n_files; i++) {
		free(p->files[i].path);
		free(p->files[i].content);
	}
	free(p->files);
	for (size_t i = 0; i < p->n_hooks; i++) {
		struct ep_gpu_hook *h = &p->hooks[i];

		free(h->hook_name);
		free(h->path);
		for (size_t j = 0; j < h->n_args; j++)
			free(h->args[j]);
		free(h->args);
		for (size_t j = 0; j < h->n_env; j++)
			free(h->env[j]);
		free(h->env);
	}
	free(p->hooks);
	free(p->cdi_spec);
	for (size_t i = 0; i < p->n_cdi_devices; i++)
		free(p->cdi_devices[i]);
	free(p->cdi_devices);
	memset(p, 0, sizeof(*p));
}
