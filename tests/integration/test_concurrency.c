/* SPDX-License-Identifier: MIT */
/* test_concurrency.c - many threads and many processes on one token store: one renewal per
 * expiry (by_user refresh, APP renewal, user renewal on login), every caller served, the cache
 * kept coherent with this process's renewals, and a renewal killed half-way losing nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testfixture.h"
#include "herd.h"
#include "teststore.h"
#include "testsettings.h"

#define PROCS 4
#define THREADS 16
#define SECRET "herd-secret-0123456789"

typedef test_fixture fixture;

static const test_fixture_spec fixture_spec = {
    "herd-app", SECRET, (const char *const[]){"--user", "cred-alice=alice", "--ttl", "3600", NULL},
    "herd",     0,      0};

/* One store for the whole group. */
static int setup(void **state)
{
    return test_fixture_setup(state, sizeof(fixture), &fixture_spec) == 0 ? test_fixture_fresh_store(state)
                                                                          : -1;
}

static const char *const *settings(fixture *f, const char *expires_seconds, const char *cache_seconds)
{
    static test_settings s;
    const char *own[] = {"EXPIRES_SECONDS", expires_seconds, "BKOAUTH_CACHE_SECONDS", cache_seconds, NULL};
    return test_fixture_settings(f, &s, f->dev->url, own, NULL);
}

static bkoauth_client *make_client(fixture *f, const char *expires_seconds, const char *cache_seconds)
{
    bkoauth_client *c = herd_client(settings(f, expires_seconds, cache_seconds));
    if (c == NULL) abort();
    return c;
}

/* PROCS processes x THREADS threads released together: all get the same fresh token and
 * exactly one call of kind counter reaches the service. */
static void herd(fixture *f, herd_op op, const char *counter)
{
    long before = devserver_counter(f->dev, counter);
    herd_spec spec = {.op = op,
                      .procs = PROCS,
                      .threads = THREADS,
                      .settings = settings(f, "600", "10"),
                      .user = "alice",
                      .cookie = "bk_token=cred-alice"};
    herd_result r;
    assert_int_equal(herd_run(&spec, &r), 0);
    assert_int_equal(r.callers, PROCS * THREADS);
    if (r.ok != PROCS * THREADS)
        fail_msg("%d of %d callers failed; first: %s", PROCS * THREADS - r.ok, PROCS * THREADS, r.failure);
    assert_true(r.same);
    long calls = devserver_counter(f->dev, counter) - before;
    if (calls != 1)
        fail_msg("%ld %s calls reached the SSM service for one expiry; want exactly 1", calls, counter);
    assert_true(devserver_token_valid(f->dev, r.token));
}

/* Saves tokens issued with a short ttl (so they expire soon for EXPIRES_SECONDS 600), then sets
 * a long ttl for the renewals. */
static void prepare_expiring(fixture *f)
{
    assert_int_equal(herd_prepare_expiring(f->dev, settings(f, "60", "0"), "alice", "bk_token=cred-alice"),
                     0);
}

static void test_herd_by_user(void **state)
{
    prepare_expiring(*state);
    herd(*state, HERD_BY_USER, "refresh");
}

static void test_herd_app(void **state)
{
    prepare_expiring(*state);
    herd(*state, HERD_APP, "app_token");
}

static void test_herd_login(void **state)
{
    prepare_expiring(*state);
    herd(*state, HERD_LOGIN, "user_token");
}

/* Threads refreshing an old token whose row was renewed already: the newer saved token comes
 * back to each of them, with no further refresh call. */
static void test_refresh_old_token_from_callers(void **state)
{
    fixture *f = *state;
    prepare_expiring(f);
    bkoauth_client *c = make_client(f, "600", "10");
    bkoauth_token *old = NULL, *first = NULL;
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(bkoauth_list_tokens(c, &all, &n, NULL), BKOAUTH_OK); /* reads, never renews */
    for (size_t i = 0; i < n; i++)
        if (all[i]->user_id && strcmp(all[i]->user_id, "alice") == 0) old = bkoauth_token_dup(all[i]);
    bkoauth_tokens_free(all, n);
    assert_non_null(old);
    long before = devserver_counter(f->dev, "refresh");
    assert_int_equal(bkoauth_refresh_token(c, old, &first, NULL), BKOAUTH_OK);
    assert_int_equal(devserver_counter(f->dev, "refresh") - before, 1);
    herd_spec spec = {
        .op = HERD_REFRESH, .procs = 2, .threads = THREADS, .settings = settings(f, "600", "10"), .old = old};
    herd_result r;
    assert_int_equal(herd_run(&spec, &r), 0);
    if (r.ok != 2 * THREADS) fail_msg("a caller failed: %s", r.failure);
    assert_true(r.same);
    assert_string_equal(r.token, first->access_token);
    assert_int_equal(devserver_counter(f->dev, "refresh") - before, 1);
    bkoauth_token_free(first);
    bkoauth_token_free(old);
    bkoauth_client_free(c);
}

/* The cache: a fresh token is served without the store; this process's renewal is seen at
 * once by every thread; BKOAUTH_CACHE_SECONDS=0 turns it off. */
static void test_cache_coherent_with_renewals(void **state)
{
    fixture *f = *state;
    prepare_expiring(f);
    bkoauth_client *fresh = make_client(f, "60", "10");
    bkoauth_client *renewer = make_client(f, "600", "10");
    bkoauth_token *a = NULL, *b = NULL, *c2 = NULL;
    assert_int_equal(bkoauth_get_access_token_by_user(fresh, "alice", &a, NULL), BKOAUTH_OK);   /* cached */
    assert_int_equal(bkoauth_get_access_token_by_user(renewer, "alice", &b, NULL), BKOAUTH_OK); /* renews */
    assert_string_not_equal(a->access_token, b->access_token);
    assert_int_equal(bkoauth_get_access_token_by_user(fresh, "alice", &c2, NULL), BKOAUTH_OK);
    assert_string_equal(c2->access_token, b->access_token); /* not the stale cached copy */
    bkoauth_token_free(a);
    bkoauth_token_free(b);
    bkoauth_token_free(c2);
    /* a deleted row is not served from the cache either */
    assert_int_equal(bkoauth_delete_token(renewer, "alice", NULL), BKOAUTH_OK);
    assert_int_equal(bkoauth_get_access_token_by_user(fresh, "alice", &a, NULL), BKOAUTH_E_TOKEN_NOT_EXIST);
    bkoauth_client_free(fresh);
    bkoauth_client_free(renewer);
}

/* A process killed in the middle of a renewal (the SSM answer is slow) leaves the previous row
 * intact and no lock behind: another process renews at once. */
static void test_killed_renewal_loses_nothing(void **state)
{
    fixture *f = *state;
    prepare_expiring(f);
    bkoauth_client *reader = make_client(f, "60", "0");
    bkoauth_token *before = NULL;
    assert_int_equal(bkoauth_get_access_token_by_user(reader, "alice", &before, NULL), BKOAUTH_OK);
    assert_int_equal(devserver_fault(f->dev, "slow", 1, 4000), 0);
    long refresh_before = devserver_counter(f->dev, "total");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bkoauth_client *c = make_client(f, "600", "0");
        bkoauth_token *t = NULL;
        bkoauth_get_access_token_by_user(c, "alice", &t, NULL);
        _exit(0);
    }
    /* wait until the child's call is at the server, inside its write transaction */
    for (int i = 0; i < 100 && devserver_counter(f->dev, "total") == refresh_before; i++)
        usleep(50 * 1000);
    assert_true(devserver_counter(f->dev, "total") > refresh_before);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));

    bkoauth_token *after = NULL;
    assert_int_equal(bkoauth_get_access_token_by_user(reader, "alice", &after, NULL), BKOAUTH_OK);
    assert_string_equal(after->access_token, before->access_token);
    assert_string_equal(after->refresh_token, before->refresh_token);
    assert_int_equal(after->expires, before->expires);
    bkoauth_token_free(after);
    /* no lock left behind: another renewer gets through now (the old refresh_token is unused,
     * the slow call has not reached the service's token logic yet) */
    bkoauth_client *c = make_client(f, "600", "0");
    bkoauth_error e;
    if (bkoauth_get_access_token_by_user(c, "alice", &after, &e) != BKOAUTH_OK)
        fail_msg("renewal after the kill: %s", e.message);
    assert_string_not_equal(after->access_token, before->access_token);
    bkoauth_token_free(after);
    bkoauth_token_free(before);
    bkoauth_client_free(c);
    bkoauth_client_free(reader);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_herd_by_user),
        cmocka_unit_test(test_herd_app),
        cmocka_unit_test(test_herd_login),
        cmocka_unit_test(test_refresh_old_token_from_callers),
        cmocka_unit_test(test_cache_coherent_with_renewals),
        cmocka_unit_test(test_killed_renewal_loses_nothing),
    };
    int failed = TEST_RUN_GROUP("concurrency", tests, 0, setup, test_fixture_teardown);
    teststore_cleanup();
    return failed ? 1 : 0;
}
