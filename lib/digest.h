/* lib/digest.h - SHA-256 (OpenSSL's, so SHA-NI is used where present) and
 * the "sha256:<64 hex>" digest strings of the OCI specs. */
#ifndef EP_DIGEST_H
#define EP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define EP_HEX_LEN 64
#define EP_DIGEST_LEN (7 + EP_HEX_LEN) /* "sha256:" + hex, without NUL */

/* A digest string with its NUL: "sha256:...". */
typedef char ep_digest[EP_DIGEST_LEN + 1];

struct ep_sha256 {
	void *ctx; /* SHA256_CTX */
};

int ep_sha256_init(struct ep_sha256 *h, struct ep_error *err);
void ep_sha256_update(struct ep_sha256 *h, const void *buf, size_t len);
/* Writes "sha256:<hex>" to out and releases the context. */
void ep_sha256_final(struct ep_sha256 *h, ep_digest out);
/* Frees the context without a result (NULL-safe, idempotent). */
void ep_sha256_release(struct ep_sha256 *h);

/* One-shot digest of a buffer. */
int ep_sha256_buf(const void *buf, size_t len, ep_digest out, struct ep_error *err);

/* Streams a file through SHA-256; *size gets its length (may be NULL). */
int ep_sha256_file(const char *path, ep_digest out, uint64_t *size, struct ep_error *err);
int ep_sha256_fd(int fd, ep_digest out, uint64_t *size, struct ep_error *err);

/* Accepts "sha256:<64 lowercase hex>" only.  Returns 0 or -1 (EP_EINVAL,
 * message names the string). */
int ep_digest_check(const char *s, struct ep_error *err);

/* True if s is 64 lowercase hex digits. */
int ep_is_hex64(const char *s);

/* Pointer to the hex part of a digest string ("sha256:" skipped). */
static inline const char *ep_digest_hex(const char *digest)
{
	return digest + 7;
}

#endif
