#include "debian.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"
#include "watch.h"

#define LOG_TAIL 1500
#define PKGLIST_MAX (4u << 20)

json_t *ep_debian_input(const struct ep_base *base, struct ep_error *err)
{
	json_t *inc = json_array();
	json_t *j;

	if (!inc) {
		ep_error_oom(err);
		return NULL;
	}
	for (size_t i = 0; i < base->n_packages; i++)
		json_array_append_new(inc, json_string(base->packages[i]));
	j = json_pack("{s:s, s:s, s:s, s:s, s:o}", "kind", "debian", "suite", base->suite, "variant",
		      base->variant ? base->variant : "minbase", "mirror",
		      base->mirror ? base->mirror : EP_DEBIAN_DEFAULT_MIRROR, "include", inc);
	if (!j)
		ep_error_oom(err);
	return j;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static json_t *read_pkglist(const char *path, struct ep_error *err)
{
	size_t len, n = 0, cap = 0;
	cleanup_free char *buf = ep_read_file(path, PKGLIST_MAX, &len, err);
	char **lines = NULL, *save = NULL, *line;
	json_t *out;

	if (!buf)
		return NULL;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!*line)
			continue;
		if (n == cap) {
			char **nl = ep_realloc(lines, (cap = cap ? cap * 2 : 256) * sizeof(*nl), err);

			if (!nl) {
				free(lines);
				return NULL;
			}
			lines = nl;
		}
		lines[n++] = line;
	}
	qsort(lines, n, sizeof(*lines), cmp_str);
	out = json_array();
	for (size_t i = 0; out && i < n; i++)
		json_array_append_new(out, json_string(lines[i]));
	free(lines);
	if (!out || json_array_size(out) != n) {
		json_decref(out);
		ep_error_set(err, EP_EENV, "package list '%s' is not valid UTF-8", path);
		return NULL;
	}
	if (n == 0) {
		json_decref(out);
		ep_error_set(err, EP_EENV, "mmdebstrap installed no packages (empty list '%s')", path);
		return NULL;
	}
	return out;
}

/* How one mmdebstrap run differs from the plain build (lib/vendor.h):
 * collect_dir: keep the .debs and copy them there; repo: install from this
 * flat repository of .debs only (no network), writing sources_list as the
 * image's /etc/apt/sources.list so the image says what the original says. */
struct debian_run {
	const char *collect_dir, *repo, *sources_list;
};

static int debian_rootfs_once(const struct ep_base *base, int64_t sde, const char *work_dir,
			      const char *out_tar, const struct debian_run *dr, json_t **packages,
			      struct ep_error *err);

/* verify --vary's clock (lib/vary.c) preloads libfaketime into the host
 * tools; the chroot's processes inherit LD_PRELOAD but would not find the
 * library there, and ld.so's "cannot be preloaded" warning would land in
 * logs inside the image.  So the library is put at the same path in the
 * chroot for the run (their clock is faked too, as the variation means)
 * and removed before the tarball: nothing of it reaches a layer. */
static int faketime_in_chroot(char **in, char **out, struct ep_error *err)
{
	const char *pre = getenv("LD_PRELOAD");
	const char *slash;
	cleanup_free char *dir = NULL;

	*in = *out = NULL;
	if (!pre || !strstr(pre, "faketime") || pre[0] != '/' || strchr(pre, ' ') ||
	    strchr(pre, ':') || strchr(pre, '\'') || !(slash = strrchr(pre, '/')))
		return 0;
	dir = strndup(pre, (size_t)(slash - pre));
	if (!dir)
		return ep_error_oom(err);
	*in = ep_asprintf(err, "--setup-hook=mkdir -p \"$1%s\" && cp '%s' \"$1%s\"", dir, pre, pre);
	*out = ep_asprintf(err, "--customize-hook=rm -f \"$1%s\" && rmdir \"$1%s\"", pre, dir);
	return *in && *out ? 0 : -1;
}

/* What the user sees while mmdebstrap works: the bytes of its chroot
 * (packages fetched into its apt cache and unpacked), found as the
 * mmdebstrap.XXXXXXXXXX directory it makes in $TMPDIR, then the tar. */
static struct ep_watch *watch_mmdebstrap(const struct ep_base *base, const char *out_tar,
					 ep_progress_fn progress, void *pctx)
{
	const char *tmpdir = getenv("TMPDIR");
	cleanup_free char *pattern = NULL, *what = NULL;
	struct ep_error werr = EP_ERROR_INIT;
	struct ep_watch *w;

	if (!progress)
		return NULL;
	pattern = ep_asprintf(&werr, "%s/mmdebstrap.*", tmpdir && *tmpdir ? tmpdir : "/tmp");
	what = ep_asprintf(&werr, "mmdebstrap %s, %zu package%s asked (fetched + unpacked + tar)",
			   base->suite, base->n_packages, base->n_packages == 1 ? "" : "s");
	if (!pattern || !what)
		return NULL;
	{
		cleanup_free char *tar_dir = ep_strdup(out_tar, &werr);
		const char *const dirs[] = {pattern, tar_dir ? dirname(tar_dir) : NULL, NULL};

		if (!tar_dir)
			return NULL;
		/* cosmetic: a watch that cannot start is no failure */
		w = ep_watch_start(what, dirs, progress, pctx, &werr);
	}
	return w;
}

/* A mirror that fails a download once (a reset, a 503) usually serves the
 * second try; the result is checked by the lock either way. */
int ep_debian_rootfs(const struct ep_base *base, int64_t sde, const char *work_dir,
		     const char *out_tar, json_t **packages, ep_progress_fn progress, void *pctx,
		     struct ep_error *err)
{
	static const struct debian_run plain;
	struct ep_watch *w = watch_mmdebstrap(base, out_tar, progress, pctx);
	int rc = debian_rootfs_once(base, sde, work_dir, out_tar, &plain, packages, err);

	if (rc < 0 && !(err && strstr(err->msg, "not installed"))) {
		unlink(out_tar);
		ep_error_clear(err);
		rc = debian_rootfs_once(base, sde, work_dir, out_tar, &plain, packages, err);
	}
	ep_watch_stop(w);
	return rc;
}

int ep_debian_rootfs_offline(const struct ep_base *base, int64_t sde, const char *work_dir,
			     const char *out_tar, const char *repo, const char *sources_list,
			     json_t **packages, struct ep_error *err)
{
	struct debian_run dr = {NULL, repo, sources_list};

	if (!repo || !sources_list) /* the caller's error, when it set one */
		return err && err->code
			   ? -1
			   : ep_error_set(err, EP_EINVAL, "no local repository or sources.list");
	return debian_rootfs_once(base, sde, work_dir, out_tar, &dr, packages, err);
}

int ep_debian_collect_debs(const struct ep_base *base, int64_t sde, const char *work_dir,
			   const char *debs_dir, json_t **packages, struct ep_error *err)
{
	struct debian_run dr = {debs_dir, NULL, NULL};

	if (debian_rootfs_once(base, sde, work_dir, "/dev/null", &dr, packages, err) == 0)
		return 0;
	if (err && strstr(err->msg, "not installed"))
		return -1;
	ep_error_clear(err);
	return debian_rootfs_once(base, sde, work_dir, "/dev/null", &dr, packages, err);
}

static int debian_rootfs_once(const struct ep_base *base, int64_t sde, const char *work_dir,
			      const char *out_tar, const struct debian_run *dr, json_t **packages,
			      struct ep_error *err)
{
	cleanup_free char *collect = NULL, *lists = NULL, *repo_line = NULL, *put_sources = NULL;
	cleanup_free char *get_sources = NULL;
	cleanup_free char *ft_in = NULL, *ft_out = NULL;
	cleanup_free char *log = ep_path_join(work_dir, "mmdebstrap.log", err);
	cleanup_free char *list = ep_path_join(work_dir, "packages.txt", err);
	cleanup_free char *variant = NULL, *include = NULL, *hook = NULL, *sde_env = NULL;
	size_t inc_len = 1;
	const char *argv[24];
	int n = 0, status;

	if (!log || !list)
		return -1;
	for (size_t i = 0; i < base->n_packages; i++)
		inc_len += strlen(base->packages[i]) + 1;
	include = ep_calloc(1, inc_len + 16, err);
	if (!include)
		return -1;
	strcpy(include, "--include=");
	for (size_t i = 0; i < base->n_packages; i++) {
		if (i)
			strcat(include, ",");
		strcat(include, base->packages[i]);
	}
	variant = ep_asprintf(err, "--variant=%s", base->variant ? base->variant : "minbase");
	/* The hook runs inside mmdebstrap with the chroot as $1; the list
	 * path is ours (no user input reaches this string). */
	hook = ep_asprintf(err,
			   "--customize-hook=chroot \"$1\" dpkg-query -W -f '${Package}=${Version}:${Architecture}\\n' > '%s'",
			   list);
	sde_env = ep_asprintf(err, "SOURCE_DATE_EPOCH=%lld", (long long)sde);
	if (!variant || !hook || !sde_env)
		return -1;
	argv[n++] = "mmdebstrap";
	argv[n++] = "--quiet";
	argv[n++] = variant;
	if (base->n_packages)
		argv[n++] = include;
	argv[n++] = hook;
	/* openssh-server's postinst generates random host keys: a secret in a
	 * shared image and a different digest on every build.  Images generate
	 * them at first start (docs/run.md, --ssh). */
	argv[n++] = "--customize-hook=rm -f \"$1\"/etc/ssh/ssh_host_*_key \"$1\"/etc/ssh/ssh_host_*_key.pub";
	if (dr->collect_dir) {
		/* the paths are ours (a scratch dir of the store), quoted */
		/* the .debs and the archive's indexes apt used (InRelease,
		 * Packages), the evidence that the .debs are Debian's */
		collect = ep_asprintf(err, "--customize-hook=sync-out /var/cache/apt/archives '%s/debs'",
				      dr->collect_dir);
		lists = ep_asprintf(err, "--customize-hook=sync-out /var/lib/apt/lists '%s/lists'",
				    dr->collect_dir);
		/* what the online build's /etc/apt/sources.list says (a stage's
		 * base has no layer in the lock to read it from) */
		get_sources = ep_asprintf(
		    err, "--customize-hook=download /etc/apt/sources.list '%s/sources.list'",
		    dr->collect_dir);
		if (!collect || !lists || !get_sources)
			return -1;
		argv[n++] = get_sources;
		argv[n++] = "--skip=download/empty";
		argv[n++] = "--skip=essential/unlink";
		argv[n++] = collect;
		argv[n++] = lists;
	}
	if (dr->repo) {
		/* the .debs were checked against the lock's sha256 (lib/vendor.c):
		 * the repository needs no signature; docs/vendor.md */
		repo_line = ep_asprintf(err, "deb [trusted=yes] copy://%s %s main", dr->repo, base->suite);
		put_sources = ep_asprintf(err, "--customize-hook=cp '%s' \"$1/etc/apt/sources.list\"",
					  dr->sources_list);
		if (!repo_line || !put_sources)
			return -1;
		argv[n++] = "--skip=check/signed-by";
		argv[n++] = put_sources;
	}
	if (faketime_in_chroot(&ft_in, &ft_out, err) < 0)
		return -1;
	if (ft_in) {
		argv[n++] = ft_in;
		argv[n++] = ft_out;
	}
	argv[n++] = dr->collect_dir ? "--format=null" : "--format=tar";
	argv[n++] = base->suite;
	argv[n++] = out_tar;
	argv[n++] = dr->repo ? repo_line : base->mirror ? base->mirror : EP_DEBIAN_DEFAULT_MIRROR;
	argv[n] = NULL;

	{
		char *env[] = {sde_env, NULL};

		if (ep_spawn_logged((const char *const *)argv, env, log, &status, err) < 0)
			return -1;
	}
	if (status != 0) {
		cleanup_free char *tail = ep_log_tail(log, LOG_TAIL);

		if (status == 127)
			return ep_error_set(err, EP_EENV,
					    "mmdebstrap is not installed (run 'make deps' or apt-get install mmdebstrap)");
		return ep_error_set(err, EP_EENV, "mmdebstrap %s %s failed (exit status %d); end of its log:\n%s",
				    base->suite, base->mirror ? base->mirror : EP_DEBIAN_DEFAULT_MIRROR, status,
				    tail ? tail : "(no log)");
	}
	*packages = read_pkglist(list, err);
	return *packages ? 0 : -1;
}

char *ep_debian_diff(json_t *locked, json_t *now)
{
	size_t i = 0, j = 0;

	while (i < json_array_size(locked) || j < json_array_size(now)) {
		const char *a = json_string_value(json_array_get(locked, i));
		const char *b = json_string_value(json_array_get(now, j));
		size_t na = a ? strcspn(a, "=") : 0, nb = b ? strcspn(b, "=") : 0;
		int c;

		if (a && b && !strcmp(a, b)) {
			i++, j++;
			continue;
		}
		if (!a)
			return ep_asprintf(NULL, "the mirror now also installs %s", b);
		if (!b)
			return ep_asprintf(NULL, "the mirror no longer installs %s", a);
		c = strncmp(a, b, na < nb ? na : nb);
		if (c == 0 && na == nb)
			return ep_asprintf(NULL, "package %.*s: the lock has %s, the mirror now serves %s",
					   (int)na, a, a + na + 1, b + nb + 1);
		if (c < 0 || (c == 0 && na < nb))
			return ep_asprintf(NULL, "the mirror no longer installs %s", a);
		return ep_asprintf(NULL, "the mirror now also installs %s", b);
	}
	return NULL;
}
