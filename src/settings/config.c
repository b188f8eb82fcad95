/* SPDX-License-Identifier: MIT */
/* config.c - settings: names, defaults and the checks of their values, and the public calls that
 * set and read them (the settings file is read by config_file.c, the environment here).
 *
 * A bkoauth_config holds the text of each setting as given (validated when set).
 * settings_from_config() (settings.c) turns it into the bk_settings the client works with. */
#include "config_int.h"
#include "proxy_url.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_MAX_VALUE (64 * 1024)

const setting config_settings[S_COUNT] = {
    [S_OAUTH_API_URL] = {"OAUTH_API_URL", K_URL, NULL, 0, 0},
    [S_OAUTH_COOKIES_PARAMS] = {"OAUTH_COOKIES_PARAMS", K_STRMAP, "{}", 0, 0},
    [S_OAUTH_PARAMS] = {"OAUTH_PARAMS", K_OBJECT, "{}", 0, 0},
    [S_APP_CODE] = {"APP_CODE", K_TEXT, NULL, 0, 0},
    [S_SECRET_KEY] = {"SECRET_KEY", K_SECRET, NULL, 0, 0},
    [S_BKAUTH_TOKEN_APP_CODE] = {"BKAUTH_TOKEN_APP_CODE", K_TEXT, NULL, 0, 0},
    [S_BKAUTH_TOKEN_SECRET_KEY] = {"BKAUTH_TOKEN_SECRET_KEY", K_SECRET, NULL, 0, 0},
    [S_RUN_MODE] = {"RUN_MODE", K_TEXT, "DEVELOP", 0, 0},
    [S_EXPIRES_SECONDS] = {"EXPIRES_SECONDS", K_INT, "86400", 0, 315360000L},
    [S_OAUTH_NEED_NEW_TOKEN] = {"OAUTH_NEED_NEW_TOKEN", K_BOOL, "true", 0, 0},
    [S_BKAUTH_BACKEND_TYPE] = {"BKAUTH_BACKEND_TYPE", K_TEXT, NULL, 0, 0},
    [S_APIGW_PUBLIC_KEY] = {"APIGW_PUBLIC_KEY", K_PEM, NULL, 0, 0},
    [S_DATABASE_URL] = {"BKOAUTH_DATABASE_URL", K_DBURL, "sqlite:bkoauth.db", 0, 0},
    [S_DB_TIME_ZONE] = {"BKOAUTH_DB_TIME_ZONE", K_TIME_ZONE, "UTC", 0, 0},
    [S_TIMEOUT_MS] = {"BKOAUTH_TIMEOUT_MS", K_INT, "10000", 1, 600000L},
    [S_TLS_VERIFY] = {"BKOAUTH_TLS_VERIFY", K_BOOL, "true", 0, 0},
    [S_CA_FILE] = {"BKOAUTH_CA_FILE", K_TEXT, NULL, 0, 0},
    [S_CA_PATH] = {"BKOAUTH_CA_PATH", K_TEXT, NULL, 0, 0},
    [S_PROXY] = {"BKOAUTH_PROXY", K_PROXY, NULL, 0, 0},
    [S_NO_PROXY] = {"BKOAUTH_NO_PROXY", K_TEXT, NULL, 0, 0},
    [S_LOG_LEVEL] = {"BKOAUTH_LOG_LEVEL", K_LOG_LEVEL, "warning", 0, 0},
    [S_CACHE_SECONDS] = {"BKOAUTH_CACHE_SECONDS", K_INT, "10", 0, 86400L},
    [S_DB_CONNECTIONS] = {"BKOAUTH_DB_CONNECTIONS", K_INT, "13", 3, 1000L},
    [S_BACKOFF_SECONDS] = {"BKOAUTH_BACKOFF_SECONDS", K_INT, "5", 0, 3600L},
    [S_BACKOFF_MAX_SECONDS] = {"BKOAUTH_BACKOFF_MAX_SECONDS", K_INT, "60", 1, 86400L},
    [S_MEMORY_TRIM_SECONDS] = {"BKOAUTH_MEMORY_TRIM_SECONDS", K_INT, "60", 0, 86400L},
};

int config_find(const char *name)
{
    for (int i = 0; i < S_COUNT; i++)
        if (strcmp(config_settings[i].name, name) == 0) return i;
    return -1;
}

const char *config_value(const bkoauth_config *config, int i)
{
    return config->values[i] ? config->values[i] : config_settings[i].def;
}

/* ---- value readers ------------------------------------------------------------------------ */

int config_parse_bool(const char *v, int *out)
{
    static const char *yes[] = {"true", "1", "yes"}, *no[] = {"false", "0", "no"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

int config_parse_long(const char *v, long min, long max, long *out)
{
    if (*v == '\0' || strlen(v) > 20) return -1;
    const char *p = v;
    if (*p == '+' || *p == '-') p++;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p)) return -1;
    errno = 0;
    long n = strtol(v, NULL, 10);
    if (errno != 0 || n < min || n > max) return -1;
    *out = n;
    return 0;
}

int config_parse_log_level(const char *v, int *out)
{
    static const char *levels[] = {"off", "error", "warning", "info", "debug"};
    for (int l = 0; l < 5; l++)
        if (strcasecmp(v, levels[l]) == 0) return *out = BKOAUTH_LOG_OFF + l, 0;
    return -1;
}

/* ---- value checks -------------------------------------------------------------------------- */

/* Levenshtein distance, capped, for "did you mean" */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = toupper((unsigned char)a[i - 1]) == toupper((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = prev + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static bkoauth_code unknown_name(const char *name, bkoauth_error *err)
{
    int best = -1;
    size_t best_d = 4;
    for (int i = 0; i < S_COUNT; i++) {
        size_t d = distance(name, config_settings[i].name);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    if (best >= 0)
        return err_set(err, BKOAUTH_E_CONFIG, "unknown setting %.64s; did you mean %s?", name,
                       config_settings[best].name);
    return err_set(err, BKOAUTH_E_CONFIG,
                   "unknown setting %.64s; the settings are listed in bkoauth.h and the README", name);
}

static int has_control(const char *v, int allow_newlines)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && !(allow_newlines && (*p == '\n' || *p == '\r' || *p == '\t'))) || *p == 0x7f)
            return 1;
    return 0;
}

static bkoauth_code check_url(const char *name, const char *value, bkoauth_error *err)
{
    const char *rest = NULL;
    if (strncasecmp(value, "http://", 7) == 0)
        rest = value + 7;
    else if (strncasecmp(value, "https://", 8) == 0)
        rest = value + 8;
    if (rest != NULL && *rest != '\0' && *rest != '/' && strchr(value, ' ') == NULL) return BKOAUTH_OK;
    char shown[256]; /* never the password of a URL */
    return err_set(err, BKOAUTH_E_CONFIG,
                   "%s: '%.200s' is not an http:// or https:// URL; e.g. %s = 'http://bkssmee.example.com'",
                   name, bk_url_hide_password(value, shown, sizeof shown), name);
}

/* A proxy URL libcurl can use, or "" / none (no proxy). */
static bkoauth_code check_proxy(const char *name, const char *value, bkoauth_error *err)
{
    proxy_url u;
    const char *why = value[0] == '\0' || strcasecmp(value, "none") == 0 ? NULL : proxy_parse(value, &u);
    bkoauth__wipe(&u, sizeof u);
    if (why == NULL) return BKOAUTH_OK;
    char shown[256]; /* never the password of a URL */
    return err_set(err, BKOAUTH_E_CONFIG,
                   "%s: '%.200s' is not a proxy URL libcurl can use: %s; e.g. %s = "
                   "'http://proxy.example.com:3128', or 'none' for no proxy whatever the environment says",
                   name, bk_url_hide_password(value, shown, sizeof shown), why, name);
}

/* Each entry of the dict setting st: a named string (K_STRMAP) or scalar (K_OBJECT). */
static bkoauth_code check_entries(const setting *st, json_t *j, bkoauth_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        int bad = st->kind == K_STRMAP ? !json_is_string(v) : (json_is_object(v) || json_is_array(v));
        if (bad || k[0] == '\0')
            return err_set(err, BKOAUTH_E_CONFIG, "%s: the entry '%.64s' %s", st->name, k,
                           k[0] == '\0'           ? "has an empty name"
                           : st->kind == K_STRMAP ? "is not a string (write 'param': 'cookie_name')"
                                                  : "is not a string, number, boolean or null");
    }
    return BKOAUTH_OK;
}

static bkoauth_code check_object(const setting *st, const char *value, bkoauth_error *err)
{
    char why[256];
    int oom;
    json_t *j = py_parse_object(value, why, sizeof why, &oom);
    if (oom) return err_set(err, BKOAUTH_E_NOMEM, "%s: out of memory reading the value", st->name);
    if (j == NULL)
        return err_set(err, BKOAUTH_E_CONFIG, "%s: %s; e.g. %s = {'bk_token': 'bk_token'}", st->name, why,
                       st->name);
    bkoauth_code rc = check_entries(st, j, err);
    json_decref(j);
    return rc;
}

static bkoauth_code check_postgres_url(const char *name, bkoauth_error *err)
{
#ifdef BKOAUTH_WITH_POSTGRESQL
    (void)name;
    (void)err;
    return BKOAUTH_OK;
#else
    return err_set(err, BKOAUTH_E_CONFIG,
                   "%s: a PostgreSQL URL, but this libbkoauth was built without PostgreSQL "
                   "(BKOAUTH_WITH_POSTGRESQL=OFF); rebuild it with -DBKOAUTH_WITH_POSTGRESQL=ON",
                   name);
#endif
}

static bkoauth_code check_mysql_url(const char *name, const char *value, bkoauth_error *err)
{
#ifdef BKOAUTH_WITH_MYSQL
    (void)name;
    bk_mysql_url u;
    bkoauth_code rc = mysql_url_parse(value, &u, err);
    mysql_url_clear(&u);
    return rc;
#else
    (void)value;
    return err_set(err, BKOAUTH_E_CONFIG,
                   "%s: a MySQL URL, but this libbkoauth was built without MySQL "
                   "(BKOAUTH_WITH_MYSQL=OFF); rebuild it with -DBKOAUTH_WITH_MYSQL=ON",
                   name);
#endif
}

static bkoauth_code check_db_url(const char *name, const char *value, bkoauth_error *err)
{
    if (strncmp(value, "sqlite:", 7) == 0 && value[7] != '\0') return BKOAUTH_OK;
    if (strncmp(value, "postgresql://", 13) == 0 || strncmp(value, "postgres://", 11) == 0)
        return check_postgres_url(name, err);
    if (strncmp(value, "mysql://", 8) == 0 || strncmp(value, "mariadb://", 10) == 0)
        return check_mysql_url(name, value, err);
    char shown[256]; /* never the password of a URL */
    return err_set(err, BKOAUTH_E_CONFIG,
                   "%s: '%.200s' is neither sqlite:PATH nor a postgresql:// or mysql:// URL; e.g. %s = "
                   "'sqlite:/var/lib/myapp/bkoauth.db'",
                   name,
                   strncmp(value, "postgres", 8) == 0 || strncmp(value, "mysql", 5) == 0 ||
                           strncmp(value, "mariadb", 7) == 0
                       ? "(a database URL)"
                       : bk_url_hide_password(value, shown, sizeof shown),
                   name);
}

/* The check of a value of setting st's kind; the text kinds take any value. */
static bkoauth_code check_kind(const setting *st, const char *value, bkoauth_error *err)
{
    const char *name = st->name;
    long n;
    int b;
    switch (st->kind) {
    case K_TEXT:
    case K_SECRET: /* a secret's value is never shown */
    case K_PEM:
        return BKOAUTH_OK;
    case K_URL:
        return check_url(name, value, err);
    case K_STRMAP:
    case K_OBJECT:
        return check_object(st, value, err);
    case K_BOOL:
        if (config_parse_bool(value, &b) == 0) return BKOAUTH_OK;
        return err_set(err, BKOAUTH_E_CONFIG, "%s: '%.64s' is not a boolean; write true or false", name,
                       value);
    case K_INT:
        if (config_parse_long(value, st->min, st->max, &n) == 0) return BKOAUTH_OK;
        return err_set(err, BKOAUTH_E_CONFIG, "%s: '%.64s' is not a whole number from %ld to %ld", name,
                       value, st->min, st->max);
    case K_DBURL:
        return check_db_url(name, value, err);
    case K_TIME_ZONE: {
        bk_zone *z = NULL;
        bkoauth_code rc = zone_load(value, &z, err);
        zone_free(z);
        return rc;
    }
    case K_PROXY:
        return check_proxy(name, value, err);
    case K_LOG_LEVEL:
        if (config_parse_log_level(value, &b) == 0) return BKOAUTH_OK;
        return err_set(err, BKOAUTH_E_CONFIG, "%s: '%.64s' is not one of off, error, warning, info, debug",
                       name, value);
    }
    return BKOAUTH_OK;
}

/* Checks value for setting i. Returns BKOAUTH_OK or BKOAUTH_E_CONFIG naming the setting. */
static bkoauth_code check_value(int i, const char *value, bkoauth_error *err)
{
    const setting *st = &config_settings[i];
    if (strlen(value) > CONFIG_MAX_VALUE)
        return err_set(err, BKOAUTH_E_CONFIG, "%s: the value is %zu bytes long; at most %d are accepted",
                       st->name, strlen(value), CONFIG_MAX_VALUE);
    if (has_control(value, st->kind == K_PEM || st->kind == K_STRMAP || st->kind == K_OBJECT))
        return err_set(err, BKOAUTH_E_CONFIG, "%s: the value holds a control character", st->name);
    return check_kind(st, value, err);
}

/* ---- the public set ----------------------------------------------------------------------- */

bkoauth_config *bkoauth_config_new(void)
{
    return bkoauth__calloc(1, sizeof(bkoauth_config));
}

void bkoauth_config_free(bkoauth_config *config)
{
    if (config == NULL) return;
    for (int i = 0; i < S_COUNT; i++)
        bk_wipe_free(config->values[i]);
    bkoauth__free(config);
}

bkoauth_code bkoauth_config_set(bkoauth_config *config, const char *name, const char *value,
                                bkoauth_error *err)
{
    if (config == NULL || name == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_config_set: config and name must not be NULL");
    int i = config_find(name);
    if (i < 0) return unknown_name(name, err);
    char *copy = NULL;
    if (value != NULL) {
        bkoauth_code rc = check_value(i, value, err);
        if (rc != BKOAUTH_OK) return rc;
        if ((copy = bk_strdup(value)) == NULL) return err_nomem(err);
    }
    bk_wipe_free(config->values[i]);
    config->values[i] = copy;
    return err_ok(err);
}

const char *bkoauth_config_get(const bkoauth_config *config, const char *name)
{
    if (config == NULL || name == NULL) return NULL;
    int i = config_find(name);
    if (i < 0) return NULL;
    return config_value(config, i);
}

bkoauth_code bkoauth_config_load_env(bkoauth_config *config, bkoauth_error *err)
{
    if (config == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_config_load_env: config must not be NULL");
    for (int i = 0; i < S_COUNT; i++) {
        const char *v = getenv(config_settings[i].name);
        if (v == NULL || v[0] == '\0') continue; /* as the Python library: empty leaves it as it was */
        bkoauth_code rc = bkoauth_config_set(config, config_settings[i].name, v, err);
        if (rc != BKOAUTH_OK) {
            err_prefix(err, "environment variable %s", config_settings[i].name);
            return rc;
        }
    }
    return err_ok(err);
}
