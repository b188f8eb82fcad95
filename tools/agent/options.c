/* SPDX-License-Identifier: MIT */
/* options.c - bkoauth-agent's command line (docs/AGENT.md, "Options"). */
#include "agent.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: bkoauth-agent [-c FILE] [-D URL] [--socket PATH] [--socket-mode MODE] [--group GROUP]\n"
    "                     [--allow-uid USER]... [--allow-gid GROUP]...\n"
    "                     [--listen 127.0.0.1:PORT --secret-file FILE] [--port-file FILE]\n"
    "                     [--refresh-ahead SECONDS] [--refresh-spread SECONDS] [--refresh-interval SECONDS]\n"
    "                     [--max-connections N] [--timeout SECONDS] [--stop-timeout SECONDS]\n"
    "                     [--quiet] [--help] [--version]\n";

static const char help_text[] =
    "Serves BlueKing access_tokens to the processes of this host over a Unix socket (HTTP/1.1, JSON).\n"
    "  -c, --config FILE         settings file (else $BKOAUTH_CONFIG, else " AGENT_DEFAULT_CONFIG
    " when present)\n"
    "  -D, --database-url URL    BKOAUTH_DATABASE_URL, over the file and the environment\n"
    "  --socket PATH             the Unix socket (default " AGENT_DEFAULT_SOCKET ")\n"
    "  --socket-mode MODE        its permissions, octal (default 0660)\n"
    "  --group GROUP             its group, also allowed to ask\n"
    "  --allow-uid USER          a uid allowed to ask (repeatable; default, when no --allow-uid\n"
    "                            and no --allow-gid is given: the agent's own)\n"
    "  --allow-gid GROUP         a primary gid allowed to ask (repeatable)\n"
    "  --listen ADDR:PORT        also loopback TCP (127.x.x.x or [::1]), with --secret-file\n"
    "  --secret-file FILE        the bearer secret TCP callers send (first line, >= 16 bytes)\n"
    "  --port-file FILE          write the TCP port there once listening\n"
    "  --refresh-ahead SECONDS   renew tokens this long before EXPIRES_SECONDS (default 3600; 0: off)\n"
    "  --refresh-spread SECONDS  spread renewals over this much of the window (default ahead / 2)\n"
    "  --refresh-interval SECONDS  how often saved tokens are looked at (default 60)\n"
    "  --max-connections N       connections at once per transport (default 256)\n"
    "  --timeout SECONDS         idle connections are closed after this (default 10)\n"
    "  --stop-timeout SECONDS    on SIGTERM, time for requests in flight (default 30)\n"
    "  --quiet                   log only warnings and errors\n"
    "See docs/AGENT.md or bkoauth-agent(1) for the API.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bkoauth-agent: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage_text, stderr);
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_uid(const char *s, uid_t *out)
{
    long v;
    if (parse_long(s, 0, INT_MAX, &v) == 0) {
        *out = (uid_t)v;
        return 0;
    }
    struct passwd *pw = getpwnam(s);
    if (pw == NULL) return -1;
    *out = pw->pw_uid;
    return 0;
}

static int parse_gid(const char *s, gid_t *out)
{
    long v;
    if (parse_long(s, 0, INT_MAX, &v) == 0) {
        *out = (gid_t)v;
        return 0;
    }
    struct group *gr = getgrnam(s);
    if (gr == NULL) return -1;
    *out = gr->gr_gid;
    return 0;
}

static void opts_defaults(agent_opts *o)
{
    memset(o, 0, sizeof *o);
    o->socket_path = AGENT_DEFAULT_SOCKET;
    o->socket_mode = 0660;
    o->ahead = 3600;
    o->spread = -1;
    o->interval = 60;
    o->max_connections = 256;
    o->timeout = 10;
    o->stop_timeout = 30;
}

/* The options taking a number. 1 when name is one of them (0 or 2 in *rc), else 0. */
static int opt_number(agent_opts *o, const char *name, const char *v, int *rc)
{
    static const struct {
        const char *name;
        long lo, hi;
    } nums[] = {{"--refresh-ahead", 0, 31536000}, {"--refresh-spread", 0, 31536000},
                {"--refresh-interval", 1, 86400}, {"--max-connections", 1, 100000},
                {"--timeout", 1, 3600},           {"--stop-timeout", 0, 3600}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcmp(name, nums[i].name) != 0) continue;
        long n;
        if (parse_long(v, nums[i].lo, nums[i].hi, &n) != 0) {
            *rc = usage_error("bad number for %s", name);
            return 1;
        }
        long *dst[] = {&o->ahead, &o->spread, &o->interval};
        if (i < 3)
            *dst[i] = n;
        else if (i == 3)
            o->max_connections = (unsigned)n;
        else if (i == 4)
            o->timeout = (unsigned)n;
        else
            o->stop_timeout = (unsigned)n;
        *rc = 0;
        return 1;
    }
    return 0;
}

/* The options taking a name or a mode. 0, or 2 (said). */
static int opt_ids(agent_opts *o, const char *name, const char *v)
{
    if (strcmp(name, "--socket-mode") == 0) {
        char *end;
        unsigned long m = strtoul(v, &end, 8);
        if (end == v || *end != '\0' || m > 0777)
            return usage_error("bad --socket-mode %s (octal, e.g. 0660)", v);
        o->socket_mode = (unsigned)m;
    } else if (strcmp(name, "--group") == 0) {
        if (parse_gid(v, &o->group) != 0) return usage_error("no such group: %s", v);
        o->group_set = 1;
    } else if (strcmp(name, "--allow-uid") == 0) {
        if (o->n_uids >= AGENT_MAX_IDS) return usage_error("too many %s", name);
        if (parse_uid(v, &o->uids[o->n_uids]) != 0) return usage_error("no such user: %s", v);
        o->n_uids++;
    } else {
        if (o->n_gids >= AGENT_MAX_IDS) return usage_error("too many %s", name);
        if (parse_gid(v, &o->gids[o->n_gids]) != 0) return usage_error("no such group: %s", v);
        o->n_gids++;
    }
    return 0;
}

/* One option with a value. 0, or 2 (said). */
static int opt_value(agent_opts *o, const char *name, const char *v)
{
    int rc;
    if (opt_number(o, name, v, &rc)) return rc;
    const char **strs[] = {&o->config_file, &o->config_file, &o->database_url, &o->database_url,
                           &o->socket_path, &o->listen,      &o->secret_file,  &o->port_file};
    const char *names[] = {"-c",       "--config",      "-D",         "--database-url", "--socket",
                           "--listen", "--secret-file", "--port-file"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) {
            *strs[i] = v;
            return 0;
        }
    if (strcmp(name, "--socket-mode") == 0 || strcmp(name, "--group") == 0 ||
        strcmp(name, "--allow-uid") == 0 || strcmp(name, "--allow-gid") == 0)
        return opt_ids(o, name, v);
    return usage_error("unknown option %s", name);
}

static int opts_check(agent_opts *o)
{
    if (o->listen != NULL && o->secret_file == NULL)
        return usage_error("%s needs --secret-file (TCP callers must send a bearer secret)", "--listen");
    struct sockaddr_storage ss;
    socklen_t len;
    if (o->listen != NULL && agent_listen_parse(o->listen, &ss, &len) != 0) return 2;
    if (o->socket_path[0] == '\0') return usage_error("%s is empty", "--socket");
    if (o->spread < 0) o->spread = o->ahead / 2;
    if (o->spread > o->ahead) o->spread = o->ahead;
    if (o->n_uids == 0 && o->n_gids == 0) o->uids[o->n_uids++] = geteuid();
    if (o->group_set && o->n_gids < AGENT_MAX_IDS) o->gids[o->n_gids++] = o->group;
    return 0;
}

int agent_opts_parse(agent_opts *o, int argc, char **argv)
{
    opts_defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            fputs(help_text, stdout);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("bkoauth-agent %s\n", bkoauth_version());
            return 1;
        }
        if (strcmp(arg, "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        char name[64];
        const char *eq = strchr(arg, '=');
        const char *value;
        if (strncmp(arg, "--", 2) == 0 && eq != NULL && (size_t)(eq - arg) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
            value = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
            if (arg[0] != '-' || i + 1 >= argc) return usage_error("unexpected argument %s", arg);
            value = argv[++i];
        }
        int rc = opt_value(o, name, value);
        if (rc != 0) return rc;
    }
    return opts_check(o);
}
