/* SPDX-License-Identifier: MIT */
/* request.c - what the operations take from an incoming request: the user's credential
 * (cookie, then session, then query string; the uin rule) and the client's address. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_MAX_CREDENTIAL 4096

void bkoauth_request_from_params(bkoauth_request *req, const char *(*get)(void *ctx, const char *name),
                                 void *ctx)
{
    if (req == NULL) return;
    memset(req, 0, sizeof *req);
    if (get == NULL) return;
    req->username = get(ctx, "REMOTE_USER");
    req->cookie_header = get(ctx, "HTTP_COOKIE");
    req->query_string = get(ctx, "QUERY_STRING");
    req->remote_addr = get(ctx, "REMOTE_ADDR");
    req->x_forwarded_for = get(ctx, "HTTP_X_FORWARDED_FOR");
}

static const char *env_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

void bkoauth_request_from_cgi(bkoauth_request *req)
{
    bkoauth_request_from_params(req, env_get, NULL);
}

/* ---- Cookie header ------------------------------------------------------------------------ */

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* A name given twice: the last one counts, as in Django's request.COOKIES. */
char *cookie_get(const char *header, const char *name)
{
    if (header == NULL || name == NULL || name[0] == '\0') return NULL;
    size_t name_len = strlen(name);
    const char *p = header, *found = NULL, *found_end = NULL;
    while (*p) {
        while (*p == ';' || is_space(*p))
            p++;
        const char *pair = p;
        while (*p && *p != ';')
            p++;
        const char *pair_end = p;
        const char *eq = memchr(pair, '=', (size_t)(pair_end - pair));
        if (eq == NULL) continue; /* a bare word: no value */
        const char *k_end = eq;
        while (k_end > pair && is_space(k_end[-1]))
            k_end--;
        if ((size_t)(k_end - pair) != name_len || memcmp(pair, name, name_len) != 0) continue;
        found = eq + 1;
        found_end = pair_end;
    }
    if (found == NULL) return NULL;
    const char *v = found, *v_end = found_end;
    while (v < v_end && is_space(*v))
        v++;
    while (v_end > v && is_space(v_end[-1]))
        v_end--;
    if (v_end - v >= 2 && *v == '"' && v_end[-1] == '"') {
        v++;
        v_end--;
    }
    return bk_strndup(v, (size_t)(v_end - v));
}

/* ---- query string ------------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes [s, e) (percent escapes, '+' as space) into a new string; NULL when malformed (a bad
 * escape or a NUL byte) or on OOM. *bad tells which. */
static char *form_decode(const char *s, const char *e, int *bad)
{
    char *out = bkoauth__malloc((size_t)(e - s) + 1);
    *bad = 0;
    if (out == NULL) return NULL;
    size_t n = 0;
    for (const char *p = s; p < e; p++) {
        char c = *p;
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = p + 1 < e ? hex_value(p[1]) : -1;
            int lo = p + 2 < e ? hex_value(p[2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                bkoauth__wipe_free(out, n);
                *bad = 1;
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

/* A name given twice: the last (well-formed) one counts, as in Django's request.GET[name]. */
char *query_get(const char *query, const char *name)
{
    if (query == NULL || name == NULL || name[0] == '\0') return NULL;
    const char *p = query;
    char *last = NULL;
    while (*p) {
        const char *pair = p;
        while (*p && *p != '&' && *p != ';')
            p++;
        const char *pair_end = p;
        if (*p) p++;
        const char *eq = memchr(pair, '=', (size_t)(pair_end - pair));
        const char *k_end = eq ? eq : pair_end;
        int bad;
        char *key = form_decode(pair, k_end, &bad);
        if (key == NULL) {
            if (bad) continue; /* a malformed pair is skipped, never half-read */
            bk_wipe_free(last);
            return NULL;
        }
        int match = strcmp(key, name) == 0;
        bkoauth__free(key);
        if (!match) continue;
        char *value = eq == NULL ? bk_strdup("") : form_decode(eq + 1, pair_end, &bad);
        if (value == NULL && (eq == NULL || !bad)) { /* out of memory */
            bk_wipe_free(last);
            return NULL;
        }
        if (value == NULL) continue;
        bk_wipe_free(last);
        last = value;
    }
    return last;
}

/* ---- the uin rule ------------------------------------------------------------------------- */

char *uin_normalize(const char *value)
{
    if (value == NULL) return NULL;
    size_t len = strlen(value);
    int uin = value[0] == 'o' && len >= 4 && len <= 33;
    for (size_t i = 1; uin && i < len; i++)
        if (!isdigit((unsigned char)value[i])) uin = 0;
    if (!uin) return bk_strdup(value);
    const char *d = value + 1;
    while (*d == '0' && d[1] != '\0')
        d++;
    return bk_strdup(d);
}

/* ---- credentials and address --------------------------------------------------------------- */

/* The credential named cookie_name: cookie, session, query string, else "". NULL when out of
 * memory (cookie_get() and query_get() return NULL for "absent" too: the allocation failure
 * count tells them apart, so that a failure never passes for a missing credential). */
static char *first_credential(const bkoauth_request *req, const char *cookie_name)
{
    unsigned long failed = bkoauth__alloc_failures();
    char *v = cookie_get(req->cookie_header, cookie_name);
    if (!bk_empty(v)) return v;
    bkoauth__free(v);
    if (bkoauth__alloc_failures() != failed) return NULL;
    if (req->session_get != NULL) {
        const char *s = req->session_get(req->session_ctx, cookie_name);
        if (!bk_empty(s)) return bk_strdup(s);
    }
    v = query_get(req->query_string, cookie_name);
    if (!bk_empty(v)) return v;
    bkoauth__free(v);
    if (bkoauth__alloc_failures() != failed) return NULL;
    return bk_strdup("");
}

bkoauth_code request_credentials(const bk_settings *s, const bkoauth_request *req, bk_kvlist *out,
                                 bkoauth_error *err)
{
    kvlist_clear(out);
    for (size_t i = 0; i < s->cookies_params.count; i++) {
        const char *param = s->cookies_params.items[i].key;
        const char *cookie_name = s->cookies_params.items[i].value;
        char *raw = first_credential(req, cookie_name);
        if (raw == NULL) {
            kvlist_clear(out);
            return err_nomem(err);
        }
        if (strlen(raw) > REQUEST_MAX_CREDENTIAL) {
            size_t n = strlen(raw);
            bk_wipe_free(raw);
            kvlist_clear(out);
            return err_set(err, BKOAUTH_E_INVALID,
                           "the request's %s is %zu bytes long; at most %d are accepted", cookie_name, n,
                           REQUEST_MAX_CREDENTIAL);
        }
        char *value = uin_normalize(raw);
        bk_wipe_free(raw);
        if (value == NULL || kvlist_add(out, param, value) != 0) {
            bk_wipe_free(value);
            kvlist_clear(out);
            return err_nomem(err);
        }
        bk_wipe_free(value);
    }
    return BKOAUTH_OK;
}

const char *request_client_ip(const bkoauth_request *req)
{
    if (req == NULL) return "";
    if (!bk_empty(req->x_forwarded_for)) return req->x_forwarded_for;
    return req->remote_addr ? req->remote_addr : "";
}
