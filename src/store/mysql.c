/* SPDX-License-Identifier: MIT */
/* mysql.c - the token table in MySQL or MariaDB, as Django's MySQL backend creates it, shared by
 * many processes and hosts; on the MariaDB Connector/C (which speaks to both servers).
 *
 * Connections: a read pool, a write pool (saves and deletes, each one short transaction in READ
 * COMMITTED, so that no gap lock makes savers of different keys wait for each other) and one
 * connection for renewal locks (a pool of one, mysql_lock.c). Each pool's connector thread
 * (pool.h) opens and reconnects its connections and prepares their statements. A renewal of a
 * key holds GET_LOCK(name, 0) on the lock connection while the SSM service is called (name: the
 * key's SHA-256, as MySQL allows 64 characters); no transaction and no pooled connection is held
 * meanwhile, and the server releases the lock when the session ends (a process that dies).
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
 * deadlock or lock wait timeout is retried once the same way.
 *
 * Its files: mysql_conn.c (connections, errors, retries), mysql_query.c (statements, rows, the
 * lookup of a key), mysql_lock.c (the renewal lock); mysql_int.h what they share. */
#include "crypto_dl.h"
#include "mysql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static bkoauth_code get_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    int64_t id = 0;
    return bk_my_find(ms, c, a->env_name, a->user_id, a->out, &id, NULL, 0, NULL, 0, err);
}

static bkoauth_code my_get(store *base, const char *env_name, const char *user_id, bkoauth_token **out,
                           bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    key_arg a = {env_name, user_id, out};
    bkoauth_code rc = bk_my_with_conn(ms, &ms->readers, get_work, &a, err);
    if (rc == BKOAUTH_OK && *out == NULL) return none_saved(env_name, user_id, err);
    return rc;
}

static bkoauth_code delete_id(my_store *ms, mconn *c, int64_t id, const char *what, bkoauth_error *err)
{
    MYSQL_STMT *st = bk_my_stmt(ms, c, Q_DELETE_ID, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    MYSQL_BIND p[1];
    bk_my_bind_int(&p[0], &id);
    return bk_my_execute(ms, c, st, p, NULL, what, err);
}

/* Within the open transaction: t saved in row id (a new row when id < 0). */
static bkoauth_code save(my_store *ms, mconn *c, int64_t id, const bkoauth_token *t, bkoauth_error *err)
{
    /* a stale row of another key holding this access_token (UNIQUE; compared as the server
     * compares) would refuse the save: the token now belongs to this row, so that row goes */
    MYSQL_STMT *st = bk_my_stmt(ms, c, Q_CLASH, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    MYSQL_BIND p[7], res[1];
    param_text pt[7];
    bk_my_bind_text(&p[0], &pt[0], t->access_token);
    int64_t clash_id = 0, clash[8];
    size_t nclash = 0;
    if (mysql_stmt_bind_param(st, p) != 0 || mysql_stmt_execute(st) != 0)
        return bk_my_stmt_error(ms, c, st, "saving a token", err);
    bk_my_bind_int(&res[0], &clash_id);
    if (mysql_stmt_bind_result(st, res) != 0 || mysql_stmt_store_result(st) != 0) {
        bkoauth_code rc = bk_my_stmt_error(ms, c, st, "saving a token", err);
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
    bk_my_bind_text(&p[0], &pt[0], t->access_token);
    bk_my_bind_time(ms, &p[1], &expires, t->expires);
    bk_my_bind_text(&p[2], &pt[2], t->refresh_token);
    bk_my_bind_text(&p[3], &pt[3], t->scope);
    if (id >= 0) {
        bk_my_bind_int(&p[4], &id);
    } else {
        bk_my_bind_text(&p[4], &pt[4], t->env_name);
        bk_my_bind_text(&p[5], &pt[5], t->user_id);
        bk_my_bind_time(ms, &p[6], &created, t->created_at ? t->created_at : bk_now());
    }
    st = bk_my_stmt(ms, c, id >= 0 ? Q_UPDATE : Q_INSERT, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    return bk_my_execute(ms, c, st, p, NULL, "saving a token", err);
}

/* One short transaction: the key's row now, t saved in it (or in a new row). */
static bkoauth_code save_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    const bkoauth_token *t = arg;
    if (bk_my_simple(c, "START TRANSACTION") != 0) return bk_my_conn_error(ms, c, "saving a token", err);
    bkoauth_token *current = NULL;
    int64_t id = -1;
    bkoauth_code rc = bk_my_find(ms, c, t->env_name, t->user_id, &current, &id, NULL, 0, NULL, 1, err);
    if (rc == BKOAUTH_OK) rc = save(ms, c, id, t, err);
    bkoauth_token_free(current);
    if (rc == BKOAUTH_OK && mysql_commit(c->db) != 0) rc = bk_my_conn_error(ms, c, "saving a token", err);
    if (rc != BKOAUTH_OK && !c->broken) mysql_rollback(c->db);
    return rc;
}

static bkoauth_code my_save(store *base, const bkoauth_token *t, bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    return bk_my_with_conn(ms, &ms->writers, save_work, (void *)t, err);
}

static bkoauth_code remove_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    key_arg *a = arg;
    if (bk_my_simple(c, "START TRANSACTION") != 0) return bk_my_conn_error(ms, c, "deleting a token", err);
    bkoauth_token *current = NULL;
    int64_t id = 0, ids[64];
    size_t n = 0;
    bkoauth_code rc = bk_my_find(ms, c, a->env_name, a->user_id, &current, &id, ids, 64, &n, 1, err);
    bkoauth_token_free(current);
    for (size_t i = 0; rc == BKOAUTH_OK && i < n; i++)
        rc = delete_id(ms, c, ids[i], "deleting a token", err);
    if (rc == BKOAUTH_OK && mysql_commit(c->db) != 0) rc = bk_my_conn_error(ms, c, "deleting a token", err);
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
    return bk_my_with_conn(ms, &ms->writers, remove_work, &a, err);
}

typedef struct list_arg {
    bkoauth_token ***out;
    int64_t **ids;
    size_t *count;
} list_arg;

static bkoauth_code list_work(my_store *ms, mconn *c, void *arg, bkoauth_error *err)
{
    list_arg *a = arg;
    MYSQL_STMT *st = bk_my_stmt(ms, c, Q_LIST, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    row_buf *r = bk_my_conn_row(c);
    if (r == NULL) return err_nomem(err);
    bkoauth_code rc = bk_my_execute_streamed(ms, c, st, r, "listing tokens", err);
    if (rc != BKOAUTH_OK) return rc;
    store_rows rows = {0};
    int f = MYSQL_NO_DATA;
    while (rc == BKOAUTH_OK && (rc = store_rows_room(&rows, err)) == BKOAUTH_OK &&
           ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED)) {
        int row_bad = 0;
        bkoauth_error why;
        rows.ids[rows.count] = r->id;
        rc = bk_my_row_token(ms, c, st, r, &rows.items[rows.count], &row_bad, &why);
        rc = store_rows_keep(&rows, ms->base.logger, rc, row_bad, &why, err);
    }
    if (rc == BKOAUTH_OK && f != MYSQL_NO_DATA) rc = bk_my_stmt_error(ms, c, st, "listing tokens", err);
    mysql_stmt_free_result(st);
    return store_rows_finish(&rows, rc, a->out, a->ids, a->count);
}

static bkoauth_code my_list(store *base, bkoauth_token ***out, int64_t **ids, size_t *count,
                            bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    list_arg a = {out, ids, count};
    return bk_my_with_conn(ms, &ms->readers, list_work, &a, err);
}

/* The read and write pools' open (pool_init): a new connection with its statements. */
static void *open_conn(void *ctx, bkoauth_error *err)
{
    mconn *c = bk_my_connect(ctx, err);
    if (c != NULL) bk_my_prepare(ctx, c, 0, Q_TOKEN_COUNT);
    return c;
}

/* Their reconnection (pool_set_reopen): the connection connected again in place, then its
 * statements prepared again. */
static int reconnect(void *ctx, void *conn, bkoauth_error *err)
{
    if (bk_my_reconnect(ctx, conn, err) != 0) return -1;
    bk_my_prepare(ctx, conn, 0, Q_TOKEN_COUNT);
    return 0;
}

static void my_close(store *base)
{
    my_store *ms = (my_store *)base;
    pool_destroy(&ms->readers);
    pool_destroy(&ms->writers);
    pool_destroy(&ms->locker);
    mysql_url_clear(&ms->url);
    bkoauth__free(ms);
}

static void my_after_fork(store *base)
{
    my_store *ms = (my_store *)base;
    pool_after_fork(&ms->readers);
    pool_after_fork(&ms->writers);
    /* mysql_close would end the parent's session (and its GET_LOCKs): left as they are */
    pool_after_fork(&ms->locker);
}

static bkoauth_code my_django_migrations(store *base, char *names, size_t size, bkoauth_error *err);

static const store_ops MYSQL_OPS = {
    my_get,   bk_my_try_lock, bk_my_unlock,         my_save, my_remove, my_list,
    my_close, my_after_fork,  my_django_migrations, "mysql"};

/* ---- opening ---------------------------------------------------------------------------------- */

/* The first column of the first row of sql as a number; -1 when it failed. */
static long long query_number(mconn *c, const char *sql)
{
    if (bk_my_simple(c, sql) != 0) return -1;
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
    if (tables < 0) return bk_my_conn_error(ms, c, "looking for the table django_migrations", err);
    if (tables == 0) return BKOAUTH_OK;
    static const char sql[] = "SELECT name FROM django_migrations WHERE app = ? ORDER BY name";
    MYSQL_STMT *st = mysql_stmt_init(c->db);
    if (st == NULL) return bk_my_conn_error(ms, c, "reading the table django_migrations", err);
    MYSQL_BIND param;
    param_text app;
    bk_my_bind_text(&param, &app, STORE_DJANGO_APP);
    bkoauth_code rc = BKOAUTH_OK;
    if (mysql_stmt_prepare(st, sql, sizeof sql - 1) != 0 || mysql_stmt_bind_param(st, &param) != 0 ||
        mysql_stmt_execute(st) != 0 || fetch_names(st, names, size) != 0)
        rc = bk_my_stmt_error(ms, c, st, "reading the table django_migrations", err);
    mysql_stmt_close(st);
    return rc;
}

/* The Django migrations recorded for the table (store.h), in the database the URL names. */
static bkoauth_code my_django_migrations(store *base, char *names, size_t size, bkoauth_error *err)
{
    my_store *ms = (my_store *)base;
    names_arg a = {names, size};
    return bk_my_with_conn(ms, &ms->readers, migrations_work, &a, err);
}

static bkoauth_code create_schema(my_store *ms, mconn *c, bkoauth_error *err)
{
    /* one creator at a time across processes (DDL commits by itself, so no transaction) */
    if (query_number(c, "SELECT GET_LOCK('bkoauth_access_token:schema', 30)") != 1)
        return bk_my_conn_error(ms, c, "locking to create the table bkoauth_access_token", err);
    bkoauth_code rc = BKOAUTH_OK;
    if (query_number(c, COUNT_TABLE) == 0 && bk_my_simple(c, CREATE_TABLE) != 0)
        rc = bk_my_conn_error(ms, c, "creating the table bkoauth_access_token", err);
    if (rc == BKOAUTH_OK && query_number(c, COUNT_COLUMNS) != 8)
        rc = err_set(err, BKOAUTH_E_STORE,
                     "MySQL token store at %s: the table bkoauth_access_token lacks columns of the bkoauth "
                     "table (id, access_token, expires, refresh_token, scope, env_name, user_id, created_at)",
                     ms->where);
    static const char *const index_on[2] = {INDEX_ON("env_name"), INDEX_ON("user_id")};
    for (int i = 0; rc == BKOAUTH_OK && i < 2; i++)
        if (query_number(c, index_on[i]) == 0 && bk_my_simple(c, INDEXES[i][1]) != 0 &&
            mysql_errno(c->db) != ER_DUP_KEYNAME)
            rc = bk_my_conn_error(ms, c, "creating an index", err);
    query_number(c, "SELECT RELEASE_LOCK('bkoauth_access_token:schema')");
    return rc;
}

/* The table and its indexes, created only when missing: a database that has them (the usual case)
 * is only read, so opening a client takes no lock and writes nothing. */
static bkoauth_code prepare_schema(my_store *ms, mconn *c, bkoauth_error *err)
{
    long long columns = query_number(c, COUNT_COLUMNS);
    if (columns < 0) return bk_my_conn_error(ms, c, "reading the table's shape", err);
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
    if (mysql_url_parse(s->database_url, &ms->url, err) != BKOAUTH_OK) {
        bkoauth__free(ms);
        return NULL;
    }
    snprintf(ms->where, sizeof ms->where, "%s%s%s:%u/%s", ms->url.user ? ms->url.user : "",
             ms->url.user ? "@" : "", ms->url.host, ms->url.port, ms->url.database);
    /* BKOAUTH_DB_CONNECTIONS: one for locks, a quarter of the rest for writes, the others reads */
    int n = store_connections(s), writers = (n - 1) / 4 > 0 ? (n - 1) / 4 : 1;
    if (pool_init(&ms->readers, n - 1 - writers, open_conn, bk_my_conn_close, ms) != 0 ||
        pool_init(&ms->writers, writers, open_conn, bk_my_conn_close, ms) != 0 ||
        bk_my_locker_init(ms) != 0) {
        err_nomem(err);
        my_close(&ms->base);
        return NULL;
    }
    pool_set_reopen(&ms->readers, reconnect);
    pool_set_reopen(&ms->writers, reconnect);
    mconn *c = pool_get(&ms->readers, NULL, err);
    if (c == NULL) {
        my_close(&ms->base);
        return NULL;
    }
    bkoauth_code rc = prepare_schema(ms, c, err);
    bk_my_conn_put(&ms->readers, c);
    if (rc != BKOAUTH_OK) {
        my_close(&ms->base);
        return NULL;
    }
    log_write(logger, BKOAUTH_LOG_DEBUG, "token store: MySQL at %s ready", ms->where);
    return &ms->base;
}
