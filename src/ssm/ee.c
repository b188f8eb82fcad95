/* SPDX-License-Identifier: MIT */
/* ee.c - the "ee" wire protocol (BKAUTH_BACKEND_TYPE = bk_token): HTTP POST with a JSON body and
 * the headers X-BK-APP-CODE / X-BK-APP-SECRET (PROTOCOL.md "Protocol ee"). */
#include "ssm_int.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EE_TOKEN_PATH "/api/v1/auth/access-tokens"
#define EE_REFRESH_PATH "/api/v1/auth/access-tokens/refresh"

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when invalid. */
static size_t ee_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned long cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A JSON string of s; bytes that are not valid UTF-8 (a raw cookie may hold any) become U+FFFD,
 * as Python's decoding with errors="replace" gives. NULL on OOM. */
static json_t *ee_string(const char *s)
{
    if (s == NULL) s = "";
    json_t *j = json_string(s);
    if (j != NULL) return j;
    size_t n = strlen(s);
    bk_buf b = {NULL, 0, 0, 0, 1}; /* a credential */
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = ee_utf8_seq(p + i, n - i);
        if (k == 0) {
            buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            buf_append(&b, s + i, k);
            i += k;
        }
    }
    j = b.oom ? NULL : json_string(b.data != NULL ? b.data : "");
    buf_free(&b);
    return j;
}

/* Headers of every ee call. */
static bkoauth_code ee_headers(const bk_settings *s, ssm_call *call, bkoauth_error *err)
{
    if (ssm_call_header(call, "Content-Type", "application/json") != 0 ||
        ssm_call_header(call, "X-BK-APP-CODE", s->app_code != NULL ? s->app_code : "") != 0 ||
        ssm_call_header(call, "X-BK-APP-SECRET", s->app_secret != NULL ? s->app_secret : "") != 0)
        return err_nomem(err);
    return BKOAUTH_OK;
}

/* Dumps obj as the body, the way Python's json.dumps() writes it: ", " and ": " separators,
 * non-ASCII escaped. Takes obj's reference. */
static bkoauth_code ee_body(json_t *obj, ssm_call *call, bkoauth_error *err)
{
    call->body.secret = 1; /* it carries a credential or a refresh_token */
    if (obj == NULL) return err_nomem(err);
    char *text = bkoauth__json_dump_python(obj, 0);
    json_decref(obj);
    if (text == NULL) {
        call->body.oom = 1;
        return err_nomem(err);
    }
    size_t n = strlen(text);
    buf_append(&call->body, text, n);
    bkoauth__wipe_free(text, n + 1); /* may hold a credential */
    return call->body.oom ? err_nomem(err) : BKOAUTH_OK;
}

static json_t *ee_pair(const char *grant_type, const char *id_provider)
{
    json_t *obj = json_object();
    if (obj == NULL) return NULL;
    if (json_object_set_new(obj, "grant_type", json_string(grant_type)) != 0 ||
        json_object_set_new(obj, "id_provider", json_string(id_provider)) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

bkoauth_code ee_build_app(const bk_settings *s, const char *env_name, ssm_call *call, bkoauth_error *err)
{
    (void)env_name; /* the ee service knows the app's environment itself */
    call->what = "APP token";
    call->method = "POST";
    call->path = EE_TOKEN_PATH;
    bkoauth_code rc = ee_headers(s, call, err);
    if (rc != BKOAUTH_OK) return rc;
    rc = ee_body(ee_pair("client_credentials", "client"), call, err);
    return rc == BKOAUTH_OK ? err_ok(err) : rc;
}

bkoauth_code ee_build_user(const bk_settings *s, const char *env_name, const bk_kvlist *credentials,
                           const char *client_ip, ssm_call *call, bkoauth_error *err)
{
    (void)env_name;
    (void)client_ip; /* the ee protocol does not send the client address */
    call->what = "user token";
    call->method = "POST";
    call->path = EE_TOKEN_PATH;
    bkoauth_code rc = ee_headers(s, call, err);
    if (rc != BKOAUTH_OK) return rc;

    json_t *params = NULL;
    if (!bk_empty(s->oauth_params_json)) {
        json_error_t jerr;
        int oom = 0;
        params = bkoauth__json_loadb(s->oauth_params_json, strlen(s->oauth_params_json), 0, &jerr, &oom);
        if (oom) return err_nomem(err);
        if (!json_is_object(params)) {
            json_decref(params);
            return err_set(err, BKOAUTH_E_CONFIG,
                           "OAUTH_PARAMS is not a JSON object: write it as {\"name\": value}");
        }
    }
    json_t *obj = ee_pair("authorization_code", "bk_login");
    int oom = obj == NULL;
    const char *key;
    json_t *value;
    if (!oom && params != NULL) {
        json_object_foreach(params, key, value)
        {
            if (ssm_kv_has(credentials, key)) continue; /* the credential wins and is sent once, below */
            if (json_object_set(obj, key, value) != 0) {
                oom = 1;
                break;
            }
        }
    }
    for (size_t i = 0; !oom && credentials != NULL && i < credentials->count; i++) {
        const bk_kv *kv = &credentials->items[i];
        if (kv->key == NULL) continue;
        if (json_object_set_new(obj, kv->key, ee_string(kv->value)) != 0) oom = 1;
    }
    json_decref(params);
    if (oom) {
        json_decref(obj);
        return err_nomem(err);
    }
    rc = ee_body(obj, call, err);
    return rc == BKOAUTH_OK ? err_ok(err) : rc;
}

bkoauth_code ee_build_refresh(const bk_settings *s, const char *env_name, const char *refresh_token,
                              ssm_call *call, bkoauth_error *err)
{
    (void)env_name;
    call->what = "refresh_token";
    call->method = "POST";
    call->path = EE_REFRESH_PATH;
    bkoauth_code rc = ee_headers(s, call, err);
    if (rc != BKOAUTH_OK) return rc;
    json_t *obj = json_object();
    if (obj != NULL && json_object_set_new(obj, "refresh_token", ee_string(refresh_token)) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    rc = ee_body(obj, call, err);
    return rc == BKOAUTH_OK ? err_ok(err) : rc;
}

static int ee_succeeded(const json_t *root)
{
    const json_t *code = json_is_object(root) ? json_object_get(root, "code") : NULL;
    if (json_is_integer(code)) return json_integer_value(code) == 0;
    if (json_is_real(code)) return json_real_value(code) == 0.0;
    return 0;
}

/* A "code" that is a number other than 0 is a refusal; any other value is a malformed answer. */
static int ee_refused(const json_t *f, long api_code, char *buf, size_t size)
{
    if (!json_is_number(f)) return 0;
    snprintf(buf, size, "code %ld", api_code);
    return 1;
}

const ssm_proto ssm_proto_ee = {
    .name = "ee",
    .refresh_sends_secret = 1,
    .build_app = ee_build_app,
    .build_user = ee_build_user,
    .build_refresh = ee_build_refresh,
    .flag = "code",
    .flag_wanted = "the number 0",
    .succeeded = ee_succeeded,
    .refused = ee_refused,
};
