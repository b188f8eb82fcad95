/* SPDX-License-Identifier: MIT */
/* keys.h - per-key state of renewals in one process: an exclusive lock per token key
 * (env_name, user) and what the process must remember about that key between calls.
 *
 * Entries exist while someone holds or waits for the key, or while they remember something
 * (an unsaved grant, a back-off); then they go to a short list of spares that later keys reuse
 * (names of usual length are kept inside the entry), so a renewal allocates nothing here: an
 * entry made by one thread and freed by another, the last of a herd, left its blocks in that
 * thread's glibc cache. Keys are compared exactly, so two users never share a lock: a renewal
 * holds up only the callers of its own key. */
#ifndef BKOAUTH_KEYS_H
#define BKOAUTH_KEYS_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

#define KEY_NAMES 96 /* bytes of env_name and user_id kept inside the entry (longer: allocated) */

typedef struct key_entry {
    struct key_entry *next; /* in the bucket, or in the spares */
    uint64_t hash;
    char *env_name;
    char *user_id; /* NULL: the APP */
    char names[KEY_NAMES];
    int refs; /* holders and waiters */
    pthread_mutex_t mu;
    /* what the process remembers: written by the holder of mu under the table's mutex, read
     * under the table's mutex (so readers never wait for a renewal) */
    bkoauth_token *unsaved;     /* a grant the store could not save yet; served and saved later */
    int64_t retry_at;           /* back-off: no renewal attempt before this (monotonic ms; 0: none) */
    int failures;               /* renewal failures in a row */
    int64_t save_tried_ms;      /* when a read last tried to save the unsaved grant (monotonic) */
    atomic_llong busy_since_ms; /* when the holder's renewal call began (monotonic; 0: none) */
} key_entry;

typedef struct keytab keytab;

keytab *keytab_new(void);
void keytab_free(keytab *kt);

/* 64-bit FNV-1a of "env_name\0user_id" (user_id NULL hashes as ""). */
uint64_t key_hash(const char *env_name, const char *user_id);

/* Takes the exclusive lock of (env_name, user_id), waiting until deadline_ms (CLOCK_MONOTONIC
 * milliseconds, see bk_monotonic_ms) at most, and, when patience_ms > 0, only as long as the
 * holder's renewal call has not been in flight for longer than patience_ms. Returns the entry,
 * with *locked 1 when the lock is held, 0 when the wait ended without it (*patience_out set to 1
 * when patience ran out). NULL when out of memory. Release with key_release(). */
key_entry *key_acquire(keytab *kt, const char *env_name, const char *user_id, int64_t deadline_ms,
                       int64_t patience_ms, int *locked, int *patience_out);
void key_release(keytab *kt, key_entry *e, int locked);

/* The entry of a key when one exists, with a reference (release with key_release(kt, e, 0)),
 * without taking its lock; NULL when none. */
key_entry *key_peek(keytab *kt, const char *env_name, const char *user_id);

/* Replaces the unsaved grant of e (ownership of t passes; NULL clears). Holder of e's lock. */
void key_set_unsaved(keytab *kt, key_entry *e, bkoauth_token *t);
/* A copy of the unsaved grant of (env_name, user_id): NULL when there is none (the usual case,
 * answered without a lock) or out of memory. Never waits for a renewal. */
bkoauth_token *key_unsaved_copy(keytab *kt, const char *env_name, const char *user_id);

/* How many keys hold an unsaved grant now. */
int keytab_unsaved(keytab *kt);
/* Up to max entries that hold an unsaved grant, each with a reference (key_release(kt, e, 0)).
 * Returns how many. */
int keytab_unsaved_entries(keytab *kt, key_entry **out, int max);

/* Back-off of a key's renewals after failures (kept in the table, no lock of the key taken). */
/* The time (bk_monotonic_ms) before which no renewal of the key is to be tried, 0 when none. */
int64_t key_backoff_until(keytab *kt, const char *env_name, const char *user_id);
/* Records a failed renewal at now_ms (bk_monotonic_ms): the next try waits initial * 2^(n-1)
 * seconds after n failures in a row, at most cap seconds. Returns that wait in seconds (0 when out
 * of memory: no back-off then). */
int64_t key_backoff_failed(keytab *kt, const char *env_name, const char *user_id, int64_t now_ms,
                           int64_t initial, int64_t cap);
/* Forgets the key's failures (after a renewal worked). */
void key_backoff_clear(keytab *kt, const char *env_name, const char *user_id);

#endif
