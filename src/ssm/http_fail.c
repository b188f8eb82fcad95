/* SPDX-License-Identifier: MIT */
/* http_fail.c - the messages of a failed SSM call that name the hop that failed and what to do
 * (see http_fail.h). */
#include "http_fail.h"

#include <stdio.h>
#include <string.h>

void http_host_port(const char *url, char *out, size_t size)
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

void http_failure_hops(const proxy_choice *p, http_failure *f)
{
    http_host_port(f->url, f->service, sizeof f->service);
    if (p->url == NULL) {
        snprintf(f->hp, sizeof f->hp, "%s", f->service);
        return;
    }
    const char *host = p->parsed.host;
    int v6 = strchr(host, ':') != NULL;
    snprintf(f->proxy, sizeof f->proxy, "the proxy at %s%s%s:%u (from %s)", v6 ? "[" : "", host,
             v6 ? "]" : "", p->parsed.port, p->source);
    snprintf(f->hp, sizeof f->hp, "%s through %s", f->service, f->proxy);
    f->var = p->source;
}

bkoauth_code http_fail_timeout(long timeout_ms, CURL *c, const http_failure *f, bkoauth_error *err)
{
    curl_off_t connected = 0;
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
    if (f->var != NULL && connected == 0)
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "timeout: %s did not take a connection within %ld ms (BKOAUTH_TIMEOUT_MS): is it up, and "
            "is %s right? (the SSM service at %s was not reached)",
            f->proxy, timeout_ms, f->var, f->service);
    return err_set(err, BKOAUTH_E_TOKEN_API,
                   "timeout: %s gave no complete answer within %ld ms (BKOAUTH_TIMEOUT_MS); retry later, or "
                   "raise BKOAUTH_TIMEOUT_MS if the service is just slow",
                   f->hp, timeout_ms);
}

/* What an OpenSSL verification result (X509_V_ERR_*) says of a certificate, and what to do;
 * NULL for the others. */
static const char *http_cert_problem(long result, const char **fix)
{
    *fix = "give the certificate of the CA that issued it (PEM) in BKOAUTH_CA_FILE, or a directory of "
           "CA certificates (c_rehash) in BKOAUTH_CA_PATH";
    switch (result) {
    case 2:  /* unable to get issuer certificate */
    case 18: /* self-signed certificate */
    case 19: /* self-signed certificate in the chain */
    case 20: /* unable to get local issuer certificate */
    case 21: /* unable to verify the first certificate */
        return "its certificate is not issued by a CA this host trusts (a private CA, or self-signed)";
    case 9:
        *fix = "check this host's clock";
        return "its certificate is not valid yet";
    case 10:
        *fix = "the service must renew its certificate (or this host's clock is wrong)";
        return "its certificate has expired";
    default:
        return NULL;
    }
}

bkoauth_code http_fail_tls(const proxy_choice *p, CURL *c, const http_failure *f, bkoauth_error *err)
{
    long result = 0, proxy_result = 0;
    const char *fix, *problem;
    curl_easy_getinfo(c, CURLINFO_SSL_VERIFYRESULT, &result);
    if (f->var != NULL && strcmp(p->parsed.scheme, "https") == 0)
        curl_easy_getinfo(c, CURLINFO_PROXY_SSL_VERIFYRESULT, &proxy_result);
    int of_proxy = proxy_result != 0;
    if ((problem = http_cert_problem(of_proxy ? proxy_result : result, &fix)) != NULL)
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "TLS failure with %s: %s (%s): %s; or, for testing only, set "
                       "BKOAUTH_TLS_VERIFY=false",
                       of_proxy ? f->proxy : f->hp, problem, f->detail, fix);
    if (f->rc == CURLE_PEER_FAILED_VERIFICATION &&
        (strstr(f->detail, "subject name") != NULL || strstr(f->detail, "does not match") != NULL))
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "TLS failure with %s: its certificate is for another host name than the one in %s (%s): "
            "write the name the certificate is issued for in %s",
            f->hp, of_proxy ? f->var : "OAUTH_API_URL", f->detail, of_proxy ? f->var : "OAUTH_API_URL");
    if (f->rc == CURLE_SSL_CACERT_BADFILE)
        return err_set(
            err, BKOAUTH_E_TOKEN_API,
            "TLS failure with %s (%s): BKOAUTH_CA_FILE or BKOAUTH_CA_PATH cannot be read or holds no CA "
            "certificate (PEM)",
            f->hp, f->detail);
    return err_set(err, BKOAUTH_E_TOKEN_API,
                   "TLS failure with %s (%s): check the CA bundle given in BKOAUTH_CA_FILE, or, for testing "
                   "only, set BKOAUTH_TLS_VERIFY=false",
                   f->hp, f->detail);
}

bkoauth_code http_fail_proxy_answer(const proxy_choice *p, const http_failure *f, long status,
                                    const char *reason, bkoauth_error *err)
{
    if (status == 407 || status == 401) {
        if (p->parsed.has_user)
            return err_set(
                err, BKOAUTH_E_TOKEN_API,
                "%s refused its credentials (HTTP %ld \"%s\"): check the proxy's user and password "
                "in %s (the SSM service at %s was not reached)",
                f->proxy, status, reason, f->var, f->service);
        return err_set(err, BKOAUTH_E_TOKEN_API,
                       "%s asks for credentials (HTTP %ld \"%s\"): write them in %s as "
                       "http://USER:PASSWORD@host:port (the SSM service at %s was not reached)",
                       f->proxy, status, reason, f->var, f->service);
    }
    return err_set(
        err, BKOAUTH_E_TOKEN_API,
        "%s answered HTTP %ld \"%s\" itself instead of passing the request on to the SSM service at "
        "%s: check that the proxy may and can reach it (OAUTH_API_URL, the proxy's rules), or list "
        "the service's host in BKOAUTH_NO_PROXY (or no_proxy) to reach it directly",
        f->proxy, status, reason, f->service);
}
