/* SPDX-License-Identifier: MIT */
/* mysql.c - the token table in MySQL or MariaDB, as Django's MySQL backend creates it, shared by
 * many processes and hosts; on the MariaDB Connector/C (which speaks to both servers).
 *
 * Connections: a read pool, a write pool (saves and deletes, each one short transaction in READ
 * COMMITTED, so that no gap lock makes savers of different keys wait for each other) and one
 * connection for renewal locks. A renewal of a key holds GET_LOCK(name, 0) on the lock
 * connection while the SSM service is called (name: the key's SHA-256, as MySQL allows 64
 * characters); no transaction and no pooled connection is held meanwhile, and the server
 * releases the lock when the session ends (a process that dies).
 *
 * Exact user names: Django's table takes the database's collation, usually case- and
 * trailing-space-insensitive (utf8mb4_general_ci: 'Alice' = 'alice' = 'alice '). The lookups
 * use the user_id index with = and then keep only the rows whose user_id (and env_name) are
 * byte for byte the key's, so one user never gets another's row; deletes go by id.
 *
 * Datetimes: datetime(6) has no zone; they are written and read as wall times in
 * BKOAUTH_DB_TIME_ZONE (UTC: Django's USE_TZ = True; a zone name: USE_TZ = False with that
 * TIME_ZONE), bound as MYSQL_TIME, never through the session's time_zone.
 *
 * Restarts: a pooled connection found broken (checked before use without a round trip: an idle
 * connection with something to read has been closed by the server; and by the failure of a
 * statement) is discarded with every idle one of its pool, and the work, when safe to repeat,
 * is done once more on a fresh connection; so the first call after a restart succeeds. A
 * deadlock or lock wait timeout is retried once the same way. */
#include "crypto_dl.h"
#include "mysql_dl.h"
#include "pool.h"
#include "store.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLUMNS "id, access_token, expires, refresh_token, scope, env_name, user_id, created_at"
#define NCOLS 8
#define TEXT_BUF 1024 /* varchar(255) in utf8mb4: at most 1020 bytes; longer values are fetched apart */

enum { Q_GET_USER, Q_GET_APP, Q_CLASH, Q_DELETE_ID, Q_UPDATE, Q_INSERT, Q_LIST, Q_COUNT };

static const char *const SQL[Q_COUNT] = {
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
};

/* The table as Django 3.2's migrations make it on MySQL (the database's default character set
 * and collation, as Django leaves them), and its two indexes with Django's names. */
static const char *const CREATE_TABLE = "CREATE TABLE IF NOT EXISTS `bkoauth_access_token` ("
                                        "`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, "
                                        "`access_token` varchar(255) NOT NULL UNIQUE, "
                                        "`expires` datetime(6) NOT NULL, "
                                        "`refresh_token` varchar(255) NULL, "
                                        "`scope` longtext NULL, "
                                        "`env_name` varchar(255) NOT NULL, "
                                        "`user_id` varchar(64) NULL, "
                                        "`created_at` datetime(6) NOT NULL, "
                                        "`extra` longtext NULL)";
static const char *const INDEXES[2][2] = {
    {"env_name",
     "CREATE INDEX `bkoauth_access_token_env_name_736cbdc5` ON `bkoauth_access_token` (`env_name`)"},
    {"user_id", "CREATE INDEX `bkoauth_access_token_user_id_a4b1d1f5` ON `bkoauth_access_token` (`user_id`)"},
};

typedef struct mconn {
    MYSQL *db;
    MYSQL_STMT *stmt[Q_COUNT];
    int broken;          /* a statement found the connection lost */
    int retry;           /* the last failure is worth one more try (deadlock, lock wait timeout) */
    struct row_buf *row; /* the buffers rows are fetched into (9 KiB), made at the first read and
                          * kept with the connection: a read allocates none */
} mconn;

typedef struct my_store {
    store base;
    const bk_settings *s;
    bk_mysql_url url;
    char where[200]; /* user@host:port/db for messages, never the password */
    pool readers, writers;
    pthread_mutex_t lock_mu; /* the lock connection: one statement at a time */
    mconn *lock_conn;        /* NULL until the first renewal */
    MYSQL_STMT *get_lock, *release_lock;
} my_store;

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_failed;

/* mysql_library_init is not thread-safe: once per process, before any connection. */
static void library_init(void)
{
    library_failed = mysql_library_init(0, NULL, NULL) != 0;
}

/* ---- errors ----------------------------------------------------------------------------------- */

static int lost(unsigned code)
{
    return code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST || code == CR_SERVER_LOST_EXTENDED ||
           code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR || code == ER_CONNECTION_KILLED ||
           code == ER_SERVER_SHUTDOWN || code == CR_COMMANDS_OUT_OF_SYNC || code == 4031 /* MySQL 8: idle */;
}

/* err from code and text of the failed call; marks c broken or worth a retry. */
static bkoauth_code my_error(my_store *ms, mconn *c, unsigned code, const char *text, const char *what,
                             bkoauth_error *err)
{
    if (c != NULL && lost(code)) c->broken = 1;
    if (c != NULL && (code == ER_LOCK_DEADLOCK || code == ER_LOCK_WAIT_TIMEOUT)) c->retry = 1;
    if (lost(code))
        return err_set(err, BKOAUTH_E_STORE,
                       "cannot reach the MySQL token store at %s while %s: %s; is the server running? "
                       "(saved tokens are unchanged; the next call reconnects)",
                       ms->where, what, text);
    return err_set(err, BKOAUTH_E_STORE, "MySQL token store at %s: %s failed: %s (error %u)", ms->where, what,
                   text, code);
}

static bkoauth_code conn_error(my_store *ms, mconn *c, const char *what, bkoauth_error *err)
{
    return my_error(ms, c, mysql_errno(c->db), mysql_error(c->db), what, err);
}

static bkoauth_code stmt_error(my_store *ms, mconn *c, MYSQL_STMT *st, const char *what, bkoauth_error *err)
{
    return my_error(ms, c, mysql_stmt_errno(st), mysql_stmt_error(st), what, err);
}

/* ---- connections ------------------------------------------------------------------------------ */

static void conn_row_free(mconn *c);

static void mconn_close(void *p)
{
    mconn *c = p;
    if (c == NULL) return;
    for (int i = 0; i < Q_COUNT; i++)
        if (c->stmt[i] != NULL) mysql_stmt_close(c->stmt[i]);
    mysql_close(c->db);
    conn_row_free(c);
    bkoauth__free(c);
}

static int simple(mconn *c, const char *sql)
{
    return mysql_real_query(c->db, sql, (unsigned long)strlen(sql));
}

static mconn *connect_my(my_store *ms, bkoauth_error *err)
{
    pthread_once(&library_once, library_init);
    if (library_failed) {
        err_set(err, BKOAUTH_E_STORE, "the MySQL client library could not be initialised");
        return NULL;
    }
    mconn *c = bkoauth__calloc(1, sizeof *c);
    if (c == NULL || (c->db = mysql_init(NULL)) == NULL) {
        bkoauth__free(c);
        err_nomem(err);
        return NULL;
    }
    long secs = (ms->s->timeout_ms + 999) / 1000;
    unsigned connect_timeout = (unsigned)(secs < 2 ? 2 : secs), io_timeout = (unsigned)secs + 10;
    my_bool off = 0, on = 1;
    unsigned zero = 0;
    mysql_options(c->db, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(c->db, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(c->db, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    mysql_options(c->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(c->db, MYSQL_OPT_RECONNECT, &off); /* a silent reconnect would lose session locks */
    mysql_options(c->db, MYSQL_OPT_LOCAL_INFILE, &zero);
    mysql_options(c->db, MYSQL_REPORT_DATA_TRUNCATION, &on);
    if (mysql_real_connect(c->db, ms->url.host, ms->url.user, ms->url.password, ms->url.database,
                           ms->url.port, NULL, 0) == NULL) {
        my_error(ms, NULL, mysql_errno(c->db), mysql_error(c->db), "connecting", err);
        mconn_close(c);
        return NULL;
    }
    /* READ COMMITTED: no gap locks, so savers of different keys never wait for each other; a row
     * lock is waited for at most about the SSM timeout */
    char wait_sql[96];
    snprintf(wait_sql, sizeof wait_sql, "SET SESSION innodb_lock_wait_timeout = %ld", secs + 5);
    if (simple(c, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED") != 0 ||
        simple(c, wait_sql) != 0) {
        conn_error(ms, c, "setting up a connection", err);
        mconn_close(c);
        return NULL;
    }
    return c;
}

static void *pconn_open(void *ctx, bkoauth_error *err)
{
    return connect_my(ctx, err);
}

/* 1 when the connection is known broken: a statement failed so, or the server wrote to (or
 * closed) it while it was idle - read here without a round trip. */
static int broken(mconn *c)
{
    if (c->broken) return 1;
    struct pollfd p = {.fd = (int)mysql_get_socket(c->db), .events = POLLIN};
    if (p.fd < 0) return 1;
    return poll(&p, 1, 0) != 0;
}

/* A connection of pool p that is not known broken, or NULL with err set. *fresh: opened now. */
static mconn *take(my_store *ms, pool *p, int *fresh, bkoauth_error *err)
{
    mconn *c = pool_get(p, fresh, err);
    if (c == NULL || *fresh || !broken(c)) return c;
    atomic_fetch_add(&ms->base.reconnects, 1);
    pool_discard(p, c);
    pool_flush(p); /* the others idle since the same moment are likely stale too */
    return pool_get(p, fresh, err);
}

/* After a failure: gives the connection back, or discards it (and the pool's idle ones) when
 * broken. 1 when the work is worth one more try (the connection broke and was not a fresh one;
 * or a deadlock). */
static int give_back(pool *p, mconn *c, int fresh)
{
    int retry = c->retry;
    c->retry = 0;
    if (!c->broken) {
        pool_put(p, c);
        return retry;
    }
    pool_discard(p, c);
    pool_flush(p);
    return !fresh || retry;
}

/* The statement q of c, prepared once per connection. */
static MYSQL_STMT *stmt(my_store *ms, mconn *c, int q, bkoauth_error *err)
{
    if (c->stmt[q] != NULL) return c->stmt[q];
    MYSQL_STMT *st = mysql_stmt_init(c->db);
    if (st == NULL) {
        conn_error(ms, c, "preparing a query", err);
        return NULL;
    }
    if (mysql_stmt_prepare(st, SQL[q], (unsigned long)strlen(SQL[q])) != 0) {
        stmt_error(ms, c, st, "preparing a query", err);
        mysql_stmt_close(st);
        return NULL;
    }
    c->stmt[q] = st;
    return st;
}

/* ---- parameters and rows ---------------------------------------------------------------------- */

typedef struct param_text {
    unsigned long len;
    my_bool null;
} param_text;

static void bind_text(MYSQL_BIND *b, param_text *t, const char *s)
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

static void bind_int(MYSQL_BIND *b, int64_t *v)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = v;
}

static void bind_time(my_store *ms, MYSQL_BIND *b, MYSQL_TIME *mt, int64_t t)
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

/* Buffers for one row of COLUMNS. */
typedef struct row_buf {
    MYSQL_BIND bind[NCOLS];
    int64_t id;
    MYSQL_TIME expires, created;
    char text[NCOLS][TEXT_BUF];
    char *big[NCOLS]; /* a value longer than TEXT_BUF, fetched apart */
    unsigned long len[NCOLS];
    my_bool null[NCOLS], error[NCOLS];
} row_buf;

/* The connection's row buffers, made at its first read; NULL when out of memory. */
static row_buf *conn_row(mconn *c)
{
    if (c->row == NULL && (c->row = bkoauth__malloc(sizeof *c->row)) != NULL)
        memset(c->row->big, 0, sizeof c->row->big);
    return c->row;
}

/* Frees the row buffers, wiped: they held the last row's tokens. */
static void conn_row_free(mconn *c)
{
    bkoauth__wipe_free(c->row, sizeof *c->row);
    c->row = NULL;
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
        *failed = stmt_error(ms, c, st, "reading a token", err);
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
static bkoauth_code row_token(my_store *ms, mconn *c, MYSQL_STMT *st, row_buf *r, bkoauth_token **out,
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

/* Runs st with params; binds and buffers its result when it has one. */
static bkoauth_code execute(my_store *ms, mconn *c, MYSQL_STMT *st, MYSQL_BIND *params, row_buf *r,
                            const char *what, bkoauth_error *err)
{
    if ((params != NULL && mysql_stmt_bind_param(st, params) != 0) || mysql_stmt_execute(st) != 0)
        return stmt_error(ms, c, st, what, err);
    if (r != NULL) {
        row_bind(r);
        if (mysql_stmt_bind_result(st, r->bind) != 0 || mysql_stmt_store_result(st) != 0) {
            bkoauth_code rc = stmt_error(ms, c, st, what, err);
            mysql_stmt_free_result(st);
            return rc;
        }
    }
    return BKOAUTH_OK;
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
    *st = stmt(ms, c, user_id ? Q_GET_USER : Q_GET_APP, err);
    if (*st == NULL) return BKOAUTH_E_STORE;
    MYSQL_BIND p[2];
    param_text pt[2];
    if (user_id) {
        bind_text(&p[0], &pt[0], user_id);
        bind_text(&p[1], &pt[1], env_name);
    } else {
        bind_text(&p[0], &pt[0], env_name);
    }
    if ((*r = conn_row(c)) == NULL) return err_nomem(err);
    return execute(ms, c, *st, p, *r, "reading a token", err);
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

static bkoauth_code find(my_store *ms, mconn *c, const char *env_name, const char *user_id,
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
        rc = row_token(ms, c, st, r, &t, &row_bad, &bad);
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
    if (rc == BKOAUTH_OK && f != MYSQL_NO_DATA) rc = stmt_error(ms, c, st, "reading a token", err);
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

/* ---- operations ------------------------------------------------------------------------------- */

static bkoauth_code none_saved(const char *env_name, const char *user_id, bkoauth_error *err)
{
    return err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST, "no saved token for %s in env %s",
                   user_id ? user_id : "the APP", env_name);
}

/* Work done on one connection; it leaves no transaction open, whatever it returns. */
typedef bkoauth_code (*conn_work)(my_store *ms, mconn *c, void *arg, bkoauth_error *err);

/* Runs work on a connection of p; when it failed because the connection broke (a restart, a
 * failover, an idle connection cut) or on a deadlock, once more on a fresh connection. Only for
 * work that is safe to repeat. */
static bkoauth_code with_conn(my_store *ms, pool *p, conn_work work, void *arg, bkoauth_error *err)
{
    bkoauth_error local;
    if (err == NULL) err = &local;
    for (int attempt = 0;; attempt++) {
        int fresh = 0;
        mconn *c = take(ms, p, &fresh, err);
        if (c == NULL) return err->code != BKOAUTH_OK ? err->code : BKOAUTH_E_STORE;
        bkoauth_code rc = work(ms, c, arg, err);
        if (rc == BKOAUTH_OK) {
            pool_put(p, c);
            return rc;
        }
        if (!give_back(p, c, fresh) || attempt > 0) return rc;
        atomic_fetch_add(&ms->base.reconnects, 1);
        log_write(ms->base.logger, BKOAUTH_LOG_INFO, "MySQL token store at %s: %s; trying again%s", ms->where,
                  err->message, fresh ? "" : " on a new connection");
    }
}

typedef struct key_arg {
    const char *env_name;
    const char *user_id;
    bkoauth_token **out;
} key_arg;

static bkoauth_code get_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    int64_t id = 0;
    return find(ms, c, a->env_name, a->user_id, a->out, &id, NULL, 0, NULL, 0, err);
}

static bkoauth_code my_get(store *base, const char *env_name, const char *user_id, bkoauth_token **out,
                           bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    key_arg a = {env_name, user_id, out};
    bkoauth_code rc = with_conn(ms, &ms->readers, get_work, &a, err);
    if (rc == BKOAUTH_OK && *out == NULL) return none_saved(env_name, user_id, err);
    return rc;
}

static bkoauth_code delete_id(my_store *ms, mconn *c, int64_t id, const char *what, bkoauth_error *err)
{
    MYSQL_STMT *st = stmt(ms, c, Q_DELETE_ID, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    MYSQL_BIND p[1];
    bind_int(&p[0], &id);
    return execute(ms, c, st, p, NULL, what, err);
}

/* Within the open transaction: t saved in row id (a new row when id < 0). */
static bkoauth_code save(my_store *ms, mconn *c, int64_t id, const bkoauth_token *t, bkoauth_error *err)
{
    /* a stale row of another key holding this access_token (UNIQUE; compared as the server
     * compares) would refuse the save: the token now belongs to this row, so that row goes */
    MYSQL_STMT *st = stmt(ms, c, Q_CLASH, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    MYSQL_BIND p[7], res[1];
    param_text pt[7];
    bind_text(&p[0], &pt[0], t->access_token);
    int64_t clash_id = 0, clash[8];
    size_t nclash = 0;
    if (mysql_stmt_bind_param(st, p) != 0 || mysql_stmt_execute(st) != 0)
        return stmt_error(ms, c, st, "saving a token", err);
    bind_int(&res[0], &clash_id);
    if (mysql_stmt_bind_result(st, res) != 0 || mysql_stmt_store_result(st) != 0) {
        bkoauth_code rc = stmt_error(ms, c, st, "saving a token", err);
        mysql_stmt_free_result(st);
        return rc;
    }
    while (mysql_stmt_fetch(st) == 0)
        if (clash_id != id && nclash < 8) clash[nclash++] = clash_id;
    mysql_stmt_free_result(st);
    for (size_t i = 0; i < nclash; i++) {
        bkoauth_code rc = delete_id(ms, c, clash[i], "saving a token", err);
        if (rc != BKOAUTH_OK) return rc;
    }
    MYSQL_TIME expires, created;
    bind_text(&p[0], &pt[0], t->access_token);
    bind_time(ms, &p[1], &expires, t->expires);
    bind_text(&p[2], &pt[2], t->refresh_token);
    bind_text(&p[3], &pt[3], t->scope);
    if (id >= 0) {
        bind_int(&p[4], &id);
    } else {
        bind_text(&p[4], &pt[4], t->env_name);
        bind_text(&p[5], &pt[5], t->user_id);
        bind_time(ms, &p[6], &created, t->created_at ? t->created_at : bk_now());
    }
    st = stmt(ms, c, id >= 0 ? Q_UPDATE : Q_INSERT, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    return execute(ms, c, st, p, NULL, "saving a token", err);
}

/* One short transaction: the key's row now, t saved in it (or in a new row). */
static bkoauth_code save_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    const bkoauth_token *t = arg;
    if (simple(c, "START TRANSACTION") != 0) return conn_error(ms, c, "saving a token", err);
    bkoauth_token *current = NULL;
    int64_t id = -1;
    bkoauth_code rc = find(ms, c, t->env_name, t->user_id, &current, &id, NULL, 0, NULL, 1, err);
    if (rc == BKOAUTH_OK) rc = save(ms, c, id, t, err);
    bkoauth_token_free(current);
    if (rc == BKOAUTH_OK && mysql_commit(c->db) != 0) rc = conn_error(ms, c, "saving a token", err);
    if (rc != BKOAUTH_OK && !c->broken) mysql_rollback(c->db);
    return rc;
}

static bkoauth_code my_save(store *base, const bkoauth_token *t, bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    return with_conn(ms, &ms->writers, save_work, (void *)t, err);
}

static bkoauth_code remove_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    if (simple(c, "START TRANSACTION") != 0) return conn_error(ms, c, "deleting a token", err);
    bkoauth_token *current = NULL;
    int64_t id = 0, ids[64];
    size_t n = 0;
    bkoauth_code rc = find(ms, c, a->env_name, a->user_id, &current, &id, ids, 64, &n, 1, err);
    bkoauth_token_free(current);
    for (size_t i = 0; rc == BKOAUTH_OK && i < n; i++)
        rc = delete_id(ms, c, ids[i], "deleting a token", err);
    if (rc == BKOAUTH_OK && mysql_commit(c->db) != 0) rc = conn_error(ms, c, "deleting a token", err);
    if (rc != BKOAUTH_OK) {
        if (!c->broken) mysql_rollback(c->db);
        return rc;
    }
    return n > 0 ? BKOAUTH_OK : none_saved(a->env_name, a->user_id, err);
}

static bkoauth_code my_remove(store *base, const char *env_name, const char *user_id, bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    key_arg a = {env_name, user_id, NULL};
    return with_conn(ms, &ms->writers, remove_work, &a, err);
}

typedef struct list_arg {
    bkoauth_token ***out;
    int64_t **ids;
    size_t *count;
} list_arg;

static bkoauth_code list_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    list_arg *a = arg;
    MYSQL_STMT *st = stmt(ms, c, Q_LIST, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    row_buf *r = conn_row(c);
    if (r == NULL) return err_nomem(err);
    bkoauth_code rc = execute(ms, c, st, NULL, r, "listing tokens", err);
    if (rc != BKOAUTH_OK) return rc;
    size_t n = (size_t)mysql_stmt_num_rows(st), seen = 0;
    store_rows rows = {0};
    int f = MYSQL_NO_DATA;
    while (rc == BKOAUTH_OK && seen < n && (rc = store_rows_room(&rows, err)) == BKOAUTH_OK &&
           ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED)) {
        seen++;
        int row_bad = 0;
        bkoauth_error why;
        rows.ids[rows.count] = r->id;
        rc = row_token(ms, c, st, r, &rows.items[rows.count], &row_bad, &why);
        rc = store_rows_keep(&rows, ms->base.logger, rc, row_bad, &why, err);
    }
    if (rc == BKOAUTH_OK && seen < n) rc = stmt_error(ms, c, st, "listing tokens", err);
    mysql_stmt_free_result(st);
    return store_rows_finish(&rows, rc, a->out, a->ids, a->count);
}

static bkoauth_code my_list(store *base, bkoauth_token ***out, int64_t **ids, size_t *count,
                            bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    list_arg a = {out, ids, count};
    return with_conn(ms, &ms->readers, list_work, &a, err);
}

/* ---- the renewal lock ------------------------------------------------------------------------- */

/* The lock's name: MySQL allows 64 characters, so the key (any length, any bytes) is hashed. */
static void lock_name(char *buf, size_t size, const char *env_name, const char *user_id)
{
    char key[400];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(key, sizeof key, "bkoauth_access_token:%s:%s", env_name, user_id ? user_id : "");
    if (n < 0 || (size_t)n >= sizeof key) n = (int)sizeof key - 1;
    if (EVP_Digest(key, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 20) {
        memset(md, 0, sizeof md);
        mdlen = 20;
    }
    size_t at = (size_t)snprintf(buf, size, "bkoauth_access_token:");
    for (unsigned i = 0; i < 20 && at + 2 < size; i++, at += 2)
        snprintf(buf + at, size - at, "%02x", md[i]);
}

static void lock_conn_drop(my_store *ms)
{
    if (ms->get_lock) mysql_stmt_close(ms->get_lock);
    if (ms->release_lock) mysql_stmt_close(ms->release_lock);
    ms->get_lock = ms->release_lock = NULL;
    mconn_close(ms->lock_conn);
    ms->lock_conn = NULL;
}

/* Runs SELECT GET_LOCK / RELEASE_LOCK (which) with name on the lock connection (under lock_mu);
 * *result the answer (-1 for NULL). A broken connection is replaced and the statement run once
 * more (the session's locks went with it anyway). */
static bkoauth_code lock_statement(my_store *ms, int get, const char *name, long long *result,
                                   bkoauth_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ms->lock_conn != NULL && broken(ms->lock_conn)) {
            atomic_fetch_add(&ms->base.reconnects, 1);
            lock_conn_drop(ms);
        }
        if (ms->lock_conn == NULL) {
            if ((ms->lock_conn = connect_my(ms, err)) == NULL) {
                err_prefix(err, "locking a token's renewal");
                return BKOAUTH_E_STORE;
            }
            attempt = 1; /* a fresh connection gets no second try */
        }
        mconn *c = ms->lock_conn;
        MYSQL_STMT **slot = get ? &ms->get_lock : &ms->release_lock;
        const char *sql = get ? "SELECT GET_LOCK(?, 0)" : "SELECT RELEASE_LOCK(?)";
        if (*slot == NULL) {
            *slot = mysql_stmt_init(c->db);
            if (*slot == NULL) return conn_error(ms, c, "locking a token's renewal", err);
            if (mysql_stmt_prepare(*slot, sql, (unsigned long)strlen(sql)) != 0) {
                bkoauth_code rc = stmt_error(ms, c, *slot, "locking a token's renewal", err);
                mysql_stmt_close(*slot);
                *slot = NULL;
                if (c->broken) continue;
                return rc;
            }
        }
        MYSQL_STMT *st = *slot;
        MYSQL_BIND p[1], res[1];
        param_text pt;
        bind_text(&p[0], &pt, name);
        long long v = -1;
        my_bool is_null = 0;
        memset(res, 0, sizeof res);
        res[0].buffer_type = MYSQL_TYPE_LONGLONG;
        res[0].buffer = &v;
        res[0].is_null = &is_null;
        bkoauth_code rc = BKOAUTH_OK;
        if (mysql_stmt_bind_param(st, p) != 0 || mysql_stmt_execute(st) != 0 ||
            mysql_stmt_bind_result(st, res) != 0 || mysql_stmt_store_result(st) != 0 ||
            mysql_stmt_fetch(st) != 0)
            rc = stmt_error(ms, c, st, "locking a token's renewal", err);
        mysql_stmt_free_result(st);
        if (rc == BKOAUTH_OK) {
            *result = is_null ? -1 : v;
            return BKOAUTH_OK;
        }
        if (!c->broken) return rc;
    }
    return BKOAUTH_E_STORE;
}

static bkoauth_code my_try_lock(store *base, const char *env_name, const char *user_id, store_lease *lease,
                                int *held, bkoauth_error *err)
{
    (void)lease;
    my_store *ms = (my_store *)base;
    char name[80];
    lock_name(name, sizeof name, env_name, user_id);
    *held = 0;
    long long v = 0;
    pthread_mutex_lock(&ms->lock_mu);
    bkoauth_code rc = lock_statement(ms, 1, name, &v, err);
    pthread_mutex_unlock(&ms->lock_mu);
    if (rc != BKOAUTH_OK) return rc;
    if (v < 0) return err_set(err, BKOAUTH_E_STORE, "MySQL token store at %s: GET_LOCK failed", ms->where);
    *held = v == 1;
    return BKOAUTH_OK;
}

static void my_unlock(store *base, const char *env_name, const char *user_id, const store_lease *lease)
{
    (void)lease;
    my_store *ms = (my_store *)base;
    char name[80];
    lock_name(name, sizeof name, env_name, user_id);
    pthread_mutex_lock(&ms->lock_mu);
    /* a connection lost meanwhile took the lock with it: nothing to release then */
    if (ms->lock_conn != NULL && !broken(ms->lock_conn)) {
        long long v = 0;
        lock_statement(ms, 0, name, &v, NULL);
    }
    pthread_mutex_unlock(&ms->lock_mu);
}

static void my_close(store *base)
{
    my_store *ms = (my_store *)base;
    pool_destroy(&ms->readers);
    pool_destroy(&ms->writers);
    lock_conn_drop(ms);
    pthread_mutex_destroy(&ms->lock_mu);
    mysql_url_clear(&ms->url);
    bkoauth__free(ms);
}

static void my_after_fork(store *base)
{
    my_store *ms = (my_store *)base;
    pool_after_fork(&ms->readers);
    pool_after_fork(&ms->writers);
    /* mysql_close would end the parent's session (and its GET_LOCKs): left as they are */
    ms->lock_conn = NULL;
    ms->get_lock = ms->release_lock = NULL;
    pthread_mutex_init(&ms->lock_mu, NULL);
}

static bkoauth_code my_django_migrations(store *base, char *names, size_t size, bkoauth_error *err);

static const store_ops MYSQL_OPS = {
    my_get,        my_try_lock,          my_unlock, my_save, my_remove, my_list, my_close,
    my_after_fork, my_django_migrations, "mysql"};

/* ---- opening ---------------------------------------------------------------------------------- */

/* The first column of the first row of sql as a number; -1 when it failed. */
static long long query_number(mconn *c, const char *sql)
{
    if (simple(c, sql) != 0) return -1;
    MYSQL_RES *res = mysql_store_result(c->db);
    if (res == NULL) return -1;
    MYSQL_ROW row = mysql_fetch_row(res);
    long long v = (row != NULL && row[0] != NULL) ? strtoll(row[0], NULL, 10) : -1;
    mysql_free_result(res);
    return v;
}

#define TABLE_WHERE "table_schema = DATABASE() AND table_name = 'bkoauth_access_token'"
#define COUNT_COLUMNS                                                                                        \
    "SELECT COUNT(DISTINCT column_name) FROM information_schema.columns WHERE " TABLE_WHERE                  \
    " AND column_name IN ('id', 'access_token', 'expires', 'refresh_token', 'scope', 'env_name', "           \
    "'user_id', 'created_at')"
#define COUNT_TABLE "SELECT COUNT(*) FROM information_schema.tables WHERE " TABLE_WHERE
#define INDEX_ON(col)                                                                                        \
    "SELECT COUNT(*) FROM information_schema.statistics WHERE " TABLE_WHERE                                  \
    " AND seq_in_index = 1 AND column_name = '" col "'"

/* The rows of st (one text column: a name) added to names; 0, or -1 when fetching failed. */
static int fetch_names(MYSQL_STMT *st, char *names, size_t size)
{
    char name[256];
    unsigned long len = 0;
    my_bool null = 0;
    MYSQL_BIND out;
    memset(&out, 0, sizeof out);
    out.buffer_type = MYSQL_TYPE_STRING;
    out.buffer = name;
    out.buffer_length = sizeof name - 1;
    out.length = &len;
    out.is_null = &null;
    if (mysql_stmt_bind_result(st, &out) != 0 || mysql_stmt_store_result(st) != 0) return -1;
    int f;
    while ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED) {
        name[len < sizeof name - 1 ? len : sizeof name - 1] = '\0';
        if (!null) store_names_add(names, size, name);
    }
    mysql_stmt_free_result(st);
    return f == MYSQL_NO_DATA ? 0 : -1;
}

typedef struct names_arg {
    char *names;
    size_t size;
} names_arg;

static bkoauth_code migrations_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    char *names = ((names_arg *)arg)->names;
    size_t size = ((names_arg *)arg)->size;
    names[0] = '\0';
    long long tables = query_number(c, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                                       "DATABASE() AND table_name = 'django_migrations'");
    if (tables < 0) return conn_error(ms, c, "looking for the table django_migrations", err);
    if (tables == 0) return BKOAUTH_OK;
    static const char sql[] = "SELECT name FROM django_migrations WHERE app = ? ORDER BY name";
    MYSQL_STMT *st = mysql_stmt_init(c->db);
    if (st == NULL) return conn_error(ms, c, "reading the table django_migrations", err);
    MYSQL_BIND param;
    param_text app;
    bind_text(&param, &app, STORE_DJANGO_APP);
    bkoauth_code rc = BKOAUTH_OK;
    if (mysql_stmt_prepare(st, sql, sizeof sql - 1) != 0 || mysql_stmt_bind_param(st, &param) != 0 ||
        mysql_stmt_execute(st) != 0 || fetch_names(st, names, size) != 0)
        rc = stmt_error(ms, c, st, "reading the table django_migrations", err);
    mysql_stmt_close(st);
    return rc;
}

/* The Django migrations recorded for the table (store.h), in the database the URL names. */
static bkoauth_code my_django_migrations(store *base, char *names, size_t size, bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    names_arg a = {names, size};
    return with_conn(ms, &ms->readers, migrations_work, &a, err);
}

static bkoauth_code create_schema(my_store *ms, mconn *c, bkoauth_error *err)
{
    /* one creator at a time across processes (DDL commits by itself, so no transaction) */
    if (query_number(c, "SELECT GET_LOCK('bkoauth_access_token:schema', 30)") != 1)
        return conn_error(ms, c, "locking to create the table bkoauth_access_token", err);
    bkoauth_code rc = BKOAUTH_OK;
    if (query_number(c, COUNT_TABLE) == 0 && simple(c, CREATE_TABLE) != 0)
        rc = conn_error(ms, c, "creating the table bkoauth_access_token", err);
    if (rc == BKOAUTH_OK && query_number(c, COUNT_COLUMNS) != 8)
        rc = err_set(err, BKOAUTH_E_STORE,
                     "MySQL token store at %s: the table bkoauth_access_token lacks columns of the bkoauth "
                     "table (id, access_token, expires, refresh_token, scope, env_name, user_id, created_at)",
                     ms->where);
    static const char *const index_on[2] = {INDEX_ON("env_name"), INDEX_ON("user_id")};
    for (int i = 0; rc == BKOAUTH_OK && i < 2; i++)
        if (query_number(c, index_on[i]) == 0 && simple(c, INDEXES[i][1]) != 0 &&
            mysql_errno(c->db) != ER_DUP_KEYNAME)
            rc = conn_error(ms, c, "creating an index", err);
    query_number(c, "SELECT RELEASE_LOCK('bkoauth_access_token:schema')");
    return rc;
}

/* The table and its indexes, created only when missing: a database that has them (the usual case)
 * is only read, so opening a client takes no lock and writes nothing. */
static bkoauth_code prepare_schema(my_store *ms, mconn *c, bkoauth_error *err)
{
    long long columns = query_number(c, COUNT_COLUMNS);
    if (columns < 0) return conn_error(ms, c, "reading the table's shape", err);
    if (columns == 8 && query_number(c, INDEX_ON("env_name")) > 0 && query_number(c, INDEX_ON("user_id")) > 0)
        return BKOAUTH_OK;
    return create_schema(ms, c, err);
}

store *store_mysql_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    /* the connector and libcrypto (the lock names): loaded by the first MySQL store */
    if (bk_mysql_load(err) != BKOAUTH_OK || bk_crypto_load(BKOAUTH_E_STORE, err) != BKOAUTH_OK) return NULL;
    my_store *ms = bkoauth__calloc(1, sizeof *ms);
    if (ms == NULL) {
        err_nomem(err);
        return NULL;
    }
    ms->base.ops = &MYSQL_OPS;
    ms->base.logger = logger;
    ms->s = s;
    pthread_mutex_init(&ms->lock_mu, NULL);
    if (mysql_url_parse(s->database_url, &ms->url, err) != BKOAUTH_OK) {
        pthread_mutex_destroy(&ms->lock_mu);
        bkoauth__free(ms);
        return NULL;
    }
    snprintf(ms->where, sizeof ms->where, "%s%s%s:%u/%s", ms->url.user ? ms->url.user : "",
             ms->url.user ? "@" : "", ms->url.host, ms->url.port, ms->url.database);
    /* BKOAUTH_DB_CONNECTIONS: one for locks, a quarter of the rest for writes, the others reads */
    int n = store_connections(s), writers = (n - 1) / 4 > 0 ? (n - 1) / 4 : 1;
    if (pool_init(&ms->readers, n - 1 - writers, pconn_open, mconn_close, ms) != 0 ||
        pool_init(&ms->writers, writers, pconn_open, mconn_close, ms) != 0) {
        err_nomem(err);
        my_close(&ms->base);
        return NULL;
    }
    mconn *c = pool_get(&ms->readers, NULL, err);
    if (c == NULL) {
        my_close(&ms->base);
        return NULL;
    }
    bkoauth_code rc = prepare_schema(ms, c, err);
    if (!c->broken)
        pool_put(&ms->readers, c);
    else
        pool_discard(&ms->readers, c);
    if (rc != BKOAUTH_OK) {
        my_close(&ms->base);
        return NULL;
    }
    log_write(logger, BKOAUTH_LOG_DEBUG, "token store: MySQL at %s ready", ms->where);
    return &ms->base;
}
