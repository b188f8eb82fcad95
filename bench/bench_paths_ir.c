/* SPDX-License-Identifier: MIT */
/* bench_paths_ir.c - the hot path and the store path of bench_paths counted in instructions
 * (valgrind --tool=callgrind) instead of time, so that two builds can be compared on a machine
 * too loaded for nanoseconds to mean much. Public API only: it builds against any libbkoauth.so.
 *   valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=OUT \
 *       bench_paths_ir USER [HOT_CALLS [STORE_CALLS]]
 * with the settings in the environment and USER's fresh token saved in the store
 * (BKOAUTH_DATABASE_URL); then callgrind_annotate OUT.1 (the hot path: HOT_CALLS calls with the
 * token cached, default 20000) and OUT.2 (the store path: STORE_CALLS calls with
 * BKOAUTH_CACHE_SECONDS=0, default 2000) give the instructions of all the calls: divide by the
 * count. Outside valgrind it only runs the calls. */
#include "bkoauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <valgrind/callgrind.h>

static bkoauth_client *client(const char *cache_seconds)
{
    bkoauth_error e;
    bkoauth_config *cfg = bkoauth_config_new();
    if (cfg == NULL || bkoauth_config_load_env(cfg, &e) != BKOAUTH_OK ||
        bkoauth_config_set(cfg, "BKOAUTH_CACHE_SECONDS", cache_seconds, &e) != BKOAUTH_OK) {
        fprintf(stderr, "bench_paths_ir: the settings\n");
        exit(1);
    }
    bkoauth_client *c = bkoauth_client_new(cfg, &e);
    bkoauth_config_free(cfg);
    if (c == NULL) {
        fprintf(stderr, "bench_paths_ir: %s\n", e.message);
        exit(1);
    }
    return c;
}

static void calls(bkoauth_client *c, const char *user, long n)
{
    for (long i = 0; i < n; i++) {
        bkoauth_error e;
        bkoauth_token *t = NULL;
        if (bkoauth_get_access_token_by_user(c, user, &t, &e) != BKOAUTH_OK) {
            fprintf(stderr, "bench_paths_ir: %s\n", e.message);
            exit(1);
        }
        bkoauth_token_free(t);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_paths_ir USER [HOT_CALLS [STORE_CALLS]]\n");
        return 2;
    }
    long hot = argc > 2 ? atol(argv[2]) : 20000, store = argc > 3 ? atol(argv[3]) : 2000;
    bkoauth_client *cached = client("10"), *uncached = client("0");
    calls(cached, argv[1], 10); /* warm: the token in the cache, the statements prepared */
    calls(uncached, argv[1], 10);
    CALLGRIND_TOGGLE_COLLECT;
    calls(cached, argv[1], hot);
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT("hot path");
    CALLGRIND_TOGGLE_COLLECT;
    calls(uncached, argv[1], store);
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT("store path");
    bkoauth_client_free(cached);
    bkoauth_client_free(uncached);
    printf("%ld hot calls, %ld store calls\n", hot, store);
    return 0;
}
