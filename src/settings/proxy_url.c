/* SPDX-License-Identifier: MIT */
/* proxy_url.c - a proxy URL read as libcurl 7.88 reads one (proxy_url.h): BKOAUTH_PROXY when the
 * settings are checked, and the environment's proxy variables when ssm/proxy.c chooses the
 * proxy. Outside input: read defensively (length, characters, scheme, host, port); a message
 * never quotes the URL (it may hold a password). */
#include "proxy_url.h"

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
