/* lib/apt/control.c - deb822 control paragraphs and dpkg version order. */
#include "apt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ep_apt_parse_control(const char *buf, size_t len, const char *what, ep_apt_para_fn fn,
			 void *ctx, struct ep_error *err)
{
	struct ep_apt_field f[EP_APT_MAX_FIELDS];
	size_t nf = 0, pos = 0;
	int line = 0, first = 0;

	while (pos <= len) {
		const char *p = buf + pos;
		const char *nl = pos < len ? memchr(p, '\n', len - pos) : NULL;
		size_t ll = nl ? (size_t)(nl - p) : len - pos;
		int blank = 1;

		line++;
		if (pos == len && ll == 0) {
			/* end of input */
		} else {
			for (size_t i = 0; i < ll; i++)
				if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
					blank = 0;
					break;
				}
		}
		if (blank) {
			if (nf && fn(ctx, f, nf, first, err) < 0)
				return -1;
			nf = 0;
			if (!nl)
				break;
			pos += ll + 1;
			continue;
		}
		if (p[0] == '#') {
			/* comment (deb822 .sources files allow them) */
		} else if (p[0] == ' ' || p[0] == '\t') {
			if (!nf)
				return ep_error_set(err, EP_EINVAL,
						    "%s:%d: continuation line outside a field",
						    what, line);
			/* extend the last field's value over this line */
			f[nf - 1].value_len = (size_t)(p + ll - f[nf - 1].value);
		} else {
			const char *colon = memchr(p, ':', ll);
			const char *v;

			if (!colon || colon == p)
				return ep_error_set(err, EP_EINVAL,
						    "%s:%d: expected 'Field: value'", what, line);
			if (nf == EP_APT_MAX_FIELDS)
				return ep_error_set(err, EP_EINVAL,
						    "%s:%d: more than %d fields in one paragraph",
						    what, line, EP_APT_MAX_FIELDS);
			if (!nf)
				first = line;
			f[nf].name = p;
			f[nf].name_len = (size_t)(colon - p);
			v = colon + 1;
			while (v < p + ll && (*v == ' ' || *v == '\t'))
				v++;
			f[nf].value = v;
			f[nf].value_len = (size_t)(p + ll - v);
			nf++;
		}
		if (!nl)
			break;
		pos += ll + 1;
	}
	if (nf && fn(ctx, f, nf, first, err) < 0)
		return -1;
	return 0;
}

const struct ep_apt_field *ep_apt_field_get(const struct ep_apt_field *f, size_t n,
					    const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (f[i].name_len == nl && !strncasecmp(f[i].name, name, nl))
			return &f[i];
	return NULL;
}

/* dpkg's order of one character in a non-digit run: '~' first, then the
 * end of the run, then letters, then everything else. */
static int order(int c)
{
	if (isdigit(c))
		return 0;
	if (isalpha(c))
		return c;
	if (c == '~')
		return -1;
	if (c)
		return c + 256;
	return 0;
}

static int verrevcmp(const char *a, const char *b)
{
	while (*a || *b) {
		int first_diff = 0;

		while ((*a && !isdigit((unsigned char)*a)) || (*b && !isdigit((unsigned char)*b))) {
			int ac = order((unsigned char)*a), bc = order((unsigned char)*b);

			if (ac != bc)
				return ac - bc;
			a++;
			b++;
		}
		while (*a == '0')
			a++;
		while (*b == '0')
			b++;
		while (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			if (!first_diff)
				first_diff = *a - *b;
			a++;
			b++;
		}
		if (isdigit((unsigned char)*a))
			return 1;
		if (isdigit((unsigned char)*b))
			return -1;
		if (first_diff)
			return first_diff;
	}
	return 0;
}

/* Splits "[epoch:]upstream[-revision]" into parts of buf (a copy of v). */
static void split_version(char *buf, unsigned long *epoch, char **up, char **rev)
{
	char *colon = strchr(buf, ':'), *dash;

	*epoch = 0;
	*up = buf;
	if (colon) {
		*epoch = strtoul(buf, NULL, 10);
		*up = colon + 1;
	}
	dash = strrchr(*up, '-');
	if (dash) {
		*dash = 0;
		*rev = dash + 1;
	} else {
		*rev = "";
	}
}

int ep_apt_vercmp(const char *a, const char *b)
{
	char ab[256], bb[256];
	unsigned long ea, eb;
	char *ua, *ra, *ub, *rb;
	int r;

	/* versions are short; a longer one compares by its first 255 bytes */
	snprintf(ab, sizeof(ab), "%s", a);
	snprintf(bb, sizeof(bb), "%s", b);
	split_version(ab, &ea, &ua, &ra);
	split_version(bb, &eb, &ub, &rb);
	if (ea != eb)
		return ea < eb ? -1 : 1;
	r = verrevcmp(ua, ub);
	if (r)
		return r;
	return verrevcmp(ra, rb);
}

int ep_apt_version_satisfies(const char *v, const char *op, const char *ref)
{
	int c = ep_apt_vercmp(v, ref);

	if (!strcmp(op, "<<"))
		return c < 0;
	if (!strcmp(op, "<=") || !strcmp(op, "<"))
		return c <= 0;
	if (!strcmp(op, "="))
		return c == 0;
	if (!strcmp(op, ">=") || !strcmp(op, ">"))
		return c >= 0;
	if (!strcmp(op, ">>"))
		return c > 0;
	return 0;
}
