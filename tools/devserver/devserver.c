/* bkoauth-devserver - a local SSM token service for development and tests.
 *
 * Serves both wire protocols of the BlueKing SSM service (docs/PROTOCOL.md; ieod: GET with a
 * query string; ee: POST with JSON and X-BK-APP-* headers), issues tokens for configured users,
 * keeps an old access_token valid for --overlap seconds after its refresh, makes every
 * refresh_token single-use, and offers test endpoints under /__dev/ (counters, token validity,
 * injected faults, runtime settings). Loopback only unless --allow-remote.
 *
 * Threads: libmicrohttpd runs one thread per connection, so a slow answer blocks nobody else.
 * All state lives in S and is read and written only with S.mu held; the handler never sleeps or
 * does I/O with the mutex held. See docs/DEVSERVER.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEV_MAX_BODY (64 * 1024)     /* larger request bodies get HTTP 413 */
#define DEV_MAX_USERS 4096           /* --user options */
#define DEV_TOKEN_CHARS 40           /* hex characters of an access_token / refresh_token */
#define DEV_MAX_SECONDS 3153600000L  /* 100 years: the largest --ttl / --overlap */
#define DEV_MAX_DELAY_MS 600000L     /* 10 minutes: the largest slow fault */
#define DEV_MAX_FAULT_COUNT 1000000L /* the largest fault count */
#define DEV_FIELD_CAP 256            /* recorded need_new_token / bk_client_ip are cut there */
#define DEV_MAX_RAW (16 * 1024)      /* the largest body of a raw fault */

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct dev_token {
    char access[DEV_TOKEN_CHARS + 1];
    char refresh[DEV_TOKEN_CHARS + 1]; /* "" for APP tokens */
    char *username;                    /* owned; NULL for APP tokens */
    char env_name[8];                  /* "prod" / "test" (ieod), "" (ee) */
    const char *protocol;              /* static "ieod" / "ee" */
    char *need_new_token;              /* owned; as sent ("" when not sent) */
    char *client_ip;                   /* owned; bk_client_ip as sent ("" when not sent) */
    time_t issued_at, expires_at;
    time_t invalid_after; /* 0: valid until expires_at; set by its refresh (the overlap) */
    int refresh_used;
} dev_token;

/* Open-addressing index of token positions: slot holds position + 1, 0 is empty. */
typedef struct dev_index {
    size_t *slot;
    size_t cap; /* a power of two, > 2 * tokens, or 0 */
} dev_index;

typedef struct dev_fault {
    char kind[16]; /* "" when none */
    long remaining;
    long delay_ms;
    long code;
    char message[256];
    char *body;  /* raw: the answer's body (owned; a copy for each faulted call) */
    long status; /* raw: the answer's HTTP status */
} dev_fault;

static struct {
    pthread_mutex_t mu;
    const char *app_code, *app_secret; /* argv strings */
    char *cred[DEV_MAX_USERS];         /* owned */
    const char *user[DEV_MAX_USERS];   /* argv strings */
    int users;
    long ttl, overlap;
    dev_token *tokens; /* owned, ntokens used of cap */
    size_t ntokens, cap;
    dev_index by_access, by_refresh;
    long app_token, user_token, refresh, refresh_failed, faulted, total, ieod, ee;
    long in_flight, in_flight_peak; /* SSM calls being answered now, and the most at once */
    dev_fault fault;
    json_t *last; /* owned; the last SSM call, or NULL */
    int quiet;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .app_code = "demo-app",
       .app_secret = "demo-secret",
       .ttl = 15552000,
       .overlap = 60};

static int dev_urandom = -1;        /* opened once in main */
static atomic_int dev_stopping = 0; /* set on SIGINT/SIGTERM: slow faults stop sleeping */

/* One request: the raw URI (from the URI log callback) and the body read so far. */
typedef struct dev_req {
    char *uri;  /* owned */
    char *body; /* owned, NUL-terminated, len bytes */
    size_t len;
    int too_big;
    int started; /* the handler's first call (before any body) has been made */
} dev_req;

/* Fills out with chars random hex characters and a NUL; aborts when /dev/urandom fails (no
 * token may come from anything weaker). */
static void dev_random_hex(char *out, size_t chars)
{
    unsigned char raw[DEV_TOKEN_CHARS / 2 + 1];
    size_t need = (chars + 1) / 2, got = 0;
    if (need > sizeof raw) abort();
    while (got < need) {
        ssize_t n = read(dev_urandom, raw + got, need - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "bkoauth-devserver: cannot read /dev/urandom: %s\n", strerror(errno));
            abort();
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < chars; i++)
        out[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[chars] = '\0';
}

static int dev_token_valid(const dev_token *t, time_t now)
{
    return now < t->expires_at && (t->invalid_after == 0 || now < t->invalid_after);
}

static size_t dev_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static void dev_index_put(dev_index *ix, const char *key, size_t pos)
{
    size_t i = dev_hash(key) & (ix->cap - 1);
    while (ix->slot[i] != 0)
        i = (i + 1) & (ix->cap - 1);
    ix->slot[i] = pos + 1;
}

/* The token whose access (by_refresh 0) or refresh (1) string is key; NULL when none. */
static dev_token *dev_find(const char *key, int by_refresh)
{
    const dev_index *ix = by_refresh ? &S.by_refresh : &S.by_access;
    if (key == NULL || key[0] == '\0' || ix->cap == 0) return NULL;
    for (size_t i = dev_hash(key) & (ix->cap - 1); ix->slot[i] != 0; i = (i + 1) & (ix->cap - 1)) {
        dev_token *t = &S.tokens[ix->slot[i] - 1];
        if (strcmp(by_refresh ? t->refresh : t->access, key) == 0) return t;
    }
    return NULL;
}

/* Rebuilds both indexes with cap slots; -1 when out of memory (the old ones are kept). */
static int dev_reindex(size_t cap)
{
    size_t *a = calloc(cap, sizeof *a), *r = calloc(cap, sizeof *r);
    if (a == NULL || r == NULL) {
        free(a);
        free(r);
        return -1;
    }
    free(S.by_access.slot);
    free(S.by_refresh.slot);
    S.by_access = (dev_index){a, cap};
    S.by_refresh = (dev_index){r, cap};
    for (size_t i = 0; i < S.ntokens; i++) {
        dev_index_put(&S.by_access, S.tokens[i].access, i);
        if (S.tokens[i].refresh[0]) dev_index_put(&S.by_refresh, S.tokens[i].refresh, i);
    }
    return 0;
}

static char *dev_strndup_cap(const char *s)
{
    return strndup(s ? s : "", DEV_FIELD_CAP);
}

/* Issues a token (an APP token when username is NULL); the caller holds S.mu. All arguments
 * are copied. NULL when out of memory. */
static dev_token *dev_issue(const char *username, const char *env_name, const char *protocol,
                            const char *need_new_token, const char *client_ip)
{
    if (S.ntokens == S.cap) {
        size_t cap = S.cap ? S.cap * 2 : 64;
        dev_token *p = realloc(S.tokens, cap * sizeof *p);
        if (p == NULL) return NULL;
        S.tokens = p;
        S.cap = cap;
    }
    if ((S.ntokens + 1) * 2 >= S.by_access.cap &&
        dev_reindex(S.by_access.cap ? S.by_access.cap * 2 : 256) != 0)
        return NULL;
    dev_token *t = &S.tokens[S.ntokens];
    memset(t, 0, sizeof *t);
    do /* 160 random bits never collide in practice; make sure anyway */
        dev_random_hex(t->access, DEV_TOKEN_CHARS);
    while (dev_find(t->access, 0) != NULL);
    t->need_new_token = dev_strndup_cap(need_new_token);
    t->client_ip = dev_strndup_cap(client_ip);
    if (username != NULL) {
        do
            dev_random_hex(t->refresh, DEV_TOKEN_CHARS);
        while (strcmp(t->refresh, t->access) == 0 || dev_find(t->refresh, 1) != NULL);
        t->username = strdup(username);
    }
    if (t->need_new_token == NULL || t->client_ip == NULL || (username != NULL && t->username == NULL)) {
        free(t->need_new_token);
        free(t->client_ip);
        free(t->username);
        return NULL;
    }
    snprintf(t->env_name, sizeof t->env_name, "%s", env_name ? env_name : "");
    t->protocol = protocol;
    t->issued_at = time(NULL);
    t->expires_at = t->issued_at + S.ttl;
    dev_index_put(&S.by_access, t->access, S.ntokens);
    if (t->refresh[0]) dev_index_put(&S.by_refresh, t->refresh, S.ntokens);
    S.ntokens++;
    return t;
}

static void dev_forget_tokens(void)
{
    for (size_t i = 0; i < S.ntokens; i++) {
        free(S.tokens[i].username);
        free(S.tokens[i].need_new_token);
        free(S.tokens[i].client_ip);
    }
    S.ntokens = 0;
    if (S.by_access.slot) memset(S.by_access.slot, 0, S.by_access.cap * sizeof(size_t));
    if (S.by_refresh.slot) memset(S.by_refresh.slot, 0, S.by_refresh.cap * sizeof(size_t));
}

/* ---- text from outside ---------------------------------------------------------------------- */

/* A JSON string of n bytes of s: as is when it is valid UTF-8 without NUL, else with every
 * byte outside printable ASCII written as \xNN. Never NULL unless out of memory. */
static json_t *dev_text(const char *s, size_t n)
{
    if (s == NULL) return json_string("");
    if (memchr(s, '\0', n) == NULL) {
        json_t *j = json_stringn(s, n);
        if (j != NULL) return j;
    }
    char *out = malloc(n * 4 + 1);
    if (out == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[k++] = (char)ch;
        else
            k += (size_t)sprintf(out + k, "\\x%02x", ch);
    }
    json_t *j = json_stringn(out, k);
    free(out);
    return j;
}

/* Strict decimal in [lo, hi]; 0 on success. */
static int dev_parse_long(const char *s, long lo, long hi, long *out)
{
    if (s == NULL || *s == '\0') return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int dev_is_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

static int dev_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- responses -------------------------------------------------------------------------------- */

static enum MHD_Result dev_send_text(struct MHD_Connection *c, unsigned status, const char *type,
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

/* Sends j (stolen; NULL means out of memory) as JSON. */
static enum MHD_Result dev_send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return dev_send_text(c, 500, "application/json",
                             "{\"message\":\"bkoauth-devserver: out of memory\"}");
    enum MHD_Result ret = dev_send_text(c, status, "application/json", text);
    free(text);
    return ret;
}

static enum MHD_Result dev_send_message(struct MHD_Connection *c, unsigned status, const char *message)
{
    return dev_send_json(c, status, json_pack("{s:i, s:s}", "code", (int)status, "message", message));
}

/* A business failure in the protocol's shape. */
static json_t *dev_failure(int ee, long code, const char *message)
{
    json_t *m = dev_text(message, strlen(message));
    if (ee) return json_pack("{s:I, s:o, s:n}", "code", (json_int_t)code, "message", m, "data");
    return json_pack("{s:b, s:I, s:o, s:n}", "result", 0, "code", (json_int_t)code, "message", m, "data");
}

/* A success with t's grant in the protocol's shape. */
static json_t *dev_grant(int ee, const dev_token *t)
{
    json_t *data =
        json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s}}", "access_token", t->access, "refresh_token",
                  t->refresh, "expires_in", (json_int_t)(t->expires_at - time(NULL)), "scope", "", "identity",
                  "username", t->username ? t->username : "", "user_type", t->username ? "bkuser" : "app");
    if (data == NULL) return NULL;
    if (ee) return json_pack("{s:i, s:s, s:o}", "code", 0, "message", "", "data", data);
    return json_pack("{s:b, s:i, s:s, s:o}", "result", 1, "code", 0, "message", "", "data", data);
}

/* The truncated fault: a Content-Length of the whole body, half of it sent, then the connection
 * is closed. */
typedef struct dev_partial {
    char *text;
    size_t len;
} dev_partial;

static ssize_t dev_partial_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    dev_partial *p = cls;
    size_t half = p->len / 2;
    if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = half - (size_t)pos < max ? half - (size_t)pos : max;
    memcpy(buf, p->text + pos, n);
    return (ssize_t)n;
}

static void dev_partial_free(void *cls)
{
    dev_partial *p = cls;
    free(p->text);
    free(p);
}

/* Sends j (stolen) cut in half. */
static enum MHD_Result dev_send_truncated(struct MHD_Connection *c, json_t *j)
{
    dev_partial *p = calloc(1, sizeof *p);
    if (p != NULL) p->text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (p == NULL || p->text == NULL) {
        if (p) free(p);
        return MHD_NO;
    }
    p->len = strlen(p->text);
    struct MHD_Response *r =
        MHD_create_response_from_callback(p->len, 1024, dev_partial_read, p, dev_partial_free);
    if (r == NULL) {
        dev_partial_free(p);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- requests --------------------------------------------------------------------------------- */

static enum MHD_Result dev_add_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_t *k = dev_text(key, key ? strlen(key) : 0);
    const char *ks = json_string_value(k);
    if (ks != NULL) json_object_set_new(cls, ks, dev_text(value, value ? strlen(value) : 0));
    json_decref(k);
    return MHD_YES;
}

/* Records the call as S.last; the caller holds S.mu. */
static void dev_record_last(struct MHD_Connection *c, const char *method, const char *url, const dev_req *rq)
{
    json_t *headers = json_object(), *args = json_object();
    MHD_get_connection_values(c, MHD_HEADER_KIND, dev_add_value, headers);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, dev_add_value, args);
    const char *q = rq->uri ? strchr(rq->uri, '?') : NULL;
    json_t *last =
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "method", dev_text(method, strlen(method)), "path",
                  dev_text(url, strlen(url)), "query", dev_text(q ? q + 1 : "", q ? strlen(q + 1) : 0),
                  "args", args, "body", dev_text(rq->body, rq->body ? rq->len : 0), "headers", headers);
    json_decref(S.last);
    S.last = last;
}

static const char *dev_arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static const char *dev_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The user whose credential is value; NULL when none. */
static const char *dev_user_of(const char *value)
{
    for (int i = 0; value && i < S.users; i++)
        if (strcmp(S.cred[i], value) == 0) return S.user[i];
    return NULL;
}

static enum MHD_Result dev_cred_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)key;
    const char **user = cls;
    if (*user == NULL) *user = dev_user_of(value);
    return MHD_YES;
}

/* The user of the first string (or integer) field of an ee body that is a credential. */
static const char *dev_body_user(json_t *body)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        char num[32];
        const char *s = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            s = num;
        }
        const char *user = dev_user_of(s);
        if (user != NULL) return user;
    }
    return NULL;
}

enum dev_kind { K_NONE, K_APP, K_USER, K_REFRESH };

/* Does the token work of one SSM call; the caller holds S.mu. Sets *status (HTTP) and *ok (a
 * grant was issued). Returns the answer (NULL: out of memory). */
static json_t *dev_serve(struct MHD_Connection *c, int ee, enum dev_kind kind, json_t *body, unsigned *status,
                         int *ok)
{
    *status = 200;
    *ok = 0;
    const char *code = ee ? dev_header(c, "X-BK-APP-CODE") : dev_arg(c, "app_code");
    const char *secret = ee ? dev_header(c, "X-BK-APP-SECRET") : dev_arg(c, "app_secret");
    if (!dev_streq(code, S.app_code)) {
        if (ee) *status = 401;
        return dev_failure(ee, 1301,
                           code && code[0] ? "app_code is unknown: check APP_CODE" : "app_code is missing");
    }
    /* the ieod refresh call carries no secret */
    if ((kind != K_REFRESH || ee) && !dev_streq(secret, S.app_secret)) {
        if (ee) *status = 401;
        return dev_failure(ee, 1302,
                           secret && secret[0] ? "app_secret is wrong for this app_code: check SECRET_KEY"
                                               : "app_secret is missing");
    }
    const char *env = ee ? "" : dev_arg(c, "env_name");
    if (!ee && !dev_streq(env, "prod") && !dev_streq(env, "test"))
        return dev_failure(ee, 1303, "env_name must be prod or test");
    const char *protocol = ee ? "ee" : "ieod";
    const char *nnt = ee ? "" : dev_arg(c, "need_new_token");
    if (kind == K_NONE) return dev_failure(ee, 1300, "grant_type is missing or not supported here");
    if (kind == K_APP) {
        if (ee && !dev_streq(json_string_value(json_object_get(body, "id_provider")), "client"))
            return dev_failure(ee, 1309, "id_provider must be client for grant_type client_credentials");
        dev_token *t = dev_issue(NULL, env, protocol, nnt, NULL);
        *ok = t != NULL;
        return t ? dev_grant(ee, t) : dev_failure(ee, 1500, "the devserver is out of memory");
    }
    if (kind == K_USER) {
        const char *user = NULL;
        if (ee && !dev_streq(json_string_value(json_object_get(body, "id_provider")), "bk_login"))
            return dev_failure(ee, 1309, "id_provider must be bk_login for grant_type authorization_code");
        if (ee)
            user = dev_body_user(body);
        else
            MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, dev_cred_iter, (void *)&user);
        if (user == NULL)
            return dev_failure(ee, 1304,
                               "the user's login credential is missing, invalid or expired: log in again");
        dev_token *t = dev_issue(user, env, protocol, nnt, ee ? NULL : dev_arg(c, "bk_client_ip"));
        *ok = t != NULL;
        return t ? dev_grant(ee, t) : dev_failure(ee, 1500, "the devserver is out of memory");
    }
    /* K_REFRESH */
    const char *rt =
        ee ? json_string_value(json_object_get(body, "refresh_token")) : dev_arg(c, "refresh_token");
    if (!ee && !dev_streq(dev_arg(c, "grant_type"), "refresh_token"))
        return dev_failure(ee, 1305, "grant_type must be refresh_token on /auth_api/refresh_token/");
    if (rt == NULL || rt[0] == '\0') return dev_failure(ee, 1307, "refresh_token is missing");
    dev_token *old = dev_find(rt, 1);
    if (old == NULL) return dev_failure(ee, 1307, "refresh_token is unknown or invalid");
    if (old->refresh_used) return dev_failure(ee, 1306, "refresh_token already used");
    if (!ee && old->env_name[0] && strcmp(old->env_name, env) != 0)
        return dev_failure(ee, 1308,
                           strcmp(old->env_name, "prod") == 0
                               ? "refresh_token was issued for env_name prod: send that env_name"
                               : "refresh_token was issued for env_name test: send that env_name");
    time_t now = time(NULL);
    /* copies: dev_issue may move S.tokens */
    char old_env[sizeof old->env_name];
    memcpy(old_env, old->env_name, sizeof old_env);
    size_t old_pos = (size_t)(old - S.tokens);
    dev_token *t =
        dev_issue(old->username ? old->username : "", ee ? old_env : env, protocol, nnt, old->client_ip);
    if (t == NULL) return dev_failure(ee, 1500, "the devserver is out of memory");
    old = &S.tokens[old_pos];
    old->refresh_used = 1;
    if (old->invalid_after == 0 || old->invalid_after > now + S.overlap) old->invalid_after = now + S.overlap;
    *ok = 1;
    return dev_grant(ee, t);
}

/* Sleeps ms milliseconds, or less when the server is stopping. */
static void dev_sleep_ms(long ms)
{
    while (ms > 0 && !atomic_load(&dev_stopping)) {
        long step = ms < 50 ? ms : 50;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static enum MHD_Result dev_header_line(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    FILE *f = cls;
    fprintf(f, "%s: %s; ", key ? key : "", value ? value : "");
    return MHD_YES;
}

/* The echo fault's message: the request quoted back whole, as a careless service or a proxy
 * does in its errors - the raw request line (percent-encoded, as sent, then in lower case and
 * with '+' for a space), the decoded parameters, every header and the body, as is and once more
 * JSON-escaped (with \/). Secrets included: that is the point. NULL when out of memory. */
static char *dev_echo_message(struct MHD_Connection *c, const char *method, const dev_req *rq)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) return NULL;
    const char *uri = rq->uri ? rq->uri : "";
    fprintf(f, "bad request: %s %s; lower: ", method, uri);
    for (const char *p = uri; *p; p++)
        fputc(p > uri && p[-1] == '%'         ? tolower((unsigned char)*p)
              : (p > uri + 1 && p[-2] == '%') ? tolower((unsigned char)*p)
                                              : *p,
              f);
    fputs("; form: ", f);
    for (const char *p = uri; *p; p++) {
        if (strncmp(p, "%20", 3) == 0) {
            fputc('+', f);
            p += 2;
        } else {
            fputc(*p, f);
        }
    }
    fputs("; args: ", f);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, dev_header_line, f);
    fputs("headers: ", f);
    MHD_get_connection_values(c, MHD_HEADER_KIND, dev_header_line, f);
    fprintf(f, "body: %.*s; escaped: ", (int)(rq->body ? rq->len : 0), rq->body ? rq->body : "");
    json_t *b = json_stringn(rq->body ? rq->body : "", rq->body ? rq->len : 0);
    char *esc = b ? json_dumps(b, JSON_ENCODE_ANY | JSON_ESCAPE_SLASH) : NULL;
    if (esc != NULL) fputs(esc, f);
    free(esc);
    json_decref(b);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* The answer to an SSM call that was counted: its fault, or the service's answer. Takes body. */
static enum MHD_Result dev_answer(struct MHD_Connection *c, const dev_fault *f, int ee, enum dev_kind kind,
                                  json_t *body, long ttl, const char *method, const dev_req *rq)
{
    if (f->kind[0] != '\0' && strcmp(f->kind, "slow") != 0) { /* a faulted call changes no token */
        json_decref(body);
        if (strcmp(f->kind, "drop") == 0) return MHD_NO;
        if (strcmp(f->kind, "raw") == 0)
            return dev_send_text(c, (unsigned)f->status, "application/json", f->body ? f->body : "");
        if (strcmp(f->kind, "echo") == 0) {
            char *m = dev_echo_message(c, method, rq);
            if (m == NULL) return MHD_NO;
            json_t *j = dev_failure(ee, f->code, m);
            free(m);
            return dev_send_json(c, 200, j);
        }
        if (strcmp(f->kind, "http500") == 0)
            return dev_send_text(c, 500, "text/html",
                                 "<!DOCTYPE html><html><head><title>Server Error (500)</title></head>"
                                 "<body><h1>Server Error (500)</h1></body></html>");
        if (strcmp(f->kind, "html") == 0)
            return dev_send_text(c, 200, "text/html; charset=utf-8",
                                 "<!DOCTYPE html><html><head><title>Login</title></head>"
                                 "<body><h1>Please log in</h1></body></html>");
        if (strcmp(f->kind, "business") == 0)
            return dev_send_json(c, 200, dev_failure(ee, f->code, f->message));
        /* truncated: a grant that looks real, cut in the middle */
        dev_token fake = {.expires_at = time(NULL) + ttl};
        dev_random_hex(fake.access, DEV_TOKEN_CHARS);
        return dev_send_truncated(c, dev_grant(ee, &fake));
    }
    if (f->kind[0] != '\0') dev_sleep_ms(f->delay_ms); /* slow, then a normal answer */

    unsigned status;
    int ok;
    pthread_mutex_lock(&S.mu);
    json_t *answer = dev_serve(c, ee, kind, body, &status, &ok);
    if (kind == K_REFRESH && !ok) S.refresh_failed++;
    pthread_mutex_unlock(&S.mu);
    json_decref(body);
    return dev_send_json(c, status, answer);
}

static enum MHD_Result dev_ssm_call(struct MHD_Connection *c, const char *method, const char *url,
                                    dev_req *rq)
{
    int ee = 0, get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    enum dev_kind kind = K_NONE;
    json_t *body = NULL;
    if (strcmp(url, "/auth_api/token/") == 0 || strcmp(url, "/auth_api/refresh_token/") == 0) {
        if (!get) return dev_send_message(c, 405, "the ieod SSM endpoints take GET");
        const char *g = dev_arg(c, "grant_type");
        if (strcmp(url, "/auth_api/refresh_token/") == 0)
            kind = K_REFRESH; /* its grant_type is checked in dev_serve */
        else
            kind = dev_streq(g, "client_credentials")   ? K_APP
                   : dev_streq(g, "authorization_code") ? K_USER
                                                        : K_NONE;
    } else if (strcmp(url, "/api/v1/auth/access-tokens") == 0 ||
               strcmp(url, "/api/v1/auth/access-tokens/refresh") == 0) {
        if (!post) return dev_send_message(c, 405, "the ee SSM endpoints take POST with a JSON body");
        ee = 1;
        json_error_t je;
        body = rq->body ? json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &je) : NULL;
        if (!json_is_object(body)) {
            /* where, not what: jansson's own text may quote a credential of the body */
            char why[160];
            if (rq->body == NULL || rq->len == 0)
                snprintf(why, sizeof why, "the body is empty: send a JSON object");
            else if (body != NULL)
                snprintf(why, sizeof why, "the body is JSON but not an object: send a JSON object");
            else if (json_error_code(&je) == json_error_duplicate_key)
                snprintf(why, sizeof why, "the body repeats a key (line %d, column %d): send each field once",
                         je.line, je.column);
            else
                snprintf(why, sizeof why,
                         "the body is not valid JSON (line %d, column %d): send a JSON object", je.line,
                         je.column);
            json_decref(body);
            return dev_send_message(c, 400, why);
        }
        if (strcmp(url, "/api/v1/auth/access-tokens/refresh") == 0) {
            kind = K_REFRESH;
        } else {
            const char *g = json_string_value(json_object_get(body, "grant_type"));
            kind = dev_streq(g, "client_credentials")   ? K_APP
                   : dev_streq(g, "authorization_code") ? K_USER
                                                        : K_NONE;
        }
    } else {
        return dev_send_message(c, 404, "no such SSM endpoint (see docs/DEVSERVER.md)");
    }

    pthread_mutex_lock(&S.mu);
    S.total++;
    if (ee)
        S.ee++;
    else
        S.ieod++;
    if (kind == K_APP)
        S.app_token++;
    else if (kind == K_USER)
        S.user_token++;
    else if (kind == K_REFRESH)
        S.refresh++;
    dev_record_last(c, method, url, rq);
    dev_fault f = {{0}, 0, 0, 0, {0}, NULL, 0};
    if (S.fault.remaining > 0) {
        f = S.fault;
        f.body = S.fault.body ? strdup(S.fault.body) : NULL;
        if (--S.fault.remaining == 0) {
            S.fault.kind[0] = '\0';
            free(S.fault.body);
            S.fault.body = NULL;
        }
        S.faulted++;
    }
    long ttl = S.ttl;
    if (++S.in_flight > S.in_flight_peak) S.in_flight_peak = S.in_flight;
    pthread_mutex_unlock(&S.mu);
    enum MHD_Result r = dev_answer(c, &f, ee, kind, body, ttl, method, rq);
    free(f.body);
    pthread_mutex_lock(&S.mu);
    S.in_flight--;
    pthread_mutex_unlock(&S.mu);
    return r;
}

/* ---- /__dev/ ----------------------------------------------------------------------------------- */

/* The caller holds S.mu. 'last' is a copy: the answer is written out after S.mu is released,
 * while another call may replace S.last. */
static json_t *dev_counters(void)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:o}", "app_token",
                     (json_int_t)S.app_token, "user_token", (json_int_t)S.user_token, "refresh",
                     (json_int_t)S.refresh, "refresh_failed", (json_int_t)S.refresh_failed, "faulted",
                     (json_int_t)S.faulted, "total", (json_int_t)S.total, "tokens", (json_int_t)S.ntokens,
                     "in_flight", (json_int_t)S.in_flight, "in_flight_peak", (json_int_t)S.in_flight_peak,
                     "by_protocol", "ieod", (json_int_t)S.ieod, "ee", (json_int_t)S.ee, "last",
                     S.last ? json_deep_copy(S.last) : json_null());
}

static json_t *dev_token_info(const char *at)
{
    dev_token *t = dev_find(at, 0);
    if (t == NULL) return json_pack("{s:b, s:s}", "valid", 0, "kind", "unknown");
    time_t now = time(NULL);
    return json_pack("{s:b, s:s?, s:I, s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "valid", dev_token_valid(t, now),
                     "username", t->username, "expires_in", (json_int_t)(t->expires_at - now), "kind",
                     t->username ? "user" : "app", "env_name", t->env_name, "protocol", t->protocol,
                     "need_new_token", t->need_new_token, "bk_client_ip", t->client_ip, "refreshed",
                     t->invalid_after != 0, "refresh_token_used", t->refresh_used);
}

/* POST /__dev/fault; the caller holds S.mu. */
static json_t *dev_set_fault(struct MHD_Connection *c, unsigned *status)
{
    static const char *const kinds[] = {"http500", "truncated", "html", "slow",
                                        "drop",    "business",  "echo", "raw"};
    const char *kind = dev_arg(c, "kind"), *count = dev_arg(c, "count"), *delay = dev_arg(c, "delay_ms"),
               *code = dev_arg(c, "code"), *message = dev_arg(c, "message"), *rbody = dev_arg(c, "body"),
               *rstatus = dev_arg(c, "status");
    long st = 200;
    int known = 0;
    for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
        known |= strcmp(kind, kinds[i]) == 0;
    long n = 1, ms = 0, cd = 1500;
    const char *why = NULL;
    if (!known)
        why = "kind must be http500, truncated, html, slow, drop, business, echo or raw";
    else if (rbody && strlen(rbody) > DEV_MAX_RAW)
        why = "body must be at most 16384 bytes";
    else if (rstatus && dev_parse_long(rstatus, 100, 999, &st) != 0)
        why = "status must be a whole number from 100 to 999";
    else if (count && dev_parse_long(count, 0, DEV_MAX_FAULT_COUNT, &n) != 0)
        why = "count must be a whole number from 0 to 1000000";
    else if (delay && dev_parse_long(delay, 0, DEV_MAX_DELAY_MS, &ms) != 0)
        why = "delay_ms must be a whole number from 0 to 600000 (0: the default 2000)";
    else if (code && dev_parse_long(code, INT_MIN, INT_MAX, &cd) != 0)
        why = "code must be a whole number";
    else if (message && (strlen(message) >= sizeof S.fault.message || !dev_is_utf8(message)))
        why = "message must be UTF-8 text shorter than 256 bytes";
    if (why != NULL) {
        *status = 400;
        return json_pack("{s:b, s:s}", "ok", 0, "message", why);
    }
    free(S.fault.body);
    memset(&S.fault, 0, sizeof S.fault);
    if (strcmp(kind, "raw") == 0 && n > 0 && (S.fault.body = strdup(rbody ? rbody : "")) == NULL) {
        *status = 500;
        return json_pack("{s:b, s:s}", "ok", 0, "message", "the devserver is out of memory");
    }
    S.fault.status = st;
    if (n > 0) snprintf(S.fault.kind, sizeof S.fault.kind, "%s", kind);
    S.fault.remaining = n;
    S.fault.delay_ms = ms > 0 ? ms : 2000;
    S.fault.code = cd;
    snprintf(S.fault.message, sizeof S.fault.message, "%s",
             message ? message : "injected business error: the service refused the call");
    return json_pack("{s:b, s:s, s:I, s:I, s:I, s:s}", "ok", 1, "kind", kind, "count", (json_int_t)n,
                     "delay_ms", (json_int_t)S.fault.delay_ms, "code", (json_int_t)cd, "message",
                     S.fault.message);
}

/* POST /__dev/config (GET reads); the caller holds S.mu. */
static json_t *dev_config(struct MHD_Connection *c, int post, unsigned *status)
{
    const char *ttl = dev_arg(c, "ttl"), *overlap = dev_arg(c, "overlap");
    long t = S.ttl, o = S.overlap;
    if (post && ((ttl && dev_parse_long(ttl, 0, DEV_MAX_SECONDS, &t) != 0) ||
                 (overlap && dev_parse_long(overlap, 0, DEV_MAX_SECONDS, &o) != 0))) {
        *status = 400;
        return json_pack("{s:b, s:s}", "ok", 0, "message",
                         "ttl and overlap must be whole seconds from 0 to 3153600000");
    }
    S.ttl = t;
    S.overlap = o;
    return json_pack("{s:b, s:I, s:I}", "ok", 1, "ttl", (json_int_t)S.ttl, "overlap", (json_int_t)S.overlap);
}

static enum MHD_Result dev_call(struct MHD_Connection *c, const char *method, const char *url)
{
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    static const struct {
        const char *path;
        int post; /* 1: POST, 0: GET, 2: either */
    } routes[] = {{"/__dev/health", 0}, {"/__dev/counters", 0}, {"/__dev/token", 0},
                  {"/__dev/reset", 1},  {"/__dev/fault", 1},    {"/__dev/config", 2}};
    size_t r = 0;
    while (r < sizeof routes / sizeof routes[0] && strcmp(url, routes[r].path) != 0)
        r++;
    if (r == sizeof routes / sizeof routes[0])
        return dev_send_message(c, 404, "no such /__dev/ endpoint (see docs/DEVSERVER.md)");
    if ((routes[r].post == 1 && !post) || (routes[r].post == 0 && !get) || (!post && !get))
        return dev_send_message(c, 405,
                                routes[r].post == 1 ? "this endpoint takes POST" : "this endpoint takes GET");

    unsigned status = 200;
    json_t *answer = NULL;
    pthread_mutex_lock(&S.mu);
    if (strcmp(url, "/__dev/health") == 0) {
        answer = json_pack("{s:b}", "ok", 1);
    } else if (strcmp(url, "/__dev/counters") == 0) {
        answer = dev_counters();
    } else if (strcmp(url, "/__dev/token") == 0) {
        const char *at = dev_arg(c, "access_token");
        if (at == NULL || at[0] == '\0') {
            status = 400;
            answer = json_pack("{s:b, s:s}", "valid", 0, "message", "access_token is missing");
        } else {
            answer = dev_token_info(at);
        }
    } else if (strcmp(url, "/__dev/reset") == 0) {
        S.app_token = S.user_token = S.refresh = S.refresh_failed = S.faulted = S.total = S.ieod = S.ee = 0;
        S.in_flight_peak = S.in_flight; /* calls still being answered stay counted */
        free(S.fault.body);
        memset(&S.fault, 0, sizeof S.fault);
        json_decref(S.last);
        S.last = NULL;
        int forget = dev_streq(dev_arg(c, "tokens"), "1");
        if (forget) dev_forget_tokens();
        answer = json_pack("{s:b, s:b}", "ok", 1, "tokens_forgotten", forget);
    } else if (strcmp(url, "/__dev/fault") == 0) {
        answer = dev_set_fault(c, &status);
    } else {
        answer = dev_config(c, post, &status);
    }
    pthread_mutex_unlock(&S.mu);
    return dev_send_json(c, status, answer);
}

static enum MHD_Result dev_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    (void)cls;
    (void)version;
    dev_req *rq = *con_cls;
    if (rq == NULL) { /* the URI log callback could not allocate */
        rq = calloc(1, sizeof *rq);
        if (rq == NULL) return MHD_NO;
        *con_cls = rq;
    }
    if (!rq->started) { /* the first call comes before any body: ask for the body */
        rq->started = 1;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (rq->too_big || rq->len + *upload_size > DEV_MAX_BODY) {
            rq->too_big = 1; /* read and drop the rest */
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
    if (rq->too_big) return dev_send_message(c, 413, "the request body is larger than 64 KiB");
    if (strncmp(url, "/__dev/", 7) == 0) return dev_call(c, method, url);
    return dev_ssm_call(c, method, url, rq);
}

static void *dev_log_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    dev_req *rq = calloc(1, sizeof *rq);
    if (rq != NULL) rq->uri = strdup(uri ? uri : "");
    return rq;
}

static void dev_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    dev_req *rq = *con_cls;
    if (rq != NULL) {
        free(rq->uri);
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

/* ---- main ------------------------------------------------------------------------------------- */

static void dev_usage(FILE *f)
{
    fprintf(
        f,
        "usage: bkoauth-devserver [--listen HOST:PORT] [--port-file FILE] [--app-code C] [--app-secret S]\n"
        "                         [--user CREDENTIAL=USERNAME]... [--ttl SECONDS] [--overlap SECONDS]\n"
        "                         [--quiet] [--allow-remote] [--help]\n"
        "A local BlueKing SSM token service for development and tests (ieod and ee protocols).\n"
        "  --listen HOST:PORT   IPv4 address to listen on (default 127.0.0.1:0; port 0 picks a free port)\n"
        "  --port-file FILE     write the port there (atomically) once listening\n"
        "  --app-code C         the app code accepted (default demo-app)\n"
        "  --app-secret S       its secret (default demo-secret)\n"
        "  --user CRED=NAME     a login credential (e.g. a bk_token value) and its user; repeatable\n"
        "  --ttl SECONDS        token lifetime (default 15552000, 180 days)\n"
        "  --overlap SECONDS    how long an old access_token stays valid after a refresh (default 60)\n"
        "  --quiet              print nothing but errors\n"
        "  --allow-remote       allow a non-loopback address (a test server: never expose it)\n"
        "Test endpoints: /__dev/counters, /__dev/reset, /__dev/token, /__dev/fault, /__dev/config,\n"
        "/__dev/health (see docs/DEVSERVER.md). Stops on SIGINT or SIGTERM.\n");
}

/* Prints "bkoauth-devserver: <message>" and the usage on stderr; returns 2 (the exit status). */
__attribute__((format(printf, 1, 2))) static int dev_bad_arg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bkoauth-devserver: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    dev_usage(stderr);
    return 2;
}

/* Writes the port to path atomically (a temporary file renamed over it). 0 on success. */
static int dev_write_port_file(const char *path, unsigned port)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (tmp == NULL) return -1;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL && fprintf(f, "%u\n", port) > 0;
    if (f != NULL && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    }
    free(tmp);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:0", *port_file = NULL;
    int allow_remote = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            dev_usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            S.quiet = 1;
            continue;
        } else if (strcmp(a, "--allow-remote") == 0) {
            allow_remote = 1;
            continue;
        }
        static const char *const valued[] = {"--listen", "--port-file", "--app-code", "--app-secret",
                                             "--user",   "--ttl",       "--overlap"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known |= strcmp(a, valued[k]) == 0;
        if (!known) return dev_bad_arg("unknown option %s", a);
        if (v == NULL) return dev_bad_arg("%s needs a value", a);
        i++;
        if (strcmp(a, "--listen") == 0) {
            listen_at = v;
        } else if (strcmp(a, "--port-file") == 0) {
            if (v[0] == '\0') return dev_bad_arg("--port-file needs a file name");
            port_file = v;
        } else if (strcmp(a, "--app-code") == 0 || strcmp(a, "--app-secret") == 0) {
            if (v[0] == '\0') return dev_bad_arg("%s must not be empty", a);
            if (strcmp(a, "--app-code") == 0)
                S.app_code = v;
            else
                S.app_secret = v;
        } else if (strcmp(a, "--user") == 0) {
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v || eq[1] == '\0')
                return dev_bad_arg("--user wants CREDENTIAL=USERNAME, got '%s'", v);
            if (S.users >= DEV_MAX_USERS)
                return dev_bad_arg("too many --user options (at most %d)", DEV_MAX_USERS);
            S.cred[S.users] = strndup(v, (size_t)(eq - v));
            if (S.cred[S.users] == NULL) return 1;
            S.user[S.users++] = eq + 1;
        } else if (strcmp(a, "--ttl") == 0) {
            if (dev_parse_long(v, 0, DEV_MAX_SECONDS, &S.ttl) != 0)
                return dev_bad_arg("--ttl wants whole seconds (0 to 3153600000), got '%s'", v);
        } else if (dev_parse_long(v, 0, DEV_MAX_SECONDS, &S.overlap) != 0) { /* --overlap */
            return dev_bad_arg("--overlap wants whole seconds (0 to 3153600000), got '%s'", v);
        }
    }

    const char *colon = strrchr(listen_at, ':');
    long port = -1;
    char host[64];
    if (colon == NULL || colon == listen_at || (size_t)(colon - listen_at) >= sizeof host ||
        dev_parse_long(colon + 1, 0, 65535, &port) != 0)
        return dev_bad_arg("--listen wants HOST:PORT (e.g. 127.0.0.1:0), got '%s'", listen_at);
    memcpy(host, listen_at, (size_t)(colon - listen_at));
    host[colon - listen_at] = '\0';
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return dev_bad_arg("--listen: '%s' is not an IPv4 address (or localhost)", host);
    if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127 && !allow_remote) {
        fprintf(stderr,
                "bkoauth-devserver: refusing to listen on %s, which is not a loopback address: this test "
                "server hands out tokens to anyone (use --allow-remote if you really mean it)\n",
                host);
        return 2;
    }

    dev_urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (dev_urandom < 0) {
        fprintf(stderr, "bkoauth-devserver: cannot open /dev/urandom: %s\n", strerror(errno));
        return 1;
    }

    /* SIGINT/SIGTERM are taken by sigwait below; every thread inherits the blocked mask */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    if (!S.quiet) flags |= MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, dev_handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_URI_LOG_CALLBACK, dev_log_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                         dev_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                         MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bkoauth-devserver: cannot listen on %s (in use? try port 0): %s\n", listen_at,
                strerror(errno));
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info && info->port ? info->port : (unsigned)port;
    if (port_file != NULL && dev_write_port_file(port_file, bound) != 0) {
        fprintf(stderr, "bkoauth-devserver: cannot write the port file %s: %s\n", port_file, strerror(errno));
        MHD_stop_daemon(d);
        return 1;
    }
    if (!S.quiet) {
        printf("bkoauth-devserver listening on http://%s:%u\n", host, bound);
        printf("app %s, %d user%s, ttl %ld s, overlap %ld s; test endpoints under /__dev/\n", S.app_code,
               S.users, S.users == 1 ? "" : "s", S.ttl, S.overlap);
        fflush(stdout);
    }

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    atomic_store(&dev_stopping, 1);
    MHD_stop_daemon(d); /* waits for the connection threads */
    if (port_file != NULL) unlink(port_file);
    if (!S.quiet) fprintf(stderr, "bkoauth-devserver: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pthread_mutex_lock(&S.mu);
    dev_forget_tokens();
    free(S.tokens);
    free(S.by_access.slot);
    free(S.by_refresh.slot);
    json_decref(S.last);
    free(S.fault.body);
    pthread_mutex_unlock(&S.mu);
    for (int i = 0; i < S.users; i++)
        free(S.cred[i]);
    close(dev_urandom);
    return 0;
}
