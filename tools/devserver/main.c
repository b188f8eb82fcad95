/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver - a local SSM token service for development and tests.
 *
 * Serves both wire protocols of the BlueKing SSM service (docs/PROTOCOL.md; ieod: GET with a
 * query string; ee: POST with JSON and X-BK-APP-* headers), issues tokens for configured users,
 * keeps an old access_token valid for --overlap seconds after its refresh, makes every
 * refresh_token single-use, and offers test endpoints under /__dev/ (counters, token validity,
 * injected faults, runtime settings). Loopback only unless --allow-remote.
 *
 * This file: the options, the signals, the port file, and starting and stopping the daemon.
 * The other files are named in devserver.h. See docs/DEVSERVER.md. */
#include "devserver.h"
#include "../common/port_file.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEV_GO_ON (-1) /* an option step's answer when the program goes on (else: the exit status) */

/* What main needs of the options besides what they set in S. */
typedef struct dev_options {
    const char *listen_at, *port_file;
    int allow_remote;
} dev_options;

/* ---- options -------------------------------------------------------------------------------- */

static void dev_usage(FILE *f)
{
    fprintf(
        f,
        "usage: bkoauth-devserver [--listen HOST:PORT] [--port-file FILE] [--app-code C] [--app-secret S]\n"
        "                         [--user CREDENTIAL=USERNAME]... [--ttl SECONDS] [--overlap SECONDS]\n"
        "                         [--quiet] [--allow-remote] [--help]\n"
        "A local BlueKing SSM token service for development and tests (ieod and ee protocols).\n"
        "  --listen HOST:PORT   IPv4 address to listen on (default 127.0.0.1:0; port 0 picks a free port)\n"
        "  --port-file FILE     write the port there (atomically) once listening\n"
        "  --app-code C         the app code accepted (default demo-app)\n"
        "  --app-secret S       its secret (default demo-secret)\n"
        "  --user CRED=NAME     a login credential (e.g. a bk_token value) and its user; repeatable\n"
        "  --ttl SECONDS        token lifetime (default 15552000, 180 days)\n"
        "  --overlap SECONDS    how long an old access_token stays valid after a refresh (default 60)\n"
        "  --quiet              print nothing but errors\n"
        "  --allow-remote       allow a non-loopback address (a test server: never expose it)\n"
        "Test endpoints: /__dev/counters, /__dev/reset, /__dev/token, /__dev/fault, /__dev/config,\n"
        "/__dev/health (see docs/DEVSERVER.md). Stops on SIGINT or SIGTERM.\n");
}

/* Prints "bkoauth-devserver: <message>" and the usage on stderr; returns 2 (the exit status). */
__attribute__((format(printf, 1, 2))) static int dev_bad_arg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bkoauth-devserver: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    dev_usage(stderr);
    return 2;
}

enum {
    OPT_LISTEN = 256,
    OPT_PORT_FILE,
    OPT_APP_CODE,
    OPT_APP_SECRET,
    OPT_USER,
    OPT_TTL,
    OPT_OVERLAP,
    OPT_QUIET,
    OPT_ALLOW_REMOTE
};

static const struct option dev_long_options[] = {{"help", no_argument, NULL, 'h'},
                                                 {"quiet", no_argument, NULL, OPT_QUIET},
                                                 {"allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE},
                                                 {"listen", required_argument, NULL, OPT_LISTEN},
                                                 {"port-file", required_argument, NULL, OPT_PORT_FILE},
                                                 {"app-code", required_argument, NULL, OPT_APP_CODE},
                                                 {"app-secret", required_argument, NULL, OPT_APP_SECRET},
                                                 {"user", required_argument, NULL, OPT_USER},
                                                 {"ttl", required_argument, NULL, OPT_TTL},
                                                 {"overlap", required_argument, NULL, OPT_OVERLAP},
                                                 {NULL, 0, NULL, 0}};

/* Whether word is an option spelled out whole (-h, or -- and a long name). getopt_long also takes
 * abbreviations (--lis), --name=value and bundled short options (-hh); the devserver has always
 * refused them as unknown options, and still does. */
static int dev_whole_option(const char *word)
{
    if (strcmp(word, "-h") == 0) return 1;
    if (strncmp(word, "--", 2) != 0) return 0;
    for (const struct option *o = dev_long_options; o->name != NULL; o++)
        if (strcmp(word + 2, o->name) == 0) return 1;
    return 0;
}

/* --user CREDENTIAL=USERNAME */
static int dev_add_user(const char *v)
{
    const char *eq = strchr(v, '=');
    if (eq == NULL || eq == v || eq[1] == '\0')
        return dev_bad_arg("--user wants CREDENTIAL=USERNAME, got '%s'", v);
    if (S.users >= DEV_MAX_USERS) return dev_bad_arg("too many --user options (at most %d)", DEV_MAX_USERS);
    S.cred[S.users] = strndup(v, (size_t)(eq - v));
    if (S.cred[S.users] == NULL) return 1;
    S.user[S.users++] = eq + 1;
    return DEV_GO_ON;
}

/* Takes option id (spelled word) with its value v; DEV_GO_ON, or the exit status. */
static int dev_take_option(int id, const char *word, const char *v, dev_options *o)
{
    switch (id) {
    case 'h':
        dev_usage(stdout);
        return 0;
    case OPT_QUIET:
        S.quiet = 1;
        return DEV_GO_ON;
    case OPT_ALLOW_REMOTE:
        o->allow_remote = 1;
        return DEV_GO_ON;
    case OPT_LISTEN:
        o->listen_at = v;
        return DEV_GO_ON;
    case OPT_PORT_FILE:
        if (v[0] == '\0') return dev_bad_arg("--port-file needs a file name");
        o->port_file = v;
        return DEV_GO_ON;
    case OPT_APP_CODE:
    case OPT_APP_SECRET:
        if (v[0] == '\0') return dev_bad_arg("%s must not be empty", word);
        *(id == OPT_APP_CODE ? &S.app_code : &S.app_secret) = v;
        return DEV_GO_ON;
    case OPT_USER:
        return dev_add_user(v);
    case OPT_TTL:
        if (dev_parse_long(v, 0, DEV_MAX_SECONDS, &S.ttl) != 0)
            return dev_bad_arg("--ttl wants whole seconds (0 to 3153600000), got '%s'", v);
        return DEV_GO_ON;
    default: /* OPT_OVERLAP */
        if (dev_parse_long(v, 0, DEV_MAX_SECONDS, &S.overlap) != 0)
            return dev_bad_arg("--overlap wants whole seconds (0 to 3153600000), got '%s'", v);
        return DEV_GO_ON;
    }
}

/* Reads the options in order; DEV_GO_ON, or the exit status (0 after --help, 2 for a bad one).
 * '+' stops at the first word that is no option, which is refused, as is a "--". */
static int dev_parse_args(int argc, char **argv, dev_options *o)
{
    opterr = 0; /* the messages are the devserver's own */
    for (;;) {
        int at = optind;
        int id = getopt_long(argc, argv, "+:h", dev_long_options, NULL);
        if (id == -1 && optind == at + 1) return dev_bad_arg("unknown option %s", argv[at]); /* "--" */
        if (id == -1 && optind < argc) return dev_bad_arg("unknown option %s", argv[optind]);
        if (id == -1) return DEV_GO_ON;
        if (id == '?' || !dev_whole_option(argv[at])) return dev_bad_arg("unknown option %s", argv[at]);
        if (id == ':') return dev_bad_arg("%s needs a value", argv[at]);
        int r = dev_take_option(id, argv[at], optarg, o);
        if (r != DEV_GO_ON) return r;
    }
}

/* --listen HOST:PORT into sa and host (localhost is 127.0.0.1); a non-loopback address only
 * with --allow-remote. DEV_GO_ON, or the exit status. */
static int dev_listen_address(const dev_options *o, struct sockaddr_in *sa, char *host, size_t cap)
{
    const char *colon = strrchr(o->listen_at, ':');
    long port = -1;
    if (colon == NULL || colon == o->listen_at || (size_t)(colon - o->listen_at) >= cap ||
        dev_parse_long(colon + 1, 0, 65535, &port) != 0)
        return dev_bad_arg("--listen wants HOST:PORT (e.g. 127.0.0.1:0), got '%s'", o->listen_at);
    memcpy(host, o->listen_at, (size_t)(colon - o->listen_at));
    host[colon - o->listen_at] = '\0';
    if (strcmp(host, "localhost") == 0) snprintf(host, cap, "127.0.0.1");
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return dev_bad_arg("--listen: '%s' is not an IPv4 address (or localhost)", host);
    if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127 && !o->allow_remote) {
        fprintf(stderr,
                "bkoauth-devserver: refusing to listen on %s, which is not a loopback address: this test "
                "server hands out tokens to anyone (use --allow-remote if you really mean it)\n",
                host);
        return 2;
    }
    return DEV_GO_ON;
}

/* ---- the daemon ----------------------------------------------------------------------------- */

/* SIGINT/SIGTERM are blocked here, before any thread starts, so every thread inherits the mask
 * and main takes them with sigwait; SIGPIPE is ignored. */
static void dev_block_stop_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGINT);
    sigaddset(stop, SIGTERM);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static struct MHD_Daemon *dev_start_daemon(struct sockaddr_in *sa)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    if (!S.quiet) flags |= MHD_USE_ERROR_LOG;
    return MHD_start_daemon(flags, 0, NULL, NULL, dev_handle, NULL, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)sa, MHD_OPTION_URI_LOG_CALLBACK, dev_log_uri, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, dev_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)30, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
}

static void dev_announce(const char *host, unsigned port)
{
    if (S.quiet) return;
    printf("bkoauth-devserver listening on http://%s:%u\n", host, port);
    printf("app %s, %d user%s, ttl %ld s, overlap %ld s; test endpoints under /__dev/\n", S.app_code, S.users,
           S.users == 1 ? "" : "s", S.ttl, S.overlap);
    fflush(stdout);
}

/* Waits for SIGINT or SIGTERM, stops the daemon (slow faults stop sleeping) and frees the state. */
static void dev_wait_and_stop(struct MHD_Daemon *d, const sigset_t *stop, const char *port_file)
{
    int sig = 0;
    while (sigwait(stop, &sig) != 0)
        ;
    atomic_store(&dev_stopping, 1);
    MHD_stop_daemon(d); /* waits for the connection threads */
    if (port_file != NULL) unlink(port_file);
    if (!S.quiet) fprintf(stderr, "bkoauth-devserver: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pthread_mutex_lock(&S.mu);
    dev_free_tokens();
    json_decref(S.last);
    dev_clear_fault();
    pthread_mutex_unlock(&S.mu);
    for (int i = 0; i < S.users; i++)
        free(S.cred[i]);
}

int main(int argc, char **argv)
{
    dev_options o = {"127.0.0.1:0", NULL, 0};
    struct sockaddr_in sa;
    char host[64];
    int r = dev_parse_args(argc, argv, &o);
    if (r == DEV_GO_ON) r = dev_listen_address(&o, &sa, host, sizeof host);
    if (r != DEV_GO_ON) return r;

    sigset_t stop;
    dev_block_stop_signals(&stop);
    struct MHD_Daemon *d = dev_start_daemon(&sa);
    if (d == NULL) {
        fprintf(stderr, "bkoauth-devserver: cannot listen on %s (in use? try port 0): %s\n", o.listen_at,
                strerror(errno));
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info && info->port ? info->port : (unsigned)ntohs(sa.sin_port);
    if (o.port_file != NULL && tool_write_port_file(o.port_file, bound) != 0) {
        fprintf(stderr, "bkoauth-devserver: cannot write the port file %s: %s\n", o.port_file,
                strerror(errno));
        MHD_stop_daemon(d);
        return 1;
    }
    dev_announce(host, bound);
    dev_wait_and_stop(d, &stop, o.port_file);
    return 0;
}
