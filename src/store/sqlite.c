/* SPDX-License-Identifier: MIT */
/* sqlite.c - the token table in SQLite, as Django's SQLite backend creates and writes it.
 *
 * Connections: a read pool and a write pool of one (SQLite has one writer at a time; the
 * threads of a process queue for it instead of polling the file lock), so readers never wait
 * for writers, and in WAL mode not for other processes either. A connection is used by one
 * thread at a time (opened NOMUTEX).
 *
 * Renewals of one key across processes are kept apart by an OFD byte-range lock on the file
 * "<database>-lock": one byte per key (at the key's 40-bit hash), taken without waiting and
 * released by the kernel when the process dies. No database lock is held while the SSM service
 * is called; saving a grant is one short write transaction.
 *
 * Choices: several rows of one key (another program made them) - the one with the latest
 * expires (then the highest id) is read and updated, the others are left alone; a token being
 * saved that another row still holds (access_token is UNIQUE) - that stale row is deleted in
 * the same transaction, the token now belongs to the key being saved.
 *
 * Connections and the errors of SQLite: sqlite_conn.c; what the two share: sqlite_int.h. */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SQLITE_WRITERS 1 /* the readers: the rest of BKOAUTH_DB_CONNECTIONS */

#define COLUMNS "id, access_token, expires, refresh_token, scope, env_name, user_id, created_at"

/* The user row: the unary + keeps SQLite on the user_id index (every row may share one env).
 * Several rows of one key (written by others) are possible: find() keeps the one with the
 * latest expires, then the highest id, without asking SQLite to sort. */
static const char *const SQL[Q_COUNT] = {
    [Q_GET_USER] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE user_id = ?1 AND +env_name = ?2",
    [Q_GET_APP] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE (user_id IS NULL OR user_id = '') "
                  "AND +env_name = ?2",
    [Q_UPDATE] = "UPDATE bkoauth_access_token SET access_token = ?1, expires = ?2, refresh_token = ?3, "
                 "scope = ?4 WHERE id = ?5",
    [Q_INSERT] = "INSERT INTO bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, "
                 "user_id, created_at, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
    [Q_DELETE_CLASH] = "DELETE FROM bkoauth_access_token WHERE access_token = ?1 AND id != ?2",
    [Q_DELETE_USER] = "DELETE FROM bkoauth_access_token WHERE user_id = ?1 AND env_name = ?2",
    [Q_DELETE_APP] =
        "DELETE FROM bkoauth_access_token WHERE (user_id IS NULL OR user_id = '') AND env_name = ?2",
    /* sorted by list_sort(): SQLite's sorter would take a buffer of every row, doubled as it
     * grows (128 KiB for 500 rows), for each list */
    [Q_LIST] = "SELECT " COLUMNS " FROM bkoauth_access_token",
};

/* The table and its indexes as Django 3.2's three bkoauth migrations leave them on SQLite, text
 * for text (0003 remakes the table with user_id last; Django's index names), so that a Django
 * app taking the table over records it with `migrate bkoauth --fake` and finds nothing to do. */
static const char *const CREATE_TABLE = "CREATE TABLE IF NOT EXISTS \"bkoauth_access_token\" ("
                                        "\"id\" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "
                                        "\"access_token\" varchar(255) NOT NULL UNIQUE, "
                                        "\"expires\" datetime NOT NULL, "
                                        "\"refresh_token\" varchar(255) NULL, "
                                        "\"scope\" text NULL, "
                                        "\"env_name\" varchar(255) NOT NULL, "
                                        "\"created_at\" datetime NOT NULL, "
                                        "\"extra\" text NULL, "
                                        "\"user_id\" varchar(64) NULL)";
static const char *const CREATE_INDEX[2][2] = {
    {"env_name", "CREATE INDEX IF NOT EXISTS \"bkoauth_access_token_env_name_736cbdc5\" ON "
                 "\"bkoauth_access_token\" (\"env_name\")"},
    {"user_id", "CREATE INDEX IF NOT EXISTS \"bkoauth_access_token_user_id_a4b1d1f5\" ON "
                "\"bkoauth_access_token\" (\"user_id\")"},
};

static sqlite3_stmt *stmt(sqlite_store *ss, conn *c, int q, bkoauth_error *err)
{
    if (c->stmt[q] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, SQL[q], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[q], NULL);
        if (rc != SQLITE_OK) {
            bk_sq_error(ss, c->db, rc, "preparing a query", err);
            return NULL;
        }
    } else {
        sqlite3_reset(c->stmt[q]);
        sqlite3_clear_bindings(c->stmt[q]);
    }
    return c->stmt[q];
}

/* ---- rows ---------------------------------------------------------------------------------- */

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : NULL;
}

static bkoauth_code col_time(sqlite_store *ss, sqlite3_stmt *st, int i, const char *name, int64_t *out,
                             bkoauth_error *err)
{
    if (sqlite3_column_type(st, i) == SQLITE_INTEGER) {
        *out = sqlite3_column_int64(st, i);
        return BKOAUTH_OK;
    }
    const char *t = col_text(st, i);
    if (t == NULL || dt_parse_zone(t, ss->s->db_zone, out) != 0)
        return err_set(err, BKOAUTH_E_STORE,
                       "token database %s: row id %lld has an unreadable %s value '%.40s'", ss->path,
                       (long long)sqlite3_column_int64(st, 0), name, t ? t : "NULL");
    return BKOAUTH_OK;
}

/* The token in the current result row; *id its id. */
static bkoauth_code read_row(sqlite_store *ss, sqlite3_stmt *st, bkoauth_token **out, int64_t *id,
                             bkoauth_error *err)
{
    int64_t expires, created;
    bkoauth_code rc = col_time(ss, st, 2, "expires", &expires, err);
    if (rc == BKOAUTH_OK) rc = col_time(ss, st, 7, "created_at", &created, err);
    if (rc != BKOAUTH_OK) return rc;
    /* a NUL inside a text value would cut it short unseen: such a row is reported instead */
    static const char *const names[] = {"",      "access_token", "",       "refresh_token",
                                        "scope", "env_name",     "user_id"};
    for (int i = 1; i <= 6; i++) {
        const char *t = i == 2 ? NULL : col_text(st, i);
        if (t != NULL && strlen(t) != (size_t)sqlite3_column_bytes(st, i))
            return err_set(err, BKOAUTH_E_STORE,
                           "token database %s: row id %lld has a NUL byte inside its %s", ss->path,
                           (long long)sqlite3_column_int64(st, 0), names[i]);
    }
    if (id) *id = sqlite3_column_int64(st, 0);
    *out = token_make(col_text(st, 1), col_text(st, 3), col_text(st, 4), col_text(st, 5), col_text(st, 6),
                      expires, created);
    return *out ? BKOAUTH_OK : err_nomem(err);
}

/* Reads the row of (env, user) on c: BKOAUTH_OK with *out NULL when there is none. Several
 * rows: the latest expiry (then the highest id). A row that cannot be read (an unreadable
 * datetime, a NUL inside a value: another program wrote it) is passed over when a readable one
 * is there; when none is, it is the key's row: a read (overwrite 0) reports it (StoreError, the
 * row's id named), a save (overwrite 1) gets its id in *id and *out NULL, so that it replaces
 * the junk in place. *id is -1 when there is no row. */
static bkoauth_code find(sqlite_store *ss, conn *c, const char *env_name, const char *user_id,
                         bkoauth_token **out, int64_t *id, int overwrite, bkoauth_error *err)
{
    *out = NULL;
    *id = -1;
    sqlite3_stmt *st = stmt(ss, c, user_id ? Q_GET_USER : Q_GET_APP, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    if (user_id) sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, env_name, -1, SQLITE_STATIC);
    bkoauth_code r = BKOAUTH_OK;
    int rc = SQLITE_DONE;
    int64_t bad_id = -1;
    bkoauth_error bad;
    while (r == BKOAUTH_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        bkoauth_token *t = NULL;
        int64_t tid = 0;
        r = read_row(ss, st, &t, &tid, &bad);
        if (r == BKOAUTH_E_STORE) { /* this row's content; the statement goes on */
            if (bad_id < 0) bad_id = sqlite3_column_int64(st, 0);
            r = BKOAUTH_OK;
            continue;
        }
        if (r != BKOAUTH_OK) {
            if (err != NULL) *err = bad;
            break;
        }
        if (*out == NULL || t->expires > (*out)->expires || (t->expires == (*out)->expires && tid > *id)) {
            bkoauth_token_free(*out);
            *out = t;
            *id = tid;
        } else {
            bkoauth_token_free(t);
        }
    }
    if (r == BKOAUTH_OK && rc != SQLITE_DONE) r = bk_sq_error(ss, c->db, rc, "reading a token", err);
    if (r == BKOAUTH_OK && *out == NULL && bad_id >= 0) {
        if (overwrite)
            *id = bad_id;
        else
            r = err ? (*err = bad, BKOAUTH_E_STORE) : BKOAUTH_E_STORE;
    }
    if (r != BKOAUTH_OK) {
        bkoauth_token_free(*out);
        *out = NULL;
    }
    sqlite3_reset(st);
    return r;
}

/* ---- operations ---------------------------------------------------------------------------- */

static bkoauth_code sq_get(store *base, const char *env_name, const char *user_id, bkoauth_token **out,
                           bkoauth_error *err)
{
    sqlite_store *ss = (sqlite_store *)base;
    conn *c = pool_get(&ss->readers, NULL, err);
    if (c == NULL) return err ? err->code : BKOAUTH_E_STORE;
    int64_t id;
    bkoauth_code rc = find(ss, c, env_name, user_id, out, &id, 0, err);
    bk_sq_release(&ss->readers, c);
    if (rc == BKOAUTH_OK && *out == NULL)
        return err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST, "no saved token for %s in env %s",
                       user_id ? user_id : "the APP", env_name);
    return rc;
}

/* Saves fresh in the row id (or a new row when id < 0), within the open transaction. */
static bkoauth_code save(sqlite_store *ss, conn *c, int64_t id, const bkoauth_token *t, bkoauth_error *err)
{
    char expires[32], created[32];
    dt_format_zone(t->expires, ss->s->db_zone, expires, sizeof expires);
    dt_format_zone(t->created_at ? t->created_at : bk_now(), ss->s->db_zone, created, sizeof created);
    /* a stale row of another key holding this access_token would break the unique constraint:
     * that token now belongs to this row, so the other row goes */
    sqlite3_stmt *st = stmt(ss, c, Q_DELETE_CLASH, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    sqlite3_bind_text(st, 1, t->access_token, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return bk_sq_error(ss, c->db, rc, "saving a token", err);
    st = stmt(ss, c, id >= 0 ? Q_UPDATE : Q_INSERT, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    sqlite3_bind_text(st, 1, t->access_token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, expires, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->refresh_token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->scope, -1, SQLITE_STATIC);
    if (id >= 0) {
        sqlite3_bind_int64(st, 5, id);
    } else {
        sqlite3_bind_text(st, 5, t->env_name, -1, SQLITE_STATIC);
        if (t->user_id)
            sqlite3_bind_text(st, 6, t->user_id, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        sqlite3_bind_text(st, 7, created, -1, SQLITE_STATIC);
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? BKOAUTH_OK : bk_sq_error(ss, c->db, rc, "saving a token", err);
}

/* One write transaction: find the key's row now, save t in it (or a new one). */
static bkoauth_code save_once(sqlite_store *ss, conn *c, const bkoauth_token *t, bkoauth_error *err)
{
    int rc = bk_sq_exec(c, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return bk_sq_error(ss, c->db, rc, "saving a token", err);
    bkoauth_token *current = NULL;
    int64_t id = -1;
    bkoauth_code r = find(ss, c, t->env_name, t->user_id, &current, &id, 1, err);
    if (r == BKOAUTH_OK) r = save(ss, c, id, t, err);
    bkoauth_token_free(current);
    if (r == BKOAUTH_OK && (rc = bk_sq_exec(c, "COMMIT")) != SQLITE_OK)
        r = bk_sq_error(ss, c->db, rc, "saving a token", err);
    if (r != BKOAUTH_OK) bk_sq_exec(c, "ROLLBACK");
    return r;
}

static bkoauth_code sq_save(store *base, const bkoauth_token *t, bkoauth_error *err)
{
    sqlite_store *ss = (sqlite_store *)base;
    bkoauth_code r = BKOAUTH_E_STORE;
    for (int attempt = 0; attempt < 2; attempt++) {
        conn *c = pool_get(&ss->writers, NULL, err);
        if (c == NULL) return err ? err->code : BKOAUTH_E_STORE;
        r = save_once(ss, c, t, err);
        int errcode = sqlite3_errcode(c->db);
        if (r == BKOAUTH_OK || r != BKOAUTH_E_STORE) {
            bk_sq_release(&ss->writers, c);
            return r;
        }
        /* a connection that failed for another reason than waiting or a constraint is
         * replaced, and the save tried once more on a fresh one */
        pool_discard(&ss->writers, c);
        if (errcode == SQLITE_BUSY || errcode == SQLITE_LOCKED || errcode == SQLITE_CONSTRAINT) break;
        if (attempt == 0) atomic_fetch_add(&ss->base.reconnects, 1);
    }
    return r;
}

static void open_lock_file(sqlite_store *ss);

/* ---- the cross-process renewal lock ---------------------------------------------------------- */

static int lock_range(sqlite_store *ss, const char *env_name, const char *user_id, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)(key_hash(env_name, user_id) & ((UINT64_C(1) << 40) - 1));
    fl.l_len = 1;
    return fcntl(ss->lock_fd, F_OFD_SETLK, &fl);
}

static bkoauth_code sq_try_lock(store *base, const char *env_name, const char *user_id, store_lease *lease,
                                int *held, bkoauth_error *err)
{
    (void)lease;
    sqlite_store *ss = (sqlite_store *)base;
    *held = 0;
    if (ss->lock_fd < 0) {
        *held = 1; /* no lock file: renewals are kept apart within this process only */
        return BKOAUTH_OK;
    }
    if (lock_range(ss, env_name, user_id, F_WRLCK) == 0) {
        *held = 1;
        return BKOAUTH_OK;
    }
    if (errno == EAGAIN || errno == EACCES) return BKOAUTH_OK;
    return err_set(err, BKOAUTH_E_STORE, "cannot lock %s-lock: %s", ss->path, strerror(errno));
}

static void sq_unlock(store *base, const char *env_name, const char *user_id, const store_lease *lease)
{
    (void)lease;
    sqlite_store *ss = (sqlite_store *)base;
    if (ss->lock_fd >= 0) lock_range(ss, env_name, user_id, F_UNLCK);
}

static bkoauth_code sq_remove(store *base, const char *env_name, const char *user_id, bkoauth_error *err)
{
    sqlite_store *ss = (sqlite_store *)base;
    conn *c = pool_get(&ss->writers, NULL, err);
    if (c == NULL) return err ? err->code : BKOAUTH_E_STORE;
    bkoauth_code r = BKOAUTH_OK;
    sqlite3_stmt *st = stmt(ss, c, user_id ? Q_DELETE_USER : Q_DELETE_APP, err);
    if (st == NULL) {
        r = BKOAUTH_E_STORE;
    } else {
        if (user_id) sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, env_name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            r = bk_sq_error(ss, c->db, rc, "deleting a token", err);
        else if (sqlite3_changes(c->db) == 0)
            r = err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST, "no saved token for %s in env %s",
                        user_id ? user_id : "the APP", env_name);
    }
    bk_sq_release(&ss->writers, c);
    return r;
}

/* The order of the other stores' ORDER BY: the APP rows first, then by user_id, env_name, id
 * (byte order, as SQLite's BINARY collation: the rows hold no NUL). */
static int listed_cmp(const store_rows *rows, size_t i, size_t j)
{
    const bkoauth_token *a = rows->items[i], *b = rows->items[j];
    int au = a->user_id != NULL, bu = b->user_id != NULL;
    if (au != bu) return au - bu;
    int c = au ? strcmp(a->user_id, b->user_id) : 0;
    if (c == 0) c = strcmp(a->env_name, b->env_name);
    if (c == 0) c = (rows->ids[i] > rows->ids[j]) - (rows->ids[i] < rows->ids[j]);
    return c;
}

static void listed_swap(store_rows *rows, size_t i, size_t j)
{
    bkoauth_token *t = rows->items[i];
    rows->items[i] = rows->items[j];
    rows->items[j] = t;
    int64_t id = rows->ids[i];
    rows->ids[i] = rows->ids[j];
    rows->ids[j] = id;
}

static void listed_sift(store_rows *rows, size_t top, size_t n)
{
    for (size_t child; (child = 2 * top + 1) < n; top = child) {
        if (child + 1 < n && listed_cmp(rows, child, child + 1) < 0) child++;
        if (listed_cmp(rows, top, child) >= 0) return;
        listed_swap(rows, top, child);
    }
}

/* Sorts the rows in place (items and ids together): a heap sort, which allocates nothing (qsort
 * takes a buffer of the whole array from malloc for each list). */
static void list_sort(store_rows *rows)
{
    size_t n = rows->count;
    for (size_t i = n / 2; i-- > 0;)
        listed_sift(rows, i, n);
    while (n > 1) {
        listed_swap(rows, 0, --n);
        listed_sift(rows, 0, n);
    }
}

static bkoauth_code sq_list(store *base, bkoauth_token ***out, int64_t **out_ids, size_t *count,
                            bkoauth_error *err)
{
    sqlite_store *ss = (sqlite_store *)base;
    conn *c = pool_get(&ss->readers, NULL, err);
    if (c == NULL) return err ? err->code : BKOAUTH_E_STORE;
    sqlite3_stmt *st = stmt(ss, c, Q_LIST, err);
    bkoauth_code r = st ? BKOAUTH_OK : BKOAUTH_E_STORE;
    store_rows rows = {0};
    int rc = SQLITE_DONE;
    while (r == BKOAUTH_OK && (r = store_rows_room(&rows, err)) == BKOAUTH_OK &&
           (rc = sqlite3_step(st)) == SQLITE_ROW) {
        bkoauth_error why;
        r = read_row(ss, st, &rows.items[rows.count], &rows.ids[rows.count], &why);
        r = store_rows_keep(&rows, ss->base.logger, r, r == BKOAUTH_E_STORE, &why, err);
    }
    if (r == BKOAUTH_OK && rc != SQLITE_DONE) r = bk_sq_error(ss, c->db, rc, "listing tokens", err);
    if (st) sqlite3_reset(st);
    bk_sq_release(&ss->readers, c);
    if (r == BKOAUTH_OK) list_sort(&rows);
    return store_rows_finish(&rows, r, out, out_ids, count);
}

static void sq_close(store *base)
{
    sqlite_store *ss = (sqlite_store *)base;
    pool_destroy(&ss->readers);
    pool_destroy(&ss->writers);
    if (ss->lock_fd >= 0) close(ss->lock_fd);
    bkoauth__free(ss->path);
    bkoauth__free(ss);
}

static void sq_after_fork(store *base)
{
    sqlite_store *ss = (sqlite_store *)base;
    pool_after_fork(&ss->readers);
    pool_after_fork(&ss->writers);
    /* the inherited descriptor shares the parent's lock description (and its locks): a new one */
    if (ss->lock_fd >= 0) {
        close(ss->lock_fd); /* the parent's locks stay: it still holds the description */
        open_lock_file(ss);
    }
}

static bkoauth_code sq_django_migrations(store *base, char *names, size_t size, bkoauth_error *err);

static const store_ops SQLITE_OPS = {
    sq_get,        sq_try_lock,          sq_unlock, sq_save, sq_remove, sq_list, sq_close,
    sq_after_fork, sq_django_migrations, "sqlite"};

/* ---- opening: file mode, table, indexes ---------------------------------------------------- */

/* 1 when an index of the table has column as its first column. */
static int has_index_on(conn *c, const char *column)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT 1 FROM pragma_index_list('bkoauth_access_token') AS l, "
                           "pragma_index_info(l.name) AS i WHERE i.seqno = 0 AND i.name = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, column, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

static bkoauth_code check_columns(sqlite_store *ss, conn *c, bkoauth_error *err)
{
    static const char *const want[] = {"id",       "access_token", "expires",    "refresh_token", "scope",
                                       "env_name", "user_id",      "created_at", "extra"};
    char missing[200] = "";
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sqlite3_stmt *st = NULL;
        int found = 0;
        if (sqlite3_prepare_v2(c->db,
                               "SELECT 1 FROM pragma_table_info('bkoauth_access_token') WHERE name = ?1", -1,
                               &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, want[i], -1, SQLITE_STATIC);
            found = sqlite3_step(st) == SQLITE_ROW;
        }
        sqlite3_finalize(st);
        if (!found) {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, "%s%s", l ? ", " : "", want[i]);
        }
    }
    if (missing[0])
        return err_set(err, BKOAUTH_E_STORE,
                       "token database %s: the table bkoauth_access_token has no column %s; it is not the "
                       "bkoauth table (or an old version of it)",
                       ss->path, missing);
    return BKOAUTH_OK;
}

/* 1 when sql (a query) gives a first column equal to text. */
static int query_is(conn *c, const char *sql, const char *text)
{
    sqlite3_stmt *st = NULL;
    int yes = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
              sqlite3_column_text(st, 0) != NULL &&
              strcmp((const char *)sqlite3_column_text(st, 0), text) == 0;
    sqlite3_finalize(st);
    return yes;
}

/* The Django migrations recorded for the table (store.h); a database without django_migrations
 * has none. */
static bkoauth_code sq_django_migrations(store *base, char *names, size_t size, bkoauth_error *err)
{
    sqlite_store *ss = (sqlite_store *)base;
    conn *c = pool_get(&ss->readers, NULL, err);
    if (c == NULL) return err ? err->code : BKOAUTH_E_STORE;
    int rc = SQLITE_DONE;
    if (query_is(c, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'django_migrations'",
                 "django_migrations")) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(c->db, "SELECT name FROM django_migrations WHERE app = ?1 ORDER BY name", -1,
                                &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, STORE_DJANGO_APP, -1, SQLITE_STATIC);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                store_names_add(names, size, (const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
    }
    bkoauth_code r = rc == SQLITE_DONE
                         ? BKOAUTH_OK
                         : bk_sq_error(ss, c->db, rc, "reading the table django_migrations", err);
    bk_sq_release(&ss->readers, c);
    return r;
}

/* Write-ahead logging: readers take no file locks and never wait for a writer, and a read costs
 * no system call. The mode stays with the file; Django works with it as it is. The switch needs
 * the database to itself for a moment: it is tried for one second at most, and a database that
 * cannot switch (busy, read-only) keeps its journal mode. */
static void use_wal(sqlite_store *ss, conn *c)
{
    if (c->immutable || query_is(c, "PRAGMA journal_mode", "wal")) return;
    sqlite3_busy_timeout(c->db, 1000);
    if (!query_is(c, "PRAGMA journal_mode = WAL", "wal"))
        log_write(ss->base.logger, BKOAUTH_LOG_INFO, "token database %s stays in its journal mode", ss->path);
    sqlite3_busy_handler(c->db, bk_sq_on_busy, c);
}

static bkoauth_code create_schema(sqlite_store *ss, conn *c, bkoauth_error *err)
{
    int rc = bk_sq_exec(c, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return bk_sq_error(ss, c->db, rc, "locking the database to create the table", err);
    rc = bk_sq_exec(c, CREATE_TABLE);
    bkoauth_code r =
        rc == SQLITE_OK ? check_columns(ss, c, err) : bk_sq_error(ss, c->db, rc, "creating the table", err);
    for (int i = 0; i < 2 && r == BKOAUTH_OK; i++)
        if (!has_index_on(c, CREATE_INDEX[i][0]) && (rc = bk_sq_exec(c, CREATE_INDEX[i][1])) != SQLITE_OK)
            r = bk_sq_error(ss, c->db, rc, "creating an index", err);
    if (r == BKOAUTH_OK && (rc = bk_sq_exec(c, "COMMIT")) != SQLITE_OK)
        r = bk_sq_error(ss, c->db, rc, "creating the table", err);
    if (r != BKOAUTH_OK) bk_sq_exec(c, "ROLLBACK");
    return r;
}

/* The table and its indexes, created only when missing: a database that has them (the usual
 * case) is only read, so opening never waits for a writer and works on a read-only file. */
static bkoauth_code prepare_schema(sqlite_store *ss, conn *c, bkoauth_error *err)
{
    use_wal(ss, c);
    if (query_is(c, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'bkoauth_access_token'",
                 "bkoauth_access_token")) {
        bkoauth_code r = check_columns(ss, c, err);
        if (r != BKOAUTH_OK || (has_index_on(c, "env_name") && has_index_on(c, "user_id")) || c->immutable)
            return r; /* a database that cannot be written is used as it is */
    }
    return create_schema(ss, c, err);
}

/* The lock file of the cross-process renewal lock, beside the database with its mode. */
static void open_lock_file(sqlite_store *ss)
{
    size_t n = strlen(ss->path);
    char *lock_path = bkoauth__malloc(n + sizeof "-lock");
    if (lock_path == NULL) {
        ss->lock_fd = -1;
        return;
    }
    memcpy(lock_path, ss->path, n);
    memcpy(lock_path + n, "-lock", sizeof "-lock");
    ss->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ss->lock_fd < 0)
        log_write(ss->base.logger, BKOAUTH_LOG_INFO,
                  "cannot open %s (%s): renewals of a token are kept apart within this process only",
                  lock_path, strerror(errno));
    bkoauth__free(lock_path);
}

store *store_sqlite_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    const char *path = s->database_path;
    if (bk_empty(path) || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0) {
        err_set(
            err, BKOAUTH_E_CONFIG,
            "BKOAUTH_DATABASE_URL: sqlite: needs a file path (an in-memory database cannot be shared by the "
            "client's connections)");
        return NULL;
    }
    /* a new database file is readable by its owner only: it holds tokens */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
    } else if (errno != EEXIST && access(path, R_OK) != 0) {
        err_set(err, BKOAUTH_E_STORE, "cannot create the token database %s: %s (check BKOAUTH_DATABASE_URL)",
                path, strerror(errno));
        return NULL;
    }
    sqlite_store *ss = bkoauth__calloc(1, sizeof *ss);
    if (ss == NULL || (ss->path = bk_strdup(path)) == NULL) {
        bkoauth__free(ss);
        err_nomem(err);
        return NULL;
    }
    ss->base.ops = &SQLITE_OPS;
    ss->base.logger = logger;
    ss->s = s;
    ss->lock_fd = -1;
    if (pool_init(&ss->readers, store_connections(s) - SQLITE_WRITERS, bk_sq_conn_open, bk_sq_conn_close,
                  ss) != 0 ||
        pool_init(&ss->writers, SQLITE_WRITERS, bk_sq_conn_open, bk_sq_conn_close, ss) != 0) {
        err_nomem(err);
        sq_close(&ss->base);
        return NULL;
    }
    conn *c = pool_get(&ss->readers, NULL, err);
    if (c == NULL) {
        sq_close(&ss->base);
        return NULL;
    }
    bkoauth_code r = prepare_schema(ss, c, err);
    bk_sq_release(&ss->readers, c);
    if (r != BKOAUTH_OK) {
        sq_close(&ss->base);
        return NULL;
    }
    open_lock_file(ss);
    log_write(logger, BKOAUTH_LOG_DEBUG, "token store: SQLite database %s ready", path);
    return &ss->base;
}
