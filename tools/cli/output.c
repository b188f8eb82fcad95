/* SPDX-License-Identifier: MIT */
/* output.c - what the bkoauth command line writes: usage errors and exit statuses, a library
 * failure as "bkoauth: <CodeName>: <message>", the library's log lines held until the command
 * ends, times and time left, text made fit for a terminal line, JSON (a token's object with its
 * secrets whole or masked) and a token command's output. */
#include "cli.h"

#include "internal.h" /* bk_scrub, bk_utf8_next: the library's own escaping */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cli_usage_line[] = "usage: bkoauth [-c FILE] [-D DATABASE_URL] [--json] COMMAND [ARGS]\n";

/* A usage error: the problem, the usage and exit status 2. */
int cli_usage_error(const cli_command *c, const char *fmt, ...)
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

int cli_exit_status(bkoauth_code code)
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
const char *cli_escape(const char *s, char *out, size_t size)
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

/* Sends client's log lines to the held ones, from now on: what a new logger is told again (TLS
 * verification off) is on stderr already. */
void cli_log_attach(bkoauth_client *client)
{
    bkoauth_client_set_logger(client, cli_logger, NULL);
    cli_log.n = 0;
}

/* Prints the held lines, except those the error message (when not NULL) contains. */
void cli_log_flush(const char *error_message)
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
int cli_fail(const bkoauth_error *e)
{
    const char *msg = e->message[0] ? e->message : "failed (no details)";
    char safe[2400];
    cli_log_flush(msg);
    fprintf(stderr, "bkoauth: %s: %s\n", bkoauth_code_name(e->code), cli_escape(msg, safe, sizeof safe));
    return cli_exit_status(e->code);
}

/* ISO 8601 UTC, "2026-05-23T10:00:00Z" (iso != 0) or "2026-05-23 10:00:00" for tables. */
const char *cli_time(int64_t t, int iso, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, size, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, size, "%s", "(invalid time)");
    return buf;
}

/* "179d 23h", "5h 12m", "3m 20s", "expired". */
const char *cli_left(int64_t expires, int64_t now, char *buf, size_t size)
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
char *cli_printable(const char *s)
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
json_t *cli_json_str(const char *s)
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
int cli_json_set(json_t *obj, const char *key, json_t *value)
{
    if (value == NULL) return -1;
    return json_object_set_new(obj, key, value);
}

/* The JSON object of a token: secrets whole (mask == 0) or masked. NULL when out of memory. */
json_t *cli_token_json(const bkoauth_token *t, int mask, int64_t now)
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
char *cli_json_text(const json_t *value, size_t flags)
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
int cli_print_json(json_t *value)
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
int cli_print_token(const cli_args *a, bkoauth_token *t)
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
