/* lib/trust/sbom.c - SPDX 2.3 and CycloneDX 1.5 SBOMs from an image and its
 * lock. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "archive_dl.h"
#include "build.h"
#include "jsonutil.h"
#include "oci.h"
#include "trust/sbom.h"
#include "trust/sidecar.h"
#include "util.h"

#define STATUS_MAX (64u << 20)
#define DOC_MAX (1u << 20)

/* ---- the files an SBOM reads from the image ---- */

static const char *rel(const char *p)
{
	while (*p == '/' || (p[0] == '.' && p[1] == '/'))
		p += *p == '/' ? 1 : 2;
	return p;
}

static int wanted(const char *p)
{
	size_t n = strlen(p);

	if (!strcmp(p, "var/lib/dpkg/status") || !strcmp(p, "etc/os-release") ||
	    !strcmp(p, "usr/lib/os-release"))
		return 1;
	if (!strncmp(p, "usr/share/doc/", 14))
		return 1;
	return n > 19 && !strcmp(p + n - 19, ".dist-info/METADATA");
}

/* Removes from files/links what a whiteout in dir hides. */
static void whiteout(json_t *files, json_t *links, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	json_t *objs[2] = {files, links};

	for (int k = 0; k < 2; k++) {
		const char *key;
		json_t *v, *tmp;

		json_object_foreach_safe(objs[k], tmp, key, v)
		{
			int hit;

			if (!strcmp(base, ".wh..wh..opq"))
				hit = !strncmp(key, path, dlen) && (dlen == 0 || key[dlen] == '/');
			else {
				const char *name = base + 4;
				size_t nl = strlen(name);

				hit = (dlen == 0 ||
				       (!strncmp(key, path, dlen) && key[dlen] == '/')) &&
				      !strncmp(key + (dlen ? dlen + 1 : 0), name, nl) &&
				      (key[(dlen ? dlen + 1 : 0) + nl] == '\0' ||
				       key[(dlen ? dlen + 1 : 0) + nl] == '/');
			}
			if (hit)
				json_object_del(objs[k], key);
		}
	}
}

static int read_layer(const char *blob, json_t *files, json_t *links, struct ep_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	cleanup_json json_t *lf = json_object(), *ll = json_object(), *wh = json_array();
	int r, rc = -1;

	if (!a || !lf || !ll || !wh) {
		archive_read_free(a);
		return ep_error_set(err, EP_EENV, "cannot load libarchive");
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, blob, 1 << 16) != ARCHIVE_OK) {
		ep_error_set(err, EP_EINVAL, "layer '%s': %s", blob, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *p = rel(archive_entry_pathname(e) ?: "");
		const char *slash = strrchr(p, '/');
		const char *base = slash ? slash + 1 : p;
		int type = archive_entry_filetype(e);

		if (!strncmp(base, ".wh.", 4)) {
			json_array_append_new(wh, json_string(p));
			continue;
		}
		if (!wanted(p))
			continue;
		if (archive_entry_hardlink(e)) {
			json_t *src = json_object_get(lf, rel(archive_entry_hardlink(e)));

			if (!src)
				src = json_object_get(files, rel(archive_entry_hardlink(e)));
			if (src)
				json_object_set(lf, p, src);
		} else if (type == AE_IFLNK) {
			json_object_set_new(ll, p, json_string(archive_entry_symlink(e) ?: ""));
		} else if (type == AE_IFREG) {
			size_t cap = !strcmp(p, "var/lib/dpkg/status") ? STATUS_MAX : DOC_MAX;
			int64_t sz = archive_entry_size(e);
			size_t want = sz < 0 ? 0 : (size_t)sz > cap ? cap : (size_t)sz, got = 0;
			cleanup_free char *buf = ep_malloc(want + 1, err);

			if (!buf)
				goto out;
			while (got < want) {
				la_ssize_t n = archive_read_data(a, buf + got, want - got);

				if (n < 0) {
					ep_error_set(err, EP_EINVAL, "layer '%s': %s: %s", blob, p,
						     archive_error_string(a));
					goto out;
				}
				if (n == 0)
					break;
				got += (size_t)n;
			}
			json_object_set_new(lf, p, json_stringn_nocheck(buf, got));
		}
	}
	if (r != ARCHIVE_EOF) {
		ep_error_set(err, EP_EINVAL, "layer '%s': %s", blob, archive_error_string(a));
		goto out;
	}
	/* this layer's whiteouts hide the layers below, then its files land */
	{
		json_t *w;
		size_t i;
		const char *k;
		json_t *v;

		json_array_foreach (wh, i, w)
			whiteout(files, links, json_string_value(w));
		json_object_foreach (lf, k, v) {
			json_object_del(links, k);
			json_object_set(files, k, v);
		}
		json_object_foreach (ll, k, v) {
			json_object_del(files, k);
			json_object_set(links, k, v);
		}
	}
	rc = 0;
out:
	archive_read_free(a);
	return rc;
}

static int read_image(struct ep_store *s, const char *digest, json_t *files, json_t *links,
		      struct ep_error *err)
{
	cleanup_free char *text = NULL;
	cleanup_json json_t *m = NULL;
	json_t *l;
	size_t len, i;

	text = ep_layout_read_blob(s->root, digest, EP_MAX_MANIFEST_BYTES, &len, err);
	m = text ? ep_json_loadb(text, len, EP_MAX_MANIFEST_BYTES, digest, err) : NULL;
	if (!m)
		return -1;
	json_array_foreach (json_object_get(m, "layers"), i, l) {
		const char *d = json_string_value(json_object_get(l, "digest"));
		cleanup_free char *path = d ? ep_store_blob_path(s, d, err) : NULL;

		if (!path || read_layer(path, files, links, err) < 0)
			return ep_error_wrap(err, "image %s: layer %zu", digest, i + 1);
	}
	return 0;
}

/* ---- licenses ---- */

static const char *const spdx_ids[] = {
    "0BSD",
    "AFL-2.1",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-4-Clause",
    "BSD-4-Clause-UC",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "curl",
    "EPL-1.0",
    "EPL-2.0",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ICU",
    "IJG",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Libpng",
    "libtiff",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "SGI-B-2.0",
    "Sleepycat",
    "TCL",
    "Unicode-DFS-2016",
    "Unlicense",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
};

/* Debian's short names (copyright-format 1.0) that differ from SPDX's. */
static const char *const deb_map[][2] = {
    {"GPL-1", "GPL-1.0-only"},
    {"GPL-1+", "GPL-1.0-or-later"},
    {"GPL-2", "GPL-2.0-only"},
    {"GPL-2+", "GPL-2.0-or-later"},
    {"GPL-3", "GPL-3.0-only"},
    {"GPL-3+", "GPL-3.0-or-later"},
    {"LGPL-2", "LGPL-2.0-only"},
    {"LGPL-2+", "LGPL-2.0-or-later"},
    {"LGPL-2.1", "LGPL-2.1-only"},
    {"LGPL-2.1+", "LGPL-2.1-or-later"},
    {"LGPL-3", "LGPL-3.0-only"},
    {"LGPL-3+", "LGPL-3.0-or-later"},
    {"AGPL-3", "AGPL-3.0-only"},
    {"AGPL-3+", "AGPL-3.0-or-later"},
    {"GFDL-1.2", "GFDL-1.2-only"},
    {"GFDL-1.2+", "GFDL-1.2-or-later"},
    {"GFDL-1.3", "GFDL-1.3-only"},
    {"GFDL-1.3+", "GFDL-1.3-or-later"},
    {"Apache-2", "Apache-2.0"},
    {"Expat", "MIT"},
    {"Artistic", "Artistic-1.0-Perl"},
    {"BSD-2-clause", "BSD-2-Clause"},
    {"BSD-3-clause", "BSD-3-Clause"},
    {"BSD-4-clause", "BSD-4-Clause"},
    {"MPL-1.1+", "MPL-1.1"},
    {"MPL-2.0+", "MPL-2.0"},
    {"PSF-2", "PSF-2.0"},
    {"Python", "PSF-2.0"},
    {"CC0", "CC0-1.0"},
    {"zlib", "Zlib"},
    /* PyPI classifiers */
    {"MIT License", "MIT"},
    {"Apache Software License", "Apache-2.0"},
    {"ISC License (ISCL)", "ISC"},
    {"Python Software Foundation License", "PSF-2.0"},
    {"Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"},
    {"GNU General Public License v2 (GPLv2)", "GPL-2.0-only"},
    {"GNU General Public License v3 (GPLv3)", "GPL-3.0-only"},
    {"GNU Lesser General Public License v3 (LGPLv3)", "LGPL-3.0-only"},
    {"The Unlicense (Unlicense)", "Unlicense"},
};

/* The SPDX id for a license name, or a LicenseRef- added to refs. */
static char *map_license(const char *name, const char *where, json_t *refs, struct ep_error *err)
{
	char ref[128];
	size_t n = 0;

	for (size_t i = 0; i < EP_ARRAY_SIZE(deb_map); i++)
		if (!strcmp(name, deb_map[i][0]))
			return ep_strdup(deb_map[i][1], err);
	for (size_t i = 0; i < EP_ARRAY_SIZE(spdx_ids); i++)
		if (!strcasecmp(name, spdx_ids[i]))
			return ep_strdup(spdx_ids[i], err);
	n = (size_t)snprintf(ref, sizeof(ref), "LicenseRef-");
	for (const char *p = name; *p && n < sizeof(ref) - 1; p++)
		ref[n++] = isalnum((unsigned char)*p) || *p == '.' || *p == '-' ? *p : '-';
	ref[n] = '\0';
	if (!json_object_get(refs, ref))
		json_object_set_new(refs, ref,
				    json_sprintf("License '%s' as declared in %s", name, where));
	return ep_strdup(ref, err);
}

/* "GPL-2+ or Artistic" -> "(GPL-2.0-or-later OR Artistic-1.0-Perl)". */
static char *map_expression(const char *v, const char *where, json_t *refs, struct ep_error *err)
{
	cleanup_free char *copy = ep_strdup(v, err);
	char out[1024] = "";
	size_t terms = 0, n = 0;
	char *save = NULL, *tok;
	const char *op = NULL;

	if (!copy)
		return NULL;
	/* "with X exception" qualifies the term before it: dropped, the
	 * term stays (the exception only widens what is allowed) */
	{
		char *w = strstr(copy, " with ");

		if (w)
			*w = '\0';
	}
	for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		cleanup_free char *id = NULL;

		if (!strcasecmp(tok, "or") || !strcasecmp(tok, "and")) {
			op = !strcasecmp(tok, "or") ? " OR " : " AND ";
			continue;
		}
		id = map_license(tok, where, refs, err);
		if (!id)
			return NULL;
		n += (size_t)snprintf(out + n, n < sizeof(out) ? sizeof(out) - n : 0, "%s%s",
				      terms ? (op ? op : " AND ") : "", id);
		if (n >= sizeof(out))
			return NULL;
		terms++;
		op = NULL;
	}
	if (!terms)
		return NULL;
	return terms > 1 ? ep_asprintf(err, "(%s)", out) : ep_strdup(out, err);
}

/* Joins the distinct expressions of a list with AND. */
static char *join_and(json_t *list, struct ep_error *err)
{
	char *out = NULL;
	json_t *v;
	size_t i;

	json_array_foreach (list, i, v) {
		char *next = out ? ep_asprintf(err, "%s AND %s", out, json_string_value(v))
				 : ep_strdup(json_string_value(v), err);

		free(out);
		out = next;
		if (!out)
			return NULL;
	}
	return out;
}

static void add_unique(json_t *list, const char *s)
{
	json_t *v;
	size_t i;

	json_array_foreach (list, i, v)
		if (!strcmp(json_string_value(v), s))
			return;
	json_array_append_new(list, json_string(s));
}

char *ep_sbom_debian_license(const char *copyright, const char *pkg, json_t *refs,
			     struct ep_error *err)
{
	cleanup_json json_t *exprs = json_array(), *lrefs = json_object();
	cleanup_free char *where = ep_asprintf(err, "/usr/share/doc/%s/copyright", pkg);
	const char *p = copyright;
	int machine = 0, in_files = 0, first_para = 1;

	if (!exprs || !lrefs || !where)
		return NULL;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[512];

		snprintf(line, sizeof(line), "%.*s",
			 (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
		if (first_para && !strncasecmp(line, "Format:", 7) &&
		    (strstr(line, "copyright-format") || strstr(line, "dep5")))
			machine = 1;
		if (len == 0 || strspn(line, " \t") == strlen(line)) {
			first_para = 0;
			in_files = 0;
		} else if (!strncasecmp(line, "Files:", 6)) {
			in_files = 1;
		} else if (!strncasecmp(line, "License:", 8) && (in_files || first_para)) {
			const char *v = line + 8;
			cleanup_free char *e = NULL;

			while (*v == ' ' || *v == '\t')
				v++;
			if (*v) {
				e = map_expression(v, where, lrefs, err);
				if (e)
					add_unique(exprs, e);
			}
		}
		p += len + (eol ? 1 : 0);
	}
	if (!machine || !json_array_size(exprs))
		return NULL;
	/* only a machine-readable file's names become LicenseRef-s */
	json_object_update(refs, lrefs);
	return join_and(exprs, err);
}

/* A wheel's license from its METADATA. */
static char *wheel_license(const char *meta, const char *name, json_t *refs, struct ep_error *err)
{
	cleanup_json json_t *exprs = json_array();
	cleanup_free char *where = ep_asprintf(err, "the METADATA of wheel %s", name);
	cleanup_free char *plain = NULL;
	const char *p = meta;

	if (!exprs || !where)
		return NULL;
	while (*p && *p != '\n') { /* headers end at the first blank line */
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[512];

		snprintf(line, sizeof(line), "%.*s",
			 (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
		line[strcspn(line, "\r")] = '\0';
		if (!strncasecmp(line, "License-Expression:", 19)) {
			const char *v = line + 19 + strspn(line + 19, " ");
			/* already SPDX; only characters an expression has */
			if (*v && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					    "0123456789.-+() :") == strlen(v))
				return ep_strdup(v, err);
		} else if (!strncmp(line, "Classifier: License :: ", 23)) {
			const char *v = strrchr(line, ':') + 1;
			cleanup_free char *id = NULL;

			v += strspn(v, " ");
			if (*v && strcmp(v, "OSI Approved")) {
				id = map_license(v, where, refs, err);
				if (id)
					add_unique(exprs, id);
			}
		} else if (!strncasecmp(line, "License:", 8) && !plain) {
			const char *v = line + 8 + strspn(line + 8, " ");

			if (*v && strlen(v) < 64 && !strchr(v, '\n'))
				plain = ep_strdup(v, NULL);
		}
		p += len + (eol ? 1 : 0);
	}
	if (json_array_size(exprs))
		return join_and(exprs, err);
	if (plain)
		return map_expression(plain, where, refs, err);
	return NULL;
}

/* ---- components ---- */

/* A field of a dpkg status paragraph (p .. end), or "" . */
static void field(const char *p, const char *end, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);

	out[0] = '\0';
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (len > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;

			while (v < p + len && (*v == ' ' || *v == '\t'))
				v++;
			snprintf(out, n, "%.*s", (int)(p + len - v), v);
			return;
		}
		p += len + 1;
	}
}

/* purl-encodes what would break the purl's parse. */
static void purl_enc(const char *s, char *out, size_t n)
{
	size_t k = 0;

	for (; *s && k + 4 < n; s++) {
		if (strchr("?#@% /", *s))
			k += (size_t)snprintf(out + k, n - k, "%%%02X", (unsigned char)*s);
		else
			out[k++] = *s;
	}
	out[k] = '\0';
}

static const char *file_text(json_t *files, json_t *links, const char *path, int depth)
{
	json_t *v = json_object_get(files, path);
	const char *t;

	if (v)
		return json_string_value(v);
	t = json_string_value(json_object_get(links, path));
	if (t && depth < 8) {
		char buf[512];
		const char *slash = strrchr(path, '/');

		if (t[0] == '/')
			snprintf(buf, sizeof(buf), "%s", rel(t));
		else
			snprintf(buf, sizeof(buf), "%.*s/%s", slash ? (int)(slash - path) : 0, path,
				 t);
		return file_text(files, links, buf, depth + 1);
	}
	return NULL;
}

/* usr/share/doc/PKG/copyright, following a symlinked PKG directory. */
static const char *copyright_of(json_t *files, json_t *links, const char *pkg)
{
	char path[512];
	const char *t;

	snprintf(path, sizeof(path), "usr/share/doc/%s/copyright", pkg);
	t = file_text(files, links, path, 0);
	if (t)
		return t;
	snprintf(path, sizeof(path), "usr/share/doc/%s", pkg);
	t = json_string_value(json_object_get(links, path));
	if (t && !strchr(t, '/')) {
		snprintf(path, sizeof(path), "usr/share/doc/%s/copyright", t);
		return file_text(files, links, path, 0);
	}
	return NULL;
}

static int add_debs(json_t *comps, json_t *files, json_t *links, const char *distro, json_t *refs,
		    struct ep_error *err)
{
	const char *st = json_string_value(json_object_get(files, "var/lib/dpkg/status"));
	const char *p = st;

	while (p && *p) {
		const char *end = strstr(p, "\n\n");
		char name[256], ver[256], arch[64], status[128], src[256], purl[1280], ev[512];
		cleanup_free char *lic = NULL;
		const char *cr;
		json_t *c;

		if (!end)
			end = p + strlen(p);
		field(p, end, "Package", name, sizeof(name));
		field(p, end, "Version", ver, sizeof(ver));
		field(p, end, "Architecture", arch, sizeof(arch));
		field(p, end, "Status", status, sizeof(status));
		field(p, end, "Source", src, sizeof(src));
		p = *end ? end + 2 : end;
		if (!name[0] || !ver[0] || strlen(status) < 10 ||
		    strcmp(status + strlen(status) - 10, " installed"))
			continue;
		purl_enc(ver, ev, sizeof(ev));
		snprintf(purl, sizeof(purl), "pkg:deb/debian/%s@%s?arch=%s&distro=%s", name, ev,
			 arch[0] ? arch : "amd64", distro);
		cr = copyright_of(files, links, name);
		if (cr) {
			lic = ep_sbom_debian_license(cr, name, refs, err);
			if (!lic && err && err->code)
				return -1;
		}
		c = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", "deb", "name", name, "version",
			      ver, "purl", purl, "arch", arch[0] ? arch : "amd64");
		if (!c)
			return ep_error_oom(err);
		if (lic)
			json_object_set_new(c, "license", json_string(lic));
		if (src[0])
			json_object_set_new(c, "source", json_string(src));
		json_array_append_new(comps, c);
	}
	return 0;
}

static void norm_name(const char *in, char *out, size_t n)
{
	size_t k = 0;

	for (; *in && k + 1 < n; in++)
		out[k++] = *in == '_' || *in == '.' ? '-' : (char)tolower((unsigned char)*in);
	out[k] = '\0';
}

/* METADATA text of the installed wheel `name`, by normalized name. */
static const char *wheel_meta(json_t *files, const char *name)
{
	char want[256], got[256];
	const char *k;
	json_t *v;

	norm_name(name, want, sizeof(want));
	json_object_foreach (files, k, v) {
		const char *d = strstr(k, ".dist-info/METADATA");
		const char *slash;
		const char *dash;

		if (!d)
			continue;
		slash = k;
		for (const char *q = k; q < d; q++)
			if (*q == '/')
				slash = q + 1;
		dash = memchr(slash, '-', (size_t)(d - slash));
		if (!dash)
			continue;
		snprintf(got, sizeof(got), "%.*s", (int)(dash - slash), slash);
		norm_name(got, got, sizeof(got));
		if (!strcmp(got, want))
			return json_string_value(v);
	}
	return NULL;
}

static int add_lock_inputs(json_t *comps, json_t *lock, json_t *files, json_t *refs,
			   struct ep_error *err)
{
	json_t *in = json_object_get(lock, "inputs"), *base = json_object_get(in, "base"), *l, *w;
	const char *kind = json_string_value(json_object_get(base, "kind")) ?: "scratch";
	size_t i, j;

	if (!strcmp(kind, "rootfs"))
		json_array_append_new(comps, json_pack("{s:s, s:s, s:s, s:O}", "kind", "base",
						       "name", "base rootfs", "version", "tar",
						       "sha256", json_object_get(base, "sha256")));
	else if (!strcmp(kind, "oci") || !strcmp(kind, "image")) {
		const char *d = json_string_value(json_object_get(base, "digest")) ?: "";
		const char *ref = json_string_value(json_object_get(base, "ref"));
		char purl[1024], enc[128];

		purl_enc(d, enc, sizeof(enc));
		snprintf(purl, sizeof(purl), "pkg:oci/base@%s", enc);
		json_array_append_new(comps,
				      json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", "base", "name",
						ref ? ref : "base image", "version", d, "sha256",
						strlen(d) > 7 ? d + 7 : d, "purl", purl));
	} else if (!strcmp(kind, "debian")) {
		cleanup_free char *ver = ep_asprintf(
		    err, "%s %s", json_string_value(json_object_get(base, "suite")) ?: "?",
		    json_string_value(json_object_get(base, "variant")) ?: "?");

		if (!ver)
			return -1;
		json_array_append_new(comps,
				      json_pack("{s:s, s:s, s:s, s:O}", "kind", "base", "name",
						"debian (mmdebstrap)", "version", ver, "url",
						json_object_get(base, "mirror")));
	}
	json_array_foreach (json_object_get(in, "layers"), i, l) {
		const char *lk = json_string_value(json_object_get(l, "kind")) ?: "";

		if (!strcmp(lk, "pip"))
			json_array_foreach (json_object_get(l, "wheels"), j, w) {
				const char *name =
				    json_string_value(json_object_get(w, "name")) ?: "?";
				const char *ver =
				    json_string_value(json_object_get(w, "version")) ?: "?";
				const char *meta = wheel_meta(files, name);
				cleanup_free char *lic =
				    meta ? wheel_license(meta, name, refs, err) : NULL;
				char purl[768], lname[256];
				json_t *c;

				norm_name(name, lname, sizeof(lname));
				snprintf(purl, sizeof(purl), "pkg:pypi/%s@%s", lname, ver);
				c = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "kind", "wheel",
					      "name", name, "version", ver, "purl", purl, "sha256",
					      json_object_get(w, "sha256"), "url",
					      json_object_get(w, "url"));
				if (!c)
					return ep_error_oom(err);
				if (lic)
					json_object_set_new(c, "license", json_string(lic));
				json_array_append_new(comps, c);
			}
		if (!strcmp(lk, "fetch"))
			json_array_foreach (json_object_get(l, "items"), j, w) {
				const char *url =
				    json_string_value(json_object_get(w, "url")) ?: "";
				const char *slash = strrchr(url, '/');

				json_array_append_new(
				    comps, json_pack("{s:s, s:s, s:s, s:O, s:s}", "kind", "file",
						     "name", slash && slash[1] ? slash + 1 : url,
						     "version", "NOASSERTION", "sha256",
						     json_object_get(w, "sha256"), "url", url));
			}
	}
	return 0;
}

static void distro_of(json_t *files, json_t *links, char *out, size_t n)
{
	const char *t = file_text(files, links, "etc/os-release", 0);

	if (!t)
		t = file_text(files, links, "usr/lib/os-release", 0);
	snprintf(out, n, "debian-12");
	if (t) {
		const char *v = strstr(t, "\nVERSION_ID=");

		if (!v && !strncmp(t, "VERSION_ID=", 11))
			v = t - 1;
		if (v) {
			char id[32];

			v += 12;
			if (*v == '"')
				v++;
			snprintf(id, sizeof(id), "%.*s", (int)strcspn(v, "\"\n"), v);
			if (id[0] && strspn(id, "0123456789.") == strlen(id))
				snprintf(out, n, "debian-%s", id);
		}
	}
}

json_t *ep_sbom_collect(struct ep_store *s, const char *digest, const char *name,
			struct ep_error *err)
{
	cleanup_free char *ltext = NULL;
	cleanup_json json_t *lock = NULL, *files = json_object(), *links = json_object(),
			    *refs = json_object(), *comps = json_array();
	ep_digest ld;
	size_t llen;
	char created[32], distro[48];

	ltext = ep_sidecar_lock(s, digest, &llen, ld, err);
	if (!ltext)
		return NULL;
	lock = ep_json_loadb(ltext, llen, EP_SIDECAR_MAX_BLOB, "lock", err);
	if (!lock)
		return NULL;
	if (!files || !links || !refs || !comps) {
		ep_error_oom(err);
		return NULL;
	}
	if (read_image(s, digest, files, links, err) < 0)
		return NULL;
	distro_of(files, links, distro, sizeof(distro));
	if (add_debs(comps, files, links, distro, refs, err) < 0 ||
	    add_lock_inputs(comps, lock, files, refs, err) < 0)
		return NULL;
	ep_rfc3339(json_integer_value(json_object_get(lock, "source_date_epoch")), created);
	if (!name)
		name = json_string_value(json_object_get(lock, "manifest")) ?: "image";
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O}", "image", digest, "name", name,
			 "created", created, "lock_digest", ld, "distro", distro, "components",
			 comps, "license_refs", refs);
}

/* ---- formats ---- */

static const char *purpose(const char *kind)
{
	return !strcmp(kind, "file") ? "FILE" : !strcmp(kind, "base") ? "CONTAINER" : "LIBRARY";
}

static json_t *spdx(json_t *c, struct ep_error *err)
{
	const char *img = json_string_value(json_object_get(c, "image"));
	cleanup_free char *ns =
	    ep_asprintf(err, "https://spdx.org/spdxdocs/envpin-%s", ep_digest_hex(img));
	char ipurl[160];
	json_t *doc, *pkgs, *rels, *e, *x;
	const char *k;
	size_t i;

	if (!ns)
		return NULL;
	snprintf(ipurl, sizeof(ipurl), "pkg:oci/image@sha256%%3A%s", ep_digest_hex(img));
	doc = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:[s]}, s:[], s:[], s:[]}", "spdxVersion",
	    "SPDX-2.3", "dataLicense", "CC0-1.0", "SPDXID", "SPDXRef-DOCUMENT", "name",
	    json_string_value(json_object_get(c, "name")), "documentNamespace", ns, "creationInfo",
	    "created", json_string_value(json_object_get(c, "created")), "creators",
	    "Tool: envpin-" EP_VERSION, "packages", "relationships", "hasExtractedLicensingInfos");
	if (!doc) {
		ep_error_oom(err);
		return NULL;
	}
	pkgs = json_object_get(doc, "packages");
	rels = json_object_get(doc, "relationships");
	json_array_append_new(
	    pkgs, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:[{s:s, s:s}], s:[{s:s, "
			    "s:s, s:s}], s:s}",
			    "SPDXID", "SPDXRef-Image", "name",
			    json_string_value(json_object_get(c, "name")), "versionInfo", img,
			    "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
			    "licenseConcluded", "NOASSERTION", "licenseDeclared", "NOASSERTION",
			    "copyrightText", "NOASSERTION", "checksums", "algorithm", "SHA256",
			    "checksumValue", ep_digest_hex(img), "externalRefs",
			    "referenceCategory", "PACKAGE-MANAGER", "referenceType", "purl",
			    "referenceLocator", ipurl, "primaryPackagePurpose", "CONTAINER"));
	json_array_append_new(rels, json_pack("{s:s, s:s, s:s}", "spdxElementId",
					      "SPDXRef-DOCUMENT", "relationshipType", "DESCRIBES",
					      "relatedSpdxElement", "SPDXRef-Image"));
	json_array_foreach (json_object_get(c, "components"), i, e) {
		char id[64];
		const char *kind = json_string_value(json_object_get(e, "kind"));
		const char *lic = json_string_value(json_object_get(e, "license"));
		const char *sha = json_string_value(json_object_get(e, "sha256"));
		const char *url = json_string_value(json_object_get(e, "url"));
		const char *purl = json_string_value(json_object_get(e, "purl"));
		json_t *p;

		snprintf(id, sizeof(id), "SPDXRef-%s-%zu", kind, i + 1);
		p = json_pack("{s:s, s:O, s:O, s:s, s:b, s:s, s:s, s:s, s:s}", "SPDXID", id, "name",
			      json_object_get(e, "name"), "versionInfo",
			      json_object_get(e, "version"), "downloadLocation",
			      url && (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7))
				  ? url
				  : "NOASSERTION",
			      "filesAnalyzed", 0, "licenseConcluded", "NOASSERTION",
			      "licenseDeclared", lic ? lic : "NOASSERTION", "copyrightText",
			      "NOASSERTION", "primaryPackagePurpose", purpose(kind));
		if (!p) {
			json_decref(doc);
			ep_error_oom(err);
			return NULL;
		}
		if (sha && strlen(sha) == 64)
			json_object_set_new(
			    p, "checksums",
			    json_pack("[{s:s, s:s}]", "algorithm", "SHA256", "checksumValue", sha));
		if (purl)
			json_object_set_new(p, "externalRefs",
					    json_pack("[{s:s, s:s, s:s}]", "referenceCategory",
						      "PACKAGE-MANAGER", "referenceType", "purl",
						      "referenceLocator", purl));
		json_array_append_new(pkgs, p);
		json_array_append_new(rels, json_pack("{s:s, s:s, s:s}", "spdxElementId",
						      "SPDXRef-Image", "relationshipType",
						      "CONTAINS", "relatedSpdxElement", id));
	}
	json_object_foreach (json_object_get(c, "license_refs"), k, x)
		json_array_append_new(json_object_get(doc, "hasExtractedLicensingInfos"),
				      json_pack("{s:s, s:s, s:O}", "licenseId", k, "name", k + 11,
						"extractedText", x));
	return doc;
}

static json_t *cyclonedx(json_t *c, struct ep_error *err)
{
	const char *img = json_string_value(json_object_get(c, "image"));
	const char *h = ep_digest_hex(img);
	char uuid[48], ipurl[160];
	json_t *doc, *comps, *deps, *e;
	size_t i;

	/* a UUID derived from the image digest: the same image, the same SBOM */
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-5%.3s-8%.3s-%.12s", h, h + 8, h + 13, h + 17,
		 h + 20);
	snprintf(ipurl, sizeof(ipurl), "pkg:oci/image@sha256%%3A%s", h);
	doc = json_pack("{s:s, s:s, s:s+, s:i, s:{s:s, s:{s:[{s:s, s:s, s:s}]}, s:{s:s, s:s, s:s, "
			"s:s, s:s, s:[{s:s, s:s}]}}, s:[], s:[{s:s, s:[]}]}",
			"bomFormat", "CycloneDX", "specVersion", "1.5", "serialNumber",
			"urn:uuid:", uuid, "version", 1, "metadata", "timestamp",
			json_string_value(json_object_get(c, "created")), "tools", "components",
			"type", "application", "name", "envpin", "version", EP_VERSION, "component",
			"type", "container", "bom-ref", "image", "name",
			json_string_value(json_object_get(c, "name")), "version", img, "purl",
			ipurl, "hashes", "alg", "SHA-256", "content", h, "components",
			"dependencies", "ref", "image", "dependsOn");
	if (!doc) {
		ep_error_oom(err);
		return NULL;
	}
	comps = json_object_get(doc, "components");
	deps =
	    json_object_get(json_array_get(json_object_get(doc, "dependencies"), 0), "dependsOn");
	json_array_foreach (json_object_get(c, "components"), i, e) {
		const char *kind = json_string_value(json_object_get(e, "kind"));
		const char *lic = json_string_value(json_object_get(e, "license"));
		const char *sha = json_string_value(json_object_get(e, "sha256"));
		const char *url = json_string_value(json_object_get(e, "url"));
		const char *purl = json_string_value(json_object_get(e, "purl"));
		char ref[64];
		json_t *o;

		snprintf(ref, sizeof(ref), "%s-%zu", kind, i + 1);
		o = json_pack("{s:s, s:s, s:O, s:O}", "type",
			      !strcmp(kind, "file")   ? "file"
			      : !strcmp(kind, "base") ? "container"
						      : "library",
			      "bom-ref", ref, "name", json_object_get(e, "name"), "version",
			      json_object_get(e, "version"));
		if (!o) {
			json_decref(doc);
			ep_error_oom(err);
			return NULL;
		}
		if (purl)
			json_object_set_new(o, "purl", json_string(purl));
		if (sha && strlen(sha) == 64)
			json_object_set_new(
			    o, "hashes",
			    json_pack("[{s:s, s:s}]", "alg", "SHA-256", "content", sha));
		if (lic)
			json_object_set_new(o, "licenses", json_pack("[{s:s}]", "expression", lic));
		if (url && *url)
			json_object_set_new(
			    o, "externalReferences",
			    json_pack("[{s:s, s:s}]", "type", "distribution", "url", url));
		json_array_append_new(comps, o);
		json_array_append_new(deps, json_string(ref));
	}
	return doc;
}

json_t *ep_sbom_format(json_t *collected, enum ep_sbom_format fmt, struct ep_error *err)
{
	return fmt == EP_SBOM_CYCLONEDX ? cyclonedx(collected, err) : spdx(collected, err);
}
