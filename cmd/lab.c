/* cmd/lab.c - envpin lab: JupyterLab in an image, as the caller, with the
 * workspace at /workspace, on 127.0.0.1 with a random token; prints the
 * URL once the server answers and stays until it ends (Ctrl-C). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "lab.h"
#include "run.h"
#include "runopts.h"
#include "runtime.h"
#include "strvec.h"
#include "util.h"

#define LAB_PORT 8888
#define LAB_PORT_TRIES 100

static const char lab_usage[] =
    "usage: envpin lab [OPTIONS] IMAGE\n\n"
    "Starts JupyterLab from IMAGE with the current directory at /workspace, as you\n"
    "(under sudo: SUDO_UID/SUDO_GID), HOME a per-user directory in the store, on\n"
    "127.0.0.1 with a random token, and prints the URL to open.  Ctrl-C stops it.\n\n"
    "  --listen [ADDR:]PORT       where JupyterLab listens (default 127.0.0.1:8888, or\n"
    "                             the next free port); a non-loopback ADDR is warned\n"
    "                             about: anyone with the token can run code as you\n"
    "  --gpus all|none|auto|LIST  as envpin run\n"
    "  --engine native|docker|podman|auto\n"
    "                             as envpin run (both share the host's network: the\n"
    "                             server is on the host's loopback)\n"
    "  -v, --volume SRC:DST[:ro]  bind-mount a host path; SRC:/workspace replaces the\n"
    "                             current directory\n"
    "  -e, --env K=V | K          set a variable\n"
    "      --name NAME            container name\n"
    "      --certify              first run `envpin check` on IMAGE, as run --certify\n"
    "      --require-gpu          with --certify: the GPU checks must run and pass\n"
    "      --json                 print {\"url\", \"token\", \"listen\", \"port\"} when ready\n\n"
    "exit status: JupyterLab's; 2 the image has no JupyterLab or bad options;\n"
    "125 envpin failed (as envpin run).\n";

struct lab_args {
	struct runopts r;
	const char *image;
	const char *listen;
	int json;
};

static int parse_lab(int argc, char **argv, struct cmd_ctx *ctx, struct lab_args *a)
{
	enum { O_LISTEN = 256, O_JSON };
	static const struct option own[] = {
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct runopts_getopt g;
	struct ep_error err = EP_ERROR_INIT;
	int c, r, rc = 0;

	if (runopts_getopt_init(&g, RUNOPT_LAB, "h", own, &err) < 0)
		return cmd_fail(&err);
	optind = 1;
	while (!rc && (c = getopt_long(argc, argv, g.shortopts, g.longopts, NULL)) != -1) {
		r = runopts_parse(&a->r, RUNOPT_LAB, c, optarg, &err);
		if (r < 0) {
			rc = runopts_report(ctx, r, &err);
			continue;
		}
		if (r == 0)
			continue;
		switch (c) {
		case O_LISTEN:
			a->listen = optarg;
			break;
		case O_JSON:
			a->json = 1;
			break;
		case 'h':
			fputs(lab_usage, stdout);
			rc = CMD_HELP_DONE;
			break;
		default:
			rc = cmd_usage_error(ctx, "unknown option");
		}
	}
	runopts_getopt_release(&g);
	if (rc)
		return rc;
	if (argc - optind != 1)
		return cmd_usage_error(ctx, "name one IMAGE");
	a->image = argv[optind];
	/* SRC:/workspace replaces the current directory */
	for (size_t i = 0; i < a->r.o.n_volumes; i++)
		if (!strcmp(a->r.vols[i].dst, "/workspace"))
			a->r.o.no_workspace = 1;
	return 0;
}

/* --listen, or the first free port from 8888 on 127.0.0.1. */
static int pick_listen(const char *spec, struct ep_listen *l, struct ep_error *err)
{
	if (ep_listen_parse(spec ? spec : "127.0.0.1", LAB_PORT, l, err) < 0)
		return -1;
	if (spec && strchr(spec, ':') == NULL && strspn(spec, "0123456789") != strlen(spec))
		spec = NULL; /* an address alone: any free port from 8888 */
	for (int i = 0; i < LAB_PORT_TRIES; i++) {
		if (ep_listen_free(l))
			return 0;
		if (spec)
			break;
		l->port++;
	}
	if (spec)
		return ep_error_set(err, EP_EENV,
				    "--listen %s: port %d is in use (pick another: --listen "
				    "%s:PORT)",
				    spec, l->port, l->addr);
	return ep_error_set(err, EP_EENV, "no free port on %s from %d to %d (use --listen)",
			    l->addr, LAB_PORT, l->port);
}

static volatile sig_atomic_t g_child;

static void forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* Ctrl-C from the terminal reached the child too (same process group) */
	if (si && si->si_code == SI_KERNEL)
		return;
	if (g_child > 0)
		kill((pid_t)g_child, sig);
}

static int child_ended(void *arg)
{
	int *st = arg;
	pid_t r = waitpid((pid_t)g_child, st, WNOHANG);

	return r == (pid_t)g_child || (r < 0 && errno != EINTR);
}

static void print_ready(const struct lab_args *a, const struct ep_listen *l, const char *token)
{
	char host[80];

	if (l->family == AF_INET6)
		snprintf(host, sizeof(host), "[%s]", l->loopback ? l->addr : "::1");
	else
		snprintf(host, sizeof(host), "%s",
			 strcmp(l->addr, "0.0.0.0") ? l->addr : "127.0.0.1");
	if (a->json) {
		char *u = ep_asprintf(NULL, "http://%s:%d/lab?token=%s", host, l->port, token);
		json_t *j = u ? json_pack("{s:s,s:s,s:s,s:i}", "url", u, "token", token, "listen",
					  l->addr, "port", l->port)
			      : NULL;

		if (j)
			cmd_print_json(j);
		json_decref(j);
		free(u);
	} else {
		printf("http://%s:%d/lab?token=%s\n", host, l->port, token);
	}
	fflush(stdout);
	fprintf(stderr,
		"envpin lab: open the URL above in your browser; Ctrl-C stops JupyterLab\n");
}

int cmd_lab(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct lab_args a = {0};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_image_loc loc = {0};
	struct ep_strvec cmd = EP_STRVEC_INIT;
	struct ep_caller caller = {0};
	struct ep_listen l;
	struct sigaction sa = {0};
	cleanup_free char *home = NULL, *hdst = NULL, *henv = NULL, *uenv = NULL, *user = NULL;
	char token[33];
	int rc, st = 0, status = EP_RUN_EFAIL;
	pid_t pid;

	runopts_init(&a.r);
	rc = parse_lab(argc, argv, ctx, &a);
	if (rc) {
		runopts_release(&a.r);
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	}
	if (ep_listen_parse(a.listen ? a.listen : "127.0.0.1", LAB_PORT, &l, &err) < 0) {
		status = cmd_fail(&err);
		goto out;
	}
	if (ep_engine_pick(a.r.o.engine, &a.r.o.engine, &err) < 0 ||
	    ep_image_locate(&ctx->store, a.image, &loc, &err) < 0 ||
	    pick_listen(a.listen, &l, &err) < 0 || ep_caller_get(&caller, &err) < 0 ||
	    ep_lab_token(token, &err) < 0)
		goto fail;
	if (!l.loopback)
		fprintf(stderr,
			"envpin lab: warning: listening on %s:%d, reachable from other machines; "
			"anyone with the token can run code as %s\n",
			l.addr, l.port, caller.name);
	home = ep_lab_home(&ctx->store, &caller, &err);
	if (!home)
		goto fail;
	hdst = ep_asprintf(&err, "/home/%s", caller.name);
	henv = hdst ? ep_asprintf(&err, "HOME=%s", hdst) : NULL;
	uenv = henv ? ep_asprintf(&err, "USER=%s", caller.name) : NULL;
	user = uenv ? ep_asprintf(&err, "%u:%u", (unsigned)caller.uid, (unsigned)caller.gid) : NULL;
	if (!user)
		goto fail;
	/* the token reaches the container through the environment, not argv */
	if (setenv("JUPYTER_TOKEN", token, 1) < 0 || runopts_push_volume(&a.r, home, hdst, 0) < 0 ||
	    runopts_push_env(&a.r, henv) < 0 || runopts_push_env(&a.r, uenv) < 0 ||
	    runopts_push_env(&a.r, "JUPYTER_TOKEN") < 0 ||
	    ep_lab_command(&cmd, &l, caller.uid == 0) < 0) {
		ep_error_oom(&err);
		goto fail;
	}
	a.r.o.user = user;
	a.r.o.cmd = cmd.v;
	a.r.o.n_cmd = cmd.n;
	a.r.o.no_entrypoint = 1;
	a.r.o.tty = 0;
	a.r.o.interactive = 0;
	if (a.r.certify) {
		status = run_certify(ctx, &loc, a.image, a.r.o.gpus, a.r.o.engine, a.r.require_gpu);
		if (status)
			goto out;
	}
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		ep_error_errno(&err, EP_EENV, errno, "fork");
		goto fail;
	}
	if (pid == 0) {
		ep_run(&ctx->store, &loc, &a.r.o, &status, &err);
		if (err.msg[0])
			fprintf(stderr, "envpin: %s\n", err.msg);
		_exit(status);
	}
	g_child = pid;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (ep_listen_wait(&l, child_ended, &st)) {
		print_ready(&a, &l, token);
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				break;
	}
	g_child = 0;
	status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (status == EP_LAB_MISSING) {
		fprintf(stderr,
			"envpin lab: %s has no JupyterLab (no jupyter-lab on its PATH); add "
			"a pip step with jupyterlab (docs/run.md)\n",
			a.image);
		status = EXIT_USAGE;
	}
	goto out;
fail:
	fprintf(stderr, "envpin: %s\n", err.msg[0] ? err.msg : "lab failed");
	status = err.code == EP_EINVAL ? EXIT_USAGE : EP_RUN_EFAIL;
out:
	ep_image_loc_release(&loc);
	ep_caller_release(&caller);
	ep_strvec_release(&cmd);
	runopts_release(&a.r);
	return status;
}
