/* runtime/selfcheck/report.c - see report.h. */
#include "report.h"

#include <math.h>
#include <string.h>

void sc_report_init(struct sc_report *r)
{
	memset(r, 0, sizeof *r);
}

struct sc_check *sc_check_add(struct sc_report *r, const char *name)
{
	struct sc_check *c;

	if (r->n_checks >= SC_MAX_CHECKS)
		return NULL;
	c = &r->checks[r->n_checks++];
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->status = SC_SKIP;
	return c;
}

void sc_check_set(struct sc_check *c, enum sc_status st, const char *fmt, ...)
{
	va_list ap;

	if (!c)
		return;
	c->status = st;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof c->detail, fmt, ap);
	va_end(ap);
}

static struct sc_figure *fig_slot(struct sc_check *c, const char *key)
{
	struct sc_figure *g;

	if (!c)
		return NULL;
	for (int i = 0; i < c->n_figs; i++)
		if (strcmp(c->figs[i].key, key) == 0)
			return &c->figs[i];
	if (c->n_figs >= SC_MAX_FIGURES)
		return NULL;
	g = &c->figs[c->n_figs++];
	memset(g, 0, sizeof *g);
	snprintf(g->key, sizeof g->key, "%s", key);
	return g;
}

void sc_fig_str(struct sc_check *c, const char *key, const char *fmt, ...)
{
	struct sc_figure *g = fig_slot(c, key);
	va_list ap;

	if (!g)
		return;
	g->kind = SC_STR;
	va_start(ap, fmt);
	vsnprintf(g->str, sizeof g->str, fmt, ap);
	va_end(ap);
}

void sc_fig_num(struct sc_check *c, const char *key, double v)
{
	struct sc_figure *g = fig_slot(c, key);

	if (!g)
		return;
	g->kind = SC_NUM;
	g->num = v;
}

void sc_fig_int(struct sc_check *c, const char *key, long long v)
{
	struct sc_figure *g = fig_slot(c, key);

	if (!g)
		return;
	g->kind = SC_INT;
	g->ival = v;
}

void sc_fig_bool(struct sc_check *c, const char *key, int v)
{
	struct sc_figure *g = fig_slot(c, key);

	if (!g)
		return;
	g->kind = SC_BOOL;
	g->ival = v != 0;
}

struct sc_device *sc_device_add(struct sc_report *r)
{
	struct sc_device *d;

	if (r->n_devices >= SC_MAX_DEVICES)
		return NULL;
	d = &r->devices[r->n_devices];
	memset(d, 0, sizeof *d);
	d->index = r->n_devices++;
	return d;
}

const char *sc_status_name(enum sc_status st)
{
	switch (st) {
	case SC_PASS:
		return "pass";
	case SC_FAIL:
		return "fail";
	default:
		return "skip";
	}
}

int sc_report_failed(const struct sc_report *r)
{
	for (int i = 0; i < r->n_checks; i++)
		if (r->checks[i].status == SC_FAIL)
			return 1;
	return 0;
}

void sc_print_number(FILE *f, double v, int json)
{
	if (isnan(v))
		fputs(json ? "null" : "nan", f);
	else if (isinf(v))
		fputs(json ? "null" : (v > 0 ? "inf" : "-inf"), f);
	else
		fprintf(f, "%.6g", v);
}

void sc_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* key=value values are one line: a newline would start a bogus key. */
static void kv_value(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++)
		fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
}

static void kv_line(FILE *f, const char *key, const char *val)
{
	fprintf(f, "%s=", key);
	kv_value(f, val);
	fputc('\n', f);
}

static void print_fig(FILE *f, const struct sc_figure *g, int json)
{
	switch (g->kind) {
	case SC_STR:
		if (json)
			sc_json_string(f, g->str);
		else
			kv_value(f, g->str);
		break;
	case SC_NUM:
		sc_print_number(f, g->num, json);
		break;
	case SC_INT:
		fprintf(f, "%lld", g->ival);
		break;
	case SC_BOOL:
		fputs(g->ival ? (json ? "true" : "yes") : (json ? "false" : "no"), f);
		break;
	}
}

int sc_report_print_kv(const struct sc_report *r, FILE *f)
{
	kv_line(f, "driver_version", r->driver_version);
	kv_line(f, "runtime_version", r->runtime_version);
	kv_line(f, "cublas_version", r->cublas_version);
	kv_line(f, "cudnn_version", r->cudnn_version);
	kv_line(f, "nccl_version", r->nccl_version);
	fprintf(f, "devices=%d\n", r->n_devices);
	for (int i = 0; i < r->n_devices; i++) {
		const struct sc_device *d = &r->devices[i];
		fprintf(f, "device.%d.name=", d->index);
		kv_value(f, d->name);
		fprintf(f, "\ndevice.%d.uuid=", d->index);
		kv_value(f, d->uuid);
		fprintf(f, "\ndevice.%d.cc=%s\n", d->index, d->cc);
	}
	for (int i = 0; i < r->n_checks; i++) {
		const struct sc_check *c = &r->checks[i];
		fprintf(f, "check.%s.status=%s\n", c->name, sc_status_name(c->status));
		fprintf(f, "check.%s.detail=", c->name);
		kv_value(f, c->detail);
		fputc('\n', f);
		for (int j = 0; j < c->n_figs; j++) {
			fprintf(f, "check.%s.%s=", c->name, c->figs[j].key);
			print_fig(f, &c->figs[j], 0);
			fputc('\n', f);
		}
	}
	fprintf(f, "result=%s\n", sc_report_failed(r) ? "fail" : "pass");
	return ferror(f) ? -1 : 0;
}

static void json_version(FILE *f, const char *key, const char *v, int first)
{
	fprintf(f, "%s", first ? "" : ",");
	sc_json_string(f, key);
	fputc(':', f);
	if (*v)
		sc_json_string(f, v);
	else
		fputs("null", f);
}

int sc_report_print_json(const struct sc_report *r, FILE *f)
{
	fputs("{\"checks\":[", f);
	for (int i = 0; i < r->n_checks; i++) {
		const struct sc_check *c = &r->checks[i];
		fprintf(f, "%s{\"name\":", i ? "," : "");
		sc_json_string(f, c->name);
		fprintf(f, ",\"status\":\"%s\",\"detail\":", sc_status_name(c->status));
		sc_json_string(f, c->detail);
		for (int j = 0; j < c->n_figs; j++) {
			/* a figure may not shadow the three fixed members */
			const char *k = c->figs[j].key;
			if (!strcmp(k, "name") || !strcmp(k, "status") || !strcmp(k, "detail"))
				continue;
			fputc(',', f);
			sc_json_string(f, k);
			fputc(':', f);
			print_fig(f, &c->figs[j], 1);
		}
		fputc('}', f);
	}
	fputs("],", f);
	json_version(f, "driver_version", r->driver_version, 1);
	json_version(f, "runtime_version", r->runtime_version, 0);
	json_version(f, "cublas_version", r->cublas_version, 0);
	json_version(f, "cudnn_version", r->cudnn_version, 0);
	json_version(f, "nccl_version", r->nccl_version, 0);
	fputs(",\"devices\":[", f);
	for (int i = 0; i < r->n_devices; i++) {
		const struct sc_device *d = &r->devices[i];
		fprintf(f, "%s{\"index\":%d,\"name\":", i ? "," : "", d->index);
		sc_json_string(f, d->name);
		fputs(",\"uuid\":", f);
		sc_json_string(f, d->uuid);
		fputs(",\"cc\":", f);
		sc_json_string(f, d->cc);
		fputc('}', f);
	}
	fprintf(f, "],\"result\":\"%s\"}\n", sc_report_failed(r) ? "fail" : "pass");
	return ferror(f) ? -1 : 0;
}
