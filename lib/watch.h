/* lib/watch.h - progress for a host tool that reports none we can read
 * (pip download, mmdebstrap): a thread that sums the bytes of the files
 * under the directories the tool writes into and hands them to an
 * ep_progress_fn twice a second, so that a user sees real bytes move. */
#ifndef EP_WATCH_H
#define EP_WATCH_H

#include "error.h"
#include "oci.h"

struct ep_watch;

/* Starts watching dirs (NULL-terminated; a missing one counts 0 until it
 * appears; one with a '*' is a glob(3) pattern whose matching directories
 * count when made after the watch began: a tool's own temp dir).  progress(pctx, what, bytes, 0) is
 * called from the watching thread, the first time at once.  what and dirs are copied.  Returns NULL
 * with err set on failure; NULL progress returns NULL with no error (no
 * watch needed; ep_watch_stop(NULL) is a no-op). */
struct ep_watch *ep_watch_start(const char *what, const char *const *dirs, ep_progress_fn progress,
				void *pctx, struct ep_error *err);

/* Stops the thread (after one last report) and frees w. */
void ep_watch_stop(struct ep_watch *w);

/* Bytes of the regular files under dir (not following symlinks, not
 * crossing into other directories' mounts); 0 when it does not exist. */
uint64_t ep_watch_dir_bytes(const char *dir);

#endif
