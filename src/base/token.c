/* SPDX-License-Identifier: MIT */
/* token.c - the token record handed to callers: copies, freeing, expiry (bkoauth_mask is in
 * scrub.c, with the rest of what hides secrets). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token is one allocation: the struct followed by its strings, so a copy costs one malloc
 * (the cache hands out copies on its hot path). Secrets are wiped before the block is freed. */
void bkoauth_token_free(bkoauth_token *token)
{
    if (token == NULL) return;
    if (token->access_token) bkoauth__wipe(token->access_token, strlen(token->access_token));
    if (token->refresh_token) bkoauth__wipe(token->refresh_token, strlen(token->refresh_token));
    bkoauth__free(token);
}

/* The strings of a token as token_make takes them, and the bytes of its one block (0 when too
 * long to count). */
static size_t token_parts(const char *src[5], size_t len[5])
{
    size_t total = sizeof(bkoauth_token);
    for (int i = 0; i < 5; i++) {
        len[i] = src[i] ? strlen(src[i]) : 0;
        if (src[i] != NULL) {
            if (len[i] > SIZE_MAX / 8) return 0;
            total += len[i] + 1;
        }
    }
    return total;
}

/* Lays the token out in block (big enough: token_parts' total). */
static bkoauth_token *token_place(void *block, const char *src[5], const size_t len[5], int64_t expires,
                                  int64_t created_at)
{
    bkoauth_token *t = block;
    char *p = (char *)(t + 1);
    char **dst[5] = {&t->access_token, &t->refresh_token, &t->scope, &t->env_name, &t->user_id};
    for (int i = 0; i < 5; i++) {
        if (src[i] == NULL) {
            *dst[i] = NULL;
            continue;
        }
        memmove(p, src[i], len[i] + 1);
        *dst[i] = p;
        p += len[i] + 1;
    }
    t->expires = expires;
    t->created_at = created_at;
    return t;
}

bkoauth_token *token_make(const char *access_token, const char *refresh_token, const char *scope,
                          const char *env_name, const char *user_id, int64_t expires, int64_t created_at)
{
    const char *src[5] = {access_token ? access_token : "", refresh_token ? refresh_token : "",
                          scope ? scope : "", env_name ? env_name : "", bk_empty(user_id) ? NULL : user_id};
    size_t len[5], total = token_parts(src, len);
    if (total == 0) return NULL;
    bkoauth_token *t = bkoauth__malloc(total);
    return t ? token_place(t, src, len, expires, created_at) : NULL;
}

bkoauth_token *token_to_pool(bkoauth_token *t)
{
    if (t == NULL) return NULL;
    size_t size = token_block_size(t);
    void *block = bkoauth__pool_try(size);
    if (block == NULL) return t;
    bkoauth_token *moved = token_copy_into(block, size, t);
    bkoauth_token_free(t);
    return moved;
}

size_t token_block_size(const bkoauth_token *token)
{
    const char *src[5] = {token->access_token, token->refresh_token, token->scope, token->env_name,
                          bk_empty(token->user_id) ? NULL : token->user_id};
    size_t len[5];
    return token_parts(src, len);
}

bkoauth_token *token_copy_into(void *block, size_t size, const bkoauth_token *token)
{
    const char *src[5] = {token->access_token, token->refresh_token, token->scope, token->env_name,
                          bk_empty(token->user_id) ? NULL : token->user_id};
    size_t len[5], total = token_parts(src, len);
    if (total == 0 || total > size) return NULL;
    return token_place(block, src, len, token->expires, token->created_at);
}

bkoauth_token *bkoauth_token_dup(const bkoauth_token *token)
{
    if (token == NULL) return NULL;
    return token_make(token->access_token, token->refresh_token, token->scope, token->env_name,
                      token->user_id, token->expires, token->created_at);
}

int token_expiring(const bkoauth_token *token, int64_t expires_seconds, int64_t now)
{
    return token == NULL || token->expires - now < expires_seconds;
}

void bkoauth_tokens_free(bkoauth_token **tokens, size_t count)
{
    if (tokens == NULL) return;
    for (size_t i = 0; i < count; i++)
        bkoauth_token_free(tokens[i]);
    bkoauth__free(tokens);
}
