/* cmd/unpack.c - envpin unpack: flatten an image into a directory, safely. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "image.h"
#include "unpack.h"
#include "util.h"

static const char usage[] =
    "usage: envpin unpack IMAGE DIR [--json] [--devices] [--no-same-owner]\n"
    "                     [--max-bytes N] [--max-entries N]\n\n"
    "Applies every layer of IMAGE, in order, onto DIR (created; must be empty), with OCI\n"
    "whiteouts and opaque directories applied. Layers are untrusted: every path is resolved\n"
    "inside DIR, nothing is written, linked, chmod'ed or deleted outside it, and a hostile\n"
    "entry stops the unpack with a message naming it (exit 2). Each layer's uncompressed\n"
    "content must hash to its diff_id (exit 1 otherwise). On failure DIR is emptied again.\n\n"
    "  IMAGE              a digest, unique prefix or tag in the store, or an OCI layout dir\n"
    "                     written with a '/' (./dir)\n"
    "      --json         print what was unpacked as JSON\n"
    "      --devices      create device nodes (only as root; skipped otherwise)\n"
    "      --no-same-owner  leave files owned by the caller (root keeps the tar's owners\n"
    "                     by default; setuid/setgid bits are dropped when not kept)\n"
    "      --max-bytes N  refuse a layer whose tar stream exceeds N bytes (default: the free\n"
    "                     space of DIR's filesystem less 5%)\n"
    "      --max-entries N  refuse a layer with more than N entries (default 10000000)\n";

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		return -1;
	*out = v;
	return 0;
}

int cmd_unpack(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_JSON = 256, O_DEVICES, O_NO_SAME_OWNER, O_MAX_BYTES, O_MAX_ENTRIES };
	static const struct option opts[] = {
		{"json", no_argument, NULL, O_JSON},
		{"devices", no_argument, NULL, O_DEVICES},
		{"no-same-owner", no_argument, NULL, O_NO_SAME_OWNER},
		{"max-bytes", required_argument, NULL, O_MAX_BYTES},
		{"max-entries", required_argument, NULL, O_MAX_ENTRIES},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_unpack_opts o;
	struct ep_unpack_stats st = {0};
	struct ep_image_loc loc = {0};
	struct stat sb;
	const char *image, *dir;
	int c, json = 0, rc;

	ep_unpack_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_JSON:
			json = 1;
			break;
		case O_DEVICES:
			o.allow_devices = 1;
			break;
		case O_NO_SAME_OWNER:
			o.same_owner = 0;
			break;
		case O_MAX_BYTES:
			if (parse_u64(optarg, &o.max_bytes) < 0 || !o.max_bytes)
				return cmd_usage_error(ctx, "--max-bytes: '%s' is not a positive number", optarg);
			break;
		case O_MAX_ENTRIES:
			if (parse_u64(optarg, &o.max_entries) < 0 || !o.max_entries)
				return cmd_usage_error(ctx, "--max-entries: '%s' is not a positive number",
						       optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (argc - optind != 2)
		return cmd_usage_error(ctx, "expected IMAGE and DIR");
	image = argv[optind];
	dir = argv[optind + 1];
	o.stats = &st;
	o.progress = (ep_progress_fn)cmd_progress;

	/* A layout directory (written with a '/') needs no store; anything
	 * else is looked up in it.  Without a store, ep_image_locate still
	 * tells a bare directory name to be written './NAME'. */
	if (!(strchr(image, '/') && stat(image, &sb) == 0 && S_ISDIR(sb.st_mode)) &&
	    cmd_open_store(ctx, 0, &err) < 0 && !(stat(image, &sb) == 0 && S_ISDIR(sb.st_mode)))
		return cmd_fail(&err);
	if (ep_image_locate(ctx->store_open ? &ctx->store : NULL, image, &loc, &err) < 0)
		return cmd_fail(&err);
	rc = ep_unpack_image(loc.layout, loc.digest, dir, &o, &err);
	if (rc < 0) {
		ep_error_wrap(&err, "unpack '%s'", image);
		ep_image_loc_release(&loc);
		return cmd_fail(&err);
	}
	if (json) {
		cleanup_json json_t *j = json_pack(
		    "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		    "digest", loc.digest, "dir", dir, "layers", (json_int_t)st.layers, "files",
		    (json_int_t)st.files, "dirs", (json_int_t)st.dirs, "symlinks",
		    (json_int_t)st.symlinks, "hardlinks", (json_int_t)st.hardlinks, "fifos",
		    (json_int_t)st.fifos, "devices", (json_int_t)st.devices, "whiteouts",
		    (json_int_t)st.whiteouts, "bytes", (json_int_t)st.bytes, "devices_skipped",
		    (json_int_t)st.devices_skipped, "xattrs_skipped", (json_int_t)st.xattrs_skipped,
		    "direct_bytes", (json_int_t)st.direct_bytes);
		char *s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;

		if (!s) {
			ep_image_loc_release(&loc);
			ep_error_oom(&err);
			return cmd_fail(&err);
		}
		printf("%s\n", s);
		free(s);
	} else {
		printf("unpacked %s into %s: %llu layers, %llu files (%llu bytes), %llu dirs, "
		       "%llu symlinks, %llu hardlinks, %llu whiteouts",
		       loc.digest, dir, (unsigned long long)st.layers, (unsigned long long)st.files,
		       (unsigned long long)st.bytes, (unsigned long long)st.dirs,
		       (unsigned long long)st.symlinks, (unsigned long long)st.hardlinks,
		       (unsigned long long)st.whiteouts);
		if (st.devices_skipped)
			printf(", %llu device nodes skipped", (unsigned long long)st.devices_skipped);
		printf("\n");
	}
	ep_image_loc_release(&loc);
	return cmd_finish(0);
}
