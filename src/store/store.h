/* store.h - where tokens are saved: the table bkoauth_access_token in SQLite (sqlite.c) or
 * PostgreSQL (postgres.c), behind one small interface. A row is keyed by (env_name, user_id);
 * user_id NULL (or "" written by others) is the APP token. */
#ifndef BKOAUTH_STORE_H
#define BKOAUTH_STORE_H

#include "../internal.h"

typedef struct store store;

/* Called by store_renew inside the row's exclusive section, with the row as it is now
 * (current NULL when there is none). Sets *fresh to a new token to save in that row (ownership
 * passes to the store), or leaves it NULL to keep the row as is. An error return aborts the
 * section: nothing is changed and the error is passed through. */
typedef bkoauth_code (*store_renew_fn)(void *ctx, const bkoauth_token *current, bkoauth_token **fresh,
                                       bkoauth_error *err);

typedef struct store_ops {
    bkoauth_code (*get)(store *st, const char *env_name, const char *user_id, bkoauth_token **out,
                        bkoauth_error *err);
    bkoauth_code (*renew)(store *st, const char *env_name, const char *user_id, store_renew_fn fn, void *ctx,
                          bkoauth_token **out, bkoauth_error *err);
    bkoauth_code (*remove)(store *st, const char *env_name, const char *user_id, bkoauth_error *err);
    bkoauth_code (*list)(store *st, bkoauth_token ***out, size_t *count, bkoauth_error *err);
    void (*close)(store *st);
} store_ops;

/* Every backend's handle starts with this. */
struct store {
    const store_ops *ops;
    const bk_logger *logger;
};

/* Opens the store s names (s->store_kind, s->database_url) and creates the table and its
 * indexes when absent. s and logger are borrowed and must outlive the store. Thread-safe. */
store *store_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
store *store_sqlite_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
store *store_postgres_open(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);

/* The saved token of (env_name, user_id); user_id NULL or "" is the APP token.
 * None: BKOAUTH_E_TOKEN_NOT_EXIST. */
bkoauth_code store_get(store *st, const char *env_name, const char *user_id, bkoauth_token **out,
                       bkoauth_error *err);
/* Runs fn with the row locked against every other renewer (threads, processes, hosts), after
 * re-reading it; saves what fn gives (update in place, keeping id and created_at; insert when
 * absent) and commits. *out is the row after the section (the fresh or the current token).
 * When there is no row and fn gives nothing: BKOAUTH_E_TOKEN_NOT_EXIST. A crash inside leaves
 * the previous row intact. */
bkoauth_code store_renew(store *st, const char *env_name, const char *user_id, store_renew_fn fn, void *ctx,
                         bkoauth_token **out, bkoauth_error *err);
/* Saves token in its (env_name, user_id) row: store_renew with a fn that returns a copy. */
bkoauth_code store_put(store *st, const bkoauth_token *token, bkoauth_error *err);
bkoauth_code store_remove(store *st, const char *env_name, const char *user_id, bkoauth_error *err);
bkoauth_code store_list(store *st, bkoauth_token ***out, size_t *count, bkoauth_error *err);
void store_close(store *st);

#endif
