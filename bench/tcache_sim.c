/* SPDX-License-Identifier: MIT */
/* tcache_sim.c - libtcache_sim.so, for LD_PRELOAD under bench_soak: which frees fill glibc's
 * per-thread caches (tcache) after the warm-up. It keeps, per thread, glibc's count of cached
 * blocks of each of the 64 sizes (chunks of 32 to 1040 bytes, at most 7 each: a malloc of the
 * size takes one, calloc none, a free or a realloc that moves a block puts one back), and records
 * every free that raises a thread's count of a size above its highest so far, between
 * TCACHE_SIM_AFTER and TCACHE_SIM_UNTIL seconds (default 120 and no end), by its caller. At exit
 * it writes one line per caller and size to TCACHE_SIM_OUT (default /tmp/tcache_sim.out):
 * "COUNT CHUNK_SIZE OBJECT SYMBOL OFFSET_IN_OBJECT". What it cannot see: the C library's own
 * internal allocations, and glibc's "stashing" (a malloc that takes a block from an arena bin
 * moves the bin's other blocks of that size into the cache): gdb_tcache.sh counts the caches
 * themselves. Build: cmake (target tcache_sim), or
 *     gcc -O2 -shared -fPIC -o libtcache_sim.so bench/tcache_sim.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

#define BINS 64
#define LIMIT 7
#define SLOTS 8192

static _Thread_local unsigned char count[BINS], highest[BINS];
static double t0, after = 120, until = 1e12;
static struct {
    void *caller;
    int bin;
    unsigned long n;
} slots[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((constructor)) static void sim_init(void)
{
    t0 = now_s();
    const char *a = getenv("TCACHE_SIM_AFTER"), *u = getenv("TCACHE_SIM_UNTIL");
    if (a != NULL) after = atof(a);
    if (u != NULL) until = atof(u);
}

/* The cache's index of a chunk size, or -1 beyond the cache. */
static int bin_of(size_t chunk)
{
    return chunk < 32 || chunk > 1040 ? -1 : (int)((chunk - 32) / 16);
}

/* glibc's chunk size for a request. */
static size_t chunk_of(size_t request)
{
    size_t c = (request + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

static void record(void *caller, int bin)
{
    size_t h = ((size_t)caller * 31 + (size_t)bin) % SLOTS;
    pthread_mutex_lock(&slots_lock);
    for (int k = 0; k < SLOTS; k++, h = (h + 1) % SLOTS) {
        if (slots[h].n == 0) {
            slots[h].caller = caller;
            slots[h].bin = bin;
        }
        if (slots[h].caller == caller && slots[h].bin == bin) {
            slots[h].n++;
            break;
        }
    }
    pthread_mutex_unlock(&slots_lock);
}

/* A block of chunk size chunk goes into this thread's cache (when there is room). */
static void put(size_t chunk, void *caller)
{
    int b = bin_of(chunk);
    if (b < 0 || count[b] >= LIMIT) return;
    if (++count[b] <= highest[b]) return;
    highest[b] = count[b];
    double t = now_s() - t0;
    if (t > after && t < until) record(caller, b);
}

void *malloc(size_t size)
{
    int b = bin_of(chunk_of(size));
    if (b >= 0 && count[b] > 0) count[b]--;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    return __libc_calloc(n, size); /* glibc's calloc does not take from the cache */
}

void *realloc(void *ptr, size_t size)
{
    if (ptr == NULL) return malloc(size);
    size_t old = malloc_usable_size(ptr) + 8;
    void *q = __libc_realloc(ptr, size);
    if (size == 0) {
        put(old, __builtin_return_address(0));
    } else if (q != NULL && q != ptr) {
        put(old, __builtin_return_address(0));
    } else if (q != NULL) {
        size_t now = malloc_usable_size(q) + 8;
        if (old > now && old - now >= 32) put(old - now, __builtin_return_address(0)); /* the tail */
    }
    return q;
}

void free(void *ptr)
{
    if (ptr != NULL) put(malloc_usable_size(ptr) + 8, __builtin_return_address(0));
    __libc_free(ptr);
}

__attribute__((destructor)) static void sim_report(void)
{
    const char *path = getenv("TCACHE_SIM_OUT");
    FILE *f = fopen(path ? path : "/tmp/tcache_sim.out", "w");
    if (f == NULL) return;
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].n == 0) continue;
        Dl_info d;
        memset(&d, 0, sizeof d);
        dladdr(slots[i].caller, &d);
        fprintf(f, "%lu %d %s %s 0x%lx\n", slots[i].n, 32 + 16 * slots[i].bin,
                d.dli_fname ? d.dli_fname : "?", d.dli_sname ? d.dli_sname : "?",
                (unsigned long)((char *)slots[i].caller - (char *)d.dli_fbase));
    }
    fclose(f);
}
