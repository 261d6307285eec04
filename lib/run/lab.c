/* lib/run/lab.c - the caller, the per-user home, the listen address and
 * the in-image commands of `envpin lab` and `run --ssh` (lib/lab.h). */
#include "lab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *end || *out > 0x7fffffffUL ? -1 : 0;
}

/* A name that is safe in a passwd line and a shell word. */
static int safe_login(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len > 32 || !((n[0] >= 'a' && n[0] <= 'z') || n[0] == '_'))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_' ||
		      n[i] == '-' || n[i] == '.'))
			return 0;
	return 1;
}

int ep_caller_get(struct ep_caller *c, struct ep_error *err)
{
	const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
	const char *name = NULL, *home = NULL;
	unsigned long uid, gid;
	struct passwd *pw;

	memset(c, 0, sizeof(*c));
	c->uid = getuid();
	c->gid = getgid();
	if (geteuid() == 0 && su) {
		if (parse_id(su, &uid) < 0 || parse_id(sg, &gid) < 0)
			return ep_error_set(err, EP_EINVAL,
					    "SUDO_UID/SUDO_GID ('%s'/'%s') are not numbers", su,
					    sg ? sg : "");
		c->uid = (uid_t)uid;
		c->gid = (gid_t)gid;
		name = getenv("SUDO_USER");
	}
	pw = getpwuid(c->uid);
	if (pw) {
		if (!name)
			name = pw->pw_name;
		home = pw->pw_dir;
	}
	/* not under sudo, $HOME is where the caller keeps ~/.ssh */
	if (!su || geteuid() != 0 || !home) {
		const char *h = getenv("HOME");
		if (h && *h == '/')
			home = h;
	}
	if (c->uid == 0)
		name = "root";
	snprintf(c->name, sizeof(c->name), "%s", safe_login(name) ? name : "student");
	if (home) {
		c->home = strdup(home);
		if (!c->home)
			return ep_error_oom(err);
	}
	return 0;
}

void ep_caller_release(struct ep_caller *c)
{
	free(c->home);
	c->home = NULL;
}

/* dir, made (0700) for uid:gid and checked to be a directory they own. */
static int owned_dir(const char *dir, uid_t uid, gid_t gid, struct ep_error *err)
{
	cleanup_close int fd = -1;
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", dir);
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return ep_error_errno(err, EP_EENV, errno, "chown '%s' to %u:%u", dir,
				      (unsigned)uid, (unsigned)gid);
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		return ep_error_errno(err, EP_EENV, errno, "chmod '%s'", dir);
	return 0;
}

char *ep_lab_home(struct ep_store *s, const struct ep_caller *c, struct ep_error *err)
{
	cleanup_free char *base = ep_path_join(s->root, "home", err);
	char *dir;

	if (!base || ep_mkdir_p(base, err) < 0)
		return NULL;
	dir = ep_asprintf(err, "%s/%u", base, (unsigned)c->uid);
	if (dir && owned_dir(dir, c->uid, c->gid, err) < 0) {
		free(dir);
		return NULL;
	}
	return dir;
}

char *ep_ssh_key_dir(struct ep_store *s, struct ep_error *err)
{
	char *dir = ep_path_join(s->root, "ssh", err);

	if (dir && owned_dir(dir, 0, 0, err) < 0) {
		free(dir);
		return NULL;
	}
	return dir;
}

static int fill_addr(const struct ep_listen *l, struct sockaddr_storage *ss, socklen_t *len,
		     int for_connect)
{
	memset(ss, 0, sizeof(*ss));
	if (l->family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)l->port);
		if (inet_pton(AF_INET6, l->addr, &a->sin6_addr) != 1)
			return -1;
		if (for_connect && IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
			a->sin6_addr = in6addr_loopback;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)l->port);
		if (inet_pton(AF_INET, l->addr, &a->sin_addr) != 1)
			return -1;
		if (for_connect && a->sin_addr.s_addr == htonl(INADDR_ANY))
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*a);
	}
	return 0;
}

int ep_listen_parse(const char *spec, int default_port, struct ep_listen *l, struct ep_error *err)
{
	char host[64] = "127.0.0.1";
	const char *port = NULL, *colon;
	unsigned char buf[sizeof(struct in6_addr)];
	unsigned long p = (unsigned long)default_port;

	memset(l, 0, sizeof(*l));
	if (!spec || !*spec || strlen(spec) >= sizeof(host) + 8)
		goto bad;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || (size_t)(close - spec - 1) >= sizeof(host) ||
		    (close[1] && close[1] != ':'))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(close - spec - 1), spec + 1);
		port = close[1] ? close + 2 : NULL;
	} else if (strspn(spec, "0123456789") == strlen(spec)) {
		port = spec;
	} else {
		colon = strrchr(spec, ':');
		if (colon && strchr(spec, ':') != colon)
			goto bad; /* a bare IPv6 address: needs [ ] */
		if ((colon ? (size_t)(colon - spec) : strlen(spec)) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s",
			 colon ? (int)(colon - spec) : (int)strlen(spec), spec);
		port = colon ? colon + 1 : NULL;
	}
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (port && (parse_id(port, &p) < 0 || p == 0 || p > 65535))
		goto bad;
	if (inet_pton(AF_INET, host, buf) == 1) {
		l->family = AF_INET;
		l->loopback = buf[0] == 127;
	} else if (inet_pton(AF_INET6, host, buf) == 1) {
		l->family = AF_INET6;
		l->loopback = IN6_IS_ADDR_LOOPBACK((struct in6_addr *)buf);
	} else {
		goto bad;
	}
	snprintf(l->addr, sizeof(l->addr), "%s", host);
	l->port = (int)p;
	return 0;
bad:
	return ep_error_set(err, EP_EINVAL,
			    "--listen '%s': expected ADDR:PORT with a numeric address "
			    "(127.0.0.1:8888, [::1]:8888, 0.0.0.0:8888) and a port 1-65535",
			    spec ? spec : "");
}

int ep_listen_free(const struct ep_listen *l)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ok;

	if (fill_addr(l, &ss, &len, 0) < 0)
		return 0;
	fd = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	/* as the servers do (sshd, jupyter): connections of a stopped server
	 * in TIME_WAIT do not keep the port, a listener does */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) < 0) {
		close(fd);
		return 0;
	}
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
}

int ep_listen_wait(const struct ep_listen *l, int (*stop)(void *), void *arg)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (fill_addr(l, &ss, &len, 1) < 0)
		return 0;
	for (;;) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int fd = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		if (fd < 0)
			return 0;
		ok = connect(fd, (struct sockaddr *)&ss, len) == 0;
		close(fd);
		if (ok)
			return 1;
		if (stop(arg))
			return 0;
		nanosleep(&ts, NULL);
	}
}

int ep_lab_token(char out[33], struct ep_error *err)
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return ep_error_errno(err, EP_EENV, errno, "getrandom");
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* $1 address, $2 port, $3 "--allow-root" or nothing */
static const char lab_script[] =
    "command -v jupyter-lab >/dev/null 2>&1 || {\n"
    "  echo \"envpin: this image has no jupyter-lab on its PATH ($PATH)\" >&2; exit 127; }\n"
    "exec jupyter-lab --no-browser --ServerApp.ip=\"$1\" --ServerApp.port=\"$2\" \\\n"
    "  --ServerApp.port_retries=0 --ServerApp.root_dir=/workspace $3\n";

int ep_lab_command(struct ep_strvec *cmd, const struct ep_listen *l, int allow_root)
{
	ep_strvec_push(cmd, "/bin/sh");
	ep_strvec_push(cmd, "-c");
	ep_strvec_push(cmd, lab_script);
	ep_strvec_push(cmd, "envpin-lab");
	ep_strvec_push(cmd, l->addr);
	ep_strvec_pushf(cmd, "%d", l->port);
	ep_strvec_push(cmd, allow_root ? "--allow-root" : "");
	return cmd->oom ? -1 : 0;
}

/* $1 user $2 uid $3 gid $4 home $5 listen address */
static const char ssh_script[] =
    "set -e\n"
    "user=$1 uid=$2 gid=$3 home=$4 listen=$5\n"
    "sshd=/usr/sbin/sshd\n"
    "[ -x $sshd ] || {\n"
    "  echo 'envpin: this image has no sshd (/usr/sbin/sshd): install openssh-server' >&2\n"
    "  exit 127; }\n"
    "shell=/bin/sh; [ ! -x /bin/bash ] || shell=/bin/bash\n"
    "prl=no\n"
    "if [ \"$uid\" = 0 ]; then user=root prl=prohibit-password; else\n"
    "  old=$(grep \"^[^:]*:[^:]*:$uid:\" /etc/passwd | head -n 1 | cut -d: -f1)\n"
    "  if [ -n \"$old\" ]; then user=$old; else\n"
    "    echo \"$user:x:$uid:$gid:envpin:$home:$shell\" >>/etc/passwd; fi\n"
    "  grep -q \"^[^:]*:[^:]*:$gid:\" /etc/group || echo \"$user:x:$gid:\" >>/etc/group\n"
    "fi\n"
    "mkdir -p /run/sshd && chmod 0755 /run/sshd\n"
    "key=" EP_SSH_KEY_DIR "/ssh_host_ed25519_key\n"
    "[ -s $key ] || ssh-keygen -q -t ed25519 -N '' -C envpin-host-key -f $key\n"
    "se=\n"
    "for v in PATH LANG LC_ALL LD_LIBRARY_PATH PYTHONPATH PIP_INDEX_URL \\\n"
    "    NVIDIA_VISIBLE_DEVICES NVIDIA_DRIVER_CAPABILITIES; do\n"
    "  eval \"x=\\${$v-}\"\n"
    "  case \"$x\" in '' | *[\\ \\\"\\']*) ;; *) se=\"$se $v=$x\" ;; esac\n"
    "done\n"
    "echo \"envpin: sshd on $listen for $user\" >&2\n"
    "set +e\n"
    "$sshd -D -e -f /dev/null -h $key -o \"ListenAddress=$listen\" \\\n"
    "  -o AuthorizedKeysFile=" EP_SSH_AUTH_KEYS " -o UsePAM=no \\\n"
    "  -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \\\n"
    "  -o PermitRootLogin=$prl -o \"AllowUsers=$user\" -o PidFile=none \\\n"
    "  -o 'Subsystem=sftp internal-sftp' ${se:+-o \"SetEnv=${se# }\"} &\n"
    /* sshd -D ignores SIGINT: this shell (process 1) turns Ctrl-C into TERM */
    "pid=$!\n"
    "trap 'kill -TERM $pid 2>/dev/null' INT TERM HUP\n"
    /* wait returns 128+N when a trapped signal interrupts it: wait again
     * while sshd lives, and once more for the status of one that ended
     * meanwhile (127: it was already collected) */
    "while :; do\n"
    "  wait $pid; st=$?\n"
    "  [ $st -gt 128 ] || exit $st\n"
    "  kill -0 $pid 2>/dev/null && continue\n"
    "  wait $pid; s2=$?; [ $s2 = 127 ] || st=$s2; exit $st\n"
    "done\n";

int ep_ssh_command(struct ep_strvec *cmd, const struct ep_listen *l, const struct ep_caller *c)
{
	ep_strvec_push(cmd, "/bin/sh");
	ep_strvec_push(cmd, "-c");
	ep_strvec_push(cmd, ssh_script);
	ep_strvec_push(cmd, "envpin-ssh");
	ep_strvec_push(cmd, c->name);
	ep_strvec_pushf(cmd, "%u", (unsigned)c->uid);
	ep_strvec_pushf(cmd, "%u", (unsigned)c->gid);
	ep_strvec_pushf(cmd, "/home/%s", c->name);
	if (l->family == AF_INET6)
		ep_strvec_pushf(cmd, "[%s]:%d", l->addr, l->port);
	else
		ep_strvec_pushf(cmd, "%s:%d", l->addr, l->port);
	return cmd->oom ? -1 : 0;
}
