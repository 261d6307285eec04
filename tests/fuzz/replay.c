/* tests/fuzz/replay.c - replays every seed corpus and every past crash
 * input through its harness, without libFuzzer (built with the normal
 * compiler, with sanitizers when `make test` has SANITIZE).  Prints TAP, one
 * line per harness; each harness runs in a child process, so a crash fails
 * that line and names the input it was on.
 *
 *   test_fuzz_replay                  all harnesses, inputs under
 *                                     $TOP/tests/fuzz/{corpus,crashes}/NAME/
 *   test_fuzz_replay NAME FILE...     the given files through one harness */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

#define H(x) int fuzz_##x##_one(const uint8_t *data, size_t size);
#include "harnesses.def"
#undef H

struct harness {
	const char *name;
	int (*one)(const uint8_t *, size_t);
};

static const struct harness harnesses[] = {
#define H(x) {#x, fuzz_##x##_one},
#include "harnesses.def"
#undef H
};

static int run_file(const struct harness *h, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *nb = realloc(buf, cap ? cap * 2 : 65536);

			if (!nb)
				abort();
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (!n)
			break;
		len += n;
	}
	fclose(f);
	/* an exact-size copy, so a read past the end is caught */
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (!exact)
			abort();
		memcpy(exact, buf, len);
		free(buf);
		h->one(exact, len);
		free(exact);
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir (sorted); returns how many, -1 on error. */
static long run_dir(const struct harness *h, const char *dir, FILE *report)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long count = 0;

	if (!d)
		return 0; /* no such directory: nothing to replay */
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "README"))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));

			if (!nn)
				abort();
			names = nn;
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			fprintf(report, "I %s\n", path);
			fflush(report);
			if (run_file(h, path) < 0)
				count = -1;
			else if (count >= 0)
				count++;
		}
		free(names[i]);
	}
	free(names);
	return count;
}

static const struct harness *find(const char *name)
{
	for (size_t i = 0; i < sizeof(harnesses) / sizeof(harnesses[0]); i++)
		if (!strcmp(harnesses[i].name, name))
			return &harnesses[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *top = getenv("TOP");
	size_t nh = sizeof(harnesses) / sizeof(harnesses[0]);
	int failed = 0;

	if (argc > 1) {
		const struct harness *h = find(argv[1]);

		if (!h) {
			fprintf(stderr, "usage: %s [HARNESS FILE...]\n", argv[0]);
			return 2;
		}
		for (int i = 2; i < argc; i++)
			if (run_file(h, argv[i]) < 0)
				return 1;
		return 0;
	}
	if (!top || !*top)
		top = FUZZ_TOP;
	printf("1..%zu\n", nh);
	fflush(stdout);
	for (size_t i = 0; i < nh; i++) {
		char corpus[4096], crashes[4096];
		int pfd[2], status;
		pid_t pid;
		long counts[2] = {0, 0};
		char last[4200];

		snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", top, harnesses[i].name);
		snprintf(crashes, sizeof(crashes), "%s/tests/fuzz/crashes/%s", top,
			 harnesses[i].name);
		if (pipe(pfd) < 0) {
			perror("pipe");
			return 1;
		}
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			FILE *report = fdopen(pfd[1], "w");

			close(pfd[0]);
			if (!report)
				_exit(1);
			counts[0] = run_dir(&harnesses[i], corpus, report);
			counts[1] = run_dir(&harnesses[i], crashes, report);
			fprintf(report, "C %ld %ld\n", counts[0], counts[1]);
			fclose(report);
			/* exit, not _exit: the harnesses' atexit cleanup and LSan run */
			exit(counts[0] < 0 || counts[1] < 0);
		}
		close(pfd[1]);
		{
			FILE *in = fdopen(pfd[0], "r");
			char line[4200];
			int done = 0;

			last[0] = '\0';
			while (in && fgets(line, sizeof(line), in)) {
				line[strcspn(line, "\n")] = '\0';
				if (line[0] == 'I')
					snprintf(last, sizeof(last), "%s", line + 2);
				else if (line[0] == 'C' &&
					 sscanf(line + 2, "%ld %ld", &counts[0], &counts[1]) == 2)
					done = 1;
			}
			if (in)
				fclose(in);
			else
				close(pfd[0]);
			if (!done)
				counts[0] = counts[1] = -1;
		}
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) ||
		    counts[0] < 0) {
			printf("not ok %zu - %s: replay failed on input %s\n", i + 1,
			       harnesses[i].name, last[0] ? last : "(none)");
			failed = 1;
		} else if (counts[0] == 0) {
			printf("not ok %zu - %s: no seed corpus in %s\n", i + 1, harnesses[i].name,
			       corpus);
			failed = 1;
		} else {
			printf("ok %zu - %s: %ld corpus inputs, %ld past crash inputs\n", i + 1,
			       harnesses[i].name, counts[0], counts[1]);
		}
		fflush(stdout);
	}
	return failed;
}
