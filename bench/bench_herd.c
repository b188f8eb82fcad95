/* SPDX-License-Identifier: MIT */
/* bench_herd.c - the thundering herd: PROCS processes x THREADS threads released together on
 * one expiring token, for each kind of renewal, against bkoauth-devserver on a free loopback
 * port. Prints how many calls reached the SSM service, how many callers failed, and how long
 * the herd took.
 *
 *   bench_herd [PROCS [THREADS [DATABASE_URL]]]     (default 4 16, a temporary SQLite file) */
#include "bkoauth.h"
#include "devserver.h"
#include "herd.h"
#include "testsettings.h"
#include "teststore.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static devserver *dev;
static char db_url[512];

static const char *const *settings(const char *expires_seconds)
{
    static test_settings s;
    test_settings_base(&s, dev->url, "herd-app", "herd-secret", db_url);
    return test_settings_set(&s, "EXPIRES_SECONDS", expires_seconds);
}

int main(int argc, char **argv)
{
    int procs = argc > 1 ? atoi(argv[1]) : 4;
    int threads = argc > 2 ? atoi(argv[2]) : 16;
    if (procs < 1 || threads < 1) return 2;
    if (teststore_given_or_fresh(argc > 3 ? argv[3] : NULL, "herd", db_url, sizeof db_url) == NULL) return 1;
    const char *args[] = {"--app-code",       "herd-app", "--app-secret", "herd-secret", "--user",
                          "cred-alice=alice", "--ttl",    "3600",         NULL};
    dev = devserver_start(args);
    if (dev == NULL) return 1;
    printf("herd: %d processes x %d threads on one expiring token, store %s\n", procs, threads,
           teststore_label(db_url));
    struct {
        herd_op op;
        const char *name, *counter;
    } kinds[] = {{HERD_BY_USER, "get_access_token_by_user (refresh)", "refresh"},
                 {HERD_APP, "get_app_access_token (APP renewal)", "app_token"},
                 {HERD_LOGIN, "get_access_token (login renewal)", "user_token"}};
    int status = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (herd_prepare_expiring(dev, settings("60"), "alice", "bk_token=cred-alice") != 0) {
            status = 1;
            break;
        }
        long before = devserver_counter(dev, kinds[k].counter);
        herd_spec spec = {.op = kinds[k].op,
                          .procs = procs,
                          .threads = threads,
                          .settings = settings("600"),
                          .user = "alice",
                          .cookie = "bk_token=cred-alice"};
        herd_result r;
        if (herd_run(&spec, &r) != 0) {
            status = 1;
            break;
        }
        long calls = devserver_counter(dev, kinds[k].counter) - before;
        printf("  %-38s SSM calls %ld, callers ok %d/%d, failed %d, all got one token: %s, %.1f ms\n",
               kinds[k].name, calls, r.ok, procs * threads, procs * threads - r.ok, r.same ? "yes" : "no",
               r.seconds * 1000);
        if (r.failure[0]) printf("    first failure: %s", r.failure);
    }
    devserver_stop(dev);
    teststore_cleanup();
    return status;
}
