/* SPDX-License-Identifier: MIT */
/* test_alloc_per_call.c - how many allocations a call makes through the library's allocators,
 * counted with the test allocator (faultalloc): a cached token costs exactly one (the caller's
 * copy); a new token for a cache slot is copied into the slot's block (no allocation); a lookup
 * in the store (cache off) costs one of ours (SQLite allocates through its own allocator). Every
 * block comes back. The free pages are given back (malloc_trim) at the rate of
 * BKOAUTH_MEMORY_TRIM_SECONDS after store reads, never on a cached call. Memory stays flat over weeks only if
 * these stay small: see docs/ARCHITECTURE.md ("Memory that stays flat"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bkoauth.h"
#include "cache.h"
#include "keys.h"
#include "devserver.h"
#include "faultalloc.h"
#include "internal.h"
#include "testsettings.h"
#include "teststore.h"
#include "testtime.h"

#define CALLS 1000

static devserver *dev;
static char db_url[512];

static bkoauth_client *client_trimming(const char *cache_seconds, const char *trim_seconds)
{
    test_settings s;
    test_settings_base(&s, dev->url, "alloc-app", "alloc-secret", db_url);
    test_settings_set(&s, "BKOAUTH_CACHE_SECONDS", cache_seconds);
    test_settings_set(&s, "BKOAUTH_MEMORY_TRIM_SECONDS", trim_seconds);
    bkoauth_error e;
    bkoauth_client *c = test_settings_client(s.kv, &e);
    if (c == NULL) fail_msg("client: %s", e.message);
    return c;
}

static bkoauth_client *client(const char *cache_seconds)
{
    return client_trimming(cache_seconds, "0");
}

static void by_user(bkoauth_client *c)
{
    bkoauth_token *t = NULL;
    bkoauth_error e;
    if (bkoauth_get_access_token_by_user(c, "bob", &t, &e) != BKOAUTH_OK) fail_msg("by_user: %s", e.message);
    bkoauth_token_free(t);
}

/* Allocations per call of get_access_token_by_user on c, over CALLS calls after a first one. */
static double per_call(bkoauth_client *c)
{
    by_user(c); /* the first: cache filled, connection open, statement prepared */
    long live = faultalloc_live(), before = faultalloc_count();
    for (int i = 0; i < CALLS; i++)
        by_user(c);
    assert_int_equal(faultalloc_live(), live); /* every block came back */
    return (double)(faultalloc_count() - before) / CALLS;
}

static void test_cached_call_allocates_once(void **state)
{
    (void)state;
    bkoauth_client *c = client("600");
    assert_true(per_call(c) == 1.0);
    bkoauth_client_free(c);
}

static void test_store_lookup_allocates_once(void **state)
{
    (void)state;
    bkoauth_client *c = client("0");
    assert_true(per_call(c) == 1.0);
    bkoauth_client_free(c);
}

/* A slot that holds a token takes the next token of its key in place: no allocation, and the
 * copy handed out is the new token. */
static void test_cache_slot_reused(void **state)
{
    (void)state;
    cache *ca = cache_new(600);
    assert_non_null(ca);
    int64_t now = bk_now(), now_ms = bk_monotonic_coarse_ms();
    bkoauth_token *a = token_make("access-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "refresh-a", "", "test",
                                  "carol", now + 7200, now);
    bkoauth_token *b = token_make("access-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "refresh-bb", "",
                                  "test", "carol", now + 7200, now);
    long before = faultalloc_count();
    cache_put(ca, a, cache_generation(ca, "test", "carol"), now_ms);
    assert_int_equal(faultalloc_count() - before,
                     2); /* the blocks of this thread's slot and the shared one */
    before = faultalloc_count();
    for (int i = 0; i < CALLS; i++)
        cache_put(ca, (i % 2) ? a : b, cache_generation(ca, "test", "carol"), now_ms);
    assert_int_equal(faultalloc_count() - before, 0);
    bkoauth_token *hit = cache_get(ca, "test", "carol", 600, now, now_ms);
    assert_non_null(hit);
    assert_string_equal(hit->access_token, a->access_token); /* the last put: i = CALLS - 1, odd */
    assert_string_equal(hit->refresh_token, "refresh-a");
    assert_string_equal(hit->user_id, "carol");
    bkoauth_token_free(hit);
    bkoauth_token_free(a);
    bkoauth_token_free(b);
    cache_free(ca);
}

/* Tokens of one key whose sizes fall in two size classes (a short and a long access_token)
 * share the slot's block once it is the bigger one: puts that alternate between them allocate
 * nothing after the first of the bigger size. A block over twice the class of the token is
 * given up for a smaller one. */
static void test_cache_slot_kept_across_classes(void **state)
{
    (void)state;
    cache *ca = cache_new(600);
    assert_non_null(ca);
    int64_t now = bk_now(), now_ms = bk_monotonic_coarse_ms();
    char longer[120], huge[1200];
    memset(longer, 'L', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memset(huge, 'H', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    bkoauth_token *small = token_make("access-token-s", "refresh-s", "", "test", "dave", now + 7200, now);
    bkoauth_token *big = token_make(longer, "refresh-b", "", "test", "dave", now + 7200, now);
    bkoauth_token *giant = token_make(huge, "refresh-g", "", "test", "dave", now + 7200, now);
    uint64_t gen = cache_generation(ca, "test", "dave");
    cache_put(ca, small, gen, now_ms);
    long before = faultalloc_count();
    cache_put(ca, big, gen, now_ms); /* a bigger class: the block is replaced once (here and shared) */
    assert_int_equal(faultalloc_count() - before, 2);
    before = faultalloc_count();
    for (int i = 0; i < CALLS; i++)
        cache_put(ca, (i % 2) ? big : small, gen, now_ms);
    assert_int_equal(faultalloc_count() - before, 0);
    bkoauth_token *hit = cache_get(ca, "test", "dave", 600, now, now_ms);
    assert_non_null(hit);
    assert_string_equal(hit->access_token, longer); /* the last put: i = CALLS - 1, odd */
    bkoauth_token_free(hit);
    cache_put(ca, giant, gen, now_ms);
    before = faultalloc_count();
    cache_put(ca, small, gen, now_ms); /* a block many times the token's size is given up (both) */
    assert_int_equal(faultalloc_count() - before, 2);
    hit = cache_get(ca, "test", "dave", 600, now, now_ms);
    assert_non_null(hit);
    assert_string_equal(hit->access_token, "access-token-s");
    bkoauth_token_free(hit);
    bkoauth_token_free(small);
    bkoauth_token_free(big);
    bkoauth_token_free(giant);
    cache_free(ca);
}

/* A fault window makes every key in use back off at once and the next good renewal of each
 * forgets it: the key table keeps the dropped entries for the next window (up to the most
 * entries ever alive at once), so a second window allocates nothing there. */
static void test_key_entries_kept_across_windows(void **state)
{
    (void)state;
    enum { KEYS = 300 };
    keytab *kt = keytab_new();
    assert_non_null(kt);
    char name[KEYS][16];
    for (int i = 0; i < KEYS; i++)
        snprintf(name[i], sizeof name[i], "u%d", i);
    long allocs[2];
    for (int window = 0; window < 2; window++) {
        long before = faultalloc_count();
        for (int i = 0; i < KEYS; i++)
            assert_true(key_backoff_failed(kt, "test", name[i], bk_monotonic_ms(), 1, 60) > 0);
        allocs[window] = faultalloc_count() - before;
        for (int i = 0; i < KEYS; i++) {
            key_backoff_clear(kt, "test", name[i]);
            assert_int_equal(key_backoff_until(kt, "test", name[i]), 0);
        }
    }
    assert_int_equal(allocs[0], KEYS); /* one entry per key, the names inside it */
    assert_int_equal(allocs[1], 0);
    keytab_free(kt);
}

/* Store reads for about `seconds` s; returns how many times the process trimmed meanwhile. */
static unsigned long trims_during(bkoauth_client *c, double seconds)
{
    unsigned long before = bkoauth__memory_trims();
    double end = test_mono_s() + seconds;
    while (test_mono_s() < end)
        by_user(c);
    return bkoauth__memory_trims() - before;
}

/* BKOAUTH_MEMORY_TRIM_SECONDS=1: store reads for 2.5 s trim at least once (the first read
 * starts the clock), and never more than once a second, however many threads or calls. */
static void test_trim_runs_at_its_rate(void **state)
{
    (void)state;
    bkoauth_client *c = client_trimming("0", "1");
    unsigned long n = trims_during(c, 2.5);
    bkoauth_client_free(c);
    if (n < 1 || n > 3) fail_msg("%lu trims in 2.5 s of store reads with BKOAUTH_MEMORY_TRIM_SECONDS=1", n);
}

/* 0 is off; and a cached call never trims, whatever the setting (it is the hot path). */
static void test_trim_off_and_never_on_cached_calls(void **state)
{
    (void)state;
    bkoauth_client *c = client_trimming("0", "0");
    assert_int_equal(trims_during(c, 1.2), 0);
    bkoauth_client_free(c);
    c = client_trimming("600", "1");
    by_user(c); /* the store read that fills the cache */
    assert_int_equal(trims_during(c, 1.2), 0);
    bkoauth_client_free(c);
}

static int setup(void **state)
{
    (void)state;
    dev = devserver_start_users("alloc-app", "alloc-secret", 0);
    if (dev == NULL || teststore_fresh_url("alloc", db_url, sizeof db_url) == NULL) return -1;
    bkoauth_client *c = client("0");
    bkoauth_request req = {.username = "bob", .cookie_header = "bk_token=cred-bob", .remote_addr = "::1"};
    bkoauth_token *t = NULL;
    bkoauth_error e;
    int rc = bkoauth_get_access_token(c, &req, &t, &e);
    if (rc != BKOAUTH_OK) fprintf(stderr, "login: %s\n", e.message);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    return rc == BKOAUTH_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    devserver_stop(dev);
    teststore_cleanup();
    return 0;
}

int main(void)
{
    faultalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_call_allocates_once),
        cmocka_unit_test(test_store_lookup_allocates_once),
        cmocka_unit_test(test_cache_slot_reused),
        cmocka_unit_test(test_cache_slot_kept_across_classes),
        cmocka_unit_test(test_key_entries_kept_across_windows),
        cmocka_unit_test(test_trim_runs_at_its_rate),
        cmocka_unit_test(test_trim_off_and_never_on_cached_calls),
    };
    return cmocka_run_group_tests_name("allocations per call", tests, setup, teardown);
}
