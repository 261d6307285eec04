#include "cert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "build.h"
#include "util.h"

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
		       int *n_gpu_skip)
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
		if (st && !strcmp(st, "fail"))
			(*n_fail)++;
		if (gpu && st && !strcmp(st, "pass"))
			(*n_gpu_ok)++;
		if (gpu && st && !strcmp(st, "skip"))
			(*n_gpu_skip)++;
	}
}

json_t *ep_cert_build(const struct ep_cert_inputs *in, struct ep_error *err)
{
	cleanup_json json_t *cert = json_object();
	json_t *checks = json_array(), *reasons = json_array(), *libs = json_object();
	json_t *sc = in->selfcheck, *fi = in->fitsinfer;
	int n_fail = 0, n_gpu_ok = 0, n_gpu_skip = 0;
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
	json_object_set_new(cert, "run", json_pack("{s:s, s:s}", "engine", in->engine ? in->engine : "?",
						   "gpus", in->gpus ? in->gpus : "none"));

	if (sc) {
		const char *v;

		json_object_set_new(cert, "driver",
				    json_pack("{s:O?}", "version", json_object_get(sc, "driver_version")));
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
		{
			int before = n_fail;

			add_checks(checks, "selfcheck", sc, &n_fail, &n_gpu_ok, &n_gpu_skip);
			if (n_fail == before && (in->selfcheck_error || in->selfcheck_status != 0)) {
				json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", "selfcheck",
									"program", "selfcheck", "status", "fail", "gpu", 0,
									"detail", in->selfcheck_error ? in->selfcheck_error
									: "the self-check exited with a failure"));
				n_fail++;
			}
		}
	} else {
		json_object_set_new(cert, "driver", json_null());
		json_object_set_new(cert, "gpus", json_array());
		json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:b}", "name", "selfcheck",
							"program", "selfcheck", "status", "fail", "gpu", 0));
		json_object_set_new(json_array_get(checks, json_array_size(checks) - 1), "detail",
				    json_string(in->selfcheck_error ? in->selfcheck_error : "did not run"));
		n_fail++;
	}
	if (fi) {
		json_t *model = json_object_get(fi, "model");

		if (json_is_object(model)) {
			const char *k;
			json_t *v;

			json_object_foreach(model, k, v) if (json_is_string(v) &&
							     (strstr(k, "version") || !strcmp(k, "torch")))
				json_object_set(libs, k, v);
		}
		{
			int before = n_fail;

			add_checks(checks, "fitsinfer", fi, &n_fail, &n_gpu_ok, &n_gpu_skip);
			/* A fatal error (missing library, bad model) ends the program
			 * before its checks: record it as a failed check of its own. */
			if (n_fail == before && (in->fitsinfer_error || in->fitsinfer_status != 0 ||
						 !json_is_string(json_object_get(fi, "result")) ||
						 strcmp(json_string_value(json_object_get(fi, "result")), "pass"))) {
				json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", "fitsinfer",
									"program", "fitsinfer", "status", "fail", "gpu", 0,
									"detail", in->fitsinfer_error ? in->fitsinfer_error
									: "the smoke test did not pass"));
				n_fail++;
			}
		}
		json_object_set(cert, "fingerprint", json_object_get(fi, "fingerprint") ? json_object_get(fi, "fingerprint") : json_null());
		json_object_set_new(cert, "smoke", json_pack("{s:O?, s:O?, s:O?}", "input", json_object_get(fi, "input"),
							      "background", json_object_get(fi, "background"),
							      "runs", json_object_get(fi, "runs")));
	} else {
		json_object_set_new(cert, "fingerprint", json_null());
		json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", "fitsinfer",
							"program", "fitsinfer", "status", "fail", "gpu", 0,
							"detail", in->fitsinfer_error ? in->fitsinfer_error : "did not run"));
		n_fail++;
	}
	if (sc && in->selfcheck_status != 0 && in->selfcheck_status != 1)
		json_array_append_new(reasons, json_pack("{s:s, s:i}", "reason", "selfcheck exited abnormally",
							 "status", in->selfcheck_status));
	if (fi && in->fitsinfer_status != 0 && in->fitsinfer_status != 1)
		json_array_append_new(reasons, json_pack("{s:s, s:i}", "reason", "fitsinfer exited abnormally",
							 "status", in->fitsinfer_status));
	if (n_fail)
		json_array_append_new(reasons, json_pack("{s:s, s:i}", "reason", "checks failed", "count", n_fail));
	if (in->require_gpu && (n_gpu_ok == 0 || n_gpu_skip > 0))
		json_array_append_new(reasons, json_pack("{s:s, s:i, s:i}", "reason",
							 "--require-gpu: GPU checks did not all run and pass",
							 "gpu_passed", n_gpu_ok, "gpu_skipped", n_gpu_skip));
	json_object_set_new(cert, "libraries", libs);
	json_object_set_new(cert, "checks", checks);
	json_object_set_new(cert, "summary", json_pack("{s:i, s:i, s:i}", "failed", n_fail, "gpu_passed",
						       n_gpu_ok, "gpu_skipped", n_gpu_skip));
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
