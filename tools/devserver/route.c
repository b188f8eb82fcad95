/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: the request handler - reads a request's body and passes the request to the
 * /__dev/ endpoints (dev_api.c) or to the SSM protocols (protocols.c). The top of the files
 * below main.c: nothing it calls calls back up. */
#include "devserver.h"

#include <stdlib.h>
#include <string.h>

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
