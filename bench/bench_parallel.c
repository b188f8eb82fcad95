/* SPDX-License-Identifier: MIT */
/* bench_parallel.c - distinct users renewing at once against a slow SSM service, and what a
 * lookup of a saved token costs meanwhile.
 *
 * The devserver answers every login after DELAY_MS (its slow fault). USERS distinct users log in
 * at once, as PROCS processes x THREADS threads (each process with its own client); the wall
 * time from the release to the last answer is printed next to the service's latency. While the
 * logins are in flight, a thread of the first process looks up a saved token again and again
 * (cache off, so each lookup reads the store), and a new process opens a client and looks the
 * same token up; their latencies are printed.
 *
 *   bench_parallel [DATABASE_URL [DELAY_MS]]     (default a temporary SQLite file, 1000 ms) */
#include "bkoauth.h"
#include "devserver.h"
#include "herd.h"
#include "testsettings.h"
#include "teststore.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testtime.h"

#define MAX_USERS 64

static devserver *dev;
static char db_url[512];
static long delay_ms = 1000;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *const *settings(void)
{
    static test_settings s;
    test_settings_base(&s, dev->url, "par-app", "par-secret", db_url);
    test_settings_set(&s, "BKOAUTH_CACHE_SECONDS", "0");
    return test_settings_set(&s, "BKOAUTH_TIMEOUT_MS", "30000");
}

static int login(bkoauth_client *c, int user)
{
    char name[16], cookie[40];
    snprintf(name, sizeof name, "u%d", user);
    snprintf(cookie, sizeof cookie, "bk_token=cred-u%d", user);
    bkoauth_request req = {.username = name, .cookie_header = cookie, .remote_addr = "::1"};
    bkoauth_token *t = NULL;
    bkoauth_error e;
    int rc = bkoauth_get_access_token(c, &req, &t, &e);
    if (rc != BKOAUTH_OK) fprintf(stderr, "login of %s: %s\n", name, e.message);
    bkoauth_token_free(t);
    return rc;
}

typedef struct worker {
    bkoauth_client *client;
    int user;
    int rc;
    int go_fd; /* read one byte to start */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    char b;
    if (read(w->go_fd, &b, 1) != 1) {
        w->rc = -1;
        return NULL;
    }
    w->rc = login(w->client, w->user);
    return NULL;
}

/* Lookups of bob's saved token until stop; the slowest and the mean, in ms. */
typedef struct looker {
    bkoauth_client *client;
    atomic_int stop;
    double worst, total;
    int n, failed;
} looker;

static void *looker_main(void *arg)
{
    looker *l = arg;
    while (!atomic_load(&l->stop)) {
        bkoauth_token *t = NULL;
        double t0 = now_ms();
        if (bkoauth_get_access_token_by_user(l->client, "bob", &t, NULL) != BKOAUTH_OK) l->failed++;
        double d = now_ms() - t0;
        bkoauth_token_free(t);
        l->worst = d > l->worst ? d : l->worst;
        l->total += d;
        l->n++;
        test_sleep_ms(20);
    }
    return NULL;
}

/* One process's part: threads logins released by a byte each on go_fd; with a looker when
 * look is set (printed by this process). Exit status: failed logins. */
static int run_process(int first_user, int threads, int go_fd, int look, double *looked_worst,
                       double *looked_mean)
{
    bkoauth_client *c = herd_client(settings());
    if (c == NULL) return 100;
    worker w[MAX_USERS];
    pthread_t th[MAX_USERS];
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.client = c, .user = first_user + i, .go_fd = go_fd};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    looker l = {.client = c};
    pthread_t lt;
    if (look) pthread_create(&lt, NULL, looker_main, &l);
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failed += w[i].rc != BKOAUTH_OK;
    }
    if (look) {
        atomic_store(&l.stop, 1);
        pthread_join(lt, NULL);
        *looked_worst = l.worst;
        *looked_mean = l.n ? l.total / l.n : 0;
        if (l.failed) failed += 1000;
    }
    bkoauth_client_free(c);
    return failed;
}

/* The new-process lookup: client_new + get_access_token_by_user; its duration in ms through
 * the pipe out_fd. */
static void new_process_lookup(int out_fd)
{
    double t0 = now_ms();
    bkoauth_client *c = herd_client(settings());
    bkoauth_token *t = NULL;
    int rc = c ? (int)bkoauth_get_access_token_by_user(c, "bob", &t, NULL) : -1;
    double d = rc == BKOAUTH_OK ? now_ms() - t0 : -1;
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    if (write(out_fd, &d, sizeof d) != (ssize_t)sizeof d) _exit(1);
    _exit(0);
}

/* Forgets every user's token (each scenario logs everyone in anew) and saves bob's. */
static int reset_store(int users)
{
    bkoauth_client *c = herd_client(settings());
    if (c == NULL) return -1;
    char name[16];
    for (int i = 0; i < users; i++) {
        snprintf(name, sizeof name, "u%d", i);
        bkoauth_delete_token(c, name, NULL);
    }
    bkoauth_request req = {.username = "bob", .cookie_header = "bk_token=cred-bob", .remote_addr = "::1"};
    bkoauth_token *t = NULL;
    int rc = bkoauth_get_access_token(c, &req, &t, NULL);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    json_decref(devserver_post(dev, "/__dev/reset"));
    return rc == BKOAUTH_OK ? 0 : -1;
}

static int scenario(int procs, int threads)
{
    int users = procs * threads;
    if (reset_store(users) != 0 || devserver_fault(dev, "slow", users, (int)delay_ms) != 0) return -1;
    int go[2], res[2], np[2];
    if (pipe(go) != 0 || pipe(res) != 0 || pipe(np) != 0) return -1;
    pid_t pids[MAX_USERS];
    for (int p = 0; p < procs; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            close(go[1]);
            double worst = 0, mean = 0;
            int failed = run_process(p * threads, threads, go[0], p == 0, &worst, &mean);
            if (p == 0) {
                double r[2] = {worst, mean};
                if (write(res[1], r, sizeof r) != (ssize_t)sizeof r) _exit(1);
            }
            _exit(failed > 255 ? 255 : failed);
        }
    }
    test_sleep_ms(300); /* every client open, every thread waiting */
    char bytes[MAX_USERS];
    memset(bytes, 'g', sizeof bytes);
    double t0 = now_ms();
    if (write(go[1], bytes, (size_t)users) != users) return -1;
    /* a new process looks a token up while the logins are in flight */
    test_sleep_ms(delay_ms / 5);
    long in_flight_then = devserver_counter(dev, "in_flight");
    pid_t npid = fork();
    if (npid == 0) new_process_lookup(np[1]);
    double new_proc_ms = -1;
    if (read(np[0], &new_proc_ms, sizeof new_proc_ms) != (ssize_t)sizeof new_proc_ms) new_proc_ms = -1;
    long in_flight_after = devserver_counter(dev, "in_flight");
    waitpid(npid, NULL, 0);
    int failed = 0;
    double last = 0;
    for (int p = 0; p < procs; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
    }
    last = now_ms() - t0;
    double looked[2] = {-1, -1};
    if (read(res[0], looked, sizeof looked) != (ssize_t)sizeof looked) looked[0] = -1;
    long calls = devserver_counter(dev, "user_token");
    long peak = devserver_counter(dev, "in_flight_peak");
    close(go[0]);
    close(go[1]);
    close(res[0]);
    close(res[1]);
    close(np[0]);
    close(np[1]);
    printf("  %d process%s x %2d threads: %2d logins of distinct users in %6.0f ms (service latency %ld ms, "
           "%.2fx); ok %d/%d; SSM calls %ld, at most %ld at once\n",
           procs, procs > 1 ? "es" : "  ", threads, users, last, delay_ms, last / (double)delay_ms,
           failed ? users - failed * threads : users, users, calls, peak);
    printf("      meanwhile: lookup in the same process worst %.1f ms, mean %.2f ms; new process "
           "(client_new + lookup) %.1f ms, with %ld -> %ld logins in flight\n",
           looked[0], looked[1], new_proc_ms, in_flight_then, in_flight_after);
    return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 2) delay_ms = atol(argv[2]);
    if (delay_ms < 1) return 2;
    if (teststore_given_or_fresh(argc > 1 ? argv[1] : NULL, "par", db_url, sizeof db_url) == NULL) return 1;
    dev = devserver_start_users("par-app", "par-secret", 16);
    if (dev == NULL) return 1;
    printf("parallel renewals: distinct users logging in at once, every SSM answer after %ld ms; store %s\n",
           delay_ms, teststore_label(db_url));
    int status = 0;
    if (scenario(1, 16) != 0) status = 1;
    if (scenario(4, 4) != 0) status = 1;
    devserver_stop(dev);
    teststore_cleanup();
    return status;
}
