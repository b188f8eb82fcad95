/* SPDX-License-Identifier: MIT */
/* test_datetime.c - Django's datetime text in SQLite: UTC and local time, fractions, offsets,
 * and junk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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

/* "." followed by 1..9 digits (Django writes 6 when microseconds are not zero); "." alone is junk. */
static void test_fraction_lengths(void **state)
{
    (void)state;
    for (int n = 0; n <= 9; n++) {
        char text[64];
        snprintf(text, sizeof text, "2030-03-17 17:46:40.%.*s", n, "987654321");
        int64_t got = 0;
        int rc = dt_parse(text, 0, &got);
        if (n == 0) {
            assert_int_equal(rc, -1);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(got, 1900000000); /* the fraction is dropped, never rounded up */
        }
        text[10] = 'T';
        rc = dt_parse(text, 0, &got);
        assert_int_equal(rc, n == 0 ? -1 : 0);
    }
    /* with an offset after the fraction */
    expect("2030-03-18T01:46:40.999999+08:00", 0, 1900000000);
    expect("2030-03-17T17:46:40.5Z", 1, 1900000000);
}

/* A zone with daylight saving: every whole hour of two years round-trips (the repeated hour of
 * the switch back is the only ambiguity; the parse then gives one of the two moments). */
static void test_local_dst(void **state)
{
    (void)state;
    setenv("TZ", "America/New_York", 1);
    tzset();
    char buf[32];
    for (int64_t t = 1700000000; t < 1700000000 + 2 * 365 * 86400; t += 3600) {
        int64_t back = 0;
        assert_int_equal(dt_parse(dt_format(t, 1, buf, sizeof buf), 1, &back), 0);
        if (back != t && back != t - 3600 && back != t + 3600)
            fail_msg("%s read as %lld, want %lld", buf, (long long)back, (long long)t);
    }
    expect("2024-07-01 08:00:00", 1, 1719835200);  /* EDT, UTC-4 */
    expect("2024-01-15 07:00:00", 1, 1705320000);  /* EST, UTC-5 */
    expect("2024-01-15 12:00:00Z", 1, 1705320000); /* the offset wins */
    unsetenv("TZ");
    tzset();
}

/* Outside Django's years 1..9999 a moment is written as the nearest one inside, so that what
 * is written can always be read back. */
static void test_format_range(void **state)
{
    (void)state;
    char buf[32];
    int64_t back = 0;
    assert_string_equal(dt_format(INT64_MAX, 0, buf, sizeof buf), "9999-12-30 23:59:59");
    assert_int_equal(dt_parse(buf, 0, &back), 0);
    assert_string_equal(dt_format(INT64_MIN, 0, buf, sizeof buf), "0001-01-02 00:00:00");
    assert_int_equal(dt_parse(buf, 0, &back), 0);
    assert_int_equal(back, -62135596800LL + 86400);
    assert_string_equal(dt_format(-1, 0, buf, sizeof buf), "1969-12-31 23:59:59");
    assert_int_equal(dt_parse(buf, 0, &back), 0);
    assert_int_equal(back, -1);
    expect("9999-12-31 23:59:59", 0, 253402300799LL);
    refuse("0000-01-01 00:00:00");
    /* a small buffer is cut, not overrun */
    char small[8];
    memset(small, 'z', sizeof small);
    dt_format(1900000000, 0, small, 5);
    assert_string_equal(small, "2030");
    assert_int_equal(small[5], 'z');
}

/* Every prefix of valid values, every byte in every position: a value or -1, never a crash or
 * a read past the end. */
static void test_junk_exhaustive(void **state)
{
    (void)state;
    const char *valid[] = {"2030-03-17 17:46:40.123456", "2030-03-18T01:46:40+08:00", "2030-03-17 17:46:40Z"};
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        size_t len = strlen(valid[v]);
        for (size_t n = 0; n < len; n++) { /* prefixes, in an exact-size heap block */
            char *p = malloc(n + 1);
            memcpy(p, valid[v], n);
            p[n] = '\0';
            int64_t got;
            (void)dt_parse(p, 0, &got);
            free(p);
        }
        char text[64];
        for (size_t i = 0; i < len; i++) {
            /* the date and time digits (a fraction's last digit may give way to an offset) */
            int digit_place = i < 19 && valid[v][i] >= '0' && valid[v][i] <= '9';
            for (int c = 1; c < 256; c++) {
                snprintf(text, sizeof text, "%s", valid[v]);
                text[i] = (char)c;
                int64_t got;
                int rc = dt_parse(text, 0, &got);
                if (digit_place && (c < '0' || c > '9') && rc != -1)
                    fail_msg("'%s' (byte %d at %zu) accepted", text, c, i);
            }
        }
    }
    /* a few that are near misses */
    refuse("2030-03-17 17:46:40.12a");
    refuse("2030-03-17 17:46:40+08:0");
    refuse("2030-03-17 17:46:40+08:000");
    refuse("2030-03-17 17:46:40ZZ");
    refuse("2030-03-17 17:46:40.1 ");
    refuse("-2030-03-17");
    refuse("+030-03-17");
    refuse("2030-3-17");
    refuse("2030-03-17 17");
    refuse("2030-03-17 17:");
    refuse("2030-03-17 17:46:");
    refuse("2030-03-17 17:46:4");
}

/* ---- named zones (BKOAUTH_DB_TIME_ZONE = Asia/Shanghai), read from the zone files ----------- */

static bk_zone *zone(const char *name)
{
    bk_zone *z = NULL;
    bkoauth_error e;
    if (zone_load(name, &z, &e) != BKOAUTH_OK) fail_msg("zone %s: %s", name, e.message);
    return z;
}

static void expect_zone(const char *text, const bk_zone *z, int64_t want)
{
    int64_t got = 0;
    if (dt_parse_zone(text, z, &got) != 0) fail_msg("'%s' refused", text);
    if (got != want)
        fail_msg("'%s' in %s: got %lld, want %lld", text, zone_name(z), (long long)got, (long long)want);
}

/* A zone name works whatever the process's TZ is, and never changes it. */
static void test_zone_shanghai(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    bk_zone *z = zone("Asia/Shanghai");
    char buf[32];
    assert_string_equal(dt_format_zone(1900000000, z, buf, sizeof buf), "2030-03-18 01:46:40");
    expect_zone("2030-03-18 01:46:40", z, 1900000000);
    expect_zone("2030-03-18 01:46:40.123456", z, 1900000000);
    expect_zone("2030-03-17 17:46:40+00:00", z, 1900000000); /* an offset wins */
    /* China kept daylight saving time in 1986-1991: 1988-07-01 12:00 was UTC+9 */
    expect_zone("1988-07-01 12:00:00", z, 583729200);
    assert_int_equal(zone_offset(z, 583729200), 9 * 3600);
    assert_int_equal(zone_offset(z, 4102444800LL), 8 * 3600); /* 2100: past the table, the rule */
    assert_string_equal(getenv("TZ"), "UTC");
    assert_string_equal(dt_format(1900000000, 1, buf, sizeof buf), "2030-03-17 17:46:40"); /* local: UTC */
    zone_free(z);
    unsetenv("TZ");
    tzset();
}

/* Daylight saving time: the switch forward (a skipped hour) and back (a repeated hour) read as
 * Python's datetime with fold=0 does; southern zones; the far future from the footer rule. */
static void test_zone_dst(void **state)
{
    (void)state;
    bk_zone *ny = zone("America/New_York");
    expect_zone("2024-07-01 08:00:00", ny, 1719835200);   /* EDT */
    expect_zone("2024-01-15 07:00:00", ny, 1705320000);   /* EST */
    expect_zone("2024-11-03 01:30:00", ny, 1730611800);   /* twice that night: the first (EDT) */
    expect_zone("2024-03-10 02:30:00", ny, 1710055800);   /* skipped: read with EST, 03:30 EDT */
    expect_zone("2124-07-01 08:00:00", ny, 4875508800LL); /* 2124: the footer's rule */
    expect_zone("2124-01-15 07:00:00", ny, 4860993600LL);
    bk_zone *syd = zone("Australia/Sydney");
    assert_int_equal(zone_offset(syd, 1705320000), 11 * 3600); /* January: summer time */
    assert_int_equal(zone_offset(syd, 1719835200), 10 * 3600);
    assert_int_equal(zone_offset(syd, 4860993600LL), 11 * 3600);
    assert_int_equal(zone_offset(syd, 4875508800LL), 10 * 3600);
    zone_free(syd);
    zone_free(ny);
}

/* The zone files agree with the C library's own reading of them, hour by hour over 1970-2199
 * (sampled), and every wall time written reads back (but the repeated hour). */
static void test_zone_matches_libc(void **state)
{
    (void)state;
    const char *names[] = {"Asia/Shanghai",    "America/New_York",  "Europe/London", "Europe/Dublin",
                           "Australia/Sydney", "America/Sao_Paulo", "Asia/Kolkata",  "Pacific/Chatham",
                           "America/Santiago", "Africa/Casablanca", "Etc/GMT+5",     "UTC"};
    char buf[32];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bk_zone *z = zone(names[i]);
        setenv("TZ", names[i], 1);
        tzset();
        for (int64_t t = 0; t < 7258118400LL; t += 3600 * 37 + 1234) {
            time_t tt = (time_t)t;
            struct tm tm;
            assert_non_null(localtime_r(&tt, &tm));
            if (zone_offset(z, t) != tm.tm_gmtoff)
                fail_msg("%s at %lld: offset %d, the C library says %ld", names[i], (long long)t,
                         (int)zone_offset(z, t), (long)tm.tm_gmtoff);
            int64_t back = 0;
            assert_int_equal(dt_parse_zone(dt_format_zone(t, z, buf, sizeof buf), z, &back), 0);
            if (back != t && zone_offset(z, back) == zone_offset(z, t))
                fail_msg("%s: %s read as %lld, want %lld", names[i], buf, (long long)back, (long long)t);
        }
        zone_free(z);
    }
    unsetenv("TZ");
    tzset();
}

/* A zone file is outside input: every truncation and many corruptions of a real one give a zone
 * or NULL, never a crash or a read out of bounds (run under the sanitizers). */
static void test_zone_file_junk(void **state)
{
    (void)state;
    FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
    assert_non_null(f);
    unsigned char data[8192];
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    assert_true(len > 100);
    const char *why = NULL;
    bk_zone *z = zone_parse(data, len, "x", &why);
    assert_non_null(z);
    zone_free(z);
    for (size_t n = 0; n < len; n++) {
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, data, n);
        zone_free(zone_parse(p, n, "x", &why));
        free(p);
    }
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        unsigned char *p = malloc(len);
        memcpy(p, data, len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            p[at] = (unsigned char)(seed >> 16);
        }
        z = zone_parse(p, len, "x", &why);
        if (z != NULL) { /* whatever it read, it answers */
            char buf[32];
            int64_t back;
            (void)zone_offset(z, 1900000000);
            (void)zone_to_utc(z, 1900000000);
            (void)dt_parse_zone(dt_format_zone(-5000000000LL, z, buf, sizeof buf), z, &back);
        }
        zone_free(z);
        free(p);
    }
    const char *rules[] = {"",
                           "X",
                           "CST-8",
                           "<+08>-8",
                           "EST5EDT",
                           "EST5EDT,M3.2.0,M11.1.0/-1",
                           "A1B,J60/167,J365/25",
                           "A1B,0/0,365/25:59:59",
                           "<-03>3<-02>,M13.1.0,M1.1.0",
                           "ABC+25",
                           "AB-1",
                           "ABC1DEF,M3.6.0,M1.1.0",
                           "ABC1DEF,M3.1.7,M1.1.0"};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        unsigned char tz[256];
        /* a version-2 file with no transitions, one type, and the rule as its footer */
        static const unsigned char head[] = {'T', 'Z', 'i', 'f', '2', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0,   0,   0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0,   0,   0,   0,   0,   0, 0, 0, 0, 1, 0, 0, 0, 4};
        size_t n = 0;
        memcpy(tz, head, 44);
        n = 44;
        memcpy(tz + n, "\0\0\0\0\0\0UTC\0", 10);
        n += 10;
        memcpy(tz + n, head, 44);
        n += 44;
        memcpy(tz + n, "\0\0\0\0\0\0UTC\0", 10);
        n += 10;
        n += (size_t)snprintf((char *)tz + n, sizeof tz - n, "\n%s\n", rules[i]);
        z = zone_parse(tz, n, "rule", &why);
        if (z != NULL) {
            (void)zone_offset(z, 1900000000);
            (void)zone_to_utc(z, 1900000000);
        }
        zone_free(z);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_utc),
                                       cmocka_unit_test(test_local),
                                       cmocka_unit_test(test_junk),
                                       cmocka_unit_test(test_fraction_lengths),
                                       cmocka_unit_test(test_local_dst),
                                       cmocka_unit_test(test_format_range),
                                       cmocka_unit_test(test_junk_exhaustive),
                                       cmocka_unit_test(test_zone_shanghai),
                                       cmocka_unit_test(test_zone_dst),
                                       cmocka_unit_test(test_zone_matches_libc),
                                       cmocka_unit_test(test_zone_file_junk)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
