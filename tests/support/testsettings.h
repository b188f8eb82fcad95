/* SPDX-License-Identifier: MIT */
/* testsettings.h - a test client's settings as NAME, VALUE pairs: the base every test starts
 * from (a devserver, an APP, a store, quiet logs), then what the test sets on top. Used by the
 * integration tests and the benchmarks. */
#ifndef BKOAUTH_TESTSETTINGS_H
#define BKOAUTH_TESTSETTINGS_H

#include "bkoauth.h"

#define TEST_SETTINGS_MAX 24 /* pairs */

typedef struct test_settings {
    const char *kv[2 * TEST_SETTINGS_MAX + 1]; /* NAME, VALUE, ..., NULL */
    int pairs;
} test_settings;

/* Starts s with OAUTH_API_URL api_url, APP_CODE app_code, SECRET_KEY secret,
 * OAUTH_COOKIES_PARAMS {"bk_token": "bk_token"}, BKOAUTH_DATABASE_URL db_url and
 * BKOAUTH_LOG_LEVEL error. The strings are borrowed: they must outlive s's use. Returns s->kv. */
const char *const *test_settings_base(test_settings *s, const char *api_url, const char *app_code,
                                      const char *secret, const char *db_url);

/* Sets name to value in s (replacing an earlier value of name); aborts past TEST_SETTINGS_MAX.
 * Borrowed like the base's. Returns s->kv. */
const char *const *test_settings_set(test_settings *s, const char *name, const char *value);

/* Sets each NAME, VALUE of extra (NULL-terminated; NULL: none). Returns s->kv. */
const char *const *test_settings_set_all(test_settings *s, const char *const *extra);

/* A client with the settings kv (NAME, VALUE, ..., NULL; e.g. a test_settings' kv); NULL with e
 * saying why (a refused setting is named). */
bkoauth_client *test_settings_client(const char *const *kv, bkoauth_error *e);

#endif
