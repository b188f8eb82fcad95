/* bkoauth-devserver - a local SSM token service for development and tests.
 *
 * Serves both wire protocols of the BlueKing SSM service (ieod: GET with a query string; ee:
 * POST with JSON and X-BK-APP-* headers), issues tokens for configured users, keeps an old
 * access_token valid for --overlap seconds after its refresh, makes every refresh_token
 * single-use, and offers test endpoints under /__dev/ (counters, token validity, injected
 * faults, runtime settings). Loopback only unless --allow-remote. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (64 * 1024)
#define MAX_USERS 256

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct dev_token {
    char access[65];
    char refresh[65]; /* "" for APP tokens */
    char *username;   /* NULL for APP tokens */
    time_t expires_at;
    time_t invalid_after; /* 0: until expiry; set when refreshed (overlap) */
    int refresh_used;
} dev_token;

typedef struct fault {
    char kind[16]; /* "" when none */
    int remaining;
    int delay_ms;
    long code;
    char message[256];
} fault;

static struct {
    pthread_mutex_t mu;
    const char *app_code, *app_secret;
    const char *cred[MAX_USERS], *user[MAX_USERS];
    int users;
    long ttl, overlap;
    dev_token *tokens;
    size_t ntokens, cap;
    long app_token, user_token, refresh, refresh_failed, faulted, total, ieod, ee;
    fault fault;
    json_t *last;
    int quiet;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .app_code = "demo-app",
       .app_secret = "demo-secret",
       .ttl = 15552000,
       .overlap = 60};

/* One connection's request: the raw URI (from the URI log callback) and the body. */
typedef struct req {
    char *uri;
    char *body;
    size_t len;
    int too_big;
    int started; /* the handler's first call for this request has been made */
} req;

static void random_hex(char *out, size_t chars)
{
    unsigned char raw[32];
    size_t need = (chars + 1) / 2;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, raw, need) != (ssize_t)need) {
        fprintf(stderr, "bkoauth-devserver: cannot read /dev/urandom\n");
        abort();
    }
    close(fd);
    for (size_t i = 0; i < chars; i++)
        out[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[chars] = '\0';
}

static int token_valid(const dev_token *t, time_t now)
{
    return now < t->expires_at && (t->invalid_after == 0 || now < t->invalid_after);
}

/* Issues a token; the caller holds the mutex. */
static dev_token *issue(const char *username)
{
    if (S.ntokens == S.cap) {
        size_t cap = S.cap ? S.cap * 2 : 64;
        dev_token *p = realloc(S.tokens, cap * sizeof *p);
        if (p == NULL) return NULL;
        S.tokens = p;
        S.cap = cap;
    }
    dev_token *t = &S.tokens[S.ntokens++];
    memset(t, 0, sizeof *t);
    random_hex(t->access, 40);
    if (username != NULL) {
        random_hex(t->refresh, 40);
        t->username = strdup(username);
    }
    t->expires_at = time(NULL) + S.ttl;
    return t;
}

static void forget_tokens(void)
{
    for (size_t i = 0; i < S.ntokens; i++)
        free(S.tokens[i].username);
    S.ntokens = 0;
}

/* ---- responses -------------------------------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends j (stolen) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL) return MHD_NO;
    enum MHD_Result ret = send_text(c, status, "application/json", text);
    free(text);
    return ret;
}

static json_t *failure(int ee, long code, const char *message)
{
    if (ee) return json_pack("{s:I, s:s, s:n}", "code", (json_int_t)code, "message", message, "data");
    return json_pack("{s:b, s:I, s:s, s:n}", "result", 0, "code", (json_int_t)code, "message", message,
                     "data");
}

static json_t *grant(int ee, const dev_token *t)
{
    json_t *data =
        json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s}}", "access_token", t->access, "refresh_token",
                  t->refresh, "expires_in", (json_int_t)(t->expires_at - time(NULL)), "scope", "", "identity",
                  "username", t->username ? t->username : "", "user_type", t->username ? "bkuser" : "app");
    if (ee) return json_pack("{s:i, s:s, s:o}", "code", 0, "message", "", "data", data);
    return json_pack("{s:b, s:i, s:s, s:o}", "result", 1, "code", 0, "message", "", "data", data);
}

/* The truncated fault: a Content-Length twice the body, half of it sent, then the connection
 * is closed. */
typedef struct partial {
    char *text;
    size_t len;
} partial;

static ssize_t partial_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    partial *p = cls;
    size_t half = p->len / 2;
    if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = half - (size_t)pos < max ? half - (size_t)pos : max;
    memcpy(buf, p->text + pos, n);
    return (ssize_t)n;
}

static void partial_free(void *cls)
{
    partial *p = cls;
    free(p->text);
    free(p);
}

static enum MHD_Result send_truncated(struct MHD_Connection *c, json_t *j)
{
    partial *p = calloc(1, sizeof *p);
    p->text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    p->len = strlen(p->text);
    struct MHD_Response *r = MHD_create_response_from_callback(p->len, 1024, partial_read, p, partial_free);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- requests --------------------------------------------------------------------------------- */

static int add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_object_set_new(cls, key, json_string(value ? value : ""));
    return MHD_YES;
}

static void record_last(struct MHD_Connection *c, const char *method, const char *url, const req *rq)
{
    json_t *headers = json_object();
    MHD_get_connection_values(c, MHD_HEADER_KIND, (MHD_KeyValueIterator)add_header, headers);
    const char *q = rq->uri ? strchr(rq->uri, '?') : NULL;
    json_t *last =
        json_pack("{s:s, s:s, s:s, s:s%, s:o}", "method", method, "path", url, "query", q ? q + 1 : "",
                  "body", rq->body ? rq->body : "", rq->body ? rq->len : (size_t)0, "headers", headers);
    json_decref(S.last);
    S.last = last;
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static int streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The user of the first value that is a configured credential; NULL when none. */
static const char *user_of(const char *value)
{
    for (int i = 0; value && i < S.users; i++)
        if (strcmp(S.cred[i], value) == 0) return S.user[i];
    return NULL;
}

typedef struct find_cred {
    const char *user;
} find_cred;

static int cred_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)key;
    find_cred *f = cls;
    if (f->user == NULL) f->user = user_of(value);
    return MHD_YES;
}

enum kind { K_NONE, K_APP, K_USER, K_REFRESH };

/* Does the token work of one SSM call (the mutex held). Returns the answer. */
static json_t *serve(struct MHD_Connection *c, int ee, enum kind kind, json_t *body, unsigned *status)
{
    *status = 200;
    const char *code = ee ? header(c, "X-BK-APP-CODE") : arg(c, "app_code");
    const char *secret = ee ? header(c, "X-BK-APP-SECRET") : arg(c, "app_secret");
    if (!streq(code, S.app_code)) return failure(ee, 1301, "app_code is missing or unknown");
    if ((kind != K_REFRESH || ee) && !streq(secret, S.app_secret)) {
        if (ee) *status = 401;
        return failure(ee, 1302, "app_secret is wrong for this app_code");
    }
    if (!ee) {
        const char *env = arg(c, "env_name");
        if (!streq(env, "prod") && !streq(env, "test"))
            return failure(ee, 1303, "env_name must be prod or test");
    }
    if (kind == K_APP) {
        dev_token *t = issue(NULL);
        return t ? grant(ee, t) : failure(ee, 1500, "out of memory");
    }
    if (kind == K_USER) {
        find_cred f = {NULL};
        if (ee) {
            const char *k;
            json_t *v;
            json_object_foreach(body, k, v) if (json_is_string(v) && f.user == NULL) f.user =
                user_of(json_string_value(v));
        } else {
            MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, (MHD_KeyValueIterator)cred_iter, &f);
        }
        if (f.user == NULL)
            return failure(ee, 1304, "the user's login credential is invalid or expired; log in again");
        dev_token *t = issue(f.user);
        return t ? grant(ee, t) : failure(ee, 1500, "out of memory");
    }
    const char *rt = ee ? json_string_value(json_object_get(body, "refresh_token")) : arg(c, "refresh_token");
    if (!ee && !streq(arg(c, "grant_type"), "refresh_token"))
        return failure(ee, 1305, "grant_type must be refresh_token");
    time_t now = time(NULL);
    for (size_t i = 0; rt && rt[0] && i < S.ntokens; i++) {
        dev_token *old = &S.tokens[i];
        if (strcmp(old->refresh, rt) != 0) continue;
        if (old->refresh_used) {
            S.refresh_failed++;
            return failure(ee, 1306, "refresh_token already used");
        }
        old->refresh_used = 1;
        if (old->invalid_after == 0 || old->invalid_after > now + S.overlap)
            old->invalid_after = now + S.overlap;
        char *username = strdup(old->username ? old->username : "");
        dev_token *t = issue(username); /* may move S.tokens */
        free(username);
        return t ? grant(ee, t) : failure(ee, 1500, "out of memory");
    }
    S.refresh_failed++;
    return failure(ee, 1307, "refresh_token is invalid");
}

static enum MHD_Result ssm_call(struct MHD_Connection *c, const char *method, const char *url, req *rq)
{
    int ee = 0;
    enum kind kind = K_NONE;
    json_t *body = NULL;
    if (strcmp(url, "/auth_api/token/") == 0 && strcmp(method, "GET") == 0) {
        const char *g = arg(c, "grant_type");
        kind = streq(g, "client_credentials") ? K_APP : streq(g, "authorization_code") ? K_USER : K_NONE;
    } else if (strcmp(url, "/auth_api/refresh_token/") == 0 && strcmp(method, "GET") == 0) {
        kind = K_REFRESH;
    } else if (strncmp(url, "/api/v1/auth/access-tokens", 26) == 0 && strcmp(method, "POST") == 0) {
        ee = 1;
        json_error_t je;
        body = rq->body ? json_loadb(rq->body, rq->len, 0, &je) : NULL;
        if (!json_is_object(body)) {
            json_decref(body);
            return send_json(
                c, 400, json_pack("{s:i, s:s}", "code", 400, "message", "the body is not a JSON object"));
        }
        if (strcmp(url, "/api/v1/auth/access-tokens/refresh") == 0)
            kind = K_REFRESH;
        else if (strcmp(url, "/api/v1/auth/access-tokens") == 0) {
            const char *g = json_string_value(json_object_get(body, "grant_type"));
            kind = streq(g, "client_credentials") ? K_APP : streq(g, "authorization_code") ? K_USER : K_NONE;
        }
    } else {
        return send_json(c, 404, json_pack("{s:s}", "message", "no such SSM endpoint"));
    }

    pthread_mutex_lock(&S.mu);
    S.total++;
    ee ? S.ee++ : S.ieod++;
    if (kind == K_APP)
        S.app_token++;
    else if (kind == K_USER)
        S.user_token++;
    else if (kind == K_REFRESH)
        S.refresh++;
    record_last(c, method, url, rq);
    fault f = {{0}, 0, 0, 0, {0}};
    if (S.fault.remaining > 0) {
        f = S.fault;
        if (--S.fault.remaining == 0) S.fault.kind[0] = '\0';
        S.faulted++;
    }
    pthread_mutex_unlock(&S.mu);

    if (f.kind[0] != '\0') {
        if (strcmp(f.kind, "slow") == 0) {
            usleep((useconds_t)f.delay_ms * 1000);
        } else {
            json_decref(body);
            if (strcmp(f.kind, "drop") == 0) return MHD_NO;
            if (strcmp(f.kind, "http500") == 0)
                return send_text(c, 500, "text/html", "<h1>Server Error (500)</h1>");
            if (strcmp(f.kind, "html") == 0)
                return send_text(c, 200, "text/html",
                                 "<!DOCTYPE html><html><head><title>Login</title></head>"
                                 "<body><h1>Please log in</h1></body></html>");
            if (strcmp(f.kind, "business") == 0) return send_json(c, 200, failure(ee, f.code, f.message));
            /* truncated: a real grant, cut in the middle */
            dev_token fake = {.expires_at = time(NULL) + S.ttl};
            random_hex(fake.access, 40);
            return send_truncated(c, grant(ee, &fake));
        }
    }
    if (kind == K_NONE) {
        json_decref(body);
        return send_json(c, 200, failure(ee, 1300, "grant_type is missing or unknown"));
    }
    unsigned status;
    pthread_mutex_lock(&S.mu);
    json_t *answer = serve(c, ee, kind, body, &status);
    pthread_mutex_unlock(&S.mu);
    json_decref(body);
    return send_json(c, status, answer);
}

/* ---- /__dev/ ----------------------------------------------------------------------------------- */

static enum MHD_Result dev_call(struct MHD_Connection *c, const char *method, const char *url)
{
    int post = strcmp(method, "POST") == 0;
    if (strcmp(url, "/__dev/health") == 0) return send_json(c, 200, json_pack("{s:b}", "ok", 1));
    pthread_mutex_lock(&S.mu);
    json_t *answer = NULL;
    unsigned status = 200;
    if (strcmp(url, "/__dev/counters") == 0) {
        answer = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:O}", "app_token",
                           (json_int_t)S.app_token, "user_token", (json_int_t)S.user_token, "refresh",
                           (json_int_t)S.refresh, "refresh_failed", (json_int_t)S.refresh_failed, "faulted",
                           (json_int_t)S.faulted, "total", (json_int_t)S.total, "by_protocol", "ieod",
                           (json_int_t)S.ieod, "ee", (json_int_t)S.ee, "last", S.last ? S.last : json_null());
    } else if (strcmp(url, "/__dev/reset") == 0 && post) {
        S.app_token = S.user_token = S.refresh = S.refresh_failed = S.faulted = S.total = S.ieod = S.ee = 0;
        memset(&S.fault, 0, sizeof S.fault);
        json_decref(S.last);
        S.last = NULL;
        if (streq(arg(c, "tokens"), "1")) forget_tokens();
        answer = json_pack("{s:b}", "ok", 1);
    } else if (strcmp(url, "/__dev/token") == 0) {
        const char *at = arg(c, "access_token");
        time_t now = time(NULL);
        answer = json_pack("{s:b}", "valid", 0);
        for (size_t i = 0; at && i < S.ntokens; i++) {
            dev_token *t = &S.tokens[i];
            if (strcmp(t->access, at) != 0) continue;
            json_decref(answer);
            answer = json_pack("{s:b, s:s?, s:I, s:s}", "valid", token_valid(t, now), "username", t->username,
                               "expires_in", (json_int_t)(t->expires_at - now), "kind",
                               t->username ? "user" : "app");
        }
    } else if (strcmp(url, "/__dev/fault") == 0 && post) {
        const char *kind = arg(c, "kind");
        static const char *kinds[] = {"http500", "truncated", "html", "slow", "drop", "business"};
        int known = 0;
        for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
            known |= strcmp(kind, kinds[i]) == 0;
        const char *count = arg(c, "count"), *delay = arg(c, "delay_ms"), *code = arg(c, "code"),
                   *message = arg(c, "message");
        if (!known) {
            status = 400;
            answer = json_pack("{s:s}", "message",
                               "kind must be http500, truncated, html, slow, drop or business");
        } else {
            memset(&S.fault, 0, sizeof S.fault);
            snprintf(S.fault.kind, sizeof S.fault.kind, "%s", kind);
            S.fault.remaining = count ? atoi(count) : 1;
            S.fault.delay_ms = delay && atoi(delay) > 0 ? atoi(delay) : 2000;
            S.fault.code = code ? atol(code) : 1500;
            snprintf(S.fault.message, sizeof S.fault.message, "%s",
                     message ? message : "injected business error: the service refused the call");
            answer = json_pack("{s:b, s:s, s:i}", "ok", 1, "kind", kind, "count", S.fault.remaining);
        }
    } else if (strcmp(url, "/__dev/config") == 0 && post) {
        if (arg(c, "ttl")) S.ttl = atol(arg(c, "ttl"));
        if (arg(c, "overlap")) S.overlap = atol(arg(c, "overlap"));
        answer = json_pack("{s:I, s:I}", "ttl", (json_int_t)S.ttl, "overlap", (json_int_t)S.overlap);
    } else {
        status = 404;
        answer = json_pack("{s:s}", "message", "no such /__dev/ endpoint (or wrong method)");
    }
    pthread_mutex_unlock(&S.mu);
    return send_json(c, status, answer);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    req *rq = *con_cls;
    if (rq == NULL) { /* no URI log callback ran: should not happen */
        rq = calloc(1, sizeof *rq);
        if (rq == NULL) return MHD_NO;
        *con_cls = rq;
    }
    if (!rq->started) { /* the first call comes before any body: ask for the body */
        rq->started = 1;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (rq->len + *upload_size > MAX_BODY) {
            rq->too_big = 1;
        } else {
            char *p = realloc(rq->body, rq->len + *upload_size + 1);
            if (p == NULL) return MHD_NO;
            memcpy(p + rq->len, upload, *upload_size);
            rq->body = p;
            rq->len += *upload_size;
            rq->body[rq->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return send_json(c, 413, json_pack("{s:s}", "message", "the body is larger than 64 KiB"));
    if (strncmp(url, "/__dev/", 7) == 0) return dev_call(c, method, url);
    return ssm_call(c, method, url, rq);
}

static void *log_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    req *rq = calloc(1, sizeof *rq);
    if (rq != NULL) rq->uri = strdup(uri ? uri : "");
    return rq;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req *rq = *con_cls;
    if (rq != NULL) {
        free(rq->uri);
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

/* ---- main ------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bkoauth-devserver [--listen HOST:PORT] [--port-file FILE] [--app-code C] [--app-secret S]\n"
        "                         [--user CREDENTIAL=USERNAME]... [--ttl SECONDS] [--overlap SECONDS]\n"
        "                         [--quiet] [--allow-remote] [--help]\n"
        "A local BlueKing SSM token service for development and tests (both protocols).\n"
        "  --listen HOST:PORT   address to listen on (default 127.0.0.1:0; port 0 picks a free port)\n"
        "  --port-file FILE     write the port there once listening\n"
        "  --app-code C         the app code accepted (default demo-app)\n"
        "  --app-secret S       its secret (default demo-secret)\n"
        "  --user CRED=NAME     a login credential (e.g. a bk_token value) and its user; repeatable\n"
        "  --ttl SECONDS        token lifetime (default 15552000, 180 days)\n"
        "  --overlap SECONDS    how long an old access_token stays valid after a refresh (default 60)\n"
        "  --allow-remote       allow a non-loopback address\n"
        "Test endpoints: /__dev/counters, /__dev/reset, /__dev/token, /__dev/fault, /__dev/config,\n"
        "/__dev/health (see docs/DEVSERVER.md).\n");
}

static int parse_long_arg(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 0) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:0", *port_file = NULL;
    int allow_remote = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            S.quiet = 1;
            takes = 0;
        } else if (strcmp(a, "--allow-remote") == 0) {
            allow_remote = 1;
            takes = 0;
        } else if (v == NULL) {
            fprintf(stderr, "bkoauth-devserver: %s needs a value\n", a);
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--listen") == 0) {
            listen_at = v;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--app-code") == 0) {
            S.app_code = v;
        } else if (strcmp(a, "--app-secret") == 0) {
            S.app_secret = v;
        } else if (strcmp(a, "--user") == 0) {
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v || eq[1] == '\0' || S.users >= MAX_USERS) {
                fprintf(stderr, "bkoauth-devserver: --user wants CREDENTIAL=USERNAME, got '%s'\n", v);
                return 2;
            }
            S.cred[S.users] = strndup(v, (size_t)(eq - v));
            S.user[S.users++] = eq + 1;
        } else if (strcmp(a, "--ttl") == 0) {
            if (parse_long_arg(v, &S.ttl) != 0) {
                fprintf(stderr, "bkoauth-devserver: --ttl wants seconds, got '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--overlap") == 0) {
            if (parse_long_arg(v, &S.overlap) != 0) {
                fprintf(stderr, "bkoauth-devserver: --overlap wants seconds, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "bkoauth-devserver: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i += takes;
    }

    const char *colon = strrchr(listen_at, ':');
    long port = -1;
    char host[64];
    if (colon == NULL || (size_t)(colon - listen_at) >= sizeof host ||
        parse_long_arg(colon + 1, &port) != 0 || port > 65535) {
        fprintf(stderr, "bkoauth-devserver: --listen wants HOST:PORT, got '%s'\n", listen_at);
        return 2;
    }
    memcpy(host, listen_at, (size_t)(colon - listen_at));
    host[colon - listen_at] = '\0';
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bkoauth-devserver: '%s' is not an IPv4 address\n", host);
        return 2;
    }
    if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127 && !allow_remote) {
        fprintf(stderr,
                "bkoauth-devserver: refusing to listen on %s, which is not a loopback address "
                "(use --allow-remote if you mean it)\n",
                host);
        return 2;
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                         handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_URI_LOG_CALLBACK, log_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed,
                         NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bkoauth-devserver: cannot listen on %s: %s\n", listen_at, strerror(errno));
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)port;
    if (port_file != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%u\n", bound) < 0 || fclose(f) != 0 || rename(tmp, port_file) != 0) {
            fprintf(stderr, "bkoauth-devserver: cannot write %s: %s\n", port_file, strerror(errno));
            MHD_stop_daemon(d);
            return 1;
        }
    }
    if (!S.quiet) {
        printf("bkoauth-devserver listening on http://%s:%u (app %s, %d user%s, ttl %ld s, overlap %ld s)\n",
               host, bound, S.app_code, S.users, S.users == 1 ? "" : "s", S.ttl, S.overlap);
        fflush(stdout);
    }
    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    pthread_mutex_lock(&S.mu);
    forget_tokens();
    free(S.tokens);
    json_decref(S.last);
    pthread_mutex_unlock(&S.mu);
    for (int i = 0; i < S.users; i++)
        free((void *)S.cred[i]);
    return 0;
}
