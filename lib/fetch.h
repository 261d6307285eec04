/* lib/fetch.h - the `fetch` layer step: files and archives from URLs, pinned
 * by sha256.
 *
 * URLs: https:// (verified TLS; ca_file or system CAs), http:// only to a
 * loopback host, and file:// (absolute path).  Redirects are followed one hop
 * at a time (at most 10) under the same rules.  The bytes are hashed while
 * they are written into the store transaction's directory; a wrong sha256 is
 * EP_EMISMATCH naming both digests, and nothing of it is kept. */
#ifndef EP_FETCH_H
#define EP_FETCH_H

#include <stdint.h>

#include "error.h"
#include "layer.h"
#include "store.h"

/* Downloads url into a temp file of txn t and checks it against sha256_hex
 * (64 lowercase hex).  *path gets the file (caller frees the string; the file
 * goes away with the txn). */
int ep_fetch_url(struct ep_txn *t, const char *url, const char *sha256_hex, const char *ca_file,
		 char **path, struct ep_error *err);

/* Adds a fetched file to a layer tree.  extract: the file is an archive (tar,
 * tar.gz, tar.xz, tar.zst, or zip, recognised by content) whose entries go
 * under dest, normalized like any archive (lib/layer.h); zip archives are
 * converted to a tar in spool_dir first.  Otherwise the file is placed at
 * dest, or at dest/NAME (NAME from the URL's path) when dest ends with "/",
 * mode 0644, owner 0:0, mtime `mtime`. */
int ep_fetch_add(struct ep_tree *tree, const char *file, const char *url, const char *dest,
		 int extract, int64_t mtime, const char *spool_dir, struct ep_error *err);

#endif
