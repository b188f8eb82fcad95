/* SPDX-License-Identifier: MIT */
/* src/store/ - the token stores: the bkoauth_access_token table on SQLite, PostgreSQL and MySQL
 * or MariaDB, and the renewal section (one renewal per expiry) built on them.
 *   store.c    the interface of store.h: argument checks, the dispatch to a backend (the table
 *              in backends.c) and the renewal section    rows.c  helpers the backends share
 *   keys.c     the per-key locks and state of renewals in the process (keys.h)
 *   pool.c     bounded connection pools (pool.h)
 *   the backends: sqlite.c + sqlite_conn.c; postgres.c + postgres_conn.c, postgres_lease.c
 *              (libpq loaded by pq_dl.c); mysql.c + mysql_conn.c, mysql_query.c, mysql_lock.c
 *              (the connector loaded by mysql_dl.c), each with its <name>_int.h
 * Backends call pool.c, rows.c and keys.c, never store.c. */
/* store.c - the store interface: argument checks shared by every backend, dispatch, and the
 * renewal section built from the backends' short operations (lock, read, save). */
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STORE_MAX_USER 64   /* user_id varchar(64): characters */
#define STORE_MAX_TOKEN 255 /* access_token, refresh_token, env_name varchar(255) */

/* The backend of s->store_kind from the table of backends.c; a URL of one this build lacks is a
 * ConfigError saying so. */
store *store_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    if (s == NULL) {
        err_set(err, BKOAUTH_E_CONFIG, "token store: no settings");
        return NULL;
    }
    const store_backend *b = store_backend_of(s->store_kind);
    if (b == NULL) {
        err_set(err, BKOAUTH_E_CONFIG, "BKOAUTH_DATABASE_URL: unknown store kind %d", s->store_kind);
        return NULL;
    }
    if (b->open == NULL) {
        err_set(err, BKOAUTH_E_CONFIG,
                "BKOAUTH_DATABASE_URL: a %s URL, but this libbkoauth was built without %s (%s=OFF)", b->name,
                b->name, b->option);
        return NULL;
    }
    keytab *keys = keytab_new();
    if (keys == NULL) {
        err_nomem(err);
        return NULL;
    }
    store *st = b->open(s, logger, err);
    if (st == NULL) {
        keytab_free(keys);
        return NULL;
    }
    st->s = s;
    st->keys = keys;
    return st;
}

bkoauth_code store_django_migrations(store *st, char *names, size_t size, bkoauth_error *err)
{
    if (size == 0) return err_set(err, BKOAUTH_E_INVALID, "store_django_migrations: no room for the names");
    names[0] = '\0';
    return st->ops->django_migrations(st, names, size, err);
}

bkoauth_code store_check_user(const char *user_id, bkoauth_error *err)
{
    const char *bad = bk_name_problem(user_id);
    if (bad != NULL) /* never echoed: it could forge lines of a log or a terminal */
        return err_set(err, BKOAUTH_E_INVALID, "user_id %s: give the user's name as it is", bad);
    size_t chars = bk_utf8_chars(user_id);
    if (chars > STORE_MAX_USER)
        return err_set(err, BKOAUTH_E_INVALID,
                       "user_id is %zu characters long; the token table allows at most %d", chars,
                       STORE_MAX_USER);
    return BKOAUTH_OK;
}

static bkoauth_code check_key(const char *env_name, const char *user_id, bkoauth_error *err)
{
    if (env_name == NULL || env_name[0] == '\0')
        return err_set(err, BKOAUTH_E_INVALID, "token store: env_name is empty");
    if (strlen(env_name) > STORE_MAX_TOKEN)
        return err_set(err, BKOAUTH_E_INVALID,
                       "env_name is %zu bytes long; the token table allows at most %d", strlen(env_name),
                       STORE_MAX_TOKEN);
    const char *bad = bk_name_problem(env_name);
    if (bad != NULL) return err_set(err, BKOAUTH_E_INVALID, "env_name %s", bad);
    return user_id != NULL ? store_check_user(user_id, err) : BKOAUTH_OK;
}

static const char *app_or_user(const char *user_id)
{
    return (user_id != NULL && user_id[0] != '\0') ? user_id : NULL;
}

static const char *who(const char *user_id)
{
    return user_id ? user_id : "the APP";
}

/* NULL when the values of a token read from the table can be used (its tokens in the SSM's
 * alphabet, its scope UTF-8); else what is wrong with them. Rows other programs wrote may hold
 * anything. */
static const char *row_values_problem(const bkoauth_token *t)
{
    if (!bk_token_text_ok(t->access_token, STORE_MAX_TOKEN, 0))
        return "its access_token is empty, too long or has characters no SSM token has";
    if (!bk_token_text_ok(t->refresh_token, STORE_MAX_TOKEN, 1))
        return "its refresh_token is too long or has characters no SSM token has";
    if (t->scope != NULL && !bk_utf8_ok(t->scope)) return "its scope is not UTF-8 text";
    return NULL;
}

/* The same, and its names readable: for a row found by listing, whose names no key checked. */
static const char *row_problem(const bkoauth_token *t)
{
    if (bk_name_problem(t->env_name) != NULL) return "its env_name has control characters or is not UTF-8";
    if (t->user_id != NULL && bk_name_problem(t->user_id) != NULL)
        return "its user_id has control characters or is not UTF-8";
    return row_values_problem(t);
}

/* The backend's get, with the row checked: one that cannot be used is BKOAUTH_E_STORE (its
 * contents never shown). Its names are the key's, byte for byte (every backend compares them
 * exactly), which check_key() has checked: only its values are. */
static bkoauth_code get_row(store *st, const char *env_name, const char *user_id, bkoauth_token **out,
                            bkoauth_error *err)
{
    bkoauth_code rc = st->ops->get(st, env_name, user_id, out, err);
    const char *bad = rc == BKOAUTH_OK ? row_values_problem(*out) : NULL;
    if (bad == NULL) return rc;
    bkoauth_token_free(*out);
    *out = NULL;
    return err_set(
        err, BKOAUTH_E_STORE,
        "the saved token of %s in env %s cannot be used: %s (did another program write it?); a new "
        "login replaces it, or remove it with bkoauth_delete_token()",
        who(user_id), env_name, bad);
}

/* Every save goes through here (the fault injection of the tests sits in front of it). */
static bkoauth_code save_row(store *st, const bkoauth_token *t, bkoauth_error *err)
{
    int left = atomic_load(&st->fail_saves);
    while (left > 0 && !atomic_compare_exchange_weak(&st->fail_saves, &left, left - 1)) {
    }
    if (left > 0)
        return err_set(err, BKOAUTH_E_STORE,
                       "token store: saving a token failed (a fault injected by a test)");
    /* a database's message may quote the value it refused (MySQL: "Duplicate entry '...'") */
    bk_scope scope;
    bk_scope_enter(&scope);
    bk_scope_add(&scope, t->access_token);
    bk_scope_add(&scope, t->refresh_token);
    bkoauth_code rc = st->ops->save(st, t, err);
    bk_scope_leave(&scope);
    return rc;
}

void store_fail_next_saves(store *st, int n)
{
    atomic_store(&st->fail_saves, n);
}

/* ---- grants not saved yet -------------------------------------------------------------------- */

/* Tries to save the key's unsaved grant (the caller holds the key's locks, or the grant is
 * saved under a try-lock); clears it when saved, or when the row holds a newer token. */
static void flush_unsaved(store *st, key_entry *e)
{
    bkoauth_token *u = key_unsaved_copy(st->keys, e->env_name, e->user_id);
    if (u == NULL) return;
    bkoauth_token *row = NULL;
    if (get_row(st, e->env_name, e->user_id, &row, NULL) == BKOAUTH_OK && row->expires > u->expires) {
        key_set_unsaved(st->keys, e, NULL); /* renewed elsewhere since: the row wins */
    } else {
        bkoauth_error why;
        if (row != NULL) u->created_at = row->created_at;
        if (save_row(st, u, &why) == BKOAUTH_OK) {
            key_set_unsaved(st->keys, e, NULL);
            atomic_fetch_add(&st->saved_late, 1);
            log_write(st->logger, BKOAUTH_LOG_WARNING, "the token of %s (env %s) is saved now, late",
                      who(e->user_id), e->env_name);
        }
    }
    bkoauth_token_free(row);
    bkoauth_token_free(u);
}

/* On a read: at most once a second per key, and only when no renewal holds the key. */
static void flush_unsaved_on_read(store *st, const char *env_name, const char *user_id)
{
    key_entry *e = key_peek(st->keys, env_name, user_id);
    if (e == NULL) return;
    int64_t now = bk_monotonic_ms();
    int locked = pthread_mutex_trylock(&e->mu) == 0;
    if (locked && now - e->save_tried_ms >= 1000) {
        e->save_tried_ms = now;
        int held = 0;
        store_lease lease = {{0}};
        if (st->ops->try_lock(st, env_name, user_id, &lease, &held, NULL) == BKOAUTH_OK && held) {
            flush_unsaved(st, e);
            st->ops->unlock(st, env_name, user_id, &lease);
        }
    }
    key_release(st->keys, e, locked);
}

/* The newer of the row (*row, may be NULL) and the key's unsaved grant; frees the other. */
static bkoauth_token *newest(store *st, const char *env_name, const char *user_id, bkoauth_token *row)
{
    bkoauth_token *u = key_unsaved_copy(st->keys, env_name, user_id);
    if (u == NULL) return row;
    if (row != NULL && row->expires > u->expires) {
        bkoauth_token_free(u);
        return row;
    }
    bkoauth_token_free(row);
    return u;
}

bkoauth_code store_get(store *st, const char *env_name, const char *user_id, bkoauth_token **out,
                       bkoauth_error *err)
{
    *out = NULL;
    bkoauth_code rc = check_key(env_name, user_id, err);
    if (rc != BKOAUTH_OK) return rc;
    user_id = app_or_user(user_id);
    rc = get_row(st, env_name, user_id, out, err);
    if (rc != BKOAUTH_OK && rc != BKOAUTH_E_TOKEN_NOT_EXIST) {
        bkoauth_token *u = key_unsaved_copy(st->keys, env_name, user_id);
        if (u == NULL) return rc;
        *out = u; /* the store failed, but this process holds the key's newest grant */
        return err_ok(err);
    }
    bkoauth_token *t = newest(st, env_name, user_id, *out);
    if (t != *out) {
        *out = t;
        flush_unsaved_on_read(st, env_name, user_id);
        return err_ok(err);
    }
    return rc;
}

/* ---- the renewal section --------------------------------------------------------------------- */

/* Waits for the key's cross-process lock until deadline (ms): polls the backend's try-lock,
 * backing off from 0.5 ms to 10 ms. *held 0 when the deadline passed or the store failed: the
 * renewal then goes on without it (a duplicate renewal is better than a failed call). Returns 1
 * when it stopped at give_up (ms, 0: never) instead, without the lock. */
static int lock_wait(store *st, const char *env_name, const char *user_id, int64_t deadline, int64_t give_up,
                     store_lease *lease, int *held)
{
    useconds_t delay = 500;
    bkoauth_error e;
    for (;;) {
        if (st->ops->try_lock(st, env_name, user_id, lease, held, &e) != BKOAUTH_OK) {
            log_write(st->logger, BKOAUTH_LOG_WARNING,
                      "renewing the token of %s without the cross-process lock: %s", who(user_id), e.message);
            return 0;
        }
        if (*held) return 0;
        int64_t now = bk_monotonic_ms();
        if (give_up != 0 && now >= give_up) return 1;
        if (now >= deadline) {
            log_write(st->logger, BKOAUTH_LOG_WARNING,
                      "another process has been renewing the token of %s for longer than the SSM timeout; "
                      "renewing it here too",
                      who(user_id));
            return 0;
        }
        usleep(delay);
        delay = delay * 2 > 10000 ? 10000 : delay * 2;
    }
}

static size_t len0(const char *s)
{
    return s ? strlen(s) : 0;
}

/* What fn gives must fit the table; it is saved as the row of the key being renewed (env_name
 * and user_id of the key, whatever fn put in the token), keeping the row's created_at (now for
 * a new row, unless the token brings its own). */
static bkoauth_code normalize(const char *env_name, const char *user_id, const bkoauth_token *current,
                              bkoauth_token **fresh, bkoauth_error *err)
{
    bkoauth_token *t = *fresh;
    *fresh = NULL;
    const char *bad =
        bk_empty(t->access_token) ? "an empty access_token"
        : strlen(t->access_token) > STORE_MAX_TOKEN
            ? "an access_token longer than 255 bytes (the table's column is varchar(255))"
        : len0(t->refresh_token) > STORE_MAX_TOKEN
            ? "a refresh_token longer than 255 bytes (the table's column is varchar(255))"
        : !bk_token_text_ok(t->access_token, STORE_MAX_TOKEN, 0) ||
                !bk_token_text_ok(t->refresh_token, STORE_MAX_TOKEN, 1)
            ? "a token with characters no SSM token has (they are printable ASCII without spaces)"
            : NULL;
    if (bad != NULL) {
        bkoauth_token_free(t);
        return err_set(err, BKOAUTH_E_INVALID, "token store: cannot save %s; nothing was changed", bad);
    }
    int64_t created = current != NULL ? current->created_at : t->created_at != 0 ? t->created_at : bk_now();
    *fresh = token_make(t->access_token, t->refresh_token, t->scope, env_name, user_id, t->expires, created);
    bkoauth_token_free(t);
    return *fresh != NULL ? BKOAUTH_OK : err_nomem(err);
}

/* The section with both locks held: re-read, decide, save. */
static bkoauth_code renew_locked(store *st, key_entry *e, const char *env_name, const char *user_id,
                                 store_renew_fn fn, void *ctx, int keep, bkoauth_token **out,
                                 bkoauth_error *err)
{
    flush_unsaved(st, e);
    bkoauth_token *current = NULL, *fresh = NULL;
    bkoauth_error why;
    bkoauth_code rc = get_row(st, env_name, user_id, &current, &why);
    if (rc == BKOAUTH_E_TOKEN_NOT_EXIST) rc = BKOAUTH_OK;
    if (rc == BKOAUTH_E_NOMEM) return err ? (*err = why, rc) : rc;
    if (rc != BKOAUTH_OK) {
        /* the row cannot be read (the store fails, or the row is junk): a grant this process
         * holds still answers; else the renewal goes on as for a missing row, and what it gets
         * is kept in the process if it cannot be saved either */
        log_write(st->logger, BKOAUTH_LOG_WARNING, "renewing the token of %s without its saved row: %s",
                  who(user_id), why.message);
        current = key_unsaved_copy(st->keys, env_name, user_id);
    } else {
        current = newest(st, env_name, user_id, current);
    }
    atomic_store(&e->busy_since_ms, bk_monotonic_ms());
    rc = fn(ctx, current, &fresh, err);
    atomic_store(&e->busy_since_ms, 0);
    if (rc != BKOAUTH_OK) {
        bkoauth_token_free(fresh);
        bkoauth_token_free(current);
        return rc;
    }
    if (fresh == NULL) {
        *out = current;
        return current != NULL ? BKOAUTH_OK
                               : err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST, "no saved token for %s in env %s",
                                         who(user_id), env_name);
    }
    rc = normalize(env_name, user_id, current, &fresh, err);
    bkoauth_token_free(current);
    if (rc != BKOAUTH_OK) return rc;
    rc = save_row(st, fresh, err);
    if (rc == BKOAUTH_E_STORE) rc = save_row(st, fresh, err); /* once more (the backend reconnects) */
    if (rc == BKOAUTH_OK) {
        if (keep) key_set_unsaved(st->keys, e, NULL); /* the row holds the newest now */
        *out = fresh;
        return BKOAUTH_OK;
    }
    if (keep) {
        bkoauth_token *copy = bkoauth_token_dup(fresh);
        if (copy != NULL) {
            key_set_unsaved(st->keys, e, copy);
            log_write(st->logger, BKOAUTH_LOG_ERROR,
                      "the new token of %s (env %s) could not be saved (%s); it is kept in this process and "
                      "saved at the next chance",
                      who(user_id), env_name, err ? err->message : "store error");
        }
    }
    *out = fresh;
    return rc;
}

/* The row as it is now (a grant kept in the process counts), when ok accepts it; else NULL. */
static bkoauth_token *current_if_ok(store *st, const char *env_name, const char *user_id,
                                    store_current_ok_fn ok, void *ctx)
{
    bkoauth_token *t = NULL;
    if (get_row(st, env_name, user_id, &t, NULL) != BKOAUTH_OK) t = NULL;
    t = newest(st, env_name, user_id, t);
    if (t != NULL && ok(ctx, t)) return t;
    bkoauth_token_free(t);
    return NULL;
}

static bkoauth_code renew(store *st, const char *env_name, const char *user_id, store_current_ok_fn ok,
                          store_renew_fn fn, void *ctx, int keep, int64_t patience_ms, bkoauth_token **out,
                          bkoauth_error *err)
{
    *out = NULL;
    bkoauth_code rc = check_key(env_name, user_id, err);
    if (rc != BKOAUTH_OK) return rc;
    if (fn == NULL) return err_set(err, BKOAUTH_E_INVALID, "token store: no renew function");
    user_id = app_or_user(user_id);
    /* a renewer holds the key for at most the SSM timeout (plus the save); past that it is stuck */
    int64_t start = bk_monotonic_ms(), deadline = start + store_hold_ms(st->s);
    int locked = 0, held = 0, impatient = 0;
    store_lease lease = {{0}};
    key_entry *e = key_acquire(st->keys, env_name, user_id, deadline, patience_ms, &locked, &impatient);
    if (e == NULL) return err_nomem(err);
    if (impatient) {
        key_release(st->keys, e, 0); /* the caller's own token will do */
        return err_ok(err);
    }
    if (ok != NULL && (*out = current_if_ok(st, env_name, user_id, ok, ctx)) != NULL) {
        key_release(st->keys, e, locked); /* renewed while this caller waited */
        return err_ok(err);
    }
    /* another process's renewal is not seen here: patience counts the wait for its lock */
    if (lock_wait(st, env_name, user_id, deadline, patience_ms > 0 ? start + 2 * patience_ms : 0, &lease,
                  &held)) {
        key_release(st->keys, e, locked);
        return err_ok(err);
    }
    rc = renew_locked(st, e, env_name, user_id, fn, ctx, keep, out, err);
    if (held) st->ops->unlock(st, env_name, user_id, &lease);
    key_release(st->keys, e, locked);
    return rc;
}

bkoauth_code store_renew(store *st, const char *env_name, const char *user_id, store_renew_fn fn, void *ctx,
                         bkoauth_token **out, bkoauth_error *err)
{
    return renew(st, env_name, user_id, NULL, fn, ctx, 0, 0, out, err);
}

bkoauth_code store_renew_if(store *st, const char *env_name, const char *user_id,
                            store_current_ok_fn current_ok, store_renew_fn fn, void *ctx, int64_t patience_ms,
                            bkoauth_token **out, bkoauth_error *err)
{
    return renew(st, env_name, user_id, current_ok, fn, ctx, 1, patience_ms, out, err);
}

static bkoauth_code put_copy(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                             bkoauth_error *err)
{
    (void)current;
    *fresh = bkoauth_token_dup(ctx);
    return *fresh ? BKOAUTH_OK : err_nomem(err);
}

bkoauth_code store_put(store *st, const bkoauth_token *token, bkoauth_error *err)
{
    if (token == NULL) return err_set(err, BKOAUTH_E_INVALID, "token store: no token to save");
    bkoauth_token *out = NULL;
    bkoauth_code rc = store_renew(st, token->env_name, token->user_id, put_copy, (void *)token, &out, err);
    bkoauth_token_free(out);
    return rc;
}

bkoauth_code store_remove(store *st, const char *env_name, const char *user_id, bkoauth_error *err)
{
    bkoauth_code rc = check_key(env_name, user_id, err);
    if (rc != BKOAUTH_OK) return rc;
    user_id = app_or_user(user_id);
    key_entry *e = key_peek(st->keys, env_name, user_id);
    if (e != NULL) { /* a deleted token is forgotten, saved or not */
        key_set_unsaved(st->keys, e, NULL);
        key_release(st->keys, e, 0);
    }
    return st->ops->remove(st, env_name, user_id, err);
}

bkoauth_code store_list(store *st, bkoauth_token ***out, size_t *count, bkoauth_error *err)
{
    *out = NULL;
    *count = 0;
    int64_t *ids = NULL;
    bkoauth_code rc = st->ops->list(st, out, &ids, count, err);
    if (rc != BKOAUTH_OK) return rc;
    /* rows that cannot be used are left out, and said so (by id: their names may be junk too);
     * the others are listed */
    size_t kept = 0;
    for (size_t i = 0; i < *count; i++) {
        bkoauth_token *t = (*out)[i];
        const char *bad = row_problem(t);
        if (bad == NULL) {
            (*out)[kept++] = t;
            continue;
        }
        log_write(
            st->logger, BKOAUTH_LOG_WARNING,
            "listing tokens: the saved row id %lld (env %s, %s%s) cannot be used: %s (did another program "
            "write it?); it is left out",
            (long long)ids[i], bk_name_problem(t->env_name) ? "unreadable" : t->env_name,
            t->user_id == NULL            ? "the APP"
            : bk_name_problem(t->user_id) ? "a user with an unreadable name"
                                          : "user ",
            t->user_id == NULL || bk_name_problem(t->user_id) ? "" : t->user_id, bad);
        bkoauth_token_free(t);
    }
    bkoauth__free(ids);
    *count = kept;
    return BKOAUTH_OK;
}

/* At close: one more try to save each grant still held; what cannot be saved is named. */
static void flush_all_unsaved(store *st)
{
    if (keytab_unsaved(st->keys) == 0) return;
    key_entry *held[64];
    int n = keytab_unsaved_entries(st->keys, held, 64);
    for (int i = 0; i < n; i++) {
        int h = 0;
        store_lease lease = {{0}};
        if (st->ops->try_lock(st, held[i]->env_name, held[i]->user_id, &lease, &h, NULL) == BKOAUTH_OK && h) {
            flush_unsaved(st, held[i]);
            st->ops->unlock(st, held[i]->env_name, held[i]->user_id, &lease);
        }
        bkoauth_token *u = key_unsaved_copy(st->keys, held[i]->env_name, held[i]->user_id);
        if (u != NULL)
            log_write(st->logger, BKOAUTH_LOG_ERROR,
                      "the token of %s (env %s) obtained from the SSM service could not be saved before the "
                      "client was closed; the user's next login gets a new one",
                      who(held[i]->user_id), held[i]->env_name);
        bkoauth_token_free(u);
        key_release(st->keys, held[i], 0);
    }
}

void store_close(store *st)
{
    if (st == NULL) return;
    flush_all_unsaved(st);
    keytab *keys = st->keys;
    st->ops->close(st);
    keytab_free(keys);
}

void store_after_fork(store *st)
{
    if (st == NULL) return;
    /* the parent's key table may have locks held by threads the child does not have */
    keytab *fresh = keytab_new();
    if (fresh != NULL) st->keys = fresh; /* the old one is left to the parent */
    st->ops->after_fork(st);
}

void store_counts(store *st, uint64_t *reconnects, uint64_t *saved_late, uint64_t *unsaved)
{
    *reconnects = atomic_load(&st->reconnects);
    *saved_late = atomic_load(&st->saved_late);
    *unsaved = (uint64_t)keytab_unsaved(st->keys);
}
