/* lib/ldcache.h - readers for the two host files GPU discovery trusts least:
 * glibc's /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format, optionally
 * behind the old libc5 "ld.so-1.7.0" section) and the DT_SONAME of an ELF
 * shared object.  Both are bounded and refuse malformed input instead of
 * reading past it (offsets out of range, strings without a NUL, truncated
 * tables), because a host root may be any directory a user points at. */
#ifndef EP_LDCACHE_H
#define EP_LDCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Caps: a real cache holds a few thousand entries in well under 1 MiB. */
#define EP_LDCACHE_MAX_BYTES (64u << 20)
#define EP_ELF_MAX_BYTES (1u << 30) /* we read headers only; this caps offsets */

/* Entry flags (glibc elf/ldconfig.h / sysdeps/generic/ldconfig.h). */
#define EP_LD_FLAG_TYPE_MASK 0x00ff
#define EP_LD_FLAG_ELF_LIBC6 0x0003
#define EP_LD_FLAG_ARCH_MASK 0xff00
#define EP_LD_FLAG_X8664_LIB64 0x0300
#define EP_LD_FLAG_AARCH64_LIB64 0x0a00
#define EP_LD_FLAG_I386_LIB32 0x0000 /* i386 has no arch bits */

struct ep_ldcache_entry {
	uint32_t flags;
	const char *key;   /* the SONAME, e.g. "libcuda.so.1" (points into buf) */
	const char *value; /* the path, e.g. "/usr/lib/x86_64-linux-gnu/libcuda.so.1" */
};

struct ep_ldcache {
	char *buf; /* the file; entries point into it */
	size_t len;
	struct ep_ldcache_entry *entries;
	size_t n;
};

/* Parses a cache image.  Takes ownership of buf (malloc'ed, len bytes) on
 * success and on failure.  Malformed input: EP_EINVAL naming what is wrong. */
int ep_ldcache_parse(char *buf, size_t len, struct ep_ldcache *c, struct ep_error *err);

/* Reads and parses path (at most EP_LDCACHE_MAX_BYTES). */
int ep_ldcache_load(const char *path, struct ep_ldcache *c, struct ep_error *err);

/* Frees the contents; c may be zeroed. */
void ep_ldcache_release(struct ep_ldcache *c);

/* The arch flag bits of the libraries this process can load (x86-64:
 * EP_LD_FLAG_X8664_LIB64). */
uint32_t ep_ldcache_native_arch(void);

/* Reads the DT_SONAME of the 64-bit little-endian ELF shared object at path.
 * Returns 1 and sets *soname (caller frees), 0 when the file is ELF but has
 * no SONAME, -1 when it is not a readable ELF64 object (err says why). */
int ep_elf_soname(const char *path, char **soname, struct ep_error *err);

#endif
