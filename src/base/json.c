/* SPDX-License-Identifier: MIT */
/* json.c - JSON written the way Python's json.dumps() writes it, for the bodies the Python
 * library sends (ee.c) or answers with (jwt.c), so that both read byte for byte the same. */
#include "json.h"

#include <ctype.h>
#include <string.h>

/* Writes the hex digits of every \uXXXX escape of text in lower case, as Python does (Jansson
 * writes upper case), and counts the DEL bytes, which Python escapes and Jansson does not.
 * Backslashes occur only inside strings, always as pairs "\\x". */
static size_t lower_escapes(char *text)
{
    size_t dels = 0;
    for (char *p = text; *p != '\0'; p++) {
        if (*p == 0x7f) dels++;
        if (*p != '\\' || p[1] == '\0') continue;
        if (p[1] == 'u')
            for (int i = 2; i < 6 && p[i] != '\0'; i++)
                p[i] = (char)tolower((unsigned char)p[i]);
        p++; /* skip the escaped character */
    }
    return dels;
}

/* A copy of text (len bytes) with each DEL written as \u007f; NULL when out of memory. */
static char *escape_dels(const char *text, size_t len, size_t dels)
{
    char *out = bkoauth__malloc(len + 5 * dels + 1);
    if (out == NULL) return NULL;
    char *o = out;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == 0x7f) {
            memcpy(o, "\\u007f", 6);
            o += 6;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

char *bkoauth__json_dump_python(const json_t *json, size_t flags)
{
    char *text = bkoauth__json_dump(json, flags | JSON_ENSURE_ASCII);
    if (text == NULL) return NULL;
    size_t dels = lower_escapes(text);
    if (dels == 0) return text;
    size_t len = strlen(text);
    char *out = escape_dels(text, len, dels);
    bkoauth__wipe_free(text, len + 1); /* it may hold a credential */
    return out;
}
