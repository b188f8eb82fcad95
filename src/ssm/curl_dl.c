/* SPDX-License-Identifier: MIT */
/* curl_dl.c - libcurl loaded on the first SSM call, and initialised then with the library's
 * allocators (curl_dl.h). */
#define BK_CURL_DL_TABLE /* the table itself: the names stay libcurl's */
#include "curl_dl.h"

#include "dl.h"

#include <stdatomic.h>

bk_curl_api bk_curl;

BK_DL_NOTE(bk_curl_note,
           "[{\"feature\":\"ssm\",\"description\":\"the SSM calls (getting and refreshing "
           "access_tokens over HTTP)\",\"priority\":\"required\",\"soname\":[\"libcurl.so.4\"]}]");

static int curl_resolve(void *h, const char **missing)
{
#define BK_CURL_SYM(name)                                                                                    \
    if (bk_dl_sym(h, #name, &bk_curl.name, sizeof bk_curl.name, missing) != 0) return -1;
    BK_CURL_FUNCS(BK_CURL_SYM)
#undef BK_CURL_SYM
    return 0;
}

static bk_dl_lib curl_lib =
    BK_DL_LIB("libcurl.so.4", "libcurl4", "an SSM call", BKOAUTH_E_TOKEN_API, curl_resolve);

/* libcurl's allocations go through these, which count them, so that the library can tell
 * whether libcurl allocates through it (a program that initialised libcurl first keeps its own
 * allocators). */
static _Thread_local unsigned long curl_allocations;
static atomic_int curl_counted;

static void *curl_malloc_w(size_t size)
{
    curl_allocations++;
    return bkoauth__pooled_malloc(size);
}

static void *curl_calloc_w(size_t count, size_t size)
{
    curl_allocations++;
    return bkoauth__pooled_calloc(count, size);
}

static void *curl_realloc_w(void *ptr, size_t size)
{
    curl_allocations++;
    return bkoauth__pooled_realloc(ptr, size);
}

static char *curl_strdup_w(const char *s)
{
    curl_allocations++;
    return bkoauth__pooled_strdup(s);
}

/* libcurl's process-wide initialisation with the library's allocators (curl_global_init_mem).
 * BKOAUTH_E_NOMEM or BKOAUTH_E_TOKEN_API. Run once, under bk_dl_lock(). */
static bkoauth_code curl_global_init_ours(bkoauth_error *err)
{
    unsigned long failed = bkoauth__alloc_failures();
    CURLcode rc = bk_curl.curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_malloc_w, bkoauth__free,
                                               curl_realloc_w, curl_strdup_w, curl_calloc_w);
    if (rc == CURLE_OK) {
        /* one allocation by libcurl tells whose allocators it uses */
        unsigned long before = curl_allocations;
        struct curl_slist *probe = bk_curl.curl_slist_append(NULL, "x");
        if (probe == NULL) return err_nomem(err);
        atomic_store(&curl_counted, curl_allocations != before);
        bk_curl.curl_slist_free_all(probe);
        return BKOAUTH_OK;
    }
    if (rc == CURLE_OUT_OF_MEMORY || bkoauth__alloc_failures() != failed) return err_nomem(err);
    return err_set(err, BKOAUTH_E_TOKEN_API, "cannot initialise libcurl: %s", bk_curl.curl_easy_strerror(rc));
}

int bkoauth__curl_allocations_counted(void)
{
    return atomic_load(&curl_counted);
}

/* libcurl's process-wide initialisation, once it succeeds (a failure, such as running out of
 * memory, is not remembered), under the lock of the loads (a child after fork() gets it
 * unlocked). */
static atomic_bool curl_init_done;

bkoauth_code bk_curl_load(bkoauth_error *err)
{
    if (atomic_load_explicit(&curl_init_done, memory_order_acquire)) return BKOAUTH_OK;
    bkoauth_code rc = bk_dl_load(&curl_lib, err);
    if (rc != BKOAUTH_OK) return rc;
    bk_dl_lock();
    if (!atomic_load_explicit(&curl_init_done, memory_order_relaxed)) {
        rc = curl_global_init_ours(err);
        if (rc == BKOAUTH_OK) atomic_store_explicit(&curl_init_done, 1, memory_order_release);
    }
    bk_dl_unlock();
    return rc;
}
