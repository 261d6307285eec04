/* cmd/run.c - envpin run: parse options, hand them to ep_run, exit with the
 * container's status (envpin's own failures: 125, 126, 127, as docker). */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cmd.h"
#include "containers.h"
#include "lab.h"
#include "run.h"
#include "runopts.h"
#include "runtime.h"
#include "strvec.h"
#include "util.h"

static const char run_usage[] =
    "usage: envpin run [OPTIONS] IMAGE [-- CMD [ARG...]]\n\n"
    "Runs IMAGE with the current directory at /workspace (also the working directory),\n"
    "the host network, the image's Env plus -e, and the host's NVIDIA GPUs when it has\n"
    "a driver. CMD replaces the image's Cmd (its Entrypoint stays), as with docker run.\n\n"
    "  --gpus all|none|auto|LIST  GPUs to pass: indexes or GPU-UUIDs, comma-separated\n"
    "                             (default auto: all when the host has an NVIDIA driver)\n"
    "  --engine native|docker|podman|auto\n"
    "                             native: runc with an overlayfs bundle in the store\n"
    "                             (default auto: native when runc is present, rootless in\n"
    "                             a user namespace for a non-root user; else docker when\n"
    "                             this user can reach its daemon, else podman; see\n"
    "                             envpin doctor)\n"
    "  -v, --volume SRC:DST[:ro]  bind-mount a host path\n"
    "  -e, --env K=V | K          set a variable (K alone: envpin's own value)\n"
    "  -w, --workdir DIR          working directory in the container\n"
    "  -u, --user USER[:GROUP]    name or uid (default: the image's User)\n"
    "  -p, --publish H:C          publish a port (docker/podman only; native uses the\n"
    "                             host network)\n"
    "      --name NAME            container name (default envpin-<random>)\n"
    "      --rm                   remove everything after exit (the default)\n"
    "      --keep                 keep the bundle (config.json, the container's writes)\n"
    "  -t, --tty yes|no|auto      a terminal (default auto: when stdin is one); the\n"
    "                             container then reads the terminal\n"
    "  -i, --interactive          the container reads envpin's stdin (without -i and\n"
    "                             without a terminal its stdin is /dev/null, as docker)\n"
    "  -d, --detach               start in the background, print the container's name;\n"
    "                             it survives the terminal, its output goes to a log in\n"
    "                             the store (envpin ps, logs, attach, stop, rm)\n"
    "      --ssh PORT             run the image's sshd on 127.0.0.1:PORT instead of CMD,\n"
    "                             for the caller (under sudo: SUDO_UID) with the caller's\n"
    "                             ~/.ssh/authorized_keys read-only; host keys made at\n"
    "                             first start, kept in the store\n"
    "      --authorized-keys FILE with --ssh: the keys that may log in\n"
    "      --no-workspace         do not mount the current directory\n"
    "      --entrypoint-none      ignore the image's Entrypoint: CMD is the whole command\n"
    "      --certify              first run `envpin check` on IMAGE with the same GPUs and\n"
    "                             engine, and refuse to start when it fails; a certificate\n"
    "                             kept in the store is reused while the image, GPUs, driver\n"
    "                             and runtime are the same\n"
    "      --require-gpu          with --certify: the GPU checks must run and pass\n\n"
    "The native engine confines the container as Docker's defaults do (seccomp\n"
    "allow-list, 14 capabilities, masked /proc paths) plus no_new_privs, and refuses a\n"
    "runc without the CVE-2024-21626 fix (ENVPIN_ALLOW_OLD_RUNC=1 overrides; docs/run.md).\n\n"
    "exit status: the container's; 125 envpin failed, 126 the command cannot be\n"
    "executed, 127 the command was not found.\n";

/* `run` as parsed once: what ep_run gets, plus --certify, --ssh. */
struct run_args {
	struct runopts r;
	const char *image;
	const char *ssh_port;
	const char *authorized_keys;
};

/* The first run of an image unpacks its layers: one progress line. */
static void run_progress(void *pctx, const char *what, uint64_t done, uint64_t total)
{
	cmd_progress(pctx, what, done, total);
}

/* Parses argv into *a.  0, or the exit status after a message (or help). */
static int parse_run(int argc, char **argv, struct cmd_ctx *ctx, struct run_args *a)
{
	enum { O_SSH = 256, O_AUTHKEYS };
	static const struct option own[] = {
	    {"ssh", required_argument, NULL, O_SSH},
	    {"authorized-keys", required_argument, NULL, O_AUTHKEYS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_run_opts *o = &a->r.o;
	struct runopts_getopt g;
	struct ep_error err = EP_ERROR_INIT;
	int c, r, rc = 0;

	o->progress = run_progress;
	/* '+': options end at IMAGE, so the command's own options pass through */
	if (runopts_getopt_init(&g, RUNOPT_RUN, "+h", own, &err) < 0) {
		cmd_fail(&err);
		return EP_RUN_EFAIL;
	}
	optind = 1;
	while (!rc && (c = getopt_long(argc, argv, g.shortopts, g.longopts, NULL)) != -1) {
		r = runopts_parse(&a->r, RUNOPT_RUN, c, optarg, &err);
		if (r < 0) {
			runopts_report(ctx, r, &err);
			rc = EP_RUN_EFAIL;
		} else if (r == 1) {
			switch (c) {
			case O_SSH:
				a->ssh_port = optarg;
				break;
			case O_AUTHKEYS:
				a->authorized_keys = optarg;
				break;
			case 'h':
				fputs(run_usage, stdout);
				rc = CMD_HELP_DONE;
				break;
			default:
				cmd_usage_error(ctx, "unknown option");
				rc = EP_RUN_EFAIL;
			}
		}
	}
	runopts_getopt_release(&g);
	if (rc)
		return rc;
	if (optind >= argc) {
		cmd_usage_error(ctx, "name an IMAGE");
		return EP_RUN_EFAIL;
	}
	a->image = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	o->cmd = argv + optind;
	o->n_cmd = (size_t)(argc - optind);
	return 0;
}

/* For tests: with ENVPIN_TEST_CERTIFIED_FIFO set, `run --certify` writes
 * the certified digest to that fifo, then waits until a line comes back
 * on it, so that a test can change the store between certification and
 * start. */
static void certified_hook(const char *digest)
{
	const char *fifo = getenv("ENVPIN_TEST_CERTIFIED_FIFO");
	char buf[64];
	FILE *f;

	if (!fifo || !*fifo)
		return;
	f = fopen(fifo, "w");
	if (f) {
		fprintf(f, "%s\n", digest);
		fclose(f);
	}
	f = fopen(fifo, "r");
	if (f) {
		while (fgets(buf, sizeof(buf), f) && !strchr(buf, '\n'))
			;
		fclose(f);
	}
}

int run_certify(struct cmd_ctx *ctx, const struct ep_image_loc *loc, const char *name,
		const char *gpus, enum ep_engine engine, int require_gpu)
{
	struct check_opts co = {gpus, engine, require_gpu, 0};
	struct ep_error err = EP_ERROR_INIT;
	cleanup_json json_t *cert = NULL;

	if (certify_image(ctx, loc, &co, &cert, &err) < 0) {
		fprintf(stderr, "envpin: refusing to start: the check could not run: %s\n",
			err.msg);
		return EP_RUN_EFAIL;
	}
	if (strcmp(json_string_value(json_object_get(cert, "result")), "pass")) {
		/* The report goes to stderr: stdout belongs to the container. */
		fflush(stdout);
		int saved = dup(1);
		if (saved >= 0 && dup2(2, 1) >= 0) {
			print_cert_summary(cert, 0);
			fflush(stdout);
			dup2(saved, 1);
		}
		if (saved >= 0)
			close(saved);
		fprintf(stderr, "envpin: refusing to start %s: its check failed\n", name);
		return EP_RUN_EFAIL;
	}
	fprintf(stderr, "envpin: %s (%.19s) certified on this machine", name, loc->digest);
	print_cert_scope(stderr, cert);
	fputc('\n', stderr);
	certified_hook(loc->digest);
	return 0;
}

/* --ssh PORT: the image's sshd instead of CMD, as root in the container,
 * for the caller only (lib/lab.h); *cmd holds the command. */
static int setup_ssh(struct cmd_ctx *ctx, struct run_args *a, struct ep_strvec *cmd,
		     struct ep_error *err)
{
	struct ep_caller c;
	struct ep_listen l;
	cleanup_free char *home = NULL, *keys = NULL, *auth = NULL, *hdst = NULL;
	struct stat st;
	int rc = -1;

	if (a->r.o.n_cmd)
		return ep_error_set(err, EP_EINVAL, "--ssh runs sshd: give no command");
	if (ep_listen_parse(a->ssh_port, 22, &l, err) < 0)
		return ep_error_wrap(err, "--ssh");
	if (!l.loopback)
		fprintf(stderr,
			"envpin: warning: sshd listens on %s, reachable from other machines\n",
			l.addr);
	if (!ep_listen_free(&l))
		return ep_error_set(err, EP_EENV, "--ssh: %s port %d is in use", l.addr, l.port);
	if (ep_caller_get(&c, err) < 0)
		return -1;
	if (a->authorized_keys)
		auth = strdup(a->authorized_keys);
	else if (c.home)
		auth = ep_asprintf(err, "%s/.ssh/authorized_keys", c.home);
	if (!auth) {
		ep_error_set(err, EP_EINVAL, "--ssh: no home directory: use --authorized-keys");
		goto out;
	}
	if (stat(auth, &st) < 0 || !S_ISREG(st.st_mode)) {
		ep_error_set(err, EP_EINVAL,
			     "--ssh: '%s' is not a file: put your public key there (ssh-keygen; "
			     "cat ~/.ssh/id_ed25519.pub >>%s) or use --authorized-keys FILE",
			     auth, auth);
		goto out;
	}
	(void)ctx;
	home = ep_lab_home(&ctx->store, &c, err);
	keys = home ? ep_ssh_key_dir(&ctx->store, err) : NULL;
	hdst = keys ? ep_asprintf(err, "/home/%s", c.name) : NULL;
	if (!hdst)
		goto out;
	if (runopts_push_volume(&a->r, keys, EP_SSH_KEY_DIR, 0) < 0 ||
	    runopts_push_volume(&a->r, auth, EP_SSH_AUTH_KEYS, 1) < 0 ||
	    runopts_push_volume(&a->r, home, hdst, 0) < 0 || ep_ssh_command(cmd, &l, &c) < 0) {
		ep_error_oom(err);
		goto out;
	}
	a->r.o.user = "0:0";
	a->r.o.no_entrypoint = 1;
	a->r.o.cmd = cmd->v;
	a->r.o.n_cmd = cmd->n;
	if (!a->r.o.detach)
		fprintf(stderr, "envpin: ssh -p %d %s@%s (Ctrl-C stops sshd)\n", l.port, c.name,
			l.loopback ? "localhost" : l.addr);
	rc = 0;
out:
	ep_caller_release(&c);
	return rc;
}

int cmd_run(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_strvec ssh_cmd = EP_STRVEC_INIT;
	struct run_args a = {0};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_image_loc loc = {0};
	int rc, status = EP_RUN_EFAIL;

	runopts_init(&a.r);
	rc = parse_run(argc, argv, ctx, &a);
	if (rc) {
		runopts_release(&a.r);
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	}
	/* The engine and the image are resolved once: what --certify checked
	 * is what runs, even when a tag moves in between. */
	if (ep_engine_pick(a.r.o.engine, &a.r.o.engine, &err) < 0 ||
	    ep_image_locate(&ctx->store, a.image, &loc, &err) < 0)
		goto fail;
	if (a.ssh_port && setup_ssh(ctx, &a, &ssh_cmd, &err) < 0) {
		status = EP_RUN_EFAIL;
		fprintf(stderr, "envpin: %s\n", err.msg);
		goto out;
	}
	if (a.r.certify) {
		status = run_certify(ctx, &loc, a.image, a.r.o.gpus, a.r.o.engine, a.r.require_gpu);
		if (status)
			goto out;
	}
	if (a.r.o.detach) {
		char name[72];

		if (ep_run_detached(&ctx->store, &loc, a.image, &a.r.o, name, &status, &err) < 0)
			goto fail;
		printf("%s\n", name);
		status = cmd_finish(0) ? EP_RUN_EFAIL : 0;
		goto out;
	}
	if (ep_run(&ctx->store, &loc, &a.r.o, &status, &err) < 0)
		goto fail;
	fflush(stdout);
	goto out;
fail:
	fprintf(stderr, "envpin: %s\n", err.msg[0] ? err.msg : "run failed");
	if (err.code == EP_EENV &&
	    (a.r.o.engine == EP_ENGINE_NATIVE || a.r.o.engine == EP_ENGINE_AUTO))
		cmd_doctor_hint(ctx);
	if (!status)
		status = EP_RUN_EFAIL;
out:
	ep_image_loc_release(&loc);
	runopts_release(&a.r);
	ep_strvec_release(&ssh_cmd);
	return status;
}
