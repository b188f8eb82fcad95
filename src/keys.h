/* keys.h - per-key state of renewals in one process: an exclusive lock per token key
 * (env_name, user) and what the process must remember about that key between calls.
 *
 * Entries exist while someone holds or waits for the key, or while they remember something
 * (an unsaved grant, a back-off); then they are freed. Keys are compared exactly, so two users
 * never share a lock: a renewal holds up only the callers of its own key. */
#ifndef BKOAUTH_KEYS_H
#define BKOAUTH_KEYS_H

#include "internal.h"

#include <pthread.h>

typedef struct key_entry {
    struct key_entry *next;
    uint64_t hash;
    char *env_name;
    char *user_id; /* NULL: the APP */
    int refs;      /* holders and waiters */
    pthread_mutex_t mu;
    /* what the process remembers: written by the holder of mu under the table's mutex, read
     * under the table's mutex (so readers never wait for a renewal) */
    bkoauth_token *unsaved; /* a grant the store could not save yet; served and saved later */
    int64_t retry_at;       /* back-off: no renewal attempt before this time (0: none) */
    int failures;           /* renewal failures in a row */
    int64_t save_tried_ms;  /* when a read last tried to save the unsaved grant */
} key_entry;

typedef struct keytab keytab;

keytab *keytab_new(void);
void keytab_free(keytab *kt);

/* 64-bit FNV-1a of "env_name\0user_id" (user_id NULL hashes as ""). */
uint64_t key_hash(const char *env_name, const char *user_id);

/* Takes the exclusive lock of (env_name, user_id), waiting until deadline_ms (CLOCK_MONOTONIC
 * milliseconds, see bk_monotonic_ms) at most. Returns the entry, with *locked 1 when the lock is
 * held, 0 when the deadline passed (a holder stuck beyond every timeout: the caller goes on
 * without it). NULL when out of memory. Release with key_release(). */
key_entry *key_acquire(keytab *kt, const char *env_name, const char *user_id, int64_t deadline_ms,
                       int *locked);
void key_release(keytab *kt, key_entry *e, int locked);

/* The entry of a key when one exists, with a reference (release with key_release(kt, e, 0)),
 * without taking its lock; NULL when none. */
key_entry *key_peek(keytab *kt, const char *env_name, const char *user_id);

/* Replaces the unsaved grant of e (ownership of t passes; NULL clears). Holder of e's lock. */
void key_set_unsaved(keytab *kt, key_entry *e, bkoauth_token *t);
/* A copy of the unsaved grant of (env_name, user_id): NULL when there is none (the usual case,
 * answered without a lock) or out of memory. Never waits for a renewal. */
bkoauth_token *key_unsaved_copy(keytab *kt, const char *env_name, const char *user_id);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t bk_monotonic_ms(void);

#endif
