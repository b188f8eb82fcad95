/* SPDX-License-Identifier: MIT */
/* main.c - the bkoauth command line: get, read, refresh, list and delete saved BlueKing
 * access_tokens, and verify X-Bkapi-Jwt, from a shell.
 *
 *   bkoauth [-c FILE] [-D DATABASE_URL] [--json] COMMAND [ARGS]
 *
 * This file: the command table and the help, the options (all of them, global and per command,
 * are parsed here: cli_options and cli_parse()), the settings, and main(). The commands live in
 * cmd_*.c, what is printed in output.c (cli.h lists the files).
 *
 * Uses only the public interface of bkoauth.h. Settings: -c FILE, else $BKOAUTH_CONFIG, else
 * ./bkoauth.conf when present; the environment on top; -D last. A token command prints the
 * access_token alone on stdout; everything meant for people (list, errors) shows secrets masked.
 * Exit status: 0 ok, 2 usage, 3 TokenAPIError, 4 TokenNotExist, 5 ConfigError, 6 StoreError,
 * 7 JWTError, 1 anything else (OutOfMemory among them: an allocation that fails anywhere, in the
 * library, in Jansson or in libcurl, is reported as "bkoauth: OutOfMemory: ..."). */
#include "cli.h"

#include "agent.h" /* --agent: the token commands asked of bkoauth-agent */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_DEFAULT_CONF "bkoauth.conf"

/* The allocators, set first thing: the C library's, handed through libbkoauth's wrappers to
 * Jansson too, so that an allocation failure inside Jansson is told from bad JSON (see
 * bkoauth_set_allocators()). The test build (tests/cli/bkoauth_faulty.c, compiled with
 * BKOAUTH_CLI_TEST_ALLOCATORS) installs its fault-injecting allocator instead; this program
 * itself reads nothing of the sort. */
#ifdef BKOAUTH_CLI_TEST_ALLOCATORS
int cli_test_allocators(void);
#define CLI_SET_ALLOCATORS() cli_test_allocators()
#else
#define CLI_SET_ALLOCATORS() bkoauth_set_allocators(NULL, NULL, NULL, NULL, NULL, NULL)
#endif

/* ---- the commands ----------------------------------------------------------------------- */

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

/* ---- help --------------------------------------------------------------------------------- */

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

/* ---- settings ---------------------------------------------------------------------------- */

/* -c FILE, else $BKOAUTH_CONFIG, else ./bkoauth.conf when present; the environment; -D. */
bkoauth_config *cli_settings(const cli_args *a, bkoauth_error *e)
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
    if (c->run == cmd_check) return cmd_check(NULL, a); /* it makes its client itself */
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
    cli_log_attach(client);
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
