/* SPDX-License-Identifier: MIT */
/* ssm_int.h - private interface between ssm.c (dispatch, checks, the shared grant parser), call.c
 * (the call record) and the two wire protocols ieod.c and ee.c. Also used by the unit tests and
 * fuzz/fuzz_grant.c. */
#ifndef BKOAUTH_SSM_INT_H
#define BKOAUTH_SSM_INT_H

#include "ssm.h"

#include <jansson.h>

/* One SSM call as a protocol builds it. Every string is owned; the query, the headers and the
 * body may hold the app secret, a refresh token or a user credential: ssm_call_clear() wipes
 * them. Nothing of it is ever logged except method and path. */
typedef struct ssm_call {
    const char *what;   /* static, for messages: "APP token", "user token", "refresh_token" */
    const char *method; /* static: "GET" or "POST" */
    const char *path;   /* static: "/auth_api/token/" ... */
    bk_buf query;       /* query string without '?', empty for none */
    char *headers[4];   /* "Name: value" lines, nheaders of them */
    size_t nheaders;
    bk_buf body; /* request body; data NULL for none */
} ssm_call;
void ssm_call_clear(ssm_call *call);

/* Appends an owned header line to call; returns 0, or -1 when out of memory or full. */
int ssm_call_header(ssm_call *call, const char *name, const char *value);

/* Builders: fill call (zeroed by the caller) for s. Return BKOAUTH_OK, BKOAUTH_E_NOMEM, or
 * BKOAUTH_E_CONFIG when a setting cannot be used (e.g. OAUTH_PARAMS not a JSON object), with err
 * filled. env_name, credentials (may be NULL), client_ip (may be NULL) and refresh_token are
 * borrowed. Credentials win over OAUTH_PARAMS entries of the same name. */
bkoauth_code ieod_build_app(const bk_settings *s, const char *env_name, ssm_call *call, bkoauth_error *err);
bkoauth_code ieod_build_user(const bk_settings *s, const char *env_name, const bk_kvlist *credentials,
                             const char *client_ip, ssm_call *call, bkoauth_error *err);
bkoauth_code ieod_build_refresh(const bk_settings *s, const char *env_name, const char *refresh_token,
                                ssm_call *call, bkoauth_error *err);
bkoauth_code ee_build_app(const bk_settings *s, const char *env_name, ssm_call *call, bkoauth_error *err);
bkoauth_code ee_build_user(const bk_settings *s, const char *env_name, const bk_kvlist *credentials,
                           const char *client_ip, ssm_call *call, bkoauth_error *err);
bkoauth_code ee_build_refresh(const bk_settings *s, const char *env_name, const char *refresh_token,
                              ssm_call *call, bkoauth_error *err);

/* One wire protocol: how it builds its three calls and how its answer says success. ieod.c and
 * ee.c each define one; ssm_new() takes the one of s->protocol and ssm.c calls through it. */
typedef struct ssm_proto {
    const char *name;         /* "ieod" or "ee" */
    int refresh_sends_secret; /* the refresh call carries the app secret, so it needs one */
    bkoauth_code (*build_app)(const bk_settings *s, const char *env_name, ssm_call *call, bkoauth_error *err);
    bkoauth_code (*build_user)(const bk_settings *s, const char *env_name, const bk_kvlist *credentials,
                               const char *client_ip, ssm_call *call, bkoauth_error *err);
    bkoauth_code (*build_refresh)(const bk_settings *s, const char *env_name, const char *refresh_token,
                                  ssm_call *call, bkoauth_error *err);
    /* The answer's success flag, by name ("result", "code"), and what it must be, for messages
     * ("the boolean true", "the number 0"). */
    const char *flag;
    const char *flag_wanted;
    /* 1 when the answer (a JSON object) says success. */
    int (*succeeded)(const json_t *root);
    /* 1 when the flag f (present, not saying success) is the service refusing the request rather
     * than a malformed answer; buf then says so ("result false", "code 40101"). api_code is the
     * answer's "code" as ssm.c read it. */
    int (*refused)(const json_t *f, long api_code, char *buf, size_t size);
} ssm_proto;

/* ieod: "result" is the boolean true. ee: "code" is the number 0. */
extern const ssm_proto ssm_proto_ieod;
extern const ssm_proto ssm_proto_ee;

/* 1 when credentials holds an entry named key. credentials may be NULL. */
int ssm_kv_has(const bk_kvlist *credentials, const char *key);

/* The shared response parser: judges an answer (HTTP status, body of len bytes, any bytes) of
 * protocol (BK_PROTO_*, through its ssm_proto) and fills *out with the grant. Returns BKOAUTH_OK, or
 * BKOAUTH_E_TOKEN_API with err saying what is wrong (http_status set when status > 0, api_code
 * from the answer's "code" when present) and *out zeroed; BKOAUTH_E_NOMEM when out of memory.
 * The message never quotes the body except the service's own "message" field. */
bkoauth_code ssm_parse_response(int protocol, long status, const char *body, size_t len, ssm_grant *out,
                                bkoauth_error *err);

#endif
