/* SPDX-License-Identifier: MIT */
/* postgres_conn.c - the PostgreSQL store's connections and how a statement is run on one: libpq's
 * messages, opening and checking a pooled connection, a statement sent with its parameters and
 * awaited for at most store_hold_ms(), and work done once more on a fresh connection when the
 * session broke. postgres.c (the token table) and postgres_lease.c (the renewal lease) both run
 * their statements through it. */
#include "postgres_int.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ----------------------------------------------------------------------------------- */

/* The first line of libpq's message (it never holds the password). */
static const char *first_line(PGconn *pg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", pg ? PQerrorMessage(pg) : "out of memory");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

bkoauth_code bk_pg_error(pg_store *ps, PGconn *pg, const char *what, bkoauth_error *err)
{
    char line[300];
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
        return err_set(err, BKOAUTH_E_STORE,
                       "cannot reach the PostgreSQL token store at %s while %s: %s; is the server running? "
                       "(saved tokens are unchanged; the next call reconnects)",
                       ps->where, what, first_line(pg, line, sizeof line));
    return err_set(err, BKOAUTH_E_STORE, "PostgreSQL token store at %s: %s failed: %s", ps->where, what,
                   first_line(pg, line, sizeof line));
}

/* 1 when a failed statement's SQLSTATE says the session is gone though the socket may still be
 * open: a connection exception (08...: PgBouncer's "server conn crashed?" is 08P01), or the
 * server shutting down or starting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
 * cannot_connect_now), which a pooler passes on from the server behind it. */
static int session_gone(const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL) return 0;
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
           strcmp(state, "57P03") == 0;
}

/* ---- connections ------------------------------------------------------------------------------ */

/* Notices (such as "relation already exists, skipping") are of no use to the program: libpq would
 * print them on stderr. Dropped here, on the client, instead of a client_min_messages startup
 * option, which a pooler refuses. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Connects with the URL's settings over these defaults (the URL's own values win: they come
 * later). gssencmode=disable unless the URL or PGGSSENCMODE asks for it: libpq's default
 * ("prefer") looks for a Kerberos credential cache at every connect (a file read and some 60
 * blocks of libkrb5's allocated and freed, in whichever thread reconnects), for a GSSAPI-encrypted
 * session that a token store on a private network has no use for; Kerberos authentication
 * itself (pg_hba.conf "gss") is not affected. */
static PGconn *connect_pg(pg_store *ps)
{
    char timeout[24];
    long secs = (ps->s->timeout_ms + 999) / 1000;
    snprintf(timeout, sizeof timeout, "%ld", secs < 2 ? 2 : secs);
    /* libpq skips a keyword whose value is NULL: PGGSSENCMODE then applies, unless the URL says */
    const char *gss = getenv("PGGSSENCMODE") != NULL ? NULL : "disable";
    const char *keys[] = {"connect_timeout", "application_name", "gssencmode", "dbname", NULL};
    const char *values[] = {timeout, "libbkoauth", gss, ps->s->database_url, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg != NULL) PQsetNoticeProcessor(pg, quiet, NULL);
    return pg;
}

void *bk_pg_conn_open(void *ctx, bkoauth_error *err)
{
    pg_store *ps = ctx;
    pconn *c = bkoauth__calloc(1, sizeof *c);
    if (c == NULL) {
        err_nomem(err);
        return NULL;
    }
    c->pg = connect_pg(ps);
    if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK) return c;
    if (c->pg == NULL)
        err_nomem(err);
    else
        bk_pg_error(ps, c->pg, "connecting", err);
    PQfinish(c->pg);
    bkoauth__free(c);
    return NULL;
}

void bk_pg_conn_close(void *p)
{
    pconn *c = p;
    PQfinish(c->pg);
    bkoauth__free(c);
}

/* 1 when the connection is known broken: its status, or what the server sent while it was idle
 * (a restart ends every session with a message and a close, read here without a round trip). */
static int broken(PGconn *pg)
{
    if (PQstatus(pg) != CONNECTION_OK) return 1;
    if (PQconsumeInput(pg) == 0) return 1;
    return PQstatus(pg) != CONNECTION_OK;
}

int bk_pg_conn_reopen(void *ctx, void *conn, bkoauth_error *err)
{
    pg_store *ps = ctx;
    pconn *c = conn;
    atomic_fetch_add(&ps->base.reconnects, 1);
    c->lost = 0;
    c->late = 0;
    PQreset(c->pg);
    if (PQstatus(c->pg) == CONNECTION_OK) return 0;
    bk_pg_error(ps, c->pg, "connecting", err);
    return -1;
}

void bk_pg_conn_put(pool *p, pconn *c)
{
    if (c->late) /* closed at once: a pooler then drops the statement it still queues, which
                  * would otherwise run later (a lease taken after its caller gave up) */
        pool_discard(p, c);
    else if (c->lost || PQstatus(c->pg) != CONNECTION_OK)
        pool_put_stale(p, c);
    else
        pool_put(p, c);
}

/* A connection of pool p that is not known broken, or NULL with err set. *fresh: connected by
 * this call (opened, or connected again). */
static pconn *take(pool *p, int *fresh, bkoauth_error *err)
{
    pconn *c = pool_get(p, fresh, err);
    if (c == NULL || *fresh || !broken(c->pg)) return c;
    if (pool_renew(p, c, err) != 0) return NULL;
    *fresh = 1;
    return c;
}

/* Sends sql and waits for its result at most until deadline_ms (monotonic): the last result, or
 * NULL (libpq out of memory, the connection broken: PQstatus says which; or *late set when no
 * answer came in time). A pooler in session mode with fewer server connections than its clients
 * hold, or a server down behind a pooler, keeps a statement queued without a word: the wait is
 * bounded here instead of by the pooler's query_wait_timeout (PgBouncer: 120 s). */
static PGresult *exec_bounded(PGconn *pg, const char *sql, int n, const char *const *params,
                              int64_t deadline_ms, int *late, bk_pg_row row, void *row_arg)
{
    *late = 0;
    if (!PQsendQueryParams(pg, sql, n, NULL, params, NULL, NULL, 0)) return NULL;
    if (row != NULL) PQsetSingleRowMode(pg); /* no matter if refused: rows then come in one result */
    PGresult *last = NULL;
    int taking = 1; /* row() has not refused one yet */
    for (;;) {
        int pending = PQflush(pg); /* -1 broken, 0 sent, 1 more to send */
        if (pending < 0) break;
        while (pending == 0 && !PQisBusy(pg)) {
            PGresult *r = PQgetResult(pg);
            if (r == NULL) return last;
            if (row != NULL && PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
                if (taking && row(row_arg, r, 0) != 0) taking = 0;
                PQclear(r);
                continue;
            }
            PQclear(last);
            last = r;
        }
        int64_t left = deadline_ms - bk_monotonic_ms();
        if (left <= 0) {
            *late = 1;
            break;
        }
        struct pollfd pfd = {PQsocket(pg), (short)(POLLIN | (pending ? POLLOUT : 0)), 0};
        int ready = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (ready < 0 && errno != EINTR) break;
        if (ready > 0 && !PQconsumeInput(pg)) break;
    }
    PQclear(last);
    /* broken: libpq's own error result, which says so */
    return !*late && PQstatus(pg) != CONNECTION_OK ? PQgetResult(pg) : NULL;
}

/* StoreError for a statement that had no answer in time (the connection is then dropped). */
static void no_answer(pg_store *ps, pconn *c, const char *what, bkoauth_error *err)
{
    c->lost = 1;
    c->late = 1;
    err_set(err, BKOAUTH_E_STORE,
            "the PostgreSQL token store at %s did not answer within %lld ms while %s: the server is "
            "overloaded or down, or a pooler queues the statement (PgBouncer in pool_mode = session "
            "gives each client connection a server connection of its own: make default_pool_size at "
            "least the clients' processes x BKOAUTH_DB_CONNECTIONS, or use pool_mode = transaction)",
            ps->where, (long long)store_hold_ms(ps->s), what);
}

PGresult *bk_pg_run(pg_store *ps, pconn *c, const char *sql, int n, const char *const *params,
                    ExecStatusType want, const char *what, bkoauth_error *err)
{
    return bk_pg_run_rows(ps, c, sql, n, params, want, what, NULL, NULL, err);
}

PGresult *bk_pg_run_rows(pg_store *ps, pconn *c, const char *sql, int n, const char *const *params,
                         ExecStatusType want, const char *what, bk_pg_row row, void *row_arg,
                         bkoauth_error *err)
{
    int late = 0;
    PGresult *r =
        exec_bounded(c->pg, sql, n, params, bk_monotonic_ms() + store_hold_ms(ps->s), &late, row, row_arg);
    if (r != NULL && PQresultStatus(r) == want) {
        /* single-row mode refused: the rows are in r */
        for (int i = 0; row != NULL && i < PQntuples(r); i++)
            if (row(row_arg, r, i) != 0) break;
        return r;
    }
    if (late) {
        no_answer(ps, c, what, err);
        return NULL;
    }
    if (r == NULL && PQstatus(c->pg) == CONNECTION_OK) { /* libpq could not allocate the result */
        err_nomem(err);
        return NULL;
    }
    if (r == NULL || session_gone(r)) c->lost = 1;
    if (c->lost) {
        char line[300];
        err_set(err, BKOAUTH_E_STORE,
                "the PostgreSQL token store at %s went away while %s: %s (saved tokens are unchanged; the "
                "next call reconnects)",
                ps->where, what, first_line(c->pg, line, sizeof line));
    } else {
        bk_pg_error(ps, c->pg, what, err);
    }
    PQclear(r);
    return NULL;
}

bkoauth_code bk_pg_with_conn(pg_store *ps, pool *p, bk_pg_work work, void *arg, bkoauth_error *err)
{
    bkoauth_error local;
    if (err == NULL) err = &local;
    int fresh = 0;
    pconn *c = take(p, &fresh, err);
    if (c == NULL) return err->code != BKOAUTH_OK ? err->code : BKOAUTH_E_STORE;
    bkoauth_code rc = work(ps, c, arg, err);
    int broke = rc != BKOAUTH_OK && (c->lost || PQstatus(c->pg) != CONNECTION_OK);
    if (!broke || c->late || fresh) { /* done, or no second try: already a new session, or late */
        bk_pg_conn_put(p, c);
        return rc;
    }
    log_write(ps->base.logger, BKOAUTH_LOG_INFO,
              "PostgreSQL token store at %s: a connection was broken (%s); connecting again and trying "
              "once more",
              ps->where, err->message);
    if (pool_renew(p, c, err) != 0) return err->code;
    rc = work(ps, c, arg, err);
    bk_pg_conn_put(p, c);
    return rc;
}
