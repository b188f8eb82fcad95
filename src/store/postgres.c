/* postgres.c - the token table in PostgreSQL, as Django's PostgreSQL backend creates it, shared
 * by many processes and hosts.
 *
 * Connections: a read pool, a write pool (saves and deletes, each one short transaction) and
 * one connection for renewal locks. A renewal of a key holds a session advisory lock on the
 * key (pg_try_advisory_lock, the key hashed by the server as earlier versions did) on the lock
 * connection while the SSM service is called; no transaction and no pooled connection is held
 * meanwhile, and the lock goes with the session when a process dies.
 *
 * Restarts: a pooled connection found broken (checked before use without a round trip, and by
 * the failure of a statement) is discarded with every idle one of its pool (after a restart
 * they are all stale) and the work, when safe to repeat, is done once more on a fresh
 * connection; so the first call after the server is back succeeds. */
#include "pool.h"
#include "store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A datetime that is not finite ('infinity', written by another program) comes back NULL: that
 * row is reported, the others still read. */
#define COLUMNS                                                                                              \
    "id, access_token, CASE WHEN isfinite(expires) THEN extract(epoch from expires)::bigint END, "           \
    "refresh_token, scope, env_name, user_id, "                                                              \
    "CASE WHEN isfinite(created_at) THEN extract(epoch from created_at)::bigint END"

static const char *const CREATE_TABLE = "CREATE TABLE \"bkoauth_access_token\" ("
                                        "\"id\" serial NOT NULL PRIMARY KEY, "
                                        "\"access_token\" varchar(255) NOT NULL UNIQUE, "
                                        "\"expires\" timestamp with time zone NOT NULL, "
                                        "\"refresh_token\" varchar(255) NULL, "
                                        "\"scope\" text NULL, "
                                        "\"env_name\" varchar(255) NOT NULL, "
                                        "\"user_id\" varchar(64) NULL, "
                                        "\"created_at\" timestamp with time zone NOT NULL, "
                                        "\"extra\" text NULL)";

typedef struct pconn {
    PGconn *pg;
    unsigned prepared; /* bit i: statement i of PREPARED exists on this connection */
} pconn;

typedef struct pg_store {
    store base;
    const bk_settings *s;
    char where[160]; /* host:port/db for messages, never a password */
    pool readers, writers;
    pthread_mutex_t lock_mu; /* the lock connection: one statement at a time */
    PGconn *lock_pg;         /* NULL until the first renewal */
} pg_store;

/* ---- errors ----------------------------------------------------------------------------------- */

/* The first line of libpq's message (it never holds the password). */
static const char *first_line(PGconn *pg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", pg ? PQerrorMessage(pg) : "out of memory");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static bkoauth_code pg_error(pg_store *ps, PGconn *pg, const char *what, bkoauth_error *err)
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

/* ---- connections ------------------------------------------------------------------------------ */

static PGconn *connect_pg(pg_store *ps)
{
    char timeout[24];
    long secs = (ps->s->timeout_ms + 999) / 1000;
    snprintf(timeout, sizeof timeout, "%ld", secs < 2 ? 2 : secs);
    const char *keys[] = {"connect_timeout", "application_name", "options", "dbname", NULL};
    const char *values[] = {timeout, "libbkoauth", "-c client_min_messages=warning", ps->s->database_url,
                            NULL};
    return PQconnectdbParams(keys, values, 1);
}

static void *pconn_open(void *ctx, bkoauth_error *err)
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
        pg_error(ps, c->pg, "connecting", err);
    PQfinish(c->pg);
    bkoauth__free(c);
    return NULL;
}

static void pconn_close(void *p)
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

/* A connection of pool p that is not known broken, or NULL with err set. *fresh: opened now. */
static pconn *take(pg_store *ps, pool *p, int *fresh, bkoauth_error *err)
{
    pconn *c = pool_get(p, fresh, err);
    if (c == NULL || *fresh || !broken(c->pg)) return c;
    atomic_fetch_add(&ps->base.reconnects, 1);
    pool_discard(p, c);
    pool_flush(p); /* the others idle since the same moment are likely stale too */
    return pool_get(p, fresh, err);
}

/* After a failed statement: gives the connection back, or discards it (and the pool's idle
 * ones) when it is broken. Returns 1 when the failure is worth one more try on a fresh
 * connection (the connection broke, and it was not already a fresh one). */
static int give_back(pool *p, pconn *c, int fresh)
{
    if (PQstatus(c->pg) == CONNECTION_OK) {
        pool_put(p, c);
        return 0;
    }
    pool_discard(p, c);
    pool_flush(p);
    return !fresh;
}

/* Runs sql with text parameters; returns the result when its status is want, else NULL with
 * err set (the result cleared). */
static PGresult *run(pg_store *ps, pconn *c, const char *sql, int n, const char *const *params,
                     ExecStatusType want, const char *what, bkoauth_error *err)
{
    PGresult *r = PQexecParams(c->pg, sql, n, NULL, params, NULL, NULL, 0);
    if (r != NULL && PQresultStatus(r) == want) return r;
    if (r == NULL && PQstatus(c->pg) == CONNECTION_OK) { /* libpq could not allocate the result */
        err_nomem(err);
        return NULL;
    }
    pg_error(ps, c->pg, what, err);
    PQclear(r);
    return NULL;
}

static void rollback(pconn *c)
{
    PQclear(PQexec(c->pg, "ROLLBACK"));
}

/* ---- rows ------------------------------------------------------------------------------------- */

static const char *val(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* The token of a result row. A datetime that is not finite is BKOAUTH_E_STORE naming the row. */
static bkoauth_code read_row(pg_store *ps, PGresult *r, int row, bkoauth_token **out, int64_t *id,
                             bkoauth_error *err)
{
    *out = NULL;
    long long rid = strtoll(PQgetvalue(r, row, 0), NULL, 10);
    if (id) *id = rid;
    if (PQgetisnull(r, row, 2) || PQgetisnull(r, row, 7))
        return err_set(err, BKOAUTH_E_STORE, "PostgreSQL token store at %s: row id %lld has an unreadable %s",
                       ps->where, rid, PQgetisnull(r, row, 2) ? "expires" : "created_at");
    *out = token_make(val(r, row, 1), val(r, row, 3), val(r, row, 4), val(r, row, 5), val(r, row, 6),
                      strtoll(PQgetvalue(r, row, 2), NULL, 10), strtoll(PQgetvalue(r, row, 7), NULL, 10));
    return *out ? BKOAUTH_OK : err_nomem(err);
}

/* The lookups, prepared once per connection: the server parses and plans them once. */
enum { P_GET_USER, P_GET_APP, P_COUNT };
static const char *const PREPARED[P_COUNT] = {
    [P_GET_USER] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE env_name = $1 AND user_id = $2 "
                   "ORDER BY isfinite(expires) DESC, expires DESC, id DESC LIMIT 1",
    [P_GET_APP] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE env_name = $1 AND "
                  "(user_id IS NULL OR user_id = '') ORDER BY isfinite(expires) DESC, expires DESC, id DESC "
                  "LIMIT 1",
};

static PGresult *run_prepared(pg_store *ps, pconn *c, int q, int n, const char *const *params,
                              const char *what, bkoauth_error *err)
{
    char name[32];
    snprintf(name, sizeof name, "bkoauth_q%d", q);
    if (!(c->prepared & (1u << q))) {
        PGresult *r = PQprepare(c->pg, name, PREPARED[q], n, NULL);
        int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            pg_error(ps, c->pg, what, err);
            return NULL;
        }
        c->prepared |= 1u << q;
    }
    PGresult *r = PQexecPrepared(c->pg, name, n, params, NULL, NULL, 0);
    if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK) return r;
    pg_error(ps, c->pg, what, err);
    PQclear(r);
    return NULL;
}

/* The row of (env, user): the latest expires, then the highest id, when there are several
 * (readable ones first). BKOAUTH_OK with *out NULL (and *id -1) when none. When only a row that
 * cannot be read is there, a read (overwrite 0) reports it, a save (overwrite 1) gets its id
 * and *out NULL, to replace it in place. */
static bkoauth_code find(pg_store *ps, pconn *c, const char *env_name, const char *user_id,
                         bkoauth_token **out, int64_t *id, int overwrite, bkoauth_error *err)
{
    *out = NULL;
    *id = -1;
    const char *params[2] = {env_name, user_id};
    PGresult *r = run_prepared(ps, c, user_id ? P_GET_USER : P_GET_APP, user_id ? 2 : 1, params,
                               "reading a token", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    bkoauth_code rc = PQntuples(r) > 0 ? read_row(ps, r, 0, out, id, err) : BKOAUTH_OK;
    if (rc == BKOAUTH_E_STORE && overwrite) rc = BKOAUTH_OK; /* *id is the unreadable row's */
    PQclear(r);
    return rc;
}

/* ---- operations ------------------------------------------------------------------------------- */

static bkoauth_code none_saved(const char *env_name, const char *user_id, bkoauth_error *err)
{
    return err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST, "no saved token for %s in env %s",
                   user_id ? user_id : "the APP", env_name);
}

/* Work done on one connection; it leaves no transaction open, whatever it returns. */
typedef bkoauth_code (*conn_work)(pg_store *ps, pconn *c, void *arg, bkoauth_error *err);

/* Runs work on a connection of p; when it failed because the connection broke (a restart, a
 * failover, an idle connection cut), once more on a fresh connection. Only for work that is
 * safe to repeat. */
static bkoauth_code with_conn(pg_store *ps, pool *p, conn_work work, void *arg, bkoauth_error *err)
{
    bkoauth_error local;
    if (err == NULL) err = &local;
    for (int attempt = 0;; attempt++) {
        int fresh = 0;
        pconn *c = take(ps, p, &fresh, err);
        if (c == NULL) return err->code != BKOAUTH_OK ? err->code : BKOAUTH_E_STORE;
        bkoauth_code rc = work(ps, c, arg, err);
        if (rc == BKOAUTH_OK) {
            pool_put(p, c);
            return rc;
        }
        if (!give_back(p, c, fresh) || attempt > 0) return rc;
        atomic_fetch_add(&ps->base.reconnects, 1);
        log_write(ps->base.logger, BKOAUTH_LOG_INFO,
                  "PostgreSQL token store at %s: a connection was broken (%s); trying again on a new one",
                  ps->where, err->message);
    }
}

typedef struct key_arg {
    const char *env_name;
    const char *user_id;
    bkoauth_token **out;
} key_arg;

static bkoauth_code get_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    int64_t id;
    return find(ps, c, a->env_name, a->user_id, a->out, &id, 0, err);
}

static bkoauth_code pg_get(store *base, const char *env_name, const char *user_id, bkoauth_token **out,
                           bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    key_arg a = {env_name, user_id, out};
    bkoauth_code rc = with_conn(ps, &ps->readers, get_work, &a, err);
    if (rc == BKOAUTH_OK && *out == NULL) return none_saved(env_name, user_id, err);
    return rc;
}

static bkoauth_code save(pg_store *ps, pconn *c, int64_t id, const bkoauth_token *t, bkoauth_error *err)
{
    char id_text[24], expires[24], created[24];
    snprintf(id_text, sizeof id_text, "%lld", (long long)id);
    snprintf(expires, sizeof expires, "%lld", (long long)t->expires);
    snprintf(created, sizeof created, "%lld", (long long)(t->created_at ? t->created_at : bk_now()));
    /* a stale row of another key holding this access_token would break the unique constraint:
     * the token now belongs to this row */
    const char *clash[2] = {t->access_token, id_text};
    PGresult *r = run(ps, c, "DELETE FROM bkoauth_access_token WHERE access_token = $1 AND id <> $2::integer",
                      2, clash, PGRES_COMMAND_OK, "saving a token", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    PQclear(r);
    if (id >= 0) {
        const char *p[5] = {t->access_token, expires, t->refresh_token, t->scope, id_text};
        r = run(ps, c,
                "UPDATE bkoauth_access_token SET access_token = $1, expires = to_timestamp($2::bigint), "
                "refresh_token = $3, scope = $4 WHERE id = $5::integer",
                5, p, PGRES_COMMAND_OK, "saving a token", err);
    } else {
        const char *p[7] = {t->access_token, expires,    t->refresh_token, t->scope,
                            t->env_name,     t->user_id, created};
        r = run(ps, c,
                "INSERT INTO bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, "
                "user_id, "
                "created_at, extra) VALUES ($1, to_timestamp($2::bigint), $3, $4, $5, $6, "
                "to_timestamp($7::bigint), NULL)",
                7, p, PGRES_COMMAND_OK, "saving a token", err);
    }
    if (r == NULL) return BKOAUTH_E_STORE;
    PQclear(r);
    return BKOAUTH_OK;
}

/* One short transaction: the key's row now, t saved in it (or in a new row). */
static bkoauth_code save_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    const bkoauth_token *t = arg;
    PGresult *r = run(ps, c, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "saving a token", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    PQclear(r);
    bkoauth_token *current = NULL;
    int64_t id = -1;
    bkoauth_code rc = find(ps, c, t->env_name, t->user_id, &current, &id, 1, err);
    if (rc == BKOAUTH_OK) rc = save(ps, c, id, t, err);
    bkoauth_token_free(current);
    if (rc == BKOAUTH_OK) {
        r = run(ps, c, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "saving a token", err);
        if (r == NULL) rc = BKOAUTH_E_STORE;
        PQclear(r);
    }
    if (rc != BKOAUTH_OK) rollback(c);
    return rc;
}

static bkoauth_code pg_save(store *base, const bkoauth_token *t, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    return with_conn(ps, &ps->writers, save_work, (void *)t, err);
}

/* ---- the renewal lock ------------------------------------------------------------------------- */

/* Runs one lock statement on the lock connection (under lock_mu); a broken connection is
 * reconnected and the statement run once more (the session's locks went with it anyway).
 * Returns the result or NULL with err set. */
static PGresult *lock_statement(pg_store *ps, const char *sql, const char *key, bkoauth_error *err)
{
    const char *params[1] = {key};
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ps->lock_pg == NULL || broken(ps->lock_pg)) {
            if (ps->lock_pg != NULL) atomic_fetch_add(&ps->base.reconnects, 1);
            PQfinish(ps->lock_pg);
            ps->lock_pg = connect_pg(ps);
            if (ps->lock_pg == NULL || PQstatus(ps->lock_pg) != CONNECTION_OK) {
                pg_error(ps, ps->lock_pg, "connecting to lock a token's renewal", err);
                PQfinish(ps->lock_pg);
                ps->lock_pg = NULL;
                return NULL;
            }
            attempt = 1; /* a fresh connection gets no second try */
        }
        PGresult *r = PQexecParams(ps->lock_pg, sql, 1, NULL, params, NULL, NULL, 0);
        if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK) return r;
        pg_error(ps, ps->lock_pg, "locking a token's renewal", err);
        PQclear(r);
        if (PQstatus(ps->lock_pg) == CONNECTION_OK) return NULL;
    }
    return NULL;
}

/* The key of earlier versions' pg_advisory_xact_lock, so that both keep apart. */
static void lock_key(char *buf, size_t size, const char *env_name, const char *user_id)
{
    snprintf(buf, size, "bkoauth_access_token:%s:%s", env_name, user_id ? user_id : "");
}

static bkoauth_code pg_try_lock(store *base, const char *env_name, const char *user_id, int *held,
                                bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    char key[400];
    lock_key(key, sizeof key, env_name, user_id);
    *held = 0;
    pthread_mutex_lock(&ps->lock_mu);
    PGresult *r = lock_statement(ps, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key, err);
    if (r != NULL) *held = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    pthread_mutex_unlock(&ps->lock_mu);
    PQclear(r);
    return r != NULL ? BKOAUTH_OK : BKOAUTH_E_STORE;
}

static void pg_unlock(store *base, const char *env_name, const char *user_id)
{
    pg_store *ps = (pg_store *)base;
    char key[400];
    lock_key(key, sizeof key, env_name, user_id);
    pthread_mutex_lock(&ps->lock_mu);
    /* a connection lost meanwhile took the lock with it: nothing to release then */
    if (ps->lock_pg != NULL && !broken(ps->lock_pg)) {
        const char *params[1] = {key};
        PQclear(PQexecParams(ps->lock_pg, "SELECT pg_advisory_unlock(hashtextextended($1, 0))", 1, NULL,
                             params, NULL, NULL, 0));
    }
    pthread_mutex_unlock(&ps->lock_mu);
}

static bkoauth_code remove_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    const char *params[2] = {a->env_name, a->user_id};
    PGresult *r = run(ps, c,
                      a->user_id ? "DELETE FROM bkoauth_access_token WHERE env_name = $1 AND user_id = $2"
                                 : "DELETE FROM bkoauth_access_token WHERE env_name = $1 AND "
                                   "(user_id IS NULL OR user_id = '')",
                      a->user_id ? 2 : 1, params, PGRES_COMMAND_OK, "deleting a token", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    int deleted = atoi(PQcmdTuples(r));
    PQclear(r);
    return deleted > 0 ? BKOAUTH_OK : none_saved(a->env_name, a->user_id, err);
}

static bkoauth_code pg_remove(store *base, const char *env_name, const char *user_id, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    key_arg a = {env_name, user_id, NULL};
    return with_conn(ps, &ps->writers, remove_work, &a, err);
}

typedef struct list_arg {
    bkoauth_token ***out;
    int64_t **ids;
    size_t *count;
    const bk_logger *logger;
} list_arg;

static bkoauth_code list_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    list_arg *a = arg;
    PGresult *r =
        run(ps, c,
            "SELECT " COLUMNS " FROM bkoauth_access_token ORDER BY (user_id IS NOT NULL AND user_id <> ''), "
            "user_id, env_name, id",
            0, NULL, PGRES_TUPLES_OK, "listing tokens", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    store_rows rows = {0};
    bkoauth_code rc = BKOAUTH_OK;
    for (int i = 0; rc == BKOAUTH_OK && i < PQntuples(r); i++) {
        bkoauth_error why;
        if ((rc = store_rows_room(&rows, err)) != BKOAUTH_OK) break;
        rc = read_row(ps, r, i, &rows.items[rows.count], &rows.ids[rows.count], &why);
        rc = store_rows_keep(&rows, a->logger, rc, rc == BKOAUTH_E_STORE, &why, err);
    }
    PQclear(r);
    return store_rows_finish(&rows, rc, a->out, a->ids, a->count);
}

static bkoauth_code pg_list(store *base, bkoauth_token ***out, int64_t **ids, size_t *count,
                            bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    list_arg a = {out, ids, count, ps->base.logger};
    return with_conn(ps, &ps->readers, list_work, &a, err);
}

static void pg_close(store *base)
{
    pg_store *ps = (pg_store *)base;
    pool_destroy(&ps->readers);
    pool_destroy(&ps->writers);
    PQfinish(ps->lock_pg);
    pthread_mutex_destroy(&ps->lock_mu);
    bkoauth__free(ps);
}

static void pg_after_fork(store *base)
{
    pg_store *ps = (pg_store *)base;
    pool_after_fork(&ps->readers);
    pool_after_fork(&ps->writers);
    /* PQfinish would end the parent's session (and its advisory locks): left as it is */
    ps->lock_pg = NULL;
    pthread_mutex_init(&ps->lock_mu, NULL);
}

typedef struct names_arg {
    char *names;
    size_t size;
} names_arg;

static bkoauth_code migrations_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    names_arg *a = arg;
    a->names[0] = '\0';
    PGresult *r = run(ps, c, "SELECT to_regclass('django_migrations') IS NOT NULL", 0, NULL, PGRES_TUPLES_OK,
                      "looking for the table django_migrations", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    int present = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!present) return BKOAUTH_OK;
    const char *params[1] = {STORE_DJANGO_APP};
    r = run(ps, c, "SELECT name FROM django_migrations WHERE app = $1 ORDER BY name", 1, params,
            PGRES_TUPLES_OK, "reading the table django_migrations", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    for (int i = 0; i < PQntuples(r); i++)
        store_names_add(a->names, a->size, PQgetvalue(r, i, 0));
    PQclear(r);
    return BKOAUTH_OK;
}

/* The Django migrations recorded for the table (store.h), django_migrations found on the
 * search_path as Django finds it. */
static bkoauth_code pg_django_migrations(store *base, char *names, size_t size, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    names_arg a = {names, size};
    return with_conn(ps, &ps->readers, migrations_work, &a, err);
}

static const store_ops PG_OPS = {
    pg_get,        pg_try_lock,          pg_unlock,   pg_save, pg_remove, pg_list, pg_close,
    pg_after_fork, pg_django_migrations, "postgresql"};
/* ---- opening ---------------------------------------------------------------------------------- */

/* One statement of the schema's transaction: 0, or -1 with err set and the transaction rolled back. */
static int schema_step(pg_store *ps, pconn *c, const char *sql, const char *what, bkoauth_error *err)
{
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return 0;
    pg_error(ps, c->pg, what, err);
    rollback(c);
    return -1;
}

/* The table's indexes as Django 3.2's three bkoauth migrations leave them on PostgreSQL: the
 * column's index and its varchar_pattern_ops "_like" twin, with Django's names (table, column and
 * the first 8 hex digits of their MD5), so that a Django app taking the table over records it with
 * `migrate bkoauth --fake` and finds nothing to do. */
static const char *const DJANGO_INDEXES[] = {
    "CREATE INDEX \"bkoauth_access_token_access_token_ea825b48_like\" ON \"bkoauth_access_token\" "
    "(\"access_token\" varchar_pattern_ops)",
    "CREATE INDEX \"bkoauth_access_token_env_name_736cbdc5\" ON \"bkoauth_access_token\" (\"env_name\")",
    "CREATE INDEX \"bkoauth_access_token_env_name_736cbdc5_like\" ON \"bkoauth_access_token\" "
    "(\"env_name\" varchar_pattern_ops)",
    "CREATE INDEX \"bkoauth_access_token_user_id_a4b1d1f5\" ON \"bkoauth_access_token\" (\"user_id\")",
    "CREATE INDEX \"bkoauth_access_token_user_id_a4b1d1f5_like\" ON \"bkoauth_access_token\" "
    "(\"user_id\" varchar_pattern_ops)",
};

/* A table another program made: the columns the library needs must be there. */
static bkoauth_code check_columns(pg_store *ps, pconn *c, bkoauth_error *err)
{
    PGresult *r =
        PQexec(c->pg, "SELECT string_agg(w.c, ', ') FROM unnest(ARRAY['id', 'access_token', 'expires', "
                      "'refresh_token', 'scope', 'env_name', 'user_id', 'created_at']) AS w(c) "
                      "WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns i WHERE "
                      "i.table_name = 'bkoauth_access_token' AND i.table_schema = current_schema() "
                      "AND i.column_name = w.c)");
    bkoauth_code rc = BKOAUTH_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pg_error(ps, c->pg, "checking the table's columns", err);
    else if (!PQgetisnull(r, 0, 0))
        rc = err_set(err, BKOAUTH_E_STORE,
                     "PostgreSQL token store at %s: the table bkoauth_access_token has no column %s; it is "
                     "not the bkoauth table",
                     ps->where, PQgetvalue(r, 0, 0));
    PQclear(r);
    if (rc != BKOAUTH_OK) rollback(c);
    return rc;
}

/* A table another program made without an index on env_name or user_id: one is added under a
 * name of libbkoauth's own, so that a later Django migration adding its own does not collide. */
static bkoauth_code add_missing_indexes(pg_store *ps, pconn *c, bkoauth_error *err)
{
    static const char *const columns[] = {"env_name", "user_id"};
    for (size_t i = 0; i < 2; i++) {
        char sql_idx[512];
        snprintf(sql_idx, sizeof sql_idx,
                 "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = "
                 "x.indrelid AND a.attnum = x.indkey[0] WHERE x.indrelid = 'bkoauth_access_token'::regclass "
                 "AND a.attname = '%s') THEN CREATE INDEX \"bkoauth_access_token_%s\" ON "
                 "\"bkoauth_access_token\" (\"%s\"); END IF; END $$",
                 columns[i], columns[i], columns[i]);
        if (schema_step(ps, c, sql_idx, "creating an index", err) != 0) return BKOAUTH_E_STORE;
    }
    return BKOAUTH_OK;
}

static bkoauth_code create_schema(pg_store *ps, pconn *c, bkoauth_error *err)
{
    /* one creator at a time across processes; Django's own table is used as it is */
    if (schema_step(ps, c, "BEGIN", "creating the table bkoauth_access_token", err) != 0 ||
        schema_step(ps, c, "SELECT pg_advisory_xact_lock(hashtextextended('bkoauth_access_token:schema', 0))",
                    "creating the table bkoauth_access_token", err) != 0)
        return BKOAUTH_E_STORE;
    PGresult *r = PQexec(c->pg, "SELECT to_regclass('bkoauth_access_token') IS NULL");
    int looked = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    int absent = looked && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!looked) {
        pg_error(ps, c->pg, "looking for the table bkoauth_access_token", err);
        rollback(c);
        return BKOAUTH_E_STORE;
    }
    if (absent) {
        if (schema_step(ps, c, CREATE_TABLE, "creating the table bkoauth_access_token", err) != 0)
            return BKOAUTH_E_STORE;
        for (size_t i = 0; i < sizeof DJANGO_INDEXES / sizeof DJANGO_INDEXES[0]; i++)
            if (schema_step(ps, c, DJANGO_INDEXES[i], "creating an index", err) != 0) return BKOAUTH_E_STORE;
    } else if (check_columns(ps, c, err) != BKOAUTH_OK || add_missing_indexes(ps, c, err) != BKOAUTH_OK) {
        return BKOAUTH_E_STORE;
    }
    r = PQexec(c->pg, "COMMIT");
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    return st == PGRES_COMMAND_OK ? BKOAUTH_OK : pg_error(ps, c->pg, "creating the table", err);
}

/* The table and its indexes, created only when missing: a database that has them (the usual
 * case) is only read, so opening a client takes no lock and writes nothing. */
static bkoauth_code prepare_schema(pg_store *ps, pconn *c, bkoauth_error *err)
{
    PGresult *r = PQexec(
        c->pg,
        "SELECT (SELECT count(DISTINCT a.attname) FROM pg_index x JOIN pg_attribute a ON "
        "a.attrelid = x.indrelid AND a.attnum = x.indkey[0] WHERE x.indrelid = "
        "to_regclass('bkoauth_access_token') AND a.attname IN ('env_name', 'user_id')) = 2 AND "
        "(SELECT count(*) FROM information_schema.columns i WHERE i.table_name = 'bkoauth_access_token' "
        "AND i.table_schema = current_schema() AND i.column_name IN ('id', 'access_token', 'expires', "
        "'refresh_token', 'scope', 'env_name', 'user_id', 'created_at')) = 8");
    int ready =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return ready ? BKOAUTH_OK : create_schema(ps, c, err);
}

store *store_postgres_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    pg_store *ps = bkoauth__calloc(1, sizeof *ps);
    if (ps == NULL) {
        err_nomem(err);
        return NULL;
    }
    ps->base.ops = &PG_OPS;
    ps->base.logger = logger;
    ps->s = s;
    pthread_mutex_init(&ps->lock_mu, NULL);
    /* BKOAUTH_DB_CONNECTIONS: one for locks, a quarter of the rest for writes, the others reads */
    int n = store_connections(s), writers = (n - 1) / 4 > 0 ? (n - 1) / 4 : 1;
    if (pool_init(&ps->readers, n - 1 - writers, pconn_open, pconn_close, ps) != 0 ||
        pool_init(&ps->writers, writers, pconn_open, pconn_close, ps) != 0) {
        err_nomem(err);
        pg_close(&ps->base);
        return NULL;
    }
    snprintf(ps->where, sizeof ps->where, "%s", "the BKOAUTH_DATABASE_URL server");
    /* where, for messages: from libpq's view of the URL, which never includes the password */
    PQconninfoOption *opts = PQconninfoParse(s->database_url, NULL);
    if (opts == NULL) {
        err_set(err, BKOAUTH_E_CONFIG, "BKOAUTH_DATABASE_URL is not a valid PostgreSQL URL");
        pg_close(&ps->base);
        return NULL;
    }
    const char *host = NULL, *port = NULL, *db = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && host == NULL))
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    snprintf(ps->where, sizeof ps->where, "%s:%s/%s", host ? host : "localhost", port ? port : "5432",
             db ? db : "(default database)");
    PQconninfoFree(opts);
    pconn *c = pool_get(&ps->readers, NULL, err);
    if (c == NULL) {
        pg_close(&ps->base);
        return NULL;
    }
    bkoauth_code rc = prepare_schema(ps, c, err);
    if (PQstatus(c->pg) == CONNECTION_OK)
        pool_put(&ps->readers, c);
    else
        pool_discard(&ps->readers, c);
    if (rc != BKOAUTH_OK) {
        pg_close(&ps->base);
        return NULL;
    }
    log_write(logger, BKOAUTH_LOG_DEBUG, "token store: PostgreSQL at %s ready", ps->where);
    return &ps->base;
}
