/* tests/fuzz/fuzz_manifest.c - the manifest parser and validator
 * (ep_manifest_loadb, lib/manifest.c).  Relative paths resolve in a scratch
 * directory holding a few files, so copy sources and rootfs bases can be
 * found as well as missing. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "manifest.h"

/* The files tests/data/manifests/good/ and manifests/ name, so those
 * manifests validate. */
static const char *setup(void)
{
	static const char *const dirs[] = {"payload", "payload/bin", "oci-layout", "default",
					   "default/opt"};
	static const char *const files[] = {
	    "payload/hello.txt", "payload/bin/hi.sh",	  "base.tar",
	    "rootfs.tar",	 "oci-layout/index.json", "oci-layout/oci-layout"};
	static char path[4200];
	char p[4200];

	if (path[0])
		return path;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_scratch(), dirs[i]);
		(void)mkdir(p, 0700);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_scratch(), files[i]);
		fuzz_write_file(p, "", 0);
	}
	snprintf(path, sizeof(path), "%s/m.json", fuzz_scratch());
	return path;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	const char *path = setup();
	struct ep_error err = EP_ERROR_INIT;
	char *buf = fuzz_strndup(data, size);
	struct ep_manifest *m = ep_manifest_loadb(path, buf, size, &err);

	fuzz_note("manifest", m ? 0 : -1, &err);
	if (m) {
		(void)ep_manifest_line(m, "layers[0]");
		(void)ep_manifest_line(m, "base");
		ep_manifest_free(m);
	} else if (!err.code || !err.msg[0]) {
		abort(); /* a refusal must say why */
	}
	free(buf);
	return 0;
}
