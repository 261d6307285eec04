/* lib/gpu/cdi.c - CDI specs (cncf-tags/container-device-interface SPEC.md):
 * loading JSON and YAML, picking the spec for a kind, applying containerEdits
 * to a GPU plan with the reference implementation's rules (a node without
 * type/major/minor is stat'ed on the host; an edit at the same container
 * path replaces the earlier one; env is appended). */
#include "cdi.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <yaml.h>

#include "gpu/plan.h"
#include "strvec.h"
#include "jsonutil.h"
#include "util.h"

#define MAX_SPECS 64

/* ---------- YAML -> JSON (libyaml events) ---------- */

struct yctx {
	yaml_parser_t parser;
	const char *path;
	struct ep_error *err;
};

static json_t *y_node(struct yctx *y, yaml_event_t *ev, int depth);

static int y_next(struct yctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev)) {
		ep_error_set(y->err, EP_EINVAL, "'%s':%zu: %s", y->path,
			     y->parser.problem_mark.line + 1,
			     y->parser.problem ? y->parser.problem : "YAML syntax error");
		return -1;
	}
	return 0;
}

/* Plain scalars get YAML's core types: specs say `major: 195`. */
static json_t *y_scalar(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;

	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		char *end;

		if (n == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0)
			return json_null();
		if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
			return json_boolean(s[0] == 't');
		errno = 0;
		long long v = strtoll(s, &end, 0);

		if (*end == '\0' && errno == 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
			return json_integer(v);
	}
	return json_stringn(s, n);
}

static json_t *y_node(struct yctx *y, yaml_event_t *ev, int depth)
{
	json_t *j = NULL;

	if (depth > EP_JSON_MAX_DEPTH) {
		ep_error_set(y->err, EP_EINVAL, "'%s': nested deeper than %d", y->path,
			     EP_JSON_MAX_DEPTH);
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		j = y_scalar(ev);
		if (!j)
			ep_error_oom(y->err);
		return j;
	case YAML_ALIAS_EVENT:
		/* Aliases can expand exponentially; specs never use them. */
		ep_error_set(y->err, EP_EINVAL, "'%s': YAML aliases are not supported", y->path);
		return NULL;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int map = ev->type == YAML_MAPPING_START_EVENT;

		j = map ? json_object() : json_array();
		if (!j) {
			ep_error_oom(y->err);
			return NULL;
		}
		for (;;) {
			yaml_event_t e, v;

			if (y_next(y, &e) < 0)
				goto fail;
			if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				return j;
			}
			if (!map) {
				json_t *c = y_node(y, &e, depth + 1);

				yaml_event_delete(&e);
				if (!c || json_array_append_new(j, c) < 0)
					goto fail;
				continue;
			}
			if (e.type != YAML_SCALAR_EVENT) {
				yaml_event_delete(&e);
				ep_error_set(y->err, EP_EINVAL, "'%s': mapping key is not a scalar",
					     y->path);
				goto fail;
			}
			cleanup_free char *key =
			    strndup((const char *)e.data.scalar.value, e.data.scalar.length);

			yaml_event_delete(&e);
			if (!key) {
				ep_error_oom(y->err);
				goto fail;
			}
			if (y_next(y, &v) < 0)
				goto fail;
			json_t *c = y_node(y, &v, depth + 1);

			yaml_event_delete(&v);
			if (!c || json_object_set_new(j, key, c) < 0)
				goto fail;
		}
	}
	default:
		ep_error_set(y->err, EP_EINVAL, "'%s': unexpected YAML event", y->path);
		return NULL;
	}
fail:
	json_decref(j);
	return NULL;
}

static json_t *yaml_to_json(const char *buf, size_t len, const char *path, struct ep_error *err)
{
	struct yctx y = {.path = path, .err = err};
	yaml_event_t ev;
	json_t *doc = NULL;

	if (!yaml_parser_initialize(&y.parser)) {
		ep_error_oom(err);
		return NULL;
	}
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf, len);
	for (;;) {
		if (y_next(&y, &ev) < 0)
			break;
		yaml_event_type_t t = ev.type;

		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			if (!doc)
				ep_error_set(err, EP_EINVAL, "'%s': empty YAML document", path);
			yaml_parser_delete(&y.parser);
			return doc;
		}
		if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
		    t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT) {
			if (doc) {
				yaml_event_delete(&ev);
				ep_error_set(err, EP_EINVAL, "'%s': more than one YAML document",
					     path);
				break;
			}
			doc = y_node(&y, &ev, 0);
			yaml_event_delete(&ev);
			if (!doc)
				break;
			continue;
		}
		yaml_event_delete(&ev);
	}
	json_decref(doc);
	yaml_parser_delete(&y.parser);
	return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

json_t *ep_cdi_load(const char *path, struct ep_error *err)
{
	size_t len;
	cleanup_free char *buf = ep_read_file(path, EP_CDI_MAX_BYTES, &len, err);

	if (!buf)
		return NULL;
	if (ends_with(path, ".yaml") || ends_with(path, ".yml"))
		return yaml_to_json(buf, len, path, err);
	cleanup_free char *what = ep_asprintf(err, "'%s'", path);

	return what ? ep_json_loadb(buf, len, EP_CDI_MAX_BYTES, what, err) : NULL;
}

/* ---------- finding a spec ---------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ep_cdi_find(const char *host_root, const char *kind, char **path, json_t **spec,
		struct ep_error *err)
{
	static const char *const dirs[] = {"/etc/cdi", "/var/run/cdi"}; /* low to high */

	*path = NULL;
	*spec = NULL;
	for (size_t di = 0; di < EP_ARRAY_SIZE(dirs); di++) {
		cleanup_free char *dir = ep_gpu_hpath(host_root, dirs[di], err);
		char *names[MAX_SPECS];
		size_t n = 0;

		if (!dir)
			goto fail;
		DIR *d = opendir(dir);

		if (!d)
			continue;
		struct dirent *de;

		while ((de = readdir(d)) != NULL && n < MAX_SPECS) {
			if (de->d_name[0] == '.' ||
			    !(ends_with(de->d_name, ".json") || ends_with(de->d_name, ".yaml")))
				continue;
			if (!(names[n] = strdup(de->d_name))) {
				closedir(d);
				for (size_t i = 0; i < n; i++)
					free(names[i]);
				ep_error_oom(err);
				goto fail;
			}
			n++;
		}
		closedir(d);
		qsort(names, n, sizeof(*names), cmp_str);
		int rc = 0;

		for (size_t i = 0; i < n; i++) {
			char *p = rc ? NULL : ep_asprintf(err, "%s/%s", dir, names[i]);
			json_t *j = p ? ep_cdi_load(p, err) : NULL;

			free(names[i]);
			if (rc)
				continue;
			if (!j) {
				/* A spec we cannot read may not be ours: only a
				 * broken nvidia one is fatal. */
				int ours = p && strstr(strrchr(p, '/'), "nvidia") != NULL;

				if (!p || ours)
					rc = -1;
				free(p);
				if (!rc)
					ep_error_clear(err);
				continue;
			}
			const char *k = json_string_value(json_object_get(j, "kind"));

			if (k && strcmp(k, kind) == 0) {
				json_decref(*spec);
				free(*path);
				*spec = j;
				*path = p;
			} else {
				json_decref(j);
				free(p);
			}
		}
		if (rc < 0)
			goto fail;
	}
	return *spec ? 1 : 0;
fail:
	json_decref(*spec);
	free(*path);
	*spec = NULL;
	*path = NULL;
	return -1;
}

/* ---------- applying edits ---------- */

/* An integer field given as a number or a numeric string. */
static int get_u32(const json_t *o, const char *key, uint32_t *out, int *have)
{
	const json_t *v = json_object_get(o, key);

	*have = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= (json_int_t)UINT32_MAX) {
		*out = (uint32_t)json_integer_value(v);
		*have = 1;
		return 0;
	}
	if (json_is_string(v)) {
		char *end;
		unsigned long x = strtoul(json_string_value(v), &end, 0);

		if (*json_string_value(v) && !*end && x <= UINT32_MAX) {
			*out = (uint32_t)x;
			*have = 1;
			return 0;
		}
	}
	return -1;
}

static const char *get_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int apply_nodes(const json_t *nodes, const char *what, const char *root,
		       struct ep_gpu_plan *p, struct ep_error *err)
{
	size_t i;
	const json_t *n;

	if (nodes && !json_is_array(nodes))
		return ep_error_set(err, EP_EINVAL, "%s: deviceNodes is not a list", what);
	json_array_foreach (nodes, i, n) {
		const char *path = get_str(n, "path");
		const char *hp = get_str(n, "hostPath");
		const char *type = get_str(n, "type");
		const char *perm = get_str(n, "permissions");
		uint32_t major = 0, minor = 0, mode = 0;
		int hmaj, hmin, hmode;

		if (ep_gpu_check_cpath(path) < 0 || (hp && hp[0] != '/'))
			return ep_error_set(err, EP_EINVAL, "%s: deviceNodes[%zu]: bad path", what,
					    i);
		if (get_u32(n, "major", &major, &hmaj) < 0 ||
		    get_u32(n, "minor", &minor, &hmin) < 0 ||
		    get_u32(n, "fileMode", &mode, &hmode) < 0)
			return ep_error_set(err, EP_EINVAL,
					    "%s: deviceNodes[%zu]: bad major/minor/fileMode", what,
					    i);
		if (perm && strcmp(perm, "none") != 0 && strspn(perm, "rwm") != strlen(perm))
			return ep_error_set(err, EP_EINVAL,
					    "%s: deviceNodes[%zu]: bad permissions '%s'", what, i,
					    perm);
		cleanup_free char *host = ep_gpu_hpath(root, hp ? hp : path, err);

		if (!host)
			return -1;
		char t = type && *type ? type[0] : 0;

		if (t && !strchr("bcup", t))
			return ep_error_set(err, EP_EINVAL, "%s: deviceNodes[%zu]: bad type '%s'",
					    what, i, type);
		if (!t || !hmaj || !hmin || !hmode) {
			struct stat st;

			if (stat(host, &st) < 0)
				return ep_error_errno(err, EP_EENV, errno, "%s: device '%s'", what,
						      host);
			if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
				return ep_error_set(err, EP_EINVAL, "%s: '%s' is not a device node",
						    what, host);
			if (!t)
				t = S_ISCHR(st.st_mode) ? 'c' : 'b';
			if (!hmaj)
				major = major(st.st_rdev);
			if (!hmin)
				minor = minor(st.st_rdev);
			if (!hmode)
				mode = st.st_mode & 0777;
		}
		if (ep_gpu_add_device(p, path, host, t, major, minor, mode,
				      perm && strcmp(perm, "none") == 0 ? "" : perm, err) < 0)
			return -1;
		if (perm && strcmp(perm, "none") == 0)
			p->devices[p->n_devices - 1].access[0] = '\0';
	}
	return 0;
}

static int apply_mounts(const json_t *mounts, const char *what, const char *root,
			struct ep_gpu_plan *p, struct ep_error *err)
{
	size_t i;
	const json_t *m;

	if (mounts && !json_is_array(mounts))
		return ep_error_set(err, EP_EINVAL, "%s: mounts is not a list", what);
	json_array_foreach (mounts, i, m) {
		const char *hp = get_str(m, "hostPath"), *cp = get_str(m, "containerPath");
		const char *type = get_str(m, "type");
		const json_t *opts = json_object_get(m, "options"), *o;
		struct ep_strbuf buf = EP_STRBUF_INIT;
		size_t k;

		if (!hp || ep_gpu_check_cpath(cp) < 0)
			return ep_error_set(err, EP_EINVAL, "%s: mounts[%zu]: bad path", what, i);
		json_array_foreach (opts, k, o) {
			const char *s = json_string_value(o);

			if (!s || strchr(s, ',')) {
				ep_strbuf_release(&buf);
				return ep_error_set(err, EP_EINVAL, "%s: mounts[%zu]: bad options",
						    what, i);
			}
			ep_strbuf_addf(&buf, "%s%s", buf.len ? "," : "", s);
		}
		if (buf.oom)
			return ep_strbuf_release(&buf), ep_error_oom(err);
		/* hostPath of a bind is a host path; of tmpfs & co. a source name. */
		int bind =
		    !type || strcmp(type, "bind") == 0 || strstr(ep_strbuf_str(&buf), "bind");
		cleanup_free char *host =
		    bind && hp[0] == '/' ? ep_gpu_hpath(root, hp, err) : ep_strdup(hp, err);
		int added =
		    host ? ep_gpu_add_mount(p, host, cp, type ? type : "bind", ep_strbuf_str(&buf),
					    bind ? EP_GPU_MOUNT_LIB : EP_GPU_MOUNT_OTHER, err)
			 : -1;

		ep_strbuf_release(&buf);
		if (added < 0)
			return -1;
		/* Only *.so.<driver version> are libs; the rest is "other". */
		struct ep_gpu_mount *mm = &p->mounts[0];

		for (size_t x = 0; x < p->n_mounts; x++)
			if (strcmp(p->mounts[x].path, cp) == 0)
				mm = &p->mounts[x];
		if (mm->kind == EP_GPU_MOUNT_LIB) {
			const char *b = strrchr(cp, '/') + 1;
			char suffix[80];

			snprintf(suffix, sizeof(suffix), ".so.%s",
				 p->driver_version ? p->driver_version : "");
			if (strncmp(cp, "/usr/bin/", 9) == 0 || strncmp(cp, "/bin/", 5) == 0)
				mm->kind = EP_GPU_MOUNT_BIN;
			else if (strstr(cp, "/firmware/"))
				mm->kind = EP_GPU_MOUNT_FIRMWARE;
			else if (!(strncmp(b, "lib", 3) == 0 && ends_with(b, suffix)))
				mm->kind = EP_GPU_MOUNT_OTHER;
		}
	}
	return 0;
}

static int str_array(const json_t *a, char ***out, size_t *n, struct ep_error *err)
{
	size_t i;
	const json_t *v;

	*out = NULL;
	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return ep_error_set(err, EP_EINVAL, "not a list of strings");
	*out = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!*out)
		return ep_error_oom(err);
	json_array_foreach (a, i, v) {
		if (!json_is_string(v))
			return ep_error_set(err, EP_EINVAL, "not a list of strings");
		if (!((*out)[i] = ep_strdup(json_string_value(v), err)))
			return -1;
		*n = i + 1;
	}
	return 0;
}

static int apply_hooks(const json_t *hooks, const char *what, struct ep_gpu_plan *p,
		       struct ep_error *err)
{
	static const char *const names[] = {"prestart",	      "createRuntime", "createContainer",
					    "startContainer", "poststart",     "poststop"};
	size_t i;
	const json_t *h;

	if (hooks && !json_is_array(hooks))
		return ep_error_set(err, EP_EINVAL, "%s: hooks is not a list", what);
	json_array_foreach (hooks, i, h) {
		const char *name = get_str(h, "hookName"), *path = get_str(h, "path");
		int ok = 0;

		for (size_t k = 0; k < EP_ARRAY_SIZE(names); k++)
			ok |= name && strcmp(name, names[k]) == 0;
		if (!ok || !path || path[0] != '/')
			return ep_error_set(err, EP_EINVAL, "%s: hooks[%zu]: bad hookName or path",
					    what, i);
		struct ep_gpu_hook *nh = realloc(p->hooks, (p->n_hooks + 1) * sizeof(*nh));

		if (!nh)
			return ep_error_oom(err);
		p->hooks = nh;
		nh = &p->hooks[p->n_hooks++];
		memset(nh, 0, sizeof(*nh));
		nh->hook_name = ep_strdup(name, err);
		nh->path = ep_strdup(path, err);
		if (!nh->hook_name || !nh->path)
			return -1;
		if (str_array(json_object_get(h, "args"), &nh->args, &nh->n_args, err) < 0 ||
		    str_array(json_object_get(h, "env"), &nh->env, &nh->n_env, err) < 0)
			return ep_error_wrap(err, "%s: hooks[%zu]", what, i);
		json_int_t t = json_integer_value(json_object_get(h, "timeout"));

		nh->timeout = t > 0 && t < 86400 ? (int)t : 0;
	}
	return 0;
}

static int apply_edits(const json_t *e, const char *what, const char *root, struct ep_gpu_plan *p,
		       struct ep_error *err)
{
	const json_t *env = json_object_get(e, "env"), *v;
	size_t i;

	if (!e)
		return 0;
	if (!json_is_object(e))
		return ep_error_set(err, EP_EINVAL, "%s: containerEdits is not an object", what);
	if (env && !json_is_array(env))
		return ep_error_set(err, EP_EINVAL, "%s: env is not a list", what);
	json_array_foreach (env, i, v) {
		const char *s = json_string_value(v);

		if (!s || !strchr(s, '=') || s[0] == '=')
			return ep_error_set(err, EP_EINVAL, "%s: env[%zu] is not K=V", what, i);
		if (ep_gpu_set_env(p, s, err) < 0)
			return -1;
	}
	if (apply_nodes(json_object_get(e, "deviceNodes"), what, root, p, err) < 0 ||
	    apply_mounts(json_object_get(e, "mounts"), what, root, p, err) < 0 ||
	    apply_hooks(json_object_get(e, "hooks"), what, p, err) < 0)
		return -1;
	return 0;
}

int ep_cdi_apply(const json_t *spec, const char *spec_path, const char *host_root,
		 const char *const *names, size_t n_names, struct ep_gpu_plan *p,
		 struct ep_error *err)
{
	const char *kind = get_str(spec, "kind");
	const json_t *devs = json_object_get(spec, "devices");

	if (!kind || !json_is_array(devs) || !get_str(spec, "cdiVersion"))
		return ep_error_set(err, EP_EINVAL,
				    "CDI spec '%s': needs cdiVersion, kind and devices", spec_path);
	if (apply_edits(json_object_get(spec, "containerEdits"), spec_path, host_root, p, err) < 0)
		return -1;
	for (size_t k = 0; k < n_names; k++) {
		const json_t *dev = NULL, *d;
		size_t i;

		json_array_foreach (devs, i, d) {
			const char *nm = get_str(d, "name");

			if (nm && strcmp(nm, names[k]) == 0)
				dev = d;
		}
		if (!dev) {
			struct ep_strbuf list = EP_STRBUF_INIT;

			json_array_foreach (devs, i, d) {
				const char *nm = get_str(d, "name");

				if (nm)
					ep_strbuf_addf(&list, "%s%s", list.len ? ", " : "", nm);
			}
			ep_error_set(err, EP_EINVAL,
				     "CDI spec '%s' has no device '%s' (it has: %s)", spec_path,
				     names[k], ep_strbuf_str(&list));
			ep_strbuf_release(&list);
			return -1;
		}
		cleanup_free char *what =
		    ep_asprintf(err, "CDI spec '%s' device '%s'", spec_path, names[k]);

		if (!what || apply_edits(json_object_get(dev, "containerEdits"), what, host_root, p,
					 err) < 0)
			return -1;
		char **nd = realloc(p->cdi_devices, (p->n_cdi_devices + 1) * sizeof(*nd));

		if (!nd)
			return ep_error_oom(err);
		p->cdi_devices = nd;
		if (!(nd[p->n_cdi_devices] = ep_asprintf(err, "%s=%s", kind, names[k])))
			return -1;
		p->n_cdi_devices++;
	}
	p->cdi_spec = ep_strdup(spec_path, err);
	if (!p->cdi_spec)
		return -1;
	p->from_cdi = 1;
	return 0;
}
