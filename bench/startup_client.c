/* SPDX-License-Identifier: MIT */
/* startup_client.c - for bench_startup: a program linked with libbkoauth.so that reads one saved
 * token (bkoauth_get_access_token_by_user) with the settings of the environment, and exits.
 *   bench_startup_client USER    exit status 0 when the token was read */
#include "bkoauth.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    bkoauth_error e;
    bkoauth_config *config = bkoauth_config_new();
    if (argc < 2 || config == NULL || bkoauth_config_load_env(config, &e) != BKOAUTH_OK) return 2;
    bkoauth_client *c = bkoauth_client_new(config, &e);
    bkoauth_token *t = NULL;
    int rc = c != NULL && bkoauth_get_access_token_by_user(c, argv[1], &t, &e) == BKOAUTH_OK ? 0 : 1;
    if (rc != 0) fprintf(stderr, "bench_startup_client: %s\n", e.message);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    bkoauth_config_free(config);
    return rc;
}
