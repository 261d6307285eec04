#include "image.h"

#include <string.h>
#include <sys/stat.h>

#include "jsonutil.h"
#include "oci.h"
#include "util.h"

void ep_image_loc_release(struct ep_image_loc *l)
{
	if (!l)
		return;
	free(l->layout);
	free(l->tag);
	l->layout = l->tag = NULL;
}

static const char *ref_name(json_t *desc)
{
	return json_string_value(
		json_object_get(json_object_get(desc, "annotations"), "org.opencontainers.image.ref.name"));
}

/* An index entry that is itself an index: choose linux/amd64. */
static int pick_platform(const char *layout, const char *digest, ep_digest out, struct ep_error *err)
{
	size_t len, i;
	cleanup_free char *text = ep_layout_read_blob(layout, digest, EP_MAX_MANIFEST_BYTES, &len, err);
	cleanup_json json_t *idx = NULL;
	json_t *m;

	if (!text)
		return -1;
	idx = ep_json_loadb(text, len, EP_MAX_MANIFEST_BYTES, digest, err);
	if (!idx)
		return -1;
	json_array_foreach(json_object_get(idx, "manifests"), i, m) {
		json_t *p = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *arch = json_string_value(json_object_get(p, "architecture"));
		const char *d = json_string_value(json_object_get(m, "digest"));

		if (os && arch && d && !strcmp(os, "linux") && !strcmp(arch, "amd64") &&
		    ep_digest_check(d, NULL) == 0) {
			snprintf(out, sizeof(ep_digest), "%s", d);
			return 0;
		}
	}
	return ep_error_set(err, EP_EINVAL, "image index %s in '%s' has no linux/amd64 manifest", digest,
			    layout);
}

int ep_layout_pick(const char *layout, const char *want, ep_digest out, char **tag,
		   struct ep_error *err)
{
	cleanup_free char *ipath = ep_path_join(layout, "index.json", err);
	cleanup_json json_t *idx = NULL;
	json_t *m, *found = NULL;
	size_t i, n = 0;

	if (!ipath)
		return -1;
	idx = ep_json_load_file(ipath, EP_JSON_MAX_BYTES, err);
	if (!idx)
		return ep_error_wrap(err, "'%s' is not an OCI layout", layout);
	json_array_foreach(json_object_get(idx, "manifests"), i, m) {
		const char *d = json_string_value(json_object_get(m, "digest"));
		const char *r = ref_name(m);

		if (!d || ep_digest_check(d, NULL) < 0)
			continue;
		n++;
		if (!want || !strcmp(d, want) || (r && !strcmp(r, want)) ||
		    (strlen(want) >= 4 && !strncmp(ep_digest_hex(d), want, strlen(want)))) {
			if (found && strcmp(json_string_value(json_object_get(found, "digest")), d))
				return ep_error_set(err, EP_EINVAL,
						    want ? "'%s' is ambiguous in '%s'"
							 : "%s'%s' holds several images; name one",
						    want ? want : "", layout);
			found = m;
		}
	}
	if (!found)
		return ep_error_set(err, EP_EINVAL, n ? "no image '%s' in '%s'" : "%s'%s' holds no image",
				    want ? want : "", layout);
	if (tag && ref_name(found)) {
		*tag = ep_strdup(ref_name(found), err);
		if (!*tag)
			return -1;
	}
	{
		const char *mt = json_string_value(json_object_get(found, "mediaType"));
		const char *d = json_string_value(json_object_get(found, "digest"));

		if (mt && (!strcmp(mt, EP_MT_OCI_INDEX) || !strcmp(mt, EP_MT_DOCKER_LIST)))
			return pick_platform(layout, d, out, err);
		snprintf(out, sizeof(ep_digest), "%s", d);
	}
	return 0;
}

int ep_image_locate(struct ep_store *s, const char *image, struct ep_image_loc *out,
		    struct ep_error *err)
{
	struct stat st;
	int is_dir = stat(image, &st) == 0 && S_ISDIR(st.st_mode);

	memset(out, 0, sizeof(*out));
	/* A path is written with a '/' (./dir), so that a directory in the
	 * current directory never shadows a tag of the same name. */
	if (is_dir && strchr(image, '/')) {
		out->layout = ep_strdup(image, err);
		if (!out->layout)
			return -1;
		return ep_layout_pick(image, NULL, out->digest, &out->tag, err);
	}
	if (!s) {
		if (is_dir)
			return ep_error_set(err, EP_EINVAL,
					    "no image '%s' (there is no store); for the directory "
					    "'%s' write './%s'",
					    image, image, image);
		return ep_error_set(err, EP_EINVAL, "no image '%s': not a directory, and there is no store",
				    image);
	}
	if (ep_store_resolve(s, image, out->digest, err) < 0) {
		if (is_dir) {
			cleanup_free char *why = ep_strdup(err ? err->msg : "", NULL);

			return ep_error_set(
			    err, EP_EINVAL,
			    "%s; '%s' is also a directory here: a path needs a '/', "
			    "write './%s'",
			    why ? why : "", image, image);
		}
		return -1;
	}
	out->layout = ep_strdup(s->root, err);
	out->in_store = 1;
	if (!out->layout)
		return -1;
	/* The tag, for export's RepoTags. */
	{
		cleanup_json json_t *imgs = ep_store_images(s, NULL);
		json_t *m;
		size_t i;

		json_array_foreach(imgs, i, m) {
			const char *d = json_string_value(json_object_get(m, "digest"));

			if (d && !strcmp(d, out->digest) && ref_name(m)) {
				out->tag = ep_strdup(ref_name(m), err);
				break;
			}
		}
	}
	return 0;
}
