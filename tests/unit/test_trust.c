/* Unit tests: lib/trust (cosign payload, DSSE PAE, ECDSA round trip,
 * Debian copyright licenses to SPDX, policy scopes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trust/provenance.h"
#include "trust/sbom.h"
#include "trust/sign.h"
#include "util.h"

#define D64 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_cosign_payload(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	size_t len;
	char *p = ep_cosign_payload("registry.example.org/lab/astro", D64, &len, &err);

	(void)state;
	assert_non_null(p);
	/* cosign's bytes: compact, keys in this order, optional null */
	assert_string_equal(p, "{\"critical\":{\"identity\":{\"docker-reference\":"
			       "\"registry.example.org/lab/astro\"},\"image\":{\"docker-manifest-"
			       "digest\":\"" D64 "\"},\"type\":\"cosign container image "
			       "signature\"},\"optional\":null}");
	assert_int_equal(len, strlen(p));
	free(p);
	p = ep_sign_identity("localhost:5000/a/b:tag", &err);
	assert_string_equal(p, "localhost:5000/a/b");
	free(p);
	p = ep_sign_identity("astro", &err);
	assert_string_equal(p, "docker.io/library/astro");
	free(p);
}

static void test_pae(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	size_t len;
	char *p = ep_dsse_pae("http://example.com/HelloWorld", "hello world", 11, &len, &err);

	(void)state;
	/* the DSSE specification's example */
	assert_string_equal(p, "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
	assert_int_equal(len, strlen(p));
	free(p);
	p = ep_dsse_pae("t", "", 0, &len, &err);
	assert_string_equal(p, "DSSEv1 1 t 0 ");
	free(p);
}

static void test_sign_roundtrip(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char dir[] = "/tmp/ep-trust-XXXXXX", prefix[64], path[80], keyid[65];
	struct ep_key *k, *pub;
	char *sig;
	json_t *env;
	char *body;
	size_t blen;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(prefix, sizeof(prefix), "%s/k", dir);
	assert_int_equal(ep_key_generate(prefix, "pw", &err), 0);
	/* never overwritten */
	assert_int_equal(ep_key_generate(prefix, NULL, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	snprintf(path, sizeof(path), "%s.key", prefix);
	assert_null(ep_key_load_private(path, "wrong", &err));
	assert_int_equal(err.code, EP_EINVAL);
	assert_null(ep_key_load_private(path, NULL, &err));
	assert_non_null(strstr(err.msg, "encrypted"));
	k = ep_key_load_private(path, "pw", &err);
	assert_non_null(k);
	snprintf(path, sizeof(path), "%s.pub", prefix);
	pub = ep_key_load_public(path, &err);
	assert_non_null(pub);
	sig = ep_sign_b64(k, "abc", 3, &err);
	assert_non_null(sig);
	assert_int_equal(ep_verify_b64(pub, "abc", 3, sig, &err), 1);
	assert_int_equal(ep_verify_b64(pub, "abd", 3, sig, &err), 0);
	assert_int_equal(ep_verify_b64(pub, "abc", 3, "not base64!", &err), 0);
	env = ep_dsse_sign("application/x", "{}", 2, k, &err);
	assert_non_null(env);
	assert_int_equal(ep_dsse_keyid(pub, keyid, &err), 0);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(env, "signatures"), 0), "keyid")),
			    keyid);
	assert_int_equal(ep_dsse_verify(env, pub, &body, &blen, &err), 0);
	assert_int_equal(blen, 2);
	free(body);
	json_object_set_new(env, "payloadType", json_string("application/y"));
	assert_int_equal(ep_dsse_verify(env, pub, &body, &blen, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	json_decref(env);
	free(sig);
	ep_key_free(k);
	ep_key_free(pub);
	snprintf(path, sizeof(path), "%s.key", prefix);
	unlink(path);
	snprintf(path, sizeof(path), "%s.pub", prefix);
	unlink(path);
	rmdir(dir);
}

static void lic(const char *text, const char *want, const char *ref)
{
	struct ep_error err = EP_ERROR_INIT;
	json_t *refs = json_object();
	char *got = ep_sbom_debian_license(text, "pkg", refs, &err);

	if (want)
		assert_string_equal(got, want);
	else
		assert_null(got);
	if (ref)
		assert_non_null(json_object_get(refs, ref));
	else
		assert_int_equal(json_object_size(refs), 0);
	free(got);
	json_decref(refs);
}

#define FMT "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"

static void test_debian_licenses(void **state)
{
	(void)state;
	lic(FMT "\nFiles: *\nLicense: GPL-2+\n", "GPL-2.0-or-later", NULL);
	lic(FMT "\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: a/*\nLicense: Expat\n",
	    "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND MIT", NULL);
	lic(FMT "\nFiles: *\nLicense: LGPL-2.1+ with OpenSSL exception\n", "LGPL-2.1-or-later",
	    NULL);
	/* a standalone License paragraph names a text, not a file's license */
	lic(FMT "\nFiles: *\nLicense: ISC\n\nLicense: GPL-3+\n text\n", "ISC", NULL);
	lic(FMT "\nFiles: *\nLicense: public-domain\n", "LicenseRef-public-domain",
	    "LicenseRef-public-domain");
	lic(FMT "\nFiles: *\nLicense: BSD-3-clause\n\nFiles: b\nLicense: BSD-3-clause\n",
	    "BSD-3-Clause", NULL);
	/* free text: nothing claimed, nothing declared */
	lic("This is free software.\nLicense: whatever\n", NULL, NULL);
}

static void test_policy(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char path[] = "/tmp/ep-policy-XXXXXX";
	int fd = mkstemp(path);
	char *key = NULL;
	const char *pol =
	    "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{"
	    "\"r.io/lab\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/lab.pub\"}],"
	    "\"r.io/lab/astro\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/astro.pub\"}],"
	    "\"r.io/open\":[{\"type\":\"insecureAcceptAnything\"}]}}}";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pol, strlen(pol)), (ssize_t)strlen(pol));
	close(fd);
	assert_int_equal(ep_policy_key_for(path, "r.io/lab/astro", &key, &err), 1);
	assert_string_equal(key, "/astro.pub");
	free(key);
	assert_int_equal(ep_policy_key_for(path, "r.io/lab/other", &key, &err), 1);
	assert_string_equal(key, "/lab.pub");
	free(key);
	/* a scope is a path prefix, not a string prefix */
	assert_int_equal(ep_policy_key_for(path, "r.io/labx/y", &key, &err), -1);
	assert_int_equal(err.code, EP_EMISMATCH);
	assert_int_equal(ep_policy_key_for(path, "r.io/open/x", &key, &err), 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cosign_payload), cmocka_unit_test(test_pae),
	    cmocka_unit_test(test_sign_roundtrip), cmocka_unit_test(test_debian_licenses),
	    cmocka_unit_test(test_policy),
	};

	return cmocka_run_group_tests_name("trust", tests, NULL, NULL);
}
