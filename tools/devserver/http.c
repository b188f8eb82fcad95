/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: HTTP helpers - text from outside, request values and answers. The bottom
 * layer: it calls no other file of the devserver. */
#include "devserver.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text from outside ---------------------------------------------------------------------- */

/* A JSON string of n bytes of s: as is when it is valid UTF-8 without NUL, else with every
 * byte outside printable ASCII written as \xNN. Never NULL unless out of memory. */
json_t *dev_text(const char *s, size_t n)
{
    if (s == NULL) return json_string("");
    if (memchr(s, '\0', n) == NULL) {
        json_t *j = json_stringn(s, n);
        if (j != NULL) return j;
    }
    char *out = malloc(n * 4 + 1);
    if (out == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[k++] = (char)ch;
        else
            k += (size_t)sprintf(out + k, "\\x%02x", ch);
    }
    json_t *j = json_stringn(out, k);
    free(out);
    return j;
}

/* Strict decimal in [lo, hi]; 0 on success. */
int dev_parse_long(const char *s, long lo, long hi, long *out)
{
    if (s == NULL || *s == '\0') return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int dev_is_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

int dev_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

const char *dev_arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

const char *dev_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ---- answers -------------------------------------------------------------------------------- */

enum MHD_Result dev_send_text(struct MHD_Connection *c, unsigned status, const char *type, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends j (stolen; NULL means out of memory) as JSON. */
enum MHD_Result dev_send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return dev_send_text(c, 500, "application/json",
                             "{\"message\":\"bkoauth-devserver: out of memory\"}");
    enum MHD_Result ret = dev_send_text(c, status, "application/json", text);
    free(text);
    return ret;
}

enum MHD_Result dev_send_message(struct MHD_Connection *c, unsigned status, const char *message)
{
    return dev_send_json(c, status, json_pack("{s:i, s:s}", "code", (int)status, "message", message));
}
