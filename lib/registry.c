#include "registry.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compress.h"
#include "http.h"
#include "jsonutil.h"
#include "oci.h"
#include "parallel.h"
#include "sink.h"
#include "strvec.h"
#include "util.h"

#define MAX_ATTEMPTS 5
#define MAX_HOPS 10
#define TOKEN_MAX (64u << 10)
#define RETRY_AFTER_CAP_MS 10000

static const char accept_manifests[] =
	"Accept: " EP_MT_OCI_MANIFEST ", " EP_MT_OCI_INDEX ", " EP_MT_DOCKER_MANIFEST ", " EP_MT_DOCKER_LIST;

/* One registry host; shared by the transfer threads (auth under mu). */
struct reg {
	const struct ep_registry_opts *o;
	char *host;        /* for credentials and certs.d */
	char *base;        /* "https://api_host" */
	char *origin;      /* base with explicit port: credentials go only here */
	char *ca_file;
	int allow_http;
	char *basic;       /* base64(user:pass) or NULL */
	char *scope;       /* space-separated scopes asked for with a token */
	pthread_mutex_t mu;
	char *auth;        /* "Authorization: ..." in use, or NULL */
	unsigned auth_gen; /* bumps when auth changes */
	pthread_mutex_t pmu; /* progress */
	uint64_t pdone, ptotal;
	const char *pwhat;
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long backoff_ms(int attempt, const char *retry_after)
{
	long ms = 250L << (attempt < 6 ? attempt : 6);

	if (retry_after && isdigit((unsigned char)retry_after[0]))
		ms = strtol(retry_after, NULL, 10) * 1000;
	return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : ms;
}

char *ep_docker_config_path(struct ep_error *err)
{
	const char *d = getenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");

	if (d && *d)
		return ep_path_join(d, "config.json", err);
	if (!home || !*home) {
		ep_error_set(err, EP_EENV, "HOME is not set; cannot find the docker config");
		return NULL;
	}
	return ep_asprintf(err, "%s/.docker/config.json", home);
}

/* auths.HOST.auth of the docker config, checked to be base64 of "user:pass". */
static char *lookup_credentials(const char *host, struct ep_error *err)
{
	cleanup_free char *path = ep_docker_config_path(NULL);
	cleanup_json json_t *cfg = NULL;
	const char *keys[5];
	size_t nk = 0;
	/* allocated: a truncated key could name another host's credentials */
	cleanup_free char *https_host = NULL;

	if (!path || access(path, F_OK) < 0)
		return NULL;
	cfg = ep_json_load_file(path, 1u << 20, err);
	if (!cfg)
		return NULL;
	https_host = ep_asprintf(err, "https://%s", host);
	if (!https_host)
		return NULL;
	keys[nk++] = host;
	keys[nk++] = https_host;
	if (!strcmp(host, "docker.io")) {
		keys[nk++] = "https://index.docker.io/v1/";
		keys[nk++] = "index.docker.io";
	}
	for (size_t i = 0; i < nk; i++) {
		const char *a = json_string_value(
			json_object_get(json_object_get(json_object_get(cfg, "auths"), keys[i]), "auth"));
		cleanup_free char *dec = NULL;

		if (!a || !*a)
			continue;
		dec = ep_base64_decode(a, NULL, NULL);
		if (!dec || !strchr(dec, ':')) {
			ep_error_set(err, EP_EINVAL, "'%s': auths.%s.auth is not base64 of user:password",
				     path, keys[i]);
			return NULL;
		}
		return ep_strdup(a, err);
	}
	return NULL;
}

static void reg_free(struct reg *g)
{
	if (!g)
		return;
	free(g->host);
	free(g->base);
	free(g->origin);
	free(g->ca_file);
	free(g->basic);
	free(g->scope);
	free(g->auth);
	pthread_mutex_destroy(&g->mu);
	pthread_mutex_destroy(&g->pmu);
	free(g);
}

static struct reg *reg_new(const struct ep_ref *ref, const struct ep_registry_opts *o,
			   struct ep_error *err)
{
	struct reg *g = ep_calloc(1, sizeof(*g), err);
	struct ep_error cerr = EP_ERROR_INIT;

	if (!g)
		return NULL;
	pthread_mutex_init(&g->mu, NULL);
	pthread_mutex_init(&g->pmu, NULL);
	g->o = o;
	g->allow_http = ref->loopback;
	g->host = ep_strdup(ref->host, err);
	g->base = ep_asprintf(err, "%s://%s", ref->loopback ? "http" : "https", ref->api_host);
	if (!g->host || !g->base)
		goto fail;
	if (o->ca_file) {
		g->ca_file = ep_strdup(o->ca_file, err);
		if (!g->ca_file)
			goto fail;
	} else {
		const char *d = getenv("ENVPIN_CERTS_D");
		cleanup_free char *ca = ep_asprintf(err, "%s/%s/ca.crt", d && *d ? d : "/etc/docker/certs.d",
						    ref->host);

		if (!ca)
			goto fail;
		if (access(ca, R_OK) == 0)
			g->ca_file = steal_pointer(&ca);
	}
	/* A registry with a CA of its own speaks TLS, even on loopback. */
	if (g->ca_file && ref->loopback) {
		free(g->base);
		g->base = ep_asprintf(err, "https://%s", ref->api_host);
		if (!g->base)
			goto fail;
	}
	g->origin = ep_url_origin(g->base, err);
	if (!g->origin)
		goto fail;
	g->basic = lookup_credentials(ref->host, &cerr);
	if (!g->basic && cerr.code != EP_OK) {
		if (err)
			*err = cerr;
		goto fail;
	}
	return g;
fail:
	reg_free(g);
	return NULL;
}

static void progress_add(struct reg *g, uint64_t n)
{
	if (!g->o->progress)
		return;
	pthread_mutex_lock(&g->pmu);
	uint64_t before = g->pdone;

	g->pdone += n;
	if ((before >> 23) != (g->pdone >> 23) || g->pdone == g->ptotal)
		g->o->progress(g->o->pctx, g->pwhat, g->pdone, g->ptotal);
	pthread_mutex_unlock(&g->pmu);
}

static void progress_cb(void *ctx, uint64_t n)
{
	progress_add(ctx, n);
}

/* ---- WWW-Authenticate and tokens ---- */

char *ep_parse_www_authenticate(const char *v, char **realm, char **service, char **scope,
				struct ep_error *err)
{
	const char *p = v;
	char *scheme;
	size_t n = 0;

	*realm = *service = *scope = NULL;
	while (*p == ' ')
		p++;
	while (isalpha((unsigned char)p[n]))
		n++;
	if (!n) {
		ep_error_set(err, EP_EINVAL, "malformed WWW-Authenticate header");
		return NULL;
	}
	scheme = strndup(p, n);
	if (!scheme) {
		ep_error_oom(err);
		return NULL;
	}
	p += n;
	while (*p) {
		char key[32], val[2048];
		size_t k = 0, vl = 0;

		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		while ((isalnum((unsigned char)*p) || *p == '_' || *p == '-') && k < sizeof(key) - 1)
			key[k++] = *p++;
		key[k] = '\0';
		while (*p == ' ')
			p++;
		if (!k || *p != '=')
			goto bad;
		p++;
		while (*p == ' ')
			p++;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				if (vl >= sizeof(val) - 1)
					goto bad;
				val[vl++] = *p++;
			}
			if (*p != '"')
				goto bad;
			p++;
		} else {
			while (*p && *p != ',' && *p != ' ') {
				if (vl >= sizeof(val) - 1)
					goto bad;
				val[vl++] = *p++;
			}
		}
		val[vl] = '\0';
		char **slot = !strcasecmp(key, "realm")	    ? realm
			      : !strcasecmp(key, "service") ? service
			      : !strcasecmp(key, "scope")   ? scope
							    : NULL;
		if (slot) {
			free(*slot);
			*slot = strdup(val);
			if (!*slot)
				goto bad;
		}
	}
	return scheme;
bad:
	free(scheme);
	free(*realm);
	free(*service);
	free(*scope);
	*realm = *service = *scope = NULL;
	ep_error_set(err, EP_EINVAL, "malformed WWW-Authenticate header");
	return NULL;
}

static int ip_is_internal(const char *host)
{
	char h[256];
	struct in_addr a4;
	struct in6_addr a6;

	if (ep_host_name(host, h, sizeof(h)) < 0)
		return 0;
	if (!strcasecmp(h, "localhost"))
		return 1;
	if (inet_pton(AF_INET, h, &a4) == 1) {
		uint32_t a = ntohl(a4.s_addr);

		return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == 0xac1 ||
		       (a >> 16) == 0xc0a8 || (a >> 16) == 0xa9fe || a == 0;
	}
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6) ||
		       (a6.s6_addr[0] & 0xfe) == 0xfc || IN6_IS_ADDR_UNSPECIFIED(&a6);
	return 0;
}

static int same_hostname(const char *a, const char *b)
{
	char ha[256], hb[256];

	return ep_host_name(a, ha, sizeof(ha)) == 0 && ep_host_name(b, hb, sizeof(hb)) == 0 &&
	       !strcasecmp(ha, hb);
}

/* The realm is where our credentials go: https, or loopback http for a
 * loopback registry; no internal addresses other than the registry's own. */
static int check_realm(struct reg *g, const char *realm, struct ep_error *err)
{
	cleanup_free char *rhost = ep_url_host(realm, err);
	cleanup_free char *ghost = ep_url_host(g->base, err);

	if (!rhost || !ghost)
		return ep_error_wrap(err, "token realm");
	if (!strncasecmp(realm, "http://", 7)) {
		if (!g->allow_http || !ep_host_is_loopback(rhost))
			return ep_error_set(err, EP_EINVAL,
					    "token realm '%s' is plain http; refusing to send credentials",
					    realm);
	} else if (strncasecmp(realm, "https://", 8)) {
		return ep_error_set(err, EP_EINVAL, "token realm '%s' is not an https URL", realm);
	}
	if (ip_is_internal(rhost) && !same_hostname(rhost, ghost))
		return ep_error_set(err, EP_EINVAL,
				    "token realm '%s' points at an internal address other than the registry",
				    realm);
	return 0;
}

static int valid_token(const char *t)
{
	if (!*t || strlen(t) > 16384)
		return 0;
	for (; *t; t++)
		if (*t <= ' ' || *t > '~')
			return 0;
	return 1;
}

static int fetch_token(struct reg *g, struct ep_http *h, const char *realm, const char *service,
		       const char *scope, struct ep_error *err)
{
	cleanup_free char *authz = NULL;
	cleanup_json json_t *doc = NULL;
	/* grown as needed: the realm, service and scopes come from the registry */
	struct ep_strbuf url = EP_STRBUF_INIT;
	struct ep_http_resp r;
	struct ep_http_req q = {.method = "GET", .upload_fd = -1, .max_body = TOKEN_MAX};
	const char *hdrs[2] = {NULL, NULL};
	const char *tok;
	int rc = -1;

	if (check_realm(g, realm, err) < 0)
		goto out;
	ep_strbuf_addf(&url, "%s%s", realm, strchr(realm, '?') ? "&" : "?");
	if (service) {
		cleanup_free char *e = ep_url_escape(service, err);

		if (!e)
			goto out;
		ep_strbuf_addf(&url, "service=%s", e);
	}
	/* one scope= parameter per space-separated scope */
	for (const char *s = scope; s && *s;) {
		size_t n = strcspn(s, " ");
		cleanup_free char *one = strndup(s, n);
		cleanup_free char *e = one ? ep_url_escape(one, err) : NULL;

		if (!e)
			goto out;
		ep_strbuf_addf(&url, "%sscope=%s", service ? "&" : "", e);
		service = service ? service : "";
		s += n;
		while (*s == ' ')
			s++;
	}
	if (g->basic) {
		authz = ep_asprintf(err, "Authorization: Basic %s", g->basic);
		if (!authz)
			goto out;
		hdrs[0] = authz;
	}
	if (url.oom) {
		ep_error_oom(err);
		goto out;
	}
	q.url = ep_strbuf_str(&url);
	q.headers = hdrs;
	q.allow_http = g->allow_http;
	if (ep_http_do(h, &q, &r, err) < 0) {
		ep_error_wrap(err, "token");
		goto out;
	}
	if (r.status == 401 || r.status == 403) {
		ep_error_set(err, EP_EENV, "token from '%s': HTTP %ld: %s", realm, r.status,
			     g->basic ? "the registry refused the credentials"
				      : "credentials needed (envpin login)");
		ep_http_resp_release(&r);
		goto out;
	}
	if (r.status != 200 || !r.body) {
		ep_error_set(err, EP_EENV, "token from '%s': HTTP %ld", realm, r.status);
		ep_http_resp_release(&r);
		goto out;
	}
	doc = ep_json_loadb(r.body, r.body_len, TOKEN_MAX, "token response", err);
	ep_http_resp_release(&r);
	if (!doc)
		goto out;
	tok = json_string_value(json_object_get(doc, "token"));
	if (!tok)
		tok = json_string_value(json_object_get(doc, "access_token"));
	if (!tok || !valid_token(tok)) {
		ep_error_set(err, EP_EINVAL, "token from '%s': no usable token in the answer", realm);
		goto out;
	}
	free(g->auth);
	g->auth = ep_asprintf(err, "Authorization: Bearer %s", tok);
	if (!g->auth)
		goto out;
	g->auth_gen++;
	rc = 0;
out:
	ep_strbuf_release(&url);
	return rc;
}

/* Answers a 401: sets g->auth from the challenge.  Threads that saw the same
 * 401 wait here; only the first one fetches. */
static int authenticate(struct reg *g, struct ep_http *h, const char *challenge, unsigned seen_gen,
			struct ep_error *err)
{
	cleanup_free char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
	int rc = 0;

	pthread_mutex_lock(&g->mu);
	if (g->auth_gen != seen_gen)
		goto out; /* another thread already did */
	if (!challenge) {
		rc = ep_error_set(err, EP_EENV, "HTTP 401 without a WWW-Authenticate challenge");
		goto out;
	}
	scheme = ep_parse_www_authenticate(challenge, &realm, &service, &scope, err);
	if (!scheme) {
		rc = -1;
		goto out;
	}
	if (!strcasecmp(scheme, "Basic")) {
		if (!g->basic) {
			rc = ep_error_set(err, EP_EENV,
					  "registry '%s' needs credentials; run 'envpin login %s'", g->host,
					  g->host);
			goto out;
		}
		free(g->auth);
		g->auth = ep_asprintf(err, "Authorization: Basic %s", g->basic);
		rc = g->auth ? 0 : -1;
		g->auth_gen++;
	} else if (!strcasecmp(scheme, "Bearer")) {
		if (!realm) {
			rc = ep_error_set(err, EP_EINVAL, "bearer challenge without a realm");
			goto out;
		}
		/* our own scope list covers every repository of the operation */
		rc = fetch_token(g, h, realm, service, g->scope ? g->scope : scope, err);
	} else {
		rc = ep_error_set(err, EP_EENV, "unsupported authentication scheme '%s'", scheme);
	}
out:
	pthread_mutex_unlock(&g->mu);
	return rc;
}

/* ---- one request, with auth, redirects and retries ---- */

static int status_retryable(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static char *errbody(const struct ep_http_resp *r)
{
	static __thread char out[200];
	size_t n = 0;

	out[0] = '\0';
	if (!r->body)
		return out;
	for (size_t i = 0; i < r->body_len && n < sizeof(out) - 1; i++)
		out[n++] = isprint((unsigned char)r->body[i]) ? r->body[i] : ' ';
	out[n] = '\0';
	return out;
}

/* Performs q against q->url (a full URL).  The Authorization header is added
 * on every hop whose origin is the registry's.  Requests with a sink are not
 * retried after a transport failure here (the sink holds partial data; the
 * caller resumes).  Returns as ep_http_do; on 0, r holds the final answer. */
static int reg_do(struct reg *g, struct ep_http *h, const struct ep_http_req *q0,
		  struct ep_http_resp *r, struct ep_error *err)
{
	struct ep_http_req q = *q0;
	cleanup_free char *url = ep_strdup(q0->url, err);
	const char *hdrs[16];
	int attempt = 0, hops = 0, authed = 0;

	if (!url)
		return -1;
	for (;;) {
		cleanup_free char *origin = ep_url_origin(url, err);
		cleanup_free char *authz = NULL;
		unsigned gen;
		size_t n = 0;
		int rc;

		if (!origin)
			return -1;
		for (const char *const *p = q0->headers; p && *p && n < EP_ARRAY_SIZE(hdrs) - 2; p++)
			hdrs[n++] = *p;
		pthread_mutex_lock(&g->mu);
		gen = g->auth_gen;
		if (g->auth && !strcmp(origin, g->origin)) {
			authz = strdup(g->auth);
			if (!authz) {
				pthread_mutex_unlock(&g->mu);
				return ep_error_oom(err);
			}
			hdrs[n++] = authz;
		}
		pthread_mutex_unlock(&g->mu);
		hdrs[n] = NULL;
		q.headers = hdrs;
		q.url = url;
		if (q.upload_fd >= 0 && lseek(q.upload_fd, 0, SEEK_SET) < 0)
			return ep_error_errno(err, EP_EENV, errno, "rewind upload");
		rc = ep_http_do(h, &q, r, err);
		if (rc < 0) {
			if (r->transport_error && r->retryable && !q0->sink && ++attempt < MAX_ATTEMPTS) {
				ep_http_resp_release(r);
				sleep_ms(backoff_ms(attempt, NULL));
				continue;
			}
			return -1;
		}
		if (r->status == 401 && !authed && !strcmp(origin, g->origin)) {
			int arc = authenticate(g, h, r->www_authenticate, gen, err);

			ep_http_resp_release(r);
			if (arc < 0)
				return -1;
			authed = 1;
			continue;
		}
		if ((r->status == 301 || r->status == 302 || r->status == 303 || r->status == 307 ||
		     r->status == 308) &&
		    r->location) {
			char *next;
			cleanup_free char *nhost = NULL;
			long st = r->status;

			if (++hops > MAX_HOPS) {
				ep_http_resp_release(r);
				return ep_error_set(err, EP_EENV, "%s %s: more than %d redirects", q.method,
						    q0->url, MAX_HOPS);
			}
			next = ep_url_resolve(url, r->location, err);
			ep_http_resp_release(r);
			if (!next)
				return -1;
			free(url);
			url = next;
			nhost = ep_url_host(url, err);
			if (!nhost)
				return -1;
			if (strncasecmp(url, "https://", 8) &&
			    !(g->allow_http && !strncasecmp(url, "http://", 7) && ep_host_is_loopback(nhost)))
				return ep_error_set(err, EP_EENV,
						    "%s %s: refusing redirect to '%.200s' (not https)",
						    q.method, q0->url, url);
			if (st == 303)
				q.method = "GET";
			continue;
		}
		if (status_retryable(r->status) && ++attempt < MAX_ATTEMPTS) {
			long ms = backoff_ms(attempt, r->retry_after);

			ep_http_resp_release(r);
			sleep_ms(ms);
			continue;
		}
		return 0;
	}
}

static int http_status_error(struct ep_http_resp *r, const char *what, struct ep_error *err)
{
	int code = r->status == 404 || r->status == 400 ? EP_EINVAL : EP_EENV;

	ep_error_set(err, code, "%s: HTTP %ld%s%s", what, r->status, r->body ? ": " : "",
		     errbody(r));
	ep_http_resp_release(r);
	return -1;
}

/* ---- documents ---- */

static int mt_is_manifest(const char *mt)
{
	return mt && (!strcmp(mt, EP_MT_OCI_MANIFEST) || !strcmp(mt, EP_MT_DOCKER_MANIFEST));
}

static int mt_is_index(const char *mt)
{
	return mt && (!strcmp(mt, EP_MT_OCI_INDEX) || !strcmp(mt, EP_MT_DOCKER_LIST));
}

int ep_registry_doc_kind(json_t *doc, const char *content_type, struct ep_error *err)
{
	const char *mt = json_string_value(json_object_get(doc, "mediaType"));
	int has_m = json_object_get(doc, "manifests") != NULL;
	int has_l = json_object_get(doc, "layers") != NULL || json_object_get(doc, "config") != NULL;
	char ct[128] = "";

	if (!json_is_object(doc))
		return ep_error_set(err, EP_EINVAL, "not a JSON object");
	if (json_object_get(doc, "fsLayers"))
		return ep_error_set(err, EP_EINVAL, "docker schema 1 manifests are not supported");
	if (has_m && has_l)
		return ep_error_set(err, EP_EINVAL,
				    "document has both 'manifests' and 'config'/'layers': ambiguous, refused");
	if (content_type) {
		size_t n = strcspn(content_type, "; ");

		if (n < sizeof(ct)) {
			memcpy(ct, content_type, n);
			ct[n] = '\0';
		}
	}
	if (mt && ct[0] && (mt_is_manifest(ct) || mt_is_index(ct)) && strcmp(mt, ct))
		return ep_error_set(err, EP_EINVAL, "mediaType '%s' disagrees with Content-Type '%s'", mt,
				    ct);
	if (!mt && (mt_is_manifest(ct) || mt_is_index(ct)))
		mt = ct;
	if (has_m) {
		if (mt && !mt_is_index(mt))
			return ep_error_set(err, EP_EINVAL, "'manifests' in a document of type '%s'", mt);
		if (!json_is_array(json_object_get(doc, "manifests")))
			return ep_error_set(err, EP_EINVAL, "index without a manifests array");
		return 2;
	}
	if (mt && !mt_is_manifest(mt))
		return ep_error_set(err, EP_EINVAL, "unsupported document type '%s'", mt);
	if (!json_is_object(json_object_get(doc, "config")) ||
	    !json_is_array(json_object_get(doc, "layers")))
		return ep_error_set(err, EP_EINVAL, "image manifest without config and layers");
	return 1;
}

struct doc {
	char *text;
	size_t len;
	ep_digest digest;
	json_t *json;
	int kind;
};

static void doc_release(struct doc *d)
{
	free(d->text);
	json_decref(d->json);
	memset(d, 0, sizeof(*d));
}

/* GET a manifest by tag or digest: capped, digest checked against the
 * reference and against Docker-Content-Digest, classified. */
static int get_manifest(struct reg *g, struct ep_http *h, const char *repo, const char *reference,
			struct doc *d, struct ep_error *err)
{
	cleanup_free char *url = ep_asprintf(err, "%s/v2/%s/manifests/%s", g->base, repo, reference);
	const char *hdrs[] = {accept_manifests, NULL};
	struct ep_http_req q = {.method = "GET", .headers = hdrs, .upload_fd = -1,
				.max_body = EP_MAX_MANIFEST_BYTES, .allow_http = g->allow_http};
	struct ep_http_resp r;
	int is_digest = !strncmp(reference, "sha256:", 7);

	memset(d, 0, sizeof(*d));
	if (!url)
		return -1;
	q.url = url;
	if (reg_do(g, h, &q, &r, err) < 0)
		return ep_error_wrap(err, "manifest %s", reference);
	if (r.status != 200)
		return http_status_error(&r, reference, err);
	d->text = r.body ? steal_pointer(&r.body) : strdup("");
	d->len = r.body_len;
	if (!d->text || ep_sha256_buf(d->text, d->len, d->digest, err) < 0) {
		ep_http_resp_release(&r);
		return d->text ? -1 : ep_error_oom(err);
	}
	if (is_digest && strcmp(d->digest, reference)) {
		ep_error_set(err, EP_EMISMATCH, "manifest %s: the registry sent bytes that hash to %s",
			     reference, d->digest);
		goto fail;
	}
	if (r.docker_digest && !strncmp(r.docker_digest, "sha256:", 7) &&
	    strcmp(r.docker_digest, d->digest)) {
		ep_error_set(err, EP_EMISMATCH,
			     "manifest %s: Docker-Content-Digest says %.80s but the bytes hash to %s",
			     reference, r.docker_digest, d->digest);
		goto fail;
	}
	d->json = ep_json_loadb(d->text, d->len, EP_MAX_MANIFEST_BYTES, d->digest, err);
	if (!d->json)
		goto fail;
	d->kind = ep_registry_doc_kind(d->json, r.content_type, err);
	if (d->kind < 0) {
		ep_error_wrap(err, "manifest %s (%s)", reference, d->digest);
		goto fail;
	}
	ep_http_resp_release(&r);
	return 0;
fail:
	ep_http_resp_release(&r);
	doc_release(d);
	return -1;
}

static int pick_platform(json_t *index, const char *platform, ep_digest out, struct ep_error *err)
{
	char os[64] = "linux", arch[64] = "amd64", variant[64] = "";
	json_t *m;
	size_t i;

	if (platform && sscanf(platform, "%63[^/]/%63[^/]/%63s", os, arch, variant) < 2)
		return ep_error_set(err, EP_EINVAL, "platform '%s' is not OS/ARCH[/VARIANT]", platform);
	json_array_foreach(json_object_get(index, "manifests"), i, m) {
		json_t *p = json_object_get(m, "platform");
		const char *d = json_string_value(json_object_get(m, "digest"));
		const char *mt = json_string_value(json_object_get(m, "mediaType"));
		const char *v = json_string_value(json_object_get(p, "variant"));

		if (!d || ep_digest_check(d, NULL) < 0 || (mt && !mt_is_manifest(mt)))
			continue;
		if (strcmp(os, json_string_value(json_object_get(p, "os")) ?: "") ||
		    strcmp(arch, json_string_value(json_object_get(p, "architecture")) ?: ""))
			continue;
		if (variant[0] && (!v || strcmp(v, variant)))
			continue;
		snprintf(out, sizeof(ep_digest), "%s", d);
		return 0;
	}
	return ep_error_set(err, EP_EINVAL, "the index has no image for platform %s/%s%s%s", os, arch,
			    variant[0] ? "/" : "", variant);
}

/* Resolves the reference to an image manifest document (following an index). */
static int resolve_doc(struct reg *g, struct ep_http *h, const struct ep_ref *ref, struct doc *d,
		       ep_digest index_digest, struct ep_error *err)
{
	ep_digest child;

	index_digest[0] = '\0';
	if (get_manifest(g, h, ref->repo, ref->digest[0] ? ref->digest : ref->tag, d, err) < 0)
		return -1;
	if (d->kind == 1)
		return 0;
	snprintf(index_digest, sizeof(ep_digest), "%s", d->digest);
	if (pick_platform(d->json, g->o->platform, child, err) < 0) {
		doc_release(d);
		return ep_error_wrap(err, "index %s", index_digest);
	}
	doc_release(d);
	if (get_manifest(g, h, ref->repo, child, d, err) < 0)
		return -1;
	if (d->kind != 1) {
		doc_release(d);
		return ep_error_set(err, EP_EINVAL, "index %s: entry %s is not an image manifest",
				    index_digest, child);
	}
	return 0;
}

/* ---- blobs ---- */

struct blob {
	const char *digest;
	uint64_t size;
	int fd;          /* download: temp file; upload: blob file */
	char *path;
	int skip;        /* already present */
	int mounted;
	/* pull only: */
	size_t index;	       /* position in the manifest's layers */
	int dup;	       /* the same blob earlier in the manifest */
	int in_store;	       /* the store has it: only its diff_id is checked */
	int kind;	       /* enum ep_compression of its media type */
	const char *want_diff; /* the config's diff_id for it */
	char *mount_from;
	struct ep_error err;
	int failed;
};

/* Closes and frees what n blobs hold (not the array); blobs may be NULL. */
static void blobs_release(struct blob *blobs, size_t n)
{
	for (size_t i = 0; blobs && i < n; i++) {
		if (blobs[i].fd >= 0)
			close(blobs[i].fd);
		free(blobs[i].path);
		free(blobs[i].mount_from);
	}
}

struct blob_sink {
	struct ep_sink base;
	int fd;
	struct ep_sha256 *sha;
};

static int blob_sink_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct blob_sink *b = (struct blob_sink *)s;

	ep_sha256_update(b->sha, buf, len);
	return ep_write_all(b->fd, buf, len, err);
}

struct resume_ctx {
	uint64_t offset;
	int restarted; /* server ignored Range: start over */
};

static int resume_begin(void *ctx, const struct ep_http_resp *r, struct ep_error *err)
{
	struct resume_ctx *c = ctx;
	unsigned long long start, end, total;

	if (!c->offset)
		return 0;
	if (r->status == 200) {
		c->restarted = 1;
		return 0;
	}
	if (r->status != 206 || !r->content_range ||
	    sscanf(r->content_range, "bytes %llu-%llu/%llu", &start, &end, &total) < 2 ||
	    start != c->offset)
		return ep_error_set(err, EP_EENV, "resume at byte %llu: bad Content-Range '%s'",
				    (unsigned long long)c->offset,
				    r->content_range ? r->content_range : "(none)");
	return 0;
}

static int restart_file(int fd, struct ep_sha256 *sha, struct ep_error *err)
{
	ep_sha256_release(sha);
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return ep_error_errno(err, EP_EENV, errno, "truncate temp file");
	return ep_sha256_init(sha, err);
}

/* Downloads blob b into b->fd, verified; resumes with Range after a broken
 * transfer, starts over after a bad hash (once). */
static int download_blob(struct reg *g, struct ep_http *h, const char *repo, struct blob *b,
			 struct ep_error *err)
{
	cleanup_free char *url = ep_asprintf(err, "%s/v2/%s/blobs/%s", g->base, repo, b->digest);
	struct ep_sha256 sha;
	struct blob_sink bs = {{blob_sink_write, NULL, NULL, NULL}, b->fd, &sha};
	uint64_t offset = 0;
	int attempt = 0, rehash = 0;
	ep_digest got;

	if (!url || ep_sha256_init(&sha, err) < 0)
		return -1;
	for (;;) {
		char range[64];
		const char *hdrs[2] = {NULL, NULL};
		struct resume_ctx rc = {offset, 0};
		struct ep_http_req q = {.method = "GET", .url = url, .upload_fd = -1,
					.allow_http = g->allow_http, .sink = &bs.base,
					.max_sink_bytes = b->size - offset, .begin = resume_begin,
					.begin_ctx = &rc, .on_bytes = progress_cb, .bytes_ctx = g};
		struct ep_http_resp r;
		struct ep_error e = EP_ERROR_INIT;
		int ok;

		if (offset) {
			snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)offset);
			hdrs[0] = range;
		}
		q.headers = hdrs;
		ok = reg_do(g, h, &q, &r, &e);
		if (rc.restarted) {
			/* the bytes went to the end of the file: drop all and retry whole */
			ep_http_resp_release(&r);
			if (restart_file(b->fd, &sha, err) < 0)
				return -1;
			offset = 0;
			if (++attempt >= MAX_ATTEMPTS)
				return ep_error_set(err, EP_EENV, "blob %s: the server ignores Range",
						    b->digest);
			continue;
		}
		offset += r.sink_bytes;
		if (ok < 0) {
			int retry = r.transport_error && r.retryable;

			ep_http_resp_release(&r);
			if (retry && ++attempt < MAX_ATTEMPTS) {
				sleep_ms(backoff_ms(attempt, NULL));
				continue;
			}
			ep_sha256_release(&sha);
			if (err)
				*err = e;
			return ep_error_wrap(err, "blob %s", b->digest);
		}
		if (r.status != 200 && r.status != 206) {
			ep_sha256_release(&sha);
			return http_status_error(&r, b->digest, err);
		}
		ep_http_resp_release(&r);
		if (offset < b->size) {
			if (++attempt < MAX_ATTEMPTS) {
				sleep_ms(backoff_ms(attempt, NULL));
				continue;
			}
			ep_sha256_release(&sha);
			return ep_error_set(err, EP_EMISMATCH,
					    "blob %s: truncated: the registry sent %llu of %llu bytes",
					    b->digest, (unsigned long long)offset,
					    (unsigned long long)b->size);
		}
		ep_sha256_final(&sha, got);
		if (!strcmp(got, b->digest))
			return 0;
		if (rehash++ < 1) {
			if (ep_sha256_init(&sha, err) < 0 || restart_file(b->fd, &sha, err) < 0)
				return -1;
			offset = 0;
			continue;
		}
		return ep_error_set(err, EP_EMISMATCH,
				    "blob %s: the downloaded bytes hash to %s (twice); nothing was stored",
				    b->digest, got);
	}
}

/* The uncompressed bytes of b (open at b->fd) must hash to the config's
 * diff_id: otherwise the store would hold an image that only verify
 * notices is wrong. */
static int check_diff_id(struct blob *b, struct ep_error *err)
{
	struct ep_hash_sink hs;
	struct ep_sink *dec = NULL;
	cleanup_free char *buf = NULL;
	struct ep_error e = EP_ERROR_INIT;
	int rc = -1;

	if (b->kind == EP_COMPRESS_NONE) {
		if (!strcmp(b->digest, b->want_diff))
			return 0;
		return ep_error_set(
		    err, EP_EMISMATCH,
		    "layer %zu (%s): diff_id mismatch: config says %s, the uncompressed "
		    "layer hashes to %s; nothing was stored",
		    b->index, b->digest, b->want_diff, b->digest);
	}
	buf = malloc(1 << 20);
	if (!buf)
		return ep_error_oom(err);
	if (ep_hash_sink_init(&hs, NULL, err) < 0)
		return -1;
	dec =
	    ep_decompress_sink_new((enum ep_compression)b->kind, EP_MAX_LAYER_BYTES, &hs.base, err);
	if (!dec)
		goto out;
	if (lseek(b->fd, 0, SEEK_SET) < 0) {
		ep_error_errno(err, EP_EENV, errno, "seek '%s'", b->path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(b->fd, buf, 1 << 20);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ep_error_errno(err, EP_EENV, errno, "read '%s'", b->path);
			goto out;
		}
		if (n == 0)
			break;
		if (ep_sink_write(dec, buf, (size_t)n, &e) < 0)
			break;
	}
	if (e.code || ep_sink_finish(dec, &e) < 0) {
		ep_error_set(
		    err, EP_EMISMATCH,
		    "layer %zu (%s): does not decompress as its media type says: %s; nothing "
		    "was stored",
		    b->index, b->digest, e.msg);
		goto out;
	}
	if (strcmp(hs.digest, b->want_diff)) {
		ep_error_set(
		    err, EP_EMISMATCH,
		    "layer %zu (%s): diff_id mismatch: config says %s, the uncompressed layer "
		    "hashes to %s; nothing was stored",
		    b->index, b->digest, b->want_diff, hs.digest);
		goto out;
	}
	rc = 0;
out:
	ep_decompress_sink_free(dec);
	ep_sink_release(&hs.base);
	return rc;
}

/* One pull job: download (or find in the store) and check the diff_id.
 * The temp file is open only while its blob is worked on, so a manifest
 * of 25,000 layers holds at most one descriptor per thread. */
static int pull_blob(struct reg *g, struct ep_http *h, const char *repo, struct blob *b,
		     struct ep_error *err)
{
	int rc = 0;

	b->fd = open(b->path, (b->in_store ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW);
	if (b->fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", b->path);
	if (!b->in_store)
		rc = download_blob(g, h, repo, b, err);
	if (rc == 0 && b->want_diff)
		rc = check_diff_id(b, err);
	close(b->fd);
	b->fd = -1;
	return rc;
}

/* Small blob into memory (config): capped and verified. */
static char *get_small_blob(struct reg *g, struct ep_http *h, const char *repo, const char *digest,
			    uint64_t size, size_t cap, struct ep_error *err)
{
	cleanup_free char *url = ep_asprintf(err, "%s/v2/%s/blobs/%s", g->base, repo, digest);
	struct ep_mem_sink ms;
	struct ep_http_req q = {.method = "GET", .upload_fd = -1, .allow_http = g->allow_http};
	struct ep_http_resp r;
	ep_digest got;

	if (!url)
		return NULL;
	if (size > cap) {
		ep_error_set(err, EP_EINVAL, "blob %s: %llu bytes is over the cap of %zu", digest,
			     (unsigned long long)size, cap);
		return NULL;
	}
	for (int attempt = 0;; attempt++) {
		ep_mem_sink_init(&ms, cap);
		q.url = url;
		q.sink = &ms.base;
		q.max_sink_bytes = size;
		if (reg_do(g, h, &q, &r, err) < 0) {
			int retry = r.transport_error && r.retryable && attempt + 1 < MAX_ATTEMPTS;

			ep_http_resp_release(&r);
			ep_sink_release(&ms.base);
			if (retry)
				continue;
			ep_error_wrap(err, "blob %s", digest);
			return NULL;
		}
		if (r.status != 200) {
			ep_sink_release(&ms.base);
			http_status_error(&r, digest, err);
			return NULL;
		}
		ep_http_resp_release(&r);
		if (ms.len != size) {
			size_t got_len = ms.len;

			ep_sink_release(&ms.base);
			if (attempt + 1 < MAX_ATTEMPTS)
				continue;
			ep_error_set(err, EP_EMISMATCH,
				     "blob %s: truncated: the registry sent %zu of %llu bytes", digest,
				     got_len, (unsigned long long)size);
			return NULL;
		}
		if (ep_sha256_buf(ms.data ? ms.data : "", ms.len, got, err) < 0) {
			ep_sink_release(&ms.base);
			return NULL;
		}
		if (strcmp(got, digest)) {
			ep_sink_release(&ms.base);
			if (attempt + 1 < 2)
				continue;
			ep_error_set(err, EP_EMISMATCH,
				     "blob %s: the downloaded bytes hash to %s (twice); nothing was stored",
				     digest, got);
			return NULL;
		}
		if (!ms.data)
			return strdup("");
		return ms.data;
	}
}

/* ---- parallel transfers ---- */

struct pool {
	struct reg *g;
	const char *repo;
	struct blob *blobs;
	int (*fn)(struct reg *g, struct ep_http *h, const char *repo, struct blob *b,
		  struct ep_error *err);
};

/* Each worker keeps one connection over the blobs it moves. */
struct pool_conn {
	struct ep_http *h;
	struct ep_error e; /* why h is NULL */
};

static void *pool_conn_new(void *ctx)
{
	struct pool *p = ctx;
	struct pool_conn *c = calloc(1, sizeof(*c));

	if (c)
		c->h = ep_http_new(p->g->ca_file, &c->e);
	return c;
}

static void pool_conn_free(void *state)
{
	struct pool_conn *c = state;

	if (c)
		ep_http_free(c->h);
	free(c);
}

static int pool_blob(void *ctx, void *state, size_t i)
{
	struct pool *p = ctx;
	struct pool_conn *c = state;
	struct blob *b = &p->blobs[i];

	if (b->skip)
		return 0;
	if (!c)
		ep_error_oom(&b->err);
	else if (!c->h)
		b->err = c->e;
	if (!c || !c->h || p->fn(p->g, c->h, p->repo, b, &b->err) < 0)
		b->failed = 1;
	return b->failed ? -1 : 0;
}

static int jobs(const struct ep_registry_opts *o)
{
	const char *e = getenv("ENVPIN_JOBS");
	int j = e ? atoi(e) : o->jobs;

	return j > 0 ? (j > 16 ? 16 : j) : 4;
}

static int run_pool(struct reg *g, const char *repo, struct blob *blobs, size_t n,
		    int (*fn)(struct reg *, struct ep_http *, const char *, struct blob *,
			      struct ep_error *),
		    struct ep_error *err)
{
	static const struct ep_parallel_state ps = {pool_conn_new, pool_conn_free, pool_blob};
	struct pool p = {g, repo, blobs, fn};

	ep_parallel_for_state(n, jobs(g->o), 1, &ps, &p);
	for (size_t i = 0; i < n; i++)
		if (blobs[i].failed) {
			if (err)
				*err = blobs[i].err;
			return -1;
		}
	return 0;
}

/* ---- pull ---- */

static char *scope_for(const char *repo, const char *actions, struct ep_error *err)
{
	return ep_asprintf(err, "repository:%s:%s", repo, actions);
}

/* Remembers where a blob came from, so that push can mount it. */
static int record_source(struct ep_txn *t, const struct ep_ref *ref, const char *digest,
			 const char *diff_id, struct ep_error *err)
{
	char key[80];
	cleanup_json json_t *rec =
	    json_pack("{s:s, s:s, s:s*}", "host", ref->host, "repo", ref->repo, "diff_id", diff_id);

	if (!rec)
		return ep_error_oom(err);
	snprintf(key, sizeof(key), "blobsrc-%s", ep_digest_hex(digest));
	return ep_txn_set_cache(t, key, rec, err);
}

/* Loads the image config (fetched unless the store has it) and parses it.
 * The diff_ids are checked here, so that the store never holds an image whose
 * config lies about its layers.  *cfgj (caller frees) owns the diff_id
 * strings the blobs point into. */
static int pull_config(struct reg *g, struct ep_http *h, struct ep_store *s, struct ep_txn *txn,
		       const struct ep_ref *ref, json_t *cdesc, const char *cdigest, size_t nl,
		       struct ep_pull_result *res, json_t **cfgj, struct ep_error *err)
{
	cleanup_free char *cfg = NULL;
	size_t cfg_len = 0;
	json_t *diff_ids;

	if (!ep_store_has_blob(s, cdigest)) {
		json_int_t csz = json_integer_value(json_object_get(cdesc, "size"));
		ep_digest cd;

		cfg = get_small_blob(g, h, ref->repo, cdigest, csz < 0 ? 0 : (uint64_t)csz,
				     EP_MAX_CONFIG_BYTES, err);
		if (!cfg || ep_txn_add_blob_buf(txn, cfg, (size_t)csz, cd, err) < 0)
			return -1;
		cfg_len = (size_t)csz;
		res->n_fetched++;
		res->bytes_fetched += (uint64_t)csz;
	} else {
		cleanup_free char *cpath = ep_store_blob_path(s, cdigest, err);

		cfg = cpath ? ep_read_file(cpath, EP_MAX_CONFIG_BYTES, &cfg_len, err) : NULL;
		if (!cfg)
			return -1;
	}
	*cfgj = json_loadb(cfg, cfg_len, JSON_REJECT_DUPLICATES, NULL);
	diff_ids = json_object_get(json_object_get(*cfgj, "rootfs"), "diff_ids");
	if (!json_is_array(diff_ids))
		return ep_error_set(err, EP_EINVAL, "config %s: no rootfs.diff_ids array", cdigest);
	if (json_array_size(diff_ids) != nl)
		return ep_error_set(
		    err, EP_EMISMATCH,
		    "config %s: lists %zu diff_ids for %zu layers; nothing was stored", cdigest,
		    json_array_size(diff_ids), nl);
	return 0;
}

/* Fills blobs[i] from the manifest's layer descriptor l and the config's
 * diff_ids[i]. */
static int pull_describe_layer(struct blob *b, size_t i, json_t *l, json_t *diff_ids,
			       const char *mdigest, const char *cdigest, struct ep_error *err)
{
	json_int_t sz = json_integer_value(json_object_get(l, "size"));
	const char *mt = json_string_value(json_object_get(l, "mediaType"));

	b->digest = json_string_value(json_object_get(l, "digest"));
	if (!b->digest || ep_digest_check(b->digest, NULL) < 0 || sz < 0 ||
	    !json_is_integer(json_object_get(l, "size")))
		return ep_error_set(err, EP_EINVAL, "manifest %s: layer %zu is malformed", mdigest,
				    i);
	b->size = (uint64_t)sz;
	b->index = i;
	b->want_diff = json_string_value(json_array_get(diff_ids, i));
	b->kind = ep_compression_from_media_type(mt);
	if (!b->want_diff || ep_digest_check(b->want_diff, NULL) < 0)
		return ep_error_set(err, EP_EINVAL, "config %s: diff_ids[%zu] is not a digest",
				    cdigest, i);
	if (b->kind < 0)
		return ep_error_set(err, EP_EINVAL,
				    "manifest %s: layer %zu (%s): unknown media type '%s'", mdigest,
				    i, b->digest, mt ? mt : "");
	return 0;
}

/* The same blob twice in one manifest: fetch it once, and the config must
 * give both places the same diff_id.  seen maps digest -> first index.
 * Returns 1 when blobs[i] repeats an earlier one, 0 when it is new. */
static int pull_dedup_layer(struct blob *blobs, size_t i, json_t *seen, struct ep_error *err)
{
	struct blob *b = &blobs[i];
	json_t *first = json_object_get(seen, b->digest);

	if (first) {
		const struct blob *f = &blobs[json_integer_value(first)];

		if (strcmp(f->want_diff, b->want_diff))
			return ep_error_set(err, EP_EMISMATCH,
					    "layer %zu (%s): diff_id mismatch: config says %s, "
					    "but %s for the same blob as layer %zu; nothing was "
					    "stored",
					    i, b->digest, b->want_diff, f->want_diff, f->index);
		b->skip = b->dup = 1;
		return 1;
	}
	if (json_object_set_new(seen, b->digest, json_integer((json_int_t)i)) < 0)
		return ep_error_oom(err);
	return 0;
}

/* Decides what pull_blob does with a layer: nothing (a diff_id this store
 * computed before needs no second look), hash the stored blob, or download
 * it into a transaction temp file. */
static int pull_plan_blob(struct reg *g, struct ep_store *s, struct ep_txn *txn, struct blob *b,
			  struct ep_error *err)
{
	int fd;

	if (ep_store_has_blob(s, b->digest)) {
		char key[80]; /* "blobsrc-" + 64 hex digits */
		cleanup_json json_t *src = NULL;
		const char *known;

		b->in_store = 1;
		snprintf(key, sizeof(key), "blobsrc-%s", ep_digest_hex(b->digest));
		src = ep_store_cache_get(s, key);
		known = json_string_value(json_object_get(src, "diff_id"));
		if (known && !strcmp(known, b->want_diff)) {
			b->skip = 1;
			return 0;
		}
		b->path = ep_store_blob_path(s, b->digest, err);
		return b->path ? 0 : -1;
	}
	if (ep_txn_tempfile(txn, &fd, &b->path, err) < 0)
		return -1;
	/* pull_blob reopens it: no descriptor per blob held here */
	close(fd);
	g->ptotal += b->size;
	return 0;
}

/* Stages the downloaded blobs, their sources (for push's cross-repo mounts),
 * the manifest and the image name in the transaction. */
static int pull_stage(struct ep_txn *txn, const struct ep_ref *ref, const char *tag,
		      const struct doc *d, const char *cdigest, struct blob *blobs, size_t nl,
		      struct ep_pull_result *res, struct ep_error *err)
{
	cleanup_free char *name = NULL;
	ep_digest md;
	size_t i;

	for (i = 0; i < nl; i++) {
		if (blobs[i].in_store || blobs[i].dup)
			continue;
		if (ep_txn_add_blob_file(txn, blobs[i].path, blobs[i].digest, err) < 0)
			return -1;
		res->n_fetched++;
		res->bytes_fetched += blobs[i].size;
	}
	for (i = 0; i < nl; i++)
		if (!blobs[i].dup &&
		    record_source(txn, ref, blobs[i].digest, blobs[i].want_diff, err) < 0)
			return -1;
	if (record_source(txn, ref, cdigest, NULL, err) < 0)
		return -1;
	if (ep_txn_add_blob_buf(txn, d->text, d->len, md, err) < 0)
		return -1;
	/* a digest-only pull keeps whatever tag the image has */
	if (!tag && ref->tag) {
		name = ep_ref_format(ref, err);
		if (!name)
			return -1;
	}
	return ep_txn_add_image(txn, d->digest, d->len, tag ? tag : name, err);
}

static int pull_image(struct ep_store *s, const struct ep_ref *ref, const char *tag,
		      const struct ep_registry_opts *o, struct ep_pull_result *res, struct ep_error *err)
{
	struct reg *g = reg_new(ref, o, err);
	struct ep_http *h = NULL;
	struct doc d = {0};
	struct ep_txn txn;
	int txn_open = 0, rc = -1;
	cleanup_free struct blob *blobs = NULL;
	cleanup_json json_t *cfgj = NULL, *seen = NULL;
	json_t *layers, *cdesc, *l, *diff_ids;
	const char *cdigest;
	size_t nl = 0, i;

	memset(res, 0, sizeof(*res));
	if (!g)
		return -1;
	g->scope = scope_for(ref->repo, "pull", err);
	h = ep_http_new(g->ca_file, err);
	if (!g->scope || !h)
		goto out;
	if (resolve_doc(g, h, ref, &d, res->index_digest, err) < 0)
		goto out;
	snprintf(res->manifest_digest, sizeof(res->manifest_digest), "%s", d.digest);
	res->manifest_size = d.len;
	cdesc = json_object_get(d.json, "config");
	cdigest = json_string_value(json_object_get(cdesc, "digest"));
	layers = json_object_get(d.json, "layers");
	if (!cdigest || ep_digest_check(cdigest, NULL) < 0 ||
	    !json_is_integer(json_object_get(cdesc, "size"))) {
		ep_error_set(err, EP_EINVAL, "manifest %s: config descriptor is malformed", d.digest);
		goto out;
	}
	nl = json_array_size(layers);
	blobs = ep_calloc(nl + 1, sizeof(*blobs), err);
	if (!blobs || ep_txn_begin(s, &txn, err) < 0)
		goto out;
	txn_open = 1;
	for (i = 0; i <= nl; i++)
		blobs[i].fd = -1;
	res->n_blobs = nl + 1;
	if (pull_config(g, h, s, &txn, ref, cdesc, cdigest, nl, res, &cfgj, err) < 0)
		goto out;
	diff_ids = json_object_get(json_object_get(cfgj, "rootfs"), "diff_ids");
	seen = json_object();
	if (!seen) {
		ep_error_oom(err);
		goto out;
	}
	g->pwhat = "pull";
	json_array_foreach(layers, i, l) {
		int dup;

		if (pull_describe_layer(&blobs[i], i, l, diff_ids, d.digest, cdigest, err) < 0)
			goto out;
		dup = pull_dedup_layer(blobs, i, seen, err);
		if (dup < 0)
			goto out;
		if (!dup && pull_plan_blob(g, s, &txn, &blobs[i], err) < 0)
			goto out;
	}
	if (run_pool(g, ref->repo, blobs, nl, pull_blob, err) < 0)
		goto out;
	if (pull_stage(&txn, ref, tag, &d, cdigest, blobs, nl, res, err) < 0)
		goto out;
	txn_open = 0;
	if (ep_txn_commit(&txn, err) < 0)
		goto out;
	rc = 0;
out:
	blobs_release(blobs, nl + 1);
	if (txn_open)
		ep_txn_abort(&txn);
	doc_release(&d);
	ep_http_free(h);
	reg_free(g);
	return rc;
}

int ep_pull(struct ep_store *s, const char *ref_s, const char *tag,
	    const struct ep_registry_opts *o, struct ep_pull_result *res, struct ep_error *err)
{
	struct ep_ref ref;
	int rc;

	if (ep_ref_parse(ref_s, &ref, err) < 0)
		return -1;
	rc = pull_image(s, &ref, tag, o, res, err);
	ep_ref_release(&ref);
	if (rc < 0)
		ep_error_wrap(err, "pull '%s'", ref_s);
	return rc;
}

int ep_registry_resolve(struct ep_store *s, const char *ref_s, const struct ep_registry_opts *o,
			ep_digest out, struct ep_error *err)
{
	struct ep_ref ref;
	struct reg *g = NULL;
	struct ep_http *h = NULL;
	struct doc d = {0};
	ep_digest idx;
	int rc = -1;

	if (ep_ref_parse(ref_s, &ref, err) < 0)
		return -1;
	/* a digest of an image manifest we hold needs no network */
	if (ref.digest[0] && s && ep_store_has_blob(s, ref.digest)) {
		cleanup_free char *text = NULL;
		cleanup_json json_t *j = NULL;
		size_t len;

		text = ep_layout_read_blob(s->root, ref.digest, EP_MAX_MANIFEST_BYTES, &len, NULL);
		j = text ? ep_json_loadb(text, len, EP_MAX_MANIFEST_BYTES, ref.digest, NULL) : NULL;
		if (j && ep_registry_doc_kind(j, NULL, NULL) == 1) {
			snprintf(out, sizeof(ep_digest), "%s", ref.digest);
			ep_ref_release(&ref);
			return 0;
		}
	}
	g = reg_new(&ref, o, err);
	if (!g)
		goto out;
	g->scope = scope_for(ref.repo, "pull", err);
	h = ep_http_new(g->ca_file, err);
	if (!g->scope || !h || resolve_doc(g, h, &ref, &d, idx, err) < 0)
		goto out;
	snprintf(out, sizeof(ep_digest), "%s", d.digest);
	rc = 0;
out:
	if (rc < 0)
		ep_error_wrap(err, "resolve '%s'", ref_s);
	doc_release(&d);
	ep_http_free(h);
	reg_free(g);
	ep_ref_release(&ref);
	return rc;
}

/* ---- push ---- */

static int upload_blob(struct reg *g, struct ep_http *h, const char *repo, struct blob *b,
		       struct ep_error *err)
{
	cleanup_free char *url = ep_asprintf(err, "%s/v2/%s/blobs/%s", g->base, repo, b->digest);
	cleanup_free char *put = NULL, *loc = NULL;
	struct ep_http_req q = {.method = "HEAD", .upload_fd = -1, .allow_http = g->allow_http};
	struct ep_http_resp r;
	const char *ct[] = {"Content-Type: application/octet-stream", NULL};
	long st;

	if (!url)
		return -1;
	q.url = url;
	if (reg_do(g, h, &q, &r, err) < 0)
		return ep_error_wrap(err, "blob %s", b->digest);
	st = r.status;
	ep_http_resp_release(&r);
	if (st == 200) {
		b->skip = 1;
		return 0;
	}
	free(url);
	url = b->mount_from ? ep_asprintf(err, "%s/v2/%s/blobs/uploads/?mount=%s&from=%s", g->base,
					  repo, b->digest, b->mount_from)
			    : ep_asprintf(err, "%s/v2/%s/blobs/uploads/", g->base, repo);
	if (!url)
		return -1;
	q.method = "POST";
	q.url = url;
	if (reg_do(g, h, &q, &r, err) < 0)
		return ep_error_wrap(err, "blob %s: start upload", b->digest);
	if (r.status == 201 && b->mount_from) {
		ep_http_resp_release(&r);
		b->mounted = 1;
		return 0;
	}
	if (r.status != 202 || !r.location)
		return http_status_error(&r, "start upload", err);
	loc = ep_url_resolve(url, r.location, err);
	ep_http_resp_release(&r);
	if (!loc)
		return -1;
	put = ep_asprintf(err, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", b->digest);
	if (!put)
		return -1;
	q.method = "PUT";
	q.url = put;
	q.headers = ct;
	q.upload_fd = b->fd;
	q.upload_size = b->size;
	if (reg_do(g, h, &q, &r, err) < 0)
		return ep_error_wrap(err, "blob %s: upload", b->digest);
	if (r.status != 201)
		return http_status_error(&r, b->digest, err);
	if (r.docker_digest && strcmp(r.docker_digest, b->digest)) {
		ep_error_set(err, EP_EMISMATCH, "blob %s: the registry stored it as %.80s", b->digest,
			     r.docker_digest);
		ep_http_resp_release(&r);
		return -1;
	}
	ep_http_resp_release(&r);
	progress_add(g, b->size);
	return 0;
}

/* upload_blob with the blob's file open only while it is worked on: a push
 * of 25,000 layers holds one descriptor per thread, not per blob. */
static int push_blob(struct reg *g, struct ep_http *h, const char *repo, struct blob *b,
		     struct ep_error *err)
{
	int rc;

	b->fd = open(b->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (b->fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", b->path);
	rc = upload_blob(g, h, repo, b, err);
	close(b->fd);
	b->fd = -1;
	return rc;
}

/* Fills blobs[i] from its descriptor and checks the store holds it whole.
 * When the blob was pulled from another repository of the same registry,
 * notes that repository to mount from and widens *scope to pull from it. */
static int push_plan_blob(struct ep_store *s, const struct ep_ref *ref, struct blob *blobs,
			  size_t i, json_t *desc, const char *mdigest, char **scope,
			  struct ep_error *err)
{
	struct blob *b = &blobs[i];
	json_int_t sz = json_integer_value(json_object_get(desc, "size"));
	char key[80]; /* "blobsrc-" + 64 hex digits */
	cleanup_json json_t *src = NULL;
	const char *from;
	struct stat st;

	b->digest = json_string_value(json_object_get(desc, "digest"));
	if (!b->digest || ep_digest_check(b->digest, err) < 0 || sz < 0)
		return ep_error_wrap(err, "manifest %s", mdigest);
	b->size = (uint64_t)sz;
	b->path = ep_store_blob_path(s, b->digest, err);
	if (!b->path)
		return -1;
	/* opened by push_blob, one at a time per thread */
	if (stat(b->path, &st) < 0 || (uint64_t)st.st_size != b->size)
		return ep_error_errno(err, EP_EENV, access(b->path, F_OK) < 0 ? errno : EIO,
				      "blob %s is missing or has the wrong size in the store",
				      b->digest);
	for (size_t k = 0; k < i; k++)
		if (!strcmp(blobs[k].digest, b->digest))
			b->skip = 1;
	snprintf(key, sizeof(key), "blobsrc-%s", ep_digest_hex(b->digest));
	src = ep_store_cache_get(s, key);
	if (!src || strcmp(json_string_value(json_object_get(src, "host")) ?: "", ref->host))
		return 0;
	from = json_string_value(json_object_get(src, "repo"));
	if (from && strcmp(from, ref->repo)) {
		cleanup_free char *sc = scope_for(from, "pull", err);
		char *ns;

		b->mount_from = ep_strdup(from, err);
		if (!b->mount_from || !sc)
			return -1;
		if (!strstr(*scope, sc)) {
			ns = ep_asprintf(err, "%s %s", *scope, sc);
			if (!ns)
				return -1;
			free(*scope);
			*scope = ns;
		}
	}
	return 0;
}

/* Puts the manifest last, once every blob it names is in the registry. */
static int push_manifest(struct reg *g, const struct ep_ref *ref, const char *mtext, size_t len,
			 const char *mt, const char *mdigest, struct ep_error *err)
{
	struct ep_http *h = ep_http_new(g->ca_file, err);
	cleanup_free char *url = ep_asprintf(err, "%s/v2/%s/manifests/%s", g->base, ref->repo,
					     ref->tag ? ref->tag : mdigest);
	cleanup_free char *ctype =
	    ep_asprintf(err, "Content-Type: %s", mt ? mt : EP_MT_OCI_MANIFEST);
	const char *hdrs[] = {ctype, NULL};
	struct ep_http_req q = {.method = "PUT",
				.url = url,
				.headers = hdrs,
				.upload = mtext,
				.upload_size = len,
				.upload_fd = -1,
				.allow_http = g->allow_http};
	struct ep_http_resp r;
	int rc = -1;

	if (!h || !url || !ctype)
		goto out;
	if (reg_do(g, h, &q, &r, err) < 0) {
		ep_error_wrap(err, "manifest");
		goto out;
	}
	if (r.status != 201) {
		http_status_error(&r, "put manifest", err);
		goto out;
	}
	if (r.docker_digest && strcmp(r.docker_digest, mdigest)) {
		ep_error_set(err, EP_EMISMATCH,
			     "manifest: the registry says %.80s, envpin pushed %s", r.docker_digest,
			     mdigest);
		ep_http_resp_release(&r);
		goto out;
	}
	ep_http_resp_release(&r);
	rc = 0;
out:
	ep_http_free(h);
	return rc;
}

static int push_image(struct ep_store *s, const char *image, const struct ep_ref *ref,
		      const struct ep_registry_opts *o, struct ep_push_result *res,
		      struct ep_error *err)
{
	struct reg *g = NULL;
	cleanup_free char *mtext = NULL, *scope = NULL;
	cleanup_json json_t *man = NULL, *sources = NULL;
	cleanup_free struct blob *blobs = NULL;
	json_t *layers;
	const char *mt;
	size_t len, n, i;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (ep_store_resolve(s, image, res->manifest_digest, err) < 0)
		return -1;
	if (ref->digest[0] && strcmp(ref->digest, res->manifest_digest))
		return ep_error_set(err, EP_EINVAL, "the reference names %s but the image is %s",
				    ref->digest, res->manifest_digest);
	mtext = ep_layout_read_blob(s->root, res->manifest_digest, EP_MAX_MANIFEST_BYTES, &len, err);
	if (!mtext)
		return -1;
	man = ep_json_loadb(mtext, len, EP_MAX_MANIFEST_BYTES, res->manifest_digest, err);
	if (!man || ep_registry_doc_kind(man, NULL, err) != 1)
		return -1;
	mt = json_string_value(json_object_get(man, "mediaType"));
	layers = json_object_get(man, "layers");
	n = json_array_size(layers) + 1;
	blobs = ep_calloc(n, sizeof(*blobs), err);
	sources = json_array();
	if (!blobs || !sources)
		return -1;
	for (i = 0; i < n; i++)
		blobs[i].fd = -1;
	g = reg_new(ref, o, err);
	if (!g)
		goto out;
	scope = scope_for(ref->repo, "pull,push", err);
	if (!scope)
		goto out;
	/* blobs[0] is the config, blobs[1..] the layers */
	for (i = 0; i < n; i++) {
		json_t *desc = i ? json_array_get(layers, i - 1) : json_object_get(man, "config");

		if (push_plan_blob(s, ref, blobs, i, desc, res->manifest_digest, &scope, err) < 0)
			goto out;
		g->ptotal += blobs[i].size;
	}
	g->scope = steal_pointer(&scope);
	g->pwhat = "push";
	if (run_pool(g, ref->repo, blobs, n, push_blob, err) < 0)
		goto out;
	res->n_blobs = n;
	for (i = 0; i < n; i++) {
		if (blobs[i].mounted)
			res->n_mounted++;
		else if (blobs[i].skip)
			res->n_existing++;
		else {
			res->n_uploaded++;
			res->bytes_uploaded += blobs[i].size;
		}
	}
	if (push_manifest(g, ref, mtext, len, mt, res->manifest_digest, err) < 0)
		goto out;
	rc = 0;
out:
	blobs_release(blobs, n);
	reg_free(g);
	return rc;
}

int ep_push(struct ep_store *s, const char *image, const char *ref_s,
	    const struct ep_registry_opts *o, struct ep_push_result *res, struct ep_error *err)
{
	struct ep_ref ref;
	int rc;

	if (ep_ref_parse(ref_s, &ref, err) < 0)
		return -1;
	rc = push_image(s, image, &ref, o, res, err);
	ep_ref_release(&ref);
	if (rc < 0)
		ep_error_wrap(err, "push '%s' to '%s'", image, ref_s);
	return rc;
}

/* ---- documents beside images: signatures, artifacts, referrers ---- */

/* 1 when the registry answers 404 for the manifest, 0 when it has it. */
static int manifest_absent(struct reg *g, struct ep_http *h, const char *repo,
			   const char *reference, struct ep_error *err)
{
	cleanup_free char *url =
	    ep_asprintf(err, "%s/v2/%s/manifests/%s", g->base, repo, reference);
	const char *hdrs[] = {accept_manifests, NULL};
	struct ep_http_req q = {
	    .method = "HEAD", .headers = hdrs, .upload_fd = -1, .allow_http = g->allow_http};
	struct ep_http_resp r;
	long st;

	if (!url)
		return -1;
	q.url = url;
	if (reg_do(g, h, &q, &r, err) < 0)
		return ep_error_wrap(err, "manifest %s", reference);
	st = r.status;
	if (st == 404) {
		ep_http_resp_release(&r);
		return 1;
	}
	if (st != 200)
		return http_status_error(&r, reference, err);
	ep_http_resp_release(&r);
	return 0;
}

static int stage_doc_blob(struct reg *g, struct ep_http *h, struct ep_txn *txn, const char *repo,
			  json_t *desc, size_t max_blob, struct ep_error *err)
{
	const char *d = json_string_value(json_object_get(desc, "digest"));
	json_t *sz = json_object_get(desc, "size");
	cleanup_free char *buf = NULL;
	ep_digest got;

	if (!d || ep_digest_check(d, err) < 0 || !json_is_integer(sz) || json_integer_value(sz) < 0)
		return ep_error_set(err, EP_EINVAL, "malformed descriptor in a manifest");
	if (ep_store_has_blob(txn->s, d))
		return 0;
	buf = get_small_blob(g, h, repo, d, (uint64_t)json_integer_value(sz), max_blob, err);
	if (!buf)
		return -1;
	return ep_txn_add_blob_buf(txn, buf, (size_t)json_integer_value(sz), got, err);
}

int ep_registry_fetch_doc(struct ep_txn *txn, const char *ref_s, const char *reference,
			  size_t max_blob, const struct ep_registry_opts *o, ep_digest digest,
			  json_t **doc, struct ep_error *err)
{
	struct ep_ref ref;
	struct reg *g = NULL;
	struct ep_http *h = NULL;
	struct doc d = {0};
	ep_digest md;
	json_t *l;
	size_t i;
	int rc = -1;

	if (doc)
		*doc = NULL;
	if (ep_ref_parse(ref_s, &ref, err) < 0)
		return -1;
	g = reg_new(&ref, o, err);
	if (!g)
		goto out;
	g->scope = scope_for(ref.repo, "pull", err);
	h = ep_http_new(g->ca_file, err);
	if (!g->scope || !h)
		goto out;
	rc = manifest_absent(g, h, ref.repo, reference, err);
	if (rc != 0)
		goto out;
	rc = -1;
	if (get_manifest(g, h, ref.repo, reference, &d, err) < 0)
		goto out;
	if (d.kind == 1) {
		if (stage_doc_blob(g, h, txn, ref.repo, json_object_get(d.json, "config"), max_blob,
				   err) < 0)
			goto out;
		json_array_foreach (json_object_get(d.json, "layers"), i, l)
			if (stage_doc_blob(g, h, txn, ref.repo, l, max_blob, err) < 0)
				goto out;
	}
	if (ep_txn_add_blob_buf(txn, d.text, d.len, md, err) < 0)
		goto out;
	snprintf(digest, sizeof(ep_digest), "%s", d.digest);
	if (doc)
		*doc = json_incref(d.json);
	rc = 0;
out:
	if (rc < 0)
		ep_error_wrap(err, "fetch '%s' of '%s'", reference, ref_s);
	doc_release(&d);
	ep_http_free(h);
	reg_free(g);
	ep_ref_release(&ref);
	return rc;
}

int ep_registry_push_doc(struct ep_store *s, const char *digest, const char *ref_s, const char *tag,
			 const struct ep_registry_opts *o, struct ep_error *err)
{
	struct ep_ref ref;
	struct reg *g = NULL;
	cleanup_free char *mtext = NULL, *scope = NULL;
	cleanup_json json_t *man = NULL;
	cleanup_free struct blob *blobs = NULL;
	json_t *layers;
	size_t len, n = 0, i;
	int kind, rc = -1;

	if (ep_ref_parse(ref_s, &ref, err) < 0)
		return -1;
	free(ref.tag);
	ref.tag = NULL;
	ref.digest[0] = '\0';
	if (tag && !(ref.tag = ep_strdup(tag, err)))
		goto out;
	mtext = ep_layout_read_blob(s->root, digest, EP_MAX_MANIFEST_BYTES, &len, err);
	man = mtext ? ep_json_loadb(mtext, len, EP_MAX_MANIFEST_BYTES, digest, err) : NULL;
	kind = man ? ep_registry_doc_kind(man, NULL, err) : -1;
	if (kind < 0)
		goto out;
	layers = json_object_get(man, "layers");
	if (kind == 1) {
		n = json_array_size(layers) + 1;
		blobs = ep_calloc(n, sizeof(*blobs), err);
		if (!blobs)
			goto out;
		for (i = 0; i < n; i++)
			blobs[i].fd = -1;
	}
	g = reg_new(&ref, o, err);
	scope = g ? scope_for(ref.repo, "pull,push", err) : NULL;
	if (!scope)
		goto out;
	for (i = 0; i < n; i++) {
		json_t *desc = i ? json_array_get(layers, i - 1) : json_object_get(man, "config");

		if (push_plan_blob(s, &ref, blobs, i, desc, digest, &scope, err) < 0)
			goto out;
	}
	g->scope = steal_pointer(&scope);
	g->pwhat = "push";
	if (n && run_pool(g, ref.repo, blobs, n, push_blob, err) < 0)
		goto out;
	if (push_manifest(g, &ref, mtext, len, json_string_value(json_object_get(man, "mediaType")),
			  digest, err) < 0)
		goto out;
	rc = 0;
out:
	blobs_release(blobs, n);
	if (rc < 0)
		ep_error_wrap(err, "push %s to '%s'", digest, ref_s);
	reg_free(g);
	ep_ref_release(&ref);
	return rc;
}

int ep_registry_referrers(const char *ref_s, const char *digest, const struct ep_registry_opts *o,
			  json_t **index, struct ep_error *err)
{
	struct ep_ref ref;
	struct reg *g = NULL;
	struct ep_http *h = NULL;
	cleanup_free char *url = NULL;
	const char *hdrs[] = {"Accept: " EP_MT_OCI_INDEX, NULL};
	struct ep_http_req q = {
	    .method = "GET", .headers = hdrs, .upload_fd = -1, .max_body = EP_MAX_MANIFEST_BYTES};
	struct ep_http_resp r;
	int rc = -1;

	*index = NULL;
	if (ep_ref_parse(ref_s, &ref, err) < 0)
		return -1;
	g = reg_new(&ref, o, err);
	if (!g)
		goto out;
	g->scope = scope_for(ref.repo, "pull", err);
	h = ep_http_new(g->ca_file, err);
	url = ep_asprintf(err, "%s/v2/%s/referrers/%s", g->base, ref.repo, digest);
	if (!g->scope || !h || !url)
		goto out;
	q.url = url;
	q.allow_http = g->allow_http;
	if (reg_do(g, h, &q, &r, err) < 0)
		goto out;
	if (r.status == 404 || r.status == 400 || r.status == 405) {
		ep_http_resp_release(&r);
		rc = 1;
		goto out;
	}
	if (r.status != 200) {
		http_status_error(&r, "referrers", err);
		goto out;
	}
	*index = ep_json_loadb(r.body ? r.body : "", r.body_len, EP_MAX_MANIFEST_BYTES,
			       "referrers index", err);
	ep_http_resp_release(&r);
	if (!*index)
		goto out;
	if (!json_is_array(json_object_get(*index, "manifests"))) {
		json_decref(*index);
		*index = NULL;
		ep_error_set(err, EP_EINVAL, "the referrers answer is not an index");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		ep_error_wrap(err, "referrers of %s in '%s'", digest, ref_s);
	ep_http_free(h);
	reg_free(g);
	ep_ref_release(&ref);
	return rc;
}

/* ---- login ---- */

int ep_login(const char *host, const char *user, const char *password,
	     const struct ep_registry_opts *o, char **config_path, struct ep_error *err)
{
	cleanup_free char *refs = ep_asprintf(err, "%s/x", host);
	cleanup_free char *pair = NULL, *b64 = NULL, *path = NULL, *url = NULL, *text = NULL,
			  *dir = NULL;
	cleanup_json json_t *cfg = NULL;
	struct ep_ref ref;
	struct reg *g = NULL;
	struct ep_http *h = NULL;
	struct ep_http_resp r;
	struct ep_http_req q = {.method = "GET", .upload_fd = -1};
	json_t *auths;
	int rc = -1;

	if (!refs)
		return -1;
	if (strchr(user, ':'))
		return ep_error_set(err, EP_EINVAL, "user name '%s' contains ':'", user);
	if (ep_ref_parse(refs, &ref, err) < 0)
		return -1;
	pair = ep_asprintf(err, "%s:%s", user, password);
	b64 = pair ? ep_base64_encode(pair, strlen(pair), err) : NULL;
	g = b64 ? reg_new(&ref, o, err) : NULL;
	if (!g)
		goto out;
	free(g->basic);
	g->basic = steal_pointer(&b64);
	g->scope = ep_strdup("registry:catalog:*", err);
	h = ep_http_new(g->ca_file, err);
	url = ep_asprintf(err, "%s/v2/", g->base);
	if (!h || !url || !g->scope)
		goto out;
	q.url = url;
	q.allow_http = g->allow_http;
	if (reg_do(g, h, &q, &r, err) < 0)
		goto out;
	if (r.status != 200) {
		ep_error_set(err, EP_EENV, "login to '%s' failed: HTTP %ld", host, r.status);
		ep_http_resp_release(&r);
		goto out;
	}
	ep_http_resp_release(&r);
	path = ep_docker_config_path(err);
	if (!path)
		goto out;
	if (access(path, F_OK) == 0) {
		cfg = ep_json_load_file(path, 1u << 20, err);
		if (!cfg)
			goto out;
		if (!json_is_object(cfg)) {
			ep_error_set(err, EP_EINVAL, "'%s' is not a JSON object", path);
			goto out;
		}
	} else {
		cfg = json_object();
	}
	auths = json_object_get(cfg, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		json_object_set_new(cfg, "auths", auths);
	}
	if (json_object_set_new(auths, ref.host, json_pack("{s:s}", "auth", g->basic)) < 0) {
		ep_error_oom(err);
		goto out;
	}
	text = ep_json_pretty(cfg, err);
	dir = ep_strdup(path, err);
	if (!text || !dir)
		goto out;
	*strrchr(dir, '/') = '\0';
	if (ep_mkdir_p(dir, err) < 0 || ep_write_file_atomic(path, text, strlen(text), 0600, err) < 0)
		goto out;
	if (config_path)
		*config_path = steal_pointer(&path);
	rc = 0;
out:
	ep_http_free(h);
	reg_free(g);
	ep_ref_release(&ref);
	if (rc < 0)
		ep_error_wrap(err, "login '%s'", host);
	return rc;
}
