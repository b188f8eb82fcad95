/* SPDX-License-Identifier: MIT */
/* ssm.h - the SSM token service, behind one small interface: fetch an APP token, fetch a user
 * token, refresh. ieod.c and ee.c implement the two wire protocols; http.c carries them. */
#ifndef BKOAUTH_SSM_H
#define BKOAUTH_SSM_H

#include "../internal.h"

/* What the service granted. All strings owned; refresh_token and scope are "" when absent. */
typedef struct ssm_grant {
    char *access_token;
    char *refresh_token;
    char *scope;
    int64_t expires_in;
} ssm_grant;
void ssm_grant_clear(ssm_grant *g);

typedef struct ssm_client ssm_client;

/* A client for s->protocol. s and logger are borrowed and must outlive it. Thread-safe. */
ssm_client *ssm_new(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
void ssm_free(ssm_client *c);
/* In a child after fork(): forgets (without closing) the connections of the parent. */
void ssm_after_fork(ssm_client *c);
/* Logs again what ssm_new() logged of the settings (TLS verification off), for a new logger. */
void ssm_announce(const ssm_client *c);

/* " through the proxy http://user:***@host:port (from https_proxy)" when the client's calls go
 * through a proxy, else "" (see http_route). */
const char *ssm_route(const ssm_client *c, char *out, size_t size);

/* The wire protocol the client speaks: "ieod" or "ee". */
const char *ssm_protocol_name(const ssm_client *c);

/* A process-wide observer of the SSM calls sent (for bkoauth-agent's metrics): called after
 * each call with what was asked ("APP token", "user token", "refresh_token"), 1 when a usable
 * grant came back (else 0) and the call's time in microseconds. NULL (the default): none. Set
 * it before clients are used from other threads. */
typedef void (*bkoauth__ssm_observer_fn)(const char *what, int ok, long long micros);
void bkoauth__ssm_set_observer(bkoauth__ssm_observer_fn fn);

/* Each returns BKOAUTH_OK with *out filled, or BKOAUTH_E_TOKEN_API (http_status/api_code set
 * when known) with a message a person can act on; *out is then zeroed. */
bkoauth_code ssm_fetch_app(ssm_client *c, const char *env_name, ssm_grant *out, bkoauth_error *err);
bkoauth_code ssm_fetch_user(ssm_client *c, const char *env_name, const bk_kvlist *credentials,
                            const char *client_ip, ssm_grant *out, bkoauth_error *err);
bkoauth_code ssm_refresh(ssm_client *c, const char *env_name, const char *refresh_token, ssm_grant *out,
                         bkoauth_error *err);

/* Reaches OAUTH_API_URL with a plain GET of its root, asking for no token: BKOAUTH_OK when any
 * HTTP answer came back (*status set), BKOAUTH_E_TOKEN_API saying why not (unreachable, TLS,
 * timeout), BKOAUTH_E_CONFIG when OAUTH_API_URL is not set. */
bkoauth_code ssm_ping(ssm_client *c, long *status, bkoauth_error *err);

/* What kind of failure the calling thread's last failed call was (set by every failed call of
 * this thread, kept until the next one). */
typedef enum ssm_failure {
    SSM_FAIL_NONE = 0,
    SSM_FAIL_NETWORK, /* no answer: unreachable, timeout, connection dropped */
    SSM_FAIL_SERVER,  /* an HTTP error status */
    SSM_FAIL_ANSWER,  /* an answer that is not a usable grant (HTML, truncated, malformed) */
    SSM_FAIL_REFUSED, /* the service answered and refused (bad credential, used refresh_token) */
    SSM_FAIL_SETUP,   /* not sent: a setting is missing or unusable */
    SSM_FAIL_KINDS
} ssm_failure;
ssm_failure ssm_last_failure(void);
/* 1 for the failures of an outage (network, server, answer): the service may work again soon,
 * and the request itself was not refused. */
int ssm_failure_is_outage(ssm_failure f);
/* "network", "server", "answer", "refused", "setup". */
const char *ssm_failure_name(ssm_failure f);

/* Calls made by c, and its failures by kind (index ssm_failure; [0] unused). */
void ssm_counts(const ssm_client *c, uint64_t *calls, uint64_t failures[SSM_FAIL_KINDS]);

#endif
