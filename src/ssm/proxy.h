/* SPDX-License-Identifier: MIT */
/* proxy.h - which proxy, if any, the SSM calls go through: chosen by the library as libcurl 7.88
 * chooses it (BKOAUTH_PROXY as CURLOPT_PROXY, BKOAUTH_NO_PROXY as CURLOPT_NOPROXY, then the
 * environment: <scheme>_proxy, ALL_PROXY, NO_PROXY), so that every message can name the proxy
 * and the variable it came from. http.c then hands libcurl the choice explicitly. */
#ifndef BKOAUTH_SSM_PROXY_H
#define BKOAUTH_SSM_PROXY_H

#include "../internal.h"
#include "../settings/proxy_url.h" /* proxy_url, proxy_parse */

/* 1 when host (as libcurl takes it from a URL: an IPv6 address without brackets) matches the
 * NO_PROXY-style list, by the rules of libcurl 7.88's Curl_check_noproxy(): "*" alone matches
 * every host; entries are separated by commas and/or blanks; a name matches itself and its
 * subdomains, case-insensitively, with one leading and trailing dot ignored; an IPv4 address
 * matches an address or a CIDR range (a.b.c.d/n); no port is ever compared. NULL or "": 0. */
int proxy_noproxy_match(const char *host, const char *list);

/* What was chosen for one service URL. */
typedef struct proxy_choice {
    char *url;           /* the proxy URL as written (may hold a password); NULL: no proxy */
    const char *source;  /* proxy: the setting or variable it came from ("BKOAUTH_PROXY",
                            "https_proxy", "ALL_PROXY", ...); no proxy: what said so
                            ("BKOAUTH_PROXY", "BKOAUTH_NO_PROXY", "no_proxy", "NO_PROXY"), or NULL
                            when nothing named a proxy */
    const char *problem; /* url cannot be used (from the environment): why; NULL when usable */
    proxy_url parsed;    /* url read by proxy_parse() (when problem is NULL) */
    char shown[320];     /* url for a person: the password as ***, cut at 300 bytes */
} proxy_choice;

/* Chooses for a URL of scheme ("http" or "https") and host, as libcurl 7.88 does with
 * CURLOPT_PROXY = setting (NULL: not set; "" or "none", any case: no proxy at all) and
 * CURLOPT_NOPROXY = no_proxy_setting (NULL: not set, the environment's no_proxy, else NO_PROXY,
 * applies): the no-proxy list first; then the setting, else the environment's <scheme>_proxy
 * (for https also HTTPS_PROXY; for http only the lower-case http_proxy, as libcurl), else
 * all_proxy, else ALL_PROXY (an empty variable counts as unset). Reads the environment
 * (getenv). BKOAUTH_OK, or BKOAUTH_E_NOMEM. */
bkoauth_code proxy_choose(const char *scheme, const char *host, const char *setting,
                          const char *no_proxy_setting, proxy_choice *out, bkoauth_error *err);
/* The proxy variables of the environment (http_proxy, https_proxy, HTTPS_PROXY, all_proxy,
 * ALL_PROXY, no_proxy, NO_PROXY), copied when a client is made so that its choice, made at its
 * first call, is the one of the environment then. */
#define PROXY_ENV_COUNT 7
typedef struct proxy_environ {
    char *value[PROXY_ENV_COUNT]; /* NULL: unset or empty; may hold passwords */
} proxy_environ;
/* Copies the variables from the environment (getenv). BKOAUTH_OK, or BKOAUTH_E_NOMEM (nothing
 * kept). */
bkoauth_code proxy_environ_take(proxy_environ *env, bkoauth_error *err);
/* Wipes and frees the copies; a zeroed proxy_environ is fine. */
void proxy_environ_clear(proxy_environ *env);
/* proxy_choose() reading env instead of the environment (NULL: the environment). */
bkoauth_code proxy_choose_in(const proxy_environ *env, const char *scheme, const char *host,
                             const char *setting, const char *no_proxy_setting, proxy_choice *out,
                             bkoauth_error *err);
/* Frees and wipes what proxy_choose() filled; a zeroed choice is fine. */
void proxy_choice_clear(proxy_choice *c);
/* "the proxy http://user:***@host:3128 (from https_proxy)" into out; "" when there is none. */
const char *proxy_describe(const proxy_choice *c, char *out, size_t size);

#endif
