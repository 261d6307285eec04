/* lib/unpack.c - secure, streaming extraction of layer tars (docs/unpack.md).
 *
 * One pass: blob -> decompress (max_out) -> sha256 (diff_id) -> tar parser ->
 * filesystem.  Memory is bounded by the biggest header we accept (PAX 1 MiB)
 * plus the bookkeeping of directories and, when flattening, one 64-bit hash
 * per path of the layer.
 *
 * Containment: every parent directory is opened with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS), so symlinks inside the tree are followed as if the
 * root were "/", never out of it.  The final component is created with *at()
 * calls relative to that fd and never followed; metadata goes through the
 * fd of the created object, or *at(AT_SYMLINK_NOFOLLOW).  Where openat2 is
 * missing (Linux < 5.6) parents are walked with O_NOFOLLOW, and a symlink in
 * a parent is refused instead of followed. */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "async_sink.h"
#include "compress.h"
#include "parallel.h"
#include "pgunzip.h"
#include "sink.h"
#include "tar.h"
#include "unpack.h"
#include "rootless.h"
#include "util.h"

#define BLOCK 512
#define MAX_PAX_BYTES (1u << 20)     /* Go's archive/tar cap (CVE-2022-2879) */
#define MAX_GNU_NAME (PATH_MAX + 1)  /* 'L'/'K' data: a name and its NUL */
#define MAX_XATTR_VALUE 65536        /* XATTR_SIZE_MAX */
#define MAX_XATTRS 128               /* per entry */
#define TRAILER_SLACK (1u << 20)     /* zero padding tolerated after the end marker */
#define READ_CHUNK (1u << 20)
#define THREADED_LAYER ((off_t)16 << 20) /* from this blob size on, a pipeline */
/* Files from DIRECT_MIN bytes on are written with O_DIRECT, through an
 * aligned buffer of DIRECT_BUF: new page-cache pages cost this VM 11.5 s of
 * system time per 4 GB, O_DIRECT writes 0.4 s (docs/unpack.md).  The tail
 * that is not a multiple of DIRECT_ALIGN is written after O_DIRECT is
 * cleared; a file system that refuses O_DIRECT (EINVAL) gets buffered
 * writes. */
#define DIRECT_MIN ((uint64_t)1 << 20)
#define DIRECT_BUF ((size_t)1 << 20)
#define DIRECT_ALIGN ((size_t)4096)

void ep_unpack_opts_init(struct ep_unpack_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->whiteouts = EP_WHITEOUT_APPLY;
	o->same_owner = 1;
}

/* ---- openat2, probed once ---------------------------------------------- */

static int openat2_state = -1; /* -1 unknown, 0 missing/disabled, 1 works */

static int have_openat2(void)
{
	if (openat2_state < 0) {
		const char *e = getenv("ENVPIN_UNPACK_NO_OPENAT2");
		struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				       .resolve = RESOLVE_IN_ROOT};
		long fd;

		if (e && *e && strcmp(e, "0")) {
			openat2_state = 0;
		} else {
			fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
			openat2_state = fd >= 0;
			if (fd >= 0)
				close((int)fd);
		}
	}
	return openat2_state;
}

static int in_root_open(int root, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	long fd;
	int tries = 0;

	if (!*path)
		path = ".";
	/* EAGAIN: a concurrent rename raced the lookup; the kernel asks to retry. */
	do
		fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 16);
	return (int)fd;
}

/* ---- the set of paths created by this layer (flattening only) ------------ */

struct pathset {
	uint64_t *h; /* open addressing; 0 = empty */
	size_t cap, n;
};

static uint64_t path_hash(const char *a, size_t alen, const char *b)
{
	/* FNV-1a over "a/b"; 0 is reserved for empty slots. */
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < alen; i++)
		h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
	if (b) {
		if (alen)
			h = (h ^ '/') * 1099511628211ull;
		for (; *b; b++)
			h = (h ^ (unsigned char)*b) * 1099511628211ull;
	}
	return h ? h : 1;
}

static int pathset_add(struct pathset *s, uint64_t h, struct ep_error *err)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 4096;
		uint64_t *nh = ep_calloc(ncap, sizeof(*nh), err);

		if (!nh)
			return -1;
		for (size_t i = 0; i < s->cap; i++) {
			size_t j;

			if (!s->h[i])
				continue;
			for (j = s->h[i] & (ncap - 1); nh[j]; j = (j + 1) & (ncap - 1))
				;
			nh[j] = s->h[i];
		}
		free(s->h);
		s->h = nh;
		s->cap = ncap;
	}
	for (size_t j = h & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
		if (s->h[j] == h)
			return 0;
		if (!s->h[j]) {
			s->h[j] = h;
			s->n++;
			return 0;
		}
	}
}

static int pathset_has(const struct pathset *s, uint64_t h)
{
	if (!s->cap)
		return 0;
	for (size_t j = h & (s->cap - 1); s->h[j]; j = (j + 1) & (s->cap - 1))
		if (s->h[j] == h)
			return 1;
	return 0;
}

/* ---- parser state ------------------------------------------------------- */

struct xattr_rec {
	char *name;
	char *value;
	size_t len;
};

/* Fields from PAX records; has_* say which were present. */
struct pax {
	char *path, *linkpath;
	int has_size, has_uid, has_gid, has_mtime;
	uint64_t size, uid, gid;
	int64_t mtime;
	long mtime_ns;
	struct xattr_rec *xattrs;
	size_t n_xattrs;
};

struct dirrec {
	char *path;
	dev_t dev;
	ino_t ino;
	mode_t mode;
	struct timespec mtime;
};

enum state { ST_HEADER, ST_EXT, ST_DATA, ST_SKIP, ST_EOF };

/* The entry being extracted. */
struct entry {
	char path[PATH_MAX];     /* cleaned: "a/b/c", "" for the root */
	size_t base_off;         /* offset of the last component in path */
	char raw[PATH_MAX + 64]; /* the name as the archive spells it, for messages */
	int type;
	mode_t mode;
	uint64_t uid, gid, size;
	struct timespec mtime;
	char *linkname;
	unsigned devmajor, devminor;
};

struct unpacker {
	struct ep_sink base;
	int root;
	enum ep_whiteout_mode wmode;
	int same_owner, allow_devices, is_root, use_openat2;
	/* trusted.overlay.opaque for root; user.overlay.opaque (overlayfs
	 * "userxattr") for a rootless store (docs/rootless.md) */
	const char *opaque_xattr;
	uint64_t budget, charged, max_entries, entries;
	struct ep_unpack_stats *stats;

	enum state st;
	unsigned char hdr[BLOCK];
	size_t hdr_len;
	int zero_blocks, fresh;
	uint64_t trailer;

	int ext_type;
	char *ext;
	size_t ext_len, ext_size;

	uint64_t remaining, pad;
	int out_fd;
	/* out_fd has O_DIRECT: its data collects in dbuf (dfill bytes) */
	int direct, no_direct;
	unsigned char *dbuf;
	size_t dfill;

	struct pax local;
	int64_t g_mtime;
	uint64_t g_uid, g_gid;
	int g_has_mtime, g_has_uid, g_has_gid;
	char *long_name, *long_link;

	struct entry e;
	struct pathset created;
	struct dirrec *dirs;
	size_t n_dirs, cap_dirs;
};

static void pax_release(struct pax *p)
{
	free(p->path);
	free(p->linkpath);
	for (size_t i = 0; i < p->n_xattrs; i++) {
		free(p->xattrs[i].name);
		free(p->xattrs[i].value);
	}
	free(p->xattrs);
	memset(p, 0, sizeof(*p));
}

/* The archive's name, made printable for an error message. */
static const char *shown(const struct unpacker *u)
{
	return u->e.raw;
}

static void set_raw(struct entry *e, const char *name, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < sizeof(e->raw); i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
			o += (size_t)snprintf(e->raw + o, sizeof(e->raw) - o, "\\x%02x", c);
		else
			e->raw[o++] = (char)c;
	}
	if (len > 0 && o + 5 >= sizeof(e->raw))
		o = sizeof(e->raw) - 4, memcpy(e->raw + o, "...", 3), o += 3;
	e->raw[o] = 0;
}

static int bad_entry(struct unpacker *u, struct ep_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_entry(struct unpacker *u, struct ep_error *err, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return ep_error_set(err, EP_EINVAL, "entry '%s': %s", shown(u), why);
}

static int sys_entry(struct unpacker *u, struct ep_error *err, int errnum, const char *what)
{
	/* An entry the kernel refuses to resolve (a loop, a non-directory parent,
	 * a name too long) is the archive's fault, not the environment's. */
	int code = (errnum == ELOOP || errnum == ENOTDIR || errnum == ENAMETOOLONG ||
		    errnum == EXDEV || errnum == EISDIR || errnum == ENOTEMPTY)
			   ? EP_EINVAL
			   : EP_EENV;

	return ep_error_errno(err, code, errnum, "entry '%s': %s", shown(u), what);
}

/* ---- numbers -------------------------------------------------------------- */

/* Octal (NUL/space terminated) or GNU base-256.  Negative: -1. */
static int parse_num(const unsigned char *f, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return -1; /* negative (0xff) or garbage */
		for (i = 1; i < n; i++) {
			if (v >> 55)
				return -1;
			v = (v << 8) | f[i];
		}
		*out = v;
		return 0;
	}
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	if (i < n && f[i] != 0 && f[i] != ' ')
		return -1;
	*out = v;
	return 0;
}

/* Strict unsigned decimal of a PAX value (len bytes). */
static int parse_dec(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "[-]SEC[.FRAC]" of PAX mtime. */
static int parse_time(const char *s, size_t len, int64_t *sec, long *nsec)
{
	size_t i = 0, dot;
	int neg = 0;
	uint64_t v;

	if (len && s[0] == '-')
		neg = 1, i = 1;
	for (dot = i; dot < len && s[dot] != '.'; dot++)
		;
	if (parse_dec(s + i, dot - i, (uint64_t)INT64_MAX / 2, &v) < 0)
		return -1;
	*sec = neg ? -(int64_t)v : (int64_t)v;
	*nsec = 0;
	if (dot < len) {
		long scale = 100000000;

		for (size_t j = dot + 1; j < len; j++) {
			if (s[j] < '0' || s[j] > '9')
				return -1;
			*nsec += (s[j] - '0') * scale;
			scale /= 10;
		}
		if (neg && *nsec) {
			*sec -= 1;
			*nsec = 1000000000 - *nsec;
		}
	}
	return 0;
}

/* ---- PAX records ------------------------------------------------------------ */

static char *dup_value(const char *v, size_t len, struct ep_error *err)
{
	char *s = ep_malloc(len + 1, err);

	if (s) {
		memcpy(s, v, len);
		s[len] = 0;
	}
	return s;
}

static int parse_pax(struct unpacker *u, const char *buf, size_t len, int global,
		     struct ep_error *err)
{
	struct pax *p = &u->local;
	size_t off = 0;

	while (off < len) {
		size_t rl = 0, i = off, klen;
		const char *key, *val, *eq;
		size_t vlen;

		if (buf[off] == 0 && global)
			break; /* some writers pad global headers with NULs */
		while (i < len && buf[i] >= '0' && buf[i] <= '9' && i - off < 8)
			rl = rl * 10 + (size_t)(buf[i++] - '0');
		if (i == off || i >= len || buf[i] != ' ' || rl <= i - off + 1 || rl > len - off ||
		    buf[off + rl - 1] != '\n')
			return bad_entry(u, err, "malformed PAX record at offset %zu", off);
		key = buf + i + 1;
		eq = memchr(key, '=', (size_t)(buf + off + rl - 1 - key));
		if (!eq || eq == key)
			return bad_entry(u, err, "malformed PAX record at offset %zu", off);
		klen = (size_t)(eq - key);
		val = eq + 1;
		vlen = (size_t)(buf + off + rl - 1 - val);
		off += rl;
#define KEY(s) (klen == sizeof(s) - 1 && !memcmp(key, s, klen))
		if (KEY("path") || KEY("linkpath")) {
			char **dst = KEY("path") ? &p->path : &p->linkpath;

			if (global)
				continue; /* a name for every entry makes no sense; ignored */
			if (memchr(val, 0, vlen))
				return bad_entry(u, err, "PAX %.*s contains a NUL byte", (int)klen, key);
			if (vlen >= PATH_MAX)
				return bad_entry(u, err, "PAX %.*s of %zu bytes exceeds PATH_MAX",
						 (int)klen, key, vlen);
			free(*dst);
			*dst = dup_value(val, vlen, err);
			if (!*dst)
				return -1;
			if (KEY("path"))
				set_raw(&u->e, val, vlen);
		} else if (KEY("size")) {
			if (global)
				continue;
			if (parse_dec(val, vlen, (uint64_t)1 << 62, &p->size) < 0)
				return bad_entry(u, err, "PAX size '%.*s' is not a valid size",
						 (int)(vlen > 32 ? 32 : vlen), val);
			p->has_size = 1;
		} else if (KEY("uid") || KEY("gid")) {
			uint64_t v;

			if (parse_dec(val, vlen, UINT32_MAX - 1, &v) < 0)
				return bad_entry(u, err, "PAX %.*s is not a valid id", (int)klen, key);
			if (KEY("uid")) {
				if (global)
					u->g_uid = v, u->g_has_uid = 1;
				else
					p->uid = v, p->has_uid = 1;
			} else {
				if (global)
					u->g_gid = v, u->g_has_gid = 1;
				else
					p->gid = v, p->has_gid = 1;
			}
		} else if (KEY("mtime")) {
			int64_t sec;
			long ns;

			if (parse_time(val, vlen, &sec, &ns) < 0)
				return bad_entry(u, err, "PAX mtime is not a valid time");
			if (global)
				u->g_mtime = sec, u->g_has_mtime = 1;
			else
				p->mtime = sec, p->mtime_ns = ns, p->has_mtime = 1;
		} else if (klen > 13 && !memcmp(key, "SCHILY.xattr.", 13)) {
			struct xattr_rec *x;

			if (global)
				continue;
			if (p->n_xattrs >= MAX_XATTRS)
				return bad_entry(u, err, "more than %d xattrs", MAX_XATTRS);
			x = ep_realloc(p->xattrs, (p->n_xattrs + 1) * sizeof(*x), err);
			if (!x)
				return -1;
			p->xattrs = x;
			x = &p->xattrs[p->n_xattrs];
			x->name = dup_value(key + 13, klen - 13, err);
			x->value = x->name ? dup_value(val, vlen, err) : NULL;
			x->len = vlen;
			if (!x->value) {
				free(x->name);
				return -1;
			}
			p->n_xattrs++;
		} else if (klen > 11 && !memcmp(key, "GNU.sparse.", 11)) {
			return bad_entry(u, err, "sparse files are not supported");
		}
		/* Other keys (atime, ctime, uname, gname, comment, charset) do not
		 * affect what we write. */
#undef KEY
	}
	return 0;
}

/* ---- paths ------------------------------------------------------------------ */

/* Cleans an archive name into out ("a/b/c", "" for the root): leading "/"
 * and "./", empty and "." components dropped.  ".." anywhere is refused: no
 * layer writer emits it, and refusing beats reasoning about what it meant. */
static int clean_path(struct unpacker *u, const char *in, char *out, size_t *base_off,
		      const char *what, struct ep_error *err)
{
	size_t o = 0, last = 0;
	const char *p = in;

	while (*p) {
		const char *s;
		size_t n;

		while (*p == '/')
			p++;
		s = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - s);
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return bad_entry(u, err, "%s has a '..' component", what);
		if (n > NAME_MAX)
			return bad_entry(u, err, "%s has a component longer than NAME_MAX (%zu bytes)",
					 what, n);
		if (o + n + 2 > PATH_MAX)
			return bad_entry(u, err, "%s is longer than PATH_MAX", what);
		if (o)
			out[o++] = '/';
		last = o;
		memcpy(out + o, s, n);
		o += n;
	}
	out[o] = 0;
	if (base_off)
		*base_off = last;
	return 0;
}

/* ---- removal through fds ------------------------------------------------------ */

static int rm_at(int dfd, const char *name, int depth);

static int rm_children(int fd, int depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0, dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (dup_fd < 0)
		return -1;
	d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -1;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rm_at(fd, de->d_name, depth + 1) < 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Removes name in dfd; a directory with its contents.  Never follows a
 * symlink: directories are opened O_NOFOLLOW relative to their parent. */
static int rm_at(int dfd, const char *name, int depth)
{
	struct stat st;
	int fd, rc;

	if (depth > PATH_MAX / 2) {
		errno = ELOOP;
		return -1;
	}
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = rm_children(fd, depth);
	close(fd);
	if (rc < 0)
		return -1;
	return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* ---- resolving parents -------------------------------------------------------- */

/* Opens directory `dir` (a cleaned path, "" = root) inside the root as an
 * O_PATH fd.  With create, missing components are made (0755, ours).
 * Returns the fd, or -1 with errno; *why names the failing component. */
static int open_dir(struct unpacker *u, const char *dir, int create, struct ep_error *err)
{
	char prefix[PATH_MAX];
	const char *p = dir;
	int cur, fd;

	if (u->use_openat2) {
		fd = in_root_open(u->root, dir, O_PATH | O_DIRECTORY);
		if (fd >= 0)
			return fd;
		if (errno == ENOENT && !create)
			return -1; /* errno ENOENT, err untouched: the caller decides */
		if (errno != ENOENT)
			return sys_entry(u, err, errno, dir[0] ? "cannot open the parent directory"
							       : "cannot open the root");
	}
	cur = fcntl(u->root, F_DUPFD_CLOEXEC, 0);
	if (cur < 0)
		return ep_error_errno(err, EP_EENV, errno, "dup");
	while (*p) {
		const char *s = p;
		size_t n;

		while (*p && *p != '/')
			p++;
		n = (size_t)(p - s);
		memcpy(prefix, dir, (size_t)(p - dir));
		prefix[p - dir] = 0;
		{
			char comp[NAME_MAX + 1];

			memcpy(comp, s, n);
			comp[n] = 0;
			if (u->use_openat2)
				fd = in_root_open(u->root, prefix, O_PATH | O_DIRECTORY);
			else
				fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 && errno == ENOENT && create) {
				if (mkdirat(cur, comp, 0755) < 0) {
					int e = errno;

					close(cur);
					if (e == EEXIST)
						return bad_entry(u, err,
								 "parent '%s' is a dangling symlink",
								 prefix);
					return sys_entry(u, err, e, "cannot create a parent directory");
				}
				if (u->wmode == EP_WHITEOUT_APPLY &&
				    pathset_add(&u->created, path_hash(prefix, strlen(prefix), NULL),
						err) < 0) {
					close(cur);
					return -1;
				}
				fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			}
			if (fd < 0) {
				int e = errno;
				struct stat st;

				if (!u->use_openat2 && (e == ENOTDIR || e == ELOOP) &&
				    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISLNK(st.st_mode)) {
					close(cur);
					return bad_entry(u, err, "parent '%s' is a symlink (refused "
								 "without openat2)", prefix);
				}
				close(cur);
				if (e == ENOENT && !create) {
					errno = ENOENT;
					return -1;
				}
				if (e == ENOTDIR)
					return bad_entry(u, err, "parent '%s' is not a directory", prefix);
				return sys_entry(u, err, e, "cannot open a parent directory");
			}
		}
		close(cur);
		cur = fd;
		if (*p == '/')
			p++;
	}
	return cur;
}

/* Parent of the current entry; the name is u->e.path + base_off. */
static int open_parent(struct unpacker *u, int create, struct ep_error *err)
{
	char dir[PATH_MAX];
	size_t n = u->e.base_off ? u->e.base_off - 1 : 0;

	memcpy(dir, u->e.path, n);
	dir[n] = 0;
	return open_dir(u, dir, create, err);
}

/* ---- metadata ------------------------------------------------------------------ */

static mode_t entry_mode(const struct unpacker *u)
{
	mode_t m = u->e.mode & 07777;

	/* A setuid file owned by whoever runs envpin is a privilege the image did
	 * not have: keep the bits only when the tar's owner is applied. */
	if (!(u->same_owner && u->is_root))
		m &= ~(mode_t)(S_ISUID | S_ISGID);
	return m;
}

static int want_xattr(const struct unpacker *u, const char *name)
{
	if (!strncmp(name, "user.", 5))
		return 1;
	/* File capabilities are privilege: only with the tar's owners, as root. */
	if (!strcmp(name, "security.capability"))
		return u->is_root && u->same_owner;
	/* trusted.* (overlayfs metadata an image must not forge), security.selinux
	 * (labels are the host's business), system.* (ACLs): dropped. */
	return 0;
}

static void apply_xattrs(struct unpacker *u, int fd)
{
	for (size_t i = 0; i < u->local.n_xattrs; i++) {
		const struct xattr_rec *x = &u->local.xattrs[i];

		if (!want_xattr(u, x->name) || x->len > MAX_XATTR_VALUE ||
		    fsetxattr(fd, x->name, x->value, x->len, 0) < 0) {
			if (u->stats)
				u->stats->xattrs_skipped++;
		}
	}
}

/* Owner and mode through an fd we created (never a path). */
static int fd_meta(struct unpacker *u, int fd, int chmod_too, struct ep_error *err)
{
	if (u->same_owner && u->is_root &&
	    fchown(fd, (uid_t)u->e.uid, (gid_t)u->e.gid) < 0)
		return sys_entry(u, err, errno, "chown");
	apply_xattrs(u, fd);
	if (chmod_too && fchmod(fd, entry_mode(u)) < 0)
		return sys_entry(u, err, errno, "chmod");
	return 0;
}

/* For nodes we must not open (symlinks, fifos, devices): *at with NOFOLLOW. */
static int at_meta(struct unpacker *u, int pfd, const char *name, int chmod_too,
		   struct ep_error *err)
{
	struct timespec ts[2] = {u->e.mtime, u->e.mtime};

	if (u->same_owner && u->is_root &&
	    fchownat(pfd, name, (uid_t)u->e.uid, (gid_t)u->e.gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sys_entry(u, err, errno, "chown");
	if (chmod_too && fchmodat(pfd, name, entry_mode(u), AT_SYMLINK_NOFOLLOW) < 0)
		return sys_entry(u, err, errno, "chmod");
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sys_entry(u, err, errno, "set times");
	return 0;
}

static int record_dir(struct unpacker *u, int fd, struct ep_error *err)
{
	struct stat st;
	struct dirrec *r;

	if (fstat(fd, &st) < 0)
		return sys_entry(u, err, errno, "stat");
	if (u->n_dirs == u->cap_dirs) {
		size_t ncap = u->cap_dirs ? u->cap_dirs * 2 : 256;

		r = ep_realloc(u->dirs, ncap * sizeof(*r), err);
		if (!r)
			return -1;
		u->dirs = r;
		u->cap_dirs = ncap;
	}
	r = &u->dirs[u->n_dirs];
	r->path = ep_strdup(u->e.path, err);
	if (!r->path)
		return -1;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->mode = entry_mode(u);
	r->mtime = u->e.mtime;
	u->n_dirs++;
	return 0;
}

/* Directory modes and times are applied last: a 0555 directory must still
 * take its children, and adding children changes mtimes.  Each is reopened
 * in the root and must still be the inode we made. */
static int finish_dirs(struct unpacker *u, struct ep_error *err)
{
	for (size_t i = 0; i < u->n_dirs; i++) {
		struct dirrec *r = &u->dirs[i];
		struct timespec ts[2] = {r->mtime, r->mtime};
		struct stat st;
		int fd;

		if (u->use_openat2)
			fd = in_root_open(u->root, r->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		else {
			char *slash = strrchr(r->path, '/');
			int pfd;

			if (slash) {
				*slash = 0;
				pfd = open_dir(u, r->path, 0, NULL);
				*slash = '/';
			} else {
				pfd = fcntl(u->root, F_DUPFD_CLOEXEC, 0);
			}
			fd = pfd < 0 ? -1
				     : openat(pfd, slash ? slash + 1 : r->path,
					      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (pfd >= 0)
				close(pfd);
		}
		if (fd < 0)
			continue; /* replaced or removed later in the layer */
		if (fstat(fd, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino) {
			if (fchmod(fd, r->mode) < 0 || futimens(fd, ts) < 0) {
				int e = errno;

				close(fd);
				return ep_error_errno(err, EP_EENV, e, "directory '%s'", r->path);
			}
		}
		close(fd);
	}
	return 0;
}

/* ---- entries ----------------------------------------------------------------------- */

static int mark_created(struct unpacker *u, struct ep_error *err)
{
	if (u->wmode != EP_WHITEOUT_APPLY)
		return 0;
	return pathset_add(&u->created, path_hash(u->e.path, strlen(u->e.path), NULL), err);
}

/* Opaque directory when flattening: everything below dfd (path dpath, len
 * dlen) that this layer did not create goes; this layer's directories are
 * kept but cleaned the same way, since the lower content under them is
 * hidden too. */
static int opaque_clean(struct unpacker *u, int dfd, const char *dpath, size_t dlen, int depth,
			struct ep_error *err)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > PATH_MAX / 2)
		return sys_entry(u, err, ELOOP, "opaque whiteout");
	d = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 0));
	if (!d)
		return sys_entry(u, err, errno, "read opaque directory");
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!pathset_has(&u->created, path_hash(dpath, dlen, de->d_name))) {
			if (rm_at(dfd, de->d_name, 0) < 0) {
				rc = sys_entry(u, err, errno, "remove for opaque whiteout");
				break;
			}
			continue;
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
			char sub[PATH_MAX];
			int n = snprintf(sub, sizeof(sub), "%.*s%s%s", (int)dlen, dpath,
					 dlen ? "/" : "", de->d_name);
			cleanup_close int cfd = -1;

			if (n < 0 || (size_t)n >= sizeof(sub))
				continue;
			cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0 || opaque_clean(u, cfd, sub, (size_t)n, depth + 1, err) < 0) {
				rc = cfd < 0 ? sys_entry(u, err, errno, "open for opaque whiteout") : -1;
				break;
			}
		}
	}
	closedir(d);
	return rc;
}

static int whiteout(struct unpacker *u, const char *base, struct ep_error *err)
{
	cleanup_close int pfd = -1;
	int opaque = !strcmp(base, ".wh..wh..opq");
	const char *name = base + 4;
	size_t dlen = u->e.base_off ? u->e.base_off - 1 : 0;

	if (!opaque && (!*name || !strcmp(name, ".") || !strcmp(name, "..") ||
			!strncmp(name, ".wh.", 4)))
		return bad_entry(u, err, "invalid whiteout name");
	if (u->stats)
		u->stats->whiteouts++;
	if (u->wmode == EP_WHITEOUT_OVERLAY) {
		pfd = open_parent(u, 1, err);
		if (pfd < 0)
			return -1;
		if (opaque) {
			cleanup_close int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (dfd < 0 || fsetxattr(dfd, u->opaque_xattr, "y", 1, 0) < 0)
				return sys_entry(u, err, errno, "set overlay opaque xattr");
			return 0;
		}
		/* A same-layer entry of that name wins (image-spec: whiteouts hide
		 * lower layers only). */
		if (faccessat(pfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
		if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
			return sys_entry(u, err, errno, "create overlay whiteout (needs root)");
		return 0;
	}
	pfd = open_parent(u, 0, err);
	if (pfd < 0)
		return errno == ENOENT ? 0 : -1; /* nothing below to hide */
	if (opaque) {
		cleanup_close int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0)
			return sys_entry(u, err, errno, "open opaque directory");
		return opaque_clean(u, dfd, u->e.path, dlen, 0, err);
	}
	if (pathset_has(&u->created, path_hash(u->e.path, dlen, name)))
		return 0;
	if (rm_at(pfd, name, 0) < 0)
		return sys_entry(u, err, errno, "remove whited-out path");
	return 0;
}

static int hardlink(struct unpacker *u, int pfd, const char *name, struct ep_error *err)
{
	char target[PATH_MAX];
	size_t toff;
	cleanup_close int tpfd = -1;
	struct stat tst, st;

	if (!u->e.linkname || !*u->e.linkname)
		return bad_entry(u, err, "hardlink without a target");
	if (clean_path(u, u->e.linkname, target, &toff, "hardlink target", err) < 0)
		return -1;
	if (!*target)
		return bad_entry(u, err, "hardlink to the root");
	if (toff) {
		target[toff - 1] = 0;
		tpfd = open_dir(u, target, 0, err);
		target[toff - 1] = '/';
	} else {
		tpfd = fcntl(u->root, F_DUPFD_CLOEXEC, 0);
	}
	if (tpfd < 0 && errno != ENOENT)
		return -1;
	if (tpfd < 0 || fstatat(tpfd, target + toff, &tst, AT_SYMLINK_NOFOLLOW) < 0)
		return bad_entry(u, err, "hardlink target '%s' does not exist", target);
	/* Regular files only: a link to a symlink would carry its (possibly
	 * outside) target, and later metadata writes through it (CVE-2021-32760). */
	if (!S_ISREG(tst.st_mode))
		return bad_entry(u, err, "hardlink target '%s' is not a regular file", target);
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (st.st_dev == tst.st_dev && st.st_ino == tst.st_ino)
			return 0; /* already that file */
		if (rm_at(pfd, name, 0) < 0)
			return sys_entry(u, err, errno, "replace");
	}
	if (linkat(tpfd, target + toff, pfd, name, 0) < 0)
		return sys_entry(u, err, errno, "hardlink");
	if (u->stats)
		u->stats->hardlinks++;
	return 0;
}

/* O_DIRECT on fd when the file system takes it (else buffered from now on
 * for this layer).  -1 only when the buffer cannot be had. */
static int direct_start(struct unpacker *u, int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) {
		u->no_direct = 1;
		return 0;
	}
	if (!u->dbuf) {
		void *p = NULL;
		int rc = posix_memalign(&p, DIRECT_ALIGN, DIRECT_BUF);

		if (rc != 0) {
			errno = rc;
			return -1;
		}
		u->dbuf = p;
	}
	u->direct = 1;
	return 0;
}

/* Back to buffered writes on out_fd. */
static int direct_stop(struct unpacker *u)
{
	int fl = fcntl(u->out_fd, F_GETFL);

	u->direct = 0;
	if (fl < 0 || fcntl(u->out_fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return -1;
	return 0;
}

/* Writes dbuf's aligned part (all of it unless last) with O_DIRECT; on the
 * last call, or when the file system refuses it, the rest buffered. */
static int direct_flush(struct unpacker *u, int last, struct ep_error *err)
{
	size_t n = last ? u->dfill / DIRECT_ALIGN * DIRECT_ALIGN : u->dfill;

	if (u->direct && n > 0) {
		ssize_t w;

		do
			w = write(u->out_fd, u->dbuf, n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EINVAL)
			return ep_error_errno(err, EP_EENV, errno, "write");
		if (w < 0 || (size_t)w != n) {
			/* refused, or short: the rest buffered, from where it stopped */
			size_t done = w < 0 ? 0 : (size_t)w;

			if (direct_stop(u) < 0)
				return ep_error_errno(err, EP_EENV, errno, "clear O_DIRECT");
			if (w < 0)
				u->no_direct = 1;
			memmove(u->dbuf, u->dbuf + done, u->dfill - done);
			u->dfill -= done;
		} else {
			if (u->stats)
				u->stats->direct_bytes += n;
			memmove(u->dbuf, u->dbuf + n, u->dfill - n);
			u->dfill -= n;
		}
	}
	if (!u->direct || last) {
		if (u->direct && direct_stop(u) < 0)
			return ep_error_errno(err, EP_EENV, errno, "clear O_DIRECT");
		if (u->dfill > 0 && ep_write_all(u->out_fd, u->dbuf, u->dfill, err) < 0)
			return -1;
		u->dfill = 0;
	}
	return 0;
}

/* Data of the file open as out_fd. */
static int write_data(struct unpacker *u, const unsigned char *p, size_t n, int last,
		      struct ep_error *err)
{
	if (!u->direct && u->dfill == 0)
		return ep_write_all(u->out_fd, p, n, err);
	while (n > 0) {
		size_t m = DIRECT_BUF - u->dfill < n ? DIRECT_BUF - u->dfill : n;

		memcpy(u->dbuf + u->dfill, p, m);
		u->dfill += m;
		p += m;
		n -= m;
		if (u->dfill == DIRECT_BUF && direct_flush(u, 0, err) < 0)
			return -1;
	}
	return last ? direct_flush(u, 1, err) : 0;
}

/* Called with the header parsed into u->e.  Regular files leave u->out_fd
 * open for the data. */
static int apply_entry(struct unpacker *u, struct ep_error *err)
{
	struct entry *e = &u->e;
	const char *name = e->path + e->base_off;
	cleanup_close int pfd = -1;
	struct stat st;
	int exists;

	if (!*e->path) {
		if (e->type == EP_TAR_DIR)
			return 0; /* the root's own metadata is the caller's */
		return bad_entry(u, err, "a non-directory entry for the root");
	}
	if (!strncmp(name, ".wh.", 4))
		return whiteout(u, name, err);
	pfd = open_parent(u, 1, err);
	if (pfd < 0)
		return -1;
	exists = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (e->type == EP_TAR_HARDLINK) {
		if (hardlink(u, pfd, name, err) < 0)
			return -1;
		return mark_created(u, err);
	}
	int was_whiteout = exists && u->wmode == EP_WHITEOUT_OVERLAY && S_ISCHR(st.st_mode) &&
			   st.st_rdev == makedev(0, 0);

	if (exists && !(e->type == EP_TAR_DIR && S_ISDIR(st.st_mode))) {
		/* Replace, never write through: whatever was there (a symlink to
		 * anywhere, a directory) is removed first. */
		if (rm_at(pfd, name, 0) < 0)
			return sys_entry(u, err, errno, "replace");
		exists = 0;
	}
	switch (e->type) {
	case EP_TAR_REG: {
		int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0)
			return sys_entry(u, err, errno, "create");
		u->out_fd = fd;
		u->direct = 0;
		u->dfill = 0;
		if (e->size >= DIRECT_MIN && !u->no_direct && direct_start(u, fd) < 0)
			return sys_entry(u, err, errno, "buffer for O_DIRECT");
		if (u->stats) {
			u->stats->files++;
			u->stats->bytes += e->size;
		}
		break;
	}
	case EP_TAR_DIR: {
		cleanup_close int fd = -1;

		if (!exists && mkdirat(pfd, name, 0700) < 0)
			return sys_entry(u, err, errno, "mkdir");
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return sys_entry(u, err, errno, "open directory");
		if (fd_meta(u, fd, 0, err) < 0 || record_dir(u, fd, err) < 0)
			return -1;
		/* ".wh.x" then "x/" in one layer: the lower x is hidden, the new
		 * directory is not; overlayfs says that with an opaque dir. */
		if (was_whiteout && fsetxattr(fd, u->opaque_xattr, "y", 1, 0) < 0)
			return sys_entry(u, err, errno, "set overlay opaque xattr");
		if (u->stats)
			u->stats->dirs++;
		break;
	}
	case EP_TAR_SYMLINK:
		if (!e->linkname || !*e->linkname)
			return bad_entry(u, err, "symlink with an empty target");
		/* The target is stored verbatim: containment applies when a symlink
		 * is followed, and we only ever follow inside the root. */
		if (symlinkat(e->linkname, pfd, name) < 0)
			return sys_entry(u, err, errno, "symlink");
		if (at_meta(u, pfd, name, 0, err) < 0)
			return -1;
		if (u->stats)
			u->stats->symlinks++;
		break;
	case EP_TAR_CHR:
	case EP_TAR_BLK:
		if (!(u->allow_devices && u->is_root)) {
			if (u->stats)
				u->stats->devices_skipped++;
			return 0;
		}
		if (mknodat(pfd, name, (e->type == EP_TAR_CHR ? S_IFCHR : S_IFBLK) | 0600,
			    makedev(e->devmajor, e->devminor)) < 0)
			return sys_entry(u, err, errno, "mknod");
		if (at_meta(u, pfd, name, 1, err) < 0)
			return -1;
		if (u->stats)
			u->stats->devices++;
		break;
	case EP_TAR_FIFO:
		if (mkfifoat(pfd, name, 0600) < 0)
			return sys_entry(u, err, errno, "mkfifo");
		if (at_meta(u, pfd, name, 1, err) < 0)
			return -1;
		if (u->stats)
			u->stats->fifos++;
		break;
	default:
		return bad_entry(u, err, "unsupported entry type '%c'", e->type);
	}
	return mark_created(u, err);
}

/* The data of a regular file is complete. */
static int finish_file(struct unpacker *u, struct ep_error *err)
{
	struct timespec ts[2] = {u->e.mtime, u->e.mtime};
	int fd = u->out_fd, rc = 0;

	u->out_fd = -1;
	if (fd_meta(u, fd, 1, err) < 0)
		rc = -1;
	else if (futimens(fd, ts) < 0)
		rc = sys_entry(u, err, errno, "set times");
	if (close(fd) < 0 && rc == 0)
		rc = sys_entry(u, err, errno, "close");
	return rc;
}

/* ---- headers ---------------------------------------------------------------------------- */

static int header_checksum_ok(const unsigned char *h)
{
	uint64_t want;
	unsigned long usum = 0;
	long ssum = 0;

	if (parse_num(h + 148, 8, &want) < 0)
		return 0;
	for (int i = 0; i < BLOCK; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];

		usum += c;
		ssum += (signed char)c;
	}
	return want == usum || (long)want == ssum;
}

static void reset_entry_state(struct unpacker *u)
{
	pax_release(&u->local);
	free(u->long_name);
	free(u->long_link);
	u->long_name = u->long_link = NULL;
	u->fresh = 1; /* the next header starts a new entry (raw kept for messages until then) */
}

static int charge(struct unpacker *u, uint64_t size, struct ep_error *err)
{
	uint64_t blocks = BLOCK + ((size + BLOCK - 1) / BLOCK) * BLOCK;

	if (size > u->budget || u->charged + blocks > u->budget)
		return bad_entry(u, err, "the layer exceeds the size limit of %llu bytes",
				 (unsigned long long)u->budget);
	u->charged += blocks;
	return 0;
}

/* A PAX ('x', 'g') or GNU long name/link ('L', 'K') header: its data is
 * collected (ST_EXT) for the entry that follows.  1 when it is complete at
 * once (empty), 0 when data follows. */
static int start_extended(struct unpacker *u, int type, uint64_t size, struct ep_error *err)
{
	size_t cap = (type == 'x' || type == 'g') ? MAX_PAX_BYTES : MAX_GNU_NAME;

	if (size > cap)
		return bad_entry(u, err, "%s header of %llu bytes exceeds the %zu byte limit",
				 type == 'L' || type == 'K' ? "GNU long name" : "PAX",
				 (unsigned long long)size, cap);
	if (charge(u, size, err) < 0)
		return -1;
	u->ext_type = type;
	u->ext_size = (size_t)size;
	u->ext_len = 0;
	free(u->ext);
	u->ext = ep_malloc(size + 1, err);
	if (!u->ext)
		return -1;
	u->pad = (BLOCK - size % BLOCK) % BLOCK;
	u->st = ST_EXT;
	return size == 0;
}

/* The entry's name: GNU long name, PAX path, or the header's prefix/name
 * (built in name, PATH_MAX + 256 bytes; e->raw gets it for messages). */
static const char *entry_name(struct unpacker *u, const unsigned char *h, int posix, char *name)
{
	struct entry *e = &u->e;
	const char *src;

	if (u->long_name) {
		src = u->long_name;
	} else if (u->local.path) {
		src = u->local.path;
	} else {
		size_t nl = strnlen((const char *)h, 100), pl = 0;

		if (posix)
			pl = strnlen((const char *)h + 345, 155);
		if (pl) {
			memcpy(name, h + 345, pl);
			name[pl] = '/';
			memcpy(name + pl + 1, h, nl);
			name[pl + 1 + nl] = 0;
		} else {
			memcpy(name, h, nl);
			name[nl] = 0;
		}
		src = name;
		set_raw(e, src, strlen(src));
	}
	return src;
}

/* e->linkname: GNU long link, PAX linkpath, or the header's field. */
static int entry_link(struct unpacker *u, const unsigned char *h, struct ep_error *err)
{
	struct entry *e = &u->e;

	free(e->linkname);
	e->linkname = NULL;
	if (u->long_link)
		e->linkname = steal_pointer(&u->long_link);
	else if (u->local.linkpath)
		e->linkname = steal_pointer(&u->local.linkpath);
	else if (h[157]) {
		size_t ll = strnlen((const char *)h + 157, 100);

		e->linkname = ep_malloc(ll + 1, err);
		if (!e->linkname)
			return -1;
		memcpy(e->linkname, h + 157, ll);
		e->linkname[ll] = 0;
	}
	return 0;
}

/* Mode, owner, mtime and device numbers: the header's, overridden by the
 * global then the local PAX records. */
static int entry_meta(struct unpacker *u, const unsigned char *h, int devnums, struct ep_error *err)
{
	struct entry *e = &u->e;
	uint64_t v;

	if (parse_num(h + 100, 8, &v) < 0)
		return bad_entry(u, err, "invalid mode field");
	e->mode = (mode_t)(v & 07777);
	if (parse_num(h + 108, 8, &e->uid) < 0 || parse_num(h + 116, 8, &e->gid) < 0)
		return bad_entry(u, err, "invalid uid/gid field");
	if (u->g_has_uid)
		e->uid = u->g_uid;
	if (u->g_has_gid)
		e->gid = u->g_gid;
	if (u->local.has_uid)
		e->uid = u->local.uid;
	if (u->local.has_gid)
		e->gid = u->local.gid;
	if (e->uid >= UINT32_MAX || e->gid >= UINT32_MAX)
		return bad_entry(u, err, "uid/gid out of range");
	if (parse_num(h + 136, 12, &v) < 0)
		return bad_entry(u, err, "invalid mtime field");
	e->mtime.tv_sec = (time_t)v;
	e->mtime.tv_nsec = 0;
	if (u->g_has_mtime)
		e->mtime.tv_sec = (time_t)u->g_mtime;
	if (u->local.has_mtime) {
		e->mtime.tv_sec = (time_t)u->local.mtime;
		e->mtime.tv_nsec = u->local.mtime_ns;
	}
	e->devmajor = e->devminor = 0;
	if (devnums && (e->type == EP_TAR_CHR || e->type == EP_TAR_BLK)) {
		uint64_t ma, mi;

		if (parse_num(h + 329, 8, &ma) < 0 || parse_num(h + 337, 8, &mi) < 0 ||
		    ma > 0xfff || mi > 0xfffff)
			return bad_entry(u, err, "invalid device numbers");
		e->devmajor = (unsigned)ma;
		e->devminor = (unsigned)mi;
	}
	return 0;
}

static int process_header(struct unpacker *u, struct ep_error *err)
{
	const unsigned char *h = u->hdr;
	struct entry *e = &u->e;
	int type = h[156], posix, gnu;
	uint64_t size;
	char name[PATH_MAX + 256];
	const char *src;

	if (u->fresh)
		e->raw[0] = 0, u->fresh = 0;
	/* Until a name is known, errors name the header's own name field. */
	if (!e->raw[0])
		set_raw(e, (const char *)h, strnlen((const char *)h, 100));
	if (!header_checksum_ok(h))
		return bad_entry(u, err, "header checksum mismatch (not a tar, or corrupt)");
	posix = !memcmp(h + 257, "ustar\0", 6);
	gnu = !memcmp(h + 257, "ustar  \0", 8);
	if (parse_num(h + 124, 12, &size) < 0)
		return bad_entry(u, err, "invalid or negative size field");
	if (type == 'x' || type == 'g' || type == 'L' || type == 'K')
		return start_extended(u, type, size, err);
	if (++u->entries > u->max_entries)
		return bad_entry(u, err, "more than %llu entries",
				 (unsigned long long)u->max_entries);

	src = entry_name(u, h, posix, name);
	if (!*src)
		return bad_entry(u, err, "empty name");
	if (u->long_name)
		set_raw(e, src, strlen(src));
	if (type == 0 || type == '7')
		type = EP_TAR_REG;
	if (type == EP_TAR_REG && src[strlen(src) - 1] == '/')
		type = EP_TAR_DIR; /* pre-POSIX directories */
	e->type = type;
	if (clean_path(u, src, e->path, &e->base_off, "name", err) < 0 || entry_link(u, h, err) < 0)
		return -1;
	if (u->local.has_size)
		size = u->local.size;
	if (entry_meta(u, h, posix || gnu, err) < 0)
		return -1;
	e->size = type == EP_TAR_REG ? size : 0;
	if (charge(u, size, err) < 0 || apply_entry(u, err) < 0)
		return -1;
	u->remaining = size;
	u->pad = (BLOCK - size % BLOCK) % BLOCK;
	if (u->out_fd >= 0 && size > 0) {
		u->st = ST_DATA;
	} else {
		if (u->out_fd >= 0 && finish_file(u, err) < 0)
			return -1;
		u->st = ST_SKIP; /* padding, or data of entries we do not write */
	}
	reset_entry_state(u);
	return 0;
}

/* A complete extended header is in u->ext. */
static int process_ext(struct unpacker *u, struct ep_error *err)
{
	char **dst;
	size_t n;

	u->ext[u->ext_size] = 0;
	switch (u->ext_type) {
	case 'x':
		return parse_pax(u, u->ext, u->ext_size, 0, err);
	case 'g':
		return parse_pax(u, u->ext, u->ext_size, 1, err);
	default:
		dst = u->ext_type == 'L' ? &u->long_name : &u->long_link;
		n = strnlen(u->ext, u->ext_size);
		if (n == 0)
			return bad_entry(u, err, "empty GNU long name");
		if (n >= PATH_MAX)
			return bad_entry(u, err, "GNU long name of %zu bytes exceeds PATH_MAX", n);
		free(*dst);
		*dst = steal_pointer(&u->ext);
		if (u->ext_type == 'L')
			set_raw(&u->e, *dst, n);
		return 0;
	}
}

static int is_zero_block(const unsigned char *b)
{
	for (int i = 0; i < BLOCK; i++)
		if (b[i])
			return 0;
	return 1;
}

static int up_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct unpacker *u = (struct unpacker *)s;
	const unsigned char *p = buf;

	while (len) {
		size_t n;

		switch (u->st) {
		case ST_HEADER:
			n = BLOCK - u->hdr_len;
			if (n > len)
				n = len;
			memcpy(u->hdr + u->hdr_len, p, n);
			u->hdr_len += n;
			p += n, len -= n;
			if (u->hdr_len < BLOCK)
				break;
			u->hdr_len = 0;
			if (is_zero_block(u->hdr)) {
				if (++u->zero_blocks == 2)
					u->st = ST_EOF;
				break;
			}
			if (u->zero_blocks)
				return ep_error_set(err, EP_EINVAL,
						    "a header after an end-of-archive block");
			{
				int rc = process_header(u, err);

				if (rc < 0)
					return -1;
				if (rc == 1 && u->pad == 0) {
					/* empty extended header: nothing to read */
					u->st = ST_HEADER;
					if (process_ext(u, err) < 0)
						return -1;
				}
			}
			break;
		case ST_EXT:
			if (u->ext_len < u->ext_size) {
				n = u->ext_size - u->ext_len;
				if (n > len)
					n = len;
				memcpy(u->ext + u->ext_len, p, n);
				u->ext_len += n;
				p += n, len -= n;
				if (u->ext_len == u->ext_size && process_ext(u, err) < 0)
					return -1;
				break;
			}
			n = u->pad < len ? (size_t)u->pad : len;
			u->pad -= n;
			p += n, len -= n;
			if (!u->pad)
				u->st = ST_HEADER;
			break;
		case ST_DATA:
			if (u->remaining) {
				n = u->remaining < len ? (size_t)u->remaining : len;
				if (write_data(u, p, n, n == u->remaining, err) < 0)
					return ep_error_wrap(err, "entry '%s'", shown(u));
				u->remaining -= n;
				p += n, len -= n;
				if (!u->remaining) {
					if (finish_file(u, err) < 0)
						return -1;
					u->st = ST_SKIP;
				}
				break;
			}
			u->st = ST_SKIP;
			break;
		case ST_SKIP:
			n = u->remaining + u->pad < len ? (size_t)(u->remaining + u->pad) : len;
			if (n <= u->remaining) {
				u->remaining -= n;
			} else {
				u->pad -= n - u->remaining;
				u->remaining = 0;
			}
			p += n, len -= n;
			if (!u->remaining && !u->pad)
				u->st = ST_HEADER;
			break;
		case ST_EOF:
			for (size_t i = 0; i < len; i++)
				if (p[i])
					return ep_error_set(err, EP_EINVAL,
							    "data after the end-of-archive marker");
			u->trailer += len;
			if (u->trailer > TRAILER_SLACK)
				return ep_error_set(err, EP_EINVAL,
						    "more than %u bytes of padding after the end of the "
						    "archive (decompression bomb?)", TRAILER_SLACK);
			len = 0;
			break;
		}
		/* An entry with no data goes straight back to headers. */
		if (u->st == ST_SKIP && !u->remaining && !u->pad)
			u->st = ST_HEADER;
		if (u->st == ST_EXT && u->ext_len == u->ext_size && !u->pad && u->ext_size)
			u->st = ST_HEADER;
	}
	return 0;
}

static int up_finish(struct ep_sink *s, struct ep_error *err)
{
	struct unpacker *u = (struct unpacker *)s;

	if (u->st == ST_EOF || (u->st == ST_HEADER && u->hdr_len == 0))
		return 0; /* a missing end marker is tolerated: diff_id decides */
	if (u->e.raw[0])
		return bad_entry(u, err, "the archive is truncated");
	return ep_error_set(err, EP_EINVAL, "the archive is truncated");
}

static void up_release(struct ep_sink *s)
{
	struct unpacker *u = (struct unpacker *)s;

	if (u->out_fd >= 0)
		close(u->out_fd);
	u->out_fd = -1;
	free(u->dbuf);
	u->dbuf = NULL;
	u->direct = 0;
	u->dfill = 0;
	reset_entry_state(u);
	free(u->ext);
	free(u->e.linkname);
	free(u->created.h);
	for (size_t i = 0; i < u->n_dirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
	memset(&u->created, 0, sizeof(u->created));
	u->dirs = NULL;
	u->ext = NULL;
	u->e.linkname = NULL;
	u->n_dirs = u->cap_dirs = 0;
}

/* ---- public ------------------------------------------------------------------------------- */

static uint64_t free_budget(int fd)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return EP_MAX_LAYER_BYTES;
	/* Leave 5%: a layer that fills the disk breaks everything else too. */
	return (uint64_t)sv.f_bavail * sv.f_frsize / 100 * 95;
}

struct mapped_progress {
	const struct ep_unpack_opts *o;
	uint64_t total, next_report;
};

static void mapped_progress(void *ctx, uint64_t done)
{
	struct mapped_progress *mp = ctx;

	if (done >= mp->next_report) {
		mp->o->progress(mp->o->pctx, "unpack", done, mp->total);
		mp->next_report = done + (64u << 20);
	}
}

/* A big gzip layer, mapped: inflated in place by pgunzip (no read() copy,
 * no copy into its buffer), the same bytes to the same sinks as the read
 * loop.  1 when the file cannot be mapped (the caller reads it), 0, -1. */
static int unpack_mapped(int fd, size_t len, const char *media_type, struct ep_sink *dec,
			 const struct ep_unpack_opts *o, struct ep_error *err)
{
	struct mapped_progress mp = {o, len, 0};
	int sniffed, rc;
	void *map;

	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return 1;
	(void)madvise(map, len, MADV_SEQUENTIAL);
	sniffed = (int)ep_compression_detect(map, len < READ_CHUNK ? len : READ_CHUNK);
	if (sniffed != EP_COMPRESS_GZIP) {
		munmap(map, len);
		return ep_error_set(err, EP_EINVAL, "media type '%s' says %s, the content is %s",
				    media_type, ep_compression_name(EP_COMPRESS_GZIP),
				    ep_compression_name((enum ep_compression)sniffed));
	}
	if (o->progress)
		ep_pgunzip_set_progress(dec, mapped_progress, &mp);
	rc = ep_pgunzip_run_mapped(dec, map, len, err);
	munmap(map, len);
	return rc;
}

int ep_unpack_layer(int root_fd, const char *blob_path, const char *media_type,
		    const char *diff_id, const struct ep_unpack_opts *o, struct ep_error *err)
{
	struct ep_unpack_opts defaults;
	struct unpacker u;
	struct ep_hash_sink hash;
	struct ep_sink *dec = NULL, *tar_async = NULL;
	cleanup_close int fd = -1;
	cleanup_free unsigned char *buf = NULL;
	int kind, rc = -1, threaded, hash_ok = 0;
	struct stat st;
	uint64_t done = 0, next_report = 0;
	ssize_t n;
	int first = 1;

	if (!o) {
		ep_unpack_opts_init(&defaults);
		o = &defaults;
	}
	if (diff_id && ep_digest_check(diff_id, err) < 0)
		return -1;
	kind = ep_compression_from_media_type(media_type);
	if (kind < 0)
		return ep_error_set(err, EP_EINVAL, "unknown layer media type '%s'",
				    media_type ? media_type : "");
	fd = open(blob_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", blob_path);
	buf = ep_malloc(READ_CHUNK, err);
	if (!buf)
		return -1;

	memset(&u, 0, sizeof(u));
	u.base.write = up_write;
	u.base.finish = up_finish;
	u.base.release = up_release;
	u.root = root_fd;
	u.wmode = o->whiteouts;
	u.is_root = geteuid() == 0;
	u.opaque_xattr =
	    u.is_root && !ep_in_userns() ? "trusted.overlay.opaque" : "user.overlay.opaque";
	u.same_owner = o->same_owner;
	u.allow_devices = o->allow_devices;
	u.use_openat2 = have_openat2();
	u.no_direct = getenv("ENVPIN_NO_DIRECT") != NULL;
	u.budget = o->max_bytes ? o->max_bytes : free_budget(root_fd);
	u.max_entries = o->max_entries ? o->max_entries : 10000000;
	u.stats = o->stats;
	u.out_fd = -1;
	/* A big layer is a pipeline (async_sink.h): read, inflate (gzip: on
	 * all cores, pgunzip.h) and the diff_id hash in this thread, extraction
	 * (file writes, mostly kernel time) in another. */
	threaded = st.st_size >= THREADED_LAYER && ep_worker_cpus() >= 2;
	if (threaded) {
		tar_async = ep_async_sink_new(&u.base, err);
		if (!tar_async)
			goto out;
	}
	if (ep_hash_sink_init(&hash, tar_async ? tar_async : &u.base, err) < 0)
		goto out;
	hash_ok = 1;
	/* The stream is the tar, so budget + trailer bounds it: a bomb stops
	 * in the decompressor, before the parser sees the excess. */
	if (threaded && kind == EP_COMPRESS_GZIP)
		dec = ep_pgunzip_sink_new(u.budget + TRAILER_SLACK + 2 * BLOCK, ep_worker_cpus(),
					  &hash.base, err);
	else
		dec = ep_decompress_sink_new((enum ep_compression)kind,
					     u.budget + TRAILER_SLACK + 2 * BLOCK, &hash.base, err);
	if (!dec)
		goto out;
	if (threaded && kind == EP_COMPRESS_GZIP && (uint64_t)st.st_size <= SIZE_MAX &&
	    !getenv("ENVPIN_NO_MMAP")) {
		int mrc = unpack_mapped(fd, (size_t)st.st_size, media_type, dec, o, err);

		if (mrc < 0)
			goto out;
		if (mrc == 0)
			goto inflated;
	}
	while ((n = read(fd, buf, READ_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ep_error_errno(err, EP_EENV, errno, "read '%s'", blob_path);
			goto out;
		}
		if (first) {
			int sniffed = (int)ep_compression_detect(buf, (size_t)n);

			first = 0;
			if (sniffed != kind) {
				ep_error_set(err, EP_EINVAL, "media type '%s' says %s, the content is %s",
					     media_type, ep_compression_name((enum ep_compression)kind),
					     ep_compression_name((enum ep_compression)sniffed));
				goto out;
			}
		}
		if (ep_sink_write(dec, buf, (size_t)n, err) < 0)
			goto out;
		done += (uint64_t)n;
		if (o->progress && done >= next_report) {
			o->progress(o->pctx, "unpack", done, (uint64_t)st.st_size);
			next_report = done + (64u << 20);
		}
	}
	if (ep_sink_finish(dec, err) < 0)
		goto out;
inflated:
	if (finish_dirs(&u, err) < 0)
		goto out;
	if (diff_id && strcmp(hash.digest, diff_id)) {
		ep_error_set(err, EP_EMISMATCH,
			     "diff_id mismatch: config says %s, the uncompressed layer hashes to %s",
			     diff_id, hash.digest);
		goto out;
	}
	if (o->progress)
		o->progress(o->pctx, "unpack", (uint64_t)st.st_size, (uint64_t)st.st_size);
	rc = 0;
out:
	/* front to back: the async worker stops before its stage goes */
	ep_sink_release(dec);
	free(dec);
	if (hash_ok)
		ep_sink_release(&hash.base);
	ep_async_sink_free(tar_async);
	up_release(&u.base);
	return rc;
}

/* Empties the directory open as fd (used to undo a failed unpack). */
static void empty_dir(int fd)
{
	(void)rm_children(fd, 0);
}

int ep_unpack_image(const char *layout, const char *manifest_digest, const char *dest,
		    const struct ep_unpack_opts *o, struct ep_error *err)
{
	struct ep_unpack_opts opts;
	cleanup_json json_t *info = NULL;
	cleanup_close int root = -1;
	json_t *layers, *l;
	size_t i;
	int created = 0;
	DIR *d;

	if (o)
		opts = *o;
	else
		ep_unpack_opts_init(&opts);
	opts.whiteouts = EP_WHITEOUT_APPLY;
	info = ep_inspect(layout, manifest_digest, err);
	if (!info)
		return -1;
	layers = json_object_get(info, "layers");
	if (mkdir(dest, 0755) == 0)
		created = 1;
	else if (errno != EEXIST)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", dest);
	root = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return ep_error_errno(err, errno == ENOTDIR || errno == ELOOP ? EP_EINVAL : EP_EENV,
				      errno, "open '%s' (must be a directory, not a symlink)", dest);
	if (!created) {
		struct dirent *de;
		int nonempty = 0;

		d = fdopendir(fcntl(root, F_DUPFD_CLOEXEC, 0));
		if (!d)
			return ep_error_errno(err, EP_EENV, errno, "read '%s'", dest);
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				nonempty = 1;
		closedir(d);
		if (nonempty)
			return ep_error_set(err, EP_EINVAL, "'%s' is not empty", dest);
	}
	json_array_foreach(layers, i, l) {
		const char *dg = json_string_value(json_object_get(l, "digest"));
		const char *diff = json_string_value(json_object_get(l, "diff_id"));
		const char *mt = json_string_value(json_object_get(l, "media_type"));
		cleanup_free char *blob = NULL;

		if (!dg || ep_digest_check(dg, err) < 0)
			goto fail;
		/* Without a diff_id nothing vouches for the content: refuse. */
		if (!diff) {
			ep_error_set(err, EP_EINVAL, "layer %zu %s: the config has no diff_id for it",
				     i + 1, dg);
			goto fail;
		}
		blob = ep_asprintf(err, "%s/blobs/sha256/%s", layout, ep_digest_hex(dg));
		if (!blob)
			goto fail;
		if (ep_unpack_layer(root, blob, mt, diff, &opts, err) < 0) {
			ep_error_wrap(err, "layer %zu/%zu %s", i + 1, json_array_size(layers), dg);
			goto fail;
		}
		if (opts.stats)
			opts.stats->layers++;
	}
	return 0;
fail:
	/* Nothing half-unpacked is left behind. */
	empty_dir(root);
	if (created)
		rmdir(dest);
	return -1;
}

static int layer_rootfs(struct ep_store *s, const char *blob_digest, const char *media_type,
			const char *diff_id, ep_progress_fn progress, void *pctx, char **path,
			struct ep_error *err)
{
	struct ep_unpack_opts opts;
	cleanup_free char *rdir = NULL, *final = NULL, *lockp = NULL, *tmpdir = NULL;
	cleanup_free char *blob = NULL, *tmp = NULL;
	cleanup_close int lock = -1, root = -1, rfd = -1;
	struct stat st;
	DIR *d;

	if (ep_digest_check(blob_digest, err) < 0)
		return -1;
	if (!diff_id)
		return ep_error_set(err, EP_EINVAL, "layer %s: a diff_id is required", blob_digest);
	if (ep_digest_check(diff_id, err) < 0)
		return -1;
	rdir = ep_path_join(s->root, "rootfs", err);
	tmpdir = rdir ? ep_path_join(s->root, "tmp", err) : NULL;
	final = tmpdir ? ep_path_join(rdir, ep_digest_hex(diff_id), err) : NULL;
	lockp = final ? ep_asprintf(err, "%s.lock", final) : NULL;
	if (!lockp)
		return -1;
	/* 0700: unpacked layers hold setuid binaries and devices nobody else
	 * on the host should reach (CVE-2021-41103). */
	if (mkdir(rdir, 0700) < 0 && errno != EEXIST)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", rdir);
	if (mkdir(tmpdir, 0755) < 0 && errno != EEXIST)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", tmpdir);
	if (lstat(final, &st) == 0 && S_ISDIR(st.st_mode))
		goto done;
	lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", lockp);
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			return ep_error_errno(err, EP_EENV, errno, "lock '%s'", lockp);
	if (lstat(final, &st) == 0 && S_ISDIR(st.st_mode))
		goto done; /* another process made it while we waited */

	/* Leftovers of killed unpacks of this layer: we hold its lock, so no
	 * live process is writing them. */
	d = opendir(tmpdir);
	if (d) {
		struct dirent *de;
		char pfx[96];
		cleanup_close int tfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		snprintf(pfx, sizeof(pfx), "rootfs-%s-", ep_digest_hex(diff_id));
		while ((de = readdir(d)))
			if (tfd >= 0 && !strncmp(de->d_name, pfx, strlen(pfx)))
				rm_at(tfd, de->d_name, 0);
		closedir(d);
	}
	tmp = ep_asprintf(err, "%s/rootfs-%s-XXXXXX", tmpdir, ep_digest_hex(diff_id));
	if (!tmp)
		return -1;
	if (!mkdtemp(tmp))
		return ep_error_errno(err, EP_EENV, errno, "create a temp dir in '%s'", tmpdir);
	root = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0 || fchmod(root, 0755) < 0) {
		ep_error_errno(err, EP_EENV, errno, "open '%s'", tmp);
		goto fail;
	}
	blob = ep_store_blob_path(s, blob_digest, err);
	if (!blob)
		goto fail;
	ep_unpack_opts_init(&opts);
	opts.whiteouts = EP_WHITEOUT_OVERLAY;
	opts.progress = progress;
	opts.pctx = pctx;
	if (ep_unpack_layer(root, blob, media_type, diff_id, &opts, err) < 0) {
		ep_error_wrap(err, "layer %s", blob_digest);
		goto fail;
	}
	/* One syncfs instead of an fsync per file: the rename below publishes
	 * the tree, so it must be on disk first. */
	if (syncfs(root) < 0) {
		ep_error_errno(err, EP_EENV, errno, "sync '%s'", tmp);
		goto fail;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		ep_error_errno(err, EP_EENV, errno, "rename '%s' to '%s'", tmp, final);
		goto fail;
	}
	rfd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd >= 0)
		fsync(rfd);
done:
	*path = steal_pointer(&final);
	return 0;
fail:
	if (root >= 0)
		empty_dir(root);
	rmdir(tmp);
	return -1;
}

int ep_layer_rootfs(struct ep_store *s, const char *blob_digest, const char *media_type,
		    const char *diff_id, char **path, struct ep_error *err)
{
	return layer_rootfs(s, blob_digest, media_type, diff_id, NULL, NULL, path, err);
}

/* Progress over several layers unpacking at once: one total. */
struct all_progress {
	pthread_mutex_t mu;
	ep_progress_fn fn;
	void *ctx;
	uint64_t done, total;
};

struct layer_task {
	struct all_progress *pg;
	const json_t *layer;
	uint64_t size, reported; /* blob size; bytes already added to pg */
	char *path;
	struct ep_error err;
	int rc, todo;
};

struct layer_queue {
	struct layer_task *tasks;
	struct ep_store *s;
};

static void task_progress(void *ctx, const char *what, uint64_t done, uint64_t total)
{
	struct layer_task *t = ctx;
	struct all_progress *pg = t->pg;

	(void)what;
	(void)total;
	pthread_mutex_lock(&pg->mu);
	if (done > t->reported) {
		pg->done += done - t->reported;
		t->reported = done;
	}
	pg->fn(pg->ctx, "unpack", pg->done, pg->total);
	pthread_mutex_unlock(&pg->mu);
}

static int unpack_one_layer(void *ctx, size_t i)
{
	struct layer_queue *q = ctx;
	struct layer_task *t = &q->tasks[i];

	if (!t->todo)
		return 0;
	t->rc = layer_rootfs(q->s, json_string_value(json_object_get(t->layer, "digest")),
			     json_string_value(json_object_get(t->layer, "media_type")),
			     json_string_value(json_object_get(t->layer, "diff_id")),
			     t->pg->fn ? task_progress : NULL, t, &t->path, &t->err);
	return t->rc;
}

static int unpack_threads(void)
{
	const char *e = getenv("ENVPIN_UNPACK_THREADS");
	int t = e && atoi(e) > 0 ? atoi(e) : ep_worker_cpus() >= 2 ? 2 : 1;

	return t > 8 ? 8 : t;
}

int ep_layer_rootfs_all(struct ep_store *s, const json_t *layers, char **paths,
			ep_progress_fn progress, void *pctx, struct ep_error *err)
{
	size_t n = json_array_size(layers);
	struct all_progress pg = {PTHREAD_MUTEX_INITIALIZER, progress, pctx, 0, 0};
	struct layer_queue q = {NULL, s};
	int nt = unpack_threads(), failed = 0, rc = 0;
	size_t todo = 0;

	q.tasks = ep_calloc(n ? n : 1, sizeof(*q.tasks), err);
	if (!q.tasks)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct layer_task *t = &q.tasks[i];
		const char *diff =
		    json_string_value(json_object_get(json_array_get(layers, i), "diff_id"));
		const char *dg =
		    json_string_value(json_object_get(json_array_get(layers, i), "digest"));
		char hex_path[PATH_MAX];
		struct stat st;

		t->pg = &pg;
		t->layer = json_array_get(layers, i);
		ep_error_clear(&t->err);
		t->todo = 1;
		/* cached already: done in order below, no thread, no progress */
		if (diff && ep_digest_check(diff, NULL) == 0) {
			snprintf(hex_path, sizeof(hex_path), "%s/rootfs/%s", s->root,
				 ep_digest_hex(diff));
			if (lstat(hex_path, &st) == 0 && S_ISDIR(st.st_mode))
				t->todo = 0;
		}
		if (t->todo) {
			cleanup_free char *blob = dg && ep_digest_check(dg, NULL) == 0
						      ? ep_store_blob_path(s, dg, NULL)
						      : NULL;
			if (blob && stat(blob, &st) == 0)
				t->size = (uint64_t)st.st_size;
			pg.total += t->size;
			todo++;
		}
	}
	if ((size_t)nt > todo)
		nt = (int)todo;
	if (todo)
		ep_parallel_for(n, nt, 1, unpack_one_layer, &q);
	for (size_t i = 0; i < n; i++)
		failed |= q.tasks[i].todo && q.tasks[i].rc < 0;
	/* the last word is 100% (once: a tty line ends there) */
	if (todo && progress && !failed && pg.done < pg.total)
		progress(pctx, "unpack", pg.total, pg.total);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct layer_task *t = &q.tasks[i];

		if (t->todo && t->rc < 0) {
			*err = t->err;
			rc = ep_error_wrap(err, "layer %zu", i + 1);
		} else if (!t->todo || !t->path) {
			/* cached, or skipped after another layer failed */
			if (failed)
				continue;
			t->rc =
			    layer_rootfs(s, json_string_value(json_object_get(t->layer, "digest")),
					 json_string_value(json_object_get(t->layer, "media_type")),
					 json_string_value(json_object_get(t->layer, "diff_id")),
					 NULL, NULL, &t->path, &t->err);
			if (t->rc < 0) {
				*err = t->err;
				rc = ep_error_wrap(err, "layer %zu", i + 1);
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			paths[i] = q.tasks[i].path;
		else
			free(q.tasks[i].path);
	}
	free(q.tasks);
	return rc;
}

/* Bytes a tree takes on disk (best effort; for gc's report). */
static uint64_t tree_bytes(const char *path)
{
	char cmd_path[PATH_MAX];
	uint64_t total = 0;
	DIR *d = opendir(path);
	struct dirent *e;
	struct stat st;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(cmd_path, sizeof(cmd_path), "%s/%s", path, e->d_name);
		if (lstat(cmd_path, &st) < 0)
			continue;
		total += (uint64_t)st.st_blocks * 512;
		if (S_ISDIR(st.st_mode))
			total += tree_bytes(cmd_path);
	}
	closedir(d);
	return total;
}

int ep_layer_rootfs_gc(struct ep_store *s, json_t *keep, uint64_t *freed, struct ep_error *err)
{
	cleanup_free char *rdir = ep_path_join(s->root, "rootfs", err);
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (!rdir)
		return -1;
	if (s->flags & EP_STORE_EXCLUSIVE) {
		/* only with the exclusive lock: no run can be using a layer */
	} else {
		return ep_error_set(err, EP_EINVAL, "pruning layer caches needs the store's exclusive lock");
	}
	d = opendir(rdir);
	if (!d)
		return errno == ENOENT ? 0 : ep_error_errno(err, EP_EENV, errno, "open '%s'", rdir);
	while ((e = readdir(d))) {
		char hex[EP_HEX_LEN + 1];
		ep_digest diff_id;
		cleanup_free char *p = NULL, *lk = NULL;

		if (strlen(e->d_name) != EP_HEX_LEN || !ep_is_hex64(e->d_name))
			continue;
		memcpy(hex, e->d_name, sizeof(hex));
		snprintf(diff_id, sizeof(diff_id), "sha256:%s", hex);
		if (json_object_get(keep, diff_id))
			continue;
		p = ep_path_join(rdir, hex, err);
		lk = p ? ep_asprintf(err, "%s.lock", p) : NULL;
		if (!lk) {
			rc = -1;
			break;
		}
		if (freed)
			*freed += tree_bytes(p);
		if (ep_rm_rf(p, err) < 0) {
			rc = -1;
			break;
		}
		unlink(lk);
	}
	closedir(d);
	return rc;
}
