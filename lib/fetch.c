#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "archive_dl.h"
#include "http.h"
#include "ref.h"
#include "sink.h"
#include "util.h"

#define FETCH_ATTEMPTS 3
#define FETCH_HOPS 10

/* Whether url may be fetched under o; *allow_http says it is plain http. */
static int allowed_url(const char *url, const struct ep_fetch_opts *o, int *allow_http,
		       struct ep_error *err)
{
	cleanup_free char *host = NULL;

	*allow_http = 0;
	if (!strncasecmp(url, "https://", 8))
		return 0;
	if (o->any_http) {
		if (strncasecmp(url, "http://", 7))
			return ep_error_set(err, EP_EINVAL,
					    "'%.200s': only http:// and https:// are fetched", url);
		*allow_http = 1;
		return 0;
	}
	if (strncasecmp(url, "http://", 7))
		return ep_error_set(err, EP_EINVAL, "'%.200s': only https://, file:// and loopback http:// URLs are fetched", url);
	host = ep_url_host(url, err);
	if (!host)
		return -1;
	if (!ep_host_is_loopback(host))
		return ep_error_set(err, EP_EINVAL, "'%.200s': plain http is allowed only to loopback hosts", url);
	*allow_http = 1;
	return 0;
}

static int fetch_file_url(const char *url, struct ep_sink *out, struct ep_error *err)
{
	const char *path = url + 7;
	cleanup_close int fd = -1;
	char buf[1 << 16];

	if (path[0] != '/')
		return ep_error_set(err, EP_EINVAL, "'%s': a file URL needs an absolute path", url);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ep_error_errno(err, EP_EINVAL, errno, "cannot open '%s'", path);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ep_error_errno(err, EP_EENV, errno, "read '%s'", path);
		if (n == 0)
			return 0;
		if (ep_sink_write(out, buf, (size_t)n, err) < 0)
			return -1;
	}
}

int ep_fetch_http(const char *url0, const struct ep_fetch_opts *o, struct ep_sink *out,
		  long *status, struct ep_error *err)
{
	struct ep_http *h = ep_http_new(o->ca_file, err);
	cleanup_free char *url = ep_strdup(url0, err);
	int hops = 0, rc = -1;

	*status = 0;
	if (!h || !url)
		goto out;
	for (;;) {
		struct ep_http_req q = {
		    .method = "GET", .upload_fd = -1, .sink = out, .max_sink_bytes = o->max};
		struct ep_http_resp r;
		int allow_http;

		if (allowed_url(url, o, &allow_http, err) < 0)
			goto out;
		q.url = url;
		q.allow_http = allow_http;
		if (ep_http_do(h, &q, &r, err) < 0) {
			ep_http_resp_release(&r);
			goto out;
		}
		*status = r.status;
		if (r.status >= 300 && r.status < 400 && r.location) {
			char *next = ep_url_resolve(url, r.location, err);

			ep_http_resp_release(&r);
			if (!next)
				goto out;
			free(url);
			url = next;
			if (++hops > FETCH_HOPS) {
				ep_error_set(err, EP_EENV, "more than %d redirects", FETCH_HOPS);
				goto out;
			}
			continue;
		}
		ep_http_resp_release(&r);
		if (*status != 200) {
			ep_error_set(err, *status == 404 || *status == 410 ? EP_EINVAL : EP_EENV,
				     "HTTP %ld", *status);
			goto out;
		}
		rc = 0;
		break;
	}
out:
	ep_http_free(h);
	return rc;
}

int ep_fetch_url(struct ep_txn *t, const char *url, const char *sha256_hex, const char *ca_file,
		 char **path, struct ep_error *err)
{
	int is_file = !strncmp(url, "file://", 7);

	for (int attempt = 0;; attempt++) {
		cleanup_close int fd = -1;
		cleanup_free char *tmp = NULL;
		struct ep_fd_sink fds;
		struct ep_hash_sink hs;
		struct ep_error e = EP_ERROR_INIT;
		long status;
		int rc;

		if (ep_txn_tempfile(t, &fd, &tmp, err) < 0)
			return -1;
		ep_fd_sink_init(&fds, fd);
		if (ep_hash_sink_init(&hs, &fds.base, err) < 0)
			return -1;
		if (is_file)
			rc = fetch_file_url(url, &hs.base, &e);
		else
			rc = ep_fetch_http(url, &(struct ep_fetch_opts){.ca_file = ca_file},
					   &hs.base, &status, &e);
		if (rc == 0)
			rc = ep_sink_finish(&hs.base, &e);
		ep_sink_release(&hs.base);
		if (rc < 0) {
			unlink(tmp);
			/* transport failures are worth another try; bad input is not */
			if (e.code == EP_EENV && !is_file && attempt + 1 < FETCH_ATTEMPTS)
				continue;
			if (err)
				*err = e;
			return ep_error_wrap(err, "fetch '%s'", url);
		}
		if (strcmp(ep_digest_hex(hs.digest), sha256_hex)) {
			unlink(tmp);
			return ep_error_set(err, EP_EMISMATCH,
					    "fetch '%s': sha256 mismatch:\n  manifest says sha256:%s\n  download hashes to %s",
					    url, sha256_hex, hs.digest);
		}
		*path = steal_pointer(&tmp);
		return 0;
	}
}

static int is_zip(const char *file, struct ep_error *err)
{
	cleanup_close int fd = open(file, O_RDONLY | O_CLOEXEC);
	unsigned char m[4];

	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", file);
	if (read(fd, m, 4) != 4)
		return 0;
	return m[0] == 'P' && m[1] == 'K' && (m[2] == 3 || m[2] == 5) && (m[3] == 4 || m[3] == 6);
}

struct dirset {
	char **v;
	size_t n;
};

static int dirset_has(const struct dirset *d, const char *p, size_t len)
{
	for (size_t i = 0; i < d->n; i++)
		if (strlen(d->v[i]) == len && !memcmp(d->v[i], p, len))
			return 1;
	return 0;
}

static int dirset_add(struct dirset *d, const char *p, size_t len, struct ep_error *err)
{
	char **nv = ep_realloc(d->v, (d->n + 1) * sizeof(*nv), err);

	if (!nv)
		return -1;
	d->v = nv;
	d->v[d->n] = strndup(p, len);
	if (!d->v[d->n])
		return ep_error_oom(err);
	d->n++;
	return 0;
}

static void dirset_release(struct dirset *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i]);
	free(d->v);
}

/* Zip archives often leave out directory entries; a tar of the same tree
 * has them.  Emitting the missing parents (0755) makes both give one layer. */
static int add_parents(struct archive *out, struct dirset *seen, const char *path, int is_dir,
		       time_t mtime, struct ep_error *err)
{
	size_t len = strlen(path);

	while (len && path[len - 1] == '/')
		len--;
	if (is_dir && !dirset_has(seen, path, len) && dirset_add(seen, path, len, err) < 0)
		return -1;
	for (size_t i = 1; i < len; i++) {
		struct archive_entry *de;
		char name[4096];

		if (path[i] != '/' || dirset_has(seen, path, i))
			continue;
		if (i >= sizeof(name) - 1)
			return ep_error_set(err, EP_EINVAL, "zip entry name too long");
		memcpy(name, path, i);
		name[i] = '/';
		name[i + 1] = '\0';
		de = archive_entry_new();
		if (!de)
			return ep_error_oom(err);
		archive_entry_set_pathname(de, name);
		archive_entry_set_filetype(de, AE_IFDIR);
		archive_entry_set_perm(de, 0755);
		/* the latest time ustar holds: clamping then gives source_date_epoch,
		 * as it does for the directories of a tar made now */
		archive_entry_set_mtime(de, mtime > 0x7fffffff ? mtime : 0x7fffffff, 0);
		if (archive_write_header(out, de) < ARCHIVE_WARN) {
			archive_entry_free(de);
			return ep_error_set(err, EP_EENV, "tar writer: %s", archive_error_string(out));
		}
		archive_entry_free(de);
		if (dirset_add(seen, path, i, err) < 0)
			return -1;
	}
	return 0;
}

/* zip -> pax tar, so that lib/layer's one archive importer (and its
 * normalization and path checks) handles both. */
static char *zip_to_tar(const char *zip, const char *spool_dir, struct ep_error *err)
{
	struct archive *in = archive_read_new(), *out = archive_write_new();
	struct archive_entry *ae;
	cleanup_free char *tar = ep_asprintf(err, "%s/zip-XXXXXX", spool_dir ? spool_dir : "/tmp");
	cleanup_close int fd = -1;
	char buf[1 << 16];
	char *ret = NULL;
	struct dirset seen = {0};
	int r;

	if (!in || !out || !tar) {
		ep_error_oom(err);
		goto out;
	}
	fd = mkostemp(tar, O_CLOEXEC);
	if (fd < 0) {
		ep_error_errno(err, EP_EENV, errno, "create '%s'", tar);
		goto out;
	}
	if (archive_read_support_format_zip(in) != ARCHIVE_OK ||
	    archive_read_open_filename(in, zip, 1 << 16) != ARCHIVE_OK) {
		ep_error_set(err, EP_EINVAL, "zip '%s': %s", zip, archive_error_string(in));
		goto out_unlink;
	}
	if (archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
	    archive_write_open_fd(out, fd) != ARCHIVE_OK) {
		ep_error_set(err, EP_EENV, "tar writer: %s", archive_error_string(out));
		goto out_unlink;
	}
	while ((r = archive_read_next_header(in, &ae)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			ep_error_set(err, EP_EINVAL, "zip '%s': %s", zip, archive_error_string(in));
			goto out_unlink;
		}
		if (!archive_entry_pathname(ae)) {
			ep_error_set(err, EP_EINVAL, "zip '%s': an entry has no usable name", zip);
			goto out_unlink;
		}
		if (add_parents(out, &seen, archive_entry_pathname(ae),
				archive_entry_filetype(ae) == AE_IFDIR, archive_entry_mtime(ae), err) < 0)
			goto out_unlink;
		if (archive_write_header(out, ae) < ARCHIVE_WARN) {
			ep_error_set(err, EP_EINVAL, "zip '%s': entry '%s': %s", zip,
				     archive_entry_pathname(ae), archive_error_string(out));
			goto out_unlink;
		}
		for (;;) {
			la_ssize_t n = archive_read_data(in, buf, sizeof(buf));

			if (n < 0) {
				ep_error_set(err, EP_EINVAL, "zip '%s': %s", zip, archive_error_string(in));
				goto out_unlink;
			}
			if (n == 0)
				break;
			if (archive_write_data(out, buf, (size_t)n) != n) {
				ep_error_set(err, EP_EENV, "tar writer: %s", archive_error_string(out));
				goto out_unlink;
			}
		}
	}
	if (archive_write_close(out) != ARCHIVE_OK) {
		ep_error_set(err, EP_EENV, "tar writer: %s", archive_error_string(out));
		goto out_unlink;
	}
	ret = steal_pointer(&tar);
	goto out;
out_unlink:
	unlink(tar);
out:
	dirset_release(&seen);
	archive_read_free(in);
	archive_write_free(out);
	return ret;
}

int ep_fetch_add(struct ep_tree *tree, const char *file, const char *url, const char *dest,
		 int extract, int64_t mtime, const char *spool_dir, struct ep_error *err)
{
	if (extract) {
		int z = is_zip(file, err);
		cleanup_free char *tar = NULL;
		int rc;

		if (z < 0)
			return -1;
		if (!z)
			return ep_tree_add_archive(tree, file, dest, mtime, err);
		tar = zip_to_tar(file, spool_dir, err);
		if (!tar)
			return -1;
		rc = ep_tree_add_archive(tree, tar, dest, mtime, err);
		/* the tree spooled the data it needs; the tar can go */
		unlink(tar);
		return rc;
	}
	{
		struct ep_copy_opts co = {-1, 0, 0, mtime};
		size_t dl = strlen(dest);
		cleanup_free char *target = NULL;

		if (dl && dest[dl - 1] == '/') {
			size_t n = strcspn(url, "?#");
			const char *name;
			char base[256];

			while (n && url[n - 1] == '/')
				n--;
			name = url + n;
			while (name > url && name[-1] != '/')
				name--;
			if (url + n == name || (size_t)(url + n - name) >= sizeof(base))
				return ep_error_set(err, EP_EINVAL,
						    "'%.200s': no file name in the URL; give a dest path", url);
			memcpy(base, name, (size_t)(url + n - name));
			base[url + n - name] = '\0';
			if (!strcmp(base, ".") || !strcmp(base, ".."))
				return ep_error_set(err, EP_EINVAL, "'%.200s': bad file name", url);
			target = ep_asprintf(err, "%s%s", dest, base);
		} else {
			target = ep_strdup(dest, err);
		}
		if (!target)
			return -1;
		return ep_tree_add_copy(tree, file, target, &co, err);
	}
}
