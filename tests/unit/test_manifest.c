/* Unit tests: lib/manifest.  Good manifests are checked field by field; bad
 * ones are data: tests/data/manifests/bad/NAME.json fails to load with a
 * message containing every line of NAME.expect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "manifest.h"
#include "util.h"

/* The data directory: $TOP/tests/data/manifests, else relative to the cwd
 * (the tests run from the repository root). */
static char data_dir[PATH_MAX];

static int find_data(void **state)
{
	const char *top = getenv("TOP");
	struct stat st;

	(void)state;
	if (top && *top)
		snprintf(data_dir, sizeof(data_dir), "%s/tests/data/manifests", top);
	else
		snprintf(data_dir, sizeof(data_dir), "tests/data/manifests");
	if (stat(data_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cannot find '%s': run from the repository root or set TOP\n",
			data_dir);
		return -1;
	}
	return 0;
}

static char *data_path(const char *rel)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", data_dir, rel) > 0);
	return p;
}

static struct ep_manifest *load_good(const char *rel)
{
	struct ep_error err = EP_ERROR_INIT;
	cleanup_free char *p = data_path(rel);
	struct ep_manifest *m = ep_manifest_load(p, &err);

	if (!m)
		fail_msg("%s: %s", rel, err.msg);
	assert_int_equal(err.code, EP_OK);
	return m;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_good_full(void **state)
{
	struct ep_manifest *m = load_good("good/full.json");
	char real[PATH_MAX];
	cleanup_free char *gdir = data_path("good");
	struct ep_step *s;

	(void)state;
	assert_non_null(realpath(gdir, real));
	assert_string_equal(m->dir, real);
	assert_true(ends_with(m->path, "good/full.json"));
	assert_string_equal(m->name, "astro-cpu");
	assert_int_equal(m->source_date_epoch, 1767225600);

	assert_int_equal(m->base.kind, EP_BASE_ROOTFS);
	assert_true(m->base.path[0] == '/');
	assert_true(ends_with(m->base.path, "/good/base.tar"));
	assert_string_equal(m->base.sha256,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_null(m->base.digest);
	assert_null(m->base.packages);

	assert_int_equal(m->n_steps, 5);
	s = &m->steps[0];
	assert_int_equal(s->kind, EP_STEP_COPY);
	assert_int_equal(s->line, 7);
	assert_int_equal(s->n, 3);
	assert_non_null(s->raw);
	assert_ptr_equal(s->raw, json_array_get(json_object_get(m->root, "layers"), 0));
	assert_string_equal(s->copy[0].src, "payload/");
	assert_true(ends_with(s->copy[0].src_path, "/good/payload"));
	assert_true(s->copy[0].src_path[0] == '/');
	assert_string_equal(s->copy[0].dest, "/opt/payload/");
	assert_int_equal(s->copy[0].mode, -1);
	assert_int_equal(s->copy[0].uid, 0);
	assert_int_equal(s->copy[0].gid, 0);
	assert_int_equal(s->copy[0].line, 8);
	/* "./payload//bin/hi.sh" resolves inside the dir; dest is normalized */
	assert_string_equal(s->copy[1].src, "./payload//bin/hi.sh");
	assert_true(ends_with(s->copy[1].src_path, "/good/payload/bin/hi.sh"));
	assert_string_equal(s->copy[1].dest, "/usr/local/bin/hi");
	assert_int_equal(s->copy[1].mode, 0750);
	assert_int_equal(s->copy[1].uid, 1000);
	assert_int_equal(s->copy[1].gid, 100);
	assert_int_equal(s->copy[1].line, 9);
	/* an integer mode is read as the octal digits it is written with */
	assert_int_equal(s->copy[2].mode, 0644);
	assert_string_equal(s->copy[2].dest, "/etc/hello");

	s = &m->steps[1];
	assert_int_equal(s->kind, EP_STEP_APT);
	assert_int_equal(s->line, 12);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->words[0], "libcfitsio10");
	assert_string_equal(s->words[1], "python3-numpy=1:1.24.2-1");
	assert_null(s->words[2]);

	s = &m->steps[2];
	assert_int_equal(s->kind, EP_STEP_FETCH);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->fetch[0].url, "https://example.org/libtorch.zip");
	assert_string_equal(s->fetch[0].sha256,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_string_equal(s->fetch[0].dest, "/opt");
	assert_int_equal(s->fetch[0].extract, 1);
	assert_int_equal(s->fetch[0].line, 14);
	assert_string_equal(s->fetch[1].url, "file:///srv/data.bin");
	assert_string_equal(s->fetch[1].dest, "/data/");
	assert_int_equal(s->fetch[1].extract, 0);
	assert_int_equal(s->fetch[1].line, 17);

	s = &m->steps[3];
	assert_int_equal(s->kind, EP_STEP_PIP);
	assert_int_equal(s->n, 1);
	assert_string_equal(s->words[0], "astropy==6.1.0");
	assert_null(s->words[1]);

	s = &m->steps[4];
	assert_int_equal(s->kind, EP_STEP_RUN);
	assert_int_equal(s->n, 3);
	assert_string_equal(s->words[0], "sh");
	assert_string_equal(s->words[2], "ldconfig");
	assert_null(s->words[3]);
	assert_int_equal(s->line, 22);

	assert_non_null(m->config);
	assert_string_equal(json_string_value(json_object_get(json_object_get(m->config, "env"), "LANG")),
			    "C.UTF-8");
	assert_string_equal(json_string_value(json_object_get(m->config, "workdir")), "/workspace");
	assert_int_equal(json_array_size(json_object_get(m->config, "exposed_ports")), 3);
	assert_non_null(m->check);
	assert_string_equal(json_string_value(json_object_get(m->check, "gpu")), "optional");

	/* the position index answers for any field, keys quoted as in errors */
	assert_int_equal(ep_manifest_line(m, "layers[2].fetch[0].sha256"), 15);
	assert_int_equal(ep_manifest_line(m, "config.labels[\"org.opencontainers.image.title\"]"), 30);
	assert_int_equal(ep_manifest_line(m, "check.model"), 33);
	assert_int_equal(ep_manifest_line(m, "no.such.field"), 0);
	ep_manifest_free(m);
}

static void test_good_bases(void **state)
{
	struct ep_manifest *m;

	(void)state;
	m = load_good("good/oci.json");
	assert_int_equal(m->base.kind, EP_BASE_OCI);
	assert_true(ends_with(m->base.path, "/good/oci-layout"));
	assert_string_equal(m->base.digest,
			    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(m->n_steps, 0);
	assert_null(m->steps);
	assert_null(m->config);
	assert_null(m->check);
	ep_manifest_free(m);

	m = load_good("good/image.json");
	assert_int_equal(m->base.kind, EP_BASE_IMAGE);
	assert_string_equal(m->base.image, "docker.io/library/debian:bookworm@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_null(m->base.path);
	ep_manifest_free(m);

	m = load_good("good/debian.json");
	assert_int_equal(m->base.kind, EP_BASE_DEBIAN);
	assert_string_equal(m->base.suite, "bookworm");
	assert_string_equal(m->base.variant, "minbase"); /* the default */
	assert_string_equal(m->base.mirror, "http://deb.debian.org/debian");
	assert_int_equal(m->base.n_packages, 2);
	assert_string_equal(m->base.packages[0], "ca-certificates");
	assert_string_equal(m->base.packages[1], "libc6=2.36-9+deb12u10");
	assert_null(m->base.packages[2]);
	ep_manifest_free(m);

	/* no "name": the file name is the default */
	m = load_good("good/scratch.json");
	assert_int_equal(m->base.kind, EP_BASE_SCRATCH);
	assert_string_equal(m->name, "scratch");
	assert_int_equal(m->source_date_epoch, 0);
	ep_manifest_free(m);
}

static int has_suffix_json(const char *n)
{
	return ends_with(n, ".json");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every bad/NAME.json must fail with EP_EINVAL and a message holding each
 * line of NAME.expect.  All cases run; failures are listed together. */
static void test_bad_dir(void **state)
{
	cleanup_free char *dir = data_path("bad");
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, failed = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (!has_suffix_json(e->d_name))
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		assert_non_null(names);
		names[n] = strdup(e->d_name);
		assert_non_null(names[n++]);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	/* the brief's list, so that a lost fixture fails here */
	assert_true(n >= 20);

	for (size_t i = 0; i < n; i++) {
		struct ep_error err = EP_ERROR_INIT;
		cleanup_free char *jp = NULL, *xp = NULL, *expect = NULL;
		struct ep_manifest *m;
		int ok = 1;

		assert_true(asprintf(&jp, "%s/%s", dir, names[i]) > 0);
		assert_true(asprintf(&xp, "%s/%.*s.expect", dir, (int)(strlen(names[i]) - 5),
				     names[i]) > 0);
		expect = ep_read_file(xp, 1 << 16, NULL, &err);
		if (!expect) {
			print_error("%s: no .expect file: %s\n", names[i], err.msg);
			failed++;
			continue;
		}
		m = ep_manifest_load(jp, &err);
		if (m) {
			print_error("%s: loaded, but should fail\n", names[i]);
			ep_manifest_free(m);
			failed++;
			continue;
		}
		if (err.code != EP_EINVAL) {
			print_error("%s: code %d, expected EP_EINVAL: %s\n", names[i], err.code, err.msg);
			ok = 0;
		}
		for (char *line = strtok(expect, "\n"); line; line = strtok(NULL, "\n")) {
			if (!strstr(err.msg, line)) {
				print_error("%s:\n  message: %s\n  missing: %s\n", names[i], err.msg, line);
				ok = 0;
			}
		}
		if (!ok)
			failed++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	assert_int_equal(failed, 0);
}

/* Run options, stages and copy.from (contract: run steps and build stages). */
static void test_good_stages(void **state)
{
	struct ep_manifest *m = load_good("good/stages.json");
	const struct ep_stage *b, *t;
	const struct ep_step *r;

	(void)state;
	assert_int_equal(m->n_stages, 2);
	t = ep_manifest_stage(m, "tools");
	b = ep_manifest_stage(m, "build");
	assert_non_null(t);
	assert_non_null(b);
	assert_null(ep_manifest_stage(m, "nope"));
	assert_int_equal(t->n_steps, 0);
	assert_int_equal(b->n_steps, 2);
	assert_int_equal(b->n_needs, 1);
	assert_string_equal(b->needs[0], "tools");
	assert_int_equal(m->n_needs, 1);
	assert_string_equal(m->needs[0], "build");
	r = &b->steps[1];
	assert_int_equal(r->kind, EP_STEP_RUN);
	assert_int_equal(r->n, 3);
	assert_string_equal(r->words[2], "make install DESTDIR=/out");
	assert_null(r->words[3]);
	assert_int_equal(r->run.n_env, 2);
	assert_string_equal(r->run.env[0], "A=first"); /* sorted */
	assert_string_equal(r->run.env[1], "Z=last");
	assert_string_equal(r->run.workdir, "/src/sub");
	assert_string_equal(r->run.user, "1000:100");
	assert_int_equal(r->run.n_mounts, 1);
	assert_string_equal(r->run.mounts[0].dest, "/src");
	assert_true(ends_with(r->run.mounts[0].src_path, "good/payload"));
	assert_true(r->run.mounts[0].line > 0);
	assert_int_equal(m->n_steps, 2);
	assert_int_equal(m->steps[0].run.n_env, 0);
	assert_null(m->steps[0].run.workdir);
	assert_string_equal(m->steps[1].copy[0].from, "build");
	assert_string_equal(m->steps[1].copy[0].src, "/out/opt/");
	assert_null(m->steps[1].copy[0].src_path);
	assert_null(m->steps[1].copy[1].from);
	assert_int_equal(ep_manifest_line(m, "stages.build.layers[1]"), 12);
	ep_manifest_free(m);
}

/* Too large: generated, not committed (a 1 MiB fixture is noise in git). */
static void test_too_large(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char tmpl[] = "/tmp/envpin-manifest-XXXXXX";
	cleanup_free char *p = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(tmpl));
	assert_true(asprintf(&p, "%s/big.json", tmpl) > 0);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("{\"envpin\": 1, \"source_date_epoch\": 0, \"base\": \"scratch\", \"check\": {\"model\": \"", f);
	for (unsigned i = 0; i < EP_MANIFEST_MAX_BYTES; i++)
		fputc('x', f);
	fputs("\"}}\n", f);
	assert_int_equal(fclose(f), 0);
	assert_null(ep_manifest_load(p, &err));
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "too large"));
	assert_non_null(strstr(err.msg, "big.json"));
	unlink(p);
	rmdir(tmpl);
}

static void test_missing_file(void **state)
{
	struct ep_error err = EP_ERROR_INIT;

	(void)state;
	assert_null(ep_manifest_load("/nonexistent/m.json", &err));
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "'/nonexistent/m.json'"));
}

static void test_lock_path(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	static const char *const cases[][2] = {
		{"dir/astro.json", "dir/astro.lock.json"},
		{"astro.json", "astro.lock.json"},
		{"/a/b.c/m.json", "/a/b.c/m.lock.json"},
		{"manifest", "manifest.lock.json"},
		{"dir/x.yaml", "dir/x.yaml.lock.json"},
		{"dir/.json", "dir/.json.lock.json"},
	};

	(void)state;
	for (size_t i = 0; i < EP_ARRAY_SIZE(cases); i++) {
		char *l = ep_manifest_lock_path(cases[i][0], &err);

		assert_non_null(l);
		assert_string_equal(l, cases[i][1]);
		free(l);
	}
	assert_null(ep_manifest_lock_path("", &err));
	assert_int_equal(err.code, EP_EINVAL);
}

static void test_free_null(void **state)
{
	(void)state;
	ep_manifest_free(NULL);
	assert_int_equal(ep_manifest_line(NULL, "name"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_full),	 cmocka_unit_test(test_good_bases),
	    cmocka_unit_test(test_bad_dir),	 cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_missing_file), cmocka_unit_test(test_lock_path),
	    cmocka_unit_test(test_free_null),	 cmocka_unit_test(test_good_stages),
	};
	return cmocka_run_group_tests(tests, find_data, NULL);
}
