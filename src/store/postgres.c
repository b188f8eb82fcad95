/* SPDX-License-Identifier: MIT */
/* postgres.c - the token table in PostgreSQL, as Django's PostgreSQL backend creates it, shared
 * by many processes and hosts, directly or through a pooler such as PgBouncer in any pool mode.
 *
 * Connections (postgres_conn.c): a read pool and a write pool (saves, deletes and the renewal
 * leases). Nothing
 * relies on a session outliving one statement, so that a pooler may run each statement on
 * another server connection: no startup options (a pooler refuses them), no named prepared
 * statements (each statement is sent with its parameters, unnamed), every write one autocommit
 * statement (a statement-mode pooler refuses transactions of several statements).
 *
 * The renewal lock across processes and hosts is a lease: a row of bkoauth_renewal_lease
 * (lock_key, holder, until) taken by one INSERT .. ON CONFLICT DO UPDATE when absent or expired,
 * released by one DELETE of the holder's own row (postgres_lease.c). It expires after the
 * longest a holder may need (store_hold_ms), on the server's clock, so a crashed holder blocks
 * its key for at most one renewal; a holder on this host found dead is taken over at once.
 *
 * Restarts: a pooled connection found broken (checked before use without a round trip, by the
 * failure of a statement, or by an error saying the session is gone, as a pooler says when the
 * server behind it went away) is connected again in place (PQreset), every idle one of its pool
 * marked stale (after a restart they all are; each is connected again when next taken), and the
 * work, when safe to repeat, is done once more on the new session; so the first call after the
 * server or the pooler is back succeeds. */
#include "postgres_int.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
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

/* The rows of a key: $1 env_name, $2 user_id (the APP: user_id NULL or ''). */
#define KEY_USER(E, U) "env_name = " E " AND user_id = " U
#define KEY_APP(E) "env_name = " E " AND (user_id IS NULL OR user_id = '')"
/* The row of a key that is read and saved: the latest expires, then the highest id, readable
 * ones first. */
#define KEY_ORDER " ORDER BY isfinite(expires) DESC, expires DESC, id DESC LIMIT 1"

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

/* ---- rows ------------------------------------------------------------------------------------- */

static const char *val(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* The token of a result row. A datetime that is not finite is BKOAUTH_E_STORE naming the row. */
static bkoauth_code read_row(pg_store *ps, const PGresult *r, int row, bkoauth_token **out, int64_t *id,
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

/* ---- operations ------------------------------------------------------------------------------- */

static bkoauth_code none_saved(const char *env_name, const char *user_id, bkoauth_error *err)
{
    return err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST, "no saved token for %s in env %s",
                   user_id ? user_id : "the APP", env_name);
}

typedef struct key_arg {
    const char *env_name;
    const char *user_id;
    bkoauth_token **out;
} key_arg;

/* The row of the key (KEY_ORDER); BKOAUTH_OK with *out NULL when none. Each lookup is sent with
 * its parameters as an unnamed statement: a named prepared statement lives in one server
 * session, which a pooler in transaction or statement mode does not keep for us. */
static bkoauth_code get_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    *a->out = NULL;
    const char *params[2] = {a->env_name, a->user_id};
    PGresult *r = bk_pg_run(
        ps, c,
        a->user_id ? "SELECT " COLUMNS " FROM bkoauth_access_token WHERE " KEY_USER("$1", "$2") KEY_ORDER
                   : "SELECT " COLUMNS " FROM bkoauth_access_token WHERE " KEY_APP("$1") KEY_ORDER,
        a->user_id ? 2 : 1, params, PGRES_TUPLES_OK, "reading a token", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    int64_t id;
    bkoauth_code rc = PQntuples(r) > 0 ? read_row(ps, r, 0, a->out, &id, err) : BKOAUTH_OK;
    PQclear(r);
    return rc;
}

static bkoauth_code pg_get(store *base, const char *env_name, const char *user_id, bkoauth_token **out,
                           bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    key_arg a = {env_name, user_id, out};
    bkoauth_code rc = bk_pg_with_conn(ps, &ps->readers, get_work, &a, err);
    if (rc == BKOAUTH_OK && *out == NULL) return none_saved(env_name, user_id, err);
    return rc;
}

/* The save, one statement (so that it is one autocommit transaction, which every pool mode runs
 * on one server connection): the key's row (KEY_ORDER, readable or not) locked, a stale row of
 * another key holding this access_token deleted (the unique constraint: the token now belongs
 * to this key), then the row updated in place (keeping id and created_at) or, when the key has
 * none, a row inserted. The scalar subqueries on clash make the delete run first.
 * $1 access_token, $2 expires, $3 refresh_token, $4 scope, $5 env_name, $6 user_id,
 * $7 created_at (epoch seconds). */
#define SAVE_SQL(KEY)                                                                                        \
    "WITH target AS (SELECT id FROM bkoauth_access_token WHERE " KEY KEY_ORDER " FOR UPDATE), "              \
    "clash AS (DELETE FROM bkoauth_access_token WHERE access_token = $1::varchar AND id NOT IN "             \
    "(SELECT id FROM target) RETURNING id), "                                                                \
    "updated AS (UPDATE bkoauth_access_token t SET access_token = $1::varchar, expires = "                   \
    "to_timestamp($2::bigint), refresh_token = $3::varchar, scope = $4::text FROM target WHERE t.id = "      \
    "target.id AND (SELECT count(*) FROM clash) >= 0 RETURNING t.id) "                                       \
    "INSERT INTO bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, user_id, "     \
    "created_at, extra) SELECT $1::varchar, to_timestamp($2::bigint), $3::varchar, $4::text, $5::varchar, "  \
    "$6::varchar, to_timestamp($7::bigint), NULL WHERE NOT EXISTS (SELECT 1 FROM target) AND "               \
    "(SELECT count(*) FROM clash) >= 0"

static bkoauth_code save_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    const bkoauth_token *t = arg;
    char expires[24], created[24];
    snprintf(expires, sizeof expires, "%lld", (long long)t->expires);
    snprintf(created, sizeof created, "%lld", (long long)(t->created_at ? t->created_at : bk_now()));
    const char *p[7] = {t->access_token, expires,    t->refresh_token, t->scope,
                        t->env_name,     t->user_id, created};
    PGresult *r = bk_pg_run(ps, c,
                            t->user_id ? SAVE_SQL(KEY_USER("$5::varchar", "$6::varchar"))
                                       : SAVE_SQL(KEY_APP("$5::varchar")),
                            7, p, PGRES_COMMAND_OK, "saving a token", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    PQclear(r);
    return BKOAUTH_OK;
}

static bkoauth_code pg_save(store *base, const bkoauth_token *t, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    return bk_pg_with_conn(ps, &ps->writers, save_work, (void *)t, err);
}

static bkoauth_code remove_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    const char *params[2] = {a->env_name, a->user_id};
    PGresult *r =
        bk_pg_run(ps, c,
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
    return bk_pg_with_conn(ps, &ps->writers, remove_work, &a, err);
}

typedef struct list_arg {
    bkoauth_token ***out;
    int64_t **ids;
    size_t *count;
    const bk_logger *logger;
} list_arg;

typedef struct list_rows {
    pg_store *ps;
    list_arg *a;
    store_rows rows;
    bkoauth_code rc;
    bkoauth_error *err;
} list_rows;

static int list_row(void *arg, const PGresult *r, int i)
{
    list_rows *l = arg;
    bkoauth_error why;
    if ((l->rc = store_rows_room(&l->rows, l->err)) != BKOAUTH_OK) return -1;
    bkoauth_code rc = read_row(l->ps, r, i, &l->rows.items[l->rows.count], &l->rows.ids[l->rows.count], &why);
    l->rc = store_rows_keep(&l->rows, l->a->logger, rc, rc == BKOAUTH_E_STORE, &why, l->err);
    return l->rc == BKOAUTH_OK ? 0 : -1;
}

/* The rows come one at a time (bk_pg_run_rows): a list of every user's token in one result would
 * be as big again as the list itself, in the listing thread's heap. */
static bkoauth_code list_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    list_rows l = {ps, arg, {0}, BKOAUTH_OK, err};
    PGresult *r = bk_pg_run_rows(
        ps, c,
        "SELECT " COLUMNS " FROM bkoauth_access_token ORDER BY (user_id IS NOT NULL AND user_id <> ''), "
        "user_id, env_name, id",
        0, NULL, PGRES_TUPLES_OK, "listing tokens", list_row, &l, err);
    bkoauth_code rc = r == NULL ? BKOAUTH_E_STORE : l.rc;
    PQclear(r);
    return store_rows_finish(&l.rows, rc, l.a->out, l.a->ids, l.a->count);
}

static bkoauth_code pg_list(store *base, bkoauth_token ***out, int64_t **ids, size_t *count,
                            bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    list_arg a = {out, ids, count, ps->base.logger};
    return bk_pg_with_conn(ps, &ps->readers, list_work, &a, err);
}

static void pg_close(store *base)
{
    pg_store *ps = (pg_store *)base;
    pool_destroy(&ps->readers);
    pool_destroy(&ps->writers);
    bkoauth__free(ps);
}

static void pg_after_fork(store *base)
{
    pg_store *ps = (pg_store *)base;
    pool_after_fork(&ps->readers);
    pool_after_fork(&ps->writers);
    bk_pg_lease_identity(ps); /* leases taken here name this process */
}

typedef struct names_arg {
    char *names;
    size_t size;
} names_arg;

static bkoauth_code migrations_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    names_arg *a = arg;
    a->names[0] = '\0';
    PGresult *r = bk_pg_run(ps, c, "SELECT to_regclass('django_migrations') IS NOT NULL", 0, NULL,
                            PGRES_TUPLES_OK, "looking for the table django_migrations", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    int present = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!present) return BKOAUTH_OK;
    const char *params[1] = {STORE_DJANGO_APP};
    r = bk_pg_run(ps, c, "SELECT name FROM django_migrations WHERE app = $1 ORDER BY name", 1, params,
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
    return bk_pg_with_conn(ps, &ps->readers, migrations_work, &a, err);
}

static const store_ops PG_OPS = {
    pg_get,   bk_pg_try_lock, bk_pg_unlock,         pg_save,     pg_remove, pg_list,
    pg_close, pg_after_fork,  pg_django_migrations, "postgresql"};
/* ---- opening ---------------------------------------------------------------------------------- */

/* Runs one statement of the schema's creation; BKOAUTH_OK or err set. */
static bkoauth_code schema_statement(pg_store *ps, pconn *c, const char *sql, const char *what,
                                     bkoauth_error *err)
{
    PGresult *r = bk_pg_run(ps, c, sql, 0, NULL, PGRES_COMMAND_OK, what, err);
    PQclear(r);
    return r != NULL ? BKOAUTH_OK : BKOAUTH_E_STORE;
}

/* Each step is one statement (a DO block holding the creators' transaction lock, one creator at
 * a time across processes), so that it runs through a pooler in any mode. */
#define SCHEMA_LOCK "PERFORM pg_advisory_xact_lock(hashtextextended('bkoauth_access_token:schema', 0)); "
#define INDEX_IF_MISSING(C)                                                                                  \
    "IF NOT EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum "   \
    "= x.indkey[0] WHERE x.indrelid = 'bkoauth_access_token'::regclass AND a.attname = '" C "') THEN "       \
    "CREATE INDEX \"bkoauth_access_token_" C "\" ON \"bkoauth_access_token\" (\"" C "\"); END IF; "

/* A new table gets the indexes Django 3.2's three bkoauth migrations leave on PostgreSQL: the
 * column's index and its varchar_pattern_ops "_like" twin, with Django's names (table, column and
 * the first 8 hex digits of their MD5), so that a Django app taking the table over records it with
 * `migrate bkoauth --fake` and finds nothing to do. */
#define DJANGO_INDEXES                                                                                       \
    "CREATE INDEX \"bkoauth_access_token_access_token_ea825b48_like\" ON \"bkoauth_access_token\" "          \
    "(\"access_token\" varchar_pattern_ops); "                                                               \
    "CREATE INDEX \"bkoauth_access_token_env_name_736cbdc5\" ON \"bkoauth_access_token\" (\"env_name\"); "   \
    "CREATE INDEX \"bkoauth_access_token_env_name_736cbdc5_like\" ON \"bkoauth_access_token\" "              \
    "(\"env_name\" varchar_pattern_ops); "                                                                   \
    "CREATE INDEX \"bkoauth_access_token_user_id_a4b1d1f5\" ON \"bkoauth_access_token\" (\"user_id\"); "     \
    "CREATE INDEX \"bkoauth_access_token_user_id_a4b1d1f5_like\" ON \"bkoauth_access_token\" "               \
    "(\"user_id\" varchar_pattern_ops); "

/* The columns of the token table the library reads and writes, as an SQL list. */
#define TABLE_COLUMNS                                                                                        \
    "'id', 'access_token', 'expires', 'refresh_token', 'scope', 'env_name', 'user_id', 'created_at'"

/* A table another program made: the columns the library needs must be there. */
static bkoauth_code check_columns(pg_store *ps, pconn *c, bkoauth_error *err)
{
    PGresult *r = bk_pg_run(ps, c,
                            "SELECT string_agg(w.c, ', ') FROM unnest(ARRAY[" TABLE_COLUMNS "]) AS w(c) "
                            "WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns i WHERE "
                            "i.table_name = 'bkoauth_access_token' AND i.table_schema = current_schema() "
                            "AND i.column_name = w.c)",
                            0, NULL, PGRES_TUPLES_OK, "checking the table's columns", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    bkoauth_code rc = BKOAUTH_OK;
    if (!PQgetisnull(r, 0, 0))
        rc = err_set(err, BKOAUTH_E_STORE,
                     "PostgreSQL token store at %s: the table bkoauth_access_token has no column %s; it is "
                     "not the bkoauth table",
                     ps->where, PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

static bkoauth_code create_schema(pg_store *ps, pconn *c, bkoauth_error *err)
{
    /* one statement: the table, when missing, with Django's indexes; Django's own table (or one
     * another program made) is used as it is */
    char sql[2048];
    snprintf(sql, sizeof sql,
             "DO $$ BEGIN " SCHEMA_LOCK
             "IF to_regclass('bkoauth_access_token') IS NULL THEN %s; " DJANGO_INDEXES "END IF; END $$",
             CREATE_TABLE);
    if (schema_statement(ps, c, sql, "creating the table bkoauth_access_token", err) != BKOAUTH_OK ||
        check_columns(ps, c, err) != BKOAUTH_OK)
        return BKOAUTH_E_STORE;
    /* a table another program made without an index on env_name or user_id: one is added under a
     * name of libbkoauth's own, so that a later Django migration adding its own does not collide */
    return schema_statement(
        ps, c, "DO $$ BEGIN " SCHEMA_LOCK INDEX_IF_MISSING("env_name") INDEX_IF_MISSING("user_id") "END $$",
        "creating an index", err);
}

/* The lease table, when missing. A database user that may not create it gets a warning naming
 * the fix; renewals then go without the cross-process lock (each says so) until it exists. */
static void create_lease_table(pg_store *ps, pconn *c)
{
    char sql[600];
    bkoauth_error e;
    snprintf(sql, sizeof sql, "DO $$ BEGIN " SCHEMA_LOCK "%s; END $$", BK_PG_CREATE_LEASE);
    if (schema_statement(ps, c, sql, "creating the table bkoauth_renewal_lease", &e) != BKOAUTH_OK)
        log_write(ps->base.logger, BKOAUTH_LOG_WARNING,
                  "%s; renewals are not kept apart across processes until the table exists: have the "
                  "database owner run %s",
                  e.message, BK_PG_CREATE_LEASE);
}

/* The tables and indexes, created only when missing: a database that has them (the usual case)
 * is only read, so opening a client takes no lock and writes nothing. */
static bkoauth_code prepare_schema(pg_store *ps, pconn *c, bkoauth_error *err)
{
    PGresult *r = bk_pg_run(
        ps, c,
        "SELECT (SELECT count(DISTINCT a.attname) FROM pg_index x JOIN pg_attribute a ON "
        "a.attrelid = x.indrelid AND a.attnum = x.indkey[0] WHERE x.indrelid = "
        "to_regclass('bkoauth_access_token') AND a.attname IN ('env_name', 'user_id')) = 2 AND "
        "(SELECT count(*) FROM information_schema.columns i WHERE i.table_name = 'bkoauth_access_token' "
        "AND i.table_schema = current_schema() AND i.column_name IN (" TABLE_COLUMNS ")) = 8, "
        "to_regclass('bkoauth_renewal_lease') IS NOT NULL",
        0, NULL, PGRES_TUPLES_OK, "reading the schema", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    int ready = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    int lease = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    if (!ready && create_schema(ps, c, err) != BKOAUTH_OK) return BKOAUTH_E_STORE;
    if (!lease) create_lease_table(ps, c);
    return BKOAUTH_OK;
}

store *store_postgres_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    if (bk_pq_load(err) != BKOAUTH_OK) return NULL; /* libpq: loaded by the first PostgreSQL store */
    pg_store *ps = bkoauth__calloc(1, sizeof *ps);
    if (ps == NULL) {
        err_nomem(err);
        return NULL;
    }
    ps->base.ops = &PG_OPS;
    ps->base.logger = logger;
    ps->s = s;
    bk_pg_lease_identity(ps);
    /* BKOAUTH_DB_CONNECTIONS: a quarter and one for writes (saves, deletes, leases), the others reads */
    int n = store_connections(s), writers = (n - 1) / 4 + 1;
    if (pool_init(&ps->readers, n - writers, bk_pg_conn_open, bk_pg_conn_close, ps) != 0 ||
        pool_init(&ps->writers, writers, bk_pg_conn_open, bk_pg_conn_close, ps) != 0) {
        err_nomem(err);
        pg_close(&ps->base);
        return NULL;
    }
    pool_set_reopen(&ps->readers, bk_pg_conn_reopen);
    pool_set_reopen(&ps->writers, bk_pg_conn_reopen);
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
    bk_pg_conn_put(&ps->readers, c);
    if (rc != BKOAUTH_OK) {
        pg_close(&ps->base);
        return NULL;
    }
    log_write(logger, BKOAUTH_LOG_DEBUG, "token store: PostgreSQL at %s ready", ps->where);
    return &ps->base;
}
