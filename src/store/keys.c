/* SPDX-License-Identifier: MIT */
/* keys.c - the per-key lock table of keys.h: a small hash table under one mutex that is held
 * only to find, create or drop an entry, never across a renewal. Every time kept here is of
 * CLOCK_MONOTONIC (bk_monotonic_ms): a step of the wall clock changes no wait and no back-off. */
#define _GNU_SOURCE /* pthread_mutex_clocklock */
#include "keys.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_BUCKETS 256
#define KEY_SPARES 64       /* freed entries kept for reuse, at least */
#define KEY_SPARES_MAX 4096 /* and at most: up to the most entries ever alive at once */

struct keytab {
    pthread_mutex_t mu;
    key_entry *bucket[KEY_BUCKETS];
    key_entry *spares; /* freed entries, their mutexes ready (a list through next) */
    int nspares;
    int nlive, peak_live; /* entries in the buckets now, and the most ever */
    atomic_int nunsaved;  /* entries holding an unsaved grant */
    atomic_int nbackoff;  /* entries with failures recorded */
};

uint64_t key_hash(const char *env_name, const char *user_id)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = env_name ? env_name : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0u) * 1099511628211ull;
    for (const char *p = user_id ? user_id : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

keytab *keytab_new(void)
{
    keytab *kt = bkoauth__calloc(1, sizeof *kt);
    if (kt != NULL) pthread_mutex_init(&kt->mu, NULL);
    return kt;
}

/* Frees the names that did not fit inside e (both are inside, or neither). */
static void names_free(key_entry *e)
{
    if (e->env_name != e->names) {
        bkoauth__free(e->env_name);
        bkoauth__free(e->user_id);
    }
    e->env_name = e->user_id = NULL;
}

static void entry_free(key_entry *e)
{
    pthread_mutex_destroy(&e->mu);
    bkoauth_token_free(e->unsaved);
    names_free(e);
    bkoauth__free(e);
}

/* Sets e's names: inside e when both fit, else allocated. 0, or -1 on OOM. */
static int names_set(key_entry *e, const char *env_name, const char *user_id)
{
    size_t ne = strlen(env_name) + 1, nu = user_id != NULL ? strlen(user_id) + 1 : 0;
    if (ne + nu <= KEY_NAMES) {
        e->env_name = memcpy(e->names, env_name, ne);
        e->user_id = user_id != NULL ? memcpy(e->names + ne, user_id, nu) : NULL;
        return 0;
    }
    e->env_name = bk_strdup(env_name);
    e->user_id = bk_strdup(user_id);
    if (e->env_name != NULL && (user_id == NULL || e->user_id != NULL)) return 0;
    names_free(e);
    return -1;
}

/* A spare entry, or a new one (its mutex ready); NULL on OOM. Under kt->mu. */
static key_entry *entry_new(keytab *kt, const char *env_name, const char *user_id)
{
    key_entry *e = kt->spares;
    if (e != NULL) {
        kt->spares = e->next;
        kt->nspares--;
    } else if ((e = bkoauth__pooled_calloc(1, sizeof *e)) != NULL) { /* kept: out of glibc's arenas */
        pthread_mutex_init(&e->mu, NULL);
    } else {
        return NULL;
    }
    if (names_set(e, env_name, user_id) == 0) {
        if (++kt->nlive > kt->peak_live) kt->peak_live = kt->nlive;
        return e;
    }
    entry_free(e);
    return NULL;
}

/* Drops e (nobody holds it, it remembers nothing): kept as a spare, or freed. Under kt->mu.
 * Spares are kept up to the most entries ever alive at once (KEY_SPARES at least, KEY_SPARES_MAX
 * at most): after a fault window every key that backed off is dropped at once, and the next
 * window makes as many again; freeing and allocating them each time fills glibc's per-thread
 * caches of the threads that happen to do it. */
static void entry_drop(keytab *kt, key_entry *e)
{
    kt->nlive--;
    int keep = kt->peak_live < KEY_SPARES       ? KEY_SPARES
               : kt->peak_live > KEY_SPARES_MAX ? KEY_SPARES_MAX
                                                : kt->peak_live;
    if (kt->nspares >= keep) {
        entry_free(e);
        return;
    }
    names_free(e);
    e->save_tried_ms = 0;
    atomic_store(&e->busy_since_ms, 0);
    e->next = kt->spares;
    kt->spares = e;
    kt->nspares++;
}

void keytab_free(keytab *kt)
{
    if (kt == NULL) return;
    for (int i = 0; i < KEY_BUCKETS; i++) {
        key_entry *e = kt->bucket[i];
        while (e != NULL) {
            key_entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    while (kt->spares != NULL) {
        key_entry *e = kt->spares;
        kt->spares = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&kt->mu);
    bkoauth__free(kt);
}

static int same_key(const key_entry *e, uint64_t h, const char *env_name, const char *user_id)
{
    return e->hash == h && strcmp(e->env_name, env_name) == 0 && bk_streq(e->user_id, user_id);
}

/* The entry of the key with one more reference; created when absent (create set). Under kt->mu. */
static key_entry *find(keytab *kt, const char *env_name, const char *user_id, int create)
{
    uint64_t h = key_hash(env_name, user_id);
    key_entry **slot = &kt->bucket[h % KEY_BUCKETS];
    for (key_entry *e = *slot; e != NULL; e = e->next)
        if (same_key(e, h, env_name, user_id)) {
            e->refs++;
            return e;
        }
    if (!create) return NULL;
    key_entry *e = entry_new(kt, env_name, user_id);
    if (e == NULL) return NULL;
    e->hash = h;
    e->refs = 1;
    e->next = *slot;
    *slot = e;
    return e;
}

/* ThreadSanitizer's runtime (GCC 12's) does not intercept pthread_mutex_clocklock, so it would
 * not see the lock taken: its builds use the poll below. */
#if defined(__SANITIZE_THREAD__)
#define BK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BK_TSAN 1
#endif
#endif
#if !defined(BK_TSAN) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
#define BK_HAVE_CLOCKLOCK 1
#endif

/* Locks mu, waiting ms at most on CLOCK_MONOTONIC; 0 when locked. Never pthread_mutex_timedlock:
 * its deadline is of CLOCK_REALTIME, so a wall clock stepped forward during the wait would turn
 * 50 ms into an hour (and one stepped back would end every wait at once). */
static int lock_within(pthread_mutex_t *mu, int64_t ms)
{
    if (ms < 0) ms = 0;
#ifdef BK_HAVE_CLOCKLOCK
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    return pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &until);
#else
    /* no monotonic timed lock: poll (0.5 ms, doubling to 5 ms), measured on CLOCK_MONOTONIC */
    int64_t end = bk_monotonic_ms() + ms;
    long step = 500000;
    for (;;) {
        int rc = pthread_mutex_trylock(mu);
        if (rc != EBUSY || bk_monotonic_ms() >= end) return rc;
        struct timespec ts = {0, step};
        nanosleep(&ts, NULL);
        step = step * 2 > 5000000 ? 5000000 : step * 2;
    }
#endif
}

key_entry *key_acquire(keytab *kt, const char *env_name, const char *user_id, int64_t deadline_ms,
                       int64_t patience_ms, int *locked, int *patience_out)
{
    *locked = 0;
    if (patience_out) *patience_out = 0;
    pthread_mutex_lock(&kt->mu);
    key_entry *e = find(kt, env_name, user_id, 1);
    pthread_mutex_unlock(&kt->mu);
    if (e == NULL) return NULL;
    for (;;) {
        int64_t now = bk_monotonic_ms(), left = deadline_ms - now;
        /* with patience, look at the holder every 50 ms */
        if (lock_within(&e->mu, patience_ms > 0 && left > 50 ? 50 : left) == 0) {
            *locked = 1;
            return e;
        }
        now = bk_monotonic_ms();
        if (now >= deadline_ms) return e;
        int64_t busy = atomic_load(&e->busy_since_ms);
        if (patience_ms > 0 && busy != 0 && now - busy > patience_ms) {
            if (patience_out) *patience_out = 1;
            return e;
        }
    }
}

key_entry *key_peek(keytab *kt, const char *env_name, const char *user_id)
{
    pthread_mutex_lock(&kt->mu);
    key_entry *e = find(kt, env_name, user_id, 0);
    pthread_mutex_unlock(&kt->mu);
    return e;
}

/* Drops one reference; frees the entry when nobody holds it and it remembers nothing.
 * Under kt->mu. */
static void unref(keytab *kt, key_entry *e)
{
    if (--e->refs == 0 && e->unsaved == NULL && e->retry_at == 0 && e->failures == 0) {
        key_entry **p = &kt->bucket[e->hash % KEY_BUCKETS];
        while (*p != e)
            p = &(*p)->next;
        *p = e->next;
        entry_drop(kt, e);
    }
}

void key_release(keytab *kt, key_entry *e, int locked)
{
    if (e == NULL) return;
    if (locked) pthread_mutex_unlock(&e->mu);
    pthread_mutex_lock(&kt->mu);
    unref(kt, e);
    pthread_mutex_unlock(&kt->mu);
}

int64_t key_backoff_until(keytab *kt, const char *env_name, const char *user_id)
{
    if (atomic_load(&kt->nbackoff) == 0) return 0;
    int64_t until = 0;
    pthread_mutex_lock(&kt->mu);
    key_entry *e = find(kt, env_name, user_id, 0);
    if (e != NULL) {
        until = e->retry_at;
        unref(kt, e);
    }
    pthread_mutex_unlock(&kt->mu);
    return until;
}

int64_t key_backoff_failed(keytab *kt, const char *env_name, const char *user_id, int64_t now_ms,
                           int64_t initial, int64_t cap)
{
    int64_t wait = 0;
    pthread_mutex_lock(&kt->mu);
    key_entry *e = find(kt, env_name, user_id, 1);
    if (e != NULL) {
        if (e->failures == 0) atomic_fetch_add(&kt->nbackoff, 1);
        if (e->failures < 62) e->failures++;
        wait = initial;
        for (int i = 1; i < e->failures && wait < cap; i++)
            wait *= 2;
        if (wait > cap) wait = cap;
        e->retry_at = now_ms + wait * 1000;
        unref(kt, e);
    }
    pthread_mutex_unlock(&kt->mu);
    return wait;
}

void key_backoff_clear(keytab *kt, const char *env_name, const char *user_id)
{
    if (atomic_load(&kt->nbackoff) == 0) return;
    pthread_mutex_lock(&kt->mu);
    key_entry *e = find(kt, env_name, user_id, 0);
    if (e != NULL) {
        if (e->failures != 0) atomic_fetch_sub(&kt->nbackoff, 1);
        e->failures = 0;
        e->retry_at = 0;
        unref(kt, e);
    }
    pthread_mutex_unlock(&kt->mu);
}

void key_set_unsaved(keytab *kt, key_entry *e, bkoauth_token *t)
{
    t = token_to_pool(t); /* kept until the store is back: out of the caller's arena */
    pthread_mutex_lock(&kt->mu);
    bkoauth_token *old = e->unsaved;
    e->unsaved = t;
    atomic_fetch_add(&kt->nunsaved, (t != NULL) - (old != NULL));
    pthread_mutex_unlock(&kt->mu);
    bkoauth_token_free(old);
}

bkoauth_token *key_unsaved_copy(keytab *kt, const char *env_name, const char *user_id)
{
    if (atomic_load(&kt->nunsaved) == 0) return NULL;
    bkoauth_token *copy = NULL;
    pthread_mutex_lock(&kt->mu);
    uint64_t h = key_hash(env_name, user_id);
    for (key_entry *e = kt->bucket[h % KEY_BUCKETS]; e != NULL; e = e->next)
        if (same_key(e, h, env_name, user_id)) {
            if (e->unsaved != NULL) copy = bkoauth_token_dup(e->unsaved);
            break;
        }
    pthread_mutex_unlock(&kt->mu);
    return copy;
}

int keytab_unsaved(keytab *kt)
{
    return atomic_load(&kt->nunsaved);
}

int keytab_unsaved_entries(keytab *kt, key_entry **out, int max)
{
    int n = 0;
    pthread_mutex_lock(&kt->mu);
    for (int i = 0; i < KEY_BUCKETS && n < max; i++)
        for (key_entry *e = kt->bucket[i]; e != NULL && n < max; e = e->next)
            if (e->unsaved != NULL) {
                e->refs++;
                out[n++] = e;
            }
    pthread_mutex_unlock(&kt->mu);
    return n;
}
