/* SPDX-License-Identifier: MIT */
/* postgres_lease.c - the renewal lock of the PostgreSQL store across processes and hosts: a lease
 * held in a row of bkoauth_renewal_lease.
 *
 * A session advisory lock would need the same server session from the lock to the unlock, which
 * a pooler in transaction or statement mode does not give (the unlock runs on another server
 * connection, fails, and the lock stays with a connection someone else now uses). A lease is
 * taken by one autocommit statement and released by another, on any connection of the pool, so
 * it works directly and through any pooler:
 *   - taken when the key has no row, or its row has expired (until < the server's clock), by
 *     INSERT .. ON CONFLICT DO UPDATE .. WHERE; the row names its holder, unique per taking;
 *   - released by DELETE of the key's row when it is still the holder's;
 *   - it expires store_hold_ms() (BKOAUTH_TIMEOUT_MS + 5 s) after it was taken, the longest a
 *     holder may need: a holder that crashed blocks its key for at most that long, and one on
 *     this host (same kernel boot and pid namespace) whose process is gone is taken over at once;
 *   - every time is the database server's clock (clock_timestamp()), never a client's, so hosts
 *     whose clocks disagree still agree on a lease;
 *   - older versions lock a key with pg_try_advisory_lock(hashtextextended(key, 0)): a lease is
 *     only taken while that advisory lock is free (tried for the statement's transaction only),
 *     so a renewal by an older process keeps this one away. */
#include "postgres_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *const BK_PG_CREATE_LEASE = "CREATE TABLE IF NOT EXISTS bkoauth_renewal_lease (lock_key text "
                                       "PRIMARY KEY, holder text NOT NULL, until timestamp with time zone "
                                       "NOT NULL)";

/* $1 the key, $2 this taking's holder, $3 the lease's length in ms, $4 a holder found dead whose
 * lease may be taken over ('' none). One row: taken ('t' or 'f') and the holder now (none when
 * the key's advisory lock is held by an older version, or a concurrent taking is not visible
 * yet). Taking one's own lease again is a success (a retry after the answer was lost). */
static const char *const TAKE =
    "WITH taken AS (INSERT INTO bkoauth_renewal_lease AS l (lock_key, holder, until) "
    "SELECT $1::text, $2::text, clock_timestamp() + $3::bigint * interval '1 millisecond' "
    "WHERE pg_try_advisory_xact_lock(hashtextextended($1::text, 0)) "
    "ON CONFLICT (lock_key) DO UPDATE SET holder = excluded.holder, until = excluded.until "
    "WHERE l.until < clock_timestamp() OR l.holder = $2::text OR l.holder = $4::text RETURNING l.holder) "
    "SELECT 't', holder FROM taken UNION ALL SELECT 'f', holder FROM bkoauth_renewal_lease "
    "WHERE lock_key = $1::text AND NOT EXISTS (SELECT 1 FROM taken)";

static const char *const RELEASE = "DELETE FROM bkoauth_renewal_lease WHERE lock_key = $1 AND holder = $2";

/* The first line of a small file, "" when it cannot be read. */
static void first_line_of(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL) return;
    if (fgets(buf, (int)size, f) == NULL) buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

void bk_pg_lease_identity(pg_store *ps)
{
    char boot[64], ns[64] = "";
    first_line_of("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1); /* "pid:[4026531836]" */
    ns[n > 0 ? n : 0] = '\0';
    const char *digits = strchr(ns, '[');
    if (boot[0] != '\0' && strchr(boot, ' ') == NULL && digits != NULL)
        snprintf(ps->node, sizeof ps->node, "%.40s-%.*s", boot, (int)strspn(digits + 1, "0123456789"),
                 digits + 1);
    else
        snprintf(ps->node, sizeof ps->node, "-");
    if (gethostname(ps->host, sizeof ps->host) != 0) ps->host[0] = '\0';
    ps->host[sizeof ps->host - 1] = '\0';
    for (char *p = ps->host; *p; p++) /* one word of printable ASCII */
        if (*p <= ' ' || *p > '~') *p = '_';
    if (ps->host[0] == '\0') snprintf(ps->host, sizeof ps->host, "-");
    atomic_store(&ps->lease_seq, 0);
}

/* The key text of earlier versions' advisory locks, so that both keep apart. */
static void lock_key(char *buf, size_t size, const char *env_name, const char *user_id)
{
    snprintf(buf, size, "bkoauth_access_token:%s:%s", env_name, user_id ? user_id : "");
}

/* 1 when holder ("HOST PID NODE SEQ") is a process of this host (same NODE) that has ended. A
 * pid used again by another process counts as alive: the lease then simply expires. */
static int holder_dead(const pg_store *ps, const char *holder, long *pid)
{
    char host[64], node[96];
    if (strcmp(ps->node, "-") == 0 || sscanf(holder, "%63s %ld %95s", host, pid, node) != 3) return 0;
    if (strcmp(node, ps->node) != 0 || *pid <= 0 || *pid == (long)getpid()) return 0;
    return kill((pid_t)*pid, 0) != 0 && errno == ESRCH;
}

typedef struct lease_arg {
    const char *key;
    const char *holder;
    char dead[256]; /* a holder found dead ("" none) */
    char ms[24];
    int taken;
    char other[256]; /* the holder now, when not taken ("" unknown) */
} lease_arg;

static bkoauth_code take_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    lease_arg *a = arg;
    const char *p[4] = {a->key, a->holder, a->ms, a->dead};
    PGresult *r = bk_pg_run(ps, c, TAKE, 4, p, PGRES_TUPLES_OK, "taking a token's renewal lease", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    a->taken = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    snprintf(a->other, sizeof a->other, "%s", PQntuples(r) == 1 && !a->taken ? PQgetvalue(r, 0, 1) : "");
    PQclear(r);
    return BKOAUTH_OK;
}

bkoauth_code bk_pg_try_lock(store *base, const char *env_name, const char *user_id, store_lease *lease,
                            int *held, bkoauth_error *err)
{
    pg_store *ps = (pg_store *)base;
    char key[400];
    lock_key(key, sizeof key, env_name, user_id);
    *held = 0;
    snprintf(lease->holder, sizeof lease->holder, "%s %ld %s %lu", ps->host, (long)getpid(), ps->node,
             atomic_fetch_add(&ps->lease_seq, 1) + 1);
    lease_arg a = {.key = key, .holder = lease->holder};
    snprintf(a.ms, sizeof a.ms, "%lld", (long long)store_hold_ms(ps->s));
    bkoauth_code rc = bk_pg_with_conn(ps, &ps->writers, take_work, &a, err);
    long pid = 0;
    if (rc == BKOAUTH_OK && !a.taken && holder_dead(ps, a.other, &pid)) {
        snprintf(a.dead, sizeof a.dead, "%s", a.other);
        rc = bk_pg_with_conn(ps, &ps->writers, take_work, &a, err);
        if (rc == BKOAUTH_OK && a.taken)
            log_write(ps->base.logger, BKOAUTH_LOG_INFO,
                      "the renewal lease of the token of %s (env %s) was held by process %ld of this host, "
                      "which has ended; taken over",
                      user_id ? user_id : "the APP", env_name, pid);
    }
    if (rc != BKOAUTH_OK) {
        lease->holder[0] = '\0';
        if (err != NULL && strstr(err->message, "bkoauth_renewal_lease") != NULL) {
            char why[sizeof err->message];
            snprintf(why, sizeof why, "%s", err->message);
            err_set(err, BKOAUTH_E_STORE, "%s; have the database owner run: %s", why, BK_PG_CREATE_LEASE);
        }
        return rc;
    }
    *held = a.taken;
    return BKOAUTH_OK;
}

typedef struct release_arg {
    const char *key;
    const char *holder;
    int deleted;
} release_arg;

static bkoauth_code release_work(pg_store *ps, pconn *c, void *arg, bkoauth_error *err)
{
    release_arg *a = arg;
    const char *p[2] = {a->key, a->holder};
    PGresult *r = bk_pg_run(ps, c, RELEASE, 2, p, PGRES_COMMAND_OK, "releasing a token's renewal lease", err);
    if (r == NULL) return BKOAUTH_E_STORE;
    a->deleted = PQcmdTuples(r)[0] != '\0' && strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return BKOAUTH_OK;
}

void bk_pg_unlock(store *base, const char *env_name, const char *user_id, const store_lease *lease)
{
    pg_store *ps = (pg_store *)base;
    if (lease == NULL || lease->holder[0] == '\0') return;
    char key[400];
    lock_key(key, sizeof key, env_name, user_id);
    release_arg a = {key, lease->holder, 0};
    bkoauth_error e;
    const char *who = user_id ? user_id : "the APP";
    if (bk_pg_with_conn(ps, &ps->writers, release_work, &a, &e) != BKOAUTH_OK)
        log_write(ps->base.logger, BKOAUTH_LOG_WARNING,
                  "the renewal lease of the token of %s (env %s) could not be released (%s); it expires by "
                  "itself within %lld ms",
                  who, env_name, e.message, (long long)store_hold_ms(ps->s));
    else if (!a.deleted)
        log_write(ps->base.logger, BKOAUTH_LOG_WARNING,
                  "the renewal of the token of %s (env %s) outlasted its lease (BKOAUTH_TIMEOUT_MS + 5 s); "
                  "another process may have renewed it meanwhile",
                  who, env_name);
}
