/* devserver.c - the test harness of bkoauth-devserver (see devserver.h). */
#include "devserver.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

devserver *devserver_start(const char *const *extra_args)
{
    devserver *d = calloc(1, sizeof *d);
    if (d == NULL) return NULL;
    snprintf(d->port_file, sizeof d->port_file, "/tmp/bkoauth-devport-XXXXXX");
    int fd = mkstemp(d->port_file);
    if (fd < 0) {
        perror("devserver: mkstemp");
        free(d);
        return NULL;
    }
    close(fd);
    unlink(d->port_file); /* the server creates it when it listens */
    const char *argv[64];
    int n = 0;
    argv[n++] = BKOAUTH_DEVSERVER_PATH;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--port-file";
    argv[n++] = d->port_file;
    argv[n++] = "--quiet";
    for (int i = 0; extra_args && extra_args[i] && n < 63; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid < 0) {
        perror("devserver: fork");
        free(d);
        return NULL;
    }
    if (d->pid == 0) {
        execv(argv[0], (char *const *)argv);
        perror("devserver: exec " BKOAUTH_DEVSERVER_PATH);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(d->port_file, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &d->port) == 1;
            fclose(f);
            if (ok && d->port > 0) {
                snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
                return d;
            }
        }
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "devserver: exited at start (status %d)\n", st);
            free(d);
            return NULL;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "devserver: did not listen within 10 s\n");
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    free(d);
    return NULL;
}

void devserver_stop(devserver *d)
{
    if (d == NULL) return;
    kill(d->pid, SIGTERM);
    int st;
    for (int i = 0; i < 100; i++) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) goto done;
        sleep_ms(50);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
done:
    unlink(d->port_file);
    free(d);
}

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    body *b = ctx;
    size_t add = size * n;
    char *q = realloc(b->data, b->len + add + 1);
    if (q == NULL) return 0;
    memcpy(q + b->len, p, add);
    b->data = q;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static json_t *call(devserver *d, const char *method, const char *path)
{
    if (d == NULL) return NULL;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", d->url, path);
    CURL *c = curl_easy_init();
    if (c == NULL) return NULL;
    body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    json_t *j = NULL;
    if (rc == CURLE_OK && b.data != NULL)
        j = json_loads(b.data, 0, NULL);
    else
        fprintf(stderr, "devserver: %s %s failed: %s\n", method, path, curl_easy_strerror(rc));
    free(b.data);
    return j;
}

json_t *devserver_get(devserver *d, const char *path_and_query)
{
    return call(d, "GET", path_and_query);
}

json_t *devserver_post(devserver *d, const char *path_and_query)
{
    return call(d, "POST", path_and_query);
}

long devserver_counter(devserver *d, const char *name)
{
    json_t *j = devserver_get(d, "/__dev/counters");
    json_t *v = json_object_get(j, name);
    long n = json_is_integer(v) ? (long)json_integer_value(v) : -1;
    json_decref(j);
    return n;
}

int devserver_fault(devserver *d, const char *kind, int count, int delay_ms)
{
    char path[256];
    snprintf(path, sizeof path, "/__dev/fault?kind=%s&count=%d&delay_ms=%d", kind, count, delay_ms);
    json_t *j = devserver_post(d, path);
    int ok = json_is_true(json_object_get(j, "ok"));
    json_decref(j);
    return ok ? 0 : -1;
}

int devserver_token_valid(devserver *d, const char *access_token)
{
    CURL *c = curl_easy_init();
    char *esc = c ? curl_easy_escape(c, access_token, 0) : NULL;
    char path[1024];
    snprintf(path, sizeof path, "/__dev/token?access_token=%s", esc ? esc : "");
    curl_free(esc);
    curl_easy_cleanup(c);
    json_t *j = devserver_get(d, path);
    int valid = json_is_true(json_object_get(j, "valid"));
    json_decref(j);
    return valid;
}

int devserver_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0) close(fd);
    return port;
}
