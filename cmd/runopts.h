/* cmd/runopts.h - the options of the commands that run an image: run, lab
 * and check (verify --certify through parse_check_opt).  One table says
 * which command takes which option and one parser fills struct ep_run_opts,
 * so an option added to run is a choice made for lab and check in the same
 * line, not a copy to remember. */
#ifndef EP_CMD_RUNOPTS_H
#define EP_CMD_RUNOPTS_H

#include <getopt.h>
#include <stddef.h>

#include "cmd.h"
#include "error.h"
#include "runtime.h"

/* The commands an option belongs to (a mask in the table). */
enum { RUNOPT_RUN = 1, RUNOPT_LAB = 2, RUNOPT_CHECK = 4 };

/* getopt_long values of the shared options that have no letter; a
 * command's own options use values from 256 up to 299. */
enum {
	RUNOPT_GPUS = 300,
	RUNOPT_ENGINE,
	RUNOPT_REQUIRE_GPU,
	RUNOPT_CERTIFY,
	RUNOPT_NAME,
	RUNOPT_RM,
	RUNOPT_KEEP,
	RUNOPT_NO_WORKSPACE,
	RUNOPT_NO_ENTRYPOINT,
};

/* runopts_parse's return for a usage error: print it as cmd_usage_error. */
#define RUNOPT_USAGE (-2)

/* What the shared options fill.  o's volumes, env and ports point into the
 * vectors below, which this struct owns (runopts_release). */
struct runopts {
	struct ep_run_opts o;
	struct ep_volume *vols;
	const char **envs;
	const char **ports;
	int certify;	 /* --certify */
	int require_gpu; /* --require-gpu */
};

/* ep_run_opts_init and empty vectors. */
void runopts_init(struct runopts *a);
void runopts_release(struct runopts *a);

/* getopt_long's tables for one command: the shared options its mask names,
 * then its own.  own_short may begin with '+' (options end at the first
 * operand); own_long ends with a zero entry. */
struct runopts_getopt {
	char shortopts[40];
	struct option *longopts; /* owned */
};
int runopts_getopt_init(struct runopts_getopt *g, unsigned cmd, const char *own_short,
			const struct option *own_long, struct ep_error *err);
void runopts_getopt_release(struct runopts_getopt *g);

/* Takes one option of command cmd: c as getopt_long returned it, arg its
 * optarg.  0 taken, 1 not a shared option of cmd (the command's own), -1 with *err filled
 * (a bad value such as a volume whose source is missing, or out of memory:
 * cmd_fail's form), RUNOPT_USAGE with *err filled (a value that is not one
 * of the choices: cmd_usage_error's form). */
int runopts_parse(struct runopts *a, unsigned cmd, int c, const char *arg, struct ep_error *err);

/* Prints a runopts_parse failure r in its form; returns the exit status
 * that form has (run overrides it with its own 125). */
int runopts_report(struct cmd_ctx *ctx, int r, const struct ep_error *err);

/* Appends a volume SRC:DST (SRC an absolute host path, taken as is) or an
 * environment entry after parsing (lab's home, its HOME and USER; run
 * --ssh's keys); a->o follows.  0, or -1 out of memory. */
int runopts_push_volume(struct runopts *a, const char *src, const char *dst, int ro);
int runopts_push_env(struct runopts *a, const char *kv);

#endif
