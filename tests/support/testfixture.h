/* SPDX-License-Identifier: MIT */
/* testfixture.h - the set-up the integration suites share, written once: a devserver on a free
 * loopback port with the suite's APP and users, a fresh store before each test, the group run
 * once per SSM protocol (ieod, ee), the suite's clients with their settings, the library's log
 * lines captured, and the usual calls (a login, a user's token) that fail the test on an error.
 *
 * A suite with no state of its own uses test_fixture as its fixture; one with more begins its own
 * struct with a test_fixture and gives test_fixture_setup() its size. Group set-up and teardown:
 *
 *   static const test_fixture_spec spec = {"faults-app", SECRET, test_dev_alice_bob_hour, "faults", 0, 0};
 *   static int setup(void **state) { return test_fixture_setup(state, sizeof(test_fixture), &spec); }
 *   ... cmocka_unit_test_setup(fn, test_fixture_fresh_store) ...
 *   test_run_group("faults", tests, n, 0, setup, test_fixture_teardown);
 */
#ifndef BKOAUTH_TESTFIXTURE_H
#define BKOAUTH_TESTFIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testsettings.h"

/* The devserver's users alice (credential cred-alice) and bob (cred-bob), tokens of an hour: the
 * arguments most suites start it with (NULL-terminated). */
extern const char *const test_dev_alice_bob_hour[];

/* What a suite's fixture is made of. The strings are borrowed (string literals). */
typedef struct test_fixture_spec {
    const char *app_code, *secret; /* the devserver's APP, and the clients' APP_CODE, SECRET_KEY */
    const char *const *args;       /* more devserver arguments (NULL-terminated; NULL: none) */
    const char *store_tag;         /* names the stores test_fixture_fresh_store() makes */
    int dir;                       /* 1: a temporary directory in dir, each client a database there */
    int users; /* > 0, instead of args: users u0 .. u<users-1> and bob, as devserver_start_users() */
} test_fixture_spec;

typedef struct test_fixture {
    const test_fixture_spec *spec;
    devserver *dev;
    int ee;           /* the group's SSM protocol (test_run_group): 1 ee (bk_token), 0 ieod */
    char db_url[512]; /* the current test's store (test_fixture_fresh_store); "": none */
    char dir[64];     /* spec->dir: the temporary directory */
    int n;            /* databases made in dir */
} test_fixture;

/* Group set-up: a zeroed fixture of size bytes (>= sizeof(test_fixture); a suite's own struct
 * begins with the test_fixture) in *state, its devserver started with --app-code, --app-secret
 * and spec->args (or spec->users), the directory made when spec->dir. 0, or -1 with what was made undone. */
int test_fixture_setup(void **state, size_t size, const test_fixture_spec *spec);

/* Group teardown: the devserver stopped, the fixture freed (NULL: the set-up failed, nothing to
 * undo). Always 0. A suite with more state frees its own first, then calls this. */
int test_fixture_teardown(void **state);

/* Before a test: no call of an earlier test still being answered (waits up to 10 s), the
 * devserver's counters zeroed and faults cleared, and a fresh, empty store in db_url. 0 or -1. */
int test_fixture_fresh_store(void **state);

/* Before a test: the devserver's counters zeroed and faults cleared (the store is kept). 0. */
int test_fixture_reset(void **state);

/* Runs a group of tests with ee as the protocol test_fixture_setup() gives the fixture. The
 * number of tests that failed. */
int test_run_group(const char *name, const struct CMUnitTest *tests, size_t n, int ee,
                   CMFixtureFunction setup, CMFixtureFunction teardown);
#define TEST_RUN_GROUP(name, tests, ee, setup, teardown)                                                     \
    test_run_group(name, tests, sizeof(tests) / sizeof((tests)[0]), ee, setup, teardown)

/* f's clients' settings in s: the base (OAUTH_API_URL api_url, e.g. f->dev->url; NULL: none;
 * f's APP; f's store,
 * or with spec->dir and no store a database of its own in dir), BKAUTH_BACKEND_TYPE bk_token in
 * an ee group, then own and extra (NAME, VALUE, ..., NULL; NULL: none) on top. Returns s->kv. */
const char *const *test_fixture_settings(test_fixture *f, test_settings *s, const char *api_url,
                                         const char *const *own, const char *const *extra);

/* A client with test_fixture_settings(); fails the test when it cannot be made. */
bkoauth_client *test_fixture_client(test_fixture *f, const char *api_url, const char *const *own,
                                    const char *const *extra);

/* ---- the library's log lines, captured ---- */

/* "LEVEL MESSAGE | " a line, cut when full: what test_log_line() is told. test_log_capture(c)
 * empties it and makes test_log_line c's logger. */
extern char test_logs[65536];
void test_log_line(void *ctx, int level, const char *message);
void test_log_capture(bkoauth_client *c);

/* Fails the test unless text holds want / does not hold unwanted. */
void test_assert_has(const char *text, const char *want);
void test_assert_lacks(const char *text, const char *unwanted);

/* ---- the usual calls; each fails the test on an error ---- */

/* user's login: get_access_token with the cookie bk_token=cred-USER from ::1. */
bkoauth_token *test_call_login(bkoauth_client *c, const char *user);

/* get_access_token_by_user. */
bkoauth_token *test_call_by_user(bkoauth_client *c, const char *user);

#endif
