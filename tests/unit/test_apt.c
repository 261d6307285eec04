/* Unit tests: lib/apt (control files, dpkg version order, sources, resolver). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "apt.h"

struct collect {
	int paras;
	char names[8][64];
	int lines[8];
	char depends[256];
};

static int on_para(void *ctx, const struct ep_apt_field *f, size_t n, int line,
		   struct ep_error *err)
{
	struct collect *c = ctx;
	const struct ep_apt_field *p = ep_apt_field_get(f, n, "package");
	const struct ep_apt_field *d = ep_apt_field_get(f, n, "Depends");

	(void)err;
	if (c->paras < 8 && p) {
		snprintf(c->names[c->paras], 64, "%.*s", (int)p->value_len, p->value);
		c->lines[c->paras] = line;
	}
	if (d)
		snprintf(c->depends, sizeof(c->depends), "%.*s", (int)d->value_len, d->value);
	c->paras++;
	return 0;
}

static void test_control_parse(void **state)
{
	static const char text[] = "Package: a\nVersion: 1\nDepends: x,\n y (>= 2)\n\n\n"
				   "# comment\nPackage:   b\nDescription: one\n two\n .\n"
				   "\n  \nPackage: c\n";
	struct collect c = {0};
	struct ep_error err = EP_ERROR_INIT;

	(void)state;
	assert_int_equal(ep_apt_parse_control(text, strlen(text), "t", on_para, &c, &err), 0);
	assert_int_equal(c.paras, 3);
	assert_string_equal(c.names[0], "a");
	assert_string_equal(c.names[1], "b");
	assert_string_equal(c.names[2], "c");
	assert_int_equal(c.lines[0], 1);
	assert_int_equal(c.lines[1], 8);
	assert_int_equal(c.lines[2], 14);
	assert_string_equal(c.depends, "x,\n y (>= 2)");
}

static void test_control_malformed(void **state)
{
	struct collect c = {0};
	struct ep_error err = EP_ERROR_INIT;
	static const char cont[] = " leading continuation\n";
	static const char nocolon[] = "Package: a\nno colon here\n";
	char big[200 * 8];
	size_t n = 0;

	(void)state;
	assert_int_equal(ep_apt_parse_control(cont, strlen(cont), "t", on_para, &c, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "t:1:"));
	ep_error_clear(&err);
	assert_int_equal(ep_apt_parse_control(nocolon, strlen(nocolon), "t", on_para, &c, &err),
			 -1);
	assert_non_null(strstr(err.msg, "t:2:"));
	/* more fields than a paragraph may hold */
	for (int i = 0; i < EP_APT_MAX_FIELDS + 1; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "F%d: v\n", i);
	ep_error_clear(&err);
	assert_int_equal(ep_apt_parse_control(big, n, "t", on_para, &c, &err), -1);
	assert_non_null(strstr(err.msg, "more than"));
}

static void test_vercmp(void **state)
{
	(void)state;
	/* dpkg's documented examples and corner cases */
	assert_true(ep_apt_vercmp("1.0", "1.0") == 0);
	assert_true(ep_apt_vercmp("1.0~rc1", "1.0") < 0);
	assert_true(ep_apt_vercmp("1.0~~", "1.0~") < 0);
	assert_true(ep_apt_vercmp("1.0", "1.0+b1") < 0);
	assert_true(ep_apt_vercmp("1.0a", "1.0+") < 0); /* letters before non-letters */
	assert_true(ep_apt_vercmp("1:0.1", "2.0") > 0); /* epoch wins */
	assert_true(ep_apt_vercmp("0:1.0", "1.0") == 0);
	assert_true(ep_apt_vercmp("1.10", "1.9") > 0);
	assert_true(ep_apt_vercmp("1.010", "1.10") == 0);
	assert_true(ep_apt_vercmp("1.0-1", "1.0-2") < 0);
	assert_true(ep_apt_vercmp("1.0-10", "1.0-9") > 0);
	assert_true(ep_apt_vercmp("3.3a-3", "3.3a-3+deb12u1") < 0);
	assert_true(ep_apt_vercmp("2.36-9+deb12u10", "2.36-9+deb12u9") > 0);
	assert_true(ep_apt_vercmp("1.0-1~bpo1", "1.0-1") < 0);
	assert_true(ep_apt_vercmp("a", "") > 0);
	assert_true(ep_apt_vercmp("~", "") < 0);
	assert_true(ep_apt_version_satisfies("1.2", ">=", "1.2"));
	assert_false(ep_apt_version_satisfies("1.2", ">>", "1.2"));
	assert_true(ep_apt_version_satisfies("1.1", "<<", "1.2"));
	assert_true(ep_apt_version_satisfies("1.2", "=", "1.2"));
	assert_true(ep_apt_version_satisfies("1.2", "<", "1.2")); /* obsolete: <= */
}

static void test_sources(void **state)
{
	static const char one[] =
	    "# comment\ndeb http://deb.debian.org/debian bookworm main contrib\n"
	    "deb-src http://deb.debian.org/debian bookworm main\n"
	    "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] "
	    "https://example.org/repo/ stable main # trailing\n";
	static const char d822[] = "Types: deb deb-src\nURIs: http://deb.debian.org/debian\n"
				   "Suites: bookworm bookworm-updates\nComponents: main\n"
				   "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
				   "Types: deb\nURIs: http://x.org/y\nSuites: s\nComponents: c\n"
				   "Enabled: no\n";
	static const char flat[] =
	    "deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] "
	    "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/"
	    "x86_64/ /\ndeb http://x.org/repo ./\n";
	static const char flatc[] = "deb http://x.org/repo ./ main\n";
	static const char ftp[] = "deb ftp://x.org/repo s main\n";
	struct ep_apt_source *s = NULL;
	size_t n = 0;
	struct ep_error err = EP_ERROR_INIT;

	(void)state;
	assert_int_equal(ep_apt_parse_sources(one, strlen(one), 0, "sl", &s, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(s[0].uri, "http://deb.debian.org/debian");
	assert_string_equal(s[0].suite, "bookworm");
	assert_string_equal(s[0].components[0], "main");
	assert_string_equal(s[0].components[1], "contrib");
	assert_null(s[0].components[2]);
	assert_null(s[0].signed_by);
	assert_string_equal(s[1].uri, "https://example.org/repo");
	assert_string_equal(s[1].signed_by, "/usr/share/keyrings/x.gpg");
	assert_string_equal(s[1].components[0], "main");
	assert_null(s[1].components[1]);
	assert_int_equal(ep_apt_parse_sources(d822, strlen(d822), 1, "d", &s, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_string_equal(s[2].suite, "bookworm");
	assert_string_equal(s[3].suite, "bookworm-updates");
	assert_string_equal(s[3].signed_by, "/usr/share/keyrings/debian-archive-keyring.gpg");
	ep_apt_sources_free(s, n);
	s = NULL;
	n = 0;
	/* flat repositories, as NVIDIA's CUDA images configure theirs */
	assert_int_equal(ep_apt_parse_sources(flat, strlen(flat), 0, "f", &s, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].flat, 1);
	assert_string_equal(s[0].suite, "/");
	assert_null(s[0].components[0]);
	assert_string_equal(s[0].signed_by, "/usr/share/keyrings/cuda-archive-keyring.gpg");
	assert_int_equal(s[1].flat, 1);
	assert_string_equal(s[1].suite, "./");
	ep_apt_sources_free(s, n);
	s = NULL;
	n = 0;
	assert_int_equal(ep_apt_parse_sources(flatc, strlen(flatc), 0, "f", &s, &n, &err), -1);
	assert_non_null(strstr(err.msg, "no components"));
	ep_error_clear(&err);
	assert_int_equal(ep_apt_parse_sources(ftp, strlen(ftp), 0, "f", &s, &n, &err), -1);
	assert_non_null(strstr(err.msg, "f:1"));
	ep_apt_sources_free(s, n);
}

static void test_snapshot(void **state)
{
	char st[17];
	char *b;
	struct ep_error err = EP_ERROR_INIT;

	(void)state;
	assert_int_equal(ep_apt_snapshot_stamp("Sat, 11 Jul 2026 10:16:37 UTC", st), 0);
	assert_string_equal(st, "20260711T101637Z");
	assert_int_equal(ep_apt_snapshot_stamp("Sat, 11 Foo 2026 10:16:37 UTC", st), -1);
	assert_int_equal(ep_apt_snapshot_stamp("garbage", st), -1);
	b = ep_apt_snapshot_base("Debian", "Debian", "http://deb.debian.org/debian", st, &err);
	assert_string_equal(b, "https://snapshot.debian.org/archive/debian/20260711T101637Z");
	free(b);
	b = ep_apt_snapshot_base("Debian", "Debian-Security", "http://x/debian-security", st, &err);
	assert_string_equal(b,
			    "https://snapshot.debian.org/archive/debian-security/20260711T101637Z");
	free(b);
	assert_null(ep_apt_snapshot_base("Example", "Example", "http://x", st, &err));
}

#define PKG(name, ver, arch, extra)                                                                \
	"Package: " name "\nVersion: " ver "\nArchitecture: " arch "\n" extra                      \
	"Filename: pool/" name "_" ver ".deb\nSize: 100\nSHA256: "                                 \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\n"

static const char universe[] =
    PKG("tmux", "3.3a-3", "amd64",
	"Depends: libc6 (>= 2.34), libevent-core-2.1-7 (>= 2.1.8), libtinfo6 (>= 6)\nRecommends: "
	"tmux-docs\n") PKG("libevent-core-2.1-7", "2.1.12", "amd64", "Depends: libc6 (>= 2.14)\n")
	PKG("libc6", "2.36-9", "amd64", "") PKG("libc6", "2.36-9+deb12u9", "amd64", "") PKG(
	    "libtinfo6", "6.4-4", "amd64", "") PKG("tmux-docs", "1", "all", "")
	    PKG("jq", "1.6-2.1", "amd64", "Depends: libjq1 (= 1.6-2.1), libc6\n") PKG(
		"libjq1", "1.6-2.1", "amd64",
		"Depends: libonig5 (>= 6.1)\nPre-Depends: multiarch-support | libc6\n")
		PKG("libonig5", "6.9.8-1", "amd64", "") PKG("libonig5", "6.9.9-1", "armhf", "") PKG(
		    "mta-user", "1", "all", "Depends: default-mta | mail-transport-agent\n")
		    PKG("postfix", "3.7", "amd64", "Provides: mail-transport-agent\n") PKG(
			"exim4-daemon-light", "4.96", "amd64", "Provides: mail-transport-agent\n")
			PKG("pyuser", "1", "all", "Depends: python3:any (>= 3.9)\n")
			    PKG("python3", "3.11.2-1", "amd64", "Multi-Arch: allowed\n")
				PKG("broken", "1", "all", "Depends: libnothere\n")
				    PKG("needsnew", "1", "all", "Depends: libtinfo6 (>= 6.4)\n")
					PKG("preuser", "1", "all",
					    "Pre-Depends: libonig5\nDepends: libjq1\n")
					    PKG("cyc-a", "1", "all", "Depends: cyc-b\n")
						PKG("cyc-b", "1", "all", "Depends: cyc-a\n");

static const char installed[] = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n"
				"Architecture: amd64\n\n"
				"Package: libtinfo6\nStatus: install ok installed\nVersion: 6.3-1\n"
				"Architecture: amd64\n\n"
				"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
				"Architecture: amd64\n";

static struct ep_apt_db *mkdb(void)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_apt_db *db = ep_apt_db_new("amd64", &err);
	int a;

	assert_non_null(db);
	a = ep_apt_db_add_archive(db, "http://m/debian", "https://snap/debian/T", &err);
	assert_int_equal(a, 0);
	assert_int_equal(ep_apt_db_add_packages(db, a, universe, strlen(universe), "P", &err), 0);
	assert_int_equal(ep_apt_db_add_status(db, installed, strlen(installed), &err), 0);
	return db;
}

/* "name=version name=version ..." of a resolution */
static void names(json_t *debs, char *out, size_t cap)
{
	size_t i, n = 0;
	json_t *d;

	out[0] = 0;
	json_array_foreach (debs, i, d)
		n += (size_t)snprintf(out + n, cap - n, "%s%s=%s", i ? " " : "",
				      json_string_value(json_object_get(d, "package")),
				      json_string_value(json_object_get(d, "version")));
}

static void test_resolve(void **state)
{
	struct ep_apt_db *db = mkdb();
	struct ep_error err = EP_ERROR_INIT;
	char *req[] = {"tmux", "jq"};
	char buf[1024];
	json_t *r;

	(void)state;
	r = ep_apt_db_resolve(db, req, 2, &err);
	assert_non_null(r);
	names(r, buf, sizeof(buf));
	/* libc6 installed and new enough: not fetched; libtinfo6 6.3 is: no
	 * upgrade needed (>= 6); Recommends not followed; deps first */
	assert_string_equal(buf, "libevent-core-2.1-7=2.1.12 tmux=3.3a-3 libonig5=6.9.8-1 "
				 "libjq1=1.6-2.1 jq=1.6-2.1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "url")),
			    "http://m/debian/pool/libevent-core-2.1-7_2.1.12.deb");
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "snapshot")),
			    "https://snap/debian/T/pool/libevent-core-2.1-7_2.1.12.deb");
	json_decref(r);
	ep_apt_db_free(db);
}

static void test_resolve_choices(void **state)
{
	struct ep_apt_db *db = mkdb();
	struct ep_error err = EP_ERROR_INIT;
	char buf[1024];
	json_t *r;
	char *mta[] = {"mta-user"};
	char *py[] = {"pyuser"};
	char *up[] = {"needsnew"};
	char *pinned[] = {"libc6=2.36-9+deb12u9"};
	char *have[] = {"libc6"};
	char *cyc[] = {"cyc-a"};

	(void)state;
	/* virtual package: the first provider by name */
	r = ep_apt_db_resolve(db, mta, 1, &err);
	names(r, buf, sizeof(buf));
	assert_string_equal(buf, "exim4-daemon-light=4.96 mta-user=1");
	json_decref(r);
	/* :any with Multi-Arch: allowed */
	r = ep_apt_db_resolve(db, py, 1, &err);
	names(r, buf, sizeof(buf));
	assert_string_equal(buf, "python3=3.11.2-1 pyuser=1");
	json_decref(r);
	/* an installed version too old is upgraded */
	r = ep_apt_db_resolve(db, up, 1, &err);
	names(r, buf, sizeof(buf));
	assert_string_equal(buf, "libtinfo6=6.4-4 needsnew=1");
	json_decref(r);
	/* an explicit version is installed over the installed one */
	r = ep_apt_db_resolve(db, pinned, 1, &err);
	names(r, buf, sizeof(buf));
	assert_string_equal(buf, "libc6=2.36-9+deb12u9");
	json_decref(r);
	/* an installed package requested by name: nothing to do */
	r = ep_apt_db_resolve(db, have, 1, &err);
	assert_int_equal(json_array_size(r), 0);
	json_decref(r);
	/* a package that pre-depends on one of the same run waits for the
	 * next dpkg run: stages */
	{
		char *pre[] = {"preuser"};

		r = ep_apt_db_resolve(db, pre, 1, &err);
		names(r, buf, sizeof(buf));
		assert_string_equal(buf, "libonig5=6.9.8-1 libjq1=1.6-2.1 preuser=1");
		assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "stage")),
				 0);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 1), "stage")),
				 0);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 2), "stage")),
				 1);
		json_decref(r);
	}
	/* dependency cycles terminate */
	r = ep_apt_db_resolve(db, cyc, 1, &err);
	names(r, buf, sizeof(buf));
	assert_string_equal(buf, "cyc-b=1 cyc-a=1");
	json_decref(r);
	ep_apt_db_free(db);
}

static void test_resolve_errors(void **state)
{
	struct ep_apt_db *db = mkdb();
	struct ep_error err = EP_ERROR_INIT;
	char *broken[] = {"broken"};
	char *missing[] = {"nosuchpkg"};
	char *badver[] = {"jq=9.9"};
	char *twice[] = {"libonig5=6.9.8-1", "libc6=2.36-9+deb12u9", "libonig5=6.9.9-1"};

	(void)state;
	assert_null(ep_apt_db_resolve(db, broken, 1, &err));
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "libnothere"));
	assert_non_null(strstr(err.msg, "broken 1"));
	ep_error_clear(&err);
	assert_null(ep_apt_db_resolve(db, missing, 1, &err));
	assert_non_null(strstr(err.msg, "'nosuchpkg'"));
	ep_error_clear(&err);
	assert_null(ep_apt_db_resolve(db, badver, 1, &err));
	assert_non_null(strstr(err.msg, "'jq=9.9'"));
	ep_error_clear(&err);
	/* armhf's libonig5 is not in an amd64 db */
	assert_null(ep_apt_db_resolve(db, twice, 3, &err));
	ep_apt_db_free(db);
}

static void test_packages_hostile(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_apt_db *db = ep_apt_db_new("amd64", &err);
	static const char dotdot[] =
	    "Package: x\nVersion: 1\nArchitecture: amd64\n"
	    "Filename: pool/../../etc/passwd\nSize: 1\nSHA256: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
	static const char shell[] = "Package: x;rm\nVersion: 1\nArchitecture: amd64\n";

	(void)state;
	assert_int_equal(ep_apt_db_add_archive(db, "http://m", NULL, &err), 0);
	assert_int_equal(ep_apt_db_add_packages(db, 0, dotdot, strlen(dotdot), "P", &err), -1);
	assert_non_null(strstr(err.msg, "P:1"));
	ep_error_clear(&err);
	assert_int_equal(ep_apt_db_add_packages(db, 0, shell, strlen(shell), "P", &err), -1);
	ep_apt_db_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_control_parse),    cmocka_unit_test(test_control_malformed),
	    cmocka_unit_test(test_vercmp),	     cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_snapshot),	     cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_resolve_choices),  cmocka_unit_test(test_resolve_errors),
	    cmocka_unit_test(test_packages_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
