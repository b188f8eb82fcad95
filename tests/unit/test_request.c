/* SPDX-License-Identifier: MIT */
/* test_request.c - the credential (cookie, session, query), the uin rule, the client address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bkoauth.h"
#include "internal.h"

static void expect_cookie(const char *header, const char *name, const char *want)
{
    char *v = cookie_get(header, name);
    if (want == NULL) {
        if (v != NULL) fail_msg("cookie %s: got '%s', want none", name, v);
    } else {
        if (v == NULL || strcmp(v, want) != 0)
            fail_msg("cookie %s in '%.200s': got '%s', want '%s'", name, header ? header : "(null)",
                     v ? v : "(none)", want);
    }
    free(v);
}

static void test_cookie_parsing(void **state)
{
    (void)state;
    expect_cookie("bk_token=abc; bk_uid=u", "bk_token", "abc");
    expect_cookie("bk_token=abc; bk_uid=u", "bk_uid", "u");
    expect_cookie("  a=1 ;  bk_token =  spaced  ; c=3", "bk_token", "spaced");
    expect_cookie("bk_token=\"quoted\"", "bk_token", "quoted");
    /* a name given twice: the last one counts (Django's request.COOKIES) */
    expect_cookie("bk_token=first; bk_token=second", "bk_token", "second");
    expect_cookie("bk_token=first; other=x; bk_token=\"third\" ; y=1", "bk_token", "third");
    expect_cookie("bk_token=first; bk_token=", "bk_token", "");
    expect_cookie("xbk_token=no; bk_tokenx=no", "bk_token", NULL);
    expect_cookie("BK_TOKEN=upper", "bk_token", NULL); /* names are case-sensitive */
    expect_cookie("bk_token=", "bk_token", "");
    expect_cookie("junk; ;;=; bk_token=ok", "bk_token", "ok");
    expect_cookie("bk_token=a=b=c", "bk_token", "a=b=c");
    expect_cookie("", "bk_token", NULL);
    expect_cookie(NULL, "bk_token", NULL);
    expect_cookie("a=1", "", NULL);
    size_t big = 200 * 1024;
    char *huge = malloc(big + 32);
    memset(huge, 'x', big);
    memcpy(huge + big, "; bk_token=end", 15);
    expect_cookie(huge, "bk_token", "end");
    free(huge);
}

static void expect_query(const char *q, const char *name, const char *want)
{
    char *v = query_get(q, name);
    if ((want == NULL) != (v == NULL) || (want && strcmp(v, want) != 0))
        fail_msg("query %s in '%s': got '%s', want '%s'", name, q ? q : "(null)", v ? v : "(none)",
                 want ? want : "(none)");
    free(v);
}

static void test_query_parsing(void **state)
{
    (void)state;
    expect_query("a=1&bk_token=abc&c=3", "bk_token", "abc");
    expect_query("bk_token=a%20b+c%2B", "bk_token", "a b c+");
    expect_query("bk%5Ftoken=encoded", "bk_token", "encoded");
    expect_query("bk_token=bad%zz&bk_token=good", "bk_token", "good"); /* a malformed pair is skipped */
    expect_query("bk_token=nul%00byte", "bk_token", NULL);
    expect_query("bk_token=trunc%4", "bk_token", NULL);
    expect_query("bk_token", "bk_token", "");
    expect_query("a=1;bk_token=semi", "bk_token", "semi");
    /* a name given twice: the last one counts (Django's request.GET[name]) */
    expect_query("bk_token=first&bk_token=second", "bk_token", "second");
    expect_query("bk_token=first&a=1&bk_token=", "bk_token", "");
    expect_query("bk_token=good&bk_token=bad%zz", "bk_token", "good"); /* the malformed one is skipped */
    expect_query("", "bk_token", NULL);
    expect_query(NULL, "bk_token", NULL);
}

static void expect_uin(const char *in, const char *want)
{
    char *v = uin_normalize(in);
    assert_non_null(v);
    if (strcmp(v, want) != 0) fail_msg("uin '%s': got '%s', want '%s'", in, v, want);
    free(v);
}

static void test_uin_rule(void **state)
{
    (void)state;
    expect_uin("o0836324475", "836324475");
    expect_uin("o2459422247", "2459422247");
    expect_uin("o123", "123");
    expect_uin("o000", "0");
    expect_uin("o12", "o12"); /* fewer than 3 digits */
    expect_uin("o123456789012345678901234567890123", "o123456789012345678901234567890123"); /* 33 digits */
    expect_uin("o12345678901234567890123456789012", "12345678901234567890123456789012");    /* 32 digits */
    expect_uin("oabc", "oabc");
    expect_uin("O123", "O123");
    expect_uin("o12a4", "o12a4");
    expect_uin("abc", "abc");
    expect_uin("", "");
}

static const char *session(void *ctx, const char *key)
{
    return strcmp(key, "bk_token") == 0 ? (const char *)ctx : NULL;
}

static bk_settings settings_with(const char *cookies_params)
{
    bkoauth_config *c = bkoauth_config_new();
    assert_int_equal(bkoauth_config_set(c, "OAUTH_COOKIES_PARAMS", cookies_params, NULL), BKOAUTH_OK);
    bk_settings s;
    assert_int_equal(settings_from_config(c, &s, NULL), BKOAUTH_OK);
    bkoauth_config_free(c);
    return s;
}

static void test_credential_precedence(void **state)
{
    (void)state;
    bk_settings s = settings_with("{'bk_token': 'bk_token', 'uid': 'bk_uid'}");
    bk_kvlist out = {0};
    bkoauth_request r = {.cookie_header = "bk_token=from-cookie",
                         .query_string = "bk_token=from-query&bk_uid=q-uid",
                         .session_get = session,
                         .session_ctx = "from-session"};
    assert_int_equal(request_credentials(&s, &r, &out, NULL), BKOAUTH_OK);
    assert_int_equal(out.count, 2);
    assert_string_equal(out.items[0].key, "bk_token");
    assert_string_equal(out.items[0].value, "from-cookie");
    assert_string_equal(out.items[1].key, "uid");
    assert_string_equal(out.items[1].value, "q-uid");
    r.cookie_header = "bk_token=; other=1"; /* empty cookie: the session is next */
    assert_int_equal(request_credentials(&s, &r, &out, NULL), BKOAUTH_OK);
    assert_string_equal(out.items[0].value, "from-session");
    r.session_ctx = "";
    assert_int_equal(request_credentials(&s, &r, &out, NULL), BKOAUTH_OK);
    assert_string_equal(out.items[0].value, "from-query");
    r.query_string = NULL;
    assert_int_equal(request_credentials(&s, &r, &out, NULL), BKOAUTH_OK);
    assert_string_equal(out.items[0].value, ""); /* none anywhere: "" */
    r.cookie_header = "bk_token=o0836324475";
    assert_int_equal(request_credentials(&s, &r, &out, NULL), BKOAUTH_OK);
    assert_string_equal(out.items[0].value, "836324475");
    /* a cookie or query parameter given twice: the last one is sent (as Django reads it) */
    r.cookie_header = "bk_token=stale-cookie; lang=zh; bk_token=fresh-cookie";
    r.query_string = "bk_uid=old-uid&bk_uid=new-uid";
    assert_int_equal(request_credentials(&s, &r, &out, NULL), BKOAUTH_OK);
    assert_string_equal(out.items[0].value, "fresh-cookie");
    assert_string_equal(out.items[1].value, "new-uid");
    r.query_string = NULL;
    char *big = malloc(5000);
    memcpy(big, "bk_token=", 9);
    memset(big + 9, 'a', 4990);
    big[4999] = '\0';
    r.cookie_header = big;
    bkoauth_error e;
    assert_int_equal(request_credentials(&s, &r, &out, &e), BKOAUTH_E_INVALID);
    assert_int_equal(out.count, 0);
    assert_null(strstr(e.message, "aaaa"));
    free(big);
    kvlist_clear(&out);
    settings_clear(&s);
}

static void test_client_ip(void **state)
{
    (void)state;
    bkoauth_request r = {.remote_addr = "10.0.0.1"};
    assert_string_equal(request_client_ip(&r), "10.0.0.1");
    r.x_forwarded_for = "";
    assert_string_equal(request_client_ip(&r), "10.0.0.1");
    r.x_forwarded_for = "203.0.113.5, 10.0.0.2";
    assert_string_equal(request_client_ip(&r), "203.0.113.5, 10.0.0.2"); /* the whole header */
    bkoauth_request none = {0};
    assert_string_equal(request_client_ip(&none), "");
    assert_string_equal(request_client_ip(NULL), "");
}

static const char *params(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "REMOTE_USER") == 0) return "alice";
    if (strcmp(name, "HTTP_COOKIE") == 0) return "bk_token=t";
    if (strcmp(name, "REMOTE_ADDR") == 0) return "127.0.0.1";
    return NULL;
}

static void test_from_cgi_and_params(void **state)
{
    (void)state;
    setenv("REMOTE_USER", "bob", 1);
    setenv("HTTP_COOKIE", "bk_token=x", 1);
    setenv("QUERY_STRING", "a=1", 1);
    setenv("REMOTE_ADDR", "192.0.2.1", 1);
    setenv("HTTP_X_FORWARDED_FOR", "198.51.100.7", 1);
    bkoauth_request r;
    bkoauth_request_from_cgi(&r);
    assert_string_equal(r.username, "bob");
    assert_string_equal(r.cookie_header, "bk_token=x");
    assert_string_equal(r.query_string, "a=1");
    assert_string_equal(r.remote_addr, "192.0.2.1");
    assert_string_equal(r.x_forwarded_for, "198.51.100.7");
    assert_null(r.session_get);
    bkoauth_request_from_params(&r, params, NULL);
    assert_string_equal(r.username, "alice");
    assert_string_equal(r.cookie_header, "bk_token=t");
    assert_null(r.query_string);
    assert_null(r.x_forwarded_for);
    bkoauth_request_from_params(&r, NULL, NULL);
    assert_null(r.username);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_parsing), cmocka_unit_test(test_query_parsing),
        cmocka_unit_test(test_uin_rule),       cmocka_unit_test(test_credential_precedence),
        cmocka_unit_test(test_client_ip),      cmocka_unit_test(test_from_cgi_and_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
