/* cmd/runopts.c - the one table and parser of the options run, lab and
 * check share (cmd/runopts.h). */
#include <stdlib.h>
#include <string.h>

#include "runopts.h"

#define ALL (RUNOPT_RUN | RUNOPT_LAB | RUNOPT_CHECK)
#define RUN_LAB (RUNOPT_RUN | RUNOPT_LAB)

/* Every shared option once: its long form, its letter as getopt's short
 * string spells it, and the commands that take it.  lab sets the user,
 * command, terminal and entrypoint itself and stays in the foreground. */
static const struct {
	struct option lo;
	const char *letter;
	unsigned cmds;
} table[] = {
    {{"gpus", required_argument, NULL, RUNOPT_GPUS}, NULL, ALL},
    {{"engine", required_argument, NULL, RUNOPT_ENGINE}, NULL, ALL},
    {{"require-gpu", no_argument, NULL, RUNOPT_REQUIRE_GPU}, NULL, ALL},
    {{"certify", no_argument, NULL, RUNOPT_CERTIFY}, NULL, RUN_LAB},
    {{"volume", required_argument, NULL, 'v'}, "v:", RUN_LAB},
    {{"env", required_argument, NULL, 'e'}, "e:", RUN_LAB},
    {{"name", required_argument, NULL, RUNOPT_NAME}, NULL, RUN_LAB},
    {{"workdir", required_argument, NULL, 'w'}, "w:", RUNOPT_RUN},
    {{"user", required_argument, NULL, 'u'}, "u:", RUNOPT_RUN},
    {{"publish", required_argument, NULL, 'p'}, "p:", RUNOPT_RUN},
    {{"rm", no_argument, NULL, RUNOPT_RM}, NULL, RUNOPT_RUN},
    {{"keep", no_argument, NULL, RUNOPT_KEEP}, NULL, RUNOPT_RUN},
    {{"tty", optional_argument, NULL, 't'}, "t", RUNOPT_RUN},
    {{"interactive", no_argument, NULL, 'i'}, "i", RUNOPT_RUN},
    {{"detach", no_argument, NULL, 'd'}, "d", RUNOPT_RUN},
    {{"no-workspace", no_argument, NULL, RUNOPT_NO_WORKSPACE}, NULL, RUNOPT_RUN},
    {{"entrypoint-none", no_argument, NULL, RUNOPT_NO_ENTRYPOINT}, NULL, RUNOPT_RUN},
};

#define N_TABLE (sizeof(table) / sizeof(table[0]))

void runopts_init(struct runopts *a)
{
	memset(a, 0, sizeof(*a));
	ep_run_opts_init(&a->o);
}

void runopts_release(struct runopts *a)
{
	for (size_t i = 0; i < a->o.n_volumes; i++)
		ep_volume_release(&a->vols[i]);
	free(a->vols);
	free(a->envs);
	free(a->ports);
	a->vols = NULL;
	a->envs = a->ports = NULL;
	a->o.volumes = NULL;
	a->o.env = a->o.ports = NULL;
	a->o.n_volumes = a->o.n_env = a->o.n_ports = 0;
}

int runopts_getopt_init(struct runopts_getopt *g, unsigned cmd, const char *own_short,
			const struct option *own_long, struct ep_error *err)
{
	size_t n_own = 0, n = 0, len = 0;

	while (own_long[n_own].name)
		n_own++;
	g->longopts = calloc(N_TABLE + n_own + 1, sizeof(*g->longopts));
	if (!g->longopts)
		return ep_error_oom(err);
	if (*own_short == '+')
		g->shortopts[len++] = *own_short++;
	for (size_t i = 0; i < N_TABLE; i++) {
		if (!(table[i].cmds & cmd))
			continue;
		g->longopts[n++] = table[i].lo;
		for (const char *l = table[i].letter; l && *l; l++)
			g->shortopts[len++] = *l;
	}
	memcpy(g->longopts + n, own_long, n_own * sizeof(*own_long));
	if (len + strlen(own_short) >= sizeof(g->shortopts)) {
		runopts_getopt_release(g);
		return ep_error_set(err, EP_EENV, "too many short options");
	}
	strcpy(g->shortopts + len, own_short);
	return 0;
}

void runopts_getopt_release(struct runopts_getopt *g)
{
	free(g->longopts);
	g->longopts = NULL;
}

int runopts_push_volume(struct runopts *a, const char *src, const char *dst, int ro)
{
	struct ep_volume *nv = realloc(a->vols, (a->o.n_volumes + 1) * sizeof(*nv));
	struct ep_volume *v;

	if (!nv)
		return -1;
	a->vols = nv;
	a->o.volumes = nv;
	v = &nv[a->o.n_volumes];
	v->src = strdup(src);
	v->dst = strdup(dst);
	v->ro = ro;
	if (!v->src || !v->dst) {
		free(v->src);
		free(v->dst);
		return -1;
	}
	a->o.n_volumes++;
	return 0;
}

static int push_str(const char ***v, size_t *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -1;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

int runopts_push_env(struct runopts *a, const char *kv)
{
	if (push_str(&a->envs, &a->o.n_env, kv) < 0)
		return -1;
	a->o.env = a->envs;
	return 0;
}

/* -v: parsed here, once; SRC must exist now. */
static int add_volume(struct runopts *a, const char *spec, struct ep_error *err)
{
	struct ep_volume *nv = realloc(a->vols, (a->o.n_volumes + 1) * sizeof(*nv));

	if (!nv)
		return ep_error_oom(err);
	a->vols = nv;
	a->o.volumes = nv;
	if (ep_runtime_volume(spec, &nv[a->o.n_volumes], err) < 0)
		return -1;
	a->o.n_volumes++;
	return 0;
}

/* -t/--tty[=yes|no|auto]; docker's -ti reaches here as --tty=i. */
static int parse_tty(struct ep_run_opts *o, const char *arg, struct ep_error *err)
{
	if (arg && !strcmp(arg, "i"))
		o->interactive = 1;
	if (!arg || !strcmp(arg, "yes") || !strcmp(arg, "true") || !strcmp(arg, "i"))
		o->tty = 1;
	else if (!strcmp(arg, "no") || !strcmp(arg, "false"))
		o->tty = 0;
	else if (!strcmp(arg, "auto"))
		o->tty = -1;
	else {
		ep_error_set(err, EP_EINVAL, "--tty: '%s' is not yes, no or auto", arg);
		return RUNOPT_USAGE;
	}
	return 0;
}

/* Whether c is one of the options cmd takes from the table. */
static int takes(unsigned cmd, int c)
{
	for (size_t i = 0; i < N_TABLE; i++)
		if (table[i].lo.val == c)
			return (table[i].cmds & cmd) != 0;
	return 0;
}

int runopts_parse(struct runopts *a, unsigned cmd, int c, const char *arg, struct ep_error *err)
{
	struct ep_run_opts *o = &a->o;
	int e;

	if (!takes(cmd, c))
		return 1;
	switch (c) {
	case RUNOPT_GPUS:
		o->gpus = arg;
		return 0;
	case RUNOPT_ENGINE:
		e = ep_engine_parse(arg);
		if (e < 0) {
			ep_error_set(err, EP_EINVAL,
				     "--engine: '%s' is not native, docker, podman or auto", arg);
			return RUNOPT_USAGE;
		}
		o->engine = (enum ep_engine)e;
		return 0;
	case RUNOPT_REQUIRE_GPU:
		a->require_gpu = 1;
		return 0;
	case RUNOPT_CERTIFY:
		a->certify = 1;
		return 0;
	case 'v':
		return add_volume(a, arg, err);
	case 'e':
		if (arg[0] == '=' || !arg[0])
			return ep_error_set(err, EP_EINVAL, "environment entry '%s' has no name",
					    arg);
		return runopts_push_env(a, arg) < 0 ? ep_error_oom(err) : 0;
	case RUNOPT_NAME:
		o->name = arg;
		return 0;
	case 'w':
		if (ep_runtime_check_cpath(arg, "working dir", err) < 0)
			return -1;
		o->workdir = arg;
		return 0;
	case 'u':
		o->user = arg;
		return 0;
	case 'p':
		if (push_str(&a->ports, &o->n_ports, arg) < 0)
			return ep_error_oom(err);
		o->ports = a->ports;
		return 0;
	case RUNOPT_RM:
		o->keep = 0;
		return 0;
	case RUNOPT_KEEP:
		o->keep = 1;
		return 0;
	case 't':
		return parse_tty(o, arg, err);
	case 'i':
		o->interactive = 1;
		return 0;
	case 'd':
		o->detach = 1;
		return 0;
	case RUNOPT_NO_WORKSPACE:
		o->no_workspace = 1;
		return 0;
	case RUNOPT_NO_ENTRYPOINT:
		o->no_entrypoint = 1;
		return 0;
	}
	return 1;
}

int runopts_report(struct cmd_ctx *ctx, int r, const struct ep_error *err)
{
	if (r == RUNOPT_USAGE)
		return cmd_usage_error(ctx, "%s", err->msg);
	return cmd_fail(err);
}
