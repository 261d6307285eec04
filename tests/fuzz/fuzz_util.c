/* tests/fuzz/fuzz_util.c - scratch files and input splitting for the
 * harnesses (see fuzz.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "error.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[PATH_MAX];

static void rm_tree_at(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		int fd;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			continue;
		/* a directory, perhaps without permissions: open it up first */
		(void)fchmodat(dirfd(d), e->d_name, 0700, 0);
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			rm_tree_at(fd);
		(void)unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

void fuzz_empty_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0)
		rm_tree_at(fd);
}

static void remove_scratch(void)
{
	if (scratch[0]) {
		fuzz_empty_dir(scratch);
		(void)rmdir(scratch);
	}
}

const char *fuzz_scratch(void)
{
	const char *t;

	if (scratch[0])
		return scratch;
	t = getenv("TMPDIR");
	if (!t || !*t)
		t = "/tmp";
	if (snprintf(scratch, sizeof(scratch), "%s/envpin-fuzz-XXXXXX", t) >=
		(int)sizeof(scratch) ||
	    !mkdtemp(scratch)) {
		perror("fuzz: scratch directory");
		abort();
	}
	atexit(remove_scratch);
	return scratch;
}

void fuzz_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = buf;

	if (fd < 0) {
		perror(path);
		abort();
	}
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0) {
			perror(path);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, size_t max)
{
	size_t n = 0, start = 0;

	if (!max)
		return 0;
	/* a separator is "%%\n" at the start or "\n%%\n"; the "\n" before "%%" is
	 * not part of the text before it */
	for (size_t i = 0; i + 3 <= size && n + 1 < max; i++) {
		if ((i == 0 || data[i - 1] == '\n') && !memcmp(data + i, "%%\n", 3)) {
			part[n] = data + start;
			len[n] = i > start ? i - 1 - start : 0;
			n++;
			start = i + 3;
			i += 2;
		}
	}
	part[n] = data + start;
	len[n] = size - start;
	return n + 1;
}

void fuzz_note(const char *what, int rc, const struct ep_error *err)
{
	static int verbose = -1;

	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") == '1';
	if (verbose)
		fprintf(stderr, "%s: %s\n", what, rc < 0 ? err->msg : "ok");
}
