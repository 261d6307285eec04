/* bench/inflate-cpu.c: CPU seconds to inflate a multi-member gzip blob
 * (envpin's layers: one member per 1 MiB block) with libdeflate, which
 * envpin uses, and with ISA-L's isal_inflate (when built with
 * -DHAVE_ISAL), member by member from memory.  CPU time, not wall time, so
 * a loaded machine compares the two fairly.  Built and run by
 * bench/inflate-cpu.sh. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

static double cpu(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t cap = 1u << 24, pos = 0, out_total = 0;
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	unsigned char *in, *out = malloc(cap);
	FILE *f;
	long n;
	double t;

	if (argc != 2 || !(f = fopen(argv[1], "rb")) || fseek(f, 0, SEEK_END) < 0 ||
	    (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) < 0 || !(in = malloc((size_t)n)) ||
	    fread(in, 1, (size_t)n, f) != (size_t)n || !out || !d) {
		fprintf(stderr, "usage: inflate-cpu GZIP-BLOB (multi-member, members <= 16 MiB)\n");
		return 2;
	}
	fclose(f);
	t = cpu();
	while (pos < (size_t)n) {
		size_t used, got;

		if (libdeflate_gzip_decompress_ex(d, in + pos, (size_t)n - pos, out, cap, &used,
						  &got) != LIBDEFLATE_SUCCESS) {
			fprintf(stderr, "libdeflate: bad member at %zu\n", pos);
			return 1;
		}
		pos += used;
		out_total += got;
	}
	t = cpu() - t;
	printf("libdeflate   %6.3f s CPU  %5.0f MB/s (uncompressed)\n", t, (double)out_total / 1e6 / t);
#ifdef HAVE_ISAL
	{
		struct inflate_state st;
		size_t isal_total = 0;

		pos = 0;
		t = cpu();
		while (pos < (size_t)n) {
			isal_inflate_init(&st);
			st.crc_flag = ISAL_GZIP;
			st.next_in = in + pos;
			st.avail_in = (uint32_t)((size_t)n - pos > UINT32_MAX ? UINT32_MAX : (size_t)n - pos);
			st.next_out = out;
			st.avail_out = (uint32_t)cap;
			if (isal_inflate(&st) != ISAL_DECOMP_OK || st.block_state != ISAL_BLOCK_FINISH) {
				fprintf(stderr, "isal: bad member at %zu\n", pos);
				return 1;
			}
			pos = (size_t)(st.next_in - in);
			isal_total += cap - st.avail_out;
		}
		t = cpu() - t;
		printf("isal_inflate %6.3f s CPU  %5.0f MB/s (uncompressed)%s\n", t,
		       (double)isal_total / 1e6 / t, isal_total == out_total ? "" : "  SIZE DIFFERS");
	}
#endif
	return 0;
}
