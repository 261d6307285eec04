/* lib/k8s.c - the Job/Pod manifest of an image pinned by digest, and a
 * small YAML writer for it (k8s.h). */
#include "k8s.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "strvec.h"
#include "util.h"

#define SELFCHECK "/opt/envpin/bin/envpin-selfcheck"
#define FITSINFER "/opt/envpin/bin/envpin-fitsinfer"
#define SMOKE_DIR "/opt/envpin/share/smoke"

/* RFC 1123 label: what a Job and Pod name must be (63 for both kinds:
 * a Job's name also labels its pods). */
static int dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

/* "astro-1b8a8211" from ".../astro" and the digest. */
static char *default_name(const struct ep_ref *r, struct ep_error *err)
{
	const char *base = strrchr(r->repo, '/');
	char buf[64];
	size_t k = 0;

	base = base ? base + 1 : r->repo;
	for (const char *p = base; *p && k < 40; p++) {
		char c = (char)tolower((unsigned char)*p);

		buf[k++] = isalnum((unsigned char)c) ? c : '-';
	}
	while (k && buf[k - 1] == '-')
		k--;
	if (k == 0)
		buf[k++] = 'e';
	snprintf(buf + k, sizeof(buf) - k, "-%.8s", r->digest + 7);
	return ep_strdup(buf, err);
}

static json_t *str_array(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *resources(unsigned gpus)
{
	char n[16];

	if (!gpus)
		return json_object();
	snprintf(n, sizeof(n), "%u", gpus);
	return json_pack("{s:{s:s}}", "limits", "nvidia.com/gpu", n);
}

/* The init containers: the image's GPU self-check (envpin check's first
 * half; --require-gpu --expect-gpus N with a GPU limit) and its FITS smoke
 * test, with the same GPU limit as the work. */
static json_t *init_containers(const char *image, unsigned gpus)
{
	char n[16];
	json_t *sc_args = json_pack("[s]", "--json");

	snprintf(n, sizeof(n), "%u", gpus);
	if (sc_args && gpus) {
		json_array_append_new(sc_args, json_string("--require-gpu"));
		json_array_append_new(sc_args, json_string("--expect-gpus"));
		json_array_append_new(sc_args, json_string(n));
	}
	return json_pack("[{s:s,s:s,s:[s],s:o,s:o},{s:s,s:s,s:[s],s:[s,s,s],s:o}]", "name",
			 "envpin-check-gpu", "image", image, "command", SELFCHECK, "args", sc_args,
			 "resources", resources(gpus), "name", "envpin-check-fits", "image", image,
			 "command", FITSINFER, "args", "--smoke", SMOKE_DIR, "--json", "resources",
			 resources(gpus));
}

json_t *ep_k8s_manifest(const struct ep_k8s_opts *o, struct ep_error *err)
{
	struct ep_ref r;
	cleanup_free char *image = NULL, *name = NULL;
	cleanup_json json_t *labels = NULL, *container = NULL, *pod_spec = NULL, *env = NULL;
	json_t *out;

	if (ep_ref_parse(o->image, &r, err) < 0)
		return NULL;
	if (!r.digest[0]) {
		ep_error_set(err, EP_EINVAL,
			     "'%s' has no digest: a manifest pins REPO@sha256:... (a tag can "
			     "move; see `envpin push`, which prints the digest)",
			     o->image);
		goto fail;
	}
	if (o->pvc && o->host_path) {
		ep_error_set(err, EP_EINVAL, "--pvc and --host-path: one workspace only");
		goto fail;
	}
	if (o->host_path && o->host_path[0] != '/') {
		ep_error_set(err, EP_EINVAL, "--host-path '%s' is not absolute", o->host_path);
		goto fail;
	}
	if (o->pvc && !dns_label(o->pvc) && strlen(o->pvc) <= 253) {
		ep_error_set(err, EP_EINVAL, "--pvc '%s' is not a valid claim name", o->pvc);
		goto fail;
	}
	/* the tag, if any, is left out: the digest alone names the image */
	image = ep_asprintf(err, "%s/%s@%s", r.host, r.repo, r.digest);
	name = o->name ? ep_strdup(o->name, err) : default_name(&r, err);
	if (!image || !name)
		goto fail;
	if (!dns_label(name)) {
		ep_error_set(err, EP_EINVAL,
			     "name '%s': use 1 to 63 of [a-z0-9-], starting and ending with a "
			     "letter or digit",
			     name);
		goto fail;
	}
	env = json_array();
	for (size_t i = 0; env && i < o->n_env; i++) {
		const char *eq = strchr(o->env[i], '=');

		if (!eq || eq == o->env[i]) {
			ep_error_set(err, EP_EINVAL, "-e '%s': expected K=V", o->env[i]);
			goto fail;
		}
		json_array_append_new(env, json_pack("{s:s%,s:s}", "name", o->env[i],
						     (size_t)(eq - o->env[i]), "value", eq + 1));
	}
	labels = json_pack("{s:s,s:s}", "app.kubernetes.io/name", name,
			   "app.kubernetes.io/managed-by", "envpin");
	container = json_pack("{s:s,s:s,s:o}", "name", "work", "image", image, "resources",
			      resources(o->gpus));
	pod_spec = json_pack("{s:s,s:[O]}", "restartPolicy", o->pod ? "Never" : "Never",
			     "containers", container);
	if (!labels || !container || !pod_spec || !env)
		goto oom;
	if (o->n_cmd)
		json_object_set_new(container, "args", str_array(o->cmd, o->n_cmd));
	if (json_array_size(env))
		json_object_set(container, "env", env);
	if (o->pvc || o->host_path) {
		json_object_set_new(container, "workingDir", json_string("/workspace"));
		json_object_set_new(
		    container, "volumeMounts",
		    json_pack("[{s:s,s:s}]", "name", "workspace", "mountPath", "/workspace"));
		json_object_set_new(pod_spec, "volumes",
				    o->pvc ? json_pack("[{s:s,s:{s:s}}]", "name", "workspace",
						       "persistentVolumeClaim", "claimName", o->pvc)
					   : json_pack("[{s:s,s:{s:s,s:s}}]", "name", "workspace",
						       "hostPath", "path", o->host_path, "type",
						       "Directory"));
	}
	if (!o->no_check)
		json_object_set_new(pod_spec, "initContainers", init_containers(image, o->gpus));
	if (o->runtime_class)
		json_object_set_new(pod_spec, "runtimeClassName", json_string(o->runtime_class));
	{
		json_t *meta = json_pack("{s:s,s:O,s:{s:s}}", "name", name, "labels", labels,
					 "annotations", "envpin.dev/image-digest", r.digest);

		if (meta && o->k8s_namespace)
			json_object_set_new(meta, "namespace", json_string(o->k8s_namespace));
		if (o->pod)
			out = json_pack("{s:s,s:s,s:o,s:O}", "apiVersion", "v1", "kind", "Pod",
					"metadata", meta, "spec", pod_spec);
		else
			out = json_pack("{s:s,s:s,s:o,s:{s:i,s:{s:{s:O},s:O}}}", "apiVersion",
					"batch/v1", "kind", "Job", "metadata", meta, "spec",
					"backoffLimit", 0, "template", "metadata", "labels", labels,
					"spec", pod_spec);
	}
	if (!out)
		goto oom;
	ep_ref_release(&r);
	return out;
oom:
	ep_error_oom(err);
fail:
	ep_ref_release(&r);
	return NULL;
}

/* ---- YAML ---- */

static void yaml_scalar(struct ep_strbuf *b, const json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	if (!s) {
		b->oom = 1;
		return;
	}
	ep_strbuf_addstr(b, s);
	free(s);
}

static void yaml_value(struct ep_strbuf *b, const json_t *v, int indent);

static void yaml_object(struct ep_strbuf *b, const json_t *o, int indent, int first_inline)
{
	const char *k;
	json_t *v;
	int first = 1;

	json_object_foreach ((json_t *)o, k, v) {
		if (!(first && first_inline))
			ep_strbuf_addf(b, "%*s", indent, "");
		first = 0;
		ep_strbuf_addf(b, "%s:", k);
		yaml_value(b, v, indent + 2);
	}
}

static void yaml_value(struct ep_strbuf *b, const json_t *v, int indent)
{
	size_t i;
	json_t *e;

	if (json_is_object(v) && json_object_size(v)) {
		ep_strbuf_addstr(b, "\n");
		yaml_object(b, v, indent, 0);
	} else if (json_is_array(v) && json_array_size(v)) {
		ep_strbuf_addstr(b, "\n");
		json_array_foreach ((json_t *)v, i, e) {
			ep_strbuf_addf(b, "%*s- ", indent, "");
			if (json_is_object(e) && json_object_size(e))
				yaml_object(b, e, indent + 2, 1);
			else if (json_is_array(e) && json_array_size(e)) {
				/* flow style for nested lists (none in our manifests) */
				yaml_scalar(b, e);
				ep_strbuf_addstr(b, "\n");
			} else {
				yaml_scalar(b, e);
				ep_strbuf_addstr(b, "\n");
			}
		}
	} else {
		ep_strbuf_addstr(b, " ");
		yaml_scalar(b, v);
		ep_strbuf_addstr(b, "\n");
	}
}

char *ep_k8s_yaml(const json_t *j, struct ep_error *err)
{
	struct ep_strbuf b = EP_STRBUF_INIT;

	yaml_object(&b, j, 0, 0);
	if (b.oom) {
		ep_strbuf_release(&b);
		return ep_error_oom(err), NULL;
	}
	return ep_strbuf_detach(&b);
}
