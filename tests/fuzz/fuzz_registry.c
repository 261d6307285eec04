/* tests/fuzz/fuzz_registry.c - what envpin parses out of a registry's
 * answers: the WWW-Authenticate challenge (ep_parse_www_authenticate), a
 * manifest/index body with its Content-Type (ep_json_loadb +
 * ep_registry_doc_kind), a Location header resolved against the request URL
 * (ep_url_resolve, ep_url_origin, ep_url_host, ep_host_name), a token answer
 * (JSON) and base64 credentials (ep_base64_decode).
 *
 * Input: up to five parts separated by lines "%%": challenge, content type,
 * body, location, base64. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "jsonutil.h"
#include "ref.h"
#include "registry.h"

static void challenge(const char *v)
{
	struct ep_error err = EP_ERROR_INIT;
	char *realm, *service, *scope;
	char *scheme = ep_parse_www_authenticate(v, &realm, &service, &scope, &err);

	if (!scheme) {
		if (realm || service || scope)
			abort(); /* the contract: all NULL on failure */
		return;
	}
	if (realm) {
		char *o = ep_url_origin(realm, &err);

		free(o);
	}
	free(scheme);
	free(realm);
	free(service);
	free(scope);
}

static void body(const char *ct, const uint8_t *b, size_t n)
{
	struct ep_error err = EP_ERROR_INIT;
	json_t *doc = ep_json_loadb((const char *)b, n, 4u << 20, "manifest", &err);

	if (!doc)
		return;
	(void)ep_registry_doc_kind(doc, ct, &err);
	(void)ep_registry_doc_kind(doc, NULL, &err);
	(void)json_string_value(json_object_get(doc, "token"));
	json_decref(doc);
}

static void location(const char *loc)
{
	struct ep_error err = EP_ERROR_INIT;
	char *u = ep_url_resolve("https://registry.example:5000/v2/a/b/blobs/uploads/", loc, &err);
	char name[256];

	if (u) {
		char *o = ep_url_origin(u, &err), *h = ep_url_host(u, &err);

		if (h) {
			(void)ep_host_name(h, name, sizeof(name));
			(void)ep_host_is_loopback(h);
		}
		free(o);
		free(h);
		free(u);
	}
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	const uint8_t *part[5];
	size_t len[5], n = fuzz_split(data, size, part, len, 5);
	char *s[5] = {0};
	struct ep_error err = EP_ERROR_INIT;

	for (size_t i = 0; i < n; i++)
		s[i] = fuzz_strndup(part[i], len[i]);
	challenge(s[0]);
	if (n > 2)
		body(s[1], part[2], len[2]);
	if (n > 3)
		location(s[3]);
	if (n > 4) {
		size_t dl;
		char *d = ep_base64_decode(s[4], &dl, &err);

		free(d);
	}
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	return 0;
}
