/* lib/apt.h - the `apt` layer step (docs/apt.md): Debian packages resolved
 * against the image built so far, pinned by sha256, installed by dpkg
 * inside the container without network.
 *
 * Resolution reads the image's own apt configuration (sources.list,
 * sources.list.d/ one-line and deb822 files, keyrings, dpkg status), fetches
 * each archive's InRelease, verifies it with gpgv against the image's
 * keyrings, fetches Packages.xz (hash and size checked against InRelease)
 * and picks exact versions with their Depends and Pre-Depends (apt's
 * --no-install-recommends habit: Recommends and Suggests are not followed).
 * What is already installed is not fetched again.  Everything read from an
 * archive or from the image is untrusted and bounded in size.
 *
 * A resolution is a JSON object, what the lock records for an apt step:
 *   {"kind": "apt", "packages": [request...], "architecture": "amd64",
 *    "archives": [{"uri", "suite", "components", "date", "inrelease_sha256",
 *                  "snapshot"}],
 *    "debs": [{"package", "version", "architecture", "filename", "size",
 *              "sha256", "url", "snapshot"}]}
 * with "debs" in installation order (dependencies first). */
#ifndef EP_APT_H
#define EP_APT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* Caps on untrusted input. */
#define EP_APT_MAX_INRELEASE (16u << 20)
#define EP_APT_MAX_INDEX (1024u << 20) /* one decompressed Packages file */
#define EP_APT_MAX_STATUS (256u << 20)
#define EP_APT_MAX_SOURCES (1u << 20)
#define EP_APT_MAX_KEYRING (8u << 20)
#define EP_APT_MAX_DEB (4096ull << 20)

/* ---- control files (deb822 paragraphs) ---------------------------------- */

struct ep_apt_field {
	const char *name; /* not NUL-terminated */
	size_t name_len;
	const char *value; /* leading blanks dropped; continuation lines kept with their '\n' */
	size_t value_len;
};

#define EP_APT_MAX_FIELDS 128

/* Called for each paragraph; line is the line number of its first field. */
typedef int (*ep_apt_para_fn)(void *ctx, const struct ep_apt_field *f, size_t n, int line,
			      struct ep_error *err);

/* Parses a control file (Packages, dpkg status, Release, .sources):
 * paragraphs separated by blank lines, "Name: value" fields, continuation
 * lines starting with a blank, '#' comment lines skipped.  A malformed line
 * or a paragraph with more than EP_APT_MAX_FIELDS fields is EP_EINVAL naming
 * `what` and the line. */
int ep_apt_parse_control(const char *buf, size_t len, const char *what, ep_apt_para_fn fn,
			 void *ctx, struct ep_error *err);

/* The field named name (case-insensitive) of a paragraph, or NULL. */
const struct ep_apt_field *ep_apt_field_get(const struct ep_apt_field *f, size_t n,
					    const char *name);

/* ---- versions ------------------------------------------------------------ */

/* Compares two Debian versions with dpkg's algorithm ([epoch:]upstream
 * [-revision]; '~' sorts before everything, letters before non-letters).
 * Returns <0, 0 or >0. */
int ep_apt_vercmp(const char *a, const char *b);

/* 1 if v satisfies "op ref" (op: "<<", "<=", "=", ">=", ">>", and the
 * obsolete "<" / ">" meaning <= / >=). */
int ep_apt_version_satisfies(const char *v, const char *op, const char *ref);

/* ---- the package universe and the resolver ------------------------------ */

struct ep_apt_db;

/* A db for one native architecture ("amd64"); caller frees with ep_apt_db_free. */
struct ep_apt_db *ep_apt_db_new(const char *arch, struct ep_error *err);
void ep_apt_db_free(struct ep_apt_db *db);

/* Adds an archive (base URI and, when known, its snapshot base); returns its
 * index for ep_apt_db_add_packages. */
int ep_apt_db_add_archive(struct ep_apt_db *db, const char *uri, const char *snapshot,
			  struct ep_error *err);

/* Adds the paragraphs of a Packages index served by archive `archive`;
 * packages of other architectures than the db's and "all" are skipped. */
int ep_apt_db_add_packages(struct ep_apt_db *db, int archive, const char *buf, size_t len,
			   const char *what, struct ep_error *err);

/* Adds the installed packages of a dpkg status file ("install ok
 * installed" and the half-configured states count as installed). */
int ep_apt_db_add_status(struct ep_apt_db *db, const char *buf, size_t len, struct ep_error *err);

/* Resolves requests ("name" or "name=version") to the packages to install,
 * as the "debs" array described above (new reference).  For each request
 * and dependency: an installed package that satisfies it is kept; else the
 * highest version the archives serve (the first archive wins a tie), for
 * "a | b" the first alternative that can be satisfied, for a virtual name
 * the first provider by name.  A request or dependency that cannot be met
 * is EP_EINVAL naming the chain that needs it. */
json_t *ep_apt_db_resolve(struct ep_apt_db *db, char *const *req, size_t n, struct ep_error *err);

/* ---- sources and archives ----------------------------------------------- */

/* One "deb" source of the image. */
struct ep_apt_source {
	char *uri;	   /* without trailing '/' */
	char *suite;	   /* "bookworm"; ending in '/': a flat repository ("/", "x86_64/") */
	char **components; /* NULL-terminated */
	char *signed_by;   /* image path of a keyring, or NULL */
	int flat;	   /* no dists/: InRelease and Packages under URI/SUITE, no components */
};

/* Reads /etc/apt/sources.list and /etc/apt/sources.list.d/{*.list,*.sources}
 * of the image at rootfs (every path resolved inside rootfs).  "deb-src"
 * entries and disabled deb822 stanzas are skipped.  *out gets an array
 * (caller frees with ep_apt_sources_free). */
int ep_apt_read_sources(const char *rootfs, struct ep_apt_source **out, size_t *n,
			struct ep_error *err);
/* The same on the text of one file; deb822 when is_deb822. Appends. */
int ep_apt_parse_sources(const char *buf, size_t len, int is_deb822, const char *what,
			 struct ep_apt_source **out, size_t *n, struct ep_error *err);
void ep_apt_sources_free(struct ep_apt_source *s, size_t n);

/* "Sat, 11 Jul 2026 10:16:37 UTC" -> "20260711T101637Z"; -1 if malformed. */
int ep_apt_snapshot_stamp(const char *date, char out[17]);

/* The snapshot base for an archive of origin/label at stamp, e.g.
 * "https://snapshot.debian.org/archive/debian/20260711T101637Z", or NULL when
 * no snapshot service is known for it (caller frees). */
char *ep_apt_snapshot_base(const char *origin, const char *label, const char *uri,
			   const char *stamp, struct ep_error *err);

/* ---- the step ------------------------------------------------------------ */

/* Resolves requests against the image tree at rootfs (a flattened image,
 * read-only here).  work_dir (empty, private) holds downloaded indexes and
 * gpgv's files.  Returns the lock object described at the top. */
json_t *ep_apt_resolve(const char *rootfs, char *const *req, size_t n, const char *work_dir,
		       struct ep_error *err);

/* Makes every .deb of debs (the lock's array) a blob of the store, fetching
 * the missing ones from their "url" (plain http is fine: the sha256 comes
 * from the signed index), committed in a transaction of its own with a cache
 * record per file (apt-deb-HEX) that keeps it through gc.  Bytes that differ
 * from the lock are EP_EMISMATCH naming the package and both digests.  A
 * file the mirror no longer serves is EP_EENV naming the package and its
 * snapshot URL; with ENVPIN_APT_SNAPSHOT=1 the snapshot URL is tried next. */
int ep_apt_fetch(struct ep_store *s, json_t *debs, struct ep_error *err);

/* Where the step's .debs are mounted (read-only) inside the container. */
#define EP_APT_MOUNT_POINT "/mnt"

/* "name=version:arch" for each .deb of debs, as the debian base's package
 * list (lib/dockerfile.c pins versions from it).  New reference. */
json_t *ep_apt_pkglist(json_t *debs);

/* Links the .debs (blobs of the store) into dir as NNN_NAME_VERSION_ARCH.deb
 * (installation order) and returns the argv to run in the container with
 * dir mounted at mount_point: a /bin/sh script that installs them with
 * dpkg (new reference, a JSON array of strings).  What dpkg leaves that
 * depends on the run (logs, *-old backups, ldconfig's aux-cache) is dropped
 * by the run step's profile rules (lib/layer.c ep_tree_add_upper). */
json_t *ep_apt_install_argv(struct ep_store *s, json_t *debs, const char *dir,
			    const char *mount_point, struct ep_error *err);

#endif
