/* SPDX-License-Identifier: MIT */
/* cmd_tokens.c - the token commands: app-token (get_app_access_token), user-token
 * (get_access_token with a login cookie), token (get_access_token_by_user) and refresh
 * (refresh_token of the saved row). Each prints the access_token alone, or with --json the
 * token's whole object (cli_print_token()). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define CLI_DEFAULT_CLIENT_IP "127.0.0.1"

int cmd_app_token(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *t = NULL;
    if (bkoauth_get_app_access_token(client, &t, &e) != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, t);
}

int cmd_user_token(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *t = NULL;
    bkoauth_request req;
    memset(&req, 0, sizeof req);
    req.username = a->positional[0];
    req.cookie_header = a->cookie;
    req.remote_addr = a->client_ip ? a->client_ip : CLI_DEFAULT_CLIENT_IP;
    if (bkoauth_get_access_token(client, &req, &t, &e) != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, t);
}

int cmd_token(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *t = NULL;
    if (bkoauth_get_access_token_by_user(client, a->positional[0], &t, &e) != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, t);
}

/* USER's saved row in the client's env, as it is in the store (no refresh): a copy in *out. */
static bkoauth_code cli_saved_token(bkoauth_client *client, const char *user, bkoauth_token **out,
                                    bkoauth_error *e)
{
    bkoauth_token **all = NULL;
    size_t n = 0;
    *out = NULL;
    bkoauth_code rc = bkoauth_list_tokens(client, &all, &n, e);
    if (rc != BKOAUTH_OK) return rc;
    const char *env = bkoauth_client_env_name(client);
    for (size_t i = 0; i < n && *out == NULL; i++) {
        const bkoauth_token *t = all[i];
        if (t->user_id != NULL && strcmp(t->user_id, user) == 0 && t->env_name != NULL && env != NULL &&
            strcmp(t->env_name, env) == 0) {
            *out = bkoauth_token_dup(t);
            if (*out == NULL) {
                bkoauth_tokens_free(all, n);
                e->code = BKOAUTH_E_NOMEM;
                snprintf(e->message, sizeof e->message, "out of memory copying the saved token");
                return BKOAUTH_E_NOMEM;
            }
        }
    }
    bkoauth_tokens_free(all, n);
    if (*out == NULL) {
        e->code = BKOAUTH_E_TOKEN_NOT_EXIST;
        e->http_status = 0;
        e->api_code = 0;
        snprintf(e->message, sizeof e->message,
                 "no saved access_token for user %.128s in env %.32s: log the user in first with "
                 "'bkoauth user-token %.128s --cookie HEADER'",
                 user, env ? env : "?", user);
        return BKOAUTH_E_TOKEN_NOT_EXIST;
    }
    return BKOAUTH_OK;
}

int cmd_refresh(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token *saved = NULL, *fresh = NULL;
    if (cli_saved_token(client, a->positional[0], &saved, &e) != BKOAUTH_OK) return cli_fail(&e);
    bkoauth_code rc = bkoauth_refresh_token(client, saved, &fresh, &e);
    bkoauth_token_free(saved);
    if (rc != BKOAUTH_OK) return cli_fail(&e);
    return cli_print_token(a, fresh);
}
