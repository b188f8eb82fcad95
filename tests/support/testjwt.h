/* SPDX-License-Identifier: MIT */
/* testjwt.h - keys and tokens for the X-Bkapi-Jwt tests, made at test time with OpenSSL.
 *
 * Nothing here is a fixture file: every key is generated when the test runs, and every token is
 * signed (or deliberately mis-signed) then. */
#ifndef BKOAUTH_TESTJWT_H
#define BKOAUTH_TESTJWT_H

#include <stddef.h>

typedef struct testjwt_key testjwt_key;

/* A new RSA key pair of bits bits. NULL on failure (message on stderr). Free with
 * testjwt_key_free(). */
testjwt_key *testjwt_key_new(int bits);
void testjwt_key_free(testjwt_key *key);

/* The public key as PEM: "BEGIN PUBLIC KEY" (SubjectPublicKeyInfo) when rsa_form is 0, else
 * "BEGIN RSA PUBLIC KEY" (PKCS#1). Newly allocated; the caller frees it. NULL on failure. */
char *testjwt_public_pem(const testjwt_key *key, int rsa_form);

/* The private key as PEM ("BEGIN PRIVATE KEY"), newly allocated; the caller frees it. */
char *testjwt_private_pem(const testjwt_key *key);

/* base64url without padding of len bytes, newly allocated; the caller frees it. */
char *testjwt_b64url(const void *data, size_t len);

/* "b64url(header).b64url(payload).b64url(RS256 signature by key)", newly allocated.
 * header and payload are used byte for byte (they need not be valid JSON). */
char *testjwt_sign_rs256(const testjwt_key *key, const char *header, const char *payload);

/* The same with a payload of payload_len bytes that may hold NUL bytes. */
char *testjwt_sign_rs256_bytes(const testjwt_key *key, const char *header, const void *payload,
                               size_t payload_len);

/* The same with an HS256 signature (HMAC-SHA256 keyed with secret of secret_len bytes). */
char *testjwt_sign_hs256(const void *secret, size_t secret_len, const char *header, const char *payload);

/* "b64url(header).b64url(payload).signature_b64" with the given (possibly empty) signature
 * part as is. */
char *testjwt_unsigned(const char *header, const char *payload, const char *signature_b64);

/* A standard gateway payload: iss, app {app_code, verified}, user {username, verified}, exp and
 * (when nbf is not 0) nbf. iss NULL leaves "iss" out. Newly allocated. */
char *testjwt_payload(const char *iss, const char *app_code, const char *username, long long exp,
                      long long nbf);

#endif
