/* lib/store.c - the envpin store (see lib/store.h and docs/store.md).
 *
 * Invariants the code below keeps:
 *  - blobs/sha256/HEX only ever appears by rename() of a complete, fsynced
 *    file from a txn dir on the same filesystem;
 *  - index.json is only replaced (atomically) under ROOT/index.lock, after
 *    re-reading it, so concurrent commits never lose each other's images;
 *  - every open store holds ROOT/lock shared, gc holds it exclusive, so gc
 *    never sees a half-done transaction and never removes a blob that a
 *    live txn decided it could reuse. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "util.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define REF_NAME "org.opencontainers.image.ref.name"

#define CACHE_KEY_MAX 200
#define TAG_MAX 255
/* How long an exclusive open (gc) waits for users of the store to finish. */
#define BUSY_WAIT_MS 2000
/* A new-* txn dir without its .lock is being created right now, unless it
 * has been like that for this long (its creator died between two calls). */
#define NEW_DIR_STALE_S 3600
/* Beyond this many files in one commit, one syncfs() replaces a fsync per
 * file: 25,000 layers were 75,000 fsyncs (6.5 minutes) otherwise. */
#define BATCH_SYNC_MIN 64
/* index-of-index nesting that gc follows. */
#define GC_MAX_DEPTH 8

char *ep_store_default_root(struct ep_error *err)
{
	const char *e = getenv("ENVPIN_STORE");

	if (e && *e)
		return ep_strdup(e, err);
	if (geteuid() == 0)
		return ep_strdup("/var/lib/envpin", err);
	e = getenv("XDG_DATA_HOME");
	if (e && *e == '/')
		return ep_path_join(e, "envpin", err);
	e = getenv("HOME");
	if (!e || *e != '/') {
		ep_error_set(err, EP_EENV,
			     "cannot find a store: set ENVPIN_STORE or HOME (or pass --store)");
		return NULL;
	}
	return ep_asprintf(err, "%s/.local/share/envpin", e);
}

static int flock_retry(int fd, int op)
{
	int r;

	do
		r = flock(fd, op);
	while (r < 0 && errno == EINTR);
	return r;
}

static int mkdir_ok(const char *path, struct ep_error *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return ep_error_errno(err, EP_EENV, errno, "mkdir '%s'", path);
	return 0;
}

static int is_regular(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Creates a store file that is missing; never rewrites an existing one. */
static int create_missing(const char *root, const char *name, const char *text,
			  struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(root, name, err);

	if (!path)
		return -1;
	if (is_regular(path))
		return 0;
	return ep_write_file_atomic(path, text, strlen(text), 0644, err);
}

static int open_lockfile(const char *root, const char *name, struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(root, name, err);
	int fd;

	if (!path)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	/* A store we may only read (another user's, a read-only mount) can
	 * still be locked through a read-only descriptor. */
	if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "cannot open lock '%s'", path);
	return fd;
}

static int lock_store(int fd, const char *root, int exclusive, struct ep_error *err)
{
	if (!exclusive) {
		if (flock_retry(fd, LOCK_SH) < 0)
			return ep_error_errno(err, EP_EENV, errno, "lock store '%s'", root);
		return 0;
	}
	for (int waited = 0;; waited += 20) {
		struct timespec ts = {0, 20 * 1000 * 1000};

		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return ep_error_errno(err, EP_EENV, errno, "lock store '%s'", root);
		if (waited >= BUSY_WAIT_MS)
			return ep_error_set(
			    err, EP_EENV, "store '%s' is busy: another envpin process is using it",
			    root);
		nanosleep(&ts, NULL);
	}
}

static uint64_t tree_bytes_total;

static int tree_bytes_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)p;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(sb->st_mode))
		tree_bytes_total += (uint64_t)sb->st_size;
	return 0;
}

/* Bytes in regular files under path (best effort; not thread-safe, which is
 * fine for gc, the only caller that asks). */
static uint64_t tree_bytes(const char *path)
{
	tree_bytes_total = 0;
	nftw(path, tree_bytes_cb, 16, FTW_PHYS);
	return tree_bytes_total;
}

/* 1 when the flock on path can be taken (its holder, if any, is gone);
 * 0 when a live process holds it; -1 when path does not exist. */
static int lock_is_free(const char *path)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOENT ? -1 : 0;
	return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

/* A verify --rebuild's private store, tmp/rebuild-*, is alive while its
 * ROOT/lock is held (ep_store_open holds it shared for the store's life).
 * Between mkdtemp and that lock the dir is young and has no oci-layout. */
static int rebuild_dir_dead(const char *dir, const struct stat *st)
{
	cleanup_free char *lock = ep_path_join(dir, "lock", NULL);
	cleanup_free char *marker = ep_path_join(dir, "oci-layout", NULL);
	int young = time(NULL) - st->st_mtime < NEW_DIR_STALE_S;
	int r;

	if (!lock || !marker)
		return 0;
	r = lock_is_free(lock);
	if (r == 0)
		return 0;
	return !young || (r == 1 && is_regular(marker));
}

/* A scratch dir (tmp/rebuild-X, tmp/scratch-X) made by ep_store_scratch_dir
 * lives while the flock on its sibling X.lock is held: that lock is taken
 * before the dir exists and dropped after it is gone.  Without the sibling
 * (a store written by an older envpin) the dir's own store lock decides. */
static int scratch_dir_dead(const char *dir, const struct stat *st)
{
	cleanup_free char *lock = ep_asprintf(NULL, "%s.lock", dir);
	int r = lock ? lock_is_free(lock) : 0;

	if (r >= 0)
		return r;
	return rebuild_dir_dead(dir, st);
}

/* tmp/X.lock of a scratch dir: free means its owner is gone; removes the
 * dir (if any) then the lock.  Returns 1 when path was such a lock file. */
static int scratch_lock_dead(const char *path, uint64_t *freed)
{
	size_t n = strlen(path);
	cleanup_free char *dir = NULL;
	cleanup_close int fd = -1;
	struct stat st;

	if (n < 5 || strcmp(path + n - 5, ".lock"))
		return 0;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
		return 1; /* alive */
	dir = strndup(path, n - 5);
	if (dir && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (freed)
			*freed += tree_bytes(dir);
		ep_rm_rf(dir, NULL);
	}
	unlink(path);
	return 1;
}

char *ep_store_scratch_dir(struct ep_store *s, const char *prefix, int *lock_fd,
			   struct ep_error *err)
{
	for (int tries = 0; tries < 100; tries++) {
		cleanup_free char *lock =
		    ep_asprintf(err, "%s/tmp/%s-XXXXXX.lock", s->root, prefix);
		char *dir;
		int fd;

		if (!lock)
			return NULL;
		fd = mkostemps(lock, 5, O_CLOEXEC);
		if (fd < 0) {
			ep_error_errno(err, EP_EENV, errno, "create '%s'", lock);
			return NULL;
		}
		if (flock_retry(fd, LOCK_EX) < 0) {
			ep_error_errno(err, EP_EENV, errno, "lock '%s'", lock);
			unlink(lock);
			close(fd);
			return NULL;
		}
		dir = strndup(lock, strlen(lock) - 5);
		if (!dir) {
			unlink(lock);
			close(fd);
			ep_error_oom(err);
			return NULL;
		}
		if (access(lock, F_OK) == 0 && mkdir(dir, 0700) == 0) {
			*lock_fd = fd;
			return dir;
		}
		/* a cleaner took the lock file for a dead one before our flock,
		 * or the name is taken: try another */
		ep_rm_rf(dir, NULL);
		free(dir);
		unlink(lock);
		close(fd);
	}
	ep_error_set(err, EP_EENV, "cannot create a scratch dir in '%s/tmp'", s->root);
	return NULL;
}

void ep_store_scratch_release(char *dir, int lock_fd)
{
	cleanup_free char *lock = NULL;

	if (!dir)
		return;
	lock = ep_asprintf(NULL, "%s.lock", dir);
	ep_rm_rf(dir, NULL);
	if (lock)
		unlink(lock);
	if (lock_fd >= 0)
		close(lock_fd);
	free(dir);
}

/* tmp/rootfs-HEX-*: an unpack of layer HEX, made while rootfs/HEX.lock is
 * held (lib/unpack.c); a lock nobody holds means its unpacker is gone. */
static int rootfs_dir_dead(const char *root, const char *name)
{
	char hex[EP_HEX_LEN + 1];
	cleanup_free char *lock = NULL;

	if (strlen(name) < 7 + EP_HEX_LEN + 1 || name[7 + EP_HEX_LEN] != '-')
		return 0;
	memcpy(hex, name + 7, EP_HEX_LEN);
	hex[EP_HEX_LEN] = '\0';
	if (!ep_is_hex64(hex))
		return 0;
	lock = ep_asprintf(NULL, "%s/rootfs/%s.lock", root, hex);
	return lock && lock_is_free(lock) != 0;
}

/* Removes what killed processes left in tmp/: txn dirs, verify --rebuild
 * stores and partial unpacks.  Each kind has a flock that its live owner
 * holds, so a lock we can take means its owner is dead.  Best effort: a
 * failure here must not stop the store from opening. */
static void clean_tmp(const char *root, uint64_t *freed)
{
	cleanup_free char *tmp = ep_path_join(root, "tmp", NULL);
	DIR *d;
	struct dirent *de;

	if (!tmp || !(d = opendir(tmp)))
		return;
	while ((de = readdir(d))) {
		int is_new = !strncmp(de->d_name, "new-", 4);
		int scratch =
		    !strncmp(de->d_name, "rebuild-", 8) || !strncmp(de->d_name, "scratch-", 8);
		cleanup_free char *dir = NULL;
		cleanup_free char *lock = NULL;
		cleanup_close int fd = -1;
		struct stat st;

		dir = ep_path_join(tmp, de->d_name, NULL);
		if (!dir)
			continue;
		if (scratch && scratch_lock_dead(dir, freed))
			continue;
		if (scratch || !strncmp(de->d_name, "rootfs-", 7)) {
			if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
			int dead = scratch ? scratch_dir_dead(dir, &st)
					   : rootfs_dir_dead(root, de->d_name);

			if (!dead)
				continue;
			if (freed)
				*freed += tree_bytes(dir);
			ep_rm_rf(dir, NULL);
			continue;
		}
		if (!is_new && strncmp(de->d_name, "txn-", 4))
			continue;
		lock = dir ? ep_path_join(dir, ".lock", NULL) : NULL;
		if (!lock || lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			if (flock(fd, LOCK_EX | LOCK_NB) < 0)
				continue; /* alive */
		} else if (errno != ENOENT) {
			continue;
		} else if (is_new && time(NULL) - st.st_mtime < NEW_DIR_STALE_S) {
			continue; /* its creator is between mkdtemp and open */
		}
		/* txn-* without .lock: finished, its owner is removing it. */
		if (freed)
			*freed += tree_bytes(dir);
		ep_rm_rf(dir, NULL);
	}
	closedir(d);
}

int ep_store_open(struct ep_store *s, const char *root, int flags, struct ep_error *err)
{
	static const char *const dirs[] = {"blobs", "blobs/sha256", "cache", "tmp"};
	cleanup_free char *r = ep_strdup(root, err);
	cleanup_free char *marker = NULL;
	cleanup_close int fd = -1;

	s->root = NULL;
	s->lock_fd = -1;
	s->flags = 0;
	if (!r)
		return -1;
	if (!*r)
		return ep_error_set(err, EP_EINVAL, "the store path is empty");
	marker = ep_path_join(r, "oci-layout", err);
	if (!marker)
		return -1;
	if (flags & EP_STORE_CREATE) {
		if (ep_mkdir_p(r, err) < 0)
			return ep_error_wrap(err, "create store '%s'", r);
		for (size_t i = 0; i < EP_ARRAY_SIZE(dirs); i++) {
			cleanup_free char *p = ep_path_join(r, dirs[i], err);

			if (!p || mkdir_ok(p, err) < 0)
				return ep_error_wrap(err, "create store '%s'", r);
		}
	} else if (!is_regular(marker)) {
		return ep_error_set(err, EP_EINVAL, "'%s' is not an envpin store (no oci-layout)",
				    r);
	}
	fd = open_lockfile(r, "lock", err);
	if (fd < 0 || lock_store(fd, r, flags & EP_STORE_EXCLUSIVE, err) < 0)
		return -1;
	if ((flags & EP_STORE_CREATE) && !is_regular(marker)) {
		/* Two processes may create the same store at once; index.lock
		 * keeps the second from replacing an index the first has
		 * already committed to.  oci-layout goes last: it marks a
		 * complete store. */
		static const char empty_index[] =
		    "{\"manifests\":[],\"mediaType\":\"" MT_OCI_INDEX "\",\"schemaVersion\":2}";
		cleanup_close int ifd = open_lockfile(r, "index.lock", err);

		if (ifd < 0)
			return -1;
		if (flock_retry(ifd, LOCK_EX) < 0)
			return ep_error_errno(err, EP_EENV, errno, "lock '%s/index.lock'", r);
		if (create_missing(r, "index.json", empty_index, err) < 0 ||
		    create_missing(r, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", err) < 0)
			return ep_error_wrap(err, "create store '%s'", r);
	}
	s->tmp_freed = 0;
	clean_tmp(r, &s->tmp_freed);
	s->root = steal_pointer(&r);
	s->lock_fd = ep_steal_fd(&fd);
	s->flags = flags;
	return 0;
}

void ep_store_release(struct ep_store *s)
{
	if (!s || !s->root)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->root);
	s->root = NULL;
	s->lock_fd = -1;
}

char *ep_store_blob_path(const struct ep_store *s, const char *digest, struct ep_error *err)
{
	/* The digest becomes a path: it must be checked before it is used. */
	if (ep_digest_check(digest, err) < 0)
		return NULL;
	return ep_asprintf(err, "%s/blobs/sha256/%s", s->root, ep_digest_hex(digest));
}

int ep_store_has_blob(const struct ep_store *s, const char *digest)
{
	cleanup_free char *p = ep_store_blob_path(s, digest, NULL);

	return p && is_regular(p);
}

/* ---- index.json ---- */

static json_t *empty_index(void)
{
	return json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX,
			 "manifests");
}

static int check_descriptor(json_t *d, const char *path, size_t i, struct ep_error *err)
{
	json_t *dg = json_object_get(d, "digest");
	json_t *sz = json_object_get(d, "size");
	json_t *ann = json_object_get(d, "annotations");
	json_t *ref = json_object_get(ann, REF_NAME);
	const char *bad = NULL;

	if (!json_is_object(d))
		bad = " is not an object";
	else if (!json_is_string(json_object_get(d, "mediaType")))
		bad = ".mediaType is not a string";
	else if (!json_is_string(dg) || ep_digest_check(json_string_value(dg), NULL) < 0)
		bad = ".digest is not a sha256 digest";
	else if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		bad = ".size is not a size";
	else if ((ann && !json_is_object(ann)) || (ref && !json_is_string(ref)))
		bad = ".annotations is invalid";
	if (bad)
		return ep_error_set(err, EP_EENV, "corrupt store index '%s': manifests[%zu]%s",
				    path, i, bad);
	return 0;
}

/* Loads and validates index.json.  missing_ok: a missing file is an empty
 * index (commit recreates it). */
static json_t *index_load(const struct ep_store *s, int missing_ok, struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(s->root, "index.json", err);
	cleanup_free char *buf = NULL;
	cleanup_free char *what = NULL;
	cleanup_json json_t *j = NULL;
	json_t *m, *d;
	size_t len, i;

	if (!path)
		return NULL;
	if (missing_ok && access(path, F_OK) < 0 && errno == ENOENT)
		return empty_index();
	buf = ep_read_file(path, EP_JSON_MAX_BYTES, &len, err);
	if (!buf) {
		ep_error_wrap(err, "store index");
		if (err)
			err->code = EP_EENV;
		return NULL;
	}
	what = ep_asprintf(err, "'%s'", path);
	if (!what)
		return NULL;
	j = ep_json_loadb(buf, len, EP_JSON_MAX_BYTES, what, err);
	if (!j) {
		ep_error_wrap(err, "corrupt store index");
		if (err)
			err->code = EP_EENV;
		return NULL;
	}
	if (!json_is_object(j) || !json_is_integer(json_object_get(j, "schemaVersion")) ||
	    json_integer_value(json_object_get(j, "schemaVersion")) != 2) {
		ep_error_set(err, EP_EENV, "corrupt store index '%s': schemaVersion is not 2",
			     path);
		return NULL;
	}
	m = json_object_get(j, "manifests");
	if (!json_is_array(m)) {
		ep_error_set(err, EP_EENV, "corrupt store index '%s': manifests is not an array",
			     path);
		return NULL;
	}
	json_array_foreach (m, i, d) {
		if (check_descriptor(d, path, i, err) < 0)
			return NULL;
	}
	return steal_pointer(&j);
}

json_t *ep_store_images(struct ep_store *s, struct ep_error *err)
{
	cleanup_json json_t *idx = index_load(s, 0, err);

	if (!idx)
		return NULL;
	return json_incref(json_object_get(idx, "manifests"));
}

static const char *desc_digest(json_t *d)
{
	return json_string_value(json_object_get(d, "digest"));
}

static const char *desc_tag(json_t *d)
{
	return json_string_value(json_object_get(json_object_get(d, "annotations"), REF_NAME));
}

static int is_hex_prefix(const char *s)
{
	size_t n = strlen(s);

	if (n < 4 || n > EP_HEX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int ep_store_resolve(struct ep_store *s, const char *image, ep_digest out, struct ep_error *err)
{
	cleanup_json json_t *idx = index_load(s, 0, err);
	json_t *m, *d;
	const char *hex, *found = NULL;
	char list[1024] = "";
	size_t i, nfound = 0;

	if (!idx)
		return -1;
	m = json_object_get(idx, "manifests");
	if (!strncmp(image, "sha256:", 7) && ep_is_hex64(image + 7)) {
		json_array_foreach (m, i, d) {
			if (!strcmp(desc_digest(d), image)) {
				memcpy(out, image, EP_DIGEST_LEN + 1);
				return 0;
			}
		}
		goto unknown;
	}
	/* A tag names an image explicitly, so it wins over a digest prefix
	 * that happens to look the same; "sha256:..." is never a tag here. */
	if (strncmp(image, "sha256:", 7)) {
		json_array_foreach (m, i, d) {
			const char *tag = desc_tag(d);

			if (tag && !strcmp(tag, image)) {
				memcpy(out, desc_digest(d), EP_DIGEST_LEN + 1);
				return 0;
			}
		}
	}
	hex = strncmp(image, "sha256:", 7) ? image : image + 7;
	if (!is_hex_prefix(hex))
		goto unknown;
	json_array_foreach (m, i, d) {
		const char *dg = desc_digest(d);
		size_t used = strlen(list);

		if (strncmp(dg + 7, hex, strlen(hex)))
			continue;
		if (found && !strcmp(found, dg))
			continue; /* the same image listed twice (two tags) */
		if (found && strstr(list, dg))
			continue;
		nfound++;
		if (!found)
			found = dg;
		if (used + EP_DIGEST_LEN + 3 < sizeof(list))
			snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", dg);
	}
	if (nfound == 1) {
		memcpy(out, found, EP_DIGEST_LEN + 1);
		return 0;
	}
	if (nfound > 1)
		return ep_error_set(err, EP_EINVAL,
				    "image '%s' is ambiguous: %zu images match (%s)", image, nfound,
				    list);
unknown:
	return ep_error_set(err, EP_EINVAL, "no image '%s' in the store (%s)", image, s->root);
}

/* ---- cache ---- */

static int cache_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > CACHE_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == ':' ||
		      c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

json_t *ep_store_cache_get(struct ep_store *s, const char *key)
{
	cleanup_free char *path = NULL;
	cleanup_free char *buf = NULL;
	size_t len;

	if (!cache_key_ok(key))
		return NULL;
	path = ep_asprintf(NULL, "%s/cache/%s.json", s->root, key);
	if (!path || !(buf = ep_read_file(path, EP_JSON_MAX_BYTES, &len, NULL)))
		return NULL;
	return ep_json_loadb(buf, len, EP_JSON_MAX_BYTES, "cache record", NULL);
}

/* ---- transactions ---- */

static void txn_clear(struct ep_txn *t)
{
	json_decref(t->blobs);
	json_decref(t->by_digest);
	t->by_digest = NULL;
	json_decref(t->cache);
	json_decref(t->images);
	free(t->dir);
	t->dir = NULL;
	t->blobs = t->cache = t->images = NULL;
	if (t->dir_lock_fd >= 0)
		close(t->dir_lock_fd);
	t->dir_lock_fd = -1;
	t->s = NULL;
}

int ep_txn_begin(struct ep_store *s, struct ep_txn *t, struct ep_error *err)
{
	cleanup_free char *tmp = ep_path_join(s->root, "tmp", err);

	memset(t, 0, sizeof(*t));
	t->dir_lock_fd = -1;
	if (!tmp || mkdir_ok(tmp, err) < 0)
		return -1;
	/* The dir is built as new-* and renamed to txn-* only once its lock
	 * is held, so a txn-* dir whose lock is free is always a dead one.  A
	 * cleaner may take a new-* dir's lock in the instant between our open
	 * and flock; the rename then fails and we try again. */
	for (int attempt = 0;; attempt++) {
		cleanup_free char *newdir = ep_asprintf(err, "%s/new-XXXXXX", tmp);
		cleanup_free char *lock = NULL;
		cleanup_free char *dir = NULL;
		cleanup_close int fd = -1;

		if (!newdir)
			return -1;
		if (!mkdtemp(newdir))
			return ep_error_errno(err, EP_EENV, errno, "create a txn dir in '%s'", tmp);
		lock = ep_path_join(newdir, ".lock", err);
		dir = ep_asprintf(err, "%s/txn-%s", tmp, strrchr(newdir, '/') + 5);
		if (!lock || !dir) {
			rmdir(newdir);
			return -1;
		}
		fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			int e = errno;

			rmdir(newdir);
			return ep_error_errno(err, EP_EENV, e, "create '%s'", lock);
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    (renameat2(AT_FDCWD, newdir, AT_FDCWD, dir, RENAME_NOREPLACE) == 0 ||
		     /* no RENAME_NOREPLACE: a live txn-* dir is never empty,
		      * so rename() cannot replace one */
		     (errno == EINVAL && rename(newdir, dir) == 0))) {
			t->s = s;
			t->dir = steal_pointer(&dir);
			t->dir_lock_fd = ep_steal_fd(&fd);
			break;
		}
		if (errno != EWOULDBLOCK && errno != ENOENT && errno != EEXIST &&
		    errno != ENOTEMPTY) {
			int e = errno;

			ep_rm_rf(newdir, NULL);
			return ep_error_errno(err, EP_EENV, e, "create txn dir '%s'", dir);
		}
		ep_rm_rf(newdir, NULL);
		if (attempt >= 5)
			return ep_error_set(err, EP_EENV, "cannot create a txn dir in '%s'", tmp);
	}
	t->blobs = json_array();
	t->by_digest = json_object();
	t->cache = json_object();
	t->images = json_array();
	if (!t->blobs || !t->by_digest || !t->cache || !t->images) {
		ep_txn_abort(t);
		return ep_error_oom(err);
	}
	return 0;
}

int ep_txn_tempfile(struct ep_txn *t, int *fd, char **path, struct ep_error *err)
{
	cleanup_free char *p = ep_asprintf(err, "%s/blob-%u", t->dir, t->seq++);
	int f;

	if (!p)
		return -1;
	f = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (f < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", p);
	*fd = f;
	*path = steal_pointer(&p);
	return 0;
}

static json_t *staged(struct ep_txn *t, const char *digest)
{
	return json_object_get(t->by_digest, digest);
}

/* Records tmp_path (a finished file in the txn dir) as `digest`,
 * or drops it if that blob is already staged or stored.  A stored blob
 * stays until commit: gc cannot run while we hold the store shared. */
static int stage(struct ep_txn *t, const char *tmp_path, const char *digest, struct ep_error *err)
{
	if (staged(t, digest) || ep_store_has_blob(t->s, digest)) {
		if (unlink(tmp_path) < 0 && errno != ENOENT)
			return ep_error_errno(err, EP_EENV, errno, "remove '%s'", tmp_path);
		return 0;
	}
	json_t *rec = json_pack("{s:s,s:s}", "tmp", tmp_path, "digest", digest);

	if (!rec || json_object_set(t->by_digest, digest, rec) < 0 ||
	    json_array_append_new(t->blobs, rec) < 0) {
		json_decref(rec);
		return ep_error_oom(err);
	}
	return 0;
}

int ep_txn_add_blob_file(struct ep_txn *t, const char *tmp_path, const char *digest,
			 struct ep_error *err)
{
	size_t n = strlen(t->dir);
	cleanup_close int fd = -1;

	if (ep_digest_check(digest, err) < 0)
		return -1;
	/* Commit renames it into blobs/: it must be on the store's filesystem
	 * and owned by this txn. */
	if (strncmp(tmp_path, t->dir, n) || tmp_path[n] != '/' || strchr(tmp_path + n + 1, '/'))
		return ep_error_set(err, EP_EINVAL, "'%s' is not a temp file of txn '%s'", tmp_path,
				    t->dir);
	fd = open(tmp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", tmp_path);
	/* many blobs: commit_blobs syncs them all at once */
	if (json_array_size(t->blobs) < BATCH_SYNC_MIN && fsync(fd) < 0)
		return ep_error_errno(err, EP_EENV, errno, "fsync '%s'", tmp_path);
	return stage(t, tmp_path, digest, err);
}

int ep_txn_add_blob_buf(struct ep_txn *t, const void *buf, size_t len, ep_digest out,
			struct ep_error *err)
{
	cleanup_free char *path = NULL;
	cleanup_close int fd = -1;

	if (ep_sha256_buf(buf, len, out, err) < 0)
		return -1;
	if (staged(t, out) || ep_store_has_blob(t->s, out))
		return 0;
	if (ep_txn_tempfile(t, &fd, &path, err) < 0)
		return -1;
	if (ep_write_all(fd, buf, len, err) < 0)
		return ep_error_wrap(err, "write '%s'", path);
	if (json_array_size(t->blobs) < BATCH_SYNC_MIN && fsync(fd) < 0)
		return ep_error_errno(err, EP_EENV, errno, "fsync '%s'", path);
	return stage(t, path, out, err);
}

char *ep_txn_blob_path(struct ep_txn *t, const char *digest, struct ep_error *err)
{
	json_t *b;

	if (ep_digest_check(digest, err) < 0)
		return NULL;
	b = staged(t, digest);
	if (b)
		return ep_strdup(json_string_value(json_object_get(b, "tmp")), err);
	if (ep_store_has_blob(t->s, digest))
		return ep_store_blob_path(t->s, digest, err);
	ep_error_set(err, EP_EINVAL, "blob '%s' is neither staged nor in the store", digest);
	return NULL;
}

int ep_txn_set_cache(struct ep_txn *t, const char *key, json_t *record, struct ep_error *err)
{
	if (!cache_key_ok(key))
		return ep_error_set(err, EP_EINVAL,
				    "invalid cache key '%s' (want 1 to %d of [a-z0-9_:.-])", key,
				    CACHE_KEY_MAX);
	if (!record)
		return ep_error_set(err, EP_EINVAL, "cache record '%s' is empty", key);
	if (json_object_set(t->cache, key, record) < 0)
		return ep_error_oom(err);
	return 0;
}

static int tag_ok(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > TAG_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tag[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (i > 0 && strchr("._:@/+-", c))))
			return 0;
	}
	return 1;
}

int ep_txn_add_image(struct ep_txn *t, const char *manifest_digest, uint64_t size, const char *tag,
		     struct ep_error *err)
{
	json_t *img;

	if (ep_digest_check(manifest_digest, err) < 0)
		return -1;
	if (tag && !tag_ok(tag))
		return ep_error_set(
		    err, EP_EINVAL,
		    "invalid tag '%s' (want a letter or digit, then [A-Za-z0-9._:@/+-])", tag);
	if (tag && !strncmp(tag, "sha256:", 7))
		return ep_error_set(err, EP_EINVAL, "invalid tag '%s': it looks like a digest",
				    tag);
	if (size > (uint64_t)INT64_MAX)
		return ep_error_set(err, EP_EINVAL, "manifest size %llu is too large",
				    (unsigned long long)size);
	img = json_pack("{s:s,s:I}", "digest", manifest_digest, "size", (json_int_t)size);
	if (!img || (tag && json_object_set_new(img, "tag", json_string(tag)) < 0) ||
	    json_array_append_new(t->images, img) < 0)
		return ep_error_oom(err);
	return 0;
}

/* The media type for an index entry, from the manifest itself (a pulled
 * Docker manifest stays one); also proves the blob is a JSON document. */
static int manifest_media_type(struct ep_store *s, const char *digest, uint64_t size, char *mt,
			       size_t mtsize, struct ep_error *err)
{
	cleanup_free char *path = ep_store_blob_path(s, digest, err);
	cleanup_free char *buf = NULL;
	cleanup_json json_t *j = NULL;
	const char *m;
	size_t len;

	if (!path)
		return -1;
	if (!is_regular(path))
		return ep_error_set(err, EP_EINVAL, "image manifest '%s' is not in the store",
				    digest);
	buf = ep_read_file(path, EP_JSON_MAX_BYTES, &len, err);
	if (!buf)
		return ep_error_wrap(err, "image manifest '%s'", digest);
	if (len != size)
		return ep_error_set(err, EP_EINVAL, "image manifest '%s' has %zu bytes, not %llu",
				    digest, len, (unsigned long long)size);
	j = ep_json_loadb(buf, len, EP_JSON_MAX_BYTES, "image manifest", err);
	if (!j || !json_is_object(j))
		return j ? ep_error_set(err, EP_EINVAL, "image manifest '%s' is not a JSON object",
					digest)
			 : ep_error_wrap(err, "%s", digest);
	m = json_string_value(json_object_get(j, "mediaType"));
	if (!m || !*m || strlen(m) >= mtsize || strchr(m, '\n'))
		m = json_object_get(j, "manifests") ? MT_OCI_INDEX : MT_OCI_MANIFEST;
	snprintf(mt, mtsize, "%s", m);
	return 0;
}

static int desc_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(desc_digest(x), desc_digest(y));
	const char *tx = desc_tag(x), *ty = desc_tag(y);

	return c ? c : strcmp(tx ? tx : "", ty ? ty : "");
}

static int sort_manifests(json_t *idx, struct ep_error *err)
{
	json_t *m = json_object_get(idx, "manifests");
	size_t n = json_array_size(m);
	cleanup_free json_t **v = ep_calloc(n, sizeof(*v), err);
	json_t *sorted = json_array();

	if (!v || !sorted) {
		json_decref(sorted);
		return v ? ep_error_oom(err) : -1;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(m, i);
	qsort(v, n, sizeof(*v), desc_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	return json_object_set_new(idx, "manifests", sorted) < 0 ? ep_error_oom(err) : 0;
}

static void drop_tag(json_t *d)
{
	json_t *ann = json_object_get(d, "annotations");

	json_object_del(ann, REF_NAME);
	if (ann && json_object_size(ann) == 0)
		json_object_del(d, "annotations");
}

/* Adds one image to the in-memory index (see ep_txn_add_image). */
static int index_add(json_t *idx, const char *digest, json_int_t size, const char *tag,
		     const char *mt, struct ep_error *err)
{
	json_t *m = json_object_get(idx, "manifests");
	json_t *d, *mine = NULL;
	size_t i;

	json_array_foreach (m, i, d) {
		const char *t = desc_tag(d);

		if (strcmp(desc_digest(d), digest)) {
			if (tag && t && !strcmp(t, tag))
				drop_tag(d);
			continue;
		}
		if (!mine || (tag && t && !strcmp(t, tag)))
			mine = d;
	}
	if (!mine) {
		mine = json_pack("{s:s,s:s,s:I}", "mediaType", mt, "digest", digest, "size", size);
		if (!mine || json_array_append_new(m, mine) < 0)
			return ep_error_oom(err);
	} else if (json_integer_value(json_object_get(mine, "size")) != size) {
		if (json_object_set_new(mine, "size", json_integer(size)) < 0)
			return ep_error_oom(err);
	}
	if (tag) {
		const char *t = desc_tag(mine);
		json_t *ann = json_object_get(mine, "annotations");

		if (t && !strcmp(t, tag))
			return 0;
		if (!ann) {
			ann = json_object();
			if (!ann || json_object_set_new(mine, "annotations", ann) < 0)
				return ep_error_oom(err);
		}
		if (json_object_set_new(ann, REF_NAME, json_string(tag)) < 0)
			return ep_error_oom(err);
	}
	return 0;
}

/* Flushes every dirty file of the filesystem holding path (syncfs). */
static int sync_fs_of(const char *path, struct ep_error *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "open '%s'", path);
	if (syncfs(fd) < 0)
		return ep_error_errno(err, EP_EENV, errno, "syncfs '%s'", path);
	return 0;
}

static int commit_blobs(struct ep_txn *t, struct ep_error *err)
{
	cleanup_free char *bdir = ep_asprintf(err, "%s/blobs/sha256", t->s->root);
	cleanup_free char *b0 = ep_path_join(t->s->root, "blobs", err);
	size_t i;
	json_t *b;

	if (!bdir || !b0 || mkdir_ok(b0, err) < 0 || mkdir_ok(bdir, err) < 0)
		return -1;
	/* the staged files past the first BATCH_SYNC_MIN were not fsynced */
	if (json_array_size(t->blobs) > BATCH_SYNC_MIN && sync_fs_of(t->dir, err) < 0)
		return -1;
	json_array_foreach (t->blobs, i, b) {
		const char *tmp = json_string_value(json_object_get(b, "tmp"));
		const char *dg = json_string_value(json_object_get(b, "digest"));
		cleanup_free char *dst = ep_store_blob_path(t->s, dg, err);

		if (!dst)
			return -1;
		/* An existing blob has the same bytes (same digest); leaving it
		 * alone keeps readers of it undisturbed. */
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
			continue;
		if (errno == EEXIST) {
			unlink(tmp);
			continue;
		}
		if (errno != EINVAL)
			return ep_error_errno(err, EP_EENV, errno, "rename '%s' to '%s'", tmp, dst);
		/* Filesystem without RENAME_NOREPLACE. */
		if (!is_regular(dst) && rename(tmp, dst) < 0)
			return ep_error_errno(err, EP_EENV, errno, "rename '%s' to '%s'", tmp, dst);
	}
	if (json_array_size(t->blobs) && ep_fsync_dir(bdir, err) < 0)
		return -1;
	return 0;
}

/* Many records (a pull of thousands of layers): write them all, one
 * syncfs, rename them all, one directory fsync.  A kill in between leaves
 * NAME.tmp.PID files, which gc removes. */
static int commit_cache_batch(struct ep_txn *t, const char *cdir, struct ep_error *err)
{
	const char *key;
	json_t *rec;
	int rc = -1;

	json_object_foreach (t->cache, key, rec) {
		cleanup_free char *tmp =
		    ep_asprintf(err, "%s/%s.json.tmp.%ld", cdir, key, (long)getpid());
		cleanup_free char *text = NULL;
		cleanup_close int fd = -1;
		size_t len;

		if (!tmp || !(text = ep_json_canonical(rec, &len, err)))
			goto out;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0) {
			ep_error_errno(err, EP_EENV, errno, "create '%s'", tmp);
			goto out;
		}
		if (ep_write_all(fd, text, len, err) < 0) {
			ep_error_wrap(err, "write '%s'", tmp);
			goto out;
		}
	}
	if (sync_fs_of(cdir, err) < 0)
		goto out;
	json_object_foreach (t->cache, key, rec) {
		cleanup_free char *tmp =
		    ep_asprintf(err, "%s/%s.json.tmp.%ld", cdir, key, (long)getpid());
		cleanup_free char *path = ep_asprintf(err, "%s/%s.json", cdir, key);

		if (!tmp || !path)
			goto out;
		if (rename(tmp, path) < 0) {
			ep_error_errno(err, EP_EENV, errno, "rename '%s'", tmp);
			goto out;
		}
	}
	rc = ep_fsync_dir(cdir, err);
out:
	if (rc < 0)
		json_object_foreach (t->cache, key, rec) {
			cleanup_free char *tmp =
			    ep_asprintf(NULL, "%s/%s.json.tmp.%ld", cdir, key, (long)getpid());

			if (tmp)
				unlink(tmp);
		}
	return rc;
}

static int commit_cache(struct ep_txn *t, struct ep_error *err)
{
	cleanup_free char *cdir = ep_path_join(t->s->root, "cache", err);
	const char *key;
	json_t *rec;

	if (!cdir)
		return -1;
	if (json_object_size(t->cache) && mkdir_ok(cdir, err) < 0)
		return -1;
	if (json_object_size(t->cache) > BATCH_SYNC_MIN)
		return commit_cache_batch(t, cdir, err);
	json_object_foreach (t->cache, key, rec) {
		cleanup_free char *path = ep_asprintf(err, "%s/%s.json", cdir, key);
		cleanup_free char *text = NULL;
		size_t len;

		if (!path || !(text = ep_json_canonical(rec, &len, err)))
			return -1;
		if (ep_write_file_atomic(path, text, len, 0644, err) < 0)
			return ep_error_wrap(err, "cache record '%s'", key);
	}
	return 0;
}

static int commit_index(struct ep_txn *t, struct ep_error *err)
{
	size_t n = json_array_size(t->images);
	cleanup_free char *mtbuf = NULL;
	cleanup_free char *path = NULL;
	cleanup_free char *text = NULL;
	cleanup_close int lfd = -1;
	cleanup_json json_t *old = NULL;
	cleanup_json json_t *idx = NULL;
	size_t i, len;
	json_t *img;
	enum { MT_MAX = 256 };

	if (n == 0)
		return 0;
	/* Reading the manifests happens before the lock: it is the slow part. */
	mtbuf = ep_calloc(n, MT_MAX, err);
	if (!mtbuf)
		return -1;
	json_array_foreach (t->images, i, img) {
		if (manifest_media_type(t->s, json_string_value(json_object_get(img, "digest")),
					(uint64_t)json_integer_value(json_object_get(img, "size")),
					mtbuf + i * MT_MAX, MT_MAX, err) < 0)
			return -1;
	}
	path = ep_path_join(t->s->root, "index.json", err);
	lfd = open_lockfile(t->s->root, "index.lock", err);
	if (!path || lfd < 0)
		return -1;
	if (flock_retry(lfd, LOCK_EX) < 0)
		return ep_error_errno(err, EP_EENV, errno, "lock '%s/index.lock'", t->s->root);
	/* Another process may have committed since this txn began. */
	old = index_load(t->s, 1, err);
	if (!old || !(idx = json_deep_copy(old)))
		return old ? ep_error_oom(err) : -1;
	json_array_foreach (t->images, i, img) {
		if (index_add(idx, json_string_value(json_object_get(img, "digest")),
			      json_integer_value(json_object_get(img, "size")),
			      json_string_value(json_object_get(img, "tag")), mtbuf + i * MT_MAX,
			      err) < 0)
			return -1;
	}
	if (sort_manifests(idx, err) < 0)
		return -1;
	if (json_equal(old, idx))
		return 0; /* same image again: index.json keeps its bytes */
	text = ep_json_canonical(idx, &len, err);
	if (!text)
		return -1;
	return ep_write_file_atomic(path, text, len, 0644, err);
}

int ep_txn_commit(struct ep_txn *t, struct ep_error *err)
{
	if (!t->dir)
		return ep_error_set(err, EP_EINVAL, "commit of a finished transaction");
	if (commit_blobs(t, err) < 0 || commit_cache(t, err) < 0 || commit_index(t, err) < 0) {
		ep_error_wrap(err, "commit to store '%s'", t->s->root);
		ep_txn_abort(t);
		return -1;
	}
	ep_txn_abort(t); /* only the now empty staging dir is left */
	return 0;
}

void ep_txn_abort(struct ep_txn *t)
{
	if (!t || !t->dir)
		return;
	/* The lock is held until the dir is gone, so no cleaner races us. */
	ep_rm_rf(t->dir, NULL);
	txn_clear(t);
}

/* ---- gc ---- */

/* 1: newly marked, 0: already marked or not a digest, -1: out of memory
 * (which must stop gc: an unmarked live blob would be removed). */
static int mark(json_t *live, const char *digest)
{
	if (!digest || ep_digest_check(digest, NULL) < 0)
		return 0;
	if (json_object_get(live, digest))
		return 0;
	return json_object_set_new(live, digest, json_true()) < 0 ? -1 : 1;
}

static int is_known_manifest_type(const char *mt)
{
	return mt && (!strcmp(mt, MT_OCI_MANIFEST) || !strcmp(mt, MT_OCI_INDEX) ||
		      !strcmp(mt, MT_DOCKER_MANIFEST) || !strcmp(mt, MT_DOCKER_LIST));
}

static int mark_descs(struct ep_store *s, json_t *live, json_t *arr, int depth,
		      struct ep_error *err);

/* Marks a manifest/index blob and everything it refers to. */
static int mark_manifest(struct ep_store *s, json_t *live, const char *digest, const char *mt,
			 int depth, struct ep_error *err)
{
	cleanup_free char *path = NULL;
	cleanup_free char *buf = NULL;
	cleanup_json json_t *j = NULL;
	size_t len;

	int r = mark(live, digest);

	if (r <= 0)
		return r < 0 ? ep_error_oom(err) : 0;
	if (depth > GC_MAX_DEPTH)
		return ep_error_set(err, EP_EINVAL, "manifest '%s' is nested too deeply", digest);
	path = ep_store_blob_path(s, digest, err);
	if (!path)
		return -1;
	if (!is_regular(path))
		return 0; /* nothing to follow; verify reports missing blobs */
	buf = ep_read_file(path, EP_JSON_MAX_BYTES, &len, err);
	if (buf)
		j = ep_json_loadb(buf, len, EP_JSON_MAX_BYTES, "manifest", err);
	if (!j || !json_is_object(j)) {
		/* Not knowing what a manifest refers to, gc must not guess. */
		if (is_known_manifest_type(mt))
			return ep_error_set(err, EP_EENV,
					    "cannot read manifest '%s'; nothing removed", digest);
		return 0;
	}
	if (mark(live, json_string_value(json_object_get(json_object_get(j, "config"), "digest"))) <
	    0)
		return ep_error_oom(err);
	if (mark_descs(s, live, json_object_get(j, "layers"), -1, err) < 0 ||
	    mark_descs(s, live, json_object_get(j, "blobs"), -1, err) < 0)
		return -1;
	return mark_descs(s, live, json_object_get(j, "manifests"), depth + 1, err);
}

/* depth < 0: plain blobs (layers); otherwise manifests to follow. */
static int mark_descs(struct ep_store *s, json_t *live, json_t *arr, int depth,
		      struct ep_error *err)
{
	size_t i;
	json_t *d;

	json_array_foreach (arr, i, d) {
		const char *dg = json_string_value(json_object_get(d, "digest"));
		const char *mt = json_string_value(json_object_get(d, "mediaType"));

		if (depth < 0) {
			if (mark(live, dg) < 0)
				return ep_error_oom(err);
		} else if (dg && mark_manifest(s, live, dg, mt, depth, err) < 0)
			return -1;
	}
	return 0;
}

/* Every "digest" string anywhere in a cache record keeps that blob. */
static int mark_record(json_t *live, json_t *j, int depth)
{
	const char *k;
	json_t *v;
	size_t i;

	if (depth > EP_JSON_MAX_DEPTH)
		return 0;
	if (json_is_object(j)) {
		json_object_foreach (j, k, v) {
			if (!strcmp(k, "digest") && json_is_string(v)) {
				if (mark(live, json_string_value(v)) < 0)
					return -1;
			} else if (mark_record(live, v, depth + 1) < 0) {
				return -1;
			}
		}
	} else if (json_is_array(j)) {
		json_array_foreach (j, i, v) {
			if (mark_record(live, v, depth + 1) < 0)
				return -1;
		}
	}
	return 0;
}

static int mark_cache(struct ep_store *s, json_t *live, struct ep_error *err)
{
	cleanup_free char *cdir = ep_path_join(s->root, "cache", err);
	DIR *d = cdir ? opendir(cdir) : NULL;
	struct dirent *de;
	int rc = 0;

	if (!cdir)
		return -1;
	if (!d)
		return errno == ENOENT ? 0 : ep_error_errno(err, EP_EENV, errno, "open '%s'", cdir);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		cleanup_free char *key = NULL;
		cleanup_json json_t *rec = NULL;

		if (n <= 5 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		/* An unreadable record keeps nothing: it is a cache miss. */
		key = strndup(de->d_name, n - 5);
		if (!key) {
			rc = ep_error_oom(err);
			break;
		}
		rec = ep_store_cache_get(s, key);
		if (rec && mark_record(live, rec, 0) < 0) {
			rc = ep_error_oom(err);
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Leftovers of ep_write_file_atomic ("NAME.tmp.PID") in dir. */
static void remove_atomic_leftovers(const char *dir, uint64_t *freed)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		cleanup_free char *p = NULL;
		struct stat st;

		if (!strstr(de->d_name, ".tmp."))
			continue;
		p = ep_path_join(dir, de->d_name, NULL);
		if (p && lstat(p, &st) == 0 && S_ISREG(st.st_mode) && unlink(p) == 0)
			*freed += (uint64_t)st.st_size;
	}
	closedir(d);
}

int ep_store_gc(struct ep_store *s, uint64_t *freed, struct ep_error *err)
{
	cleanup_json json_t *idx = NULL;
	cleanup_json json_t *live = json_object();
	cleanup_free char *bdir = ep_asprintf(err, "%s/blobs/sha256", s->root);
	cleanup_free char *cdir = ep_path_join(s->root, "cache", err);
	/* what this process's ep_store_open already removed counts too */
	uint64_t total = s->tmp_freed;
	DIR *d;
	struct dirent *de;

	if (freed)
		*freed = 0;
	if (!live || !bdir || !cdir)
		return live ? -1 : ep_error_oom(err);
	if (!(s->flags & EP_STORE_EXCLUSIVE))
		return ep_error_set(err, EP_EINVAL, "gc needs the store '%s' opened exclusively",
				    s->root);
	idx = index_load(s, 0, err);
	if (!idx)
		return ep_error_wrap(err, "gc");
	if (mark_descs(s, live, json_object_get(idx, "manifests"), 0, err) < 0)
		return ep_error_wrap(err, "gc");
	if (mark_cache(s, live, err) < 0)
		return ep_error_wrap(err, "gc");

	d = opendir(bdir);
	if (!d && errno != ENOENT)
		return ep_error_errno(err, EP_EENV, errno, "gc: open '%s'", bdir);
	while (d && (de = readdir(d))) {
		cleanup_free char *dg = NULL;
		cleanup_free char *p = NULL;
		struct stat st;

		/* Names that are not digests were not put there by envpin. */
		if (!ep_is_hex64(de->d_name))
			continue;
		dg = ep_asprintf(err, "sha256:%s", de->d_name);
		p = ep_path_join(bdir, de->d_name, err);
		if (!dg || !p) {
			closedir(d);
			return -1;
		}
		if (json_object_get(live, dg) || lstat(p, &st) < 0)
			continue;
		if (unlink(p) < 0) {
			int e = errno;

			closedir(d);
			return ep_error_errno(err, EP_EENV, e, "gc: remove '%s'", p);
		}
		total += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	}
	if (d) {
		closedir(d);
		if (ep_fsync_dir(bdir, err) < 0)
			return ep_error_wrap(err, "gc");
	}
	clean_tmp(s->root, &total);
	remove_atomic_leftovers(s->root, &total);
	remove_atomic_leftovers(cdir, &total);
	if (freed)
		*freed = total;
	return 0;
}

/* ---- rmi ---- */

/* Marks every blob the index entries in arr reach (see gc). */
static int mark_entries(struct ep_store *s, json_t *arr, json_t *live, struct ep_error *err)
{
	return mark_descs(s, live, arr, 0, err);
}

/* Digests the index children of every entry in arr need (not the entries
 * themselves): an image listed inside a stored image index. */
static int mark_children(struct ep_store *s, json_t *arr, json_t *kids, struct ep_error *err)
{
	json_t *d;
	size_t i;

	json_array_foreach (arr, i, d) {
		cleanup_json json_t *one = json_object();
		const char *k;
		json_t *v;

		if (!one)
			return ep_error_oom(err);
		if (mark_manifest(s, one, desc_digest(d),
				  json_string_value(json_object_get(d, "mediaType")), 0, err) < 0)
			return -1;
		json_object_foreach (one, k, v) {
			if (strcmp(k, desc_digest(d)) && json_object_set(kids, k, json_true()) < 0)
				return ep_error_oom(err);
		}
	}
	return 0;
}

/* Applies one name to the in-memory index; appends the removed entries to
 * gone and one record to report. */
static int rmi_one(struct ep_store *s, json_t *idx, const char *name, int force, json_t *gone,
		   json_t *report, struct ep_error *err)
{
	json_t *m = json_object_get(idx, "manifests");
	cleanup_json json_t *keep = json_array(), *kids = json_object(), *tags = json_array();
	ep_digest dg;
	const char *action = "deleted";
	json_t *d;
	size_t i;
	int by_tag = 0;

	if (!keep || !kids || !tags)
		return ep_error_oom(err);
	if (strncmp(name, "sha256:", 7)) {
		json_array_foreach (m, i, d) {
			const char *t = desc_tag(d);

			if (t && !strcmp(t, name)) {
				by_tag = 1;
				snprintf(dg, sizeof(dg), "%s", desc_digest(d));
			}
		}
	}
	if (!by_tag && ep_store_resolve(s, name, dg, err) < 0)
		return -1;
	json_array_foreach (m, i, d) {
		const char *t = desc_tag(d);
		int mine = !strcmp(desc_digest(d), dg) && (!by_tag || (t && !strcmp(t, name)));

		if (!mine) {
			if (!strcmp(desc_digest(d), dg))
				action = "untagged"; /* another entry keeps the image */
			json_array_append(keep, d);
			continue;
		}
		if (t)
			json_array_append_new(tags, json_string(t));
		json_array_append(gone, d);
	}
	if (!by_tag && json_array_size(tags) > 1 && !force) {
		cleanup_free char *list = ep_json_canonical(tags, NULL, err);

		return ep_error_set(
		    err, EP_EINVAL,
		    "image %s has %zu tags %s: remove them one by one, or use --force", dg,
		    json_array_size(tags), list ? list : "");
	}
	if (!strcmp(action, "deleted")) {
		if (mark_children(s, keep, kids, err) < 0)
			return -1;
		if (json_object_get(kids, dg) && !force)
			return ep_error_set(
			    err, EP_EINVAL,
			    "image %s ('%s') is part of an image index still in the "
			    "store: remove that index first, or use --force",
			    dg, name);
	}
	if (json_object_set(idx, "manifests", keep) < 0 ||
	    json_array_append_new(report, json_pack("{s:s, s:s, s:s, s:O}", "name", name, "digest",
						    dg, "action", action, "tags", tags)) < 0)
		return ep_error_oom(err);
	return 0;
}

/* Adds the diff_ids of image manifest `digest` (from its config) to out;
 * quietly nothing for what is not an image manifest. */
static int add_diff_ids(struct ep_store *s, const char *digest, json_t *out)
{
	cleanup_free char *mp = ep_store_blob_path(s, digest, NULL), *mb = NULL, *cp = NULL,
			  *cb = NULL;
	cleanup_json json_t *man = NULL, *cfg = NULL;
	size_t len, i;
	json_t *d;

	if (!mp || !(mb = ep_read_file(mp, EP_JSON_MAX_BYTES, &len, NULL)) ||
	    !(man = ep_json_loadb(mb, len, EP_JSON_MAX_BYTES, "manifest", NULL)))
		return 0;
	cp = ep_store_blob_path(
	    s, json_string_value(json_object_get(json_object_get(man, "config"), "digest")), NULL);
	if (!cp || !(cb = ep_read_file(cp, EP_JSON_MAX_BYTES, &len, NULL)) ||
	    !(cfg = ep_json_loadb(cb, len, EP_JSON_MAX_BYTES, "config", NULL)))
		return 0;
	json_array_foreach (json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), i, d) {
		if (json_is_string(d) && json_object_set(out, json_string_value(d), json_true()) < 0)
			return -1;
	}
	return 0;
}

/* Records keyed by a layer's diff_id ("links-HEX", lib/build.c) of layers
 * only the removed images had. */
static int drop_diff_id_records(struct ep_store *s, json_t *idx, json_t *gone, struct ep_error *err)
{
	cleanup_json json_t *keep = json_object(), *drop = json_object();
	const char *k;
	json_t *d, *v;
	size_t i;

	if (!keep || !drop)
		return ep_error_oom(err);
	json_array_foreach (json_object_get(idx, "manifests"), i, d) {
		if (add_diff_ids(s, desc_digest(d), keep) < 0)
			return ep_error_oom(err);
	}
	json_array_foreach (gone, i, d) {
		if (add_diff_ids(s, desc_digest(d), drop) < 0)
			return ep_error_oom(err);
	}
	json_object_foreach (drop, k, v) {
		cleanup_free char *p = NULL;

		if (json_object_get(keep, k) || ep_digest_check(k, NULL) < 0)
			continue;
		p = ep_asprintf(err, "%s/cache/links-%s.json", s->root, ep_digest_hex(k));
		if (!p)
			return -1;
		if (unlink(p) < 0 && errno != ENOENT)
			return ep_error_errno(err, EP_EENV, errno, "remove '%s'", p);
	}
	return 0;
}

/* Removes the cache records that keep a blob only the removed images used,
 * so that the next gc frees it (a cached layer of a removed image is what
 * the user asked to delete). */
static int drop_cache_of(struct ep_store *s, json_t *live, json_t *removed, struct ep_error *err)
{
	cleanup_free char *cdir = ep_path_join(s->root, "cache", err);
	DIR *dir = cdir ? opendir(cdir) : NULL;
	struct dirent *de;
	int rc = 0;

	if (!cdir)
		return -1;
	if (!dir)
		return errno == ENOENT ? 0 : ep_error_errno(err, EP_EENV, errno, "open '%s'", cdir);
	while ((de = readdir(dir))) {
		size_t n = strlen(de->d_name);
		cleanup_free char *key = NULL, *path = NULL;
		cleanup_json json_t *rec = NULL, *refs = json_object();
		const char *k;
		json_t *v;
		int drop = 0;

		if (n <= 5 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		key = strndup(de->d_name, n - 5);
		if (!key || !refs) {
			rc = ep_error_oom(err);
			break;
		}
		rec = ep_store_cache_get(s, key);
		if (!rec || mark_record(refs, rec, 0) < 0)
			continue;
		json_object_foreach (refs, k, v) {
			if (json_object_get(removed, k) && !json_object_get(live, k))
				drop = 1;
		}
		path = drop ? ep_path_join(cdir, de->d_name, err) : NULL;
		if (path && unlink(path) < 0 && errno != ENOENT) {
			rc = ep_error_errno(err, EP_EENV, errno, "remove '%s'", path);
			break;
		}
	}
	closedir(dir);
	return rc;
}

int ep_store_rmi(struct ep_store *s, const char *const *names, size_t n, int force, json_t **report,
		 struct ep_error *err)
{
	cleanup_free char *path = ep_path_join(s->root, "index.json", err);
	cleanup_close int lfd = -1;
	cleanup_json json_t *old = NULL, *idx = NULL, *gone = json_array(), *rep = json_array();
	cleanup_json json_t *live = json_object(), *removed = json_object();
	cleanup_free char *text = NULL;
	size_t len, i;
	json_t *d;

	if (!path || !gone || !rep || !live || !removed)
		return path ? ep_error_oom(err) : -1;
	lfd = open_lockfile(s->root, "index.lock", err);
	if (lfd < 0)
		return -1;
	if (flock_retry(lfd, LOCK_EX) < 0)
		return ep_error_errno(err, EP_EENV, errno, "lock '%s/index.lock'", s->root);
	old = index_load(s, 0, err);
	if (!old || !(idx = json_deep_copy(old)))
		return old ? ep_error_oom(err) : -1;
	for (i = 0; i < n; i++) {
		/* every name is resolved against the index as the earlier
		 * names left it; all or nothing is written */
		if (rmi_one(s, idx, names[i], force, gone, rep, err) < 0)
			return -1;
	}
	/* what the remaining images reach stays; the cache records of what
	 * only the removed ones reached go */
	if (mark_entries(s, json_object_get(idx, "manifests"), live, err) < 0 ||
	    mark_entries(s, gone, removed, err) < 0)
		return ep_error_wrap(err, "rmi");
	text = ep_json_canonical(idx, &len, err);
	if (!text || ep_write_file_atomic(path, text, len, 0644, err) < 0)
		return -1;
	if (drop_cache_of(s, live, removed, err) < 0)
		return ep_error_wrap(err, "rmi: images removed, but their cache records");
	if (drop_diff_id_records(s, idx, gone, err) < 0)
		return ep_error_wrap(err, "rmi: images removed, but their cache records");
	/* what the store keeps beside a deleted image, keyed by its digest:
	 * the build's note of where it came from (lib/build.c), its lock and
	 * its signatures and attachments (lib/trust/sidecar.h) */
	json_array_foreach (gone, i, d) {
		static const char *const beside[] = {"origin", "lock", "trust"};
		const char *dg = desc_digest(d);

		if (json_object_get(live, dg))
			continue;
		for (size_t k = 0; k < sizeof(beside) / sizeof(beside[0]); k++) {
			cleanup_free char *p = ep_asprintf(err, "%s/cache/%s-%s.json", s->root,
							   beside[k], ep_digest_hex(dg));

			if (!p)
				return -1;
			if (unlink(p) < 0 && errno != ENOENT)
				return ep_error_errno(err, EP_EENV, errno, "remove '%s'", p);
		}
	}
	if (report)
		*report = steal_pointer(&rep);
	return 0;
}
