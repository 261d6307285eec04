/* lib/trust/sign.c - ECDSA P-256 keys (OpenSSL 3) and cosign's keyed
 * signature layout.  The layout is cosign's, so that `cosign verify --key`
 * and a containers-policy `sigstoreSigned` requirement accept what envpin
 * writes; see docs/signing.md. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "jsonutil.h"
#include "oci.h"
#include "ref.h"
#include "trust/sidecar.h"
#include "trust/sign.h"
#include "util.h"

#define KEY_FILE_MAX (64u << 10)

struct ep_key {
	EVP_PKEY *pkey;
};

/* OpenSSL's last error as text, for a message; clears the queue. */
static const char *ssl_reason(void)
{
	static __thread char buf[160];
	unsigned long e = ERR_peek_last_error();

	buf[0] = '\0';
	if (e)
		snprintf(buf, sizeof(buf), "%s", ERR_reason_error_string(e) ?: "unknown error");
	ERR_clear_error();
	return buf[0] ? buf : "unknown error";
}

void ep_key_free(struct ep_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

static int is_p256(EVP_PKEY *p)
{
	char group[64] = "";
	size_t n = 0;

	if (!EVP_PKEY_is_a(p, "EC"))
		return 0;
	if (EVP_PKEY_get_group_name(p, group, sizeof(group), &n) != 1)
		return 0;
	return !strcmp(group, "prime256v1") || !strcmp(group, "P-256");
}

static char *bio_text(BIO *b, struct ep_error *err)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out;

	if (n < 0)
		return NULL;
	out = ep_malloc((size_t)n + 1, err);
	if (!out)
		return NULL;
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	return out;
}

/* Creates path with O_EXCL and the mode given (umask does not widen or
 * narrow it) and writes text. */
static int write_new(const char *path, const char *text, int mode, struct ep_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return ep_error_errno(err, errno == EEXIST ? EP_EINVAL : EP_EENV, errno,
				      "cannot create '%s'", path);
	if (fchmod(fd, (mode_t)mode) < 0 || ep_write_all(fd, text, strlen(text), err) < 0 ||
	    fsync(fd) < 0) {
		int e = errno;

		close(fd);
		unlink(path);
		return err && err->code ? -1 : ep_error_errno(err, EP_EENV, e, "write '%s'", path);
	}
	if (close(fd) < 0) {
		unlink(path);
		return ep_error_errno(err, EP_EENV, errno, "close '%s'", path);
	}
	return 0;
}

int ep_key_generate(const char *prefix, const char *passphrase, struct ep_error *err)
{
	cleanup_free char *kpath = ep_asprintf(err, "%s.key", prefix);
	cleanup_free char *ppath = ep_asprintf(err, "%s.pub", prefix);
	cleanup_free char *ktext = NULL, *ptext = NULL;
	EVP_PKEY *p = NULL;
	BIO *kb = NULL, *pb = NULL;
	int rc = -1, enc = passphrase && *passphrase;

	if (!kpath || !ppath)
		return -1;
	if (access(kpath, F_OK) == 0 || access(ppath, F_OK) == 0)
		return ep_error_set(err, EP_EINVAL,
				    "'%s' or '%s' exists: envpin never overwrites a key", kpath,
				    ppath);
	p = EVP_EC_gen("P-256");
	kb = BIO_new(BIO_s_mem());
	pb = BIO_new(BIO_s_mem());
	if (!p || !kb || !pb) {
		ep_error_set(err, EP_EENV, "generate a P-256 key: %s", ssl_reason());
		goto out;
	}
	if (PEM_write_bio_PKCS8PrivateKey(kb, p, enc ? EVP_aes_256_cbc() : NULL,
					  enc ? passphrase : NULL,
					  enc ? (int)strlen(passphrase) : 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(pb, p) != 1) {
		ep_error_set(err, EP_EENV, "encode the key: %s", ssl_reason());
		goto out;
	}
	ktext = bio_text(kb, err);
	ptext = bio_text(pb, err);
	if (!ktext || !ptext)
		goto out;
	if (write_new(kpath, ktext, 0600, err) < 0)
		goto out;
	if (write_new(ppath, ptext, 0644, err) < 0) {
		unlink(kpath);
		goto out;
	}
	rc = 0;
out:
	if (ktext)
		explicit_bzero(ktext, strlen(ktext));
	BIO_free(kb);
	BIO_free(pb);
	EVP_PKEY_free(p);
	return rc;
}

struct pw {
	const char *pass;
	int asked;
};

/* Never prompts: the passphrase comes from the caller or not at all. */
static int pw_cb(char *buf, int size, int rwflag, void *u)
{
	struct pw *pw = u;
	size_t n;

	(void)rwflag;
	pw->asked = 1;
	if (!pw->pass)
		return -1;
	n = strlen(pw->pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, pw->pass, n);
	return (int)n;
}

static struct ep_key *wrap_key(EVP_PKEY *p, const char *path, struct ep_error *err)
{
	struct ep_key *k;

	if (!is_p256(p)) {
		EVP_PKEY_free(p);
		ep_error_set(err, EP_EINVAL, "'%s' is not an ECDSA P-256 key", path);
		return NULL;
	}
	k = ep_calloc(1, sizeof(*k), err);
	if (!k) {
		EVP_PKEY_free(p);
		return NULL;
	}
	k->pkey = p;
	return k;
}

static BIO *key_bio(const char *path, char **text, struct ep_error *err)
{
	size_t len;
	BIO *b;

	*text = ep_read_file(path, KEY_FILE_MAX, &len, err);
	if (!*text)
		return NULL;
	b = BIO_new_mem_buf(*text, (int)len);
	if (!b)
		ep_error_oom(err);
	return b;
}

struct ep_key *ep_key_load_private(const char *path, const char *passphrase, struct ep_error *err)
{
	cleanup_free char *text = NULL;
	BIO *b = key_bio(path, &text, err);
	struct pw pw = {passphrase, 0};
	EVP_PKEY *p;

	if (!b)
		return NULL;
	p = PEM_read_bio_PrivateKey(b, NULL, pw_cb, &pw);
	BIO_free(b);
	explicit_bzero(text, strlen(text));
	if (!p) {
		ERR_clear_error();
		if (pw.asked && !passphrase)
			ep_error_set(
			    err, EP_EINVAL,
			    "'%s' is encrypted: give its passphrase with --passphrase-file", path);
		else if (pw.asked)
			ep_error_set(err, EP_EINVAL, "'%s': wrong passphrase (or a damaged key)",
				     path);
		else
			ep_error_set(err, EP_EINVAL, "'%s' is not a PEM private key (corrupt?)",
				     path);
		return NULL;
	}
	return wrap_key(p, path, err);
}

struct ep_key *ep_key_load_public(const char *path, struct ep_error *err)
{
	cleanup_free char *text = NULL;
	BIO *b = key_bio(path, &text, err);
	struct pw pw = {NULL, 0};
	EVP_PKEY *p;

	if (!b)
		return NULL;
	p = PEM_read_bio_PUBKEY(b, NULL, pw_cb, &pw);
	if (!p) {
		ERR_clear_error();
		(void)BIO_reset(b);
		p = PEM_read_bio_PrivateKey(b, NULL, pw_cb, &pw);
	}
	BIO_free(b);
	if (!p) {
		ERR_clear_error();
		ep_error_set(err, EP_EINVAL, "'%s' is not a PEM public key (corrupt?)", path);
		return NULL;
	}
	return wrap_key(p, path, err);
}

int ep_key_id(const struct ep_key *k, ep_digest out, struct ep_error *err)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k->pkey, &der);
	int rc;

	if (n <= 0)
		return ep_error_set(err, EP_EENV, "encode public key: %s", ssl_reason());
	rc = ep_sha256_buf(der, (size_t)n, out, err);
	OPENSSL_free(der);
	return rc;
}

char *ep_key_public_pem(const struct ep_key *k, struct ep_error *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;

	if (!b || PEM_write_bio_PUBKEY(b, k->pkey) != 1)
		ep_error_set(err, EP_EENV, "encode public key: %s", ssl_reason());
	else
		out = bio_text(b, err);
	BIO_free(b);
	return out;
}

char *ep_sign_b64(const struct ep_key *k, const void *buf, size_t len, struct ep_error *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t n = 0;
	char *out = NULL;

	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, buf, len) != 1) {
		ep_error_set(err, EP_EINVAL, "sign: %s (is it a private key?)", ssl_reason());
		goto out;
	}
	sig = ep_malloc(n, err);
	if (!sig)
		goto out;
	if (EVP_DigestSign(ctx, sig, &n, buf, len) != 1) {
		ep_error_set(err, EP_EENV, "sign: %s", ssl_reason());
		goto out;
	}
	out = ep_base64_encode(sig, n, err);
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return out;
}

int ep_verify_b64(const struct ep_key *k, const void *buf, size_t len, const char *sig_b64,
		  struct ep_error *err)
{
	cleanup_free char *sig = NULL;
	EVP_MD_CTX *ctx;
	size_t n;
	int rc;

	sig = ep_base64_decode(sig_b64, &n, NULL);
	if (!sig || n == 0)
		return 0;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1) {
		EVP_MD_CTX_free(ctx);
		return ep_error_set(err, EP_EENV, "verify: %s", ssl_reason());
	}
	rc = EVP_DigestVerify(ctx, (const unsigned char *)sig, n, buf, len);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc == 1;
}

char *ep_cosign_payload(const char *identity, const char *digest, size_t *len, struct ep_error *err)
{
	cleanup_json json_t *p =
	    json_pack("{s:{s:{s:s}, s:{s:s}, s:s}, s:n}", "critical", "identity",
		      "docker-reference", identity, "image", "docker-manifest-digest", digest,
		      "type", EP_COSIGN_TYPE, "optional");

	if (!p) {
		ep_error_oom(err);
		return NULL;
	}
	return ep_json_canonical(p, len, err);
}

char *ep_sign_identity(const char *ref, struct ep_error *err)
{
	struct ep_ref r;
	char *out;

	if (ep_ref_parse(ref, &r, err) < 0)
		return NULL;
	out = ep_asprintf(err, "%s/%s", r.host, r.repo);
	ep_ref_release(&r);
	return out;
}

/* cosign's config for a signature image: fixed fields, one diff_id and one
 * history entry per payload layer. */
static json_t *sig_config(json_t *layers)
{
	json_t *c = json_pack("{s:s, s:{}, s:s, s:[], s:s, s:{s:[], s:s}}", "architecture", "",
			      "config", "created", "0001-01-01T00:00:00Z", "history", "os", "",
			      "rootfs", "diff_ids", "type", "layers");
	json_t *l;
	size_t i;

	if (!c)
		return NULL;
	json_array_foreach (layers, i, l) {
		json_array_append_new(json_object_get(c, "history"),
				      json_pack("{s:s}", "created", "0001-01-01T00:00:00Z"));
		json_array_append(json_object_get(json_object_get(c, "rootfs"), "diff_ids"),
				  json_object_get(l, "digest"));
	}
	return c;
}

/* The layers of the signature image recorded in rec (a new array). */
static json_t *sig_layers(struct ep_store *s, json_t *rec, ep_digest md, struct ep_error *err)
{
	const char *d =
	    json_string_value(json_object_get(json_object_get(rec, "signature"), "digest"));
	cleanup_free char *text = NULL;
	cleanup_json json_t *m = NULL;
	size_t len;

	md[0] = '\0';
	if (!d)
		return json_array();
	text = ep_sidecar_blob(s, d, EP_MAX_MANIFEST_BYTES, &len, err);
	if (!text) {
		ep_error_wrap(err, "signature image of %s is damaged (tampered?)",
			      json_string_value(json_object_get(rec, "image")));
		return NULL;
	}
	m = ep_json_loadb(text, len, EP_MAX_MANIFEST_BYTES, d, err);
	if (!m || !json_is_array(json_object_get(m, "layers"))) {
		if (m)
			ep_error_set(err, EP_EMISMATCH, "signature image %s has no layers", d);
		return NULL;
	}
	snprintf(md, sizeof(ep_digest), "%s", d);
	return json_deep_copy(json_object_get(m, "layers"));
}

/* Stages a JSON document canonically; its digest and size go to desc. */
static json_t *stage_json(struct ep_txn *t, json_t *doc, const char *mt, char **text, size_t *len,
			  ep_digest d, struct ep_error *err)
{
	*text = ep_json_canonical(doc, len, err);
	if (!*text || ep_txn_add_blob_buf(t, *text, *len, d, err) < 0)
		return NULL;
	return json_pack("{s:s, s:I, s:s}", "mediaType", mt, "size", (json_int_t)*len, "digest", d);
}

int ep_sign_image(struct ep_store *s, const char *digest, const char *identity,
		  const struct ep_key *k, ep_digest sig_manifest, struct ep_error *err)
{
	cleanup_free char *payload = NULL, *sig = NULL, *ctext = NULL, *mtext = NULL;
	cleanup_json json_t *rec = NULL, *layers = NULL, *cfg = NULL, *man = NULL, *cdesc = NULL,
			    *entry = NULL;
	ep_digest pd, cd, md, old;
	size_t plen, clen, mlen, i;
	struct ep_txn t;
	json_t *l;

	payload = ep_cosign_payload(identity, digest, &plen, err);
	sig = payload ? ep_sign_b64(k, payload, plen, err) : NULL;
	rec = ep_sidecar_get(s, digest);
	if (!sig || !rec)
		return rec ? -1 : ep_error_oom(err);
	layers = sig_layers(s, rec, old, err);
	if (!layers || ep_sha256_buf(payload, plen, pd, err) < 0)
		return -1;
	/* the same payload already signed by this key: nothing to add */
	json_array_foreach (layers, i, l) {
		const char *a = json_string_value(
		    json_object_get(json_object_get(l, "annotations"), EP_COSIGN_SIG_ANNOTATION));

		if (a && !strcmp(json_string_value(json_object_get(l, "digest")) ?: "", pd) &&
		    ep_verify_b64(k, payload, plen, a, NULL) == 1) {
			if (sig_manifest)
				snprintf(sig_manifest, sizeof(ep_digest), "%s", old);
			return 0;
		}
	}
	json_array_append_new(layers,
			      json_pack("{s:s, s:I, s:s, s:{s:s}}", "mediaType",
					EP_MT_COSIGN_PAYLOAD, "size", (json_int_t)plen, "digest",
					pd, "annotations", EP_COSIGN_SIG_ANNOTATION, sig));
	cfg = sig_config(layers);
	if (!cfg)
		return ep_error_oom(err);
	if (ep_txn_begin(s, &t, err) < 0)
		return -1;
	if (ep_txn_add_blob_buf(&t, payload, plen, pd, err) < 0)
		goto fail;
	cdesc = stage_json(&t, cfg, EP_MT_OCI_CONFIG, &ctext, &clen, cd, err);
	if (!cdesc)
		goto fail;
	man = json_pack("{s:i, s:s, s:O, s:O}", "schemaVersion", 2, "mediaType", EP_MT_OCI_MANIFEST,
			"config", cdesc, "layers", layers);
	if (!man) {
		ep_error_oom(err);
		goto fail;
	}
	mtext = ep_json_canonical(man, &mlen, err);
	if (!mtext || ep_txn_add_blob_buf(&t, mtext, mlen, md, err) < 0)
		goto fail;
	entry = ep_sidecar_entry(mtext, mlen, md, err);
	if (!entry || json_object_set(rec, "signature", entry) < 0 ||
	    ep_sidecar_put(&t, digest, rec, err) < 0)
		goto fail;
	if (ep_txn_commit(&t, err) < 0)
		return -1;
	if (sig_manifest)
		snprintf(sig_manifest, sizeof(ep_digest), "%s", md);
	return 0;
fail:
	ep_txn_abort(&t);
	return -1;
}

/* How bad a failed payload is, for choosing the reason to report. */
enum { WHY_KEY = 1, WHY_PAYLOAD = 2, WHY_TAMPERED = 3 };

static int check_payload(const char *p, size_t len, const char *digest, const char *identity,
			 char *ident_out, size_t ident_len, char *why, size_t wlen)
{
	cleanup_json json_t *j = ep_json_loadb(p, len, 1u << 20, "payload", NULL);
	json_t *crit = json_object_get(j, "critical");
	const char *type = json_string_value(json_object_get(crit, "type"));
	const char *d = json_string_value(
	    json_object_get(json_object_get(crit, "image"), "docker-manifest-digest"));
	const char *r = json_string_value(
	    json_object_get(json_object_get(crit, "identity"), "docker-reference"));

	if (!j || !type || strcmp(type, EP_COSIGN_TYPE) || !d || !r) {
		snprintf(why, wlen, "the signed payload is not a cosign simple-signing payload");
		return -1;
	}
	if (strcmp(d, digest)) {
		snprintf(why, wlen, "the signature is for image %.80s, not %s", d, digest);
		return -1;
	}
	if (identity && strcmp(r, identity)) {
		snprintf(why, wlen, "the signature is for repository '%.200s', not '%.200s'", r,
			 identity);
		return -1;
	}
	snprintf(ident_out, ident_len, "%s", r);
	return 0;
}

int ep_verify_image_signature(struct ep_store *s, const char *digest, const char *identity,
			      const struct ep_key *k, struct ep_sig_check *out,
			      struct ep_error *err)
{
	cleanup_json json_t *rec = ep_sidecar_get(s, digest), *layers = NULL;
	char why[512] = "";
	int worst = 0;
	json_t *l;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->verified = -1;
	if (!rec)
		return ep_error_oom(err);
	layers = sig_layers(s, rec, out->sig_manifest, err);
	if (!layers)
		return -1;
	if (json_array_size(layers) == 0)
		return ep_error_set(
		    err, EP_EMISMATCH,
		    "no signature: image %s has no signature in the store (sign it, or "
		    "pull it from a registry that has one)",
		    digest);
	json_array_foreach (layers, i, l) {
		const char *pd = json_string_value(json_object_get(l, "digest"));
		const char *a = json_string_value(
		    json_object_get(json_object_get(l, "annotations"), EP_COSIGN_SIG_ANNOTATION));
		cleanup_free char *p = NULL;
		char lwhy[512];
		size_t plen;
		int w = 0, v;

		out->n_signatures++;
		if (!pd || !a) {
			snprintf(lwhy, sizeof(lwhy),
				 "signature layer %zu has no payload or signature", i);
			w = WHY_TAMPERED;
		} else if (!(p = ep_sidecar_blob(s, pd, 1u << 20, &plen, NULL))) {
			snprintf(
			    lwhy, sizeof(lwhy),
			    "tampered payload: the signed payload %.80s is missing or its bytes "
			    "changed",
			    pd);
			w = WHY_TAMPERED;
		} else if ((v = ep_verify_b64(k, p, plen, a, err)) < 0) {
			return -1;
		} else if (!v) {
			snprintf(lwhy, sizeof(lwhy),
				 "wrong key: the signature does not verify with this key (%s)",
				 "another key signed it, or the payload was changed");
			w = WHY_KEY;
		} else if (check_payload(p, plen, digest, identity, out->identity,
					 sizeof(out->identity), lwhy, sizeof(lwhy)) < 0) {
			w = WHY_PAYLOAD;
		} else {
			out->verified = (int)i;
			return 0;
		}
		if (w > worst) {
			worst = w;
			snprintf(why, sizeof(why), "%s", lwhy);
		}
	}
	return ep_error_set(err, EP_EMISMATCH, "signature of %s does not verify: %s", digest, why);
}

/* Does policy scope `scope` cover identity "HOST/REPO"?  Returns the length
 * of the match (longer is more specific), 0 when it does not. */
static size_t scope_match(const char *scope, const char *identity)
{
	size_t n = strlen(scope);

	if (!strcmp(scope, identity))
		return n + 1;
	if (n && !strncmp(scope, identity, n) && identity[n] == '/')
		return n;
	return 0;
}

int ep_policy_key_for(const char *policy_path, const char *identity, char **key_path,
		      struct ep_error *err)
{
	cleanup_json json_t *pol = ep_json_load_file(policy_path, 1u << 20, err);
	json_t *scopes, *reqs = NULL, *r, *v;
	const char *scope;
	size_t best = 0, i;
	int sigstore = 0, accept = 0;

	*key_path = NULL;
	if (!pol)
		return -1;
	scopes = json_object_get(json_object_get(pol, "transports"), "docker");
	json_object_foreach (scopes, scope, v) {
		size_t m = scope_match(scope, identity);

		if (m > best) {
			best = m;
			reqs = v;
		}
	}
	if (!reqs)
		reqs = json_object_get(pol, "default");
	if (!json_is_array(reqs) || !json_array_size(reqs))
		return ep_error_set(err, EP_EINVAL, "'%s': no requirement covers '%s'", policy_path,
				    identity);
	json_array_foreach (reqs, i, r) {
		const char *type = json_string_value(json_object_get(r, "type")) ?: "";

		if (!strcmp(type, "reject"))
			return ep_error_set(err, EP_EMISMATCH, "'%s' rejects every image of '%s'",
					    policy_path, identity);
		if (!strcmp(type, "insecureAcceptAnything")) {
			accept = 1;
		} else if (!strcmp(type, "sigstoreSigned")) {
			const char *kp = json_string_value(json_object_get(r, "keyPath"));

			if (!kp || sigstore)
				return ep_error_set(
				    err, EP_EINVAL,
				    "'%s': envpin checks one sigstoreSigned requirement "
				    "with a keyPath per scope",
				    policy_path);
			*key_path = ep_strdup(kp, err);
			if (!*key_path)
				return -1;
			sigstore = 1;
		} else {
			free(*key_path);
			*key_path = NULL;
			return ep_error_set(err, EP_EINVAL,
					    "'%s': requirement type '%s' is not supported",
					    policy_path, type);
		}
	}
	return sigstore ? 1 : accept ? 0 : 0;
}
