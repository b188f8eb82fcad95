/* SPDX-License-Identifier: MIT */
/* cache.c - per-thread token tables over a table the process's threads share, with shared
 * generation counters (see cache.h). */
#include "cache.h"
#include "keys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Generations are process-wide, not per client: a renewal through one client makes every
 * client's cached copy of that key stale (two clients on different stores only share misses). */
static _Atomic uint64_t generations[CACHE_GENERATIONS];

/* A slot owns one block (block, cap bytes: a size class, see block_class) for as long as the
 * table lives or its cache does: a new token for the slot is copied into it when it fits, so a
 * put allocates nothing once the slot has a block. token is the block while it holds a token. */
typedef struct slot {
    uint64_t cache_id;
    uint64_t hash;
    uint64_t gen;
    int64_t stored_ms; /* bk_monotonic_coarse_ms() when the token was read */
    bkoauth_token *token;
    size_t bytes; /* the token's own bytes, what a copy of it takes */
    void *block;
    size_t cap;
} slot;

/* The second level, one per cache: a direct-mapped table of SHARED_SLOTS slots that every thread
 * of the process uses, each slot under one of SHARED_LOCKS mutexes (by its index). A thread whose
 * own table misses takes the copy from here when it is young enough and of the key's current
 * generation, instead of reading the store: the threads of a process read a key from the store
 * about once per BKOAUTH_CACHE_SECONDS between them, not once each. */
#define SHARED_SLOTS 1024
#define SHARED_LOCKS 64

struct cache {
    uint64_t id;    /* never reused, so a thread's entries of a freed cache never match */
    int64_t ttl_ms; /* the entries' lifetime, on CLOCK_MONOTONIC */
    pthread_mutex_t locks[SHARED_LOCKS];
    slot shared[SHARED_SLOTS];
};

typedef struct table {
    slot slots[CACHE_SLOTS];
    size_t bytes;
    uint64_t seen_frees; /* the value of cache_frees this table was last swept at */
} table;

static _Atomic uint64_t next_cache_id = 1;

/* Freed caches: cache_free bumps cache_frees; a thread that uses its table next sees the change
 * (one read of a global that is only written when a client is freed) and drops the copies of
 * caches that are gone. The live ids are kept under a mutex taken only then. */
static _Atomic uint64_t cache_frees;
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static cache **live;
static size_t nlive, live_cap;

static int is_live(uint64_t id)
{
    for (size_t i = 0; i < nlive; i++)
        if (live[i]->id == id) return 1;
    return 0;
}

/* In a child after fork(): only the forking thread exists, and a lock another thread held at the
 * fork stays held for ever; every lock of the cache starts anew. */
static void cache_atfork_child(void)
{
    pthread_mutex_init(&live_mu, NULL);
    for (size_t i = 0; i < nlive; i++)
        for (int k = 0; k < SHARED_LOCKS; k++)
            pthread_mutex_init(&live[i]->locks[k], NULL);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, cache_atfork_child);
}

/* Frees the slot's block and the token in it (its secrets wiped); t (NULL for a shared slot)
 * counts its bytes. */
static void slot_clear(table *t, slot *s)
{
    if (s->block == NULL) return;
    if (t != NULL) t->bytes -= s->cap;
    bkoauth__wipe_free(s->block, s->cap);
    s->block = NULL;
    s->token = NULL;
    s->cap = s->bytes = 0;
}

/* Frees this thread's copies of caches that were freed. */
static void sweep(table *t)
{
    pthread_mutex_lock(&live_mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        slot *s = &t->slots[i];
        if (s->block != NULL && !is_live(s->cache_id)) slot_clear(t, s);
    }
    t->seen_frees = atomic_load(&cache_frees);
    pthread_mutex_unlock(&live_mu);
}

static void sweep_if_freed(table *t)
{
    if (atomic_load_explicit(&cache_frees, memory_order_acquire) != t->seen_frees) sweep(t);
}
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t table_key;
static _Thread_local table *my_table;

static void table_destroy(void *p)
{
    table *t = p;
    for (int i = 0; i < CACHE_SLOTS; i++)
        slot_clear(t, &t->slots[i]);
    bkoauth__free(t);
}

static void make_key(void)
{
    pthread_key_create(&table_key, table_destroy);
}

static table *thread_table(int create)
{
    if (my_table != NULL || !create) return my_table;
    pthread_once(&key_once, make_key);
    table *t = bkoauth__calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->bytes = sizeof *t;
    t->seen_frees = atomic_load(&cache_frees);
    if (pthread_setspecific(table_key, t) != 0) {
        bkoauth__free(t);
        return NULL;
    }
    my_table = t;
    return t;
}

/* The key's hash (keys.c), its high bits folded in: slots and generations take it modulo. */
static uint64_t slot_hash(const char *env_name, const char *user_id)
{
    uint64_t h = key_hash(env_name, user_id);
    return h ^ (h >> 29);
}

cache *cache_new(int ttl_seconds)
{
    if (ttl_seconds <= 0) return NULL;
    pthread_once(&atfork_once, register_atfork);
    cache *c = bkoauth__calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->id = atomic_fetch_add(&next_cache_id, 1);
    c->ttl_ms = (int64_t)ttl_seconds * 1000;
    for (int k = 0; k < SHARED_LOCKS; k++)
        pthread_mutex_init(&c->locks[k], NULL);
    pthread_mutex_lock(&live_mu);
    if (nlive == live_cap) {
        size_t cap = live_cap ? live_cap * 2 : 8;
        cache **p = bkoauth__realloc(live, cap * sizeof *p);
        if (p == NULL) {
            pthread_mutex_unlock(&live_mu);
            bkoauth__free(c);
            return NULL;
        }
        live = p;
        live_cap = cap;
    }
    live[nlive++] = c;
    pthread_mutex_unlock(&live_mu);
    return c;
}

void cache_free(cache *c)
{
    if (c == NULL) return;
    pthread_mutex_lock(&live_mu);
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == c) {
            live[i] = live[--nlive];
            break;
        }
    if (nlive == 0) { /* the last client gone: nothing kept for the process */
        bkoauth__free(live);
        live = NULL;
        live_cap = 0;
    }
    atomic_fetch_add(&cache_frees, 1);
    pthread_mutex_unlock(&live_mu);
    /* this thread's copies go at once; every other thread's at its next use of the cache, or
     * when it ends */
    table *t = thread_table(0);
    if (t != NULL) sweep(t);
    for (int i = 0; i < SHARED_SLOTS; i++)
        slot_clear(NULL, &c->shared[i]);
    for (int k = 0; k < SHARED_LOCKS; k++)
        pthread_mutex_destroy(&c->locks[k]);
    bkoauth__free(c);
}

static int same_key(const bkoauth_token *t, const char *env_name, const char *user_id)
{
    const char *u = (user_id != NULL && user_id[0] != '\0') ? user_id : NULL;
    return strcmp(t->env_name, env_name) == 0 && bk_streq(t->user_id, u);
}

/* A copy of a token the cache made (one block of bytes): one malloc, one memcpy, pointers moved. */
static bkoauth_token *clone(const bkoauth_token *t, size_t bytes)
{
    bkoauth_token *c = bkoauth__malloc(bytes);
    if (c == NULL) return NULL;
    memcpy(c, t, bytes);
    const char *from = (const char *)t;
    char *to = (char *)c;
    c->access_token = to + (t->access_token - from);
    c->refresh_token = to + (t->refresh_token - from);
    c->scope = to + (t->scope - from);
    c->env_name = to + (t->env_name - from);
    if (t->user_id) c->user_id = to + (t->user_id - from);
    return c;
}

/* 1 when slot s (of cache c: its own or this thread's) holds the token of the key of hash h,
 * (env_name, user_id), of the key's current generation, not expiring within expires_seconds of
 * now and, unless any_age, younger than the ttl at now_ms. */
static int usable(const cache *c, const slot *s, uint64_t h, const char *env_name, const char *user_id,
                  int64_t expires_seconds, int64_t now, int64_t now_ms, int any_age)
{
    return s->token != NULL && s->cache_id == c->id && s->hash == h &&
           (any_age || now_ms - s->stored_ms < c->ttl_ms) &&
           s->gen == atomic_load_explicit(&generations[h % CACHE_GENERATIONS], memory_order_acquire) &&
           !token_expiring(s->token, expires_seconds, now) && same_key(s->token, env_name, user_id);
}

/* The bytes of a slot's block for a token of bytes: rounded up to a multiple of BLOCK_STEP, at
 * least BLOCK_MIN, so that the tokens of one deployment (access_token and refresh_token of one
 * length, user ids of a few lengths) share one size and every slot's block takes any of them. */
#define BLOCK_MIN 192
#define BLOCK_STEP 64
static size_t block_class(size_t bytes)
{
    if (bytes <= BLOCK_MIN) return BLOCK_MIN;
    if (bytes > SIZE_MAX - BLOCK_STEP) return bytes;
    return (bytes + BLOCK_STEP - 1) / BLOCK_STEP * BLOCK_STEP;
}

/* Copies token (bytes: its token_block_size) into slot s, in the slot's own block when it fits;
 * t (NULL for a shared slot) counts the bytes. 0, or -1 when no block could be had (the slot is
 * then empty). */
static int slot_fill(table *t, slot *s, uint64_t cache_id, uint64_t h, const bkoauth_token *token,
                     size_t bytes, uint64_t gen, int64_t stored_ms)
{
    /* a block too small is replaced; a bigger one is kept unless it is over twice the size
     * class of this token: tokens whose sizes straddle a class boundary (user ids of a few
     * lengths) would otherwise swap the slot's block at every put, and each swap can leave a
     * block in glibc's per-thread cache */
    if (s->block != NULL && (s->cap < bytes || s->cap / 2 > block_class(bytes))) slot_clear(t, s);
    if (s->block == NULL) {
        size_t cap = block_class(bytes);
        if ((s->block = bkoauth__malloc(cap)) == NULL) return -1;
        s->cap = cap;
        if (t != NULL) t->bytes += cap;
    } else {
        bkoauth__wipe(s->block, s->cap); /* the previous token's secrets */
    }
    s->token = token_copy_into(s->block, s->cap, token);
    s->cache_id = cache_id;
    s->hash = h;
    s->gen = gen;
    s->stored_ms = stored_ms;
    s->bytes = bytes;
    return 0;
}

/* This thread's table and its slot of the key of hash h (NULL when the table cannot be made). */
static slot *own_slot(int create, table **tp, uint64_t h)
{
    table *t = thread_table(create);
    *tp = t;
    if (t == NULL) return NULL;
    sweep_if_freed(t);
    return &t->slots[h % CACHE_SLOTS];
}

/* The shared slot of the key of hash h, locked: unlock with shared_unlock. */
static slot *shared_lock(cache *c, uint64_t h)
{
    size_t i = h % SHARED_SLOTS;
    pthread_mutex_lock(&c->locks[i % SHARED_LOCKS]);
    return &c->shared[i];
}

static void shared_unlock(cache *c, uint64_t h)
{
    pthread_mutex_unlock(&c->locks[h % SHARED_SLOTS % SHARED_LOCKS]);
}

/* cache_get and cache_get_last: this thread's copy, else the shared table's (copied into this
 * thread's table when it is fresh, so that the thread's next hits take no lock). */
static bkoauth_token *get(cache *c, const char *env_name, const char *user_id, int64_t expires_seconds,
                          int64_t now, int64_t now_ms, int any_age)
{
    if (c == NULL) return NULL;
    uint64_t h = slot_hash(env_name, user_id);
    table *t;
    slot *own = own_slot(0, &t, h);
    if (own != NULL && usable(c, own, h, env_name, user_id, expires_seconds, now, now_ms, any_age))
        return clone(own->token, own->bytes);
    if (!any_age && own == NULL) own = own_slot(1, &t, h);
    bkoauth_token *out = NULL;
    int filled = 0;
    slot *sh = shared_lock(c, h);
    if (usable(c, sh, h, env_name, user_id, expires_seconds, now, now_ms, any_age)) {
        if (!any_age && own != NULL &&
            slot_fill(t, own, c->id, h, sh->token, sh->bytes, sh->gen, sh->stored_ms) == 0)
            filled = 1; /* copied for the caller below, outside the lock */
        else
            out = clone(sh->token, sh->bytes);
    }
    shared_unlock(c, h);
    if (filled) out = clone(own->token, own->bytes);
    return out;
}

bkoauth_token *cache_get(cache *c, const char *env_name, const char *user_id, int64_t expires_seconds,
                         int64_t now, int64_t now_ms)
{
    return get(c, env_name, user_id, expires_seconds, now, now_ms, 0);
}

bkoauth_token *cache_get_last(cache *c, const char *env_name, const char *user_id, int64_t expires_seconds,
                              int64_t now)
{
    return get(c, env_name, user_id, expires_seconds, now, 0, 1);
}

uint64_t cache_generation(cache *c, const char *env_name, const char *user_id)
{
    if (c == NULL) return 0;
    uint64_t h = slot_hash(env_name, user_id);
    return atomic_load_explicit(&generations[h % CACHE_GENERATIONS], memory_order_acquire);
}

void cache_put(cache *c, const bkoauth_token *token, uint64_t gen, int64_t now_ms)
{
    if (c == NULL || token == NULL) return;
    uint64_t h = slot_hash(token->env_name, token->user_id);
    size_t bytes = token_block_size(token);
    if (bytes == 0) return;
    table *t;
    slot *own = own_slot(1, &t, h);
    if (own != NULL) slot_fill(t, own, c->id, h, token, bytes, gen, now_ms);
    /* for the other threads: unless renewed since (the copy is stale already) or the shared slot
     * has a later read of the key */
    if (gen != atomic_load_explicit(&generations[h % CACHE_GENERATIONS], memory_order_acquire)) return;
    slot *sh = shared_lock(c, h);
    if (!(sh->token != NULL && sh->hash == h && sh->gen == gen && sh->stored_ms > now_ms &&
          same_key(sh->token, token->env_name, token->user_id)))
        slot_fill(NULL, sh, c->id, h, token, bytes, gen, now_ms);
    shared_unlock(c, h);
}

void cache_invalidate(cache *c, const char *env_name, const char *user_id)
{
    if (c == NULL) return;
    uint64_t h = slot_hash(env_name, user_id);
    atomic_fetch_add_explicit(&generations[h % CACHE_GENERATIONS], 1, memory_order_acq_rel);
}

size_t cache_thread_bytes(void)
{
    table *t = thread_table(0);
    return t ? t->bytes : 0;
}
