/* lib/pip.c - resolve, fetch and unpack Python wheels (lib/pip.h,
 * docs/pip.md).
 *
 * Why pip only on the host, and only to resolve and download: running pip
 * (or anything) inside the image would make the layer depend on what that
 * code does (bytecode with timestamps, installer quirks, network at build
 * time).  Unpacking a wheel is a fixed, documented transformation of a zip
 * file (PEP 427/491), so we do it ourselves, deterministically. */
#include "pip.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "watch.h"
#include "archive_dl.h"
#include "digest.h"
#include "jsonutil.h"
#include "proc.h"
#include "util.h"
#include "watch.h"

#define LOG_TAIL 2000
#define REPORT_MAX (256u << 20)
#define ENTRY_POINTS_MAX (1u << 20)
#define MAX_WHEEL_PATH 4096
#define CHUNK (1 << 20)
/* A wheel that expands past this is refused (zip bombs). */
#define MAX_WHEEL_BYTES (64ull << 30)

static const char *host_python(void)
{
	const char *p = getenv("ENVPIN_HOST_PYTHON");

	return p && *p ? p : "/usr/bin/python3";
}

int ep_pip_check_version(const char *what, const char *v, struct ep_error *err)
{
	const char *p = v;
	size_t a = 0, b = 0;

	while (isdigit((unsigned char)*p))
		p++, a++;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p))
			p++, b++;
	}
	if (!a || !b || a > 3 || b > 3 || *p)
		return ep_error_set(err, EP_EINVAL, "%s: '%s' is not a version like '3.11'", what,
				    v);
	return 0;
}

/* "python3.11-minimal=3.11.2-6:amd64" -> "3.11"; "libc6=2.36-9:amd64" -> "2.36". */
int ep_pip_target_from_packages(json_t *packages, struct ep_pip_target *t)
{
	size_t i;
	json_t *v;
	int set = 0;

	json_array_foreach (packages, i, v) {
		const char *s = json_string_value(v);
		int maj, min, len = 0;

		if (!s)
			continue;
		if (sscanf(s, "python%d.%d-minimal=%n", &maj, &min, &len) == 2 && len > 0) {
			snprintf(t->python, sizeof(t->python), "%d.%d", maj, min);
			set++;
		} else if (sscanf(s, "libc6=%d.%d%n", &maj, &min, &len) == 2 && len > 0) {
			snprintf(t->glibc, sizeof(t->glibc), "%d.%d", maj, min);
			set++;
		}
	}
	return set;
}

/* Runs argv with stdout and stderr to log (lib/proc.h pins locale and
 * timezone); pip is also kept quiet and non-interactive. */
static int run_logged(const char *const *argv, char *const *env, const char *log, const char *what,
		      struct ep_error *err)
{
	char *pip_env[64];
	size_t n = 0;
	int status;

	for (size_t i = 0; env && env[i] && n < EP_ARRAY_SIZE(pip_env) - 4; i++)
		pip_env[n++] = env[i];
	pip_env[n++] = "PIP_DISABLE_PIP_VERSION_CHECK=1";
	pip_env[n++] = "PIP_NO_INPUT=1";
	pip_env[n++] = "PIP_PROGRESS_BAR=off";
	pip_env[n] = NULL;
	if (ep_spawn_logged(argv, pip_env, log, &status, err) < 0)
		return -1;
	if (status != 0) {
		cleanup_free char *tail = ep_log_tail(log, LOG_TAIL);

		if (status == 127)
			return ep_error_set(
			    err, EP_EENV,
			    "cannot run '%s' (set ENVPIN_HOST_PYTHON to a python3 with pip)",
			    argv[0]);
		return ep_error_set(err, EP_EENV, "%s failed (exit status %d); end of pip's log '%s':\n%s",
				    what, status, log, tail ? tail : "(no log)");
	}
	return 0;
}

/* The options that make pip choose wheels for the image, not the host. */
struct pip_argv {
	const char **v;
	size_t n, cap;
	char *owned[256];
	size_t n_owned;
};

static int av_add(struct pip_argv *a, const char *s, struct ep_error *err)
{
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		const char **v = ep_realloc(a->v, cap * sizeof(*v), err);

		if (!v)
			return -1;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

/* Adds a copy of x (the caller's buffer may be reused). */
static int av_addf(struct pip_argv *a, struct ep_error *err, const char *x)
{
	char *s;

	if (a->n_owned >= EP_ARRAY_SIZE(a->owned))
		return ep_error_set(err, EP_EINVAL, "too many pip arguments");
	s = ep_strdup(x, err);
	if (!s)
		return -1;
	a->owned[a->n_owned++] = s;
	return av_add(a, s, err);
}

static void av_release(struct pip_argv *a)
{
	free(a->v);
	for (size_t i = 0; i < a->n_owned; i++)
		free(a->owned[i]);
}

static int av_target(struct pip_argv *a, const struct ep_pip_target *t, struct ep_error *err)
{
	char abi[16], plat[64];
	int maj, min, gmaj, gmin;

	if (sscanf(t->python, "%d.%d", &maj, &min) != 2 ||
	    sscanf(t->glibc, "%d.%d", &gmaj, &gmin) != 2 || gmaj != 2)
		return ep_error_set(err, EP_EINVAL,
				    "pip target python '%s' glibc '%s' is not usable", t->python,
				    t->glibc);
	snprintf(abi, sizeof(abi), "cp%d%d", maj, min);
	if (av_add(a, "--only-binary=:all:", err) < 0 || av_add(a, "--implementation", err) < 0 ||
	    av_add(a, "cp", err) < 0 || av_add(a, "--python-version", err) < 0 ||
	    av_add(a, t->python, err) < 0 || av_add(a, "--abi", err) < 0 ||
	    av_addf(a, err, abi) < 0 || av_add(a, "--abi", err) < 0 || av_add(a, "abi3", err) < 0 ||
	    av_add(a, "--abi", err) < 0 || av_add(a, "none", err) < 0)
		return -1;
	/* pip takes --platform literally: every manylinux level the image's
	 * glibc can run, newest first, and the legacy aliases. */
	for (int g = gmin; g >= 5; g--) {
		snprintf(plat, sizeof(plat), "manylinux_2_%d_x86_64", g);
		if (av_add(a, "--platform", err) < 0 || av_addf(a, err, plat) < 0)
			return -1;
	}
	if (gmin >= 17 &&
	    (av_add(a, "--platform", err) < 0 || av_add(a, "manylinux2014_x86_64", err) < 0))
		return -1;
	if (gmin >= 12 &&
	    (av_add(a, "--platform", err) < 0 || av_add(a, "manylinux2010_x86_64", err) < 0))
		return -1;
	if (av_add(a, "--platform", err) < 0 || av_add(a, "manylinux1_x86_64", err) < 0)
		return -1;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The file name of a URL's last path segment, percent-decoded; a name that
 * could be a path or an option is refused. */
static char *url_filename(const char *url, struct ep_error *err)
{
	const char *end = url + strcspn(url, "?#");
	const char *slash = end;
	char *out, *o;

	while (slash > url && slash[-1] != '/')
		slash--;
	out = ep_malloc((size_t)(end - slash) + 1, err);
	if (!out)
		return NULL;
	for (o = out; slash < end; slash++) {
		if (*slash == '%' && slash + 2 < end + 0 + 1 && hexval(slash[1]) >= 0 &&
		    hexval(slash[2]) >= 0) {
			*o++ = (char)(hexval(slash[1]) * 16 + hexval(slash[2]));
			slash += 2;
		} else {
			*o++ = *slash;
		}
	}
	*o = '\0';
	if (!*out || *out == '.' || *out == '-' || strchr(out, '/') || strlen(out) < 5 ||
	    strcmp(out + strlen(out) - 4, ".whl")) {
		ep_error_set(err, EP_EINVAL, "'%s' is not the URL of a wheel", url);
		free(out);
		return NULL;
	}
	return out;
}

static int cmp_wheel(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "filename")),
		      json_string_value(json_object_get(*(json_t *const *)b, "filename")));
}

static json_t *sorted_set(json_t *arr, struct ep_error *err)
{
	size_t n = json_array_size(arr);
	json_t **v = ep_calloc(n + 1, sizeof(*v), err);
	json_t *out;

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), cmp_wheel);
	out = json_array();
	for (size_t i = 0; out && i < n; i++) {
		if (i && !strcmp(json_string_value(json_object_get(v[i], "filename")),
				 json_string_value(json_object_get(v[i - 1], "filename")))) {
			ep_error_set(err, EP_EINVAL, "pip resolved wheel '%s' twice",
				     json_string_value(json_object_get(v[i], "filename")));
			json_decref(out);
			free(v);
			return NULL;
		}
		json_array_append(out, v[i]);
	}
	free(v);
	if (!out)
		ep_error_oom(err);
	return out;
}

json_t *ep_pip_resolve(char *const *reqs, size_t n, const struct ep_pip_target *t,
		       const char *work_dir, struct ep_error *err)
{
	cleanup_free char *log = ep_path_join(work_dir, "pip-resolve.log", err);
	cleanup_free char *report = ep_path_join(work_dir, "pip-report.json", err);
	cleanup_free char *target = ep_path_join(work_dir, "pip-target", err);
	cleanup_free char *cache = ep_path_join(work_dir, "pip-cache", err);
	cleanup_free char *cache_env = NULL;
	cleanup_json json_t *doc = NULL, *out = NULL;
	struct pip_argv a = {0};
	char *env[2] = {NULL, NULL};
	json_t *inst, *it;
	size_t i;

	if (!log || !report || !target || !cache || ep_mkdir_p(work_dir, err) < 0)
		return NULL;
	/* The HTTP cache is shared with ep_pip_fetch on the same work_dir:
	 * pip 23 downloads whole wheels to read their metadata, so the
	 * download that follows is served from it. */
	cache_env = ep_asprintf(err, "PIP_CACHE_DIR=%s", cache);
	if (!cache_env)
		return NULL;
	env[0] = cache_env;
	if (av_add(&a, host_python(), err) < 0 || av_add(&a, "-m", err) < 0 ||
	    av_add(&a, "pip", err) < 0 || av_add(&a, "install", err) < 0 ||
	    av_add(&a, "--dry-run", err) < 0 || av_add(&a, "--ignore-installed", err) < 0 ||
	    av_add(&a, "--target", err) < 0 || av_add(&a, target, err) < 0 ||
	    av_add(&a, "--report", err) < 0 || av_add(&a, report, err) < 0 ||
	    av_target(&a, t, err) < 0)
		goto fail;
	for (i = 0; i < n; i++)
		if (av_add(&a, reqs[i], err) < 0)
			goto fail;
	if (run_logged(a.v, env, log, "pip resolve", err) < 0)
		goto fail;
	av_release(&a);
	doc = ep_json_load_file(report, REPORT_MAX, err);
	if (!doc)
		return NULL;
	inst = json_object_get(doc, "install");
	if (!json_is_array(inst))
		return ep_error_set(err, EP_EENV, "pip's report '%s' has no install list", report),
		       NULL;
	out = json_array();
	if (!out)
		return ep_error_oom(err), NULL;
	json_array_foreach (inst, i, it) {
		json_t *di = json_object_get(it, "download_info");
		json_t *md = json_object_get(it, "metadata");
		const char *url = json_string_value(json_object_get(di, "url"));
		const char *name = json_string_value(json_object_get(md, "name"));
		const char *ver = json_string_value(json_object_get(md, "version"));
		json_t *ai = json_object_get(di, "archive_info");
		const char *sha =
		    json_string_value(json_object_get(json_object_get(ai, "hashes"), "sha256"));
		const char *h = json_string_value(json_object_get(ai, "hash"));
		cleanup_free char *fname = NULL;
		json_t *w;

		if (!sha && h && !strncmp(h, "sha256=", 7))
			sha = h + 7;
		if (!url || !name || !ver)
			return ep_error_set(err, EP_EENV,
					    "pip's report '%s': entry %zu is incomplete", report,
					    i),
			       NULL;
		if (!sha || !ep_is_hex64(sha))
			return ep_error_set(err, EP_EINVAL,
					    "the index gives no sha256 for '%s'; envpin pins "
					    "wheels by sha256",
					    url),
			       NULL;
		fname = url_filename(url, err);
		if (!fname)
			return NULL;
		w = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "version", ver, "filename",
			      fname, "url", url, "sha256", sha);
		if (!w || json_array_append_new(out, w) < 0)
			return ep_error_oom(err), NULL;
	}
	if (!json_array_size(out))
		return ep_error_set(err, EP_EENV, "pip resolved no wheels"), NULL;
	return sorted_set(out, err);
fail:
	av_release(&a);
	return NULL;
}

static const char *wstr(json_t *w, const char *k)
{
	return json_string_value(json_object_get(w, k));
}

/* Validates a wheel set as read from a lock (untrusted). */
static int check_set(json_t *wheels, struct ep_error *err)
{
	size_t i;
	json_t *w;

	if (!json_is_array(wheels) || !json_array_size(wheels))
		return ep_error_set(err, EP_EINVAL, "wheel set is not a non-empty array");
	json_array_foreach (wheels, i, w) {
		const char *f = wstr(w, "filename");
		const char *s = wstr(w, "sha256");

		if (!f || !s || !wstr(w, "name") || !wstr(w, "version"))
			return ep_error_set(
			    err, EP_EINVAL,
			    "wheel %zu: name, version, filename and sha256 are required", i);
		if (!ep_is_hex64(s))
			return ep_error_set(err, EP_EINVAL,
					    "wheel '%s': sha256 '%s' is not 64 hex digits", f, s);
		if (!*f || *f == '.' || *f == '-' || strchr(f, '/') || strlen(f) < 5 ||
		    strcmp(f + strlen(f) - 4, ".whl"))
			return ep_error_set(err, EP_EINVAL,
					    "wheel %zu: '%s' is not a wheel file name", i, f);
	}
	return 0;
}

int ep_pip_fetch(struct ep_store *s, json_t *wheels, const struct ep_pip_target *t,
		 const char *work_dir, ep_progress_fn progress, void *pctx, struct ep_error *err)
{
	cleanup_free char *log = ep_path_join(work_dir, "pip-download.log", err);
	cleanup_free char *cache = ep_path_join(work_dir, "pip-cache", err);
	cleanup_free char *cache_env = NULL, *dl = NULL, *ptmp = NULL, *tmp_env = NULL;
	cleanup_free char *what = NULL;
	struct pip_argv a = {0};
	struct ep_txn txn;
	struct ep_watch *watch;
	char *env[3] = {NULL, NULL, NULL};
	size_t i, missing = 0;
	json_t *w;
	int rc = -1;

	if (!log || !cache || check_set(wheels, err) < 0)
		return -1;
	json_array_foreach (wheels, i, w) {
		char d[EP_DIGEST_LEN + 1];

		snprintf(d, sizeof(d), "sha256:%s", wstr(w, "sha256"));
		if (!ep_store_has_blob(s, d))
			missing++;
	}
	if (!missing)
		return 0;
	if (ep_mkdir_p(work_dir, err) < 0 || ep_txn_begin(s, &txn, err) < 0)
		return -1;
	cache_env = ep_asprintf(err, "PIP_CACHE_DIR=%s", cache);
	dl = ep_path_join(txn.dir, "download", err);
	/* pip fetches into a temp dir, then moves to --dest: both are watched */
	ptmp = ep_path_join(work_dir, "pip-tmp", err);
	tmp_env = ep_asprintf(err, "TMPDIR=%s", ptmp ? ptmp : "");
	what = ep_asprintf(err, "pip download (%zu wheel%s)", missing, missing == 1 ? "" : "s");
	if (!cache_env || !dl || !ptmp || !tmp_env || !what || ep_mkdir_p(dl, err) < 0 ||
	    ep_mkdir_p(ptmp, err) < 0)
		goto out;
	env[0] = cache_env;
	env[1] = tmp_env;
	if (av_add(&a, host_python(), err) < 0 || av_add(&a, "-m", err) < 0 ||
	    av_add(&a, "pip", err) < 0 || av_add(&a, "download", err) < 0 ||
	    av_add(&a, "--no-deps", err) < 0 || av_add(&a, "--dest", err) < 0 ||
	    av_add(&a, dl, err) < 0 || av_target(&a, t, err) < 0)
		goto out;
	json_array_foreach (wheels, i, w) {
		char d[EP_DIGEST_LEN + 1];

		snprintf(d, sizeof(d), "sha256:%s", wstr(w, "sha256"));
		if (ep_store_has_blob(s, d))
			continue;
		if (wstr(w, "url") && !strncmp(wstr(w, "url"), "https://", 8)) {
			if (av_add(&a, wstr(w, "url"), err) < 0)
				goto out;
		} else {
			char *req = ep_asprintf(err, "%s==%s", wstr(w, "name"), wstr(w, "version"));

			if (!req || a.n_owned >= EP_ARRAY_SIZE(a.owned)) {
				free(req);
				if (req)
					ep_error_set(err, EP_EINVAL,
						     "too many wheels without a URL");
				goto out;
			}
			a.owned[a.n_owned++] = req;
			if (av_add(&a, req, err) < 0)
				goto out;
		}
	}
	{
		const char *const dirs[] = {dl, ptmp, NULL};
		struct ep_error werr = EP_ERROR_INIT;
		int r;

		/* progress is cosmetic: a watch that cannot start is no failure */
		watch = ep_watch_start(what, dirs, progress, pctx, &werr);
		r = run_logged(a.v, env, log, "pip download", err);
		ep_watch_stop(watch);
		if (r < 0)
			goto out;
	}
	json_array_foreach (wheels, i, w) {
		char want[EP_DIGEST_LEN + 1];
		cleanup_free char *path = NULL, *tmp = NULL;
		cleanup_json json_t *rec = NULL;
		ep_digest have;
		char key[128];

		snprintf(want, sizeof(want), "sha256:%s", wstr(w, "sha256"));
		snprintf(key, sizeof(key), "pip-wheel-%s", wstr(w, "sha256"));
		rec = json_pack("{s:s, s:s}", "digest", want, "filename", wstr(w, "filename"));
		if (!rec) {
			ep_error_oom(err);
			goto out;
		}
		if (ep_store_has_blob(s, want)) {
			if (ep_txn_set_cache(&txn, key, rec, err) < 0)
				goto out;
			continue;
		}
		path = ep_path_join(dl, wstr(w, "filename"), err);
		tmp = ep_asprintf(err, "%s/wheel-%zu", txn.dir, i);
		if (!path || !tmp)
			goto out;
		if (ep_sha256_file(path, have, NULL, err) < 0) {
			ep_error_wrap(err, "pip download did not produce '%s'",
				      wstr(w, "filename"));
			goto out;
		}
		if (strcmp(have, want) != 0) {
			ep_error_set(err, EP_EMISMATCH,
				     "wheel '%s' does not match its pin:\n  pinned:     %s\n  "
				     "downloaded: %s\n  from %s",
				     wstr(w, "filename"), want, have,
				     wstr(w, "url") ? wstr(w, "url") : "the index");
			goto out;
		}
		if (rename(path, tmp) < 0) {
			ep_error_errno(err, EP_EENV, errno, "rename '%s'", path);
			goto out;
		}
		if (ep_txn_add_blob_file(&txn, tmp, want, err) < 0 ||
		    ep_txn_set_cache(&txn, key, rec, err) < 0)
			goto out;
	}
	if (ep_txn_commit(&txn, err) < 0)
		goto out;
	rc = 0;
out:
	av_release(&a);
	ep_txn_abort(&txn);
	return rc;
}

/* ---- unpacking ----------------------------------------------------------- */

struct stage {
	int root; /* O_PATH fd of stage_dir */
	const char *wheel;
	uint64_t bytes;
};

/* A relative path of plain components: no "", ".", ".." or leading "/". */
static int safe_rel(const char *p)
{
	const char *c = p;

	if (!*p || *p == '/' || strlen(p) > MAX_WHEEL_PATH)
		return 0;
	while (*c) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
				return 0;
		c += n;
		if (*c == '/')
			c++;
	}
	return 1;
}

/* Opens directory rel (created 0755 as needed) below the stage root,
 * component by component without following links: the stage holds only
 * what we created, but a wheel must not make us write anywhere else. */
static int stage_dir(struct stage *st, const char *rel, size_t len, struct ep_error *err)
{
	int fd = dup(st->root);
	const char *c = rel, *end = rel + len;

	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "dup");
	while (c < end) {
		size_t n = strcspn(c, "/");
		char name[256];
		int next;

		if (c + n > end)
			n = (size_t)(end - c);
		if (n == 0 || n >= sizeof(name)) {
			close(fd);
			return ep_error_set(err, EP_EINVAL, "wheel '%s': bad path '%.*s'",
					    st->wheel, (int)len, rel);
		}
		memcpy(name, c, n);
		name[n] = '\0';
		if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			close(fd);
			return ep_error_errno(err, EP_EENV, e, "mkdir '%.*s'", (int)len, rel);
		}
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return ep_error_errno(err, EP_EINVAL, errno,
					      "wheel '%s': '%.*s' is not a directory", st->wheel,
					      (int)len, rel);
		fd = next;
		c += n;
		if (c < end && *c == '/')
			c++;
	}
	return fd;
}

static int stage_file(struct stage *st, const char *rel, int exec, struct archive *a, int script,
		      struct ep_error *err)
{
	const char *slash = strrchr(rel, '/');
	cleanup_close int dfd = -1, fd = -1;
	cleanup_free char *buf = NULL;
	int first = 1;

	dfd = slash ? stage_dir(st, rel, (size_t)(slash - rel), err) : dup(st->root);
	if (dfd < 0)
		return slash ? -1 : ep_error_errno(err, EP_EENV, errno, "dup");
	/* A later wheel replaces an earlier one's file (pip does the same:
	 * nvidia-* wheels all carry nvidia/__init__.py). */
	if (unlinkat(dfd, slash ? slash + 1 : rel, 0) < 0 && errno != ENOENT)
		return ep_error_errno(err, EP_EINVAL, errno, "wheel '%s': replace '%s'", st->wheel,
				      rel);
	fd = openat(dfd, slash ? slash + 1 : rel,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, exec ? 0755 : 0644);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", rel);
	if (fchmod(fd, exec ? 0755 : 0644) < 0)
		return ep_error_errno(err, EP_EENV, errno, "chmod '%s'", rel);
	buf = ep_malloc(CHUNK, err);
	if (!buf)
		return -1;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, CHUNK);
		size_t skip = 0;

		if (n < 0)
			return ep_error_set(err, EP_EINVAL, "wheel '%s': entry '%s': %s", st->wheel,
					    rel, archive_error_string(a));
		if (n == 0)
			break;
		st->bytes += (uint64_t)n;
		if (st->bytes > MAX_WHEEL_BYTES)
			return ep_error_set(err, EP_EINVAL, "wheel '%s' expands past %llu bytes",
					    st->wheel, (unsigned long long)MAX_WHEEL_BYTES);
		/* scripts: "#!python" (PEP 427) becomes the image's interpreter */
		if (script && first && n >= 8 && !memcmp(buf, "#!python", 8)) {
			const char *nl = memchr(buf, '\n', (size_t)n);

			skip = nl ? (size_t)(nl - buf) : (size_t)n;
			if (ep_write_all(fd, "#!/usr/bin/python3", 18, err) < 0)
				return -1;
		}
		first = 0;
		if (ep_write_all(fd, buf + skip, (size_t)n - skip, err) < 0)
			return ep_error_wrap(err, "write '%s'", rel);
	}
	return 0;
}

static int write_small(struct stage *st, const char *rel, const char *text, int mode,
		       struct ep_error *err)
{
	const char *slash = strrchr(rel, '/');
	cleanup_close int dfd = -1, fd = -1;

	dfd = slash ? stage_dir(st, rel, (size_t)(slash - rel), err) : dup(st->root);
	if (dfd < 0)
		return -1;
	if (unlinkat(dfd, slash ? slash + 1 : rel, 0) < 0 && errno != ENOENT)
		return ep_error_errno(err, EP_EENV, errno, "replace '%s'", rel);
	fd = openat(dfd, slash ? slash + 1 : rel,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
	if (fd < 0 || fchmod(fd, (mode_t)mode) < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", rel);
	return ep_write_all(fd, text, strlen(text), err);
}

static int ident_ok(const char *s, size_t n, int dots)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (dots && s[i] == '.')))
			return 0;
	return !isdigit((unsigned char)s[0]) && s[0] != '.';
}

/* console_scripts and gui_scripts of entry_points.txt become scripts in
 * usr/local/bin, with the text pip 23 writes (so tools that parse them
 * keep working), and "#!/usr/bin/python3". */
static int entry_points(struct stage *st, const char *ep_rel, struct ep_error *err)
{
	cleanup_close int fd = openat(st->root, ep_rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	cleanup_free char *text = NULL;
	char *line, *save = NULL;
	int in_scripts = 0;
	size_t len;

	if (fd < 0)
		return errno == ENOENT ? 0
				       : ep_error_errno(err, EP_EENV, errno, "open '%s'", ep_rel);
	{
		cleanup_free char *p = NULL;

		if (asprintf(&p, "/proc/self/fd/%d", fd) < 0)
			return ep_error_oom(err);
		text = ep_read_file(p, ENTRY_POINTS_MAX, &len, err);
	}
	if (!text)
		return ep_error_wrap(err, "wheel '%s': entry_points.txt", st->wheel);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq, *name, *val, *colon, *end;
		cleanup_free char *script = NULL, *rel = NULL;
		size_t attr_head;

		while (*line == ' ' || *line == '\t')
			line++;
		end = line + strlen(line);
		while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			*--end = '\0';
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			in_scripts =
			    !strcmp(line, "[console_scripts]") || !strcmp(line, "[gui_scripts]");
			continue;
		}
		if (!in_scripts || !(eq = strchr(line, '=')))
			continue;
		name = line;
		*eq = '\0';
		val = eq + 1;
		for (end = eq; end > name && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		while (*val == ' ' || *val == '\t')
			val++;
		/* "module:attr.sub [extra]" */
		val[strcspn(val, " \t[")] = '\0';
		colon = strchr(val, ':');
		if (!*name || strchr(name, '/') || *name == '.' || strlen(name) > 255 || !colon ||
		    !ident_ok(val, (size_t)(colon - val), 1) ||
		    !ident_ok(colon + 1, strlen(colon + 1), 1))
			return ep_error_set(err, EP_EINVAL,
					    "wheel '%s': entry point '%s = %s' is not valid",
					    st->wheel, name, val);
		*colon = '\0';
		attr_head = strcspn(colon + 1, ".");
		script = ep_asprintf(
		    err,
		    "#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
		    "from %s import %.*s\nif __name__ == '__main__':\n"
		    "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
		    "    sys.exit(%s())\n",
		    val, (int)attr_head, colon + 1, colon + 1);
		rel = ep_asprintf(err, "usr/local/bin/%s", name);
		if (!script || !rel || write_small(st, rel, script, 0755, err) < 0)
			return -1;
	}
	return 0;
}

/* "torch-2.9.0-cp311-cp311-manylinux_2_28_x86_64.whl" -> "torch-2.9.0" (the
 * prefix of its .dist-info and .data directories). */
static int wheel_stem(const char *fname, char *out, size_t outsz)
{
	const char *d1 = strchr(fname, '-');
	const char *d2 = d1 ? strchr(d1 + 1, '-') : NULL;

	if (!d2 || (size_t)(d2 - fname) >= outsz)
		return -1;
	memcpy(out, fname, (size_t)(d2 - fname));
	out[d2 - fname] = '\0';
	return 0;
}

static int install_one(struct stage *st, const char *blob, json_t *w, const char *site,
		       const struct ep_pip_target *t, struct ep_error *err)
{
	const char *fname = wstr(w, "filename");
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	char stem[512], data_dir[600], info_dir[600] = "";
	size_t data_len;
	int ar, rc = -1;

	st->wheel = fname;
	if (!a)
		return ep_error_oom(err);
	if (wheel_stem(fname, stem, sizeof(stem)) < 0) {
		ep_error_set(err, EP_EINVAL, "'%s' is not a wheel file name", fname);
		goto out;
	}
	snprintf(data_dir, sizeof(data_dir), "%s.data/", stem);
	data_len = strlen(data_dir);
	/* seekable: the modes are only in the central directory */
	if (archive_read_support_format_zip_seekable(a) != ARCHIVE_OK ||
	    archive_read_open_filename(a, blob, CHUNK) != ARCHIVE_OK) {
		ep_error_set(err, EP_EINVAL, "wheel '%s': %s", fname, archive_error_string(a));
		goto out;
	}
	while ((ar = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
		const char *name = archive_entry_pathname(ae);
		mode_t ft = archive_entry_filetype(ae);
		cleanup_free char *rel = NULL;
		int script = 0;
		size_t nlen;
		int exec = (archive_entry_mode(ae) & 0111) != 0;

		if (ar < ARCHIVE_WARN) {
			ep_error_set(err, EP_EINVAL, "wheel '%s': %s", fname,
				     archive_error_string(a));
			goto out;
		}
		if (!name || !*name)
			continue;
		nlen = strlen(name);
		if (ft == AE_IFDIR || name[nlen - 1] == '/')
			continue; /* directories come with their files */
		if (ft != AE_IFREG) {
			ep_error_set(err, EP_EINVAL, "wheel '%s': entry '%s' is not a regular file",
				     fname, name);
			goto out;
		}
		if (!safe_rel(name)) {
			ep_error_set(err, EP_EINVAL, "wheel '%s': entry '%s' leaves its directory",
				     fname, name);
			goto out;
		}
		if (!strncmp(name, data_dir, data_len)) {
			const char *sub = name + data_len;
			size_t sl = strcspn(sub, "/");
			const char *rest = sub[sl] ? sub + sl + 1 : "";

			if (!*rest) {
				ep_error_set(err, EP_EINVAL, "wheel '%s': entry '%s' has no place",
					     fname, name);
				goto out;
			}
			if ((sl == 7 && !strncmp(sub, "purelib", 7)) ||
			    (sl == 7 && !strncmp(sub, "platlib", 7))) {
				rel = ep_asprintf(err, "%s/%s", site, rest);
			} else if (sl == 7 && !strncmp(sub, "scripts", 7)) {
				rel = ep_asprintf(err, "usr/local/bin/%s", rest);
				script = 1;
				exec = 1;
			} else if (sl == 7 && !strncmp(sub, "headers", 7)) {
				rel = ep_asprintf(err, "usr/local/include/python%s/%s/%s",
						  t->python, wstr(w, "name"), rest);
			} else if (sl == 4 && !strncmp(sub, "data", 4)) {
				rel = ep_asprintf(err, "usr/local/%s", rest);
			} else {
				ep_error_set(err, EP_EINVAL,
					     "wheel '%s': unknown data directory in '%s'", fname,
					     name);
				goto out;
			}
		} else {
			const char *sl = strchr(name, '/');

			rel = ep_asprintf(err, "%s/%s", site, name);
			/* the top-level NAME-VER.dist-info/METADATA names the dir */
			if (sl && !strcmp(sl, "/METADATA") && sl - name > 10 &&
			    !strncmp(sl - 10, ".dist-info", 10) &&
			    (size_t)(sl - name) < sizeof(info_dir))
				snprintf(info_dir, sizeof(info_dir), "%.*s", (int)(sl - name),
					 name);
		}
		if (!rel)
			goto out;
		if (!safe_rel(rel)) {
			ep_error_set(err, EP_EINVAL, "wheel '%s': entry '%s' leaves its directory",
				     fname, name);
			goto out;
		}
		if (stage_file(st, rel, exec, a, script, err) < 0)
			goto out;
	}
	if (!*info_dir) {
		ep_error_set(err, EP_EINVAL, "wheel '%s' has no .dist-info/METADATA", fname);
		goto out;
	}
	{
		cleanup_free char *inst = ep_asprintf(err, "%s/%s/INSTALLER", site, info_dir);
		cleanup_free char *eps = ep_asprintf(err, "%s/%s/entry_points.txt", site, info_dir);

		if (!inst || !eps || write_small(st, inst, "envpin\n", 0644, err) < 0 ||
		    entry_points(st, eps, err) < 0)
			goto out;
	}
	rc = 0;
out:
	archive_read_free(a);
	return rc;
}

int ep_pip_install(struct ep_store *s, json_t *wheels, const struct ep_pip_target *t,
		   const char *stage_dir_path, struct ep_error *err)
{
	struct stage st = {.root = -1};
	cleanup_free char *site = NULL;
	size_t i;
	json_t *w;
	int rc = -1;

	if (check_set(wheels, err) < 0 || ep_pip_check_version("python", t->python, err) < 0)
		return -1;
	/* Debian's python puts /usr/local/lib/python3.X/dist-packages on
	 * sys.path ahead of its own packages; that is where pip installs too. */
	site = ep_asprintf(err, "usr/local/lib/python%s/dist-packages", t->python);
	if (!site || ep_mkdir_p(stage_dir_path, err) < 0)
		return -1;
	st.root = open(stage_dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st.root < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", stage_dir_path);
	json_array_foreach (wheels, i, w) {
		char d[EP_DIGEST_LEN + 1];
		cleanup_free char *blob = NULL;

		snprintf(d, sizeof(d), "sha256:%s", wstr(w, "sha256"));
		blob = ep_store_blob_path(s, d, err);
		if (!blob)
			goto out;
		if (!ep_store_has_blob(s, d)) {
			ep_error_set(err, EP_EENV, "wheel '%s' (%s) is not in the store",
				     wstr(w, "filename"), d);
			goto out;
		}
		if (install_one(&st, blob, w, site, t, err) < 0)
			goto out;
	}
	rc = 0;
out:
	close(st.root);
	return rc;
}
