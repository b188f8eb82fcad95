/* SPDX-License-Identifier: MIT */
/* test_proxy.c - the choice of the proxy (src/ssm/proxy.c) against libcurl's own: for every
 * case, libcurl is left to choose by itself (the environment, CURLOPT_PROXY, CURLOPT_NOPROXY) and
 * the address it then opens a socket to is recorded (the socket is refused: nothing leaves the
 * process); the library's choice must be the same proxy, or none. Then the reading of proxy
 * URLs from outside (proxy_parse) and the settings BKOAUTH_PROXY / BKOAUTH_NO_PROXY. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bkoauth.h"
#include "ssm/proxy.h"

/* Each proxy variable names a proxy of its own port, so that the port tells which one was used. */
static const struct {
    const char *name;
    int port;
} vars[] = {{"http_proxy", 1101},  {"HTTP_PROXY", 1102}, {"https_proxy", 1103},
            {"HTTPS_PROXY", 1104}, {"all_proxy", 1105},  {"ALL_PROXY", 1106}};
#define NVARS (sizeof vars / sizeof vars[0])
#define SETTING_PORT 1107

static void env_clear(void)
{
    for (size_t i = 0; i < NVARS; i++)
        unsetenv(vars[i].name);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
}

static void set_var(const char *name)
{
    for (size_t i = 0; i < NVARS; i++)
        if (strcmp(vars[i].name, name) == 0) {
            char v[64];
            snprintf(v, sizeof v, "http://127.0.0.9:%d", vars[i].port);
            setenv(name, v, 1);
        }
}

/* The port libcurl opened a socket to (0: none was asked for). */
static curl_socket_t record(void *userdata, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    int *port = userdata;
    if (a->family == AF_INET)
        *port = ntohs(((struct sockaddr_in *)&a->addr)->sin_port);
    else if (a->family == AF_INET6)
        *port = ntohs(((struct sockaddr_in6 *)&a->addr)->sin6_port);
    return CURL_SOCKET_BAD;
}

/* The port of url, written or the scheme's. */
static int url_port(const char *url)
{
    CURLU *u = curl_url();
    char *port = NULL;
    curl_url_set(u, CURLUPART_URL, url, 0);
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    int p = atoi(port);
    curl_free(port);
    curl_url_cleanup(u);
    return p;
}

/* The port libcurl would connect to for url: a proxy's, or the URL's own. */
static int curl_choice(const char *url, const char *setting, const char *no_proxy_setting)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    CURLU *u = curl_url();
    char *host = NULL;
    curl_url_set(u, CURLUPART_URL, url, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    char entry[300];
    int port_of_url = url_port(url);
    snprintf(entry, sizeof entry, "%s:%d:192.0.2.10", host, port_of_url); /* never reached */
    struct curl_slist *resolve = host[0] != '[' ? curl_slist_append(NULL, entry) : NULL;
    int port = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, record);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &port);
    if (setting != NULL) curl_easy_setopt(c, CURLOPT_PROXY, setting);
    if (no_proxy_setting != NULL) curl_easy_setopt(c, CURLOPT_NOPROXY, no_proxy_setting);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(resolve);
    curl_free(host);
    curl_url_cleanup(u);
    return port;
}

/* The port the library's choice connects to, and that choice's source named by port. */
static int our_choice(const char *url, const char *setting, const char *no_proxy_setting)
{
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL;
    curl_url_set(u, CURLUPART_URL, url, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    char bare[300];
    size_t n = strlen(host);
    if (host[0] == '[') /* libcurl takes an IPv6 host without its brackets */
        snprintf(bare, sizeof bare, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(bare, sizeof bare, "%s", host);
    proxy_choice pc;
    bkoauth_error e;
    assert_int_equal(proxy_choose(scheme, bare, setting, no_proxy_setting, &pc, &e), BKOAUTH_OK);
    int port = url_port(url);
    if (pc.url != NULL) {
        assert_null(pc.problem);
        port = (int)pc.parsed.port;
        /* the source is the variable of that port */
        for (size_t i = 0; i < NVARS; i++)
            if (vars[i].port == port) assert_string_equal(pc.source, vars[i].name);
    }
    proxy_choice_clear(&pc);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return port;
}

static void same_choice(const char *url, const char *setting, const char *no_proxy_setting, const char *what)
{
    int theirs = curl_choice(url, setting, no_proxy_setting);
    int ours = our_choice(url, setting, no_proxy_setting);
    if (theirs != ours)
        fail_msg("%s, %s: libcurl connects to port %d, the library chose %d", url, what, theirs, ours);
}

static const char *hosts[] = {"http://example.com",      "http://www.example.com",
                              "http://nonexample.com",   "http://EXAMPLE.COM",
                              "http://example.com.",     "http://localhost",
                              "http://127.0.0.1",        "http://127.0.0.5",
                              "http://10.1.2.3",         "http://[::1]",
                              "http://[2001:db8::1]",    "http://a.b.example.com",
                              "https://ssm.example.com", "http://example.com:8080",
                              "http://sub.example.com.", "https://[2001:db8:ff::1]/x"};
static const char *lists[] = {"*",
                              "example.com",
                              ".example.com",
                              "example.com.",
                              "EXAMPLE.com",
                              "www.example.com",
                              "example.com:8080",
                              "127.0.0.1",
                              "127.0.0.0/8",
                              "127.0.0.1/32",
                              "127.0.0.1/0",
                              "10.0.0.0/8",
                              "10.1.2.3/33",
                              "::1",
                              "[::1]",
                              "2001:db8::/32",
                              "2001:db8::/33",
                              "2001:db8:f0::/44",
                              "localhost, example.com",
                              "foo bar example.com",
                              "*,example.com",
                              " , ,example.com,,",
                              "com",
                              ".",
                              "..",
                              "ample.com",
                              "*.example.com",
                              "localhost\texample.com"};

static void test_no_proxy_as_libcurl(void **state)
{
    (void)state;
    for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++)
        for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
            env_clear();
            set_var("http_proxy");
            set_var("https_proxy");
            setenv(l % 2 ? "NO_PROXY" : "no_proxy", lists[l], 1);
            same_choice(hosts[h], NULL, NULL, lists[l]);
            /* the same list as BKOAUTH_NO_PROXY (CURLOPT_NOPROXY) with BKOAUTH_PROXY */
            env_clear();
            same_choice(hosts[h], "http://127.0.0.9:1107", lists[l], lists[l]);
        }
}

static void test_variables_as_libcurl(void **state)
{
    (void)state;
    /* every subset of the six variables, for http and https */
    for (unsigned mask = 0; mask < (1u << NVARS); mask++) {
        env_clear();
        for (size_t i = 0; i < NVARS; i++)
            if (mask & (1u << i)) set_var(vars[i].name);
        same_choice("http://ssm.example.com", NULL, NULL, "variables");
        same_choice("https://ssm.example.com", NULL, NULL, "variables");
    }
    /* an empty variable is no variable */
    env_clear();
    setenv("https_proxy", "", 1);
    set_var("HTTPS_PROXY");
    same_choice("https://ssm.example.com", NULL, NULL, "empty https_proxy");
    /* no_proxy before NO_PROXY; an empty one counts as unset */
    env_clear();
    set_var("http_proxy");
    setenv("no_proxy", "other.com", 1);
    setenv("NO_PROXY", "example.com", 1);
    same_choice("http://ssm.example.com", NULL, NULL, "no_proxy and NO_PROXY");
    setenv("no_proxy", "", 1);
    same_choice("http://ssm.example.com", NULL, NULL, "empty no_proxy");
    /* the environment's no_proxy applies to CURLOPT_PROXY too, unless CURLOPT_NOPROXY is set */
    same_choice("http://ssm.example.com", "http://127.0.0.9:1107", NULL, "setting, NO_PROXY");
    same_choice("http://ssm.example.com", "http://127.0.0.9:1107", "", "setting, empty no-proxy setting");
    /* an empty setting is no proxy at all */
    same_choice("http://ssm.example.com", "", NULL, "empty setting");
    env_clear();
}

static void test_none_and_sources(void **state)
{
    (void)state;
    proxy_choice pc;
    bkoauth_error e;
    env_clear();
    setenv("http_proxy", "http://u:Secr3tPass@127.0.0.9:3128", 1);
    assert_int_equal(proxy_choose("http", "ssm.example.com", "NONE", NULL, &pc, &e), BKOAUTH_OK);
    assert_null(pc.url);
    assert_string_equal(pc.source, "BKOAUTH_PROXY");
    assert_int_equal(proxy_choose("http", "ssm.example.com", NULL, NULL, &pc, &e), BKOAUTH_OK);
    assert_string_equal(pc.source, "http_proxy");
    assert_string_equal(pc.shown, "http://u:***@127.0.0.9:3128");
    assert_string_equal(pc.parsed.password, "Secr3tPass");
    char text[400];
    assert_string_equal(proxy_describe(&pc, text, sizeof text),
                        "the proxy http://u:***@127.0.0.9:3128 (from http_proxy)");
    proxy_choice_clear(&pc);
    setenv("no_proxy", "example.com", 1);
    assert_int_equal(proxy_choose("http", "ssm.example.com", NULL, NULL, &pc, &e), BKOAUTH_OK);
    assert_null(pc.url);
    assert_string_equal(pc.source, "no_proxy");
    assert_int_equal(proxy_choose("http", "ssm.example.com", NULL, "other.com", &pc, &e), BKOAUTH_OK);
    assert_non_null(pc.url);
    proxy_choice_clear(&pc);
    env_clear();
    assert_int_equal(proxy_choose("http", "ssm.example.com", NULL, NULL, &pc, &e), BKOAUTH_OK);
    assert_null(pc.url);
    assert_null(pc.source);
}

static void test_proxy_urls(void **state)
{
    (void)state;
    proxy_url u;
    assert_null(proxy_parse("http://proxy.example.com:3128", &u));
    assert_string_equal(u.host, "proxy.example.com");
    assert_int_equal(u.port, 3128);
    assert_string_equal(u.scheme, "http");
    assert_null(proxy_parse("proxy.example.com", &u)); /* libcurl's defaults */
    assert_int_equal(u.port, 1080);
    assert_null(proxy_parse("HTTPS://[::1]/", &u));
    assert_string_equal(u.scheme, "https");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 443);
    assert_null(proxy_parse("socks://h:1", &u));
    assert_string_equal(u.scheme, "socks4");
    assert_null(proxy_parse("http://us%40er:p%3Ass%40w@h:8080", &u));
    assert_int_equal(u.has_user, 1);
    assert_string_equal(u.password, "p:ss@w");
    assert_null(proxy_parse("http://user@h:8080", &u));
    assert_int_equal(u.has_user, 1);
    assert_string_equal(u.password, "");
    static const char *bad[] = {"",
                                "ftp://h:21",
                                "ftp.example.com:21",
                                "http://",
                                "http://:3128",
                                "http://h:0",
                                "http://h:65536",
                                "http://h:12a",
                                "http://h p",
                                "http://h\n:1",
                                "http://u:p@ss@h:1",
                                "http://[::1",
                                "http://[zz]:1",
                                "http://[::1]x",
                                "http://u:%00@h",
                                "http://h$:1",
                                "gopher://h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (proxy_parse(bad[i], &u) == NULL) fail_msg("'%s' taken as a proxy URL", bad[i]);
    char longer[PROXY_URL_MAX + 16];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(longer, "http://", 7);
    assert_non_null(proxy_parse(longer, &u));
}

static void test_settings(void **state)
{
    (void)state;
    bkoauth_config *c = bkoauth_config_new();
    bkoauth_error e;
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_PROXY", "http://u:pw@proxy:3128", &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_PROXY", "none", &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_PROXY", "", &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_PROXY", "ftp://u:S3cretPw@proxy", &e), BKOAUTH_E_CONFIG);
    assert_non_null(strstr(e.message, "BKOAUTH_PROXY"));
    assert_null(strstr(e.message, "S3cretPw"));
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_NO_PROXY", "localhost,.example.com", &e), BKOAUTH_OK);
    assert_int_equal(bkoauth_config_set(c, "BKOAUTH_CA_PATH", "/etc/ssl/certs", &e), BKOAUTH_OK);
    bkoauth_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_proxy_as_libcurl),
        cmocka_unit_test(test_variables_as_libcurl),
        cmocka_unit_test(test_none_and_sources),
        cmocka_unit_test(test_proxy_urls),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
