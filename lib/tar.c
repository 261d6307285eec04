/* lib/tar.c - deterministic PAX tar writer.  The byte layout is specified in
 * docs/profile-1.md; any change here that alters output bytes is a new
 * profile, and tests/data/golden/profile1.tar will catch it. */
#include "tar.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define BLOCK 512
#define NAME_LEN 100
#define USTAR_MAX_ID 07777777ULL       /* 7 octal digits */
#define USTAR_MAX_SIZE 077777777777ULL /* 11 octal digits: 8 GiB - 1 */
#define USTAR_MAX_TIME 077777777777LL
#define PAX_PREFIX "PaxHeaders/"

static const char zeros[2 * BLOCK];

void ep_tar_writer_init(struct ep_tar_writer *w, struct ep_sink *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
}

/* Fixed-width octal, zero padded, NUL terminated: the form GNU tar and
 * Python's tarfile both write, so readers agree on every field. */
static void put_octal(char *field, size_t width, uint64_t v)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%0*" PRIo64, (int)(width - 1), v);
	memcpy(field, tmp, width - 1);
	field[width - 1] = '\0';
}

/* Copies at most n bytes; the field is NUL padded (and unterminated when
 * the string fills it, as ustar allows). */
static void put_str(char *field, size_t n, const char *s)
{
	size_t l = strlen(s);

	memcpy(field, s, l < n ? l : n);
}

struct pax {
	char *buf;
	size_t len, cap;
};

/* One record "LEN KEY=VALUE\n" where LEN counts the whole record, itself
 * included; the fixed point is found by iterating over the digit count. */
static int pax_add(struct pax *p, const char *key, const void *val, size_t vlen,
		   struct ep_error *err)
{
	size_t klen = strlen(key), base = klen + vlen + 3, total = base, digits;
	char num[32];
	int n;

	for (;;) {
		n = snprintf(num, sizeof(num), "%zu", total);
		digits = (size_t)n;
		if (base + digits == total)
			break;
		total = base + digits;
	}
	if (p->len + total > p->cap) {
		size_t nc = p->cap ? p->cap : 1024;
		char *nb;

		while (nc < p->len + total)
			nc *= 2;
		nb = ep_realloc(p->buf, nc, err);
		if (!nb)
			return -1;
		p->buf = nb;
		p->cap = nc;
	}
	memcpy(p->buf + p->len, num, digits);
	p->len += digits;
	p->buf[p->len++] = ' ';
	memcpy(p->buf + p->len, key, klen);
	p->len += klen;
	p->buf[p->len++] = '=';
	memcpy(p->buf + p->len, val, vlen);
	p->len += vlen;
	p->buf[p->len++] = '\n';
	return 0;
}

static int pax_add_u64(struct pax *p, const char *key, uint64_t v, struct ep_error *err)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	return pax_add(p, key, num, (size_t)n, err);
}

static void set_checksum(char *hdr)
{
	unsigned sum = 0;
	char tmp[16];

	memset(hdr + 148, ' ', 8);
	for (size_t i = 0; i < BLOCK; i++)
		sum += (unsigned char)hdr[i];
	/* six digits, NUL, space: the historic form every reader accepts */
	snprintf(tmp, sizeof(tmp), "%06o", sum);
	memcpy(hdr + 148, tmp, 6);
	hdr[154] = '\0';
	hdr[155] = ' ';
}

/* Fills a ustar header block.  Fields that do not fit are left as zero
 * octal; the caller has put their real values in a PAX record. */
static void fill_ustar(char *hdr, const char *name, int type, uint32_t mode, uint64_t uid,
		       uint64_t gid, uint64_t size, int64_t mtime, const char *linkname,
		       int is_dev, uint32_t devmajor, uint32_t devminor)
{
	memset(hdr, 0, BLOCK);
	put_str(hdr, NAME_LEN, name);
	put_octal(hdr + 100, 8, mode & 07777);
	put_octal(hdr + 108, 8, uid <= USTAR_MAX_ID ? uid : 0);
	put_octal(hdr + 116, 8, gid <= USTAR_MAX_ID ? gid : 0);
	put_octal(hdr + 124, 12, size <= USTAR_MAX_SIZE ? size : 0);
	put_octal(hdr + 136, 12,
		  (mtime >= 0 && mtime <= USTAR_MAX_TIME) ? (uint64_t)mtime : 0);
	hdr[156] = (char)type;
	if (linkname)
		put_str(hdr + 157, NAME_LEN, linkname);
	memcpy(hdr + 257, "ustar\0" "00", 8);
	put_octal(hdr + 329, 8, is_dev ? devmajor : 0);
	put_octal(hdr + 337, 8, is_dev ? devminor : 0);
	set_checksum(hdr);
}

static int sink_write(struct ep_tar_writer *w, const void *buf, size_t len, struct ep_error *err)
{
	return ep_sink_write(w->out, buf, len, err);
}

int ep_tar_write_header(struct ep_tar_writer *w, const struct ep_tar_header *h,
			struct ep_error *err)
{
	cleanup_free char *name = NULL;
	struct pax pax = {0};
	char hdr[BLOCK];
	int is_dev = h->type == EP_TAR_CHR || h->type == EP_TAR_BLK;
	uint64_t size = h->type == EP_TAR_REG ? h->size : 0;
	int rc = -1;

	if (w->remaining)
		return ep_error_set(err, EP_EINVAL,
				    "tar: '%s' started while %" PRIu64 " data bytes are still owed",
				    h->path, w->remaining);
	if (!h->path || !h->path[0])
		return ep_error_set(err, EP_EINVAL, "tar: empty entry name");
	if ((h->type == EP_TAR_SYMLINK || h->type == EP_TAR_HARDLINK) &&
	    (!h->linkname || !h->linkname[0]))
		return ep_error_set(err, EP_EINVAL, "tar: link '%s' has no target", h->path);
	if (is_dev && (h->devmajor > USTAR_MAX_ID || h->devminor > USTAR_MAX_ID))
		return ep_error_set(err, EP_EINVAL, "tar: device numbers of '%s' do not fit",
				    h->path);
	name = ep_asprintf(err, "%s%s", h->path, h->type == EP_TAR_DIR ? "/" : "");
	if (!name)
		return -1;

	/* PAX records in a fixed order; see docs/profile-1.md. */
	if (strlen(name) > NAME_LEN && pax_add(&pax, "path", name, strlen(name), err) < 0)
		goto out;
	if (h->linkname && strlen(h->linkname) > NAME_LEN &&
	    (h->type == EP_TAR_SYMLINK || h->type == EP_TAR_HARDLINK) &&
	    pax_add(&pax, "linkpath", h->linkname, strlen(h->linkname), err) < 0)
		goto out;
	if (size > USTAR_MAX_SIZE && pax_add_u64(&pax, "size", size, err) < 0)
		goto out;
	if (h->uid > USTAR_MAX_ID && pax_add_u64(&pax, "uid", h->uid, err) < 0)
		goto out;
	if (h->gid > USTAR_MAX_ID && pax_add_u64(&pax, "gid", h->gid, err) < 0)
		goto out;
	if (h->mtime < 0 || h->mtime > USTAR_MAX_TIME) {
		char num[32];
		int n = snprintf(num, sizeof(num), "%" PRId64, h->mtime);

		if (pax_add(&pax, "mtime", num, (size_t)n, err) < 0)
			goto out;
	}
	for (size_t i = 0; i < h->n_xattrs; i++) {
		cleanup_free char *key = ep_asprintf(err, "SCHILY.xattr.%s", h->xattrs[i].name);

		if (!key)
			goto out;
		if (strchr(h->xattrs[i].name, '=')) {
			ep_error_set(err, EP_EINVAL, "tar: xattr name '%s' of '%s' contains '='",
				     h->xattrs[i].name, h->path);
			goto out;
		}
		if (pax_add(&pax, key, h->xattrs[i].value, h->xattrs[i].len, err) < 0)
			goto out;
	}

	if (pax.len) {
		cleanup_free char *pname = NULL;
		size_t nl = strlen(h->path), pad;

		/* The name matters only to readers without PAX support, which
		 * extract it as a plain file; a fixed prefix keeps it out of
		 * the way and deterministic. */
		pname = ep_asprintf(err, "%s%s", PAX_PREFIX, h->path);
		if (!pname)
			goto out;
		nl = strlen(pname);
		if (nl > NAME_LEN)
			nl = NAME_LEN;
		while (nl > 0 && pname[nl - 1] == '/')
			nl--;
		pname[nl] = '\0';
		fill_ustar(hdr, pname, 'x', 0644, 0, 0, pax.len, h->mtime, NULL, 0, 0, 0);
		if (sink_write(w, hdr, BLOCK, err) < 0 || sink_write(w, pax.buf, pax.len, err) < 0)
			goto out;
		pad = (BLOCK - pax.len % BLOCK) % BLOCK;
		if (pad && sink_write(w, zeros, pad, err) < 0)
			goto out;
	}

	fill_ustar(hdr, name, h->type, h->mode, h->uid, h->gid, size, h->mtime, h->linkname,
		   is_dev, h->devmajor, h->devminor);
	if (sink_write(w, hdr, BLOCK, err) < 0)
		goto out;
	w->remaining = size;
	w->entry_size = size;
	w->written = 0;
	rc = 0;
out:
	free(pax.buf);
	if (rc < 0)
		ep_error_wrap(err, "tar header '%s'", h->path);
	return rc;
}

int ep_tar_write_data(struct ep_tar_writer *w, const void *buf, size_t len, struct ep_error *err)
{
	if (len > w->remaining)
		return ep_error_set(err, EP_EINVAL,
				    "tar: %zu data bytes given, only %" PRIu64 " owed", len,
				    w->remaining);
	if (len && sink_write(w, buf, len, err) < 0)
		return -1;
	w->remaining -= len;
	w->written += len;
	if (w->remaining == 0 && len) {
		size_t pad = (BLOCK - w->entry_size % BLOCK) % BLOCK;

		if (pad && sink_write(w, zeros, pad, err) < 0)
			return -1;
	}
	return 0;
}

int ep_tar_finish(struct ep_tar_writer *w, struct ep_error *err)
{
	if (w->remaining)
		return ep_error_set(err, EP_EINVAL,
				    "tar: archive ended with %" PRIu64 " data bytes still owed",
				    w->remaining);
	return sink_write(w, zeros, sizeof(zeros), err);
}
