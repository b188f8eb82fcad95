/* SPDX-License-Identifier: MIT */
/* fuzz_agent_request.c - libFuzzer target for what bkoauth-agent parses itself (tools/agent/route.c,
 * tools/agent/body.c): request paths, login bodies and refresh bodies. The first byte picks the
 * parser, the rest is its input (a path is not NUL-terminated: the parser gets its length).
 * Invariants: a path taken names a known operation, and a user name from it is 1 to 256 bytes
 * without '/' or NUL, neither "." nor ".."; a refused path or body has a message; a login taken
 * gives a Cookie header without control characters or ';' inside a value, and a query string of
 * unreserved characters, %XX, '=' and '&' only; no message quotes the body. */
#include "agent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond) abort();
}

static void fuzz_path(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    agent_route r;
    char msg[200];
    int rc = agent_route_parse(p, size, &r, msg, sizeof msg);
    check(rc == 0 || rc == 400 || rc == 404);
    if (rc == 400) check(msg[0] != '\0');
    if (rc == 0) {
        check(r.op >= OP_APP_TOKEN && r.op < OP_OTHER);
        if (r.op == OP_USER_TOKEN || r.op == OP_LOGIN || r.op == OP_REFRESH) {
            size_t n = strlen(r.user);
            check(n >= 1 && n <= AGENT_MAX_USER && strchr(r.user, '/') == NULL);
            check(strcmp(r.user, ".") != 0 && strcmp(r.user, "..") != 0);
        }
        const char *allow;
        check(agent_method_ok(r.op, "GET", &allow) != agent_method_ok(r.op, "POST", &allow));
    }
    free(p);
}

static void check_message(const char *msg, const uint8_t *body, size_t size)
{
    check(msg[0] != '\0');
    if (size >= 12 && memchr(body, '\0', size) == NULL) {
        char *b = malloc(size + 1);
        memcpy(b, body, size);
        b[size] = '\0';
        check(strstr(msg, b) == NULL);
        free(b);
    }
}

static void fuzz_login(const uint8_t *data, size_t size)
{
    agent_login l;
    char msg[300];
    if (agent_login_parse((const char *)data, size, &l, msg, sizeof msg) != 0) {
        check_message(msg, data, size);
        check(l.cookie_header == NULL && l.query_string == NULL && l.client_ip == NULL);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)l.cookie_header; p && *p; p++)
        check(*p >= 0x20 && *p != 0x7f && *p != ',' && *p != '"' && *p != '\\');
    for (const unsigned char *p = (const unsigned char *)l.query_string; p && *p; p++)
        check(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%=&", *p) != NULL);
    agent_login_clear(&l);
}

static void fuzz_refresh(const uint8_t *data, size_t size)
{
    char *t = NULL;
    char msg[300];
    if (agent_refresh_parse((const char *)data, size, &t, msg, sizeof msg) != 0) {
        check_message(msg, data, size);
        check(t == NULL);
        return;
    }
    if (t != NULL) check(strlen(t) >= 1 && strlen(t) <= 255);
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_path(data + 1, size - 1);
        break;
    case 1:
        fuzz_login(data + 1, size - 1);
        break;
    default:
        fuzz_refresh(data + 1, size - 1);
        break;
    }
    return 0;
}
