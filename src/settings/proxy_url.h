/* SPDX-License-Identifier: MIT */
/* proxy_url.h - a proxy URL as libcurl reads it (proxy_url.c): settings/config.c checks
 * BKOAUTH_PROXY with it, ssm/proxy.c the environment's variables. */
#ifndef BKOAUTH_SETTINGS_PROXY_URL_H
#define BKOAUTH_SETTINGS_PROXY_URL_H

#include "../internal.h"

/* The longest proxy URL taken (outside text: the environment). */
#define PROXY_URL_MAX 2048

/* A proxy URL as libcurl reads it: [scheme://][user[:password]@]host[:port][/...]. */
typedef struct proxy_url {
    char scheme[8];     /* lower case: http (also when none was written), https, socks4, socks4a,
                           socks5, socks5h */
    char host[256];     /* a name or an address ([IPv6] without the brackets) */
    unsigned port;      /* as written, else libcurl's default: 443 for https, 1080 otherwise */
    int has_user;       /* user info was given */
    char password[512]; /* percent-decoded; "" when none (a secret: wiped by proxy_choice_clear) */
} proxy_url;

/* Reads text as a proxy URL into *out. NULL when it is one, else what is wrong with it (a
 * sentence that never quotes it). Never allocates. */
const char *proxy_parse(const char *text, proxy_url *out);

#endif
