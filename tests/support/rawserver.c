/* SPDX-License-Identifier: MIT */
/* rawserver.c - see rawserver.h. */
#include "rawserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct rawserver {
    int fd;      /* listening */
    int stop[2]; /* a pipe: written to stop the thread */
    pthread_t thread;
    pthread_mutex_t mu;
    char url[64];
    char *answer; /* owned */
    size_t answer_len;
    char *last; /* owned: the last request */
    int requests;
};

/* Reads a request: the head up to the blank line, then Content-Length bytes of body (at most
 * 1 MB, within 5 s). Returns the bytes read (malloc'd, NUL-terminated) or NULL. */
static char *read_request(int c)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) return NULL;
    long want = -1;
    for (;;) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) break;
        if (len == cap) {
            if (cap >= 1024 * 1024) break;
            char *b = realloc(buf, cap * 2 + 1);
            if (b == NULL) break;
            buf = b;
            cap *= 2;
        }
        ssize_t n = recv(c, buf + len, cap - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL) continue;
        if (want < 0) {
            want = 0;
            for (char *h = strstr(buf, "\r\n"); h != NULL && h < end; h = strstr(h + 2, "\r\n"))
                if (strncasecmp(h + 2, "Content-Length:", 15) == 0) want = strtol(h + 17, NULL, 10);
        }
        if ((long)(len - (size_t)(end + 4 - buf)) >= want) break;
    }
    buf[len] = '\0';
    return buf;
}

static void *serve(void *arg)
{
    rawserver *r = arg;
    for (;;) {
        struct pollfd p[2] = {{r->fd, POLLIN, 0}, {r->stop[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        if (!(p[0].revents & POLLIN)) continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0) continue;
        char *req = read_request(c);
        pthread_mutex_lock(&r->mu);
        free(r->last);
        r->last = req;
        r->requests++;
        size_t n = r->answer_len;
        char *answer = n ? malloc(n) : NULL;
        if (answer) memcpy(answer, r->answer, n);
        pthread_mutex_unlock(&r->mu);
        for (size_t off = 0; answer != NULL && off < n;) {
            ssize_t w = send(c, answer + off, n - off, MSG_NOSIGNAL);
            if (w <= 0) break;
            off += (size_t)w;
        }
        free(answer);
        shutdown(c, SHUT_WR);
        /* let the client read it all before the close */
        char drain[256];
        struct pollfd d = {c, POLLIN, 0};
        while (poll(&d, 1, 1000) > 0 && recv(c, drain, sizeof drain, 0) > 0)
            ;
        close(c);
    }
    return NULL;
}

rawserver *rawserver_start(void)
{
    rawserver *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(r->fd, 16) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&sa, &sl) != 0 || pipe(r->stop) != 0) {
        fprintf(stderr, "rawserver: cannot listen: %s\n", strerror(errno));
        if (r->fd >= 0) close(r->fd);
        free(r);
        return NULL;
    }
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    pthread_mutex_init(&r->mu, NULL);
    if (pthread_create(&r->thread, NULL, serve, r) != 0) {
        close(r->fd);
        close(r->stop[0]);
        close(r->stop[1]);
        free(r);
        return NULL;
    }
    return r;
}

void rawserver_stop(rawserver *r)
{
    if (r == NULL) return;
    if (write(r->stop[1], "x", 1) != 1) perror("rawserver: stop");
    pthread_join(r->thread, NULL);
    close(r->fd);
    close(r->stop[0]);
    close(r->stop[1]);
    pthread_mutex_destroy(&r->mu);
    free(r->answer);
    free(r->last);
    free(r);
}

const char *rawserver_url(const rawserver *r)
{
    return r->url;
}

void rawserver_answer(rawserver *r, const char *bytes, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL) abort();
    memcpy(copy, bytes, len);
    pthread_mutex_lock(&r->mu);
    free(r->answer);
    r->answer = copy;
    r->answer_len = len;
    pthread_mutex_unlock(&r->mu);
}

void rawserver_answer_http(rawserver *r, int status, const char *body)
{
    size_t n = strlen(body);
    char *text = malloc(n + 200);
    if (text == NULL) abort();
    int h = snprintf(text, 200,
                     "HTTP/1.1 %d Whatever\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     status, n);
    memcpy(text + h, body, n);
    rawserver_answer(r, text, (size_t)h + n);
    free(text);
}

int rawserver_requests(rawserver *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->requests;
    pthread_mutex_unlock(&r->mu);
    return n;
}

char *rawserver_last_request(rawserver *r)
{
    pthread_mutex_lock(&r->mu);
    char *copy = r->last ? strdup(r->last) : NULL;
    pthread_mutex_unlock(&r->mu);
    return copy;
}
