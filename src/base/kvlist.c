/* SPDX-License-Identifier: MIT */
/* kvlist.c - lists of string pairs in a fixed order (the dict settings, a request's
 * credentials). The values may be secrets: they are wiped when freed. */
#include "internal.h"

void kvlist_clear(bk_kvlist *list)
{
    for (size_t i = 0; i < list->count; i++) {
        bk_wipe_free(list->items[i].key);
        bk_wipe_free(list->items[i].value);
    }
    bkoauth__free(list->items);
    list->items = NULL;
    list->count = 0;
}

int kvlist_add(bk_kvlist *list, const char *key, const char *value)
{
    bk_kv *items = bkoauth__realloc(list->items, (list->count + 1) * sizeof *items);
    if (items == NULL) return -1;
    list->items = items;
    char *k = bk_strdup(key), *v = bk_strdup(value);
    if (k == NULL || v == NULL) {
        bk_wipe_free(k);
        bk_wipe_free(v);
        return -1;
    }
    items[list->count].key = k;
    items[list->count].value = v;
    list->count++;
    return 0;
}
