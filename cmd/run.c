/* cmd/run.c - envpin run: parse options, hand them to ep_run, exit with the
 * container's status (envpin's own failures: 125, 126, 127, as docker). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cmd.h"
#include "runtime.h"
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
	"                             (default auto: native when runc is present and envpin\n"
	"                             runs as root, else docker, else podman)\n"
	"  -v, --volume SRC:DST[:ro]  bind-mount a host path\n"
	"  -e, --env K=V | K          set a variable (K alone: envpin's own value)\n"
	"  -w, --workdir DIR          working directory in the container\n"
	"  -u, --user USER[:GROUP]    name or uid (default: the image's User)\n"
	"  -p, --publish H:C          publish a port (docker/podman only; native uses the\n"
	"                             host network)\n"
	"      --name NAME            container name (default envpin-<random>)\n"
	"      --rm                   remove everything after exit (the default)\n"
	"      --keep                 keep the bundle (config.json, the container's writes)\n"
	"  -t, --tty yes|no|auto      a terminal (default auto: when stdin is one)\n"
	"      --no-workspace         do not mount the current directory\n"
	"      --entrypoint-none      ignore the image's Entrypoint: CMD is the whole command\n"
	"      --certify              first run `envpin check` on IMAGE with the same GPUs and\n"
	"                             engine, and refuse to start when it fails\n"
	"      --require-gpu          with --certify: the GPU checks must run and pass\n\n"
	"exit status: the container's; 125 envpin failed, 126 the command cannot be\n"
	"executed, 127 the command was not found.\n";

static int add(const char ***v, size_t *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

int cmd_run(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_GPUS = 256, O_ENGINE, O_NAME, O_RM, O_KEEP, O_NOWS, O_CERTIFY, O_REQGPU, O_NOEP };
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
		{"no-workspace", no_argument, NULL, O_NOWS},
		{"entrypoint-none", no_argument, NULL, O_NOEP},
		{"certify", no_argument, NULL, O_CERTIFY},
		{"require-gpu", no_argument, NULL, O_REQGPU},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_run_opts o;
	cleanup_free const char **vols = NULL;
	cleanup_free const char **envs = NULL;
	cleanup_free const char **ports = NULL;
	int c, status = EP_RUN_EFAIL, e, certify = 0, require_gpu = 0;

	ep_run_opts_init(&o);
	o.progress = (void (*)(void *, const char *, uint64_t, uint64_t))cmd_progress;
	optind = 1;
	/* '+': options end at IMAGE, so the command's own options pass through */
	while ((c = getopt_long(argc, argv, "+v:e:w:u:p:th", opts, NULL)) != -1) {
		switch (c) {
		case O_GPUS:
			o.gpus = optarg;
			break;
		case O_ENGINE:
			e = ep_engine_parse(optarg);
			if (e < 0)
				goto usage_engine;
			o.engine = (enum ep_engine)e;
			break;
		case 'v':
			if (add(&vols, &o.n_volumes, optarg) < 0)
				goto oom;
			break;
		case 'e':
			if (add(&envs, &o.n_env, optarg) < 0)
				goto oom;
			break;
		case 'p':
			if (add(&ports, &o.n_ports, optarg) < 0)
				goto oom;
			break;
		case 'w':
			o.workdir = optarg;
			break;
		case 'u':
			o.user = optarg;
			break;
		case O_NAME:
			o.name = optarg;
			break;
		case O_RM:
			o.keep = 0;
			break;
		case O_KEEP:
			o.keep = 1;
			break;
		case O_NOWS:
			o.no_workspace = 1;
			break;
		case O_NOEP:
			o.no_entrypoint = 1;
			break;
		case O_CERTIFY:
			certify = 1;
			break;
		case O_REQGPU:
			require_gpu = 1;
			break;
		case 't':
			if (!optarg || !strcmp(optarg, "yes") || !strcmp(optarg, "true"))
				o.tty = 1;
			else if (!strcmp(optarg, "no") || !strcmp(optarg, "false"))
				o.tty = 0;
			else if (!strcmp(optarg, "auto"))
				o.tty = -1;
			else {
				cmd_usage_error(ctx, "--tty: '%s' is not yes, no or auto", optarg);
				return EP_RUN_EFAIL;
			}
			break;
		case 'h':
			fputs(run_usage, stdout);
			return cmd_finish(0);
		default:
			cmd_usage_error(ctx, "unknown option");
			return EP_RUN_EFAIL;
		}
	}
	o.volumes = vols;
	o.env = envs;
	o.ports = ports;
	if (optind >= argc) {
		cmd_usage_error(ctx, "name an IMAGE");
		return EP_RUN_EFAIL;
	}
	{
		const char *image = argv[optind++];

		if (optind < argc && !strcmp(argv[optind], "--"))
			optind++;
		o.cmd = argv + optind;
		o.n_cmd = (size_t)(argc - optind);
		if (certify) {
			struct check_opts co = {o.gpus, o.engine, require_gpu, 0};
			cleanup_json json_t *cert = NULL;

			if (check_image(ctx, image, &co, &cert, &err) < 0) {
				fprintf(stderr, "envpin: refusing to start: the check could not run: %s\n", err.msg);
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
				fprintf(stderr, "envpin: refusing to start %s: its check failed\n", image);
				return EP_RUN_EFAIL;
			}
			fprintf(stderr, "envpin: %s certified on this machine\n", image);
		}
		if (cmd_open_store(ctx, 0, &err) < 0 || ep_run(&ctx->store, image, &o, &status, &err) < 0) {
			fprintf(stderr, "envpin: %s\n", err.msg[0] ? err.msg : "run failed");
			return status ? status : EP_RUN_EFAIL;
		}
	}
	fflush(stdout);
	return status;
usage_engine:
	cmd_usage_error(ctx, "--engine: '%s' is not native, docker, podman or auto", optarg);
	return EP_RUN_EFAIL;
oom:
	fprintf(stderr, "envpin: out of memory\n");
	return EP_RUN_EFAIL;
}
