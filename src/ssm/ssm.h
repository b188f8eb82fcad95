/* ssm.h - the SSM token service, behind one small interface: fetch an APP token, fetch a user
 * token, refresh. ieod.c and ee.c implement the two wire protocols; http.c carries them. */
#ifndef BKOAUTH_SSM_H
#define BKOAUTH_SSM_H

#include "../internal.h"

/* What the service granted. All strings owned; refresh_token and scope are "" when absent. */
typedef struct ssm_grant {
    char *access_token;
    char *refresh_token;
    char *scope;
    int64_t expires_in;
} ssm_grant;
void ssm_grant_clear(ssm_grant *g);

typedef struct ssm_client ssm_client;

/* A client for s->protocol. s and logger are borrowed and must outlive it. Thread-safe. */
ssm_client *ssm_new(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
void ssm_free(ssm_client *c);

/* Each returns BKOAUTH_OK with *out filled, or BKOAUTH_E_TOKEN_API (http_status/api_code set
 * when known) with a message a person can act on; *out is then zeroed. */
bkoauth_code ssm_fetch_app(ssm_client *c, const char *env_name, ssm_grant *out, bkoauth_error *err);
bkoauth_code ssm_fetch_user(ssm_client *c, const char *env_name, const bk_kvlist *credentials,
                            const char *client_ip, ssm_grant *out, bkoauth_error *err);
bkoauth_code ssm_refresh(ssm_client *c, const char *env_name, const char *refresh_token, ssm_grant *out,
                         bkoauth_error *err);

#endif
