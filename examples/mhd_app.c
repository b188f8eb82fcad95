/* SPDX-License-Identifier: MIT */
/* mhd_app.c - an HTTP service on libmicrohttpd guarded like a Django view with @apigw_required,
 * and pages that use the token calls.
 *
 *   GET /api/...     only through the BlueKing API gateway: X-Bkapi-Jwt is verified with
 *                    bkoauth_jwt_verify(); a refused request gets HTTP 200 and the body
 *                    {"result": false, "data": null, "message": "<why>"} (as apigw_required did);
 *                    an accepted one gets {"result": true, "data": {"app_code": ..., ...}}.
 *   GET /app-token   the APP token (bkoauth_get_app_access_token), masked.
 *   GET /me          the calling user's token (bkoauth_get_access_token): the request is built
 *                    with bkoauth_request_from_params() from the connection - the user is the
 *                    one the gateway vouched for in X-Bkapi-Jwt, the credential comes from the
 *                    Cookie header or the query string.
 *
 *   usage: bkoauth-mhd-app [--listen ADDR] [--port N] [--port-file FILE]
 *          settings: the file in $BKOAUTH_CONFIG (if set), then the environment
 *          (OAUTH_API_URL, APP_CODE, SECRET_KEY, APIGW_PUBLIC_KEY, BKOAUTH_DATABASE_URL, ...).
 *   --port 0 picks a free port; --port-file writes the port there once the service listens.
 *   The service stops on SIGINT or SIGTERM.
 *
 *   Try it with bkoauth-devserver as the SSM service and a token signed by your test key:
 *     curl -H "X-Bkapi-Jwt: $JWT" http://127.0.0.1:8080/api/hello
 *     curl -H "X-Bkapi-Jwt: $JWT" -H "Cookie: bk_token=cred-alice" http://127.0.0.1:8080/me
 */
#include <bkoauth.h>

#include <jansson.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

static bkoauth_client *app_client;

/* ---- responses ---------------------------------------------------------------------------- */

static mhd_result app_send(struct MHD_Connection *conn, unsigned int status, const char *type, char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    mhd_result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A JSON answer in the BlueKing shape {"result": ..., "data": ..., "message": ...}. data is
 * stolen. */
static mhd_result app_send_json(struct MHD_Connection *conn, unsigned int status, int result, json_t *data,
                                const char *message)
{
    json_t *body = json_object();
    json_object_set_new(body, "result", json_boolean(result));
    json_object_set_new(body, "data", data ? data : json_null());
    json_object_set_new(body, "message", json_string(message ? message : ""));
    char *text = json_dumps(body, JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (text == NULL) return MHD_NO;
    return app_send(conn, status, "application/json", text);
}

/* A failed token call: 502 when the SSM service failed (retry later), else 500. */
static mhd_result app_send_error(struct MHD_Connection *conn, const bkoauth_error *err)
{
    char message[600];
    snprintf(message, sizeof message, "%s: %s", bkoauth_code_name(err->code), err->message);
    unsigned int status = err->code == BKOAUTH_E_TOKEN_API ? MHD_HTTP_BAD_GATEWAY
                          : err->code == BKOAUTH_E_INVALID ? MHD_HTTP_FORBIDDEN
                                                           : MHD_HTTP_INTERNAL_SERVER_ERROR;
    return app_send_json(conn, status, 0, NULL, message);
}

static json_t *app_token_json(const bkoauth_token *t)
{
    char masked[64], when[32];
    time_t expires = (time_t)t->expires;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&expires, &tm));
    return json_pack("{s:s, s:s?, s:s, s:s, s:b}", "access_token",
                     bkoauth_mask(t->access_token, masked, sizeof masked), "user_id", t->user_id, "env_name",
                     t->env_name, "expires", when, "expires_soon", bkoauth_token_expires_soon(app_client, t));
}

/* ---- the apigw_required guard --------------------------------------------------------------- */

/* Verifies the request's X-Bkapi-Jwt. On refusal queues the apigw_required answer (HTTP 200,
 * the JSON error body) into *ret and returns NULL; on success returns the verified JWT. */
static bkoauth_jwt *app_apigw_required(struct MHD_Connection *conn, mhd_result *ret)
{
    const char *header = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Bkapi-Jwt");
    bkoauth_jwt *jwt = NULL;
    bkoauth_error err;
    if (bkoauth_jwt_verify(app_client, header, &jwt, &err) == BKOAUTH_OK) return jwt;
    char *body = bkoauth_jwt_error_body(&err);
    *ret = body ? app_send(conn, MHD_HTTP_OK, "application/json", body) : MHD_NO;
    return NULL;
}

static mhd_result app_api(struct MHD_Connection *conn, const char *url)
{
    mhd_result ret = MHD_NO;
    bkoauth_jwt *jwt = app_apigw_required(conn, &ret);
    if (jwt == NULL) return ret;
    json_t *data = json_pack("{s:s?, s:b, s:s?, s:b, s:I, s:s}", "app_code", jwt->app_code, "app_verified",
                             jwt->app_verified, "username", jwt->username, "user_verified",
                             jwt->user_verified, "expires", (json_int_t)jwt->expires, "path", url);
    bkoauth_jwt_free(jwt);
    return app_send_json(conn, MHD_HTTP_OK, 1, data, "");
}

static mhd_result app_app_token(struct MHD_Connection *conn)
{
    bkoauth_token *t = NULL;
    bkoauth_error err;
    if (bkoauth_get_app_access_token(app_client, &t, &err) != BKOAUTH_OK) return app_send_error(conn, &err);
    json_t *data = app_token_json(t);
    bkoauth_token_free(t);
    return app_send_json(conn, MHD_HTTP_OK, 1, data, "");
}

/* ---- /me: a request from the connection's parameters (what bkoauth_request_from_params is for) */

typedef struct app_params {
    struct MHD_Connection *conn;
    const char *username; /* from the verified X-Bkapi-Jwt */
    char remote_addr[INET6_ADDRSTRLEN];
    char *query; /* rebuilt from the GET arguments */
} app_params;

/* CGI variable names, answered from the connection: the same source-independent view that a
 * FastCGI parameter table gives. */
static const char *app_param_get(void *ctx, const char *name)
{
    app_params *p = ctx;
    if (strcmp(name, "REMOTE_USER") == 0) return p->username;
    if (strcmp(name, "HTTP_COOKIE") == 0)
        return MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    if (strcmp(name, "QUERY_STRING") == 0) return p->query;
    if (strcmp(name, "REMOTE_ADDR") == 0) return p->remote_addr[0] ? p->remote_addr : NULL;
    if (strcmp(name, "HTTP_X_FORWARDED_FOR") == 0)
        return MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    return NULL;
}

typedef struct app_query {
    char *text;
    size_t len, cap;
    int oom;
} app_query;

static void app_query_put(app_query *q, const char *s, int encode)
{
    for (; s && *s && !q->oom; s++) {
        if (q->len + 4 >= q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 128;
            char *t = realloc(q->text, cap);
            if (t == NULL) {
                q->oom = 1;
                return;
            }
            q->text = t;
            q->cap = cap;
        }
        unsigned char c = (unsigned char)*s;
        if (!encode || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            q->text[q->len++] = (char)c;
        } else {
            q->len += (size_t)snprintf(q->text + q->len, 4, "%%%02X", c);
        }
        q->text[q->len] = '\0';
    }
}

static mhd_result app_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    app_query *q = cls;
    if (q->len > 0) app_query_put(q, "&", 0);
    app_query_put(q, key, 1);
    if (value != NULL) {
        app_query_put(q, "=", 0);
        app_query_put(q, value, 1);
    }
    return q->oom ? MHD_NO : MHD_YES;
}

static mhd_result app_me(struct MHD_Connection *conn)
{
    mhd_result ret = MHD_NO;
    bkoauth_jwt *jwt = app_apigw_required(conn, &ret);
    if (jwt == NULL) return ret;
    app_params p = {.conn = conn, .username = jwt->user_verified ? jwt->username : NULL};
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, p.remote_addr,
                      sizeof p.remote_addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, p.remote_addr,
                      sizeof p.remote_addr);
    }
    app_query q = {0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, app_query_arg, &q);
    p.query = q.oom ? NULL : q.text;

    bkoauth_request req;
    bkoauth_request_from_params(&req, app_param_get, &p);
    bkoauth_token *t = NULL;
    bkoauth_error err;
    if (bkoauth_get_access_token(app_client, &req, &t, &err) != BKOAUTH_OK) {
        ret = app_send_error(conn, &err);
    } else {
        ret = app_send_json(conn, MHD_HTTP_OK, 1, app_token_json(t), "");
        bkoauth_token_free(t);
    }
    free(q.text);
    bkoauth_jwt_free(jwt);
    return ret;
}

static mhd_result app_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    static int first_call_marker;
    if (*con_cls == NULL) { /* headers are in; answer on the next call */
        *con_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) { /* a body is not used: drop it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        return app_send_json(conn, MHD_HTTP_METHOD_NOT_ALLOWED, 0, NULL, "only GET and POST");
    if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0) return app_api(conn, url);
    if (strcmp(url, "/app-token") == 0) return app_app_token(conn);
    if (strcmp(url, "/me") == 0) return app_me(conn);
    return app_send_json(conn, MHD_HTTP_NOT_FOUND, 0, NULL, "no such page: try /api/..., /app-token or /me");
}

/* ---- main ----------------------------------------------------------------------------------- */

static int app_usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--listen ADDR] [--port N] [--port-file FILE]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *listen_addr = "127.0.0.1", *port_file = NULL;
    long port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_addr = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            port = strtol(argv[++i], &end, 10);
            if (errno || *end || port < 0 || port > 65535) return app_usage(argv[0]);
        } else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
            port_file = argv[++i];
        } else {
            return app_usage(argv[0]);
        }
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, listen_addr, &addr.sin_addr) != 1) {
        fprintf(stderr, "%s: --listen %s is not an IPv4 address\n", argv[0], listen_addr);
        return 2;
    }

    bkoauth_error err;
    bkoauth_config *config = bkoauth_config_new();
    const char *file = getenv("BKOAUTH_CONFIG");
    if (config == NULL || (file && bkoauth_config_load_file(config, file, &err) != BKOAUTH_OK) ||
        bkoauth_config_load_env(config, &err) != BKOAUTH_OK) {
        fprintf(stderr, "%s: settings: %s\n", argv[0], config ? err.message : "out of memory");
        bkoauth_config_free(config);
        return 1;
    }
    app_client = bkoauth_client_new(config, &err);
    bkoauth_config_free(config);
    if (app_client == NULL) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], bkoauth_code_name(err.code), err.message);
        return 1;
    }

    /* SIGINT and SIGTERM are taken by sigwait() below; blocked first so that the server's
     * threads inherit the block */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
                         app_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024), MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "%s: cannot listen on %s:%ld\n", argv[0], listen_addr, port);
        bkoauth_client_free(app_client);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)port;
    if (port_file != NULL) {
        /* written whole under another name, then renamed: a reader never sees half a number */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%u\n", bound) < 0 || fclose(f) != 0 || rename(tmp, port_file) != 0) {
            fprintf(stderr, "%s: cannot write %s: %s\n", argv[0], port_file, strerror(errno));
            MHD_stop_daemon(d);
            bkoauth_client_free(app_client);
            return 1;
        }
    }
    fprintf(stderr, "%s: listening on http://%s:%u/ (/api/..., /app-token, /me)\n", argv[0], listen_addr,
            bound);

    int sig = 0;
    sigwait(&stop_signals, &sig);

    MHD_stop_daemon(d);
    bkoauth_client_free(app_client);
    return 0;
}
