/* lib/doctor.h - `envpin doctor`: one finding per precondition of a run
 * (rootless or not, GPU or not), each with the fix (docs/rootless.md).
 * GPU findings honour ENVPIN_HOST_ROOT; the kernel's user-namespace
 * settings are read from the real /proc/sys. */
#ifndef EP_DOCTOR_H
#define EP_DOCTOR_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

enum ep_doctor_status {
	EP_DOCTOR_OK = 0,
	EP_DOCTOR_SKIP, /* not relevant here (no GPU, root) */
	EP_DOCTOR_WARN, /* works, but a feature is missing */
	EP_DOCTOR_FAIL, /* a run of this kind will not start */
};

struct ep_doctor_item {
	char *name; /* "userns", "subuid", "overlay", "runtime", "nvidia-driver", ... */
	enum ep_doctor_status status;
	char *detail; /* what was found */
	char *fix;    /* what to do; NULL when ok */
};

struct ep_doctor_report {
	struct ep_doctor_item *items;
	size_t n;
};

struct ep_doctor_opts {
	const char *store_root; /* the store whose free space counts; may be NULL */
	int quick;		/* skip the slower probes (overlay mount) */
};

/* Runs every check.  -1 only on allocation failure; a failed check is an
 * item.  Release with ep_doctor_report_release. */
int ep_doctor_run(const struct ep_doctor_opts *o, struct ep_doctor_report *r, struct ep_error *err);
void ep_doctor_report_release(struct ep_doctor_report *r);

/* The worst status of the report. */
enum ep_doctor_status ep_doctor_worst(const struct ep_doctor_report *r);
const char *ep_doctor_status_name(enum ep_doctor_status s);

/* {"result": "ok"|"warn"|"fail", "checks": [{"name","status","detail","fix"}]};
 * new reference, NULL on allocation failure. */
json_t *ep_doctor_json(const struct ep_doctor_report *r);

#endif
