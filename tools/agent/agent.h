/* SPDX-License-Identifier: MIT */
/* agent.h - bkoauth-agent: one token service for every process on a host (docs/AGENT.md).
 * main.c starts and stops it; options.c reads the command line; clients.c holds the library
 * clients (swapped on SIGHUP); listen.c makes the sockets and speaks to systemd; http.c serves
 * the requests (libmicrohttpd); route.c parses paths and bodies; ops.c runs the operations;
 * metrics.c counts; ahead.c renews saved tokens before they are due; workers.c answers token
 * reads on long-lived threads; log.c writes the log lines. */
#ifndef BKOAUTH_AGENT_H
#define BKOAUTH_AGENT_H

#include "bkoauth.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define AGENT_DEFAULT_SOCKET "/run/bkoauth/agent.sock"
#define AGENT_DEFAULT_CONFIG "/etc/bkoauth/bkoauth.conf"
#define AGENT_MAX_BODY 16384   /* bytes of a request body */
#define AGENT_MAX_HEADER 16384 /* bytes of the request line and headers (libmicrohttpd's pool) */
#define AGENT_MAX_USER 256     /* bytes of a user name taken from a path */
#define AGENT_MAX_IDS 64       /* entries of each allow list */
#define AGENT_RETRY_AFTER "5"

/* ---- options (options.c) ------------------------------------------------------------------ */

typedef struct agent_opts {
    const char *config_file;  /* -c; NULL: $BKOAUTH_CONFIG, else AGENT_DEFAULT_CONFIG if present */
    const char *database_url; /* -D */
    const char *socket_path;
    unsigned socket_mode;
    int group_set;
    gid_t group;
    uid_t uids[AGENT_MAX_IDS];
    size_t n_uids;
    gid_t gids[AGENT_MAX_IDS];
    size_t n_gids;
    const char *listen;      /* ADDR:PORT or NULL */
    const char *secret_file; /* with listen */
    const char *port_file;
    long ahead, spread, interval; /* seconds; spread < 0: ahead / 2 */
    unsigned max_connections, timeout, stop_timeout;
    int quiet;
} agent_opts;

/* 0: run; 1: exit 0 (--help, --version printed); 2: bad arguments (said on stderr). */
int agent_opts_parse(agent_opts *o, int argc, char **argv);

/* ---- logging (log.c) ----------------------------------------------------------------------- */

enum { AGENT_ERROR, AGENT_WARNING, AGENT_INFO };
void agent_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_log_set_quiet(int quiet);

/* ---- the clients (clients.c) --------------------------------------------------------------- */

/* One generation of settings: the serving client and the refresh-ahead client (NULL when
 * refresh-ahead is off). Freed when retired (a reload) and no request holds it. */
typedef struct agent_gen {
    bkoauth_client *client;
    bkoauth_client *ahead;
    int64_t expires_seconds;
    unsigned refs;
    int retired;
} agent_gen;

/* Loads the settings and makes the clients (first start: status for exit on failure). */
int agent_clients_start(const agent_opts *o);
/* SIGHUP: new settings and clients swapped in; 0 on success, -1 (logged, the old stay). */
int agent_clients_reload(const agent_opts *o);
/* The current generation, held until agent_gen_release(). Never NULL after a start. */
agent_gen *agent_gen_acquire(void);
void agent_gen_release(agent_gen *g);
/* Retires the current generation for good (stop). */
void agent_clients_stop(void);
/* The statistics of every client since the start (retired ones summed in). */
void agent_clients_stats(bkoauth_stats *out);
/* The current env name, copied into buf. */
const char *agent_env_name(char *buf, size_t size);

/* ---- requests: paths and bodies (route.c) -------------------------------------------------- */

typedef enum agent_op {
    OP_APP_TOKEN,
    OP_USER_TOKEN,
    OP_LOGIN,
    OP_REFRESH,
    OP_HEALTHZ,
    OP_STATS,
    OP_METRICS,
    OP_OTHER,
    OP_COUNT
} agent_op;

typedef struct agent_route {
    agent_op op;
    char user[AGENT_MAX_USER + 1]; /* decoded, for the user operations */
} agent_route;

/* Parses a raw (not yet percent-decoded) path. 0: r filled; 404: no such path; 400: a bad path
 * (msg says why). Never reads past len; a NUL byte inside is a bad path. */
int agent_route_parse(const char *path, size_t len, agent_route *r, char *msg, size_t msgsize);
/* 1 when method fits op (GET/HEAD for reads, POST for login and refresh); allow gets the Allow
 * header's value. */
int agent_method_ok(agent_op op, const char *method, const char **allow);
const char *agent_op_name(agent_op op);

/* The login body, made into what bkoauth_request needs (malloc'ed strings; free with
 * agent_login_clear(), which wipes them). */
typedef struct agent_login {
    char *cookie_header; /* "a=b; c=d" or NULL */
    char *query_string;  /* "a=b&c=d" or NULL */
    char *client_ip;     /* NULL: default */
} agent_login;

/* 0 or -1 with msg (for a 400; never quoting the body). */
int agent_login_parse(const char *body, size_t len, agent_login *out, char *msg, size_t msgsize);
void agent_login_clear(agent_login *l);
/* A refresh body: empty, or {"access_token": "..."}. *access_token malloc'ed or NULL. */
int agent_refresh_parse(const char *body, size_t len, char **access_token, char *msg, size_t msgsize);

/* ---- operations (ops.c) -------------------------------------------------------------------- */

typedef struct agent_answer {
    unsigned status;
    const char *result; /* "OK" or an error name, for the metrics */
    json_t *body;       /* owned */
    int retry_after;
    int close;
} agent_answer;

/* Runs a token operation (OP_APP_TOKEN..OP_REFRESH) with the body received. */
void agent_run_op(const agent_route *r, const char *body, size_t len, agent_answer *a);
/* ---- worker threads (workers.c) ------------------------------------------------------------ */

/* Starts the few long-lived threads that answer token reads with a warm library cache. */
void agent_workers_start(void);
/* agent_run_op, on an idle worker for the APP token and a user's saved token (the library's
 * cache is per thread), else on the calling thread. */
void agent_workers_run_op(const agent_route *r, const char *body, size_t len, agent_answer *a);
/* Stops and joins them (no request may be in flight). */
void agent_workers_stop(void);

/* An error answer of the agent's own: {"error", "message", "status"}. */
void agent_error(agent_answer *a, unsigned status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* /healthz, /stats. transport: "unix" or "tcp". */
void agent_healthz(agent_answer *a, const char *transport);
void agent_stats(agent_answer *a);

/* ---- metrics (metrics.c) ------------------------------------------------------------------- */

void agent_metrics_init(void);
void agent_count_request(agent_op op, const char *result);
void agent_count_refused(int tcp);
void agent_count_ahead(const char *result); /* "renewed", "picked_up", "failed" */
void agent_count_store_error(void);
void agent_count_reload(int ok);
void agent_in_flight_add(int delta);
long agent_in_flight(void);
/* The agent's counters for /stats (an object). */
json_t *agent_counters_json(void);
/* The Prometheus text (malloc'ed) or NULL, with the library clients' statistics s, read by the
 * caller (metrics.c is below clients.c and does not call it). */
char *agent_metrics_text(const bkoauth_stats *s);
int64_t agent_uptime(void);
unsigned agent_reloads(void);

/* ---- refresh ahead (ahead.c) --------------------------------------------------------------- */

int agent_ahead_start(const agent_opts *o);
void agent_ahead_stop(void);
/* The offset of a user's renewal within the window: a hash below spread (0 when spread <= 0). */
int64_t agent_ahead_offset(const char *user_id, int64_t spread);

/* ---- sockets and systemd (listen.c) -------------------------------------------------------- */

typedef struct agent_sockets {
    int unix_fd;  /* -1: none */
    int tcp_fd;   /* -1: none */
    int unix_own; /* 1: we made the socket file (removed on stop) */
    unsigned tcp_port;
} agent_sockets;

/* --listen's ADDR:PORT or [::1]:PORT, loopback only. 0, or -1 (logged). */
int agent_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len);
/* Socket activation first, else the options' sockets. 0, or -1 (logged). */
int agent_sockets_open(const agent_opts *o, agent_sockets *s);
void agent_sockets_close(const agent_opts *o, agent_sockets *s);
/* sd_notify: a state line to $NOTIFY_SOCKET when set. */
void agent_notify(const char *state);

/* ---- HTTP (http.c) ------------------------------------------------------------------------- */

/* Starts serving on the sockets. 0, or -1 (logged). */
int agent_http_start(const agent_opts *o, const agent_sockets *s, const char *secret);
/* Stops accepting; waits up to stop_timeout s for requests in flight; stops. -1 (logged) when
 * requests are still in flight then: the daemons are left running (no longer accepting), for
 * the caller to exit without waiting for them. */
int agent_http_stop(unsigned stop_timeout);
/* 1 once a stop began (requests get 503 ShuttingDown). */
int agent_stopping(void);

#endif
