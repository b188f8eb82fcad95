/* SPDX-License-Identifier: MIT */
/* test_cache.c - the in-process token cache: per-thread copies over a table the threads share,
 * generations, the last copy served while the store cannot be read, a child after fork(), and
 * what a freed client leaves behind: its copies in every thread go (this thread's at once, the others' at
 * their next use of a cache), while threads outlive the client. No I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ---- the shared table: one thread's read serves the others ---- */

typedef struct peer {
    cache *c;
    const char *user;
    int64_t now_ms;
    int64_t expires_seconds;
    char access[64]; /* what the other thread got, "" for a miss */
} peer;

static void *peer_get(void *p)
{
    peer *a = p;
    bkoauth_token *t = cache_get(a->c, "test", a->user, a->expires_seconds, bk_now(), a->now_ms);
    snprintf(a->access, sizeof a->access, "%s", t ? t->access_token : "");
    bkoauth_token_free(t);
    return NULL;
}

static const char *in_other_thread(peer *a)
{
    pthread_t th;
    pthread_create(&th, NULL, peer_get, a);
    pthread_join(th, NULL);
    return a->access;
}

static void test_shared_between_threads(void **state)
{
    (void)state;
    cache *c = cache_new(10);
    bkoauth_token *t = tok(3);
    int64_t ms = bk_monotonic_coarse_ms();
    cache_put(c, t, cache_generation(c, "test", "user3"), ms);
    peer a = {c, "user3", ms, 600, ""};
    assert_string_equal(in_other_thread(&a), t->access_token); /* read by this thread, served there */
    a.now_ms = ms + 10000;                                     /* as old as the ttl: a miss everywhere */
    assert_string_equal(in_other_thread(&a), "");
    a.now_ms = ms;
    a.expires_seconds = 7200 + 10; /* expiring soon */
    assert_string_equal(in_other_thread(&a), "");
    a.expires_seconds = 600;
    /* a put with a generation that moved since (a renewal landed during the read) is not shared */
    uint64_t gen = cache_generation(c, "test", "user3");
    cache_invalidate(c, "test", "user3");
    cache_put(c, t, gen, ms);
    assert_string_equal(in_other_thread(&a), "");
    /* renewed in this process: every thread's copy and the shared one are stale */
    cache_put(c, t, cache_generation(c, "test", "user3"), ms);
    assert_string_equal(in_other_thread(&a), t->access_token);
    cache_invalidate(c, "test", "user3");
    assert_string_equal(in_other_thread(&a), "");
    assert_null(cache_get(c, "test", "user3", 600, bk_now(), ms));
    /* the last copy, whatever its age, while not expiring soon and not renewed since */
    cache_put(c, t, cache_generation(c, "test", "user3"), ms);
    bkoauth_token *last = cache_get_last(c, "test", "user3", 600, bk_now());
    assert_non_null(last);
    assert_string_equal(last->access_token, t->access_token);
    bkoauth_token_free(last);
    assert_null(cache_get_last(c, "test", "user3", 7200 + 10, bk_now()));
    assert_null(cache_get_last(c, "test", "user4", 600, bk_now()));
    cache_invalidate(c, "test", "user3");
    assert_null(cache_get_last(c, "test", "user3", 600, bk_now()));
    bkoauth_token_free(t);
    cache_free(c);
}

/* A child after fork() uses the shared table although another thread of the parent was inside it
 * at the fork (its lock is started anew in the child). */
typedef struct busy {
    cache *c;
    atomic_int stop;
} busy;

static void *keep_busy(void *p)
{
    busy *b = p;
    bkoauth_token *t = tok(5);
    while (!atomic_load(&b->stop)) {
        cache_put(b->c, t, cache_generation(b->c, "test", "user5"), bk_monotonic_coarse_ms());
        bkoauth_token_free(cache_get_last(b->c, "test", "user5", 600, bk_now()));
    }
    bkoauth_token_free(t);
    return NULL;
}

static void test_child_after_fork(void **state)
{
    (void)state;
    busy b = {cache_new(10), 0};
    pthread_t th;
    pthread_create(&th, NULL, keep_busy, &b);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10); /* a lock held for ever ends the child, and the test fails */
            bkoauth_token *t = tok(5);
            cache_put(b.c, t, cache_generation(b.c, "test", "user5"), bk_monotonic_coarse_ms());
            bkoauth_token *got = cache_get_last(b.c, "test", "user5", 600, bk_now());
            int ok = got != NULL && strcmp(got->access_token, t->access_token) == 0;
            bkoauth_token_free(got);
            bkoauth_token_free(t);
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&b.stop, 1);
    pthread_join(th, NULL);
    cache_free(b.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_and_generation),
        cmocka_unit_test(test_wall_clock_steps),
        cmocka_unit_test(test_freed_client_leaves_nothing),
        cmocka_unit_test(test_shared_between_threads),
        cmocka_unit_test(test_child_after_fork),
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
