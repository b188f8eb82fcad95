/* SPDX-License-Identifier: MIT */
/* cli_agent.c - bkoauth --agent [SOCKET] / BKOAUTH_AGENT: the token commands (app-token,
 * user-token, token, refresh) asked of a running bkoauth-agent instead of opening the store.
 *
 * A plain AF_UNIX stream socket and a small HTTP/1.1 client (one request per connection,
 * "Connection: close"; an answer with Content-Length, chunked, or up to the end of the stream),
 * no libcurl: the command starts and ends in a few milliseconds, which is the point of the
 * agent. The API is docs/AGENT.md's; the answers are parsed with Jansson and printed exactly as
 * the direct path prints them (the access_token alone, or the token's JSON object), with the
 * same exit statuses. */
#define _GNU_SOURCE /* timegm */
#include "cli_agent.h"

#include <bkoauth.h>

#include "internal.h" /* bk_scrub: what the command line writes of outside text */

#include <jansson.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CLI_AGENT_TIMEOUT_MS 60000       /* an answer that needs an SSM call included */
#define CLI_AGENT_MAX_ANSWER (1u << 20) /* headers and body together */
#define CLI_AGENT_EXIT_OTHER 1

/* ---- the command's call --------------------------------------------------------------------- */

int cli_agent_serves(const char *command)
{
    static const char *const served[] = {"app-token", "user-token", "token", "refresh"};
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
        if (command != NULL && strcmp(command, served[i]) == 0) return 1;
    return 0;
}

const char *cli_agent_socket(int enabled, const char *option)
{
    const char *env = getenv(CLI_AGENT_ENV);
    if (env != NULL && env[0] == '\0') env = NULL;
    if (!enabled) return env;
    if (option != NULL && option[0] != '\0') return option;
    return env != NULL ? env : CLI_AGENT_DEFAULT_SOCKET;
}

/* "bkoauth: <text>" on stderr, the text made fit for one line; the exit status 1. */
static int cli_agent_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int cli_agent_say(const char *fmt, ...)
{
    char text[1400], safe[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    bk_scrub(safe, sizeof safe, text, strlen(text), 0);
    fprintf(stderr, "bkoauth: %s\n", safe);
    return CLI_AGENT_EXIT_OTHER;
}

/* ---- the connection ------------------------------------------------------------------------- */

static int64_t cli_agent_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 timed out, -1 error. */
static int cli_agent_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - cli_agent_now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (n > 0) return 1;
        if (n < 0 && errno != EINTR) return -1;
    }
}

/* Connects to the agent's socket. The descriptor, or -1 after saying why (exit status 1). */
static int cli_agent_connect(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        cli_agent_say("the agent's socket path %.120s... is longer than a Unix socket path may be (%zu bytes)",
                      path, sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        cli_agent_say("cannot make a Unix socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    int err = errno;
    close(fd);
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR)
        cli_agent_say("no agent at %s: start bkoauth-agent or unset BKOAUTH_AGENT (%s)", path, strerror(err));
    else if (err == EACCES || err == EPERM)
        cli_agent_say("no access to the agent's socket %s (%s): join the socket's group (bkoauth-clients "
                      "with the packaged units) or ask for the agent with another --agent SOCKET",
                      path, strerror(err));
    else
        cli_agent_say("cannot connect to the agent at %s: %s", path, strerror(err));
    return -1;
}

/* Writes all of buf. 0, or -1 after saying why. */
static int cli_agent_send(int fd, const char *path, const char *buf, size_t len, int64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        int ready = cli_agent_wait(fd, POLLOUT, deadline);
        if (ready <= 0) {
            cli_agent_say("could not send the request to the agent at %s: %s", path,
                          ready == 0 ? "it takes no input (timed out)" : strerror(errno));
            return -1;
        }
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            cli_agent_say("could not send the request to the agent at %s: %s", path,
                          n < 0 ? strerror(errno) : "connection closed");
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* The answer as read: the whole stream up to its end (the request said Connection: close). */
typedef struct cli_agent_buf {
    char *data;
    size_t len, cap;
} cli_agent_buf;

/* Reads the answer until the agent closes the connection. 0, or -1 after saying why. */
static int cli_agent_receive(int fd, const char *path, cli_agent_buf *b, int64_t deadline)
{
    for (;;) {
        if (b->cap - b->len < 4096) {
            size_t cap = b->cap ? b->cap * 2 : 8192;
            char *grown = cap <= CLI_AGENT_MAX_ANSWER + 8192 ? realloc(b->data, cap + 1) : NULL;
            if (grown == NULL) {
                cli_agent_say("the agent at %s answered more than %u bytes, or memory ran out reading it", path,
                              CLI_AGENT_MAX_ANSWER);
                return -1;
            }
            b->data = grown;
            b->cap = cap;
        }
        int ready = cli_agent_wait(fd, POLLIN, deadline);
        if (ready <= 0) {
            cli_agent_say("the agent at %s did not answer within %d s%s%s", path, CLI_AGENT_TIMEOUT_MS / 1000,
                          ready < 0 ? ": " : "", ready < 0 ? strerror(errno) : "");
            return -1;
        }
        ssize_t n = recv(fd, b->data + b->len, b->cap - b->len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) {
            cli_agent_say("reading the agent's answer from %s failed: %s", path, strerror(errno));
            return -1;
        }
        if (n == 0) break;
        b->len += (size_t)n;
    }
    b->data[b->len] = '\0';
    return 0;
}

/* ---- HTTP/1.1 ------------------------------------------------------------------------------- */

/* A header's value in the header block [h, end): its first byte, its length in *len; NULL when
 * absent. Names compare without case. */
static const char *cli_agent_header(const char *h, const char *end, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    while (h < end) {
        const char *eol = memchr(h, '\n', (size_t)(end - h));
        if (eol == NULL) eol = end;
        if ((size_t)(eol - h) > nlen && strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
            const char *v = h + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        h = eol + 1;
    }
    return NULL;
}

/* Decodes a chunked body in place: its length, or (size_t)-1 when it is not well formed. */
static size_t cli_agent_unchunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end = NULL;
        if (in >= len) return (size_t)-1;
        unsigned long size = strtoul(body + in, &end, 16);
        const char *eol = memchr(body + in, '\n', len - in);
        if (end == body + in || eol == NULL) return (size_t)-1;
        in = (size_t)(eol - body) + 1;
        if (size == 0) return out;
        if (size > len - in) return (size_t)-1;
        memmove(body + out, body + in, size);
        out += size;
        in += size;
        if (in < len && body[in] == '\r') in++;
        if (in < len && body[in] == '\n') in++;
    }
}

/* Splits the answer in b into its status and body (in place, NUL-terminated). 0, or -1 after
 * saying why. */
static int cli_agent_parse(cli_agent_buf *b, const char *path, int *status, char **body, size_t *body_len)
{
    char *head_end = strstr(b->data, "\r\n\r\n");
    size_t sep = 4;
    if (head_end == NULL) head_end = strstr(b->data, "\n\n"), sep = 2;
    if (b->len < 12 || strncmp(b->data, "HTTP/1.", 7) != 0 || head_end == NULL) {
        return cli_agent_say("the program at %s did not answer in HTTP/1.1 (is it bkoauth-agent?): %.*s", path,
                             (int)(b->len < 40 ? b->len : 40), b->len ? b->data : "(nothing)"),
               -1;
    }
    *status = atoi(b->data + 9);
    char *start = head_end + sep;
    size_t len = b->len - (size_t)(start - b->data), vlen = 0;
    const char *v = cli_agent_header(b->data, head_end, "Transfer-Encoding", &vlen);
    if (v != NULL && vlen == 7 && strncasecmp(v, "chunked", 7) == 0) {
        len = cli_agent_unchunk(start, len);
        if (len == (size_t)-1) return cli_agent_say("the agent at %s sent a broken chunked answer", path), -1;
    } else if ((v = cli_agent_header(b->data, head_end, "Content-Length", &vlen)) != NULL) {
        unsigned long long n = strtoull(v, NULL, 10);
        if (n > len)
            return cli_agent_say("the agent at %s closed the connection within its answer (%zu of %llu bytes)", path,
                                 len, n),
                   -1;
        len = (size_t)n;
    }
    start[len] = '\0';
    *body = start;
    *body_len = len;
    return 0;
}
