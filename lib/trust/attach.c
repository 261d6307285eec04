/* lib/trust/attach.c - OCI 1.1 artifacts beside an image, and moving them
 * and signatures between the store and a registry. */
#include <stdio.h>
#include <string.h>

#include "jsonutil.h"
#include "oci.h"
#include "trust/attach.h"
#include "trust/sidecar.h"
#include "trust/sign.h"
#include "util.h"

/* Cap on the artifacts pulled for one image. */
#define MAX_ATTACHMENTS 256

/* sha256 of "{}", the OCI empty descriptor's blob */
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

const char *ep_attach_type(const char *type, const char *text, size_t len, struct ep_error *err)
{
	if (!strcmp(type, "provenance"))
		return EP_AT_DSSE;
	if (!strcmp(type, "cert"))
		return EP_AT_CERT;
	if (strcmp(type, "sbom")) {
		ep_error_set(err, EP_EINVAL,
			     "unknown attachment type '%s' (sbom, provenance, cert)", type);
		return NULL;
	}
	{
		cleanup_json json_t *j =
		    ep_json_loadb(text, len, EP_SIDECAR_MAX_BLOB, "SBOM", NULL);

		if (json_string_value(json_object_get(j, "spdxVersion")))
			return EP_AT_SPDX;
		if (!strcmp(json_string_value(json_object_get(j, "bomFormat")) ?: "", "CycloneDX"))
			return EP_AT_CYCLONEDX;
	}
	ep_error_set(err, EP_EINVAL, "the SBOM is neither SPDX JSON nor CycloneDX JSON");
	return NULL;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* subject descriptor of image digest in the store */
static json_t *subject_of(struct ep_store *s, const char *digest, struct ep_error *err)
{
	cleanup_free char *text = NULL;
	cleanup_json json_t *m = NULL;
	const char *mt;
	size_t len;

	text = ep_layout_read_blob(s->root, digest, EP_MAX_MANIFEST_BYTES, &len, err);
	m = text ? ep_json_loadb(text, len, EP_MAX_MANIFEST_BYTES, digest, err) : NULL;
	if (!m)
		return NULL;
	mt = json_string_value(json_object_get(m, "mediaType"));
	return json_pack("{s:s, s:s, s:I}", "mediaType", mt ? mt : EP_MT_OCI_MANIFEST, "digest",
			 digest, "size", (json_int_t)len);
}

static int has_entry(json_t *list, const char *md)
{
	json_t *e;
	size_t i;

	json_array_foreach (list, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "digest")) ?: "", md))
			return 1;
	return 0;
}

int ep_attach_file(struct ep_store *s, const char *digest, const char *path,
		   const char *artifact_type, ep_digest md, struct ep_error *err)
{
	cleanup_free char *data = NULL, *mtext = NULL;
	cleanup_json json_t *subject = NULL, *man = NULL, *rec = NULL, *entry = NULL;
	json_t *list;
	ep_digest fd, ed;
	size_t len, mlen;
	struct ep_txn t;

	data = ep_read_file(path, EP_SIDECAR_MAX_BLOB, &len, err);
	if (!data)
		return -1;
	subject = subject_of(s, digest, err);
	if (!subject || ep_sha256_buf(data, len, fd, err) < 0)
		return -1;
	man = json_pack(
	    "{s:i, s:s, s:s, s:{s:s, s:s, s:i, s:s}, s:[{s:s, s:s, s:I, s:{s:s}}], s:O}",
	    "schemaVersion", 2, "mediaType", EP_MT_OCI_MANIFEST, "artifactType", artifact_type,
	    "config", "mediaType", EP_MT_OCI_EMPTY, "digest", EMPTY_DIGEST, "size", 2, "data",
	    "e30=", "layers", "mediaType", artifact_type, "digest", fd, "size", (json_int_t)len,
	    "annotations", "org.opencontainers.image.title", base_name(path), "subject", subject);
	rec = ep_sidecar_get(s, digest);
	if (!man || !rec)
		return ep_error_oom(err);
	mtext = ep_json_canonical(man, &mlen, err);
	if (!mtext || ep_sha256_buf(mtext, mlen, md, err) < 0)
		return -1;
	list = json_object_get(rec, "attachments");
	if (!list) {
		list = json_array();
		if (!list || json_object_set_new(rec, "attachments", list) < 0)
			return ep_error_oom(err);
	}
	if (has_entry(list, md))
		return 0;
	if (ep_txn_begin(s, &t, err) < 0)
		return -1;
	if (ep_txn_add_blob_buf(&t, "{}", 2, ed, err) < 0 ||
	    ep_txn_add_blob_buf(&t, data, len, fd, err) < 0 ||
	    ep_txn_add_blob_buf(&t, mtext, mlen, md, err) < 0)
		goto fail;
	entry = ep_sidecar_entry(mtext, mlen, md, err);
	if (!entry)
		goto fail;
	json_object_set_new(entry, "title", json_string(base_name(path)));
	if (json_array_append(list, entry) < 0 || ep_sidecar_put(&t, digest, rec, err) < 0)
		goto fail;
	return ep_txn_commit(&t, err);
fail:
	ep_txn_abort(&t);
	return -1;
}

json_t *ep_attachments_local(struct ep_store *s, const char *digest, struct ep_error *err)
{
	cleanup_json json_t *rec = ep_sidecar_get(s, digest);
	json_t *out = json_array(), *sig, *e;
	size_t i;

	if (!rec || !out) {
		json_decref(out);
		ep_error_oom(err);
		return NULL;
	}
	sig = json_object_get(rec, "signature");
	if (sig)
		json_array_append_new(
		    out, json_pack("{s:s, s:O, s:O, s:s, s:s++}", "kind", "signature", "digest",
				   json_object_get(sig, "digest"), "size",
				   json_object_get(sig, "size"), "mediaType", EP_MT_OCI_MANIFEST,
				   "tag", "sha256-", ep_digest_hex(digest), ".sig"));
	json_array_foreach (json_object_get(rec, "attachments"), i, e) {
		json_t *o =
		    json_pack("{s:s, s:O, s:O, s:O}", "kind", "attachment", "digest",
			      json_object_get(e, "digest"), "size", json_object_get(e, "size"),
			      "mediaType", json_object_get(e, "mediaType"));

		if (json_object_get(e, "artifactType"))
			json_object_set(o, "artifactType", json_object_get(e, "artifactType"));
		if (json_object_get(e, "title"))
			json_object_set(o, "title", json_object_get(e, "title"));
		json_array_append_new(out, o);
	}
	return out;
}

char *ep_attachment_read(struct ep_store *s, const char *digest, const char *artifact_type,
			 size_t *len, struct ep_error *err)
{
	cleanup_json json_t *rec = ep_sidecar_get(s, digest);
	json_t *e, *hit = NULL;
	size_t i;

	json_array_foreach (json_object_get(rec, "attachments"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "artifactType")) ?: "",
			    artifact_type))
			hit = e;
	if (!hit) {
		ep_error_set(err, EP_EINVAL, "image %s has no %s attachment", digest,
			     artifact_type);
		return NULL;
	}
	/* blobs: [config, the file] */
	return ep_sidecar_blob(s,
			       json_string_value(json_object_get(
				   json_array_get(json_object_get(hit, "blobs"), 1), "digest"))
				   ?: "",
			       EP_SIDECAR_MAX_BLOB, len, err);
}

static json_t *referrers_index(const char *ref_s, const char *digest,
			       const struct ep_registry_opts *o, const char **via,
			       json_t **fallback, struct ep_store *s, struct ep_error *err)
{
	json_t *idx = NULL;
	char tag[80];
	struct ep_txn t;
	ep_digest id;
	int rc;

	*fallback = NULL;
	rc = ep_registry_referrers(ref_s, digest, o, &idx, err);
	if (rc < 0)
		return NULL;
	if (rc == 0) {
		*via = "referrers-api";
		return idx;
	}
	snprintf(tag, sizeof(tag), "sha256-%s", ep_digest_hex(digest));
	if (ep_txn_begin(s, &t, err) < 0)
		return NULL;
	rc = ep_registry_fetch_doc(&t, ref_s, tag, EP_MAX_MANIFEST_BYTES, o, id, &idx, err);
	ep_txn_abort(&t);
	if (rc < 0)
		return NULL;
	*via = rc == 0 ? "tag-fallback" : "none";
	if (rc == 1 || !json_is_array(json_object_get(idx, "manifests"))) {
		json_decref(idx);
		idx = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
				EP_MT_OCI_INDEX, "manifests");
	}
	*fallback = json_incref(idx);
	return idx;
}

json_t *ep_attachments_remote(struct ep_store *s, const char *ref_s, const char *digest,
			      const struct ep_registry_opts *o, const char **via,
			      struct ep_error *err)
{
	cleanup_json json_t *fb = NULL, *idx = NULL;

	cleanup_json json_t *out = NULL, *sig = NULL;
	char tag[80];
	struct ep_txn t;
	ep_digest md;
	int rc;

	*via = "none";
	idx = referrers_index(ref_s, digest, o, via, &fb, s, err);
	if (!idx)
		return NULL;
	out = json_array();
	if (!out) {
		ep_error_oom(err);
		return NULL;
	}
	/* cosign's signature is a tag, not a referrer */
	snprintf(tag, sizeof(tag), "sha256-%s.sig", ep_digest_hex(digest));
	if (ep_txn_begin(s, &t, err) < 0)
		return NULL;
	rc = ep_registry_fetch_doc(&t, ref_s, tag, 1u << 20, o, md, &sig, err);
	ep_txn_abort(&t);
	if (rc < 0)
		return NULL;
	if (rc == 0)
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "kind", "signature",
						     "digest", md, "mediaType", EP_MT_OCI_MANIFEST,
						     "tag", tag));
	json_array_extend(out, json_object_get(idx, "manifests"));
	return steal_pointer(&out);
}

/* The sidecar entry for a manifest fetched into t. */
static json_t *fetched_entry(struct ep_txn *t, const char *md, struct ep_error *err)
{
	cleanup_free char *p = ep_txn_blob_path(t, md, err), *raw = NULL;
	size_t len;

	raw = p ? ep_read_file(p, EP_MAX_MANIFEST_BYTES, &len, err) : NULL;
	return raw ? ep_sidecar_entry(raw, len, md, err) : NULL;
}

/* The docker-references the signature image sig's payloads name (new array). */
static json_t *signed_identities(struct ep_store *s, const char *sig)
{
	cleanup_free char *text = NULL;
	cleanup_json json_t *m = NULL;
	json_t *out = json_array(), *l;
	size_t len, i;

	text = ep_sidecar_blob(s, sig, EP_MAX_MANIFEST_BYTES, &len, NULL);
	m = text ? ep_json_loadb(text, len, EP_MAX_MANIFEST_BYTES, sig, NULL) : NULL;
	json_array_foreach (json_object_get(m, "layers"), i, l) {
		const char *pd = json_string_value(json_object_get(l, "digest"));
		cleanup_free char *p = pd ? ep_sidecar_blob(s, pd, 1u << 20, &len, NULL) : NULL;
		cleanup_json json_t *pj =
		    p ? ep_json_loadb(p, len, 1u << 20, "payload", NULL) : NULL;
		json_t *r =
		    json_object_get(json_object_get(json_object_get(pj, "critical"), "identity"),
				    "docker-reference");

		if (json_is_string(r))
			json_array_append(out, r);
	}
	return out;
}

int ep_trust_push(struct ep_store *s, const char *digest, const char *ref_s,
		  const struct ep_registry_opts *o, json_t **report, struct ep_error *err)
{
	cleanup_json json_t *rec = ep_sidecar_get(s, digest), *idx = NULL, *fb = NULL;
	const char *sig =
	    json_string_value(json_object_get(json_object_get(rec, "signature"), "digest"));
	json_t *atts = json_object_get(rec, "attachments"), *e;
	const char *via = "none";
	char tag[80];
	size_t i, n = 0;
	int changed = 0;

	*report = NULL;
	if (!rec)
		return ep_error_oom(err);
	if (sig) {
		snprintf(tag, sizeof(tag), "sha256-%s.sig", ep_digest_hex(digest));
		if (ep_registry_push_doc(s, sig, ref_s, tag, o, err) < 0)
			return ep_error_wrap(err, "push the signature");
	}
	json_array_foreach (atts, i, e) {
		if (ep_registry_push_doc(s, json_string_value(json_object_get(e, "digest")), ref_s,
					 NULL, o, err) < 0)
			return ep_error_wrap(err, "push an attachment");
		n++;
	}
	if (n) {
		idx = referrers_index(ref_s, digest, o, &via, &fb, s, err);
		if (!idx)
			return -1;
	}
	if (fb) {
		/* the registry does not index referrers: keep the fallback tag */
		json_t *ms = json_object_get(fb, "manifests");
		cleanup_free char *text = NULL;
		ep_digest id;
		size_t len;
		struct ep_txn t;

		json_array_foreach (atts, i, e) {
			const char *md = json_string_value(json_object_get(e, "digest"));

			if (has_entry(ms, md))
				continue;
			json_array_append_new(
			    ms, json_pack("{s:s, s:s, s:O, s:O}", "mediaType", EP_MT_OCI_MANIFEST,
					  "digest", md, "size", json_object_get(e, "size"),
					  "artifactType", json_object_get(e, "artifactType")));
			changed = 1;
		}
		if (changed) {
			text = ep_json_canonical(fb, &len, err);
			if (!text || ep_txn_begin(s, &t, err) < 0)
				return -1;
			if (ep_txn_add_blob_buf(&t, text, len, id, err) < 0) {
				ep_txn_abort(&t);
				return -1;
			}
			if (ep_txn_commit(&t, err) < 0)
				return -1;
			snprintf(tag, sizeof(tag), "sha256-%s", ep_digest_hex(digest));
			if (ep_registry_push_doc(s, id, ref_s, tag, o, err) < 0)
				return ep_error_wrap(err, "push the referrers fallback index");
		}
		via = "tag-fallback";
	}
	*report = json_pack("{s:b, s:I, s:s}", "signature", sig != NULL, "attachments",
			    (json_int_t)n, "via", via);
	if (*report && sig) {
		/* cosign checks the payload names the repository it verifies */
		cleanup_free char *repo = ep_sign_identity(ref_s, NULL);
		json_t *ids = signed_identities(s, sig), *v;
		int match = 0;

		json_array_foreach (ids, i, v)
			match |= repo && !strcmp(json_string_value(v), repo);
		json_object_set_new(*report, "signed_identities", ids);
		json_object_set_new(*report, "signature_matches_repository", json_boolean(match));
	}
	return *report ? 0 : ep_error_oom(err);
}

/* Checks a fetched artifact names digest as its subject. */
static int subject_is(json_t *doc, const char *digest)
{
	return !strcmp(json_string_value(json_object_get(json_object_get(doc, "subject"), "digest"))
			   ?: "",
		       digest);
}

int ep_trust_pull(struct ep_store *s, const char *digest, const char *ref_s,
		  const struct ep_registry_opts *o, json_t **report, struct ep_error *err)
{
	cleanup_json json_t *rec = ep_sidecar_get(s, digest), *idx = NULL, *fb = NULL;
	const char *via = "none";
	struct ep_txn t;
	char tag[80];
	ep_digest md;
	json_t *list, *e;
	size_t i, n = 0;
	int rc, got_sig = 0;

	*report = NULL;
	if (!rec)
		return ep_error_oom(err);
	idx = referrers_index(ref_s, digest, o, &via, &fb, s, err);
	if (!idx)
		return -1;
	if (ep_txn_begin(s, &t, err) < 0)
		return -1;
	snprintf(tag, sizeof(tag), "sha256-%s.sig", ep_digest_hex(digest));
	{
		cleanup_json json_t *doc = NULL, *entry = NULL;
		json_t *l;

		rc = ep_registry_fetch_doc(&t, ref_s, tag, 1u << 20, o, md, &doc, err);
		if (rc < 0)
			goto fail;
		json_array_foreach (json_object_get(doc, "layers"), i, l)
			if (strcmp(json_string_value(json_object_get(l, "mediaType")) ?: "",
				   EP_MT_COSIGN_PAYLOAD)) {
				ep_error_set(err, EP_EINVAL,
					     "'%s' in '%s' is not a cosign signature image", tag,
					     ref_s);
				goto fail;
			}
		if (rc == 0) {
			entry = fetched_entry(&t, md, err);
			if (!entry)
				goto fail;
			json_object_set(rec, "signature", entry);
			got_sig = 1;
		}
	}
	list = json_object_get(rec, "attachments");
	if (!list) {
		list = json_array();
		json_object_set_new(rec, "attachments", list);
	}
	json_array_foreach (json_object_get(idx, "manifests"), i, e) {
		const char *d = json_string_value(json_object_get(e, "digest"));
		cleanup_json json_t *doc = NULL, *entry = NULL;

		if (!d || ep_digest_check(d, NULL) < 0 || has_entry(list, d))
			continue;
		/* an untrusted index: a bounded number of artifacts */
		if (json_array_size(list) >= MAX_ATTACHMENTS) {
			ep_error_set(err, EP_EINVAL, "more than %d attachments for %s in '%s'",
				     MAX_ATTACHMENTS, digest, ref_s);
			goto fail;
		}
		rc = ep_registry_fetch_doc(&t, ref_s, d, EP_SIDECAR_MAX_BLOB, o, md, &doc, err);
		if (rc < 0)
			goto fail;
		if (rc == 1 || !subject_is(doc, digest))
			continue;
		entry = fetched_entry(&t, md, err);
		if (!entry)
			goto fail;
		{
			json_t *l0 = json_array_get(json_object_get(doc, "layers"), 0);
			const char *title = json_string_value(json_object_get(
			    json_object_get(l0, "annotations"), "org.opencontainers.image.title"));

			if (title)
				json_object_set_new(entry, "title", json_string(title));
		}
		json_array_append(list, entry);
		n++;
	}
	if ((got_sig || n) && ep_sidecar_put(&t, digest, rec, err) < 0)
		goto fail;
	if (ep_txn_commit(&t, err) < 0)
		return -1;
	*report = json_pack("{s:b, s:I, s:s}", "signature", got_sig, "attachments", (json_int_t)n,
			    "via", via);
	return *report ? 0 : ep_error_oom(err);
fail:
	ep_txn_abort(&t);
	return -1;
}
