/* lib/gpu/ldcache.c - bounded readers for ld.so.cache and ELF DT_SONAME.
 * Layouts follow glibc's sysdeps/generic/dl-cache.h (as libnvidia-container's
 * src/ldcache.c does); every offset is checked against the file size. */
#include "ldcache.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define OLD_MAGIC "ld.so-1.7.0"
#define NEW_MAGIC "glibc-ld.so.cache"
#define NEW_VERSION "1.1"

/* struct cache_file (libc5 era): magic[11] + pad, nlibs, then 12-byte entries. */
#define OLD_HDR_SIZE 16
#define OLD_ENTRY_SIZE 12
/* struct cache_file_new: magic[17] version[3] nlibs len_strings flags[1]
 * pad[3] extension_offset unused[3]; entries of 24 bytes follow. */
#define NEW_HDR_SIZE 48
#define NEW_ENTRY_SIZE 24

static uint32_t rd32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v)); /* unaligned-safe; caches are host-endian */
	return v;
}

/* A string at offset off of the section starting at base, inside len bytes. */
static const char *cache_string(const char *base, size_t avail, uint32_t off)
{
	if (off >= avail || !memchr(base + off, '\0', avail - off))
		return NULL;
	return base + off;
}

int ep_ldcache_parse(char *buf, size_t len, struct ep_ldcache *c, struct ep_error *err)
{
	size_t start = 0;

	memset(c, 0, sizeof(*c));
	if (len >= OLD_HDR_SIZE && memcmp(buf, OLD_MAGIC, sizeof(OLD_MAGIC) - 1) == 0) {
		uint32_t nold = rd32(buf + 12);

		/* The new-format cache follows the old entries, 8-aligned. */
		if (nold > (len - OLD_HDR_SIZE) / OLD_ENTRY_SIZE) {
			free(buf);
			return ep_error_set(
			    err, EP_EINVAL,
			    "ld.so.cache: old-format table of %u entries is truncated", nold);
		}
		start = OLD_HDR_SIZE + (size_t)nold * OLD_ENTRY_SIZE;
		start = (start + 7) & ~(size_t)7;
	}
	if (start > len || len - start < NEW_HDR_SIZE ||
	    memcmp(buf + start, NEW_MAGIC, sizeof(NEW_MAGIC) - 1) != 0 ||
	    memcmp(buf + start + sizeof(NEW_MAGIC) - 1, NEW_VERSION, sizeof(NEW_VERSION) - 1) !=
		0) {
		free(buf);
		return ep_error_set(err, EP_EINVAL,
				    "ld.so.cache: no '" NEW_MAGIC NEW_VERSION "' header");
	}
	const char *hdr = buf + start;
	size_t avail = len - start; /* string offsets are relative to hdr */
	uint32_t nlibs = rd32(hdr + 20);

	if (nlibs > (avail - NEW_HDR_SIZE) / NEW_ENTRY_SIZE) {
		free(buf);
		return ep_error_set(err, EP_EINVAL,
				    "ld.so.cache: table of %u entries is larger than the file",
				    nlibs);
	}
	struct ep_ldcache_entry *e = calloc(nlibs ? nlibs : 1, sizeof(*e));

	if (!e) {
		free(buf);
		return ep_error_oom(err);
	}
	for (uint32_t i = 0; i < nlibs; i++) {
		const char *ent = hdr + NEW_HDR_SIZE + (size_t)i * NEW_ENTRY_SIZE;

		e[i].flags = rd32(ent);
		e[i].key = cache_string(hdr, avail, rd32(ent + 4));
		e[i].value = cache_string(hdr, avail, rd32(ent + 8));
		if (!e[i].key || !e[i].value) {
			free(e);
			free(buf);
			return ep_error_set(
			    err, EP_EINVAL,
			    "ld.so.cache: entry %u has a string offset out of range", i);
		}
	}
	c->buf = buf;
	c->len = len;
	c->entries = e;
	c->n = nlibs;
	return 0;
}

int ep_ldcache_load(const char *path, struct ep_ldcache *c, struct ep_error *err)
{
	size_t len = 0;
	char *buf = ep_read_file(path, EP_LDCACHE_MAX_BYTES, &len, err);

	if (!buf)
		return -1;
	if (ep_ldcache_parse(buf, len, c, err) < 0)
		return ep_error_wrap(err, "'%s'", path);
	return 0;
}

void ep_ldcache_release(struct ep_ldcache *c)
{
	if (!c)
		return;
	free(c->entries);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

uint32_t ep_ldcache_native_arch(void)
{
#if defined(__x86_64__)
	return EP_LD_FLAG_X8664_LIB64;
#elif defined(__aarch64__)
	return EP_LD_FLAG_AARCH64_LIB64;
#else
	return EP_LD_FLAG_I386_LIB32;
#endif
}

/* ---- ELF ---- */

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

#define ELF_MAX_PHNUM 256
#define ELF_MAX_DYN 4096
#define SONAME_MAX 512

int ep_elf_soname(const char *path, char **soname, struct ep_error *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	struct stat st;

	*soname = NULL;
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", path);
	if (fstat(fd, &st) < 0)
		return ep_error_errno(err, EP_EENV, errno, "stat '%s'", path);
	uint64_t size = (uint64_t)st.st_size;

	if (!S_ISREG(st.st_mode) || size > EP_ELF_MAX_BYTES || size < sizeof(eh) ||
	    pread_all(fd, &eh, sizeof(eh), 0) < 0)
		return ep_error_set(err, EP_EINVAL, "'%s' is not an ELF file", path);
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return ep_error_set(err, EP_EINVAL, "'%s' is not a 64-bit little-endian ELF file",
				    path);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ELF_MAX_PHNUM ||
	    eh.e_phoff > size || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff)
		return ep_error_set(err, EP_EINVAL, "'%s': bad ELF program header table", path);

	Elf64_Phdr ph[ELF_MAX_PHNUM];

	if (pread_all(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff) < 0)
		return ep_error_set(err, EP_EINVAL, "'%s': truncated ELF program headers", path);
	const Elf64_Phdr *dynph = NULL;

	for (size_t i = 0; i < eh.e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			dynph = &ph[i];
	if (!dynph)
		return 0; /* a static object: no SONAME */
	if (dynph->p_offset > size || dynph->p_filesz > size - dynph->p_offset)
		return ep_error_set(err, EP_EINVAL, "'%s': PT_DYNAMIC out of range", path);
	size_t ndyn = dynph->p_filesz / sizeof(Elf64_Dyn);

	if (ndyn > ELF_MAX_DYN)
		ndyn = ELF_MAX_DYN;
	cleanup_free Elf64_Dyn *dyn = ep_calloc(ndyn ? ndyn : 1, sizeof(*dyn), err);

	if (!dyn)
		return -1;
	if (pread_all(fd, dyn, ndyn * sizeof(*dyn), dynph->p_offset) < 0)
		return ep_error_set(err, EP_EINVAL, "'%s': truncated dynamic section", path);
	uint64_t strtab = 0, strsz = 0, so = 0;
	int have_so = 0, have_strtab = 0;

	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		if (dyn[i].d_tag == DT_STRTAB) {
			strtab = dyn[i].d_un.d_ptr;
			have_strtab = 1;
		} else if (dyn[i].d_tag == DT_STRSZ) {
			strsz = dyn[i].d_un.d_val;
		} else if (dyn[i].d_tag == DT_SONAME) {
			so = dyn[i].d_un.d_val;
			have_so = 1;
		}
	}
	if (!have_so)
		return 0;
	if (!have_strtab || so >= strsz)
		return ep_error_set(err, EP_EINVAL, "'%s': DT_SONAME outside the string table",
				    path);
	/* DT_STRTAB is a virtual address: map it through the PT_LOAD segments. */
	uint64_t off = UINT64_MAX;

	for (size_t i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (strtab >= ph[i].p_vaddr && strtab - ph[i].p_vaddr < ph[i].p_filesz) {
			off = strtab - ph[i].p_vaddr + ph[i].p_offset;
			break;
		}
	}
	if (off == UINT64_MAX || off > size || so > size - off)
		return ep_error_set(err, EP_EINVAL, "'%s': DT_STRTAB not in a loaded segment",
				    path);
	off += so;
	char name[SONAME_MAX];
	size_t n = sizeof(name);

	if (n > size - off)
		n = (size_t)(size - off);
	if (n > strsz - so)
		n = (size_t)(strsz - so);
	if (n == 0 || pread_all(fd, name, n, off) < 0 || !memchr(name, '\0', n))
		return ep_error_set(err, EP_EINVAL, "'%s': DT_SONAME is not a terminated string",
				    path);
	if (!name[0] || strchr(name, '/'))
		return ep_error_set(err, EP_EINVAL, "'%s': invalid DT_SONAME", path);
	*soname = ep_strdup(name, err);
	return *soname ? 1 : -1;
}
