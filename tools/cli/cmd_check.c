/* SPDX-License-Identifier: MIT */
/* cmd_check.c - check: the settings, the token store (its table, the saved tokens counted), the
 * Django migrations recorded for the table, and the SSM service, one line each (or one JSON
 * object). Runs without a client first, so that a failure to make one is a line too. */
#include "cli.h"

#include "internal.h"    /* bk_url_hide_password, client_store, client_route */
#include "store/store.h" /* store_django_migrations: check's Django line */

#include <stdio.h>
#include <string.h>

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
    cli_log_attach(client);
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

/* bkoauth check: runs without a client first (client is NULL), so that a failure to make one is
 * a line too. */
int cmd_check(bkoauth_client *none, const cli_args *a)
{
    (void)none;
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
