/* SPDX-License-Identifier: MIT */
/* store.h - where tokens are saved: the table bkoauth_access_token in SQLite (sqlite.c),
 * PostgreSQL (postgres.c) or MySQL / MariaDB (mysql.c), behind one small interface. A row is keyed by
 * (env_name, user_id); user_id NULL (or "" written by others) is the APP token.
 *
 * Renewal (store_renew) holds no database lock, transaction or pooled connection while the
 * renew function runs (it calls the SSM service): renewers of one key are kept apart by a
 * per-key lock in the process (keys.h) and a per-key lock across processes and hosts that the
 * backend provides without a transaction (SQLite: an OFD byte-range lock on a lock file beside
 * the database; PostgreSQL: a lease in the table bkoauth_renewal_lease, taken and released each
 * by one autocommit statement, so that it works through PgBouncer in any pool mode; MySQL:
 * GET_LOCK() on a connection kept for locks). Reading
 * the row and saving a grant are each one short statement or transaction. */
#ifndef BKOAUTH_STORE_H
#define BKOAUTH_STORE_H

#include "../internal.h"
#include "keys.h"

#include <stdatomic.h>

typedef struct store store;

/* What a backend remembers of one taking of a renewal lock, from try_lock to unlock (the
 * PostgreSQL lease's holder, unique per taking). */
typedef struct store_lease {
    char holder[256];
} store_lease;

/* Called by store_renew with the key locked, with the row as it is now (current NULL when
 * there is none). Sets *fresh to a new token to save in that row (ownership passes to the
 * store), or leaves it NULL to keep the row as is. An error return changes nothing and is
 * passed through. */
typedef bkoauth_code (*store_renew_fn)(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                       bkoauth_error *err);

/* Optional, with store_renew_if: 1 when current (the row as just read, never NULL) needs no
 * renewal. Lets a renewer that waited for another one take the renewed row without the
 * cross-process lock (so the waiters of a herd do not queue on it one by one). */
typedef int (*store_current_ok_fn)(void *ctx, const bkoauth_token *current);

/* What a backend provides. Every operation is short: none waits for another key's renewal. */
typedef struct store_ops {
    /* The row of (env_name, user_id) (user_id NULL: the APP); BKOAUTH_E_TOKEN_NOT_EXIST when none.
     * Uses a read connection that writers never hold. */
    bkoauth_code (*get)(store *st, const char *env_name, const char *user_id, bkoauth_token **out,
                        bkoauth_error *err);
    /* Takes the key's cross-process renewal lock without waiting: *held 1 when taken, 0 when
     * another process or host holds it. Released by unlock (given the same lease, which the
     * backend may fill in when it takes the lock), or, when the process dies, by the system
     * (SQLite, MySQL) or the lease's expiry (PostgreSQL). An error (database unreachable)
     * leaves *held 0. */
    bkoauth_code (*try_lock)(store *st, const char *env_name, const char *user_id, store_lease *lease,
                             int *held, bkoauth_error *err);
    void (*unlock)(store *st, const char *env_name, const char *user_id, const store_lease *lease);
    /* Saves t (env_name, user_id and created_at already those of the key) in one short write
     * transaction: updates the row get() would read in place (keeping id and created_at), or
     * inserts one; a stale row of another key holding the same access_token is deleted. A
     * connection found broken is replaced and the save tried once more. */
    bkoauth_code (*save)(store *st, const bkoauth_token *t, bkoauth_error *err);
    bkoauth_code (*remove)(store *st, const char *env_name, const char *user_id, bkoauth_error *err);
    /* Every readable row; *ids (allocated, freed with bkoauth__free) the rows' ids, in the same
     * order. A row that cannot be read is left out with a warning naming its id. */
    bkoauth_code (*list)(store *st, bkoauth_token ***out, int64_t **ids, size_t *count, bkoauth_error *err);
    void (*close)(store *st);
    /* In a child after fork(): forget (never close) what is the parent's - connections, the
     * lock connection or lock file description - so that new ones are made on use. */
    void (*after_fork)(store *st);
    /* The Django migrations recorded for the table (django_migrations rows of app 'bkoauth'), in
     * order, added to names with store_names_add; none (or no django_migrations table): "". */
    bkoauth_code (*django_migrations)(store *st, char *names, size_t size, bkoauth_error *err);
    const char *name; /* "sqlite", "postgresql" or "mysql", for messages */
} store_ops;

/* Every backend's handle starts with this; store_open fills keys and s. */
struct store {
    const store_ops *ops;
    const bk_logger *logger;
    const bk_settings *s;
    keytab *keys;
    atomic_ulong reconnects; /* broken connections replaced (by the backend) */
    atomic_ulong saved_late; /* grants saved after their first save had failed */
    atomic_int fail_saves;   /* tests: saves still to fail (store_fail_next_saves) */
};

/* The rows a backend's list collects, grown as they are read: the tokens and their ids, in the
 * same order. Shared by the backends so that every list treats a row alike. */
typedef struct store_rows {
    bkoauth_token **items;
    int64_t *ids;
    size_t count, cap;
} store_rows;

/* The store_rows functions are in rows.c. Makes room for one more row at items[count] and
 * ids[count]: BKOAUTH_OK or out of memory. */
bkoauth_code store_rows_room(store_rows *rows, bkoauth_error *err);

/* The row read into items[count] / ids[count] with outcome rc: kept when BKOAUTH_OK; a row that
 * cannot be read (bad_row) is left out with a warning, and the others are still listed
 * (BKOAUTH_OK); any other failure is returned, with why copied into err. */
bkoauth_code store_rows_keep(store_rows *rows, const bk_logger *logger, bkoauth_code rc, int bad_row,
                             const bkoauth_error *why, bkoauth_error *err);

/* The list's end: with rc BKOAUTH_OK the rows go to the caller (*out, *ids, *count), otherwise
 * they are freed. Returns rc. */
bkoauth_code store_rows_finish(store_rows *rows, bkoauth_code rc, bkoauth_token ***out, int64_t **ids,
                               size_t *count);

/* Whether user_id (not NULL) can be a key: readable text (no control characters, direction marks
 * or bytes that are not UTF-8) of at most 64 characters, the table's user_id varchar(64).
 * BKOAUTH_E_INVALID says what is wrong without repeating it. */
bkoauth_code store_check_user(const char *user_id, bkoauth_error *err);

/* The store's kind: "sqlite", "postgresql" or "mysql". */
static inline const char *store_kind_name(const store *st)
{
    return st->ops->name;
}

/* The longest a renewer may hold a key's cross-process lock: its SSM call is bounded by
 * BKOAUTH_TIMEOUT_MS, and 5 s more cover reading and saving the row. Waiters wait that long at
 * most; a PostgreSQL lease expires after it. */
static inline int64_t store_hold_ms(const bk_settings *s)
{
    return (int64_t)s->timeout_ms + 5000;
}

/* BKOAUTH_DB_CONNECTIONS of s (its default when s was not made by settings_from_config). */
static inline int store_connections(const bk_settings *s)
{
    return s->db_connections >= 3 ? s->db_connections : 13;
}

/* Opens the store s names (s->store_kind, s->database_url) and creates the table and its
 * indexes when absent (checked without a write lock first). s and logger are borrowed and must
 * outlive the store. Thread-safe. */
store *store_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
store *store_sqlite_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
store *store_postgres_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
store *store_mysql_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);

/* A backend as store_open() finds it in the table of backends.c: its kind (BK_STORE_* of
 * BKOAUTH_DATABASE_URL), its name for messages, and its open (NULL when this build lacks it:
 * option then names the build option that adds it). */
typedef struct store_backend {
    int kind;
    const char *name;   /* "SQLite", "PostgreSQL", "MySQL" */
    const char *option; /* "BKOAUTH_WITH_POSTGRESQL" ...; NULL when always built */
    store *(*open)(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
} store_backend;
/* The entry of kind in the table (backends.c); NULL when kind is none of them. */
const store_backend *store_backend_of(int kind);

/* The saved token of (env_name, user_id); user_id NULL or "" is the APP token. A grant this
 * process could not save yet (store_renew_if) wins over an older row. None:
 * BKOAUTH_E_TOKEN_NOT_EXIST. */
bkoauth_code store_get(store *st, const char *env_name, const char *user_id, bkoauth_token **out,
                       bkoauth_error *err);
/* Runs fn with the key locked against every other renewer (threads, processes, hosts), after
 * re-reading the row; saves what fn gives (update in place, keeping id and created_at; insert
 * when absent). *out is the row after the section (the fresh or the current token). When there
 * is no row and fn gives nothing: BKOAUTH_E_TOKEN_NOT_EXIST. When saving failed (after one more
 * try on a fresh connection), BKOAUTH_E_STORE with *out set to the unsaved token (the caller's)
 * and err saying why. A process killed inside leaves the previous row, and its lock is
 * released by the system. */
bkoauth_code store_renew(store *st, const char *env_name, const char *user_id, store_renew_fn fn, void *ctx,
                         bkoauth_token **out, bkoauth_error *err);
/* store_renew for grants from the SSM service, which must never be lost: a grant that cannot be
 * saved is also kept in the process, served by store_get and store_renew of its key, and saved
 * at the next chance (the next renewal of the key, or a read at most once a second). When
 * current_ok (may be NULL) accepts the row read after the key's in-process lock was taken, that
 * row is the answer (fn is not called). With patience_ms > 0 the caller has a
 * token that will do meanwhile: when the key's renewal in this process has been calling for
 * longer than patience_ms, or another process holds the key for longer than twice that, it
 * returns BKOAUTH_OK with *out NULL instead of waiting on. */
bkoauth_code store_renew_if(store *st, const char *env_name, const char *user_id,
                            store_current_ok_fn current_ok, store_renew_fn fn, void *ctx, int64_t patience_ms,
                            bkoauth_token **out, bkoauth_error *err);
/* Saves token in its (env_name, user_id) row: store_renew with a fn that returns a copy. */
bkoauth_code store_put(store *st, const bkoauth_token *token, bkoauth_error *err);
bkoauth_code store_remove(store *st, const char *env_name, const char *user_id, bkoauth_error *err);
bkoauth_code store_list(store *st, bkoauth_token ***out, size_t *count, bkoauth_error *err);
void store_close(store *st);
/* In a child after fork(): the store keeps working with connections of its own. */
void store_after_fork(store *st);
/* Fault injection for tests: the next n saves fail as the database failing them would
 * (BKOAUTH_E_STORE), before they reach the backend. */
void store_fail_next_saves(store *st, int n);
/* The names of the Django migrations recorded for the token table (rows of django_migrations with
 * app 'bkoauth', as a Django app with bkoauth installed records them), in order, ", " between
 * them, in names (size bytes; cut short with "..." when longer). "" when there are none or the
 * database has no django_migrations table. For `bkoauth check`: a table made by libbkoauth needs
 * `manage.py migrate bkoauth --fake` once before a Django app shares it. */
bkoauth_code store_django_migrations(store *st, char *names, size_t size, bkoauth_error *err);
/* Adds name to the list in names (see store_django_migrations); shared by the backends (rows.c). */
void store_names_add(char *names, size_t size, const char *name);
/* The app label of those rows: a bound parameter of each backend's query. */
#define STORE_DJANGO_APP "bkoauth"
/* Counters: broken connections replaced, grants saved late, grants held unsaved now. */
void store_counts(store *st, uint64_t *reconnects, uint64_t *saved_late, uint64_t *unsaved);

#endif
