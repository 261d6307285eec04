/* cmd/k8s.c - envpin k8s: a Kubernetes Job or Pod for an image pinned by
 * digest (lib/k8s.h). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "k8s.h"
#include "util.h"

static const char k8s_usage[] =
    "usage: envpin k8s REPO@sha256:HEX [--gpus N] [--job|--pod] [--runtime-class C]\n"
    "                  [--pvc NAME|--host-path DIR] [--name NAME] [--namespace NS]\n"
    "                  [-e K=V]... [--no-check] [--json] [-- ARGS...]\n\n"
    "Prints a Kubernetes manifest (YAML; JSON with --json) that runs the image pinned by its\n"
    "digest: a reference with only a tag is refused (exit 2), a tag next to the digest is\n"
    "dropped. `envpin push` prints the digest of what it pushed.\n\n"
    "  --gpus N             resources.limits nvidia.com/gpu: N (default 0: no GPU)\n"
    "  --job | --pod        a batch/v1 Job (default, backoffLimit 0) or a bare Pod\n"
    "  --runtime-class C    runtimeClassName (e.g. nvidia)\n"
    "  --pvc NAME           the workspace, mounted at /workspace, from this claim\n"
    "  --host-path DIR      ... or from this directory of the node\n"
    "  --name NAME          the object's name (default: repository-digestprefix)\n"
    "  --namespace NS       metadata.namespace\n"
    "  -e K=V               an environment variable of the work container\n"
    "  --no-check           no init containers\n"
    "  -- ARGS...           the work container's args (the image's Entrypoint stays,\n"
    "                       as with envpin run)\n\n"
    "Two init containers run first, in the same image with the same GPU limit: the\n"
    "image's self-check (envpin-selfcheck --require-gpu --expect-gpus N when N > 0) and\n"
    "its FITS smoke test (envpin-fitsinfer --smoke): what `envpin check --require-gpu`\n"
    "runs. A pod on a node with a broken driver fails before the work starts.\n";

int cmd_k8s(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_GPUS = 256, O_JOB, O_POD, O_RC, O_PVC, O_HP, O_NAME, O_NS, O_JSON, O_NOCHECK };
	static const struct option opts[] = {
	    {"gpus", required_argument, NULL, O_GPUS},
	    {"job", no_argument, NULL, O_JOB},
	    {"pod", no_argument, NULL, O_POD},
	    {"runtime-class", required_argument, NULL, O_RC},
	    {"pvc", required_argument, NULL, O_PVC},
	    {"host-path", required_argument, NULL, O_HP},
	    {"name", required_argument, NULL, O_NAME},
	    {"namespace", required_argument, NULL, O_NS},
	    {"env", required_argument, NULL, 'e'},
	    {"no-check", no_argument, NULL, O_NOCHECK},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_k8s_opts o = {0};
	cleanup_free const char **env = NULL;
	json_t *m;
	int c, json = 0, rc, dash;

	env = calloc((size_t)argc + 1, sizeof(*env));
	if (!env) {
		ep_error_oom(&err);
		return cmd_fail(&err);
	}
	/* the container's args are what follows "--"; options may come after
	 * the image */
	for (dash = 1; dash < argc && strcmp(argv[dash], "--"); dash++)
		;
	optind = 1;
	while ((c = getopt_long(dash, argv, "he:", opts, NULL)) != -1) {
		char *end;
		unsigned long n;

		switch (c) {
		case O_GPUS:
			n = strtoul(optarg, &end, 10);
			if (!*optarg || *end || n > 64 || optarg[0] == '-')
				return cmd_usage_error(ctx, "--gpus '%s': a count 0..64", optarg);
			o.gpus = (unsigned)n;
			break;
		case O_JOB:
			o.pod = 0;
			break;
		case O_POD:
			o.pod = 1;
			break;
		case O_RC:
			o.runtime_class = optarg;
			break;
		case O_PVC:
			o.pvc = optarg;
			break;
		case O_HP:
			o.host_path = optarg;
			break;
		case O_NAME:
			o.name = optarg;
			break;
		case O_NS:
			o.k8s_namespace = optarg;
			break;
		case 'e':
			env[o.n_env++] = optarg;
			break;
		case O_NOCHECK:
			o.no_check = 1;
			break;
		case O_JSON:
			json = 1;
			break;
		case 'h':
			fputs(k8s_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind >= dash)
		return cmd_usage_error(ctx, "an image reference REPO@sha256:HEX is required");
	if (dash - optind > 1)
		return cmd_usage_error(ctx, "unexpected '%s' (the container's args follow '--')",
				       argv[optind + 1]);
	o.image = argv[optind];
	o.cmd = dash < argc ? argv + dash + 1 : NULL;
	o.n_cmd = dash < argc ? (size_t)(argc - dash - 1) : 0;
	o.env = env;
	m = ep_k8s_manifest(&o, &err);
	if (!m)
		return cmd_fail(&err);
	if (json) {
		rc = cmd_print_json(m);
	} else {
		char *y = ep_k8s_yaml(m, &err);

		if (!y) {
			json_decref(m);
			return cmd_fail(&err);
		}
		fputs(y, stdout);
		free(y);
		rc = 0;
	}
	json_decref(m);
	return cmd_finish(rc);
}
