/* tests/fuzz/fuzz.h - what the harnesses share (docs/fuzzing.md).
 *
 * Each harness defines FUZZ_ENTRY(data, size), the libFuzzer entry point.
 * Under clang -fsanitize=fuzzer it is LLVMFuzzerTestOneInput; for the replay
 * program (tests/fuzz/replay.c, built with the normal compiler, run by
 * `make test`) every harness is compiled with -DFUZZ_NAME=x, so the entry is
 * fuzz_x_one and all of them link into one binary. */
#ifndef EP_FUZZ_H
#define EP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef FUZZ_NAME
#define FUZZ_CAT2(a, b, c) a##b##c
#define FUZZ_CAT(a, b, c) FUZZ_CAT2(a, b, c)
#define FUZZ_ENTRY FUZZ_CAT(fuzz_, FUZZ_NAME, _one)
#else
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
/* With FUZZ_VERBOSE=1 in the environment, prints "what: ok" or the error
 * (to see what the seeds reach); silent otherwise. */
struct ep_error;
void fuzz_note(const char *what, int rc, const struct ep_error *err);

#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

/* A private scratch directory for this process (created on first use under
 * $TMPDIR or /tmp, removed at exit).  Never NULL: aborts if it cannot be
 * made, since a harness without it would test nothing. */
const char *fuzz_scratch(void);

/* Writes buf to path (created or truncated); aborts on failure. */
void fuzz_write_file(const char *path, const void *buf, size_t len);

/* Removes everything below the directory path (not path itself). */
void fuzz_empty_dir(const char *path);

/* A NUL-terminated copy of data (the parsers take C strings). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Splits data at lines "%%" into at most max parts; returns the count.
 * Parts point into data; the newline ending the line before a "%%" line
 * belongs to the separator. */
size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, size_t max);

/* With FUZZ_VERBOSE=1 in the environment, prints "what: ok" or the error
 * (to see what the seeds reach); silent otherwise. */
struct ep_error;
void fuzz_note(const char *what, int rc, const struct ep_error *err);

#endif
