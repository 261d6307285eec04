#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "curl_dl.h"
#include "util.h"

struct ep_http {
	CURL *curl;
	char *ca_file;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc;

static void do_global_init(void)
{
	init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ep_http_global_init(struct ep_error *err)
{
	if (ep_curl_load(err) < 0)
		return -1;
	pthread_once(&init_once, do_global_init);
	if (init_rc != CURLE_OK)
		return ep_error_set(err, EP_EENV, "libcurl init: %s", curl_easy_strerror(init_rc));
	return 0;
}

struct ep_http *ep_http_new(const char *ca_file, struct ep_error *err)
{
	struct ep_http *h;

	if (ep_http_global_init(err) < 0)
		return NULL;
	h = ep_calloc(1, sizeof(*h), err);
	if (!h)
		return NULL;
	h->curl = curl_easy_init();
	if (!h->curl) {
		free(h);
		ep_error_set(err, EP_EENV, "libcurl: cannot create a handle");
		return NULL;
	}
	if (ca_file) {
		h->ca_file = ep_strdup(ca_file, err);
		if (!h->ca_file) {
			ep_http_free(h);
			return NULL;
		}
	}
	return h;
}

void ep_http_free(struct ep_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	free(h->ca_file);
	free(h);
}

void ep_http_resp_release(struct ep_http_resp *r)
{
	if (!r)
		return;
	free(r->content_type);
	free(r->location);
	free(r->docker_digest);
	free(r->www_authenticate);
	free(r->content_range);
	free(r->retry_after);
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
}

struct xfer {
	const struct ep_http_req *q;
	struct ep_http_resp *r;
	CURL *curl;
	int started;     /* first body byte seen */
	int to_sink;
	struct ep_mem_sink mem;
	size_t body_max;
	struct ep_error cb_err; /* error raised inside a callback */
	int cb_failed;
	const char *upload_pos;
	uint64_t upload_left;
	int excess; /* curl saw bytes past the Content-Length */
};

static char *dup_trim(const char *v, size_t n)
{
	char *s;

	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, v, n);
	s[n] = '\0';
	return s;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;
	struct {
		const char *name;
		char **slot;
	} known[] = {
		{"content-type", &x->r->content_type},
		{"location", &x->r->location},
		{"docker-content-digest", &x->r->docker_digest},
		{"www-authenticate", &x->r->www_authenticate},
		{"content-range", &x->r->content_range},
		{"retry-after", &x->r->retry_after},
	};
	const char *colon;

	/* A new status line (after "100 Continue") starts a new header set. */
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		for (size_t i = 0; i < EP_ARRAY_SIZE(known); i++) {
			free(*known[i].slot);
			*known[i].slot = NULL;
		}
		x->r->content_length = -1;
		return len;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	for (size_t i = 0; i < EP_ARRAY_SIZE(known); i++) {
		size_t nl = strlen(known[i].name);

		if ((size_t)(colon - buf) == nl && !strncasecmp(buf, known[i].name, nl)) {
			free(*known[i].slot);
			/* header values are untrusted: keep them short */
			*known[i].slot = dup_trim(colon + 1, len - nl - 1 > 8192 ? 8192 : len - nl - 1);
			if (!*known[i].slot)
				return 0;
		}
	}
	if ((size_t)(colon - buf) == 14 && !strncasecmp(buf, "content-length", 14)) {
		/* libcurl's header buffer is not NUL-terminated: parse a copy, and
		 * only plain digits (a bad value is no length, not a negative one) */
		char num[32];
		size_t vl = len - 15, i = 0, k = 0;

		while (i < vl && (colon[1 + i] == ' ' || colon[1 + i] == '\t'))
			i++;
		while (i < vl && k + 1 < sizeof(num) && colon[1 + i] >= '0' && colon[1 + i] <= '9')
			num[k++] = colon[1 + i++];
		num[k] = '\0';
		x->r->content_length = k > 0 && k < 19 ? strtoll(num, NULL, 10) : -1;
	}
	return len;
}

/* The only way libcurl tells that a body ran past its Content-Length within
 * one read is an info line; it then drops the connection and reports success. */
static int debug_cb(CURL *c, curl_infotype type, char *text, size_t len, void *ud)
{
	struct xfer *x = ud;

	(void)c;
	if (type == CURLINFO_TEXT && len >= 12 && !strncmp(text, "Excess found", 12))
		x->excess = 1;
	return 0;
}

static int begin_body(struct xfer *x)
{
	long status = 0;

	x->started = 1;
	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	x->r->status = status;
	x->to_sink = x->q->sink && status >= 200 && status < 300;
	if (status >= 200 && status < 300 && x->q->begin &&
	    x->q->begin(x->q->begin_ctx, x->r, &x->cb_err) < 0) {
		x->cb_failed = 1;
		return -1;
	}
	return 0;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;

	if (!x->started && begin_body(x) < 0)
		return 0;
	if (x->to_sink) {
		if (x->q->max_sink_bytes && len > x->q->max_sink_bytes - x->r->sink_bytes) {
			ep_error_set(&x->cb_err, EP_EMISMATCH,
				     "the server sent more than the expected %llu bytes",
				     (unsigned long long)x->q->max_sink_bytes);
			x->cb_failed = 1;
			return 0;
		}
		if (ep_sink_write(x->q->sink, buf, len, &x->cb_err) < 0) {
			x->cb_failed = 1;
			return 0;
		}
		x->r->sink_bytes += len;
		if (x->q->on_bytes)
			x->q->on_bytes(x->q->bytes_ctx, len);
		return len;
	}
	if (ep_sink_write(&x->mem.base, buf, len, &x->cb_err) < 0) {
		ep_error_set(&x->cb_err, EP_EINVAL, "response body exceeds the limit of %zu bytes",
			     x->body_max);
		x->cb_failed = 1;
		return 0;
	}
	return len;
}

static size_t read_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t want = size * n;

	if (want > x->upload_left)
		want = (size_t)x->upload_left;
	if (!want)
		return 0;
	if (x->q->upload) {
		memcpy(buf, x->upload_pos, want);
		x->upload_pos += want;
	} else {
		ssize_t got;

		do
			got = read(x->q->upload_fd, buf, want);
		while (got < 0 && errno == EINTR);
		if (got <= 0) {
			ep_error_errno(&x->cb_err, EP_EENV, got < 0 ? errno : EIO, "read upload data");
			x->cb_failed = 1;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)got;
	}
	x->upload_left -= want;
	return want;
}

static long timeout_s(long dflt)
{
	const char *e = getenv("ENVPIN_HTTP_TIMEOUT");
	long v = e ? strtol(e, NULL, 10) : 0;

	return v > 0 ? v : dflt;
}

static int is_retryable(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

int ep_http_do(struct ep_http *h, const struct ep_http_req *q, struct ep_http_resp *r,
	       struct ep_error *err)
{
	CURL *c = h->curl;
	struct curl_slist *hdrs = NULL;
	struct xfer x;
	CURLcode rc;
	int ret = -1;
	int is_head = !strcmp(q->method, "HEAD");
	uint64_t up_size = q->upload ? q->upload_size : (q->upload_fd >= 0 ? q->upload_size : 0);
	int has_upload = q->upload || q->upload_fd >= 0;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	memset(&x, 0, sizeof(x));
	x.q = q;
	x.r = r;
	x.curl = c;
	x.body_max = q->max_body ? q->max_body : EP_HTTP_ERROR_BODY_MAX;
	ep_mem_sink_init(&x.mem, x.body_max);
	x.upload_pos = q->upload;
	x.upload_left = up_size;

	curl_easy_reset(c);
	for (const char *const *p = q->headers; p && *p; p++) {
		struct curl_slist *n = curl_slist_append(hdrs, *p);

		if (!n) {
			ep_error_oom(err);
			goto out;
		}
		hdrs = n;
	}
	/* libcurl adds "Expect: 100-continue" to uploads; registries do not need the round trip */
	if (has_upload) {
		struct curl_slist *n = curl_slist_append(hdrs, "Expect:");

		if (!n) {
			ep_error_oom(err);
			goto out;
		}
		hdrs = n;
	}
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, q->allow_http ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout_s(30));
	/* less than 1 byte/s for the timeout: the peer stalled */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout_s(60));
	curl_easy_setopt(c, CURLOPT_USERAGENT, "envpin/" EP_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L << 10);
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, &x);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	if (is_head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (has_upload) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, &x);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up_size);
		curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L << 10);
		if (strcmp(q->method, "PUT"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	} else if (!strcmp(q->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(q->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	}
	rc = curl_easy_perform(c);
	if (x.cb_failed) {
		if (err)
			*err = x.cb_err;
		goto out;
	}
	if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_WEIRD_SERVER_REPLY) {
		long fresh = 1;

		/* garbage where a status line belongs, on a reused connection: the
		 * previous response ran past its Content-Length */
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &fresh);
		if (!fresh) {
			r->transport_error = 1;
			ep_error_set(
			    err, EP_EENV,
			    "%s %s: the server sent more bytes than its Content-Length "
			    "(the previous response on this connection ran over into this one)",
			    q->method, q->url);
			goto out;
		}
	}
	if (rc == CURLE_OK && x.excess && !is_head) {
		r->transport_error = 1;
		ep_error_set(err, EP_EENV,
			     "%s %s: the server sent more bytes than its Content-Length", q->method,
			     q->url);
		goto out;
	}
	if (rc != CURLE_OK) {
		r->transport_error = 1;
		r->retryable = is_retryable(rc);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		ep_error_set(err, EP_EENV, "%s %s: %s", q->method, q->url, curl_easy_strerror(rc));
		goto out;
	}
	if (!x.started && begin_body(&x) < 0) {
		if (err)
			*err = x.cb_err;
		goto out;
	}
	if (x.mem.len) {
		r->body = steal_pointer(&x.mem.data);
		r->body_len = x.mem.len;
	}
	ret = 0;
out:
	ep_sink_release(&x.mem.base);
	curl_slist_free_all(hdrs);
	return ret;
}

char *ep_url_origin(const char *url, struct ep_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;

	if (!u) {
		ep_error_oom(err);
		return NULL;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		ep_error_set(err, EP_EINVAL, "'%.200s' is not a valid URL", url);
	else
		out = ep_asprintf(err, "%s://%s:%s", scheme, host, port);
	/* host names compare case-insensitively: one spelling per origin */
	for (char *p = out; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

char *ep_url_host(const char *url, struct ep_error *err)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (!u) {
		ep_error_oom(err);
		return NULL;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		ep_error_set(err, EP_EINVAL, "'%.200s' is not a valid URL", url);
	else if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
		out = ep_asprintf(err, "%s:%s", host, port);
	else
		out = ep_strdup(host, err);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

char *ep_url_resolve(const char *base, const char *location, struct ep_error *err)
{
	CURLU *u = curl_url();
	char *s = NULL, *out = NULL;

	if (!u) {
		ep_error_oom(err);
		return NULL;
	}
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
		ep_error_set(err, EP_EINVAL, "redirect to '%.200s' is not a valid URL", location);
	else
		out = ep_strdup(s, err);
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

char *ep_url_escape(const char *s, struct ep_error *err)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *out;

	if (!e) {
		ep_error_oom(err);
		return NULL;
	}
	out = ep_strdup(e, err);
	curl_free(e);
	return out;
}

char *ep_base64_encode(const void *buf, size_t len, struct ep_error *err)
{
	char *out = ep_malloc(4 * ((len + 2) / 3) + 1, err);

	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
	return out;
}

char *ep_base64_decode(const char *s, size_t *len, struct ep_error *err)
{
	size_t n = strlen(s);
	char *out;
	int got;

	if (n % 4 || n > (1u << 20)) {
		ep_error_set(err, EP_EINVAL, "invalid base64");
		return NULL;
	}
	out = ep_malloc(n / 4 * 3 + 1, err);
	if (!out)
		return NULL;
	got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	if (got < 0) {
		free(out);
		ep_error_set(err, EP_EINVAL, "invalid base64");
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as data */
	if (n && s[n - 1] == '=')
		got--;
	if (n > 1 && s[n - 2] == '=')
		got--;
	out[got] = '\0';
	if (len)
		*len = (size_t)got;
	return out;
}
