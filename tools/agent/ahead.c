/* SPDX-License-Identifier: MIT */
/* ahead.c - refresh ahead: a thread that renews every saved token of the agent's env before it
 * is due (docs/AGENT.md, "Refresh ahead"), through the library's renewal path (its locks, its
 * back-off), so that callers never wait for the SSM service. */
#include "agent.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static pthread_t thread;
static int started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int stop;
static long ahead_s, spread_s, interval_s;

int64_t agent_ahead_offset(const char *user_id, int64_t spread)
{
    if (spread <= 0) return 0;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)(user_id ? user_id : ""); *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    if (user_id == NULL) h ^= 0x9e3779b97f4a7c15ULL;
    return (int64_t)(h % (uint64_t)spread);
}

static int stopping(void)
{
    pthread_mutex_lock(&lock);
    int s = stop;
    pthread_mutex_unlock(&lock);
    return s;
}

/* Renews one due token with the ahead client and says how it went. */
static void renew_one(agent_gen *g, const bkoauth_token *t)
{
    bkoauth_stats before, after;
    bkoauth_client_stats(g->ahead, &before, NULL);
    bkoauth_token *fresh = NULL;
    bkoauth_error e = {0};
    bkoauth_code rc = t->user_id == NULL ? bkoauth_get_app_access_token(g->ahead, &fresh, &e)
                                         : bkoauth_get_access_token_by_user(g->ahead, t->user_id, &fresh, &e);
    bkoauth_client_stats(g->ahead, &after, NULL);
    const char *who = t->user_id != NULL ? t->user_id : "(APP)";
    if (rc != BKOAUTH_OK) {
        if (rc == BKOAUTH_E_STORE) agent_count_store_error();
        agent_count_ahead("failed");
        agent_log(AGENT_WARNING, "refresh ahead of the token of %s failed: %s: %s", who,
                  bkoauth_code_name(rc), e.message);
    } else if (after.renewals > before.renewals) {
        agent_count_ahead("renewed");
        agent_log(AGENT_INFO, "refresh ahead: renewed the token of %s (%lld s were left)", who,
                  (long long)(t->expires - (int64_t)time(NULL)));
    } else if (strcmp(fresh->access_token, t->access_token) != 0) {
        agent_count_ahead("picked_up");
        agent_log(AGENT_INFO, "refresh ahead: the token of %s was renewed elsewhere; picked up", who);
    } else {
        agent_count_ahead("failed");
        agent_log(AGENT_WARNING,
                  "refresh ahead of the token of %s did not renew it (the SSM service fails or "
                  "renewals back off); the saved token is still served",
                  who);
    }
    bkoauth_token_free(fresh);
}

/* 1 when t is due now: within the window, past its spread offset. */
static int due(const agent_gen *g, const bkoauth_token *t, int64_t now)
{
    int64_t window = g->expires_seconds + ahead_s;
    int64_t start = t->expires - window;
    return now >= start + agent_ahead_offset(t->user_id, spread_s) && t->expires > now;
}

/* One look at the saved tokens. */
static void pass(agent_gen *g)
{
    bkoauth_token **all = NULL;
    size_t n = 0;
    bkoauth_error e = {0};
    if (bkoauth_list_tokens(g->client, &all, &n, &e) != BKOAUTH_OK) {
        if (e.code == BKOAUTH_E_STORE) agent_count_store_error();
        agent_log(AGENT_WARNING, "refresh ahead cannot list the saved tokens: %s: %s",
                  bkoauth_code_name(e.code), e.message);
        return;
    }
    const char *env = bkoauth_client_env_name(g->client);
    for (size_t i = 0; i < n && !stopping(); i++) {
        const bkoauth_token *t = all[i];
        if (t->env_name == NULL || strcmp(t->env_name, env) != 0) continue;
        if (t->user_id != NULL && (t->refresh_token == NULL || t->refresh_token[0] == '\0')) continue;
        if (due(g, t, (int64_t)time(NULL))) renew_one(g, t);
    }
    bkoauth_tokens_free(all, n);
}

static void *run(void *arg)
{
    (void)arg;
    for (;;) {
        agent_gen *g = agent_gen_acquire();
        if (g != NULL && g->ahead != NULL) pass(g);
        agent_gen_release(g);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += interval_s;
        pthread_mutex_lock(&lock);
        while (!stop && pthread_cond_timedwait(&wake, &lock, &until) != ETIMEDOUT) {
        }
        int s = stop;
        pthread_mutex_unlock(&lock);
        if (s) break;
    }
    return NULL;
}

int agent_ahead_start(const agent_opts *o)
{
    if (o->ahead <= 0) return 0;
    ahead_s = o->ahead;
    spread_s = o->spread;
    interval_s = o->interval;
    if (pthread_create(&thread, NULL, run, NULL) != 0) {
        agent_log(AGENT_ERROR, "cannot start the refresh-ahead thread");
        return -1;
    }
    started = 1;
    return 0;
}

void agent_ahead_stop(void)
{
    if (!started) return;
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    started = 0;
}
