/* tests/fuzz/fuzz_tar.c - the streaming tar parser of lib/unpack.c
 * (ustar headers, PAX 'x'/'g' records, GNU 'L'/'K' long names, whiteouts,
 * links), run for real: the input is an uncompressed layer, unpacked with
 * ep_unpack_layer into a scratch root (both whiteout modes, by the input's
 * last byte), with small caps so a hostile size stops early.  The root is
 * emptied after each input. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "unpack.h"

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static char root[4200], blob[4200];
	struct ep_error err = EP_ERROR_INIT;
	struct ep_unpack_opts o;
	struct ep_unpack_stats st = {0};
	int fd, rc;

	if (!root[0]) {
		snprintf(root, sizeof(root), "%s/root", fuzz_scratch());
		snprintf(blob, sizeof(blob), "%s/layer.tar", fuzz_scratch());
		if (mkdir(root, 0700) < 0)
			abort();
	}
	fuzz_write_file(blob, data, size);
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		abort();
	ep_unpack_opts_init(&o);
	o.whiteouts = size && (data[size - 1] & 1) ? EP_WHITEOUT_OVERLAY : EP_WHITEOUT_APPLY;
	o.max_bytes = 8u << 20;
	o.max_entries = 4096;
	o.same_owner = 0;
	o.allow_devices = 0;
	o.stats = &st;
	rc = ep_unpack_layer(fd, blob, "application/vnd.oci.image.layer.v1.tar", NULL, &o, &err);
	fuzz_note("unpack", rc, &err);
	if (rc < 0 && (!err.code || !err.msg[0]))
		abort(); /* a refusal must say why */
	close(fd);
	fuzz_empty_dir(root);
	return 0;
}
