/* SPDX-License-Identifier: MIT */
/* test_cache.c - the in-process token cache: per-thread copies, generations, and what a freed
 * client leaves behind: its copies in every thread go (this thread's at once, the others' at
 * their next use of a cache), while threads outlive the client. No I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "internal.h"

#define THREADS 4
#define USERS 20

static bkoauth_token *tok(int user)
{
    char name[16], access[32];
    snprintf(name, sizeof name, "user%d", user);
    snprintf(access, sizeof access, "access-token-%d", user);
    return token_make(access, "refresh-token", "", "test", name, bk_now() + 7200, bk_now());
}

static void test_hit_miss_and_generation(void **state)
{
    (void)state;
    cache *c = cache_new(60);
    assert_non_null(c);
    bkoauth_token *t = tok(1);
    int64_t now = bk_now(), ms = bk_monotonic_coarse_ms();
    assert_null(cache_get(c, "test", "user1", 600, now, ms));
    cache_put(c, t, cache_generation(c, "test", "user1"), ms);
    bkoauth_token *hit = cache_get(c, "test", "user1", 600, now, ms);
    assert_non_null(hit);
    assert_string_equal(hit->access_token, t->access_token);
    bkoauth_token_free(hit);
    /* older than the ttl, expiring soon, or renewed since: a miss */
    assert_null(cache_get(c, "test", "user1", 600, now, ms + 60000));
    assert_null(cache_get(c, "test", "user1", 7200 + 10, now, ms));
    cache_invalidate(c, "test", "user1");
    assert_null(cache_get(c, "test", "user1", 600, now, ms));
    bkoauth_token_free(t);
    cache_free(c);
}

/* The wall clock stepped an hour back or forward: the entry's age is still counted on the
 * monotonic clock (it ends after the ttl, not an hour later or at once), and whether its token
 * expires soon is still a question of the wall clock. */
static void test_wall_clock_steps(void **state)
{
    (void)state;
    cache *c = cache_new(10);
    bkoauth_token *t = tok(2); /* expires in 7200 s */
    int64_t now = bk_now(), ms = bk_monotonic_coarse_ms();
    cache_put(c, t, cache_generation(c, "test", "user2"), ms);
    /* an hour back: a hit while the entry is young, a miss once it is 10 s old */
    bkoauth_token *hit = cache_get(c, "test", "user2", 600, now - 3600, ms + 9000);
    assert_non_null(hit);
    bkoauth_token_free(hit);
    assert_null(cache_get(c, "test", "user2", 600, now - 3600, ms + 10000));
    /* an hour forward: the token has 3600 s left, more than 600: a hit; with 3 hours forward it
     * has expired: a miss, though the entry is young */
    hit = cache_get(c, "test", "user2", 600, now + 3600, ms + 1000);
    assert_non_null(hit);
    bkoauth_token_free(hit);
    assert_null(cache_get(c, "test", "user2", 600, now + 3 * 3600, ms + 1000));
    assert_null(cache_get(c, "test", "user2", 0, now + 3 * 3600, ms + 1000));
    bkoauth_token_free(t);
    cache_free(c);
}

typedef struct shared {
    pthread_barrier_t filled, freed, done;
    cache *a, *b;
    size_t bytes_after[THREADS];
    size_t bytes_full[THREADS];
    int hits_after[THREADS];
} shared;

typedef struct arg {
    shared *sh;
    int i;
} arg;

static void *worker(void *p)
{
    arg *a = p;
    shared *sh = a->sh;
    int64_t now = bk_now(), ms = bk_monotonic_coarse_ms();
    for (int u = 0; u < USERS; u++) {
        bkoauth_token *t = tok(u);
        cache_put(sh->a, t, cache_generation(sh->a, "test", t->user_id), ms);
        bkoauth_token_free(t);
    }
    sh->bytes_full[a->i] = cache_thread_bytes();
    pthread_barrier_wait(&sh->filled);
    pthread_barrier_wait(&sh->freed); /* client A is gone; this thread lives on */
    /* the next use of a cache (client B's) drops A's copies */
    bkoauth_token *miss = cache_get(sh->b, "test", "user0", 600, now, ms);
    sh->hits_after[a->i] = miss != NULL;
    bkoauth_token_free(miss);
    sh->bytes_after[a->i] = cache_thread_bytes();
    pthread_barrier_wait(&sh->done);
    return NULL;
}

static void test_freed_client_leaves_nothing(void **state)
{
    (void)state;
    shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_barrier_init(&sh.filled, NULL, THREADS + 1);
    pthread_barrier_init(&sh.freed, NULL, THREADS + 1);
    pthread_barrier_init(&sh.done, NULL, THREADS + 1);
    sh.a = cache_new(60);
    sh.b = cache_new(60);
    pthread_t th[THREADS];
    arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (arg){&sh, i};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    /* this thread holds copies of A too */
    bkoauth_token *t = tok(99);
    cache_put(sh.a, t, cache_generation(sh.a, "test", t->user_id), bk_monotonic_coarse_ms());
    bkoauth_token_free(t);
    size_t mine = cache_thread_bytes();
    pthread_barrier_wait(&sh.filled);
    cache_free(sh.a);
    assert_true(cache_thread_bytes() < mine); /* this thread's copies went at once */
    pthread_barrier_wait(&sh.freed);
    pthread_barrier_wait(&sh.done);
    for (int i = 0; i < THREADS; i++) {
        assert_true(sh.bytes_full[i] > sh.bytes_after[i]);
        assert_int_equal(sh.hits_after[i], 0);
        /* only the table itself is left: no token of A */
        assert_int_equal(sh.bytes_after[i], cache_thread_bytes());
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    cache_free(sh.b);
    pthread_barrier_destroy(&sh.filled);
    pthread_barrier_destroy(&sh.freed);
    pthread_barrier_destroy(&sh.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_and_generation),
        cmocka_unit_test(test_wall_clock_steps),
        cmocka_unit_test(test_freed_client_leaves_nothing),
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
