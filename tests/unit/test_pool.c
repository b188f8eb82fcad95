/* SPDX-License-Identifier: MIT */
/* test_pool.c - the connection pool (src/store/pool.c) with a stand-in "connection" whose opening
 * takes a while: callers that start together share the connection being opened instead of each
 * opening one, at most one open is in progress at a time while opens succeed; after one fails
 * the callers that waited for it try their own at once (served when the database answers them,
 * each with its own error when it does not), and the pool opens again. No I/O, no timing
 * assertion: the stand-in counts what happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "store/pool.h"

#define CALLERS 8

typedef struct fake_db {
    atomic_int opens;       /* open calls */
    atomic_int in_open;     /* open calls running now */
    atomic_int max_in_open; /* the most ever running at once */
    atomic_int fail;        /* opens still to fail; < 0: every one fails */
    atomic_int closes;
} fake_db;

typedef struct fake_conn {
    int serial;
} fake_conn;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* the threads that made the opens and reconnections */
#define ATTEMPTS_SEEN 256
static pthread_t attempt_thread[ATTEMPTS_SEEN];
static atomic_int attempts_seen;

static void seen_attempt(void)
{
    int i = atomic_fetch_add(&attempts_seen, 1);
    if (i < ATTEMPTS_SEEN) attempt_thread[i] = pthread_self();
}

static void *fake_open(void *ctx, bkoauth_error *err)
{
    fake_db *db = ctx;
    seen_attempt();
    int serial = atomic_fetch_add(&db->opens, 1) + 1;
    int now = atomic_fetch_add(&db->in_open, 1) + 1;
    for (int m = atomic_load(&db->max_in_open);
         now > m && !atomic_compare_exchange_weak(&db->max_in_open, &m, now);)
        ;
    sleep_ms(100); /* a connection costs far more than the work done on it */
    atomic_fetch_sub(&db->in_open, 1);
    int fail = atomic_load(&db->fail);
    if (fail < 0 || (fail > 0 && atomic_fetch_sub(&db->fail, 1) > 0)) {
        err_set(err, BKOAUTH_E_STORE, "cannot reach the stand-in database (open %d)", serial);
        return NULL;
    }
    fake_conn *c = bkoauth__calloc(1, sizeof *c);
    if (c != NULL) c->serial = serial;
    return c;
}

static atomic_int closed; /* fake_close calls */

static void fake_close(void *conn)
{
    atomic_fetch_add(&closed, 1);
    bkoauth__free(conn);
}

typedef struct caller {
    pthread_t self;
    pool *p;
    pthread_barrier_t *start;
    int got;   /* 1: a connection */
    int fresh; /* opened by this call */
    bkoauth_error err;
} caller;

static void *run_caller(void *arg)
{
    caller *c = arg;
    c->self = pthread_self();
    pthread_barrier_wait(c->start);
    memset(&c->err, 0, sizeof c->err);
    void *conn = pool_get(c->p, &c->fresh, &c->err);
    c->got = conn != NULL;
    if (conn != NULL) {
        sleep_ms(1); /* a short statement */
        pool_put(c->p, conn);
    }
    return NULL;
}

/* CALLERS threads ask at once; returns how many got a connection. */
static int run_callers(pool *p, caller cs[CALLERS])
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CALLERS);
    pthread_t th[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        cs[i] = (caller){.p = p, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, run_caller, &cs[i]), 0);
    }
    int got = 0;
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(th[i], NULL);
        got += cs[i].got;
    }
    pthread_barrier_destroy(&start);
    return got;
}

static void test_callers_share_the_connection_being_opened(void **state)
{
    (void)state;
    fake_db db = {0};
    pool p;
    assert_int_equal(pool_init(&p, CALLERS, fake_open, fake_close, &db), 0);
    caller cs[CALLERS];
    assert_int_equal(run_callers(&p, cs), CALLERS);
    assert_int_equal(atomic_load(&db.max_in_open), 1);
    /* each open takes 100 ms and a caller holds a connection 1 ms: far fewer opens than callers */
    assert_true(atomic_load(&db.opens) < CALLERS);
    int fresh = 0;
    for (int i = 0; i < CALLERS; i++)
        fresh += cs[i].fresh;
    assert_int_equal(fresh, atomic_load(&db.opens));
    pool_destroy(&p);
}

static void test_after_a_failed_open_the_waiters_try_their_own(void **state)
{
    (void)state;
    fake_db db = {0};
    atomic_store(&db.fail, 1); /* the first open fails, the database answers the next ones */
    pool p;
    assert_int_equal(pool_init(&p, CALLERS, fake_open, fake_close, &db), 0);
    caller cs[CALLERS];
    /* the caller whose open failed sees its error; the others, waiting for it, open their own */
    int got = run_callers(&p, cs);
    assert_true(got >= CALLERS - 1);
    for (int i = 0; i < CALLERS; i++)
        if (!cs[i].got)
            assert_non_null(strstr(cs[i].err.message, "cannot reach the stand-in database (open 1)"));
    assert_true(atomic_load(&db.opens) >= 2);
    pool_destroy(&p);
}

/* A pool on a stand-in database that is down, and CALLERS callers that all failed on it. */
static void all_fail_on_a_server_down(fake_db *db, pool *p, caller cs[CALLERS])
{
    atomic_store(&db->fail, -1);
    assert_int_equal(pool_init(p, CALLERS, fake_open, fake_close, db), 0);
    assert_int_equal(run_callers(p, cs), 0);
}

/* The database is back: the next call opens (or connects again) and succeeds; p is destroyed. */
static void back_and_serving(fake_db *db, pool *p)
{
    atomic_store(&db->fail, 0);
    int fresh = 0;
    bkoauth_error err;
    void *conn = pool_get(p, &fresh, &err);
    assert_non_null(conn);
    assert_int_equal(fresh, 1);
    pool_put(p, conn);
    pool_destroy(p);
}

static void test_a_database_that_is_down_fails_every_caller_with_its_error(void **state)
{
    (void)state;
    fake_db db = {0};
    pool p;
    caller cs[CALLERS];
    all_fail_on_a_server_down(&db, &p, cs);
    for (int i = 0; i < CALLERS; i++) {
        assert_int_equal(cs[i].err.code, BKOAUTH_E_STORE);
        assert_non_null(strstr(cs[i].err.message, "cannot reach the stand-in database"));
    }
    /* after the first failure the callers did not queue behind each other: they opened at once */
    assert_true(atomic_load(&db.max_in_open) > 1);
    /* the database is back: the next call opens and succeeds */
    back_and_serving(&db, &p);
}

static void test_max_connections_still_bound_the_pool(void **state)
{
    (void)state;
    fake_db db = {0};
    pool p;
    assert_int_equal(pool_init(&p, 2, fake_open, fake_close, &db), 0);
    bkoauth_error err;
    void *a = pool_get(&p, NULL, &err), *b = pool_get(&p, NULL, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(atomic_load(&db.opens), 2);
    pool_put(&p, a);
    void *c = pool_get(&p, NULL, &err);
    assert_ptr_equal(c, a); /* the idle one, no third open */
    assert_int_equal(atomic_load(&db.opens), 2);
    pool_put(&p, b);
    pool_put(&p, c);
    pool_destroy(&p);
}

/* Reconnected in place: 0, or -1 (with err) while db->fail says the database is down. */
static atomic_int reopens;
static int fake_reopen(void *ctx, void *conn, bkoauth_error *err)
{
    fake_db *db = ctx;
    seen_attempt();
    atomic_fetch_add(&reopens, 1);
    if (atomic_load(&db->fail) < 0) {
        err_set(err, BKOAUTH_E_STORE, "cannot reach the stand-in database (reopen)");
        return -1;
    }
    ((fake_conn *)conn)->serial = -1; /* connected again */
    return 0;
}

/* With a reopen function a flush keeps the idle connections (nothing closed, nothing opened) and
 * each is connected again, in its own object, before it is handed out; one that cannot be is
 * kept stale for the next caller, whose reconnection succeeds once the database is back. Without
 * one, pool_put_stale closes. */
static void test_stale_connections_are_connected_again_in_place(void **state)
{
    (void)state;
    fake_db db = {0};
    pool p;
    assert_int_equal(pool_init(&p, 2, fake_open, fake_close, &db), 0);
    pool_set_reopen(&p, fake_reopen);
    atomic_store(&reopens, 0);
    atomic_store(&closed, 0);
    bkoauth_error err;
    int fresh = 0;
    fake_conn *a = pool_get(&p, NULL, &err), *b = pool_get(&p, NULL, &err);
    pool_put(&p, a);
    assert_int_equal(pool_renew(&p, b, &err), 0); /* b found broken: a marked stale */
    assert_int_equal(atomic_load(&reopens), 1);
    assert_int_equal(b->serial, -1);
    pool_put(&p, b);
    fake_conn *again = pool_get(&p, &fresh, &err); /* b: reconnected just now, not stale */
    assert_ptr_equal(again, b);
    assert_int_equal(fresh, 0);
    atomic_store(&db.fail, -1); /* down */
    fake_conn *c = pool_get(&p, &fresh, &err);
    assert_null(c); /* a, stale, could not reconnect */
    assert_int_equal(err.code, BKOAUTH_E_STORE);
    atomic_store(&db.fail, 0); /* back */
    c = pool_get(&p, &fresh, &err);
    assert_ptr_equal(c, a); /* the same object, connected again */
    assert_int_equal(fresh, 1);
    assert_int_equal(a->serial, -1);
    assert_int_equal(atomic_load(&reopens), 3);
    assert_int_equal(atomic_load(&db.opens), 2);
    assert_int_equal(atomic_load(&closed), 0);
    pool_put(&p, b);
    pool_put(&p, c);
    pool_destroy(&p);

    pool q; /* no reopen function: a broken connection given back is closed */
    assert_int_equal(pool_init(&q, 1, fake_open, fake_close, &db), 0);
    void *d = pool_get(&q, NULL, &err);
    pool_put_stale(&q, d);
    assert_int_equal(atomic_load(&closed), 3); /* a and b by pool_destroy, then d */
    fake_conn *e = pool_get(&q, &fresh, &err);
    assert_int_equal(fresh, 1); /* a new one */
    assert_int_equal(atomic_load(&db.opens), 4);
    pool_put(&q, e);
    pool_destroy(&q);
}

/* pool_get_ready: the connection there is, never a new one nor one connected again: NULL before
 * any is opened and while the idle one is stale; waits while the only one is out. */
typedef struct ready_taker {
    pool *p;
    void *got;
} ready_taker;

static void *take_ready(void *arg)
{
    ready_taker *t = arg;
    t->got = pool_get_ready(t->p);
    if (t->got != NULL) pool_put(t->p, t->got);
    return NULL;
}

static void test_get_ready_connects_nothing(void **state)
{
    (void)state;
    fake_db db = {0};
    pool p;
    assert_int_equal(pool_init(&p, 1, fake_open, fake_close, &db), 0);
    pool_set_reopen(&p, fake_reopen);
    atomic_store(&reopens, 0);
    assert_null(pool_get_ready(&p)); /* none opened */
    assert_int_equal(atomic_load(&db.opens), 0);
    bkoauth_error err;
    fake_conn *a = pool_get(&p, NULL, &err);
    assert_non_null(a);
    ready_taker t = {&p, NULL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, take_ready, &t), 0);
    sleep_ms(50); /* the taker waits for a, which is out */
    assert_null(t.got);
    pool_put(&p, a);
    pthread_join(th, NULL);
    assert_ptr_equal(t.got, a);
    fake_conn *b = pool_get_ready(&p);
    assert_ptr_equal(b, a);
    pool_put_stale(&p, b);
    assert_null(pool_get_ready(&p)); /* stale: not connected again */
    assert_int_equal(atomic_load(&reopens), 0);
    assert_int_equal(atomic_load(&db.opens), 1);
    pool_destroy(&p);
}

/* A server that stays down: once two attempts in a row have failed, one caller at a time
 * connects and the others get the last attempt's error at once (no herd of connection attempts
 * against a server that is starting up); the first attempt after the server is back succeeds. */
static void test_a_server_that_looks_down_gets_one_attempt_at_a_time(void **state)
{
    (void)state;
    fake_db db = {0};
    pool p;
    caller cs[CALLERS];
    all_fail_on_a_server_down(&db, &p, cs); /* the first failures: down from now on */
    atomic_store(&db.max_in_open, 0);
    int before = atomic_load(&db.opens);
    assert_int_equal(run_callers(&p, cs), 0);
    assert_int_equal(atomic_load(&db.max_in_open), 1); /* never two attempts at once */
    for (int i = 0; i < CALLERS; i++) {
        assert_int_equal(cs[i].err.code, BKOAUTH_E_STORE);
        assert_non_null(strstr(cs[i].err.message, "cannot reach the stand-in database"));
    }
    /* each open takes 100 ms and the callers start together: one opened, the others failed fast */
    int fast = CALLERS - (atomic_load(&db.opens) - before);
    assert_true(fast >= CALLERS - 2);
    atomic_store(&db.fail, 0);
    bkoauth_error err;
    int fresh = 0;
    void *conn = pool_get(&p, &fresh, &err); /* back: the first attempt succeeds */
    assert_non_null(conn);
    assert_int_equal(fresh, 1);
    pool_put(&p, conn);
    pool_destroy(&p);
}

/* A pool with a reopen function (a database server) makes every open and reconnection in its
 * connector thread, never in a caller's, so that the client library's connection state is
 * allocated and freed in one thread; the callers get the connections as before. */
static void test_connections_are_made_by_the_connector(void **state)
{
    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* ThreadSanitizer builds connect in the callers (pool.h) */
#endif
    fake_db db = {0};
    pool p;
    assert_int_equal(pool_init(&p, CALLERS, fake_open, fake_close, &db), 0);
    pool_set_reopen(&p, fake_reopen);
    atomic_store(&attempts_seen, 0);
    caller cs[CALLERS];
    assert_int_equal(run_callers(&p, cs), CALLERS);
    int opens = atomic_load(&db.opens);
    assert_true(opens >= 1);
    pool_flush(&p); /* every idle one stale: the next callers reconnect them */
    atomic_store(&reopens, 0);
    assert_int_equal(run_callers(&p, cs), CALLERS);
    assert_true(atomic_load(&reopens) >= 1);
    int n = atomic_load(&attempts_seen);
    assert_int_equal(n, atomic_load(&db.opens) + atomic_load(&reopens));
    assert_true(n <= ATTEMPTS_SEEN);
    for (int i = 0; i < n; i++) {
        assert_true(pthread_equal(attempt_thread[i], attempt_thread[0]));
        for (int k = 0; k < CALLERS; k++)
            assert_false(pthread_equal(attempt_thread[i], cs[k].self));
    }
    assert_false(pthread_equal(attempt_thread[0], pthread_self()));
    pool_destroy(&p); /* ends the connector */

    /* without a reopen function (SQLite) the caller opens */
    pool q;
    assert_int_equal(pool_init(&q, 1, fake_open, fake_close, &db), 0);
    atomic_store(&attempts_seen, 0);
    bkoauth_error err;
    void *c = pool_get(&q, NULL, &err);
    assert_non_null(c);
    assert_int_equal(atomic_load(&attempts_seen), 1);
    assert_true(pthread_equal(attempt_thread[0], pthread_self()));
    pool_put(&q, c);
    pool_destroy(&q);
}

/* In a child after fork() the pool starts empty and connects through a connector of its own. */
static void test_connector_after_fork(void **state)
{
    (void)state;
    fake_db db = {0};
    pool p;
    assert_int_equal(pool_init(&p, 2, fake_open, fake_close, &db), 0);
    pool_set_reopen(&p, fake_reopen);
    bkoauth_error err;
    void *c = pool_get(&p, NULL, &err); /* the parent's connector runs */
    assert_non_null(c);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        pool_after_fork(&p);
        atomic_store(&attempts_seen, 0);
        void *mine = pool_get(&p, NULL, &err);
        int ok = mine != NULL && atomic_load(&attempts_seen) == 1;
#ifndef __SANITIZE_THREAD__ /* under ThreadSanitizer a child connects in its callers (pool.c) */
        ok = ok && !pthread_equal(attempt_thread[0], pthread_self());
#endif
        pool_put(&p, mine);
        pool_destroy(&p);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pool_put(&p, c);
    pool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callers_share_the_connection_being_opened),
        cmocka_unit_test(test_after_a_failed_open_the_waiters_try_their_own),
        cmocka_unit_test(test_a_database_that_is_down_fails_every_caller_with_its_error),
        cmocka_unit_test(test_a_server_that_looks_down_gets_one_attempt_at_a_time),
        cmocka_unit_test(test_max_connections_still_bound_the_pool),
        cmocka_unit_test(test_stale_connections_are_connected_again_in_place),
        cmocka_unit_test(test_get_ready_connects_nothing),
        cmocka_unit_test(test_connections_are_made_by_the_connector),
        cmocka_unit_test(test_connector_after_fork),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
