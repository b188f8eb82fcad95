/* SPDX-License-Identifier: MIT */
/* src/settings/ - the settings: every NAME the library knows, from the settings file, the
 * environment or bkoauth_config_set(), checked when set and converted for the client.
 *   config.c       names, defaults, value checks, set/get and the environment (config_int.h)
 *   config_file.c  the settings file: NAME = value lines, as Django or an environment file
 *   pyliteral.c    the file's values (Python literals only) and the dict settings as JSON
 *   settings.c     the checked text turned into bk_settings (internal.h), as the client uses it
 *   proxy_url.c    a proxy URL as libcurl reads one (proxy_url.h), also for ssm/proxy.c
 *   mysql_url.c    a MySQL URL (mysql://USER:PASSWORD@HOST:PORT/DB), also for store/mysql.c
 * It stands on base/ only; ssm/ and store/ above use its URL readers. */
/* settings.c - the settings as the client works with them: settings_from_config() turns the text
 * of a bkoauth_config (checked when set, config.c) into a bk_settings of numbers, flags, lists
 * and copies. */
#include "config_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void settings_clear(bk_settings *s)
{
    bkoauth__free(s->api_url);
    kvlist_clear(&s->cookies_params);
    kvlist_clear(&s->oauth_params);
    bk_wipe_free(s->oauth_params_json);
    bkoauth__free(s->app_code);
    bk_wipe_free(s->app_secret);
    bkoauth__free(s->apigw_public_key);
    bk_wipe_free(s->database_url); /* a database URL may hold a password */
    bkoauth__free(s->database_path);
    bkoauth__free(s->ca_file);
    bkoauth__free(s->ca_path);
    bk_wipe_free(s->proxy); /* may hold a password */
    bkoauth__free(s->no_proxy);
    zone_free(s->db_zone);
    memset(s, 0, sizeof *s);
}

/* Text of an OAUTH_PARAMS value as Python's str() would write it. */
static char *scalar_text(json_t *v)
{
    if (json_is_string(v)) return bk_strdup(json_string_value(v));
    if (json_is_true(v)) return bk_strdup("True");
    if (json_is_false(v)) return bk_strdup("False");
    if (json_is_null(v)) return bk_strdup("None");
    return bkoauth__json_dump(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static bkoauth_code object_setting(const bkoauth_config *c, int i, bk_kvlist *out, char **json_out,
                                   bkoauth_error *err)
{
    char why[256];
    int oom;
    json_t *j = py_parse_object(config_value(c, i), why, sizeof why, &oom);
    if (oom) return err_nomem(err);
    if (j == NULL) return err_set(err, BKOAUTH_E_CONFIG, "%s: %s", config_settings[i].name, why);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        char *text = scalar_text(v);
        if (text == NULL || kvlist_add(out, k, text) != 0) {
            bk_wipe_free(text);
            json_decref(j);
            return err_nomem(err);
        }
        bk_wipe_free(text);
    }
    if (json_out != NULL && (*json_out = bkoauth__json_dump(j, JSON_COMPACT)) == NULL) {
        json_decref(j);
        return err_nomem(err);
    }
    json_decref(j);
    return BKOAUTH_OK;
}

/* A copy of the first n bytes of v (NULL gives NULL); counts a failed copy in *lost. */
static char *copy_of(const char *v, size_t n, int *lost)
{
    if (v == NULL) return NULL;
    char *c = bk_strndup(v, n);
    if (c == NULL) (*lost)++;
    return c;
}

static char *dup_or_null(const char *v, int *lost)
{
    return v ? copy_of(v, strlen(v), lost) : NULL;
}

/* OAUTH_API_URL without its trailing '/', NULL when unset. */
static char *api_url_of(const bkoauth_config *config, int *lost)
{
    const char *url = config_value(config, S_OAUTH_API_URL);
    if (url == NULL) return NULL;
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    return copy_of(url, n, lost);
}

/* The app's credentials, environment and protocol, and the files it names. */
static void copy_app(const bkoauth_config *config, bk_settings *out, int *lost)
{
    const char *code = config_value(config, S_BKAUTH_TOKEN_APP_CODE);
    const char *secret = config_value(config, S_BKAUTH_TOKEN_SECRET_KEY);
    out->app_code = dup_or_null(!bk_empty(code) ? code : config_value(config, S_APP_CODE), lost);
    out->app_secret = dup_or_null(!bk_empty(secret) ? secret : config_value(config, S_SECRET_KEY), lost);
    snprintf(out->env_name, sizeof out->env_name, "%s",
             bk_streq(config_value(config, S_RUN_MODE), "PRODUCT") ? "prod" : "test");
    out->protocol =
        bk_streq(config_value(config, S_BKAUTH_BACKEND_TYPE), "bk_token") ? BK_PROTO_EE : BK_PROTO_IEOD;
    const char *pem = config_value(config, S_APIGW_PUBLIC_KEY);
    out->apigw_public_key = bk_empty(pem) ? NULL : dup_or_null(pem, lost);
    const char *ca = config_value(config, S_CA_FILE);
    out->ca_file = bk_empty(ca) ? NULL : dup_or_null(ca, lost);
    const char *capath = config_value(config, S_CA_PATH);
    out->ca_path = bk_empty(capath) ? NULL : dup_or_null(capath, lost);
    out->proxy = dup_or_null(config_value(config, S_PROXY), lost);
    out->no_proxy = dup_or_null(config_value(config, S_NO_PROXY), lost);
}

/* The store BKOAUTH_DATABASE_URL names (checked when set: sqlite:, MySQL or PostgreSQL). */
static void choose_store(const bkoauth_config *config, bk_settings *out, int *lost)
{
    const char *db = config_value(config, S_DATABASE_URL);
    out->database_url = dup_or_null(db, lost);
    if (strncmp(db, "sqlite:", 7) == 0) {
        out->store_kind = BK_STORE_SQLITE;
        out->database_path = dup_or_null(db + 7, lost);
    } else if (strncmp(db, "mysql://", 8) == 0 || strncmp(db, "mariadb://", 10) == 0) {
        out->store_kind = BK_STORE_MYSQL;
    } else {
        out->store_kind = BK_STORE_POSTGRES;
    }
    out->db_local_time = strcasecmp(config_value(config, S_DB_TIME_ZONE), "local") == 0;
}

/* The whole number of setting i (checked when set, so always in its range). */
static long number_of(const bkoauth_config *config, int i)
{
    long n = 0;
    config_parse_long(config_value(config, i), config_settings[i].min, config_settings[i].max, &n);
    return n;
}

/* The numbers, flags and levels, none of which allocates. */
static void read_numbers(const bkoauth_config *config, bk_settings *out)
{
    out->expires_seconds = number_of(config, S_EXPIRES_SECONDS);
    config_parse_bool(config_value(config, S_OAUTH_NEED_NEW_TOKEN), &out->need_new_token);
    out->timeout_ms = number_of(config, S_TIMEOUT_MS);
    config_parse_bool(config_value(config, S_TLS_VERIFY), &out->tls_verify);
    config_parse_log_level(config_value(config, S_LOG_LEVEL), &out->log_level);
    out->cache_seconds = (int)number_of(config, S_CACHE_SECONDS);
    out->db_connections = (int)number_of(config, S_DB_CONNECTIONS);
    out->backoff_seconds = number_of(config, S_BACKOFF_SECONDS);
    long max = number_of(config, S_BACKOFF_MAX_SECONDS);
    out->backoff_max_seconds = max < out->backoff_seconds ? out->backoff_seconds : max;
    out->memory_trim_seconds = (int)number_of(config, S_MEMORY_TRIM_SECONDS);
}

bkoauth_code settings_from_config(const bkoauth_config *config, bk_settings *out, bkoauth_error *err)
{
    memset(out, 0, sizeof *out);
    if (config == NULL) return err_set(err, BKOAUTH_E_INVALID, "settings: config must not be NULL");
    int lost = 0; /* copies that failed: every one is out of memory, none may pass silently */
    out->api_url = api_url_of(config, &lost);
    bkoauth_code rc = object_setting(config, S_OAUTH_COOKIES_PARAMS, &out->cookies_params, NULL, err);
    if (rc == BKOAUTH_OK)
        rc = object_setting(config, S_OAUTH_PARAMS, &out->oauth_params, &out->oauth_params_json, err);
    if (rc == BKOAUTH_OK) {
        copy_app(config, out, &lost);
        choose_store(config, out, &lost);
        rc = zone_load(config_value(config, S_DB_TIME_ZONE), &out->db_zone, err);
    }
    if (rc == BKOAUTH_OK && lost) rc = err_set(err, BKOAUTH_E_NOMEM, "out of memory copying the settings");
    if (rc != BKOAUTH_OK) {
        settings_clear(out);
        return rc;
    }
    read_numbers(config, out);
    return err_ok(err);
}
