/* Unit tests: lib/runcver (the CVE-2024-21626 version rule, dpkg version
 * order) and lib/isolation (the shape of the seccomp profile and caps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "isolation.h"
#include "runcver.h"

/* 1 fixed, 0 not fixed, -1 does not parse */
static int rule(const char *text)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_runc_version v;

	if (ep_runc_version_parse(text, &v, &err) < 0)
		return -1;
	return ep_runc_cve_2024_21626_fixed(&v);
}

static void test_runc_version_rule(void **state)
{
	(void)state;
	/* Debian 12's build and its backport */
	assert_int_equal(
	    rule("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n"
		 "go: go1.19.8\nlibseccomp: 2.5.4\n"),
	    1);
	assert_int_equal(rule("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u2\n"), 1);
	assert_int_equal(rule("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u10\n"), 1);
	assert_int_equal(rule("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-2\n"), 1);
	/* before the backport */
	assert_int_equal(rule("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1\n"), 0);
	assert_int_equal(rule("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1~bpo11+1\n"), 0);
	assert_int_equal(rule("runc version 1.1.5+ds1\n"), 0);
	/* a commit line that is not this version's package version */
	assert_int_equal(rule("runc version 1.1.5+ds1\ncommit: 1.1.6+ds1-1+deb12u1\n"), 0);
	assert_int_equal(rule("runc version 1.1.5\ncommit: v1.1.5-0-gf19387a6\n"), 0);
	assert_int_equal(rule("runc version 1.1.4+ds1\ncommit: 1.1.4+ds1-1+deb12u1\n"), 0);
	/* upstream */
	assert_int_equal(rule("runc version 1.1.11\ncommit: v1.1.11-0-g4bccb38c\n"), 0);
	assert_int_equal(rule("runc version 1.1.12\ncommit: v1.1.12-0-g51d5e946\n"), 1);
	assert_int_equal(rule("runc version 1.1.15\n"), 1);
	assert_int_equal(rule("runc version 1.2.0-rc.1\n"), 1);
	assert_int_equal(rule("runc version 1.3.0\n"), 1);
	assert_int_equal(rule("runc version 2.0.0\n"), 1);
	assert_int_equal(rule("runc version 1.0.0-rc93\n"), 0);
	assert_int_equal(rule("runc version 1.0.3\n"), 0);
	assert_int_equal(rule("runc version 0.1.1\n"), 0);
	/* not a version */
	assert_int_equal(rule(""), -1);
	assert_int_equal(rule("crun version 1.8.1\n"), -1);
	assert_int_equal(rule("runc version\n"), -1);
	assert_int_equal(rule("runc version v1.1.12\n"), -1);
	assert_int_equal(rule("runc version 1.1\n"), -1);
}

static void test_runc_version_fields(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_runc_version v;
	char long_line[200];

	(void)state;
	assert_int_equal(ep_runc_version_parse(
			     "runc version 1.1.5+ds1\r\ncommit: 1.1.5+ds1-1+deb12u1  \n", &v, &err),
			 0);
	assert_string_equal(v.version, "1.1.5+ds1");
	assert_string_equal(v.commit, "1.1.5+ds1-1+deb12u1");
	assert_int_equal(v.patch, 5);
	/* an over-long version is refused, not truncated */
	memset(long_line, '1', sizeof(long_line));
	memcpy(long_line, "runc version 1.1.", 17);
	long_line[sizeof(long_line) - 1] = '\0';
	assert_int_equal(ep_runc_version_parse(long_line, &v, &err), -1);
	assert_int_equal(err.code, EP_EENV);
}

static void test_debian_version_cmp(void **state)
{
	(void)state;
	assert_true(ep_debian_version_cmp("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1") > 0);
	assert_true(ep_debian_version_cmp("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1+deb12u1") == 0);
	assert_true(ep_debian_version_cmp("1.1.5+ds1-1+deb12u9", "1.1.5+ds1-1+deb12u10") < 0);
	assert_true(ep_debian_version_cmp("1.0~rc1-1", "1.0-1") < 0);
	assert_true(ep_debian_version_cmp("1:0.9-1", "1.0-1") > 0);
	assert_true(ep_debian_version_cmp("1.0", "1.0-0") == 0);
	assert_true(ep_debian_version_cmp("1.0a-1", "1.0-1") > 0);
	assert_true(ep_debian_version_cmp("1.0+x-1", "1.0a-1") > 0);
	assert_true(ep_debian_version_cmp("1.01-1", "1.1-1") == 0);
}

static int has_name(json_t *names, const char *n)
{
	size_t i;
	json_t *x;

	json_array_foreach (names, i, x)
		if (!strcmp(json_string_value(x), n))
			return 1;
	return 0;
}

static void test_seccomp_profile_shape(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	json_t *p = ep_seccomp_profile(&err), *rules, *r, *caps;
	size_t i;
	int allow_all = 0, clone = 0, clone3 = 0, personality = 0, socket = 0;

	(void)state;
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "defaultAction")),
			    "SCMP_ACT_ERRNO");
	assert_int_equal(json_integer_value(json_object_get(p, "defaultErrnoRet")), EPERM);
	rules = json_object_get(p, "syscalls");
	json_array_foreach (rules, i, r) {
		json_t *names = json_object_get(r, "names");
		const char *action = json_string_value(json_object_get(r, "action"));
		json_t *args = json_object_get(r, "args");

		/* nothing that Docker refuses without a capability we lack */
		static const char *const never[] = {
		    "keyctl",	      "add_key",     "request_key",
		    "mount",	      "umount2",     "unshare",
		    "setns",	      "bpf",	     "perf_event_open",
		    "io_uring_setup", "userfaultfd", "kexec_load",
		    "init_module",    "reboot",	     "open_by_handle_at",
		    "pivot_root",     "swapon",	     "settimeofday",
		    "syslog"};
		if (!strcmp(action, "SCMP_ACT_ALLOW"))
			for (size_t k = 0; k < sizeof(never) / sizeof(never[0]); k++)
				assert_false(has_name(names, never[k]));
		if (!args && !strcmp(action, "SCMP_ACT_ALLOW") && has_name(names, "read") &&
		    has_name(names, "execve") && has_name(names, "pipe2"))
			allow_all = 1;
		if (has_name(names, "clone")) {
			json_t *a = json_array_get(args, 0);
			clone++;
			assert_string_equal(json_string_value(json_object_get(a, "op")),
					    "SCMP_CMP_MASKED_EQ");
			assert_int_equal(json_integer_value(json_object_get(a, "value")),
					 0x7E020000);
			assert_int_equal(json_integer_value(json_object_get(a, "valueTwo")), 0);
		}
		if (has_name(names, "clone3")) {
			clone3++;
			assert_string_equal(action, "SCMP_ACT_ERRNO");
			assert_int_equal(json_integer_value(json_object_get(r, "errnoRet")),
					 ENOSYS);
		}
		if (has_name(names, "personality"))
			personality++;
		if (has_name(names, "socket")) {
			socket++;
			assert_string_equal(
			    json_string_value(json_object_get(json_array_get(args, 0), "op")),
			    "SCMP_CMP_NE");
		}
	}
	assert_true(allow_all);
	assert_int_equal(clone, 1);
	assert_int_equal(clone3, 1);
	assert_int_equal(personality, 5);
	assert_int_equal(socket, 1);
	json_decref(p);

	caps = ep_capabilities(&err);
	assert_non_null(caps);
	assert_int_equal(json_array_size(json_object_get(caps, "bounding")), 14);
	assert_int_equal(json_array_size(json_object_get(caps, "effective")), 14);
	assert_int_equal(json_array_size(json_object_get(caps, "permitted")), 14);
	assert_int_equal(json_array_size(json_object_get(caps, "inheritable")), 0);
	assert_int_equal(json_array_size(json_object_get(caps, "ambient")), 0);
	assert_true(has_name(json_object_get(caps, "bounding"), "CAP_AUDIT_WRITE"));
	assert_false(has_name(json_object_get(caps, "bounding"), "CAP_SYS_ADMIN"));
	json_decref(caps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_runc_version_rule),
	    cmocka_unit_test(test_runc_version_fields),
	    cmocka_unit_test(test_debian_version_cmp),
	    cmocka_unit_test(test_seccomp_profile_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
