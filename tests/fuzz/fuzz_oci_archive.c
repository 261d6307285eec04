/* tests/fuzz/fuzz_oci_archive.c - image archives read as one tar stream
 * (lib/oci.c: scan_archive with libarchive, member-name cleaning, links,
 * then the docker-archive manifest.json or the OCI index.json inside):
 * ep_verify_path on the input written to a scratch file, as
 * `envpin verify FILE.tar` does. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "oci.h"

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static char path[4200];
	struct ep_error err = EP_ERROR_INIT;
	struct ep_verify_report rep = {0};
	int rc;

	if (!path[0])
		snprintf(path, sizeof(path), "%s/image.tar", fuzz_scratch());
	fuzz_write_file(path, data, size);
	rc = ep_verify_path(path, NULL, &rep, NULL, NULL, &err);
	fuzz_note("verify_path", rc, &err);
	ep_verify_report_release(&rep);
	if (rc < 0 && (!err.code || !err.msg[0]))
		abort(); /* a refusal must say why */
	return 0;
}
