/* SPDX-License-Identifier: MIT */
/* crypto_dl.c - libcrypto loaded on first use (crypto_dl.h). */
#define BK_CRYPTO_FUNCS_TABLE /* the table itself: the names stay OpenSSL's */
#include "crypto_dl.h"

#include "dl.h"

bk_crypto_api bk_crypto;

BK_DL_NOTE(
    bk_crypto_note,
    "[{\"feature\":\"jwt\",\"description\":\"X-Bkapi-Jwt signatures (RS256) and the "
    "MySQL store's lock names (SHA-256)\",\"priority\":\"required\",\"soname\":[\"libcrypto.so.3\"]}]");

static int resolve(void *h, const char **missing)
{
#define BK_CRYPTO_SYM(name)                                                                                  \
    if (bk_dl_sym(h, #name, &bk_crypto.name, sizeof bk_crypto.name, missing) != 0) return -1;
    BK_CRYPTO_FUNCS(BK_CRYPTO_SYM)
#undef BK_CRYPTO_SYM
    return 0;
}

static bk_dl_lib lib = BK_DL_LIB("libcrypto.so.3", "libssl3", "checking an X-Bkapi-Jwt or a MySQL store",
                                 BKOAUTH_E_JWT, resolve);

bkoauth_code bk_crypto_load(bkoauth_code code, bkoauth_error *err)
{
    if (bk_dl_load(&lib, err) == BKOAUTH_OK) return BKOAUTH_OK;
    if (err != NULL) err->code = code; /* the kind of the call that needed it */
    return code;
}
