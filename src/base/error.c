/* SPDX-License-Identifier: MIT */
/* error.c - result codes, their names, and the error record every call fills. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *bkoauth_code_name(bkoauth_code code)
{
    switch (code) {
    case BKOAUTH_OK:
        return "OK";
    case BKOAUTH_E_TOKEN_API:
        return "TokenAPIError";
    case BKOAUTH_E_TOKEN_NOT_EXIST:
        return "TokenNotExist";
    case BKOAUTH_E_CONFIG:
        return "ConfigError";
    case BKOAUTH_E_INVALID:
        return "InvalidArgument";
    case BKOAUTH_E_STORE:
        return "StoreError";
    case BKOAUTH_E_JWT:
        return "JWTError";
    case BKOAUTH_E_NOMEM:
        return "OutOfMemory";
    }
    return "Unknown";
}

const char *bkoauth_version(void)
{
    return BKOAUTH_VERSION_STRING;
}

/* Messages are formatted here first, whole, so that bk_scrub() sees every secret whole before
 * the text is cut to the 512 bytes of a bkoauth_error. */
#define ERR_FORMAT_MAX 4096

/* The formatting buffer, per thread rather than on the stack: an error met deep in a call (a
 * database that went away, in the middle of a read) would otherwise reach a page of each thread's
 * stack that shallower errors never touched, and the thread's resident stack would grow the first
 * time each thread meets one (in the soak, a step of 4 kB in each of 32 threads at the first
 * database restart). Neither function is re-entered on a thread. */
static _Thread_local char err_text[ERR_FORMAT_MAX];

bkoauth_code err_set(bkoauth_error *err, bkoauth_code code, const char *fmt, ...)
{
    if (err == NULL) return code;
    err->code = code;
    err->http_status = 0;
    err->api_code = 0;
    char *text = err_text;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, ERR_FORMAT_MAX, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    size_t len = (size_t)n < ERR_FORMAT_MAX ? (size_t)n : ERR_FORMAT_MAX - 1;
    bk_scrub(err->message, sizeof err->message, text, len, (size_t)n >= ERR_FORMAT_MAX ? BK_SCRUB_CUT : 0);
    if (err->message[0] == '\0' && code != BKOAUTH_OK)
        snprintf(err->message, sizeof err->message, "%s", bkoauth_code_name(code));
    return code;
}

bkoauth_code err_ok(bkoauth_error *err)
{
    if (err != NULL) {
        err->code = BKOAUTH_OK;
        err->http_status = 0;
        err->api_code = 0;
        err->message[0] = '\0';
    }
    return BKOAUTH_OK;
}

void err_prefix(bkoauth_error *err, const char *fmt, ...)
{
    if (err == NULL) return;
    char *raw = err_text, prefix[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, ERR_FORMAT_MAX, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t rlen = (size_t)n < ERR_FORMAT_MAX ? (size_t)n : ERR_FORMAT_MAX - 1;
    size_t plen =
        bk_scrub(prefix, sizeof prefix - 2, raw, rlen, (size_t)n >= ERR_FORMAT_MAX ? BK_SCRUB_CUT : 0);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    size_t cap = sizeof err->message;
    if (plen >= cap) return;
    size_t mlen = strnlen(err->message, cap - 1);
    if (plen + mlen > cap - 1) { /* the end of the old message is cut, never the context */
        mlen = cap - 1 - plen;
        while (mlen > 0 && ((unsigned char)err->message[mlen] & 0xc0) == 0x80)
            mlen--; /* on a character boundary */
    }
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen + mlen] = '\0';
}

bkoauth_code err_nomem(bkoauth_error *err)
{
    return err_set(err, BKOAUTH_E_NOMEM, "out of memory");
}
