/* SPDX-License-Identifier: MIT */
/* bkoauth-devserver: what its files share. Not installed, not part of the library.
 *
 * The files, one concern each, in layers: a file calls only the files of the layers below it.
 *   main.c       options, signals, the port file, starting and stopping the daemon
 *   route.c      the request handler: the body read, then /__dev/ or an SSM protocol
 *   protocols.c  the two SSM protocols, ieod and ee    dev_api.c  the /__dev/ endpoints
 *   faults.c     injected faults and their answers
 *   answers.c    the protocols' answer shapes          record.c   the counters, the last call
 *   tokens.c     the issued tokens and their index     http.c     answers, request values, text
 *   state.c      S and dev_stopping, the shared state (calls nothing)
 *
 * Threads: libmicrohttpd runs one thread per connection. All state lives in S and is read and
 * written only with S.mu held; no function declared here sleeps or does I/O while it holds it.
 * The functions marked "the caller holds S.mu" must be called with it held. */
#ifndef BKOAUTH_DEVSERVER_H
#define BKOAUTH_DEVSERVER_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define DEV_MAX_BODY (64 * 1024)     /* larger request bodies get HTTP 413 */
#define DEV_MAX_USERS 4096           /* --user options */
#define DEV_TOKEN_CHARS 40           /* hex characters of an access_token / refresh_token */
#define DEV_MAX_SECONDS 3153600000L  /* 100 years: the largest --ttl / --overlap */
#define DEV_MAX_DELAY_MS 600000L     /* 10 minutes: the largest slow fault */
#define DEV_MAX_FAULT_COUNT 1000000L /* the largest fault count */
#define DEV_FIELD_CAP 256            /* recorded need_new_token / bk_client_ip are cut there */
#define DEV_MAX_RAW (16 * 1024)      /* the largest body of a raw fault */

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct dev_token {
    char access[DEV_TOKEN_CHARS + 1];
    char refresh[DEV_TOKEN_CHARS + 1]; /* "" for APP tokens */
    char *username;                    /* owned; NULL for APP tokens */
    char env_name[8];                  /* "prod" / "test" (ieod), "" (ee) */
    const char *protocol;              /* static "ieod" / "ee" */
    char *need_new_token;              /* owned; as sent ("" when not sent) */
    char *client_ip;                   /* owned; bk_client_ip as sent ("" when not sent) */
    time_t issued_at, expires_at;
    time_t invalid_after; /* 0: valid until expires_at; set by its refresh (the overlap) */
    int refresh_used;
} dev_token;

/* Open-addressing index of token positions: slot holds position + 1, 0 is empty. */
typedef struct dev_index {
    size_t *slot;
    size_t cap; /* a power of two, > 2 * tokens, or 0 */
} dev_index;

typedef struct dev_fault {
    char kind[16]; /* "" when none */
    long remaining;
    long delay_ms;
    long code;
    char message[256];
    char *body;  /* raw: the answer's body (owned; a copy for each faulted call) */
    long status; /* raw: the answer's HTTP status */
} dev_fault;

typedef struct dev_state {
    pthread_mutex_t mu;
    const char *app_code, *app_secret; /* argv strings */
    char *cred[DEV_MAX_USERS];         /* owned */
    const char *user[DEV_MAX_USERS];   /* argv strings */
    int users;
    long ttl, overlap;
    dev_token *tokens; /* owned, ntokens used of cap */
    size_t ntokens, cap;
    dev_index by_access, by_refresh;
    long app_token, user_token, refresh, refresh_failed, faulted, total, ieod, ee;
    long in_flight, in_flight_peak; /* SSM calls being answered now, and the most at once */
    dev_fault fault;
    json_t *last; /* owned; the last SSM call, or NULL */
    int quiet;
} dev_state;

extern dev_state S;             /* state.c: set by the options, then shared under S.mu */
extern atomic_int dev_stopping; /* state.c: set on SIGINT/SIGTERM: slow faults stop sleeping */

/* One request: the raw URI (from the URI log callback) and the body read so far. */
typedef struct dev_req {
    char *uri;  /* owned */
    char *body; /* owned, NUL-terminated, len bytes */
    size_t len;
    int too_big;
    int started; /* the handler's first call (before any body) has been made */
} dev_req;

/* What an SSM call asks for. */
enum dev_kind { K_NONE, K_APP, K_USER, K_REFRESH };

/* ---- tokens.c ------------------------------------------------------------------------------- */

void dev_random_hex(char *out, size_t chars);
int dev_token_valid(const dev_token *t, time_t now);
dev_token *dev_find(const char *key, int by_refresh); /* the caller holds S.mu */
dev_token *dev_issue(const char *username, const char *env_name, const char *protocol,
                     const char *need_new_token, const char *client_ip); /* the caller holds S.mu */
void dev_forget_tokens(void);                                            /* the caller holds S.mu */
void dev_free_tokens(void);                                              /* the caller holds S.mu */

/* ---- answers.c ------------------------------------------------------------------------------ */

json_t *dev_failure(int ee, long code, const char *message);
json_t *dev_grant(int ee, const dev_token *t);

/* ---- record.c (the caller holds S.mu) ------------------------------------------------------- */

void dev_count_call(int ee, enum dev_kind kind);
void dev_record_last(struct MHD_Connection *c, const char *method, const char *url, const dev_req *rq);

/* ---- protocols.c ---------------------------------------------------------------------------- */

enum MHD_Result dev_ssm_call(struct MHD_Connection *c, const char *method, const char *url, dev_req *rq);

/* ---- faults.c ------------------------------------------------------------------------------- */

json_t *dev_set_fault(struct MHD_Connection *c, unsigned *status); /* the caller holds S.mu */
void dev_clear_fault(void);                                        /* the caller holds S.mu */
void dev_take_fault(dev_fault *f);                                 /* the caller holds S.mu */
void dev_sleep_ms(long ms);
enum MHD_Result dev_send_fault(struct MHD_Connection *c, const dev_fault *f, int ee, long ttl,
                               const char *method, const dev_req *rq);

/* ---- dev_api.c ------------------------------------------------------------------------------ */

enum MHD_Result dev_call(struct MHD_Connection *c, const char *method, const char *url);

/* ---- http.c --------------------------------------------------------------------------------- */

json_t *dev_text(const char *s, size_t n);
int dev_parse_long(const char *s, long lo, long hi, long *out);
int dev_is_utf8(const char *s);
int dev_streq(const char *a, const char *b);
const char *dev_arg(struct MHD_Connection *c, const char *name);
const char *dev_header(struct MHD_Connection *c, const char *name);
enum MHD_Result dev_send_text(struct MHD_Connection *c, unsigned status, const char *type, const char *text);
enum MHD_Result dev_send_json(struct MHD_Connection *c, unsigned status, json_t *j);
enum MHD_Result dev_send_message(struct MHD_Connection *c, unsigned status, const char *message);

/* ---- route.c -------------------------------------------------------------------------------- */

enum MHD_Result dev_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *upload, size_t *upload_size, void **con_cls);
void *dev_log_uri(void *cls, const char *uri, struct MHD_Connection *c);
void dev_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);

#endif
