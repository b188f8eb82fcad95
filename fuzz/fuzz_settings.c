/* SPDX-License-Identifier: MIT */
/* fuzz_settings.c - libFuzzer target for the settings file parser and every setting's check.
 * Byte 0 picks the mode: even parses the rest as a settings file; odd sets the rest as the value
 * of the setting named by byte 1. Invariants: the result is OK or ConfigError with a message;
 * a rejected set leaves the setting as it was; settings_from_config never fails on a set the
 * checks accepted (bar out of memory). */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const NAMES[] = {"OAUTH_API_URL",
                                    "OAUTH_COOKIES_PARAMS",
                                    "OAUTH_PARAMS",
                                    "APP_CODE",
                                    "SECRET_KEY",
                                    "BKAUTH_TOKEN_APP_CODE",
                                    "BKAUTH_TOKEN_SECRET_KEY",
                                    "RUN_MODE",
                                    "EXPIRES_SECONDS",
                                    "OAUTH_NEED_NEW_TOKEN",
                                    "BKAUTH_BACKEND_TYPE",
                                    "APIGW_PUBLIC_KEY",
                                    "BKOAUTH_DATABASE_URL",
                                    "BKOAUTH_DB_TIME_ZONE",
                                    "BKOAUTH_TIMEOUT_MS",
                                    "BKOAUTH_TLS_VERIFY",
                                    "BKOAUTH_CA_FILE",
                                    "BKOAUTH_LOG_LEVEL",
                                    "BKOAUTH_CACHE_SECONDS"};

static void check(int cond)
{
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    if ((data[0] & 1) == 0) {
        bkoauth_code rc = config_parse_text(c, (const char *)data + 1, size - 1, "fuzz", &e);
        check(rc == BKOAUTH_OK || rc == BKOAUTH_E_CONFIG || rc == BKOAUTH_E_NOMEM);
        check(rc == BKOAUTH_OK || e.message[0] != '\0');
    } else {
        const char *name = NAMES[data[1] % (sizeof NAMES / sizeof NAMES[0])];
        char *value = malloc(size - 1);
        memcpy(value, data + 2, size - 2);
        value[size - 2] = '\0';
        const char *before = bkoauth_config_get(c, name);
        bkoauth_code rc = bkoauth_config_set(c, name, value, &e);
        check(rc == BKOAUTH_OK || rc == BKOAUTH_E_CONFIG);
        if (rc != BKOAUTH_OK) check(bkoauth_config_get(c, name) == before && e.message[0] != '\0');
        free(value);
    }
    bk_settings s;
    bkoauth_code rc = settings_from_config(c, &s, &e);
    check(rc == BKOAUTH_OK || rc == BKOAUTH_E_NOMEM);
    if (rc == BKOAUTH_OK) settings_clear(&s);
    bkoauth_config_free(c);
    return 0;
}
