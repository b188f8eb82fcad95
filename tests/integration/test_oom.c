/* SPDX-License-Identifier: MIT */
/* test_oom.c - out of memory, the way SQLite tests it: every public call runs with its 1st,
 * 2nd, 3rd... allocation failing (tests/support/faultalloc.h, installed with
 * bkoauth_set_allocators()), until it runs through without reaching the failing one; then the
 * same again with every allocation from the n-th on failing. Every run must end as the call
 * ends with memory available, or in BKOAUTH_E_NOMEM - never another code, never a crash, never a
 * leak (the ASan build checks) - and a call that failed for want of memory must give its normal
 * result when run again with memory available: nothing of the failure is kept.
 *
 * The calls run against bkoauth-devserver (both wire protocols) and a SQLite store in a
 * temporary directory. Allocations of the library, of Jansson and of libcurl go through the
 * test allocator; those of SQLite and OpenSSL do not (OpenSSL's failures are tested in
 * test_jwt_openssl_oom below with OpenSSL's own hooks).
 *
 * Also here: memory handed out by the allocator comes back to it and nothing else does, and
 * secrets are wiped before their memory is freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bkoauth.h"
#include "devserver.h"
#include "faultalloc.h"
#include "internal.h"
#include "ssm/ssm_int.h"
#include "testjwt.h"
#include "teststore.h"

#define APP_CODE "oom-app"
#define APP_SECRET "oom-secret-0123456789abcdef"
#define ALICE_CRED "cred-alice-0123456789"
#define BOB_CRED "cred-bob-0123456789"
#define TTL 3600
/* More allocations than any one call makes: past this the loop is stuck. */
#define MAX_ALLOCS 20000

/* ---- the fixture ----------------------------------------------------------------------------- */

typedef struct fixture {
    devserver *dev;
    char db_url[512];
    char dir[64];            /* temporary files */
    char conf_path[128];     /* a settings file */
    bkoauth_client *c[2];    /* [ee]: tokens fresh (EXPIRES_SECONDS 60 < TTL), cache off */
    bkoauth_client *old[2];  /* [ee]: every token expires soon, cache off */
    bkoauth_client *cached;  /* ieod, BKOAUTH_CACHE_SECONDS 60 */
    bkoauth_client *jwt;     /* APIGW_PUBLIC_KEY set */
    bkoauth_client *badkey;  /* APIGW_PUBLIC_KEY unusable */
    bkoauth_config *full[2]; /* complete settings, for client_new */
    bkoauth_config *cfg;     /* scratch, for the settings calls */
    bkoauth_token *held;     /* a user token, for refresh_token and token_dup */
    testjwt_key *key;
    char *pem;
    char *good_jwt, *bad_sig_jwt;
    char *body_ascii, *body_utf8; /* what bkoauth_jwt_error_body gives with memory */
} fixture;

static fixture *F;

static bkoauth_config *make_config(int ee, const char *const *extra)
{
    bkoauth_config *cfg = bkoauth_config_new();
    assert_non_null(cfg);
    bkoauth_error e;
    const char *base[] = {"OAUTH_API_URL",
                          F->dev->url,
                          "APP_CODE",
                          APP_CODE,
                          "SECRET_KEY",
                          APP_SECRET,
                          "OAUTH_COOKIES_PARAMS",
                          "{'bk_token': 'bk_token'}",
                          "OAUTH_PARAMS",
                          "{'bk_app_hint': 'oom', 'retry': True, 'n': 3}",
                          "BKOAUTH_DATABASE_URL",
                          F->db_url,
                          "BKOAUTH_LOG_LEVEL",
                          "error",
                          "EXPIRES_SECONDS",
                          "60",
                          "BKOAUTH_CACHE_SECONDS",
                          "0",
                          "BKAUTH_BACKEND_TYPE",
                          ee ? "bk_token" : "",
                          NULL};
    for (int i = 0; base[i]; i += 2)
        if (bkoauth_config_set(cfg, base[i], base[i + 1], &e) != BKOAUTH_OK)
            fail_msg("setting %s: %s", base[i], e.message);
    for (int i = 0; extra && extra[i]; i += 2)
        if (bkoauth_config_set(cfg, extra[i], extra[i + 1], &e) != BKOAUTH_OK)
            fail_msg("setting %s: %s", extra[i], e.message);
    return cfg;
}

static bkoauth_client *make_client(int ee, const char *const *extra)
{
    bkoauth_config *cfg = make_config(ee, extra);
    bkoauth_error e;
    bkoauth_client *c = bkoauth_client_new(cfg, &e);
    if (c == NULL) fail_msg("client_new: %s", e.message);
    bkoauth_config_free(cfg);
    bkoauth_client_set_logger(c, NULL, NULL); /* refusals under test are expected: no noise */
    return c;
}

static bkoauth_request login(const char *user, const char *cookie)
{
    bkoauth_request r;
    memset(&r, 0, sizeof r);
    r.username = user;
    r.cookie_header = cookie;
    r.remote_addr = "10.0.0.7";
    return r;
}

/* alice's token saved by client c (a new one when she has none) */
static bkoauth_token *must_login(bkoauth_client *c, const char *user, const char *cookie)
{
    bkoauth_request r = login(user, cookie);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token(c, &r, &t, &e) != BKOAUTH_OK)
        fail_msg("get_access_token(%s): %s: %s", user, bkoauth_code_name(e.code), e.message);
    return t;
}

static void must_delete(bkoauth_client *c, const char *user)
{
    bkoauth_error e;
    bkoauth_code rc = bkoauth_delete_token(c, user, &e);
    if (rc != BKOAUTH_OK && rc != BKOAUTH_E_TOKEN_NOT_EXIST)
        fail_msg("delete_token(%s): %s: %s", user ? user : "APP", bkoauth_code_name(rc), e.message);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    F = f;
    const char *args[] = {
        "--app-code", APP_CODE,        "--app-secret", APP_SECRET, "--user",    ALICE_CRED "=alice",
        "--user",     BOB_CRED "=bob", "--ttl",        "3600",     "--overlap", "600",
        NULL};
    f->dev = devserver_start(args);
    if (f->dev == NULL) return -1;
    if (teststore_fresh_url("oom", f->db_url, sizeof f->db_url) == NULL) return -1;
    if (teststore_tmpdir(f->dir, sizeof f->dir) == NULL) return -1;
    snprintf(f->conf_path, sizeof f->conf_path, "%s/bkoauth.conf", f->dir);
    FILE *conf = fopen(f->conf_path, "w");
    if (conf == NULL) return -1;
    fprintf(conf,
            "# the Django snippet, verbatim\n"
            "OAUTH_API_URL = '%s'\n"
            "OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}  # the login cookie\n"
            "OAUTH_PARAMS = {\n"
            "    'bk_app_hint': 'oom',   # a comment inside\n"
            "    'retry': True,\n"
            "}\n"
            "APP_CODE = \"%s\"\n"
            "SECRET_KEY = '%s'\n"
            "export RUN_MODE = DEVELOP\n"
            "EXPIRES_SECONDS = 60\n"
            "BKOAUTH_DATABASE_URL = 'sqlite:%s/conf.db'\n",
            f->dev->url, APP_CODE, APP_SECRET, f->dir);
    fclose(conf);

    for (int ee = 0; ee < 2; ee++) {
        f->c[ee] = make_client(ee, NULL);
        const char *old[] = {"EXPIRES_SECONDS", "7200", NULL};
        f->old[ee] = make_client(ee, old);
        f->full[ee] = make_config(ee, NULL); /* with the PEM key and a CA file: below */
    }
    const char *cached[] = {"BKOAUTH_CACHE_SECONDS", "60", NULL};
    f->cached = make_client(0, cached);

    f->key = testjwt_key_new(2048);
    if (f->key == NULL) return -1;
    f->pem = testjwt_public_pem(f->key, 0);
    for (int ee = 0; ee < 2; ee++) {
        bkoauth_error e;
        if (bkoauth_config_set(f->full[ee], "APIGW_PUBLIC_KEY", f->pem, &e) != BKOAUTH_OK ||
            bkoauth_config_set(f->full[ee], "BKOAUTH_CA_FILE", "/etc/ssl/certs/ca-certificates.crt", &e) !=
                BKOAUTH_OK)
            fail_msg("full settings: %s", e.message);
    }
    const char *jwtset[] = {"APIGW_PUBLIC_KEY", f->pem, NULL};
    f->jwt = make_client(0, jwtset);
    const char *badset[] = {"APIGW_PUBLIC_KEY",
                            "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----", NULL};
    f->badkey = make_client(0, badset);
    char *payload = testjwt_payload("APIGW", "gw-app", "alice", (long long)time(NULL) + 3600, 0);
    f->good_jwt = testjwt_sign_rs256(f->key, "{\"alg\": \"RS256\", \"typ\": \"JWT\"}", payload);
    testjwt_key *other = testjwt_key_new(2048);
    f->bad_sig_jwt = testjwt_sign_rs256(other, "{\"alg\": \"RS256\", \"typ\": \"JWT\"}", payload);
    testjwt_key_free(other);
    free(payload);
    if (f->good_jwt == NULL || f->bad_sig_jwt == NULL) return -1;

    bkoauth_error e;
    memset(&e, 0, sizeof e);
    e.code = BKOAUTH_E_JWT;
    snprintf(e.message, sizeof e.message, "token expired: the JWT expired 5 seconds ago");
    f->body_ascii = bkoauth_jwt_error_body(&e);
    snprintf(e.message, sizeof e.message, "令牌已过期 (token expired) \x01");
    f->body_utf8 = bkoauth_jwt_error_body(&e);
    if (f->body_ascii == NULL || f->body_utf8 == NULL) return -1;

    f->held = must_login(f->c[0], "alice", "bk_token=" ALICE_CRED);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f == NULL) return 0; /* the group set-up failed: nothing to undo */
    for (int ee = 0; ee < 2; ee++) {
        bkoauth_client_free(f->c[ee]);
        bkoauth_client_free(f->old[ee]);
        bkoauth_config_free(f->full[ee]);
    }
    bkoauth_client_free(f->cached);
    bkoauth_client_free(f->jwt);
    bkoauth_client_free(f->badkey);
    bkoauth_config_free(f->cfg);
    bkoauth_token_free(f->held);
    testjwt_key_free(f->key);
    free(f->pem);
    free(f->good_jwt);
    free(f->bad_sig_jwt);
    bkoauth_free(f->body_ascii);
    bkoauth_free(f->body_utf8);
    devserver_stop(f->dev);
    free(f);
    return 0;
}

/* ---- the torture loop ---------------------------------------------------------------------- */

typedef struct ocase ocase;
struct ocase {
    const char *name;
    bkoauth_code expect;                                               /* the result with memory available */
    void (*prepare)(fixture *f, const ocase *c);                       /* before each run, memory available */
    bkoauth_code (*run)(fixture *f, const ocase *c, bkoauth_error *e); /* frees what it gets */
    int ee;                                                            /* protocol of the clients used */
    const char *a, *b;                                                 /* arguments of run */
    int retry_prepares; /* a failed run may have spent what prepare set up (a single-use
                           refresh_token, a one-shot fault): prepare again before the retry */
};

/* For the calls that return NULL on failure instead of a code. */
static bkoauth_code nomem_if_null(const void *p, bkoauth_error *e)
{
    if (p != NULL) {
        e->code = BKOAUTH_OK;
        e->message[0] = '\0';
        return BKOAUTH_OK;
    }
    e->code = BKOAUTH_E_NOMEM;
    snprintf(e->message, sizeof e->message, "returned NULL");
    return BKOAUTH_E_NOMEM;
}

static void check_result(const ocase *c, long n, int persistent, bkoauth_code rc, const bkoauth_error *e,
                         const char *when)
{
    if (rc != c->expect && rc != BKOAUTH_E_NOMEM)
        fail_msg("%s: allocation %ld%s failing: %s%s: %s (expected %s or OutOfMemory)", c->name, n,
                 persistent ? " and after" : "", when, bkoauth_code_name(rc),
                 rc == BKOAUTH_OK ? "" : e->message, bkoauth_code_name(c->expect));
    if (rc != BKOAUTH_OK) {
        if (e->code != rc)
            fail_msg("%s: allocation %ld failing: returned %s but err->code is %d", c->name, n,
                     bkoauth_code_name(rc), (int)e->code);
        if (e->message[0] == '\0' || strnlen(e->message, sizeof e->message) == sizeof e->message)
            fail_msg("%s: allocation %ld failing: %s without a message", c->name, n, bkoauth_code_name(rc));
    }
}

/* Runs case c with allocation n (persistent: n and every later one) failing, for n = 1, 2, ...
 * until a run does not reach allocation n. Returns the number of runs. */
static long torture(fixture *f, const ocase *c, int persistent)
{
    for (long n = 1; n <= MAX_ALLOCS; n++) {
        if (c->prepare != NULL) c->prepare(f, c);
        bkoauth_error e;
        memset(&e, 0x5a, sizeof e);
        faultalloc_arm(n, persistent);
        bkoauth_code rc = c->run(f, c, &e);
        long failed = faultalloc_disarm();
        check_result(c, n, persistent, rc, &e, "");
        if (rc == BKOAUTH_E_NOMEM && failed == 0)
            fail_msg("%s: OutOfMemory although no allocation failed (n = %ld): %s", c->name, n, e.message);
        if (rc == BKOAUTH_E_NOMEM) {
            /* nothing of the failure is kept: with memory, the same call gives its normal result */
            char first[sizeof e.message];
            snprintf(first, sizeof first, "%s", e.message);
            if (c->retry_prepares && c->prepare != NULL) c->prepare(f, c);
            memset(&e, 0x5a, sizeof e);
            bkoauth_code again = c->run(f, c, &e);
            if (again != c->expect)
                fail_msg(
                    "%s: after OutOfMemory (%s) at allocation %ld%s, the same call with memory gives %s: %s",
                    c->name, first, n, persistent ? " and after" : "", bkoauth_code_name(again),
                    again == BKOAUTH_OK ? "" : e.message);
        }
        if (failed == 0) return n;
    }
    fail_msg("%s: still reaching allocation %d: stuck?", c->name, MAX_ALLOCS);
    return 0;
}

static void torture_all(fixture *f, const ocase *cases, size_t ncases)
{
    for (size_t i = 0; i < ncases; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long runs = torture(f, &cases[i], 0);
        long pruns = torture(f, &cases[i], 1);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message("%-52s %5ld allocations, %5ld + %5ld runs, %6.2f s\n", cases[i].name, runs - 1, runs,
                      pruns, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
}

/* ---- preparations --------------------------------------------------------------------------- */

static void prep_no_app(fixture *f, const ocase *c)
{
    must_delete(f->c[c->ee], NULL);
}

static void prep_app_saved(fixture *f, const ocase *c)
{
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_app_access_token(f->c[c->ee], &t, &e) != BKOAUTH_OK)
        fail_msg("get_app_access_token: %s", e.message);
    bkoauth_token_free(t);
}

static void prep_no_alice(fixture *f, const ocase *c)
{
    must_delete(f->c[c->ee], "alice");
}

static void prep_alice_saved(fixture *f, const ocase *c)
{
    bkoauth_token_free(must_login(f->c[c->ee], "alice", "bk_token=" ALICE_CRED));
}

/* a new token for alice, saved and held: its refresh_token unused */
static void prep_fresh_alice(fixture *f, const ocase *c)
{
    must_delete(f->c[c->ee], "alice");
    bkoauth_token_free(f->held);
    f->held = must_login(f->c[c->ee], "alice", "bk_token=" ALICE_CRED);
}

static void prep_business_fault(fixture *f, const ocase *c)
{
    must_delete(f->c[c->ee], NULL);
    if (devserver_business_fault(f->dev, 1, 1302, "app_secret is wrong") != 0) fail_msg("cannot set a fault");
}

static void prep_three_saved(fixture *f, const ocase *c)
{
    prep_app_saved(f, c);
    prep_alice_saved(f, c);
    bkoauth_token_free(must_login(f->c[c->ee], "bob", "bk_token=" BOB_CRED));
}

static void prep_cached(fixture *f, const ocase *c)
{
    (void)c;
    bkoauth_token *t = NULL;
    if (bkoauth_get_app_access_token(f->cached, &t, NULL) != BKOAUTH_OK) fail_msg("cached client");
    bkoauth_token_free(t);
}

static void prep_new_cfg(fixture *f, const ocase *c)
{
    (void)c;
    bkoauth_config_free(f->cfg);
    f->cfg = bkoauth_config_new();
    assert_non_null(f->cfg);
}

static void prep_forget_keys(fixture *f, const ocase *c)
{
    (void)f;
    (void)c;
    bkoauth__jwt_keys_clear();
}

/* ---- the calls ------------------------------------------------------------------------------ */

static bkoauth_code run_config_new(fixture *f, const ocase *c, bkoauth_error *e)
{
    (void)f;
    (void)c;
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_code rc = nomem_if_null(cfg, e);
    bkoauth_config_free(cfg);
    return rc;
}

/* config_set(a, b) on a fresh set: on failure the setting is unchanged (its default) */
static bkoauth_code run_config_set(fixture *f, const ocase *c, bkoauth_error *e)
{
    const char *before = bkoauth_config_get(f->cfg, c->a);
    char was[64];
    snprintf(was, sizeof was, "%s", before ? before : "(null)");
    bkoauth_code rc = bkoauth_config_set(f->cfg, c->a, c->b, e);
    const char *now = bkoauth_config_get(f->cfg, c->a);
    if (rc == BKOAUTH_OK && !bk_streq(now, c->b)) fail_msg("%s: set, but reads back '%s'", c->name, now);
    if (rc != BKOAUTH_OK && strcmp(was, now ? now : "(null)") != 0)
        fail_msg("%s: failed with %s, but the setting changed to '%s'", c->name, bkoauth_code_name(rc), now);
    return rc;
}

static bkoauth_code run_load_file(fixture *f, const ocase *c, bkoauth_error *e)
{
    (void)c;
    bkoauth_code rc = bkoauth_config_load_file(f->cfg, f->conf_path, e);
    if (rc == BKOAUTH_OK && !bk_streq(bkoauth_config_get(f->cfg, "SECRET_KEY"), APP_SECRET))
        fail_msg("load_file: SECRET_KEY not read");
    return rc;
}

static bkoauth_code run_load_env(fixture *f, const ocase *c, bkoauth_error *e)
{
    (void)c;
    bkoauth_code rc = bkoauth_config_load_env(f->cfg, e);
    if (rc == BKOAUTH_OK && !bk_streq(bkoauth_config_get(f->cfg, "BKAUTH_TOKEN_SECRET_KEY"), "env-secret"))
        fail_msg("load_env: BKAUTH_TOKEN_SECRET_KEY not read");
    return rc;
}

/* client_new; a client made must hold every setting (none lost to a failed copy) */
static bkoauth_code run_client_new(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_client *cl = bkoauth_client_new(f->full[c->ee], e);
    if (cl != NULL) {
        const bk_settings *s = client_settings(cl);
        if (!bk_streq(s->api_url, f->dev->url) || !bk_streq(s->app_code, APP_CODE) ||
            !bk_streq(s->app_secret, APP_SECRET) || !bk_streq(s->apigw_public_key, f->pem) ||
            !bk_streq(s->ca_file, "/etc/ssl/certs/ca-certificates.crt") ||
            !bk_streq(s->database_url, f->db_url) || !bk_streq(s->database_path, f->db_url + 7) ||
            s->cookies_params.count != 1 || s->oauth_params.count != 3 || s->oauth_params_json == NULL ||
            s->protocol != (c->ee ? BK_PROTO_EE : BK_PROTO_IEOD))
            fail_msg("%s: a client whose settings are not all there", c->name);
    }
    bkoauth_client_free(cl);
    return cl != NULL ? BKOAUTH_OK : e->code;
}

static bkoauth_code take_token(bkoauth_code rc, bkoauth_token *t)
{
    if (rc == BKOAUTH_OK && (t == NULL || bk_empty(t->access_token)))
        fail_msg("OK without a token (%p, allocations so far %ld)", (void *)t, faultalloc_count());
    if (rc != BKOAUTH_OK && t != NULL) fail_msg("a token although the call failed");
    bkoauth_token_free(t);
    return rc;
}

static bkoauth_code run_app_token(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_client *cl = c->a == NULL ? f->c[c->ee] : !strcmp(c->a, "old") ? f->old[c->ee] : f->cached;
    bkoauth_token *t = NULL;
    bkoauth_code rc = bkoauth_get_app_access_token(cl, &t, e);
    return take_token(rc, t);
}

static const char *session_cred(void *ctx, const char *key)
{
    (void)ctx;
    return strcmp(key, "bk_token") == 0 ? ALICE_CRED : NULL;
}

/* a: where the credential is: "cookie", "query", "session" */
static bkoauth_code run_user_token(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_request r = login("alice", NULL);
    if (strcmp(c->a, "cookie") == 0) r.cookie_header = "lang=zh-cn; bk_token=\"" ALICE_CRED "\"; x=1";
    if (strcmp(c->a, "query") == 0) r.query_string = "a=1&b=%20&bk_token=" ALICE_CRED "&c=%41";
    if (strcmp(c->a, "session") == 0) {
        r.cookie_header = "bk_token=";
        r.session_get = session_cred;
    }
    r.x_forwarded_for = "10.1.2.3";
    bkoauth_token *t = NULL;
    bkoauth_code rc = bkoauth_get_access_token(f->c[c->ee], &r, &t, e);
    return take_token(rc, t);
}

static bkoauth_code run_login_hook(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_request r = login("alice", "bk_token=" ALICE_CRED);
    bkoauth_user_logged_in(f->c[c->ee], &r);
    return nomem_if_null("", e); /* nothing to check but that it returns, leaving no leak */
}

static bkoauth_code run_by_user(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_client *cl = c->b != NULL ? f->old[c->ee] : f->c[c->ee];
    bkoauth_token *t = NULL;
    bkoauth_code rc = bkoauth_get_access_token_by_user(cl, c->a, &t, e);
    return take_token(rc, t);
}

static bkoauth_code run_refresh(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_token *t = NULL;
    bkoauth_code rc = bkoauth_refresh_token(f->c[c->ee], f->held, &t, e);
    return take_token(rc, t);
}

static bkoauth_code run_list(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_token **all = NULL;
    size_t n = 0;
    bkoauth_code rc = bkoauth_list_tokens(f->c[c->ee], &all, &n, e);
    if (rc == BKOAUTH_OK && n != 3) fail_msg("list_tokens: %zu tokens, expected 3", n);
    if (rc != BKOAUTH_OK && (all != NULL || n != 0)) fail_msg("list_tokens: output although it failed");
    bkoauth_tokens_free(all, n);
    return rc;
}

static bkoauth_code run_delete(fixture *f, const ocase *c, bkoauth_error *e)
{
    return bkoauth_delete_token(f->c[c->ee], c->a, e);
}

static bkoauth_code run_token_dup(fixture *f, const ocase *c, bkoauth_error *e)
{
    (void)c;
    bkoauth_token *t = bkoauth_token_dup(f->held);
    bkoauth_code rc = nomem_if_null(t, e);
    if (t != NULL && (!bk_streq(t->access_token, f->held->access_token) ||
                      !bk_streq(t->refresh_token, f->held->refresh_token) || !bk_streq(t->user_id, "alice")))
        fail_msg("token_dup: a different token");
    bkoauth_token_free(t);
    return rc;
}

static const char *params_get(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "REMOTE_USER") == 0   ? "alice"
           : strcmp(name, "HTTP_COOKIE") == 0 ? "bk_token=x"
                                              : NULL;
}

static bkoauth_code run_request_from_params(fixture *f, const ocase *c, bkoauth_error *e)
{
    (void)f;
    (void)c;
    bkoauth_request r;
    long before = faultalloc_count();
    bkoauth_request_from_params(&r, params_get, NULL);
    if (faultalloc_count() != before) fail_msg("request_from_params allocated");
    if (!bk_streq(r.username, "alice")) fail_msg("request_from_params: no username");
    return nomem_if_null("", e);
}

/* a: "good" or "bad-signature"; b: "badkey" for the client with an unusable key */
static bkoauth_code run_jwt_verify(fixture *f, const ocase *c, bkoauth_error *e)
{
    bkoauth_client *cl = c->b != NULL ? f->badkey : f->jwt;
    const char *token = strcmp(c->a, "good") == 0 ? f->good_jwt : f->bad_sig_jwt;
    bkoauth_jwt *out = NULL;
    bkoauth_code rc = bkoauth_jwt_verify(cl, token, &out, e);
    if (rc == BKOAUTH_OK && (out == NULL || !bk_streq(out->app_code, "gw-app") ||
                             !bk_streq(out->username, "alice") || out->payload_json == NULL))
        fail_msg("jwt_verify: OK with a wrong result");
    if (rc != BKOAUTH_OK && out != NULL) fail_msg("jwt_verify: a result although it failed");
    if (rc == BKOAUTH_E_JWT && strncmp(e->message, c->b != NULL ? "public key unusable" : "bad signature",
                                       c->b != NULL ? 19 : 13) != 0)
        fail_msg("jwt_verify: refused for another reason: %s", e->message);
    bkoauth_jwt_free(out);
    return rc;
}

/* a: "ascii" or "utf8": the body must be exactly what it is with memory, or NULL */
static bkoauth_code run_error_body(fixture *f, const ocase *c, bkoauth_error *e)
{
    int utf8 = strcmp(c->a, "utf8") == 0;
    bkoauth_error in;
    memset(&in, 0, sizeof in);
    in.code = BKOAUTH_E_JWT;
    if (utf8)
        snprintf(in.message, sizeof in.message, "令牌已过期 (token expired) \x01");
    else
        snprintf(in.message, sizeof in.message, "token expired: the JWT expired 5 seconds ago");
    char *body = bkoauth_jwt_error_body(&in);
    if (body != NULL && strcmp(body, utf8 ? f->body_utf8 : f->body_ascii) != 0)
        fail_msg("jwt_error_body: '%s', with memory '%s'", body, utf8 ? f->body_utf8 : f->body_ascii);
    bkoauth_free(body);
    return nomem_if_null(body, e);
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void test_settings(void **state)
{
    fixture *f = *state;
    setenv("OAUTH_COOKIES_PARAMS", "{'bk_token': 'bk_token', 'uin': 'uin'}", 1);
    setenv("BKAUTH_TOKEN_SECRET_KEY", "env-secret", 1);
    setenv("OAUTH_API_URL", "http://127.0.0.1:9/", 1);
    const ocase cases[] = {
        {"config_new", BKOAUTH_OK, NULL, run_config_new, 0, NULL, NULL, 0},
        {"config_set OAUTH_COOKIES_PARAMS (Python style)", BKOAUTH_OK, prep_new_cfg, run_config_set, 0,
         "OAUTH_COOKIES_PARAMS", "{'bk_token': 'bk_token', 'uin': \"uin\",}", 0},
        {"config_set OAUTH_PARAMS", BKOAUTH_OK, prep_new_cfg, run_config_set, 0, "OAUTH_PARAMS",
         "{\"a\": 1, 'b': None, 'c': False, 'd': 'x\\'y'}", 0},
        {"config_set SECRET_KEY", BKOAUTH_OK, prep_new_cfg, run_config_set, 0, "SECRET_KEY", APP_SECRET, 0},
        {"config_set a bad JSON value", BKOAUTH_E_CONFIG, prep_new_cfg, run_config_set, 0, "OAUTH_PARAMS",
         "{'a': [1, 2}", 0},
        {"config_set an unknown name", BKOAUTH_E_CONFIG, prep_new_cfg, run_config_set, 0, "OAUTH_API_UR",
         "http://x", 0},
        {"config_load_file", BKOAUTH_OK, prep_new_cfg, run_load_file, 0, NULL, NULL, 0},
        {"config_load_env", BKOAUTH_OK, prep_new_cfg, run_load_env, 0, NULL, NULL, 0},
    };
    torture_all(f, cases, sizeof cases / sizeof cases[0]);
    unsetenv("OAUTH_COOKIES_PARAMS");
    unsetenv("BKAUTH_TOKEN_SECRET_KEY");
    unsetenv("OAUTH_API_URL");
}

static void test_client_new(void **state)
{
    fixture *f = *state;
    const ocase cases[] = {
        {"client_new (ieod, SQLite)", BKOAUTH_OK, NULL, run_client_new, 0, NULL, NULL, 0},
        {"client_new (ee, SQLite)", BKOAUTH_OK, NULL, run_client_new, 1, NULL, NULL, 0},
    };
    torture_all(f, cases, sizeof cases / sizeof cases[0]);
}

static void test_operations(void **state)
{
    fixture *f = *state;
    const ocase cases[] = {
        {"get_app_access_token ieod: fetched", BKOAUTH_OK, prep_no_app, run_app_token, 0, NULL, NULL, 0},
        {"get_app_access_token ee: fetched", BKOAUTH_OK, prep_no_app, run_app_token, 1, NULL, NULL, 0},
        {"get_app_access_token ieod: saved", BKOAUTH_OK, prep_app_saved, run_app_token, 0, NULL, NULL, 0},
        {"get_app_access_token ieod: expiring, renewed", BKOAUTH_OK, prep_app_saved, run_app_token, 0, "old",
         NULL, 0},
        {"get_app_access_token ee: expiring, renewed", BKOAUTH_OK, prep_app_saved, run_app_token, 1, "old",
         NULL, 0},
        {"get_app_access_token ieod: service refuses", BKOAUTH_E_TOKEN_API, prep_business_fault,
         run_app_token, 0, NULL, NULL, 1},
        {"get_app_access_token ee: service refuses", BKOAUTH_E_TOKEN_API, prep_business_fault, run_app_token,
         1, NULL, NULL, 1},
        {"get_access_token ieod: cookie, fetched", BKOAUTH_OK, prep_no_alice, run_user_token, 0, "cookie",
         NULL, 0},
        {"get_access_token ee: cookie, fetched", BKOAUTH_OK, prep_no_alice, run_user_token, 1, "cookie", NULL,
         0},
        {"get_access_token ieod: query string, fetched", BKOAUTH_OK, prep_no_alice, run_user_token, 0,
         "query", NULL, 0},
        {"get_access_token ee: session, fetched", BKOAUTH_OK, prep_no_alice, run_user_token, 1, "session",
         NULL, 0},
        {"get_access_token ieod: saved", BKOAUTH_OK, prep_alice_saved, run_user_token, 0, "cookie", NULL, 0},
        {"user_logged_in ee", BKOAUTH_OK, prep_no_alice, run_login_hook, 1, NULL, NULL, 0},
        {"get_access_token_by_user ieod: saved", BKOAUTH_OK, prep_alice_saved, run_by_user, 0, "alice", NULL,
         0},
        {"get_access_token_by_user: none saved", BKOAUTH_E_TOKEN_NOT_EXIST, NULL, run_by_user, 0, "nobody",
         NULL, 0},
        {"get_access_token_by_user ieod: expiring, refreshed", BKOAUTH_OK, prep_fresh_alice, run_by_user, 0,
         "alice", "old", 1},
        {"get_access_token_by_user ee: expiring, refreshed", BKOAUTH_OK, prep_fresh_alice, run_by_user, 1,
         "alice", "old", 1},
        {"refresh_token ieod", BKOAUTH_OK, prep_fresh_alice, run_refresh, 0, NULL, NULL, 1},
        {"refresh_token ee", BKOAUTH_OK, prep_fresh_alice, run_refresh, 1, NULL, NULL, 1},
        {"token_dup", BKOAUTH_OK, NULL, run_token_dup, 0, NULL, NULL, 0},
        {"list_tokens", BKOAUTH_OK, prep_three_saved, run_list, 0, NULL, NULL, 0},
        {"delete_token", BKOAUTH_OK, prep_alice_saved, run_delete, 0, "alice", NULL, 1},
        {"delete_token: none saved", BKOAUTH_E_TOKEN_NOT_EXIST, prep_no_alice, run_delete, 0, "alice", NULL,
         0},
        {"request_from_params", BKOAUTH_OK, NULL, run_request_from_params, 0, NULL, NULL, 0},
    };
    torture_all(f, cases, sizeof cases / sizeof cases[0]);
    json_decref(devserver_post(f->dev, "/__dev/fault?kind=business&count=0"));
}

static void test_cached_token(void **state)
{
    fixture *f = *state;
    const ocase cases[] = {
        {"get_app_access_token: from this thread's cache", BKOAUTH_OK, prep_cached, run_app_token, 0,
         "cached", NULL, 0},
    };
    torture_all(f, cases, sizeof cases / sizeof cases[0]);
}

static void test_jwt(void **state)
{
    fixture *f = *state;
    const ocase cases[] = {
        {"jwt_verify: key parsed before", BKOAUTH_OK, NULL, run_jwt_verify, 0, "good", NULL, 0},
        {"jwt_verify: key parsed now", BKOAUTH_OK, prep_forget_keys, run_jwt_verify, 0, "good", NULL, 0},
        {"jwt_verify: bad signature", BKOAUTH_E_JWT, prep_forget_keys, run_jwt_verify, 0, "bad-signature",
         NULL, 0},
        {"jwt_verify: unusable key", BKOAUTH_E_JWT, NULL, run_jwt_verify, 0, "good", "badkey", 0},
        {"jwt_error_body (ASCII)", BKOAUTH_OK, NULL, run_error_body, 0, "ascii", NULL, 0},
        {"jwt_error_body (UTF-8)", BKOAUTH_OK, NULL, run_error_body, 0, "utf8", NULL, 0},
    };
    torture_all(f, cases, sizeof cases / sizeof cases[0]);
}

/* ---- OpenSSL's own allocations ------------------------------------------------------------
 * OpenSSL does not allocate through bkoauth_set_allocators(); its hooks are set here, before it
 * allocates anything, so that the PEM reader and the signature check can fail too. */

static long ossl_count, ossl_fail_at, ossl_failed;

static int ossl_should_fail(void)
{
    ossl_count++;
    if (ossl_fail_at > 0 && ossl_count == ossl_fail_at) {
        ossl_failed++;
        return 1;
    }
    return 0;
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return ossl_should_fail() ? NULL : malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return ossl_should_fail() ? NULL : realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

static int ossl_hooked;

/* jwt_verify with OpenSSL's n-th allocation failing, for n = 1, 2, ... while it parses the key
 * and checks the signature. OpenSSL 3 does not always say that an allocation failed: its
 * decoders try one format after another and drop their errors, a provider may report a reason
 * of its own, and a failure inside the RSA arithmetic can look exactly like a signature that
 * does not match. So such a failure is OutOfMemory when OpenSSL says so, else a refusal
 * (JWTError: "public key unusable", "the signature could not be checked", "bad signature") -
 * never anything else, and never remembered: the same call with memory succeeds. */
static void test_jwt_openssl_oom(void **state)
{
    fixture *f = *state;
    if (!ossl_hooked) skip();
    long n, nomem = 0, unusable = 0;
    for (n = 1; n <= MAX_ALLOCS; n++) {
        bkoauth__jwt_keys_clear();
        bkoauth_jwt *out = NULL;
        bkoauth_error e;
        ossl_failed = 0;
        ossl_fail_at = ossl_count + n;
        bkoauth_code rc = bkoauth_jwt_verify(f->jwt, f->good_jwt, &out, &e);
        ossl_fail_at = 0;
        bkoauth_jwt_free(out);
        if (rc == BKOAUTH_E_NOMEM) nomem++;
        if (rc == BKOAUTH_E_JWT) {
            if (strncmp(e.message, "public key unusable", 19) != 0 &&
                strncmp(e.message, "the signature could not be checked", 34) != 0 &&
                strncmp(e.message, "bad signature", 13) != 0)
                fail_msg("OpenSSL allocation %ld failing: JWTError for another reason: %s", n, e.message);
            unusable++;
        } else if (rc != BKOAUTH_OK && rc != BKOAUTH_E_NOMEM) {
            fail_msg("OpenSSL allocation %ld failing: %s: %s", n, bkoauth_code_name(rc), e.message);
        }
        if (rc != BKOAUTH_OK) { /* not remembered: with memory the key is read and the token accepted */
            rc = bkoauth_jwt_verify(f->jwt, f->good_jwt, &out, &e);
            if (rc != BKOAUTH_OK)
                fail_msg("after OpenSSL allocation %ld failed, the same call with memory gives %s: %s", n,
                         bkoauth_code_name(rc), e.message);
            bkoauth_jwt_free(out);
        }
        if (ossl_failed == 0) break;
    }
    print_message("jwt_verify, OpenSSL allocations failing: %ld runs, %ld OutOfMemory, %ld JWTError saying "
                  "OpenSSL failed\n",
                  n, nomem, unusable);
}

/* ---- memory comes back to the allocator that gave it ---------------------------------------- */

static void test_memory_comes_back(void **state)
{
    fixture *f = *state;
    bkoauth__jwt_keys_clear();
    long mark = faultalloc_mark(), foreign = faultalloc_foreign();
    for (int ee = 0; ee < 2; ee++) {
        const char *extra[] = {"APIGW_PUBLIC_KEY", f->pem, NULL};
        bkoauth_client *cl = make_client(ee, extra);
        bkoauth_token *t = NULL, *u = NULL, *r = NULL;
        bkoauth_request req = login("alice", "bk_token=" ALICE_CRED);
        must_delete(cl, NULL);
        must_delete(cl, "alice");
        assert_int_equal(bkoauth_get_app_access_token(cl, &t, NULL), BKOAUTH_OK);
        assert_int_equal(bkoauth_get_access_token(cl, &req, &u, NULL), BKOAUTH_OK);
        assert_int_equal(bkoauth_refresh_token(cl, u, &r, NULL), BKOAUTH_OK);
        bkoauth_token_free(t);
        bkoauth_token_free(u);
        bkoauth_token_free(r);
        assert_int_equal(bkoauth_get_access_token_by_user(cl, "alice", &t, NULL), BKOAUTH_OK);
        u = bkoauth_token_dup(t);
        bkoauth_token_free(t);
        bkoauth_token_free(u);
        bkoauth_jwt *j = NULL;
        assert_int_equal(bkoauth_jwt_verify(cl, f->good_jwt, &j, NULL), BKOAUTH_OK);
        bkoauth_jwt_free(j);
        bkoauth_error e;
        assert_int_equal(bkoauth_jwt_verify(cl, f->bad_sig_jwt, &j, &e), BKOAUTH_E_JWT);
        bkoauth_free(bkoauth_jwt_error_body(&e));
        bkoauth_user_logged_in(cl, &req);
        bkoauth_client_free(cl);
    }
    bkoauth_config *cfg = bkoauth_config_new();
    assert_int_equal(bkoauth_config_load_file(cfg, f->conf_path, NULL), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(cfg, "OAUTH_PARAMS", "{'a': 1}", NULL), BKOAUTH_OK);
    bkoauth_config_free(cfg);
    bkoauth__jwt_keys_clear();
    assert_int_equal(faultalloc_foreign() - foreign, 0);
    assert_int_equal(faultalloc_outstanding(mark), 0);

    /* tokens handed out by the store's list and by the cache */
    bkoauth_token **all = NULL;
    size_t n = 0;
    foreign = faultalloc_foreign();
    assert_int_equal(bkoauth_list_tokens(f->c[0], &all, &n, NULL), BKOAUTH_OK);
    bkoauth_tokens_free(all, n);
    assert_int_equal(faultalloc_foreign() - foreign, 0);
    bkoauth_token *t = NULL;
    assert_int_equal(bkoauth_get_app_access_token(f->cached, &t, NULL), BKOAUTH_OK); /* fills the cache */
    bkoauth_token_free(t);
    foreign = faultalloc_foreign();
    assert_int_equal(bkoauth_get_app_access_token(f->cached, &t, NULL), BKOAUTH_OK); /* a copy from it */
    bkoauth_token_free(t);
    assert_int_equal(faultalloc_foreign() - foreign, 0);
}

/* ---- secrets are wiped before their memory is freed ----------------------------------------- */

static void expect_wiped(const char *what)
{
    long hits = faultalloc_watch_hits();
    if (hits != 0) fail_msg("%s: %ld freed block(s) still held the secret", what, hits);
}

static void test_secrets_wiped(void **state)
{
    fixture *f = *state;
    bkoauth_error e;

    /* the watch sees a secret that is not wiped (so that "no hit" below means something) */
    faultalloc_watch(APP_SECRET);
    bkoauth_free(bk_strdup("x " APP_SECRET " y"));
    assert_int_equal(faultalloc_watch_hits(), 1);

    faultalloc_watch(APP_SECRET);
    bkoauth_config *cfg = bkoauth_config_new();
    assert_int_equal(bkoauth_config_set(cfg, "SECRET_KEY", APP_SECRET, &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(cfg, "SECRET_KEY", APP_SECRET, &e), BKOAUTH_OK); /* replaced */
    assert_int_equal(bkoauth_config_set(cfg, "SECRET_KEY", NULL, &e), BKOAUTH_OK);       /* reset */
    bkoauth_config_free(cfg);
    expect_wiped("config_set / config_free");

    cfg = bkoauth_config_new();
    assert_int_equal(bkoauth_config_load_file(cfg, f->conf_path, &e), BKOAUTH_OK);
    expect_wiped("config_load_file (the file text, its copy, the value)");
    bk_settings s;
    assert_int_equal(settings_from_config(cfg, &s, &e), BKOAUTH_OK);
    settings_clear(&s);
    expect_wiped("settings_from_config / settings_clear");
    bkoauth_client *cl = bkoauth_client_new(cfg, &e);
    assert_non_null(cl);
    bkoauth_client_free(cl);
    bkoauth_config_free(cfg);
    expect_wiped("client_new / client_free");

    /* the SSM calls as built, before libcurl sees them: the ieod query grows past its first block */
    cfg = make_config(0, NULL);
    assert_int_equal(settings_from_config(cfg, &s, &e), BKOAUTH_OK);
    bkoauth_config_free(cfg);
    ssm_call call;
    memset(&call, 0, sizeof call);
    assert_int_equal(ieod_build_app(&s, "test", &call, &e), BKOAUTH_OK);
    ssm_call_clear(&call);
    assert_int_equal(ee_build_app(&s, "test", &call, &e), BKOAUTH_OK);
    ssm_call_clear(&call);
    expect_wiped("the APP token call (ieod query, ee header)");

    const char *rt = "refresh-0123456789abcdefghijklmnopqrstuvwxyz";
    faultalloc_watch(rt);
    assert_int_equal(ieod_build_refresh(&s, "test", rt, &call, &e), BKOAUTH_OK);
    ssm_call_clear(&call);
    expect_wiped("the ieod refresh call");

    /* the user's credential, from the cookie, the query string and as a uin */
    faultalloc_watch(ALICE_CRED);
    const char *cookies[] = {"a=1; bk_token=\"" ALICE_CRED "\"", NULL};
    bkoauth_request req = login("alice", cookies[0]);
    bk_kvlist out = {0};
    assert_int_equal(request_credentials(&s, &req, &out, &e), BKOAUTH_OK);
    kvlist_clear(&out);
    req = login("alice", NULL);
    req.query_string = "x=%41&bk_token=" ALICE_CRED;
    assert_int_equal(request_credentials(&s, &req, &out, &e), BKOAUTH_OK);
    kvlist_clear(&out);
    assert_int_equal(ieod_build_user(&s, "test", &out, "10.0.0.1", &call, &e), BKOAUTH_OK);
    ssm_call_clear(&call);
    expect_wiped("the credential (cookie, query string, ieod user call)");
    faultalloc_watch("o00123456789");
    req = login("alice", "bk_token=o00123456789");
    assert_int_equal(request_credentials(&s, &req, &out, &e), BKOAUTH_OK);
    kvlist_clear(&out);
    expect_wiped("a uin credential");
    settings_clear(&s);

    /* tokens handed out */
    const char *at = "access-0123456789abcdefghijklmnopqrstuvwxyz";
    faultalloc_watch(at);
    bkoauth_token *t = token_make(at, rt, "", "test", "alice", 1, 1);
    bkoauth_token *d = bkoauth_token_dup(t);
    bkoauth_token_free(t);
    bkoauth_token_free(d);
    expect_wiped("bkoauth_token_free (access_token)");
    faultalloc_watch(rt);
    t = token_make(at, rt, "", "test", "alice", 1, 1);
    bkoauth_token_free(t);
    expect_wiped("bkoauth_token_free (refresh_token)");
    faultalloc_watch(NULL);
}

int main(void)
{
    /* first of all, before OpenSSL or the library allocate anything */
    ossl_hooked = CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
    faultalloc_install(); /* before the first client: libcurl is initialised with it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_client_new),
        cmocka_unit_test(test_operations),
        cmocka_unit_test(test_cached_token),
        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_jwt_openssl_oom),
        cmocka_unit_test(test_memory_comes_back),
        cmocka_unit_test(test_secrets_wiped),
    };
    int failed = cmocka_run_group_tests_name("out of memory", tests, setup, teardown);
    teststore_cleanup();
    return failed ? 1 : 0;
}
