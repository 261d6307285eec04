/* lib/curl_dl.h - libcurl, loaded with dlopen on first use.
 *
 * envpin links no network library: `run`, `verify` and the other local
 * commands would otherwise load libcurl's chain of ~20 shared libraries
 * (TLS, Kerberos, LDAP, IDN, ...) and run their constructors at every start
 * (about 3.5 ms of the 6 ms a bare `envpin version` took).  Code that talks
 * to the network includes this header instead of <curl/curl.h>; its calls
 * keep their libcurl names, the macros below route them through a table
 * filled by dlopen("libcurl.so.4").
 *
 * The entry points (curl_global_init, curl_easy_init, curl_url,
 * curl_slist_append, curl_easy_escape, curl_easy_strerror) load the library
 * themselves and fail as libcurl would on allocation failure (NULL,
 * CURLE_FAILED_INIT) when it cannot be loaded; every other function takes an
 * object only those return.  Call ep_curl_load() first to get the reason. */
#ifndef EP_CURL_DL_H
#define EP_CURL_DL_H

#include <curl/curl.h>

#include "error.h"

#define EP_CURL_SONAME "libcurl.so.4"

/* X(name): every libcurl function envpin calls. */
#define EP_CURL_FUNCS(X)                                                                           \
	X(curl_global_init)                                                                        \
	X(curl_easy_init)                                                                          \
	X(curl_easy_cleanup)                                                                       \
	X(curl_easy_reset)                                                                         \
	X(curl_easy_setopt)                                                                        \
	X(curl_easy_getinfo)                                                                       \
	X(curl_easy_perform)                                                                       \
	X(curl_easy_strerror)                                                                      \
	X(curl_easy_escape)                                                                        \
	X(curl_free)                                                                               \
	X(curl_slist_append)                                                                       \
	X(curl_slist_free_all)                                                                     \
	X(curl_url)                                                                                \
	X(curl_url_cleanup)                                                                        \
	X(curl_url_get)                                                                            \
	X(curl_url_set)

struct ep_curl_api {
#define EP_CURL_FIELD(f) __typeof__(f) *p_##f;
	EP_CURL_FUNCS(EP_CURL_FIELD)
#undef EP_CURL_FIELD
};

/* Filled once by ep_curl_load(); read-only afterwards. */
extern struct ep_curl_api ep_curl_api;

/* Loads libcurl (once, thread-safe).  0, or -1 with EP_EENV and the reason. */
int ep_curl_load(struct ep_error *err);

/* The entry points: load, then call; NULL / CURLE_FAILED_INIT when the
 * library cannot be loaded. */
CURLcode ep_curl_global_init(long flags);
CURL *ep_curl_easy_init(void);
CURLU *ep_curl_url(void);
struct curl_slist *ep_curl_slist_append(struct curl_slist *l, const char *s);
char *ep_curl_easy_escape(CURL *h, const char *s, int len);
const char *ep_curl_easy_strerror(CURLcode c);

#ifndef EP_CURL_DL_IMPL
/* curl/typecheck-gcc.h wraps these two in checking macros that call the
 * linked symbol; the table's pointers replace them. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init ep_curl_global_init
#define curl_easy_init ep_curl_easy_init
#define curl_url ep_curl_url
#define curl_slist_append ep_curl_slist_append
#define curl_easy_escape ep_curl_easy_escape
#define curl_easy_strerror ep_curl_easy_strerror
#define curl_easy_cleanup (*ep_curl_api.p_curl_easy_cleanup)
#define curl_easy_reset (*ep_curl_api.p_curl_easy_reset)
#define curl_easy_setopt (*ep_curl_api.p_curl_easy_setopt)
#define curl_easy_getinfo (*ep_curl_api.p_curl_easy_getinfo)
#define curl_easy_perform (*ep_curl_api.p_curl_easy_perform)
#define curl_free (*ep_curl_api.p_curl_free)
#define curl_slist_free_all (*ep_curl_api.p_curl_slist_free_all)
#define curl_url_cleanup (*ep_curl_api.p_curl_url_cleanup)
#define curl_url_get (*ep_curl_api.p_curl_url_get)
#define curl_url_set (*ep_curl_api.p_curl_url_set)
#endif

#endif
