/* lib/strvec.c - see strvec.h. */
#include "strvec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int strvec_grow(struct ep_strvec *sv)
{
	size_t alloc;
	char **v;

	if (sv->n + 2 <= sv->alloc)
		return 0;
	alloc = sv->alloc ? sv->alloc * 2 : 16;
	v = realloc(sv->v, alloc * sizeof(*v));
	if (!v) {
		sv->oom = 1;
		return -1;
	}
	sv->v = v;
	sv->alloc = alloc;
	return 0;
}

static int strvec_take(struct ep_strvec *sv, char *s)
{
	if (!s || sv->oom || strvec_grow(sv) < 0) {
		free(s);
		sv->oom = 1;
		return -1;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
	return 0;
}

int ep_strvec_push(struct ep_strvec *sv, const char *s)
{
	if (sv->oom)
		return -1;
	return strvec_take(sv, strdup(s));
}

int ep_strvec_pushf(struct ep_strvec *sv, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int r;

	if (sv->oom)
		return -1;
	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return strvec_take(sv, r < 0 ? NULL : s);
}

char **ep_strvec_argv(struct ep_strvec *sv)
{
	static char *empty[] = {NULL};

	return sv->v ? sv->v : empty;
}

void ep_strvec_release(struct ep_strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

static int strbuf_grow(struct ep_strbuf *sb, size_t extra)
{
	size_t need, alloc;
	char *b;

	if (sb->oom)
		return -1;
	if (extra > (size_t)-1 / 2 - sb->len - 1)
		goto oom;
	need = sb->len + extra + 1;
	if (need <= sb->alloc)
		return 0;
	alloc = sb->alloc ? sb->alloc : 64;
	while (alloc < need)
		alloc *= 2;
	b = realloc(sb->buf, alloc);
	if (!b)
		goto oom;
	sb->buf = b;
	sb->alloc = alloc;
	return 0;
oom:
	sb->oom = 1;
	return -1;
}

int ep_strbuf_add(struct ep_strbuf *sb, const char *s, size_t n)
{
	if (strbuf_grow(sb, n) < 0)
		return -1;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
	return 0;
}

int ep_strbuf_addstr(struct ep_strbuf *sb, const char *s)
{
	return ep_strbuf_add(sb, s, strlen(s));
}

int ep_strbuf_vaddf(struct ep_strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		sb->oom = 1;
		return -1;
	}
	if (strbuf_grow(sb, (size_t)n) < 0)
		return -1;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int ep_strbuf_addf(struct ep_strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = ep_strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
	return r;
}

void ep_strbuf_shrink(struct ep_strbuf *sb, size_t n)
{
	if (!sb->buf || n > sb->len)
		return;
	sb->len -= n;
	sb->buf[sb->len] = '\0';
}

const char *ep_strbuf_str(const struct ep_strbuf *sb)
{
	return sb->buf && !sb->oom ? sb->buf : "";
}

char *ep_strbuf_detach(struct ep_strbuf *sb)
{
	char *s = sb->oom ? NULL : sb->buf;

	if (!s && !sb->oom)
		s = strdup("");
	if (sb->oom)
		free(sb->buf);
	memset(sb, 0, sizeof(*sb));
	return s;
}

void ep_strbuf_release(struct ep_strbuf *sb)
{
	free(sb->buf);
	memset(sb, 0, sizeof(*sb));
}
