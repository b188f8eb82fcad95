/* SPDX-License-Identifier: MIT */
/* pool.c - the bounded connection pool of pool.h. */
#include "pool.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return 0;
}

void pool_destroy(pool *p)
{
    if (p->idle == NULL) return;
    for (int i = 0; i < p->nidle; i++)
        p->close(p->idle[i]);
    bkoauth__free(p->idle);
    bkoauth__free(p->stale);
    p->idle = NULL;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
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
    if (ok) {
        p->connect_failures = 0;
        return;
    }
    if (p->connect_failures < INT_MAX) p->connect_failures++;
    if (err != NULL) p->last_error = *err;
}

/* The last attempt's error, for a caller that does not make its own (p->mu held, then released):
 * NULL. */
static void *fail_fast(pool *p, bkoauth_error *err)
{
    bkoauth_error last = p->last_error;
    pthread_mutex_unlock(&p->mu);
    if (err != NULL) {
        if (last.code == BKOAUTH_OK) /* an attempt that failed without saying why */
            err_set(err, BKOAUTH_E_STORE, "the token store cannot be reached (another caller is connecting)");
        else
            *err = last;
    }
    return NULL;
}

/* Connects conn again (p->mu not held; the attempt counted in p->connecting already): 0, or -1
 * with err set. */
static int reopen_counted(pool *p, void *conn, bkoauth_error *err)
{
    int rc = p->reopen(p->ctx, conn, err);
    pthread_mutex_lock(&p->mu);
    attempt_ended(p, rc == 0, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Opens a connection for the pool (p->mu not held); its slot is counted already. */
static void *open_one(pool *p, bkoauth_error *err)
{
    void *c = p->open(p->ctx, err);
    pthread_mutex_lock(&p->mu);
    p->opening--;
    p->open_failing = c == NULL;
    attempt_ended(p, c != NULL, err);
    if (c == NULL) p->opened--;
    pthread_cond_broadcast(&p->cv); /* a waiter may open the next one */
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
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}
