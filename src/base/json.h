/* SPDX-License-Identifier: MIT */
/* json.h - Jansson as the library uses it: parsing that tells an allocation failure apart from
 * bad JSON, dumping into memory of the library's own allocator (alloc.c), and dumping in the
 * layout of Python's json.dumps() (json.c). Internal. */
#ifndef BKOAUTH_JSON_H
#define BKOAUTH_JSON_H

#include "internal.h"

#include <jansson.h>

/* json_loadb(), and *oom set when an allocation failed during the parse (Jansson reports some of
 * those as syntax errors and silently drops bytes on others): the result is then NULL whatever
 * Jansson returned, and the caller reports BKOAUTH_E_NOMEM instead of bad input. Allocation
 * failures are seen when Jansson allocates through the library (bkoauth_set_allocators()). */
json_t *bkoauth__json_loadb(const char *text, size_t len, size_t flags, json_error_t *error, int *oom);

/* json_dumpb() into a new NUL-terminated string of the library's allocator (free it with
 * bkoauth__free()). NULL when out of memory. Use instead of json_dumps(), whose string belongs
 * to Jansson's allocator. */
char *bkoauth__json_dump(const json_t *json, size_t flags);

/* bkoauth__json_dump() with JSON_ENSURE_ASCII, then written as Python's json.dumps() writes it
 * (ensure_ascii): \uXXXX escapes in lower case, and DEL escaped as \u007f, like every character
 * outside ' '..'~'. The separators are the caller's flags' (Jansson's default ", " and ": " are
 * Python's). NULL when out of memory; a buffer freed on the way is wiped (json.c). */
char *bkoauth__json_dump_python(const json_t *json, size_t flags);

#endif
