#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "source-id.h"
#include "util.h"

json_t *ep_source_record(struct ep_error *err)
{
	json_t *j = json_pack("{s:s, s:s, s:b, s:s?}", "version", EP_VERSION, "commit",
			      EP_SOURCE_COMMIT, "dirty", EP_SOURCE_DIRTY, "tarball_sha256",
			      EP_SOURCE_TARBALL_SHA256[0] ? EP_SOURCE_TARBALL_SHA256 : NULL);

	if (!j)
		ep_error_oom(err);
	return j;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "?";
}

char *ep_source_differs(json_t *lock)
{
	json_t *rec = json_object_get(lock, "envpin_source");
	const char *v = json_string_value(json_object_get(lock, "envpin"));

	if (!json_is_object(rec))
		return ep_asprintf(NULL,
				   "the lock was written by envpin %s, which did not record its "
				   "source; this is envpin %s (commit %.12s%s)",
				   v ? v : "?", EP_VERSION, EP_SOURCE_COMMIT,
				   EP_SOURCE_DIRTY ? ", modified" : "");
	if (v && !strcmp(v, EP_VERSION) && !strcmp(str(rec, "commit"), EP_SOURCE_COMMIT) &&
	    json_is_true(json_object_get(rec, "dirty")) == !!EP_SOURCE_DIRTY &&
	    !strcmp(str(rec, "tarball_sha256"),
		    EP_SOURCE_TARBALL_SHA256[0] ? EP_SOURCE_TARBALL_SHA256 : "?"))
		return NULL;
	return ep_asprintf(NULL,
			   "the lock was written by envpin %s (commit %.12s%s), this is envpin %s "
			   "(commit %.12s%s)",
			   v ? v : "?", str(rec, "commit"),
			   json_is_true(json_object_get(rec, "dirty")) ? ", modified" : "",
			   EP_VERSION, EP_SOURCE_COMMIT, EP_SOURCE_DIRTY ? ", modified" : "");
}

int ep_source_tarball(const char *path, ep_digest out, struct ep_error *err)
{
	char prefix[64];
	const char *argv[] = {"git",	      "-C",   EP_SOURCE_DIR,	"archive",
			      "--format=tar", prefix, EP_SOURCE_COMMIT, NULL};
	cleanup_close int fd = -1;
	pid_t pid;
	int st;

	if (!strcmp(EP_SOURCE_COMMIT, "unknown"))
		return ep_error_set(
		    err, EP_EENV,
		    "this envpin was not built from a git checkout: no source tarball");
	snprintf(prefix, sizeof(prefix), "--prefix=envpin-%.12s/", EP_SOURCE_COMMIT);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", path);
	pid = fork();
	if (pid < 0)
		return ep_error_errno(err, EP_EENV, errno, "fork");
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		execvp("git", (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return ep_error_errno(err, EP_EENV, errno, "wait for git archive");
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return ep_error_set(
		    err, EP_EENV,
		    "git archive %.12s in '%s' failed (status %d): the checkout envpin "
		    "was built in is needed for its source tarball",
		    EP_SOURCE_COMMIT, EP_SOURCE_DIR, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	if (ep_sha256_file(path, out, NULL, err) < 0)
		return -1;
	if (strcmp(out, EP_SOURCE_TARBALL_SHA256))
		return ep_error_set(
		    err, EP_EMISMATCH,
		    "the source tarball of commit %.12s hashes to %s, not %s as when "
		    "envpin was built (another git version?)",
		    EP_SOURCE_COMMIT, out, EP_SOURCE_TARBALL_SHA256);
	return 0;
}
