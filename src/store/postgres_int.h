/* SPDX-License-Identifier: MIT */
/* postgres_int.h - what postgres.c (the token table), postgres_lease.c (the renewal lease) and
 * postgres_conn.c (connections, statements) share: the store's handle, its connections and the
 * way a statement is run. */
#ifndef BKOAUTH_POSTGRES_INT_H
#define BKOAUTH_POSTGRES_INT_H

#include "pool.h"
#include "store.h"

#include "pq_dl.h"
#include <stdatomic.h>

typedef struct pconn {
    PGconn *pg;
    int lost; /* a statement's error said the session is gone (the server or the pooler's link) */
    int late; /* a statement had no answer within store_hold_ms(): not tried again */
} pconn;

typedef struct pg_store {
    store base;
    const bk_settings *s;
    char where[160]; /* host:port/db for messages, never a password */
    pool readers, writers;
    /* lease holders: "HOST PID NODE SEQ", NODE this kernel's boot and pid namespace ("-" when
     * unknown), so that a holder on this host can be found dead */
    char host[64];
    char node[96];
    atomic_ulong lease_seq;
} pg_store;

/* Work done on one connection; it leaves no transaction open, whatever it returns. */
typedef bkoauth_code (*bk_pg_work)(pg_store *ps, pconn *c, void *arg, bkoauth_error *err);

/* ---- postgres_conn.c ---- */

/* The pool's open, close and reopen (PQreset: libpq's object and buffers kept) of a connection
 * (ctx the pg_store): pool_init and pool_set_reopen of postgres.c. */
void *bk_pg_conn_open(void *ctx, bkoauth_error *err);
void bk_pg_conn_close(void *p);
int bk_pg_conn_reopen(void *ctx, void *conn, bkoauth_error *err);
/* Gives a connection back to p after use: one that broke, or whose session is gone, stale (it
 * is connected again in place when next taken); one with a statement still unanswered (late)
 * is closed at once. */
void bk_pg_conn_put(pool *p, pconn *c);

/* Runs work on a connection of p; when it failed because the connection broke (a restart, a
 * failover, an idle connection cut, a pooler's server gone), once more on the same connection
 * connected again. Only for work that is safe to repeat. */
bkoauth_code bk_pg_with_conn(pg_store *ps, pool *p, bk_pg_work work, void *arg, bkoauth_error *err);

/* Runs sql (one statement, unnamed, with text parameters); returns the result when its status is
 * want, else NULL with err set (the result cleared, c->lost set when the session is gone). */
PGresult *bk_pg_run(pg_store *ps, pconn *c, const char *sql, int n, const char *const *params,
                    ExecStatusType want, const char *what, bkoauth_error *err);
/* bk_pg_run() for a statement of many rows, which come one at a time (libpq's single-row mode)
 * instead of in one result that holds them all: row(row_arg, r, i) is called for each, r valid
 * only during the call, until it returns non-zero; the result returned (want: PGRES_TUPLES_OK)
 * then has no rows. */
typedef int (*bk_pg_row)(void *row_arg, const PGresult *r, int i);
PGresult *bk_pg_run_rows(pg_store *ps, pconn *c, const char *sql, int n, const char *const *params,
                         ExecStatusType want, const char *what, bk_pg_row row, void *row_arg,
                         bkoauth_error *err);

/* BKOAUTH_E_STORE with libpq's first line, saying whether the server could be reached. */
bkoauth_code bk_pg_error(pg_store *ps, PGconn *pg, const char *what, bkoauth_error *err);

/* ---- postgres_lease.c ---- */

/* The lease table, created when missing (by the store's opening, with the token table). */
extern const char *const BK_PG_CREATE_LEASE;

/* This host's identity for lease holders: at opening and in a child after fork(). */
void bk_pg_lease_identity(pg_store *ps);

/* store_ops try_lock / unlock of the PostgreSQL store. */
bkoauth_code bk_pg_try_lock(store *base, const char *env_name, const char *user_id, store_lease *lease,
                            int *held, bkoauth_error *err);
void bk_pg_unlock(store *base, const char *env_name, const char *user_id, const store_lease *lease);

#endif
