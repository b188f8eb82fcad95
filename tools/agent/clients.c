/* SPDX-License-Identifier: MIT */
/* clients.c - the agent's library clients, one generation per set of settings. A reload
 * (SIGHUP) makes a new generation and swaps it in; requests hold the generation they started
 * with, and a retired one is freed by whoever releases it last. */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static agent_gen *current;
static bkoauth_stats retired_stats; /* the counters of freed clients, summed */

/* -c FILE, else $BKOAUTH_CONFIG, else AGENT_DEFAULT_CONFIG when present; the environment; -D. */
static bkoauth_config *load_settings(const agent_opts *o, bkoauth_error *e)
{
    bkoauth_config *config = bkoauth_config_new();
    if (config == NULL) {
        e->code = BKOAUTH_E_NOMEM;
        snprintf(e->message, sizeof e->message, "out of memory creating the settings");
        return NULL;
    }
    const char *file = o->config_file;
    if (file == NULL) {
        const char *env = getenv("BKOAUTH_CONFIG");
        if (env != NULL && env[0] != '\0')
            file = env;
        else if (access(AGENT_DEFAULT_CONFIG, F_OK) == 0)
            file = AGENT_DEFAULT_CONFIG;
    }
    if ((file != NULL && bkoauth_config_load_file(config, file, e) != BKOAUTH_OK) ||
        bkoauth_config_load_env(config, e) != BKOAUTH_OK ||
        (o->database_url != NULL &&
         bkoauth_config_set(config, "BKOAUTH_DATABASE_URL", o->database_url, e) != BKOAUTH_OK)) {
        bkoauth_config_free(config);
        return NULL;
    }
    return config;
}

/* The refresh-ahead client: the same settings, EXPIRES_SECONDS raised by ahead, few
 * connections. */
static bkoauth_client *ahead_client(bkoauth_config *config, int64_t expires, long ahead, bkoauth_error *e)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)(expires + ahead));
    if (bkoauth_config_set(config, "EXPIRES_SECONDS", num, e) != BKOAUTH_OK ||
        bkoauth_config_set(config, "BKOAUTH_DB_CONNECTIONS", "3", e) != BKOAUTH_OK)
        return NULL;
    return bkoauth_client_new(config, e);
}

static agent_gen *gen_new(const agent_opts *o, bkoauth_error *e)
{
    bkoauth_config *config = load_settings(o, e);
    if (config == NULL) return NULL;
    agent_gen *g = calloc(1, sizeof *g);
    const char *es = bkoauth_config_get(config, "EXPIRES_SECONDS");
    if (g != NULL) {
        g->expires_seconds = es != NULL ? strtoll(es, NULL, 10) : 86400;
        g->client = bkoauth_client_new(config, e);
    }
    if (g != NULL && g->client != NULL && o->ahead > 0)
        g->ahead = ahead_client(config, g->expires_seconds, o->ahead, e);
    bkoauth_config_free(config);
    if (g == NULL || g->client == NULL || (o->ahead > 0 && g->ahead == NULL)) {
        if (g == NULL) snprintf(e->message, sizeof e->message, "out of memory");
        if (g != NULL) bkoauth_client_free(g->client);
        free(g);
        return NULL;
    }
    return g;
}

static void stats_add(bkoauth_stats *sum, const bkoauth_client *c, int current_too)
{
    bkoauth_stats s;
    if (c == NULL || bkoauth_client_stats(c, &s, NULL) != BKOAUTH_OK) return;
    sum->cache_hits += s.cache_hits;
    sum->store_reads += s.store_reads;
    sum->renewals += s.renewals;
    sum->ssm_calls += s.ssm_calls;
    sum->ssm_fail_network += s.ssm_fail_network;
    sum->ssm_fail_server += s.ssm_fail_server;
    sum->ssm_fail_answer += s.ssm_fail_answer;
    sum->ssm_fail_refused += s.ssm_fail_refused;
    sum->ssm_fail_setup += s.ssm_fail_setup;
    sum->served_during_outage += s.served_during_outage;
    sum->store_reconnects += s.store_reconnects;
    sum->grants_saved_late += s.grants_saved_late;
    if (current_too) sum->grants_unsaved += s.grants_unsaved;
}

/* Frees g (no request holds it); its counters go into retired_stats. Called with lock held. */
static void gen_free_locked(agent_gen *g)
{
    stats_add(&retired_stats, g->client, 0);
    stats_add(&retired_stats, g->ahead, 0);
    bkoauth_client_free(g->ahead);
    bkoauth_client_free(g->client);
    free(g);
}

static void gen_retire_locked(agent_gen *g)
{
    g->retired = 1;
    if (g->refs == 0) gen_free_locked(g);
}

int agent_clients_start(const agent_opts *o)
{
    bkoauth_error e = {0};
    agent_gen *g = gen_new(o, &e);
    if (g == NULL) {
        agent_log(AGENT_ERROR, "cannot start: %s: %s", bkoauth_code_name(e.code), e.message);
        return -1;
    }
    pthread_mutex_lock(&lock);
    current = g;
    pthread_mutex_unlock(&lock);
    return 0;
}

int agent_clients_reload(const agent_opts *o)
{
    bkoauth_error e = {0};
    agent_gen *g = gen_new(o, &e);
    if (g == NULL) {
        agent_log(AGENT_ERROR, "reload refused, the settings in force stay: %s: %s",
                  bkoauth_code_name(e.code), e.message);
        agent_count_reload(0);
        return -1;
    }
    pthread_mutex_lock(&lock);
    agent_gen *old = current;
    current = g;
    if (old != NULL) gen_retire_locked(old);
    pthread_mutex_unlock(&lock);
    agent_count_reload(1);
    agent_log(AGENT_INFO, "settings reloaded (env %s)", bkoauth_client_env_name(g->client));
    return 0;
}

agent_gen *agent_gen_acquire(void)
{
    pthread_mutex_lock(&lock);
    agent_gen *g = current;
    if (g != NULL) g->refs++;
    pthread_mutex_unlock(&lock);
    return g;
}

void agent_gen_release(agent_gen *g)
{
    if (g == NULL) return;
    pthread_mutex_lock(&lock);
    if (--g->refs == 0 && g->retired) gen_free_locked(g);
    pthread_mutex_unlock(&lock);
}

void agent_clients_stop(void)
{
    pthread_mutex_lock(&lock);
    agent_gen *g = current;
    current = NULL;
    if (g != NULL) gen_retire_locked(g);
    pthread_mutex_unlock(&lock);
}

void agent_clients_stats(bkoauth_stats *out)
{
    pthread_mutex_lock(&lock);
    *out = retired_stats;
    if (current != NULL) {
        stats_add(out, current->client, 1);
        stats_add(out, current->ahead, 1);
    }
    pthread_mutex_unlock(&lock);
}

const char *agent_env_name(char *buf, size_t size)
{
    pthread_mutex_lock(&lock);
    snprintf(buf, size, "%s", current != NULL ? bkoauth_client_env_name(current->client) : "");
    pthread_mutex_unlock(&lock);
    return buf;
}
