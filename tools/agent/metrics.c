/* SPDX-License-Identifier: MIT */
/* metrics.c - the agent's counters: GET /stats (JSON) and GET /metrics (Prometheus text 0.0.4). */
#include "agent.h"

#include "ssm/ssm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The results a request can end with: "OK", the library's code names, the agent's own. */
static const char *const results[] = {
    "OK",           "TokenAPIError", "TokenNotExist",    "ConfigError",     "InvalidArgument",
    "StoreError",   "JWTError",      "OutOfMemory",      "BadRequest",      "Unauthorized",
    "Forbidden",    "NotFound",      "MethodNotAllowed", "PayloadTooLarge", "ShuttingDown",
    "InternalError"};
#define N_RESULTS (sizeof results / sizeof results[0])

static const char *const ssm_calls[] = {"app_token", "user_token", "refresh"};
static const char *const ahead_results[] = {"renewed", "picked_up", "failed"};
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

static struct {
    atomic_ulong requests[OP_COUNT][N_RESULTS];
    atomic_ulong refused[2];
    atomic_ulong ssm[3][2];
    atomic_ulong hist[N_BUCKETS + 1]; /* not cumulative; the last is over 10 s */
    atomic_ullong hist_sum_us;
    atomic_ulong ahead[3];
    atomic_ulong store_errors;
    atomic_ulong reloads, reload_failures;
    atomic_long in_flight;
    int64_t start;
    struct timespec start_mono;
} M;

static size_t index_of(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return n;
}

/* The library's observer of SSM calls (src/ssm/ssm.h). */
static void observe_ssm(const char *what, int ok, long long micros)
{
    size_t k = strcmp(what, "APP token") == 0 ? 0 : strcmp(what, "user token") == 0 ? 1 : 2;
    atomic_fetch_add(&M.ssm[k][ok ? 0 : 1], 1);
    double s = (double)micros / 1e6;
    size_t b = 0;
    while (b < N_BUCKETS && s > buckets[b])
        b++;
    atomic_fetch_add(&M.hist[b], 1);
    atomic_fetch_add(&M.hist_sum_us, (unsigned long long)(micros > 0 ? micros : 0));
}

void agent_metrics_init(void)
{
    M.start = (int64_t)time(NULL);
    clock_gettime(CLOCK_MONOTONIC, &M.start_mono);
    bkoauth__ssm_set_observer(observe_ssm);
}

int64_t agent_uptime(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - M.start_mono.tv_sec);
}

void agent_count_request(agent_op op, const char *result)
{
    size_t r = index_of(results, N_RESULTS, result);
    if (r == N_RESULTS) r = N_RESULTS - 1; /* InternalError */
    if (op < 0 || op >= OP_COUNT) op = OP_OTHER;
    atomic_fetch_add(&M.requests[op][r], 1);
    if (r == 5) atomic_fetch_add(&M.store_errors, 1);
}

void agent_count_refused(int tcp)
{
    atomic_fetch_add(&M.refused[tcp ? 1 : 0], 1);
}

void agent_count_ahead(const char *result)
{
    size_t i = index_of(ahead_results, 3, result);
    if (i < 3) atomic_fetch_add(&M.ahead[i], 1);
}

void agent_count_store_error(void)
{
    atomic_fetch_add(&M.store_errors, 1);
}

void agent_count_reload(int ok)
{
    atomic_fetch_add(ok ? &M.reloads : &M.reload_failures, 1);
}

void agent_in_flight_add(int delta)
{
    atomic_fetch_add(&M.in_flight, delta);
}

long agent_in_flight(void)
{
    return atomic_load(&M.in_flight);
}

unsigned agent_reloads(void)
{
    return (unsigned)atomic_load(&M.reloads);
}

static unsigned long requests_total(void)
{
    unsigned long n = 0;
    for (size_t o = 0; o < OP_COUNT; o++)
        for (size_t r = 0; r < N_RESULTS; r++)
            n += atomic_load(&M.requests[o][r]);
    return n;
}

json_t *agent_counters_json(void)
{
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)requests_total(),
        "refused", (json_int_t)(atomic_load(&M.refused[0]) + atomic_load(&M.refused[1])), "in_flight",
        (json_int_t)agent_in_flight(), "renewals_ahead", (json_int_t)atomic_load(&M.ahead[0]),
        "renewals_ahead_picked_up", (json_int_t)atomic_load(&M.ahead[1]), "renewals_ahead_failed",
        (json_int_t)atomic_load(&M.ahead[2]), "store_errors", (json_int_t)atomic_load(&M.store_errors),
        "reloads", (json_int_t)atomic_load(&M.reloads), "reload_failures",
        (json_int_t)atomic_load(&M.reload_failures), "uptime_seconds", (json_int_t)agent_uptime());
}

/* ---- the Prometheus text ------------------------------------------------------------------- */

typedef struct text {
    char *data;
    size_t len, cap;
    int oom;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->data != NULL && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 8192) + (size_t)n;
        char *d = realloc(t->data, cap);
        if (d == NULL) {
            t->oom = 1;
            return;
        }
        t->data = d;
        t->cap = cap;
    }
}

static void head(text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_requests(text *t)
{
    head(t, "bkoauth_agent_requests_total", "counter", "Requests answered, by operation and result.");
    for (size_t o = 0; o < OP_COUNT; o++)
        for (size_t r = 0; r < N_RESULTS; r++) {
            unsigned long n = atomic_load(&M.requests[o][r]);
            if (n > 0 || r == 0)
                put(t, "bkoauth_agent_requests_total{operation=\"%s\",result=\"%s\"} %lu\n",
                    agent_op_name((agent_op)o), results[r], n);
        }
    head(t, "bkoauth_agent_refused_total", "counter",
         "Requests refused: peer not allowed or bad bearer secret.");
    put(t, "bkoauth_agent_refused_total{transport=\"unix\"} %lu\n", atomic_load(&M.refused[0]));
    put(t, "bkoauth_agent_refused_total{transport=\"tcp\"} %lu\n", atomic_load(&M.refused[1]));
}

static void put_ssm(text *t)
{
    head(t, "bkoauth_agent_ssm_calls_total", "counter",
         "Calls to the SSM token service, by call and result.");
    for (size_t k = 0; k < 3; k++)
        for (size_t ok = 0; ok < 2; ok++)
            put(t, "bkoauth_agent_ssm_calls_total{call=\"%s\",result=\"%s\"} %lu\n", ssm_calls[k],
                ok == 0 ? "ok" : "failed", atomic_load(&M.ssm[k][ok]));
    head(t, "bkoauth_agent_ssm_call_duration_seconds", "histogram", "Time of the SSM calls.");
    unsigned long cum = 0;
    for (size_t b = 0; b <= N_BUCKETS; b++) {
        cum += atomic_load(&M.hist[b]);
        if (b < N_BUCKETS)
            put(t, "bkoauth_agent_ssm_call_duration_seconds_bucket{le=\"%g\"} %lu\n", buckets[b], cum);
        else
            put(t, "bkoauth_agent_ssm_call_duration_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
    }
    put(t, "bkoauth_agent_ssm_call_duration_seconds_sum %.6f\n", (double)atomic_load(&M.hist_sum_us) / 1e6);
    put(t, "bkoauth_agent_ssm_call_duration_seconds_count %lu\n", cum);
}

static void put_counter(text *t, const char *name, const char *help, unsigned long long v)
{
    head(t, name, "counter", help);
    put(t, "%s %llu\n", name, v);
}

static void put_agent(text *t, const bkoauth_stats *s)
{
    head(t, "bkoauth_agent_renewals_ahead_total", "counter", "Refresh-ahead renewals, by result.");
    for (size_t i = 0; i < 3; i++)
        put(t, "bkoauth_agent_renewals_ahead_total{result=\"%s\"} %lu\n", ahead_results[i],
            atomic_load(&M.ahead[i]));
    put_counter(t, "bkoauth_agent_served_stale_total",
                "Valid saved tokens served while the SSM service failed or renewals backed off.",
                (unsigned long long)s->served_during_outage);
    put_counter(t, "bkoauth_agent_store_errors_total",
                "Requests and refresh-ahead steps ended in StoreError.", atomic_load(&M.store_errors));
    put_counter(t, "bkoauth_agent_store_reconnects_total", "Broken database connections replaced.",
                (unsigned long long)s->store_reconnects);
    put_counter(t, "bkoauth_agent_cache_hits_total", "Tokens served from the process cache.",
                (unsigned long long)s->cache_hits);
    put_counter(t, "bkoauth_agent_store_reads_total", "Lookups that read the token store.",
                (unsigned long long)s->store_reads);
    put_counter(t, "bkoauth_agent_renewals_total", "Grants obtained from the SSM service.",
                (unsigned long long)s->renewals);
    head(t, "bkoauth_agent_in_flight", "gauge", "Requests being answered.");
    put(t, "bkoauth_agent_in_flight %ld\n", agent_in_flight());
    put_counter(t, "bkoauth_agent_reloads_total", "Settings reloads that took effect.",
                atomic_load(&M.reloads));
    put_counter(t, "bkoauth_agent_reload_failures_total", "Settings reloads refused (the old settings stay).",
                atomic_load(&M.reload_failures));
    head(t, "bkoauth_agent_start_time_seconds", "gauge", "Unix time the agent started.");
    put(t, "bkoauth_agent_start_time_seconds %lld\n", (long long)M.start);
}

char *agent_metrics_text(const bkoauth_stats *s)
{
    text t = {0};
    put_requests(&t);
    put_ssm(&t);
    put_agent(&t, s);
    if (t.oom) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
