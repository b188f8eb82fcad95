/* SPDX-License-Identifier: MIT */
/* backends.c - the table of token-store backends that store_open() reads. A new backend adds its
 * line here (and its sources to CMakeLists.txt); it calls rows.c, pool.c and keys.c, never
 * store.c. The references to the open functions are strong ones on purpose, so that every
 * backend built is in a program linked with the static archive. */
#include "store.h"

static const store_backend backends[] = {
    {BK_STORE_SQLITE, "SQLite", NULL, store_sqlite_open},
#ifdef BKOAUTH_WITH_POSTGRESQL
    {BK_STORE_POSTGRES, "PostgreSQL", "BKOAUTH_WITH_POSTGRESQL", store_postgres_open},
#else
    {BK_STORE_POSTGRES, "PostgreSQL", "BKOAUTH_WITH_POSTGRESQL", NULL},
#endif
#ifdef BKOAUTH_WITH_MYSQL
    {BK_STORE_MYSQL, "MySQL", "BKOAUTH_WITH_MYSQL", store_mysql_open},
#else
    {BK_STORE_MYSQL, "MySQL", "BKOAUTH_WITH_MYSQL", NULL},
#endif
};

const store_backend *store_backend_of(int kind)
{
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i].kind == kind) return &backends[i];
    return NULL;
}
