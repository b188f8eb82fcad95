/* SPDX-License-Identifier: MIT */
/* http.c - the agent's HTTP/1.1 server (libmicrohttpd, a thread per connection): who may ask
 * (SO_PEERCRED on the Unix socket, a bearer secret on TCP), the request's path and body within
 * their limits, and the JSON answers. */
#define _GNU_SOURCE /* struct ucred */
#include "agent.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct transport {
    int tcp;
    struct MHD_Daemon *daemon;
} transport;

typedef struct req_state {
    char *body;
    size_t len;
    agent_route route;
    int route_rc;
    char msg[200];
    int answered; /* a refusal or a 413 queued before the body was read */
} req_state;

static transport transports[2] = {{0, NULL}, {1, NULL}};
static const agent_opts *opts;
static char *secret; /* the bearer secret (TCP), or NULL */
static atomic_int stopping;

int agent_stopping(void)
{
    return atomic_load(&stopping);
}

/* ---- answers ------------------------------------------------------------------------------- */

static void wipe_free_text(void *p)
{
    char *s = p;
    if (s == NULL) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* The body's text with a line break (malloc'ed), or NULL. */
static char *json_text(const json_t *v)
{
    size_t need = v != NULL ? json_dumpb(v, NULL, 0, JSON_COMPACT) : 0;
    char *text = need > 0 ? malloc(need + 2) : NULL;
    if (text == NULL) return NULL;
    if (json_dumpb(v, text, need, JSON_COMPACT) != need) {
        free(text);
        return NULL;
    }
    text[need] = '\n';
    text[need + 1] = '\0';
    return text;
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, char *text, const char *type,
                                  const agent_answer *a, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(strlen(text), text, wipe_free_text);
    if (r == NULL) {
        wipe_free_text(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (allow != NULL) MHD_add_response_header(r, "Allow", allow);
    if (a != NULL && a->retry_after) MHD_add_response_header(r, "Retry-After", AGENT_RETRY_AFTER);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (a != NULL && a->close) MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends a (and frees its body); counts the request. */
static enum MHD_Result send_answer(struct MHD_Connection *c, agent_op op, agent_answer *a, const char *allow)
{
    char *text = json_text(a->body);
    json_decref(a->body);
    a->body = NULL;
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":\"OutOfMemory\",\"message\":\"out of memory building the answer\","
            "\"status\":500}\n";
        text = malloc(sizeof oom);
        if (text == NULL) return MHD_NO;
        memcpy(text, oom, sizeof oom);
        a->status = 500;
        a->result = "OutOfMemory";
    }
    agent_count_request(op, a->result != NULL ? a->result : "InternalError");
    return queue_text(c, a->status, text, "application/json", a, allow);
}

static enum MHD_Result send_error(struct MHD_Connection *c, agent_op op, unsigned status, const char *name,
                                  const char *message, const char *allow, int close)
{
    agent_answer a = {0};
    agent_error(&a, status, name, "%s", message);
    a.close = close;
    return send_answer(c, op, &a, allow);
}

static enum MHD_Result send_metrics(struct MHD_Connection *c)
{
    bkoauth_stats s;
    agent_clients_stats(&s);
    char *text = agent_metrics_text(&s);
    if (text == NULL)
        return send_error(c, OP_METRICS, 500, "OutOfMemory", "out of memory building the metrics", NULL, 0);
    agent_count_request(OP_METRICS, "OK");
    return queue_text(c, 200, text, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
}

/* ---- who may ask --------------------------------------------------------------------------- */

static int peer_allowed(const struct ucred *cr)
{
    for (size_t i = 0; i < opts->n_uids; i++)
        if (opts->uids[i] == cr->uid) return 1;
    for (size_t i = 0; i < opts->n_gids; i++)
        if (opts->gids[i] == cr->gid) return 1;
    return 0;
}

/* Compares in time independent of where the strings differ. */
static int secret_equal(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    unsigned char d = gl != wl;
    for (size_t i = 0; i < wl; i++)
        d |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? given[i] : 0);
    return d == 0;
}

static const char *peer_address(struct MHD_Connection *c, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ci != NULL && ci->client_addr != NULL && ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)ci->client_addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (ci != NULL && ci->client_addr != NULL && ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)ci->client_addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, size, "%s port %u", host, port);
    return buf;
}

static unsigned check_unix(struct MHD_Connection *c, const char **why)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
        agent_log(AGENT_WARNING,
                  "refused a request on the Unix socket: cannot read the caller's credentials");
        *why = "the caller's credentials cannot be read";
        return 403;
    }
    if (peer_allowed(&cr)) return 0;
    agent_log(AGENT_WARNING,
              "refused a request on the Unix socket from uid %u gid %u (pid %d): not in the allow list",
              (unsigned)cr.uid, (unsigned)cr.gid, (int)cr.pid);
    *why = "this uid and gid may not ask this agent (see its --allow-uid and --allow-gid)";
    return 403;
}

static unsigned check_tcp(struct MHD_Connection *c, const char **why)
{
    char addr[INET6_ADDRSTRLEN + 16];
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (auth == NULL) {
        agent_log(AGENT_WARNING, "refused a request on TCP from %s: no Authorization header",
                  peer_address(c, addr, sizeof addr));
        *why = "send Authorization: Bearer with the agent's secret";
        return 401;
    }
    if (strncasecmp(auth, "Bearer ", 7) == 0 && secret != NULL && secret_equal(auth + 7, secret)) return 0;
    agent_log(AGENT_WARNING, "refused a request on TCP from %s: wrong bearer secret or scheme",
              peer_address(c, addr, sizeof addr));
    *why = "the bearer secret is wrong";
    return 403;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* The first call of a request: who asks, what path, a body announced too large. */
static enum MHD_Result request_begin(const transport *t, struct MHD_Connection *c, const char *url,
                                     req_state *st)
{
    const char *why = NULL;
    unsigned refused = t->tcp ? check_tcp(c, &why) : check_unix(c, &why);
    if (refused != 0) {
        agent_count_refused(t->tcp);
        st->answered = 1;
        return send_error(c, OP_OTHER, refused, refused == 401 ? "Unauthorized" : "Forbidden", why, NULL, 1);
    }
    st->route_rc = agent_route_parse(url, strlen(url), &st->route, st->msg, sizeof st->msg);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL && strtoull(cl, NULL, 10) > AGENT_MAX_BODY) {
        st->answered = 1;
        return send_error(c, st->route.op, 413, "PayloadTooLarge", "the body is over 16384 bytes", NULL, 1);
    }
    return MHD_YES;
}

/* A piece of the body: kept up to AGENT_MAX_BODY, else 413 at once. */
static enum MHD_Result request_data(struct MHD_Connection *c, req_state *st, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (st->answered) return MHD_YES;
    if (st->len + n > AGENT_MAX_BODY) {
        st->answered = 1;
        return send_error(c, st->route.op, 413, "PayloadTooLarge", "the body is over 16384 bytes", NULL, 1);
    }
    char *b = realloc(st->body, st->len + n + 1);
    if (b == NULL) return MHD_NO;
    memcpy(b + st->len, data, n);
    st->body = b;
    st->len += n;
    b[st->len] = '\0';
    return MHD_YES;
}

/* The whole request is in: the answer. */
static enum MHD_Result request_end(const transport *t, struct MHD_Connection *c, const char *method,
                                   req_state *st)
{
    const char *allow = NULL;
    agent_op op = st->route.op;
    if (st->route_rc == 404)
        return send_error(c, OP_OTHER, 404, "NotFound", "no such path; see docs/AGENT.md", NULL, 0);
    if (st->route_rc != 0) return send_error(c, OP_OTHER, 400, "BadRequest", st->msg, NULL, 0);
    if (!agent_method_ok(op, method, &allow))
        return send_error(c, op, 405, "MethodNotAllowed", "this path takes another method (see Allow)", allow,
                          0);
    if (agent_stopping() && op != OP_METRICS && op != OP_STATS)
        return send_error(c, op, 503, "ShuttingDown", "the agent is stopping; retry", NULL, 1);
    agent_answer a = {0};
    if (op == OP_METRICS) return send_metrics(c);
    if (op == OP_HEALTHZ)
        agent_healthz(&a, t->tcp ? "tcp" : "unix");
    else if (op == OP_STATS)
        agent_stats(&a);
    else
        agent_workers_run_op(&st->route, st->body != NULL ? st->body : "", st->len, &a);
    return send_answer(c, op, &a, NULL);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size,
                              void **con_cls)
{
    (void)version;
    const transport *t = cls;
    req_state *st = *con_cls;
    if (st == NULL) {
        st = calloc(1, sizeof *st);
        if (st == NULL) return MHD_NO;
        *con_cls = st;
        agent_in_flight_add(1);
        return request_begin(t, c, url, st);
    }
    if (*upload_size != 0) return request_data(c, st, upload_data, upload_size);
    if (st->answered) return MHD_YES;
    return request_end(t, c, method, st);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req_state *st = *con_cls;
    if (st == NULL) return;
    if (st->body != NULL) explicit_bzero(st->body, st->len);
    free(st->body);
    free(st);
    *con_cls = NULL;
    agent_in_flight_add(-1);
}

/* Paths are taken as sent: route.c decodes the one segment that may be encoded. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static struct MHD_Daemon *start_daemon(transport *t, int fd)
{
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC;
    if (!opts->quiet) flags |= MHD_USE_ERROR_LOG;
    return MHD_start_daemon(flags, 0, NULL, NULL, handle, t, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, opts->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            opts->timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)AGENT_MAX_HEADER * 2,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
                            no_unescape, NULL, MHD_OPTION_END);
}

int agent_http_start(const agent_opts *o, const agent_sockets *s, const char *bearer)
{
    opts = o;
    if (bearer != NULL && (secret = malloc(strlen(bearer) + 1)) != NULL)
        memcpy(secret, bearer, strlen(bearer) + 1);
    int fds[2] = {s->unix_fd, s->tcp_fd};
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0) continue;
        transports[i].daemon = start_daemon(&transports[i], fds[i]);
        if (transports[i].daemon == NULL) {
            agent_log(AGENT_ERROR, "cannot serve on the %s socket (libmicrohttpd would not start)",
                      i ? "TCP" : "Unix");
            agent_http_stop(0);
            return -1;
        }
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int agent_http_stop(unsigned stop_timeout)
{
    atomic_store(&stopping, 1);
    for (int i = 0; i < 2; i++)
        if (transports[i].daemon != NULL) MHD_quiesce_daemon(transports[i].daemon);
    for (long waited = 0; agent_in_flight() > 0 && waited < (long)stop_timeout * 1000; waited += 20)
        sleep_ms(20);
    if (agent_in_flight() > 0) {
        /* stopping the daemons would wait for those requests' threads: the caller exits instead */
        agent_log(AGENT_WARNING,
                  "stopping with %ld request(s) still in flight after %u s: their callers get no answer",
                  agent_in_flight(), stop_timeout);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (transports[i].daemon != NULL) MHD_stop_daemon(transports[i].daemon);
        transports[i].daemon = NULL;
    }
    if (secret != NULL) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
        secret = NULL;
    }
    return 0;
}
