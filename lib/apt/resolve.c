/* lib/apt/resolve.c - the package universe (Packages indexes + dpkg status)
 * and the dependency resolver. */
#include "apt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct pkg {
	char *name, *version, *arch, *multiarch;
	char *depends, *predepends, *provides;
	char *filename, *sha256;
	uint64_t size;
	int archive; /* index of the archive serving it; -1: installed */
};

struct prov {
	char *name;    /* virtual name */
	char *version; /* "= V" of a versioned Provides, or NULL */
	size_t pkg;
};

struct ep_apt_db {
	char *arch;
	struct pkg *p;
	size_t n, cap;
	char **uris, **snaps;
	size_t n_archives;
	size_t *by_name; /* indexes into p sorted by name */
	struct prov *prov;
	size_t n_prov, cap_prov;
	int indexed;
};

struct atom {
	char name[128];
	char archq[32];
	char op[3];
	char ver[128];
};

#define MAX_ALTS 16

struct ep_apt_db *ep_apt_db_new(const char *arch, struct ep_error *err)
{
	struct ep_apt_db *db = ep_calloc(1, sizeof(*db), err);

	if (!db)
		return NULL;
	db->arch = ep_strdup(arch, err);
	if (!db->arch) {
		free(db);
		return NULL;
	}
	return db;
}

static void pkg_release(struct pkg *p)
{
	free(p->name);
	free(p->version);
	free(p->arch);
	free(p->multiarch);
	free(p->depends);
	free(p->predepends);
	free(p->provides);
	free(p->filename);
	free(p->sha256);
}

void ep_apt_db_free(struct ep_apt_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->n; i++)
		pkg_release(&db->p[i]);
	for (size_t i = 0; i < db->n_archives; i++) {
		free(db->uris[i]);
		free(db->snaps[i]);
	}
	for (size_t i = 0; i < db->n_prov; i++) {
		free(db->prov[i].name);
		free(db->prov[i].version);
	}
	free(db->uris);
	free(db->snaps);
	free(db->p);
	free(db->by_name);
	free(db->prov);
	free(db->arch);
	free(db);
}

int ep_apt_db_add_archive(struct ep_apt_db *db, const char *uri, const char *snapshot,
			  struct ep_error *err)
{
	char **u = ep_realloc(db->uris, (db->n_archives + 1) * sizeof(*u), err);
	char **s;

	if (!u)
		return -1;
	db->uris = u;
	s = ep_realloc(db->snaps, (db->n_archives + 1) * sizeof(*s), err);
	if (!s)
		return -1;
	db->snaps = s;
	db->uris[db->n_archives] = ep_strdup(uri, err);
	db->snaps[db->n_archives] = snapshot ? ep_strdup(snapshot, err) : NULL;
	if (!db->uris[db->n_archives] || (snapshot && !db->snaps[db->n_archives])) {
		free(db->uris[db->n_archives]);
		free(db->snaps[db->n_archives]);
		return -1;
	}
	return (int)db->n_archives++;
}

static char *field_dup(const struct ep_apt_field *f, size_t n, const char *name,
		       struct ep_error *err, int *oom)
{
	const struct ep_apt_field *x = ep_apt_field_get(f, n, name);
	char *s;

	if (!x)
		return NULL;
	s = ep_malloc(x->value_len + 1, err);
	if (!s) {
		*oom = 1;
		return NULL;
	}
	memcpy(s, x->value, x->value_len);
	s[x->value_len] = 0;
	/* trailing blanks (a '\r' of a CRLF file) are not part of the value */
	for (size_t l = x->value_len;
	     l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'); l--)
		s[l - 1] = 0;
	return s;
}

/* A package name or version as Debian policy allows (what goes into a
 * shell line and a file name later must be tame). */
static int tame(const char *s, const char *extra, size_t max)
{
	if (!s || !*s || strlen(s) > max)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return 0;
	return 1;
}

struct add_ctx {
	struct ep_apt_db *db;
	int archive;
	const char *what;
};

static int add_para(void *vctx, const struct ep_apt_field *f, size_t n, int line,
		    struct ep_error *err)
{
	struct add_ctx *c = vctx;
	struct ep_apt_db *db = c->db;
	struct pkg p = {0};
	int oom = 0;
	char *status = NULL, *size = NULL;

	p.archive = c->archive;
	p.arch = field_dup(f, n, "Architecture", err, &oom);
	if (oom)
		return -1;
	if (!p.arch || (strcmp(p.arch, db->arch) && strcmp(p.arch, "all"))) {
		free(p.arch);
		return 0;
	}
	if (c->archive < 0) {
		status = field_dup(f, n, "Status", err, &oom);
		/* "want ok state": unpacked, half-configured, triggers-* count */
		if (!status ||
		    (!strstr(status, " installed") && !strstr(status, " unpacked") &&
		     !strstr(status, " half-configured") && !strstr(status, " triggers-"))) {
			free(status);
			free(p.arch);
			return oom ? -1 : 0;
		}
		free(status);
	}
	p.name = field_dup(f, n, "Package", err, &oom);
	p.version = field_dup(f, n, "Version", err, &oom);
	p.multiarch = field_dup(f, n, "Multi-Arch", err, &oom);
	p.depends = field_dup(f, n, "Depends", err, &oom);
	p.predepends = field_dup(f, n, "Pre-Depends", err, &oom);
	p.provides = field_dup(f, n, "Provides", err, &oom);
	if (c->archive >= 0) {
		p.filename = field_dup(f, n, "Filename", err, &oom);
		p.sha256 = field_dup(f, n, "SHA256", err, &oom);
		size = field_dup(f, n, "Size", err, &oom);
	}
	if (oom)
		goto fail;
	if (!tame(p.name, "+-.", 120) || !tame(p.version, "+-.~:", 120)) {
		ep_error_set(err, EP_EINVAL, "%s:%d: bad Package or Version", c->what, line);
		goto fail;
	}
	if (c->archive >= 0) {
		char *end = NULL;
		unsigned long long sz = size ? strtoull(size, &end, 10) : 0;

		if (!p.filename || !tame(p.filename, "+-.~_/%", 400) || strstr(p.filename, "..") ||
		    p.filename[0] == '/' || !p.sha256 || strlen(p.sha256) != 64 ||
		    strspn(p.sha256, "0123456789abcdef") != 64 || !size || !end || *end ||
		    sz > EP_APT_MAX_DEB) {
			ep_error_set(err, EP_EINVAL,
				     "%s:%d: package '%s': bad or missing Filename, Size or SHA256",
				     c->what, line, p.name);
			goto fail;
		}
		p.size = sz;
		/* flat repositories write "./name.deb" */
		while (!strncmp(p.filename, "./", 2))
			memmove(p.filename, p.filename + 2, strlen(p.filename + 2) + 1);
	}
	free(size);
	if (db->n == db->cap) {
		size_t nc = db->cap ? db->cap * 2 : 1024;
		struct pkg *np = ep_realloc(db->p, nc * sizeof(*np), err);

		if (!np)
			goto fail;
		db->p = np;
		db->cap = nc;
	}
	db->p[db->n++] = p;
	db->indexed = 0;
	return 0;
fail:
	free(size);
	pkg_release(&p);
	return -1;
}

int ep_apt_db_add_packages(struct ep_apt_db *db, int archive, const char *buf, size_t len,
			   const char *what, struct ep_error *err)
{
	struct add_ctx c = {db, archive, what};

	if (archive < 0 || (size_t)archive >= db->n_archives)
		return ep_error_set(err, EP_EINVAL, "no archive %d", archive);
	return ep_apt_parse_control(buf, len, what, add_para, &c, err);
}

int ep_apt_db_add_status(struct ep_apt_db *db, const char *buf, size_t len, struct ep_error *err)
{
	struct add_ctx c = {db, -1, "/var/lib/dpkg/status"};

	return ep_apt_parse_control(buf, len, c.what, add_para, &c, err);
}

/* ---- dependency fields --------------------------------------------------- */

static int is_sp(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses one atom "name[:q] [(op ver)] [arch list] [<profiles>]" of s[0..len). */
static int parse_atom(const char *s, size_t len, struct atom *a)
{
	const char *e = s + len, *p = s, *q;
	size_t l;

	memset(a, 0, sizeof(*a));
	while (p < e && is_sp(*p))
		p++;
	q = p;
	while (q < e && !is_sp(*q) && *q != '(' && *q != '[' && *q != '<' && *q != ':')
		q++;
	l = (size_t)(q - p);
	if (!l || l >= sizeof(a->name))
		return -1;
	memcpy(a->name, p, l);
	if (q < e && *q == ':') {
		p = ++q;
		while (q < e && !is_sp(*q) && *q != '(' && *q != '[' && *q != '<')
			q++;
		l = (size_t)(q - p);
		if (!l || l >= sizeof(a->archq))
			return -1;
		memcpy(a->archq, p, l);
	}
	p = q;
	while (p < e && is_sp(*p))
		p++;
	if (p < e && *p == '(') {
		p++;
		while (p < e && is_sp(*p))
			p++;
		q = p;
		while (q < e && strchr("<>=", *q))
			q++;
		l = (size_t)(q - p);
		if (!l || l > 2)
			return -1;
		memcpy(a->op, p, l);
		p = q;
		while (p < e && is_sp(*p))
			p++;
		q = p;
		while (q < e && !is_sp(*q) && *q != ')')
			q++;
		l = (size_t)(q - p);
		if (!l || l >= sizeof(a->ver))
			return -1;
		memcpy(a->ver, p, l);
		while (q < e && *q != ')')
			q++;
		if (q == e)
			return -1;
	}
	return 0;
}

/* Splits s[0..len) at sep; calls fn for each piece. */
static int split(const char *s, size_t len, char sep, int (*fn)(void *, const char *, size_t),
		 void *ctx)
{
	const char *e = s + len;

	while (s < e) {
		const char *c = memchr(s, sep, (size_t)(e - s));
		const char *end = c ? c : e;
		int r = fn(ctx, s, (size_t)(end - s));

		if (r)
			return r;
		s = c ? c + 1 : e;
	}
	return 0;
}

struct group {
	struct atom alts[MAX_ALTS];
	int n, bad;
};

static int add_alt(void *ctx, const char *s, size_t len)
{
	struct group *g = ctx;

	if (g->n == MAX_ALTS || parse_atom(s, len, &g->alts[g->n]) < 0) {
		g->bad = 1;
		return 1;
	}
	g->n++;
	return 0;
}

static int parse_group(const char *s, size_t len, struct group *g)
{
	memset(g, 0, sizeof(*g));
	split(s, len, '|', add_alt, g);
	return g->bad || !g->n ? -1 : 0;
}

/* ---- index --------------------------------------------------------------- */

static struct ep_apt_db *sort_db;

static int cmp_by_name(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int r = strcmp(sort_db->p[x].name, sort_db->p[y].name);

	return r ? r : (x < y ? -1 : x > y);
}

static int cmp_prov(const void *a, const void *b)
{
	const struct prov *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	r = strcmp(sort_db->p[x->pkg].name, sort_db->p[y->pkg].name);
	return r ? r : (x->pkg < y->pkg ? -1 : x->pkg > y->pkg);
}

struct prov_ctx {
	struct ep_apt_db *db;
	size_t pkg;
	int oom;
};

static int add_prov(void *vctx, const char *s, size_t len)
{
	struct prov_ctx *c = vctx;
	struct ep_apt_db *db = c->db;
	struct atom a;

	if (parse_atom(s, len, &a) < 0)
		return 0; /* a malformed Provides entry provides nothing */
	if (db->n_prov == db->cap_prov) {
		size_t nc = db->cap_prov ? db->cap_prov * 2 : 256;
		struct prov *np = realloc(db->prov, nc * sizeof(*np));

		if (!np) {
			c->oom = 1;
			return 1;
		}
		db->prov = np;
		db->cap_prov = nc;
	}
	db->prov[db->n_prov].name = strdup(a.name);
	db->prov[db->n_prov].version = a.op[0] && !strcmp(a.op, "=") ? strdup(a.ver) : NULL;
	db->prov[db->n_prov].pkg = c->pkg;
	if (!db->prov[db->n_prov].name) {
		free(db->prov[db->n_prov].version);
		c->oom = 1;
		return 1;
	}
	db->n_prov++;
	return 0;
}

static int db_index(struct ep_apt_db *db, struct ep_error *err)
{
	if (db->indexed)
		return 0;
	free(db->by_name);
	db->by_name = ep_malloc((db->n ? db->n : 1) * sizeof(size_t), err);
	if (!db->by_name)
		return -1;
	for (size_t i = 0; i < db->n_prov; i++) {
		free(db->prov[i].name);
		free(db->prov[i].version);
	}
	db->n_prov = 0;
	for (size_t i = 0; i < db->n; i++) {
		db->by_name[i] = i;
		if (db->p[i].provides) {
			struct prov_ctx c = {db, i, 0};

			split(db->p[i].provides, strlen(db->p[i].provides), ',', add_prov, &c);
			if (c.oom)
				return ep_error_oom(err);
		}
	}
	sort_db = db;
	qsort(db->by_name, db->n, sizeof(size_t), cmp_by_name);
	qsort(db->prov, db->n_prov, sizeof(struct prov), cmp_prov);
	sort_db = NULL;
	db->indexed = 1;
	return 0;
}

/* The first of the n sorted entries whose name (at) is >= name, or with
 * upper, > name. */
static size_t name_bound(const struct ep_apt_db *db, size_t n,
			 const char *(*at)(const struct ep_apt_db *, size_t), const char *name,
			 int upper)
{
	size_t l = 0, h = n;

	while (l < h) {
		size_t m = l + (h - l) / 2;
		int c = strcmp(at(db, m), name);

		if (c < 0 || (upper && c == 0))
			l = m + 1;
		else
			h = m;
	}
	return l;
}

static const char *by_name_at(const struct ep_apt_db *db, size_t i)
{
	return db->p[db->by_name[i]].name;
}

static const char *prov_at(const struct ep_apt_db *db, size_t i)
{
	return db->prov[i].name;
}

/* [*lo, *hi) of by_name holding name. */
static void name_range(struct ep_apt_db *db, const char *name, size_t *lo, size_t *hi)
{
	*lo = name_bound(db, db->n, by_name_at, name, 0);
	*hi = name_bound(db, db->n, by_name_at, name, 1);
}

/* [*lo, *hi) of prov (sorted by name) providing name. */
static void prov_range(struct ep_apt_db *db, const char *name, size_t *lo, size_t *hi)
{
	*lo = name_bound(db, db->n_prov, prov_at, name, 0);
	*hi = name_bound(db, db->n_prov, prov_at, name, 1);
}

/* ---- resolution ---------------------------------------------------------- */

struct rs {
	struct ep_apt_db *db;
	size_t *chosen; /* package indexes to install */
	size_t *parent; /* index into chosen of what pulled it in; SIZE_MAX: request */
	size_t n, cap;
	char *installed_dropped; /* per package: an installed one being replaced */
};

static int arch_ok(const struct rs *r, const struct pkg *p, const struct atom *a)
{
	if (!a->archq[0] || !strcmp(a->archq, "native"))
		return 1;
	if (!strcmp(a->archq, "any"))
		return p->multiarch && !strcmp(p->multiarch, "allowed");
	return !strcmp(a->archq, p->arch) || !strcmp(a->archq, r->db->arch);
}

static int version_ok(const char *v, const struct atom *a)
{
	return !a->op[0] || ep_apt_version_satisfies(v, a->op, a->ver);
}

static size_t chosen_by_name(const struct rs *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->db->p[r->chosen[i]].name, name))
			return i;
	return SIZE_MAX;
}

/* Is package i present after the install (installed and not replaced, or chosen)? */
static int present(const struct rs *r, size_t i)
{
	const struct pkg *p = &r->db->p[i];

	if (p->archive < 0)
		return chosen_by_name(r, p->name) == SIZE_MAX;
	for (size_t k = 0; k < r->n; k++)
		if (r->chosen[k] == i)
			return 1;
	return 0;
}

static int satisfied(const struct rs *r, const struct atom *a)
{
	struct ep_apt_db *db = r->db;
	size_t lo, hi;

	name_range(db, a->name, &lo, &hi);
	for (size_t k = lo; k < hi; k++) {
		size_t i = db->by_name[k];

		if (present(r, i) && version_ok(db->p[i].version, a) && arch_ok(r, &db->p[i], a))
			return 1;
	}
	prov_range(db, a->name, &lo, &hi);
	for (size_t k = lo; k < hi; k++) {
		const struct prov *pv = &db->prov[k];

		if (present(r, pv->pkg) &&
		    (!a->op[0] || (pv->version && version_ok(pv->version, a))))
			return 1;
	}
	return 0;
}

/* The best available package for an atom: highest version of the name,
 * else the first provider by name (its highest version). */
static size_t candidate(const struct rs *r, const struct atom *a)
{
	struct ep_apt_db *db = r->db;
	size_t lo, hi, best = SIZE_MAX;

	name_range(db, a->name, &lo, &hi);
	for (size_t k = lo; k < hi; k++) {
		size_t i = db->by_name[k];
		const struct pkg *p = &db->p[i];

		if (p->archive < 0 || !version_ok(p->version, a))
			continue;
		if (!arch_ok(r, p, a))
			continue;
		if (best == SIZE_MAX || ep_apt_vercmp(p->version, db->p[best].version) > 0)
			best = i;
	}
	if (best != SIZE_MAX)
		return best;
	prov_range(db, a->name, &lo, &hi);
	for (size_t k = lo; k < hi; k++) {
		const struct prov *pv = &db->prov[k];
		const struct pkg *p = &db->p[pv->pkg];

		if (p->archive < 0 || (a->op[0] && !(pv->version && version_ok(pv->version, a))))
			continue;
		if (best != SIZE_MAX && strcmp(p->name, db->p[best].name) != 0)
			break; /* the first provider name wins */
		if (best == SIZE_MAX || ep_apt_vercmp(p->version, db->p[best].version) > 0)
			best = pv->pkg;
	}
	return best;
}

static char *chain(const struct rs *r, size_t from, struct ep_error *err)
{
	char buf[1024];
	size_t len = 0;
	int depth = 0;

	buf[0] = 0;
	for (size_t k = from; k != SIZE_MAX && depth < 20; k = r->parent[k], depth++) {
		const struct pkg *p = &r->db->p[r->chosen[k]];
		int w = snprintf(buf + len, sizeof(buf) - len, "%s%s %s", depth ? " <- " : "",
				 p->name, p->version);

		if (w < 0 || (size_t)w >= sizeof(buf) - len)
			break;
		len += (size_t)w;
	}
	return ep_strdup(buf, err);
}

static int choose(struct rs *r, size_t pkg, size_t parent, struct ep_error *err)
{
	size_t k = chosen_by_name(r, r->db->p[pkg].name);

	if (k != SIZE_MAX) {
		cleanup_free char *c = NULL;

		if (r->chosen[k] == pkg)
			return 0;
		c = parent == SIZE_MAX ? ep_strdup("the request", err) : chain(r, parent, err);
		return ep_error_set(err, EP_EINVAL,
				    "'%s' is needed both at version %s and %s (for %s); resolve by "
				    "naming a version",
				    r->db->p[pkg].name, r->db->p[r->chosen[k]].version,
				    r->db->p[pkg].version, c ? c : "?");
	}
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 64;
		size_t *c = ep_realloc(r->chosen, nc * sizeof(*c), err), *p;

		if (!c)
			return -1;
		r->chosen = c;
		p = ep_realloc(r->parent, nc * sizeof(*p), err);
		if (!p)
			return -1;
		r->parent = p;
		r->cap = nc;
	}
	r->chosen[r->n] = pkg;
	r->parent[r->n] = parent;
	r->n++;
	return 0;
}

/* Every group of a Depends-like field of chosen[k]. */
static int resolve_field(struct rs *r, size_t k, const char *field, const char *fname,
			 struct ep_error *err)
{
	const char *s = field, *e;

	if (!s)
		return 0;
	e = s + strlen(s);
	while (s < e) {
		const char *c = memchr(s, ',', (size_t)(e - s));
		size_t len = (size_t)((c ? c : e) - s);
		struct group g;
		size_t best = SIZE_MAX;
		int ok = 0;

		if (parse_group(s, len, &g) < 0) {
			const struct pkg *p = &r->db->p[r->chosen[k]];

			return ep_error_set(err, EP_EINVAL, "package %s %s: malformed %s '%.*s'",
					    p->name, p->version, fname,
					    (int)(len > 200 ? 200 : len), s);
		}
		for (int i = 0; i < g.n && !ok; i++)
			ok = satisfied(r, &g.alts[i]);
		for (int i = 0; i < g.n && !ok && best == SIZE_MAX; i++)
			best = candidate(r, &g.alts[i]);
		if (!ok && best == SIZE_MAX) {
			cleanup_free char *ch = chain(r, k, err);

			return ep_error_set(
			    err, EP_EINVAL,
			    "cannot satisfy %s '%.*s' of %s: no archive of the image "
			    "serves it",
			    fname, (int)(len > 200 ? 200 : len), s, ch ? ch : "?");
		}
		if (!ok && choose(r, best, k, err) < 0)
			return -1;
		s = c ? c + 1 : e;
	}
	return 0;
}

/* The chosen package named name, else the first chosen one providing it. */
static size_t chosen_for(const struct rs *r, const char *name)
{
	size_t k = chosen_by_name(r, name), lo, hi;

	if (k != SIZE_MAX)
		return k;
	prov_range(r->db, name, &lo, &hi);
	for (size_t j = lo; j < hi; j++)
		for (k = 0; k < r->n; k++)
			if (r->chosen[k] == r->db->prov[j].pkg)
				return k;
	return SIZE_MAX;
}

/* Post-order DFS over chosen packages by their dependencies. */
static int order_visit(struct rs *r, size_t k, char *mark, size_t *out, size_t *n_out)
{
	const struct pkg *p = &r->db->p[r->chosen[k]];
	const char *fields[2] = {p->predepends, p->depends};

	if (mark[k])
		return 0;
	mark[k] = 1;
	for (int f = 0; f < 2; f++) {
		const char *s = fields[f], *e;

		if (!s)
			continue;
		e = s + strlen(s);
		while (s < e) {
			const char *c = memchr(s, ',', (size_t)(e - s));
			struct group g;

			if (parse_group(s, (size_t)((c ? c : e) - s), &g) == 0)
				for (int i = 0; i < g.n; i++) {
					size_t d = chosen_for(r, g.alts[i].name);

					if (d != SIZE_MAX)
						order_visit(r, d, mark, out, n_out);
				}
			s = c ? c + 1 : e;
		}
	}
	out[(*n_out)++] = r->chosen[k];
	return 0;
}

/* Does a Pre-Depends field name a package of the current stage (mark[k]
 * set for chosen[k])? */
static int in_stage(const struct rs *r, const char *field, const char *mark)
{
	const char *s = field, *e;

	if (!s)
		return 0;
	e = s + strlen(s);
	while (s < e) {
		const char *c = memchr(s, ',', (size_t)(e - s));
		struct group g;

		if (parse_group(s, (size_t)((c ? c : e) - s), &g) == 0)
			for (int i = 0; i < g.n; i++) {
				size_t d = chosen_for(r, g.alts[i].name);

				if (d != SIZE_MAX && mark[d])
					return 1;
			}
		s = c ? c + 1 : e;
	}
	return 0;
}

static json_t *deb_json(struct ep_apt_db *db, const struct pkg *p, struct ep_error *err)
{
	cleanup_free char *url = ep_asprintf(err, "%s/%s", db->uris[p->archive], p->filename);
	cleanup_free char *snap = NULL;
	json_t *o;

	if (!url)
		return NULL;
	if (db->snaps[p->archive]) {
		snap = ep_asprintf(err, "%s/%s", db->snaps[p->archive], p->filename);
		if (!snap)
			return NULL;
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s?}", "package", p->name, "version",
		      p->version, "architecture", p->arch, "filename", p->filename, "size",
		      (json_int_t)p->size, "sha256", p->sha256, "url", url, "snapshot", snap);
	if (!o)
		ep_error_oom(err);
	else if (!snap)
		json_object_set_new(o, "snapshot", json_null());
	return o;
}

json_t *ep_apt_db_resolve(struct ep_apt_db *db, char *const *req, size_t n, struct ep_error *err)
{
	struct rs r = {db, NULL, NULL, 0, 0, NULL};
	cleanup_free char *mark = NULL;
	cleanup_free size_t *order = NULL;
	size_t n_order = 0;
	json_t *out = NULL;

	if (db_index(db, err) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct atom a = {0};
		const char *eq = strchr(req[i], '=');
		size_t nl = eq ? (size_t)(eq - req[i]) : strlen(req[i]);
		size_t best;

		if (!nl || nl >= sizeof(a.name) || (eq && strlen(eq + 1) >= sizeof(a.ver))) {
			ep_error_set(err, EP_EINVAL, "bad package request '%s'", req[i]);
			goto fail;
		}
		memcpy(a.name, req[i], nl);
		if (eq) {
			strcpy(a.op, "=");
			snprintf(a.ver, sizeof(a.ver), "%s", eq + 1);
		}
		/* an installed package that satisfies the request stays; an
		 * explicit version is installed even over another one */
		if (satisfied(&r, &a))
			continue;
		best = candidate(&r, &a);
		if (best == SIZE_MAX) {
			ep_error_set(err, EP_EINVAL,
				     "package '%s' is not served by any archive of the image",
				     req[i]);
			goto fail;
		}
		if (choose(&r, best, SIZE_MAX, err) < 0)
			goto fail;
	}
	for (size_t k = 0; k < r.n; k++) {
		const struct pkg *p = &db->p[r.chosen[k]];

		if (resolve_field(&r, k, p->predepends, "Pre-Depends", err) < 0 ||
		    resolve_field(&r, k, db->p[r.chosen[k]].depends, "Depends", err) < 0)
			goto fail;
	}
	mark = ep_calloc(r.n ? r.n : 1, 1, err);
	order = ep_malloc((r.n ? r.n : 1) * sizeof(size_t), err);
	out = json_array();
	if (!mark || !order || !out) {
		ep_error_oom(err);
		goto fail;
	}
	/* requests in the order given, each after its dependencies */
	for (size_t k = 0; k < r.n; k++)
		order_visit(&r, k, mark, order, &n_order);
	/* dpkg unpacks a package only once its Pre-Depends are configured: a
	 * package that pre-depends on one of the current stage starts the
	 * next stage (one dpkg run each) */
	memset(mark, 0, r.n ? r.n : 1);
	for (size_t k = 0, stage = 0; k < n_order; k++) {
		const struct pkg *p = &db->p[order[k]];
		json_t *o;

		if (in_stage(&r, p->predepends, mark)) {
			stage++;
			memset(mark, 0, r.n);
		}
		mark[chosen_by_name(&r, p->name)] = 1;
		o = deb_json(db, p, err);
		if (!o || json_object_set_new(o, "stage", json_integer((json_int_t)stage)) < 0 ||
		    json_array_append_new(out, o) < 0)
			goto fail;
	}
	free(r.chosen);
	free(r.parent);
	return out;
fail:
	json_decref(out);
	free(r.chosen);
	free(r.parent);
	return NULL;
}
