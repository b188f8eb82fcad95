/* SPDX-License-Identifier: MIT */
/* fastcgi_params.c - bkoauth_request_from_params() with a FastCGI-style parameter table.
 *
 * A FastCGI server hands each request its CGI variables as a table of "NAME=VALUE" strings:
 * libfcgi's FCGX_Request has it as request.envp (read with FCGX_GetParam), other servers as a
 * similar array. bkoauth_request_from_params() takes a lookup function over such a table, so
 * the library needs no FastCGI dependency. In a libfcgi worker loop this is:
 *
 *     while (FCGX_Accept_r(&request) == 0) {
 *         bkoauth_request req;
 *         bkoauth_request_from_params(&req, envp_get, request.envp);
 *         bkoauth_token *t = NULL;
 *         if (bkoauth_get_access_token(client, &req, &t, &err) == BKOAUTH_OK) ...
 *         FCGX_Finish_r(&request);
 *     }
 *
 * This program runs one such request with the table taken from its arguments, so it can be
 * tried without a FastCGI server:
 *
 *   usage: bkoauth-fastcgi-params NAME=VALUE...
 *   e.g.   OAUTH_API_URL=http://127.0.0.1:8080 bkoauth-fastcgi-params \
 *              REMOTE_USER=alice 'HTTP_COOKIE=bk_token=cred-alice' REMOTE_ADDR=10.0.0.7
 *
 * It prints the user's token (masked) and exits 0, or prints the error and exits 1.
 * Settings: the file in $BKOAUTH_CONFIG (if set), then the environment.
 */
#include <bkoauth.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The value of name in a NULL-terminated table of "NAME=VALUE" strings, as FCGX_GetParam()
 * reads request.envp: a pointer into the table, or NULL when absent. */
static const char *envp_get(void *ctx, const char *name)
{
    char **envp = ctx;
    size_t n = strlen(name);
    for (; envp != NULL && *envp != NULL; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=') return *envp + n + 1;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s NAME=VALUE...  (REMOTE_USER, HTTP_COOKIE, QUERY_STRING, REMOTE_ADDR, "
                "HTTP_X_FORWARDED_FOR)\n",
                argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strchr(argv[i], '=') == NULL) {
            fprintf(stderr, "%s: %s is not NAME=VALUE\n", argv[0], argv[i]);
            return 2;
        }
    }
    bkoauth_error err;
    bkoauth_config *config = bkoauth_config_new();
    const char *file = getenv("BKOAUTH_CONFIG");
    if (config == NULL || (file && bkoauth_config_load_file(config, file, &err) != BKOAUTH_OK) ||
        bkoauth_config_load_env(config, &err) != BKOAUTH_OK) {
        fprintf(stderr, "%s: settings: %s\n", argv[0], config ? err.message : "out of memory");
        bkoauth_config_free(config);
        return 1;
    }
    bkoauth_client *client = bkoauth_client_new(config, &err);
    bkoauth_config_free(config);
    if (client == NULL) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], bkoauth_code_name(err.code), err.message);
        return 1;
    }

    /* argv + 1 is a NULL-terminated "NAME=VALUE" table, just like request.envp */
    bkoauth_request req;
    bkoauth_request_from_params(&req, envp_get, argv + 1);
    bkoauth_token *token = NULL;
    int status = 1;
    if (bkoauth_get_access_token(client, &req, &token, &err) != BKOAUTH_OK) {
        fprintf(stderr, "%s: get_access_token: %s: %s\n", argv[0], bkoauth_code_name(err.code), err.message);
    } else {
        char masked[64], when[32];
        time_t expires = (time_t)token->expires;
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&expires, &tm));
        printf("user=%s access_token=%s env=%s expires=%s\n", token->user_id ? token->user_id : "(APP)",
               bkoauth_mask(token->access_token, masked, sizeof masked), token->env_name, when);
        bkoauth_token_free(token);
        status = 0;
    }
    bkoauth_client_free(client);
    return status;
}
