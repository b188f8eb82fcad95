/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: what each SSM call leaves behind - the counters and the record of the last
 * call - for the /__dev/ endpoints to report (dev_api.c). The caller holds S.mu. */
#include "devserver.h"

#include <string.h>

/* ---- the counters (the caller holds S.mu) --------------------------------------------------- */

/* Counts one SSM call by protocol and by what it asks for. */
void dev_count_call(int ee, enum dev_kind kind)
{
    S.total++;
    if (ee)
        S.ee++;
    else
        S.ieod++;
    if (kind == K_APP)
        S.app_token++;
    else if (kind == K_USER)
        S.user_token++;
    else if (kind == K_REFRESH)
        S.refresh++;
}

static enum MHD_Result dev_add_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_t *k = dev_text(key, key ? strlen(key) : 0);
    const char *ks = json_string_value(k);
    if (ks != NULL) json_object_set_new(cls, ks, dev_text(value, value ? strlen(value) : 0));
    json_decref(k);
    return MHD_YES;
}

/* Records the call as S.last. */
void dev_record_last(struct MHD_Connection *c, const char *method, const char *url, const dev_req *rq)
{
    json_t *headers = json_object(), *args = json_object();
    MHD_get_connection_values(c, MHD_HEADER_KIND, dev_add_value, headers);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, dev_add_value, args);
    const char *q = rq->uri ? strchr(rq->uri, '?') : NULL;
    json_t *last =
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "method", dev_text(method, strlen(method)), "path",
                  dev_text(url, strlen(url)), "query", dev_text(q ? q + 1 : "", q ? strlen(q + 1) : 0),
                  "args", args, "body", dev_text(rq->body, rq->body ? rq->len : 0), "headers", headers);
    json_decref(S.last);
    S.last = last;
}
