/* SPDX-License-Identifier: MIT */
/* http.c - the HTTP carrier of the SSM layer, over libcurl.
 *
 * libcurl is loaded and initialised once per process, at the first call (curl_dl.c): a client
 * that never calls the SSM service never maps it. The proxy is chosen then too (libcurl reads the
 * service's URL), from the settings and the environment as they were when the client was made.
 * Each http_client keeps a free list of easy handles; a handle keeps its live connections when it
 * goes back to the list (curl_easy_reset keeps them), so consecutive calls reuse connections. A
 * handle goes back to the thread that used it last: libcurl frees, at the next transfer and at
 * the reset, blocks that the handle's previous transfer allocated, and a block freed by another
 * thread than the one that allocated it stays in that thread's glibc cache (tcache) while the
 * first thread allocates anew, which made a long-running process grow (bench/bench_soak). */
#include "http.h"
#include "http_fail.h"
#include "proxy.h"

#include "curl_dl.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Idle easy handles kept per client: about one per thread that calls the service (each thread
 * takes back its own; see above); with more threads than this, the least recently used handle is
 * closed to make room. */
#define HTTP_POOL_MAX 32
/* libcurl's receive buffer, bytes: its minimum (see http_set_options) */
#define HTTP_RECV_BUFFER 1024L

struct http_client {
    const bk_settings *s;             /* borrowed */
    const bk_logger *logger;          /* borrowed */
    pthread_mutex_t lock;             /* guards idle/owner/nidle */
    CURL *idle[HTTP_POOL_MAX];        /* the least recently used first */
    const void *owner[HTTP_POOL_MAX]; /* the thread that used idle[i] last (http_thread_id) */
    size_t nidle;
    proxy_environ env;          /* the proxy variables of the environment when the client was made */
    pthread_mutex_t ready_lock; /* held while the first call readies the client */
    atomic_bool ready;          /* libcurl loaded and the proxy chosen: proxy is read-only from now */
    proxy_choice proxy;         /* the proxy of OAUTH_API_URL, chosen once (proxy.c) */
    int via_http_proxy;         /* the proxy is an HTTP(S) proxy and the service is http: it answers for it */
};

/* The scheme and host of url as libcurl takes them (an IPv6 host without its brackets), for the
 * choice of the proxy. 0, or -1 when url cannot be read (libcurl will say why at the call). */
static int http_scheme_host(const char *url, char *scheme, size_t ssize, char *host, size_t hsize)
{
    CURLU *u = curl_url();
    char *sc = NULL, *ho = NULL;
    int rc = -1;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &sc, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &ho, 0) == CURLUE_OK) {
        size_t n = strlen(ho);
        if (ho[0] == '[' && n >= 2 && ho[n - 1] == ']')
            snprintf(host, hsize, "%.*s", (int)(n - 2), ho + 1);
        else
            snprintf(host, hsize, "%s", ho);
        snprintf(scheme, ssize, "%s", sc);
        for (char *p = scheme; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        rc = 0;
    }
    curl_free(sc);
    curl_free(ho);
    curl_url_cleanup(u);
    return rc;
}

/* Chooses the proxy of s->api_url (none when it is not set or not an http(s) URL). */
static bkoauth_code http_choose_proxy(http_client *h, bkoauth_error *err)
{
    char scheme[16], host[300];
    const bk_settings *s = h->s;
    if (bk_empty(s->api_url) || http_scheme_host(s->api_url, scheme, sizeof scheme, host, sizeof host) != 0 ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        return BKOAUTH_OK;
    bkoauth_code rc = proxy_choose_in(&h->env, scheme, host, s->proxy, s->no_proxy, &h->proxy, err);
    if (rc != BKOAUTH_OK || h->proxy.url == NULL || h->proxy.problem != NULL) return rc;
    int http_proxy = strncmp(h->proxy.parsed.scheme, "socks", 5) != 0;
    h->via_http_proxy = http_proxy && strcmp(scheme, "http") == 0;
    return BKOAUTH_OK;
}

http_client *http_new(const bk_settings *s, const bk_logger *logger, bkoauth_error *err)
{
    http_client *h = bkoauth__calloc(1, sizeof *h);
    if (h == NULL) {
        err_nomem(err);
        return NULL;
    }
    if (pthread_mutex_init(&h->lock, NULL) != 0 || pthread_mutex_init(&h->ready_lock, NULL) != 0) {
        bkoauth__free(h); /* glibc's mutexes hold nothing to destroy */
        err_set(err, BKOAUTH_E_NOMEM, "cannot create a mutex for the HTTP connection pool");
        return NULL;
    }
    h->s = s;
    h->logger = logger;
    if (proxy_environ_take(&h->env, err) != BKOAUTH_OK) {
        http_free(h);
        return NULL;
    }
    http_announce(h);
    return h;
}

static void http_announce_proxy(const http_client *h);

/* Readies h at its first call, once: libcurl loaded, the proxy chosen (and logged). A failure
 * (libcurl not installed, out of memory) is not remembered: the next call tries again. */
static bkoauth_code http_ready(http_client *h, bkoauth_error *err)
{
    if (atomic_load_explicit(&h->ready, memory_order_acquire)) return BKOAUTH_OK;
    bkoauth_code rc = bk_curl_load(err);
    if (rc != BKOAUTH_OK) return rc;
    int made = 0;
    pthread_mutex_lock(&h->ready_lock);
    if (!atomic_load_explicit(&h->ready, memory_order_relaxed)) {
        proxy_choice_clear(&h->proxy);
        h->via_http_proxy = 0;
        rc = http_choose_proxy(h, err);
        made = rc == BKOAUTH_OK;
        if (made) atomic_store_explicit(&h->ready, 1, memory_order_release);
    }
    pthread_mutex_unlock(&h->ready_lock);
    if (made) http_announce_proxy(h);
    return rc;
}

void http_announce(const http_client *h)
{
    /* at any log level but off: the operator must know at once, not at the first call */
    if (h != NULL && h->s->tls_verify == 0)
        log_always(
            h->logger, BKOAUTH_LOG_WARNING,
            "BKOAUTH_TLS_VERIFY is false: TLS verification is off, the SSM service's certificate is not "
            "checked and anyone on the network path can impersonate it");
    if (h != NULL && atomic_load_explicit(&h->ready, memory_order_acquire)) http_announce_proxy(h);
}

/* The proxy chosen at the first call, at info (a warning when it cannot be used). */
static void http_announce_proxy(const http_client *h)
{
    char via[400];
    const proxy_choice *p = &h->proxy;
    if (p->url != NULL && p->problem != NULL)
        log_write(h->logger, BKOAUTH_LOG_WARNING,
                  "the proxy in %s (%s) cannot be used: %s; every SSM call fails until %s is fixed (or "
                  "BKOAUTH_PROXY names the proxy, or none)",
                  p->source, p->shown, p->problem, p->source);
    else if (p->url != NULL)
        log_write(h->logger, BKOAUTH_LOG_INFO, "SSM calls go through %s", proxy_describe(p, via, sizeof via));
    else if (p->source != NULL)
        log_write(h->logger, BKOAUTH_LOG_INFO, "SSM calls go to the service directly (%s says so)",
                  p->source);
}

const char *http_route(const http_client *h, char *out, size_t size)
{
    char via[400];
    if (h == NULL || !atomic_load_explicit(&h->ready, memory_order_acquire) || h->proxy.url == NULL)
        snprintf(out, size, "%s", "");
    else
        snprintf(out, size, " through %s", proxy_describe(&h->proxy, via, sizeof via));
    return out;
}

void http_free(http_client *h)
{
    if (h == NULL) return;
    for (size_t i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->ready_lock);
    proxy_choice_clear(&h->proxy);
    proxy_environ_clear(&h->env);
    bkoauth__free(h);
}

void http_after_fork(http_client *h)
{
    /* the idle handles hold the parent's connections (and TLS sessions): closing them here would
     * end the parent's; they are left as they are, and new ones made */
    h->nidle = 0;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->ready_lock, NULL);
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

/* This thread, as an address unique among the live threads. */
static const void *http_thread_id(void)
{
    static _Thread_local char mark;
    return &mark;
}

/* Takes idle[i] out of the list, keeping the order of the others. Under h->lock. */
static CURL *http_take_idle(http_client *h, size_t i)
{
    CURL *c = h->idle[i];
    memmove(&h->idle[i], &h->idle[i + 1], (h->nidle - i - 1) * sizeof h->idle[0]);
    memmove(&h->owner[i], &h->owner[i + 1], (h->nidle - i - 1) * sizeof h->owner[0]);
    h->nidle--;
    return c;
}

/* The idle handle this thread used last, or a new one (never another thread's: see the top of
 * this file); NULL on OOM. */
static CURL *http_acquire(http_client *h)
{
    CURL *c = NULL;
    const void *me = http_thread_id();
    pthread_mutex_lock(&h->lock);
    for (size_t i = h->nidle; i-- > 0;)
        if (h->owner[i] == me) {
            c = http_take_idle(h, i);
            break;
        }
    pthread_mutex_unlock(&h->lock);
    if (c == NULL) c = curl_easy_init();
    return c;
}

/* Back to the free list as this thread's (its connections stay open; when the list is full its
 * least recently used handle is closed), or closed when the handle is not to be trusted again (keep 0: an
 * allocation failed midway and may have left it half set up). A transfer that failed otherwise keeps its
 * handle: libcurl itself closes a connection whose transfer did not end cleanly. */
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
    CURL *evicted = NULL;
    pthread_mutex_lock(&h->lock);
    if (h->nidle == HTTP_POOL_MAX) evicted = http_take_idle(h, 0); /* the least recently used */
    h->owner[h->nidle] = http_thread_id();
    h->idle[h->nidle++] = c;
    pthread_mutex_unlock(&h->lock);
    if (evicted != NULL) curl_easy_cleanup(evicted);
}

typedef struct http_sink {
    bk_buf buf;
    int too_large;
    size_t header_bytes;   /* response header bytes so far (interim answers included) */
    int headers_too_large; /* more than HTTP_MAX_HEADERS of them: the transfer was stopped */
    int socket_errno;      /* why the last socket could not be made (EMFILE...), else 0 */
    /* of the last answer's header (a CONNECT answer's too): what tells a proxy's own answer */
    int via;         /* a Via header: passed on by a proxy */
    int proxy_auth;  /* a Proxy-Authenticate header: a proxy asks for credentials */
    int json;        /* Content-Type says JSON, as every SSM answer */
    char reason[64]; /* the status line's reason phrase (outside text: scrubbed when shown) */
} http_sink;

/* Makes the connection's socket (close-on-exec), keeping why it could not be made: libcurl
 * reports that only as "could not connect". */
static curl_socket_t http_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    http_sink *sink = userdata;
    curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s == CURL_SOCKET_BAD) sink->socket_errno = errno;
    return s;
}

/* 1 when the header line data (n bytes) is the header name (with its colon). */
static int http_header_is(const char *data, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && strncasecmp(data, name, k) == 0;
}

/* Notes what a header line says of who answered (see http_sink). */
static void http_note_header(http_sink *sink, const char *data, size_t n)
{
    if (n > 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new answer: "HTTP/1.1 407 Reason" */
        sink->via = sink->proxy_auth = sink->json = 0;
        const char *sp = memchr(data, ' ', n), *end = data + n;
        if (sp != NULL) sp = memchr(sp + 1, ' ', (size_t)(end - sp - 1));
        size_t len = 0;
        if (sp != NULL) {
            sp++;
            while (sp + len < end && sp[len] != '\r' && sp[len] != '\n')
                len++;
        }
        if (len >= sizeof sink->reason) len = sizeof sink->reason - 1;
        if (len > 0) memcpy(sink->reason, sp, len);
        sink->reason[len] = '\0';
    } else if (http_header_is(data, n, "via:")) {
        sink->via = 1;
    } else if (http_header_is(data, n, "proxy-authenticate:")) {
        sink->proxy_auth = 1;
    } else if (http_header_is(data, n, "content-type:")) {
        for (size_t i = 13; i + 4 <= n; i++)
            if (strncasecmp(data + i, "json", 4) == 0) sink->json = 1;
    }
}

/* Counts the response's header bytes: more than HTTP_MAX_HEADERS stops the transfer (an SSM
 * answer has a few hundred bytes of them). */
static size_t http_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_sink *sink = userdata;
    size_t n = size * nmemb;
    sink->header_bytes += n;
    if (sink->header_bytes > HTTP_MAX_HEADERS) {
        sink->headers_too_large = 1;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    http_note_header(sink, data, n);
    return n;
}

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

/* 1 when url's scheme is http or https (any case). */
static int http_scheme_ok(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* The answer was larger than a limit (ours, or libcurl's). BKOAUTH_OK when f is not that. */
static bkoauth_code http_fail_size(const http_failure *f, const http_sink *sink, bkoauth_error *err)
{
    if (f->rc == CURLE_OUT_OF_MEMORY) /* no allocation failed (libcurl's are counted) */
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "the answer of %s (HTTP %ld) has a header line larger than libcurl accepts (100 KB); "
                       "is OAUTH_API_URL pointing at the SSM service?",
                       f->hp, f->status);
    if (sink->headers_too_large)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "the answer of %s has more than %d bytes of headers, more than any SSM answer; is "
                       "OAUTH_API_URL pointing at the SSM service?",
                       f->hp, HTTP_MAX_HEADERS);
    if (sink->too_large || f->rc == CURLE_FILESIZE_EXCEEDED)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "the response from %s is larger than the %ld-byte limit; is OAUTH_API_URL pointing at "
                       "the SSM service?",
                       f->hp, HTTP_MAX_RESPONSE);
    return BKOAUTH_OK;
}

/* No connection could be made: why, as the system said it. */
static bkoauth_code http_fail_connect(CURL *c, const http_failure *f, const http_sink *sink,
                                      bkoauth_error *err)
{
    long oserr = sink->socket_errno;
    if (oserr == 0) curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
    if (f->var != NULL && oserr != EMFILE && oserr != ENFILE)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "%s %s: is the proxy running there, and is %s right? (the SSM service at %s was not "
                       "reached)",
                       oserr == ECONNREFUSED ? "connection refused by" : "cannot connect to", f->proxy,
                       f->var, f->service);
    if (oserr == ECONNREFUSED)
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "connection refused by %s: is the SSM service running there, and is OAUTH_API_URL right?", f->hp);
    if (oserr == EMFILE || oserr == ENFILE)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "cannot open a connection to %s: %s (%s); raise the limit (ulimit -n) or find what "
                       "keeps descriptors open",
                       f->hp,
                       oserr == EMFILE ? "this process has run out of file descriptors"
                                       : "the system has run out of file descriptors",
                       oserr == EMFILE ? "EMFILE" : "ENFILE");
    return err_set(err, BKOAUTH_E_TOKEN_API, "cannot connect to %s (%s): check OAUTH_API_URL and the network",
                   f->hp, f->detail);
}

/* The service could not be reached (connection, name, proxy, time, TLS). BKOAUTH_OK when f is
 * not that. */
static bkoauth_code http_fail_reach(const http_client *h, CURL *c, const http_failure *f,
                                    const http_sink *sink, bkoauth_error *err)
{
    if (f->rc == CURLE_COULDNT_CONNECT) return http_fail_connect(c, f, sink, err);
    if (f->rc == CURLE_COULDNT_RESOLVE_HOST)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "cannot resolve the host of %s (%s): check OAUTH_API_URL and DNS", f->hp, f->detail);
    if (f->rc == CURLE_COULDNT_RESOLVE_PROXY)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "cannot resolve the host of %s (%s): check %s and DNS (the SSM service at %s was not "
                       "reached)",
                       f->proxy[0] ? f->proxy : "the proxy", f->detail,
                       f->var ? f->var : "the proxy settings", f->service);
    if (f->rc == CURLE_OPERATION_TIMEDOUT) return http_fail_timeout(h->s->timeout_ms, c, f, err);
    if (http_is_tls_error(f->rc)) return http_fail_tls(&h->proxy, c, f, err);
    return BKOAUTH_OK;
}

/* The connection broke, or closed before a whole answer. BKOAUTH_OK when f is not that. */
static bkoauth_code http_fail_transfer(const http_failure *f, bkoauth_error *err)
{
    if (f->rc == CURLE_PARTIAL_FILE)
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "the response from %s was truncated: the connection closed before the whole body arrived "
            "(%s); retry later",
            f->hp, f->detail);
    if (f->rc == CURLE_GOT_NOTHING && f->status >= 100 && f->status < 200)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "%s answered only with the interim status HTTP %ld and then closed the connection; is "
                       "OAUTH_API_URL pointing at the SSM service?",
                       f->hp, f->status);
    if (f->rc == CURLE_GOT_NOTHING)
        return err_set(err, BKOAUTH_E_TOKEN_API, "%s closed the connection without answering; retry later",
                       f->hp);
    if (f->rc == CURLE_RECV_ERROR || f->rc == CURLE_SEND_ERROR)
        return err_set(err, BKOAUTH_E_TOKEN_API, "the connection to %s broke (%s); retry later", f->hp,
                       f->detail);
    return BKOAUTH_OK;
}

/* The URL, or the answer, is not HTTP/1.x as libcurl takes it. BKOAUTH_OK when f is not that. */
static bkoauth_code http_fail_protocol(const http_failure *f, bkoauth_error *err)
{
    if (f->rc == CURLE_UNSUPPORTED_PROTOCOL && http_scheme_ok(f->url)) {
        /* the URL is http(s): what libcurl refused is the answer (HTTP/0.9, HTTP/1.2, a status
         * line that is not one) */
        if (f->status >= 100 && f->status < 200)
            return err_set(err, BKOAUTH_E_TOKEN_API,
                           "%s answered HTTP %ld, an interim status, and then something that is not an HTTP "
                           "answer (%s); is OAUTH_API_URL pointing at the SSM service?",
                           f->hp, f->status, f->detail);
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "%s did not answer in HTTP/1.x (%s); is OAUTH_API_URL pointing at the SSM service?",
                       f->hp, f->detail);
    }
    if (f->rc == CURLE_UNSUPPORTED_PROTOCOL)
        return err_set(err, BKOAUTH_E_TOKEN_API, "OAUTH_API_URL must start with http:// or https:// (%s)",
                       f->detail);
    if (f->rc == CURLE_URL_MALFORMAT)
        return err_set(err, BKOAUTH_E_TOKEN_API, "OAUTH_API_URL is not a valid URL (%s)", f->detail);
    return BKOAUTH_OK;
}

/* Turns a failed transfer into a message a person can act on. oom: an allocation failed
 * during the transfer (libcurl may report that under another code). */
static bkoauth_code http_fail(http_client *h, CURL *c, CURLcode rc, const http_sink *sink, const char *url,
                              const char *errbuf, int oom, bkoauth_error *err)
{
    http_failure f = {rc, 0, url, "", errbuf[0] ? errbuf : curl_easy_strerror(rc), "", "", NULL};
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f.status);
    long connect_code = 0;
    curl_easy_getinfo(c, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    if (oom || sink->buf.oom)
        return err_set(err, BKOAUTH_E_NOMEM, "out of memory during the HTTP request to the SSM service");
    if (rc == CURLE_OUT_OF_MEMORY && !(bkoauth__curl_allocations_counted() && f.status > 0))
        return err_set(
            err, BKOAUTH_E_NOMEM,
            bkoauth__curl_allocations_counted()
                ? "out of memory during the HTTP request to the SSM service"
                : "out of memory during the HTTP request to the SSM service (or an answer past one of "
                  "libcurl's size limits, such as a header line over 100 KB)");
    http_failure_hops(&h->proxy, &f);
    if (f.var != NULL && connect_code >= 300) /* the proxy refused the tunnel */
        return http_fail_proxy_answer(&h->proxy, &f, connect_code, sink->reason, err);
    bkoauth_code code = http_fail_size(&f, sink, err);
    if (code == BKOAUTH_OK) code = http_fail_reach(h, c, &f, sink, err);
    if (code == BKOAUTH_OK) code = http_fail_transfer(&f, err);
    if (code == BKOAUTH_OK) code = http_fail_protocol(&f, err);
    if (code == BKOAUTH_OK)
        code = err_set(err, BKOAUTH_E_TOKEN_API, "HTTP request to %s failed: %s (curl error %d)", f.hp,
                       f.detail, (int)rc);
    if (err != NULL && f.status > 0) err->http_status = (int)f.status;
    return code;
}

/* Appends line to *list. Returns 0, or -1 when out of memory (*list unchanged). */
static int http_slist_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);
    if (n == NULL) return -1;
    *list = n;
    return 0;
}

/* req's header lines as a libcurl list in *out. Returns 0, or -1 when out of memory (*out then
 * NULL). */
static int http_header_list(const http_request *req, struct curl_slist **out)
{
    struct curl_slist *headers = NULL;
    int oom = 0;
    for (size_t i = 0; i < req->header_count && !oom; i++)
        oom = http_slist_add(&headers, req->headers[i]) != 0;
    /* no "Expect: 100-continue" round trip for larger bodies */
    if (!oom && req->body != NULL) oom = http_slist_add(&headers, "Expect:") != 0;
    if (oom) {
        http_slist_wipe_free(headers);
        headers = NULL;
    }
    *out = headers;
    return oom ? -1 : 0;
}

/* Sets the method and the body of req on c. Returns 1 when an option could not be set for
 * want of memory. */
static int http_set_method(CURL *c, const http_request *req)
{
    if (req->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") == 0) return 0;
    } else if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        return 0;
    }
    return curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OUT_OF_MEMORY;
}

/* The proxy as chosen (proxy.c), never libcurl's own choice: CURLOPT_PROXY is the proxy, or ""
 * for none, and CURLOPT_NOPROXY "" keeps libcurl from reading NO_PROXY again. An https:// proxy's
 * certificate is checked as the service's. Returns 1 when an option could not be set for want of
 * memory. */
static int http_set_proxy(const http_client *h, CURL *c)
{
    const proxy_choice *p = &h->proxy;
    int oom = curl_easy_setopt(c, CURLOPT_PROXY, p->url != NULL ? p->url : "") == CURLE_OUT_OF_MEMORY;
    oom |= curl_easy_setopt(c, CURLOPT_NOPROXY, "") == CURLE_OUT_OF_MEMORY;
    if (p->url == NULL || strcmp(p->parsed.scheme, "https") != 0) return oom;
    curl_easy_setopt(c, CURLOPT_PROXY_SSL_VERIFYPEER, h->s->tls_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_PROXY_SSL_VERIFYHOST, h->s->tls_verify ? 2L : 0L);
    if (!bk_empty(h->s->ca_file))
        oom |= curl_easy_setopt(c, CURLOPT_PROXY_CAINFO, h->s->ca_file) == CURLE_OUT_OF_MEMORY;
    if (!bk_empty(h->s->ca_path))
        oom |= curl_easy_setopt(c, CURLOPT_PROXY_CAPATH, h->s->ca_path) == CURLE_OUT_OF_MEMORY;
    return oom;
}

/* Sets every option of one transfer of req on c. Options that libcurl copies allocate: one that
 * could not be set (the CA bundle, the allowed protocols) must never pass silently, so their
 * results are checked. Returns 1 when one could not be set for want of memory. */
static int http_set_options(const http_client *h, CURL *c, const http_request *req,
                            struct curl_slist *headers, http_sink *sink, char *errbuf)
{
    long timeout = h->s->timeout_ms > 0 ? h->s->timeout_ms : 10000;
    int oom = curl_easy_setopt(c, CURLOPT_URL, req->url) == CURLE_OUT_OF_MEMORY;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    oom |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OUT_OF_MEMORY;
    oom |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OUT_OF_MEMORY;
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->s->tls_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->s->tls_verify ? 2L : 0L);
    if (!bk_empty(h->s->ca_file))
        oom |= curl_easy_setopt(c, CURLOPT_CAINFO, h->s->ca_file) == CURLE_OUT_OF_MEMORY;
    if (!bk_empty(h->s->ca_path))
        oom |= curl_easy_setopt(c, CURLOPT_CAPATH, h->s->ca_path) == CURLE_OUT_OF_MEMORY;
    oom |= http_set_proxy(h, c);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_RESPONSE);
    /* the receive buffer is allocated for each transfer (the handle is reset after it): at the
     * smallest size a grant fits in, the C library takes it from the thread's cache of small
     * blocks, instead of a 16 KB block that, held through a slow answer, fragments the heap */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, sink);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, http_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, sink);
    oom |=
        curl_easy_setopt(c, CURLOPT_USERAGENT, "libbkoauth/" BKOAUTH_VERSION_STRING) == CURLE_OUT_OF_MEMORY;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    return oom | http_set_method(c, req);
}

/* BKOAUTH_OK, or the failure when an HTTP proxy answered a plain-HTTP request itself instead of
 * passing on the service's answer: a 407, an answer asking for proxy credentials, or an error
 * that no proxy passed on (no Via header: RFC 9110 has every proxy add one) and that is not JSON,
 * as every SSM answer is (tinyproxy answers a wrong password with a 401 of its own, and a service
 * it cannot reach with a 500, both without Via). */
static bkoauth_code http_proxy_own_answer(const http_client *h, CURL *c, const http_sink *sink,
                                          const char *url, bkoauth_error *err)
{
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (!h->via_http_proxy ||
        !(status == 407 || sink->proxy_auth || (status >= 400 && !sink->via && !sink->json)))
        return BKOAUTH_OK;
    http_failure f = {CURLE_OK, status, url, "", "", "", "", NULL};
    http_failure_hops(&h->proxy, &f);
    return http_fail_proxy_answer(&h->proxy, &f, status, sink->reason, err);
}

/* A complete answer: its status and body into resp (the body taken from sink). failed: the
 * count of allocation failures before the transfer. */
static bkoauth_code http_take_answer(CURL *c, http_sink *sink, unsigned long failed, http_response *resp,
                                     bkoauth_error *err)
{
    if (sink->buf.oom) return err_set(err, BKOAUTH_E_NOMEM, "out of memory reading the SSM service's answer");
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->alloc_failed = bkoauth__alloc_failures() != failed;
    if (sink->buf.data == NULL) { /* empty body: still a string */
        sink->buf.data = bkoauth__calloc(1, 1);
        if (sink->buf.data == NULL) return err_nomem(err);
    }
    resp->body = sink->buf.data;
    resp->len = sink->buf.len;
    sink->buf.data = NULL;
    return BKOAUTH_OK;
}

static bkoauth_code http_perform_scoped(http_client *h, const http_request *req, http_response *resp,
                                        bkoauth_error *err);

bkoauth_code http_perform(http_client *h, const http_request *req, http_response *resp, bkoauth_error *err)
{
    memset(resp, 0, sizeof *resp);
    bkoauth_code ready = http_ready(h, err);
    if (ready != BKOAUTH_OK) return ready;
    const proxy_choice *p = &h->proxy;
    if (p->url != NULL && p->problem != NULL)
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "the proxy in %s (%s) cannot be used: %s; fix %s, or name the proxy in BKOAUTH_PROXY (none: "
            "no proxy)",
            p->source, p->shown, p->problem, p->source);
    /* whatever the proxy or libcurl says during the call is scrubbed of the proxy's password */
    bk_scope scope;
    bk_scope_enter(&scope);
    bk_scope_add(&scope, p->parsed.password);
    bkoauth_code code = http_perform_scoped(h, req, resp, err);
    bk_scope_leave(&scope);
    return code;
}

static bkoauth_code http_perform_scoped(http_client *h, const http_request *req, http_response *resp,
                                        bkoauth_error *err)
{
    unsigned long failed = bkoauth__alloc_failures();
    CURL *c = http_acquire(h);
    if (c == NULL) return err_nomem(err);
    struct curl_slist *headers = NULL;
    if (http_header_list(req, &headers) != 0) {
        http_release(h, c, 1);
        return err_nomem(err);
    }

    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    http_sink sink = {{NULL, 0, 0, 0, 1}, 0, 0, 0, 0, 0, 0, 0, ""}; /* the answer holds tokens */
    bkoauth_code code;
    if (http_set_options(h, c, req, headers, &sink, errbuf) || bkoauth__alloc_failures() != failed) {
        code = err_set(err, BKOAUTH_E_NOMEM, "out of memory preparing the HTTP request to the SSM service");
    } else {
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK)
            code = http_fail(h, c, rc, &sink, req->url, errbuf, bkoauth__alloc_failures() != failed, err);
        else if ((code = http_proxy_own_answer(h, c, &sink, req->url, err)) == BKOAUTH_OK)
            code = http_take_answer(c, &sink, failed, resp, err);
    }
    buf_free(&sink.buf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    http_slist_wipe_free(headers);
    /* a failed transfer's handle is kept (libcurl closes a connection whose transfer did not end
     * cleanly): closing it here, in another thread than the one that made it, is what churned
     * glibc's per-thread caches in the soak; one that ran out of memory is closed */
    http_release(h, c, bkoauth__alloc_failures() == failed && !resp->alloc_failed);
    return code;
}
