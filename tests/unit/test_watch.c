/* Unit tests: lib/watch (the progress of host tools that report none). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "watch.h"

static void write_bytes(const char *path, size_t n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fputc('x', f);
	assert_int_equal(fclose(f), 0);
}

struct seen {
	uint64_t last, calls;
	char what[64];
};

static void record(void *ctx, const char *what, uint64_t done, uint64_t total)
{
	struct seen *s = ctx;

	assert_int_equal(total, 0);
	/* read by the test's thread while this one runs */
	__atomic_store_n(&s->last, done, __ATOMIC_RELEASE);
	__atomic_add_fetch(&s->calls, 1, __ATOMIC_RELEASE);
	snprintf(s->what, sizeof(s->what), "%s", what);
}

static void test_dir_bytes(void **state)
{
	char dir[] = "/tmp/ep-watch-XXXXXX", p[128];

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ep_watch_dir_bytes(dir), 0);
	snprintf(p, sizeof(p), "%s/a", dir);
	write_bytes(p, 1000);
	snprintf(p, sizeof(p), "%s/sub", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/sub/b", dir);
	write_bytes(p, 234);
	/* a symlink is not followed: its target is not counted twice */
	snprintf(p, sizeof(p), "%s/link", dir);
	assert_int_equal(symlink("a", p), 0);
	assert_int_equal(ep_watch_dir_bytes(dir), 1234);
	snprintf(p, sizeof(p), "%s/missing", dir);
	assert_int_equal(ep_watch_dir_bytes(p), 0);
	ep_rm_rf(dir, NULL);
}

/* The reports follow the files as they grow; a glob pattern finds a temp
 * dir made after the start; stop gives one last report. */
static void test_watch_reports_growth(void **state)
{
	char dir[] = "/tmp/ep-watch-XXXXXX", pat[128], p[160];
	struct ep_error err = EP_ERROR_INIT;
	struct seen s = {0};
	struct ep_watch *w;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pat, sizeof(pat), "%s/tool.*", dir);
	{
		const char *const dirs[] = {pat, NULL};

		w = ep_watch_start("tool fetch", dirs, record, &s, &err);
	}
	assert_non_null(w);
	snprintf(p, sizeof(p), "%s/tool.abc", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/tool.abc/pkg.deb", dir);
	write_bytes(p, 4096);
	/* a report that saw the file: the next period (500 ms) on an idle
	 * machine; a loaded one (ASan, a busy CI host) gets up to 10 s, as a
	 * fixed sleep cannot tell a slow thread from a missing report */
	for (int i = 0; i < 200; i++) {
		if (__atomic_load_n(&s.calls, __ATOMIC_ACQUIRE) >= 2 &&
		    __atomic_load_n(&s.last, __ATOMIC_ACQUIRE) == 4096)
			break;
		usleep(50 * 1000);
	}
	assert_true(__atomic_load_n(&s.calls, __ATOMIC_ACQUIRE) >= 2);
	assert_int_equal(__atomic_load_n(&s.last, __ATOMIC_ACQUIRE), 4096);
	write_bytes(p, 8192);
	ep_watch_stop(w);
	assert_int_equal(s.last, 8192);
	assert_string_equal(s.what, "tool fetch");
	/* no progress function: nothing to watch, no error */
	{
		const char *const dirs[] = {dir, NULL};

		assert_null(ep_watch_start("x", dirs, NULL, NULL, &err));
		assert_int_equal(err.code, 0);
	}
	ep_watch_stop(NULL);
	ep_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dir_bytes),
	    cmocka_unit_test(test_watch_reports_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
