/* SPDX-License-Identifier: MIT */
/* slab.c - the library's own pool for libcurl's blocks (curl_dl.c), so that they never pass
 * through the C library's per-thread caches.
 *
 * Why: glibc keeps up to 7 freed blocks of each of 64 sizes (up to 1 KiB) in every thread
 * (tcache), and a malloc that finds its thread's cache empty moves more blocks of that size from
 * the arena into it. A transfer makes and frees blocks of dozens of sizes (its buffers grow by
 * doubling to the size of each answer), in whichever thread renews a token, so over hours every
 * caller thread's cache fills with libcurl's sizes: the process's resident memory creeps while
 * the memory in use stays flat (docs/ARCHITECTURE.md, "Memory that stays flat").
 *
 * How: one address range reserved at the first use (BK_SLAB_REGION, no memory behind it), cut
 * into slabs of 64 KiB made usable one at a time; a slab serves one size class; a freed block
 * goes back to its class's list, from any thread, under that class's lock. So the pool holds at
 * most what libcurl had in use at its busiest, per class, and the same blocks serve every
 * thread. Nothing goes back to the system: a pool that reached its size stays there.
 *
 * A request larger than the biggest class, or one the region has no room for, returns NULL and
 * the caller allocates elsewhere; bkoauth__slab_owns() tells the two apart at free(). The pool
 * is off in builds with AddressSanitizer or ThreadSanitizer (they must see every block), and
 * when the program gave its own allocators (bkoauth_set_allocators: then everything goes
 * through them). */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BK_SLAB_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BK_SLAB_OFF 1
#endif
#endif

#define BK_SLAB_SIZE (64u * 1024u)
#define BK_SLAB_COUNT 2048u /* 128 MiB of addresses, reserved, not allocated */
#define BK_SLAB_REGION ((size_t)BK_SLAB_SIZE * BK_SLAB_COUNT)

/* Size classes: every 16 bytes up to 1 KiB, then four steps per doubling up to 32 KiB. */
#define BK_SMALL_STEP 16u
#define BK_SMALL_MAX 1024u
#define BK_SMALL_CLASSES (BK_SMALL_MAX / BK_SMALL_STEP) /* 64 */
#define BK_BIG_CLASSES 20                               /* 1280 .. 32768 */
#define BK_CLASSES (BK_SMALL_CLASSES + BK_BIG_CLASSES)
#define BK_SLAB_MAX_BLOCK 32768u

typedef struct bk_slab_class {
    pthread_mutex_t lock;
    void *free_list; /* freed blocks, linked through their first bytes */
    char *next;      /* the rest of the slab being cut; NULL: none */
    char *end;
} bk_slab_class;

static bk_slab_class bk_classes[BK_CLASSES];
static unsigned char bk_slab_class_of[BK_SLAB_COUNT]; /* a usable slab's class */
static _Atomic(uintptr_t) bk_slab_base;               /* 0: no region */
static atomic_uint bk_slab_used;                      /* slabs made usable */
static pthread_once_t bk_slab_once = PTHREAD_ONCE_INIT;
static atomic_size_t bk_slab_bytes; /* bytes of usable slabs, for tests and benchmarks */

static size_t class_size(unsigned c)
{
    if (c < BK_SMALL_CLASSES) return (c + 1) * BK_SMALL_STEP;
    unsigned big = c - BK_SMALL_CLASSES;             /* 0.. */
    size_t base = (size_t)BK_SMALL_MAX << (big / 4); /* 1024, 2048, ... */
    return base + base / 4 * (big % 4 + 1);
}

static unsigned class_for(size_t size)
{
    if (size <= BK_SMALL_MAX) return size == 0 ? 0 : (unsigned)((size - 1) / BK_SMALL_STEP);
    unsigned c = BK_SMALL_CLASSES;
    while (class_size(c) < size)
        c++;
    return c;
}

/* fork(): the child gets every class unlocked and consistent (the parent's threads are gone) */
static void slab_lock_all(void)
{
    for (unsigned c = 0; c < BK_CLASSES; c++)
        pthread_mutex_lock(&bk_classes[c].lock);
}

static void slab_unlock_all(void)
{
    for (unsigned c = BK_CLASSES; c-- > 0;)
        pthread_mutex_unlock(&bk_classes[c].lock);
}

static void slab_start(void)
{
    for (unsigned c = 0; c < BK_CLASSES; c++)
        pthread_mutex_init(&bk_classes[c].lock, NULL);
    void *region = mmap(NULL, BK_SLAB_REGION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return; /* every request goes elsewhere */
    if (pthread_atfork(slab_lock_all, slab_unlock_all, slab_unlock_all) != 0) {
        munmap(region, BK_SLAB_REGION);
        return;
    }
    atomic_store_explicit(&bk_slab_base, (uintptr_t)region, memory_order_release);
}

int bkoauth__slab_owns(const void *p)
{
    uintptr_t base = atomic_load_explicit(&bk_slab_base, memory_order_acquire);
    return base != 0 && (uintptr_t)p - base < BK_SLAB_REGION;
}

/* A new slab for class c, under its lock: 0, or -1 when the region is full or cannot be made
 * usable. */
static int slab_new(bk_slab_class *k, unsigned c, uintptr_t base)
{
    unsigned i = atomic_fetch_add_explicit(&bk_slab_used, 1, memory_order_relaxed);
    if (i >= BK_SLAB_COUNT) {
        atomic_store_explicit(&bk_slab_used, BK_SLAB_COUNT, memory_order_relaxed);
        return -1;
    }
    char *slab = (char *)base + (size_t)i * BK_SLAB_SIZE;
    if (mprotect(slab, BK_SLAB_SIZE, PROT_READ | PROT_WRITE) != 0) return -1; /* that slab is lost */
    bk_slab_class_of[i] = (unsigned char)c;
    size_t size = class_size(c);
    k->next = slab;
    k->end = slab + BK_SLAB_SIZE / size * size;
    atomic_fetch_add_explicit(&bk_slab_bytes, BK_SLAB_SIZE, memory_order_relaxed);
    return 0;
}

#ifdef BK_SLAB_OFF
static const int bk_slab_on = 0;
#else
static const int bk_slab_on = 1;
#endif

void *bkoauth__slab_malloc(size_t size)
{
    if (!bk_slab_on || size > BK_SLAB_MAX_BLOCK) return NULL;
    pthread_once(&bk_slab_once, slab_start);
    uintptr_t base = atomic_load_explicit(&bk_slab_base, memory_order_acquire);
    if (base == 0) return NULL;
    unsigned c = class_for(size);
    bk_slab_class *k = &bk_classes[c];
    void *p = NULL;
    pthread_mutex_lock(&k->lock);
    if (k->free_list != NULL) {
        p = k->free_list;
        k->free_list = *(void **)p;
    } else if (k->next != NULL || slab_new(k, c, base) == 0) {
        p = k->next;
        k->next += class_size(c);
        if (k->next >= k->end) k->next = k->end = NULL;
    }
    pthread_mutex_unlock(&k->lock);
    return p;
}

static unsigned class_of_block(const void *p)
{
    uintptr_t base = atomic_load_explicit(&bk_slab_base, memory_order_relaxed);
    return bk_slab_class_of[((uintptr_t)p - base) / BK_SLAB_SIZE];
}

size_t bkoauth__slab_block_size(const void *p)
{
    return class_size(class_of_block(p));
}

void bkoauth__slab_free(void *p)
{
    bk_slab_class *k = &bk_classes[class_of_block(p)];
    pthread_mutex_lock(&k->lock);
    *(void **)p = k->free_list;
    k->free_list = p;
    pthread_mutex_unlock(&k->lock);
}

size_t bkoauth__slab_bytes(void)
{
    return atomic_load_explicit(&bk_slab_bytes, memory_order_relaxed);
}
