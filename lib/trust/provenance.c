/* lib/trust/provenance.c - in-toto/SLSA provenance in DSSE. */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "jsonutil.h"
#include "oci.h"
#include "trust/provenance.h"
#include "trust/sidecar.h"
#include "util.h"

#define BUILD_TYPE "https://envpin.invalid/buildtypes/envpin-build/v1"
#define BUILDER_ID "https://envpin.invalid/builder/envpin/v" EP_VERSION

static const char *hex_of(const char *d)
{
	return d && !strncmp(d, "sha256:", 7) ? d + 7 : d;
}

static json_t *dep(const char *name, const char *uri, const char *sha)
{
	json_t *r = json_object();

	if (!r)
		return NULL;
	if (name)
		json_object_set_new(r, "name", json_string(name));
	if (uri)
		json_object_set_new(r, "uri", json_string(uri));
	if (sha && *sha)
		json_object_set_new(r, "digest", json_pack("{s:s}", "sha256", hex_of(sha)));
	return r;
}

static int add_deps(json_t *deps, json_t *lock, const char *lock_digest, struct ep_error *err)
{
	json_t *in = json_object_get(lock, "inputs"), *base = json_object_get(in, "base"), *l, *w;
	const char *kind = json_string_value(json_object_get(base, "kind")) ?: "scratch";
	size_t i, j;

#define STR(o, k) json_string_value(json_object_get((o), (k)))
	json_array_append_new(deps, dep("lock", NULL, lock_digest));
	if (!strcmp(kind, "rootfs"))
		json_array_append_new(deps, dep("base rootfs", NULL, STR(base, "sha256")));
	else if (!strcmp(kind, "oci"))
		json_array_append_new(deps, dep("base oci layout", NULL, STR(base, "digest")));
	else if (!strcmp(kind, "image")) {
		cleanup_free char *uri = ep_asprintf(err, "docker://%s", STR(base, "ref") ?: "");

		if (!uri)
			return -1;
		json_array_append_new(deps, dep("base image", uri, STR(base, "digest")));
	} else if (!strcmp(kind, "debian")) {
		json_array_append_new(deps,
				      dep("debian base (mmdebstrap)", STR(base, "mirror"), NULL));
		json_array_foreach (json_object_get(base, "packages"), j, w) {
			const char *p = json_string_value(w);
			const char *eq = p ? strchr(p, '=') : NULL;
			const char *colon = eq ? strrchr(eq, ':') : NULL;
			cleanup_free char *uri = NULL;

			if (!eq || !colon)
				continue;
			uri = ep_asprintf(err, "pkg:deb/debian/%.*s@%.*s?arch=%s", (int)(eq - p), p,
					  (int)(colon - eq - 1), eq + 1, colon + 1);
			if (!uri)
				return -1;
			json_array_append_new(deps, dep(NULL, uri, NULL));
		}
	}
	json_array_foreach (json_object_get(in, "layers"), i, l) {
		const char *lk = STR(l, "kind") ?: "";
		char name[64];

		snprintf(name, sizeof(name), "layers[%zu] %s", i, lk);
		if (!strcmp(lk, "copy"))
			json_array_append_new(deps, dep(name, NULL, STR(l, "content")));
		json_array_foreach (json_object_get(l, "items"), j, w)
			json_array_append_new(deps, dep(name, STR(w, "url"), STR(w, "sha256")));
		json_array_foreach (json_object_get(l, "wheels"), j, w)
			json_array_append_new(
			    deps, dep(STR(w, "filename"), STR(w, "url"), STR(w, "sha256")));
	}
#undef STR
	return 0;
}

json_t *ep_provenance_statement(struct ep_store *s, const char *digest, const char *name,
				struct ep_error *err)
{
	cleanup_free char *ltext = NULL;
	cleanup_json json_t *lock = NULL, *deps = json_array(), *st = NULL;
	json_t *img;
	ep_digest ld;
	size_t llen;

	ltext = ep_sidecar_lock(s, digest, &llen, ld, err);
	lock = ltext ? ep_json_loadb(ltext, llen, EP_SIDECAR_MAX_BLOB, "lock", err) : NULL;
	if (!lock)
		return NULL;
	if (!deps)
		return ep_error_oom(err), NULL;
	if (add_deps(deps, lock, ld, err) < 0)
		return NULL;
	if (!name)
		name = json_string_value(json_object_get(lock, "manifest")) ?: "image";
	img = json_object_get(lock, "image");
	st = json_pack(
	    "{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:{s:s, s:{s:{s:O, s:O}, s:O, s:O}, "
	    "s:{s:O, s:s, s:s, s:O}, s:O}, s:{s:{s:s, s:{s:s}}, s:{s:s}}}}",
	    "_type", EP_INTOTO_STATEMENT, "subject", "name", name, "digest", "sha256",
	    ep_digest_hex(digest), "predicateType", EP_SLSA_PROVENANCE, "predicate",
	    "buildDefinition", "buildType", BUILD_TYPE, "externalParameters", "manifest", "name",
	    json_object_get(lock, "manifest"), "sha256", json_object_get(lock, "manifest_sha256"),
	    "source_date_epoch", json_object_get(lock, "source_date_epoch"), "compressor",
	    json_object_get(lock, "compressor"), "internalParameters", "profile",
	    json_object_get(lock, "profile"), "lock_digest", ld, "manifest_digest", digest,
	    "config_digest", json_object_get(img, "config_digest") ?: json_null(),
	    "resolvedDependencies", deps, "runDetails", "builder", "id", BUILDER_ID, "version",
	    "envpin", EP_VERSION, "metadata", "invocationId", digest);
	if (!st)
		return ep_error_oom(err), NULL;
	return steal_pointer(&st);
}

char *ep_dsse_pae(const char *type, const char *body, size_t blen, size_t *len,
		  struct ep_error *err)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(type), type, blen);
	char *out;

	if (n < 0 || (size_t)n >= sizeof(head)) {
		ep_error_set(err, EP_EINVAL, "DSSE payload type too long");
		return NULL;
	}
	out = ep_malloc((size_t)n + blen + 1, err);
	if (!out)
		return NULL;
	memcpy(out, head, (size_t)n);
	memcpy(out + n, body, blen);
	out[(size_t)n + blen] = '\0';
	*len = (size_t)n + blen;
	return out;
}

int ep_dsse_keyid(const struct ep_key *k, char out[65], struct ep_error *err)
{
	cleanup_free char *pem = ep_key_public_pem(k, err), *canon = NULL;
	ep_digest d;

	if (!pem)
		return -1;
	/* OLPC canonical JSON as securesystemslib writes it: sorted keys, no
	 * spaces, strings escaped only for '"' and '\' (a PEM has neither) */
	canon = ep_asprintf(err,
			    "{\"keytype\":\"ecdsa\",\"keyval\":{\"public\":\"%s\"},"
			    "\"scheme\":\"ecdsa-sha2-nistp256\"}",
			    pem);
	if (!canon || ep_sha256_buf(canon, strlen(canon), d, err) < 0)
		return -1;
	snprintf(out, 65, "%s", ep_digest_hex(d));
	return 0;
}

json_t *ep_dsse_sign(const char *type, const char *body, size_t blen, const struct ep_key *k,
		     struct ep_error *err)
{
	cleanup_free char *pae = NULL, *sig = NULL, *b64 = NULL;
	char keyid[65];
	size_t plen;
	json_t *env;

	pae = ep_dsse_pae(type, body, blen, &plen, err);
	sig = pae ? ep_sign_b64(k, pae, plen, err) : NULL;
	b64 = sig ? ep_base64_encode(body, blen, err) : NULL;
	if (!b64 || ep_dsse_keyid(k, keyid, err) < 0)
		return NULL;
	env = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType", type, "payload", b64,
			"signatures", "keyid", keyid, "sig", sig);
	if (!env)
		ep_error_oom(err);
	return env;
}

int ep_dsse_verify(json_t *env, const struct ep_key *k, char **payload, size_t *plen,
		   struct ep_error *err)
{
	const char *type = json_string_value(json_object_get(env, "payloadType"));
	const char *b64 = json_string_value(json_object_get(env, "payload"));
	cleanup_free char *body = NULL, *pae = NULL;
	size_t blen, len;
	json_t *s;
	size_t i;

	*payload = NULL;
	if (!type || !b64 || !json_is_array(json_object_get(env, "signatures")))
		return ep_error_set(err, EP_EINVAL, "not a DSSE envelope");
	body = ep_base64_decode(b64, &blen, err);
	if (!body)
		return ep_error_wrap(err, "DSSE payload");
	pae = ep_dsse_pae(type, body, blen, &len, err);
	if (!pae)
		return -1;
	json_array_foreach (json_object_get(env, "signatures"), i, s) {
		const char *sig = json_string_value(json_object_get(s, "sig"));
		int v = sig ? ep_verify_b64(k, pae, len, sig, err) : 0;

		if (v < 0)
			return -1;
		if (v) {
			*payload = steal_pointer(&body);
			*plen = blen;
			return 0;
		}
	}
	return ep_error_set(err, EP_EMISMATCH,
			    "the DSSE envelope has no signature that verifies with this key "
			    "(another key, or a changed payload)");
}
