/* SPDX-License-Identifier: MIT */
/* http.h - the HTTP carrier of the SSM layer (libcurl): one request, one response, a small pool
 * of easy handles so connections are reused across calls and threads. Internal to src/ssm/. */
#ifndef BKOAUTH_SSM_HTTP_H
#define BKOAUTH_SSM_HTTP_H

#include "../internal.h"

/* Responses larger than this are an error (never buffered beyond it). */
#define HTTP_MAX_RESPONSE (1024L * 1024L)
/* Response headers beyond this many bytes are an error too. */
#define HTTP_MAX_HEADERS (64 * 1024)

typedef struct http_client http_client;

/* A new carrier using s->timeout_ms, s->tls_verify, s->ca_file, s->ca_path, s->proxy and
 * s->no_proxy (verification off is logged at once: http_announce). The proxy of s->api_url is
 * chosen here, once, from the settings and the environment as they are now (proxy.c). s and logger are
 * borrowed and must outlive it. Initialises libcurl once per process (thread-safe). Returns NULL with err
 * filled (BKOAUTH_E_NOMEM or BKOAUTH_E_TOKEN_API when libcurl cannot start). Thread-safe. */
http_client *http_new(const bk_settings *s, const bk_logger *logger, bkoauth_error *err);
/* Logs what an operator must know of the carrier's settings, at any log level except off:
 * BKOAUTH_TLS_VERIFY false. http_new() calls it; again for a logger set later. */
void http_announce(const http_client *h);
/* " through the proxy http://user:***@host:port (from https_proxy)" when the calls go through a
 * proxy, else "": for the messages of the layer above. out (size bytes) is returned. */
const char *http_route(const http_client *h, char *out, size_t size);
/* Frees the carrier and closes its connections. No other thread may be using it. NULL is fine. */
void http_free(http_client *h);
/* In a child after fork(): forgets (without closing) the parent's idle handles. */
void http_after_fork(http_client *h);

/* One request. Every pointer is borrowed for the duration of http_perform(). */
typedef struct http_request {
    const char *method;         /* "GET" or "POST" */
    const char *url;            /* full URL, query string included; may hold secrets: never logged */
    const char *const *headers; /* "Name: value" lines, header_count of them; may hold secrets */
    size_t header_count;
    const char *body; /* POST body or NULL */
    size_t body_len;
} http_request;

/* What the server answered. body is owned (NUL-terminated, len bytes, may contain NULs);
 * free with http_response_clear(). */
typedef struct http_response {
    long status;
    char *body;
    size_t len;
    /* an allocation failed inside libcurl during the transfer, which libcurl got over: it may
     * have sent the request without a part (libcurl drops a query it cannot copy), so a refusal
     * is to be reported as out of memory rather than believed */
    int alloc_failed;
} http_response;
void http_response_clear(http_response *r);

/* Performs req, through the proxy chosen by http_new() (its password in the scrub's scope for the
 * call). BKOAUTH_OK when the server answered with a complete response (any status, the caller
 * judges it; an answer a proxy gave itself instead of passing the request on is a failure that
 * names the proxy); resp is then filled. Otherwise BKOAUTH_E_TOKEN_API (or BKOAUTH_E_NOMEM)
 * with a message saying what failed (connection refused to host:port, timeout after N ms, TLS
 * failure, truncated or too large response) and what to do, without the URL's query; resp is
 * then empty, except err->http_status is set when a status line had arrived. */
bkoauth_code http_perform(http_client *h, const http_request *req, http_response *resp, bkoauth_error *err);

#endif
