/* SPDX-License-Identifier: MIT */
/* cmd_verify_jwt.c - verify-jwt: an X-Bkapi-Jwt from the argument or standard input, verified
 * with APIGW_PUBLIC_KEY; the app and the user it carries printed as text or JSON; a refusal as
 * JWTError, with --json the gateway-style body on stdout too. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_JWT_MAX (64 * 1024) /* an X-Bkapi-Jwt read from stdin is refused beyond this */

/* Reads the JWT from stdin: at most CLI_JWT_MAX bytes, surrounding whitespace dropped.
 * Returns a malloc'd string, or NULL with *status set. */
static char *cli_read_jwt(int *status)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fputs("bkoauth: OutOfMemory: could not read the JWT\n", stderr);
        *status = CLI_EXIT_OTHER;
        return NULL;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > CLI_JWT_MAX) {
                free(buf);
                fprintf(stderr, "bkoauth: JWTError: the JWT on standard input is longer than %d bytes\n",
                        CLI_JWT_MAX);
                *status = 7;
                return NULL;
            }
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                fputs("bkoauth: OutOfMemory: could not read the JWT\n", stderr);
                *status = CLI_EXIT_OTHER;
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, stdin);
        len += got;
        if (got == 0) {
            if (ferror(stdin)) {
                fprintf(stderr, "bkoauth: could not read standard input: %s\n", strerror(errno));
                free(buf);
                *status = CLI_EXIT_OTHER;
                return NULL;
            }
            break;
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        fputs("bkoauth: JWTError: the JWT on standard input holds a NUL byte\n", stderr);
        *status = 7;
        return NULL;
    }
    size_t start = 0;
    while (start < len && strchr(" \t\r\n", buf[start]) != NULL)
        start++;
    while (len > start && strchr(" \t\r\n", buf[len - 1]) != NULL)
        len--;
    memmove(buf, buf + start, len - start);
    buf[len - start] = '\0';
    return buf;
}

/* A refused JWT: with --json the gateway-style body on stdout too. The exit status. */
static int cli_jwt_refused(const cli_args *a, const bkoauth_error *e)
{
    if (a->json) {
        char *body = bkoauth_jwt_error_body(e);
        if (body == NULL) {
            cli_fail(e);
            fputs("bkoauth: OutOfMemory: could not build the JSON body of the refusal\n", stderr);
            return CLI_EXIT_OTHER;
        }
        puts(body);
        bkoauth_free(body);
    }
    return cli_fail(e);
}

/* The verified JWT as one JSON object. The exit status. */
static int cli_print_jwt_json(const bkoauth_jwt *v)
{
    json_t *o = json_object();
    char exp[40];
    json_error_t jerr;
    /* The payload was verified JSON: failing to read it again can only mean out of memory,
     * which cli_print_json() reports (o is dropped below). Out of memory, Jansson 2.14's
     * parser may also drop a byte and succeed: two readings that differ mean that too. */
    json_t *payload = v->payload_json ? json_loads(v->payload_json, 0, &jerr) : json_null();
    json_t *again = v->payload_json ? json_loads(v->payload_json, 0, &jerr) : json_null();
    if (payload == NULL || again == NULL || !json_equal(payload, again)) {
        json_decref(payload);
        payload = NULL;
        json_decref(o);
        o = NULL;
    }
    json_decref(again);
    if (o != NULL &&
        (cli_json_set(o, "app_code", v->app_code ? cli_json_str(v->app_code) : json_null()) != 0 ||
         cli_json_set(o, "app_verified", json_boolean(v->app_verified)) != 0 ||
         cli_json_set(o, "username", v->username ? cli_json_str(v->username) : json_null()) != 0 ||
         cli_json_set(o, "user_verified", json_boolean(v->user_verified)) != 0 ||
         cli_json_set(o, "expires",
                      v->expires ? cli_json_str(cli_time(v->expires, 1, exp, sizeof exp)) : json_null()) !=
             0 ||
         cli_json_set(o, "payload", payload ? payload : json_null()) != 0)) {
        json_decref(o);
        o = NULL;
    } else if (o == NULL) {
        json_decref(payload);
    }
    return cli_print_json(o);
}

/* The verified JWT for people: the app, the user and the expiry. */
static void cli_print_jwt_text(const bkoauth_jwt *v)
{
    char exp[40];
    char *app = cli_printable(v->app_code ? v->app_code : "(none)");
    char *user = cli_printable(v->username ? v->username : "(none)");
    printf("app:     %s (%s)\n", app ? app : "?", v->app_verified ? "verified" : "not verified");
    printf("user:    %s (%s)\n", user ? user : "?", v->user_verified ? "verified" : "not verified");
    if (v->expires) printf("expires: %s\n", cli_time(v->expires, 1, exp, sizeof exp));
    free(app);
    free(user);
}

int cmd_verify_jwt(bkoauth_client *client, const cli_args *a)
{
    int status = CLI_EXIT_OK;
    char *input = NULL;
    const char *jwt = a->positional[0];
    if (jwt == NULL) {
        input = cli_read_jwt(&status);
        if (input == NULL) return status;
        jwt = input;
    }
    bkoauth_error e;
    bkoauth_jwt *v = NULL;
    bkoauth_code rc = bkoauth_jwt_verify(client, jwt, &v, &e);
    free(input);
    if (rc != BKOAUTH_OK) return cli_jwt_refused(a, &e);
    if (a->json)
        status = cli_print_jwt_json(v);
    else
        cli_print_jwt_text(v);
    bkoauth_jwt_free(v);
    return status;
}
