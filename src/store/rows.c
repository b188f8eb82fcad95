/* SPDX-License-Identifier: MIT */
/* rows.c - what the backends share to answer the same way: the list of rows they collect
 * (store_rows) and the names of Django's migrations. The backends call it, never store.c. */
#include "store.h"

#include <stdio.h>
#include <string.h>

void store_names_add(char *names, size_t size, const char *name)
{
    size_t used = strlen(names);
    if (name == NULL || (used >= 3 && strcmp(names + used - 3, "...") == 0)) return;
    size_t need = (used ? 2 : 0) + strlen(name) + 1;
    if (used + need <= size)
        snprintf(names + used, size - used, "%s%s", used ? ", " : "", name);
    else if (used + 4 <= size)
        memcpy(names + used, "...", 4);
}

bkoauth_code store_rows_room(store_rows *rows, bkoauth_error *err)
{
    if (rows->count < rows->cap) return BKOAUTH_OK;
    /* from 256 rows (2 KiB arrays): the smaller steps of a doubling would each leave a block in
     * the listing thread's glibc cache */
    size_t cap = rows->cap ? rows->cap * 2 : 256;
    bkoauth_token **items = bkoauth__pooled_realloc(rows->items, cap * sizeof *items);
    if (items == NULL) return err_nomem(err);
    rows->items = items;
    int64_t *ids = bkoauth__pooled_realloc(rows->ids, cap * sizeof *ids);
    if (ids == NULL) return err_nomem(err);
    rows->ids = ids;
    rows->cap = cap;
    return BKOAUTH_OK;
}

bkoauth_code store_rows_keep(store_rows *rows, const bk_logger *logger, bkoauth_code rc, int bad_row,
                             const bkoauth_error *why, bkoauth_error *err)
{
    if (rc == BKOAUTH_OK) {
        /* a list makes hundreds of tokens at once that live until the caller frees them: in glibc's
         * heap they would push the listing thread's arena up by the size of the list */
        rows->items[rows->count] = token_to_pool(rows->items[rows->count]);
        rows->count++;
        return BKOAUTH_OK;
    }
    if (bad_row) { /* one unreadable row does not hide the others */
        log_write(logger, BKOAUTH_LOG_WARNING, "listing tokens: %s; that row is left out", why->message);
        return BKOAUTH_OK;
    }
    if (err != NULL) *err = *why;
    return rc;
}

bkoauth_code store_rows_finish(store_rows *rows, bkoauth_code rc, bkoauth_token ***out, int64_t **ids,
                               size_t *count)
{
    if (rc != BKOAUTH_OK) {
        bkoauth_tokens_free(rows->items, rows->count);
        bkoauth__free(rows->ids);
    } else {
        *out = rows->items;
        *ids = rows->ids;
        *count = rows->count;
    }
    memset(rows, 0, sizeof *rows);
    return rc;
}
