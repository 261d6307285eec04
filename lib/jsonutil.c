#include "jsonutil.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static int text_depth(const char *buf, size_t len)
{
	int depth = 0, max = 0, in_str = 0;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']')
			depth--;
	}
	return max;
}

json_t *ep_json_loadb(const char *buf, size_t len, size_t max, const char *what,
		      struct ep_error *err)
{
	json_error_t je;
	json_t *j;

	if (len > max) {
		ep_error_set(err, EP_EINVAL, "%s: too large (%zu bytes, limit %zu)", what, len, max);
		return NULL;
	}
	/* Checked on the text, before jansson recurses into it. */
	if (text_depth(buf, len) > EP_JSON_MAX_DEPTH) {
		ep_error_set(err, EP_EINVAL, "%s: nested deeper than %d levels", what,
			     EP_JSON_MAX_DEPTH);
		return NULL;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		ep_error_set(err, EP_EINVAL, "%s:%d:%d: invalid JSON: %s", what, je.line, je.column,
			     je.text);
		return NULL;
	}
	return j;
}

json_t *ep_json_load_file(const char *path, size_t max, struct ep_error *err)
{
	size_t len;
	cleanup_free char *buf = ep_read_file(path, max, &len, err);
	cleanup_free char *what = NULL;

	if (!buf)
		return NULL;
	what = ep_asprintf(err, "'%s'", path);
	if (!what)
		return NULL;
	return ep_json_loadb(buf, len, max, what, err);
}

char *ep_json_canonical(const json_t *j, size_t *len, struct ep_error *err)
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);

	if (!s) {
		ep_error_oom(err);
		return NULL;
	}
	if (len)
		*len = strlen(s);
	return s;
}

char *ep_json_pretty(const json_t *j, struct ep_error *err)
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENCODE_ANY);
	char *r;

	if (!s) {
		ep_error_oom(err);
		return NULL;
	}
	r = ep_asprintf(err, "%s\n", s);
	free(s);
	return r;
}

int ep_json_depth(const json_t *j)
{
	int max = 0;

	if (json_is_object(j)) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)j, k, v) {
			int d = ep_json_depth(v);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	if (json_is_array(j)) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v) {
			int d = ep_json_depth(v);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	return 0;
}

json_t *ep_json_strings(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}
