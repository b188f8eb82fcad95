/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: the answers of the two SSM protocols in their shapes (docs/PROTOCOL.md): a
 * grant and a business failure, each as ieod (result, code, message, data) or as ee (code,
 * message, data). Used by the protocols and by the faults that answer in their place. */
#include "devserver.h"

#include <string.h>

/* A business failure in the protocol's shape. */
json_t *dev_failure(int ee, long code, const char *message)
{
    json_t *m = dev_text(message, strlen(message));
    if (ee) return json_pack("{s:I, s:o, s:n}", "code", (json_int_t)code, "message", m, "data");
    return json_pack("{s:b, s:I, s:o, s:n}", "result", 0, "code", (json_int_t)code, "message", m, "data");
}

/* A success with t's grant in the protocol's shape. */
json_t *dev_grant(int ee, const dev_token *t)
{
    json_t *data =
        json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s}}", "access_token", t->access, "refresh_token",
                  t->refresh, "expires_in", (json_int_t)(t->expires_at - time(NULL)), "scope", "", "identity",
                  "username", t->username ? t->username : "", "user_type", t->username ? "bkuser" : "app");
    if (data == NULL) return NULL;
    if (ee) return json_pack("{s:i, s:s, s:o}", "code", 0, "message", "", "data", data);
    return json_pack("{s:b, s:i, s:s, s:o}", "result", 1, "code", 0, "message", "", "data", data);
}
