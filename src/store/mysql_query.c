/* SPDX-License-Identifier: MIT */
/* mysql_query.c - the MySQL store's statements (mysql.c): their SQL, prepared once per
 * connection, their parameters bound (text, numbers, datetimes as wall times in
 * BKOAUTH_DB_TIME_ZONE), the rows read back into tokens (a row another program wrote badly is
 * told apart from a broken connection), and the lookup of one key's rows, kept only when their
 * user_id and env_name are byte for byte the key's. */
#include "mysql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const MY_SQL[Q_COUNT] = {
    [Q_GET_USER] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE user_id = ? AND env_name = ?",
    [Q_GET_APP] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE (user_id IS NULL OR user_id = '') "
                  "AND env_name = ?",
    [Q_CLASH] = "SELECT id FROM bkoauth_access_token WHERE access_token = ?",
    [Q_DELETE_ID] = "DELETE FROM bkoauth_access_token WHERE id = ?",
    [Q_UPDATE] =
        "UPDATE bkoauth_access_token SET access_token = ?, expires = ?, refresh_token = ?, scope = ? "
        "WHERE id = ?",
    [Q_INSERT] = "INSERT INTO bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, "
                 "user_id, created_at, extra) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
    [Q_LIST] = "SELECT " COLUMNS " FROM bkoauth_access_token "
               "ORDER BY (user_id IS NOT NULL AND user_id <> ''), user_id, env_name, id",
    [Q_GET_LOCK] = "SELECT GET_LOCK(?, 0)",
    [Q_RELEASE_LOCK] = "SELECT RELEASE_LOCK(?)",
};

/* The statement q of c, prepared once per connection. */
MYSQL_STMT *bk_my_stmt(my_store *ms, mconn *c, int q, bkoauth_error *err)
{
    if (c->stmt[q] != NULL) return c->stmt[q];
    MYSQL_STMT *st = mysql_stmt_init(c->db);
    if (st == NULL) {
        bk_my_conn_error(ms, c, "preparing a query", err);
        return NULL;
    }
    if (mysql_stmt_prepare(st, MY_SQL[q], (unsigned long)strlen(MY_SQL[q])) != 0) {
        bk_my_stmt_error(ms, c, st, "preparing a query", err);
        mysql_stmt_close(st);
        return NULL;
    }
    c->stmt[q] = st;
    return st;
}

/* Prepares the statements from (Q_*) up to to on c (a failure is left for the statement's first
 * use to report: the table may not be there yet), and frees what the connector kept of their
 * columns. Run by the pools' connector threads (pool.h) after each open and reconnection, so
 * that the statements' handles and buffers (mysql_stmt_init preallocates three blocks of 2 to 4 kB for each)
 * are made in that one thread rather than in whichever caller first needs each one: made by the callers at
 * random moments after every server restart, long-lived blocks ended up scattered over the callers' malloc
 * arenas, which grew at each restart. */
void bk_my_prepare(my_store *ms, mconn *c, int from, int to)
{
    for (int q = from; q < to; q++) {
        bkoauth_error ignored;
        (void)bk_my_stmt(ms, c, q, &ignored);
        bk_my_result_forget(c);
    }
}

void bk_my_bind_text(MYSQL_BIND *b, param_text *t, const char *s)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_STRING;
    t->null = s == NULL;
    t->len = s ? (unsigned long)strlen(s) : 0;
    b->buffer = (void *)(s ? s : "");
    b->buffer_length = t->len;
    b->length = &t->len;
    b->is_null = &t->null;
}

void bk_my_bind_int(MYSQL_BIND *b, int64_t *v)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = v;
}

void bk_my_bind_time(my_store *ms, MYSQL_BIND *b, MYSQL_TIME *mt, int64_t t)
{
    bk_civil c;
    dt_to_civil(t, ms->s->db_zone, &c);
    memset(mt, 0, sizeof *mt);
    mt->year = (unsigned)c.year;
    mt->month = (unsigned)c.month;
    mt->day = (unsigned)c.day;
    mt->hour = (unsigned)c.hour;
    mt->minute = (unsigned)c.minute;
    mt->second = (unsigned)c.second;
    mt->time_type = MYSQL_TIMESTAMP_DATETIME;
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_DATETIME;
    b->buffer = mt;
}

static void row_bind(row_buf *r)
{
    memset(r->bind, 0, sizeof r->bind);
    for (int i = 0; i < NCOLS; i++) {
        MYSQL_BIND *b = &r->bind[i];
        b->length = &r->len[i];
        b->is_null = &r->null[i];
        b->error = &r->error[i];
        if (i == 0) {
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &r->id;
        } else if (i == 2 || i == 7) {
            b->buffer_type = MYSQL_TYPE_DATETIME;
            b->buffer = i == 2 ? &r->expires : &r->created;
        } else {
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = r->text[i];
            b->buffer_length = TEXT_BUF - 1;
        }
    }
}

static void row_free_big(row_buf *r)
{
    for (int i = 0; i < NCOLS; i++) {
        bkoauth__free(r->big[i]);
        r->big[i] = NULL;
    }
}

/* The text of column i of the fetched row (NULL for SQL NULL); a value longer than the buffer is
 * fetched whole. */
static const char *row_text(my_store *ms, mconn *c, MYSQL_STMT *st, row_buf *r, int i, bkoauth_error *err,
                            int *failed, int *row_bad)
{
    static const char *const names[NCOLS] = {"id",    "access_token", "expires", "refresh_token",
                                             "scope", "env_name",     "user_id", "created_at"};
    if (r->null[i]) return NULL;
    if (r->len[i] < TEXT_BUF) {
        r->text[i][r->len[i]] = '\0';
        if (strlen(r->text[i]) != r->len[i]) { /* a NUL would cut the value short unseen */
            if (row_bad != NULL) *row_bad = 1;
            *failed = err_set(err, BKOAUTH_E_STORE,
                              "MySQL token store at %s: row id %lld has a NUL byte inside its %s", ms->where,
                              (long long)r->id, names[i]);
            return NULL;
        }
        return r->text[i];
    }
    r->big[i] = bkoauth__malloc(r->len[i] + 1);
    if (r->big[i] == NULL) {
        *failed = err_nomem(err);
        return NULL;
    }
    MYSQL_BIND b;
    memset(&b, 0, sizeof b);
    b.buffer_type = MYSQL_TYPE_STRING;
    b.buffer = r->big[i];
    b.buffer_length = r->len[i];
    if (mysql_stmt_fetch_column(st, &b, (unsigned)i, 0) != 0) {
        *failed = bk_my_stmt_error(ms, c, st, "reading a token", err);
        return NULL;
    }
    r->big[i][r->len[i]] = '\0';
    if (strlen(r->big[i]) != r->len[i]) {
        if (row_bad != NULL) *row_bad = 1;
        *failed =
            err_set(err, BKOAUTH_E_STORE, "MySQL token store at %s: row id %lld has a NUL byte inside its %s",
                    ms->where, (long long)r->id, names[i]);
        return NULL;
    }
    return r->big[i];
}

static bkoauth_code row_time(my_store *ms, const row_buf *r, const MYSQL_TIME *mt, const char *name,
                             int64_t *out, bkoauth_error *err)
{
    if (mt->year < 1 || mt->month < 1 || mt->month > 12 || mt->day < 1 || mt->day > 31 || mt->hour > 23 ||
        mt->minute > 59 || mt->second > 59)
        return err_set(err, BKOAUTH_E_STORE, "MySQL token store at %s: row id %lld has an unreadable %s",
                       ms->where, (long long)r->id, name);
    bk_civil c = {mt->year, (int)mt->month, (int)mt->day, (int)mt->hour, (int)mt->minute, (int)mt->second};
    *out = dt_from_civil(&c, ms->s->db_zone);
    return BKOAUTH_OK;
}

/* The token of the fetched row. *row_bad (when not NULL) is set when the failure is the row's
 * content (another program wrote it: an impossible datetime, a NUL inside a value), not the
 * connection. */
bkoauth_code bk_my_row_token(my_store *ms, mconn *c, MYSQL_STMT *st, row_buf *r, bkoauth_token **out,
                             int *row_bad, bkoauth_error *err)
{
    *out = NULL;
    if (row_bad != NULL) *row_bad = 0;
    int64_t expires, created;
    bkoauth_code rc = row_time(ms, r, &r->expires, "expires", &expires, err);
    if (rc == BKOAUTH_OK) rc = row_time(ms, r, &r->created, "created_at", &created, err);
    if (rc != BKOAUTH_OK) {
        if (row_bad != NULL) *row_bad = 1;
        row_free_big(r);
        return rc;
    }
    int failed = BKOAUTH_OK;
    const char *text[NCOLS];
    for (int i = 1; i < NCOLS && failed == BKOAUTH_OK; i++)
        text[i] = (i == 2 || i == 7) ? NULL : row_text(ms, c, st, r, i, err, &failed, row_bad);
    if (failed == BKOAUTH_OK) {
        *out = token_make(text[1], text[3], text[4], text[5], text[6], expires, created);
        if (*out == NULL) failed = err_nomem(err);
    }
    row_free_big(r);
    return (bkoauth_code)failed;
}

static bkoauth_code execute(my_store *ms, mconn *c, MYSQL_STMT *st, MYSQL_BIND *params, row_buf *r,
                            int buffered, const char *what, bkoauth_error *err)
{
    if ((params != NULL && mysql_stmt_bind_param(st, params) != 0) || mysql_stmt_execute(st) != 0)
        return bk_my_stmt_error(ms, c, st, what, err);
    if (r != NULL) {
        row_bind(r);
        if (mysql_stmt_bind_result(st, r->bind) != 0 || (buffered && mysql_stmt_store_result(st) != 0)) {
            bkoauth_code rc = bk_my_stmt_error(ms, c, st, what, err);
            mysql_stmt_free_result(st);
            return rc;
        }
    }
    return BKOAUTH_OK;
}

/* Runs st with params; binds and buffers its result when it has one. */
bkoauth_code bk_my_execute(my_store *ms, mconn *c, MYSQL_STMT *st, MYSQL_BIND *params, row_buf *r,
                           const char *what, bkoauth_error *err)
{
    return execute(ms, c, st, params, r, 1, what, err);
}

bkoauth_code bk_my_execute_streamed(my_store *ms, mconn *c, MYSQL_STMT *st, row_buf *r, const char *what,
                                    bkoauth_error *err)
{
    return execute(ms, c, st, NULL, r, 0, what, err);
}

/* 1 when the row's key is exactly (env_name, user_id): the server compared with its collation. */
static int exact(const bkoauth_token *t, const char *env_name, const char *user_id)
{
    if (strcmp(t->env_name, env_name) != 0) return 0;
    return user_id ? bk_streq(t->user_id, user_id) : t->user_id == NULL; /* token_make: "" is NULL */
}

/* 1 when the fetched row's key columns (read as they are) are exactly (env_name, user_id). */
static int exact_raw(row_buf *r, const char *env_name, const char *user_id)
{
    if (r->null[5] || r->len[5] >= TEXT_BUF || r->len[5] != strlen(env_name) ||
        memcmp(r->text[5], env_name, r->len[5]) != 0)
        return 0;
    if (user_id == NULL) return r->null[6] || r->len[6] == 0;
    return !r->null[6] && r->len[6] < TEXT_BUF && r->len[6] == strlen(user_id) &&
           memcmp(r->text[6], user_id, r->len[6]) == 0;
}

/* The rows of exactly (env_name, user_id) on c: *out the one with the latest expires (then the
 * highest id), NULL (and *id -1) when none; ids (when not NULL) gets every id, *nids their
 * count. A row that cannot be read (another program wrote it) is passed over when a readable
 * one is there; when none is, a read (overwrite 0) reports it, a save (overwrite 1) gets its id
 * in *id, to replace it in place. */
/* Runs the lookup of (env_name, user_id) on c: *st the statement to fetch from, *r (allocated,
 * freed by the caller) the buffer its rows are fetched into. */
static bkoauth_code query_key(my_store *ms, mconn *c, const char *env_name, const char *user_id,
                              MYSQL_STMT **st, row_buf **r, bkoauth_error *err)
{
    *r = NULL;
    *st = bk_my_stmt(ms, c, user_id ? Q_GET_USER : Q_GET_APP, err);
    if (*st == NULL) return BKOAUTH_E_STORE;
    MYSQL_BIND p[2];
    param_text pt[2];
    if (user_id) {
        bk_my_bind_text(&p[0], &pt[0], user_id);
        bk_my_bind_text(&p[1], &pt[1], env_name);
    } else {
        bk_my_bind_text(&p[0], &pt[0], env_name);
    }
    if ((*r = bk_my_conn_row(c)) == NULL) return err_nomem(err);
    return bk_my_execute(ms, c, *st, p, *r, "reading a token", err);
}

/* Keeps t (row id tid) in *out / *id when it expires later than the one kept (or as late, with a
 * higher id); frees the other. */
static void keep_latest(bkoauth_token **out, int64_t *id, bkoauth_token *t, int64_t tid)
{
    if (*out == NULL || t->expires > (*out)->expires || (t->expires == (*out)->expires && tid > *id)) {
        bkoauth_token_free(*out);
        *out = t;
        *id = tid;
    } else {
        bkoauth_token_free(t);
    }
}

bkoauth_code bk_my_find(my_store *ms, mconn *c, const char *env_name, const char *user_id,
                        bkoauth_token **out, int64_t *id, int64_t *ids, size_t max_ids, size_t *nids,
                        int overwrite, bkoauth_error *err)
{
    *out = NULL;
    *id = -1;
    if (nids) *nids = 0;
    MYSQL_STMT *st;
    row_buf *r;
    bkoauth_code rc = query_key(ms, c, env_name, user_id, &st, &r, err);
    if (rc != BKOAUTH_OK) return rc;
    int f = MYSQL_NO_DATA;
    int64_t bad_id = -1;
    bkoauth_error bad;
    while (rc == BKOAUTH_OK && ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED)) {
        bkoauth_token *t = NULL;
        int64_t tid = r->id;
        int row_bad = 0;
        rc = bk_my_row_token(ms, c, st, r, &t, &row_bad, &bad);
        if (rc != BKOAUTH_OK && row_bad) {
            /* a row that cannot be read: passed over when a readable one of the key is there */
            if (exact_raw(r, env_name, user_id)) {
                if (ids != NULL && *nids < max_ids) ids[(*nids)++] = tid;
                if (bad_id < 0) bad_id = tid;
            }
            rc = BKOAUTH_OK;
            continue;
        }
        if (rc != BKOAUTH_OK) {
            if (err != NULL) *err = bad;
            break;
        }
        if (!exact(t, env_name, user_id)) {
            bkoauth_token_free(t);
            continue;
        }
        if (ids != NULL && *nids < max_ids) ids[(*nids)++] = tid;
        keep_latest(out, id, t, tid);
    }
    if (rc == BKOAUTH_OK && f != MYSQL_NO_DATA) rc = bk_my_stmt_error(ms, c, st, "reading a token", err);
    mysql_stmt_free_result(st);
    if (rc == BKOAUTH_OK && *out == NULL && bad_id >= 0) {
        if (overwrite)
            *id = bad_id; /* a save replaces the junk in place */
        else
            rc = err ? (*err = bad, BKOAUTH_E_STORE) : BKOAUTH_E_STORE;
    }
    if (rc != BKOAUTH_OK) {
        bkoauth_token_free(*out);
        *out = NULL;
    }
    return rc;
}
