/* SPDX-License-Identifier: MIT */
/* config_int.h - what the settings files share: the table of settings (config.c), the value
 * readers the checks and the conversion both use, and the reading of a dict setting written as
 * JSON or Python (pyliteral.c). Internal to config.c, config_file.c, settings.c and pyliteral.c. */
#ifndef BKOAUTH_CONFIG_INT_H
#define BKOAUTH_CONFIG_INT_H

#include "json.h"

typedef enum setting_kind {
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
    K_LOG_LEVEL, /* off, error, warning, info, debug */
    K_PROXY      /* a proxy URL, or "" / none: no proxy */
} setting_kind;

typedef struct setting {
    const char *name;
    setting_kind kind;
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
    S_CA_PATH,
    S_PROXY,
    S_NO_PROXY,
    S_LOG_LEVEL,
    S_CACHE_SECONDS,
    S_DB_CONNECTIONS,
    S_BACKOFF_SECONDS,
    S_BACKOFF_MAX_SECONDS,
    S_MEMORY_TRIM_SECONDS,
    S_COUNT
};

/* ---- the settings (config.c) ------------------------------------------------------------ */

/* Every setting: its name, kind and default, indexed by S_*. */
extern const setting config_settings[S_COUNT];

/* A bkoauth_config holds the text of each setting as given (validated when set). */
struct bkoauth_config {
    char *values[S_COUNT]; /* NULL: the default */
};

/* The index of the setting called name, or -1 when there is none. */
int config_find(const char *name);
/* The text of setting i: as set, else its default (NULL when it has none). */
const char *config_value(const bkoauth_config *config, int i);
/* true/1/yes or false/0/no, any case, into *out. Returns 0, or -1 when v is neither. */
int config_parse_bool(const char *v, int *out);
/* A decimal from min to max into *out. Returns 0, or -1 when v is not one. */
int config_parse_long(const char *v, long min, long max, long *out);
/* off, error, warning, info or debug, any case, into *out as BKOAUTH_LOG_*. Returns 0, or -1 when
 * v is none of them. */
int config_parse_log_level(const char *v, int *out);

/* ---- dict settings written as Python (pyliteral.c) ---------------------------------------- */

/* Parses a JSON object written as JSON or Python-style (single-quoted strings, True, False,
 * None, trailing commas, comments). NULL with why filled when it is not one, or with *oom set
 * when out of memory. */
json_t *py_parse_object(const char *text, char *why, size_t why_size, int *oom);

#endif
