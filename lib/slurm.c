/* lib/slurm.c - oci.conf, the runc calls behind it, and the per-node
 * certification report (slurm.h). */
#include "slurm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cert.h"
#include "jsonutil.h"
#include "rootless.h"
#include "strvec.h"
#include "util.h"

#define CERT_MAX (16u << 20)

char *ep_slurm_oci_conf(const char *envpin, struct ep_error *err)
{
	/* The container id: node, user, job, step, task (%n.%u.%j.%s.%t, as
	 * Slurm's own examples use), unique per task on a node. */
	return ep_asprintf(
	    err,
	    "# oci.conf for Slurm 22.05+: `srun --container=BUNDLE` runs an envpin bundle\n"
	    "# (`envpin bundle IMAGE BUNDLE`). Written by `envpin slurm`; see envpin's\n"
	    "# docs/slurm.md. Put it beside slurm.conf on every node and restart slurmd.\n"
	    "# runc runs as the job's user: as root inside envpin's user namespace when\n"
	    "# the user is not root (envpin doctor checks the node).\n"
	    "RunTimeQuery=\"%s slurm oci state %%n.%%u.%%j.%%s.%%t\"\n"
	    "RunTimeKill=\"%s slurm oci kill %%n.%%u.%%j.%%s.%%t\"\n"
	    "RunTimeDelete=\"%s slurm oci delete %%n.%%u.%%j.%%s.%%t\"\n"
	    "RunTimeRun=\"%s slurm oci run %%n.%%u.%%j.%%s.%%t %%b\"\n",
	    envpin, envpin, envpin, envpin);
}

char *ep_slurm_runc_root(struct ep_error *err)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *dir;
	struct stat st;

	if (geteuid() == 0)
		dir = ep_strdup("/run/envpin/slurm-runc", err);
	else if (xdg && xdg[0] == '/')
		dir = ep_asprintf(err, "%s/envpin-runc", xdg);
	else
		dir = ep_asprintf(err, "/tmp/envpin-runc-%u", (unsigned)getuid());
	if (!dir)
		return NULL;
	if (geteuid() == 0) {
		if (ep_mkdir_p(dir, err) < 0) {
			free(dir);
			return NULL;
		}
		return dir;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", dir);
		free(dir);
		return NULL;
	}
	/* /tmp is shared: a directory someone else made is not ours to use */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077)) {
		ep_error_set(err, EP_EENV, "'%s' is not a private directory of yours", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

int ep_slurm_runc_argv(enum ep_slurm_op op, const char *id, const char *bundle, const char *sig,
		       struct ep_strvec *a, struct ep_error *err)
{
	cleanup_free char *root = ep_slurm_runc_root(err);

	if (!root)
		return -1;
	for (const char *p = id; *p; p++)
		if (!(*p == '.' || *p == '-' || *p == '_' || *p == '+' ||
		      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return ep_error_set(err, EP_EINVAL, "container id '%s': unexpected '%c'",
					    id, *p);
	if (!*id)
		return ep_error_set(err, EP_EINVAL, "empty container id");
	if (geteuid() != 0 && ep_userns_enter(0, 0, err) < 0)
		return -1;
	ep_strvec_push(a, "runc");
	ep_strvec_push(a, "--root");
	ep_strvec_push(a, root);
	switch (op) {
	case EP_SLURM_RUN:
		ep_strvec_push(a, "run");
		ep_strvec_push(a, "--bundle");
		ep_strvec_push(a, bundle);
		break;
	case EP_SLURM_STATE:
		ep_strvec_push(a, "state");
		break;
	case EP_SLURM_KILL:
		ep_strvec_push(a, "kill");
		if (!sig)
			ep_strvec_push(a, "--all");
		break;
	case EP_SLURM_DELETE:
		ep_strvec_push(a, "delete");
		ep_strvec_push(a, "--force");
		break;
	}
	ep_strvec_push(a, id);
	if (op == EP_SLURM_KILL)
		ep_strvec_push(a, sig ? sig : "KILL");
	if (a->oom)
		return ep_error_oom(err);
	return 0;
}

/* "cert-NODE.json" or "NODE.json" -> NODE. */
static char *node_from_file(const char *f)
{
	const char *b = strrchr(f, '/');
	size_t n;

	b = b ? b + 1 : f;
	if (!strncmp(b, "cert-", 5))
		b += 5;
	n = strlen(b);
	if (n > 5 && !strcmp(b + n - 5, ".json"))
		n -= 5;
	return strndup(b, n);
}

/* Why a node failed, as text: the certificate's reasons ({"reason",
 * "count"} or strings), then each failed check with its detail. */
static json_t *why_of(const json_t *c)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach (json_object_get(c, "reasons"), i, v) {
		const char *r = json_is_string(v) ? json_string_value(v)
						  : json_string_value(json_object_get(v, "reason"));
		if (r)
			json_array_append_new(out, json_string(r));
	}
	json_array_foreach (json_object_get(c, "checks"), i, v) {
		const char *st = json_string_value(json_object_get(v, "status"));
		char *line = NULL;

		if (!st || strcmp(st, "fail"))
			continue;
		if (asprintf(&line, "%s: %s", json_string_value(json_object_get(v, "name")) ?: "?",
			     json_string_value(json_object_get(v, "detail")) ?: "failed") >= 0) {
			json_array_append_new(out, json_string(line));
			free(line);
		}
	}
	return out;
}

json_t *ep_certs_merge(const char *const *files, const char *const *nodes, size_t n,
		       struct ep_error *err)
{
	cleanup_json json_t *out = json_object(), *list = json_array();
	json_t **certs = calloc(n + 1, sizeof(*certs));
	const char *image = NULL;
	const json_t *ref_fp = NULL;
	int images_agree = 1, fps_agree = 1;
	size_t passed = 0, failed = 0;

	if (!out || !list || !certs) {
		free(certs);
		return ep_error_oom(err), NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct ep_error e = EP_ERROR_INIT;
		cleanup_free char *text = ep_read_file(files[i], CERT_MAX, NULL, &e);

		certs[i] = text ? json_loads(text, 0, NULL) : NULL;
		if (certs[i] && !json_is_object(certs[i])) {
			json_decref(certs[i]);
			certs[i] = NULL;
		}
	}
	/* the reference: the first node that passed with a fingerprint */
	for (size_t i = 0; i < n && !ref_fp; i++) {
		const json_t *fp = json_object_get(certs[i], "fingerprint");

		if (certs[i] &&
		    !strcmp(json_string_value(json_object_get(certs[i], "result")) ?: "", "pass") &&
		    json_is_object(fp)) {
			ref_fp = fp;
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *c = certs[i], *row;
		cleanup_free char *node =
		    nodes && nodes[i] ? strdup(nodes[i]) : node_from_file(files[i]);
		const char *result = json_string_value(json_object_get(c, "result"));
		const char *dig =
		    json_string_value(json_object_get(json_object_get(c, "image"), "digest"));
		const json_t *fp = json_object_get(c, "fingerprint");
		const char *fpstate = "none";
		json_t *diffs = NULL;
		int ok;

		row = json_pack("{s:s?,s:s}", "node", node, "file", files[i]);
		if (!row || json_array_append_new(list, row) < 0)
			goto oom;
		if (!c) {
			json_object_set_new(row, "result", json_string("fail"));
			json_object_set_new(
			    row, "reasons",
			    json_pack("[s]",
				      "certificate missing or not JSON (did the check run?)"));
			failed++;
			continue;
		}
		ok = result && !strcmp(result, "pass");
		ok ? passed++ : failed++;
		json_object_set_new(row, "result", json_string(ok ? "pass" : "fail"));
		json_object_set_new(row, "reasons", why_of(c));
		json_object_set(row, "image",
				json_object_get(json_object_get(c, "image"), "digest")
				    ?: json_null());
		json_object_set(row, "driver_version",
				json_object_get(json_object_get(c, "passthrough"), "driver_version")
				    ?: json_null());
		json_object_set_new(
		    row, "gpus",
		    json_integer((json_int_t)json_array_size(json_object_get(c, "gpus"))));
		if (dig) {
			if (!image)
				image = dig;
			else if (strcmp(image, dig))
				images_agree = 0;
		}
		if (json_is_object(fp) && ref_fp) {
			if (fp == ref_fp) {
				fpstate = "reference";
			} else {
				struct ep_error e = EP_ERROR_INIT;
				json_t *cmp = ep_cert_compare_fingerprints((json_t *)ref_fp,
									   (json_t *)fp, &e);

				if (cmp && json_is_true(json_object_get(cmp, "match"))) {
					fpstate = "match";
				} else {
					fpstate = "differs";
					if (ok)
						fps_agree = 0;
					if (cmp) {
						size_t k;
						json_t *f;

						diffs = json_array();
						json_array_foreach (json_object_get(cmp, "fields"),
								    k, f)
							if (!json_is_true(json_object_get(f, "ok")))
								json_array_append(diffs, f);
					}
				}
				json_decref(cmp);
			}
		}
		json_object_set_new(row, "fingerprint", json_string(fpstate));
		if (diffs)
			json_object_set_new(row, "differences", diffs);
	}
	json_object_set_new(out, "reference_node", json_null());
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *row = json_array_get(list, i);

		if (!strcmp(json_string_value(json_object_get(row, "fingerprint")) ?: "",
			    "reference"))
			json_object_set(out, "reference_node", json_object_get(row, "node"));
	}
	json_object_set_new(out, "image", image ? json_string(image) : json_null());
	json_object_set_new(out, "images_agree", json_boolean(images_agree));
	json_object_set_new(out, "nodes", json_incref(list));
	json_object_set_new(out, "passed", json_integer((json_int_t)passed));
	json_object_set_new(out, "failed", json_integer((json_int_t)failed));
	json_object_set_new(out, "fingerprints_agree", json_boolean(fps_agree && ref_fp));
	json_object_set_new(out, "result",
			    json_string(failed == 0 && n > 0 && fps_agree && images_agree && ref_fp
					    ? "pass"
					    : "fail"));
	for (size_t i = 0; i < n; i++)
		json_decref(certs[i]);
	free(certs);
	return steal_pointer(&out);
oom:
	for (size_t i = 0; i < n; i++)
		json_decref(certs[i]);
	free(certs);
	return ep_error_oom(err), NULL;
}
