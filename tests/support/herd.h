/* SPDX-License-Identifier: MIT */
/* herd.h - many callers released together on one token: PROCS processes x THREADS threads, each
 * process with its own client on one store. Used by the concurrency tests and bench_herd. */
#ifndef BKOAUTH_HERD_H
#define BKOAUTH_HERD_H

#include "bkoauth.h"
#include "devserver.h"

typedef enum herd_op {
    HERD_BY_USER, /* get_access_token_by_user(user) */
    HERD_APP,     /* get_app_access_token() */
    HERD_LOGIN,   /* get_access_token(request of user with cookie) */
    HERD_REFRESH  /* refresh_token(old) */
} herd_op;

typedef struct herd_spec {
    herd_op op;
    int procs;                   /* processes, each forked from the caller */
    int threads;                 /* threads per process */
    const char *const *settings; /* NAME, VALUE, ..., NULL: each caller process's client */
    const char *user;            /* for BY_USER and LOGIN */
    const char *cookie;          /* for LOGIN */
    const bkoauth_token *old;    /* for REFRESH */
} herd_spec;

typedef struct herd_result {
    int callers;       /* callers that reported */
    int ok;            /* callers that got a token that does not expire soon */
    int same;          /* 1 when every successful caller got the same access_token */
    char token[256];   /* the access_token of the first successful caller */
    char failure[512]; /* the first failure's message, "" when none */
    double seconds;    /* from release to the last caller's answer */
} herd_result;

/* A client from NAME, VALUE pairs; NULL with a message on stderr when impossible. */
bkoauth_client *herd_client(const char *const *settings);

/* Before a herd on tokens about to expire: with dev issuing tokens of 120 s, deletes the APP
 * token and user's, saves new ones (user logged in with cookie) through a client with settings
 * (whose EXPIRES_SECONDS makes them valid now), then sets dev's ttl to an hour for the renewals.
 * 0, or -1 with a message on stderr. */
int herd_prepare_expiring(devserver *dev, const char *const *settings, const char *user, const char *cookie);

/* Runs the herd; returns 0, or -1 when it could not be run (fork, pipe, client). */
int herd_run(const herd_spec *spec, herd_result *out);

#endif
