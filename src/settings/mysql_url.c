/* SPDX-License-Identifier: MIT */
/* mysql_url.c - the MySQL URL of BKOAUTH_DATABASE_URL:
 *   mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE   (mariadb:// is the same)
 * with percent-escapes in each part, as Django's dj-database-url style settings write them.
 * settings/config.c checks the setting with it, store/mysql.c connects with what it reads. It
 * needs no MariaDB library. No message ever holds the password. */
#include "../internal.h"

#include <stdlib.h>
#include <string.h>

void mysql_url_clear(bk_mysql_url *u)
{
    bkoauth__free(u->user);
    bk_wipe_free(u->password);
    bkoauth__free(u->host);
    bkoauth__free(u->database);
    memset(u, 0, sizeof *u);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* [s, e) percent-decoded into a new string; NULL when an escape is bad or decodes to NUL (*bad
 * set) or on OOM. */
static char *decode(const char *s, const char *e, int *bad)
{
    *bad = 0;
    char *out = bkoauth__malloc((size_t)(e - s) + 1);
    if (out == NULL) return NULL;
    size_t n = 0;
    for (const char *p = s; p < e; p++) {
        if (*p != '%') {
            out[n++] = *p;
            continue;
        }
        int hi = p + 1 < e ? hexval(p[1]) : -1, lo = p + 2 < e ? hexval(p[2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            out[n] = '\0'; /* what was decoded so far is wiped */
            bk_wipe_free(out);
            *bad = 1;
            return NULL;
        }
        out[n++] = (char)(hi * 16 + lo);
        p += 2;
    }
    out[n] = '\0';
    return out;
}

static bkoauth_code bad_url(bkoauth_error *err, const char *why)
{
    return err_set(
        err, BKOAUTH_E_CONFIG,
        "BKOAUTH_DATABASE_URL: not a MySQL URL (%s); write mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE "
        "with characters such as @ : / %% in a part written as %%XX",
        why);
}

static bkoauth_code refuse(bk_mysql_url *out, bkoauth_error *err, const char *why)
{
    mysql_url_clear(out);
    return bad_url(err, why);
}

/* What the part helpers below return when decoding failed: a bad escape (*bad set) or out of
 * memory. Any other non-NULL answer is why the URL is refused. */
static const char DECODE_FAILED[] = "";

/* USER[:PASSWORD] of [p, at) into out. NULL, DECODE_FAILED or why it is refused. */
static const char *url_user(const char *p, const char *at, bk_mysql_url *out, int *bad)
{
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *user_end = colon ? colon : at;
    if (user_end == p) return "an empty user name before @";
    out->user = decode(p, user_end, bad);
    if (out->user == NULL) return DECODE_FAILED;
    if (colon != NULL && (out->password = decode(colon + 1, at, bad)) == NULL) return DECODE_FAILED;
    return NULL;
}

/* The port of [port, slash): 1 to 65535 into out->port. NULL or why it is refused. */
static const char *url_port(const char *port, const char *slash, bk_mysql_url *out)
{
    long v = 0;
    const char *q = port;
    for (; q < slash && *q >= '0' && *q <= '9' && v <= 65535; q++)
        v = v * 10 + (*q - '0');
    if (q != slash || q == port || v < 1 || v > 65535) return "the port is not a number from 1 to 65535";
    out->port = (unsigned)v;
    return NULL;
}

/* HOST[:PORT] of [host, slash) into out (HOST a name, an address or [IPv6]; the port 3306 when
 * none is written). NULL, DECODE_FAILED or why it is refused. */
static const char *url_host(const char *host, const char *slash, bk_mysql_url *out, int *bad)
{
    const char *host_end = slash, *port = NULL;
    if (*host == '[') { /* [IPv6] */
        const char *close = memchr(host, ']', (size_t)(slash - host));
        if (close == NULL) return "an IPv6 address without ]";
        if (close + 1 < slash) {
            if (close[1] != ':') return "junk after the IPv6 address";
            port = close + 2;
        }
        out->host = bk_strndup(host + 1, (size_t)(close - host - 1));
        if (out->host == NULL) return DECODE_FAILED;
    } else {
        const char *colon = memchr(host, ':', (size_t)(slash - host));
        if (colon != NULL) {
            host_end = colon;
            port = colon + 1;
        }
        out->host = decode(host, host_end, bad);
        if (out->host == NULL) return DECODE_FAILED;
    }
    if (out->host[0] == '\0') return "no host";
    out->port = 3306;
    return port != NULL ? url_port(port, slash, out) : NULL;
}

bkoauth_code mysql_url_parse(const char *url, bk_mysql_url *out, bkoauth_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p;
    if (strncmp(url, "mysql://", 8) == 0)
        p = url + 8;
    else if (strncmp(url, "mariadb://", 10) == 0)
        p = url + 10;
    else
        return bad_url(err, "it does not start with mysql:// or mariadb://");
    const char *slash = strchr(p, '/');
    if (slash == NULL) return bad_url(err, "no /DATABASE");
    if (strpbrk(slash + 1, "?#/") != NULL)
        return bad_url(err, "options and paths after the database are not supported");
    const char *at = NULL; /* the last '@' before the path: a password may hold a raw one */
    for (const char *q = p; q < slash; q++)
        if (*q == '@') at = q;
    int bad = 0;
    const char *why = at != NULL ? url_user(p, at, out, &bad) : NULL;
    if (why == NULL) why = url_host(at != NULL ? at + 1 : p, slash, out, &bad);
    if (why == NULL) {
        out->database = decode(slash + 1, slash + 1 + strlen(slash + 1), &bad);
        if (out->database == NULL)
            why = DECODE_FAILED;
        else if (out->database[0] == '\0' || strlen(out->database) > 64)
            why = "no database name, or one longer than 64 characters";
    }
    if (why == NULL) return BKOAUTH_OK;
    if (why != DECODE_FAILED) return refuse(out, err, why);
    mysql_url_clear(out);
    return bad ? bad_url(err, "a bad %XX escape") : err_nomem(err);
}
