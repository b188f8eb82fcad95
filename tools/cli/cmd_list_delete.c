/* SPDX-License-Identifier: MIT */
/* cmd_list_delete.c - the saved tokens: list (a table, or a JSON array; secrets always masked)
 * and delete (a user's token, or with --app the APP token, of the current env). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One row of the list table, every cell printable. */
typedef struct cli_row {
    char *cell[6];
} cli_row;

static const char *const cli_list_heads[6] = {"USER", "ENV",          "EXPIRES (UTC)",
                                              "LEFT", "ACCESS_TOKEN", "REFRESH_TOKEN"};

/* Prints six cells padded to their column's width (the last one unpadded). */
static void cli_print_row(const char *const cell[6], const size_t width[6])
{
    for (int c = 0; c < 5; c++)
        printf("%-*s  ", (int)width[c], cell[c]);
    printf("%s\n", cell[5]);
}

static int cli_list_table(bkoauth_token **all, size_t n, int64_t now)
{
    cli_row *rows = calloc(n ? n : 1, sizeof *rows);
    size_t width[6];
    int status = CLI_EXIT_OK;
    if (rows == NULL) goto oom;
    for (int c = 0; c < 6; c++)
        width[c] = strlen(cli_list_heads[c]);
    for (size_t i = 0; i < n; i++) {
        const bkoauth_token *t = all[i];
        char exp[40], left[40], ma[CLI_MASK_SIZE], mr[CLI_MASK_SIZE];
        const char *refresh = t->refresh_token && t->refresh_token[0] ? t->refresh_token : NULL;
        const char *src[6] = {t->user_id ? t->user_id : "(APP)",
                              t->env_name ? t->env_name : "",
                              cli_time(t->expires, 0, exp, sizeof exp),
                              cli_left(t->expires, now, left, sizeof left),
                              bkoauth_mask(t->access_token, ma, sizeof ma),
                              refresh ? bkoauth_mask(refresh, mr, sizeof mr) : "-"};
        for (int c = 0; c < 6; c++) {
            rows[i].cell[c] = cli_printable(src[c]);
            if (rows[i].cell[c] == NULL) goto oom;
            size_t w = strlen(rows[i].cell[c]);
            if (w > width[c]) width[c] = w;
        }
    }
    cli_print_row(cli_list_heads, width);
    for (size_t i = 0; i < n; i++)
        cli_print_row((const char *const *)rows[i].cell, width);
    if (n == 0) puts("(no saved tokens)");
    goto out;
oom:
    fputs("bkoauth: OutOfMemory: could not build the table\n", stderr);
    status = CLI_EXIT_OTHER;
out:
    if (rows != NULL) {
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 6; c++)
                free(rows[i].cell[c]);
        free(rows);
    }
    return status;
}

int cmd_list(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    bkoauth_token **all = NULL;
    size_t n = 0;
    if (bkoauth_list_tokens(client, &all, &n, &e) != BKOAUTH_OK) return cli_fail(&e);
    int64_t now = (int64_t)time(NULL);
    int status;
    if (a->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < n; i++) {
            json_t *o = cli_token_json(all[i], 1, now);
            if (o == NULL || json_array_append_new(arr, o) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        status = cli_print_json(arr);
    } else {
        status = cli_list_table(all, n, now);
    }
    bkoauth_tokens_free(all, n);
    return status;
}

int cmd_delete(bkoauth_client *client, const cli_args *a)
{
    bkoauth_error e;
    const char *user = a->app ? NULL : a->positional[0];
    if (bkoauth_delete_token(client, user, &e) != BKOAUTH_OK) return cli_fail(&e);
    if (a->json) {
        json_t *o = json_object();
        if (o != NULL && (cli_json_set(o, "deleted", json_true()) != 0 ||
                          cli_json_set(o, "user_id", user ? cli_json_str(user) : json_null()) != 0 ||
                          cli_json_set(o, "env_name", cli_json_str(bkoauth_client_env_name(client))) != 0)) {
            json_decref(o);
            o = NULL;
        }
        return cli_print_json(o);
    }
    char *who = cli_printable(user ? user : "(APP)");
    printf("deleted the saved token of %s in env %s\n", who ? who : "?", bkoauth_client_env_name(client));
    free(who);
    return CLI_EXIT_OK;
}
