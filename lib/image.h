/* lib/image.h - what an IMAGE argument names: an image in the store (digest,
 * unique prefix, tag) or a path to an OCI layout directory. */
#ifndef EP_IMAGE_H
#define EP_IMAGE_H

#include "digest.h"
#include "error.h"
#include "store.h"

struct ep_image_loc {
	char *layout;      /* OCI layout directory holding the image (caller frees via release) */
	ep_digest digest;  /* manifest digest */
	int in_store;      /* 1 if layout is the store */
	char *tag;         /* ref.name annotation if any */
};
void ep_image_loc_release(struct ep_image_loc *l);

/* Picks the image manifest in an OCI layout's index.json: want (a digest,
 * or a ref.name) or the only entry.  An entry that is an image index
 * (multi-platform) resolves to its linux/amd64 manifest. */
int ep_layout_pick(const char *layout, const char *want, ep_digest out, char **tag,
		   struct ep_error *err);

/* Resolves image: a name with a '/' that is an existing directory is an
 * OCI layout (./dir, /abs/dir); anything else is looked up in the store s
 * (which may be NULL when no store exists), so a bare NAME is always the
 * tag, even when a directory NAME is in the current directory.  A bare NAME
 * that is not in the store but is a directory: EP_EINVAL suggesting
 * './NAME'. */
int ep_image_locate(struct ep_store *s, const char *image, struct ep_image_loc *out,
		    struct ep_error *err);

#endif
