/* Unit tests: lib/strvec (strvec, strbuf), ep_find_on_path (lib/util.c)
 * and the run path's parsers in lib/run/user.c (volumes, container paths)
 * and lib/run/spec.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "strvec.h"
#include "util.h"

static void test_strvec(void **state)
{
	struct ep_strvec sv = EP_STRVEC_INIT;

	(void)state;
	assert_null(ep_strvec_argv(&sv)[0]);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ep_strvec_pushf(&sv, "arg%d", i), 0);
	assert_int_equal(sv.n, 1000);
	assert_string_equal(sv.v[0], "arg0");
	assert_string_equal(sv.v[999], "arg999");
	assert_null(sv.v[1000]);
	assert_int_equal(sv.oom, 0);
	ep_strvec_release(&sv);
	assert_int_equal(sv.n, 0);
	assert_null(sv.v);
}

static void test_strbuf(void **state)
{
	struct ep_strbuf sb = EP_STRBUF_INIT;
	char *s;

	(void)state;
	assert_string_equal(ep_strbuf_str(&sb), "");
	/* far past any fixed buffer the code had (512, PATH_MAX) */
	for (int i = 0; i < 5000; i++)
		assert_int_equal(ep_strbuf_addf(&sb, "%s%d", i ? "," : "", i), 0);
	assert_true(sb.len > PATH_MAX);
	assert_int_equal(strlen(sb.buf), sb.len);
	assert_memory_equal(sb.buf, "0,1,2,", 6);
	assert_string_equal(sb.buf + sb.len - 5, ",4999");
	ep_strbuf_shrink(&sb, 5);
	assert_string_equal(sb.buf + sb.len - 5, ",4998");
	ep_strbuf_add(&sb, "xy\0z", 4);
	assert_int_equal(sb.buf[sb.len - 2], '\0');
	s = ep_strbuf_detach(&sb);
	assert_non_null(s);
	assert_null(sb.buf);
	free(s);
	s = ep_strbuf_detach(&sb);
	assert_string_equal(s, "");
	free(s);
}

/* What execvp would start: a directory or a file without x is passed over
 * for a later PATH entry; an empty entry and a missing dir are skipped. */
static void test_find_on_path(void **state)
{
	char tmpl[] = "/tmp/envpin-path.XXXXXX", out[PATH_MAX], small[8];
	char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL, *path, *a, *b, *f;

	(void)state;
	assert_non_null(mkdtemp(tmpl));
	a = ep_asprintf(NULL, "%s/a", tmpl);
	b = ep_asprintf(NULL, "%s/b", tmpl);
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	f = ep_asprintf(NULL, "%s/envpin-tool", a); /* a dir with the name */
	assert_int_equal(mkdir(f, 0755), 0);
	free(f);
	f = ep_asprintf(NULL, "%s/envpin-other", a); /* not executable */
	assert_int_equal(ep_write_file_atomic(f, "x", 1, 0644, NULL), 0);
	free(f);
	f = ep_asprintf(NULL, "%s/envpin-tool", b);
	assert_int_equal(ep_write_file_atomic(f, "#!/bin/sh\n", 10, 0755, NULL), 0);
	path = ep_asprintf(NULL, "::%s/missing:%s:%s", tmpl, a, b);
	assert_int_equal(setenv("PATH", path, 1), 0);
	assert_int_equal(ep_find_on_path("envpin-tool", out, sizeof(out)), 0);
	assert_string_equal(out, f);
	assert_int_equal(ep_find_on_path("envpin-tool", NULL, 0), 0);
	assert_int_equal(ep_find_on_path("envpin-other", out, sizeof(out)), -1);
	assert_int_equal(ep_find_on_path("envpin-tool", small, sizeof(small)), -1);
	assert_int_equal(ep_rm_rf(tmpl, NULL), 0);
	assert_int_equal(ep_find_on_path("envpin-tool", NULL, 0), -1);
	if (old)
		assert_int_equal(setenv("PATH", old, 1), 0);
	else
		assert_int_equal(unsetenv("PATH"), 0);
	free(old);
	free(path);
	free(a);
	free(b);
	free(f);
}

static void test_volume(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_volume v;
	char cwd[PATH_MAX];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(ep_runtime_volume(".:/data:ro", &v, &err), 0);
	assert_string_equal(v.src, cwd);
	assert_string_equal(v.dst, "/data");
	assert_int_equal(v.ro, 1);
	ep_volume_release(&v);
	assert_int_equal(ep_runtime_volume("/:/a/b", &v, &err), 0);
	assert_string_equal(v.dst, "/a/b");
	assert_int_equal(v.ro, 0);
	ep_volume_release(&v);

	static const char *const bad[] = {
	    "nocolon",	    ":/x",	 "/:",
	    "/:relative",   "/:/a/../b", "/:/",
	    "/:/proc/self", "/:/x:rx",	 "/nonexistent-envpin-dir:/x",
	    "/:/a//b",	    "/:/a/",
	};
	for (size_t i = 0; i < EP_ARRAY_SIZE(bad); i++) {
		ep_error_clear(&err);
		assert_int_equal(ep_runtime_volume(bad[i], &v, &err), -1);
		assert_int_equal(err.code, EP_EINVAL);
		assert_null(v.src);
		assert_null(v.dst);
	}
	/* a destination longer than PATH_MAX is refused, not cut */
	{
		char *spec = malloc(PATH_MAX + 16);

		assert_non_null(spec);
		strcpy(spec, "/:/");
		memset(spec + 3, 'a', PATH_MAX + 4);
		spec[PATH_MAX + 7] = '\0';
		ep_error_clear(&err);
		assert_int_equal(ep_runtime_volume(spec, &v, &err), -1);
		assert_int_equal(err.code, EP_EINVAL);
		free(spec);
	}
}

/* The spec carries every -v, in order, and mount options of any length. */
static void test_spec_mounts(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_volume vols[2] = {{"/srv/a", "/a", 1}, {"/srv/b", "/b", 0}};
	struct ep_run_opts o;
	struct ep_spec_params p = {0};
	char *cmd[] = {"true"};
	json_t *spec, *m;
	size_t i, seen = 0;

	(void)state;
	ep_run_opts_init(&o);
	o.volumes = vols;
	o.n_volumes = 2;
	o.cmd = cmd;
	o.n_cmd = 1;
	p.o = &o;
	p.rootfs = "rootfs";
	p.host_root = "/nonexistent";
	spec = ep_runtime_spec(&p, &err);
	assert_non_null(spec);
	json_array_foreach (json_object_get(spec, "mounts"), i, m) {
		const char *dst = json_string_value(json_object_get(m, "destination"));

		if (!strcmp(dst, "/a")) {
			assert_string_equal(json_string_value(json_object_get(m, "source")),
					    "/srv/a");
			assert_int_equal(json_array_size(json_object_get(m, "options")), 3);
			seen++;
		} else if (!strcmp(dst, "/b")) {
			assert_int_equal(seen, 1);
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(spec, "process"), "cwd")), "/");
	json_decref(spec);

	o.workdir = "/a/../etc";
	assert_null(ep_runtime_spec(&p, &err));
	assert_int_equal(err.code, EP_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strvec),
	    cmocka_unit_test(test_strbuf),
	    cmocka_unit_test(test_find_on_path),
	    cmocka_unit_test(test_volume),
	    cmocka_unit_test(test_spec_mounts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
