/* SPDX-License-Identifier: MIT */
/* bench_paths.c - what a call that finds a fresh saved token costs.
 *
 *   bench_paths [DATABASE_URL]     (default: a temporary SQLite file)
 *
 * Prints: the hot path (cached, one thread, then 1..16 threads), the store path (cache off),
 * lookups in a store of 1,000 and of 1,000,000 saved users (cache off), the memory one cached
 * token takes, and what listing 10,000 saved tokens leaves in the library's pool and in the
 * process's resident memory. No SSM service is needed: tokens are saved through the store. */
#include "bkoauth.h"
#include "cache.h"
#include "internal.h"
#include "store/store.h"

#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The store a DATABASE_URL names, for the report. */
static const char *store_label(const char *db_url)
{
    if (strncmp(db_url, "sqlite:", 7) == 0) return "SQLite";
    if (strncmp(db_url, "mysql://", 8) == 0 || strncmp(db_url, "mariadb://", 10) == 0) return "MySQL";
    return "PostgreSQL";
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static bkoauth_client *client(const char *db_url, const char *cache_seconds)
{
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_error e;
    if (bkoauth_config_set(cfg, "OAUTH_API_URL", "http://127.0.0.1:9", &e) ||
        bkoauth_config_set(cfg, "APP_CODE", "bench", &e) ||
        bkoauth_config_set(cfg, "SECRET_KEY", "bench-secret", &e) ||
        bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", db_url, &e) ||
        bkoauth_config_set(cfg, "BKOAUTH_CACHE_SECONDS", cache_seconds, &e)) {
        fprintf(stderr, "bench: settings: %s\n", e.message);
        exit(1);
    }
    bkoauth_client *c = bkoauth_client_new(cfg, &e);
    bkoauth_config_free(cfg);
    if (c == NULL) {
        fprintf(stderr, "bench: client: %s\n", e.message);
        exit(1);
    }
    return c;
}

static void save_user(const char *db_url, const char *user)
{
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", db_url, NULL);
    bk_settings s;
    bk_logger lg = {0};
    bkoauth_error e;
    if (settings_from_config(cfg, &s, &e) != BKOAUTH_OK) {
        fprintf(stderr, "bench: %s\n", e.message);
        exit(1);
    }
    store *st = store_open(&s, &lg, &e);
    if (st == NULL) {
        fprintf(stderr, "bench: store: %s\n", e.message);
        exit(1);
    }
    char tok[64];
    snprintf(tok, sizeof tok, "bench-access-token-%s-0123456789abcdef", user);
    bkoauth_token *t = token_make(tok, "bench-refresh-token-0123456789abcdef", "", "test", user,
                                  bk_now() + 180 * 86400, bk_now());
    if (store_put(st, t, &e) != BKOAUTH_OK) {
        fprintf(stderr, "bench: put: %s\n", e.message);
        exit(1);
    }
    bkoauth_token_free(t);
    store_close(st);
    settings_clear(&s);
    bkoauth_config_free(cfg);
}

/* Inserts users user0..user{n-1} in one transaction straight into the table (the client has
 * created it); far faster than one renewal transaction per row. */
static void fill_sqlite(const char *path, long n)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "bench: open %s\n", path);
        exit(1);
    }
    sqlite3_exec(db, "DELETE FROM bkoauth_access_token; BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, "
        "user_id, created_at) VALUES (?, '2099-01-01 00:00:00', ?, '', 'test', ?, "
        "'2026-01-01 00:00:00')",
        -1, &ins, NULL);
    for (long i = 0; i < n; i++) {
        char tok[64], rt[64], user[32];
        snprintf(tok, sizeof tok, "bench-access-%ld-0123456789abcdef", i);
        snprintf(rt, sizeof rt, "bench-refresh-%ld-0123456789abcdef", i);
        snprintf(user, sizeof user, "user%ld", i);
        sqlite3_bind_text(ins, 1, tok, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, rt, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, user, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "bench: insert: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
}

/* The process's VmRSS in kB (0 when unknown). */
static long vm_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return 0;
    char line[256];
    long kb = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* Lists every saved token (n expected) twice: what the first list takes from the library's pool
 * and keeps after it is freed, and that the second takes nothing more. */
static void list_memory(bkoauth_client *c, long n)
{
    long rss0 = vm_rss_kb();
    size_t pool0 = bkoauth__slab_bytes();
    for (int round = 1; round <= 2; round++) {
        bkoauth_token **list = NULL;
        size_t count = 0;
        bkoauth_error e;
        if (bkoauth_list_tokens(c, &list, &count, &e) != BKOAUTH_OK || (long)count != n) {
            fprintf(stderr, "bench: list: %s (%zu tokens)\n", e.message, count);
            exit(1);
        }
        long rss_listed = vm_rss_kb();
        size_t pool_listed = bkoauth__slab_bytes();
        bkoauth_tokens_free(list, count);
        malloc_trim(0);
        printf("  list %d of %ld tokens: pool %+zd kB while listed (%zu kB in all), %+zd kB kept after; "
               "VmRSS %+ld kB while listed, %+ld kB after\n",
               round, n, (ssize_t)(pool_listed - pool0) / 1024, pool_listed / 1024,
               (ssize_t)(bkoauth__slab_bytes() - pool0) / 1024, rss_listed - rss0, vm_rss_kb() - rss0);
    }
}

static void by_user_or_die(bkoauth_client *c, const char *user)
{
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token_by_user(c, user, &t, &e) != BKOAUTH_OK) {
        fprintf(stderr, "bench: by_user(%s): %s\n", user, e.message);
        exit(1);
    }
    bkoauth_token_free(t);
}

typedef struct run {
    bkoauth_client *c;
    long calls;
    pthread_barrier_t *barrier;
    double ns;
} run;

static void *hot_loop(void *arg)
{
    run *r = arg;
    by_user_or_die(r->c, "alice"); /* fill this thread's cache */
    pthread_barrier_wait(r->barrier);
    double t0 = now_ns();
    for (long i = 0; i < r->calls; i++)
        by_user_or_die(r->c, "alice");
    r->ns = now_ns() - t0;
    return NULL;
}

/* threads callers released together; wall time from the release to the last caller's end */
static void hot_threads(bkoauth_client *c, int threads, long calls, long cores)
{
    pthread_t th[64];
    run r[64];
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        r[i] = (run){.c = c, .calls = calls, .barrier = &b};
        pthread_create(&th[i], NULL, hot_loop, &r[i]);
    }
    pthread_barrier_wait(&b);
    double t0 = now_ns();
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double wall = now_ns() - t0;
    pthread_barrier_destroy(&b);
    double total = (double)calls * threads;
    long busy = threads < cores ? threads : cores;
    printf("  %2d thread%s: %6.2f M calls/s in all, %6.1f ns per call per busy core\n", threads,
           threads == 1 ? " " : "s", total / wall * 1e3, wall * (double)busy / total);
}

static double lookups(bkoauth_client *c, long users, long calls)
{
    char user[32];
    unsigned seed = 12345;
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        snprintf(user, sizeof user, "user%ld", (long)(rand_r(&seed) % users));
        by_user_or_die(c, user);
    }
    return (now_ns() - t0) / (double)calls / 1000.0;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/bkoauth-bench-XXXXXX";
    if (mkdtemp(dir) == NULL) return 1;
    char path[256], url[300];
    snprintf(path, sizeof path, "%s/bench.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    const char *db_url = argc > 1 ? argv[1] : url;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("libbkoauth %s benchmarks, %ld cores, store %s\n", bkoauth_version(), cores, store_label(db_url));

    bkoauth_client *cached = client(db_url, "10");
    save_user(db_url, "alice");
    by_user_or_die(cached, "alice");

    printf("hot path: get_access_token_by_user of a fresh, cached token\n");
    long calls = 2000000;
    double t0 = now_ns();
    for (long i = 0; i < calls; i++)
        by_user_or_die(cached, "alice");
    printf("  1 thread (main):  %7.1f ns per call (%ld calls)\n", (now_ns() - t0) / (double)calls, calls);
    for (int th = 1; th <= 16; th *= 2)
        hot_threads(cached, th, 500000, cores);

    printf("store path: the same call with BKOAUTH_CACHE_SECONDS=0\n");
    bkoauth_client *uncached = client(db_url, "0");
    calls = 200000;
    t0 = now_ns();
    for (long i = 0; i < calls; i++)
        by_user_or_die(uncached, "alice");
    printf("  1 thread:         %7.2f us per call (%ld calls)\n", (now_ns() - t0) / (double)calls / 1000.0,
           calls);

    printf("memory per cached token (access_token 40 chars, refresh_token 36, user id 8-9)\n");
    cache *mc = cache_new(10);
    size_t before_bytes = cache_thread_bytes();
    struct mallinfo2 m0 = mallinfo2();
    char user[32];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        snprintf(user, sizeof user, "mem%d", i);
        char tok[64];
        snprintf(tok, sizeof tok, "bench-access-token-%08d-0123456789ab", i);
        bkoauth_token *t = token_make(tok, "bench-refresh-token-0123456789abcdef", "", "test", user,
                                      bk_now() + 86400 * 180, bk_now());
        /* through the cache's own entry point, as the client does after a store read */
        cache_put(mc, t, cache_generation(mc, t->env_name, t->user_id), bk_monotonic_coarse_ms());
        bkoauth_token_free(t);
    }
    struct mallinfo2 m1 = mallinfo2();
    size_t after_bytes = cache_thread_bytes();
    printf("  %zu bytes per token by the cache's count, %zu bytes per token by malloc (%d tokens); "
           "at most %d tokens per thread\n",
           (after_bytes - before_bytes) / CACHE_SLOTS, (size_t)(m1.uordblks - m0.uordblks) / CACHE_SLOTS,
           CACHE_SLOTS, CACHE_SLOTS);

    cache_free(mc);
    if (strncmp(db_url, "sqlite:", 7) == 0) {
        printf("lookups in a big store (cache off, random users)\n");
        double small = 0, big = 0;
        fill_sqlite(path, 1000);
        lookups(uncached, 1000, 20000);
        small = lookups(uncached, 1000, 100000);
        printf("  1,000 users:      %7.2f us per lookup\n", small);
        printf("memory a list of every saved token leaves (bkoauth_list_tokens, then freed)\n");
        fill_sqlite(path, 10000);
        list_memory(uncached, 10000);
        fill_sqlite(path, 1000000);
        lookups(uncached, 1000000, 20000);
        big = lookups(uncached, 1000000, 100000);
        printf("  1,000,000 users:  %7.2f us per lookup (%.2fx the 1,000-user figure)\n", big, big / small);
    }
    bkoauth_client_free(cached);
    bkoauth_client_free(uncached);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}
