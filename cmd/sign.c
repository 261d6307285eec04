/* cmd/sign.c - envpin key, envpin sign, and verify's signature step. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "trust.h"
#include "trust/sign.h"
#include "util.h"

static const char key_usage[] =
    "usage: envpin key generate [-o PREFIX] [--passphrase-file FILE] [--json]\n\n"
    "Generates an ECDSA P-256 key pair for envpin sign and envpin provenance:\n"
    "PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (PEM public key, which\n"
    "'cosign verify --key' and 'openssl dgst -verify' read). An existing file is\n"
    "never overwritten.\n\n"
    "  -o, --output PREFIX      file name prefix (default: envpin)\n"
    "  --passphrase-file FILE   encrypt the private key (AES-256) with the first line\n"
    "                           of FILE\n"
    "  --json                   print the paths and the key id as JSON\n";

static const char sign_usage[] =
    "usage: envpin sign IMAGE --key KEY [REF] [--passphrase-file FILE] [--json]\n\n"
    "Signs an image of the store the way cosign signs with a key: a simple-signing\n"
    "payload naming the repository and the manifest digest, signed with ECDSA-SHA256,\n"
    "kept beside the image (its digest does not change). 'envpin push' uploads it as\n"
    "the tag sha256-<hex>.sig, where cosign and skopeo find it. Signing again with\n"
    "another key adds a signature.\n\n"
    "  IMAGE                    digest, unique prefix or tag in the store\n"
    "  REF                      the repository the signature names, [HOST/]REPO\n"
    "                           (default: the image's tag)\n"
    "  --key KEY                the private key (envpin key generate)\n"
    "  --passphrase-file FILE   its passphrase, first line of FILE\n"
    "  --json                   print the result as JSON\n\n"
    "Exit status: 0 signed, 2 bad key, passphrase or image, 3 I/O failure.\n";

int trust_read_passphrase(const char *file, char **out, struct ep_error *err)
{
	size_t len;
	char *p;

	*out = NULL;
	if (!file)
		return 0;
	p = ep_read_file(file, 4096, &len, err);
	if (!p)
		return -1;
	p[strcspn(p, "\r\n")] = '\0';
	*out = p;
	return 0;
}

static void drop_passphrase(char **p)
{
	if (*p) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

int trust_key_opt(int c, const char *arg, struct trust_key_opts *ko)
{
	if (c == TRUST_O_KEY)
		ko->key = arg;
	else if (c == TRUST_O_PASS)
		ko->pfile = arg;
	else
		return 0;
	return 1;
}

struct ep_key *trust_key_load(const struct trust_key_opts *ko, struct ep_error *err)
{
	char *pass = NULL;
	struct ep_key *k;

	if (trust_read_passphrase(ko->pfile, &pass, err) < 0)
		return NULL;
	k = ep_key_load_private(ko->key, pass, err);
	drop_passphrase(&pass);
	return k;
}

int cmd_key(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_PASS = 256, O_JSON };
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"passphrase-file", required_argument, NULL, O_PASS},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	const char *prefix = "envpin", *pfile = NULL;
	char *pass = NULL;
	struct ep_key *k;
	ep_digest id;
	int c, json = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			prefix = optarg;
			break;
		case O_PASS:
			pfile = optarg;
			break;
		case O_JSON:
			json = 1;
			break;
		case 'h':
			fputs(key_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind + 1 != argc || strcmp(argv[optind], "generate"))
		return cmd_usage_error(ctx, "expected 'generate'");
	if (trust_read_passphrase(pfile, &pass, &err) < 0)
		return cmd_fail(&err);
	if (pfile && !*pass) {
		drop_passphrase(&pass);
		return cmd_usage_error(ctx, "'%s' holds an empty passphrase", pfile);
	}
	rc = ep_key_generate(prefix, pass, &err);
	if (rc == 0) {
		cleanup_free char *kp = ep_asprintf(&err, "%s.key", prefix);

		k = kp ? ep_key_load_private(kp, pass, &err) : NULL;
		rc = k && ep_key_id(k, id, &err) == 0 ? 0 : -1;
		ep_key_free(k);
	}
	drop_passphrase(&pass);
	if (rc < 0)
		return cmd_fail(&err);
	if (json) {
		cleanup_json json_t *j =
		    json_pack("{s:s+, s:s+, s:s, s:b}", "private", prefix, ".key", "public", prefix,
			      ".pub", "key_id", id, "encrypted", pfile != NULL);

		return cmd_finish(cmd_print_json(j));
	}
	printf("private key %s.key (mode 0600%s)\npublic key  %s.pub\nkey id      %s\n", prefix,
	       pfile ? ", encrypted" : "", prefix, id);
	return cmd_finish(0);
}

int cmd_sign(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_JSON = 256 };
	static const struct option opts[] = {
	    TRUST_KEY_OPTIONS,
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct trust_key_opts ko = {0};
	const char *ref;
	cleanup_free char *identity = NULL;
	struct ep_image_loc loc = {0};
	struct ep_key *k;
	ep_digest sm, id;
	int c, json = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (trust_key_opt(c, optarg, &ko))
			continue;
		switch (c) {
		case O_JSON:
			json = 1;
			break;
		case 'h':
			fputs(sign_usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind >= argc || argc - optind > 2)
		return cmd_usage_error(ctx, "expected IMAGE [REF]");
	if (!ko.key)
		return cmd_usage_error(ctx, "--key KEY is required");
	k = trust_key_load(&ko, &err);
	if (!k)
		return cmd_fail(&err);
	rc = -1;
	if (ep_image_locate(&ctx->store, argv[optind], &loc, &err) < 0)
		goto out;
	if (!loc.in_store) {
		ep_error_set(&err, EP_EINVAL, "'%s' is a layout: sign an image of the store",
			     argv[optind]);
		goto out;
	}
	ref = optind + 1 < argc ? argv[optind + 1] : loc.tag;
	if (!ref) {
		ep_error_set(&err, EP_EINVAL,
			     "image %s has no tag: name the repository the signature is for (REF)",
			     loc.digest);
		goto out;
	}
	identity = ep_sign_identity(ref, &err);
	if (!identity || ep_key_id(k, id, &err) < 0 ||
	    ep_sign_image(&ctx->store, loc.digest, identity, k, sm, &err) < 0)
		goto out;
	rc = 0;
out:
	ep_key_free(k);
	if (rc < 0) {
		ep_image_loc_release(&loc);
		return cmd_fail(&err);
	}
	if (json) {
		cleanup_json json_t *j =
		    json_pack("{s:s, s:s, s:s, s:s, s:s++}", "digest", loc.digest, "identity",
			      identity, "key_id", id, "signature_manifest", sm, "tag", "sha256-",
			      ep_digest_hex(loc.digest), ".sig");

		ep_image_loc_release(&loc);
		return cmd_finish(cmd_print_json(j));
	}
	printf("signed %s for %s\nkey id %s\nsignature image %s (pushed as tag sha256-%s.sig)\n",
	       loc.digest, identity, id, sm, ep_digest_hex(loc.digest));
	ep_image_loc_release(&loc);
	return cmd_finish(0);
}

/* A store tag names a repository only when it starts with a registry host
 * ("localhost:5000/x/y:1", "ghcr.io/x"); a local name such as "astro" is
 * not taken for docker.io/library/astro. */
static int tag_has_host(const char *tag)
{
	const char *slash = tag ? strchr(tag, '/') : NULL;

	if (!slash)
		return 0;
	return memchr(tag, '.', (size_t)(slash - tag)) || memchr(tag, ':', (size_t)(slash - tag)) ||
	       (slash - tag == 9 && !strncmp(tag, "localhost", 9));
}

int trust_verify_signature(struct cmd_ctx *ctx, const char *digest, const char *tag,
			   const char *identity, const char *key_path, const char *policy,
			   json_t **out, struct ep_error *err)
{
	cleanup_free char *ident = NULL, *pkey = NULL;
	struct ep_sig_check chk;
	struct ep_key *k;
	ep_digest id;
	int rc;

	*out = NULL;
	if (!identity && tag_has_host(tag))
		identity = tag;
	if (identity) {
		ident = ep_sign_identity(identity, err);
		if (!ident)
			return -1;
	}
	if (policy) {
		if (!ident)
			return ep_error_set(
			    err, EP_EINVAL,
			    "--policy needs the image's repository: give --identity REPO");
		rc = ep_policy_key_for(policy, ident, &pkey, err);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			*out = json_pack("{s:b, s:s, s:s}", "verified", 0, "identity", ident,
					 "policy", "insecureAcceptAnything");
			return *out ? 0 : ep_error_oom(err);
		}
		key_path = pkey;
	}
	k = ep_key_load_public(key_path, err);
	if (!k)
		return -1;
	rc = ep_key_id(k, id, err);
	if (rc == 0)
		rc = ep_verify_image_signature(&ctx->store, digest, ident, k, &chk, err);
	ep_key_free(k);
	if (rc < 0)
		return -1;
	*out =
	    json_pack("{s:b, s:s, s:s, s:s, s:i, s:s, s:b}", "verified", 1, "key", key_path,
		      "key_id", id, "identity", chk.identity, "signatures", chk.n_signatures,
		      "signature_manifest", chk.sig_manifest, "repository_checked", ident != NULL);
	return *out ? 0 : ep_error_oom(err);
}
