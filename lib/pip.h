/* lib/pip.h - the `pip` layer step (docs/pip.md): Python wheels from an
 * index, resolved on the HOST by the host's pip, pinned by sha256, and
 * installed by unpacking them ourselves.  Nothing from the image runs.
 *
 * A wheel set is a JSON array, sorted by filename, of
 *   {"name", "version", "filename", "url", "sha256"}   (sha256: 64 hex)
 * and is what the lock records for a pip step. */
#ifndef EP_PIP_H
#define EP_PIP_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"
#include "oci.h"
#include "store.h"

/* The interpreter the wheels are for (they are chosen by tags, so this
 * decides which files pip picks). */
struct ep_pip_target {
	char python[16]; /* "3.11": cp311 wheels, installed under python3.11 */
	char glibc[16];	 /* "2.36": manylinux_2_N wheels with N <= 36 */
};

/* Defaults when nothing says otherwise: Debian 12 (bookworm). */
#define EP_PIP_DEFAULT_PYTHON "3.11"
#define EP_PIP_DEFAULT_GLIBC "2.28"

/* Bump when the installed tree for the same wheels changes (cache keys). */
#define EP_PIP_INSTALLER "envpin-wheel-1"

/* Fills from a Debian package list ("name=version:arch" strings, as the
 * debian base records): python from python3.N-minimal, glibc from libc6.
 * Each field is set only where the list says; returns the number set. */
int ep_pip_target_from_packages(json_t *packages, struct ep_pip_target *t);

/* Checks "3.11"-style strings (digits '.' digits); 0 or -1 (EP_EINVAL). */
int ep_pip_check_version(const char *what, const char *v, struct ep_error *err);

/* Resolves requirement strings with `python3 -m pip install --dry-run
 * --report` for the target's tags (binary wheels only, every dependency),
 * in work_dir (pip's log and HTTP cache go there).  Returns a new wheel set.
 * A pip failure is EP_EENV with the end of its log. */
json_t *ep_pip_resolve(char *const *reqs, size_t n, const struct ep_pip_target *t,
		       const char *work_dir, struct ep_error *err);

/* Makes every wheel of the set a blob of the store (blobs/sha256/HEX),
 * downloading the missing ones with pip (by url, else name==version) and
 * committing them in a transaction of their own, so a later failure of the
 * build does not lose a long download.  A file whose sha256 differs from
 * the set's is EP_EMISMATCH naming both digests.  A cache record per wheel
 * (pip-wheel-HEX) keeps the blobs through gc.  While pip runs, progress
 * (may be NULL) gets the bytes downloaded so far (lib/watch.h). */
int ep_pip_fetch(struct ep_store *s, json_t *wheels, const struct ep_pip_target *t,
		 const char *work_dir, ep_progress_fn progress, void *pctx, struct ep_error *err);

/* Unpacks the wheels (blobs of the store) into stage_dir as the image tree
 * below "/": usr/local/lib/pythonX.Y/dist-packages/..., scripts and
 * console entry points in usr/local/bin, headers and data as pip places
 * them.  Writes each .dist-info/INSTALLER ("envpin").  Files are 0755 if
 * the wheel marks them executable, else 0644.  Entries that leave their
 * directory, links and special files are EP_EINVAL naming the wheel. */
int ep_pip_install(struct ep_store *s, json_t *wheels, const struct ep_pip_target *t,
		   const char *stage_dir, struct ep_error *err);

#endif
