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
    if (err == NULL)
        return code;
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
    if (err == NULL)
        return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->message];
    memcpy(old, err->message, sizeof old);
    snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
}

bkoauth_code err_nomem(bkoauth_error *err)
{
    return err_set(err, BKOAUTH_E_NOMEM, "out of memory");
}
