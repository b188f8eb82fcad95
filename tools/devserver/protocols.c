/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: the two SSM protocols (docs/PROTOCOL.md). ieod: GET with a query string;
 * ee: POST with a JSON body and X-BK-APP-* headers. Each call is counted and recorded, takes one
 * use of an armed fault, and is then answered: by the fault, or by issuing or refreshing a token
 * (with S.mu held for the token work only). */
#include "devserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One SSM call as the token work needs it. */
typedef struct dev_ask {
    struct MHD_Connection *c;
    int ee;               /* 1: the ee protocol, 0: ieod */
    json_t *body;         /* ee: the JSON object sent; ieod: NULL */
    const char *env;      /* ieod: env_name as sent; ee: "" */
    const char *nnt;      /* ieod: need_new_token as sent; ee: "" */
    const char *protocol; /* static "ieod" / "ee" */
} dev_ask;

/* ---- users and their credentials ------------------------------------------------------------ */

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

/* ---- the token work (the caller holds S.mu) ------------------------------------------------- */

/* NULL when the call's app, secret and env_name are right; else the failure to answer. */
static json_t *dev_check_app(const dev_ask *a, enum dev_kind kind, unsigned *status)
{
    const char *code = a->ee ? dev_header(a->c, "X-BK-APP-CODE") : dev_arg(a->c, "app_code");
    const char *secret = a->ee ? dev_header(a->c, "X-BK-APP-SECRET") : dev_arg(a->c, "app_secret");
    if (!dev_streq(code, S.app_code)) {
        if (a->ee) *status = 401;
        return dev_failure(a->ee, 1301,
                           code && code[0] ? "app_code is unknown: check APP_CODE" : "app_code is missing");
    }
    /* the ieod refresh call carries no secret */
    if ((kind != K_REFRESH || a->ee) && !dev_streq(secret, S.app_secret)) {
        if (a->ee) *status = 401;
        return dev_failure(a->ee, 1302,
                           secret && secret[0] ? "app_secret is wrong for this app_code: check SECRET_KEY"
                                               : "app_secret is missing");
    }
    if (!a->ee && !dev_streq(a->env, "prod") && !dev_streq(a->env, "test"))
        return dev_failure(a->ee, 1303, "env_name must be prod or test");
    return NULL;
}

/* The grant of t, just issued, or the failure when it could not be (out of memory). */
static json_t *dev_issued(const dev_ask *a, const dev_token *t, int *ok)
{
    *ok = t != NULL;
    return t ? dev_grant(a->ee, t) : dev_failure(a->ee, 1500, "the devserver is out of memory");
}

static json_t *dev_serve_app(const dev_ask *a, int *ok)
{
    if (a->ee && !dev_streq(json_string_value(json_object_get(a->body, "id_provider")), "client"))
        return dev_failure(a->ee, 1309, "id_provider must be client for grant_type client_credentials");
    return dev_issued(a, dev_issue(NULL, a->env, a->protocol, a->nnt, NULL), ok);
}

static json_t *dev_serve_user(const dev_ask *a, int *ok)
{
    const char *user = NULL;
    if (a->ee && !dev_streq(json_string_value(json_object_get(a->body, "id_provider")), "bk_login"))
        return dev_failure(a->ee, 1309, "id_provider must be bk_login for grant_type authorization_code");
    if (a->ee)
        user = dev_body_user(a->body);
    else
        MHD_get_connection_values(a->c, MHD_GET_ARGUMENT_KIND, dev_cred_iter, (void *)&user);
    if (user == NULL)
        return dev_failure(a->ee, 1304,
                           "the user's login credential is missing, invalid or expired: log in again");
    return dev_issued(
        a, dev_issue(user, a->env, a->protocol, a->nnt, a->ee ? NULL : dev_arg(a->c, "bk_client_ip")), ok);
}

/* A refresh: a new token for the old one's user; the old refresh_token is used up and the old
 * access_token stays valid for S.overlap seconds more. */
static json_t *dev_serve_refresh(const dev_ask *a, int *ok)
{
    const char *rt =
        a->ee ? json_string_value(json_object_get(a->body, "refresh_token")) : dev_arg(a->c, "refresh_token");
    if (!a->ee && !dev_streq(dev_arg(a->c, "grant_type"), "refresh_token"))
        return dev_failure(a->ee, 1305, "grant_type must be refresh_token on /auth_api/refresh_token/");
    if (rt == NULL || rt[0] == '\0') return dev_failure(a->ee, 1307, "refresh_token is missing");
    dev_token *old = dev_find(rt, 1);
    if (old == NULL) return dev_failure(a->ee, 1307, "refresh_token is unknown or invalid");
    if (old->refresh_used) return dev_failure(a->ee, 1306, "refresh_token already used");
    if (!a->ee && old->env_name[0] && strcmp(old->env_name, a->env) != 0)
        return dev_failure(a->ee, 1308,
                           strcmp(old->env_name, "prod") == 0
                               ? "refresh_token was issued for env_name prod: send that env_name"
                               : "refresh_token was issued for env_name test: send that env_name");
    time_t now = time(NULL);
    /* copies: dev_issue may move S.tokens */
    char old_env[sizeof old->env_name];
    memcpy(old_env, old->env_name, sizeof old_env);
    size_t old_pos = (size_t)(old - S.tokens);
    dev_token *t = dev_issue(old->username ? old->username : "", a->ee ? old_env : a->env, a->protocol,
                             a->nnt, old->client_ip);
    if (t == NULL) return dev_failure(a->ee, 1500, "the devserver is out of memory");
    old = &S.tokens[old_pos];
    old->refresh_used = 1;
    if (old->invalid_after == 0 || old->invalid_after > now + S.overlap) old->invalid_after = now + S.overlap;
    *ok = 1;
    return dev_grant(a->ee, t);
}

/* Does the token work of one SSM call; the caller holds S.mu. Sets *status (HTTP) and *ok (a
 * grant was issued). Returns the answer (NULL: out of memory). */
static json_t *dev_serve(struct MHD_Connection *c, int ee, enum dev_kind kind, json_t *body, unsigned *status,
                         int *ok)
{
    *status = 200;
    *ok = 0;
    dev_ask a = {c,
                 ee,
                 body,
                 ee ? "" : dev_arg(c, "env_name"),
                 ee ? "" : dev_arg(c, "need_new_token"),
                 ee ? "ee" : "ieod"};
    json_t *refused = dev_check_app(&a, kind, status);
    if (refused != NULL) return refused;
    if (kind == K_NONE) return dev_failure(ee, 1300, "grant_type is missing or not supported here");
    if (kind == K_APP) return dev_serve_app(&a, ok);
    if (kind == K_USER) return dev_serve_user(&a, ok);
    return dev_serve_refresh(&a, ok);
}

/* ---- one SSM call --------------------------------------------------------------------------- */

/* The answer to an SSM call that was counted: its fault, or the service's answer. Takes body. */
static enum MHD_Result dev_answer(struct MHD_Connection *c, const dev_fault *f, int ee, enum dev_kind kind,
                                  json_t *body, long ttl, const char *method, const dev_req *rq)
{
    if (f->kind[0] != '\0' && strcmp(f->kind, "slow") != 0) { /* a faulted call changes no token */
        json_decref(body);
        return dev_send_fault(c, f, ee, ttl, method, rq);
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

/* Counts and records the call, takes its fault, and answers it (counted as in flight
 * meanwhile). Takes body. */
static enum MHD_Result dev_counted_call(struct MHD_Connection *c, const char *method, const char *url,
                                        const dev_req *rq, int ee, enum dev_kind kind, json_t *body)
{
    dev_fault f;
    pthread_mutex_lock(&S.mu);
    dev_count_call(ee, kind);
    dev_record_last(c, method, url, rq);
    dev_take_fault(&f);
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

/* What a grant_type asks for (the refresh endpoints are told apart by their path). */
static enum dev_kind dev_grant_kind(const char *grant_type)
{
    return dev_streq(grant_type, "client_credentials")   ? K_APP
           : dev_streq(grant_type, "authorization_code") ? K_USER
                                                         : K_NONE;
}

/* The JSON object of an ee body; NULL with why set when it is none. */
static json_t *dev_ee_body(const dev_req *rq, char *why, size_t cap)
{
    json_error_t je;
    json_t *body = rq->body ? json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (json_is_object(body)) return body;
    /* where, not what: jansson's own text may quote a credential of the body */
    if (rq->body == NULL || rq->len == 0)
        snprintf(why, cap, "the body is empty: send a JSON object");
    else if (body != NULL)
        snprintf(why, cap, "the body is JSON but not an object: send a JSON object");
    else if (json_error_code(&je) == json_error_duplicate_key)
        snprintf(why, cap, "the body repeats a key (line %d, column %d): send each field once", je.line,
                 je.column);
    else
        snprintf(why, cap, "the body is not valid JSON (line %d, column %d): send a JSON object", je.line,
                 je.column);
    json_decref(body);
    return NULL;
}

enum MHD_Result dev_ssm_call(struct MHD_Connection *c, const char *method, const char *url, dev_req *rq)
{
    int ieod_refresh = strcmp(url, "/auth_api/refresh_token/") == 0;
    int ee_refresh = strcmp(url, "/api/v1/auth/access-tokens/refresh") == 0;
    if (ieod_refresh || strcmp(url, "/auth_api/token/") == 0) {
        if (strcmp(method, "GET") != 0) return dev_send_message(c, 405, "the ieod SSM endpoints take GET");
        /* the refresh's grant_type is checked in dev_serve_refresh */
        enum dev_kind kind = ieod_refresh ? K_REFRESH : dev_grant_kind(dev_arg(c, "grant_type"));
        return dev_counted_call(c, method, url, rq, 0, kind, NULL);
    }
    if (!ee_refresh && strcmp(url, "/api/v1/auth/access-tokens") != 0)
        return dev_send_message(c, 404, "no such SSM endpoint (see docs/DEVSERVER.md)");
    if (strcmp(method, "POST") != 0)
        return dev_send_message(c, 405, "the ee SSM endpoints take POST with a JSON body");
    char why[160];
    json_t *body = dev_ee_body(rq, why, sizeof why);
    if (body == NULL) return dev_send_message(c, 400, why);
    enum dev_kind kind =
        ee_refresh ? K_REFRESH : dev_grant_kind(json_string_value(json_object_get(body, "grant_type")));
    return dev_counted_call(c, method, url, rq, 1, kind, body);
}
