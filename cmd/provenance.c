/* cmd/provenance.c - envpin provenance: SLSA provenance in a signed DSSE
 * envelope, and its verification. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "trust.h"
#include "trust/provenance.h"
#include "trust/sidecar.h"
#include "util.h"

static const char prov_usage[] =
    "usage: envpin provenance IMAGE --key KEY [--passphrase-file FILE] [-o FILE]\n"
    "       envpin provenance --verify ENVELOPE --key PUB [IMAGE]\n\n"
    "Writes an in-toto Statement v1 with a SLSA provenance v1 predicate for an image of\n"
    "the store (builder: envpin and its version; build definition: the manifest and\n"
    "its sha256, the lock digest, source_date_epoch, compressor, profile; resolved\n"
    "dependencies: every input of the lock with its digest), in a DSSE envelope signed\n"
    "with the key (ECDSA-SHA256 over the DSSE pre-authentication encoding). Attach it\n"
    "with 'envpin attach IMAGE FILE --type provenance'.\n\n"
    "  --key KEY               private key to sign with (with --verify: the public key)\n"
    "  --passphrase-file FILE  the private key's passphrase, first line of FILE\n"
    "  -o, --output FILE       write FILE (atomically) instead of standard output\n"
    "  --verify ENVELOPE       check the envelope's signature (and, given IMAGE, that\n"
    "                          its subject is that image); prints the statement\n\n"
    "Exit status: 0 ok, 1 the envelope does not verify or names another image,\n"
    "2 bad key, passphrase, image, or no lock for the image (nothing written).\n";

static int verify_envelope(struct cmd_ctx *ctx, const char *path, const char *key,
			   const char *image)
{
	struct ep_error err = EP_ERROR_INIT;
	cleanup_json json_t *env = ep_json_load_file(path, EP_SIDECAR_MAX_BLOB, &err), *st = NULL;
	cleanup_free char *body = NULL;
	struct ep_key *k;
	size_t blen;
	int rc;

	if (!env)
		return cmd_fail(&err);
	k = ep_key_load_public(key, &err);
	if (!k)
		return cmd_fail(&err);
	rc = ep_dsse_verify(env, k, &body, &blen, &err);
	ep_key_free(k);
	if (rc < 0)
		return cmd_fail(&err);
	st = ep_json_loadb(body, blen, EP_SIDECAR_MAX_BLOB, "statement", &err);
	if (!st)
		return cmd_fail(&err);
	if (image) {
		struct ep_image_loc loc = {0};
		const char *sub = json_string_value(json_object_get(
		    json_object_get(json_array_get(json_object_get(st, "subject"), 0), "digest"),
		    "sha256"));

		if (cmd_open_store(ctx, 0, &err) < 0 ||
		    ep_image_locate(&ctx->store, image, &loc, &err) < 0)
			return cmd_fail(&err);
		if (!sub || strcmp(sub, ep_digest_hex(loc.digest))) {
			ep_error_set(&err, EP_EMISMATCH,
				     "the provenance is for sha256:%.64s, not %s", sub ? sub : "?",
				     loc.digest);
			ep_image_loc_release(&loc);
			return cmd_fail(&err);
		}
		ep_image_loc_release(&loc);
	}
	return cmd_finish(cmd_print_json(st));
}

int cmd_provenance(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_VERIFY = 256 };
	static const struct option opts[] = {
	    TRUST_KEY_OPTIONS,
	    {"output", required_argument, NULL, 'o'},
	    {"verify", required_argument, NULL, O_VERIFY},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct trust_key_opts ko = {0};
	const char *out = NULL, *verify = NULL;
	cleanup_json json_t *st = NULL, *env = NULL;
	cleanup_free char *body = NULL, *text = NULL;
	struct ep_image_loc loc = {0};
	struct ep_key *k;
	size_t blen;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (trust_key_opt(c, optarg, &ko))
			continue;
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case O_VERIFY:
			verify = optarg;
			break;
		case 'h':
			fputs(prov_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (!ko.key)
		return cmd_usage_error(ctx, "--key KEY is required");
	if (verify) {
		if (argc - optind > 1)
			return cmd_usage_error(ctx, "expected at most one IMAGE");
		return verify_envelope(ctx, verify, ko.key, optind < argc ? argv[optind] : NULL);
	}
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "expected one IMAGE");
	k = trust_key_load(&ko, &err);
	if (!k)
		return cmd_fail(&err);
	if (cmd_open_store(ctx, 0, &err) < 0 ||
	    ep_image_locate(&ctx->store, argv[optind], &loc, &err) < 0)
		goto fail;
	if (!loc.in_store) {
		ep_error_set(&err, EP_EINVAL, "'%s' is a layout: name an image of the store",
			     argv[optind]);
		goto fail;
	}
	st = ep_provenance_statement(&ctx->store, loc.digest, loc.tag, &err);
	body = st ? ep_json_canonical(st, &blen, &err) : NULL;
	env = body ? ep_dsse_sign(EP_INTOTO_PAYLOAD_TYPE, body, blen, k, &err) : NULL;
	text = env ? ep_json_pretty(env, &err) : NULL;
	if (!text)
		goto fail;
	ep_key_free(k);
	ep_image_loc_release(&loc);
	if (out) {
		if (ep_write_file_atomic(out, text, strlen(text), 0644, &err) < 0)
			return cmd_fail(&err);
		fprintf(stderr, "wrote %s (%zu resolved dependencies)\n", out,
			json_array_size(json_object_get(
			    json_object_get(json_object_get(st, "predicate"), "buildDefinition"),
			    "resolvedDependencies")));
		return cmd_finish(0);
	}
	fputs(text, stdout);
	return cmd_finish(0);
fail:
	ep_key_free(k);
	ep_image_loc_release(&loc);
	return cmd_fail(&err);
}
