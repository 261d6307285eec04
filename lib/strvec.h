/* lib/strvec.h - a grow-on-demand vector of strings (git's strvec) and a
 * grow-on-demand string buffer (git's strbuf), for argv lists, mount option
 * strings and paths that would otherwise go through a fixed buffer.
 *
 * Both are sticky on allocation failure: after one failed push every later
 * push is a no-op and returns -1, and `oom` stays set, so a run of pushes
 * can be checked once at the end.  Lifecycle: zero-initialise (or *_INIT),
 * push, *_release (frees the contents, back to empty). */
#ifndef EP_STRVEC_H
#define EP_STRVEC_H

#include <stdarg.h>
#include <stddef.h>

struct ep_strvec {
	char **v; /* NULL-terminated once anything was pushed; owned */
	size_t n;
	size_t alloc;
	int oom;
};
#define EP_STRVEC_INIT                                                                             \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

/* Appends a copy of s.  0, or -1 when out of memory. */
int ep_strvec_push(struct ep_strvec *sv, const char *s);
int ep_strvec_pushf(struct ep_strvec *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The NULL-terminated array, also when empty (never NULL). */
char **ep_strvec_argv(struct ep_strvec *sv);
void ep_strvec_release(struct ep_strvec *sv);

struct ep_strbuf {
	char *buf; /* NUL-terminated once anything was added; owned */
	size_t len;
	size_t alloc;
	int oom;
};
#define EP_STRBUF_INIT                                                                             \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

int ep_strbuf_add(struct ep_strbuf *sb, const char *s, size_t n);
int ep_strbuf_addstr(struct ep_strbuf *sb, const char *s);
int ep_strbuf_addf(struct ep_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ep_strbuf_vaddf(struct ep_strbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Drops the last n bytes (n <= len). */
void ep_strbuf_shrink(struct ep_strbuf *sb, size_t n);
/* The string ("" when empty); valid until the next add or release. */
const char *ep_strbuf_str(const struct ep_strbuf *sb);
/* Hands the string to the caller (NULL after an allocation failure) and
 * leaves sb empty. */
char *ep_strbuf_detach(struct ep_strbuf *sb);
void ep_strbuf_release(struct ep_strbuf *sb);

#endif
