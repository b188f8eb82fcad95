/* SPDX-License-Identifier: MIT */
/* test_devserver.c - bkoauth-devserver over real HTTP (libcurl): both protocols, refusals,
 * single-use refresh tokens, the overlap after a refresh, counters and the last call, each
 * fault for exactly N calls, concurrency, reset, runtime settings, defensive parsing, and its
 * command line (listening line, port file, signals, bad arguments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devserver.h"
#include "testtime.h"

#define APP "dev-app"
#define SECRET "dev-secret"

static devserver *dev;

typedef struct answer {
    long status;
    CURLcode rc;
    char body[16384];
    size_t len;
    double seconds;
} answer;

static size_t take(char *p, size_t size, size_t n, void *ctx)
{
    answer *a = ctx;
    size_t add = size * n;
    if (a->len + add >= sizeof a->body) add = sizeof a->body - 1 - a->len;
    memcpy(a->body + a->len, p, add);
    a->len += add;
    a->body[a->len] = '\0';
    return size * n;
}

/* method (GET/POST/...) on path of the shared devserver; for POST, json_body is sent with the ee
 * headers (app code APP and secret unless NULL). Returns the answer by value (heap-free). */
static answer request(const char *method, const char *path, const char *json_body, const char *secret)
{
    answer a;
    memset(&a, 0, sizeof a);
    char url[4096];
    snprintf(url, sizeof url, "%s%s", dev->url, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hs = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (json_body != NULL) {
        char h[256];
        hs = curl_slist_append(hs, "X-BK-APP-CODE: " APP);
        if (secret != NULL) {
            snprintf(h, sizeof h, "X-BK-APP-SECRET: %s", secret);
            hs = curl_slist_append(hs, h);
        }
        hs = curl_slist_append(hs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body);
    }
    double t0 = test_mono_s();
    a.rc = curl_easy_perform(c);
    a.seconds = test_mono_s() - t0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return a;
}

static answer get(const char *path)
{
    return request("GET", path, NULL, NULL);
}

static answer ee_post(const char *path, const char *json_body, const char *secret)
{
    return request("POST", path, json_body, secret);
}

#define IEOD_APP                                                                                             \
    "/auth_api/token/?app_code=" APP "&app_secret=" SECRET "&env_name=test&grant_type=client_credentials"
#define IEOD_USER                                                                                            \
    "/auth_api/token/?app_code=" APP "&app_secret=" SECRET "&env_name=test&bk_client_ip=10.1.2.3"            \
    "&grant_type=authorization_code&need_new_token=True&bk_token="
#define IEOD_REFRESH                                                                                         \
    "/auth_api/refresh_token/?grant_type=refresh_token&app_code=" APP "&env_name=test&refresh_token="
#define EE_TOKEN "/api/v1/auth/access-tokens"
#define EE_REFRESH "/api/v1/auth/access-tokens/refresh"
#define EE_APP_BODY "{\"grant_type\": \"client_credentials\", \"id_provider\": \"client\"}"
#define EE_USER_BODY(cred)                                                                                   \
    "{\"grant_type\": \"authorization_code\", \"id_provider\": \"bk_login\", \"bk_token\": \"" cred "\"}"

/* The parsed body (caller decrefs); fails the test when it is not a JSON object. */
static json_t *parsed(const answer *a)
{
    json_error_t e;
    json_t *j = json_loadb(a->body, a->len, 0, &e);
    if (!json_is_object(j))
        fail_msg("not a JSON object (HTTP %ld, curl %d): %.200s", a->status, a->rc, a->body);
    return j;
}

/* A grant of a successful answer: checks the protocol's success shape, copies the tokens. */
static void grant_of(const answer *a, int ee, char *at, char *rt, size_t cap, char *username, size_t ucap)
{
    assert_int_equal(a->rc, CURLE_OK);
    assert_int_equal(a->status, 200);
    json_t *j = parsed(a);
    if (ee) {
        assert_null(json_object_get(j, "result"));
    } else {
        if (!json_is_true(json_object_get(j, "result"))) fail_msg("not a success: %s", a->body);
    }
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 0);
    assert_true(json_is_integer(json_object_get(j, "code")));
    json_t *d = json_object_get(j, "data");
    const char *access = json_string_value(json_object_get(d, "access_token"));
    const char *refresh = json_string_value(json_object_get(d, "refresh_token"));
    assert_non_null(access);
    assert_true(strlen(access) >= 30);
    assert_true(json_is_integer(json_object_get(d, "expires_in")));
    assert_true(json_is_string(json_object_get(d, "scope")));
    snprintf(at, cap, "%s", access);
    snprintf(rt, cap, "%s", refresh ? refresh : "");
    if (username != NULL)
        snprintf(username, ucap, "%s",
                 json_string_value(json_object_get(json_object_get(d, "identity"), "username")));
    json_decref(j);
}

/* Checks a business failure: HTTP status, the protocol's shape, a nonzero code, message has needle. */
static void refused(const answer *a, int ee, long status, const char *needle)
{
    assert_int_equal(a->rc, CURLE_OK);
    if (a->status != status) fail_msg("HTTP %ld, expected %ld: %s", a->status, status, a->body);
    json_t *j = parsed(a);
    if (!ee) assert_true(json_is_false(json_object_get(j, "result")));
    assert_true(json_is_integer(json_object_get(j, "code")));
    assert_int_not_equal(json_integer_value(json_object_get(j, "code")), 0);
    assert_true(json_is_null(json_object_get(j, "data")) || json_object_get(j, "data") == NULL);
    const char *m = json_string_value(json_object_get(j, "message"));
    assert_non_null(m);
    if (strstr(m, needle) == NULL) fail_msg("message '%s' lacks '%s'", m, needle);
    json_decref(j);
}

static json_t *token_info(const char *at)
{
    char path[256];
    snprintf(path, sizeof path, "/__dev/token?access_token=%s", at);
    return devserver_get(dev, path);
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *args[] = {"--app-code", APP,       "--app-secret", SECRET, "--user",    "cred-a=alice",
                          "--user",     "123=bob", "--ttl",        "3600", "--overlap", "1",
                          NULL};
    dev = devserver_start(args);
    return dev ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int st = devserver_stop(dev);
    curl_global_cleanup();
    return st == 0 ? 0 : -1; /* a clean exit on SIGTERM */
}

static int reset(void **state)
{
    (void)state;
    json_t *j = devserver_post(dev, "/__dev/reset?tokens=1");
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    assert_int_equal(devserver_config(dev, 3600, 1), 0);
    return 0;
}

/* ---- ieod ----------------------------------------------------------------------------------- */

static void test_ieod_app_and_user_tokens(void **state)
{
    (void)state;
    char at[128], rt[128], user[64], at2[128], rt2[128];
    answer a = get(IEOD_APP);
    grant_of(&a, 0, at, rt, sizeof at, user, sizeof user);
    assert_string_equal(rt, ""); /* APP tokens carry no refresh_token */
    json_t *info = token_info(at);
    assert_true(json_is_true(json_object_get(info, "valid")));
    assert_string_equal(json_string_value(json_object_get(info, "kind")), "app");
    assert_true(json_is_null(json_object_get(info, "username")));
    assert_string_equal(json_string_value(json_object_get(info, "env_name")), "test");
    assert_true(json_integer_value(json_object_get(info, "expires_in")) > 3590);
    json_decref(info);

    a = get(IEOD_USER "cred-a");
    grant_of(&a, 0, at, rt, sizeof at, user, sizeof user);
    assert_string_equal(user, "alice");
    assert_true(strlen(rt) >= 30);
    assert_string_not_equal(at, rt);
    info = token_info(at);
    assert_string_equal(json_string_value(json_object_get(info, "kind")), "user");
    assert_string_equal(json_string_value(json_object_get(info, "username")), "alice");
    assert_string_equal(json_string_value(json_object_get(info, "bk_client_ip")), "10.1.2.3");
    assert_string_equal(json_string_value(json_object_get(info, "need_new_token")), "True");
    assert_string_equal(json_string_value(json_object_get(info, "protocol")), "ieod");
    json_decref(info);

    /* the credential in any parameter (a uin sent as a number) and env prod */
    a = get("/auth_api/token/?app_code=" APP "&app_secret=" SECRET
            "&env_name=prod&grant_type=authorization_code&uin=123");
    grant_of(&a, 0, at2, rt2, sizeof at2, user, sizeof user);
    assert_string_equal(user, "bob");
    assert_string_not_equal(at, at2);
    assert_int_equal(devserver_counter(dev, "user_token"), 2);
    assert_int_equal(devserver_counter(dev, "app_token"), 1);
    assert_int_equal(devserver_counter(dev, "ieod"), 3);
    assert_int_equal(devserver_counter(dev, "ee"), 0);
    assert_int_equal(devserver_counter(dev, "total"), 3);
}

static void test_ieod_refusals(void **state)
{
    (void)state;
    refused((answer[]){get(IEOD_USER "not-a-login")}, 0, 200, "credential");
    refused((answer[]){get("/auth_api/token/?app_code=" APP "&app_secret=" SECRET
                           "&env_name=test&grant_type=authorization_code")},
            0, 200, "credential");
    answer a = get("/auth_api/token/?app_code=" APP "&app_secret=bad-secret-xyz&env_name=test"
                   "&grant_type=client_credentials");
    refused(&a, 0, 200, "app_secret");
    assert_null(strstr(a.body, "bad-secret-xyz")); /* never echoed */
    refused((answer[]){get("/auth_api/token/?app_code=other&app_secret=" SECRET
                           "&env_name=test&grant_type=client_credentials")},
            0, 200, "app_code");
    refused((answer[]){get("/auth_api/token/?app_code=" APP "&app_secret=" SECRET
                           "&env_name=dev&grant_type=client_credentials")},
            0, 200, "env_name");
    refused((answer[]){get("/auth_api/token/?app_code=" APP "&app_secret=" SECRET
                           "&grant_type=client_credentials")},
            0, 200, "env_name");
    refused(
        (answer[]){get("/auth_api/token/?app_code=" APP "&app_secret=" SECRET "&env_name=test&grant_type=x")},
        0, 200, "grant_type");
    assert_int_equal(devserver_counter(dev, "total"), 7); /* refused calls are SSM calls too */
    assert_int_equal(devserver_counter(dev, "tokens"), 0);
}

static void test_ieod_refresh_overlap_single_use(void **state)
{
    (void)state;
    char at[128], rt[128], at2[128], rt2[128], user[64], path[512];
    answer a = get(IEOD_USER "cred-a");
    grant_of(&a, 0, at, rt, sizeof at, NULL, 0);
    snprintf(path, sizeof path, IEOD_REFRESH "%s&need_new_token=False", rt);
    a = get(path);
    grant_of(&a, 0, at2, rt2, sizeof at2, user, sizeof user);
    assert_string_equal(user, "alice");
    assert_string_not_equal(at, at2);
    assert_string_not_equal(rt, rt2);
    assert_true(devserver_token_valid(dev, at)); /* the overlap */
    assert_true(devserver_token_valid(dev, at2));
    usleep(1500 * 1000);
    assert_false(devserver_token_valid(dev, at)); /* over */
    assert_true(devserver_token_valid(dev, at2));

    refused((answer[]){get(path)}, 0, 200, "refresh_token already used");
    assert_true(devserver_token_valid(dev, at2)); /* a failed refresh changes nothing */

    snprintf(path, sizeof path, IEOD_REFRESH "no-such-refresh-token");
    refused((answer[]){get(path)}, 0, 200, "refresh_token");
    /* the token's own env_name is needed, and grant_type=refresh_token */
    snprintf(path, sizeof path,
             "/auth_api/refresh_token/?grant_type=refresh_token&app_code=" APP
             "&env_name=prod&refresh_token=%s",
             rt2);
    refused((answer[]){get(path)}, 0, 200, "env_name");
    snprintf(path, sizeof path,
             "/auth_api/refresh_token/?grant_type=password&app_code=" APP "&env_name=test&refresh_token=%s",
             rt2);
    refused((answer[]){get(path)}, 0, 200, "grant_type");
    snprintf(path, sizeof path, IEOD_REFRESH "%s", rt2); /* still unused after those refusals */
    grant_of((answer[]){get(path)}, 0, at, rt, sizeof at, NULL, 0);

    assert_int_equal(devserver_counter(dev, "refresh"), 6);
    assert_int_equal(devserver_counter(dev, "refresh_failed"), 4);
    assert_int_equal(devserver_counter(dev, "user_token"), 1);
    assert_int_equal(devserver_counter(dev, "total"), 7);
}

/* ---- ee --------------------------------------------------------------------------------------- */

static void test_ee_protocol(void **state)
{
    (void)state;
    char at[128], rt[128], at2[128], rt2[128], user[64], body[256];
    grant_of((answer[]){ee_post(EE_TOKEN, EE_APP_BODY, SECRET)}, 1, at, rt, sizeof at, NULL, 0);
    assert_string_equal(rt, "");
    grant_of((answer[]){ee_post(EE_TOKEN, EE_USER_BODY("cred-a"), SECRET)}, 1, at, rt, sizeof at, user,
             sizeof user);
    assert_string_equal(user, "alice");
    json_t *info = token_info(at);
    assert_string_equal(json_string_value(json_object_get(info, "protocol")), "ee");
    json_decref(info);
    /* a credential in any body field, a number too */
    grant_of((answer[]){ee_post(EE_TOKEN,
                                "{\"grant_type\": \"authorization_code\", \"id_provider\": \"bk_login\", "
                                "\"region\": \"sz\", \"uin\": 123}",
                                SECRET)},
             1, at2, rt2, sizeof at2, user, sizeof user);
    assert_string_equal(user, "bob");

    snprintf(body, sizeof body, "{\"refresh_token\": \"%s\"}", rt);
    grant_of((answer[]){ee_post(EE_REFRESH, body, SECRET)}, 1, at2, rt2, sizeof at2, user, sizeof user);
    assert_string_equal(user, "alice");
    assert_true(devserver_token_valid(dev, at));
    refused((answer[]){ee_post(EE_REFRESH, body, SECRET)}, 1, 200, "refresh_token already used");
    usleep(1500 * 1000);
    assert_false(devserver_token_valid(dev, at));
    assert_true(devserver_token_valid(dev, at2));

    refused((answer[]){ee_post(EE_TOKEN, EE_USER_BODY("unknown-cred"), SECRET)}, 1, 200, "credential");
    answer a = ee_post(EE_TOKEN, EE_APP_BODY, "wrong-secret-abc");
    refused(&a, 1, 401, "app_secret");
    assert_null(strstr(a.body, "wrong-secret-abc"));
    refused((answer[]){ee_post(EE_TOKEN, EE_APP_BODY, NULL)}, 1, 401, "app_secret");
    refused((answer[]){ee_post(EE_TOKEN, "{\"grant_type\": \"client_credentials\"}", SECRET)}, 1, 200,
            "id_provider");
    refused((answer[]){ee_post(EE_TOKEN,
                               "{\"grant_type\": \"authorization_code\", \"id_provider\": \"client\", "
                               "\"bk_token\": \"cred-a\"}",
                               SECRET)},
            1, 200, "id_provider");
    refused((answer[]){ee_post(EE_REFRESH, "{}", SECRET)}, 1, 200, "refresh_token");

    /* junk bodies: 400 with a JSON message, not counted */
    long before = devserver_counter(dev, "total");
    struct {
        const char *body, *says;
    } junk[] = {{"not json", "not valid JSON (line 1"},
                {"[1, 2]", "not an object"},
                {"", "empty"},
                {"{\"bk_token\": \"cred-a\", \"bk_token\": \"cred-a\"}", "repeats a key"},
                {"{\"bk_token\": \"cred-a\\u0000\"}", "not valid JSON"}};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        a = ee_post(EE_TOKEN, junk[i].body, SECRET);
        if (a.status != 400) fail_msg("%s: HTTP %ld", junk[i].body, a.status);
        json_t *j = parsed(&a);
        const char *m = json_string_value(json_object_get(j, "message"));
        if (m == NULL || strstr(m, junk[i].says) == NULL) fail_msg("%s: message %s", junk[i].body, a.body);
        assert_null(strstr(a.body, "cred-a")); /* the message never quotes the body */
        json_decref(j);
    }
    assert_int_equal(devserver_counter(dev, "total"), before);

    assert_int_equal(devserver_counter(dev, "ee"), 11);
    assert_int_equal(devserver_counter(dev, "ieod"), 0);
    assert_int_equal(devserver_counter(dev, "refresh"), 3);
    assert_int_equal(devserver_counter(dev, "refresh_failed"), 2);
}

/* ---- counters, last call, /__dev/ ------------------------------------------------------------ */

static void test_last_call_recorded(void **state)
{
    (void)state;
    ee_post(EE_TOKEN, EE_USER_BODY("cred-a"), SECRET);
    json_t *j = devserver_get(dev, "/__dev/counters");
    json_t *last = json_object_get(j, "last");
    assert_string_equal(json_string_value(json_object_get(last, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(last, "path")), EE_TOKEN);
    assert_non_null(strstr(json_string_value(json_object_get(last, "body")), "\"bk_token\": \"cred-a\""));
    json_t *headers = json_object_get(last, "headers");
    const char *k;
    json_t *v;
    int saw_secret = 0;
    json_object_foreach(headers, k, v)
    {
        if (strcasecmp(k, "X-BK-APP-SECRET") == 0) saw_secret = strcmp(json_string_value(v), SECRET) == 0;
    }
    assert_true(saw_secret);
    json_decref(j);

    /* the raw query and the decoded arguments; bytes that are not UTF-8 do not break the JSON */
    get(IEOD_USER "cred-a&note=a%20b%2Cc&junk=%ff%00x");
    j = devserver_get(dev, "/__dev/counters");
    assert_non_null(j);
    last = json_object_get(j, "last");
    assert_string_equal(json_string_value(json_object_get(last, "method")), "GET");
    assert_non_null(strstr(json_string_value(json_object_get(last, "query")), "note=a%20b%2Cc"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "args"), "note")), "a b,c");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "args"), "bk_client_ip")),
                        "10.1.2.3");
    assert_non_null(json_string_value(json_object_get(json_object_get(last, "args"), "junk")));
    json_decref(j);

    /* /__dev/ calls are never counted */
    long total = devserver_counter(dev, "total");
    json_decref(devserver_get(dev, "/__dev/health"));
    json_decref(token_info("x"));
    assert_int_equal(devserver_counter(dev, "total"), total);
    assert_int_equal(total, 2);
}

static void test_dev_endpoints(void **state)
{
    (void)state;
    json_t *h = devserver_get(dev, "/__dev/health");
    assert_true(json_is_true(json_object_get(h, "ok")));
    json_decref(h);
    json_t *t = token_info("no-such-token");
    assert_true(json_is_false(json_object_get(t, "valid")));
    json_decref(t);
    assert_int_equal(get("/__dev/token").status, 400);
    assert_int_equal(get("/__dev/nothing").status, 404);
    assert_int_equal(get("/__dev/reset").status, 405); /* POST only */
    assert_int_equal(request("POST", "/__dev/counters", NULL, NULL).status, 405);
    assert_int_equal(get("/nothing/here").status, 404);
    assert_int_equal(request("POST", "/auth_api/token/", NULL, NULL).status, 405);
    assert_int_equal(get(EE_TOKEN).status, 405);
    assert_int_equal(devserver_counter(dev, "total"), 0);
    assert_int_equal(devserver_token_valid(dev, "a&b=c d"), 0); /* escaped, still just unknown */
}

static void test_reset(void **state)
{
    (void)state;
    char at[128], rt[128], at2[128];
    grant_of((answer[]){get(IEOD_APP)}, 0, at, rt, sizeof at, NULL, 0);
    assert_int_equal(devserver_fault(dev, "http500", 5, 0), 0);
    json_decref(devserver_post(dev, "/__dev/reset"));
    assert_int_equal(devserver_counter(dev, "total"), 0);
    json_t *j = devserver_get(dev, "/__dev/counters");
    assert_true(json_is_null(json_object_get(j, "last")));
    json_decref(j);
    grant_of((answer[]){get(IEOD_APP)}, 0, at2, rt, sizeof rt, NULL, 0); /* the fault is gone */
    assert_true(devserver_token_valid(dev, at));                         /* tokens kept */
    json_decref(devserver_post(dev, "/__dev/reset?tokens=1"));
    assert_false(devserver_token_valid(dev, at)); /* forgotten */
    assert_int_equal(devserver_counter(dev, "tokens"), 0);
}

static void test_runtime_config(void **state)
{
    (void)state;
    char at[128], rt[128], at2[128], path[512];
    assert_int_equal(devserver_config(dev, 5, -1), 0);
    answer a = get(IEOD_APP);
    json_t *j = parsed(&a);
    json_int_t e = json_integer_value(json_object_get(json_object_get(j, "data"), "expires_in"));
    assert_true(e >= 4 && e <= 5);
    json_decref(j);
    /* overlap 0: the old token is invalid at once */
    assert_int_equal(devserver_config(dev, 3600, 0), 0);
    grant_of((answer[]){get(IEOD_USER "cred-a")}, 0, at, rt, sizeof at, NULL, 0);
    snprintf(path, sizeof path, IEOD_REFRESH "%s", rt);
    grant_of((answer[]){get(path)}, 0, at2, rt, sizeof rt, NULL, 0);
    assert_false(devserver_token_valid(dev, at));
    /* ttl 0: issued already expired */
    assert_int_equal(devserver_config(dev, 0, -1), 0);
    grant_of((answer[]){get(IEOD_APP)}, 0, at, rt, sizeof at, NULL, 0);
    assert_false(devserver_token_valid(dev, at));
    /* junk refused, settings unchanged */
    assert_int_equal(request("POST", "/__dev/config?ttl=soon", NULL, NULL).status, 400);
    assert_int_equal(request("POST", "/__dev/config?overlap=-1", NULL, NULL).status, 400);
    assert_int_equal(request("POST", "/__dev/config?ttl=99999999999999999999", NULL, NULL).status, 400);
    j = devserver_get(dev, "/__dev/config");
    assert_int_equal(json_integer_value(json_object_get(j, "ttl")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "overlap")), 0);
    json_decref(j);
}

/* ---- faults ----------------------------------------------------------------------------------- */

static void test_faults_for_exactly_n_calls(void **state)
{
    (void)state;
    struct {
        const char *kind;
        long status;
        CURLcode rc;
        const char *needle;
    } faults[] = {{"http500", 500, CURLE_OK, "Server Error"},
                  {"html", 200, CURLE_OK, "<html>"},
                  {"business", 200, CURLE_OK, "injected business error"},
                  {"truncated", 200, CURLE_PARTIAL_FILE, NULL},
                  {"drop", 0, CURLE_GOT_NOTHING, NULL}};
    long faulted = 0;
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        for (int ee = 0; ee < 2; ee++) {
            assert_int_equal(devserver_fault(dev, faults[i].kind, 2, 0), 0);
            for (int n = 0; n < 2; n++) {
                answer a = ee ? ee_post(EE_TOKEN, EE_APP_BODY, SECRET) : get(IEOD_APP);
                if (a.rc != faults[i].rc || a.status != faults[i].status)
                    fail_msg("%s (%s): curl %d status %ld", faults[i].kind, ee ? "ee" : "ieod", a.rc,
                             a.status);
                if (faults[i].needle && strstr(a.body, faults[i].needle) == NULL)
                    fail_msg("%s: body %s", faults[i].kind, a.body);
                if (strcmp(faults[i].kind, "business") == 0) refused(&a, ee, 200, "injected");
                if (strcmp(faults[i].kind, "truncated") == 0) assert_true(a.len > 0);
                faulted++;
            }
            char at[128], rt[128];
            grant_of((answer[]){ee ? ee_post(EE_TOKEN, EE_APP_BODY, SECRET) : get(IEOD_APP)}, ee, at, rt,
                     sizeof at, NULL, 0); /* the third is normal again */
        }
    }
    assert_int_equal(devserver_counter(dev, "faulted"), faulted);
    assert_int_equal(devserver_counter(dev, "total"), faulted + 10);
    assert_int_equal(devserver_counter(dev, "tokens"), 10); /* faulted calls issue no token */
}

static void test_slow_fault(void **state)
{
    (void)state;
    char at[128], rt[128];
    assert_int_equal(devserver_fault(dev, "slow", 2, 400), 0);
    for (int n = 0; n < 2; n++) {
        answer a = get(IEOD_APP);
        assert_true(a.seconds >= 0.4);
        grant_of(&a, 0, at, rt, sizeof at, NULL, 0); /* answered normally after the delay */
    }
    answer a = get(IEOD_APP);
    assert_true(a.seconds < 0.4);
    assert_int_equal(devserver_counter(dev, "faulted"), 2);
    assert_int_equal(devserver_counter(dev, "app_token"), 3);
}

static void *slow_call(void *arg)
{
    answer *a = arg;
    *a = get(IEOD_APP);
    return NULL;
}

static void test_slow_answer_blocks_nobody(void **state)
{
    (void)state;
    assert_int_equal(devserver_fault(dev, "slow", 1, 1500), 0);
    static answer slow;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_call, &slow), 0);
    while (devserver_counter(dev, "faulted") < 1)
        usleep(10 * 1000);
    answer fast = get(IEOD_APP); /* while the slow one sleeps */
    assert_int_equal(fast.status, 200);
    assert_true(fast.seconds < 1.0);
    pthread_join(th, NULL);
    assert_true(slow.seconds >= 1.5);
    assert_int_equal(slow.status, 200);
}

static void test_business_fault_and_fault_parameters(void **state)
{
    (void)state;
    assert_int_equal(devserver_business_fault(dev, 1, 40001, "用户 token 失效 & more"), 0);
    refused((answer[]){get(IEOD_APP)}, 0, 200, "用户 token 失效 & more");
    assert_int_equal(devserver_business_fault(dev, 1, 40002, "ee refusal"), 0);
    answer a = ee_post(EE_TOKEN, EE_APP_BODY, SECRET);
    refused(&a, 1, 200, "ee refusal");
    assert_non_null(strstr(a.body, "40002"));
    /* a fault applies to any kind of call: a refresh faulted keeps its refresh_token */
    char at[128], rt[128], path[512];
    grant_of((answer[]){get(IEOD_USER "cred-a")}, 0, at, rt, sizeof at, NULL, 0);
    snprintf(path, sizeof path, IEOD_REFRESH "%s", rt);
    assert_int_equal(devserver_fault(dev, "http500", 1, 0), 0);
    assert_int_equal(get(path).status, 500);
    grant_of((answer[]){get(path)}, 0, at, rt, sizeof at, NULL, 0);

    /* junk parameters refused with a message */
    const char *bad[] = {"/__dev/fault?kind=explode&count=1",
                         "/__dev/fault?count=1",
                         "/__dev/fault?kind=drop&count=two",
                         "/__dev/fault?kind=drop&count=-1",
                         "/__dev/fault?kind=slow&count=1&delay_ms=99999999",
                         "/__dev/fault?kind=business&code=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = request("POST", bad[i], NULL, NULL);
        if (a.status != 400) fail_msg("%s: HTTP %ld", bad[i], a.status);
        json_t *j = parsed(&a);
        assert_non_null(json_string_value(json_object_get(j, "message")));
        json_decref(j);
    }
    assert_int_equal(devserver_fault(dev, "no-such-fault", 1, 0), -1);
    /* count 0 clears a fault */
    assert_int_equal(devserver_fault(dev, "drop", 3, 0), 0);
    assert_int_equal(devserver_fault(dev, "drop", 0, 0), 0);
    assert_int_equal(get(IEOD_APP).status, 200);
}

/* A user token's grant (ieod or ee) for cred-a. */
static void user_grant(int ee, char *at, char *rt, size_t cap)
{
    grant_of((answer[]){ee ? ee_post(EE_TOKEN, EE_USER_BODY("cred-a"), SECRET) : get(IEOD_USER "cred-a")}, ee,
             at, rt, cap, NULL, 0);
    assert_true(rt[0] != '\0');
}

/* The refresh call of either protocol with refresh_token rt. */
static answer refresh_call(int ee, const char *rt)
{
    char text[512];
    if (ee) {
        snprintf(text, sizeof text, "{\"refresh_token\": \"%s\"}", rt);
        return ee_post(EE_REFRESH, text, SECRET);
    }
    snprintf(text, sizeof text, IEOD_REFRESH "%s", rt);
    return get(text);
}

/* 1 when /__dev/token says field is true for at. */
static int token_flag(const char *at, const char *field)
{
    json_t *j = token_info(at);
    int v = json_is_true(json_object_get(j, field));
    json_decref(j);
    return v;
}

/* Every fault but slow leaves a refresh without effect: the refresh_token stays unused, the old
 * access_token unrefreshed; the call is counted as a refresh and as faulted, not as failed. */
static void test_faulted_refresh_changes_nothing(void **state)
{
    (void)state;
    const char *kinds[] = {"http500", "truncated", "html", "drop", "business"};
    long calls = 0;
    for (int ee = 0; ee < 2; ee++) {
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            char at[128], rt[128], at2[128], rt2[128];
            user_grant(ee, at, rt, sizeof at);
            assert_int_equal(devserver_fault(dev, kinds[i], 1, 0), 0);
            answer a = refresh_call(ee, rt);
            json_error_t je;
            json_t *j = a.rc == CURLE_OK ? json_loadb(a.body, a.len, 0, &je) : NULL;
            if (json_is_true(json_object_get(j, "result")) ||
                (json_is_integer(json_object_get(j, "code")) &&
                 json_integer_value(json_object_get(j, "code")) == 0))
                fail_msg("%s (%s): a faulted refresh answered normally: %s", kinds[i], ee ? "ee" : "ieod",
                         a.body);
            json_decref(j);
            calls++;
            assert_int_equal(devserver_counter(dev, "refresh"), calls);
            assert_int_equal(devserver_counter(dev, "faulted"), calls);
            assert_int_equal(devserver_counter(dev, "refresh_failed"), 0);
            if (token_flag(at, "refresh_token_used") || token_flag(at, "refreshed"))
                fail_msg("%s (%s): the faulted refresh consumed the refresh_token", kinds[i],
                         ee ? "ee" : "ieod");
            assert_true(devserver_token_valid(dev, at));
            /* the same refresh_token works afterwards, once */
            grant_of((answer[]){refresh_call(ee, rt)}, ee, at2, rt2, sizeof at2, NULL, 0);
            calls++;
            assert_string_not_equal(at2, at);
            assert_string_not_equal(rt2, rt);
            assert_true(token_flag(at, "refresh_token_used"));
            refused((answer[]){refresh_call(ee, rt)}, ee, 200, "already used");
            calls++;
            assert_int_equal(devserver_counter(dev, "refresh_failed"), 1);
            json_decref(devserver_post(dev, "/__dev/reset")); /* counters only: "calls" restarts */
            calls = 0;
        }
    }
}

static void *slow_refresh(void *arg)
{
    char **io = arg; /* io[0]: the refresh_token in; the answer's body out through io[1] */
    answer a = refresh_call(0, io[0]);
    io[1] = (a.rc == CURLE_OK && a.status == 200) ? strdup(a.body) : NULL;
    return NULL;
}

/* A slow refresh is counted when it arrives and consumes its refresh_token only after the delay. */
static void test_slow_refresh_counted_first(void **state)
{
    (void)state;
    char at[128], rt[128];
    user_grant(0, at, rt, sizeof at);
    assert_int_equal(devserver_fault(dev, "slow", 1, 1200), 0);
    char *io[2] = {rt, NULL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_refresh, io), 0);
    double deadline = test_mono_s() + 5.0;
    while (devserver_counter(dev, "refresh") < 1 && test_mono_s() < deadline)
        usleep(10 * 1000);
    assert_int_equal(devserver_counter(dev, "refresh"), 1); /* counted on arrival */
    assert_int_equal(devserver_counter(dev, "faulted"), 1);
    assert_false(token_flag(at, "refresh_token_used")); /* not yet: it is still asleep */
    pthread_join(th, NULL);
    assert_non_null(io[1]);
    assert_non_null(strstr(io[1], "\"result\":true"));
    free(io[1]);
    assert_true(token_flag(at, "refresh_token_used"));
    assert_true(devserver_token_valid(dev, at)); /* within the 1 s overlap */
}

/* ---- defensive parsing and volume -------------------------------------------------------------- */

static void test_big_body_and_many_tokens(void **state)
{
    (void)state;
    size_t n = 70 * 1024;
    char *big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "{\"grant_type\": \"client_credentials\", \"id_provider\": \"client\", \"x\": \"");
    size_t k = strlen(big);
    memset(big + k, 'a', n - k);
    strcpy(big + n, "\"}");
    answer a = ee_post(EE_TOKEN, big, SECRET);
    assert_int_equal(a.status, 413);
    json_decref(parsed(&a));
    free(big);
    assert_int_equal(devserver_counter(dev, "total"), 0);

    /* enough tokens to grow the token index several times; every one stays findable */
    static char tokens[600][48];
    for (int i = 0; i < 600; i++) {
        char rt[128];
        grant_of((answer[]){get(IEOD_APP)}, 0, tokens[i], rt, sizeof tokens[i], NULL, 0);
    }
    for (int i = 0; i < 600; i += 37)
        assert_true(devserver_token_valid(dev, tokens[i]));
    for (int i = 1; i < 600; i++)
        assert_string_not_equal(tokens[i], tokens[i - 1]);
    assert_int_equal(devserver_counter(dev, "tokens"), 600);
}

static void test_free_port_is_refused(void **state)
{
    (void)state;
    int port = devserver_free_port();
    assert_true(port > 0 && port < 65536);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    assert_int_equal(curl_easy_perform(c), CURLE_COULDNT_CONNECT);
    curl_easy_cleanup(c);
}

/* ---- command line ------------------------------------------------------------------------------ */

typedef struct run_result {
    int status;
    char out[8192], err[8192];
} run_result;

static void drain(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd, buf + len, cap - 1 - len)) > 0 && len + (size_t)r < cap - 1)
        len += (size_t)r;
    if (r > 0) len += (size_t)r;
    buf[len] = '\0';
}

/* Runs the devserver with args (argv[0] included) to its end (killed after 10 s); status 128+N
 * for signal N. */
static void run(const char *const *args, run_result *r)
{
    char out[] = "/tmp/bkoauth-devtest-out-XXXXXX", err[] = "/tmp/bkoauth-devtest-err-XXXXXX";
    int fo = mkstemp(out), fe = mkstemp(err);
    assert_true(fo >= 0 && fe >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        execv(BKOAUTH_DEVSERVER_PATH, (char *const *)args);
        _exit(127);
    }
    int st = 0;
    double deadline = test_mono_s() + 10.0; /* a server that should have refused to start is killed */
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (test_mono_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(10 * 1000);
    }
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    lseek(fo, 0, SEEK_SET);
    lseek(fe, 0, SEEK_SET);
    drain(fo, r->out, sizeof r->out);
    drain(fe, r->err, sizeof r->err);
    close(fo);
    close(fe);
    unlink(out);
    unlink(err);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const char *const cases[][4] = {
        {"--frobnicate", NULL},
        {"--user", "nocredential", NULL},
        {"--user", "=bob", NULL},
        {"--user", "cred=", NULL},
        {"--ttl", "soon", NULL},
        {"--ttl", "-5", NULL},
        {"--overlap", "1x", NULL},
        {"--listen", "127.0.0.1", NULL},
        {"--listen", "127.0.0.1:70000", NULL},
        {"--listen", "nohost:0", NULL},
        {"--ttl", NULL},
        {"--app-secret", "", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[5] = {BKOAUTH_DEVSERVER_PATH, cases[i][0], cases[i][1],
                               cases[i][1] ? cases[i][2] : NULL, NULL};
        run_result r;
        run(args, &r);
        if (r.status != 2 || strstr(r.err, "usage: bkoauth-devserver") == NULL ||
            strstr(r.err, "bkoauth-devserver: ") == NULL)
            fail_msg("%s %s: status %d, stderr %s", cases[i][0], cases[i][1] ? cases[i][1] : "", r.status,
                     r.err);
    }
    run_result r;
    const char *help[] = {BKOAUTH_DEVSERVER_PATH, "--help", NULL};
    run(help, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: bkoauth-devserver"));
    assert_non_null(strstr(r.out, "--overlap"));

    const char *remote[] = {BKOAUTH_DEVSERVER_PATH, "--listen", "0.0.0.0:0", NULL};
    run(remote, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "not a loopback address"));
    assert_non_null(strstr(r.err, "--allow-remote"));
    const char *lan[] = {BKOAUTH_DEVSERVER_PATH, "--listen", "192.168.1.1:0", NULL};
    run(lan, &r);
    assert_int_equal(r.status, 2);
}

/* Without --quiet: the listening line, the port file (written whole), SIGINT/SIGTERM stop it
 * cleanly and the port file goes away. */
static void test_listening_line_port_file_and_signals(void **state)
{
    (void)state;
    for (int s = 0; s < 2; s++) {
        char dir[] = "/tmp/bkoauth-devtest-XXXXXX", port_file[128];
        assert_non_null(mkdtemp(dir));
        snprintf(port_file, sizeof port_file, "%s/port", dir);
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(pipefd[1], 1);
            close(pipefd[0]);
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) dup2(null, 2);
            execl(BKOAUTH_DEVSERVER_PATH, BKOAUTH_DEVSERVER_PATH, "--port-file", port_file, "--user", "c=u",
                  NULL);
            _exit(127);
        }
        close(pipefd[1]);
        char line[512] = {0};
        size_t len = 0;
        struct pollfd p = {pipefd[0], POLLIN, 0};
        while (len < sizeof line - 1 && strchr(line, '\n') == NULL && poll(&p, 1, 10000) > 0) {
            ssize_t r = read(pipefd[0], line + len, sizeof line - 1 - len);
            if (r <= 0) break;
            len += (size_t)r;
        }
        int port = 0;
        if (sscanf(line, "bkoauth-devserver listening on http://127.0.0.1:%d\n", &port) != 1)
            fail_msg("listening line: %s", line);
        FILE *f = fopen(port_file, "r");
        assert_non_null(f);
        int port2 = 0;
        assert_int_equal(fscanf(f, "%d", &port2), 1);
        fclose(f);
        assert_int_equal(port, port2);
        assert_true(port > 0);
        kill(pid, s == 0 ? SIGINT : SIGTERM);
        int st = 0;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        assert_int_not_equal(access(port_file, F_OK), 0); /* removed */
        close(pipefd[0]);
        assert_int_equal(rmdir(dir), 0); /* nothing left behind (no temporary file) */
    }
}

/* A second server on the same fixed port fails to start with status 1; the harness sees a
 * server that exits at start. */
static void test_port_in_use(void **state)
{
    (void)state;
    char listen_at[64];
    snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", dev->port);
    const char *args[] = {BKOAUTH_DEVSERVER_PATH, "--listen", listen_at, "--quiet", NULL};
    run_result r;
    run(args, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cannot listen"));
    const char *bad[] = {"--ttl", "junk", NULL};
    assert_null(devserver_start(bad));
}

/* The harness starts the server without the test's descriptors: a pipe the test holds open is
 * not among the server's (else a test waiting for EOF on it would hang). */
static void test_harness_keeps_descriptors(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct stat mine;
    assert_int_equal(fstat(fds[1], &mine), 0);
    devserver *d = devserver_start(NULL);
    assert_non_null(d);
    int seen = 0, leaked = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%ld/fd/%d", (long)d->pid, fd);
        if (stat(path, &st) != 0) continue;
        seen++;
        if (st.st_dev == mine.st_dev && st.st_ino == mine.st_ino) leaked = 1;
    }
    int st = devserver_stop(d); /* first: a failed check must not leave it running */
    close(fds[0]);
    close(fds[1]);
    assert_true(seen >= 3); /* it does have descriptors: the check looked at the right process */
    assert_false(leaked);
    assert_int_equal(st, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ieod_app_and_user_tokens, reset),
        cmocka_unit_test_setup(test_ieod_refusals, reset),
        cmocka_unit_test_setup(test_ieod_refresh_overlap_single_use, reset),
        cmocka_unit_test_setup(test_ee_protocol, reset),
        cmocka_unit_test_setup(test_last_call_recorded, reset),
        cmocka_unit_test_setup(test_dev_endpoints, reset),
        cmocka_unit_test_setup(test_reset, reset),
        cmocka_unit_test_setup(test_runtime_config, reset),
        cmocka_unit_test_setup(test_faults_for_exactly_n_calls, reset),
        cmocka_unit_test_setup(test_slow_fault, reset),
        cmocka_unit_test_setup(test_slow_answer_blocks_nobody, reset),
        cmocka_unit_test_setup(test_business_fault_and_fault_parameters, reset),
        cmocka_unit_test_setup(test_faulted_refresh_changes_nothing, reset),
        cmocka_unit_test_setup(test_slow_refresh_counted_first, reset),
        cmocka_unit_test_setup(test_big_body_and_many_tokens, reset),
        cmocka_unit_test(test_free_port_is_refused),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_listening_line_port_file_and_signals),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_harness_keeps_descriptors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
