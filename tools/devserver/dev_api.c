/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: the test endpoints under /__dev/ (docs/DEVSERVER.md) - health, counters,
 * token, reset, fault, config. They report what record.c keeps and arm faults with faults.c.
 * Each answer is built with S.mu held and sent after it is released. */
#include "devserver.h"

#include <string.h>

/* ---- the endpoints (the caller holds S.mu) -------------------------------------------------- */

/* GET /__dev/counters. 'last' is a copy: the answer is written out after S.mu is released,
 * while another call may replace S.last. */
static json_t *dev_counters(void)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:o}", "app_token",
                     (json_int_t)S.app_token, "user_token", (json_int_t)S.user_token, "refresh",
                     (json_int_t)S.refresh, "refresh_failed", (json_int_t)S.refresh_failed, "faulted",
                     (json_int_t)S.faulted, "total", (json_int_t)S.total, "tokens", (json_int_t)S.ntokens,
                     "in_flight", (json_int_t)S.in_flight, "in_flight_peak", (json_int_t)S.in_flight_peak,
                     "by_protocol", "ieod", (json_int_t)S.ieod, "ee", (json_int_t)S.ee, "last",
                     S.last ? json_deep_copy(S.last) : json_null());
}

/* GET /__dev/token?access_token=... */
static json_t *dev_token_info(struct MHD_Connection *c, unsigned *status)
{
    const char *at = dev_arg(c, "access_token");
    if (at == NULL || at[0] == '\0') {
        *status = 400;
        return json_pack("{s:b, s:s}", "valid", 0, "message", "access_token is missing");
    }
    dev_token *t = dev_find(at, 0);
    if (t == NULL) return json_pack("{s:b, s:s}", "valid", 0, "kind", "unknown");
    time_t now = time(NULL);
    return json_pack("{s:b, s:s?, s:I, s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "valid", dev_token_valid(t, now),
                     "username", t->username, "expires_in", (json_int_t)(t->expires_at - now), "kind",
                     t->username ? "user" : "app", "env_name", t->env_name, "protocol", t->protocol,
                     "need_new_token", t->need_new_token, "bk_client_ip", t->client_ip, "refreshed",
                     t->invalid_after != 0, "refresh_token_used", t->refresh_used);
}

/* POST /__dev/reset[?tokens=1]: the counters, the fault and the record of the last call; the
 * tokens too when asked. */
static json_t *dev_reset(struct MHD_Connection *c)
{
    S.app_token = S.user_token = S.refresh = S.refresh_failed = S.faulted = S.total = S.ieod = S.ee = 0;
    S.in_flight_peak = S.in_flight; /* calls still being answered stay counted */
    dev_clear_fault();
    json_decref(S.last);
    S.last = NULL;
    int forget = dev_streq(dev_arg(c, "tokens"), "1");
    if (forget) dev_forget_tokens();
    return json_pack("{s:b, s:b}", "ok", 1, "tokens_forgotten", forget);
}

/* POST /__dev/config (GET reads). */
static json_t *dev_config(struct MHD_Connection *c, int post, unsigned *status)
{
    const char *ttl = dev_arg(c, "ttl"), *overlap = dev_arg(c, "overlap");
    long t = S.ttl, o = S.overlap;
    if (post && ((ttl && dev_parse_long(ttl, 0, DEV_MAX_SECONDS, &t) != 0) ||
                 (overlap && dev_parse_long(overlap, 0, DEV_MAX_SECONDS, &o) != 0))) {
        *status = 400;
        return json_pack("{s:b, s:s}", "ok", 0, "message",
                         "ttl and overlap must be whole seconds from 0 to 3153600000");
    }
    S.ttl = t;
    S.overlap = o;
    return json_pack("{s:b, s:I, s:I}", "ok", 1, "ttl", (json_int_t)S.ttl, "overlap", (json_int_t)S.overlap);
}

/* ---- routing -------------------------------------------------------------------------------- */

enum dev_endpoint { E_HEALTH, E_COUNTERS, E_TOKEN, E_RESET, E_FAULT, E_CONFIG, E_COUNT };

static const struct {
    const char *path;
    int post; /* 1: POST, 0: GET, 2: either */
} dev_routes[E_COUNT] = {{"/__dev/health", 0}, {"/__dev/counters", 0}, {"/__dev/token", 0},
                         {"/__dev/reset", 1},  {"/__dev/fault", 1},    {"/__dev/config", 2}};

/* The answer of endpoint e; sets *status when it is not 200. */
static json_t *dev_endpoint_answer(struct MHD_Connection *c, enum dev_endpoint e, int post, unsigned *status)
{
    switch (e) {
    case E_HEALTH:
        return json_pack("{s:b}", "ok", 1);
    case E_COUNTERS:
        return dev_counters();
    case E_TOKEN:
        return dev_token_info(c, status);
    case E_RESET:
        return dev_reset(c);
    case E_FAULT:
        return dev_set_fault(c, status);
    default:
        return dev_config(c, post, status);
    }
}

enum MHD_Result dev_call(struct MHD_Connection *c, const char *method, const char *url)
{
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    int e = 0;
    while (e < E_COUNT && strcmp(url, dev_routes[e].path) != 0)
        e++;
    if (e == E_COUNT) return dev_send_message(c, 404, "no such /__dev/ endpoint (see docs/DEVSERVER.md)");
    if ((dev_routes[e].post == 1 && !post) || (dev_routes[e].post == 0 && !get) || (!post && !get))
        return dev_send_message(
            c, 405, dev_routes[e].post == 1 ? "this endpoint takes POST" : "this endpoint takes GET");
    unsigned status = 200;
    pthread_mutex_lock(&S.mu);
    json_t *answer = dev_endpoint_answer(c, (enum dev_endpoint)e, post, &status);
    pthread_mutex_unlock(&S.mu);
    return dev_send_json(c, status, answer);
}
