/* lib/tar.h - a streaming POSIX.1-2001 (PAX) tar writer, used by the
 * normalization profile (docs/profile-1.md).  The writer does not sort or
 * normalize: it writes what it is given, deterministically (no atime/ctime,
 * empty uname/gname, fixed PAX header names). */
#ifndef EP_TAR_H
#define EP_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sink.h"

enum ep_tar_type {
	EP_TAR_REG = '0',
	EP_TAR_HARDLINK = '1',
	EP_TAR_SYMLINK = '2',
	EP_TAR_CHR = '3',
	EP_TAR_BLK = '4',
	EP_TAR_DIR = '5',
	EP_TAR_FIFO = '6',
};

struct ep_xattr {
	const char *name;
	const void *value;
	size_t len;
};

struct ep_tar_header {
	const char *path;     /* relative, no leading "/" or "./"; dirs without trailing "/" */
	int type;             /* enum ep_tar_type */
	uint32_t mode;        /* permission bits incl. setuid/setgid/sticky */
	uint64_t uid, gid;
	int64_t mtime;        /* seconds */
	uint64_t size;        /* regular files only */
	const char *linkname; /* symlink target or hardlink path */
	uint32_t devmajor, devminor;
	const struct ep_xattr *xattrs;
	size_t n_xattrs;
};

struct ep_tar_writer {
	struct ep_sink *out;
	uint64_t remaining; /* data bytes still owed by the current entry */
	uint64_t written;   /* data bytes of current entry */
	uint64_t entry_size;
};

void ep_tar_writer_init(struct ep_tar_writer *w, struct ep_sink *out);

/* Writes the header (and a PAX extended header first where a field does
 * not fit ustar: long path/linkname, large size/uid/gid, xattrs).
 * Directory entries get a trailing "/" in the archive. */
int ep_tar_write_header(struct ep_tar_writer *w, const struct ep_tar_header *h,
			struct ep_error *err);

/* Writes data of the current regular file; exactly h->size bytes in total,
 * in any number of calls.  Padding is written when the last byte arrives. */
int ep_tar_write_data(struct ep_tar_writer *w, const void *buf, size_t len, struct ep_error *err);

/* Writes the end-of-archive marker (two zero blocks).  Does not finish out. */
int ep_tar_finish(struct ep_tar_writer *w, struct ep_error *err);

#endif
