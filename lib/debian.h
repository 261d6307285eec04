/* lib/debian.h - the `debian` base: a Debian root filesystem made by
 * mmdebstrap from a mirror, with SOURCE_DATE_EPOCH set so that the same
 * inputs give the same tar.  The mirror is not under our control, so what
 * it served is recorded: every installed package with its version and
 * architecture goes into the lock, and --locked refuses a mirror that now
 * serves other versions. */
#ifndef EP_DEBIAN_H
#define EP_DEBIAN_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"
#include "oci.h"
#include "manifest.h"

/* Default mirror when the manifest names none. */
#define EP_DEBIAN_DEFAULT_MIRROR "http://deb.debian.org/debian"

/* The lock input of a debian base, without the resolved package list:
 * {"kind":"debian","suite","variant","mirror","include":[...]}.  New ref. */
json_t *ep_debian_input(const struct ep_base *base, struct ep_error *err);

/* Runs mmdebstrap into out_tar (a path in a private temp dir; work_dir
 * holds the log and the package list).  *packages gets the installed set as
 * a sorted array of "name=version:arch" strings (new reference).  A failure
 * is EP_EENV with the last lines of mmdebstrap's log.  mmdebstrap's chroot
 * (TMPDIR) is in work_dir; while it runs, progress (may be NULL) gets the
 * bytes fetched and unpacked so far (lib/watch.h). */
int ep_debian_rootfs(const struct ep_base *base, int64_t source_date_epoch, const char *work_dir,
		     const char *out_tar, json_t **packages, ep_progress_fn progress, void *pctx,
		     struct ep_error *err);

/* The same rootfs from a local apt repository (repo: REPO/dists/SUITE/main/
 * binary-amd64/Packages and the .debs at their Filename), without network; sources_list (a file) becomes the image's
 * /etc/apt/sources.list, so that the image reads as the online build's. */
int ep_debian_rootfs_offline(const struct ep_base *base, int64_t source_date_epoch,
			     const char *work_dir, const char *out_tar, const char *repo,
			     const char *sources_list, json_t **packages, struct ep_error *err);

/* Runs mmdebstrap as ep_debian_rootfs does, keeping no rootfs but copying
 * every .deb it installed into out_dir/debs and apt's indexes (InRelease,
 * Packages) into out_dir/lists (both must exist), and the rootfs's
 * /etc/apt/sources.list to out_dir/sources.list; *packages as there. */
int ep_debian_collect_debs(const struct ep_base *base, int64_t source_date_epoch,
			   const char *work_dir, const char *out_dir, json_t **packages,
			   struct ep_error *err);

/* Compares two package lists; returns NULL if equal, else a malloc'ed
 * message naming the first package that differs. */
char *ep_debian_diff(json_t *locked, json_t *now);

#endif
