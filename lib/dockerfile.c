/* lib/dockerfile.c - manifest (+ lock) -> Dockerfile (lib/dockerfile.h). */
#include "dockerfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apt.h"
#include "util.h"

/* An open_memstream with error tracking, so each line is one call. */
struct out {
	FILE *f;
	char *buf;
	size_t len;
};

static int safe_word(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
		      ('0' <= *s && *s <= '9') || strchr("/._-+=:@%,~", *s)))
			return 0;
	return 1;
}

/* A word for a shell line: as is when plain, else in single quotes. */
static void sh_word(FILE *f, const char *s)
{
	if (safe_word(s)) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

/* A Dockerfile double-quoted value: \ " and $ escaped ($ would expand). */
static void dq(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"' || *s == '$')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void json_form(FILE *f, json_t *arr)
{
	char *s = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);

	fputs(s ? s : "[]", f);
	free(s);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keys of a JSON object, sorted (jansson keeps insertion order). */
static const char **sorted_keys(json_t *obj, size_t *n, struct ep_error *err)
{
	const char **keys = ep_calloc(json_object_size(obj) + 1, sizeof(*keys), err);
	const char *k;
	json_t *v;

	*n = 0;
	if (!keys)
		return NULL;
	json_object_foreach (obj, k, v)
		keys[(*n)++] = k;
	qsort(keys, *n, sizeof(*keys), cmp_key);
	return keys;
}

/* "name=version:arch" of the lock's package list -> version, for name. */
static const char *locked_version(json_t *pkgs, const char *name, char *buf, size_t bufsz)
{
	size_t i, nl = strlen(name);
	json_t *v;

	json_array_foreach (pkgs, i, v) {
		const char *s = json_string_value(v);
		const char *colon;

		if (!s || strncmp(s, name, nl) || s[nl] != '=')
			continue;
		colon = strrchr(s + nl + 1, ':');
		if (!colon)
			colon = s + strlen(s);
		snprintf(buf, bufsz, "%.*s", (int)(colon - (s + nl + 1)), s + nl + 1);
		return buf;
	}
	return NULL;
}

static void apt_line(FILE *f, char *const *pkgs, size_t n, json_t *locked_pkgs, int add_pip)
{
	fputs("RUN apt-get update && \\\n    DEBIAN_FRONTEND=noninteractive apt-get install -y "
	      "--no-install-recommends",
	      f);
	for (size_t i = 0; i < n; i++) {
		char ver[256];
		const char *v = strchr(pkgs[i], '=')
				    ? NULL
				    : locked_version(locked_pkgs, pkgs[i], ver, sizeof(ver));

		fputs(" \\\n      ", f);
		sh_word(f, pkgs[i]);
		if (v) {
			fputc('=', f);
			sh_word(f, v);
		}
	}
	for (size_t i = 0; add_pip && i < n; i++)
		if (!strncmp(pkgs[i], "python3-pip", 11) && (!pkgs[i][11] || pkgs[i][11] == '='))
			add_pip = 0; /* the manifest ships pip itself (pinned above) */
	if (add_pip)
		fputs(" \\\n      python3-pip", f);
	fputs(" && \\\n    rm -rf /var/lib/apt/lists/*\n", f);
}

/* A build-context path as Docker sees it.  The context is the manifest's
 * directory, or its parent when some source is "../x" (up is then the
 * manifest directory's name + "/": "x" stays "manifests/x", "../x" is "x").
 * The manifest refuses sources more than one level up. */
static const char *ctx_path(const char *src, const char *up, char *buf, size_t size)
{
	if (!up)
		return src;
	if (!strncmp(src, "../", 3))
		return src + 3;
	if (!strcmp(src, ".."))
		return ".";
	snprintf(buf, size, "%s%s", up, src);
	return buf;
}

static int leaves_dir(const char *src)
{
	return !strncmp(src, "../", 3) || !strcmp(src, "..");
}

static int base_leaves(json_t *raw_parent)
{
	const char *p = json_string_value(json_object_get(json_object_get(raw_parent, "base"), "rootfs"));

	return p && leaves_dir(p);
}

static int steps_leave(const struct ep_step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct ep_step *st = &steps[i];

		for (size_t k = 0; st->kind == EP_STEP_COPY && k < st->n; k++)
			if (!st->copy[k].from && leaves_dir(st->copy[k].src))
				return 1;
		for (size_t k = 0; st->kind == EP_STEP_RUN && k < st->run.n_mounts; k++)
			if (leaves_dir(st->run.mounts[k].src))
				return 1;
	}
	return 0;
}

/* FROM (... AS stage) of a base; lock: the inputs holding its pins, raw:
 * the object holding the manifest's "base". */
static void do_base(FILE *f, const struct ep_base *b, json_t *raw_parent, json_t *inputs,
		    int has_pip, const char *stage, const char *up)
{
	json_t *lb = json_object_get(inputs, "base");
	json_t *raw = json_object_get(raw_parent, "base");
	char as[160] = "";

	if (stage)
		snprintf(as, sizeof(as), " AS %s", stage);

	switch (b->kind) {
	case EP_BASE_SCRATCH:
		fprintf(f, "FROM scratch%s\n", as);
		break;
	case EP_BASE_ROOTFS: {
		const char *p = json_string_value(json_object_get(raw, "rootfs"));

		char buf[4096];

		fprintf(f, "# base: a root filesystem tar, sha256:%s\nFROM scratch%s\nADD ",
			b->sha256, as);
		sh_word(f, p ? ctx_path(p, up, buf, sizeof(buf)) : b->path);
		fputs(" /\n", f);
		break;
	}
	case EP_BASE_OCI: {
		const char *p = json_string_value(json_object_get(raw, "oci"));

		fprintf(f,
			"# base: image %s of the OCI layout '%s'; give it as a build context:\n"
			"#   docker buildx build --build-context base=oci-layout://%s@%s .\nFROM "
			"base%s\n",
			b->digest, p ? p : b->path, p ? p : b->path, b->digest, as);
		break;
	}
	case EP_BASE_IMAGE: {
		const char *d = json_string_value(json_object_get(lb, "digest"));

		if (d && !strchr(b->image, '@'))
			fprintf(f, "FROM %s@%s%s\n", b->image, d, as);
		else
			fprintf(f, "FROM %s%s\n", b->image, as);
		break;
	}
	case EP_BASE_DEBIAN: {
		int minbase = !b->variant || !strcmp(b->variant, "minbase");

		fprintf(f, "# base: Debian %s (mmdebstrap --variant=%s%s%s for envpin)\n", b->suite,
			b->variant ? b->variant : "minbase", b->mirror ? " from " : "",
			b->mirror ? b->mirror : "");
		fprintf(f, "FROM debian:%s%s%s\n", b->suite, minbase ? "-slim" : "", as);
		if (b->n_packages || has_pip)
			apt_line(f, b->packages, b->n_packages, json_object_get(lb, "packages"),
				 has_pip);
		break;
	}
	}
}

static void do_copy(FILE *f, const struct ep_step *st, const char *up)
{
	for (size_t i = 0; i < st->n; i++) {
		const struct ep_copy *c = &st->copy[i];

		fputs("COPY", f);
		if (c->from)
			fprintf(f, " --from=%s", c->from);
		if (c->mode >= 0)
			fprintf(f, " --chmod=%04o", (unsigned)c->mode);
		if (c->uid || c->gid)
			fprintf(f, " --chown=%lld:%lld", (long long)c->uid, (long long)c->gid);
		char buf[4096];
		const char *src = c->from ? c->src : ctx_path(c->src, up, buf, sizeof(buf));

		if (safe_word(src) && safe_word(c->dest)) {
			fprintf(f, " %s %s\n", src, c->dest);
		} else {
			json_t *a = json_pack("[s, s]", src, c->dest);

			fputc(' ', f);
			json_form(f, a);
			fputc('\n', f);
			json_decref(a);
		}
	}
}

static void do_fetch(FILE *f, const struct ep_step *st, size_t si)
{
	for (size_t i = 0; i < st->n; i++) {
		const struct ep_fetch *x = &st->fetch[i];

		if (!x->extract) {
			fprintf(f, "ADD --checksum=sha256:%s %s %s\n", x->sha256, x->url, x->dest);
			continue;
		}
		/* ADD unpacks local tars only; envpin unpacks fetched archives */
		fprintf(f, "ADD --checksum=sha256:%s %s /tmp/envpin-fetch-%zu-%zu\n", x->sha256,
			x->url, si, i);
		fprintf(f, "RUN mkdir -p %s && ", x->dest);
		if (strlen(x->url) > 4 && !strcmp(x->url + strlen(x->url) - 4, ".zip"))
			fprintf(f, "unzip -q /tmp/envpin-fetch-%zu-%zu -d %s", si, i, x->dest);
		else
			fprintf(f, "tar -xf /tmp/envpin-fetch-%zu-%zu -C %s", si, i, x->dest);
		fprintf(f, " && rm /tmp/envpin-fetch-%zu-%zu\n", si, i);
	}
}

static void do_pip(FILE *f, const struct ep_step *st, json_t *locked)
{
	json_t *wheels = json_object_get(locked, "wheels");
	json_t *req = json_object_get(locked, "requirements");
	int pinned = json_is_array(wheels) && json_array_size(wheels) && json_is_array(req) &&
		     json_array_size(req) == st->n;
	size_t i;
	json_t *w;

	for (i = 0; pinned && i < st->n; i++)
		if (!json_is_string(json_array_get(req, i)) ||
		    strcmp(json_string_value(json_array_get(req, i)), st->words[i]))
			pinned = 0;
	if (!pinned) {
		fputs("RUN python3 -m pip install --no-cache-dir --break-system-packages", f);
		for (i = 0; i < st->n; i++) {
			fputs(" \\\n      ", f);
			sh_word(f, st->words[i]);
		}
		fputc('\n', f);
		return;
	}
	fputs("# the wheels the lock pins (envpin unpacks them itself; Docker needs pip)\n", f);
	fputs("RUN printf '%s\\n'", f);
	json_array_foreach (wheels, i, w) {
		const char *n = json_string_value(json_object_get(w, "name"));
		const char *v = json_string_value(json_object_get(w, "version"));
		const char *h = json_string_value(json_object_get(w, "sha256"));
		char *line;

		if (!n || !v || !h || asprintf(&line, "%s==%s --hash=sha256:%s", n, v, h) < 0)
			continue;
		fputs(" \\\n      ", f);
		sh_word(f, line);
		free(line);
	}
	fputs(" \\\n      > /tmp/envpin-requirements.txt && \\\n"
	      "    python3 -m pip install --no-cache-dir --no-deps --require-hashes "
	      "--break-system-packages \\\n"
	      "      -r /tmp/envpin-requirements.txt && \\\n    rm /tmp/envpin-requirements.txt\n",
	      f);
}

static int do_config(FILE *f, json_t *c, struct ep_error *err)
{
	json_t *v;
	size_t n, i;

	if (!c)
		return 0;
	if ((v = json_object_get(c, "env")) && json_object_size(v)) {
		cleanup_free const char **keys = sorted_keys(v, &n, err);

		if (!keys)
			return -1;
		for (i = 0; i < n; i++) {
			fprintf(f, "ENV %s=", keys[i]);
			dq(f, json_string_value(json_object_get(v, keys[i])));
			fputc('\n', f);
		}
	}
	if ((v = json_object_get(c, "labels")) && json_object_size(v)) {
		cleanup_free const char **keys = sorted_keys(v, &n, err);

		if (!keys)
			return -1;
		for (i = 0; i < n; i++) {
			fputs("LABEL ", f);
			dq(f, keys[i]);
			fputc('=', f);
			dq(f, json_string_value(json_object_get(v, keys[i])));
			fputc('\n', f);
		}
	}
	if ((v = json_object_get(c, "exposed_ports"))) {
		json_t *p;

		json_array_foreach (v, i, p)
			fprintf(f, "EXPOSE %s\n", json_string_value(p));
	}
	if ((v = json_object_get(c, "user")))
		fprintf(f, "USER %s\n", json_string_value(v));
	if ((v = json_object_get(c, "workdir")))
		fprintf(f, "WORKDIR %s\n", json_string_value(v));
	if ((v = json_object_get(c, "entrypoint"))) {
		fputs("ENTRYPOINT ", f);
		json_form(f, v);
		fputc('\n', f);
	}
	if ((v = json_object_get(c, "cmd"))) {
		fputs("CMD ", f);
		json_form(f, v);
		fputc('\n', f);
	}
	return 0;
}

/* A run step: RUN in exec form.  Its env holds for the step only, so it is
 * given through env(1) rather than ENV (which the image would keep); its
 * working dir and user through WORKDIR and USER, set back afterwards; its
 * mounts as read-only bind mounts of the build context. */
static void do_run(FILE *f, const struct ep_step *st, const char *up)
{
	json_t *a = json_array();

	if (st->run.workdir)
		fprintf(f, "WORKDIR %s\n", st->run.workdir);
	if (st->run.user)
		fprintf(f, "USER %s\n", st->run.user);
	if (st->run.n_env) {
		json_array_append_new(a, json_string("env"));
		for (size_t k = 0; k < st->run.n_env; k++)
			json_array_append_new(a, json_string(st->run.env[k]));
		json_array_append_new(a, json_string("--"));
	}
	for (size_t k = 0; k < st->n; k++)
		json_array_append_new(a, json_string(st->words[k]));
	fputs("RUN ", f);
	for (size_t k = 0; k < st->run.n_mounts; k++) {
		const struct ep_mount *mt = &st->run.mounts[k];
		char buf[4096];
		const char *src = ctx_path(mt->src, up, buf, sizeof(buf));
		size_t n = strlen(src);

		fprintf(f, "--mount=type=bind,source=%.*s,target=%s ",
			(int)(n > 1 && src[n - 1] == '/' ? n - 1 : n), src, mt->dest);
	}
	json_form(f, a);
	fputc('\n', f);
	json_decref(a);
	if (st->run.user)
		fputs("USER 0:0\n", f);
	if (st->run.workdir)
		fputs("WORKDIR /\n", f);
}

static void do_steps(FILE *f, const struct ep_step *steps, size_t n_steps, json_t *inputs,
		     const char *up)
{
	json_t *llayers = json_object_get(inputs, "layers");

	for (size_t i = 0; i < n_steps; i++) {
		const struct ep_step *st = &steps[i];
		json_t *l = json_array_get(llayers, i);

		fprintf(f, "# layers[%zu]\n", i);
		switch (st->kind) {
		case EP_STEP_COPY:
			do_copy(f, st, up);
			break;
		case EP_STEP_APT: {
			/* the lock's .debs pin the requested packages' versions */
			json_t *pl = ep_apt_pkglist(json_object_get(l, "debs"));

			apt_line(f, st->words, st->n, pl, 0);
			json_decref(pl);
			break;
		}
		case EP_STEP_FETCH:
			do_fetch(f, st, i);
			break;
		case EP_STEP_PIP:
			do_pip(f, st, l);
			break;
		case EP_STEP_RUN:
			do_run(f, st, up);
			break;
		}
	}
}

/* A build stage and, first, the stages it copies from (each once). */
static void do_stage(FILE *f, const struct ep_manifest *m, json_t *lock, const char *name,
		     json_t *done, const char *up)
{
	const struct ep_stage *sg = ep_manifest_stage(m, name);
	json_t *inputs =
	    json_object_get(json_object_get(json_object_get(lock, "stages"), name), "inputs");

	if (!sg || json_object_get(done, name))
		return;
	json_object_set_new(done, name, json_true());
	for (size_t i = 0; i < sg->n_needs; i++)
		do_stage(f, m, lock, sg->needs[i], done, up);
	fprintf(f, "# stages.%s\n", name);
	do_base(f, &sg->base, json_object_get(json_object_get(m->root, "stages"), name), inputs, 0,
		name, up);
	do_steps(f, sg->steps, sg->n_steps, inputs, up);
}

char *ep_dockerfile(const struct ep_manifest *m, json_t *lock, struct ep_error *err)
{
	const char *slash = strrchr(m->path, '/');
	struct out o = {0};
	int has_pip = 0, parent = steps_leave(m->steps, m->n_steps);
	cleanup_json json_t *done = json_object();
	cleanup_free char *up = NULL;

	o.f = done ? open_memstream(&o.buf, &o.len) : NULL;
	if (!o.f) {
		ep_error_oom(err);
		return NULL;
	}
	for (size_t i = 0; i < m->n_steps; i++)
		has_pip |= m->steps[i].kind == EP_STEP_PIP;
	parent |= base_leaves(m->root);
	for (size_t i = 0; i < m->n_stages; i++)
		parent |= steps_leave(m->stages[i].steps, m->stages[i].n_steps) ||
			  base_leaves(json_object_get(json_object_get(m->root, "stages"),
						      m->stages[i].name));
	if (parent) {
		const char *base = strrchr(m->dir, '/');

		up = ep_asprintf(err, "%s/", base && base[1] ? base + 1 : m->dir);
		if (!up) {
			fclose(o.f);
			free(o.buf);
			return NULL;
		}
	}
	fprintf(o.f,
		"# syntax=docker/dockerfile:1.7\n"
		"# Generated by 'envpin dockerfile -f %s'%s; do not edit.\n"
		"%s"
		"# 'envpin build' gives the pinned, bit-for-bit reproducible one.\n"
		"ARG SOURCE_DATE_EPOCH=%lld\n",
		slash ? slash + 1 : m->path, lock ? " with its lock" : "",
		parent ? "# Build context: the parent of the manifest's directory (a source is\n"
			 "# '../...'), so paths below start there.  Docker gives an equivalent image;\n"
		       : "# Build context: the manifest's directory.  Docker gives an equivalent image;\n",
		(long long)m->source_date_epoch);
	for (size_t i = 0; i < m->n_needs; i++)
		do_stage(o.f, m, lock, m->needs[i], done, up);
	if (m->n_stages)
		fputs("# the image\n", o.f);
	do_base(o.f, &m->base, m->root, json_object_get(lock, "inputs"),
		has_pip && m->base.kind == EP_BASE_DEBIAN, NULL, up);
	do_steps(o.f, m->steps, m->n_steps, json_object_get(lock, "inputs"), up);
	if (m->config)
		fputs("# config\n", o.f);
	if (do_config(o.f, m->config, err) < 0) {
		fclose(o.f);
		free(o.buf);
		return NULL;
	}
	if (fclose(o.f) != 0) {
		free(o.buf);
		ep_error_oom(err);
		return NULL;
	}
	return o.buf;
}
