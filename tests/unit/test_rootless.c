/* Unit tests: lib/rootless (subordinate id ranges), the rootless form of the
 * runtime spec (lib/run/spec.c), lib/k8s (manifest, YAML) and the per-node
 * certificate report (lib/slurm.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu.h"
#include "k8s.h"
#include "rootless.h"
#include "runtime.h"
#include "slurm.h"

#define D64 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char *write_tmp(const char *text)
{
	char *p = strdup("/tmp/ep-unit-rootless.XXXXXX");
	int fd = mkstemp(p);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return p;
}

static void test_subid(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_subid r;
	char *f = write_tmp("# comment\nalice:100000:65536\nbob:200000:10\n1003:300000:65536\n"
			    "broken:x:1\ncarol:400000:65536");

	(void)state;
	assert_int_equal(ep_subid_find(f, "alice", 1001, 1, &r, &err), 1);
	assert_int_equal(r.start, 100000);
	assert_int_equal(r.count, 65536);
	/* too small a range for the minimum asked */
	assert_int_equal(ep_subid_find(f, "bob", 1002, 65536, &r, &err), 0);
	assert_int_equal(ep_subid_find(f, "bob", 1002, 1, &r, &err), 1);
	/* by uid, when the name has no line */
	assert_int_equal(ep_subid_find(f, "dave", 1003, 1, &r, &err), 1);
	assert_int_equal(r.start, 300000);
	assert_int_equal(ep_subid_find(f, "broken", 9, 1, &r, &err), 0);
	/* the last line without a newline */
	assert_int_equal(ep_subid_find(f, "carol", 9, 1, &r, &err), 1);
	assert_int_equal(ep_subid_find("/nonexistent/subuid", "alice", 1, 1, &r, &err), 0);
	unlink(f);
	free(f);
}

/* Rootless: GPU device nodes become bind mounts, no device list or
 * cgroup rules, /sys bound, devpts without gid=5. */
static void test_spec_rootless(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_gpu_device dev = {0};
	struct ep_gpu_plan plan;
	struct ep_run_opts o;
	struct ep_spec_params p = {0};
	char *cmd[] = {"true"};
	json_t *spec, *m, *linux_;
	size_t i;
	int bound = 0, sys_bound = 0;

	(void)state;
	memset(&plan, 0, sizeof(plan));
	dev.path = "/dev/nvidia0";
	dev.host_path = "/host/dev/nvidia0";
	dev.type = 'c';
	dev.major = 195;
	plan.devices = &dev;
	plan.n_devices = 1;
	ep_run_opts_init(&o);
	o.cmd = cmd;
	o.n_cmd = 1;
	p.o = &o;
	p.rootfs = "rootfs";
	p.host_root = "/nonexistent";
	p.gpu = &plan;
	p.rootless = 1;
	spec = ep_runtime_spec(&p, &err);
	assert_non_null(spec);
	json_array_foreach (json_object_get(spec, "mounts"), i, m) {
		const char *dst = json_string_value(json_object_get(m, "destination"));
		char *opts = json_dumps(json_object_get(m, "options"), JSON_COMPACT);

		if (!strcmp(dst, "/dev/nvidia0")) {
			assert_string_equal(json_string_value(json_object_get(m, "source")),
					    "/host/dev/nvidia0");
			bound = 1;
		}
		if (!strcmp(dst, "/sys")) {
			assert_string_equal(json_string_value(json_object_get(m, "type")), "bind");
			sys_bound = 1;
		}
		if (!strcmp(dst, "/dev/pts"))
			assert_null(strstr(opts, "gid=5"));
		assert_string_not_equal(dst, "/sys/fs/cgroup");
		free(opts);
	}
	assert_true(bound && sys_bound);
	linux_ = json_object_get(spec, "linux");
	assert_int_equal(json_array_size(json_object_get(linux_, "devices")), 0);
	assert_null(json_object_get(linux_, "resources"));
	json_decref(spec);

	/* as root: the node is a device with its cgroup rule */
	p.rootless = 0;
	spec = ep_runtime_spec(&p, &err);
	assert_non_null(spec);
	linux_ = json_object_get(spec, "linux");
	assert_int_equal(json_array_size(json_object_get(linux_, "devices")), 1);
	assert_non_null(json_object_get(json_object_get(linux_, "resources"), "devices"));
	json_decref(spec);
}

static void test_k8s(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_k8s_opts o = {0};
	char *args[] = {"python3", "say \"hi\": yes"};
	json_t *m;
	char *y;

	(void)state;
	o.image = "ghcr.io/lab/astro:v1@" D64;
	o.gpus = 2;
	o.cmd = args;
	o.n_cmd = 2;
	m = ep_k8s_manifest(&o, &err);
	assert_non_null(m);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_array_get(
		    json_object_get(
			json_object_get(json_object_get(json_object_get(m, "spec"), "template"),
					"spec"),
			"containers"),
		    0),
		"image")),
	    "ghcr.io/lab/astro@" D64);
	y = ep_k8s_yaml(m, &err);
	assert_non_null(y);
	/* strings are JSON-quoted, so ': ' and quotes in them stay data */
	assert_non_null(strstr(y, "- \"say \\\"hi\\\": yes\"\n"));
	assert_non_null(strstr(y, "nvidia.com/gpu: \"2\"\n"));
	assert_non_null(strstr(y, "\nkind: \"Job\"\n"));
	free(y);
	json_decref(m);

	o.image = "ghcr.io/lab/astro:v1";
	assert_null(ep_k8s_manifest(&o, &err));
	assert_int_equal(err.code, EP_EINVAL);
	o.image = "ghcr.io/lab/astro@" D64;
	o.name = "Not_A_Label";
	assert_null(ep_k8s_manifest(&o, &err));
}

static void test_certs_merge(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *a = write_tmp("{\"result\":\"pass\",\"image\":{\"digest\":\"" D64 "\"},"
			    "\"fingerprint\":{\"version\":1,\"x\":1.0,\"tolerance\":{\"x\":{"
			    "\"abs\":0.1,\"rel\":0}}}}");
	char *b = write_tmp("{\"result\":\"pass\",\"image\":{\"digest\":\"" D64 "\"},"
			    "\"fingerprint\":{\"version\":1,\"x\":1.05,\"tolerance\":{\"x\":{"
			    "\"abs\":0.1,\"rel\":0}}}}");
	char *c =
	    write_tmp("{\"result\":\"fail\",\"reasons\":[{\"reason\":\"checks failed\"}],"
		      "\"checks\":[{\"name\":\"gpu.count\",\"status\":\"fail\",\"detail\":\"no "
		      "device\"}]}");
	const char *files[] = {a, b, c, "/nonexistent/cert-x.json"};
	const char *nodes[] = {"n1", "n2", "n3", NULL};
	json_t *r;

	(void)state;
	r = ep_certs_merge(files, nodes, 2, &err);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "result")), "pass");
	assert_string_equal(json_string_value(json_object_get(r, "reference_node")), "n1");
	json_decref(r);
	r = ep_certs_merge(files, nodes, 4, &err);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "result")), "fail");
	assert_int_equal(json_integer_value(json_object_get(r, "failed")), 2);
	assert_string_equal(
	    json_string_value(json_array_get(
		json_object_get(json_array_get(json_object_get(r, "nodes"), 2), "reasons"), 1)),
	    "gpu.count: no device");
	/* the node of a file without a name: from "cert-NODE.json" */
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(r, "nodes"), 3), "node")),
			    "x");
	json_decref(r);
	unlink(a);
	unlink(b);
	unlink(c);
	free(a);
	free(b);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subid),
	    cmocka_unit_test(test_spec_rootless),
	    cmocka_unit_test(test_k8s),
	    cmocka_unit_test(test_certs_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
