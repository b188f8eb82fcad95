/* SPDX-License-Identifier: MIT */
/* test_scrub.c - bk_scrub(), the one function every message and log line passes: the secrets of
 * the thread's scopes masked in every encoding before the text is cut, control characters,
 * invalid UTF-8 and direction marks escaped; and the messages and log lines built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SECRET "s3cr3t/Key+2024=="

static const char *scrub(const char *text, size_t size, unsigned flags)
{
    static char out[4096];
    assert_true(size <= sizeof out);
    size_t n = bk_scrub(out, size, text, strlen(text), flags);
    assert_int_equal(n, strlen(out));
    assert_true(n < size);
    return out;
}

static void assert_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL) fail_msg("expected '%s' in: %s", want, text);
}

/* Nothing of the secret past the 4 characters its mask shows. */
static void assert_hidden(const char *text)
{
    assert_null(strstr(text, "s3cr3"));
    assert_null(strstr(text, "Key"));
}

static void test_secret_in_every_form(void **state)
{
    (void)state;
    bk_scope sc;
    bk_scope_enter(&sc);
    bk_scope_add(&sc, SECRET);
    const char *forms[] = {
        "raw " SECRET " end",
        "upper s3cr3t%2FKey%2B2024%3D%3D end",
        "lower s3cr3t%2fKey%2b2024%3d%3d end",
        "mixed s3cr3t/Key%2b2024=%3D end",
        "json s3cr3t\\/Key+2024== end",
        "json-u s3cr3t\\u002fKey\\u002B2024\\u003d= end",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        const char *out = scrub(forms[i], 512, 0);
        assert_hidden(out);
        assert_has(out, "s3cr...(17 chars)");
        assert_has(out, " end");
    }
    bk_scope_leave(&sc);
    /* out of its scope the text is left as it is */
    assert_string_equal(scrub("raw " SECRET, 512, 0), "raw " SECRET);
}

static void test_space_as_plus_and_many_secrets(void **state)
{
    (void)state;
    bk_kvlist creds = {0};
    assert_int_equal(kvlist_add(&creds, "bk_token", "cred alice/+x"), 0);
    assert_int_equal(kvlist_add(&creds, "bk_uid", "abc"), 0); /* too short to look for */
    bk_scope outer, inner;
    bk_scope_enter(&outer);
    bk_scope_add(&outer, SECRET);
    bk_scope_enter(&inner);
    inner.list = &creds;
    const char *out = scrub("q=cred+alice%2F%2Bx&s=" SECRET "&u=abc", 512, 0);
    assert_null(strstr(out, "alice"));
    assert_hidden(out);
    assert_has(out, "&u=abc");
    bk_scope_leave(&inner);
    out = scrub("cred alice/+x", 512, 0);
    assert_string_equal(out, "cred alice/+x");
    bk_scope_leave(&outer);
    kvlist_clear(&creds);
}

/* The text is cut after the secrets are masked, never before: a secret where the cut falls is
 * masked whole (or left out whole), never shown in part. */
static void test_cut_never_splits_a_secret(void **state)
{
    (void)state;
    bk_scope sc;
    bk_scope_enter(&sc);
    bk_scope_add(&sc, SECRET);
    char text[400];
    for (int at = 170; at < 200; at++) {
        memset(text, 'm', (size_t)at);
        snprintf(text + at, sizeof text - (size_t)at, "%s tail", SECRET);
        const char *out = scrub(text, 201, 0);
        assert_hidden(out);
        assert_true(strlen(out) <= 200);
        assert_has(out, "...");
    }
    /* text that was itself cut in the middle of a secret: the part is left out */
    const char *out = scrub("value s3cr3t/Ke", 512, BK_SCRUB_CUT);
    assert_hidden(out);
    assert_string_equal(out, "value ...");
    bk_scope_leave(&sc);
}

static void test_control_characters_escaped(void **state)
{
    (void)state;
    assert_string_equal(scrub("a\nb\r\nc\td", 512, 0), "a\\nb\\r\\nc\\td");
    assert_string_equal(scrub("tok\x1b[2J\x7f", 512, 0), "tok\\x1b[2J\\x7f");
    assert_string_equal(scrub("rtl\xe2\x80\xae"
                              "evil",
                              512, 0),
                        "rtl\\u202eevil");
    assert_string_equal(scrub("nel\xc2\x85x", 512, 0), "nel\\u0085x");
    assert_string_equal(scrub("ls\xe2\x80\xa8x", 512, 0), "ls\\u2028x");
    assert_string_equal(scrub("bad\xff\xc3(", 512, 0), "bad\\xff\\xc3(");
    assert_string_equal(scrub("cut\xe5\xbc", 512, 0), "cut\\xe5\\xbc");
    assert_string_equal(scrub("\xe5\xbc\xa0\xe4\xb8\x89 ok", 512, 0), "\xe5\xbc\xa0\xe4\xb8\x89 ok");
    /* a NUL inside the text */
    char out[64];
    bk_scrub(out, sizeof out, "a\0b", 3, 0);
    assert_string_equal(out, "a\\x00b");
    /* quoted text: quotes and backslashes escaped too */
    assert_string_equal(scrub("say \"hi\" \\n", 512, BK_SCRUB_QUOTE), "say \\\"hi\\\" \\\\n");
    /* cut on a character boundary, never inside an escape or a character */
    const char *t = scrub("\xe5\xbc\xa0\xe5\xbc\xa0\xe5\xbc\xa0\xe5\xbc\xa0", 9, 0);
    assert_string_equal(t, "\xe5\xbc\xa0...");
    t = scrub("abcd\nefgh", 8, 0);
    assert_string_equal(t, "abcd...");
    /* scrubbing scrubbed text changes nothing */
    char once[512];
    snprintf(once, sizeof once, "%s", scrub("x\ny\x1b\xff\xe2\x80\xae", 512, 0));
    assert_string_equal(scrub(once, 512, 0), once);
}

static void logged(void *ctx, int level, const char *message)
{
    (void)level;
    snprintf(ctx, 512, "%s", message);
}

/* err_set, err_prefix and log_write pass the scrub. */
static void test_messages_and_logs_are_scrubbed(void **state)
{
    (void)state;
    bk_scope sc;
    bk_scope_enter(&sc);
    bk_scope_add(&sc, SECRET);
    bkoauth_error e;
    /* a long message: the secret falls past 512 bytes of the formatted text */
    char pad[600];
    memset(pad, 'p', 505);
    pad[505] = '\0';
    err_set(&e, BKOAUTH_E_TOKEN_API, "%s %s\nforged", pad, SECRET);
    assert_hidden(e.message);
    assert_null(strchr(e.message, '\n'));
    assert_true(strlen(e.message) < sizeof e.message);
    err_set(&e, BKOAUTH_E_TOKEN_API, "the service said %s", SECRET);
    err_prefix(&e, "user %s", "mallory\nbkoauth: forged");
    assert_hidden(e.message);
    assert_has(e.message, "user mallory\\nbkoauth: forged: the service said s3cr...(17 chars)");
    char line[512] = "";
    bk_logger lg = {logged, line, BKOAUTH_LOG_DEBUG};
    log_write(&lg, BKOAUTH_LOG_WARNING, "quoting %s%%2F and\n%s", "s3cr3t", "Key+2024==");
    assert_null(strchr(line, '\n'));
    log_write(&lg, BKOAUTH_LOG_WARNING, "quoting s3cr3t%%2fKey%%2B2024%%3D%%3D");
    assert_hidden(line);
    /* off: nothing, not even what is logged at every other level */
    line[0] = '\0';
    bk_logger off = {logged, line, BKOAUTH_LOG_OFF};
    log_always(&off, BKOAUTH_LOG_WARNING, "x");
    log_write(&off, BKOAUTH_LOG_ERROR, "x");
    assert_string_equal(line, "");
    bk_logger err_only = {logged, line, BKOAUTH_LOG_ERROR};
    log_always(&err_only, BKOAUTH_LOG_WARNING, "loud");
    assert_string_equal(line, "loud");
    bk_scope_leave(&sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_in_every_form),
        cmocka_unit_test(test_space_as_plus_and_many_secrets),
        cmocka_unit_test(test_cut_never_splits_a_secret),
        cmocka_unit_test(test_control_characters_escaped),
        cmocka_unit_test(test_messages_and_logs_are_scrubbed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
