/* SPDX-License-Identifier: MIT */
/* ops.c - the token operations of the API and their answers (docs/AGENT.md, "The API"). */
#include "agent.h"

#include "internal.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *error_body(unsigned status, const char *name, const char *message)
{
    return json_pack("{s:s, s:s, s:i}", "error", name, "message", message, "status", (int)status);
}

void agent_error(agent_answer *a, unsigned status, const char *name, const char *fmt, ...)
{
    char message[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    a->status = status;
    a->result = name;
    a->body = error_body(status, name, message);
    a->retry_after = status == 503;
}

/* The HTTP status of a library error (docs/AGENT.md, "Errors"). */
static unsigned status_of(const bkoauth_error *e)
{
    switch (e->code) {
    case BKOAUTH_E_TOKEN_NOT_EXIST:
        return 404;
    case BKOAUTH_E_INVALID:
        return 400;
    case BKOAUTH_E_STORE:
        return 503;
    case BKOAUTH_E_TOKEN_API:
        return e->http_status != 0 || e->api_code != 0 ? 502 : 503;
    default:
        return 500;
    }
}

static void library_error(agent_answer *a, const bkoauth_error *e)
{
    unsigned status = status_of(e);
    a->status = status;
    a->result = bkoauth_code_name(e->code);
    a->body = error_body(status, a->result, e->message);
    a->retry_after = status == 503;
    if (e->code == BKOAUTH_E_TOKEN_API && a->body != NULL && status == 502) {
        json_object_set_new(a->body, "ssm_http_status", json_integer(e->http_status));
        json_object_set_new(a->body, "ssm_code", json_integer((json_int_t)e->api_code));
    }
}

static const char *iso_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%s", "(invalid time)");
    return buf;
}

static void token_answer(agent_answer *a, const bkoauth_token *t)
{
    char exp[40], cre[40];
    int64_t now = (int64_t)time(NULL);
    a->status = 200;
    a->result = "OK";
    a->body =
        json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:s, s:b}", "access_token", t->access_token, "scope",
                  t->scope ? t->scope : "", "env_name", t->env_name ? t->env_name : "", "user_id",
                  t->user_id ? json_string(t->user_id) : json_null(), "expires",
                  iso_time(t->expires, exp, sizeof exp), "expires_at", (json_int_t)t->expires, "expires_in",
                  (json_int_t)(t->expires - now), "created_at", iso_time(t->created_at, cre, sizeof cre),
                  "has_refresh_token", t->refresh_token != NULL && t->refresh_token[0] != '\0');
}

static void finish(agent_answer *a, bkoauth_code rc, bkoauth_token *t, const bkoauth_error *e)
{
    if (rc == BKOAUTH_OK)
        token_answer(a, t);
    else
        library_error(a, e);
    bkoauth_token_free(t);
}

static void op_login(bkoauth_client *c, const agent_route *r, const char *body, size_t len, agent_answer *a)
{
    char msg[300];
    agent_login l;
    if (agent_login_parse(body, len, &l, msg, sizeof msg) != 0) {
        agent_error(a, 400, "BadRequest", "%s", msg);
        return;
    }
    bkoauth_request req;
    memset(&req, 0, sizeof req);
    req.username = r->user;
    req.cookie_header = l.cookie_header;
    req.query_string = l.query_string;
    req.remote_addr = l.client_ip != NULL ? l.client_ip : "127.0.0.1";
    bkoauth_token *t = NULL;
    bkoauth_error e = {0};
    bkoauth_code rc = bkoauth_get_access_token(c, &req, &t, &e);
    agent_login_clear(&l);
    finish(a, rc, t, &e);
}

/* POST /v1/users/{user}/refresh: the saved row renewed with its refresh_token; with the
 * caller's access_token, a newer saved token is the answer without a call. */
static void op_refresh(bkoauth_client *c, const agent_route *r, const char *body, size_t len, agent_answer *a)
{
    char msg[300];
    char *held = NULL;
    if (agent_refresh_parse(body, len, &held, msg, sizeof msg) != 0) {
        agent_error(a, 400, "BadRequest", "%s", msg);
        return;
    }
    bkoauth_error e = {0};
    bkoauth_token *saved = NULL, *t = NULL;
    bkoauth_code rc = store_get(client_store(c), bkoauth_client_env_name(c), r->user, &saved, &e);
    if (rc == BKOAUTH_E_TOKEN_NOT_EXIST)
        snprintf(e.message, sizeof e.message,
                 "no saved access_token for user %s in env %s: log the user in first "
                 "(POST /v1/users/{user}/login)",
                 r->user, bkoauth_client_env_name(c));
    if (rc == BKOAUTH_OK) {
        bkoauth_token old = *saved;
        if (held != NULL) old.access_token = held;
        rc = bkoauth_refresh_token(c, &old, &t, &e);
    }
    bkoauth_token_free(saved);
    if (held != NULL) {
        explicit_bzero(held, strlen(held));
        free(held);
    }
    finish(a, rc, t, &e);
}

void agent_run_op(const agent_route *r, const char *body, size_t len, agent_answer *a)
{
    agent_gen *g = agent_gen_acquire();
    if (g == NULL) {
        agent_error(a, 503, "ShuttingDown", "the agent is stopping; retry with the next one");
        return;
    }
    bkoauth_token *t = NULL;
    bkoauth_error e = {0};
    bkoauth_code rc;
    switch (r->op) {
    case OP_APP_TOKEN:
        rc = bkoauth_get_app_access_token(g->client, &t, &e);
        finish(a, rc, t, &e);
        break;
    case OP_USER_TOKEN:
        rc = bkoauth_get_access_token_by_user(g->client, r->user, &t, &e);
        finish(a, rc, t, &e);
        break;
    case OP_LOGIN:
        op_login(g->client, r, body, len, a);
        break;
    case OP_REFRESH:
        op_refresh(g->client, r, body, len, a);
        break;
    default:
        agent_error(a, 404, "NotFound", "no such operation");
        break;
    }
    agent_gen_release(g);
}

void agent_healthz(agent_answer *a, const char *transport)
{
    char env[16];
    a->status = 200;
    a->result = "OK";
    a->body = json_pack("{s:b, s:s, s:s, s:I, s:i, s:s}", "ok", 1, "version", bkoauth_version(), "env_name",
                        agent_env_name(env, sizeof env), "uptime_seconds", (json_int_t)agent_uptime(),
                        "reloads", (int)agent_reloads(), "transport", transport);
}

void agent_stats(agent_answer *a)
{
    bkoauth_stats s;
    agent_clients_stats(&s);
    json_t *client = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "cache_hits",
        (json_int_t)s.cache_hits, "store_reads", (json_int_t)s.store_reads, "renewals",
        (json_int_t)s.renewals, "ssm_calls", (json_int_t)s.ssm_calls, "ssm_fail_network",
        (json_int_t)s.ssm_fail_network, "ssm_fail_server", (json_int_t)s.ssm_fail_server, "ssm_fail_answer",
        (json_int_t)s.ssm_fail_answer, "ssm_fail_refused", (json_int_t)s.ssm_fail_refused, "ssm_fail_setup",
        (json_int_t)s.ssm_fail_setup, "served_during_outage", (json_int_t)s.served_during_outage,
        "store_reconnects", (json_int_t)s.store_reconnects, "grants_saved_late",
        (json_int_t)s.grants_saved_late, "grants_unsaved", (json_int_t)s.grants_unsaved);
    a->status = 200;
    a->result = "OK";
    a->body = json_pack("{s:o, s:o}", "client", client, "agent", agent_counters_json());
}
