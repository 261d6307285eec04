/* lib/apt/install.c - the pinned .deb files: into the store, then into
 * the container for dpkg. */
#include "apt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "internal.h"
#include "util.h"

static int deb_fields(json_t *deb, const char **name, const char **version, const char **sha,
		      const char **url, const char **snap, struct ep_error *err)
{
	*name = json_string_value(json_object_get(deb, "package"));
	*version = json_string_value(json_object_get(deb, "version"));
	*sha = json_string_value(json_object_get(deb, "sha256"));
	*url = json_string_value(json_object_get(deb, "url"));
	*snap = json_string_value(json_object_get(deb, "snapshot"));
	if (!*name || !*version || !*sha || !*url || strlen(*sha) != 64 ||
	    strspn(*sha, "0123456789abcdef") != 64 ||
	    strspn(*name, "abcdefghijklmnopqrstuvwxyz0123456789+-.") != strlen(*name) ||
	    strspn(*version,
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.~:") !=
		strlen(*version))
		return ep_error_set(
		    err, EP_EINVAL,
		    "the lock's apt entry is malformed (package, version, sha256, url)");
	return 0;
}

/* One .deb into the txn: mirror URL, then (when allowed) the snapshot URL. */
static int fetch_one(struct ep_txn *t, json_t *deb, struct ep_error *err)
{
	const char *name, *version, *sha, *url, *snap;
	const char *use_snap = getenv("ENVPIN_APT_SNAPSHOT");
	char want[80];
	json_t *size = NULL;

	if (deb_fields(deb, &name, &version, &sha, &url, &snap, err) < 0)
		return -1;
	snprintf(want, sizeof(want), "sha256:%s", sha);
	size = json_object_get(deb, "size");
	for (int try_snap = 0; try_snap < 2; try_snap++) {
		cleanup_close int fd = -1;
		cleanup_free char *tmp = NULL;
		const char *u = try_snap ? snap : url;
		struct ep_error e = EP_ERROR_INIT;
		ep_digest d;
		uint64_t got = 0;
		long status = 0;

		if (ep_txn_tempfile(t, &fd, &tmp, err) < 0)
			return -1;
		close(fd);
		fd = -1;
		if (ep_apt_download(u, tmp,
				    json_is_integer(size) ? (uint64_t)json_integer_value(size)
							  : EP_APT_MAX_DEB,
				    d, &got, &status, &e) < 0) {
			unlink(tmp);
			if (!try_snap && (status == 404 || status == 410)) {
				if (snap && use_snap && !strcmp(use_snap, "1"))
					continue;
				if (snap)
					return ep_error_set(
					    err, EP_EENV,
					    "package %s %s: the mirror no longer serves '%s' (HTTP "
					    "%ld); the snapshot archive has it at %s (set "
					    "ENVPIN_APT_SNAPSHOT=1 to fetch it from there)",
					    name, version, url, status, snap);
				return ep_error_set(
				    err, EP_EENV,
				    "package %s %s: the mirror no longer serves '%s' "
				    "(HTTP %ld) and no snapshot archive is known for it",
				    name, version, url, status);
			}
			if (err)
				*err = e;
			return ep_error_wrap(err, "package %s %s", name, version);
		}
		if (strcmp(d, want) != 0) {
			unlink(tmp);
			return ep_error_set(
			    err, EP_EMISMATCH,
			    "package %s %s: '%s' differs from the lock:\n  lock says %s\n"
			    "  download hashes to %s",
			    name, version, u, want, d);
		}
		return ep_txn_add_blob_file(t, tmp, want, err);
	}
	return ep_error_set(err, EP_EENV, "package %s %s: not fetched", name, version);
}

int ep_apt_fetch(struct ep_store *s, json_t *debs, struct ep_error *err)
{
	struct ep_txn t;
	json_t *deb;
	size_t i;
	int rc = -1, any = 0;

	if (!json_is_array(debs))
		return ep_error_set(err, EP_EINVAL, "the lock's apt entry has no 'debs' array");
	if (ep_txn_begin(s, &t, err) < 0)
		return -1;
	json_array_foreach (debs, i, deb) {
		const char *name, *version, *sha, *url, *snap;
		char digest[80], key[80];
		json_t *rec;

		if (deb_fields(deb, &name, &version, &sha, &url, &snap, err) < 0)
			goto out;
		snprintf(digest, sizeof(digest), "sha256:%s", sha);
		snprintf(key, sizeof(key), "apt-deb-%s", sha);
		if (!ep_store_has_blob(s, digest)) {
			if (fetch_one(&t, deb, err) < 0)
				goto out;
			any = 1;
		} else {
			/* a blob whose record was lost: re-record it */
			rec = ep_store_cache_get(s, key);
			if (rec) {
				json_decref(rec);
				continue;
			}
			any = 1;
		}
		rec = json_pack("{s:s, s:s, s:s}", "digest", digest, "package", name, "version",
				version);
		if (!rec || ep_txn_set_cache(&t, key, rec, err) < 0) {
			json_decref(rec);
			if (!rec)
				ep_error_oom(err);
			goto out;
		}
		json_decref(rec);
	}
	if (!any) {
		ep_txn_abort(&t);
		return 0;
	}
	rc = ep_txn_commit(&t, err);
	return rc;
out:
	ep_txn_abort(&t);
	return rc;
}

json_t *ep_apt_install_argv(struct ep_store *s, json_t *debs, const char *dir,
			    const char *mount_point, struct ep_error *err)
{
	cleanup_free char *script = NULL;
	size_t len = 0, i;
	json_int_t stage = -1;
	json_t *deb;
	FILE *f;
	json_t *argv;

	f = open_memstream(&script, &len);
	if (!f) {
		ep_error_oom(err);
		return NULL;
	}
	/* nothing to install (every request already met): an empty layer */
	fputs(json_array_size(debs) ? "set -e\nexport DEBIAN_FRONTEND=noninteractive "
				      "DEBCONF_NONINTERACTIVE_SEEN=true"
				    : "true",
	      f);
	json_array_foreach (debs, i, deb) {
		const char *name, *version, *sha, *url, *snap, *arch;
		cleanup_free char *blob = NULL, *link_name = NULL, *ver = NULL;
		char digest[80];

		if (deb_fields(deb, &name, &version, &sha, &url, &snap, err) < 0) {
			fclose(f);
			return NULL;
		}
		arch = json_string_value(json_object_get(deb, "architecture"));
		if (!arch || strspn(arch, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(arch))
			arch = "unknown";
		ver = ep_strdup(version, err);
		if (!ver) {
			fclose(f);
			return NULL;
		}
		for (char *c = ver; *c; c++)
			if (*c == ':')
				*c = '_';
		snprintf(digest, sizeof(digest), "sha256:%s", sha);
		blob = ep_store_blob_path(s, digest, err);
		link_name = ep_asprintf(err, "%s/%04zu_%s_%s_%s.deb", dir, i, name, ver, arch);
		if (!blob || !link_name) {
			fclose(f);
			return NULL;
		}
		if (link(blob, link_name) < 0) {
			fclose(f);
			ep_error_errno(err, EP_EENV, errno, "link '%s'", link_name);
			return NULL;
		}
		/* one dpkg run per stage: a stage's Pre-Depends are configured
		 * by the runs before it */
		if (json_integer_value(json_object_get(deb, "stage")) != stage) {
			stage = json_integer_value(json_object_get(deb, "stage"));
			fputs("\ndpkg --install --force-confold", f);
		}
		fprintf(f, " \\\n  %s/%04zu_%s_%s_%s.deb", mount_point, i, name, ver, arch);
	}
	fputc('\n', f);
	if (fclose(f) != 0) {
		ep_error_oom(err);
		return NULL;
	}
	argv = json_pack("[s, s, s]", "/bin/sh", "-c", script);
	if (!argv)
		ep_error_oom(err);
	return argv;
}

json_t *ep_apt_pkglist(json_t *debs)
{
	json_t *out = json_array(), *d;
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach (debs, i, d) {
		const char *n = json_string_value(json_object_get(d, "package"));
		const char *v = json_string_value(json_object_get(d, "version"));
		const char *a = json_string_value(json_object_get(d, "architecture"));
		char buf[512];

		if (!n || !v || !a)
			continue;
		snprintf(buf, sizeof(buf), "%s=%s:%s", n, v, a);
		json_array_append_new(out, json_string(buf));
	}
	return out;
}
