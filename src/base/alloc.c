/* SPDX-License-Identifier: MIT */
/* alloc.c - every allocation of the library goes through here: the allocators of
 * bkoauth_set_allocators() (the C library's by default), a per-thread count of failed
 * allocations, secret wiping, and the Jansson helpers that keep Jansson's memory and failures
 * apart from ours.
 *
 * The count of failures is what lets a caller tell "out of memory" from "bad input" after a
 * call into code that does not say which (Jansson's parser reports an allocation failure as a
 * syntax error, or drops bytes and carries on; libcurl has error codes of its own): take
 * bkoauth__alloc_failures() before, compare after. It counts the failures of this thread only,
 * so other threads running out of memory meanwhile do not count. */
#include "json.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct bk_allocators {
    bkoauth_malloc_fn malloc_fn;
    bkoauth_calloc_fn calloc_fn; /* NULL: malloc_fn and a memset */
    bkoauth_realloc_fn realloc_fn;
    bkoauth_free_fn free_fn;
    bkoauth_strdup_fn strdup_fn; /* NULL: malloc_fn and a memcpy */
} bk_allocators;

/* Written only by bkoauth_set_allocators(), which the caller runs before any other call and
 * before other threads use the library (bkoauth.h); read everywhere after. */
static bk_allocators bk_alloc = {malloc, calloc, realloc, free, NULL};
static int bk_alloc_given; /* the program gave its own (then libcurl's blocks go through them too) */

static _Thread_local unsigned long bk_alloc_failed;

static void *bk_failed(void)
{
    bk_alloc_failed++;
    return NULL;
}

unsigned long bkoauth__alloc_failures(void)
{
    return bk_alloc_failed;
}

void *bkoauth__malloc(size_t size)
{
    void *p = bk_alloc.malloc_fn(size ? size : 1);
    return p != NULL ? p : bk_failed();
}

/* glibc's calloc never takes a block from the thread's cache (tcache) though free() puts blocks
 * there: zeroed blocks of up to 1 KiB freed and allocated again by calloc would leave up to 7 of
 * each size behind in every thread that frees them. Those are allocated with malloc and zeroed
 * here instead (what calloc does for them anyway); bigger ones go to calloc, which can skip the
 * zeroing of fresh pages. */
#define BK_SMALL_CALLOC 1024

void *bkoauth__calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0) count = size = 1;
    if (bk_alloc.calloc_fn != NULL && (bk_alloc.calloc_fn != calloc || count > BK_SMALL_CALLOC / size)) {
        void *p = bk_alloc.calloc_fn(count, size);
        return p != NULL ? p : bk_failed();
    }
    if (count > SIZE_MAX / size) return bk_failed();
    void *p = bk_alloc.malloc_fn(count * size);
    if (p == NULL) return bk_failed();
    memset(p, 0, count * size);
    return p;
}

void *bkoauth__realloc(void *ptr, size_t size)
{
    if (bkoauth__slab_owns(ptr)) return bkoauth__pooled_realloc(ptr, size);
    void *p = bk_alloc.realloc_fn(ptr, size ? size : 1);
    return p != NULL ? p : bk_failed();
}

void bkoauth__free(void *ptr)
{
    if (ptr == NULL) return;
    if (bkoauth__slab_owns(ptr))
        bkoauth__slab_free(ptr);
    else
        bk_alloc.free_fn(ptr);
}

void bkoauth__libc_free(void *ptr)
{
    free(ptr);
}

/* ---- blocks from the library's pool (slab.c), for libcurl ----------------------------------- */

void *bkoauth__pool_try(size_t size)
{
    return bk_alloc_given ? NULL : bkoauth__slab_malloc(size ? size : 1);
}

void *bkoauth__pooled_malloc(size_t size)
{
    if (!bk_alloc_given) {
        void *p = bkoauth__slab_malloc(size ? size : 1);
        if (p != NULL) return p;
    }
    return bkoauth__malloc(size);
}

void *bkoauth__pooled_calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0) count = size = 1;
    if (count > SIZE_MAX / size) return bk_failed();
    void *p = bk_alloc_given ? NULL : bkoauth__slab_malloc(count * size);
    if (p == NULL) return bkoauth__calloc(count, size);
    memset(p, 0, count * size);
    return p;
}

char *bkoauth__pooled_strdup(const char *s)
{
    if (bk_alloc_given || s == NULL) return bkoauth__strdup(s);
    size_t n = strlen(s);
    char *p = bkoauth__slab_malloc(n + 1);
    if (p == NULL) return bkoauth__strdup(s);
    memcpy(p, s, n + 1);
    return p;
}

void *bkoauth__pooled_realloc(void *ptr, size_t size)
{
    if (ptr == NULL) return bkoauth__pooled_malloc(size);
    if (!bkoauth__slab_owns(ptr)) return bkoauth__realloc(ptr, size);
    size_t old = bkoauth__slab_block_size(ptr);
    if (size <= old) return ptr; /* the block is kept: a smaller class would only move it */
    void *p = bkoauth__pooled_malloc(size);
    if (p == NULL) return NULL; /* counted; ptr is untouched, as with realloc() */
    memcpy(p, ptr, old);
    bkoauth__slab_free(ptr);
    return p;
}

char *bkoauth__strndup(const char *s, size_t n)
{
    if (s == NULL) return NULL;
    if (n == SIZE_MAX) return bk_failed();
    char *p = bk_alloc.malloc_fn(n + 1);
    if (p == NULL) return bk_failed();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *bkoauth__strdup(const char *s)
{
    if (s == NULL) return NULL;
    if (bk_alloc.strdup_fn != NULL) {
        char *p = bk_alloc.strdup_fn(s);
        return p != NULL ? p : bk_failed();
    }
    return bkoauth__strndup(s, strlen(s));
}

void bkoauth__wipe(void *p, size_t n)
{
    if (p == NULL || n == 0) return;
    explicit_bzero(p, n); /* glibc 2.25, musl, the BSDs: never optimised away */
}

void bkoauth__wipe_free(void *p, size_t n)
{
    if (p == NULL) return;
    bkoauth__wipe(p, n);
    bkoauth__free(p);
}

/* ---- giving free pages back ----------------------------------------------------------------- */

/* glibc keeps the pages of freed blocks inside its arenas (one per thread group, many with many
 * threads); blocks that live long amid short-lived ones leave free pages that stay resident.
 * malloc_trim(0) drops them (MADV_DONTNEED), arena by arena, each under that arena's lock: a
 * millisecond or so with a few MB of heap, so it runs at most once every few seconds, in the
 * thread that claims the turn, never where the library holds a lock. */
static atomic_llong bk_next_trim_ms;
static atomic_ulong bk_trims;

int bkoauth__memory_trim_maybe(int seconds)
{
#ifdef __GLIBC__
    if (seconds <= 0) return 0;
    long long now = (long long)bk_monotonic_coarse_ms();
    long long next = atomic_load_explicit(&bk_next_trim_ms, memory_order_relaxed);
    if (next == 0) { /* the first call starts the clock: nothing to give back yet */
        atomic_compare_exchange_strong(&bk_next_trim_ms, &next, now + seconds * 1000LL);
        return 0;
    }
    if (now < next) return 0;
    if (!atomic_compare_exchange_strong(&bk_next_trim_ms, &next, now + seconds * 1000LL)) return 0;
    malloc_trim(0);
    atomic_fetch_add_explicit(&bk_trims, 1, memory_order_relaxed);
    return 1;
#else
    (void)seconds;
    return 0;
#endif
}

unsigned long bkoauth__memory_trims(void)
{
    return atomic_load_explicit(&bk_trims, memory_order_relaxed);
}

/* ---- the public calls ----------------------------------------------------------------------- */

bkoauth_code bkoauth_set_allocators(bkoauth_malloc_fn malloc_fn, bkoauth_calloc_fn calloc_fn,
                                    bkoauth_realloc_fn realloc_fn, bkoauth_free_fn free_fn,
                                    bkoauth_strdup_fn strdup_fn, bkoauth_error *err)
{
    int given = (malloc_fn != NULL) + (realloc_fn != NULL) + (free_fn != NULL);
    if (given != 0 && given != 3)
        return err_set(err, BKOAUTH_E_INVALID,
                       "bkoauth_set_allocators: give malloc_fn, realloc_fn and free_fn together (or all "
                       "three NULL for the C library's); nothing was changed");
    if (given == 0 && (calloc_fn != NULL || strdup_fn != NULL))
        return err_set(err, BKOAUTH_E_INVALID,
                       "bkoauth_set_allocators: calloc_fn and strdup_fn need malloc_fn, realloc_fn and "
                       "free_fn; nothing was changed");
    if (given == 0) {
        bk_alloc.malloc_fn = malloc;
        bk_alloc.calloc_fn = calloc;
        bk_alloc.realloc_fn = realloc;
        bk_alloc.free_fn = free;
        bk_alloc.strdup_fn = NULL;
        bk_alloc_given = 0;
    } else {
        bk_alloc_given = 1;
        bk_alloc.malloc_fn = malloc_fn;
        bk_alloc.calloc_fn = calloc_fn;
        bk_alloc.realloc_fn = realloc_fn;
        bk_alloc.free_fn = free_fn;
        bk_alloc.strdup_fn = strdup_fn;
    }
    /* Jansson has one allocator per process: ours, so that its failures are counted */
    json_set_alloc_funcs(bkoauth__malloc, bkoauth__free);
    return err_ok(err);
}

void bkoauth_free(void *ptr)
{
    bkoauth__free(ptr);
}

/* ---- Jansson -------------------------------------------------------------------------------- */

json_t *bkoauth__json_loadb(const char *text, size_t len, size_t flags, json_error_t *error, int *oom)
{
    unsigned long failed = bkoauth__alloc_failures();
    json_t *j = json_loadb(text, len, flags, error);
    *oom = bkoauth__alloc_failures() != failed ||
           (j == NULL && json_error_code(error) == json_error_out_of_memory);
    if (*oom) { /* Jansson drops bytes it could not store and goes on: never trust such a result */
        json_decref(j);
        j = NULL;
    }
    return j;
}

char *bkoauth__json_dump(const json_t *json, size_t flags)
{
    unsigned long failed = bkoauth__alloc_failures();
    size_t need = json_dumpb(json, NULL, 0, flags);
    if (need == 0 || need == SIZE_MAX) return bk_failed();
    char *text = bkoauth__malloc(need + 1);
    if (text == NULL) return NULL;
    if (json_dumpb(json, text, need, flags) != need || bkoauth__alloc_failures() != failed) {
        bkoauth__wipe_free(text, need + 1);
        return bkoauth__alloc_failures() != failed ? NULL : bk_failed();
    }
    text[need] = '\0';
    return text;
}
