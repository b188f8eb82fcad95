/* SPDX-License-Identifier: MIT */
/* test_alloc.c - bkoauth_set_allocators(): what it accepts, what goes through the functions it
 * is given (calloc and strdup made from malloc when not given), Jansson handed the library's
 * wrappers, the defaults restored with NULLs, and the per-thread count of failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

static long n_malloc, n_realloc, n_free, n_calloc, n_strdup;
static int refuse; /* the next allocation fails */

static void *my_malloc(size_t n)
{
    n_malloc++;
    if (refuse) {
        refuse = 0;
        return NULL;
    }
    return malloc(n);
}

static void *my_realloc(void *p, size_t n)
{
    n_realloc++;
    return realloc(p, n);
}

static void my_free(void *p)
{
    n_free++;
    free(p);
}

static void *my_calloc(size_t c, size_t n)
{
    n_calloc++;
    return calloc(c, n);
}

static char *my_strdup(const char *s)
{
    n_strdup++;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL) memcpy(p, s, n);
    return p;
}

static void reset_counts(void)
{
    n_malloc = n_realloc = n_free = n_calloc = n_strdup = 0;
}

static int restore(void **state)
{
    (void)state;
    assert_int_equal(bkoauth_set_allocators(NULL, NULL, NULL, NULL, NULL, NULL), BKOAUTH_OK);
    return 0;
}

static void test_arguments(void **state)
{
    (void)state;
    bkoauth_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(bkoauth_set_allocators(my_malloc, NULL, NULL, my_free, NULL, &e), BKOAUTH_E_INVALID);
    assert_int_equal(e.code, BKOAUTH_E_INVALID);
    assert_non_null(strstr(e.message, "malloc_fn, realloc_fn and free_fn"));
    assert_int_equal(bkoauth_set_allocators(NULL, my_calloc, NULL, NULL, NULL, &e), BKOAUTH_E_INVALID);
    assert_int_equal(bkoauth_set_allocators(NULL, NULL, NULL, NULL, my_strdup, &e), BKOAUTH_E_INVALID);
    /* nothing was changed: the C library's functions are still in force */
    reset_counts();
    bkoauth_free(bk_strdup("x"));
    assert_int_equal(n_malloc + n_free + n_strdup, 0);
    assert_int_equal(bkoauth_set_allocators(NULL, NULL, NULL, NULL, NULL, &e), BKOAUTH_OK);
    assert_int_equal(e.code, BKOAUTH_OK);
}

static void test_given_functions_are_used(void **state)
{
    (void)state;
    assert_int_equal(bkoauth_set_allocators(my_malloc, my_calloc, my_realloc, my_free, my_strdup, NULL),
                     BKOAUTH_OK);
    reset_counts();
    bkoauth_config *c = bkoauth_config_new(); /* calloc */
    assert_non_null(c);
    assert_int_equal(n_calloc, 1);
    assert_int_equal(bkoauth_config_set(c, "APP_CODE", "an-app", NULL), BKOAUTH_OK); /* strdup */
    assert_int_equal(n_strdup, 1);
    bk_buf b = {0};
    for (int i = 0; i < 100; i++)
        buf_puts(&b, "grow "); /* realloc */
    assert_true(n_realloc > 0);
    buf_free(&b);
    bkoauth_config_free(c);
    assert_int_equal(n_free, n_calloc + n_strdup + n_malloc + 1 /* the buffer */);

    /* Jansson allocates through the library's wrappers, so through these */
    json_malloc_t jm = NULL;
    json_free_t jf = NULL;
    json_get_alloc_funcs(&jm, &jf);
    assert_true(jm == bkoauth__malloc);
    assert_true(jf == bkoauth__free);
    long before = n_malloc;
    json_t *j = json_pack("{s:s}", "key", "value");
    assert_non_null(j);
    assert_true(n_malloc > before);
    char *text = bkoauth__json_dump(j, JSON_COMPACT);
    assert_string_equal(text, "{\"key\":\"value\"}");
    bkoauth_free(text);
    json_decref(j);

    /* a token handed out is freed with the given free */
    bkoauth_token *t = token_make("at", "rt", "", "test", "alice", 1, 1);
    long frees = n_free;
    bkoauth_token_free(t);
    assert_int_equal(n_free, frees + 1);
}

static void test_calloc_and_strdup_made_from_malloc(void **state)
{
    (void)state;
    assert_int_equal(bkoauth_set_allocators(my_malloc, NULL, my_realloc, my_free, NULL, NULL), BKOAUTH_OK);
    reset_counts();
    unsigned char *z = bkoauth__calloc(16, 4);
    assert_non_null(z);
    for (int i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    char *s = bkoauth__strdup("copy me");
    assert_string_equal(s, "copy me");
    assert_int_equal(n_malloc, 2);
    assert_int_equal(n_calloc + n_strdup, 0);
    /* an impossible size is a failure, not a wrapped-around small block */
    assert_null(bkoauth__calloc(SIZE_MAX / 2, 4));
    bkoauth__free(z);
    bkoauth__free(s);
    assert_int_equal(n_free, 2);
}

static void *count_in_thread(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)bkoauth__alloc_failures();
}

static void test_failures_counted_per_thread(void **state)
{
    (void)state;
    assert_int_equal(bkoauth_set_allocators(my_malloc, NULL, my_realloc, my_free, NULL, NULL), BKOAUTH_OK);
    unsigned long before = bkoauth__alloc_failures();
    refuse = 1;
    assert_null(bkoauth__malloc(10));
    assert_int_equal(bkoauth__alloc_failures(), before + 1);
    assert_null(bkoauth__strdup(NULL)); /* not a failure */
    assert_int_equal(bkoauth__alloc_failures(), before + 1);
    pthread_t th;
    void *other = NULL;
    assert_int_equal(pthread_create(&th, NULL, count_in_thread, NULL), 0);
    assert_int_equal(pthread_join(th, &other), 0);
    assert_int_equal((uintptr_t)other, 0); /* another thread's count */

    /* a JSON parse that ran out of memory is not bad JSON */
    json_error_t je;
    int oom = 0;
    const char *text = "{\"a\": \"a string long enough to need its own allocation\"}";
    refuse = 1;
    json_t *j = bkoauth__json_loadb(text, strlen(text), 0, &je, &oom);
    assert_null(j);
    assert_true(oom);
    refuse = 0;
    j = bkoauth__json_loadb("{\"a\": [1, 2}", 12, 0, &je, &oom);
    assert_null(j);
    assert_false(oom);
    j = bkoauth__json_loadb(text, strlen(text), 0, &je, &oom);
    assert_non_null(j);
    assert_false(oom);
    json_decref(j);
}

static void test_wipe(void **state)
{
    (void)state;
    char secret[] = "0123456789abcdef";
    bkoauth__wipe(secret, sizeof secret - 1);
    for (size_t i = 0; i < sizeof secret - 1; i++)
        assert_int_equal(secret[i], 0);
    bkoauth__wipe(NULL, 10); /* fine */
    bkoauth__wipe_free(NULL, 10);
    bk_wipe_free(NULL);
}

/* ---- the library's pool for libcurl's blocks (slab.c) ---------------------------------------- */

/* 1 when the pool is on in this build (it is off under AddressSanitizer and ThreadSanitizer) */
static int pool_on(void)
{
    void *p = bkoauth__slab_malloc(16);
    if (p == NULL) return 0;
    bkoauth__slab_free(p);
    return 1;
}

static void test_pool_blocks(void **state)
{
    (void)state;
    if (!pool_on()) {
        /* off: every request is the C library's, and freed by bkoauth__free */
        char *p = bkoauth__pooled_malloc(100);
        assert_non_null(p);
        assert_false(bkoauth__slab_owns(p));
        bkoauth__free(p);
        skip();
    }
    assert_false(bkoauth__slab_owns(NULL));
    /* sizes up to 32 KiB come from the pool, in a class at least that big, 16-byte aligned */
    size_t sizes[] = {1, 15, 16, 17, 1000, 1024, 1025, 4000, 20000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = bkoauth__pooled_malloc(sizes[i]);
        assert_non_null(p);
        assert_true(bkoauth__slab_owns(p));
        assert_true(bkoauth__slab_block_size(p) >= sizes[i]);
        assert_true(bkoauth__slab_block_size(p) <= sizes[i] + sizes[i] / 4 + 16);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xa5, sizes[i]);
        bkoauth__free(p);
    }
    /* bigger ones are the C library's */
    char *big = bkoauth__pooled_malloc(32769);
    assert_non_null(big);
    assert_false(bkoauth__slab_owns(big));
    bkoauth__free(big);
    /* calloc zeroes a block that was used before */
    unsigned char *used = bkoauth__pooled_malloc(300);
    memset(used, 0xff, 300);
    bkoauth__free(used);
    unsigned char *z = bkoauth__pooled_calloc(30, 10);
    assert_non_null(z);
    for (int i = 0; i < 300; i++)
        assert_int_equal(z[i], 0);
    bkoauth__free(z);
    assert_null(bkoauth__pooled_calloc(SIZE_MAX / 2, 4));
    char *d = bkoauth__pooled_strdup("a string");
    assert_true(bkoauth__slab_owns(d));
    assert_string_equal(d, "a string");
    bkoauth__free(d);
}

static void test_pool_realloc(void **state)
{
    (void)state;
    if (!pool_on()) skip();
    char *p = bkoauth__pooled_realloc(NULL, 10);
    assert_true(bkoauth__slab_owns(p));
    memcpy(p, "0123456789", 10);
    /* within the class: the same block */
    assert_ptr_equal(bkoauth__pooled_realloc(p, 16), p);
    assert_ptr_equal(bkoauth__pooled_realloc(p, 3), p);
    /* past it: a bigger block with the contents, up to the C library's beyond the pool */
    char *q = bkoauth__pooled_realloc(p, 3000);
    assert_true(bkoauth__slab_owns(q));
    assert_memory_equal(q, "0123456789", 10);
    char *r = bkoauth__pooled_realloc(q, 100000);
    assert_non_null(r);
    assert_false(bkoauth__slab_owns(r));
    assert_memory_equal(r, "0123456789", 10);
    /* a pool block given to the library's own realloc is handled the same way */
    char *s = bkoauth__pooled_malloc(40);
    memcpy(s, "abc", 4);
    char *t = bkoauth__realloc(s, 2000);
    assert_string_equal(t, "abc");
    bkoauth__free(t);
    bkoauth__free(r);
}

/* The pool holds what was in use at the busiest, not more: blocks freed by other threads serve
 * the next requests of any thread. */
#define POOL_BLOCKS 2000
static void *pool_blocks[POOL_BLOCKS];

static void *free_half(void *arg)
{
    int from = *(int *)arg;
    for (int i = from; i < POOL_BLOCKS; i += 2)
        bkoauth__free(pool_blocks[i]);
    return NULL;
}

static void test_pool_reuses_across_threads(void **state)
{
    (void)state;
    if (!pool_on()) skip();
    size_t before = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < POOL_BLOCKS; i++) {
            pool_blocks[i] = bkoauth__pooled_malloc(200 + (size_t)(i % 7) * 100);
            assert_true(bkoauth__slab_owns(pool_blocks[i]));
            memset(pool_blocks[i], round, 200);
        }
        pthread_t t[2];
        int from[2] = {0, 1};
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, free_half, &from[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        if (round == 0) before = bkoauth__slab_bytes();
    }
    assert_true(before > 0);
    assert_int_equal(bkoauth__slab_bytes(), before);
}

/* A program that gave its own allocators gets libcurl's blocks through them too. */
static void test_pool_not_used_with_given_allocators(void **state)
{
    (void)state;
    assert_int_equal(bkoauth_set_allocators(my_malloc, my_calloc, my_realloc, my_free, my_strdup, NULL),
                     BKOAUTH_OK);
    reset_counts();
    void *p = bkoauth__pooled_malloc(64);
    void *c = bkoauth__pooled_calloc(4, 16);
    char *s = bkoauth__pooled_strdup("x");
    p = bkoauth__pooled_realloc(p, 128);
    assert_false(bkoauth__slab_owns(p) || bkoauth__slab_owns(c) || bkoauth__slab_owns(s));
    bkoauth__free(p);
    bkoauth__free(c);
    bkoauth__free(s);
    assert_true(n_malloc + n_calloc + n_strdup >= 3);
    assert_int_equal(n_realloc, 1);
    assert_int_equal(n_free, 3);
}

/* fork() while other threads allocate from the pool: the child's pool is usable. */
static atomic_int pool_stop;

static void *pool_churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&pool_stop)) {
        void *p = bkoauth__pooled_malloc(48);
        bkoauth__free(p);
    }
    return NULL;
}

static void test_pool_after_fork(void **state)
{
    (void)state;
    if (!pool_on()) skip();
    pthread_t t[2];
    atomic_store(&pool_stop, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, pool_churn, NULL), 0);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(10); /* a lock left held would hang here */
            void *p = bkoauth__pooled_malloc(48);
            int ok = p != NULL && bkoauth__slab_owns(p);
            bkoauth__free(p);
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&pool_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_arguments, restore),
        cmocka_unit_test_teardown(test_given_functions_are_used, restore),
        cmocka_unit_test_teardown(test_calloc_and_strdup_made_from_malloc, restore),
        cmocka_unit_test_teardown(test_failures_counted_per_thread, restore),
        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_pool_blocks),
        cmocka_unit_test(test_pool_realloc),
        cmocka_unit_test(test_pool_reuses_across_threads),
        cmocka_unit_test_teardown(test_pool_not_used_with_given_allocators, restore),
        cmocka_unit_test(test_pool_after_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
