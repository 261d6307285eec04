/* cmd/envpin.c - the command table, global options and exit codes. */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <libdeflate.h>
#include <curl/curlver.h>
#include <jansson.h>

#include "archive_dl.h"
#include "cmd.h"
#include "jsonutil.h"
#include "source.h"
#include "trace.h"
#include "util.h"

struct command {
	const char *name;
	cmd_fn fn;
	int flags;
	const char *summary;
};

static const struct command commands[] = {
	{"build", cmd_build, CMD_CREATE_STORE, "build the image a manifest describes; write the lock"},
	{"lock", cmd_lock, CMD_CREATE_STORE,
	 "resolve every input of a manifest to a digest; write the lock"},
	{"verify", cmd_verify, CMD_OPTIONAL_STORE, "re-hash every blob and diff_id of an image"},
	{"vendor", cmd_vendor, 0, "bundle an image with every input, for offline rebuilds"},
	{"run", cmd_run, CMD_NEEDS_STORE,
	 "run an image: runc (native), docker or podman; GPUs and $PWD"},
	{"lab", cmd_lab, CMD_NEEDS_STORE, "JupyterLab in an image, for the caller, on 127.0.0.1"},
	{"check", cmd_check, CMD_NEEDS_STORE,
	 "certify an image here: CUDA/cuDNN self-check + FITS smoke test"},
	{"ps", cmd_ps, CMD_NEEDS_STORE, "list the containers started with run --detach"},
	{"logs", cmd_logs, CMD_NEEDS_STORE, "print (-f: follow) a detached container's output"},
	{"attach", cmd_attach, CMD_NEEDS_STORE,
	 "follow a detached container (NAME), or attach a file to an image (--type)"},
	{"stop", cmd_stop, CMD_NEEDS_STORE, "stop detached containers (SIGTERM, then SIGKILL)"},
	{"rm", cmd_rm, CMD_NEEDS_STORE, "remove the records of ended detached containers"},
	{"pull", cmd_pull, CMD_CREATE_STORE, "download an image from a registry, verifying every blob"},
	{"push", cmd_push, CMD_NEEDS_STORE, "upload an image to a registry"},
	{"login", cmd_login, 0, "store credentials for a registry"},
	{"export", cmd_export, CMD_NEEDS_STORE,
	 "write an image archive for docker/podman load and skopeo"},
	{"unpack", cmd_unpack, CMD_OPTIONAL_STORE,
	 "flatten an image into a directory (untrusted layers, safely)"},
	{"inspect", cmd_inspect, CMD_OPTIONAL_STORE, "show an image's digests, config and layers"},
	{"images", cmd_images, CMD_NEEDS_STORE, "list the images in the store"},
	{"rmi", cmd_rmi, CMD_NEEDS_STORE, "remove images from the store (then gc)"},
	{"gc", cmd_gc, CMD_NEEDS_STORE | CMD_EXCLUSIVE_STORE,
	 "remove unreferenced blobs and leftovers of killed builds"},
	{"dockerfile", cmd_dockerfile, 0, "print a Dockerfile equivalent to a manifest"},
	{"key", cmd_key, 0, "generate an ECDSA P-256 key pair for sign and provenance"},
	{"sign", cmd_sign, CMD_NEEDS_STORE, "sign an image the way cosign does (kept beside it)"},
	{"sbom", cmd_sbom, CMD_NEEDS_STORE, "write an SPDX or CycloneDX SBOM of an image"},
	{"provenance", cmd_provenance, CMD_OPTIONAL_STORE,
	 "write signed SLSA provenance (in-toto, DSSE) of an image"},
	{"attachments", cmd_attachments, CMD_CREATE_STORE,
	 "list an image's signature and attachments (store or registry)"},
	{"doctor", cmd_doctor, 0, "check this machine's preconditions (rootless, GPU) and their fixes"},
	{"bundle", cmd_bundle, CMD_OPTIONAL_STORE, "prepare an OCI runtime bundle (Slurm, runc)"},
	{"slurm", cmd_slurm, 0, "print or install Slurm's oci.conf for srun --container"},
	{"k8s", cmd_k8s, 0, "print a Kubernetes Job/Pod pinned by digest, GPU-checked first"},
	{"certificates", cmd_certificates, 0, "merge per-node certificates into one report"},
	{"version", cmd_version, 0, "print version and the library versions that affect digests"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: envpin [--store DIR] COMMAND [OPTIONS] ARGS\n\n"
		   "Reproducible, verifiable GPU environments.\n\ncommands:\n");
	for (size_t i = 0; i < EP_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nglobal options:\n"
		   "  --store DIR   the image store (default $ENVPIN_STORE, /var/lib/envpin for root,\n"
		   "                ~/.local/share/envpin otherwise); may appear anywhere\n"
		   "  --version     same as 'envpin version'\n"
		   "  -h, --help    this help; 'envpin COMMAND --help' for a command\n\n"
		   "exit codes: 0 ok, 1 verification/check failed, 2 usage or invalid input,\n"
		   "            3 environment failure (I/O, network, missing tool)\n");
}

int cmd_fail(const struct ep_error *err)
{
	fprintf(stderr, "envpin: %s\n", err->msg[0] ? err->msg : "unknown error");
	switch (err->code) {
	case EP_EMISMATCH:
		return EXIT_MISMATCH;
	case EP_EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_ENV;
	}
}

int cmd_usage_error(const struct cmd_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "envpin %s: ", ctx->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nrun 'envpin %s --help' for usage\n", ctx->name);
	return EXIT_USAGE;
}

int cmd_print_json(const json_t *j)
{
	struct ep_error err = EP_ERROR_INIT;
	char *text = j ? ep_json_pretty(j, &err) : NULL;

	if (!text) {
		if (!err.msg[0])
			ep_error_oom(&err);
		return cmd_fail(&err);
	}
	fputs(text, stdout);
	free(text);
	return 0;
}

int cmd_finish(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "envpin: cannot write to standard output: %s\n", strerror(errno));
		return rc ? rc : EXIT_ENV;
	}
	return rc;
}

static int open_store(struct cmd_ctx *ctx, int ep_flags, struct ep_error *err)
{
	if (ctx->store_open)
		return 0;
	if (!ctx->store_root) {
		ctx->store_root = ep_store_default_root(err);
		if (!ctx->store_root)
			return -1;
	}
	if (ep_store_open(&ctx->store, ctx->store_root, ep_flags, err) < 0)
		return -1;
	ctx->store_open = 1;
	return 0;
}

int cmd_open_store(struct cmd_ctx *ctx, int create, struct ep_error *err)
{
	return open_store(ctx, create ? EP_STORE_CREATE : 0, err);
}

/* What the table's flags ask for, before the command runs. */
static int setup_store(struct cmd_ctx *ctx, int flags, struct ep_error *err)
{
	int ep_flags = 0;

	if (flags & CMD_CREATE_STORE)
		ep_flags |= EP_STORE_CREATE;
	if (flags & CMD_EXCLUSIVE_STORE)
		ep_flags |= EP_STORE_EXCLUSIVE;
	if (flags & (CMD_NEEDS_STORE | CMD_CREATE_STORE | CMD_EXCLUSIVE_STORE))
		return open_store(ctx, ep_flags, err);
	if (flags & CMD_OPTIONAL_STORE && open_store(ctx, 0, err) < 0)
		ep_error_clear(err); /* the command says what it misses */
	return 0;
}

void cmd_progress(void *unused, const char *what, unsigned long long done,
		  unsigned long long total)
{
	static int enabled = -1;

	(void)unused;
	if (enabled < 0) {
		const char *e = getenv("ENVPIN_PROGRESS");
		enabled = e ? atoi(e) != 0 : isatty(2);
	}
	if (!enabled)
		return;
	if (total)
		fprintf(stderr, "\r%s: %llu/%llu MB (%llu%%)\033[K", what, done >> 20, total >> 20,
			done * 100 / total);
	else if (!done) /* a step that counts nothing: say what runs, not "0 MB" */
		fprintf(stderr, "\r%s ...\033[K", what);
	else if (done < (1ull << 20)) /* a tool just started: real bytes, not "0 MB" */
		fprintf(stderr, "\r%s: %llu kB\033[K", what, done >> 10);
	else
		fprintf(stderr, "\r%s: %llu MB\033[K", what, done >> 20);
	if (total && done >= total)
		fputc('\n', stderr);
}

int cmd_version(int argc, char **argv, struct cmd_ctx *ctx)
{
	(void)ctx;
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: envpin version\n\nPrints envpin's version and git revision, and the versions of\n"
		       "the libraries whose behaviour can change digests (compressors, OpenSSL).\n");
		return cmd_finish(0);
	}
	printf("envpin %s (git %s)\n", EP_VERSION, EP_GIT_REV);
	{
		/* what every lock records as envpin_source (docs/lock.md) */
		json_t *src = ep_source_record(NULL);

		printf("source %s%s %s\n", json_string_value(json_object_get(src, "commit")) ?: "?",
		       json_is_true(json_object_get(src, "dirty")) ? " (modified)" : "",
		       json_string_value(json_object_get(src, "tarball_sha256")) ?: "(no tarball)");
		json_decref(src);
	}
	printf("libdeflate %s\nzlib %s\nzstd %s\nopenssl %s\nlibarchive %s\njansson %s\nlibcurl %s\n",
	       LIBDEFLATE_VERSION_STRING, zlibVersion(), ZSTD_versionString(),
	       OpenSSL_version(OPENSSL_VERSION), archive_version_string(), JANSSON_VERSION,
	       LIBCURL_VERSION);
	return cmd_finish(0);
}

/* Removes "--store DIR" / "--store=DIR" from anywhere before "--". */
static int take_store_option(int *argc, char **argv, char **store)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--store")) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "envpin: --store needs a directory\n");
				return -1;
			}
			*store = argv[++i];
			continue;
		}
		if (!strncmp(argv[i], "--store=", 8)) {
			*store = argv[i] + 8;
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

/* verify and a first start read big layers through a mapping (lib/oci.c,
 * lib/unpack.c): a file truncated by someone else while it is read raises
 * SIGBUS there.  Say so and fail as an environment error, not a crash. */
static void on_sigbus(int sig)
{
	static const char msg[] = "envpin: a file shrank while envpin was reading it (truncated "
				  "by another process?); stopped, 'envpin gc' removes partial work\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to say */
	}
	_exit(EXIT_ENV);
}

/* ENVPIN_TRACE_START=1 (or a shell's $EPOCHREALTIME taken just before the
 * exec, so that the exec and the dynamic loader count too): the marks the
 * run path records, on stderr at exit (docs/run.md, bench/run-phases.sh). */
static void trace_start(void)
{
	const char *v = getenv("ENVPIN_TRACE_START");
	uint64_t origin = 0;
	struct timespec cpu;
	char *end;

	if (!v || !*v || !strcmp(v, "0"))
		return;
	if (strchr(v, '.')) {
		unsigned long long sec = strtoull(v, &end, 10), usec = 0;
		size_t digits;

		if (*end == '.') {
			const char *f = end + 1;

			usec = strtoull(f, &end, 10);
			for (digits = (size_t)(end - f); digits < 6; digits++)
				usec *= 10;
			for (; digits > 6; digits--)
				usec /= 10;
		}
		origin = sec * 1000000000ull + usec * 1000ull;
	}
	ep_trace_enable(origin);
	ep_trace_mark("main");
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0)
		fprintf(stderr, "envpin: trace: %.3f ms of CPU before main (exec, loader)\n",
			(double)cpu.tv_sec * 1e3 + (double)cpu.tv_nsec / 1e6);
}

static void trace_print(void)
{
	uint64_t prev = ep_trace_origin(), ns;
	const char *what;

	if (!ep_trace_on())
		return;
	ep_trace_mark("exit");
	for (size_t i = 0; (what = ep_trace_get(i, &ns)); i++) {
		fprintf(stderr, "envpin: trace %8.3f ms %+8.3f  %s\n",
			(double)(ns - ep_trace_origin()) / 1e6, (double)(ns - prev) / 1e6, what);
		prev = ns;
	}
}

int main(int argc, char **argv)
{
	struct cmd_ctx ctx = {0};
	struct ep_error err = EP_ERROR_INIT;
	char *store = NULL;
	const struct command *cmd = NULL;
	int rc;

	trace_start();
	signal(SIGBUS, on_sigbus);
	if (take_store_option(&argc, argv, &store) < 0)
		return EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return cmd_finish(0);
	}
	if (!strcmp(argv[1], "--version"))
		argv[1] = "version";
	for (size_t i = 0; i < EP_ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "envpin: '%s' is not an envpin command; see 'envpin --help'\n", argv[1]);
		return EXIT_USAGE;
	}
	ctx.name = cmd->name;
	if (store || getenv("ENVPIN_STORE")) {
		ctx.store_root = strdup(store ? store : getenv("ENVPIN_STORE"));
		if (!ctx.store_root)
			return cmd_fail(&err);
	}
	/* A command's own --help must work without a store. */
	int wants_help = 0;
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			wants_help = 1;
	if (!wants_help && setup_store(&ctx, cmd->flags, &err) < 0) {
		free(ctx.store_root);
		return cmd_fail(&err);
	}
	ep_trace_mark("store open");
	rc = cmd->fn(argc - 1, argv + 1, &ctx);
	if (ctx.store_open)
		ep_store_release(&ctx.store);
	free(ctx.store_root);
	trace_print();
	return rc;
}
