/* SPDX-License-Identifier: MIT */
/* fuzz_grant.c - libFuzzer target for the SSM answer parser (ssm_parse_response), both protocols,
 * and for the ee body builder fed arbitrary credential bytes.
 *
 * Input: byte 0 picks the mode (bit 0: protocol ieod/ee; bit 1: build an ee body instead of
 * parsing; bits 2-4: the HTTP status from a table), the rest is the body (or the credential). */
#include "ssm/ssm_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond) abort();
}

static void fuzz_parse(int protocol, long status, const char *body, size_t len)
{
    ssm_grant g;
    bkoauth_error err;
    bkoauth_code rc = ssm_parse_response(protocol, status, body, len, &g, &err);
    if (rc == BKOAUTH_OK) {
        fuzz_check(status >= 200 && status <= 299);
        fuzz_check(g.access_token != NULL && g.access_token[0] != '\0' && strlen(g.access_token) <= 255);
        fuzz_check(g.refresh_token != NULL && strlen(g.refresh_token) <= 255);
        fuzz_check(g.scope != NULL);
        fuzz_check(g.expires_in >= 0);
        fuzz_check(err.code == BKOAUTH_OK);
        ssm_grant_clear(&g);
    } else {
        fuzz_check(rc == BKOAUTH_E_TOKEN_API || rc == BKOAUTH_E_NOMEM);
        fuzz_check(err.code == rc && err.message[0] != '\0');
        fuzz_check(memchr(err.message, '\0', sizeof err.message) != NULL);
        fuzz_check(g.access_token == NULL && g.refresh_token == NULL && g.scope == NULL);
    }
}

/* An ee user body with the bytes as a credential value must be valid JSON that gives them back
 * (or U+FFFD for bytes that are not UTF-8). */
static void fuzz_build(const char *value)
{
    bk_settings s;
    memset(&s, 0, sizeof s);
    s.app_code = (char *)"app";
    s.app_secret = (char *)"secret";
    s.oauth_params_json = (char *)"{\"p\": 1}";
    bk_kv kv = {(char *)"bk_token", (char *)value};
    bk_kvlist creds = {&kv, 1};
    ssm_call call;
    memset(&call, 0, sizeof call);
    bkoauth_error err;
    if (ee_build_user(&s, "test", &creds, NULL, &call, &err) == BKOAUTH_OK) {
        json_error_t jerr;
        json_t *root = json_loadb(call.body.data, call.body.len, 0, &jerr);
        fuzz_check(json_is_object(root));
        const json_t *v = json_object_get(root, "bk_token");
        fuzz_check(json_is_string(v));
        json_t *direct = json_string(value);
        if (direct != NULL) /* valid UTF-8: sent unchanged */
            fuzz_check(strcmp(json_string_value(direct), json_string_value(v)) == 0);
        json_decref(direct);
        json_decref(root);
    }
    ssm_call_clear(&call);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[8] = {200, 201, 204, 302, 400, 403, 500, 0};
    if (size < 1) return 0;
    int protocol = (data[0] & 1) ? BK_PROTO_EE : BK_PROTO_IEOD;
    int build = (data[0] & 2) != 0;
    long status = statuses[(data[0] >> 2) & 7];
    size_t len = size - 1;
    if (!build) {
        /* libFuzzer's buffer is exactly size bytes: reading past len is caught */
        fuzz_parse(protocol, status, len > 0 ? (const char *)data + 1 : NULL, len);
        return 0;
    }
    char *value = malloc(len + 1);
    if (value == NULL) return 0;
    memcpy(value, data + 1, len);
    value[len] = '\0';
    fuzz_build(value); /* up to the first NUL, as a C string */
    free(value);
    return 0;
}
