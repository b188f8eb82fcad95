/* SPDX-License-Identifier: MIT */
/* test_store.c - the token store behind store.h, on the store BKOAUTH_TEST_STORE names: rows,
 * keys, bound parameters, limits, and the renewal section across threads, processes and a
 * process killed inside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "store/store.h"
#include "teststore.h"

typedef struct fx {
    char url[512];
    bkoauth_config *cfg;
    bk_settings s;
    bk_logger logger;
    store *st;
} fx;

static store *open_store(fx *f)
{
    bkoauth_error e;
    store *st = store_open(&f->s, &f->logger, &e);
    if (st == NULL) fail_msg("store_open: %s", e.message);
    return st;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (teststore_fresh_url("store", f->url, sizeof f->url) == NULL) return -1;
    f->cfg = bkoauth_config_new();
    bkoauth_config_set(f->cfg, "BKOAUTH_DATABASE_URL", f->url, NULL);
    bkoauth_config_set(f->cfg, "BKOAUTH_TIMEOUT_MS", "2000", NULL);
    if (settings_from_config(f->cfg, &f->s, NULL) != BKOAUTH_OK) return -1;
    f->logger = (bk_logger){log_stderr, NULL, BKOAUTH_LOG_ERROR};
    f->st = open_store(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f == NULL) return 0; /* the group set-up failed: nothing to undo */
    store_close(f->st);
    settings_clear(&f->s);
    bkoauth_config_free(f->cfg);
    free(f);
    return 0;
}

/* Before each test: no rows. */
static int empty(void **state)
{
    fx *f = *state;
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->st, &all, &n, NULL), BKOAUTH_OK);
    for (size_t i = 0; i < n; i++)
        store_remove(f->st, all[i]->env_name, all[i]->user_id, NULL);
    bkoauth_tokens_free(all, n);
    return 0;
}

static bkoauth_token *tok(const char *access, const char *user, int64_t expires, int64_t created)
{
    return token_make(access, user ? "refresh-of-" : "", "", "test", user, expires, created);
}

static void put(fx *f, const char *access, const char *user, int64_t expires, int64_t created)
{
    bkoauth_token *t = tok(access, user, expires, created);
    bkoauth_error e;
    if (store_put(f->st, t, &e) != BKOAUTH_OK) fail_msg("put: %s", e.message);
    bkoauth_token_free(t);
}

static char captured[8192];

static void capture(void *ctx, int level, const char *message)
{
    (void)ctx;
    (void)level;
    size_t n = strlen(captured);
    snprintf(captured + n, sizeof captured - n, "%s | ", message);
}

/* Inserts a row as another program would: access_token and expires as SQL expressions. */
static void raw_row(fx *f, const char *access_sql, const char *expires_sql, const char *user)
{
    char sql[600];
    snprintf(
        sql, sizeof sql,
        "INSERT INTO bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, user_id, "
        "created_at) VALUES (%s, %s, '', '', 'test', '%s', %s)",
        access_sql, expires_sql, user,
        strcmp(teststore_kind(), "sqlite") == 0 ? "'2026-01-01 00:00:00'" : "'2026-01-01 00:00:00+00'");
    if (strcmp(teststore_kind(), "mysql") == 0) { /* no zone in a MySQL datetime */
        char *z = strstr(sql, "+00'");
        if (z != NULL) memmove(z, z + 3, strlen(z + 3) + 1);
    }
    if (teststore_exec(f->url, sql) != 0) fail_msg("could not insert the junk row");
}

/* Rows another program wrote with junk, on every store: a value with a control character, an
 * unreadable datetime (SQLite text, PostgreSQL 'infinity', a MySQL zero date), a NUL inside a
 * value (not in PostgreSQL, which cannot hold one). Reported (never printed), named by id in
 * list, hiding no other row, and replaced in place by the key's next save. */
static void test_junk_rows(void **state)
{
    fx *f = *state;
    const char *kind = teststore_kind();
    put(f, "good-token", "alice", 2000000000, 1700000000);
    raw_row(f, "'bad token\x1b[2J'", "'2030-01-01 00:00:00'", "mallory");
    raw_row(f, "'date-token'",
            strcmp(kind, "postgres") == 0 ? "'infinity'"
            : strcmp(kind, "mysql") == 0  ? "'0000-00-00 00:00:00'"
                                          : "'not a date'",
            "dora");
    if (strcmp(kind, "postgres") != 0)
        raw_row(f, strcmp(kind, "mysql") == 0 ? "CONCAT('nul', CHAR(0), 'cut')" : "'nul' || char(0) || 'cut'",
                "'2030-01-01 00:00:00'", "nina");
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(store_get(f->st, "test", "mallory", &t, &e), BKOAUTH_E_STORE);
    assert_null(strstr(e.message, "bad token"));
    assert_null(strchr(e.message, '\x1b'));
    assert_int_equal(store_get(f->st, "test", "dora", &t, &e), BKOAUTH_E_STORE);
    assert_non_null(strstr(e.message, "unreadable expires"));
    if (strcmp(kind, "postgres") != 0) {
        assert_int_equal(store_get(f->st, "test", "nina", &t, &e), BKOAUTH_E_STORE);
        assert_non_null(strstr(e.message, "NUL byte"));
    }
    /* list: the good row; each junk row left out with a warning naming its id */
    captured[0] = '\0';
    f->logger = (bk_logger){capture, NULL, BKOAUTH_LOG_WARNING};
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->st, &all, &n, &e), BKOAUTH_OK);
    f->logger = (bk_logger){log_stderr, NULL, BKOAUTH_LOG_ERROR};
    assert_int_equal(n, 1);
    assert_string_equal(all[0]->access_token, "good-token");
    bkoauth_tokens_free(all, n);
    int named = 0;
    for (const char *p = captured; (p = strstr(p, "row id ")) != NULL; p++)
        named++;
    assert_int_equal(named, strcmp(kind, "postgres") == 0 ? 2 : 3);
    assert_null(strstr(captured, "bad token"));
    /* a junk row beside a good one of the same key hides nothing */
    raw_row(f, "'date-token-2'",
            strcmp(kind, "postgres") == 0 ? "'-infinity'"
            : strcmp(kind, "mysql") == 0  ? "'2030-00-00 00:00:00'"
                                          : "'31 Feb'",
            "alice");
    assert_int_equal(store_get(f->st, "test", "alice", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, "good-token");
    bkoauth_token_free(t);
    /* the key's next save replaces the junk */
    put(f, "dora-new", "dora", 2000000000, 1700000000);
    assert_int_equal(store_get(f->st, "test", "dora", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, "dora-new");
    bkoauth_token_free(t);
    put(f, "mallory-new", "mallory", 2000000000, 1700000000);
    assert_int_equal(store_get(f->st, "test", "mallory", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, "mallory-new");
    bkoauth_token_free(t);
    if (strcmp(kind, "postgres") != 0) {
        put(f, "nina-new", "nina", 2000000000, 1700000000);
        assert_int_equal(store_get(f->st, "test", "nina", &t, &e), BKOAUTH_OK);
        assert_string_equal(t->access_token, "nina-new");
        bkoauth_token_free(t);
    }
    /* a delete removes the junk too */
    assert_int_equal(store_remove(f->st, "test", "alice", &e), BKOAUTH_OK);
    assert_int_equal(store_get(f->st, "test", "alice", &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    teststore_exec(f->url, "DELETE FROM bkoauth_access_token");
}

static void test_put_get_update_in_place(void **state)
{
    fx *f = *state;
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(store_get(f->st, "test", "alice", &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_null(t);
    put(f, "alice-1", "alice", 2000000000, 1700000000);
    put(f, "alice-2", "alice", 2000003600, 1800000000); /* same row, created_at kept */
    assert_int_equal(store_get(f->st, "test", "alice", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, "alice-2");
    assert_string_equal(t->refresh_token, "refresh-of-");
    assert_string_equal(t->env_name, "test");
    assert_string_equal(t->user_id, "alice");
    assert_int_equal(t->expires, 2000003600);
    assert_int_equal(t->created_at, 1700000000);
    bkoauth_token_free(t);
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->st, &all, &n, NULL), BKOAUTH_OK);
    assert_int_equal(n, 1);
    bkoauth_tokens_free(all, n);
    /* another env is another row */
    assert_int_equal(store_get(f->st, "prod", "alice", &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
}

static void test_app_and_users_apart(void **state)
{
    fx *f = *state;
    put(f, "app-1", NULL, 2000000000, 1700000000);
    put(f, "bob-1", "bob", 2000000000, 1700000000);
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", NULL, &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->access_token, "app-1");
    assert_null(t->user_id);
    bkoauth_token_free(t);
    assert_int_equal(store_get(f->st, "test", "", &t, NULL), BKOAUTH_OK); /* "" is the APP too */
    assert_string_equal(t->access_token, "app-1");
    bkoauth_token_free(t);
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->st, &all, &n, NULL), BKOAUTH_OK);
    assert_int_equal(n, 2);
    assert_null(all[0]->user_id); /* APP first */
    assert_string_equal(all[1]->user_id, "bob");
    bkoauth_tokens_free(all, n);
    assert_int_equal(store_remove(f->st, "test", NULL, NULL), BKOAUTH_OK);
    assert_int_equal(store_remove(f->st, "test", NULL, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(store_get(f->st, "test", "bob", &t, NULL), BKOAUTH_OK);
    bkoauth_token_free(t);
}

static void test_bound_parameters(void **state)
{
    fx *f = *state;
    const char *evil = "x'); DROP TABLE bkoauth_access_token; --\"";
    put(f, "evil-token'\"", evil, 2000000000, 1700000000);
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", evil, &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->user_id, evil);
    assert_string_equal(t->access_token, "evil-token'\"");
    bkoauth_token_free(t);
}

static void test_limits(void **state)
{
    fx *f = *state;
    char user[66], access[257];
    memset(user, 'u', 65);
    user[65] = '\0';
    memset(access, 'a', 256);
    access[256] = '\0';
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(store_get(f->st, "test", user, &t, &e), BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "64"));
    put(f, "short", "carol", 2000000000, 1700000000);
    bkoauth_token *big = tok(access, "carol", 2000000000, 1700000000);
    assert_int_equal(store_put(f->st, big, &e), BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "255"));
    bkoauth_token_free(big);
    assert_int_equal(store_get(f->st, "test", "carol", &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->access_token, "short"); /* unchanged */
    bkoauth_token_free(t);
}

/* Users are distinct by exact name, whatever the database's collation (MySQL's default one
 * compares case- and trailing-space-insensitively): no lookup, renewal or delete of one touches
 * another's row. */
static void test_exact_user_names(void **state)
{
    fx *f = *state;
    static const char *const users[] = {"Alice", "alice", "alice ", "ALICE", "  "};
    for (int i = 0; i < 5; i++) {
        char access[32];
        snprintf(access, sizeof access, "token-%d-of-%zu", i, strlen(users[i]));
        put(f, access, users[i], 2000000000 + i, 1700000000);
    }
    put(f, "app-token-x", NULL, 2000000000, 1700000000);
    for (int i = 0; i < 5; i++) {
        bkoauth_token *t = NULL;
        bkoauth_error e;
        if (store_get(f->st, "test", users[i], &t, &e) != BKOAUTH_OK)
            fail_msg("get '%s': %s", users[i], e.message);
        char want[32];
        snprintf(want, sizeof want, "token-%d-of-%zu", i, strlen(users[i]));
        if (strcmp(t->access_token, want) != 0 || strcmp(t->user_id, users[i]) != 0)
            fail_msg("'%s' got the row of '%s' (%s)", users[i], t->user_id, t->access_token);
        bkoauth_token_free(t);
    }
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", "alice  ", &t, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(store_get(f->st, "test", "aLice", &t, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(store_get(f->st, "test", NULL, &t, NULL), BKOAUTH_OK); /* "  " is not the APP */
    assert_string_equal(t->access_token, "app-token-x");
    bkoauth_token_free(t);
    /* an update and a delete of alice leave Alice and "alice " alone */
    put(f, "alice-renewed", "alice", 2100000000, 1700000000);
    assert_int_equal(store_remove(f->st, "test", "alice ", NULL), BKOAUTH_OK);
    assert_int_equal(store_remove(f->st, "test", "alice ", NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(store_get(f->st, "test", "Alice", &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->access_token, "token-0-of-5");
    bkoauth_token_free(t);
    assert_int_equal(store_get(f->st, "test", "alice", &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->access_token, "alice-renewed");
    bkoauth_token_free(t);
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->st, &all, &n, NULL), BKOAUTH_OK);
    assert_int_equal(n, 5); /* APP, Alice, alice, ALICE, "  " */
    bkoauth_tokens_free(all, n);
}

/* user_id holds 64 characters, in any script: a Chinese name of 64 characters (192 bytes). */
static void test_user_id_of_64_characters(void **state)
{
    fx *f = *state;
    char name[64 * 3 + 1] = "";
    for (int i = 0; i < 64; i++)
        strcat(name, i % 2 ? "\xe5\xbc\xa0" : "\xe4\xb8\x89"); /* 张三 */
    put(f, "zhang-1", name, 2000000000, 1700000000);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (store_get(f->st, "test", name, &t, &e) != BKOAUTH_OK) fail_msg("get: %s", e.message);
    assert_string_equal(t->user_id, name);
    assert_string_equal(t->access_token, "zhang-1");
    bkoauth_token_free(t);
    char longer[sizeof name + 3];
    snprintf(longer, sizeof longer, "%s\xe5\xbc\xa0", name);
    assert_int_equal(store_get(f->st, "test", longer, &t, &e), BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "65 characters"));
}

static bkoauth_code failing_fn(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                               bkoauth_error *err)
{
    (void)ctx;
    (void)current;
    *fresh = tok("never-saved", "dave", 1, 1);
    bkoauth_token_free(*fresh);
    *fresh = NULL;
    return err_set(err, BKOAUTH_E_TOKEN_API, "the service failed");
}

static void test_renew_error_changes_nothing(void **state)
{
    fx *f = *state;
    put(f, "dave-1", "dave", 2000000000, 1700000000);
    bkoauth_token *out = NULL;
    bkoauth_error e;
    assert_int_equal(store_renew(f->st, "test", "dave", failing_fn, NULL, &out, &e), BKOAUTH_E_TOKEN_API);
    assert_null(out);
    assert_string_equal(e.message, "the service failed");
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", "dave", &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->access_token, "dave-1");
    bkoauth_token_free(t);
}

/* ---- the renewal section --------------------------------------------------------------- */

static atomic_int renewals;
static int renewal_log_fd = -1; /* processes append one byte per renewal */

/* Renews only when the row still expires before 1e9 (an old token); sleeps a little inside so
 * callers overlap. */
static bkoauth_code renew_if_old(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                 bkoauth_error *err)
{
    (void)err;
    const char *who = ctx;
    if (current != NULL && current->expires > 1000000000) return BKOAUTH_OK;
    usleep(20000);
    atomic_fetch_add(&renewals, 1);
    if (renewal_log_fd >= 0 && write(renewal_log_fd, "r", 1) != 1)
        return err_set(err, BKOAUTH_E_STORE, "log write failed");
    char access[64];
    snprintf(access, sizeof access, "renewed-by-%s", who);
    *fresh = token_make(access, "rt", "", "test", "erin", 2000000000, 0);
    return BKOAUTH_OK;
}

static void *renew_thread(void *arg)
{
    fx *f = arg;
    char who[32];
    snprintf(who, sizeof who, "thread-%lu", (unsigned long)pthread_self() % 100000);
    bkoauth_token *out = NULL;
    bkoauth_error e;
    if (store_renew(f->st, "test", "erin", renew_if_old, who, &out, &e) != BKOAUTH_OK)
        fprintf(stderr, "renew: %s\n", e.message);
    bkoauth_token_free(out);
    return NULL;
}

static void test_renew_once_from_threads(void **state)
{
    fx *f = *state;
    put(f, "erin-old", "erin", 900000000, 1700000000);
    atomic_store(&renewals, 0);
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, renew_thread, f);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&renewals), 1);
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", "erin", &t, NULL), BKOAUTH_OK);
    assert_non_null(strstr(t->access_token, "renewed-by-thread-"));
    assert_int_equal(t->created_at, 1700000000);
    bkoauth_token_free(t);
}

static void test_renew_once_from_processes(void **state)
{
    fx *f = *state;
    put(f, "erin-old", "erin", 900000000, 1700000000);
    char log[] = "/tmp/bkoauth-renewals-XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);
    pid_t pids[4];
    for (int p = 0; p < 4; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            renewal_log_fd = open(log, O_WRONLY | O_APPEND);
            store *st = open_store(f);
            bkoauth_token *out = NULL;
            bkoauth_error e;
            int rc = store_renew(st, "test", "erin", renew_if_old, "process", &out, &e);
            bkoauth_token_free(out);
            store_close(st);
            _exit(rc == BKOAUTH_OK ? 0 : 1);
        }
    }
    for (int p = 0; p < 4; p++) {
        int st = 0;
        waitpid(pids[p], &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    struct stat sb;
    assert_int_equal(stat(log, &sb), 0);
    assert_int_equal(sb.st_size, 1); /* one renewal among the four processes */
    unlink(log);
}

static bkoauth_code hang_inside(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                bkoauth_error *err)
{
    (void)current;
    (void)err;
    int *pipe_w = ctx;
    *fresh = NULL;
    if (write(*pipe_w, "x", 1) != 1) _exit(3);
    sleep(60); /* killed here */
    return BKOAUTH_OK;
}

static void test_killed_inside_renewal(void **state)
{
    fx *f = *state;
    put(f, "frank-1", "frank", 900000000, 1700000000);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        store *st = open_store(f);
        bkoauth_token *out = NULL;
        store_renew(st, "test", "frank", hang_inside, &p[1], &out, NULL);
        _exit(0);
    }
    close(p[1]);
    char b;
    assert_int_equal(read(p[0], &b, 1), 1); /* the child holds the renewal section */
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    close(p[0]);
    bkoauth_token *t = NULL;
    assert_int_equal(store_get(f->st, "test", "frank", &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->access_token, "frank-1");
    assert_int_equal(t->expires, 900000000);
    bkoauth_token_free(t);
    /* no lock left behind: a renewal of the same key takes the lock (the process that held it
     * is gone: SQLite and MySQL release with the process, PostgreSQL's lease is taken over) */
    atomic_store(&renewals, 0);
    bkoauth_error e;
    bkoauth_token *out = NULL;
    captured[0] = '\0';
    f->logger = (bk_logger){capture, NULL, BKOAUTH_LOG_WARNING};
    bkoauth_code rc = store_renew(f->st, "test", "frank", renew_if_old, "after-kill", &out, &e);
    f->logger = (bk_logger){log_stderr, NULL, BKOAUTH_LOG_ERROR};
    if (rc != BKOAUTH_OK) fail_msg("renew after the kill: %s", e.message);
    assert_string_equal(out->access_token, "renewed-by-after-kill");
    assert_int_equal(atomic_load(&renewals), 1);
    if (strstr(captured, "cross-process lock") != NULL || strstr(captured, "another process") != NULL)
        fail_msg("the renewal after the kill went without the lock: %s", captured);
    bkoauth_token_free(out);
}

/* PostgreSQL: without the lease table (dropped, or a user that may not create it) a renewal
 * still succeeds, without the cross-process lock, and the warning names the table and the
 * statement that makes it; the next opening of a store makes it again. */
static void test_lease_table_missing(void **state)
{
    fx *f = *state;
    if (f->s.store_kind != BK_STORE_POSTGRES) skip();
    assert_int_equal(teststore_exec(f->url, "DROP TABLE bkoauth_renewal_lease"), 0);
    put(f, "erin-old", "erin", 900000000, 1700000000);
    captured[0] = '\0';
    f->logger = (bk_logger){capture, NULL, BKOAUTH_LOG_WARNING};
    bkoauth_token *out = NULL;
    bkoauth_error e;
    bkoauth_code rc = store_renew(f->st, "test", "erin", renew_if_old, "no-lease", &out, &e);
    f->logger = (bk_logger){log_stderr, NULL, BKOAUTH_LOG_ERROR};
    if (rc != BKOAUTH_OK) fail_msg("renew without the lease table: %s", e.message);
    assert_string_equal(out->access_token, "renewed-by-no-lease");
    bkoauth_token_free(out);
    assert_non_null(strstr(captured, "without the cross-process lock"));
    assert_non_null(strstr(captured, "CREATE TABLE IF NOT EXISTS bkoauth_renewal_lease"));
    store *again = open_store(f); /* makes the table */
    store_close(again);
    put(f, "erin-old", "erin", 900000000, 1700000000);
    captured[0] = '\0';
    f->logger = (bk_logger){capture, NULL, BKOAUTH_LOG_WARNING};
    rc = store_renew(f->st, "test", "erin", renew_if_old, "lease-back", &out, &e);
    f->logger = (bk_logger){log_stderr, NULL, BKOAUTH_LOG_ERROR};
    if (rc != BKOAUTH_OK) fail_msg("renew with the table made again: %s", e.message);
    assert_string_equal(out->access_token, "renewed-by-lease-back");
    bkoauth_token_free(out);
    if (captured[0] != '\0') fail_msg("warnings with the lease table back: %s", captured);
}

static void test_sqlite_file_mode(void **state)
{
    fx *f = *state;
    if (f->s.store_kind != BK_STORE_SQLITE) skip();
    struct stat sb;
    assert_int_equal(stat(f->s.database_path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

/* PostgreSQL: libbkoauth connects with gssencmode=disable (no Kerberos credential cache looked
 * for at every connect), but a gssencmode of the URL, or PGGSSENCMODE, is what applies: here
 * "require", which the test server cannot give, so the opening fails saying so. */
static void expect_gssapi_refusal(fx *f, const char *url)
{
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", url, NULL);
    bkoauth_config_set(cfg, "BKOAUTH_TIMEOUT_MS", "2000", NULL);
    bk_settings s;
    assert_int_equal(settings_from_config(cfg, &s, NULL), BKOAUTH_OK);
    bkoauth_error e;
    store *st = store_open(&s, &f->logger, &e);
    if (st != NULL) fail_msg("opened with gssencmode=require at %s", url);
    assert_int_equal(e.code, BKOAUTH_E_STORE);
    if (strstr(e.message, "GSSAPI") == NULL) fail_msg("no word of GSSAPI: %s", e.message);
    settings_clear(&s);
    bkoauth_config_free(cfg);
}

/* Opens a store on url and reads a token: whether libpq looked at Kerberos meanwhile (libkrb5
 * creates the KRB5_TRACE file when it starts, which libpq's GSSAPI probe makes it do). */
static int kerberos_looked_at(fx *f, const char *url)
{
    char trace[64];
    snprintf(trace, sizeof trace, "/tmp/bkoauth-krb5-trace-%d", (int)getpid());
    unlink(trace);
    setenv("KRB5_TRACE", trace, 1);
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", url, NULL);
    bk_settings s;
    assert_int_equal(settings_from_config(cfg, &s, NULL), BKOAUTH_OK);
    bkoauth_error e;
    store *st = store_open(&s, &f->logger, &e);
    if (st == NULL) fail_msg("store_open: %s", e.message);
    bkoauth_token *t = NULL;
    store_get(st, "test", "nobody", &t, &e);
    bkoauth_token_free(t);
    store_close(st);
    settings_clear(&s);
    bkoauth_config_free(cfg);
    unsetenv("KRB5_TRACE");
    int looked = access(trace, F_OK) == 0;
    unlink(trace);
    return looked;
}

static void test_gssencmode_of_url_and_environment(void **state)
{
    fx *f = *state;
    if (f->s.store_kind != BK_STORE_POSTGRES) skip();
    char url[600];
    assert_int_equal(kerberos_looked_at(f, f->url), 0);
    snprintf(url, sizeof url, "%s%sgssencmode=prefer", f->url, strchr(f->url, '?') ? "&" : "?");
    assert_int_equal(kerberos_looked_at(f, url), 1); /* libpq's default, asked for */
    snprintf(url, sizeof url, "%s%sgssencmode=require", f->url, strchr(f->url, '?') ? "&" : "?");
    expect_gssapi_refusal(f, url);
    setenv("PGGSSENCMODE", "require", 1);
    expect_gssapi_refusal(f, f->url);
    unsetenv("PGGSSENCMODE");
    store_close(open_store(f)); /* the default again */
}

/* PostgreSQL and MySQL: a client keeps working across a database restart: the first call after
 * the server is back succeeds; a call while it is down is StoreError with a clear message, and
 * nothing saved is lost. */
static int server_ctl(fx *f, const char *what)
{
    const char *script = f->s.store_kind == BK_STORE_POSTGRES ? "pg.sh" : "mysql.sh";
    const char *dir =
        getenv(f->s.store_kind == BK_STORE_POSTGRES ? "BKOAUTH_TEST_PG_DIR" : "BKOAUTH_TEST_MYSQL_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/%s' %s '%s'", BKOAUTH_SOURCE_DIR, script, what, dir);
    return system(cmd);
}

static int server_store(fx *f)
{
    if (f->s.store_kind == BK_STORE_POSTGRES) return getenv("BKOAUTH_TEST_PG_DIR") != NULL;
    if (f->s.store_kind == BK_STORE_MYSQL) return getenv("BKOAUTH_TEST_MYSQL_DIR") != NULL;
    return 0;
}

/* The first read, save and renewal after each restart succeed (restart: what to restart). */
static void first_calls_after_restarts(fx *f, int (*restart)(fx *f))
{
    put(f, "gina-1", "gina", 2000000000, 1700000000);
    /* every pooled connection is idle and open: a restart makes them all stale */
    assert_int_equal(restart(f), 0);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (store_get(f->st, "test", "gina", &t, &e) != BKOAUTH_OK)
        fail_msg("first read after a restart: %s", e.message);
    assert_string_equal(t->access_token, "gina-1");
    bkoauth_token_free(t);
    /* through a pooler (run three times over by test_pgbouncer_pg.sh) the read and the renewal
     * (a lease, a read and a save, each first on its connection) are enough */
    int quick = getenv("BKOAUTH_TEST_PG_POOLER") != NULL;
    if (!quick) assert_int_equal(restart(f), 0);
    put(f, "gina-2", "gina", 2000003600, 1700000000); /* the first save after a restart */
    if (!quick) assert_int_equal(restart(f), 0);
    atomic_store(&renewals, 0);
    put(f, "erin-old", "erin", 900000000, 1700000000);
    assert_int_equal(restart(f), 0);
    bkoauth_token *out = NULL;
    if (store_renew(f->st, "test", "erin", renew_if_old, "after-restart", &out, &e) != BKOAUTH_OK)
        fail_msg("first renewal after a restart: %s", e.message); /* lease connections stale too */
    assert_string_equal(out->access_token, "renewed-by-after-restart");
    bkoauth_token_free(out);
}

static int restart_server(fx *f)
{
    return server_ctl(f, "restart");
}

/* BKOAUTH_TEST_POOLER_CTL: a command that restarts the pooler the store's URL goes through
 * (tests/scripts/test_pgbouncer_pg.sh sets it). */
static int restart_pooler(fx *f)
{
    (void)f;
    return system(getenv("BKOAUTH_TEST_POOLER_CTL"));
}

static void test_pooler_restart(void **state)
{
    fx *f = *state;
    if (getenv("BKOAUTH_TEST_POOLER_CTL") == NULL) skip();
    first_calls_after_restarts(f, restart_pooler);
}

static void test_server_restart(void **state)
{
    fx *f = *state;
    if (!server_store(f)) skip();
    first_calls_after_restarts(f, restart_server);
    /* behind a pooler a call while the server is down waits in the pooler's queue (PgBouncer's
     * query_wait_timeout): the part below is the library's own, tested directly */
    if (getenv("BKOAUTH_TEST_PG_POOLER") != NULL) return;
    bkoauth_token *t = NULL;
    bkoauth_error e;
    /* down: a clear error; back up: the next calls work, nothing lost */
    assert_int_equal(server_ctl(f, "down"), 0);
    bkoauth_code rc = store_get(f->st, "test", "gina", &t, &e);
    int up = server_ctl(f, "up");
    assert_int_equal(rc, BKOAUTH_E_STORE);
    assert_null(t);
    assert_non_null(strstr(e.message, "is the server running"));
    assert_int_equal(up, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_get(f->st, "test", "gina", &t, &e), BKOAUTH_OK);
        assert_string_equal(t->access_token, "gina-2");
        bkoauth_token_free(t);
    }
    put(f, "gina-3", "gina", 2000007200, 1700000000);
    assert_int_equal(store_get(f->st, "test", "gina", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, "gina-3");
    bkoauth_token_free(t);
}

/* A list longer than the first array (256 rows) and than one round of the sort: every row, once,
 * in the order of the stores' ORDER BY (the APP rows first, then by user_id, env_name, id),
 * whatever order the rows were saved in. */
static void test_list_of_many(void **state)
{
    fx *f = *state;
    enum { USERS = 150 };
    unsigned seed = 12345;
    int order[USERS];
    for (int i = 0; i < USERS; i++)
        order[i] = i;
    for (int i = USERS - 1; i > 0; i--) { /* a fixed shuffle */
        seed = seed * 1103515245u + 12345u;
        int j = (int)((seed >> 8) % (unsigned)(i + 1)), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    const char *envs[2] = {"test", "prod"};
    for (int e = 1; e >= 0; e--) {
        for (int i = 0; i < USERS; i++) {
            char user[16], access[32];
            snprintf(user, sizeof user, "u%03d", order[i]);
            snprintf(access, sizeof access, "at-%s-%s", envs[e], user);
            bkoauth_token *t = token_make(access, "r", "", envs[e], user, 2000000000, 1700000000);
            bkoauth_error err;
            if (store_put(f->st, t, &err) != BKOAUTH_OK) fail_msg("put: %s", err.message);
            bkoauth_token_free(t);
        }
        char access[32];
        snprintf(access, sizeof access, "at-%s-app", envs[e]);
        bkoauth_token *t = token_make(access, "", "", envs[e], NULL, 2000000000, 1700000000);
        assert_int_equal(store_put(f->st, t, NULL), BKOAUTH_OK);
        bkoauth_token_free(t);
    }
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->st, &all, &n, NULL), BKOAUTH_OK);
    assert_int_equal(n, 2 * USERS + 2);
    assert_null(all[0]->user_id); /* the two APP rows, prod's saved first */
    assert_null(all[1]->user_id);
    assert_string_equal(all[0]->access_token, "at-prod-app");
    assert_string_equal(all[1]->access_token, "at-test-app");
    for (int i = 0; i < USERS; i++) {
        for (int e = 0; e < 2; e++) {
            const bkoauth_token *t = all[2 + 2 * i + e];
            char user[16], access[32];
            snprintf(user, sizeof user, "u%03d", i);
            snprintf(access, sizeof access, "at-%s-%s", e == 0 ? "prod" : "test", user);
            assert_string_equal(t->user_id, user);
            assert_string_equal(t->env_name, e == 0 ? "prod" : "test");
            assert_string_equal(t->access_token, access);
            assert_string_equal(t->refresh_token, "r");
            assert_int_equal(t->expires, 2000000000);
        }
    }
    bkoauth_tokens_free(all, n);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, empty)
    const struct CMUnitTest tests[] = {
        T(test_put_get_update_in_place),
        T(test_app_and_users_apart),
        T(test_list_of_many),
        T(test_bound_parameters),
        T(test_junk_rows),
        T(test_limits),
        T(test_exact_user_names),
        T(test_user_id_of_64_characters),
        T(test_renew_error_changes_nothing),
        T(test_renew_once_from_threads),
        T(test_renew_once_from_processes),
        T(test_killed_inside_renewal),
        T(test_lease_table_missing),
        T(test_sqlite_file_mode),
        T(test_gssencmode_of_url_and_environment),
        T(test_server_restart),
        T(test_pooler_restart),
    };
    int failed = cmocka_run_group_tests_name(teststore_kind(), tests, setup, teardown);
    teststore_cleanup();
    return failed ? 1 : 0;
}
