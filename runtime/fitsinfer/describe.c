/* runtime/fitsinfer/describe.c - envpin-fitsdescribe: prints the --describe
 * JSON of one FITS image (what `envpin-fitsinfer --describe` prints) and can
 * dump the decoded pixels, so that tests compare the reader with astropy.
 * Exit: 0 ok, 2 usage or a file that is not a readable image, 3 I/O failure. */
#include "fitsimg.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: envpin-fitsdescribe [--max-pixels N] [--dump-pixels OUT] FILE[ext][section]...\n"
	"Prints one JSON line per FITS image: file, hdu, bitpix, shape (NumPy order), n, nan,\n"
	"min, max, sum over the physical values (BSCALE/BZERO applied, BLANK/NaN/Inf undefined),\n"
	"compressed, cmptype, extname, bscale, bzero, blank, pixhash.\n"
	"  --dump-pixels OUT  write the pixels of the (single) FILE to OUT as native float32\n"
	"  --max-pixels N     refuse images with more than N pixels (default 268435456)\n"
	"FILE takes cfitsio's extended syntax: f.fits[2], f.fits[SCI], f.fits[1:100,1:50].\n";

static int dump(const char *path, const struct fi_image *img)
{
	FILE *f = fopen(path, "wb");

	if (!f) {
		fprintf(stderr, "envpin-fitsdescribe: cannot create '%s': %s\n", path, strerror(errno));
		return -1;
	}
	if (fwrite(img->data, sizeof(float), img->n, f) != img->n || fclose(f) != 0) {
		fprintf(stderr, "envpin-fitsdescribe: cannot write '%s': %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dump-pixels", required_argument, NULL, 'd'},
		{"max-pixels", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dump_path = NULL;
	size_t max_pixels = 0;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "d:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dump_path = optarg;
			break;
		case 'm': {
			char *end;

			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-' || v == 0) {
				fprintf(stderr, "envpin-fitsdescribe: invalid --max-pixels '%s'\n", optarg);
				return 2;
			}
			max_pixels = (size_t)v;
			break;
		}
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc || (dump_path && argc - optind != 1)) {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		struct fi_image img;
		char err[1024];
		/* each byte of the name may need 6 when escaped */
		size_t jlen = 1024 + 6 * strlen(argv[i]);
		char *json = malloc(jlen);

		if (!json) {
			fprintf(stderr, "envpin-fitsdescribe: out of memory\n");
			return 3;
		}

		if (fi_read_image(argv[i], max_pixels, &img, err, sizeof(err)) < 0) {
			fprintf(stderr, "envpin-fitsdescribe: %s\n", err);
			free(json);
			rc = 2;
			continue;
		}
		if (fi_describe_json(argv[i], &img, json, jlen) < 0) {
			fprintf(stderr, "envpin-fitsdescribe: '%s': description too long\n", argv[i]);
			rc = 3;
		} else {
			puts(json);
			if (dump_path && dump(dump_path, &img) < 0)
				rc = 3;
		}
		fi_image_free(&img);
		free(json);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "envpin-fitsdescribe: cannot write to stdout: %s\n", strerror(errno));
		return 3;
	}
	return rc;
}
