/* cmd/cmd.h - what the command files share: the context set up centrally by
 * cmd/envpin.c from the command table, output helpers and exit codes.
 * Only cmd/ prints or chooses exit codes. */
#ifndef EP_CMD_H
#define EP_CMD_H

#include <jansson.h>
#include <stdio.h>

#include "error.h"
#include "store.h"

/* Exit codes (design section 3). */
enum {
	EXIT_OK = 0,
	EXIT_MISMATCH = 1, /* verification/check found a problem */
	EXIT_USAGE = 2,    /* usage error or invalid input */
	EXIT_ENV = 3,      /* environment/runtime failure */
	EXIT_SKIP = 77,
};

/* The command table's flags: cmd/envpin.c opens the store before the
 * command runs (not for --help), so a command finds ctx->store open. */
enum {
	CMD_NEEDS_STORE = 1,	 /* the store must exist */
	CMD_CREATE_STORE = 2,	 /* create the store when it is missing */
	CMD_OPTIONAL_STORE = 4,	 /* open it when there is one (an OCI layout path works
				    without); ctx->store_open says */
	CMD_EXCLUSIVE_STORE = 8, /* the store, locked against every other envpin (gc) */
};

struct cmd_ctx {
	const char *name;  /* command name */
	char *store_root;  /* --store / $ENVPIN_STORE / default */
	struct ep_store store;
	int store_open;
};

/* Returned by option parsers when --help was printed. */
#define CMD_HELP_DONE (-1)

typedef int (*cmd_fn)(int argc, char **argv, struct cmd_ctx *ctx);

/* Prints "envpin: MSG" to stderr and returns the exit code for err->code. */
int cmd_fail(const struct ep_error *err);
/* Prints "envpin CMD: MSG" + a hint to run --help; returns EXIT_USAGE. */
int cmd_usage_error(const struct cmd_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints j as indented JSON with sorted keys; returns 0, or the exit code
 * of the failure it reported. */
int cmd_print_json(const json_t *j);
/* fflush(stdout) and check ferror: a failed write of results is a failure. */
int cmd_finish(int rc);
/* Opens the store (a no-op when the table's flags opened it already);
 * for commands that need it only for some arguments. */
int cmd_open_store(struct cmd_ctx *ctx, int create, struct ep_error *err);
/* Progress lines on stderr (only when stderr is a terminal or ENVPIN_PROGRESS=1). */
void cmd_progress(void *unused, const char *what, unsigned long long done,
		  unsigned long long total);

int cmd_build(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_lock(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_verify(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_export(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_inspect(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_images(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_gc(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_rmi(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_vendor(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_unpack(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_dockerfile(int argc, char **argv, struct cmd_ctx *ctx);
/* without root and on clusters (docs/rootless.md, slurm.md, k8s.md) */
int cmd_doctor(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_k8s(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_slurm(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_bundle(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_certificates(int argc, char **argv, struct cmd_ctx *ctx);
/* After a failed start: the failed preconditions (envpin doctor --quick)
 * on stderr, one line each with its fix. */
void cmd_doctor_hint(struct cmd_ctx *ctx);
int cmd_pull(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_push(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_login(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_check(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_version(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_run(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_key(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_sign(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_sbom(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_provenance(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_attach_artifact(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_attachments(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_lab(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_ps(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_logs(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_attach_container(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_attach(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_stop(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_rm(int argc, char **argv, struct cmd_ctx *ctx);

#endif
