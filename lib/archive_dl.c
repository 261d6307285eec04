#define EP_ARCHIVE_DL_IMPL
#include "archive_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

struct ep_archive_api ep_archive_api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_msg[512];

static void do_load(void)
{
	void *h = dlopen(EP_ARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
	void *sym;

	if (!h) {
		const char *e = dlerror();
		snprintf(load_msg, sizeof(load_msg), "%s",
			 e ? e : EP_ARCHIVE_SONAME ": cannot load");
		load_rc = -1;
		return;
	}
#define EP_ARCHIVE_SYM(f)                                                                          \
	sym = dlsym(h, #f);                                                                        \
	if (!sym) {                                                                                \
		snprintf(load_msg, sizeof(load_msg), "%s: no symbol %s", EP_ARCHIVE_SONAME, #f);   \
		load_rc = -1;                                                                      \
		return;                                                                            \
	}                                                                                          \
	*(void **)&ep_archive_api.p_##f = sym;
	EP_ARCHIVE_FUNCS(EP_ARCHIVE_SYM)
#undef EP_ARCHIVE_SYM
	/* the handle stays open for the life of the process */
	load_rc = 0;
}

int ep_archive_load(struct ep_error *err)
{
	pthread_once(&load_once, do_load);
	if (load_rc < 0)
		return ep_error_set(err, EP_EENV,
				    "the archive library is missing (%s); install libarchive13 "
				    "(Debian: apt-get install libarchive13)",
				    load_msg);
	return 0;
}

struct archive *ep_archive_read_new(void)
{
	return ep_archive_load(NULL) < 0 ? NULL : ep_archive_api.p_archive_read_new();
}

struct archive *ep_archive_write_new(void)
{
	return ep_archive_load(NULL) < 0 ? NULL : ep_archive_api.p_archive_write_new();
}

struct archive_entry *ep_archive_entry_new(void)
{
	return ep_archive_load(NULL) < 0 ? NULL : ep_archive_api.p_archive_entry_new();
}

const char *ep_archive_version_string(void)
{
	return ep_archive_load(NULL) < 0 ? "(not loaded)"
					 : ep_archive_api.p_archive_version_string();
}

int ep_archive_read_free(struct archive *a)
{
	return a ? ep_archive_api.p_archive_read_free(a) : ARCHIVE_OK;
}

int ep_archive_write_free(struct archive *a)
{
	return a ? ep_archive_api.p_archive_write_free(a) : ARCHIVE_OK;
}

void ep_archive_entry_free(struct archive_entry *e)
{
	if (e)
		ep_archive_api.p_archive_entry_free(e);
}
