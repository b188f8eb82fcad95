/* SPDX-License-Identifier: MIT */
/* teststore.h - which token store an integration test runs against.
 *
 * The integration suite is one suite parameterised by store: CTest runs each program once per
 * store with BKOAUTH_TEST_STORE=sqlite|postgres|mysql. For postgres and mysql the test command
 * provides a throwaway server in BKOAUTH_TEST_PG_URL / BKOAUTH_TEST_MYSQL_URL; each test program
 * gets databases of its own there. With BKOAUTH_TEST_PG_POOLER=HOST:PORT (a PgBouncer in front of
 * that server, tests/scripts/test_pgbouncer_pg.sh) the databases are made on the server and the
 * clients are given URLs through the pooler; with BKOAUTH_TEST_KEEP_DBS set, the PostgreSQL
 * databases are left for the caller to inspect and drop. */
#ifndef BKOAUTH_TESTSTORE_H
#define BKOAUTH_TESTSTORE_H

#include <stddef.h>

/* "sqlite" (default), "postgres" or "mysql". */
const char *teststore_kind(void);

/* Writes a fresh, empty store's BKOAUTH_DATABASE_URL into buf: for sqlite a new file in a new
 * temporary directory; for postgres and mysql a new database on the test server. tag names the test.
 * Returns buf, or NULL (with a message on stderr) when impossible. */
char *teststore_fresh_url(const char *tag, char *buf, size_t size);

/* The store a benchmark runs on: given when it is a URL (not NULL, not empty), else
 * teststore_fresh_url(tag). Returns buf, or NULL (with a message on stderr). */
char *teststore_given_or_fresh(const char *given, const char *tag, char *buf, size_t size);

/* Makes a new, empty temporary directory and writes its path into buf; teststore_cleanup()
 * removes it with what it holds. Returns buf, or NULL (with a message on stderr). */
char *teststore_tmpdir(char *buf, size_t size);

/* Runs sql on the store at url (as another program writing to the table would: MySQL with an
 * empty sql_mode). 0 on success, -1 with a message on stderr. */
int teststore_exec(const char *url, const char *sql);

/* "SQLite", "PostgreSQL" or "MySQL": the store a BKOAUTH_DATABASE_URL names, for a report. */
const char *teststore_label(const char *db_url);

/* Removes every store made by teststore_fresh_url() (files, databases). */
void teststore_cleanup(void);

#endif
