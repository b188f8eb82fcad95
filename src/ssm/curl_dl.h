/* SPDX-License-Identifier: MIT */
/* curl_dl.h - libcurl, loaded on the first SSM call (../dl.h). Included instead of <curl/curl.h>
 * by the files that call libcurl: the names they use are mapped onto the table bk_curl, filled by
 * bk_curl_load(). Internal to src/ssm/. */
#ifndef BKOAUTH_SSM_CURL_DL_H
#define BKOAUTH_SSM_CURL_DL_H

#include "../internal.h"

#include <curl/curl.h>

/* The functions of libcurl the library calls. */
#define BK_CURL_FUNCS(X)                                                                                     \
    X(curl_easy_cleanup)                                                                                     \
    X(curl_easy_getinfo)                                                                                     \
    X(curl_easy_init)                                                                                        \
    X(curl_easy_perform)                                                                                     \
    X(curl_easy_reset)                                                                                       \
    X(curl_easy_setopt)                                                                                      \
    X(curl_easy_strerror)                                                                                    \
    X(curl_free)                                                                                             \
    X(curl_global_init_mem)                                                                                  \
    X(curl_slist_append)                                                                                     \
    X(curl_slist_free_all)                                                                                   \
    X(curl_url)                                                                                              \
    X(curl_url_cleanup)                                                                                      \
    X(curl_url_get)                                                                                          \
    X(curl_url_set)

#define BK_CURL_MEMBER(name) __typeof__(&name) name;
typedef struct bk_curl_api {
    BK_CURL_FUNCS(BK_CURL_MEMBER)
} bk_curl_api;
#undef BK_CURL_MEMBER
extern bk_curl_api bk_curl;

/* Loads libcurl (libcurl.so.4) once per process and initialises it with the library's allocators
 * (curl_global_init_mem, alloc.c's counting wrappers). Thread-safe. BKOAUTH_OK, or
 * BKOAUTH_E_TOKEN_API saying which package to install, or BKOAUTH_E_NOMEM; a failure is tried
 * again by the next call. */
bkoauth_code bk_curl_load(bkoauth_error *err);

#ifndef BK_CURL_DL_TABLE
/* curl.h's type-checking macros call the functions by name: the table's pointers instead */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_cleanup (bk_curl.curl_easy_cleanup)
#define curl_easy_getinfo (bk_curl.curl_easy_getinfo)
#define curl_easy_init (bk_curl.curl_easy_init)
#define curl_easy_perform (bk_curl.curl_easy_perform)
#define curl_easy_reset (bk_curl.curl_easy_reset)
#define curl_easy_setopt (bk_curl.curl_easy_setopt)
#define curl_easy_strerror (bk_curl.curl_easy_strerror)
#define curl_free (bk_curl.curl_free)
#define curl_global_init_mem (bk_curl.curl_global_init_mem)
#define curl_slist_append (bk_curl.curl_slist_append)
#define curl_slist_free_all (bk_curl.curl_slist_free_all)
#define curl_url (bk_curl.curl_url)
#define curl_url_cleanup (bk_curl.curl_url_cleanup)
#define curl_url_get (bk_curl.curl_url_get)
#define curl_url_set (bk_curl.curl_url_set)
#endif

#endif
