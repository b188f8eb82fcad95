/* test_devserver.c - bkoauth-devserver over real HTTP: both protocols, single-use refresh
 * tokens, the overlap after a refresh, counters, each fault for exactly N calls, runtime
 * settings, and its command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devserver.h"

static devserver *dev;

typedef struct answer {
    long status;
    CURLcode rc;
    char body[8192];
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

/* GET path?query (ieod) or POST path with a JSON body and the ee headers. */
static answer call(const char *path, const char *json_body, const char *secret)
{
    answer a = {0};
    char url[2048], h1[128], h2[128];
    snprintf(url, sizeof url, "%s%s", dev->url, path);
    CURL *c = curl_easy_init();
    struct curl_slist *hs = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (json_body != NULL) {
        snprintf(h1, sizeof h1, "X-BK-APP-CODE: dev-app");
        snprintf(h2, sizeof h2, "X-BK-APP-SECRET: %s", secret);
        hs = curl_slist_append(hs, h1);
        hs = curl_slist_append(hs, h2);
        hs = curl_slist_append(hs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    a.rc = curl_easy_perform(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    a.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return a;
}

#define IEOD_APP                                                                                             \
    "/auth_api/token/?app_code=dev-app&app_secret=dev-secret&env_name=test&grant_type=client_credentials"
#define IEOD_USER                                                                                            \
    "/auth_api/token/"                                                                                       \
    "?app_code=dev-app&app_secret=dev-secret&env_name=test&bk_client_ip=127.0.0.1&grant_type="               \
    "authorization_code&need_new_token=True&bk_token="

static json_t *data_of(const answer *a)
{
    json_t *j = json_loads(a->body, 0, NULL);
    json_t *d = json_incref(json_object_get(j, "data"));
    json_decref(j);
    return d;
}

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--app-code", "dev-app", "--app-secret", "dev-secret", "--user", "cred-a=alice",
                          "--ttl",      "3600",    "--overlap",    "1",          NULL};
    dev = devserver_start(args);
    return dev ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    devserver_stop(dev);
    return 0;
}

static int reset(void **state)
{
    (void)state;
    json_decref(devserver_post(dev, "/__dev/reset"));
    return 0;
}

static void test_ieod_tokens_and_refresh(void **state)
{
    (void)state;
    answer a = call(IEOD_APP, NULL, NULL);
    assert_int_equal(a.status, 200);
    json_t *d = data_of(&a);
    assert_string_equal(json_string_value(json_object_get(d, "refresh_token")), "");
    assert_true(strlen(json_string_value(json_object_get(d, "access_token"))) >= 32);
    json_decref(d);

    a = call(IEOD_USER "cred-a", NULL, NULL);
    d = data_of(&a);
    char at[128], rt[128], path[512];
    snprintf(at, sizeof at, "%s", json_string_value(json_object_get(d, "access_token")));
    snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(d, "refresh_token")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "identity"), "username")),
                        "alice");
    json_decref(d);
    assert_true(devserver_token_valid(dev, at));

    snprintf(
        path, sizeof path,
        "/auth_api/refresh_token/?grant_type=refresh_token&app_code=dev-app&env_name=test&refresh_token=%s",
        rt);
    a = call(path, NULL, NULL);
    d = data_of(&a);
    assert_non_null(d);
    assert_string_not_equal(json_string_value(json_object_get(d, "access_token")), at);
    json_decref(d);
    assert_true(devserver_token_valid(dev, at)); /* the overlap */
    usleep(1600 * 1000);
    assert_false(devserver_token_valid(dev, at)); /* over */
    a = call(path, NULL, NULL);                   /* single-use */
    assert_non_null(strstr(a.body, "\"result\":false"));
    assert_non_null(strstr(a.body, "already used"));
    assert_int_equal(devserver_counter(dev, "refresh"), 2);
    assert_int_equal(devserver_counter(dev, "refresh_failed"), 1);
    assert_int_equal(devserver_counter(dev, "total"), 4);
}

static void test_ieod_refusals(void **state)
{
    (void)state;
    answer a = call(IEOD_USER "not-a-login", NULL, NULL);
    assert_non_null(strstr(a.body, "\"result\":false"));
    a = call("/auth_api/token/"
             "?app_code=dev-app&app_secret=bad-secret-xyz&env_name=test&grant_type=client_credentials",
             NULL, NULL);
    assert_non_null(strstr(a.body, "\"result\":false"));
    assert_null(strstr(a.body, "bad-secret-xyz"));
    a = call(
        "/auth_api/token/?app_code=dev-app&app_secret=dev-secret&env_name=dev&grant_type=client_credentials",
        NULL, NULL);
    assert_non_null(strstr(a.body, "env_name"));
}

static void test_ee_protocol(void **state)
{
    (void)state;
    answer a = call("/api/v1/auth/access-tokens",
                    "{\"grant_type\": \"client_credentials\", \"id_provider\": \"client\"}", "dev-secret");
    assert_non_null(strstr(a.body, "\"code\":0"));
    a = call(
        "/api/v1/auth/access-tokens",
        "{\"grant_type\": \"authorization_code\", \"id_provider\": \"bk_login\", \"bk_token\": \"cred-a\"}",
        "dev-secret");
    json_t *d = data_of(&a);
    char body[256];
    snprintf(body, sizeof body, "{\"refresh_token\": \"%s\"}",
             json_string_value(json_object_get(d, "refresh_token")));
    json_decref(d);
    a = call("/api/v1/auth/access-tokens/refresh", body, "dev-secret");
    assert_non_null(strstr(a.body, "\"code\":0"));
    a = call("/api/v1/auth/access-tokens/refresh", body, "dev-secret");
    assert_non_null(strstr(a.body, "already used"));
    a = call("/api/v1/auth/access-tokens", "{\"grant_type\": \"client_credentials\"}", "wrong");
    assert_int_equal(a.status, 401);
    a = call("/api/v1/auth/access-tokens", "not json", "dev-secret");
    assert_int_equal(a.status, 400);
    json_t *j = devserver_get(dev, "/__dev/counters");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "by_protocol"), "ee")), 5);
    json_decref(j);
}

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
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        assert_int_equal(devserver_fault(dev, faults[i].kind, 2, 0), 0);
        for (int n = 0; n < 2; n++) {
            answer a = call(IEOD_APP, NULL, NULL);
            if (a.rc != faults[i].rc || a.status != faults[i].status)
                fail_msg("%s: curl %d status %ld", faults[i].kind, a.rc, a.status);
            if (faults[i].needle) assert_non_null(strstr(a.body, faults[i].needle));
        }
        answer ok = call(IEOD_APP, NULL, NULL); /* the third is normal again */
        assert_int_equal(ok.status, 200);
        assert_non_null(strstr(ok.body, "\"result\":true"));
    }
    assert_int_equal(devserver_counter(dev, "faulted"), 10);
    assert_int_equal(devserver_fault(dev, "slow", 1, 700), 0);
    answer a = call(IEOD_APP, NULL, NULL);
    assert_true(a.seconds >= 0.7);
    assert_non_null(strstr(a.body, "\"result\":true"));
    assert_int_equal(devserver_fault(dev, "no-such-fault", 1, 0), -1);
}

static void test_faulted_refresh_keeps_the_refresh_token(void **state)
{
    (void)state;
    answer a = call(IEOD_USER "cred-a", NULL, NULL);
    json_t *d = data_of(&a);
    char path[512];
    snprintf(
        path, sizeof path,
        "/auth_api/refresh_token/?grant_type=refresh_token&app_code=dev-app&env_name=test&refresh_token=%s",
        json_string_value(json_object_get(d, "refresh_token")));
    json_decref(d);
    assert_int_equal(devserver_fault(dev, "http500", 1, 0), 0);
    assert_int_equal(call(path, NULL, NULL).status, 500);
    a = call(path, NULL, NULL);
    assert_non_null(strstr(a.body, "\"result\":true"));
}

static void test_runtime_config_and_reset(void **state)
{
    (void)state;
    json_decref(devserver_post(dev, "/__dev/config?ttl=5"));
    answer a = call(IEOD_APP, NULL, NULL);
    json_t *d = data_of(&a);
    assert_true(json_integer_value(json_object_get(d, "expires_in")) <= 5);
    json_decref(d);
    json_decref(devserver_post(dev, "/__dev/config?ttl=3600"));
    assert_true(devserver_counter(dev, "total") > 0);
    json_decref(devserver_post(dev, "/__dev/reset"));
    assert_int_equal(devserver_counter(dev, "total"), 0);
    json_t *h = devserver_get(dev, "/__dev/health");
    assert_true(json_is_true(json_object_get(h, "ok")));
    json_decref(h);
}

static int run_status(const char *const *args)
{
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execv(BKOAUTH_DEVSERVER_PATH, (char *const *)args);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_command_line(void **state)
{
    (void)state;
    const char *remote[] = {BKOAUTH_DEVSERVER_PATH, "--listen", "0.0.0.0:0", NULL};
    assert_int_equal(run_status(remote), 2);
    const char *bad_user[] = {BKOAUTH_DEVSERVER_PATH, "--user", "nocredential", NULL};
    assert_int_equal(run_status(bad_user), 2);
    const char *unknown[] = {BKOAUTH_DEVSERVER_PATH, "--frobnicate", NULL};
    assert_int_equal(run_status(unknown), 2);
    const char *bad_ttl[] = {BKOAUTH_DEVSERVER_PATH, "--ttl", "soon", NULL};
    assert_int_equal(run_status(bad_ttl), 2);
    const char *help[] = {BKOAUTH_DEVSERVER_PATH, "--help", NULL};
    assert_int_equal(run_status(help), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ieod_tokens_and_refresh, reset),
        cmocka_unit_test_setup(test_ieod_refusals, reset),
        cmocka_unit_test_setup(test_ee_protocol, reset),
        cmocka_unit_test_setup(test_faults_for_exactly_n_calls, reset),
        cmocka_unit_test_setup(test_faulted_refresh_keeps_the_refresh_token, reset),
        cmocka_unit_test_setup(test_runtime_config_and_reset, reset),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
