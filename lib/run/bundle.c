/* lib/run/bundle.c - the native engine: the bundle under STORE/run, the
 * overlay (or a flattened copy), the mount targets inside the root, the
 * cleanup watchdog and runc (layout and trust rules in runtime.h). */
#include "runtime.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "jsonutil.h"
#include "isolation.h"
#include "oci.h"
#include "run/internal.h"
#include "rootless.h"
#include "runcver.h"
#include "strvec.h"
#include "trace.h"
#include "unpack.h"
#include "util.h"

#define RUNC_LOG_MAX (64u << 10)

static int valid_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 64 || !isalnum((unsigned char)n[0]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("_.-", n[i]))
			return 0;
	return 1;
}

struct bundle {
	char *run_dir;	 /* STORE/run */
	char *runc_root; /* STORE/run/runc */
	char *dir;	 /* STORE/run/<id> */
	char *rootfs;
	int rootless; /* in a user namespace of our own (docs/rootless.md) */
	char id[72];
	int lock_fd;
	int keep;
	int stdin_open; /* -i or a terminal: runc (and the container) read stdin */
};

static void bundle_release(struct bundle *b)
{
	free(b->run_dir);
	free(b->runc_root);
	free(b->dir);
	free(b->rootfs);
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	memset(b, 0, sizeof(*b));
	b->lock_fd = -1;
}

/* Removes what a run left: runc state (killing what still runs), the
 * rootfs mount (in this mount namespace) and the bundle directory. */
static void bundle_cleanup(const char *runc_root, const char *dir, const char *id, int keep)
{
	cleanup_free char *state = ep_path_join(runc_root, id, NULL);
	cleanup_free char *rootfs = ep_path_join(dir, "rootfs", NULL);
	struct ep_error e = EP_ERROR_INIT;

	/* out of memory: still try to stop the container */
	if (!state || access(state, F_OK) == 0) {
		char *kill_argv[] = {"runc", "--root", (char *)runc_root, "kill", (char *)id,
				     "KILL", NULL};
		char *del_argv[] = {"runc",	"--root", (char *)runc_root, "delete", "--force",
				    (char *)id, NULL};

		ep_run_quiet(kill_argv, 1);
		ep_run_quiet(del_argv, 1);
	}
	if (rootfs)
		umount2(rootfs, MNT_DETACH);
	if (!keep)
		ep_rm_rf(dir, &e);
}

/* Bundles whose lock nobody holds belong to dead runs (the watchdog was
 * killed too, or the machine rebooted).  Kept bundles are left alone. */
static void sweep_stale(const char *run_dir, const char *runc_root)
{
	DIR *d = opendir(run_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		cleanup_free char *dir = NULL;
		struct stat st;
		int fd;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "runc") || !valid_name(de->d_name))
			continue;
		dir = ep_path_join(run_dir, de->d_name, NULL);
		if (!dir)
			break;
		{
			cleanup_free char *kept = ep_path_join(dir, "kept", NULL);
			cleanup_free char *lock = ep_path_join(dir, "lock", NULL);

			if (!kept || !lock || access(kept, F_OK) == 0)
				continue;
			fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		}
		if (fd < 0) {
			/* a run that is just being set up has no lock yet */
			if (lstat(dir, &st) == 0 && time(NULL) - st.st_mtime > 60)
				bundle_cleanup(runc_root, dir, de->d_name, 0);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			bundle_cleanup(runc_root, dir, de->d_name, 0);
		close(fd);
	}
	closedir(d);
}

static int bundle_create(struct ep_store *s, const char *name, int keep, struct bundle *b,
			 struct ep_error *err)
{
	cleanup_free char *lock = NULL;

	memset(b, 0, sizeof(*b));
	b->lock_fd = -1;
	b->keep = keep;
	b->rootless = geteuid() != 0;
	b->run_dir = ep_path_join(s->root, "run", err);
	if (!b->run_dir)
		return -1;
	b->runc_root = ep_path_join(b->run_dir, "runc", err);
	if (!b->runc_root || ep_mkdir_p(b->runc_root, err) < 0)
		return -1;
	sweep_stale(b->run_dir, b->runc_root);
	if (name) {
		if (!valid_name(name))
			return ep_error_set(err, EP_EINVAL,
					    "container name '%s': use 1 to 64 of [A-Za-z0-9_.-], "
					    "starting with a letter or digit",
					    name);
		snprintf(b->id, sizeof(b->id), "%s", name);
	} else if (ep_run_random_id(b->id, err) < 0) {
		return -1;
	}
	b->dir = ep_path_join(b->run_dir, b->id, err);
	if (!b->dir)
		return -1;
	if (mkdir(b->dir, 0700) < 0) {
		int e = errno;
		free(b->dir);
		b->dir = NULL;
		if (e == EEXIST)
			return ep_error_set(err, EP_EINVAL, "a container named '%s' exists (%s/%s)",
					    b->id, b->run_dir, b->id);
		return ep_error_errno(err, EP_EENV, e, "mkdir '%s/%s'", b->run_dir, b->id);
	}
	lock = ep_path_join(b->dir, "lock", err);
	if (!lock)
		return -1;
	b->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (b->lock_fd < 0 || flock(b->lock_fd, LOCK_EX) < 0)
		return ep_error_errno(err, EP_EENV, errno, "lock '%s'", lock);
	b->rootfs = ep_path_join(b->dir, "rootfs", err);
	if (!b->rootfs || mkdir(b->rootfs, 0755) < 0)
		return b->rootfs ? ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", b->rootfs)
				 : -1;
	return 0;
}

/* The directory all lowers sit in when they share one (STORE/rootfs), so
 * they can be named relative to it; 0 when they do not. */
static size_t common_parent(char **lowers, size_t n)
{
	const char *sl = strrchr(lowers[0], '/');
	size_t plen = sl ? (size_t)(sl - lowers[0]) : 0;

	for (size_t i = 0; i < n; i++)
		if (strncmp(lowers[i], lowers[0], plen) || lowers[i][plen] != '/' ||
		    strchr(lowers[i] + plen + 1, '/'))
			return 0;
	return plen;
}

enum overlay_how {
	OVERLAY_KERNEL, /* overlayfs; rootless: in our user namespace with userxattr */
	OVERLAY_FUSE,	/* fuse-overlayfs (rootless, where the kernel refuses) */
};

/* What a user without a usable fuse-overlayfs can do instead. */
#define FUSE_WAY_OUT "or ENVPIN_ROOTLESS_OVERLAY=copy for a flattened copy of the image (slower)"

/* Runs fuse-overlayfs with opts on b->rootfs.  It daemonizes in our user
 * and mount namespace; the lazy unmount of bundle_cleanup (ours or the
 * watchdog's) aborts its connection and it exits (t800 checks both). */
static int mount_fuse_overlay(struct bundle *b, const char *opts, struct ep_error *err)
{
	char *argv[] = {"fuse-overlayfs", "-o", (char *)opts, b->rootfs, NULL};
	struct stat st;
	int rc;

	if (!ep_run_on_path("fuse-overlayfs"))
		return ep_error_set(
		    err, EP_EENV,
		    "fuse-overlayfs is not installed: apt-get install fuse-overlayfs "
		    "(as root), " FUSE_WAY_OUT);
	if (stat("/dev/fuse", &st) < 0)
		return ep_error_errno(err, EP_EENV, errno,
				      "/dev/fuse (modprobe fuse as root, " FUSE_WAY_OUT ")");
	/* in our user namespace the kernel still checks the caller's host ids */
	if (access("/dev/fuse", R_OK | W_OK) < 0)
		return ep_error_set(err, EP_EENV,
				    "/dev/fuse is not readable and writable by you (mode %04o): "
				    "chmod 0666 /dev/fuse (as root), " FUSE_WAY_OUT,
				    (unsigned)(st.st_mode & 07777));
	rc = ep_run_quiet(argv, 1);
	if (rc != 0)
		return ep_error_set(err, EP_EENV,
				    "fuse-overlayfs failed (status %d), " FUSE_WAY_OUT, rc);
	return 0;
}

/* Mounts the overlay: lowerdirs top layer first.  The lowers usually share
 * STORE/rootfs, so they are given relative to it (mount options are
 * limited to a page). */
static int mount_overlay(struct bundle *b, char **lowers, size_t n, enum overlay_how how,
			 struct ep_error *err)
{
	cleanup_free char *upper = ep_path_join(b->dir, "upper", err);
	cleanup_free char *work = upper ? ep_path_join(b->dir, "work", err) : NULL;
	cleanup_free char *empty = NULL, *pdir = NULL;
	cleanup_close int cwd = -1;
	struct ep_strbuf opts = EP_STRBUF_INIT;
	size_t plen;
	int rc, e;

	if (!work)
		return -1;
	if ((mkdir(upper, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(work, 0700) < 0 && errno != EEXIST))
		return ep_error_errno(err, EP_EENV, errno, "mkdir in '%s'", b->dir);
	if (n == 0) {
		/* an empty image: overlay needs one lower */
		empty = ep_path_join(b->dir, "empty", err);
		if (!empty || (mkdir(empty, 0755) < 0 && errno != EEXIST))
			return ep_error_errno(err, EP_EENV, errno, "mkdir in '%s'", b->dir);
		lowers = &empty;
		n = 1;
	}
	plen = common_parent(lowers, n);
	ep_strbuf_addstr(&opts, "lowerdir=");
	for (size_t i = 0; i < n; i++)
		ep_strbuf_addf(&opts, "%s%s", i ? ":" : "",
			       plen ? lowers[i] + plen + 1 : lowers[i]);
	ep_strbuf_addf(&opts, ",upperdir=%s,workdir=%s", upper, work);
	/* in a user namespace, whiteouts and opaque dirs are user.overlay.* */
	if (b->rootless && how == OVERLAY_KERNEL)
		ep_strbuf_addstr(&opts, ",userxattr");
	if (opts.oom)
		return ep_strbuf_release(&opts), ep_error_oom(err);
	/* volatile: the upper dir is thrown away, so overlayfs need not sync
	 * it at unmount (that sync cost ~15 ms per start here); Linux >= 5.10.
	 * Added last, so that it can be dropped for an older kernel. */
	if (opts.len >= 4096 || ep_strbuf_addstr(&opts, ",volatile") < 0) {
		ep_strbuf_release(&opts);
		return ep_error_set(err, EP_EENV,
				    "overlay options are longer than a page (%zu layers)", n);
	}
	if (plen) {
		pdir = strndup(lowers[0], plen);
		cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (!pdir || cwd < 0 || chdir(pdir) < 0) {
			ep_strbuf_release(&opts);
			return ep_error_errno(err, EP_EENV, pdir ? errno : ENOMEM, "chdir '%.*s'",
					      (int)plen, lowers[0]);
		}
	}
	if (how == OVERLAY_FUSE) {
		/* volatile is the kernel's; nosuid as the kernel mount below
		 * (MS_NODEV comes with any mount in a user namespace) */
		ep_strbuf_shrink(&opts, strlen(",volatile"));
		rc = ep_strbuf_addstr(&opts, ",nosuid") < 0 ? ep_error_oom(err)
							    : mount_fuse_overlay(b, opts.buf, err);
		ep_strbuf_release(&opts);
		if (cwd >= 0 && fchdir(cwd) < 0)
			return ep_error_errno(err, EP_EENV, errno, "fchdir back");
		return rc;
	}
	rc = mount("overlay", b->rootfs, "overlay", MS_NOSUID | MS_NODEV, opts.buf);
	if (rc < 0 && errno == EINVAL) {
		ep_strbuf_shrink(&opts, strlen(",volatile"));
		rc = mount("overlay", b->rootfs, "overlay", MS_NOSUID | MS_NODEV, opts.buf);
	}
	e = errno;
	ep_strbuf_release(&opts);
	if (cwd >= 0 && fchdir(cwd) < 0)
		return ep_error_errno(err, EP_EENV, errno, "fchdir back");
	if (rc < 0)
		return ep_error_errno(err, EP_EENV, e, "mount overlay on '%s'", b->rootfs);
	return 0;
}

/* The targets runc will mount onto, created by us inside the root. */
static int prepare_rootfs(int root_fd, const struct ep_run_opts *o, const struct ep_gpu_plan *gpu,
			  int workspace, struct ep_error *err)
{
	static const char *const dirs[] = {"/dev", "/proc", "/sys"};
	static const char *const files[] = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"};

	for (size_t i = 0; i < EP_ARRAY_SIZE(dirs); i++)
		if (ep_root_target(root_fd, dirs[i], 1, err) < 0)
			return -1;
	for (size_t i = 0; i < EP_ARRAY_SIZE(files); i++)
		if (ep_root_target(root_fd, files[i], 0, err) < 0)
			return -1;
	if (workspace && ep_root_target(root_fd, "/workspace", 1, err) < 0)
		return -1;
	for (size_t i = 0; i < o->n_volumes; i++) {
		const struct ep_volume *v = &o->volumes[i];
		struct stat st;

		if (stat(v->src, &st) < 0)
			return ep_error_errno(err, EP_EINVAL, errno, "volume source '%s'", v->src);
		if (ep_run_under_proc(v->dst) || !strcmp(v->dst, "/dev") || !strcmp(v->dst, "/sys"))
			return ep_error_set(err, EP_EINVAL, "volume destination '%s' is refused",
					    v->dst);
		if (ep_root_target(root_fd, v->dst, S_ISDIR(st.st_mode), err) < 0)
			return -1;
	}
	for (size_t i = 0; gpu && i < gpu->n_mounts; i++) {
		struct stat st;

		if (ep_run_under_proc(gpu->mounts[i].path))
			continue;
		if (ep_runtime_check_cpath(gpu->mounts[i].path, "gpu mount", err) < 0)
			return -1;
		if (stat(gpu->mounts[i].host_path, &st) < 0)
			return ep_error_errno(err, EP_EENV, errno, "gpu: '%s'",
					      gpu->mounts[i].host_path);
		if (ep_root_target(root_fd, gpu->mounts[i].path, S_ISDIR(st.st_mode), err) < 0)
			return -1;
	}
	for (size_t i = 0; gpu && i < gpu->n_links; i++) {
		if (ep_runtime_check_cpath(gpu->links[i].path, "gpu link", err) < 0 ||
		    ep_root_symlink(root_fd, gpu->links[i].path, gpu->links[i].target, err) < 0)
			return -1;
	}
	return 0;
}

static volatile sig_atomic_t g_child = 0;
static volatile sig_atomic_t g_stops = 0;

static void forward_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* A process 1 without a handler ignores INT and TERM (docker run does
	 * the same); the third one kills the container. */
	if (sig == SIGINT || sig == SIGTERM)
		g_stops++;
	/* a signal from the terminal reached runc as well (same process group) */
	if (si && si->si_code == SI_KERNEL)
		return;
	if (g_child > 0)
		kill((pid_t)g_child, sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* runc puts its init into the container's cgroups by writing to
 * cgroup.procs (once per hierarchy: ten times on a cgroup v1 host).  The
 * first such write after a quiet spell waits for an RCU grace period (the
 * kernel's cgroup_threadgroup_rwsem leaves its fast mode), and whatever
 * writes next within about one grace period does not: here 10-13 ms of a
 * runc start after 0.1 s idle (docs/run.md, "Start latency").  The watchdog
 * writes its own pid to the cgroup v2 it is already in (a move to where it
 * is, which changes nothing) while runc starts, so that the wait overlaps
 * runc's own start instead of following it.  Any failure (no cgroup2 fs,
 * no permission) leaves things as they were. */
static void prime_cgroup_attach(void)
{
	char buf[4096], path[PATH_MAX + 64], pid[24];
	const char *cg = NULL;
	ssize_t n;
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, "0::/", 4)) {
			cg = l + 3;
			l[3 + strcspn(l + 3, "\n")] = '\0';
			break;
		}
	if (!cg)
		return;
	if (!strcmp(cg, "/"))
		cg = "";
	/* hybrid hosts mount cgroup2 at /sys/fs/cgroup/unified */
	snprintf(path, sizeof(path), "/sys/fs/cgroup/unified%s/cgroup.procs", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cgroup.procs", cg);
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return;
	n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (write(fd, pid, (size_t)n) < 0) {
		/* nothing was moved; runc pays the wait itself */
	}
	close(fd);
}

/* The watchdog: a forked copy of envpin in the same mount namespace that
 * waits on a pipe.  A byte means "envpin cleaned up"; EOF means envpin died
 * (SIGKILL): it kills the container and removes the bundle.  As root it
 * first takes runc's cgroup wait on itself (prime_cgroup_attach). */
static pid_t start_watchdog(const struct bundle *b, int *wfd)
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
		char c;
		ssize_t n;
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		close(p[1]);
		setsid();
		for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
			signal(forwarded[i], SIG_IGN);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		if (!b->rootless)
			prime_cgroup_attach();
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 0)
			bundle_cleanup(b->runc_root, b->dir, b->id, 0);
		_exit(0);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

char *ep_runc_log_error(const char *log)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *text = ep_read_file(log, RUNC_LOG_MAX, NULL, &e);
	char *msg = NULL;

	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		json_t *j;

		if (next)
			*next++ = '\0';
		j = json_loads(line, 0, NULL);
		if (j && !strcmp(json_string_value(json_object_get(j, "level")) ?: "", "error")) {
			free(msg);
			msg = strdup(json_string_value(json_object_get(j, "msg")) ?: "runc failed");
		}
		json_decref(j);
		line = next;
	}
	return msg;
}

/* runc's own failure (it logs "runc run failed" at level error) against
 * the container's exit status. */
static int runc_failure(const char *log, int *status, struct ep_error *err)
{
	char *msg = ep_runc_log_error(log);

	if (!msg)
		return 0;
	*status = EP_RUN_EFAIL;
	if (strstr(msg, "exec:") || strstr(msg, "exec format")) {
		if (strstr(msg, "not found") || strstr(msg, "no such file"))
			*status = EP_RUN_ENOENT;
		else if (strstr(msg, "permission denied") || strstr(msg, "exec format"))
			*status = EP_RUN_ENOEXEC;
	}
	ep_error_set(err, *status == EP_RUN_EFAIL ? EP_EENV : EP_EINVAL, "%s", msg);
	free(msg);
	return -1;
}

/* envpin's environment without the socket-activation variables runc would
 * hand on (LISTEN_FDS from fd 3, when LISTEN_PID names the container), as
 * ep_close_inherited_fds drops them.  The strings stay environ's. */
static char **runc_environ(void)
{
	size_t n = 0, k = 0;
	char **v;

	while (environ[n])
		n++;
	v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		if (strncmp(environ[i], "LISTEN_FDS=", 11) &&
		    strncmp(environ[i], "LISTEN_PID=", 11) &&
		    strncmp(environ[i], "LISTEN_FDNAMES=", 15))
			v[k++] = environ[i];
	return v;
}

/* Starts runc with posix_spawn (a vfork: no copy of envpin's page tables
 * on the way to runc's exec): 0-2 only, stdin /dev/null unless stdin_open,
 * the forwarded signals at their defaults.  -1 with errno when it could
 * not start. */
static pid_t spawn_runc(const struct bundle *b, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t dfl;
	char **envp = runc_environ();
	pid_t pid = -1;
	int e;

	if (!envp)
		return errno = ENOMEM, -1;
	sigemptyset(&dfl);
	for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
		sigaddset(&dfl, forwarded[i]);
	e = posix_spawn_file_actions_init(&fa);
	if (e) {
		free(envp);
		return errno = e, -1;
	}
	e = posix_spawnattr_init(&attr);
	if (!e)
		e = posix_spawnattr_setsigdefault(&attr, &dfl);
	if (!e)
		e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
	/* stdin only with -i or a terminal, as docker (docs/run.md) */
	if (!e && !b->stdin_open)
		e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* runc gets 0-2 only, whatever envpin inherited (docs/run.md) */
	if (!e)
		e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (!e)
		e = posix_spawnp(&pid, "runc", &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	if (e)
		return errno = e, -1;
	return pid;
}

static int exec_runc(const struct bundle *b, int *status, struct ep_error *err)
{
	cleanup_free char *log = ep_path_join(b->dir, "runc.log", err);
	struct sigaction sa = {0}, old[EP_ARRAY_SIZE(forwarded)];
	pid_t pid;
	int st;

	if (!log)
		return -1;
	sa.sa_sigaction = forward_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
		sigaction(forwarded[i], &sa, &old[i]);
	{
		char *argv[] = {"runc",	    "--root",	    b->runc_root,  "--log",
				log,	    "--log-format", "json",	   "run",
				"--bundle", b->dir,	    (char *)b->id, NULL};

		pid = spawn_runc(b, argv);
	}
	if (pid < 0) {
		/* what a fork whose exec failed reported: 127 not found, 126 else */
		int code = errno == ENOENT ? 127 : errno == ENOMEM || errno == EAGAIN ? -1 : 126;

		if (code < 0) {
			for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
				sigaction(forwarded[i], &old[i], NULL);
			*status = EP_RUN_EFAIL;
			return ep_error_errno(err, EP_EENV, errno, "start runc");
		}
		st = code << 8;
		goto exited;
	}
	g_child = pid;
	g_stops = 0;
	ep_trace_mark("runc spawned");
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			st = 0x7f00;
			break;
		}
		if (g_stops >= 3) {
			char *kill_argv[] = {"runc",	    "--root", b->runc_root, "kill",
					     (char *)b->id, "KILL",   NULL};
			g_stops = -100;
			ep_run_quiet(kill_argv, 1);
		}
	}
	g_child = 0;
exited:
	ep_trace_mark("runc exited");
	for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
		sigaction(forwarded[i], &old[i], NULL);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (*status != 0 && runc_failure(log, status, err) < 0)
		return -1;
	return 0;
}

static int write_gpu_files(const char *dir, const struct ep_gpu_plan *gpu, struct ep_error *err)
{
	if (!gpu || !gpu->n_files)
		return 0;
	if (mkdir(dir, 0755) < 0)
		return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", dir);
	for (size_t i = 0; i < gpu->n_files; i++) {
		cleanup_free char *p = NULL;
		cleanup_close int fd = -1;

		if (gpu->files[i].in_proc)
			continue;
		p = ep_asprintf(err, "%s/%zu", dir, i);
		if (!p)
			return -1;
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  gpu->files[i].mode ? gpu->files[i].mode : 0444);
		if (fd < 0 || ep_write_all(fd, gpu->files[i].content, gpu->files[i].len, err) < 0)
			return fd < 0 ? ep_error_errno(err, EP_EENV, errno, "create '%s'", p) : -1;
	}
	return 0;
}

/* What ep_layer_rootfs gives, top layer first. */
static int layer_dirs(struct ep_store *s, const json_t *layers, char ***out, size_t *n,
		      const struct ep_run_opts *o, struct ep_error *err)
{
	size_t cnt = json_array_size(layers);
	char **v = ep_calloc(cnt + 1, sizeof(*v), err);

	if (!v)
		return -1;
	if (ep_layer_rootfs_all(s, layers, v, o->progress, o->pctx, err) < 0) {
		free(v);
		return -1;
	}
	for (size_t i = 0; i < cnt / 2; i++) {
		char *t = v[i];

		v[i] = v[cnt - 1 - i];
		v[cnt - 1 - i] = t;
	}
	*out = v;
	*n = cnt;
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int write_spec(const char *dir, const json_t *spec, struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(dir, "config.json", err);
	cleanup_free char *text = path ? json_dumps(spec, JSON_COMPACT) : NULL;
	cleanup_close int fd = -1;

	if (!text)
		return path ? ep_error_oom(err) : -1;
	/* no fsync: the bundle lives as long as the run */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", path);
	return ep_write_all(fd, text, strlen(text), err);
}

/* The uid/gid the container's process runs as, resolved before the user
 * namespace exists (its mapping depends on them): from the image's
 * /etc/passwd in the top-most layer that has one.  0/0 for root. */
static int rootless_ids(char **lowers, size_t n, const json_t *cfg, const struct ep_run_opts *o,
			uid_t *uid, gid_t *gid, struct ep_error *err)
{
	const char *spec = o->user ? o->user : json_string_value(json_object_get(cfg, "User"));
	cleanup_close int fd = -1;

	*uid = 0;
	*gid = 0;
	if (!spec || !*spec)
		return 0;
	for (size_t i = 0; i < n && fd < 0; i++) {
		cleanup_free char *pw = ep_path_join(lowers[i], "etc/passwd", err);
		struct stat st;

		if (!pw)
			return -1;
		if (lstat(pw, &st) == 0 && S_ISREG(st.st_mode))
			fd = open(lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0 && n > 0)
		fd = open(lowers[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ep_error_set(err, EP_EINVAL,
				    "user '%s' without root: pull or load the image into the store "
				    "first",
				    spec);
	return ep_runtime_user(fd, spec, uid, gid, NULL, NULL, err);
}

/* The container's root in b->rootfs, in a private mount namespace (it
 * disappears with the last of envpin, its watchdog and runc, whatever
 * kills them): the overlay of the store's unpacked layers, or a flattened
 * copy without overlayfs or for an image outside the store.  Returns an
 * O_PATH fd of the root. */
static int bundle_rootfs(struct ep_store *s, const struct ep_image_loc *loc, const json_t *info,
			 const struct ep_run_opts *o, struct bundle *b, struct ep_error *err)
{
	char **lowers = NULL;
	size_t n_lowers = 0;
	int fd, overlay = 0;

	if (loc->in_store &&
	    layer_dirs(s, json_object_get(info, "layers"), &lowers, &n_lowers, o, err) < 0)
		return -1;
	ep_trace_mark("layers found");
	if (b->rootless) {
		uid_t uid = 0;
		gid_t gid = 0;

		if (rootless_ids(lowers, n_lowers, json_object_get(info, "config"), o, &uid, &gid,
				 err) < 0 ||
		    ep_userns_enter(uid, gid, err) < 0) {
			free_strv(lowers, n_lowers);
			return -1;
		}
	} else if (unshare(CLONE_NEWNS) < 0) {
		free_strv(lowers, n_lowers);
		return ep_error_errno(err, EP_EENV, errno, "private mount namespace");
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		free_strv(lowers, n_lowers);
		return ep_error_errno(err, EP_EENV, errno, "private mount namespace");
	}
	ep_trace_mark("mount namespace");
	if (loc->in_store) {
		const char *want = b->rootless ? getenv("ENVPIN_ROOTLESS_OVERLAY") : NULL;

		int any = !want || !*want || !strcmp(want, "auto");

		if (any || !strcmp(want, "kernel"))
			overlay = mount_overlay(b, lowers, n_lowers, OVERLAY_KERNEL, err) == 0;
		if (!overlay && b->rootless && (any || !strcmp(want, "fuse"))) {
			ep_error_clear(err);
			overlay = mount_overlay(b, lowers, n_lowers, OVERLAY_FUSE, err) == 0;
		}
		/* a forced overlay that fails is an error, not a silent copy */
		if (!overlay && want && (!strcmp(want, "kernel") || !strcmp(want, "fuse"))) {
			free_strv(lowers, n_lowers);
			return ep_error_wrap(err, "ENVPIN_ROOTLESS_OVERLAY=%s", want);
		}
	}
	free_strv(lowers, n_lowers);
	ep_trace_mark("overlay mounted");
	if (!overlay) {
		struct ep_unpack_opts uo;
		cleanup_free char *upper = ep_path_join(b->dir, "upper", err);
		cleanup_free char *work = upper ? ep_path_join(b->dir, "work", err) : NULL;

		ep_error_clear(err);
		/* a failed overlay attempt may have left these */
		if (upper)
			rmdir(upper);
		if (work) {
			cleanup_free char *ww = ep_path_join(work, "work", NULL);
			if (ww)
				rmdir(ww);
			rmdir(work);
		}
		ep_unpack_opts_init(&uo);
		uo.whiteouts = EP_WHITEOUT_APPLY;
		/* in a user namespace only the caller's ids exist, and no mknod */
		uo.allow_devices = !b->rootless;
		uo.same_owner = !b->rootless;
		if (rmdir(b->rootfs) < 0 ||
		    ep_unpack_image(loc->layout, loc->digest, b->rootfs, &uo, err) < 0)
			return ep_error_wrap(err, "flatten the image into '%s'", b->rootfs);
	}
	fd = open(b->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", b->rootfs);
	return fd;
}

/* Everything runc reads before the start: the GPU plan (*plan, *have_plan:
 * the caller releases it) and its files, the mount targets inside the
 * root, the user, and config.json. */
static int bundle_config(const struct bundle *b, int root_fd, const json_t *cfg,
			 const struct ep_run_opts *o, int tty, const char *workspace,
			 struct ep_gpu_plan *plan, int *have_plan, struct ep_error *err)
{
	const struct ep_gpu_plan *gpu = NULL;
	cleanup_free char *gpu_files = NULL;
	cleanup_free gid_t *extra = NULL;
	cleanup_json json_t *spec = NULL;
	struct ep_spec_params sp = {0};
	size_t n_extra = 0;
	char host[256] = "envpin";
	uid_t uid;
	gid_t gid;

	memset(plan, 0, sizeof(*plan));
	if (ep_run_gpu_plan(o->gpus, cfg, b->rootfs, plan, have_plan, err) < 0)
		return -1;
	if (*have_plan) {
		gpu = plan;
		gpu_files = ep_path_join(b->dir, "gpu-files", err);
		if (!gpu_files || write_gpu_files(gpu_files, gpu, err) < 0)
			return -1;
	}
	ep_trace_mark("gpu plan");
	if (prepare_rootfs(root_fd, o, gpu, workspace != NULL, err) < 0 ||
	    ep_runtime_user(root_fd,
			    o->user ? o->user : json_string_value(json_object_get(cfg, "User")),
			    &uid, &gid, &extra, &n_extra, err) < 0)
		return -1;
	ep_trace_mark("mount targets, user");
	if (gethostname(host, sizeof(host) - 1) < 0)
		strcpy(host, "envpin");
	sp.image_cfg = cfg;
	sp.o = o;
	sp.gpu = gpu;
	sp.rootfs = "rootfs";
	sp.workspace = workspace;
	sp.hostname = host;
	sp.uid = uid;
	sp.gid = gid;
	sp.extra_gids = extra;
	sp.n_extra_gids = n_extra;
	sp.rootless = b->rootless;
	/* single mapping: only 0 exists inside, and the caller's own
	 * supplementary groups stay (runc sees setgroups "deny") */
	if (b->rootless && uid == 0 && gid == 0)
		sp.n_extra_gids = 0;
	sp.tty = tty;
	sp.gpu_files_dir = gpu_files;
	spec = ep_runtime_spec(&sp, err);
	ep_trace_mark("spec built");
	if (!spec || write_spec(b->dir, spec, err) < 0)
		return -1;
	ep_trace_mark("config.json written");
	if (o->keep) {
		cleanup_free char *kept = ep_path_join(b->dir, "kept", err);
		int fd = kept ? open(kept, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;

		if (fd >= 0)
			close(fd);
	}
	return 0;
}

int ep_run_native(struct ep_store *s, const struct ep_image_loc *loc, const json_t *info,
		  const struct ep_run_opts *o, int tty, int *status, struct ep_error *err)
{
	struct ep_gpu_plan plan;
	int have_plan = 0;
	struct bundle b;
	cleanup_free char *workspace = NULL;
	cleanup_close int root_fd = -1;
	pid_t watchdog = -1;
	int wfd = -1, rc = -1;

	*status = EP_RUN_EFAIL;
	memset(&plan, 0, sizeof(plan));
	if (!ep_run_on_path("runc"))
		return ep_error_set(err, EP_EENV, "runc is not installed (or use --engine docker)");
	if (ep_runc_check(s->root, NULL, err) < 0)
		return -1;
	ep_trace_mark("runc checked");
	if (!o->no_workspace) {
		workspace = getcwd(NULL, 0);
		if (!workspace)
			return ep_error_errno(err, EP_EENV, errno, "getcwd");
	}
	if (bundle_create(s, o->name, o->keep, &b, err) < 0)
		goto out;
	ep_trace_mark("bundle dir, stale sweep");
	b.stdin_open = o->interactive || tty;
	root_fd = bundle_rootfs(s, loc, info, o, &b, err);
	if (root_fd < 0)
		goto out;
	/* as soon as the namespace it must share exists: its cgroup priming
	 * then runs while the spec is written and runc starts */
	watchdog = start_watchdog(&b, &wfd);
	if (watchdog < 0) {
		ep_error_errno(err, EP_EENV, errno, "start the cleanup watchdog");
		goto out;
	}
	ep_trace_mark("watchdog forked");
	if (bundle_config(&b, root_fd, json_object_get(info, "config"), o, tty, workspace, &plan,
			  &have_plan, err) < 0)
		goto out;
	rc = exec_runc(&b, status, err);
out:
	if (b.dir)
		bundle_cleanup(b.runc_root, b.dir, b.id, o->keep);
	if (wfd >= 0) {
		if (write(wfd, "x", 1) < 0) {
			/* the watchdog is gone; nothing left for it to do */
		}
		close(wfd);
	}
	/* The byte tells the watchdog to just exit: reap it if it has, but do
	 * not wait for it to be scheduled (a round trip on a busy machine);
	 * an unreaped one is reparented to init when envpin exits. */
	if (watchdog > 0)
		(void)waitpid(watchdog, NULL, WNOHANG);
	bundle_release(&b);
	if (have_plan)
		ep_gpu_plan_release(&plan);
	ep_trace_mark("cleanup done");
	return rc;
}

int ep_run_bundle_dir(const struct ep_image_loc *loc, const json_t *info, const char *dir,
		      const struct ep_run_opts *o, struct ep_error *err)
{
	struct ep_unpack_opts uo;
	struct ep_gpu_plan plan;
	struct bundle b;
	cleanup_close int root_fd = -1;
	int have_plan = 0, rc = -1;

	memset(&b, 0, sizeof(b));
	b.lock_fd = -1;
	/* portable: the same config runs under runc as root and in a user
	 * namespace (Slurm runs it as the job's user) */
	b.rootless = 1;
	if (mkdir(dir, 0755) < 0)
		return ep_error_errno(err, errno == EEXIST ? EP_EINVAL : EP_EENV, errno,
				      "mkdir '%s'", dir);
	b.dir = realpath(dir, NULL);
	if (!b.dir) {
		ep_error_errno(err, EP_EENV, errno, "realpath '%s'", dir);
		goto out;
	}
	b.rootfs = ep_path_join(b.dir, "rootfs", err);
	if (!b.rootfs)
		goto out;
	ep_unpack_opts_init(&uo);
	uo.whiteouts = EP_WHITEOUT_APPLY;
	uo.allow_devices = geteuid() == 0;
	uo.same_owner = geteuid() == 0;
	if (ep_unpack_image(loc->layout, loc->digest, b.rootfs, &uo, err) < 0) {
		ep_error_wrap(err, "unpack the image into '%s'", b.rootfs);
		goto out;
	}
	root_fd = open(b.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		ep_error_errno(err, EP_EENV, errno, "open '%s'", b.rootfs);
		goto out;
	}
	memset(&plan, 0, sizeof(plan));
	{
		/* Slurm replaces the args; an image without Entrypoint and Cmd
		 * still gets a bundle (its process is /bin/sh until then) */
		const json_t *cfg = json_object_get(info, "config");
		static char *const sh[] = {"/bin/sh", NULL};
		struct ep_run_opts oo = *o;

		if (!oo.n_cmd && !json_array_size(json_object_get(cfg, "Entrypoint")) &&
		    !json_array_size(json_object_get(cfg, "Cmd"))) {
			oo.cmd = sh;
			oo.n_cmd = 1;
		}
		rc = bundle_config(&b, root_fd, cfg, &oo, 0, NULL, &plan, &have_plan, err);
	}
	if (have_plan)
		ep_gpu_plan_release(&plan);
out:
	bundle_release(&b);
	return rc;
}
