/* lib/runcver.c - runc's version and the CVE-2024-21626 rule (lib/runcver.h). */
#include "runcver.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apt.h"
#include "isolation.h"
#include "util.h"

#define RUNC_OUT_MAX 4096
/* STORE/cache/KEY.json, as the store's other small records (docs/store.md) */
#define CACHE_NAME "runc-version.json"

/* Distribution builds known to carry the backported fix: the package
 * version on the `commit:` line, for one upstream version. */
static const struct {
	const char *upstream; /* the "runc version" of the build */
	const char *fixed;    /* first package version with the fix */
} backports[] = {
    /* Debian 12 bookworm, DSA-5615-1 (changelog: "CVE-2024-21626: several
     * container breakouts due to internally leaked fds") */
    {"1.1.5+ds1", "1.1.5+ds1-1+deb12u1"},
};

/* The value of the line of text that starts with key, copied into out. */
static int line_value(const char *text, const char *key, char *out, size_t outsz)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *e;
		size_t n;

		if (strncmp(l, key, kl))
			continue;
		l += kl;
		e = l + strcspn(l, "\r\n");
		while (e > l && isspace((unsigned char)e[-1]))
			e--;
		n = (size_t)(e - l);
		if (n == 0 || n >= outsz)
			return -1;
		memcpy(out, l, n);
		out[n] = '\0';
		return 0;
	}
	return -1;
}

int ep_runc_version_parse(const char *text, struct ep_runc_version *v, struct ep_error *err)
{
	memset(v, 0, sizeof(*v));
	if (line_value(text, "runc version ", v->version, sizeof(v->version)) < 0 ||
	    sscanf(v->version, "%d.%d.%d", &v->major, &v->minor, &v->patch) != 3 ||
	    !isdigit((unsigned char)v->version[0]))
		return ep_error_set(err, EP_EENV,
				    "'runc --version' printed no 'runc version X.Y.Z' line");
	if (line_value(text, "commit: ", v->commit, sizeof(v->commit)) < 0)
		v->commit[0] = '\0';
	return 0;
}

/* One dpkg version order for the whole tool: the apt resolver's. */
int ep_debian_version_cmp(const char *a, const char *b)
{
	return ep_apt_vercmp(a, b);
}

int ep_runc_cve_2024_21626_fixed(const struct ep_runc_version *v)
{
	size_t vl = strlen(v->version);

	if (v->major != 1)
		return v->major > 1;
	if (v->minor != 1)
		return v->minor > 1;
	if (v->patch >= 12)
		return 1;
	/* a distribution's package version on the commit line */
	for (size_t i = 0; i < EP_ARRAY_SIZE(backports); i++)
		if (!strcmp(v->version, backports[i].upstream) &&
		    !strncmp(v->commit, v->version, vl) && v->commit[vl] == '-' &&
		    ep_debian_version_cmp(v->commit, backports[i].fixed) >= 0)
			return 1;
	return 0;
}

/* The runc execvp would start: the first executable "runc" on PATH. */
static int find_runc(char *out, size_t outsz, struct stat *st)
{
	if (ep_find_on_path("runc", out, outsz) < 0 || stat(out, st) < 0)
		return -1;
	return 0;
}

/* Output of `runc --version` (bounded); caller frees. */
static char *run_version(const char *runc, struct ep_error *err)
{
	char *buf = malloc(RUNC_OUT_MAX + 1);
	size_t got = 0;
	int p[2], st;
	pid_t pid;

	if (!buf)
		return ep_error_oom(err), NULL;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(buf);
		return ep_error_errno(err, EP_EENV, errno, "pipe"), NULL;
	}
	pid = fork();
	if (pid < 0) {
		ep_error_errno(err, EP_EENV, errno, "fork");
		close(p[0]);
		close(p[1]);
		free(buf);
		return NULL;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (nul < 0 || dup2(nul, 0) < 0 || dup2(p[1], 1) < 0 || dup2(nul, 2) < 0)
			_exit(126);
		ep_close_inherited_fds();
		execl(runc, "runc", "--version", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], buf + got, RUNC_OUT_MAX - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == RUNC_OUT_MAX)
			break;
	}
	close(p[0]);
	buf[got] = '\0';
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = -1;
			break;
		}
	if (st != 0) {
		free(buf);
		ep_error_set(err, EP_EENV, "'%s --version' failed (status %d)", runc,
			     st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return NULL;
	}
	return buf;
}

int ep_runc_version(const char *store_root, struct ep_runc_version *v, struct ep_error *err)
{
	static struct ep_runc_version once;
	static int have_once;
	char runc[PATH_MAX], key[PATH_MAX + 160];
	struct stat st;
	cleanup_free char *cdir = NULL, *cache = NULL, *cached = NULL, *out = NULL;
	int kl;

	if (have_once) {
		*v = once;
		return 0;
	}
	if (find_runc(runc, sizeof(runc), &st) < 0)
		return ep_error_set(err, EP_EENV, "runc is not installed (not on PATH)");
	/* an upgrade changes at least one of these */
	kl = snprintf(key, sizeof(key), "%s %ju %ju %jd %jd.%09ld %jd.%09ld", runc,
		      (uintmax_t)st.st_dev, (uintmax_t)st.st_ino, (intmax_t)st.st_size,
		      (intmax_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (intmax_t)st.st_ctim.tv_sec,
		      st.st_ctim.tv_nsec);
	if (kl < 0 || (size_t)kl >= sizeof(key))
		return ep_error_set(err, EP_EENV, "runc path too long");
	if (store_root) {
		struct ep_error ignore = EP_ERROR_INIT;
		cleanup_json json_t *rec = NULL;
		const char *ck, *co;

		cdir = ep_path_join(store_root, "cache", err);
		cache = cdir ? ep_path_join(cdir, CACHE_NAME, err) : NULL;
		if (!cache)
			return -1;
		cached = ep_read_file(cache, 4 * RUNC_OUT_MAX + sizeof(key), NULL, &ignore);
		rec = cached ? json_loads(cached, 0, NULL) : NULL;
		ck = json_string_value(json_object_get(rec, "binary"));
		co = json_string_value(json_object_get(rec, "output"));
		if (ck && co && !strcmp(ck, key) && ep_runc_version_parse(co, v, &ignore) == 0)
			goto done;
	}
	out = run_version(runc, err);
	if (!out)
		return -1;
	if (ep_runc_version_parse(out, v, err) < 0)
		return ep_error_wrap(err, "%s", runc);
	if (cache) {
		/* a cache that cannot be written only costs the next run 6 ms */
		struct ep_error ignore = EP_ERROR_INIT;
		cleanup_json json_t *rec = json_pack("{s:s,s:s}", "binary", key, "output", out);
		cleanup_free char *data =
		    rec ? json_dumps(rec, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

		if (data && (mkdir(cdir, 0755) == 0 || errno == EEXIST))
			(void)ep_write_file_atomic(cache, data, strlen(data), 0644, &ignore);
	}
done:
	once = *v;
	have_once = 1;
	return 0;
}

int ep_runc_check(const char *store_root, struct ep_runc_version *v, struct ep_error *err)
{
	struct ep_runc_version local;
	const char *allow = getenv("ENVPIN_ALLOW_OLD_RUNC");

	if (!v)
		v = &local;
	if (ep_runc_version(store_root, v, err) < 0)
		return -1;
	if (ep_runc_cve_2024_21626_fixed(v) || (allow && !strcmp(allow, "1")))
		return 0;
	return ep_error_set(
	    err, EP_EENV,
	    "runc %s%s%s%s lacks the fix for CVE-2024-21626 (a container can reach "
	    "the host through a leaked fd): upgrade runc to 1.1.12 or later (Debian 12: "
	    "1.1.5+ds1-1+deb12u1), or set ENVPIN_ALLOW_OLD_RUNC=1 if your build has "
	    "the fix backported",
	    v->version, v->commit[0] ? " (commit " : "", v->commit, v->commit[0] ? ")" : "");
}

json_t *ep_runc_version_json(const struct ep_runc_version *v)
{
	return json_pack("{s:s,s:s,s:s,s:b}", "name", "runc", "version", v->version, "commit",
			 v->commit, "cve_2024_21626_fixed", ep_runc_cve_2024_21626_fixed(v));
}
