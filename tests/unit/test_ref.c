/* Unit tests: lib/ref (image references) and lib/http URL helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "ref.h"

#define D64 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void check(const char *s, const char *host, const char *api, const char *repo,
		  const char *tag, const char *digest, int loopback)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_ref r;

	assert_int_equal(ep_ref_parse(s, &r, &err), 0);
	assert_string_equal(r.host, host);
	assert_string_equal(r.api_host, api);
	assert_string_equal(r.repo, repo);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	assert_string_equal(r.digest, digest);
	assert_int_equal(r.loopback, loopback);
	ep_ref_release(&r);
}

static void test_ref_forms(void **state)
{
	(void)state;
	check("debian", "docker.io", "registry-1.docker.io", "library/debian", "latest", "", 0);
	check("nvidia/cuda:12.4.1-base-ubuntu22.04", "docker.io", "registry-1.docker.io", "nvidia/cuda",
	      "12.4.1-base-ubuntu22.04", "", 0);
	check("nvcr.io/nvidia/pytorch:25.02-py3", "nvcr.io", "nvcr.io", "nvidia/pytorch", "25.02-py3", "", 0);
	check("127.0.0.1:5000/a/b", "127.0.0.1:5000", "127.0.0.1:5000", "a/b", "latest", "", 1);
	check("localhost/x@" D64, "localhost", "localhost", "x", NULL, D64, 1);
	check("localhost:5000/x:t@" D64, "localhost:5000", "localhost:5000", "x", "t", D64, 1);
	check("[::1]:5000/x", "[::1]:5000", "[::1]:5000", "x", "latest", "", 1);
	check("127.9.8.7:1/a__b.c-d/e", "127.9.8.7:1", "127.9.8.7:1", "a__b.c-d/e", "latest", "", 1);
	check("index.docker.io/library/busybox", "docker.io", "registry-1.docker.io", "library/busybox",
	      "latest", "", 0);
}

static void test_ref_invalid(void **state)
{
	static const char *bad[] = {
		"",
		"UPPER/case",
		"x:",
		"x:-tag",
		"x@sha256:abc",
		"x@sha512:" "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"host:99999/x",
		"host:/x",
		"a//b",
		"a/../b",
		"-a",
		"a/b/",
		"x:tag with space",
		"ex%ample.com/x",
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_ref r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ep_error_clear(&err);
		if (ep_ref_parse(bad[i], &r, &err) == 0)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(err.code, EP_EINVAL);
	}
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(ep_host_is_loopback("127.0.0.1"));
	assert_true(ep_host_is_loopback("127.0.0.2:80"));
	assert_true(ep_host_is_loopback("LOCALHOST:5000"));
	assert_true(ep_host_is_loopback("[::1]:5000"));
	assert_false(ep_host_is_loopback("128.0.0.1"));
	assert_false(ep_host_is_loopback("localhost.example.com"));
	assert_false(ep_host_is_loopback("127.0.0.1.example.com"));
	assert_false(ep_host_is_loopback("[::2]"));
}

static void test_format(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_ref r;
	char *s;

	(void)state;
	assert_int_equal(ep_ref_parse("busybox@" D64, &r, &err), 0);
	s = ep_ref_format(&r, &err);
	assert_string_equal(s, "docker.io/library/busybox@" D64);
	free(s);
	ep_ref_release(&r);
}

static void test_url_helpers(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *s;

	(void)state;
	s = ep_url_origin("https://Reg.example:443/v2/x", &err);
	assert_string_equal(s, "https://reg.example:443");
	free(s);
	s = ep_url_origin("http://127.0.0.1/v2/", &err);
	assert_string_equal(s, "http://127.0.0.1:80");
	free(s);
	s = ep_url_resolve("http://127.0.0.1:5000/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u1?x=1", &err);
	assert_string_equal(s, "http://127.0.0.1:5000/v2/a/blobs/uploads/u1?x=1");
	free(s);
	s = ep_url_resolve("http://127.0.0.1:5000/v2/", "http://127.0.0.2:9/b", &err);
	assert_string_equal(s, "http://127.0.0.2:9/b");
	free(s);
	s = ep_url_host("https://[::1]:5000/v2/", &err);
	assert_string_equal(s, "[::1]:5000");
	free(s);
	s = ep_base64_encode("envpin:pw", 9, &err);
	assert_string_equal(s, "ZW52cGluOnB3");
	free(s);
	s = ep_base64_decode("ZW52cGluOnB3", NULL, &err);
	assert_string_equal(s, "envpin:pw");
	free(s);
	s = ep_base64_decode("YQ==", NULL, &err);
	assert_string_equal(s, "a");
	free(s);
	assert_null(ep_base64_decode("Y!==", NULL, &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_forms),    cmocka_unit_test(test_ref_invalid),
		cmocka_unit_test(test_loopback),     cmocka_unit_test(test_format),
		cmocka_unit_test(test_url_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
