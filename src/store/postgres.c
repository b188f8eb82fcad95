/* postgres.c - the token table in PostgreSQL, as Django's PostgreSQL backend creates it, shared
 * by many processes and hosts.
 *
 * A small pool of connections serves the threads of a process. A broken connection is reset on
 * its next use, so a client outlives a database restart; a call made while the database is
 * down fails with BKOAUTH_E_STORE and changes nothing. Renewal runs in a transaction holding an
 * advisory lock on the row's key (pg_advisory_xact_lock), so one renewer at a time, on any host,
 * re-reads the row and decides; the lock goes with the transaction, even when a process dies. */
#include "store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_POOL_MAX 8

#define COLUMNS                                                                                              \
    "id, access_token, extract(epoch from expires)::bigint, refresh_token, scope, env_name, user_id, "       \
    "extract(epoch from created_at)::bigint"

static const char *const CREATE_TABLE = "CREATE TABLE IF NOT EXISTS \"bkoauth_access_token\" ("
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
    struct pconn *next;
} pconn;

typedef struct pg_store {
    store base;
    const bk_settings *s;
    char where[160]; /* host:port/db for messages, never a password */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pconn *idle;
    int opened;
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

/* A connection that works, or NULL with err set. Resets a broken one. */
static pconn *pool_get(pg_store *ps, bkoauth_error *err)
{
    pthread_mutex_lock(&ps->mu);
    while (ps->idle == NULL && ps->opened >= PG_POOL_MAX)
        pthread_cond_wait(&ps->cv, &ps->mu);
    pconn *c = ps->idle;
    if (c != NULL)
        ps->idle = c->next;
    else
        ps->opened++;
    pthread_mutex_unlock(&ps->mu);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c != NULL) c->pg = connect_pg(ps);
    } else if (PQstatus(c->pg) != CONNECTION_OK) {
        PQreset(c->pg);
        c->prepared = 0; /* a new session has none */
    }
    if (c != NULL && c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK) return c;
    if (c == NULL)
        err_nomem(err);
    else
        pg_error(ps, c->pg, "connecting", err);
    /* keep the broken connection in the pool: its next use resets it */
    if (c != NULL && c->pg != NULL) {
        pthread_mutex_lock(&ps->mu);
        c->next = ps->idle;
        ps->idle = c;
        pthread_cond_signal(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
    } else {
        if (c != NULL) free(c);
        pthread_mutex_lock(&ps->mu);
        ps->opened--;
        pthread_cond_signal(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
    }
    return NULL;
}

static void pool_put(pg_store *ps, pconn *c)
{
    pthread_mutex_lock(&ps->mu);
    c->next = ps->idle;
    ps->idle = c;
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
}

/* Runs sql with text parameters; returns the result when its status is want, else NULL with
 * err set (the result cleared). */
static PGresult *run(pg_store *ps, pconn *c, const char *sql, int n, const char *const *params,
                     ExecStatusType want, const char *what, bkoauth_error *err)
{
    PGresult *r = PQexecParams(c->pg, sql, n, NULL, params, NULL, NULL, 0);
    if (r != NULL && PQresultStatus(r) == want) return r;
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

static bkoauth_code read_row(PGresult *r, int row, bkoauth_token **out, int64_t *id, bkoauth_error *err)
{
    if (id) *id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
    *out = token_make(val(r, row, 1), val(r, row, 3), val(r, row, 4), val(r, row, 5), val(r, row, 6),
                      strtoll(PQgetvalue(r, row, 2), NULL, 10), strtoll(PQgetvalue(r, row, 7), NULL, 10));
    return *out ? BKOAUTH_OK : err_nomem(err);
}

/* The lookups, prepared once per connection: the server parses and plans them once. */
enum { P_GET_USER, P_GET_APP, P_COUNT };
static const char *const PREPARED[P_COUNT] = {
    [P_GET_USER] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE env_name = $1 AND user_id = $2 "
                   "ORDER BY expires DESC, id DESC LIMIT 1",
    [P_GET_APP] = "SELECT " COLUMNS " FROM bkoauth_access_token WHERE env_name = $1 AND "
                  "(user_id IS NULL OR user_id = '') ORDER BY expires DESC, id DESC LIMIT 1",
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

/* The row of (env, user): the latest expires, then the highest id, when there are several.
 * BKOAUTH_OK with *out NULL when none. */
static bkoauth_code find(pg_store *ps, pconn *c, const char *env_name, const char *user_id,
                         bkoauth_token **out, int64_t *id, bkoauth_error *err)
{
    *out = NULL;
    const char *params[2] = {env_name, user_id};
    PGresult *r = run_prepared(ps, c, user_id ? P_GET_USER : P_GET_APP, user_id ? 2 : 1, params,
                               "reading a token", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    bkoauth_code rc = PQntuples(r) > 0 ? read_row(r, 0, out, id, err) : BKOAUTH_OK;
    PQclear(r);
    return rc;
}

/* ---- operations ------------------------------------------------------------------------------- */

static bkoauth_code none_saved(const char *env_name, const char *user_id, bkoauth_error *err)
{
    return err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST, "no saved token for %s in env %s",
                   user_id ? user_id : "the APP", env_name);
}

static bkoauth_code pg_get(store *base, const char *env_name, const char *user_id, bkoauth_token **out,
                           bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    pconn *c = pool_get(ps, err);
    if (c == NULL) return BKOAUTH_E_STORE;
    int64_t id;
    bkoauth_code rc = find(ps, c, env_name, user_id, out, &id, err);
    pool_put(ps, c);
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

static bkoauth_code pg_renew(store *base, const char *env_name, const char *user_id, store_renew_fn fn,
                             void *ctx, bkoauth_token **out, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    pconn *c = pool_get(ps, err);
    if (c == NULL) return BKOAUTH_E_STORE;
    char key[400];
    snprintf(key, sizeof key, "bkoauth_access_token:%s:%s", env_name, user_id ? user_id : "");
    const char *kp[1] = {key};
    PGresult *r = run(ps, c, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "starting a renewal", err);
    PQclear(r);
    if (r != NULL) {
        r = run(ps, c, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", 1, kp, PGRES_TUPLES_OK,
                "locking the token row", err);
        PQclear(r);
    }
    if (r == NULL) {
        rollback(c);
        pool_put(ps, c);
        return BKOAUTH_E_STORE;
    }
    bkoauth_token *current = NULL, *fresh = NULL;
    int64_t id = -1;
    bkoauth_code rc = find(ps, c, env_name, user_id, &current, &id, err);
    if (rc == BKOAUTH_OK) rc = fn(ctx, current, &fresh, err);
    if (rc == BKOAUTH_OK && fresh == NULL && current == NULL) rc = none_saved(env_name, user_id, err);
    if (rc == BKOAUTH_OK && fresh != NULL) {
        if (current != NULL) fresh->created_at = current->created_at;
        rc = save(ps, c, current ? id : -1, fresh, err);
    }
    if (rc == BKOAUTH_OK) {
        r = run(ps, c, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "saving a token", err);
        if (r == NULL) rc = BKOAUTH_E_STORE;
        PQclear(r);
    }
    if (rc != BKOAUTH_OK) {
        rollback(c);
        pool_put(ps, c);
        bkoauth_token_free(current);
        bkoauth_token_free(fresh);
        return rc;
    }
    pool_put(ps, c);
    if (fresh != NULL) {
        bkoauth_token_free(current);
        *out = fresh;
    } else {
        *out = current;
    }
    return BKOAUTH_OK;
}

static bkoauth_code pg_remove(store *base, const char *env_name, const char *user_id, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    pconn *c = pool_get(ps, err);
    if (c == NULL) return BKOAUTH_E_STORE;
    const char *params[2] = {env_name, user_id};
    PGresult *r = run(ps, c,
                      user_id ? "DELETE FROM bkoauth_access_token WHERE env_name = $1 AND user_id = $2"
                              : "DELETE FROM bkoauth_access_token WHERE env_name = $1 AND "
                                "(user_id IS NULL OR user_id = '')",
                      user_id ? 2 : 1, params, PGRES_COMMAND_OK, "deleting a token", err);
    pool_put(ps, c);
    if (r == NULL) return BKOAUTH_E_STORE;
    int deleted = atoi(PQcmdTuples(r));
    PQclear(r);
    return deleted > 0 ? BKOAUTH_OK : none_saved(env_name, user_id, err);
}

static bkoauth_code pg_list(store *base, bkoauth_token ***out, size_t *count, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    pconn *c = pool_get(ps, err);
    if (c == NULL) return BKOAUTH_E_STORE;
    PGresult *r =
        run(ps, c,
            "SELECT " COLUMNS " FROM bkoauth_access_token ORDER BY (user_id IS NOT NULL AND user_id <> ''), "
            "user_id, env_name, id",
            0, NULL, PGRES_TUPLES_OK, "listing tokens", err);
    pool_put(ps, c);
    if (r == NULL) return BKOAUTH_E_STORE;
    int n = PQntuples(r);
    bkoauth_token **items = calloc((size_t)n + 1, sizeof *items);
    bkoauth_code rc = items ? BKOAUTH_OK : err_nomem(err);
    int got = 0;
    for (; rc == BKOAUTH_OK && got < n; got++)
        rc = read_row(r, got, &items[got], NULL, err);
    PQclear(r);
    if (rc != BKOAUTH_OK) {
        bkoauth_tokens_free(items, (size_t)got);
        return rc;
    }
    *out = items;
    *count = (size_t)n;
    return BKOAUTH_OK;
}

static void pg_close(store *base)
{
    pg_store *ps = (pg_store *)base;
    while (ps->idle) {
        pconn *c = ps->idle;
        ps->idle = c->next;
        PQfinish(c->pg);
        free(c);
    }
    pthread_mutex_destroy(&ps->mu);
    pthread_cond_destroy(&ps->cv);
    free(ps);
}

static const store_ops PG_OPS = {pg_get, pg_renew, pg_remove, pg_list, pg_close};

/* ---- opening ---------------------------------------------------------------------------------- */

static bkoauth_code prepare_schema(pg_store *ps, pconn *c, bkoauth_error *err)
{
    /* one creator at a time across processes; Django's own table is used as it is */
    const char *sql[] = {"BEGIN",
                         "SELECT pg_advisory_xact_lock(hashtextextended('bkoauth_access_token:schema', 0))",
                         CREATE_TABLE};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        PGresult *r = PQexec(c->pg, sql[i]);
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            pg_error(ps, c->pg, "creating the table bkoauth_access_token", err);
            rollback(c);
            return BKOAUTH_E_STORE;
        }
    }
    /* the columns the library needs */
    PGresult *r =
        PQexec(c->pg, "SELECT string_agg(w.c, ', ') FROM unnest(ARRAY['id', 'access_token', 'expires', "
                      "'refresh_token', 'scope', 'env_name', 'user_id', 'created_at']) AS w(c) "
                      "WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns i WHERE "
                      "i.table_name = 'bkoauth_access_token' AND i.table_schema = current_schema() "
                      "AND i.column_name = w.c)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        pg_error(ps, c->pg, "checking the table's columns", err);
        rollback(c);
        return BKOAUTH_E_STORE;
    }
    if (!PQgetisnull(r, 0, 0)) {
        err_set(
            err, BKOAUTH_E_STORE,
            "PostgreSQL token store at %s: the table bkoauth_access_token has no column %s; it is not the "
            "bkoauth table",
            ps->where, PQgetvalue(r, 0, 0));
        PQclear(r);
        rollback(c);
        return BKOAUTH_E_STORE;
    }
    PQclear(r);
    /* an index on each key column, unless one exists (Django names its own) */
    static const char *const columns[] = {"env_name", "user_id"};
    for (size_t i = 0; i < 2; i++) {
        char sql_idx[512];
        snprintf(sql_idx, sizeof sql_idx,
                 "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = "
                 "x.indrelid "
                 "AND a.attnum = x.indkey[0] WHERE x.indrelid = 'bkoauth_access_token'::regclass AND "
                 "a.attname = '%s') "
                 "THEN CREATE INDEX \"bkoauth_access_token_%s\" ON \"bkoauth_access_token\" (\"%s\"); END "
                 "IF; END $$",
                 columns[i], columns[i], columns[i]);
        r = PQexec(c->pg, sql_idx);
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK) {
            pg_error(ps, c->pg, "creating an index", err);
            rollback(c);
            return BKOAUTH_E_STORE;
        }
    }
    r = PQexec(c->pg, "COMMIT");
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    return st == PGRES_COMMAND_OK ? BKOAUTH_OK : pg_error(ps, c->pg, "creating the table", err);
}

store *store_postgres_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    pg_store *ps = calloc(1, sizeof *ps);
    if (ps == NULL) {
        err_nomem(err);
        return NULL;
    }
    ps->base.ops = &PG_OPS;
    ps->base.logger = logger;
    ps->s = s;
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->cv, NULL);
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
    pconn *c = pool_get(ps, err);
    if (c == NULL) {
        pg_close(&ps->base);
        return NULL;
    }
    bkoauth_code rc = prepare_schema(ps, c, err);
    pool_put(ps, c);
    if (rc != BKOAUTH_OK) {
        pg_close(&ps->base);
        return NULL;
    }
    log_write(logger, BKOAUTH_LOG_DEBUG, "token store: PostgreSQL at %s ready", ps->where);
    return &ps->base;
}
