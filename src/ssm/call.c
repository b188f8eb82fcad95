/* SPDX-License-Identifier: MIT */
/* call.c - one SSM call as a protocol builds it (ssm_call of ssm_int.h) and what the two
 * protocols share to build it; ieod.c and ee.c call it, ssm.c dispatches to them. */
#include "ssm_int.h"

#include <string.h>

/* A buffer that may hold a secret, wiped and freed. */
static void wipe_free(bk_buf *b)
{
    b->secret = 1;
    buf_free(b);
}

void ssm_call_clear(ssm_call *call)
{
    if (call == NULL) return;
    wipe_free(&call->query);
    wipe_free(&call->body);
    for (size_t i = 0; i < call->nheaders; i++)
        bk_wipe_free(call->headers[i]);
    memset(call, 0, sizeof *call);
}

int ssm_call_header(ssm_call *call, const char *name, const char *value)
{
    if (call->nheaders >= sizeof call->headers / sizeof call->headers[0]) return -1;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return -1; /* never a header injection; ssm.c rejects such settings earlier */
    bk_buf b = {NULL, 0, 0, 0, 1};
    buf_printf(&b, "%s: %s", name, value);
    if (b.oom) {
        wipe_free(&b);
        return -1;
    }
    call->headers[call->nheaders++] = b.data;
    return 0;
}

int ssm_kv_has(const bk_kvlist *credentials, const char *key)
{
    if (credentials == NULL) return 0;
    for (size_t i = 0; i < credentials->count; i++)
        if (bk_streq(credentials->items[i].key, key)) return 1;
    return 0;
}
