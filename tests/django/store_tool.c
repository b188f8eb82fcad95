/* SPDX-License-Identifier: MIT */
/* store_tool.c - the C side of the Django compatibility test: reads and writes the token table
 * through libbkoauth's store, as a C service would.
 *
 *   store_tool DATABASE_URL UTC|local put ENV USER|- ACCESS REFRESH EXPIRES_UNIX CREATED_UNIX
 *   store_tool DATABASE_URL UTC|local get ENV USER|-   -> "ACCESS|REFRESH|EXPIRES_UNIX|CREATED_UNIX" */
#include "internal.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A whole decimal number, or -1 with a message. */
static int number(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        fprintf(stderr, "store_tool: '%s' is not a whole number\n", text);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: store_tool DATABASE_URL UTC|local put|get ENV USER|- ...\n");
        return 2;
    }
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_error e;
    bk_settings s;
    bk_logger logger = {log_stderr, NULL, BKOAUTH_LOG_WARNING};
    if (bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", argv[1], &e) ||
        bkoauth_config_set(cfg, "BKOAUTH_DB_TIME_ZONE", argv[2], &e) || settings_from_config(cfg, &s, &e)) {
        fprintf(stderr, "store_tool: %s\n", e.message);
        return 1;
    }
    store *st = store_open(&s, &logger, &e);
    if (st == NULL) {
        fprintf(stderr, "store_tool: %s\n", e.message);
        return 1;
    }
    const char *env = argv[4], *user = strcmp(argv[5], "-") == 0 ? NULL : argv[5];
    int status = 0;
    int64_t expires = 0, created = 0;
    if (strcmp(argv[3], "put") == 0 && argc == 10) {
        if (number(argv[8], &expires) != 0 || number(argv[9], &created) != 0) {
            status = 2;
            goto done;
        }
        bkoauth_token *t = token_make(argv[6], argv[7], "", env, user, expires, created);
        if (t == NULL || store_put(st, t, &e) != BKOAUTH_OK) {
            fprintf(stderr, "store_tool: put: %s\n", e.message);
            status = 1;
        }
        bkoauth_token_free(t);
    } else if (strcmp(argv[3], "get") == 0 && argc == 6) {
        bkoauth_token *t = NULL;
        if (store_get(st, env, user, &t, &e) != BKOAUTH_OK) {
            fprintf(stderr, "store_tool: get: %s\n", e.message);
            status = 1;
        } else {
            printf("%s|%s|%lld|%lld\n", t->access_token, t->refresh_token, (long long)t->expires,
                   (long long)t->created_at);
        }
        bkoauth_token_free(t);
    } else {
        fprintf(stderr, "store_tool: bad command\n");
        status = 2;
    }
done:
    store_close(st);
    settings_clear(&s);
    bkoauth_config_free(cfg);
    return status;
}
