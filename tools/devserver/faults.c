/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: injected faults (POST /__dev/fault, docs/DEVSERVER.md). One fault is armed
 * at a time in S.fault, for a count of SSM calls; each call takes a copy of it under S.mu and is
 * answered from that copy without the mutex: an HTTP 500 page, a cut grant, an HTML page, a slow
 * answer, a dropped connection, a business error, the request echoed back, or a raw body. */
#include "devserver.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arming a fault (the caller holds S.mu) ------------------------------------------------- */

/* The arguments of POST /__dev/fault, with their defaults. */
typedef struct dev_fault_args {
    const char *kind, *message, *body;
    long count, delay_ms, code, status;
} dev_fault_args;

/* Reads and checks the arguments of POST /__dev/fault into a; NULL when they are right, else
 * what is wrong. */
static const char *dev_fault_check(struct MHD_Connection *c, dev_fault_args *a)
{
    static const char *const kinds[] = {"http500", "truncated", "html", "slow",
                                        "drop",    "business",  "echo", "raw"};
    const char *count = dev_arg(c, "count"), *delay = dev_arg(c, "delay_ms"), *code = dev_arg(c, "code"),
               *status = dev_arg(c, "status");
    *a = (dev_fault_args){dev_arg(c, "kind"), dev_arg(c, "message"), dev_arg(c, "body"), 1, 0, 1500, 200};
    int known = 0;
    for (size_t i = 0; a->kind && i < sizeof kinds / sizeof kinds[0]; i++)
        known |= strcmp(a->kind, kinds[i]) == 0;
    if (!known) return "kind must be http500, truncated, html, slow, drop, business, echo or raw";
    if (a->body && strlen(a->body) > DEV_MAX_RAW) return "body must be at most 16384 bytes";
    if (status && dev_parse_long(status, 100, 999, &a->status) != 0)
        return "status must be a whole number from 100 to 999";
    if (count && dev_parse_long(count, 0, DEV_MAX_FAULT_COUNT, &a->count) != 0)
        return "count must be a whole number from 0 to 1000000";
    if (delay && dev_parse_long(delay, 0, DEV_MAX_DELAY_MS, &a->delay_ms) != 0)
        return "delay_ms must be a whole number from 0 to 600000 (0: the default 2000)";
    if (code && dev_parse_long(code, INT_MIN, INT_MAX, &a->code) != 0) return "code must be a whole number";
    if (a->message && (strlen(a->message) >= sizeof S.fault.message || !dev_is_utf8(a->message)))
        return "message must be UTF-8 text shorter than 256 bytes";
    return NULL;
}

/* Disarms the fault. */
void dev_clear_fault(void)
{
    free(S.fault.body);
    memset(&S.fault, 0, sizeof S.fault);
}

/* POST /__dev/fault: arms a fault (count 0 disarms). */
json_t *dev_set_fault(struct MHD_Connection *c, unsigned *status)
{
    dev_fault_args a;
    const char *why = dev_fault_check(c, &a);
    if (why != NULL) {
        *status = 400;
        return json_pack("{s:b, s:s}", "ok", 0, "message", why);
    }
    dev_clear_fault();
    if (strcmp(a.kind, "raw") == 0 && a.count > 0 && (S.fault.body = strdup(a.body ? a.body : "")) == NULL) {
        *status = 500;
        return json_pack("{s:b, s:s}", "ok", 0, "message", "the devserver is out of memory");
    }
    S.fault.status = a.status;
    if (a.count > 0) snprintf(S.fault.kind, sizeof S.fault.kind, "%s", a.kind);
    S.fault.remaining = a.count;
    S.fault.delay_ms = a.delay_ms > 0 ? a.delay_ms : 2000;
    S.fault.code = a.code;
    snprintf(S.fault.message, sizeof S.fault.message, "%s",
             a.message ? a.message : "injected business error: the service refused the call");
    return json_pack("{s:b, s:s, s:I, s:I, s:I, s:s}", "ok", 1, "kind", a.kind, "count", (json_int_t)a.count,
                     "delay_ms", (json_int_t)S.fault.delay_ms, "code", (json_int_t)a.code, "message",
                     S.fault.message);
}

/* Takes one use of the armed fault for an SSM call: f becomes a copy with its own body (kind ""
 * when none is armed), and the fault is counted. */
void dev_take_fault(dev_fault *f)
{
    memset(f, 0, sizeof *f);
    if (S.fault.remaining <= 0) return;
    *f = S.fault;
    f->body = S.fault.body ? strdup(S.fault.body) : NULL;
    if (--S.fault.remaining == 0) {
        S.fault.kind[0] = '\0';
        free(S.fault.body);
        S.fault.body = NULL;
    }
    S.faulted++;
}

/* ---- answering a faulted call (without S.mu) ------------------------------------------------ */

/* Sleeps ms milliseconds, or less when the server is stopping. */
void dev_sleep_ms(long ms)
{
    while (ms > 0 && !atomic_load(&dev_stopping)) {
        long step = ms < 50 ? ms : 50;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static enum MHD_Result dev_header_line(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    FILE *f = cls;
    fprintf(f, "%s: %s; ", key ? key : "", value ? value : "");
    return MHD_YES;
}

/* Writes the raw request line's URI as sent, then in lower case (the two hex digits after each
 * '%') and with '+' for each %20. */
static void dev_echo_uri(FILE *f, const char *method, const char *uri)
{
    fprintf(f, "bad request: %s %s; lower: ", method, uri);
    for (const char *p = uri; *p; p++)
        fputc(p > uri && p[-1] == '%'         ? tolower((unsigned char)*p)
              : (p > uri + 1 && p[-2] == '%') ? tolower((unsigned char)*p)
                                              : *p,
              f);
    fputs("; form: ", f);
    for (const char *p = uri; *p; p++) {
        if (strncmp(p, "%20", 3) == 0) {
            fputc('+', f);
            p += 2;
        } else {
            fputc(*p, f);
        }
    }
}

/* The echo fault's message: the request quoted back whole, as a careless service or a proxy
 * does in its errors - the raw request line (percent-encoded, as sent, then in lower case and
 * with '+' for a space), the decoded parameters, every header and the body, as is and once more
 * JSON-escaped (with \/). Secrets included: that is the point. NULL when out of memory. */
static char *dev_echo_message(struct MHD_Connection *c, const char *method, const dev_req *rq)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) return NULL;
    dev_echo_uri(f, method, rq->uri ? rq->uri : "");
    fputs("; args: ", f);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, dev_header_line, f);
    fputs("headers: ", f);
    MHD_get_connection_values(c, MHD_HEADER_KIND, dev_header_line, f);
    fprintf(f, "body: %.*s; escaped: ", (int)(rq->body ? rq->len : 0), rq->body ? rq->body : "");
    json_t *b = json_stringn(rq->body ? rq->body : "", rq->body ? rq->len : 0);
    char *esc = b ? json_dumps(b, JSON_ENCODE_ANY | JSON_ESCAPE_SLASH) : NULL;
    if (esc != NULL) fputs(esc, f);
    free(esc);
    json_decref(b);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* The truncated fault: a Content-Length of the whole body, half of it sent, then the connection
 * is closed. */
typedef struct dev_partial {
    char *text;
    size_t len;
} dev_partial;

static ssize_t dev_partial_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    dev_partial *p = cls;
    size_t half = p->len / 2;
    if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = half - (size_t)pos < max ? half - (size_t)pos : max;
    memcpy(buf, p->text + pos, n);
    return (ssize_t)n;
}

static void dev_partial_free(void *cls)
{
    dev_partial *p = cls;
    free(p->text);
    free(p);
}

/* Sends j (stolen) cut in half. */
static enum MHD_Result dev_send_truncated(struct MHD_Connection *c, json_t *j)
{
    dev_partial *p = calloc(1, sizeof *p);
    if (p != NULL) p->text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (p == NULL || p->text == NULL) {
        if (p) free(p);
        return MHD_NO;
    }
    p->len = strlen(p->text);
    struct MHD_Response *r =
        MHD_create_response_from_callback(p->len, 1024, dev_partial_read, p, dev_partial_free);
    if (r == NULL) {
        dev_partial_free(p);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result dev_send_echo(struct MHD_Connection *c, const dev_fault *f, int ee, const char *method,
                                     const dev_req *rq)
{
    char *m = dev_echo_message(c, method, rq);
    if (m == NULL) return MHD_NO;
    json_t *j = dev_failure(ee, f->code, m);
    free(m);
    return dev_send_json(c, 200, j);
}

/* Answers an SSM call with f, a fault other than slow; the call changes no token. */
enum MHD_Result dev_send_fault(struct MHD_Connection *c, const dev_fault *f, int ee, long ttl,
                               const char *method, const dev_req *rq)
{
    if (strcmp(f->kind, "drop") == 0) return MHD_NO;
    if (strcmp(f->kind, "raw") == 0)
        return dev_send_text(c, (unsigned)f->status, "application/json", f->body ? f->body : "");
    if (strcmp(f->kind, "echo") == 0) return dev_send_echo(c, f, ee, method, rq);
    if (strcmp(f->kind, "http500") == 0)
        return dev_send_text(c, 500, "text/html",
                             "<!DOCTYPE html><html><head><title>Server Error (500)</title></head>"
                             "<body><h1>Server Error (500)</h1></body></html>");
    if (strcmp(f->kind, "html") == 0)
        return dev_send_text(c, 200, "text/html; charset=utf-8",
                             "<!DOCTYPE html><html><head><title>Login</title></head>"
                             "<body><h1>Please log in</h1></body></html>");
    if (strcmp(f->kind, "business") == 0) return dev_send_json(c, 200, dev_failure(ee, f->code, f->message));
    /* truncated: a grant that looks real, cut in the middle */
    dev_token fake = {.expires_at = time(NULL) + ttl};
    dev_random_hex(fake.access, DEV_TOKEN_CHARS);
    return dev_send_truncated(c, dev_grant(ee, &fake));
}
