/* SPDX-License-Identifier: MIT */
/* text.c - what text from outside may hold: the alphabet of tokens, and user names a person can
 * read safely (no control characters, no reordering marks, valid UTF-8). */
#include "internal.h"

#include <stdio.h>
#include <string.h>

int bk_token_text_ok(const char *s, size_t max_len, int may_be_empty)
{
    if (s == NULL) return may_be_empty;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e) return 0;
    return n <= max_len && (n > 0 || may_be_empty);
}

const char *bk_token_text_problem(const char *s, size_t len)
{
    const char *why = NULL;
    for (size_t i = 0; i < len && why == NULL; i++) {
        unsigned char c = (unsigned char)s[i];
        why = c == 0                  ? "holds a NUL byte"
              : c < 0x20 || c == 0x7f ? "holds a control character"
              : c == ' '              ? "holds a space"
              : c > 0x7f              ? "holds a character that is not ASCII"
                                      : NULL;
    }
    return why;
}

int bk_utf8_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len = 0;
        if (bk_utf8_next(p, &len) < 0) return 0;
        p += len;
    }
    return 1;
}

long bk_utf8_next(const unsigned char *p, int *len)
{
    if (p[0] < 0x80) {
        *len = 1;
        return p[0];
    }
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;
    if (n == 0 || (n == 3 && p[0] > 0xef)) return -1;
    long cp = p[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return -1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *len = n;
    return cp;
}

int bk_is_hidden_mark(long cp)
{
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f ||
           cp == 0x061c || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff;
}

const char *bk_name_problem(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len = 0;
        long cp = bk_utf8_next(p, &len);
        if (cp < 0) return "is not valid UTF-8";
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return "contains a control character";
        if (bk_is_hidden_mark(cp)) return "contains a text-direction mark or line separator";
        p += len;
    }
    return NULL;
}

char *bk_url_hide_password(const char *url, char *out, size_t size)
{
    if (size == 0) return out;
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL, *colon = NULL;
    for (const char *p = auth; p < auth + auth_len; p++)
        if (*p == '@') at = p; /* the last one: a password may hold '@' */
    if (at != NULL) colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL)
        snprintf(out, size, "%s", url);
    else
        snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
    return out;
}
