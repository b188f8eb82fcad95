/* SPDX-License-Identifier: MIT */
/* test_examples.c - the example programs, run as a user runs them.
 *
 * bkoauth-mhd-app is started on a free loopback port (--port 0 --port-file) and hit with real
 * HTTP requests (libcurl) carrying X-Bkapi-Jwt tokens made at test time: every refusal reason
 * gets HTTP 200 and the apigw_required body; an accepted token gets the app and the user. Its
 * /app-token and /me pages, bkoauth-cgi-app (under a CGI environment) and
 * bkoauth-fastcgi-params get real tokens from bkoauth-devserver, and show them masked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testjwt.h"
#include "teststore.h"

#define APP_CODE "example-app"
#define APP_SECRET "example-secret-0123456789"
#define HEADER_RS256 "{\"alg\": \"RS256\", \"typ\": \"JWT\"}"
#define EXAMPLES_DIR BKOAUTH_BINARY_DIR "/examples"

typedef struct fixture {
    devserver *dev;
    testjwt_key *key, *other;
    char *pem;
    char db_url[512];
    char dir[64];
    pid_t app;
    char base[64];     /* http://127.0.0.1:PORT */
    bkoauth_client *c; /* the test's own view of the same store */
} fixture;

/* The settings every example gets, as environment variables. */
static void example_env(const fixture *f)
{
    setenv("OAUTH_API_URL", f->dev->url, 1);
    setenv("APP_CODE", APP_CODE, 1);
    setenv("SECRET_KEY", APP_SECRET, 1);
    setenv("OAUTH_COOKIES_PARAMS", "{'bk_token': 'bk_token'}", 1);
    setenv("BKOAUTH_DATABASE_URL", f->db_url, 1);
    setenv("APIGW_PUBLIC_KEY", f->pem, 1);
    setenv("BKOAUTH_LOG_LEVEL", "warning", 1);
    setenv("EXPIRES_SECONDS", "60", 1); /* tokens live an hour (--ttl): fresh, reused, never refetched */
    unsetenv("BKOAUTH_CONFIG");
}

static int example_exists(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, name);
    return access(path, X_OK) == 0;
}

static pid_t start_app(fixture *f)
{
    char port_file[128], path[1024];
    snprintf(port_file, sizeof port_file, "%s/port", f->dir);
    snprintf(path, sizeof path, "%s/bkoauth-mhd-app", EXAMPLES_DIR);
    unlink(port_file);
    pid_t pid = fork();
    if (pid == 0) {
        execl(path, path, "--port", "0", "--port-file", port_file, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) return -1;
    for (int i = 0; i < 1000; i++) { /* up to 10 s */
        FILE *pf = fopen(port_file, "r");
        unsigned port = 0;
        if (pf != NULL) {
            int n = fscanf(pf, "%u", &port);
            fclose(pf);
            if (n == 1 && port > 0 && port < 65536) {
                snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", port);
                return pid;
            }
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "bkoauth-mhd-app exited before listening (status %d)\n", status);
            return -1;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int setup(void **state)
{
    if (!example_exists("bkoauth-mhd-app") || !example_exists("bkoauth-cgi-app")) {
        fprintf(stderr, "the examples are not built (BKOAUTH_BUILD_EXAMPLES=OFF?)\n");
        return -1;
    }
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bkoauth-examples-XXXXXX");
    if (mkdtemp(f->dir) == NULL) return -1;
    const char *args[] = {
        "--app-code", APP_CODE,       "--app-secret", APP_SECRET, "--user", "cred-alice=alice",
        "--user",     "cred-bob=bob", "--ttl",        "3600",     NULL};
    f->dev = devserver_start(args);
    f->key = testjwt_key_new(2048);
    f->other = testjwt_key_new(2048);
    if (f->dev == NULL || f->key == NULL || f->other == NULL) return -1;
    f->pem = testjwt_public_pem(f->key, 0);
    if (f->pem == NULL || teststore_fresh_url("examples", f->db_url, sizeof f->db_url) == NULL) return -1;
    example_env(f);
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_error e;
    if (cfg == NULL || bkoauth_config_load_env(cfg, &e) != BKOAUTH_OK ||
        (f->c = bkoauth_client_new(cfg, &e)) == NULL) {
        fprintf(stderr, "test client: %s\n", e.message);
        bkoauth_config_free(cfg);
        return -1;
    }
    bkoauth_config_free(cfg);
    f->app = start_app(f);
    if (f->app <= 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f == NULL) return 0; /* the group set-up failed: nothing to undo */
    int status = 0;
    if (f->app > 0) {
        kill(f->app, SIGTERM);
        waitpid(f->app, &status, 0);
    }
    bkoauth_client_free(f->c);
    devserver_stop(f->dev);
    testjwt_key_free(f->key);
    testjwt_key_free(f->other);
    free(f->pem);
    char path[128];
    snprintf(path, sizeof path, "%s/port", f->dir);
    unlink(path);
    rmdir(f->dir);
    teststore_cleanup();
    free(f);
    /* the service stops cleanly on SIGTERM */
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

typedef struct http_answer {
    long status;
    char *body;
    size_t len;
    char content_type[128];
} http_answer;

static size_t http_collect(char *data, size_t size, size_t n, void *p)
{
    http_answer *a = p;
    char *b = realloc(a->body, a->len + size * n + 1);
    if (b == NULL) return 0;
    memcpy(b + a->len, data, size * n);
    a->len += size * n;
    b[a->len] = '\0';
    a->body = b;
    return size * n;
}

/* GET base+path with an optional X-Bkapi-Jwt and Cookie. */
static http_answer http_get(const fixture *f, const char *path, const char *jwt, const char *cookie)
{
    http_answer a = {0};
    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    char url[512];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    struct curl_slist *headers = NULL;
    char *jwt_header = NULL;
    if (jwt != NULL) {
        jwt_header = malloc(strlen(jwt) + 16);
        assert_non_null(jwt_header);
        sprintf(jwt_header, "X-Bkapi-Jwt: %s", jwt);
        headers = curl_slist_append(headers, jwt_header);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (cookie != NULL) curl_easy_setopt(curl, CURLOPT_COOKIE, cookie);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
    char *ct = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(a.content_type, sizeof a.content_type, "%s", ct ? ct : "");
    curl_slist_free_all(headers);
    free(jwt_header);
    curl_easy_cleanup(curl);
    if (a.body == NULL) a.body = calloc(1, 1);
    return a;
}

/* The answer as JSON; fails the test when it is not a JSON object. */
static json_t *answer_json(const http_answer *a)
{
    json_error_t jerr;
    json_t *v = json_loads(a->body, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(v)) fail_msg("not a JSON object (HTTP %ld): %.300s", a->status, a->body);
    return v;
}

/* A refusal of the guard: HTTP 200, {"result": false, "data": null, "message": reason...} */
static void expect_refusal(const fixture *f, const char *path, const char *jwt, const char *reason)
{
    http_answer a = http_get(f, path, jwt, NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.content_type, "application/json");
    json_t *v = answer_json(&a);
    assert_int_equal(json_object_size(v), 3);
    assert_true(json_is_false(json_object_get(v, "result")));
    assert_true(json_is_null(json_object_get(v, "data")));
    const char *message = json_string_value(json_object_get(v, "message"));
    assert_non_null(message);
    if (strncmp(message, reason, strlen(reason)) != 0)
        fail_msg("%s: expected \"%s...\", got \"%s\"", path, reason, message);
    /* Django's layout, byte for byte */
    static const char django[] = "{\"result\": false, \"data\": null, \"message\": \"";
    assert_true(strncmp(a.body, django, sizeof django - 1) == 0);
    assert_string_equal(a.body + strlen(a.body) - 2, "\"}");
    json_decref(v);
    free(a.body);
}

static char *token_for(const testjwt_key *key, const char *iss, const char *user, long long exp,
                       long long nbf)
{
    char *payload = testjwt_payload(iss, "gw-app", user, exp, nbf);
    char *t = testjwt_sign_rs256(key, HEADER_RS256, payload);
    assert_non_null(t);
    free(payload);
    return t;
}

/* ---- the guard -------------------------------------------------------------------------------- */

static void test_api_accepts_gateway_token(void **state)
{
    fixture *f = *state;
    long long exp = (long long)time(NULL) + 300;
    char *t = token_for(f->key, "APIGW", "alice", exp, 0);
    http_answer a = http_get(f, "/api/hello", t, NULL);
    assert_int_equal(a.status, 200);
    json_t *v = answer_json(&a);
    assert_true(json_is_true(json_object_get(v, "result")));
    json_t *data = json_object_get(v, "data");
    assert_string_equal(json_string_value(json_object_get(data, "app_code")), "gw-app");
    assert_true(json_is_true(json_object_get(data, "app_verified")));
    assert_string_equal(json_string_value(json_object_get(data, "username")), "alice");
    assert_true(json_is_true(json_object_get(data, "user_verified")));
    assert_int_equal(json_integer_value(json_object_get(data, "expires")), exp);
    assert_string_equal(json_string_value(json_object_get(data, "path")), "/api/hello");
    json_decref(v);
    free(a.body);
    free(t);
}

static void test_api_refusals(void **state)
{
    fixture *f = *state;
    long long now = (long long)time(NULL);
    expect_refusal(f, "/api/hello", NULL, "X-Bkapi-Jwt header is missing or empty");
    expect_refusal(f, "/api/hello", "", "X-Bkapi-Jwt header is missing or empty");

    char *t = token_for(f->key, "APIGW", "alice", now - 3600, 0);
    expect_refusal(f, "/api/hello", t, "token expired");
    free(t);
    t = token_for(f->key, "APIGW", "alice", now + 7200, now + 3600);
    expect_refusal(f, "/api/hello", t, "token not yet valid");
    free(t);
    t = token_for(f->key, "evil", "alice", now + 300, 0);
    expect_refusal(f, "/api/hello", t, "wrong issuer");
    free(t);
    t = token_for(f->key, NULL, "alice", now + 300, 0);
    expect_refusal(f, "/api/hello", t, "missing issuer");
    free(t);
    t = token_for(f->other, "APIGW", "alice", now + 300, 0);
    expect_refusal(f, "/api/hello", t, "bad signature");
    free(t);

    char *payload = testjwt_payload("APIGW", "gw-app", "alice", now + 300, 0);
    t = testjwt_unsigned("{\"alg\": \"none\", \"typ\": \"JWT\"}", payload, "");
    expect_refusal(f, "/api/hello", t, "algorithm not allowed");
    free(t);
    t = testjwt_sign_hs256(f->pem, strlen(f->pem), "{\"alg\": \"HS256\", \"typ\": \"JWT\"}", payload);
    expect_refusal(f, "/api/hello", t, "algorithm not allowed");
    free(t);

    /* alice's signature over an admin payload */
    char *good = testjwt_sign_rs256(f->key, HEADER_RS256, payload);
    char *admin_payload = testjwt_payload("APIGW", "gw-app", "admin", now + 300, 0);
    char *admin = testjwt_sign_rs256(f->other, HEADER_RS256, admin_payload);
    char mixed[4096];
    snprintf(mixed, sizeof mixed, "%.*s%.*s%s", (int)(strchr(good, '.') - good), good,
             (int)(strrchr(admin, '.') - strchr(admin, '.')), strchr(admin, '.'), strrchr(good, '.'));
    expect_refusal(f, "/api/hello", mixed, "bad signature");
    free(good);
    free(admin);
    free(admin_payload);
    free(payload);

    expect_refusal(f, "/api/hello", "garbage", "malformed token");
    expect_refusal(f, "/api/hello", "a.b.c", "malformed token");
    /* a 70 KiB header value */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'A', big);
    huge[big / 3] = '.';
    huge[2 * big / 3] = '.';
    huge[big] = '\0';
    expect_refusal(f, "/api/hello", huge, "malformed token");
    free(huge);
    /* the service still answers after all that */
    t = token_for(f->key, "APIGW", "bob", now + 300, 0);
    http_answer a = http_get(f, "/api/still-up", t, NULL);
    json_t *v = answer_json(&a);
    assert_true(json_is_true(json_object_get(v, "result")));
    json_decref(v);
    free(a.body);
    free(t);
}

/* ---- pages that get tokens -------------------------------------------------------------------- */

static void test_app_token_page(void **state)
{
    fixture *f = *state;
    http_answer a = http_get(f, "/app-token", NULL, NULL);
    assert_int_equal(a.status, 200);
    json_t *v = answer_json(&a);
    assert_true(json_is_true(json_object_get(v, "result")));
    /* the token the page got is the one now saved; the page shows it masked only */
    bkoauth_token *saved = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_app_access_token(f->c, &saved, &e), BKOAUTH_OK);
    char masked[64];
    const char *shown = json_string_value(json_object_get(json_object_get(v, "data"), "access_token"));
    assert_non_null(shown);
    assert_string_equal(shown, bkoauth_mask(saved->access_token, masked, sizeof masked));
    assert_null(strstr(a.body, saved->access_token));
    assert_null(json_string_value(json_object_get(json_object_get(v, "data"), "user_id")));
    bkoauth_token_free(saved);
    json_decref(v);
    free(a.body);
}

static void test_me_page(void **state)
{
    fixture *f = *state;
    long long now = (long long)time(NULL);
    char *t = token_for(f->key, "APIGW", "alice", now + 300, 0);

    /* the gateway's user with her login cookie: her token, fetched and saved */
    http_answer a = http_get(f, "/me?lang=en", t, "bk_token=cred-alice; other=1");
    json_t *v = answer_json(&a);
    if (!json_is_true(json_object_get(v, "result"))) fail_msg("/me: HTTP %ld %s", a.status, a.body);
    json_t *data = json_object_get(v, "data");
    assert_string_equal(json_string_value(json_object_get(data, "user_id")), "alice");
    bkoauth_token *saved = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &saved, &e), BKOAUTH_OK);
    char masked[64];
    assert_string_equal(json_string_value(json_object_get(data, "access_token")),
                        bkoauth_mask(saved->access_token, masked, sizeof masked));
    assert_null(strstr(a.body, saved->access_token));
    bkoauth_token_free(saved);
    json_decref(v);
    free(a.body);

    /* the credential from the query string works too (OAUTH_COOKIES_PARAMS: cookie, then query) */
    char *tb = token_for(f->key, "APIGW", "bob", now + 300, 0);
    a = http_get(f, "/me?bk_token=cred-bob", tb, NULL);
    v = answer_json(&a);
    if (!json_is_true(json_object_get(v, "result"))) fail_msg("/me by query: HTTP %ld %s", a.status, a.body);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "data"), "user_id")), "bob");
    json_decref(v);
    free(a.body);
    free(tb);

    /* no credential for a user without a saved token: the SSM refuses, the page says so */
    char *tc = token_for(f->key, "APIGW", "carol", now + 300, 0);
    a = http_get(f, "/me", tc, NULL);
    v = answer_json(&a);
    assert_true(json_is_false(json_object_get(v, "result")));
    assert_true(a.status != 200); /* 502 when the SSM refused, 403 when refused before the call */
    assert_null(json_string_value(json_object_get(v, "data")));
    json_decref(v);
    free(a.body);
    free(tc);

    /* /me is behind the guard */
    expect_refusal(f, "/me", NULL, "X-Bkapi-Jwt header is missing or empty");
    char *te = token_for(f->key, "APIGW", "alice", now - 3600, 0);
    expect_refusal(f, "/me", te, "token expired");
    free(te);
    free(t);
}

/* ---- CGI and FastCGI-style programs ----------------------------------------------------------- */

/* Runs an example with extra environment (NAME=VALUE, NULL-terminated; "NAME" alone unsets)
 * and arguments; returns its stdout and sets *exit_status. */
static char *run_example(const char *name, const char *const *env, const char *const *args, int *exit_status)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, name);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        for (int i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq == NULL) {
                unsetenv(env[i]);
            } else {
                char key[128];
                snprintf(key, sizeof key, "%.*s", (int)(eq - env[i]), env[i]);
                setenv(key, eq + 1, 1);
            }
        }
        const char *argv[16] = {path};
        for (int i = 0; args && args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    assert_non_null(out);
    ssize_t n;
    while ((n = read(fds[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 >= cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[len] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    return out;
}

static void test_cgi_app(void **state)
{
    fixture *f = *state;
    int status;
    const char *alice[] = {"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET",
                           "REMOTE_USER=alice",         "HTTP_COOKIE=bk_token=cred-alice",
                           "REMOTE_ADDR=10.1.2.3",      "QUERY_STRING=",
                           "HTTP_X_FORWARDED_FOR",      NULL};
    char *out = run_example("bkoauth-cgi-app", alice, NULL, &status);
    assert_int_equal(status, 0);
    if (strncmp(out, "Status: 200 OK\r\n", 16) != 0 || strstr(out, "status: ok\n") == NULL)
        fail_msg("cgi_app: %s", out);
    assert_non_null(strstr(out, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nuser: alice\n"));
    assert_non_null(strstr(out, "expires_soon: no\n"));
    bkoauth_token *saved = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "alice", &saved, &e), BKOAUTH_OK);
    char masked[64], line[128];
    snprintf(line, sizeof line, "access_token: %s\n",
             bkoauth_mask(saved->access_token, masked, sizeof masked));
    assert_non_null(strstr(out, line));
    assert_null(strstr(out, saved->access_token));
    bkoauth_token_free(saved);
    free(out);

    /* anonymous: 401 and why */
    const char *anon[] = {"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET", "REMOTE_USER",
                          "HTTP_COOKIE=bk_token=cred-alice", NULL};
    out = run_example("bkoauth-cgi-app", anon, NULL, &status);
    assert_int_equal(status, 0);
    assert_true(strncmp(out, "Status: 401 Unauthorized\r\n", 26) == 0);
    assert_non_null(strstr(out, "not logged in"));
    free(out);

    /* a user whose login credential the SSM does not know: no token, and the page says why */
    const char *dave[] = {"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET",
                          "REMOTE_USER=dave",          "HTTP_COOKIE=bk_token=unknown-credential",
                          "REMOTE_ADDR=10.1.2.3",      NULL};
    out = run_example("bkoauth-cgi-app", dave, NULL, &status);
    assert_int_equal(status, 0);
    if (strstr(out, "user: dave\nstatus: no token\n") == NULL) fail_msg("cgi_app for dave: %s", out);
    free(out);

    /* broken settings: a 500 page naming the setting */
    const char *broken[] = {"REMOTE_USER=alice", "EXPIRES_SECONDS=soon", NULL};
    out = run_example("bkoauth-cgi-app", broken, NULL, &status);
    assert_int_equal(status, 0);
    assert_true(strncmp(out, "Status: 500 Internal Server Error\r\n", 35) == 0);
    assert_non_null(strstr(out, "EXPIRES_SECONDS"));
    free(out);
}

static void test_fastcgi_params(void **state)
{
    fixture *f = *state;
    if (!example_exists("bkoauth-fastcgi-params")) fail_msg("bkoauth-fastcgi-params is not built");
    int status;
    const char *args[] = {"REMOTE_USER=bob", "HTTP_COOKIE=bk_token=cred-bob", "REMOTE_ADDR=10.0.0.7", NULL};
    char *out = run_example("bkoauth-fastcgi-params", NULL, args, &status);
    if (status != 0) fail_msg("fastcgi_params exited %d: %s", status, out);
    bkoauth_token *saved = NULL;
    bkoauth_error e;
    assert_int_equal(bkoauth_get_access_token_by_user(f->c, "bob", &saved, &e), BKOAUTH_OK);
    char masked[64], expected[256];
    snprintf(expected, sizeof expected, "user=bob access_token=%s env=%s ",
             bkoauth_mask(saved->access_token, masked, sizeof masked), saved->env_name);
    if (strncmp(out, expected, strlen(expected)) != 0)
        fail_msg("fastcgi_params printed \"%s\", expected \"%s...\"", out, expected);
    bkoauth_token_free(saved);
    free(out);
    /* anonymous (no REMOTE_USER in the table): refused, exit 1 */
    const char *anon[] = {"HTTP_COOKIE=bk_token=cred-bob", NULL};
    out = run_example("bkoauth-fastcgi-params", NULL, anon, &status);
    assert_int_equal(status, 1);
    free(out);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_accepts_gateway_token),
        cmocka_unit_test(test_api_refusals),
        cmocka_unit_test(test_app_token_page),
        cmocka_unit_test(test_me_page),
        cmocka_unit_test(test_cgi_app),
        cmocka_unit_test(test_fastcgi_params),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
