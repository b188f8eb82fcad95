/* SPDX-License-Identifier: MIT */
/* bench_agent.c - what a token costs a process that is not linked with libbkoauth: the command
 * line through bkoauth-agent against the command line opening the store itself, and what the
 * agent answers many clients at once.
 *
 *   bench_agent [DATABASE_URL [RUNS [CLIENTS [SECONDS]]]]
 *               (default: a temporary SQLite file ("" too), 20 runs, 64 clients, 5 s)
 *
 * Starts bkoauth-devserver (APP bench-app, user alice) and bkoauth-agent (on a socket in a
 * temporary directory, the store DATABASE_URL) from the build, logs alice in once, then:
 *  1. RUNS times each, alternating: `bkoauth --agent SOCKET token alice`,
 *     `bkoauth -c FILE token alice` (the same settings and store) and `bkoauth --version` (what
 *     the process costs by itself), each a whole new process (posix_spawn to exit), its output
 *     checked to be alice's token (the version); prints min, median, max;
 *  2. CLIENTS threads asking GET /v1/users/alice/token on the socket for SECONDS each, first
 *     with one kept-alive connection per client, then with a new connection per request (as
 *     curl or the command line do); prints requests per second and every answer's status;
 *  3. how many SSM calls the agent made during 1 and 2 (0: every token came from the store). */
#define _GNU_SOURCE /* strcasestr */
#include "bkoauth.h"
#include "devserver.h"
#include "testsettings.h"
#include "teststore.h"
#include "testtime.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CLI_PATH BKOAUTH_BINARY_DIR "/tools/bkoauth"
#define AGENT_PATH BKOAUTH_BINARY_DIR "/tools/bkoauth-agent"

static char dir[256], sock_path[300], conf_path[300], alice_token[256];
static pid_t agent_pid;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs argv to its end, its stdout read into out (trailing newline dropped). The wall time in
 * ms from spawn to exit, or -1 when it could not run or did not exit 0. */
static double run(char *const argv[], char *out, size_t size)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    pid_t pid;
    double t0 = now_ms();
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t n = 0;
    ssize_t k;
    while (rc == 0 && n + 1 < size && (k = read(fds[0], out + n, size - 1 - n)) > 0)
        n += (size_t)k;
    close(fds[0]);
    int status = 0;
    if (rc != 0 || waitpid(pid, &status, 0) != pid) return -1;
    double t = now_ms() - t0;
    out[n] = '\0';
    if (n > 0 && out[n - 1] == '\n') out[n - 1] = '\0';
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

/* One HTTP/1.1 GET on an open connection; the answer's status, or -1 when the connection failed.
 * keep: ask to keep the connection open. */
static int http_get(int fd, const char *path, int keep)
{
    char req[256], buf[4096];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: agent\r\n%s\r\n", path,
                     keep ? "" : "Connection: close\r\n");
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) return -1;
    size_t got = 0;
    long need = -1;
    for (;;) {
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0) return -1;
        got += (size_t)k;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL && need < 0) {
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl == NULL || cl > end) return -1;
            need = (long)(end + 4 - buf) + strtol(cl + 17, NULL, 10);
        }
        if (need >= 0 && (long)got >= need) break;
        if (got + 1 >= sizeof buf) return -1;
    }
    return atoi(buf + 9);
}

static int agent_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof sa.sun_path) return -1;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Starts the agent and waits until GET /healthz answers 200. 0 or -1. */
static int agent_start(const char *db_url)
{
    FILE *f = fopen(conf_path, "a");
    if (f == NULL) return -1;
    fprintf(f, "BKOAUTH_DATABASE_URL = '%s'\n", db_url);
    fclose(f);
    char *argv[] = {AGENT_PATH, "-c", conf_path, "--socket", sock_path, "--quiet", NULL};
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    if (posix_spawn(&agent_pid, argv[0], NULL, NULL, argv, env) != 0) return -1;
    for (int i = 0; i < 100; i++) {
        int fd = agent_connect();
        int status = fd >= 0 ? http_get(fd, "/healthz", 0) : -1;
        if (fd >= 0) close(fd);
        if (status == 200) return 0;
        test_sleep_ms(100);
    }
    fprintf(stderr, "bench_agent: the agent did not answer /healthz within 10 s\n");
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Part 1: each command RUNS times, alternating. 0 or -1. */
static int whole_processes(int runs)
{
    char *via_agent[] = {CLI_PATH, "--agent", sock_path, "token", "alice", NULL};
    char *direct[] = {CLI_PATH, "-c", conf_path, "token", "alice", NULL};
    char *floor[] = {CLI_PATH, "--version", NULL};
    double *ta = calloc((size_t)runs, sizeof *ta), *td = calloc((size_t)runs, sizeof *td);
    double *tf = calloc((size_t)runs, sizeof *tf);
    char out[512];
    int rc = 0;
    for (int i = 0; rc == 0 && i < runs; i++) {
        ta[i] = run(via_agent, out, sizeof out);
        if (ta[i] < 0 || strcmp(out, alice_token) != 0) rc = -1;
        td[i] = run(direct, out, sizeof out);
        if (td[i] < 0 || strcmp(out, alice_token) != 0) rc = -1;
        tf[i] = run(floor, out, sizeof out);
        if (tf[i] < 0 || strncmp(out, "bkoauth ", 8) != 0) rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "bench_agent: a command failed or printed another token than alice's\n");
    } else {
        qsort(ta, (size_t)runs, sizeof *ta, cmp_double);
        qsort(td, (size_t)runs, sizeof *td, cmp_double);
        qsort(tf, (size_t)runs, sizeof *tf, cmp_double);
        printf("bkoauth --agent SOCKET token alice  (%d runs)  min %7.2f ms  median %7.2f ms  max %7.2f ms\n",
               runs, ta[0], ta[runs / 2], ta[runs - 1]);
        printf("bkoauth -c FILE token alice         (%d runs)  min %7.2f ms  median %7.2f ms  max %7.2f ms\n",
               runs, td[0], td[runs / 2], td[runs - 1]);
        printf("bkoauth --version (the process)     (%d runs)  min %7.2f ms  median %7.2f ms  max %7.2f ms\n",
               runs, tf[0], tf[runs / 2], tf[runs - 1]);
        printf("  median ratio direct / agent: %.1fx\n", td[runs / 2] / ta[runs / 2]);
    }
    free(ta);
    free(td);
    free(tf);
    return rc;
}

typedef struct load {
    pthread_t thread;
    int keep;
    double until;
    long ok, other, failed;
} load;

static void *load_thread(void *arg)
{
    load *l = arg;
    int fd = -1;
    while (now_ms() < l->until) {
        if (fd < 0 && (fd = agent_connect()) < 0) {
            l->failed++;
            continue;
        }
        int status = http_get(fd, "/v1/users/alice/token", l->keep);
        if (status == 200)
            l->ok++;
        else if (status > 0)
            l->other++;
        else
            l->failed++;
        if (!l->keep || status <= 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* Part 2: clients threads for seconds, kept-alive connections or one per request. 0 or -1. */
static int concurrent(int clients, int seconds, int keep)
{
    load *l = calloc((size_t)clients, sizeof *l);
    double t0 = now_ms(), until = t0 + seconds * 1000.0;
    int started = 0;
    for (int i = 0; i < clients; i++) {
        l[i].keep = keep;
        l[i].until = until;
        if (pthread_create(&l[i].thread, NULL, load_thread, &l[i]) == 0) started++;
    }
    long ok = 0, other = 0, failed = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(l[i].thread, NULL);
        ok += l[i].ok;
        other += l[i].other;
        failed += l[i].failed;
    }
    double secs = (now_ms() - t0) / 1000.0;
    printf("%d clients, %s, %.1f s: %.0f requests/s (%ld answered 200, %ld another status, %ld failed)\n",
           started, keep ? "one kept-alive connection each" : "a new connection per request", secs,
           (double)ok / secs, ok, other, failed);
    free(l);
    return started == clients && other == 0 && failed == 0 ? 0 : -1;
}

/* The settings file both paths read, and alice logged in once (directly). 0 or -1. */
static int prepare(devserver *dev, const char *db_url)
{
    FILE *f = fopen(conf_path, "w");
    if (f == NULL) return -1;
    fprintf(f,
            "OAUTH_API_URL = '%s'\nAPP_CODE = 'bench-app'\nSECRET_KEY = 'bench-secret-0123456789'\n"
            "OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}\n",
            dev->url);
    fclose(f);
    if (agent_start(db_url) != 0) return -1;
    char *login[] = {CLI_PATH, "-c", conf_path, "user-token", "alice", "--cookie", "bk_token=cred-alice",
                     NULL};
    if (run(login, alice_token, sizeof alice_token) < 0 || strlen(alice_token) < 16) {
        fprintf(stderr, "bench_agent: could not log alice in\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char db_url[512];
    int runs = argc > 2 ? atoi(argv[2]) : 20, clients = argc > 3 ? atoi(argv[3]) : 64;
    int seconds = argc > 4 ? atoi(argv[4]) : 5;
    if (runs < 1 || clients < 1 || seconds < 1) {
        fprintf(stderr, "usage: bench_agent [DATABASE_URL [RUNS [CLIENTS [SECONDS]]]]\n");
        return 2;
    }
    if (teststore_tmpdir(dir, sizeof dir) == NULL) return 1;
    snprintf(sock_path, sizeof sock_path, "%s/agent.sock", dir);
    snprintf(conf_path, sizeof conf_path, "%s/agent.conf", dir);
    if (argc > 1 && argv[1][0] != '\0')
        snprintf(db_url, sizeof db_url, "%s", argv[1]);
    else
        snprintf(db_url, sizeof db_url, "sqlite:%s/bench.db", dir);
    const char *args[] = {
        "--app-code",       "bench-app", "--app-secret", "bench-secret-0123456789", "--user",
        "cred-alice=alice", NULL};
    devserver *dev = devserver_start(args);
    int rc = dev != NULL && prepare(dev, db_url) == 0 ? 0 : 1;
    if (rc == 0) {
        printf("bench_agent: store %s, agent %s\n", teststore_label(db_url), AGENT_PATH);
        long calls = devserver_counter(dev, "total");
        rc |= whole_processes(runs) != 0;
        rc |= concurrent(clients, seconds, 1) != 0;
        rc |= concurrent(clients, seconds, 0) != 0;
        printf("SSM calls during the runs: %ld\n", devserver_counter(dev, "total") - calls);
    }
    if (agent_pid > 0) {
        kill(agent_pid, SIGTERM);
        waitpid(agent_pid, NULL, 0);
    }
    devserver_stop(dev);
    teststore_cleanup();
    return rc;
}
