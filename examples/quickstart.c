/* SPDX-License-Identifier: MIT */
/* quickstart.c - the seed's four calls from C, against any SSM service (bkoauth-devserver
 * for development). Settings come from the file named in $BKOAUTH_CONFIG (if set) and the
 * environment, exactly as a service would take them.
 *
 *   usage: bkoauth-quickstart USER COOKIE_HEADER
 *   e.g.   OAUTH_API_URL=http://127.0.0.1:8080 bkoauth-quickstart alice 'bk_token=cred-alice'
 */
#include <bkoauth.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void show(const char *what, const bkoauth_token *t)
{
    char masked[64];
    time_t expires = (time_t)t->expires;
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&expires));
    printf("%-28s %s  user=%s env=%s expires=%s\n", what,
           bkoauth_mask(t->access_token, masked, sizeof masked), t->user_id ? t->user_id : "(APP)",
           t->env_name, when);
}

static int fail(const char *what, const bkoauth_error *e)
{
    fprintf(stderr, "%s failed: %s: %s\n", what, bkoauth_code_name(e->code), e->message);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s USER COOKIE_HEADER\n", argv[0]);
        return 2;
    }
    bkoauth_error err;
    bkoauth_config *config = bkoauth_config_new();
    const char *file = getenv("BKOAUTH_CONFIG");
    if (config == NULL || (file && bkoauth_config_load_file(config, file, &err) != BKOAUTH_OK) ||
        bkoauth_config_load_env(config, &err) != BKOAUTH_OK)
        return fail("settings", &err);
    bkoauth_client *client = bkoauth_client_new(config, &err);
    bkoauth_config_free(config);
    if (client == NULL) return fail("bkoauth_client_new", &err);

    int status = 1;
    bkoauth_token *app = NULL, *user = NULL, *saved = NULL, *fresh = NULL;

    /* 1. get_app_access_token() */
    if (bkoauth_get_app_access_token(client, &app, &err) != BKOAUTH_OK) {
        fail("get_app_access_token", &err);
        goto out;
    }
    show("get_app_access_token:", app);

    /* 2. get_access_token(request): what a login does */
    bkoauth_request req = {.username = argv[1], .cookie_header = argv[2], .remote_addr = "127.0.0.1"};
    if (bkoauth_get_access_token(client, &req, &user, &err) != BKOAUTH_OK) {
        fail("get_access_token", &err);
        goto out;
    }
    show("get_access_token:", user);

    /* 3. get_access_token_by_user(user_id): the saved token, later, without a request */
    if (bkoauth_get_access_token_by_user(client, argv[1], &saved, &err) != BKOAUTH_OK) {
        fail("get_access_token_by_user", &err);
        goto out;
    }
    show("get_access_token_by_user:", saved);

    /* 4. refresh_token(token) */
    if (bkoauth_refresh_token(client, saved, &fresh, &err) != BKOAUTH_OK) {
        fail("refresh_token", &err);
        goto out;
    }
    show("refresh_token:", fresh);
    status = 0;
out:
    bkoauth_token_free(app);
    bkoauth_token_free(user);
    bkoauth_token_free(saved);
    bkoauth_token_free(fresh);
    bkoauth_client_free(client);
    return status;
}
