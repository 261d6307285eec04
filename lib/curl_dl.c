#define EP_CURL_DL_IMPL
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

struct ep_curl_api ep_curl_api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_msg[512];

static void do_load(void)
{
	void *h = dlopen(EP_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	void *sym;

	if (!h) {
		const char *e = dlerror();
		snprintf(load_msg, sizeof(load_msg), "%s", e ? e : EP_CURL_SONAME ": cannot load");
		load_rc = -1;
		return;
	}
#define EP_CURL_SYM(f)                                                                             \
	sym = dlsym(h, #f);                                                                        \
	if (!sym) {                                                                                \
		snprintf(load_msg, sizeof(load_msg), "%s: no symbol %s", EP_CURL_SONAME, #f);      \
		load_rc = -1;                                                                      \
		return;                                                                            \
	}                                                                                          \
	*(void **)&ep_curl_api.p_##f = sym;
	EP_CURL_FUNCS(EP_CURL_SYM)
#undef EP_CURL_SYM
	/* the handle stays open for the life of the process */
	load_rc = 0;
}

int ep_curl_load(struct ep_error *err)
{
	pthread_once(&load_once, do_load);
	if (load_rc < 0)
		return ep_error_set(err, EP_EENV,
				    "the network library is missing (%s); install libcurl4 "
				    "(Debian: apt-get install libcurl4)",
				    load_msg);
	return 0;
}

CURLcode ep_curl_global_init(long flags)
{
	return ep_curl_load(NULL) < 0 ? CURLE_FAILED_INIT : ep_curl_api.p_curl_global_init(flags);
}

CURL *ep_curl_easy_init(void)
{
	return ep_curl_load(NULL) < 0 ? NULL : ep_curl_api.p_curl_easy_init();
}

CURLU *ep_curl_url(void)
{
	return ep_curl_load(NULL) < 0 ? NULL : ep_curl_api.p_curl_url();
}

struct curl_slist *ep_curl_slist_append(struct curl_slist *l, const char *s)
{
	return ep_curl_load(NULL) < 0 ? NULL : ep_curl_api.p_curl_slist_append(l, s);
}

char *ep_curl_easy_escape(CURL *h, const char *s, int len)
{
	return ep_curl_load(NULL) < 0 ? NULL : ep_curl_api.p_curl_easy_escape(h, s, len);
}

const char *ep_curl_easy_strerror(CURLcode c)
{
	return ep_curl_load(NULL) < 0 ? "libcurl is not loaded"
				      : ep_curl_api.p_curl_easy_strerror(c);
}
