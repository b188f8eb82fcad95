/* SPDX-License-Identifier: MIT */
/* test_json.c - bkoauth__json_dump_python(): JSON written byte for byte as Python's json.dumps()
 * writes it (lower-case \u escapes, DEL escaped, surrogate pairs, the caller's separators), and
 * NULL without a leak when any allocation on the way fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

/* "é", DEL, U+1F600, a backslash and a quote: json.dumps({"s": TEXT, "n": 1}) in Python is
 * {"s": "\u00e9\u007f\ud83d\ude00\\\"", "n": 1} */
#define TEXT "\xC3\xA9\x7F\xF0\x9F\x98\x80\\\""
#define PYTHON_TEXT "\"\\u00e9\\u007f\\ud83d\\ude00\\\\\\\"\""

static json_t *sample(void)
{
    json_t *j = json_object();
    assert_non_null(j);
    assert_int_equal(json_object_set_new(j, "s", json_string(TEXT)), 0);
    assert_int_equal(json_object_set_new(j, "n", json_integer(1)), 0);
    return j;
}

static void test_python_layout(void **state)
{
    (void)state;
    json_t *j = sample();
    char *text = bkoauth__json_dump_python(j, JSON_PRESERVE_ORDER);
    assert_string_equal(text, "{\"s\": " PYTHON_TEXT ", \"n\": 1}");
    bkoauth__free(text);
    /* the separators are the caller's: json.dumps(..., separators=(",", ":")) */
    text = bkoauth__json_dump_python(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
    assert_string_equal(text, "{\"s\":" PYTHON_TEXT ",\"n\":1}");
    bkoauth__free(text);
    json_decref(j);
}

static void test_plain_text_unchanged(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:s}", "grant_type", "client_credentials");
    assert_non_null(j);
    char *text = bkoauth__json_dump_python(j, 0);
    assert_string_equal(text, "{\"grant_type\": \"client_credentials\"}");
    bkoauth__free(text);
    json_decref(j);
    /* escapes Jansson writes in lower case already, and "\\u" that is not an escape */
    j = json_string("\n\t\\u00E9");
    assert_non_null(j);
    text = bkoauth__json_dump_python(j, JSON_ENCODE_ANY);
    assert_string_equal(text, "\"\\n\\t\\\\u00E9\"");
    bkoauth__free(text);
    json_decref(j);
}

static long fail_at; /* the allocation that fails, counted down; 0: none fails */

static void *failing_malloc(size_t n)
{
    return fail_at > 0 && --fail_at == 0 ? NULL : malloc(n);
}

static void *failing_realloc(void *p, size_t n)
{
    return fail_at > 0 && --fail_at == 0 ? NULL : realloc(p, n);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    json_t *j = sample();
    assert_int_equal(bkoauth_set_allocators(failing_malloc, NULL, failing_realloc, free, NULL, NULL),
                     BKOAUTH_OK);
    int failed = 0;
    for (long k = 1; k < 100; k++) {
        fail_at = k;
        char *text = bkoauth__json_dump_python(j, JSON_PRESERVE_ORDER);
        long left = fail_at;
        fail_at = 0;
        if (text == NULL) {
            assert_int_equal(left, 0); /* NULL only when an allocation failed */
            failed++;
            continue;
        }
        assert_string_equal(text, "{\"s\": " PYTHON_TEXT ", \"n\": 1}");
        bkoauth__free(text);
        if (left > 0) break; /* every allocation of the call has been made to fail */
    }
    assert_true(failed >= 2); /* the dump and the copy with DEL escaped */
    assert_int_equal(bkoauth_set_allocators(NULL, NULL, NULL, NULL, NULL, NULL), BKOAUTH_OK);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_layout),
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
