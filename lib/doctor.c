/* lib/doctor.c - the preconditions of a run, each checked the way the run
 * itself would meet it (a user namespace is tried, an overlay mounted), with
 * its fix (doctor.h). */
#include "doctor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdi.h"
#include "gpu.h"
#include "rootless.h"
#include "runcver.h"
#include "strvec.h"
#include "util.h"

#define STORE_FREE_WARN (5ull << 30)
#define STORE_FREE_FAIL (1ull << 30)

struct ctx {
	struct ep_doctor_report *r;
	int oom;
	const char *user; /* the caller's name, for the fixes */
	int root;
};

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (!fmt || vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

/* Adds a finding; fix_fmt may be NULL. */
static void add(struct ctx *c, const char *name, enum ep_doctor_status st, const char *fix,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(struct ctx *c, const char *name, enum ep_doctor_status st, const char *fix,
		const char *fmt, ...)
{
	struct ep_doctor_item *n, *it;
	va_list ap;

	n = realloc(c->r->items, (c->r->n + 1) * sizeof(*n));
	if (!n) {
		c->oom = 1;
		return;
	}
	c->r->items = n;
	it = &n[c->r->n];
	memset(it, 0, sizeof(*it));
	va_start(ap, fmt);
	it->detail = vfmt(fmt, ap);
	va_end(ap);
	it->name = strdup(name);
	it->status = st;
	it->fix = fix ? strdup(fix) : NULL;
	if (!it->name || !it->detail || (fix && !it->fix)) {
		free(it->name);
		free(it->detail);
		free(it->fix);
		c->oom = 1;
		return;
	}
	c->r->n++;
}

/* A /proc/sys value as a number; -1 when the file is not there. */
static long sysctl_num(const char *path)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[64];
	ssize_t n;

	/* one read: sysctl files do not continue a read at an offset */
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static void check_userns(struct ctx *c)
{
	long max = sysctl_num("/proc/sys/user/max_user_namespaces");
	long clone = sysctl_num("/proc/sys/kernel/unprivileged_userns_clone");
	long aa = sysctl_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
	int e = 0, ok = ep_userns_probe(&e);

	if (max == 0) {
		add(c, "userns", EP_DOCTOR_FAIL,
		    "sysctl -w user.max_user_namespaces=15000 (as root; persist it in "
		    "/etc/sysctl.d/)",
		    "user.max_user_namespaces is 0: no user namespaces at all");
		return;
	}
	if (clone == 0) {
		add(c, "userns", c->root ? EP_DOCTOR_WARN : EP_DOCTOR_FAIL,
		    "sysctl -w kernel.unprivileged_userns_clone=1 (as root; persist it in "
		    "/etc/sysctl.d/)",
		    "kernel.unprivileged_userns_clone is 0: users cannot create user namespaces");
		return;
	}
	if (aa == 1 && !ok) {
		add(c, "userns", c->root ? EP_DOCTOR_WARN : EP_DOCTOR_FAIL,
		    "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (as root), or an "
		    "AppArmor profile that allows userns for envpin and runc",
		    "AppArmor restricts unprivileged user namespaces "
		    "(kernel.apparmor_restrict_unprivileged_userns=1)");
		return;
	}
	if (!ok) {
		add(c, "userns", c->root ? EP_DOCTOR_WARN : EP_DOCTOR_FAIL,
		    "ask the administrator to allow unprivileged user namespaces (sysctls "
		    "user.max_user_namespaces, kernel.unprivileged_userns_clone), or use "
		    "--engine docker/podman",
		    "unshare(CLONE_NEWUSER) is refused: %s", strerror(e));
		return;
	}
	add(c, "userns", EP_DOCTOR_OK, NULL,
	    "unprivileged user namespaces work (user.max_user_namespaces=%ld)", max);
}

static void check_subids(struct ctx *c)
{
	static const char *const files[] = {"/etc/subuid", "/etc/subgid"};
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *fix = NULL;
	int missing = 0;

	if (asprintf(&fix,
		     "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s (as root)",
		     c->user) < 0) {
		c->oom = 1;
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		struct ep_subid r;
		int rc = ep_subid_find(files[i], c->user, i ? getgid() : getuid(), 1, &r, &e);

		if (rc == 1 && r.count < 65536) {
			add(c, i ? "subgid" : "subuid", EP_DOCTOR_WARN, fix,
			    "%s gives '%s' only %lu ids (65536 make --user cover 0..65535)",
			    files[i], c->user, r.count);
		} else if (rc == 1) {
			add(c, i ? "subgid" : "subuid", EP_DOCTOR_OK, NULL, "%s: %s:%lu:%lu",
			    files[i], c->user, r.start, r.count);
		} else {
			missing = 1;
			add(c, i ? "subgid" : "subuid", c->root ? EP_DOCTOR_SKIP : EP_DOCTOR_WARN,
			    c->root ? NULL : fix,
			    "no range for '%s' in %s: rootless runs work as root inside, "
			    "--user and non-root image users do not",
			    c->user, files[i]);
		}
	}
	(void)missing;
	{
		const char *bins[] = {"/usr/bin/newuidmap", "/usr/bin/newgidmap"};
		int have = 1;

		for (size_t i = 0; i < 2; i++) {
			struct stat st;

			if (stat(bins[i], &st) < 0)
				have = 0;
		}
		if (have)
			add(c, "uidmap", EP_DOCTOR_OK, NULL,
			    "newuidmap and newgidmap are installed");
		else
			add(c, "uidmap", c->root ? EP_DOCTOR_SKIP : EP_DOCTOR_WARN,
			    c->root ? NULL : "apt-get install uidmap (as root)",
			    "newuidmap/newgidmap are missing: --user without root cannot map ids");
	}
}

/* Mounts an overlay the way a run would (in a user namespace, userxattr,
 * when not root) in a child; returns its verdict: 0 mounted, else errno. */
static int overlay_probe(const char *dir, int root)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return errno;
	if (pid == 0) {
		struct ep_error e = EP_ERROR_INIT;
		char opts[4096];
		const char *sub[] = {"l", "u", "w", "m"};

		if (root ? unshare(CLONE_NEWNS) < 0 : ep_userns_enter(0, 0, &e) < 0)
			_exit(100);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || chdir(dir) < 0)
			_exit(101);
		for (size_t i = 0; i < 4; i++)
			if (mkdir(sub[i], 0755) < 0)
				_exit(102);
		snprintf(opts, sizeof(opts), "lowerdir=l,upperdir=u,workdir=w%s",
			 root ? "" : ",userxattr");
		if (mount("overlay", "m", "overlay", 0, opts) < 0)
			_exit(errno & 0x7f);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 126;
}

static void check_overlay(struct ctx *c, int quick)
{
	char tmpl[] = "/tmp/envpin-doctor.XXXXXX";
	struct ep_error e = EP_ERROR_INIT;
	int rc;

	if (quick) {
		add(c, "overlay", EP_DOCTOR_SKIP, NULL, "not probed");
		return;
	}
	if (!mkdtemp(tmpl)) {
		add(c, "overlay", EP_DOCTOR_WARN, "make /tmp writable",
		    "cannot create a probe directory in /tmp: %s", strerror(errno));
		return;
	}
	rc = overlay_probe(tmpl, c->root);
	ep_rm_rf(tmpl, &e);
	if (rc == 0) {
		add(c, "overlay", EP_DOCTOR_OK, NULL, "kernel overlayfs%s works",
		    c->root ? "" : " in a user namespace (userxattr)");
	} else if (!c->root && rc == 100) {
		add(c, "overlay", EP_DOCTOR_FAIL, "see the userns line",
		    "no user namespace to mount in");
	} else if (!c->root && access("/dev/fuse", R_OK | W_OK) == 0 &&
		   ep_find_on_path("fuse-overlayfs", NULL, 0) == 0) {
		add(c, "overlay", EP_DOCTOR_OK, NULL,
		    "the kernel refuses overlayfs here (%s); fuse-overlayfs will be used",
		    rc < 100 ? strerror(rc) : "setup failed");
	} else {
		add(c, "overlay", EP_DOCTOR_WARN,
		    c->root ? "modprobe overlay (as root)"
			    : "Linux >= 5.11 for overlayfs in a user namespace, or apt-get install "
			      "fuse-overlayfs with /dev/fuse usable by the user",
		    "no overlay (%s): each run starts from a flattened copy of the image (slower)",
		    rc < 100 ? strerror(rc) : "setup failed");
	}
}

static void check_runtime(struct ctx *c, const char *store_root)
{
	struct ep_runc_version v;
	struct ep_error e = EP_ERROR_INIT;

	if (ep_runc_version(store_root, &v, &e) < 0) {
		add(c, "runtime", EP_DOCTOR_FAIL, "apt-get install runc (as root)", "runc: %s",
		    e.msg);
		return;
	}
	if (!ep_runc_cve_2024_21626_fixed(&v))
		add(c, "runtime", EP_DOCTOR_FAIL,
		    "upgrade runc to 1.1.12 or later (Debian 12: 1.1.5+ds1-1+deb12u1 or later)",
		    "runc %s (%s) lacks the fix for CVE-2024-21626; envpin refuses it", v.version,
		    v.commit[0] ? v.commit : "no commit line");
	else
		add(c, "runtime", EP_DOCTOR_OK, NULL, "runc %s (%s), CVE-2024-21626 fixed%s",
		    v.version, v.commit[0] ? v.commit : "no commit line",
		    c->root ? "" : "; rootless in envpin's user namespace");
}

/* The driver's version from HOST_ROOT/proc/driver/nvidia/version. */
static char *driver_version(const char *root)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *p = ep_asprintf(&e, "%s/proc/driver/nvidia/version", root);
	cleanup_free char *t = p ? ep_read_file(p, 64 << 10, NULL, &e) : NULL;
	const char *k = t ? strstr(t, "Kernel Module") : NULL;
	char ver[64];
	size_t n = 0;

	if (!k)
		return NULL;
	k += strlen("Kernel Module");
	while (*k && !(*k >= '0' && *k <= '9') && *k != '\n')
		k++;
	while (n + 1 < sizeof(ver) && ((k[n] >= '0' && k[n] <= '9') || k[n] == '.'))
		ver[n] = k[n], n++;
	ver[n] = '\0';
	return n ? strdup(ver) : NULL;
}

static const char *group_name(gid_t g, char buf[32])
{
	struct group *gr = getgrgid(g);

	if (gr)
		return gr->gr_name;
	snprintf(buf, 32, "%u", (unsigned)g);
	return buf;
}

/* /dev/nvidia* under root: each must open for read and write by the
 * caller (the kernel checks its groups; in the single mapping they stay). */
static void check_devices(struct ctx *c, const char *root, const char *hr)
{
	cleanup_free char *dev = ep_asprintf(NULL, "%s/dev", root);
	struct ep_strbuf bad = EP_STRBUF_INIT, fix = EP_STRBUF_INIT;
	DIR *d = dev ? opendir(dev) : NULL;
	struct dirent *de;
	size_t n = 0;
	int uvm = 0;

	if (!d) {
		add(c, "devices", EP_DOCTOR_FAIL, "load the driver (modprobe nvidia)",
		    "cannot list %s/dev", hr);
		return;
	}
	while ((de = readdir(d))) {
		cleanup_free char *p = NULL;
		struct stat st;
		char gb[32];

		if (strncmp(de->d_name, "nvidia", 6) || !strcmp(de->d_name, "nvidia-caps"))
			continue;
		p = ep_asprintf(NULL, "%s/%s", dev, de->d_name);
		if (!p || stat(p, &st) < 0 || !S_ISCHR(st.st_mode))
			continue;
		n++;
		if (!strcmp(de->d_name, "nvidia-uvm"))
			uvm = 1;
		if (access(p, R_OK | W_OK) < 0) {
			ep_strbuf_addf(&bad, "%s/dev/%s (mode %04o, group %s) ", hr, de->d_name,
				       st.st_mode & 07777, group_name(st.st_gid, gb));
			if (!fix.len)
				ep_strbuf_addf(&fix,
					       "usermod -aG %s %s (as root), then log in again",
					       group_name(st.st_gid, gb), c->user);
		}
	}
	closedir(d);
	if (n == 0)
		add(c, "devices", EP_DOCTOR_FAIL, "modprobe nvidia; nvidia-modprobe -c 0 -u",
		    "no /dev/nvidia* character devices under %s/dev", hr);
	else if (bad.len)
		add(c, "devices", EP_DOCTOR_FAIL, ep_strbuf_str(&fix),
		    "not readable and writable by you: %s", ep_strbuf_str(&bad));
	else
		add(c, "devices", EP_DOCTOR_OK, NULL, "%zu /dev/nvidia* nodes, all usable by you",
		    n);
	/* nvidia_uvm: CUDA needs it; it is loaded on demand by nvidia-modprobe,
	 * which a container cannot run */
	{
		cleanup_free char *mods = ep_asprintf(NULL, "%s/proc/modules", root);
		struct ep_error e = EP_ERROR_INIT;
		cleanup_free char *t = mods ? ep_read_file(mods, 4 << 20, NULL, &e) : NULL;
		int loaded = t ? strstr(t, "nvidia_uvm ") != NULL : uvm;

		if (loaded && uvm)
			add(c, "nvidia-uvm", EP_DOCTOR_OK, NULL,
			    "nvidia_uvm is loaded and /dev/nvidia-uvm exists");
		else
			add(c, "nvidia-uvm", EP_DOCTOR_FAIL,
			    "modprobe nvidia_uvm && nvidia-modprobe -u -c 0 (as root)", "%s",
			    loaded ? "/dev/nvidia-uvm is missing" : "nvidia_uvm is not loaded");
	}
	ep_strbuf_release(&bad);
	ep_strbuf_release(&fix);
}

static void check_cdi(struct ctx *c, const char *root, const char *ver)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *path = NULL, *text = NULL, *needle = NULL;
	cleanup_json json_t *spec = NULL;
	int rc = ep_cdi_find(root, "nvidia.com/gpu", &path, &spec, &e);

	if (rc < 0) {
		add(c, "cdi", EP_DOCTOR_FAIL,
		    "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml (as root)",
		    "broken CDI spec: %s", e.msg);
		return;
	}
	if (rc == 0) {
		add(c, "cdi", EP_DOCTOR_WARN,
		    "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml (as root)",
		    "no CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi: envpin finds the "
		    "driver files itself (podman needs the spec)");
		return;
	}
	text = json_dumps(spec, JSON_COMPACT);
	needle = ep_asprintf(NULL, ".so.%s", ver);
	if (!text || !needle) {
		c->oom = 1;
		return;
	}
	if (!strstr(text, needle))
		add(c, "cdi", EP_DOCTOR_FAIL,
		    "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml (as root), after each "
		    "driver update",
		    "CDI spec %s is stale: it names no library of the loaded driver %s", path, ver);
	else
		add(c, "cdi", EP_DOCTOR_OK, NULL, "CDI spec %s matches driver %s", path, ver);
}

static void check_gpu(struct ctx *c)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *root = ep_gpu_host_root(&e);
	cleanup_free char *ver = NULL;
	const char *hr;

	if (!root) {
		add(c, "nvidia-driver", EP_DOCTOR_FAIL, "fix ENVPIN_HOST_ROOT", "%s", e.msg);
		return;
	}
	hr = strcmp(root, "/") ? root : "";
	ver = driver_version(root);
	if (!ver) {
		add(c, "nvidia-driver", EP_DOCTOR_SKIP, NULL,
		    "no NVIDIA driver (%s/proc/driver/nvidia/version): runs are CPU-only", hr);
		return;
	}
	add(c, "nvidia-driver", EP_DOCTOR_OK, NULL, "NVIDIA driver %s", ver);
	check_devices(c, strcmp(root, "/") ? root : "", hr);
	check_cdi(c, root, ver);
}

static void check_store(struct ctx *c, const char *store_root)
{
	cleanup_free char *p = store_root ? strdup(store_root) : NULL;
	struct statvfs sv;
	unsigned long long avail;

	if (!p) {
		add(c, "store", EP_DOCTOR_SKIP, NULL, "no store given");
		return;
	}
	/* the store may not exist yet: its nearest existing parent */
	while (statvfs(p, &sv) < 0) {
		char *sl = strrchr(p, '/');

		if (!sl || sl == p) {
			add(c, "store", EP_DOCTOR_WARN, "use --store DIR", "cannot stat '%s': %s",
			    store_root, strerror(errno));
			return;
		}
		*sl = '\0';
	}
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (access(p, W_OK) < 0)
		add(c, "store", EP_DOCTOR_FAIL, "use --store DIR (a directory you may write)",
		    "'%s' is not writable by you", p);
	else if (avail < STORE_FREE_FAIL)
		add(c, "store", EP_DOCTOR_FAIL, "envpin gc; or --store on a larger disk",
		    "%s: %.1f GiB free (an image needs a few)", store_root, avail / 1073741824.0);
	else if (avail < STORE_FREE_WARN)
		add(c, "store", EP_DOCTOR_WARN, "envpin gc; or --store on a larger disk",
		    "%s: %.1f GiB free", store_root, avail / 1073741824.0);
	else
		add(c, "store", EP_DOCTOR_OK, NULL, "%s: %.1f GiB free", store_root,
		    avail / 1073741824.0);
}

int ep_doctor_run(const struct ep_doctor_opts *o, struct ep_doctor_report *r, struct ep_error *err)
{
	struct passwd *pw = getpwuid(getuid());
	char uidbuf[32];
	struct ctx c = {.r = r};

	memset(r, 0, sizeof(*r));
	snprintf(uidbuf, sizeof(uidbuf), "%u", (unsigned)getuid());
	c.user = pw ? pw->pw_name : uidbuf;
	c.root = geteuid() == 0;
	check_userns(&c);
	check_subids(&c);
	check_overlay(&c, o->quick);
	check_runtime(&c, o->store_root);
	check_gpu(&c);
	check_store(&c, o->store_root);
	if (c.oom) {
		ep_doctor_report_release(r);
		return ep_error_oom(err);
	}
	return 0;
}

void ep_doctor_report_release(struct ep_doctor_report *r)
{
	for (size_t i = 0; r && i < r->n; i++) {
		free(r->items[i].name);
		free(r->items[i].detail);
		free(r->items[i].fix);
	}
	if (r) {
		free(r->items);
		memset(r, 0, sizeof(*r));
	}
}

enum ep_doctor_status ep_doctor_worst(const struct ep_doctor_report *r)
{
	enum ep_doctor_status w = EP_DOCTOR_OK;

	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].status > w && r->items[i].status != EP_DOCTOR_SKIP)
			w = r->items[i].status;
	return w;
}

const char *ep_doctor_status_name(enum ep_doctor_status s)
{
	switch (s) {
	case EP_DOCTOR_OK:
		return "ok";
	case EP_DOCTOR_SKIP:
		return "skip";
	case EP_DOCTOR_WARN:
		return "warn";
	default:
		return "fail";
	}
}

json_t *ep_doctor_json(const struct ep_doctor_report *r)
{
	json_t *checks = json_array();
	json_t *j;

	for (size_t i = 0; checks && i < r->n; i++) {
		const struct ep_doctor_item *it = &r->items[i];

		if (json_array_append_new(checks,
					  json_pack("{s:s,s:s,s:s,s:s?}", "name", it->name,
						    "status", ep_doctor_status_name(it->status),
						    "detail", it->detail, "fix", it->fix)) < 0) {
			json_decref(checks);
			return NULL;
		}
	}
	j = json_pack("{s:s,s:o}", "result", ep_doctor_status_name(ep_doctor_worst(r)), "checks",
		      checks);
	return j;
}
