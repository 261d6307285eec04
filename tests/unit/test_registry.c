/* Unit tests: lib/registry's parsers of untrusted input (documents,
 * WWW-Authenticate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static int kind(const char *text, const char *ct)
{
	struct ep_error err = EP_ERROR_INIT;
	json_t *j = json_loads(text, 0, NULL);
	int k;

	assert_non_null(j);
	k = ep_registry_doc_kind(j, ct, &err);
	json_decref(j);
	return k;
}

static void test_doc_kind(void **state)
{
	(void)state;
	assert_int_equal(kind("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			      "\"config\":{},\"layers\":[]}", NULL), 1);
	assert_int_equal(kind("{\"schemaVersion\":2,\"config\":{},\"layers\":[]}",
			      "application/vnd.oci.image.manifest.v1+json"), 1);
	assert_int_equal(kind("{\"schemaVersion\":2,\"manifests\":[]}", NULL), 2);
	assert_int_equal(kind("{\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
			      "\"manifests\":[]}", "application/vnd.docker.distribution.manifest.list.v2+json"), 2);
	/* CVE-2021-41190: both readings possible */
	assert_int_equal(kind("{\"config\":{},\"layers\":[],\"manifests\":[]}", NULL), -1);
	/* mediaType against fields, and against Content-Type */
	assert_int_equal(kind("{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"config\":{},\"layers\":[]}", NULL), -1);
	assert_int_equal(kind("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"manifests\":[]}", NULL), -1);
	assert_int_equal(kind("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{},\"layers\":[]}",
			      "application/vnd.oci.image.index.v1+json"), -1);
	assert_int_equal(kind("{\"schemaVersion\":1,\"fsLayers\":[]}", NULL), -1);
	assert_int_equal(kind("{\"config\":{}}", NULL), -1);
	assert_int_equal(kind("[]", NULL), -1);
}

static void test_www_authenticate(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char *realm, *service, *scope, *scheme;

	(void)state;
	scheme = ep_parse_www_authenticate(
		"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
		"scope=\"repository:library/debian:pull\"", &realm, &service, &scope, &err);
	assert_string_equal(scheme, "Bearer");
	assert_string_equal(realm, "https://auth.docker.io/token");
	assert_string_equal(service, "registry.docker.io");
	assert_string_equal(scope, "repository:library/debian:pull");
	free(scheme), free(realm), free(service), free(scope);

	scheme = ep_parse_www_authenticate("Basic realm=\"a \\\"quoted\\\" realm\"", &realm, &service,
					   &scope, &err);
	assert_string_equal(scheme, "Basic");
	assert_string_equal(realm, "a \"quoted\" realm");
	assert_null(service);
	free(scheme), free(realm);

	scheme = ep_parse_www_authenticate("Bearer realm=unquoted , error=\"insufficient_scope\"",
					   &realm, &service, &scope, &err);
	assert_string_equal(realm, "unquoted");
	free(scheme), free(realm);

	assert_null(ep_parse_www_authenticate("Bearer realm=\"unterminated", &realm, &service, &scope, &err));
	assert_null(ep_parse_www_authenticate("Bearer =x", &realm, &service, &scope, &err));
	assert_null(ep_parse_www_authenticate("", &realm, &service, &scope, &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_kind),
		cmocka_unit_test(test_www_authenticate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
