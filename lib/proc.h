/* lib/proc.h - running a host tool (mmdebstrap, pip) for a build step, its
 * output to a log file, in a pinned environment. */
#ifndef EP_PROC_H
#define EP_PROC_H

#include <stddef.h>

#include "error.h"

/* Runs argv (argv[0] searched in PATH when it has no '/') and waits: stdin
 * from /dev/null, stdout and stderr to log (created or truncated),
 * descriptors >= 3 closed (a caller's open fds confuse tools such as apt),
 * env entries ("K=V") added, LC_ALL=C.UTF-8 and TZ=UTC so the host's locale
 * and timezone cannot reach what the tool writes.  *exit_status gets the
 * exit status, 128+N for a signal, 127 when argv[0] could not be run.
 * Returns -1 only when the tool could not be started at all. */
int ep_spawn_logged(const char *const *argv, char *const *env, const char *log, int *exit_status,
		    struct ep_error *err);

/* The last max bytes of a log file (caller frees), or NULL. */
char *ep_log_tail(const char *path, size_t max);

#endif
