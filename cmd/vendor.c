/* cmd/vendor.c - envpin vendor: an image and every input, for offline rebuilds. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "util.h"
#include "vendor.h"

static const char usage[] =
    "usage: envpin vendor [IMAGE] [-f MANIFEST] [--lock FILE] -o BUNDLE [--json]\n"
    "       envpin vendor --check BUNDLE [--json]\n\n"
    "Writes a bundle: an OCI layout with the image, and beside it, each named by its sha256,\n"
    "every input the image was built from (the manifest, its lock, the build context, a\n"
    "rootfs or registry base, the .debs of a debian base and of apt steps, fetched URLs, pip\n"
    "wheels; of the image and of its stages) and envpin's\n"
    "own source tarball, all listed in BUNDLE/envpin-bundle.json. A reviewer rebuilds from\n"
    "it without network:\n"
    "  envpin verify DIGEST --rebuild --from BUNDLE     (or envpin build --from BUNDLE)\n\n"
    "  IMAGE            the image (digest, prefix or tag; default: the lock's image)\n"
    "  -f, --file M     the manifest it was built from (default: the one the store recorded\n"
    "                   when it built IMAGE)\n"
    "      --lock FILE  the lock (default: beside the manifest); it must record IMAGE\n"
    "  -o, --output B   the bundle: a new directory, or a tar when B ends in .tar\n"
    "      --check B    re-hash every file of bundle B and name any that is damaged or missing\n"
    "      --json       print the summary or the check as JSON\n\n"
    "Every debian base (the image's and each stage's) runs mmdebstrap once more to collect\n"
    "its .debs (network), and is refused when the mirror no longer serves the versions the\n"
    "lock lists; offline, one local repository of all the .debs serves every debian base.\n"
    "Exit status: 0 done (--check: intact),\n"
    "1 --check found a bad file, 2 usage or invalid input, 3 environment.\n";

static int do_check(struct cmd_ctx *ctx, const char *bundle, int json)
{
	struct ep_error err = EP_ERROR_INIT;
	cleanup_json json_t *rep = NULL;
	json_t *b;
	size_t i;

	/* a tar is extracted under the store's tmp/ (created when missing) */
	if (cmd_open_store(ctx, 1, &err) < 0)
		ep_error_clear(&err);
	if (ep_vendor_check(ctx->store_open ? &ctx->store : NULL, bundle, &rep, &err) < 0)
		return cmd_fail(&err);
	if (json)
		return cmd_finish(
		    cmd_print_json(rep)
			?: (json_is_true(json_object_get(rep, "ok")) ? 0 : EXIT_MISMATCH));
	json_array_foreach (json_object_get(rep, "bad"), i, b) {
		const char *blob = json_string_value(json_object_get(b, "blob"));

		printf("BAD %s%s%s%s: %s\n", json_string_value(json_object_get(b, "path")),
		       blob ? " (" : "", blob ? blob : "", blob ? ")" : "",
		       json_string_value(json_object_get(b, "why")));
	}
	if (json_object_get(rep, "debian_chain")) {
		json_t *c = json_object_get(rep, "debian_chain");

		long long ni = json_integer_value(json_object_get(c, "inreleases"));

		printf("debian: InRelease %s; it lists the Packages file: %s; "
		       "%lld of %lld .debs listed there by sha256",
		       json_string_value(json_object_get(c, "signature")),
		       json_is_true(json_object_get(c, "packages_in_inrelease")) ? "yes" : "NO",
		       (long long)json_integer_value(json_object_get(c, "debs_in_packages")),
		       (long long)json_integer_value(json_object_get(c, "debs")));
		if (ni > 1)
			printf(" (%lld InRelease, %lld Packages files)", ni,
			       (long long)json_integer_value(json_object_get(c, "packages_files")));
		putchar('\n');
	}
	printf("bundle %s: %lld files, %lld blobs, %.1f MB re-hashed: %s\n", bundle,
	       (long long)json_integer_value(json_object_get(rep, "files")),
	       (long long)json_integer_value(json_object_get(rep, "blobs")),
	       (double)json_integer_value(json_object_get(rep, "bytes")) / 1e6,
	       json_is_true(json_object_get(rep, "ok")) ? "intact" : "DAMAGED");
	return cmd_finish(json_is_true(json_object_get(rep, "ok")) ? 0 : EXIT_MISMATCH);
}

int cmd_vendor(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_LOCK = 256, O_CHECK, O_JSON };
	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"lock", required_argument, NULL, O_LOCK},
	    {"output", required_argument, NULL, 'o'},
	    {"check", required_argument, NULL, O_CHECK},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_vendor_opts vo = {0};
	cleanup_json json_t *sum = NULL;
	const char *check = NULL;
	int c, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			vo.manifest_path = optarg;
			break;
		case O_LOCK:
			vo.lock_path = optarg;
			break;
		case 'o':
			vo.out = optarg;
			break;
		case O_CHECK:
			check = optarg;
			break;
		case O_JSON:
			json = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (check) {
		if (optind < argc || vo.out || vo.manifest_path)
			return cmd_usage_error(ctx, "--check takes only a BUNDLE");
		return do_check(ctx, check, json);
	}
	if (optind < argc)
		vo.digest = argv[optind++];
	if (optind < argc)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (!vo.out)
		return cmd_usage_error(ctx, "-o BUNDLE is required");
	if (!vo.digest && !vo.manifest_path)
		return cmd_usage_error(ctx, "name an IMAGE or -f MANIFEST");
	if (cmd_open_store(ctx, 0, &err) < 0)
		return cmd_fail(&err);
	vo.progress = (ep_progress_fn)cmd_progress;
	if (ep_vendor_create(&ctx->store, &vo, &sum, &err) < 0)
		return cmd_fail(&err);
	if (json)
		return cmd_finish(cmd_print_json(sum));
	if (json_object_get(json_object_get(sum, "envpin_source"), "tarball_missing"))
		fprintf(stderr,
			"envpin vendor: warning: no envpin source tarball in the bundle: %s\n",
			json_string_value(json_object_get(json_object_get(sum, "envpin_source"),
							  "tarball_missing")));
	printf("wrote %s: image %s, %lld files, %.1f MB of inputs\nbundle index %s\n",
	       json_string_value(json_object_get(sum, "bundle")),
	       json_string_value(json_object_get(sum, "image")),
	       (long long)json_integer_value(json_object_get(sum, "files")),
	       (double)json_integer_value(json_object_get(sum, "bytes")) / 1e6,
	       json_string_value(json_object_get(sum, "index_sha256")));
	return cmd_finish(0);
}
