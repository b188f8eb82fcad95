/* ssm.c - the SSM client: checks what a call needs, lets the protocol (ieod.c or ee.c) build it,
 * carries it over http.c, and parses the answer into a grant (one parser for both protocols). */
#include "ssm_int.h"
#include "../json.h"
#include "http.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* The token table keeps access_token and refresh_token in varchar(255). */
#define SSM_TOKEN_MAX 255
/* expires_in beyond this (about 317 years) is not believable and would overflow time arithmetic. */
#define SSM_EXPIRES_MAX 10000000000LL
/* At most this many bytes of the service's own "message" go into an error. */
#define SSM_MESSAGE_MAX 200

struct ssm_client {
    const bk_settings *s;    /* borrowed */
    const bk_logger *logger; /* borrowed */
    http_client *http;       /* owned */
    atomic_ulong calls;      /* calls sent (or attempted) */
    atomic_ulong failures[SSM_FAIL_KINDS];
};

static _Thread_local ssm_failure last_failure;

ssm_failure ssm_last_failure(void)
{
    return last_failure;
}

int ssm_failure_is_outage(ssm_failure f)
{
    return f == SSM_FAIL_NETWORK || f == SSM_FAIL_SERVER || f == SSM_FAIL_ANSWER;
}

const char *ssm_failure_name(ssm_failure f)
{
    static const char *const names[SSM_FAIL_KINDS] = {"none",   "network", "server",
                                                      "answer", "refused", "setup"};
    return (unsigned)f < SSM_FAIL_KINDS ? names[f] : "unknown";
}

void ssm_counts(const ssm_client *c, uint64_t *calls, uint64_t failures[SSM_FAIL_KINDS])
{
    *calls = atomic_load(&((ssm_client *)c)->calls);
    for (int i = 0; i < SSM_FAIL_KINDS; i++)
        failures[i] = atomic_load(&((ssm_client *)c)->failures[i]);
}

/* ---- grant and call records ------------------------------------------------------------- */

void ssm_grant_clear(ssm_grant *g)
{
    if (g == NULL) return;
    bk_wipe_free(g->access_token);
    bk_wipe_free(g->refresh_token);
    bkoauth__free(g->scope);
    memset(g, 0, sizeof *g);
}

static void ssm_buf_wipe_free(bk_buf *b)
{
    b->secret = 1;
    buf_free(b);
}

void ssm_call_clear(ssm_call *call)
{
    if (call == NULL) return;
    ssm_buf_wipe_free(&call->query);
    ssm_buf_wipe_free(&call->body);
    for (size_t i = 0; i < call->nheaders; i++)
        bk_wipe_free(call->headers[i]);
    memset(call, 0, sizeof *call);
}

int ssm_call_header(ssm_call *call, const char *name, const char *value)
{
    if (call->nheaders >= sizeof call->headers / sizeof call->headers[0]) return -1;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return -1; /* never a header injection; ssm.c rejects such settings earlier */
    bk_buf b = {NULL, 0, 0, 0, 1};
    buf_printf(&b, "%s: %s", name, value);
    if (b.oom) {
        ssm_buf_wipe_free(&b);
        return -1;
    }
    call->headers[call->nheaders++] = b.data;
    return 0;
}

int ssm_kv_has(const bk_kvlist *credentials, const char *key)
{
    if (credentials == NULL) return 0;
    for (size_t i = 0; i < credentials->count; i++)
        if (bk_streq(credentials->items[i].key, key)) return 1;
    return 0;
}

/* ---- the response parser ---------------------------------------------------------------- */

static const char *ssm_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

/* What a body that is not JSON looks like, for a person. */
static const char *ssm_describe_body(const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i == len) return "an empty body";
    if (body[i] == '<') return "an HTML page";
    return "text that is not JSON";
}

/* The service's own "message", printable and bounded, into buf ("" when none). */
static void ssm_service_message(const json_t *root, char *buf, size_t size)
{
    buf[0] = '\0';
    const json_t *m = json_is_object(root) ? json_object_get(root, "message") : NULL;
    if (!json_is_string(m)) return;
    const char *s = json_string_value(m); /* valid UTF-8 without NULs (jansson checks) */
    size_t max = size - 1 < SSM_MESSAGE_MAX ? size - 1 : SSM_MESSAGE_MAX;
    size_t n = 0, i = 0;
    while (s[i] != '\0') {
        unsigned char c = (unsigned char)s[i];
        size_t seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (n + seq > max) break;
        if (seq == 1) {
            buf[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
            i++;
            continue;
        }
        size_t k = 0;
        while (k < seq && s[i + k] != '\0')
            k++;
        memcpy(buf + n, s + i, k); /* whole UTF-8 sequences only */
        n += k;
        i += k;
    }
    if (s[i] != '\0' && max >= 3) { /* cut: end with "..." on a character boundary */
        size_t end = n;
        while (n > 0 && (n + 3 > max || (n < end && ((unsigned char)buf[n] & 0xC0) == 0x80)))
            n--;
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

/* The answer's "code" as a number: 1 and *out when present and numeric (or a numeric string). */
static int ssm_api_code(const json_t *root, long *out)
{
    const json_t *c = json_is_object(root) ? json_object_get(root, "code") : NULL;
    if (json_is_integer(c)) {
        json_int_t v = json_integer_value(c);
        *out = v > LONG_MAX ? LONG_MAX : v < LONG_MIN ? LONG_MIN : (long)v;
        return 1;
    }
    if (json_is_real(c)) {
        double d = json_real_value(c);
        if (isfinite(d) && d > (double)LONG_MIN && d < (double)LONG_MAX) {
            *out = (long)d;
            return 1;
        }
        return 0;
    }
    if (json_is_string(c)) {
        const char *s = json_string_value(c);
        char *end = NULL;
        if (*s == '\0' || isspace((unsigned char)*s)) return 0;
        long v = strtol(s, &end, 10);
        if (*end == '\0') {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* Reads expires_in: a number >= 0 or a numeric string. 0 or -1 with err filled. */
static int ssm_expires_in(const json_t *v, int64_t *out, bkoauth_error *err)
{
    double d;
    if (v == NULL) {
        err_set(err, BKOAUTH_E_TOKEN_API, "the grant has no data.expires_in");
        return -1;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0) {
            err_set(err, BKOAUTH_E_TOKEN_API, "data.expires_in is negative (%lld)", (long long)i);
            return -1;
        }
        if (i > SSM_EXPIRES_MAX) {
            err_set(err, BKOAUTH_E_TOKEN_API, "data.expires_in is implausibly large (%lld seconds)",
                    (long long)i);
            return -1;
        }
        *out = (int64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        d = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t digits = 0, dots = 0, i = 0;
        for (; s[i]; i++) {
            if (s[i] >= '0' && s[i] <= '9')
                digits++;
            else if (s[i] == '.' && dots == 0)
                dots++;
            else
                break;
        }
        if (s[i] != '\0' || digits == 0 || digits > 15) {
            err_set(err, BKOAUTH_E_TOKEN_API, "data.expires_in is a string that is not a number of seconds");
            return -1;
        }
        d = strtod(s, NULL);
    } else {
        err_set(err, BKOAUTH_E_TOKEN_API, "data.expires_in is %s, not a number of seconds", ssm_json_type(v));
        return -1;
    }
    if (!isfinite(d) || d < 0) {
        err_set(err, BKOAUTH_E_TOKEN_API, "data.expires_in is negative or not finite");
        return -1;
    }
    if (d > (double)SSM_EXPIRES_MAX) {
        err_set(err, BKOAUTH_E_TOKEN_API, "data.expires_in is implausibly large (%.0f seconds)", d);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

/* An optional string field of the grant: absent or null gives "". Returns the owned copy, or
 * NULL with err filled. max 0: no length limit. */
static char *ssm_optional_string(const json_t *data, const char *name, size_t max, int dump_other,
                                 bkoauth_error *err)
{
    const json_t *v = json_object_get(data, name);
    char *copy;
    if (v == NULL || json_is_null(v)) {
        copy = bk_strdup("");
    } else if (json_is_string(v)) {
        if (max > 0 && json_string_length(v) > max) {
            err_set(err, BKOAUTH_E_TOKEN_API,
                    "data.%s is %zu characters long, more than the %zu the token table holds", name,
                    json_string_length(v), max);
            return NULL;
        }
        copy = bk_strndup(json_string_value(v), json_string_length(v));
    } else if (dump_other) {
        copy = bkoauth__json_dump(v, JSON_COMPACT | JSON_ENCODE_ANY);
    } else {
        err_set(err, BKOAUTH_E_TOKEN_API, "data.%s is %s, not a string", name, ssm_json_type(v));
        return NULL;
    }
    if (copy == NULL) err_nomem(err);
    return copy;
}

static bkoauth_code ssm_grant_from(const json_t *data, ssm_grant *out, bkoauth_error *err)
{
    const json_t *at = json_object_get(data, "access_token");
    if (at == NULL || json_is_null(at))
        return err_set(err, BKOAUTH_E_TOKEN_API, "the grant has no data.access_token");
    if (!json_is_string(at))
        return err_set(err, BKOAUTH_E_TOKEN_API, "data.access_token is %s, not a string", ssm_json_type(at));
    if (json_string_length(at) == 0) return err_set(err, BKOAUTH_E_TOKEN_API, "data.access_token is empty");
    if (json_string_length(at) > SSM_TOKEN_MAX)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "data.access_token is %zu characters long, more than the %d the token table holds",
                       json_string_length(at), SSM_TOKEN_MAX);
    if (ssm_expires_in(json_object_get(data, "expires_in"), &out->expires_in, err) != 0)
        return BKOAUTH_E_TOKEN_API;
    out->refresh_token = ssm_optional_string(data, "refresh_token", SSM_TOKEN_MAX, 0, err);
    if (out->refresh_token == NULL) return err != NULL ? err->code : BKOAUTH_E_TOKEN_API;
    out->scope = ssm_optional_string(data, "scope", 0, 1, err);
    if (out->scope == NULL) return err != NULL ? err->code : BKOAUTH_E_NOMEM;
    out->access_token = bk_strndup(json_string_value(at), json_string_length(at));
    if (out->access_token == NULL) return err_nomem(err);
    return BKOAUTH_OK;
}

static const char *ssm_status_hint(long status)
{
    if (status >= 300 && status < 400)
        return "a redirect, which is not followed: set OAUTH_API_URL to the address it points to";
    if (status == 401 || status == 403)
        return "check APP_CODE/SECRET_KEY (or BKAUTH_TOKEN_APP_CODE/BKAUTH_TOKEN_SECRET_KEY)";
    if (status == 404 || status == 405)
        return "check OAUTH_API_URL and BKAUTH_BACKEND_TYPE (bk_token selects the ee protocol)";
    if (status >= 500) return "the service failed; retry later";
    return "check the request settings";
}

bkoauth_code ssm_parse_response(int protocol, long status, const char *body, size_t len, ssm_grant *out,
                                bkoauth_error *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = NULL;
    int truncated = 0;
    if (body != NULL && len > 0) {
        int oom = 0;
        root = bkoauth__json_loadb(body, len, 0, &jerr, &oom);
        if (oom) return err_set(err, BKOAUTH_E_NOMEM, "out of memory reading the SSM service's answer");
#if JANSSON_VERSION_HEX >= 0x020b00
        if (root == NULL && json_error_code(&jerr) == json_error_premature_end_of_input) truncated = 1;
#endif
    }
    char msg[SSM_MESSAGE_MAX + 1];
    ssm_service_message(root, msg, sizeof msg);
    long api_code = 0;
    int has_code = ssm_api_code(root, &api_code);
    bkoauth_code rc = BKOAUTH_E_TOKEN_API;
    last_failure = SSM_FAIL_ANSWER;

    if (status < 200 || status > 299) {
        last_failure = SSM_FAIL_SERVER;
        if (msg[0] != '\0')
            err_set(err, rc, "the service answered HTTP %ld, saying \"%s\" (%s)", status, msg,
                    ssm_status_hint(status));
        else if (root != NULL)
            err_set(err, rc, "the service answered HTTP %ld (%s)", status, ssm_status_hint(status));
        else
            err_set(err, rc, "the service answered HTTP %ld with %s (%s)", status,
                    truncated ? "a truncated JSON body" : ssm_describe_body(body, len),
                    ssm_status_hint(status));
    } else if (root == NULL && truncated) {
        err_set(err, rc, "the answer is truncated JSON (it ends after %zu bytes); retry later", len);
    } else if (root == NULL) {
        err_set(err, rc, "the answer is not JSON but %s: is OAUTH_API_URL pointing at the SSM service?",
                ssm_describe_body(body, len));
    } else if (!json_is_object(root)) {
        err_set(err, rc, "the answer is JSON but %s, not an object", ssm_json_type(root));
    } else if (protocol == BK_PROTO_EE ? !ee_succeeded(root) : !ieod_succeeded(root)) {
        const char *flag = protocol == BK_PROTO_EE ? "code" : "result";
        const json_t *f = json_object_get(root, flag);
        last_failure = f != NULL && (protocol == BK_PROTO_EE ? json_is_number(f) : json_is_false(f))
                           ? SSM_FAIL_REFUSED
                           : SSM_FAIL_ANSWER;
        char detail[SSM_MESSAGE_MAX + 32];
        if (msg[0] != '\0')
            snprintf(detail, sizeof detail, ": \"%s\"", msg);
        else
            snprintf(detail, sizeof detail, " (no message given)");
        if (f == NULL)
            err_set(err, rc, "the answer has no \"%s\" field%s", flag, detail);
        else if (protocol == BK_PROTO_IEOD && json_is_false(f))
            err_set(err, rc, "the service refused the request (result false)%s", detail);
        else if (protocol == BK_PROTO_EE && json_is_number(f))
            err_set(err, rc, "the service refused the request (code %ld)%s", api_code, detail);
        else
            err_set(err, rc, "the answer's \"%s\" is %s, not %s%s", flag, ssm_json_type(f),
                    protocol == BK_PROTO_EE ? "the number 0" : "the boolean true", detail);
    } else {
        const json_t *data = json_object_get(root, "data");
        if (!json_is_object(data))
            err_set(err, rc, "the answer has no \"data\" object (%s)",
                    data == NULL ? "missing" : ssm_json_type(data));
        else
            rc = ssm_grant_from(data, out, err);
    }
    json_decref(root);
    if (rc == BKOAUTH_OK) {
        last_failure = SSM_FAIL_NONE;
        return err_ok(err);
    }
    ssm_grant_clear(out);
    if (err != NULL && rc == BKOAUTH_E_TOKEN_API) {
        err->http_status = status > 0 && status <= 999 ? (int)status : 0;
        err->api_code = has_code ? api_code : 0;
    }
    return rc;
}

/* ---- the client ------------------------------------------------------------------------- */

ssm_client *ssm_new(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    if (s == NULL) {
        err_set(err, BKOAUTH_E_INVALID, "ssm_new: no settings given");
        return NULL;
    }
    ssm_client *c = bkoauth__calloc(1, sizeof *c);
    if (c == NULL) {
        err_nomem(err);
        return NULL;
    }
    c->s = s;
    c->logger = logger;
    c->http = http_new(s, logger, err);
    if (c->http == NULL) {
        bkoauth__free(c);
        return NULL;
    }
    err_ok(err);
    return c;
}

void ssm_free(ssm_client *c)
{
    if (c == NULL) return;
    http_free(c->http);
    bkoauth__free(c);
}

/* api_url + path for messages and logs: without user info (user:password@). */
static void ssm_display_url(const char *api_url, const char *path, char *out, size_t size)
{
    const char *scheme_end = strstr(api_url, "://");
    const char *auth = scheme_end ? scheme_end + 3 : api_url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++)
        if (*p == '@') at = p;
    if (at == NULL)
        snprintf(out, size, "%s%s", api_url, path);
    else
        snprintf(out, size, "%.*s%s%s", (int)(auth - api_url), api_url, at + 1, path);
}

static int ssm_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* Replaces every occurrence of secret in err->message by its masked form. */
static void ssm_scrub(bkoauth_error *err, const char *secret)
{
    if (err == NULL || secret == NULL) return;
    size_t n = strlen(secret);
    if (n < 4) return; /* the mask would show it whole anyway; avoid mangling common short words */
    char mask[64];
    bkoauth_mask(secret, mask, sizeof mask);
    char *hit = strstr(err->message, secret);
    if (hit == NULL) return;
    bk_buf b = {NULL, 0, 0, 0, 0};
    const char *p = err->message;
    while ((hit = strstr(p, secret)) != NULL) {
        buf_append(&b, p, (size_t)(hit - p));
        buf_puts(&b, mask);
        p = hit + n;
    }
    buf_puts(&b, p);
    if (!b.oom)
        snprintf(err->message, sizeof err->message, "%s", b.data);
    else
        snprintf(err->message, sizeof err->message, "SSM call failed (message withheld: it quoted a secret)");
    buf_free(&b);
}

typedef enum { SSM_APP, SSM_USER, SSM_REFRESH } ssm_kind;

/* Checks settings, builds, performs and parses one call. */
static bkoauth_code ssm_attempt(ssm_client *c, ssm_kind kind, const char *env_name,
                                const bk_kvlist *credentials, const char *client_ip,
                                const char *refresh_token, ssm_grant *out, bkoauth_error *err)
{
    const bk_settings *s = c->s;
    int ee = s->protocol == BK_PROTO_EE;
    const char *what = kind == SSM_APP ? "APP token" : kind == SSM_USER ? "user token" : "refresh_token";
    if (bk_empty(env_name)) env_name = s->env_name;
    last_failure = SSM_FAIL_SETUP; /* until the call is sent */

    if (bk_empty(s->api_url))
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "SSM %s call failed: OAUTH_API_URL is not set: set it to the SSM service's base URL in the "
            "settings file or the environment (e.g. OAUTH_API_URL = 'http://bkssmee.example.com')",
            what);
    if (bk_empty(s->app_code))
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "SSM %s call failed: no app code configured: set APP_CODE (or BKAUTH_TOKEN_APP_CODE) in the "
            "settings file or environment",
            what);
    int needs_secret = !(kind == SSM_REFRESH && !ee);
    if (needs_secret && bk_empty(s->app_secret))
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "SSM %s call failed: no app secret configured: set SECRET_KEY (or BKAUTH_TOKEN_SECRET_KEY) "
            "in the settings file or environment",
            what);
    if (ssm_has_ctl(s->app_code) || (!bk_empty(s->app_secret) && ssm_has_ctl(s->app_secret)))
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "SSM %s call failed: APP_CODE or SECRET_KEY (or BKAUTH_TOKEN_*) contains a control "
                       "character: fix the setting",
                       what);

    ssm_call call;
    memset(&call, 0, sizeof call);
    bkoauth_code rc;
    switch (kind) {
    case SSM_APP:
        rc = ee ? ee_build_app(s, env_name, &call, err) : ieod_build_app(s, env_name, &call, err);
        break;
    case SSM_USER:
        rc = ee ? ee_build_user(s, env_name, credentials, client_ip, &call, err)
                : ieod_build_user(s, env_name, credentials, client_ip, &call, err);
        break;
    default:
        rc = ee ? ee_build_refresh(s, env_name, refresh_token, &call, err)
                : ieod_build_refresh(s, env_name, refresh_token, &call, err);
        break;
    }
    char shown[512];
    ssm_display_url(s->api_url, call.path ? call.path : "", shown, sizeof shown);
    if (rc != BKOAUTH_OK) {
        ssm_call_clear(&call);
        err_prefix(err, "SSM %s call to %s failed", what, shown);
        return rc;
    }

    bk_buf url = {NULL, 0, 0, 0, 1}; /* the ieod query holds the app secret */
    buf_puts(&url, s->api_url);
    buf_puts(&url, call.path);
    if (call.query.len > 0) {
        buf_puts(&url, "?");
        buf_append(&url, call.query.data, call.query.len);
    }
    if (url.oom) {
        ssm_buf_wipe_free(&url);
        ssm_call_clear(&call);
        return err_nomem(err);
    }
    http_request req = {call.method,   url.data,       (const char *const *)call.headers,
                        call.nheaders, call.body.data, call.body.len};
    http_response resp = {0, NULL, 0, 0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = http_perform(c->http, &req, &resp, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    last_failure = rc == BKOAUTH_OK        ? SSM_FAIL_NONE
                   : rc == BKOAUTH_E_NOMEM ? SSM_FAIL_SETUP
                                           : SSM_FAIL_NETWORK;
    long long ms = (long long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (rc == BKOAUTH_OK)
        rc = ssm_parse_response(s->protocol, resp.status, resp.body, resp.len, out, err);
    else
        memset(out, 0, sizeof *out);
    if (rc == BKOAUTH_E_TOKEN_API && resp.alloc_failed) /* a grant is kept; a refusal is not believed */
        rc = err_set(err, BKOAUTH_E_NOMEM,
                     "out of memory during the SSM %s call (the request may have lost a part)", what);
    char got[32];
    long st = resp.status > 0 ? resp.status : err != NULL ? err->http_status : 0;
    if (st > 0)
        snprintf(got, sizeof got, "HTTP %ld", st);
    else
        snprintf(got, sizeof got, "no answer");
    log_write(c->logger, BKOAUTH_LOG_DEBUG, "SSM %s: %s %s -> %s in %lld ms, %s", what, call.method,
              call.path, got, ms, rc == BKOAUTH_OK ? "ok" : "failed");
    if (rc != BKOAUTH_OK && rc != BKOAUTH_E_NOMEM) {
        err_prefix(err, "SSM %s call to %s failed", what, shown);
        /* the service may echo what it was sent: never let a secret through */
        ssm_scrub(err, s->app_secret);
        ssm_scrub(err, refresh_token);
        for (size_t i = 0; credentials != NULL && i < credentials->count; i++)
            ssm_scrub(err, credentials->items[i].value);
    }

    http_response_clear(&resp);
    ssm_buf_wipe_free(&url);
    ssm_call_clear(&call);
    return rc;
}

/* One call, counted; a failure is logged with its kind. */
static bkoauth_code ssm_run(ssm_client *c, ssm_kind kind, const char *env_name, const bk_kvlist *credentials,
                            const char *client_ip, const char *refresh_token, ssm_grant *out,
                            bkoauth_error *err)
{
    bkoauth_error local;
    if (err == NULL) err = &local;
    atomic_fetch_add(&c->calls, 1);
    bkoauth_code rc = ssm_attempt(c, kind, env_name, credentials, client_ip, refresh_token, out, err);
    if (rc != BKOAUTH_OK) {
        if (rc == BKOAUTH_E_NOMEM) last_failure = SSM_FAIL_SETUP;
        atomic_fetch_add(&c->failures[last_failure], 1);
        /* an operator must see the service failing: a warning for an outage or a setting; the
         * service's refusal of one request at info (its caller gets it as an error) */
        log_write(c->logger, last_failure == SSM_FAIL_REFUSED ? BKOAUTH_LOG_INFO : BKOAUTH_LOG_WARNING,
                  "%s failure: %s", ssm_failure_name(last_failure), err->message);
    }
    return rc;
}

bkoauth_code ssm_ping(ssm_client *c, long *status, bkoauth_error *err)
{
    *status = 0;
    if (bk_empty(c->s->api_url))
        return err_set(
            err, BKOAUTH_E_CONFIG,
            "OAUTH_API_URL is not set: set it to the SSM service's base URL in the settings file or "
            "the environment");
    bk_buf url = {0};
    buf_puts(&url, c->s->api_url);
    buf_puts(&url, "/");
    if (url.oom) {
        buf_free(&url);
        return err_nomem(err);
    }
    http_request req = {"GET", url.data, NULL, 0, NULL, 0};
    http_response resp = {0};
    bkoauth_code rc = http_perform(c->http, &req, &resp, err);
    if (rc == BKOAUTH_OK) *status = resp.status;
    http_response_clear(&resp);
    buf_free(&url);
    return rc == BKOAUTH_OK ? err_ok(err) : rc;
}

void ssm_after_fork(ssm_client *c)
{
    if (c != NULL) http_after_fork(c->http);
}

bkoauth_code ssm_fetch_app(ssm_client *c, const char *env_name, ssm_grant *out, bkoauth_error *err)
{
    if (out != NULL) memset(out, 0, sizeof *out);
    if (c == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "ssm_fetch_app: no client or no output given");
    return ssm_run(c, SSM_APP, env_name, NULL, NULL, NULL, out, err);
}

bkoauth_code ssm_fetch_user(ssm_client *c, const char *env_name, const bk_kvlist *credentials,
                            const char *client_ip, ssm_grant *out, bkoauth_error *err)
{
    if (out != NULL) memset(out, 0, sizeof *out);
    if (c == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "ssm_fetch_user: no client or no output given");
    return ssm_run(c, SSM_USER, env_name, credentials, client_ip, NULL, out, err);
}

bkoauth_code ssm_refresh(ssm_client *c, const char *env_name, const char *refresh_token, ssm_grant *out,
                         bkoauth_error *err)
{
    if (out != NULL) memset(out, 0, sizeof *out);
    if (c == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "ssm_refresh: no client or no output given");
    if (bk_empty(refresh_token))
        return err_set(err, BKOAUTH_E_INVALID, "ssm_refresh: the token has no refresh_token to refresh with");
    return ssm_run(c, SSM_REFRESH, env_name, NULL, NULL, refresh_token, out, err);
}
