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

/* Appends the volume SRC:DST (SRC an absolute host path, taken as is). */
int run_volume_push(struct ep_volume **v, size_t *n, const char *src, const char *dst, int ro);

#endif
