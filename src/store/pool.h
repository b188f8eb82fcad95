/* SPDX-License-Identifier: MIT */
/* pool.h - a bounded pool of database connections shared by the threads of a process.
 *
 * The backends keep one pool for reads and one for writes, so that writers waiting for the
 * database never take the connections readers need. A connection is opened when the pool has
 * none idle, fewer than max are out and no other is being opened: opening one costs far more
 * than the short statements a connection is out for (a PostgreSQL connection some 25 ms, a
 * lookup 50 us), so when many threads start at once they wait for the connection being opened or
 * one coming back rather than each opening its own, and the pool grows one at a time while
 * callers keep waiting. After an open fails, each caller opens its own at once, as if the pool
 * had no such rule, until one succeeds: a caller's own attempt may well succeed, and none waits
 * behind another's attempt against a server that is down. Once two attempts in a row have failed
 * (opens or reconnections: the server looks down, restarting or cut off), one attempt at a time
 * is made: a caller that would connect while another attempt is under way gets the last
 * attempt's error at once instead of a connection attempt of its own, so that the threads of a
 * process do not each hammer a server that is starting up with connections (during a restart,
 * thousands a second); the first caller after an attempt ends tries again, and the first
 * attempt that succeeds ends it. Beyond max a caller waits for a
 * connection to come back. A connection found broken is discarded (its slot freed), and
 * pool_flush() drops every idle one: after a server restart they are all stale, so the retry gets
 * a freshly opened connection.
 *
 * A backend that can connect a connection again in place (libpq's PQreset keeps the connection's
 * object and its buffers) gives pool_set_reopen() the function that does it: pool_flush() then
 * marks the idle connections stale instead of closing them, a broken one goes back stale
 * (pool_put_stale), and pool_get() connects a stale one again before handing it out. A server
 * restart then frees and allocates next to nothing, where closing every connection and opening
 * new ones, in other threads, scatters their blocks over the allocator's arenas at each restart
 * (resident memory that grows with every restart of a process that runs for weeks).
 *
 * Such a pool (one with a reopen function: a database server) makes its opens and reconnections
 * in a thread of its own, the connector, started at the first, and ended by pool_destroy(): the
 * caller that needs the connection waits for it as before. So the client library's connection
 * state (libpq's and the MySQL connector's buffers, statement handles, parameter lists, error
 * texts) is allocated, freed and allocated again in one thread, whatever thread asked, instead of
 * in each caller's: after a server restart every caller thread reconnected some connection, and
 * each one's stack and heap arena grew by the reconnection's share, once per thread. The
 * connector makes one attempt at a time, in the order asked; an attempt asked for while another
 * was under way is not made when the server looks down by then (two attempts in a row failed):
 * its caller gets the last error, as a caller does that finds an attempt under way. When the
 * thread cannot be started, callers connect in their own threads, as they do in ThreadSanitizer
 * builds (ThreadSanitizer stops a process that starts a thread in a child of a multi-threaded
 * one, which a client made after fork() would do). */
#ifndef BKOAUTH_POOL_H
#define BKOAUTH_POOL_H

#include "../internal.h"

#include <pthread.h>

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **idle;          /* max slots; nidle of them hold connections, most recently used last */
    unsigned char *stale; /* stale[i]: idle[i] is to be connected again before use */
    int nidle;
    int opened;               /* connections out of the pool or idle in it, or being opened */
    int opening;              /* connections being opened: 1 at most while opens succeed */
    int open_failing;         /* the last open failed: callers open at once, each its own */
    int connecting;           /* opens and reconnections under way */
    int connect_failures;     /* opens and reconnections that failed in a row (0 after one succeeds) */
    bkoauth_error last_error; /* of the last that failed */
    int max;
    void *(*open)(void *ctx, bkoauth_error *err); /* NULL with err set when it cannot */
    void (*close)(void *conn);
    int (*reopen)(void *ctx, void *conn, bkoauth_error *err); /* NULL: nothing is kept stale */
    void *ctx;
    /* the pool's connector thread (pools with a reopen function): it makes their opens and
     * reconnections, one at a time, for the callers, which wait for theirs */
    pthread_t connector;
    int connector_state;          /* 0 not started, 1 running, -1 could not start (callers connect) */
    int stopping;                 /* pool_destroy: the connector ends */
    struct pool_job *jobs, *last; /* waiting, first to last */
    pthread_cond_t jobs_cv;       /* the connector waits for a job */
    pthread_cond_t done_cv;       /* callers wait for theirs to be done */
    unsigned long attempts_ended; /* opens and reconnections ended so far */
} pool;

/* 0, or -1 when out of memory. open and close are the backend's; ctx is passed to open. */
int pool_init(pool *p, int max, void *(*open)(void *ctx, bkoauth_error *err), void (*close)(void *conn),
              void *ctx);
/* Closes every idle connection and frees the pool; every connection must be back. */
void pool_destroy(pool *p);

/* An idle connection, or a new one; waits while max are out or (while opens succeed) another is
 * being opened. A stale idle one is connected again first. *fresh (when not NULL) is set to 1
 * when the connection was opened or connected again by this call. NULL with err set when this
 * call's open or reconnection failed (a connection that could not reconnect stays in the pool,
 * stale, for the next caller to try). */
void *pool_get(pool *p, int *fresh, bkoauth_error *err);
/* An idle connection that is not stale, without connecting any: waits while every connection
 * opened is out; NULL when none is opened or the idle ones are stale (for work that only makes
 * sense on the connections there are, such as releasing a session's lock). */
void *pool_get_ready(pool *p);
/* Gives a working connection back. */
void pool_put(pool *p, void *conn);
/* Gives a broken connection back: kept stale with a reopen function, else closed (its slot
 * freed). */
void pool_put_stale(pool *p, void *conn);
/* Closes a broken connection and frees its slot. */
void pool_discard(pool *p, void *conn);
/* Closes every idle connection, or marks each stale with a reopen function (after one was found
 * broken: they are likely all stale). */
void pool_flush(pool *p);
/* conn, out of pool p and found broken: every idle one marked stale (pool_flush), conn connected
 * again now. 0, or -1 with err set (conn given back stale). Needs a reopen function. */
int pool_renew(pool *p, void *conn, bkoauth_error *err);
/* The backend's function that connects conn again in place (ctx the pool's): 0, or -1 with err
 * set. Before the pool is shared. */
void pool_set_reopen(pool *p, int (*reopen)(void *ctx, void *conn, bkoauth_error *err));
/* In a child after fork(): forgets (without closing) every connection, which are the parent's;
 * the pool starts empty. Only the forking thread exists then, so no lock is taken. */
void pool_after_fork(pool *p);

#endif
