/* runtime/selfcheck/report.h - the result of a self-check run and its two
 * renderings: key=value lines and one JSON object (docs/selfcheck.md gives
 * the schema; envpin check copies it into the certificate).  Fixed-size
 * storage: the program records a known, small number of checks, and a
 * report that overflows drops figures rather than failing the run. */
#ifndef SC_REPORT_H
#define SC_REPORT_H

#include <stdarg.h>
#include <stdio.h>

#define SC_MAX_CHECKS 24
#define SC_MAX_FIGURES 24
#define SC_MAX_DEVICES 16
#define SC_KEY_MAX 40
#define SC_VAL_MAX 256
#define SC_DETAIL_MAX 512

enum sc_status { SC_SKIP = 0, SC_PASS, SC_FAIL };
enum sc_kind { SC_STR, SC_NUM, SC_INT, SC_BOOL };

struct sc_figure {
	char key[SC_KEY_MAX];
	enum sc_kind kind;
	char str[SC_VAL_MAX];
	double num;
	long long ival;
};

struct sc_check {
	char name[SC_KEY_MAX];
	enum sc_status status;
	char detail[SC_DETAIL_MAX];
	struct sc_figure figs[SC_MAX_FIGURES];
	int n_figs;
};

struct sc_device {
	int index;
	char name[SC_VAL_MAX];
	char uuid[64];
	char cc[16]; /* "9.0" */
};

struct sc_report {
	char driver_version[32];  /* CUDA version the driver supports, "12.4" */
	char runtime_version[32]; /* the image's libcudart */
	char cublas_version[32];
	char cudnn_version[32];
	char nccl_version[32]; /* "" when the image has no NCCL */
	struct sc_check checks[SC_MAX_CHECKS];
	int n_checks;
	struct sc_device devices[SC_MAX_DEVICES];
	int n_devices;
};

/* Zeroes r. */
void sc_report_init(struct sc_report *r);

/* Appends a check named name, status skip, empty detail; returns it (NULL
 * when the table is full).  The pointer is valid as long as r. */
struct sc_check *sc_check_add(struct sc_report *r, const char *name);

/* Sets status and a printf-style detail (truncated to SC_DETAIL_MAX). */
void sc_check_set(struct sc_check *c, enum sc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Figures; a second figure with the same key replaces the first. */
void sc_fig_str(struct sc_check *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sc_fig_num(struct sc_check *c, const char *key, double v);
void sc_fig_int(struct sc_check *c, const char *key, long long v);
void sc_fig_bool(struct sc_check *c, const char *key, int v);

/* Appends a device; NULL when full. */
struct sc_device *sc_device_add(struct sc_report *r);

const char *sc_status_name(enum sc_status st);

/* 1 when a check failed, else 0. */
int sc_report_failed(const struct sc_report *r);

/* Renderings.  key=value: one line per item, values on one line (newlines
 * become spaces), "result=pass|fail" last.  JSON: one object and a newline;
 * NaN and infinities are written as null (JSON has neither).  Both return
 * -1 when the stream reports an error. */
int sc_report_print_kv(const struct sc_report *r, FILE *f);
int sc_report_print_json(const struct sc_report *r, FILE *f);

/* Writes s as a JSON string literal (quotes included); bytes outside
 * printable ASCII are \u-escaped so the output is valid whatever s holds. */
void sc_json_string(FILE *f, const char *s);

/* Writes v with %.6g, or "null"/"nan" style text when not finite:
 * json != 0 gives null, otherwise nan, inf or -inf. */
void sc_print_number(FILE *f, double v, int json);

#endif
