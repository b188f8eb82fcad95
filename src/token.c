/* token.c - the token record handed to callers: copies, freeing, expiry, masking. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bkoauth_token_free(bkoauth_token *token)
{
    if (token == NULL)
        return;
    bk_wipe_free(token->access_token);
    bk_wipe_free(token->refresh_token);
    free(token->scope);
    free(token->env_name);
    free(token->user_id);
    free(token);
}

bkoauth_token *token_make(const char *access_token, const char *refresh_token, const char *scope,
                          const char *env_name, const char *user_id, int64_t expires, int64_t created_at)
{
    bkoauth_token *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->access_token = bk_strdup(access_token ? access_token : "");
    t->refresh_token = bk_strdup(refresh_token ? refresh_token : "");
    t->scope = bk_strdup(scope ? scope : "");
    t->env_name = bk_strdup(env_name ? env_name : "");
    t->user_id = bk_empty(user_id) ? NULL : bk_strdup(user_id);
    t->expires = expires;
    t->created_at = created_at;
    if (!t->access_token || !t->refresh_token || !t->scope || !t->env_name || (!bk_empty(user_id) && !t->user_id)) {
        bkoauth_token_free(t);
        return NULL;
    }
    return t;
}

bkoauth_token *bkoauth_token_dup(const bkoauth_token *token)
{
    if (token == NULL)
        return NULL;
    return token_make(token->access_token, token->refresh_token, token->scope, token->env_name, token->user_id,
                      token->expires, token->created_at);
}

int token_expiring(const bkoauth_token *token, int64_t expires_seconds, int64_t now)
{
    return token == NULL || token->expires - now < expires_seconds;
}

void bkoauth_tokens_free(bkoauth_token **tokens, size_t count)
{
    if (tokens == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        bkoauth_token_free(tokens[i]);
    free(tokens);
}

char *bkoauth_mask(const char *secret, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    if (secret == NULL) {
        snprintf(buf, size, "(none)");
        return buf;
    }
    size_t len = strlen(secret);
    if (len == 0) {
        snprintf(buf, size, "(empty)");
        return buf;
    }
    /* never show more than a quarter of a short secret */
    size_t shown = len >= 16 ? 4 : len / 4;
    snprintf(buf, size, "%.*s...(%zu chars)", (int)shown, secret, len);
    return buf;
}
