/* cmd/attach.c - envpin attach, envpin attachments, and what push and pull
 * carry beside an image (signature, attachments). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "ref.h"
#include "trust.h"
#include "trust/attach.h"
#include "trust/provenance.h"
#include "trust/sidecar.h"
#include "trust/sign.h"
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
    "  --key KEY          sign FILE: attach a DSSE envelope of it signed with KEY\n"
    "                     (verify --certify --from-registry --key PUB checks it)\n"
    "  --passphrase-file F  the key's passphrase\n"
    "  --json             print the artifact's digest and type as JSON\n";

/* --key on attach: the file goes in a DSSE envelope signed with the key. */
static int sign_attachment(const char *path, const struct trust_key_opts *ko, const char *at,
			   char **signed_path, struct ep_error *err)
{
	cleanup_free char *text = NULL, *out = NULL, *tmpl = NULL;
	cleanup_json json_t *env = NULL;
	struct ep_key *k;
	size_t len;
	int fd;

	text = ep_read_file(path, EP_SIDECAR_MAX_BLOB, &len, err);
	if (!text)
		return -1;
	k = trust_key_load(ko, err);
	if (!k)
		return -1;
	env = ep_dsse_sign(at, text, len, k, err);
	ep_key_free(k);
	out = env ? ep_json_pretty(env, err) : NULL;
	if (!out)
		return -1;
	/* beside the original, so the artifact keeps its title */
	tmpl = ep_asprintf(err, "%s.dsse.XXXXXX", path);
	if (!tmpl)
		return -1;
	fd = mkstemp(tmpl);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", tmpl);
	if (ep_write_all(fd, out, strlen(out), err) < 0) {
		close(fd);
		unlink(tmpl);
		return -1;
	}
	close(fd);
	*signed_path = steal_pointer(&tmpl);
	return 0;
}

static const char attachments_usage[] =
    "usage: envpin attachments REF [--ca-cert FILE] [--json]\n\n"
    "Lists the signature and attachments of an image: of the store when REF names one\n"
    "(digest, prefix, tag), else of a registry image (HOST/REPO[:TAG|@DIGEST]), through\n"
    "the referrers API or the tag fallback sha256-<hex>.\n\n"
    "  --ca-cert FILE   CA for the registry's TLS certificate\n"
    "  --json           print the list as JSON\n";

int cmd_attach_artifact(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_TYPE = 256, O_JSON };
	static const struct option opts[] = {
	    {"type", required_argument, NULL, O_TYPE},
	    TRUST_KEY_OPTIONS,
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct trust_key_opts ko = {0};
	const char *type = NULL, *at, *file;
	cleanup_free char *text = NULL, *signed_path = NULL;
	struct ep_image_loc loc = {0};
	ep_digest md;
	size_t len;
	int c, json = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (trust_key_opt(c, optarg, &ko))
			continue;
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
	file = argv[optind + 1];
	if (ko.key && strcmp(at, EP_AT_DSSE)) {
		/* the envelope's payloadType says what it wraps */
		if (sign_attachment(file, &ko, at, &signed_path, &err) < 0)
			return cmd_fail(&err);
		file = signed_path;
	}
	if (ep_image_locate(&ctx->store, argv[optind], &loc, &err) < 0) {
		if (signed_path)
			unlink(signed_path);
		return cmd_fail(&err);
	}
	if (!loc.in_store) {
		ep_image_loc_release(&loc);
		if (signed_path)
			unlink(signed_path);
		return cmd_usage_error(ctx, "'%s' is a layout: attach to an image of the store",
				       argv[optind]);
	}
	rc = ep_attach_file(&ctx->store, loc.digest, file, at, md, &err);
	if (signed_path)
		unlink(signed_path);
	if (rc < 0) {
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
	json_array_foreach (list, i, e) {
		const char *kind = json_string_value(json_object_get(e, "kind")) ?: "attachment";
		const char *at = json_string_value(json_object_get(e, "artifactType"));
		const char *title = json_string_value(json_object_get(e, "title"));

		printf("%-10s %s  %s%s%s\n", kind, json_string_value(json_object_get(e, "digest")),
		       at ? at : "cosign signature", title ? "  " : "", title ? title : "");
	}
}

/* `attach` names two things: docker's (follow a detached container, NAME) and
 * the artifact one (IMAGE FILE --type T).  --type is required by the second
 * and unknown to the first, so it decides; plain --help shows both. */
int cmd_attach(int argc, char **argv, struct cmd_ctx *ctx)
{
	int help = 0;

	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--type") || !strncmp(argv[i], "--type=", 7))
			return cmd_attach_artifact(argc, argv, ctx);
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			help = 1;
	}
	if (help) {
		fputs(attach_usage, stdout);
		fputs("\nor: envpin attach NAME\n\n"
		      "Follows the output of the running detached container NAME (see\n"
		      "'envpin run --detach'); Ctrl-C leaves it running.\n",
		      stdout);
		return cmd_finish(0);
	}
	return cmd_attach_container(argc, argv, ctx);
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

int trust_fetch_cert(struct cmd_ctx *ctx, const char *ref, const char *key,
		     const struct ep_registry_opts *o, ep_digest digest, json_t **cert,
		     struct ep_error *err)
{
	cleanup_free char *text = NULL, *body = NULL;
	cleanup_json json_t *doc = NULL, *trust = NULL;
	size_t len, blen;

	*cert = NULL;
	if (cmd_open_store(ctx, 1, err) < 0)
		return -1;
	if (ep_store_resolve(&ctx->store, ref, digest, NULL) < 0) {
		struct ep_pull_result res;

		if (!strchr(ref, '/'))
			return ep_error_set(err, EP_EINVAL,
					    "'%s' is neither an image of the store nor a registry "
					    "reference",
					    ref);
		if (ep_pull(&ctx->store, ref, NULL, o, &res, err) < 0)
			return -1;
		snprintf(digest, sizeof(ep_digest), "%s", res.manifest_digest);
	}
	/* what the registry holds now, also for an image pulled before */
	if (strchr(ref, '/') && strncmp(ref, "sha256:", 7) &&
	    trust_pull(ctx, digest, ref, o, &trust, err) < 0)
		return -1;
	text = ep_attachment_read(&ctx->store, digest, EP_AT_CERT, &len, err);
	if (!text)
		return ep_error_wrap(err, "--from-registry");
	doc = ep_json_loadb(text, len, EP_SIDECAR_MAX_BLOB, "certificate attachment", err);
	if (!doc)
		return -1;
	if (json_object_get(doc, "payloadType")) {
		struct ep_key *k;
		int rc;

		if (!key)
			return ep_error_set(
			    err, EP_EINVAL,
			    "the certificate attached to %s is signed: give the lab's "
			    "public key with --key PUB",
			    digest);
		k = ep_key_load_public(key, err);
		if (!k)
			return -1;
		rc = ep_dsse_verify(doc, k, &body, &blen, err);
		ep_key_free(k);
		if (rc < 0)
			return ep_error_wrap(err, "certificate attached to %s", digest);
		json_decref(doc);
		doc = ep_json_loadb(body, blen, EP_SIDECAR_MAX_BLOB, "certificate", err);
		if (!doc)
			return -1;
	} else if (key) {
		return ep_error_set(
		    err, EP_EMISMATCH,
		    "the certificate attached to %s is not signed, but --key asks for "
		    "a signed one",
		    digest);
	}
	if (!json_is_object(json_object_get(doc, "fingerprint")))
		return ep_error_set(err, EP_EINVAL,
				    "the certificate attached to %s has no fingerprint", digest);
	*cert = steal_pointer(&doc);
	return 0;
}
