/* SPDX-License-Identifier: MIT */
/* pq_dl.h - libpq, loaded when the first PostgreSQL store is opened (../dl.h). Included instead of
 * <libpq-fe.h> by the files that call libpq: the names they use are mapped onto the table bk_pq,
 * filled by bk_pq_load(). Internal to src/store/. */
#ifndef BKOAUTH_STORE_PQ_DL_H
#define BKOAUTH_STORE_PQ_DL_H

#include "../internal.h"

#include <libpq-fe.h>

/* The functions of libpq.so.5 the library calls. */
#define BK_PQ_FUNCS(X)                                                                                       \
    X(PQclear)                                                                                               \
    X(PQcmdTuples)                                                                                           \
    X(PQconnectdbParams)                                                                                     \
    X(PQconninfoFree)                                                                                        \
    X(PQconninfoParse)                                                                                       \
    X(PQconsumeInput)                                                                                        \
    X(PQerrorMessage)                                                                                        \
    X(PQfinish)                                                                                              \
    X(PQflush)                                                                                               \
    X(PQgetResult)                                                                                           \
    X(PQgetisnull)                                                                                           \
    X(PQgetvalue)                                                                                            \
    X(PQisBusy)                                                                                              \
    X(PQsetSingleRowMode)                                                                                    \
    X(PQreset)                                                                                               \
    X(PQntuples)                                                                                             \
    X(PQresultErrorField)                                                                                    \
    X(PQresultStatus)                                                                                        \
    X(PQsendQueryParams)                                                                                     \
    X(PQsetNoticeProcessor)                                                                                  \
    X(PQsocket)                                                                                              \
    X(PQstatus)

#define BK_PQ_FUNCS_MEMBER(name) __typeof__(&name) name;
typedef struct bk_pq_api {
    BK_PQ_FUNCS(BK_PQ_FUNCS_MEMBER)
} bk_pq_api;
#undef BK_PQ_FUNCS_MEMBER
extern bk_pq_api bk_pq;

/* Loads libpq (libpq.so.5) once per process. Thread-safe. BKOAUTH_OK, or BKOAUTH_E_STORE saying
 * which package to install; a failure is tried again by the next call. */
bkoauth_code bk_pq_load(bkoauth_error *err);

#ifndef BK_PQ_FUNCS_TABLE
#define PQclear (bk_pq.PQclear)
#define PQcmdTuples (bk_pq.PQcmdTuples)
#define PQconnectdbParams (bk_pq.PQconnectdbParams)
#define PQconninfoFree (bk_pq.PQconninfoFree)
#define PQconninfoParse (bk_pq.PQconninfoParse)
#define PQconsumeInput (bk_pq.PQconsumeInput)
#define PQerrorMessage (bk_pq.PQerrorMessage)
#define PQfinish (bk_pq.PQfinish)
#define PQflush (bk_pq.PQflush)
#define PQgetResult (bk_pq.PQgetResult)
#define PQgetisnull (bk_pq.PQgetisnull)
#define PQgetvalue (bk_pq.PQgetvalue)
#define PQisBusy (bk_pq.PQisBusy)
#define PQsetSingleRowMode (bk_pq.PQsetSingleRowMode)
#define PQreset (bk_pq.PQreset)
#define PQntuples (bk_pq.PQntuples)
#define PQresultErrorField (bk_pq.PQresultErrorField)
#define PQresultStatus (bk_pq.PQresultStatus)
#define PQsendQueryParams (bk_pq.PQsendQueryParams)
#define PQsetNoticeProcessor (bk_pq.PQsetNoticeProcessor)
#define PQsocket (bk_pq.PQsocket)
#define PQstatus (bk_pq.PQstatus)
#endif

#endif
