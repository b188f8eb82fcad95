/* SPDX-License-Identifier: MIT */
/* src/core/ - the client and its four operations: what a caller of the public API meets first.
 *   client.c   the client (made from settings, closed) and the rules of the four operations:
 *              the APP token, a user's token, refresh, the login hook; counters and after_fork
 *   cache.c    per-thread copies of saved tokens with process-wide generations (cache.h)
 *   request.c  what an operation takes from an incoming request: credentials, the uin rule, the
 *              client address
 * It calls down into settings/ (the settings checked), store/ (the saved tokens and the renewal
 * section), ssm/ (the service) and base/; nothing below calls back into it. */
/* client.c - the rules of the four operations of the seed and the login hook.
 *
 * Policy only: the saved token is looked up in the store (store/store.h), the SSM service is
 * called through ssm/ssm.h. No SQL, no HTTP, no JSON here.
 *
 * Renewal protocol (one renewal per expiry): a caller that finds a token missing or expiring
 * calls store_renew_if(), which locks the token's key against the other threads, processes
 * and hosts (no database lock: see store.h) and hands the row as it is *now* to a renew
 * function. That function renews only when the row still needs it; a caller that waited finds
 * the row renewed and returns it. A grant the store could not save is still the caller's: the
 * store keeps it in the process and saves it later. While the service fails, a saved token that
 * has not expired is served, and the key's renewals back off (keys.h). */
#include "cache.h"
#include "internal.h"
#include "ssm/ssm.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cache hits are counted in stripes, one cache line each; a thread takes its own stripe the
 * first time (up to HIT_STRIPES threads never share one), so the hot path writes no line another
 * thread writes, and needs no locked instruction: the owner alone adds (a plain load and store);
 * threads past HIT_STRIPES share stripes and may then lose a count. */
#define HIT_STRIPES 64
typedef struct hit_stripe {
    _Alignas(64) atomic_ulong n;
} hit_stripe;

struct bkoauth_client {
    bk_settings s;
    bk_logger logger;
    ssm_client *ssm;
    store *st;
    cache *cache;            /* NULL when BKOAUTH_CACHE_SECONDS is 0 */
    keytab *backoff;         /* per key: renewal failures and the back-off they impose */
    atomic_ulong forks_seen; /* the fork count its connections belong to (client_after_fork) */
    atomic_ulong store_reads, renewals, served_meanwhile;
    hit_stripe hits[HIT_STRIPES];
};

static atomic_uint next_stripe;
static _Thread_local int my_stripe = -1;

static void stats_cache_hit(bkoauth_client *c)
{
    if (my_stripe < 0) my_stripe = (int)(atomic_fetch_add(&next_stripe, 1) % HIT_STRIPES);
    atomic_ulong *n = &c->hits[my_stripe].n;
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* In a child after fork(): what the client inherited (connections, locks, handles) is the
 * parent's; the first call of the child drops it, without closing, and makes its own. A fork is
 * seen through a process-wide counter that a pthread_atfork child handler bumps, so the check on
 * every call is one read of a global, not a system call. */
static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong forks;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&forks, 1);
    pthread_mutex_init(&fork_mu, NULL); /* a parent thread may have held it at the fork */
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static void client_after_fork(bkoauth_client *c)
{
    unsigned long now = atomic_load_explicit(&forks, memory_order_relaxed);
    if (atomic_load_explicit(&c->forks_seen, memory_order_relaxed) == now) return;
    pthread_mutex_lock(&fork_mu);
    if (atomic_load(&c->forks_seen) != now) {
        store_after_fork(c->st);
        ssm_after_fork(c->ssm);
        keytab *fresh = keytab_new(); /* the parent's may hold locks of threads gone here */
        if (fresh != NULL) c->backoff = fresh;
        atomic_store(&c->forks_seen, now);
    }
    pthread_mutex_unlock(&fork_mu);
}

/* ---- construction ----------------------------------------------------------------------- */

bkoauth_client *bkoauth_client_new(const bkoauth_config *config, bkoauth_error *err)
{
    if (config == NULL) {
        err_set(err, BKOAUTH_E_INVALID,
                "bkoauth_client_new: config is NULL; create one with bkoauth_config_new()");
        return NULL;
    }
    bkoauth_client *c = bkoauth__calloc(1, sizeof *c);
    if (c == NULL) {
        err_nomem(err);
        return NULL;
    }
    pthread_once(&atfork_once, register_atfork);
    atomic_store(&c->forks_seen, atomic_load(&forks));
    if ((c->backoff = keytab_new()) == NULL) {
        err_nomem(err);
        bkoauth_client_free(c);
        return NULL;
    }
    if (settings_from_config(config, &c->s, err) != BKOAUTH_OK) {
        bkoauth_client_free(c);
        return NULL;
    }
    c->logger.fn = log_stderr;
    c->logger.ctx = NULL;
    c->logger.level = c->s.log_level;
    /* without OAUTH_API_URL the store and the JWT check work; a call to the service says so */
    if (c->s.api_url == NULL)
        log_write(&c->logger, BKOAUTH_LOG_INFO,
                  "OAUTH_API_URL is not set: saved tokens can be read, but no token can be fetched or "
                  "refreshed until it is");
    c->ssm = ssm_new(&c->s, &c->logger, err);
    if (c->ssm == NULL) {
        bkoauth_client_free(c);
        return NULL;
    }
    c->st = store_open(&c->s, &c->logger, err);
    if (c->st == NULL) {
        bkoauth_client_free(c);
        return NULL;
    }
    if (c->s.cache_seconds > 0 && (c->cache = cache_new(c->s.cache_seconds)) == NULL) {
        err_nomem(err);
        bkoauth_client_free(c);
        return NULL;
    }
    log_write(&c->logger, BKOAUTH_LOG_DEBUG, "client ready: env %s, %s protocol, store %s", c->s.env_name,
              ssm_protocol_name(c->ssm), store_kind_name(c->st));
    err_ok(err);
    return c;
}

void bkoauth_client_free(bkoauth_client *client)
{
    if (client == NULL) return;
    cache_free(client->cache);
    keytab_free(client->backoff);
    store_close(client->st);
    ssm_free(client->ssm);
    settings_clear(&client->s);
    bkoauth__free(client);
}

void bkoauth_client_set_logger(bkoauth_client *client, bkoauth_log_fn fn, void *ctx)
{
    if (client == NULL) return;
    client->logger.fn = fn;
    client->logger.ctx = ctx;
    ssm_announce(client->ssm); /* what the default logger was told at creation */
}

bkoauth_code bkoauth_client_stats(const bkoauth_client *client, bkoauth_stats *out, bkoauth_error *err)
{
    if (client == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_client_stats: client and out must not be NULL");
    bkoauth_client *c = (bkoauth_client *)client; /* counters are atomics */
    memset(out, 0, sizeof *out);
    for (int i = 0; i < HIT_STRIPES; i++)
        out->cache_hits += atomic_load_explicit(&c->hits[i].n, memory_order_relaxed);
    out->store_reads = atomic_load(&c->store_reads);
    out->renewals = atomic_load(&c->renewals);
    out->served_during_outage = atomic_load(&c->served_meanwhile);
    uint64_t fails[SSM_FAIL_KINDS];
    ssm_counts(c->ssm, &out->ssm_calls, fails);
    out->ssm_fail_network = fails[SSM_FAIL_NETWORK];
    out->ssm_fail_server = fails[SSM_FAIL_SERVER];
    out->ssm_fail_answer = fails[SSM_FAIL_ANSWER];
    out->ssm_fail_refused = fails[SSM_FAIL_REFUSED];
    out->ssm_fail_setup = fails[SSM_FAIL_SETUP];
    store_counts(c->st, &out->store_reconnects, &out->grants_saved_late, &out->grants_unsaved);
    return err_ok(err);
}

bkoauth_code bkoauth_check_service(bkoauth_client *client, long *http_status, bkoauth_error *err)
{
    long status = 0;
    if (http_status != NULL) *http_status = 0;
    if (client == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_check_service: client must not be NULL");
    client_after_fork(client);
    bkoauth_code rc = ssm_ping(client->ssm, &status, err);
    if (http_status != NULL) *http_status = status;
    return rc;
}

const char *bkoauth_client_env_name(const bkoauth_client *client)
{
    return client ? client->s.env_name : NULL;
}

int bkoauth_token_expires_soon(const bkoauth_client *client, const bkoauth_token *token)
{
    int64_t window = client ? client->s.expires_seconds : 86400;
    return token_expiring(token, window, bk_now());
}

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *who(const char *user_id)
{
    return bk_empty(user_id) ? "the APP" : user_id;
}

/* A token from a grant, for the row (env_name, user_id); created_at kept from the row. */
static bkoauth_code token_from_grant(const ssm_grant *g, const char *env_name, const char *user_id,
                                     const bkoauth_token *current, bkoauth_token **fresh, bkoauth_error *err)
{
    int64_t now = bk_now();
    *fresh = token_make(g->access_token, g->refresh_token, g->scope, env_name, user_id, now + g->expires_in,
                        current ? current->created_at : now);
    return *fresh ? BKOAUTH_OK : err_nomem(err);
}

static bkoauth_code check_user_id(const char *user_id, bkoauth_error *err)
{
    if (bk_empty(user_id))
        return err_set(err, BKOAUTH_E_INVALID, "user_id is empty: give the user's id or name");
    return store_check_user(user_id, err);
}

/* The longest client address (X-Forwarded-For, else REMOTE_ADDR) sent as bk_client_ip. */
#define CLIENT_IP_MAX 1024

/* What a user-token call needs from the request: at least one login credential of
 * OAUTH_COOKIES_PARAMS (a call without one can only be refused, so it is not made) and a
 * client address of at most CLIENT_IP_MAX bytes. */
static bkoauth_code check_login(const bk_settings *s, const bkoauth_request *req, const bk_kvlist *creds,
                                bkoauth_error *err)
{
    int found = 0;
    for (size_t i = 0; i < creds->count; i++)
        found |= !bk_empty(creds->items[i].value);
    if (!found && s->cookies_params.count == 0)
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "no login credential in the request: OAUTH_COOKIES_PARAMS names no cookie to take it "
            "from; set it, e.g. OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'} (the SSM service was "
            "not called)");
    if (!found) {
        char names[300];
        size_t at = 0;
        names[0] = '\0';
        for (size_t i = 0; i < s->cookies_params.count && at < sizeof names; i++) {
            int n = snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "",
                             s->cookies_params.items[i].value);
            if (n > 0) at += (size_t)n;
        }
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "no login credential in the request: %s %s missing (not in the Cookie header, the "
                       "session or the query string); the SSM service was not called",
                       s->cookies_params.count == 1 ? "cookie" : "cookies", names);
    }
    size_t len = strlen(request_client_ip(req));
    if (len > CLIENT_IP_MAX)
        return err_set(err, BKOAUTH_E_INVALID,
                       "the request's %s is %zu bytes long; at most %d are accepted (it is sent to the SSM "
                       "service as bk_client_ip)",
                       bk_empty(req->x_forwarded_for) ? "client address" : "X-Forwarded-For", len,
                       CLIENT_IP_MAX);
    return BKOAUTH_OK;
}

/* ---- renew functions (run with the key locked) -------------------------------------------- */

/* How long callers that hold a still-valid token wait for another caller's renewal call of the
 * same key before they take their own token (the service may hang until BKOAUTH_TIMEOUT_MS). */
#define RENEW_PATIENCE_MS 1000

typedef struct renew_ctx {
    bkoauth_client *c;
    const char *env_name;
    const char *user_id;          /* NULL: APP */
    const bk_kvlist *credentials; /* user login */
    const char *client_ip;        /* user login */
    const bkoauth_token *old;     /* refresh: the token the caller holds */
    int explicit_refresh;         /* bkoauth_refresh_token(): tries even while backing off */
    int called;                   /* set when the SSM was called */
    int outage;                   /* the call failed as an outage (network, server, answer) */
    int64_t next_try;             /* after an outage: seconds until the next attempt */
} renew_ctx;

/* 1 when renewals of r's key wait for a back-off now: a caller holding a token that has not
 * expired takes it instead of calling (one attempt per key per back-off period). A caller with
 * no such token always tries, as an expired token is never served. */
static int backing_off(const renew_ctx *r)
{
    return !r->explicit_refresh &&
           key_backoff_until(r->c->backoff, r->env_name, r->user_id) > bk_monotonic_ms();
}

/* While the key backs off, a token that has not expired will do. */
static int will_do_meanwhile(const renew_ctx *r, const bkoauth_token *t)
{
    return t->expires > bk_now() && backing_off(r);
}

/* A row renewed meanwhile needs no renewal (the cross-process lock is then not taken). */
static int fetch_ok(void *ctx, const bkoauth_token *current)
{
    renew_ctx *r = ctx;
    return !token_expiring(current, r->c->s.expires_seconds, bk_now()) || will_do_meanwhile(r, current);
}

static int refresh_ok(void *ctx, const bkoauth_token *current)
{
    renew_ctx *r = ctx;
    return (!bk_streq(current->access_token, r->old->access_token) &&
            !token_expiring(current, r->c->s.expires_seconds, bk_now())) ||
           will_do_meanwhile(r, current);
}

/* After a call: a success ends the key's back-off, an outage extends it (still under the key's
 * lock, so the next waiter sees it). */
static void after_call(renew_ctx *r, bkoauth_code rc)
{
    bkoauth_client *c = r->c;
    if (rc == BKOAUTH_OK) {
        key_backoff_clear(c->backoff, r->env_name, r->user_id);
        atomic_fetch_add(&c->renewals, 1);
    } else if (rc == BKOAUTH_E_TOKEN_API && ssm_failure_is_outage(ssm_last_failure())) {
        r->outage = 1;
        if (c->s.backoff_seconds > 0)
            r->next_try = key_backoff_failed(c->backoff, r->env_name, r->user_id, bk_monotonic_ms(),
                                             c->s.backoff_seconds, c->s.backoff_max_seconds);
    }
}

static bkoauth_code renew_fetch(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                bkoauth_error *err)
{
    renew_ctx *r = ctx;
    bkoauth_client *c = r->c;
    if (current != NULL && !token_expiring(current, c->s.expires_seconds, bk_now()))
        return BKOAUTH_OK; /* renewed meanwhile by another thread or process */
    bkoauth_code rc;
    ssm_grant g;
    r->called = 1;
    if (r->user_id == NULL)
        rc = ssm_fetch_app(c->ssm, c->s.env_name, &g, err);
    else
        rc = ssm_fetch_user(c->ssm, c->s.env_name, r->credentials, r->client_ip, &g, err);
    after_call(r, rc);
    if (rc != BKOAUTH_OK) return rc;
    rc = token_from_grant(&g, c->s.env_name, r->user_id, current, fresh, err);
    ssm_grant_clear(&g);
    return rc;
}

static bkoauth_code renew_refresh(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                  bkoauth_error *err)
{
    renew_ctx *r = ctx;
    bkoauth_client *c = r->c;
    if (current != NULL && !bk_streq(current->access_token, r->old->access_token) &&
        !token_expiring(current, c->s.expires_seconds, bk_now()))
        return BKOAUTH_OK; /* someone else renewed this row: the newer saved token wins */
    /* the row's refresh_token is the newest one; the caller's is used when the row is gone */
    const char *rt = (current != NULL && !bk_empty(current->refresh_token)) ? current->refresh_token
                                                                            : r->old->refresh_token;
    if (bk_empty(rt))
        return err_set(err, BKOAUTH_E_TOKEN_NOT_EXIST,
                       "the token of %s has no refresh_token, so it cannot be refreshed; get a new one with "
                       "bkoauth_get_access_token() (at the user's next login)",
                       who(r->user_id));
    ssm_grant g;
    r->called = 1;
    bkoauth_code rc = ssm_refresh(c->ssm, r->old->env_name, rt, &g, err);
    after_call(r, rc);
    if (rc != BKOAUTH_OK) return rc;
    rc = token_from_grant(&g, r->old->env_name, r->user_id, current, fresh, err);
    ssm_grant_clear(&g);
    return rc;
}

/* Renews the row of r's key with the key locked (store_renew_if). A grant that could not be
 * saved is returned all the same: the store keeps it and saves it later. With patience_ms, *out
 * may be NULL on success: another caller is renewing, take your own token. */
static bkoauth_code renew_row(bkoauth_client *c, renew_ctx *r, store_current_ok_fn ok, store_renew_fn fn,
                              int64_t patience_ms, bkoauth_token **out, bkoauth_error *err)
{
    bkoauth_code rc = store_renew_if(c->st, r->env_name, r->user_id, ok, fn, r, patience_ms, out, err);
    bkoauth__memory_trim_maybe(c->s.memory_trim_seconds);        /* the key's lock is released */
    if (rc == BKOAUTH_E_STORE && *out != NULL) rc = err_ok(err); /* logged by the store */
    if (rc == BKOAUTH_OK && *out != NULL && r->called) {
        /* every thread's cached copy is stale from now on; this thread keeps the new token */
        cache_invalidate(c->cache, r->env_name, r->user_id);
        cache_put(c->cache, *out, cache_generation(c->cache, r->env_name, r->user_id),
                  bk_monotonic_coarse_ms());
        log_write(&c->logger, BKOAUTH_LOG_INFO, "renewed the token of %s (env %s)", who(r->user_id),
                  r->env_name);
    }
    return rc;
}

/* The renewal of r's key, where the caller holds have (the saved token, owned, may be NULL):
 * when have has not expired and the renewal cannot be done now - the service fails (an outage),
 * the key backs off after such a failure, or another caller's renewal call has been running for
 * longer than RENEW_PATIENCE_MS - have is the answer. An expired token is never returned. */
static bkoauth_code renew_or_serve(bkoauth_client *c, renew_ctx *r, store_current_ok_fn ok, store_renew_fn fn,
                                   bkoauth_token *have, bkoauth_token **out, bkoauth_error *err)
{
    *out = NULL;
    int valid = have != NULL && have->expires > bk_now() && !r->explicit_refresh;
    bkoauth_token *t = NULL;
    bkoauth_code rc = renew_row(c, r, ok, fn, valid ? RENEW_PATIENCE_MS : 0, &t, err);
    if (rc == BKOAUTH_OK && t != NULL) {
        if (token_expiring(t, c->s.expires_seconds, bk_now()))
            atomic_fetch_add(&c->served_meanwhile, 1); /* a row accepted while backing off */
        bkoauth_token_free(have);
        *out = t;
        return BKOAUTH_OK;
    }
    if (valid && (rc == BKOAUTH_OK || (rc == BKOAUTH_E_TOKEN_API && r->outage))) {
        if (r->outage)
            log_write(&c->logger, BKOAUTH_LOG_WARNING,
                      "serving the saved token of %s (env %s), still valid for %lld s, while the SSM service "
                      "fails; the next renewal attempt is in %lld s",
                      who(r->user_id), r->env_name, (long long)(have->expires - bk_now()),
                      (long long)r->next_try);
        atomic_fetch_add(&c->served_meanwhile, 1);
        *out = have;
        return err_ok(err);
    }
    bkoauth_token_free(have);
    if (rc == BKOAUTH_OK) /* cannot happen without patience; never report success without a token */
        return err_set(err, BKOAUTH_E_TOKEN_API, "the renewal of the token of %s gave no token; retry",
                       who(r->user_id));
    return rc;
}

/* The hot path: a fresh copy of the saved token of (the client's env, user_id) from this
 * thread's cache, or NULL. Only a key that passed every check was ever cached, so the caller
 * checks nothing before it. */
static bkoauth_token *cached(bkoauth_client *c, const char *user_id)
{
    bkoauth_token *t =
        cache_get(c->cache, c->s.env_name, user_id, c->s.expires_seconds, bk_now(), bk_monotonic_coarse_ms());
    if (t != NULL) stats_cache_hit(c);
    return t;
}

/* The saved token of (the client's env, user_id) read from the store (and then cached when
 * fresh), after a cache miss. It may be expiring. None: BKOAUTH_E_TOKEN_NOT_EXIST. */
static bkoauth_code stored(bkoauth_client *c, const char *user_id, bkoauth_token **out, bkoauth_error *err)
{
    /* the entry's age counts from before the read, like its generation */
    int64_t read_ms = bk_monotonic_coarse_ms();
    uint64_t gen = cache_generation(c->cache, c->s.env_name, user_id);
    atomic_fetch_add(&c->store_reads, 1);
    bkoauth_code rc = store_get(c->st, c->s.env_name, user_id, out, err);
    bkoauth__memory_trim_maybe(c->s.memory_trim_seconds); /* no lock or connection held */
    if (rc == BKOAUTH_OK && !token_expiring(*out, c->s.expires_seconds, bk_now()))
        cache_put(c->cache, *out, gen, read_ms);
    if (rc == BKOAUTH_E_STORE) {
        /* The store cannot be read (a database restart, a network cut): the copy read last (this
         * thread's, or the table the threads share) is served while it does not expire soon and this process
         * has not renewed the key since. Nothing newer can be read while the store cannot be; the call that
         * could succeed does. */
        bkoauth_token *last =
            cache_get_last(c->cache, c->s.env_name, user_id, c->s.expires_seconds, bk_now());
        if (last != NULL) {
            log_write(&c->logger, BKOAUTH_LOG_DEBUG,
                      "cannot read the saved token of %s (%s); serving the copy read last", who(user_id),
                      err ? err->message : "store error");
            atomic_fetch_add(&c->served_meanwhile, 1);
            *out = last;
            return err_ok(err);
        }
    }
    return rc;
}

/* The saved token for an operation that can fetch a new one (APP, login): NULL when there is
 * none, or when the store cannot be read (a new token is then fetched and kept in the process
 * until the store takes it). */
static bkoauth_code saved_or_none(bkoauth_client *c, const char *user_id, bkoauth_token **out,
                                  bkoauth_error *err)
{
    bkoauth_code rc = stored(c, user_id, out, err);
    if (rc == BKOAUTH_E_TOKEN_NOT_EXIST) return err_ok(err);
    if (rc == BKOAUTH_E_STORE) {
        log_write(&c->logger, BKOAUTH_LOG_WARNING,
                  "cannot read the saved token of %s (%s); getting a new one", who(user_id),
                  err ? err->message : "store error");
        *out = NULL;
        return err_ok(err);
    }
    return rc;
}

static bkoauth_code finish(bkoauth_code rc, bkoauth_token **out, bkoauth_token *t, bkoauth_error *err)
{
    if (rc != BKOAUTH_OK) {
        bkoauth_token_free(t);
        *out = NULL;
        return rc;
    }
    *out = t;
    return err_ok(err);
}

/* ---- the four operations ------------------------------------------------------------------ */

bkoauth_code bkoauth_get_app_access_token(bkoauth_client *client, bkoauth_token **out, bkoauth_error *err)
{
    if (out != NULL) *out = NULL;
    if (client == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID,
                       "bkoauth_get_app_access_token: client and out must not be NULL");
    if ((*out = cached(client, NULL)) != NULL) return err_ok(err);
    client_after_fork(client);
    bkoauth_token *t = NULL;
    bkoauth_code rc = saved_or_none(client, NULL, &t, err);
    if (rc == BKOAUTH_OK && (t == NULL || token_expiring(t, client->s.expires_seconds, bk_now()))) {
        renew_ctx r = {.c = client, .env_name = client->s.env_name, .user_id = NULL};
        bkoauth_token *have = t;
        t = NULL;
        rc = renew_or_serve(client, &r, fetch_ok, renew_fetch, have, &t, err);
        if (rc != BKOAUTH_OK) err_prefix(err, "get_app_access_token");
    }
    return finish(rc, out, t, err);
}

bkoauth_code bkoauth_get_access_token(bkoauth_client *client, const bkoauth_request *req, bkoauth_token **out,
                                      bkoauth_error *err)
{
    if (out != NULL) *out = NULL;
    if (client == NULL || req == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID,
                       "bkoauth_get_access_token: client, req and out must not be NULL");
    if (bk_empty(req->username))
        return err_set(err, BKOAUTH_E_INVALID,
                       "get_access_token: the request is anonymous (no logged-in user); a user token needs a "
                       "logged-in user - use bkoauth_get_app_access_token() for the APP token");
    if ((*out = cached(client, req->username)) != NULL) return err_ok(err);
    bkoauth_code rc = check_user_id(req->username, err);
    if (rc != BKOAUTH_OK) return rc;
    client_after_fork(client);
    bkoauth_token *t = NULL;
    rc = saved_or_none(client, req->username, &t, err);
    if (rc == BKOAUTH_OK && (t == NULL || token_expiring(t, client->s.expires_seconds, bk_now()))) {
        bk_kvlist creds = {0};
        bkoauth_token *have = t;
        t = NULL;
        rc = request_credentials(&client->s, req, &creds, err);
        if (rc == BKOAUTH_OK) rc = check_login(&client->s, req, &creds, err);
        if (rc == BKOAUTH_OK) {
            renew_ctx r = {.c = client,
                           .env_name = client->s.env_name,
                           .user_id = req->username,
                           .credentials = &creds,
                           .client_ip = request_client_ip(req)};
            rc = renew_or_serve(client, &r, fetch_ok, renew_fetch, have, &t, err);
        } else {
            bkoauth_token_free(have);
        }
        kvlist_clear(&creds);
        if (rc != BKOAUTH_OK) err_prefix(err, "get_access_token for user %s", req->username);
    }
    return finish(rc, out, t, err);
}

/* refresh_token with a known row key; on a refused refresh, a token saved meanwhile wins. have
 * (owned, may be NULL) is served during an outage unless the refresh is explicit. */
static bkoauth_code refresh_row(bkoauth_client *c, const bkoauth_token *token, int explicit_refresh,
                                bkoauth_token *have, bkoauth_token **out, bkoauth_error *err)
{
    renew_ctx r = {.c = c,
                   .env_name = token->env_name,
                   .user_id = token->user_id,
                   .old = token,
                   .explicit_refresh = explicit_refresh};
    bkoauth_token *t = NULL;
    bkoauth_code rc = renew_or_serve(c, &r, refresh_ok, renew_refresh, have, &t, err);
    if (rc == BKOAUTH_E_TOKEN_API) {
        /* A refresh_token is single-use: if a writer outside our locks (another library or app on
         * the same table) renewed the row first, the saved token is the answer. */
        bkoauth_token *now = NULL;
        if (store_get(c->st, token->env_name, token->user_id, &now, NULL) == BKOAUTH_OK &&
            !bk_streq(now->access_token, token->access_token) &&
            !token_expiring(now, c->s.expires_seconds, bk_now())) {
            log_write(&c->logger, BKOAUTH_LOG_INFO,
                      "refresh of %s's token was refused, but a newer token was saved meanwhile; using it",
                      who(token->user_id));
            return finish(BKOAUTH_OK, out, now, err);
        }
        bkoauth_token_free(now);
    }
    if (rc != BKOAUTH_OK) err_prefix(err, "refresh_token for %s", who(token->user_id));
    return finish(rc, out, t, err);
}

bkoauth_code bkoauth_refresh_token(bkoauth_client *client, const bkoauth_token *token, bkoauth_token **out,
                                   bkoauth_error *err)
{
    if (out != NULL) *out = NULL;
    if (client == NULL || token == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID,
                       "bkoauth_refresh_token: client, token and out must not be NULL");
    if (bk_empty(token->access_token) || bk_empty(token->env_name))
        return err_set(err, BKOAUTH_E_INVALID,
                       "bkoauth_refresh_token: the token has no access_token or env_name; pass a token from "
                       "bkoauth_get_access_token_by_user()");
    if (bk_empty(token->refresh_token))
        return err_set(
            err, BKOAUTH_E_TOKEN_NOT_EXIST,
            "refresh_token: the token of %s has no refresh_token (APP tokens never have one: get a "
            "new APP token with bkoauth_get_app_access_token())",
            who(token->user_id));
    if (token->user_id != NULL) {
        bkoauth_code rc = check_user_id(token->user_id, err);
        if (rc != BKOAUTH_OK) return rc;
    }
    client_after_fork(client);
    return refresh_row(client, token, 1, NULL, out, err);
}

bkoauth_code bkoauth_get_access_token_by_user(bkoauth_client *client, const char *user_id,
                                              bkoauth_token **out, bkoauth_error *err)
{
    if (out != NULL) *out = NULL;
    if (client == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID,
                       "bkoauth_get_access_token_by_user: client and out must not be NULL");
    if (!bk_empty(user_id) && (*out = cached(client, user_id)) != NULL) return err_ok(err);
    bkoauth_code rc = check_user_id(user_id, err);
    if (rc != BKOAUTH_OK) return rc;
    client_after_fork(client);
    bkoauth_token *t = NULL;
    rc = stored(client, user_id, &t, err);
    if (rc == BKOAUTH_E_TOKEN_NOT_EXIST) {
        return err_set(
            err, BKOAUTH_E_TOKEN_NOT_EXIST,
            "no saved access_token for user %s in env %s: call bkoauth_get_access_token() with the "
            "user's login request first (e.g. from the login hook bkoauth_user_logged_in())",
            user_id, client->s.env_name);
    }
    if (rc == BKOAUTH_OK && token_expiring(t, client->s.expires_seconds, bk_now())) {
        if (bk_empty(t->refresh_token)) {
            bkoauth_token_free(t);
            return err_set(
                err, BKOAUTH_E_TOKEN_NOT_EXIST,
                "the saved access_token of user %s expires soon and has no refresh_token: get a new "
                "one with bkoauth_get_access_token() at the user's next login",
                user_id);
        }
        bkoauth_token *renewed = NULL;
        rc = refresh_row(client, t, 0, bkoauth_token_dup(t), &renewed, err);
        bkoauth_token_free(t);
        t = renewed;
    }
    return finish(rc, out, t, err);
}

void bkoauth_user_logged_in(bkoauth_client *client, const bkoauth_request *req)
{
    if (client == NULL) return;
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token(client, req, &t, &e) != BKOAUTH_OK)
        log_write(&client->logger, BKOAUTH_LOG_WARNING, "login hook: could not get an access_token: %s: %s",
                  bkoauth_code_name(e.code), e.message);
    else
        log_write(&client->logger, BKOAUTH_LOG_DEBUG, "login hook: access_token ready for user %s",
                  t->user_id);
    bkoauth_token_free(t);
}

/* ---- saved tokens ----------------------------------------------------------------------- */

bkoauth_code bkoauth_list_tokens(bkoauth_client *client, bkoauth_token ***out, size_t *count,
                                 bkoauth_error *err)
{
    if (out != NULL) *out = NULL;
    if (count != NULL) *count = 0;
    if (client == NULL || out == NULL || count == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_list_tokens: client, out and count must not be NULL");
    client_after_fork(client);
    bkoauth_code rc = store_list(client->st, out, count, err);
    return rc == BKOAUTH_OK ? err_ok(err) : rc;
}

bkoauth_code bkoauth_delete_token(bkoauth_client *client, const char *user_id, bkoauth_error *err)
{
    if (client == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_delete_token: client must not be NULL");
    client_after_fork(client);
    if (user_id != NULL) {
        bkoauth_code rc = check_user_id(user_id, err);
        if (rc != BKOAUTH_OK) return rc;
    }
    bkoauth_code rc = store_remove(client->st, client->s.env_name, user_id, err);
    cache_invalidate(client->cache, client->s.env_name, user_id);
    return rc == BKOAUTH_OK ? err_ok(err) : rc;
}

/* ---- X-Bkapi-Jwt: checked by jwt/jwt.c with the client's settings and logger -------------- */

bkoauth_code bkoauth_jwt_verify(bkoauth_client *client, const char *jwt, bkoauth_jwt **out,
                                bkoauth_error *err)
{
    if (out != NULL) *out = NULL;
    if (client == NULL || out == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_jwt_verify: %s is NULL",
                       client == NULL ? "client" : "out");
    return bk_jwt_verify(&client->s, &client->logger, jwt, out, err);
}

/* ---- for tests and other modules -------------------------------------------------------- */

const bk_settings *client_settings(const bkoauth_client *c)
{
    return &c->s;
}

const char *client_route(const bkoauth_client *c, char *out, size_t size)
{
    return ssm_route(c->ssm, out, size);
}

const bk_logger *client_logger(const bkoauth_client *c)
{
    return &c->logger;
}

struct store *client_store(const bkoauth_client *c)
{
    return c->st;
}
