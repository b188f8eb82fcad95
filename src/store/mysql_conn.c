/* SPDX-License-Identifier: MIT */
/* mysql_conn.c - the MySQL store's connections (mysql.c): the client library set up once, the
 * connector's messages, a connection opened and set up (READ COMMITTED, the lock wait bounded),
 * found broken without a round trip, its row buffers, and work done once more on a fresh
 * connection when the session broke or the server saw a deadlock. */
#include "mysql_int.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
bkoauth_code bk_my_error(my_store *ms, mconn *c, unsigned code, const char *text, const char *what,
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

bkoauth_code bk_my_conn_error(my_store *ms, mconn *c, const char *what, bkoauth_error *err)
{
    return bk_my_error(ms, c, mysql_errno(c->db), mysql_error(c->db), what, err);
}

bkoauth_code bk_my_stmt_error(my_store *ms, mconn *c, MYSQL_STMT *st, const char *what, bkoauth_error *err)
{
    return bk_my_error(ms, c, mysql_stmt_errno(st), mysql_stmt_error(st), what, err);
}

/* ---- connections ------------------------------------------------------------------------------ */

static void conn_row_free(mconn *c);

/* Ends c's session: its statements closed, the connector's handle closed (not freed: it is
 * c->my). */
static void conn_end(mconn *c)
{
    for (int i = 0; i < Q_COUNT; i++) {
        if (c->stmt[i] != NULL) mysql_stmt_close(c->stmt[i]);
        c->stmt[i] = NULL;
    }
    if (c->db != NULL) mysql_close(c->db);
    c->db = NULL;
}

void bk_my_conn_close(void *p)
{
    mconn *c = p;
    if (c == NULL) return;
    conn_end(c);
    conn_row_free(c);
    bkoauth__free(c);
}

int bk_my_simple(mconn *c, const char *sql)
{
    return mysql_real_query(c->db, sql, (unsigned long)strlen(sql));
}

/* Opens c's session (c->db NULL before): connected and set up, or -1 with err set. */
static int conn_start(my_store *ms, mconn *c, bkoauth_error *err)
{
    if ((c->db = mysql_init(&c->my)) == NULL) {
        err_nomem(err);
        return -1;
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
        bk_my_error(ms, NULL, mysql_errno(c->db), mysql_error(c->db), "connecting", err);
        conn_end(c);
        return -1;
    }
    /* READ COMMITTED: no gap locks, so savers of different keys never wait for each other; a row
     * lock is waited for at most about the SSM timeout */
    char wait_sql[96];
    snprintf(wait_sql, sizeof wait_sql, "SET SESSION innodb_lock_wait_timeout = %ld", secs + 5);
    if (bk_my_simple(c, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED") != 0 ||
        bk_my_simple(c, wait_sql) != 0) {
        bk_my_conn_error(ms, c, "setting up a connection", err);
        conn_end(c);
        return -1;
    }
    return 0;
}

mconn *bk_my_connect(my_store *ms, bkoauth_error *err)
{
    pthread_once(&library_once, library_init);
    if (library_failed) {
        err_set(err, BKOAUTH_E_STORE, "the MySQL client library could not be initialised");
        return NULL;
    }
    mconn *c = bkoauth__calloc(1, sizeof *c);
    if (c == NULL) {
        err_nomem(err);
        return NULL;
    }
    if (conn_start(ms, c, err) != 0) {
        bk_my_conn_close(c);
        return NULL;
    }
    return c;
}

int bk_my_reconnect(void *ctx, void *conn, bkoauth_error *err)
{
    my_store *ms = ctx;
    mconn *c = conn;
    atomic_fetch_add(&ms->base.reconnects, 1);
    conn_end(c);
    c->broken = 1;
    c->retry = 0;
    if (conn_start(ms, c, err) != 0) return -1;
    c->broken = 0;
    return 0;
}

/* 1 when the connection is known broken: a statement failed so, or the server wrote to (or
 * closed) it while it was idle - read here without a round trip. */
int bk_my_broken(mconn *c)
{
    if (c->broken || c->db == NULL) return 1;
    struct pollfd p = {.fd = (int)mysql_get_socket(c->db), .events = POLLIN};
    if (p.fd < 0) return 1;
    return poll(&p, 1, 0) != 0;
}

void bk_my_conn_put(pool *p, mconn *c)
{
    if (c->broken)
        pool_put_stale(p, c);
    else
        pool_put(p, c);
}

/* A connection of pool p that is not known broken, or NULL with err set. *fresh: connected by
 * this call (opened, or connected again). */
static mconn *take(pool *p, int *fresh, bkoauth_error *err)
{
    mconn *c = pool_get(p, fresh, err);
    if (c == NULL || *fresh || !bk_my_broken(c)) return c;
    if (pool_renew(p, c, err) != 0) return NULL;
    *fresh = 1;
    return c;
}

/* The connection's row buffers, made at its first read; NULL when out of memory. */
row_buf *bk_my_conn_row(mconn *c)
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

/* Frees, in the calling thread, what the connector keeps of the last result's columns. It
 * copies them after every statement that has a result into an 8 KiB block from malloc() on the
 * connection (MYSQL.field_alloc, mysql.h), freed only when the connection's next statement
 * starts: in another thread, since the pools hand connections to any thread. A block made in
 * one thread's malloc arena and outliving the call there fragments that arena: under the soak
 * (bench_soak, MariaDB) it was nearly every heap extension after minute 2 (ARCHITECTURE.md,
 * "Memory that stays flat"). Freed here, after the result is done, it is a temporary of the
 * call. What is done is what the connector's own reset does (its free_old_query), on the
 * fields mysql.h makes public in Connector/C 3 (libmariadb.so.3); left alone when they are not
 * as that reset leaves them. */
void bk_my_result_forget(mconn *c)
{
    MYSQL *db = c->db;
    if (db == NULL || db->fields == NULL || db->field_alloc.pre_alloc != NULL) return;
    MA_USED_MEM *lists[2] = {db->field_alloc.used, db->field_alloc.free};
    for (int i = 0; i < 2; i++) {
        for (MA_USED_MEM *b = lists[i], *next; b != NULL; b = next) {
            next = b->next;
            bkoauth__libc_free(b);
        }
    }
    db->field_alloc.used = db->field_alloc.free = NULL;
    db->fields = NULL;
    db->field_count = 0;
}

/* Runs work on a connection of p; when it failed because the connection broke (a restart, a
 * failover, an idle connection cut), once more on the same connection connected again; on a
 * deadlock, once more. Only for work that is safe to repeat. */
bkoauth_code bk_my_with_conn(my_store *ms, pool *p, bk_my_work work, void *arg, bkoauth_error *err)
{
    bkoauth_error local;
    if (err == NULL) err = &local;
    int fresh = 0;
    mconn *c = take(p, &fresh, err);
    if (c == NULL) return err->code != BKOAUTH_OK ? err->code : BKOAUTH_E_STORE;
    for (int attempt = 0;; attempt++) {
        bkoauth_code rc = work(ms, c, arg, err);
        bk_my_result_forget(c);
        int retry = c->retry;
        c->retry = 0;
        if (rc == BKOAUTH_OK || attempt > 0 || (!retry && (!c->broken || fresh))) {
            bk_my_conn_put(p, c);
            return rc;
        }
        log_write(ms->base.logger, BKOAUTH_LOG_INFO, "MySQL token store at %s: %s; trying again%s", ms->where,
                  err->message, c->broken ? " on a new connection" : "");
        if (c->broken && pool_renew(p, c, err) != 0) return err->code;
    }
}
