/* SPDX-License-Identifier: MIT */
/* devserver.h - start bkoauth-devserver on a free loopback port from a test, drive its /__dev/
 * endpoints, stop it. BKOAUTH_DEVSERVER_PATH names the binary (set by tests/CMakeLists.txt).
 * The endpoints are described in docs/DEVSERVER.md. Not thread-safe per handle for start/stop;
 * the HTTP helpers may be called from several threads at once. */
#ifndef BKOAUTH_TEST_DEVSERVER_H
#define BKOAUTH_TEST_DEVSERVER_H

#include <jansson.h>
#include <sys/types.h>

typedef struct devserver {
    int port;           /* the port it listens on, on 127.0.0.1 */
    char url[64];       /* "http://127.0.0.1:PORT", no trailing slash */
    pid_t pid;          /* its process */
    char dir[64];       /* a private temporary directory holding the port file */
    char port_file[96]; /* dir/port: where it wrote the port */
} devserver;

/* Starts the devserver: forks and execs BKOAUTH_DEVSERVER_PATH with
 * --listen 127.0.0.1:0 --port-file <tmp> --quiet and then extra_args (a NULL-terminated list,
 * may be NULL; at most 4200), and waits up to 10 s for the port file. Returns a handle owned by the
 * caller (free it with devserver_stop), or NULL with a message on stderr when the server exits
 * at start or does not listen in time (it is killed then). The server gets none of the caller's
 * descriptors and, on Linux, SIGTERM when the calling thread ends (so a failed test leaves no
 * server behind): call it from a thread that outlives the server, e.g. the main thread. */
devserver *devserver_start(const char *const *extra_args);

/* devserver_start() with an APP (app_code, secret), users u0 .. u<users-1> logging in with the
 * credentials cred-u0 .. and bob with cred-bob (users: at most 20). */
devserver *devserver_start_users(const char *app_code, const char *secret, int users);

/* Stops the server (SIGTERM, waitpid; SIGKILL after 5 s), removes its temporary files and
 * frees d. Returns the server's exit status (0 for a clean stop), 128+N when it died of signal
 * N, or -1 when d is NULL. */
int devserver_stop(devserver *d);

/* GET / POST (an empty body) to the devserver, path_and_query being e.g. "/__dev/counters" or
 * "/__dev/fault?kind=drop&count=1" (the caller escapes the query). Returns the parsed JSON answer
 * whatever the HTTP status (400/404/405 answers are JSON too; the caller decrefs), or NULL when
 * the call failed or the answer is not JSON (a message on stderr). */
json_t *devserver_get(devserver *d, const char *path_and_query);
json_t *devserver_post(devserver *d, const char *path_and_query);

/* One number of GET /__dev/counters: "app_token", "user_token", "refresh", "refresh_failed",
 * "faulted", "total", "tokens", or "ieod" / "ee" (from "by_protocol"). -1 on failure. */
long devserver_counter(devserver *d, const char *name);

/* Injects a fault into the next count SSM calls (any kind): kind is http500, truncated, html,
 * slow, drop or business; delay_ms is the delay of slow (0: the default 2000). A business fault
 * made here has the server's default code and message (see devserver_business_fault).
 * 0 on success, -1 when the server refused (unknown kind, bad count) or could not be reached. */
int devserver_fault(devserver *d, const char *kind, int count, int delay_ms);

/* Injects a business error with this code and message (escaped here) into the next count SSM
 * calls. 0 on success, -1 on failure. */
int devserver_business_fault(devserver *d, int count, long code, const char *message);

/* Changes the lifetime of tokens issued from now on (ttl seconds) and the overlap after a
 * refresh; a negative value leaves that setting alone. 0 on success, -1 on failure. */
int devserver_config(devserver *d, long ttl, long overlap);

/* 1 when the devserver holds access_token as valid now, else 0 (unknown, expired, past its
 * overlap, or the server unreachable). access_token is escaped here. */
int devserver_token_valid(devserver *d, const char *access_token);

/* A loopback TCP port that nothing listens on (bound to 127.0.0.1:0, read, released): for
 * "connection refused" tests. -1 on failure. */
int devserver_free_port(void);

#endif
