/* SPDX-License-Identifier: MIT */
/* src/jwt/ - the API-gateway JWT: bkoauth_verify_jwt() checks X-Bkapi-Jwt with the client's
 * APIGW_PUBLIC_KEY, parsed once and kept in a small process-wide key cache (this file). It is
 * handed the client's settings and logger (bk_jwt_verify, called by core/client.c's
 * bkoauth_jwt_verify) and stands on base/. */
/* jwt.c - X-Bkapi-Jwt verification (the Python apigw_required decorator).
 *
 * The BlueKing API gateway forwards a request with an RS256 JWT in the header X-Bkapi-Jwt.
 * Verification, in this order, each step with its own message:
 *   1. presence (NULL / empty / blank)        "X-Bkapi-Jwt header is missing or empty"
 *   2. size (<= BKOAUTH_JWT_MAX_LENGTH)        "malformed token"
 *   3. the key APIGW_PUBLIC_KEY                "public key unusable"
 *   4. shape: three base64url parts, header a JSON object with a string "alg", no "crit",
 *      payload valid base64url              "malformed token"
 *   5. alg exactly "RS256"                      "algorithm not allowed"
 *   6. RSA PKCS#1 v1.5 / SHA-256 signature      "bad signature"
 *   7. payload a JSON object                    "malformed token"
 *   8. iss present and "APIGW"                  "missing issuer" / "wrong issuer"
 *   9. exp present and not past, nbf not ahead  "malformed token" / "token expired" /
 *                                               "token not yet valid"
 * Nothing of the payload is believed before the signature is checked.
 *
 * The parsed key: a process-wide cache of parsed PEM texts (content-addressed: the PEM text is
 * the key, so it does not depend on any client's lifetime and needs no field in the client).
 * Each distinct usable APIGW_PUBLIC_KEY is parsed once per process, however many clients or
 * threads use it. A failure is never cached: an unusable key is parsed again at each call (a
 * misconfigured service refuses every request anyway), so a failure that was only a shortage of
 * memory inside OpenSSL is not remembered for the life of the process. The cache holds
 * JWT_KEYS_MAX entries; past that the least recently used entry is dropped. A caller takes its
 * own reference on the EVP_PKEY under the lock, so dropping an entry never frees a key another
 * thread is using. */
#include "crypto_dl.h"
#include "json.h"

#include <ctype.h>
#include <limits.h>
#include <math.h> /* isfinite: a macro, no libm */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWT_KEYS_MAX 16
#define JWT_MIN_RSA_BITS 1024
#define JWT_ISSUER "APIGW"
#define JWT_ALG "RS256"

/* ---- base64url ---------------------------------------------------------------------------- */

static int jwt_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes base64url (RFC 4648 section 5) strictly: only A-Z a-z 0-9 - _, optional correct '='
 * padding at the end, no leftover bits set. *out is newly allocated (NUL-terminated, *outlen
 * bytes before the NUL); the caller frees it. Returns 0, -1 when malformed, -2 on OOM. */
static int jwt_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    size_t pad = 0;
    while (len > 0 && in[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (pad > 0 && (len + pad) % 4 != 0) return -1;
    if (len % 4 == 1) return -1;
    size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    unsigned char *buf = bkoauth__malloc(n + 1);
    if (buf == NULL) return -2;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = jwt_b64_value((unsigned char)in[i]);
        if (v < 0) {
            bkoauth__free(buf);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)((acc >> bits) & 0xFFu);
        }
    }
    /* the leftover bits of a final partial group must be zero (canonical encoding) */
    if (bits > 0 && (acc & ((1u << bits) - 1u)) != 0) {
        bkoauth__free(buf);
        return -1;
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* A printable, shortened copy of an untrusted value for a message: at most 32 characters,
 * anything outside printable ASCII (and quotes/backslashes) shown as '?'. */
static void jwt_show(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 4 < size && i < 32; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (len > 32 && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

/* A JSON number claim as whole seconds. Returns 0, or -1 when not a finite number in range. */
static int jwt_claim_seconds(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d >= 9.2e18 || d <= -9.2e18) return -1;
        int64_t t = (int64_t)d; /* toward zero; floor for a negative fraction */
        *out = ((double)t > d) ? t - 1 : t;
        return 0;
    }
    return -1;
}

/* ---- the parsed key cache ----------------------------------------------------------------- */

typedef struct jwt_key_entry {
    char *pem;      /* the setting as written; NULL: free slot */
    EVP_PKEY *pkey; /* the cache's reference */
    uint64_t used;  /* last use, for LRU */
} jwt_key_entry;

static pthread_mutex_t jwt_keys_lock = PTHREAD_MUTEX_INITIALIZER;
static jwt_key_entry jwt_keys[JWT_KEYS_MAX];
static uint64_t jwt_keys_tick;

/* 1 when OpenSSL's error queue says an allocation failed; empties the queue. */
static int jwt_openssl_oom(void)
{
    int oom = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) oom = 1;
    return oom;
}

/* The setting as PEM text to decode: an owned copy, trimmed, with literal "\n" turned into line
 * breaks when it was written on one line (an environment variable or a one-line settings value).
 * *len its length; NULL when out of memory. */
static char *jwt_pem_text(const char *setting, size_t *len)
{
    size_t n = strlen(setting);
    while (n > 0 && isspace((unsigned char)setting[n - 1]))
        n--;
    while (n > 0 && isspace((unsigned char)*setting)) {
        setting++;
        n--;
    }
    char *pem = bkoauth__malloc(n + 1);
    if (pem == NULL) return NULL;
    int has_newline = memchr(setting, '\n', n) != NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!has_newline && setting[i] == '\\' && i + 1 < n && setting[i + 1] == 'n') {
            pem[o++] = '\n';
            i++;
        } else {
            pem[o++] = setting[i];
        }
    }
    pem[o] = '\0';
    *len = o;
    return pem;
}

/* BKOAUTH_OK when pem begins a public key block; else BKOAUTH_E_JWT with why filled. */
static bkoauth_code jwt_pem_label(const char *pem, char *why, size_t why_size)
{
    const char *label_start = pem + strlen("-----BEGIN ");
    if (strncmp(pem, "-----BEGIN ", strlen("-----BEGIN ")) != 0) {
        snprintf(why, why_size,
                 "APIGW_PUBLIC_KEY is not a PEM public key (it does not start with \"-----BEGIN PUBLIC "
                 "KEY-----\"); set it to the API gateway's public key as the gateway shows it");
        return BKOAUTH_E_JWT;
    }
    if (strncmp(label_start, "PUBLIC KEY-----", 15) != 0 &&
        strncmp(label_start, "RSA PUBLIC KEY-----", 19) != 0) {
        const char *end = strstr(label_start, "-----");
        char label[48];
        jwt_show(label_start, end ? (size_t)(end - label_start) : strlen(label_start), label, sizeof label);
        snprintf(why, why_size,
                 "APIGW_PUBLIC_KEY holds a PEM \"%s\", not a public key; set it to the API gateway's "
                 "\"BEGIN PUBLIC KEY\" block",
                 label);
        return BKOAUTH_E_JWT;
    }
    return BKOAUTH_OK;
}

/* Decodes the PEM text (len bytes) as an RSA public key into *pkey. BKOAUTH_OK; BKOAUTH_E_JWT
 * with why filled; BKOAUTH_E_NOMEM as far as OpenSSL tells. */
static bkoauth_code jwt_pem_decode(const char *pem, size_t len, EVP_PKEY **pkey, char *why, size_t why_size)
{
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(pkey, "PEM", NULL, "RSA", EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (dctx == NULL) {
        if (jwt_openssl_oom()) return BKOAUTH_E_NOMEM;
        snprintf(why, why_size, "OpenSSL could not set up a PEM decoder for RSA public keys");
        return BKOAUTH_E_JWT;
    }
    const unsigned char *data = (const unsigned char *)pem;
    size_t data_len = len;
    int ok = OSSL_DECODER_from_data(dctx, &data, &data_len);
    OSSL_DECODER_CTX_free(dctx);
    if (ok && *pkey != NULL) return BKOAUTH_OK;
    EVP_PKEY_free(*pkey);
    *pkey = NULL;
    if (jwt_openssl_oom()) return BKOAUTH_E_NOMEM;
    snprintf(why, why_size,
             "APIGW_PUBLIC_KEY could not be read as an RSA public key (bad base64 or not RSA); copy "
             "the API gateway's public key again, with its BEGIN and END lines");
    return BKOAUTH_E_JWT;
}

/* BKOAUTH_OK when pkey is an RSA key strong enough for RS256; else BKOAUTH_E_JWT with why filled. */
static bkoauth_code jwt_key_usable(EVP_PKEY *pkey, char *why, size_t why_size)
{
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        snprintf(why, why_size, "APIGW_PUBLIC_KEY is not an RSA key; RS256 needs the gateway's RSA key");
        return BKOAUTH_E_JWT;
    }
    if (EVP_PKEY_get_bits(pkey) < JWT_MIN_RSA_BITS) {
        snprintf(why, why_size, "APIGW_PUBLIC_KEY is an RSA key of %d bits, under the minimum of %d",
                 EVP_PKEY_get_bits(pkey), JWT_MIN_RSA_BITS);
        return BKOAUTH_E_JWT;
    }
    return BKOAUTH_OK;
}

/* Parses a PEM public key into *out (the caller's reference). BKOAUTH_OK; BKOAUTH_E_JWT with
 * why filled when the key is unusable; BKOAUTH_E_NOMEM when out of memory (ours or OpenSSL's,
 * as far as OpenSSL tells). */
static bkoauth_code jwt_parse_key(const char *setting, EVP_PKEY **out, char *why, size_t why_size)
{
    *out = NULL;
    size_t len = 0;
    char *pem = jwt_pem_text(setting, &len);
    if (pem == NULL) return BKOAUTH_E_NOMEM;
    EVP_PKEY *pkey = NULL;
    ERR_clear_error();
    bkoauth_code rc = jwt_pem_label(pem, why, why_size);
    if (rc == BKOAUTH_OK) rc = jwt_pem_decode(pem, len, &pkey, why, why_size);
    if (rc == BKOAUTH_OK) rc = jwt_key_usable(pkey, why, why_size);
    if (rc == BKOAUTH_OK)
        *out = pkey;
    else
        EVP_PKEY_free(pkey);
    ERR_clear_error();
    bkoauth__free(pem);
    return rc;
}

/* Gives back a reference from jwt_key_get(). Under the cache's lock, like the cache's own
 * EVP_PKEY_free when it drops a key: whichever free is the last one then follows every use of
 * the key in a way the thread checkers can see (OpenSSL's reference count is an atomic inside
 * libcrypto, which they do not see). One uncontended lock per verification. */
static void jwt_key_put(EVP_PKEY *pkey)
{
    pthread_mutex_lock(&jwt_keys_lock);
    EVP_PKEY_free(pkey);
    pthread_mutex_unlock(&jwt_keys_lock);
}

/* The parsed key for a setting in *out (the caller's own reference: give it back with
 * jwt_key_put()).
 * BKOAUTH_OK; BKOAUTH_E_JWT with why filled; BKOAUTH_E_NOMEM. Only usable keys are kept. */
static bkoauth_code jwt_key_get(const char *setting, EVP_PKEY **out, char *why, size_t why_size)
{
    *out = NULL;
    pthread_mutex_lock(&jwt_keys_lock);
    for (size_t i = 0; i < JWT_KEYS_MAX; i++) {
        jwt_key_entry *e = &jwt_keys[i];
        if (e->pem != NULL && strcmp(e->pem, setting) == 0 && EVP_PKEY_up_ref(e->pkey) == 1) {
            e->used = ++jwt_keys_tick;
            *out = e->pkey;
            break;
        }
    }
    pthread_mutex_unlock(&jwt_keys_lock);
    if (*out != NULL) return BKOAUTH_OK;

    /* parsed outside the lock: other keys stay available meanwhile */
    EVP_PKEY *parsed = NULL;
    bkoauth_code rc = jwt_parse_key(setting, &parsed, why, why_size);
    if (rc != BKOAUTH_OK) return rc; /* never cached */
    char *copy = bk_strdup(setting);
    if (copy == NULL) { /* not cached: usable for this call all the same */
        *out = parsed;
        return BKOAUTH_OK;
    }
    pthread_mutex_lock(&jwt_keys_lock);
    jwt_key_entry *slot = NULL;
    for (size_t i = 0; i < JWT_KEYS_MAX && slot == NULL; i++) /* another thread was first */
        if (jwt_keys[i].pem != NULL && strcmp(jwt_keys[i].pem, setting) == 0) slot = &jwt_keys[i];
    for (size_t i = 0; i < JWT_KEYS_MAX && slot == NULL; i++)
        if (jwt_keys[i].pem == NULL) slot = &jwt_keys[i];
    if (slot == NULL) {
        slot = &jwt_keys[0];
        for (size_t i = 1; i < JWT_KEYS_MAX; i++)
            if (jwt_keys[i].used < slot->used) slot = &jwt_keys[i];
    }
    bkoauth__free(slot->pem);
    EVP_PKEY_free(slot->pkey); /* threads using it hold their own reference */
    slot->pem = copy;
    slot->pkey = parsed;
    slot->used = ++jwt_keys_tick;
    if (EVP_PKEY_up_ref(parsed) == 1) {
        *out = parsed;
    } else { /* cannot happen with OpenSSL 3 (an atomic count); refuse rather than share */
        snprintf(why, why_size, "could not take a reference on the parsed key");
        rc = BKOAUTH_E_JWT;
    }
    pthread_mutex_unlock(&jwt_keys_lock);
    return rc;
}

void bkoauth__jwt_keys_clear(void)
{
    pthread_mutex_lock(&jwt_keys_lock);
    for (size_t i = 0; i < JWT_KEYS_MAX; i++) {
        bkoauth__free(jwt_keys[i].pem);
        if (jwt_keys[i].pkey != NULL) EVP_PKEY_free(jwt_keys[i].pkey); /* libcrypto loaded then */
        memset(&jwt_keys[i], 0, sizeof jwt_keys[i]);
    }
    pthread_mutex_unlock(&jwt_keys_lock);
}

/* ---- verification ------------------------------------------------------------------------- */

enum { JWT_SIG_GOOD = 1, JWT_SIG_BAD = 0, JWT_SIG_OOM = -1, JWT_SIG_ERROR = -2 };

/* Whether sig is a good RS256 signature of input by pkey: JWT_SIG_GOOD, JWT_SIG_BAD, or
 * JWT_SIG_OOM / JWT_SIG_ERROR when OpenSSL could not check it (out of memory as far as OpenSSL
 * says so, else an error of its own). */
static int jwt_signature_ok(EVP_PKEY *pkey, const char *input, size_t input_len, const unsigned char *sig,
                            size_t sig_len)
{
    if (sig_len == 0 || EVP_PKEY_get_size(pkey) <= 0 || sig_len != (size_t)EVP_PKEY_get_size(pkey))
        return JWT_SIG_BAD;
    ERR_clear_error();
    int result = JWT_SIG_ERROR;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (md == NULL) {
        result = JWT_SIG_OOM;
    } else if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
               EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) {
        int v = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len);
        /* OpenSSL says why it refuses a signature (padding check failed...); a refusal without a
         * reason is a failure it could not even record, such as running out of memory */
        result = v == 1 ? JWT_SIG_GOOD : v == 0 && ERR_peek_error() != 0 ? JWT_SIG_BAD : JWT_SIG_ERROR;
    }
    /* a refusal is "bad signature" only when OpenSSL did not run out of memory on the way */
    if (result != JWT_SIG_GOOD && jwt_openssl_oom()) result = JWT_SIG_OOM;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return result;
}

static char *jwt_dup_string_member(const json_t *obj, const char *name, const char *fallback)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v) && fallback != NULL) v = json_object_get(obj, fallback);
    if (!json_is_string(v)) return NULL;
    return bkoauth__strndup(json_string_value(v), json_string_length(v));
}

static int jwt_flag_member(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    if (json_is_true(v)) return 1;
    if (json_is_integer(v)) return json_integer_value(v) != 0;
    return 0;
}

void bkoauth_jwt_free(bkoauth_jwt *jwt)
{
    if (jwt == NULL) return;
    bkoauth__free(jwt->app_code);
    bkoauth__free(jwt->username);
    bkoauth__free(jwt->payload_json);
    bkoauth__free(jwt);
}

/* 1. presence and size: *jwt and *len become the token without the blanks around it (as a
 * server may leave them). */
static bkoauth_code jwt_trim(const char **jwt, size_t *len, bkoauth_error *err)
{
    const char *t = *jwt;
    size_t n = t != NULL ? strnlen(t, (size_t)BKOAUTH_JWT_MAX_LENGTH + 1) : 0;
    if (n > BKOAUTH_JWT_MAX_LENGTH)
        return err_set(err, BKOAUTH_E_JWT,
                       "malformed token: X-Bkapi-Jwt is longer than %d bytes; refused unread",
                       BKOAUTH_JWT_MAX_LENGTH);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r' || t[n - 1] == '\n'))
        n--;
    while (n > 0 && (*t == ' ' || *t == '\t')) {
        t++;
        n--;
    }
    if (n == 0)
        return err_set(err, BKOAUTH_E_JWT,
                       "X-Bkapi-Jwt header is missing or empty: call this service through the BlueKing API "
                       "gateway, which adds it");
    *jwt = t;
    *len = n;
    return BKOAUTH_OK;
}

/* 3. the key (before the token: a service with a bad key should hear about the key), into *pkey
 * (the caller's reference). An unusable key is logged as an error. */
static bkoauth_code jwt_client_key(const bk_settings *s, const bk_logger *logger, EVP_PKEY **pkey,
                                   bkoauth_error *err)
{
    if (s == NULL || bk_empty(s->apigw_public_key))
        return err_set(err, BKOAUTH_E_JWT,
                       "public key unusable: APIGW_PUBLIC_KEY is not set; set it to the API gateway's PEM "
                       "public key (\"-----BEGIN PUBLIC KEY-----...\")");
    bkoauth_code rc = bk_crypto_load(BKOAUTH_E_JWT, err); /* libcrypto: loaded by the first check */
    if (rc != BKOAUTH_OK) return rc;
    char why[256] = "";
    rc = jwt_key_get(s->apigw_public_key, pkey, why, sizeof why);
    if (rc == BKOAUTH_E_NOMEM) return err_set(err, BKOAUTH_E_NOMEM, "out of memory reading APIGW_PUBLIC_KEY");
    if (rc != BKOAUTH_OK) {
        log_write(logger, BKOAUTH_LOG_ERROR, "X-Bkapi-Jwt refused: public key unusable: %s", why);
        return err_set(err, BKOAUTH_E_JWT, "public key unusable: %s", why);
    }
    return BKOAUTH_OK;
}

/* One token as it is taken apart; everything owned is freed by jwt_parts_clear(). */
typedef struct jwt_parts {
    const char *text; /* the token, len bytes, blanks around it left out */
    size_t len;
    const char *dot1, *dot2; /* the dots after the header and after the payload */
    unsigned char *header_raw, *payload_raw, *sig;
    size_t header_len, payload_len, sig_len;
    json_t *header, *payload;
    const json_t *alg; /* the header's, a string */
    int64_t exp_at;
} jwt_parts;

static void jwt_parts_clear(jwt_parts *p)
{
    json_decref(p->header);
    json_decref(p->payload);
    bkoauth__free(p->header_raw);
    bkoauth__free(p->payload_raw);
    bkoauth__free(p->sig);
}

/* Decodes one base64url part of the token (what: "header", "payload", "signature"); a JSON part
 * (json 1) must not be empty nor hold a NUL byte (JSON text has none, and Jansson's json_loadb()
 * would skip it). */
static bkoauth_code jwt_decode_part(const char *s, size_t n, const char *what, int json, unsigned char **out,
                                    size_t *outlen, bkoauth_error *err)
{
    int d = jwt_b64url_decode(s, n, out, outlen);
    if (d == -2) return err_nomem(err);
    if (d != 0 || (json && *outlen == 0))
        return err_set(err, BKOAUTH_E_JWT, "malformed token: the JWT %s is not valid base64url", what);
    if (json && memchr(*out, '\0', *outlen) != NULL)
        return err_set(err, BKOAUTH_E_JWT, "malformed token: the JWT %s holds a NUL byte", what);
    return BKOAUTH_OK;
}

/* The decoded header: a JSON object with a string "alg" and no "crit". */
static bkoauth_code jwt_read_header(jwt_parts *p, bkoauth_error *err)
{
    json_error_t jerr;
    int oom = 0;
    p->header =
        bkoauth__json_loadb((const char *)p->header_raw, p->header_len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (oom) return err_nomem(err);
    if (!json_is_object(p->header))
        return err_set(err, BKOAUTH_E_JWT, "malformed token: the JWT header is not a JSON object");
    p->alg = json_object_get(p->header, "alg");
    if (!json_is_string(p->alg))
        return err_set(err, BKOAUTH_E_JWT, "malformed token: the JWT header has no \"alg\" string");
    if (json_object_get(p->header, "crit") != NULL)
        return err_set(err, BKOAUTH_E_JWT,
                       "malformed token: the JWT header has a \"crit\" extension, which is not supported");
    return BKOAUTH_OK;
}

/* 4. shape: three base64url parts, the header read. */
static bkoauth_code jwt_split(jwt_parts *p, bkoauth_error *err)
{
    const char *t = p->text;
    size_t len = p->len;
    p->dot1 = memchr(t, '.', len);
    p->dot2 = p->dot1 ? memchr(p->dot1 + 1, '.', len - (size_t)(p->dot1 + 1 - t)) : NULL;
    if (p->dot1 == NULL || p->dot2 == NULL ||
        memchr(p->dot2 + 1, '.', len - (size_t)(p->dot2 + 1 - t)) != NULL)
        return err_set(
            err, BKOAUTH_E_JWT,
            "malformed token: X-Bkapi-Jwt is not three dot-separated parts (header.payload.signature)");
    bkoauth_code rc =
        jwt_decode_part(t, (size_t)(p->dot1 - t), "header", 1, &p->header_raw, &p->header_len, err);
    if (rc == BKOAUTH_OK) rc = jwt_read_header(p, err);
    if (rc == BKOAUTH_OK)
        rc = jwt_decode_part(p->dot1 + 1, (size_t)(p->dot2 - p->dot1 - 1), "payload", 1, &p->payload_raw,
                             &p->payload_len, err);
    if (rc == BKOAUTH_OK)
        rc = jwt_decode_part(p->dot2 + 1, len - (size_t)(p->dot2 + 1 - t), "signature", 0, &p->sig,
                             &p->sig_len, err);
    return rc;
}

/* 5. the algorithm, pinned. */
static bkoauth_code jwt_check_alg(const json_t *alg, bkoauth_error *err)
{
    if (strcmp(json_string_value(alg), JWT_ALG) == 0 && json_string_length(alg) == strlen(JWT_ALG))
        return BKOAUTH_OK;
    char shown[48];
    jwt_show(json_string_value(alg), json_string_length(alg), shown, sizeof shown);
    return err_set(err, BKOAUTH_E_JWT,
                   "algorithm not allowed: the JWT header names \"%s\"; only RS256 is accepted", shown);
}

/* 6. the signature over "header.payload" as sent. */
static bkoauth_code jwt_check_signature(EVP_PKEY *pkey, const jwt_parts *p, bkoauth_error *err)
{
    int good = jwt_signature_ok(pkey, p->text, (size_t)(p->dot2 - p->text), p->sig, p->sig_len);
    if (good == JWT_SIG_OOM) return err_nomem(err);
    if (good == JWT_SIG_ERROR)
        return err_set(err, BKOAUTH_E_JWT,
                       "the signature could not be checked: OpenSSL failed to set up RS256 verification with "
                       "APIGW_PUBLIC_KEY; retry, and check the OpenSSL installation if it persists");
    if (good != JWT_SIG_GOOD)
        return err_set(err, BKOAUTH_E_JWT,
                       "bad signature: X-Bkapi-Jwt was not signed by the key in APIGW_PUBLIC_KEY, or was "
                       "altered; check that APIGW_PUBLIC_KEY is this gateway's key");
    return BKOAUTH_OK;
}

/* 7. the payload, a JSON object. */
static bkoauth_code jwt_read_payload(jwt_parts *p, bkoauth_error *err)
{
    json_error_t jerr;
    int oom = 0;
    p->payload = bkoauth__json_loadb((const char *)p->payload_raw, p->payload_len, JSON_REJECT_DUPLICATES,
                                     &jerr, &oom);
    if (oom) return err_nomem(err);
    if (!json_is_object(p->payload))
        return err_set(err, BKOAUTH_E_JWT, "malformed token: the JWT payload is not a JSON object");
    return BKOAUTH_OK;
}

/* 8. issuer. */
static bkoauth_code jwt_check_issuer(const json_t *payload, bkoauth_error *err)
{
    const json_t *iss = json_object_get(payload, "iss");
    if (iss == NULL || json_is_null(iss))
        return err_set(err, BKOAUTH_E_JWT,
                       "missing issuer: the JWT has no \"iss\"; only tokens issued by APIGW are accepted");
    if (json_is_string(iss) && strcmp(json_string_value(iss), JWT_ISSUER) == 0 &&
        json_string_length(iss) == strlen(JWT_ISSUER))
        return BKOAUTH_OK;
    char shown[48] = "(not a string)";
    if (json_is_string(iss)) jwt_show(json_string_value(iss), json_string_length(iss), shown, sizeof shown);
    return err_set(err, BKOAUTH_E_JWT, "wrong issuer: the JWT was issued by \"%s\"; only APIGW is accepted",
                   shown);
}

/* 9. time: exp present and not past (*exp_at), nbf not ahead, with the leeway. */
static bkoauth_code jwt_check_time(const json_t *payload, int64_t *exp_at, bkoauth_error *err)
{
    int64_t now = bk_now(), nbf_at = 0;
    const json_t *exp = json_object_get(payload, "exp");
    if (exp == NULL)
        return err_set(err, BKOAUTH_E_JWT,
                       "malformed token: the JWT has no \"exp\" (expiry); the gateway always sets one");
    if (jwt_claim_seconds(exp, exp_at) != 0)
        return err_set(err, BKOAUTH_E_JWT, "malformed token: the JWT \"exp\" is not a number of seconds");
    if (*exp_at <= now - BKOAUTH_JWT_LEEWAY_SECONDS)
        return err_set(err, BKOAUTH_E_JWT,
                       "token expired: the JWT expired %llu seconds ago (leeway %d s); send a fresh one",
                       (unsigned long long)((uint64_t)now - (uint64_t)*exp_at), BKOAUTH_JWT_LEEWAY_SECONDS);
    const json_t *nbf = json_object_get(payload, "nbf");
    if (nbf == NULL) return BKOAUTH_OK;
    if (jwt_claim_seconds(nbf, &nbf_at) != 0)
        return err_set(err, BKOAUTH_E_JWT, "malformed token: the JWT \"nbf\" is not a number of seconds");
    if (nbf_at > now + BKOAUTH_JWT_LEEWAY_SECONDS)
        return err_set(
            err, BKOAUTH_E_JWT,
            "token not yet valid: the JWT is valid only in %lld seconds (leeway %d s); check the clocks "
            "of this host and the gateway",
            (long long)(nbf_at - now), BKOAUTH_JWT_LEEWAY_SECONDS);
    return BKOAUTH_OK;
}

/* The name (member name, or else fallback) and the verified flag of a party of the payload (app,
 * user). Returns 0, or -1 when out of memory. */
static int jwt_party(const json_t *party, const char *name, const char *fallback, char **name_out,
                     int *verified)
{
    *name_out = jwt_dup_string_member(party, name, fallback);
    if (*name_out == NULL &&
        (json_is_string(json_object_get(party, name)) || json_is_string(json_object_get(party, fallback))))
        return -1;
    *verified = jwt_flag_member(party, "verified");
    return 0;
}

/* The accepted token's app and user into a new *out. */
static bkoauth_code jwt_accept(const jwt_parts *p, bkoauth_jwt **out, bkoauth_error *err)
{
    bkoauth_jwt *result = bkoauth__calloc(1, sizeof *result);
    if (result == NULL) return err_nomem(err);
    result->expires = p->exp_at;
    result->payload_json = bkoauth__strndup((const char *)p->payload_raw, p->payload_len);
    int oom = result->payload_json == NULL;
    const json_t *app = json_object_get(p->payload, "app");
    if (!oom && json_is_object(app))
        oom = jwt_party(app, "app_code", "bk_app_code", &result->app_code, &result->app_verified) != 0;
    const json_t *user = json_object_get(p->payload, "user");
    if (!oom && json_is_object(user))
        oom = jwt_party(user, "username", "bk_username", &result->username, &result->user_verified) != 0;
    if (oom) {
        bkoauth_jwt_free(result);
        return err_nomem(err);
    }
    *out = result;
    return err_ok(err);
}

bkoauth_code bk_jwt_verify(const bk_settings *s, const bk_logger *logger, const char *jwt, bkoauth_jwt **out,
                           bkoauth_error *err)
{
    jwt_parts p = {0};
    p.text = jwt;
    bkoauth_code rc = jwt_trim(&p.text, &p.len, err);
    if (rc != BKOAUTH_OK) return rc;
    EVP_PKEY *pkey = NULL;
    rc = jwt_client_key(s, logger, &pkey, err);
    if (rc != BKOAUTH_OK) return rc;

    /* nothing of the payload is believed before the signature is checked */
    rc = jwt_split(&p, err);
    if (rc == BKOAUTH_OK) rc = jwt_check_alg(p.alg, err);
    if (rc == BKOAUTH_OK) rc = jwt_check_signature(pkey, &p, err);
    if (rc == BKOAUTH_OK) rc = jwt_read_payload(&p, err);
    if (rc == BKOAUTH_OK) rc = jwt_check_issuer(p.payload, err);
    if (rc == BKOAUTH_OK) rc = jwt_check_time(p.payload, &p.exp_at, err);
    if (rc == BKOAUTH_OK) rc = jwt_accept(&p, out, err);
    if (rc != BKOAUTH_OK && rc != BKOAUTH_E_NOMEM && err != NULL)
        log_write(logger, BKOAUTH_LOG_INFO, "X-Bkapi-Jwt refused: %s", err->message);
    jwt_parts_clear(&p);
    jwt_key_put(pkey);
    return rc;
}

/* ---- the refusal body ------------------------------------------------------------------- */

char *bkoauth_jwt_error_body(const bkoauth_error *err)
{
    const char *generic = "X-Bkapi-Jwt verification failed";
    char message[sizeof err->message + 1];
    if (err == NULL || err->message[0] == '\0') {
        snprintf(message, sizeof message, "%s", generic);
    } else {
        size_t n = strnlen(err->message, sizeof err->message);
        memcpy(message, err->message, n);
        message[n] = '\0';
    }
    unsigned long failed = bkoauth__alloc_failures();
    json_t *msg = json_string(message);
    if (msg == NULL && bkoauth__alloc_failures() != failed) return NULL; /* out of memory */
    if (msg == NULL) /* not UTF-8 (a caller-filled message): keep what is printable ASCII */
    {
        for (char *p = message; *p; p++)
            if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20) *p = '?';
        msg = json_string(message);
    }
    /* Django's JsonResponse(json.dumps) layout: ", " and ": " separators, ASCII only */
    json_t *body = json_object();
    char *text = NULL;
    if (msg != NULL && body != NULL && json_object_set_new(body, "result", json_false()) == 0 &&
        json_object_set_new(body, "data", json_null()) == 0 && json_object_set(body, "message", msg) == 0)
        text = bkoauth__json_dump_python(body, JSON_PRESERVE_ORDER);
    json_decref(msg);
    json_decref(body);
    return text;
}
