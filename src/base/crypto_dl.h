/* SPDX-License-Identifier: MIT */
/* crypto_dl.h - OpenSSL's libcrypto, loaded on first use (dl.h): by the first X-Bkapi-Jwt check
 * (jwt.c) and the first MySQL store (its lock names are SHA-256 hashes). Reading a saved token
 * never needs it. Included instead of OpenSSL's headers' prototypes by the files that call it:
 * the names they use are mapped onto the table bk_crypto, filled by bk_crypto_load(). */
#ifndef BKOAUTH_CRYPTO_DL_H
#define BKOAUTH_CRYPTO_DL_H

#include "internal.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

/* The functions of libcrypto.so.3 the library calls. */
#define BK_CRYPTO_FUNCS(X)                                                                                   \
    X(EVP_Digest)                                                                                            \
    X(EVP_DigestVerify)                                                                                      \
    X(EVP_DigestVerifyInit)                                                                                  \
    X(EVP_MD_CTX_free)                                                                                       \
    X(EVP_MD_CTX_new)                                                                                        \
    X(EVP_PKEY_CTX_set_rsa_padding)                                                                          \
    X(EVP_PKEY_free)                                                                                         \
    X(EVP_PKEY_get_bits)                                                                                     \
    X(EVP_PKEY_get_size)                                                                                     \
    X(EVP_PKEY_is_a)                                                                                         \
    X(EVP_PKEY_up_ref)                                                                                       \
    X(EVP_sha256)                                                                                            \
    X(ERR_clear_error)                                                                                       \
    X(ERR_get_error)                                                                                         \
    X(ERR_peek_error)                                                                                        \
    X(OSSL_DECODER_CTX_free)                                                                                 \
    X(OSSL_DECODER_CTX_new_for_pkey)                                                                         \
    X(OSSL_DECODER_from_data)

#define BK_CRYPTO_MEMBER(name) __typeof__(&name) name;
typedef struct bk_crypto_api {
    BK_CRYPTO_FUNCS(BK_CRYPTO_MEMBER)
} bk_crypto_api;
#undef BK_CRYPTO_MEMBER
extern bk_crypto_api bk_crypto;

/* Loads libcrypto (libcrypto.so.3) once per process. Thread-safe. BKOAUTH_OK, or code with a
 * message saying which package to install; a failure is tried again by the next call. */
bkoauth_code bk_crypto_load(bkoauth_code code, bkoauth_error *err);

#ifndef BK_CRYPTO_FUNCS_TABLE
#define EVP_Digest (bk_crypto.EVP_Digest)
#define EVP_DigestVerify (bk_crypto.EVP_DigestVerify)
#define EVP_DigestVerifyInit (bk_crypto.EVP_DigestVerifyInit)
#define EVP_MD_CTX_free (bk_crypto.EVP_MD_CTX_free)
#define EVP_MD_CTX_new (bk_crypto.EVP_MD_CTX_new)
#define EVP_PKEY_CTX_set_rsa_padding (bk_crypto.EVP_PKEY_CTX_set_rsa_padding)
#define EVP_PKEY_free (bk_crypto.EVP_PKEY_free)
#define EVP_PKEY_get_bits (bk_crypto.EVP_PKEY_get_bits)
#define EVP_PKEY_get_size (bk_crypto.EVP_PKEY_get_size)
#define EVP_PKEY_is_a (bk_crypto.EVP_PKEY_is_a)
#define EVP_PKEY_up_ref (bk_crypto.EVP_PKEY_up_ref)
#define EVP_sha256 (bk_crypto.EVP_sha256)
#define ERR_clear_error (bk_crypto.ERR_clear_error)
#define ERR_get_error (bk_crypto.ERR_get_error)
#define ERR_peek_error (bk_crypto.ERR_peek_error)
#define OSSL_DECODER_CTX_free (bk_crypto.OSSL_DECODER_CTX_free)
#define OSSL_DECODER_CTX_new_for_pkey (bk_crypto.OSSL_DECODER_CTX_new_for_pkey)
#define OSSL_DECODER_from_data (bk_crypto.OSSL_DECODER_from_data)
#endif

#endif
