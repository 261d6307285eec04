/* lib/runtime.c - the OCI runtime spec, the bundle and the engines of
 * `envpin run`.  The API and the trust rules are in runtime.h. */
#include "runtime.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "jsonutil.h"
#include "oci.h"
#include "unpack.h"
#include "util.h"

#define PASSWD_MAX (1u << 20)   /* cap on the image's /etc/passwd and /etc/group */
#define RUNC_LOG_MAX (64u << 10)
#define DEFAULT_SHM (64ull << 20)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int ep_engine_parse(const char *s)
{
	static const char *const names[] = {"auto", "native", "docker", "podman"};

	for (size_t i = 0; i < EP_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

const char *ep_engine_name(enum ep_engine e)
{
	switch (e) {
	case EP_ENGINE_NATIVE:
		return "native";
	case EP_ENGINE_DOCKER:
		return "docker";
	case EP_ENGINE_PODMAN:
		return "podman";
	default:
		return "auto";
	}
}

void ep_run_opts_init(struct ep_run_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->tty = -1;
}

/* ------------------------------------------------------------------ */
/* Validation of what the user and the image give us                   */

int ep_runtime_check_cpath(const char *path, const char *what, struct ep_error *err)
{
	size_t len = strlen(path);
	const char *p;

	if (path[0] != '/')
		return ep_error_set(err, EP_EINVAL, "%s '%s' is not an absolute path", what, path);
	if (len >= PATH_MAX)
		return ep_error_set(err, EP_EINVAL, "%s is longer than %d bytes", what, PATH_MAX - 1);
	if (len > 1 && path[len - 1] == '/')
		return ep_error_set(err, EP_EINVAL, "%s '%s' ends with '/'", what, path);
	for (p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ep_error_set(err, EP_EINVAL, "%s has a control character", what);
	for (p = path; *p;) {
		const char *c = p + 1, *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);

		if (len > 1 && n == 0)
			return ep_error_set(err, EP_EINVAL, "%s '%s' has an empty component", what, path);
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return ep_error_set(err, EP_EINVAL, "%s '%s' has a '.' or '..' component", what,
					    path);
		p = e;
	}
	/* runc CVE-2024-21626: a cwd like /proc/self/fd/N reached the host. */
	if (!strcmp(path, "/proc") || !strncmp(path, "/proc/", 6))
		return ep_error_set(err, EP_EINVAL, "%s '%s' is inside /proc", what, path);
	return 0;
}

static int append_str_array(json_t *out, const json_t *arr, struct ep_error *err)
{
	size_t i;
	json_t *v;

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return ep_error_set(err, EP_EINVAL, "image config: expected an array of strings");
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return ep_error_set(err, EP_EINVAL, "image config: expected an array of strings");
		if (json_array_append(out, v) < 0)
			return ep_error_oom(err);
	}
	return 0;
}

json_t *ep_runtime_args(const json_t *image_cfg, char *const *cmd, size_t n_cmd,
			int no_entrypoint, struct ep_error *err)
{
	cleanup_json json_t *args = json_array();

	if (!args)
		return ep_error_oom(err), NULL;
	if (!no_entrypoint &&
	    append_str_array(args, json_object_get(image_cfg, "Entrypoint"), err) < 0)
		return NULL;
	if (n_cmd) {
		for (size_t i = 0; i < n_cmd; i++)
			if (json_array_append_new(args, json_string(cmd[i])) < 0)
				return ep_error_set(err, EP_EINVAL, "command argument %zu is not UTF-8",
						    i + 1),
				       NULL;
	} else if (append_str_array(args, json_object_get(image_cfg, "Cmd"), err) < 0) {
		return NULL;
	}
	if (json_array_size(args) == 0)
		return ep_error_set(err, EP_EINVAL,
				    "no command: the image has no Entrypoint or Cmd; give one after '--'"),
		       NULL;
	return steal_pointer(&args);
}

/* Sets K=V in an ordered env array, replacing an earlier K. */
static int env_set(json_t *env, const char *kv, struct ep_error *err)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv), i;
	json_t *v;

	if (klen == 0)
		return ep_error_set(err, EP_EINVAL, "environment entry '%s' has no name", kv);
	json_array_foreach(env, i, v) {
		const char *s = json_string_value(v);

		if (s && !strncmp(s, kv, klen) && s[klen] == '=') {
			if (json_array_set_new(env, i, json_string(kv)) < 0)
				return ep_error_set(err, EP_EINVAL, "environment entry is not UTF-8");
			return 0;
		}
	}
	if (json_array_append_new(env, json_string(kv)) < 0)
		return ep_error_set(err, EP_EINVAL, "environment entry is not UTF-8");
	return 0;
}

static int env_has(const json_t *env, const char *k)
{
	size_t klen = strlen(k), i;
	json_t *v;

	json_array_foreach(env, i, v) {
		const char *s = json_string_value(v);
		if (s && !strncmp(s, k, klen) && s[klen] == '=')
			return 1;
	}
	return 0;
}

json_t *ep_runtime_env(const json_t *image_cfg, const struct ep_gpu_plan *gpu, const char **env,
		       size_t n_env, int tty, struct ep_error *err)
{
	cleanup_json json_t *out = json_array();
	const json_t *ienv = json_object_get(image_cfg, "Env");
	size_t i;
	json_t *v;

	if (!out)
		return ep_error_oom(err), NULL;
	if (ienv && !json_is_array(ienv))
		return ep_error_set(err, EP_EINVAL, "image config: Env is not an array"), NULL;
	json_array_foreach(ienv, i, v) {
		if (!json_is_string(v) || !strchr(json_string_value(v), '='))
			return ep_error_set(err, EP_EINVAL, "image config: Env[%zu] is not K=V", i), NULL;
		if (env_set(out, json_string_value(v), err) < 0)
			return NULL;
	}
	for (i = 0; gpu && i < gpu->n_env; i++)
		if (env_set(out, gpu->env[i], err) < 0)
			return NULL;
	for (i = 0; i < n_env; i++) {
		if (strchr(env[i], '=')) {
			if (env_set(out, env[i], err) < 0)
				return NULL;
		} else {
			const char *val = getenv(env[i]);
			cleanup_free char *kv = NULL;

			if (!val)
				continue;
			kv = ep_asprintf(err, "%s=%s", env[i], val);
			if (!kv || env_set(out, kv, err) < 0)
				return NULL;
		}
	}
	if (!env_has(out, "PATH") && env_set(out, "PATH=" DEFAULT_PATH, err) < 0)
		return NULL;
	if (tty && !env_has(out, "TERM") && env_set(out, "TERM=xterm", err) < 0)
		return NULL;
	return steal_pointer(&out);
}

/* ------------------------------------------------------------------ */
/* Paths inside the container's root                                  */

/* Opens path (container-absolute) inside root_fd: symlinks are followed but
 * stay inside the root, magic links are refused. */
static int in_root_open(int root_fd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
}

/* mkdir -p of a container path inside root_fd; returns an O_PATH fd of it. */
static int in_root_mkdir_p(int root_fd, const char *path, struct ep_error *err)
{
	char buf[PATH_MAX];
	int fd;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return ep_error_set(err, EP_EINVAL, "path '%s' is too long", path);
	fd = in_root_open(root_fd, buf, O_PATH | O_DIRECTORY, 0);
	if (fd >= 0)
		return fd;
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		char *slash = strrchr(buf, '/');
		const char *name = slash + 1;
		*slash = '\0';
		cleanup_close int parent = in_root_open(root_fd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY, 0);
		*slash = '/';
		if (parent < 0)
			return ep_error_errno(err, EP_EENV, errno, "open '%s' in the rootfs", buf);
		if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
			return ep_error_errno(err, EP_EENV, errno, "mkdir '%s' in the rootfs", buf);
		*p = c;
		if (!c)
			break;
	}
	fd = in_root_open(root_fd, buf, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s' in the rootfs", path);
	return fd;
}

/* Splits a container path into a parent fd (created, inside the root) and
 * its last component. */
static int in_root_parent(int root_fd, const char *path, const char **base, struct ep_error *err)
{
	const char *slash = strrchr(path, '/');
	char parent[PATH_MAX];

	if (!slash || !slash[1] || strlen(path) >= sizeof(parent))
		return ep_error_set(err, EP_EINVAL, "bad container path '%s'", path);
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	*base = slash + 1;
	return in_root_mkdir_p(root_fd, parent[0] ? parent : "/", err);
}

/* Makes sure path is a mount target of the right kind (dir or file).  An
 * image symlink, or an entry of the other kind, is replaced: the
 * container's view changes, nothing outside the root does. */
static int in_root_target(int root_fd, const char *path, int dir, struct ep_error *err)
{
	const char *base;
	cleanup_close int pfd = in_root_parent(root_fd, path, &base, err);
	struct stat st;
	int fd;

	if (pfd < 0)
		return -1;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))
			return 0;
		if (unlinkat(pfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
			return ep_error_errno(err, EP_EENV, errno,
					      "cannot replace '%s' in the rootfs by a mount target", path);
	} else if (errno != ENOENT) {
		return ep_error_errno(err, EP_EENV, errno, "stat '%s' in the rootfs", path);
	}
	if (dir) {
		if (mkdirat(pfd, base, 0755) < 0)
			return ep_error_errno(err, EP_EENV, errno, "mkdir '%s' in the rootfs", path);
		return 0;
	}
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s' in the rootfs", path);
	close(fd);
	return 0;
}

static int in_root_symlink(int root_fd, const char *path, const char *target, struct ep_error *err)
{
	const char *base;
	cleanup_close int pfd = in_root_parent(root_fd, path, &base, err);
	struct stat st;

	if (pfd < 0)
		return -1;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		unlinkat(pfd, base, 0);
	if (symlinkat(target, pfd, base) < 0)
		return ep_error_errno(err, EP_EENV, errno, "symlink '%s' in the rootfs", path);
	return 0;
}

/* Reads a small file of the image (inside the root), bounded.  NULL with
 * errno ENOENT when it is missing. */
static char *in_root_read(int root_fd, const char *path, size_t max, struct ep_error *err)
{
	cleanup_close int fd = in_root_open(root_fd, path, O_RDONLY | O_NOFOLLOW, 0);
	cleanup_free char *buf = NULL;
	size_t len = 0;
	struct stat st;

	if (fd < 0) {
		if (errno == ENOENT)
			return NULL;
		return ep_error_errno(err, EP_EENV, errno, "open '%s' in the rootfs", path), NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ep_error_set(err, EP_EINVAL, "'%s' in the image is not a regular file", path), NULL;
	buf = ep_malloc(max + 1, err);
	if (!buf)
		return NULL;
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ep_error_errno(err, EP_EENV, errno, "read '%s' in the rootfs", path), NULL;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return ep_error_set(err, EP_EINVAL, "'%s' in the image is larger than %zu bytes",
					    path, max),
			       NULL;
	}
	buf[len] = '\0';
	return steal_pointer(&buf);
}

static int parse_id(const char *s, size_t n, unsigned long *out)
{
	char *end;
	char tmp[16];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)tmp[i]))
			return -1;
	errno = 0;
	*out = strtoul(tmp, &end, 10);
	return errno || *out > 0x7fffffffUL ? -1 : 0;
}

/* Finds NAME (or numeric id) in a colon file: field 0 name, 2 id, 3 gid or
 * member list.  Fills fields[] (pointers into the line). */
static int colon_lookup(char *text, const char *key, int by_id, char *fields[7], int nf)
{
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		int n = 0;

		if (next)
			*next++ = '\0';
		for (char *p = line; n < nf; n++) {
			fields[n] = p;
			p = strchr(p, ':');
			if (!p) {
				n++;
				break;
			}
			*p++ = '\0';
		}
		if (n >= 3 && !strcmp(by_id ? fields[2] : fields[0], key))
			return n;
		line = next;
	}
	return -1;
}

int ep_runtime_user(int root_fd, const char *spec, uid_t *uid, gid_t *gid, gid_t **extra,
		    size_t *n_extra, struct ep_error *err)
{
	cleanup_free char *passwd = NULL, *group = NULL, *user = NULL;
	const char *colon;
	char *f[7];
	unsigned long u, g;
	int have_group = 0, uid_numeric;
	const char *uname = NULL;

	*uid = 0;
	*gid = 0;
	if (extra)
		*extra = NULL;
	if (n_extra)
		*n_extra = 0;
	if (!spec || !*spec)
		return 0;
	if (strlen(spec) > 256)
		return ep_error_set(err, EP_EINVAL, "user '%.40s...' is too long", spec);
	colon = strchr(spec, ':');
	user = colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
	if (!user)
		return ep_error_oom(err);
	if (!*user)
		return ep_error_set(err, EP_EINVAL, "user '%s' has no name or uid", spec);
	uid_numeric = parse_id(user, strlen(user), &u) == 0;
	passwd = in_root_read(root_fd, "/etc/passwd", PASSWD_MAX, err);
	if (!passwd && err->code)
		return -1;
	if (uid_numeric) {
		*uid = (uid_t)u;
		if (passwd && colon_lookup(passwd, user, 1, f, 7) >= 4 &&
		    parse_id(f[3], strlen(f[3]), &g) == 0) {
			*gid = (gid_t)g;
			uname = f[0];
		}
	} else {
		if (!passwd || colon_lookup(passwd, user, 0, f, 7) < 4 ||
		    parse_id(f[2], strlen(f[2]), &u) < 0 || parse_id(f[3], strlen(f[3]), &g) < 0)
			return ep_error_set(err, EP_EINVAL, "user '%s' is not in the image's /etc/passwd",
					    user);
		*uid = (uid_t)u;
		*gid = (gid_t)g;
		uname = f[0];
	}
	if (colon) {
		const char *gs = colon + 1;

		if (parse_id(gs, strlen(gs), &g) == 0) {
			*gid = (gid_t)g;
		} else {
			group = in_root_read(root_fd, "/etc/group", PASSWD_MAX, err);
			if (!group && err->code)
				return -1;
			if (!group || colon_lookup(group, gs, 0, f, 4) < 3 ||
			    parse_id(f[2], strlen(f[2]), &g) < 0)
				return ep_error_set(err, EP_EINVAL,
						    "group '%s' is not in the image's /etc/group", gs);
			*gid = (gid_t)g;
		}
		have_group = 1;
	}
	/* Supplementary groups: only when the group was not given, like docker. */
	if (!have_group && uname && extra && n_extra) {
		cleanup_free char *uname_copy = strdup(uname);
		cleanup_free gid_t *list = NULL;
		size_t n = 0;

		if (!uname_copy)
			return ep_error_oom(err);
		group = in_root_read(root_fd, "/etc/group", PASSWD_MAX, err);
		if (!group && err->code)
			return -1;
		for (char *line = group; line && *line;) {
			char *next = strchr(line, '\n');
			char *gf[4];
			int k = 0;

			if (next)
				*next++ = '\0';
			for (char *p = line; k < 4; k++) {
				gf[k] = p;
				p = strchr(p, ':');
				if (!p) {
					k++;
					break;
				}
				*p++ = '\0';
			}
			if (k == 4 && parse_id(gf[2], strlen(gf[2]), &g) == 0 && (gid_t)g != *gid) {
				char *save = NULL;
				for (char *m = strtok_r(gf[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
					if (!strcmp(m, uname_copy) && n < 64) {
						gid_t *nl = ep_realloc(list, (n + 1) * sizeof(*nl), err);
						if (!nl)
							return -1;
						list = nl;
						list[n++] = (gid_t)g;
					}
			}
			line = next;
		}
		*extra = steal_pointer(&list);
		*n_extra = n;
	}
	return 0;
}

int ep_runtime_volume(const char *spec, char **src, const char **dst, size_t *dst_len, int *ro,
		      struct ep_error *err)
{
	const char *c1 = strchr(spec, ':'), *c2;
	cleanup_free char *s = NULL;
	char dbuf[PATH_MAX];
	size_t dl;

	*ro = 0;
	if (!c1 || c1 == spec)
		return ep_error_set(err, EP_EINVAL, "volume '%s' is not SRC:DST[:ro]", spec);
	c2 = strchr(c1 + 1, ':');
	dl = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	if (c2) {
		if (!strcmp(c2 + 1, "ro"))
			*ro = 1;
		else if (strcmp(c2 + 1, "rw"))
			return ep_error_set(err, EP_EINVAL, "volume '%s': option '%s' is not ro or rw",
					    spec, c2 + 1);
	}
	if (dl == 0 || dl >= sizeof(dbuf))
		return ep_error_set(err, EP_EINVAL, "volume '%s' has no destination", spec);
	memcpy(dbuf, c1 + 1, dl);
	dbuf[dl] = '\0';
	if (ep_runtime_check_cpath(dbuf, "volume destination", err) < 0)
		return -1;
	if (!strcmp(dbuf, "/"))
		return ep_error_set(err, EP_EINVAL, "volume '%s' would replace the container root", spec);
	s = strndup(spec, (size_t)(c1 - spec));
	if (!s)
		return ep_error_oom(err);
	*src = realpath(s, NULL);
	if (!*src)
		return ep_error_errno(err, EP_EINVAL, errno, "volume source '%s'", s);
	*dst = c1 + 1;
	*dst_len = dl;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The runtime spec                                                   */

static const char *const default_caps[] = {
	/* docker's default set (moby oci/caps/defaults.go) */
	"CAP_CHOWN",	"CAP_DAC_OVERRIDE",	"CAP_FSETID",	  "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW",	"CAP_SETGID",		"CAP_SETUID",	  "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",	  "CAP_AUDIT_WRITE",
};

static const char *const masked_paths[] = {
	"/proc/acpi",	    "/proc/asound",	 "/proc/kcore",	    "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi",	    "/sys/firmware",	 "/sys/devices/virtual/powercap",
};

static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* Calls that docker's default profile refuses and that the default
 * capability set does not already stop: kernel keyrings (not namespaced),
 * namespaces and mounts, io_uring, userfaultfd, perf, bpf, module and clock
 * calls.  A deny-list, so new syscalls keep working (docs/run.md). */
static const char *const denied_syscalls[] = {
	"acct",		    "add_key",	      "bpf",	       "clock_adjtime", "clock_settime",
	"delete_module",    "finit_module",   "fsconfig",      "fsmount",	"fsopen",
	"fspick",	    "init_module",    "io_uring_enter", "io_uring_register", "io_uring_setup",
	"ioperm",	    "iopl",	      "kexec_file_load", "kexec_load",	"keyctl",
	"lookup_dcookie",   "mount",	      "mount_setattr", "move_mount",	"name_to_handle_at",
	"nfsservctl",	    "open_by_handle_at", "open_tree",  "perf_event_open", "pivot_root",
	"quotactl",	    "quotactl_fd",    "reboot",	       "request_key",	"setns",
	"settimeofday",	    "swapoff",	      "swapon",	       "syslog",	"umount2",
	"unshare",	    "uselib",	      "userfaultfd",   "ustat",		"vm86",
	"vm86old",	    "_sysctl",	      "sysfs",
};

static json_t *str_array(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *seccomp_profile(void)
{
	/* clone() with a namespace flag: one rule per flag (masked equal). */
	static const unsigned long ns_flags[] = {0x00020000, 0x02000000, 0x04000000, 0x08000000,
						 0x10000000, 0x20000000, 0x40000000};
	json_t *sys = json_array(), *p;

	if (!sys)
		return NULL;
	json_array_append_new(sys, json_pack("{s:o,s:s,s:i}", "names",
					     str_array(denied_syscalls, EP_ARRAY_SIZE(denied_syscalls)),
					     "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM));
	/* glibc falls back to clone() on ENOSYS, where the flag rules apply */
	json_array_append_new(sys, json_pack("{s:[s],s:s,s:i}", "names", "clone3", "action",
					     "SCMP_ACT_ERRNO", "errnoRet", ENOSYS));
	for (size_t i = 0; i < EP_ARRAY_SIZE(ns_flags); i++)
		json_array_append_new(
			sys, json_pack("{s:[s],s:s,s:i,s:[{s:i,s:I,s:I,s:s}]}", "names", "clone",
				       "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM, "args", "index", 0,
				       "value", (json_int_t)ns_flags[i], "valueTwo",
				       (json_int_t)ns_flags[i], "op", "SCMP_CMP_MASKED_EQ"));
	p = json_pack("{s:s,s:[s,s,s],s:o}", "defaultAction", "SCMP_ACT_ALLOW", "architectures",
		      "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "syscalls", sys);
	return p;
}

static int add_mount(json_t *mounts, const char *dst, const char *type, const char *src,
		     const char *opts_csv, struct ep_error *err)
{
	json_t *opts = json_array(), *m;
	char buf[512];

	if (!opts)
		return ep_error_oom(err);
	snprintf(buf, sizeof(buf), "%s", opts_csv);
	for (char *save = NULL, *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save))
		json_array_append_new(opts, json_string(o));
	m = json_pack("{s:s,s:s,s:s,s:o}", "destination", dst, "type", type, "source", src, "options",
		      opts);
	if (!m || json_array_append_new(mounts, m) < 0)
		return ep_error_set(err, EP_EINVAL, "mount '%s': path is not UTF-8", dst);
	return 0;
}

static int under_proc(const char *p)
{
	return !strcmp(p, "/proc") || !strncmp(p, "/proc/", 6);
}

json_t *ep_runtime_spec(const struct ep_spec_params *p, struct ep_error *err)
{
	const struct ep_run_opts *o = p->o;
	const struct ep_gpu_plan *gpu = p->gpu;
	cleanup_json json_t *spec = NULL;
	json_t *args, *env, *mounts, *rlimits, *caps, *gids, *devices, *rules, *linux_, *process;
	const char *cwd = NULL;
	struct rlimit rl;
	uint64_t shm = gpu && gpu->shm_size ? gpu->shm_size : DEFAULT_SHM;
	char opt[256];
	char hostp[PATH_MAX];

	args = ep_runtime_args(p->image_cfg, o->cmd, o->n_cmd, o->no_entrypoint, err);
	if (!args)
		return NULL;
	env = ep_runtime_env(p->image_cfg, gpu, o->env, o->n_env, p->tty, err);
	if (!env) {
		json_decref(args);
		return NULL;
	}
	if (o->workdir)
		cwd = o->workdir;
	else if (p->workspace)
		cwd = "/workspace";
	else {
		const char *wd = json_string_value(json_object_get(p->image_cfg, "WorkingDir"));
		cwd = wd && *wd ? wd : "/";
	}
	if (ep_runtime_check_cpath(cwd, o->workdir ? "working dir" : "image WorkingDir", err) < 0) {
		json_decref(args);
		json_decref(env);
		return NULL;
	}
	caps = str_array(default_caps, EP_ARRAY_SIZE(default_caps));
	gids = json_array();
	for (size_t i = 0; gids && i < p->n_extra_gids; i++)
		json_array_append_new(gids, json_integer(p->extra_gids[i]));
	/* Never above the current hard limit (podman 4.3 fails here by raising
	 * it); the soft limit goes up to the hard one, as docker's defaults do. */
	rlimits = json_array();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t v = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20) ? (1u << 20) : rl.rlim_max;
		json_array_append_new(rlimits, json_pack("{s:s,s:I,s:I}", "type", "RLIMIT_NOFILE", "hard",
							 (json_int_t)v, "soft", (json_int_t)v));
	}
	process = json_pack("{s:b,s:{s:i,s:i,s:o},s:o,s:o,s:s,s:{s:o,s:o,s:o},s:o,s:b}", "terminal",
			    p->tty, "user", "uid", (int)p->uid, "gid", (int)p->gid, "additionalGids",
			    gids, "args", args, "env", env, "cwd", cwd, "capabilities", "bounding",
			    json_copy(caps), "effective", json_copy(caps), "permitted", caps,
			    "rlimits", rlimits, "noNewPrivileges", 1);
	if (!process)
		return ep_error_set(err, EP_EINVAL, "runtime spec: a value is not UTF-8"), NULL;

	mounts = json_array();
	spec = json_pack("{s:s,s:o,s:{s:s,s:b},s:s,s:o}", "ociVersion", "1.0.2", "process", process,
			 "root", "path", p->rootfs, "readonly", 0, "hostname",
			 p->hostname ? p->hostname : "envpin", "mounts", mounts);
	if (!spec || !mounts)
		return ep_error_oom(err), NULL;
	snprintf(opt, sizeof(opt), "nosuid,noexec,nodev,mode=1777,size=%llu",
		 (unsigned long long)shm);
	if (add_mount(mounts, "/proc", "proc", "proc", "nosuid,noexec,nodev", err) < 0 ||
	    add_mount(mounts, "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k",
		      err) < 0 ||
	    add_mount(mounts, "/dev/pts", "devpts", "devpts",
		      "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5", err) < 0 ||
	    add_mount(mounts, "/dev/shm", "tmpfs", "shm", opt, err) < 0 ||
	    add_mount(mounts, "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev", err) < 0 ||
	    add_mount(mounts, "/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro", err) < 0 ||
	    add_mount(mounts, "/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime,ro",
		      err) < 0)
		return NULL;
	{
		static const char *const etc[] = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"};
		for (size_t i = 0; i < EP_ARRAY_SIZE(etc); i++) {
			snprintf(hostp, sizeof(hostp), "%s%s", p->host_root ? p->host_root : "", etc[i]);
			if (access(hostp, R_OK) == 0 &&
			    add_mount(mounts, etc[i], "bind", hostp, "rbind,rprivate,ro,nosuid,nodev",
				      err) < 0)
				return NULL;
		}
	}
	if (p->workspace &&
	    add_mount(mounts, "/workspace", "bind", p->workspace, "rbind,rprivate", err) < 0)
		return NULL;
	for (size_t i = 0; i < o->n_volumes; i++) {
		cleanup_free char *src = NULL;
		const char *dst;
		size_t dl;
		int ro;
		char dbuf[PATH_MAX];

		if (ep_runtime_volume(o->volumes[i], &src, &dst, &dl, &ro, err) < 0)
			return NULL;
		snprintf(dbuf, sizeof(dbuf), "%.*s", (int)dl, dst);
		if (add_mount(mounts, dbuf, "bind", src, ro ? "rbind,rprivate,ro" : "rbind,rprivate",
			      err) < 0)
			return NULL;
	}
	for (size_t i = 0; gpu && i < gpu->n_mounts; i++) {
		/* runc refuses bind mounts inside /proc (docs/run.md) */
		if (under_proc(gpu->mounts[i].path))
			continue;
		const char *mo = gpu->mounts[i].options;
		if (!mo || !*mo)
			mo = gpu->mounts[i].read_only ? "rbind,rprivate,ro,nosuid,nodev"
						      : "rbind,rprivate,nosuid,nodev";
		if (add_mount(mounts, gpu->mounts[i].path,
			      gpu->mounts[i].type ? gpu->mounts[i].type : "bind",
			      gpu->mounts[i].host_path, mo, err) < 0)
			return NULL;
	}
	/* plan files were written to BUNDLE/gpu-files/N by the caller */
	for (size_t i = 0; gpu && p->gpu_files_dir && i < gpu->n_files; i++) {
		char src[PATH_MAX];

		if (gpu->files[i].in_proc)
			continue;
		snprintf(src, sizeof(src), "%s/%zu", p->gpu_files_dir, i);
		if (add_mount(mounts, gpu->files[i].path, "bind", src, "rbind,rprivate,ro,nosuid,nodev",
			      err) < 0)
			return NULL;
	}
	if (gpu && gpu->n_hooks) {
		/* only from a CDI spec, which the host's administrator wrote */
		json_t *hooks = json_object();
		for (size_t i = 0; hooks && i < gpu->n_hooks; i++) {
			const struct ep_gpu_hook *h = &gpu->hooks[i];
			json_t *list = json_object_get(hooks, h->hook_name), *hj;
			if (!list) {
				list = json_array();
				json_object_set_new(hooks, h->hook_name, list);
			}
			hj = json_pack("{s:s,s:o,s:o}", "path", h->path, "args",
				       str_array((const char *const *)h->args, h->n_args), "env",
				       str_array((const char *const *)h->env, h->n_env));
			if (hj && h->timeout > 0)
				json_object_set_new(hj, "timeout", json_integer(h->timeout));
			json_array_append_new(list, hj);
		}
		if (!hooks || json_object_set_new(spec, "hooks", hooks) < 0)
			return ep_error_oom(err), NULL;
	}

	devices = json_array();
	rules = json_pack("[{s:b,s:s}]", "allow", 0, "access", "rwm");
	for (size_t i = 0; gpu && i < gpu->n_devices; i++) {
		const struct ep_gpu_device *d = &gpu->devices[i];
		char type[2] = {d->type ? d->type : 'c', 0};

		json_array_append_new(devices,
				      json_pack("{s:s,s:s,s:I,s:I,s:i,s:i,s:i}", "path", d->path, "type",
						type, "major", (json_int_t)d->major, "minor",
						(json_int_t)d->minor, "fileMode",
						(int)(d->file_mode ? d->file_mode : 0666), "uid", 0, "gid", 0));
		json_array_append_new(rules, json_pack("{s:b,s:s,s:I,s:I,s:s}", "allow", 1, "type", type,
						       "major", (json_int_t)d->major, "minor",
						       (json_int_t)d->minor, "access",
						       d->access[0] ? d->access : "rwm"));
	}
	linux_ = json_pack("{s:[{s:s},{s:s},{s:s},{s:s}],s:o,s:o,s:o,s:{s:o},s:o}", "namespaces",
			   "type", "pid", "type", "ipc", "type", "uts", "type", "mount", "maskedPaths",
			   str_array(masked_paths, EP_ARRAY_SIZE(masked_paths)), "readonlyPaths",
			   str_array(readonly_paths, EP_ARRAY_SIZE(readonly_paths)), "devices", devices,
			   "resources", "devices", rules, "seccomp", seccomp_profile());
	if (!linux_ || json_object_set_new(spec, "linux", linux_) < 0)
		return ep_error_oom(err), NULL;
	return steal_pointer(&spec);
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */

static int on_path(const char *bin)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path || !*path)
		path = DEFAULT_PATH;
	for (const char *p = path; *p;) {
		const char *e = strchrnul(p, ':');
		if (e > p && snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, bin) < (int)sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* Runs argv and waits; stdout (and stderr when quiet) go to /dev/null.
 * Returns the exit status, or -1 when it could not start. */
static int run_quiet(char *const argv[], int quiet_stderr)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 1);
			if (quiet_stderr)
				dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

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

static int random_id(char out[32], struct ep_error *err)
{
	unsigned char b[6];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return ep_error_errno(err, EP_EENV, errno, "getrandom");
	snprintf(out, 32, "envpin-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The native engine: bundle, overlay, runc                            */

struct bundle {
	char *run_dir;   /* STORE/run */
	char *runc_root; /* STORE/run/runc */
	char *dir;       /* STORE/run/<id> */
	char *rootfs;
	char id[72];
	int lock_fd;
	int keep;
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
	char state[PATH_MAX], rootfs[PATH_MAX];
	struct ep_error e = EP_ERROR_INIT;

	snprintf(state, sizeof(state), "%s/%s", runc_root, id);
	if (access(state, F_OK) == 0) {
		char *kill_argv[] = {"runc", "--root", (char *)runc_root, "kill", (char *)id, "KILL", NULL};
		char *del_argv[] = {"runc", "--root", (char *)runc_root, "delete", "--force", (char *)id, NULL};

		run_quiet(kill_argv, 1);
		run_quiet(del_argv, 1);
	}
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
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
		char p[PATH_MAX];
		struct stat st;
		int fd;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "runc") || !valid_name(de->d_name))
			continue;
		snprintf(p, sizeof(p), "%s/%s/kept", run_dir, de->d_name);
		if (access(p, F_OK) == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s/lock", run_dir, de->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			/* a run that is just being set up has no lock yet */
			snprintf(p, sizeof(p), "%s/%s", run_dir, de->d_name);
			if (lstat(p, &st) == 0 && time(NULL) - st.st_mtime > 60)
				bundle_cleanup(runc_root, p, de->d_name, 0);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			snprintf(p, sizeof(p), "%s/%s", run_dir, de->d_name);
			bundle_cleanup(runc_root, p, de->d_name, 0);
		}
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
	} else if (random_id(b->id, err) < 0) {
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
			return ep_error_set(err, EP_EINVAL, "a container named '%s' exists (%s/%s)", b->id,
					    b->run_dir, b->id);
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
		return b->rootfs ? ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", b->rootfs) : -1;
	return 0;
}

/* Mounts the overlay: lowerdirs top layer first.  The lowers usually share
 * STORE/rootfs, so they are given relative to it (mount options are
 * limited to a page). */
static int mount_overlay(struct bundle *b, char **lowers, size_t n, struct ep_error *err)
{
	cleanup_free char *upper = ep_path_join(b->dir, "upper", err);
	cleanup_free char *work = upper ? ep_path_join(b->dir, "work", err) : NULL;
	cleanup_free char *opts = NULL, *parent = NULL;
	cleanup_close int cwd = -1;
	size_t plen = 0, len;
	int rc, e;

	if (!work)
		return -1;
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0)
		return ep_error_errno(err, EP_EENV, errno, "mkdir in '%s'", b->dir);
	if (n == 0) {
		/* an empty image: overlay needs one lower */
		lowers = (char *[]){NULL};
		parent = ep_path_join(b->dir, "empty", err);
		if (!parent || mkdir(parent, 0755) < 0)
			return ep_error_errno(err, EP_EENV, errno, "mkdir in '%s'", b->dir);
		lowers[0] = parent;
		n = 1;
	}
	{
		const char *sl = strrchr(lowers[0], '/');
		plen = sl ? (size_t)(sl - lowers[0]) : 0;
		for (size_t i = 0; i < n; i++)
			if (strncmp(lowers[i], lowers[0], plen) || lowers[i][plen] != '/' ||
			    strchr(lowers[i] + plen + 1, '/'))
				plen = 0;
	}
	len = strlen(upper) + strlen(work) + 80;
	for (size_t i = 0; i < n; i++)
		len += strlen(lowers[i]) + 1;
	opts = ep_malloc(len, err);
	if (!opts)
		return -1;
	strcpy(opts, "lowerdir=");
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(opts, ":");
		strcat(opts, plen ? lowers[i] + plen + 1 : lowers[i]);
	}
	strcat(opts, ",upperdir=");
	strcat(opts, upper);
	strcat(opts, ",workdir=");
	strcat(opts, work);
	if (strlen(opts) >= 4096)
		return ep_error_set(err, EP_EENV, "overlay options are longer than a page (%zu layers)", n);
	if (plen) {
		char pdir[PATH_MAX];
		snprintf(pdir, sizeof(pdir), "%.*s", (int)plen, lowers[0]);
		cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cwd < 0 || chdir(pdir) < 0)
			return ep_error_errno(err, EP_EENV, errno, "chdir '%s'", pdir);
	}
	/* volatile: the upper dir is thrown away, so overlayfs need not sync
	 * it at unmount (that sync cost ~15 ms per start here); Linux >= 5.10 */
	strcat(opts, ",volatile");
	rc = mount("overlay", b->rootfs, "overlay", MS_NOSUID | MS_NODEV, opts);
	if (rc < 0 && errno == EINVAL) {
		opts[strlen(opts) - strlen(",volatile")] = '\0';
		rc = mount("overlay", b->rootfs, "overlay", MS_NOSUID | MS_NODEV, opts);
	}
	e = errno;
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
		if (in_root_target(root_fd, dirs[i], 1, err) < 0)
			return -1;
	for (size_t i = 0; i < EP_ARRAY_SIZE(files); i++)
		if (in_root_target(root_fd, files[i], 0, err) < 0)
			return -1;
	if (workspace && in_root_target(root_fd, "/workspace", 1, err) < 0)
		return -1;
	for (size_t i = 0; i < o->n_volumes; i++) {
		cleanup_free char *src = NULL;
		const char *dst;
		size_t dl;
		int ro;
		struct stat st;
		char dbuf[PATH_MAX];

		if (ep_runtime_volume(o->volumes[i], &src, &dst, &dl, &ro, err) < 0)
			return -1;
		snprintf(dbuf, sizeof(dbuf), "%.*s", (int)dl, dst);
		if (stat(src, &st) < 0)
			return ep_error_errno(err, EP_EINVAL, errno, "volume source '%s'", src);
		if (under_proc(dbuf) || !strcmp(dbuf, "/dev") || !strcmp(dbuf, "/sys"))
			return ep_error_set(err, EP_EINVAL, "volume destination '%s' is refused", dbuf);
		if (in_root_target(root_fd, dbuf, S_ISDIR(st.st_mode), err) < 0)
			return -1;
	}
	for (size_t i = 0; gpu && i < gpu->n_mounts; i++) {
		struct stat st;

		if (under_proc(gpu->mounts[i].path))
			continue;
		if (ep_runtime_check_cpath(gpu->mounts[i].path, "gpu mount", err) < 0)
			return -1;
		if (stat(gpu->mounts[i].host_path, &st) < 0)
			return ep_error_errno(err, EP_EENV, errno, "gpu: '%s'", gpu->mounts[i].host_path);
		if (in_root_target(root_fd, gpu->mounts[i].path, S_ISDIR(st.st_mode), err) < 0)
			return -1;
	}
	for (size_t i = 0; gpu && i < gpu->n_links; i++) {
		if (ep_runtime_check_cpath(gpu->links[i].path, "gpu link", err) < 0 ||
		    in_root_symlink(root_fd, gpu->links[i].path, gpu->links[i].target, err) < 0)
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

/* The watchdog: a forked copy of envpin in the same mount namespace that
 * waits on a pipe.  A byte means "envpin cleaned up"; EOF means envpin died
 * (SIGKILL): it kills the container and removes the bundle. */
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
		int nul = open("/dev/null", O_RDWR);

		close(p[1]);
		setsid();
		for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
			signal(forwarded[i], SIG_IGN);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
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

/* runc's own failure (it logs "runc run failed" at level error) against
 * the container's exit status. */
static int runc_failure(const char *log, int *status, struct ep_error *err)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *text = ep_read_file(log, RUNC_LOG_MAX, NULL, &e);
	char *msg = NULL;

	if (!text)
		return 0;
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
	pid = fork();
	if (pid < 0) {
		*status = EP_RUN_EFAIL;
		return ep_error_errno(err, EP_EENV, errno, "fork");
	}
	if (pid == 0) {
		char *argv[] = {"runc", "--root", b->runc_root, "--log", log, "--log-format", "json",
				"run", "--bundle", b->dir, (char *)b->id, NULL};
		for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
			signal(forwarded[i], SIG_DFL);
		execvp("runc", argv);
		_exit(errno == ENOENT ? 127 : 126);
	}
	g_child = pid;
	g_stops = 0;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			st = 0x7f00;
			break;
		}
		if (g_stops >= 3) {
			char *kill_argv[] = {"runc", "--root", b->runc_root, "kill", (char *)b->id, "KILL", NULL};
			g_stops = -100;
			run_quiet(kill_argv, 1);
		}
	}
	g_child = 0;
	for (size_t i = 0; i < EP_ARRAY_SIZE(forwarded); i++)
		sigaction(forwarded[i], &old[i], NULL);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (*status != 0 && runc_failure(log, status, err) < 0)
		return -1;
	return 0;
}

static int host_has_driver(const char *host_root)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/proc/driver/nvidia/version", host_root);
	if (access(p, F_OK) == 0)
		return 1;
	snprintf(p, sizeof(p), "%s/dev/nvidiactl", host_root);
	return access(p, F_OK) == 0;
}

/* NULL-terminated K=V list of the image Env, for ep_gpu_plan. */
static char **image_env(const json_t *cfg)
{
	const json_t *env = json_object_get(cfg, "Env");
	size_t n = json_array_size(env), k = 0;
	char **v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		const char *s = json_string_value(json_array_get(env, i));
		if (s)
			v[k++] = (char *)s;
	}
	return v;
}

/* The GPU plan for --gpus (auto: all when the host has a driver).  rootfs
 * (may be NULL) picks the container's lib dir.  *have is 0 for no GPU. */
static int make_plan(const char *gpus, const json_t *cfg, const char *rootfs,
		     struct ep_gpu_plan *plan, int *have, struct ep_error *err)
{
	cleanup_free char *root = NULL;
	cleanup_free char **ienv = NULL;
	struct ep_gpu_opts go = {0};

	*have = 0;
	if (!gpus || !*gpus)
		gpus = "auto";
	if (!strcmp(gpus, "none"))
		return 0;
	root = ep_gpu_host_root(err);
	if (!root)
		return -1;
	if (!strcmp(gpus, "auto")) {
		if (!host_has_driver(root))
			return 0;
		gpus = "all";
	}
	ienv = image_env(cfg);
	if (!ienv)
		return ep_error_oom(err);
	go.host_root = root;
	go.gpus = gpus;
	go.image_env = ienv;
	go.lib_dir = rootfs ? ep_gpu_lib_dir_for_rootfs(rootfs) : NULL;
	if (ep_gpu_plan_opts(&go, plan, err) < 0)
		return ep_error_wrap(err, "--gpus %s", gpus);
	*have = 1;
	return 0;
}

static int write_gpu_files(const char *dir, const struct ep_gpu_plan *gpu, struct ep_error *err)
{
	if (!gpu || !gpu->n_files)
		return 0;
	if (mkdir(dir, 0755) < 0)
		return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", dir);
	for (size_t i = 0; i < gpu->n_files; i++) {
		char p[PATH_MAX];
		cleanup_close int fd = -1;

		if (gpu->files[i].in_proc)
			continue;
		snprintf(p, sizeof(p), "%s/%zu", dir, i);
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

static int run_native(struct ep_store *s, const struct ep_image_loc *loc, const json_t *info,
		      const struct ep_run_opts *o, int tty, int *status, struct ep_error *err)
{
	struct ep_gpu_plan plan;
	const struct ep_gpu_plan *gpu = NULL;
	int have_plan = 0;
	cleanup_free char *gpu_files = NULL;
	const json_t *cfg = json_object_get(info, "config");
	struct bundle b;
	char **lowers = NULL;
	size_t n_lowers = 0;
	cleanup_free char *workspace = NULL;
	cleanup_free gid_t *extra = NULL;
	cleanup_json json_t *spec = NULL;
	cleanup_close int root_fd = -1;
	size_t n_extra = 0;
	uid_t uid;
	gid_t gid;
	char host[256] = "envpin";
	pid_t watchdog = -1;
	int wfd = -1, rc = -1, flattened = 0;
	struct ep_spec_params sp = {0};

	*status = EP_RUN_EFAIL;
	if (geteuid() != 0)
		return ep_error_set(err, EP_EENV,
				    "the native engine needs root (runc, overlayfs); "
				    "use --engine docker or --engine podman");
	if (!on_path("runc"))
		return ep_error_set(err, EP_EENV, "runc is not installed (or use --engine docker)");
	if (!o->no_workspace) {
		workspace = getcwd(NULL, 0);
		if (!workspace)
			return ep_error_errno(err, EP_EENV, errno, "getcwd");
	}
	if (loc->in_store &&
	    layer_dirs(s, json_object_get(info, "layers"), &lowers, &n_lowers, o, err) < 0)
		return -1;
	if (bundle_create(s, o->name, o->keep, &b, err) < 0)
		goto out;
	/* The overlay lives in a private mount namespace: it disappears with
	 * the last of envpin, its watchdog and runc, whatever kills them. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		ep_error_errno(err, EP_EENV, errno, "private mount namespace");
		goto out;
	}
	if (!loc->in_store || mount_overlay(&b, lowers, n_lowers, err) < 0) {
		/* no overlayfs here (or an image outside the store): a flattened copy */
		struct ep_unpack_opts uo;

		ep_error_clear(err);
		ep_unpack_opts_init(&uo);
		uo.whiteouts = EP_WHITEOUT_APPLY;
		uo.allow_devices = 1;
		uo.same_owner = 1;
		if (rmdir(b.rootfs) < 0 ||
		    ep_unpack_image(loc->layout, loc->digest, b.rootfs, &uo, err) < 0) {
			ep_error_wrap(err, "flatten the image into '%s'", b.rootfs);
			goto out;
		}
		flattened = 1;
	}
	(void)flattened;
	root_fd = open(b.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		ep_error_errno(err, EP_EENV, errno, "open '%s'", b.rootfs);
		goto out;
	}
	memset(&plan, 0, sizeof(plan));
	if (make_plan(o->gpus, cfg, b.rootfs, &plan, &have_plan, err) < 0)
		goto out;
	if (have_plan) {
		gpu = &plan;
		gpu_files = ep_path_join(b.dir, "gpu-files", err);
		if (!gpu_files || write_gpu_files(gpu_files, gpu, err) < 0)
			goto out;
	}
	if (prepare_rootfs(root_fd, o, gpu, workspace != NULL, err) < 0 ||
	    ep_runtime_user(root_fd,
			    o->user ? o->user : json_string_value(json_object_get(cfg, "User")), &uid,
			    &gid, &extra, &n_extra, err) < 0)
		goto out;
	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "envpin");
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
	sp.tty = tty;
	sp.gpu_files_dir = gpu_files;
	spec = ep_runtime_spec(&sp, err);
	if (!spec || write_spec(b.dir, spec, err) < 0)
		goto out;
	if (o->keep) {
		cleanup_free char *kept = ep_path_join(b.dir, "kept", err);
		int fd = kept ? open(kept, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
		if (fd >= 0)
			close(fd);
	}
	watchdog = start_watchdog(&b, &wfd);
	if (watchdog < 0) {
		ep_error_errno(err, EP_EENV, errno, "start the cleanup watchdog");
		goto out;
	}
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
	free_strv(lowers, n_lowers);
	if (have_plan)
		ep_gpu_plan_release(&plan);
	return rc;
}

/* ------------------------------------------------------------------ */
/* docker and podman                                                   */

struct argv {
	char **v;
	size_t n, cap;
	int oom;
};

static void argv_add(struct argv *a, const char *s)
{
	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **v = realloc(a->v, cap * sizeof(*v));
		if (!v) {
			a->oom = 1;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n] = strdup(s);
	if (!a->v[a->n]) {
		a->oom = 1;
		return;
	}
	a->v[++a->n] = NULL;
}

static void argv_addf(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argv_addf(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		a->oom = 1;
	else
		argv_add(a, s);
	va_end(ap);
	free(s);
}

static void argv_release(struct argv *a)
{
	free_strv(a->v, a->n);
	memset(a, 0, sizeof(*a));
}

/* The host path a GPU link resolves to, from the plan's mounts. */
static const char *link_source(const struct ep_gpu_plan *gpu, const struct ep_gpu_link *l)
{
	char want[PATH_MAX];
	const char *slash = strrchr(l->path, '/');

	if (l->target[0] == '/')
		snprintf(want, sizeof(want), "%s", l->target);
	else
		snprintf(want, sizeof(want), "%.*s/%s", (int)(slash - l->path), l->path, l->target);
	for (size_t i = 0; i < gpu->n_mounts; i++)
		if (!strcmp(gpu->mounts[i].path, want))
			return gpu->mounts[i].host_path;
	return NULL;
}

static int toolkit_present(void)
{
	return on_path("nvidia-container-runtime-hook") || on_path("nvidia-container-runtime");
}

static int run_cli(const char *bin, const struct ep_image_loc *loc, const json_t *info,
		   const struct ep_run_opts *o, const struct ep_gpu_plan *gpu, const char *gpus,
		   int tty, struct ep_store *s, int *status, struct ep_error *err)
{
	const char *cfgd = json_string_value(json_object_get(info, "config_digest"));
	int podman = !strcmp(bin, "podman");
	struct argv a = {0};
	char ref[80];
	struct rlimit rl;
	int rc;

	*status = EP_RUN_EFAIL;
	if (!on_path(bin))
		return ep_error_set(err, EP_EENV, "'%s' is not installed", bin);
	if (!cfgd || ep_digest_check(cfgd, err) < 0)
		return -1;
	/* docker's image ID is the config digest; podman takes the bare hex */
	snprintf(ref, sizeof(ref), "%s", podman ? cfgd + 7 : cfgd);
	{
		char *argv[] = {(char *)bin, "image", "inspect", ref, NULL};
		rc = run_quiet(argv, 1);
	}
	if (rc != 0) {
		char id[32];
		cleanup_free char *tmp = NULL;

		if (random_id(id, err) < 0)
			return -1;
		tmp = ep_asprintf(err, "%s/tmp/%s-load.tar", s->root, id);
		if (!tmp)
			return -1;
		if (ep_mkdir_p(s->root, err) < 0)
			return -1;
		{
			cleanup_free char *tdir = ep_path_join(s->root, "tmp", err);
			if (!tdir || ep_mkdir_p(tdir, err) < 0)
				return -1;
		}
		if (ep_export(loc->layout, loc->digest, tmp, EP_EXPORT_DOCKER, NULL, err) < 0)
			return ep_error_wrap(err, "export for %s load", bin);
		char *argv[] = {(char *)bin, "load", "-i", tmp, NULL};
		rc = run_quiet(argv, 0);
		unlink(tmp);
		if (rc != 0)
			return ep_error_set(err, EP_EENV, "'%s load' of %s failed (status %d)", bin,
					    loc->digest, rc);
	}

	argv_add(&a, bin);
	argv_add(&a, "run");
	if (!o->keep)
		argv_add(&a, "--rm");
	argv_add(&a, "-i");
	if (tty)
		argv_add(&a, "-t");
	if (o->name)
		argv_addf(&a, "--name=%s", o->name);
	if (o->n_ports == 0)
		argv_add(&a, "--network=host");
	for (size_t i = 0; i < o->n_ports; i++)
		argv_addf(&a, "--publish=%s", o->ports[i]);
	argv_add(&a, "--security-opt=no-new-privileges");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		argv_addf(&a, "--ulimit=nofile=%llu:%llu", (unsigned long long)rl.rlim_max,
			  (unsigned long long)rl.rlim_max);
	if (podman && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		argv_addf(&a, "--ulimit=nproc=%llu:%llu", (unsigned long long)rl.rlim_cur,
			  (unsigned long long)rl.rlim_max);
	if (!o->no_workspace) {
		cleanup_free char *cwd = getcwd(NULL, 0);
		if (!cwd) {
			argv_release(&a);
			return ep_error_errno(err, EP_EENV, errno, "getcwd");
		}
		if (strchr(cwd, ':') || strchr(cwd, ',')) {
			argv_release(&a);
			return ep_error_set(err, EP_EINVAL,
					    "the current directory '%s' has ':' or ','; %s cannot mount it "
					    "(use --no-workspace)",
					    cwd, bin);
		}
		argv_addf(&a, "--volume=%s:/workspace", cwd);
		if (!o->workdir)
			argv_add(&a, "--workdir=/workspace");
	}
	if (o->workdir) {
		if (ep_runtime_check_cpath(o->workdir, "working dir", err) < 0) {
			argv_release(&a);
			return -1;
		}
		argv_addf(&a, "--workdir=%s", o->workdir);
	} else if (o->no_workspace) {
		const char *wd = json_string_value(json_object_get(json_object_get(info, "config"),
								   "WorkingDir"));
		if (wd && *wd && ep_runtime_check_cpath(wd, "image WorkingDir", err) < 0) {
			argv_release(&a);
			return -1;
		}
	}
	for (size_t i = 0; i < o->n_volumes; i++) {
		cleanup_free char *src = NULL;
		const char *dst;
		size_t dl;
		int ro;

		if (ep_runtime_volume(o->volumes[i], &src, &dst, &dl, &ro, err) < 0) {
			argv_release(&a);
			return -1;
		}
		argv_addf(&a, "--volume=%s:%.*s%s", src, (int)dl, dst, ro ? ":ro" : "");
	}
	if (o->user)
		argv_addf(&a, "--user=%s", o->user);
	if (gpu && (gpu->n_devices || gpu->n_mounts || gpu->n_env)) {
		int hostroot = gpu->host_root && strcmp(gpu->host_root, "/");

		if (podman && gpu->from_cdi && !hostroot) {
			for (size_t i = 0; i < gpu->n_cdi_devices; i++)
				argv_addf(&a, "--device=%s", gpu->cdi_devices[i]);
		} else if (!podman && !hostroot && toolkit_present()) {
			if (!strcmp(gpus, "all"))
				argv_add(&a, "--gpus=all");
			else
				argv_addf(&a, "--gpus=\"device=%s\"", gpus);
		} else {
			for (size_t i = 0; i < gpu->n_devices; i++)
				argv_addf(&a, "--device=%s:%s:rwm", gpu->devices[i].host_path,
					  gpu->devices[i].path);
			for (size_t i = 0; i < gpu->n_mounts; i++)
				if (!under_proc(gpu->mounts[i].path))
					argv_addf(&a, "--volume=%s:%s%s", gpu->mounts[i].host_path,
						  gpu->mounts[i].path, gpu->mounts[i].read_only ? ":ro" : "");
			/* no way to create a symlink before start: bind the file it names */
			for (size_t i = 0; i < gpu->n_links; i++) {
				const char *src = link_source(gpu, &gpu->links[i]);
				if (src)
					argv_addf(&a, "--volume=%s:%s:ro", src, gpu->links[i].path);
			}
		}
		for (size_t i = 0; i < gpu->n_env; i++)
			argv_addf(&a, "--env=%s", gpu->env[i]);
	}
	argv_addf(&a, "--shm-size=%llu",
		  (unsigned long long)(gpu && gpu->shm_size ? gpu->shm_size : DEFAULT_SHM));
	for (size_t i = 0; i < o->n_env; i++)
		argv_addf(&a, "--env=%s", o->env[i]);
	if (o->no_entrypoint)
		argv_add(&a, "--entrypoint=");
	argv_add(&a, ref);
	for (size_t i = 0; i < o->n_cmd; i++)
		argv_add(&a, o->cmd[i]);
	if (a.oom) {
		argv_release(&a);
		return ep_error_oom(err);
	}
	fflush(stdout);
	fflush(stderr);
	if (getenv("ENVPIN_RUN_DEBUG")) {
		for (size_t i = 0; i < a.n; i++)
			fprintf(stderr, "%s%s", i ? " " : "envpin: exec ", a.v[i]);
		fputc('\n', stderr);
	}
	execvp(bin, a.v);
	rc = errno;
	argv_release(&a);
	*status = rc == ENOENT ? EP_RUN_ENOENT : EP_RUN_ENOEXEC;
	return ep_error_errno(err, EP_EENV, rc, "exec '%s'", bin);
}

/* ------------------------------------------------------------------ */

int ep_run(struct ep_store *s, const char *image, const struct ep_run_opts *o, int *status,
	   struct ep_error *err)
{
	struct ep_image_loc loc = {0};
	cleanup_json json_t *info = NULL;
	struct ep_gpu_plan gpu;
	int have_plan = 0, rc = -1, tty;
	enum ep_engine engine = o->engine;
	const char *gpus = o->gpus && *o->gpus ? o->gpus : "auto";

	*status = EP_RUN_EFAIL;
	memset(&gpu, 0, sizeof(gpu));
	tty = o->tty < 0 ? isatty(0) : o->tty;
	if (engine == EP_ENGINE_AUTO)
		engine = geteuid() == 0 && on_path("runc") ? EP_ENGINE_NATIVE
			 : on_path("docker")		   ? EP_ENGINE_DOCKER
			 : on_path("podman")		   ? EP_ENGINE_PODMAN
							   : EP_ENGINE_NATIVE;
	if (o->n_ports && engine == EP_ENGINE_NATIVE)
		return ep_error_set(err, EP_EINVAL,
				    "-p: the native engine uses the host network, where a container's "
				    "ports are the host's; use --engine docker or podman to publish");
	for (size_t i = 0; i < o->n_volumes; i++) {
		cleanup_free char *src = NULL;
		const char *dst;
		size_t dl;
		int ro;
		if (ep_runtime_volume(o->volumes[i], &src, &dst, &dl, &ro, err) < 0)
			return -1;
	}
	if (o->workdir && ep_runtime_check_cpath(o->workdir, "working dir", err) < 0)
		return -1;
	if (ep_image_locate(s, image, &loc, err) < 0)
		return -1;
	info = ep_inspect(loc.layout, loc.digest, err);
	if (!info)
		goto out;
	if (engine != EP_ENGINE_NATIVE &&
	    make_plan(gpus, json_object_get(info, "config"), NULL, &gpu, &have_plan, err) < 0)
		goto out;
	switch (engine) {
	case EP_ENGINE_DOCKER:
		rc = run_cli("docker", &loc, info, o, have_plan ? &gpu : NULL, gpus, tty, s, status, err);
		break;
	case EP_ENGINE_PODMAN:
		rc = run_cli("podman", &loc, info, o, have_plan ? &gpu : NULL, gpus, tty, s, status, err);
		break;
	default:
		rc = run_native(s, &loc, info, o, tty, status, err);
		break;
	}
out:
	if (rc < 0 && *status == 0)
		*status = EP_RUN_EFAIL;
	if (have_plan)
		ep_gpu_plan_release(&gpu);
	ep_image_loc_release(&loc);
	return rc;
}
