/* SPDX-License-Identifier: MIT */
/* testfixture.c - see testfixture.h. */
#include "testfixture.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teststore.h"
#include "testtime.h"

const char *const test_dev_alice_bob_hour[] = {
    "--user", "cred-alice=alice", "--user", "cred-bob=bob", "--ttl", "3600", NULL};

static int group_ee; /* the protocol of the group test_run_group() runs */

int test_fixture_setup(void **state, size_t size, const test_fixture_spec *spec)
{
    const char *args[64];
    int n = 0;
    args[n++] = "--app-code";
    args[n++] = spec->app_code;
    args[n++] = "--app-secret";
    args[n++] = spec->secret;
    for (int i = 0; spec->args != NULL && spec->args[i] != NULL && n < 63; i++)
        args[n++] = spec->args[i];
    args[n] = NULL;
    test_fixture *f = calloc(1, size < sizeof *f ? sizeof *f : size);
    if (f == NULL) return -1;
    f->spec = spec;
    f->ee = group_ee;
    f->dev = spec->users > 0 ? devserver_start_users(spec->app_code, spec->secret, spec->users)
                             : devserver_start(args);
    *state = f;
    if (f->dev == NULL || (spec->dir && teststore_tmpdir(f->dir, sizeof f->dir) == NULL)) {
        test_fixture_teardown(state);
        return -1;
    }
    return 0;
}

int test_fixture_teardown(void **state)
{
    test_fixture *f = *state;
    if (f == NULL) return 0; /* the group set-up failed before the fixture: nothing to undo */
    devserver_stop(f->dev);
    free(f);
    *state = NULL;
    return 0;
}

int test_fixture_fresh_store(void **state)
{
    test_fixture *f = *state;
    for (int i = 0; i < 1000 && devserver_counter(f->dev, "in_flight") > 0; i++)
        test_sleep_ms(10);
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    return teststore_fresh_url(f->spec->store_tag, f->db_url, sizeof f->db_url) ? 0 : -1;
}

int test_fixture_reset(void **state)
{
    test_fixture *f = *state;
    json_decref(devserver_post(f->dev, "/__dev/reset"));
    return 0;
}

int test_run_group(const char *name, const struct CMUnitTest *tests, size_t n, int ee,
                   CMFixtureFunction setup, CMFixtureFunction teardown)
{
    group_ee = ee;
    return _cmocka_run_group_tests(name, tests, n, setup, teardown);
}

const char *const *test_fixture_settings(test_fixture *f, test_settings *s, const char *api_url,
                                         const char *const *own, const char *const *extra)
{
    static char own_db[8][128]; /* a database of the client's own: borrowed by s like the rest */
    const char *db = f->db_url;
    if (db[0] == '\0' && f->spec->dir) {
        char *d = own_db[f->n % 8];
        snprintf(d, sizeof own_db[0], "sqlite:%s/t%d.db", f->dir, f->n++);
        db = d;
    }
    test_settings_base(s, api_url, f->spec->app_code, f->spec->secret, db);
    if (f->ee) test_settings_set(s, "BKAUTH_BACKEND_TYPE", "bk_token");
    test_settings_set_all(s, own);
    return test_settings_set_all(s, extra);
}

bkoauth_client *test_fixture_client(test_fixture *f, const char *api_url, const char *const *own,
                                    const char *const *extra)
{
    test_settings s;
    bkoauth_error e;
    bkoauth_client *c = test_settings_client(test_fixture_settings(f, &s, api_url, own, extra), &e);
    if (c == NULL) fail_msg("client: %s", e.message);
    return c;
}

/* ---- the library's log lines ---- */

char test_logs[65536];

/* Lines are kept apart by " | " (no newline of ours: a line of the library holds none). */
void test_log_line(void *ctx, int level, const char *message)
{
    (void)ctx;
    size_t n = strlen(test_logs);
    snprintf(test_logs + n, sizeof test_logs - n, "%d %s | ", level, message);
}

void test_log_capture(bkoauth_client *c)
{
    test_logs[0] = '\0';
    bkoauth_client_set_logger(c, test_log_line, NULL);
}

void test_assert_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL) fail_msg("expected '%s' in: %s", want, text);
}

void test_assert_lacks(const char *text, const char *unwanted)
{
    if (strstr(text, unwanted) != NULL) fail_msg("'%s' must not be in: %s", unwanted, text);
}

/* ---- the usual calls ---- */

bkoauth_token *test_call_login(bkoauth_client *c, const char *user)
{
    char cookie[64];
    snprintf(cookie, sizeof cookie, "bk_token=cred-%s", user);
    bkoauth_request r = {.username = user, .cookie_header = cookie, .remote_addr = "::1"};
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token(c, &r, &t, &e) != BKOAUTH_OK) fail_msg("login of %s: %s", user, e.message);
    return t;
}

bkoauth_token *test_call_by_user(bkoauth_client *c, const char *user)
{
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token_by_user(c, user, &t, &e) != BKOAUTH_OK)
        fail_msg("get_access_token_by_user(%s): %s: %s", user, bkoauth_code_name(e.code), e.message);
    return t;
}
