/* keys.c - the per-key lock table of keys.h: a small hash table under one mutex that is held
 * only to find, create or drop an entry, never across a renewal. */
#include "keys.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_BUCKETS 256

struct keytab {
    pthread_mutex_t mu;
    key_entry *bucket[KEY_BUCKETS];
    atomic_int nunsaved; /* entries holding an unsaved grant */
};

int64_t bk_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    keytab *kt = calloc(1, sizeof *kt);
    if (kt != NULL) pthread_mutex_init(&kt->mu, NULL);
    return kt;
}

static void entry_free(key_entry *e)
{
    pthread_mutex_destroy(&e->mu);
    bkoauth_token_free(e->unsaved);
    free(e->env_name);
    free(e->user_id);
    free(e);
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
    pthread_mutex_destroy(&kt->mu);
    free(kt);
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
    key_entry *e = calloc(1, sizeof *e);
    if (e == NULL) return NULL;
    e->env_name = bk_strdup(env_name);
    e->user_id = bk_strdup(user_id);
    if (e->env_name == NULL || (user_id != NULL && e->user_id == NULL)) {
        free(e->env_name);
        free(e->user_id);
        free(e);
        return NULL;
    }
    e->hash = h;
    e->refs = 1;
    pthread_mutex_init(&e->mu, NULL);
    e->next = *slot;
    *slot = e;
    return e;
}

key_entry *key_acquire(keytab *kt, const char *env_name, const char *user_id, int64_t deadline_ms,
                       int *locked)
{
    *locked = 0;
    pthread_mutex_lock(&kt->mu);
    key_entry *e = find(kt, env_name, user_id, 1);
    pthread_mutex_unlock(&kt->mu);
    if (e == NULL) return NULL;
    int64_t left = deadline_ms - bk_monotonic_ms();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (left < 0) left = 0;
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    *locked = pthread_mutex_timedlock(&e->mu, &until) == 0;
    return e;
}

key_entry *key_peek(keytab *kt, const char *env_name, const char *user_id)
{
    pthread_mutex_lock(&kt->mu);
    key_entry *e = find(kt, env_name, user_id, 0);
    pthread_mutex_unlock(&kt->mu);
    return e;
}

void key_release(keytab *kt, key_entry *e, int locked)
{
    if (e == NULL) return;
    if (locked) pthread_mutex_unlock(&e->mu);
    pthread_mutex_lock(&kt->mu);
    if (--e->refs == 0 && e->unsaved == NULL && e->retry_at == 0 && e->failures == 0) {
        key_entry **p = &kt->bucket[e->hash % KEY_BUCKETS];
        while (*p != e)
            p = &(*p)->next;
        *p = e->next;
        pthread_mutex_unlock(&kt->mu);
        entry_free(e);
        return;
    }
    pthread_mutex_unlock(&kt->mu);
}

void key_set_unsaved(keytab *kt, key_entry *e, bkoauth_token *t)
{
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
