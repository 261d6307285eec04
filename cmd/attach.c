/* cmd/attach.c - envpin attach, envpin attachments, and what push and pull
 * carry beside an image (signature, attachments). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "ref.h"
#include "trust.h"
#include "trust/attach.h"
#include "trust/sidecar.h"
#include "util.h"

static const char attach_usage[] =
	"usage: envpin attach IMAGE FILE --type sbom|provenance|cert [--json]\n\n"
	"Attaches FILE to an image of the store as an OCI 1.1 artifact whose subject is the\n"
	"image (its digest does not change). 'envpin push' uploads attachments with the\n"
	"image: found by the registry's referrers API, or by the referrers tag fallback\n"
	"sha256-<hex> (an OCI index) where the registry has none. 'envpin pull' fetches them.\n\n"
	"  --type sbom        an SPDX or CycloneDX JSON SBOM (envpin sbom)\n"
	"  --type provenance  a DSSE envelope (envpin provenance)\n"
	"  --type cert        a certificate (envpin check -o CERT)\n"
	"  --json             print the artifact's digest and type as JSON\n";

static const char attachments_usage[] =
	"usage: envpin attachments REF [--ca-cert FILE] [--json]\n\n"
	"Lists the signature and attachments of an image: of the store when REF names one\n"
	"(digest, prefix, tag), else of a registry image (HOST/REPO[:TAG|@DIGEST]), through\n"
	"the referrers API or the tag fallback sha256-<hex>.\n\n"
	"  --ca-cert FILE   CA for the registry's TLS certificate\n"
	"  --json           print the list as JSON\n";

int cmd_attach(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_TYPE = 256, O_JSON };
	static const struct option opts[] = {
		{"type", required_argument, NULL, O_TYPE},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	const char *type = NULL, *at;
	cleanup_free char *text = NULL;
	struct ep_image_loc loc = {0};
	ep_digest md;
	size_t len;
	int c, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_TYPE:
			type = optarg;
			break;
		case O_JSON:
			json = 1;
			break;
		case 'h':
			fputs(attach_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind + 2 != argc)
		return cmd_usage_error(ctx, "expected IMAGE and FILE");
	if (!type)
		return cmd_usage_error(ctx, "--type sbom|provenance|cert is required");
	text = ep_read_file(argv[optind + 1], EP_SIDECAR_MAX_BLOB, &len, &err);
	if (!text)
		return cmd_fail(&err);
	at = ep_attach_type(type, text, len, &err);
	if (!at)
		return cmd_fail(&err);
	if (ep_image_locate(&ctx->store, argv[optind], &loc, &err) < 0)
		return cmd_fail(&err);
	if (!loc.in_store) {
		ep_image_loc_release(&loc);
		return cmd_usage_error(ctx, "'%s' is a layout: attach to an image of the store",
				       argv[optind]);
	}
	if (ep_attach_file(&ctx->store, loc.digest, argv[optind + 1], at, md, &err) < 0) {
		ep_image_loc_release(&loc);
		return cmd_fail(&err);
	}
	if (json) {
		cleanup_json json_t *j = json_pack("{s:s, s:s, s:s}", "subject", loc.digest,
						   "digest", md, "artifactType", at);

		ep_image_loc_release(&loc);
		return cmd_finish(cmd_print_json(j));
	}
	printf("attached %s to %s as %s\n%s\n", argv[optind + 1], loc.digest, at, md);
	ep_image_loc_release(&loc);
	return cmd_finish(0);
}

static void print_list(json_t *list)
{
	json_t *e;
	size_t i;

	if (!json_array_size(list))
		printf("no signature, no attachments\n");
	json_array_foreach(list, i, e) {
		const char *kind = json_string_value(json_object_get(e, "kind")) ?: "attachment";
		const char *at = json_string_value(json_object_get(e, "artifactType"));
		const char *title = json_string_value(json_object_get(e, "title"));

		printf("%-10s %s  %s%s%s\n", kind, json_string_value(json_object_get(e, "digest")),
		       at ? at : "cosign signature", title ? "  " : "", title ? title : "");
	}
}

int cmd_attachments(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_CA = 256, O_JSON };
	static const struct option opts[] = {
		{"ca-cert", required_argument, NULL, O_CA},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_registry_opts o = {0};
	cleanup_json json_t *list = NULL;
	ep_digest d;
	const char *via = "store";
	int c, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_CA:
			o.ca_file = optarg;
			break;
		case O_JSON:
			json = 1;
			break;
		case 'h':
			fputs(attachments_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "expected one REF");
	if (ep_store_resolve(&ctx->store, argv[optind], d, &err) == 0) {
		list = ep_attachments_local(&ctx->store, d, &err);
	} else {
		struct ep_error rerr = EP_ERROR_INIT;

		if (!strchr(argv[optind], '/'))
			return cmd_fail(&err);
		if (ep_registry_resolve(&ctx->store, argv[optind], &o, d, &rerr) < 0)
			return cmd_fail(&rerr);
		list = ep_attachments_remote(&ctx->store, argv[optind], d, &o, &via, &err);
	}
	if (!list)
		return cmd_fail(&err);
	if (json) {
		cleanup_json json_t *j =
			json_pack("{s:s, s:s, s:O}", "subject", d, "source", via, "attachments", list);

		return cmd_finish(cmd_print_json(j));
	}
	printf("%s (%s)\n", d, via);
	print_list(list);
	return cmd_finish(0);
}

int trust_push(struct cmd_ctx *ctx, const char *digest, const char *ref,
	       const struct ep_registry_opts *o, json_t **report, struct ep_error *err)
{
	return ep_trust_push(&ctx->store, digest, ref, o, report, err);
}

int trust_pull(struct cmd_ctx *ctx, const char *digest, const char *ref,
	       const struct ep_registry_opts *o, json_t **report, struct ep_error *err)
{
	return ep_trust_pull(&ctx->store, digest, ref, o, report, err);
}
