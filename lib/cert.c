#include "cert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "build.h"
#include "digest.h"
#include "jsonutil.h"
#include "runcver.h"
#include "util.h"

/* The runtime that ran the checks: runc's version with the native engine
 * ("auto" is native for root), else null. */
static json_t *runtime_info(const char *engine)
{
	struct ep_runc_version v;
	struct ep_error e = EP_ERROR_INIT;
	json_t *j;

	if (!engine || (strcmp(engine, "native") && (strcmp(engine, "auto") || geteuid() != 0)) ||
	    ep_runc_version(NULL, &v, &e) < 0 || !(j = ep_runc_version_json(&v)))
		return json_null();
	return j;
}

static json_t *os_pretty_name(void)
{
	cleanup_free char *text = ep_read_file("/etc/os-release", 65536, NULL, NULL);
	char *p, *e;

	if (!text || !(p = strstr(text, "PRETTY_NAME=")))
		return json_null();
	p += 12;
	if (*p == '"')
		p++;
	e = p + strcspn(p, "\"\n");
	*e = '\0';
	return json_string(p);
}

static json_t *cpu_model(void)
{
	cleanup_free char *text = ep_read_file("/proc/cpuinfo", 4u << 20, NULL, NULL);
	char *p, *e;

	if (!text || !(p = strstr(text, "model name")) || !(p = strchr(p, ':')))
		return json_null();
	p += 2;
	e = p + strcspn(p, "\n");
	*e = '\0';
	return json_string(p);
}

json_t *ep_cert_host(void)
{
	struct utsname u;
	json_t *h = json_object();
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (!h)
		return NULL;
	if (uname(&u) == 0) {
		json_object_set_new(h, "kernel", json_string(u.release));
		json_object_set_new(h, "machine", json_string(u.machine));
	}
	json_object_set_new(h, "os", os_pretty_name());
	json_object_set_new(h, "cpu", cpu_model());
	json_object_set_new(h, "cpus", json_integer(ep_ncpu()));
	if (pages > 0 && psz > 0)
		json_object_set_new(h, "memory_bytes", json_integer((json_int_t)pages * psz));
	return h;
}

/* GPU checks are the selfcheck's, plus fitsinfer checks whose name says cuda. */
static int is_gpu_check(const char *program, const char *name)
{
	if (!strcmp(program, "selfcheck"))
		return 1;
	return name && (strstr(name, "cuda") || strstr(name, "gpu"));
}

static void add_checks(json_t *out, const char *program, json_t *doc, int *n_fail, int *n_gpu_ok,
		       int *n_gpu_skip, int *n_gpu)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(doc, "checks"), i, c) {
		json_t *copy = json_deep_copy(c);
		const char *st = json_string_value(json_object_get(c, "status"));
		const char *name = json_string_value(json_object_get(c, "name"));
		int gpu = is_gpu_check(program, name);

		if (!copy)
			continue;
		json_object_set_new(copy, "program", json_string(program));
		json_object_set_new(copy, "gpu", json_boolean(gpu));
		json_array_append_new(out, copy);
		if (gpu)
			(*n_gpu)++;
		if (st && !strcmp(st, "fail"))
			(*n_fail)++;
		if (gpu && st && !strcmp(st, "pass"))
			(*n_gpu_ok)++;
		if (gpu && st && !strcmp(st, "skip"))
			(*n_gpu_skip)++;
	}
}

/* Counts over the checks of both programs, for the summary and the reasons. */
struct cert_tally {
	int n_fail, n_gpu_ok, n_gpu_skip, n_gpu;
};

/* A program that failed without reporting a failed check of its own gets
 * one, named after the program, so that the certificate says why. */
static void add_program_failure(json_t *checks, const char *program, const char *detail,
				struct cert_tally *t)
{
	json_array_append_new(checks,
			      json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", program, "program",
					program, "status", "fail", "gpu", 0, "detail", detail));
	t->n_fail++;
}

/* The self-check's part: driver, GPUs, CUDA library versions and checks. */
static void cert_add_selfcheck(json_t *cert, json_t *checks, json_t *libs,
			       const struct ep_cert_inputs *in, struct cert_tally *t)
{
	json_t *sc = in->selfcheck;
	const char *v;
	int before = t->n_fail;

	if (!sc) {
		json_object_set_new(cert, "driver", json_null());
		json_object_set_new(cert, "gpus", json_array());
		add_program_failure(checks, "selfcheck",
				    in->selfcheck_error ? in->selfcheck_error : "did not run", t);
		return;
	}
	json_object_set_new(cert, "driver",
			    json_pack("{s:O?}", "version", json_object_get(sc, "driver_version")));
	/* a new empty array when the self-check lists no devices (set_new: no leak) */
	json_object_set_new(cert, "gpus",
			    json_is_array(json_object_get(sc, "devices"))
				? json_incref(json_object_get(sc, "devices"))
				: json_array());
	if ((v = json_string_value(json_object_get(sc, "runtime_version"))))
		json_object_set_new(libs, "cudart", json_string(v));
	if ((v = json_string_value(json_object_get(sc, "cublas_version"))))
		json_object_set_new(libs, "cublas", json_string(v));
	if ((v = json_string_value(json_object_get(sc, "cudnn_version"))))
		json_object_set_new(libs, "cudnn", json_string(v));
	if ((v = json_string_value(json_object_get(sc, "nccl_version"))))
		json_object_set_new(libs, "nccl", json_string(v));
	add_checks(checks, "selfcheck", sc, &t->n_fail, &t->n_gpu_ok, &t->n_gpu_skip, &t->n_gpu);
	if (t->n_fail == before && (in->selfcheck_error || in->selfcheck_status != 0))
		add_program_failure(checks, "selfcheck",
				    in->selfcheck_error ? in->selfcheck_error
							: "the self-check exited with a failure",
				    t);
}

/* The FITS smoke test's part: model library versions, checks, fingerprint. */
static void cert_add_fitsinfer(json_t *cert, json_t *checks, json_t *libs,
			       const struct ep_cert_inputs *in, struct cert_tally *t)
{
	json_t *fi = in->fitsinfer;
	json_t *model = json_object_get(fi, "model");
	const char *result = json_string_value(json_object_get(fi, "result"));
	int before = t->n_fail;

	if (!fi) {
		json_object_set_new(cert, "fingerprint", json_null());
		add_program_failure(checks, "fitsinfer",
				    in->fitsinfer_error ? in->fitsinfer_error : "did not run", t);
		return;
	}
	if (json_is_object(model)) {
		const char *k;
		json_t *v;

		json_object_foreach (model, k, v)
			if (json_is_string(v) && (strstr(k, "version") || !strcmp(k, "torch")))
				json_object_set(libs, k, v);
	}
	add_checks(checks, "fitsinfer", fi, &t->n_fail, &t->n_gpu_ok, &t->n_gpu_skip, &t->n_gpu);
	/* A fatal error (missing library, bad model) ends the program
	 * before its checks: record it as a failed check of its own. */
	if (t->n_fail == before &&
	    (in->fitsinfer_error || in->fitsinfer_status != 0 || !result || strcmp(result, "pass")))
		add_program_failure(
		    checks, "fitsinfer",
		    in->fitsinfer_error ? in->fitsinfer_error : "the smoke test did not pass", t);
	json_object_set(cert, "fingerprint",
			json_object_get(fi, "fingerprint") ? json_object_get(fi, "fingerprint")
							   : json_null());
	json_object_set_new(cert, "smoke",
			    json_pack("{s:O?, s:O?, s:O?}", "input", json_object_get(fi, "input"),
				      "background", json_object_get(fi, "background"), "runs",
				      json_object_get(fi, "runs")));
}

/* Why the certificate fails; empty when it passes. */
static void cert_add_reasons(json_t *reasons, const struct ep_cert_inputs *in,
			     const struct cert_tally *t)
{
	if (in->selfcheck && in->selfcheck_status != 0 && in->selfcheck_status != 1)
		json_array_append_new(reasons, json_pack("{s:s, s:i}", "reason",
							 "selfcheck exited abnormally", "status",
							 in->selfcheck_status));
	if (in->fitsinfer && in->fitsinfer_status != 0 && in->fitsinfer_status != 1)
		json_array_append_new(reasons, json_pack("{s:s, s:i}", "reason",
							 "fitsinfer exited abnormally", "status",
							 in->fitsinfer_status));
	if (t->n_fail)
		json_array_append_new(reasons, json_pack("{s:s, s:i}", "reason", "checks failed",
							 "count", t->n_fail));
	if (in->require_gpu && (t->n_gpu_ok == 0 || t->n_gpu_skip > 0))
		json_array_append_new(
		    reasons, json_pack("{s:s, s:i, s:i}", "reason",
				       "--require-gpu: GPU checks did not all run and pass",
				       "gpu_passed", t->n_gpu_ok, "gpu_skipped", t->n_gpu_skip));
}

json_t *ep_cert_build(const struct ep_cert_inputs *in, struct ep_error *err)
{
	cleanup_json json_t *cert = json_object();
	json_t *checks = json_array(), *reasons = json_array(), *libs = json_object();
	struct cert_tally t = {0, 0, 0, 0};
	char when[32];

	if (!cert || !checks || !reasons || !libs) {
		json_decref(checks);
		json_decref(reasons);
		json_decref(libs);
		ep_error_oom(err);
		return NULL;
	}
	ep_rfc3339((int64_t)time(NULL), when);
	json_object_set_new(cert, "certificate_version", json_integer(EP_CERT_VERSION));
	json_object_set_new(cert, "envpin", json_string(EP_VERSION));
	json_object_set_new(cert, "created", json_string(when));
	json_object_set_new(cert, "image", json_pack("{s:s, s:s, s:s?}", "digest", in->digest,
						     "config_digest", in->config_digest, "tag", in->tag));
	json_object_set_new(cert, "host", ep_cert_host());
	json_object_set_new(cert, "run",
			    json_pack("{s:s, s:s, s:b, s:o}", "engine", in->engine ? in->engine : "?",
				      "gpus", in->gpus ? in->gpus : "none", "require_gpu",
				      in->require_gpu, "runtime", runtime_info(in->engine)));
	/* what this host passed in: a stored certificate holds while it is the same */
	json_object_set_new(cert, "passthrough",
			    in->host_facts ? json_deep_copy(in->host_facts) : json_null());
	cert_add_selfcheck(cert, checks, libs, in, &t);
	cert_add_fitsinfer(cert, checks, libs, in, &t);
	cert_add_reasons(reasons, in, &t);
	json_object_set_new(cert, "libraries", libs);
	json_object_set_new(cert, "checks", checks);
	/* "scope" says plainly what a pass covers: a machine without a GPU
	 * certifies the CPU part only, and a reader must not mistake that
	 * for a certified GPU stack. */
	json_object_set_new(cert, "summary",
			    json_pack("{s:i, s:i, s:i, s:i, s:s}", "failed", t.n_fail, "gpu_passed",
				      t.n_gpu_ok, "gpu_skipped", t.n_gpu_skip, "gpu_total",
				      t.n_gpu, "scope",
				      t.n_gpu_ok == 0	       ? "cpu-only"
				      : t.n_gpu_ok < t.n_gpu ? "partial-gpu"
							     : "cpu+gpu"));
	json_object_set_new(cert, "result", json_string(json_array_size(reasons) ? "fail" : "pass"));
	json_object_set_new(cert, "reasons", reasons);
	return steal_pointer(&cert);
}

json_t *ep_cert_compare_fingerprints(json_t *ref, json_t *now, struct ep_error *err)
{
	json_t *tol = json_object_get(ref, "tolerance");
	json_t *fields = json_array(), *rep;
	const char *k;
	json_t *t;
	int match = 1;

	if (!fields) {
		ep_error_oom(err);
		return NULL;
	}
	if (!json_is_object(ref) || !json_is_object(now) || !json_is_object(tol)) {
		json_decref(fields);
		ep_error_set(err, EP_EINVAL, "a fingerprint is missing or has no tolerances");
		return NULL;
	}
	if (!json_equal(json_object_get(ref, "version"), json_object_get(now, "version"))) {
		json_array_append_new(fields, json_pack("{s:s, s:O?, s:O?, s:b}", "name", "version", "reference",
							json_object_get(ref, "version"), "now",
							json_object_get(now, "version"), "ok", 0));
		match = 0;
	}
	json_object_foreach(tol, k, t) {
		json_t *a = json_object_get(ref, k), *b = json_object_get(now, k);
		json_t *row;
		int ok;

		if (json_is_string(t) && !strcmp(json_string_value(t), "informational"))
			continue;
		if (json_is_string(t) && !strcmp(json_string_value(t), "equal")) {
			ok = a && b && json_equal(a, b);
			row = json_pack("{s:s, s:O?, s:O?, s:s, s:b}", "name", k, "reference", a, "now", b, "allowed",
					"equal", "ok", ok);
		} else {
			double x = json_number_value(a), y = json_number_value(b);
			double allowed = json_number_value(json_object_get(t, "abs")) +
					 json_number_value(json_object_get(t, "rel")) * fmax(fabs(x), fabs(y));
			double delta = fabs(x - y);

			ok = json_is_number(a) && json_is_number(b) && isfinite(x) && isfinite(y) && delta <= allowed;
			row = json_pack("{s:s, s:O?, s:O?, s:f, s:f, s:b}", "name", k, "reference", a, "now", b,
					"delta", delta, "allowed", allowed, "ok", ok);
		}
		if (!ok)
			match = 0;
		json_array_append_new(fields, row);
	}
	rep = json_pack("{s:b, s:o}", "match", match, "fields", fields);
	if (!rep)
		ep_error_oom(err);
	return rep;
}

/* STORE/certs/<algorithm>-<hex>.json */
static char *stored_path(struct ep_store *s, const char *digest, struct ep_error *err)
{
	const char *colon = strchr(digest, ':');

	if (!colon || ep_digest_check(digest, err) < 0)
		return ep_error_set(err, EP_EINVAL, "'%s' is not a digest", digest), NULL;
	return ep_asprintf(err, "%s/certs/%.*s-%s.json", s->root, (int)(colon - digest), digest,
			   colon + 1);
}

int ep_cert_load_stored(struct ep_store *s, const char *digest, json_t **cert, struct ep_error *err)
{
	cleanup_free char *path = stored_path(s, digest, err);

	*cert = NULL;
	if (!path)
		return -1;
	if (access(path, F_OK) < 0)
		return 0;
	*cert = ep_json_load_file(path, EP_CERT_MAX_BYTES, err);
	return *cert ? 1 : -1;
}

int ep_cert_save_stored(struct ep_store *s, const char *digest, const json_t *cert,
			struct ep_error *err)
{
	cleanup_free char *path = stored_path(s, digest, err);
	cleanup_free char *dir = path ? ep_path_join(s->root, "certs", err) : NULL;
	cleanup_free char *text = dir ? ep_json_pretty(cert, err) : NULL;

	if (!text || ep_mkdir_p(dir, err) < 0)
		return -1;
	return ep_write_file_atomic(path, text, strlen(text), 0644, err);
}

static const char *str_or(const json_t *j, const char *none)
{
	return json_is_string(j) ? json_string_value(j) : none;
}

int ep_cert_stale(const json_t *cert, const char *digest, const json_t *facts, int require_gpu,
		  char **why)
{
	const json_t *was = json_object_get(cert, "passthrough");
	const json_t *run = json_object_get(cert, "run");
	const json_t *a, *b;

	*why = NULL;
	if (!json_is_object(was))
		return *why = strdup("the certificate does not record the host's GPUs and driver"),
		       1;
	if (strcmp(str_or(json_object_get(cert, "result"), ""), "pass"))
		return *why = strdup("the stored certificate is a failed one"), 1;
	if (strcmp(str_or(json_object_get(json_object_get(cert, "image"), "digest"), ""), digest))
		return *why = strdup("the stored certificate is for another image"), 1;
	if (strcmp(str_or(json_object_get(cert, "envpin"), ""), EP_VERSION))
		return *why = ep_asprintf(NULL, "envpin changed (%s -> %s)",
					  str_or(json_object_get(cert, "envpin"), "?"), EP_VERSION),
		       1;
	if (require_gpu && !json_is_true(json_object_get(run, "require_gpu")))
		return *why = strdup("--require-gpu was not part of the stored certification"), 1;
	a = json_object_get(was, "driver_version");
	b = json_object_get(facts, "driver_version");
	if (!json_equal(a, b) && !(json_is_null(a) && json_is_null(b)))
		return *why = ep_asprintf(NULL, "the driver changed (%s -> %s)", str_or(a, "none"),
					  str_or(b, "none")),
		       1;
	if (!json_equal(json_object_get(was, "gpus"), json_object_get(facts, "gpus")))
		return *why = strdup("the GPUs changed"), 1;
	a = json_object_get(json_object_get(was, "runtime"), "version");
	b = json_object_get(json_object_get(facts, "runtime"), "version");
	if (!json_equal(json_object_get(json_object_get(was, "runtime"), "engine"),
			json_object_get(json_object_get(facts, "runtime"), "engine")) ||
	    (!json_equal(a, b) && !(json_is_null(a) && json_is_null(b))))
		return *why = ep_asprintf(
			   NULL, "the runtime changed (%s %s -> %s %s)",
			   str_or(json_object_get(json_object_get(was, "runtime"), "engine"), "?"),
			   str_or(a, "?"),
			   str_or(json_object_get(json_object_get(facts, "runtime"), "engine"),
				  "?"),
			   str_or(b, "?")),
		       1;
	a = json_object_get(was, "driver_files");
	b = json_object_get(facts, "driver_files");
	if (!json_equal(a, b)) {
		size_t i;
		json_t *f;

		json_array_foreach (b, i, f) {
			if (!json_equal(f, json_array_get(a, i)))
				return *why = ep_asprintf(
					   NULL, "driver file '%s' changed",
					   str_or(json_object_get(f, "host_path"), "?")),
				       1;
		}
		return *why = strdup("the driver files changed"), 1;
	}
	a = json_object_get(was, "cdi_spec");
	b = json_object_get(facts, "cdi_spec");
	if (!json_equal(a, b) && (a || b))
		return *why = strdup("the CDI spec changed"), 1;
	return 0;
}
