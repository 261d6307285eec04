/* lib/vary.c - verify --rebuild --vary: rebuild under a varied host and say
 * which variation, if any, changed the bytes (lib/rebuild.h, docs/verify.md).
 *
 * Each rebuild runs in a forked child, so that what a variation changes in
 * the process (umask, TZ, locale, a UTS or mount namespace, CPU affinity,
 * the environment host tools inherit) dies with it.  The child sends the
 * rebuild report back through a pipe as JSON. */
#include "rebuild.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "proc.h"
#include "runstep.h"
#include "util.h"
#include "vendor.h"

#define REPORT_MAX (16u << 20)
#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
/* where run and apt steps see it (a read-only bind mount; its mount point is
 * scaffolding, never part of a layer: lib/runstep.c) */
#define FAKETIME_IN_STEP "/.envpin-vary/libfaketime.so.1"

static char *const step_env[] = {"LD_PRELOAD=" FAKETIME_IN_STEP, "FAKETIME=+508d", "NO_FAKE_STAT=1",
				 "FAKETIME_DONT_FAKE_MONOTONIC=1"};
static const struct ep_runstep_mount step_mount = {FAKETIME_LIB, FAKETIME_IN_STEP};

static const struct {
	unsigned bit;
	const char *name, *setting;
} vars[] = {
    {EP_VARY_BUILDDIR, "builddir", "the build context copied to another directory"},
    {EP_VARY_UMASK, "umask", "umask 0002, the context copy group-writable as its checkout"},
    {EP_VARY_TZ, "tz", "TZ=Asia/Tokyo"},
    {EP_VARY_LOCALE, "locale", "LANG=LC_ALL=fr_FR.UTF-8"},
    {EP_VARY_HOSTNAME, "hostname", "hostname envpin-vary-PID (a new UTS namespace)"},
    {EP_VARY_FILEORDER, "fileorder", "directory entries shuffled (disorderfs over the context)"},
    {EP_VARY_CLOCK, "clock",
     "libfaketime +508 days for host tools and run/apt steps (NO_FAKE_STAT=1)"},
    {EP_VARY_THREADS, "threads", "one CPU, one thread (ENVPIN_THREADS=1, sched_setaffinity)"},
};
#define N_VARS (sizeof(vars) / sizeof(vars[0]))

int ep_vary_parse(const char *list, unsigned *out, struct ep_error *err)
{
	cleanup_free char *copy = ep_strdup(list, err);
	char *save = NULL, *w;

	*out = 0;
	if (!copy)
		return -1;
	for (w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		size_t i;

		if (!strcmp(w, "all")) {
			*out |= EP_VARY_ALL;
			continue;
		}
		for (i = 0; i < N_VARS && strcmp(vars[i].name, w); i++)
			;
		if (i == N_VARS)
			return ep_error_set(
			    err, EP_EINVAL,
			    "unknown variation '%s' (all, builddir, umask, tz, locale, "
			    "hostname, fileorder, clock, threads)",
			    w);
		*out |= vars[i].bit;
	}
	return 0;
}

/* Why a variation cannot be applied here, or NULL. */
static const char *cannot(unsigned bit)
{
	if (bit == EP_VARY_HOSTNAME && geteuid() != 0)
		return "needs root (a new UTS namespace)";
	if (bit == EP_VARY_FILEORDER) {
		if (geteuid() != 0)
			return "needs root (a FUSE mount in a private mount namespace)";
		if (access("/dev/fuse", R_OK | W_OK) < 0)
			return "no /dev/fuse";
		if (access("/usr/bin/disorderfs", X_OK) < 0)
			return "disorderfs is not installed (apt-get install disorderfs)";
	}
	if (bit == EP_VARY_CLOCK && access(FAKETIME_LIB, R_OK) < 0)
		return "libfaketime is not installed (apt-get install faketime)";
	return NULL;
}

/* In the child: the variations of `set`, applied to this process and what it
 * starts.  *ctx_dir gets a scratch dir to release after the rebuild. */
static int apply(struct ep_store *s, unsigned set, struct ep_build_opts *bo, char **scratch,
		 int *scratch_fd, char **mnt, char **m_out, char **l_out, struct ep_error *err)
{
	if (set & EP_VARY_THREADS) {
		cpu_set_t cs;

		if (sched_getaffinity(0, sizeof(cs), &cs) == 0) {
			for (int c = 0; c < CPU_SETSIZE; c++) {
				if (CPU_ISSET(c, &cs)) {
					CPU_ZERO(&cs);
					CPU_SET(c, &cs);
					break;
				}
			}
			sched_setaffinity(0, sizeof(cs), &cs);
		}
		setenv("ENVPIN_THREADS", "1", 1);
		setenv("ENVPIN_UNPACK_THREADS", "1", 1);
		setenv("ENVPIN_VERIFY_THREADS", "1", 1);
	}
	if (set & EP_VARY_UMASK)
		umask(0002);
	if (set & EP_VARY_TZ) {
		setenv("TZ", "Asia/Tokyo", 1);
		tzset();
	}
	if (set & EP_VARY_LOCALE) {
		setenv("LANG", "fr_FR.UTF-8", 1);
		setenv("LC_ALL", "fr_FR.UTF-8", 1);
		setlocale(LC_ALL, "");
	}
	if (set & EP_VARY_HOSTNAME) {
		char h[64];

		snprintf(h, sizeof(h), "envpin-vary-%ld", (long)getpid());
		if (unshare(CLONE_NEWUTS) < 0 || sethostname(h, strlen(h)) < 0)
			return ep_error_errno(err, EP_EENV, errno, "vary hostname");
	}
	if (set & EP_VARY_CLOCK) {
		/* the build's clock: host tools started from here (mmdebstrap,
		 * dpkg, pip) see it; envpin's own reads (stat of the context,
		 * the store) do not, and NO_FAKE_STAT keeps stat() true for them */
		setenv("LD_PRELOAD", FAKETIME_LIB, 1);
		setenv("FAKETIME", "+508d", 1);
		setenv("NO_FAKE_STAT", "1", 1);
		setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
		/* and run and apt steps: their dynamic programs (a static one,
		 * busybox, ignores LD_PRELOAD) */
		bo->step_env = step_env;
		bo->n_step_env = sizeof(step_env) / sizeof(step_env[0]);
		bo->step_mounts = &step_mount;
		bo->n_step_mounts = 1;
	}
	if (set & (EP_VARY_BUILDDIR | EP_VARY_UMASK | EP_VARY_FILEORDER)) {
		cleanup_free char *ctx = NULL;

		*scratch = ep_store_scratch_dir(s, "scratch", scratch_fd, err);
		if (!*scratch || !(ctx = ep_path_join(*scratch, "elsewhere", err)))
			return -1;
		if (ep_context_copy(bo->manifest_path, bo->lock_path, ctx, 1, m_out, l_out, err) <
		    0)
			return -1;
		if (set & EP_VARY_UMASK) {
			/* a checkout made under umask 0002: group-writable files
			 * and dirs, exec bits as they were */
			cleanup_free char *log = ep_path_join(*scratch, "chmod.log", err);
			const char *argv[] = {"chmod", "-R", "g+w", ctx, NULL};
			int st;

			if (!log || ep_spawn_logged(argv, NULL, log, &st, err) < 0)
				return -1;
			if (st != 0)
				return ep_error_set(err, EP_EENV, "chmod -R g+w '%s' failed", ctx);
		}
		if (set & EP_VARY_FILEORDER) {
			cleanup_free char *log = ep_path_join(*scratch, "disorderfs.log", err);
			cleanup_free char *m2 = NULL, *l2 = NULL;
			const char *argv[] = {"disorderfs",
					      "--multi-user=yes",
					      "--shuffle-dirents=yes",
					      "--quiet",
					      ctx,
					      NULL,
					      NULL};
			int st;

			*mnt = ep_path_join(*scratch, "shuffled", err);
			if (!log || !*mnt || ep_mkdir_p(*mnt, err) < 0)
				return -1;
			/* the mount lives in this child's namespace only */
			if (unshare(CLONE_NEWNS) < 0 ||
			    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
				return ep_error_errno(err, EP_EENV, errno,
						      "vary fileorder: mount namespace");
			argv[5] = *mnt;
			if (ep_spawn_logged(argv, NULL, log, &st, err) < 0)
				return -1;
			if (st != 0) {
				cleanup_free char *tail = ep_log_tail(log, 600);

				free(*mnt);
				*mnt = NULL;
				return ep_error_set(err, EP_EENV,
						    "disorderfs failed (status %d): %s", st,
						    tail ? tail : "");
			}
			m2 = ep_asprintf(err, "%s%s", *mnt, *m_out + strlen(ctx));
			l2 = ep_asprintf(err, "%s%s", *mnt, *l_out + strlen(ctx));
			if (!m2 || !l2)
				return -1;
			free(*m_out);
			free(*l_out);
			*m_out = steal_pointer(&m2);
			*l_out = steal_pointer(&l2);
		}
		bo->manifest_path = *m_out;
		bo->lock_path = *l_out;
	}
	return 0;
}

/* One rebuild under the variations of set, in a child; *out gets
 * {"vary": [...], "report": {...}} or {"vary": [...], "error": MSG}. */
static int run_one(struct ep_store *s, const char *layout, const char *digest,
		   const struct ep_build_opts *o, unsigned set, json_t **out, struct ep_error *err)
{
	int pfd[2];
	pid_t pid;
	cleanup_free char *buf = NULL;
	size_t len = 0, cap = 1 << 16;
	cleanup_json json_t *names = json_array(), *res = NULL;
	int st;

	if (!names)
		return ep_error_oom(err);
	for (size_t i = 0; i < N_VARS; i++)
		if (set & vars[i].bit)
			json_array_append_new(names, json_string(vars[i].name));
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ep_error_errno(err, EP_EENV, errno, "pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return ep_error_errno(err, EP_EENV, errno, "fork");
	}
	if (pid == 0) {
		struct ep_error cerr = EP_ERROR_INIT;
		struct ep_build_opts bo = *o;
		char *scratch = NULL, *mnt = NULL, *m = NULL, *l = NULL, *text;
		int sfd = -1;
		json_t *rep = NULL, *msg;

		close(pfd[0]);
		bo.progress = NULL;
		if (apply(s, set, &bo, &scratch, &sfd, &mnt, &m, &l, &cerr) == 0)
			ep_rebuild_compare(s, layout, digest, &bo, &rep, &cerr);
		if (mnt)
			umount2(mnt, MNT_DETACH);
		ep_store_scratch_release(scratch, sfd);
		msg = rep ? json_pack("{s:o}", "report", rep)
			  : json_pack("{s:s}", "error", cerr.msg[0] ? cerr.msg : "rebuild failed");
		text = msg ? ep_json_canonical(msg, NULL, NULL) : NULL;
		if (text)
			ep_write_all(pfd[1], text, strlen(text), NULL);
		_exit(text ? 0 : 1);
	}
	close(pfd[1]);
	buf = ep_malloc(cap, err);
	while (buf) {
		ssize_t k;

		if (len == cap) {
			char *nb = cap >= REPORT_MAX ? NULL : ep_realloc(buf, cap * 2, err);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		k = read(pfd[0], buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!buf)
		return -1;
	res = len ? ep_json_loadb(buf, len, REPORT_MAX, "vary report", err) : NULL;
	if (!res)
		return ep_error_set(err, EP_EENV, "the rebuild under variation %s died (status %d)",
				    json_string_value(json_array_get(names, 0)) ?: "none", st);
	json_object_set(res, "vary", names);
	*out = steal_pointer(&res);
	return 0;
}

static const char *verdict_of(json_t *run)
{
	const char *v =
	    json_string_value(json_object_get(json_object_get(run, "report"), "verdict"));

	return v ? v : "error";
}

int ep_rebuild_vary(struct ep_store *s, const char *layout, const char *digest,
		    const struct ep_build_opts *o, unsigned which, json_t **report,
		    struct ep_error *err)
{
	cleanup_json json_t *rep =
	    json_pack("{s:[], s:[], s:[]}", "variations", "runs", "changed_by");
	json_t *runs, *changed, *all = NULL, *r;
	unsigned set = 0;
	const char *verdict;
	char *text = NULL;

	if (!rep)
		return ep_error_oom(err);
	runs = json_object_get(rep, "runs");
	changed = json_object_get(rep, "changed_by");
	for (size_t i = 0; i < N_VARS; i++) {
		const char *why;

		if (!(which & vars[i].bit))
			continue;
		why = cannot(vars[i].bit);
		json_array_append_new(json_object_get(rep, "variations"),
				      json_pack("{s:s, s:s, s:s?}", "name", vars[i].name, "setting",
						vars[i].setting, "skipped", why));
		if (!why)
			set |= vars[i].bit;
	}
	/* all at once: one rebuild when nothing varies the bytes */
	if (run_one(s, layout, digest, o, set, &all, err) < 0)
		return -1;
	json_array_append_new(runs, all);
	if (!strcmp(verdict_of(all), "identical")) {
		verdict = "identical";
		text = ep_asprintf(
		    err, "the rebuild gives the same bytes under every variation at once");
	} else if (!strcmp(verdict_of(all), "error")) {
		/* a build that fails under the variations is a finding, not a
		 * verdict on the bytes: name it; narrow it down with a LIST */
		verdict = "error";
		text = ep_asprintf(err,
				   "the rebuild failed under the variations: %s (run --vary=NAME "
				   "for one at a time)",
				   json_string_value(json_object_get(all, "error")) ?: "?");
	} else {
		json_t *control = NULL;

		if (run_one(s, layout, digest, o, 0, &control, err) < 0)
			return -1;
		json_array_append_new(runs, control);
		if (strcmp(verdict_of(control), "identical")) {
			verdict = "not-reproducible";
			text =
			    ep_asprintf(err,
					"the rebuild differs even on the unvaried host (%s): no "
					"variation can be blamed; see the rebuild without --vary",
					verdict_of(control));
		} else {
			for (size_t i = 0; i < N_VARS; i++) {
				if (!(set & vars[i].bit))
					continue;
				if (run_one(s, layout, digest, o, vars[i].bit, &r, err) < 0)
					return -1;
				json_array_append_new(runs, r);
				if (strcmp(verdict_of(r), "identical"))
					json_array_append_new(changed, json_string(vars[i].name));
			}
			verdict = "varies";
			if (json_array_size(changed)) {
				cleanup_free char *list = ep_json_canonical(changed, NULL, err);

				text = ep_asprintf(
				    err,
				    "identical on the unvaried host, but these variations "
				    "change the bytes: %s",
				    list ? list : "?");
			} else {
				text = ep_asprintf(
				    err, "identical on the unvaried host and under each variation "
					 "alone, but not under all at once: a combination changes "
					 "the bytes");
			}
		}
	}
	if (!text)
		return -1;
	json_object_set_new(rep, "verdict", json_string(verdict));
	json_object_set_new(rep, "explanation", json_string(text));
	free(text);
	*report = steal_pointer(&rep);
	return 0;
}
