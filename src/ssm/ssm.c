/* SPDX-License-Identifier: MIT */
/* src/ssm/ - the SSM wire: the calls to the BlueKing SSM service that grant, refresh and
 * check tokens. ssm.c checks a call, dispatches to a protocol's table (ssm_protocols) and parses
 * the answer; ieod.c and ee.c are the two wire protocols (ssm_int.h), building their calls with
 * call.c; http.c carries them over libcurl (loaded by curl_dl.c), proxy.c chooses the proxy and
 * http_fail.c words a failure by the hop that failed. The client uses ssm.h only. */
/* ssm.c - the SSM client: checks what a call needs, lets the protocol (ieod.c or ee.c) build it,
 * carries it over http.c, and parses the answer into a grant (one parser for both protocols). */
#include "ssm_int.h"
#include "json.h"
#include "http.h"

#include <ctype.h>
#include <errno.h>
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
/* data.scope is text of any length in the table; more than this is not a scope. */
#define SSM_SCOPE_MAX 65536
/* At most this many bytes of the service's own "message" go into an error. */
#define SSM_MESSAGE_MAX 200

struct ssm_client {
    const bk_settings *s;    /* borrowed */
    const ssm_proto *proto;  /* s->protocol's */
    const bk_logger *logger; /* borrowed */
    http_client *http;       /* owned */
    atomic_ulong calls;      /* calls sent (or attempted) */
    atomic_ulong failures[SSM_FAIL_KINDS];
};

static _Thread_local ssm_failure last_failure;
static _Atomic(bkoauth__ssm_observer_fn) ssm_observer;

void bkoauth__ssm_set_observer(bkoauth__ssm_observer_fn fn)
{
    atomic_store(&ssm_observer, fn);
}

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

/* ---- grant records (the call record: call.c) -------------------------------------------- */

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

/* The service's own "message" into buf ("" when none), as bk_scrub() gives it: the secrets of
 * the call masked (a service may quote the request back, in any encoding) before it is cut to
 * fit buf, control characters and quotes escaped. */
static void ssm_service_message(const json_t *root, char *buf, size_t size)
{
    buf[0] = '\0';
    const json_t *m = json_is_object(root) ? json_object_get(root, "message") : NULL;
    if (!json_is_string(m)) return;
    bk_scrub(buf, size, json_string_value(m), json_string_length(m), BK_SCRUB_QUOTE);
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
        errno = 0;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && errno == 0) {
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
            err_set(err, BKOAUTH_E_TOKEN_API, "data.%s is %zu characters long, more than the %zu accepted",
                    name, json_string_length(v), max);
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

/* A token of the grant (data.<name>, a string of len bytes) must be one the SSM issues: printable
 * ASCII without spaces (0x21..0x7e), at most SSM_TOKEN_MAX bytes. Else TokenAPIError naming the
 * field and what is wrong, never quoting it: such a grant is never saved nor printed. */
static bkoauth_code ssm_check_token(const char *name, const char *s, size_t len, bkoauth_error *err)
{
    if (len > SSM_TOKEN_MAX)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "data.%s is %zu characters long, more than the %d the token table holds; nothing was "
                       "saved",
                       name, len, SSM_TOKEN_MAX);
    const char *bad = bk_token_text_problem(s, len);
    if (bad != NULL)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "data.%s %s: an SSM token is printable ASCII without spaces; the grant is refused and "
                       "nothing was saved",
                       name, bad);
    return BKOAUTH_OK;
}

static bkoauth_code ssm_grant_from(const json_t *data, ssm_grant *out, bkoauth_error *err)
{
    const json_t *at = json_object_get(data, "access_token");
    if (at == NULL || json_is_null(at))
        return err_set(err, BKOAUTH_E_TOKEN_API, "the grant has no data.access_token");
    if (!json_is_string(at))
        return err_set(err, BKOAUTH_E_TOKEN_API, "data.access_token is %s, not a string", ssm_json_type(at));
    if (json_string_length(at) == 0) return err_set(err, BKOAUTH_E_TOKEN_API, "data.access_token is empty");
    if (ssm_check_token("access_token", json_string_value(at), json_string_length(at), err) != BKOAUTH_OK)
        return BKOAUTH_E_TOKEN_API;
    const json_t *rt = json_object_get(data, "refresh_token");
    if (json_is_string(rt) &&
        ssm_check_token("refresh_token", json_string_value(rt), json_string_length(rt), err) != BKOAUTH_OK)
        return BKOAUTH_E_TOKEN_API;
    const json_t *sc = json_object_get(data, "scope");
    if (json_is_string(sc) && strlen(json_string_value(sc)) != json_string_length(sc))
        return err_set(err, BKOAUTH_E_TOKEN_API, "data.scope holds a NUL byte; the grant is refused");
    if (ssm_expires_in(json_object_get(data, "expires_in"), &out->expires_in, err) != 0)
        return BKOAUTH_E_TOKEN_API;
    out->refresh_token = ssm_optional_string(data, "refresh_token", SSM_TOKEN_MAX, 0, err);
    if (out->refresh_token == NULL) return err != NULL ? err->code : BKOAUTH_E_TOKEN_API;
    out->scope = ssm_optional_string(data, "scope", SSM_SCOPE_MAX, 1, err);
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

/* One answer as read: its body as JSON (root NULL when it is not) and what it says of itself. */
typedef struct ssm_answer {
    long status;
    const char *body;
    size_t len;
    json_t *root;
    json_error_t jerr;
    int truncated;                 /* JSON that ends early */
    int overflow;                  /* JSON holding a number out of any range */
    char msg[SSM_MESSAGE_MAX + 1]; /* the service's own "message", scrubbed; "" when none */
    long api_code;
    int has_code;
} ssm_answer;

/* Reads a's body as JSON. Returns 0, or -1 when out of memory. */
static int ssm_answer_read(ssm_answer *a)
{
    if (a->body == NULL || a->len == 0) return 0;
    int oom = 0;
    /* a \u0000 is read, so that the field holding it is named (a token with a NUL is refused) */
    a->root = bkoauth__json_loadb(a->body, a->len, JSON_ALLOW_NUL, &a->jerr, &oom);
#if JANSSON_VERSION_HEX >= 0x020b00
    if (!oom && a->root == NULL && json_error_code(&a->jerr) == json_error_numeric_overflow) {
        /* an integer past 64 bits (expires_in = 10^30): read the numbers as reals, so that
         * the field it is in is named; a real past the double range stays unreadable */
        a->root =
            bkoauth__json_loadb(a->body, a->len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &a->jerr, &oom);
        a->overflow = a->root == NULL && json_error_code(&a->jerr) == json_error_numeric_overflow;
    }
    if (!oom && a->root == NULL && json_error_code(&a->jerr) == json_error_premature_end_of_input)
        a->truncated = 1;
#endif
    return oom ? -1 : 0;
}

/* An answer whose HTTP status is not 2xx. */
static bkoauth_code ssm_http_error(const ssm_answer *a, bkoauth_error *err)
{
    last_failure = SSM_FAIL_SERVER;
    const char *hint = ssm_status_hint(a->status);
    if (a->msg[0] != '\0')
        return err_set(err, BKOAUTH_E_TOKEN_API, "the service answered HTTP %ld, saying \"%s\" (%s)",
                       a->status, a->msg, hint);
    if (a->root != NULL)
        return err_set(err, BKOAUTH_E_TOKEN_API, "the service answered HTTP %ld (%s)", a->status, hint);
    return err_set(err, BKOAUTH_E_TOKEN_API, "the service answered HTTP %ld with %s (%s)", a->status,
                   a->truncated  ? "a truncated JSON body"
                   : a->overflow ? "JSON holding a number out of range"
                                 : ssm_describe_body(a->body, a->len),
                   hint);
}

/* A 2xx answer that is not JSON. */
static bkoauth_code ssm_unreadable(const ssm_answer *a, bkoauth_error *err)
{
    if (a->overflow)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "the answer is JSON holding a number out of any range (line %d, column %d), so it "
                       "cannot be read; is OAUTH_API_URL pointing at the SSM service?",
                       a->jerr.line, a->jerr.column);
    if (a->truncated)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "the answer is truncated JSON (it ends after %zu bytes); retry later", a->len);
    return err_set(err, BKOAUTH_E_TOKEN_API,
                   "the answer is not JSON but %s: is OAUTH_API_URL pointing at the SSM service?",
                   ssm_describe_body(a->body, a->len));
}

/* A JSON object whose success flag (p->flag) does not say success: the service's refusal, or an
 * answer without a usable flag. */
static bkoauth_code ssm_not_succeeded(const ssm_proto *p, const ssm_answer *a, bkoauth_error *err)
{
    const json_t *f = json_object_get(a->root, p->flag);
    char refusal[48];
    int refused = f != NULL && p->refused(f, a->api_code, refusal, sizeof refusal);
    last_failure = refused ? SSM_FAIL_REFUSED : SSM_FAIL_ANSWER;
    char detail[SSM_MESSAGE_MAX + 32];
    if (a->msg[0] != '\0')
        snprintf(detail, sizeof detail, ": \"%s\"", a->msg);
    else
        snprintf(detail, sizeof detail, " (no message given)");
    if (f == NULL)
        return err_set(err, BKOAUTH_E_TOKEN_API, "the answer has no \"%s\" field%s", p->flag, detail);
    if (refused)
        return err_set(err, BKOAUTH_E_TOKEN_API, "the service refused the request (%s)%s", refusal, detail);
    return err_set(err, BKOAUTH_E_TOKEN_API, "the answer's \"%s\" is %s, not %s%s", p->flag, ssm_json_type(f),
                   p->flag_wanted, detail);
}

/* Judges a read answer: the grant into *out, or what is wrong with the answer. */
static bkoauth_code ssm_judge(const ssm_proto *p, const ssm_answer *a, ssm_grant *out, bkoauth_error *err)
{
    last_failure = SSM_FAIL_ANSWER;
    if (a->status < 200 || a->status > 299) return ssm_http_error(a, err);
    if (a->root == NULL) return ssm_unreadable(a, err);
    if (!json_is_object(a->root))
        return err_set(err, BKOAUTH_E_TOKEN_API, "the answer is JSON but %s, not an object",
                       ssm_json_type(a->root));
    if (!p->succeeded(a->root)) return ssm_not_succeeded(p, a, err);
    const json_t *data = json_object_get(a->root, "data");
    if (!json_is_object(data))
        return err_set(err, BKOAUTH_E_TOKEN_API, "the answer has no \"data\" object (%s)",
                       data == NULL ? "missing" : ssm_json_type(data));
    return ssm_grant_from(data, out, err);
}

/* ssm_parse_response() for the protocol p. */
static bkoauth_code ssm_parse_answer(const ssm_proto *p, long status, const char *body, size_t len,
                                     ssm_grant *out, bkoauth_error *err)
{
    memset(out, 0, sizeof *out);
    ssm_answer a = {.status = status, .body = body, .len = len};
    if (ssm_answer_read(&a) != 0)
        return err_set(err, BKOAUTH_E_NOMEM, "out of memory reading the SSM service's answer");
    ssm_service_message(a.root, a.msg, sizeof a.msg);
    a.has_code = ssm_api_code(a.root, &a.api_code);
    bkoauth_code rc = ssm_judge(p, &a, out, err);
    json_decref(a.root);
    if (rc == BKOAUTH_OK) {
        last_failure = SSM_FAIL_NONE;
        return err_ok(err);
    }
    ssm_grant_clear(out);
    if (err != NULL && rc == BKOAUTH_E_TOKEN_API) {
        err->http_status = status > 0 && status <= 999 ? (int)status : 0;
        err->api_code = a.has_code ? a.api_code : 0;
    }
    return rc;
}

/* The protocols, by BK_PROTO_* of BKAUTH_BACKEND_TYPE (settings.c): a new protocol adds its
 * ssm_proto here. ieod is the default. */
static const ssm_proto *const ssm_protocols[] = {
    [BK_PROTO_IEOD] = &ssm_proto_ieod,
    [BK_PROTO_EE] = &ssm_proto_ee,
};

static const ssm_proto *ssm_proto_of(int protocol)
{
    if (protocol < 0 || (size_t)protocol >= sizeof ssm_protocols / sizeof ssm_protocols[0] ||
        ssm_protocols[protocol] == NULL)
        return &ssm_proto_ieod;
    return ssm_protocols[protocol];
}

const char *ssm_protocol_name(const ssm_client *c)
{
    return c->proto->name;
}

bkoauth_code ssm_parse_response(int protocol, long status, const char *body, size_t len, ssm_grant *out,
                                bkoauth_error *err)
{
    return ssm_parse_answer(ssm_proto_of(protocol), status, body, len, out, err);
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
    c->proto = ssm_proto_of(s->protocol);
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

typedef enum { SSM_APP, SSM_USER, SSM_REFRESH } ssm_kind;

/* What one call asks for; every pointer borrowed, each NULL when the kind takes none. */
typedef struct ssm_request {
    ssm_kind kind;
    const char *env_name; /* empty: the settings' */
    const bk_kvlist *credentials;
    const char *client_ip;
    const char *refresh_token;
} ssm_request;

static const char *ssm_kind_what(ssm_kind kind)
{
    return kind == SSM_APP ? "APP token" : kind == SSM_USER ? "user token" : "refresh_token";
}

/* The settings a call of kind needs, checked before anything is built. */
static bkoauth_code ssm_check_settings(const ssm_client *c, ssm_kind kind, const char *what,
                                       bkoauth_error *err)
{
    const bk_settings *s = c->s;
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
    int needs_secret = kind != SSM_REFRESH || c->proto->refresh_sends_secret;
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
    return BKOAUTH_OK;
}

/* Lets the client's protocol build the call rq asks for. */
static bkoauth_code ssm_build(const ssm_client *c, const ssm_request *rq, ssm_call *call, bkoauth_error *err)
{
    const bk_settings *s = c->s;
    const char *env_name = bk_empty(rq->env_name) ? s->env_name : rq->env_name;
    switch (rq->kind) {
    case SSM_APP:
        return c->proto->build_app(s, env_name, call, err);
    case SSM_USER:
        return c->proto->build_user(s, env_name, rq->credentials, rq->client_ip, call, err);
    default:
        return c->proto->build_refresh(s, env_name, rq->refresh_token, call, err);
    }
}

/* api_url + path + "?" + query into url (a secret buffer: the ieod query holds the app secret).
 * Returns 0, or -1 when out of memory. */
static int ssm_call_url(const char *api_url, const ssm_call *call, bk_buf *url)
{
    url->secret = 1;
    buf_puts(url, api_url);
    buf_puts(url, call->path);
    if (call->query.len > 0) {
        buf_puts(url, "?");
        buf_append(url, call->query.data, call->query.len);
    }
    return url->oom ? -1 : 0;
}

/* The debug line of one call: method, path (never the query), status, time, outcome. */
static void ssm_log_call(const ssm_client *c, const ssm_call *call, const char *what, long status,
                         long long ms, bkoauth_code rc, const bkoauth_error *err)
{
    char got[32];
    long st = status > 0 ? status : err != NULL ? err->http_status : 0;
    if (st > 0)
        snprintf(got, sizeof got, "HTTP %ld", st);
    else
        snprintf(got, sizeof got, "no answer");
    log_write(c->logger, BKOAUTH_LOG_DEBUG, "SSM %s: %s %s -> %s in %lld ms, %s", what, call->method,
              call->path, got, ms, rc == BKOAUTH_OK ? "ok" : "failed");
}

/* Sends a built call and parses the answer into *out. */
static bkoauth_code ssm_send(ssm_client *c, const ssm_call *call, const char *what, ssm_grant *out,
                             bkoauth_error *err)
{
    bk_buf url = {NULL, 0, 0, 0, 1};
    if (ssm_call_url(c->s->api_url, call, &url) != 0) {
        ssm_buf_wipe_free(&url);
        return err_nomem(err);
    }
    http_request req = {call->method,   url.data,        (const char *const *)call->headers,
                        call->nheaders, call->body.data, call->body.len};
    http_response resp = {0, NULL, 0, 0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bkoauth_code rc = http_perform(c->http, &req, &resp, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    last_failure = rc == BKOAUTH_OK        ? SSM_FAIL_NONE
                   : rc == BKOAUTH_E_NOMEM ? SSM_FAIL_SETUP
                                           : SSM_FAIL_NETWORK;
    long long ms = (long long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (rc == BKOAUTH_OK)
        rc = ssm_parse_answer(c->proto, resp.status, resp.body, resp.len, out, err);
    else
        memset(out, 0, sizeof *out);
    if (rc == BKOAUTH_E_TOKEN_API && resp.alloc_failed) /* a grant is kept; a refusal is not believed */
        rc = err_set(err, BKOAUTH_E_NOMEM,
                     "out of memory during the SSM %s call (the request may have lost a part)", what);
    ssm_log_call(c, call, what, resp.status, ms, rc, err);
    bkoauth__ssm_observer_fn observe = atomic_load(&ssm_observer);
    if (observe != NULL)
        observe(what, rc == BKOAUTH_OK,
                (long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    http_response_clear(&resp);
    ssm_buf_wipe_free(&url);
    return rc;
}

/* Checks settings, builds, performs and parses one call. */
static bkoauth_code ssm_attempt(ssm_client *c, const ssm_request *rq, ssm_grant *out, bkoauth_error *err)
{
    const char *what = ssm_kind_what(rq->kind);
    last_failure = SSM_FAIL_SETUP; /* until the call is sent */
    bkoauth_code rc = ssm_check_settings(c, rq->kind, what, err);
    if (rc != BKOAUTH_OK) return rc;

    ssm_call call;
    memset(&call, 0, sizeof call);
    rc = ssm_build(c, rq, &call, err);
    char shown[512], route[420];
    ssm_display_url(c->s->api_url, call.path ? call.path : "", shown, sizeof shown);
    int built = rc == BKOAUTH_OK; /* else a setting the protocol cannot use, or out of memory */
    if (built) rc = ssm_send(c, &call, what, out, err);
    /* every failure says whether a proxy was in the way, and which: known once the first call
     * readied the carrier (http.c), so asked after the send */
    if (rc != BKOAUTH_OK && (!built || rc != BKOAUTH_E_NOMEM))
        err_prefix(err, "SSM %s call to %s%s failed", what, shown, http_route(c->http, route, sizeof route));
    ssm_call_clear(&call);
    return rc;
}

/* One call, counted; a failure is logged with its kind. */
static bkoauth_code ssm_run(ssm_client *c, const ssm_request *rq, ssm_grant *out, bkoauth_error *err)
{
    bkoauth_error local;
    if (err == NULL) err = &local;
    atomic_fetch_add(&c->calls, 1);
    /* the service may quote what it was sent back, in any encoding: every message made during
     * the call is scrubbed of the app secret, the refresh_token and the request's credentials */
    bk_scope scope;
    bk_scope_enter(&scope);
    bk_scope_add(&scope, c->s->app_secret);
    bk_scope_add(&scope, rq->refresh_token);
    scope.list = rq->credentials;
    bkoauth_code rc = ssm_attempt(c, rq, out, err);
    bk_scope_leave(&scope);
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
    char route[420];
    if (rc == BKOAUTH_E_TOKEN_API && http_route(c->http, route, sizeof route)[0] != '\0')
        err_prefix(err, "GET of OAUTH_API_URL%s", route);
    http_response_clear(&resp);
    buf_free(&url);
    return rc == BKOAUTH_OK ? err_ok(err) : rc;
}

const char *ssm_route(const ssm_client *c, char *out, size_t size)
{
    return http_route(c != NULL ? c->http : NULL, out, size);
}

void ssm_announce(const ssm_client *c)
{
    if (c != NULL) http_announce(c->http);
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
    ssm_request rq = {SSM_APP, env_name, NULL, NULL, NULL};
    return ssm_run(c, &rq, out, err);
}

bkoauth_code ssm_fetch_user(ssm_client *c, const char *env_name, const bk_kvlist *credentials,
                            const char *client_ip, ssm_grant *out, bkoauth_error *err)
{
    if (out != NULL) memset(out, 0, sizeof *out);
    if (c == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "ssm_fetch_user: no client or no output given");
    ssm_request rq = {SSM_USER, env_name, credentials, client_ip, NULL};
    return ssm_run(c, &rq, out, err);
}

bkoauth_code ssm_refresh(ssm_client *c, const char *env_name, const char *refresh_token, ssm_grant *out,
                         bkoauth_error *err)
{
    if (out != NULL) memset(out, 0, sizeof *out);
    if (c == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "ssm_refresh: no client or no output given");
    if (bk_empty(refresh_token))
        return err_set(err, BKOAUTH_E_INVALID, "ssm_refresh: the token has no refresh_token to refresh with");
    ssm_request rq = {SSM_REFRESH, env_name, NULL, NULL, refresh_token};
    return ssm_run(c, &rq, out, err);
}
