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
    int64_t now = bk_now();
    assert_null(cache_get(c, "test", "user1", 600, now));
    cache_put(c, t, cache_generation(c, "test", "user1"), now);
    bkoauth_token *hit = cache_get(c, "test", "user1", 600, now);
    assert_non_null(hit);
    assert_string_equal(hit->access_token, t->access_token);
    bkoauth_token_free(hit);
    /* older than the ttl, expiring soon, or renewed since: a miss */
    assert_null(cache_get(c, "test", "user1", 600, now + 60));
    assert_null(cache_get(c, "test", "user1", 7200 + 10, now));
    cache_invalidate(c, "test", "user1");
    assert_null(cache_get(c, "test", "user1", 600, now));
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
    int64_t now = bk_now();
    for (int u = 0; u < USERS; u++) {
        bkoauth_token *t = tok(u);
        cache_put(sh->a, t, cache_generation(sh->a, "test", t->user_id), now);
        bkoauth_token_free(t);
    }
    sh->bytes_full[a->i] = cache_thread_bytes();
    pthread_barrier_wait(&sh->filled);
    pthread_barrier_wait(&sh->freed); /* client A is gone; this thread lives on */
    /* the next use of a cache (client B's) drops A's copies */
    bkoauth_token *miss = cache_get(sh->b, "test", "user0", 600, now);
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
    cache_put(sh.a, t, cache_generation(sh.a, "test", t->user_id), bk_now());
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
        cmocka_unit_test(test_freed_client_leaves_nothing),
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
