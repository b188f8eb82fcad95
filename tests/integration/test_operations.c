/* SPDX-License-Identifier: MIT */
/* test_operations.c - the four operations of the seed and the login hook, end to end: the
 * library against bkoauth-devserver on a free loopback port, both wire protocols, the store
 * chosen by BKOAUTH_TEST_STORE. Every injected fault must leave the saved token unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testfixture.h"
#include "testsettings.h"
#include "teststore.h"

#define APP_CODE "demo-app"
#define APP_SECRET "s3cret-app-key-0123456789"
#define TTL 3600

typedef struct fixture {
    test_fixture t;      /* the devserver, the group's protocol, the store */
    bkoauth_client *c;   /* tokens fresh: EXPIRES_SECONDS 60 < TTL */
    bkoauth_client *old; /* every token expires soon: EXPIRES_SECONDS > TTL */
} fixture;

static const test_fixture_spec fixture_spec = {
    APP_CODE,
    APP_SECRET,
    (const char *const[]){"--user", "cred-alice=alice", "--user", "836324475=bob", "--user",
                          "cred-carol=carol", "--ttl", "3600", "--overlap", "30", NULL},
    "ops",
    0,
    0};

static bkoauth_client *make_client(fixture *f, const char *api_url, const char *const *extra)
{
    const char *own[] = {"EXPIRES_SECONDS", "60", NULL};
    return test_fixture_client(&f->t, api_url, own, extra);
}

static int setup(void **state)
{
    if (test_fixture_setup(state, sizeof(fixture), &fixture_spec) != 0) return -1;
    fixture *f = *state;
    if (test_fixture_fresh_store(state) != 0) return -1;
    f->c = make_client(f, f->t.dev->url, NULL);
    /* tokens expire "soon" for this client; no back-off, so each test starts clean */
    const char *old[] = {"EXPIRES_SECONDS", "7200", "BKOAUTH_BACKOFF_SECONDS", "0", NULL};
    f->old = make_client(f, f->t.dev->url, old);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f == NULL) return 0; /* the group set-up failed: nothing to undo */
    bkoauth_client_free(f->c);
    bkoauth_client_free(f->old);
    return test_fixture_teardown(state);
}

/* Before each test: an empty table and zeroed counters. */
static int reset(void **state)
{
    fixture *f = *state;
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(bkoauth_list_tokens(f->c, &all, &n, NULL), BKOAUTH_OK);
    for (size_t i = 0; i < n; i++)
        bkoauth_delete_token(f->c, all[i]->user_id, NULL);
    bkoauth_tokens_free(all, n);
    json_decref(devserver_post(f->t.dev, "/__dev/reset"));
    return 0;
}

static bkoauth_request login(const char *user, const char *cookie)
{
    bkoauth_request r = {0};
    r.username = user;
    r.cookie_header = cookie;
    r.remote_addr = "10.0.0.7";
    return r;
}

static void assert_no_secret(const char *msg)
{
    assert_null(strstr(msg, APP_SECRET));
    assert_null(strstr(msg, "cred-alice"));
}

static bkoauth_token *must_login(fixture *f, bkoauth_client *c, const char *user, const char *cookie)
{
    bkoauth_request r = login(user, cookie);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token(c, &r, &t, &e) != BKOAUTH_OK)
        fail_msg("get_access_token(%s): %s: %s", user, bkoauth_code_name(e.code), e.message);
    (void)f;
    return t;
}

/* ---- get_app_access_token ---------------------------------------------------------------- */

static void test_app_token_fetched_saved_reused(void **state)
{
    fixture *f = *state;
    bkoauth_token *t1 = NULL, *t2 = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &t1, &e), BKOAUTH_OK);
    assert_int_equal(e.code, BKOAUTH_OK);
    assert_null(t1->user_id);
    assert_string_equal(t1->env_name, "test");
    assert_string_equal(t1->refresh_token, "");
    assert_true(t1->expires > t1->created_at + TTL - 60);
    assert_true(devserver_token_valid(f->t.dev, t1->access_token));
    assert_int_equal(devserver_counter(f->t.dev, "app_token"), 1);

    assert_int_equal(bkoauth_get_app_access_token(f->c, &t2, &e), BKOAUTH_OK);
    assert_string_equal(t1->access_token, t2->access_token);
    assert_int_equal(devserver_counter(f->t.dev, "total"), 1); /* reused, no call */
    bkoauth_token_free(t1);
    bkoauth_token_free(t2);
}

static void test_app_token_renewed_when_expiring(void **state)
{
    fixture *f = *state;
    bkoauth_token *t1 = NULL, *t2 = NULL;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &t1, NULL), BKOAUTH_OK);
    assert_int_equal(bkoauth_get_app_access_token(f->old, &t2, NULL), BKOAUTH_OK);
    assert_string_not_equal(t1->access_token, t2->access_token);
    assert_int_equal(t1->created_at, t2->created_at); /* updated in place */
    assert_int_equal(devserver_counter(f->t.dev, "app_token"), 2);
    assert_int_equal(devserver_counter(f->t.dev, "refresh"), 0); /* APP tokens are never refreshed */
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(bkoauth_list_tokens(f->c, &all, &n, NULL), BKOAUTH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(all[0]->access_token, t2->access_token);
    bkoauth_tokens_free(all, n);
    bkoauth_token_free(t1);
    bkoauth_token_free(t2);
}

/* ---- get_access_token ------------------------------------------------------------------- */

static void test_user_token_from_cookie(void **state)
{
    fixture *f = *state;
    bkoauth_token *t = must_login(f, f->c, "alice", "csrftoken=x; bk_token=cred-alice; lang=zh");
    assert_string_equal(t->user_id, "alice");
    assert_string_equal(t->env_name, "test");
    assert_true(strlen(t->refresh_token) > 0);
    assert_true(devserver_token_valid(f->t.dev, t->access_token));
    assert_int_equal(devserver_counter(f->t.dev, "user_token"), 1);
    /* fresh: served from the store */
    bkoauth_token *t2 = must_login(f, f->c, "alice", "bk_token=cred-alice");
    assert_string_equal(t->access_token, t2->access_token);
    assert_int_equal(devserver_counter(f->t.dev, "total"), 1);
    /* APP and user rows are kept apart */
    bkoauth_token *app = NULL;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &app, NULL), BKOAUTH_OK);
    assert_string_not_equal(app->access_token, t->access_token);
    assert_int_equal(devserver_counter(f->t.dev, "app_token"), 1);
    bkoauth_token_free(app);
    bkoauth_token_free(t);
    bkoauth_token_free(t2);
}

static void test_user_token_renewed_on_login_when_expiring(void **state)
{
    fixture *f = *state;
    bkoauth_token *t1 = must_login(f, f->c, "alice", "bk_token=cred-alice");
    bkoauth_token *t2 = must_login(f, f->old, "alice", "bk_token=cred-alice");
    assert_string_not_equal(t1->access_token, t2->access_token);
    assert_int_equal(devserver_counter(f->t.dev, "user_token"), 2); /* a new token, not a refresh */
    assert_int_equal(devserver_counter(f->t.dev, "refresh"), 0);
    assert_int_equal(t1->created_at, t2->created_at);
    bkoauth_token_free(t1);
    bkoauth_token_free(t2);
}

static const char *session_get(void *ctx, const char *key)
{
    return strcmp(key, "bk_token") == 0 ? (const char *)ctx : NULL;
}

static void test_credential_from_session_and_query(void **state)
{
    fixture *f = *state;
    bkoauth_request r = login("alice", "other=1");
    r.session_get = session_get;
    r.session_ctx = "cred-alice";
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(f->c, &r, &t, &e), BKOAUTH_OK);
    assert_string_equal(t->user_id, "alice");
    bkoauth_token_free(t);

    bkoauth_request q = login("carol", NULL);
    q.query_string = "a=1&bk_token=cred-carol";
    assert_int_equal(bkoauth_get_access_token(f->c, &q, &t, &e), BKOAUTH_OK);
    assert_string_equal(t->user_id, "carol");
    bkoauth_token_free(t);
}

static void test_uin_credential(void **state)
{
    fixture *f = *state;
    /* the devserver knows bob as 836324475: the client must send it without 'o' and zeros */
    bkoauth_token *t = must_login(f, f->c, "bob", "bk_token=o0836324475");
    assert_string_equal(t->user_id, "bob");
    bkoauth_token_free(t);
}

static void test_anonymous_request_refused(void **state)
{
    fixture *f = *state;
    bkoauth_request r = login(NULL, "bk_token=cred-alice");
    bkoauth_token *t = (bkoauth_token *)1;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(f->c, &r, &t, &e), BKOAUTH_E_INVALID);
    assert_null(t);
    assert_int_equal(e.code, BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "anonymous"));
    r.username = "";
    assert_int_equal(bkoauth_get_access_token(f->c, &r, &t, &e), BKOAUTH_E_INVALID);
    assert_int_equal(devserver_counter(f->t.dev, "total"), 0);
}

static void test_unknown_credential_is_token_api_error(void **state)
{
    fixture *f = *state;
    bkoauth_request r = login("mallory", "bk_token=not-a-login");
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(f->c, &r, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_null(t);
    assert_true(strlen(e.message) > 0);
    assert_null(strstr(e.message, "not-a-login"));
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "mallory", &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
}

static void test_requests_do_not_leak_into_each_other(void **state)
{
    fixture *f = *state;
    bkoauth_token *a = must_login(f, f->c, "alice", "bk_token=cred-alice");
    /* carol's request has no credential at all: nothing of alice's may be sent for her (no call
     * is made: there is nothing to send) */
    long calls = devserver_counter(f->t.dev, "total");
    bkoauth_request r = login("carol", "x=y");
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(f->c, &r, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_non_null(strstr(e.message, "no login credential in the request: cookie bk_token missing"));
    assert_int_equal(devserver_counter(f->t.dev, "total"), calls);
    /* dave's credential is not a login: his request carries his credential only */
    r = login("dave", "bk_token=not-a-login");
    assert_int_equal(bkoauth_get_access_token(f->c, &r, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_int_equal(devserver_counter(f->t.dev, "total"), calls + 1);
    json_t *last = devserver_get(f->t.dev, "/__dev/counters");
    assert_non_null(last);
    char *dump = json_dumps(json_object_get(last, "last"), 0);
    assert_non_null(dump);
    assert_null(strstr(dump, "cred-alice"));
    free(dump);
    json_decref(last);
    bkoauth_token_free(a);
}

static void test_oauth_params_and_client_ip_sent(void **state)
{
    fixture *f = *state;
    const char *extra[] = {"OAUTH_PARAMS", "{'region': 'sz', 'bk_token': 'never-sent'}", NULL};
    bkoauth_client *c = make_client(f, f->t.dev->url, extra);
    bkoauth_request r = login("alice", "bk_token=cred-alice");
    r.x_forwarded_for = "203.0.113.9, 10.0.0.1";
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_OK); /* the credential won */
    json_t *j = devserver_get(f->t.dev, "/__dev/counters");
    char *dump = json_dumps(json_object_get(j, "last"), 0);
    assert_non_null(strstr(dump, "region"));
    assert_null(strstr(dump, "never-sent"));
    if (!f->t.ee) /* bk_client_ip is an ieod parameter */
        assert_non_null(strstr(dump, "203.0.113.9%2C%2010.0.0.1"));
    free(dump);
    json_decref(j);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
}

static void test_run_mode_product_is_prod(void **state)
{
    fixture *f = *state;
    const char *extra[] = {"RUN_MODE", "PRODUCT", NULL};
    bkoauth_client *c = make_client(f, f->t.dev->url, extra);
    assert_string_equal(bkoauth_client_env_name(c), "prod");
    bkoauth_token *p = NULL, *t = NULL;
    assert_int_equal(bkoauth_get_app_access_token(c, &p, NULL), BKOAUTH_OK);
    assert_string_equal(p->env_name, "prod");
    /* the test env's APP row is another row */
    assert_int_equal(bkoauth_get_app_access_token(f->c, &t, NULL), BKOAUTH_OK);
    assert_string_equal(t->env_name, "test");
    assert_string_not_equal(p->access_token, t->access_token);
    assert_int_equal(devserver_counter(f->t.dev, "app_token"), 2);
    bkoauth_token_free(p);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
}

/* ---- get_access_token_by_user and refresh_token ------------------------------------------ */

static void test_by_user(void **state)
{
    fixture *f = *state;
    bkoauth_token *t = (bkoauth_token *)1;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_null(t);
    assert_non_null(strstr(e.message, "alice"));
    bkoauth_token *l = must_login(f, f->c, "alice", "bk_token=cred-alice");
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, l->access_token);
    assert_int_equal(devserver_counter(f->t.dev, "total"), 1);
    bkoauth_token_free(t);

    /* expiring: refreshed with the refresh_token, saved, old token still valid (overlap) */
    assert_int_equal(bkoauth_get_access_token_by_user(f->old, "alice", &t, &e), BKOAUTH_OK);
    assert_string_not_equal(t->access_token, l->access_token);
    assert_string_not_equal(t->refresh_token, l->refresh_token);
    assert_int_equal(devserver_counter(f->t.dev, "refresh"), 1);
    assert_true(devserver_token_valid(f->t.dev, t->access_token));
    assert_true(devserver_token_valid(f->t.dev, l->access_token));
    bkoauth_token *again = NULL;
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &again, &e), BKOAUTH_OK);
    assert_string_equal(again->access_token, t->access_token);
    bkoauth_token_free(again);
    bkoauth_token_free(t);
    bkoauth_token_free(l);
}

static void test_refresh_token(void **state)
{
    fixture *f = *state;
    bkoauth_token *l = must_login(f, f->c, "alice", "bk_token=cred-alice");
    bkoauth_token *r1 = NULL, *r2 = NULL, *saved = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_refresh_token(f->c, l, &r1, &e), BKOAUTH_OK);
    assert_string_not_equal(r1->access_token, l->access_token);
    assert_string_equal(r1->user_id, "alice");
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &saved, &e), BKOAUTH_OK);
    assert_string_equal(saved->access_token, r1->access_token);
    /* refreshing the old token again: its row was renewed already, the newer token comes back
     * without a second call (the refresh_token was single-use anyway) */
    assert_int_equal(bkoauth_refresh_token(f->c, l, &r2, &e), BKOAUTH_OK);
    assert_string_equal(r2->access_token, r1->access_token);
    assert_int_equal(devserver_counter(f->t.dev, "refresh"), 1);
    bkoauth_token_free(l);
    bkoauth_token_free(r1);
    bkoauth_token_free(r2);
    bkoauth_token_free(saved);
}

static void test_refresh_without_refresh_token(void **state)
{
    fixture *f = *state;
    bkoauth_token *app = NULL, *out = (bkoauth_token *)1;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &app, NULL), BKOAUTH_OK);
    assert_int_equal(bkoauth_refresh_token(f->c, app, &out, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_null(out);
    assert_int_equal(devserver_counter(f->t.dev, "refresh"), 0);
    assert_int_equal(bkoauth_refresh_token(f->c, NULL, &out, &e), BKOAUTH_E_INVALID);
    bkoauth_token_free(app);
}

static void test_login_hook(void **state)
{
    fixture *f = *state;
    bkoauth_request r = login("alice", "bk_token=cred-alice");
    bkoauth_user_logged_in(f->c, &r);
    bkoauth_token *t = NULL;
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &t, NULL), BKOAUTH_OK);
    bkoauth_token_free(t);
    /* a failing login only logs */
    bkoauth_request bad = login(NULL, NULL);
    bkoauth_user_logged_in(f->c, &bad);
    bkoauth_user_logged_in(f->c, NULL);
}

/* ---- failures: every injected fault, a timeout, an unreachable service ------------------- */

/* A fault of the service while the saved tokens expire soon but have not expired. An outage
 * (outage set: no answer, an HTTP error, a broken answer) is invisible: the saved tokens are
 * returned, unchanged. The service's refusal (a business error) reaches the caller. An explicit
 * refresh_token() reports the failure either way. Nothing saved changes. */
static void check_fault(fixture *f, const char *kind, int want_status, int outage)
{
    bkoauth_token *l = NULL, *app = NULL;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &app, NULL), BKOAUTH_OK);
    l = must_login(f, f->c, "alice", "bk_token=cred-alice");
    json_decref(devserver_post(f->t.dev, "/__dev/reset"));

    for (int op = 0; op < 4; op++) {
        /* libcurl retries once on a reused connection that died without an answer: a dropped
         * connection must happen twice to reach the caller */
        assert_int_equal(devserver_fault(f->t.dev, kind, strcmp(kind, "drop") == 0 ? 2 : 1, 0), 0);
        bkoauth_token *t = (bkoauth_token *)1;
        bkoauth_error e;
        bkoauth_code rc;
        bkoauth_request r = login("alice", "bk_token=cred-alice");
        switch (op) {
        case 0:
            rc = bkoauth_get_app_access_token(f->old, &t, &e);
            break;
        case 1:
            rc = bkoauth_get_access_token(f->old, &r, &t, &e);
            break;
        case 2:
            rc = bkoauth_get_access_token_by_user(f->old, "alice", &t, &e);
            break;
        default:
            rc = bkoauth_refresh_token(f->c, l, &t, &e);
            break;
        }
        assert_true(devserver_counter(f->t.dev, "faulted") >= 1); /* the service was tried */
        if (outage && op < 3) {
            if (rc != BKOAUTH_OK)
                fail_msg("fault %s, op %d: got %s: %s", kind, op, bkoauth_code_name(rc), e.message);
            assert_int_equal(e.code, BKOAUTH_OK);
            assert_string_equal(t->access_token, op == 0 ? app->access_token : l->access_token);
            bkoauth_token_free(t);
        } else {
            if (rc != BKOAUTH_E_TOKEN_API)
                fail_msg("fault %s, op %d: got %s: %s", kind, op, bkoauth_code_name(rc), e.message);
            assert_null(t);
            assert_int_equal(e.code, BKOAUTH_E_TOKEN_API);
            assert_true(strlen(e.message) > 10);
            assert_no_secret(e.message);
            assert_null(strstr(e.message, l->refresh_token));
            if (want_status >= 0) assert_int_equal(e.http_status, want_status);
        }
        /* nothing saved changed */
        bkoauth_token *s = NULL;
        assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &s, NULL), BKOAUTH_OK);
        assert_string_equal(s->access_token, l->access_token);
        assert_string_equal(s->refresh_token, l->refresh_token);
        assert_int_equal(s->expires, l->expires);
        bkoauth_token_free(s);
        assert_int_equal(bkoauth_get_app_access_token(f->c, &s, NULL), BKOAUTH_OK);
        assert_string_equal(s->access_token, app->access_token);
        bkoauth_token_free(s);
        json_decref(devserver_post(f->t.dev, "/__dev/reset")); /* no fault left over */
    }
    /* the fault is over: the next call works and the old refresh_token is still good */
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(f->old, "alice", &t, &e), BKOAUTH_OK);
    assert_string_not_equal(t->access_token, l->access_token);
    bkoauth_token_free(t);
    bkoauth_token_free(l);
    bkoauth_token_free(app);
}

static void test_fault_http500(void **state)
{
    check_fault(*state, "http500", 500, 1);
}

static void test_fault_truncated(void **state)
{
    check_fault(*state, "truncated", -1, 1);
}

static void test_fault_html(void **state)
{
    check_fault(*state, "html", 200, 1);
}

static void test_fault_drop(void **state)
{
    check_fault(*state, "drop", 0, 1);
}

static void test_fault_business(void **state)
{
    check_fault(*state, "business", -1, 0);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    const char *extra[] = {"BKOAUTH_TIMEOUT_MS", "300", "EXPIRES_SECONDS", "7200", NULL};
    bkoauth_client *c = make_client(f, f->t.dev->url, extra);
    bkoauth_token *app = NULL;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &app, NULL), BKOAUTH_OK);
    /* the saved APP token expires soon for c but has not expired: served while the call times out */
    assert_int_equal(devserver_fault(f->t.dev, "slow", 1, 1500), 0);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, app->access_token);
    bkoauth_token_free(t);
    bkoauth_stats st;
    assert_int_equal(bkoauth_client_stats(c, &st, NULL), BKOAUTH_OK);
    assert_int_equal(st.ssm_calls, 1);
    assert_int_equal(st.ssm_fail_network, 1);
    assert_int_equal(st.served_during_outage, 1);
    /* an explicit refresh reports the timeout, saying which setting bounds it */
    bkoauth_token *l = must_login(f, f->c, "alice", "bk_token=cred-alice");
    assert_int_equal(devserver_fault(f->t.dev, "slow", 1, 1500), 0);
    assert_int_equal(bkoauth_refresh_token(c, l, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_non_null(strstr(e.message, "BKOAUTH_TIMEOUT_MS"));
    bkoauth_token *s = NULL;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &s, NULL), BKOAUTH_OK);
    assert_string_equal(s->access_token, app->access_token);
    bkoauth_token_free(s);
    bkoauth_token_free(l);
    bkoauth_token_free(app);
    bkoauth_client_free(c);
}

static void test_unreachable_service(void **state)
{
    fixture *f = *state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", devserver_free_port());
    bkoauth_client *c = make_client(f, url, NULL);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_null(t);
    assert_non_null(strstr(e.message, "127.0.0.1"));
    assert_int_equal(e.http_status, 0);
    bkoauth_client_free(c);
}

/* Without OAUTH_API_URL a client still opens (as the Python library only warned): saved tokens
 * are read, listed and deleted; a call that needs the service says OAUTH_API_URL is not set. */
static void test_without_api_url(void **state)
{
    fixture *f = *state;
    bkoauth_token *saved = must_login(f, f->c, "alice", "bk_token=cred-alice");
    bkoauth_client *c = make_client(f, NULL, NULL);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(c, "alice", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, saved->access_token);
    bkoauth_token_free(t);
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(bkoauth_list_tokens(c, &all, &n, &e), BKOAUTH_OK);
    int listed = 0;
    for (size_t i = 0; i < n; i++)
        listed += strcmp(all[i]->access_token, saved->access_token) == 0;
    assert_int_equal(listed, 1);
    bkoauth_tokens_free(all, n);
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_null(t);
    assert_non_null(strstr(e.message, "OAUTH_API_URL is not set"));
    bkoauth_request r = login("carol", "bk_token=cred-carol");
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_non_null(strstr(e.message, "OAUTH_API_URL is not set"));
    assert_int_equal(bkoauth_refresh_token(c, saved, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_non_null(strstr(e.message, "OAUTH_API_URL is not set"));
    assert_int_equal(bkoauth_delete_token(c, "alice", &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_get_access_token_by_user(c, "alice", &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(devserver_counter(f->t.dev, "user_token"), 1); /* only the login through f->c */
    assert_int_equal(devserver_counter(f->t.dev, "app_token"), 0);
    assert_int_equal(devserver_counter(f->t.dev, "refresh"), 0);
    bkoauth_token_free(saved);
    bkoauth_client_free(c);
}

/* A client keeps working across a restart of its database server (PostgreSQL, MySQL): the first
 * call after each restart succeeds, whether it reads, renews (lock, SSM call, save) or deletes. */
static void test_database_restart(void **state)
{
    fixture *f = *state;
    const char *kind = teststore_kind();
    const char *dir =
        getenv(strcmp(kind, "postgres") == 0 ? "BKOAUTH_TEST_PG_DIR" : "BKOAUTH_TEST_MYSQL_DIR");
    if (strcmp(kind, "sqlite") == 0 || dir == NULL) skip();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/%s' restart '%s'", BKOAUTH_SOURCE_DIR,
             strcmp(kind, "postgres") == 0 ? "pg.sh" : "mysql.sh", dir);
    const char *nocache[] = {"BKOAUTH_CACHE_SECONDS", "0", NULL};
    bkoauth_client *c = make_client(f, f->t.dev->url, nocache);
    bkoauth_token *alice = must_login(f, c, "alice", "bk_token=cred-alice"), *t = NULL;
    bkoauth_error e;
    assert_int_equal(system(cmd), 0);
    if (bkoauth_get_access_token_by_user(c, "alice", &t, &e) != BKOAUTH_OK)
        fail_msg("the first read after a restart: %s", e.message);
    assert_string_equal(t->access_token, alice->access_token);
    bkoauth_token_free(t);
    assert_int_equal(system(cmd), 0);
    if (bkoauth_get_app_access_token(c, &t, &e) != BKOAUTH_OK)
        fail_msg("the first renewal after a restart: %s", e.message);
    bkoauth_token_free(t);
    assert_int_equal(system(cmd), 0);
    bkoauth_token *fresh = NULL;
    if (bkoauth_refresh_token(c, alice, &fresh, &e) != BKOAUTH_OK)
        fail_msg("the first refresh after a restart: %s", e.message);
    assert_int_equal(bkoauth_get_access_token_by_user(c, "alice", &t, &e), BKOAUTH_OK);
    assert_string_equal(t->access_token, fresh->access_token);
    bkoauth_token_free(t);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(bkoauth_delete_token(c, "alice", &e), BKOAUTH_OK);
    bkoauth_token_free(fresh);
    bkoauth_token_free(alice);
    bkoauth_client_free(c);
}

/* user_id is up to 64 characters, not bytes: a Chinese name of 64 characters is 192 bytes. */
static void test_user_id_characters(void **state)
{
    fixture *f = *state;
    char name[64 * 3 + 4] = "";
    for (int i = 0; i < 64; i++)
        strcat(name, "\xe5\xbc\xa0"); /* 张 */
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, name, &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    assert_int_equal(bkoauth_delete_token(f->c, name, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    strcat(name, "\xe5\xbc\xa0"); /* 65 characters */
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, name, &t, &e), BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "65 characters"));
    bkoauth_request r = login(name, "bk_token=cred-alice");
    assert_int_equal(bkoauth_get_access_token(f->c, &r, &t, &e), BKOAUTH_E_INVALID);
}

#define T(fn) cmocka_unit_test_setup(fn, reset)
static const struct CMUnitTest tests[] = {
    T(test_app_token_fetched_saved_reused),
    T(test_app_token_renewed_when_expiring),
    T(test_user_token_from_cookie),
    T(test_user_token_renewed_on_login_when_expiring),
    T(test_credential_from_session_and_query),
    T(test_uin_credential),
    T(test_anonymous_request_refused),
    T(test_unknown_credential_is_token_api_error),
    T(test_requests_do_not_leak_into_each_other),
    T(test_oauth_params_and_client_ip_sent),
    T(test_run_mode_product_is_prod),
    T(test_by_user),
    T(test_refresh_token),
    T(test_refresh_without_refresh_token),
    T(test_login_hook),
    T(test_fault_http500),
    T(test_fault_truncated),
    T(test_fault_html),
    T(test_fault_drop),
    T(test_fault_business),
    T(test_timeout),
    T(test_unreachable_service),
    T(test_without_api_url),
    T(test_user_id_characters),
    T(test_database_restart),
};

int main(void)
{
    /* BKOAUTH_TEST_SKIP: a pattern (* and ?) of tests not to run, e.g. test_database_restart where
     * another suite restarts the database (tests/scripts/test_pgbouncer_pg.sh) */
    if (getenv("BKOAUTH_TEST_SKIP") != NULL) cmocka_set_skip_filter(getenv("BKOAUTH_TEST_SKIP"));
    int failed = TEST_RUN_GROUP("ieod protocol", tests, 0, setup, teardown);
    /* BKOAUTH_TEST_ONE_PROTOCOL: the store is what is tested (test_pgbouncer_pg.sh) */
    if (getenv("BKOAUTH_TEST_ONE_PROTOCOL") == NULL)
        failed += TEST_RUN_GROUP("ee protocol", tests, 1, setup, teardown);
    teststore_cleanup();
    return failed ? 1 : 0;
}
