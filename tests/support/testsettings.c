/* SPDX-License-Identifier: MIT */
/* testsettings.c - see testsettings.h. */
#include "testsettings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const *test_settings_base(test_settings *s, const char *api_url, const char *app_code,
                                      const char *secret, const char *db_url)
{
    memset(s, 0, sizeof *s);
    test_settings_set(s, "OAUTH_API_URL", api_url);
    test_settings_set(s, "APP_CODE", app_code);
    test_settings_set(s, "SECRET_KEY", secret);
    test_settings_set(s, "OAUTH_COOKIES_PARAMS", "{\"bk_token\": \"bk_token\"}");
    test_settings_set(s, "BKOAUTH_DATABASE_URL", db_url);
    return test_settings_set(s, "BKOAUTH_LOG_LEVEL", "error");
}

const char *const *test_settings_set(test_settings *s, const char *name, const char *value)
{
    int i = 0;
    while (i < s->pairs && strcmp(s->kv[2 * i], name) != 0)
        i++;
    if (i == s->pairs) {
        if (s->pairs == TEST_SETTINGS_MAX) {
            fprintf(stderr, "test_settings_set: more than %d settings (%s)\n", TEST_SETTINGS_MAX, name);
            abort();
        }
        s->pairs++;
    }
    s->kv[2 * i] = name;
    s->kv[2 * i + 1] = value;
    s->kv[2 * s->pairs] = NULL;
    return s->kv;
}

const char *const *test_settings_set_all(test_settings *s, const char *const *extra)
{
    for (int i = 0; extra != NULL && extra[i] != NULL; i += 2)
        test_settings_set(s, extra[i], extra[i + 1]);
    return s->kv;
}

bkoauth_client *test_settings_client(const char *const *kv, bkoauth_error *e)
{
    bkoauth_config *cfg = bkoauth_config_new();
    if (cfg == NULL) {
        snprintf(e->message, sizeof e->message, "out of memory");
        return NULL;
    }
    for (int i = 0; kv != NULL && kv[i] != NULL; i += 2)
        if (bkoauth_config_set(cfg, kv[i], kv[i + 1], e) != BKOAUTH_OK) {
            char why[sizeof e->message];
            snprintf(why, sizeof why, "%s", e->message);
            snprintf(e->message, sizeof e->message, "%s: %.400s", kv[i], why);
            bkoauth_config_free(cfg);
            return NULL;
        }
    bkoauth_client *c = bkoauth_client_new(cfg, e);
    bkoauth_config_free(cfg);
    return c;
}
