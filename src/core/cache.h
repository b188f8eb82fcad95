/* SPDX-License-Identifier: MIT */
/* cache.h - the in-process cache of saved tokens.
 *
 * Each thread keeps its own small table of token copies (direct-mapped, CACHE_SLOTS entries),
 * so a hit takes no lock and touches no cache line another thread writes. Under them each cache
 * keeps one table the process's threads share (a mutex per group of slots): a thread whose own
 * table misses copies the key's entry from there instead of reading the store, so the process
 * reads a key about once per BKOAUTH_CACHE_SECONDS, not once per thread. Entries live at
 * most BKOAUTH_CACHE_SECONDS, counted on CLOCK_MONOTONIC (a step of the wall clock neither
 * stretches nor shortens it), which bounds how long a token renewed by another process can go
 * unseen; whether a token expires soon is a matter of the wall clock. Renewals in this process
 * bump a per-key generation counter shared by all threads and clients (read-mostly atomics), so
 * no thread serves a token older than this process's last renewal.
 * Memory is bounded and steady: each slot owns one block of a size class (192 bytes and up in
 * steps of 64) that later tokens of the slot are copied into, so a put allocates nothing once
 * the slot has its block and the cache's memory is never freed and taken again in other sizes;
 * at most CACHE_SLOTS blocks per thread that used the cache, freed at thread exit, and 1,024 in
 * the shared table; a freed client's blocks go at once from the shared table and at each
 * thread's next use of the cache from the threads' tables. A hit costs one malloc: the
 * caller's copy. */
#ifndef BKOAUTH_CACHE_H
#define BKOAUTH_CACHE_H

#include "internal.h"

#define CACHE_SLOTS 256
#define CACHE_GENERATIONS 1024

typedef struct cache cache;

/* A cache whose entries live ttl_seconds; NULL when ttl_seconds is 0 (cache off) or on OOM
 * (every function accepts a NULL cache and then does nothing). */
cache *cache_new(int ttl_seconds);
/* Frees c. The copies it left in this thread's table go at once; those in other threads' tables
 * at their next use of any cache (one read of a global counter tells them), or when they end. */
void cache_free(cache *c);

/* A copy of the cached token of (env_name, user_id) when this thread has one that is younger
 * than the ttl at now_ms (bk_monotonic_coarse_ms), not renewed since, and not expiring within
 * expires_seconds of now (bk_now, the wall clock); else NULL. */
bkoauth_token *cache_get(cache *c, const char *env_name, const char *user_id, int64_t expires_seconds,
                         int64_t now, int64_t now_ms);

/* The same whatever the entry's age: the copy read last (by this thread, else by any thread of
 * the process, through the shared table), when this process has not
 * renewed the key since and it does not expire within expires_seconds of now; else NULL. For a
 * call that cannot read the store (a database restart), which serves it rather than failing. */
bkoauth_token *cache_get_last(cache *c, const char *env_name, const char *user_id, int64_t expires_seconds,
                              int64_t now);

/* The generation of (env_name, user_id): read it BEFORE reading the token from the store and
 * pass it to cache_put(), so a renewal that lands in between makes the entry stale. */
uint64_t cache_generation(cache *c, const char *env_name, const char *user_id);

/* Remembers a copy of token in this thread's table, as of generation gen and of now_ms
 * (bk_monotonic_coarse_ms, taken before the read: the entry's age starts there); a failed copy is
 * just not cached. */
void cache_put(cache *c, const bkoauth_token *token, uint64_t gen, int64_t now_ms);

/* Marks every thread's entry of (env_name, user_id) stale: call after a renewal or delete. */
void cache_invalidate(cache *c, const char *env_name, const char *user_id);

/* Bytes held by this thread's table (for the benchmarks). */
size_t cache_thread_bytes(void);

#endif
