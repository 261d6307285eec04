/* cmd/build.c - envpin build and envpin lock. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "build.h"
#include "cmd.h"
#include "jsonutil.h"
#include "util.h"

static const char build_usage[] =
	"usage: envpin build [-f MANIFEST] [--lock FILE] [--locked] [--compress gzip|zstd|none]\n"
	"                    [-o OCI_DIR] [--tag NAME] [--json] [-q]\n\n"
	"Builds the image a manifest describes, stores it, and writes/updates the lock file\n"
	"(NAME.lock.json beside NAME.json). The last line of stdout is the image digest.\n"
	"A run step (a command in the image, sandboxed: docs/manifest.md) needs root and runc;\n"
	"one that fails exits 1, naming the step and showing its last output lines.\n\n"
	"  -f, --file MANIFEST   the manifest (default: envpin.json)\n"
	"      --lock FILE       the lock file (default: beside the manifest)\n"
	"      --locked          refuse any input that differs from the lock, and a result that\n"
	"                        differs from the digest the lock records; the lock is not written\n"
	"      --compress KIND   gzip (default, or the lock's), zstd or none\n"
	"  -o, --output DIR      also write the image to an OCI layout directory\n"
	"      --tag NAME        tag in the store (default: the manifest's name)\n"
	"      --json            print a JSON summary instead of text\n"
	"  -q, --quiet           print only the digest\n";

static const char lock_usage[] =
	"usage: envpin lock [-f MANIFEST] [--lock FILE] [--compress gzip|zstd|none] [--json]\n\n"
	"Resolves every input of a manifest to a digest and writes the lock file\n"
	"(NAME.lock.json beside NAME.json) without building. The image digest recorded by an\n"
	"earlier build is kept only while the inputs are unchanged.\n";

struct bopts {
	struct ep_build_opts o;
	int json, quiet;
};

static int parse(int argc, char **argv, struct cmd_ctx *ctx, struct bopts *b, const char *usage,
		 int is_build)
{
	enum { O_LOCK = 256, O_LOCKED, O_COMPRESS, O_TAG, O_JSON };
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},  {"lock", required_argument, NULL, O_LOCK},
		{"locked", no_argument, NULL, O_LOCKED},  {"compress", required_argument, NULL, O_COMPRESS},
		{"output", required_argument, NULL, 'o'}, {"tag", required_argument, NULL, O_TAG},
		{"json", no_argument, NULL, O_JSON},      {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	int c;

	memset(b, 0, sizeof(*b));
	b->o.manifest_path = "envpin.json";
	ep_compress_defaults(EP_COMPRESS_GZIP, &b->o.compress);
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			b->o.manifest_path = optarg;
			break;
		case O_LOCK:
			b->o.lock_path = optarg;
			break;
		case O_LOCKED:
			if (!is_build)
				return cmd_usage_error(ctx, "--locked is a build option");
			b->o.locked = 1;
			break;
		case O_COMPRESS: {
			enum ep_compression k;

			if (ep_compression_parse(optarg, &k, &err) < 0)
				return cmd_usage_error(ctx, "%s", err.msg);
			ep_compress_defaults(k, &b->o.compress);
			b->o.compress_set = 1;
			break;
		}
		case 'o':
			if (!is_build)
				return cmd_usage_error(ctx, "-o is a build option");
			b->o.out_dir = optarg;
			break;
		case O_TAG:
			b->o.tag = optarg;
			break;
		case O_JSON:
			b->json = 1;
			break;
		case 'q':
			b->quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return CMD_HELP_DONE;
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	b->o.progress = (ep_progress_fn)cmd_progress;
	return 0;
}

static int print_json(const struct ep_build_result *r, int lock_only)
{
	cleanup_json json_t *j = json_object();
	cleanup_json json_t *layers = json_array();

	if (!j || !layers)
		return EXIT_ENV;
	if (!lock_only) {
		for (size_t i = 0; i < r->n_layers; i++)
			json_array_append_new(layers,
					      json_pack("{s:s, s:s, s:I, s:b, s:s}", "digest",
							r->layers[i].digest, "diff_id", r->layers[i].diff_id,
							"size", (json_int_t)r->layers[i].size, "cached",
							r->layers[i].cached, "step", r->layers[i].what));
		json_object_set_new(j, "digest", json_string(r->manifest_digest));
		json_object_set_new(j, "config_digest", json_string(r->config_digest));
		json_object_set(j, "layers", layers);
	}
	json_object_set_new(j, "lock", json_string(r->lock_path));
	json_object_set_new(j, "lock_changed", json_boolean(r->lock_changed));
	return cmd_print_json(j);
}

int cmd_build(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_build_result r;
	struct bopts b;
	int rc = parse(argc, argv, ctx, &b, build_usage, 1);

	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (ep_build(&ctx->store, &b.o, &r, &err) < 0) {
		rc = cmd_fail(&err);
		ep_build_result_release(&r);
		return rc;
	}
	if (b.json) {
		rc = print_json(&r, 0);
	} else {
		if (!b.quiet) {
			for (size_t i = 0; i < r.n_layers; i++)
				printf("layer %zu/%zu %s  %10llu bytes  %s%s\n", i + 1, r.n_layers,
				       r.layers[i].digest, (unsigned long long)r.layers[i].size,
				       r.layers[i].what,
				       r.layers[i].from_base ? "" : r.layers[i].cached ? " (cached)" : "");
			printf("config  %s\n", r.config_digest);
			printf("lock    %s%s\n", r.lock_path,
			       b.o.locked ? " (checked)" : r.lock_changed ? " (written)" : " (unchanged)");
			if (b.o.out_dir)
				printf("layout  %s\n", b.o.out_dir);
		}
		printf("%s\n", r.manifest_digest);
	}
	ep_build_result_release(&r);
	return cmd_finish(rc);
}

int cmd_lock(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_build_result r;
	struct bopts b;
	int rc = parse(argc, argv, ctx, &b, lock_usage, 0);

	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (ep_lock(&ctx->store, &b.o, &r, &err) < 0) {
		rc = cmd_fail(&err);
		ep_build_result_release(&r);
		return rc;
	}
	if (b.json)
		rc = print_json(&r, 1);
	else
		printf("%s %s\n", r.lock_changed ? "wrote" : "unchanged", r.lock_path);
	ep_build_result_release(&r);
	return cmd_finish(rc);
}
