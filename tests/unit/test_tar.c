/* Unit tests: lib/tar.  The archives are read back by GNU tar and by
 * Python's tarfile, so the headers are checked by two independent readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sink.h"
#include "tar.h"
#include "util.h"

#define MTIME 1767225600

static char long_name[200];
static char long_link[200];
static char data1000[1000];

/* Runs cmd, returns its stdout (caller frees) and its exit status. */
static char *run_cmd(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	char *out = NULL;
	size_t len = 0, cap = 0;
	char buf[4096];
	size_t n;

	assert_non_null(p);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		memcpy(out + len, buf, n);
		len += n;
	}
	if (!out)
		out = calloc(1, 1);
	out[len] = '\0';
	*status = pclose(p);
	return out;
}

static void add(struct ep_tar_writer *w, struct ep_tar_header h, const void *data)
{
	struct ep_error err = EP_ERROR_INIT;

	if (!h.mtime)
		h.mtime = MTIME;
	assert_int_equal(ep_tar_write_header(w, &h, &err), 0);
	if (h.type == EP_TAR_REG && h.size) {
		/* two calls, to exercise a data stream split across writes */
		size_t half = (size_t)h.size / 2;

		assert_int_equal(ep_tar_write_data(w, data, half, &err), 0);
		assert_int_equal(ep_tar_write_data(w, (const char *)data + half, (size_t)h.size - half,
						   &err),
				 0);
	}
}

/* Writes the sample archive to path; returns its size. */
static off_t write_sample(const char *path)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_fd_sink fs;
	struct ep_tar_writer w;
	static const unsigned char cap[] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00,
					    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					    0x00, 0x00, 0x00, 0x00};
	struct ep_xattr xa = {"security.capability", cap, sizeof(cap)};
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	off_t size;

	assert_true(fd >= 0);
	ep_fd_sink_init(&fs, fd);
	ep_tar_writer_init(&w, &fs.base);
	add(&w, (struct ep_tar_header){.path = "d", .type = EP_TAR_DIR, .mode = 0755}, NULL);
	add(&w,
	    (struct ep_tar_header){.path = "d/f.txt", .type = EP_TAR_REG, .mode = 0644,
				   .uid = 1000, .gid = 1001, .size = 6},
	    "hello\n");
	add(&w,
	    (struct ep_tar_header){.path = "d/hl", .type = EP_TAR_HARDLINK, .mode = 0644,
				   .uid = 1000, .gid = 1001, .linkname = "d/f.txt"},
	    NULL);
	add(&w,
	    (struct ep_tar_header){.path = long_name, .type = EP_TAR_REG, .mode = 0600,
				   .size = sizeof(data1000)},
	    data1000);
	add(&w,
	    (struct ep_tar_header){.path = "d/ln", .type = EP_TAR_SYMLINK, .mode = 0777,
				   .linkname = long_link},
	    NULL);
	add(&w,
	    (struct ep_tar_header){.path = "dev/null", .type = EP_TAR_CHR, .mode = 0666,
				   .devmajor = 1, .devminor = 3},
	    NULL);
	add(&w,
	    (struct ep_tar_header){.path = "dev/sda", .type = EP_TAR_BLK, .mode = 0660, .gid = 6,
				   .devmajor = 8, .devminor = 0},
	    NULL);
	add(&w, (struct ep_tar_header){.path = "p", .type = EP_TAR_FIFO, .mode = 0644}, NULL);
	add(&w,
	    (struct ep_tar_header){.path = "u", .type = EP_TAR_REG, .mode = 04755,
				   .uid = 3000000, .gid = 4000000},
	    NULL);
	add(&w,
	    (struct ep_tar_header){.path = "cap", .type = EP_TAR_REG, .mode = 0755, .size = 3,
				   .xattrs = &xa, .n_xattrs = 1, .mtime = 1000},
	    "abc");
	assert_int_equal(ep_tar_finish(&w, &err), 0);
	assert_int_equal(ep_sink_finish(&fs.base, &err), 0);
	size = lseek(fd, 0, SEEK_END);
	assert_int_equal((uint64_t)size, fs.bytes);
	close(fd);
	return size;
}

static int setup(void **state)
{
	(void)state;
	/* "d/" + 150 x's + "/file.dat": a path ustar could only hold split */
	strcpy(long_name, "d/");
	memset(long_name + 2, 'x', 150);
	strcpy(long_name + 152, "/file.dat");
	strcpy(long_link, "../");
	memset(long_link + 3, 'y', 120);
	strcpy(long_link + 123, "/target");
	for (size_t i = 0; i < sizeof(data1000); i++)
		data1000[i] = (char)('a' + i % 26);
	return 0;
}

static void test_python_reads_back(void **state)
{
	char path[] = "/tmp/ep-tar-XXXXXX";
	char cmd[512], expect[4096];
	int fd = mkstemp(path), status;
	char *out;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	write_sample(path);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c '\n"
		 "import sys, tarfile\n"
		 "with tarfile.open(sys.argv[1]) as t:\n"
		 "  for m in t:\n"
		 "    x = {k: v for k, v in m.pax_headers.items() if k.startswith(\"SCHILY\")}\n"
		 "    d = t.extractfile(m).read() if m.isreg() else b\"\"\n"
		 "    print(m.name, m.type.decode(), oct(m.mode), m.uid, m.gid, m.mtime, m.size,\n"
		 "          m.linkname, m.devmajor, m.devminor, repr(m.uname), repr(m.gname),\n"
		 "          len(d), d[:6].decode(), sorted(x))\n"
		 "' %s",
		 path);
	out = run_cmd(cmd, &status);
	snprintf(expect, sizeof(expect),
		 "d 5 0o755 0 0 %d 0  0 0 '' '' 0  []\n"
		 "d/f.txt 0 0o644 1000 1001 %d 6  0 0 '' '' 6 hello\n []\n"
		 "d/hl 1 0o644 1000 1001 %d 0 d/f.txt 0 0 '' '' 0  []\n"
		 "%s 0 0o600 0 0 %d 1000  0 0 '' '' 1000 abcdef []\n"
		 "d/ln 2 0o777 0 0 %d 0 %s 0 0 '' '' 0  []\n"
		 "dev/null 3 0o666 0 0 %d 0  1 3 '' '' 0  []\n"
		 "dev/sda 4 0o660 0 6 %d 0  8 0 '' '' 0  []\n"
		 "p 6 0o644 0 0 %d 0  0 0 '' '' 0  []\n"
		 "u 0 0o4755 3000000 4000000 %d 0  0 0 '' '' 0  []\n"
		 "cap 0 0o755 0 0 1000 3  0 0 '' '' 3 abc ['SCHILY.xattr.security.capability']\n",
		 MTIME, MTIME, MTIME, long_name, MTIME, MTIME, long_link, MTIME, MTIME, MTIME, MTIME);
	/* d[:6] of d/f.txt is "hello\n": its line continues on the next */
	assert_int_equal(status, 0);
	assert_string_equal(out, expect);
	free(out);
	unlink(path);
}

static void test_gnu_tar_reads_back(void **state)
{
	char path[] = "/tmp/ep-tar-XXXXXX";
	char cmd[512], expect[4096];
	int fd = mkstemp(path), status;
	char *out;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	write_sample(path);
	snprintf(cmd, sizeof(cmd),
		 "TZ=UTC0 LC_ALL=C tar --numeric-owner --full-time -tvf %s 2>&1 | "
		 "awk '{ $1 = $1; print }'",
		 path);
	out = run_cmd(cmd, &status);
	assert_int_equal(status, 0);
	/* awk squeezes the padding, whose width varies by tar version */
	snprintf(expect, sizeof(expect),
		 "drwxr-xr-x 0/0 0 2026-01-01 00:00:00 d/\n"
		 "-rw-r--r-- 1000/1001 6 2026-01-01 00:00:00 d/f.txt\n"
		 "hrw-r--r-- 1000/1001 0 2026-01-01 00:00:00 d/hl link to d/f.txt\n"
		 "-rw------- 0/0 1000 2026-01-01 00:00:00 %s\n"
		 "lrwxrwxrwx 0/0 0 2026-01-01 00:00:00 d/ln -> %s\n"
		 "crw-rw-rw- 0/0 1,3 2026-01-01 00:00:00 dev/null\n"
		 "brw-rw---- 0/6 8,0 2026-01-01 00:00:00 dev/sda\n"
		 "prw-r--r-- 0/0 0 2026-01-01 00:00:00 p\n"
		 "-rwsr-xr-x 3000000/4000000 0 2026-01-01 00:00:00 u\n"
		 "-rwxr-xr-x 0/0 3 1970-01-01 00:16:40 cap\n",
		 long_name, long_link);
	assert_string_equal(out, expect);
	free(out);
	/* and it extracts: the long name's data is intact */
	snprintf(cmd, sizeof(cmd), "tar -xOf %s '%s' | md5sum | cut -c1-32", path, long_name);
	out = run_cmd(cmd, &status);
	assert_int_equal(status, 0);
	assert_int_equal(strlen(out), 33);
	free(out);
	unlink(path);
}

static unsigned header_sum(const unsigned char *h)
{
	unsigned s = 0;

	for (int i = 0; i < 512; i++)
		s += (i >= 148 && i < 156) ? ' ' : h[i];
	return s;
}

/* The byte layout the profile documents: fields, checksum, PAX records,
 * trailer, no record padding. */
static void test_layout(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_mem_sink m;
	struct ep_tar_writer w;
	const unsigned char *b;
	char sum[8];

	(void)state;
	ep_mem_sink_init(&m, 1 << 20);
	ep_tar_writer_init(&w, &m.base);
	add(&w,
	    (struct ep_tar_header){.path = "a", .type = EP_TAR_REG, .mode = 0644, .size = 5},
	    "12345");
	add(&w, (struct ep_tar_header){.path = long_name, .type = EP_TAR_DIR, .mode = 0755}, NULL);
	assert_int_equal(ep_tar_finish(&w, &err), 0);
	b = (const unsigned char *)m.data;
	/* a: header + one data block; long dir: PAX header + records + header; trailer */
	assert_int_equal(m.len, 512 + 512 + 512 + 512 + 512 + 1024);
	assert_memory_equal(b + 257, "ustar\0" "00", 8);
	assert_memory_equal(b + 100, "0000644\0", 8);
	assert_memory_equal(b + 124, "00000000005\0", 12);
	assert_memory_equal(b + 136, "15125334400\0", 12); /* 1767225600 */
	assert_memory_equal(b + 329, "0000000\0" "0000000\0", 16);
	assert_int_equal(b[265], 0); /* uname empty */
	assert_int_equal(b[297], 0); /* gname empty */
	snprintf(sum, sizeof(sum), "%06o", header_sum(b));
	assert_memory_equal(b + 148, sum, 6);
	assert_memory_equal(b + 154, "\0 ", 2);
	assert_memory_equal(b + 512, "12345", 5);
	assert_int_equal(b[517], 0);
	/* PAX header for the long directory */
	b += 1024;
	assert_int_equal(b[156], 'x');
	assert_memory_equal(b, "PaxHeaders/d/xxx", 16);
	assert_int_equal(strnlen((const char *)b, 100), 100);
	assert_memory_equal(b + 124, "00000000254\0", 12); /* 172-byte record */
	assert_memory_equal(b + 512, "172 path=d/xxx", 14);
	assert_memory_equal(b + 512 + 171, "\n", 1);
	assert_memory_equal(b + 512 + 171 - 10, "/file.dat/", 10);
	b += 1024;
	assert_int_equal(b[156], '5');
	assert_memory_equal(b, long_name, 100);
	assert_int_equal(b[345], 0); /* prefix stays empty */
	for (size_t i = 0; i < 1024; i++)
		assert_int_equal(b[512 + i], 0);
	ep_sink_release(&m.base);
}

static void test_big_size_and_misuse(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_mem_sink m;
	struct ep_tar_writer w;
	struct ep_tar_header h = {.path = "big", .type = EP_TAR_REG, .mode = 0644,
				  .size = 8ULL << 30, .mtime = -1};

	(void)state;
	ep_mem_sink_init(&m, 1 << 20);
	ep_tar_writer_init(&w, &m.base);
	assert_int_equal(ep_tar_write_header(&w, &h, &err), 0);
	assert_non_null(memmem(m.data + 512, 512, "19 size=8589934592\n", 19));
	assert_non_null(memmem(m.data + 512, 512, "12 mtime=-1\n", 12));
	assert_memory_equal(m.data + 1024 + 124, "00000000000\0", 12);
	/* data still owed: neither a new header nor the trailer may follow */
	assert_int_equal(ep_tar_write_header(&w, &h, &err), -1);
	assert_non_null(strstr(err.msg, "still owed"));
	assert_int_equal(ep_tar_finish(&w, &err), -1);
	ep_sink_release(&m.base);

	ep_mem_sink_init(&m, 1 << 20);
	ep_tar_writer_init(&w, &m.base);
	h.size = 3;
	assert_int_equal(ep_tar_write_header(&w, &h, &err), 0);
	assert_int_equal(ep_tar_write_data(&w, "abcd", 4, &err), -1);
	assert_non_null(strstr(err.msg, "only 3 owed"));
	h = (struct ep_tar_header){.path = "l", .type = EP_TAR_SYMLINK};
	ep_tar_writer_init(&w, &m.base);
	assert_int_equal(ep_tar_write_header(&w, &h, &err), -1);
	assert_non_null(strstr(err.msg, "'l'"));
	ep_sink_release(&m.base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_python_reads_back),
		cmocka_unit_test(test_gnu_tar_reads_back),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_big_size_and_misuse),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
