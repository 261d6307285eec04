/* cmd/slurm.c - envpin slurm (oci.conf, and the runc calls it names),
 * envpin bundle and envpin certificates merge (docs/slurm.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "image.h"
#include "oci.h"
#include "runtime.h"
#include "slurm.h"
#include "strvec.h"
#include "util.h"

static const char slurm_usage[] =
    "usage: envpin slurm [--install] [--output FILE] [--envpin PATH]\n"
    "       envpin slurm oci [--user NAME] run|state|kill|delete ID [BUNDLE|SIGNAL]\n\n"
    "Prints the oci.conf that makes Slurm 22.05+ run envpin bundles: `srun --container=DIR`\n"
    "where DIR was made by `envpin bundle IMAGE DIR` on the node. Its RunTimeRun,\n"
    "RunTimeQuery, RunTimeKill and RunTimeDelete call `envpin slurm oci ...`, which runs\n"
    "runc on the bundle Slurm writes: as root for root's jobs, and as root inside envpin's\n"
    "user namespace for everyone else's (docs/rootless.md).\n\n"
    "  --install        write it beside slurm.conf ($SLURM_CONF's directory, else\n"
    "                   /etc/slurm); restart slurmd afterwards\n"
    "  --output FILE    write it to FILE\n"
    "  --envpin PATH    the envpin the nodes run (default: this one, by absolute path)\n";

static const char bundle_usage[] =
    "usage: envpin bundle IMAGE DIR [--gpus all|none|LIST] [--user USER] [-e K=V]...\n\n"
    "Prepares an OCI runtime bundle in the new directory DIR: DIR/rootfs (the image,\n"
    "flattened and verified as `envpin unpack` does) and DIR/config.json (the spec envpin\n"
    "run would use, in its rootless form: GPU device nodes and driver libraries bound from\n"
    "the host, no cgroup rules), for `srun --container=DIR` (docs/slurm.md) or\n"
    "`runc run --bundle DIR`. The GPU plan is this node's: make the bundle on the node.\n\n"
    "  --gpus SEL    as for envpin run (default: the node's GPUs when it has a driver)\n"
    "  --user USER   the process's user in the image (default: the image's User)\n"
    "  -e K=V        an environment variable\n";

static const char certs_usage[] =
    "usage: envpin certificates merge [--json] [NODE=]CERT...\n\n"
    "Gathers one certificate per node (from `envpin check IMAGE -o CERT` run on each node,\n"
    "e.g. through `srun`, docs/slurm.md) into one report: which nodes passed, which failed\n"
    "and why, whether they certified the same image, and whether their fingerprints agree\n"
    "(compared with the first passing node's, within the tolerances it carries). A node's\n"
    "name is NODE= or the file name (cert-NODE.json). A missing certificate is a failed\n"
    "node. Exit status 0 when every node passed and all agree, 1 otherwise.\n\n"
    "  --json   the report as JSON\n";

static char *self_path(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return strdup("envpin");
	buf[n] = '\0';
	return strdup(buf);
}

/* The text to a file, replaced atomically. */
static int write_text(const char *path, const char *text, struct ep_error *err)
{
	cleanup_free char *tmp = ep_asprintf(err, "%s.tmp.%d", path, (int)getpid());
	int fd;

	if (!tmp)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", tmp);
	if (ep_write_all(fd, text, strlen(text), err) < 0 || fsync(fd) < 0 || close(fd) < 0) {
		if (!err->code)
			ep_error_errno(err, EP_EENV, errno, "write '%s'", tmp);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return ep_error_errno(err, EP_EENV, errno, "rename to '%s'", path);
	}
	return 0;
}

static int slurm_oci(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_strvec a = EP_STRVEC_INIT;
	enum ep_slurm_op op;
	const char *extra;

	/* --user NAME: the job's user (Slurm's %u), whoever runs this */
	if (argc > 2 && !strcmp(argv[1], "--user")) {
		if (ep_slurm_become(argv[2], &err) < 0)
			return cmd_fail(&err);
		argc -= 2;
		argv += 2;
	}
	extra = argc > 3 ? argv[3] : NULL;
	if (argc < 3)
		return cmd_usage_error(ctx, "oci: ACTION and ID are required");
	if (!strcmp(argv[1], "run"))
		op = EP_SLURM_RUN;
	else if (!strcmp(argv[1], "state"))
		op = EP_SLURM_STATE;
	else if (!strcmp(argv[1], "kill"))
		op = EP_SLURM_KILL;
	else if (!strcmp(argv[1], "delete"))
		op = EP_SLURM_DELETE;
	else
		return cmd_usage_error(ctx, "oci: unknown action '%s'", argv[1]);
	if (op == EP_SLURM_RUN && !extra)
		return cmd_usage_error(ctx, "oci run: ID BUNDLE");
	/* Slurm asks for the state after the step too: a container runc has
	 * forgotten (deleted, or never created) is "stopped", in the OCI state
	 * format Slurm parses, not runc's error text */
	if (op == EP_SLURM_STATE && !ep_slurm_container_exists(argv[2])) {
		json_t *st = json_pack("{s:s,s:s,s:s,s:i,s:s}", "ociVersion", "1.0.2", "id",
				       argv[2], "status", "stopped", "pid", 0, "bundle", "");
		int rc = st ? cmd_print_json(st) : EXIT_ENV;

		json_decref(st);
		return cmd_finish(rc);
	}
	if ((op == EP_SLURM_KILL || op == EP_SLURM_DELETE) && !ep_slurm_container_exists(argv[2]))
		return cmd_finish(0);
	if (ep_slurm_runc_argv(op, argv[2], extra, extra, &a, &err) < 0) {
		ep_strvec_release(&a);
		fprintf(stderr, "envpin: slurm oci %s: %s\n", argv[1], err.msg);
		return op == EP_SLURM_RUN ? 125 : cmd_fail(&err);
	}
	fflush(stdout);
	if (op == EP_SLURM_RUN) {
		/* a supervisor, not exec: see ep_slurm_supervise */
		int st = ep_slurm_supervise(a.v, argv[2], 10);

		ep_strvec_release(&a);
		return st;
	}
	execvp(a.v[0], a.v);
	fprintf(stderr, "envpin: exec runc: %s\n", strerror(errno));
	ep_strvec_release(&a);
	return op == EP_SLURM_RUN ? 127 : EXIT_ENV;
}

int cmd_slurm(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_INSTALL = 256, O_ENVPIN };
	static const struct option opts[] = {
	    {"install", no_argument, NULL, O_INSTALL},
	    {"output", required_argument, NULL, 'o'},
	    {"envpin", required_argument, NULL, O_ENVPIN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	cleanup_free char *self = NULL, *text = NULL, *dest = NULL;
	const char *out = NULL, *envpin = NULL;
	int c, install = 0;

	if (argc > 1 && !strcmp(argv[1], "oci"))
		return slurm_oci(argc - 1, argv + 1, ctx);
	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		if (c == O_INSTALL)
			install = 1;
		else if (c == 'o')
			out = optarg;
		else if (c == O_ENVPIN)
			envpin = optarg;
		else if (c == 'h') {
			fputs(slurm_usage, stdout);
			return cmd_finish(0);
		} else
			return cmd_usage_error(ctx, "unknown option");
	}
	if (optind < argc)
		return cmd_usage_error(ctx, "unexpected '%s'", argv[optind]);
	if (envpin && envpin[0] != '/')
		return cmd_usage_error(ctx, "--envpin '%s': an absolute path", envpin);
	if (!envpin) {
		self = self_path();
		if (!self)
			return cmd_fail((ep_error_oom(&err), &err));
		envpin = self;
	}
	if (strpbrk(envpin, "\"\n %"))
		return cmd_usage_error(ctx, "--envpin '%s': no quotes, spaces or %% in the path",
				       envpin);
	text = ep_slurm_oci_conf(envpin, &err);
	if (!text)
		return cmd_fail(&err);
	if (install && !out) {
		const char *conf = getenv("SLURM_CONF");
		cleanup_free char *copy = strdup(conf && *conf ? conf : "/etc/slurm/slurm.conf");

		if (!copy)
			return cmd_fail((ep_error_oom(&err), &err));
		dest = ep_asprintf(&err, "%s/oci.conf", dirname(copy));
		if (!dest)
			return cmd_fail(&err);
		out = dest;
	}
	if (!out) {
		fputs(text, stdout);
		return cmd_finish(0);
	}
	if (write_text(out, text, &err) < 0)
		return cmd_fail(&err);
	printf("wrote %s (restart slurmd on the node to load it)\n", out);
	return cmd_finish(0);
}

int cmd_bundle(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {
	    {"gpus", required_argument, NULL, 'g'},
	    {"user", required_argument, NULL, 'u'},
	    {"env", required_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_image_loc loc = {0};
	struct ep_run_opts o;
	cleanup_free const char **env = calloc((size_t)argc + 1, sizeof(*env));
	json_t *info = NULL;
	int c, rc;

	if (!env)
		return cmd_fail((ep_error_oom(&err), &err));
	ep_run_opts_init(&o);
	o.engine = EP_ENGINE_NATIVE;
	o.no_workspace = 1;
	o.tty = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "he:u:", opts, NULL)) != -1) {
		if (c == 'g')
			o.gpus = optarg;
		else if (c == 'u')
			o.user = optarg;
		else if (c == 'e')
			env[o.n_env++] = optarg;
		else if (c == 'h') {
			fputs(bundle_usage, stdout);
			return cmd_finish(0);
		} else
			return cmd_usage_error(ctx, "unknown option");
	}
	if (argc - optind != 2)
		return cmd_usage_error(ctx, "IMAGE and DIR are required");
	o.env = env;
	if (ep_image_locate(&ctx->store, argv[optind], &loc, &err) < 0)
		return cmd_fail(&err);
	info = ep_inspect(loc.layout, loc.digest, &err);
	rc = info ? ep_run_bundle_dir(&loc, info, argv[optind + 1], &o, &err) : -1;
	json_decref(info);
	if (rc < 0) {
		ep_image_loc_release(&loc);
		return cmd_fail(&err);
	}
	printf("%s\n", loc.digest);
	ep_image_loc_release(&loc);
	return cmd_finish(0);
}

int cmd_certificates(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	cleanup_free const char **files = NULL, **nodes = NULL;
	json_t *rep;
	size_t n = 0;
	int c, json = 0, rc;

	if (argc < 2 || strcmp(argv[1], "merge")) {
		if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			fputs(certs_usage, stdout);
			return cmd_finish(0);
		}
		return cmd_usage_error(ctx, "the one subcommand is 'merge'");
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'h') {
			fputs(certs_usage, stdout);
			return cmd_finish(0);
		} else
			return cmd_usage_error(ctx, "unknown option");
	}
	if (optind >= argc)
		return cmd_usage_error(ctx, "merge: at least one certificate");
	files = calloc((size_t)argc, sizeof(*files));
	nodes = calloc((size_t)argc, sizeof(*nodes));
	if (!files || !nodes)
		return cmd_fail((ep_error_oom(&err), &err));
	for (int i = optind; i < argc; i++, n++) {
		char *eq = strchr(argv[i], '=');

		/* NODE=FILE: a '=' before any '/' */
		if (eq && eq > argv[i] && (!strchr(argv[i], '/') || eq < strchr(argv[i], '/'))) {
			*eq = '\0';
			nodes[n] = argv[i];
			files[n] = eq + 1;
		} else {
			files[n] = argv[i];
		}
	}
	rep = ep_certs_merge(files, nodes, n, &err);
	if (!rep)
		return cmd_fail(&err);
	rc = strcmp(json_string_value(json_object_get(rep, "result")), "pass") ? EXIT_MISMATCH
									       : EXIT_OK;
	if (json) {
		int prc = cmd_print_json(rep);

		json_decref(rep);
		return cmd_finish(prc ? prc : rc);
	}
	{
		size_t i;
		json_t *row;

		json_array_foreach (json_object_get(rep, "nodes"), i, row) {
			const json_t *reasons = json_object_get(row, "reasons");
			size_t k;
			json_t *r;

			printf("%-4s  %-20s fingerprint %-9s %s",
			       json_string_value(json_object_get(row, "result")),
			       json_string_value(json_object_get(row, "node")) ?: "?",
			       json_string_value(json_object_get(row, "fingerprint")) ?: "none",
			       json_string_value(json_object_get(row, "driver_version")) ?: "");
			json_array_foreach (reasons, k, r)
				printf("%s%s", k ? "; " : " — ", json_string_value(r) ?: "");
			printf("\n");
		}
		printf("nodes: %lld passed, %lld failed; image %s; fingerprints %s\n",
		       (long long)json_integer_value(json_object_get(rep, "passed")),
		       (long long)json_integer_value(json_object_get(rep, "failed")),
		       json_is_true(json_object_get(rep, "images_agree")) ? "the same on all"
									  : "DIFFERS between nodes",
		       json_is_true(json_object_get(rep, "fingerprints_agree")) ? "agree"
										: "DO NOT agree");
		printf("certification: %s\n", rc ? "FAIL" : "PASS");
	}
	json_decref(rep);
	return cmd_finish(rc);
}
