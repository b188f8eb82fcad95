/* SPDX-License-Identifier: MIT */
/* route.c - what a request asks: its path, taken as sent (no dot segments, no encoded '/' or
 * NUL), and its JSON body. Pure functions of their input (fuzz/fuzz_agent_request.c). Messages
 * never quote a body: it may hold a credential. */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[OP_COUNT] = {"app_token", "user_token", "login",   "refresh",
                                               "healthz",   "stats",      "metrics", "other"};

const char *agent_op_name(agent_op op)
{
    return op >= 0 && op < OP_COUNT ? op_names[op] : "other";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int bad(char *msg, size_t size, const char *what)
{
    snprintf(msg, size, "bad path: %s", what);
    return 400;
}

/* Decodes one path segment s[0..n) into out (at most AGENT_MAX_USER bytes). 0 or 400. */
static int decode_segment(const char *s, size_t n, char *out, char *msg, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return bad(msg, size, "a '%' not followed by two hex digits");
            c = (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
            if (c == 0) return bad(msg, size, "%00 (a NUL byte) in a segment");
            if (c == '/') return bad(msg, size, "%2F (an encoded '/') in a segment");
        }
        if (o >= AGENT_MAX_USER) return bad(msg, size, "a user name over 256 bytes");
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Splits path into at most 5 segments (start, length). -1 for more; 400 for a bad shape. */
static int split(const char *p, size_t len, const char *seg[5], size_t seglen[5], size_t *n, char *msg,
                 size_t size)
{
    if (len == 0 || p[0] != '/') return bad(msg, size, "it must begin with '/'");
    *n = 0;
    size_t i = 1;
    while (i <= len) {
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        if (*n == 5) return -1;
        seg[*n] = p + i;
        seglen[*n] = j - i;
        (*n)++;
        if (j - i == 0 && !(j == len && *n == 1))
            return bad(msg, size, "an empty segment ('//' or a trailing '/')");
        if ((j - i == 1 && p[i] == '.') || (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
            return bad(msg, size, "a '.' or '..' segment");
        i = j + 1;
    }
    return 0;
}

static int seg_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* The user operations: /v1/users/{user}/{token,login,refresh}. */
static int route_user(const char *seg[5], const size_t seglen[5], agent_route *r, char *msg, size_t size)
{
    if (seg_is(seg[3], seglen[3], "token"))
        r->op = OP_USER_TOKEN;
    else if (seg_is(seg[3], seglen[3], "login"))
        r->op = OP_LOGIN;
    else if (seg_is(seg[3], seglen[3], "refresh"))
        r->op = OP_REFRESH;
    else
        return 404;
    int rc = decode_segment(seg[2], seglen[2], r->user, msg, size);
    if (rc == 0 && (r->user[0] == '\0' || strcmp(r->user, ".") == 0 || strcmp(r->user, "..") == 0))
        return bad(msg, size, "the user name is empty, '.' or '..'");
    return rc;
}

int agent_route_parse(const char *path, size_t len, agent_route *r, char *msg, size_t size)
{
    memset(r, 0, sizeof *r);
    r->op = OP_OTHER;
    if (msg != NULL && size > 0) msg[0] = '\0';
    if (memchr(path, '\0', len) != NULL) return bad(msg, size, "a NUL byte");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)path[i] < 0x20 || (unsigned char)path[i] == 0x7f)
            return bad(msg, size, "a control character");
    const char *seg[5];
    size_t seglen[5], n = 0;
    int rc = split(path, len, seg, seglen, &n, msg, size);
    if (rc == -1) return 404;
    if (rc != 0) return rc;
    if (n == 1 && seg_is(seg[0], seglen[0], "healthz")) r->op = OP_HEALTHZ;
    if (n == 1 && seg_is(seg[0], seglen[0], "stats")) r->op = OP_STATS;
    if (n == 1 && seg_is(seg[0], seglen[0], "metrics")) r->op = OP_METRICS;
    if (n == 3 && seg_is(seg[0], seglen[0], "v1") && seg_is(seg[1], seglen[1], "app") &&
        seg_is(seg[2], seglen[2], "token"))
        r->op = OP_APP_TOKEN;
    if (r->op != OP_OTHER) return 0;
    if (n == 4 && seg_is(seg[0], seglen[0], "v1") && seg_is(seg[1], seglen[1], "users"))
        return route_user(seg, seglen, r, msg, size);
    return 404;
}

int agent_method_ok(agent_op op, const char *method, const char **allow)
{
    int post = op == OP_LOGIN || op == OP_REFRESH;
    *allow = post ? "POST" : "GET, HEAD";
    if (post) return strcmp(method, "POST") == 0;
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}
