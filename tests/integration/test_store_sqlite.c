/* SPDX-License-Identifier: MIT */
/* test_store_sqlite.c - the SQLite token store seen from the database file: the table and
 * indexes as Django creates them, a Django-made table reused, file modes, Django's datetime
 * text in UTC and local time, rows others wrote (user_id '', several rows of one key),
 * bound parameters, limits, rollback of a failed save, the write lock across threads and
 * processes, a lock held too long, and a process killed while it holds the lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "store/store.h"

/* Django's own DDL for the bkoauth AccessToken model (schema_editor.create_model, Django 3.2),
 * with the index names Django derives. */
static const char *const DJANGO_DDL =
    "CREATE TABLE \"bkoauth_access_token\" (\"id\" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "
    "\"access_token\" varchar(255) NOT NULL UNIQUE, \"expires\" datetime NOT NULL, \"refresh_token\" "
    "varchar(255) NULL, \"scope\" text NULL, \"env_name\" varchar(255) NOT NULL, \"user_id\" varchar(64) "
    "NULL, "
    "\"created_at\" datetime NOT NULL, \"extra\" text NULL)";
/* The table as the bkoauth app's three migrations leave it (0003 rebuilds it with user_id last):
 * the one libbkoauth creates (tests/scripts/test_django_takeover.sh runs the migrations). */
static const char *const DJANGO_MIGRATED_DDL =
    "CREATE TABLE \"bkoauth_access_token\" (\"id\" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "
    "\"access_token\" varchar(255) NOT NULL UNIQUE, \"expires\" datetime NOT NULL, \"refresh_token\" "
    "varchar(255) NULL, \"scope\" text NULL, \"env_name\" varchar(255) NOT NULL, \"created_at\" datetime "
    "NOT NULL, \"extra\" text NULL, \"user_id\" varchar(64) NULL)";
static const char *const DJANGO_INDEXES =
    "CREATE INDEX \"bkoauth_access_token_env_name_736cbdc5\" ON \"bkoauth_access_token\" (\"env_name\");"
    "CREATE INDEX \"bkoauth_access_token_user_id_a4b1d1f5\" ON \"bkoauth_access_token\" (\"user_id\");";

static char workdir[256];

/* ---- fixtures ------------------------------------------------------------------------------ */

typedef struct fx {
    char path[512];
    bkoauth_config *cfg;
    bk_settings s;
    bk_logger logger;
    store *st;
} fx;

static int counter;

/* A new database path in the work directory (the file is not created). */
static void fresh_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s/t%d.db", workdir, ++counter);
}

/* Settings for the database at path; tz "UTC" or "local"; timeout_ms as text. */
static void settings(fx *f, const char *path, const char *tz, const char *timeout_ms)
{
    char url[600];
    snprintf(url, sizeof url, "sqlite:%s", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->cfg = bkoauth_config_new();
    bkoauth_error e;
    if (bkoauth_config_set(f->cfg, "BKOAUTH_DATABASE_URL", url, &e) != BKOAUTH_OK ||
        bkoauth_config_set(f->cfg, "BKOAUTH_DB_TIME_ZONE", tz, &e) != BKOAUTH_OK ||
        bkoauth_config_set(f->cfg, "BKOAUTH_TIMEOUT_MS", timeout_ms, &e) != BKOAUTH_OK ||
        settings_from_config(f->cfg, &f->s, &e) != BKOAUTH_OK)
        fail_msg("settings: %s", e.message);
    f->logger = (bk_logger){log_stderr, NULL, BKOAUTH_LOG_ERROR};
}

static store *open_store(fx *f)
{
    bkoauth_error e;
    store *st = store_open(&f->s, &f->logger, &e);
    if (st == NULL) fail_msg("store_open %s: %s", f->path, e.message);
    return st;
}

static fx *fx_new(const char *tz, const char *timeout_ms)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char path[512];
    fresh_path(path, sizeof path);
    settings(f, path, tz, timeout_ms);
    f->st = open_store(f);
    return f;
}

static void fx_free(fx *f)
{
    if (f == NULL) return;
    store_close(f->st);
    settings_clear(&f->s);
    bkoauth_config_free(f->cfg);
    free(f);
}

static int setup(void **state)
{
    *state = fx_new("UTC", "2000");
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* ---- the database file seen directly --------------------------------------------------------- */

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        fail_msg("raw open %s: %s", path, sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("raw exec %s: %s", sql, msg);
    sqlite3_close(db);
}

/* The first column of the first row as text ("NULL" for NULL, "" when there is no row). */
static char *raw_text(const char *path, const char *sql, char *buf, size_t size)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("raw %s: %s", sql, sqlite3_errmsg(db));
    buf[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(buf, size, "%s", t ? (const char *)t : "NULL");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return buf;
}

static long long raw_int(const char *path, const char *sql)
{
    char buf[64];
    raw_text(path, sql, buf, sizeof buf);
    return strtoll(buf, NULL, 10);
}

/* Inserts a row as another program would; expires/created as given text. */
static void raw_insert(const char *path, const char *access, const char *expires, const char *env,
                       const char *user_sql, const char *created)
{
    char sql[1024];
    snprintf(
        sql, sizeof sql,
        "INSERT INTO bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, user_id, "
        "created_at, extra) VALUES ('%s', '%s', 'rt-%s', '', '%s', %s, '%s', NULL)",
        access, expires, access, env, user_sql, created);
    raw_exec(path, sql);
}

static int index_count(const char *path)
{
    return (int)raw_int(path, "SELECT count(*) FROM pragma_index_list('bkoauth_access_token')");
}

/* ---- store helpers ------------------------------------------------------------------------- */

static void put(fx *f, const char *access, const char *env, const char *user, int64_t expires,
                int64_t created)
{
    bkoauth_token *t = token_make(access, "rt", "", env, user, expires, created);
    bkoauth_error e;
    if (store_put(f->st, t, &e) != BKOAUTH_OK) fail_msg("put %s: %s", access, e.message);
    bkoauth_token_free(t);
}

static bkoauth_token *get(fx *f, const char *env, const char *user)
{
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (store_get(f->st, env, user, &t, &e) != BKOAUTH_OK)
        fail_msg("get %s: %s", user ? user : "APP", e.message);
    return t;
}

static void expect_access(fx *f, const char *env, const char *user, const char *want)
{
    bkoauth_token *t = get(f, env, user);
    if (strcmp(t->access_token, want) != 0)
        fail_msg("%s/%s: access_token %s, want %s", env, user ? user : "APP", t->access_token, want);
    bkoauth_token_free(t);
}

/* ---- schema -------------------------------------------------------------------------------- */

static void test_creates_djangos_table(void **state)
{
    fx *f = *state;
    char buf[1024];
    raw_text(f->path, "SELECT sql FROM sqlite_master WHERE name = 'bkoauth_access_token'", buf, sizeof buf);
    assert_string_equal(buf, DJANGO_MIGRATED_DDL);
    /* the unique constraint's index, and one index on each of env_name and user_id, Django's */
    assert_int_equal(index_count(f->path), 3);
    assert_string_equal(raw_text(f->path,
                                 "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_master WHERE "
                                 "type = 'index' AND sql IS NOT NULL ORDER BY name)",
                                 buf, sizeof buf),
                        "CREATE INDEX \"bkoauth_access_token_env_name_736cbdc5\" ON \"bkoauth_access_token\" "
                        "(\"env_name\");CREATE INDEX \"bkoauth_access_token_user_id_a4b1d1f5\" ON "
                        "\"bkoauth_access_token\" (\"user_id\")");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM pragma_index_list('bkoauth_access_token') AS l, "
                                      "pragma_index_info(l.name) AS i WHERE i.name = 'env_name'"),
                     1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM pragma_index_list('bkoauth_access_token') AS l, "
                                      "pragma_index_info(l.name) AS i WHERE i.name = 'user_id'"),
                     1);
    /* opening again changes nothing */
    store *again = open_store(f);
    store_close(again);
    assert_int_equal(index_count(f->path), 3);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_reuses_djangos_table(void **state)
{
    (void)state;
    fx f = {0};
    char path[512], sql[2048];
    fresh_path(path, sizeof path);
    snprintf(sql, sizeof sql, "%s;%s", DJANGO_DDL, DJANGO_INDEXES);
    raw_exec(path, sql);
    chmod(path, 0644); /* an existing file keeps its mode */
    raw_insert(path, "django-app", "2030-03-17 17:46:40.123456", "test", "NULL",
               "2024-01-02 03:04:05.678901");
    settings(&f, path, "UTC", "2000");
    f.st = open_store(&f);
    assert_int_equal(index_count(path), 3); /* Django's indexes serve; none added */
    char buf[128];
    assert_string_equal(raw_text(path,
                                 "SELECT group_concat(name) FROM (SELECT name FROM pragma_index_list("
                                 "'bkoauth_access_token') WHERE origin = 'c' ORDER BY name)",
                                 buf, sizeof buf),
                        "bkoauth_access_token_env_name_736cbdc5,bkoauth_access_token_user_id_a4b1d1f5");
    bkoauth_token *t = get(&f, "test", NULL);
    assert_string_equal(t->access_token, "django-app");
    assert_int_equal(t->expires, 1900000000);
    assert_int_equal(t->created_at, 1704164645);
    bkoauth_token_free(t);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    store_close(f.st);
    settings_clear(&f.s);
    bkoauth_config_free(f.cfg);
}

static void test_table_missing_columns(void **state)
{
    (void)state;
    fx f = {0};
    char path[512];
    fresh_path(path, sizeof path);
    raw_exec(path,
             "CREATE TABLE bkoauth_access_token (id integer PRIMARY KEY, access_token text, expires text, "
             "env_name text, user_id text)");
    settings(&f, path, "UTC", "2000");
    bkoauth_error e;
    assert_null(store_open(&f.s, &f.logger, &e));
    assert_int_equal(e.code, BKOAUTH_E_STORE);
    assert_non_null(strstr(e.message, path));
    assert_non_null(strstr(e.message, "refresh_token, scope, created_at, extra"));
    settings_clear(&f.s);
    bkoauth_config_free(f.cfg);
}

static void test_paths(void **state)
{
    (void)state;
    fx f = {0};
    bkoauth_error e;
    /* relative to the working directory */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(workdir), 0);
    settings(&f, "relative.db", "UTC", "2000");
    store *st = store_open(&f.s, &f.logger, &e);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(st);
    store_close(st);
    settings_clear(&f.s);
    bkoauth_config_free(f.cfg);
    char abs[600];
    snprintf(abs, sizeof abs, "%s/relative.db", workdir);
    struct stat sb;
    assert_int_equal(stat(abs, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* a directory that does not exist: StoreError naming the path */
    snprintf(abs, sizeof abs, "%s/no/such/dir/x.db", workdir);
    settings(&f, abs, "UTC", "2000");
    assert_null(store_open(&f.s, &f.logger, &e));
    assert_int_equal(e.code, BKOAUTH_E_STORE);
    assert_non_null(strstr(e.message, abs));
    settings_clear(&f.s);
    bkoauth_config_free(f.cfg);
    /* an in-memory database cannot be shared by the pool */
    settings(&f, ":memory:", "UTC", "2000");
    assert_null(store_open(&f.s, &f.logger, &e));
    assert_int_equal(e.code, BKOAUTH_E_CONFIG);
    settings_clear(&f.s);
    bkoauth_config_free(f.cfg);
    /* not a database */
    snprintf(abs, sizeof abs, "%s/junk.db", workdir);
    FILE *fp = fopen(abs, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database file\n", fp);
    fclose(fp);
    settings(&f, abs, "UTC", "2000");
    assert_null(store_open(&f.s, &f.logger, &e));
    assert_int_equal(e.code, BKOAUTH_E_STORE);
    assert_non_null(strstr(e.message, abs));
    assert_non_null(strstr(e.message, "not a database"));
    settings_clear(&f.s);
    bkoauth_config_free(f.cfg);
}

/* store_open dispatches on the URL; this program links the static archive, so this also shows
 * that the PostgreSQL store is in it (nothing listens on port 1 of the loopback). */
static void test_dispatch(void **state)
{
    (void)state;
    fx f = {0};
    f.cfg = bkoauth_config_new();
    bkoauth_config_set(f.cfg, "BKOAUTH_DATABASE_URL", "postgresql://127.0.0.1:1/bkoauth?connect_timeout=2",
                       NULL);
    assert_int_equal(settings_from_config(f.cfg, &f.s, NULL), BKOAUTH_OK);
    f.logger = (bk_logger){NULL, NULL, 0};
    bkoauth_error e;
    store *st = store_open(&f.s, &f.logger, &e);
    if (st != NULL) store_close(st);
    assert_null(st);
    assert_int_equal(e.code, BKOAUTH_E_STORE);
    assert_null(strstr(e.message, "not supported"));
    settings_clear(&f.s);
    bkoauth_config_free(f.cfg);
}

/* ---- Django's datetime text ------------------------------------------------------------------ */

static void check_time_mode(const char *tz, const char *want_expires, const char *want_created)
{
    fx *f = fx_new(tz, "2000");
    put(f, "t-1", "test", "u", 1900000000, 1700000000);
    char buf[64];
    assert_string_equal(raw_text(f->path, "SELECT expires FROM bkoauth_access_token", buf, sizeof buf),
                        want_expires);
    assert_string_equal(raw_text(f->path, "SELECT created_at FROM bkoauth_access_token", buf, sizeof buf),
                        want_created);
    assert_string_equal(raw_text(f->path, "SELECT typeof(extra) FROM bkoauth_access_token", buf, sizeof buf),
                        "null");
    /* rows others wrote: fractions of any length, 'T', an offset */
    raw_exec(f->path, "DELETE FROM bkoauth_access_token");
    char sql[256];
    const char *forms[] = {".123456", ".5", ".123456789", "", "T"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s", want_expires);
        if (strcmp(forms[i], "T") == 0)
            text[10] = 'T';
        else
            strcat(text, forms[i]);
        snprintf(sql, sizeof sql,
                 "DELETE FROM bkoauth_access_token; INSERT INTO bkoauth_access_token "
                 "(access_token, expires, env_name, user_id, created_at) VALUES "
                 "('x', '%s', 'test', 'v', '%s')",
                 text, want_created);
        raw_exec(f->path, sql);
        bkoauth_token *t = get(f, "test", "v");
        if (t->expires != 1900000000 || t->created_at != 1700000000)
            fail_msg("%s: '%s' read as %lld", tz, text, (long long)t->expires);
        bkoauth_token_free(t);
    }
    raw_exec(f->path, "UPDATE bkoauth_access_token SET expires = '2030-03-18T01:46:40+08:00'");
    bkoauth_token *t = get(f, "test", "v");
    assert_int_equal(t->expires, 1900000000);
    bkoauth_token_free(t);
    /* an unreadable value: StoreError naming the database and the column */
    raw_exec(f->path, "UPDATE bkoauth_access_token SET expires = 'next tuesday'");
    bkoauth_error e;
    assert_int_equal(store_get(f->st, "test", "v", &t, &e), BKOAUTH_E_STORE);
    assert_null(t);
    assert_non_null(strstr(e.message, f->path));
    assert_non_null(strstr(e.message, "expires"));
    fx_free(f);
}

static void test_datetimes_utc(void **state)
{
    (void)state;
    check_time_mode("UTC", "2030-03-17 17:46:40", "2023-11-14 22:13:20");
}

static void test_datetimes_local(void **state)
{
    (void)state;
    const char *old = getenv("TZ");
    char saved[64] = "";
    if (old) snprintf(saved, sizeof saved, "%s", old);
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    check_time_mode("local", "2030-03-18 01:46:40", "2023-11-15 06:13:20");
    if (old)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
}

/* ---- rows ---------------------------------------------------------------------------------- */

static void test_update_in_place(void **state)
{
    fx *f = *state;
    put(f, "one", "test", "alice", 1900000000, 1700000000);
    long long id = raw_int(f->path, "SELECT id FROM bkoauth_access_token WHERE user_id = 'alice'");
    put(f, "two", "test", "alice", 1900003600, 1800000000);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token"), 1);
    assert_int_equal(raw_int(f->path, "SELECT id FROM bkoauth_access_token WHERE user_id = 'alice'"), id);
    char buf[64];
    assert_string_equal(raw_text(f->path, "SELECT created_at FROM bkoauth_access_token", buf, sizeof buf),
                        "2023-11-14 22:13:20");
    bkoauth_token *t = get(f, "test", "alice");
    assert_string_equal(t->access_token, "two");
    assert_int_equal(t->expires, 1900003600);
    assert_int_equal(t->created_at, 1700000000);
    bkoauth_token_free(t);
    /* a token without created_at gets now on insert */
    int64_t before = bk_now();
    put(f, "three", "test", "bob", 1900000000, 0);
    t = get(f, "test", "bob");
    assert_true(t->created_at >= before && t->created_at <= bk_now());
    bkoauth_token_free(t);
}

static void test_app_row_null_or_empty(void **state)
{
    fx *f = *state;
    put(f, "app-new", "test", NULL, 1900000000, 1700000000);
    char buf[64];
    assert_string_equal(
        raw_text(f->path, "SELECT typeof(user_id) FROM bkoauth_access_token", buf, sizeof buf), "null");
    /* a row another program wrote with user_id '' is the APP row too, and is updated in place */
    raw_exec(f->path, "DELETE FROM bkoauth_access_token");
    raw_insert(f->path, "app-empty", "2030-03-17 17:46:40", "test", "''", "2023-11-14 22:13:20");
    raw_insert(f->path, "prod-app", "2030-03-17 17:46:40", "prod", "NULL", "2023-11-14 22:13:20");
    expect_access(f, "test", NULL, "app-empty");
    expect_access(f, "test", "", "app-empty");
    expect_access(f, "prod", NULL, "prod-app");
    put(f, "app-2", "test", "", 1900000001, 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token"), 2);
    assert_string_equal(raw_text(f->path,
                                 "SELECT user_id FROM bkoauth_access_token WHERE access_token = 'app-2'", buf,
                                 sizeof buf),
                        "");
    bkoauth_token *t = get(f, "test", NULL);
    assert_string_equal(t->access_token, "app-2");
    assert_null(t->user_id);
    assert_int_equal(t->created_at, 1700000000);
    bkoauth_token_free(t);
    /* a user row is not the APP row */
    bkoauth_error e;
    assert_int_equal(store_get(f->st, "test", "app", &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
}

static void test_several_rows_of_a_key(void **state)
{
    fx *f = *state;
    raw_insert(f->path, "dup-a", "2030-01-01 00:00:00", "test", "'dup'", "2023-01-01 00:00:00");
    raw_insert(f->path, "dup-b", "2031-01-01 00:00:00.5", "test", "'dup'", "2023-01-01 00:00:00");
    raw_insert(f->path, "dup-c", "2029-01-01 00:00:00", "test", "'dup'", "2023-01-01 00:00:00");
    raw_insert(f->path, "dup-prod", "2035-01-01 00:00:00", "prod", "'dup'", "2023-01-01 00:00:00");
    expect_access(f, "test", "dup", "dup-b"); /* the latest expires */
    put(f, "dup-new", "test", "dup", 1900000000, 0);
    char buf[256];
    raw_text(f->path,
             "SELECT group_concat(access_token, ',') FROM (SELECT access_token FROM bkoauth_access_token "
             "ORDER BY id)",
             buf, sizeof buf);
    assert_string_equal(buf, "dup-a,dup-new,dup-c,dup-prod"); /* that row updated, the others kept */
    /* equal expires: the highest id */
    raw_insert(f->path, "app-1", "2030-01-01 00:00:00", "test", "NULL", "2023-01-01 00:00:00");
    raw_insert(f->path, "app-2", "2030-01-01T00:00:00", "test", "''", "2023-01-01 00:00:00");
    expect_access(f, "test", NULL, "app-2");
    /* remove takes every row of the key, and only those */
    assert_int_equal(store_remove(f->st, "test", "dup", NULL), BKOAUTH_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token WHERE user_id = 'dup'"), 1);
    assert_int_equal(store_remove(f->st, "test", NULL, NULL), BKOAUTH_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token"), 1);
    bkoauth_error e;
    assert_int_equal(store_remove(f->st, "test", "dup", &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    expect_access(f, "prod", "dup", "dup-prod");
}

static void test_list_order(void **state)
{
    fx *f = *state;
    put(f, "zed-test", "test", "zed", 1900000000, 0);
    put(f, "amy-prod", "prod", "amy", 1900000000, 0);
    put(f, "app-test", "test", NULL, 1900000000, 0);
    put(f, "amy-test", "test", "amy", 1900000000, 0);
    put(f, "app-prod", "prod", NULL, 1900000000, 0);
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->st, &all, &n, NULL), BKOAUTH_OK);
    assert_int_equal(n, 5);
    const char *want[] = {"app-prod", "app-test", "amy-prod", "amy-test", "zed-test"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(all[i]->access_token, want[i]);
    assert_null(all[0]->user_id);
    assert_null(all[1]->user_id);
    bkoauth_tokens_free(all, n);
    /* an empty table: an empty list */
    raw_exec(f->path, "DELETE FROM bkoauth_access_token");
    assert_int_equal(store_list(f->st, &all, &n, NULL), BKOAUTH_OK);
    assert_int_equal(n, 0);
    bkoauth_tokens_free(all, n);
}

static void test_bound_parameters(void **state)
{
    fx *f = *state;
    const char *evil = "o'brien\"); DROP TABLE bkoauth_access_token; --";
    put(f, "tok'en\";--", "test", evil, 1900000000, 0);
    put(f, "plain", "test", "alice", 1900000000, 0);
    char buf[128];
    assert_string_equal(
        raw_text(f->path, "SELECT user_id FROM bkoauth_access_token WHERE access_token = 'tok''en\";--'", buf,
                 sizeof buf),
        evil);
    expect_access(f, "test", evil, "tok'en\";--");
    /* no pattern matching either */
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", "%", &t, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(store_get(f->st, "test", "alice' OR '1'='1", &t, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(store_remove(f->st, "test", "' OR 1=1 --", NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token"), 2);
}

static char captured[8192];

static void capture(void *ctx, int level, const char *message)
{
    (void)ctx;
    (void)level;
    size_t n = strlen(captured);
    snprintf(captured + n, sizeof captured - n, "%s\n", message);
}

/* Rows another program wrote with junk: reported, never printed, and they hide no other row;
 * names with control characters are refused before they reach the table. */
static void test_junk_rows(void **state)
{
    fx *f = *state;
    put(f, "good-token", "test", "alice", 1900000000, 0);
    raw_insert(f->path, "bad token\x1b[2J", "2030-01-01 00:00:00", "test", "'mallory'",
               "2026-01-01 00:00:00");
    raw_insert(f->path, "nul-token", "2030-01-01 00:00:00", "test", "'nina'", "2026-01-01 00:00:00");
    raw_exec(
        f->path,
        "UPDATE bkoauth_access_token SET access_token = 'nul' || char(0) || 'cut' WHERE user_id = 'nina'");
    raw_insert(f->path, "date-token", "not a date", "test", "'dora'", "2026-01-01 00:00:00");
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(store_get(f->st, "test", "mallory", &t, &e), BKOAUTH_E_STORE);
    assert_null(t);
    assert_non_null(strstr(e.message, "cannot be used"));
    assert_null(strstr(e.message, "\x1b"));
    assert_null(strstr(e.message, "bad token"));
    assert_int_equal(store_get(f->st, "test", "nina", &t, &e), BKOAUTH_E_STORE);
    assert_non_null(strstr(e.message, "NUL byte"));
    /* list: the good row, the others left out with a warning naming each row's id */
    bkoauth_token **all = NULL;
    size_t n = 0;
    f->logger = (bk_logger){capture, NULL, BKOAUTH_LOG_DEBUG}; /* the warnings are expected */
    captured[0] = '\0';
    assert_int_equal(store_list(f->st, &all, &n, &e), BKOAUTH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(all[0]->access_token, "good-token");
    bkoauth_tokens_free(all, n);
    char want[64];
    for (const char *const *u = (const char *const[]){"mallory", "nina", "dora", NULL}; *u != NULL; u++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT id FROM bkoauth_access_token WHERE user_id = '%s'", *u);
        snprintf(want, sizeof want, "row id %lld", raw_int(f->path, sql));
        if (strstr(captured, want) == NULL) fail_msg("no '%s' in the warnings: %s", want, captured);
    }
    assert_null(strstr(captured, "\x1b"));
    assert_null(strstr(captured, "bad token"));
    assert_null(strstr(captured, "nul"));
    /* a new token for each replaces the junk in place */
    long long nina_id = raw_int(f->path, "SELECT id FROM bkoauth_access_token WHERE user_id = 'nina'");
    put(f, "mallory-new", "test", "mallory", 1900000000, 0);
    expect_access(f, "test", "mallory", "mallory-new");
    put(f, "nina-new", "test", "nina", 1900000000, 0);
    expect_access(f, "test", "nina", "nina-new");
    assert_int_equal(raw_int(f->path, "SELECT id FROM bkoauth_access_token WHERE user_id = 'nina'"), nina_id);
    put(f, "dora-new", "test", "dora", 1900000000, 0);
    expect_access(f, "test", "dora", "dora-new");
    /* a junk row beside a good one of the same key hides nothing */
    raw_insert(f->path, "date-token-2", "31 Feb", "test", "'alice'", "2026-01-01 00:00:00");
    expect_access(f, "test", "alice", "good-token");
    f->logger.fn = NULL;
    /* control characters and direction marks in names, and tokens outside the alphabet */
    const char *bad_names[] = {"mallory\nbkoauth: TokenAPIError: forged", "tab\there",
                               "rtl\xe2\x80\xae"
                               "evil",
                               "bad\xff utf8", "del\x7f"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        assert_int_equal(store_get(f->st, "test", bad_names[i], &t, &e), BKOAUTH_E_INVALID);
        assert_null(strstr(e.message, bad_names[i]));
    }
    bkoauth_token *sp = token_make("has space", "rt", "", "test", "olga", 1900000000, 0);
    assert_int_equal(store_put(f->st, sp, &e), BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "printable ASCII"));
    bkoauth_token_free(sp);
}

static void test_limits(void **state)
{
    fx *f = *state;
    char u64[65], u65[66], a255[256], a256[257], e256[257];
    memset(u64, 'u', 64);
    u64[64] = '\0';
    memset(u65, 'u', 65);
    u65[65] = '\0';
    memset(a255, 'a', 255);
    a255[255] = '\0';
    memset(a256, 'b', 256);
    a256[256] = '\0';
    memset(e256, 'e', 256);
    e256[256] = '\0';
    put(f, a255, "test", u64, 1900000000, 0); /* exactly at the limits */
    expect_access(f, "test", u64, a255);
    bkoauth_error e;
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", u65, &t, &e), BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "64"));
    assert_int_equal(store_remove(f->st, "test", u65, &e), BKOAUTH_E_INVALID);
    assert_int_equal(store_get(f->st, e256, "x", &t, &e), BKOAUTH_E_INVALID);
    assert_int_equal(store_get(f->st, NULL, "x", &t, &e), BKOAUTH_E_INVALID);
    struct {
        const char *access, *refresh;
    } bad[] = {{a256, "rt"}, {"ok", a256}, {"", "rt"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = token_make(bad[i].access, bad[i].refresh, "", "test", u64, 1900000001, 0);
        assert_int_equal(store_put(f->st, t, &e), BKOAUTH_E_INVALID);
        assert_non_null(strstr(e.message, i < 2 ? "255" : "empty"));
        assert_null(strstr(e.message, "bbbbbbbb")); /* no token in the message */
        bkoauth_token_free(t);
    }
    t = token_make("ok", "rt", "", "test", u65, 1900000001, 0);
    assert_int_equal(store_put(f->st, t, &e), BKOAUTH_E_INVALID);
    bkoauth_token_free(t);
    expect_access(f, "test", u64, a255); /* unchanged */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token"), 1);
}

/* A token fn gives for another key is saved in the row being renewed. */
static bkoauth_code give_other_key(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                   bkoauth_error *err)
{
    (void)ctx;
    (void)current;
    (void)err;
    *fresh = token_make("for-mallory", "rt", "", "prod", "mallory", 1900000000, 0);
    return BKOAUTH_OK;
}

static void test_renew_saves_in_the_key(void **state)
{
    fx *f = *state;
    bkoauth_token *out = NULL;
    assert_int_equal(store_renew(f->st, "test", "alice", give_other_key, NULL, &out, NULL), BKOAUTH_OK);
    assert_string_equal(out->env_name, "test");
    assert_string_equal(out->user_id, "alice");
    bkoauth_token_free(out);
    expect_access(f, "test", "alice", "for-mallory");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token WHERE user_id = 'mallory'"),
                     0);
}

/* The access_token column is unique: a stale row of another key that still holds the token
 * being saved is deleted in the same transaction (the token now belongs to this key). */
static void test_unique_clash(void **state)
{
    fx *f = *state;
    put(f, "shared", "test", "old-owner", 1800000000, 0);
    put(f, "other", "test", "bystander", 1800000000, 0);
    put(f, "mine", "test", "new-owner", 1800000000, 0);
    put(f, "shared", "test", "new-owner", 1900000000, 0); /* update clashes */
    put(f, "other", "prod", NULL, 1900000000, 0);         /* insert clashes */
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", "old-owner", &t, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(store_get(f->st, "test", "bystander", &t, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    expect_access(f, "test", "new-owner", "shared");
    expect_access(f, "prod", NULL, "other");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM bkoauth_access_token"), 2);
}

static bkoauth_code failing_fn(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                               bkoauth_error *err)
{
    (void)ctx;
    (void)current;
    *fresh = token_make("never-saved", "rt", "", "test", "dave", 1, 1); /* given, but with an error */
    return err_set(err, BKOAUTH_E_TOKEN_API, "the service failed");
}

/* A renewal that fails, in fn or in the database, changes nothing and leaves no transaction
 * open on the pooled connection. */
static void test_failures_roll_back(void **state)
{
    fx *f = *state;
    put(f, "dave-1", "test", "dave", 1900000000, 1700000000);
    bkoauth_token *out = NULL;
    bkoauth_error e;
    assert_int_equal(store_renew(f->st, "test", "dave", failing_fn, NULL, &out, &e), BKOAUTH_E_TOKEN_API);
    assert_null(out);
    assert_string_equal(e.message, "the service failed");
    expect_access(f, "test", "dave", "dave-1");
    /* the database refuses the write */
    raw_exec(f->path, "CREATE TRIGGER no_update BEFORE UPDATE ON bkoauth_access_token "
                      "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END");
    bkoauth_token *t = token_make("dave-2", "rt", "", "test", "dave", 1900000001, 0);
    assert_int_equal(store_put(f->st, t, &e), BKOAUTH_E_STORE);
    assert_non_null(strstr(e.message, f->path));
    assert_non_null(strstr(e.message, "refused by a trigger"));
    expect_access(f, "test", "dave", "dave-1");
    /* a partial write (the clash delete ran before the refused update) was undone */
    put(f, "erin-1", "test", "erin", 1900000000, 0);
    bkoauth_token_free(t);
    t = token_make("erin-1", "rt", "", "test", "dave", 1900000001, 0);
    assert_int_equal(store_put(f->st, t, &e), BKOAUTH_E_STORE);
    expect_access(f, "test", "erin", "erin-1");
    raw_exec(f->path, "DROP TRIGGER no_update");
    /* every pooled connection is usable: no transaction left open */
    for (int i = 0; i < 4; i++) {
        bkoauth_token_free(t);
        char access[32];
        snprintf(access, sizeof access, "dave-%d", 3 + i);
        t = token_make(access, "rt", "", "test", "dave", 1900000002 + i, 0);
        if (store_put(f->st, t, &e) != BKOAUTH_OK) fail_msg("put after rollback: %s", e.message);
    }
    bkoauth_token_free(t);
    expect_access(f, "test", "dave", "dave-6");
}

/* ---- the write lock ---------------------------------------------------------------------- */

static atomic_int renewals;
static int renewal_log_fd = -1; /* processes append one byte per renewal */

/* Keeps the current row when it is fresh (expires after now + 1 h); else makes a new token,
 * slowly, so that callers overlap. */
static bkoauth_code renew_if_stale(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                   bkoauth_error *err)
{
    if (current != NULL && current->expires > bk_now() + 3600) return BKOAUTH_OK;
    usleep(30000);
    atomic_fetch_add(&renewals, 1);
    if (renewal_log_fd >= 0 && write(renewal_log_fd, "r", 1) != 1)
        return err_set(err, BKOAUTH_E_STORE, "log write failed");
    char access[64];
    snprintf(access, sizeof access, "renewed-by-%s", (const char *)ctx);
    *fresh = token_make(access, "rt", "", "test", "erin", bk_now() + 86400, 0);
    return *fresh ? BKOAUTH_OK : err_nomem(err);
}

typedef struct worker {
    fx *f;
    int own_store; /* 1: a store of its own (its own pool) */
    char name[32];
    bkoauth_code rc;
    char access[64];
} worker;

static void *renew_worker(void *arg)
{
    worker *w = arg;
    store *st = w->own_store ? open_store(w->f) : w->f->st;
    bkoauth_token *out = NULL;
    bkoauth_error e;
    w->rc = store_renew(st, "test", "erin", renew_if_stale, w->name, &out, &e);
    if (w->rc != BKOAUTH_OK)
        fprintf(stderr, "%s: %s\n", w->name, e.message);
    else
        snprintf(w->access, sizeof w->access, "%s", out->access_token);
    bkoauth_token_free(out);
    if (w->own_store) store_close(st);
    return NULL;
}

static void renew_from_threads(fx *f, int nthreads, int own_store)
{
    put(f, "erin-old", "test", "erin", bk_now() - 10, 1700000000);
    atomic_store(&renewals, 0);
    worker w[32];
    pthread_t th[32];
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker){.f = f, .own_store = own_store};
        snprintf(w[i].name, sizeof w[i].name, "thread-%d", i);
        pthread_create(&th[i], NULL, renew_worker, &w[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&renewals), 1);
    bkoauth_token *t = get(f, "test", "erin");
    assert_non_null(strstr(t->access_token, "renewed-by-thread-"));
    assert_int_equal(t->created_at, 1700000000);
    for (int i = 0; i < nthreads; i++) { /* every caller saw the one new token */
        assert_int_equal(w[i].rc, BKOAUTH_OK);
        assert_string_equal(w[i].access, t->access_token);
    }
    bkoauth_token_free(t);
}

static void test_renew_once_from_threads(void **state)
{
    renew_from_threads(*state, 8, 0);
}

static void test_renew_once_from_threads_own_stores(void **state)
{
    renew_from_threads(*state, 8, 1);
}

/* More threads than the pool has connections: they wait for one, and all get through. */
static void test_pool_exhausted(void **state)
{
    renew_from_threads(*state, 32, 0);
}

static void test_renew_once_from_processes(void **state)
{
    fx *f = *state;
    put(f, "erin-old", "test", "erin", bk_now() - 10, 1700000000);
    char log[600];
    snprintf(log, sizeof log, "%s/renewals.log", workdir);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    pid_t pids[4];
    for (int p = 0; p < 4; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            renewal_log_fd = open(log, O_WRONLY | O_APPEND);
            bkoauth_error e;
            store *st = store_open(&f->s, &f->logger, &e);
            if (st == NULL) _exit(2);
            bkoauth_token *out = NULL;
            char name[32];
            snprintf(name, sizeof name, "process-%d", p);
            int rc = store_renew(st, "test", "erin", renew_if_stale, name, &out, &e);
            bkoauth_token_free(out);
            store_close(st);
            _exit(rc == BKOAUTH_OK ? 0 : 1);
        }
    }
    for (int p = 0; p < 4; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    struct stat sb;
    assert_int_equal(stat(log, &sb), 0);
    assert_int_equal(sb.st_size, 1); /* one renewal among the four processes */
    bkoauth_token *t = get(f, "test", "erin");
    assert_non_null(strstr(t->access_token, "renewed-by-process-"));
    bkoauth_token_free(t);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Another connection holds the write lock past the busy timeout (timeout_ms + 5000 ms):
 * a renewal is StoreError saying so; reads still work (WAL). */
static void test_locked_too_long(void **state)
{
    (void)state;
    fx *f = fx_new("UTC", "1"); /* busy timeout 5001 ms */
    put(f, "kim-1", "test", "kim", 1900000000, 0);
    sqlite3 *holder = raw_open(f->path);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    expect_access(f, "test", "kim", "kim-1");
    double t0 = now_seconds();
    bkoauth_token *t = token_make("kim-2", "rt", "", "test", "kim", 1900000001, 0);
    bkoauth_error e;
    assert_int_equal(store_put(f->st, t, &e), BKOAUTH_E_STORE);
    double waited = now_seconds() - t0;
    assert_true(waited > 4.5 && waited < 30);
    assert_non_null(strstr(e.message, "locked by another process for more than 5001 ms"));
    assert_non_null(strstr(e.message, f->path));
    sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(holder);
    assert_int_equal(store_put(f->st, t, &e), BKOAUTH_OK);
    bkoauth_token_free(t);
    expect_access(f, "test", "kim", "kim-2");
    fx_free(f);
}

/* fn of a renewal that tells the parent it is inside, then waits to be killed. */
static bkoauth_code hang_inside(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                bkoauth_error *err)
{
    (void)current;
    (void)err;
    int *pipe_w = ctx;
    *fresh = NULL;
    if (write(*pipe_w, "x", 1) != 1) _exit(3);
    sleep(60);
    _exit(4);
}

typedef struct waiter {
    fx *f;
    bkoauth_code rc;
    double done_at;
} waiter;

static void *renew_waiter(void *arg)
{
    waiter *w = arg;
    bkoauth_token *out = NULL;
    bkoauth_error e;
    w->rc = store_renew(w->f->st, "test", "erin", renew_if_stale, "waiter", &out, &e);
    if (w->rc != BKOAUTH_OK) fprintf(stderr, "waiter: %s\n", e.message);
    w->done_at = now_seconds();
    bkoauth_token_free(out);
    return NULL;
}

/* A process killed inside fn while it holds the write transaction: the row is as it was, and a
 * renewer that was waiting for the lock goes through as soon as the process is gone, long
 * before the busy timeout (10 s + 5 s here). */
static void test_killed_inside_renewal(void **state)
{
    (void)state;
    fx *f = fx_new("UTC", "10000");
    put(f, "erin-old", "test", "erin", bk_now() - 10, 1700000000);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        bkoauth_error e;
        store *st = store_open(&f->s, &f->logger, &e);
        if (st == NULL) _exit(2);
        bkoauth_token *out = NULL;
        store_renew(st, "test", "erin", hang_inside, &p[1], &out, NULL);
        _exit(5);
    }
    close(p[1]);
    char b;
    assert_int_equal(read(p[0], &b, 1), 1); /* the child is inside, holding the lock */
    close(p[0]);
    atomic_store(&renewals, 0);
    waiter w = {.f = f};
    pthread_t th;
    pthread_create(&th, NULL, renew_waiter, &w);
    usleep(300000); /* the waiter is blocked on the lock by now */
    assert_int_equal(atomic_load(&renewals), 0);
    double killed_at = now_seconds();
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    pthread_join(th, NULL);
    assert_int_equal(w.rc, BKOAUTH_OK);
    assert_true(w.done_at - killed_at < 3.0);
    assert_int_equal(atomic_load(&renewals), 1);
    expect_access(f, "test", "erin", "renewed-by-waiter");
    fx_free(f);
}

/* A process killed in the middle of a write transaction on this database (journal as the store
 * set it up): the previous row is intact, and the store renews at once afterwards. */
static void test_killed_mid_write(void **state)
{
    (void)state;
    fx *f = fx_new("UTC", "10000");
    put(f, "erin-old", "test", "erin", bk_now() - 10, 1700000000);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) _exit(2);
        /* a small page cache spills the uncommitted pages into the journal and database
         * files before the kill */
        if (sqlite3_exec(
                db,
                "PRAGMA cache_size = 4; BEGIN IMMEDIATE; UPDATE bkoauth_access_token SET access_token "
                "= 'half-written', expires = '2099-01-01 00:00:00'; CREATE TABLE junk(x); "
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
                "INSERT INTO junk SELECT randomblob(1000) FROM n;",
                NULL, NULL, NULL) != SQLITE_OK)
            _exit(3);
        if (write(p[1], "x", 1) != 1) _exit(4);
        sleep(60);
        _exit(5);
    }
    close(p[1]);
    char b;
    assert_int_equal(read(p[0], &b, 1), 1);
    close(p[0]);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    expect_access(f, "test", "erin", "erin-old");
    atomic_store(&renewals, 0);
    double t0 = now_seconds();
    bkoauth_token *out = NULL;
    bkoauth_error e;
    if (store_renew(f->st, "test", "erin", renew_if_stale, "after-kill", &out, &e) != BKOAUTH_OK)
        fail_msg("renew after the kill: %s", e.message);
    assert_true(now_seconds() - t0 < 3.0);
    assert_string_equal(out->access_token, "renewed-by-after-kill");
    bkoauth_token_free(out);
    char buf[64];
    assert_string_equal(raw_text(f->path, "PRAGMA integrity_check", buf, sizeof buf), "ok");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'junk'"), 0);
    fx_free(f);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void remove_workdir(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", workdir);
}

int main(void)
{
    snprintf(workdir, sizeof workdir, "/tmp/bkoauth-sqlite-XXXXXX");
    if (mkdtemp(workdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_creates_djangos_table),
        cmocka_unit_test(test_reuses_djangos_table),
        cmocka_unit_test(test_table_missing_columns),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_datetimes_utc),
        cmocka_unit_test(test_datetimes_local),
        T(test_update_in_place),
        T(test_app_row_null_or_empty),
        T(test_several_rows_of_a_key),
        T(test_list_order),
        T(test_bound_parameters),
        T(test_junk_rows),
        T(test_limits),
        T(test_renew_saves_in_the_key),
        T(test_unique_clash),
        T(test_failures_roll_back),
        T(test_renew_once_from_threads),
        T(test_renew_once_from_threads_own_stores),
        T(test_pool_exhausted),
        T(test_renew_once_from_processes),
        cmocka_unit_test(test_locked_too_long),
        cmocka_unit_test(test_killed_inside_renewal),
        cmocka_unit_test(test_killed_mid_write),
    };
    int failed = cmocka_run_group_tests_name("sqlite store", tests, NULL, NULL);
    remove_workdir();
    return failed ? 1 : 0;
}
