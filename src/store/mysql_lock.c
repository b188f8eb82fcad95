/* SPDX-License-Identifier: MIT */
/* mysql_lock.c - the MySQL store's renewal lock (mysql.c): GET_LOCK(name, 0) on a connection of
 * its own, name the SHA-256 of the key (MySQL allows 64 characters). The server releases the
 * lock when the session ends, so a process that dies holds nothing. The connection is a pool of
 * one (ms->locker): a thread takes it for one statement, and the pool's connector thread opens
 * and reconnects it, as it does the read and write pools' connections. */
#include "crypto_dl.h"
#include "mysql_int.h"

#include <stdio.h>
#include <string.h>

/* The lock's name: MySQL allows 64 characters, so the key (any length, any bytes) is hashed. */
static void lock_name(char *buf, size_t size, const char *env_name, const char *user_id)
{
    char key[400];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(key, sizeof key, "bkoauth_access_token:%s:%s", env_name, user_id ? user_id : "");
    if (n < 0 || (size_t)n >= sizeof key) n = (int)sizeof key - 1;
    if (EVP_Digest(key, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 20) {
        memset(md, 0, sizeof md);
        mdlen = 20;
    }
    size_t at = (size_t)snprintf(buf, size, "bkoauth_access_token:");
    for (unsigned i = 0; i < 20 && at + 2 < size; i++, at += 2)
        snprintf(buf + at, size - at, "%02x", md[i]);
}

/* The lock connection's open and reconnection (the pool's connector thread makes them): the
 * connection with the two lock statements. */
static void *open_lock_conn(void *ctx, bkoauth_error *err)
{
    mconn *c = bk_my_connect(ctx, err);
    if (c != NULL) bk_my_prepare(ctx, c, Q_GET_LOCK, Q_COUNT);
    return c;
}

static int reconnect_lock_conn(void *ctx, void *conn, bkoauth_error *err)
{
    if (bk_my_reconnect(ctx, conn, err) != 0) return -1;
    bk_my_prepare(ctx, conn, Q_GET_LOCK, Q_COUNT);
    return 0;
}

int bk_my_locker_init(my_store *ms)
{
    if (pool_init(&ms->locker, 1, open_lock_conn, bk_my_conn_close, ms) != 0) return -1;
    pool_set_reopen(&ms->locker, reconnect_lock_conn);
    return 0;
}

/* Runs SELECT GET_LOCK / RELEASE_LOCK (q) with name on c; *result the answer (-1 for NULL). */
static bkoauth_code lock_statement(my_store *ms, mconn *c, int q, const char *name, long long *result,
                                   bkoauth_error *err)
{
    MYSQL_STMT *st = bk_my_stmt(ms, c, q, err);
    if (st == NULL) return BKOAUTH_E_STORE;
    MYSQL_BIND p[1], res[1];
    param_text pt;
    bk_my_bind_text(&p[0], &pt, name);
    long long v = -1;
    my_bool is_null = 0;
    memset(res, 0, sizeof res);
    res[0].buffer_type = MYSQL_TYPE_LONGLONG;
    res[0].buffer = &v;
    res[0].is_null = &is_null;
    bkoauth_code rc = BKOAUTH_OK;
    if (mysql_stmt_bind_param(st, p) != 0 || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, res) != 0 || mysql_stmt_store_result(st) != 0 || mysql_stmt_fetch(st) != 0)
        rc = bk_my_stmt_error(ms, c, st, "locking a token's renewal", err);
    mysql_stmt_free_result(st);
    bk_my_result_forget(c);
    if (rc == BKOAUTH_OK) *result = is_null ? -1 : v;
    return rc;
}

/* Takes GET_LOCK(name, 0) on the lock connection: *result 1 taken, 0 held by another session, -1
 * NULL. A connection found broken is connected again (by the pool's connector) and the statement
 * run once more; a fresh connection gets no second try. */
static bkoauth_code get_lock(my_store *ms, const char *name, long long *result, bkoauth_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = 0;
        mconn *c = pool_get(&ms->locker, &fresh, err);
        if (c != NULL && !fresh && bk_my_broken(c)) {
            if (pool_renew(&ms->locker, c, err) != 0)
                c = NULL; /* given back stale */
            else
                fresh = 1;
        }
        if (c == NULL) {
            err_prefix(err, "locking a token's renewal");
            return BKOAUTH_E_STORE;
        }
        if (fresh) attempt = 1;
        bkoauth_code rc = lock_statement(ms, c, Q_GET_LOCK, name, result, err);
        int broken = c->broken;
        bk_my_conn_put(&ms->locker, c);
        if (rc == BKOAUTH_OK || !broken) return rc;
    }
    return BKOAUTH_E_STORE;
}

bkoauth_code bk_my_try_lock(store *base, const char *env_name, const char *user_id, store_lease *lease,
                            int *held, bkoauth_error *err)
{
    (void)lease;
    my_store *ms = (my_store *)base;
    char name[80];
    lock_name(name, sizeof name, env_name, user_id);
    *held = 0;
    long long v = 0;
    bkoauth_code rc = get_lock(ms, name, &v, err);
    if (rc != BKOAUTH_OK) return rc;
    if (v < 0) return err_set(err, BKOAUTH_E_STORE, "MySQL token store at %s: GET_LOCK failed", ms->where);
    *held = v == 1;
    return BKOAUTH_OK;
}

void bk_my_unlock(store *base, const char *env_name, const char *user_id, const store_lease *lease)
{
    (void)lease;
    my_store *ms = (my_store *)base;
    char name[80];
    lock_name(name, sizeof name, env_name, user_id);
    /* a connection lost meanwhile took the lock with it: nothing to release then, and none
     * connected to do it */
    mconn *c = pool_get_ready(&ms->locker);
    if (c == NULL) return;
    long long v = 0;
    if (!bk_my_broken(c)) (void)lock_statement(ms, c, Q_RELEASE_LOCK, name, &v, NULL);
    bk_my_conn_put(&ms->locker, c);
}
