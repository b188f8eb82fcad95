/* SPDX-License-Identifier: MIT */
/* mysql_dl.c - the MariaDB connector loaded when the first MySQL store is opened (mysql_dl.h). */
#define BK_MYSQL_FUNCS_TABLE /* the table itself: the names stay the library's */
#include "mysql_dl.h"

#include "dl.h"

bk_mysql_api bk_mysql;

BK_DL_NOTE(bk_mysql_note, "[{\"feature\":\"mysql\",\"description\":\"the MySQL / MariaDB token store "
                          "(BKOAUTH_DATABASE_URL mysql://)\","
                          "\"priority\":\"recommended\",\"soname\":[\"libmariadb.so.3\"]}]");

static int resolve(void *h, const char **missing)
{
#define BK_MYSQL_FUNCS_SYM(name)                                                                             \
    if (bk_dl_sym(h, #name, &bk_mysql.name, sizeof bk_mysql.name, missing) != 0) return -1;
    BK_MYSQL_FUNCS(BK_MYSQL_FUNCS_SYM)
#undef BK_MYSQL_FUNCS_SYM
    return 0;
}

static bk_dl_lib lib = BK_DL_LIB("libmariadb.so.3", "libmariadb3",
                                 "a mysql:// token store (BKOAUTH_DATABASE_URL)", BKOAUTH_E_STORE, resolve);

bkoauth_code bk_mysql_load(bkoauth_error *err)
{
    return bk_dl_load(&lib, err);
}
