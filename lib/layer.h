/* lib/layer.h - the content of one image layer, and its normalized writing
 * (profile 1, docs/profile-1.md).
 *
 * A tree is a set of entries keyed by image path.  Entries come from `copy`
 * sources on the host (file data is read at write time) or from tar
 * archives (base rootfs, fetched archives; their file data is spooled, while
 * the archive is read, to one unlinked temp file in spool_dir).  Only
 * metadata is kept in memory.  ep_tree_write() emits the entries sorted by
 * path bytes, with profile-1 metadata, into a sink. */
#ifndef EP_LAYER_H
#define EP_LAYER_H

#include <jansson.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "sink.h"

#define EP_PROFILE 1

struct ep_tree;

/* spool_dir: where archive data is spooled (the store's tmp dir; NULL means
 * $TMPDIR or /tmp); copied.  The caller frees the tree with ep_tree_free. */
struct ep_tree *ep_tree_new(const char *spool_dir, struct ep_error *err);
void ep_tree_free(struct ep_tree *t);

struct ep_copy_opts {
	int mode;      /* -1: keep only the exec bit (0644/0755, dirs 0755); else exact bits */
	int64_t uid;   /* owner in the image (default 0) */
	int64_t gid;
	int64_t mtime; /* source_date_epoch */
};

/* Adds host path src at image path dest with Docker COPY semantics:
 * a directory's contents go under dest; a file goes to dest, or to
 * dest/basename(src) when dest ends with "/".  Symlinks are kept as
 * symlinks (never followed), hardlinks within the sources are kept by first
 * path, sockets are refused, parent directories of dest are created with
 * 0755.  A later add of the same path replaces the earlier entry.
 * Errors name the source path. */
int ep_tree_add_copy(struct ep_tree *t, const char *src, const char *dest,
		     const struct ep_copy_opts *o, struct ep_error *err);

/* Adds every entry of a tar archive (tar, tar.gz, tar.xz, tar.zst; read by
 * libarchive) under image path prefix dest ("/" for a rootfs).  Modes,
 * numeric owners, symlinks, hardlinks, devices and allowlisted xattrs are
 * kept; mtimes are clamped to clamp_mtime; names are normalized and an
 * entry that would leave the root ("..", absolute link targets are fine)
 * is an error naming it.  OCI whiteouts are kept as ordinary entries.
 * The root entry ("./") is dropped; missing parents of dest are added as
 * 0755 root directories.  Sockets are an error.  The xattr allowlist is
 * security.capability only.  A hardlink whose target is not a regular file
 * of the tree is an error at write/key time. */
int ep_tree_add_archive(struct ep_tree *t, const char *archive, const char *dest,
			int64_t clamp_mtime, struct ep_error *err);

/* Adds an overlayfs upper directory (what a run step wrote) at the root:
 * modes (07777), numeric owners, symlinks, hardlinks within it, devices and
 * fifos are kept, security.capability is the only xattr kept, mtimes are
 * clamped to clamp_mtime; a 0/0 character device becomes the OCI whiteout
 * ".wh.NAME" and an opaque directory (trusted.overlay.opaque=y) gets
 * ".wh..wh..opq".  Sockets are dropped, and so are the files that only
 * record the time or host of the step (profile rules, docs/profile-1.md:
 * /tmp, /var/tmp, /run and /root/.cache contents, files under /var/log,
 * ldconfig's aux-cache, apt's binary caches and downloaded debs,
 * dpkg/debconf "-old" backups, __pycache__ *.pyc).  File data is read at
 * write time: upper must outlive the tree's last write. */
int ep_tree_add_upper(struct ep_tree *t, const char *upper, int64_t clamp_mtime,
		      struct ep_error *err);

/* What a layer archive does to the paths of the image below it, for
 * resolving paths through the image's symlinks without unpacking it:
 * {"links": {PATH: TARGET}, "dirs": {PATH: true}, "gone": {PATH: true}
 * (whiteouts), "opaque": {DIR: true}} (regular files are not listed); paths relative to the root,
 * normalized.  Reads the headers only.  New reference. */
json_t *ep_archive_links(const char *archive, struct ep_error *err);

/* Number of entries. */
size_t ep_tree_count(const struct ep_tree *t);

/* Key of the inputs from metadata only: image paths, normalized metadata,
 * and for host files (dev, ino, size, mtime ns, ctime ns).  Cheap; used for
 * the no-op rebuild fast path. */
int ep_tree_stat_key(struct ep_tree *t, ep_digest out, struct ep_error *err);

/* Key of the inputs from content: image paths, normalized metadata and the
 * sha256 of every file's data.  Reads every file. */
int ep_tree_content_key(struct ep_tree *t, ep_digest out, struct ep_error *err);

/* Writes the normalized tar to out and finishes out.  Files that changed
 * size (or stopped being regular files) since they were added are an error
 * naming them.  May be called more than once; the tree is not modified. */
int ep_tree_write(struct ep_tree *t, struct ep_sink *out, struct ep_error *err);

#endif
