/* cmd/doctor.c - envpin doctor: the preconditions of a run, one line each
 * with its fix; and the short form printed when a start fails. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "doctor.h"
#include "store.h"
#include "util.h"

static const char doctor_usage[] =
    "usage: envpin doctor [--json] [--quick]\n\n"
    "Checks what `envpin run`, `check` and `lab` need on this machine, for this user, and\n"
    "prints one line per precondition (ok, warn, fail, skip), each failure with its fix:\n"
    "  userns         unprivileged user namespaces (user.max_user_namespaces,\n"
    "                 kernel.unprivileged_userns_clone, AppArmor's\n"
    "                 kernel.apparmor_restrict_unprivileged_userns); tried, not guessed\n"
    "  subuid/subgid  your ranges in /etc/subuid, /etc/subgid (for --user without root)\n"
    "  uidmap         newuidmap/newgidmap (package uidmap)\n"
    "  overlay        overlayfs, mounted as a run would (in a user namespace with\n"
    "                 userxattr when not root); else fuse-overlayfs, else a copy\n"
    "  runtime        runc present, its version and the CVE-2024-21626 fix\n"
    "  nvidia-driver  the loaded driver's version (skip on a machine without one)\n"
    "  devices        /dev/nvidia* readable and writable by you (else the group to join)\n"
    "  nvidia-uvm     nvidia_uvm loaded and /dev/nvidia-uvm present\n"
    "  cdi            a CDI spec for nvidia.com/gpu, fresh (naming the loaded driver)\n"
    "  store          free space where the store is\n"
    "GPU paths honour ENVPIN_HOST_ROOT. Exit status 0 when nothing fails, 1 otherwise.\n\n"
    "  --json   the findings as JSON: {result, checks: [{name, status, detail, fix}]}\n"
    "  --quick  skip the overlay mount probe\n";

static char *store_path(struct cmd_ctx *ctx)
{
	struct ep_error e = EP_ERROR_INIT;

	if (ctx->store_root)
		return strdup(ctx->store_root);
	return ep_store_default_root(&e);
}

int cmd_doctor(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"quick", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_doctor_opts o = {0};
	struct ep_doctor_report r;
	cleanup_free char *store = NULL;
	int c, json = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'q')
			o.quick = 1;
		else if (c == 'h') {
			fputs(doctor_usage, stdout);
			return cmd_finish(0);
		} else
			return cmd_usage_error(ctx, "unknown option");
	}
	if (optind < argc)
		return cmd_usage_error(ctx, "no arguments expected");
	store = store_path(ctx);
	o.store_root = store;
	if (ep_doctor_run(&o, &r, &err) < 0)
		return cmd_fail(&err);
	rc = ep_doctor_worst(&r) == EP_DOCTOR_FAIL ? EXIT_MISMATCH : EXIT_OK;
	if (json) {
		json_t *j = ep_doctor_json(&r);
		int prc;

		if (!j) {
			ep_doctor_report_release(&r);
			ep_error_oom(&err);
			return cmd_fail(&err);
		}
		prc = cmd_print_json(j);
		json_decref(j);
		ep_doctor_report_release(&r);
		return cmd_finish(prc ? prc : rc);
	}
	for (size_t i = 0; i < r.n; i++) {
		const struct ep_doctor_item *it = &r.items[i];

		printf("%-4s  %-13s %s\n", ep_doctor_status_name(it->status), it->name, it->detail);
		if (it->fix && (it->status == EP_DOCTOR_FAIL || it->status == EP_DOCTOR_WARN))
			printf("      %-13s fix: %s\n", "", it->fix);
	}
	printf("doctor: %s\n", ep_doctor_worst(&r) == EP_DOCTOR_FAIL   ? "FAIL"
			       : ep_doctor_worst(&r) == EP_DOCTOR_WARN ? "ok, with warnings"
								       : "ok");
	ep_doctor_report_release(&r);
	return cmd_finish(rc);
}

void cmd_doctor_hint(struct cmd_ctx *ctx)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_doctor_opts o = {.quick = 1};
	struct ep_doctor_report r;
	cleanup_free char *store = store_path(ctx);
	int any = 0;

	o.store_root = store;
	if (ep_doctor_run(&o, &r, &err) < 0)
		return;
	for (size_t i = 0; i < r.n; i++) {
		const struct ep_doctor_item *it = &r.items[i];

		if (it->status != EP_DOCTOR_FAIL)
			continue;
		fprintf(stderr, "envpin doctor: FAIL %s: %s%s%s\n", it->name, it->detail,
			it->fix ? "; fix: " : "", it->fix ? it->fix : "");
		any = 1;
	}
	if (!any)
		fprintf(stderr, "envpin doctor: no failed precondition found (run 'envpin doctor' "
				"for the full list)\n");
	ep_doctor_report_release(&r);
}
