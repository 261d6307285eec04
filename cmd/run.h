/* cmd/run.h - what `run` shares with `lab`: --certify. */
#ifndef EP_CMD_RUN_H
#define EP_CMD_RUN_H

#include "cmd.h"
#include "image.h"
#include "runtime.h"

/* --certify: the check (or a stored certificate still valid here) on the
 * image that will run, with these GPUs and engine.  0 when it passed,
 * else the exit status (a report on stderr). */
int run_certify(struct cmd_ctx *ctx, const struct ep_image_loc *loc, const char *name,
		const char *gpus, enum ep_engine engine, int require_gpu);

#endif
