/* SPDX-License-Identifier: MIT */
/* test_parallel.c - renewals of different users never hold each other up, and nobody waits for
 * a renewal that is not theirs: with every SSM answer slowed down, N distinct users logging in
 * at once (threads of one process, and several processes) are all in flight at the service at
 * the same time, and a lookup of a saved token meanwhile (same process, or a new process that
 * opens its client then) returns while they are still in flight.
 *
 * No timing is asserted: the devserver counts the SSM calls being answered (in_flight) and the
 * most at once (in_flight_peak). A slow answer takes SLOW_MS, so "still in flight after the
 * lookup returned" means the lookup did not wait for any of them. */
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
#include "herd.h"
#include "teststore.h"
#include "testsettings.h"
#include "testtime.h"

#define USERS 16
/* BKOAUTH_TEST_SLOW_MS may shorten it (tests/scripts/test_pgbouncer_pg.sh runs this suite three
 * times, with 1000) */
static int slow_ms(void)
{
    const char *v = getenv("BKOAUTH_TEST_SLOW_MS");
    return v != NULL && atoi(v) >= 500 ? atoi(v) : 4000;
}
#define SLOW_MS slow_ms()
#define SECRET "parallel-secret-0123456789"

typedef test_fixture fixture;

static const test_fixture_spec fixture_spec = {
    .app_code = "par-app", .secret = SECRET, .store_tag = "parallel", .users = USERS};

static int setup(void **state)
{
    return test_fixture_setup(state, sizeof(fixture), &fixture_spec);
}

static const char *const *settings(fixture *f)
{
    static test_settings s;
    /* every lookup reads the store */
    const char *own[] = {"BKOAUTH_CACHE_SECONDS", "0", "BKOAUTH_TIMEOUT_MS", "20000", NULL};
    return test_fixture_settings(f, &s, f->dev->url, own, NULL);
}

/* bob's token saved (a fast login), for the lookups; then the counters zeroed. */
static void save_bob(fixture *f)
{
    bkoauth_client *c = herd_client(settings(f));
    assert_non_null(c);
    bkoauth_request req = {.username = "bob", .cookie_header = "bk_token=cred-bob", .remote_addr = "::1"};
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token(c, &req, &t, &e) != BKOAUTH_OK) fail_msg("bob's login: %s", e.message);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    json_decref(devserver_post(f->dev, "/__dev/reset")); /* counters from here on */
}

typedef struct login {
    bkoauth_client *client;
    int user;
    int rc;
    char message[512];
} login;

static void *login_thread(void *arg)
{
    login *l = arg;
    char name[16], cookie[40];
    snprintf(name, sizeof name, "u%d", l->user);
    snprintf(cookie, sizeof cookie, "bk_token=cred-u%d", l->user);
    bkoauth_request req = {.username = name, .cookie_header = cookie, .remote_addr = "::1"};
    bkoauth_token *t = NULL;
    bkoauth_error e;
    l->rc = bkoauth_get_access_token(l->client, &req, &t, &e);
    if (l->rc != BKOAUTH_OK) snprintf(l->message, sizeof l->message, "%s", e.message);
    bkoauth_token_free(t);
    return NULL;
}

/* Waits until want SSM calls are in flight at once, or until the calls are over (then the
 * caller's peak check fails). Returns the number in flight when it stopped waiting. */
static long wait_in_flight(fixture *f, long want)
{
    for (int i = 0; i < 2 * SLOW_MS / 10; i++) {
        long now = devserver_counter(f->dev, "in_flight");
        if (now >= want) return now;
        if (now == 0 && devserver_counter(f->dev, "user_token") >= want) return now;
        test_sleep_ms(10);
    }
    return devserver_counter(f->dev, "in_flight");
}

/* A lookup of bob's saved token returns while `want` renewals are still in flight. */
static void lookup_while_in_flight(fixture *f, bkoauth_client *c, long want)
{
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token_by_user(c, "bob", &t, &e) != BKOAUTH_OK) fail_msg("lookup: %s", e.message);
    bkoauth_token_free(t);
    long still = devserver_counter(f->dev, "in_flight");
    if (still != want)
        fail_msg("the lookup returned when only %ld of %ld renewals were still in flight: it waited for them",
                 still, want);
}

/* The same lookup from a new process that opens its own client meanwhile. */
static void new_process_while_in_flight(fixture *f, long want)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bkoauth_client *c = herd_client(settings(f));
        bkoauth_token *t = NULL;
        int rc = c ? (int)bkoauth_get_access_token_by_user(c, "bob", &t, NULL) : -1;
        bkoauth_token_free(t);
        bkoauth_client_free(c);
        _exit(rc == BKOAUTH_OK ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    long still = devserver_counter(f->dev, "in_flight");
    if (still != want)
        fail_msg("a new process's client_new + lookup returned when only %ld of %ld renewals were in flight",
                 still, want);
}

static void test_threads_of_one_process(void **state)
{
    fixture *f = *state;
    save_bob(f);
    bkoauth_client *c = herd_client(settings(f));
    assert_non_null(c);
    assert_int_equal(devserver_fault(f->dev, "slow", USERS, SLOW_MS), 0);
    login l[USERS];
    pthread_t th[USERS];
    for (int i = 0; i < USERS; i++) {
        l[i] = (login){.client = c, .user = i};
        assert_int_equal(pthread_create(&th[i], NULL, login_thread, &l[i]), 0);
    }
    long now = wait_in_flight(f, USERS);
    if (now == USERS) {
        lookup_while_in_flight(f, c, USERS);
        new_process_while_in_flight(f, USERS);
    }
    for (int i = 0; i < USERS; i++) {
        pthread_join(th[i], NULL);
        if (l[i].rc != BKOAUTH_OK) fail_msg("login of u%d: %s", i, l[i].message);
    }
    long peak = devserver_counter(f->dev, "in_flight_peak");
    if (peak != USERS)
        fail_msg("at most %ld of %d logins of distinct users were at the service at once; want all", peak,
                 USERS);
    assert_int_equal(devserver_counter(f->dev, "user_token"), USERS + 0);
    bkoauth_client_free(c);
}

static void test_processes(void **state)
{
    fixture *f = *state;
    enum { PROCS = 4, THREADS = USERS / PROCS };
    save_bob(f);
    assert_int_equal(devserver_fault(f->dev, "slow", USERS, SLOW_MS), 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            bkoauth_client *c = herd_client(settings(f));
            if (c == NULL) _exit(2);
            login l[THREADS];
            pthread_t th[THREADS];
            for (int i = 0; i < THREADS; i++) {
                l[i] = (login){.client = c, .user = p * THREADS + i};
                pthread_create(&th[i], NULL, login_thread, &l[i]);
            }
            int failed = 0;
            for (int i = 0; i < THREADS; i++) {
                pthread_join(th[i], NULL);
                if (l[i].rc != BKOAUTH_OK) {
                    fprintf(stderr, "login of u%d: %s\n", l[i].user, l[i].message);
                    failed = 1;
                }
            }
            bkoauth_client_free(c);
            _exit(failed);
        }
    }
    long now = wait_in_flight(f, USERS);
    if (now == USERS) new_process_while_in_flight(f, USERS);
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("process %d: a login failed", p);
    }
    long peak = devserver_counter(f->dev, "in_flight_peak");
    if (peak != USERS)
        fail_msg("at most %ld of %d logins (%d processes x %d threads) were at the service at once; want all",
                 peak, USERS, PROCS, THREADS);
    assert_int_equal(devserver_counter(f->dev, "user_token"), USERS + 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_threads_of_one_process, test_fixture_fresh_store),
        cmocka_unit_test_setup(test_processes, test_fixture_fresh_store),
    };
    int failed = TEST_RUN_GROUP("parallel", tests, 0, setup, test_fixture_teardown);
    teststore_cleanup();
    return failed ? 1 : 0;
}
