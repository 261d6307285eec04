/* tests/fuzz/fuzz_cert.c - certificates (lib/cert.c): the reference
 * certificate `verify --certify` reads (ep_cert_compare_fingerprints on its
 * "fingerprint", against itself and against a second document), and the
 * JSON the checks print inside the container, which ep_cert_build turns
 * into a certificate.
 *
 * Input: up to three parts separated by lines "%%": a certificate, a second
 * certificate (the "now" side), the selfcheck/fitsinfer output. */
#include <jansson.h>
#include <stdlib.h>

#include "cert.h"
#include "fuzz.h"
#include "jsonutil.h"

static json_t *load(const uint8_t *b, size_t n)
{
	struct ep_error err = EP_ERROR_INIT;

	return ep_json_loadb((const char *)b, n, EP_JSON_MAX_BYTES, "certificate", &err);
}

static void compare(json_t *ref, json_t *now)
{
	struct ep_error err = EP_ERROR_INIT;
	json_t *r = ep_cert_compare_fingerprints(ref, now, &err);

	json_decref(r);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	const uint8_t *part[3];
	size_t len[3], n = fuzz_split(data, size, part, len, 3);
	json_t *a = load(part[0], len[0]);
	json_t *b = n > 1 ? load(part[1], len[1]) : NULL;
	json_t *checks = n > 2 ? load(part[2], len[2]) : NULL;
	json_t *fa = json_object_get(a, "fingerprint"), *fb = json_object_get(b, "fingerprint");

	if (fa) {
		compare(fa, fa);
		compare(fa, fb ? fb : a);
	}
	if (checks || a) {
		struct ep_error err = EP_ERROR_INIT;
		struct ep_cert_inputs in = {
		    .digest =
			"sha256:0000000000000000000000000000000000000000000000000000000000000000",
		    .config_digest =
			"sha256:1111111111111111111111111111111111111111111111111111111111111111",
		    .tag = "fuzz",
		    .selfcheck = checks ? checks : a,
		    .selfcheck_status = 0,
		    .fitsinfer = checks ? a : NULL,
		    .fitsinfer_error = checks ? NULL : "did not run",
		    .fitsinfer_status = 1,
		    .gpus = "all",
		    .engine = "native",
		    .require_gpu = 1,
		};
		json_t *c = ep_cert_build(&in, &err);

		if (c) {
			char *s = ep_json_canonical(c, NULL, &err);

			free(s);
			json_decref(c);
		}
	}
	json_decref(a);
	json_decref(b);
	json_decref(checks);
	return 0;
}
