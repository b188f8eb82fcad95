/* SPDX-License-Identifier: MIT */
/* bench_soak.c - weeks of uptime in minutes: one process, one client, THREADS threads making
 * mixed calls over USERS users for MINUTES minutes, against bkoauth-devserver with faults
 * switched on and off on a schedule and the database server restarted every few minutes.
 *
 * Tokens live TTL seconds at the devserver and "expire soon" (EXPIRES_SECONDS) TTL - 10 s after
 * they are issued, so each user's token is renewed about every 10 s while it is used. Calls
 * (per thread, picked at random): get_access_token_by_user mostly; get_access_token (a login
 * with the user's cookie) 1 in 500; refresh_token of the user's token 1 in 5000;
 * get_app_access_token 1 in 100; delete_token then a login 1 in 20000; list_tokens 1 in 50000.
 * Faults: every 20 s one kind (http500, drop, slow, truncated, business, html in turn) is on
 * for 3 s. Database: PostgreSQL / MySQL restarted every RESTART_EVERY seconds (180 by default)
 * from FIRST_RESTART (45 s by default: the first minute, before the window from minute 2 that
 * the growth is measured over, holds one of each event, SSM faults and a restart, so that the
 * window holds what repeats and not what an outage needs the first time; -s 90 is the earlier
 * schedule)
 * through scripts/pg.sh or scripts/mysql.sh with BKOAUTH_TEST_PG_DIR / BKOAUTH_TEST_MYSQL_DIR;
 * SQLite has no server to restart.
 *
 * Every minute it prints calls/s, failures by kind, VmRSS and RssAnon (/proc/self/status: the mean and
 * the peak of readings taken every 5 s, so that a reading does not depend on when the library
 * last gave free pages back), what
 * the C library's malloc has in use and holds (mallinfo2, all arenas; SQLite's share from
 * sqlite3_memory_used), the library's own pool, on SQLite the token file's pages mapped in
 * (/proc/self/smaps: SQLite reads the file through a memory map, the OS's shared page cache,
 * which VmRSS counts once per connection that touched a page) and the open descriptors
 * (/proc/self/fd); at the end the growth of RSS
 * and descriptors from minute 2 to the end, and the first 3 messages of each failure code. It
 * prints figures; it asserts nothing about them.
 * Failures are what callers see: TokenAPIError while a fault is on and no saved token is valid
 * (a business error or an expired token), TokenNotExist for the by-user calls of a user between
 * the delete of its token and its next login (which fails while a fault is on).
 *
 *   bench_soak [-m MINUTES] [-t THREADS] [-u USERS] [-r RESTART_SECONDS] [-s FIRST_RESTART]
 *              [-T TRIM_SECONDS] [-l TOKEN_SECONDS] [-f 0|1] [URL]
 *
 * -T sets BKOAUTH_MEMORY_TRIM_SECONDS (default 60, the library's; 0: never trim). -l sets how long
 * a token lives (default 60 s; renewed 10 s before its end); -f 0 switches the fault windows
 * off. Both are for finding what a growth comes from (with -l 3600 -f 0 nothing is renewed).
 *
 * Without DATABASE_URL the store is the test suite's: BKOAUTH_TEST_STORE (sqlite, postgres,
 * mysql) with BKOAUTH_TEST_PG_URL / BKOAUTH_TEST_MYSQL_URL; sqlite is a temporary file. */
#include "bkoauth.h"
#include "devserver.h"
#include "internal.h"
#include "testsettings.h"
#include "teststore.h"

#include <dirent.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testtime.h"

#define MAX_THREADS 256
#define MAX_USERS 2000
#define MAX_MINUTES 10000
#define NCODES 8 /* BKOAUTH_OK .. BKOAUTH_E_NOMEM */

static int minutes = 10, nthreads = 32, nusers = 500, restart_every = 180, first_restart = 45;
static int ttl_seconds = 60;            /* -l: how long a token lives at the devserver */
static int faults = 1;                  /* -f 0: no fault windows */
static const char *trim_seconds = "60"; /* -T: BKOAUTH_MEMORY_TRIM_SECONDS */
static devserver *dev;
static char db_url[512];
static bkoauth_client *client;
static atomic_int stop;

typedef struct counters {
    _Alignas(64) atomic_ulong calls;
    atomic_ulong fails[NCODES];
} counters;
static counters per_thread[MAX_THREADS];

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The message of this thread's last call, and the first EXAMPLES messages of each failure code,
 * printed at the end so that a count can be read with what the callers were told. */
static _Thread_local bkoauth_error call_err;
#define EXAMPLES 3
static pthread_mutex_t examples_mu = PTHREAD_MUTEX_INITIALIZER;
static char examples[NCODES][EXAMPLES][sizeof call_err.message];
static atomic_int nexamples[NCODES];

static void keep_example(bkoauth_code rc, const char *message)
{
    if ((int)rc <= 0 || (int)rc >= NCODES) return;
    if (atomic_load_explicit(&nexamples[rc], memory_order_relaxed) >= EXAMPLES) return; /* no lock */
    pthread_mutex_lock(&examples_mu);
    int n = atomic_load(&nexamples[rc]);
    if (n < EXAMPLES) {
        snprintf(examples[rc][n], sizeof examples[rc][0], "%s", message);
        atomic_store(&nexamples[rc], n + 1);
    }
    pthread_mutex_unlock(&examples_mu);
}

static void print_examples(void)
{
    for (int k = 1; k < NCODES; k++)
        for (int i = 0; i < atomic_load(&nexamples[k]); i++)
            printf("example of %s: %s\n", bkoauth_code_name((bkoauth_code)k), examples[k][i]);
}

static void count(counters *c, bkoauth_code rc)
{
    atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
    if (rc != BKOAUTH_OK && (int)rc > 0 && (int)rc < NCODES)
        atomic_fetch_add_explicit(&c->fails[rc], 1, memory_order_relaxed);
}

static bkoauth_code login(int user)
{
    char name[16], cookie[40];
    snprintf(name, sizeof name, "u%d", user);
    snprintf(cookie, sizeof cookie, "bk_token=cred-u%d", user);
    bkoauth_request req = {.username = name, .cookie_header = cookie, .remote_addr = "127.0.0.1"};
    bkoauth_token *t = NULL;
    bkoauth_code rc = bkoauth_get_access_token(client, &req, &t, &call_err);
    bkoauth_token_free(t);
    return rc;
}

static bkoauth_code by_user(int user, bkoauth_token **keep)
{
    char name[16];
    snprintf(name, sizeof name, "u%d", user);
    bkoauth_token *t = NULL;
    bkoauth_code rc = bkoauth_get_access_token_by_user(client, name, &t, &call_err);
    if (keep != NULL)
        *keep = t;
    else
        bkoauth_token_free(t);
    return rc;
}

static bkoauth_code refresh(int user)
{
    bkoauth_token *old = NULL, *t = NULL;
    bkoauth_code rc = by_user(user, &old);
    if (rc == BKOAUTH_OK) rc = bkoauth_refresh_token(client, old, &t, &call_err);
    bkoauth_token_free(old);
    bkoauth_token_free(t);
    return rc;
}

static bkoauth_code list(void)
{
    bkoauth_token **all = NULL;
    size_t n = 0;
    bkoauth_code rc = bkoauth_list_tokens(client, &all, &n, &call_err);
    bkoauth_tokens_free(all, n);
    return rc;
}

static bkoauth_code one_call(uint64_t *seed)
{
    uint64_t r = next_rand(seed);
    int user = (int)((r >> 32) % (uint64_t)nusers);
    uint64_t pick = r % 100000;
    if (pick < 2) return list();
    if (pick < 7) {
        char name[16];
        snprintf(name, sizeof name, "u%d", user);
        bkoauth_code rc = bkoauth_delete_token(client, name, &call_err);
        return rc == BKOAUTH_OK ? login(user) : rc;
    }
    if (pick < 27) return refresh(user);
    if (pick < 227) return login(user);
    if (pick < 1227) {
        bkoauth_token *t = NULL;
        bkoauth_code rc = bkoauth_get_app_access_token(client, &t, &call_err);
        bkoauth_token_free(t);
        return rc;
    }
    return by_user(user, NULL);
}

static void *worker(void *arg)
{
    counters *c = arg;
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        bkoauth_code rc = one_call(&seed);
        count(c, rc);
        keep_example(rc, call_err.message);
    }
    return NULL;
}

/* ---- what the process holds -------------------------------------------------------------- */

/* VmRSS and RssAnon of /proc/self/status, in kB (-1 when not found). */
static void memory_kb(long *rss, long *anon)
{
    *rss = *anon = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) *rss = atol(line + 6);
        if (strncmp(line, "RssAnon:", 8) == 0) *anon = atol(line + 8);
    }
    fclose(f);
}

/* kB of the SQLite token file mapped in (SQLite reads the file through a memory map per
 * connection: the OS's page cache, shared, counted in VmRSS once per connection that touched a
 * page; it rises and falls as the connections map the file again), -1 for a server store. */
static long file_map_kb(void)
{
    if (strncmp(db_url, "sqlite:", 7) != 0) return -1;
    const char *path = db_url + 7;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) return -1;
    char line[1024];
    long kb = 0;
    int in_file = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &name_at) == 3 && name_at > 0) {
            line[strcspn(line, "\n")] = '\0';
            in_file = strcmp(line + name_at, path) == 0;
        } else if (in_file && strncmp(line, "Rss:", 4) == 0) {
            kb += atol(line + 4);
        }
    }
    fclose(f);
    return kb;
}

/* Open descriptors: the entries of /proc/self/fd (the directory's own one not counted). */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* ---- the schedule: faults and database restarts ----------------------------------------- */

static const char *const fault_kinds[] = {"http500", "drop", "slow", "truncated", "business", "html"};
#define NKINDS (sizeof fault_kinds / sizeof fault_kinds[0])

static const char *server_dir(void)
{
    const char *label = teststore_label(db_url);
    if (strcmp(label, "PostgreSQL") == 0) return getenv("BKOAUTH_TEST_PG_DIR");
    if (strcmp(label, "MySQL") == 0) return getenv("BKOAUTH_TEST_MYSQL_DIR");
    return NULL;
}

/* Restarts the database server; its duration in seconds, or -1 on failure. */
static double restart_server(void)
{
    const char *script = strcmp(teststore_label(db_url), "PostgreSQL") == 0 ? "pg.sh" : "mysql.sh";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/%s' restart '%s' >/dev/null 2>&1", BKOAUTH_SOURCE_DIR, script,
             server_dir());
    double t0 = test_mono_s();
    return system(cmd) == 0 ? test_mono_s() - t0 : -1;
}

typedef struct schedule {
    int faults_on, faults_started;
    int restarts, restarts_failed;
    double restart_seconds;
} schedule;

/* At second s of the run: every 20 s a fault kind is on for 3 s (a fault on the next 100000
 * calls, then cleared: count 0); every restart_every s from 90 s the server restarts. */
static void run_schedule(schedule *sc, long s, long *next_restart)
{
    long phase = s % 20;
    if (phase == 5 && !sc->faults_on && faults) {
        const char *kind = fault_kinds[(s / 20) % NKINDS];
        char path[160];
        if (strcmp(kind, "slow") == 0)
            snprintf(path, sizeof path, "/__dev/fault?kind=slow&count=100000&delay_ms=1500");
        else
            snprintf(path, sizeof path, "/__dev/fault?kind=%s&count=100000", kind);
        json_decref(devserver_post(dev, path));
        sc->faults_on = 1;
        sc->faults_started++;
    } else if (phase == 8 && sc->faults_on) {
        json_decref(devserver_post(dev, "/__dev/fault?kind=http500&count=0"));
        sc->faults_on = 0;
    }
    if (server_dir() != NULL && s >= *next_restart) {
        double d = restart_server();
        sc->restarts++;
        if (d < 0)
            sc->restarts_failed++;
        else
            sc->restart_seconds += d;
        *next_restart = s + restart_every;
    }
}

/* ---- the minutes -------------------------------------------------------------------------- */

typedef struct sample {
    unsigned long calls, fails[NCODES];
    long rss, anon, fds;       /* at the end of the minute */
    long rss_mean, anon_mean;  /* the mean of the minute's readings (every MEM_EVERY_MS) */
    long rss_peak, anon_peak;  /* and their highest */
    long heap_used, heap_held; /* kB: the C library's blocks in use, and the memory it holds */
    long sqlite_used;          /* kB: SQLite's share of heap_used */
    long pool;                 /* kB: the library's own pool (slab.c), made usable so far */
    long map_mean;             /* kB: the mean of the SQLite token file's mapped pages; -1: none */
} sample;

/* What the C library's allocator holds (all arenas, mmapped blocks included) and how much of it
 * is in use; -1 where unknown. */
static void heap_kb(long *used, long *held)
{
    *used = *held = -1;
#ifdef __GLIBC__
    struct mallinfo2 mi = mallinfo2();
    *used = (long)((mi.uordblks + mi.hblkhd) / 1024);
    *held = (long)((mi.arena + mi.hblkhd) / 1024);
#endif
}

static void take(sample *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < nthreads; i++) {
        out->calls += atomic_load(&per_thread[i].calls);
        for (int k = 0; k < NCODES; k++)
            out->fails[k] += atomic_load(&per_thread[i].fails[k]);
    }
    memory_kb(&out->rss, &out->anon);
    heap_kb(&out->heap_used, &out->heap_held);
    out->sqlite_used = (long)(sqlite3_memory_used() / 1024);
    out->pool = (long)(bkoauth__slab_bytes() / 1024);
    out->fds = open_fds();
}

/* The memory readings of one minute: VmRSS and RssAnon every MEM_EVERY_MS. The library gives
 * free pages back at most every BKOAUTH_MEMORY_TRIM_SECONDS, so a single reading depends on
 * how long ago the last trim was; the mean and the peak of a minute's readings do not. */
#define MEM_EVERY_MS 5000
typedef struct mem_minute {
    long long rss_sum, anon_sum, map_sum;
    long n, rss_peak, anon_peak, map_n;
} mem_minute;

static void mem_read(mem_minute *mm)
{
    long rss, anon;
    memory_kb(&rss, &anon);
    if (rss < 0 || anon < 0) return;
    mm->rss_sum += rss;
    mm->anon_sum += anon;
    mm->n++;
    if (rss > mm->rss_peak) mm->rss_peak = rss;
    if (anon > mm->anon_peak) mm->anon_peak = anon;
    long map = file_map_kb();
    if (map >= 0) {
        mm->map_sum += map;
        mm->map_n++;
    }
}

static void mem_close(mem_minute *mm, sample *out)
{
    if (mm->n == 0) mem_read(mm);
    out->rss_mean = mm->n ? (long)(mm->rss_sum / mm->n) : -1;
    out->anon_mean = mm->n ? (long)(mm->anon_sum / mm->n) : -1;
    out->rss_peak = mm->rss_peak;
    out->anon_peak = mm->anon_peak;
    out->map_mean = mm->map_n ? (long)(mm->map_sum / mm->map_n) : -1;
    memset(mm, 0, sizeof *mm);
}

static void print_minute(int m, const sample *prev, const sample *now, double seconds)
{
    printf("minute %3d: %8.0f calls/s; failures:", m, (double)(now->calls - prev->calls) / seconds);
    unsigned long any = 0;
    for (int k = 1; k < NCODES; k++) {
        unsigned long n = now->fails[k] - prev->fails[k];
        if (n) printf(" %s %lu", bkoauth_code_name((bkoauth_code)k), n);
        any += n;
    }
    if (!any) printf(" none");
    printf("; VmRSS %ld kB (mean; peak %ld), RssAnon %ld kB (mean; peak %ld); malloc: %ld kB in use, "
           "SQLite's %ld, %ld kB held; the library's pool %ld kB; fds %ld\n",
           now->rss_mean, now->rss_peak, now->anon_mean, now->anon_peak, now->heap_used, now->sqlite_used,
           now->heap_held, now->pool, now->fds);
    if (now->map_mean >= 0) printf("            the token file's memory map: %ld kB (mean)\n", now->map_mean);
    fflush(stdout);
}

static double growth(long from, long to)
{
    return from > 0 ? 100.0 * (double)(to - from) / (double)from : 0;
}

/* Runs the minutes; the samples at the end of each minute go to at[1..minutes]. */
static void run_minutes(sample *at, schedule *sc)
{
    double t0 = test_mono_s(), minute_start = t0, next_mem = t0;
    long next_restart = first_restart;
    mem_minute mm = {0};
    take(&at[0]);
    for (int m = 1; m <= minutes; m++) {
        while (test_mono_s() - t0 < 60.0 * m) {
            run_schedule(sc, (long)(test_mono_s() - t0), &next_restart);
            if (test_mono_s() >= next_mem) {
                mem_read(&mm);
                next_mem += MEM_EVERY_MS / 1000.0;
            }
            test_sleep_ms(200);
        }
        double t = test_mono_s();
        take(&at[m]);
        mem_close(&mm, &at[m]);
        print_minute(m, &at[m - 1], &at[m], t - minute_start);
        minute_start = t;
    }
}

static void summary(const sample *at, const schedule *sc, double seconds)
{
    const sample *first = &at[0], *last = &at[minutes];
    printf("total: %lu calls in %.0f s (%.0f calls/s); failures:", last->calls - first->calls, seconds,
           (double)(last->calls - first->calls) / seconds);
    for (int k = 1; k < NCODES; k++)
        printf(" %s %lu", bkoauth_code_name((bkoauth_code)k), last->fails[k] - first->fails[k]);
    printf("\nfault windows: %d (3 s each, every 20 s)", sc->faults_started);
    if (server_dir() != NULL)
        printf("; database restarts: %d (%d failed, %.1f s each on average)\n", sc->restarts,
               sc->restarts_failed, sc->restarts ? sc->restart_seconds / sc->restarts : 0);
    else
        printf("; database restarts: none (%s)\n",
               strcmp(teststore_label(db_url), "SQLite") == 0
                   ? "SQLite has no server to restart"
                   : "BKOAUTH_TEST_PG_DIR / BKOAUTH_TEST_MYSQL_DIR not set");
    if (minutes < 2) return;
    long peak_rss = 0, peak_anon = 0, peak_fds = 0;
    for (int m = 2; m <= minutes; m++) {
        peak_rss = at[m].rss_peak > peak_rss ? at[m].rss_peak : peak_rss;
        peak_anon = at[m].anon_peak > peak_anon ? at[m].anon_peak : peak_anon;
        peak_fds = at[m].fds > peak_fds ? at[m].fds : peak_fds;
    }
    printf("growth from minute 2 to the end (the minutes' means): VmRSS %+.2f %% (%ld -> %ld kB, peak %ld), "
           "RssAnon %+.2f %% (%ld -> %ld kB, peak %ld), fds %+.2f %% (%ld -> %ld, peak %ld)\n",
           growth(at[2].rss_mean, last->rss_mean), at[2].rss_mean, last->rss_mean, peak_rss,
           growth(at[2].anon_mean, last->anon_mean), at[2].anon_mean, last->anon_mean, peak_anon,
           growth(at[2].fds, last->fds), at[2].fds, last->fds, peak_fds);
    printf(
        "the same on single readings at the minutes' ends: VmRSS %+.2f %% (%ld -> %ld kB), RssAnon %+.2f %% "
        "(%ld -> %ld kB); malloc in use %+.2f %% (%ld -> %ld kB), held %+.2f %% (%ld -> %ld kB)\n",
        growth(at[2].rss, last->rss), at[2].rss, last->rss, growth(at[2].anon, last->anon), at[2].anon,
        last->anon, growth(at[2].heap_used, last->heap_used), at[2].heap_used, last->heap_used,
        growth(at[2].heap_held, last->heap_held), at[2].heap_held, last->heap_held);
    if (at[2].map_mean >= 0 && last->map_mean >= 0) {
        long from = at[2].rss_mean - at[2].map_mean, to = last->rss_mean - last->map_mean;
        printf(
            "VmRSS less the token file's memory map (the minutes' means): %+.2f %% (%ld -> %ld kB; the map "
            "%ld -> %ld kB)\n",
            growth(from, to), from, to, at[2].map_mean, last->map_mean);
    }
}

/* ---- set-up ------------------------------------------------------------------------------- */

static devserver *start_devserver(void)
{
    static char creds[MAX_USERS][32];
    static const char *args[2 * MAX_USERS + 16];
    static char ttl[16];
    int n = 0;
    snprintf(ttl, sizeof ttl, "%d", ttl_seconds);
    const char *fixed[] = {"--app-code", "soak-app", "--app-secret", "soak-secret",
                           "--ttl",      ttl,        "--overlap",    "30"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        args[n++] = fixed[i];
    for (int i = 0; i < nusers; i++) {
        snprintf(creds[i], sizeof creds[i], "cred-u%d=u%d", i, i);
        args[n++] = "--user";
        args[n++] = creds[i];
    }
    args[n] = NULL;
    return devserver_start(args);
}

static bkoauth_client *make_client(void)
{
    static test_settings s;
    static char expires[16];
    snprintf(expires, sizeof expires, "%d", ttl_seconds - 10);
    test_settings_base(&s, dev->url, "soak-app", "soak-secret", db_url);
    test_settings_set(&s, "EXPIRES_SECONDS", expires);
    test_settings_set(&s, "BKOAUTH_TIMEOUT_MS", "5000");
    test_settings_set(&s, "BKOAUTH_MEMORY_TRIM_SECONDS", trim_seconds);
    bkoauth_error e;
    bkoauth_client *c = test_settings_client(s.kv, &e);
    if (c == NULL) fprintf(stderr, "bench_soak: client: %s\n", e.message);
    return c;
}

static int parse_args(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "m:t:u:r:s:T:l:f:")) != -1) {
        if (opt == 'm')
            minutes = atoi(optarg);
        else if (opt == 't')
            nthreads = atoi(optarg);
        else if (opt == 'u')
            nusers = atoi(optarg);
        else if (opt == 'r')
            restart_every = atoi(optarg);
        else if (opt == 's')
            first_restart = atoi(optarg);
        else if (opt == 'T')
            trim_seconds = optarg;
        else if (opt == 'l')
            ttl_seconds = atoi(optarg);
        else if (opt == 'f')
            faults = atoi(optarg) != 0;
        else
            return -1;
    }
    if (minutes < 1 || minutes > MAX_MINUTES || nthreads < 1 || nthreads > MAX_THREADS || nusers < 1 ||
        nusers > MAX_USERS || restart_every < 10 || first_restart < 1 || ttl_seconds < 20 ||
        ttl_seconds > 86400)
        return -1;
    return teststore_given_or_fresh(optind < argc ? argv[optind] : NULL, "soak", db_url, sizeof db_url) ? 0
                                                                                                        : -1;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        fprintf(stderr, "usage: bench_soak [-m MINUTES] [-t THREADS] [-u USERS] [-r RESTART_SECONDS] "
                        "[-s FIRST_RESTART] [-T TRIM_SECONDS] [-l TOKEN_SECONDS] [-f 0|1] [DATABASE_URL]\n");
        return 2;
    }
    if ((dev = start_devserver()) == NULL || (client = make_client()) == NULL) return 1;
    int failed_logins = 0;
    for (int u = 0; u < nusers; u++)
        failed_logins += login(u) != BKOAUTH_OK;
    printf("soak: %d threads, %d users, %d min, store %s; tokens live %d s, renewed when %d s are left; "
           "%s; %s; BKOAUTH_MEMORY_TRIM_SECONDS=%s; %d first logins failed\n",
           nthreads, nusers, minutes, teststore_label(db_url), ttl_seconds, ttl_seconds - 10,
           faults ? "faults 3 s of every 20 s" : "no faults",
           server_dir() ? "database restarted every few minutes" : "no database restarts", trim_seconds,
           failed_logins);
    fflush(stdout);
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, &per_thread[i]);
    static sample at[MAX_MINUTES + 1];
    schedule sc = {0};
    double t0 = test_mono_s();
    run_minutes(at, &sc);
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double secs = test_mono_s() - t0;
    summary(at, &sc, secs);
    bkoauth_stats st;
    if (bkoauth_client_stats(client, &st, NULL) == BKOAUTH_OK)
        printf("client: %.0f cache hits/s, %.0f store reads/s, %.1f renewals/s, %.1f SSM calls/s, %llu store "
               "reconnects, %llu served during outages\n",
               (double)st.cache_hits / secs, (double)st.store_reads / secs, (double)st.renewals / secs,
               (double)st.ssm_calls / secs, (unsigned long long)st.store_reconnects,
               (unsigned long long)st.served_during_outage);
    print_examples();
    bkoauth_client_free(client);
    devserver_stop(dev);
    teststore_cleanup();
    return 0;
}
