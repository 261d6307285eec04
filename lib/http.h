/* lib/http.h - one HTTP exchange over libcurl, with the safety rules of
 * envpin's network code built in:
 *  - exactly one request per call: redirects are NOT followed here, so the
 *    caller decides per hop which headers (credentials) go to which host;
 *  - HTTPS with peer and host verification always on; plain http only when
 *    the caller allows it (loopback registries, loopback fetch URLs);
 *  - a body kept in memory has a cap, a body streamed to a sink is passed
 *    only for 2xx answers (error bodies go to the capped memory buffer);
 *  - connect and low-speed timeouts, so a stalled server cannot hang us
 *    (ENVPIN_HTTP_TIMEOUT=SECONDS shortens them for tests).
 * A handle keeps its connection for the next call (keep-alive); one handle
 * per thread. */
#ifndef EP_HTTP_H
#define EP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sink.h"

/* Cap on a body kept in memory when the caller gives none (error bodies). */
#define EP_HTTP_ERROR_BODY_MAX (64u << 10)

struct ep_http;

/* Global libcurl init (once per process, before threads). */
int ep_http_global_init(struct ep_error *err);

/* A handle; ca_file may be NULL (system CAs).  Caller frees with ep_http_free. */
struct ep_http *ep_http_new(const char *ca_file, struct ep_error *err);
void ep_http_free(struct ep_http *h);

struct ep_http_resp;
/* Called once, after the headers of a 2xx answer and before its first body
 * byte reaches the sink; returning -1 aborts the transfer with that error. */
typedef int (*ep_http_begin_fn)(void *ctx, const struct ep_http_resp *r, struct ep_error *err);

struct ep_http_req {
	const char *method;          /* "GET", "HEAD", "PUT", "POST", "PATCH" */
	const char *url;
	const char *const *headers;  /* extra "Name: value" lines, NULL-terminated (may be NULL) */
	int allow_http;              /* permit an http:// URL */
	const void *upload;          /* request body from memory (PUT/POST), or */
	int upload_fd;               /* from this fd (upload_size bytes; -1 = none) */
	uint64_t upload_size;
	struct ep_sink *sink;        /* 2xx body goes here (NULL: to memory, capped) */
	size_t max_body;             /* cap for a body kept in memory (0: EP_HTTP_ERROR_BODY_MAX) */
	uint64_t max_sink_bytes;     /* refuse more than this into the sink (0: no cap) */
	ep_http_begin_fn begin;
	void *begin_ctx;
	void (*on_bytes)(void *ctx, uint64_t n); /* progress of the sink body (may be NULL) */
	void *bytes_ctx;
};

struct ep_http_resp {
	long status;                /* 0 when no answer came (transport error) */
	char *content_type, *location, *docker_digest, *www_authenticate, *content_range,
		*retry_after;       /* header values or NULL */
	int64_t content_length;     /* -1 when not given */
	char *body;                 /* memory body (NUL-terminated) or NULL */
	size_t body_len;
	uint64_t sink_bytes;        /* bytes passed to the sink */
	int transport_error;        /* the exchange failed below HTTP (reset, timeout, ...) */
	int retryable;              /* a transport failure worth retrying */
};
void ep_http_resp_release(struct ep_http_resp *r);

/* Performs the request.  Returns 0 when an HTTP answer arrived (any status:
 * r->status tells), -1 on transport failures (EP_EENV; r->transport_error and
 * r->retryable set), on a body over its cap (EP_EINVAL naming the cap) or
 * when the sink or begin hook failed (their error).  r is overwritten. */
int ep_http_do(struct ep_http *h, const struct ep_http_req *q, struct ep_http_resp *r,
	       struct ep_error *err);

/* The URL's origin "scheme://host:port" with the default port made explicit
 * (credentials go only to the registry's own origin).  Caller frees. */
char *ep_url_origin(const char *url, struct ep_error *err);

/* Resolves a Location value against the URL that returned it.  Caller frees. */
char *ep_url_resolve(const char *base, const char *location, struct ep_error *err);

/* The host[:port] of a URL (IPv6 in brackets).  Caller frees. */
char *ep_url_host(const char *url, struct ep_error *err);

/* Percent-encodes s for a query value.  Caller frees. */
char *ep_url_escape(const char *s, struct ep_error *err);

/* base64 of len bytes (caller frees) and its inverse into a NUL-terminated
 * buffer (NULL + EP_EINVAL on bad input). */
char *ep_base64_encode(const void *buf, size_t len, struct ep_error *err);
char *ep_base64_decode(const char *s, size_t *len, struct ep_error *err);

#endif
