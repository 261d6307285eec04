/* cmd/dockerfile.c - envpin dockerfile: print a Dockerfile equivalent to a manifest. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "dockerfile.h"
#include "jsonutil.h"
#include "manifest.h"
#include "util.h"

static const char usage[] =
    "usage: envpin dockerfile [-f MANIFEST] [--lock FILE | --no-lock] [-o FILE]\n\n"
    "Prints a Dockerfile equivalent to the manifest: FROM for the base (a debian base\n"
    "becomes debian:SUITE-slim plus apt-get install), COPY for copy layers, RUN pip install\n"
    "--require-hashes for pip layers, ENV/LABEL/EXPOSE/USER/WORKDIR/ENTRYPOINT/CMD for the\n"
    "config. Pins come from the lock (NAME.lock.json beside NAME.json) when it exists:\n"
    "package versions, the base image digest, every wheel's sha256. The output depends\n"
    "only on the manifest and the lock, so it can be checked in and compared.\n\n"
    "  -f, --file MANIFEST   the manifest (default: envpin.json)\n"
    "      --lock FILE       take pins from this lock (it must exist)\n"
    "      --no-lock         ignore any lock\n"
    "  -o, --output FILE     write the Dockerfile to FILE instead of stdout\n";

int cmd_dockerfile(int argc, char **argv, struct cmd_ctx *ctx)
{
	enum { O_LOCK = 256, O_NO_LOCK };
	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},    {"lock", required_argument, NULL, O_LOCK},
	    {"no-lock", no_argument, NULL, O_NO_LOCK}, {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	const char *mpath = "envpin.json", *lpath = NULL, *out = NULL;
	cleanup_free char *deflock = NULL, *text = NULL;
	cleanup_json json_t *lock = NULL;
	struct ep_manifest *m;
	int c, no_lock = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			mpath = optarg;
			break;
		case O_LOCK:
			lpath = optarg;
			break;
		case O_NO_LOCK:
			no_lock = 1;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return cmd_finish(0);
		default:
			return cmd_usage_error(ctx, "unknown option");
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (lpath && no_lock)
		return cmd_usage_error(ctx, "--lock and --no-lock exclude each other");
	m = ep_manifest_load(mpath, &err);
	if (!m)
		return cmd_fail(&err);
	if (!no_lock) {
		if (!lpath) {
			deflock = ep_manifest_lock_path(mpath, &err);
			if (!deflock) {
				ep_manifest_free(m);
				return cmd_fail(&err);
			}
			if (access(deflock, F_OK) == 0)
				lpath = deflock;
		}
		if (lpath) {
			lock = ep_json_load_file(lpath, 16u << 20, &err);
			if (!lock) {
				ep_manifest_free(m);
				return cmd_fail(&err);
			}
		}
	}
	text = ep_dockerfile(m, lock, &err);
	ep_manifest_free(m);
	if (!text)
		return cmd_fail(&err);
	if (out) {
		if (ep_write_file_atomic(out, text, strlen(text), 0644, &err) < 0)
			return cmd_fail(&err);
		return cmd_finish(0);
	}
	fputs(text, stdout);
	return cmd_finish(0);
}
