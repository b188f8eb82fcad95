/* SPDX-License-Identifier: MIT */
/* fuzz_jwt.c - libFuzzer target for bkoauth_jwt_verify and bkoauth_jwt_error_body.
 *
 * One client is built once, trusting an RSA key generated at start-up. Byte 0 of the input picks
 * the mode:
 *   even: the rest is the X-Bkapi-Jwt header value as received (any bytes, any length);
 *   odd:  the rest is "HEADER\nPAYLOAD": both are base64url-encoded and signed with the trusted
 *         key, so the fuzzer also reaches the code after the signature check (claims, app,
 *         user) with arbitrary JSON.
 * Invariants checked: a result is either OK with a filled bkoauth_jwt whose header named
 * RS256 and whose issuer is APIGW, or an error with an empty out and a non-empty message;
 * the refusal body is always valid JSON. */
#include "bkoauth.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bkoauth_client *fuzz_client;
static EVP_PKEY *fuzz_key;

static void fuzz_check(int cond)
{
    if (!cond) abort();
}

static char *fuzz_b64url(const unsigned char *p, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(len / 3 * 4 + 5);
    fuzz_check(out != NULL);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned long v = (unsigned long)p[i] << 16;
        if (i + 1 < len) v |= (unsigned long)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len) out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < len) out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
    return out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    fuzz_check(fuzz_key != NULL);
    BIO *bio = BIO_new(BIO_s_mem());
    fuzz_check(bio != NULL && PEM_write_bio_PUBKEY(bio, fuzz_key) == 1);
    char *pem_data = NULL;
    long n = BIO_get_mem_data(bio, &pem_data);
    char *pem = strndup(pem_data, (size_t)n);
    BIO_free(bio);

    static char dir[] = "/tmp/bkoauth-fuzz-jwt-XXXXXX";
    fuzz_check(mkdtemp(dir) != NULL);
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/tokens.db", dir);
    bkoauth_config *cfg = bkoauth_config_new();
    bkoauth_error err;
    fuzz_check(cfg != NULL);
    fuzz_check(bkoauth_config_set(cfg, "OAUTH_API_URL", "http://127.0.0.1:9", &err) == BKOAUTH_OK);
    fuzz_check(bkoauth_config_set(cfg, "BKOAUTH_DATABASE_URL", url, &err) == BKOAUTH_OK);
    fuzz_check(bkoauth_config_set(cfg, "APIGW_PUBLIC_KEY", pem, &err) == BKOAUTH_OK);
    fuzz_client = bkoauth_client_new(cfg, &err);
    if (fuzz_client == NULL) fprintf(stderr, "fuzz_jwt: bkoauth_client_new: %s\n", err.message);
    fuzz_check(fuzz_client != NULL);
    bkoauth_client_set_logger(fuzz_client, NULL, NULL);
    bkoauth_config_free(cfg);
    free(pem);
    return 0;
}

/* "b64(header).b64(payload).b64(signature)" signed with the trusted key. */
static char *fuzz_sign(const uint8_t *header, size_t header_len, const uint8_t *payload, size_t payload_len)
{
    char *h = fuzz_b64url(header, header_len);
    char *p = fuzz_b64url(payload, payload_len);
    size_t input_len = strlen(h) + 1 + strlen(p);
    char *input = malloc(input_len + 1);
    fuzz_check(input != NULL);
    snprintf(input, input_len + 1, "%s.%s", h, p);
    unsigned char sig[512];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    fuzz_check(md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, fuzz_key) == 1 &&
               EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, input_len) == 1);
    EVP_MD_CTX_free(md);
    char *s = fuzz_b64url(sig, sig_len);
    char *out = malloc(input_len + strlen(s) + 2);
    fuzz_check(out != NULL);
    sprintf(out, "%s.%s", input, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *token;
    if ((data[0] & 1) == 0) {
        token = malloc(size);
        fuzz_check(token != NULL);
        memcpy(token, data + 1, size - 1);
        token[size - 1] = '\0';
    } else {
        const uint8_t *rest = data + 1, *nl = memchr(rest, '\n', size - 1);
        size_t header_len = nl ? (size_t)(nl - rest) : size - 1;
        const uint8_t *payload = nl ? nl + 1 : rest + size - 1;
        size_t payload_len = nl ? size - 1 - header_len - 1 : 0;
        token = fuzz_sign(rest, header_len, payload, payload_len);
    }

    bkoauth_jwt *out = (bkoauth_jwt *)(uintptr_t)1;
    bkoauth_error err;
    bkoauth_code rc = bkoauth_jwt_verify(fuzz_client, token, &out, &err);
    fuzz_check(err.code == rc);
    if (rc == BKOAUTH_OK) {
        fuzz_check(out != NULL && out->payload_json != NULL);
        json_error_t jerr;
        json_t *p = json_loads(out->payload_json, 0, &jerr);
        fuzz_check(json_is_object(p));
        const json_t *iss = json_object_get(p, "iss");
        fuzz_check(json_is_string(iss) && strcmp(json_string_value(iss), "APIGW") == 0);
        json_decref(p);
        bkoauth_jwt_free(out);
    } else {
        fuzz_check(out == NULL);
        fuzz_check(rc == BKOAUTH_E_JWT || rc == BKOAUTH_E_NOMEM);
        fuzz_check(err.message[0] != '\0');
        char *body = bkoauth_jwt_error_body(&err);
        fuzz_check(body != NULL);
        json_error_t jerr;
        json_t *b = json_loads(body, 0, &jerr);
        fuzz_check(json_is_object(b) && json_is_false(json_object_get(b, "result")) &&
                   json_is_null(json_object_get(b, "data")) &&
                   strcmp(json_string_value(json_object_get(b, "message")), err.message) == 0);
        json_decref(b);
        free(body);
    }
    free(token);
    return 0;
}
