/* SPDX-License-Identifier: MIT */
/* src/base/ - what every other folder stands on, calling nothing above it:
 *   alloc.c    every allocation (bkoauth_set_allocators), the wipe, libcurl's allocators
 *   error.c    result codes and the error record      log.c     the client's logger
 *   scrub.c    bk_scrub: secrets masked and outside text escaped in every message and log line;
 *              bkoauth_mask
 *   text.c     what outside text may hold (token alphabet, readable names, UTF-8)
 *   util.c     strings and buffers                     token.c   the token record
 *   clock.c    the two clocks (wall and monotonic)
 *   kvlist.c   lists of string pairs                   json.c    JSON as Python writes it (json.h)
 *   datetime.c Django's datetimes                      tzfile.c  named time zones (TZif files)
 *   dl.c       libraries loaded on first use (dl.h)    crypto_dl.c  libcrypto, loaded that way
 * Their declarations are in src/internal.h. */
/* util.c - small string and buffer helpers. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *bk_strdup(const char *s)
{
    return bkoauth__strdup(s);
}

char *bk_strndup(const char *s, size_t n)
{
    return bkoauth__strndup(s, n);
}

void bk_wipe_free(char *s)
{
    if (s == NULL) return;
    bkoauth__wipe_free(s, strlen(s));
}

int bk_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) return a == b;
    return strcmp(a, b) == 0;
}

int bk_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static int buf_reserve(bk_buf *b, size_t extra)
{
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p;
    if (b->secret && b->data != NULL) {
        /* moved by hand, so that no copy of the secret stays behind in freed memory */
        p = bkoauth__malloc(cap);
        if (p != NULL) {
            memcpy(p, b->data, b->len + 1);
            bkoauth__wipe_free(b->data, b->cap);
        }
    } else {
        p = bkoauth__realloc(b->data, cap);
    }
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void buf_append(bk_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(bk_buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(bk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_urlencode(bk_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~') {
            char ch = (char)c;
            buf_append(b, &ch, 1);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, enc, 3);
        }
    }
}

void buf_free(bk_buf *b)
{
    if (b->secret)
        bkoauth__wipe_free(b->data, b->cap);
    else
        bkoauth__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

size_t bk_utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}
