/* cmd/sbom.c - envpin sbom. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "trust/sbom.h"
#include "util.h"

static const char sbom_usage[] =
    "usage: envpin sbom IMAGE [--format spdx|cyclonedx] [-o FILE]\n\n"
    "Writes a software bill of materials of an image of the store, from the lock it was\n"
    "built from (kept beside it by 'envpin build') and from the image's own files: every\n"
    "Debian package of its dpkg status (pkg:deb/debian/NAME@VERSION?arch=..&distro=..),\n"
    "every wheel of the lock (pkg:pypi/NAME@VERSION with its sha256), every fetched\n"
    "file and the base, with the licenses the packages declare (machine-readable\n"
    "/usr/share/doc/*/copyright, wheel METADATA). Nothing in the image runs.\n\n"
    "  --format spdx       SPDX 2.3 JSON (default)\n"
    "  --format cyclonedx  CycloneDX 1.5 JSON\n"
    "  -o, --output FILE   write FILE (atomically) instead of standard output\n\n"
    "Exit status: 0 written, 2 unknown image or no lock for it (nothing written),\n"
    "3 I/O failure.\n";

int cmd_sbom(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_FORMAT = 256 };
	static const struct option opts[] = {
	    {"format", required_argument, NULL, O_FORMAT},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	enum ep_sbom_format fmt = EP_SBOM_SPDX;
	const char *out = NULL;
	struct ep_image_loc loc = {0};
	cleanup_json json_t *col = NULL, *doc = NULL;
	cleanup_free char *text = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case O_FORMAT:
			if (!strcmp(optarg, "spdx"))
				fmt = EP_SBOM_SPDX;
			else if (!strcmp(optarg, "cyclonedx"))
				fmt = EP_SBOM_CYCLONEDX;
			else
				return cmd_usage_error(
				    ctx, "--format is spdx or cyclonedx, not '%s'", optarg);
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			fputs(sbom_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "expected one IMAGE");
	if (ep_image_locate(&ctx->store, argv[optind], &loc, &err) < 0)
		return cmd_fail(&err);
	if (!loc.in_store) {
		ep_image_loc_release(&loc);
		return cmd_usage_error(ctx, "'%s' is a layout: name an image of the store",
				       argv[optind]);
	}
	col = ep_sbom_collect(&ctx->store, loc.digest, loc.tag, &err);
	ep_image_loc_release(&loc);
	doc = col ? ep_sbom_format(col, fmt, &err) : NULL;
	text = doc ? ep_json_pretty(doc, &err) : NULL;
	if (!text)
		return cmd_fail(&err);
	if (out) {
		if (ep_write_file_atomic(out, text, strlen(text), 0644, &err) < 0)
			return cmd_fail(&err);
		fprintf(stderr, "wrote %s (%zu components)\n", out,
			json_array_size(json_object_get(col, "components")));
		return cmd_finish(0);
	}
	fputs(text, stdout);
	return cmd_finish(0);
}
