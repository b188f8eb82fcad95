/* SPDX-License-Identifier: MIT */
/* mysql_lock.c - the MySQL store's renewal lock (mysql.c): GET_LOCK(name, 0) on a connection of
 * its own, kept apart from the pools, name the SHA-256 of the key (MySQL allows 64 characters).
 * The server releases the lock when the session ends, so a process that dies holds nothing. */
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

/* Closes the lock statements (before their connection's session ends). */
static void lock_statements_close(my_store *ms)
{
    if (ms->get_lock) mysql_stmt_close(ms->get_lock);
    if (ms->release_lock) mysql_stmt_close(ms->release_lock);
    ms->get_lock = ms->release_lock = NULL;
}

void bk_my_lock_conn_drop(my_store *ms)
{
    lock_statements_close(ms);
    bk_my_conn_close(ms->lock_conn);
    ms->lock_conn = NULL;
}

/* The lock connection, opened when there is none, connected again in place when broken (its
 * statements closed first); *fresh set when either happened. 0, or -1 with err set. */
static int lock_conn_ready(my_store *ms, int *fresh, bkoauth_error *err)
{
    if (ms->lock_conn == NULL) {
        *fresh = 1;
        return (ms->lock_conn = bk_my_connect(ms, err)) != NULL ? 0 : -1;
    }
    if (!bk_my_broken(ms->lock_conn)) return 0;
    *fresh = 1;
    lock_statements_close(ms);
    return bk_my_reconnect(ms, ms->lock_conn, err);
}

/* Runs SELECT GET_LOCK / RELEASE_LOCK (which) with name on the lock connection (under lock_mu);
 * *result the answer (-1 for NULL). A broken connection is replaced and the statement run once
 * more (the session's locks went with it anyway). */
static bkoauth_code lock_statement(my_store *ms, int get, const char *name, long long *result,
                                   bkoauth_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = 0;
        if (lock_conn_ready(ms, &fresh, err) != 0) {
            err_prefix(err, "locking a token's renewal");
            return BKOAUTH_E_STORE;
        }
        if (fresh) attempt = 1; /* a fresh connection gets no second try */
        mconn *c = ms->lock_conn;
        MYSQL_STMT **slot = get ? &ms->get_lock : &ms->release_lock;
        const char *sql = get ? "SELECT GET_LOCK(?, 0)" : "SELECT RELEASE_LOCK(?)";
        if (*slot == NULL) {
            *slot = mysql_stmt_init(c->db);
            if (*slot == NULL) return bk_my_conn_error(ms, c, "locking a token's renewal", err);
            if (mysql_stmt_prepare(*slot, sql, (unsigned long)strlen(sql)) != 0) {
                bkoauth_code rc = bk_my_stmt_error(ms, c, *slot, "locking a token's renewal", err);
                mysql_stmt_close(*slot);
                *slot = NULL;
                if (c->broken) continue;
                return rc;
            }
        }
        MYSQL_STMT *st = *slot;
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
            mysql_stmt_bind_result(st, res) != 0 || mysql_stmt_store_result(st) != 0 ||
            mysql_stmt_fetch(st) != 0)
            rc = bk_my_stmt_error(ms, c, st, "locking a token's renewal", err);
        mysql_stmt_free_result(st);
        bk_my_result_forget(c);
        if (rc == BKOAUTH_OK) {
            *result = is_null ? -1 : v;
            return BKOAUTH_OK;
        }
        if (!c->broken) return rc;
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
    pthread_mutex_lock(&ms->lock_mu);
    bkoauth_code rc = lock_statement(ms, 1, name, &v, err);
    pthread_mutex_unlock(&ms->lock_mu);
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
    pthread_mutex_lock(&ms->lock_mu);
    /* a connection lost meanwhile took the lock with it: nothing to release then */
    if (ms->lock_conn != NULL && !bk_my_broken(ms->lock_conn)) {
        long long v = 0;
        lock_statement(ms, 0, name, &v, NULL);
    }
    pthread_mutex_unlock(&ms->lock_mu);
}
