/* SPDX-License-Identifier: MIT */
/* test_config.c - settings: names, defaults, checks, both file styles, the environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bkoauth.h"
#include "internal.h"

static char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/bkoauth-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static bkoauth_code load_text(bkoauth_config *c, const char *text, bkoauth_error *e)
{
    char *path = write_file(text);
    bkoauth_code rc = bkoauth_config_load_file(c, path, e);
    unlink(path);
    return rc;
}

/* The version in its three forms agrees, and the codes keep their numbers (ABI). */
static void test_version_and_codes(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", BKOAUTH_VERSION_MAJOR, BKOAUTH_VERSION_MINOR,
             BKOAUTH_VERSION_PATCH);
    assert_string_equal(BKOAUTH_VERSION_STRING, want);
    assert_string_equal(bkoauth_version(), want);
    assert_int_equal(BKOAUTH_VERSION_NUM,
                     (BKOAUTH_VERSION_MAJOR << 16) | (BKOAUTH_VERSION_MINOR << 8) | BKOAUTH_VERSION_PATCH);
    assert_int_equal(BKOAUTH_E_TOKEN_API, 1);
    assert_int_equal(BKOAUTH_E_NOMEM, 7);
    assert_int_equal(BKOAUTH_LOG_DEBUG, 3);
    assert_string_equal(bkoauth_code_name((bkoauth_code)7), "OutOfMemory");
}

static void test_defaults(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    assert_null(bkoauth_config_get(c, "OAUTH_API_URL"));
    assert_string_equal(bkoauth_config_get(c, "OAUTH_COOKIES_PARAMS"), "{}");
    assert_string_equal(bkoauth_config_get(c, "RUN_MODE"), "DEVELOP");
    assert_string_equal(bkoauth_config_get(c, "EXPIRES_SECONDS"), "86400");
    assert_string_equal(bkoauth_config_get(c, "BKOAUTH_DATABASE_URL"), "sqlite:bkoauth.db");
    assert_string_equal(bkoauth_config_get(c, "BKOAUTH_TIMEOUT_MS"), "10000");
    assert_string_equal(bkoauth_config_get(c, "BKOAUTH_CACHE_SECONDS"), "10");
    assert_null(bkoauth_config_get(c, "NOT_A_SETTING"));
    bk_settings s;
    bkoauth_error e;
    assert_int_equal(settings_from_config(c, &s, &e), BKOAUTH_OK);
    assert_null(s.api_url);
    assert_string_equal(s.env_name, "test");
    assert_int_equal(s.expires_seconds, 86400);
    assert_int_equal(s.need_new_token, 1);
    assert_int_equal(s.protocol, BK_PROTO_IEOD);
    assert_int_equal(s.store_kind, BK_STORE_SQLITE);
    assert_string_equal(s.database_path, "bkoauth.db");
    assert_int_equal(s.db_local_time, 0);
    assert_int_equal(s.timeout_ms, 10000);
    assert_int_equal(s.tls_verify, 1);
    assert_int_equal(s.log_level, BKOAUTH_LOG_WARNING);
    assert_int_equal(s.cache_seconds, 10);
    assert_int_equal(s.cookies_params.count, 0);
    assert_string_equal(s.oauth_params_json, "{}");
    settings_clear(&s);
    bkoauth_config_free(c);
}

static void test_seed_django_snippet_verbatim(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    const char *seed = "# 蓝鲸 SSM 平台访问地址\n"
                       "OAUTH_API_URL = 'http://bkssmee.xxx.com'\n"
                       "OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}\n";
    assert_int_equal(load_text(c, seed, &e), BKOAUTH_OK);
    bk_settings s;
    assert_int_equal(settings_from_config(c, &s, &e), BKOAUTH_OK);
    assert_string_equal(s.api_url, "http://bkssmee.xxx.com");
    assert_int_equal(s.cookies_params.count, 1);
    assert_string_equal(s.cookies_params.items[0].key, "bk_token");
    assert_string_equal(s.cookies_params.items[0].value, "bk_token");
    settings_clear(&s);
    bkoauth_config_free(c);
}

static void test_file_styles(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    const char *text = "\n"
                       "  # a comment\n"
                       "export APP_CODE=my-app\n"
                       "SECRET_KEY = \"s3cr\\\"et\"   # trailing comment\n"
                       "RUN_MODE = PRODUCT\n"
                       "OAUTH_NEED_NEW_TOKEN = False\n"
                       "OAUTH_API_URL = https://ssm.example.com/ \r\n"
                       "OAUTH_PARAMS = {\n"
                       "    'region': \"it's # not a comment\",  # a comment\n"
                       "    'n': 3, 'ok': True, 'none': None,  # a comment after the last comma\n"
                       "}\n"
                       "BKAUTH_BACKEND_TYPE = 'bk_token'\n"
                       "APIGW_PUBLIC_KEY = None\n";
    assert_int_equal(load_text(c, text, &e), BKOAUTH_OK);
    bk_settings s;
    assert_int_equal(settings_from_config(c, &s, &e), BKOAUTH_OK);
    assert_string_equal(s.app_code, "my-app");
    assert_string_equal(s.app_secret, "s3cr\"et");
    assert_string_equal(s.env_name, "prod");
    assert_int_equal(s.need_new_token, 0);
    assert_string_equal(s.api_url, "https://ssm.example.com");
    assert_int_equal(s.protocol, BK_PROTO_EE);
    assert_null(s.apigw_public_key);
    assert_int_equal(s.oauth_params.count, 4);
    assert_string_equal(s.oauth_params.items[0].key, "region");
    assert_string_equal(s.oauth_params.items[0].value, "it's # not a comment");
    assert_string_equal(s.oauth_params.items[1].value, "3");
    assert_string_equal(s.oauth_params.items[2].value, "True");
    assert_string_equal(s.oauth_params.items[3].value, "None");
    assert_non_null(strstr(s.oauth_params_json, "\"n\":3"));
    settings_clear(&s);
    bkoauth_config_free(c);
}

static void expect_file_error(const char *text, const char *line_tag, const char *words)
{
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    char *path = write_file(text);
    assert_int_equal(bkoauth_config_load_file(c, path, &e), BKOAUTH_E_CONFIG);
    assert_int_equal(e.code, BKOAUTH_E_CONFIG);
    char want[128];
    snprintf(want, sizeof want, "%s:%s:", path, line_tag);
    if (strstr(e.message, want) == NULL || strstr(e.message, words) == NULL)
        fail_msg("message '%s' lacks '%s' or '%s'", e.message, want, words);
    unlink(path);
    bkoauth_config_free(c);
}

static void test_file_errors_name_file_and_line(void **state)
{
    (void)state;
    expect_file_error("APP_CODE = a\nNO_EQUALS_HERE\n", "2", "NAME = value");
    expect_file_error("\n\nEXPIRES_SECONDS = soon\n", "3", "EXPIRES_SECONDS");
    expect_file_error("OAUTH_API_URL = 'http://x\n", "1", "quote");
    expect_file_error("OAUTH_COOKIES_PARAMS = {'bk_token': \n\n", "1", "never closed");
    expect_file_error("OAUTH_COOKIES_PARAMS = {'bk_token': 1}\n", "1", "not a string");
    expect_file_error("OAUTH_APIURL = 'http://x'\n", "1", "OAUTH_API_URL"); /* did you mean */
    expect_file_error("APP_CODE = 'a' junk\n", "1", "unexpected text after the value");
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(bkoauth_config_load_file(c, "/nonexistent/bkoauth.conf", &e), BKOAUTH_E_CONFIG);
    assert_non_null(strstr(e.message, "/nonexistent/bkoauth.conf"));
    assert_non_null(strstr(e.message, "No such file"));
    bkoauth_config_free(c);
}

/* The settings file reads literals only, as Django would see them (issue 11): a prefix that is
 * not text (b'', f''), a name, a call or any other expression is a ConfigError naming the line;
 * what Python allows in a literal is fine. */
static void test_file_literals_only(void **state)
{
    (void)state;
    expect_file_error("SECRET_KEY = b'x'\n", "1", "bytes");
    expect_file_error("\nSECRET_KEY = f'x'\n", "2", "f-string");
    expect_file_error("SECRET_KEY = Rb'x'\n", "1", "bytes");
    expect_file_error("SECRET_KEY = os.environ.get('X')\n", "1", "os.environ.get is a Python expression");
    expect_file_error("SECRET_KEY = os.environ['X']\n", "1", "Python expression");
    expect_file_error("APP_CODE = settings.APP_CODE\n", "1", "Python expression");
    expect_file_error("APP_CODE = 'a' + 'b'\n", "1", "unexpected text after the value");
    expect_file_error("APP_CODE = x if y else z\n", "1", "not a Python literal");
    expect_file_error("APP_CODE = ('a', 'b')\n", "1", "tuple");
    expect_file_error("APP_CODE = ['a']\n", "1", "not a list");
    expect_file_error("APP_CODE = {'a': 'b'}\n", "1", "not a dict");
    expect_file_error("OAUTH_PARAMS = {'a', 'b'}\n", "1", "a set");
    expect_file_error("OAUTH_PARAMS = {'a': os.sep}\n", "1", "os.sep is a Python expression");
    expect_file_error("OAUTH_PARAMS = {1: 'a'}\n", "1", "key must be a string");
    expect_file_error("OAUTH_PARAMS = {\n  'a': b'x',\n}\n", "2", "bytes");
    expect_file_error("OAUTH_PARAMS = {\n  'a': [1,\n", "2", "[ is never closed");
    expect_file_error("EXPIRES_SECONDS = 99999999999999999999999\n", "1", "64-bit range");
    expect_file_error("APP_CODE = '\\N{EM DASH}'\n", "1", "\\N{...}");
    expect_file_error("APP_CODE = 007\n", "1", "leading zeros");
    expect_file_error("APIGW_PUBLIC_KEY = '''abc\n\n", "1", "never closed");
    expect_file_error("APP_CODE = 'ok'\nRUN_MODE = 'caf\xe9'\n", "2", "not UTF-8");
    expect_file_error("APP_CODE = 'a' # ok\nSECRET_KEY = \"\"\"s\"\"\" \"t\n", "2", "quote is not closed");
}

static void test_file_python_literals(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    const char *text = "\xEF\xBB\xBF# a UTF-8 file with a byte order mark\n"
                       "APP_CODE = u'my-app'  # u'' is text, as in Python 3\n"
                       "SECRET_KEY = r'a\\nb'\n" /* raw: a backslash and an n */
                       "BKAUTH_TOKEN_APP_CODE = ('tok'\n"
                       "                         '-app')  # joined, across lines\n"
                       "RUN_MODE = 'PROD' \"UCT\"\n"
                       "EXPIRES_SECONDS = 86_400\n"
                       "BKOAUTH_TIMEOUT_MS = 0x2710\n"
                       "OAUTH_NEED_NEW_TOKEN = False\n"
                       "BKAUTH_BACKEND_TYPE = 'bk_\\x74oken'\n"
                       "OAUTH_COOKIES_PARAMS = {\n"
                       "    # a comment first\n"
                       "    'bk_token': 'bk_token',  # a comment after a comma\n"
                       "    \"bk_uid\": 'bk\\u005fuid',\n"
                       "    # the trailing comma above, and a comment before the brace\n"
                       "}\n"
                       "OAUTH_PARAMS = {'n': -3, 'f': 1.50, 'ok': True, 'none': None, 'long': '''x\n"
                       "y''',}\n"
                       "APIGW_PUBLIC_KEY = \"\"\"-----BEGIN PUBLIC KEY-----\n"
                       "MIIB\n"
                       "-----END PUBLIC KEY-----\"\"\"\n"
                       "BKOAUTH_CA_FILE = None\n";
    assert_int_equal(load_text(c, text, &e), BKOAUTH_OK);
    bk_settings s;
    assert_int_equal(settings_from_config(c, &s, &e), BKOAUTH_OK);
    assert_string_equal(s.app_code, "tok-app");
    assert_string_equal(bkoauth_config_get(c, "APP_CODE"), "my-app");
    assert_string_equal(s.app_secret, "a\\nb");
    assert_string_equal(s.env_name, "prod");
    assert_int_equal(s.expires_seconds, 86400);
    assert_int_equal(s.timeout_ms, 10000);
    assert_int_equal(s.need_new_token, 0);
    assert_int_equal(s.protocol, BK_PROTO_EE);
    assert_int_equal(s.cookies_params.count, 2);
    assert_string_equal(s.cookies_params.items[1].key, "bk_uid");
    assert_string_equal(s.cookies_params.items[1].value, "bk_uid");
    assert_int_equal(s.oauth_params.count, 5);
    assert_string_equal(s.oauth_params.items[0].value, "-3");
    assert_string_equal(s.oauth_params.items[1].value, "1.5");
    assert_string_equal(s.oauth_params.items[2].value, "True");
    assert_string_equal(s.oauth_params.items[3].value, "None");
    assert_string_equal(s.oauth_params.items[4].value, "x\ny");
    assert_string_equal(s.apigw_public_key, "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----");
    assert_null(s.ca_file);
    settings_clear(&s);
    bkoauth_config_free(c);

    /* a list with a trailing comma and a comment */
    c = bkoauth_config_new();
    assert_int_equal(load_text(c, "OAUTH_PARAMS = {'l': ['a', 'b',  # last\n], 'm': 1}\n", &e),
                     BKOAUTH_E_CONFIG); /* a list inside OAUTH_PARAMS is read, and refused as a value */
    assert_non_null(strstr(e.message, "'l'"));
    bkoauth_config_free(c);
}

/* A URL's password is never shown in a message. */
static void test_url_password_masked(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(bkoauth_config_set(c, "OAUTH_API_URL", "ftp://user:pw-s3cret@host.example.com/x", &e),
                     BKOAUTH_E_CONFIG);
    assert_null(strstr(e.message, "pw-s3cret"));
    assert_non_null(strstr(e.message, "ftp://user:***@host.example.com/x"));
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_DATABASE_URL", "ftp://u:pw-s3cret@db/x", &e),
                     BKOAUTH_E_CONFIG);
    assert_null(strstr(e.message, "pw-s3cret"));
    assert_int_equal(load_text(c, "OAUTH_API_URL = 'ftp://user:p%40ss@word@host/'\n", &e), BKOAUTH_E_CONFIG);
    assert_null(strstr(e.message, "p%40ss"));
    assert_null(strstr(e.message, "word@"));
    bkoauth_config_free(c);
}

/* BKOAUTH_LOG_LEVEL off: nothing passes. */
static void test_log_level_off(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_LOG_LEVEL", "OFF", &e), BKOAUTH_OK);
    bk_settings s;
    assert_int_equal(settings_from_config(c, &s, &e), BKOAUTH_OK);
    assert_int_equal(s.log_level, BKOAUTH_LOG_OFF);
    settings_clear(&s);
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_LOG_LEVEL", "silent", &e), BKOAUTH_E_CONFIG);
    assert_non_null(strstr(e.message, "off, error, warning, info, debug"));
    bkoauth_config_free(c);
}

static void expect_bad(const char *name, const char *value)
{
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    const char *before = bkoauth_config_get(c, name);
    char *copy = before ? strdup(before) : NULL;
    if (bkoauth_config_set(c, name, value, &e) != BKOAUTH_E_CONFIG)
        fail_msg("%s = '%s' was accepted", name, value);
    assert_int_equal(e.code, BKOAUTH_E_CONFIG);
    assert_non_null(strstr(e.message, name));
    const char *after = bkoauth_config_get(c, name);
    assert_true((copy == NULL && after == NULL) ||
                (copy && after && strcmp(copy, after) == 0)); /* unchanged */
    free(copy);
    bkoauth_config_free(c);
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_bad("OAUTH_NEED_NEW_TOKEN", "maybe");
    expect_bad("BKOAUTH_TLS_VERIFY", "");
    expect_bad("EXPIRES_SECONDS", "-1");
    expect_bad("EXPIRES_SECONDS", "12abc");
    expect_bad("EXPIRES_SECONDS", "99999999999999999999999");
    expect_bad("BKOAUTH_TIMEOUT_MS", "0");
    expect_bad("BKOAUTH_TIMEOUT_MS", "600001");
    expect_bad("BKOAUTH_CACHE_SECONDS", "-5");
    expect_bad("OAUTH_API_URL", "ftp://x");
    expect_bad("OAUTH_API_URL", "bkssmee.example.com");
    expect_bad("OAUTH_API_URL", "http://");
    expect_bad("OAUTH_COOKIES_PARAMS", "{'a': ['b']}");
    expect_bad("OAUTH_COOKIES_PARAMS", "['bk_token']");
    expect_bad("OAUTH_COOKIES_PARAMS", "{bk_token: bk_token}");
    expect_bad("OAUTH_PARAMS", "{'a': {'b': 1}}");
    expect_bad("OAUTH_PARAMS", "not json");
    expect_bad("BKOAUTH_DATABASE_URL", "mysql://x");
    expect_bad("BKOAUTH_DATABASE_URL", "mysql://u@h/");
    expect_bad("BKOAUTH_DATABASE_URL", "mysql://u:p%zz@h/db");
    expect_bad("BKOAUTH_DATABASE_URL", "mysql://u@h:99999/db");
    expect_bad("BKOAUTH_DATABASE_URL", "mysql://u@h/db?ssl=1");
    expect_bad("BKOAUTH_DATABASE_URL", "mysql://@h/db");
    expect_bad("BKOAUTH_DATABASE_URL", "mariadb://u@[::1/db");
    expect_bad("BKOAUTH_DATABASE_URL", "sqlite:");
    expect_bad("BKOAUTH_DB_TIME_ZONE", "Asia/Shangai");
    expect_bad("BKOAUTH_DB_TIME_ZONE", "../../etc/passwd");
    expect_bad("BKOAUTH_DB_TIME_ZONE", "/usr/share/zoneinfo/Asia/Shanghai");
    expect_bad("BKOAUTH_DB_TIME_ZONE", "Asia");     /* a directory, not a zone */
    expect_bad("BKOAUTH_DB_TIME_ZONE", "zone.tab"); /* a file, not a zone */
    expect_bad("BKOAUTH_DB_TIME_ZONE", "");
    expect_bad("BKOAUTH_LOG_LEVEL", "verbose");
    expect_bad("APP_CODE", "a\x01b");
    bkoauth_error e;
    bkoauth_config *c = bkoauth_config_new();
    assert_int_equal(bkoauth_config_set(c, "NO_SUCH", "1", &e), BKOAUTH_E_CONFIG);
    assert_non_null(strstr(e.message, "NO_SUCH"));
    assert_int_equal(bkoauth_config_set(NULL, "APP_CODE", "1", &e), BKOAUTH_E_INVALID);
    assert_int_equal(bkoauth_config_set(c, NULL, "1", &e), BKOAUTH_E_INVALID);
    bkoauth_config_free(c);
}

static void test_good_values(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    const char *ok[][2] = {{"OAUTH_NEED_NEW_TOKEN", "True"},
                           {"OAUTH_NEED_NEW_TOKEN", "NO"},
                           {"BKOAUTH_TLS_VERIFY", "0"},
                           {"BKOAUTH_TLS_VERIFY", "Yes"},
                           {"BKOAUTH_DB_TIME_ZONE", "local"},
                           {"BKOAUTH_DB_TIME_ZONE", "utc"},
                           {"BKOAUTH_DB_TIME_ZONE", "Asia/Shanghai"},
                           {"BKOAUTH_DB_TIME_ZONE", "America/New_York"},
                           {"BKOAUTH_DB_TIME_ZONE", "Etc/GMT-8"},
#ifdef BKOAUTH_WITH_MYSQL
                           {"BKOAUTH_DATABASE_URL", "mysql://u:p%40ss%3Aw%2Frd@127.0.0.1:3306/db"},
                           {"BKOAUTH_DATABASE_URL", "mariadb://u@localhost/db"},
                           {"BKOAUTH_DATABASE_URL", "mysql://u:raw@pass@[::1]:3307/my%2Ddb"},
#endif
                           {"BKOAUTH_DATABASE_URL", "postgresql://u@127.0.0.1:5432/db"},
                           {"BKOAUTH_DATABASE_URL", "sqlite:/var/lib/x.db"},
                           {"OAUTH_COOKIES_PARAMS", "{\"bk_token\": \"bk_token\", \"bk_uid\": \"uid\"}"},
                           {"BKOAUTH_CACHE_SECONDS", "0"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bkoauth_error e;
        if (bkoauth_config_set(c, ok[i][0], ok[i][1], &e) != BKOAUTH_OK)
            fail_msg("%s = %s refused: %s", ok[i][0], ok[i][1], e.message);
    }
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_CACHE_SECONDS", NULL, NULL), BKOAUTH_OK); /* reset */
    assert_string_equal(bkoauth_config_get(c, "BKOAUTH_CACHE_SECONDS"), "10");
    bkoauth_config_free(c);
}

static void test_secret_never_in_message(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(bkoauth_config_set(c, "SECRET_KEY", "topsecret\x02value", &e), BKOAUTH_E_CONFIG);
    assert_null(strstr(e.message, "topsecret"));
    assert_int_equal(load_text(c, "SECRET_KEY = 'topsecret' extra\n", &e), BKOAUTH_E_CONFIG);
    assert_null(strstr(e.message, "topsecret"));
    bkoauth_config_free(c);
}

static void test_token_overrides_and_env(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(load_text(c, "APP_CODE = file-app\nSECRET_KEY = file-secret\nRUN_MODE = PRODUCT\n", &e),
                     BKOAUTH_OK);
    setenv("APP_CODE", "env-app", 1);
    setenv("BKAUTH_TOKEN_SECRET_KEY", "token-secret", 1);
    assert_int_equal(bkoauth_config_load_env(c, &e), BKOAUTH_OK);
    bk_settings s;
    assert_int_equal(settings_from_config(c, &s, &e), BKOAUTH_OK);
    assert_string_equal(s.app_code, "env-app");        /* environment wins over the file */
    assert_string_equal(s.app_secret, "token-secret"); /* BKAUTH_TOKEN_* wins for SSM calls */
    assert_string_equal(s.env_name, "prod");
    settings_clear(&s);
    setenv("OAUTH_PARAMS", "{'broken': ", 1);
    assert_int_equal(bkoauth_config_load_env(c, &e), BKOAUTH_E_CONFIG);
    assert_non_null(strstr(e.message, "environment variable OAUTH_PARAMS"));
    unsetenv("OAUTH_PARAMS");
    unsetenv("APP_CODE");
    unsetenv("BKAUTH_TOKEN_SECRET_KEY");
    bkoauth_config_free(c);
}

/* An empty environment variable leaves the setting as the file set it (the Python library read
 * only a non-empty value from the environment). */
static void test_empty_env_leaves_the_file_setting(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(load_text(c,
                               "OAUTH_API_URL = 'http://bkssmee.example.com'\nAPP_CODE = file-app\n"
                               "OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}\nEXPIRES_SECONDS = 600\n",
                               &e),
                     BKOAUTH_OK);
    setenv("OAUTH_API_URL", "", 1);
    setenv("APP_CODE", "", 1);
    setenv("OAUTH_COOKIES_PARAMS", "", 1);
    setenv("EXPIRES_SECONDS", "", 1);
    setenv("BKOAUTH_DB_TIME_ZONE", "", 1);
    assert_int_equal(bkoauth_config_load_env(c, &e), BKOAUTH_OK);
    assert_string_equal(bkoauth_config_get(c, "OAUTH_API_URL"), "http://bkssmee.example.com");
    assert_string_equal(bkoauth_config_get(c, "APP_CODE"), "file-app");
    /* a dict of the file is kept as the JSON it reads as */
    assert_string_equal(bkoauth_config_get(c, "OAUTH_COOKIES_PARAMS"), "{\"bk_token\":\"bk_token\"}");
    assert_string_equal(bkoauth_config_get(c, "EXPIRES_SECONDS"), "600");
    assert_string_equal(bkoauth_config_get(c, "BKOAUTH_DB_TIME_ZONE"), "UTC");
    setenv("APP_CODE", "env-app", 1); /* a value still wins */
    assert_int_equal(bkoauth_config_load_env(c, &e), BKOAUTH_OK);
    assert_string_equal(bkoauth_config_get(c, "APP_CODE"), "env-app");
    unsetenv("OAUTH_API_URL");
    unsetenv("APP_CODE");
    unsetenv("OAUTH_COOKIES_PARAMS");
    unsetenv("EXPIRES_SECONDS");
    unsetenv("BKOAUTH_DB_TIME_ZONE");
    bkoauth_config_free(c);
}

/* Built without MySQL (BKOAUTH_WITH_MYSQL=OFF), a MySQL URL is a ConfigError saying so. */
static void test_mysql_url_without_mysql(void **state)
{
    (void)state;
#ifdef BKOAUTH_WITH_MYSQL
    skip();
#else
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_DATABASE_URL", "mysql://u:pw@127.0.0.1/db", &e),
                     BKOAUTH_E_CONFIG);
    assert_non_null(strstr(e.message, "built without MySQL"));
    assert_null(strstr(e.message, "pw@"));
    bkoauth_config_free(c);
#endif
}

/* A MySQL URL's password never shows in a message. */
static void test_mysql_url_password_hidden(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_DATABASE_URL", "mysql://u:topsecret@h", &e),
                     BKOAUTH_E_CONFIG);
    assert_null(strstr(e.message, "topsecret"));
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_DATABASE_URL", "mysql://u:top%zzsecret@h/db", &e),
                     BKOAUTH_E_CONFIG);
    assert_null(strstr(e.message, "secret"));
    bk_mysql_url u;
    assert_int_equal(mysql_url_parse("mysql://u%40x:p%40ss%3Aw%2Frd@[::1]:3307/my%2Ddb", &u, &e), BKOAUTH_OK);
    assert_string_equal(u.user, "u@x");
    assert_string_equal(u.password, "p@ss:w/rd");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 3307);
    assert_string_equal(u.database, "my-db");
    mysql_url_clear(&u);
    assert_int_equal(mysql_url_parse("mariadb://db.example.com/tokens", &u, &e), BKOAUTH_OK);
    assert_null(u.user);
    assert_null(u.password);
    assert_int_equal(u.port, 3306);
    mysql_url_clear(&u);
    bkoauth_config_free(c);
}

static void test_parse_text_junk(void **state)
{
    (void)state;
    /* never crash on junk; every outcome is OK or ConfigError */
    const char *junk[] = {"=",
                          "==",
                          "A",
                          "{",
                          "'",
                          "X = {'a': '\\",
                          "X = \"\\\"",
                          "\xff\xfe = 1",
                          "APP_CODE = {{{{{{{{",
                          "APP_CODE = }",
                          "APP_CODE = ['a'",
                          "export",
                          "export ="};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        bkoauth_config *c = bkoauth_config_new();
        bkoauth_error e;
        bkoauth_code rc = config_parse_text(c, junk[i], strlen(junk[i]), "junk", &e);
        assert_true(rc == BKOAUTH_OK || rc == BKOAUTH_E_CONFIG);
        bkoauth_config_free(c);
    }
    char nul[] = "APP_CODE = a\0b\n";
    bkoauth_config *c = bkoauth_config_new();
    assert_int_equal(config_parse_text(c, nul, sizeof nul - 1, "nul", NULL), BKOAUTH_E_CONFIG);
    bkoauth_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_codes),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_seed_django_snippet_verbatim),
        cmocka_unit_test(test_file_styles),
        cmocka_unit_test(test_file_errors_name_file_and_line),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_secret_never_in_message),
        cmocka_unit_test(test_token_overrides_and_env),
        cmocka_unit_test(test_empty_env_leaves_the_file_setting),
        cmocka_unit_test(test_mysql_url_password_hidden),
        cmocka_unit_test(test_mysql_url_without_mysql),
        cmocka_unit_test(test_parse_text_junk),
        cmocka_unit_test(test_file_literals_only),
        cmocka_unit_test(test_file_python_literals),
        cmocka_unit_test(test_url_password_masked),
        cmocka_unit_test(test_log_level_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
