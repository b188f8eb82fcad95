/* SPDX-License-Identifier: MIT */
/* scrub.c - the one way text reaches a person or a log (bk_scrub): every known secret masked in
 * each form the text may hold it (raw, percent-encoded in either case, '+' for a space,
 * JSON-escaped, or a mixture), control characters, invalid UTF-8 and text-direction marks
 * escaped, and the result bounded on a character boundary, in that order, so that a cut never
 * splits a secret. The secrets known are those of the calling thread's scopes (bk_scope_enter):
 * the SSM layer enters the app secret, the refresh_token and the request's credentials for the
 * duration of a call, the store the tokens it saves. Never allocates. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* ---- scopes ---------------------------------------------------------------------------------- */

static _Thread_local bk_scope *current_scope;

void bk_scope_enter(bk_scope *s)
{
    s->n = 0;
    s->list = NULL;
    s->prev = current_scope;
    current_scope = s;
}

void bk_scope_add(bk_scope *s, const char *secret)
{
    if (secret == NULL || strlen(secret) < BK_SCRUB_MIN_SECRET) return;
    if (s->n < sizeof s->secret / sizeof s->secret[0]) s->secret[s->n++] = secret;
}

void bk_scope_leave(bk_scope *s)
{
    /* scopes are left in the reverse order of entering; one left out of order takes the
     * scopes entered after it along */
    for (bk_scope *p = current_scope; p != NULL; p = p->prev)
        if (p == s) {
            current_scope = s->prev;
            return;
        }
}

/* ---- matching ---------------------------------------------------------------------------- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The value of the 4 hex digits at p (len bytes left), or -1. */
static long hex4(const unsigned char *p, size_t left)
{
    if (left < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* How many bytes of in (from k, left bytes) spell the secret's next character(s) at s in one of
 * the forms; *adv how many bytes of the secret they stand for. 0 when none does. */
static size_t match_one(const unsigned char *in, size_t left, const unsigned char *s, size_t *adv)
{
    unsigned char c = s[0];
    *adv = 1;
    if (left == 0) return 0;
    if (in[0] == c) return 1;
    if (c == ' ' && in[0] == '+') return 1;
    if (in[0] == '%' && left >= 3) {
        int hi = hexval(in[1]), lo = hexval(in[2]);
        if (hi >= 0 && lo >= 0 && hi * 16 + lo == c) return 3;
    }
    if (in[0] != '\\' || left < 2) return 0;
    /* JSON escapes */
    unsigned char e = in[1];
    if ((e == '"' && c == '"') || (e == '\\' && c == '\\') || (e == '/' && c == '/') ||
        (e == 'n' && c == '\n') || (e == 'r' && c == '\r') || (e == 't' && c == '\t') ||
        (e == 'b' && c == '\b') || (e == 'f' && c == '\f'))
        return 2;
    if (e != 'u') return 0;
    long u = hex4(in + 2, left - 2);
    if (u < 0) return 0;
    int n = 0;
    long cp = bk_utf8_next(s, &n);
    if (cp < 0) return 0;
    if (cp < 0x10000) {
        if (u != cp) return 0;
        *adv = (size_t)n;
        return 6;
    }
    /* a surrogate pair */
    long hi = 0xd800 + ((cp - 0x10000) >> 10), lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    if (u != hi || left < 12 || in[6] != '\\' || in[7] != 'u' || hex4(in + 8, left - 8) != lo) return 0;
    *adv = (size_t)n;
    return 12;
}

/* Matches the secret s against in at i: the bytes of in it spans when it is there whole; 0 when
 * not. *partial is set when in ended while every character so far matched (after at least
 * BK_SCRUB_MIN_SECRET of them, or the whole rest of the text). */
static size_t match_secret(const unsigned char *in, size_t len, size_t i, const unsigned char *s,
                           int *partial)
{
    size_t k = i, j = 0;
    *partial = 0;
    while (s[j] != '\0') {
        if (k >= len) {
            *partial = j > 0;
            return 0;
        }
        size_t adv = 1, used = match_one(in + k, len - k, s + j, &adv);
        if (used == 0) return 0;
        k += used;
        j += adv;
    }
    return k - i;
}

/* ---- output ---------------------------------------------------------------------------------- */

typedef struct sink {
    char *out;
    size_t cap;  /* bytes of text it may hold (size - 1) */
    size_t used; /* bytes written */
    size_t safe; /* the length to cut back to so that "..." fits after it */
    int full;    /* cut: nothing more is written */
} sink;

static void put(sink *k, const char *p, size_t n)
{
    if (k->full) return;
    if (k->used + n > k->cap) {
        k->used = k->safe;
        if (k->cap >= 3) {
            memcpy(k->out + k->used, "...", 3);
            k->used += 3;
        }
        k->full = 1;
        return;
    }
    memcpy(k->out + k->used, p, n);
    k->used += n;
    if (k->used + 3 <= k->cap) k->safe = k->used;
}

/* Writes the character at in (left bytes) escaped when it must be; returns the bytes used. */
static size_t put_char(sink *k, const unsigned char *in, size_t left, unsigned flags)
{
    char esc[16];
    unsigned char c = in[0];
    if (c < 0x20 || c == 0x7f) {
        const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (named == NULL) snprintf(esc, sizeof esc, "\\x%02x", c);
        put(k, named ? named : esc, 2 + (named ? 0 : 2));
        return 1;
    }
    if ((flags & BK_SCRUB_QUOTE) && (c == '"' || c == '\\')) {
        esc[0] = '\\';
        esc[1] = (char)c;
        put(k, esc, 2);
        return 1;
    }
    if (c < 0x80) {
        put(k, (const char *)in, 1);
        return 1;
    }
    /* a complete sequence within the text, or an invalid byte */
    int n = 0;
    long cp = -1;
    unsigned char tmp[4] = {0, 0, 0, 0};
    size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (want <= left) {
        memcpy(tmp, in, want);
        cp = bk_utf8_next(tmp, &n);
    }
    if (cp < 0) {
        snprintf(esc, sizeof esc, "\\x%02x", c);
        put(k, esc, 4);
        return 1;
    }
    if ((cp >= 0x80 && cp <= 0x9f) || bk_is_hidden_mark(cp)) {
        snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp & 0xffffu);
        put(k, esc, 6);
    } else {
        put(k, (const char *)in, (size_t)n);
    }
    return (size_t)n;
}

/* Writes the mask of secret, escaped. */
static void put_mask(sink *k, const char *secret)
{
    char mask[64];
    bkoauth_mask(secret, mask, sizeof mask);
    size_t n = strlen(mask);
    for (size_t i = 0; i < n && !k->full;)
        i += put_char(k, (const unsigned char *)mask + i, n - i, 0);
}

/* The scopes' secrets, one after another: *it counts through them. NULL at the end. */
static const char *next_secret(const bk_scope **sc, size_t *it)
{
    while (*sc != NULL) {
        const bk_scope *s = *sc;
        if (*it < s->n) return s->secret[(*it)++];
        size_t j = *it - s->n;
        if (s->list != NULL && j < s->list->count) {
            (*it)++;
            const char *v = s->list->items[j].value;
            if (v != NULL && strlen(v) >= BK_SCRUB_MIN_SECRET) return v;
            continue;
        }
        *sc = s->prev;
        *it = 0;
    }
    return NULL;
}

size_t bk_scrub(char *out, size_t size, const char *text, size_t len, unsigned flags)
{
    if (out == NULL || size == 0) return 0;
    sink k = {out, size - 1, 0, 0, 0};
    const unsigned char *in = (const unsigned char *)(text != NULL ? text : "");
    if (text == NULL) len = 0;
    size_t i = 0;
    while (i < len && !k.full) {
        const char *best = NULL, *tail = NULL;
        size_t best_len = 0;
        const bk_scope *sc = current_scope;
        size_t it = 0;
        for (const char *s; (s = next_secret(&sc, &it)) != NULL;) {
            int partial = 0;
            size_t m = match_secret(in, len, i, (const unsigned char *)s, &partial);
            if (m > best_len) {
                best_len = m;
                best = s;
            } else if (partial && tail == NULL) {
                tail = s;
            }
        }
        if (best != NULL) {
            put_mask(&k, best);
            i += best_len;
            continue;
        }
        if (tail != NULL && (flags & BK_SCRUB_CUT))
            break; /* the start of a secret that the text's cut split: left out */
        i += put_char(&k, in + i, len - i, flags);
    }
    if ((flags & BK_SCRUB_CUT) && !k.full) put(&k, "...", 3);
    out[k.used] = '\0';
    return k.used;
}

/* The mask of a secret for messages and logs: at most a quarter of a short secret shown. */
char *bkoauth_mask(const char *secret, char *buf, size_t size)
{
    if (buf == NULL || size == 0) return buf;
    if (secret == NULL) {
        snprintf(buf, size, "(none)");
        return buf;
    }
    size_t len = strlen(secret);
    if (len == 0) {
        snprintf(buf, size, "(empty)");
        return buf;
    }
    /* never show more than a quarter of a short secret */
    size_t shown = len >= 16 ? 4 : len / 4;
    snprintf(buf, size, "%.*s...(%zu chars)", (int)shown, secret, len);
    return buf;
}
