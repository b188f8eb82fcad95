/* SPDX-License-Identifier: MIT */
/* testjwt.c - keys and tokens for the X-Bkapi-Jwt tests, made at test time with OpenSSL. */
#include "testjwt.h"

#include <openssl/bio.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct testjwt_key {
    EVP_PKEY *pkey;
};

testjwt_key *testjwt_key_new(int bits)
{
    testjwt_key *k = calloc(1, sizeof *k);
    if (k == NULL) return NULL;
    k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (k->pkey == NULL) {
        fprintf(stderr, "testjwt: RSA key generation failed\n");
        ERR_print_errors_fp(stderr);
        free(k);
        return NULL;
    }
    return k;
}

void testjwt_key_free(testjwt_key *key)
{
    if (key == NULL) return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

static char *testjwt_bio_text(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *out = NULL;
    if (n >= 0 && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(bio);
    return out;
}

char *testjwt_public_pem(const testjwt_key *key, int rsa_form)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return NULL;
    int ok;
    if (rsa_form) {
        OSSL_ENCODER_CTX *ectx =
            OSSL_ENCODER_CTX_new_for_pkey(key->pkey, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
        ok = ectx != NULL && OSSL_ENCODER_to_bio(ectx, bio) == 1;
        OSSL_ENCODER_CTX_free(ectx);
    } else {
        ok = PEM_write_bio_PUBKEY(bio, key->pkey) == 1;
    }
    if (!ok) {
        BIO_free(bio);
        return NULL;
    }
    return testjwt_bio_text(bio);
}

char *testjwt_private_pem(const testjwt_key *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return NULL;
    if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        return NULL;
    }
    return testjwt_bio_text(bio);
}

char *testjwt_b64url(const void *data, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = malloc(len / 3 * 4 + 5);
    if (out == NULL) return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned long v = ((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8) | p[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned long v = (unsigned long)p[i] << 16;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned long v = ((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8);
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

/* "b64(header).b64(payload)", newly allocated. */
static char *testjwt_signing_input_n(const char *header, const void *payload, size_t payload_len)
{
    char *h = testjwt_b64url(header, strlen(header));
    char *p = testjwt_b64url(payload, payload_len);
    char *out = NULL;
    if (h && p && (out = malloc(strlen(h) + strlen(p) + 2)) != NULL) sprintf(out, "%s.%s", h, p);
    free(h);
    free(p);
    return out;
}

static char *testjwt_signing_input(const char *header, const char *payload)
{
    return testjwt_signing_input_n(header, payload, strlen(payload));
}

static char *testjwt_join(char *input, const unsigned char *sig, size_t sig_len)
{
    char *s = testjwt_b64url(sig, sig_len);
    char *out = NULL;
    if (input && s && (out = malloc(strlen(input) + strlen(s) + 2)) != NULL) sprintf(out, "%s.%s", input, s);
    free(input);
    free(s);
    return out;
}

char *testjwt_sign_rs256(const testjwt_key *key, const char *header, const char *payload)
{
    return testjwt_sign_rs256_bytes(key, header, payload, strlen(payload));
}

char *testjwt_sign_rs256_bytes(const testjwt_key *key, const char *header, const void *payload,
                               size_t payload_len)
{
    char *input = testjwt_signing_input_n(header, payload, payload_len);
    if (input == NULL) return NULL;
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
             EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        free(input);
        return NULL;
    }
    return testjwt_join(input, sig, sig_len);
}

char *testjwt_sign_hs256(const void *secret, size_t secret_len, const char *header, const char *payload)
{
    char *input = testjwt_signing_input(header, payload);
    if (input == NULL) return NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, strlen(input), mac,
             &mac_len) == NULL) {
        free(input);
        return NULL;
    }
    return testjwt_join(input, mac, mac_len);
}

char *testjwt_unsigned(const char *header, const char *payload, const char *signature_b64)
{
    char *input = testjwt_signing_input(header, payload);
    char *out = NULL;
    if (input && (out = malloc(strlen(input) + strlen(signature_b64) + 2)) != NULL)
        sprintf(out, "%s.%s", input, signature_b64);
    free(input);
    return out;
}

char *testjwt_payload(const char *iss, const char *app_code, const char *username, long long exp,
                      long long nbf)
{
    char iss_part[128] = "", nbf_part[64] = "";
    if (iss) snprintf(iss_part, sizeof iss_part, "\"iss\": \"%s\", ", iss);
    if (nbf) snprintf(nbf_part, sizeof nbf_part, ", \"nbf\": %lld", nbf);
    size_t size = strlen(app_code) + strlen(username) + 512;
    char *out = malloc(size);
    if (out)
        snprintf(out, size,
                 "{%s\"app\": {\"app_code\": \"%s\", \"verified\": true}, "
                 "\"user\": {\"username\": \"%s\", \"verified\": true}, \"exp\": %lld%s}",
                 iss_part, app_code, username, exp, nbf_part);
    return out;
}
