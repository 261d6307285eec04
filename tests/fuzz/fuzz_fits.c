/* tests/fuzz/fuzz_fits.c - the FITS reader of runtime/fitsinfer
 * (fi_read_image on cfitsio, then fi_describe_json): header keywords
 * (NAXIS*, BITPIX, BSCALE/BZERO/BLANK, GROUPS, ZCMPTYPE, EXTNAME), compressed
 * and extension HDUs, with a small pixel cap.  cfitsio reads the input from a
 * scratch file, as it would a user's.
 *
 * Inputs with a ZIMAGE keyword (tile-compressed HDUs) are skipped: Debian 12's
 * cfitsio 4.2.0 reads past the compressed tile in fits_rdecomp on corrupt
 * RICE data (SEGV within seconds of fuzzing, not in envpin's code; see
 * docs/fuzzing.md and tests/fuzz/known/fits/), which would stop every run
 * before it reaches the header paths. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fitsimg.h"
#include "fuzz.h"

#ifndef FUZZ_NAME
/* cfitsio sizes some of its buffers from header values and handles a failed
 * calloc itself (MEMORY_ALLOCATION, the file is refused); ASan would abort on
 * the requested size alone (tests/fuzz/known/README). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static char path[4200];
	struct fi_image img;
	char errbuf[512], json[8192];

	if (memmem(data, size, "ZIMAGE", 6))
		return 0;
	if (!path[0])
		snprintf(path, sizeof(path), "%s/in.fits", fuzz_scratch());
	fuzz_write_file(path, data, size);
	if (fi_read_image(path, 1u << 20, &img, errbuf, sizeof(errbuf)) == 0) {
		(void)fi_describe_json(path, &img, json, sizeof(json));
		fi_image_free(&img);
	}
	return 0;
}
