/* SPDX-License-Identifier: MIT */
/* test_clock.c - the wall clock stepped an hour forward and back under a running client, on the
 * store BKOAUTH_TEST_STORE names: a back-off ends after its maximum, a token another process
 * renewed is seen within BKOAUTH_CACHE_SECONDS, a token valid for 2 h stays served while one
 * valid for 30 min is renewed, no expired token is ever returned, a caller waiting for
 * another's renewal takes its own valid token after its patience, not an hour later, and a
 * gateway JWT's exp and nbf are checked against the stepped wall clock.
 *
 * How the clock moves: the program runs itself again under libfaketime (Debian's libfaketime,
 * preloaded into this process only: the devserver and the database servers keep the real time)
 * with FAKETIME_TIMESTAMP_FILE, a file it rewrites to step the wall clock, FAKETIME_NO_CACHE so
 * that every reading of the clock sees the file, and FAKETIME_DONT_FAKE_MONOTONIC so that
 * CLOCK_MONOTONIC stays real, as it does on a host whose clock NTP steps. Under the sanitizers,
 * whose runtimes do not take another preloaded library, the library's wall clock is stepped
 * through its test hook (bk_wall_offset) instead. No call may hang: each test runs under an
 * alarm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testfixture.h"
#include "internal.h"
#include "testjwt.h"
#include "teststore.h"
#include "testsettings.h"
#include "testtime.h"

#define SECRET "clock-secret-0123456789"
#define HOUR 3600
#define CALL_LIMIT_S 60 /* any test's calls: far more than they need, far less than an hour */
#define STR_(x) #x
#define STR(x) STR_(x)

#ifndef BKOAUTH_LIBARCH
#define BKOAUTH_LIBARCH ""
#endif

typedef test_fixture fixture;

static const test_fixture_spec fixture_spec = {"clock-app", SECRET, test_dev_alice_bob_hour, "clock", 0, 0};

static fixture *F;
static int faked;       /* 1: libfaketime steps the clock; 0: bk_wall_offset does */
static int64_t offset;  /* seconds the wall clock is stepped now */
static char steps[600]; /* FAKETIME_TIMESTAMP_FILE */

/* ---- the clock ------------------------------------------------------------------------------- */

/* The wall clock as the library sees it. */
static int64_t wall_now(void)
{
    return (int64_t)time(NULL) + (faked ? 0 : offset);
}

/* Writes the offset into the step file at once (renamed over it: never read half-written). */
static int write_steps(const char *path, int64_t seconds)
{
    char tmp[640];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) return -1;
    fprintf(f, "%+lld\n", (long long)seconds);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

/* Steps the wall clock to `seconds` away from the real time. */
static void step_clock(int64_t seconds)
{
    offset = seconds;
    if (!faked)
        atomic_store(&bk_wall_offset, seconds);
    else if (write_steps(steps, seconds) != 0)
        fail_msg("cannot write %s: %s", steps, strerror(errno));
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] =
        "test_clock: a call hung (the test did not end within " STR(CALL_LIMIT_S) " s)\n";
    if (write(2, msg, sizeof msg - 1) < 0) _exit(2);
    _exit(1);
}

/* ---- the client ------------------------------------------------------------------------------ */

static bkoauth_client *client(const char *const *extra)
{
    return test_fixture_client(F, F->dev->url, NULL, extra);
}

/* Every token a call returns: not expired by the wall clock the library sees. */
static bkoauth_token *checked(bkoauth_token *t, const char *what)
{
    if (t == NULL) fail_msg("%s: no token", what);
    if (t->expires <= wall_now())
        fail_msg("%s returned a token that expired %lld s ago", what, (long long)(wall_now() - t->expires));
    return t;
}

static bkoauth_token *login(bkoauth_client *c, const char *user)
{
    return checked(test_call_login(c, user), "get_access_token");
}

static bkoauth_token *by_user(bkoauth_client *c, const char *user)
{
    return checked(test_call_by_user(c, user), "get_access_token_by_user");
}

static bkoauth_token *app(bkoauth_client *c)
{
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_app_access_token(c, &t, &e) != BKOAUTH_OK)
        fail_msg("get_app_access_token: %s: %s", bkoauth_code_name(e.code), e.message);
    return checked(t, "get_app_access_token");
}

/* 1 when t is another token than the access_token old. */
static int changed(bkoauth_token *t, const char *old)
{
    int diff = strcmp(t->access_token, old) != 0;
    bkoauth_token_free(t);
    return diff;
}

/* ---- fixture --------------------------------------------------------------------------------- */

static int setup(void **state)
{
    int rc = test_fixture_setup(state, sizeof(fixture), &fixture_spec);
    F = *state;
    return rc;
}

/* Each test: the real time, a fresh store, tokens of an hour, no fault, an alarm. */
static int before_each(void **state)
{
    fixture *f = *state;
    step_clock(0);
    if (test_fixture_fresh_store(state) != 0 || devserver_config(f->dev, HOUR, 60) != 0) return -1;
    alarm(CALL_LIMIT_S);
    return 0;
}

static int after_each(void **state)
{
    (void)state;
    alarm(0);
    step_clock(0);
    return 0;
}

/* ---- (a) a back-off ends after its maximum when the clock is stepped back ---------------- */

static void test_backoff_ends_after_step_back(void **state)
{
    fixture *f = *state;
    const char *saving[] = {"EXPIRES_SECONDS", "60", NULL};
    bkoauth_client *s = client(saving);
    bkoauth_token *alice = login(s, "alice"), *a0 = app(s);
    /* tokens of an hour expire soon for this client: each call wants a renewal */
    const char *kv[] = {"EXPIRES_SECONDS",
                        "10000",
                        "BKOAUTH_CACHE_SECONDS",
                        "0",
                        "BKOAUTH_BACKOFF_SECONDS",
                        "1",
                        "BKOAUTH_BACKOFF_MAX_SECONDS",
                        "2",
                        NULL};
    bkoauth_client *c = client(kv);
    assert_int_equal(devserver_fault(f->dev, "http500", 1000, 0), 0);
    /* the service fails: the valid tokens are served and the keys back off */
    for (int i = 0; i < 3; i++) {
        assert_false(changed(by_user(c, "alice"), alice->access_token));
        assert_false(changed(app(c), a0->access_token));
    }
    step_clock(-HOUR);
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    /* the service is back: the next renewal comes after the back-off (at most 2 s), not an hour */
    int user_renewed = 0, app_renewed = 0;
    double start = test_mono_s();
    while (!(user_renewed && app_renewed) && test_mono_s() - start < 15) {
        user_renewed = user_renewed || changed(by_user(c, "alice"), alice->access_token);
        app_renewed = app_renewed || changed(app(c), a0->access_token);
        test_sleep_ms(100);
    }
    if (!user_renewed || !app_renewed)
        fail_msg("the wall clock stepped back an hour: no renewal (user %d, APP %d) within 15 s although "
                 "BKOAUTH_BACKOFF_MAX_SECONDS is 2",
                 user_renewed, app_renewed);
    bkoauth_token_free(alice);
    bkoauth_token_free(a0);
    bkoauth_client_free(c);
    bkoauth_client_free(s);
}

/* ---- (b) the cache sees another process's renewal after a step back ----------------------- */

/* Another process renews alice's token through a client of its own; 0 when it did. */
static int renew_elsewhere(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        bkoauth_error e;
        test_settings s;
        bkoauth_client *o = test_settings_client(test_fixture_settings(F, &s, F->dev->url, NULL, NULL), &e);
        bkoauth_token *t = NULL, *n = NULL;
        int ok = o != NULL && bkoauth_get_access_token_by_user(o, "alice", &t, NULL) == BKOAUTH_OK &&
                 bkoauth_refresh_token(o, t, &n, NULL) == BKOAUTH_OK;
        bkoauth_token_free(t);
        bkoauth_token_free(n);
        bkoauth_client_free(o);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void test_cache_sees_other_process_after_step_back(void **state)
{
    (void)state;
    const char *kv[] = {"EXPIRES_SECONDS", "60", "BKOAUTH_CACHE_SECONDS", "2", NULL};
    bkoauth_client *c = client(kv);
    bkoauth_token *t0 = login(c, "alice");
    assert_false(changed(by_user(c, "alice"), t0->access_token)); /* cached now */
    assert_int_equal(renew_elsewhere(), 0);
    step_clock(-HOUR);
    int seen = 0;
    double start = test_mono_s();
    while (!seen && test_mono_s() - start < 15) {
        seen = changed(by_user(c, "alice"), t0->access_token);
        if (!seen) test_sleep_ms(100);
    }
    if (!seen)
        fail_msg("the wall clock stepped back an hour: the cache still served the token another process "
                 "had renewed 15 s later, with BKOAUTH_CACHE_SECONDS 2");
    bkoauth_token_free(t0);
    bkoauth_client_free(c);
}

/* ---- (c) an hour forward and back: expiry follows the wall clock -------------------------- */

static void test_expiry_follows_the_wall_clock(void **state)
{
    fixture *f = *state;
    const char *kv[] = {"EXPIRES_SECONDS", "60", "BKOAUTH_CACHE_SECONDS", "10", NULL};
    bkoauth_client *c = client(kv);
    assert_int_equal(devserver_config(f->dev, 2 * HOUR, -1), 0);
    bkoauth_token *bob = login(c, "bob");
    assert_int_equal(devserver_config(f->dev, HOUR / 2, -1), 0);
    bkoauth_token *alice = login(c, "alice"), *a0 = app(c);
    assert_false(changed(by_user(c, "bob"), bob->access_token)); /* all three cached */
    assert_false(changed(by_user(c, "alice"), alice->access_token));
    assert_false(changed(app(c), a0->access_token));
    long calls = devserver_counter(f->dev, "total");

    step_clock(HOUR);
    /* bob's token has an hour left: served as it is; alice's and the APP's have expired: renewed */
    assert_false(changed(by_user(c, "bob"), bob->access_token));
    assert_int_equal(devserver_counter(f->dev, "total"), calls);
    bkoauth_token *alice1 = by_user(c, "alice"), *a1 = app(c);
    assert_string_not_equal(alice1->access_token, alice->access_token);
    assert_string_not_equal(a1->access_token, a0->access_token);
    assert_true(devserver_token_valid(f->dev, alice1->access_token));
    assert_true(devserver_token_valid(f->dev, a1->access_token));
    calls = devserver_counter(f->dev, "total");

    /* and back (an hour before the real time): every token has more time left, none is renewed */
    step_clock(-HOUR);
    for (int i = 0; i < 3; i++) {
        assert_false(changed(by_user(c, "bob"), bob->access_token));
        assert_false(changed(by_user(c, "alice"), alice1->access_token));
        assert_false(changed(app(c), a1->access_token));
    }
    assert_int_equal(devserver_counter(f->dev, "total"), calls);
    bkoauth_token_free(bob);
    bkoauth_token_free(alice);
    bkoauth_token_free(alice1);
    bkoauth_token_free(a0);
    bkoauth_token_free(a1);
    bkoauth_client_free(c);
}

/* ---- (e) a gateway JWT's exp and nbf follow the wall clock ------------------------------- */

static bkoauth_code verify(bkoauth_client *c, const char *jwt, bkoauth_error *e)
{
    bkoauth_jwt *j = NULL;
    bkoauth_code rc = bkoauth_jwt_verify(c, jwt, &j, e);
    bkoauth_jwt_free(j);
    return rc;
}

static void test_jwt_follows_the_wall_clock(void **state)
{
    (void)state;
    testjwt_key *key = testjwt_key_new(2048);
    assert_non_null(key);
    char *pem = testjwt_public_pem(key, 0);
    const char *kv[] = {"APIGW_PUBLIC_KEY", pem, NULL};
    bkoauth_client *c = client(kv);
    long long now = (long long)wall_now();
    char *payload = testjwt_payload("APIGW", "clock-app", "alice", now + HOUR / 2, now - 10);
    char *jwt = testjwt_sign_rs256(key, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload);
    bkoauth_error e;
    assert_int_equal(verify(c, jwt, &e), BKOAUTH_OK);
    step_clock(HOUR); /* past its exp */
    assert_int_equal(verify(c, jwt, &e), BKOAUTH_E_JWT);
    assert_non_null(strstr(e.message, "expired"));
    step_clock(-HOUR); /* before its nbf */
    assert_int_equal(verify(c, jwt, &e), BKOAUTH_E_JWT);
    assert_non_null(strstr(e.message, "not yet valid"));
    step_clock(0);
    assert_int_equal(verify(c, jwt, &e), BKOAUTH_OK);
    free(jwt);
    free(payload);
    free(pem);
    testjwt_key_free(key);
    bkoauth_client_free(c);
}

/* ---- (d) a waiter's patience after a step forward ------------------------------------------ */

typedef struct renewer {
    bkoauth_client *c;
    atomic_int done;
} renewer;

static void *renewer_main(void *arg)
{
    renewer *r = arg;
    bkoauth_token *t = NULL;
    bkoauth_get_access_token_by_user(r->c, "alice", &t, NULL);
    bkoauth_token_free(t);
    atomic_store(&r->done, 1);
    return NULL;
}

static void test_waiter_patience_after_step_forward(void **state)
{
    fixture *f = *state;
    assert_int_equal(devserver_config(f->dev, 2 * HOUR, -1), 0);
    const char *saving[] = {"EXPIRES_SECONDS", "60", NULL};
    bkoauth_client *s = client(saving);
    bkoauth_token *alice = login(s, "alice");
    /* tokens of 2 h expire soon for this client (but stay valid an hour after the step) */
    const char *kv[] = {"EXPIRES_SECONDS", "10000", "BKOAUTH_CACHE_SECONDS", "0", NULL};
    bkoauth_client *c = client(kv);
    assert_int_equal(devserver_fault(f->dev, "slow", 1, 6000), 0);
    renewer r = {.c = c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, renewer_main, &r), 0);
    for (int i = 0; i < 500 && devserver_counter(f->dev, "in_flight") != 1; i++)
        test_sleep_ms(10);
    assert_int_equal(devserver_counter(f->dev, "in_flight"), 1);
    step_clock(HOUR);
    /* the renewal hangs at the service: this caller takes its own valid token after its patience
     * (a second), while the renewal is still in flight - not when the renewer lets go */
    bkoauth_token *t = by_user(c, "alice");
    int renewer_done = atomic_load(&r.done);
    assert_string_equal(t->access_token, alice->access_token);
    if (renewer_done)
        fail_msg("the wall clock stepped forward an hour: a waiter waited for the renewal's end");
    pthread_join(th, NULL);
    bkoauth_token_free(t);
    bkoauth_token_free(alice);
    bkoauth_client_free(c);
    bkoauth_client_free(s);
}

/* ---- start ----------------------------------------------------------------------------------- */

/* The libfaketime to preload: BKOAUTH_TEST_LIBFAKETIME, else Debian's place for it. */
static const char *find_libfaketime(void)
{
    static char path[512];
    const char *env = getenv("BKOAUTH_TEST_LIBFAKETIME");
    if (env != NULL && env[0] != '\0') return access(env, R_OK) == 0 ? env : NULL;
    const char *dirs[] = {"/usr/lib/" BKOAUTH_LIBARCH "/faketime", "/usr/lib/faketime",
                          "/usr/local/lib/faketime"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/libfaketime.so.1", dirs[i]);
        if (access(path, R_OK) == 0) return path;
    }
    return NULL;
}

/* Runs this program again under libfaketime, with a step file of its own. */
static int run_faked(char **argv)
{
    const char *lib = find_libfaketime();
    if (lib == NULL) {
        fprintf(stderr, "test_clock: libfaketime.so.1 not found: install Debian's libfaketime "
                        "(scripts/install-deps.sh does), or name it in BKOAUTH_TEST_LIBFAKETIME\n");
        return 1;
    }
    static char dir[] = "/tmp/bkoauth-clock-XXXXXX";
    char file[600];
    if (mkdtemp(dir) == NULL) {
        perror("test_clock: mkdtemp");
        return 1;
    }
    snprintf(file, sizeof file, "%s/faketime", dir);
    if (write_steps(file, 0) != 0) {
        perror("test_clock: the step file");
        return 1;
    }
    setenv("LD_PRELOAD", lib, 1);
    setenv("FAKETIME_TIMESTAMP_FILE", file, 1);
    setenv("FAKETIME_NO_CACHE", "1", 1);
    setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
    setenv("BKOAUTH_TEST_CLOCK", "faketime", 1);
    execv("/proc/self/exe", argv);
    perror("test_clock: exec");
    return 1;
}

/* Under libfaketime: the step file moves this process's wall clock and not CLOCK_MONOTONIC. */
static int check_faked(void)
{
    int64_t real = (int64_t)time(NULL);
    double m0 = test_mono_s();
    step_clock(HOUR);
    int64_t ahead = (int64_t)time(NULL) - real;
    double m1 = test_mono_s();
    step_clock(0);
    if (ahead < HOUR - 5 || ahead > HOUR + 5 || m1 - m0 > 5) {
        fprintf(stderr, "test_clock: libfaketime does not step the clock (moved %lld s for +3600)\n",
                (long long)ahead);
        return -1;
    }
    return 0;
}

/* Removes the step file and its directory. */
static void remove_steps(void)
{
    char tmp[sizeof steps + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", steps);
    unlink(tmp);
    unlink(steps);
    char *slash = strrchr(steps, '/');
    if (slash != NULL) {
        *slash = '\0';
        rmdir(steps);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *mode = getenv("BKOAUTH_TEST_CLOCK");
    if (mode == NULL && getenv("BKOAUTH_TEST_SANITIZED") == NULL) return run_faked(argv);
    faked = mode != NULL && strcmp(mode, "faketime") == 0;
    if (faked) {
        const char *file = getenv("FAKETIME_TIMESTAMP_FILE");
        if (file == NULL || strlen(file) >= sizeof steps) return 1;
        strcpy(steps, file);
        atexit(remove_steps);
        unsetenv("LD_PRELOAD"); /* the servers this test starts keep the real time */
        if (check_faked() != 0) return 1;
    }
    signal(SIGALRM, on_alarm);
    fprintf(stderr, "test_clock: the wall clock stepped by %s\n", faked ? "libfaketime" : "bk_wall_offset");
#define T(fn) cmocka_unit_test_setup_teardown(fn, before_each, after_each)
    const struct CMUnitTest tests[] = {
        T(test_backoff_ends_after_step_back),  T(test_cache_sees_other_process_after_step_back),
        T(test_expiry_follows_the_wall_clock), T(test_waiter_patience_after_step_forward),
        T(test_jwt_follows_the_wall_clock),
    };
    int failed = TEST_RUN_GROUP("clock", tests, 0, setup, test_fixture_teardown);
    teststore_cleanup();
    return failed ? 1 : 0;
}
