/* SPDX-License-Identifier: MIT */
/* bkoauth.c - the command line: get, read, refresh, list and delete saved BlueKing access_tokens,
 * and verify X-Bkapi-Jwt, from a shell.
 *
 *   bkoauth [-c FILE] [-D DATABASE_URL] [--json] COMMAND [ARGS]
 *
 * Uses only the public interface of bkoauth.h. Settings: -c FILE, else $BKOAUTH_CONFIG, else
 * ./bkoauth.conf when present; the environment on top; -D last. A token command prints the
 * access_token alone on stdout; everything meant for people (list, errors) shows secrets masked.
 * Exit status: 0 ok, 2 usage, 3 TokenAPIError, 4 TokenNotExist, 5 ConfigError, 6 StoreError,
 * 7 JWTError, 1 anything else (OutOfMemory among them: an allocation that fails anywhere, in the
 * library, in Jansson or in libcurl, is reported as "bkoauth: OutOfMemory: ..."). */
#include <bkoauth.h>

#include "internal.h"    /* bk_scrub, bk_utf8_next: the library's own escaping */
#include "store/store.h" /* store_django_migrations: check's Django line */

#include "cli_agent.h" /* --agent: the token commands asked of bkoauth-agent */

#include <jansson.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_OTHER 1
#define CLI_EXIT_USAGE 2
#define CLI_DEFAULT_CONF "bkoauth.conf"
#define CLI_DEFAULT_CLIENT_IP "127.0.0.1"
#define CLI_JWT_MAX (64 * 1024) /* an X-Bkapi-Jwt read from stdin is refused beyond this */
#define CLI_MASK_SIZE 64

/* The allocators, set first thing: the C library's, handed through libbkoauth's wrappers to
 * Jansson too, so that an allocation failure inside Jansson is told from bad JSON (see
 * bkoauth_set_allocators()). A test build (tests/cli/bkoauth_faulty.c) defines this to install
 * its fault-injecting allocator instead; this program itself reads nothing of the sort. */
#ifndef CLI_SET_ALLOCATORS
#define CLI_SET_ALLOCATORS() bkoauth_set_allocators(NULL, NULL, NULL, NULL, NULL, NULL)
#endif

/* ---- the commands ----------------------------------------------------------------------- */

/* What the command line said, after parsing. Every pointer points into argv (borrowed). */
typedef struct cli_args {
    const char *config_file;  /* -c FILE */
    const char *database_url; /* -D DATABASE_URL */
    int json;                 /* --json */
    int help;                 /* -h / --help */
    int version;              /* --version */
    const char *command;      /* NULL: none given */
    const char *positional[4];
    int npositional;
    const char *cookie;    /* user-token --cookie */
    const char *client_ip; /* user-token --client-ip */
    int app;               /* delete --app */
    int agent;             /* --agent [SOCKET] */
    const char *agent_socket;
} cli_args;

typedef int (*cli_handler)(bkoauth_client *client, const cli_args *a);

typedef struct cli_command {
    const char *name;
    const char *synopsis; /* after "bkoauth [OPTIONS] " */
    const char *summary;  /* one line for the tool's help */
    const char *help;     /* the command's own help, after its synopsis */
    int min_args, max_args;
    unsigned options; /* CLI_OPT_* a command accepts besides the global ones */
    cli_handler run;
} cli_command;

#define CLI_OPT_COOKIE 1u
#define CLI_OPT_CLIENT_IP 2u
#define CLI_OPT_APP 4u

static int cmd_app_token(bkoauth_client *client, const cli_args *a);
static int cmd_user_token(bkoauth_client *client, const cli_args *a);
static int cmd_token(bkoauth_client *client, const cli_args *a);
static int cmd_refresh(bkoauth_client *client, const cli_args *a);
static int cmd_list(bkoauth_client *client, const cli_args *a);
static int cmd_delete(bkoauth_client *client, const cli_args *a);
static int cmd_verify_jwt(bkoauth_client *client, const cli_args *a);
static int cmd_check(bkoauth_client *client, const cli_args *a);

static const cli_command cli_commands[] = {
    {"app-token", "app-token", "the APP access_token (get_app_access_token)",
     "Prints the APP access_token. The saved one is reused while it is valid for longer than\n"
     "EXPIRES_SECONDS; otherwise a new one is fetched from the SSM service (OAUTH_API_URL) with\n"
     "APP_CODE and SECRET_KEY, saved, and printed.\n",
     0, 0, 0, cmd_app_token},
    {"user-token", "user-token USER --cookie HEADER [--client-ip IP]",
     "a user's access_token from their login cookie (get_access_token)",
     "Does what a login does: builds a request of the logged-in USER with the raw Cookie header\n"
     "HEADER (e.g. 'bk_token=...') and calls get_access_token. The user's saved token is reused\n"
     "while valid; otherwise a new user token is fetched with the credential that\n"
     "OAUTH_COOKIES_PARAMS names in the cookie, saved, and printed.\n"
     "  --cookie HEADER    the Cookie header of the user's browser (required)\n"
     "  --client-ip IP     the user's address, sent as bk_client_ip (default 127.0.0.1)\n",
     1, 1, CLI_OPT_COOKIE | CLI_OPT_CLIENT_IP, cmd_user_token},
    {"token", "token USER", "USER's saved access_token (get_access_token_by_user)",
     "Prints USER's saved access_token. One that expires within EXPIRES_SECONDS is refreshed\n"
     "with its refresh_token first. None saved is TokenNotExist (exit 4): log the user in\n"
     "first (bkoauth user-token).\n",
     1, 1, 0, cmd_token},
    {"refresh", "refresh USER", "refresh USER's saved token now (refresh_token)",
     "Reads USER's saved token and renews it now with its refresh_token, whatever its expiry;\n"
     "saves and prints the new access_token. None saved, or no refresh_token, is\n"
     "TokenNotExist (exit 4).\n",
     1, 1, 0, cmd_refresh},
    {"list", "list", "saved tokens of every env, secrets masked",
     "Shows every saved token: user ((APP) for the APP token), env, expiry (UTC), time left,\n"
     "and access_token and refresh_token masked (first 4 characters and the length). With\n"
     "--json: an array of objects, secrets masked too. list never shows a secret whole.\n",
     0, 0, 0, cmd_list},
    {"delete", "delete USER | delete --app", "remove a saved token",
     "Removes USER's saved token (or with --app the APP token) of the current env (RUN_MODE).\n"
     "None saved is TokenNotExist (exit 4).\n"
     "  --app              remove the APP token\n",
     0, 1, CLI_OPT_APP, cmd_delete},
    {"verify-jwt", "verify-jwt [JWT]", "verify an X-Bkapi-Jwt from the API gateway",
     "Verifies an X-Bkapi-Jwt header value (read from standard input when JWT is absent) with\n"
     "APIGW_PUBLIC_KEY: RS256 only, issuer APIGW, not expired. Prints the app and the user it\n"
     "carries. A refused token is JWTError (exit 7); with --json the gateway-style body\n"
     "{\"result\": false, \"data\": null, \"message\": ...} is printed on stdout as well.\n",
     0, 1, 0, cmd_verify_jwt},
    {"check", "check", "check the settings, the token store and the SSM service",
     "Checks, one line each: the settings (read as every command reads them); the token store\n"
     "(opened, the table's columns as Django makes them, the saved tokens counted; opening\n"
     "creates a missing table, as every command does); the Django migrations recorded for the\n"
     "table (django_migrations rows of app bkoauth; none: a Django app sharing the table must run\n"
     "`manage.py migrate bkoauth --fake` once); the SSM service (reached with a plain\n"
     "GET of OAUTH_API_URL, no token asked for). Exit 0 when all hold, else the exit status of\n"
     "the first failure's kind. With --json: {\"ok\": bool, \"checks\": [{\"check\", \"ok\",\n"
     "\"message\"}...]}.\n",
     0, 0, 0, cmd_check},
};
#define CLI_NCOMMANDS (sizeof cli_commands / sizeof cli_commands[0])

/* ---- output helpers ---------------------------------------------------------------------- */

static const char cli_usage_line[] = "usage: bkoauth [-c FILE] [-D DATABASE_URL] [--json] COMMAND [ARGS]\n";

static void cli_print_tool_help(FILE *f)
{
    fputs(cli_usage_line, f);
    fputs("\nGet, save, reuse and refresh BlueKing access_tokens (libbkoauth).\n\nCommands:\n", f);
    for (size_t i = 0; i < CLI_NCOMMANDS; i++)
        fprintf(f, "  %-50s %s\n", cli_commands[i].synopsis, cli_commands[i].summary);
    fputs("  help [COMMAND]                                     this help, or a command's\n", f);
    fputs(
        "\nOptions:\n"
        "  -c, --config FILE        settings file (else $BKOAUTH_CONFIG, else ./bkoauth.conf when present)\n"
        "  -D, --database URL       token store: sqlite:PATH, postgresql://... or\n"
        "                           mysql://USER:PASSWORD@HOST:PORT/DATABASE (overrides\n"
        "                           BKOAUTH_DATABASE_URL)\n"
        "      --json               print JSON instead of text\n"
        "      --agent[=SOCKET]     ask bkoauth-agent for the token commands (default $BKOAUTH_AGENT, else\n"
        "                           " CLI_AGENT_DEFAULT_SOCKET
        "; a SOCKET with a '/' may follow as an argument)\n"
        "  -h, --help               show help (bkoauth COMMAND --help for a command)\n"
        "      --version            show the version\n"
        "\nSettings come from the file, then the environment (the same names, e.g. OAUTH_API_URL,\n"
        "APP_CODE, SECRET_KEY, OAUTH_COOKIES_PARAMS), then -D. A token command prints the\n"
        "access_token alone, so T=$(bkoauth token alice) works.\n"
        "\nExit status: 0 ok, 2 usage, 3 TokenAPIError, 4 TokenNotExist, 5 ConfigError,\n"
        "6 StoreError, 7 JWTError, 1 anything else. See bkoauth(1).\n",
        f);
}

static void cli_print_command_help(FILE *f, const cli_command *c)
{
    fprintf(f, "usage: bkoauth [-c FILE] [-D DATABASE_URL] [--json] %s\n\n%s", c->synopsis, c->help);
    if (c->run != cmd_list && c->run != cmd_delete && c->run != cmd_verify_jwt)
        fputs("Prints the access_token alone; with --json one object with every field (secrets whole).\n", f);
}

/* A usage error: the problem, the usage and exit status 2. */
static const char *cli_escape(const char *s, char *out, size_t size);

static int cli_usage_error(const cli_command *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cli_usage_error(const cli_command *c, const char *fmt, ...)
{
    va_list ap;
    char text[600], safe[2400];
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* it may quote an argument: one line, whatever the argument holds */
    fprintf(stderr, "bkoauth: %s\n", cli_escape(text, safe, sizeof safe));
    if (c != NULL)
        fprintf(stderr, "usage: bkoauth [-c FILE] [-D DATABASE_URL] [--json] %s\n", c->synopsis);
    else
        fputs(cli_usage_line, stderr);
    fprintf(stderr, "Try 'bkoauth %s--help'.\n", c != NULL ? "COMMAND " : "");
    return CLI_EXIT_USAGE;
}

static int cli_exit_status(bkoauth_code code)
{
    switch (code) {
    case BKOAUTH_OK:
        return CLI_EXIT_OK;
    case BKOAUTH_E_TOKEN_API:
        return 3;
    case BKOAUTH_E_TOKEN_NOT_EXIST:
        return 4;
    case BKOAUTH_E_CONFIG:
        return 5;
    case BKOAUTH_E_STORE:
        return 6;
    case BKOAUTH_E_JWT:
        return 7;
    case BKOAUTH_E_INVALID:
    case BKOAUTH_E_NOMEM:
    default:
        return CLI_EXIT_OTHER;
    }
}

/* s made fit for one line of a terminal or a log (the library's scrub: control characters,
 * bytes that are not UTF-8, C1 controls, direction marks and line separators escaped; cut with
 * "..." when it does not fit). What the library writes is so already; this covers what the
 * command line writes itself (an argument it quotes back). */
static const char *cli_escape(const char *s, char *out, size_t size)
{
    bk_scrub(out, size, s, strlen(s), 0);
    return out;
}

/* The library's log lines, held until the command ends: a warning that the command's error
 * repeats (the SSM failure it reports) is then not printed twice. */
#define CLI_LOG_LINES 16
static struct {
    int level[CLI_LOG_LINES];
    char text[CLI_LOG_LINES][600];
    int n, dropped;
} cli_log;

static void cli_logger(void *ctx, int level, const char *message)
{
    (void)ctx;
    if (cli_log.n == CLI_LOG_LINES) {
        cli_log.dropped++;
        return;
    }
    cli_log.level[cli_log.n] = level;
    snprintf(cli_log.text[cli_log.n], sizeof cli_log.text[0], "%s", message);
    cli_log.n++;
}

/* Prints the held lines, except those the error message (when not NULL) contains. */
static void cli_log_flush(const char *error_message)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < cli_log.n; i++) {
        const char *m = cli_log.text[i], *tail = strstr(m, ": ");
        if (error_message != NULL && tail != NULL && strstr(error_message, tail + 2) != NULL) continue;
        int l = cli_log.level[i];
        char safe[2400];
        fprintf(stderr, "bkoauth: %s: %s\n", l >= 0 && l <= 3 ? names[l] : "log",
                cli_escape(m, safe, sizeof safe));
    }
    if (cli_log.dropped) fprintf(stderr, "bkoauth: (%d more log lines)\n", cli_log.dropped);
    cli_log.n = cli_log.dropped = 0;
}

/* Reports a library failure as "bkoauth: <CodeName>: <message>" and gives the exit status. */
static int cli_fail(const bkoauth_error *e)
{
    const char *msg = e->message[0] ? e->message : "failed (no details)";
    char safe[2400];
    cli_log_flush(msg);
    fprintf(stderr, "bkoauth: %s: %s\n", bkoauth_code_name(e->code), cli_escape(msg, safe, sizeof safe));
    return cli_exit_status(e->code);
}

/* ISO 8601 UTC, "2026-05-23T10:00:00Z" (iso != 0) or "2026-05-23 10:00:00" for tables. */
static const char *cli_time(int64_t t, int iso, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, size, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, size, "%s", "(invalid time)");
    return buf;
}

/* "179d 23h", "5h 12m", "3m 20s", "expired". */
static const char *cli_left(int64_t expires, int64_t now, char *buf, size_t size)
{
    int64_t s = expires - now;
    if (s <= 0)
        snprintf(buf, size, "expired");
    else if (s >= 86400)
        snprintf(buf, size, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(buf, size, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(buf, size, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
    return buf;
}

/* A copy of s fit for a terminal line: control characters and bytes that would break a table
 * become '?'. Caller frees; NULL when out of memory. */
static char *cli_printable(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (out == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    out[n] = '\0';
    return out;
}

/* A JSON string of s; a byte that is not valid UTF-8 (Jansson takes UTF-8 only) is written
 * visibly as the text \xNN, never changed silently (the library reports such stored values, so
 * only text the command line was given can hold one). NULL when out of memory. */
static json_t *cli_json_str(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL) return j;
    size_t n = strlen(s);
    char *copy = malloc(n * 4 + 1);
    if (copy == NULL) return NULL;
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len = 1;
        if (bk_utf8_next(p, &len) < 0) {
            k += (size_t)snprintf(copy + k, 5, "\\x%02x", *p);
            len = 1;
        } else {
            memcpy(copy + k, p, (size_t)len);
            k += (size_t)len;
        }
        p += len;
    }
    copy[k] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

/* Sets key in obj, taking the reference of value; returns -1 when value is NULL (out of memory). */
static int cli_json_set(json_t *obj, const char *key, json_t *value)
{
    if (value == NULL) return -1;
    return json_object_set_new(obj, key, value);
}

/* The JSON object of a token: secrets whole (mask == 0) or masked. NULL when out of memory. */
static json_t *cli_token_json(const bkoauth_token *t, int mask, int64_t now)
{
    char ma[CLI_MASK_SIZE], mr[CLI_MASK_SIZE], exp[40], cre[40];
    json_t *o = json_object();
    if (o == NULL) return NULL;
    const char *refresh = t->refresh_token ? t->refresh_token : "";
    int bad = 0;
    bad |= cli_json_set(o, "access_token",
                        cli_json_str(mask ? bkoauth_mask(t->access_token, ma, sizeof ma) : t->access_token));
    bad |= cli_json_set(o, "refresh_token",
                        cli_json_str(mask && refresh[0] ? bkoauth_mask(refresh, mr, sizeof mr) : refresh));
    bad |= cli_json_set(o, "scope", cli_json_str(t->scope ? t->scope : ""));
    bad |= cli_json_set(o, "env_name", cli_json_str(t->env_name ? t->env_name : ""));
    bad |= cli_json_set(o, "user_id", t->user_id ? cli_json_str(t->user_id) : json_null());
    bad |= cli_json_set(o, "expires", cli_json_str(cli_time(t->expires, 1, exp, sizeof exp)));
    bad |= cli_json_set(o, "expires_in", json_integer((json_int_t)(t->expires - now)));
    bad |= cli_json_set(o, "created_at", cli_json_str(cli_time(t->created_at, 1, cre, sizeof cre)));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The text of a JSON value, newly allocated (free()), or NULL when out of memory. Not
 * json_dumps(): out of memory, Jansson 2.14's json_dumps() may leave an object key out of the
 * text and still succeed; json_dumpb() into a buffer of the right size allocates no text. */
static char *cli_json_text(const json_t *value, size_t flags)
{
    size_t need = json_dumpb(value, NULL, 0, flags);
    char *text = need > 0 ? malloc(need + 1) : NULL;
    if (text == NULL || json_dumpb(value, text, need, flags) != need) {
        free(text);
        return NULL;
    }
    text[need] = '\0';
    return text;
}

/* Prints a JSON value (and drops the reference) on stdout with a newline. */
static int cli_print_json(json_t *value)
{
    char *text = value != NULL ? cli_json_text(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(value);
    if (text == NULL) {
        fputs("bkoauth: OutOfMemory: could not build the JSON output\n", stderr);
        return CLI_EXIT_OTHER;
    }
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

/* The output of a token command: the access_token alone, or the whole JSON object. Frees t. */
static int cli_print_token(const cli_args *a, bkoauth_token *t)
{
    int status = CLI_EXIT_OK;
    int printable = t->access_token[0] != '\0';
    for (const unsigned char *p = (const unsigned char *)t->access_token; *p; p++)
        printable &= *p > 0x20 && *p < 0x7f;
    if (a->json)
        status = cli_print_json(cli_token_json(t, 0, (int64_t)time(NULL)));
    else if (printable)
        puts(t->access_token);
    else { /* never a line break or an escape on the terminal (the library refuses such tokens) */
        fputs("bkoauth: InvalidArgument: the access_token holds characters no SSM token has; it is not "
              "printed\n",
              stderr);
        status = CLI_EXIT_OTHER;
    }
    bkoauth_token_free(t);
    return status;
}

/* ---- the commands ------------------------------------------------------------------------ */

static int cmd_app_token(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *t = NULL;
    if (bkoauth_get_app_access_token(client, &t, &e) != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, t);
}

static int cmd_user_token(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *t = NULL;
    bkoauth_request req;
    memset(&req, 0, sizeof req);
    req.username = a->positional[0];
    req.cookie_header = a->cookie;
    req.remote_addr = a->client_ip ? a->client_ip : CLI_DEFAULT_CLIENT_IP;
    if (bkoauth_get_access_token(client, &req, &t, &e) != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, t);
}

static int cmd_token(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *t = NULL;
    if (bkoauth_get_access_token_by_user(client, a->positional[0], &t, &e) != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, t);
}

/* USER's saved row in the client's env, as it is in the store (no refresh): a copy in *out. */
static bkoauth_code cli_saved_token(bkoauth_client *client, const char *user, bkoauth_token **out,
                                    bkoauth_error *e)
{
    bkoauth_token **all = NULL;
    size_t n = 0;
    *out = NULL;
    bkoauth_code rc = bkoauth_list_tokens(client, &all, &n, e);
    if (rc != BKOAUTH_OK) return rc;
    const char *env = bkoauth_client_env_name(client);
    for (size_t i = 0; i < n && *out == NULL; i++) {
        const bkoauth_token *t = all[i];
        if (t->user_id != NULL && strcmp(t->user_id, user) == 0 && t->env_name != NULL && env != NULL &&
            strcmp(t->env_name, env) == 0) {
            *out = bkoauth_token_dup(t);
            if (*out == NULL) {
                bkoauth_tokens_free(all, n);
                e->code = BKOAUTH_E_NOMEM;
                snprintf(e->message, sizeof e->message, "out of memory copying the saved token");
                return BKOAUTH_E_NOMEM;
            }
        }
    }
    bkoauth_tokens_free(all, n);
    if (*out == NULL) {
        e->code = BKOAUTH_E_TOKEN_NOT_EXIST;
        e->http_status = 0;
        e->api_code = 0;
        snprintf(e->message, sizeof e->message,
                 "no saved access_token for user %.128s in env %.32s: log the user in first with "
                 "'bkoauth user-token %.128s --cookie HEADER'",
                 user, env ? env : "?", user);
        return BKOAUTH_E_TOKEN_NOT_EXIST;
    }
    return BKOAUTH_OK;
}

static int cmd_refresh(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *saved = NULL, *fresh = NULL;
    if (cli_saved_token(client, a->positional[0], &saved, &e) != BKOAUTH_OK) return cli_fail(&e);
    bkoauth_code rc = bkoauth_refresh_token(client, saved, &fresh, &e);
    bkoauth_token_free(saved);
    if (rc != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, fresh);
}

/* One row of the list table, every cell printable. */
typedef struct cli_row {
    char *cell[6];
} cli_row;

static const char *const cli_list_heads[6] = {"USER", "ENV",          "EXPIRES (UTC)",
                                              "LEFT", "ACCESS_TOKEN", "REFRESH_TOKEN"};

/* Prints six cells padded to their column's width (the last one unpadded). */
static void cli_print_row(const char *const cell[6], const size_t width[6])
{
    for (int c = 0; c < 5; c++)
        printf("%-*s  ", (int)width[c], cell[c]);
    printf("%s\n", cell[5]);
}

static int cli_list_table(bkoauth_token **all, size_t n, int64_t now)
{
    cli_row *rows = calloc(n ? n : 1, sizeof *rows);
    size_t width[6];
    int status = CLI_EXIT_OK;
    if (rows == NULL) goto oom;
    for (int c = 0; c < 6; c++)
        width[c] = strlen(cli_list_heads[c]);
    for (size_t i = 0; i < n; i++) {
        const bkoauth_token *t = all[i];
        char exp[40], left[40], ma[CLI_MASK_SIZE], mr[CLI_MASK_SIZE];
        const char *refresh = t->refresh_token && t->refresh_token[0] ? t->refresh_token : NULL;
        const char *src[6] = {t->user_id ? t->user_id : "(APP)",
                              t->env_name ? t->env_name : "",
                              cli_time(t->expires, 0, exp, sizeof exp),
                              cli_left(t->expires, now, left, sizeof left),
                              bkoauth_mask(t->access_token, ma, sizeof ma),
                              refresh ? bkoauth_mask(refresh, mr, sizeof mr) : "-"};
        for (int c = 0; c < 6; c++) {
            rows[i].cell[c] = cli_printable(src[c]);
            if (rows[i].cell[c] == NULL) goto oom;
            size_t w = strlen(rows[i].cell[c]);
            if (w > width[c]) width[c] = w;
        }
    }
    cli_print_row(cli_list_heads, width);
    for (size_t i = 0; i < n; i++)
        cli_print_row((const char *const *)rows[i].cell, width);
    if (n == 0) puts("(no saved tokens)");
    goto out;
oom:
    fputs("bkoauth: OutOfMemory: could not build the table\n", stderr);
    status = CLI_EXIT_OTHER;
out:
    if (rows != NULL) {
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 6; c++)
                free(rows[i].cell[c]);
        free(rows);
    }
    return status;
}

static int cmd_list(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token **all = NULL;
    size_t n = 0;
    if (bkoauth_list_tokens(client, &all, &n, &e) != BKOAUTH_OK) return cli_fail(&e);
    int64_t now = (int64_t)time(NULL);
    int status;
    if (a->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < n; i++) {
            json_t *o = cli_token_json(all[i], 1, now);
            if (o == NULL || json_array_append_new(arr, o) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        status = cli_print_json(arr);
    } else {
        status = cli_list_table(all, n, now);
    }
    bkoauth_tokens_free(all, n);
    return status;
}

static int cmd_delete(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    const char *user = a->app ? NULL : a->positional[0];
    if (bkoauth_delete_token(client, user, &e) != BKOAUTH_OK) return cli_fail(&e);
    if (a->json) {
        json_t *o = json_object();
        if (o != NULL && (cli_json_set(o, "deleted", json_true()) != 0 ||
                          cli_json_set(o, "user_id", user ? cli_json_str(user) : json_null()) != 0 ||
                          cli_json_set(o, "env_name", cli_json_str(bkoauth_client_env_name(client))) != 0)) {
            json_decref(o);
            o = NULL;
        }
        return cli_print_json(o);
    }
    char *who = cli_printable(user ? user : "(APP)");
    printf("deleted the saved token of %s in env %s\n", who ? who : "?", bkoauth_client_env_name(client));
    free(who);
    return CLI_EXIT_OK;
}

/* Reads the JWT from stdin: at most CLI_JWT_MAX bytes, surrounding whitespace dropped.
 * Returns a malloc'd string, or NULL with *status set. */
static char *cli_read_jwt(int *status)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fputs("bkoauth: OutOfMemory: could not read the JWT\n", stderr);
        *status = CLI_EXIT_OTHER;
        return NULL;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > CLI_JWT_MAX) {
                free(buf);
                fprintf(stderr, "bkoauth: JWTError: the JWT on standard input is longer than %d bytes\n",
                        CLI_JWT_MAX);
                *status = 7;
                return NULL;
            }
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                fputs("bkoauth: OutOfMemory: could not read the JWT\n", stderr);
                *status = CLI_EXIT_OTHER;
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, stdin);
        len += got;
        if (got == 0) {
            if (ferror(stdin)) {
                fprintf(stderr, "bkoauth: could not read standard input: %s\n", strerror(errno));
                free(buf);
                *status = CLI_EXIT_OTHER;
                return NULL;
            }
            break;
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        fputs("bkoauth: JWTError: the JWT on standard input holds a NUL byte\n", stderr);
        *status = 7;
        return NULL;
    }
    size_t start = 0;
    while (start < len && strchr(" \t\r\n", buf[start]) != NULL)
        start++;
    while (len > start && strchr(" \t\r\n", buf[len - 1]) != NULL)
        len--;
    memmove(buf, buf + start, len - start);
    buf[len - start] = '\0';
    return buf;
}

/* A refused JWT: with --json the gateway-style body on stdout too. The exit status. */
static int cli_jwt_refused(const cli_args *a, const bkoauth_error *e)
{
    if (a->json) {
        char *body = bkoauth_jwt_error_body(e);
        if (body == NULL) {
            cli_fail(e);
            fputs("bkoauth: OutOfMemory: could not build the JSON body of the refusal\n", stderr);
            return CLI_EXIT_OTHER;
        }
        puts(body);
        bkoauth_free(body);
    }
    return cli_fail(e);
}

/* The verified JWT as one JSON object. The exit status. */
static int cli_print_jwt_json(const bkoauth_jwt *v)
{
    json_t *o = json_object();
    char exp[40];
    json_error_t jerr;
    /* The payload was verified JSON: failing to read it again can only mean out of memory,
     * which cli_print_json() reports (o is dropped below). Out of memory, Jansson 2.14's
     * parser may also drop a byte and succeed: two readings that differ mean that too. */
    json_t *payload = v->payload_json ? json_loads(v->payload_json, 0, &jerr) : json_null();
    json_t *again = v->payload_json ? json_loads(v->payload_json, 0, &jerr) : json_null();
    if (payload == NULL || again == NULL || !json_equal(payload, again)) {
        json_decref(payload);
        payload = NULL;
        json_decref(o);
        o = NULL;
    }
    json_decref(again);
    if (o != NULL &&
        (cli_json_set(o, "app_code", v->app_code ? cli_json_str(v->app_code) : json_null()) != 0 ||
         cli_json_set(o, "app_verified", json_boolean(v->app_verified)) != 0 ||
         cli_json_set(o, "username", v->username ? cli_json_str(v->username) : json_null()) != 0 ||
         cli_json_set(o, "user_verified", json_boolean(v->user_verified)) != 0 ||
         cli_json_set(o, "expires",
                      v->expires ? cli_json_str(cli_time(v->expires, 1, exp, sizeof exp)) : json_null()) !=
             0 ||
         cli_json_set(o, "payload", payload ? payload : json_null()) != 0)) {
        json_decref(o);
        o = NULL;
    } else if (o == NULL) {
        json_decref(payload);
    }
    return cli_print_json(o);
}

/* The verified JWT for people: the app, the user and the expiry. */
static void cli_print_jwt_text(const bkoauth_jwt *v)
{
    char exp[40];
    char *app = cli_printable(v->app_code ? v->app_code : "(none)");
    char *user = cli_printable(v->username ? v->username : "(none)");
    printf("app:     %s (%s)\n", app ? app : "?", v->app_verified ? "verified" : "not verified");
    printf("user:    %s (%s)\n", user ? user : "?", v->user_verified ? "verified" : "not verified");
    if (v->expires) printf("expires: %s\n", cli_time(v->expires, 1, exp, sizeof exp));
    free(app);
    free(user);
}

static int cmd_verify_jwt(bkoauth_client *client, const cli_args *a)
{
    int status = CLI_EXIT_OK;
    char *input = NULL;
    const char *jwt = a->positional[0];
    if (jwt == NULL) {
        input = cli_read_jwt(&status);
        if (input == NULL) return status;
        jwt = input;
    }
    bkoauth_error e;
    bkoauth_jwt *v = NULL;
    bkoauth_code rc = bkoauth_jwt_verify(client, jwt, &v, &e);
    free(input);
    if (rc != BKOAUTH_OK) return cli_jwt_refused(a, &e);
    if (a->json)
        status = cli_print_jwt_json(v);
    else
        cli_print_jwt_text(v);
    bkoauth_jwt_free(v);
    return status;
}

/* ---- settings ---------------------------------------------------------------------------- */

/* -c FILE, else $BKOAUTH_CONFIG, else ./bkoauth.conf when present; the environment; -D. */
static bkoauth_config *cli_settings(const cli_args *a, bkoauth_error *e)
{
    bkoauth_config *config = bkoauth_config_new();
    if (config == NULL) {
        e->code = BKOAUTH_E_NOMEM;
        snprintf(e->message, sizeof e->message, "out of memory creating the settings");
        return NULL;
    }
    const char *file = a->config_file;
    if (file == NULL) {
        const char *env = getenv("BKOAUTH_CONFIG");
        if (env != NULL && env[0] != '\0')
            file = env;
        else if (access(CLI_DEFAULT_CONF, F_OK) == 0)
            file = CLI_DEFAULT_CONF;
    }
    if ((file != NULL && bkoauth_config_load_file(config, file, e) != BKOAUTH_OK) ||
        bkoauth_config_load_env(config, e) != BKOAUTH_OK ||
        (a->database_url != NULL &&
         bkoauth_config_set(config, "BKOAUTH_DATABASE_URL", a->database_url, e) != BKOAUTH_OK)) {
        bkoauth_config_free(config);
        return NULL;
    }
    return config;
}

/* ---- check -------------------------------------------------------------------------------- */

typedef struct cli_checks {
    json_t *list; /* --json: the checks so far; NULL otherwise */
    int status;   /* the exit status of the first failure, 0 while all hold */
} cli_checks;

/* One check's line: "NAME: ok: MESSAGE" or "NAME: CodeName: MESSAGE". */
static void cli_check_line(cli_checks *k, const char *name, bkoauth_code code, const char *message)
{
    if (code != BKOAUTH_OK && k->status == 0) k->status = cli_exit_status(code);
    if (k->list != NULL) {
        json_t *o = json_object();
        if (o != NULL) {
            cli_json_set(o, "check", cli_json_str(name));
            cli_json_set(o, "ok", json_boolean(code == BKOAUTH_OK));
            if (code != BKOAUTH_OK) cli_json_set(o, "error", cli_json_str(bkoauth_code_name(code)));
            cli_json_set(o, "message", cli_json_str(message));
            json_array_append_new(k->list, o);
        }
        return;
    }
    char safe[2400];
    printf("%s: %s: %s\n", name, code == BKOAUTH_OK ? "ok" : bkoauth_code_name(code),
           cli_escape(message, safe, sizeof safe));
}

/* A check that could not be made: "NAME: skipped: MESSAGE" (no effect on the exit status). */
static void cli_check_skipped(cli_checks *k, const char *name, const char *message)
{
    if (k->list != NULL) {
        json_t *o = json_object();
        if (o != NULL) {
            cli_json_set(o, "check", cli_json_str(name));
            cli_json_set(o, "ok", json_null());
            cli_json_set(o, "message", cli_json_str(message));
            json_array_append_new(k->list, o);
        }
        return;
    }
    printf("%s: skipped: %s\n", name, message);
}

/* The settings' check, and the client made with them (NULL when it could not be made: the
 * settings' or the store's line says why). */
static bkoauth_client *cli_check_settings(cli_checks *k, const cli_args *a)
{
    bkoauth_error e;
    memset(&e, 0, sizeof e);
    bkoauth_config *config = cli_settings(a, &e);
    if (config == NULL) {
        cli_check_line(k, "settings", e.code, e.message);
        cli_check_skipped(k, "store", "the settings are not usable");
        return NULL;
    }
    bkoauth_client *client = bkoauth_client_new(config, &e);
    if (client == NULL && e.code == BKOAUTH_E_CONFIG) {
        cli_check_line(k, "settings", e.code, e.message);
        cli_check_skipped(k, "store", "the settings are not usable");
    } else {
        const char *backend = bkoauth_config_get(config, "BKAUTH_BACKEND_TYPE");
        const char *url = bkoauth_config_get(config, "OAUTH_API_URL");
        const char *db = bkoauth_config_get(config, "BKOAUTH_DATABASE_URL");
        char shown_url[220], shown_db[220], line[700];
        /* either may carry a password: shown as user:***@ */
        bk_url_hide_password(url ? url : "(not set)", shown_url, sizeof shown_url);
        bk_url_hide_password(db ? db : "(default)", shown_db, sizeof shown_db);
        snprintf(line, sizeof line, "OAUTH_API_URL %s, %s protocol, store %s", shown_url,
                 backend && strcmp(backend, "bk_token") == 0 ? "ee" : "ieod", shown_db);
        cli_check_line(k, "settings", BKOAUTH_OK, line);
        if (client == NULL) cli_check_line(k, "store", e.code, e.message);
    }
    bkoauth_config_free(config);
    return client;
}

/* Whether Django has recorded its migrations of the token table: a table libbkoauth made must be
 * recorded once (`migrate bkoauth --fake`) before a Django app shares it. Informational: a
 * database Django never used is fine, and one whose records cannot be read is a skipped line. */
static void cli_check_django(cli_checks *k, bkoauth_client *client)
{
    static const char name[] = "Django migrations";
    char names[400], line[700];
    bkoauth_error e;
    memset(&e, 0, sizeof e);
    if (store_django_migrations(client_store(client), names, sizeof names, &e) != BKOAUTH_OK) {
        snprintf(line, sizeof line, "cannot read them: %s", e.message);
        cli_check_skipped(k, name, line);
    } else if (names[0] != '\0') {
        snprintf(line, sizeof line, "recorded for the table bkoauth_access_token (app bkoauth): %s", names);
        cli_check_line(k, name, BKOAUTH_OK, line);
    } else {
        cli_check_line(k, name, BKOAUTH_OK,
                       "no Django migration records for the table bkoauth_access_token: a Django app "
                       "sharing it must run `python manage.py migrate bkoauth --fake` once (not plain "
                       "migrate, which stops with \"table already exists\")");
    }
}

/* The store's and the SSM service's checks, with a client. */
static void cli_check_client(cli_checks *k, bkoauth_client *client)
{
    bkoauth_error e;
    memset(&e, 0, sizeof e);
    char line[700];
    bkoauth_client_set_logger(client, cli_logger, NULL);
    cli_log.n = 0; /* told again what is on stderr already */
    bkoauth_token **all = NULL;
    size_t n = 0;
    if (bkoauth_list_tokens(client, &all, &n, &e) == BKOAUTH_OK) {
        snprintf(line, sizeof line, "the table bkoauth_access_token has Django's columns; %zu token%s saved",
                 n, n == 1 ? "" : "s");
        cli_check_line(k, "store", BKOAUTH_OK, line);
        bkoauth_tokens_free(all, n);
        cli_check_django(k, client);
    } else {
        cli_check_line(k, "store", e.code, e.message);
        cli_check_skipped(k, "Django migrations", "the token table could not be read");
    }
    long status = 0;
    if (bkoauth_check_service(client, &status, &e) == BKOAUTH_OK) {
        char route[420];
        client_route(client, route, sizeof route);
        snprintf(line, sizeof line,
                 "reached: HTTP %ld to a plain GET of OAUTH_API_URL (no token asked for), %s", status,
                 route[0] ? route + 1 : "directly (no proxy)");
        cli_check_line(k, "SSM service", BKOAUTH_OK, line);
    } else {
        cli_check_line(k, "SSM service", e.code, e.message);
    }
}

/* --json: {"ok": bool, "checks": [...]} on stdout. Takes k->list. 0 or an exit status. */
static int cli_check_print_json(cli_checks *k)
{
    json_t *o = json_object();
    if (o == NULL || cli_json_set(o, "ok", json_boolean(k->status == 0)) != 0 ||
        json_object_set(o, "checks", k->list) != 0) {
        json_decref(o);
        json_decref(k->list);
        fputs("bkoauth: OutOfMemory: cannot build the JSON output\n", stderr);
        return CLI_EXIT_OTHER;
    }
    json_decref(k->list);
    return cli_print_json(o);
}

/* bkoauth check: runs without a client first, so that a failure to make one is a line too. */
static int cli_run_check(const cli_args *a)
{
    cli_checks k = {a->json ? json_array() : NULL, 0};
    bkoauth_client *client = cli_check_settings(&k, a);
    if (client != NULL) {
        cli_check_client(&k, client);
        bkoauth_client_free(client);
    } else {
        cli_check_skipped(&k, "SSM service", "no client could be made (see above)");
    }
    cli_log_flush(NULL);
    if (k.list != NULL) {
        int rc = cli_check_print_json(&k);
        if (rc != 0) return rc;
    }
    return k.status;
}

static int cmd_check(bkoauth_client *client, const cli_args *a)
{
    (void)client;
    return cli_run_check(a);
}

/* ---- argument parsing -------------------------------------------------------------------- */

static const cli_command *cli_find(const char *name)
{
    for (size_t i = 0; i < CLI_NCOMMANDS; i++)
        if (strcmp(cli_commands[i].name, name) == 0) return &cli_commands[i];
    return NULL;
}

/* The options, global and per command; getopt_long() matches them (a unique prefix of a long
 * name too) and takes a value as "--long VALUE", "--long=VALUE", "-s VALUE" or "-sVALUE". */
enum {
    CLI_LONG_JSON = 256,
    CLI_LONG_VERSION,
    CLI_LONG_APP,
    CLI_LONG_COOKIE,
    CLI_LONG_CLIENT_IP,
    CLI_LONG_AGENT
};

static const struct option cli_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"database", required_argument, NULL, 'D'},
    {"help", no_argument, NULL, 'h'},
    {"json", no_argument, NULL, CLI_LONG_JSON},
    {"version", no_argument, NULL, CLI_LONG_VERSION},
    {"app", no_argument, NULL, CLI_LONG_APP},
    {"cookie", required_argument, NULL, CLI_LONG_COOKIE},
    {"client-ip", required_argument, NULL, CLI_LONG_CLIENT_IP},
    {"agent", optional_argument, NULL, CLI_LONG_AGENT},
    {NULL, 0, NULL, 0},
};

/* "-": every non-option comes back in order as option 1, so options may come before or after the
 * command whatever POSIXLY_CORRECT says; ":": a missing value is ':', and getopt prints nothing. */
static const char cli_optstring[] = "-:c:D:h";

/* The command or a positional argument, in the order given. 0 or exit status 2. */
static int cli_positional(cli_args *a, const char *arg)
{
    if (a->command == NULL)
        a->command = arg;
    else if (a->npositional < (int)(sizeof a->positional / sizeof a->positional[0]))
        a->positional[a->npositional++] = arg;
    else
        return cli_usage_error(cli_find(a->command), "too many arguments");
    return 0;
}

/* An option getopt_long() did not take: unknown, or a value where none is taken. getopt says which
 * in optopt: 0 for an unknown long option, the option's value for a long one given a value (the
 * long-only options are >= 256; 'h' is "--help=..."), else a short option's letter, which may sit
 * in a bundle ("-xh"), so only the letter is named. arg (argv[optind - 1]) is a long option's
 * element. Never echoes a value whole: it may be a secret given in the wrong place. */
static int cli_unknown_option(const cli_args *a, const char *arg, int optopt_value)
{
    const cli_command *c = a->command ? cli_find(a->command) : NULL;
    if (optopt_value > 0 && optopt_value < 256 && optopt_value != 'h')
        return cli_usage_error(c, "unknown option -%c", optopt_value);
    char masked[CLI_MASK_SIZE];
    const char *eq = strchr(arg, '=');
    if (eq != NULL)
        return cli_usage_error(c, "unknown option %.*s=%s", (int)(eq - arg < 64 ? eq - arg : 64), arg,
                               bkoauth_mask(eq + 1, masked, sizeof masked));
    return cli_usage_error(c, "unknown option %.64s", arg);
}

/* Parses argv into a (getopt_long); returns 0, or an exit status after printing the problem.
 * Global options may come before or after the command; "--" ends the options. */
static int cli_parse(int argc, char **argv, cli_args *a)
{
    opterr = 0;
    optind = 1;
    int opt, status = 0;
    while (status == 0 && (opt = getopt_long(argc, argv, cli_optstring, cli_options, NULL)) != -1) {
        switch (opt) {
        case 1:
            status = cli_positional(a, optarg);
            break;
        case 'c':
            a->config_file = optarg;
            break;
        case 'D':
            a->database_url = optarg;
            break;
        case 'h':
            a->help = 1;
            break;
        case CLI_LONG_JSON:
            a->json = 1;
            break;
        case CLI_LONG_VERSION:
            a->version = 1;
            break;
        case CLI_LONG_APP:
            a->app = 1;
            break;
        case CLI_LONG_COOKIE:
            a->cookie = optarg;
            break;
        case CLI_LONG_CLIENT_IP:
            a->client_ip = optarg;
            break;
        case CLI_LONG_AGENT: /* "--agent SOCKET": the next argument when it holds a '/' */
            a->agent = 1;
            a->agent_socket = optarg;
            if (optarg == NULL && optind < argc && strchr(argv[optind], '/') != NULL)
                a->agent_socket = argv[optind++];
            break;
        case ':':
            status = cli_usage_error(a->command ? cli_find(a->command) : NULL, "option %.64s needs a value",
                                     argv[optind - 1]);
            break;
        default:
            status = cli_unknown_option(a, argv[optind - 1], optopt);
            break;
        }
    }
    for (int i = optind; status == 0 && i < argc; i++) /* after "--" */
        status = cli_positional(a, argv[i]);
    return status;
}

/* Checks the arguments against the command: counts and options. 0 or exit status 2. */
static int cli_check(const cli_command *c, const cli_args *a)
{
    unsigned given = (a->cookie ? CLI_OPT_COOKIE : 0u) | (a->client_ip ? CLI_OPT_CLIENT_IP : 0u) |
                     (a->app ? CLI_OPT_APP : 0u);
    unsigned extra = given & ~c->options;
    if (extra & CLI_OPT_COOKIE) return cli_usage_error(c, "%s does not take --cookie", c->name);
    if (extra & CLI_OPT_CLIENT_IP) return cli_usage_error(c, "%s does not take --client-ip", c->name);
    if (extra & CLI_OPT_APP) return cli_usage_error(c, "%s does not take --app", c->name);
    if (a->npositional > c->max_args) return cli_usage_error(c, "%s: too many arguments", c->name);
    if (c->run == cmd_delete) {
        if (a->app && a->npositional > 0) return cli_usage_error(c, "delete: give USER or --app, not both");
        if (!a->app && a->npositional == 0)
            return cli_usage_error(c, "delete: missing USER (or --app for the APP token)");
    } else if (a->npositional < c->min_args) {
        return cli_usage_error(c, "%s: missing USER", c->name);
    }
    if (c->min_args > 0 && a->positional[0] != NULL && a->positional[0][0] == '\0')
        return cli_usage_error(c, "%s: USER must not be empty", c->name);
    if (c->run == cmd_delete && !a->app && a->positional[0][0] == '\0')
        return cli_usage_error(c, "delete: USER must not be empty");
    if (c->run == cmd_user_token) {
        if (a->cookie == NULL)
            return cli_usage_error(c, "user-token: --cookie HEADER is required (the user's Cookie header, "
                                      "e.g. --cookie 'bk_token=...')");
        if (a->client_ip != NULL && a->client_ip[0] == '\0')
            return cli_usage_error(c, "user-token: --client-ip must not be empty");
    }
    return 0;
}

/* --version, no command, "help [COMMAND]" and --help: the exit status, or -1 when the command
 * line asks for none of them. */
static int cli_help(const cli_args *a)
{
    if (a->version) {
        printf("bkoauth %s (libbkoauth %s)\n", BKOAUTH_VERSION_STRING, bkoauth_version());
        return CLI_EXIT_OK;
    }
    if (a->command == NULL) {
        if (a->help) {
            cli_print_tool_help(stdout);
            return CLI_EXIT_OK;
        }
        fputs("bkoauth: missing COMMAND\n", stderr);
        cli_print_tool_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(a->command, "help") == 0) {
        if (a->npositional == 0) {
            cli_print_tool_help(stdout);
            return CLI_EXIT_OK;
        }
        const cli_command *c = cli_find(a->positional[0]);
        if (c == NULL || a->npositional > 1)
            return cli_usage_error(NULL, "help: no such command '%.64s'", a->positional[0]);
        cli_print_command_help(stdout, c);
        return CLI_EXIT_OK;
    }
    const cli_command *c = cli_find(a->command);
    if (c == NULL) return cli_usage_error(NULL, "unknown command '%.64s'", a->command);
    if (a->help) {
        cli_print_command_help(stdout, c);
        return CLI_EXIT_OK;
    }
    return -1;
}

/* Runs command c with a client made from the settings. The exit status. */
static int cli_run(const cli_command *c, const cli_args *a)
{
    if (a->agent && !cli_agent_serves(c->name))
        return cli_usage_error(
            c, "--agent: the agent serves app-token, user-token, token and refresh, not %s", c->name);
    if (c->run == cmd_check) return cli_run_check(a);
    const char *agent = cli_agent_serves(c->name) ? cli_agent_socket(a->agent, a->agent_socket) : NULL;
    if (agent != NULL)
        return cli_agent_run(
            &(cli_agent_call){agent, c->name, a->positional[0], a->cookie, a->client_ip, a->json});
    bkoauth_error e;
    memset(&e, 0, sizeof e);
    bkoauth_config *config = cli_settings(a, &e);
    if (config == NULL) return cli_fail(&e);
    bkoauth_client *client = bkoauth_client_new(config, &e);
    bkoauth_config_free(config);
    if (client == NULL) return cli_fail(&e);
    bkoauth_client_set_logger(client, cli_logger, NULL);
    cli_log.n = 0; /* what the new logger is told again (TLS verification off) is on stderr already */
    int status = c->run(client, a);
    bkoauth_client_free(client);
    cli_log_flush(NULL);
    return status;
}

int main(int argc, char **argv)
{
    if (CLI_SET_ALLOCATORS() != BKOAUTH_OK) {
        fputs("bkoauth: could not set up the allocators\n", stderr);
        return CLI_EXIT_OTHER;
    }
    cli_args a;
    memset(&a, 0, sizeof a);
    int status = cli_parse(argc, argv, &a);
    if (status != 0) return status;
    if ((status = cli_help(&a)) >= 0) return status;
    const cli_command *c = cli_find(a.command);
    if ((status = cli_check(c, &a)) != 0) return status;
    status = cli_run(c, &a);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "bkoauth: could not write the output: %s\n", strerror(errno));
        return CLI_EXIT_OTHER;
    }
    return status;
}
