/* lib/archive_dl.h - libarchive, loaded with dlopen on first use.
 *
 * Like lib/curl_dl.h: libarchive's chain (libxml2, ICU, libstdc++, lzma,
 * bz2, lz4, nettle, acl) is loaded only by the commands that read or write
 * archives with it (build, pull of zips, rebuild, layer listing), not at
 * every start of `run`.  Include this header instead of <archive.h> and
 * <archive_entry.h>; calls keep their libarchive names.
 *
 * The entry points (archive_read_new, archive_write_new, archive_entry_new,
 * archive_version_string) load the library and return NULL when it cannot
 * be loaded (callers already treat NULL as a failure); the *_free functions
 * accept NULL as libarchive does.  Every other function takes an object only
 * those return.  ep_archive_load() gives the reason of a failed load. */
#ifndef EP_ARCHIVE_DL_H
#define EP_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>

#include "error.h"

#define EP_ARCHIVE_SONAME "libarchive.so.13"

/* X(name): every libarchive function envpin calls. */
#define EP_ARCHIVE_FUNCS(X)                                                                        \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_free)                                                                      \
	X(archive_entry_gid)                                                                       \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_mode)                                                                      \
	X(archive_entry_mtime)                                                                     \
	X(archive_entry_mtime_is_set)                                                              \
	X(archive_entry_new)                                                                       \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_rdevmajor)                                                                 \
	X(archive_entry_rdevminor)                                                                 \
	X(archive_entry_set_filetype)                                                              \
	X(archive_entry_set_mtime)                                                                 \
	X(archive_entry_set_pathname)                                                              \
	X(archive_entry_set_perm)                                                                  \
	X(archive_entry_size)                                                                      \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_uid)                                                                       \
	X(archive_entry_xattr_count)                                                               \
	X(archive_entry_xattr_next)                                                                \
	X(archive_entry_xattr_reset)                                                               \
	X(archive_error_string)                                                                    \
	X(archive_filter_bytes)                                                                    \
	X(archive_read_data)                                                                       \
	X(archive_read_data_block)                                                                 \
	X(archive_read_free)                                                                       \
	X(archive_read_new)                                                                        \
	X(archive_read_next_header)                                                                \
	X(archive_read_open)                                                                       \
	X(archive_read_open_fd)                                                                    \
	X(archive_read_open_filename)                                                              \
	X(archive_read_open_memory)                                                                \
	X(archive_read_support_filter_all)                                                         \
	X(archive_read_support_filter_gzip)                                                        \
	X(archive_read_support_filter_zstd)                                                        \
	X(archive_read_support_format_gnutar)                                                      \
	X(archive_read_support_format_raw)                                                         \
	X(archive_read_support_format_tar)                                                         \
	X(archive_read_support_format_zip)                                                         \
	X(archive_read_support_format_zip_seekable)                                                \
	X(archive_set_error)                                                                       \
	X(archive_version_string)                                                                  \
	X(archive_write_close)                                                                     \
	X(archive_write_data)                                                                      \
	X(archive_write_free)                                                                      \
	X(archive_write_header)                                                                    \
	X(archive_write_new)                                                                       \
	X(archive_write_open_fd)                                                                   \
	X(archive_write_set_format_pax_restricted)

struct ep_archive_api {
#define EP_ARCHIVE_FIELD(f) __typeof__(f) *p_##f;
	EP_ARCHIVE_FUNCS(EP_ARCHIVE_FIELD)
#undef EP_ARCHIVE_FIELD
};

/* Filled once by ep_archive_load(); read-only afterwards. */
extern struct ep_archive_api ep_archive_api;

/* Loads libarchive (once, thread-safe).  0, or -1 with EP_EENV and the reason. */
int ep_archive_load(struct ep_error *err);

struct archive *ep_archive_read_new(void);
struct archive *ep_archive_write_new(void);
struct archive_entry *ep_archive_entry_new(void);
const char *ep_archive_version_string(void);
int ep_archive_read_free(struct archive *a);
int ep_archive_write_free(struct archive *a);
void ep_archive_entry_free(struct archive_entry *e);

#ifndef EP_ARCHIVE_DL_IMPL
#define archive_entry_filetype (*ep_archive_api.p_archive_entry_filetype)
#define archive_entry_free ep_archive_entry_free
#define archive_entry_gid (*ep_archive_api.p_archive_entry_gid)
#define archive_entry_hardlink (*ep_archive_api.p_archive_entry_hardlink)
#define archive_entry_mode (*ep_archive_api.p_archive_entry_mode)
#define archive_entry_mtime (*ep_archive_api.p_archive_entry_mtime)
#define archive_entry_mtime_is_set (*ep_archive_api.p_archive_entry_mtime_is_set)
#define archive_entry_new ep_archive_entry_new
#define archive_entry_pathname (*ep_archive_api.p_archive_entry_pathname)
#define archive_entry_perm (*ep_archive_api.p_archive_entry_perm)
#define archive_entry_rdevmajor (*ep_archive_api.p_archive_entry_rdevmajor)
#define archive_entry_rdevminor (*ep_archive_api.p_archive_entry_rdevminor)
#define archive_entry_set_filetype (*ep_archive_api.p_archive_entry_set_filetype)
#define archive_entry_set_mtime (*ep_archive_api.p_archive_entry_set_mtime)
#define archive_entry_set_pathname (*ep_archive_api.p_archive_entry_set_pathname)
#define archive_entry_set_perm (*ep_archive_api.p_archive_entry_set_perm)
#define archive_entry_size (*ep_archive_api.p_archive_entry_size)
#define archive_entry_symlink (*ep_archive_api.p_archive_entry_symlink)
#define archive_entry_uid (*ep_archive_api.p_archive_entry_uid)
#define archive_entry_xattr_count (*ep_archive_api.p_archive_entry_xattr_count)
#define archive_entry_xattr_next (*ep_archive_api.p_archive_entry_xattr_next)
#define archive_entry_xattr_reset (*ep_archive_api.p_archive_entry_xattr_reset)
#define archive_error_string (*ep_archive_api.p_archive_error_string)
#define archive_filter_bytes (*ep_archive_api.p_archive_filter_bytes)
#define archive_read_data (*ep_archive_api.p_archive_read_data)
#define archive_read_data_block (*ep_archive_api.p_archive_read_data_block)
#define archive_read_free ep_archive_read_free
#define archive_read_new ep_archive_read_new
#define archive_read_next_header (*ep_archive_api.p_archive_read_next_header)
#define archive_read_open (*ep_archive_api.p_archive_read_open)
#define archive_read_open_fd (*ep_archive_api.p_archive_read_open_fd)
#define archive_read_open_filename (*ep_archive_api.p_archive_read_open_filename)
#define archive_read_open_memory (*ep_archive_api.p_archive_read_open_memory)
#define archive_read_support_filter_all (*ep_archive_api.p_archive_read_support_filter_all)
#define archive_read_support_filter_gzip (*ep_archive_api.p_archive_read_support_filter_gzip)
#define archive_read_support_filter_zstd (*ep_archive_api.p_archive_read_support_filter_zstd)
#define archive_read_support_format_gnutar (*ep_archive_api.p_archive_read_support_format_gnutar)
#define archive_read_support_format_raw (*ep_archive_api.p_archive_read_support_format_raw)
#define archive_read_support_format_tar (*ep_archive_api.p_archive_read_support_format_tar)
#define archive_read_support_format_zip (*ep_archive_api.p_archive_read_support_format_zip)
#define archive_read_support_format_zip_seekable                                                   \
	(*ep_archive_api.p_archive_read_support_format_zip_seekable)
#define archive_set_error (*ep_archive_api.p_archive_set_error)
#define archive_version_string ep_archive_version_string
#define archive_write_close (*ep_archive_api.p_archive_write_close)
#define archive_write_data (*ep_archive_api.p_archive_write_data)
#define archive_write_free ep_archive_write_free
#define archive_write_header (*ep_archive_api.p_archive_write_header)
#define archive_write_new ep_archive_write_new
#define archive_write_open_fd (*ep_archive_api.p_archive_write_open_fd)
#define archive_write_set_format_pax_restricted                                                    \
	(*ep_archive_api.p_archive_write_set_format_pax_restricted)
#endif

#endif
