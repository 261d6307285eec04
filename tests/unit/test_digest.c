/* Unit tests: lib/digest, lib/sink, lib/jsonutil, lib/error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "digest.h"
#include "error.h"
#include "jsonutil.h"
#include "sink.h"
#include "util.h"

static void test_sha256_known(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	ep_digest d;

	(void)state;
	assert_int_equal(ep_sha256_buf("abc", 3, d, &err), 0);
	assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(ep_sha256_buf("", 0, d, &err), 0);
	assert_string_equal(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_digest_check(void **state)
{
	struct ep_error err = EP_ERROR_INIT;

	(void)state;
	assert_int_equal(ep_digest_check("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &err), 0);
	assert_int_equal(ep_digest_check("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "not a digest"));
	assert_int_equal(ep_digest_check("sha256:abc", &err), -1);
	assert_int_equal(ep_digest_check("md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &err), -1);
}

static void test_hash_chain(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_mem_sink mem;
	struct ep_hash_sink h;

	(void)state;
	ep_mem_sink_init(&mem, 16);
	assert_int_equal(ep_hash_sink_init(&h, &mem.base, &err), 0);
	assert_int_equal(ep_sink_write(&h.base, "ab", 2, &err), 0);
	assert_int_equal(ep_sink_write(&h.base, "c", 1, &err), 0);
	assert_int_equal(ep_sink_finish(&h.base, &err), 0);
	assert_string_equal(h.digest, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(h.bytes, 3);
	assert_string_equal(mem.data, "abc");
	/* the memory sink refuses to grow past its cap */
	assert_int_equal(ep_sink_write(&mem.base, "0123456789abcdef", 16, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	ep_sink_release(&h.base);
	ep_sink_release(&mem.base);
}

static void test_error_wrap(void **state)
{
	struct ep_error err = EP_ERROR_INIT;

	(void)state;
	ep_error_errno(&err, EP_EENV, 2, "open '%s'", "x");
	ep_error_wrap(&err, "layer %d", 3);
	assert_string_equal(err.msg, "layer 3: open 'x': No such file or directory");
	assert_int_equal(err.code, EP_EENV);
}

static void test_json_bounds(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char deep[200];
	json_t *j;
	size_t len;
	char *s;

	(void)state;
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_null(ep_json_loadb(deep, sizeof(deep), 1000, "'deep'", &err));
	assert_non_null(strstr(err.msg, "nested deeper"));
	assert_null(ep_json_loadb("{\"a\":1}", 7, 3, "'small'", &err));
	assert_non_null(strstr(err.msg, "too large"));
	assert_null(ep_json_loadb("{\"a\":1,\n\"a\":2}", 14, 100, "'dup'", &err));
	assert_non_null(strstr(err.msg, "'dup':2:"));
	j = ep_json_loadb("{\"b\": 1, \"a\": [true]}", 21, 100, "'ok'", &err);
	assert_non_null(j);
	s = ep_json_canonical(j, &len, &err);
	assert_string_equal(s, "{\"a\":[true],\"b\":1}");
	free(s);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_known), cmocka_unit_test(test_digest_check),
		cmocka_unit_test(test_hash_chain),   cmocka_unit_test(test_error_wrap),
		cmocka_unit_test(test_json_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
