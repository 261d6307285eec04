/* cmd/images.c - envpin export, inspect, images, gc and rmi. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "oci.h"
#include "unpack.h"
#include "util.h"

static const char export_usage[] =
    "usage: envpin export IMAGE -o FILE [--format oci+docker|oci] [--tag NAME]\n\n"
    "Writes an image archive that skopeo, podman load and docker load (20.10 and later)\n"
    "accept: an OCI image layout that also carries Docker's manifest.json. The manifest\n"
    "and config bytes are copied unchanged, so the manifest digest and the config digest\n"
    "(Docker's image ID) are kept. IMAGE is a digest, a unique prefix or a tag in the store,\n"
    "or an OCI layout directory written with a '/' (./dir).\n\n"
    "  -o, --output FILE    the archive to write (replaced atomically)\n"
    "      --format FORMAT  oci+docker (default; 'docker' is the same) or oci (the bare OCI\n"
    "                       layout, which docker load before 25 refuses)\n"
    "      --tag NAME       name:tag recorded in the archive (default: the store's tag)\n";

static const char inspect_usage[] =
    "usage: envpin inspect IMAGE [--json]\n\n"
    "Shows an image's digests, config, layers and sizes. IMAGE is a digest, a unique prefix,\n"
    "a tag, or a path to an OCI layout directory written with a '/' (./dir): a bare NAME\n"
    "is always the store's image.\n";

static const char images_usage[] = "usage: envpin images [--json]\n\nLists the images in the store.\n";

static const char gc_usage[] =
    "usage: envpin gc [--json]\n\n"
    "Removes blobs no image in the store refers to, the unpacked layers (used by\n"
    "envpin run) of layers no image has, and what killed commands left in STORE/tmp\n"
    "(unfinished builds and pulls, verify --rebuild stores, partial unpacks: each\n"
    "removed once the lock its owner held is free). Prints the bytes freed, these\n"
    "included. Takes the store's exclusive lock.\n";

static int simple_opts(int argc, char **argv, struct cmd_ctx *ctx, const char *usage, int *json)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'j')
			*json = 1;
		else if (c == 'h') {
			fputs(usage, stdout);
			return CMD_HELP_DONE;
		} else
			return cmd_usage_error(ctx, "unknown option");
	}
	return 0;
}

/* Docker wants name:tag; a bare store tag gets ":latest". */
static char *docker_tag(const char *tag, struct ep_error *err)
{
	const char *slash = strrchr(tag, '/');
	const char *colon = strrchr(slash ? slash : tag, ':');

	return colon ? ep_strdup(tag, err) : ep_asprintf(err, "%s:latest", tag);
}

int cmd_export(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_FORMAT = 256, O_TAG };
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'}, {"format", required_argument, NULL, O_FORMAT},
		{"tag", required_argument, NULL, O_TAG},  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_image_loc loc;
	cleanup_free char *tag = NULL;
	const char *out = NULL, *want_tag = NULL;
	enum ep_export_format fmt = EP_EXPORT_DOCKER;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case O_FORMAT:
			if (!strcmp(optarg, "oci"))
				fmt = EP_EXPORT_OCI;
			else if (!strcmp(optarg, "oci+docker") || !strcmp(optarg, "docker"))
				fmt = EP_EXPORT_DOCKER;
			else
				return cmd_usage_error(ctx, "unknown format '%s' (oci+docker or oci)",
						       optarg);
			break;
		case O_TAG:
			want_tag = optarg;
			break;
		case 'h':
			fputs(export_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "name exactly one IMAGE");
	if (!out)
		return cmd_usage_error(ctx, "-o FILE is required");
	if (ep_image_locate(&ctx->store, argv[optind], &loc, &err) < 0)
		return cmd_fail(&err);
	if (want_tag || loc.tag)
		tag = docker_tag(want_tag ? want_tag : loc.tag, &err);
	rc = ep_export(loc.layout, loc.digest, out, fmt, tag, &err);
	if (rc == 0)
		printf("wrote %s (%s archive of %s%s%s)\n", out, fmt == EP_EXPORT_OCI ? "oci" : "oci+docker",
		       loc.digest, tag ? ", tag " : "", tag ? tag : "");
	ep_image_loc_release(&loc);
	return rc < 0 ? cmd_fail(&err) : cmd_finish(0);
}

static void human_size(uint64_t n, char *buf, size_t len)
{
	if (n >= 1000000000ull)
		snprintf(buf, len, "%.2f GB", (double)n / 1e9);
	else if (n >= 1000000ull)
		snprintf(buf, len, "%.1f MB", (double)n / 1e6);
	else if (n >= 1000ull)
		snprintf(buf, len, "%.1f kB", (double)n / 1e3);
	else
		snprintf(buf, len, "%llu B", (unsigned long long)n);
}

int cmd_inspect(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_image_loc loc;
	cleanup_json json_t *j = NULL;
	int json = 0, rc = simple_opts(argc, argv, ctx, inspect_usage, &json);
	json_t *l, *cfg;
	size_t i;

	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "name exactly one IMAGE");
	if (ep_image_locate(ctx->store_open ? &ctx->store : NULL, argv[optind], &loc, &err) < 0)
		return cmd_fail(&err);
	j = ep_inspect(loc.layout, loc.digest, &err);
	if (!j) {
		ep_image_loc_release(&loc);
		return cmd_fail(&err);
	}
	if (loc.tag)
		json_object_set_new(j, "tag", json_string(loc.tag));
	ep_image_loc_release(&loc);
	if (json)
		return cmd_finish(cmd_print_json(j));
	printf("digest         %s\n", json_string_value(json_object_get(j, "digest")));
	printf("config digest  %s\n", json_string_value(json_object_get(j, "config_digest")));
	if (json_object_get(j, "tag"))
		printf("tag            %s\n", json_string_value(json_object_get(j, "tag")));
	printf("created        %s\n", json_string_value(json_object_get(j, "created")) ?: "-");
	printf("platform       %s/%s\n", json_string_value(json_object_get(j, "os")) ?: "?",
	       json_string_value(json_object_get(j, "architecture")) ?: "?");
	cfg = json_object_get(j, "config");
	if (json_is_object(cfg)) {
		cleanup_free char *c = ep_json_canonical(cfg, NULL, &err);

		printf("config         %s\n", c ? c : "?");
	}
	printf("layers:\n");
	json_array_foreach(json_object_get(j, "layers"), i, l) {
		char sz[32];

		human_size((uint64_t)json_integer_value(json_object_get(l, "size")), sz, sizeof(sz));
		printf("  %2zu %s %10s  %s\n     diff_id %s\n", i + 1,
		       json_string_value(json_object_get(l, "digest")), sz,
		       json_string_value(json_object_get(l, "media_type")),
		       json_string_value(json_object_get(l, "diff_id")));
	}
	{
		char sz[32];

		human_size((uint64_t)json_integer_value(json_object_get(j, "size")), sz, sizeof(sz));
		printf("size           %s (manifest, config and compressed layers: what a pull moves)\n", sz);
	}
	return cmd_finish(0);
}

int cmd_images(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	cleanup_json json_t *imgs = NULL, *out = json_array();
	int json = 0, rc = simple_opts(argc, argv, ctx, images_usage, &json);
	json_t *m;
	size_t i;

	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (optind != argc)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	imgs = ep_store_images(&ctx->store, &err);
	if (!imgs)
		return cmd_fail(&err);
	json_array_foreach(imgs, i, m) {
		const char *d = json_string_value(json_object_get(m, "digest"));
		const char *tag = json_string_value(
			json_object_get(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
		json_t *info = d ? ep_inspect(ctx->store.root, d, &err) : NULL;

		if (!info)
			return cmd_fail(&err);
		json_array_append_new(out, json_pack("{s:s, s:s?, s:O, s:O, s:I}", "digest", d, "tag", tag,
						     "config_digest", json_object_get(info, "config_digest"),
						     "created", json_object_get(info, "created"), "size",
						     json_integer_value(json_object_get(info, "size"))));
		json_decref(info);
	}
	if (json)
		return cmd_finish(cmd_print_json(out));
	printf("%-24s %-19s %-19s %-21s %s\n", "TAG", "DIGEST", "CONFIG", "CREATED", "SIZE");
	json_array_foreach(out, i, m) {
		char sz[32];
		const char *tag = json_string_value(json_object_get(m, "tag"));

		human_size((uint64_t)json_integer_value(json_object_get(m, "size")), sz, sizeof(sz));
		printf("%-24s %.19s %.19s %-21s %s\n", tag ? tag : "<none>",
		       json_string_value(json_object_get(m, "digest")),
		       json_string_value(json_object_get(m, "config_digest")),
		       json_string_value(json_object_get(m, "created")) ?: "-", sz);
	}
	return cmd_finish(0);
}

/* gc of the blobs, then of the unpacked layers (used by envpin run) of
 * layers no image has any more; the store must be open exclusively. */
static int gc_store(struct ep_store *st, uint64_t *freed, struct ep_error *err)
{
	cleanup_json json_t *imgs = NULL, *keep = NULL;
	json_t *m, *l;
	size_t i, j;

	if (ep_store_gc(st, freed, err) < 0)
		return -1;
	imgs = ep_store_images(st, err);
	keep = json_object();
	if (!imgs || !keep)
		return imgs ? ep_error_oom(err) : -1;
	json_array_foreach (imgs, i, m) {
		const char *dg = json_string_value(json_object_get(m, "digest"));
		cleanup_json json_t *info = dg ? ep_inspect(st->root, dg, err) : NULL;

		if (!info)
			continue; /* an index or a foreign document: nothing unpacked for it */
		json_array_foreach (json_object_get(info, "layers"), j, l) {
			const char *di = json_string_value(json_object_get(l, "diff_id"));

			if (di)
				json_object_set_new(keep, di, json_true());
		}
	}
	ep_error_clear(err);
	return ep_layer_rootfs_gc(st, keep, freed, err);
}

int cmd_gc(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	uint64_t freed = 0;
	int json = 0, rc = simple_opts(argc, argv, ctx, gc_usage, &json);
	char sz[32];

	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (optind != argc)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (gc_store(&ctx->store, &freed, &err) < 0)
		return cmd_fail(&err);
	if (json)
		printf("{\"freed_bytes\": %llu}\n", (unsigned long long)freed);
	else {
		human_size(freed, sz, sizeof(sz));
		printf("freed %s\n", sz);
	}
	return cmd_finish(0);
}

static const char rmi_usage[] =
    "usage: envpin rmi [--force] [--no-gc] [--json] IMAGE...\n\n"
    "Removes images from the store. A tag removes that tag's entry (the image stays while\n"
    "another tag lists it: \"untagged\"); a digest or a unique prefix removes the image with\n"
    "all its entries (\"deleted\"). The layer cache records that only the removed images\n"
    "used go too, then envpin gc runs, so the bytes come back (printed as freed); a layer\n"
    "another image shares stays. All names or none: on error nothing is removed.\n\n"
    "  -f, --force  remove an image that has several tags, or that an image index in the\n"
    "               store lists (that index then names a missing image)\n"
    "      --no-gc  only edit the index; leave the blobs to a later 'envpin gc'\n"
    "      --json   print what was removed and the bytes freed as JSON\n\n"
    "When another envpin holds the store (a build), the blobs are left to 'envpin gc'\n"
    "and rmi says so; the images are removed either way.\n";

int cmd_rmi(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_NOGC = 256, O_JSON };
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"no-gc", no_argument, NULL, O_NOGC},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	cleanup_json json_t *rep = NULL, *out = NULL;
	uint64_t freed = 0;
	int force = 0, nogc = 0, json = 0, c, gc_done = 0;
	const char *gc_why = NULL;
	json_t *r;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case O_NOGC:
			nogc = 1;
			break;
		case O_JSON:
			json = 1;
			break;
		case 'h':
			fputs(rmi_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind >= argc)
		return cmd_usage_error(ctx, "name at least one IMAGE");
	if (ep_store_rmi(&ctx->store, (const char *const *)argv + optind, (size_t)(argc - optind),
			 force, &rep, &err) < 0)
		return cmd_fail(&err);
	if (!nogc) {
		/* gc needs the store to itself: reopen it exclusively */
		ep_store_release(&ctx->store);
		ctx->store_open = 0;
		if (ep_store_open(&ctx->store, ctx->store_root, EP_STORE_EXCLUSIVE, &err) < 0) {
			gc_why = err.msg[0] ? err.msg : "store busy";
		} else {
			ctx->store_open = 1;
			if (gc_store(&ctx->store, &freed, &err) < 0)
				return cmd_fail(&err);
			gc_done = 1;
		}
	}
	if (json) {
		out = json_pack("{s:O, s:b, s:I}", "removed", rep, "gc", gc_done, "freed_bytes",
				(json_int_t)freed);
		if (gc_why)
			json_object_set_new(out, "gc_skipped", json_string(gc_why));
		return cmd_finish(out ? cmd_print_json(out) : EXIT_ENV);
	}
	json_array_foreach (rep, i, r)
		printf("%s: %s %s\n", json_string_value(json_object_get(r, "action")),
		       json_string_value(json_object_get(r, "name")),
		       json_string_value(json_object_get(r, "digest")));
	if (gc_done) {
		char sz[32];

		human_size(freed, sz, sizeof(sz));
		printf("freed %s\n", sz);
	} else if (gc_why)
		printf("blobs left to 'envpin gc': %s\n", gc_why);
	return cmd_finish(0);
}
