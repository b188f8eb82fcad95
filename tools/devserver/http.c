/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: HTTP helpers - text from outside, request values, answers, and the request
 * handler that reads a request's body and passes the request to /__dev/ or to the SSM protocols. */
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

/* ---- the request handler -------------------------------------------------------------------- */

/* Appends one piece of the body to rq; past DEV_MAX_BODY the rest is read and dropped. */
static enum MHD_Result dev_read_body(dev_req *rq, const char *upload, size_t *upload_size)
{
    if (rq->too_big || rq->len + *upload_size > DEV_MAX_BODY) {
        rq->too_big = 1;
    } else {
        char *p = realloc(rq->body, rq->len + *upload_size + 1);
        if (p == NULL) return MHD_NO;
        memcpy(p + rq->len, upload, *upload_size);
        rq->body = p;
        rq->len += *upload_size;
        rq->body[rq->len] = '\0';
    }
    *upload_size = 0;
    return MHD_YES;
}

enum MHD_Result dev_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    dev_req *rq = *con_cls;
    if (rq == NULL) { /* the URI log callback could not allocate */
        rq = calloc(1, sizeof *rq);
        if (rq == NULL) return MHD_NO;
        *con_cls = rq;
    }
    if (!rq->started) { /* the first call comes before any body: ask for the body */
        rq->started = 1;
        return MHD_YES;
    }
    if (*upload_size > 0) return dev_read_body(rq, upload, upload_size);
    if (rq->too_big) return dev_send_message(c, 413, "the request body is larger than 64 KiB");
    if (strncmp(url, "/__dev/", 7) == 0) return dev_call(c, method, url);
    return dev_ssm_call(c, method, url, rq);
}

/* The URI log callback: keeps the raw URI, as sent, for the record of the call and the echo. */
void *dev_log_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    dev_req *rq = calloc(1, sizeof *rq);
    if (rq != NULL) rq->uri = strdup(uri ? uri : "");
    return rq;
}

void dev_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    dev_req *rq = *con_cls;
    if (rq != NULL) {
        free(rq->uri);
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}
