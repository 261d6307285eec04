/* lib/trust/sidecar.c - records beside an image in the store. */
#include <stdio.h>
#include <string.h>

#include "jsonutil.h"
#include "oci.h"
#include "trust/sidecar.h"
#include "util.h"

static void key_for(char *out, size_t n, const char *kind, const char *digest)
{
	snprintf(out, n, "%s-%s", kind, ep_digest_hex(digest));
}

json_t *ep_sidecar_get(struct ep_store *s, const char *digest)
{
	char key[96];
	json_t *rec;

	key_for(key, sizeof(key), "trust", digest);
	rec = ep_store_cache_get(s, key);
	if (rec && json_is_object(rec) &&
	    !strcmp(json_string_value(json_object_get(rec, "image")) ?: "", digest))
		return rec;
	json_decref(rec);
	return json_pack("{s:s}", "image", digest);
}

int ep_sidecar_put(struct ep_txn *t, const char *digest, json_t *rec, struct ep_error *err)
{
	char key[96];

	key_for(key, sizeof(key), "trust", digest);
	return ep_txn_set_cache(t, key, rec, err);
}

json_t *ep_sidecar_entry(const char *text, size_t len, const char *md, struct ep_error *err)
{
	cleanup_json json_t *doc = ep_json_loadb(text, len, EP_MAX_MANIFEST_BYTES, md, err);
	json_t *e, *blobs, *l;
	const char *mt, *at;
	size_t i;

	if (!doc)
		return NULL;
	mt = json_string_value(json_object_get(doc, "mediaType"));
	at = json_string_value(json_object_get(doc, "artifactType"));
	e = json_pack("{s:s, s:I, s:s, s:[]}", "digest", md, "size", (json_int_t)len, "mediaType",
		      mt ? mt : EP_MT_OCI_MANIFEST, "blobs");
	if (!e) {
		ep_error_oom(err);
		return NULL;
	}
	if (at)
		json_object_set_new(e, "artifactType", json_string(at));
	blobs = json_object_get(e, "blobs");
	if (json_object_get(doc, "config"))
		json_array_append_new(
		    blobs, json_pack("{s:O}", "digest",
				     json_object_get(json_object_get(doc, "config"), "digest")));
	json_array_foreach (json_object_get(doc, "layers"), i, l)
		json_array_append_new(blobs,
				      json_pack("{s:O}", "digest", json_object_get(l, "digest")));
	return e;
}

int ep_sidecar_set_lock(struct ep_txn *t, const char *image, const char *text, size_t len,
			struct ep_error *err)
{
	cleanup_json json_t *rec = NULL;
	ep_digest ld;
	char key[96];

	if (ep_txn_add_blob_buf(t, text, len, ld, err) < 0)
		return -1;
	rec = json_pack("{s:s, s:{s:s, s:I}}", "image", image, "lock", "digest", ld, "size",
			(json_int_t)len);
	if (!rec)
		return ep_error_oom(err);
	key_for(key, sizeof(key), "lock", image);
	return ep_txn_set_cache(t, key, rec, err);
}

char *ep_sidecar_blob(struct ep_store *s, const char *digest, size_t max, size_t *len,
		      struct ep_error *err)
{
	if (ep_digest_check(digest, err) < 0)
		return NULL;
	return ep_layout_read_blob(s->root, digest, max, len, err);
}

char *ep_sidecar_lock(struct ep_store *s, const char *image, size_t *len, ep_digest lock_digest,
		      struct ep_error *err)
{
	char key[96];
	cleanup_json json_t *rec = NULL;
	const char *ld;
	char *text;

	key_for(key, sizeof(key), "lock", image);
	rec = ep_store_cache_get(s, key);
	ld = json_string_value(json_object_get(json_object_get(rec, "lock"), "digest"));
	if (!rec || strcmp(json_string_value(json_object_get(rec, "image")) ?: "", image) || !ld) {
		ep_error_set(err, EP_EINVAL,
			     "image %s has no lock in the store (pulled, or built by an older "
			     "envpin): rebuild it with 'envpin build' to record one",
			     image);
		return NULL;
	}
	text = ep_sidecar_blob(s, ld, EP_SIDECAR_MAX_BLOB, len, err);
	if (!text)
		return NULL;
	snprintf(lock_digest, sizeof(ep_digest), "%s", ld);
	return text;
}
