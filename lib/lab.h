/* lib/lab.h - the student's services in a container (docs/run.md, "envpin
 * lab" and "run --ssh"): who the caller is, the per-user home in the store,
 * the listen address, and the commands that start JupyterLab or sshd
 * inside the image.  The front ends (cmd/lab.c, cmd/run.c) put them into
 * a struct ep_run_opts. */
#ifndef EP_LAB_H
#define EP_LAB_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "error.h"
#include "store.h"
#include "strvec.h"

/* The person envpin works for: under sudo (euid 0 and SUDO_UID set) the
 * user who ran sudo, else the real uid. */
struct ep_caller {
	uid_t uid;
	gid_t gid;
	char name[33]; /* a login name safe in /etc/passwd ("student" otherwise) */
	char *home;    /* their host home directory (passwd, else $HOME), may be NULL */
};
int ep_caller_get(struct ep_caller *c, struct ep_error *err);
void ep_caller_release(struct ep_caller *c);

/* STORE/home/UID, created 0700 and owned by the caller: the container's
 * HOME (mounted at /home/NAME), kept between sessions.  Caller frees. */
char *ep_lab_home(struct ep_store *s, const struct ep_caller *c, struct ep_error *err);

/* STORE/ssh: sshd's host keys, made inside the container at its first
 * start (never in an image), root-only.  Caller frees. */
char *ep_ssh_key_dir(struct ep_store *s, struct ep_error *err);

struct ep_listen {
	char addr[64]; /* numeric, as given ("127.0.0.1", "::1", "0.0.0.0") */
	int port;      /* 1-65535 */
	int loopback;  /* 127.0.0.0/8 or ::1 */
	int family;    /* AF_INET or AF_INET6 */
};
/* Parses "ADDR:PORT", "[V6]:PORT", "PORT" (on 127.0.0.1) or "ADDR" (on
 * default_port); "localhost" is 127.0.0.1.  EP_EINVAL on anything else. */
int ep_listen_parse(const char *spec, int default_port, struct ep_listen *l, struct ep_error *err);
/* 1 when nothing listens on l's address and port (a bind test). */
int ep_listen_free(const struct ep_listen *l);
/* Waits until something accepts connections on l (loopback for a
 * wildcard address); 1 when it does, 0 when stop() says to give up. */
int ep_listen_wait(const struct ep_listen *l, int (*stop)(void *), void *arg);

/* 32 random hex digits. */
int ep_lab_token(char out[33], struct ep_error *err);

/* The command that starts JupyterLab in the image as the container's user:
 * /bin/sh checks for jupyter-lab (exit 127 without it: the front end says
 * so) and execs it on l with the root dir /workspace and the token from
 * $JUPYTER_TOKEN.  allow_root: the caller is root. */
int ep_lab_command(struct ep_strvec *cmd, const struct ep_listen *l, int allow_root);

/* Exit status of the commands above when the image lacks the program. */
#define EP_LAB_MISSING 127

/* The command that starts the image's sshd as process 1 (run as root in
 * the container): adds the caller to /etc/passwd and /etc/group when the
 * image lacks them, makes the host key in /etc/envpin-ssh at the first
 * start, and runs sshd on l with key logins only, for the caller only,
 * from /run/envpin-ssh/authorized_keys. */
int ep_ssh_command(struct ep_strvec *cmd, const struct ep_listen *l, const struct ep_caller *c);

#define EP_SSH_KEY_DIR "/etc/envpin-ssh"
#define EP_SSH_AUTH_KEYS "/run/envpin-ssh/authorized_keys"

#endif
