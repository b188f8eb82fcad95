/* SPDX-License-Identifier: MIT */
/* agent.c - bkoauth --agent [SOCKET] / BKOAUTH_AGENT: the token commands (app-token,
 * user-token, token, refresh) asked of a running bkoauth-agent instead of opening the store.
 *
 * A plain AF_UNIX stream socket and a small HTTP/1.1 client (one request per connection,
 * "Connection: close"; an answer with Content-Length, chunked, or up to the end of the stream),
 * no libcurl: the command starts and ends in a few milliseconds, which is the point of the
 * agent. The API is docs/AGENT.md's; the answers are parsed with Jansson and printed exactly as
 * the direct path prints them (the access_token alone, or the token's JSON object), with the
 * same exit statuses. */
#define _GNU_SOURCE /* timegm */
#include "agent.h"
#include "cli.h" /* cli_json_text */

#include <bkoauth.h>

#include "internal.h" /* bk_scrub: what the command line writes of outside text */

#include <jansson.h>

#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CLI_AGENT_TIMEOUT_MS 60000      /* an answer that needs an SSM call included */
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
        cli_agent_say(
            "the agent's socket path %.120s... is longer than a Unix socket path may be (%zu bytes)", path,
            sizeof sa.sun_path - 1);
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
            /* not realloc(): the answer holds a token, and the old block is wiped */
            char *grown = cap <= CLI_AGENT_MAX_ANSWER + 8192 ? malloc(cap + 1) : NULL;
            if (grown != NULL && b->data != NULL) {
                memcpy(grown, b->data, b->len);
                bkoauth__wipe(b->data, b->len);
                free(b->data);
            }
            if (grown == NULL) {
                cli_agent_say("the agent at %s answered more than %u bytes, or memory ran out reading it",
                              path, CLI_AGENT_MAX_ANSWER);
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
        return cli_agent_say("the program at %s did not answer in HTTP/1.1 (is it bkoauth-agent?): %.*s",
                             path, (int)(b->len < 40 ? b->len : 40), b->len ? b->data : "(nothing)"),
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
            return cli_agent_say(
                       "the agent at %s closed the connection within its answer (%zu of %llu bytes)", path,
                       len, n),
                   -1;
        len = (size_t)n;
    }
    start[len] = '\0';
    *body = start;
    *body_len = len;
    return 0;
}

/* ---- the request ---------------------------------------------------------------------------- */

/* Appends user to out percent-encoded (all but A-Z a-z 0-9 - . _ ~). 0, or -1 when it does not fit. */
static int cli_agent_encode(char *out, size_t size, const char *user)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = strlen(out);
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (k + 4 > size) return -1;
        if (plain) {
            out[k++] = (char)*p;
        } else {
            out[k++] = '%';
            out[k++] = hex[*p >> 4];
            out[k++] = hex[*p & 15];
        }
    }
    out[k] = '\0';
    return 0;
}

/* The cookies of a Cookie header as a JSON object {name: value}, split as the library splits
 * it (src/core/request.c: pairs at ';', blanks around name and value dropped, one pair of double
 * quotes around a value dropped, a name given twice: the last counts). NULL when out of memory. */
static json_t *cli_agent_cookies(const char *header)
{
    json_t *o = json_object();
    for (const char *p = header; o != NULL && *p;) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        const char *pair = p;
        while (*p && *p != ';')
            p++;
        const char *eq = memchr(pair, '=', (size_t)(p - pair));
        if (eq == NULL) continue;
        const char *ne = eq, *v = eq + 1, *ve = p;
        while (ne > pair && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') v++, ve--;
        char *name = strndup(pair, (size_t)(ne - pair));
        json_t *value = json_stringn(v, (size_t)(ve - v));
        if (name == NULL || value == NULL || json_object_set_new(o, name, value) != 0) {
            json_decref(value);
            json_decref(o);
            o = NULL;
        }
        free(name);
    }
    return o;
}

/* The login's body: {"cookies": {...}, "client_ip": IP}. Newly allocated text, or NULL. */
static char *cli_agent_login_body(const cli_agent_call *call)
{
    json_t *o = json_object(), *cookies = cli_agent_cookies(call->cookie);
    json_t *ip = json_string(call->client_ip ? call->client_ip : "127.0.0.1");
    char *text = NULL;
    if (o != NULL && cookies != NULL && ip != NULL && json_object_set(o, "cookies", cookies) == 0 &&
        json_object_set(o, "client_ip", ip) == 0)
        text = cli_json_text(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(cookies);
    json_decref(ip);
    json_decref(o);
    return text;
}

/* The request of a command: method, target (in target[size]) and body (NULL: none; else to be
 * freed). 0, or the exit status after saying why. */
static int cli_agent_route(const cli_agent_call *call, const char **method, char *target, size_t size,
                           char **body)
{
    const char *what = strcmp(call->command, "app-token") == 0    ? NULL
                       : strcmp(call->command, "token") == 0      ? "token"
                       : strcmp(call->command, "user-token") == 0 ? "login"
                                                                  : "refresh";
    *body = NULL;
    *method = what == NULL || strcmp(what, "token") == 0 ? "GET" : "POST";
    if (what == NULL) {
        snprintf(target, size, "/v1/app/token");
        return 0;
    }
    snprintf(target, size, "/v1/users/");
    if (cli_agent_encode(target, size - 16, call->user) != 0)
        return cli_agent_say("InvalidArgument: the user name is too long for the agent's API");
    strcat(target, "/");
    strcat(target, what);
    if (strcmp(what, "login") == 0 && (*body = cli_agent_login_body(call)) == NULL)
        return cli_agent_say("OutOfMemory: could not build the login request");
    return 0;
}

/* Asks the agent: the answer's HTTP status and body (in b). 0, or the exit status after saying why. */
static int cli_agent_ask(const cli_agent_call *call, cli_agent_buf *b, int *status, char **body,
                         size_t *body_len)
{
    const char *method;
    char target[1200], head[1600];
    char *payload = NULL;
    int rc = cli_agent_route(call, &method, target, sizeof target, &payload);
    if (rc != 0) return rc;
    size_t plen = payload ? strlen(payload) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: bkoauth-agent\r\nUser-Agent: bkoauth/%s\r\n"
                     "Accept: application/json\r\nConnection: close\r\n",
                     method, target, BKOAUTH_VERSION_STRING);
    if (payload != NULL)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", plen);
    snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    int64_t deadline = cli_agent_now_ms() + CLI_AGENT_TIMEOUT_MS;
    int fd = cli_agent_connect(call->socket);
    rc = CLI_AGENT_EXIT_OTHER;
    if (fd >= 0 && cli_agent_send(fd, call->socket, head, strlen(head), deadline) == 0 &&
        (payload == NULL || cli_agent_send(fd, call->socket, payload, plen, deadline) == 0) &&
        cli_agent_receive(fd, call->socket, b, deadline) == 0 &&
        cli_agent_parse(b, call->socket, status, body, body_len) == 0)
        rc = 0;
    if (fd >= 0) close(fd);
    free(payload);
    return rc;
}

/* ---- the answer ----------------------------------------------------------------------------- */

/* The exit status the direct path gives for an error of this name (tools/bkoauth.c): the
 * library's code names; the agent's own names (Forbidden, BadRequest, ShuttingDown...) are 1. */
static int cli_agent_exit_status(const char *name)
{
    static const struct {
        bkoauth_code code;
        int status;
    } map[] = {{BKOAUTH_E_TOKEN_API, 3},
               {BKOAUTH_E_TOKEN_NOT_EXIST, 4},
               {BKOAUTH_E_CONFIG, 5},
               {BKOAUTH_E_STORE, 6},
               {BKOAUTH_E_JWT, 7}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, bkoauth_code_name(map[i].code)) == 0) return map[i].status;
    return CLI_AGENT_EXIT_OTHER;
}

/* An error answer: "bkoauth: <error>: <message>" and its exit status. */
static int cli_agent_error(const cli_agent_call *call, int status, const json_t *answer, const char *body)
{
    const char *name = json_string_value(json_object_get(answer, "error"));
    const char *message = json_string_value(json_object_get(answer, "message"));
    if (name == NULL)
        return cli_agent_say("the agent at %s answered HTTP %d without an error name: %.200s", call->socket,
                             status, body);
    cli_agent_say("%s: %s", name, message != NULL && message[0] ? message : "(no message)");
    if (strcmp(name, "Forbidden") == 0)
        cli_agent_say(
            "the agent at %s does not serve uid %u (primary gid %u): have it started with --allow-uid "
            "or --allow-gid for it (bkoauth-agent(1), \"Who may ask\")",
            call->socket, (unsigned)getuid(), (unsigned)getgid());
    return cli_agent_exit_status(name);
}

/* The token as the direct path prints it with --json (tools/bkoauth.c, cli_token_json), but
 * for refresh_token, which the agent never hands out: has_refresh_token says whether it holds
 * one. NULL when a member is missing or out of memory. */
static json_t *cli_agent_token_json(const json_t *answer)
{
    static const char *const members[] = {"access_token", "has_refresh_token", "scope",      "env_name",
                                          "user_id",      "expires",           "expires_in", "created_at"};
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < sizeof members / sizeof members[0]; i++) {
        json_t *v = json_object_get(answer, members[i]);
        if (v == NULL || json_object_set(o, members[i], v) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* A token answer (200): the access_token alone, or the JSON object. The exit status. */
static int cli_agent_token(const cli_agent_call *call, const json_t *answer)
{
    const char *token = json_string_value(json_object_get(answer, "access_token"));
    if (token == NULL || token[0] == '\0')
        return cli_agent_say("the agent at %s answered 200 without an access_token", call->socket);
    if (call->json) {
        json_t *o = cli_agent_token_json(answer);
        char *text = o != NULL ? cli_json_text(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (text == NULL) return cli_agent_say("the agent's answer lacks a token member, or memory ran out");
        puts(text);
        bkoauth__wipe(text, strlen(text));
        free(text);
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)token; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return cli_agent_say(
                "InvalidArgument: the access_token holds characters no SSM token has; it is not "
                "printed");
    puts(token);
    return 0;
}

int cli_agent_run(const cli_agent_call *call)
{
    cli_agent_buf b = {NULL, 0, 0};
    int status = 0;
    char *body = NULL;
    size_t body_len = 0;
    int rc = cli_agent_ask(call, &b, &status, &body, &body_len);
    if (rc == 0) {
        json_error_t jerr;
        json_t *answer = json_loadb(body, body_len, 0, &jerr);
        if (!json_is_object(answer)) /* the text is quoted unless it may be a token's */
            rc = cli_agent_say("the agent at %s answered HTTP %d with no JSON object%s%.200s", call->socket,
                               status, status == 200 ? "" : ": ", status == 200 ? "" : body);
        else if (status == 200)
            rc = cli_agent_token(call, answer);
        else
            rc = cli_agent_error(call, status, answer, body);
        json_decref(answer);
    }
    if (b.data != NULL) bkoauth__wipe(b.data, b.cap);
    free(b.data);
    return rc;
}
