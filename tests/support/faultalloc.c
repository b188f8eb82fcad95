/* SPDX-License-Identifier: MIT */
/* faultalloc.c - the test allocator of faultalloc.h. */
#include "faultalloc.h"

#include "bkoauth.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t fa_lock = PTHREAD_MUTEX_INITIALIZER;
static long fa_count;     /* allocations so far */
static long fa_fail_at;   /* fail allocation number fa_fail_at (0: disarmed) */
static int fa_persistent; /* and every one after it */
static long fa_failed;    /* failures since armed */
static long fa_foreign_n; /* frees of pointers not from here */
static char *fa_secret;   /* watched secret, or NULL */
static size_t fa_secret_len;
static long fa_hits;

/* The live blocks: open addressing on the pointer, tombstones for removed ones. */
typedef struct fa_slot {
    void *ptr; /* NULL: empty; FA_TOMB: removed */
    size_t size;
    long serial; /* when it was handed out (fa_serial) */
} fa_slot;
static char fa_tomb_byte;
#define FA_TOMB ((void *)&fa_tomb_byte)
static fa_slot *fa_slots;
static size_t fa_cap, fa_used, fa_live; /* fa_used counts live and tombstones */
static long fa_serial;                  /* blocks handed out so far */
/* serials of blocks found freed without the allocator (their address was handed out again) */
static long *fa_stale;
static size_t fa_nstale, fa_stale_cap;

static size_t fa_hash(const void *p)
{
    uintptr_t v = (uintptr_t)p;
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return (size_t)v;
}

static void fa_grow(void)
{
    size_t ncap = fa_cap ? fa_cap * 2 : 4096;
    fa_slot *n = calloc(ncap, sizeof *n);
    if (n == NULL) {
        fputs("faultalloc: out of memory for the block table\n", stderr);
        abort();
    }
    for (size_t i = 0; i < fa_cap; i++) {
        if (fa_slots[i].ptr == NULL || fa_slots[i].ptr == FA_TOMB) continue;
        size_t j = fa_hash(fa_slots[i].ptr) & (ncap - 1);
        while (n[j].ptr != NULL)
            j = (j + 1) & (ncap - 1);
        n[j] = fa_slots[i];
    }
    free(fa_slots);
    fa_slots = n;
    fa_cap = ncap;
    fa_used = fa_live;
}

/* Adds a block just handed out. The address may still be in the table: the block that had it
 * was freed without going through the allocator (with free() by code that did not use the
 * library's allocators) and malloc() gave the address again; that entry is stale and replaced,
 * never duplicated (a stale size would make realloc copy too little). */
static void fa_add(void *p, size_t size)
{
    if ((fa_used + 1) * 2 > fa_cap) fa_grow();
    size_t j = fa_hash(p) & (fa_cap - 1), tomb = SIZE_MAX;
    for (; fa_slots[j].ptr != NULL; j = (j + 1) & (fa_cap - 1)) {
        if (fa_slots[j].ptr == p) { /* stale */
            if (fa_nstale == fa_stale_cap) {
                fa_stale_cap = fa_stale_cap ? fa_stale_cap * 2 : 256;
                fa_stale = realloc(fa_stale, fa_stale_cap * sizeof *fa_stale);
                if (fa_stale == NULL) abort();
            }
            fa_stale[fa_nstale++] = fa_slots[j].serial;
            fa_slots[j].size = size;
            fa_slots[j].serial = ++fa_serial;
            return;
        }
        if (fa_slots[j].ptr == FA_TOMB && tomb == SIZE_MAX) tomb = j;
    }
    if (tomb != SIZE_MAX) {
        j = tomb;
    } else {
        fa_used++;
    }
    fa_slots[j].ptr = p;
    fa_slots[j].size = size;
    fa_slots[j].serial = ++fa_serial;
    fa_live++;
}

/* Removes p; returns 1 and its size, or 0 when p is not a live block of ours. */
static int fa_remove(void *p, size_t *size)
{
    if (fa_cap == 0) return 0;
    size_t j = fa_hash(p) & (fa_cap - 1);
    while (fa_slots[j].ptr != NULL) {
        if (fa_slots[j].ptr == p) {
            *size = fa_slots[j].size;
            fa_slots[j].ptr = FA_TOMB;
            fa_live--;
            return 1;
        }
        j = (j + 1) & (fa_cap - 1);
    }
    return 0;
}

/* Counts one allocation; 1 when it must fail. Called with the lock held. */
static int fa_should_fail(void)
{
    fa_count++;
    if (fa_fail_at <= 0) return 0;
    if (fa_count == fa_fail_at || (fa_persistent && fa_count > fa_fail_at)) {
        fa_failed++;
        return 1;
    }
    return 0;
}

/* Searches a block about to be freed for the watched secret. Called with the lock held. */
static void fa_check_secret(const void *p, size_t size)
{
    if (fa_secret == NULL || size < fa_secret_len) return;
    const char *b = p;
    for (size_t i = 0; i + fa_secret_len <= size; i++) {
        if (b[i] == fa_secret[0] && memcmp(b + i, fa_secret, fa_secret_len) == 0) {
            fa_hits++;
            return;
        }
    }
}

static void *fa_malloc(size_t size)
{
    pthread_mutex_lock(&fa_lock);
    void *p = NULL;
    if (!fa_should_fail()) {
        p = malloc(size);
        if (p != NULL) fa_add(p, size);
    }
    pthread_mutex_unlock(&fa_lock);
    if (p == NULL) errno = ENOMEM;
    return p;
}

static void *fa_calloc(size_t count, size_t size)
{
    pthread_mutex_lock(&fa_lock);
    void *p = NULL;
    if (!fa_should_fail() && (size == 0 || count <= SIZE_MAX / size)) {
        p = calloc(count, size);
        if (p != NULL) fa_add(p, count * size);
    }
    pthread_mutex_unlock(&fa_lock);
    if (p == NULL) errno = ENOMEM;
    return p;
}

/* Always moves the block (as realloc may), so that an old block left holding a secret is seen. */
static void *fa_realloc(void *ptr, size_t size)
{
    pthread_mutex_lock(&fa_lock);
    void *p = NULL;
    if (!fa_should_fail()) {
        size_t old = 0;
        if (ptr == NULL) {
            p = malloc(size);
            if (p != NULL) fa_add(p, size);
        } else if (fa_remove(ptr, &old)) {
            p = malloc(size);
            if (p != NULL) {
                memcpy(p, ptr, old < size ? old : size);
                fa_check_secret(ptr, old);
                free(ptr);
                fa_add(p, size);
            } else {
                fa_add(ptr, old);
            }
        } else { /* not ours: its size is unknown */
            fa_foreign_n++;
            p = realloc(ptr, size);
            if (p != NULL) fa_add(p, size);
        }
    }
    pthread_mutex_unlock(&fa_lock);
    if (p == NULL) errno = ENOMEM;
    return p;
}

static void fa_free(void *ptr)
{
    if (ptr == NULL) return;
    pthread_mutex_lock(&fa_lock);
    size_t size = 0;
    if (fa_remove(ptr, &size))
        fa_check_secret(ptr, size);
    else
        fa_foreign_n++; /* it came from malloc() all the same, in this process */
    pthread_mutex_unlock(&fa_lock);
    free(ptr);
}

static char *fa_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = fa_malloc(n);
    if (p != NULL) memcpy(p, s, n);
    return p;
}

void faultalloc_install(void)
{
    bkoauth_error e;
    if (bkoauth_set_allocators(fa_malloc, fa_calloc, fa_realloc, fa_free, fa_strdup, &e) != BKOAUTH_OK) {
        fprintf(stderr, "faultalloc: bkoauth_set_allocators refused: %s\n", e.message);
        abort();
    }
}

void faultalloc_arm(long n, int persistent)
{
    pthread_mutex_lock(&fa_lock);
    fa_fail_at = fa_count + (n > 0 ? n : 1);
    fa_persistent = persistent;
    fa_failed = 0;
    pthread_mutex_unlock(&fa_lock);
}

long faultalloc_disarm(void)
{
    pthread_mutex_lock(&fa_lock);
    long failed = fa_failed;
    fa_fail_at = 0;
    fa_persistent = 0;
    fa_failed = 0;
    pthread_mutex_unlock(&fa_lock);
    return failed;
}

long faultalloc_count(void)
{
    pthread_mutex_lock(&fa_lock);
    long n = fa_count;
    pthread_mutex_unlock(&fa_lock);
    return n;
}

long faultalloc_live(void)
{
    pthread_mutex_lock(&fa_lock);
    long n = (long)fa_live;
    pthread_mutex_unlock(&fa_lock);
    return n;
}

long faultalloc_mark(void)
{
    pthread_mutex_lock(&fa_lock);
    long n = fa_serial;
    pthread_mutex_unlock(&fa_lock);
    return n;
}

long faultalloc_outstanding(long mark)
{
    pthread_mutex_lock(&fa_lock);
    long n = 0;
    for (size_t i = 0; i < fa_cap; i++)
        if (fa_slots[i].ptr != NULL && fa_slots[i].ptr != FA_TOMB && fa_slots[i].serial > mark) n++;
    for (size_t i = 0; i < fa_nstale; i++)
        if (fa_stale[i] > mark) n++;
    pthread_mutex_unlock(&fa_lock);
    return n;
}

long faultalloc_foreign(void)
{
    pthread_mutex_lock(&fa_lock);
    long n = fa_foreign_n;
    pthread_mutex_unlock(&fa_lock);
    return n;
}

void faultalloc_watch(const char *secret)
{
    pthread_mutex_lock(&fa_lock);
    free(fa_secret);
    fa_secret = NULL;
    fa_secret_len = 0;
    fa_hits = 0;
    if (secret != NULL && secret[0] != '\0') {
        fa_secret_len = strlen(secret);
        fa_secret = malloc(fa_secret_len + 1);
        if (fa_secret == NULL) abort();
        memcpy(fa_secret, secret, fa_secret_len + 1);
    }
    pthread_mutex_unlock(&fa_lock);
}

long faultalloc_watch_hits(void)
{
    pthread_mutex_lock(&fa_lock);
    long n = fa_hits;
    pthread_mutex_unlock(&fa_lock);
    return n;
}
