/* SPDX-License-Identifier: MIT */
/* mysql_int.h - what the MySQL store's files share: mysql.c (the operations, opening),
 * mysql_conn.c (connections, errors, work retried on a fresh connection), mysql_query.c
 * (statements, parameters, rows, the lookup of a key) and mysql_lock.c (the renewal lock). */
#ifndef BKOAUTH_MYSQL_INT_H
#define BKOAUTH_MYSQL_INT_H

#include "mysql_dl.h"
#include "pool.h"
#include "store.h"

#include <pthread.h>

#define COLUMNS "id, access_token, expires, refresh_token, scope, env_name, user_id, created_at"
#define NCOLS 8
#define TEXT_BUF 1024 /* varchar(255) in utf8mb4: at most 1020 bytes; longer values are fetched apart */

/* The statements of mysql_query.c (bk_my_stmt). */
enum {
    Q_GET_USER,
    Q_GET_APP,
    Q_CLASH,
    Q_DELETE_ID,
    Q_UPDATE,
    Q_INSERT,
    Q_LIST,
    Q_GET_LOCK,     /* the lock connection's (mysql_lock.c) */
    Q_RELEASE_LOCK, /* the lock connection's */
    Q_COUNT
};
#define Q_TOKEN_COUNT Q_GET_LOCK /* the statements of the read and write pools' connections */

typedef struct mconn {
    MYSQL *db; /* &my while connected, NULL while not */
    MYSQL my;  /* the connector's handle, kept with the connection across reconnects */
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
    pool locker; /* the lock connection: a pool of one, opened at the first renewal */
} my_store;

typedef struct param_text {
    unsigned long len;
    my_bool null;
} param_text;

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

/* Work done on one connection; it leaves no transaction open, whatever it returns. */
typedef bkoauth_code (*bk_my_work)(my_store *ms, mconn *c, void *arg, bkoauth_error *err);

/* ---- mysql_conn.c ---- */

/* err from code and text of the failed call (StoreError naming ms->where, never the password);
 * marks c (when not NULL) broken or worth a retry. */
bkoauth_code bk_my_error(my_store *ms, mconn *c, unsigned code, const char *text, const char *what,
                         bkoauth_error *err);
/* bk_my_error() with the connection's or the statement's error. */
bkoauth_code bk_my_conn_error(my_store *ms, mconn *c, const char *what, bkoauth_error *err);
bkoauth_code bk_my_stmt_error(my_store *ms, mconn *c, MYSQL_STMT *st, const char *what, bkoauth_error *err);
/* A new connection, set up; NULL with err set. */
mconn *bk_my_connect(my_store *ms, bkoauth_error *err);
/* Connects conn (an mconn; ctx the my_store) again in place: its session (and statements)
 * ended, a new one set up; the connection's object and row buffers are kept, so that a server
 * restart does not free and allocate every pooled connection anew. 0, or -1 with err set (conn
 * stays broken). The pools' reopen (pool_set_reopen), and the lock connection's. */
int bk_my_reconnect(void *ctx, void *conn, bkoauth_error *err);
/* Closes a connection (the pools' close). */
void bk_my_conn_close(void *p);
/* Gives a connection back to p after use (a broken one stale: connected again when next taken). */
void bk_my_conn_put(pool *p, mconn *c);
/* mysql_real_query of sql: 0 when it ran. */
int bk_my_simple(mconn *c, const char *sql);
/* 1 when c is known broken (a failed statement said so, or the server wrote to it while idle). */
int bk_my_broken(mconn *c);
/* The connection's row buffers, made at its first read; NULL when out of memory. */
row_buf *bk_my_conn_row(mconn *c);
/* Frees what the connector keeps of the last result's columns until the connection's next
 * statement (an 8 KiB block), so that it is freed in the thread that made it; after a result is
 * done. */
void bk_my_result_forget(mconn *c);
/* Runs work on a connection of p; when it failed because the connection broke (a restart, a
 * failover, an idle connection cut) or on a deadlock, once more on a fresh connection. Only for
 * work that is safe to repeat. */
bkoauth_code bk_my_with_conn(my_store *ms, pool *p, bk_my_work work, void *arg, bkoauth_error *err);

/* ---- mysql_query.c ---- */

/* The statement q (Q_*) of c, prepared once per connection; NULL with err set. */
MYSQL_STMT *bk_my_stmt(my_store *ms, mconn *c, int q, bkoauth_error *err);
/* Prepares the statements from (Q_*) up to to (excluded) on c (a failure is left for the
 * statement's first use to report), in the pools' connector threads. */
void bk_my_prepare(my_store *ms, mconn *c, int from, int to);
/* Parameters: s as text (NULL: SQL NULL; t holds its length), v as a number, t as a datetime in
 * BKOAUTH_DB_TIME_ZONE (mt holds it). */
void bk_my_bind_text(MYSQL_BIND *b, param_text *t, const char *s);
void bk_my_bind_int(MYSQL_BIND *b, int64_t *v);
void bk_my_bind_time(my_store *ms, MYSQL_BIND *b, MYSQL_TIME *mt, int64_t t);
/* Runs st with params; binds and buffers its result into r when r is not NULL. */
bkoauth_code bk_my_execute(my_store *ms, mconn *c, MYSQL_STMT *st, MYSQL_BIND *params, row_buf *r,
                           const char *what, bkoauth_error *err);
/* bk_my_execute() for a statement of many rows, without params, whose rows are not buffered:
 * each mysql_stmt_fetch() reads the next from the server (a list of every user's token buffered
 * at once would be as big again as the list, in the listing thread's heap). Fetch to the end
 * (MYSQL_NO_DATA) or call mysql_stmt_free_result() before the next statement. */
bkoauth_code bk_my_execute_streamed(my_store *ms, mconn *c, MYSQL_STMT *st, row_buf *r, const char *what,
                                    bkoauth_error *err);
/* The token of the row fetched into r. *row_bad (when not NULL) is set when the failure is the
 * row's content (another program wrote it), not the connection. */
bkoauth_code bk_my_row_token(my_store *ms, mconn *c, MYSQL_STMT *st, row_buf *r, bkoauth_token **out,
                             int *row_bad, bkoauth_error *err);
/* The rows of exactly (env_name, user_id) on c: *out the one with the latest expires (then the
 * highest id), NULL (and *id -1) when none; ids (when not NULL) gets every id, *nids their
 * count. A row that cannot be read (another program wrote it) is passed over when a readable
 * one is there; when none is, a read (overwrite 0) reports it, a save (overwrite 1) gets its id
 * in *id, to replace it in place. */
bkoauth_code bk_my_find(my_store *ms, mconn *c, const char *env_name, const char *user_id,
                        bkoauth_token **out, int64_t *id, int64_t *ids, size_t max_ids, size_t *nids,
                        int overwrite, bkoauth_error *err);

/* ---- mysql_lock.c ---- */

/* store_ops try_lock and unlock (store.h) of the MySQL store. */
bkoauth_code bk_my_try_lock(store *base, const char *env_name, const char *user_id, store_lease *lease,
                            int *held, bkoauth_error *err);
void bk_my_unlock(store *base, const char *env_name, const char *user_id, const store_lease *lease);
/* Sets up ms->locker (after the connector is loaded): 0, or -1 when out of memory. */
int bk_my_locker_init(my_store *ms);

#endif
