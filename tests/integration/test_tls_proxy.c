/* SPDX-License-Identifier: MIT */
/* test_tls_proxy.c - the SSM service over HTTPS with a private CA, and behind an HTTP proxy, with
 * the real components started here on loopback: a throwaway CA made with the openssl command,
 * stunnel4 terminating TLS in front of bkoauth-devserver, tinyproxy with and without BasicAuth.
 * Asserts what an operator sees: a certificate refused names its problem and the setting that
 * fixes it; every failure through a proxy names the proxy, its address and the variable it came
 * from (never the SSM service for the proxy's fault); a proxy password is never in a message or
 * a log line; the proxy is chosen as curl chooses it (https_proxy, HTTPS_PROXY, http_proxy,
 * ALL_PROXY, NO_PROXY) unless BKOAUTH_PROXY / BKOAUTH_NO_PROXY say otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bkoauth.h"
#include "devserver.h"
#include "testfixture.h"
#include "sidecar.h"
#include "testsettings.h"
#include "teststore.h"

#define APP_CODE "demo-app"
#define APP_SECRET "demo-secret-2024"
#define PROXY_USER "alice"
#define PROXY_PASSWORD "Pr0xyPassw0rd"
#define WRONG_PASSWORD "Wr0ngPassw0rd"

typedef struct fixture {
    test_fixture t;  /* the devserver; dir: the PKI, and each client a database of its own */
    sidecar *tls;    /* stunnel in front of t.dev */
    sidecar *open;   /* tinyproxy without credentials */
    sidecar *closed; /* tinyproxy with BasicAuth PROXY_USER PROXY_PASSWORD */
    char ca[128], capath[128];
} fixture;

static const test_fixture_spec fixture_spec = {APP_CODE, APP_SECRET, NULL, "tls", 1, 0};

static fixture *fx;
/* The proxy variables of curl, all unset (each test sets its own). */
static void env_clear(void)
{
    static const char *names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                  "ALL_PROXY",  "no_proxy",   "NO_PROXY",    NULL};
    for (int i = 0; names[i] != NULL; i++)
        unsetenv(names[i]);
}

static int setup(void **state)
{
    env_clear();
    if (test_fixture_setup(state, sizeof *fx, &fixture_spec) != 0) return -1;
    fx = *state;
    if (sidecar_make_pki(fx->t.dir) != 0) return -1;
    snprintf(fx->ca, sizeof fx->ca, "%s/ca.pem", fx->t.dir);
    snprintf(fx->capath, sizeof fx->capath, "%s/capath", fx->t.dir);
    if ((fx->tls = sidecar_stunnel(fx->t.dir, fx->t.dev->port)) == NULL) return -1;
    if ((fx->open = sidecar_tinyproxy(fx->t.dir, NULL, NULL)) == NULL) return -1;
    if ((fx->closed = sidecar_tinyproxy(fx->t.dir, PROXY_USER, PROXY_PASSWORD)) == NULL) return -1;
    return 0;
}

static int teardown(void **state)
{
    if (fx == NULL) return 0;
    sidecar_stop(fx->closed);
    sidecar_stop(fx->open);
    sidecar_stop(fx->tls);
    fx = NULL;
    return test_fixture_teardown(state);
}

static int each(void **state)
{
    (void)state;
    env_clear();
    return 0;
}

/* https://127.0.0.1:<port of the certificate which> */
static const char *tls_url(int which)
{
    static char url[4][64];
    snprintf(url[which], sizeof url[which], "https://127.0.0.1:%d", fx->tls->ports[which]);
    return url[which];
}

/* "http://[user:password@]127.0.0.1:<port of p>" */
static const char *proxy_url(const sidecar *p, const char *password)
{
    static char url[4][128];
    static int k;
    char *u = url[k++ % 4];
    if (password != NULL)
        snprintf(u, 128, "http://" PROXY_USER ":%s@127.0.0.1:%d", password, p->port);
    else
        snprintf(u, 128, "http://127.0.0.1:%d", p->port);
    return u;
}

/* A client of its own database against api_url with extra settings (NAME, VALUE, ..., NULL); the
 * log captured from here on, at debug. */
static bkoauth_client *client(const char *api_url, const char *const *extra)
{
    const char *own[] = {"BKOAUTH_LOG_LEVEL", "debug", "BKOAUTH_BACKOFF_SECONDS", "0",
                         /* loading the system CAs is slow under valgrind */
                         "BKOAUTH_TIMEOUT_MS", "20000", NULL};
    bkoauth_client *c = test_fixture_client(&fx->t, api_url, own, extra);
    test_log_capture(c);
    return c;
}

/* The APP token through a new client: BKOAUTH_OK, or the failure in *e. */
static bkoauth_code app_token(const char *api_url, const char *const *extra, bkoauth_error *e)
{
    bkoauth_client *c = client(api_url, extra);
    bkoauth_token *t = NULL;
    memset(e, 0, sizeof *e);
    bkoauth_code rc = bkoauth_get_app_access_token(c, &t, e);
    if (rc == BKOAUTH_OK) assert_non_null(t);
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    return rc;
}

/* The APP token must come, and from the devserver (its counter moves). */
static void expect_token(const char *api_url, const char *const *extra)
{
    long before = devserver_counter(fx->t.dev, "app_token");
    bkoauth_error e;
    if (app_token(api_url, extra, &e) != BKOAUTH_OK) fail_msg("expected a token, got: %s", e.message);
    assert_int_equal(devserver_counter(fx->t.dev, "app_token"), before + 1);
}

/* The call must fail; its message in *e. The devserver's counter must not move. */
static void expect_failure(const char *api_url, const char *const *extra, bkoauth_error *e)
{
    long before = devserver_counter(fx->t.dev, "app_token");
    if (app_token(api_url, extra, e) == BKOAUTH_OK) fail_msg("expected a failure against %s", api_url);
    assert_int_equal(e->code, BKOAUTH_E_TOKEN_API);
    assert_int_equal(devserver_counter(fx->t.dev, "app_token"), before);
}

/* Requests tinyproxy p passed on so far (its log: one line per request taken). */
static int proxied(const sidecar *p)
{
    return sidecar_count_lines(p->log, "Request (file descriptor");
}

/* ---- TLS with a private CA ------------------------------------------------------------------ */

static void test_private_ca_refused_by_default(void **state)
{
    (void)state;
    bkoauth_error e;
    expect_failure(tls_url(TLS_GOOD), NULL, &e);
    test_assert_has(e.message, "not issued by a CA this host trusts");
    test_assert_has(e.message, "BKOAUTH_CA_FILE");
    test_assert_has(e.message, "127.0.0.1:");
    test_assert_lacks(e.message, "proxy");
}

static void test_private_ca_accepted_with_ca_file(void **state)
{
    (void)state;
    const char *extra[] = {"BKOAUTH_CA_FILE", fx->ca, NULL};
    expect_token(tls_url(TLS_GOOD), extra);
    char url[64]; /* the certificate's other name */
    snprintf(url, sizeof url, "https://localhost:%d", fx->tls->ports[TLS_GOOD]);
    expect_token(url, extra);
}

static void test_private_ca_accepted_with_ca_path(void **state)
{
    (void)state;
    const char *extra[] = {"BKOAUTH_CA_PATH", fx->capath, NULL};
    expect_token(tls_url(TLS_GOOD), extra);
}

static void test_wrong_host_name_refused(void **state)
{
    (void)state;
    const char *extra[] = {"BKOAUTH_CA_FILE", fx->ca, NULL};
    bkoauth_error e;
    expect_failure(tls_url(TLS_OTHER_HOST), extra, &e);
    test_assert_has(e.message, "certificate is for another host name");
    test_assert_has(e.message, "OAUTH_API_URL");
}

static void test_expired_certificate_refused(void **state)
{
    (void)state;
    const char *extra[] = {"BKOAUTH_CA_FILE", fx->ca, NULL};
    bkoauth_error e;
    expect_failure(tls_url(TLS_EXPIRED), extra, &e);
    test_assert_has(e.message, "certificate has expired");
}

static void test_self_signed_refused(void **state)
{
    (void)state;
    const char *extra[] = {"BKOAUTH_CA_FILE", fx->ca, NULL};
    bkoauth_error e;
    expect_failure(tls_url(TLS_SELF_SIGNED), extra, &e);
    test_assert_has(e.message, "not issued by a CA this host trusts");
    test_assert_has(e.message, "self-signed");
}

static void test_verification_off_only_by_setting_and_warned(void **state)
{
    (void)state;
    const char *extra[] = {"BKOAUTH_TLS_VERIFY", "false", "BKOAUTH_LOG_LEVEL", "error", NULL};
    expect_token(tls_url(TLS_SELF_SIGNED), extra);
    test_assert_has(test_logs, "TLS verification is off"); /* logged again to the logger set after creation */
}

static void test_missing_ca_file_named(void **state)
{
    (void)state;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no-such-ca.pem", fx->t.dir);
    const char *extra[] = {"BKOAUTH_CA_FILE", missing, NULL};
    bkoauth_error e;
    expect_failure(tls_url(TLS_GOOD), extra, &e);
    test_assert_has(e.message, "BKOAUTH_CA_FILE");
}

/* ---- proxies -------------------------------------------------------------------------------- */

static void test_http_through_http_proxy(void **state)
{
    (void)state;
    setenv("http_proxy", proxy_url(fx->closed, PROXY_PASSWORD), 1);
    int before = proxied(fx->closed);
    expect_token(fx->t.dev->url, NULL);
    assert_int_equal(proxied(fx->closed), before + 1);
    test_assert_has(test_logs, "SSM calls go through the proxy http://" PROXY_USER ":***@127.0.0.1:");
    test_assert_has(test_logs, "(from http_proxy)");
    test_assert_lacks(test_logs, PROXY_PASSWORD);
}

static void test_https_through_proxy_tunnel(void **state)
{
    (void)state;
    setenv("HTTPS_PROXY", proxy_url(fx->closed, PROXY_PASSWORD), 1);
    setenv("http_proxy", "http://127.0.0.1:1", 1); /* not for https */
    int before = sidecar_count_lines(fx->closed->log, "Request (file descriptor");
    const char *extra[] = {"BKOAUTH_CA_FILE", fx->ca, NULL};
    expect_token(tls_url(TLS_GOOD), extra);
    assert_int_equal(proxied(fx->closed), before + 1);
    test_assert_has(test_logs, "(from HTTPS_PROXY)");
    /* lower case wins, as in curl */
    setenv("https_proxy", proxy_url(fx->open, NULL), 1);
    before = proxied(fx->open);
    expect_token(tls_url(TLS_GOOD), extra);
    assert_int_equal(proxied(fx->open), before + 1);
    test_assert_has(test_logs, "(from https_proxy)");
}

static void test_proxy_down_named(void **state)
{
    (void)state;
    char down[64];
    int port = devserver_free_port();
    snprintf(down, sizeof down, "http://127.0.0.1:%d", port);
    setenv("http_proxy", down, 1);
    bkoauth_error e;
    expect_failure(fx->t.dev->url, NULL, &e);
    char want[96];
    snprintf(want, sizeof want, "connection refused by the proxy at 127.0.0.1:%d (from http_proxy)", port);
    test_assert_has(e.message, want);
    test_assert_lacks(e.message, "is the SSM service running");
    /* https through a proxy that is down: the same */
    setenv("https_proxy", down, 1);
    expect_failure(tls_url(TLS_GOOD), NULL, &e);
    snprintf(want, sizeof want, "connection refused by the proxy at 127.0.0.1:%d (from https_proxy)", port);
    test_assert_has(e.message, want);
    snprintf(want, sizeof want, "connection refused by the proxy at 127.0.0.1:%d (from http_proxy)", port);
    /* and the service check says so too */
    bkoauth_client *c = client(fx->t.dev->url, NULL);
    long status = 0;
    assert_int_equal(bkoauth_check_service(c, &status, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, want);
    bkoauth_client_free(c);
}

static void test_proxy_timeout_named(void **state)
{
    (void)state;
    /* a proxy that takes connections (the kernel's backlog) and never answers */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[64], want[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    setenv("http_proxy", url, 1);
    const char *extra[] = {"BKOAUTH_TIMEOUT_MS", "300", NULL};
    bkoauth_error e;
    expect_failure(fx->t.dev->url, extra, &e);
    close(fd);
    test_assert_has(e.message, "timeout");
    snprintf(want, sizeof want, "through the proxy at 127.0.0.1:%d (from http_proxy)", ntohs(a.sin_port));
    test_assert_has(e.message, want);
}

static void test_proxy_credentials_refused(void **state)
{
    (void)state;
    bkoauth_error e;
    setenv("http_proxy", proxy_url(fx->closed, WRONG_PASSWORD), 1);
    expect_failure(fx->t.dev->url, NULL, &e);
    test_assert_has(e.message, "refused its credentials");
    test_assert_has(e.message, "check the proxy's user and password in http_proxy");
    test_assert_lacks(e.message, "APP_CODE");
    test_assert_lacks(e.message, WRONG_PASSWORD);
    test_assert_lacks(test_logs, WRONG_PASSWORD);
    test_assert_has(test_logs, PROXY_USER ":***@");
    /* through the CONNECT tunnel */
    setenv("https_proxy", proxy_url(fx->closed, WRONG_PASSWORD), 1);
    const char *extra[] = {"BKOAUTH_CA_FILE", fx->ca, NULL};
    expect_failure(tls_url(TLS_GOOD), extra, &e);
    test_assert_has(e.message, "refused its credentials");
    test_assert_has(e.message, "https_proxy");
    test_assert_lacks(e.message, WRONG_PASSWORD);
    test_assert_lacks(test_logs, WRONG_PASSWORD);
    /* none given */
    setenv("http_proxy", proxy_url(fx->closed, NULL), 1);
    expect_failure(fx->t.dev->url, NULL, &e);
    test_assert_has(e.message, "asks for credentials (HTTP 407");
}

static void test_proxy_cannot_reach_service(void **state)
{
    (void)state;
    char gone[64];
    snprintf(gone, sizeof gone, "http://127.0.0.1:%d", devserver_free_port());
    setenv("http_proxy", proxy_url(fx->open, NULL), 1);
    bkoauth_error e;
    expect_failure(gone, NULL, &e);
    test_assert_has(e.message, "answered HTTP 500");
    test_assert_has(e.message, "instead of passing the request on");
    test_assert_has(e.message, "(from http_proxy)");
}

static void test_service_refusal_through_proxy_says_so(void **state)
{
    (void)state;
    setenv("http_proxy", proxy_url(fx->open, NULL), 1);
    const char *extra[] = {"APP_CODE", "unknown-app", NULL};
    bkoauth_error e;
    assert_int_equal(app_token(fx->t.dev->url, extra, &e), BKOAUTH_E_TOKEN_API);
    test_assert_has(e.message, "through the proxy http://127.0.0.1:");
    test_assert_lacks(e.message, "answered HTTP"); /* the service's answer, passed on: not the proxy's */
}

static void test_no_proxy_bypasses(void **state)
{
    (void)state;
    setenv("http_proxy", proxy_url(fx->open, NULL), 1);
    static const char *lists[] = {"127.0.0.1", "example.com, 127.0.0.0/8", "*"};
    for (int i = 0; i < 3; i++) {
        setenv(i % 2 ? "NO_PROXY" : "no_proxy", lists[i], 1);
        int before = proxied(fx->open);
        expect_token(fx->t.dev->url, NULL);
        assert_int_equal(proxied(fx->open), before);
        unsetenv("no_proxy");
        unsetenv("NO_PROXY");
    }
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%d", fx->t.dev->port);
    setenv("no_proxy", ".localhost,localhost:1", 1); /* a port is never compared: localhost matches */
    int before = proxied(fx->open);
    expect_token(url, NULL);
    assert_int_equal(proxied(fx->open), before);
    /* a name that does not match: through the proxy */
    setenv("no_proxy", "notlocalhost,127.0.0.2", 1);
    expect_token(url, NULL);
    assert_int_equal(proxied(fx->open), before + 1);
}

static void test_all_proxy_and_upper_case_http_proxy(void **state)
{
    (void)state;
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1); /* never read, as curl */
    int before = proxied(fx->open);
    expect_token(fx->t.dev->url, NULL);
    assert_int_equal(proxied(fx->open), before);
    setenv("ALL_PROXY", proxy_url(fx->open, NULL), 1);
    expect_token(fx->t.dev->url, NULL);
    assert_int_equal(proxied(fx->open), before + 1);
    test_assert_has(test_logs, "(from ALL_PROXY)");
}

static void test_setting_overrides_environment(void **state)
{
    (void)state;
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    const char *extra[] = {"BKOAUTH_PROXY", proxy_url(fx->closed, PROXY_PASSWORD), NULL};
    int before = proxied(fx->closed);
    expect_token(fx->t.dev->url, extra);
    assert_int_equal(proxied(fx->closed), before + 1);
    test_assert_has(test_logs, "(from BKOAUTH_PROXY)");
    test_assert_lacks(test_logs, PROXY_PASSWORD);
    /* BKOAUTH_NO_PROXY replaces no_proxy */
    setenv("no_proxy", "127.0.0.1", 1);
    const char *extra2[] = {"BKOAUTH_PROXY", proxy_url(fx->open, NULL), "BKOAUTH_NO_PROXY", "example.com",
                            NULL};
    before = proxied(fx->open);
    expect_token(fx->t.dev->url, extra2);
    assert_int_equal(proxied(fx->open), before + 1);
    const char *extra3[] = {"BKOAUTH_PROXY", "http://127.0.0.1:1", "BKOAUTH_NO_PROXY", "127.0.0.1", NULL};
    expect_token(fx->t.dev->url, extra3);
}

static void test_setting_none_means_direct(void **state)
{
    (void)state;
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("https_proxy", "http://127.0.0.1:1", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    const char *none[] = {"BKOAUTH_PROXY", "none", NULL};
    expect_token(fx->t.dev->url, none);
    const char *empty[] = {"BKOAUTH_PROXY", "", "BKOAUTH_CA_FILE", fx->ca, NULL};
    expect_token(tls_url(TLS_GOOD), empty);
}

static void test_unusable_proxy_variable_named(void **state)
{
    (void)state;
    setenv("http_proxy", "ftp://alice:" WRONG_PASSWORD "@proxy.example.com", 1);
    bkoauth_error e;
    expect_failure(fx->t.dev->url, NULL, &e);
    test_assert_has(e.message, "the proxy in http_proxy");
    test_assert_has(e.message, "cannot be used");
    test_assert_lacks(e.message, WRONG_PASSWORD);
    /* the setting is checked when set, its password never shown */
    bkoauth_config *cfg = bkoauth_config_new();
    assert_int_equal(bkoauth_config_set(cfg, "BKOAUTH_PROXY", "gopher://u:" WRONG_PASSWORD "@h:1", &e),
                     BKOAUTH_E_CONFIG);
    test_assert_has(e.message, "BKOAUTH_PROXY");
    test_assert_lacks(e.message, WRONG_PASSWORD);
    bkoauth_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_private_ca_refused_by_default, each),
        cmocka_unit_test_setup(test_private_ca_accepted_with_ca_file, each),
        cmocka_unit_test_setup(test_private_ca_accepted_with_ca_path, each),
        cmocka_unit_test_setup(test_wrong_host_name_refused, each),
        cmocka_unit_test_setup(test_expired_certificate_refused, each),
        cmocka_unit_test_setup(test_self_signed_refused, each),
        cmocka_unit_test_setup(test_verification_off_only_by_setting_and_warned, each),
        cmocka_unit_test_setup(test_missing_ca_file_named, each),
        cmocka_unit_test_setup(test_http_through_http_proxy, each),
        cmocka_unit_test_setup(test_https_through_proxy_tunnel, each),
        cmocka_unit_test_setup(test_proxy_down_named, each),
        cmocka_unit_test_setup(test_proxy_timeout_named, each),
        cmocka_unit_test_setup(test_proxy_credentials_refused, each),
        cmocka_unit_test_setup(test_proxy_cannot_reach_service, each),
        cmocka_unit_test_setup(test_service_refusal_through_proxy_says_so, each),
        cmocka_unit_test_setup(test_no_proxy_bypasses, each),
        cmocka_unit_test_setup(test_all_proxy_and_upper_case_http_proxy, each),
        cmocka_unit_test_setup(test_setting_overrides_environment, each),
        cmocka_unit_test_setup(test_setting_none_means_direct, each),
        cmocka_unit_test_setup(test_unusable_proxy_variable_named, each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
