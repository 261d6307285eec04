/* cmd/check.h - the certification steps shared by check, verify --certify
 * and run --certify. */
#ifndef EP_CMD_CHECK_H
#define EP_CMD_CHECK_H

#include <jansson.h>
#include <stdio.h>

#include "cmd.h"
#include "image.h"
#include "runopts.h"
#include "runtime.h"

/* verify's values for the options it shares with check (cmd/runopts.h). */
enum {
	CHECK_O_GPUS = RUNOPT_GPUS,
	CHECK_O_ENGINE = RUNOPT_ENGINE,
	CHECK_O_REQUIRE_GPU = RUNOPT_REQUIRE_GPU
};

struct check_opts {
	const char *gpus;       /* NULL: auto */
	enum ep_engine engine;
	int require_gpu;
	int quiet;
};

/* Runs both programs inside image and builds the certificate (*cert new);
 * a passing one is kept in the store. */
int check_image(struct cmd_ctx *ctx, const char *image, const struct check_opts *co, json_t **cert,
		struct ep_error *err);
/* For run --certify: the stored certificate of img when it still holds on
 * this host (same GPUs, driver, driver files, runtime; said on stderr),
 * else a new check as check_image (*cert new). */
int certify_image(struct cmd_ctx *ctx, const struct ep_image_loc *img, const struct check_opts *co,
		  json_t **cert, struct ep_error *err);
void print_cert_summary(json_t *cert, int quiet);
/* " (CPU only: 0 of 13 GPU checks run — no GPU)" and the like: what a
 * passing certificate covers, from its summary. */
void print_cert_scope(FILE *f, const json_t *cert);
int write_cert(const char *path, json_t *cert, struct ep_error *err);
/* Handles --gpus, --engine, --require-gpu through the shared parser
 * (cmd/runopts.h); 0 handled, 1 not ours, EXIT_USAGE after a message. */
int parse_check_opt(int c, const char *arg, struct check_opts *co, struct cmd_ctx *ctx);

#endif
