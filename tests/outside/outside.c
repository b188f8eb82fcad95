/* SPDX-License-Identifier: MIT */
/* outside.c - a program written only from API.md, built outside the project against the
 * installed library (pkg-config or CMake). It runs the seed's four operations and the login
 * hook against the SSM service named by OAUTH_API_URL, checking what API.md promises, and
 * exits non-zero on the first broken promise. */
#include <bkoauth.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "outside: %s:%d: check failed: %s (%s: %s)\n", __FILE__, __LINE__, #cond,        \
                    bkoauth_code_name(err.code), err.message);                                               \
            return 1;                                                                                        \
        }                                                                                                    \
    } while (0)

int main(void)
{
    bkoauth_error err = {0};
    CHECK(strcmp(bkoauth_code_name(BKOAUTH_E_TOKEN_NOT_EXIST), "TokenNotExist") == 0);
    CHECK(bkoauth_version()[0] != '\0');
    bkoauth_config *cfg = bkoauth_config_new();
    CHECK(cfg != NULL);
    CHECK(bkoauth_config_load_env(cfg, &err) == BKOAUTH_OK);
    CHECK(bkoauth_config_set(cfg, "NO_SUCH_SETTING", "1", &err) == BKOAUTH_E_CONFIG);
    bkoauth_client *c = bkoauth_client_new(cfg, &err);
    CHECK(c != NULL);
    bkoauth_config_free(cfg);

    bkoauth_token *app = NULL, *again = NULL, *user = NULL, *saved = NULL, *fresh = NULL;
    CHECK(bkoauth_get_app_access_token(c, &app, &err) == BKOAUTH_OK && err.code == BKOAUTH_OK);
    CHECK(app->user_id == NULL && strlen(app->access_token) > 0);
    CHECK(bkoauth_get_app_access_token(c, &again, &err) == BKOAUTH_OK);
    CHECK(strcmp(app->access_token, again->access_token) == 0);

    bkoauth_request anon = {0};
    bkoauth_token *none = (bkoauth_token *)&anon;
    CHECK(bkoauth_get_access_token(c, &anon, &none, &err) == BKOAUTH_E_INVALID && none == NULL);
    CHECK(err.code == BKOAUTH_E_INVALID && err.message[0] != '\0');

    const char *user_id = getenv("OUTSIDE_USER");
    const char *cookie = getenv("OUTSIDE_COOKIE");
    CHECK(user_id && cookie);
    CHECK(bkoauth_get_access_token_by_user(c, user_id, &saved, &err) == BKOAUTH_E_TOKEN_NOT_EXIST);
    bkoauth_request req = {.username = user_id, .cookie_header = cookie, .remote_addr = "127.0.0.1"};
    bkoauth_user_logged_in(c, &req);
    CHECK(bkoauth_get_access_token(c, &req, &user, &err) == BKOAUTH_OK);
    CHECK(strcmp(user->user_id, user_id) == 0 && user->refresh_token[0] != '\0');
    CHECK(bkoauth_get_access_token_by_user(c, user_id, &saved, &err) == BKOAUTH_OK);
    CHECK(strcmp(saved->access_token, user->access_token) == 0);
    CHECK(!bkoauth_token_expires_soon(c, saved));
    CHECK(bkoauth_refresh_token(c, saved, &fresh, &err) == BKOAUTH_OK);
    CHECK(strcmp(fresh->access_token, saved->access_token) != 0);
    bkoauth_token *none2 = (bkoauth_token *)&anon;
    CHECK(bkoauth_refresh_token(c, app, &none2, &err) == BKOAUTH_E_TOKEN_NOT_EXIST && none2 == NULL);
    printf("outside: all four operations behave as API.md says (env %s)\n", fresh->env_name);

    bkoauth_token_free(app);
    bkoauth_token_free(again);
    bkoauth_token_free(user);
    bkoauth_token_free(saved);
    bkoauth_token_free(fresh);
    bkoauth_client_free(c);
    return 0;
}
