#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void ep_error_clear(struct ep_error *err)
{
	if (!err)
		return;
	err->code = EP_OK;
	err->errnum = 0;
	err->msg[0] = '\0';
}

static void vset(struct ep_error *err, int code, const char *fmt, va_list ap)
{
	err->code = code;
	err->errnum = 0;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int ep_error_set(struct ep_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vset(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int ep_error_errno(struct ep_error *err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vset(err, code, fmt, ap);
	va_end(ap);
	err->errnum = errnum;
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(errnum));
	return -1;
}

int ep_error_wrap(struct ep_error *err, const char *fmt, ...)
{
	char prefix[EP_ERRMSG_MAX];
	char old[EP_ERRMSG_MAX];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation is acceptable: the message stays NUL-terminated. */
	size_t n = strlen(prefix);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, n);
	memcpy(err->msg + n, ": ", 2);
	n += 2;
	size_t m = strlen(old);
	if (m > sizeof(err->msg) - 1 - n)
		m = sizeof(err->msg) - 1 - n;
	memcpy(err->msg + n, old, m);
	err->msg[n + m] = '\0';
	if (err->code == EP_OK)
		err->code = EP_EENV;
	return -1;
}

int ep_error_oom(struct ep_error *err)
{
	return ep_error_errno(err, EP_EENV, ENOMEM, "out of memory");
}
