/* SPDX-License-Identifier: MIT */
/* pool.c - the bounded connection pool of pool.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include "pool.h"

#include <limits.h>
#include <signal.h>

#if defined(__SANITIZE_THREAD__)
#define BK_POOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BK_POOL_TSAN 1
#endif
#endif
#include <stdlib.h>
#include <string.h>

/* An open (conn NULL) or a reconnection of conn, asked of the connector by a caller that waits. */
typedef struct pool_job {
    struct pool_job *next;
    void *conn;   /* NULL: an open */
    void *opened; /* the open's connection */
    int rc;       /* the reconnection's: 0 or -1 */
    int done;
    unsigned long asked; /* attempts_ended when asked */
    bkoauth_error err;
} pool_job;

#ifdef BK_POOL_TSAN
/* ThreadSanitizer stops a process that starts a thread in a child of a multi-threaded process,
 * which a client made after fork() would do: ThreadSanitizer builds connect in the callers. */
static const int connector_allowed = 0;
#else
static const int connector_allowed = 1;
#endif

int pool_init(pool *p, int max, void *(*open)(void *ctx, bkoauth_error *err), void (*close)(void *conn),
              void *ctx)
{
    p->idle = bkoauth__calloc((size_t)max, sizeof *p->idle);
    p->stale = bkoauth__calloc((size_t)max, sizeof *p->stale);
    if (p->idle == NULL || p->stale == NULL) {
        bkoauth__free(p->idle);
        bkoauth__free(p->stale);
        p->idle = NULL;
        return -1;
    }
    p->nidle = 0;
    p->opened = 0;
    p->opening = 0;
    p->open_failing = 0;
    p->connecting = 0;
    p->connect_failures = 0;
    memset(&p->last_error, 0, sizeof p->last_error);
    p->max = max;
    p->open = open;
    p->close = close;
    p->reopen = NULL;
    p->ctx = ctx;
    p->connector_state = 0;
    p->stopping = 0;
    p->jobs = p->last = NULL;
    p->attempts_ended = 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->jobs_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    return 0;
}

void pool_destroy(pool *p)
{
    if (p->idle == NULL) return;
    pthread_mutex_lock(&p->mu);
    int running = p->connector_state == 1;
    p->stopping = 1;
    pthread_cond_broadcast(&p->jobs_cv);
    pthread_mutex_unlock(&p->mu);
    if (running) pthread_join(p->connector, NULL);
    for (int i = 0; i < p->nidle; i++)
        p->close(p->idle[i]);
    bkoauth__free(p->idle);
    bkoauth__free(p->stale);
    p->idle = NULL;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->jobs_cv);
    pthread_cond_destroy(&p->done_cv);
}

/* The server looks down (two connection attempts in a row failed) and an attempt is under way:
 * a caller does not make another. Under p->mu. */
static int looks_down(const pool *p)
{
    return p->connect_failures >= 2 && p->connecting > 0;
}

/* The end of a connection attempt (ok 1, or 0 with err set). Under p->mu. */
static void attempt_ended(pool *p, int ok, const bkoauth_error *err)
{
    p->connecting--;
    p->attempts_ended++;
    if (ok) {
        p->connect_failures = 0;
        return;
    }
    if (p->connect_failures < INT_MAX) p->connect_failures++;
    if (err != NULL) p->last_error = *err;
}

/* The end of an open (c NULL: failed, err set), its slot counted before. Under p->mu. */
static void open_ended(pool *p, void *c, const bkoauth_error *err)
{
    p->opening--;
    p->open_failing = c == NULL;
    attempt_ended(p, c != NULL, err);
    if (c == NULL) p->opened--;
    pthread_cond_broadcast(&p->cv); /* a waiter may open the next one */
}

/* The last attempt's error, for a caller that does not make its own. */
static void last_error(const pool *p, bkoauth_error *err)
{
    if (err == NULL) return;
    if (p->last_error.code == BKOAUTH_OK) /* an attempt that failed without saying why */
        err_set(err, BKOAUTH_E_STORE, "the token store cannot be reached (another caller is connecting)");
    else
        *err = p->last_error;
}

/* The last attempt's error, for a caller that does not make its own (p->mu held, then released):
 * NULL. */
static void *fail_fast(pool *p, bkoauth_error *err)
{
    bkoauth_error last;
    last_error(p, &last);
    pthread_mutex_unlock(&p->mu);
    if (err != NULL) *err = last;
    return NULL;
}

/* ---- the connector ---------------------------------------------------------------------- */

static void *connector_main(void *arg)
{
    pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->jobs == NULL && !p->stopping)
            pthread_cond_wait(&p->jobs_cv, &p->mu);
        if (p->jobs == NULL) break; /* stopping, nothing left */
        pool_job *j = p->jobs;
        p->jobs = j->next;
        if (p->jobs == NULL) p->last = NULL;
        if (looks_down(p) && j->asked < p->attempts_ended) {
            /* asked while another attempt was under way, which failed: not made */
            last_error(p, &j->err);
            p->connecting--;
            if (j->conn == NULL) {
                p->opening--;
                p->opened--;
                pthread_cond_broadcast(&p->cv);
            }
            j->rc = -1;
        } else {
            pthread_mutex_unlock(&p->mu);
            if (j->conn == NULL)
                j->opened = p->open(p->ctx, &j->err);
            else
                j->rc = p->reopen(p->ctx, j->conn, &j->err);
            pthread_mutex_lock(&p->mu);
            if (j->conn == NULL)
                open_ended(p, j->opened, &j->err);
            else
                attempt_ended(p, j->rc == 0, &j->err);
        }
        j->done = 1;
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts the connector if it is not running (under p->mu): 1 when it runs. Signals go to the
 * program's threads, never to it. */
static int connector_running(pool *p)
{
    if (!connector_allowed) return 0;
    if (p->connector_state == 0) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        p->connector_state = pthread_create(&p->connector, NULL, connector_main, p) == 0 ? 1 : -1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
#ifdef __GLIBC__
        if (p->connector_state == 1) pthread_setname_np(p->connector, "bkoauth-connect");
#endif
    }
    return p->connector_state == 1;
}

/* Has the connector make the attempt of j (counted in p->connecting already) and waits for it:
 * 1, or 0 when the connector cannot run (the caller makes it). */
static int by_connector(pool *p, pool_job *j)
{
    if (p->reopen == NULL) return 0;
    pthread_mutex_lock(&p->mu);
    if (!connector_running(p)) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    j->asked = p->attempts_ended;
    if (p->last != NULL)
        p->last->next = j;
    else
        p->jobs = j;
    p->last = j;
    pthread_cond_signal(&p->jobs_cv);
    while (!j->done)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

/* Connects conn again (p->mu not held; the attempt counted in p->connecting already): 0, or -1
 * with err set. */
static int reopen_counted(pool *p, void *conn, bkoauth_error *err)
{
    pool_job j = {.conn = conn};
    if (by_connector(p, &j)) {
        if (j.rc != 0 && err != NULL) *err = j.err;
        return j.rc;
    }
    int rc = p->reopen(p->ctx, conn, err);
    pthread_mutex_lock(&p->mu);
    attempt_ended(p, rc == 0, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Opens a connection for the pool (p->mu not held); its slot is counted already. */
static void *open_one(pool *p, bkoauth_error *err)
{
    pool_job j = {0};
    if (by_connector(p, &j)) {
        if (j.opened == NULL && err != NULL) *err = j.err;
        return j.opened;
    }
    void *c = p->open(p->ctx, err);
    pthread_mutex_lock(&p->mu);
    open_ended(p, c, err);
    pthread_mutex_unlock(&p->mu);
    return c;
}

void *pool_get(pool *p, int *fresh, bkoauth_error *err)
{
    if (fresh) *fresh = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nidle > 0) {
            int stale = p->stale[p->nidle - 1];
            if (stale && looks_down(p)) return fail_fast(p, err);
            void *c = p->idle[--p->nidle];
            if (stale) p->connecting++;
            pthread_mutex_unlock(&p->mu);
            if (!stale) return c;
            if (reopen_counted(p, c, err) != 0) {
                pool_put_stale(p, c);
                return NULL;
            }
            if (fresh) *fresh = 1;
            return c;
        }
        /* one open at a time, unless the last one failed: then each caller tries its own at once
         * (it may succeed, and none waits behind another's failing attempt), until the server
         * looks down */
        if (p->opened < p->max && (p->opening == 0 || p->open_failing)) {
            if (looks_down(p)) return fail_fast(p, err);
            break;
        }
        pthread_cond_wait(&p->cv, &p->mu);
    }
    p->opened++;
    p->opening++;
    p->connecting++;
    pthread_mutex_unlock(&p->mu);
    void *c = open_one(p, err);
    if (c != NULL && fresh) *fresh = 1;
    return c;
}

void *pool_get_ready(pool *p)
{
    void *c = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (int i = p->nidle - 1; i >= 0 && c == NULL; i--) {
            if (p->stale[i]) continue;
            c = p->idle[i];
            p->idle[i] = p->idle[p->nidle - 1];
            p->stale[i] = p->stale[p->nidle - 1];
            p->nidle--;
        }
        if (c != NULL || p->nidle > 0 || p->opened == 0) break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return c;
}

static void put(pool *p, void *conn, int stale)
{
    pthread_mutex_lock(&p->mu);
    p->stale[p->nidle] = (unsigned char)stale;
    p->idle[p->nidle++] = conn; /* never more than opened <= max */
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pool_put(pool *p, void *conn)
{
    put(p, conn, 0);
}

void pool_put_stale(pool *p, void *conn)
{
    if (p->reopen == NULL)
        pool_discard(p, conn);
    else
        put(p, conn, 1);
}

void pool_discard(pool *p, void *conn)
{
    p->close(conn);
    pthread_mutex_lock(&p->mu);
    p->opened--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pool_set_reopen(pool *p, int (*reopen)(void *ctx, void *conn, bkoauth_error *err))
{
    p->reopen = reopen;
}

void pool_flush(pool *p)
{
    /* closing is quick (no answer awaited), so it happens under the lock */
    pthread_mutex_lock(&p->mu);
    if (p->reopen != NULL) {
        memset(p->stale, 1, (size_t)p->nidle);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    for (int i = 0; i < p->nidle; i++)
        p->close(p->idle[i]);
    p->opened -= p->nidle;
    p->nidle = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int pool_renew(pool *p, void *conn, bkoauth_error *err)
{
    pool_flush(p);
    pthread_mutex_lock(&p->mu);
    p->connecting++;
    pthread_mutex_unlock(&p->mu);
    if (reopen_counted(p, conn, err) == 0) return 0;
    pool_put_stale(p, conn);
    return -1;
}

void pool_after_fork(pool *p)
{
    if (p->idle == NULL) return;
    p->nidle = 0;
    p->opened = 0;
    p->opening = 0;
    p->open_failing = 0;
    p->connecting = 0;
    p->connect_failures = 0;
    p->connector_state = 0; /* the parent's connector is not in the child: the child starts its own */
    p->stopping = 0;
    p->jobs = p->last = NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->jobs_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
}
