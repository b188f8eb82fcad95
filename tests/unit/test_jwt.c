/* SPDX-License-Identifier: MIT */
/* test_jwt.c - X-Bkapi-Jwt verification: every reason of PROTOCOL.md "API gateway JWT" told
 * apart, RS256 pinned, claims and leeway, the parsed-key cache, inputs of any shape, and the
 * refusal body. Keys are generated when the test runs (OpenSSL). The client never calls its
 * SSM service (OAUTH_API_URL points at a closed port). */
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
#include <time.h>
#include <unistd.h>

#include "bkoauth.h"
#include "testjwt.h"

#define HEADER_RS256 "{\"alg\": \"RS256\", \"typ\": \"JWT\"}"

/* ---- fixture: two keys, a client trusting the first ------------------------------------------ */

static testjwt_key *key_a, *key_b;
static char *pem_a, *pem_a_rsa, *pem_b;
static char db_dir[] = "/tmp/bkoauth-test-jwt-XXXXXX";
static char db_url[600];

/* every log line of every client, to check that no token ever reaches a log */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[1 << 16];
static size_t log_len;

static void log_capture(void *ctx, int level, const char *message)
{
    (void)ctx;
    (void)level;
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(message);
    if (log_len + n + 2 < sizeof log_text) {
        memcpy(log_text + log_len, message, n);
        log_len += n;
        log_text[log_len++] = '\n';
        log_text[log_len] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

static bkoauth_client *client_with_key(const char *pem)
{
    bkoauth_config *cfg = bkoauth_config_new();
    assert_non_null(cfg);
    bkoauth_error e;
    assert_int_equal(bkoauth_config_set(cfg, "OAUTH_API_URL", "http://127.0.0.1:9", &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", db_url, &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(cfg, "BKOAUTH_LOG_LEVEL", "info", &e), BKOAUTH_OK);
    if (pem != NULL && bkoauth_config_set(cfg, "APIGW_PUBLIC_KEY", pem, &e) != BKOAUTH_OK)
        fail_msg("APIGW_PUBLIC_KEY refused by the settings: %s", e.message);
    bkoauth_client *c = bkoauth_client_new(cfg, &e);
    bkoauth_config_free(cfg);
    if (c == NULL) fail_msg("bkoauth_client_new: %s", e.message);
    bkoauth_client_set_logger(c, log_capture, NULL);
    return c;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(db_dir) == NULL) return -1;
    snprintf(db_url, sizeof db_url, "sqlite:%s/tokens.db", db_dir);
    key_a = testjwt_key_new(2048);
    key_b = testjwt_key_new(2048);
    if (key_a == NULL || key_b == NULL) return -1;
    pem_a = testjwt_public_pem(key_a, 0);
    pem_a_rsa = testjwt_public_pem(key_a, 1);
    pem_b = testjwt_public_pem(key_b, 0);
    return pem_a && pem_a_rsa && pem_b ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    testjwt_key_free(key_a);
    testjwt_key_free(key_b);
    free(pem_a);
    free(pem_a_rsa);
    free(pem_b);
    const char *files[] = {"tokens.db", "tokens.db-wal", "tokens.db-shm", "tokens.db-journal"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", db_dir, files[i]);
        unlink(path);
    }
    rmdir(db_dir);
    return 0;
}

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* Verifies token with c and expects a refusal whose message starts with reason. */
static void expect_refused(bkoauth_client *c, const char *token, const char *reason)
{
    bkoauth_jwt *out = (bkoauth_jwt *)(uintptr_t)1; /* must be reset to NULL */
    bkoauth_error e;
    memset(&e, 0x5a, sizeof e);
    bkoauth_code rc = bkoauth_jwt_verify(c, token, &out, &e);
    if (rc != BKOAUTH_E_JWT)
        fail_msg("expected JWTError \"%s...\", got %s: %s", reason, bkoauth_code_name(rc),
                 rc == BKOAUTH_OK ? "(accepted)" : e.message);
    assert_null(out);
    assert_int_equal(e.code, BKOAUTH_E_JWT);
    if (strncmp(e.message, reason, strlen(reason)) != 0)
        fail_msg("expected a message starting \"%s\", got \"%s\"", reason, e.message);
    /* the token never appears in the message */
    if (token != NULL && strlen(token) > 8) {
        const char *last_dot = strrchr(token, '.');
        if (last_dot && strlen(last_dot) > 8) assert_null(strstr(e.message, last_dot + 1));
        assert_null(strstr(e.message, token));
    }
}

/* A token made by key_a with the given claims; caller frees. */
static char *signed_a(const char *iss, long long exp, long long nbf)
{
    char *payload = testjwt_payload(iss, "demo-app", "alice", exp, nbf);
    assert_non_null(payload);
    char *t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    assert_non_null(t);
    free(payload);
    return t;
}

/* ---- accepted ------------------------------------------------------------------------------- */

static void test_valid(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    long long exp = now_s() + 300;
    char *t = signed_a("APIGW", exp, now_s() - 10);
    bkoauth_jwt *j = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, &e), BKOAUTH_OK);
    assert_int_equal(e.code, BKOAUTH_OK);
    assert_non_null(j);
    assert_string_equal(j->app_code, "demo-app");
    assert_int_equal(j->app_verified, 1);
    assert_string_equal(j->username, "alice");
    assert_int_equal(j->user_verified, 1);
    assert_int_equal(j->expires, exp);
    json_error_t jerr;
    json_t *p = json_loads(j->payload_json, 0, &jerr);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "iss")), "APIGW");
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "user"), "username")), "alice");
    json_decref(p);
    bkoauth_jwt_free(j);
    /* err may be NULL */
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, NULL), BKOAUTH_OK);
    bkoauth_jwt_free(j);
    /* surrounding blanks, as a server may leave them, do not matter */
    char padded[4096];
    snprintf(padded, sizeof padded, "  %s \r\n", t);
    assert_int_equal(bkoauth_jwt_verify(c, padded, &j, &e), BKOAUTH_OK);
    bkoauth_jwt_free(j);
    free(t);
    bkoauth_client_free(c);
}

static void test_valid_key_forms(void **state)
{
    (void)state;
    char *t = signed_a("APIGW", now_s() + 300, 0);
    bkoauth_jwt *j = NULL;
    bkoauth_error e;
    /* "BEGIN RSA PUBLIC KEY" (PKCS#1) */
    bkoauth_client *c = client_with_key(pem_a_rsa);
    if (bkoauth_jwt_verify(c, t, &j, &e) != BKOAUTH_OK) fail_msg("RSA PUBLIC KEY form: %s", e.message);
    bkoauth_jwt_free(j);
    bkoauth_client_free(c);
    /* the PEM written on one line with literal \n, as an environment variable carries it */
    size_t n = strlen(pem_a);
    char *one_line = malloc(2 * n + 1);
    assert_non_null(one_line);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (pem_a[i] == '\n') {
            one_line[o++] = '\\';
            one_line[o++] = 'n';
        } else {
            one_line[o++] = pem_a[i];
        }
    }
    one_line[o] = '\0';
    c = client_with_key(one_line);
    if (bkoauth_jwt_verify(c, t, &j, &e) != BKOAUTH_OK) fail_msg("one-line PEM: %s", e.message);
    bkoauth_jwt_free(j);
    bkoauth_client_free(c);
    free(one_line);
    free(t);
}

static void test_absent_app_and_user(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    char payload[256];
    snprintf(payload, sizeof payload, "{\"iss\": \"APIGW\", \"exp\": %lld, \"app\": \"x\"}", now_s() + 60);
    char *t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    bkoauth_jwt *j = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, &e), BKOAUTH_OK);
    assert_null(j->app_code);
    assert_int_equal(j->app_verified, 0);
    assert_null(j->username);
    assert_int_equal(j->user_verified, 0);
    assert_string_equal(j->payload_json, payload);
    bkoauth_jwt_free(j);
    free(t);
    /* verified false; the newer gateway's bk_app_code / bk_username names */
    long long exp = now_s() + 60;
    snprintf(payload, sizeof payload,
             "{\"iss\": \"APIGW\", \"exp\": %lld.5, \"app\": {\"bk_app_code\": \"a2\", \"verified\": false}, "
             "\"user\": {\"bk_username\": \"bob\", \"verified\": false}}",
             exp);
    t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, &e), BKOAUTH_OK);
    assert_string_equal(j->app_code, "a2");
    assert_int_equal(j->app_verified, 0);
    assert_string_equal(j->username, "bob");
    assert_int_equal(j->user_verified, 0);
    assert_int_equal(j->expires, exp);
    bkoauth_jwt_free(j);
    free(t);
    bkoauth_client_free(c);
}

/* ---- time and issuer -------------------------------------------------------------------------- */

static void test_time_claims(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    bkoauth_jwt *j = NULL;
    bkoauth_error e;

    char *t = signed_a("APIGW", now_s() - 3600, 0);
    expect_refused(c, t, "token expired");
    free(t);
    /* within the leeway: accepted */
    t = signed_a("APIGW", now_s() - BKOAUTH_JWT_LEEWAY_SECONDS / 2, 0);
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, &e), BKOAUTH_OK);
    bkoauth_jwt_free(j);
    free(t);
    /* just past the leeway: refused */
    t = signed_a("APIGW", now_s() - BKOAUTH_JWT_LEEWAY_SECONDS - 5, 0);
    expect_refused(c, t, "token expired");
    free(t);

    t = signed_a("APIGW", now_s() + 7200, now_s() + 3600);
    expect_refused(c, t, "token not yet valid");
    free(t);
    t = signed_a("APIGW", now_s() + 7200, now_s() + BKOAUTH_JWT_LEEWAY_SECONDS / 2);
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, &e), BKOAUTH_OK);
    bkoauth_jwt_free(j);
    free(t);

    /* exp required, and a number */
    char payload[256];
    snprintf(payload, sizeof payload, "{\"iss\": \"APIGW\", \"user\": {\"username\": \"alice\"}}");
    t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    expect_refused(c, t, "malformed token");
    free(t);
    snprintf(payload, sizeof payload, "{\"iss\": \"APIGW\", \"exp\": \"%lld\"}", now_s() + 60);
    t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    expect_refused(c, t, "malformed token");
    free(t);
    snprintf(payload, sizeof payload, "{\"iss\": \"APIGW\", \"exp\": %lld, \"nbf\": true}", now_s() + 60);
    t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    expect_refused(c, t, "malformed token");
    free(t);
    /* extreme numbers neither overflow nor pass */
    t = testjwt_sign_rs256(key_a, HEADER_RS256, "{\"iss\": \"APIGW\", \"exp\": -9223372036854775807}");
    expect_refused(c, t, "token expired");
    free(t);
    t = testjwt_sign_rs256(key_a, HEADER_RS256, "{\"iss\": \"APIGW\", \"exp\": 1e300}");
    expect_refused(c, t, "malformed token");
    free(t);
    t = testjwt_sign_rs256(
        key_a, HEADER_RS256,
        "{\"iss\": \"APIGW\", \"exp\": 9223372036854775807, \"nbf\": 9223372036854775807}");
    expect_refused(c, t, "token not yet valid");
    free(t);
    bkoauth_client_free(c);
}

static void test_issuer(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    char *t = signed_a("evil", now_s() + 300, 0);
    expect_refused(c, t, "wrong issuer");
    free(t);
    t = signed_a("apigw", now_s() + 300, 0);
    expect_refused(c, t, "wrong issuer");
    free(t);
    t = signed_a(NULL, now_s() + 300, 0);
    expect_refused(c, t, "missing issuer");
    free(t);
    char payload[128];
    snprintf(payload, sizeof payload, "{\"iss\": 5, \"exp\": %lld}", now_s() + 300);
    t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    expect_refused(c, t, "wrong issuer");
    free(t);
    /* "APIGW" followed by a NUL and more is not "APIGW" */
    snprintf(payload, sizeof payload, "{\"iss\": \"APIGW\\u0000x\", \"exp\": %lld}", now_s() + 300);
    t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    expect_refused(c, t, "malformed token"); /* Jansson refuses \u0000 without JSON_ALLOW_NUL */
    free(t);
    bkoauth_client_free(c);
}

/* ---- keys, algorithms, signatures ------------------------------------------------------------ */

static void test_other_key(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    char *payload = testjwt_payload("APIGW", "demo-app", "alice", now_s() + 300, 0);
    char *t = testjwt_sign_rs256(key_b, HEADER_RS256, payload);
    expect_refused(c, t, "bad signature");
    free(t);
    /* a 1024-bit key's signature has the wrong length for a 2048-bit key */
    testjwt_key *small = testjwt_key_new(1024);
    assert_non_null(small);
    t = testjwt_sign_rs256(small, HEADER_RS256, payload);
    expect_refused(c, t, "bad signature");
    free(t);
    testjwt_key_free(small);
    free(payload);
    /* the same token is good for a client trusting key_b */
    bkoauth_client *cb = client_with_key(pem_b);
    payload = testjwt_payload("APIGW", "demo-app", "alice", now_s() + 300, 0);
    t = testjwt_sign_rs256(key_b, HEADER_RS256, payload);
    bkoauth_jwt *j = NULL;
    assert_int_equal(bkoauth_jwt_verify(cb, t, &j, NULL), BKOAUTH_OK);
    bkoauth_jwt_free(j);
    expect_refused(c, t, "bad signature");
    free(t);
    free(payload);
    bkoauth_client_free(cb);
    bkoauth_client_free(c);
}

static void test_algorithms(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    char *payload = testjwt_payload("APIGW", "demo-app", "alice", now_s() + 300, 0);

    /* alg none, without and with a signature part */
    char *t = testjwt_unsigned("{\"alg\": \"none\", \"typ\": \"JWT\"}", payload, "");
    expect_refused(c, t, "algorithm not allowed");
    free(t);
    char *good = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    t = testjwt_unsigned("{\"alg\": \"none\"}", payload, strrchr(good, '.') + 1);
    expect_refused(c, t, "algorithm not allowed");
    free(t);
    t = testjwt_unsigned("{\"alg\": \"None\"}", payload, "");
    expect_refused(c, t, "algorithm not allowed");
    free(t);

    /* HS256 keyed with the public key PEM as the HMAC secret (the classic confusion attack) */
    t = testjwt_sign_hs256(pem_a, strlen(pem_a), "{\"alg\": \"HS256\", \"typ\": \"JWT\"}", payload);
    expect_refused(c, t, "algorithm not allowed");
    free(t);

    /* other names, near misses and non-strings */
    const char *headers[] = {"{\"alg\": \"RS512\"}",
                             "{\"alg\": \"PS256\"}",
                             "{\"alg\": \"ES256\"}",
                             "{\"alg\": \"rs256\"}",
                             "{\"alg\": \"RS256 \"}",
                             "{\"alg\": \"\"}",
                             NULL};
    for (int i = 0; headers[i]; i++) {
        t = testjwt_sign_rs256(key_a, headers[i], payload);
        expect_refused(c, t, "algorithm not allowed");
        free(t);
    }
    const char *malformed[] = {"{\"typ\": \"JWT\"}",
                               "{\"alg\": 256}",
                               "{\"alg\": null}",
                               "[\"RS256\"]",
                               "\"RS256\"",
                               "{\"alg\": \"RS256\", \"alg\": \"none\"}",
                               "{\"alg\": \"RS256\", \"crit\": [\"exp\"]}",
                               "{\"alg\": \"RS256\"",
                               NULL};
    for (int i = 0; malformed[i]; i++) {
        t = testjwt_sign_rs256(key_a, malformed[i], payload);
        expect_refused(c, t, "malformed token");
        free(t);
    }
    /* alg "RS256\u0000x": not RS256 */
    t = testjwt_sign_rs256(key_a, "{\"alg\": \"RS256\\u0000\"}", payload);
    bkoauth_jwt *j = NULL;
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, NULL), BKOAUTH_E_JWT);
    assert_null(j);
    free(t);
    free(good);
    free(payload);
    bkoauth_client_free(c);
}

static void test_tampered(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    char *t = signed_a("APIGW", now_s() + 300, 0);
    /* another user's payload under alice's signature */
    char *evil_payload = testjwt_payload("APIGW", "demo-app", "admin", now_s() + 300, 0);
    char *evil = testjwt_sign_rs256(key_b, HEADER_RS256, evil_payload);
    const char *t_dot1 = strchr(t, '.'), *t_dot2 = strrchr(t, '.');
    const char *e_dot1 = strchr(evil, '.'), *e_dot2 = strrchr(evil, '.');
    char mixed[4096];
    snprintf(mixed, sizeof mixed, "%.*s%.*s%s", (int)(t_dot1 - t), t, (int)(e_dot2 - e_dot1), e_dot1, t_dot2);
    expect_refused(c, mixed, "bad signature");
    /* one bit of the signature flipped */
    char *flipped = strdup(t);
    char *sig = strrchr(flipped, '.') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    expect_refused(c, flipped, "bad signature");
    /* the signature cut short (255 bytes), or longer */
    flipped[strlen(flipped) - 2] = '\0';
    expect_refused(c, flipped, "bad signature");
    free(flipped);
    snprintf(mixed, sizeof mixed, "%sAAAA", t);
    expect_refused(c, mixed, "bad signature");
    /* non-canonical base64url: the last character's unused bits set */
    flipped = strdup(t);
    char *last = flipped + strlen(flipped) - 1;
    /* 256-byte signature = 342 chars + 2 leftover bits (4 bits used in the last char) */
    *last = (char)(*last == 'A' ? 'B' : *last + 1);
    expect_refused(c, flipped, "malformed token");
    free(flipped);
    free(evil);
    free(evil_payload);
    free(t);
    bkoauth_client_free(c);
}

/* ---- shapes and sizes ----------------------------------------------------------------------- */

static void test_missing(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    expect_refused(c, NULL, "X-Bkapi-Jwt header is missing or empty");
    expect_refused(c, "", "X-Bkapi-Jwt header is missing or empty");
    expect_refused(c, "  \t ", "X-Bkapi-Jwt header is missing or empty");
    /* client or out NULL */
    bkoauth_jwt *j = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_jwt_verify(NULL, "a.b.c", &j, &e), BKOAUTH_E_INVALID);
    assert_int_equal(e.code, BKOAUTH_E_INVALID);
    assert_true(e.message[0] != '\0');
    assert_int_equal(bkoauth_jwt_verify(c, "a.b.c", NULL, &e), BKOAUTH_E_INVALID);
    bkoauth_jwt_free(NULL);
    bkoauth_client_free(c);
}

static void test_garbage(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    const char *inputs[] = {
        "garbage", "a.b", "a.b.c.d", "..", "...", ".e30.", "!!!.###.$$$", "eyJhbGciOiJSUzI1NiJ9",
        "eyJhbGciOiJSUzI1NiJ9.", "eyJhbGciOiJSUzI1NiJ9..", "eyJhbGciOiJSUzI1NiJ9.e30",
        /* standard base64 characters, not base64url */
        "eyJhbGciOiJSUzI1NiJ9.e+/.AAAA",
        /* bad padding and impossible lengths */
        "eyJhbGciOiJSUzI1NiJ9=.e30.AAAA", "eyJhbGciOiJSUzI1NiJ9.e30==.AAAA", "eyJhbGciOiJSUzI1NiJ9.e.AAAA",
        "eyJhbGciOiJSUzI1NiJ9.e30.A", "eyJhbGciOiJSUzI1NiJ9.e30.AA=A", "eyJhbGc iOiJSUzI1NiJ9.e30.AAAA",
        "\xff\xfe\xfd.\x01\x02.\x7f", NULL};
    for (int i = 0; inputs[i]; i++)
        expect_refused(c, inputs[i], "malformed token");
    /* a correctly padded base64url part is fine in shape: the token then fails later */
    char *t = signed_a("APIGW", now_s() + 300, 0);
    expect_refused(c, t + 1, "malformed token");
    free(t);
    bkoauth_client_free(c);
}

static void test_payload_not_object(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    const char *payloads[] = {"[]", "null", "\"APIGW\"", "{\"iss\": \"APIGW\"", "{} x", "\xc3\x28", NULL};
    for (int i = 0; payloads[i]; i++) {
        char *t = testjwt_sign_rs256(key_a, HEADER_RS256, payloads[i]);
        expect_refused(c, t, "malformed token");
        free(t);
    }
    /* a NUL byte inside a signed payload: Jansson would skip it, the verifier refuses it */
    static const char with_nul[] = "{\"iss\": \"APIGW\", \"exp\": 4102444800\0, \"nbf\": 4102444800}";
    char *t = testjwt_sign_rs256_bytes(key_a, HEADER_RS256, with_nul, sizeof with_nul - 1);
    expect_refused(c, t, "malformed token");
    free(t);
    static const char header_nul[] = "{\"alg\": \"RS256\"\0, \"alg\": \"none\"}";
    char *h = testjwt_b64url(header_nul, sizeof header_nul - 1);
    char token[256];
    snprintf(token, sizeof token, "%s.e30.AAAA", h);
    expect_refused(c, token, "malformed token");
    free(h);
    bkoauth_client_free(c);
}

static void test_sizes(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    /* 1 MiB: refused unread */
    size_t big = 1u << 20;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'A', big);
    huge[100] = '.';
    huge[200] = '.';
    huge[big] = '\0';
    expect_refused(c, huge, "malformed token");
    free(huge);
    /* a big but acceptable token (about 60 KiB) verifies */
    size_t fill = 44000;
    char *payload = malloc(fill + 256);
    assert_non_null(payload);
    int n = snprintf(payload, 256, "{\"iss\": \"APIGW\", \"exp\": %lld, \"pad\": \"", now_s() + 300);
    memset(payload + n, 'x', fill);
    strcpy(payload + n + fill, "\"}");
    char *t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    assert_true(strlen(t) > 58000 && strlen(t) <= BKOAUTH_JWT_MAX_LENGTH);
    bkoauth_jwt *j = NULL;
    bkoauth_error e;
    if (bkoauth_jwt_verify(c, t, &j, &e) != BKOAUTH_OK) fail_msg("60 KiB token: %s", e.message);
    assert_int_equal(strlen(j->payload_json), strlen(payload));
    bkoauth_jwt_free(j);
    free(t);
    /* just over the limit */
    fill = 49200;
    payload = realloc(payload, fill + 256);
    n = snprintf(payload, 256, "{\"iss\": \"APIGW\", \"exp\": %lld, \"pad\": \"", now_s() + 300);
    memset(payload + n, 'x', fill);
    strcpy(payload + n + fill, "\"}");
    t = testjwt_sign_rs256(key_a, HEADER_RS256, payload);
    assert_true(strlen(t) > BKOAUTH_JWT_MAX_LENGTH);
    expect_refused(c, t, "malformed token");
    free(t);
    free(payload);
    /* deeply nested JSON in the header (parsed before the signature is checked): no crash */
    size_t depth = 20000;
    char *nested = malloc(2 * depth + 1);
    assert_non_null(nested);
    memset(nested, '[', depth);
    memset(nested + depth, ']', depth);
    nested[2 * depth] = '\0';
    t = testjwt_unsigned(nested, "{}", "AAAA");
    expect_refused(c, t, "malformed token");
    free(t);
    free(nested);
    bkoauth_client_free(c);
}

/* ---- the key setting ------------------------------------------------------------------------ */

static void test_unusable_keys(void **state)
{
    (void)state;
    char *t = signed_a("APIGW", now_s() + 300, 0);
    char *private_pem = testjwt_private_pem(key_a);
    assert_non_null(private_pem);
    char bad_body[1024];
    snprintf(bad_body, sizeof bad_body,
             "-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n");
    /* the right label, a body cut in half */
    char *cut = strdup(pem_a);
    strcpy(cut + strlen(cut) / 2, "\n-----END PUBLIC KEY-----\n");
    const char *settings[] = {NULL,     "not a key",
                              bad_body, private_pem,
                              cut,      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                              NULL};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0] - 1; i++) {
        bkoauth_client *c = client_with_key(settings[i]);
        expect_refused(c, t, "public key unusable");
        /* still unusable the second time (parsed again: a failure is never cached) */
        expect_refused(c, t, "public key unusable");
        /* a missing header is still reported as such */
        expect_refused(c, NULL, "X-Bkapi-Jwt header is missing or empty");
        bkoauth_client_free(c);
    }
    /* the private key's text never reaches a message or a log */
    const char *body_line = strchr(private_pem, '\n') + 1;
    char probe[17];
    memcpy(probe, body_line, 16);
    probe[16] = '\0';
    pthread_mutex_lock(&log_lock);
    assert_null(strstr(log_text, probe));
    pthread_mutex_unlock(&log_lock);
    free(cut);
    free(private_pem);
    free(t);
}

static void test_many_keys(void **state)
{
    (void)state;
    /* more distinct keys than the parsed-key cache holds, used in turn: each client keeps
     * verifying with its own key */
    enum { N = 20 };
    testjwt_key *keys[N];
    bkoauth_client *clients[N];
    char *tokens[N];
    char *payload = testjwt_payload("APIGW", "demo-app", "alice", now_s() + 300, 0);
    for (int i = 0; i < N; i++) {
        keys[i] = testjwt_key_new(1024);
        assert_non_null(keys[i]);
        char *pem = testjwt_public_pem(keys[i], i % 2);
        clients[i] = client_with_key(pem);
        free(pem);
        tokens[i] = testjwt_sign_rs256(keys[i], HEADER_RS256, payload);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            bkoauth_jwt *j = NULL;
            bkoauth_error e;
            if (bkoauth_jwt_verify(clients[i], tokens[i], &j, &e) != BKOAUTH_OK)
                fail_msg("client %d: %s", i, e.message);
            bkoauth_jwt_free(j);
            expect_refused(clients[i], tokens[(i + 1) % N], "bad signature");
        }
    }
    for (int i = 0; i < N; i++) {
        bkoauth_client_free(clients[i]);
        testjwt_key_free(keys[i]);
        free(tokens[i]);
    }
    free(payload);
}

/* ---- threads ------------------------------------------------------------------------------- */

typedef struct thread_arg {
    bkoauth_client *c;
    const char *good, *bad;
    int failures;
} thread_arg;

static void *verify_many(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 200; i++) {
        bkoauth_jwt *j = NULL;
        bkoauth_error e;
        if (bkoauth_jwt_verify(a->c, a->good, &j, &e) != BKOAUTH_OK || strcmp(j->username, "alice") != 0)
            a->failures++;
        bkoauth_jwt_free(j);
        if (bkoauth_jwt_verify(a->c, a->bad, &j, &e) != BKOAUTH_E_JWT || j != NULL) a->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    char *good = signed_a("APIGW", now_s() + 300, 0);
    char *bad = signed_a("evil", now_s() + 300, 0);
    pthread_t th[8];
    thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){c, good, bad, 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    free(good);
    free(bad);
    bkoauth_client_free(c);
}

/* ---- the refusal body ------------------------------------------------------------------------ */

static void test_error_body(void **state)
{
    (void)state;
    bkoauth_client *c = client_with_key(pem_a);
    bkoauth_jwt *j = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_jwt_verify(c, NULL, &j, &e), BKOAUTH_E_JWT);
    char *body = bkoauth_jwt_error_body(&e);
    assert_non_null(body);
    /* the exact layout Django's json.dumps gave */
    char expected[1024];
    snprintf(expected, sizeof expected, "{\"result\": false, \"data\": null, \"message\": \"%s\"}",
             e.message);
    assert_string_equal(body, expected);
    json_error_t jerr;
    json_t *v = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(v);
    assert_int_equal(json_object_size(v), 3);
    assert_true(json_is_false(json_object_get(v, "result")));
    assert_true(json_is_null(json_object_get(v, "data")));
    assert_string_equal(json_string_value(json_object_get(v, "message")), e.message);
    json_decref(v);
    free(body);

    /* a message with quotes (an algorithm name) stays valid JSON */
    char *payload = testjwt_payload("APIGW", "demo-app", "alice", now_s() + 300, 0);
    char *t = testjwt_sign_rs256(key_a, "{\"alg\": \"\\\"quoted\\\\\"}", payload);
    assert_int_equal(bkoauth_jwt_verify(c, t, &j, &e), BKOAUTH_E_JWT);
    body = bkoauth_jwt_error_body(&e);
    v = json_loads(body, 0, &jerr);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "message")), e.message);
    json_decref(v);
    free(body);
    free(t);
    free(payload);

    /* quotes and backslashes in a message are escaped */
    memset(&e, 0, sizeof e);
    e.code = BKOAUTH_E_JWT;
    snprintf(e.message, sizeof e.message, "say \"hi\" \\ there\n\u00e9");
    body = bkoauth_jwt_error_body(&e);
    assert_string_equal(
        body, "{\"result\": false, \"data\": null, \"message\": \"say \\\"hi\\\" \\\\ there\\n\\u00e9\"}");
    free(body);

    /* NULL err: a generic message; a caller-filled message with bytes that are not UTF-8 and
     * no terminating NUL is still turned into valid ASCII JSON */
    body = bkoauth_jwt_error_body(NULL);
    v = json_loads(body, 0, &jerr);
    assert_non_null(v);
    assert_true(strlen(json_string_value(json_object_get(v, "message"))) > 0);
    json_decref(v);
    free(body);
    memset(&e, 0xff, sizeof e);
    body = bkoauth_jwt_error_body(&e);
    v = json_loads(body, 0, &jerr);
    assert_non_null(v);
    json_decref(v);
    for (const char *p = body; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    free(body);
    bkoauth_client_free(c);
}

static void test_logs_hold_no_token(void **state)
{
    (void)state;
    /* every earlier test logged its refusals; no signature part of any token reached a log */
    bkoauth_client *c = client_with_key(pem_a);
    char *t = signed_a("evil", now_s() + 300, 0);
    expect_refused(c, t, "wrong issuer");
    pthread_mutex_lock(&log_lock);
    assert_non_null(strstr(log_text, "wrong issuer"));  /* refusals are logged ... */
    assert_null(strstr(log_text, strrchr(t, '.') + 1)); /* ... without the token */
    char head[40];
    snprintf(head, sizeof head, "%.32s", t);
    assert_null(strstr(log_text, head));
    pthread_mutex_unlock(&log_lock);
    free(t);
    bkoauth_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_valid_key_forms),
        cmocka_unit_test(test_absent_app_and_user),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_other_key),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_payload_not_object),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_unusable_keys),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_logs_hold_no_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
