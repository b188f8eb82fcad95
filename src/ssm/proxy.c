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

/* ---- the proxy URL ------------------------------------------------------------------------ */

/* The schemes libcurl takes for a proxy (url.c parse_proxy), in lower case. */
static const char *proxy_scheme_of(const char *s, size_t n)
{
    static const char *known[] = {"http", "https", "socks", "socks4", "socks4a", "socks5", "socks5h"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == n && strncasecmp(s, known[i], n) == 0) return i == 2 ? "socks4" : known[i];
    return NULL;
}

static int proxy_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes n bytes at s into out (size bytes). -1 when it does not fit or holds %00. */
static int proxy_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n) {
            int hi = proxy_hexval(s[i + 1]), lo = proxy_hexval(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = hi * 16 + lo;
                i += 2;
                if (c == 0) return -1;
            }
        }
        if (k + 1 >= size) return -1;
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

/* Without "://", libcurl guesses the scheme from the host's first label (urlapi.c): these are
 * guessed as schemes no proxy can have. */
static int proxy_guess_is_http(const char *host)
{
    static const char *other[] = {"ftp.", "dict.", "ldap.", "imap.", "smtp.", "pop3."};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (strncasecmp(host, other[i], strlen(other[i])) == 0) return 0;
    return 1;
}

/* The user info (n bytes at s) into out. NULL or what is wrong. */
static const char *proxy_userinfo(const char *s, size_t n, proxy_url *out)
{
    out->has_user = 1;
    const char *colon = memchr(s, ':', n);
    if (colon == NULL) return NULL;
    if (proxy_decode(colon + 1, n - (size_t)(colon + 1 - s), out->password, sizeof out->password) != 0) {
        bkoauth__wipe(out->password, sizeof out->password);
        return "its password is longer than 511 bytes or holds %00";
    }
    return NULL;
}

/* host[:port] (n bytes at s) into out. NULL or what is wrong. */
static const char *proxy_hostport(const char *s, size_t n, proxy_url *out)
{
    const char *end = s + n, *port = NULL;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        unsigned char addr[16];
        char v6[64];
        if (close == NULL || (size_t)(close - s - 1) >= sizeof v6) return "its IPv6 address lacks its ']'";
        memcpy(v6, s + 1, (size_t)(close - s - 1));
        v6[close - s - 1] = '\0';
        if (inet_pton(AF_INET6, v6, addr) != 1) return "its host is not an IPv6 address between [ ]";
        snprintf(out->host, sizeof out->host, "%s", v6);
        if (close + 1 < end && close[1] != ':') return "something follows its IPv6 address's ']'";
        if (close + 1 < end) port = close + 2;
    } else {
        const char *colon = memchr(s, ':', n);
        size_t hl = colon ? (size_t)(colon - s) : n;
        if (hl == 0) return "it names no host";
        if (hl >= sizeof out->host) return "its host name is longer than 255 bytes";
        for (size_t i = 0; i < hl; i++)
            if (strchr("/:#?!@{}[]\\$'\"^`*<>=;,+&()%", s[i]) != NULL)
                return "its host name holds a character no host name has";
        memcpy(out->host, s, hl);
        out->host[hl] = '\0';
        if (colon != NULL) port = colon + 1;
    }
    if (port != NULL && port < end) {
        unsigned long p = 0;
        for (const char *q = port; q < end; q++) {
            if (!isdigit((unsigned char)*q) || (p = p * 10 + (unsigned long)(*q - '0')) > 65535)
                return "its port is not a number from 1 to 65535";
        }
        if (p == 0) return "its port is not a number from 1 to 65535";
        out->port = (unsigned)p;
    }
    return NULL;
}

const char *proxy_parse(const char *text, proxy_url *out)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(text);
    if (len == 0) return "it is empty";
    if (len > PROXY_URL_MAX) return "it is longer than 2048 bytes";
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return "it holds a space or a control character";
    const char *sep = strstr(text, "://"), *auth = text;
    const char *scheme = "http";
    if (sep != NULL) {
        if ((scheme = proxy_scheme_of(text, (size_t)(sep - text))) == NULL)
            return "its scheme is none libcurl takes for a proxy (http://, https://, socks4://, socks4a://, "
                   "socks5://, socks5h://)";
        auth = sep + 3;
    }
    snprintf(out->scheme, sizeof out->scheme, "%s", scheme);
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen), *host = auth;
    if (at != NULL) {
        if (memchr(at + 1, '@', alen - (size_t)(at + 1 - auth)) != NULL)
            return "it holds more than one '@' (write an '@' of the user or password as %40)";
        const char *why = proxy_userinfo(auth, (size_t)(at - auth), out);
        if (why != NULL) return why;
        host = at + 1;
    }
    const char *why = proxy_hostport(host, alen - (size_t)(host - auth), out);
    if (why != NULL) return why;
    if (sep == NULL && !proxy_guess_is_http(out->host))
        return "without a scheme, libcurl takes it for a URL of another protocol (write http:// in front)";
    if (out->port == 0) out->port = strcmp(out->scheme, "https") == 0 ? 443 : 1080;
    return NULL;
}

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
