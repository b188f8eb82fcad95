/* SPDX-License-Identifier: MIT */
/* test_hostile.c - the adversarial cases of issue 11, kept as regression tests: a hostile SSM
 * service (bkoauth-devserver's echo and raw faults, and a raw TCP server for what is not HTTP),
 * odd requests and settings. Asserts what a person would see: no token with a control
 * character is saved or printed, no secret or credential reaches a message or a log line in any
 * encoding, no outside text starts a line, every error names its real cause. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testfixture.h"
#include "rawserver.h"
#include "ssm/ssm.h"
#include "testsettings.h"
#include "teststore.h"

#define APP_CODE "demo-app"
/* secrets with characters that every encoding changes: '/', '+', '=', ' ' */
#define APP_SECRET "s3cr3t/Key+2024=="
#define CRED "cred alice/+x"

typedef test_fixture fixture; /* dir: each client a database of its own there */

static const test_fixture_spec fixture_spec = {
    APP_CODE, APP_SECRET, (const char *const[]){"--user", CRED "=alice", NULL}, "hostile", 1, 0};

/* ---- the forms a secret may take in a message --------------------------------------------- */

static void percent(const char *s, char *out, size_t size, int lower, int plus)
{
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 4 < size; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~')
            out[k++] = (char)*p;
        else if (plus && *p == ' ')
            out[k++] = '+';
        else
            k += (size_t)snprintf(out + k, size - k, lower ? "%%%02x" : "%%%02X", *p);
    }
    out[k] = '\0';
}

static void json_escaped(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (const char *p = s; *p && k + 3 < size; p++) {
        if (*p == '/' || *p == '"' || *p == '\\') out[k++] = '\\';
        out[k++] = *p;
    }
    out[k] = '\0';
}

/* Neither secret, nor its first 6 characters, in any form: raw, percent-encoded in both cases,
 * form-encoded, JSON-escaped. */
static void assert_never(const char *text, const char *secret)
{
    char forms[6][256], head[7];
    snprintf(forms[0], sizeof forms[0], "%s", secret);
    percent(secret, forms[1], sizeof forms[1], 0, 0);
    percent(secret, forms[2], sizeof forms[2], 1, 0);
    percent(secret, forms[3], sizeof forms[3], 0, 1);
    json_escaped(secret, forms[4], sizeof forms[4]);
    snprintf(head, sizeof head, "%s", secret);
    snprintf(forms[5], sizeof forms[5], "%s", head);
    for (int i = 0; i < 6; i++)
        if (strstr(text, forms[i]) != NULL) fail_msg("'%s' (a form of a secret) in: %s", forms[i], text);
}

/* One line for a person: no control character at all. */
static void assert_one_line(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f) fail_msg("control character 0x%02x in: %s", *p, text);
    assert_null(strstr(text, "\xe2\x80\xae")); /* U+202E */
}

/* ---- setup ------------------------------------------------------------------------------------- */

static int setup(void **state)
{
    return test_fixture_setup(state, sizeof(fixture), &fixture_spec);
}

/* A client of its own database against api_url, with extra settings (name, value, ..., NULL). */
static bkoauth_client *client(fixture *f, const char *api_url, const char *const *extra)
{
    const char *own[] = {
        "BKOAUTH_LOG_LEVEL", "info", "BKOAUTH_BACKOFF_SECONDS", "0", "BKOAUTH_TIMEOUT_MS", "5000", NULL};
    bkoauth_client *c = test_fixture_client(f, api_url, own, extra);
    test_log_capture(c);
    return c;
}

/* The devserver answers the next call with status and exactly body. */
static void raw_fault(fixture *f, int status, const char *body)
{
    char *enc = curl_easy_escape(NULL, body, (int)strlen(body));
    assert_non_null(enc);
    size_t n = strlen(enc) + 100;
    char *path = malloc(n);
    snprintf(path, n, "/__dev/fault?kind=raw&count=1&status=%d&body=%s", status, enc);
    json_t *j = devserver_post(f->dev, path);
    if (!json_is_true(json_object_get(j, "ok"))) fail_msg("raw fault refused");
    json_decref(j);
    free(path);
    curl_free(enc);
}

static size_t saved_count(bkoauth_client *c)
{
    bkoauth_token **all = NULL;
    size_t n = 0;
    assert_int_equal(bkoauth_list_tokens(c, &all, &n, NULL), BKOAUTH_OK);
    bkoauth_tokens_free(all, n);
    return n;
}

/* ---- 1. grants validated before they are saved ------------------------------------------------- */

static void test_grant_with_control_characters_refused(void **state)
{
    fixture *f = *state;
    bkoauth_client *c = client(f, f->dev->url, NULL);
    const char *ok_head = f->ee ? "{\"code\": 0, \"data\": {" : "{\"result\": true, \"data\": {";
    struct {
        const char *data, *field, *why;
    } cases[] = {
        {"\"access_token\": \"tok\\nINJECTED LINE\\u001b[2J\", \"expires_in\": 3600", "data.access_token",
         "control character"},
        {"\"access_token\": \"tok\\r\\nX\", \"expires_in\": 3600", "data.access_token", "control character"},
        {"\"access_token\": \"tok\\u007f\", \"expires_in\": 3600", "data.access_token", "control character"},
        {"\"access_token\": \"tok\\tX\", \"expires_in\": 3600", "data.access_token", "control character"},
        {"\"access_token\": \"tok\\u202eevil\", \"expires_in\": 3600", "data.access_token", "not ASCII"},
        {"\"access_token\": \"tok en\", \"expires_in\": 3600", "data.access_token", "space"},
        {"\"access_token\": \"tok\\u0000cut\", \"expires_in\": 3600", "data.access_token", "NUL"},
        {"\"access_token\": \"good-token\", \"refresh_token\": \"rt\\nX\", \"expires_in\": 3600",
         "data.refresh_token", "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "%s%s}}", ok_head, cases[i].data);
        raw_fault(f, 200, body);
        bkoauth_token *t = NULL;
        bkoauth_error e;
        assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
        assert_null(t);
        test_assert_has(e.message, cases[i].field);
        test_assert_has(e.message, cases[i].why);
        test_assert_has(e.message, "nothing was saved");
        assert_one_line(e.message);
        assert_null(strstr(e.message, "INJECTED"));
        assert_null(strstr(e.message, "evil"));
        assert_int_equal(saved_count(c), 0);
    }
    assert_one_line(test_logs);
    /* the service works again: its grant is saved */
    bkoauth_token *t = NULL;
    assert_int_equal(bkoauth_get_app_access_token(c, &t, NULL), BKOAUTH_OK);
    bkoauth_token_free(t);
    assert_int_equal(saved_count(c), 1);
    bkoauth_client_free(c);
}

/* ---- 2. one scrub, applied last ---------------------------------------------------------------- */

static void test_service_quoting_the_request_back(void **state)
{
    fixture *f = *state;
    bkoauth_client *c = client(f, f->dev->url, NULL);
    bkoauth_request r = {0};
    r.username = "alice";
    r.cookie_header = "bk_token=" CRED;
    r.remote_addr = "10.0.0.9";
    /* every call quotes its request back: the query (raw, lower case, '+' for spaces), the
     * decoded parameters, the headers (X-BK-APP-SECRET on ee) and the body, also JSON-escaped */
    json_decref(devserver_post(f->dev, "/__dev/fault?kind=echo&count=10"));
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "refused the request");
    test_assert_has(e.message, "bad request");
    assert_never(e.message, APP_SECRET);
    assert_never(e.message, CRED);
    assert_one_line(e.message);
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_never(e.message, APP_SECRET);
    assert_never(test_logs, APP_SECRET);
    assert_never(test_logs, CRED);
    assert_one_line(test_logs);
    /* the secret where the service's message is cut (200 bytes): masked whole, before the cut */
    char msg[400], body[600];
    memset(msg, 'm', 190);
    snprintf(msg + 190, sizeof msg - 190, "%s tail", APP_SECRET);
    snprintf(body, sizeof body,
             f->ee ? "{\"code\": 40000, \"message\": \"%s\"}" : "{\"result\": false, \"message\": \"%s\"}",
             msg);
    raw_fault(f, 200, body);
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_never(e.message, APP_SECRET);
    test_assert_has(e.message, "mmmm");
    /* percent-encoded in lower case, and JSON-escaped inside the message */
    snprintf(body, sizeof body,
             f->ee ? "{\"code\": 40000, \"message\": \"app_secret=s3cr3t%%2fKey%%2b2024%%3d%%3d and "
                     "s3cr3t\\\\/Key+2024==\"}"
                   : "{\"result\": false, \"message\": \"app_secret=s3cr3t%%2fKey%%2b2024%%3d%%3d and "
                     "s3cr3t\\\\/Key+2024==\"}");
    raw_fault(f, 200, body);
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
    assert_never(e.message, APP_SECRET);
    test_assert_has(e.message, "app_secret=");
    bkoauth_client_free(c);
}

/* ---- 3. user names ------------------------------------------------------------------------------ */

static void test_user_name_cannot_forge_a_line(void **state)
{
    fixture *f = *state;
    bkoauth_client *c = client(f, f->dev->url, NULL);
    const char *names[] = {"mallory\nbkoauth: TokenAPIError: forged",
                           "mallory\r",
                           "tab\tname",
                           "del\x7f",
                           "rtl\xe2\x80\xae"
                           "evil",
                           "c1\xc2\x85",
                           "bad\xffutf8"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bkoauth_token *t = NULL;
        bkoauth_error e;
        assert_int_equal(bkoauth_get_access_token_by_user(c, names[i], &t, &e), BKOAUTH_E_INVALID);
        assert_one_line(e.message);
        assert_null(strstr(e.message, "forged"));
        bkoauth_request r = {0};
        r.username = names[i];
        r.cookie_header = "bk_token=" CRED;
        assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_E_INVALID);
        assert_one_line(e.message);
        assert_int_equal(bkoauth_delete_token(c, names[i], &e), BKOAUTH_E_INVALID);
    }
    /* 64 characters (a Chinese name: 192 bytes) are fine, 65 are not */
    char name[300] = "";
    for (int i = 0; i < 64; i++)
        strcat(name, "\xe5\xbc\xa0");
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(c, name, &t, &e), BKOAUTH_E_TOKEN_NOT_EXIST);
    strcat(name, "x");
    assert_int_equal(bkoauth_get_access_token_by_user(c, name, &t, &e), BKOAUTH_E_INVALID);
    test_assert_has(e.message, "65 characters");
    assert_int_equal(devserver_counter(f->dev, "total"), 0);
    bkoauth_client_free(c);
}

/* ---- 6. no credential, no call ------------------------------------------------------------------ */

static void test_no_credential_no_call(void **state)
{
    fixture *f = *state;
    bkoauth_client *c = client(f, f->dev->url, NULL);
    long before = devserver_counter(f->dev, "total");
    bkoauth_request r = {0};
    r.username = "alice";
    r.cookie_header = "other=1; bk_token=";
    r.query_string = "bk_token=";
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "no login credential in the request: cookie bk_token missing");
    assert_int_equal(devserver_counter(f->dev, "total"), before);
    /* from the query string, it is there: the call is made */
    r.query_string = "bk_token=cred%20alice%2F%2Bx";
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_OK);
    assert_string_equal(t->user_id, "alice");
    bkoauth_token_free(t);
    assert_int_equal(devserver_counter(f->dev, "total"), before + 1);
    bkoauth_client_free(c);

    /* OAUTH_COOKIES_PARAMS names none: the same, without a call */
    const char *none[] = {"OAUTH_COOKIES_PARAMS", "{}", NULL};
    c = client(f, f->dev->url, none);
    r.query_string = NULL;
    r.cookie_header = "bk_token=" CRED;
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "OAUTH_COOKIES_PARAMS names no cookie");
    assert_int_equal(devserver_counter(f->dev, "total"), before + 1);
    bkoauth_client_free(c);
}

/* ---- 7. X-Forwarded-For bounded ----------------------------------------------------------------- */

static void test_x_forwarded_for_bounded(void **state)
{
    fixture *f = *state;
    if (f->ee) skip(); /* the ee protocol does not send the client address */
    bkoauth_client *c = client(f, f->dev->url, NULL);
    char xff[1100];
    memset(xff, '1', 1024);
    memcpy(xff, "10.0.0.1, ", 10);
    xff[1024] = '\0';
    bkoauth_request r = {0};
    r.username = "alice";
    r.cookie_header = "bk_token=" CRED;
    r.remote_addr = "10.0.0.9";
    r.x_forwarded_for = xff;
    bkoauth_token *t = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_OK);
    bkoauth_token_free(t);
    /* sent whole, as the Python library does */
    json_t *j = devserver_get(f->dev, "/__dev/counters");
    const char *sent = json_string_value(
        json_object_get(json_object_get(json_object_get(j, "last"), "args"), "bk_client_ip"));
    assert_non_null(sent);
    assert_string_equal(sent, xff);
    json_decref(j);
    long before = devserver_counter(f->dev, "total");
    xff[1024] = '1';
    xff[1025] = '\0';
    assert_int_equal(bkoauth_delete_token(c, "alice", NULL), BKOAUTH_OK);
    assert_int_equal(bkoauth_get_access_token(c, &r, &t, &e), BKOAUTH_E_INVALID);
    test_assert_has(e.message, "X-Forwarded-For is 1025 bytes long; at most 1024");
    assert_int_equal(devserver_counter(f->dev, "total"), before);
    bkoauth_client_free(c);
}

/* ---- 8. TLS off is loud ------------------------------------------------------------------------- */

/* The default logger's stderr while the client is made with these settings. */
static void stderr_of_client_new(fixture *f, const char *level, char *out, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stderr", f->dir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_error e;
    char db[128];
    snprintf(db, sizeof db, "sqlite:%s/tls%d.db", f->dir, f->n++);
    bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", db, &e);
    bkoauth_config_set(cfg, "BKOAUTH_TLS_VERIFY", "false", &e);
    bkoauth_config_set(cfg, "BKOAUTH_LOG_LEVEL", level, &e);
    bkoauth_client *c = bkoauth_client_new(cfg, &e);
    bkoauth_config_free(cfg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_non_null(c);
    FILE *in = fopen(path, "r");
    size_t n = fread(out, 1, size - 1, in);
    out[n] = '\0';
    fclose(in);
    /* a logger set later is told again */
    test_log_capture(c);
    bkoauth_client_free(c);
}

static void test_tls_off_is_loud(void **state)
{
    fixture *f = *state;
    char out[2048];
    stderr_of_client_new(f, "error", out, sizeof out);
    test_assert_has(out, "bkoauth: warning: BKOAUTH_TLS_VERIFY is false: TLS verification is off");
    test_assert_has(test_logs, "BKOAUTH_TLS_VERIFY is false");
    stderr_of_client_new(f, "warning", out, sizeof out);
    test_assert_has(out, "TLS verification is off");
    stderr_of_client_new(f, "off", out, sizeof out);
    assert_string_equal(out, "");
    assert_string_equal(test_logs, "");
}

/* ---- 5. errors name the real cause --------------------------------------------------------------- */

static void test_numbers_out_of_range(void **state)
{
    fixture *f = *state;
    bkoauth_client *c = client(f, f->dev->url, NULL);
    const char *head = f->ee ? "{\"code\": 0, \"data\": {" : "{\"result\": true, \"data\": {";
    char body[1024];
    bkoauth_token *t = NULL;
    bkoauth_error e;
    snprintf(body, sizeof body,
             "%s\"access_token\": \"AT\", \"expires_in\": 1000000000000000000000000000000}}", head);
    raw_fault(f, 200, body);
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "data.expires_in is implausibly large");
    char digits[401];
    memset(digits, '7', 400);
    digits[400] = '\0';
    snprintf(body, sizeof body,
             f->ee ? "{\"code\": %s, \"message\": \"no\"}" : "{\"result\": false, \"code\": %s}", digits);
    raw_fault(f, 200, body);
    assert_int_equal(bkoauth_get_app_access_token(c, &t, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "number out of any range");
    assert_null(strstr(e.message, "not JSON but"));
    assert_int_equal(saved_count(c), 0);
    bkoauth_client_free(c);
}

/* An SSM call of a fresh client against the raw server's answer: its error. */
static bkoauth_code call_raw(fixture *f, rawserver *rs, bkoauth_error *e)
{
    bkoauth_client *c = client(f, rawserver_url(rs), NULL);
    bkoauth_token *t = NULL;
    bkoauth_code rc = bkoauth_get_app_access_token(c, &t, e);
    assert_null(t);
    bkoauth_client_free(c);
    assert_one_line(e->message);
    return rc;
}

static void test_answers_that_are_not_http(void **state)
{
    fixture *f = *state;
    rawserver *rs = rawserver_start();
    assert_non_null(rs);
    bkoauth_error e;
    const char *http09 = "{\"result\": true}\n";
    rawserver_answer(rs, http09, strlen(http09));
    assert_int_equal(call_raw(f, rs, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "did not answer in HTTP/1.x");
    assert_null(strstr(e.message, "must start with http"));
    const char *v12 = "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    rawserver_answer(rs, v12, strlen(v12));
    assert_int_equal(call_raw(f, rs, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "did not answer in HTTP/1.x");
    const char *s101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n";
    rawserver_answer(rs, s101, strlen(s101));
    assert_int_equal(call_raw(f, rs, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "interim status HTTP 101");
    const char *s199 = "HTTP/1.1 199 Odd\r\nContent-Length: 2\r\n\r\n{}";
    rawserver_answer(rs, s199, strlen(s199));
    assert_int_equal(call_raw(f, rs, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "HTTP 199");
    rawserver_answer_http(rs, 999, "{}");
    assert_int_equal(call_raw(f, rs, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "HTTP 999");
    /* 2 MB in one header line: libcurl's limit, not out of memory */
    size_t big = 2u * 1024 * 1024;
    char *huge = malloc(big + 200);
    int h = snprintf(huge, 200, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(huge + h, 'a', big);
    size_t n = (size_t)h + big;
    n += (size_t)snprintf(huge + n, 200, "\r\nContent-Length: 2\r\n\r\n{}");
    rawserver_answer(rs, huge, n);
    assert_int_equal(call_raw(f, rs, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "header line larger than libcurl accepts");
    /* many headers: more than the 64 KB limit */
    n = (size_t)snprintf(huge, 200, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 300; i++) {
        n += (size_t)snprintf(huge + n, 40, "X-H%d: ", i);
        memset(huge + n, 'b', 1000);
        n += 1000;
        memcpy(huge + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)snprintf(huge + n, 200, "Content-Length: 2\r\n\r\n{}");
    rawserver_answer(rs, huge, n);
    assert_int_equal(call_raw(f, rs, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "more than 65536 bytes of headers");
    free(huge);
    rawserver_stop(rs);
}

static void test_out_of_file_descriptors(void **state)
{
    (void)state;
    rawserver *rs = rawserver_start();
    assert_non_null(rs);
    rawserver_answer_http(rs, 200,
                          "{\"result\": true, \"data\": {\"access_token\": \"AT\", \"expires_in\": 60}}");
    bk_settings s;
    memset(&s, 0, sizeof s);
    s.api_url = (char *)rawserver_url(rs);
    s.app_code = (char *)APP_CODE;
    s.app_secret = (char *)APP_SECRET;
    s.oauth_params_json = (char *)"{}";
    snprintf(s.env_name, sizeof s.env_name, "test");
    s.timeout_ms = 5000;
    s.tls_verify = 1;
    bk_logger lg = {test_log_line, NULL, BKOAUTH_LOG_DEBUG};
    bkoauth_error e;
    ssm_client *sc = ssm_new(&s, &lg, &e);
    assert_non_null(sc);
    /* every descriptor taken */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[64], nfds = 0;
    while (nfds < 64) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) break;
        fds[nfds++] = fd;
    }
    ssm_grant g;
    bkoauth_code rc = ssm_fetch_app(sc, NULL, &g, &e);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "run out of file descriptors");
    test_assert_has(e.message, "EMFILE");
    /* with descriptors back, the call works */
    assert_int_equal(ssm_fetch_app(sc, NULL, &g, &e), BKOAUTH_OK);
    ssm_grant_clear(&g);
    ssm_free(sc);
    rawserver_stop(rs);
}

/* src/ssm/curl_dl.c: libcurl loaded and initialised once (its header would also rename the
 * test's own libcurl calls) */
bkoauth_code bk_curl_load(bkoauth_error *err);

int main(void)
{
    /* libcurl loaded and initialised by the library first (the test's own calls to the
     * devserver would otherwise initialise it with the C library's allocators) */
    assert_int_equal(bk_curl_load(NULL), BKOAUTH_OK);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    const struct CMUnitTest ieod[] = {
        cmocka_unit_test_setup(test_grant_with_control_characters_refused, test_fixture_reset),
        cmocka_unit_test_setup(test_service_quoting_the_request_back, test_fixture_reset),
        cmocka_unit_test_setup(test_user_name_cannot_forge_a_line, test_fixture_reset),
        cmocka_unit_test_setup(test_no_credential_no_call, test_fixture_reset),
        cmocka_unit_test_setup(test_x_forwarded_for_bounded, test_fixture_reset),
        cmocka_unit_test_setup(test_tls_off_is_loud, test_fixture_reset),
        cmocka_unit_test_setup(test_numbers_out_of_range, test_fixture_reset),
        cmocka_unit_test_setup(test_answers_that_are_not_http, test_fixture_reset),
        cmocka_unit_test_setup(test_out_of_file_descriptors, test_fixture_reset),
    };
    const struct CMUnitTest ee[] = {
        cmocka_unit_test_setup(test_grant_with_control_characters_refused, test_fixture_reset),
        cmocka_unit_test_setup(test_service_quoting_the_request_back, test_fixture_reset),
        cmocka_unit_test_setup(test_no_credential_no_call, test_fixture_reset),
        cmocka_unit_test_setup(test_numbers_out_of_range, test_fixture_reset),
    };
    int failed = TEST_RUN_GROUP("ieod", ieod, 0, setup, test_fixture_teardown);
    failed += TEST_RUN_GROUP("ee", ee, 1, setup, test_fixture_teardown);
    teststore_cleanup();
    return failed;
}
