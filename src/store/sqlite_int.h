/* SPDX-License-Identifier: MIT */
/* sqlite_int.h - what the SQLite store's files share: sqlite.c (statements, rows, operations, the
 * renewal lock, opening) and sqlite_conn.c (connections and SQLite's errors). */
#ifndef BKOAUTH_SQLITE_INT_H
#define BKOAUTH_SQLITE_INT_H

#include "pool.h"
#include "store.h"

#include <sqlite3.h>
#include <stdatomic.h>

#define BK_SQLITE_CACHE_PAGES "20" /* pages per connection: see bk_sq_conn_open */

/* The statements of sqlite.c, prepared once per connection. */
enum {
    Q_GET_USER,
    Q_GET_APP,
    Q_UPDATE,
    Q_INSERT,
    Q_DELETE_CLASH,
    Q_DELETE_USER,
    Q_DELETE_APP,
    Q_LIST,
    Q_COUNT
};

typedef struct sqlite_store sqlite_store;

typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[Q_COUNT];
    sqlite_store *ss;
    int64_t busy_since_ms; /* when the current wait for a file lock began */
    int immutable;         /* opened read-only as immutable (see open_immutable): never pooled */
} conn;

struct sqlite_store {
    store base;
    const bk_settings *s;
    char *path;
    pool readers, writers;
    int lock_fd; /* "<database>-lock", -1 when it cannot be opened (renewals then only in-process) */
    _Atomic int64_t immutable_warned_ms; /* when the read-only fallback was last logged */
};

/* ---- sqlite_conn.c ---- */

/* err for SQLite's rc (and db's message) while what: OutOfMemory, a lock held too long, or a
 * StoreError naming the file. */
bkoauth_code bk_sq_error(sqlite_store *ss, sqlite3 *db, int rc, const char *what, bkoauth_error *err);
/* The pools' open (ctx the sqlite_store) and close of a connection: opened read-write, else
 * read-only as immutable when the system refuses what a normal read needs. */
void *bk_sq_conn_open(void *ctx, bkoauth_error *err);
void bk_sq_conn_close(void *p);
/* SQLite's busy handler of connection ctx: waits for a file lock in short steps up to the
 * store's limit (the SSM timeout and 5 s). */
int bk_sq_on_busy(void *ctx, int count);
/* Gives c back to p with its statements reset (an immutable one is discarded). */
void bk_sq_release(pool *p, conn *c);
/* sqlite3_exec of sql on c: SQLite's result code. */
int bk_sq_exec(conn *c, const char *sql);

#endif
