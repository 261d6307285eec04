/* Unit tests: lib/run/lab.c (the --listen parser, the caller under sudo)
 * and lib/run/state.c (container names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "containers.h"
#include "lab.h"

static void test_listen_good(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_listen l;

	(void)state;
	assert_int_equal(ep_listen_parse("127.0.0.1:8888", 1, &l, &err), 0);
	assert_string_equal(l.addr, "127.0.0.1");
	assert_int_equal(l.port, 8888);
	assert_true(l.loopback);
	assert_int_equal(ep_listen_parse("9000", 1, &l, &err), 0);
	assert_string_equal(l.addr, "127.0.0.1");
	assert_int_equal(l.port, 9000);
	assert_int_equal(ep_listen_parse("0.0.0.0", 8888, &l, &err), 0);
	assert_int_equal(l.port, 8888);
	assert_false(l.loopback);
	assert_int_equal(ep_listen_parse("localhost:1", 8888, &l, &err), 0);
	assert_string_equal(l.addr, "127.0.0.1");
	assert_int_equal(ep_listen_parse("127.9.9.9:65535", 1, &l, &err), 0);
	assert_true(l.loopback);
	assert_int_equal(ep_listen_parse("[::1]:8888", 1, &l, &err), 0);
	assert_string_equal(l.addr, "::1");
	assert_int_equal(l.family, AF_INET6);
	assert_true(l.loopback);
	assert_int_equal(ep_listen_parse("[::]:80", 1, &l, &err), 0);
	assert_false(l.loopback);
	assert_int_equal(ep_listen_parse("10.1.2.3:80", 1, &l, &err), 0);
	assert_false(l.loopback);
}

static void test_listen_bad(void **state)
{
	static const char *const bad[] = {
	    "",	      "1.2.3:80",     "example.com:80", "127.0.0.1:0",	   "127.0.0.1:65536",
	    "::1:80", "[::1",	      "[::1]x",		"127.0.0.1:x",	   "127.0.0.1:-1",
	    ":80",    "1.2.3.4:80:1", "127.0.0.1: 80",	"[fe80::1%eth0]:1"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ep_error err = EP_ERROR_INIT;
		struct ep_listen l;

		assert_int_equal(ep_listen_parse(bad[i], 8888, &l, &err), -1);
		assert_int_equal(err.code, EP_EINVAL);
		assert_non_null(strstr(err.msg, "--listen"));
	}
}

static void test_caller_sudo(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_caller c;

	(void)state;
	if (geteuid() != 0)
		skip();
	setenv("SUDO_UID", "4242", 1);
	setenv("SUDO_GID", "4343", 1);
	setenv("SUDO_USER", "student", 1);
	assert_int_equal(ep_caller_get(&c, &err), 0);
	assert_int_equal(c.uid, 4242);
	assert_int_equal(c.gid, 4343);
	assert_string_equal(c.name, "student");
	ep_caller_release(&c);
	/* a name unsafe in /etc/passwd or a shell word is replaced */
	setenv("SUDO_USER", "x:0:0:;rm", 1);
	assert_int_equal(ep_caller_get(&c, &err), 0);
	assert_string_equal(c.name, "student");
	ep_caller_release(&c);
	setenv("SUDO_UID", "12x", 1);
	assert_int_equal(ep_caller_get(&c, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	ep_caller_release(&c);
	unsetenv("SUDO_UID");
	unsetenv("SUDO_GID");
	unsetenv("SUDO_USER");
	ep_error_clear(&err);
	assert_int_equal(ep_caller_get(&c, &err), 0);
	assert_int_equal(c.uid, 0);
	assert_string_equal(c.name, "root");
	ep_caller_release(&c);
}

static void test_container_names(void **state)
{
	(void)state;
	assert_true(ep_container_name_ok("envpin-0123456789ab"));
	assert_true(ep_container_name_ok("a"));
	assert_true(ep_container_name_ok("job_1.v2-x"));
	assert_false(ep_container_name_ok(""));
	assert_false(ep_container_name_ok("-x"));
	assert_false(ep_container_name_ok(".hidden"));
	assert_false(ep_container_name_ok("../etc"));
	assert_false(ep_container_name_ok("a/b"));
	assert_false(ep_container_name_ok("a b"));
	assert_false(ep_container_name_ok(
	    "a1234567890123456789012345678901234567890123456789012345678901234"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listen_good),
	    cmocka_unit_test(test_listen_bad),
	    cmocka_unit_test(test_caller_sudo),
	    cmocka_unit_test(test_container_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
