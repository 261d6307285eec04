/* lib/error.h - the error convention of libenvpin (see docs/error-handling.md).
 *
 * A fallible function takes a caller-owned `struct ep_error *err` as its LAST
 * argument, returns -1 (or NULL) on failure and fills *err.  On success it
 * leaves *err untouched.  Callers add context with ep_error_wrap() as the
 * error travels up, so the final message reads outermost-first:
 *   "build 'x.json': layer 2: copy 'payload/a': open: No such file or directory"
 * The library never prints and never exits; cmd/ turns err->code into an exit
 * status. */
#ifndef EP_ERROR_H
#define EP_ERROR_H

#include <stdarg.h>

/* Error classes.  They map 1:1 onto envpin's exit codes (cmd/envpin.c). */
enum ep_errcode {
	EP_OK = 0,
	EP_EMISMATCH = 1, /* a verification or check found a problem */
	EP_EINVAL = 2,    /* usage error or invalid input (manifest, reference) */
	EP_EENV = 3,      /* environment/runtime failure: I/O, network, tool */
};

#define EP_ERRMSG_MAX 2048

struct ep_error {
	int code;              /* enum ep_errcode; EP_OK when nothing failed */
	int errnum;            /* errno that caused it, 0 if none */
	char msg[EP_ERRMSG_MAX];
};

#define EP_ERROR_INIT {EP_OK, 0, ""}

/* Clears *err to EP_OK. */
void ep_error_clear(struct ep_error *err);

/* Sets code and a printf-style message; returns -1 so that
 * `return ep_error_set(err, EP_EINVAL, "...")` reads naturally.
 * err may be NULL (the error is then dropped). */
int ep_error_set(struct ep_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like ep_error_set, then appends ": strerror(errnum)". */
int ep_error_errno(struct ep_error *err, int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Prefixes existing message with "context: "; keeps code.  Returns -1. */
int ep_error_wrap(struct ep_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Out-of-memory shortcut: EP_EENV, "out of memory". Returns -1. */
int ep_error_oom(struct ep_error *err);

#endif
