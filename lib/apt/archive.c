/* lib/apt/archive.c - the image's apt sources, the archives' signed
 * InRelease files and their Packages indexes. */
#include "apt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "archive_dl.h"
#include "digest.h"
#include "fetch.h"
#include "http.h"
#include "internal.h"
#include "proc.h"
#include "sink.h"
#include "util.h"

#define ATTEMPTS 3

/* ---- files of the image --------------------------------------------------- */

static int open_in_root(int root, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	long fd;
	int tries = 0;

	do
		fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 16);
	return (int)fd;
}

/* Reads an image file (NULL without error when missing: *missing = 1). */
static char *read_in_root(int root, const char *path, size_t max, size_t *len, int *missing,
			  struct ep_error *err)
{
	cleanup_close int fd = open_in_root(root, path, O_RDONLY);
	cleanup_free char *buf = NULL;
	struct stat st;
	size_t got = 0;

	*missing = 0;
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			*missing = 1;
			return NULL;
		}
		ep_error_errno(err, EP_EENV, errno, "image file '/%s'", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ep_error_set(err, EP_EINVAL, "image file '/%s' is not a regular file", path);
		return NULL;
	}
	if ((uint64_t)st.st_size > max) {
		ep_error_set(err, EP_EINVAL, "image file '/%s' is larger than %zu bytes", path,
			     max);
		return NULL;
	}
	buf = ep_malloc((size_t)st.st_size + 1, err);
	if (!buf)
		return NULL;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ep_error_errno(err, EP_EENV, errno, "read image file '/%s'", path);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	if (len)
		*len = got;
	return steal_pointer(&buf);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in an image directory ending in one of the suffixes, sorted
 * (NULL-terminated; an absent directory gives an empty list). */
static char **list_in_root(int root, const char *dir, const char *const *suffixes,
			   struct ep_error *err)
{
	int fd = open_in_root(root, dir, O_RDONLY | O_DIRECTORY);
	char **v = ep_calloc(1, sizeof(char *), err);
	size_t n = 0;
	DIR *d;
	struct dirent *e;

	if (!v) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (fd < 0)
		return v;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return v;
	}
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		int ok = 0;
		char **nv;

		if (e->d_name[0] == '.')
			continue;
		for (size_t i = 0; suffixes[i]; i++) {
			size_t sl = strlen(suffixes[i]);

			ok |= l > sl && !strcmp(e->d_name + l - sl, suffixes[i]);
		}
		if (!ok || n >= 4096)
			continue;
		nv = ep_realloc(v, (n + 2) * sizeof(char *), err);
		if (!nv)
			goto fail;
		v = nv;
		v[n] = ep_asprintf(err, "%s/%s", dir, e->d_name);
		if (!v[n])
			goto fail;
		v[++n] = NULL;
	}
	closedir(d);
	qsort(v, n, sizeof(char *), cmp_str);
	return v;
fail:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

/* ---- sources ------------------------------------------------------------- */

void ep_apt_sources_free(struct ep_apt_source *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].uri);
		free(s[i].suite);
		strv_free(s[i].components);
		free(s[i].signed_by);
	}
	free(s);
}

/* Whitespace-separated words of s[0..len) (NULL-terminated). */
static char **words(const char *s, size_t len, struct ep_error *err)
{
	char **v = ep_calloc(1, sizeof(char *), err);
	size_t n = 0;
	const char *e = s + len;

	while (v && s < e) {
		const char *w;
		char **nv;

		while (s < e && strchr(" \t\r\n", *s))
			s++;
		if (s == e)
			break;
		w = s;
		while (s < e && !strchr(" \t\r\n", *s))
			s++;
		if (n >= 256) {
			ep_error_set(err, EP_EINVAL, "more than 256 words in one field");
			strv_free(v);
			return NULL;
		}
		nv = ep_realloc(v, (n + 2) * sizeof(char *), err);
		if (!nv) {
			strv_free(v);
			return NULL;
		}
		v = nv;
		v[n] = strndup(w, (size_t)(s - w));
		if (!v[n]) {
			ep_error_oom(err);
			strv_free(v);
			return NULL;
		}
		v[++n] = NULL;
	}
	return v;
}

static int add_source(struct ep_apt_source **out, size_t *n, const char *uri, const char *suite,
		      char *const *comps, const char *signed_by, const char *what,
		      struct ep_error *err)
{
	struct ep_apt_source *v, *s;
	size_t nc = 0, ul = strlen(uri);

	if (strncmp(uri, "http://", 7) && strncmp(uri, "https://", 8))
		return ep_error_set(
		    err, EP_EINVAL,
		    "%s: source '%s': only http:// and https:// archives are supported", what, uri);
	int flat = suite[0] && suite[strlen(suite) - 1] == '/';

	if (!suite[0] || strchr(suite, '$') || strstr(suite, "..") || (suite[0] == '/' && suite[1]))
		return ep_error_set(err, EP_EINVAL, "%s: suite '%s' is not supported", what, suite);
	while (comps && comps[nc])
		nc++;
	if (!nc && !flat)
		return ep_error_set(err, EP_EINVAL, "%s: source '%s %s' names no component", what,
				    uri, suite);
	if (nc && flat)
		return ep_error_set(err, EP_EINVAL,
				    "%s: source '%s %s': a flat repository has no components", what,
				    uri, suite);
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*out)[i].suite, suite) && !strncmp((*out)[i].uri, uri, ul) &&
		    ((*out)[i].uri[ul] == 0 || !strcmp(uri + ul - 1, "/")))
			break; /* duplicates are harmless: the index is fetched twice */
	v = ep_realloc(*out, (*n + 1) * sizeof(*v), err);
	if (!v)
		return -1;
	*out = v;
	s = &v[*n];
	memset(s, 0, sizeof(*s));
	s->flat = flat;
	while (ul > 0 && uri[ul - 1] == '/')
		ul--;
	s->uri = strndup(uri, ul);
	s->suite = strdup(suite);
	s->components = ep_calloc(nc + 1, sizeof(char *), err);
	s->signed_by = signed_by ? strdup(signed_by) : NULL;
	(*n)++;
	if (!s->uri || !s->suite || !s->components || (signed_by && !s->signed_by))
		return ep_error_oom(err);
	for (size_t i = 0; i < nc; i++) {
		if (strchr(comps[i], '/') || strstr(comps[i], ".."))
			return ep_error_set(err, EP_EINVAL, "%s: component '%s' is not supported",
					    what, comps[i]);
		s->components[i] = strdup(comps[i]);
		if (!s->components[i])
			return ep_error_oom(err);
	}
	return 0;
}

static int one_line_sources(const char *buf, size_t len, const char *what,
			    struct ep_apt_source **out, size_t *n, struct ep_error *err)
{
	const char *p = buf, *e = buf + len;
	int line = 0;

	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *end = nl ? nl : e, *hash = memchr(p, '#', (size_t)(end - p));
		cleanup_free char *signed_by = NULL, *opts = NULL;
		char **w = NULL;
		size_t i = 1, nw = 0;
		int rc = 0;

		line++;
		if (hash)
			end = hash;
		w = words(p, (size_t)(end - p), err);
		if (!w)
			return -1;
		while (w[nw])
			nw++;
		p = nl ? nl + 1 : e;
		if (!nw || strcmp(w[0], "deb")) {
			strv_free(w); /* deb-src and blank lines */
			continue;
		}
		if (nw > 1 && w[1][0] == '[') {
			/* options run to the word ending in ']' */
			for (; i < nw; i++) {
				char *o = w[i] + (i == 1);
				size_t ol = strlen(o);
				int last = ol && o[ol - 1] == ']';

				if (last)
					o[ol - 1] = 0;
				if (!strncmp(o, "signed-by=", 10)) {
					free(signed_by);
					signed_by = strdup(o + 10);
				}
				if (last)
					break;
			}
			if (i == nw) {
				strv_free(w);
				return ep_error_set(err, EP_EINVAL,
						    "%s:%d: unterminated '[' options", what, line);
			}
			i++;
		}
		if (nw < i + 2) {
			strv_free(w);
			return ep_error_set(err, EP_EINVAL,
					    "%s:%d: expected 'deb URI SUITE COMPONENT...'", what,
					    line);
		}
		{
			cleanup_free char *where = ep_asprintf(err, "%s:%d", what, line);

			rc = where ? add_source(out, n, w[i], w[i + 1], w + i + 2,
						signed_by && *signed_by ? signed_by : NULL, where,
						err)
				   : -1;
		}
		strv_free(w);
		if (rc < 0)
			return -1;
	}
	return 0;
}

struct d822 {
	struct ep_apt_source **out;
	size_t *n;
	const char *what;
};

static int deb822_para(void *vctx, const struct ep_apt_field *f, size_t nf, int line,
		       struct ep_error *err)
{
	struct d822 *c = vctx;
	const struct ep_apt_field *types = ep_apt_field_get(f, nf, "Types");
	const struct ep_apt_field *uris = ep_apt_field_get(f, nf, "URIs");
	const struct ep_apt_field *suites = ep_apt_field_get(f, nf, "Suites");
	const struct ep_apt_field *comps = ep_apt_field_get(f, nf, "Components");
	const struct ep_apt_field *en = ep_apt_field_get(f, nf, "Enabled");
	const struct ep_apt_field *sb = ep_apt_field_get(f, nf, "Signed-By");
	char **t = NULL, **u = NULL, **s = NULL, **cs = NULL;
	cleanup_free char *where = ep_asprintf(err, "%s:%d", c->what, line);
	cleanup_free char *signed_by = NULL;
	int is_deb = 0, rc = -1;

	if (!where)
		return -1;
	if (en && en->value_len >= 2 && !strncasecmp(en->value, "no", 2))
		return 0;
	if (!types || !uris || !suites)
		return ep_error_set(err, EP_EINVAL, "%s: a stanza needs Types, URIs and Suites",
				    where);
	if (sb) {
		if (memchr(sb->value, '\n', sb->value_len))
			return ep_error_set(err, EP_EINVAL,
					    "%s: an inline Signed-By key is not supported; name a "
					    "keyring file",
					    where);
		signed_by = strndup(sb->value, sb->value_len);
		while (signed_by && *signed_by && strchr(" \t\r", signed_by[strlen(signed_by) - 1]))
			signed_by[strlen(signed_by) - 1] = 0;
		if (!signed_by)
			return ep_error_oom(err);
	}
	t = words(types->value, types->value_len, err);
	u = words(uris->value, uris->value_len, err);
	s = words(suites->value, suites->value_len, err);
	cs = comps ? words(comps->value, comps->value_len, err) : ep_calloc(1, sizeof(char *), err);
	if (!t || !u || !s || !cs)
		goto out;
	for (size_t i = 0; t[i]; i++)
		is_deb |= !strcmp(t[i], "deb");
	rc = 0;
	for (size_t i = 0; is_deb && u[i] && rc == 0; i++)
		for (size_t j = 0; s[j] && rc == 0; j++)
			rc = add_source(c->out, c->n, u[i], s[j], cs,
					signed_by && *signed_by ? signed_by : NULL, where, err);
out:
	strv_free(t);
	strv_free(u);
	strv_free(s);
	strv_free(cs);
	return rc;
}

int ep_apt_parse_sources(const char *buf, size_t len, int is_deb822, const char *what,
			 struct ep_apt_source **out, size_t *n, struct ep_error *err)
{
	struct d822 c = {out, n, what};

	if (!is_deb822)
		return one_line_sources(buf, len, what, out, n, err);
	return ep_apt_parse_control(buf, len, what, deb822_para, &c, err);
}

static int read_sources_fd(int root, struct ep_apt_source **out, size_t *n, struct ep_error *err)
{
	static const char *const sfx[] = {".list", ".sources", NULL};
	char **files = NULL;
	size_t len;
	int missing;
	char *buf;

	buf = read_in_root(root, "etc/apt/sources.list", EP_APT_MAX_SOURCES, &len, &missing, err);
	if (!buf && !missing)
		return -1;
	if (buf) {
		int rc = ep_apt_parse_sources(buf, len, 0, "/etc/apt/sources.list", out, n, err);

		free(buf);
		if (rc < 0)
			return -1;
	}
	files = list_in_root(root, "etc/apt/sources.list.d", sfx, err);
	if (!files)
		return -1;
	for (size_t i = 0; files[i]; i++) {
		cleanup_free char *what = ep_asprintf(err, "/%s", files[i]);
		size_t fl = strlen(files[i]);
		int rc;

		buf = read_in_root(root, files[i], EP_APT_MAX_SOURCES, &len, &missing, err);
		if (!buf || !what) {
			free(buf);
			if (missing)
				continue;
			strv_free(files);
			return -1;
		}
		rc = ep_apt_parse_sources(
		    buf, len, fl > 8 && !strcmp(files[i] + fl - 8, ".sources"), what, out, n, err);
		free(buf);
		if (rc < 0) {
			strv_free(files);
			return -1;
		}
	}
	strv_free(files);
	return 0;
}

int ep_apt_read_sources(const char *rootfs, struct ep_apt_source **out, size_t *n,
			struct ep_error *err)
{
	cleanup_close int root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*out = NULL;
	*n = 0;
	if (root < 0)
		return ep_error_errno(err, EP_EENV, errno, "open image tree '%s'", rootfs);
	if (read_sources_fd(root, out, n, err) < 0) {
		ep_apt_sources_free(*out, *n);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

/* ---- snapshot ------------------------------------------------------------ */

int ep_apt_snapshot_stamp(const char *date, char out[17])
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4] = "";
	int d, y, h, mi, s, m;
	const char *comma = strchr(date, ',');
	const char *p = comma ? comma + 1 : date;

	if (sscanf(p, " %d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &s) != 6)
		return -1;
	for (m = 0; m < 12; m++)
		if (!strncmp(months + 3 * m, mon, 3))
			break;
	if (m == 12 || d < 1 || d > 31 || y < 1990 || y > 9999 || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || s < 0 || s > 60)
		return -1;
	snprintf(out, 17, "%04d%02d%02dT%02d%02d%02dZ", y, m + 1, d, h, mi, s);
	return 0;
}

char *ep_apt_snapshot_base(const char *origin, const char *label, const char *uri,
			   const char *stamp, struct ep_error *err)
{
	const char *archive = NULL;

	(void)uri;
	if (origin && !strcmp(origin, "Debian")) {
		if (label && !strcmp(label, "Debian-Security"))
			archive = "debian-security";
		else if (label && !strcmp(label, "Debian Debug"))
			archive = "debian-debug";
		else
			archive = "debian";
		return ep_asprintf(err, "https://snapshot.debian.org/archive/%s/%s", archive,
				   stamp);
	}
	if (origin && !strcmp(origin, "Ubuntu"))
		return ep_asprintf(err, "https://snapshot.ubuntu.com/ubuntu/%s", stamp);
	return NULL;
}

/* ---- downloads ----------------------------------------------------------- */

int ep_apt_download(const char *url, const char *path, uint64_t max, ep_digest digest,
		    uint64_t *size, long *status, struct ep_error *err)
{
	for (int attempt = 0;; attempt++) {
		cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		struct ep_fd_sink fds;
		struct ep_hash_sink hs;
		struct ep_error e = EP_ERROR_INIT;
		int rc;

		if (fd < 0)
			return ep_error_errno(err, EP_EENV, errno, "create '%s'", path);
		ep_fd_sink_init(&fds, fd);
		if (ep_hash_sink_init(&hs, &fds.base, err) < 0)
			return -1;
		/* plain http to any host: what is fetched is trusted through the
		 * signed InRelease or the lock's sha256, never the transport */
		rc = ep_fetch_http(url, &(struct ep_fetch_opts){.any_http = 1, .max = max},
				   &hs.base, status, &e);
		if (rc == 0)
			rc = ep_sink_finish(&hs.base, &e);
		ep_sink_release(&hs.base);
		if (rc < 0) {
			if (e.code == EP_EENV && *status == 0 && attempt + 1 < ATTEMPTS)
				continue;
			if (err)
				*err = e;
			return ep_error_wrap(err, "fetch '%s'", url);
		}
		snprintf(digest, sizeof(ep_digest), "%s", hs.digest);
		if (size)
			*size = hs.bytes;
		return 0;
	}
}

/* ---- InRelease ------------------------------------------------------------ */

/* ASCII-armored key -> binary keyring. */
static char *dearmor(const char *buf, size_t len, size_t *out_len, struct ep_error *err)
{
	const char *b = memmem(buf, len, "-----BEGIN PGP PUBLIC KEY BLOCK-----", 36);
	const char *e, *p;
	cleanup_free char *b64 = NULL;
	size_t n = 0;

	if (!b)
		return NULL;
	e = memmem(b, len - (size_t)(b - buf), "-----END PGP PUBLIC KEY BLOCK-----", 34);
	if (!e)
		return NULL;
	/* the body starts after the first blank line (armor headers end there) */
	p = memmem(b, (size_t)(e - b), "\n\n", 2);
	if (!p)
		p = memmem(b, (size_t)(e - b), "\n\r\n", 3);
	if (!p)
		return NULL;
	b64 = ep_malloc((size_t)(e - p) + 1, err);
	if (!b64)
		return NULL;
	for (; p < e; p++) {
		if (*p == '=' && (p[-1] == '\n')) /* CRC line */
			break;
		if (strchr(" \t\r\n", *p))
			continue;
		b64[n++] = *p;
	}
	b64[n] = 0;
	return ep_base64_decode(b64, out_len, err);
}

/* Copies the keyrings the source trusts into dir/key-N.gpg (binary). */
static int copy_keyrings(int root, const struct ep_apt_source *src, const char *dir, char ***paths,
			 struct ep_error *err)
{
	static const char *const sfx[] = {".gpg", ".asc", NULL};
	static const char *const gpg_sfx[] = {".gpg", NULL};
	char **names = NULL;
	size_t nn = 0, np = 0;
	int rc = -1;

	*paths = ep_calloc(1, sizeof(char *), err);
	if (!*paths)
		return -1;
	if (src->signed_by) {
		names = ep_calloc(2, sizeof(char *), err);
		if (!names ||
		    !(names[0] = ep_strdup(src->signed_by + (src->signed_by[0] == '/'), err)))
			goto out;
	} else {
		names = list_in_root(root, "etc/apt/trusted.gpg.d", sfx, err);
		if (!names)
			goto out;
		while (names[nn])
			nn++;
		{
			char **nv = ep_realloc(names, (nn + 2) * sizeof(char *), err);

			if (!nv)
				goto out;
			names = nv;
			names[nn] = ep_strdup("etc/apt/trusted.gpg", err);
			names[nn + 1] = NULL;
			if (!names[nn])
				goto out;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; names[i]; i++) {
			cleanup_free char *buf = NULL, *bin = NULL, *path = NULL;
			size_t len, bl;
			int missing;
			char **nv;
			const char *data;

			buf = read_in_root(root, names[i], EP_APT_MAX_KEYRING, &len, &missing, err);
			if (!buf) {
				if (missing && !src->signed_by)
					continue;
				if (missing)
					ep_error_set(
					    err, EP_EINVAL,
					    "source '%s %s': Signed-By keyring '%s' is not "
					    "in the image",
					    src->uri, src->suite, src->signed_by);
				goto out;
			}
			data = buf;
			bl = len;
			if (memmem(buf, len, "-----BEGIN PGP PUBLIC KEY BLOCK-----", 36)) {
				bin = dearmor(buf, len, &bl, err);
				if (!bin)
					continue;
				data = bin;
			}
			if (!bl)
				continue;
			path = ep_asprintf(err, "%s/key-%zu.gpg", dir, np);
			if (!path || ep_write_file_atomic(path, data, bl, 0644, err) < 0)
				goto out;
			nv = ep_realloc(*paths, (np + 2) * sizeof(char *), err);
			if (!nv)
				goto out;
			*paths = nv;
			(*paths)[np++] = steal_pointer(&path);
			(*paths)[np] = NULL;
		}
		if (np || src->signed_by)
			break;
		/* no keyring in apt's trusted places: the image's keyrings dir */
		strv_free(names);
		names = list_in_root(root, "usr/share/keyrings", gpg_sfx, err);
		if (!names)
			goto out;
	}
	if (!np) {
		ep_error_set(err, EP_EINVAL,
			     "source '%s %s': the image has no keyring to verify it (looked in "
			     "/etc/apt/trusted.gpg.d, /etc/apt/trusted.gpg, /usr/share/keyrings)",
			     src->uri, src->suite);
		goto out;
	}
	rc = 0;
out:
	strv_free(names);
	return rc;
}

/* Verifies file with gpgv against keyrings: an inline-signed file (the
 * signed text goes to out), or, when data is set, file is the detached
 * signature of data (Release.gpg of Release). */
static int gpgv_verify(char **keyrings, const char *file, const char *data, const char *out,
		       const char *work, const char *what, struct ep_error *err)
{
	cleanup_free char *log = ep_path_join(work, "gpgv.log", err);
	cleanup_free char *home = ep_path_join(work, "gnupg", err);
	cleanup_free char *henv = NULL, *text = NULL;
	const char *argv[80];
	char *env[2] = {NULL, NULL};
	size_t a = 0, len = 0;
	int status = 0, valid = 0, bad = 0;
	const char *gpgv = getenv("ENVPIN_GPGV");

	if (!log || !home || ep_mkdir_p(home, err) < 0)
		return -1;
	chmod(home, 0700);
	henv = ep_asprintf(err, "GNUPGHOME=%s", home);
	if (!henv)
		return -1;
	env[0] = henv;
	argv[a++] = gpgv && *gpgv ? gpgv : "gpgv";
	argv[a++] = "--status-fd";
	argv[a++] = "1";
	for (size_t i = 0; keyrings[i] && a < 70; i++) {
		argv[a++] = "--keyring";
		argv[a++] = keyrings[i];
	}
	if (!data) {
		argv[a++] = "--output";
		argv[a++] = out;
		unlink(out);
	}
	argv[a++] = file;
	if (data)
		argv[a++] = data;
	argv[a] = NULL;
	if (ep_spawn_logged(argv, env, log, &status, err) < 0)
		return ep_error_wrap(err, "gpgv");
	if (status == 127)
		return ep_error_set(err, EP_EENV, "cannot run gpgv (install the 'gpgv' package)");
	text = ep_read_file(log, 1u << 20, &len, err);
	if (!text)
		return -1;
	for (const char *p = text; (p = strstr(p, "[GNUPG:] ")); p += 9) {
		valid += !strncmp(p + 9, "VALIDSIG ", 9);
		bad += !strncmp(p + 9, "BADSIG ", 7) || !strncmp(p + 9, "EXPKEYSIG ", 10) ||
		       !strncmp(p + 9, "REVKEYSIG ", 10);
	}
	if (!valid || bad) {
		cleanup_free char *tail = ep_log_tail(log, 600);

		return ep_error_set(
		    err, EP_EMISMATCH,
		    "%s: the signature does not verify with the image's keyrings:\n%s", what,
		    tail ? tail : "");
	}
	return 0;
}

struct release {
	char *date, *origin, *label, *by_hash;
	char *sha256; /* the SHA256 field's value */
};

static int release_para(void *vctx, const struct ep_apt_field *f, size_t n, int line,
			struct ep_error *err)
{
	struct release *r = vctx;
	const char *names[] = {"Date", "Origin", "Label", "Acquire-By-Hash", "SHA256"};
	char **dst[] = {&r->date, &r->origin, &r->label, &r->by_hash, &r->sha256};

	(void)line;
	if (r->date || r->sha256)
		return 0; /* the first paragraph only */
	for (size_t i = 0; i < 5; i++) {
		const struct ep_apt_field *x = ep_apt_field_get(f, n, names[i]);

		if (!x)
			continue;
		*dst[i] = strndup(x->value, x->value_len);
		if (!*dst[i])
			return ep_error_oom(err);
		while (i < 4 && **dst[i] && strchr(" \t\r", (*dst[i])[strlen(*dst[i]) - 1]))
			(*dst[i])[strlen(*dst[i]) - 1] = 0;
	}
	return 0;
}

static void release_release(struct release *r)
{
	free(r->date);
	free(r->origin);
	free(r->label);
	free(r->by_hash);
	free(r->sha256);
}

/* Finds "HASH SIZE path" for path in the SHA256 field. */
static int release_entry(const struct release *r, const char *path, char hash[65], uint64_t *size)
{
	const char *p = r->sha256;
	size_t pl = strlen(path);

	while (p && *p) {
		char h[65], name[512];
		unsigned long long sz;
		const char *nl = strchr(p, '\n');

		if (sscanf(p, " %64s %llu %511s", h, &sz, name) == 3 && strlen(name) == pl &&
		    !strcmp(name, path) && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64) {
			memcpy(hash, h, 65);
			*size = sz;
			return 0;
		}
		p = nl ? nl + 1 : NULL;
	}
	return -1;
}

/* Reads an xz/gz/plain file fully into memory, at most max bytes. */
static char *decompress(const char *path, size_t max, size_t *len, struct ep_error *err)
{
	struct archive *a;
	struct archive_entry *e;
	cleanup_free char *buf = NULL;
	size_t n = 0, cap = 0;

	if (ep_archive_load(err) < 0)
		return NULL;
	a = archive_read_new();
	if (!a) {
		ep_error_oom(err);
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		ep_error_set(err, EP_EINVAL, "'%s': %s", path, archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (n + (1 << 16) + 1 > cap) {
			size_t nc = cap ? cap * 2 : (4u << 20);
			char *nb;

			if (cap >= max + 1) {
				archive_read_free(a);
				ep_error_set(err, EP_EINVAL,
					     "'%s' decompresses to more than %zu bytes", path, max);
				return NULL;
			}
			if (nc > max + (1 << 16) + 1)
				nc = max + (1 << 16) + 1;
			nb = ep_realloc(buf, nc, err);
			if (!nb) {
				archive_read_free(a);
				return NULL;
			}
			buf = nb;
			cap = nc;
		}
		r = archive_read_data(a, buf + n, cap - n - 1);
		if (r < 0) {
			ep_error_set(err, EP_EINVAL, "'%s': %s", path, archive_error_string(a));
			archive_read_free(a);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			archive_read_free(a);
			ep_error_set(err, EP_EINVAL, "'%s' decompresses to more than %zu bytes",
				     path, max);
			return NULL;
		}
	}
	archive_read_free(a);
	buf[n] = 0;
	*len = n;
	return steal_pointer(&buf);
}

/* Fetches one Packages index of an archive (dist: the URL holding
 * InRelease; comp NULL for a flat repository), checks it against InRelease.
 * The first of Packages.xz, .gz or plain that InRelease lists is used. */
static char *fetch_index(const struct ep_apt_source *src, const struct release *rel,
			 const char *dist, const char *comp, const char *arch, const char *work,
			 size_t idx, size_t *len, struct ep_error *err)
{
	static const char *const exts[] = {".xz", ".gz", ""};
	cleanup_free char *rdir =
	    comp ? ep_asprintf(err, "%s/binary-%s/", comp, arch) : ep_strdup("", err);
	cleanup_free char *rpath = NULL;
	cleanup_free char *file = ep_asprintf(err, "%s/Packages-%zu", work, idx);
	int by_hash_ok = rel->by_hash && !strcmp(rel->by_hash, "yes");
	char hash[65];
	uint64_t size = 0, got;
	ep_digest d;
	long status;

	if (!rdir || !file)
		return NULL;
	for (size_t i = 0; i < EP_ARRAY_SIZE(exts) && !rpath; i++) {
		rpath = ep_asprintf(err, "%sPackages%s", rdir, exts[i]);
		if (!rpath)
			return NULL;
		if (release_entry(rel, rpath, hash, &size) < 0) {
			free(rpath);
			rpath = NULL;
		}
	}
	if (!rpath) {
		ep_error_set(err, EP_EINVAL,
			     "archive '%s %s': InRelease lists no %sPackages index (component or "
			     "architecture not served)",
			     src->uri, src->suite, rdir);
		return NULL;
	}
	if (size > EP_APT_MAX_INDEX) {
		ep_error_set(err, EP_EINVAL, "archive '%s %s': %s is larger than %u bytes",
			     src->uri, src->suite, rpath, EP_APT_MAX_INDEX);
		return NULL;
	}
	for (int by_hash = 0; by_hash < 2; by_hash++) {
		cleanup_free char *url = NULL;
		struct ep_error e = EP_ERROR_INIT;

		url = by_hash ? ep_asprintf(err, "%s/%sby-hash/SHA256/%s", dist, rdir, hash)
			      : ep_asprintf(err, "%s/%s", dist, rpath);
		if (!url)
			return NULL;
		if (ep_apt_download(url, file, size, d, &got, &status, &e) == 0 &&
		    !strcmp(ep_digest_hex(d), hash) && got == size)
			return decompress(file, EP_APT_MAX_INDEX, len, err);
		if (e.code == EP_OK)
			ep_error_set(&e, EP_EMISMATCH,
				     "'%s' hashes to %s (%ju bytes), InRelease says sha256:%s (%ju "
				     "bytes)",
				     url, d, (uintmax_t)got, hash, (uintmax_t)size);
		/* a mirror updated in between still serves the file by its hash */
		if (by_hash || !by_hash_ok) {
			if (err)
				*err = e;
			return NULL;
		}
	}
	return NULL;
}

/* Native architecture: dpkg's own entry in the status file. */
struct arch_ctx {
	char arch[32];
};

static int arch_para(void *vctx, const struct ep_apt_field *f, size_t n, int line,
		     struct ep_error *err)
{
	struct arch_ctx *c = vctx;
	const struct ep_apt_field *p = ep_apt_field_get(f, n, "Package");
	const struct ep_apt_field *a = ep_apt_field_get(f, n, "Architecture");

	(void)line;
	(void)err;
	if (p && a && p->value_len == 4 && !strncmp(p->value, "dpkg", 4) && a->value_len < 32) {
		memcpy(c->arch, a->value, a->value_len);
		c->arch[a->value_len] = 0;
		c->arch[strcspn(c->arch, " \t\r")] = 0;
	}
	return 0;
}

json_t *ep_apt_resolve(const char *rootfs, char *const *req, size_t n, const char *work_dir,
		       struct ep_error *err)
{
	cleanup_close int root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct ep_apt_source *src = NULL;
	size_t n_src = 0, len, n_idx = 0;
	cleanup_free char *status = NULL;
	struct ep_apt_db *db = NULL;
	struct arch_ctx ac = {""};
	json_t *out = NULL, *archives = NULL, *debs = NULL, *reqs = NULL;
	int missing;

	if (root < 0) {
		ep_error_errno(err, EP_EENV, errno, "open image tree '%s'", rootfs);
		return NULL;
	}
	status = read_in_root(root, "var/lib/dpkg/status", EP_APT_MAX_STATUS, &len, &missing, err);
	if (!status) {
		if (missing)
			ep_error_set(err, EP_EINVAL,
				     "the image has no /var/lib/dpkg/status: an apt step needs a "
				     "Debian or Ubuntu based image");
		return NULL;
	}
	if (ep_apt_parse_control(status, len, "/var/lib/dpkg/status", arch_para, &ac, err) < 0)
		return NULL;
	if (!ac.arch[0] || !strcmp(ac.arch, "all")) {
		ep_error_set(
		    err, EP_EINVAL,
		    "/var/lib/dpkg/status: dpkg is not installed (no native architecture)");
		return NULL;
	}
	if (read_sources_fd(root, &src, &n_src, err) < 0)
		goto fail;
	if (!n_src) {
		ep_error_set(err, EP_EINVAL,
			     "the image has no 'deb' source in /etc/apt/sources.list or "
			     "/etc/apt/sources.list.d");
		goto fail;
	}
	db = ep_apt_db_new(ac.arch, err);
	archives = json_array();
	reqs = json_array();
	if (!db || !archives || !reqs) {
		ep_error_oom(err);
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(reqs, json_string(req[i]));
	if (ep_apt_db_add_status(db, status, len, err) < 0)
		goto fail;
	for (size_t i = 0; i < n_src; i++) {
		struct ep_apt_source *s = &src[i];
		/* where InRelease is: dists/SUITE, or the flat repository's directory */
		cleanup_free char *dist =
		    !s->flat ? ep_asprintf(err, "%s/dists/%s", s->uri, s->suite)
		    : (!strcmp(s->suite, "/") || !strcmp(s->suite, "./"))
			? ep_strdup(s->uri, err)
			: ep_asprintf(err, "%s/%.*s", s->uri, (int)strlen(s->suite) - 1, s->suite);
		cleanup_free char *url = dist ? ep_asprintf(err, "%s/InRelease", dist) : NULL;
		cleanup_free char *file = ep_asprintf(err, "%s/InRelease-%zu", work_dir, i);
		cleanup_free char *signed_text = ep_asprintf(err, "%s/Release-%zu", work_dir, i);
		cleanup_free char *keydir = ep_asprintf(err, "%s/keys-%zu", work_dir, i);
		cleanup_free char *rtext = NULL, *snap = NULL;
		char **keys = NULL;
		struct release rel = {0};
		int detached = 0;
		char stamp[17];
		ep_digest d;
		long st;
		size_t rlen;
		int ai;
		json_t *comps;

		if (!url || !file || !signed_text || !keydir || ep_mkdir_p(keydir, err) < 0)
			goto fail;
		if (ep_apt_download(url, file, EP_APT_MAX_INRELEASE, d, NULL, &st, err) < 0) {
			/* an archive without InRelease: Release + Release.gpg, as apt does */
			cleanup_free char *rurl = ep_asprintf(NULL, "%s/Release", dist);
			cleanup_free char *gurl = ep_asprintf(NULL, "%s/Release.gpg", dist);
			ep_digest gd;
			long gst;

			if (st != 404 || !rurl || !gurl ||
			    ep_apt_download(rurl, signed_text, EP_APT_MAX_INRELEASE, d, NULL, &gst,
					    NULL) < 0 ||
			    ep_apt_download(gurl, file, 1u << 20, gd, NULL, &gst, NULL) < 0) {
				ep_error_wrap(err, "archive '%s %s'", s->uri, s->suite);
				goto fail;
			}
			detached = 1;
			free(url);
			url = steal_pointer(&rurl);
		}
		if (copy_keyrings(root, s, keydir, &keys, err) < 0 ||
		    gpgv_verify(keys, file, detached ? signed_text : NULL, signed_text, work_dir,
				url, err) < 0) {
			strv_free(keys);
			goto fail;
		}
		strv_free(keys);
		rtext = ep_read_file(signed_text, EP_APT_MAX_INRELEASE, &rlen, err);
		if (!rtext || ep_apt_parse_control(rtext, rlen, url, release_para, &rel, err) < 0) {
			release_release(&rel);
			goto fail;
		}
		if (!rel.date || ep_apt_snapshot_stamp(rel.date, stamp) < 0 || !rel.sha256) {
			ep_error_set(err, EP_EINVAL, "%s: no valid Date or SHA256 field", url);
			release_release(&rel);
			goto fail;
		}
		snap = ep_apt_snapshot_base(rel.origin, rel.label, s->uri, stamp, err);
		/* pool paths are relative to the archive root (flat: its directory) */
		ai = ep_apt_db_add_archive(db, s->flat ? dist : s->uri, snap, err);
		comps = json_array();
		if (ai < 0 || !comps) {
			json_decref(comps);
			release_release(&rel);
			goto fail;
		}
		for (size_t c = 0; s->flat ? c < 1 : s->components[c] != NULL; c++) {
			const char *comp = s->flat ? NULL : s->components[c];
			cleanup_free char *idx = NULL;
			cleanup_free char *what =
			    comp ? ep_asprintf(err, "%s/%s/binary-%s/Packages", dist, comp, ac.arch)
				 : ep_asprintf(err, "%s/Packages", dist);
			size_t il;

			if (comp)
				json_array_append_new(comps, json_string(comp));
			idx = what ? fetch_index(s, &rel, dist, comp, ac.arch, work_dir, n_idx++,
						 &il, err)
				   : NULL;
			if (!idx || ep_apt_db_add_packages(db, ai, idx, il, what, err) < 0) {
				json_decref(comps);
				release_release(&rel);
				goto fail;
			}
		}
		if (json_array_append_new(archives,
					  json_pack("{s:s, s:s, s:o, s:s, s:s, s:s?}", "uri",
						    s->uri, "suite", s->suite, "components", comps,
						    "date", rel.date, "inrelease_sha256", d,
						    "snapshot", snap)) < 0) {
			release_release(&rel);
			ep_error_oom(err);
			goto fail;
		}
		release_release(&rel);
	}
	debs = ep_apt_db_resolve(db, req, n, err);
	if (!debs)
		goto fail;
	out = json_pack("{s:s, s:o, s:s, s:o, s:o}", "kind", "apt", "packages", reqs,
			"architecture", ac.arch, "archives", archives, "debs", debs);
	reqs = archives = NULL;
	if (!out)
		ep_error_oom(err);
fail:
	json_decref(reqs);
	json_decref(archives);
	ep_apt_db_free(db);
	ep_apt_sources_free(src, n_src);
	return out;
}
