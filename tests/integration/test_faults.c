/* SPDX-License-Identifier: MIT */
/* test_faults.c - faults survived, on the store BKOAUTH_TEST_STORE names: an SSM outage while the
 * saved token is still valid (served, with back-off), a hanging service (nobody but the renewer
 * waits for it), a grant whose save fails (returned, kept, served and saved later: injected
 * store faults, no sleeps), a PostgreSQL restart with warm connections and during an in-flight
 * refresh, and a client used in a child after fork(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testfixture.h"
#include "internal.h"
#include "store/store.h"
#include "teststore.h"
#include "testsettings.h"
#include "testtime.h"

#define SECRET "faults-secret-0123456789"

typedef test_fixture fixture;

static const test_fixture_spec fixture_spec = {"faults-app", SECRET, test_dev_alice_bob_hour, "faults", 0, 0};
static fixture *F;

static int setup(void **state)
{
    int rc = test_fixture_setup(state, sizeof(fixture), &fixture_spec);
    F = *state;
    return rc;
}

/* A client on the fixture's store; extra: NAME, VALUE, ..., NULL. Tokens of the devserver live
 * 3600 s: with EXPIRES_SECONDS 7200 they expire soon (but have not expired). */
static bkoauth_client *client(const char *expires_seconds, const char *const *extra)
{
    const char *own[] = {"BKOAUTH_CACHE_SECONDS", "0", "EXPIRES_SECONDS", expires_seconds, NULL};
    return test_fixture_client(F, F->dev->url, own, extra);
}

static bkoauth_stats stats(bkoauth_client *c)
{
    bkoauth_stats s;
    assert_int_equal(bkoauth_client_stats(c, &s, NULL), BKOAUTH_OK);
    return s;
}

/* ---- an outage while the saved tokens are still valid ----------------------------------------- */

static void test_outage_serves_valid_tokens(void **state)
{
    fixture *f = *state;
    bkoauth_client *fresh = client("60", NULL);
    bkoauth_token *alice = test_call_login(fresh, "alice"), *app = NULL;
    assert_int_equal(bkoauth_get_app_access_token(fresh, &app, NULL), BKOAUTH_OK);
    const char *backoff[] = {"BKOAUTH_BACKOFF_SECONDS", "2", NULL};
    bkoauth_client *c = client("7200", backoff);
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    assert_int_equal(devserver_fault(f->dev, "http500", 1000, 0), 0);
    for (int i = 0; i < 20; i++) {
        bkoauth_token *t = test_call_by_user(c, "alice");
        assert_string_equal(t->access_token, alice->access_token);
        bkoauth_token_free(t);
        bkoauth_error e;
        assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_OK);
        assert_string_equal(t->access_token, app->access_token);
        bkoauth_token_free(t);
    }
    /* a login of alice during the outage gets her saved, valid token too */
    bkoauth_token *t = test_call_login(c, "alice");
    assert_string_equal(t->access_token, alice->access_token);
    bkoauth_token_free(t);
    long attempts = devserver_counter(f->dev, "total");
    if (attempts > 4)
        fail_msg("%ld calls reached the failing service for 41 requests; want at most a few", attempts);
    bkoauth_stats s = stats(c);
    assert_true(s.served_during_outage >= 39);
    assert_int_equal(s.ssm_fail_server, (uint64_t)attempts);

    /* an expired token is never served: that stays a TokenAPIError */
    {
        bkoauth_config *cfg = bkoauth_config_new();
        bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", f->db_url, NULL);
        bk_settings st;
        assert_int_equal(settings_from_config(cfg, &st, NULL), BKOAUTH_OK);
        bk_logger lg = {NULL, NULL, 0};
        store *raw = store_open(&st, &lg, NULL);
        assert_non_null(raw);
        bkoauth_token *d = token_make("dave-expired-token", "dave-refresh", "", "test", "dave",
                                      time(NULL) - 10, time(NULL) - 100);
        assert_int_equal(store_put(raw, d, NULL), BKOAUTH_OK);
        bkoauth_token_free(d);
        store_close(raw);
        settings_clear(&st);
        bkoauth_config_free(cfg);
    }
    bkoauth_error e;
    t = (bkoauth_token *)1;
    assert_int_equal(bkoauth_get_access_token_by_user(c, "dave", &t, &e), BKOAUTH_E_TOKEN_API);
    assert_null(t);

    /* the service is back: after the back-off, the next call renews */
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    test_sleep_ms(2300);
    t = test_call_by_user(c, "alice");
    assert_string_not_equal(t->access_token, alice->access_token);
    bkoauth_token_free(t);
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_OK);
    assert_string_not_equal(t->access_token, app->access_token);
    bkoauth_token_free(t);
    bkoauth_token_free(alice);
    bkoauth_token_free(app);
    bkoauth_client_free(c);
    bkoauth_client_free(fresh);
}

/* A hanging service: the caller that renews waits for BKOAUTH_TIMEOUT_MS and gets its valid
 * token; later callers get it at once, without calling (back-off). */
static void test_hanging_service(void **state)
{
    fixture *f = *state;
    bkoauth_client *fresh = client("60", NULL);
    bkoauth_token *alice = test_call_login(fresh, "alice");
    const char *extra[] = {"BKOAUTH_TIMEOUT_MS", "400", NULL};
    bkoauth_client *c = client("7200", extra);
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    assert_int_equal(devserver_fault(f->dev, "slow", 1000, 5000), 0);
    for (int i = 0; i < 10; i++) {
        bkoauth_token *t = test_call_by_user(c, "alice");
        assert_string_equal(t->access_token, alice->access_token);
        bkoauth_token_free(t);
    }
    assert_int_equal(devserver_counter(f->dev, "total"), 1);
    bkoauth_stats s = stats(c);
    assert_int_equal(s.ssm_fail_network, 1);
    assert_int_equal(s.served_during_outage, 10);
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    bkoauth_token_free(alice);
    bkoauth_client_free(c);
    bkoauth_client_free(fresh);
}

/* Callers of one key while its renewal call hangs: those holding a valid token take it instead of
 * waiting for the call. */
typedef struct waiter {
    bkoauth_client *c;
    int rc;
    char token[64];
    long in_flight_after;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    bkoauth_token *t = NULL;
    w->rc = bkoauth_get_access_token_by_user(w->c, "alice", &t, NULL);
    w->in_flight_after = devserver_counter(F->dev, "in_flight");
    if (t) snprintf(w->token, sizeof w->token, "%s", t->access_token);
    bkoauth_token_free(t);
    return NULL;
}

static void test_waiters_take_their_valid_token(void **state)
{
    fixture *f = *state;
    bkoauth_client *fresh = client("60", NULL);
    bkoauth_token *alice = test_call_login(fresh, "alice");
    const char *extra[] = {"BKOAUTH_TIMEOUT_MS", "20000", NULL};
    bkoauth_client *c = client("7200", extra);
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    assert_int_equal(devserver_fault(f->dev, "slow", 1, 5000), 0);
    enum { N = 6 };
    waiter w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        w[i] = (waiter){.c = c};
        pthread_create(&th[i], NULL, waiter_main, &w[i]);
    }
    int old = 0, renewed = 0, early = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].rc, BKOAUTH_OK);
        if (strcmp(w[i].token, alice->access_token) == 0) {
            old++;
            early += w[i].in_flight_after == 1; /* returned while the renewal was still calling */
        } else {
            renewed++;
        }
    }
    assert_int_equal(devserver_counter(f->dev, "refresh"), 1); /* one renewal for all */
    assert_int_equal(renewed, 1);
    assert_int_equal(old, N - 1);
    assert_int_equal(early, N - 1);
    bkoauth_token_free(alice);
    bkoauth_client_free(c);
    bkoauth_client_free(fresh);
}

/* ---- a grant whose save fails ------------------------------------------------------------------ */

static void test_grant_kept_when_save_fails(void **state)
{
    fixture *f = *state;
    /* alice's first token lives 120 s (it expires soon for c, EXPIRES_SECONDS 600); the tokens
     * issued later live an hour (fresh for c) */
    bkoauth_client *other = client("60", NULL); /* another process's view of the table */
    assert_int_equal(devserver_config(f->dev, 120, -1), 0);
    bkoauth_token *t1 = test_call_login(other, "alice");
    assert_int_equal(devserver_config(f->dev, 3600, -1), 0);
    bkoauth_client *c = client("600", NULL);
    json_decref(devserver_post(f->dev, "/__dev/reset"));

    /* the save fails, and so does the retry: the caller still gets the new token */
    store_fail_next_saves(client_store(c), 2);
    bkoauth_token *t2 = test_call_by_user(c, "alice");
    assert_string_not_equal(t2->access_token, t1->access_token);
    assert_int_equal(devserver_counter(f->dev, "refresh"), 1);
    assert_int_equal(stats(c).grants_unsaved, 1);
    bkoauth_token *seen = test_call_by_user(other, "alice");
    assert_string_equal(seen->access_token, t1->access_token); /* not saved yet */
    bkoauth_token_free(seen);
    /* the next caller gets the kept grant without calling the service, and it is saved then */
    bkoauth_token *t = test_call_by_user(c, "alice");
    assert_string_equal(t->access_token, t2->access_token);
    bkoauth_token_free(t);
    assert_int_equal(devserver_counter(f->dev, "refresh"), 1);
    bkoauth_stats s = stats(c);
    assert_int_equal(s.grants_unsaved, 0);
    assert_int_equal(s.grants_saved_late, 1);
    seen = test_call_by_user(other, "alice");
    assert_string_equal(seen->access_token, t2->access_token);
    assert_string_equal(seen->refresh_token, t2->refresh_token);
    bkoauth_token_free(seen);

    /* every save fails for a while: the grant is served from the process, and the next renewal
     * saves it first (its refresh_token, the only live one, is not lost) */
    store_fail_next_saves(client_store(c), 1000);
    bkoauth_token *t3 = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_refresh_token(c, t2, &t3, &e), BKOAUTH_OK);
    t = test_call_by_user(c, "alice");
    assert_string_equal(t->access_token, t3->access_token);
    bkoauth_token_free(t);
    seen = test_call_by_user(other, "alice");
    assert_string_equal(seen->access_token, t2->access_token);
    bkoauth_token_free(seen);
    store_fail_next_saves(client_store(c), 0);
    bkoauth_token *t4 = NULL;
    assert_int_equal(bkoauth_refresh_token(c, t3, &t4, &e), BKOAUTH_OK);
    seen = test_call_by_user(other, "alice");
    assert_string_equal(seen->access_token, t4->access_token);
    bkoauth_token_free(seen);
    assert_true(devserver_token_valid(f->dev, t4->access_token));
    assert_int_equal(devserver_counter(f->dev, "refresh_failed"), 0);
    bkoauth_token_free(t1);
    bkoauth_token_free(t2);
    bkoauth_token_free(t3);
    bkoauth_token_free(t4);
    bkoauth_client_free(c);
    bkoauth_client_free(other);
}

/* ---- database server restarts (PostgreSQL, MySQL) -------------------------------------------- */

static int is_mysql(void)
{
    return strcmp(teststore_kind(), "mysql") == 0;
}

static int server_ctl(const char *what)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/%s' %s '%s' >/dev/null", BKOAUTH_SOURCE_DIR,
             is_mysql() ? "mysql.sh" : "pg.sh", what,
             getenv(is_mysql() ? "BKOAUTH_TEST_MYSQL_DIR" : "BKOAUTH_TEST_PG_DIR"));
    return system(cmd);
}

/* A store on a server the test command started (and lets the tests restart). */
static int on_server(void)
{
    if (is_mysql()) return getenv("BKOAUTH_TEST_MYSQL_DIR") != NULL;
    return strcmp(teststore_kind(), "postgres") == 0 && getenv("BKOAUTH_TEST_PG_DIR") != NULL;
}

typedef struct reader {
    bkoauth_client *c;
    pthread_barrier_t *go;
    int failed;
} reader;

static void *reader_main(void *arg)
{
    reader *r = arg;
    pthread_barrier_wait(r->go);
    for (int i = 0; i < 300; i++) {
        bkoauth_token *t = NULL;
        if (bkoauth_get_access_token_by_user(r->c, "alice", &t, NULL) != BKOAUTH_OK) r->failed++;
        bkoauth_token_free(t);
    }
    return NULL;
}

static void test_database_restart_warm_connections(void **state)
{
    fixture *f = *state;
    if (!on_server()) skip();
    bkoauth_client *c = client("60", NULL);
    bkoauth_token *alice = test_call_login(c, "alice");
    /* warm the pool: 8 threads reading at once */
    enum { N = 8 };
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    reader r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (reader){.c = c, .go = &go};
        pthread_create(&th[i], NULL, reader_main, &r[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].failed, 0);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(server_ctl("restart"), 0);
    /* every call after the restart succeeds */
    for (int i = 0; i < N; i++) {
        bkoauth_token *t = test_call_by_user(c, "alice");
        assert_string_equal(t->access_token, alice->access_token);
        bkoauth_token_free(t);
    }
    bkoauth_token **all = NULL;
    size_t n = 0;
    bkoauth_error e;
    assert_int_equal(bkoauth_list_tokens(c, &all, &n, &e), BKOAUTH_OK);
    assert_int_equal(n, 1);
    bkoauth_tokens_free(all, n);
    /* and a renewal (lock connection and write connection) too */
    assert_int_equal(server_ctl("restart"), 0);
    bkoauth_token *fresh = NULL;
    assert_int_equal(bkoauth_refresh_token(c, alice, &fresh, &e), BKOAUTH_OK);
    assert_true(stats(c).store_reconnects >= 1);
    bkoauth_token_free(fresh);
    bkoauth_token_free(alice);
    bkoauth_client_free(c);
    (void)f;
}

/* The database is down: a call whose token this thread read before, and which this process has
 * not renewed since, gets that copy while it does not expire soon (nothing newer can be read while
 * the store cannot be); a key this thread never read, an expiring token or a client without a
 * cache still gets the StoreError. The first call after the server is back reads the store. */
static void test_database_down_serves_what_was_read(void **state)
{
    fixture *f = *state;
    if (!on_server()) skip();
    const char *cache1[] = {"BKOAUTH_CACHE_SECONDS", "1", NULL};
    bkoauth_client *c = client("60", cache1);
    bkoauth_client *nocache = client("60", NULL);
    const char *cache1h[] = {"BKOAUTH_CACHE_SECONDS", "3600", NULL};
    bkoauth_client *soon = client("7200", cache1h); /* every token expires soon for it */
    bkoauth_token *alice = test_call_login(c, "alice"), *bob = test_call_login(nocache, "bob"), *app = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_app_access_token(c, &app, &e), BKOAUTH_OK);
    bkoauth_token *t = test_call_by_user(c, "alice"); /* read, and cached by this thread */
    bkoauth_token_free(t);
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    assert_int_equal(server_ctl("down"), 0);
    test_sleep_ms(1300); /* older than BKOAUTH_CACHE_SECONDS: a cached call would read the store */
    uint64_t served = stats(c).served_during_outage;
    for (int i = 0; i < 3; i++) {
        t = NULL;
        assert_int_equal(bkoauth_get_access_token_by_user(c, "alice", &t, &e), BKOAUTH_OK);
        assert_string_equal(t->access_token, alice->access_token);
        bkoauth_token_free(t);
        t = NULL;
        assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_OK);
        assert_string_equal(t->access_token, app->access_token);
        bkoauth_token_free(t);
        /* a login of alice too, without a call to the service */
        t = test_call_login(c, "alice");
        assert_string_equal(t->access_token, alice->access_token);
        bkoauth_token_free(t);
    }
    assert_int_equal(devserver_counter(f->dev, "total"), 0);
    assert_true(stats(c).served_during_outage >= served + 9);
    /* bob's row was saved through the client without a cache: this thread never read it; nor can
     * that client serve alice */
    t = (bkoauth_token *)1;
    assert_int_equal(bkoauth_get_access_token_by_user(c, "bob", &t, &e), BKOAUTH_E_STORE);
    assert_null(t);
    assert_int_equal(bkoauth_get_access_token_by_user(nocache, "alice", &t, &e), BKOAUTH_E_STORE);
    /* a copy that expires soon is never served from memory */
    assert_int_equal(bkoauth_get_access_token_by_user(soon, "alice", &t, &e), BKOAUTH_E_STORE);
    assert_int_equal(server_ctl("up"), 0);
    t = test_call_by_user(c, "bob");
    assert_string_equal(t->access_token, bob->access_token);
    bkoauth_token_free(t);
    bkoauth_token_free(alice);
    bkoauth_token_free(bob);
    bkoauth_token_free(app);
    bkoauth_client_free(soon);
    bkoauth_client_free(nocache);
    bkoauth_client_free(c);
}

typedef struct refresher {
    bkoauth_client *c;
    int rc;
    char token[64];
    char message[512];
} refresher;

static void *refresher_main(void *arg)
{
    refresher *r = arg;
    bkoauth_token *t = NULL;
    bkoauth_error e;
    r->rc = bkoauth_get_access_token_by_user(r->c, "alice", &t, &e);
    if (t) snprintf(r->token, sizeof r->token, "%s", t->access_token);
    snprintf(r->message, sizeof r->message, "%s", e.message);
    bkoauth_token_free(t);
    return NULL;
}

/* The database restarts while a refresh is at the service: the grant is saved after all. */
static void test_database_restart_during_refresh(void **state)
{
    fixture *f = *state;
    if (!on_server()) skip();
    bkoauth_client *other = client("60", NULL);
    bkoauth_token *t1 = test_call_login(other, "alice");
    /* the slow answer (6 s) well inside the call's timeout even on a loaded machine under a
     * sanitizer: a timeout would make this an outage, answered with the saved token */
    const char *patient[] = {"BKOAUTH_TIMEOUT_MS", "60000", NULL};
    bkoauth_client *c = client("7200", patient);
    bkoauth_token_free(test_call_login(c, "bob")); /* every pool of c warm: a save, a lookup */
    bkoauth_token_free(test_call_by_user(other, "alice"));
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    /* the answer comes after the restart is over: a restart takes a second or more, and several
     * on a loaded machine; the grant must reach a server that is up again */
    assert_int_equal(devserver_fault(f->dev, "slow", 1, 6000), 0);
    refresher r = {.c = c};
    pthread_t th;
    pthread_create(&th, NULL, refresher_main, &r);
    for (int i = 0; i < 500 && devserver_counter(f->dev, "in_flight") != 1; i++)
        test_sleep_ms(10);
    assert_int_equal(devserver_counter(f->dev, "in_flight"), 1);
    assert_int_equal(server_ctl("restart"), 0);
    pthread_join(th, NULL);
    if (r.rc != BKOAUTH_OK) fail_msg("refresh across the restart: %s", r.message);
    if (strcmp(r.token, t1->access_token) == 0)
        fail_msg("the old token was served: the refresh did not reach the service in time (in flight %d)",
                 devserver_counter(f->dev, "in_flight"));
    bkoauth_token *seen = test_call_by_user(other, "alice");
    assert_string_equal(seen->access_token, r.token); /* the row holds the new grant */
    bkoauth_token *next = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_refresh_token(other, seen, &next, &e), BKOAUTH_OK); /* and it refreshes */
    bkoauth_token_free(next);
    bkoauth_token_free(seen);
    bkoauth_token_free(t1);
    bkoauth_client_free(c);
    bkoauth_client_free(other);
}

/* ---- fork ------------------------------------------------------------------------------------ */

static void test_fork(void **state)
{
    fixture *f = *state;
    bkoauth_client *c = client("60", NULL);
    bkoauth_token *alice = test_call_login(c, "alice");
    bkoauth_token_free(test_call_by_user(c, "alice"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child: lookups, a refresh (service and save), the APP token */
        bkoauth_token *t = NULL, *n = NULL;
        int ok = bkoauth_get_access_token_by_user(c, "alice", &t, NULL) == BKOAUTH_OK &&
                 bkoauth_refresh_token(c, t, &n, NULL) == BKOAUTH_OK;
        bkoauth_token_free(t);
        bkoauth_token_free(n);
        ok = ok && bkoauth_get_app_access_token(c, &t, NULL) == BKOAUTH_OK;
        bkoauth_token_free(t);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the parent's connections were left alone: it sees the child's refresh and renews on */
    bkoauth_token *t = test_call_by_user(c, "alice");
    assert_string_not_equal(t->access_token, alice->access_token);
    bkoauth_token *n = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_refresh_token(c, t, &n, &e), BKOAUTH_OK);
    bkoauth_token_free(n);
    bkoauth_token_free(t);
    bkoauth_token_free(alice);
    bkoauth_client_free(c);
    (void)f;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, test_fixture_fresh_store)
    const struct CMUnitTest tests[] = {
        T(test_outage_serves_valid_tokens),         T(test_hanging_service),
        T(test_waiters_take_their_valid_token),     T(test_grant_kept_when_save_fails),
        T(test_database_restart_warm_connections),  T(test_database_restart_during_refresh),
        T(test_database_down_serves_what_was_read), T(test_fork),
    };
    int failed = TEST_RUN_GROUP("faults", tests, 0, setup, test_fixture_teardown);
    teststore_cleanup();
    return failed ? 1 : 0;
}
