/* cmd/verify.c - envpin verify: re-hash every blob and diff_id of an image. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cert.h"
#include "check.h"
#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "manifest.h"
#include "oci.h"
#include "rebuild.h"
#include "trust.h"
#include "util.h"
#include "vendor.h"

static const char usage[] =
    "usage: envpin verify [DIGEST] [--image PATH] [--rebuild [-f MANIFEST] [--lock FILE]]\n"
    "                     [--certify CERT | --certify --from-registry]\n"
    "                     [--key PUB | --policy FILE] [--identity REPO] [--json] [-q]\n\n"
    "Checks an image's integrity: the manifest, the config, every layer blob (compressed\n"
    "digest and size) and every diff_id (the hash of the uncompressed layer), each blob read\n"
    "once. Exits 0 when all match, 1 naming the first bad blob otherwise.\n\n"
    "  DIGEST          an image in the store (digest, unique prefix or tag), or a path\n"
    "                  to an OCI layout or archive written with a '/' (./dir): a bare\n"
    "                  NAME is always the store's image, even when a directory NAME is here\n"
    "      --image PATH  verify an image made by any tool instead: an OCI layout directory, an\n"
    "                  OCI archive, or a `docker save` archive (DIGEST then selects the\n"
    "                  manifest when the layout holds several)\n"
    "      --rebuild   then rebuild the image from the manifest and its lock in a private\n"
    "                  temporary store (nothing cached; under the store's tmp/, also for\n"
    "                  an OCI layout; not for archives) and compare: identical bytes\n"
    "                  (manifest digest), same content with other bytes (config digest and\n"
    "                  every diff_id equal: a compressor difference, named), or different\n"
    "                  content (the first differing layer and the paths that differ)\n"
    "      --certify CERT  then certify the image on this machine (as envpin check)\n"
    "                  and compare the FITS smoke test's fingerprint with CERT's, field\n"
    "                  by field within the tolerances CERT carries\n"
    "      --certify --from-registry  the same with the certificate attached to the\n"
    "                  image (envpin attach --type cert): REF may be a registry reference,\n"
    "                  pulled with its attachments; a signed one needs --key PUB\n"
    "      --require-gpu, --gpus SPEC, --engine E   as for envpin check\n"
    "      --key PUB   then check the image's cosign-style signature (envpin sign) with\n"
    "                  this public key: it must verify and name this digest and repository\n"
    "      --policy FILE  the same with the key a containers policy.json (skopeo's\n"
    "                  sigstoreSigned keyPath) gives for the image's repository\n"
    "      --identity REPO  the repository the signature must name (default: the\n"
    "                  image's tag in the store; without either, only the digest)\n"
    "      --from BUNDLE  rebuild from a bundle (envpin vendor), without network: its\n"
    "                  manifest, lock, context and inputs; every file of the bundle is\n"
    "                  re-hashed first and a damaged one is named (exit 1). DIGEST may be\n"
    "                  left out or be the bundle's image, which is then read from the bundle\n"
    "      --vary[=LIST]  rebuild under a varied host and name any variation that changes\n"
    "                  the bytes: builddir, umask, tz, locale, hostname, fileorder\n"
    "                  (disorderfs), clock (libfaketime), threads; LIST is a comma list\n"
    "                  or all (default). One rebuild with all at once; when it differs,\n"
    "                  one unvaried and one per variation (docs/verify.md)\n"
    "  -f, --file M    the manifest to rebuild (default: envpin.json)\n"
    "      --lock FILE the lock to rebuild with (default: beside the manifest; never written)\n"
    "      --json      print the report as JSON\n"
    "  -q, --quiet     print only the verdict\n\n"
    "Exit status: 0 verified (with --rebuild: identical, or same content with other\n"
    "compressed bytes), 1 a blob is bad or the rebuild gives different content,\n"
    "2 usage or unknown image.\n";

/* A diff_id is "ok" only when the uncompressed bytes were hashed and match;
 * a layer that could not be decompressed (or whose blob is missing or bad)
 * leaves it "unchecked", never ok. */
static const char *diff_id_state(const struct ep_verify_item *it)
{
	if (!it->diff_actual[0])
		return "unchecked";
	return strcmp(it->diff_id, it->diff_actual) ? "BAD" : "ok";
}

static void print_item(const struct ep_verify_item *it, size_t li, size_t nl)
{
	char label[32];

	if (!strcmp(it->kind, "layer")) {
		snprintf(label, sizeof(label), "layer %zu/%zu", li, nl);
		printf("%-11s %s  %s\n", label, it->digest,
		       it->ok ? "ok" : it->actual[0] && strcmp(it->actual, it->digest) ? "BAD (content)" : "BAD");
		if (it->diff_id[0])
			printf("%-11s %s  %s\n", "  diff_id", it->diff_id, diff_id_state(it));
	} else {
		printf("%-11s %s  %s\n", it->kind, it->digest, it->ok ? "ok" : "BAD");
	}
}

static json_t *report_json(const struct ep_verify_report *rep, int ok, const char *msg)
{
	json_t *j = json_object(), *items = json_array();

	for (size_t i = 0; i < rep->n_items; i++) {
		const struct ep_verify_item *it = &rep->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:I}", "kind", it->kind, "digest", it->digest,
				      "actual", it->actual, "ok", it->ok, "size", (json_int_t)it->size);

		if (it->diff_id[0]) {
			json_object_set_new(o, "diff_id", json_string(it->diff_id));
			json_object_set_new(o, "diff_actual", json_string(it->diff_actual));
			json_object_set_new(o, "diff_id_state", json_string(diff_id_state(it)));
		}
		json_array_append_new(items, o);
	}
	json_object_set_new(j, "ok", json_boolean(ok));
	if (rep->manifest_digest[0])
		json_object_set_new(j, "digest", json_string(rep->manifest_digest));
	if (rep->config_digest[0])
		json_object_set_new(j, "config_digest", json_string(rep->config_digest));
	json_object_set_new(j, "items", items);
	json_object_set_new(j, "bytes_hashed", json_integer((json_int_t)rep->bytes_hashed));
	if (msg)
		json_object_set_new(j, "error", json_string(msg));
	return j;
}

static void print_rebuild(json_t *r, int quiet)
{
	const char *verdict = json_string_value(json_object_get(r, "verdict"));
	json_t *l, *p;
	size_t i;

	if (!quiet) {
		printf("rebuild: %s\n", json_string_value(json_object_get(json_object_get(r, "rebuilt"), "digest")));
		json_array_foreach(json_object_get(r, "layers"), i, l)
			printf("  layer %zu: %s\n", i + 1,
			       json_is_true(json_object_get(l, "same_bytes"))     ? "same bytes"
			       : json_is_true(json_object_get(l, "same_content")) ? "same content, other bytes"
										  : "DIFFERENT content");
		json_array_foreach(json_object_get(r, "paths"), i, p)
			printf("    %s\n      image:   %s\n      rebuilt: %s\n",
			       json_string_value(json_object_get(p, "path")),
			       json_string_value(json_object_get(p, "image")),
			       json_string_value(json_object_get(p, "rebuilt")));
		if (json_array_size(json_object_get(r, "config_fields"))) {
			printf("  config fields that differ:");
			json_array_foreach(json_object_get(r, "config_fields"), i, p)
				printf(" %s", json_string_value(p));
			printf("\n");
		}
	}
	printf("rebuild verdict: %s\n  %s\n",
	       !strcmp(verdict, "identical")      ? "IDENTICAL (same bytes)"
	       : !strcmp(verdict, "same-content") ? "SAME CONTENT, DIFFERENT BYTES"
						  : "DIFFERENT",
	       json_string_value(json_object_get(r, "explanation")));
}

static void print_certify(json_t *ref, json_t *now, json_t *cmp, int quiet)
{
	const char *rd = json_string_value(json_object_get(json_object_get(ref, "image"), "config_digest"));
	const char *nd = json_string_value(json_object_get(json_object_get(now, "image"), "config_digest"));
	json_t *f;
	size_t i;

	print_cert_summary(now, quiet);
	if (rd && nd && strcmp(rd, nd))
		printf("note: the certificate was made for another image (config %s)\n", rd);
	if (!quiet)
		json_array_foreach(json_object_get(cmp, "fields"), i, f) {
			if (json_is_number(json_object_get(f, "delta")))
				printf("  fingerprint %-15s %s  (delta %.3g, allowed %.3g)\n",
				       json_string_value(json_object_get(f, "name")),
				       json_is_true(json_object_get(f, "ok")) ? "ok " : "BAD",
				       json_number_value(json_object_get(f, "delta")),
				       json_number_value(json_object_get(f, "allowed")));
			else
				printf("  fingerprint %-15s %s  (must be equal)\n",
				       json_string_value(json_object_get(f, "name")),
				       json_is_true(json_object_get(f, "ok")) ? "ok " : "BAD");
		}
	printf("certify: fingerprint %s the certificate's (made on %s, %s)\n",
	       json_is_true(json_object_get(cmp, "match")) ? "MATCHES" : "DOES NOT MATCH",
	       json_string_value(json_object_get(json_object_get(ref, "host"), "os")) ?: "?",
	       json_string_value(json_object_get(ref, "created")) ?: "?");
}

static void print_vary(json_t *v, int quiet)
{
	const char *verdict = json_string_value(json_object_get(v, "verdict"));
	json_t *x, *run, *p;
	size_t i, j;

	if (!quiet) {
		json_array_foreach (json_object_get(v, "variations"), i, x) {
			const char *sk = json_string_value(json_object_get(x, "skipped"));

			printf("  vary %-9s %s%s%s\n", json_string_value(json_object_get(x, "name")),
			       json_string_value(json_object_get(x, "setting")), sk ? ": SKIPPED, " : "",
			       sk ? sk : "");
		}
		json_array_foreach (json_object_get(v, "runs"), i, run) {
			cleanup_free char *names = ep_json_canonical(json_object_get(run, "vary"), NULL, NULL);
			json_t *r = json_object_get(run, "report");
			const char *e = json_string_value(json_object_get(run, "error"));

			printf("  rebuild under %s: %s\n",
			       json_array_size(json_object_get(run, "vary")) ? names : "no variation",
			       r ? json_string_value(json_object_get(r, "verdict")) : "ERROR");
			if (e)
				printf("    %s\n", e);
			json_array_foreach (json_object_get(r, "paths"), j, p) {
				if (j >= 5)
					break;
				printf("    %s\n      image:   %s\n      rebuilt: %s\n",
				       json_string_value(json_object_get(p, "path")),
				       json_string_value(json_object_get(p, "image")),
				       json_string_value(json_object_get(p, "rebuilt")));
			}
		}
	}
	printf("vary verdict: %s\n  %s\n",
	       !strcmp(verdict, "identical") ? "IDENTICAL under every variation"
	       : !strcmp(verdict, "varies")  ? "VARIES"
	       : !strcmp(verdict, "error")   ? "THE REBUILD FAILED under the variations"
					     : "NOT REPRODUCIBLE (even unvaried)",
	       json_string_value(json_object_get(v, "explanation")));
}

/* What verify checks, resolved once; integrity, --rebuild and --certify
 * all use it. */
struct verify_target {
	const char *path;	 /* a layout dir or an archive; NULL: an image in the store */
	const char *want;	 /* with path: the manifest to pick (NULL: the only one) */
	int is_dir;		 /* path is a layout directory */
	struct ep_image_loc loc; /* without path: the store image */
};

/* --image PATH, or an argument written as a path (with a '/') that exists,
 * is a layout or archive; anything else is an image in the store (a bare
 * NAME is the tag NAME even when a directory NAME is here, see
 * ep_image_locate). */
static int resolve_target(struct cmd_ctx *ctx, const char *arg, const char *image_path,
			  struct verify_target *t, struct ep_error *err)
{
	struct stat st;

	memset(t, 0, sizeof(*t));
	if (image_path) {
		t->path = image_path;
		t->want = arg;
	} else if (strchr(arg, '/') && stat(arg, &st) == 0) {
		t->path = arg;
	}
	if (t->path) {
		t->is_dir = stat(t->path, &st) == 0 && S_ISDIR(st.st_mode);
		return 0;
	}
	if (cmd_open_store(ctx, 0, err) < 0) {
		/* no store: ep_image_locate says whether a './NAME' was meant */
		if (stat(arg, &st) == 0)
			ep_image_locate(NULL, arg, &t->loc, err);
		return -1;
	}
	if (ep_image_locate(&ctx->store, arg, &t->loc, err) < 0) {
		/* an archive named without a '/' (a directory gets the same hint
		 * from ep_image_locate) */
		if (stat(arg, &st) == 0 && !S_ISDIR(st.st_mode)) {
			cleanup_free char *why = ep_strdup(err ? err->msg : "", NULL);

			ep_error_set(
			    err, EP_EINVAL,
			    "%s; '%s' is also a file here: a path needs a '/', write './%s'",
			    why ? why : "", arg, arg);
		}
		return -1;
	}
	return 0;
}

/* verify's command line, parsed once. */
struct verify_opts {
	const char *image_path, *arg, *manifest, *lock, *certify, *from;
	const char *key, *policy, *identity; /* signature check */
	int from_registry;		     /* --certify's certificate is attached to the image */
	ep_digest fetched;		     /* the image --from-registry resolved */
	const struct ep_offline *offline; /* --from: the bundle's inputs */
	unsigned vary;                    /* --vary: EP_VARY_* */
	int json, quiet, rebuild;
	struct check_opts co;
};

/* Returns -1 to go on, or the exit status (help, usage error). */
static int parse_verify_opts(int argc, char **argv, struct cmd_ctx *ctx, struct verify_opts *vo)
{
	enum { O_IMAGE = 256, O_JSON, O_REBUILD, O_LOCK, O_CERTIFY, O_KEY, O_POLICY, O_IDENTITY,
	       O_FROM_REGISTRY, O_FROM, O_VARY };
	static const struct option opts[] = {
		{"image", required_argument, NULL, O_IMAGE}, {"json", no_argument, NULL, O_JSON},
		{"rebuild", no_argument, NULL, O_REBUILD},   {"file", required_argument, NULL, 'f'},
		{"lock", required_argument, NULL, O_LOCK},
		{"from", required_argument, NULL, O_FROM},
		{"vary", optional_argument, NULL, O_VARY},
		{"certify", required_argument, NULL, O_CERTIFY},
		{"key", required_argument, NULL, O_KEY},
		{"policy", required_argument, NULL, O_POLICY},
		{"identity", required_argument, NULL, O_IDENTITY},
		{"from-registry", no_argument, NULL, O_FROM_REGISTRY},
		{"require-gpu", no_argument, NULL, CHECK_O_REQUIRE_GPU},
		{"gpus", required_argument, NULL, CHECK_O_GPUS},
		{"engine", required_argument, NULL, CHECK_O_ENGINE},
		{"quiet", no_argument, NULL, 'q'},           {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(vo, 0, sizeof(*vo));
	vo->manifest = "envpin.json";
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:qh", opts, NULL)) != -1) {
		int r = parse_check_opt(c, optarg, &vo->co, ctx);

		if (r == EXIT_USAGE)
			return EXIT_USAGE;
		if (r == 0)
			continue;
		switch (c) {
		case O_CERTIFY:
			/* "--certify --from-registry": no CERT file */
			if (!strcmp(optarg, "--from-registry"))
				vo->from_registry = 1;
			else
				vo->certify = optarg;
			break;
		case O_FROM_REGISTRY:
			vo->from_registry = 1;
			break;
		case O_REBUILD:
			vo->rebuild = 1;
			break;
		case O_KEY:
			vo->key = optarg;
			break;
		case O_POLICY:
			vo->policy = optarg;
			break;
		case O_IDENTITY:
			vo->identity = optarg;
			break;
		case 'f':
			vo->manifest = optarg;
			break;
		case O_LOCK:
			vo->lock = optarg;
			break;
		case O_FROM:
			vo->from = optarg;
			break;
		case O_VARY: {
			struct ep_error e = EP_ERROR_INIT;

			if (ep_vary_parse(optarg ? optarg : "all", &vo->vary, &e) < 0)
				return cmd_usage_error(ctx, "%s", e.msg);
			break;
		}
		case O_IMAGE:
			vo->image_path = optarg;
			break;
		case O_JSON:
			vo->json = 1;
			break;
		case 'q':
			vo->quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind < argc)
		vo->arg = argv[optind++];
	if (optind < argc)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (vo->from && !vo->rebuild)
		return cmd_usage_error(ctx, "--from BUNDLE goes with --rebuild");
	if (vo->vary && !vo->rebuild)
		return cmd_usage_error(ctx, "--vary goes with --rebuild");
	if (vo->from && vo->image_path)
		return cmd_usage_error(ctx, "--from BUNDLE reads the image from the bundle, not --image");
	if (!vo->arg && !vo->image_path && !vo->from)
		return cmd_usage_error(ctx, "name an image: a DIGEST in the store, or --image PATH");
	if (vo->from_registry && (vo->certify || vo->image_path))
		return cmd_usage_error(ctx, "--from-registry takes the certificate attached to the image "
					    "REF: no CERT file, no --image");
	if (vo->certify &&
	    (vo->image_path || !vo->arg || (strchr(vo->arg, '/') && !access(vo->arg, F_OK))))
		return cmd_usage_error(ctx, "--certify runs an image in the store: name its DIGEST");
	if (vo->key && vo->policy)
		return cmd_usage_error(ctx, "--key and --policy exclude each other");
	if ((vo->key || vo->policy) &&
	    (vo->image_path || (strchr(vo->arg, '/') && !access(vo->arg, F_OK))))
		return cmd_usage_error(ctx,
				       "signatures are kept in the store: name the image's DIGEST");
	return -1;
}

/* The certificate --certify compares with; loaded before any work so that a
 * bad file fails fast. */
static json_t *load_reference_cert(const char *path, struct ep_error *err)
{
	json_t *cert = ep_json_load_file(path, EP_JSON_MAX_BYTES, err);

	if (cert && !json_is_object(json_object_get(cert, "fingerprint"))) {
		json_decref(cert);
		ep_error_set(err, EP_EINVAL, "'%s' is not an envpin certificate with a fingerprint",
			     path);
		return NULL;
	}
	return cert;
}

/* --rebuild: build the manifest again in a private store and compare. */
static int verify_rebuild(struct cmd_ctx *ctx, const struct verify_opts *vo,
			  const struct verify_target *tg, json_t **out, struct ep_error *err)
{
	struct ep_build_opts bo;

	memset(&bo, 0, sizeof(bo));
	bo.manifest_path = vo->manifest;
	bo.lock_path = vo->lock;
	bo.offline = vo->offline;
	bo.progress = (ep_progress_fn)cmd_progress;
	ep_compress_defaults(EP_COMPRESS_GZIP, &bo.compress);
	if (!vo->quiet && !vo->json)
		fprintf(stderr, "rebuilding from '%s' in a temporary store...\n", vo->manifest);
	/* the private rebuild store lives under the store's tmp/, also
	 * when the image is a layout elsewhere */
	if (cmd_open_store(ctx, 1, err) < 0)
		return -1;
	if (vo->vary) {
		/* the variations copy the context: give them absolute paths */
		cleanup_free char *lock = vo->lock ? ep_strdup(vo->lock, err)
						   : ep_manifest_lock_path(vo->manifest, err);

		if (!lock)
			return -1;
		bo.lock_path = lock;
		return ep_rebuild_vary(&ctx->store, tg->path, tg->loc.digest, &bo, vo->vary, out,
				       err);
	}
	return ep_rebuild_compare(&ctx->store, tg->path, tg->loc.digest, &bo, out, err);
}

/* --certify: certify the image here and compare fingerprints with ref. */
static int verify_certify(struct cmd_ctx *ctx, struct verify_opts *vo, const char *digest,
			  json_t *ref, json_t **now, json_t **cmp, struct ep_error *err)
{
	vo->co.quiet = vo->quiet || vo->json;
	if (check_image(ctx, digest, &vo->co, now, err) < 0)
		return -1;
	*cmp = ep_cert_compare_fingerprints(json_object_get(ref, "fingerprint"),
					    json_object_get(*now, "fingerprint"), err);
	return *cmp ? 0 : -1;
}

/* The results of a verify run, for printing and the exit status. */
struct verify_result {
	struct ep_verify_report rep;
	json_t *rebuild;  /* --rebuild's comparison, or NULL */
	json_t *cert_ref; /* --certify's certificate, or NULL */
	json_t *cert_now; /* the certificate made here, or NULL */
	json_t *fp_cmp;	  /* the fingerprint comparison, or NULL */
	json_t *signature; /* --key/--policy's report, or NULL */
};

static void print_verify_json(const struct verify_result *vr, int rc, const struct ep_error *err)
{
	struct ep_error jerr = EP_ERROR_INIT;
	cleanup_json json_t *j = report_json(&vr->rep, rc == 0, rc == 0 ? NULL : err->msg);
	cleanup_free char *text = NULL;

	if (vr->cert_now) {
		json_object_set(j, "certificate", vr->cert_now);
		json_object_set(j, "fingerprint_comparison", vr->fp_cmp);
	}
	if (vr->rebuild)
		json_object_set(j, "rebuild", vr->rebuild);
	if (vr->signature)
		json_object_set(j, "signature", vr->signature);
	text = ep_json_pretty(j, &jerr);
	if (text)
		fputs(text, stdout);
}

static void print_verify_text(const struct verify_result *vr, int rc, int quiet)
{
	const struct ep_verify_report *rep = &vr->rep;

	if (!quiet) {
		size_t nl = 0, li = 0;

		for (size_t i = 0; i < rep->n_items; i++)
			nl += !strcmp(rep->items[i].kind, "layer");
		for (size_t i = 0; i < rep->n_items; i++) {
			if (!strcmp(rep->items[i].kind, "layer"))
				li++;
			print_item(&rep->items[i], li, nl);
		}
	}
	if (rc != 0)
		return;
	printf("verified %s: %zu blobs, %.1f MB hashed\n",
	       rep->manifest_digest[0] ? rep->manifest_digest : rep->config_digest, rep->n_items,
	       (double)rep->bytes_hashed / 1e6);
	if (vr->signature && json_is_true(json_object_get(vr->signature, "verified")))
		printf("signature: verified by key %s for '%s'%s\n",
		       json_string_value(json_object_get(vr->signature, "key_id")),
		       json_string_value(json_object_get(vr->signature, "identity")),
		       json_is_true(json_object_get(vr->signature, "repository_checked"))
			       ? ""
			       : " (repository not checked: no tag, no --identity)");
	else if (vr->signature)
		printf("signature: not required by the policy for '%s'\n",
		       json_string_value(json_object_get(vr->signature, "identity")));
	if (vr->rebuild && json_object_get(vr->rebuild, "runs"))
		print_vary(vr->rebuild, quiet);
	else if (vr->rebuild)
		print_rebuild(vr->rebuild, quiet);
	if (vr->cert_now)
		print_certify(vr->cert_ref, vr->cert_now, vr->fp_cmp, quiet);
}

/* Integrity first; --rebuild and --certify only for an image that verified. */
static int verify_run(struct cmd_ctx *ctx, struct verify_opts *vo, struct verify_target *tg,
		      struct verify_result *vr, struct ep_error *err)
{
	int rc;

	if (tg->path)
		rc = ep_verify_path(tg->path, tg->want, &vr->rep, (ep_progress_fn)cmd_progress,
				    NULL, err);
	else
		rc = ep_verify_layout(tg->loc.layout, tg->loc.digest, &vr->rep,
				      (ep_progress_fn)cmd_progress, NULL, err);
	/* a layout's image is the manifest that was just verified */
	if (rc == 0 && tg->path)
		snprintf(tg->loc.digest, sizeof(tg->loc.digest), "%s", vr->rep.manifest_digest);
	if (rc == 0 && (vo->key || vo->policy) &&
	    trust_verify_signature(ctx, tg->loc.digest, tg->loc.tag, vo->identity, vo->key,
				   vo->policy, &vr->signature, err) < 0)
		rc = -1;
	if (rc == 0 && vo->rebuild && verify_rebuild(ctx, vo, tg, &vr->rebuild, err) < 0)
		rc = -1;
	if (rc == 0 && vo->certify &&
	    verify_certify(ctx, vo, tg->loc.digest, vr->cert_ref, &vr->cert_now, &vr->fp_cmp, err) <
		0)
		rc = -1;
	return rc;
}

static void verify_result_release(struct verify_result *vr)
{
	ep_verify_report_release(&vr->rep);
	json_decref(vr->rebuild);
	json_decref(vr->cert_ref);
	json_decref(vr->cert_now);
	json_decref(vr->fp_cmp);
	json_decref(vr->signature);
	memset(vr, 0, sizeof(*vr));
}

/* 1 when the rebuild differs or the certification does not hold. */
static int verify_mismatch(const struct verify_result *vr)
{
	if (vr->rebuild &&
	    (!strcmp(json_string_value(json_object_get(vr->rebuild, "verdict")), "different") ||
	     !strcmp(json_string_value(json_object_get(vr->rebuild, "verdict")), "varies") ||
	     !strcmp(json_string_value(json_object_get(vr->rebuild, "verdict")), "error") ||
	     !strcmp(json_string_value(json_object_get(vr->rebuild, "verdict")), "not-reproducible")))
		return 1;
	return vr->cert_now &&
	       (!json_is_true(json_object_get(vr->fp_cmp, "match")) ||
		strcmp(json_string_value(json_object_get(vr->cert_now, "result")), "pass"));
}

/* --from BUNDLE: the bundle (checked whole) gives the manifest, the lock and
 * the inputs; the image to compare with is the bundle's own copy, named by
 * DIGEST (or a prefix of it) or by nothing. */
static int use_bundle(struct cmd_ctx *ctx, struct verify_opts *vo, struct ep_bundle *b,
		      struct ep_error *err)
{
	const char *a = vo->arg;

	if (cmd_open_store(ctx, 1, err) < 0 || ep_bundle_open(&ctx->store, vo->from, b, err) < 0)
		return -1;
	if (a && !strncmp(a, "sha256:", 7))
		a += 7;
	if (a && (strlen(a) < 4 || strncmp(b->image_digest + 7, a, strlen(a))))
		return ep_error_set(err, EP_EINVAL, "the bundle '%s' holds image %s, not '%s'",
				    vo->from, b->image_digest, vo->arg);
	vo->arg = b->image_digest;
	vo->image_path = b->layout;
	vo->manifest = b->manifest_path;
	vo->lock = b->lock_path;
	vo->offline = &b->offline;
	return 0;
}

int cmd_verify(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct verify_opts vo;
	struct verify_target tg = {0};
	struct verify_result vr;
	struct ep_bundle bundle = {.work_fd = -1};
	int rc, mismatch;

	rc = parse_verify_opts(argc, argv, ctx, &vo);
	if (rc >= 0)
		return rc;
	memset(&vr, 0, sizeof(vr));
	if (vo.certify && !(vr.cert_ref = load_reference_cert(vo.certify, &err)))
		return cmd_fail(&err);
	if (vo.from_registry) {
		struct ep_registry_opts ro = {0};

		if (trust_fetch_cert(ctx, vo.arg, vo.key, &ro, vo.fetched, &vr.cert_ref, &err) < 0) {
			verify_result_release(&vr);
			return cmd_fail(&err);
		}
		vo.arg = vo.fetched;
		vo.certify = "(attached to the image)";
	}
	if (vo.from && use_bundle(ctx, &vo, &bundle, &err) < 0) {
		verify_result_release(&vr);
		ep_bundle_release(&bundle);
		return cmd_fail(&err);
	}
	if (resolve_target(ctx, vo.arg, vo.image_path, &tg, &err) < 0) {
		ep_image_loc_release(&tg.loc);
		verify_result_release(&vr);
		ep_bundle_release(&bundle);
		return cmd_fail(&err);
	}
	if (vo.rebuild && tg.path && !tg.is_dir) {
		ep_image_loc_release(&tg.loc);
		verify_result_release(&vr);
		return cmd_usage_error(ctx,
				       "--rebuild compares with an image in the store or in an OCI "
				       "layout directory; '%s' is an archive",
				       tg.path);
	}
	rc = verify_run(ctx, &vo, &tg, &vr, &err);
	if (vo.json)
		print_verify_json(&vr, rc, &err);
	else
		print_verify_text(&vr, rc, vo.quiet);
	mismatch = rc == 0 && verify_mismatch(&vr);
	verify_result_release(&vr);
	ep_image_loc_release(&tg.loc);
	ep_bundle_release(&bundle);
	if (rc < 0) {
		cmd_finish(0);
		return cmd_fail(&err);
	}
	return cmd_finish(mismatch ? EXIT_MISMATCH : 0);
}
