/* SPDX-License-Identifier: MIT */
/* main.c - bkoauth-agent: start, serve until SIGTERM, reload on SIGHUP (docs/AGENT.md). */
#include "agent.h"
#include "../common/port_file.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The bearer secret: the file's first line, at least 16 bytes. NULL (logged) when unusable. */
static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        agent_log(AGENT_ERROR, "cannot read the secret file %s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0004))
        agent_log(AGENT_WARNING, "the secret file %s can be read by everyone; chmod 0600 or 0640 it", path);
    char buf[1024];
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    size_t n = line != NULL ? strcspn(buf, "\r\n") : 0;
    buf[n] = '\0';
    char *s = n >= 16 ? malloc(n + 1) : NULL;
    if (s != NULL) memcpy(s, buf, n + 1);
    explicit_bzero(buf, sizeof buf);
    if (s == NULL)
        agent_log(AGENT_ERROR, "the secret file %s must hold a secret of at least 16 bytes on its first line",
                  path);
    return s;
}

static void started_line(const agent_opts *o, const agent_sockets *s)
{
    char env[16];
    agent_env_name(env, sizeof env);
    if (s->unix_fd >= 0 && s->unix_own)
        agent_log(AGENT_INFO, "listening on %s (env %s)", o->socket_path, env);
    else if (s->unix_fd >= 0)
        agent_log(AGENT_INFO, "listening on the Unix socket from systemd (env %s)", env);
    if (s->tcp_fd >= 0)
        agent_log(AGENT_INFO, "listening on TCP port %u (bearer secret required)", s->tcp_port);
}

/* Serves until SIGTERM or SIGINT; SIGHUP reloads. */
static void serve(const agent_opts *o, const sigset_t *set)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            agent_notify("RELOADING=1");
            agent_clients_reload(o);
            agent_notify("READY=1");
            continue;
        }
        agent_log(AGENT_INFO, "stopping (signal %d): no new connections, requests in flight finish", sig);
        agent_notify("STOPPING=1");
        return;
    }
}

static int run(const agent_opts *o, const sigset_t *set)
{
    agent_sockets s;
    char *secret = NULL;
    if (o->secret_file != NULL && (secret = read_secret(o->secret_file)) == NULL) return 1;
    if (agent_clients_start(o) != 0 || agent_sockets_open(o, &s) != 0) {
        free(secret);
        agent_clients_stop();
        return 1;
    }
    agent_workers_start();
    int rc = agent_http_start(o, &s, secret);
    if (secret != NULL) explicit_bzero(secret, strlen(secret));
    free(secret);
    if (rc == 0 && s.tcp_fd >= 0 && o->port_file != NULL &&
        tool_write_port_file(o->port_file, s.tcp_port) != 0) {
        agent_log(AGENT_ERROR, "cannot write the port file %s", o->port_file);
        agent_http_stop(0);
        rc = -1;
    }
    if (rc == 0 && agent_ahead_start(o) != 0) {
        agent_http_stop(0);
        rc = -1;
    }
    if (rc == 0) {
        started_line(o, &s);
        agent_notify("READY=1");
        serve(o, set);
        if (agent_http_stop(o->stop_timeout) != 0) {
            agent_sockets_close(o, &s); /* the socket file goes; no client, thread or lock is freed */
            if (o->port_file != NULL && s.tcp_port != 0) remove(o->port_file);
            _exit(0);
        }
        agent_ahead_stop();
    }
    agent_workers_stop();
    agent_sockets_close(o, &s);
    if (o->port_file != NULL && s.tcp_port != 0) remove(o->port_file);
    agent_clients_stop();
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    agent_opts o;
    int rc = agent_opts_parse(&o, argc, argv);
    if (rc != 0) return rc == 1 ? 0 : 2;
    agent_log_set_quiet(o.quiet);
    /* Jansson and libcurl allocate through the library's wrappers (out of memory told apart) */
    bkoauth_set_allocators(NULL, NULL, NULL, NULL, NULL, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits it; the main thread waits */
    signal(SIGPIPE, SIG_IGN);
    agent_metrics_init();
    return run(&o, &set);
}
