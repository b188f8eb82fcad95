/* test_datetime.c - Django's datetime text in SQLite: UTC and local time, fractions, offsets,
 * and junk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static void expect(const char *text, int local, int64_t want)
{
    int64_t got = 0;
    if (dt_parse(text, local, &got) != 0) fail_msg("'%s' refused", text);
    if (got != want)
        fail_msg("'%s' (local %d): got %lld, want %lld", text, local, (long long)got, (long long)want);
}

static void refuse(const char *text)
{
    int64_t got = 0;
    if (dt_parse(text, 0, &got) == 0) fail_msg("'%s' accepted as %lld", text, (long long)got);
}

static void test_utc(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(dt_format(1900000000, 0, buf, sizeof buf), "2030-03-17 17:46:40");
    expect("2030-03-17 17:46:40", 0, 1900000000);
    expect("2030-03-17T17:46:40", 0, 1900000000);
    expect("2030-03-17 17:46:40.5", 0, 1900000000);
    expect("2030-03-17 17:46:40.123456", 0, 1900000000);
    expect("2030-03-17 17:46:40.123456789", 0, 1900000000);
    expect("2030-03-17 17:46", 0, 1899999960);
    expect("2030-03-17", 0, 1899936000);
    expect("2030-03-18 01:46:40+08:00", 0, 1900000000);
    expect("2030-03-17 17:46:40Z", 1, 1900000000); /* an offset wins over local */
    expect("2030-03-17 12:46:40-0500", 0, 1900000000);
    expect("2024-02-29 00:00:00", 0, 1709164800);
    expect("1970-01-01 00:00:00", 0, 0);
}

static void test_local(void **state)
{
    (void)state;
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    char buf[32];
    assert_string_equal(dt_format(1900000000, 1, buf, sizeof buf), "2030-03-18 01:46:40");
    expect("2030-03-18 01:46:40", 1, 1900000000);
    expect("2030-03-18 01:46:40.000001", 1, 1900000000);
    for (int64_t t = 1600000000; t < 2000000000; t += 12345677) {
        int64_t back = 0;
        assert_int_equal(dt_parse(dt_format(t, 1, buf, sizeof buf), 1, &back), 0);
        assert_int_equal(back, t);
        assert_int_equal(dt_parse(dt_format(t, 0, buf, sizeof buf), 0, &back), 0);
        assert_int_equal(back, t);
    }
    unsetenv("TZ");
    tzset();
}

static void test_junk(void **state)
{
    (void)state;
    const char *junk[] = {"",
                          "2030",
                          "2030-13-01",
                          "2030-02-30 00:00:00",
                          "2023-02-29",
                          "2030-01-01 24:00:00",
                          "2030-01-01 00:60:00",
                          "2030-01-01 00:00:00.",
                          "2030-01-01 00:00:00 ",
                          "x030-01-01",
                          "2030-01-01 00:00:00+",
                          "2030-01-01 00:00:00+99:00",
                          "2030/01/01",
                          "2030-01-01 0:00:00",
                          "2030-01-01\n00:00:00"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        refuse(junk[i]);
    int64_t out;
    assert_int_equal(dt_parse(NULL, 0, &out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_utc), cmocka_unit_test(test_local),
                                       cmocka_unit_test(test_junk)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
