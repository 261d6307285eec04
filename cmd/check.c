/* cmd/check.c - envpin check: run the self-check and the FITS smoke test
 * inside an image (through ep_run) and write the certificate.  Also the
 * shared piece behind `verify --certify` and `run --certify`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cert.h"
#include "check.h"
#include "cmd.h"
#include "image.h"
#include "jsonutil.h"
#include "oci.h"
#include "runcver.h"
#include "runopts.h"
#include "runtime.h"
#include "util.h"

#define OUTPUT_MAX (16u << 20)
#define SELFCHECK "/opt/envpin/bin/envpin-selfcheck"
#define FITSINFER "/opt/envpin/bin/envpin-fitsinfer"
#define SMOKE_DIR "/opt/envpin/share/smoke"

static const char usage[] =
	"usage: envpin check IMAGE [--require-gpu] [--gpus auto|all|none|LIST]\n"
	"                    [--engine native|docker|podman|auto] [-o CERT] [--json] [-q]\n\n"
	"Certifies an image on this machine: runs the CUDA/cuDNN self-check\n"
	"(" SELFCHECK ") and the FITS inference smoke test\n"
	"(" FITSINFER ") inside it with `envpin run`, and writes the certificate:\n"
	"image digests, host, driver, GPUs, library versions, every check with its status\n"
	"and figures, and a fingerprint of the smoke test's outputs.\n"
	"Without a GPU the GPU checks are 'skip' (never 'pass').\n\n"
	"      --require-gpu   fail unless the GPU checks ran and passed\n"
	"      --gpus SPEC     GPUs to pass through (default auto: all when the host has a driver)\n"
	"      --engine E      as for envpin run (default auto)\n"
	"  -o, --output CERT   write the certificate there (JSON)\n"
	"      --json          print the certificate on stdout\n"
	"  -q, --quiet         print only the verdict\n\n"
	"exit status: 0 certified, 1 a check failed (or --require-gpu without a GPU),\n"
	"2 usage or unknown image, 3 environment failure.\n";

/* Reads a memfd back from the start, bounded. */
static char *slurp(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	char *buf;
	ssize_t n;
	size_t got = 0;

	if (end < 0 || (size_t)end > OUTPUT_MAX || lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	buf = malloc((size_t)end + 1);
	if (!buf)
		return NULL;
	while (got < (size_t)end && (n = read(fd, buf + got, (size_t)end - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* Runs argv in the image in a child whose stdout/stderr go to memfds, so
 * the engine (which may exec) cannot take over this process. */
static int run_captured(struct ep_store *s, const struct ep_image_loc *img,
			const struct check_opts *co, char *const *argv, size_t argc, char **out,
			size_t *out_len, char **errout, int *status, struct ep_error *err)
{
	int ofd = memfd_create("envpin-check-out", MFD_CLOEXEC);
	int efd = memfd_create("envpin-check-err", MFD_CLOEXEC);
	pid_t pid;
	int ws;
	size_t elen;

	if (ofd < 0 || efd < 0) {
		if (ofd >= 0)
			close(ofd);
		if (efd >= 0)
			close(efd);
		return ep_error_errno(err, EP_EENV, errno, "memfd_create");
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(ofd);
		close(efd);
		return ep_error_errno(err, EP_EENV, errno, "fork");
	}
	if (pid == 0) {
		struct ep_run_opts o;
		struct ep_error e = EP_ERROR_INIT;
		int st = EP_RUN_EFAIL;

		dup2(ofd, 1);
		dup2(efd, 2);
		ep_run_opts_init(&o);
		o.engine = co->engine;
		o.gpus = co->gpus;
		o.cmd = argv;
		o.n_cmd = argc;
		o.tty = 0;
		o.no_workspace = 1;
		/* The programs' own output, not the image's entrypoint, is what we read. */
		o.no_entrypoint = 1;
		if (ep_run(s, img, &o, &st, &e) < 0)
			fprintf(stderr, "envpin: %s\n", e.msg);
		fflush(NULL);
		_exit(st & 0xff);
	}
	while (waitpid(pid, &ws, 0) < 0) {
		if (errno != EINTR) {
			close(ofd);
			close(efd);
			return ep_error_errno(err, EP_EENV, errno, "wait");
		}
	}
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	*out = slurp(ofd, out_len);
	*errout = slurp(efd, &elen);
	close(ofd);
	close(efd);
	if (!*out)
		return ep_error_set(err, EP_EENV, "output of '%s' in the image is too large or unreadable", argv[0]);
	return 0;
}

/* Last line(s) of a program's stderr, for a message naming the cause. */
static char *tail_of(const char *text)
{
	size_t n = text ? strlen(text) : 0;
	const char *p;
	int lines = 0;

	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	p = text ? text + n : NULL;
	while (p && p > text && lines < 3) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (p && *p == '\n')
		p++;
	return p ? strndup(p, (size_t)(text + n - p)) : strdup("(no output)");
}

static json_t *run_program(struct ep_store *s, const struct ep_image_loc *img,
			   const struct check_opts *co, char *const *argv, size_t argc, int *status,
			   char **why, struct ep_error *err)
{
	cleanup_free char *out = NULL, *errout = NULL;
	size_t len = 0;
	json_t *j;

	*why = NULL;
	if (run_captured(s, img, co, argv, argc, &out, &len, &errout, status, err) < 0)
		return NULL;
	j = len ? ep_json_loadb(out, len, OUTPUT_MAX, argv[0], NULL) : NULL;
	if (!j || !json_is_object(j)) {
		cleanup_free char *t = tail_of(errout && *errout ? errout : out);

		json_decref(j);
		*why = ep_asprintf(err, "%s did not run in the image (exit status %d): %s", argv[0], *status,
				   t ? t : "(no output)");
		return NULL;
	}
	/* A program that ran but reported a fatal error says why in "error". */
	if (json_is_string(json_object_get(j, "error")))
		*why = ep_asprintf(err, "%s: %s", argv[0], json_string_value(json_object_get(j, "error")));
	return j;
}

/* Runs both programs in img and builds the certificate; a passing one is
 * kept in the store for `run --certify` to reuse. */
static int check_loc(struct cmd_ctx *ctx, const struct ep_image_loc *img,
		     const struct check_opts *co, const json_t *facts, json_t **cert,
		     struct ep_error *err)
{
	cleanup_json json_t *info = NULL, *sc = NULL, *fi = NULL;
	cleanup_free char *sc_why = NULL, *fi_why = NULL;
	char *sc_argv[] = {SELFCHECK, "--json", NULL};
	char *fi_argv[] = {FITSINFER, "--smoke", SMOKE_DIR, "--json", NULL};
	struct ep_cert_inputs in;
	int sc_status = 0, fi_status = 0;

	/* the native engine refuses a runc without the CVE-2024-21626 fix: say
	 * so once (exit 3), not as two failed checks */
	if (co->engine == EP_ENGINE_NATIVE || (co->engine == EP_ENGINE_AUTO && geteuid() == 0)) {
		struct ep_runc_version rv;
		struct ep_error e = EP_ERROR_INIT;

		if (ep_runc_version(ctx->store.root, &rv, &e) == 0 &&
		    ep_runc_check(ctx->store.root, NULL, err) < 0)
			return -1;
	}
	info = ep_inspect(img->layout, img->digest, err);
	if (!info)
		return -1;
	if (!co->quiet)
		fprintf(stderr, "check: running the self-check in %.19s...\n", img->digest);
	sc = run_program(&ctx->store, img, co, sc_argv, 2, &sc_status, &sc_why, err);
	if (!sc && !sc_why)
		return -1;
	if (!co->quiet)
		fprintf(stderr, "check: running the FITS smoke test...\n");
	fi = run_program(&ctx->store, img, co, fi_argv, 4, &fi_status, &fi_why, err);
	if (!fi && !fi_why)
		return -1;
	memset(&in, 0, sizeof(in));
	in.digest = img->digest;
	in.config_digest = json_string_value(json_object_get(info, "config_digest"));
	in.tag = img->tag;
	in.selfcheck = sc;
	in.selfcheck_error = sc_why;
	in.selfcheck_status = sc_status;
	in.fitsinfer = fi;
	in.fitsinfer_error = fi_why;
	in.fitsinfer_status = fi_status;
	in.gpus = co->gpus ? co->gpus : "auto";
	in.engine = ep_engine_name(co->engine);
	in.require_gpu = co->require_gpu;
	in.host_facts = facts;
	*cert = ep_cert_build(&in, err);
	if (!*cert)
		return -1;
	if (!strcmp(json_string_value(json_object_get(*cert, "result")), "pass")) {
		struct ep_error e = EP_ERROR_INIT;

		/* only a later run --certify misses it */
		if (ep_cert_save_stored(&ctx->store, img->digest, *cert, &e) < 0)
			fprintf(stderr, "envpin: warning: cannot keep the certificate: %s\n",
				e.msg);
	}
	return 0;
}

int check_image(struct cmd_ctx *ctx, const char *image, const struct check_opts *co, json_t **cert,
		struct ep_error *err)
{
	struct ep_image_loc loc;
	struct check_opts c = *co;
	cleanup_json json_t *facts = NULL;
	int rc;

	if (cmd_open_store(ctx, 0, err) < 0 || ep_engine_pick(c.engine, &c.engine, err) < 0)
		return -1;
	facts = ep_run_host_facts(c.gpus, c.engine, err);
	if (!facts || ep_image_locate(&ctx->store, image, &loc, err) < 0)
		return -1;
	rc = check_loc(ctx, &loc, &c, facts, cert, err);
	ep_image_loc_release(&loc);
	return rc;
}

int certify_image(struct cmd_ctx *ctx, const struct ep_image_loc *img, const struct check_opts *co,
		  json_t **cert, struct ep_error *err)
{
	cleanup_json json_t *facts = NULL, *stored = NULL;
	cleanup_free char *why = NULL;
	struct check_opts c = *co;
	int r;

	if (ep_engine_pick(c.engine, &c.engine, err) < 0)
		return -1;
	facts = ep_run_host_facts(c.gpus, c.engine, err);
	if (!facts)
		return -1;
	r = ep_cert_load_stored(&ctx->store, img->digest, &stored, err);
	if (r < 0) {
		/* a damaged certificate is only a reason to certify again */
		fprintf(stderr, "envpin: %s\n", err->msg);
		ep_error_clear(err);
	} else if (r > 0) {
		if (!ep_cert_stale(stored, img->digest, facts, c.require_gpu, &why)) {
			fprintf(stderr,
				"envpin: reusing the certificate of %s (same image, GPUs, driver "
				"and runtime)\n",
				json_string_value(json_object_get(stored, "created")) ?: "?");
			*cert = steal_pointer(&stored);
			return 0;
		}
		fprintf(stderr, "envpin: certifying again: %s\n", why ? why : "the host changed");
	}
	return check_loc(ctx, img, &c, facts, cert, err);
}

void print_cert_scope(FILE *f, const json_t *cert)
{
	const json_t *sum = json_object_get(cert, "summary");
	long long ok = json_integer_value(json_object_get(sum, "gpu_passed"));
	long long skip = json_integer_value(json_object_get(sum, "gpu_skipped"));
	long long total = json_integer_value(json_object_get(sum, "gpu_total"));
	const char *gpus = json_string_value(json_object_get(json_object_get(cert, "run"), "gpus"));
	const char *why = "no GPU";

	if (!json_object_get(sum, "gpu_total")) /* a certificate from before the field */
		total = ok + skip;
	if (gpus && !strcmp(gpus, "none") && json_array_size(json_object_get(cert, "gpus")) == 0)
		why = "no GPU passed through";
	if (ok == 0)
		fprintf(f, " (CPU only: 0 of %lld GPU checks run — %s)", total, why);
	else if (ok < total)
		fprintf(f, " (CPU and part of the GPU: %lld of %lld GPU checks passed, %lld skipped)",
			ok, total, skip);
	else
		fprintf(f, " (CPU and GPU: %lld of %lld GPU checks passed)", ok, total);
}

void print_cert_summary(json_t *cert, int quiet)
{
	json_t *c;
	size_t i;

	if (!quiet) {
		printf("image   %s\n", json_string_value(json_object_get(json_object_get(cert, "image"), "digest")));
		printf("host    %s, kernel %s\n",
		       json_string_value(json_object_get(json_object_get(cert, "host"), "os")) ?: "?",
		       json_string_value(json_object_get(json_object_get(cert, "host"), "kernel")) ?: "?");
		printf("driver  %s\n",
		       json_string_value(json_object_get(json_object_get(cert, "driver"), "version")) ?: "(none)");
		json_array_foreach(json_object_get(cert, "checks"), i, c) {
			const char *st = json_string_value(json_object_get(c, "status"));
			const char *d = json_string_value(json_object_get(c, "detail"));

			printf("  %-4s  %-10s %-28s %s\n", st ? st : "?",
			       json_string_value(json_object_get(c, "program")) ?: "",
			       json_string_value(json_object_get(c, "name")) ?: "",
			       st && strcmp(st, "pass") && d ? d : "");
		}
	}
	printf("check: %s", !strcmp(json_string_value(json_object_get(cert, "result")), "pass") ? "PASS" : "FAIL");
	json_array_foreach(json_object_get(cert, "reasons"), i, c)
		printf("%s%s", i ? "; " : " (", json_string_value(json_object_get(c, "reason")));
	if (json_array_size(json_object_get(cert, "reasons")))
		printf(")");
	print_cert_scope(stdout, cert);
	printf(" — %lld failed\n",
	       (long long)json_integer_value(json_object_get(json_object_get(cert, "summary"), "failed")));
}

int write_cert(const char *path, json_t *cert, struct ep_error *err)
{
	cleanup_free char *text = ep_json_pretty(cert, err);

	if (!text)
		return -1;
	return ep_write_file_atomic(path, text, strlen(text), 0644, err);
}

int parse_check_opt(int c, const char *arg, struct check_opts *co, struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct runopts a;
	int r;

	runopts_init(&a);
	a.o.gpus = co->gpus;
	a.o.engine = co->engine;
	a.require_gpu = co->require_gpu;
	r = runopts_parse(&a, RUNOPT_CHECK, c, arg, &err);
	co->gpus = a.o.gpus;
	co->engine = a.o.engine;
	co->require_gpu = a.require_gpu;
	runopts_release(&a);
	return r < 0 ? runopts_report(ctx, r, &err) : r;
}

int cmd_check(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option own[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct check_opts co = {0};
	struct runopts_getopt g;
	cleanup_json json_t *cert = NULL;
	const char *out = NULL;
	int c, json = 0, r = 0;

	if (runopts_getopt_init(&g, RUNOPT_CHECK, "o:qh", own, &err) < 0)
		return cmd_fail(&err);
	optind = 1;
	while (!r && (c = getopt_long(argc, argv, g.shortopts, g.longopts, NULL)) != -1) {
		r = parse_check_opt(c, optarg, &co, ctx);
		if (r != 1)
			continue;
		r = 0;
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'q':
			co.quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			r = CMD_HELP_DONE;
			break;
		default:
			r = cmd_usage_error(ctx, "unknown option");
		}
	}
	runopts_getopt_release(&g);
	if (r)
		return r == CMD_HELP_DONE ? cmd_finish(0) : r;
	if (optind + 1 != argc)
		return cmd_usage_error(ctx, "name exactly one IMAGE");
	if (json)
		co.quiet = 1;
	if (check_image(ctx, argv[optind], &co, &cert, &err) < 0) {
		int rc = cmd_fail(&err);

		if (err.code == EP_EENV)
			cmd_doctor_hint(ctx);
		return rc;
	}
	if (out && write_cert(out, cert, &err) < 0)
		return cmd_fail(&err);
	if (json) {
		int rc = cmd_print_json(cert);

		if (rc)
			return rc;
	} else {
		print_cert_summary(cert, co.quiet);
		if (out)
			printf("certificate written to %s\n", out);
	}
	return cmd_finish(strcmp(json_string_value(json_object_get(cert, "result")), "pass") ? EXIT_MISMATCH : 0);
}
