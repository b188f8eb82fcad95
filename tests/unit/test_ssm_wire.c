/* SPDX-License-Identifier: MIT */
/* test_ssm_wire.c - the SSM layer on the wire: an in-test libmicrohttpd server on 127.0.0.1
 * records every request byte for byte (method, path, raw query in order, headers, body) and
 * answers with a scripted status and body. Asserts both protocols exactly, the grant parser,
 * every failure kind and its message, connection reuse and concurrent use. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ssm/ssm_int.h"

#define APP_SECRET "S3cr3t+Secret/Value=xyz"
#define APP_SECRET_ENC "S3cr3t%2BSecret%2FValue%3Dxyz"
#define REFRESH_TOKEN "RTok+en/refresh=0123456789"
#define REFRESH_TOKEN_ENC "RTok%2Ben%2Frefresh%3D0123456789"
#define OK_IEOD                                                                                              \
    "{\"result\": true, \"code\": 0, \"message\": \"\", \"data\": {\"access_token\": \"AT-1234567890\", "    \
    "\"expires_in\": 3600, \"refresh_token\": \"RT-new\", \"scope\": \"user_info\"}}"
#define OK_EE                                                                                                \
    "{\"code\": 0, \"message\": \"ok\", \"data\": {\"access_token\": \"AT-ee-12345\", \"expires_in\": "      \
    "7200, "                                                                                                 \
    "\"refresh_token\": \"RT-ee\"}}"

/* ---- the recording server ---------------------------------------------------------------- */

enum { MODE_NORMAL, MODE_SLEEP, MODE_TRUNCATE, MODE_HUGE_CHUNKED, MODE_ECHO };

typedef struct rec {
    char *method;
    char *uri;   /* raw, as sent */
    char *path;  /* before '?' */
    char *query; /* raw after '?', "" when none */
    char *content_type, *app_code_hdr, *app_secret_hdr;
    char *body;
    size_t body_len;
} rec;

#define MAX_RECS 256

typedef struct server {
    struct MHD_Daemon *daemon;
    unsigned short port;
    pthread_mutex_t lock;
    int status;
    const char *body;
    int mode;
    int sleep_ms;
    rec recs[MAX_RECS];
    size_t nrecs;
    int connections;
} server;

static server srv;

typedef struct reqctx {
    char *uri;
    char *body;
    size_t len;
    int started;
} reqctx;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)con;
    reqctx *rc = calloc(1, sizeof *rc);
    if (rc != NULL) rc->uri = strdup(uri);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    reqctx *rc = *req_cls;
    if (rc != NULL) {
        free(rc->uri);
        free(rc->body);
        free(rc);
    }
    *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)con;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&srv.lock);
        srv.connections++;
        pthread_mutex_unlock(&srv.lock);
    }
}

static char *dup_or_null(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

static ssize_t truncating_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    const char *body = cls;
    size_t n = strlen(body);
    if (pos >= n) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t k = n - (size_t)pos < max ? n - (size_t)pos : max;
    memcpy(buf, body + pos, k);
    return (ssize_t)k;
}

static ssize_t huge_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= 3u * 1024 * 1024) return MHD_CONTENT_READER_END_OF_STREAM;
    memset(buf, ' ', max);
    if (pos == 0 && max > 0) buf[0] = '{';
    return (ssize_t)max;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    reqctx *rc = *req_cls;
    if (rc == NULL) return MHD_NO;
    if (*upload_data_size > 0) {
        char *p = realloc(rc->body, rc->len + *upload_data_size + 1);
        if (p == NULL) return MHD_NO;
        memcpy(p + rc->len, upload_data, *upload_data_size);
        rc->len += *upload_data_size;
        p[rc->len] = '\0';
        rc->body = p;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!rc->started) {
        rc->started = 1; /* the first call carries the headers only */
        return MHD_YES;
    }

    pthread_mutex_lock(&srv.lock);
    int mode = srv.mode, status = srv.status, sleep_ms = srv.sleep_ms;
    const char *body = srv.body;
    if (srv.nrecs < MAX_RECS) {
        rec *r = &srv.recs[srv.nrecs++];
        r->method = strdup(method);
        r->uri = dup_or_null(rc->uri);
        const char *q = rc->uri != NULL ? strchr(rc->uri, '?') : NULL;
        r->path = q != NULL ? strndup(rc->uri, (size_t)(q - rc->uri)) : dup_or_null(rc->uri);
        r->query = strdup(q != NULL ? q + 1 : "");
        r->content_type = dup_or_null(MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type"));
        r->app_code_hdr = dup_or_null(MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-BK-APP-CODE"));
        r->app_secret_hdr = dup_or_null(MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-BK-APP-SECRET"));
        r->body = rc->body != NULL ? strndup(rc->body, rc->len) : strdup("");
        r->body_len = rc->len;
    }
    pthread_mutex_unlock(&srv.lock);

    struct MHD_Response *resp = NULL;
    char echo[512];
    if (mode == MODE_SLEEP) usleep((useconds_t)sleep_ms * 1000);
    if (mode == MODE_TRUNCATE) {
        resp =
            MHD_create_response_from_callback(strlen(body) + 100, 64, truncating_reader, (void *)body, NULL);
    } else if (mode == MODE_HUGE_CHUNKED) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, huge_reader, NULL, NULL);
    } else if (mode == MODE_ECHO) {
        /* access_token = "tok-" + the raw bk_token parameter */
        const char *p = rc->uri != NULL ? strstr(rc->uri, "bk_token=") : NULL;
        size_t n = p != NULL ? strcspn(p + 9, "&") : 0;
        snprintf(echo, sizeof echo,
                 "{\"result\": true, \"data\": {\"access_token\": \"tok-%.*s\", \"expires_in\": 60}}", (int)n,
                 p != NULL ? p + 9 : "");
        resp = MHD_create_response_from_buffer(strlen(echo), echo, MHD_RESPMEM_MUST_COPY);
    } else {
        resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    }
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void rec_free(rec *r)
{
    free(r->method);
    free(r->uri);
    free(r->path);
    free(r->query);
    free(r->content_type);
    free(r->app_code_hdr);
    free(r->app_secret_hdr);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void script(int status, const char *body, int mode)
{
    pthread_mutex_lock(&srv.lock);
    srv.status = status;
    srv.body = body;
    srv.mode = mode;
    pthread_mutex_unlock(&srv.lock);
}

static int server_setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.lock, NULL);
    srv.status = 200;
    srv.body = OK_IEOD;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                                  NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                  MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                  on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (srv.daemon == NULL) return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) return -1;
    srv.port = info->port;
    return 0;
}

static int server_teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(srv.daemon);
    for (size_t i = 0; i < srv.nrecs; i++)
        rec_free(&srv.recs[i]);
    pthread_mutex_destroy(&srv.lock);
    return 0;
}

/* ---- settings, logger, helpers ----------------------------------------------------------- */

typedef struct logcap {
    pthread_mutex_t lock;
    char text[16384];
    size_t len;
    int warnings;
} logcap;

static logcap logs;

static void log_capture(void *ctx, int level, const char *message)
{
    logcap *l = ctx;
    pthread_mutex_lock(&l->lock);
    if (level == BKOAUTH_LOG_WARNING) l->warnings++;
    int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%d %s\n", level, message);
    if (n > 0 && l->len + (size_t)n < sizeof l->text) l->len += (size_t)n;
    pthread_mutex_unlock(&l->lock);
}

static bk_logger logger = {log_capture, &logs, BKOAUTH_LOG_DEBUG};

static char url_buf[128];

static void settings_make(bk_settings *s, int protocol)
{
    memset(s, 0, sizeof *s);
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%u", (unsigned)srv.port);
    s->api_url = url_buf;
    s->app_code = (char *)"bkapp";
    s->app_secret = (char *)APP_SECRET;
    s->oauth_params_json = (char *)"{}";
    snprintf(s->env_name, sizeof s->env_name, "test");
    s->expires_seconds = 86400;
    s->need_new_token = 1;
    s->protocol = protocol;
    s->timeout_ms = 5000;
    s->tls_verify = 1;
    s->log_level = BKOAUTH_LOG_DEBUG;
    memset(logs.text, 0, sizeof logs.text);
    logs.len = 0;
    logs.warnings = 0;
}

static rec *last_rec(void)
{
    assert_true(srv.nrecs > 0);
    return &srv.recs[srv.nrecs - 1];
}

/* Every failure message: non-empty, TokenAPIError, never a secret. */
static void assert_clean_failure(bkoauth_code rc, const bkoauth_error *err, const ssm_grant *g)
{
    assert_int_equal(rc, BKOAUTH_E_TOKEN_API);
    assert_int_equal(err->code, BKOAUTH_E_TOKEN_API);
    assert_true(err->message[0] != '\0');
    assert_null(strstr(err->message, APP_SECRET));
    assert_null(strstr(err->message, APP_SECRET_ENC));
    assert_null(strstr(err->message, REFRESH_TOKEN));
    assert_null(strstr(err->message, REFRESH_TOKEN_ENC));
    assert_null(strstr(logs.text, APP_SECRET));
    assert_null(strstr(logs.text, APP_SECRET_ENC));
    assert_null(strstr(logs.text, REFRESH_TOKEN_ENC));
    assert_null(g->access_token);
    assert_null(g->refresh_token);
    assert_null(g->scope);
    assert_int_equal(g->expires_in, 0);
}

static void assert_has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) fail_msg("expected \"%s\" in: %s", needle, hay);
}

/* One APP call of protocol against the server with the current script. */
static bkoauth_code call_app(bk_settings *s, ssm_grant *g, bkoauth_error *err)
{
    bkoauth_error e2;
    ssm_client *c = ssm_new(s, &logger, &e2);
    assert_non_null(c);
    bkoauth_code rc = ssm_fetch_app(c, NULL, g, err);
    ssm_free(c);
    return rc;
}

static bkoauth_code call_refresh(bk_settings *s, ssm_grant *g, bkoauth_error *err)
{
    bkoauth_error e2;
    ssm_client *c = ssm_new(s, &logger, &e2);
    assert_non_null(c);
    bkoauth_code rc = ssm_refresh(c, "prod", REFRESH_TOKEN, g, err);
    ssm_free(c);
    return rc;
}

/* ---- ieod on the wire ------------------------------------------------------------------- */

static void test_ieod_app(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    ssm_grant g;
    bkoauth_error err;
    assert_int_equal(call_app(&s, &g, &err), BKOAUTH_OK);
    assert_int_equal(err.code, BKOAUTH_OK);
    rec *r = last_rec();
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->path, "/auth_api/token/");
    assert_string_equal(r->query, "app_code=bkapp&app_secret=" APP_SECRET_ENC
                                  "&env_name=test&grant_type=client_credentials&need_new_token=True");
    assert_int_equal(r->body_len, 0);
    assert_null(r->app_secret_hdr);
    assert_string_equal(g.access_token, "AT-1234567890");
    assert_string_equal(g.refresh_token, "RT-new");
    assert_string_equal(g.scope, "user_info");
    assert_int_equal(g.expires_in, 3600);
    ssm_grant_clear(&g);
    assert_null(g.access_token);

    /* need_new_token False, env_name given */
    s.need_new_token = 0;
    bkoauth_error e2;
    ssm_client *c = ssm_new(&s, &logger, &e2);
    assert_non_null(c);
    assert_int_equal(ssm_fetch_app(c, "prod", &g, &err), BKOAUTH_OK);
    ssm_free(c);
    assert_string_equal(last_rec()->query,
                        "app_code=bkapp&app_secret=" APP_SECRET_ENC
                        "&env_name=prod&grant_type=client_credentials&need_new_token=False");
    ssm_grant_clear(&g);
    /* the debug line: method, path, status; never the query */
    assert_has(logs.text, "GET /auth_api/token/ -> HTTP 200");
    assert_null(strstr(logs.text, "app_secret"));
}

static void test_ieod_user_order_and_encoding(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    bk_kv params[] = {{(char *)"extra", (char *)"a b&c=d"},
                      {(char *)"bk_token", (char *)"from-params"},
                      {(char *)"num", (char *)"1"},
                      {(char *)"flag", (char *)"True"}};
    s.oauth_params.items = params;
    s.oauth_params.count = 4;
    bk_kv cred[] = {{(char *)"bk_token", (char *)"tok en/\xC3\xA9+%"}, {(char *)"uin", (char *)"836324475"}};
    bk_kvlist creds = {cred, 2};
    ssm_grant g;
    bkoauth_error err;
    bkoauth_error e2;
    ssm_client *c = ssm_new(&s, &logger, &e2);
    assert_non_null(c);
    assert_int_equal(ssm_fetch_user(c, "prod", &creds, "10.0.0.1, 10.0.0.2", &g, &err), BKOAUTH_OK);
    rec *r = last_rec();
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->path, "/auth_api/token/");
    assert_string_equal(r->query, "app_code=bkapp&app_secret=" APP_SECRET_ENC
                                  "&env_name=prod&bk_client_ip=10.0.0.1%2C%2010.0.0.2"
                                  "&grant_type=authorization_code&need_new_token=True"
                                  "&extra=a%20b%26c%3Dd&num=1&flag=True"
                                  "&bk_token=tok%20en%2F%C3%A9%2B%25&uin=836324475");
    ssm_grant_clear(&g);

    /* no credentials, no client ip: bk_client_ip is sent empty */
    s.oauth_params.count = 0;
    assert_int_equal(ssm_fetch_user(c, NULL, NULL, NULL, &g, &err), BKOAUTH_OK);
    assert_string_equal(last_rec()->query, "app_code=bkapp&app_secret=" APP_SECRET_ENC
                                           "&env_name=test&bk_client_ip=&grant_type=authorization_code"
                                           "&need_new_token=True");
    ssm_grant_clear(&g);
    ssm_free(c);
}

static void test_ieod_refresh(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    ssm_grant g;
    bkoauth_error err;
    assert_int_equal(call_refresh(&s, &g, &err), BKOAUTH_OK);
    rec *r = last_rec();
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->path, "/auth_api/refresh_token/");
    assert_string_equal(
        r->query, "grant_type=refresh_token&app_code=bkapp&env_name=prod&refresh_token=" REFRESH_TOKEN_ENC
                  "&need_new_token=True");
    assert_null(strstr(r->query, "app_secret"));
    assert_string_equal(g.refresh_token, "RT-new");
    ssm_grant_clear(&g);
    /* the ieod refresh does not need the secret */
    s.app_secret = NULL;
    assert_int_equal(call_refresh(&s, &g, &err), BKOAUTH_OK);
    ssm_grant_clear(&g);
}

/* ---- ee on the wire ---------------------------------------------------------------------- */

static void test_ee_app(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_EE);
    script(200, OK_EE, MODE_NORMAL);
    ssm_grant g;
    bkoauth_error err;
    assert_int_equal(call_app(&s, &g, &err), BKOAUTH_OK);
    rec *r = last_rec();
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/api/v1/auth/access-tokens");
    assert_string_equal(r->query, "");
    assert_string_equal(r->content_type, "application/json");
    assert_string_equal(r->app_code_hdr, "bkapp");
    assert_string_equal(r->app_secret_hdr, APP_SECRET);
    assert_string_equal(r->body, "{\"grant_type\": \"client_credentials\", \"id_provider\": \"client\"}");
    assert_string_equal(g.access_token, "AT-ee-12345");
    assert_string_equal(g.refresh_token, "RT-ee");
    assert_string_equal(g.scope, "");
    assert_int_equal(g.expires_in, 7200);
    ssm_grant_clear(&g);
}

static void test_ee_user_params_and_credentials(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_EE);
    s.oauth_params_json = (char *)"{\"extra\": \"x\", \"bk_token\": \"from-params\", \"n\": 5, \"f\": true, "
                                  "\"r\": 1.5, \"o\": {\"k\": [1, null]}}";
    bk_kv cred[] = {{(char *)"bk_token", (char *)"tok\xC3\xA9n\"1\x7f"},
                    {(char *)"bad", (char *)"a\xFF"},
                    {(char *)"lit", (char *)"x\\uABCD\xF0\x9F\x98\x80"}};
    bk_kvlist creds = {cred, 3};
    script(200, OK_EE, MODE_NORMAL);
    ssm_grant g;
    bkoauth_error err;
    bkoauth_error e2;
    ssm_client *c = ssm_new(&s, &logger, &e2);
    assert_non_null(c);
    assert_int_equal(ssm_fetch_user(c, "prod", &creds, "10.1.1.1", &g, &err), BKOAUTH_OK);
    rec *r = last_rec();
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/api/v1/auth/access-tokens");
    assert_string_equal(r->content_type, "application/json");
    assert_string_equal(r->app_code_hdr, "bkapp");
    assert_string_equal(r->app_secret_hdr, APP_SECRET);
    assert_string_equal(r->body,
                        "{\"grant_type\": \"authorization_code\", \"id_provider\": \"bk_login\", "
                        "\"extra\": \"x\", \"n\": 5, \"f\": true, \"r\": 1.5, \"o\": {\"k\": [1, null]}, "
                        "\"bk_token\": \"tok\\u00e9n\\\"1\\u007f\", \"bad\": \"a\\ufffd\", "
                        "\"lit\": \"x\\\\uABCD\\ud83d\\ude00\"}");
    ssm_grant_clear(&g);

    /* refresh */
    assert_int_equal(ssm_refresh(c, "prod", REFRESH_TOKEN, &g, &err), BKOAUTH_OK);
    r = last_rec();
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/api/v1/auth/access-tokens/refresh");
    assert_string_equal(r->app_secret_hdr, APP_SECRET);
    assert_string_equal(r->body, "{\"refresh_token\": \"" REFRESH_TOKEN "\"}");
    ssm_grant_clear(&g);
    ssm_free(c);
}

/* ---- success flags ------------------------------------------------------------------------ */

static void test_success_flags(void **state)
{
    (void)state;
    bk_settings s;
    ssm_grant g;
    bkoauth_error err;

    settings_make(&s, BK_PROTO_IEOD);
    script(200, "{\"result\": \"true\", \"data\": {\"access_token\": \"AT-x\", \"expires_in\": 10}}",
           MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "not the boolean true");
    assert_int_equal(err.http_status, 200);

    script(200, "{\"result\": 1, \"data\": {\"access_token\": \"AT-x\", \"expires_in\": 10}}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);

    script(200, "{\"data\": {\"access_token\": \"AT-x\", \"expires_in\": 10}}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "no \"result\"");

    /* ieod does not look at "code" */
    script(200, "{\"result\": true, \"code\": 7, \"data\": {\"access_token\": \"AT-x\", \"expires_in\": 10}}",
           MODE_NORMAL);
    assert_int_equal(call_app(&s, &g, &err), BKOAUTH_OK);
    ssm_grant_clear(&g);

    settings_make(&s, BK_PROTO_EE);
    script(200, "{\"code\": \"0\", \"data\": {\"access_token\": \"AT-x\", \"expires_in\": 10}}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "not the number 0");
    assert_int_equal(err.api_code, 0);

    script(200, "{\"code\": false, \"data\": {\"access_token\": \"AT-x\", \"expires_in\": 10}}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);

    /* ee does not look at "result" */
    script(200, "{\"result\": true, \"data\": {\"access_token\": \"AT-x\", \"expires_in\": 10}}",
           MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "no \"code\"");

    script(200, "{\"code\": 1302100, \"message\": \"app not allowed\", \"data\": null}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "app not allowed");
    assert_has(err.message, "code 1302100");
    assert_int_equal(err.api_code, 1302100);
    assert_int_equal(err.http_status, 200);

    script(200, "{\"code\": 0, \"data\": {\"access_token\": \"AT-x\", \"expires_in\": \"86400\"}}",
           MODE_NORMAL);
    assert_int_equal(call_app(&s, &g, &err), BKOAUTH_OK);
    assert_int_equal(g.expires_in, 86400);
    assert_string_equal(g.refresh_token, "");
    assert_string_equal(g.scope, "");
    ssm_grant_clear(&g);
}

/* ---- failures ---------------------------------------------------------------------------- */

static void test_result_false_message(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    /* the service echoes the secret and the refresh token: neither may reach the message */
    script(200,
           "{\"result\": false, \"code\": \"1302403\", \"message\": \"refresh_token " REFRESH_TOKEN
           " invalid for secret " APP_SECRET "\", \"data\": null}",
           MODE_NORMAL);
    ssm_grant g;
    bkoauth_error err;
    assert_clean_failure(call_refresh(&s, &g, &err), &err, &g);
    char prefix[256];
    snprintf(
        prefix, sizeof prefix,
        "SSM refresh_token call to http://127.0.0.1:%u/auth_api/refresh_token/ failed: ", (unsigned)srv.port);
    assert_true(strncmp(err.message, prefix, strlen(prefix)) == 0);
    assert_has(err.message, "refused the request");
    assert_has(err.message, "invalid for secret");
    assert_int_equal(err.api_code, 1302403);
    assert_int_equal(err.http_status, 200);
}

static void test_http_error_status(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    ssm_grant g;
    bkoauth_error err;
    script(500, "Internal Server Error", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "HTTP 500");
    assert_has(err.message, "retry later");
    assert_int_equal(err.http_status, 500);

    settings_make(&s, BK_PROTO_EE);
    script(403, "{\"code\": 1302001, \"message\": \"bad app secret\"}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "HTTP 403");
    assert_has(err.message, "bad app secret");
    assert_has(err.message, "SECRET_KEY");
    assert_int_equal(err.http_status, 403);
    assert_int_equal(err.api_code, 1302001);

    /* a redirect is not followed */
    script(302, "", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "HTTP 302");
    assert_has(err.message, "not followed");
    assert_int_equal(err.http_status, 302);
    assert_int_equal(srv.nrecs, 3);
}

static void test_bad_bodies(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    ssm_grant g;
    bkoauth_error err;

    script(200, "<!DOCTYPE html><html><body>Login</body></html>", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "not JSON but an HTML page");
    assert_has(err.message, "OAUTH_API_URL");
    assert_int_equal(err.http_status, 200);

    script(200, "", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "empty body");

    script(200, "[{\"result\": true}]", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "an array, not an object");

    script(200, "{\"result\": true, \"data\": {\"access_tok", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "truncated JSON");

    script(200, "{\"result\": true, \"data\": {\"expires_in\": 10}}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "data.access_token");

    script(200, "{\"result\": true, \"data\": {\"access_token\": \"AT-x\"}}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "data.expires_in");

    script(200, "{\"result\": true, \"data\": \"AT-x\"}", MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "no \"data\" object");
}

static void test_truncated_body(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    ssm_grant g;
    bkoauth_error err;
    script(200, OK_IEOD, MODE_TRUNCATE);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "was truncated");
    assert_has(err.message, "connection closed before the whole body arrived");
    assert_int_equal(err.http_status, 200);
}

static void test_too_large_body(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    ssm_grant g;
    bkoauth_error err;
    /* with a Content-Length */
    size_t n = 2u * 1024 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    script(200, big, MODE_NORMAL);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "larger than the 1048576-byte limit");
    /* chunked, no length announced */
    script(200, "", MODE_HUGE_CHUNKED);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "larger than the 1048576-byte limit");
    script(200, OK_IEOD, MODE_NORMAL);
    free(big);
}

static void test_timeout(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    s.timeout_ms = 300;
    pthread_mutex_lock(&srv.lock);
    srv.sleep_ms = 1200;
    pthread_mutex_unlock(&srv.lock);
    script(200, OK_IEOD, MODE_SLEEP);
    ssm_grant g;
    bkoauth_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1100);
    assert_has(err.message, "timeout");
    assert_has(err.message, "300 ms");
    assert_has(err.message, "BKOAUTH_TIMEOUT_MS");
    assert_int_equal(err.http_status, 0);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* a port that was free a moment ago and has no listener */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    unsigned port = ntohs(sa.sin_port);
    close(fd);

    bk_settings s;
    settings_make(&s, BK_PROTO_EE);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    s.api_url = url;
    ssm_grant g;
    bkoauth_error err;
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    char want[64];
    snprintf(want, sizeof want, "connection refused by 127.0.0.1:%u", port);
    assert_has(err.message, want);
    assert_has(err.message, "SSM APP token call to");
    assert_int_equal(err.http_status, 0);
}

static void test_tls_failure_and_warning(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%u", (unsigned)srv.port); /* TLS to a plain HTTP server */
    s.api_url = url;
    ssm_grant g;
    bkoauth_error err;
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "TLS failure");
    assert_has(err.message, "BKOAUTH_CA_FILE");
    assert_has(err.message, "BKOAUTH_TLS_VERIFY");
    /* the failure is logged once, as a warning naming its kind */
    assert_int_equal(logs.warnings, 1);
    assert_has(logs.text, "1 network failure: SSM APP token call to");

    /* verification off: one warning per client, however many calls */
    settings_make(&s, BK_PROTO_IEOD);
    s.tls_verify = 0;
    bkoauth_error e2;
    ssm_client *c = ssm_new(&s, &logger, &e2);
    assert_non_null(c);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ssm_fetch_app(c, NULL, &g, &err), BKOAUTH_OK);
        ssm_grant_clear(&g);
    }
    ssm_free(c);
    assert_int_equal(logs.warnings, 1);
    assert_has(logs.text, "TLS verification is off");
}

static void test_missing_settings(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    ssm_grant g;
    bkoauth_error err;
    s.api_url = NULL;
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "OAUTH_API_URL is not set");
    assert_has(err.message, "OAUTH_API_URL is not set");

    settings_make(&s, BK_PROTO_EE);
    s.app_code = NULL;
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "APP_CODE");

    settings_make(&s, BK_PROTO_EE);
    s.app_secret = (char *)"";
    assert_clean_failure(call_refresh(&s, &g, &err), &err, &g);
    assert_has(err.message, "SECRET_KEY");

    settings_make(&s, BK_PROTO_EE);
    s.app_secret = (char *)"abc\r\nX-Evil: 1";
    assert_clean_failure(call_app(&s, &g, &err), &err, &g);
    assert_has(err.message, "control character");

    settings_make(&s, BK_PROTO_EE);
    s.oauth_params_json = (char *)"[1]";
    bkoauth_error e2;
    ssm_client *c = ssm_new(&s, &logger, &e2);
    assert_non_null(c);
    assert_int_equal(ssm_fetch_user(c, NULL, NULL, NULL, &g, &err), BKOAUTH_E_CONFIG);
    assert_has(err.message, "OAUTH_PARAMS");
    assert_int_equal(ssm_refresh(c, NULL, "", &g, &err), BKOAUTH_E_INVALID);
    ssm_free(c);
    assert_int_equal(srv.nrecs, 0); /* none of these reached the service */
}

/* ---- connection reuse and threads --------------------------------------------------------- */

static void test_connection_reuse(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    bkoauth_error err;
    ssm_client *c = ssm_new(&s, &logger, &err);
    assert_non_null(c);
    for (int i = 0; i < 20; i++) {
        ssm_grant g;
        assert_int_equal(ssm_fetch_app(c, NULL, &g, &err), BKOAUTH_OK);
        ssm_grant_clear(&g);
        /* an error answer keeps the connection too */
        script(500, "{\"message\": \"busy\"}", MODE_NORMAL);
        assert_int_equal(ssm_fetch_app(c, NULL, &g, &err), BKOAUTH_E_TOKEN_API);
        script(200, OK_IEOD, MODE_NORMAL);
    }
    ssm_free(c);
    assert_int_equal(srv.nrecs, 40);
    assert_int_equal(srv.connections, 1);
}

typedef struct worker {
    ssm_client *c;
    int id;
    int failures;
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 25; i++) {
        char cred[32], want[40];
        snprintf(cred, sizeof cred, "u%d-c%d", w->id, i);
        snprintf(want, sizeof want, "tok-%s", cred);
        bk_kv kv = {(char *)"bk_token", cred};
        bk_kvlist creds = {&kv, 1};
        ssm_grant g;
        bkoauth_error err;
        if (ssm_fetch_user(w->c, NULL, &creds, "127.0.0.1", &g, &err) != BKOAUTH_OK ||
            strcmp(g.access_token, want) != 0)
            w->failures++;
        ssm_grant_clear(&g);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    bk_settings s;
    settings_make(&s, BK_PROTO_IEOD);
    script(200, "", MODE_ECHO);
    bkoauth_error err;
    ssm_client *c = ssm_new(&s, &logger, &err);
    assert_non_null(c);
    pthread_t t[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i].c = c;
        w[i].id = i;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    ssm_free(c);
    assert_int_equal(srv.nrecs, 200);
    assert_true(srv.connections >= 1 && srv.connections <= 16);
}

/* ---- the parser without a network ---------------------------------------------------------- */

static bkoauth_code parse(int proto, long status, const char *body, ssm_grant *g, bkoauth_error *err)
{
    return ssm_parse_response(proto, status, body, strlen(body), g, err);
}

static void test_parser_fields(void **state)
{
    (void)state;
    ssm_grant g;
    bkoauth_error err;
    memset(logs.text, 0, sizeof logs.text);
    logs.len = 0;
    assert_int_equal(parse(BK_PROTO_IEOD, 200,
                           "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": 12.9, "
                           "\"refresh_token\": null, \"scope\": [\"a\", \"b\"]}}",
                           &g, &err),
                     BKOAUTH_OK);
    assert_int_equal(g.expires_in, 12);
    assert_string_equal(g.refresh_token, "");
    assert_string_equal(g.scope, "[\"a\",\"b\"]");
    ssm_grant_clear(&g);

    const char *bad[] = {
        "{\"result\": true, \"data\": {\"access_token\": \"\", \"expires_in\": 1}}",
        "{\"result\": true, \"data\": {\"access_token\": 5, \"expires_in\": 1}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": -1}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": \"12abc\"}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": \"\"}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": true}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": 1e300}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": 1, \"refresh_token\": 3}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\\u0000B\", \"expires_in\": 1}}",
        "{\"result\": true, \"data\": {\"access_token\": \"A\", \"expires_in\": 1}} trailing",
        "{\"result\": true, \"result\": true",
        "\"just a string\"",
        "null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(BK_PROTO_IEOD, 200, bad[i], &g, &err) != BKOAUTH_E_TOKEN_API)
            fail_msg("accepted: %s", bad[i]);
        assert_null(g.access_token);
        assert_true(err.message[0] != '\0');
        assert_int_equal(err.http_status, 200);
    }

    /* an access_token longer than the table holds */
    char big[400];
    char tok[300];
    memset(tok, 'a', 256);
    tok[256] = '\0';
    snprintf(big, sizeof big, "{\"code\": 0, \"data\": {\"access_token\": \"%s\", \"expires_in\": 1}}", tok);
    assert_int_equal(parse(BK_PROTO_EE, 200, big, &g, &err), BKOAUTH_E_TOKEN_API);
    assert_has(err.message, "255");

    /* a NUL byte inside the body */
    const char nul[] = "{\"code\": 0, \"data\": {\"access_token\": \"A\0B\", \"expires_in\": 1}}";
    assert_int_equal(ssm_parse_response(BK_PROTO_EE, 200, nul, sizeof nul - 1, &g, &err),
                     BKOAUTH_E_TOKEN_API);

    /* a long service message is cut, control characters escaped: it cannot start a new line */
    char longmsg[2000];
    char text[1200];
    memset(text, 'm', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    snprintf(longmsg, sizeof longmsg, "{\"result\": false, \"message\": \"line1\\nline2 %s\"}", text);
    assert_int_equal(parse(BK_PROTO_IEOD, 200, longmsg, &g, &err), BKOAUTH_E_TOKEN_API);
    assert_has(err.message, "\"line1\\nline2 mmm");
    assert_null(strchr(err.message, '\n'));
    assert_has(err.message, "...");
    assert_true(strlen(err.message) < 400);
}

int main(void)
{
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    pthread_mutex_init(&logs.lock, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ieod_app, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_ieod_user_order_and_encoding, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_ieod_refresh, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_ee_app, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_ee_user_params_and_credentials, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_success_flags, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_result_false_message, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_http_error_status, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_body, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_too_large_body, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_timeout, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_tls_failure_and_warning, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_missing_settings, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_connection_reuse, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_threads, server_setup, server_teardown),
        cmocka_unit_test(test_parser_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
