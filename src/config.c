/* config.c - settings: names, defaults, checks, the settings file and the environment.
 *
 * A bkoauth_config holds the text of each setting as given (validated when set).
 * settings_from_config() turns it into the bk_settings the client works with. */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_MAX_VALUE (64 * 1024)
#define CONFIG_MAX_FILE (1024 * 1024)

typedef enum kind {
    K_TEXT,      /* any one-line text */
    K_SECRET,    /* text never echoed */
    K_PEM,       /* text, may span lines */
    K_URL,       /* http:// or https:// */
    K_STRMAP,    /* JSON object of strings */
    K_OBJECT,    /* JSON object of scalars */
    K_BOOL,      /* true/false/1/0/yes/no */
    K_INT,       /* decimal in [min, max] */
    K_DBURL,     /* sqlite:PATH, postgresql://... or mysql://... */
    K_TIME_ZONE, /* UTC, local or a zone name */
    K_LOG_LEVEL  /* off, error, warning, info, debug */
} kind;

typedef struct setting {
    const char *name;
    kind kind;
    const char *def; /* default text, NULL: none */
    long min, max;   /* K_INT */
} setting;

enum {
    S_OAUTH_API_URL,
    S_OAUTH_COOKIES_PARAMS,
    S_OAUTH_PARAMS,
    S_APP_CODE,
    S_SECRET_KEY,
    S_BKAUTH_TOKEN_APP_CODE,
    S_BKAUTH_TOKEN_SECRET_KEY,
    S_RUN_MODE,
    S_EXPIRES_SECONDS,
    S_OAUTH_NEED_NEW_TOKEN,
    S_BKAUTH_BACKEND_TYPE,
    S_APIGW_PUBLIC_KEY,
    S_DATABASE_URL,
    S_DB_TIME_ZONE,
    S_TIMEOUT_MS,
    S_TLS_VERIFY,
    S_CA_FILE,
    S_LOG_LEVEL,
    S_CACHE_SECONDS,
    S_DB_CONNECTIONS,
    S_BACKOFF_SECONDS,
    S_BACKOFF_MAX_SECONDS,
    S_COUNT
};

static const setting SETTINGS[S_COUNT] = {
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
    [S_LOG_LEVEL] = {"BKOAUTH_LOG_LEVEL", K_LOG_LEVEL, "warning", 0, 0},
    [S_CACHE_SECONDS] = {"BKOAUTH_CACHE_SECONDS", K_INT, "10", 0, 86400L},
    [S_DB_CONNECTIONS] = {"BKOAUTH_DB_CONNECTIONS", K_INT, "13", 3, 1000L},
    [S_BACKOFF_SECONDS] = {"BKOAUTH_BACKOFF_SECONDS", K_INT, "5", 0, 3600L},
    [S_BACKOFF_MAX_SECONDS] = {"BKOAUTH_BACKOFF_MAX_SECONDS", K_INT, "60", 1, 86400L},
};

struct bkoauth_config {
    char *values[S_COUNT]; /* NULL: the default */
};

/* ---- lists --------------------------------------------------------------------------------- */

void kvlist_clear(bk_kvlist *list)
{
    for (size_t i = 0; i < list->count; i++) {
        bk_wipe_free(list->items[i].key);
        bk_wipe_free(list->items[i].value);
    }
    bkoauth__free(list->items);
    list->items = NULL;
    list->count = 0;
}

int kvlist_add(bk_kvlist *list, const char *key, const char *value)
{
    bk_kv *items = bkoauth__realloc(list->items, (list->count + 1) * sizeof *items);
    if (items == NULL) return -1;
    list->items = items;
    char *k = bk_strdup(key), *v = bk_strdup(value);
    if (k == NULL || v == NULL) {
        bk_wipe_free(k);
        bk_wipe_free(v);
        return -1;
    }
    items[list->count].key = k;
    items[list->count].value = v;
    list->count++;
    return 0;
}

/* ---- value checks -------------------------------------------------------------------------- */

static int find_setting(const char *name)
{
    for (int i = 0; i < S_COUNT; i++)
        if (strcmp(SETTINGS[i].name, name) == 0) return i;
    return -1;
}

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
        size_t d = distance(name, SETTINGS[i].name);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    if (best >= 0)
        return err_set(err, BKOAUTH_E_CONFIG, "unknown setting %.64s; did you mean %s?", name,
                       SETTINGS[best].name);
    return err_set(err, BKOAUTH_E_CONFIG,
                   "unknown setting %.64s; the settings are listed in bkoauth.h and the README", name);
}

static int parse_bool(const char *v, int *out)
{
    static const char *yes[] = {"true", "1", "yes"}, *no[] = {"false", "0", "no"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

static int parse_long(const char *v, long min, long max, long *out)
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

static int has_control(const char *v, int allow_newlines)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && !(allow_newlines && (*p == '\n' || *p == '\r' || *p == '\t'))) || *p == 0x7f)
            return 1;
    return 0;
}

/* Python-style literal to JSON: single-quoted strings, True/False/None, trailing commas.
 * Returns a new string, or NULL with why set (NULL when out of memory). */
static char *python_to_json(const char *in, const char **why)
{
    bk_buf b = {0};
    *why = NULL;
    const char *p = in;
    while (*p) {
        char c = *p;
        if (c == '\'' || c == '"') {
            char q = c;
            p++;
            buf_puts(&b, "\"");
            while (*p && *p != q) {
                if (*p == '\\') {
                    p++;
                    if (*p == '\0') break;
                    if (*p == '\'')
                        buf_puts(&b, "'");
                    else if (*p == '"')
                        buf_puts(&b, "\\\"");
                    else {
                        char esc[3] = {'\\', *p, 0};
                        buf_puts(&b, esc);
                    }
                    p++;
                    continue;
                }
                if (*p == '"')
                    buf_puts(&b, "\\\"");
                else
                    buf_append(&b, p, 1);
                p++;
            }
            if (*p != q) {
                buf_free(&b);
                *why = "a string is not closed";
                return NULL;
            }
            buf_puts(&b, "\"");
            p++;
            continue;
        }
        if (c == '#') { /* a comment in a multi-line object runs to the end of its line */
            while (*p && *p != '\n')
                p++;
            continue;
        }
        if (isalpha((unsigned char)c)) {
            const char *s = p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            size_t n = (size_t)(p - s);
            if (n == 4 && strncmp(s, "True", 4) == 0)
                buf_puts(&b, "true");
            else if (n == 5 && strncmp(s, "False", 5) == 0)
                buf_puts(&b, "false");
            else if (n == 4 && strncmp(s, "None", 4) == 0)
                buf_puts(&b, "null");
            else
                buf_append(&b, s, n);
            continue;
        }
        if (c == ',') {
            const char *q = p + 1;
            for (;;) { /* blanks and comments to the next token */
                while (isspace((unsigned char)*q))
                    q++;
                if (*q != '#') break;
                while (*q && *q != '\n')
                    q++;
            }
            if (*q == '}' || *q == ']') { /* Python allows a trailing comma, a comment after it too */
                p++;
                continue;
            }
        }
        buf_append(&b, p, 1);
        p++;
    }
    if (b.oom) {
        buf_free(&b);
        return NULL; /* out of memory: no reason */
    }
    return b.data ? b.data : bk_strdup("");
}

/* Parses a JSON object written as JSON or Python-style. NULL with why filled when it is not
 * one, or with *oom set when out of memory. */
static json_t *parse_object(const char *text, char *why, size_t why_size, int *oom)
{
    const char *pwhy = NULL;
    *oom = 0;
    char *js = python_to_json(text, &pwhy);
    if (js == NULL) {
        if (pwhy == NULL)
            *oom = 1;
        else
            snprintf(why, why_size, "%s", pwhy);
        return NULL;
    }
    json_error_t je;
    json_t *j = bkoauth__json_loadb(js, strlen(js), 0, &je, oom);
    bkoauth__free(js);
    if (*oom) return NULL;
    if (j == NULL) {
        snprintf(why, why_size, "not a JSON object (%.100s at column %d)", je.text, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(why, why_size, "not a JSON object");
        return NULL;
    }
    return j;
}

/* Checks value for setting i. Returns BKOAUTH_OK or BKOAUTH_E_CONFIG naming the setting. */
static bkoauth_code check_value(int i, const char *value, bkoauth_error *err)
{
    const setting *st = &SETTINGS[i];
    const char *name = st->name;
    if (strlen(value) > CONFIG_MAX_VALUE)
        return err_set(err, BKOAUTH_E_CONFIG, "%s: the value is %zu bytes long; at most %d are accepted",
                       name, strlen(value), CONFIG_MAX_VALUE);
    if (has_control(value, st->kind == K_PEM || st->kind == K_STRMAP || st->kind == K_OBJECT))
        return err_set(err, BKOAUTH_E_CONFIG, "%s: the value holds a control character", name);
    /* a secret's value is never shown, nor the password of a URL */
    char url_shown[256];
    const char *shown = st->kind == K_SECRET ? "(hidden)" : value;
    if (st->kind == K_URL || st->kind == K_DBURL)
        shown = bk_url_hide_password(value, url_shown, sizeof url_shown);
    switch (st->kind) {
    case K_TEXT:
    case K_SECRET:
    case K_PEM:
        return BKOAUTH_OK;
    case K_URL: {
        const char *rest = NULL;
        if (strncasecmp(value, "http://", 7) == 0)
            rest = value + 7;
        else if (strncasecmp(value, "https://", 8) == 0)
            rest = value + 8;
        if (rest == NULL || *rest == '\0' || *rest == '/' || strchr(value, ' ') != NULL)
            return err_set(
                err, BKOAUTH_E_CONFIG,
                "%s: '%.200s' is not an http:// or https:// URL; e.g. %s = 'http://bkssmee.example.com'",
                name, shown, name);
        return BKOAUTH_OK;
    }
    case K_STRMAP:
    case K_OBJECT: {
        char why[256];
        int oom;
        json_t *j = parse_object(value, why, sizeof why, &oom);
        if (oom) return err_set(err, BKOAUTH_E_NOMEM, "%s: out of memory reading the value", name);
        if (j == NULL)
            return err_set(err, BKOAUTH_E_CONFIG, "%s: %s; e.g. %s = {'bk_token': 'bk_token'}", name, why,
                           name);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            int bad = st->kind == K_STRMAP ? !json_is_string(v) : (json_is_object(v) || json_is_array(v));
            if (bad || k[0] == '\0') {
                err_set(err, BKOAUTH_E_CONFIG, "%s: the entry '%.64s' %s", name, k,
                        k[0] == '\0'           ? "has an empty name"
                        : st->kind == K_STRMAP ? "is not a string (write 'param': 'cookie_name')"
                                               : "is not a string, number, boolean or null");
                json_decref(j);
                return BKOAUTH_E_CONFIG;
            }
        }
        json_decref(j);
        return BKOAUTH_OK;
    }
    case K_BOOL: {
        int b;
        if (parse_bool(value, &b) != 0)
            return err_set(err, BKOAUTH_E_CONFIG, "%s: '%.64s' is not a boolean; write true or false", name,
                           value);
        return BKOAUTH_OK;
    }
    case K_INT: {
        long n;
        if (parse_long(value, st->min, st->max, &n) != 0)
            return err_set(err, BKOAUTH_E_CONFIG, "%s: '%.64s' is not a whole number from %ld to %ld", name,
                           value, st->min, st->max);
        return BKOAUTH_OK;
    }
    case K_DBURL:
        if (strncmp(value, "sqlite:", 7) == 0 && value[7] != '\0') return BKOAUTH_OK;
        if (strncmp(value, "postgresql://", 13) == 0 || strncmp(value, "postgres://", 11) == 0) {
#ifdef BKOAUTH_WITH_POSTGRESQL
            return BKOAUTH_OK;
#else
            return err_set(err, BKOAUTH_E_CONFIG,
                           "%s: a PostgreSQL URL, but this libbkoauth was built without PostgreSQL "
                           "(BKOAUTH_WITH_POSTGRESQL=OFF); rebuild it with -DBKOAUTH_WITH_POSTGRESQL=ON",
                           name);
#endif
        }
        if (strncmp(value, "mysql://", 8) == 0 || strncmp(value, "mariadb://", 10) == 0) {
#ifdef BKOAUTH_WITH_MYSQL
            bk_mysql_url u;
            bkoauth_code rc = mysql_url_parse(value, &u, err);
            mysql_url_clear(&u);
            return rc;
#else
            return err_set(err, BKOAUTH_E_CONFIG,
                           "%s: a MySQL URL, but this libbkoauth was built without MySQL "
                           "(BKOAUTH_WITH_MYSQL=OFF); rebuild it with -DBKOAUTH_WITH_MYSQL=ON",
                           name);
#endif
        }
        return err_set(err, BKOAUTH_E_CONFIG,
                       "%s: '%.200s' is neither sqlite:PATH nor a postgresql:// or mysql:// URL; e.g. %s = "
                       "'sqlite:/var/lib/myapp/bkoauth.db'",
                       name,
                       strncmp(value, "postgres", 8) == 0 || strncmp(value, "mysql", 5) == 0 ||
                               strncmp(value, "mariadb", 7) == 0
                           ? "(a database URL)"
                           : shown,
                       name);
    case K_TIME_ZONE: {
        bk_zone *z = NULL;
        bkoauth_code rc = zone_load(value, &z, err);
        zone_free(z);
        return rc;
    }
    case K_LOG_LEVEL: {
        static const char *levels[] = {"off", "error", "warning", "info", "debug"};
        for (int l = 0; l < 5; l++)
            if (strcasecmp(value, levels[l]) == 0) return BKOAUTH_OK;
        return err_set(err, BKOAUTH_E_CONFIG, "%s: '%.64s' is not one of off, error, warning, info, debug",
                       name, value);
    }
    }
    return BKOAUTH_OK;
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
    int i = find_setting(name);
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
    int i = find_setting(name);
    if (i < 0) return NULL;
    return config->values[i] ? config->values[i] : SETTINGS[i].def;
}

bkoauth_code bkoauth_config_load_env(bkoauth_config *config, bkoauth_error *err)
{
    if (config == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_config_load_env: config must not be NULL");
    for (int i = 0; i < S_COUNT; i++) {
        const char *v = getenv(SETTINGS[i].name);
        if (v == NULL || v[0] == '\0') continue; /* as the Python library: empty leaves it as it was */
        bkoauth_code rc = bkoauth_config_set(config, SETTINGS[i].name, v, err);
        if (rc != BKOAUTH_OK) {
            err_prefix(err, "environment variable %s", SETTINGS[i].name);
            return rc;
        }
    }
    return err_ok(err);
}

/* ---- the settings file ------------------------------------------------------------------- */

/* After a value: only spaces and a # comment may follow on the line. */
static int rest_is_blank(const char *p, const char *eol)
{
    while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p == eol || *p == '#';
}

static bkoauth_code parse_lines(bkoauth_config *config, const char *text, size_t len, const char *label,
                                bkoauth_error *err);

bkoauth_code config_parse_text(bkoauth_config *config, const char *text, size_t len, const char *label,
                               bkoauth_error *err)
{
    if (memchr(text, '\0', len) != NULL)
        return err_set(err, BKOAUTH_E_CONFIG, "%s: the file holds a NUL byte; is it a text file?", label);
    /* the line parser relies on a NUL after the text */
    char *copy = bk_strndup(text, len);
    if (copy == NULL) return err_nomem(err);
    bkoauth_code rc;
    if (!bk_utf8_ok(copy)) { /* Python would not read it either: say which line */
        int line = 1;
        for (char *p = copy;; line++) {
            char *eol = strchr(p, '\n');
            if (eol != NULL) *eol = '\0';
            int ok = bk_utf8_ok(p);
            if (eol != NULL) *eol = '\n';
            if (!ok || eol == NULL) break;
            p = eol + 1;
        }
        rc = err_set(err, BKOAUTH_E_CONFIG, "%s:%d: the line is not UTF-8 text; save the file as UTF-8",
                     label, line);
        goto out;
    }
    size_t skip = len >= 3 && memcmp(copy, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* a byte order mark */
    rc = parse_lines(config, copy + skip, len - skip, label, err);
out:
    bkoauth__wipe_free(copy, len);
    return rc;
}

static bkoauth_code parse_lines(bkoauth_config *config, const char *text, size_t len, const char *label,
                                bkoauth_error *err)
{
    const char *p = text, *end = text + len;
    int line = 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) eol = end;
        int this_line = line;
        const char *s = p;
        while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        if (s == eol || *s == '#') {
            p = eol + 1;
            line++;
            continue;
        }
        if ((size_t)(eol - s) > 7 && strncmp(s, "export ", 7) == 0) s += 7;
        while (s < eol && (*s == ' ' || *s == '\t'))
            s++;
        const char *name_start = s;
        while (s < eol && (isalnum((unsigned char)*s) || *s == '_'))
            s++;
        size_t name_len = (size_t)(s - name_start);
        while (s < eol && (*s == ' ' || *s == '\t'))
            s++;
        if (name_len == 0 || name_len > 64 || s == eol || *s != '=' || (s + 1 < eol && s[1] == '=') ||
            isdigit((unsigned char)*name_start))
            return err_set(err, BKOAUTH_E_CONFIG, "%s:%d: expected NAME = value", label, this_line);
        char name[65];
        memcpy(name, name_start, name_len);
        name[name_len] = '\0';
        s++;
        py_value val;
        memset(&val, 0, sizeof val);
        val.text.secret = 1; /* the value of SECRET_KEY */
        const char *why = NULL;
        char why_buf[160];
        int at = line;
        if (rest_is_blank(s, eol)) {
            /* NAME = with nothing after it (an environment file's empty value): "" */
        } else if (py_read_value(&s, end, &at, &val, &why, why_buf, sizeof why_buf) != 0) {
            int oom = val.text.oom;
            buf_free(&val.text);
            if (oom) return err_nomem(err);
            return err_set(err, BKOAUTH_E_CONFIG, "%s:%d: %s: %s", label, at, name, why);
        }
        line = at;
        const char *veol = memchr(s, '\n', (size_t)(end - s));
        if (veol == NULL) veol = end;
        if (!rest_is_blank(s, veol)) {
            buf_free(&val.text);
            return err_set(
                err, BKOAUTH_E_CONFIG,
                "%s:%d: %s: unexpected text after the value (an expression? the settings file takes "
                "literals only)",
                label, line, name);
        }
        if (val.text.oom) {
            buf_free(&val.text);
            return err_nomem(err);
        }
        int i = find_setting(name);
        kind k = i >= 0 ? SETTINGS[i].kind : K_TEXT;
        if ((val.kind == PY_OBJECT && k != K_STRMAP && k != K_OBJECT) || val.kind == PY_LIST) {
            buf_free(&val.text);
            return err_set(err, BKOAUTH_E_CONFIG, "%s:%d: %s takes %s, not a %s", label, this_line, name,
                           k == K_STRMAP || k == K_OBJECT ? "a dict" : "one value",
                           val.kind == PY_LIST ? "list" : "dict");
        }
        bkoauth_code rc = bkoauth_config_set(
            config, name, val.kind == PY_NONE ? NULL : (val.text.data ? val.text.data : ""), err);
        buf_free(&val.text);
        if (rc != BKOAUTH_OK) {
            err_prefix(err, "%s:%d", label, this_line);
            return rc;
        }
        p = veol + 1;
        line++;
    }
    return err_ok(err);
}

bkoauth_code bkoauth_config_load_file(bkoauth_config *config, const char *path, bkoauth_error *err)
{
    if (config == NULL || path == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_config_load_file: config and path must not be NULL");
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        return err_set(err, e == ENOMEM ? BKOAUTH_E_NOMEM : BKOAUTH_E_CONFIG,
                       "%s: cannot open the settings file: %s", path, strerror(e));
    }
    bk_buf b = {0};
    b.secret = 1; /* it holds SECRET_KEY */
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(&b, chunk, n);
        if (b.len > CONFIG_MAX_FILE) {
            fclose(f);
            buf_free(&b);
            return err_set(err, BKOAUTH_E_CONFIG, "%s: the settings file is larger than %d bytes", path,
                           CONFIG_MAX_FILE);
        }
    }
    int read_error = ferror(f) ? errno : 0;
    fclose(f);
    if (b.oom || read_error == ENOMEM) {
        buf_free(&b);
        return err_set(err, BKOAUTH_E_NOMEM, "%s: out of memory reading the settings file", path);
    }
    if (read_error) {
        buf_free(&b);
        return err_set(err, BKOAUTH_E_CONFIG, "%s: cannot read the settings file", path);
    }
    bkoauth_code rc = config_parse_text(config, b.data ? b.data : "", b.len, path, err);
    buf_free(&b);
    return rc;
}

/* ---- settings for the client -------------------------------------------------------------- */

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
    zone_free(s->db_zone);
    memset(s, 0, sizeof *s);
}

static const char *value_of(const bkoauth_config *c, int i)
{
    return c->values[i] ? c->values[i] : SETTINGS[i].def;
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
    json_t *j = parse_object(value_of(c, i), why, sizeof why, &oom);
    if (oom) return err_nomem(err);
    if (j == NULL) return err_set(err, BKOAUTH_E_CONFIG, "%s: %s", SETTINGS[i].name, why);
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

bkoauth_code settings_from_config(const bkoauth_config *config, bk_settings *out, bkoauth_error *err)
{
    memset(out, 0, sizeof *out);
    if (config == NULL) return err_set(err, BKOAUTH_E_INVALID, "settings: config must not be NULL");
    int lost = 0; /* copies that failed: every one is out of memory, none may pass silently */
    const char *url = value_of(config, S_OAUTH_API_URL);
    if (url != NULL) {
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
            n--;
        out->api_url = copy_of(url, n, &lost);
    }
    bkoauth_code rc = object_setting(config, S_OAUTH_COOKIES_PARAMS, &out->cookies_params, NULL, err);
    if (rc == BKOAUTH_OK)
        rc = object_setting(config, S_OAUTH_PARAMS, &out->oauth_params, &out->oauth_params_json, err);
    if (rc != BKOAUTH_OK) {
        settings_clear(out);
        return rc;
    }
    const char *code = value_of(config, S_BKAUTH_TOKEN_APP_CODE);
    const char *secret = value_of(config, S_BKAUTH_TOKEN_SECRET_KEY);
    out->app_code = dup_or_null(!bk_empty(code) ? code : value_of(config, S_APP_CODE), &lost);
    out->app_secret = dup_or_null(!bk_empty(secret) ? secret : value_of(config, S_SECRET_KEY), &lost);
    snprintf(out->env_name, sizeof out->env_name, "%s",
             bk_streq(value_of(config, S_RUN_MODE), "PRODUCT") ? "prod" : "test");
    long n = 0;
    parse_long(value_of(config, S_EXPIRES_SECONDS), 0, SETTINGS[S_EXPIRES_SECONDS].max, &n);
    out->expires_seconds = n;
    parse_bool(value_of(config, S_OAUTH_NEED_NEW_TOKEN), &out->need_new_token);
    out->protocol =
        bk_streq(value_of(config, S_BKAUTH_BACKEND_TYPE), "bk_token") ? BK_PROTO_EE : BK_PROTO_IEOD;
    const char *pem = value_of(config, S_APIGW_PUBLIC_KEY);
    out->apigw_public_key = bk_empty(pem) ? NULL : dup_or_null(pem, &lost);
    const char *db = value_of(config, S_DATABASE_URL);
    out->database_url = dup_or_null(db, &lost);
    if (strncmp(db, "sqlite:", 7) == 0) {
        out->store_kind = BK_STORE_SQLITE;
        out->database_path = dup_or_null(db + 7, &lost);
    } else if (strncmp(db, "mysql://", 8) == 0 || strncmp(db, "mariadb://", 10) == 0) {
        out->store_kind = BK_STORE_MYSQL;
    } else {
        out->store_kind = BK_STORE_POSTGRES;
    }
    out->db_local_time = strcasecmp(value_of(config, S_DB_TIME_ZONE), "local") == 0;
    rc = zone_load(value_of(config, S_DB_TIME_ZONE), &out->db_zone, err);
    if (rc != BKOAUTH_OK) {
        settings_clear(out);
        return rc;
    }
    parse_long(value_of(config, S_TIMEOUT_MS), 1, SETTINGS[S_TIMEOUT_MS].max, &n);
    out->timeout_ms = n;
    parse_bool(value_of(config, S_TLS_VERIFY), &out->tls_verify);
    const char *ca = value_of(config, S_CA_FILE);
    out->ca_file = bk_empty(ca) ? NULL : dup_or_null(ca, &lost);
    if (lost) {
        settings_clear(out);
        return err_set(err, BKOAUTH_E_NOMEM, "out of memory copying the settings");
    }
    static const char *levels[] = {"off", "error", "warning", "info", "debug"};
    for (int l = 0; l < 5; l++)
        if (strcasecmp(value_of(config, S_LOG_LEVEL), levels[l]) == 0) out->log_level = l - 1;
    parse_long(value_of(config, S_CACHE_SECONDS), 0, SETTINGS[S_CACHE_SECONDS].max, &n);
    out->cache_seconds = (int)n;
    parse_long(value_of(config, S_DB_CONNECTIONS), SETTINGS[S_DB_CONNECTIONS].min,
               SETTINGS[S_DB_CONNECTIONS].max, &n);
    out->db_connections = (int)n;
    parse_long(value_of(config, S_BACKOFF_SECONDS), 0, SETTINGS[S_BACKOFF_SECONDS].max, &n);
    out->backoff_seconds = n;
    parse_long(value_of(config, S_BACKOFF_MAX_SECONDS), 1, SETTINGS[S_BACKOFF_MAX_SECONDS].max, &n);
    out->backoff_max_seconds = n < out->backoff_seconds ? out->backoff_seconds : n;
    return err_ok(err);
}
