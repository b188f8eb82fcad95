/* SPDX-License-Identifier: MIT */
/* fuzz_request.c - libFuzzer target for the Cookie header, query string and uin parsers and
 * request_credentials. The input is split at the first two NUL bytes into a Cookie header, a
 * query string and a session value. Invariants: results are NUL-terminated strings no longer
 * than their source; a uin result is all digits or the input unchanged. */
#include "internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond) abort();
}

static const char *session_value;

static const char *session(void *ctx, const char *key)
{
    (void)ctx;
    (void)key;
    return session_value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *cookie = buf;
    const char *query = cookie + strlen(cookie) + 1;
    session_value = query + strlen(query) + 1;
    if (query > buf + size) query = "";
    if (session_value > buf + size) session_value = "";

    static const char *const names[] = {"bk_token", "bk_uid", "a", ""};
    for (size_t i = 0; i < 4; i++) {
        char *v = cookie_get(cookie, names[i]);
        check(v == NULL || strlen(v) <= strlen(cookie));
        free(v);
        v = query_get(query, names[i]);
        check(v == NULL || strlen(v) <= strlen(query));
        free(v);
    }
    char *u = uin_normalize(cookie);
    check(u != NULL);
    if (strcmp(u, cookie) != 0)
        for (const char *p = u; *p; p++)
            check(isdigit((unsigned char)*p));
    free(u);

    bkoauth_config *c = bkoauth_config_new();
    bkoauth_config_set(c, "OAUTH_COOKIES_PARAMS", "{'bk_token': 'bk_token', 'uid': 'bk_uid'}", NULL);
    bk_settings s;
    if (settings_from_config(c, &s, NULL) == BKOAUTH_OK) {
        bkoauth_request r = {.cookie_header = cookie, .query_string = query, .session_get = session};
        bk_kvlist out = {0};
        bkoauth_code rc = request_credentials(&s, &r, &out, NULL);
        check(rc == BKOAUTH_OK || rc == BKOAUTH_E_INVALID || rc == BKOAUTH_E_NOMEM);
        check(rc != BKOAUTH_OK || out.count == 2);
        kvlist_clear(&out);
        settings_clear(&s);
    }
    bkoauth_config_free(c);
    free(buf);
    return 0;
}
