/* lib/slurm.c - oci.conf, the runc calls behind it, and the per-node
 * certification report (slurm.h). */
#include "slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cert.h"
#include "jsonutil.h"
#include "rootless.h"
#include "strvec.h"
#include "util.h"

#define CERT_MAX (16u << 20)

char *ep_slurm_oci_conf(const char *envpin, struct ep_error *err)
{
	/* The container id: node, user, job, step, task (%n.%u.%j.%s.%t, as
	 * Slurm's own examples use), unique per task on a node. */
	return ep_asprintf(
	    err,
	    "# oci.conf for Slurm 22.05+: `srun --container=BUNDLE` runs an envpin bundle\n"
	    "# (`envpin bundle IMAGE BUNDLE`). Written by `envpin slurm`; see envpin's\n"
	    "# docs/slurm.md. Put it beside slurm.conf on every node and restart slurmd.\n"
	    "# runc runs as the job's user: as root inside envpin's user namespace when\n"
	    "# the user is not root (envpin doctor checks the node).\n"
	    "RunTimeQuery=\"%s slurm oci --user %%u state %%n.%%u.%%j.%%s.%%t\"\n"
	    "RunTimeKill=\"%s slurm oci --user %%u kill %%n.%%u.%%j.%%s.%%t\"\n"
	    "RunTimeDelete=\"%s slurm oci --user %%u delete %%n.%%u.%%j.%%s.%%t\"\n"
	    "RunTimeRun=\"%s slurm oci --user %%u run %%n.%%u.%%j.%%s.%%t %%b\"\n",
	    envpin, envpin, envpin, envpin);
}

char *ep_slurm_runc_root(struct ep_error *err)
{
	char *dir;
	struct stat st;

	if (geteuid() == 0)
		dir = ep_strdup("/run/envpin/slurm-runc", err);
	else
		dir = ep_asprintf(err, "/tmp/envpin-runc-%u", (unsigned)getuid());
	if (!dir)
		return NULL;
	if (geteuid() == 0) {
		if (ep_mkdir_p(dir, err) < 0) {
			free(dir);
			return NULL;
		}
		return dir;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", dir);
		free(dir);
		return NULL;
	}
	/* /tmp is shared: a directory someone else made is not ours to use */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077)) {
		ep_error_set(err, EP_EENV, "'%s' is not a private directory of yours", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

int ep_slurm_become(const char *user, struct ep_error *err)
{
	struct passwd *pw = getpwnam(user);

	if (!pw)
		return ep_error_set(err, EP_EENV, "user '%s' is not in the passwd database", user);
	if (geteuid() == pw->pw_uid)
		return 0;
	if (geteuid() != 0)
		return ep_error_set(err, EP_EENV, "uid %u cannot act for '%s'", (unsigned)geteuid(),
				    user);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		return ep_error_errno(err, EP_EENV, errno, "become '%s'", user);
	/* the uid change made us undumpable, which leaves /proc/self/{uid_map,
	 * setgroups} root's: the user namespace could not be set up */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return ep_error_errno(err, EP_EENV, errno, "prctl(PR_SET_DUMPABLE)");
	return 0;
}

int ep_slurm_runc_argv(enum ep_slurm_op op, const char *id, const char *bundle, const char *sig,
		       struct ep_strvec *a, struct ep_error *err)
{
	cleanup_free char *root = ep_slurm_runc_root(err);

	if (!root)
		return -1;
	for (const char *p = id; *p; p++)
		if (!(*p == '.' || *p == '-' || *p == '_' || *p == '+' ||
		      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return ep_error_set(err, EP_EINVAL, "container id '%s': unexpected '%c'",
					    id, *p);
	if (!*id)
		return ep_error_set(err, EP_EINVAL, "empty container id");
	if (geteuid() != 0 && ep_userns_enter(0, 0, err) < 0)
		return -1;
	ep_strvec_push(a, "runc");
	ep_strvec_push(a, "--root");
	ep_strvec_push(a, root);
	switch (op) {
	case EP_SLURM_RUN:
		ep_strvec_push(a, "run");
		ep_strvec_push(a, "--bundle");
		ep_strvec_push(a, bundle);
		break;
	case EP_SLURM_STATE:
		ep_strvec_push(a, "state");
		break;
	case EP_SLURM_KILL:
		/* not --all: it finds the processes through cgroups, which a
		 * rootless container has none of; the container has its own
		 * PID namespace, so killing its init kills the rest */
		ep_strvec_push(a, "kill");
		break;
	case EP_SLURM_DELETE:
		ep_strvec_push(a, "delete");
		ep_strvec_push(a, "--force");
		break;
	}
	ep_strvec_push(a, id);
	if (op == EP_SLURM_KILL)
		ep_strvec_push(a, sig ? sig : "KILL");
	if (a->oom)
		return ep_error_oom(err);
	return 0;
}

int ep_slurm_container_exists(const char *id)
{
	struct ep_error e = EP_ERROR_INIT;
	cleanup_free char *root = ep_slurm_runc_root(&e);
	cleanup_free char *p = root ? ep_path_join(root, id, &e) : NULL;
	struct stat st;

	return p && !strchr(id, '/') && lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* `runc --root R kill ID SIG` with the same root (argv[2]) */
static void runc_kill(char *const argv[], const char *id, const char *sig)
{
	pid_t k = fork();

	if (k == 0) {
		char *a[] = {argv[0], "--root", argv[2], "kill", (char *)id, (char *)sig, NULL};
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execvp(a[0], a);
		_exit(127);
	}
	if (k > 0)
		while (waitpid(k, NULL, 0) < 0 && errno == EINTR)
			;
}

int ep_slurm_supervise(char *const argv[], const char *id, unsigned grace)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGALRM};
	struct sigaction sa = {0};
	pid_t parent = getppid(), pid;
	int st, stopping = 0;

	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < EP_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != parent)
		g_stop = 1;
	pid = fork();
	if (pid < 0)
		return 125;
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		if (waitpid(pid, &st, 0) == pid)
			break;
		if (errno != EINTR)
			return 125;
		if (g_stop && stopping == 0) {
			stopping = 1;
			g_stop = 0;
			runc_kill(argv, id, "TERM");
			alarm(grace ? grace : 1);
		} else if (g_stop && stopping == 1) {
			stopping = 2;
			runc_kill(argv, id, "KILL");
		}
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* "cert-NODE.json" or "NODE.json" -> NODE. */
static char *node_from_file(const char *f)
{
	const char *b = strrchr(f, '/');
	size_t n;

	b = b ? b + 1 : f;
	if (!strncmp(b, "cert-", 5))
		b += 5;
	n = strlen(b);
	if (n > 5 && !strcmp(b + n - 5, ".json"))
		n -= 5;
	return strndup(b, n);
}

/* Why a node failed, as text: the certificate's reasons ({"reason",
 * "count"} or strings), then each failed check with its detail. */
static json_t *why_of(const json_t *c)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach (json_object_get(c, "reasons"), i, v) {
		const char *r = json_is_string(v) ? json_string_value(v)
						  : json_string_value(json_object_get(v, "reason"));
		if (r)
			json_array_append_new(out, json_string(r));
	}
	json_array_foreach (json_object_get(c, "checks"), i, v) {
		const char *st = json_string_value(json_object_get(v, "status"));
		char *line = NULL;

		if (!st || strcmp(st, "fail"))
			continue;
		if (asprintf(&line, "%s: %s", json_string_value(json_object_get(v, "name")) ?: "?",
			     json_string_value(json_object_get(v, "detail")) ?: "failed") >= 0) {
			json_array_append_new(out, json_string(line));
			free(line);
		}
	}
	return out;
}

json_t *ep_certs_merge(const char *const *files, const char *const *nodes, size_t n,
		       struct ep_error *err)
{
	cleanup_json json_t *out = json_object(), *list = json_array();
	json_t **certs = calloc(n + 1, sizeof(*certs));
	const char *image = NULL;
	const json_t *ref_fp = NULL;
	int images_agree = 1, fps_agree = 1;
	size_t passed = 0, failed = 0;

	if (!out || !list || !certs) {
		free(certs);
		return ep_error_oom(err), NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct ep_error e = EP_ERROR_INIT;
		cleanup_free char *text = ep_read_file(files[i], CERT_MAX, NULL, &e);

		certs[i] = text ? json_loads(text, 0, NULL) : NULL;
		if (certs[i] && !json_is_object(certs[i])) {
			json_decref(certs[i]);
			certs[i] = NULL;
		}
	}
	/* the reference: the first node that passed with a fingerprint */
	for (size_t i = 0; i < n && !ref_fp; i++) {
		const json_t *fp = json_object_get(certs[i], "fingerprint");

		if (certs[i] &&
		    !strcmp(json_string_value(json_object_get(certs[i], "result")) ?: "", "pass") &&
		    json_is_object(fp)) {
			ref_fp = fp;
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *c = certs[i], *row;
		cleanup_free char *node =
		    nodes && nodes[i] ? strdup(nodes[i]) : node_from_file(files[i]);
		const char *result = json_string_value(json_object_get(c, "result"));
		const char *dig =
		    json_string_value(json_object_get(json_object_get(c, "image"), "digest"));
		const json_t *fp = json_object_get(c, "fingerprint");
		const char *fpstate = "none";
		json_t *diffs = NULL;
		int ok;

		row = json_pack("{s:s?,s:s}", "node", node, "file", files[i]);
		if (!row || json_array_append_new(list, row) < 0)
			goto oom;
		if (!c) {
			json_object_set_new(row, "result", json_string("fail"));
			json_object_set_new(
			    row, "reasons",
			    json_pack("[s]",
				      "certificate missing or not JSON (did the check run?)"));
			failed++;
			continue;
		}
		ok = result && !strcmp(result, "pass");
		ok ? passed++ : failed++;
		json_object_set_new(row, "result", json_string(ok ? "pass" : "fail"));
		json_object_set_new(row, "reasons", why_of(c));
		json_object_set(row, "image",
				json_object_get(json_object_get(c, "image"), "digest")
				    ?: json_null());
		json_object_set(row, "driver_version",
				json_object_get(json_object_get(c, "passthrough"), "driver_version")
				    ?: json_null());
		json_object_set_new(
		    row, "gpus",
		    json_integer((json_int_t)json_array_size(json_object_get(c, "gpus"))));
		if (dig) {
			if (!image)
				image = dig;
			else if (strcmp(image, dig))
				images_agree = 0;
		}
		if (json_is_object(fp) && ref_fp) {
			if (fp == ref_fp) {
				fpstate = "reference";
			} else {
				struct ep_error e = EP_ERROR_INIT;
				json_t *cmp = ep_cert_compare_fingerprints((json_t *)ref_fp,
									   (json_t *)fp, &e);

				if (cmp && json_is_true(json_object_get(cmp, "match"))) {
					fpstate = "match";
				} else {
					fpstate = "differs";
					if (ok)
						fps_agree = 0;
					if (cmp) {
						size_t k;
						json_t *f;

						diffs = json_array();
						json_array_foreach (json_object_get(cmp, "fields"),
								    k, f)
							if (!json_is_true(json_object_get(f, "ok")))
								json_array_append(diffs, f);
					}
				}
				json_decref(cmp);
			}
		}
		json_object_set_new(row, "fingerprint", json_string(fpstate));
		if (diffs)
			json_object_set_new(row, "differences", diffs);
	}
	json_object_set_new(out, "reference_node", json_null());
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *row = json_array_get(list, i);

		if (!strcmp(json_string_value(json_object_get(row, "fingerprint")) ?: "",
			    "reference"))
			json_object_set(out, "reference_node", json_object_get(row, "node"));
	}
	json_object_set_new(out, "image", image ? json_string(image) : json_null());
	json_object_set_new(out, "images_agree", json_boolean(images_agree));
	json_object_set_new(out, "nodes", json_incref(list));
	json_object_set_new(out, "passed", json_integer((json_int_t)passed));
	json_object_set_new(out, "failed", json_integer((json_int_t)failed));
	json_object_set_new(out, "fingerprints_agree", json_boolean(fps_agree && ref_fp));
	json_object_set_new(out, "result",
			    json_string(failed == 0 && n > 0 && fps_agree && images_agree && ref_fp
					    ? "pass"
					    : "fail"));
	for (size_t i = 0; i < n; i++)
		json_decref(certs[i]);
	free(certs);
	return steal_pointer(&out);
oom:
	for (size_t i = 0; i < n; i++)
		json_decref(certs[i]);
	free(certs);
	return ep_error_oom(err), NULL;
}
