#include "ref.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define REF_MAX 1024

void ep_ref_release(struct ep_ref *r)
{
	if (!r)
		return;
	free(r->host);
	free(r->api_host);
	free(r->repo);
	free(r->tag);
	memset(r, 0, sizeof(*r));
}

int ep_host_name(const char *host, char *out, size_t len)
{
	const char *start = host, *end;
	size_t n;

	if (host[0] == '[') {
		start = host + 1;
		end = strchr(start, ']');
		if (!end || end == start)
			return -1;
	} else {
		end = strchr(host, ':');
		if (!end)
			end = host + strlen(host);
	}
	n = (size_t)(end - start);
	if (n >= len)
		return -1;
	memcpy(out, start, n);
	out[n] = '\0';
	return 0;
}

int ep_host_is_loopback(const char *host)
{
	char h[256];
	struct in_addr a4;

	if (ep_host_name(host, h, sizeof(h)) < 0)
		return 0;
	if (host[0] == '[')
		return !strcmp(h, "::1");
	if (!strcasecmp(h, "localhost"))
		return 1;
	/* inet_pton wants the dotted quad in full, so "127.1" is not loopback here */
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

static int valid_host(const char *h)
{
	const char *p = h;

	if (*p == '[') {
		const char *e = strchr(p, ']');

		if (!e || e == p + 1)
			return 0;
		for (const char *q = p + 1; q < e; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
				return 0;
		p = e + 1;
	} else {
		if (!isalnum((unsigned char)*p))
			return 0;
		while (*p && *p != ':') {
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				return 0;
			p++;
		}
	}
	if (*p == ':') {
		long port;
		char *end;

		if (!isdigit((unsigned char)p[1]))
			return 0;
		port = strtol(p + 1, &end, 10);
		if (*end || port < 1 || port > 65535)
			return 0;
	} else if (*p) {
		return 0;
	}
	return 1;
}

/* path-component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static int valid_repo(const char *r)
{
	const char *p = r;

	if (!*r || strlen(r) > 255)
		return 0;
	for (;;) {
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
			return 0;
		while (islower((unsigned char)*p) || isdigit((unsigned char)*p))
			p++;
		if (!*p)
			return 1;
		if (*p == '/') {
			p++;
			continue;
		}
		if (*p == '.' || (*p == '_' && p[1] != '_')) {
			p++;
		} else if (*p == '_' && p[1] == '_') {
			p += 2;
		} else if (*p == '-') {
			while (*p == '-')
				p++;
		} else {
			return 0;
		}
	}
}

static int valid_tag(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && !strchr("._-", t[i]))
			return 0;
	return 1;
}

int ep_ref_parse(const char *s, struct ep_ref *r, struct ep_error *err)
{
	char buf[REF_MAX];
	char *at, *slash, *name, *colon, *lastslash;
	const char *host = "docker.io";

	memset(r, 0, sizeof(*r));
	if (strlen(s) >= sizeof(buf) || !*s)
		return ep_error_set(err, EP_EINVAL, "'%.80s' is not an image reference", s);
	strcpy(buf, s);
	at = strchr(buf, '@');
	if (at) {
		*at++ = '\0';
		if (ep_digest_check(at, NULL) < 0)
			return ep_error_set(err, EP_EINVAL,
					    "'%s': the digest must be sha256: and 64 lowercase hex digits", s);
		snprintf(r->digest, sizeof(r->digest), "%s", at);
	}
	name = buf;
	slash = strchr(buf, '/');
	if (slash && (memchr(buf, '.', (size_t)(slash - buf)) || memchr(buf, ':', (size_t)(slash - buf)) ||
		      (slash - buf == 9 && !strncmp(buf, "localhost", 9)) || buf[0] == '[')) {
		*slash = '\0';
		host = buf;
		name = slash + 1;
		if (!valid_host(host))
			return ep_error_set(err, EP_EINVAL, "'%s': '%s' is not a valid registry host", s, host);
	}
	lastslash = strrchr(name, '/');
	colon = strrchr(lastslash ? lastslash : name, ':');
	if (colon) {
		*colon++ = '\0';
		if (!valid_tag(colon))
			return ep_error_set(err, EP_EINVAL, "'%s': '%s' is not a valid tag", s, colon);
		r->tag = ep_strdup(colon, err);
		if (!r->tag)
			return -1;
	} else if (!at) {
		r->tag = ep_strdup("latest", err);
		if (!r->tag)
			return -1;
	}
	if (!valid_repo(name)) {
		ep_ref_release(r);
		return ep_error_set(err, EP_EINVAL,
				    "'%s': repository '%s' must be lowercase letters, digits and separators", s,
				    name);
	}
	if (!strcmp(host, "index.docker.io") || !strcmp(host, "registry-1.docker.io"))
		host = "docker.io";
	r->host = ep_strdup(host, err);
	r->api_host = ep_strdup(strcmp(host, "docker.io") ? host : "registry-1.docker.io", err);
	if (!strcmp(host, "docker.io") && !strchr(name, '/'))
		r->repo = ep_asprintf(err, "library/%s", name);
	else
		r->repo = ep_strdup(name, err);
	if (!r->host || !r->api_host || !r->repo) {
		ep_ref_release(r);
		return -1;
	}
	r->loopback = ep_host_is_loopback(r->host);
	return 0;
}

char *ep_ref_format(const struct ep_ref *r, struct ep_error *err)
{
	return ep_asprintf(err, "%s/%s%s%s%s%s", r->host, r->repo, r->tag ? ":" : "",
			   r->tag ? r->tag : "", r->digest[0] ? "@" : "", r->digest);
}
