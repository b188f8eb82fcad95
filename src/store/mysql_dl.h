/* SPDX-License-Identifier: MIT */
/* mysql_dl.h - the MariaDB connector, loaded when the first MySQL store is opened (../dl.h).
 * Included instead of <mysql.h> by the files that call it: the names they use are mapped onto the
 * table bk_mysql, filled by bk_mysql_load() (mysql_library_init is mysql.h's name of
 * mysql_server_init). Internal to src/store/. */
#ifndef BKOAUTH_STORE_MYSQL_DL_H
#define BKOAUTH_STORE_MYSQL_DL_H

#include "../internal.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

/* The functions of libmariadb.so.3 the library calls. */
#define BK_MYSQL_FUNCS(X)                                                                                    \
    X(mysql_close)                                                                                           \
    X(mysql_commit)                                                                                          \
    X(mysql_errno)                                                                                           \
    X(mysql_error)                                                                                           \
    X(mysql_fetch_row)                                                                                       \
    X(mysql_free_result)                                                                                     \
    X(mysql_get_socket)                                                                                      \
    X(mysql_init)                                                                                            \
    X(mysql_server_init)                                                                                     \
    X(mysql_options)                                                                                         \
    X(mysql_real_connect)                                                                                    \
    X(mysql_real_query)                                                                                      \
    X(mysql_rollback)                                                                                        \
    X(mysql_stmt_bind_param)                                                                                 \
    X(mysql_stmt_bind_result)                                                                                \
    X(mysql_stmt_close)                                                                                      \
    X(mysql_stmt_errno)                                                                                      \
    X(mysql_stmt_error)                                                                                      \
    X(mysql_stmt_execute)                                                                                    \
    X(mysql_stmt_fetch)                                                                                      \
    X(mysql_stmt_fetch_column)                                                                               \
    X(mysql_stmt_free_result)                                                                                \
    X(mysql_stmt_init)                                                                                       \
    X(mysql_stmt_num_rows)                                                                                   \
    X(mysql_stmt_prepare)                                                                                    \
    X(mysql_stmt_store_result)                                                                               \
    X(mysql_store_result)

#define BK_MYSQL_FUNCS_MEMBER(name) __typeof__(&name) name;
typedef struct bk_mysql_api {
    BK_MYSQL_FUNCS(BK_MYSQL_FUNCS_MEMBER)
} bk_mysql_api;
#undef BK_MYSQL_FUNCS_MEMBER
extern bk_mysql_api bk_mysql;

/* Loads the MariaDB connector (libmariadb.so.3) once per process. Thread-safe. BKOAUTH_OK, or
 * BKOAUTH_E_STORE saying which package to install; a failure is tried again by the next call. */
bkoauth_code bk_mysql_load(bkoauth_error *err);

#ifndef BK_MYSQL_FUNCS_TABLE
#define mysql_close (bk_mysql.mysql_close)
#define mysql_commit (bk_mysql.mysql_commit)
#define mysql_errno (bk_mysql.mysql_errno)
#define mysql_error (bk_mysql.mysql_error)
#define mysql_fetch_row (bk_mysql.mysql_fetch_row)
#define mysql_free_result (bk_mysql.mysql_free_result)
#define mysql_get_socket (bk_mysql.mysql_get_socket)
#define mysql_init (bk_mysql.mysql_init)
#define mysql_server_init (bk_mysql.mysql_server_init)
#define mysql_options (bk_mysql.mysql_options)
#define mysql_real_connect (bk_mysql.mysql_real_connect)
#define mysql_real_query (bk_mysql.mysql_real_query)
#define mysql_rollback (bk_mysql.mysql_rollback)
#define mysql_stmt_bind_param (bk_mysql.mysql_stmt_bind_param)
#define mysql_stmt_bind_result (bk_mysql.mysql_stmt_bind_result)
#define mysql_stmt_close (bk_mysql.mysql_stmt_close)
#define mysql_stmt_errno (bk_mysql.mysql_stmt_errno)
#define mysql_stmt_error (bk_mysql.mysql_stmt_error)
#define mysql_stmt_execute (bk_mysql.mysql_stmt_execute)
#define mysql_stmt_fetch (bk_mysql.mysql_stmt_fetch)
#define mysql_stmt_fetch_column (bk_mysql.mysql_stmt_fetch_column)
#define mysql_stmt_free_result (bk_mysql.mysql_stmt_free_result)
#define mysql_stmt_init (bk_mysql.mysql_stmt_init)
#define mysql_stmt_num_rows (bk_mysql.mysql_stmt_num_rows)
#define mysql_stmt_prepare (bk_mysql.mysql_stmt_prepare)
#define mysql_stmt_store_result (bk_mysql.mysql_stmt_store_result)
#define mysql_store_result (bk_mysql.mysql_store_result)
#endif

#endif
