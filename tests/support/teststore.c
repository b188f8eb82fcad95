/* teststore.c - fresh token stores for the integration suite (see teststore.h). */
#include "teststore.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dirs[64][256];
static int ndirs;

const char *teststore_kind(void)
{
    const char *k = getenv("BKOAUTH_TEST_STORE");
    return (k != NULL && strcmp(k, "postgres") == 0) ? "postgres" : "sqlite";
}

static char *fresh_postgres(char *buf, size_t size)
{
    const char *url = getenv("BKOAUTH_TEST_PG_URL");
    if (url == NULL || url[0] == '\0') {
        fprintf(stderr, "teststore: BKOAUTH_TEST_STORE=postgres needs BKOAUTH_TEST_PG_URL\n");
        return NULL;
    }
    PGconn *conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "teststore: cannot connect to %s: %s\n", url, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PGresult *r = PQexec(conn, "SET client_min_messages = warning; "
                               "DROP TABLE IF EXISTS bkoauth_access_token");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "teststore: cannot reset the table: %s\n", PQerrorMessage(conn));
    PQclear(r);
    PQfinish(conn);
    if (!ok) return NULL;
    snprintf(buf, size, "%s", url);
    return buf;
}

char *teststore_fresh_url(const char *tag, char *buf, size_t size)
{
    if (strcmp(teststore_kind(), "postgres") == 0) return fresh_postgres(buf, size);
    if (ndirs >= (int)(sizeof dirs / sizeof dirs[0])) return NULL;
    char tmpl[] = "/tmp/bkoauth-test-XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        perror("teststore: mkdtemp");
        return NULL;
    }
    snprintf(dirs[ndirs++], sizeof dirs[0], "%s", tmpl);
    snprintf(buf, size, "sqlite:%s/%s.db", tmpl, tag);
    return buf;
}

void teststore_cleanup(void)
{
    for (int i = 0; i < ndirs; i++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%.255s'", dirs[i]);
        if (system(cmd) != 0) fprintf(stderr, "teststore: could not remove %s\n", dirs[i]);
    }
    ndirs = 0;
}
