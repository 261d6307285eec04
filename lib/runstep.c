/* lib/runstep.c - a command in the image being built (API and sandbox in
 * runstep.h).  The OCI spec is envpin's launcher's (ep_runtime_spec), then
 * narrowed for a build: its own network namespace, no host /etc files. */
#include "runstep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolation.h"
#include "jsonutil.h"
#include "run/internal.h"
#include "runcver.h"
#include "runtime.h"
#include "strvec.h"
#include "util.h"

#define TAIL_BYTES (16u << 10)

void ep_runstep_result_release(struct ep_runstep_result *r)
{
	if (!r)
		return;
	free(r->tail);
	free(r->log);
	r->tail = r->log = NULL;
}

static int parse_user(const char *s, uid_t *uid, gid_t *gid)
{
	unsigned long u, g;
	char *e;

	if (!s) {
		*uid = 0;
		*gid = 0;
		return 0;
	}
	errno = 0;
	u = strtoul(s, &e, 10);
	if (e == s || *e != ':' || errno)
		return -1;
	s = e + 1;
	g = strtoul(s, &e, 10);
	if (e == s || *e || errno || u > 4294967294ul || g > 4294967294ul)
		return -1;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

/* Mount targets missing from the image are made in a "scaffold" directory
 * stacked over it, so that runc never creates them in the upper dir: the
 * layer holds only what the command wrote. */
static int scaffold(int lower_fd, const char *dir, const char *path, int is_dir,
		    struct ep_error *err)
{
	cleanup_free char *p = NULL;
	int fd = ep_root_open(lower_fd, path, O_PATH | O_CLOEXEC, 0);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	p = ep_asprintf(err, "%s%s", dir, path);
	if (!p)
		return -1;
	/* 0755 whatever the umask: a step writing next to a mount point copies
	 * the scaffold directory up into its layer */
	for (char *s = p + strlen(dir) + 1;; s++) {
		int last = !*s;

		if (*s != '/' && !last)
			continue;
		*s = '\0';
		if (last && !is_dir) {
			fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
			if (fd < 0 || fchmod(fd, 0644) < 0) {
				int e = errno;

				if (fd >= 0)
					close(fd);
				return ep_error_errno(err, EP_EENV, e, "create '%s'", p);
			}
			close(fd);
			break;
		}
		if ((mkdir(p, 0755) < 0 && errno != EEXIST) || chmod(p, 0755) < 0)
			return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", p);
		if (last)
			break;
		*s = '/';
	}
	return 0;
}

/* ep_runtime_spec for the build sandbox, narrowed: the host's /etc files
 * are not mounted, the network namespace is new (only a loopback of its
 * own), umask 022. */
static json_t *build_spec(const char *rootfs, const struct ep_runstep_opts *o, struct ep_error *err)
{
	struct ep_run_opts ro;
	struct ep_spec_params sp = {0};
	cleanup_free struct ep_volume *vols = NULL;
	cleanup_free char *pathv = NULL, *sde = NULL;
	cleanup_json json_t *cfg = NULL;
	json_t *spec, *mounts, *ns, *m;
	size_t i;

	ep_run_opts_init(&ro);
	vols = ep_calloc(o->n_mounts + 1, sizeof(*vols), err);
	pathv = ep_asprintf(err, "PATH=%s", o->path && *o->path ? o->path : EP_DEFAULT_PATH);
	sde = ep_asprintf(err, "SOURCE_DATE_EPOCH=%" PRId64, o->source_date_epoch);
	if (!vols || !pathv || !sde)
		return NULL;
	for (i = 0; i < o->n_mounts; i++) {
		vols[i].src = (char *)o->mounts[i].src;
		vols[i].dst = (char *)o->mounts[i].dest;
		vols[i].ro = 1;
	}
	cfg = json_pack("{s:[s,s,s,s,s]}", "Env", pathv, "HOME=/root", sde, "TZ=UTC",
			"LC_ALL=C.UTF-8");
	if (!cfg)
		return ep_error_oom(err), NULL;
	ro.gpus = "none";
	ro.volumes = vols;
	ro.n_volumes = o->n_mounts;
	ro.env = (const char **)o->env;
	ro.n_env = o->n_env;
	ro.workdir = o->workdir ? o->workdir : "/";
	ro.cmd = o->argv;
	ro.n_cmd = o->argc;
	ro.no_workspace = 1;
	ro.no_entrypoint = 1;
	ro.tty = 0;
	if (parse_user(o->user, &sp.uid, &sp.gid) < 0)
		return ep_error_set(err, EP_EINVAL, "user '%s' is not numeric UID:GID", o->user),
		       NULL;
	sp.image_cfg = cfg;
	sp.o = &ro;
	sp.rootfs = rootfs;
	sp.hostname = EP_RUNSTEP_HOSTNAME;
	spec = ep_runtime_spec(&sp, err);
	if (!spec)
		return NULL;
	mounts = json_object_get(spec, "mounts");
	for (i = json_array_size(mounts); i-- > 0;) {
		const char *d =
		    json_string_value(json_object_get(json_array_get(mounts, i), "destination"));

		if (d && !strncmp(d, "/etc/", 5))
			json_array_remove(mounts, i);
	}
	ns = json_object_get(json_object_get(spec, "linux"), "namespaces");
	m = json_object_get(json_object_get(spec, "process"), "user");
	if (!json_is_array(ns) || !json_is_object(m) ||
	    json_array_append_new(ns, json_pack("{s:s}", "type", "network")) < 0 ||
	    json_object_set_new(m, "umask", json_integer(022)) < 0) {
		json_decref(spec);
		return ep_error_set(err, EP_EINVAL, "runtime spec: unexpected shape"), NULL;
	}
	return spec;
}

/* Keeps the last TAIL_BYTES of the output, and all of it in the log. */
static void read_output(int fd, int log_fd, struct ep_strbuf *tail)
{
	char buf[8192];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (log_fd >= 0 && ep_write_all(log_fd, buf, (size_t)n, NULL) < 0)
			log_fd = -1;
		ep_strbuf_add(tail, buf, (size_t)n);
		if (tail->len > 2 * TAIL_BYTES) {
			memmove(tail->buf, tail->buf + tail->len - TAIL_BYTES, TAIL_BYTES);
			ep_strbuf_shrink(tail, tail->len - TAIL_BYTES);
		}
	}
}

/* The last EP_RUNSTEP_TAIL_LINES lines of text. */
static char *last_lines(const char *s, size_t len)
{
	size_t i = len, lines = 0;

	while (i > 0 && s[i - 1] == '\n')
		i--;
	len = i;
	while (i > 0) {
		if (s[i - 1] == '\n' && ++lines == EP_RUNSTEP_TAIL_LINES)
			break;
		i--;
	}
	return strndup(s + i, len - i);
}

/* Stops the container if envpin dies during the step (SIGKILL: nothing of
 * envpin runs then): a forked process waits on a pipe; EOF without a byte
 * means envpin is gone, and it kills and deletes the container.  The
 * container's pid 1 has no parent-death signal of its own, and runc only
 * gets one from us. */
static pid_t start_watchdog(const char *runc_root, const char *id, int *wfd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
		char *kill_argv[] = {"runc", "--root", (char *)runc_root, "kill", (char *)id,
				     "KILL", NULL};
		char *del_argv[] = {"runc",	"--root", (char *)runc_root, "delete", "--force",
				    (char *)id, NULL};
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		ssize_t n;
		char c;

		close(p[1]);
		setsid();
		for (size_t i = 0; i < EP_ARRAY_SIZE(sigs); i++)
			signal(sigs[i], SIG_IGN);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			ep_run_quiet(kill_argv, 1);
			ep_run_quiet(del_argv, 1);
		}
		_exit(0);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

/* The step is over: a byte tells the watchdog to just exit. */
static void stop_watchdog(pid_t pid, int wfd)
{
	if (write(wfd, "x", 1) < 0) {
		/* it is gone already: nothing left for it to do */
	}
	close(wfd);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* The child: a private mount namespace holding the overlay, then runc. */
static void child(const char *opts, const char *merged, const char *runc_root, const char *log,
		  const char *bundle, const char *id, int out_fd, pid_t parent)
{
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

	/* what runc itself creates in the root (a missing working dir) must
	 * not depend on the caller's umask */
	umask(022);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(125);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "envpin: private mount namespace: %s\n", strerror(errno));
		_exit(125);
	}
	if (mount("overlay", merged, "overlay", MS_NOSUID, opts) < 0) {
		fprintf(stderr, "envpin: mount overlay on '%s': %s\n", merged, strerror(errno));
		_exit(125);
	}
	/* envpin killed: runc goes too (see ep_runstep_exec for the container) */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
	ep_close_inherited_fds();
	execlp("runc", "runc", "--root", runc_root, "--log", log, "--log-format", "json", "run",
	       "--bundle", bundle, id, (char *)NULL);
	fprintf(stderr, "envpin: cannot run runc: %s\n", strerror(errno));
	_exit(125);
}

int ep_runstep_exec(const char *lower, const char *work, const char *spool,
		    const struct ep_runstep_opts *o, struct ep_tree **tree,
		    struct ep_runstep_result *r, struct ep_error *err)
{
	cleanup_free char *upper = NULL, *wdir = NULL, *merged = NULL, *scaf = NULL,
			  *runc_root = NULL, *runc_log = NULL, *opts = NULL, *cfg_path = NULL,
			  *text = NULL;
	cleanup_close int lower_fd = -1, log_fd = -1;
	cleanup_json json_t *spec = NULL;
	struct ep_strbuf out = EP_STRBUF_INIT;
	char id[32];
	int p[2], st, wfd = -1;
	pid_t pid, parent, watchdog;

	memset(r, 0, sizeof(*r));
	*tree = NULL;
	r->status = EP_RUN_EFAIL;
	if (!o->argc || !o->argv || !o->argv[0] || !o->argv[0][0])
		return ep_error_set(err, EP_EINVAL, "run: empty command");
	if (geteuid() != 0)
		return ep_error_set(
		    err, EP_EENV,
		    "a run step needs root (runc and overlayfs); run envpin build as root");
	if (!ep_run_on_path("runc"))
		return ep_error_set(err, EP_EENV, "a run step needs runc, which is not installed");
	/* the launcher's rule on runc versions (CVE-2024-21626); no store
	 * cache: a failed build leaves the store as it was */
	if (ep_runc_check(NULL, NULL, err) < 0)
		return -1;
	upper = ep_path_join(work, "upper", err);
	wdir = ep_path_join(work, "ovl-work", err);
	merged = ep_path_join(work, "rootfs", err);
	scaf = ep_path_join(work, "scaffold", err);
	runc_root = ep_path_join(work, "runc", err);
	runc_log = ep_path_join(work, "runc.log", err);
	cfg_path = ep_path_join(work, "config.json", err);
	r->log = ep_path_join(work, "output.log", err);
	if (!upper || !wdir || !merged || !scaf || !runc_root || !runc_log || !cfg_path || !r->log)
		return -1;
	if (ep_mkdir_p(upper, err) < 0 || ep_mkdir_p(wdir, err) < 0 ||
	    ep_mkdir_p(merged, err) < 0 || ep_mkdir_p(scaf, err) < 0 ||
	    ep_mkdir_p(runc_root, err) < 0)
		return -1;
	/* the upper dir is the layer's root directory: never part of it, but
	 * overlayfs shows its mode as "/" */
	if (chmod(upper, 0755) < 0)
		return ep_error_errno(err, EP_EENV, errno, "chmod '%s'", upper);
	lower_fd = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lower_fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", lower);
	if (scaffold(lower_fd, scaf, "/dev", 1, err) < 0 ||
	    scaffold(lower_fd, scaf, "/proc", 1, err) < 0 ||
	    scaffold(lower_fd, scaf, "/sys", 1, err) < 0)
		return -1;
	for (size_t i = 0; i < o->n_mounts; i++) {
		struct stat sb;

		if (stat(o->mounts[i].src, &sb) < 0)
			return ep_error_errno(err, EP_EINVAL, errno, "mount source '%s'",
					      o->mounts[i].src);
		if (ep_runtime_check_cpath(o->mounts[i].dest, "mount destination", err) < 0 ||
		    scaffold(lower_fd, scaf, o->mounts[i].dest, S_ISDIR(sb.st_mode), err) < 0)
			return -1;
	}
	spec = build_spec(merged, o, err);
	if (!spec)
		return -1;
	text = json_dumps(spec, JSON_COMPACT);
	if (!text)
		return ep_error_oom(err);
	if (ep_write_file_atomic(cfg_path, text, strlen(text), 0600, err) < 0)
		return -1;
	opts = ep_asprintf(err, "lowerdir=%s:%s,upperdir=%s,workdir=%s", scaf, lower, upper, wdir);
	if (!opts)
		return -1;
	if (strlen(opts) >= 4000)
		return ep_error_set(err, EP_EENV, "overlay options are longer than a page ('%s')",
				    work);
	if (ep_run_random_id(id, err) < 0)
		return -1;
	log_fd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (log_fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", r->log);
	/* the watchdog first: it must not hold the output pipe open */
	watchdog = start_watchdog(runc_root, id, &wfd);
	if (watchdog < 0)
		return ep_error_errno(err, EP_EENV, errno, "start the watchdog");
	if (pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;

		stop_watchdog(watchdog, wfd);
		return ep_error_errno(err, EP_EENV, e, "pipe");
	}
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		stop_watchdog(watchdog, wfd);
		return ep_error_errno(err, EP_EENV, errno, "fork");
	}
	if (pid == 0)
		child(opts, merged, runc_root, runc_log, work, id, p[1], parent);
	close(p[1]);
	read_output(p[0], log_fd, &out);
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = 125 << 8;
			break;
		}
	{
		/* a container left by a killed runc: nothing may outlive the step */
		char *del[] = {"runc", "--root", runc_root, "delete", "--force", id, NULL};

		ep_run_quiet(del, 1);
	}
	stop_watchdog(watchdog, wfd);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (r->status != 0) {
		cleanup_free char *rerr = ep_runc_log_error(runc_log);

		if (rerr && !strstr(ep_strbuf_str(&out), rerr)) {
			ep_strbuf_addf(&out, "%sruntime: %s\n",
				       out.len && out.buf[out.len - 1] != '\n' ? "\n" : "", rerr);
		}
		if (rerr) {
			if (strstr(rerr, "exec:") || strstr(rerr, "executable file not found"))
				r->status =
				    strstr(rerr, "not found") || strstr(rerr, "no such file")
					? EP_RUN_ENOENT
					: EP_RUN_ENOEXEC;
		}
	}
	r->tail = last_lines(out.buf ? out.buf : "", out.len);
	ep_strbuf_release(&out);
	if (!r->tail)
		return ep_error_oom(err);
	if (r->status != 0)
		return 0;
	*tree = ep_tree_new(spool, err);
	if (!*tree)
		return -1;
	if (ep_tree_add_upper(*tree, upper, o->source_date_epoch, err) < 0) {
		ep_tree_free(*tree);
		*tree = NULL;
		return ep_error_wrap(err, "read the step's output '%s'", upper);
	}
	return 0;
}
