/* SPDX-License-Identifier: MIT */
/* devserver.c - the test harness of bkoauth-devserver (see devserver.h). */
#include "devserver.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define DEVSERVER_MAX_EXTRA 4200 /* the devserver takes up to 4096 --user options */

static void devserver_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double devserver_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Removes the port file, a temporary one the server may have left (killed mid-write), the dir. */
static void devserver_cleanup(devserver *d)
{
    char tmp[160];
    unlink(d->port_file);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", d->port_file, (long)d->pid);
    unlink(tmp);
    rmdir(d->dir);
}

/* The exit status as devserver_stop reports it. */
static int devserver_status(int st)
{
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

devserver *devserver_start(const char *const *extra_args)
{
    const char *argv[DEVSERVER_MAX_EXTRA + 8];
    int n = 0, extra = 0;
    while (extra_args != NULL && extra_args[extra] != NULL)
        extra++;
    if (extra > DEVSERVER_MAX_EXTRA) {
        fprintf(stderr, "devserver: %d extra arguments, at most %d\n", extra, DEVSERVER_MAX_EXTRA);
        return NULL;
    }
    devserver *d = calloc(1, sizeof *d);
    if (d == NULL) return NULL;
    snprintf(d->dir, sizeof d->dir, "/tmp/bkoauth-devserver-XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        perror("devserver: mkdtemp");
        free(d);
        return NULL;
    }
    snprintf(d->port_file, sizeof d->port_file, "%s/port", d->dir);
    argv[n++] = BKOAUTH_DEVSERVER_PATH;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--port-file";
    argv[n++] = d->port_file;
    argv[n++] = "--quiet";
    for (int i = 0; i < extra; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;

    fflush(NULL); /* nothing buffered is written twice */
    pid_t parent = getpid();
    d->pid = fork();
    if (d->pid < 0) {
        perror("devserver: fork");
        rmdir(d->dir);
        free(d);
        return NULL;
    }
    if (d->pid == 0) {
#ifdef __linux__
        /* a test that fails (cmocka longjmps past devserver_stop) or crashes leaves no server
         * behind: it gets SIGTERM when the thread that started it ends */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
#else
        (void)parent;
#endif
        /* the server keeps none of the test's descriptors (databases, sockets, the write end of
         * a pipe a test waits on); close() is safe between fork and exec */
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536) max = 65536;
        for (int fd = 3; fd < (int)max; fd++)
            close(fd);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "devserver: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    double deadline = devserver_now() + 10.0;
    int st = 0;
    while (devserver_now() < deadline) {
        FILE *f = fopen(d->port_file, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &d->port) == 1;
            fclose(f);
            if (ok && d->port > 0 && d->port < 65536) {
                snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
                return d;
            }
        }
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "devserver: %s exited at start (status %d)\n", BKOAUTH_DEVSERVER_PATH,
                    devserver_status(st));
            devserver_cleanup(d);
            free(d);
            return NULL;
        }
        devserver_sleep_ms(20);
    }
    fprintf(stderr, "devserver: %s did not listen within 10 s; killed\n", BKOAUTH_DEVSERVER_PATH);
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    devserver_cleanup(d);
    free(d);
    return NULL;
}

devserver *devserver_start_users(const char *app_code, const char *secret, int users)
{
    char creds[20][32];
    const char *args[2 * 20 + 8];
    int n = 0;
    if (users < 0 || users > 20) return NULL;
    args[n++] = "--app-code";
    args[n++] = app_code;
    args[n++] = "--app-secret";
    args[n++] = secret;
    for (int i = 0; i < users; i++) {
        snprintf(creds[i], sizeof creds[i], "cred-u%d=u%d", i, i);
        args[n++] = "--user";
        args[n++] = creds[i];
    }
    args[n++] = "--user";
    args[n++] = "cred-bob=bob";
    args[n] = NULL;
    return devserver_start(args);
}

int devserver_stop(devserver *d)
{
    if (d == NULL) return -1;
    int st = 0, reaped = 0;
    kill(d->pid, SIGTERM);
    double deadline = devserver_now() + 5.0;
    while (!reaped && devserver_now() < deadline) {
        pid_t p = waitpid(d->pid, &st, WNOHANG);
        if (p == d->pid || (p < 0 && errno == ECHILD)) {
            reaped = p == d->pid ? 1 : -1;
            break;
        }
        devserver_sleep_ms(20);
    }
    if (!reaped) {
        fprintf(stderr, "devserver: no exit 5 s after SIGTERM; sending SIGKILL\n");
        kill(d->pid, SIGKILL);
        while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
            ;
        reaped = 1;
    }
    devserver_cleanup(d);
    free(d);
    return reaped == 1 ? devserver_status(st) : -1;
}

typedef struct devserver_body {
    char *data;
    size_t len;
} devserver_body;

static size_t devserver_collect(char *p, size_t size, size_t n, void *ctx)
{
    devserver_body *b = ctx;
    size_t add = size * n;
    if (b->len + add > 16 * 1024 * 1024) return 0; /* no /__dev/ answer is that big */
    char *q = realloc(b->data, b->len + add + 1);
    if (q == NULL) return 0;
    memcpy(q + b->len, p, add);
    b->data = q;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static json_t *devserver_call(devserver *d, const char *method, const char *path)
{
    if (d == NULL || path == NULL) return NULL;
    size_t need = strlen(d->url) + strlen(path) + 1;
    char *url = malloc(need);
    CURL *c = curl_easy_init();
    if (url == NULL || c == NULL) {
        free(url);
        if (c) curl_easy_cleanup(c);
        return NULL;
    }
    snprintf(url, need, "%s%s", d->url, path);
    devserver_body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, devserver_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    json_t *j = NULL;
    if (rc != CURLE_OK) {
        fprintf(stderr, "devserver: %s %s failed: %s\n", method, path, curl_easy_strerror(rc));
    } else {
        json_error_t je;
        j = b.data ? json_loadb(b.data, b.len, 0, &je) : NULL;
        if (j == NULL) fprintf(stderr, "devserver: %s %s: HTTP %ld, not JSON\n", method, path, status);
    }
    free(b.data);
    free(url);
    return j;
}

json_t *devserver_get(devserver *d, const char *path_and_query)
{
    return devserver_call(d, "GET", path_and_query);
}

json_t *devserver_post(devserver *d, const char *path_and_query)
{
    return devserver_call(d, "POST", path_and_query);
}

long devserver_counter(devserver *d, const char *name)
{
    json_t *j = devserver_get(d, "/__dev/counters");
    json_t *v = json_object_get(j, name);
    if (v == NULL) v = json_object_get(json_object_get(j, "by_protocol"), name);
    long n = json_is_integer(v) ? (long)json_integer_value(v) : -1;
    json_decref(j);
    return n;
}

/* POST path; 0 when the answer says "ok": true. */
static int devserver_post_ok(devserver *d, const char *path)
{
    json_t *j = devserver_post(d, path);
    int ok = json_is_true(json_object_get(j, "ok"));
    if (j != NULL && !ok) {
        const char *m = json_string_value(json_object_get(j, "message"));
        fprintf(stderr, "devserver: POST %s refused: %s\n", path, m ? m : "(no message)");
    }
    json_decref(j);
    return ok ? 0 : -1;
}

/* A malloc'd URL-escaped copy of s; NULL on failure. */
static char *devserver_escape(const char *s)
{
    CURL *c = curl_easy_init();
    char *esc = c && s ? curl_easy_escape(c, s, 0) : NULL;
    char *copy = esc ? strdup(esc) : NULL;
    curl_free(esc);
    if (c) curl_easy_cleanup(c);
    return copy;
}

int devserver_fault(devserver *d, const char *kind, int count, int delay_ms)
{
    char *k = devserver_escape(kind);
    if (k == NULL) return -1;
    char path[512];
    snprintf(path, sizeof path, "/__dev/fault?kind=%s&count=%d&delay_ms=%d", k, count, delay_ms);
    free(k);
    return devserver_post_ok(d, path);
}

int devserver_business_fault(devserver *d, int count, long code, const char *message)
{
    char *m = devserver_escape(message);
    if (m == NULL) return -1;
    size_t need = strlen(m) + 128;
    char *path = malloc(need);
    int rc = -1;
    if (path != NULL) {
        snprintf(path, need, "/__dev/fault?kind=business&count=%d&code=%ld&message=%s", count, code, m);
        rc = devserver_post_ok(d, path);
    }
    free(path);
    free(m);
    return rc;
}

int devserver_config(devserver *d, long ttl, long overlap)
{
    char path[128];
    int n = snprintf(path, sizeof path, "/__dev/config?");
    if (ttl >= 0) n += snprintf(path + n, sizeof path - (size_t)n, "ttl=%ld&", ttl);
    if (overlap >= 0) snprintf(path + n, sizeof path - (size_t)n, "overlap=%ld", overlap);
    return devserver_post_ok(d, path);
}

int devserver_token_valid(devserver *d, const char *access_token)
{
    char *esc = devserver_escape(access_token);
    if (esc == NULL) return 0;
    size_t need = strlen(esc) + 32;
    char *path = malloc(need);
    int valid = 0;
    if (path != NULL) {
        snprintf(path, need, "/__dev/token?access_token=%s", esc);
        json_t *j = devserver_get(d, path);
        valid = json_is_true(json_object_get(j, "valid"));
        json_decref(j);
    }
    free(path);
    free(esc);
    return valid;
}

int devserver_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
