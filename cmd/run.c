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

/* `run` as parsed once: what ep_run gets, plus --certify. */
struct run_args {
	struct ep_run_opts o;
	struct ep_volume *vols;
	const char **envs;
	const char **ports;
	const char *image;
	const char *ssh_port;
	const char *authorized_keys;
	int certify;
	int require_gpu;
};

static void run_args_release(struct run_args *a)
{
	for (size_t i = 0; i < a->o.n_volumes; i++)
		ep_volume_release(&a->vols[i]);
	free(a->vols);
	free(a->envs);
	free(a->ports);
}

/* The first run of an image unpacks its layers: one progress line. */
static void run_progress(void *pctx, const char *what, uint64_t done, uint64_t total)
{
	cmd_progress(pctx, what, done, total);
}

static int add(const char ***v, size_t *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

int run_volume_push(struct ep_volume **v, size_t *n, const char *src, const char *dst, int ro)
{
	struct ep_volume *nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -1;
	*v = nv;
	nv[*n].src = strdup(src);
	nv[*n].dst = strdup(dst);
	nv[*n].ro = ro;
	if (!nv[*n].src || !nv[*n].dst) {
		free(nv[*n].src);
		free(nv[*n].dst);
		return -1;
	}
	(*n)++;
	return 0;
}

/* -v: parsed here, once; SRC must exist now. */
static int add_volume(struct run_args *a, const char *spec, struct ep_error *err)
{
	struct ep_volume *nv = realloc(a->vols, (a->o.n_volumes + 1) * sizeof(*nv));

	if (!nv)
		return ep_error_oom(err);
	a->vols = nv;
	if (ep_runtime_volume(spec, &nv[a->o.n_volumes], err) < 0)
		return -1;
	a->o.n_volumes++;
	return 0;
}

/* Parses argv into *a.  0, or the exit status after a message (or help). */
static int parse_run(int argc, char **argv, struct cmd_ctx *ctx, struct run_args *a)
{
	enum {
		O_GPUS = 256,
		O_ENGINE,
		O_NAME,
		O_RM,
		O_KEEP,
		O_NOWS,
		O_CERTIFY,
		O_REQGPU,
		O_NOEP,
		O_SSH,
		O_AUTHKEYS
	};
	static const struct option opts[] = {
		{"gpus", required_argument, NULL, O_GPUS},
		{"engine", required_argument, NULL, O_ENGINE},
		{"volume", required_argument, NULL, 'v'},
		{"env", required_argument, NULL, 'e'},
		{"workdir", required_argument, NULL, 'w'},
		{"user", required_argument, NULL, 'u'},
		{"publish", required_argument, NULL, 'p'},
		{"name", required_argument, NULL, O_NAME},
		{"rm", no_argument, NULL, O_RM},
		{"keep", no_argument, NULL, O_KEEP},
		{"tty", optional_argument, NULL, 't'},
		{"interactive", no_argument, NULL, 'i'},
		{"detach", no_argument, NULL, 'd'},
		{"ssh", required_argument, NULL, O_SSH},
		{"authorized-keys", required_argument, NULL, O_AUTHKEYS},
		{"no-workspace", no_argument, NULL, O_NOWS},
		{"entrypoint-none", no_argument, NULL, O_NOEP},
		{"certify", no_argument, NULL, O_CERTIFY},
		{"require-gpu", no_argument, NULL, O_REQGPU},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ep_run_opts *o = &a->o;
	struct ep_error err = EP_ERROR_INIT;
	int c, e;

	o->progress = run_progress;
	optind = 1;
	/* '+': options end at IMAGE, so the command's own options pass through */
	while ((c = getopt_long(argc, argv, "+v:e:w:u:p:tidh", opts, NULL)) != -1) {
		switch (c) {
		case O_GPUS:
			o->gpus = optarg;
			break;
		case O_ENGINE:
			e = ep_engine_parse(optarg);
			if (e < 0) {
				cmd_usage_error(
				    ctx, "--engine: '%s' is not native, docker, podman or auto",
				    optarg);
				return EP_RUN_EFAIL;
			}
			o->engine = (enum ep_engine)e;
			break;
		case 'v':
			if (add_volume(a, optarg, &err) < 0)
				goto fail;
			break;
		case 'e':
			if (optarg[0] == '=' || !optarg[0]) {
				ep_error_set(&err, EP_EINVAL, "environment entry '%s' has no name",
					     optarg);
				goto fail;
			}
			if (add(&a->envs, &o->n_env, optarg) < 0)
				goto oom;
			break;
		case 'p':
			if (add(&a->ports, &o->n_ports, optarg) < 0)
				goto oom;
			break;
		case 'w':
			if (ep_runtime_check_cpath(optarg, "working dir", &err) < 0)
				goto fail;
			o->workdir = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case O_RM:
			o->keep = 0;
			break;
		case O_KEEP:
			o->keep = 1;
			break;
		case O_NOWS:
			o->no_workspace = 1;
			break;
		case O_NOEP:
			o->no_entrypoint = 1;
			break;
		case O_CERTIFY:
			a->certify = 1;
			break;
		case O_REQGPU:
			a->require_gpu = 1;
			break;
		case 'i':
			o->interactive = 1;
			break;
		case 'd':
			o->detach = 1;
			break;
		case O_SSH:
			a->ssh_port = optarg;
			break;
		case O_AUTHKEYS:
			a->authorized_keys = optarg;
			break;
		case 't':
			/* docker's -ti: getopt reads the i as -t's argument */
			if (optarg && !strcmp(optarg, "i"))
				o->interactive = 1;
			if (!optarg || !strcmp(optarg, "yes") || !strcmp(optarg, "true") ||
			    !strcmp(optarg, "i"))
				o->tty = 1;
			else if (!strcmp(optarg, "no") || !strcmp(optarg, "false"))
				o->tty = 0;
			else if (!strcmp(optarg, "auto"))
				o->tty = -1;
			else {
				cmd_usage_error(ctx, "--tty: '%s' is not yes, no or auto", optarg);
				return EP_RUN_EFAIL;
			}
			break;
		case 'h':
			fputs(run_usage, stdout);
			return CMD_HELP_DONE;
		default:
			cmd_usage_error(ctx, "unknown option");
			return EP_RUN_EFAIL;
		}
	}
	o->volumes = a->vols;
	o->env = a->envs;
	o->ports = a->ports;
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
fail:
	fprintf(stderr, "envpin: %s\n", err.msg);
	return EP_RUN_EFAIL;
oom:
	fprintf(stderr, "envpin: out of memory\n");
	return EP_RUN_EFAIL;
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

	if (a->o.n_cmd)
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
	if (run_volume_push(&a->vols, &a->o.n_volumes, keys, EP_SSH_KEY_DIR, 0) < 0 ||
	    run_volume_push(&a->vols, &a->o.n_volumes, auth, EP_SSH_AUTH_KEYS, 1) < 0 ||
	    run_volume_push(&a->vols, &a->o.n_volumes, home, hdst, 0) < 0 ||
	    ep_ssh_command(cmd, &l, &c) < 0) {
		ep_error_oom(err);
		goto out;
	}
	a->o.volumes = a->vols;
	a->o.user = "0:0";
	a->o.no_entrypoint = 1;
	a->o.cmd = cmd->v;
	a->o.n_cmd = cmd->n;
	if (!a->o.detach)
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

	ep_run_opts_init(&a.o);
	rc = parse_run(argc, argv, ctx, &a);
	if (rc) {
		run_args_release(&a);
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	}
	/* The engine and the image are resolved once: what --certify checked
	 * is what runs, even when a tag moves in between. */
	if (ep_engine_pick(a.o.engine, &a.o.engine, &err) < 0 ||
	    ep_image_locate(&ctx->store, a.image, &loc, &err) < 0)
		goto fail;
	if (a.ssh_port && setup_ssh(ctx, &a, &ssh_cmd, &err) < 0) {
		status = EP_RUN_EFAIL;
		fprintf(stderr, "envpin: %s\n", err.msg);
		goto out;
	}
	if (a.certify) {
		status = run_certify(ctx, &loc, a.image, a.o.gpus, a.o.engine, a.require_gpu);
		if (status)
			goto out;
	}
	if (a.o.detach) {
		char name[72];

		if (ep_run_detached(&ctx->store, &loc, a.image, &a.o, name, &status, &err) < 0)
			goto fail;
		printf("%s\n", name);
		status = cmd_finish(0) ? EP_RUN_EFAIL : 0;
		goto out;
	}
	if (ep_run(&ctx->store, &loc, &a.o, &status, &err) < 0)
		goto fail;
	fflush(stdout);
	goto out;
fail:
	fprintf(stderr, "envpin: %s\n", err.msg[0] ? err.msg : "run failed");
	if (err.code == EP_EENV && (a.o.engine == EP_ENGINE_NATIVE || a.o.engine == EP_ENGINE_AUTO))
		cmd_doctor_hint(ctx);
	if (!status)
		status = EP_RUN_EFAIL;
out:
	ep_image_loc_release(&loc);
	run_args_release(&a);
	ep_strvec_release(&ssh_cmd);
	return status;
}
