/* SHA256_Init & co. are deprecated in OpenSSL 3 in favour of EVP, and
 * still there; see ep_sha256_init. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* OpenSSL's SHA256_* functions: the same code (SHA-NI where present) as
 * EVP's sha256, without EVP's first-use cost (loading the config and the
 * provider's algorithm tables: ~1 ms of every `envpin run`, which hashes
 * only an index, a manifest and a config). */
int ep_sha256_init(struct ep_sha256 *h, struct ep_error *err)
{
	SHA256_CTX *c = malloc(sizeof(*c));

	h->ctx = NULL;
	if (!c)
		return ep_error_oom(err);
	if (SHA256_Init(c) != 1) {
		free(c);
		return ep_error_set(err, EP_EENV, "sha256: SHA256_Init failed");
	}
	h->ctx = c;
	return 0;
}

/* Hashing bytes that are not in the cache (a mapped blob, a big inflated
 * buffer written by another core) ran at 1.0 GB/s here against 1.8 GB/s
 * from L2: SHA-NI waits on each load and the hardware prefetcher does not
 * run far enough ahead.  Prefetching 4 KiB ahead, 1 KiB at a time, gave
 * 1.5 GB/s (docs/verify.md, "Where the time goes"). */
#define PF_STEP 1024
#define PF_AHEAD 4096

void ep_sha256_update(struct ep_sha256 *h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (len < 64 * 1024) {
		if (len)
			SHA256_Update(h->ctx, buf, len);
		return;
	}
	for (size_t o = 0; o < len; o += PF_STEP) {
		size_t n = len - o < PF_STEP ? len - o : PF_STEP;

		for (size_t q = o + PF_AHEAD; q < o + PF_AHEAD + PF_STEP && q < len; q += 64)
			__builtin_prefetch(p + q, 0, 3);
		SHA256_Update(h->ctx, p + o, n);
	}
}

void ep_sha256_final(struct ep_sha256 *h, ep_digest out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];

	SHA256_Final(md, h->ctx);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[EP_DIGEST_LEN] = '\0';
	ep_sha256_release(h);
}

void ep_sha256_release(struct ep_sha256 *h)
{
	if (h && h->ctx) {
		OPENSSL_cleanse(h->ctx, sizeof(SHA256_CTX));
		free(h->ctx);
		h->ctx = NULL;
	}
}

int ep_sha256_buf(const void *buf, size_t len, ep_digest out, struct ep_error *err)
{
	struct ep_sha256 h;

	if (ep_sha256_init(&h, err) < 0)
		return -1;
	ep_sha256_update(&h, buf, len);
	ep_sha256_final(&h, out);
	return 0;
}

int ep_sha256_fd(int fd, ep_digest out, uint64_t *size, struct ep_error *err)
{
	enum { BUFSZ = 1 << 20 };
	cleanup_free char *buf = ep_malloc(BUFSZ, err);
	struct ep_sha256 h;
	uint64_t total = 0;

	if (!buf || ep_sha256_init(&h, err) < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf, BUFSZ);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ep_sha256_release(&h);
			return ep_error_errno(err, EP_EENV, errno, "read");
		}
		if (n == 0)
			break;
		ep_sha256_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	ep_sha256_final(&h, out);
	if (size)
		*size = total;
	return 0;
}

int ep_sha256_file(const char *path, ep_digest out, uint64_t *size, struct ep_error *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ep_error_errno(err, errno == ENOENT ? EP_EINVAL : EP_EENV, errno,
				      "cannot open '%s'", path);
	if (ep_sha256_fd(fd, out, size, err) < 0)
		return ep_error_wrap(err, "'%s'", path);
	return 0;
}

int ep_is_hex64(const char *s)
{
	for (int i = 0; i < EP_HEX_LEN; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return s[EP_HEX_LEN] == '\0';
}

int ep_digest_check(const char *s, struct ep_error *err)
{
	if (strncmp(s, "sha256:", 7) != 0 || !ep_is_hex64(s + 7))
		return ep_error_set(err, EP_EINVAL,
				    "'%s' is not a digest (expected sha256: and 64 lowercase hex digits)", s);
	return 0;
}
