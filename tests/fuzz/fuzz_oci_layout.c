/* tests/fuzz/fuzz_oci_layout.c - OCI index, image manifest and config
 * documents (lib/oci.c: parse_manifest, parse_config, pick_manifest and
 * the checks of ep_verify_layout, ep_inspect, ep_export).
 *
 * Blobs are found by digest, which a mutation cannot keep right, so the
 * input describes a layout whose digests the harness fills in: parts
 * separated by lines "%%", part 0 is index.json, parts 1..7 are blobs.  In
 * part i, "@N" (N a digit > i) becomes the hex SHA-256 of part N and "#N" its
 * size in bytes; parts are substituted from the last to the first, so a
 * manifest names its config and layers as "sha256:@2" and "#2".  Every blob
 * is written as blobs/sha256/<its hash>. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "digest.h"
#include "fuzz.h"
#include "oci.h"

#define MAX_PARTS 8

struct part {
	char *buf;
	size_t len;
	ep_digest digest;
};

static char *substitute(const uint8_t *in, size_t n, size_t self, struct part *p, size_t np,
			size_t *out_len)
{
	size_t cap = n * 32 + 1, o = 0; /* "@N" (2 bytes) becomes 64 */
	char *out = malloc(cap);

	if (!out)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t k;

		if ((in[i] == '@' || in[i] == '#') && i + 1 < n && isdigit(in[i + 1]) &&
		    (k = (size_t)(in[i + 1] - '0')) > self && k < np) {
			if (in[i] == '@')
				o += (size_t)sprintf(out + o, "%s", ep_digest_hex(p[k].digest));
			else
				o += (size_t)sprintf(out + o, "%zu", p[k].len);
			i++;
			continue;
		}
		out[o++] = (char)in[i];
	}
	*out_len = o;
	return out;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static char dir[4200], blobs[4300], out[4300];
	const uint8_t *raw[MAX_PARTS];
	size_t rlen[MAX_PARTS], np = fuzz_split(data, size, raw, rlen, MAX_PARTS);
	struct part p[MAX_PARTS] = {0};
	struct ep_error err = EP_ERROR_INIT;
	struct ep_verify_report rep = {0};
	char path[4400];
	json_t *j;
	int ok;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/layout", fuzz_scratch());
		snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", dir);
		snprintf(out, sizeof(out), "%s/export.tar", fuzz_scratch());
	}
	(void)mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/blobs", dir);
	(void)mkdir(path, 0700);
	(void)mkdir(blobs, 0700);
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	fuzz_write_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	for (size_t i = np; i-- > 0;) {
		p[i].buf = substitute(raw[i], rlen[i], i, p, np, &p[i].len);
		if (ep_sha256_buf(p[i].buf, p[i].len, p[i].digest, &err) < 0)
			abort();
		if (i == 0)
			snprintf(path, sizeof(path), "%s/index.json", dir);
		else
			snprintf(path, sizeof(path), "%s/%s", blobs, ep_digest_hex(p[i].digest));
		fuzz_write_file(path, p[i].buf, p[i].len);
	}
	/* as `envpin verify DIR`: index.json picks the manifest */
	ok = ep_verify_path(dir, NULL, &rep, NULL, NULL, &err) == 0;
	fuzz_note("verify_path", ok ? 0 : -1, &err);
	ep_verify_report_release(&rep);
	if (!ok && (!err.code || !err.msg[0]))
		abort(); /* a refusal must say why */
	if (np > 1) {
		/* the store's way: the manifest named by digest */
		const char *md = p[1].digest;

		ep_error_clear(&err);
		ok = ep_verify_layout(dir, md, &rep, NULL, NULL, &err) == 0;
		fuzz_note("verify_layout", ok ? 0 : -1, &err);
		ep_verify_report_release(&rep);
		j = ep_inspect(dir, md, &err);
		json_decref(j);
		if (ok)
			fuzz_note("export",
				  ep_export(dir, md, out, EP_EXPORT_DOCKER, "fuzz/x:1", &err),
				  &err);
	}
	for (size_t i = 0; i < np; i++)
		free(p[i].buf);
	fuzz_empty_dir(dir);
	return 0;
}
