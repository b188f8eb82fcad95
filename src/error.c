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

bkoauth_code err_set(bkoauth_error *err, bkoauth_code code, const char *fmt, ...)
{
    if (err == NULL) return code;
    err->code = code;
    err->http_status = 0;
    err->api_code = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
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
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t plen = strlen(prefix);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    size_t cap = sizeof err->message;
    if (plen >= cap) return;
    size_t mlen = strnlen(err->message, cap - 1);
    if (plen + mlen > cap - 1)
        mlen = cap - 1 - plen; /* the end of the old message is cut, never the context */
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen + mlen] = '\0';
}

bkoauth_code err_nomem(bkoauth_error *err)
{
    return err_set(err, BKOAUTH_E_NOMEM, "out of memory");
}
