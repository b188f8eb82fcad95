/* SPDX-License-Identifier: MIT */
/* pq_dl.c - libpq loaded when the first PostgreSQL store is opened (pq_dl.h). */
#define BK_PQ_FUNCS_TABLE /* the table itself: the names stay the library's */
#include "pq_dl.h"

#include "dl.h"

bk_pq_api bk_pq;

BK_DL_NOTE(bk_pq_note, "[{\"feature\":\"postgresql\",\"description\":\"the PostgreSQL token store "
                       "(BKOAUTH_DATABASE_URL postgresql://)\","
                       "\"priority\":\"recommended\",\"soname\":[\"libpq.so.5\"]}]");

static int resolve(void *h, const char **missing)
{
#define BK_PQ_FUNCS_SYM(name)                                                                                \
    if (bk_dl_sym(h, #name, &bk_pq.name, sizeof bk_pq.name, missing) != 0) return -1;
    BK_PQ_FUNCS(BK_PQ_FUNCS_SYM)
#undef BK_PQ_FUNCS_SYM
    return 0;
}

static bk_dl_lib lib = BK_DL_LIB("libpq.so.5", "libpq5", "a postgresql:// token store (BKOAUTH_DATABASE_URL)",
                                 BKOAUTH_E_STORE, resolve);

bkoauth_code bk_pq_load(bkoauth_error *err)
{
    return bk_dl_load(&lib, err);
}
