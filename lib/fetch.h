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
#include "sink.h"
#include "store.h"

/* How ep_fetch_http fetches; zero-initialised: the system's CAs, plain
 * http only to a loopback host, no size cap. */
struct ep_fetch_opts {
	const char *ca_file; /* NULL: the system's CAs */
	int any_http;	     /* plain http:// to any host: for bytes whose trust comes
				from a signature or a pinned digest, never the transport
				(apt's model) */
	uint64_t max;	     /* refuse a body over this many bytes (0: no cap) */
};

/* GETs an http(s) URL into out, following redirects one hop at a time (at
 * most 10), each hop under o's URL rules; no credentials are sent.
 * *status gets the last HTTP status (0 when none
 * came).  A final status other than 200 fails: 404 and 410 as EP_EINVAL,
 * the rest as EP_EENV.  The one redirect loop for fetch steps and apt. */
int ep_fetch_http(const char *url, const struct ep_fetch_opts *o, struct ep_sink *out, long *status,
		  struct ep_error *err);

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
