/* SPDX-License-Identifier: MIT */
/* http_fail.h - the messages of a failed SSM call that name its hops (the service, and the
 * proxy with the setting or variable it came from) and, for TLS, the certificate's problem and
 * the setting that fixes it. Internal to http.c and http_fail.c. */
#ifndef BKOAUTH_SSM_HTTP_FAIL_H
#define BKOAUTH_SSM_HTTP_FAIL_H

#include "proxy.h"

#include "curl_dl.h"

/* A failed transfer, as the messages name it. */
typedef struct http_failure {
    CURLcode rc;
    long status;        /* of the status line that arrived, else 0 */
    const char *url;    /* may hold secrets: never in a message */
    char hp[720];       /* host:port, and " through the proxy at host:port (from VAR)" when one is used */
    const char *detail; /* libcurl's own words */
    char service[300];  /* the service's host:port */
    char proxy[400];    /* "the proxy at host:port (from VAR)"; "" when none is used */
    const char *var;    /* the proxy's setting or variable; NULL when none is used */
} http_failure;

/* Host and port of url for messages (no user info, no query). Writes "?" when unparsable. */
void http_host_port(const char *url, char *out, size_t size);
/* Names the hops of f (f->url set): the service, and the proxy p (if one is used). */
void http_failure_hops(const proxy_choice *p, http_failure *f);
/* No complete answer within timeout_ms: from which hop (the proxy, when no connection was made). */
bkoauth_code http_fail_timeout(long timeout_ms, CURL *c, const http_failure *f, bkoauth_error *err);
/* A TLS failure: whose certificate (the service's or an https:// proxy's), what is wrong with it
 * (unknown CA, self-signed, expired, another host name) and the setting that fixes it. */
bkoauth_code http_fail_tls(const proxy_choice *p, CURL *c, const http_failure *f, bkoauth_error *err);
/* The proxy p answered itself (status and reason phrase) instead of passing the request on: a
 * refusal of its credentials (401, 407) or another answer of its own. */
bkoauth_code http_fail_proxy_answer(const proxy_choice *p, const http_failure *f, long status,
                                    const char *reason, bkoauth_error *err);

#endif
