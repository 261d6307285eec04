/* tests/fuzz/fuzz_lock.c - what a build reads from a lock file
 * (lib/build.c: load_lock, choose_compressor, pip_target, check_locked):
 * lockVersion and inputs, the compressor description, the pinned pip target,
 * and the canonical form used in drift messages.  The build keeps these
 * steps static, so this harness calls the same library functions in the same
 * order. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "fuzz.h"
#include "jsonutil.h"
#include "pip.h"

#define LOCK_MAX_BYTES (4u << 20)

static void compressor(json_t *lc)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_compress_params cp;
	enum ep_compression k;
	const char *name = json_string_value(json_object_get(lc, "name"));
	json_t *d;

	if (!name || ep_compression_parse(name, &k, &err) < 0)
		return;
	ep_compress_defaults(k, &cp);
	if (json_is_integer(json_object_get(lc, "level")))
		cp.level = (int)json_integer_value(json_object_get(lc, "level"));
	if (json_is_integer(json_object_get(lc, "block_size")))
		cp.block_size = (size_t)json_integer_value(json_object_get(lc, "block_size"));
	d = ep_compress_describe(&cp, &err);
	if (d) {
		(void)json_equal(d, lc);
		json_decref(d);
	}
}

static void pip_layer(json_t *locked, json_t *base)
{
	struct ep_error err = EP_ERROR_INIT;
	struct ep_pip_target t;
	const char *v;

	strcpy(t.python, EP_PIP_DEFAULT_PYTHON);
	strcpy(t.glibc, EP_PIP_DEFAULT_GLIBC);
	if ((v = json_string_value(json_object_get(locked, "python"))))
		(void)ep_pip_check_version("python", v, &err);
	if ((v = json_string_value(json_object_get(locked, "glibc"))))
		(void)ep_pip_check_version("glibc", v, &err);
	ep_pip_target_from_packages(json_object_get(base, "packages"), &t);
	(void)ep_pip_check_version("python", t.python, &err);
	(void)ep_pip_check_version("glibc", t.glibc, &err);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct ep_error err = EP_ERROR_INIT;
	json_t *lock = ep_json_loadb((const char *)data, size, LOCK_MAX_BYTES, "lock", &err);
	json_t *in, *layers, *v, *l;
	size_t i;

	if (!lock)
		return 0;
	v = json_object_get(lock, "lockVersion");
	in = json_object_get(lock, "inputs");
	if (!json_is_integer(v) || json_integer_value(v) != 1 || !json_is_object(in))
		goto out;
	compressor(json_object_get(lock, "compressor"));
	layers = json_object_get(in, "layers");
	json_array_foreach (layers, i, l) {
		char *c;

		if (json_is_string(json_object_get(l, "kind")) &&
		    !strcmp(json_string_value(json_object_get(l, "kind")), "pip"))
			pip_layer(l, json_object_get(in, "base"));
		c = ep_json_canonical(l, NULL, &err);
		free(c);
	}
out:
	json_decref(lock);
	return 0;
}
