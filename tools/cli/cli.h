/* SPDX-License-Identifier: MIT */
/* cli.h - what the files of the bkoauth command line share. Not installed, not part of the
 * library: the command line uses only the public interface of bkoauth.h (and, for check, the
 * store's Django line).
 *
 * The files, one concern each:
 *   main.c             the command table, the options (getopt_long), help, the settings, main()
 *   output.c           text and JSON output: usage errors, exit statuses, failures, the held log
 *                      lines, times, escaping and masking, a token printed
 *   cmd_tokens.c       app-token, user-token, token, refresh
 *   cmd_list_delete.c  list, delete
 *   cmd_check.c        check
 *   cmd_verify_jwt.c   verify-jwt
 *   agent.c            --agent: the token commands asked of bkoauth-agent (agent.h)
 *
 * A new global option goes into main.c alone (cli_args, cli_options, cli_parse); a new command
 * into the table there and a cmd_*.c file of its group. */
#ifndef BKOAUTH_CLI_H
#define BKOAUTH_CLI_H

#include <bkoauth.h>

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_OTHER 1
#define CLI_EXIT_USAGE 2
#define CLI_MASK_SIZE 64

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

/* A command: runs with a client made from the settings (check: with NULL, it makes its own).
 * Returns the exit status. */
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

/* ---- the commands (cmd_*.c) ---- */
int cmd_app_token(bkoauth_client *client, const cli_args *a);
int cmd_user_token(bkoauth_client *client, const cli_args *a);
int cmd_token(bkoauth_client *client, const cli_args *a);
int cmd_refresh(bkoauth_client *client, const cli_args *a);
int cmd_list(bkoauth_client *client, const cli_args *a);
int cmd_delete(bkoauth_client *client, const cli_args *a);
int cmd_verify_jwt(bkoauth_client *client, const cli_args *a);
int cmd_check(bkoauth_client *client, const cli_args *a);

/* ---- main.c ---- */

/* The settings: -c FILE, else $BKOAUTH_CONFIG, else ./bkoauth.conf when present; the
 * environment; -D. NULL with *e set when they cannot be read. */
bkoauth_config *cli_settings(const cli_args *a, bkoauth_error *e);

/* ---- output.c ---- */

extern const char cli_usage_line[];

/* A usage error: the problem, the usage (of command c, or the tool's when NULL) and exit status 2. */
int cli_usage_error(const cli_command *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_exit_status(bkoauth_code code);
const char *cli_escape(const char *s, char *out, size_t size);

/* The library's log lines, held until the command ends (cli_log_flush()). */
void cli_log_attach(bkoauth_client *client);
void cli_log_flush(const char *error_message);

int cli_fail(const bkoauth_error *e);
const char *cli_time(int64_t t, int iso, char *buf, size_t size);
const char *cli_left(int64_t expires, int64_t now, char *buf, size_t size);
char *cli_printable(const char *s);
json_t *cli_json_str(const char *s);
int cli_json_set(json_t *obj, const char *key, json_t *value);
json_t *cli_token_json(const bkoauth_token *t, int mask, int64_t now);
/* The text of a JSON value, newly allocated (free()), or NULL when out of memory. */
char *cli_json_text(const json_t *value, size_t flags);
int cli_print_json(json_t *value);
int cli_print_token(const cli_args *a, bkoauth_token *t);

#endif
