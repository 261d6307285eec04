/* cmd/containers.c - the detached containers of `run --detach`: ps, logs,
 * attach, stop, rm (records: lib/containers.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "containers.h"
#include "util.h"

static const char ps_usage[] =
    "usage: envpin ps [--all] [--json]\n\n"
    "Lists the containers started with `envpin run --detach`: running ones, or\n"
    "with --all also those that ended, with their exit status.\n\n"
    "  -a, --all   include exited containers\n"
    "      --json  a JSON array: name, image, digest, engine, command, created,\n"
    "              status (created|running|exited|dead), exit_code, finished\n";

static const char logs_usage[] =
    "usage: envpin logs [-f] NAME\n\n"
    "Prints what the detached container NAME wrote (stdout and stderr).\n\n"
    "  -f, --follow  keep printing new output until the container ends\n";

static const char attach_usage[] =
    "usage: envpin attach NAME\n\n"
    "Follows the output of the running container NAME from now on, until it\n"
    "ends.  Ctrl-C leaves it running (the container's stdin is not attached:\n"
    "for an interactive session use `run --ssh` and tmux, docs/run.md).\n";

static const char stop_usage[] =
    "usage: envpin stop [-t SECONDS] NAME...\n\n"
    "Sends SIGTERM to each container's process 1, then SIGKILL after SECONDS\n"
    "(default 10), and waits until it is gone.\n";

static const char rm_usage[] = "usage: envpin rm [-f] NAME...\n\n"
			       "Removes the record (and log) of ended containers.\n\n"
			       "  -f, --force  stop a running container first\n";

static const char *status_name(enum ep_container_status st)
{
	switch (st) {
	case EP_CONTAINER_RUNNING:
		return "running";
	case EP_CONTAINER_EXITED:
		return "exited";
	case EP_CONTAINER_DEAD:
		return "dead";
	default:
		return "created";
	}
}

/* "3 minutes" and the like, as docker ps shows ages. */
static void ago(char *buf, size_t n, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(buf, n, "%lld second%s", secs, secs == 1 ? "" : "s");
	else if (secs < 3600)
		snprintf(buf, n, "%lld minute%s", secs / 60, secs / 60 == 1 ? "" : "s");
	else if (secs < 172800)
		snprintf(buf, n, "%lld hour%s", secs / 3600, secs / 3600 == 1 ? "" : "s");
	else
		snprintf(buf, n, "%lld days", secs / 86400);
}

/* Appends s to buf (n bytes): control characters (a script's newlines) as
 * spaces, runs of spaces as one.  -1 when buf is full. */
static int append_flat(char *buf, size_t n, size_t *len, const char *s)
{
	for (; s && *s; s++) {
		char ch = (unsigned char)*s < 0x20 ? ' ' : *s;

		if (ch == ' ' && *len && buf[*len - 1] == ' ')
			continue;
		if (*len + 1 >= n)
			return -1;
		buf[(*len)++] = ch;
		buf[*len] = '\0';
	}
	return 0;
}

/* The command on one line, cut with "..." when longer than n - 1 bytes. */
static void command_text(const json_t *cmd, char *buf, size_t n)
{
	size_t i, len = 0;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach (cmd, i, v) {
		if ((i && append_flat(buf, n, &len, " ") < 0) ||
		    append_flat(buf, n, &len, json_string_value(v)) < 0) {
			if (n > 4)
				strcpy(buf + n - 4, "...");
			return;
		}
	}
}

static int parse_simple(int argc, char **argv, struct cmd_ctx *ctx, const char *usage,
			const char *shorts, const struct option *opts, int (*on)(int c, void *),
			void *arg)
{
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return CMD_HELP_DONE;
		}
		if (c == '?' || on(c, arg) < 0)
			return cmd_usage_error(ctx, "bad option");
	}
	return 0;
}

struct ps_opts {
	int all, json;
};

static int ps_opt(int c, void *arg)
{
	struct ps_opts *p = arg;

	if (c == 'a')
		p->all = 1;
	else if (c == 'j')
		p->json = 1;
	else
		return -1;
	return 0;
}

int cmd_ps(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct ps_opts p = {0};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_container *v = NULL;
	cleanup_json json_t *arr = NULL;
	size_t n = 0;
	int rc;
	long long now = (long long)time(NULL);

	rc = parse_simple(argc, argv, ctx, ps_usage, "ah", opts, ps_opt, &p);
	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (optind < argc)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (ep_container_list(&ctx->store, &v, &n, &err) < 0)
		return cmd_fail(&err);
	arr = json_array();
	if (!p.json)
		printf("%-22s %-20s %-26s %-14s %s\n", "NAME", "IMAGE", "STATUS", "CREATED",
		       "COMMAND");
	for (size_t i = 0; i < n; i++) {
		const struct ep_container *c = &v[i];
		char st[96], created[48], cmd[72], age[32];

		if (!p.all && c->status != EP_CONTAINER_RUNNING &&
		    c->status != EP_CONTAINER_CREATED)
			continue;
		if (p.json) {
			json_t *o =
			    json_pack("{s:s,s:s,s:s,s:s,s:O,s:I,s:s}", "name", c->name, "image",
				      c->image, "digest", c->digest, "engine", c->engine, "command",
				      c->command ?: json_null(), "created", (json_int_t)c->created,
				      "status", status_name(c->status));
			if (o && c->status == EP_CONTAINER_EXITED) {
				json_object_set_new(o, "exit_code", json_integer(c->exit_code));
				json_object_set_new(o, "finished", json_integer(c->finished));
			}
			if (!o || json_array_append_new(arr, o) < 0) {
				ep_error_oom(&err);
				break;
			}
			continue;
		}
		ago(age, sizeof(age), now - c->created);
		snprintf(created, sizeof(created), "%s ago", age);
		switch (c->status) {
		case EP_CONTAINER_RUNNING:
			snprintf(st, sizeof(st), "Up %s", age);
			break;
		case EP_CONTAINER_EXITED:
			if (c->finished) {
				ago(age, sizeof(age), now - c->finished);
				snprintf(st, sizeof(st), "Exited (%d) %s ago", c->exit_code, age);
			} else {
				snprintf(st, sizeof(st), "Exited (%d)", c->exit_code);
			}
			break;
		case EP_CONTAINER_DEAD:
			snprintf(st, sizeof(st), "Dead (no exit status)");
			break;
		default:
			snprintf(st, sizeof(st), "Created");
		}
		command_text(c->command, cmd, sizeof(cmd));
		printf("%-22s %-20.20s %-26s %-14s %s\n", c->name, c->image, st, created, cmd);
	}
	for (size_t i = 0; i < n; i++)
		ep_container_release(&v[i]);
	free(v);
	if (err.msg[0])
		return cmd_fail(&err);
	if (p.json && cmd_print_json(arr))
		return EXIT_ENV;
	return cmd_finish(0);
}

/* Copies the log from *off to stdout; returns the bytes copied or -1. */
static ssize_t copy_from(int fd, off_t *off)
{
	char buf[65536];
	ssize_t n, total = 0;

	while ((n = pread(fd, buf, sizeof(buf), *off)) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -1;
		*off += n;
		total += n;
	}
	fflush(stdout);
	return n < 0 ? -1 : total;
}

static volatile sig_atomic_t g_leave;

static void on_leave(int sig)
{
	(void)sig;
	g_leave = 1;
}

/* Prints the log of name from its start (or its end: from_end) and, when
 * follow, new output until the container ends (or Ctrl-C). */
static int show_log(struct cmd_ctx *ctx, const char *name, int follow, int from_end)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_container c;
	cleanup_free char *path = NULL;
	cleanup_close int fd = -1;
	off_t off = 0;

	if (ep_container_get(&ctx->store, name, &c, &err) < 0)
		return cmd_fail(&err);
	if (strcmp(c.engine, "native")) {
		char *argv[] = {c.engine, "logs", follow ? "--follow" : c.name, c.name, NULL};

		if (!follow)
			argv[3] = NULL;
		fflush(stdout);
		execvp(argv[0], argv);
		fprintf(stderr, "envpin: exec '%s': %s\n", argv[0], strerror(errno));
		ep_container_release(&c);
		return EXIT_ENV;
	}
	ep_container_release(&c);
	path = ep_container_log_path(&ctx->store, name, &err);
	if (!path)
		return cmd_fail(&err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ep_error_errno(&err, EP_EENV, errno, "open '%s'", path);
		return cmd_fail(&err);
	}
	if (from_end)
		off = lseek(fd, 0, SEEK_END);
	if (off < 0 || copy_from(fd, &off) < 0)
		return cmd_finish(EXIT_ENV);
	if (!follow)
		return cmd_finish(0);
	signal(SIGINT, on_leave);
	signal(SIGTERM, on_leave);
	while (!g_leave) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int ended;

		if (ep_container_get(&ctx->store, name, &c, &err) < 0)
			return cmd_fail(&err);
		ended = c.status != EP_CONTAINER_RUNNING && c.status != EP_CONTAINER_CREATED;
		ep_container_release(&c);
		/* what it wrote before it ended is printed before leaving */
		if (copy_from(fd, &off) < 0)
			return cmd_finish(EXIT_ENV);
		if (ended)
			break;
		nanosleep(&ts, NULL);
	}
	return cmd_finish(0);
}

static int follow_opt(int c, void *arg)
{
	if (c != 'f')
		return -1;
	*(int *)arg = 1;
	return 0;
}

int cmd_logs(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int follow = 0, rc;

	rc = parse_simple(argc, argv, ctx, logs_usage, "fh", opts, follow_opt, &follow);
	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (argc - optind != 1)
		return cmd_usage_error(ctx, "name one container");
	return show_log(ctx, argv[optind], follow, 0);
}

static int no_opt(int c, void *arg)
{
	(void)c;
	(void)arg;
	return -1;
}

int cmd_attach_container(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_container c;
	int rc;

	rc = parse_simple(argc, argv, ctx, attach_usage, "h", opts, no_opt, NULL);
	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	if (argc - optind != 1)
		return cmd_usage_error(ctx, "name one container");
	if (ep_container_get(&ctx->store, argv[optind], &c, &err) < 0)
		return cmd_fail(&err);
	rc = c.status == EP_CONTAINER_RUNNING || c.status == EP_CONTAINER_CREATED;
	ep_container_release(&c);
	if (!rc) {
		fprintf(stderr, "envpin: container '%s' is not running (envpin logs %s)\n",
			argv[optind], argv[optind]);
		return EXIT_MISMATCH;
	}
	return show_log(ctx, argv[optind], 1, 1);
}

static int time_opt(int c, void *arg)
{
	char *end;
	long v;

	if (c != 't')
		return -1;
	errno = 0;
	v = strtol(optarg, &end, 10);
	if (errno || *end || end == optarg || v < 0 || v > 86400)
		return -1;
	*(int *)arg = (int)v;
	return 0;
}

/* stop and rm: op on each container named after the options, its name
 * printed when done; the last failure's exit code. */
static int each_container(int argc, char **argv, struct cmd_ctx *ctx,
			  int (*op)(struct ep_store *, const char *, int, struct ep_error *),
			  int arg)
{
	int ret = 0;

	if (optind >= argc)
		return cmd_usage_error(ctx, "name a container");
	for (int i = optind; i < argc; i++) {
		struct ep_error err = EP_ERROR_INIT;

		if (op(&ctx->store, argv[i], arg, &err) < 0)
			ret = cmd_fail(&err);
		else
			printf("%s\n", argv[i]);
	}
	return cmd_finish(ret);
}

int cmd_stop(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {{"time", required_argument, NULL, 't'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int secs = 10, rc;

	rc = parse_simple(argc, argv, ctx, stop_usage, "t:h", opts, time_opt, &secs);
	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	return each_container(argc, argv, ctx, ep_container_stop, secs);
}

int cmd_rm(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int force = 0, rc;

	rc = parse_simple(argc, argv, ctx, rm_usage, "fh", opts, follow_opt, &force);
	if (rc)
		return rc == CMD_HELP_DONE ? cmd_finish(0) : rc;
	return each_container(argc, argv, ctx, ep_container_remove, force);
}
