/* SPDX-License-Identifier: MIT */
/* listen.c - the agent's listening sockets (its own, or systemd's by socket activation) and
 * sd_notify (a datagram to $NOTIFY_SOCKET; no libsystemd). */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_FDS_START 3

void agent_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || (path[0] != '/' && path[0] != '@') ||
        strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@') sa.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    char msg[128];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (strcmp(state, "RELOADING=1") == 0)
        snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
    else
        snprintf(msg, sizeof msg, "%s", state);
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        agent_log(AGENT_WARNING, "cannot tell systemd %s: %s", state, strerror(errno));
    close(fd);
}

/* Socket activation: LISTEN_PID is ours and LISTEN_FDS says how many, from fd 3. 1 when taken. */
static int take_activated(agent_sockets *s)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != (long)getpid()) return 0;
    long n = strtol(fds, NULL, 10);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (long i = 0; i < n && i < 16; i++) {
        int fd = (int)(LISTEN_FDS_START + i);
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) continue;
        if (ss.ss_family == AF_UNIX && s->unix_fd < 0)
            s->unix_fd = fd;
        else if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) && s->tcp_fd < 0)
            s->tcp_fd = fd;
        else
            agent_log(AGENT_WARNING, "socket activation: fd %d is not used (one Unix and one TCP socket are)",
                      fd);
    }
    agent_log(AGENT_INFO, "socket activation: %ld socket(s) from systemd", n);
    return 1;
}

/* A socket file at path: a stale one is removed; a live one (an agent answers) or another kind
 * of file is refused. 0 or -1 (logged). */
static int clear_path(const char *path, const struct sockaddr_un *sa)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISSOCK(st.st_mode)) {
        agent_log(AGENT_ERROR, "%s exists and is not a socket; remove it or choose another --socket", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int live = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    if (fd >= 0) close(fd);
    if (live) {
        agent_log(AGENT_ERROR, "%s is in use: another agent answers on it; stop it first", path);
        return -1;
    }
    unlink(path);
    return 0;
}

static int open_unix(const agent_opts *o, agent_sockets *s)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(o->socket_path) >= sizeof sa.sun_path) {
        agent_log(AGENT_ERROR, "--socket %s is too long for a Unix socket (at most %zu bytes)",
                  o->socket_path, sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, o->socket_path, strlen(o->socket_path));
    if (clear_path(o->socket_path, &sa) != 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    umask(old);
    if (ok) s->unix_own = 1;
    ok = ok && (!o->group_set || chown(o->socket_path, (uid_t)-1, o->group) == 0) &&
         chmod(o->socket_path, (mode_t)o->socket_mode) == 0 && listen(fd, 1024) == 0;
    if (!ok) {
        agent_log(AGENT_ERROR, "cannot listen on %s: %s (does its directory exist? is the group right?)",
                  o->socket_path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    s->unix_fd = fd;
    return 0;
}

int agent_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || (size_t)(colon - spec) >= sizeof host) goto bad;
    snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535) goto bad;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1 && (ntohl(in->sin_addr.s_addr) >> 24) == 127) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof *in;
        return 0;
    }
    if (host[0] == '[' && strcmp(host, "[::1]") == 0) {
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return 0;
    }
bad:
    agent_log(AGENT_ERROR, "--listen %s: give a loopback address and a port, 127.0.0.1:PORT or [::1]:PORT",
              spec);
    return -1;
}

static int open_tcp(const agent_opts *o, agent_sockets *s)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (agent_listen_parse(o->listen, &ss, &len) != 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        agent_log(AGENT_ERROR, "cannot listen on %s: %s", o->listen, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    s->tcp_fd = fd;
    return 0;
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int agent_sockets_open(const agent_opts *o, agent_sockets *s)
{
    s->unix_fd = s->tcp_fd = -1;
    s->unix_own = 0;
    if (!take_activated(s)) {
        if (open_unix(o, s) != 0) return -1;
        if (o->listen != NULL && open_tcp(o, s) != 0) return -1;
    }
    if (s->tcp_fd >= 0 && o->secret_file == NULL) {
        agent_log(AGENT_ERROR, "a TCP socket needs --secret-file (TCP callers must send a bearer secret)");
        return -1;
    }
    if (s->unix_fd < 0 && s->tcp_fd < 0) {
        agent_log(AGENT_ERROR, "no socket to listen on");
        return -1;
    }
    if (s->tcp_fd >= 0) s->tcp_port = bound_port(s->tcp_fd);
    return 0;
}

void agent_sockets_close(const agent_opts *o, agent_sockets *s)
{
    if (s->unix_fd >= 0) close(s->unix_fd);
    if (s->tcp_fd >= 0) close(s->tcp_fd);
    if (s->unix_own) unlink(o->socket_path);
    s->unix_fd = s->tcp_fd = -1;
    s->unix_own = 0;
}
