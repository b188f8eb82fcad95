/* SPDX-License-Identifier: MIT */
/* cgi_app.c - a CGI program that does what the Python app did on user login: it runs the login
 * hook (bkoauth_user_logged_in) for the user the web server authenticated (REMOTE_USER) and
 * shows that user's token status as text/plain.
 *
 * The request comes from the CGI environment with bkoauth_request_from_cgi(): REMOTE_USER,
 * HTTP_COOKIE (the login credential, e.g. bk_token), QUERY_STRING, REMOTE_ADDR and
 * HTTP_X_FORWARDED_FOR. Settings come from the file in $BKOAUTH_CONFIG (if set), then the
 * environment - set them in the web server's configuration, e.g. for Apache:
 *
 *   SetEnv BKOAUTH_CONFIG /etc/myapp/bkoauth.conf
 *   ScriptAlias /token-status /usr/lib/cgi-bin/bkoauth-cgi-app
 *
 * Exit status 0 whenever a page was written (the page tells what happened).
 */
#include <bkoauth.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The page: a status line and text. */
static int cgi_page(const char *status, const char *fmt, ...)
{
    printf("Status: %s\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\r\n",
           status);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(void)
{
    bkoauth_error err;
    bkoauth_config *config = bkoauth_config_new();
    const char *file = getenv("BKOAUTH_CONFIG");
    if (config == NULL || (file && bkoauth_config_load_file(config, file, &err) != BKOAUTH_OK) ||
        bkoauth_config_load_env(config, &err) != BKOAUTH_OK) {
        int rc =
            cgi_page("500 Internal Server Error", "settings: %s\n", config ? err.message : "out of memory");
        bkoauth_config_free(config);
        return rc;
    }
    bkoauth_client *client = bkoauth_client_new(config, &err);
    bkoauth_config_free(config);
    if (client == NULL)
        return cgi_page("500 Internal Server Error", "%s: %s\n", bkoauth_code_name(err.code), err.message);

    bkoauth_request req;
    bkoauth_request_from_cgi(&req);
    int rc;
    if (req.username == NULL || req.username[0] == '\0') {
        rc = cgi_page("401 Unauthorized",
                      "not logged in: REMOTE_USER is empty; protect this script with the web server's "
                      "authentication so that it knows the user\n");
        bkoauth_client_free(client);
        return rc;
    }

    /* What a login does: fetch and save the user's token; a failure is only logged (to stderr,
     * which is the web server's error log). */
    bkoauth_user_logged_in(client, &req);

    /* Then any later request (or a background job) reads the saved token by user. */
    bkoauth_token *token = NULL;
    if (bkoauth_get_access_token_by_user(client, req.username, &token, &err) != BKOAUTH_OK) {
        if (err.code == BKOAUTH_E_TOKEN_NOT_EXIST)
            rc = cgi_page("200 OK",
                          "user: %s\nstatus: no token\nwhy: the login hook could not get one (the server log "
                          "says why); the login credential must be in the Cookie header\ndetail: %s\n",
                          req.username, err.message);
        else
            rc = cgi_page("502 Bad Gateway", "user: %s\nstatus: error\nwhy: %s: %s\n", req.username,
                          bkoauth_code_name(err.code), err.message);
        bkoauth_client_free(client);
        return rc;
    }
    char masked[64], when[32];
    time_t expires = (time_t)token->expires;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&expires, &tm));
    long long left = (long long)(token->expires - (int64_t)time(NULL));
    rc = cgi_page("200 OK",
                  "user: %s\nstatus: ok\naccess_token: %s\nenv_name: %s\nexpires: %s\nexpires_in: %lld\n"
                  "expires_soon: %s\n",
                  req.username, bkoauth_mask(token->access_token, masked, sizeof masked), token->env_name,
                  when, left, bkoauth_token_expires_soon(client, token) ? "yes" : "no");
    bkoauth_token_free(token);
    bkoauth_client_free(client);
    return rc;
}
