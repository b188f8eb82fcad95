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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_arguments, restore),
        cmocka_unit_test_teardown(test_given_functions_are_used, restore),
        cmocka_unit_test_teardown(test_calloc_and_strdup_made_from_malloc, restore),
        cmocka_unit_test_teardown(test_failures_counted_per_thread, restore),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
