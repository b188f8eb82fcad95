/* SPDX-License-Identifier: MIT */
/* first_use.c - a program linked with libbkoauth.so alone (never with libcurl, libpq or the
 * MariaDB connector), for tests/scripts/test_dlopen*.sh: the libraries loaded on first use, as a
 * fresh process sees them. Settings from the environment.
 *   bkoauth-first-use race    16 threads at once: each makes a client (the first store opening:
 *                             libpq for a postgresql:// store, the MariaDB connector and libcrypto
 *                             for a mysql:// one), then each checks the SSM service on
 *                             its own client and asks the APP token on a shared one (the first SSM
 *                             calls: libcurl); then a fork: the child does it all again.
 *   bkoauth-first-use retry [STORE_URL]
 *                             a library that cannot be loaded (BKOAUTH_TEST_DLOPEN_FAIL) is an
 *                             error naming its package; once it can be, the next call succeeds:
 *                             libcurl, then the store's (libpq or the MariaDB connector).
 *   bkoauth-first-use forkload
 *                             fork() while another thread is loading libcurl (a stand-in
 *                             libcurl.so.4 whose constructor sleeps, first on LD_LIBRARY_PATH:
 *                             test_dlopen.sh): the child's first SSM call ends (with the stand-in's
 *                             error), and does not wait forever for a lock of the parent's thread.
 * Prints what it found; exit status 0 when every check held. */
#include "bkoauth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 16

static int failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, const bkoauth_error *e)
{
    pthread_mutex_lock(&fail_lock);
    failures++;
    fprintf(stderr, "FAIL: %s: %s: %s\n", what, e ? bkoauth_code_name(e->code) : "", e ? e->message : "");
    pthread_mutex_unlock(&fail_lock);
}

/* 1 when a library whose file name begins with prefix is mapped in this process. */
static int mapped(const char *prefix)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
        const char *slash = strrchr(line, '/');
        found = slash != NULL && strncmp(slash + 1, prefix, strlen(prefix)) == 0;
    }
    if (f != NULL) fclose(f);
    return found;
}

/* libcrypto comes with libcurl (its TLS library) or the MySQL store, never before */
static const char *const HEAVY[] = {"libcurl.so", "libpq.so", "libmariadb.so", "libcrypto.so"};

static void expect_mapped(const char *when, int curl, int pq, int my)
{
    int want[4] = {curl, pq, my, curl || my};
    for (int i = 0; i < 4; i++) {
        int m = mapped(HEAVY[i]);
        printf("%s: %s %s\n", when, HEAVY[i], m ? "mapped" : "not mapped");
        if (m != want[i]) {
            char what[200];
            snprintf(what, sizeof what, "%s: %s is %s", when, HEAVY[i], m ? "mapped" : "not mapped");
            fail(what, NULL);
        }
    }
}

static bkoauth_config *config;
static bkoauth_client *shared;
static pthread_barrier_t barrier;

static void *racer(void *arg)
{
    (void)arg;
    bkoauth_error e;
    pthread_barrier_wait(&barrier);
    bkoauth_client *c = bkoauth_client_new(config, &e); /* the first store opening, 16 at once */
    if (c == NULL) fail("bkoauth_client_new", &e);
    pthread_barrier_wait(&barrier);
    long status = 0;
    if (c != NULL && bkoauth_check_service(c, &status, &e) != BKOAUTH_OK) fail("bkoauth_check_service", &e);
    bkoauth_token *t = NULL;
    if (bkoauth_get_app_access_token(shared, &t, &e) != BKOAUTH_OK || t == NULL || t->access_token[0] == '\0')
        fail("bkoauth_get_app_access_token", &e);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    return NULL;
}

static void race(void)
{
    pthread_t th[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, racer, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
}

static int mode_race(int pq, int my)
{
    bkoauth_error e;
    expect_mapped("at start", 0, 0, 0);
    /* the shared client's store opened by the racers first: it is made after them */
    pthread_t th[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, racer, NULL);
    pthread_barrier_wait(&barrier); /* all 16 open their store now */
    shared = bkoauth_client_new(config, &e);
    if (shared == NULL) {
        fail("the shared client", &e);
        exit(1);
    }
    pthread_barrier_wait(&barrier); /* all 16 make their first SSM calls now */
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    expect_mapped("after the race", 1, pq, my);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) { /* the child: the libraries as the parent loaded them */
        failures = 0;
        race();
        expect_mapped("in the child", 1, pq, my);
        printf("child: %d failures\n", failures);
        fflush(stdout);
        _exit(failures == 0 ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("the child after fork()", NULL);
    race(); /* and the parent goes on as well */
    bkoauth_client_free(shared);
    return failures;
}

static void *slow_loader(void *arg)
{
    bkoauth_error e;
    bkoauth_check_service(arg, NULL, &e);
    return NULL;
}

static int mode_forkload(void)
{
    bkoauth_error e;
    bkoauth_client *c = bkoauth_client_new(config, &e);
    if (c == NULL) {
        fail("bkoauth_client_new", &e);
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, slow_loader, c);
    usleep(300 * 1000); /* the thread is in the stand-in's constructor now, in the middle of its load */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20); /* a child waiting for a lock that nobody will release dies of it */
        bkoauth_client *child = bkoauth_client_new(config, &e);
        bkoauth_code rc = child == NULL ? e.code : bkoauth_check_service(child, NULL, &e);
        printf("child: %s %s\n", bkoauth_code_name(rc), rc != BKOAUTH_OK ? e.message : "");
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("the child forked during a load did not end its first SSM call", NULL);
    pthread_join(th, NULL);
    bkoauth_client_free(c);
    return failures;
}

/* fn fails naming package while BKOAUTH_TEST_DLOPEN_FAIL names soname, then succeeds. */
static void expect_retry(const char *soname, const char *package, bkoauth_code code, const char *database_url)
{
    bkoauth_error e;
    setenv("BKOAUTH_TEST_DLOPEN_FAIL", soname, 1);
    if (database_url != NULL) bkoauth_config_set(config, "BKOAUTH_DATABASE_URL", database_url, &e);
    for (int round = 0; round < 2; round++) {
        bkoauth_client *c = bkoauth_client_new(config, &e);
        bkoauth_code rc = c == NULL ? e.code : bkoauth_check_service(c, NULL, &e);
        int want_fail = round == 0;
        printf("%s %s: %s %s\n", soname, want_fail ? "hidden" : "back", bkoauth_code_name(rc),
               rc != BKOAUTH_OK ? e.message : "");
        if (want_fail &&
            (rc != code || strstr(e.message, package) == NULL || strstr(e.message, soname) == NULL))
            fail("a library that cannot be loaded: its package named", &e);
        if (!want_fail && rc != BKOAUTH_OK) fail("the library back: the next call", &e);
        bkoauth_client_free(c);
        unsetenv("BKOAUTH_TEST_DLOPEN_FAIL");
    }
}

int main(int argc, char **argv)
{
    bkoauth_error e;
    const char *mode = argc > 1 ? argv[1] : "";
    config = bkoauth_config_new();
    if (config == NULL || bkoauth_config_load_env(config, &e) != BKOAUTH_OK) {
        fail("the settings", &e);
        return 1;
    }
    const char *db = bkoauth_config_get(config, "BKOAUTH_DATABASE_URL");
    int pq = db != NULL && strncmp(db, "postgres", 8) == 0;
    int my = db != NULL && (strncmp(db, "mysql:", 6) == 0 || strncmp(db, "mariadb:", 8) == 0);
    if (strcmp(mode, "race") == 0) {
        mode_race(pq, my);
    } else if (strcmp(mode, "forkload") == 0) {
        mode_forkload();
    } else if (strcmp(mode, "retry") == 0) {
        expect_retry("libcurl.so.4", "libcurl4", BKOAUTH_E_TOKEN_API, NULL);
        if (argc > 2 && strncmp(argv[2], "mysql:", 6) == 0)
            expect_retry("libmariadb.so.3", "libmariadb3", BKOAUTH_E_STORE, argv[2]);
        else if (argc > 2)
            expect_retry("libpq.so.5", "libpq5", BKOAUTH_E_STORE, argv[2]);
    } else {
        fprintf(stderr, "usage: bkoauth-first-use race | forkload | retry [POSTGRESQL_OR_MYSQL_URL]\n");
        return 2;
    }
    bkoauth_config_free(config);
    printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
