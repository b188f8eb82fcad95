/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: the issued tokens (S.tokens) and their two indexes, by access_token and by
 * refresh_token. Every function but dev_random_hex and dev_token_valid is called with S.mu held. */
#include "devserver.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Fills out with chars random hex characters and a NUL; aborts when getrandom(2) fails (no
 * token may come from anything weaker). */
void dev_random_hex(char *out, size_t chars)
{
    unsigned char raw[DEV_TOKEN_CHARS / 2 + 1];
    size_t need = (chars + 1) / 2, got = 0;
    if (need > sizeof raw) abort();
    while (got < need) {
        ssize_t n = getrandom(raw + got, need - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "bkoauth-devserver: cannot get random bytes (getrandom): %s\n", strerror(errno));
            abort();
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < chars; i++)
        out[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[chars] = '\0';
}

int dev_token_valid(const dev_token *t, time_t now)
{
    return now < t->expires_at && (t->invalid_after == 0 || now < t->invalid_after);
}

/* The index's hash of a token string: 64-bit FNV-1a with its standard offset basis and prime.
 * The library's key_hash() (src/store/keys.c) is the same function over its keys; the devserver is a
 * separate program, not linked with the library's internals, so it keeps this small copy. */
static size_t dev_index_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static void dev_index_put(dev_index *ix, const char *key, size_t pos)
{
    size_t i = dev_index_hash(key) & (ix->cap - 1);
    while (ix->slot[i] != 0)
        i = (i + 1) & (ix->cap - 1);
    ix->slot[i] = pos + 1;
}

/* The token whose access (by_refresh 0) or refresh (1) string is key; NULL when none. */
dev_token *dev_find(const char *key, int by_refresh)
{
    const dev_index *ix = by_refresh ? &S.by_refresh : &S.by_access;
    if (key == NULL || key[0] == '\0' || ix->cap == 0) return NULL;
    for (size_t i = dev_index_hash(key) & (ix->cap - 1); ix->slot[i] != 0; i = (i + 1) & (ix->cap - 1)) {
        dev_token *t = &S.tokens[ix->slot[i] - 1];
        if (strcmp(by_refresh ? t->refresh : t->access, key) == 0) return t;
    }
    return NULL;
}

/* Rebuilds both indexes with cap slots; -1 when out of memory (the old ones are kept). */
static int dev_reindex(size_t cap)
{
    size_t *a = calloc(cap, sizeof *a), *r = calloc(cap, sizeof *r);
    if (a == NULL || r == NULL) {
        free(a);
        free(r);
        return -1;
    }
    free(S.by_access.slot);
    free(S.by_refresh.slot);
    S.by_access = (dev_index){a, cap};
    S.by_refresh = (dev_index){r, cap};
    for (size_t i = 0; i < S.ntokens; i++) {
        dev_index_put(&S.by_access, S.tokens[i].access, i);
        if (S.tokens[i].refresh[0]) dev_index_put(&S.by_refresh, S.tokens[i].refresh, i);
    }
    return 0;
}

/* Makes room for one more token in S.tokens and in the indexes; -1 when out of memory. */
static int dev_make_room(void)
{
    if (S.ntokens == S.cap) {
        size_t cap = S.cap ? S.cap * 2 : 64;
        dev_token *p = realloc(S.tokens, cap * sizeof *p);
        if (p == NULL) return -1;
        S.tokens = p;
        S.cap = cap;
    }
    if ((S.ntokens + 1) * 2 >= S.by_access.cap &&
        dev_reindex(S.by_access.cap ? S.by_access.cap * 2 : 256) != 0)
        return -1;
    return 0;
}

/* Draws t's access string and, for a user token, its refresh string: both new to the indexes
 * and different from each other. 160 random bits never collide in practice; this makes sure. */
static void dev_draw_strings(dev_token *t, int user)
{
    do
        dev_random_hex(t->access, DEV_TOKEN_CHARS);
    while (dev_find(t->access, 0) != NULL);
    if (!user) return;
    do
        dev_random_hex(t->refresh, DEV_TOKEN_CHARS);
    while (strcmp(t->refresh, t->access) == 0 || dev_find(t->refresh, 1) != NULL);
}

static char *dev_strndup_cap(const char *s)
{
    return strndup(s ? s : "", DEV_FIELD_CAP);
}

/* Issues a token (an APP token when username is NULL); the caller holds S.mu. All arguments
 * are copied. NULL when out of memory. */
dev_token *dev_issue(const char *username, const char *env_name, const char *protocol,
                     const char *need_new_token, const char *client_ip)
{
    if (dev_make_room() != 0) return NULL;
    dev_token *t = &S.tokens[S.ntokens];
    memset(t, 0, sizeof *t);
    dev_draw_strings(t, username != NULL);
    t->need_new_token = dev_strndup_cap(need_new_token);
    t->client_ip = dev_strndup_cap(client_ip);
    if (username != NULL) t->username = strdup(username);
    if (t->need_new_token == NULL || t->client_ip == NULL || (username != NULL && t->username == NULL)) {
        free(t->need_new_token);
        free(t->client_ip);
        free(t->username);
        return NULL;
    }
    snprintf(t->env_name, sizeof t->env_name, "%s", env_name ? env_name : "");
    t->protocol = protocol;
    t->issued_at = time(NULL);
    t->expires_at = t->issued_at + S.ttl;
    dev_index_put(&S.by_access, t->access, S.ntokens);
    if (t->refresh[0]) dev_index_put(&S.by_refresh, t->refresh, S.ntokens);
    S.ntokens++;
    return t;
}

/* Forgets every token (/__dev/reset?tokens=1); the memory is kept for the next ones. */
void dev_forget_tokens(void)
{
    for (size_t i = 0; i < S.ntokens; i++) {
        free(S.tokens[i].username);
        free(S.tokens[i].need_new_token);
        free(S.tokens[i].client_ip);
    }
    S.ntokens = 0;
    if (S.by_access.slot) memset(S.by_access.slot, 0, S.by_access.cap * sizeof(size_t));
    if (S.by_refresh.slot) memset(S.by_refresh.slot, 0, S.by_refresh.cap * sizeof(size_t));
}

/* Forgets every token and frees the memory that held them (at exit). */
void dev_free_tokens(void)
{
    dev_forget_tokens();
    free(S.tokens);
    free(S.by_access.slot);
    free(S.by_refresh.slot);
    S.tokens = NULL;
    S.by_access = S.by_refresh = (dev_index){NULL, 0};
    S.ntokens = S.cap = 0;
}
