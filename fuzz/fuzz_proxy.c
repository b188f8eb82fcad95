/* SPDX-License-Identifier: MIT */
/* fuzz_proxy.c - libFuzzer target for the proxy of the SSM calls (src/ssm/proxy.c): a proxy URL
 * from the environment (proxy_parse, src/settings/proxy_url.c) and a NO_PROXY list against a
 * host (proxy_noproxy_match),
 * both outside input.
 *
 * Input: up to the first byte 0x00 is the host, the rest is both the list and the proxy URL.
 * Invariants, whatever the bytes:
 *  - a URL taken has a scheme libcurl takes, a host of 1..255 bytes without a control character,
 *    a port from 1 to 65535, a password that fits its buffer;
 *  - the masked form (bk_url_hide_password) never holds the password of a URL taken (for
 *    passwords of 4 bytes or more, written once and without '%');
 *  - the match is the same asked twice, "*" alone matches every host that is not empty, and the
 *    host itself (without a trailing dot and not an IPv4 address) as a list matches it. */
#include "ssm/proxy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond) abort();
}

static void check_url(const char *text)
{
    proxy_url u;
    if (proxy_parse(text, &u) != NULL) return;
    static const char *schemes[] = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"};
    int known = 0;
    for (size_t i = 0; i < 6; i++)
        known |= strcmp(u.scheme, schemes[i]) == 0;
    fuzz_check(known);
    size_t hl = strlen(u.host);
    fuzz_check(hl >= 1 && hl <= 255);
    for (size_t i = 0; i < hl; i++)
        fuzz_check((unsigned char)u.host[i] > 0x20 && u.host[i] != 0x7f);
    fuzz_check(u.port >= 1 && u.port <= 65535);
    fuzz_check(strlen(u.password) < sizeof u.password);
    char shown[4200];
    bk_url_hide_password(text, shown, sizeof shown);
    /* a password written once (not also in the user or the host, where it is no secret) */
    const char *first =
        strlen(u.password) >= 4 && strchr(text, '%') == NULL ? strstr(text, u.password) : NULL;
    if (first != NULL && strstr(first + 1, u.password) == NULL) fuzz_check(strstr(shown, u.password) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char buf[4098];
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *host = buf;
    size_t hlen = strlen(host);
    const char *rest = hlen < size ? buf + hlen + 1 : "";
    check_url(rest);
    int m = proxy_noproxy_match(host, rest);
    fuzz_check(m == proxy_noproxy_match(host, rest));
    if (host[0] != '\0') fuzz_check(proxy_noproxy_match(host, "*") == 1);
    /* a host name (no blank, comma, bracket or trailing dot) matches itself */
    if (hlen > 0 && strcspn(host, " \t,[") == hlen && host[hlen - 1] != '.' && host[0] != '.')
        fuzz_check(proxy_noproxy_match(host, host) == 1);
    return 0;
}
