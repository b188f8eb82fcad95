/* SPDX-License-Identifier: MIT */
/* workers.c - a few long-lived threads that answer the token reads (the APP token, a user's
 * saved token).
 *
 * The library keeps its token cache (BKOAUTH_CACHE_SECONDS) per thread, and libmicrohttpd
 * serves each connection on a thread of its own that ends with the connection: a caller that
 * opens a connection per request (curl, bkoauth --agent) would find that thread's cache empty
 * every time and cost a store read (a database round trip) per request. The first read of a
 * connection is therefore handed to an idle worker, the one idle most recently first, whose
 * cache stays warm; the later reads of a kept-alive connection are answered on its own thread,
 * whose cache is then warm too (a hand-off costs two thread switches: 64 kept-alive clients
 * answered by 4 workers made a third of the requests per second). When no worker is idle (all
 * busy, say with slow SSM calls), the connection's own thread answers, so no request ever waits
 * for another. Logins and refreshes call the SSM service or the store anyway and are answered
 * on the connection's thread. */
#include "agent.h"

#include <pthread.h>

#define AGENT_WORKERS 4

typedef struct job {
    const agent_route *route;
    const char *body;
    size_t len;
    agent_answer *answer;
} job;

typedef struct worker {
    pthread_t thread;
    pthread_cond_t wake; /* a job was given, or the stop */
    pthread_cond_t done; /* the job is answered */
    job *job;            /* NULL: idle */
} worker;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static worker workers[AGENT_WORKERS];
static worker *idle[AGENT_WORKERS]; /* a stack: the most recently idle on top */
static int n_idle, n_started, stop;
/* Token reads asked on this thread: on a connection's thread, its connection's. */
static _Thread_local unsigned long reads_here;

static void *run(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (w->job == NULL && !stop)
            pthread_cond_wait(&w->wake, &lock);
        if (w->job == NULL) break;
        job *j = w->job;
        pthread_mutex_unlock(&lock);
        agent_run_op(j->route, j->body, j->len, j->answer);
        pthread_mutex_lock(&lock);
        w->job = NULL;
        idle[n_idle++] = w;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

void agent_workers_start(void)
{
    pthread_mutex_lock(&lock);
    stop = 0;
    for (int i = 0; i < AGENT_WORKERS; i++) {
        worker *w = &workers[n_started];
        w->job = NULL;
        pthread_cond_init(&w->wake, NULL);
        pthread_cond_init(&w->done, NULL);
        if (pthread_create(&w->thread, NULL, run, w) != 0) {
            pthread_cond_destroy(&w->wake);
            pthread_cond_destroy(&w->done);
            agent_log(AGENT_WARNING,
                      "started %d of %d worker threads: token reads are answered on the "
                      "connections' own threads meanwhile",
                      n_started, AGENT_WORKERS);
            break;
        }
        idle[n_idle++] = w;
        n_started++;
    }
    pthread_mutex_unlock(&lock);
}

void agent_workers_run_op(const agent_route *r, const char *body, size_t len, agent_answer *a)
{
    if ((r->op != OP_APP_TOKEN && r->op != OP_USER_TOKEN) || reads_here++ > 0) {
        agent_run_op(r, body, len, a);
        return;
    }
    pthread_mutex_lock(&lock);
    if (n_idle == 0 || stop) {
        pthread_mutex_unlock(&lock);
        agent_run_op(r, body, len, a);
        return;
    }
    worker *w = idle[--n_idle];
    job j = {r, body, len, a};
    w->job = &j;
    pthread_cond_signal(&w->wake);
    while (w->job == &j)
        pthread_cond_wait(&w->done, &lock);
    pthread_mutex_unlock(&lock);
}

void agent_workers_stop(void)
{
    pthread_mutex_lock(&lock);
    stop = 1;
    for (int i = 0; i < n_started; i++)
        pthread_cond_signal(&workers[i].wake);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n_started; i++) {
        pthread_join(workers[i].thread, NULL);
        pthread_cond_destroy(&workers[i].wake);
        pthread_cond_destroy(&workers[i].done);
    }
    n_started = n_idle = 0;
}
