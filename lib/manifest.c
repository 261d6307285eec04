/* lib/manifest.c - envpin manifest v1: load, validate, resolve paths.
 *
 * Two passes over the text: a small scanner (the "position indexer") records
 * the line of every value by its field path, and finds duplicate keys and
 * over-deep nesting with a line and a path; then jansson parses it and the
 * validator walks the tree, naming positions from the index. */
#include "manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "digest.h"
#include "jsonutil.h"
#include "util.h"

/* A legitimate manifest has a few thousand values; past this the index stops
 * growing (later values get no line) so that a hostile 1 MiB file of tiny
 * values cannot make it allocate hundreds of MiB. */
#define INDEX_MAX_ENTRIES 65536
#define NAME_MAX_LEN 128
#define IMAGE_PATH_MAX 4096

/* ---- field paths: "layers[1].copy[0].dest" ------------------------------ */

struct pbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static bool pbuf_reserve(struct pbuf *p, size_t more)
{
	char *ns;
	size_t ncap;

	if (p->oom)
		return false;
	if (p->len + more + 1 <= p->cap)
		return true;
	ncap = p->cap ? p->cap : 128;
	while (ncap < p->len + more + 1)
		ncap *= 2;
	ns = realloc(p->s, ncap);
	if (!ns) {
		p->oom = true;
		return false;
	}
	p->s = ns;
	p->cap = ncap;
	return true;
}

static void pbuf_append(struct pbuf *p, const char *s, size_t n)
{
	if (!pbuf_reserve(p, n))
		return;
	memcpy(p->s + p->len, s, n);
	p->len += n;
	p->s[p->len] = '\0';
}

static bool plain_key(const char *k, size_t n)
{
	if (n == 0 || !((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') || k[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Appends one object key; returns the length to pop back to.  Keys that are
 * not identifiers are written ["..."] so that distinct structures never
 * render to the same path (the index relies on that). */
static size_t path_push_key(struct pbuf *p, const char *k, size_t n)
{
	size_t mark = p->len;

	if (plain_key(k, n)) {
		if (p->len)
			pbuf_append(p, ".", 1);
		pbuf_append(p, k, n);
		return mark;
	}
	pbuf_append(p, "[\"", 2);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			pbuf_append(p, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			pbuf_append(p, esc, 4);
		} else {
			pbuf_append(p, (const char *)&k[i], 1);
		}
	}
	pbuf_append(p, "\"]", 2);
	return mark;
}

static size_t path_push_index(struct pbuf *p, size_t i)
{
	size_t mark = p->len;
	char b[32];
	int n = snprintf(b, sizeof(b), "[%zu]", i);

	pbuf_append(p, b, (size_t)n);
	return mark;
}

static void path_pop(struct pbuf *p, size_t mark)
{
	p->len = mark;
	if (p->s)
		p->s[mark] = '\0';
}

static const char *path_str(const struct pbuf *p)
{
	return p->s ? p->s : "";
}

/* ---- position indexer --------------------------------------------------- */

enum scan_status { SCAN_OK, SCAN_SYNTAX, SCAN_DEEP, SCAN_DUP, SCAN_NUL, SCAN_OOM };

struct scanner {
	const char *buf;
	size_t len, pos;
	int line;
	int depth;
	enum scan_status st;
	int bad_line;     /* SCAN_DEEP / SCAN_DUP / SCAN_NUL: where */
	char *bad_path;   /* and which field */
	char *bad_key;    /* SCAN_DUP: the repeated key */
	struct pbuf path;
	struct pbuf key;  /* decoded key of the member being read */
	json_t *lines;    /* path -> line */
	size_t n_entries;
};

static void scan_bad_here(struct scanner *s, enum scan_status st);

static int scan_fail(struct scanner *s, enum scan_status st)
{
	if (s->st == SCAN_OK)
		s->st = st;
	return -1;
}

static void scan_ws(struct scanner *s)
{
	while (s->pos < s->len) {
		char c = s->buf[s->pos];

		if (c == '\n')
			s->line++;
		else if (c != ' ' && c != '\t' && c != '\r')
			break;
		s->pos++;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int scan_u4(struct scanner *s, unsigned *out)
{
	unsigned v = 0;

	if (s->len - s->pos < 4)
		return scan_fail(s, SCAN_SYNTAX);
	for (int i = 0; i < 4; i++) {
		int h = hexval(s->buf[s->pos + (size_t)i]);

		if (h < 0)
			return scan_fail(s, SCAN_SYNTAX);
		v = v * 16 + (unsigned)h;
	}
	s->pos += 4;
	*out = v;
	return 0;
}

static void put_utf8(struct pbuf *o, unsigned cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	pbuf_append(o, b, n);
}

/* Reads a string at s->pos (on the quote).  Decodes it into out when out is
 * non-NULL, so that keys compare as jansson compares them ("a" == "\u0061"). */
static int scan_string(struct scanner *s, struct pbuf *out)
{
	s->pos++;
	for (;;) {
		unsigned char c;

		if (s->pos >= s->len)
			return scan_fail(s, SCAN_SYNTAX);
		c = (unsigned char)s->buf[s->pos];
		if (c == '"') {
			s->pos++;
			break;
		}
		if (c < 0x20)
			return scan_fail(s, SCAN_SYNTAX);
		if (c != '\\') {
			if (out)
				pbuf_append(out, (const char *)&s->buf[s->pos], 1);
			s->pos++;
			continue;
		}
		if (++s->pos >= s->len)
			return scan_fail(s, SCAN_SYNTAX);
		c = (unsigned char)s->buf[s->pos++];
		static const char esc_in[] = "\"\\/bfnrt";
		static const char esc_out[] = "\"\\/\b\f\n\r\t";
		const char *simple = c ? strchr(esc_in, c) : NULL;
		if (simple) {
			if (out)
				pbuf_append(out, &esc_out[simple - esc_in], 1);
			continue;
		}
		if (c != 'u')
			return scan_fail(s, SCAN_SYNTAX);
		unsigned cp, lo;
		if (scan_u4(s, &cp) < 0)
			return -1;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (s->len - s->pos < 2 || s->buf[s->pos] != '\\' || s->buf[s->pos + 1] != 'u')
				return scan_fail(s, SCAN_SYNTAX);
			s->pos += 2;
			if (scan_u4(s, &lo) < 0)
				return -1;
			if (lo < 0xdc00 || lo > 0xdfff)
				return scan_fail(s, SCAN_SYNTAX);
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		} else if (cp >= 0xdc00 && cp <= 0xdfff) {
			return scan_fail(s, SCAN_SYNTAX);
		}
		/* jansson refuses NUL too (no JSON_ALLOW_NUL), but its message
		 * names its own flag rather than the field */
		if (cp == 0) {
			scan_bad_here(s, SCAN_NUL);
			return -1;
		}
		if (out)
			put_utf8(out, cp);
	}
	if (out && out->oom)
		return scan_fail(s, SCAN_OOM);
	return 0;
}

static void scan_bad_here(struct scanner *s, enum scan_status st)
{
	if (s->st != SCAN_OK)
		return;
	s->st = st;
	s->bad_line = s->line;
	s->bad_path = strdup(path_str(&s->path));
	/* scan_record runs before a member's value is descended into, so the
	 * last decoded key is this member's */
	s->bad_key = strdup(path_str(&s->key));
	if (!s->bad_path || !s->bad_key)
		s->st = SCAN_OOM;
}

static int scan_value(struct scanner *s);

static int scan_record(struct scanner *s)
{
	const char *p = path_str(&s->path);

	if (s->path.oom)
		return scan_fail(s, SCAN_OOM);
	if (json_object_get(s->lines, p)) {
		scan_bad_here(s, SCAN_DUP);
		return -1;
	}
	if (s->n_entries >= INDEX_MAX_ENTRIES)
		return 0;
	/* Keys are UTF-8 checked by jansson's parser later; a file it refuses
	 * never reaches the validator, so no check is needed here. */
	if (json_object_set_new_nocheck(s->lines, p, json_integer(s->line)) < 0)
		return scan_fail(s, SCAN_OOM);
	s->n_entries++;
	return 0;
}

static int scan_container(struct scanner *s, bool object)
{
	size_t i = 0;
	char close = object ? '}' : ']';

	if (++s->depth > EP_JSON_MAX_DEPTH) {
		scan_bad_here(s, SCAN_DEEP);
		return -1;
	}
	s->pos++;
	scan_ws(s);
	if (s->pos < s->len && s->buf[s->pos] == close) {
		s->pos++;
		s->depth--;
		return 0;
	}
	for (;; i++) {
		size_t mark;

		scan_ws(s);
		if (object) {
			if (s->pos >= s->len || s->buf[s->pos] != '"')
				return scan_fail(s, SCAN_SYNTAX);
			path_pop(&s->key, 0);
			if (scan_string(s, &s->key) < 0)
				return -1;
			scan_ws(s);
			if (s->pos >= s->len || s->buf[s->pos] != ':')
				return scan_fail(s, SCAN_SYNTAX);
			s->pos++;
			scan_ws(s);
			mark = path_push_key(&s->path, path_str(&s->key), s->key.len);
		} else {
			mark = path_push_index(&s->path, i);
		}
		if (scan_value(s) < 0)
			return -1;
		path_pop(&s->path, mark);
		scan_ws(s);
		if (s->pos >= s->len)
			return scan_fail(s, SCAN_SYNTAX);
		if (s->buf[s->pos] == ',') {
			s->pos++;
			continue;
		}
		if (s->buf[s->pos] != close)
			return scan_fail(s, SCAN_SYNTAX);
		s->pos++;
		s->depth--;
		return 0;
	}
}

static int scan_value(struct scanner *s)
{
	char c;

	scan_ws(s);
	if (s->pos >= s->len)
		return scan_fail(s, SCAN_SYNTAX);
	if (scan_record(s) < 0)
		return -1;
	c = s->buf[s->pos];
	if (c == '{' || c == '[')
		return scan_container(s, c == '{');
	if (c == '"')
		return scan_string(s, NULL);
	if (c == '-' || (c >= '0' && c <= '9')) {
		/* Number syntax is jansson's to judge; only its extent matters. */
		while (s->pos < s->len && strchr("+-.eE0123456789", s->buf[s->pos]) && s->buf[s->pos])
			s->pos++;
		return 0;
	}
	static const char *const lits[] = {"true", "false", "null"};
	for (size_t i = 0; i < EP_ARRAY_SIZE(lits); i++) {
		size_t n = strlen(lits[i]);

		if (s->len - s->pos >= n && memcmp(s->buf + s->pos, lits[i], n) == 0) {
			s->pos += n;
			return 0;
		}
	}
	return scan_fail(s, SCAN_SYNTAX);
}

/* Indexes buf.  Returns the path->line object, or NULL with *err set for
 * duplicate keys and over-deep nesting (errors jansson reports without a
 * field path).  A syntax error is not reported here: jansson's message, with
 * line and column, is better, so the caller goes on to the parser. */
static json_t *index_text(const char *file, const char *buf, size_t len, struct ep_error *err)
{
	struct scanner s = {.buf = buf, .len = len, .line = 1};
	json_t *lines = json_object();

	if (!lines) {
		ep_error_oom(err);
		return NULL;
	}
	s.lines = lines;
	scan_value(&s);
	free(s.path.s);
	free(s.key.s);
	switch (s.st) {
	case SCAN_OK:
	case SCAN_SYNTAX:
		return lines;
	case SCAN_DEEP:
		ep_error_set(err, EP_EINVAL, "%s:%d: %s%snested deeper than %d levels", file,
			     s.bad_line, s.bad_path, *s.bad_path ? ": " : "", EP_JSON_MAX_DEPTH);
		break;
	case SCAN_DUP:
		ep_error_set(err, EP_EINVAL, "%s:%d: %s: duplicate key '%s'", file, s.bad_line,
			     s.bad_path, s.bad_key);
		break;
	case SCAN_NUL:
		ep_error_set(err, EP_EINVAL, "%s:%d: %s%scontains a NUL byte (\\u0000)", file,
			     s.bad_line, s.bad_path, *s.bad_path ? ": " : "");
		break;
	case SCAN_OOM:
		ep_error_oom(err);
		break;
	}
	free(s.bad_path);
	free(s.bad_key);
	json_decref(lines);
	return NULL;
}

/* ---- validation context ------------------------------------------------- */

struct ctx {
	const char *file; /* as given: names the file in messages */
	const char *dir;  /* absolute, symlink-free manifest directory */
	json_t *lines;
	struct pbuf path;
	size_t marks[2 * EP_JSON_MAX_DEPTH + 8]; /* where each segment of path starts */
	size_t n_marks;
	struct ep_error *err;
	json_t *stages; /* the "stages" object (names), or NULL */
	char ***needs;	/* where need_stage records a copy's "from" */
	size_t *n_needs;
	int src_may_leave; /* a run step's mount: may reach the manifest dir's parent */
	char parent_dir[PATH_MAX]; /* that parent ("/" for a manifest in "/") */
};

static int line_of(json_t *lines, const char *p, size_t len)
{
	char buf[512];
	cleanup_free char *big = NULL;
	const char *key = buf;
	json_t *l;

	if (len < sizeof(buf)) {
		memcpy(buf, p, len);
		buf[len] = '\0';
	} else {
		big = strndup(p, len);
		if (!big)
			return 0;
		key = big;
	}
	l = json_object_get(lines, key);
	return l ? (int)json_integer_value(l) : -1;
}

/* Line of the current field, or of the closest enclosing value the index
 * knows (a missing key is reported at its parent object). */
static int ctx_line(struct ctx *c)
{
	const char *p = path_str(&c->path);
	int l = line_of(c->lines, p, c->path.len);

	for (size_t i = c->n_marks; l < 0 && i > 0; i--)
		l = line_of(c->lines, p, c->marks[i - 1]);
	return l < 0 ? 0 : l;
}

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
	char msg[EP_ERRMSG_MAX];
	char lbuf[32] = "";
	const char *p = path_str(&c->path);
	int line = ctx_line(c);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(lbuf, sizeof(lbuf), ":%d", line);
	return ep_error_set(c->err, EP_EINVAL, "%s%s: %s%s%s", c->file, lbuf, p, *p ? ": " : "",
			    msg);
}

static int fail_oom(struct ctx *c)
{
	return ep_error_oom(c->err);
}

static size_t push_mark(struct ctx *c, size_t mark)
{
	if (c->n_marks < EP_ARRAY_SIZE(c->marks))
		c->marks[c->n_marks++] = mark;
	return mark;
}

static size_t push_key(struct ctx *c, const char *k)
{
	return push_mark(c, path_push_key(&c->path, k, strlen(k)));
}

static size_t push_idx(struct ctx *c, size_t i)
{
	return push_mark(c, path_push_index(&c->path, i));
}

static void pop(struct ctx *c, size_t mark)
{
	while (c->n_marks > 0 && c->marks[c->n_marks - 1] >= mark)
		c->n_marks--;
	path_pop(&c->path, mark);
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "value";
}

enum want { W_OBJECT, W_ARRAY, W_STRING, W_INTEGER, W_BOOL };

static const char *const want_names[] = {"object", "array", "string", "integer", "boolean"};

static int check_type(struct ctx *c, const json_t *v, enum want w)
{
	bool ok;

	switch (w) {
	case W_OBJECT:
		ok = json_is_object(v);
		break;
	case W_ARRAY:
		ok = json_is_array(v);
		break;
	case W_STRING:
		ok = json_is_string(v);
		break;
	case W_INTEGER:
		ok = json_is_integer(v);
		break;
	default:
		ok = json_is_boolean(v);
		break;
	}
	if (!ok)
		return fail(c, "expected %s, got %s", want_names[w], type_name(v));
	if (w == W_STRING && strlen(json_string_value(v)) != json_string_length(v))
		return fail(c, "contains a NUL byte");
	return 0;
}

/* Refuses keys of obj that are not in allowed (NULL-terminated). */
static int check_keys(struct ctx *c, json_t *obj, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		char list[512] = "";
		size_t n = 0;
		bool found = false;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(k, *a) == 0)
				found = true;
		if (found)
			continue;
		for (const char *const *a = allowed; *a && n < sizeof(list); a++)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
					      a == allowed ? "" : ", ", *a);
		push_key(c, k);
		return fail(c, "unknown key '%s' (allowed: %s)", k, list);
	}
	return 0;
}

/* Fetches obj[key] checked against w.  Absent: an error when required,
 * else 0 with *out NULL. */
static int get(struct ctx *c, json_t *obj, const char *key, enum want w, bool required,
	       json_t **out)
{
	json_t *v = json_object_get(obj, key);
	size_t mark = push_key(c, key);

	*out = NULL;
	if (!v) {
		if (required)
			return fail(c, "required field is missing");
		pop(c, mark);
		return 0;
	}
	if (check_type(c, v, w) < 0)
		return -1;
	pop(c, mark);
	*out = v;
	return 0;
}

static char *dup_str(struct ctx *c, const char *s)
{
	char *d = strdup(s);

	if (!d)
		fail_oom(c);
	return d;
}

/* Records that the layers being parsed copy from stage name (once, in
 * first-use order). */
static int need_stage(struct ctx *c, const char *name)
{
	char **v;

	for (size_t i = 0; i < *c->n_needs; i++)
		if (!strcmp((*c->needs)[i], name))
			return 0;
	v = realloc(*c->needs, (*c->n_needs + 2) * sizeof(*v));
	if (!v)
		return fail_oom(c);
	*c->needs = v;
	if (!(v[*c->n_needs] = dup_str(c, name)))
		return -1;
	v[++*c->n_needs] = NULL;
	return 0;
}

/* ---- value rules -------------------------------------------------------- */

static bool is_digest(const char *s)
{
	return strncmp(s, "sha256:", 7) == 0 && ep_is_hex64(s + 7);
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      strchr("._-", s[i])))
			return false;
	return true;
}

/* Debian policy 5.6.1 (names) and 5.6.12 (versions): "name" or
 * "name=version", which apt-get install accepts as written. */
static bool valid_debpkg(const char *s)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : strlen(s);

	if (n < 2 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      strchr("+.-", s[i])))
			return false;
	if (!eq)
		return true;
	const char *v = eq + 1;
	if (!(v[0] >= '0' && v[0] <= '9'))
		return false;
	for (; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
		      (*v >= '0' && *v <= '9') || strchr(".+~:-", *v)))
			return false;
	return true;
}

static bool valid_http_url(const char *s, bool allow_file)
{
	const char *rest;

	if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		rest = s + 7;
	else if (allow_file && strncmp(s, "file://", 7) == 0)
		return s[7] != '\0' && !has_ctl(s) && !strchr(s, ' ');
	else
		return false;
	/* a host is required: "https:///x" and "https://" are not URLs */
	if (*rest == '\0' || *rest == '/' || *rest == '?' || *rest == '#')
		return false;
	return !has_ctl(s) && !strchr(s, ' ');
}

/* Parses a decimal id 0..4294967294 (2^32-1 is the kernel's "no id"). */
static bool parse_id(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 4294967294LL)
		return false;
	*out = v;
	return true;
}

static bool valid_user_part(const char *s, size_t n)
{
	int64_t id;

	if (n == 0 || n > 256)
		return false;
	if (s[0] >= '0' && s[0] <= '9')
		return parse_id(s, n, &id);
	if (s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("._-$", s[i])))
			return false;
	return true;
}

/* Normalizes an absolute image path.  Returns NULL with *why set when the
 * path is refused.  ".." is refused rather than resolved: inside the image
 * it could walk through a symlink, and outside the root it has no meaning. */
static char *norm_image_path(const char *in, const char **why)
{
	size_t n = strlen(in);
	char *out;
	size_t o = 0;
	const char *p = in;

	*why = NULL;
	if (has_ctl(in)) {
		*why = "contains a control character";
		return NULL;
	}
	for (const char *q = in; *q;) {
		const char *e = strchr(q, '/');
		size_t cl = e ? (size_t)(e - q) : strlen(q);

		if (cl == 2 && q[0] == '.' && q[1] == '.') {
			*why = "leaves the image root";
			return NULL;
		}
		q += cl;
		while (*q == '/')
			q++;
	}
	if (in[0] != '/') {
		*why = "is not an absolute image path (start it with '/')";
		return NULL;
	}
	if (n > IMAGE_PATH_MAX) {
		*why = "is too long";
		return NULL;
	}
	out = malloc(n + 2);
	if (!out)
		return NULL;
	out[o++] = '/';
	while (*p) {
		const char *e;
		size_t cl;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		cl = e ? (size_t)(e - p) : strlen(p);
		if (!(cl == 1 && p[0] == '.')) {
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, p, cl);
			o += cl;
		}
		p += cl;
	}
	if (n > 1 && in[n - 1] == '/' && o > 1)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* Checks an image path field (current path) and returns its normal form. */
static char *image_path(struct ctx *c, const char *s)
{
	const char *why;
	char *r = norm_image_path(s, &why);

	if (!r) {
		if (why)
			fail(c, "'%s' %s", s, why);
		else
			fail_oom(c);
	}
	return r;
}

/* True if path is dir or below it, compared by whole components (a plain
 * prefix test would accept "/a/dir-evil" for "/a/dir"). */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Resolves a host path named in the manifest (relative to its directory,
 * or absolute) to a canonical absolute path that exists. */
static char *host_path(struct ctx *c, const char *rel)
{
	cleanup_free char *joined = NULL;
	char *r;

	if (!rel[0]) {
		fail(c, "empty path");
		return NULL;
	}
	joined = rel[0] == '/' ? strdup(rel) : ep_asprintf(NULL, "%s/%s", c->dir, rel);
	if (!joined) {
		fail_oom(c);
		return NULL;
	}
	r = realpath(joined, NULL);
	if (!r) {
		int e = errno;

		if (e == ENOENT || e == ENOTDIR)
			fail(c, "'%s' does not exist ('%s')", rel, joined);
		else if (e == ENOMEM)
			fail_oom(c);
		else
			ep_error_errno(c->err, EP_EENV, e, "%s: %s: cannot resolve '%s'", c->file,
				       path_str(&c->path), joined);
		return NULL;
	}
	return r;
}

/* ---- base --------------------------------------------------------------- */

static int str_field(struct ctx *c, json_t *obj, const char *key, bool required,
		     const char **out)
{
	json_t *v;

	*out = NULL;
	if (get(c, obj, key, W_STRING, required, &v) < 0)
		return -1;
	if (v)
		*out = json_string_value(v);
	return 0;
}

static int base_debian(struct ctx *c, json_t *d, struct ep_base *b)
{
	static const char *const keys[] = {"suite", "variant", "mirror", "packages", NULL};
	static const char *const variants[] = {"extract", "custom", "essential", "apt",
					       "required", "minbase", "buildd",  "important",
					       "debootstrap", "-", "standard", NULL};
	const char *suite, *variant, *mirror;
	json_t *pk;
	size_t mark;

	if (check_type(c, d, W_OBJECT) < 0 || check_keys(c, d, keys) < 0)
		return -1;
	if (str_field(c, d, "suite", true, &suite) < 0 ||
	    str_field(c, d, "variant", false, &variant) < 0 ||
	    str_field(c, d, "mirror", false, &mirror) < 0 ||
	    get(c, d, "packages", W_ARRAY, false, &pk) < 0)
		return -1;
	mark = push_key(c, "suite");
	if (!suite[0] || has_ctl(suite) || strchr(suite, ' ') || strchr(suite, '/'))
		return fail(c, "'%s' is not a Debian suite name", suite);
	pop(c, mark);
	if (!variant)
		variant = "minbase";
	mark = push_key(c, "variant");
	bool known = false;
	for (const char *const *v = variants; *v; v++)
		if (strcmp(*v, variant) == 0)
			known = true;
	if (!known)
		return fail(c, "'%s' is not an mmdebstrap variant (minbase, essential, apt, required, important, standard, buildd, debootstrap, custom, extract, -)",
			    variant);
	pop(c, mark);
	if (mirror) {
		mark = push_key(c, "mirror");
		if (!valid_http_url(mirror, false))
			return fail(c, "'%s' is not an http(s) URL", mirror);
		pop(c, mark);
	}
	b->suite = dup_str(c, suite);
	b->variant = dup_str(c, variant);
	if (!b->suite || !b->variant || (mirror && !(b->mirror = dup_str(c, mirror))))
		return -1;
	b->n_packages = pk ? json_array_size(pk) : 0;
	b->packages = calloc(b->n_packages + 1, sizeof(char *));
	if (!b->packages)
		return fail_oom(c);
	mark = push_key(c, "packages");
	for (size_t i = 0; i < b->n_packages; i++) {
		json_t *v = json_array_get(pk, i);
		size_t m2 = push_idx(c, i);

		if (check_type(c, v, W_STRING) < 0)
			return -1;
		if (!valid_debpkg(json_string_value(v)))
			return fail(c, "'%s' is not a Debian package name (optionally =version)",
				    json_string_value(v));
		if (!(b->packages[i] = dup_str(c, json_string_value(v))))
			return -1;
		pop(c, m2);
	}
	pop(c, mark);
	return 0;
}

static int parse_base(struct ctx *c, json_t *root, struct ep_base *b)
{
	static const char *const kinds[] = {"rootfs", "oci", "image", "debian", NULL};
	static const char *const k_rootfs[] = {"rootfs", "sha256", NULL};
	static const char *const k_oci[] = {"oci", "digest", NULL};
	static const char *const k_image[] = {"image", NULL};
	static const char *const k_debian[] = {"debian", NULL};
	static const char *const *const allowed[] = {k_rootfs, k_oci, k_image, k_debian};
	json_t *v = json_object_get(root, "base");
	const char *kind = NULL;
	size_t mark = push_key(c, "base"), m2;
	int ki = -1;

	if (!v)
		return fail(c, "required field is missing (\"scratch\" or an object with rootfs, oci, image or debian)");
	if (json_is_string(v)) {
		if (strcmp(json_string_value(v), "scratch") != 0)
			return fail(c, "'%s' is not a base (\"scratch\" or an object with rootfs, oci, image or debian)",
				    json_string_value(v));
		b->kind = EP_BASE_SCRATCH;
		pop(c, mark);
		return 0;
	}
	if (!json_is_object(v))
		return fail(c, "expected \"scratch\" or object, got %s", type_name(v));
	for (int i = 0; kinds[i]; i++) {
		if (!json_object_get(v, kinds[i]))
			continue;
		if (kind)
			return fail(c, "'%s' and '%s' cannot be combined: a base has one kind", kind,
				    kinds[i]);
		kind = kinds[i];
		ki = i;
	}
	if (!kind) {
		if (check_keys(c, v, kinds) < 0)
			return -1;
		return fail(c, "empty base: expected one of rootfs, oci, image, debian");
	}
	if (check_keys(c, v, allowed[ki]) < 0)
		return -1;
	if (strcmp(kind, "rootfs") == 0) {
		const char *p, *h;
		struct stat st;

		b->kind = EP_BASE_ROOTFS;
		if (str_field(c, v, "rootfs", true, &p) < 0 || str_field(c, v, "sha256", true, &h) < 0)
			return -1;
		m2 = push_key(c, "sha256");
		if (!ep_is_hex64(h))
			return fail(c, "'%s' is not a sha256 (expected 64 lowercase hex digits)", h);
		pop(c, m2);
		m2 = push_key(c, "rootfs");
		if (!(b->path = host_path(c, p)))
			return -1;
		if (stat(b->path, &st) < 0)
			return ep_error_errno(c->err, EP_EENV, errno, "%s: base.rootfs: stat '%s'",
					      c->file, b->path);
		if (!S_ISREG(st.st_mode))
			return fail(c, "'%s' is not a regular file ('%s')", p, b->path);
		pop(c, m2);
		if (!(b->sha256 = dup_str(c, h)))
			return -1;
	} else if (strcmp(kind, "oci") == 0) {
		const char *p, *d;
		cleanup_free char *idx = NULL;
		struct stat st;

		b->kind = EP_BASE_OCI;
		if (str_field(c, v, "oci", true, &p) < 0 || str_field(c, v, "digest", true, &d) < 0)
			return -1;
		m2 = push_key(c, "digest");
		if (!is_digest(d))
			return fail(c, "'%s' is not a digest (expected sha256: and 64 lowercase hex digits)", d);
		pop(c, m2);
		m2 = push_key(c, "oci");
		if (!(b->path = host_path(c, p)))
			return -1;
		if (stat(b->path, &st) < 0 || !S_ISDIR(st.st_mode))
			return fail(c, "'%s' is not a directory ('%s')", p, b->path);
		if (!(idx = ep_path_join(b->path, "index.json", c->err)))
			return -1;
		if (stat(idx, &st) < 0 || !S_ISREG(st.st_mode))
			return fail(c, "'%s' is not an OCI image layout (no index.json in '%s')", p,
				    b->path);
		pop(c, m2);
		if (!(b->digest = dup_str(c, d)))
			return -1;
	} else if (strcmp(kind, "image") == 0) {
		const char *r, *at;

		b->kind = EP_BASE_IMAGE;
		if (str_field(c, v, "image", true, &r) < 0)
			return -1;
		m2 = push_key(c, "image");
		if (!r[0])
			return fail(c, "empty image reference");
		if (has_ctl(r) || strchr(r, ' '))
			return fail(c, "'%s' is not an image reference (contains a space or control character)", r);
		at = strchr(r, '@');
		if (at && !is_digest(at + 1))
			return fail(c, "'%s' is not a digest (expected sha256: and 64 lowercase hex digits)",
				    at + 1);
		if (at == r)
			return fail(c, "'%s' has no repository before '@'", r);
		pop(c, m2);
		if (!(b->image = dup_str(c, r)))
			return -1;
	} else {
		b->kind = EP_BASE_DEBIAN;
		m2 = push_key(c, "debian");
		if (base_debian(c, json_object_get(v, "debian"), b) < 0)
			return -1;
		pop(c, m2);
	}
	pop(c, mark);
	return 0;
}

/* ---- layers ------------------------------------------------------------- */

/* "0755" (octal digits) or 755 (an integer read as the octal digits it is
 * written with: JSON has no octal, and nobody means 493 by 755). */
static int parse_mode(struct ctx *c, json_t *v, int *out)
{
	char buf[32];
	const char *s;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0)
			return fail(c, "mode %lld is negative", (long long)i);
		snprintf(buf, sizeof(buf), "%lld", (long long)i);
		s = buf;
	} else if (json_is_string(v)) {
		s = json_string_value(v);
	} else {
		return fail(c, "expected octal string (\"0755\") or integer, got %s", type_name(v));
	}
	size_t n = strlen(s);
	long m = 0;
	if (n == 0 || n > 5)
		return fail(c, "'%s' is not a file mode (octal, at most 07777)", s);
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return fail(c, "'%s' is not a file mode (octal digits only; write \"0755\")", s);
		m = m * 8 + (s[i] - '0');
	}
	if (m > 07777)
		return fail(c, "'%s' is not a file mode (octal, at most 07777)", s);
	*out = (int)m;
	return 0;
}

static int parse_owner(struct ctx *c, const char *s, int64_t *uid, int64_t *gid)
{
	const char *colon = strchr(s, ':');

	if (!colon || !parse_id(s, (size_t)(colon - s), uid) ||
	    !parse_id(colon + 1, strlen(colon + 1), gid))
		return fail(c, "'%s' is not an owner (expected numeric \"UID:GID\", e.g. \"1000:1000\")", s);
	return 0;
}

/* Resolves a copy source: relative to the manifest directory and staying in
 * it, also through symlinked directories.  The last component is not
 * followed (lstat): a symlink is copied as a symlink. */
static int copy_src(struct ctx *c, const char *src, char **out)
{
	cleanup_free char *clean = malloc(strlen(src) + 1);
	cleanup_free char *parent = NULL, *parent_real = NULL;
	const char *last;
	size_t o = 0;
	int depth = 0;
	struct stat st;

	if (!clean)
		return fail_oom(c);
	if (!src[0])
		return fail(c, "empty path");
	if (src[0] == '/')
		return fail(c, "absolute path '%s' is not allowed: copy sources are relative to the manifest directory",
			    src);
	for (const char *p = src; *p;) {
		const char *e = strchr(p, '/');
		size_t cl = e ? (size_t)(e - p) : strlen(p);

		if (cl == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < (c->src_may_leave ? -1 : 0))
				return fail(c, "'%s' leaves the manifest directory%s", src,
					    c->src_may_leave ? "'s parent" : "");
			if (depth < 0) { /* above the manifest dir: keep the '..' */
				if (o > 0)
					clean[o++] = '/';
				memcpy(clean + o, "..", 2);
				o += 2;
				p += cl;
				while (*p == '/')
					p++;
				continue;
			}
			while (o > 0 && clean[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (cl > 0 && !(cl == 1 && p[0] == '.')) {
			depth++;
			if (o > 0)
				clean[o++] = '/';
			memcpy(clean + o, p, cl);
			o += cl;
		}
		p += cl;
		while (*p == '/')
			p++;
	}
	clean[o] = '\0';
	if (o == 0) {
		*out = dup_str(c, c->dir);
		return *out ? 0 : -1;
	}
	last = strrchr(clean, '/');
	if (last) {
		parent = ep_asprintf(c->err, "%s/%.*s", c->dir, (int)(last - clean), clean);
		last++;
	} else {
		parent = ep_strdup(c->dir, c->err);
		last = clean;
	}
	if (!parent)
		return -1;
	parent_real = realpath(parent, NULL);
	if (!parent_real) {
		if (errno == ENOENT || errno == ENOTDIR)
			return fail(c, "'%s' does not exist ('%s/%s')", src, c->dir, clean);
		return ep_error_errno(c->err, EP_EENV, errno, "%s: %s: cannot resolve '%s'", c->file,
				      path_str(&c->path), parent);
	}
	if (!path_within(parent_real, c->src_may_leave ? c->parent_dir : c->dir))
		return fail(c, "'%s' leaves the manifest directory through a symlink ('%s')", src,
			    parent_real);
	*out = ep_asprintf(c->err, "%s/%s", strcmp(parent_real, "/") == 0 ? "" : parent_real, last);
	if (!*out)
		return -1;
	if (lstat(*out, &st) < 0) {
		int e = errno;

		if (e == ENOENT || e == ENOTDIR)
			return fail(c, "'%s' does not exist ('%s')", src, *out);
		return ep_error_errno(c->err, EP_EENV, e, "%s: %s: cannot access '%s'", c->file,
				      path_str(&c->path), *out);
	}
	return 0;
}

static int parse_copy(struct ctx *c, json_t *arr, struct ep_step *st)
{
	static const char *const keys[] = {"src", "dest", "mode", "owner", "from", NULL};

	st->copy = calloc(st->n, sizeof(*st->copy));
	if (!st->copy)
		return fail_oom(c);
	for (size_t i = 0; i < st->n; i++) {
		struct ep_copy *cp = &st->copy[i];
		json_t *it = json_array_get(arr, i), *mv;
		size_t mark = push_idx(c, i), m2;
		const char *src, *dest, *owner, *from;

		cp->mode = -1;
		cp->line = ctx_line(c);
		if (check_type(c, it, W_OBJECT) < 0 || check_keys(c, it, keys) < 0)
			return -1;
		if (str_field(c, it, "src", true, &src) < 0 ||
		    str_field(c, it, "dest", true, &dest) < 0 ||
		    str_field(c, it, "owner", false, &owner) < 0 ||
		    str_field(c, it, "from", false, &from) < 0)
			return -1;
		m2 = push_key(c, "src");
		if (from) {
			/* a path of the stage's rootfs, not of the host */
			if (!(cp->src = image_path(c, src)))
				return -1;
		} else if (copy_src(c, src, &cp->src_path) < 0) {
			return -1;
		}
		pop(c, m2);
		if (from) {
			m2 = push_key(c, "from");
			if (!valid_name(from))
				return fail(c, "'%s' is not a stage name ([a-z0-9][a-z0-9._-]*)",
					    from);
			if (!json_object_get(c->stages, from))
				return fail(c, "unknown stage '%s'%s", from,
					    json_object_size(c->stages)
						? ""
						: " (the manifest has no \"stages\")");
			if (!(cp->from = dup_str(c, from)) || need_stage(c, from) < 0)
				return -1;
			pop(c, m2);
		}
		m2 = push_key(c, "dest");
		if (!(cp->dest = image_path(c, dest)))
			return -1;
		pop(c, m2);
		if ((mv = json_object_get(it, "mode"))) {
			m2 = push_key(c, "mode");
			if (parse_mode(c, mv, &cp->mode) < 0)
				return -1;
			pop(c, m2);
		}
		if (owner) {
			m2 = push_key(c, "owner");
			if (parse_owner(c, owner, &cp->uid, &cp->gid) < 0)
				return -1;
			pop(c, m2);
		}
		if (!cp->src && !(cp->src = dup_str(c, src)))
			return -1;
		pop(c, mark);
	}
	return 0;
}

static int parse_fetch(struct ctx *c, json_t *arr, struct ep_step *st)
{
	static const char *const keys[] = {"url", "sha256", "dest", "extract", NULL};

	st->fetch = calloc(st->n, sizeof(*st->fetch));
	if (!st->fetch)
		return fail_oom(c);
	for (size_t i = 0; i < st->n; i++) {
		struct ep_fetch *f = &st->fetch[i];
		json_t *it = json_array_get(arr, i), *ex;
		size_t mark = push_idx(c, i), m2;
		const char *url, *h, *dest;

		f->line = ctx_line(c);
		if (check_type(c, it, W_OBJECT) < 0 || check_keys(c, it, keys) < 0)
			return -1;
		if (str_field(c, it, "url", true, &url) < 0 ||
		    str_field(c, it, "sha256", true, &h) < 0 ||
		    str_field(c, it, "dest", true, &dest) < 0 ||
		    get(c, it, "extract", W_BOOL, false, &ex) < 0)
			return -1;
		m2 = push_key(c, "url");
		if (!valid_http_url(url, true))
			return fail(c, "'%s' is not an http, https or file URL", url);
		pop(c, m2);
		m2 = push_key(c, "sha256");
		if (!ep_is_hex64(h))
			return fail(c, "'%s' is not a sha256 (expected 64 lowercase hex digits)", h);
		pop(c, m2);
		m2 = push_key(c, "dest");
		if (!(f->dest = image_path(c, dest)))
			return -1;
		pop(c, m2);
		f->extract = ex && json_is_true(ex);
		if (!(f->url = dup_str(c, url)) || !(f->sha256 = dup_str(c, h)))
			return -1;
		pop(c, mark);
	}
	return 0;
}

static int parse_words(struct ctx *c, json_t *arr, struct ep_step *st)
{
	st->words = calloc(st->n + 1, sizeof(char *));
	if (!st->words)
		return fail_oom(c);
	for (size_t i = 0; i < st->n; i++) {
		json_t *v = json_array_get(arr, i);
		size_t mark = push_idx(c, i);
		const char *s;

		if (check_type(c, v, W_STRING) < 0)
			return -1;
		s = json_string_value(v);
		if (st->kind == EP_STEP_APT && !valid_debpkg(s))
			return fail(c, "'%s' is not a Debian package name (optionally =version)", s);
		/* an option would change where pip installs from, outside the lock */
		if (st->kind == EP_STEP_PIP && (!s[0] || s[0] == '-' || has_ctl(s)))
			return fail(c, "'%s' is not a requirement (options and empty strings are refused)",
				    s);
		if (st->kind == EP_STEP_RUN && i == 0 && !s[0])
			return fail(c, "empty program name");
		if (!(st->words[i] = dup_str(c, s)))
			return -1;
		pop(c, mark);
	}
	return 0;
}

static int string_map(struct ctx *c, json_t *obj, bool env);

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "mounts": [{"src": HOST_PATH, "dest": IMAGE_PATH}, ...] of a run step. */
static int parse_mounts(struct ctx *c, json_t *arr, struct ep_run_opts_m *r)
{
	static const char *const keys[] = {"src", "dest", NULL};

	r->n_mounts = json_array_size(arr);
	r->mounts = calloc(r->n_mounts ? r->n_mounts : 1, sizeof(*r->mounts));
	if (!r->mounts)
		return fail_oom(c);
	for (size_t i = 0; i < r->n_mounts; i++) {
		struct ep_mount *mt = &r->mounts[i];
		json_t *it = json_array_get(arr, i);
		size_t mark = push_idx(c, i), m2;
		const char *src, *dest;
		size_t n;

		mt->line = ctx_line(c);
		if (check_type(c, it, W_OBJECT) < 0 || check_keys(c, it, keys) < 0 ||
		    str_field(c, it, "src", true, &src) < 0 ||
		    str_field(c, it, "dest", true, &dest) < 0)
			return -1;
		m2 = push_key(c, "src");
		/* design: a mount is read-only and hashed into the lock; it may
		 * reach one level above the manifest dir, the project whose
		 * manifests/ mount its sources (../runtime/), never higher */
		c->src_may_leave = 1;
		if (copy_src(c, src, &mt->src_path) < 0 || !(mt->src = dup_str(c, src))) {
			c->src_may_leave = 0;
			return -1;
		}
		c->src_may_leave = 0;
		pop(c, m2);
		m2 = push_key(c, "dest");
		if (!(mt->dest = image_path(c, dest)))
			return -1;
		n = strlen(mt->dest);
		if (n > 1 && mt->dest[n - 1] == '/')
			mt->dest[n - 1] = '\0';
		if (!strcmp(mt->dest, "/") || !strcmp(mt->dest, "/proc") ||
		    !strncmp(mt->dest, "/proc/", 6) || !strcmp(mt->dest, "/dev") ||
		    !strcmp(mt->dest, "/sys"))
			return fail(c, "'%s' cannot be a mount destination", dest);
		pop(c, m2);
		pop(c, mark);
	}
	return 0;
}

/* The options beside "run": env, workdir, user, mounts. */
static int parse_run_opts(struct ctx *c, json_t *l, struct ep_run_opts_m *r)
{
	json_t *v;
	const char *s;
	size_t mark;

	if (get(c, l, "env", W_OBJECT, false, &v) < 0)
		return -1;
	if (v) {
		const char *k;
		json_t *val;
		size_t i = 0;

		mark = push_key(c, "env");
		if (string_map(c, v, true) < 0)
			return -1;
		pop(c, mark);
		r->env = calloc(json_object_size(v) + 1, sizeof(char *));
		if (!r->env)
			return fail_oom(c);
		json_object_foreach (v, k, val) {
			if (!(r->env[i] = ep_asprintf(NULL, "%s=%s", k, json_string_value(val))))
				return fail_oom(c);
			r->n_env = ++i;
		}
		qsort(r->env, r->n_env, sizeof(char *), cmp_str);
	}
	if (str_field(c, l, "workdir", false, &s) < 0)
		return -1;
	if (s) {
		size_t n;

		mark = push_key(c, "workdir");
		if (!(r->workdir = image_path(c, s)))
			return -1;
		n = strlen(r->workdir);
		if (n > 1 && r->workdir[n - 1] == '/')
			r->workdir[n - 1] = '\0';
		pop(c, mark);
	}
	if (str_field(c, l, "user", false, &s) < 0)
		return -1;
	if (s) {
		int64_t uid, gid;

		mark = push_key(c, "user");
		if (parse_owner(c, s, &uid, &gid) < 0 || !(r->user = dup_str(c, s)))
			return -1;
		pop(c, mark);
	}
	if (get(c, l, "mounts", W_ARRAY, false, &v) < 0)
		return -1;
	if (v) {
		mark = push_key(c, "mounts");
		if (parse_mounts(c, v, r) < 0)
			return -1;
		pop(c, mark);
	}
	return 0;
}

static int parse_layer(struct ctx *c, json_t *l, struct ep_step *st)
{
	static const char *const kinds[] = {"copy", "apt", "pip", "fetch", "run", NULL};
	static const char *const run_keys[] = {"run", "env", "workdir", "user", "mounts", NULL};
	static const enum ep_step_kind kv[] = {EP_STEP_COPY, EP_STEP_APT, EP_STEP_PIP,
					       EP_STEP_FETCH, EP_STEP_RUN};
	const char *key = NULL, *k;
	json_t *arr = NULL, *v;
	size_t mark;

	st->line = ctx_line(c);
	if (check_type(c, l, W_OBJECT) < 0)
		return -1;
	json_object_foreach(l, k, v) {
		bool is_kind = false;

		for (size_t i = 0; kinds[i]; i++)
			if (!strcmp(kinds[i], k))
				is_kind = true;
		if (!is_kind)
			continue;
		if (key)
			return fail(c, "a layer has exactly one kind, found '%s' and '%s' (split them into two layers)",
				    key, k);
		key = k;
		arr = v;
	}
	if (!key) {
		if (json_object_size(l) == 0)
			return fail(c, "empty layer: expected one of copy, apt, pip, fetch, run");
		json_object_foreach (l, k, v) {
			for (size_t i = 1; run_keys[i]; i++)
				if (!strcmp(run_keys[i], k))
					return fail(c,
						    "'%s' is an option of a run step, but the "
						    "layer has no \"run\"",
						    k);
		}
		return check_keys(c, l, kinds);
	}
	for (size_t i = 0; kinds[i]; i++)
		if (strcmp(kinds[i], key) == 0)
			st->kind = kv[i];
	if (st->kind == EP_STEP_RUN) {
		if (check_keys(c, l, run_keys) < 0)
			return -1;
	} else {
		const char *one[] = {key, NULL};

		if (check_keys(c, l, one) < 0)
			return -1;
	}
	st->raw = l;
	mark = push_key(c, key);
	if (check_type(c, arr, W_ARRAY) < 0)
		return -1;
	st->n = json_array_size(arr);
	if (st->n == 0)
		return fail(c,
			    st->kind == EP_STEP_RUN
				? "empty list (a run step is an argv: [\"PROGRAM\", \"ARG\", ...])"
				: "empty list");
	switch (st->kind) {
	case EP_STEP_COPY:
		if (parse_copy(c, arr, st) < 0)
			return -1;
		break;
	case EP_STEP_FETCH:
		if (parse_fetch(c, arr, st) < 0)
			return -1;
		break;
	default:
		if (parse_words(c, arr, st) < 0)
			return -1;
		break;
	}
	pop(c, mark);
	if (st->kind == EP_STEP_RUN && parse_run_opts(c, l, &st->run) < 0)
		return -1;
	return 0;
}

/* "layers": [...] of the manifest or of a stage. */
static int parse_layers(struct ctx *c, json_t *obj, struct ep_step **steps, size_t *n_steps)
{
	json_t *layers;
	size_t mark;

	if (get(c, obj, "layers", W_ARRAY, false, &layers) < 0)
		return -1;
	if (!layers || json_array_size(layers) == 0)
		return 0;
	*n_steps = json_array_size(layers);
	*steps = calloc(*n_steps, sizeof(**steps));
	if (!*steps)
		return fail_oom(c);
	mark = push_key(c, "layers");
	for (size_t i = 0; i < *n_steps; i++) {
		size_t m2 = push_idx(c, i);

		if (parse_layer(c, json_array_get(layers, i), &(*steps)[i]) < 0)
			return -1;
		pop(c, m2);
	}
	pop(c, mark);
	return 0;
}

static int parse_base(struct ctx *c, json_t *root, struct ep_base *b);

/* "stages": {NAME: {"base": ..., "layers": [...]}}. */
static int parse_stages(struct ctx *c, json_t *obj, struct ep_manifest *m)
{
	static const char *const keys[] = {"base", "layers", NULL};
	const char *k;
	json_t *v;
	size_t i = 0, mark = push_key(c, "stages");

	m->stages = calloc(json_object_size(obj) + 1, sizeof(*m->stages));
	if (!m->stages)
		return fail_oom(c);
	json_object_foreach (obj, k, v) {
		struct ep_stage *sg = &m->stages[i];
		size_t m2 = push_key(c, k);

		m->n_stages = ++i;
		sg->line = ctx_line(c);
		if (!valid_name(k))
			return fail(c,
				    "'%s' is not a stage name ([a-z0-9][a-z0-9._-]*, at most %d "
				    "characters)",
				    k, NAME_MAX_LEN);
		if (!(sg->name = dup_str(c, k)))
			return -1;
		if (check_type(c, v, W_OBJECT) < 0 || check_keys(c, v, keys) < 0 ||
		    parse_base(c, v, &sg->base) < 0)
			return -1;
		c->needs = &sg->needs;
		c->n_needs = &sg->n_needs;
		if (parse_layers(c, v, &sg->steps, &sg->n_steps) < 0)
			return -1;
		pop(c, m2);
	}
	pop(c, mark);
	return 0;
}

/* Stage cycles (a copies from b, b from a; or a from itself) are refused:
 * depth-first over needs, naming the chain. */
static int check_cycle(struct ctx *c, const struct ep_manifest *m, const struct ep_stage *sg,
		       const char **chain, size_t depth)
{
	for (size_t i = 0; i < depth; i++) {
		if (strcmp(chain[i], sg->name))
			continue;
		char buf[512] = "";
		size_t n = 0;

		for (size_t j = i; j < depth && n < sizeof(buf); j++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s -> ", chain[j]);
		if (n < sizeof(buf))
			snprintf(buf + n, sizeof(buf) - n, "%s", sg->name);
		push_key(c, "stages");
		push_key(c, chain[depth - 1]);
		return fail(c, "stage cycle: %s (a stage cannot copy from itself, directly or not)",
			    buf);
	}
	if (depth >= 64)
		return fail(c, "stages nest deeper than 64");
	chain[depth] = sg->name;
	for (size_t i = 0; i < sg->n_needs; i++) {
		const struct ep_stage *n = ep_manifest_stage(m, sg->needs[i]);

		if (n && check_cycle(c, m, n, chain, depth + 1) < 0)
			return -1;
	}
	return 0;
}

/* ---- config, check ------------------------------------------------------ */

static int string_map(struct ctx *c, json_t *obj, bool env)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		size_t mark = push_key(c, k);

		if (!k[0])
			return fail(c, "empty key");
		if (env && strchr(k, '='))
			return fail(c, "variable name '%s' contains '='", k);
		if (check_type(c, v, W_STRING) < 0)
			return -1;
		pop(c, mark);
	}
	return 0;
}

static int string_list(struct ctx *c, json_t *arr)
{
	for (size_t i = 0; i < json_array_size(arr); i++) {
		size_t mark = push_idx(c, i);

		if (check_type(c, json_array_get(arr, i), W_STRING) < 0)
			return -1;
		pop(c, mark);
	}
	return 0;
}

static bool valid_port(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	long v = 0;

	if (n == 0 || n > 5 || s[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	return !slash || strcmp(slash, "/tcp") == 0 || strcmp(slash, "/udp") == 0;
}

static int parse_config(struct ctx *c, json_t *cfg)
{
	static const char *const keys[] = {"env",  "entrypoint", "cmd",           "workdir",
					   "user", "labels",     "exposed_ports", NULL};
	json_t *v;
	size_t mark;

	if (check_keys(c, cfg, keys) < 0)
		return -1;
	if (get(c, cfg, "env", W_OBJECT, false, &v) < 0)
		return -1;
	if (v) {
		mark = push_key(c, "env");
		if (string_map(c, v, true) < 0)
			return -1;
		pop(c, mark);
	}
	if (get(c, cfg, "labels", W_OBJECT, false, &v) < 0)
		return -1;
	if (v) {
		mark = push_key(c, "labels");
		if (string_map(c, v, false) < 0)
			return -1;
		pop(c, mark);
	}
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "cmd" : "entrypoint";

		if (get(c, cfg, k, W_ARRAY, false, &v) < 0)
			return -1;
		if (v) {
			mark = push_key(c, k);
			if (string_list(c, v) < 0)
				return -1;
			pop(c, mark);
		}
	}
	if (get(c, cfg, "workdir", W_STRING, false, &v) < 0)
		return -1;
	if (v) {
		const char *w = json_string_value(v);

		mark = push_key(c, "workdir");
		if (w[0] != '/')
			return fail(c, "'%s' is not an absolute path", w);
		if (has_ctl(w))
			return fail(c, "'%s' contains a control character", w);
		pop(c, mark);
	}
	if (get(c, cfg, "user", W_STRING, false, &v) < 0)
		return -1;
	if (v) {
		const char *u = json_string_value(v), *colon = strchr(u, ':');

		mark = push_key(c, "user");
		if (colon ? !valid_user_part(u, (size_t)(colon - u)) ||
				    !valid_user_part(colon + 1, strlen(colon + 1))
			  : !valid_user_part(u, strlen(u)))
			return fail(c, "'%s' is not a user (expected \"uid[:gid]\" or \"name[:group]\")", u);
		pop(c, mark);
	}
	if (get(c, cfg, "exposed_ports", W_ARRAY, false, &v) < 0)
		return -1;
	if (v) {
		mark = push_key(c, "exposed_ports");
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *p = json_array_get(v, i);
			size_t m2 = push_idx(c, i);

			if (check_type(c, p, W_STRING) < 0)
				return -1;
			if (!valid_port(json_string_value(p)))
				return fail(c, "'%s' is not a port (expected \"N\", \"N/tcp\" or \"N/udp\", N in 1..65535)",
					    json_string_value(p));
			pop(c, m2);
		}
		pop(c, mark);
	}
	return 0;
}

static int parse_check(struct ctx *c, json_t *chk)
{
	static const char *const keys[] = {"gpu", "fits", "model", NULL};
	const char *s;

	if (check_keys(c, chk, keys) < 0)
		return -1;
	if (str_field(c, chk, "gpu", false, &s) < 0)
		return -1;
	if (s && strcmp(s, "required") != 0 && strcmp(s, "optional") != 0 && strcmp(s, "none") != 0) {
		push_key(c, "gpu");
		return fail(c, "'%s' is not one of required, optional, none", s);
	}
	if (str_field(c, chk, "fits", false, &s) < 0 || str_field(c, chk, "model", false, &s) < 0)
		return -1;
	return 0;
}

/* ---- top level ---------------------------------------------------------- */

/* The name defaults to the file name without ".json", when that is a valid
 * name: "manifests/default.json" is called "default". */
static int default_name(struct ctx *c, char **out)
{
	const char *b = strrchr(c->file, '/');
	cleanup_free char *n = NULL;
	size_t len;

	b = b ? b + 1 : c->file;
	len = strlen(b);
	if (len > 5 && strcmp(b + len - 5, ".json") == 0)
		len -= 5;
	n = strndup(b, len);
	if (!n)
		return fail_oom(c);
	push_key(c, "name");
	if (!valid_name(n))
		return fail(c, "required field is missing (the file name '%s' is not a valid name to default to)",
			    n);
	pop(c, 0);
	*out = steal_pointer(&n);
	return 0;
}

static int validate(struct ctx *c, json_t *root, struct ep_manifest *m)
{
	static const char *const keys[] = {"envpin", "name",   "source_date_epoch",
					   "base",   "stages", "layers",
					   "config", "check",  NULL};
	json_t *v, *stages;
	size_t mark;

	if (!json_is_object(root))
		return fail(c, "expected object, got %s", type_name(root));

	/* The schema version first: a newer manifest should say so, not fail
	 * on the first key this version does not know. */
	mark = push_key(c, "envpin");
	v = json_object_get(root, "envpin");
	if (!v)
		return fail(c, "required field is missing (the schema version: 1)");
	if (json_is_integer(v) && json_integer_value(v) != EP_MANIFEST_VERSION)
		return fail(c, "schema version %lld is not supported (this envpin reads %d)",
			    (long long)json_integer_value(v), EP_MANIFEST_VERSION);
	if (check_type(c, v, W_INTEGER) < 0)
		return -1;
	pop(c, mark);
	if (check_keys(c, root, keys) < 0)
		return -1;

	if (get(c, root, "name", W_STRING, false, &v) < 0)
		return -1;
	if (v) {
		mark = push_key(c, "name");
		if (!valid_name(json_string_value(v)))
			return fail(c, "'%s' is not a valid name ([a-z0-9][a-z0-9._-]*, at most %d characters)",
				    json_string_value(v), NAME_MAX_LEN);
		pop(c, mark);
		if (!(m->name = dup_str(c, json_string_value(v))))
			return -1;
	} else if (default_name(c, &m->name) < 0) {
		return -1;
	}

	if (get(c, root, "source_date_epoch", W_INTEGER, true, &v) < 0)
		return -1;
	m->source_date_epoch = json_integer_value(v);
	if (m->source_date_epoch < 0) {
		push_key(c, "source_date_epoch");
		return fail(c, "%lld is negative (seconds since 1970-01-01 UTC)",
			    (long long)m->source_date_epoch);
	}

	if (parse_base(c, root, &m->base) < 0)
		return -1;

	if (get(c, root, "stages", W_OBJECT, false, &stages) < 0)
		return -1;
	c->stages = stages;
	if (stages && parse_stages(c, stages, m) < 0)
		return -1;
	c->needs = &m->needs;
	c->n_needs = &m->n_needs;
	if (parse_layers(c, root, &m->steps, &m->n_steps) < 0)
		return -1;
	for (size_t i = 0; i < m->n_stages; i++) {
		const char *chain[65];

		if (check_cycle(c, m, &m->stages[i], chain, 0) < 0)
			return -1;
	}

	if (get(c, root, "config", W_OBJECT, false, &m->config) < 0)
		return -1;
	if (m->config) {
		mark = push_key(c, "config");
		if (parse_config(c, m->config) < 0)
			return -1;
		pop(c, mark);
	}
	if (get(c, root, "check", W_OBJECT, false, &m->check) < 0)
		return -1;
	if (m->check) {
		mark = push_key(c, "check");
		if (parse_check(c, m->check) < 0)
			return -1;
		pop(c, mark);
	}
	if (c->path.oom)
		return fail_oom(c);
	return 0;
}

static char *manifest_dir(const char *path, struct ep_error *err)
{
	const char *slash = strrchr(path, '/');
	cleanup_free char *d = NULL;
	char *r;

	if (!slash)
		d = ep_strdup(".", err);
	else if (slash == path)
		d = ep_strdup("/", err);
	else
		d = ep_asprintf(err, "%.*s", (int)(slash - path), path);
	if (!d)
		return NULL;
	r = realpath(d, NULL);
	if (!r)
		ep_error_errno(err, EP_EENV, errno, "cannot resolve the directory of '%s'", path);
	return r;
}

struct ep_manifest *ep_manifest_load(const char *path, struct ep_error *err)
{
	cleanup_free char *buf = NULL;
	size_t len;

	buf = ep_read_file(path, EP_MANIFEST_MAX_BYTES, &len, err);
	if (!buf)
		return NULL;
	return ep_manifest_loadb(path, buf, len, err);
}

struct ep_manifest *ep_manifest_loadb(const char *path, const char *buf, size_t len,
				      struct ep_error *err)
{
	struct ep_manifest *m = NULL;
	cleanup_json json_t *lines = NULL;
	struct ctx c = {0};

	if (len > EP_MANIFEST_MAX_BYTES) {
		ep_error_set(err, EP_EINVAL, "%s: larger than %u bytes", path,
			     (unsigned)EP_MANIFEST_MAX_BYTES);
		return NULL;
	}
	lines = index_text(path, buf, len, err);
	if (!lines)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		ep_error_oom(err);
		return NULL;
	}
	m->root = ep_json_loadb(buf, len, EP_MANIFEST_MAX_BYTES, path, err);
	if (!m->root || !(m->path = ep_strdup(path, err)) || !(m->dir = manifest_dir(path, err)))
		goto fail;
	c.file = path;
	c.dir = m->dir;
	snprintf(c.parent_dir, sizeof(c.parent_dir), "%s", m->dir);
	if (strrchr(c.parent_dir, '/'))
		*strrchr(c.parent_dir, '/') = '\0';
	if (!c.parent_dir[0])
		strcpy(c.parent_dir, "/");
	c.lines = lines;
	c.err = err;
	if (validate(&c, m->root, m) < 0)
		goto fail;
	free(c.path.s);
	m->lines = steal_pointer(&lines);
	return m;
fail:
	free(c.path.s);
	ep_manifest_free(m);
	return NULL;
}

int ep_manifest_line(const struct ep_manifest *m, const char *field)
{
	json_t *l;

	if (!m || !m->lines || !field)
		return 0;
	l = json_object_get(m->lines, field);
	return l ? (int)json_integer_value(l) : 0;
}

static void free_words(char **w, size_t n)
{
	if (!w)
		return;
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

static void free_base(struct ep_base *b);
static void free_steps(struct ep_step *steps, size_t n_steps);

void ep_manifest_free(struct ep_manifest *m)
{
	if (!m)
		return;
	free(m->path);
	free(m->dir);
	free(m->name);
	free_base(&m->base);
	free_steps(m->steps, m->n_steps);
	free_words(m->needs, m->n_needs);
	for (size_t i = 0; i < m->n_stages; i++) {
		free(m->stages[i].name);
		free_base(&m->stages[i].base);
		free_steps(m->stages[i].steps, m->stages[i].n_steps);
		free_words(m->stages[i].needs, m->stages[i].n_needs);
	}
	free(m->stages);
	json_decref(m->root);
	json_decref(m->lines);
	free(m);
}

static void free_base(struct ep_base *b)
{
	free(b->path);
	free(b->sha256);
	free(b->digest);
	free(b->image);
	free(b->suite);
	free(b->variant);
	free(b->mirror);
	free_words(b->packages, b->n_packages);
}

static void free_steps(struct ep_step *steps, size_t n_steps)
{
	for (size_t i = 0; i < n_steps; i++) {
		struct ep_step *st = &steps[i];

		if (st->copy)
			for (size_t j = 0; j < st->n; j++) {
				free(st->copy[j].src);
				free(st->copy[j].src_path);
				free(st->copy[j].dest);
			}
		if (st->fetch)
			for (size_t j = 0; j < st->n; j++) {
				free(st->fetch[j].url);
				free(st->fetch[j].sha256);
				free(st->fetch[j].dest);
			}
		if (st->copy)
			for (size_t j = 0; j < st->n; j++)
				free(st->copy[j].from);
		free(st->copy);
		free(st->fetch);
		free_words(st->words, st->n);
		free_words(st->run.env, st->run.n_env);
		free(st->run.workdir);
		free(st->run.user);
		for (size_t j = 0; st->run.mounts && j < st->run.n_mounts; j++) {
			free(st->run.mounts[j].src);
			free(st->run.mounts[j].src_path);
			free(st->run.mounts[j].dest);
		}
		free(st->run.mounts);
	}
	free(steps);
}

const struct ep_stage *ep_manifest_stage(const struct ep_manifest *m, const char *name)
{
	for (size_t i = 0; m && name && i < m->n_stages; i++)
		if (!strcmp(m->stages[i].name, name))
			return &m->stages[i];
	return NULL;
}

char *ep_manifest_lock_path(const char *manifest_path, struct ep_error *err)
{
	const char *base;
	size_t len;

	if (!manifest_path || !manifest_path[0]) {
		ep_error_set(err, EP_EINVAL, "empty manifest path");
		return NULL;
	}
	base = strrchr(manifest_path, '/');
	base = base ? base + 1 : manifest_path;
	len = strlen(manifest_path);
	if (strlen(base) > 5 && strcmp(manifest_path + len - 5, ".json") == 0)
		return ep_asprintf(err, "%.*s.lock.json", (int)(len - 5), manifest_path);
	return ep_asprintf(err, "%s.lock.json", manifest_path);
}
