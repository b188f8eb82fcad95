/* http.c - the HTTP carrier of the SSM layer, over libcurl.
 *
 * libcurl is initialised once per process, with the library's allocators (alloc.c); a failed
 * initialisation is tried again by the next client. Each http_client keeps a small free list
 * of easy handles; a handle keeps its live connections when it goes back to the list
 * (curl_easy_reset keeps them), so consecutive calls, from any thread, reuse connections. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Idle easy handles kept per client; more threads at once simply create more, the surplus is
 * closed when it comes back. */
#define HTTP_POOL_MAX 16

struct http_client {
    const bk_settings *s;    /* borrowed */
    const bk_logger *logger; /* borrowed */
    pthread_mutex_t lock;    /* guards idle/nidle */
    CURL *idle[HTTP_POOL_MAX];
    size_t nidle;
    atomic_flag tls_warned; /* set once the "TLS verification is off" warning went out */
};

static pthread_mutex_t http_init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool http_init_done;

/* libcurl's process-wide initialisation, once it succeeds (a failure, such as running out of
 * memory, is not remembered). */
static bkoauth_code http_global_init(bkoauth_error *err)
{
    if (atomic_load_explicit(&http_init_done, memory_order_acquire)) return BKOAUTH_OK;
    pthread_mutex_lock(&http_init_lock);
    bkoauth_code rc = BKOAUTH_OK;
    if (!atomic_load_explicit(&http_init_done, memory_order_relaxed)) {
        rc = bkoauth__curl_global_init(err);
        if (rc == BKOAUTH_OK) atomic_store_explicit(&http_init_done, 1, memory_order_release);
    }
    pthread_mutex_unlock(&http_init_lock);
    return rc;
}

http_client *http_new(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    if (http_global_init(err) != BKOAUTH_OK) return NULL;
    http_client *h = bkoauth__calloc(1, sizeof *h);
    if (h == NULL) {
        err_nomem(err);
        return NULL;
    }
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        bkoauth__free(h);
        err_set(err, BKOAUTH_E_NOMEM, "cannot create a mutex for the HTTP connection pool");
        return NULL;
    }
    h->s = s;
    h->logger = logger;
    atomic_flag_clear(&h->tls_warned);
    return h;
}

void http_free(http_client *h)
{
    if (h == NULL) return;
    for (size_t i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    pthread_mutex_destroy(&h->lock);
    bkoauth__free(h);
}

void http_after_fork(http_client *h)
{
    /* the idle handles hold the parent's connections (and TLS sessions): closing them here would
     * end the parent's; they are left as they are, and new ones made */
    h->nidle = 0;
    pthread_mutex_init(&h->lock, NULL);
}

void http_response_clear(http_response *r)
{
    if (r == NULL) return;
    bkoauth__wipe_free(r->body, r->len); /* a grant: tokens */
    r->body = NULL;
    r->len = 0;
    r->status = 0;
    r->alloc_failed = 0;
}

/* An idle handle, or a new one; NULL on OOM. */
static CURL *http_acquire(http_client *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->lock);
    if (h->nidle > 0) c = h->idle[--h->nidle];
    pthread_mutex_unlock(&h->lock);
    if (c == NULL) c = curl_easy_init();
    return c;
}

/* Back to the free list (its connections stay open), or closed when the list is full or the
 * handle is not to be trusted again (keep 0: a transfer failed or ran out of memory midway and
 * may have left its connection in any state). */
static void http_release(http_client *h, CURL *c, int keep)
{
    if (keep) {
        /* curl_easy_reset() copies default strings: one that ran out of memory leaves the handle
         * half set up, and it says nothing */
        unsigned long failed = bkoauth__alloc_failures();
        curl_easy_reset(c);
        keep = bkoauth__alloc_failures() == failed;
    }
    if (!keep) {
        curl_easy_cleanup(c);
        return;
    }
    pthread_mutex_lock(&h->lock);
    if (h->nidle < HTTP_POOL_MAX) {
        h->idle[h->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    if (c != NULL) curl_easy_cleanup(c);
}

typedef struct http_sink {
    bk_buf buf;
    int too_large;
} http_sink;

static size_t http_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_sink *sink = userdata;
    size_t n = size * nmemb;
    if (n > (size_t)HTTP_MAX_RESPONSE || sink->buf.len + n > (size_t)HTTP_MAX_RESPONSE) {
        sink->too_large = 1;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    buf_append(&sink->buf, data, n);
    return sink->buf.oom ? 0 : n;
}

/* Zeroes then frees a header list (lines may hold the app secret). */
static void http_slist_wipe_free(struct curl_slist *list)
{
    for (struct curl_slist *p = list; p != NULL; p = p->next)
        if (p->data != NULL) bkoauth__wipe(p->data, strlen(p->data));
    curl_slist_free_all(list);
}

/* Host and port of url for messages (no user info, no query). Writes "?" when unparsable. */
static void http_host_port(const char *url, char *out, size_t size)
{
    snprintf(out, size, "?");
    CURLU *u = curl_url();
    if (u == NULL) return;
    char *host = NULL, *port = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        snprintf(out, size, "%s:%s", host, port);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

static int http_is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Turns a failed transfer into a message a person can act on. oom: an allocation failed
 * during the transfer (libcurl may report that under another code). */
static bkoauth_code http_fail(http_client *h, CURL *c, CURLcode rc, const http_sink *sink, const char *url,
                              const char *errbuf, int oom, bkoauth_error *err)
{
    if (oom || sink->buf.oom || rc == CURLE_OUT_OF_MEMORY)
        return err_set(err, BKOAUTH_E_NOMEM, "out of memory during the HTTP request to the SSM service");
    char hp[300];
    http_host_port(url, hp, sizeof hp);
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    bkoauth_code code = BKOAUTH_E_TOKEN_API;

    if (sink->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        err_set(
            err, code,
            "the response from %s is larger than the %ld-byte limit; is OAUTH_API_URL pointing at the SSM "
            "service?",
            hp, HTTP_MAX_RESPONSE);
    } else if (rc == CURLE_COULDNT_CONNECT) {
        long oserr = 0;
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
        if (oserr == ECONNREFUSED)
            err_set(err, code,
                    "connection refused by %s: is the SSM service running there, and is OAUTH_API_URL right?",
                    hp);
        else
            err_set(err, code, "cannot connect to %s (%s): check OAUTH_API_URL and the network", hp, detail);
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        err_set(err, code, "cannot resolve the host of %s (%s): check OAUTH_API_URL and DNS", hp, detail);
    } else if (rc == CURLE_COULDNT_RESOLVE_PROXY) {
        err_set(err, code, "cannot resolve the proxy (%s): check the http_proxy/https_proxy environment",
                detail);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        err_set(
            err, code,
            "timeout: %s gave no complete answer within %ld ms (BKOAUTH_TIMEOUT_MS); retry later, or raise "
            "BKOAUTH_TIMEOUT_MS if the service is just slow",
            hp, h->s->timeout_ms);
    } else if (http_is_tls_error(rc)) {
        err_set(
            err, code,
            "TLS failure with %s (%s): check the CA bundle given in BKOAUTH_CA_FILE, or, for testing only, "
            "set BKOAUTH_TLS_VERIFY=false",
            hp, detail);
    } else if (rc == CURLE_PARTIAL_FILE) {
        err_set(
            err, code,
            "the response from %s was truncated: the connection closed before the whole body arrived (%s); "
            "retry later",
            hp, detail);
    } else if (rc == CURLE_GOT_NOTHING) {
        err_set(err, code, "%s closed the connection without answering; retry later", hp);
    } else if (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) {
        err_set(err, code, "the connection to %s broke (%s); retry later", hp, detail);
    } else if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        err_set(err, code, "OAUTH_API_URL must start with http:// or https:// (%s)", detail);
    } else if (rc == CURLE_URL_MALFORMAT) {
        err_set(err, code, "OAUTH_API_URL is not a valid URL (%s)", detail);
    } else {
        err_set(err, code, "HTTP request to %s failed: %s (curl error %d)", hp, detail, (int)rc);
    }
    if (err != NULL && code == BKOAUTH_E_TOKEN_API && status > 0) err->http_status = (int)status;
    return code;
}

bkoauth_code http_perform(http_client *h, const http_request *req, http_response *resp, bkoauth_error *err)
{
    resp->status = 0;
    resp->body = NULL;
    resp->len = 0;
    resp->alloc_failed = 0;
    if (h->s->tls_verify == 0 && !atomic_flag_test_and_set(&h->tls_warned))
        log_write(
            h->logger, BKOAUTH_LOG_WARNING,
            "BKOAUTH_TLS_VERIFY is false: TLS verification is off, the SSM service's certificate is not "
            "checked and anyone on the network path can impersonate it");

    unsigned long failed = bkoauth__alloc_failures();
    CURL *c = http_acquire(h);
    if (c == NULL) return err_nomem(err);

    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    http_sink sink = {{NULL, 0, 0, 0, 1}, 0}; /* the answer holds tokens */
    struct curl_slist *headers = NULL;
    int oom = 0;
    for (size_t i = 0; i < req->header_count && !oom; i++) {
        struct curl_slist *n = curl_slist_append(headers, req->headers[i]);
        if (n == NULL)
            oom = 1;
        else
            headers = n;
    }
    if (!oom && req->body != NULL) {
        /* no "Expect: 100-continue" round trip for larger bodies */
        struct curl_slist *n = curl_slist_append(headers, "Expect:");
        if (n == NULL)
            oom = 1;
        else
            headers = n;
    }
    if (oom) {
        http_slist_wipe_free(headers);
        http_release(h, c, 1);
        return err_nomem(err);
    }

    /* Options that libcurl copies allocate: one that could not be set (the CA bundle, the
     * allowed protocols) must never pass silently, so their results are checked. */
    long timeout = h->s->timeout_ms > 0 ? h->s->timeout_ms : 10000;
    int setopt_oom = curl_easy_setopt(c, CURLOPT_URL, req->url) == CURLE_OUT_OF_MEMORY;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    setopt_oom |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OUT_OF_MEMORY;
    setopt_oom |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OUT_OF_MEMORY;
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->s->tls_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->s->tls_verify ? 2L : 0L);
    if (!bk_empty(h->s->ca_file))
        setopt_oom |= curl_easy_setopt(c, CURLOPT_CAINFO, h->s->ca_file) == CURLE_OUT_OF_MEMORY;
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_RESPONSE);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    setopt_oom |=
        curl_easy_setopt(c, CURLOPT_USERAGENT, "libbkoauth/" BKOAUTH_VERSION_STRING) == CURLE_OUT_OF_MEMORY;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (req->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            setopt_oom |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OUT_OF_MEMORY;
    } else if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        setopt_oom |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OUT_OF_MEMORY;
    }

    bkoauth_code code = BKOAUTH_OK;
    if (setopt_oom || bkoauth__alloc_failures() != failed) {
        code = err_set(err, BKOAUTH_E_NOMEM, "out of memory preparing the HTTP request to the SSM service");
    } else {
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
            code = http_fail(h, c, rc, &sink, req->url, errbuf, bkoauth__alloc_failures() != failed, err);
        } else if (sink.buf.oom) {
            code = err_set(err, BKOAUTH_E_NOMEM, "out of memory reading the SSM service's answer");
        } else {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
            resp->alloc_failed = bkoauth__alloc_failures() != failed;
            if (sink.buf.data == NULL) { /* empty body: still a string */
                sink.buf.data = bkoauth__calloc(1, 1);
                if (sink.buf.data == NULL) code = err_nomem(err);
            }
            if (code == BKOAUTH_OK) {
                resp->body = sink.buf.data;
                resp->len = sink.buf.len;
                sink.buf.data = NULL;
            }
        }
    }
    buf_free(&sink.buf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    http_slist_wipe_free(headers);
    http_release(h, c, code == BKOAUTH_OK && !resp->alloc_failed);
    return code;
}
