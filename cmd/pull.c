/* cmd/pull.c - envpin pull, envpin push, envpin login. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "jsonutil.h"
#include "registry.h"
#include "trust.h"
#include "util.h"

static const char pull_usage[] =
	"usage: envpin pull REF [--platform OS/ARCH[/VARIANT]] [--ca-cert FILE] [--tag NAME] [--json]\n\n"
	"Downloads an image (REF is [HOST[:PORT]/]REPO[:TAG] or ...@sha256:HEX) into the store.\n"
	"Every manifest and blob is verified against its digest before it is stored; an index\n"
	"(multi-platform image) is followed to linux/amd64 or --platform. The last line of\n"
	"stdout is the image manifest digest.\n\n"
	"  --platform P     the platform to choose from an index (default linux/amd64)\n"
	"  --ca-cert FILE   CA for the registry's TLS certificate (default\n"
	"                   /etc/docker/certs.d/HOST[:PORT]/ca.crt, then the system CAs)\n"
	"  --tag NAME       tag in the store (default: the reference)\n"
	"  -j, --jobs N     parallel blob downloads (default 4)\n"
	"  --json           print a JSON summary\n\n"
	"Credentials come from ~/.docker/config.json ($DOCKER_CONFIG) or 'envpin login'.\n"
	"Loopback registries (127.0.0.0/8, ::1, localhost) may be plain HTTP.\n";

static const char push_usage[] =
	"usage: envpin push IMAGE REF [--ca-cert FILE] [--json]\n\n"
	"Uploads an image of the store (digest, prefix or tag) to REF. Blobs the registry has\n"
	"are skipped, blobs pulled from another repository of the same registry are mounted.\n"
	"The last line of stdout is the manifest digest the registry confirmed.\n\n"
	"  --ca-cert FILE   CA for the registry's TLS certificate\n"
	"  -j, --jobs N     parallel blob uploads (default 4)\n"
	"  --json           print a JSON summary\n";

static const char login_usage[] =
	"usage: envpin login HOST [-u USER] [--password-stdin] [--ca-cert FILE] [--json]\n\n"
	"Checks the credentials against HOST and stores them as auths.HOST.auth in\n"
	"~/.docker/config.json ($DOCKER_CONFIG/config.json), mode 0600.\n\n"
	"  -u, --username USER   the user (prompted on a terminal when missing)\n"
	"  --password-stdin      read the password from the first line of standard input\n"
	"  --ca-cert FILE        CA for the registry's TLS certificate\n";

struct ropts {
	struct ep_registry_opts o;
	const char *tag, *user;
	int json, password_stdin;
};

static int parse(int argc, char **argv, struct cmd_ctx *ctx, const char *usage, struct ropts *r)
{
	enum { O_PLATFORM = 256, O_CA, O_TAG, O_JSON, O_PWSTDIN };
	static const struct option opts[] = {
		{"platform", required_argument, NULL, O_PLATFORM},
		{"ca-cert", required_argument, NULL, O_CA},
		{"tag", required_argument, NULL, O_TAG},
		{"jobs", required_argument, NULL, 'j'},
		{"json", no_argument, NULL, O_JSON},
		{"username", required_argument, NULL, 'u'},
		{"password-stdin", no_argument, NULL, O_PWSTDIN},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(r, 0, sizeof(*r));
	optind = 1;
	while ((c = getopt_long(argc, argv, "j:u:h", opts, NULL)) != -1) {
		switch (c) {
		case O_PLATFORM:
			r->o.platform = optarg;
			break;
		case O_CA:
			if (access(optarg, R_OK) < 0)
				return cmd_usage_error(ctx, "cannot read CA file '%s': %s", optarg,
						       strerror(errno));
			r->o.ca_file = optarg;
			break;
		case O_TAG:
			r->tag = optarg;
			break;
		case 'j':
			r->o.jobs = atoi(optarg);
			if (r->o.jobs < 1 || r->o.jobs > 16)
				return cmd_usage_error(ctx, "--jobs must be 1 to 16");
			break;
		case O_JSON:
			r->json = 1;
			break;
		case 'u':
			r->user = optarg;
			break;
		case O_PWSTDIN:
			r->password_stdin = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return CMD_HELP_DONE;
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	r->o.progress = (ep_progress_fn)cmd_progress;
	return 0;
}

int cmd_pull(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_pull_result res;
	struct ropts r;
	int rc = parse(argc, argv, ctx, pull_usage, &r);

	if (rc == CMD_HELP_DONE)
		return cmd_finish(0);
	if (rc)
		return rc;
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "expected one REF");
	if (ep_pull(&ctx->store, argv[optind], r.tag, &r.o, &res, &err) < 0)
		return cmd_fail(&err);
	/* the image's signature and attachments come with it */
	cleanup_json json_t *trust = NULL;
	if (trust_pull(ctx, res.manifest_digest, argv[optind], &r.o, &trust, &err) < 0) {
		/* the image is whole; what vouches for it is checked by verify --key */
		fprintf(stderr, "envpin: warning: signature and attachments not fetched: %s\n",
			err.msg);
		ep_error_clear(&err);
	}
	if (r.json) {
		cleanup_json json_t *j = json_pack(
			"{s:s, s:s, s:I, s:I, s:I, s:I}", "reference", argv[optind], "digest",
			res.manifest_digest, "size", (json_int_t)res.manifest_size, "blobs",
			(json_int_t)res.n_blobs, "fetched", (json_int_t)res.n_fetched, "bytes_fetched",
			(json_int_t)res.bytes_fetched);

		if (j && res.index_digest[0])
			json_object_set_new(j, "index_digest", json_string(res.index_digest));
		if (j)
			json_object_set(j, "trust", trust);
		return cmd_finish(cmd_print_json(j));
	}
	if (res.index_digest[0])
		printf("index    %s\n", res.index_digest);
	printf("fetched  %zu of %zu blobs, %llu bytes\n", res.n_fetched, res.n_blobs,
	       (unsigned long long)res.bytes_fetched);
	if (json_is_true(json_object_get(trust, "signature")) ||
	    json_integer_value(json_object_get(trust, "attachments")))
		printf("trust    signature %s, %lld attachments (%s)\n",
		       json_is_true(json_object_get(trust, "signature")) ? "yes" : "no",
		       json_integer_value(json_object_get(trust, "attachments")),
		       json_string_value(json_object_get(trust, "via")));
	printf("%s\n", res.manifest_digest);
	return cmd_finish(0);
}

int cmd_push(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_push_result res;
	struct ropts r;
	int rc = parse(argc, argv, ctx, push_usage, &r);

	if (rc == CMD_HELP_DONE)
		return cmd_finish(0);
	if (rc)
		return rc;
	if (optind + 2 != argc)
		return cmd_usage_error(ctx, "expected IMAGE and REF");
	if (ep_push(&ctx->store, argv[optind], argv[optind + 1], &r.o, &res, &err) < 0)
		return cmd_fail(&err);
	/* then what is kept beside it: signature, attachments */
	cleanup_json json_t *trust = NULL;
	if (trust_push(ctx, res.manifest_digest, argv[optind + 1], &r.o, &trust, &err) < 0)
		return cmd_fail(&err);
	if (json_is_false(json_object_get(trust, "signature_matches_repository")))
		fprintf(stderr,
			"envpin: warning: the signature names %s, not this repository: cosign and "
			"verify --key of '%s' will refuse it; sign again with that REF\n",
			json_string_value(json_array_get(
			    json_object_get(trust, "signed_identities"), 0)) ?: "another repository",
			argv[optind + 1]);
	if (r.json) {
		cleanup_json json_t *j = json_pack(
			"{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "reference", argv[optind + 1], "digest",
			res.manifest_digest, "blobs", (json_int_t)res.n_blobs, "uploaded",
			(json_int_t)res.n_uploaded, "existing", (json_int_t)res.n_existing, "mounted",
			(json_int_t)res.n_mounted, "bytes_uploaded", (json_int_t)res.bytes_uploaded);

		if (j)
			json_object_set(j, "trust", trust);
		return cmd_finish(cmd_print_json(j));
	}
	printf("uploaded %zu, already there %zu, mounted %zu of %zu blobs (%llu bytes)\n",
	       res.n_uploaded, res.n_existing, res.n_mounted, res.n_blobs,
	       (unsigned long long)res.bytes_uploaded);
	if (json_is_true(json_object_get(trust, "signature")) ||
	    json_integer_value(json_object_get(trust, "attachments")))
		printf("trust: signature %s, %lld attachments (%s)\n",
		       json_is_true(json_object_get(trust, "signature")) ? "yes" : "no",
		       json_integer_value(json_object_get(trust, "attachments")),
		       json_string_value(json_object_get(trust, "via")));
	printf("%s\n", res.manifest_digest);
	return cmd_finish(0);
}

static int read_line(FILE *f, char *buf, size_t n)
{
	size_t len;

	if (!fgets(buf, (int)n, f))
		return -1;
	len = strlen(buf);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return 0;
}

int cmd_login(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ropts r;
	char user[256], pw[1024];
	cleanup_free char *path = NULL;
	int rc = parse(argc, argv, ctx, login_usage, &r);

	if (rc == CMD_HELP_DONE)
		return cmd_finish(0);
	if (rc)
		return rc;
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "expected one HOST");
	if (r.user) {
		snprintf(user, sizeof(user), "%s", r.user);
	} else {
		if (!isatty(0))
			return cmd_usage_error(ctx, "-u USER is needed when stdin is not a terminal");
		fprintf(stderr, "username: ");
		if (read_line(stdin, user, sizeof(user)) < 0)
			return cmd_usage_error(ctx, "no user name given");
	}
	if (r.password_stdin) {
		if (read_line(stdin, pw, sizeof(pw)) < 0)
			return cmd_usage_error(ctx, "no password on standard input");
	} else {
		char *p;

		if (!isatty(0))
			return cmd_usage_error(ctx, "use --password-stdin when stdin is not a terminal");
		p = getpass("password: ");
		if (!p)
			return cmd_usage_error(ctx, "no password given");
		snprintf(pw, sizeof(pw), "%s", p);
	}
	rc = ep_login(argv[optind], user, pw, &r.o, &path, &err);
	explicit_bzero(pw, sizeof(pw));
	if (rc < 0)
		return cmd_fail(&err);
	if (r.json) {
		cleanup_json json_t *j = json_pack("{s:s, s:s}", "host", argv[optind], "config", path);

		return cmd_finish(cmd_print_json(j));
	}
	printf("login succeeded; credentials for '%s' stored in '%s'\n", argv[optind], path);
	return cmd_finish(0);
}
