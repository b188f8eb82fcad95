/* devserver.h - start bkoauth-devserver on a free loopback port from a test, drive its /__dev/
 * endpoints, stop it. BKOAUTH_DEVSERVER_PATH names the binary (set by tests/CMakeLists.txt). */
#ifndef BKOAUTH_TEST_DEVSERVER_H
#define BKOAUTH_TEST_DEVSERVER_H

#include <jansson.h>
#include <sys/types.h>

typedef struct devserver {
    int port;           /* the port it listens on, 127.0.0.1 */
    char url[64];       /* "http://127.0.0.1:PORT" */
    pid_t pid;          /* its process */
    char port_file[64]; /* where it wrote the port */
} devserver;

/* Starts the devserver with --listen 127.0.0.1:0 --port-file <tmp> --quiet and extra_args
 * (NULL-terminated, may be NULL); waits up to 10 s for it to listen. NULL (with a message on
 * stderr) when it does not start. */
devserver *devserver_start(const char *const *extra_args);

/* Stops it (SIGTERM, then SIGKILL after 5 s), removes its files and frees d. NULL is fine. */
void devserver_stop(devserver *d);

/* GET / POST on the devserver (a /__dev/ path with its query); the parsed JSON answer (caller
 * decrefs), or NULL when the call failed or the answer is not JSON. */
json_t *devserver_get(devserver *d, const char *path_and_query);
json_t *devserver_post(devserver *d, const char *path_and_query);

/* A counter of /__dev/counters ("app_token", "user_token", "refresh", "total", ...); -1 on
 * failure. */
long devserver_counter(devserver *d, const char *name);

/* Injects a fault (http500, truncated, html, slow, drop, business) into the next count SSM calls;
 * delay_ms for slow (0: the default 2000). 0 on success. */
int devserver_fault(devserver *d, const char *kind, int count, int delay_ms);

/* 1 when the devserver holds access_token as valid now, else 0. */
int devserver_token_valid(devserver *d, const char *access_token);

/* A loopback port that nothing listens on (bound and released): for "unreachable" tests. */
int devserver_free_port(void);

#endif
