/* lib/layer.c - the content tree of one layer and its profile-1 writing.
 *
 * Design: entries live in one array, found by path through an open
 * addressing hash table.  Only metadata is kept in memory.  Host files are
 * re-read at write time; archive data is spooled once, while the archive is
 * read, into one unlinked temp file in spool_dir and read back with pread.
 * Spooling always (instead of re-reading the archive when it happens to be in
 * profile order) costs disk space equal to the archive's file data but has
 * one code path that is correct for every order and every compression. */
#include "layer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "archive_dl.h"
#include "tar.h"
#include "util.h"

#define CHUNK (1024 * 1024)
#define MAX_PATH_BYTES 4096
#define MAX_DEPTH 1024
#define MAX_ENTRIES (16u * 1024 * 1024)
#define MAX_XATTR_BYTES (64 * 1024)
#define MAX_LINK_HOPS 64

enum src_kind { SRC_NONE, SRC_HOST, SRC_SPOOL };

struct xattr {
	char *name;
	void *value;
	size_t len;
};

struct entry {
	char *path; /* image path, relative to "/", no trailing "/" */
	int type;   /* enum ep_tar_type */
	uint32_t mode;
	uint64_t uid, gid;
	int64_t mtime;
	uint64_t size;
	char *linkname;
	uint32_t devmajor, devminor;
	struct xattr *xattrs;
	size_t n_xattrs;

	int src; /* enum src_kind, for regular files */
	/* SRC_HOST: the file, and its stat for the stat key */
	char *host;
	uint64_t dev, ino;
	int64_t mtime_ns, ctime_ns;
	/* SRC_SPOOL: where the data is, and which archive entry it was */
	uint64_t spool_off;
	uint32_t archive;
	uint64_t archive_index;

	size_t nchildren; /* live entries whose parent is this one */
	bool dead;
	/* scratch of finalize(): hardlink group root and its first member */
	struct entry *root, *holder;
};

struct archive_src {
	ep_digest sha256;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct ep_tree {
	char *spool_dir;
	int spool_fd;
	uint64_t spool_len;

	struct entry *e;
	size_t n, cap, live;

	size_t *slots; /* index + 1 into e; 0 empty, TOMB deleted */
	size_t nslots, used;

	struct archive_src *archives;
	size_t n_archives;
};

#define TOMB ((size_t)-1)

/* ---- hash table ---------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Returns the slot of path (len bytes) or, if absent, SIZE_MAX. */
static size_t find_slot(const struct ep_tree *t, const char *path, size_t len)
{
	size_t mask = t->nslots - 1, i;

	if (!t->nslots)
		return SIZE_MAX;
	for (i = hash_bytes(path, len) & mask;; i = (i + 1) & mask) {
		size_t v = t->slots[i];

		if (v == 0)
			return SIZE_MAX;
		if (v != TOMB) {
			const char *p = t->e[v - 1].path;

			if (strncmp(p, path, len) == 0 && p[len] == '\0')
				return i;
		}
	}
}

static struct entry *lookup_n(const struct ep_tree *t, const char *path, size_t len)
{
	size_t s = find_slot(t, path, len);

	return s == SIZE_MAX ? NULL : &t->e[t->slots[s] - 1];
}

static struct entry *lookup(const struct ep_tree *t, const char *path)
{
	return lookup_n(t, path, strlen(path));
}

static void slot_insert(struct ep_tree *t, size_t idx)
{
	const char *p = t->e[idx].path;
	size_t mask = t->nslots - 1, i;

	for (i = hash_bytes(p, strlen(p)) & mask; t->slots[i] && t->slots[i] != TOMB;
	     i = (i + 1) & mask)
		;
	if (t->slots[i] == 0)
		t->used++;
	t->slots[i] = idx + 1;
}

static int rehash(struct ep_tree *t, struct ep_error *err)
{
	size_t ns = t->nslots ? t->nslots : 1024;
	size_t *old = t->slots, on = t->nslots;

	while (ns < 4 * (t->live + 1))
		ns *= 2;
	t->slots = ep_calloc(ns, sizeof(*t->slots), err);
	if (!t->slots) {
		t->slots = old;
		return -1;
	}
	t->nslots = ns;
	t->used = 0;
	for (size_t i = 0; i < on; i++)
		if (old[i] && old[i] != TOMB)
			slot_insert(t, old[i] - 1);
	free(old);
	return 0;
}

/* ---- entries ------------------------------------------------------------- */

static void entry_release(struct entry *e)
{
	free(e->path);
	free(e->linkname);
	free(e->host);
	for (size_t i = 0; i < e->n_xattrs; i++) {
		free(e->xattrs[i].name);
		free(e->xattrs[i].value);
	}
	free(e->xattrs);
	memset(e, 0, sizeof(*e));
}

/* Frees everything but the path and the child count: what a replacement
 * overwrites. */
static void entry_clear_payload(struct entry *e)
{
	char *path = e->path;
	size_t nch = e->nchildren;

	e->path = NULL;
	entry_release(e);
	e->path = path;
	e->nchildren = nch;
}

static struct entry *parent_of(struct ep_tree *t, const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? lookup_n(t, path, (size_t)(slash - path)) : NULL;
}

static void kill_entry(struct ep_tree *t, struct entry *e)
{
	size_t s = find_slot(t, e->path, strlen(e->path));
	struct entry *p = parent_of(t, e->path);

	if (p && p->nchildren)
		p->nchildren--;
	if (s != SIZE_MAX)
		t->slots[s] = TOMB;
	e->dead = true;
	t->live--;
	entry_release(e);
	e->dead = true;
}

/* Removes every entry below dir (a directory being replaced by a
 * non-directory).  Linear in the tree, and only run when dir has children. */
static void kill_children(struct ep_tree *t, const char *dir)
{
	size_t dl = strlen(dir);

	for (size_t i = 0; i < t->n; i++) {
		struct entry *c = &t->e[i];

		if (!c->dead && strncmp(c->path, dir, dl) == 0 && c->path[dl] == '/')
			kill_entry(t, c);
	}
}

/* Checks that every ancestor of path present in the tree is a directory. */
static int check_parents(struct ep_tree *t, const char *path, struct ep_error *err)
{
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		struct entry *a = lookup_n(t, path, (size_t)(s - path));

		if (a && a->type != EP_TAR_DIR)
			return ep_error_set(err, EP_EINVAL, "'%s': parent '%.*s' is not a directory",
					    path, (int)(s - path), path);
	}
	return 0;
}

/* Takes ownership of the heap fields of *n (on success and on failure).
 * A later entry for the same path replaces the earlier one; a directory
 * over a directory keeps its children. */
static int tree_put(struct ep_tree *t, struct entry *n, struct ep_error *err)
{
	struct entry *old;

	if (check_parents(t, n->path, err) < 0) {
		entry_release(n);
		return -1;
	}
	old = lookup(t, n->path);
	if (old) {
		if (old->type == EP_TAR_DIR && n->type != EP_TAR_DIR && old->nchildren)
			kill_children(t, old->path);
		entry_clear_payload(old);
		free(n->path);
		n->path = old->path;
		n->nchildren = old->nchildren;
		*old = *n;
		return 0;
	}
	if (t->n >= MAX_ENTRIES) {
		entry_release(n);
		return ep_error_set(err, EP_EINVAL, "layer has more than %u entries", MAX_ENTRIES);
	}
	if (t->n == t->cap) {
		size_t nc = t->cap ? 2 * t->cap : 256;
		struct entry *ne = ep_realloc(t->e, nc * sizeof(*ne), err);

		if (!ne) {
			entry_release(n);
			return -1;
		}
		t->e = ne;
		t->cap = nc;
	}
	if (4 * (t->used + 1) > t->nslots * 3 && rehash(t, err) < 0) {
		entry_release(n);
		return -1;
	}
	t->e[t->n] = *n;
	old = parent_of(t, n->path);
	if (old)
		old->nchildren++;
	slot_insert(t, t->n);
	t->n++;
	t->live++;
	return 0;
}

/* ---- paths --------------------------------------------------------------- */

/* Normalizes an image path: drops leading "/" and "./", empty and "."
 * components, resolves ".." lexically.  "" is the root.  A ".." that would
 * leave the root is an error naming what.  Caller frees. */
static char *norm_path(const char *in, const char *what, struct ep_error *err)
{
	size_t len = strlen(in), o = 0;
	cleanup_free char *out = NULL;
	const char *p = in;

	if (len > MAX_PATH_BYTES) {
		ep_error_set(err, EP_EINVAL, "%s '%.64s...' is longer than %d bytes", what, in,
			     MAX_PATH_BYTES);
		return NULL;
	}
	out = ep_malloc(len + 1, err);
	if (!out)
		return NULL;
	while (*p) {
		const char *s = strchr(p, '/');
		size_t cl = s ? (size_t)(s - p) : strlen(p);

		if (cl == 0 || (cl == 1 && p[0] == '.')) {
			/* skip */
		} else if (cl == 2 && p[0] == '.' && p[1] == '.') {
			if (o == 0) {
				ep_error_set(err, EP_EINVAL, "%s '%s' leaves the root", what, in);
				return NULL;
			}
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, cl);
			o += cl;
		}
		p += cl;
		if (*p == '/')
			p++;
	}
	out[o] = '\0';
	return steal_pointer(&out);
}

static char *join_rel(const char *a, const char *b, struct ep_error *err)
{
	if (!*a)
		return ep_strdup(b, err);
	if (!*b)
		return ep_strdup(a, err);
	return ep_asprintf(err, "%s/%s", a, b);
}

/* Adds the missing directories above path (exclusive) as 0755 root. */
static int add_parents(struct ep_tree *t, const char *path, int64_t mtime, struct ep_error *err)
{
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		size_t l = (size_t)(s - path);
		struct entry *a = lookup_n(t, path, l);
		struct entry n = {0};

		if (a) {
			if (a->type != EP_TAR_DIR)
				return ep_error_set(err, EP_EINVAL,
						    "'%s': parent '%.*s' is not a directory", path,
						    (int)l, path);
			continue;
		}
		n.path = strndup(path, l);
		if (!n.path)
			return ep_error_oom(err);
		n.type = EP_TAR_DIR;
		n.mode = 0755;
		n.mtime = mtime;
		if (tree_put(t, &n, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- tree lifecycle ------------------------------------------------------ */

struct ep_tree *ep_tree_new(const char *spool_dir, struct ep_error *err)
{
	struct ep_tree *t = ep_calloc(1, sizeof(*t), err);
	const char *d = spool_dir;

	if (!t)
		return NULL;
	if (!d)
		d = getenv("TMPDIR");
	if (!d || !*d)
		d = "/tmp";
	t->spool_fd = -1;
	t->spool_dir = ep_strdup(d, err);
	if (!t->spool_dir) {
		free(t);
		return NULL;
	}
	return t;
}

void ep_tree_free(struct ep_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		entry_release(&t->e[i]);
	free(t->e);
	free(t->slots);
	free(t->archives);
	if (t->spool_fd >= 0)
		close(t->spool_fd);
	free(t->spool_dir);
	free(t);
}

size_t ep_tree_count(const struct ep_tree *t)
{
	return t->live;
}

/* ---- copy ---------------------------------------------------------------- */

/* ---- host trees: the one walker of copy steps and run-step upper dirs ---- */

struct inode_seen {
	uint64_t dev, ino;
	char *path; /* image path of the first copy seen */
};

/* The regular files with more than one link seen so far in a walk: the
 * first becomes the file, the others hardlinks to it. */
struct inode_set {
	struct inode_seen *v;
	size_t n, cap;
};

static void inode_set_release(struct inode_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
}

/* A regular host file st at image path `path` into *n: a hardlink to the
 * first path of its inode seen before, else the file itself (remembered
 * when it has other links). */
static int host_regular(struct inode_set *seen, struct entry *n, const char *host,
			const struct stat *st, const char *path, struct ep_error *err)
{
	n->type = EP_TAR_REG;
	if (st->st_nlink > 1) {
		for (size_t i = 0; i < seen->n; i++) {
			if (seen->v[i].dev == (uint64_t)st->st_dev &&
			    seen->v[i].ino == (uint64_t)st->st_ino) {
				n->type = EP_TAR_HARDLINK;
				n->linkname = ep_strdup(seen->v[i].path, err);
				return n->linkname ? 0 : -1;
			}
		}
		if (seen->n == seen->cap) {
			size_t nc = seen->cap ? 2 * seen->cap : 16;
			struct inode_seen *v = ep_realloc(seen->v, nc * sizeof(*v), err);

			if (!v)
				return -1;
			seen->v = v;
			seen->cap = nc;
		}
		seen->v[seen->n].path = ep_strdup(path, err);
		if (!seen->v[seen->n].path)
			return -1;
		seen->v[seen->n].dev = (uint64_t)st->st_dev;
		seen->v[seen->n].ino = (uint64_t)st->st_ino;
		seen->n++;
	}
	n->size = (uint64_t)st->st_size;
	n->src = SRC_HOST;
	n->dev = (uint64_t)st->st_dev;
	n->ino = (uint64_t)st->st_ino;
	n->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	n->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	n->host = ep_strdup(host, err);
	return n->host ? 0 : -1;
}

/* The target of symlink name in dfd (host path host, st its lstat) into
 * n->linkname. */
static int host_symlink(struct entry *n, int dfd, const char *name, const char *host,
			const struct stat *st, struct ep_error *err)
{
	size_t cap = (size_t)st->st_size + 2;
	ssize_t r;

	if (st->st_size > MAX_PATH_BYTES)
		return ep_error_set(err, EP_EINVAL, "symlink '%s' target is too long", host);
	n->linkname = ep_malloc(cap, err);
	if (!n->linkname)
		return -1;
	r = readlinkat(dfd, name, n->linkname, cap);
	if (r < 0 || (size_t)r >= cap || r == 0) {
		free(n->linkname);
		n->linkname = NULL;
		return r < 0 ? ep_error_errno(err, EP_EENV, errno, "readlink '%s'", host)
			     : ep_error_set(err, EP_EENV, "symlink '%s' changed while read", host);
	}
	n->linkname[r] = '\0';
	n->type = EP_TAR_SYMLINK;
	return 0;
}

/* Called by walk_dir for each entry, in name order, a directory before
 * what is below it: name in the open directory dfd, host its host path,
 * st its lstat, path its image path.  0 goes on (into a directory), 1
 * skips the entry (and what is below it), -1 stops with *err filled. */
typedef int (*walk_fn)(void *ctx, int dfd, const char *name, const char *host,
		       const struct stat *st, const char *path, struct ep_error *err);

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The names in the open directory dfd (host path host), sorted: readdir
 * order is filesystem noise, and the first path of a hardlink group must
 * not depend on it. */
static int read_names(int dfd, const char *host, char ***out, size_t *count, struct ep_error *err)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int dup_fd = dup(dfd);

	if (dup_fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "dup '%s'", host);
	d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return ep_error_errno(err, EP_EENV, errno, "opendir '%s'", host);
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 32;
			char **nn = ep_realloc(names, nc * sizeof(*nn), err);

			if (!nn)
				goto fail;
			names = nn;
			cap = nc;
		}
		names[n] = ep_strdup(de->d_name, err);
		if (!names[n])
			goto fail;
		n++;
		errno = 0;
	}
	if (errno) {
		ep_error_errno(err, EP_EENV, errno, "readdir '%s'", host);
		goto fail;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*count = n;
	return 0;
fail:
	closedir(d);
	free_names(names, n);
	return -1;
}

/* Walks the contents of the open directory dfd (host path `host`), image
 * path `path` ("" for the root), calling fn for each entry. */
static int walk_dir(int dfd, const char *host, const char *path, int depth, walk_fn fn, void *ctx,
		    struct ep_error *err)
{
	char **names = NULL;
	size_t n = 0;
	int rc = -1;

	if (depth > MAX_DEPTH)
		return ep_error_set(err, EP_EINVAL, "'%s' is nested deeper than %d directories",
				    host, MAX_DEPTH);
	if (read_names(dfd, host, &names, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *chost = ep_path_join(host, names[i], err);
		cleanup_free char *cpath = NULL;
		struct stat st;
		int r;

		if (!chost)
			goto out;
		cpath = join_rel(path, names[i], err);
		if (!cpath)
			goto out;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ep_error_errno(err, EP_EENV, errno, "stat '%s'", chost);
			goto out;
		}
		r = fn(ctx, dfd, names[i], chost, &st, cpath, err);
		if (r < 0)
			goto out;
		if (r == 0 && S_ISDIR(st.st_mode)) {
			cleanup_close int cfd =
			    openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (cfd < 0) {
				ep_error_errno(err, EP_EENV, errno, "open '%s'", chost);
				goto out;
			}
			if (walk_dir(cfd, chost, cpath, depth + 1, fn, ctx, err) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	free_names(names, n);
	return rc;
}

struct copy_ctx {
	struct ep_tree *t;
	const struct ep_copy_opts *o;
	struct inode_set seen;
};

static uint32_t copy_mode(const struct ep_copy_opts *o, mode_t st_mode)
{
	if (o->mode >= 0)
		return (uint32_t)o->mode & 07777;
	if (S_ISDIR(st_mode))
		return 0755;
	if (S_ISLNK(st_mode))
		return 0777;
	return (st_mode & 0111) ? 0755 : 0644;
}

static int refuse_special(const char *host, mode_t m, struct ep_error *err)
{
	const char *what = S_ISSOCK(m)	 ? "a socket"
			   : S_ISFIFO(m) ? "a fifo"
			   : S_ISCHR(m)	 ? "a character device"
			   : S_ISBLK(m)	 ? "a block device"
					 : "of an unknown type";

	return ep_error_set(
	    err, EP_EINVAL,
	    "'%s' is %s: copy takes only files, directories and symlinks "
	    "(special files do not belong in a source tree; put them in an archive)",
	    host, what);
}

/* Adds one host object (already lstat'ed) at image path `path` (walk_fn). */
static int copy_one(void *ctx, int dirfd, const char *name, const char *host, const struct stat *st,
		    const char *path, struct ep_error *err)
{
	struct copy_ctx *c = ctx;
	struct entry n = {0};
	int rc = 0;

	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode))
		return refuse_special(host, st->st_mode, err);
	n.mode = copy_mode(c->o, st->st_mode);
	n.uid = (uint64_t)c->o->uid;
	n.gid = (uint64_t)c->o->gid;
	n.mtime = c->o->mtime;
	if (S_ISDIR(st->st_mode))
		n.type = EP_TAR_DIR;
	else if (S_ISLNK(st->st_mode))
		rc = host_symlink(&n, dirfd, name, host, st, err);
	else
		rc = host_regular(&c->seen, &n, host, st, path, err);
	n.path = rc < 0 ? NULL : ep_strdup(path, err);
	if (!n.path) {
		entry_release(&n);
		return -1;
	}
	return tree_put(c->t, &n, err);
}

int ep_tree_add_copy(struct ep_tree *t, const char *src, const char *dest,
		     const struct ep_copy_opts *o, struct ep_error *err)
{
	struct copy_ctx c = {.t = t, .o = o};
	cleanup_free char *dpath = NULL;
	cleanup_free char *target = NULL;
	size_t dl = strlen(dest);
	bool dest_dir = dl > 0 && dest[dl - 1] == '/';
	struct stat st;
	int rc = -1;

	if (o->uid < 0 || o->gid < 0)
		return ep_error_set(err, EP_EINVAL, "copy '%s': negative owner", src);
	dpath = norm_path(dest, "destination", err);
	if (!dpath)
		return ep_error_wrap(err, "copy '%s'", src);
	if (!*dpath)
		dest_dir = true;
	if (lstat(src, &st) < 0)
		return ep_error_errno(err, EP_EENV, errno, "copy '%s'", src);

	if (S_ISDIR(st.st_mode)) {
		cleanup_close int fd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0)
			return ep_error_errno(err, EP_EENV, errno, "copy '%s': open", src);
		if (add_parents(t, dpath, o->mtime, err) < 0)
			goto out;
		/* the directory itself becomes dest, with the copy's metadata */
		if (*dpath && copy_one(&c, AT_FDCWD, src, src, &st, dpath, err) < 0)
			goto out;
		if (walk_dir(fd, src, dpath, 0, copy_one, &c, err) < 0)
			goto out;
	} else {
		if (dest_dir) {
			cleanup_free char *tmp = ep_strdup(src, err);
			const char *base;
			size_t bl;

			if (!tmp)
				goto out;
			bl = strlen(tmp);
			while (bl > 1 && tmp[bl - 1] == '/')
				tmp[--bl] = '\0';
			base = strrchr(tmp, '/');
			base = base ? base + 1 : tmp;
			target = join_rel(dpath, base, err);
		} else {
			target = ep_strdup(dpath, err);
		}
		if (!target)
			goto out;
		if (add_parents(t, target, o->mtime, err) < 0)
			goto out;
		if (copy_one(&c, AT_FDCWD, src, src, &st, target, err) < 0)
			goto out;
	}
	rc = 0;
out:
	inode_set_release(&c.seen);
	if (rc < 0)
		ep_error_wrap(err, "copy '%s' to '%s'", src, dest);
	return rc;
}

/* ---- run step output: an overlayfs upper dir ------------------------------ */

/* Profile rules for what a command leaves behind (docs/profile-1.md, "run
 * steps"): files that only record when or on which host the step ran.
 * Returns 1 when the entry at image path p (kind: dir or not) is dropped. */
static bool upper_dropped(const char *p, bool dir)
{
	static const char *const drop_all[] = {"tmp/", "var/tmp/", "root/.cache", "run/"};
	static const char *const drop_files[] = {"var/log/", "var/cache/apt/archives/"};
	static const char *const drop_exact[] = {
	    "var/cache/ldconfig/aux-cache",	   "var/cache/apt/pkgcache.bin",
	    "var/cache/apt/srcpkgcache.bin",	   "var/cache/debconf/config.dat-old",
	    "var/cache/debconf/templates.dat-old", "var/lib/dpkg/status-old",
	    "var/lib/dpkg/available-old",	   "var/lib/dpkg/diversions-old",
	    "var/lib/dpkg/statoverride-old",	   "etc/ld.so.cache~",
	};
	size_t n = strlen(p);

	for (size_t i = 0; i < EP_ARRAY_SIZE(drop_all); i++) {
		size_t l = strlen(drop_all[i]);

		if (drop_all[i][l - 1] == '/'
			? (n > l && !strncmp(p, drop_all[i], l))
			: (!strncmp(p, drop_all[i], l) && (p[l] == '\0' || p[l] == '/')))
			return true;
	}
	for (size_t i = 0; !dir && i < EP_ARRAY_SIZE(drop_files); i++)
		if (!strncmp(p, drop_files[i], strlen(drop_files[i])))
			return true;
	for (size_t i = 0; i < EP_ARRAY_SIZE(drop_exact); i++)
		if (!strcmp(p, drop_exact[i]))
			return true;
	/* compiled bytecode records the source's mtime (or is absent from a
	 * read-only image anyway): dropped, Python recompiles in memory */
	if (!dir && n > 4 && !strcmp(p + n - 4, ".pyc") &&
	    (strstr(p, "/__pycache__/") || !strncmp(p, "__pycache__/", 12)))
		return true;
	return false;
}

struct upper_ctx {
	struct ep_tree *t;
	int64_t clamp;
	struct inode_set seen;
};

static int upper_xattrs(struct entry *n, const char *host, struct ep_error *err)
{
	char buf[1024];
	ssize_t l;

	l = lgetxattr(host, "security.capability", buf, sizeof(buf));
	if (l <= 0)
		return 0;
	n->xattrs = ep_calloc(1, sizeof(*n->xattrs), err);
	if (!n->xattrs)
		return -1;
	n->xattrs[0].name = ep_strdup("security.capability", err);
	n->xattrs[0].value = ep_malloc((size_t)l, err);
	n->n_xattrs = 1;
	if (!n->xattrs[0].name || !n->xattrs[0].value)
		return -1;
	memcpy(n->xattrs[0].value, buf, (size_t)l);
	n->xattrs[0].len = (size_t)l;
	return 0;
}

static int upper_whiteout(struct upper_ctx *c, const char *path, struct ep_error *err)
{
	const char *slash = strrchr(path, '/');
	struct entry n = {0};

	n.path = slash ? ep_asprintf(err, "%.*s/.wh.%s", (int)(slash - path), path, slash + 1)
		       : ep_asprintf(err, ".wh.%s", path);
	if (!n.path)
		return -1;
	n.type = EP_TAR_REG;
	n.mode = 0;
	n.mtime = c->clamp;
	return tree_put(c->t, &n, err);
}

/* An opaque directory hides everything below it in the lower layers: its
 * marker entry, before what the directory holds. */
static int upper_opaque(struct upper_ctx *c, const char *host, const char *path,
			struct ep_error *err)
{
	struct entry o = {0};
	char v[4];

	if (lgetxattr(host, "trusted.overlay.opaque", v, sizeof(v)) != 1 || v[0] != 'y')
		return 0;
	o.path = ep_asprintf(err, "%s/.wh..wh..opq", path);
	if (!o.path)
		return -1;
	o.type = EP_TAR_REG;
	o.mtime = c->clamp;
	return tree_put(c->t, &o, err);
}

/* One entry of the upper dir (walk_fn): what the profile drops is skipped. */
static int upper_one(void *ctx, int dfd, const char *name, const char *host, const struct stat *st,
		     const char *path, struct ep_error *err)
{
	struct upper_ctx *c = ctx;
	struct entry n = {0};

	if (upper_dropped(path, S_ISDIR(st->st_mode)) || S_ISSOCK(st->st_mode))
		return 1;
	/* overlayfs: a 0/0 character device is a deletion */
	if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
		return upper_whiteout(c, path, err);
	n.mode = (uint32_t)st->st_mode & 07777;
	n.uid = (uint64_t)st->st_uid;
	n.gid = (uint64_t)st->st_gid;
	n.mtime = (int64_t)st->st_mtim.tv_sec < c->clamp ? (int64_t)st->st_mtim.tv_sec : c->clamp;
	if (S_ISDIR(st->st_mode)) {
		n.type = EP_TAR_DIR;
	} else if (S_ISLNK(st->st_mode)) {
		if (host_symlink(&n, dfd, name, host, st, err) < 0)
			return -1;
		n.mode = 0777;
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		n.type = S_ISCHR(st->st_mode) ? EP_TAR_CHR : EP_TAR_BLK;
		n.devmajor = major(st->st_rdev);
		n.devminor = minor(st->st_rdev);
	} else if (S_ISFIFO(st->st_mode)) {
		n.type = EP_TAR_FIFO;
	} else if (host_regular(&c->seen, &n, host, st, path, err) < 0) {
		entry_release(&n);
		return -1;
	}
	if (n.type != EP_TAR_SYMLINK && n.type != EP_TAR_HARDLINK &&
	    upper_xattrs(&n, host, err) < 0) {
		entry_release(&n);
		return -1;
	}
	if (!(n.path = ep_strdup(path, err))) {
		entry_release(&n);
		return -1;
	}
	if (tree_put(c->t, &n, err) < 0)
		return -1;
	return S_ISDIR(st->st_mode) ? upper_opaque(c, host, path, err) : 0;
}

int ep_tree_add_upper(struct ep_tree *t, const char *upper, int64_t clamp_mtime,
		      struct ep_error *err)
{
	struct upper_ctx c = {.t = t, .clamp = clamp_mtime};
	cleanup_close int fd = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", upper);
	rc = walk_dir(fd, upper, "", 0, upper_one, &c, err);
	inode_set_release(&c.seen);
	return rc;
}

/* ---- archives ------------------------------------------------------------ */

struct hashing_reader {
	int fd;
	struct ep_sha256 sha;
	char *buf;
	int errnum;
};

static la_ssize_t hr_read(struct archive *a, void *cd, const void **out)
{
	struct hashing_reader *r = cd;
	ssize_t n;

	(void)a;
	do
		n = read(r->fd, r->buf, CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r->errnum = errno;
		archive_set_error(a, errno, "read");
		return -1;
	}
	ep_sha256_update(&r->sha, r->buf, (size_t)n);
	*out = r->buf;
	return n;
}

static int spool_open(struct ep_tree *t, struct ep_error *err)
{
	char *tmpl;

	if (t->spool_fd >= 0)
		return 0;
	t->spool_fd = open(t->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (t->spool_fd >= 0)
		return 0;
	/* filesystems without O_TMPFILE: a named file, unlinked at once */
	tmpl = ep_asprintf(err, "%s/.envpin-spool-XXXXXX", t->spool_dir);
	if (!tmpl)
		return -1;
	t->spool_fd = mkostemp(tmpl, O_CLOEXEC);
	if (t->spool_fd < 0) {
		int e = errno;

		free(tmpl);
		return ep_error_errno(err, EP_EENV, e, "create spool file in '%s'", t->spool_dir);
	}
	unlink(tmpl);
	free(tmpl);
	return 0;
}

/* Spools the current entry's data; it must be exactly `size` bytes. */
static int spool_data(struct ep_tree *t, struct archive *a, char *buf, const char *name,
		      uint64_t size, uint64_t *off, struct ep_error *err)
{
	uint64_t got = 0;

	if (spool_open(t, err) < 0)
		return -1;
	*off = t->spool_len;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, CHUNK);

		if (n < 0)
			return ep_error_set(err, EP_EINVAL, "entry '%s': %s", name,
					    archive_error_string(a));
		if (n == 0)
			break;
		if (got + (uint64_t)n > size)
			return ep_error_set(err, EP_EINVAL, "entry '%s': more data than its size",
					    name);
		if (pwrite(t->spool_fd, buf, (size_t)n, (off_t)(t->spool_len + got)) != n)
			return ep_error_errno(err, EP_EENV, errno ? errno : EIO,
					      "spool entry '%s' to '%s'", name, t->spool_dir);
		got += (uint64_t)n;
	}
	if (got != size)
		return ep_error_set(err, EP_EINVAL,
				    "entry '%s': %" PRIu64 " data bytes, header says %" PRIu64, name,
				    got, size);
	t->spool_len += size;
	return 0;
}

/* The xattr allowlist of profile 1: file capabilities only. */
static bool xattr_allowed(const char *name)
{
	return strcmp(name, "security.capability") == 0;
}

static int take_xattrs(struct entry *n, struct archive_entry *ae, const char *name,
		       struct ep_error *err)
{
	const char *xn;
	const void *xv;
	size_t xl;

	if (archive_entry_xattr_reset(ae) == 0)
		return 0;
	while (archive_entry_xattr_next(ae, &xn, &xv, &xl) == ARCHIVE_OK) {
		struct xattr *nx;

		if (!xn || !xattr_allowed(xn))
			continue;
		if (xl > MAX_XATTR_BYTES)
			return ep_error_set(err, EP_EINVAL, "entry '%s': xattr '%s' is too large",
					    name, xn);
		for (size_t i = 0; i < n->n_xattrs; i++)
			if (!strcmp(n->xattrs[i].name, xn))
				return ep_error_set(err, EP_EINVAL,
						    "entry '%s': xattr '%s' given twice", name, xn);
		nx = ep_realloc(n->xattrs, (n->n_xattrs + 1) * sizeof(*nx), err);
		if (!nx)
			return -1;
		n->xattrs = nx;
		nx = &n->xattrs[n->n_xattrs];
		nx->name = ep_strdup(xn, err);
		nx->value = ep_malloc(xl, err);
		nx->len = xl;
		n->n_xattrs++;
		if (!nx->name || !nx->value)
			return -1;
		memcpy(nx->value, xv, xl);
	}
	return 0;
}

static int cmp_xattr(const void *a, const void *b)
{
	return strcmp(((const struct xattr *)a)->name, ((const struct xattr *)b)->name);
}

static int add_archive_entry(struct ep_tree *t, struct archive *a, struct archive_entry *ae,
			     const char *dpath, int64_t clamp, uint32_t arch, uint64_t index,
			     char *buf, struct ep_error *err)
{
	const char *name = archive_entry_pathname(ae);
	const char *hl = archive_entry_hardlink(ae);
	cleanup_free char *rel = NULL;
	struct entry n = {0};
	mode_t ft = archive_entry_filetype(ae);

	if (!name)
		return ep_error_set(err, EP_EINVAL, "entry %" PRIu64 " has no name", index);
	rel = norm_path(name, "entry", err);
	if (!rel)
		return -1;
	if (!*rel) {
		/* the root itself ("./"): the runtime owns "/", not a layer */
		if (ft == AE_IFDIR && !hl)
			return 0;
		return ep_error_set(err, EP_EINVAL, "entry '%s' is the root but not a directory",
				    name);
	}
	n.path = join_rel(dpath, rel, err);
	if (!n.path)
		return -1;
	n.mode = (uint32_t)archive_entry_mode(ae) & 07777;
	if (archive_entry_uid(ae) < 0 || archive_entry_gid(ae) < 0) {
		entry_release(&n);
		return ep_error_set(err, EP_EINVAL, "entry '%s' has a negative owner", name);
	}
	n.uid = (uint64_t)archive_entry_uid(ae);
	n.gid = (uint64_t)archive_entry_gid(ae);
	n.mtime = archive_entry_mtime_is_set(ae) ? (int64_t)archive_entry_mtime(ae) : 0;
	if (n.mtime > clamp)
		n.mtime = clamp;

	if (hl) {
		cleanup_free char *hrel = norm_path(hl, "hardlink target", err);

		if (!hrel || !*hrel) {
			entry_release(&n);
			if (hrel)
				ep_error_set(err, EP_EINVAL, "hardlink target '%s' is the root", hl);
			return ep_error_wrap(err, "entry '%s'", name);
		}
		n.type = EP_TAR_HARDLINK;
		n.linkname = join_rel(dpath, hrel, err);
		if (!n.linkname) {
			entry_release(&n);
			return -1;
		}
		return tree_put(t, &n, err);
	}
	switch (ft) {
	case AE_IFREG:
		n.type = EP_TAR_REG;
		break;
	case AE_IFDIR:
		n.type = EP_TAR_DIR;
		break;
	case AE_IFLNK: {
		const char *ln = archive_entry_symlink(ae);

		n.type = EP_TAR_SYMLINK;
		if (!ln || !*ln || strlen(ln) > MAX_PATH_BYTES) {
			entry_release(&n);
			return ep_error_set(err, EP_EINVAL, "symlink entry '%s' has a bad target",
					    name);
		}
		/* symlink targets are kept verbatim: containment is the
		 * unpacker's job, when a link is followed */
		n.linkname = ep_strdup(ln, err);
		if (!n.linkname) {
			entry_release(&n);
			return -1;
		}
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
		n.type = ft == AE_IFCHR ? EP_TAR_CHR : EP_TAR_BLK;
		n.devmajor = (uint32_t)archive_entry_rdevmajor(ae);
		n.devminor = (uint32_t)archive_entry_rdevminor(ae);
		break;
	case AE_IFIFO:
		n.type = EP_TAR_FIFO;
		break;
	default:
		entry_release(&n);
		return ep_error_set(err, EP_EINVAL, "entry '%s' is a %s, which a layer cannot hold",
				    name, ft == AE_IFSOCK ? "socket" : "file of unknown type");
	}
	if (take_xattrs(&n, ae, name, err) < 0) {
		entry_release(&n);
		return -1;
	}
	if (n.n_xattrs > 1)
		qsort(n.xattrs, n.n_xattrs, sizeof(*n.xattrs), cmp_xattr);
	if (n.type == EP_TAR_REG) {
		int64_t sz = archive_entry_size(ae);

		if (sz < 0) {
			entry_release(&n);
			return ep_error_set(err, EP_EINVAL, "entry '%s' has no size", name);
		}
		n.size = (uint64_t)sz;
		n.src = SRC_SPOOL;
		n.archive = arch;
		n.archive_index = index;
		if (spool_data(t, a, buf, name, n.size, &n.spool_off, err) < 0) {
			entry_release(&n);
			return -1;
		}
	}
	return tree_put(t, &n, err);
}

int ep_tree_add_archive(struct ep_tree *t, const char *archive, const char *dest,
			int64_t clamp_mtime, struct ep_error *err)
{
	struct hashing_reader r = {.fd = -1};
	cleanup_free char *dpath = NULL;
	struct archive *a = NULL;
	struct archive_entry *ae;
	struct archive_src *as;
	uint64_t index = 0;
	struct stat st;
	int rc = -1, ar;

	dpath = norm_path(dest, "destination", err);
	if (!dpath)
		return ep_error_wrap(err, "archive '%s'", archive);
	as = ep_realloc(t->archives, (t->n_archives + 1) * sizeof(*as), err);
	if (!as)
		return -1;
	t->archives = as;
	as = &t->archives[t->n_archives];
	memset(as, 0, sizeof(*as));

	r.fd = open(archive, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open archive '%s'", archive);
	if (fstat(r.fd, &st) < 0) {
		ep_error_errno(err, EP_EENV, errno, "stat archive '%s'", archive);
		goto out;
	}
	as->dev = (uint64_t)st.st_dev;
	as->ino = (uint64_t)st.st_ino;
	as->size = (uint64_t)st.st_size;
	as->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	as->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	/* buf holds both the raw reads and (after them) the data chunks */
	r.buf = ep_malloc(2 * CHUNK, err);
	if (!r.buf || ep_sha256_init(&r.sha, err) < 0)
		goto out;
	if (*dpath && add_parents(t, dpath, clamp_mtime, err) < 0)
		goto out;
	if (*dpath) {
		struct entry *d = lookup(t, dpath);

		if (!d) {
			struct entry n = {.type = EP_TAR_DIR, .mode = 0755, .mtime = clamp_mtime};

			n.path = ep_strdup(dpath, err);
			if (!n.path || tree_put(t, &n, err) < 0)
				goto out;
		} else if (d->type != EP_TAR_DIR) {
			ep_error_set(err, EP_EINVAL, "destination '%s' is not a directory", dest);
			goto out;
		}
	}

	a = archive_read_new();
	if (!a) {
		ep_error_oom(err);
		goto out;
	}
	if (archive_read_support_filter_all(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_support_format_gnutar(a) != ARCHIVE_OK) {
		ep_error_set(err, EP_EENV, "libarchive setup: %s", archive_error_string(a));
		goto out;
	}
	if (archive_read_open(a, &r, NULL, hr_read, NULL) != ARCHIVE_OK) {
		ep_error_set(err, EP_EINVAL, "%s", archive_error_string(a));
		goto out;
	}
	while ((ar = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
		if (ar < ARCHIVE_WARN) {
			ep_error_set(err, EP_EINVAL, "after entry %" PRIu64 ": %s", index,
				     archive_error_string(a));
			goto out;
		}
		if (add_archive_entry(t, a, ae, dpath, clamp_mtime, (uint32_t)t->n_archives, index,
				      r.buf + CHUNK, err) < 0)
			goto out;
		index++;
	}
	/* hash what follows the end marker too: the digest is the file's */
	for (;;) {
		const void *p;
		la_ssize_t n = hr_read(a, &r, &p);

		if (n < 0) {
			ep_error_errno(err, EP_EENV, r.errnum, "read");
			goto out;
		}
		if (n == 0)
			break;
	}
	ep_sha256_final(&r.sha, as->sha256);
	t->n_archives++;
	rc = 0;
out:
	if (a)
		archive_read_free(a);
	ep_sha256_release(&r.sha);
	free(r.buf);
	close(r.fd);
	if (rc < 0)
		ep_error_wrap(err, "archive '%s'", archive);
	return rc;
}

/* ---- the normalized view ------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
	return strcmp((*(struct entry *const *)a)->path, (*(struct entry *const *)b)->path);
}

/* Returns the live entries sorted by path bytes, with hardlink groups
 * resolved: entry->root is the regular file holding a group's data and
 * root->holder its first member in sorted order, which is written as the
 * regular file; the others become hardlinks to it.  Caller frees. */
static struct entry **finalize(struct ep_tree *t, struct ep_error *err)
{
	cleanup_free struct entry **v = ep_malloc((t->live + 1) * sizeof(*v), err);
	size_t k = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		if (t->e[i].dead)
			continue;
		t->e[i].root = t->e[i].holder = NULL;
		v[k++] = &t->e[i];
	}
	qsort(v, k, sizeof(*v), cmp_entry);
	for (size_t i = 0; i < k; i++) {
		struct entry *e = v[i], *r = e;
		int hops = 0;

		while (r && r->type == EP_TAR_HARDLINK && hops++ < MAX_LINK_HOPS)
			r = lookup(t, r->linkname);
		if (e->type == EP_TAR_HARDLINK && (!r || r->type != EP_TAR_REG)) {
			ep_error_set(err, EP_EINVAL,
				     "hardlink '%s' to '%s': the target is not a regular file of "
				     "this layer",
				     e->path, e->linkname);
			return NULL;
		}
		e->root = e->type == EP_TAR_HARDLINK || e->type == EP_TAR_REG ? r : NULL;
		if (e->root && !e->root->holder)
			e->root->holder = e;
	}
	v[k] = NULL;
	return steal_pointer(&v);
}

/* The header an entry is written with.  For a hardlink group member, the
 * metadata is the group's regular file's. */
static void make_header(const struct entry *e, struct ep_tar_header *h,
			struct ep_xattr *xa, size_t nxa)
{
	const struct entry *m = e->root ? e->root : e;
	bool holds = !e->root || e->root->holder == e;

	memset(h, 0, sizeof(*h));
	h->path = e->path;
	h->mode = m->mode;
	h->uid = m->uid;
	h->gid = m->gid;
	h->mtime = m->mtime;
	if (e->root) {
		h->type = holds ? EP_TAR_REG : EP_TAR_HARDLINK;
		h->size = holds ? m->size : 0;
		h->linkname = holds ? NULL : e->root->holder->path;
	} else {
		h->type = e->type;
		h->linkname = e->linkname;
		h->devmajor = e->devmajor;
		h->devminor = e->devminor;
	}
	if (holds) {
		for (size_t i = 0; i < m->n_xattrs && i < nxa; i++) {
			xa[i].name = m->xattrs[i].name;
			xa[i].value = m->xattrs[i].value;
			xa[i].len = m->xattrs[i].len;
		}
		h->xattrs = xa;
		h->n_xattrs = m->n_xattrs < nxa ? m->n_xattrs : nxa;
	}
}

/* ---- keys ---------------------------------------------------------------- */

static void key_u64(struct ep_sha256 *h, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	ep_sha256_update(h, b, 8);
}

static void key_bytes(struct ep_sha256 *h, const void *p, size_t len)
{
	key_u64(h, len);
	ep_sha256_update(h, p, len);
}

static void key_str(struct ep_sha256 *h, const char *s)
{
	if (!s)
		key_u64(h, UINT64_MAX);
	else
		key_bytes(h, s, strlen(s));
}

/* Opens a host file for reading its data, checking it is still the regular
 * file of the recorded size. */
static int open_host(const struct entry *e, struct ep_error *err)
{
	struct stat st;
	int fd = open(e->host, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", e->host);
	if (fstat(fd, &st) < 0) {
		int en = errno;

		close(fd);
		return ep_error_errno(err, EP_EENV, en, "stat '%s'", e->host);
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size) {
		close(fd);
		return ep_error_set(err, EP_EINVAL,
				    "'%s' changed since it was added (was a %" PRIu64
				    "-byte regular file)",
				    e->host, e->size);
	}
	return fd;
}

static int tree_key(struct ep_tree *t, bool content, ep_digest out, struct ep_error *err)
{
	cleanup_free struct entry **v = NULL;
	struct ep_sha256 h = {0};
	struct ep_xattr xa[16];

	v = finalize(t, err);
	if (!v)
		return -1;
	if (ep_sha256_init(&h, err) < 0)
		return -1;
	key_str(&h, content ? "envpin tree content key 1" : "envpin tree stat key 1");
	key_u64(&h, EP_PROFILE);
	for (size_t i = 0; v[i]; i++) {
		const struct entry *e = v[i];
		struct ep_tar_header th;

		/* the key covers the entry as it will be written */
		make_header(e, &th, xa, EP_ARRAY_SIZE(xa));
		key_str(&h, th.path);
		key_u64(&h, (uint64_t)th.type);
		key_u64(&h, th.mode);
		key_u64(&h, th.uid);
		key_u64(&h, th.gid);
		key_u64(&h, (uint64_t)th.mtime);
		key_u64(&h, th.size);
		key_str(&h, th.linkname);
		key_u64(&h, th.devmajor);
		key_u64(&h, th.devminor);
		key_u64(&h, th.n_xattrs);
		for (size_t x = 0; x < th.n_xattrs; x++) {
			key_str(&h, th.xattrs[x].name);
			key_bytes(&h, th.xattrs[x].value, th.xattrs[x].len);
		}
		if (th.type != EP_TAR_REG)
			continue;
		const struct entry *d = e->root;

		if (d->src == SRC_HOST && !content) {
			key_u64(&h, d->dev);
			key_u64(&h, d->ino);
			key_u64(&h, (uint64_t)d->mtime_ns);
			key_u64(&h, (uint64_t)d->ctime_ns);
		} else if (d->src == SRC_HOST) {
			ep_digest fd_sha;
			uint64_t sz;
			int fd = open_host(d, err);

			if (fd < 0 || ep_sha256_fd(fd, fd_sha, &sz, err) < 0) {
				if (fd >= 0)
					close(fd);
				ep_sha256_release(&h);
				return -1;
			}
			close(fd);
			if (sz != d->size) {
				ep_sha256_release(&h);
				return ep_error_set(err, EP_EINVAL, "'%s' changed while read",
						    d->host);
			}
			key_str(&h, fd_sha);
		} else {
			const struct archive_src *as = &t->archives[d->archive];

			if (content) {
				key_str(&h, as->sha256);
			} else {
				key_u64(&h, as->dev);
				key_u64(&h, as->ino);
				key_u64(&h, as->size);
				key_u64(&h, (uint64_t)as->mtime_ns);
				key_u64(&h, (uint64_t)as->ctime_ns);
			}
			key_u64(&h, d->archive_index);
		}
	}
	ep_sha256_final(&h, out);
	return 0;
}

int ep_tree_stat_key(struct ep_tree *t, ep_digest out, struct ep_error *err)
{
	return tree_key(t, false, out, err);
}

int ep_tree_content_key(struct ep_tree *t, ep_digest out, struct ep_error *err)
{
	return tree_key(t, true, out, err);
}

/* ---- writing ------------------------------------------------------------- */

static int write_data(struct ep_tree *t, struct ep_tar_writer *w, const struct entry *d,
		      char *buf, struct ep_error *err)
{
	cleanup_close int fd = -1;
	uint64_t done = 0;

	if (d->src == SRC_HOST) {
		fd = open_host(d, err);
		if (fd < 0)
			return -1;
	}
	while (done < d->size) {
		size_t want = d->size - done < CHUNK ? (size_t)(d->size - done) : CHUNK;
		ssize_t n;

		if (d->src == SRC_HOST)
			n = read(fd, buf, want);
		else
			n = pread(t->spool_fd, buf, want, (off_t)(d->spool_off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ep_error_errno(err, EP_EENV, errno, "read '%s'",
					      d->src == SRC_HOST ? d->host : "spool");
		if (n == 0)
			return ep_error_set(err, EP_EINVAL, "'%s' shrank while read",
					    d->src == SRC_HOST ? d->host : d->path);
		if (ep_tar_write_data(w, buf, (size_t)n, err) < 0)
			return -1;
		done += (uint64_t)n;
	}
	return 0;
}

int ep_tree_write(struct ep_tree *t, struct ep_sink *out, struct ep_error *err)
{
	cleanup_free struct entry **v = NULL;
	cleanup_free char *buf = NULL;
	struct ep_tar_writer w;
	struct ep_xattr xa[16];

	v = finalize(t, err);
	if (!v)
		return ep_error_wrap(err, "write layer");
	buf = ep_malloc(CHUNK, err);
	if (!buf)
		return -1;
	ep_tar_writer_init(&w, out);
	for (size_t i = 0; v[i]; i++) {
		struct ep_tar_header h;

		make_header(v[i], &h, xa, EP_ARRAY_SIZE(xa));
		if (ep_tar_write_header(&w, &h, err) < 0)
			return ep_error_wrap(err, "write layer");
		if (h.type == EP_TAR_REG && write_data(t, &w, v[i]->root, buf, err) < 0)
			return ep_error_wrap(err, "write layer: '%s'", v[i]->path);
	}
	if (ep_tar_finish(&w, err) < 0 || ep_sink_finish(out, err) < 0)
		return ep_error_wrap(err, "write layer");
	return 0;
}

/* ---- what a layer does to paths (copy destinations, lib/build.c) -------- */

static int links_set(json_t *obj, const char *key, json_t *v, struct ep_error *err)
{
	if (json_object_set_new(obj, key, v) < 0)
		return ep_error_oom(err);
	return 0;
}

json_t *ep_archive_links(const char *archive, struct ep_error *err)
{
	struct hashing_reader r = {.fd = -1};
	struct archive *a = NULL;
	struct archive_entry *ae;
	json_t *out = json_pack("{s:{}, s:{}, s:{}, s:{}}", "links", "dirs", "gone", "opaque");
	json_t *ret = NULL;
	int ar;

	if (!out) {
		ep_error_oom(err);
		return NULL;
	}
	r.fd = open(archive, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0) {
		ep_error_errno(err, EP_EENV, errno, "open archive '%s'", archive);
		goto out;
	}
	if (ep_sha256_init(&r.sha, err) < 0)
		goto out;
	r.buf = ep_malloc(CHUNK, err);
	if (!r.buf) {
		ep_sha256_release(&r.sha);
		goto out;
	}
	a = archive_read_new();
	if (!a) {
		ep_error_oom(err);
		goto out;
	}
	if (archive_read_support_filter_all(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_support_format_gnutar(a) != ARCHIVE_OK ||
	    archive_read_open(a, &r, NULL, hr_read, NULL) != ARCHIVE_OK) {
		ep_error_set(err, EP_EINVAL, "'%s': %s", archive, archive_error_string(a));
		goto out;
	}
	while ((ar = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
		cleanup_free char *p = NULL;
		const char *name, *base;

		if (ar < ARCHIVE_WARN) {
			ep_error_set(err, EP_EINVAL, "'%s': %s", archive, archive_error_string(a));
			goto out;
		}
		name = archive_entry_pathname(ae);
		if (!name || !(p = norm_path(name, "entry", err)))
			goto out;
		if (!*p)
			continue;
		base = strrchr(p, '/');
		base = base ? base + 1 : p;
		if (!strcmp(base, ".wh..wh..opq")) {
			size_t dl = (size_t)(base - p);

			p[dl ? dl - 1 : 0] = '\0';
			if (links_set(json_object_get(out, "opaque"), p, json_true(), err) < 0)
				goto out;
		} else if (!strncmp(base, ".wh.", 4)) {
			memmove((char *)base, base + 4, strlen(base + 4) + 1);
			if (links_set(json_object_get(out, "gone"), p, json_true(), err) < 0)
				goto out;
		} else if (archive_entry_filetype(ae) == AE_IFLNK) {
			const char *tg = archive_entry_symlink(ae);

			if (links_set(json_object_get(out, "links"), p, json_string(tg ? tg : ""),
				      err) < 0)
				goto out;
		} else if (archive_entry_filetype(ae) == AE_IFDIR) {
			if (links_set(json_object_get(out, "dirs"), p, json_true(), err) < 0)
				goto out;
		}
		/* regular files are not listed: a path to resolve passes only
		 * through directories and links (a file there is an error later) */
	}
	ret = out;
	out = NULL;
out:
	if (a)
		archive_read_free(a);
	if (r.fd >= 0)
		close(r.fd);
	if (r.buf)
		ep_sha256_release(&r.sha);
	free(r.buf);
	json_decref(out);
	if (!ret)
		ep_error_wrap(err, "list layer '%s'", archive);
	return ret;
}
