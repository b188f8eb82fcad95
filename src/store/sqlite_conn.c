/* SPDX-License-Identifier: MIT */
/* sqlite_conn.c - the SQLite store's connections (sqlite.c): opened NOMUTEX with the pragmas each
 * needs (synchronous, the memory map, a small page cache), a file lock waited for in short steps
 * up to a limit, the read-only immutable fallback when the system refuses a normal read, and
 * SQLite's errors in the library's words. */
#include "sqlite_int.h"

#include <stdio.h>
#include <unistd.h>

/* How long a statement waits for another connection's file lock. Write transactions here are
 * short (one row), so this is only reached when something else holds the database. */
static long busy_limit_ms(const sqlite_store *ss)
{
    return ss->s->timeout_ms + 5000;
}

/* ---- errors -------------------------------------------------------------------------------- */

bkoauth_code bk_sq_error(sqlite_store *ss, sqlite3 *db, int rc, const char *what, bkoauth_error *err)
{
    if (rc == SQLITE_NOMEM || (db != NULL && sqlite3_errcode(db) == SQLITE_NOMEM)) return err_nomem(err);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return err_set(
            err, BKOAUTH_E_STORE,
            "the token database %s is locked by another process for more than %ld ms (%s); retry later",
            ss->path, busy_limit_ms(ss), what);
    return err_set(err, BKOAUTH_E_STORE, "token database %s: %s failed: %s", ss->path, what,
                   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- connections --------------------------------------------------------------------------- */

void bk_sq_conn_close(void *p)
{
    conn *c = p;
    if (c == NULL) return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close(c->db);
    bkoauth__free(c);
}

static void exec_quiet(sqlite3 *db, const char *sql)
{
    sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Waits for a file lock in short steps (1 ms, later 5 ms) up to busy_limit_ms: write
 * transactions are short, so a waiter should notice the lock is free at once. */
int bk_sq_on_busy(void *ctx, int count)
{
    conn *c = ctx;
    int64_t now = bk_monotonic_ms();
    if (count == 0) c->busy_since_ms = now;
    if (now - c->busy_since_ms >= busy_limit_ms(c->ss)) return 0;
    usleep(count < 20 ? 1000 : 5000);
    return 1;
}

/* The database read as immutable: for when the system refuses the side files a normal read
 * needs (the WAL index on a full disk, in a read-only directory, on an immutable file). Saved
 * tokens are then still served. It reads the main file only (no locks, no WAL): what a crashed
 * writer left uncheckpointed in the WAL is not seen, which is why it is the fallback only. */
static int open_immutable(sqlite_store *ss, conn *c)
{
    bk_buf uri = {0};
    buf_puts(&uri, "file:");
    for (const unsigned char *p = (const unsigned char *)ss->path; *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#' || *p < 0x20 || *p >= 0x7f)
            buf_printf(&uri, "%%%02X", *p);
        else
            buf_append(&uri, (const char *)p, 1);
    }
    buf_puts(&uri, "?immutable=1");
    if (uri.oom) {
        buf_free(&uri);
        return SQLITE_NOMEM;
    }
    sqlite3_close(c->db);
    c->db = NULL;
    int rc =
        sqlite3_open_v2(uri.data, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    buf_free(&uri);
    c->immutable = 1;
    return rc;
}

/* 1 when a read of the database fails because the system refuses what reading needs. */
static int unreadable(sqlite3 *db)
{
    int rc = sqlite3_exec(db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
    return rc == SQLITE_IOERR || rc == SQLITE_CANTOPEN || rc == SQLITE_READONLY || rc == SQLITE_FULL;
}

void *bk_sq_conn_open(void *ctx, bkoauth_error *err)
{
    sqlite_store *ss = ctx;
    conn *c = bkoauth__calloc(1, sizeof *c);
    if (c == NULL) {
        err_nomem(err);
        return NULL;
    }
    c->ss = ss;
    int rc = sqlite3_open_v2(ss->path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK && unreadable(c->db)) {
        char why[200];
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(c->db));
        rc = open_immutable(ss, c);
        int64_t now = bk_monotonic_ms(), last = atomic_load(&ss->immutable_warned_ms);
        if (rc == SQLITE_OK && (last == 0 || now - last >= 60000) &&
            atomic_compare_exchange_strong(&ss->immutable_warned_ms, &last, now))
            log_write(
                ss->base.logger, BKOAUTH_LOG_WARNING,
                "token database %s cannot be read normally (%s: is the disk full or the file read-only?); "
                "reading it read-only, new tokens cannot be saved",
                ss->path, why);
    }
    if (rc != SQLITE_OK) {
        bk_sq_error(ss, c->db, rc, "opening", err);
        bk_sq_conn_close(c);
        return NULL;
    }
    sqlite3_extended_result_codes(c->db, 0);
    sqlite3_busy_handler(c->db, bk_sq_on_busy, c);
    /* WAL (set once on the file in prepare_schema) keeps a committed renewal across a process
     * crash with synchronous NORMAL; only an OS crash may lose the last one, never corrupt. */
    exec_quiet(c->db, "PRAGMA synchronous = NORMAL");
    /* pages are read through a shared memory map instead of a read() each: a lookup in a big
     * table costs no system call (address space only; the OS shares the pages) */
    exec_quiet(c->db, "PRAGMA mmap_size = 268435456");
    /* The page cache holds what the memory map cannot serve (pages whose newest version is in
     * the WAL), and is emptied whenever another connection wrote: capped at SQLite's first
     * block of pages (20, one allocation per connection), its pages never come and go through
     * malloc, which over weeks of renewals fragments the C library's heap (RSS creeps while the
     * memory in use is flat). */
    exec_quiet(c->db, "PRAGMA cache_size = " BK_SQLITE_CACHE_PAGES);
    return c;
}

void bk_sq_release(pool *p, conn *c)
{
    for (int i = 0; i < Q_COUNT; i++)
        if (c->stmt[i]) sqlite3_reset(c->stmt[i]);
    if (c->immutable)
        pool_discard(p, c); /* the next use tries a normal connection again */
    else
        pool_put(p, c);
}

int bk_sq_exec(conn *c, const char *sql)
{
    return sqlite3_exec(c->db, sql, NULL, NULL, NULL);
}
