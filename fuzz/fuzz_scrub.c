/* SPDX-License-Identifier: MIT */
/* fuzz_scrub.c - libFuzzer target for the scrub (bk_scrub: what every message and log line
 * passes) and for the grant validator (ssm_parse_response with a secret of the call in scope,
 * as a hostile service would quote it back).
 *
 * Input: byte 0 picks the mode and the output size; up to the first byte 0x00 after it is a
 * secret (put in scope), the rest the text (scrub mode) or the answer (grant mode).
 * Invariants, whatever the bytes:
 *  - the output is NUL-terminated within its size, holds no byte below 0x20 and no DEL, is
 *    valid UTF-8 and holds no text-direction mark or C1 control;
 *  - the secret is never in the output whole, raw or percent-encoded (checked for secrets
 *    whose copy in the output could only come from the text: see checkable());
 *  - escaping the output again changes nothing;
 *  - an accepted grant's tokens are printable ASCII without spaces, at most 255 bytes; a refused
 *    one leaves nothing, and its message obeys the above. */
#include "ssm/ssm_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond) abort();
}

/* What a person may see: see the invariants above. */
static void check_clean(const char *out, size_t size)
{
    fuzz_check(memchr(out, '\0', size) != NULL);
    for (const unsigned char *p = (const unsigned char *)out; *p; p++)
        fuzz_check(*p >= 0x20 && *p != 0x7f);
    fuzz_check(bk_utf8_ok(out));
    fuzz_check(bk_name_problem(out) == NULL);
    fuzz_check(strstr(out, "\xe2\x80\xa8") == NULL && strstr(out, "\xe2\x80\xa9") == NULL);
}

/* A secret of 8 letters and digits or more, starting with a capital: a copy of it in the output
 * can only come from the text as it was (escapes are lower case and start with a backslash, a
 * mask shows 4 characters and then "..."): there, it must have been masked. */
static int checkable(const char *secret)
{
    size_t n = strlen(secret);
    if (n < 8 || !(secret[0] >= 'A' && secret[0] <= 'Z')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((secret[i] >= 'A' && secret[i] <= 'Z') || (secret[i] >= 'a' && secret[i] <= 'z') ||
              (secret[i] >= '0' && secret[i] <= '9')))
            return 0;
    return 1;
}

static void check_secret_hidden(const char *out, const char *secret)
{
    if (!checkable(secret)) return;
    size_t n = strlen(secret);
    fuzz_check(strstr(out, secret) == NULL);
    char enc[3 * 256 + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < sizeof enc; i++)
        k += (size_t)snprintf(enc + k, sizeof enc - k, "%%%02X", (unsigned char)secret[i]);
    fuzz_check(strstr(out, enc) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    const uint8_t *nul = memchr(data, 0, size < 256 ? size : 256);
    size_t slen = nul ? (size_t)(nul - data) : 0;
    char secret[257];
    memcpy(secret, data, slen);
    secret[slen] = '\0';
    const char *text = (const char *)data + (nul ? slen + 1 : 0);
    size_t len = size - (nul ? slen + 1 : 0);

    bk_scope scope;
    bk_scope_enter(&scope);
    bk_scope_add(&scope, secret);
    if ((mode & 1) == 0) {
        static const size_t sizes[] = {1, 2, 4, 8, 16, 64, 201, 512};
        size_t osize = sizes[(mode >> 1) & 7];
        char out[512], again[512];
        bk_scrub(out, osize, text, len, (mode & 0x10) ? BK_SCRUB_CUT : 0);
        check_clean(out, osize);
        check_secret_hidden(out, secret);
        bk_scope_leave(&scope); /* escaping what is escaped already changes nothing */
        bk_scrub(again, sizeof again, out, strlen(out), 0);
        fuzz_check(strcmp(again, out) == 0);
        bk_scope_enter(&scope);
        bk_scope_add(&scope, secret);
        bk_scrub(out, osize, text, len, BK_SCRUB_QUOTE);
        check_clean(out, osize);
        check_secret_hidden(out, secret);
    } else {
        ssm_grant g;
        bkoauth_error err;
        bkoauth_code rc = ssm_parse_response((mode & 2) ? BK_PROTO_EE : BK_PROTO_IEOD, (mode & 4) ? 500 : 200,
                                             text, len, &g, &err);
        if (rc == BKOAUTH_OK) {
            fuzz_check(bk_token_text_ok(g.access_token, 255, 0));
            fuzz_check(bk_token_text_ok(g.refresh_token, 255, 1));
            fuzz_check(g.scope != NULL && g.expires_in >= 0);
            ssm_grant_clear(&g);
        } else {
            fuzz_check(rc == BKOAUTH_E_TOKEN_API || rc == BKOAUTH_E_NOMEM);
            fuzz_check(g.access_token == NULL && g.refresh_token == NULL && g.scope == NULL);
            check_clean(err.message, sizeof err.message);
            check_secret_hidden(err.message, secret);
        }
    }
    bk_scope_leave(&scope);
    return 0;
}
