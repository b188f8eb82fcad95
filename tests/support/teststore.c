/* SPDX-License-Identifier: MIT */
/* teststore.c - fresh token stores for the integration suite (see teststore.h). */
#include "teststore.h"

#include "internal.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#ifdef BKOAUTH_WITH_MYSQL
#include <mysql.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dirs[64][256];
static int ndirs;

const char *teststore_kind(void)
{
    const char *k = getenv("BKOAUTH_TEST_STORE");
    if (k != NULL && strcmp(k, "postgres") == 0) return "postgres";
    if (k != NULL && strcmp(k, "mysql") == 0) return "mysql";
    return "sqlite";
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
    const char *pooler = getenv("BKOAUTH_TEST_PG_POOLER"), *at = strchr(url, '@');
    if (pooler != NULL && pooler[0] != '\0' && at != NULL) /* the clients go through the pooler */
        snprintf(buf, size, "%.*s%s/%s", (int)(at + 1 - url), url, pooler, db);
    else
        snprintf(buf, size, "%.*s/%s", base, url, db);
    return buf;
}

static char my_dbs[16][64];
static int nmy;

/* Runs sql on the server of BKOAUTH_TEST_MYSQL_URL. 0 on success. */
static int mysql_admin(const char *sql)
{
#ifdef BKOAUTH_WITH_MYSQL
    const char *url = getenv("BKOAUTH_TEST_MYSQL_URL");
    bk_mysql_url u;
    bkoauth_error e;
    if (url == NULL || mysql_url_parse(url, &u, &e) != BKOAUTH_OK) {
        fprintf(stderr, "teststore: BKOAUTH_TEST_STORE=mysql needs BKOAUTH_TEST_MYSQL_URL\n");
        return -1;
    }
    MYSQL *db = mysql_init(NULL);
    int ok =
        db != NULL && mysql_real_connect(db, u.host, u.user, u.password, u.database, u.port, NULL, 0) != NULL;
    if (ok) {
        ok = mysql_query(db, sql) == 0;
        if (!ok) fprintf(stderr, "teststore: %s: %s\n", sql, mysql_error(db));
    } else {
        fprintf(stderr, "teststore: cannot connect to the MySQL test server: %s\n",
                db ? mysql_error(db) : "");
    }
    mysql_close(db);
    mysql_url_clear(&u);
    return ok ? 0 : -1;
#else
    (void)sql;
    fprintf(stderr, "teststore: built without MySQL\n");
    return -1;
#endif
}

/* A new database of its own for this test program, on the server of BKOAUTH_TEST_MYSQL_URL. */
static char *fresh_mysql(const char *tag, char *buf, size_t size)
{
    const char *url = getenv("BKOAUTH_TEST_MYSQL_URL");
    if (url == NULL || strrchr(url, '/') == NULL || nmy >= 16) {
        fprintf(stderr, "teststore: BKOAUTH_TEST_STORE=mysql needs BKOAUTH_TEST_MYSQL_URL\n");
        return NULL;
    }
    char db[64], sql[200];
    snprintf(db, sizeof db, "bkoauth_%.20s_%d_%d", tag, (int)getpid(), nmy);
    for (char *p = db; *p; p++)
        if (*p == '-') *p = '_';
    snprintf(sql, sizeof sql, "CREATE DATABASE `%.63s` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", db);
    if (mysql_admin(sql) != 0) return NULL;
    snprintf(my_dbs[nmy++], sizeof my_dbs[0], "%s", db);
    int base = (int)(strrchr(url, '/') - url);
    snprintf(buf, size, "%.*s/%s", base, url, db);
    return buf;
}

char *teststore_tmpdir(char *buf, size_t size)
{
    if (ndirs >= (int)(sizeof dirs / sizeof dirs[0])) return NULL;
    char tmpl[] = "/tmp/bkoauth-test-XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        perror("teststore: mkdtemp");
        return NULL;
    }
    snprintf(dirs[ndirs++], sizeof dirs[0], "%s", tmpl);
    snprintf(buf, size, "%s", tmpl);
    return buf;
}

char *teststore_fresh_url(const char *tag, char *buf, size_t size)
{
    if (strcmp(teststore_kind(), "postgres") == 0) return fresh_postgres(tag, buf, size);
    if (strcmp(teststore_kind(), "mysql") == 0) return fresh_mysql(tag, buf, size);
    char dir[64];
    if (teststore_tmpdir(dir, sizeof dir) == NULL) return NULL;
    snprintf(buf, size, "sqlite:%s/%s.db", dir, tag);
    return buf;
}

char *teststore_given_or_fresh(const char *given, const char *tag, char *buf, size_t size)
{
    if (given == NULL || given[0] == '\0') return teststore_fresh_url(tag, buf, size);
    if ((size_t)snprintf(buf, size, "%s", given) >= size) {
        fprintf(stderr, "teststore: the database URL is longer than %zu bytes\n", size - 1);
        return NULL;
    }
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
    for (int i = 0; i < npg && getenv("BKOAUTH_TEST_KEEP_DBS") == NULL; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%.63s\" WITH (FORCE)", pg_dbs[i]);
        pg_admin(sql);
    }
    npg = 0;
    for (int i = 0; i < nmy; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS `%.63s`", my_dbs[i]);
        mysql_admin(sql);
    }
    nmy = 0;
}

int teststore_exec(const char *url, const char *sql)
{
    int ok = 0;
    if (strncmp(url, "sqlite:", 7) == 0) {
        sqlite3 *db = NULL;
        char *msg = NULL;
        ok = sqlite3_open_v2(url + 7, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK;
        if (!ok) fprintf(stderr, "teststore: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_close(db);
    } else if (strncmp(url, "postgres", 8) == 0) {
        PGconn *conn = PQconnectdb(url);
        PGresult *r = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, sql) : NULL;
        ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) fprintf(stderr, "teststore: %s: %s", sql, PQerrorMessage(conn));
        PQclear(r);
        PQfinish(conn);
    } else {
#ifdef BKOAUTH_WITH_MYSQL
        bk_mysql_url u;
        bkoauth_error e;
        if (mysql_url_parse(url, &u, &e) != BKOAUTH_OK) return -1;
        MYSQL *db = mysql_init(NULL);
        ok = db != NULL &&
             mysql_real_connect(db, u.host, u.user, u.password, u.database, u.port, NULL, 0) != NULL &&
             mysql_query(db, "SET SESSION sql_mode = ''") == 0 && mysql_query(db, sql) == 0;
        if (!ok) fprintf(stderr, "teststore: %s: %s\n", sql, db ? mysql_error(db) : "");
        mysql_close(db);
        mysql_url_clear(&u);
#endif
    }
    return ok ? 0 : -1;
}

const char *teststore_label(const char *db_url)
{
    if (strncmp(db_url, "sqlite:", 7) == 0) return "SQLite";
    if (strncmp(db_url, "mysql://", 8) == 0 || strncmp(db_url, "mariadb://", 10) == 0) return "MySQL";
    return "PostgreSQL";
}
