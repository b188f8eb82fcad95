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

static char pg_dbs[16][64];
static int npg;

/* Runs sql on the server's own database (BKOAUTH_TEST_PG_URL). 0 on success. */
static int pg_admin(const char *sql)
{
    const char *url = getenv("BKOAUTH_TEST_PG_URL");
    PGconn *conn = PQconnectdb(url);
    int ok = PQstatus(conn) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(conn, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) fprintf(stderr, "teststore: %s: %s", sql, PQerrorMessage(conn));
        PQclear(r);
    } else {
        fprintf(stderr, "teststore: cannot connect to %s: %s", url, PQerrorMessage(conn));
    }
    PQfinish(conn);
    return ok ? 0 : -1;
}

/* A new database of its own for this test program, on the server of BKOAUTH_TEST_PG_URL. */
static char *fresh_postgres(const char *tag, char *buf, size_t size)
{
    const char *url = getenv("BKOAUTH_TEST_PG_URL");
    if (url == NULL || url[0] == '\0' || strrchr(url, '/') == NULL || npg >= 16) {
        fprintf(stderr, "teststore: BKOAUTH_TEST_STORE=postgres needs BKOAUTH_TEST_PG_URL\n");
        return NULL;
    }
    char db[64], sql[160];
    snprintf(db, sizeof db, "bkoauth_%.20s_%d_%d", tag, (int)getpid(), npg);
    for (char *p = db; *p; p++)
        if (*p == '-') *p = '_';
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%.63s\"", db);
    if (pg_admin(sql) != 0) return NULL;
    snprintf(pg_dbs[npg++], sizeof pg_dbs[0], "%s", db);
    int base = (int)(strrchr(url, '/') - url);
    snprintf(buf, size, "%.*s/%s", base, url, db);
    return buf;
}

char *teststore_fresh_url(const char *tag, char *buf, size_t size)
{
    if (strcmp(teststore_kind(), "postgres") == 0) return fresh_postgres(tag, buf, size);
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
    for (int i = 0; i < npg; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%.63s\" WITH (FORCE)", pg_dbs[i]);
        pg_admin(sql);
    }
    npg = 0;
}
