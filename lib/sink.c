#include "sink.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

int ep_sink_finish(struct ep_sink *s, struct ep_error *err)
{
	if (s->finish)
		return s->finish(s, err);
	return s->next ? ep_sink_finish(s->next, err) : 0;
}

void ep_sink_release(struct ep_sink *s)
{
	if (s && s->release)
		s->release(s);
}

static int fd_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct ep_fd_sink *f = (struct ep_fd_sink *)s;

	if (ep_write_all(f->fd, buf, len, err) < 0)
		return -1;
	f->bytes += len;
	return 0;
}

void ep_fd_sink_init(struct ep_fd_sink *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->base.write = fd_write;
	s->fd = fd;
}

static int hash_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct ep_hash_sink *h = (struct ep_hash_sink *)s;

	ep_sha256_update(&h->sha, buf, len);
	h->bytes += len;
	return s->next ? ep_sink_write(s->next, buf, len, err) : 0;
}

static int hash_finish(struct ep_sink *s, struct ep_error *err)
{
	struct ep_hash_sink *h = (struct ep_hash_sink *)s;

	ep_sha256_final(&h->sha, h->digest);
	return s->next ? ep_sink_finish(s->next, err) : 0;
}

static void hash_release(struct ep_sink *s)
{
	ep_sha256_release(&((struct ep_hash_sink *)s)->sha);
}

int ep_hash_sink_init(struct ep_hash_sink *s, struct ep_sink *next, struct ep_error *err)
{
	memset(s, 0, sizeof(*s));
	s->base.write = hash_write;
	s->base.finish = hash_finish;
	s->base.release = hash_release;
	s->base.next = next;
	return ep_sha256_init(&s->sha, err);
}

static int mem_write(struct ep_sink *s, const void *buf, size_t len, struct ep_error *err)
{
	struct ep_mem_sink *m = (struct ep_mem_sink *)s;

	if (len > m->max - m->len)
		return ep_error_set(err, EP_EINVAL, "data exceeds the limit of %zu bytes", m->max);
	if (m->len + len + 1 > m->cap) {
		size_t nc = m->cap ? m->cap : 4096;
		char *nd;

		while (nc < m->len + len + 1)
			nc *= 2;
		nd = ep_realloc(m->data, nc, err);
		if (!nd)
			return -1;
		m->data = nd;
		m->cap = nc;
	}
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	m->data[m->len] = '\0';
	return 0;
}

static void mem_release(struct ep_sink *s)
{
	struct ep_mem_sink *m = (struct ep_mem_sink *)s;

	free(m->data);
	m->data = NULL;
	m->len = m->cap = 0;
}

void ep_mem_sink_init(struct ep_mem_sink *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->base.write = mem_write;
	s->base.release = mem_release;
	s->max = max;
}
