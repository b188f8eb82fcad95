/* SPDX-License-Identifier: MIT */
/* ieod.c - the "ieod" wire protocol (BKAUTH_BACKEND_TYPE is not bk_token): HTTP GET with a query
 * string, parameters in the order the Python client sent them (PROTOCOL.md "Protocol ieod"). */
#include "ssm_int.h"

#include <stdio.h>

#define IEOD_TOKEN_PATH "/auth_api/token/"
#define IEOD_REFRESH_PATH "/auth_api/refresh_token/"

/* Appends "&key=value" (no '&' first), both percent-encoded. NULL value is sent empty. */
static void ieod_param(bk_buf *q, const char *key, const char *value)
{
    q->secret = 1; /* it carries the app secret, a credential or a refresh_token */
    if (q->len > 0) buf_append(q, "&", 1);
    buf_urlencode(q, key);
    buf_append(q, "=", 1);
    buf_urlencode(q, value != NULL ? value : "");
}

static const char *ieod_bool(int v)
{
    return v ? "True" : "False"; /* as Python's str(True) wrote it */
}

static bkoauth_code ieod_done(ssm_call *call, bkoauth_error *err)
{
    if (call->query.oom) return err_nomem(err);
    return err_ok(err);
}

bkoauth_code ieod_build_app(const bk_settings *s, const char *env_name, ssm_call *call, bkoauth_error *err)
{
    call->what = "APP token";
    call->method = "GET";
    call->path = IEOD_TOKEN_PATH;
    ieod_param(&call->query, "app_code", s->app_code);
    ieod_param(&call->query, "app_secret", s->app_secret);
    ieod_param(&call->query, "env_name", env_name);
    ieod_param(&call->query, "grant_type", "client_credentials");
    ieod_param(&call->query, "need_new_token", ieod_bool(s->need_new_token));
    return ieod_done(call, err);
}

bkoauth_code ieod_build_user(const bk_settings *s, const char *env_name, const bk_kvlist *credentials,
                             const char *client_ip, ssm_call *call, bkoauth_error *err)
{
    call->what = "user token";
    call->method = "GET";
    call->path = IEOD_TOKEN_PATH;
    ieod_param(&call->query, "app_code", s->app_code);
    ieod_param(&call->query, "app_secret", s->app_secret);
    ieod_param(&call->query, "env_name", env_name);
    ieod_param(&call->query, "bk_client_ip", client_ip);
    ieod_param(&call->query, "grant_type", "authorization_code");
    ieod_param(&call->query, "need_new_token", ieod_bool(s->need_new_token));
    for (size_t i = 0; i < s->oauth_params.count; i++) {
        const bk_kv *kv = &s->oauth_params.items[i];
        if (kv->key == NULL || ssm_kv_has(credentials, kv->key))
            continue; /* the credential wins and is sent once, below */
        ieod_param(&call->query, kv->key, kv->value);
    }
    for (size_t i = 0; credentials != NULL && i < credentials->count; i++) {
        const bk_kv *kv = &credentials->items[i];
        if (kv->key != NULL) ieod_param(&call->query, kv->key, kv->value);
    }
    return ieod_done(call, err);
}

bkoauth_code ieod_build_refresh(const bk_settings *s, const char *env_name, const char *refresh_token,
                                ssm_call *call, bkoauth_error *err)
{
    call->what = "refresh_token";
    call->method = "GET";
    call->path = IEOD_REFRESH_PATH;
    ieod_param(&call->query, "grant_type", "refresh_token");
    ieod_param(&call->query, "app_code", s->app_code);
    ieod_param(&call->query, "env_name", env_name);
    ieod_param(&call->query, "refresh_token", refresh_token);
    ieod_param(&call->query, "need_new_token", ieod_bool(s->need_new_token));
    return ieod_done(call, err);
}

static int ieod_succeeded(const json_t *root)
{
    return json_is_object(root) && json_is_true(json_object_get(root, "result"));
}

/* "result": false is a refusal; any other value is a malformed answer. */
static int ieod_refused(const json_t *f, long api_code, char *buf, size_t size)
{
    (void)api_code;
    if (!json_is_false(f)) return 0;
    snprintf(buf, size, "result false");
    return 1;
}

const ssm_proto ssm_proto_ieod = {
    .name = "ieod",
    .refresh_sends_secret = 0,
    .build_app = ieod_build_app,
    .build_user = ieod_build_user,
    .build_refresh = ieod_build_refresh,
    .flag = "result",
    .flag_wanted = "the boolean true",
    .succeeded = ieod_succeeded,
    .refused = ieod_refused,
};
