/* SPDX-License-Identifier: MIT */
/* proxy.c - the proxy of the SSM calls, chosen as libcurl 7.88 (Debian 12's) chooses it, so that
 * the library knows which proxy it uses and where that came from (see proxy.h). The environment
 * is outside input: a proxy URL is read defensively (length, characters, scheme, host, port),
 * and one that cannot be used is reported, never passed on. */
#include "proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- NO_PROXY ----------------------------------------------------------------------------- */

/* Curl_cidr4_match() of libcurl 7.88. */
static int proxy_cidr4(const char *ip, const char *net, unsigned bits)
{
    struct in_addr a, n;
    if (bits > 32 || inet_pton(AF_INET, ip, &a) != 1 || inet_pton(AF_INET, net, &n) != 1) return 0;
    if (bits != 0 && bits != 32) {
        uint32_t mask = 0xffffffffu << (32 - bits);
        return ((ntohl(a.s_addr) ^ ntohl(n.s_addr)) & mask) == 0;
    }
    return a.s_addr == n.s_addr;
}

/* Curl_cidr6_match() of libcurl 7.88, as it is (its test of the bits past the last whole byte
 * is inverted: libcurl 7.88 matches /n with n not a multiple of 8 only when they differ). */
static int proxy_cidr6(const char *ip, const char *net, unsigned bits)
{
    unsigned char a[16], n[16];
    if (bits == 0) bits = 128;
    unsigned bytes = bits / 8, rest = bits & 7;
    if (inet_pton(AF_INET6, ip, a) != 1 || inet_pton(AF_INET6, net, n) != 1) return 0;
    if (bytes > 16 || (bytes == 16 && rest)) return 0;
    if (bytes && memcmp(a, n, bytes) != 0) return 0;
    if (rest && !((a[bytes] ^ n[bytes]) & (0xff << (8 - rest)))) return 0;
    return 1;
}

/* atoi() of the bits after '/', saturating (libcurl's atoi of a huge number gives a value that
 * matches nothing). */
static unsigned proxy_bits(const char *s)
{
    unsigned long v = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '-' || *s == '+') return *s == '+' ? proxy_bits(s + 1) : 999;
    for (; isdigit((unsigned char)*s); s++)
        if ((v = v * 10 + (unsigned long)(*s - '0')) > 999) return 999;
    return (unsigned)v;
}

/* One entry (len bytes at token) against name (namelen bytes) of the given kind. */
static int proxy_entry_match(const char *token, size_t len, const char *name, size_t namelen, int kind)
{
    if (kind == 0) { /* a host name */
        if (token[len - 1] == '.') len--;
        if (len && *token == '.') token++, len--;
        if (len == namelen) return strncasecmp(token, name, namelen) == 0;
        if (len < namelen)
            return name[namelen - len - 1] == '.' && strncasecmp(token, name + (namelen - len), len) == 0;
        return 0;
    }
    char check[128];
    if (len >= sizeof check) return 0;
    memcpy(check, token, len);
    check[len] = '\0';
    unsigned bits = 0;
    char *slash = strchr(check, '/');
    if (slash != NULL) {
        bits = proxy_bits(slash + 1);
        *slash = '\0';
    }
    return kind == 6 ? proxy_cidr6(name, check, bits) : proxy_cidr4(name, check, bits);
}

int proxy_noproxy_match(const char *host, const char *list)
{
    if (host == NULL || host[0] == '\0' || list == NULL || list[0] == '\0') return 0;
    if (strcmp(list, "*") == 0) return 1;
    char ip[128];
    const char *name = host;
    size_t namelen = strlen(host);
    int kind = 0;
    struct in_addr a4;
    if (host[0] == '[') { /* libcurl passes an IPv6 host without brackets; kept for the same rule */
        const char *close = strchr(host, ']');
        if (close == NULL || (size_t)(close - host - 1) >= sizeof ip) return 0;
        namelen = (size_t)(close - host - 1);
        memcpy(ip, host + 1, namelen);
        ip[namelen] = '\0';
        name = ip;
        kind = 6;
    } else if (inet_pton(AF_INET, host, &a4) == 1) {
        kind = 4;
    } else if (host[namelen - 1] == '.') {
        namelen--;
    }
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *token = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        if (p > token && proxy_entry_match(token, (size_t)(p - token), name, namelen, kind)) return 1;
        while (*p == ' ' || *p == '\t')
            p++;
        while (*p == ',')
            p++;
    }
    return 0;
}

/* ---- the choice ---------------------------------------------------------------------------- */

static const char *const PROXY_ENV_NAMES[PROXY_ENV_COUNT] = {
    "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"};

/* getenv() as libcurl's curl_getenv(): an empty value is no value. From env when it is given. */
static const char *proxy_env(const proxy_environ *env, const char *name)
{
    const char *v = NULL;
    if (env == NULL)
        v = getenv(name);
    else
        for (size_t i = 0; i < PROXY_ENV_COUNT; i++)
            if (strcmp(PROXY_ENV_NAMES[i], name) == 0) v = env->value[i];
    return v != NULL && v[0] != '\0' ? v : NULL;
}

bkoauth_code proxy_environ_take(proxy_environ *env, bkoauth_error *err)
{
    memset(env, 0, sizeof *env);
    for (size_t i = 0; i < PROXY_ENV_COUNT; i++) {
        const char *v = proxy_env(NULL, PROXY_ENV_NAMES[i]);
        if (v != NULL && (env->value[i] = bk_strdup(v)) == NULL) {
            proxy_environ_clear(env);
            return err_nomem(err);
        }
    }
    return BKOAUTH_OK;
}

void proxy_environ_clear(proxy_environ *env)
{
    for (size_t i = 0; i < PROXY_ENV_COUNT; i++) {
        bk_wipe_free(env->value[i]);
        env->value[i] = NULL;
    }
}

/* The environment's proxy for scheme (libcurl's detect_proxy()); *source set to its name. */
static const char *proxy_from_env(const proxy_environ *env, const char *scheme, const char **source)
{
    int https = strcasecmp(scheme, "https") == 0;
    const char *v = proxy_env(env, *source = https ? "https_proxy" : "http_proxy");
    /* never HTTP_PROXY: a CGI program's environment holds the request's "Proxy:" header there */
    if (v == NULL && https) v = proxy_env(env, *source = "HTTPS_PROXY");
    if (v == NULL) v = proxy_env(env, *source = "all_proxy");
    if (v == NULL) v = proxy_env(env, *source = "ALL_PROXY");
    if (v == NULL) *source = NULL;
    return v;
}

static int proxy_is_none(const char *setting)
{
    return setting[0] == '\0' || strcasecmp(setting, "none") == 0;
}

bkoauth_code proxy_choose(const char *scheme, const char *host, const char *setting,
                          const char *no_proxy_setting, proxy_choice *out, bkoauth_error *err)
{
    return proxy_choose_in(NULL, scheme, host, setting, no_proxy_setting, out, err);
}

bkoauth_code proxy_choose_in(const proxy_environ *env, const char *scheme, const char *host,
                             const char *setting, const char *no_proxy_setting, proxy_choice *out,
                             bkoauth_error *err)
{
    memset(out, 0, sizeof *out);
    const char *no_source = "BKOAUTH_NO_PROXY", *no_list = no_proxy_setting;
    if (no_list == NULL) no_list = proxy_env(env, no_source = "no_proxy");
    if (no_list == NULL) no_list = proxy_env(env, no_source = "NO_PROXY");
    if (setting != NULL && proxy_is_none(setting)) {
        out->source = "BKOAUTH_PROXY";
        return BKOAUTH_OK;
    }
    if (proxy_noproxy_match(host, no_list)) {
        out->source = no_source;
        return BKOAUTH_OK;
    }
    const char *url = setting, *source = "BKOAUTH_PROXY";
    if (url == NULL) url = proxy_from_env(env, scheme, &source);
    if (url == NULL) return BKOAUTH_OK;
    out->source = source;
    out->problem = proxy_parse(url, &out->parsed);
    bk_url_hide_password(url, out->shown, 301);
    if ((out->url = bk_strdup(url)) == NULL) {
        proxy_choice_clear(out);
        return err_nomem(err);
    }
    return BKOAUTH_OK;
}

void proxy_choice_clear(proxy_choice *c)
{
    if (c == NULL) return;
    bk_wipe_free(c->url);
    bkoauth__wipe(c, sizeof *c);
}

const char *proxy_describe(const proxy_choice *c, char *out, size_t size)
{
    if (c->url == NULL)
        snprintf(out, size, "%s", "");
    else
        snprintf(out, size, "the proxy %s (from %s)", c->shown, c->source);
    return out;
}
