/* store.c - the store interface: argument checks shared by every backend, and dispatch. */
#include "store.h"

#include <string.h>

#define STORE_MAX_USER 64   /* user_id varchar(64) */
#define STORE_MAX_TOKEN 255 /* access_token, refresh_token, env_name varchar(255) */

/* Both backends are always built (postgres.c is in the library). The reference is a strong
 * one on purpose: a weak reference would not pull postgres.o out of the static archive, and a
 * program linked with libbkoauth.a would then have no PostgreSQL store. */
store *store_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    if (s == NULL) {
        err_set(err, BKOAUTH_E_CONFIG, "token store: no settings");
        return NULL;
    }
    switch (s->store_kind) {
    case BK_STORE_POSTGRES:
        return store_postgres_open(s, logger, err);
    case BK_STORE_SQLITE:
        return store_sqlite_open(s, logger, err);
    default:
        err_set(err, BKOAUTH_E_CONFIG, "BKOAUTH_DATABASE_URL: unknown store kind %d", s->store_kind);
        return NULL;
    }
}

static bkoauth_code check_key(const char *env_name, const char *user_id, bkoauth_error *err)
{
    if (env_name == NULL || env_name[0] == '\0')
        return err_set(err, BKOAUTH_E_INVALID, "token store: env_name is empty");
    if (strlen(env_name) > STORE_MAX_TOKEN)
        return err_set(err, BKOAUTH_E_INVALID,
                       "env_name is %zu bytes long; the token table allows at most %d", strlen(env_name),
                       STORE_MAX_TOKEN);
    if (user_id != NULL && strlen(user_id) > STORE_MAX_USER)
        return err_set(err, BKOAUTH_E_INVALID, "user_id is %zu bytes long; the token table allows at most %d",
                       strlen(user_id), STORE_MAX_USER);
    return BKOAUTH_OK;
}

static const char *app_or_user(const char *user_id)
{
    return (user_id != NULL && user_id[0] != '\0') ? user_id : NULL;
}

bkoauth_code store_get(store *st, const char *env_name, const char *user_id, bkoauth_token **out,
                       bkoauth_error *err)
{
    *out = NULL;
    bkoauth_code rc = check_key(env_name, user_id, err);
    return rc != BKOAUTH_OK ? rc : st->ops->get(st, env_name, app_or_user(user_id), out, err);
}

/* Wraps the caller's renew function: what it gives must fit the table, and is saved as the row
 * of the key being renewed (env_name and user_id of the key, whatever fn put in the token),
 * keeping the row's created_at (now for a new row, unless the token brings its own). */
typedef struct checked {
    store_renew_fn fn;
    void *ctx;
    const char *env_name;
    const char *user_id; /* NULL: the APP */
} checked;

static size_t len0(const char *s)
{
    return s ? strlen(s) : 0;
}

static bkoauth_code checked_fn(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                               bkoauth_error *err)
{
    checked *c = ctx;
    *fresh = NULL;
    bkoauth_code rc = c->fn(c->ctx, current, fresh, err);
    if (rc != BKOAUTH_OK || *fresh == NULL) {
        if (rc != BKOAUTH_OK) {
            bkoauth_token_free(*fresh); /* an error gives nothing */
            *fresh = NULL;
        }
        return rc;
    }
    bkoauth_token *t = *fresh;
    *fresh = NULL;
    const char *bad = bk_empty(t->access_token)                   ? "an empty access_token"
                      : strlen(t->access_token) > STORE_MAX_TOKEN ? "an access_token longer than 255 bytes"
                      : len0(t->refresh_token) > STORE_MAX_TOKEN  ? "a refresh_token longer than 255 bytes"
                                                                  : NULL;
    if (bad != NULL) {
        bkoauth_token_free(t);
        return err_set(
            err, BKOAUTH_E_INVALID,
            "token store: cannot save %s (the table's column is varchar(255)); nothing was changed", bad);
    }
    int64_t created = current != NULL ? current->created_at : t->created_at != 0 ? t->created_at : bk_now();
    *fresh =
        token_make(t->access_token, t->refresh_token, t->scope, c->env_name, c->user_id, t->expires, created);
    bkoauth_token_free(t);
    return *fresh != NULL ? BKOAUTH_OK : err_nomem(err);
}

bkoauth_code store_renew(store *st, const char *env_name, const char *user_id, store_renew_fn fn, void *ctx,
                         bkoauth_token **out, bkoauth_error *err)
{
    *out = NULL;
    bkoauth_code rc = check_key(env_name, user_id, err);
    if (rc != BKOAUTH_OK) return rc;
    if (fn == NULL) return err_set(err, BKOAUTH_E_INVALID, "token store: no renew function");
    checked c = {fn, ctx, env_name, app_or_user(user_id)};
    return st->ops->renew(st, env_name, app_or_user(user_id), checked_fn, &c, out, err);
}

static bkoauth_code put_copy(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                             bkoauth_error *err)
{
    (void)current;
    *fresh = bkoauth_token_dup(ctx);
    return *fresh ? BKOAUTH_OK : err_nomem(err);
}

bkoauth_code store_put(store *st, const bkoauth_token *token, bkoauth_error *err)
{
    if (token == NULL) return err_set(err, BKOAUTH_E_INVALID, "token store: no token to save");
    bkoauth_token *out = NULL;
    bkoauth_code rc = store_renew(st, token->env_name, token->user_id, put_copy, (void *)token, &out, err);
    bkoauth_token_free(out);
    return rc;
}

bkoauth_code store_remove(store *st, const char *env_name, const char *user_id, bkoauth_error *err)
{
    bkoauth_code rc = check_key(env_name, user_id, err);
    return rc != BKOAUTH_OK ? rc : st->ops->remove(st, env_name, app_or_user(user_id), err);
}

bkoauth_code store_list(store *st, bkoauth_token ***out, size_t *count, bkoauth_error *err)
{
    *out = NULL;
    *count = 0;
    return st->ops->list(st, out, count, err);
}

void store_close(store *st)
{
    if (st != NULL) st->ops->close(st);
}
