/* SPDX-License-Identifier: MIT */
/* body.c - the JSON bodies of POST /v1/users/{user}/login and /refresh (docs/AGENT.md, "Request
 * bodies"), checked strictly. A message says what is wrong and where (line, column), never what
 * the body holds: it carries credentials. */
#include "agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *data;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_putc(sbuf *b, char c)
{
    if (b->oom) return;
    if (b->len + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        char *d = malloc(cap);
        if (d == NULL) {
            b->oom = 1;
            return;
        }
        if (b->data != NULL) {
            memcpy(d, b->data, b->len);
            explicit_bzero(b->data, b->cap);
            free(b->data);
        }
        b->data = d;
        b->cap = cap;
    }
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    while (*s)
        sb_putc(b, *s++);
}

static void sb_wipe(sbuf *b)
{
    if (b->data != NULL) explicit_bzero(b->data, b->cap);
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Percent-encodes s as a query string part (unreserved characters kept). */
static void sb_encode(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p) != NULL) {
            sb_putc(b, (char)*p);
        } else {
            sb_putc(b, '%');
            sb_putc(b, hex[*p >> 4]);
            sb_putc(b, hex[*p & 15]);
        }
    }
}

static int fail(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* The body as a JSON object, or NULL with msg. */
static json_t *parse_object(const char *body, size_t len, char *msg, size_t size)
{
    json_error_t e;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (v == NULL) {
        const char *why;
        switch (json_error_code(&e)) {
        case json_error_duplicate_key:
            why = "a member is given twice";
            break;
        case json_error_invalid_utf8:
            why = "text that is not UTF-8";
            break;
        case json_error_null_character:
            why = "a NUL character (\\u0000)";
            break;
        case json_error_premature_end_of_input:
            why = "the text ends too early";
            break;
        case json_error_end_of_input_expected:
            why = "more after the JSON value";
            break;
        case json_error_out_of_memory:
            why = "out of memory";
            break;
        default:
            why = "not JSON";
            break;
        }
        snprintf(msg, size, "the body is not a usable JSON object: %s at line %d column %d", why, e.line,
                 e.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        fail(msg, size, "%s", "the body is JSON but not an object; send {\"cookies\": {...}} and the like");
        return NULL;
    }
    return v;
}

/* A cookie name: an HTTP token. A value: no ';', ',', space, quote, backslash, control. */
static int cookie_ok(const char *s, int name)
{
    if (name && *s == '\0') return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x21 || *p == 0x7f || strchr(";,\"\\", *p) != NULL) return 0;
        if (name && strchr("=()<>@:/[]?{}", *p) != NULL) return 0;
    }
    return 1;
}

/* An object of strings into a Cookie header (cookie) or a query string. */
static int string_map(json_t *o, const char *member, int cookie, sbuf *b, char *msg, size_t size)
{
    if (!json_is_object(o)) return fail(msg, size, "\"%s\" must be an object of strings", member);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!json_is_string(v)) return fail(msg, size, "every value of \"%s\" must be a string", member);
        const char *s = json_string_value(v);
        if (cookie && (!cookie_ok(k, 1) || !cookie_ok(s, 0)))
            return fail(msg, size, "%s",
                        "a cookie name or value holds a character a Cookie header cannot carry (';', ',', a "
                        "space, a quote, a backslash or a control character)");
        if (!cookie && k[0] == '\0') return fail(msg, size, "%s", "a \"query\" parameter has an empty name");
        if (b->len > 0) sb_puts(b, cookie ? "; " : "&");
        if (cookie) {
            sb_puts(b, k);
            sb_putc(b, '=');
            sb_puts(b, s);
        } else {
            sb_encode(b, k);
            sb_putc(b, '=');
            sb_encode(b, s);
        }
    }
    return b->oom ? fail(msg, size, "%s", "out of memory") : 0;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

/* The members of a login body into out. 0 or -1 with msg. */
static int login_members(json_t *o, agent_login *out, char *msg, size_t size)
{
    sbuf cookies = {0}, query = {0};
    const char *k;
    json_t *v;
    int rc = 0, have = 0;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "cookies") == 0) {
            rc = string_map(v, k, 1, &cookies, msg, size);
            have = 1;
        } else if (strcmp(k, "query") == 0) {
            rc = string_map(v, k, 0, &query, msg, size);
            have = 1;
        } else if (strcmp(k, "client_ip") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 1024)
                rc = fail(msg, size, "%s", "\"client_ip\" must be a string of 1 to 1024 bytes");
            else if ((out->client_ip = dup_string(json_string_value(v))) == NULL)
                rc = fail(msg, size, "%s", "out of memory");
        } else {
            rc = fail(msg, size, "%s",
                      "unknown member in the body; a login takes \"cookies\", \"query\" and "
                      "\"client_ip\"");
        }
        if (rc != 0) break;
    }
    if (rc == 0 && !have)
        rc = fail(msg, size, "%s", "a login needs the user's credential: \"cookies\" or \"query\"");
    out->cookie_header = cookies.data;
    out->query_string = query.data;
    if (rc != 0) {
        sb_wipe(&cookies);
        sb_wipe(&query);
        out->cookie_header = out->query_string = NULL;
    }
    return rc;
}

int agent_login_parse(const char *body, size_t len, agent_login *out, char *msg, size_t size)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return fail(msg, size, "%s", "a login needs a JSON body: {\"cookies\": {\"bk_token\": \"...\"}}");
    json_t *o = parse_object(body, len, msg, size);
    if (o == NULL) return -1;
    int rc = login_members(o, out, msg, size);
    json_decref(o);
    if (rc != 0) agent_login_clear(out);
    return rc;
}

static void wipe_free(char *s)
{
    if (s == NULL) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

void agent_login_clear(agent_login *l)
{
    wipe_free(l->cookie_header);
    wipe_free(l->query_string);
    free(l->client_ip);
    memset(l, 0, sizeof *l);
}

int agent_refresh_parse(const char *body, size_t len, char **access_token, char *msg, size_t size)
{
    *access_token = NULL;
    if (len == 0) return 0;
    json_t *o = parse_object(body, len, msg, size);
    if (o == NULL) return -1;
    int rc = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "access_token") != 0)
            rc = fail(msg, size, "%s", "unknown member in the body; a refresh takes only \"access_token\"");
        else if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255)
            rc = fail(msg, size, "%s", "\"access_token\" must be a string of 1 to 255 bytes");
        else if ((*access_token = dup_string(json_string_value(v))) == NULL)
            rc = fail(msg, size, "%s", "out of memory");
        if (rc != 0) break;
    }
    json_decref(o);
    if (rc != 0) {
        wipe_free(*access_token);
        *access_token = NULL;
    }
    return rc;
}
